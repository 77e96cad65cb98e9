"""Background jobs: long work (analyses, re-separations, sweeps) run on a Dask cluster, their state durable in the workspace.

A job is a row of ``jobs.sqlite`` in the workspace folder: what to run (``kind``
and a JSON ``spec``), who started it, its state, progress and result.  The
dashboard writes the row and hands :func:`execute` to an executor; whatever
runs :func:`execute` (a Dask worker process, or the calling process with
:class:`InlineExecutor`) reads the row, does the work through
:func:`core.runner.run_analysis` and writes progress and the outcome back.  So
a page that reruns, a closed browser tab or a second user never stops a job,
and every session sees the same list.

States: ``queued`` → ``running`` → ``done`` | ``failed`` | ``cancelled``; a job
whose worker process (or, while queued, whose local cluster) is gone becomes
``interrupted`` (:meth:`JobStore.reconcile`), and :meth:`JobStore.rerun` queues
a copy.  Cancelling is cooperative: a queued job never starts; a running one
stops at its next progress report (the steps of an analysis report every few
seconds; one long step, such as the watershed of a big volume, finishes first).

Kinds
-----
``analysis``
    ``spec = {"sample_id": int, "params": AnalysisParams.to_dict()}``: the
    sample's input is read by the worker.  With ``"chunked": {"chunk_size": N,
    "local_workers": K or None}`` (the dashboard adds it where the memory-budget
    rule says so: :func:`core.chunked.analysis.chunked_engine_for`) the
    analysis runs on the chunked engine (:func:`core.runner.run_chunked_analysis`):
    its chunks run as tasks of the job's own cluster (the job's task secedes
    from its worker meanwhile, :func:`distributed.worker_client`), and the
    phases and labels are stored as Zarr.
``separation``
    ``spec = {"sample_id", "params", "phases_from": analysis id}``: the phases
    of that analysis are separated and measured again (``presegmented``); on
    the chunked engine, with that analysis's chunk size, when it ran on it.
``sweep``
    ``spec = {"sample_id", "analysis_id", "options": SweepParams fields}``: the
    segmentation sweep of that finished analysis (:func:`core.runner.run_sweep`),
    kept beside its artefacts.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import _sqlite
from ._liveness import _pid_alive, own_start, run_is_orphaned

__all__ = [
    "ACTIVE", "FINISHED", "JOB_KINDS", "JOB_STATES", "ClusterExecutor", "InlineExecutor", "Job", "JobCancelled",
    "JobStore", "execute", "sample_snapshot", "sweep_options", "sweep_spec",
]

JOB_KINDS = ("analysis", "separation", "sweep")
JOB_STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
ACTIVE = ("queued", "running")
FINISHED = ("done", "failed", "cancelled", "interrupted")
#: Seconds between two progress writes of one job (the last one always goes through).
PROGRESS_EVERY_S = 0.5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    sample_id INTEGER,
    spec TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    result TEXT,
    error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    executor TEXT NOT NULL DEFAULT '',
    cluster_pid INTEGER,
    worker_pid INTEGER,
    worker_host TEXT,
    rerun_of INTEGER,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
"""


class JobCancelled(BaseException):
    """Raised inside a running job when its cancellation was asked for (a BaseException, like KeyboardInterrupt,
    so that no ``except Exception`` in the work swallows it)."""


@dataclass(frozen=True)
class Job:
    """One row of the job table (times in seconds since the epoch)."""

    id: int
    kind: str
    title: str
    sample_id: int | None
    spec: dict
    owner: str
    state: str
    progress: float
    message: str
    result: dict | None
    error: str | None
    cancel_requested: bool
    executor: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    rerun_of: int | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def analysis_id(self) -> int | None:
        """The analysis the job stored (done jobs of kind analysis / separation) or swept (kind sweep)."""
        return None if not self.result else self.result.get("analysis_id")


