"""Acceptance (issue 16): a symlink inside the data root pointing outside cannot be read through the dashboard.

The outside targets hold a marker that must appear nowhere in the page; one target is a FIFO, which any
attempt to open would block on (the AppTest run would time out).
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.io import save_tiff
from ui import confine, file_browser, state

from apphelpers import no_exception, page

PAGE = page("1_samples.py")
SECRET = "TOPSECRET-7f3a"
TIMEOUT = 60


def page_text(at) -> str:
    """Everything the page holds: every element's protobuf (labels, options, values, messages) and the state."""
    parts = []

    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    parts += [f"{k}={v!r}" for k, v in at.session_state.to_dict().items()]
    return "\n".join(parts)


@pytest.fixture
def outside(env):
    """A folder beside the data folder: a secret TIFF volume, a secret text file and a FIFO."""
    d = env / "outside"
    d.mkdir()
    vol = np.full((8, 8, 8), 7, np.uint16)
    save_tiff(d / "secret.tif", vol, (1.0, 1.0, 1.0))
    (d / "secret.txt").write_text(SECRET + "\n")
    os.mkfifo(d / "trap.tif")
    (d / "vol").mkdir()
    for i in range(3):
        save_tiff(d / "vol" / f"s{i:03d}.tif", vol[i], (1.0, 1.0, 1.0))
    (d / "vol" / "notes.tif").write_text(SECRET)
    return d


def _refused(at, name: str) -> str:
    no_exception(at)
    [err] = [e.value for e in at.error]
    assert name in err and "outside the data folder" in err and err.endswith(".") and "\n" not in err
    assert err.endswith("copy the data into the data folder, or start the dashboard with DETACH_DATA set to the "
                        "folder holding it.")  # the way forward, not only the refusal
    assert not re.search(r"(?<![\w.~])/[A-Za-z]", err), err  # no absolute server path
    return err


def test_link_to_an_outside_file_is_listed_marked_and_refused_unread(empty_ws, env, outside):
    data = env / "data"
    (data / "scan.tif").symlink_to(outside / "secret.tif")
    (data / "leak.tif").symlink_to(outside / "secret.txt")
    (data / "trap.tif").symlink_to(outside / "trap.tif")  # opening it would block
    (data / "passwd.tif").symlink_to("/etc/passwd")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    no_exception(at)
    picker = at.selectbox(key=state.k(state.ADD_FILE, "root"))
    assert all("not readable" in o for o in picker.options), picker.options
    for name in ("leak.tif", "passwd.tif", "scan.tif", "trap.tif"):
        at.selectbox(key=state.k(state.ADD_FILE, "root")).select(name).run()
        _refused(at, name)
        text = page_text(at)
        assert SECRET not in text and "root:" not in text and str(outside) not in text
        assert "8×8×8" not in text  # the outside volume was not probed
        assert not _has_add_button(at)
    assert empty_ws.list_samples() == []


def _has_add_button(at) -> bool:
    return any(b.key == state.k(state.ADD_SUBMIT, "file") for b in at.button)


def test_link_to_an_outside_folder_is_refused_and_cannot_be_opened(empty_ws, env, outside):
    data = env / "data"
    (data / "stack").symlink_to(outside / "vol", target_is_directory=True)
    (data / "above").symlink_to(env, target_is_directory=True)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    no_exception(at)
    for name in ("above", "stack"):
        at.selectbox(key=state.k(state.ADD_FILE, "root")).select(name).run()
        _refused(at, name)
        assert not any(b.key == state.BROWSE_OPEN for b in at.button)  # no way into it
        assert not at.toggle  # nor to read it as one volume
    # a browse folder pointing out (as an old session might hold) falls back to the top of the data folder
    at.session_state[state.BROWSE_DIR] = "stack"
    at.run()
    no_exception(at)
    assert any(c.value == "Folder: the top of the data folder" for c in at.caption)
    text = page_text(at)
    assert SECRET not in text and str(outside) not in text and str(env) not in text
    assert empty_ws.list_samples() == []


def test_folder_inside_holding_a_link_out_is_refused_before_reading(empty_ws, env, outside):
    data = env / "data"
    vol = np.full((4, 8, 8), 3, np.uint16)
    (data / "slices").mkdir()
    for i in range(4):
        save_tiff(data / "slices" / f"s{i:03d}.tif", vol[i], (1.0, 1.0, 1.0))
    (data / "slices" / "s004.tif").symlink_to(outside / "secret.tif")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("slices").run()
    at.toggle(key=state.k(state.ADD_FILE, "dir", "")).set_value(True).run()
    err = _refused(at, "slices/s004.tif")
    assert err.startswith("slices/s004.tif is a link pointing outside")
    assert SECRET not in page_text(at)
    assert empty_ws.list_samples() == []


