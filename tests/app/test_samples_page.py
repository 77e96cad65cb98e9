"""Samples page: add a demo / a server file / an upload, metadata, slice viewer, deletion."""

from __future__ import annotations

import io

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.io import save_tiff
from ui import file_browser, state

from apphelpers import TIMEOUT, no_exception, page

PAGE = page("1_samples.py")


def _pick(data, name: str, vol, spacing):
    """The Samples page with the TIFF ``name`` (``vol`` saved at ``spacing``) picked in the add form."""
    save_tiff(data / name, vol, spacing)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select(name).run()
    no_exception(at)
    return at


def _catalogue(at):
    frames = [d.value for d in at.dataframe if "status" in d.value.columns]
    assert frames, "no catalogue table"
    return frames[0]


def test_add_demo_then_view_slices(empty_ws):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    no_exception(at)
    assert any("workspace is empty" in i.value for i in at.info)
    at.selectbox(key=state.ADD_DEMO).select("cycled-1C")
    # a size outside 16-320 is refused in one sentence, the button disabled (it added the last valid size before)
    for bad in (352, 8):
        at.number_input(key=state.ADD_DEMO_SIZE).set_value(bad).run()
        no_exception(at)
        assert any(e.value.startswith("A demo electrode of the dashboard is 16 to 320 voxels per edge")
                   and e.value.endswith(f"not {bad}.") for e in at.error)
        assert at.button(key=state.k(state.ADD_SUBMIT, "demo")).disabled
    assert empty_ws.list_samples() == []
    at.number_input(key=state.ADD_DEMO_SIZE).set_value(32)
    at.run()
    assert not any("voxels per edge" in e.value for e in at.error)
    from ui.settings import demo_time_text  # the one wording of the time, also on the first-start page

    assert any(c.value == f"At 32³ voxels: {demo_time_text(32)}." for c in at.caption)
    assert demo_time_text(320) != demo_time_text(160) != demo_time_text(32)
    at.button(key=state.k(state.ADD_SUBMIT, "demo")).click()
    at.run()
    no_exception(at)
    [s] = empty_ws.list_samples()
    assert (s.name, s.source, s.source_options["shape"]) == ("cycled-1C", "demo:cycled-1C", [32, 32, 32])
    # a demo is analysed at once with the defaults, as the first start's are (the tests' jobs run inline)
    assert empty_ws.latest_analysis(s.id).status == "done"
    assert any(m.value.startswith("Added sample 'cycled-1C'; its analysis with the default settings is job #")
               for m in at.success)
    assert s.spacing == (0.4, 0.4, 0.4) and s.separator_side == "start"
    assert at.session_state[state.PENDING_SAMPLE] == s.id or at.session_state[state.SAMPLE_ID] == s.id
    table = _catalogue(at)
    assert list(table["name"]) == ["cycled-1C"]
    assert table["source"][0].startswith("SYNTHETIC")
    assert table["attributes"][0] == "C-rate 1 C"  # what Compare's axis reads, in the catalogue (QA walk 16)
    assert any("SYNTHETIC" in w.value for w in at.warning)
    assert any("Added sample" in m.value for m in at.success)
    # three orthogonal slices at the centre; move z
    zkey = state.k(state.VIEW_INDEX, "z", s.id, 32)
    assert at.slider(key=zkey).value == 16
    assert len(at.image) == 3
    at.slider(key=zkey).set_value(5).run()
    no_exception(at)
    assert any("z = 5 (2.0 µm)" in (c or "") for img in at.image for c in [img.proto.imgs[0].caption])
    before = [c.value for c in at.caption if "display range" in c.value][0]
    at.slider(key=state.k(state.VIEW_CONTRAST, s.id)).set_value((20.0, 80.0)).run()
    after = [c.value for c in at.caption if "display range" in c.value][0]
    assert before != after


def test_a_single_slice_shows_its_plane_only(empty_ws, tmp_path):
    from core.inputs import FileInput

    img = ((np.arange(30 * 40, dtype=np.float32).reshape(1, 30, 40) % 7) - 3.0) * 1e4  # around 0: no "-0"
    save_tiff(tmp_path / "slice.tif", img, (0.5, 0.1, 0.1))
    s = empty_ws.add_sample("sem", FileInput(tmp_path / "slice.tif"), spacing=(0.5, 0.1, 0.1), axis=1)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    assert len(at.image) == 1 and "z = 0" in at.image[0].proto.imgs[0].caption
    [shown] = [c.value for c in at.caption if "display range" in c.value]
    assert shown.startswith("A single slice (a 2D image, measured in its plane): 1×30×40 voxels")
    assert "-0" not in shown and "e+" not in shown and "–30000 grey units" in shown



def test_a_single_slice_across_its_thickness_axis_is_said_where_the_axis_is_chosen(empty_ws, env):
    """A slice (1×30×40) added with the default thickness axis z, the one it lies across: the add form says under
    the axis that no depth nor path to the collector is measured and which in-plane axes a cross-section takes;
    the sample's page warns until y is chosen under Sample details."""
    from ui import forms

    data = env / "data"
    img = (np.random.default_rng(0).random((1, 30, 40)) * 1000).astype(np.uint16)
    at = _pick(data, "face.tif", img, (0.5, 0.1, 0.1))
    scope = ("add", "file", file_browser.path_token(data / "face.tif"))
    said = forms.thin_axis_note((1, 30, 40), 0)
    assert said.startswith("A single slice across the thickness axis (z): no depth and no path to the current "
                           "collector are measured in it") and "in-plane axis (y or x)" in said
    assert said in [i.value for i in at.info]
    at.selectbox(key=state.k(state.META_AXIS, *scope)).select(1).run()
    assert said not in [i.value for i in at.info]
    at.selectbox(key=state.k(state.META_AXIS, *scope)).select(0).run()
    at.button(key=state.k(state.ADD_SUBMIT, "file")).click().run()
    no_exception(at)
    [s] = empty_ws.list_samples()
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    assert said + " Set it under *Sample details*." in [w.value for w in at.warning]
    at.selectbox(key=state.k(state.META_AXIS, "edit", s.id)).select(1).run()
    at.button(key=state.k(state.EDIT_SAVE, s.id)).click().run()
    no_exception(at)
    assert empty_ws.get_sample(s.id).axis == 1
    assert not [w for w in at.warning if "single slice across the thickness axis" in w.value]
    assert forms.thin_axis_note((8, 30, 40), 0) is None and forms.thin_axis_note(None, 0) is None

def test_add_file_from_data_folder_and_bad_file(empty_ws, env):
    data = env / "data"
    vol = (np.random.default_rng(0).random((12, 20, 24)) * 1000).astype(np.uint16)
    save_tiff(data / "scan.tif", vol, (0.5, 0.3, 0.3))
    (data / "broken.tif").write_bytes(b"this is not a tiff at all")
    (data / "sub").mkdir()
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    no_exception(at)
    picker = at.selectbox(key=state.k(state.ADD_FILE, "root"))
    assert picker.options[0] == "sub/  (folder)"
    picker.select("broken.tif").run()
    no_exception(at)
    [err] = [e.value for e in at.error]
    assert "broken.tif" in err and "Traceback" not in err and err.endswith(".")
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("scan.tif").run()
    no_exception(at)
    assert not at.error
    assert any("12×20×24 voxels" in c.value and "metadata" in c.value for c in at.caption)
    scope = ("add", "file", file_browser.path_token(data / "scan.tif"))
    assert at.number_input(key=state.k(state.META_SPACING, *scope, "x")).value == 0.3  # pre-filled from the file
    assert at.number_input(key=state.k(state.META_SPACING, *scope, "z")).value == 0.5
    at.text_input(key=state.k(state.META_GROUP, *scope)).input("batch 7")
    at.button(key=state.k(state.ADD_SUBMIT, "file")).click()
    at.run()
    no_exception(at)
    [s] = empty_ws.list_samples()
    assert (s.name, s.group_label, s.spacing) == ("scan", "batch 7", (0.5, 0.3, 0.3))
    assert s.source == str(data / "scan.tif")


def test_region_of_interest_crops_the_sample(empty_ws, env):
    """The add form's crop: sliders over the file's voxels, the middle plane of the box previewed, the cropped
    size said and offered to the downsampling; the sample reads only the box (catalogue, volume, recipe)."""
    data = env / "data"
    vol = (np.random.default_rng(2).random((40, 64, 72)) * 1000).astype(np.uint16)
    at = _pick(data, "scan.tif", vol, (0.5, 0.3, 0.3))
    token = file_browser.path_token(data / "scan.tif")
    n_images = len(at.image)
    at.toggle(key=state.k(state.ADD_CROP, "file", token, "on")).set_value(True).run()
    assert any(c.value == "The whole volume." for c in at.caption) and len(at.image) == n_images + 1
    at.slider(key=state.k(state.ADD_CROP, "file", token, "z")).set_value((4, 36))
    at.slider(key=state.k(state.ADD_CROP, "file", token, "x")).set_value((8, 56)).run()
    no_exception(at)
    assert any(c.value == "Cropped to 32×64×48 voxels (z×y×x)." for c in at.caption)
    assert len(at.image) == n_images + 1 and any("z = 19 (the middle of the box)" in i.proto.imgs[0].caption
                                             for i in at.image)
    down = at.selectbox(key=state.k(state.ADD_DOWNSAMPLE, "file", token))
    down.select(2).run()
    assert any(c.value.startswith("Loaded as 16×32×24 voxels") for c in at.caption)  # of the box, not the file
    # the factor stays when the box changes (QA walk 7: it fell back to "1 (none)" without a word)
    at.slider(key=state.k(state.ADD_CROP, "file", token, "z")).set_value((4, 32)).run()
    assert at.selectbox(key=state.k(state.ADD_DOWNSAMPLE, "file", token)).value == 2
    assert any(c.value.startswith("Loaded as 14×32×24 voxels") for c in at.caption)
    at.selectbox(key=state.k(state.ADD_DOWNSAMPLE, "file", token)).select(1).run()
    at.slider(key=state.k(state.ADD_CROP, "file", token, "z")).set_value((4, 36)).run()
    # an empty range is refused
    at.slider(key=state.k(state.ADD_CROP, "file", token, "y")).set_value((7, 7)).run()
    assert any("The box is empty along y" in e.value for e in at.error)
    at.slider(key=state.k(state.ADD_CROP, "file", token, "y")).set_value((0, 64)).run()
    at.button(key=state.k(state.ADD_SUBMIT, "file")).click()
    at.run()
    no_exception(at)
    [s] = empty_ws.list_samples()
    assert s.source_options["read"]["crop"] == [[4, 36], [0, 64], [8, 56]]
    np.testing.assert_array_equal(empty_ws.load_volume(s), vol[4:36, :, 8:56])
    assert _catalogue(at)["size (voxels)"][0] == "40×64×72 → 32×64×48 (cropped)"
    from core.inputs import input_to_dict

    assert input_to_dict(s.input)["crop"] == [[4, 36], [0, 64], [8, 56]]


