"""Background jobs in the dashboard: submitting analyses to the Dask cluster, and the jobs panel of every page.

The work and its durable state live in :mod:`core.jobs`; the local cluster in
:mod:`core.cluster`.  The panel is a fragment that refreshes itself every
couple of seconds, so a job's progress shows without any click, on every page
and in every browser that opens the workspace.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Sequence

import streamlit as st

from core.jobs import ACTIVE, FINISHED, ClusterExecutor, InlineExecutor, Job, JobStore, sample_snapshot, sweep_spec
from core.phases import SegmentParams
from core.pipeline import AnalysisParams
from core.workspace import Sample, Workspace

from . import settings, state
from .messages import drop_flash, flash, one_sentence

#: Seconds between two refreshes of the jobs panel.
REFRESH_S = 2.0
#: Finished jobs listed in the panel.
RECENT = 5
#: Running and queued jobs listed in the panel (running first, then the oldest queued); the rest are counted.
ACTIVE_SHOWN = 12
#: Active jobs read at most (a workspace never holds more queued at once in practice).
MAX_ACTIVE = 1000


class _Holder:
    """``st.cache_resource`` refuses a ``distributed.Client`` (it is awaitable): keep it in a plain object."""

    def __init__(self, executor):
        self.executor = executor


#: Seconds to wait for a scheduler given by address (DETACH_SCHEDULER) to answer.
CONNECT_TIMEOUT_S = 10.0
#: Seconds a failure to reach the cluster is said again without trying (QA: a wrong address made every click of
#: every page wait 20 s for the same timeout).
RETRY_AFTER_S = 60.0
_FAILED: dict[tuple, tuple[float, str]] = {}


@st.cache_resource(show_spinner=False)
def _executor_holder(root: str, address: str | None, workers: int) -> _Holder:
    if address:
        return _Holder(ClusterExecutor(address, timeout=CONNECT_TIMEOUT_S))
    from core.cluster import ensure_local_cluster

    info = ensure_local_cluster(f"{root}/cluster/local.json", workers=workers)
    return _Holder(ClusterExecutor(info.address, cluster_pid=info.pid))


def executor(ws: Workspace):
    """Where jobs run: inline (``DETACH_JOBS=inline``), the scheduler at ``DETACH_SCHEDULER``, or a local cluster.

    A client that lost its scheduler for good (distributed closes it after 20 s) is replaced by a new one (QA:
    every submit raised ClosedClientError until the server restarted); a cluster that could not be reached is
    not tried again for :data:`RETRY_AFTER_S` (the same RuntimeError, at once).

    Raises
    ------
    RuntimeError, OSError, ValueError
        The cluster cannot be reached or used (one sentence).
    """
    if settings.jobs_inline():
        return InlineExecutor()
    key = (str(ws.root), settings.scheduler_address(), settings.local_workers())
    failed = _FAILED.get(key)
    if failed is not None and time.monotonic() - failed[0] < RETRY_AFTER_S:
        raise RuntimeError(failed[1])
    try:
        ex = _executor_holder(*key).executor
        if not ex.connected:
            ex.close()
            _executor_holder.clear()
            ex = _executor_holder(*key).executor
    except (OSError, RuntimeError, ValueError, TimeoutError) as exc:
        _FAILED[key] = (time.monotonic(), f"{one_sentence(exc).rstrip('.')} (tried at {_when(time.time())}; "
                                          f"tried again {RETRY_AFTER_S:.0f} s later).")
        raise RuntimeError(_FAILED[key][1]) from None
    _FAILED.pop(key, None)
    return ex


def store(ws: Workspace) -> JobStore:
    return JobStore(ws.root)


def owner() -> str:
    name = (st.session_state.get(state.JOBS_OWNER) or "").strip()
    if name:
        return name
    tag = st.session_state.setdefault("jobs_session_tag", uuid.uuid4().hex[:4])
    return f"session {tag}"


def local_workers() -> int | None:
    """Worker processes of the jobs' local cluster; None for a cluster by address (``DETACH_SCHEDULER``) or inline."""
    if settings.jobs_inline() or settings.scheduler_address():
        return None
    return settings.local_workers()


