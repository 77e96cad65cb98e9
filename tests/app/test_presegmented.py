"""An already-segmented volume added in the dashboard: the proposed value -> phase table, the user's
confirmation, bad tables refused, the Segment page without sliders, and the same particles as the CLI's
``--phase-map`` run (acceptance of issue 13, item 1, on the real calendered NMC volume)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.io import save_tiff
from ui import file_browser, state

from apphelpers import TIMEOUT, no_exception, page

SAMPLES, SEGMENT = page("1_samples.py"), page("2_segment.py")
REAL = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real" / "nmc_calendered_3phase"
        / "nmc-1-cal_generatedCBD_bridge.tif")
# the data README states no voxel size; the CT of Usseglio-Viretta et al. 2018 is about 0.4 µm. Both paths use it.
REAL_SPACING = 0.398
CROP = 96  # voxels per edge, from the corner: both paths analyse ~90 particles in a few seconds
TRUTH = {0: "pore", 1: "nmc", 2: "cbd"}  # the calendered volume's values (data README)


def _open_add_form(data: Path, name: str):
    at = AppTest.from_file(SAMPLES, default_timeout=TIMEOUT).run()
    no_exception(at)
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select(name).run()
    no_exception(at)
    return at, file_browser.path_token(data / name)


def _phase_box(at, token, value):
    return at.selectbox(key=state.k(state.ADD_PHASE, "file", token, value))


def _add_button(at):
    return at.button(key=state.k(state.ADD_SUBMIT, "file"))


def _confirm_and_add(at, token, table: dict[int, str]):
    for v, phase in table.items():
        _phase_box(at, token, v).set_value(phase)
    at.run()
    no_exception(at)
    assert not at.error
    _add_button(at).click()
    at.run()
    no_exception(at)


def _run_segment_page(sample_id: int):
    at = AppTest.from_file(SEGMENT, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = sample_id
    at.run()
    no_exception(at)
    # phases read from the file: no threshold sliders, no method
    assert not [s for s in at.slider if s.key and s.key.startswith(state.SEG_LOW)]
    assert not [r for r in at.radio if r.key == state.SEG_METHOD]
    assert any(s.value == "Phases (already segmented)" for s in at.subheader)
    assert at.image  # the phase slice
    at.button(key=state.k(state.SEG_RUN, sample_id)).click()
    at.run()
    no_exception(at)
    return at


@pytest.fixture
def real_crop(env):
    if not REAL.is_file():
        pytest.skip(f"the real calendered volume is absent ({REAL.name} not in ../shared/data/real)")
    import tifffile

    vol = np.ascontiguousarray(tifffile.imread(REAL)[:CROP, :CROP, :CROP])
    path = env / "data" / "calendered.tif"  # a copy: a link out of the data folder is refused
    save_tiff(path, vol, (REAL_SPACING,) * 3)
    return path


def test_a_kept_doubtful_map_is_doubted_again_on_the_segment_page(empty_ws, env, real_crop):
    """QA walk 11: the add form's proposal for the calendered volume (1 CBD, 2 NMC: the value order) was kept despite
    the form's warning; 65,970 "particles" followed and no page after said a word. The Segment page says it again;
    with the file's own map it says nothing."""
    at, token = _open_add_form(env / "data", real_crop.name)
    proposed = {v: _phase_box(at, token, v).value for v in (0, 1, 2)}
    _confirm_and_add(at, token, proposed)
    [s] = empty_ws.list_samples()
    page = AppTest.from_file(SEGMENT, default_timeout=TIMEOUT)
    page.session_state[state.SAMPLE_ID] = s.id
    page.run()
    no_exception(page)
    [w] = [w.value for w in page.warning if "thickest phase" in w.value]
    assert w.startswith(f"On the middle slice (z = {CROP // 2}) the pore and the CBD form thicker, smoother bodies")
    empty_ws.update_sample(s.id, source_options={**s.source_options, "phase_map": "0=pore,1=nmc,2=cbd"})
    page.run()
    no_exception(page)
    assert not [w for w in page.warning if "thickest phase" in w.value]