def test_region_of_interest_edited_after_an_analysis(empty_ws, env):
    """A sample's region changed on its page: the sliders start at the box stored, Save only for another box; the
    catalogue and the page say that the latest analysis ran on the old one, which keeps it."""
    from core.runner import run_analysis

    data = env / "data"
    vol = (np.random.default_rng(3).random((16, 24, 28)) * 1000).astype(np.uint16)
    save_tiff(data / "scan.tif", vol, (0.5, 0.5, 0.5))
    s = empty_ws.add_sample("scan", str(data / "scan.tif"), spacing=0.5,
                            source_options={"read": {"crop": [[0, 16], [2, 22], [0, 28]]}, "shape": [16, 24, 28]})
    a = run_analysis(empty_ws, s.id, empty_ws.load_volume(s))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    assert any("Stored: z 0:16, y 2:22, x 0:28" in c.value for c in at.caption)
    at.toggle(key=state.k(state.EDIT_CROP_OPEN, s.id)).set_value(True).run()
    no_exception(at)
    y = at.slider(key=state.k(state.EDIT_CROP, s.id, "y"))
    assert y.value == (2, 22) and at.button(key=state.k(state.EDIT_CROP_SAVE, s.id)).disabled
    y.set_value((4, 20)).run()
    at.button(key=state.k(state.EDIT_CROP_SAVE, s.id)).click().run()
    no_exception(at)
    s = empty_ws.get_sample(s.id)
    assert s.input.crop == ((0, 16), (4, 20), (0, 28))
    np.testing.assert_array_equal(empty_ws.load_volume(s), vol[:, 4:20])
    assert any("another region of interest" in w.value for w in at.warning)
    assert _catalogue(at).set_index("id").loc[s.id, "status"].endswith("before the region of interest changed: rerun")
    assert empty_ws.get_analysis(a.id).provenance["input"]["source_options"]["read"]["crop"] == [[0, 16], [2, 22],
                                                                                                  [0, 28]]
    from ui.tables import analyses_table

    assert analyses_table([empty_ws.get_analysis(a.id)])["read as"][0] == "crop z 0:16, y 2:22, x 0:28"


def test_raw_volume_with_a_header_beside_it_needs_no_layout(empty_ws, env):
    """An ESRF reconstruction (X.vol with X.vol.info): the layout and voxel size from the header, no layout
    inputs; a MetaImage .mhd: its spacing read as mm and said so; a raw file without a header asks its layout."""
    data = env / "data"
    vol = (np.arange(6 * 8 * 10).reshape(6, 8, 10) % 97).astype(np.float32)
    (data / "rec.vol").write_bytes(vol.tobytes())
    (data / "rec.vol.info").write_text("! PyHST_SLAVE VOLUME INFO FILE\nNUM_X = 10\nNUM_Y = 8\nNUM_Z = 6\n"
                                       "voxelSize = 0.05\nBYTEORDER = LOWBYTEFIRST\n")
    (data / "ct.raw").write_bytes(vol.astype("<u2").tobytes())
    (data / "ct.mhd").write_text("ObjectType = Image\nNDims = 3\nDimSize = 10 8 6\nElementType = MET_USHORT\n"
                                 "ElementSpacing = 0.0007 0.0007 0.0007\nElementDataFile = ct.raw\n")
    (data / "bare.raw").write_bytes(vol.tobytes())
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert "rec.vol.info" not in " ".join(at.selectbox(key=state.k(state.ADD_FILE, "root")).options)
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("rec.vol").run()
    no_exception(at)
    assert not at.error
    assert any("header rec.vol.info (ESRF .vol.info) states: 6×8×10 voxels (z×y×x), float32" in c.value
               for c in at.caption)
    assert not [n for n in at.number_input if n.key and n.key.startswith(state.READ_RAW_SIZE)]
    scope = ("add", "file", file_browser.path_token(data / "rec.vol"))
    assert at.number_input(key=state.k(state.META_SPACING, *scope, "x")).value == 0.05
    at.button(key=state.k(state.ADD_SUBMIT, "file")).click()
    at.run()
    no_exception(at)
    [s] = empty_ws.list_samples()
    assert s.spacing == (0.05, 0.05, 0.05)
    np.testing.assert_array_equal(empty_ws.load_volume(s), vol)
    # MetaImage: millimetres by the format's convention, said so in the caption
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("ct.mhd").run()
    no_exception(at)
    assert any("read as mm (the MetaImage convention): CHECK IT" in c.value for c in at.caption)
    scope = ("add", "file", file_browser.path_token(data / "ct.mhd"))
    assert at.number_input(key=state.k(state.META_SPACING, *scope, "z")).value == pytest.approx(0.7)
    # no header: the layout is asked
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("bare.raw").run()
    no_exception(at)
    assert [n for n in at.number_input if n.key and n.key.startswith(state.READ_RAW_SIZE)]


def test_a_big_endian_raw_file_is_read_with_the_byte_order_chosen(empty_ws, env):
    """QA: ImageJ's "Save as Raw" writes big-endian; the form had no byte order (nor float64 or 32-bit integers), so
    a float file came out as noise with values up to 1e38."""
    vol = np.linspace(0.1, 0.9, 4 * 6 * 8, dtype=np.float32).reshape(4, 6, 8)
    (env / "data" / "imagej.raw").write_bytes(vol.astype(">f4").tobytes())
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("imagej.raw").run()
    for a, n in zip("zyx", vol.shape):
        at.number_input(key=state.k(state.READ_RAW_SIZE, "file", a)).set_value(n)
    box = at.selectbox(key=state.k(state.READ_RAW_DTYPE, "file"))
    assert box.options == ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"]
    box.select("float32")
    at.selectbox(key=state.k(state.READ_RAW_ORDER, "file")).select(">").run()
    no_exception(at)
    assert not at.error
    at.button(key=state.k(state.ADD_SUBMIT, "file")).click().run()
    no_exception(at)
    [s] = empty_ws.list_samples()
    assert s.input.byte_order == ">"
    np.testing.assert_array_equal(np.asarray(empty_ws.load_volume(s)), vol)


def test_a_raw_file_whose_name_writes_its_layout_gets_it_proposed(empty_ws, env):
    """QA: a raw file named as beamline scripts and ImageJ name them (scan_10x8x6_uint16.raw: width × height ×
    slices) still opened on 64×64×64 uint16 with a byte-count error; the name's layout is proposed, said, and what
    the user types after it stays theirs."""
    vol = (np.arange(6 * 8 * 10).reshape(6, 8, 10) % 97).astype(np.uint16)
    (env / "data" / "scan_10x8x6_uint16.raw").write_bytes(vol.tobytes())
    (env / "data" / "rec_10x8x6.raw").write_bytes(vol.astype(">f4").tobytes())
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("scan_10x8x6_uint16.raw").run()
    no_exception(at)
    assert not at.error and not at.warning
    assert [at.number_input(key=state.k(state.READ_RAW_SIZE, "file", a)).value for a in "zyx"] == [6, 8, 10]
    assert any("layout proposed from its name, 10×8×6 (width × height × slices, read as x, y, z), uint16 (named)"
               in c.value for c in at.caption)
    at.number_input(key=state.k(state.READ_RAW_OFFSET, "file")).set_value(2).run()  # the user's own change stays
    assert at.number_input(key=state.k(state.READ_RAW_OFFSET, "file")).value == 2 and at.error
    at.number_input(key=state.k(state.READ_RAW_OFFSET, "file")).set_value(0).run()
    at.button(key=state.k(state.ADD_SUBMIT, "file")).click().run()
    no_exception(at)
    [s] = empty_ws.list_samples()
    np.testing.assert_array_equal(np.asarray(empty_ws.load_volume(s)), vol)
    # no type in the name: the byte count proposes float32 (said to check); the byte order is the user's to set
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("rec_10x8x6.raw").run()
    no_exception(at)
    assert at.selectbox(key=state.k(state.READ_RAW_DTYPE, "file")).value == "float32"
    assert any("float32 (from the byte count: check it)" in c.value for c in at.caption)