def cluster_address() -> str | None:
    """The address of the cluster that runs the jobs (``DETACH_SCHEDULER``); None inline or on the local cluster."""
    return None if settings.jobs_inline() else settings.scheduler_address()


def chunked_engine(sample: Sample, params: AnalysisParams | None) -> int | None:
    """The chunk edge when this sample's analysis runs on the chunked engine, else None.

    The command line's memory-budget rule (:func:`core.chunked.analysis.chunked_engine_for`): the whole-volume
    run would not fit the memory available (with ``DETACH_SCHEDULER``, the smallest memory limit of that
    cluster's workers) and chunks of ``DETACH_CHUNK_SIZE`` on the jobs' workers do; or
    ``DETACH_CHUNKED=always`` (:func:`ui.settings.chunked_always`) for every analysis the engine runs.
    """
    from core.chunked.analysis import chunked_engine_for

    if params is None:
        return None
    return chunked_engine_for(sample.input, params, workers=local_workers(), chunk=settings.chunk_size(),
                              always=settings.chunked_always(), scheduler=cluster_address())  # its workers' memory


def submit(ws: Workspace, sample: Sample, params: AnalysisParams, *, phases_from: int | None = None,
           what: str = "Analysis") -> Job | None:
    """Queue an analysis (or, with ``phases_from``, a re-separation) of ``sample``; returns the job (finished
    already with the inline executor), or None after showing why it could not be queued.

    An analysis that would not fit the memory available runs on the chunked engine (:func:`chunked_engine`;
    the job's spec says so); a re-separation of such an analysis does too (:mod:`core.jobs`).
    """
    spec = {"sample_id": sample.id, "params": params.to_dict(), "queued_as": sample_snapshot(sample)}
    kind = "analysis"
    if phases_from is not None:
        spec["phases_from"], kind = int(phases_from), "separation"
        try:
            if ws.is_chunked(ws.get_analysis(int(phases_from))):  # separated on the chunked engine (core.jobs)
                spec["chunked"] = {"local_workers": local_workers()}
        except KeyError:  # deleted meanwhile: the job says so
            pass
    else:
        chunk = chunked_engine(sample, params)
        if chunk is not None:
            spec["chunked"] = {"chunk_size": chunk, "local_workers": local_workers()}
    return _submit(ws, kind, spec, title=f"{what}: {sample.name}", what=what)


def submit_sweep(ws: Workspace, sample: Sample, analysis_id: int, options) -> Job | None:
    """Queue the segmentation sweep (:class:`core.uncertainty.SweepParams` ``options``) of a finished analysis."""
    return _submit(ws, "sweep", sweep_spec(sample.id, analysis_id, options),
                   title=f"Sweep: {sample.name} (analysis {analysis_id})", what="The sweep")


def _submit(ws: Workspace, kind: str, spec: dict, *, title: str, what: str) -> Job | None:
    job = None
    try:
        ex = executor(ws)
        job = store(ws).create(kind, spec, title=title, owner=owner(), executor=ex.name, cluster_pid=ex.cluster_pid)
        ex.submit(ws.root, job.id)
    except (OSError, RuntimeError, ValueError) as exc:
        if job is not None:  # its row ends, not left "queued" forever (QA)
            store(ws).fail_if_active(job.id, f"not started: {one_sentence(exc)}")
        st.error(f"{what} could not be started: {one_sentence(exc)}")
        return None
    st.session_state.setdefault(state.JOBS_MINE, set()).add(job.id)
    return store(ws).get(job.id)


def active_analysis(ws: Workspace, sample_id: int) -> Job | None:
    """The oldest queued or running analysis job of this sample, if any."""
    mine = [j for j in store(ws).list(states=ACTIVE, limit=MAX_ACTIVE)
            if j.kind in ("analysis", "separation") and j.sample_id == sample_id]
    return min(mine, key=lambda j: j.id) if mine else None


def active_sweep(ws: Workspace, analysis_id: int, options) -> Job | None:
    """The queued or running sweep job of this analysis with these options, if any."""
    spec = sweep_spec(0, analysis_id, options)
    for j in store(ws).list(states=ACTIVE, limit=MAX_ACTIVE):
        if j.kind == "sweep" and j.spec.get("analysis_id") == spec["analysis_id"] \
                and j.spec.get("options") == spec["options"]:
            return j
    return None


