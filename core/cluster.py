"""A local Dask cluster in its own process, for the dashboard's background jobs.

``distributed.LocalCluster(processes=True)`` cannot start inside a Streamlit
page (the spawned workers would run the page script again), so the dashboard
starts it here, as ``python -m core.cluster``: the process starts the cluster,
writes the scheduler's address to a file and lives as long as the process that
asked for it (``--parent-pid``).  When the dashboard's server stops, its local
cluster stops too and the jobs it was running show as interrupted on the next
start (:meth:`core.jobs.JobStore.reconcile`).  A real cluster is just another
scheduler address (``DETACH_SCHEDULER``); its workers must see the workspace
folder at the same path.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ._atomic import write_text
from ._liveness import _pid_alive

__all__ = ["LocalClusterInfo", "ensure_local_cluster"]

#: Seconds to wait for a new local cluster to write its address.
START_TIMEOUT_S = 90.0


class LocalClusterInfo(dict):
    """``{"address": str, "pid": int, "parent_pid": int, "workers": int}`` as written by the cluster process."""

    @property
    def address(self) -> str:
        return self["address"]

    @property
    def pid(self) -> int:
        return int(self["pid"])


def _read(info_file: Path) -> LocalClusterInfo | None:
    try:
        d = json.loads(info_file.read_text(encoding="utf-8"))
        return LocalClusterInfo(d) if isinstance(d, dict) and "address" in d and "pid" in d else None
    except (OSError, ValueError):
        return None


def ensure_local_cluster(info_file: str | os.PathLike, *, workers: int, parent_pid: int | None = None,
                         timeout: float = START_TIMEOUT_S) -> LocalClusterInfo:
    """The running local cluster of ``info_file`` if its process and its parent are alive, else a new one.

    Parameters
    ----------
    info_file : path
        Where the cluster process writes its address (JSON).
    workers : int
        Worker processes (one thread each).
    parent_pid : int, optional
        The process the cluster lives as long as (default: this one).
    timeout : float
        Seconds to wait for a new cluster.

    Raises
    ------
    RuntimeError
        If the cluster process exits or does not write its address in time (with its last error line).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1, got {workers!r}")
    info_file = Path(info_file)
    parent = os.getpid() if parent_pid is None else int(parent_pid)
    old = _read(info_file)
    if old is not None and _pid_alive(old.pid) and int(old.get("parent_pid", -1)) == parent:
        return old
    info_file.parent.mkdir(parents=True, exist_ok=True)
    info_file.unlink(missing_ok=True)
    log = info_file.with_suffix(".log")
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen([sys.executable, "-m", "core.cluster", "--info-file", str(info_file),
                                 "--workers", str(workers), "--parent-pid", str(parent)],
                                cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        info = _read(info_file)
        if info is not None and info.pid == proc.pid:
            return info
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    if proc.poll() is None:
        proc.terminate()
    lines = [ln for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    why = lines[-1].strip() if lines else f"no address within {timeout:.0f} s"
    raise RuntimeError(f"the local Dask cluster did not start: {why}")


def _serve(info_file: Path, workers: int, parent_pid: int) -> None:
    from .chunked.cluster import local_cluster

    cluster = local_cluster(workers, host="127.0.0.1")  # the same workers as the chunked engine's
    try:
        write_text(info_file, json.dumps({"address": cluster.scheduler_address, "pid": os.getpid(),
                                                 "parent_pid": parent_pid, "workers": workers}))
        while _pid_alive(parent_pid):
            time.sleep(1.0)
    finally:
        cluster.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m core.cluster", description=__doc__.splitlines()[0])
    ap.add_argument("--info-file", required=True)
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--parent-pid", type=int, required=True)
    a = ap.parse_args()
    _serve(Path(a.info_file), a.workers, a.parent_pid)
