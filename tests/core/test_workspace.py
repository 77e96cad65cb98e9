"""Tests for core.workspace: persistence across restarts, crash safety, deletion."""

from __future__ import annotations

import os
import sqlite3
import time

import numpy as np
import pandas as pd
import pytest

from core import workspace as wsmod
from core.particles import SeparationParams
from core.pipeline import AnalysisParams
from core.synth import ElectrodeParams, make_electrode
from core.runner import run_analysis
from core.workspace import Workspace


@pytest.fixture(scope="module")
def elec():
    return make_electrode(ElectrodeParams(shape=(32, 32, 32), radius_median_um=3, spacing=(0.5, 0.5, 0.5)), rng=3)


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_add_and_reopen_persists_samples_and_results(tmp_path, elec):
    ws = Workspace(tmp_path / "ws")
    s = ws.add_sample("cathode A", "demo:pristine", spacing=(0.5, 0.4, 0.4), group_label="pristine", axis=0,
                      separator_side="start", source_options={"shape": [32, 32, 32], "seed": 0})
    a = run_analysis(ws, s.id, elec.greyscale, AnalysisParams())
    assert a.status == "done" and a.n_particles > 0
    table = ws.load_table(a)
    labels = ws.load_labels(a)
    del ws  # "restart": a new object reads everything back from disk

    ws2 = Workspace(tmp_path / "ws")
    [s2] = ws2.list_samples()
    assert (s2.name, s2.group_label, s2.spacing, s2.axis, s2.separator_side) == (
        "cathode A", "pristine", (0.5, 0.4, 0.4), 0, "start")
    assert s2.is_demo and s2.demo_name == "pristine"
    assert s2.source_options == {"shape": [32, 32, 32], "seed": 0}
    a2 = ws2.latest_analysis(s2.id)
    assert a2.id == a.id and a2.status == "done"
    pd.testing.assert_frame_equal(ws2.load_table(a2), table)
    np.testing.assert_array_equal(ws2.load_labels(a2), labels)
    ph = ws2.load_phases(a2)
    assert ph.dtype == np.uint8 and ph.shape == elec.greyscale.shape
    # the stored parameters round-trip into AnalysisParams, thresholds resolved
    assert AnalysisParams.from_dict(a2.params).separator_side == "start"
    resolved = AnalysisParams.from_dict(a2.resolved_params)
    assert resolved.segment.low is not None and resolved.segment.high > resolved.segment.low
    assert a2.provenance["n_particles"] == a2.n_particles == len(table)


def test_the_last_progress_of_a_run_says_the_results_are_being_saved(tmp_path, elec):
    """QA walk 9: the pipeline's last word ("done: 12 particles") showed in the jobs panel as "running: done" while
    the results were still being written."""
    ws = Workspace(tmp_path / "ws")
    s = ws.add_sample("cathode A", "demo:pristine", spacing=0.5, separator_side="start",
                      source_options={"shape": [32, 32, 32], "seed": 0})
    said = []
    a = run_analysis(ws, s.id, elec.greyscale, AnalysisParams(), progress=lambda f, m: said.append((f, m)))
    assert said[-1] == (1.0, f"saving the results ({a.n_particles} particles)")


def test_update_sample(tmp_path):
    ws = Workspace(tmp_path)
    s = ws.add_sample("x", "/data/x.tif", spacing=1.0)
    t0 = s.updated_at
    time.sleep(0.01)
    s2 = ws.update_sample(s.id, name="y", spacing=(2, 1, 1), separator_side="end", group_label="g")
    assert (s2.name, s2.spacing, s2.separator_side, s2.group_label) == ("y", (2.0, 1.0, 1.0), "end", "g")
    assert s2.updated_at > t0 and s2.created_at == s.created_at
    with pytest.raises(ValueError, match="separator_side"):
        ws.update_sample(s.id, separator_side="left")
    with pytest.raises(ValueError, match="cannot change"):
        ws.update_sample(s.id, source="/elsewhere")
    with pytest.raises(ValueError, match="name"):
        ws.add_sample("  ", "/x")


