"""Background jobs (core.jobs): durable states, progress, cancelling, interruption, and a real local Dask cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from core.jobs import ClusterExecutor, InlineExecutor, JobCancelled, JobStore, execute
from core.pipeline import AnalysisParams
from core.workspace import Workspace


def _ws(tmp_path, n=1):
    ws = Workspace(tmp_path / "ws")
    ids = [ws.add_sample(f"d{i}", "demo:pristine", spacing=0.4,
                         source_options={"shape": [24, 24, 24], "seed": i}).id for i in range(n)]
    return ws, ids


def _file_sample(ws, tmp_path) -> int:
    """A 32³ synthetic greyscale as a TIFF file sample (the chunked engine reads files)."""
    from core.io import save_tiff
    from core.synth import demo_electrode

    path = tmp_path / "big.tif"
    save_tiff(path, demo_electrode("pristine", shape=(32, 32, 32), rng=3).greyscale, (0.4, 0.4, 0.4))
    return ws.add_sample("big", str(path), spacing=0.4).id


def test_an_analysis_job_runs_records_progress_and_its_result(tmp_path):
    ws, [sid] = _ws(tmp_path)
    store = JobStore(ws.root)
    job = store.create("analysis", {"sample_id": sid, "params": AnalysisParams().to_dict()}, title="d0",
                       owner="ana", executor="inline")
    assert (job.state, job.progress, job.owner) == ("queued", 0.0, "ana")
    InlineExecutor().submit(ws.root, job.id)
    done = store.get(job.id)
    assert done.state == "done" and done.progress == 1.0 and done.finished_at >= done.started_at
    a = ws.get_analysis(done.analysis_id)
    assert a.status == "done" and a.n_particles == done.result["n_particles"] > 0
    assert f"{a.n_particles} particles" in done.message
    # a second store on the same folder (another user's server) sees the same job
    assert JobStore(ws.root).list()[0].id == job.id


def test_a_separation_job_reuses_the_phases_of_an_analysis(tmp_path):
    ws, [sid] = _ws(tmp_path)
    store = JobStore(ws.root)
    first = store.create("analysis", {"sample_id": sid, "params": AnalysisParams().to_dict()}, title="d0")
    execute(ws.root, first.id)
    src = store.get(first.id).analysis_id
    params = AnalysisParams().to_dict()
    params["separation"]["merge_ratio"] = 0.0
    sep = store.create("separation", {"sample_id": sid, "params": params, "phases_from": src}, title="d0")
    assert execute(ws.root, sep.id) == "done"
    a = ws.get_analysis(store.get(sep.id).analysis_id)
    assert a.provenance["phases_from_analysis"] == src and a.provenance["presegmented"]
    assert a.params["separation"]["merge_ratio"] == 0.0


def test_a_sweep_job_keeps_the_sweep_of_an_analysis(tmp_path):
    from core.jobs import sweep_options, sweep_spec
    from core.uncertainty import SweepParams, sweep

    ws, [sid] = _ws(tmp_path)
    store = JobStore(ws.root)
    first = store.create("analysis", {"sample_id": sid, "params": AnalysisParams().to_dict()}, title="d0")
    execute(ws.root, first.id)
    aid = store.get(first.id).analysis_id
    options = SweepParams(variants=("low+", "h-"))
    assert sweep_options(sweep_spec(sid, aid, options)["options"]) == options
    job = store.create("sweep", sweep_spec(sid, aid, options), title="sweep d0")
    assert execute(ws.root, job.id) == "done"
    done = store.get(job.id)
    assert done.analysis_id == aid and done.result["n_runs"] == 2 and "2 runs" in done.message
    kept = ws.load_sweep(aid, options)
    a = ws.get_analysis(aid)
    direct = sweep(ws.load_volume(sid), a.resolved, spacing=ws.get_sample(sid).spacing, options=options,
                   baseline_phases=ws.load_phases(a), baseline_table=ws.load_table(aid))
    assert kept == direct
    # a sweep of an analysis that is not there fails with one sentence; a spec without options is refused
    gone = store.create("sweep", sweep_spec(sid, aid + 99, options), title="gone")
    assert execute(ws.root, gone.id) == "failed" and "\n" not in store.get(gone.id).error
    with pytest.raises(ValueError, match="options"):
        store.create("sweep", {"sample_id": sid, "analysis_id": aid}, title="x")


def test_a_failing_job_keeps_one_sentence_and_a_bad_spec_is_refused(tmp_path):
    ws, [sid] = _ws(tmp_path)
    store = JobStore(ws.root)
    job = store.create("analysis", {"sample_id": sid + 99, "params": AnalysisParams().to_dict()}, title="gone")
    assert execute(ws.root, job.id) == "failed"
    failed = store.get(job.id)
    assert failed.error and "\n" not in failed.error
    with pytest.raises(ValueError, match="kind"):
        store.create("train", {"sample_id": sid, "params": {}}, title="x")
    with pytest.raises(ValueError, match="sample id"):
        store.create("analysis", {"sample_id": "1", "params": {}}, title="x")
    with pytest.raises(ValueError, match="phases_from"):
        store.create("separation", {"sample_id": sid, "params": {}}, title="x")


def test_cancel_a_queued_job_and_a_running_one_at_its_next_report(tmp_path, monkeypatch):
    ws, [sid] = _ws(tmp_path)
    store = JobStore(ws.root)
    spec = {"sample_id": sid, "params": AnalysisParams().to_dict()}
    queued = store.create("analysis", spec, title="q")
    assert store.cancel(queued.id).state == "cancelled"
    assert execute(ws.root, queued.id) == "cancelled"  # never starts
    assert ws.list_analyses() == []
    # running: the cancel is seen at the next progress report, the analysis row is marked failed
    import core.jobs as jobs

    monkeypatch.setattr(jobs, "PROGRESS_EVERY_S", 0.0)
    running = store.create("analysis", spec, title="r")
    real_report = JobStore.report

    def report_then_cancel(self, job_id, fraction, message):
        if fraction > 0.2:
            JobStore(self.root).cancel(job_id)
        return real_report(self, job_id, fraction, message)

    monkeypatch.setattr(JobStore, "report", report_then_cancel)
    assert execute(ws.root, running.id) == "cancelled"
    assert store.get(running.id).state == "cancelled"
    [a] = Workspace(ws.root).list_analyses(status=None)
    assert a.status == "failed"
    assert issubclass(JobCancelled, BaseException) and not issubclass(JobCancelled, Exception)


def test_jobs_of_dead_processes_become_interrupted_and_can_be_rerun(tmp_path):
    ws, [sid] = _ws(tmp_path)
    store = JobStore(ws.root)
    spec = {"sample_id": sid, "params": AnalysisParams().to_dict()}
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    running = store.create("analysis", spec, title="r")
    assert store.start(running.id, pid=dead_pid, host=os.uname().nodename)
    queued = store.create("analysis", spec, title="q", cluster_pid=dead_pid)
    alive = store.create("analysis", spec, title="alive", cluster_pid=os.getpid())
    remote = store.create("analysis", spec, title="remote")
    assert store.start(remote.id, pid=dead_pid, host="another-host")
    assert sorted(store.reconcile()) == sorted([running.id, queued.id])
    assert [store.get(j).state for j in (running.id, queued.id, alive.id, remote.id)] == [
        "interrupted", "interrupted", "queued", "running"]
    with pytest.raises(ValueError, match="still queued"):
        store.rerun(alive.id)
    again = store.rerun(running.id, owner="bo")
    assert (again.state, again.rerun_of, again.owner, again.spec) == ("queued", running.id, "bo", spec)
    assert execute(ws.root, again.id) == "done"


def test_jobs_run_on_a_local_dask_cluster_in_its_own_process(tmp_path):
    from core.cluster import ensure_local_cluster

    ws, ids = _ws(tmp_path, n=2)
    info = ensure_local_cluster(tmp_path / "cluster.json", workers=2)
    try:
        assert ensure_local_cluster(tmp_path / "cluster.json", workers=2).pid == info.pid  # reused
        ex = ClusterExecutor(info.address, cluster_pid=info.pid)
        store = JobStore(ws.root)
        jobs = [store.create("analysis", {"sample_id": s, "params": AnalysisParams().to_dict()}, title=str(s),
                             executor=ex.name, cluster_pid=info.pid) for s in ids]
        for j in jobs:
            ex.submit(ws.root, j.id)
        t0 = time.monotonic()
        while any(store.get(j.id).active for j in jobs) and time.monotonic() - t0 < 120:
            time.sleep(0.5)
        got = [store.get(j.id) for j in jobs]
        assert [j.state for j in got] == ["done", "done"], [j.error for j in got]
        pids = {int(store._connect().execute("SELECT worker_pid FROM jobs WHERE id = ?", (j.id,)).fetchone()[0])
                for j in got}
        assert os.getpid() not in pids  # ran in the workers, not here
        # a chunked analysis: its job secedes from its worker and runs its chunks as tasks of the same cluster
        big = _file_sample(ws, tmp_path)

        def chunked_job(local_workers):
            job = store.create("analysis", {"sample_id": big, "params": AnalysisParams().to_dict(),
                                            "chunked": {"chunk_size": 16, "local_workers": local_workers}},
                               title="big", executor=ex.name, cluster_pid=info.pid)
            ex.submit(ws.root, job.id)
            t0 = time.monotonic()
            while store.get(job.id).active and time.monotonic() - t0 < 120:
                time.sleep(0.5)
            done = store.get(job.id)
            assert done.state == "done", done.error
            return ws.get_analysis(done.analysis_id)

        a = chunked_job(2)
        assert ws.is_chunked(a) and a.provenance["chunking"]["chunk_size"] == 16 and a.n_particles > 0
        # submitted as to a cluster by address (no local workers named): the job asks its client for the workers'
        # memory limit (their windows fit it here: the same halo and the same particles)
        b = chunked_job(None)
        assert b.provenance["chunking"] == a.provenance["chunking"] and b.n_particles == a.n_particles
        ex.close()
    finally:
        os.kill(info.pid, 15)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 30:
        try:
            os.kill(info.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)


def test_a_queued_job_runs_with_the_settings_it_was_queued_with(tmp_path):
    """QA: a colleague saved another voxel size while a job waited for a worker, and the job ran with it, unsaid.
    The job keeps its sample's settings as queued (``queued_as``); a re-run takes the sample's settings of then."""
    from core.jobs import sample_snapshot

    ws, [sid] = _ws(tmp_path)
    store = JobStore(ws.root)
    job = store.create("analysis", {"sample_id": sid, "params": AnalysisParams().to_dict(),
                                    "queued_as": sample_snapshot(ws.get_sample(sid))}, title="d0")
    ws.update_sample(sid, spacing=(0.5, 0.5, 0.5))  # saved while the job waits
    assert execute(ws.root, job.id) == "done"
    assert ws.get_analysis(store.get(job.id).analysis_id).provenance["spacing_um"] == [0.4, 0.4, 0.4]
    again = store.rerun(job.id, queued_as=sample_snapshot(ws.get_sample(sid)))
    assert execute(ws.root, again.id) == "done"
    assert ws.get_analysis(store.get(again.id).analysis_id).provenance["spacing_um"] == [0.5, 0.5, 0.5]


class _DroppedFuture:
    """What a ``distributed.Future`` of a job the cluster dropped looks like to its done callback."""

    def __init__(self, status, exc=None):
        self.status, self._exc = status, exc

    def exception(self, timeout=None):
        return self._exc


def test_a_job_the_cluster_drops_is_marked_failed_with_why(tmp_path):
    """QA: a cluster that could not unpickle the job (no 'core' on its scheduler) or whose scheduler stopped left
    the job 'queued: waiting for a worker' forever; the future's end now marks it failed, once, with why.  A job
    cancelled on request, or done meanwhile, is left as it is."""
    ws, [sid] = _ws(tmp_path)
    store = JobStore(ws.root)
    ex = object.__new__(ClusterExecutor)  # no client needed for its callback
    ex.address, ex._futures = "tcp://sched:8786", {}
    spec = {"sample_id": sid, "params": AnalysisParams().to_dict()}
    a, b, c, d = (store.create("analysis", spec, title=str(i)) for i in range(4))
    ex._ended(os.fspath(ws.root), a.id, _DroppedFuture("error", RuntimeError("Error during deserialization of the "
                                                                            "task graph.")))
    assert store.get(a.id).state == "failed"
    assert store.get(a.id).error == ("The Dask cluster at tcp://sched:8786 could not run the job: Error during "
                                     "deserialization of the task graph.")
    ex._ended(os.fspath(ws.root), b.id, _DroppedFuture("cancelled"))
    assert store.get(b.id).state == "failed" and "dropped the job (cancelled)" in store.get(b.id).error
    store.cancel(c.id)
    ex._ended(os.fspath(ws.root), c.id, _DroppedFuture("cancelled"))
    assert store.get(c.id).state == "cancelled"
    execute(ws.root, d.id)
    ex._ended(os.fspath(ws.root), d.id, _DroppedFuture("lost"))
    assert store.get(d.id).state == "done"


def test_a_cluster_that_cannot_import_the_project_is_refused(tmp_path):
    """QA: a scheduler started without the project on its PYTHONPATH took jobs it could not unpickle; connecting
    to it now says so in one sentence."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    bare = subprocess.run([sys.executable, "-c", "import core"], cwd=tmp_path, env=env, capture_output=True)
    if bare.returncode == 0:
        pytest.skip("the project is importable from anywhere here (installed): nothing to refuse")
    info = tmp_path / "scheduler.json"
    proc = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", "0",
                             "--no-dashboard", "--scheduler-file", str(info)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.monotonic()
        while not info.is_file() and time.monotonic() - t0 < 60:
            time.sleep(0.2)
        import json

        address = json.loads(info.read_text())["address"]
        with pytest.raises(RuntimeError, match=r"^the Dask cluster at tcp://\S+ cannot import this project's code "
                                               r"\(the package 'core'\): its scheduler; start them with the project "
                                               r"folder on PYTHONPATH$"):
            ClusterExecutor(address, timeout=20)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_job_whose_sample_is_deleted_after_a_cancel_ends_cancelled(tmp_path, monkeypatch):
    """QA: deleting a sample while its job ran ended the job "failed: missing key 'no analysis with id 7'"; the
    Samples page now asks the job to stop first, and the job's error on the way out is a cancel."""
    import core.jobs as jobs_module

    ws, [sid] = _ws(tmp_path)
    store = JobStore(ws.root)
    job = store.create("analysis", {"sample_id": sid, "params": AnalysisParams().to_dict()}, title="d0")

    def deleted_meanwhile(root, job, progress):
        store.cancel(job.id)
        raise KeyError("no analysis with id 7")

    monkeypatch.setattr(jobs_module, "_run", deleted_meanwhile)
    assert execute(ws.root, job.id) == "cancelled"
    assert store.get(job.id).state == "cancelled" and store.get(job.id).error is None


