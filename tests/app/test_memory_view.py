"""Segment page: the estimated peak memory of the full analysis is shown before the run, and a run that would not
fit is not offered. With jobs on a cluster by address (DETACH_SCHEDULER) it is judged against the memory limit of that
cluster's workers, as the job judges it."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import core.chunked.analysis as A
import core.memory as M
from core.memory import BUDGET_ENV, MemoryFit
from ui import state
from ui.memory_view import memory_line

from apphelpers import TIMEOUT, no_exception, page

PAGE = page("2_segment.py")


def _open(seeded_ws):
    s = next(x for x in seeded_ws.list_samples() if x.name == "pristine")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    return s, at.run()


def test_estimate_shown_and_run_offered_when_it_fits(seeded_ws, monkeypatch):
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    s, at = _open(seeded_ws)
    no_exception(at)
    lines = [c.value for c in at.caption if c.value.startswith("Estimated peak memory of this run: about")]
    assert len(lines) == 1 and "available on this machine." in lines[0] and "threshold" in lines[0]
    assert not at.button(key=state.k(state.SEG_RUN, s.id)).disabled


def test_run_not_offered_when_it_would_not_fit(seeded_ws, monkeypatch):
    monkeypatch.setenv(BUDGET_ENV, "1K")
    s, at = _open(seeded_ws)
    no_exception(at)
    warn = [w.value for w in at.warning if w.value.startswith("Estimated peak memory of this run")]
    assert len(warn) == 1 and f"allowed by {BUDGET_ENV}: the run would not fit" in warn[0]
    assert at.button(key=state.k(state.SEG_RUN, s.id)).disabled  # a browser user cannot click it


def test_bad_budget_is_a_sentence(seeded_ws, monkeypatch):
    monkeypatch.setenv(BUDGET_ENV, "lots")
    s, at = _open(seeded_ws)
    no_exception(at)
    assert any(w.value.startswith(f"{BUDGET_ENV}='lots' is not a memory size") for w in at.warning)
    assert at.button(key=state.k(state.SEG_RUN, s.id)).disabled


def test_memory_line_words():
    ok = MemoryFit(int(1.5e9), int(20e9), "memory", (512, 512, 512), "3D U-Net")
    assert memory_line(ok) == ("Estimated peak memory of this run: about 1.5 GB (512×512×512 voxels, 3D U-Net); "
                               "20.0 GB available on this machine.")
    bad = MemoryFit(int(7.3e9), int(2e9), "address space", (1024, 1024, 1024), "threshold")
    assert "left under this server's address-space limit: the run would not fit" in memory_line(bad)
    workers = MemoryFit(int(7.3e9), int(2e9), "workers", (1024, 1024, 1024), "threshold")
    assert memory_line(workers).startswith("Estimated peak memory of this run: about 7.3 GB (1024×1024×1024 voxels, "
                                           "threshold); judged against the cluster's workers: 2.0 GB left of their "
                                           "smallest memory limit once a worker process's own share is counted: the "
                                           "run would not fit.")
    assert memory_line(workers).endswith("or give the workers more memory.")


@pytest.fixture
def on_cluster(monkeypatch):
    """Jobs on a cluster by address (not inline); the workers' memory asked afresh; no memory budget."""
    monkeypatch.delenv("DETACH_JOBS", raising=False)
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    monkeypatch.setattr(A, "_WORKER_MEMORY", {})

    def use(address):
        monkeypatch.setenv("DETACH_SCHEDULER", address)

    return use


def _run_button(at, s):
    return at.button(key=state.k(state.SEG_RUN, s.id))


def test_big_workers_run_what_this_server_could_not(seeded_ws, cluster_of, on_cluster, monkeypatch):
    on_cluster(cluster_of(1 << 30))
    monkeypatch.setattr(M, "_limits", lambda network=False: [(1 << 10, "memory")])  # this server: 1 KiB
    s, at = _open(seeded_ws)
    no_exception(at)
    lines = [c.value for c in at.caption if c.value.startswith("Estimated peak memory of this run")]
    assert len(lines) == 1
    left = ((1 << 30) - M._CHUNK_PROCESS_BASE) / 1e9  # (the worker process's own base is not the run's)
    assert lines[0].endswith(f"; judged against the cluster's workers: {left:.2f} GB left of their smallest memory "
                             "limit once a worker process's own share is counted.")
    assert not any("would not fit" in w.value for w in at.warning)
    assert not _run_button(at, s).disabled


def test_small_workers_send_to_the_chunked_engine_what_this_server_would_run_whole(empty_ws, demo_tif_40,
                                                                                   cluster_of, on_cluster,
                                                                                   monkeypatch):
    chunk = 20
    monkeypatch.setattr(M, "_CHUNK_PROCESS_BASE", 0)  # as tests/app/test_chunked_pages.py: a 40³ sample too big
    monkeypatch.setattr(M, "_CHUNK_PHASE_HALO", 0)
    whole = M.memory_fit((40, 40, 40), np.uint16, resident_input=True).needed
    window = M.chunked_peak_bytes(chunk, chunk // 2, 1, 2)
    assert window < whole
    monkeypatch.setattr(M, "_limits", lambda network=False: [(1 << 40, "memory")])  # this server: plenty
    monkeypatch.setenv("DETACH_CHUNK_SIZE", str(chunk))
    limit = (whole + window) // 2
    on_cluster(cluster_of(limit))
    s = empty_ws.add_sample("big", str(demo_tif_40), spacing=0.4)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    note = [i.value for i in at.info if "runs on the chunked engine" in i.value]
    assert len(note) == 1
    assert (f"judged against the cluster's workers: {limit / 1e9:.2f} GB left of their smallest memory limit once a "
            f"worker process's own share is counted. It runs on the chunked engine instead: chunks of {chunk}³ voxels "
            "on the cluster's workers") in note[0]
    assert not any(c.value.startswith("Estimated peak memory") for c in at.caption)
    assert not _run_button(at, s).disabled


def test_a_scheduler_that_does_not_answer_offers_no_run(seeded_ws, on_cluster, monkeypatch):
    monkeypatch.setattr(A, "WORKER_MEMORY_TIMEOUT", 0.2)
    on_cluster("tcp://127.0.0.1:9")  # nobody there
    s, at = _open(seeded_ws)
    no_exception(at)
    assert [w.value for w in at.warning if "DETACH_SCHEDULER" in w.value] == [
        "The Dask scheduler at tcp://127.0.0.1:9 (DETACH_SCHEDULER) did not answer within 0.2 s, so the memory of its "
        "workers, which would run this analysis, is unknown and the run is not offered: start the cluster or "
        "correct the address."]
    assert not any(c.value.startswith("Estimated peak memory") for c in at.caption)
    assert _run_button(at, s).disabled


def test_filled_nonfinite_voxels_are_reported_on_the_page(seeded_ws):
    """A run that filled a few NaN voxels says so under its metrics (the count is in the provenance)."""
    import warnings

    import numpy as np

    from core.runner import run_analysis

    s = next(x for x in seeded_ws.list_samples() if x.name == "pristine")
    vol = seeded_ws.load_volume(s).astype(np.float32)
    vol[1, 2, 3] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = run_analysis(seeded_ws, s.id, vol)
    assert a.provenance["nonfinite_filled"] == 1
    _, at = _open(seeded_ws)
    no_exception(at)
    assert any(w.value.startswith("Voxels without a finite grey value (NaN or infinite): 1;") for w in at.warning)