def test_a_raw_layout_whose_rows_do_not_line_up_is_said(empty_ws, env):
    """QA: a raw file read with z and x swapped (the right byte count) came out scrambled, with nothing said but
    an alignment reading calling the slices unaligned; the add form now says the rows do not line up and how long
    they likely are."""
    from scipy import ndimage

    rng = np.random.default_rng(3)
    vol = ndimage.gaussian_filter(rng.random((32, 48, 64)), 3).astype(np.float32)
    (env / "data" / "rec.raw").write_bytes(vol.tobytes())
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("rec.raw").run()
    at.selectbox(key=state.k(state.READ_RAW_DTYPE, "file")).select("float32")
    for a, n in zip("zyx", (64, 48, 32)):  # z and x swapped
        at.number_input(key=state.k(state.READ_RAW_SIZE, "file", a)).set_value(n)
    at.run()
    no_exception(at)
    [w] = [w.value for w in at.warning if "do not line up" in w.value]
    assert "most like those 64 further on, not 32, so its rows are likely 64 voxels long" in w
    for a, n in zip("zyx", vol.shape):
        at.number_input(key=state.k(state.READ_RAW_SIZE, "file", a)).set_value(n)
    at.run()
    assert not at.error and not [w for w in at.warning if "do not line up" in w.value]


def test_a_raw_file_read_with_the_wrong_byte_order_is_said_and_can_be_deleted(empty_ws, env):
    """QA: a big-endian float file read as little-endian held values up to 1e38 and stopped the Samples page (the
    alignment reading's NaN); now it reads, and the page says the values are no scan's."""
    from ui.samples_view import huge_values_note

    assert huge_values_note(np.array([0.1, 0.9]), np.float32) is None
    assert huge_values_note(np.array([1e38, 0.5]), np.uint16) is None  # (an integer volume: not this)
    rng = np.random.default_rng(0)
    vol = (0.2 + 0.6 * rng.random((8, 80, 80))).astype(np.float32)
    (env / "data" / "swapped.raw").write_bytes(vol.astype(">f4").tobytes())
    s = empty_ws.add_sample("swapped", str(env / "data" / "swapped.raw"), spacing=0.4,
                            source_options={"read": {"shape": [8, 80, 80], "dtype": "float32"}})
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    [w] = [w.value for w in at.warning if "no scan's" in w.value]
    assert w.startswith("This volume holds grey values up to ") and "wrong byte order or voxel type" in w
    assert [e for e in at.expander if e.label.startswith("Delete this sample")]


def test_a_nikon_reconstruction_with_its_vgi_header_needs_no_layout(empty_ws, env):
    """Nikon CT Pro's X.vol with X.vgi beside it (its data file named by the reconstructing machine's full path):
    the layout from the header, no layout inputs, the resolution in mm read as µm; the .vgi itself not listed."""
    data = env / "data"
    vol = (np.arange(6 * 8 * 10).reshape(6, 8, 10) % 97).astype(np.float32)
    (data / "cathode.vol").write_bytes(vol.astype("<f4").tobytes())
    (data / "cathode.vgi").write_text(
        "{volume1}\n[representation]\nsize = 10 8 6\ndatatype = float\nbitsperelement = 32\n[file1]\n"
        "SkipHeader = 0\nFileFormat = raw\nSize = 10 8 6\nName = C:\\Nikon\\CT Pro\\cathode.vol\n"
        "Datatype = float\nBitsPerElement = 32\n{volumeprimitive12}\n[geometry]\nresolution = 0.00045 0.00045 "
        "0.00045\nunit = mm\n")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert "cathode.vgi" not in " ".join(at.selectbox(key=state.k(state.ADD_FILE, "root")).options)
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("cathode.vol").run()
    no_exception(at)
    assert not at.error and not [n for n in at.number_input if n.key and n.key.startswith(state.READ_RAW_SIZE)]
    assert any("header cathode.vgi (VGStudio .vgi) states: 6×8×10 voxels (z×y×x), float32" in c.value
               for c in at.caption)
    _add_from_data_folder(empty_ws, "cathode.vol", "raw · 6×8×10 voxels (z×y×x) · float32 · voxel size read from the "
                          "file's metadata", vol, (0.45, 0.45, 0.45), at=at)


def test_an_hdf5_file_offers_its_largest_array_first(empty_ws, env):
    """A tomography file with its dark field beside the scan: the scan (largest) is offered first, not the dark
    field that comes first by name."""
    import h5py

    vol = (np.random.default_rng(1).random((10, 16, 18)) * 1000).astype(np.uint16)
    with h5py.File(env / "data" / "scan.h5", "w") as f:
        f.create_dataset("exchange/data", data=vol)
        f.create_dataset("exchange/dark", data=np.zeros((2, 16, 18), np.uint16))
        f.create_dataset("exchange/theta", data=np.linspace(0, 180, 10))  # 1D: not offered
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("scan.h5").run()
    no_exception(at)
    box = at.selectbox(key=state.k(state.READ_DATASET, "file"))
    assert box.options == ["/exchange/data  (10×16×18, uint16)", "/exchange/dark  (2×16×18, uint16)"]
    assert box.value == "/exchange/data"
    # the dark field, one value throughout, is refused in one sentence
    box.select("/exchange/dark").run()
    no_exception(at)
    [err] = [e.value for e in at.error]
    assert err.startswith("Every voxel of this volume holds the value 0: there is nothing to segment")
    assert at.button(key=state.k(state.ADD_SUBMIT, "file")).disabled
    at.selectbox(key=state.k(state.READ_DATASET, "file")).select("/exchange/data").run()
    assert not at.error and not at.button(key=state.k(state.ADD_SUBMIT, "file")).disabled
    assert any("10×16×18 voxels" in c.value for c in at.caption)
    at.button(key=state.k(state.ADD_SUBMIT, "file")).click()
    at.run()
    no_exception(at)
    [s] = empty_ws.list_samples()
    assert s.input.dataset == "/exchange/data"
    np.testing.assert_array_equal(empty_ws.load_volume(s).data, vol)


def test_each_dataset_of_an_hdf5_file_fills_the_form_with_its_own_voxel_size(empty_ws, env):
    """QA: a file of the full and the binned scan (element_size_um 0.398 and 0.796); switching to /binned kept
    0.398 in the fields, its caption said "read from the file", and the sample was stored at half its size."""
    import h5py

    rng = np.random.default_rng(2)
    with h5py.File(env / "data" / "two.h5", "w") as f:
        full = f.create_dataset("full", data=(rng.random((12, 20, 22)) * 1000).astype(np.uint16))
        full.attrs["element_size_um"] = [0.398, 0.398, 0.398]
        binned = f.create_dataset("binned", data=(rng.random((6, 10, 11)) * 1000).astype(np.uint16))
        binned.attrs["element_size_um"] = [0.796, 0.796, 0.796]
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("two.h5").run()
    no_exception(at)

    def shown():
        return sorted(n.value for n in at.number_input
                      if n.label.startswith("voxel size") and "_add_file_" in (n.key or ""))

    assert at.selectbox(key=state.k(state.READ_DATASET, "file")).value == "/full" and shown() == [0.398] * 3
    at.selectbox(key=state.k(state.READ_DATASET, "file")).select("/binned").run()
    no_exception(at)
    assert shown() == [0.796] * 3
    names = [t.value for t in at.text_input if t.label == "Name" and "_add_file_" in (t.key or "")]
    assert names == ["two binned"]  # two datasets of one file, two names
    at.button(key=state.k(state.ADD_SUBMIT, "file")).click().run()
    no_exception(at)
    [s] = empty_ws.list_samples()
    assert (s.name, s.input.dataset, s.spacing) == ("two binned", "/binned", (0.796, 0.796, 0.796))


def test_readable_datasets_come_first_and_small_files_say_their_size(empty_ws, env):
    """QA: a file with a 4D and a 2D dataset opened on the 4D one, an error, though the 2D one reads; a 400-byte
    file was listed as 0.0 MB."""
    import h5py

    from ui.confine import file_size_text

    assert [file_size_text(n) for n in (400, 12_345, 1_806_670, 5_400_256_000)] == [
        "400 bytes", "12 kB", "1.8 MB", "5.4 GB"]
    with h5py.File(env / "data" / "mixed.h5", "w") as f:
        f.create_dataset("vol4d", data=np.zeros((3, 8, 20, 20), np.uint8))
        f.create_dataset("img2d", data=(np.random.default_rng(0).random((30, 40)) * 255).astype(np.uint8))
    (env / "data" / "tiny.npy").write_bytes(b"x" * 400)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert "tiny.npy  (400 bytes)" in at.selectbox(key=state.k(state.ADD_FILE, "root")).options
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("mixed.h5").run()
    no_exception(at)
    box = at.selectbox(key=state.k(state.READ_DATASET, "file"))
    assert box.value == "/img2d" and box.options[-1].startswith("/vol4d")
    assert not at.error


def test_a_zarr_store_is_offered_as_one_volume(empty_ws, env):
    """A Zarr store in the data folder is read as one volume without the folder toggle; a plain folder keeps it."""
    import zarr

    vol = (np.random.default_rng(2).random((8, 12, 14)) * 1000).astype(np.uint16)
    root = zarr.open_group(str(env / "data" / "scan.zarr"), mode="w")
    root.create_array("0", data=vol, chunks=(4, 6, 7))
    (env / "data" / "slices").mkdir()
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("slices").run()
    no_exception(at)
    assert at.toggle(key=state.k(state.ADD_FILE, "dir", "")) is not None
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("scan.zarr").run()
    no_exception(at)
    assert any(c.value == "A Zarr store: read as one volume." for c in at.caption)
    assert any("8×12×14 voxels" in c.value for c in at.caption)
    at.button(key=state.k(state.ADD_SUBMIT, "file")).click()
    at.run()
    no_exception(at)
    [s] = empty_ws.list_samples()
    np.testing.assert_array_equal(empty_ws.load_volume(s).data, vol)
    assert file_browser.sample_name("scan.ome.zarr") == file_browser.sample_name("a/scan.ome.tif") == "scan"
    assert file_browser.sample_name(".ome.tif") == ".ome" and file_browser.sample_name("x.tif") == "x"
    assert file_browser.sample_name("seg.nii.gz") == file_browser.sample_name("seg.MRC.bz2") == "seg"
    assert file_browser.sample_name("notes.tar.gz") == "notes.tar"  # only a volume format's compression


