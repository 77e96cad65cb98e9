"""A workspace analysis run on the chunked engine: stored as Zarr (phases, labels), read back lazily, never whole."""

from __future__ import annotations

import contextlib

import dask
import numpy as np
import pytest

from core.jobs import JobStore, execute
from core.pipeline import AnalysisParams
from core.workspace import Workspace

CHUNK = 20  # a 40³ volume in 8 chunks



@pytest.fixture
def sync():
    """The chunk tasks in this process (dask's synchronous scheduler): what a job outside a cluster uses."""
    with dask.config.set(scheduler="sync"):
        yield


@contextlib.contextmanager
def _budget_below_the_whole_volume(monkeypatch, shape=(40, 40, 40), dtype=np.uint16):
    """A memory budget the chunked engine fits and the whole-volume run of a ``shape`` volume does not.

    The chunked engine's fixed costs (a process base per worker, the phase pass's halo) are set to 0 so that a
    tiny volume can be "too big"; the rule itself (:func:`core.memory.needs_chunked_engine`) is the real one.
    """
    import core.memory as M

    with monkeypatch.context() as m:
        m.setattr(M, "_CHUNK_PROCESS_BASE", 0)
        m.setattr(M, "_CHUNK_PHASE_HALO", 0)
        whole = M.memory_fit(shape, dtype, resident_input=True).needed
        chunked = M.chunked_peak_bytes(CHUNK, max(4, CHUNK // 2), 1, np.dtype(dtype).itemsize)
        assert chunked < whole
        m.setattr(M, "_limits", lambda network=False: [((whole + chunked) // 2, "budget")])
        yield


def test_the_memory_rule_sends_a_big_sample_to_the_chunked_engine(demo_tif_40, monkeypatch):
    from core.chunked.analysis import chunked_engine_for
    from core.inputs import DemoInput, FileInput

    spec = FileInput(demo_tif_40)
    assert chunked_engine_for(spec, AnalysisParams(), workers=1, chunk=CHUNK) is None  # fits: the whole volume
    assert chunked_engine_for(spec, AnalysisParams(), chunk=CHUNK, always=True) == CHUNK  # asked for (--chunk-size)
    assert chunked_engine_for(spec, AnalysisParams(method="model"), chunk=CHUNK, always=True) is None
    with _budget_below_the_whole_volume(monkeypatch):
        assert chunked_engine_for(spec, AnalysisParams(), workers=1, chunk=CHUNK) == CHUNK
        # what the chunked engine does not run stays on the whole-volume path (which refuses it, as before)
        assert chunked_engine_for(spec, AnalysisParams(method="model"), workers=1, chunk=CHUNK) is None
        assert chunked_engine_for(DemoInput("pristine"), AnalysisParams(), workers=1, chunk=CHUNK) is None


def test_a_chunked_job_stores_zarr_and_the_workspace_reads_it_back_lazily(demo_tif_40, tmp_path, sync):
    ws = Workspace(tmp_path / "ws")
    s = ws.add_sample("big", str(demo_tif_40), spacing=0.4)
    store = JobStore(ws.root)
    job = store.create("analysis", {"sample_id": s.id, "params": AnalysisParams().to_dict(),
                                    "chunked": {"chunk_size": CHUNK, "local_workers": None}}, title="big")
    assert execute(ws.root, job.id) == "done", store.get(job.id).error
    done = store.get(job.id)
    assert done.progress == 1.0 and f"{done.result['n_particles']} particles" in done.message

    ws = Workspace(tmp_path / "ws")  # reopened: the stores survive recovery
    a = ws.get_analysis(done.analysis_id)
    assert ws.is_chunked(a) and a.phases_path.endswith("phases.zarr") and a.labels_path.endswith("labels.zarr")
    assert a.provenance["engine"] == "chunked" and a.provenance["chunking"]["chunk_size"] == CHUNK
    folder = ws.analysis_dir(a.id)
    assert sorted(p.name for p in folder.iterdir()) == ["labels.zarr", "particles.parquet", "phases.zarr"]
    phases, labels = ws.open_phases(a), ws.open_labels(a)
    assert not isinstance(phases, np.ndarray) and phases.shape == labels.shape == (40, 40, 40)
    # never whole: the whole-volume loaders refuse with one sentence naming the lazy ones
    with pytest.raises(ValueError, match="stored as Zarr, which is not read whole .*open_phases"):
        ws.load_phases(a)
    with pytest.raises(ValueError, match="open_labels"):
        ws.load_labels(a)
    # the same phases as the whole-volume run, one slice at a time; the table's particles are the labels'
    whole = ws.get_analysis(store.get(_whole_job(ws, store, s.id)).analysis_id)
    ref = ws.load_phases(whole)
    for z in (0, 19, 20, 39):
        np.testing.assert_array_equal(phases[z], ref[z])
    np.testing.assert_array_equal(phases[:, 7], ref[:, 7])
    table = ws.load_table(a)
    lab = labels[...]
    assert sorted(table["label"]) == sorted(set(np.unique(lab)) - {0}) and len(table) == a.n_particles > 5
    assert a.provenance["phase_voxels"] == np.bincount(ref.ravel(), minlength=3)[:3].tolist()
    # its recipe entry replays on the chunked engine with the same chunking; the whole run's has none
    from core.recipe import entry_from_workspace

    entry = entry_from_workspace(ws, a)
    assert entry.chunking is not None and entry.chunking["chunk_size"] == CHUNK
    assert entry.chunking["halo"] == a.provenance["chunking"]["halo"]
    assert entry_from_workspace(ws, whole).chunking is None


def _whole_job(ws, store, sid) -> int:
    j = store.create("analysis", {"sample_id": sid, "params": AnalysisParams().to_dict()}, title="whole")
    assert execute(ws.root, j.id) == "done"
    assert not ws.is_chunked(ws.get_analysis(store.get(j.id).analysis_id))  # no 'chunked': npz as before
    return j.id


def test_a_separation_of_a_chunked_analysis_runs_chunked_on_its_stored_phases(demo_tif_40, tmp_path, sync):
    ws = Workspace(tmp_path / "ws")
    s = ws.add_sample("big", str(demo_tif_40), spacing=0.4)
    store = JobStore(ws.root)
    first = store.create("analysis", {"sample_id": s.id, "params": AnalysisParams().to_dict(),
                                      "chunked": {"chunk_size": CHUNK, "local_workers": None}}, title="big")
    assert execute(ws.root, first.id) == "done"
    src = ws.get_analysis(store.get(first.id).analysis_id)
    params = src.resolved.to_dict()
    params["separation"]["merge_ratio"] = 0.0
    sep = store.create("separation", {"sample_id": s.id, "params": params, "phases_from": src.id}, title="sep")
    assert execute(ws.root, sep.id) == "done", store.get(sep.id).error
    b = ws.get_analysis(store.get(sep.id).analysis_id)
    assert ws.is_chunked(b) and b.provenance["phases_from_analysis"] == src.id and b.provenance["presegmented"]
    assert b.resolved.separation.merge_ratio == 0.0 and b.provenance["chunking"]["chunk_size"] == CHUNK
    np.testing.assert_array_equal(ws.open_phases(b)[...], ws.open_phases(src)[...])
    # deleting it removes its stores and leaves the source's
    ws.delete_analysis(b.id)
    assert not ws.analysis_dir(b.id).exists() and (ws.analysis_dir(src.id) / "phases.zarr" / "0").is_dir()


def test_a_failed_chunked_run_leaves_no_stores(demo_tif_40, tmp_path, sync):
    ws = Workspace(tmp_path / "ws")
    s = ws.add_sample("big", str(demo_tif_40), spacing=0.4)
    store = JobStore(ws.root)
    job = store.create("analysis", {"sample_id": s.id, "params": AnalysisParams(seeding="deconvolved").to_dict(),
                                    "chunked": {"chunk_size": CHUNK, "local_workers": None}}, title="big")
    assert execute(ws.root, job.id) == "failed"
    assert "watershed of the phases only" in store.get(job.id).error
    failed = ws.latest_analysis(s.id, status="failed")
    assert failed is not None and not ws.analysis_dir(failed.id).exists()