def _done_text(job: Job, *, with_title: bool = False) -> str:
    """The sentence shown when a job of this session is done."""
    if job.kind == "sweep":
        return f"Sweep of analysis {job.analysis_id} done (job #{job.id}): {job.message.split(': ', 1)[-1]}."
    which = f"job #{job.id}, {job.title}" if with_title else f"job #{job.id}"
    return (f"Analysis {job.analysis_id} done: {job.result['n_particles']} particles ({which})."
            + ("" if with_title else " See the Particles page."))


def announce(job: Job | None) -> None:
    """After :func:`submit`: the page's message for the job, then a rerun (the panel shows the rest)."""
    if job is None:
        return
    if not job.active:  # ended already (run inline): said here, so the panel does not say it a second time
        st.session_state[state.JOBS_MINE] = (st.session_state.get(state.JOBS_MINE) or set()) - {job.id}
    if job.state == "done":
        flash("success", _done_text(job))
    elif job.state == "failed":
        flash("error", f"Job #{job.id} failed: {job.error}")
    else:
        flash("info", f"Job #{job.id} queued: {job.title}. It runs in the background; follow it in the sidebar "
                      "(you may change pages, or close the browser).")
    st.rerun()


def _when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%H:%M:%S") if t else "–"


def _line(job: Job) -> str:
    who = f" · {job.owner}" if job.owner else ""
    return f"**#{job.id}** {job.title}{who}"


def _cancel(ws: Workspace, job_id: int) -> None:
    store(ws).cancel(job_id, by=owner())
    cancel = getattr(executor(ws), "cancel", None)
    if cancel is not None:
        cancel(job_id)


def _rerun(ws: Workspace, job_id: int) -> None:
    """Queue a copy of a finished job, with its sample's settings of now (what the Samples page says applies)."""
    new = None
    try:
        old = store(ws).get(job_id)
        queued_as = None
        if old.kind != "sweep" and old.sample_id is not None:
            queued_as = sample_snapshot(ws.get_sample(old.sample_id))
        ex = executor(ws)
        new = store(ws).rerun(job_id, owner=owner(), executor=ex.name, cluster_pid=ex.cluster_pid,
                              queued_as=queued_as)
        ex.submit(ws.root, new.id)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        if new is not None:
            store(ws).fail_if_active(new.id, f"not started: {one_sentence(exc)}")
        flash("error", f"Job #{job_id} could not be run again: {one_sentence(exc)}")
        return
    st.session_state.setdefault(state.JOBS_MINE, set()).add(new.id)


def default_params(ws: Workspace, sample: Sample) -> AnalysisParams:
    """The analysis the Segment page would run with its defaults: :class:`AnalysisParams`, flattened along z where
    the sample's grey values drift enough for the page's warning (its *Flatten the drift* box is ticked there;
    :func:`core.phases.shading_reading`, read as the page reads it)."""
    from . import cache

    if sample.input.presegmented:
        return AnalysisParams()
    try:
        reading = cache.shading(cache.VolumeRef.of(ws, sample))
    except (OSError, ValueError, TypeError, KeyError, MemoryError):  # unreadable: the job says why
        return AnalysisParams()
    if reading is not None and reading["warn"]:
        return AnalysisParams(segment=SegmentParams(flatten=True))
    return AnalysisParams()


def _analyse_all(ws: Workspace, sample_ids: list[int]) -> None:
    # what is analysed or queued is read again at the click: another browser's click a second before queued the
    # same samples (QA: two identical jobs each)
    from . import cache

    busy = {j.sample_id for j in store(ws).list(states=ACTIVE, limit=MAX_ACTIVE)}
    refused = []
    for sid in sample_ids:
        try:
            sample = ws.get_sample(sid)
        except KeyError:  # deleted meanwhile
            continue
        if sid in busy or ws.latest_analysis(sid) is not None:
            continue
        params = default_params(ws, sample)  # (reads the volume where it is held whole: the check below reuses it)
        if not sample.input.presegmented:
            # a volume the Segment page refuses (constant, not finite) is not queued: its job could only fail (QA
            # walk 10: "Analyse all" queued them, and they stayed offered)
            try:
                why = cache.greyscale_refusal(cache.VolumeRef.of(ws, sample))
            except (OSError, ValueError, TypeError, KeyError, MemoryError):  # unreadable: the job says why
                why = None
            if why:
                refused.append(f"'{sample.name}' ({why.rstrip('.')})")
                continue
        submit(ws, sample, params)
    if refused:
        flash("warning", f"Not queued, as they cannot be segmented: {'; '.join(refused)}.")


