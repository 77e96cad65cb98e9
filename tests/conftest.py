"""Fixtures shared by tests/core and tests/app."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import dask
import pytest

# helpers shared by tests/core and tests/app (amira_files)
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def demo_tif_40(tmp_path_factory):
    """A 40³ pristine demo electrode's greyscale TIFF (seed 5, 0.4 µm voxels), written once per test session.

    Tests read it (as a file sample or a CLI input); none may write to it.
    """
    from core import cli

    d = tmp_path_factory.mktemp("demo40") / "D"
    assert cli.main(["demo", "--out", str(d), "--seed", "5", "--size", "40", "--names", "pristine", "-q"]) == 0
    return d / "pristine" / "greyscale.tif"


@pytest.fixture
def sync_cluster(monkeypatch):
    """The chunked engine's tasks in this process (no worker processes to start): dask's synchronous scheduler."""
    import core.chunked as chunked

    @contextlib.contextmanager
    def inline(workers=None, address=None, **kw):
        with dask.config.set(scheduler="sync"):
            yield None

    monkeypatch.setattr(chunked, "cluster", inline)


@pytest.fixture(scope="module")
def cluster_of():
    """``cluster_of(limit)``: the address of an in-process cluster of 2 workers with that memory limit each (bytes).

    Their memory monitor is off (the workers run nothing in these tests): a limit below this process's size
    would otherwise pause them. The limit the scheduler reports is capped at the machine's memory by distributed.
    """
    from distributed import LocalCluster

    made = []

    def make(limit):
        off = {f"distributed.worker.memory.{k}": False for k in ("target", "spill", "pause", "terminate")}
        with dask.config.set(off):
            c = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, memory_limit=limit,
                             dashboard_address=None)
        made.append(c)
        return c.scheduler_address

    yield make
    for c in made:
        c.close()