def _add_from_data_folder(ws, name: str, caption: str, vol, spacing, *, folder: bool = False, at=None):
    """Pick ``name`` in the data folder (read as one volume where ``folder``), check the add form's caption, add it:
    the one sample holds ``vol`` at ``spacing``."""
    at = at or AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select(name).run()
    if folder:
        at.toggle(key=state.k(state.ADD_FILE, "dir", "")).set_value(True).run()
    no_exception(at)
    assert not at.error
    assert any(caption in c.value for c in at.caption), [c.value for c in at.caption]
    at.button(key=state.k(state.ADD_SUBMIT, "file")).click()
    at.run()
    no_exception(at)
    [s] = ws.list_samples()
    assert s.spacing == pytest.approx(spacing)
    np.testing.assert_array_equal(ws.load_volume(s).data, vol)


def test_a_folder_of_esrf_edf_slices_with_their_pixel_size(empty_ws, env):
    """A beamline's reconstruction as a folder of .edf slices: read as one volume, the voxel size from the slices'
    PSize (metres)."""
    from edf_files import edf_frame

    vol = (np.random.default_rng(3).random((6, 12, 9)) * 4000).astype(np.uint16)
    folder = env / "data" / "rec_esrf"
    folder.mkdir()
    for z in range(6):
        (folder / f"rec_{z:04d}.edf").write_bytes(edf_frame(vol[z], "PSize_1 = 3.2e-7 ;\nPSize_2 = 3.2e-7 ;\n"))
    _add_from_data_folder(empty_ws, "rec_esrf", "slices · 6×12×9 voxels (z×y×x) · uint16 · voxel size read from the "
                          "file's metadata (z assumed equal to x), its numbers read as m (PSize, the EDF convention)",
                          vol, (0.32, 0.32, 0.32), folder=True)


@pytest.mark.parametrize("suffix", [".dcm", ""])
def test_a_dicom_series_folder_in_its_slices_order_with_their_voxel_size(empty_ws, env, suffix):
    """A CT series exported as DICOM (file names not in slice order; with the .dcm suffix or, as many exports save
    them, without): read as one volume in the order of the slices' positions, the voxel size from PixelSpacing and
    SliceThickness (mm)."""
    from dicom_files import write_dicom

    vol = (np.random.default_rng(8).random((5, 16, 12)) * 4000).astype(np.uint16)
    folder = env / "data" / "ct_series"
    folder.mkdir()
    for k, z in enumerate([2, 0, 4, 1, 3]):
        write_dicom(folder / f"IMG{k:03d}{suffix}", vol[z], pixel_mm=(0.00045, 0.00045), thickness_mm=0.00045,
                    position_mm=z * 0.00045)
    _add_from_data_folder(empty_ws, "ct_series", "slices · 5×16×12 voxels (z×y×x) · uint16 · voxel size read from "
                          "the file's metadata", vol, (0.45, 0.45, 0.45), folder=True)


def test_a_nifti_volume_with_its_voxel_size_in_the_header_s_unit(empty_ws, env):
    """A .nii.gz (ITK-SNAP, 3D Slicer, nnU-Net): listed, read in (z, y, x) with its voxel size, the mm of its header
    said for the user to check."""
    nib = pytest.importorskip("nibabel")

    vol = (np.random.default_rng(9).random((5, 16, 12)) * 4000).astype(np.uint16)
    img = nib.Nifti1Image(vol.T, np.diag([0.0004, 0.0004, 0.0008, 1.0]))
    img.header.set_xyzt_units("mm")
    nib.save(img, str(env / "data" / "ct.nii.gz"))
    _add_from_data_folder(empty_ws, "ct.nii.gz", "nifti · 5×16×12 voxels (z×y×x) · uint16 · voxel size read from the "
                          "file's metadata, its numbers read as mm (the header's unit): CHECK IT below", vol,
                          (0.8, 0.4, 0.4))
    assert empty_ws.list_samples()[0].name == "ct"


def test_an_mrc_stack_with_its_voxel_size_in_angstrom(empty_ws, env):
    """An IMOD-aligned FIB-SEM stack saved as .mrc: listed, read with its voxel size (Å in the header)."""
    mrcfile = pytest.importorskip("mrcfile")

    vol = (np.random.default_rng(10).random((5, 16, 12)) * 4000).astype(np.uint16)
    with mrcfile.new(str(env / "data" / "aligned.mrc")) as m:
        m.set_data(vol)
        m.voxel_size = (50.0, 50.0, 100.0)
    # (QA: the Å the numbers are read in was said by the command line only)
    _add_from_data_folder(empty_ws, "aligned.mrc", "mrc · 5×16×12 voxels (z×y×x) · uint16 · voxel size read from the "
                          "file's metadata, its numbers read as Å (the MRC convention)", vol, (0.01, 0.005, 0.005))


def test_a_zeiss_txm_reconstruction_with_its_voxel_size_and_a_projection_file_refused(empty_ws, env):
    """A Zeiss Xradia .txm picked in the data folder: read with the voxel size it states; a .txrm beside it (the
    projections) is listed and refused in one sentence saying what to open, with no Add button."""
    from cfb_files import write_txm

    vol = (np.random.default_rng(4).random((6, 64, 64)) * 60000).astype(np.uint16)
    write_txm(env / "data" / "recon.txm", vol, 0.064)
    write_txm(env / "data" / "tomo.txrm", vol, 0.064)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("tomo.txrm").run()
    no_exception(at)
    assert [e.value for e in at.error] == [
        "tomo.txrm is a Zeiss Xradia .txrm file: the projections (radiographs) of a scan, not a volume; open the "
        "reconstructed .txm (or the reconstruction exported as TIFF)."]
    assert not [b for b in at.button if b.key == state.k(state.ADD_SUBMIT, "file")]  # nothing to add
    _add_from_data_folder(empty_ws, "recon.txm", "txm · 6×64×64 voxels (z×y×x) · uint16 · voxel size read from "
                          "the file's metadata", vol, (0.064, 0.064, 0.064), at=at)


def test_an_sem_image_and_a_skyscan_folder_of_bmp_slices(empty_ws, env):
    """A lone PNG (an SEM cross-section) is a 1-slice volume whose voxel size the user gives (a JPEG too, said to be
    lossy); a folder of NRecon BMP slices takes its voxel size from the reconstruction log beside them, and the
    caption says which."""
    from PIL import Image

    rng = np.random.default_rng(5)
    Image.fromarray((rng.random((40, 60)) * 255).astype(np.uint8)).save(env / "data" / "sem.png")
    rec = env / "data" / "cathode_rec"
    rec.mkdir()
    vol = (rng.random((6, 20, 24)) * 255).astype(np.uint8)
    for z in range(6):
        Image.fromarray(vol[z]).save(rec / f"cathode_rec{z:08d}.bmp")
    (rec / "cathode_rec.log").write_text("[Reconstruction]\nPixel Size (um)=0.45\n")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("sem.png").run()
    no_exception(at)
    assert not at.error
    assert any("image · 1×40×60 voxels (z×y×x) · uint8 · no voxel size in the file: 1 µm assumed, CHECK IT below"
               in c.value for c in at.caption)
    assert not at.warning
    Image.fromarray((rng.random((40, 60)) * 255).astype(np.uint8)).save(env / "data" / "sem.jpg")
    at.run()  # the folder listed again
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("sem.jpg").run()
    no_exception(at)
    assert [w.value for w in at.warning] == [
        "sem.jpg is a JPEG: its lossy compression moves grey values near edges, where the phases meet; export the "
        "image as TIFF or PNG from the microscope's software where you can."]
    _add_from_data_folder(empty_ws, "cathode_rec", "slices · 6×20×24 voxels (z×y×x) · uint8 · voxel size read from "
                          "the SkyScan log cathode_rec.log beside the slices", vol, (0.45, 0.45, 0.45), folder=True,
                          at=at)


def test_add_file_downsampled(empty_ws, env):
    """The file's voxel size is entered; the sample stores the analysed one and loads the coarse grid."""
    data = env / "data"
    vol = (np.random.default_rng(1).random((20, 24, 32)) * 1000).astype(np.uint16)
    at = _pick(data, "fine.tif", vol, (0.2, 0.2, 0.2))
    key = state.k(state.ADD_DOWNSAMPLE, "file", file_browser.path_token(data / "fine.tif"))
    picker = at.selectbox(key=key)
    assert picker.value == 1
    assert list(picker.options) == ["1 (none)", "2 (blocks of 2×2×2 voxels averaged)"]  # 3: under 8 planes
    picker.select(2).run()
    assert any(c.value == "Loaded as 10×12×16 voxels (z×y×x), each 2 times the file's voxel size."
               for c in at.caption)
    at.button(key=state.k(state.ADD_SUBMIT, "file")).click()
    at.run()
    no_exception(at)
    [s] = empty_ws.list_samples()
    assert s.downsample == 2 and s.spacing == (0.4, 0.4, 0.4)
    assert empty_ws.load_volume(s).shape == (10, 12, 16)
    assert _catalogue(at)["size (voxels)"][0] == "20×24×32 → 10×12×16 (downsampled by 2)"
    assert any("Downsampled by 2 when loaded" in c.value and "0.2 × 0.2 × 0.2 µm" in c.value for c in at.caption)
    assert len(at.image) == 3 and "10×12×16 voxels" in [c.value for c in at.caption if "display range" in c.value][0]