def test_crash_while_writing_keeps_earlier_result(tmp_path, elec, monkeypatch):
    ws = Workspace(tmp_path)
    s = ws.add_sample("A", "demo:pristine", spacing=elec.spacing, separator_side="start")
    first = run_analysis(ws, s.id, elec.greyscale)
    before = _files(tmp_path / "analyses" / str(first.id))
    table_before = ws.load_table(first)

    calls = []
    real = wsmod.write_parquet

    def broken_writer(dest, table):
        # write part of a file the way a dying process would, then fail
        calls.append(dest)
        with open(str(dest) + ".junk", "wb") as fh:
            fh.write(b"PAR1 half")
        raise OSError("disk full while writing particles.parquet")

    monkeypatch.setattr(wsmod, "write_parquet", broken_writer)
    params = AnalysisParams(separation=SeparationParams(h_um=1.0))
    with pytest.raises(OSError, match="disk full"):
        run_analysis(ws, s.id, elec.greyscale, params)
    monkeypatch.setattr(wsmod, "write_parquet", real)
    assert calls, "the writer was not reached"

    runs = ws.list_analyses(s.id)
    assert [a.status for a in runs] == ["failed", "done"]
    failed = runs[0]
    assert "disk full" in failed.error and failed.table_path is None
    assert not ws.analysis_dir(failed.id).exists()  # partial files removed
    # the earlier result is intact and still the latest finished one
    assert ws.latest_analysis(s.id).id == first.id
    assert _files(tmp_path / "analyses" / str(first.id)) == before
    pd.testing.assert_frame_equal(ws.load_table(first), table_before)
    with pytest.raises(ValueError, match="failed"):
        ws.load_table(failed)


def test_killed_run_is_marked_failed_on_reopen(tmp_path, elec):
    ws = Workspace(tmp_path)
    s = ws.add_sample("A", "demo:pristine", spacing=elec.spacing)
    done = run_analysis(ws, s.id, elec.greyscale)
    # a run that was killed halfway: a 'running' row and half an artefact folder
    aid = ws.begin_analysis(s.id, AnalysisParams().to_dict())
    d = ws.analysis_dir(aid)
    d.mkdir(parents=True)
    (d / ".phases.npz.x.partial").write_bytes(b"half")
    # the same process still running it: reopening must not touch it
    assert Workspace(tmp_path).get_analysis(aid).status == "running"
    # a restart: this process started after the row was written
    ws2 = Workspace(tmp_path, own_start=time.time() + 5)
    a = ws2.get_analysis(aid)
    assert a.status == "failed" and "interrupted" in a.error
    assert ws2.latest_analysis(s.id).id == done.id
    assert ws2.get_analysis(done.id).status == "done"
    assert not d.exists()  # the killed run's folder and its partial file are gone on reopen


def test_reopen_removes_only_the_temporary_files_of_killed_writes(tmp_path, elec):
    ws = Workspace(tmp_path)
    s = ws.add_sample("A", "demo:pristine", spacing=elec.spacing)
    done = run_analysis(ws, s.id, elec.greyscale)
    d = ws.analysis_dir(done.id)
    stale = [d / ".sweep-0123456789abcdef.json.ab12cd34.partial", ws.cache_dir() / ".demo-x.npy.zz99_x1y.partial"]
    keep = [d / "notes.partial", d / ".x.partial", ws.cache_dir() / "demo-x.npy"]
    for p in stale + keep:
        p.write_bytes(b"x")
    young = d / ".sweep-fedcba9876543210.json.yy12cd34.partial"  # a write in progress in another process
    young.write_bytes(b"x")
    keep.append(young)
    old = time.time() - 3600
    for p in stale:
        os.utime(p, (old, old))
    before = _files(d)
    Workspace(tmp_path)
    assert [p.exists() for p in stale] == [False, False]
    assert all(p.exists() for p in keep)
    assert _files(d) == [f for f in before if f != stale[0].name]
    pd.testing.assert_frame_equal(ws.load_table(done), ws.load_table(done.id))


def test_dead_owner_process_is_detected(tmp_path):
    ws = Workspace(tmp_path)
    s = ws.add_sample("A", "/x.tif")
    aid = ws.begin_analysis(s.id, {})
    with sqlite3.connect(ws.db_path) as con:
        con.execute("UPDATE analyses SET owner_pid = ? WHERE id = ?", (2**22 + 12345, aid))
    assert Workspace(tmp_path).get_analysis(aid).status == "failed"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="zombies are read from Linux /proc")
