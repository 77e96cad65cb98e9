"""The dashboard's share of the bad-input corpus (issue 16): the Samples page's add and upload paths.

Every bad input gives exactly one ``st.error`` of one sentence that names the file (relative to the data
folder, never an absolute server path), no exception element, no sample in the catalogue and no file left
in the workspace's uploads folder.  Valid counterparts check that the corpus does not pass by refusing
everything.  What the readers say is core's business (and improving concurrently); these tests hold what the
dashboard guarantees around it.
"""

from __future__ import annotations

import io
import os
import re

import numpy as np
import pytest
import tifffile
from streamlit.testing.v1 import AppTest

from core.io import save_tiff
from ui import file_browser, state

from apphelpers import no_exception, page

PAGE = page("1_samples.py")
TIMEOUT = 60  # a FIFO opened by mistake would block the run: this turns a hang into a failure
UPLOAD = state.ADD_UPLOAD
ADD_UPLOAD = state.k(state.ADD_SUBMIT, "upload")
ADD_FILE = state.k(state.ADD_SUBMIT, "file")
ABSOLUTE = re.compile(r"(?<![\w.~])/[A-Za-z]")


# --------------------------------------------------------------------------- helpers


def _npy(a: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, **kw)
    return buf.getvalue()


def _tiff(vol: np.ndarray, spacing=(0.5, 0.5, 0.5)) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, vol, imagej=True, resolution=(1 / spacing[2], 1 / spacing[1]),
                     metadata={"spacing": spacing[0], "unit": "um", "axes": "ZYX"})
    return buf.getvalue()


GOOD = (np.arange(8 * 9 * 10) % 97).astype(np.uint16).reshape(8, 9, 10)
STACK = _tiff((np.arange(16 * 32 * 32) % 200).astype(np.uint16).reshape(16, 32, 32))


def assert_one_sentence(msg: str, name: str) -> None:
    assert name in msg, msg
    assert "\n" not in msg and "Traceback" not in msg, msg
    assert msg.endswith("."), msg
    assert not re.search(r"[.!?]\s+[A-Z]", msg[:-1]), f"more than one sentence: {msg}"
    assert not ABSOLUTE.search(msg), f"absolute path in: {msg}"