def start(ws: Workspace) -> None:
    """Start (or reach) the cluster now, so that no click waits for it; a failure is one warning, not an error:
    the pages still work and the jobs say why they cannot run."""
    if settings.jobs_inline():
        return
    address = settings.scheduler_address()
    try:
        with st.spinner(f"Connecting to the Dask scheduler at {address} for the background jobs…" if address else
                        "Starting the Dask cluster for the background jobs…"):
            executor(ws)
    except (OSError, RuntimeError, ValueError) as exc:
        st.sidebar.warning(f"Background jobs are not available: {one_sentence(exc)}")


def _exists(ws: Workspace, analysis_id: int) -> bool:
    try:
        ws.get_analysis(int(analysis_id))
    except KeyError:
        return False
    return True


def panel(ws: Workspace) -> None:
    """The jobs panel (sidebar of every page): running and queued jobs with progress and Cancel, the last few
    finished ones with Re-run where they did not complete, *Analyse all*, and the jobs of other sessions done since
    the page was drawn, with a button that draws it again (their results are not on it yet).

    Call it on every full run of a page (the panel itself refreshes every :data:`REFRESH_S` seconds)."""
    st.session_state[state.JOBS_DRAWN_AT] = time.time()
    _panel(ws)


def _get(js: JobStore, job_id: int) -> Job | None:
    try:
        return js.get(job_id)
    except KeyError:  # (gone with its workspace's history)
        return None


def others_done_since(jobs: Sequence[Job], drawn_at: float | None, mine: set[int]) -> list[Job]:
    """The jobs of ``jobs`` done after ``drawn_at`` that this session did not start (its own rerun the page)."""
    if drawn_at is None:
        return []
    return [j for j in jobs if j.state == "done" and j.id not in mine and (j.finished_at or 0) > drawn_at]


