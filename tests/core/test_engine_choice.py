"""The memory rule that picks the chunked engine: this machine's memory, or, with a scheduler address, the memory limit
of that cluster's workers (which run the analysis); one rule for the CLI and the dashboard."""

from __future__ import annotations

import numpy as np
import pytest

import core.memory as M
from core.chunked.analysis import (SchedulerUnreachableError, chunked_engine_for, client_worker_memory,
                                  cluster_worker_memory)
from core.inputs import FileInput
from core.pipeline import AnalysisParams


def _sparse_npy(path, shape, dtype=np.uint16):
    """An ``.npy`` file of ``shape`` whose voxels are a hole in the file (only the header is ever read here)."""
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1,), dtype))
    header["shape"] = tuple(shape)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.truncate(f.tell() + int(np.prod(shape)) * np.dtype(dtype).itemsize)
    return FileInput(path)


def _sizes(shape, chunk=128):
    whole = M.memory_fit(shape, np.uint16, AnalysisParams(), resident_input=True).needed
    per_worker = M.chunked_peak_bytes(chunk, chunk // 2, 1, 2) - 2 * M._CHUNK_PROCESS_BASE
    return whole, per_worker


def test_the_workers_memory_decides_when_a_scheduler_is_given(tmp_path, cluster_of, monkeypatch):
    monkeypatch.delenv(M.BUDGET_ENV, raising=False)
    spec = _sparse_npy(tmp_path / "v.npy", (512, 512, 512))
    whole, per_worker = _sizes((512, 512, 512))
    assert per_worker < whole
    monkeypatch.setattr(M, "_limits", lambda network=False: [(1 << 42, "memory")])  # this machine: plenty
    assert chunked_engine_for(spec) is None
    small = cluster_of((whole + per_worker) // 2)  # workers a window fits in, the whole volume does not
    assert cluster_worker_memory(small) == (whole + per_worker) // 2
    assert chunked_engine_for(spec, scheduler=small) == 128
    assert chunked_engine_for(spec, scheduler=small, chunk=64) == 64
    tiny = cluster_of(per_worker // 2)  # not even a window: the whole-volume run, refused by its own check
    assert chunked_engine_for(spec, scheduler=tiny) is None
    # the budget caps the workers' memory as it caps this machine's
    big = cluster_of(1 << 40)
    assert chunked_engine_for(spec, scheduler=big) is None
    monkeypatch.setenv(M.BUDGET_ENV, str((whole + per_worker) // 2))
    assert chunked_engine_for(spec, scheduler=big) == 128
    # a job on a cluster worker reads the same limit from its connected client (core.jobs)
    from distributed import Client

    with Client(small, set_as_default=False) as c:
        assert client_worker_memory(c) == (whole + per_worker) // 2
        monkeypatch.setenv(M.BUDGET_ENV, str(per_worker))  # the budget caps it
        assert client_worker_memory(c) == per_worker


def test_big_workers_run_whole_what_this_machine_could_not(tmp_path, cluster_of, monkeypatch):
    monkeypatch.delenv(M.BUDGET_ENV, raising=False)
    spec = _sparse_npy(tmp_path / "v.npy", (1024, 1024, 1024))
    whole, _ = _sizes((1024, 1024, 1024))
    local = M.chunked_peak_bytes(128, 64, 2, 2)
    assert local < whole
    monkeypatch.setattr(M, "_limits", lambda network=False: [((whole + local) // 2, "memory")])
    assert chunked_engine_for(spec, workers=2) == 128  # here: chunked
    assert chunked_engine_for(spec, workers=2, scheduler=cluster_of(2 * whole)) is None  # there: whole


def test_workers_without_a_limit_or_no_scheduler_leave_the_rule_on_this_machine(tmp_path, cluster_of,
                                                                                 monkeypatch):
    monkeypatch.delenv(M.BUDGET_ENV, raising=False)
    spec = _sparse_npy(tmp_path / "v.npy", (1024, 1024, 1024))
    whole, _ = _sizes((1024, 1024, 1024))
    local = M.chunked_peak_bytes(128, 64, 2, 2)
    monkeypatch.setattr(M, "_limits", lambda network=False: [((whole + local) // 2, "memory")])
    unlimited = cluster_of(0)
    assert cluster_worker_memory(unlimited) is None
    assert chunked_engine_for(spec, workers=2, scheduler=unlimited) == 128
    assert cluster_worker_memory("tcp://127.0.0.1:9", timeout=0.5) is None  # nobody there
    # the dashboard tells the two apart: workers without a limit answered, nobody there did not
    assert cluster_worker_memory(unlimited, unreachable="raise") is None
    with pytest.raises(SchedulerUnreachableError, match=r"^the Dask scheduler at tcp://127.0.0.1:9 did not answer"):
        cluster_worker_memory("tcp://127.0.0.1:9", timeout=0.5, unreachable="raise")
    with pytest.raises(ValueError, match="unreachable must be 'none' or 'raise'"):
        cluster_worker_memory(unlimited, unreachable="guess")


def test_a_fit_judged_for_the_workers_names_them_and_the_budget_caps_them(monkeypatch):
    monkeypatch.delenv(M.BUDGET_ENV, raising=False)
    monkeypatch.setattr(M, "_limits", lambda network=False: [(1 << 42, "memory")])  # this machine: plenty
    base = M._CHUNK_PROCESS_BASE
    fit = M.memory_fit((64, 64, 64), np.uint16, resident_input=True, worker_limit=base + (1 << 20))
    # (a worker's own process base is not the run's: QA measured a 400³ run peaking 0.41 GB above 0.29 GB)
    assert (fit.available, fit.limited_by, fit.on_workers, fit.fits) == (1 << 20, "workers", True, False)
    assert M.memory_fit((64, 64, 64), np.uint16, worker_limit=base // 2).available == 0
    monkeypatch.setenv(M.BUDGET_ENV, "512K")
    fit = M.memory_fit((64, 64, 64), np.uint16, resident_input=True, worker_limit=base + (1 << 20))
    assert (fit.available, fit.limited_by, fit.on_workers) == (1 << 19, "workers budget", True)
    assert not M.memory_fit((64, 64, 64), np.uint16).on_workers


def test_the_workers_memory_is_asked_once_in_a_while(cluster_of, monkeypatch):
    import core.chunked.analysis as A

    address = cluster_of(3 << 30)
    asked = []
    real = A._ask_worker_memory
    monkeypatch.setattr(A, "_ask_worker_memory", lambda *a: asked.append(a) or real(*a))
    assert [cluster_worker_memory(address) for _ in range(3)] == [3 << 30] * 3 and len(asked) == 1
    monkeypatch.setattr(A, "WORKER_MEMORY_TTL", 0.0)
    assert cluster_worker_memory(address) == 3 << 30 and len(asked) == 2


def test_the_cli_and_the_dashboard_share_the_rule():
    import inspect

    from core import cli

    src = inspect.getsource(cli._chunked_engine)
    assert "chunked_engine_for(" in src and "needs_chunked_engine" not in src