def one_error(at, name: str) -> str:
    no_exception(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    assert_one_sentence(errors[0], name)
    return errors[0]


def uploads_left(env) -> list:
    folder = env / "ws" / "uploads"
    return sorted(p.relative_to(folder) for p in folder.rglob("*")) if folder.exists() else []


def upload(at, name: str, data: bytes):
    at.file_uploader(key=UPLOAD).set_value((name, data, "application/octet-stream"))
    return at.run()


def spacing_key(scope, axis="z"):
    return state.k(state.META_SPACING, *scope, axis)


def upload_scope(at):
    keys = [n.key for n in at.number_input if n.key and n.key.startswith(state.META_SPACING + "_add_upload")]
    assert keys, "no voxel size inputs for the upload"
    return ("add", "upload", keys[0][len(state.META_SPACING + "_add_upload_"):-2])


# --------------------------------------------------------------------------- bad uploads


BAD_UPLOADS = {
    "empty.tif": b"",
    "notes.tif": b"this is a text file, not a TIFF\n" * 20,
    "header_only.tif": STACK[:100],
    "cut_stack.tif": STACK[:1000],
    "pickled.npy": _npy(np.array([{"a": 1}], dtype=object), allow_pickle=True),
    "text.npy": b"x = 1\n" * 50,
    "short.npy": _npy(GOOD)[:300],
    "four_d.npy": _npy(np.zeros((2, 3, 4, 5), np.uint8)),
    "line.npy": _npy(np.zeros(50, np.uint8)),
    "complex.npy": _npy(np.zeros((4, 4, 4), np.complex64)),
    "no_planes.npy": _npy(np.zeros((0, 4, 4), np.uint8)),
    "text.h5": b"not an HDF5 file\n" * 10,
    "volume.txt": _npy(GOOD),
    "volume": _npy(GOOD),
    "small.raw": b"\0" * 1000,
}


@pytest.mark.parametrize("name", list(BAD_UPLOADS))
def test_bad_upload_is_refused_in_one_sentence_and_deleted_at_once(empty_ws, env, name):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    upload(at, name, BAD_UPLOADS[name])
    one_error(at, name)
    assert empty_ws.list_samples() == []
    assert uploads_left(env) == []
    assert not any(b.key == ADD_UPLOAD for b in at.button)
    at.run()  # a rerun with the file still in the uploader: the same refusal, nothing saved again
    one_error(at, name)
    assert uploads_left(env) == []


def test_good_upload_is_added_and_kept(empty_ws, env):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    upload(at, "good.npy", _npy(GOOD))
    no_exception(at)
    assert not at.error
    assert len(uploads_left(env)) == 2  # uploads/<token>/good.npy
    at.button(key=ADD_UPLOAD).click().run()
    no_exception(at)
    [s] = empty_ws.list_samples()
    assert s.name == "good" and empty_ws.load_volume(s).shape == (8, 9, 10)
    at.file_uploader(key=UPLOAD).clear()
    at.run()
    no_exception(at)
    assert len(uploads_left(env)) == 2  # the sample's file stays
    assert any("Source: `good.npy`" == c.value for c in at.caption)  # its name, not the server path


def test_good_tiff_upload_after_a_bad_one(empty_ws, env):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    upload(at, "cut_stack.tif", STACK[:1000])
    one_error(at, "cut_stack.tif")
    upload(at, "stack.tif", STACK)
    no_exception(at)
    assert not at.error
    assert any("16×32×32 voxels" in c.value for c in at.caption)
    at.button(key=ADD_UPLOAD).click().run()
    no_exception(at)
    [s] = empty_ws.list_samples()
    assert s.name == "stack" and s.spacing == (0.5, 0.5, 0.5)
    assert [p.name for p in uploads_left(env) if p.suffix] == ["stack.tif"]


def test_an_upload_replaced_or_removed_before_adding_is_deleted(empty_ws, env):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    upload(at, "first.npy", _npy(GOOD))
    assert [p.name for p in uploads_left(env) if p.suffix] == ["first.npy"]
    upload(at, "second.npy", _npy(GOOD[:, :, :8]))
    no_exception(at)
    assert [p.name for p in uploads_left(env) if p.suffix] == ["second.npy"]
    at.file_uploader(key=UPLOAD).clear()
    at.run()
    no_exception(at)
    assert uploads_left(env) == [] and empty_ws.list_samples() == []


# --------------------------------------------------------------------------- bad server-folder picks


@pytest.fixture
def data(env):
    """The data folder with a good volume, and a folder outside it holding a secret."""
    d = env / "data"
    save_tiff(d / "good.tif", GOOD, (0.5, 0.5, 0.5))
    out = env / "outside"
    out.mkdir()
    (out / "secret.tif").write_text("TOPSECRET\n")
    (out / "stack").mkdir()
    save_tiff(out / "stack" / "s000.tif", GOOD[0], (1.0, 1.0, 1.0))
    return d


def _pick(at, name: str, folder: str = ""):
    if folder:
        at.session_state[state.BROWSE_DIR] = folder
        at.run()
    at.selectbox(key=state.k(state.ADD_FILE, folder or "root")).select(name).run()
    return at


def _refused_pick(at, shown: str, empty_ws, env) -> str:
    err = one_error(at, shown)
    assert "TOPSECRET" not in err and "root:" not in err
    assert not any(b.key == ADD_FILE for b in at.button)
    assert empty_ws.list_samples() == [] and uploads_left(env) == []
    return err


@pytest.mark.parametrize("kind", ["file", "folder", "passwd"])
def test_link_out_of_the_data_folder_is_refused(empty_ws, env, data, kind):
    target = {"file": env / "outside" / "secret.tif", "folder": env / "outside" / "stack", "passwd": "/etc/passwd"}
    name = f"link_{kind}" + ("" if kind == "folder" else ".tif")
    (data / name).symlink_to(target[kind])
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    _pick(at, name)
    err = _refused_pick(at, name, empty_ws, env)
    assert "outside the data folder" in err


def test_text_named_tif_in_a_subfolder_is_named_relative(empty_ws, env, data):
    (data / "sub").mkdir()
    (data / "sub" / "notes.tif").write_text("not a tiff\n")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    _pick(at, "notes.tif", "sub")
    err = _refused_pick(at, "sub/notes.tif", empty_ws, env)
    assert str(env) not in err


def test_fifo_named_tif_is_not_listed_and_does_not_hang(empty_ws, env, data):
    os.mkfifo(data / "pipe.tif")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    no_exception(at)
    options = at.selectbox(key=state.k(state.ADD_FILE, "root")).options
    assert not any("pipe.tif" in o for o in options) and any("good.tif" in o for o in options)


def test_fifo_inside_a_folder_read_as_one_volume_is_refused_unopened(empty_ws, env, data):
    (data / "slices").mkdir()
    for i in range(3):
        save_tiff(data / "slices" / f"s{i:03d}.tif", GOOD[i], (1.0, 1.0, 1.0))
    os.mkfifo(data / "slices" / "s003.tif")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    _pick(at, "slices")
    at.toggle(key=state.k(state.ADD_FILE, "dir", "")).set_value(True).run()
    err = _refused_pick(at, "slices/s003.tif", empty_ws, env)
    assert "not a regular file" in err


def test_a_folder_of_mixed_slices_is_refused_with_its_kinds_and_no_size_line(empty_ws, env, data):
    """A slice folder holding images and label images (the real nano-CT folder's layout): one sentence with the kinds
    of slice, and no header line reading the first slice's size as the volume's above it (session 37 saw one)."""
    (data / "nanoct").mkdir()
    for i in range(3):
        tifffile.imwrite(data / "nanoct" / f"raw_{i}.tif", GOOD[i].astype(np.float32))
        tifffile.imwrite(data / "nanoct" / f"raw_{i}_label.tif", (GOOD[i] % 3).astype(np.uint8))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    _pick(at, "nanoct")
    at.toggle(key=state.k(state.ADD_FILE, "dir", "")).set_value(True).run()
    err = _refused_pick(at, "nanoct", empty_ws, env)
    assert "holds slices of 2 kinds, not one: 3 float32 of 9×10 (raw_0.tif, raw_1.tif, …) and 3 uint8 of 9×10" in err
    assert not any("voxels (z×y×x)" in c.value for c in at.caption)


def test_broken_link_and_link_loop_are_refused(empty_ws, env, data):
    (data / "gone.tif").symlink_to(data / "nowhere.tif")
    (data / "store").mkdir()
    (data / "store" / "loop").symlink_to(data / "store" / "loop")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    _pick(at, "gone.tif")
    _refused_pick(at, "gone.tif", empty_ws, env)
    _pick(at, "store")
    at.toggle(key=state.k(state.ADD_FILE, "dir", "")).set_value(True).run()
    err = _refused_pick(at, "store/loop", empty_ws, env)
    assert "broken link" in err


def test_nested_link_out_inside_a_folder_read_as_one_volume_is_refused(empty_ws, env, data):
    (data / "other").mkdir()
    (data / "other" / "chunk").symlink_to(env / "outside" / "secret.tif")
    (data / "vol.zarr").mkdir()
    (data / "vol.zarr" / "arr").symlink_to(data / "other", target_is_directory=True)  # inside, but leads out
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    _pick(at, "vol.zarr")  # a Zarr store: read as one volume without the folder toggle
    err = _refused_pick(at, "other/chunk", empty_ws, env)
    assert "outside the data folder" in err and "(in vol.zarr)" in err


def test_good_file_beside_the_bad_ones_is_added(empty_ws, env, data):
    (data / "link_out.tif").symlink_to(env / "outside" / "secret.tif")
    os.mkfifo(data / "pipe.tif")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    _pick(at, "good.tif")
    no_exception(at)
    assert not at.error
    at.button(key=ADD_FILE).click().run()
    no_exception(at)
    [s] = empty_ws.list_samples()
    assert s.name == "good" and s.spacing == (0.5, 0.5, 0.5)


# --------------------------------------------------------------------------- bad metadata


@pytest.mark.parametrize("value", [0.0, -0.5, float("nan"), 1e300, 1e-9])
def test_bad_voxel_size_is_refused_and_nothing_added(empty_ws, env, value):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    upload(at, "good.npy", _npy(GOOD))
    scope = upload_scope(at)
    at.number_input(key=spacing_key(scope)).set_value(value).run()
    err = one_error(at, "voxel size z")
    assert "between" in err and "µm" in err
    assert at.button(key=ADD_UPLOAD).disabled  # (the page also ignores a click that reaches it anyway)
    assert empty_ws.list_samples() == []
    at.file_uploader(key=UPLOAD).clear()  # the user gives up: the upload goes
    at.run()
    assert uploads_left(env) == []


def test_every_bad_voxel_size_is_said_at_once(empty_ws, env):
    """QA: z = 0, y = -1, x = 1e9 said the z only, then the next one as each was mended."""
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    upload(at, "good.npy", _npy(GOOD))
    scope = upload_scope(at)
    for a, v in (("z", 0.0), ("y", -1.0), ("x", 1e9)):
        at.number_input(key=spacing_key(scope, a)).set_value(v).run()
    err = one_error(at, "voxel sizes z, y and x")
    assert err == "The voxel sizes z, y and x must be between 0.0001 and 10000 µm, got z 0, y -1, x 1e+09."
    assert at.button(key=ADD_UPLOAD).disabled


def test_a_voxel_as_wide_as_a_particle_is_questioned_not_refused(empty_ws, env):
    """QA: a NIfTI without a unit gave 398 µm (read in mm); nothing said a voxel wider than the particles is odd."""
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    upload(at, "good.npy", _npy(GOOD))
    scope = upload_scope(at)
    at.number_input(key=spacing_key(scope, "x")).set_value(398.0).run()
    no_exception(at)
    assert not at.error and not at.button(key=ADD_UPLOAD).disabled  # possible (an overview scan): said, not refused
    assert any(w.value.startswith("A voxel of 398 µm is as wide as an NMC particle") and "Check the unit" in w.value
               for w in at.warning)
    at.number_input(key=spacing_key(scope, "x")).set_value(0.398).run()
    assert not any("as wide as an NMC particle" in w.value for w in at.warning)


def test_good_voxel_size_after_a_bad_one_is_added(empty_ws, env):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    upload(at, "good.npy", _npy(GOOD))
    scope = upload_scope(at)
    at.number_input(key=spacing_key(scope)).set_value(0.0).run()
    one_error(at, "voxel size z")
    at.number_input(key=spacing_key(scope)).set_value(0.25).run()
    no_exception(at)
    assert not at.error
    at.button(key=ADD_UPLOAD).click().run()
    no_exception(at)
    [s] = empty_ws.list_samples()
    assert s.spacing == (0.25, 1.0, 1.0)


def test_bad_voxel_size_on_a_server_file_and_when_editing(seeded_ws, env, data):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    n = len(seeded_ws.list_samples())
    _pick(at, "good.tif")
    scope = ("add", "file", file_browser.path_token((data / "good.tif").resolve()))
    at.number_input(key=spacing_key(scope, "x")).set_value(-1.0).run()
    one_error(at, "voxel size x")
    assert at.button(key=ADD_FILE).disabled
    assert len(seeded_ws.list_samples()) == n
    # editing a sample's details: the same rule, the sample unchanged
    s = seeded_ws.list_samples()[0]
    at.session_state[state.SAMPLE_ID] = s.id
    at.number_input(key=spacing_key(scope, "x")).set_value(0.5).run()
    at.number_input(key=spacing_key(("edit", s.id), "y")).set_value(float("inf")).run()
    no_exception(at)
    one_error(at, "voxel size y")
    assert at.button(key=state.k(state.EDIT_SAVE, s.id)).disabled
    assert seeded_ws.get_sample(s.id).spacing == s.spacing


def test_implausible_voxel_size_in_a_file_is_not_prefilled(empty_ws, env):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    upload(at, "tiny_voxels.tif", _tiff(GOOD, (1e-9, 1e-9, 1e-9)))
    no_exception(at)
    assert not at.error
    # the reader ignores a voxel size outside 1e-4..1e4 µm in a file's metadata (core.io), so 1 µm is offered
    scope = upload_scope(at)
    assert [at.number_input(key=spacing_key(scope, a)).value for a in "zyx"] == [1.0, 1.0, 1.0]


# --------------------------------------------------------------------------- files that name other files


OME_OUT = ('<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" '
           'UUID="urn:uuid:1"><Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint16" '
           'SizeX="10" SizeY="9" SizeZ="2" SizeC="1" SizeT="1"><Channel ID="Channel:0:0" SamplesPerPixel="1"/>'
           '<TiffData IFD="0" PlaneCount="1"><UUID FileName="{self}">urn:uuid:1</UUID></TiffData>'
           '<TiffData IFD="0" FirstZ="1" PlaneCount="1"><UUID FileName="{other}">urn:uuid:2</UUID></TiffData>'
           '</Pixels></Image></OME>')


def _naming_files(folder, outside):
    """HDF5 files and an OME-TIFF in ``folder`` that make a reader open files in ``outside``."""
    import h5py

    tifffile.imwrite(outside / "other.tif", GOOD[:2])
    with h5py.File(outside / "other.h5", "w") as f:
        f["v"] = GOOD
    with h5py.File(folder / "ext_link.h5", "w") as f:
        f["v"] = h5py.ExternalLink(str(outside / "other.h5"), "/v")
    layout = h5py.VirtualLayout(shape=GOOD.shape, dtype=GOOD.dtype)
    layout[:] = h5py.VirtualSource(str(outside / "other.h5"), "v", shape=GOOD.shape)
    with h5py.File(folder / "virtual.h5", "w") as f:
        f.create_virtual_dataset("v", layout)
    tifffile.imwrite(folder / "evil.ome.tif", GOOD[0],
                     description=OME_OUT.format(self="evil.ome.tif", other=str(outside / "other.tif")), metadata=None)
    return ["ext_link.h5", "virtual.h5", "evil.ome.tif"]


def test_uploads_naming_server_files_are_refused(empty_ws, env, tmp_path_factory):
    made, outside = tmp_path_factory.mktemp("made"), env / "data"  # they would read the data folder's files
    names = _naming_files(made, outside)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    for name in names:
        upload(at, name, (made / name).read_bytes())
        err = one_error(at, name)
        assert "outside the uploaded file" in err
        assert empty_ws.list_samples() == [] and uploads_left(env) == []


def test_server_files_naming_files_outside_are_refused_and_a_plain_hdf5_is_added(empty_ws, env, data):
    import h5py

    names = _naming_files(data, env / "outside")
    with h5py.File(data / "plain.h5", "w") as f:
        f["volume"] = GOOD
        f["again"] = h5py.SoftLink("/volume")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    for name in names:
        _pick(at, name)
        err = _refused_pick(at, name, empty_ws, env)
        assert "outside the data folder" in err
    _pick(at, "plain.h5")
    no_exception(at)
    assert not at.error
    at.button(key=ADD_FILE).click().run()
    no_exception(at)
    [s] = empty_ws.list_samples()
    assert s.name == "plain" and empty_ws.load_volume(s).shape == GOOD.shape