def test_real_calendered_volume_matches_the_cli(empty_ws, env, real_crop, tmp_path):
    at, token = _open_add_form(env / "data", real_crop.name)
    # proposed: ticked, one row per value with its share, the coloured slice; by value order (0 pore, 1 CBD, 2 NMC)
    assert at.checkbox(key=state.k(state.ADD_PRESEG, "file", token)).value is True
    proposed = {v: _phase_box(at, token, v).value for v in (0, 1, 2)}
    assert proposed == {0: "pore", 1: "cbd", 2: "nmc"}
    assert all("% of the voxels" in _phase_box(at, token, v).label for v in (0, 1, 2))
    assert len(at.image) == 1  # the middle z slice in the phases of the table
    # QA: nothing said the value order's guess was wrong; the slice's shapes do (NMC, the particles, is thickest)
    [w] = [w.value for w in at.warning if "thickest phase" in w.value]
    assert w.startswith("As mapped, the pore (value 0) and the CBD (value 1) form thicker, smoother bodies on this "
                        "slice than the NMC (value 2)")
    # no downsampling offered for phases (block means of labels are not labels)
    assert not [n for n in at.selectbox if n.key and n.key.startswith(state.ADD_DOWNSAMPLE)]
    # the user confirms the file's own meaning
    for v, phase in TRUTH.items():
        _phase_box(at, token, v).set_value(phase)
    at.run()
    assert not [w for w in at.warning if "thickest phase" in w.value]
    _confirm_and_add(at, token, TRUTH)
    [s] = empty_ws.list_samples()
    assert s.input.phase_map == "0=pore,1=nmc,2=cbd" and s.spacing == (REAL_SPACING,) * 3
    # the sample's own slices are drawn in the phase colours, without a grey-value contrast slider
    assert any("Already segmented (phase map `0=pore,1=nmc,2=cbd`)" in c.value for c in at.caption)
    # and the volume's line names the colours, not the codes the map reads into (it said "phase codes 0 pore /
    # 1 CBD / 2 NMC" under a map saying 1 is NMC)
    [line] = [c.value for c in at.caption if c.value.startswith("Volume ")]
    assert line.endswith("uint8; read as phases through its phase map: pore blue, CBD yellow, NMC red.")
    assert not [x for x in at.slider if x.key and x.key.startswith(state.VIEW_CONTRAST)]

    _run_segment_page(s.id)
    a = empty_ws.latest_analysis(s.id)
    assert a is not None and a.provenance.get("presegmented")
    ui_table = empty_ws.load_table(a)

    from core.cli import main

    out = tmp_path / "cli"
    assert main(["analyze", str(real_crop), "--out", str(out), "--phase-map", "0=pore,1=nmc,2=cbd",
                 "--spacing", *[str(REAL_SPACING)] * 3, "--quiet"]) == 0
    cli_table = pd.read_csv(out / "particles.csv")
    print(f"dashboard: {len(ui_table)} particles, median detachment {ui_table['detachment'].median():.4f}; "
          f"CLI: {len(cli_table)} particles, median detachment {cli_table['detachment'].median():.4f}")
    assert len(ui_table) == len(cli_table) > 20
    assert ui_table["detachment"].median() == pytest.approx(cli_table["detachment"].median(), abs=1e-12)

    # recorded in the recipe (through the input spec): it replays to the same table
    from core.recipe import loads, replay
    from ui.exports import recipe_json

    recipe = loads(recipe_json(empty_ws, [a]).decode("utf-8"))
    [entry] = recipe.analyses
    assert entry.input.phase_map == "0=pore,1=nmc,2=cbd"
    replayed = replay(entry).table
    assert len(replayed) == len(ui_table)
    np.testing.assert_array_equal(replayed["detachment"].to_numpy(), ui_table["detachment"].to_numpy())


def test_avizo_label_field_proposed_by_its_material_names(empty_ws, env, real_crop, tmp_path):
    """The real calendered crop saved as Avizo saves a label field (run lengths, materials named, no unit): the
    names propose the map (not the value order, which would call 1 CBD), and the analysis is the CLI's."""
    import tifffile
    from amira_files import write_label_field

    am = write_label_field(env / "data" / "calendered.am", tifffile.imread(real_crop),
                           {0: "Pore", 1: "NMC811 particles", 2: "Carbon binder"}, REAL_SPACING)
    at, token = _open_add_form(env / "data", am.name)
    assert at.checkbox(key=state.k(state.ADD_PRESEG, "file", token)).value is True
    assert {v: _phase_box(at, token, v).value for v in (0, 1, 2)} == TRUTH
    assert "“NMC811 particles”" in _phase_box(at, token, 1).label
    assert any(c.value.startswith("Proposed from the names the file gives its values") for c in at.caption)
    assert any("amira · 96×96×96 voxels" in c.value and "the file states no unit" in c.value
               and "CHECK IT" in c.value for c in at.caption)
    _confirm_and_add(at, token, {})  # nothing to change
    [s] = empty_ws.list_samples()
    assert s.input.phase_map == "0=pore,1=nmc,2=cbd" and s.spacing == pytest.approx((REAL_SPACING,) * 3)
    _run_segment_page(s.id)
    ui_table = empty_ws.load_table(empty_ws.latest_analysis(s.id))

    from core.cli import main

    out = tmp_path / "cli"
    assert main(["analyze", str(real_crop), "--out", str(out), "--phase-map", "0=pore,1=nmc,2=cbd",
                 "--spacing", *[str(REAL_SPACING)] * 3, "--quiet"]) == 0
    cli_table = pd.read_csv(out / "particles.csv")
    assert len(ui_table) == len(cli_table) > 20
    assert ui_table["detachment"].median() == pytest.approx(cli_table["detachment"].median(), abs=1e-9)