@st.fragment(run_every=REFRESH_S)
def _panel(ws: Workspace) -> None:
    js = store(ws)
    js.reconcile()
    drawn_at = st.session_state.get(state.JOBS_DRAWN_AT)
    # one query: the newest jobs, every active one (an "Analyse all" of 40 samples queued more than the panel read:
    # it counted 25, and offered the rest as not analysed), and every one done since the page was drawn (an older
    # job of another session, done after 25 newer ones were queued, was not said)
    seen = js.overview(newest=RECENT + 20, done_after=drawn_at)
    jobs = seen[:RECENT + 20]
    active = [j for j in seen if j.active]
    recent = [j for j in jobs if j.state in FINISHED][:RECENT]
    st.markdown(f"**Jobs** ({len(active)} running or queued)" if active else "**Jobs**")
    active_shown = sorted(active, key=lambda j: (j.state != "running", j.id))[:ACTIVE_SHOWN]
    hidden = len(active) - len(active_shown)
    # the buttons act in on_click callbacks: they run whole before the fragment's next refresh, which would
    # otherwise stop a click's work midway (the fragment reruns itself every REFRESH_S seconds)
    for j in active_shown:
        st.progress(float(j.progress), text=f"#{j.id} {j.title} · {j.state}: {j.message}")
        c1, c2 = st.columns([3, 2], vertical_alignment="center")
        c1.caption(f"{j.owner} · since {_when(j.started_at or j.created_at)}")
        c2.button("Cancel", key=state.k(state.JOBS_CANCEL, j.id), disabled=j.cancel_requested,
                  help="A queued job never starts; a running one stops at its next step."
                       + ("" if j.owner == owner() else f" It is {j.owner}'s job: they are told that "
                                                          f"{owner()} asked."),
                  on_click=_cancel, args=(ws, j.id))
    if hidden:
        st.caption(f"… and {hidden} more running or queued (queued ones run in turn; each can be cancelled once it "
                   "is listed).")
    live = {s.id for s in ws.list_samples()}
    for j in recent:
        icon = {"done": "✓", "failed": "✗", "cancelled": "⊘", "interrupted": "↯"}[j.state]
        text = f"{icon} {_line(j)} · {j.state} {_when(j.finished_at)}"
        gone = j.sample_id is not None and j.sample_id not in live  # its sample deleted since (QA: read as there)
        if gone:
            text += " · sample deleted since"
        elif j.state == "done" and j.kind != "sweep" and j.analysis_id is not None and not _exists(ws, j.analysis_id):
            text += f" · {j.message} · analysis deleted since"
        elif j.state == "done":
            text += f" · {j.message}"
        elif j.error:
            text += f": {j.error}"
        # (QA: a job already run again, and done or on its way, kept its Re-run: an invitation to run it twice)
        again = [k.id for k in jobs if k.rerun_of == j.id and k.state in ("done", "queued", "running")]
        redone = bool(again)
        if redone and j.state != "done":  # (QA walk 11: "· run again" read as an instruction)
            text += f" · run again as #{min(again)}"
        if j.state in ("interrupted", "failed", "cancelled") and not gone and not redone:
            c1, c2 = st.columns([3, 2], vertical_alignment="center")
            c1.caption(text)
            c2.button("Re-run", key=state.k(state.JOBS_RERUN, j.id), on_click=_rerun, args=(ws, j.id))
        else:
            st.caption(text)
    # QA walk 13: another session's sweeps finished and this page (and the report it made) went on without them
    news = others_done_since(seen, drawn_at, set(st.session_state.get(state.JOBS_MINE) or ()))
    if news:
        # (QA walk 14: "not on it yet" read as a promise that updating adds a new sample to Compare's selection)
        st.info("Done since this page was drawn: "
                + ", ".join(f"#{j.id} {j.title}" for j in sorted(news, key=lambda j: j.id))
                + ". Update the page to show what they changed (a new sample is added to a comparison by hand).")
        if st.button("Update the page", key=state.JOBS_UPDATE, icon=":material/refresh:"):
            st.rerun(scope="app")
    todo = [s for s in ws.list_samples() if ws.latest_analysis(s.id) is None
            and not any(j.sample_id == s.id for j in active)]
    st.button(f"Analyse all ({len(todo)} not analysed)", key=state.JOBS_ANALYSE_ALL, disabled=not todo,
              help="Queues a full analysis with the Segment page's default settings for every sample without one "
                   "(a scan whose grey values drift along z flattened first, as the page proposes).",
              on_click=_analyse_all, args=(ws, [s.id for s in todo]))
    # a job this session started finished: rerun the page so that it shows the new analysis
    mine = st.session_state.get(state.JOBS_MINE) or set()
    still = {j.id for j in active}  # (read by id: an old job of this session may be past the newest listed)
    looked = {i: _get(js, i) for i in sorted(mine - still)}
    ended = [j for j in looked.values() if j is not None and not j.active]
    gone = {i for i, j in looked.items() if j is None}
    if gone:
        mine = mine - gone
        st.session_state[state.JOBS_MINE] = mine
    if ended:
        st.session_state[state.JOBS_MINE] = mine - {j.id for j in ended}
        # each job ended is said (in one box per kind of ending, a line a job); its "queued" message goes
        drop_flash(tuple(f"Job #{j.id} queued:" for j in ended))
        said = {"success": [_done_text(j, with_title=True) for j in ended if j.state == "done"],
                "warning": [f"Job #{j.id} ({j.title}) cancelled" + (f" {j.error}." if j.error else ".")
                            for j in ended if j.state == "cancelled"],
                "error": [f"Job #{j.id} ({j.title}) {j.state}" + (f": {j.error}" if j.error else ".")
                          for j in ended if j.state not in ("done", "cancelled")]}
        for kind, lines in said.items():
            if lines:
                flash(kind, "  \n".join(lines))
        st.rerun(scope="app")