def test_upload_a_small_volume(empty_ws):
    buf = io.BytesIO()
    np.save(buf, (np.arange(8 * 9 * 10) % 97).astype(np.uint16).reshape(8, 9, 10))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.file_uploader(key=state.ADD_UPLOAD).upload("tiny.npy", buf.getvalue(), "application/octet-stream")
    at.run()
    no_exception(at)
    assert any("8×9×10 voxels" in c.value and "CHECK IT" in c.value for c in at.caption)
    at.button(key=state.k(state.ADD_SUBMIT, "upload")).click()
    at.run()
    no_exception(at)
    [s] = empty_ws.list_samples()
    assert s.name == "tiny" and "uploads" in s.source
    assert empty_ws.load_volume(s).shape == (8, 9, 10)


def test_edit_details_and_delete_with_confirmation(seeded_ws):
    victim = seeded_ws.list_samples()[1]
    analysis_dirs = [seeded_ws.analysis_dir(a.id) for a in seeded_ws.list_analyses(victim.id)]
    assert analysis_dirs and all(d.is_dir() for d in analysis_dirs)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = victim.id
    at.query_params["sample"] = str(victim.id)  # opened from a link to it
    at.run()
    no_exception(at)
    assert at.header[0].value == victim.name
    scope = ("edit", victim.id)
    at.text_input(key=state.k(state.META_NAME, *scope)).input("renamed")
    at.number_input(key=state.k(state.META_SPACING, *scope, "z")).set_value(0.8)
    at.button(key=state.k(state.EDIT_SAVE, victim.id)).click()
    at.run()
    no_exception(at)
    s = seeded_ws.get_sample(victim.id)
    assert s.name == "renamed" and s.spacing[0] == 0.8
    assert any("voxel size" in w.value and "Rerun" in w.value for w in at.warning)
    # the catalogue says it too (the analysis ran at the old voxel size)
    status = _catalogue(at).set_index("id").loc[victim.id, "status"]
    assert status.startswith("analysed (") and status.endswith("particles), before the voxel size changed: rerun")
    # delete: the button is disabled until confirmed
    del_btn = at.button(key=state.k(state.DELETE_BUTTON, victim.id))
    assert del_btn.disabled
    at.checkbox(key=state.k(state.DELETE_CONFIRM, victim.id)).check().run()
    at.button(key=state.k(state.DELETE_BUTTON, victim.id)).click()
    at.run()
    no_exception(at)
    assert victim.id not in [x.id for x in seeded_ws.list_samples()]
    assert not any(d.exists() for d in analysis_dirs)
    assert "renamed" not in list(_catalogue(at)["name"])
    assert any("Deleted sample" in m.value for m in at.success)
    # the link named the deleted sample: not read back as one deleted since (QA walk 16: "Sample #2, named in the
    # link, is no longer in the workspace" right after the user deleted it)
    assert not [w for w in at.warning if "named in the link" in w.value]
    assert at.query_params.get("sample") != str(victim.id)


def test_deleting_a_sample_with_a_queued_or_running_job_says_so_and_cancels_them(seeded_ws):
    """QA: a sample deleted while its analysis ran; the confirmation said nothing of the job, which then failed
    cryptically. It names each queued or running job of the sample, and deleting asks them to stop first (a queued
    one never starts; a running one stops at its next progress report). Another sample's job is left alone."""
    import os
    import socket

    from core.jobs import JobStore

    victim, other = seeded_ws.list_samples()[1], seeded_ws.list_samples()[0]
    store = JobStore(seeded_ws.root)

    def job(s):
        return store.create("analysis", {"sample_id": s.id, "params": {}}, title=f"Analysis: {s.name}")

    running, queued, elsewhere = job(victim), job(victim), job(other)
    assert store.start(running.id, pid=os.getpid(), host=socket.gethostname())
    at, said = _delete_box(victim)
    assert f"Job #{running.id} (Analysis: {victim.name}) is running on it: deleting the sample cancels it." in said
    assert f"Job #{queued.id} (Analysis: {victim.name}) is queued for it: deleting the sample cancels it." in said
    assert f"Job #{elsewhere.id}" not in said
    at.checkbox(key=state.k(state.DELETE_CONFIRM, victim.id)).check().run()
    at.button(key=state.k(state.DELETE_BUTTON, victim.id)).click().run()
    no_exception(at)
    assert victim.id not in [x.id for x in seeded_ws.list_samples()]
    assert f"Asked jobs #{queued.id}, #{running.id} to stop." in " ".join(m.value for m in at.success)
    ran = store.get(running.id)
    assert ran.cancel_requested and ran.state == "running"  # cooperative: it stops at its next progress report
    assert store.get(queued.id).state == "cancelled"
    left = store.get(elsewhere.id)
    assert left.state == "queued" and not left.cancel_requested


def _delete_box(sample):
    """The Samples page on ``sample``, and what its *Delete this sample* expander says."""
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = sample.id
    at.run()
    no_exception(at)
    [box] = [e for e in at.expander if e.label.startswith("Delete this sample")]
    return at, " ".join(m.value for m in box.markdown)


def test_a_sample_without_jobs_says_none_in_its_delete_confirmation(seeded_ws):
    _, said = _delete_box(seeded_ws.list_samples()[1])
    assert "with its 1 analysis and its files" in said and "Job #" not in said


def test_unreadable_sample_shows_one_sentence_and_can_still_be_deleted(empty_ws, env):
    s = empty_ws.add_sample("moved", str(env / "data" / "gone.tif"))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    no_exception(at)
    [err] = [e.value for e in at.error]
    assert err.startswith("Cannot read the volume of 'moved'") and "gone.tif" in err and "\n" not in err
    assert not at.image
    at.checkbox(key=state.k(state.DELETE_CONFIRM, s.id)).check().run()
    at.button(key=state.k(state.DELETE_BUTTON, s.id)).click().run()
    no_exception(at)
    assert empty_ws.list_samples() == []


def test_browser_shows_folders_relative_to_the_data_folder(empty_ws, env):
    data = env / "data"
    (data / "batch" / "day1").mkdir(parents=True)
    save_tiff(data / "batch" / "day1" / "scan.tif", np.ones((4, 6, 8), np.uint16), (1.0, 1.0, 1.0))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert any(c.value == "Folder: the top of the data folder" for c in at.caption)
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("batch").run()
    at.button(key=state.BROWSE_OPEN).click().run()
    at.button(key=state.BROWSE_OPEN).click().run()  # into batch/day1 (its only entry is preselected)
    no_exception(at)
    assert any(c.value == "Folder: `batch/day1` in the data folder" for c in at.caption)
    assert not any(str(env) in c.value for c in at.caption)
    at.button(key=state.BROWSE_UP).click().run()
    assert any(c.value == "Folder: `batch` in the data folder" for c in at.caption)


def test_catalogue_status_comes_right_after_the_name_whatever_the_path_length(empty_ws, env):
    from ui.tables import catalogue_table

    deep = env / "data" / ("a-very-long-folder-name-from-the-beamline-" * 4) / "run_0001"
    deep.mkdir(parents=True)
    save_tiff(deep / "scan.tif", np.zeros((8, 8, 8), np.uint16), 0.5)
    empty_ws.add_sample("scan", str(deep / "scan.tif"), spacing=0.5)
    table = catalogue_table(empty_ws)
    assert list(table.columns[:3]) == ["id", "name", "status"] and table["status"][0] == "not analysed"


def test_catalogue_size_of_a_sample_added_without_its_shape_is_the_analysed_one(empty_ws, env):
    import warnings

    from core.runner import run_analysis
    from core.synth import demo_electrode
    from ui.tables import catalogue_table

    e = demo_electrode("pristine", rng=0, shape=(16, 40, 48))
    save_tiff(env / "data" / "scan.tif", e.greyscale[5:6], e.spacing)  # one slice
    s = empty_ws.add_sample("scan", str(env / "data" / "scan.tif"), spacing=e.spacing)  # as the Python API adds it
    assert catalogue_table(empty_ws)["size (voxels)"][0] == ""  # the file is not opened for the table
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_analysis(empty_ws, s.id)
    assert catalogue_table(empty_ws)["size (voxels)"][0] == "1×40×48 (as analysed)"


def test_crop_preview_of_an_already_segmented_file_is_in_its_phase_colours():
    from core.codes import CBD, NMC
    from ui.render import PHASE_COLOURS
    from ui.samples_view import crop_preview

    plane = np.zeros((40, 50), np.uint8)
    plane[10:30, 10:20], plane[10:30, 30:40] = 1, 2
    rgb = crop_preview(plane, (0, 40), (0, 25), "0=pore,1=nmc,2=cbd")
    assert tuple(rgb[20, 15]) == tuple(PHASE_COLOURS[NMC])  # inside the box: the phase's colour
    assert tuple(rgb[20, 35]) == tuple((np.asarray(PHASE_COLOURS[CBD]) * 0.35).astype(np.uint8))  # outside: dimmed
    assert tuple(rgb[20, 24]) == (255, 210, 0)  # the box's outline
    grey = crop_preview(plane, (0, 40), (0, 25))
    assert grey[20, 15, 0] == grey[20, 15, 1] == grey[20, 15, 2]  # no map: grey