def test_avizo_file_with_a_scan_and_its_labels_offers_the_item_to_read(empty_ws, env):
    """An .am holding two data items: a *Data item* box, the label field first (proposed as phases), the scan
    read as greyscale when picked."""
    import zlib

    from amira_files import rle_encode

    lab = np.zeros((6, 20, 24), np.uint8)
    lab[:, 4:16, 4:20] = 2
    lab[:, 8:12, 8:16] = 1
    grey = (lab * 100 + np.random.default_rng(0).normal(0, 5, lab.shape)).astype(np.float32)
    zipped, runs = zlib.compress(grey.tobytes()), rle_encode(lab)
    head = ("# Avizo BINARY-LITTLE-ENDIAN 2.1\n\ndefine Lattice 24 20 6\n\nParameters {\n"
            "    BoundingBox 0 2.3 0 1.9 0 0.5,"
            '\n    CoordType "uniform"\n}\n\n'
            f"Lattice {{ float Data }} @1(HxZip,{len(zipped)})\nLattice {{ byte Labels }} @2(HxByteRLE,{len(runs)})\n"
            "\n# Data section follows\n@1\n")
    (env / "data" / "both.am").write_bytes(head.encode() + zipped + b"\n@2\n" + runs + b"\n")
    at, token = _open_add_form(env / "data", "both.am")
    box = at.selectbox(key=state.k(state.READ_DATASET, "file"))
    assert box.options == ["Labels  (uint8)", "Data  (float32)"] and box.value == "Labels"

    def ticks():
        return [c.value for c in at.checkbox if c.key and c.key.startswith(state.ADD_PRESEG)]

    assert ticks() == [True]
    assert [b.value for b in at.selectbox if b.key and b.key.startswith(state.ADD_PHASE)] == ["pore", "cbd", "nmc"]
    box.select("Data").run()
    no_exception(at)
    assert any("amira · 6×20×24 voxels (z×y×x) · float32" in c.value for c in at.caption)
    assert ticks() == [False] and not at.error  # the scan's own box: not the tick the labels left
    _add_button(at).click()
    at.run()
    no_exception(at)
    [s] = empty_ws.list_samples()
    assert s.input.dataset == "Data" and not getattr(s.input, "presegmented", False)
    assert s.spacing == pytest.approx((0.1, 0.1, 0.1))