def test_a_cancel_and_a_dropped_dask_task_are_said_as_such():
    """QA: a user's Cancel was stored as "The run was interrupted (JobCancelled)." and shown as a failure; a chunk
    task the cluster dropped as "_count-d1b3... cancelled for reason: unknown" or "cannot schedule new futures after
    shutdown"."""
    from distributed.client import FutureCancelledError

    from core.runner import one_sentence

    assert one_sentence(JobCancelled("job 3 was cancelled")) == "Cancelled on request before it finished."
    dropped = ("The Dask cluster dropped the run's tasks before they finished (its scheduler stopped or "
               "restarted?); run it again.")
    assert one_sentence(FutureCancelledError("_count-d1b31ebb", reason="unknown")) == dropped
    assert one_sentence(RuntimeError("cannot schedule new futures after shutdown")) == dropped
    assert one_sentence(KeyboardInterrupt()) == "The run was interrupted (KeyboardInterrupt)."


def test_a_cancel_by_another_session_is_kept_with_the_job(tmp_path):
    """QA walk 11: in a shared workspace another session cancelled a running job, and its owner read only
    "cancelled on request". Who asked is kept where it is not the owner; the owner's own cancel says nothing more."""
    store = JobStore(tmp_path)
    queued = store.create("analysis", {"sample_id": 1, "params": {}}, title="Analysis: a", owner="Ada")
    assert store.cancel(queued.id, by="session 811b").error == "at the request of session 811b"
    assert store.get(queued.id).state == "cancelled"
    running = store.create("analysis", {"sample_id": 1, "params": {}}, title="Analysis: a", owner="Ada")
    assert store.start(running.id, pid=os.getpid(), host="here")
    store.cancel(running.id, by="Bob")
    store.mark_cancelled(running.id)  # (what the worker does at its next progress report)
    done = store.get(running.id)
    assert done.state == "cancelled" and done.error == "at the request of Bob"
    own = store.create("analysis", {"sample_id": 1, "params": {}}, title="Analysis: a", owner="Ada")
    assert store.cancel(own.id, by="Ada").error is None