def test_a_fill_outside_the_field_of_view_is_pointed_out_before_and_after_the_analysis(empty_ws, env):
    """The corners outside a circular field of view, written as 0: the sample's page says so (and what to do)
    before any analysis, the Segment page after it (from the analysis's record)."""
    from core.runner import run_analysis
    from core.synth import demo_electrode

    g = demo_electrode("cycled-1C", rng=2, shape=(48, 48, 48)).greyscale.copy()
    yy, xx = np.mgrid[:48, :48]
    g[:, (yy - 23.5) ** 2 + (xx - 23.5) ** 2 > 24 ** 2] = 0
    save_tiff(env / "data" / "fov.tif", g, (0.4, 0.4, 0.4))
    s = empty_ws.add_sample("fov", str(env / "data" / "fov.tif"), spacing=0.4)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    [w] = [w.value for w in at.warning if "fill outside the reconstructed region" in w.value]
    assert "hold exactly 0, the lowest grey value" in w and "Region of interest" in w
    [crop] = [b for b in at.button if b.key == state.k(state.FILL_CROP, s.id)]
    assert crop.label.startswith("Crop to z 0:48, y ") and "the largest box without the fill" in crop.label
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = run_analysis(empty_ws, s.id, empty_ws.load_volume(s))
    assert a.provenance["fill"]["value"] == 0
    seg = AppTest.from_file(page("2_segment.py"), default_timeout=TIMEOUT)
    seg.session_state[state.SAMPLE_ID] = s.id
    seg.run()
    no_exception(seg)
    # the Segment page says it too, with the same button, where the analysis is run
    assert [w for w in seg.warning if w.value.startswith(f"{a.provenance['fill']['face_share']:.0%} of the voxels")]
    assert [b for b in seg.button if b.key == state.k(state.FILL_CROP, s.id)]
    # the histogram's bars leave the fill out (QA walk 9: its spike flattened every other bar)
    from apphelpers import layer_data

    hist = layer_data(seg, "bar", 0)
    data = g[g != 0]
    assert hist["count"].sum() <= data.size and hist["grey_lo"].min() >= data.min() - 1e-6
    assert any(c.value.endswith("The fill outside the field of view (grey value 0) is left out of the bars.")
               for c in seg.caption)
    # the fill is held as no material: the phase shares are the field of view's, and the page says why
    fill = a.provenance["fill"]
    assert fill["as_edge"] and fill["region_voxels"] == int((g == 0).sum())
    phases = empty_ws.load_phases(a)
    inside = 48**3 - fill["region_voxels"]
    shares = {m.label: m.value for m in seg.metric}
    assert shares["pore (field of view)"] == f"{(np.count_nonzero(phases == 0) - fill['region_voxels']) / inside:.1%}"
    assert shares["NMC (field of view)"] == f"{np.count_nonzero(phases == 2) / inside:.1%}"
    assert "pore (volume)" not in shares
    # the preview slice: the fill left uncoloured and out of the slice's shares
    assert {"pore (this slice)", "NMC (this slice)"} <= set(shares)
    assert [c for c in seg.caption if c.value.startswith("Shares of this slice's field of view: the fill outside it")]
    assert any("the fill outside the field of view uncoloured" in c.caption for i in seg.image for c in i.proto.imgs)
    assert [c for c in seg.caption if c.value.startswith(f"Outside the field of view: {fill['region_voxels']:,} voxels")]
    part = AppTest.from_file(page("3_particles.py"), default_timeout=TIMEOUT)
    part.session_state[state.SAMPLE_ID] = s.id
    part.run()
    no_exception(part)
    assert [m for m in part.metric if m.label == "touching the volume edge or the fill"]
    # the button crops the sample to the box: the fill is gone from what the next analysis reads; clicked on the
    # Segment page, the thresholds start again from the cropped volume (QA walk 10: they fell to 0 | 0 there)
    seg.button(key=state.k(state.FILL_CROP, s.id)).click().run()
    no_exception(seg)
    low, high = (seg.slider(key=state.k(b, s.id)).value for b in (state.SEG_LOW, state.SEG_HIGH))
    assert 0 < low < high and not seg.error
    at.run()
    no_exception(at)
    s = empty_ws.get_sample(s.id)
    (z0, z1), (y0, y1), (x0, x1) = s.input.crop
    assert (z0, z1) == (0, 48) and y1 - y0 >= 30 and x1 - x0 >= 30
    assert not (empty_ws.load_volume(s) == 0).any()
    assert _catalogue(at)["size (voxels)"][0] == f"{z1 - z0}×{y1 - y0}×{x1 - x0} (cropped)"  # added without a shape
    assert not [w for w in at.warning if "fill outside the reconstructed region" in w.value]
    assert any("another region of interest" in w.value for w in at.warning)  # the analysis ran on the whole
    # the Segment page: the sample mended, so the warning is about the latest analysis, without a button
    seg = AppTest.from_file(page("2_segment.py"), default_timeout=TIMEOUT)
    seg.session_state[state.SAMPLE_ID] = s.id
    seg.run()
    no_exception(seg)
    [w] = [w.value for w in seg.warning if "fill outside" in w.value]
    assert w.startswith("The latest analysis read a fill outside the field of view") and "Rerun the analysis" in w
    assert not [b for b in seg.button if b.key == state.k(state.FILL_CROP, s.id)]


def test_a_big_sample_read_lazily_gets_the_fill_warning_and_the_box_of_its_middle_plane(empty_ws, env, monkeypatch):
    """A sample too big to hold whole (the rule monkeypatched): the fill test on its middle plane, and the crop
    without the fill from that plane, over every plane; after the crop the volume holds none."""
    import zarr

    from core.chunked import LazyArray
    from core.synth import demo_electrode
    from ui import cache

    monkeypatch.setattr(cache, "LAZY_VOXELS", 1000)
    g = demo_electrode("cycled-1C", rng=5, shape=(24, 64, 64)).greyscale.copy()
    yy, xx = np.mgrid[:64, :64]
    g[:, (yy - 31.5) ** 2 + (xx - 31.5) ** 2 > 32 ** 2] = 0
    path = env / "data" / "big.zarr"
    zarr.create_array(str(path), shape=g.shape, chunks=(8, 32, 32), dtype=g.dtype)[:] = g
    s = empty_ws.add_sample("big", str(path), spacing=0.5)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    assert isinstance(cache.volume(cache.VolumeRef.of(empty_ws, s)), LazyArray)
    assert [w for w in at.warning if "fill outside the reconstructed region" in w.value]
    at.button(key=state.k(state.FILL_CROP, s.id)).click().run()
    no_exception(at)
    s = empty_ws.get_sample(s.id)
    (z0, z1), (y0, y1), (x0, x1) = s.input.crop
    assert (z0, z1) == (0, 24) and not (g[:, y0:y1, x0:x1] == 0).any() and min(y1 - y0, x1 - x0) >= 40
    assert not [w for w in at.warning if "fill outside the reconstructed region" in w.value]


def test_an_upload_is_checked_for_a_suffix_the_dashboard_reads_or_explains():
    """The upload's suffix check names only what is read; a Zeiss projection file passes it, so that the next step
    says why it is not a volume (test_a_zeiss_txm_...: the sentence)."""
    from ui import samples_view
    from ui.confine import EXPLAINED_SUFFIXES, READ_SUFFIXES

    with pytest.raises(ValueError) as info:
        samples_view._check_upload("scan.xyz", 10)
    msg = str(info.value)
    assert msg.startswith("scan.xyz is not a volume file: its suffix (.xyz) is not one of .tif, ")
    assert ".txm" in msg and not any(s in msg for s in EXPLAINED_SUFFIXES) and msg.count(",") == len(READ_SUFFIXES) - 1
    samples_view._check_upload("tomo.TXRM", 10)  # passes: detect_format refuses it with its reason
    with pytest.raises(ValueError, match=r"^recon\.txm is empty \(0 bytes\)\.$"):
        samples_view._check_upload("recon.txm", 0)