def test_an_avizo_label_field_is_never_added_as_greyscale(empty_ws, env):
    """Unticking 'Already segmented' on a label field, or a label field of particles labelled one by one (more
    labels than a phase map takes): one sentence, and no Add."""
    from amira_files import write_label_field

    lab = np.zeros((6, 20, 24), np.uint8)
    lab[:, 4:16, 4:20] = 2
    lab[:, 8:12, 8:16] = 1
    write_label_field(env / "data" / "seg.am", lab, {0: "Pore", 1: "Binder", 2: "NMC"}, 0.5)
    many = (np.arange(6 * 20 * 24).reshape(6, 20, 24) // 300).astype(np.uint8)  # 12 labels
    write_label_field(env / "data" / "objects.am", many, {0: "Exterior"}, 0.5)
    at, token = _open_add_form(env / "data", "seg.am")
    at.checkbox(key=state.k(state.ADD_PRESEG, "file", token)).uncheck().run()
    no_exception(at)
    [err] = [e.value for e in at.error]
    assert err.startswith("seg.am is a label field (the file says so), not a greyscale scan")
    assert _add_button(at).disabled
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("objects.am").run()
    no_exception(at)
    [err] = [e.value for e in at.error]
    assert err.startswith("objects.am is a label field with more than 8 labels") and _add_button(at).disabled
    assert not empty_ws.list_samples()


def test_int8_three_phase_slice(empty_ws, env):
    """A signed 8-bit slice holding 0/1/2 (the demo convention): proposed as pore / CBD / NMC, no sliders."""
    rng = np.random.default_rng(3)
    vol = np.zeros((1, 40, 48), np.int8)
    vol[0, 5:35, 5:20] = 2
    vol[0, 5:35, 26:44] = 2
    vol[0, 10:30, 20:26] = 1
    vol[0, rng.random((40, 48)) < 0.02] = 0
    save_tiff(env / "data" / "slice8.tif", vol, (1.0, 0.5, 0.5))
    at, token = _open_add_form(env / "data", "slice8.tif")
    assert {v: _phase_box(at, token, v).value for v in (0, 1, 2)} == {0: "pore", 1: "cbd", 2: "nmc"}
    assert not _add_button(at).disabled
    _confirm_and_add(at, token, {})
    [s] = empty_ws.list_samples()
    assert s.input.phase_map == "0=pore,1=cbd,2=nmc"
    _run_segment_page(s.id)
    a = empty_ws.latest_analysis(s.id)
    assert a is not None and a.n_particles >= 1


def test_bad_maps_one_sentence_and_add_disabled(empty_ws, env):
    vol = np.zeros((6, 20, 20), np.uint16)
    vol[:, 4:16, 4:16] = 1000
    vol[:, 8:12, 8:12] = 2000
    save_tiff(env / "data" / "labels.tif", vol, (1.0, 1.0, 1.0))
    at, token = _open_add_form(env / "data", "labels.tif")
    assert {v: _phase_box(at, token, v).value for v in (0, 1000, 2000)} == {0: "pore", 1000: "cbd", 2000: "nmc"}
    # no NMC
    _phase_box(at, token, 2000).set_value("cbd").run()
    no_exception(at)
    [err] = [e.value for e in at.error]
    assert err.startswith("No value is mapped to NMC") and err.count(". ") == 0 and err.endswith(".")
    assert _add_button(at).disabled
    # every value ignored
    for v in (0, 1000, 2000):
        _phase_box(at, token, v).set_value("ignore")
    at.run()
    [err] = [e.value for e in at.error]
    assert err.startswith("Every value is ignored") and _add_button(at).disabled
    # fixed: addable again, ignore stored as pore
    _phase_box(at, token, 2000).set_value("nmc").run()
    assert not at.error and not _add_button(at).disabled
    _add_button(at).click()
    at.run()
    [s] = empty_ws.list_samples()
    assert s.input.phase_map == "0=pore,1000=pore,2000=nmc"
    assert not empty_ws.list_analyses(s.id)


def test_greyscale_file_is_not_proposed(empty_ws, env):
    vol = (np.random.default_rng(0).random((8, 16, 16)) * 1000).astype(np.uint16)
    save_tiff(env / "data" / "grey.tif", vol, (1.0, 1.0, 1.0))
    at, token = _open_add_form(env / "data", "grey.tif")
    box = at.checkbox(key=state.k(state.ADD_PRESEG, "file", token))
    assert box.value is False and not at.error
    box.check().run()
    [err] = [e.value for e in at.error]
    assert "more than 8 distinct values" in err and _add_button(at).disabled


def test_upload_of_a_signed_segmented_volume(empty_ws):
    """The upload tab offers the same table; negative values of any signed width are phases too."""
    import io

    vol = np.full((4, 10, 12), -1, np.int16)
    vol[:, 2:8, 2:10] = 5
    buf = io.BytesIO()
    np.save(buf, vol)
    at = AppTest.from_file(SAMPLES, default_timeout=TIMEOUT).run()
    up = at.file_uploader(key=state.ADD_UPLOAD)
    up.upload("seg.npy", buf.getvalue(), "application/octet-stream")
    at.run()
    no_exception(at)
    fid = at.file_uploader(key=state.ADD_UPLOAD).value.file_id
    boxes = {v: at.selectbox(key=state.k(state.ADD_PHASE, "upload", fid, v)).value for v in (-1, 5)}
    assert boxes == {-1: "pore", 5: "nmc"}  # two values: pore, NMC
    at.button(key=state.k(state.ADD_SUBMIT, "upload")).click()
    at.run()
    no_exception(at)
    [s] = empty_ws.list_samples()
    assert s.input.phase_map == "-1=pore,5=nmc"
    np.testing.assert_array_equal(np.unique(empty_ws.load_volume(s)), [0, 2])


def test_phase_map_edited_after_adding(empty_ws, env):
    """A map confirmed wrongly is mended on the Samples page: the table filled with the stored map, Save enabled
    only for a usable, changed table; the next analysis reads the new map, and until then the page says that the
    latest analysis ran with the old one."""
    vol = np.zeros((6, 20, 20), np.uint16)
    vol[:, 4:16, 4:16] = 1000
    vol[:, 8:12, 8:12] = 2000
    save_tiff(env / "data" / "labels.tif", vol, (1.0, 1.0, 1.0))
    at, token = _open_add_form(env / "data", "labels.tif")
    _confirm_and_add(at, token, {})  # the proposal as it stands: 1000 CBD, 2000 NMC
    [s] = empty_ws.list_samples()
    assert s.input.phase_map == "0=pore,1000=cbd,2000=nmc"
    _run_segment_page(s.id)
    first = empty_ws.latest_analysis(s.id)
    assert first is not None

    at = AppTest.from_file(SAMPLES, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    box = {v: at.selectbox(key=state.k(state.EDIT_PHASE, s.id, v)) for v in (0, 1000, 2000)}
    assert {v: b.value for v, b in box.items()} == {0: "pore", 1000: "cbd", 2000: "nmc"}
    save = at.button(key=state.k(state.EDIT_MAP_SAVE, s.id))
    assert save.disabled  # the table is the map stored
    assert not [w for w in at.warning if "thickest phase" not in w.value]  # (a toy: the NMC is a thin rod)
    # unusable: refused in one sentence, not savable
    box[2000].set_value("cbd").run()
    no_exception(at)
    assert any(e.value.startswith("No value is mapped to NMC") for e in at.error)
    assert at.button(key=state.k(state.EDIT_MAP_SAVE, s.id)).disabled
    # the file's true meaning: 1000 is NMC, 2000 is CBD
    at.selectbox(key=state.k(state.EDIT_PHASE, s.id, 1000)).set_value("nmc").run()
    assert not at.error
    at.button(key=state.k(state.EDIT_MAP_SAVE, s.id)).click().run()
    no_exception(at)
    s = empty_ws.get_sample(s.id)
    assert s.input.phase_map == "0=pore,1000=nmc,2000=cbd"
    assert any("Saved the phase map" in x.value for x in at.success)
    [w] = [x.value for x in at.warning if "phase map" in x.value]
    assert "`0=pore,1000=cbd,2000=nmc`" in w and "Rerun the analysis" in w
    from ui.tables import catalogue_table

    assert catalogue_table(empty_ws)["status"][0] == (f"analysed ({first.n_particles} particles), before the phase "
                                                      "map changed: rerun")
    # the old analysis keeps its map; the next one reads the new one
    assert first.provenance["input"]["source_options"]["phase_map"] == "0=pore,1000=cbd,2000=nmc"
    seg = _run_segment_page(s.id)
    assert any("`0=pore,1000=nmc,2000=cbd`" in c.value and "Samples page" in c.value for c in seg.caption)
    second = empty_ws.latest_analysis(s.id)
    assert second.id != first.id
    from core.codes import CBD, NMC

    assert (empty_ws.load_phases(first) == NMC).sum() == (vol == 2000).sum()
    phases = empty_ws.load_phases(second)
    assert (phases == NMC).sum() == (vol == 1000).sum() and (phases == CBD).sum() == (vol == 2000).sum()
    at = AppTest.from_file(SAMPLES, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    assert not [x for x in at.warning if "phase map" in x.value]
    assert catalogue_table(empty_ws)["status"][0] == f"analysed ({second.n_particles} particles)"


def test_particles_of_an_already_segmented_volume_are_drawn_over_dark_phase_greys(empty_ws, env):
    """Behind the particles the phase codes were drawn at their contrast (CBD mid-grey), which read as particles
    with no open interface (light grey): they are drawn in fixed darker greys, said in the caption."""
    from ui import cache, render

    codes = np.zeros((6, 20, 20), np.uint8)
    codes[:, 5:15, 5:15] = 2
    codes[:, :, :3] = 1
    save_tiff(env / "data" / "codes.tif", codes, (1.0, 1.0, 1.0))
    s = empty_ws.add_sample("codes", str(env / "data" / "codes.tif"), spacing=1.0,
                            source_options={"phase_map": "0=pore,1=cbd,2=nmc"})
    img = cache.grey_image(cache.VolumeRef.of(empty_ws, s), 0, 3)
    assert img.shape == (20, 20, 3) and set(np.unique(img)) == set(render.PHASE_GREYS)
    assert img[0, 0, 0] == render.PHASE_GREYS[1] and img[10, 10, 0] == render.PHASE_GREYS[2]
    assert abs(render.PHASE_GREYS[1] - min(render.NAN_COLOUR)) > 100  # CBD apart from "no open interface"