def _check_spec(kind: str, spec: dict) -> dict:
    if kind not in JOB_KINDS:
        raise ValueError(f"job kind must be one of {', '.join(JOB_KINDS)}, got {kind!r}")
    if not isinstance(spec, dict) or not isinstance(spec.get("sample_id"), int) or isinstance(spec["sample_id"], bool):
        raise ValueError("a job spec needs the sample id as a whole number ('sample_id')")
    if kind == "sweep":
        if not isinstance(spec.get("analysis_id"), int) or not isinstance(spec.get("options"), dict):
            raise ValueError("a sweep job needs the analysis it sweeps ('analysis_id') and its options ('options')")
    elif not isinstance(spec.get("params"), dict):
        raise ValueError("a job spec needs the analysis parameters as a dict ('params')")
    q = spec.get("queued_as")
    if q is not None and not (isinstance(q, dict) and {"spacing", "axis", "separator_side", "source",
                                                        "source_options"} <= set(q)):
        raise ValueError("a job's 'queued_as' must be the sample's settings as sample_snapshot writes them")
    if kind == "separation" and not isinstance(spec.get("phases_from"), int):
        raise ValueError("a separation job needs the analysis whose phases it separates ('phases_from')")
    try:
        return json.loads(json.dumps(spec, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"a job spec must be plain JSON: {exc}") from None


class JobStore:
    """The job table of one workspace folder (``ROOT/jobs.sqlite``; several processes may use it at once)."""

    DB_NAME = "jobs.sqlite"

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / self.DB_NAME
        con = self._connect()
        try:
            con.executescript(_SCHEMA)
        finally:
            con.close()

    def _connect(self) -> sqlite3.Connection:
        return _sqlite.connect(self.db_path)

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return _sqlite.transaction(self.db_path)

    @staticmethod
    def _job(r: sqlite3.Row) -> Job:
        return Job(id=int(r["id"]), kind=r["kind"], title=r["title"], sample_id=r["sample_id"],
                   spec=json.loads(r["spec"]), owner=r["owner"], state=r["state"], progress=float(r["progress"]),
                   message=r["message"], result=json.loads(r["result"]) if r["result"] else None, error=r["error"],
                   cancel_requested=bool(r["cancel_requested"]), executor=r["executor"],
                   created_at=float(r["created_at"]), started_at=r["started_at"], finished_at=r["finished_at"],
                   rerun_of=r["rerun_of"])

    # ---------------------------------------------------------------- reading

    def get(self, job_id: int) -> Job:
        con = self._connect()
        try:
            r = con.execute("SELECT * FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
        finally:
            con.close()
        if r is None:
            raise KeyError(f"no job {job_id} in {self.root}")
        return self._job(r)

    def list(self, *, states: tuple[str, ...] | None = None, limit: int = 50) -> list[Job]:
        """Jobs, newest first (``states`` keeps only those)."""
        sql, args = "SELECT * FROM jobs", []
        if states:
            sql += f" WHERE state IN ({','.join('?' * len(states))})"
            args += list(states)
        sql += " ORDER BY id DESC LIMIT ?"
        con = self._connect()
        try:
            rows = con.execute(sql, (*args, int(limit))).fetchall()
        finally:
            con.close()
        return [self._job(r) for r in rows]

    def overview(self, *, newest: int, done_after: float | None = None) -> list[Job]:
        """In one query, newest first: the ``newest`` newest jobs, every queued or running one, and every job done
        after ``done_after`` (seconds since the epoch; None: none of those beyond the newest).

        What the dashboard's jobs panel reads every few seconds: its first ``newest`` rows are the table's newest
        (they are all in the result, and no row of it is newer), the active ones are all there however old (an
        "Analyse all" of many samples queues more than the newest), and so are the jobs done since a page was drawn.
        """
        active = ",".join("?" * len(ACTIVE))
        sql = (f"SELECT * FROM jobs WHERE id IN (SELECT id FROM jobs ORDER BY id DESC LIMIT ?) OR state IN ({active})"
               + (" OR (state = 'done' AND finished_at > ?)" if done_after is not None else "") + " ORDER BY id DESC")
        args = [int(newest), *ACTIVE] + ([float(done_after)] if done_after is not None else [])
        con = self._connect()
        try:
            rows = con.execute(sql, args).fetchall()
        finally:
            con.close()
        return [self._job(r) for r in rows]

    # ---------------------------------------------------------------- writing

    def create(self, kind: str, spec: dict, *, title: str, owner: str = "", executor: str = "",
               cluster_pid: int | None = None, rerun_of: int | None = None) -> Job:
        """A new ``queued`` job (validated spec)."""
        spec = _check_spec(kind, spec)
        with self._tx() as con:
            cur = con.execute(
                "INSERT INTO jobs(kind, title, sample_id, spec, owner, state, message, executor, cluster_pid, "
                "rerun_of, created_at) VALUES (?, ?, ?, ?, ?, 'queued', 'waiting for a worker', ?, ?, ?, ?)",
                (kind, str(title), spec["sample_id"], json.dumps(spec), str(owner), str(executor), cluster_pid,
                 rerun_of, time.time()))
            job_id = int(cur.lastrowid)
        return self.get(job_id)

    def start(self, job_id: int, *, pid: int, host: str) -> bool:
        """Mark a queued job running on this worker; False when it is no longer queued (cancelled meanwhile)."""
        with self._tx() as con:
            cur = con.execute(
                "UPDATE jobs SET state = 'running', started_at = ?, worker_pid = ?, worker_host = ?, "
                "message = 'starting' WHERE id = ? AND state = 'queued' AND cancel_requested = 0",
                (time.time(), int(pid), str(host), int(job_id)))
            return cur.rowcount == 1

    def report(self, job_id: int, fraction: float, message: str) -> bool:
        """Write progress; returns whether cancelling was asked for."""
        with self._tx() as con:
            con.execute("UPDATE jobs SET progress = ?, message = ? WHERE id = ? AND state = 'running'",
                        (float(min(max(fraction, 0.0), 1.0)), str(message)[:500], int(job_id)))
            r = con.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
        return bool(r and r["cancel_requested"])

    def _end(self, job_id: int, state: str, *, result: dict | None = None, error: str | None = None,
             message: str = "") -> None:
        with self._tx() as con:
            con.execute(
                "UPDATE jobs SET state = ?, result = ?, error = ?, message = ?, finished_at = ?, "
                "progress = CASE WHEN ? = 'done' THEN 1.0 ELSE progress END WHERE id = ?",
                (state, json.dumps(result) if result is not None else None, error, message, time.time(), state,
                 int(job_id)))

    def finish(self, job_id: int, result: dict, message: str = "done") -> None:
        self._end(job_id, "done", result=result, message=message)

    def fail(self, job_id: int, error: str) -> None:
        self._end(job_id, "failed", error=error, message="failed")

    def fail_if_active(self, job_id: int, error: str) -> bool:
        """Mark a job failed only while it is still queued or running (its cluster dropped it); whether it was."""
        with self._tx() as con:
            cur = con.execute("UPDATE jobs SET state = 'failed', error = ?, message = 'failed', finished_at = ? "
                              "WHERE id = ? AND state IN ('queued', 'running')", (str(error), time.time(), int(job_id)))
            return cur.rowcount == 1

    def mark_cancelled(self, job_id: int) -> None:
        self._end(job_id, "cancelled", message="cancelled", error=self.get(job_id).error)  # (who asked, kept)

    def cancel(self, job_id: int, *, by: str = "") -> Job:
        """Ask a job to stop: a queued one is cancelled at once, a running one at its next progress report.

        ``by``: who asked (a dashboard session's name), kept as the job's ``error`` ("at the request of ...") where it
        is not the job's owner: in a shared workspace any session may cancel any job, and the owner is told who
        did (QA walk 11: "cancelled on request" with nothing to say another session had asked).
        """
        why = f"at the request of {by.strip()}" if by.strip() else None
        with self._tx() as con:
            con.execute("UPDATE jobs SET cancel_requested = 1, "
                        "error = CASE WHEN ? IS NOT NULL AND owner != ? THEN ? ELSE error END "
                        "WHERE id = ? AND state IN ('queued', 'running')",
                        (why, by.strip(), why, int(job_id)))
            con.execute("UPDATE jobs SET state = 'cancelled', message = 'cancelled before it started', "
                        "finished_at = ? WHERE id = ? AND state = 'queued'", (time.time(), int(job_id)))
        return self.get(job_id)

    def rerun(self, job_id: int, *, owner: str = "", executor: str = "", cluster_pid: int | None = None,
              queued_as: dict | None = None) -> Job:
        """A new queued copy of a finished job (the caller submits it); ``queued_as`` (:func:`sample_snapshot` of
        the sample now) replaces the settings the old job was queued with."""
        old = self.get(job_id)
        if old.active:
            raise ValueError(f"job {job_id} is still {old.state}: cancel it first")
        spec = dict(old.spec)
        if queued_as is not None:
            spec["queued_as"] = queued_as
        return self.create(old.kind, spec, title=old.title, owner=owner or old.owner, executor=executor,
                           cluster_pid=cluster_pid, rerun_of=old.id)

    def reconcile(self) -> list[int]:
        """Mark ``interrupted`` the running jobs whose worker process on this host is gone, and the queued ones
        whose local cluster process is gone; returns their ids.

        A job on another host (a remote cluster) is left as it is: its process cannot be checked from here.
        """
        here, me, start = socket.gethostname(), os.getpid(), own_start()
        gone = []
        with self._tx() as con:
            for r in con.execute("SELECT id, state, worker_pid, worker_host, cluster_pid, started_at, created_at "
                                 "FROM jobs WHERE state IN ('queued', 'running')").fetchall():
                if r["state"] == "running":
                    dead = r["worker_host"] == here and run_is_orphaned(r["worker_pid"], r["started_at"] or 0.0,
                                                                        me, start)
                else:
                    dead = r["cluster_pid"] is not None and not _pid_alive(r["cluster_pid"])
                if dead:
                    con.execute("UPDATE jobs SET state = 'interrupted', finished_at = ?, message = ? WHERE id = ?",
                                (time.time(), "interrupted: the process running it stopped (server restart?)",
                                 r["id"]))
                    gone.append(int(r["id"]))
        return gone


# --------------------------------------------------------------------------- running a job


def _progress(store: JobStore, job_id: int) -> Callable[[float, str], None]:
    last = [0.0]

    def progress(fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_EVERY_S and fraction < 1.0:
            return
        last[0] = now
        if store.report(job_id, fraction, message):
            raise JobCancelled(f"job {job_id} was cancelled")

    return progress


def sweep_options(d: dict):
    """:class:`core.uncertainty.SweepParams` from a sweep job's ``options`` (the inverse of :func:`sweep_spec`)."""
    from .uncertainty import SweepParams

    try:
        return SweepParams(**{**d, "variants": tuple(d.get("variants", ()))})
    except TypeError as exc:
        raise ValueError(f"not sweep options: {exc}") from None


def sweep_spec(sample_id: int, analysis_id: int, options) -> dict:
    """The spec of a ``sweep`` job of an analysis with these :class:`core.uncertainty.SweepParams`."""
    from dataclasses import asdict

    return {"sample_id": int(sample_id), "analysis_id": int(analysis_id),
            "options": {**asdict(options), "variants": list(options.variants)}}


def sample_snapshot(sample) -> dict:
    """What of a sample an analysis measures with, as a job is queued (its spec's ``queued_as``): the voxel size,
    thickness axis, separator side, source and how it is read.  The job runs with these even when the sample is
    edited while it waits (QA: a voxel size saved by a colleague changed a job queued before, unsaid)."""
    return {"spacing": [float(v) for v in sample.spacing], "axis": int(sample.axis),
            "separator_side": str(sample.separator_side), "source": sample.source,
            "source_options": sample.source_options}


def _queued_sample(ws, job: Job):
    """The job's sample with the settings it was queued with (:func:`sample_snapshot`), else as it is now."""
    from dataclasses import replace

    from .inputs import input_from_source

    s = ws.get_sample(int(job.spec["sample_id"]))
    q = job.spec.get("queued_as")
    if not isinstance(q, dict):
        return s
    return replace(s, spacing=tuple(float(v) for v in q["spacing"]), axis=int(q["axis"]),
                   separator_side=str(q["separator_side"]),
                   input=input_from_source(q["source"], q["source_options"]))


def _run(root: Path, job: Job, progress: Callable[[float, str], None]) -> dict:
    from .pipeline import AnalysisParams
    from .runner import run_analysis, run_sweep
    from .workspace import Workspace

    ws = Workspace(root)
    if job.kind == "sweep":
        aid = int(job.spec["analysis_id"])
        progress(0.0, f"reading analysis {aid}")
        result = run_sweep(ws, aid, sweep_options(job.spec["options"]), progress=progress)
        dev = float(result.spread.max_deviation)
        return {"analysis_id": aid, "n_runs": len(result.rows) - 1, "max_deviation": dev if dev == dev else None}
    params = AnalysisParams.from_dict(job.spec["params"])
    sample = _queued_sample(ws, job)
    chunked = _chunked_spec(ws, job)
    if chunked is not None:
        from .runner import run_chunked_analysis

        progress(0.0, f"chunked engine: chunks of {chunked['chunk_size']}³")
        with _job_scheduler() as client:
            local = chunked.get("local_workers")
            memory = None
            if local is None and client is not None:  # a cluster by address: its workers' memory limit
                from .chunked.analysis import client_worker_memory

                memory = client_worker_memory(client)
            a = run_chunked_analysis(ws, sample, params, chunk_size=int(chunked["chunk_size"]),
                                     local_workers=local, worker_memory=memory,
                                     phases_from=job.spec.get("phases_from"), progress=progress)
        return {"analysis_id": a.id, "n_particles": a.n_particles}
    if job.kind == "separation":
        src = int(job.spec["phases_from"])
        progress(0.0, f"reading the phases of analysis {src}")
        phases = ws.load_phases(src)
        a = run_analysis(ws, sample, phases, params, presegmented=True, progress=progress,
                         extra_provenance={"phases_from_analysis": src})
    else:
        progress(0.0, "reading the volume")
        a = run_analysis(ws, sample, None, params, progress=progress)
    return {"analysis_id": a.id, "n_particles": a.n_particles}


def _chunked_spec(ws, job: Job) -> dict | None:
    """How a job runs on the chunked engine (``{"chunk_size", "local_workers"}``), or None for the whole volume.

    An analysis: its spec's ``chunked``.  A separation: the chunking of the
    analysis whose phases it separates, when that one is stored as Zarr.
    """
    if job.kind == "analysis":
        ch = job.spec.get("chunked")
        if ch is None:
            return None
        if not isinstance(ch, dict) or not isinstance(ch.get("chunk_size"), int) or ch["chunk_size"] < 8:
            raise ValueError(f"a job's 'chunked' must be {{'chunk_size': N >= 8, 'local_workers': K}}, got {ch!r}")
        return ch
    if job.kind == "separation":
        src = ws.get_analysis(int(job.spec["phases_from"]))
        if ws.is_chunked(src):
            return {"chunk_size": int(src.provenance.get("chunking", {}).get("chunk_size") or 128),
                    "local_workers": (job.spec.get("chunked") or {}).get("local_workers")}
    return None


@contextlib.contextmanager
def _job_scheduler():
    """The dask scheduler of a job's chunk tasks: on a cluster worker, that cluster (the job's task secedes, so
    its worker runs chunks meanwhile; yields its client); elsewhere (:class:`InlineExecutor`) the current dask
    scheduler (yields None)."""
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        yield None
        return
    import dask
    from distributed import worker_client

    with worker_client() as client, dask.config.set(scheduler=client):
        yield client


def execute(root: str | os.PathLike, job_id: int) -> str:
    """Run one queued job to its end and record the outcome; returns the final state.

    This is what a Dask worker runs (a plain top-level function: it pickles by
    reference).  Never raises for a failure of the work itself: that is stored
    in the row as one sentence.
    """
    from .runner import one_sentence

    store = JobStore(root)
    job = store.get(job_id)
    if not store.start(job_id, pid=os.getpid(), host=socket.gethostname()):
        return store.get(job_id).state
    try:
        result = _run(store.root, job, _progress(store, job_id))
    except JobCancelled:
        store.mark_cancelled(job_id)
        return "cancelled"
    except Exception as exc:  # the work failed: keep the reason, the worker goes on
        if store.get(job_id).cancel_requested:  # asked to stop (its sample deleted meanwhile): a cancel, said so
            store.mark_cancelled(job_id)
            return "cancelled"
        store.fail(job_id, one_sentence(exc))
        return "failed"
    store.finish(job_id, result, message=_done_message(job.kind, result))
    return "done"


def _done_message(kind: str, result: dict) -> str:
    if kind == "sweep":
        dev = result["max_deviation"]
        return (f"analysis {result['analysis_id']} swept: {result['n_runs']} runs"
                + (f", the median moved by at most {dev:.3f}" if dev is not None else ""))
    return f"analysis {result['analysis_id']}: {result['n_particles']} particles"


# --------------------------------------------------------------------------- executors


class InlineExecutor:
    """Runs a job in the calling process before returning (tests; a machine without a cluster)."""

    name = "inline"
    cluster_pid = None

    def submit(self, root, job_id: int) -> None:
        execute(root, job_id)


class ClusterExecutor:
    """Submits jobs to a Dask cluster through a ``distributed.Client`` (the scheduler's address).

    Workers must see the workspace folder at the same path (a shared file
    system for a real cluster), and the scheduler and workers must import this
    project (``core``: its folder on their ``PYTHONPATH``): checked on
    connecting.  ``cluster_pid`` is the pid of a local cluster process
    (:mod:`core.cluster`), so that a queued job whose cluster died can be
    marked interrupted; None for a remote scheduler.  A job the cluster drops
    (it cannot unpickle it, its scheduler stops) is marked failed with why.
    """

    name = "dask"

    def __init__(self, address: str, *, cluster_pid: int | None = None, timeout: float = 20.0):
        from distributed import Client

        self.address = str(address)
        self.cluster_pid = cluster_pid
        self.client = Client(self.address, timeout=timeout, set_as_default=False)
        self._futures: dict[int, Any] = {}
        try:
            self._check_environment()
        except BaseException:
            self.close()
            raise

    def _check_environment(self) -> None:
        """Refuse a cluster whose scheduler or workers cannot import this project (QA: its jobs waited "queued"
        forever while the scheduler logged ModuleNotFoundError).  The check is a function sent by value."""
        import importlib.util

        check = lambda: importlib.util.find_spec("core") is not None  # noqa: E731 - a lambda pickles by value
        try:
            on_scheduler = bool(self.client.run_on_scheduler(check))
            on_workers = self.client.run(check)
        except (OSError, TimeoutError) as exc:
            raise RuntimeError(f"the Dask scheduler at {self.address} did not answer: {exc}") from None
        missing = ([] if on_scheduler else ["its scheduler"]) + (
            [f"{sum(not ok for ok in on_workers.values())} of its {len(on_workers)} workers"]
            if not all(on_workers.values()) else [])
        if missing:
            raise RuntimeError(f"the Dask cluster at {self.address} cannot import this project's code (the package "
                               f"'core'): {' and '.join(missing)}; start them with the project folder on PYTHONPATH")

    @property
    def connected(self) -> bool:
        """Whether the client still talks to its scheduler (a client that lost it for 20 s closes for good)."""
        return getattr(self.client, "status", "") in ("running", "connecting")

    def submit(self, root, job_id: int) -> None:
        try:
            fut = self.client.submit(execute, os.fspath(root), int(job_id), pure=False, key=f"detach-job-{job_id}",
                                     retries=0)
        except Exception as exc:  # noqa: BLE001 - a closed client, a scheduler gone: said as one sentence
            raise RuntimeError(f"the Dask scheduler at {self.address} did not take the job "
                               f"({type(exc).__name__}: {exc})") from None
        self._futures[int(job_id)] = fut  # kept so that the scheduler does not forget the task
        fut.add_done_callback(lambda f, j=int(job_id), r=os.fspath(root): self._ended(r, j, f))

    def _ended(self, root: str, job_id: int, fut) -> None:
        """A job's future ended: where the cluster dropped it (an error before the job ran, a scheduler gone), the
        job, still queued or running in its table, is marked failed with why."""
        self._futures.pop(job_id, None)
        status = getattr(fut, "status", "")
        if status == "finished":
            return
        try:
            store = JobStore(root)
            job = store.get(job_id)
        except (OSError, KeyError, sqlite3.Error):
            return
        if not job.active or (status == "cancelled" and job.cancel_requested):
            return
        if status == "error":
            try:
                exc = fut.exception(timeout=5)
                why = " ".join(str(exc).split()) or type(exc).__name__
            except Exception:  # noqa: BLE001 - the client closing meanwhile
                why = "an error on the cluster"
            store.fail_if_active(job_id, f"The Dask cluster at {self.address} could not run the job: {why}")
        else:  # cancelled or lost: the scheduler stopped, restarted or forgot it
            store.fail_if_active(job_id, f"The Dask cluster at {self.address} dropped the job ({status}): its "
                                         "scheduler stopped or restarted; run it again.")

    def cancel(self, job_id: int) -> None:
        fut = self._futures.get(int(job_id))
        if fut is not None:
            fut.cancel()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