def test_links_that_stay_inside_work_and_the_resolved_path_is_stored(empty_ws, env):
    data = env / "data"
    vol = (np.arange(6 * 8 * 10) % 50).astype(np.uint16).reshape(6, 8, 10)
    (data / "real").mkdir()
    save_tiff(data / "real" / "scan.tif", vol, (0.5, 0.5, 0.5))
    (data / "alias.tif").symlink_to(data / "real" / "scan.tif")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.selectbox(key=state.k(state.ADD_FILE, "root")).select("alias.tif").run()
    no_exception(at)
    assert not at.error
    at.button(key=state.k(state.ADD_SUBMIT, "file")).click().run()
    no_exception(at)
    [s] = empty_ws.list_samples()
    assert s.name == "alias" and s.source == str((data / "real" / "scan.tif").resolve())


def test_a_slice_folder_sample_whose_slice_later_points_outside_is_not_read(empty_ws, env, outside):
    data = env / "data"
    vol = np.full((4, 8, 8), 3, np.uint16)
    (data / "slices").mkdir()
    for i in range(4):
        save_tiff(data / "slices" / f"s{i:03d}.tif", vol[i], (1.0, 1.0, 1.0))
    empty_ws.add_sample("later", str(data / "slices"))
    (data / "slices" / "s003.tif").unlink()
    (data / "slices" / "s003.tif").symlink_to(outside / "secret.tif")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    no_exception(at)
    errors = [e.value for e in at.error]
    assert any(e.startswith("Cannot read the volume of 'later'") and "slices/s003.tif" in e
               and "outside the data folder" in e for e in errors), errors
    assert not at.image, errors


def test_a_file_sample_later_replaced_by_a_link_out_is_not_read(empty_ws, env, outside):
    """The stored path keeps its links (it is not resolved when the row is read back), so the check before
    reading sees that the file became a link pointing outside."""
    data = env / "data"
    save_tiff(data / "scan.tif", np.full((4, 8, 8), 3, np.uint16), (1.0, 1.0, 1.0))
    empty_ws.add_sample("later", str(data / "scan.tif"))
    (data / "scan.tif").unlink()
    (data / "scan.tif").symlink_to(outside / "secret.tif")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    no_exception(at)
    errors = [e.value for e in at.error]
    assert any(e.startswith("Cannot read the volume of 'later'") and "scan.tif" in e
               and "outside the data folder" in e for e in errors), errors
    assert not at.image, errors


def test_confine_unit(env, outside):
    data = env / "data"
    (data / "in.tif").write_bytes(b"x")
    (data / "ok.tif").symlink_to(data / "in.tif")
    (data / "out.tif").symlink_to(outside / "secret.txt")
    (data / "loop.tif").symlink_to(data / "loop.tif")
    os.mkfifo(data / "fifo.tif")
    assert file_browser.confine(data, data / "ok.tif") == (data / "in.tif").resolve()
    for name, words in (("out.tif", "outside the data folder"), ("loop.tif", "broken link"),
                        ("fifo.tif", "not a regular file"), ("gone.tif", "broken link")):
        with pytest.raises(ValueError, match=words) as exc:
            file_browser.confine(data, data / name)
        assert str(exc.value).startswith(name) and str(data) not in str(exc.value)
    listed = {e.name: e.kind for e in confine.entries(data.resolve(), data)}
    assert listed == {"in.tif": "file", "ok.tif": "file", "out.tif": "outside", "loop.tif": "broken"}


def test_messages_show_paths_relative_never_absolute(env):
    from ui.messages import display_path, one_sentence

    data, ws = env / "data", env / "ws"
    cases = {
        f"could not read {data}/sub/scan.tif as TIFF: bad": "could not read sub/scan.tif as TIFF: bad.",
        f"'{ws}/uploads/0123abcd/tiny.npy' is broken": "'tiny.npy' is broken.",
        f"cannot write {ws}/analyses/3/run.json": "cannot write analyses/3/run.json.",
        "cannot open /etc/passwd.": "cannot open passwd.",
        "see https://example.org/a/b": "see https://example.org/a/b.",
        "not a TIFF file: header=b'root:x:0:0'": "not a TIFF file.",
        "This file contains pickled data. If you trust the file, load it unsafely.": "This file contains pickled data.",
        "line one\nline two": "line one line two.",
    }
    for text, shown in cases.items():
        assert one_sentence(ValueError(text)) == shown
    assert display_path(data) == "the data folder" and display_path(data / "a" / "b.tif") == "a/b.tif"
    assert display_path("/srv/elsewhere/scan.tif") == "scan.tif"


def test_every_file_the_readers_read_is_listed(env):
    """QA: an IMOD .st stack, a .mrc.bz2 and a multi-frame DICOM saved without a suffix were read by the command line
    but not offered by the data-folder browser; a suffix-less file that is no DICOM stays unlisted."""
    from core.io._common import VOLUME_FILE_ENDINGS

    from dicom_files import write_dicom

    data = env / "data"
    for ending in VOLUME_FILE_ENDINGS:
        (data / f"v{ending}").write_bytes(b"x")
    write_dicom(data / "IM_MULTIFRAME", np.zeros((3, 8, 8), np.uint16))
    (data / "README").write_text("notes")
    listed = {e.name for e in confine.entries(data.resolve(), data)}
    assert {f"v{e}" for e in VOLUME_FILE_ENDINGS} | {"IM_MULTIFRAME"} == listed
    assert {".st", ".mrcs", ".mrc.bz2"} <= set(VOLUME_FILE_ENDINGS)