def test_an_sem_image_with_its_pixel_size_and_its_data_bar_left_out(empty_ws, env):
    """A Helios TIFF: the pixel size from its FEI tag (said so), its data bar (the rows its tag states) said in a
    warning and left out by the region of interest, on at the box without it; the sample holds the image alone.
    A PNG export: the bar found in its pixels; the user may switch the crop off and add the whole image."""
    from PIL import Image
    from sem_files import fei_text, with_bar, write_sem_tiff

    img = (np.random.default_rng(6).normal(120, 30, (200, 300))).clip(0, 255).astype(np.uint8)
    write_sem_tiff(env / "data" / "helios.tif", with_bar(img, 40), fei=fei_text(2.5e-8, 300, 200, 40))
    Image.fromarray(with_bar(img, 30)).save(env / "data" / "export.png")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("helios.tif").run()
    no_exception(at)
    assert any("tiff · 1×240×300 voxels (z×y×x) · uint8 · pixel size read from the FEI / Thermo Fisher SEM metadata "
               "(depth taken equal to it)" in c.value for c in at.caption)
    assert [w.value for w in at.warning] == [
        "The bottom 40 rows of helios.tif (y 200:240) are the microscope's data bar, as its metadata states: crop "
        "them out, or its text and scale bar are analysed as particles in pore. The region of interest below leaves "
        "them out: check it there."]
    token = file_browser.path_token(env / "data" / "helios.tif")
    assert at.toggle(key=state.k(state.ADD_CROP, "file", token, "on")).value
    assert at.slider(key=state.k(state.ADD_CROP, "file", token, "y")).value == (0, 200)
    assert any(c.value == "Cropped to 1×200×300 voxels (z×y×x)." for c in at.caption)
    at.button(key=state.k(state.ADD_SUBMIT, "file")).click()
    at.run()
    no_exception(at)
    [s] = empty_ws.list_samples()
    assert s.spacing == pytest.approx((0.025, 0.025, 0.025))
    assert s.source_options["read"]["crop"] == [[0, 1], [0, 200], [0, 300]]
    np.testing.assert_array_equal(empty_ws.load_volume(s).data, img[None])

    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("export.png").run()
    no_exception(at)
    assert [w.value for w in at.warning if "single slice across" not in w.value] == [  # (the sample added above)
        "The bottom 30 rows of export.png (y 200:230) look like the microscope's data bar (one grey value with a "
        "little text, unlike the image above): crop them out, or its text and scale bar are analysed as particles "
        "in pore. The region of interest below leaves them out: check it there."]
    token = file_browser.path_token(env / "data" / "export.png")
    # no pixel size in a PNG: the bar's scale bar (30 pixels) shown, and its printed length sets the voxel size
    assert any(i.proto.imgs[0].caption == "The data bar, its scale bar outlined in yellow" for i in at.image)
    assert any("a scale bar 30 pixels long (y 218, x 240:270)" in c.value for c in at.caption)
    at.number_input(key=state.k(state.ADD_SCALE_BAR, "file", token)).set_value(1.5).run()
    scope = ("add", "file", token)
    assert [at.number_input(key=state.k(state.META_SPACING, *scope, a)).value for a in "zyx"] == [0.05] * 3
    assert any(c.value == "Pixel size: 1.5 µm / 30 pixels = 0.05 µm, set above." for c in at.caption)
    at.toggle(key=state.k(state.ADD_CROP, "file", token, "on")).set_value(False).run()
    at.button(key=state.k(state.ADD_SUBMIT, "file")).click()
    at.run()
    no_exception(at)
    added = [x for x in empty_ws.list_samples() if x.name.startswith("export")]
    assert len(added) == 1 and "crop" not in added[0].source_options["read"]
    assert added[0].spacing == pytest.approx((0.05, 0.05, 0.05))
    assert empty_ws.load_volume(added[0]).data.shape == (1, 230, 300)
    # a FIB-SEM slice folder (Auto Slice & View): the slice thickness is not in the images
    asv = env / "data" / "asv"
    asv.mkdir()
    for z in range(3):
        write_sem_tiff(asv / f"slice_{z:03d}.tif", with_bar(img, 40), fei=fei_text(5e-9, 300, 200, 40))
    at.run()  # the data folder listed again
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("asv").run()
    at.toggle(key=state.k(state.ADD_FILE, "dir", "")).set_value(True).run()
    no_exception(at)
    assert any("slices · 3×240×300 voxels (z×y×x) · uint8 · pixel size read from the FEI / Thermo Fisher SEM metadata "
               "(the slice thickness, z, taken equal to it: CHECK IT below)" in c.value for c in at.caption)
    assert any(w.value.startswith("The bottom 40 rows of asv (y 200:240) are the microscope's data bar")
               for w in at.warning)
    # the sample added with its bar: said on its page (not as a fill), with a button that crops it out
    sid = added[0].id
    at.session_state[state.SAMPLE_ID] = sid  # what the sidebar's picker (app.py) does
    at.run()
    assert any(w.value.startswith("The bottom 30 rows of the image (y 200:230) look like the microscope's data bar")
               for w in at.warning)
    assert not any("fill outside" in w.value for w in at.warning)
    at.button(key=state.k(state.BAR_CROP, sid)).click().run()
    no_exception(at)
    assert empty_ws.get_sample(sid).source_options["read"]["crop"] == [[0, 1], [0, 200], [0, 300]]
    assert not any(w.value.startswith("The bottom 30 rows of the image") for w in at.warning)  # the add form's stays
    assert not [b for b in at.button if b.key == state.k(state.BAR_CROP, sid)]


def test_an_uncorrected_fib_cross_section_tilt_is_said_and_its_pixel_height_offered(empty_ws, env):
    """A Helios cross-section saved with the tilt correction off: the add form says the stage tilt and the pixel
    height on the face; its button sets the y voxel size, which the sample keeps. With the correction on: silent.
    A Zeiss Atlas export: the pixel size from its Fibics tag."""
    from sem_files import fei_text, write_sem_tiff

    img = (np.random.default_rng(6).normal(120, 30, (200, 300))).clip(0, 255).astype(np.uint8)
    write_sem_tiff(env / "data" / "cross_section.tif", img, fei=fei_text(2.5e-8, 300, 200, 0, "no"))
    write_sem_tiff(env / "data" / "corrected.tif", img, fei=fei_text(2.5e-8, 300, 200, 0))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("corrected.tif").run()
    no_exception(at)
    assert not at.warning
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("cross_section.tif").run()
    no_exception(at)
    assert [w.value for w in at.warning] == [
        "The stage was tilted 52° and the microscope's tilt correction off when cross_section.tif was taken: on a "
        "FIB cross-section face seen at that tilt, heights are foreshortened, and the pixel height is 0.025 µm / sin 52° "
        "= 0.03173 µm, not the file's 0.025 µm. Only you know whether it is: a tilted view of the surface is "
        "foreshortened otherwise."]
    token = file_browser.path_token(env / "data" / "cross_section.tif")
    scope = ("add", "file", token)
    button = at.button(key=state.k(state.ADD_TILT, "file", token))
    assert button.label == "It is a cross-section: pixel height y = 0.03173 µm" and not button.disabled
    button.click().run()
    no_exception(at)
    dy = 0.025 / np.sin(np.radians(52.0))
    assert [at.number_input(key=state.k(state.META_SPACING, *scope, a)).value for a in "zyx"] == pytest.approx(
        [0.025, dy, 0.025], rel=1e-9)
    assert at.button(key=state.k(state.ADD_TILT, "file", token)).disabled
    assert any(c.value == "Pixel height set for a face seen at 52°: y 0.03173 µm." for c in at.caption)
    at.button(key=state.k(state.ADD_SUBMIT, "file")).click().run()
    no_exception(at)
    [s] = empty_ws.list_samples()
    assert s.spacing == pytest.approx((0.025, dy, 0.025), rel=1e-9)
    # a Zeiss Atlas (Fibics) export: its pixel size from tag 51023, said so
    from sem_files import fibics_xml

    write_sem_tiff(env / "data" / "atlas.tif", img, fibics=fibics_xml(0.005))
    at.run()
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("atlas.tif").run()
    no_exception(at)
    assert any("pixel size read from the Zeiss Atlas (Fibics) metadata (depth taken equal to it)" in c.value
               for c in at.caption)
    token = file_browser.path_token(env / "data" / "atlas.tif")
    assert [at.number_input(key=state.k(state.META_SPACING, "add", "file", token, a)).value for a in "zyx"] == \
        pytest.approx([0.005] * 3)


def test_a_stack_whose_slices_are_shifted_is_said_on_the_samples_and_segment_pages(empty_ws, env):
    """A FIB-SEM stack not aligned (each slice shifted 0.7 / -1.3 pixel against the one before): a warning on the
    sample's page and on the Segment page; an aligned one (the demo electrodes of other tests) says nothing."""
    import tifffile

    from sem_files import fib_stack

    tifffile.imwrite(env / "data" / "unaligned.tif", np.clip(fib_stack((0.7, -1.3), 20.0), 0, 255).astype(np.uint8))
    sample = empty_ws.add_sample("unaligned", str(env / "data" / "unaligned.tif"), spacing=(0.02, 0.02, 0.02))
    for script in (PAGE, page("2_segment.py")):
        at = AppTest.from_file(script, default_timeout=TIMEOUT)
        at.session_state[state.SAMPLE_ID] = sample.id
        at.run()
        no_exception(at)
        [said] = [w.value for w in at.warning if "shifted against one another" in w.value]
        assert said.startswith("The slices are shifted against one another: by a median of 1.5 pixel from one z "
                               "plane to the next (y +0.7, x -1.3; read on 11 pairs of planes)")
        assert at.button(key=state.k(state.ALIGN, sample.id)).label == "Align the slices"


def test_the_slices_are_aligned_with_one_click_and_read_as_they_are_with_another(empty_ws, env):
    """*Align the slices*: the offsets stored with the sample (those core.phases.alignment.slice_shifts measures),
    the warning gone, what was done said, the slices shown aligned; *Use the slices as read*: back as it was. A
    crop saved afterwards drops the alignment (it was measured on the region before) and says so."""
    import tifffile

    from core.phases.alignment import slice_shifts
    from core.runner import run_analysis
    from sem_files import fib_stack
    from ui import cache

    stack = np.clip(fib_stack((0.7, -1.3), 20.0), 0, 255).astype(np.uint8)
    tifffile.imwrite(env / "data" / "unaligned.tif", stack)
    sample = empty_ws.add_sample("unaligned", str(env / "data" / "unaligned.tif"), spacing=(0.02, 0.02, 0.02),
                                 shape=(64, 128, 128))
    run_analysis(empty_ws, sample.id, empty_ws.load_volume(sample))  # before the alignment
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = sample.id
    at.run()
    at.button(key=state.k(state.ALIGN, sample.id)).click().run()
    no_exception(at)
    off = slice_shifts(stack)
    span = np.ptp(np.array(off), axis=0)
    row = _catalogue(at).set_index("id").loc[sample.id]
    assert row["size (voxels)"] == f"64×128×128 → 64×{128 - span[0]}×{128 - span[1]} (slices aligned)"
    assert row["status"].endswith("before the slices' alignment changed: rerun")
    from ui.tables import input_words

    assert input_words(empty_ws.latest_analysis(sample.id)) == ""
    run_analysis(empty_ws, sample.id, empty_ws.load_volume(empty_ws.get_sample(sample.id)))  # aligned
    assert input_words(empty_ws.latest_analysis(sample.id)) == "slices aligned"
    assert any("read the slices aligned otherwise than the sample now says" in w.value for w in at.warning)
    assert empty_ws.get_sample(sample.id).input.align == tuple(off)
    assert not [w for w in at.warning if "shifted against one another" in w.value]
    assert any(m.value.startswith("The 64 slices were aligned: each shifted back by its offset") for m in at.success)
    [info] = [i.value for i in at.info if "slices were aligned" in i.value]
    assert info.endswith("The next analysis reads them so.")
    assert cache.volume(cache.VolumeRef.of(empty_ws, empty_ws.get_sample(sample.id))).shape == \
        (64, 128 - span[0], 128 - span[1])
    at.button(key=state.k(state.UNALIGN, sample.id)).click().run()
    no_exception(at)
    assert empty_ws.get_sample(sample.id).input.align is None
    assert [w for w in at.warning if "shifted against one another" in w.value]
    at.button(key=state.k(state.ALIGN, sample.id)).click().run()
    at.toggle(key=state.k(state.EDIT_CROP_OPEN, sample.id)).set_value(True).run()
    at.slider(key=state.k(state.EDIT_CROP, sample.id, "z")).set_value((8, 64)).run()
    at.button(key=state.k(state.EDIT_CROP_SAVE, sample.id)).click().run()
    no_exception(at)
    s = empty_ws.get_sample(sample.id)
    assert s.input.crop == ((8, 64), (0, 128), (0, 128)) and s.input.align is None
    assert any("The slices' alignment was measured on the region before, so it was dropped" in m.value
               for m in at.success)