def test_zombie_owner_process_counts_as_dead(tmp_path):
    """A killed worker stays a zombie until it is reaped; its run is orphaned meanwhile (it was left running)."""
    import subprocess
    import sys

    ws = Workspace(tmp_path)
    s = ws.add_sample("A", "/x.tif")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with sqlite3.connect(ws.db_path) as con:  # the run began after its owner started
            aid = ws.begin_analysis(s.id, {})
            con.execute("UPDATE analyses SET owner_pid = ? WHERE id = ?", (child.pid, aid))
        assert Workspace(tmp_path).get_analysis(aid).status == "running"  # a live owner: left running
        child.kill()
        deadline = time.monotonic() + 10
        while open(f"/proc/{child.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":  # not reaped: a zombie
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert Workspace(tmp_path).get_analysis(aid).status == "failed"
    finally:
        child.kill()
        child.wait()


def test_orphan_artefact_folders_are_removed_on_open(tmp_path):
    ws = Workspace(tmp_path)
    orphan = ws.analysis_dir(999)
    orphan.mkdir(parents=True)
    (orphan / "labels.npz").write_bytes(b"x")
    Workspace(tmp_path)
    assert not orphan.exists()


def test_delete_sample_removes_analyses_and_files(tmp_path, elec):
    ws = Workspace(tmp_path)
    keep = ws.add_sample("keep", "demo:pristine", spacing=elec.spacing)
    up = ws.save_upload("../../evil name.tif", b"abc")
    assert up.name == "evil name.tif" and up.read_bytes() == b"abc"
    assert up.parent.parent == tmp_path.resolve() / "uploads"
    gone = ws.add_sample("gone", str(up), spacing=elec.spacing)
    a_keep = run_analysis(ws, keep.id, elec.greyscale)
    a1 = run_analysis(ws, gone.id, elec.greyscale)
    a2 = run_analysis(ws, gone.id, elec.greyscale, AnalysisParams(separation=SeparationParams(h_um=0.8)))
    assert ws.analysis_dir(a1.id).is_dir() and ws.analysis_dir(a2.id).is_dir()
    ws.delete_sample(gone.id)
    assert [s.name for s in ws.list_samples()] == ["keep"]
    with pytest.raises(KeyError):
        ws.get_sample(gone.id)
    for a in (a1, a2):
        with pytest.raises(KeyError):
            ws.get_analysis(a.id)
        assert not ws.analysis_dir(a.id).exists()
    assert not up.parent.exists()
    assert ws.list_analyses(gone.id) == []
    # the other sample is untouched
    assert ws.latest_analysis(keep.id).id == a_keep.id
    assert len(ws.load_table(a_keep)) == a_keep.n_particles
    # and after a restart too
    assert [s.name for s in Workspace(tmp_path).list_samples()] == ["keep"]


def test_load_volume_of_demo_and_file(tmp_path):
    from core.io import save_tiff

    ws = Workspace(tmp_path)
    demo = ws.add_sample("d", "demo:cycled-1C", spacing=0.4, source_options={"shape": [24, 24, 24], "seed": 2})
    v1 = ws.load_volume(demo)
    assert v1.shape == (24, 24, 24) and v1.dtype == np.uint16
    assert len(list(ws.cache_dir().glob("demo-cycled-1C-24x24x24-seed2.npy"))) == 1
    np.testing.assert_array_equal(Workspace(tmp_path).load_volume(demo.id), v1)  # from the cache file
    f = tmp_path / "v.tif"
    save_tiff(f, np.arange(4 * 5 * 6, dtype=np.uint16).reshape(4, 5, 6), (1, 2, 3))
    s = ws.add_sample("f", str(f), spacing=(1, 2, 3))
    assert ws.load_volume(s).shape == (4, 5, 6)
    bad = ws.add_sample("b", str(tmp_path / "missing.tif"))
    with pytest.raises(FileNotFoundError):
        ws.load_volume(bad)


def test_downsampled_sample_loads_on_the_coarse_grid_and_replays(tmp_path):
    from core import recipe as rc
    from core.io import save_tiff

    ws = Workspace(tmp_path)
    f = tmp_path / "v.tif"
    vol = np.arange(8 * 6 * 10, dtype=np.uint16).reshape(8, 6, 10)
    save_tiff(f, vol, 0.2)
    s = ws.add_sample("f", str(f), spacing=0.4, source_options={"read": {}, "downsample": 2})
    assert s.downsample == 2 and ws.add_sample("g", str(f)).downsample == 1
    small = ws.load_volume(s)
    assert small.shape == (4, 3, 5) and small.dtype == np.float32
    assert small[0, 0, 0] == np.mean(vol[:2, :2, :2])
    e = rc.input_from_source(s.source, s.source_options)
    assert e.downsample == 2
    with pytest.raises(ValueError, match="between 1 and 8"):
        ws.add_sample("h", str(f), source_options={"downsample": 9})
    # a further copy multiplies the factors and the voxel size, and keeps the metadata
    c = ws.add_downsampled_copy(s.id, 2)
    assert (c.name, c.downsample, c.spacing, c.source) == ("f (downsampled by 4)", 4, (0.8, 0.8, 0.8), s.source)
    assert ws.load_volume(c).shape == (2, 1, 2)
    with pytest.raises(ValueError, match=r"already downsampled by 4; another 4 would make 16"):
        ws.add_downsampled_copy(c.id, 4)
    with pytest.raises(ValueError, match="factor of 2 or more"):
        ws.add_downsampled_copy(s.id, 1)
    with pytest.raises(ValueError, match="phase volume cannot be downsampled"):
        ws.update_sample(s.id, source_options={"phase_map": "0=pore,1=cbd,2=nmc", "downsample": 2})


def test_failed_pipeline_marks_failed_with_one_sentence(tmp_path):
    ws = Workspace(tmp_path)
    s = ws.add_sample("flat", "/x.tif")
    with pytest.raises(ValueError):
        run_analysis(ws, s.id, np.zeros((8, 8, 8), np.uint16))
    [a] = ws.list_analyses(s.id)
    assert a.status == "failed" and a.error.endswith(".") and "\n" not in a.error


def test_meta_roundtrip(tmp_path):
    ws = Workspace(tmp_path)
    assert ws.get_meta("demos") is None
    ws.set_meta("demos", "1")
    assert Workspace(tmp_path).get_meta("demos") == "1"


def test_interrupted_run_is_marked_failed(tmp_path, elec):
    ws = Workspace(tmp_path)
    s = ws.add_sample("A", "demo:pristine", spacing=elec.spacing)

    def stop(frac, msg):
        if frac > 0.4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_analysis(ws, s.id, elec.greyscale, progress=stop)
    [a] = ws.list_analyses(s.id)
    assert a.status == "failed" and "interrupted" in a.error
    assert not ws.analysis_dir(a.id).exists()


def test_analysis_params_are_parsed_once_with_the_blur_origin(tmp_path, elec):
    from dataclasses import replace

    from core.phases import SegmentParams

    ws = Workspace(tmp_path)
    s = ws.add_sample("e", "demo:pristine", spacing=elec.spacing, source_options={"shape": [32, 32, 32]})
    fitted = run_analysis(ws, s.id, elec.greyscale)
    assert isinstance(fitted.requested, AnalysisParams) and isinstance(fitted.resolved, AnalysisParams)
    assert fitted.params == fitted.requested.to_dict() and fitted.resolved_params == fitted.resolved.to_dict()
    sigma = fitted.resolved.segment.pv_sigma
    assert fitted.requested.segment.pv_sigma is None and sigma is not None
    assert fitted.pv_sigma_origin == fitted.provenance["pv_sigma_origin"] in ("fitted", "fitted_at_bound")
    assert fitted.rerun_params.segment.pv_sigma is None  # a fit is fitted again
    assert fitted.rerun_params.segment.low == fitted.resolved.segment.low
    given = run_analysis(ws, s.id, elec.greyscale, AnalysisParams(segment=SegmentParams(pv_sigma=0.6)))
    assert given.pv_sigma_origin == "given" and given.rerun_params.segment.pv_sigma == 0.6
    # phases reused by a separation rerun keep the origin of the analysis they came from
    reused = run_analysis(ws, s.id, ws.load_phases(fitted), fitted.resolved, presegmented=True,
                          extra_provenance={"phases_from_analysis": fitted.id})
    assert reused.pv_sigma_origin == fitted.pv_sigma_origin and reused.rerun_params.segment.pv_sigma is None
    # rows written before the origin was recorded: inferred from the requested σ
    old = replace(fitted, provenance={k: v for k, v in fitted.provenance.items() if k != "pv_sigma_origin"})
    assert old.pv_sigma_origin == fitted.pv_sigma_origin


def test_add_sample_refuses_an_implausible_voxel_size(tmp_path):
    ws = Workspace(tmp_path)
    with pytest.raises(ValueError, match=r"spacing must be finite and > 0, between 0.0001 and 10000 µm per voxel, got 1e\+300"):
        ws.add_sample("A", "demo:pristine", spacing=1e300)
    assert ws.list_samples() == []


def test_analysis_note_is_set_kept_and_removed(tmp_path, elec):
    ws = Workspace(tmp_path)
    s = ws.add_sample("a", "demo:pristine", spacing=elec.spacing)
    a = run_analysis(ws, s.id, elec.greyscale)
    assert a.note == ""
    noted = ws.set_analysis_note(a.id, "  h too low, see #2  ")
    assert noted.note == "h too low, see #2"
    assert noted.updated_at == a.updated_at  # the note is not a new finish time
    assert Workspace(tmp_path).get_analysis(a.id).note == "h too low, see #2"
    assert ws.set_analysis_note(a.id, "").note == ""
    with pytest.raises(KeyError, match="no analysis with id 999"):
        ws.set_analysis_note(999, "x")
    with pytest.raises(TypeError, match="must be text"):
        ws.set_analysis_note(a.id, 3)
    with pytest.raises(ValueError, match=f"at most {wsmod.NOTE_MAX} characters"):
        ws.set_analysis_note(a.id, "x" * (wsmod.NOTE_MAX + 1))


def test_delete_analysis_removes_its_row_and_files_only(tmp_path, elec):
    ws = Workspace(tmp_path)
    s = ws.add_sample("a", "demo:pristine", spacing=elec.spacing)
    keep = run_analysis(ws, s.id, elec.greyscale)
    gone = run_analysis(ws, s.id, elec.greyscale, AnalysisParams(separation=SeparationParams(h_um=0.8)))
    folder = ws.analysis_dir(gone.id)
    assert (folder / "labels.npz").is_file() and (folder / "particles.parquet").is_file()
    before = ws.delete_analysis(gone.id)
    assert before.id == gone.id and before.note == ""
    assert not folder.exists()
    with pytest.raises(KeyError, match=f"no analysis with id {gone.id}"):
        ws.get_analysis(gone.id)
    assert [a.id for a in ws.list_analyses(s.id)] == [keep.id]
    assert ws.latest_analysis(s.id).id == keep.id
    assert len(ws.load_table(keep)) == keep.n_particles  # the other analysis is untouched
    with pytest.raises(KeyError, match=f"no analysis with id {gone.id}"):
        ws.delete_analysis(gone.id)
    running = ws.begin_analysis(s.id, AnalysisParams())
    with pytest.raises(ValueError, match="still running"):
        ws.delete_analysis(running)
    assert ws.get_analysis(running).status == "running"
    # after a restart too
    assert [a.id for a in Workspace(tmp_path).list_analyses(s.id, status="done")] == [keep.id]


def test_workspace_made_before_notes_opens_and_gets_the_column(tmp_path, elec):
    ws = Workspace(tmp_path)
    s = ws.add_sample("a", "demo:pristine", spacing=elec.spacing)
    a = run_analysis(ws, s.id, elec.greyscale)
    con = sqlite3.connect(ws.db_path)
    con.execute("ALTER TABLE analyses DROP COLUMN note")  # the catalogue as an older version wrote it
    con.commit()
    con.close()
    old = Workspace(tmp_path)
    assert old.get_analysis(a.id).note == ""
    assert old.set_analysis_note(a.id, "kept").note == "kept"
    assert Workspace(tmp_path).get_analysis(a.id).note == "kept"