def test_the_add_form_stays_open_when_a_sample_appears_meanwhile(empty_ws, env):
    """Open on an empty workspace, the add form stays open while a colleague (or the demo electrodes landing) adds
    a sample (the expander drawn again with another `expanded` comes back collapsed, the form being filled hidden);
    it closes on the sample the user adds."""

    def add_form_open(at) -> bool:
        [box] = [e for e in at.expander if e.label == "Add a sample"]
        return bool(box.proto.expanded)

    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert add_form_open(at)
    empty_ws.add_sample("colleague's", "demo:pristine", spacing=(0.4, 0.4, 0.4),
                        source_options={"shape": [16, 16, 16], "seed": 0})
    at.run()
    no_exception(at)
    assert len(_catalogue(at)) == 1 and add_form_open(at)
    at.button(key=state.k(state.ADD_SUBMIT, "demo")).click().run()
    no_exception(at)
    assert len(empty_ws.list_samples()) == 2 and not add_form_open(at)
    # the form, opened again, proposes a free name rather than say in red that the one just added is taken (QA walk
    # 13: "A sample named 'pristine-224' exists already" right after it was added)
    assert not at.error
    assert at.text_input(key=state.k(state.META_NAME, "add", "demo", "pristine")).value == "pristine (2)"
    # a new session on a workspace with samples: closed
    assert not add_form_open(AppTest.from_file(PAGE, default_timeout=TIMEOUT).run())


def test_an_alignment_that_no_longer_fits_the_file_is_said_with_the_way_out(empty_ws, env):
    """The file replaced by a stack of another depth: the read fails in one sentence naming the mismatch, and *Use
    the slices as read* (shown without a read) makes the sample readable again."""
    import tifffile

    from sem_files import fib_stack

    path = env / "data" / "unaligned.tif"
    stack = np.clip(fib_stack((0.7, -0.6), 20.0), 0, 255).astype(np.uint8)
    tifffile.imwrite(path, stack)
    sample = empty_ws.add_sample("unaligned", str(path), spacing=(0.02, 0.02, 0.02),
                                 source_options={"read": {"align": [[0, 0]] * 64}})
    tifffile.imwrite(path, stack[:32])
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = sample.id
    at.run()
    no_exception(at)
    [error] = [e.value for e in at.error]
    assert error == ("Cannot read the volume of 'unaligned': the alignment holds 64 slice offsets but unaligned.tif "
                     "has 32 z planes as read: align the slices again (after any change of the crop along z).")
    at.button(key=state.k(state.UNALIGN, sample.id)).click().run()
    no_exception(at)
    assert not at.error and empty_ws.get_sample(sample.id).input.align is None


def test_strokes_painted_before_the_alignment_are_said_and_come_back_after_an_undo(empty_ws, env):
    """Brush strokes painted on the slices as read, then the slices aligned: the Segment page's classifier says the
    strokes were painted on the volume read before and are kept aside (none lost); read as before, they are back."""
    import tifffile

    from core.classify import UNPAINTED
    from core.phases.alignment import slice_shifts
    from core.scribbles import Scribbles
    from sem_files import fib_stack

    path = env / "data" / "unaligned.tif"
    stack = np.clip(fib_stack((0.7, -0.6), 20.0), 0, 255).astype(np.uint8)
    tifffile.imwrite(path, stack)
    sample = empty_ws.add_sample("unaligned", str(path), spacing=(0.02, 0.02, 0.02))
    lab = np.full((128, 128), UNPAINTED, np.uint8)
    lab[:20, :20], lab[60:80, 60:80] = 0, 2
    painted = Scribbles.empty((64, 128, 128)).with_slice(0, 32, lab)
    empty_ws.save_scribbles(sample.id, painted)
    empty_ws.update_sample(sample.id, source_options={"read": {"align": slice_shifts(stack)}})

    def segment_page():
        at = AppTest.from_file(page("2_segment.py"), default_timeout=TIMEOUT)
        at.session_state[state.SAMPLE_ID] = sample.id
        at.run()
        at.radio(key=state.SEG_METHOD).set_value("classifier").run()
        no_exception(at)
        return at

    at = segment_page()
    [said] = [i.value for i in at.info if "brush strokes saved for this sample" in i.value]
    assert said.startswith("The brush strokes saved for this sample were painted on its volume as read before "
                           "(64×128×128 voxels, before its crop or its slices' alignment changed)")
    assert any("0 voxels painted on this slice" in c.value for c in at.caption)
    at.button(key=state.k(state.UNALIGN, sample.id)).click().run()
    at = segment_page()
    assert not [i for i in at.info if "brush strokes saved for this sample" in i.value]
    assert empty_ws.load_scribbles(sample.id).digest() == painted.digest()
    assert any("400 pore, 0 CBD, 400 NMC voxels painted on 1 slice." == c.value for c in at.caption)


def test_an_already_segmented_stack_whose_slices_are_shifted_is_said_and_aligned(empty_ws, env):
    """A FIB-SEM stack segmented elsewhere before it was aligned (phase codes 0/1/2, each slice shifted by whole
    pixels): the warning and the button on its page too; aligned, its phases are read shifted back."""
    import tifffile

    from core.phases.alignment import slice_shifts
    from core.synth import demo_electrode

    phases = demo_electrode("cycled-5C", rng=3, shape=(64, 128, 128)).phases.astype(np.uint8)
    m = 60
    walk = np.array([[k // 2, -(k // 3)] for k in range(64)])  # 0.5 / -0.33 pixel a slice, in whole pixels
    stack = np.stack([np.pad(phases[k], m, mode="reflect")[m - walk[k, 0]:m - walk[k, 0] + 128,
                                                          m - walk[k, 1]:m - walk[k, 1] + 128] for k in range(64)])
    tifffile.imwrite(env / "data" / "labels.tif", stack)
    sample = empty_ws.add_sample("labels", str(env / "data" / "labels.tif"), spacing=0.4,
                                 source_options={"phase_map": "0=pore,1=cbd,2=nmc"})
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = sample.id
    at.run()
    no_exception(at)
    assert [w for w in at.warning if w.value.startswith("The slices are shifted against one another")]
    at.button(key=state.k(state.ALIGN, sample.id)).click().run()
    no_exception(at)
    off = np.array(empty_ws.get_sample(sample.id).input.align)
    np.testing.assert_array_equal(off, np.array(slice_shifts(stack)))
    err = (off - walk)[8:]  # from the planes that hold particles on
    assert np.abs(err - np.median(err, axis=0)).max() <= 1.5
    assert not [w for w in at.warning if w.value.startswith("The slices are shifted against one another")]


def test_a_second_sample_of_the_same_name_is_refused(empty_ws, env):
    """QA walk 7: two samples could be called "calendered"; the Compare page, its charts and reports tell
    electrodes apart by name.  A new sample is proposed a free name; a taken one is refused, also on renaming."""
    vol = (np.arange(4 * 8 * 8) % 7).astype(np.uint16).reshape(4, 8, 8)
    np.save(env / "data" / "a.npy", vol)
    first = empty_ws.add_sample("pristine", str(env / "data" / "a.npy"), spacing=0.4)
    second = empty_ws.add_sample("other", str(env / "data" / "a.npy"), spacing=0.4)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = second.id
    at.run()
    no_exception(at)
    name = at.text_input(key=state.k(state.META_NAME, "add", "demo", "pristine"))
    assert name.value == "pristine (2)"
    name.set_value(" Pristine ").run()  # case and spaces aside, the same name
    said = "A sample named 'Pristine' exists already: give this one another name"
    assert any(e.value.startswith(said) for e in at.error)
    assert at.button(key=state.k(state.ADD_SUBMIT, "demo")).disabled
    at.text_input(key=state.k(state.META_NAME, "edit", second.id)).set_value("pristine").run()
    assert at.button(key=state.k(state.EDIT_SAVE, second.id)).disabled
    at.text_input(key=state.k(state.META_NAME, "edit", second.id)).set_value("other").run()
    # only the demo form's name, still taken, is refused now
    assert [e.value for e in at.error] == [e.value for e in at.error if e.value.startswith(said)] and len(at.error) == 1
    assert empty_ws.get_sample(first.id).name == "pristine"
    # a name left empty takes the demo's, made free (QA walk 12: it took a taken name, unchecked)
    name.set_value("").run()
    no_exception(at)
    assert not at.error
    at.button(key=state.k(state.ADD_SUBMIT, "demo")).click().run()
    no_exception(at)
    assert sorted(x.name for x in empty_ws.list_samples()) == ["other", "pristine", "pristine (2)"]
