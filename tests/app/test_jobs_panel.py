"""The jobs panel's *Analyse all*: what it queues for each sample not analysed yet."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from apphelpers import TIMEOUT, drifting_scan, no_exception


def panel_script():
    import streamlit as st

    from ui import cache, jobs

    with st.sidebar:
        jobs.panel(cache.workspace())


def test_analyse_all_flattens_a_drifting_scan_as_the_segment_page_proposes(empty_ws, env):
    """Analyse all runs the Segment page's defaults: a scan whose grey values drift along z (the page warns and
    ticks *Flatten the drift*) is flattened; a steady one and an already-segmented one are not."""
    import numpy as np

    from core.io import save_tiff
    from core.synth import demo_electrode

    drift = empty_ws.add_sample("drift", drifting_scan(env / "data" / "drift.tif"), spacing=0.4)
    demo = demo_electrode("cycled-1C", rng=2, shape=(48, 48, 48))
    save_tiff(env / "data" / "steady.tif", demo.greyscale, (0.4, 0.4, 0.4))
    steady = empty_ws.add_sample("steady", str(env / "data" / "steady.tif"), spacing=0.4)
    save_tiff(env / "data" / "seg.tif", demo.phases.astype(np.uint8), (0.4, 0.4, 0.4))
    seg = empty_ws.add_sample("seg", str(env / "data" / "seg.tif"), spacing=0.4,
                              source_options={"phase_map": "0=pore,1=cbd,2=nmc"})
    at = AppTest.from_function(panel_script, default_timeout=TIMEOUT).run()
    no_exception(at)
    [button] = [b for b in at.sidebar.button if b.label.startswith("Analyse all")]
    assert button.label == "Analyse all (3 not analysed)"
    button.click().run()  # the jobs run inline (DETACH_JOBS=inline) inside the click
    no_exception(at)
    flattened = {}
    for s in (drift, steady, seg):
        a = empty_ws.latest_analysis(s.id)
        assert a is not None and a.status == "done", s.name
        flattened[s.name] = bool(a.params["segment"].get("flatten", False))
    assert flattened == {"drift": True, "steady": False, "seg": False}
    assert empty_ws.latest_analysis(drift.id).provenance["shading"]["flattened"]


def panel_and_messages_script():
    import streamlit as st

    from ui import cache, jobs, messages

    with st.sidebar:
        jobs.panel(cache.workspace())
    messages.show_flash()


def test_analyse_all_leaves_out_a_volume_that_cannot_be_segmented_and_says_why(empty_ws, env):
    """QA walk 10: *Analyse all* queued a constant volume the Segment page refuses; its job could only fail."""
    import numpy as np

    from core.io import save_tiff
    from core.synth import demo_electrode
    from ui import jobs

    save_tiff(env / "data" / "flat.tif", np.full((16, 24, 24), 700, np.uint16), (0.4, 0.4, 0.4))
    flat = empty_ws.add_sample("flat", str(env / "data" / "flat.tif"), spacing=0.4)
    save_tiff(env / "data" / "steady.tif", demo_electrode("pristine", rng=2, shape=(48, 48, 48)).greyscale,
              (0.4, 0.4, 0.4))
    steady = empty_ws.add_sample("steady", str(env / "data" / "steady.tif"), spacing=0.4)
    at = AppTest.from_function(panel_and_messages_script, default_timeout=TIMEOUT).run()
    [button] = [b for b in at.sidebar.button if b.label.startswith("Analyse all")]
    button.click().run()  # the jobs run inline (DETACH_JOBS=inline) inside the click
    no_exception(at)
    assert empty_ws.latest_analysis(steady.id).status == "done"
    assert empty_ws.latest_analysis(flat.id) is None
    assert not [j for j in jobs.store(empty_ws).list(limit=50) if j.sample_id == flat.id]
    [said] = [w.value for w in at.warning if "Not queued" in w.value]
    assert said.startswith("Not queued, as they cannot be segmented: 'flat' (") and "constant" in said, said


def test_a_finished_job_of_a_deleted_sample_says_so_and_offers_no_rerun(seeded_ws):
    """QA: after a sample was deleted the panel still listed its analysis ("... 68 particles") as if it were there."""
    from core.pipeline import AnalysisParams
    from ui import jobs, state

    first, second = seeded_ws.list_samples()[:2]
    for s in (first, second):
        j = jobs.store(seeded_ws).create("analysis", {"sample_id": s.id, "params": AnalysisParams().to_dict()},
                                         title=f"Analysis: {s.name}", owner="test")
        jobs.store(seeded_ws).cancel(j.id)  # ended without running: a Re-run is offered
    seeded_ws.delete_sample(first.id)
    at = AppTest.from_function(panel_script, default_timeout=TIMEOUT).run()
    no_exception(at)
    lines = [c.value for c in at.sidebar.caption if "Analysis:" in c.value]
    mine = [x for x in lines if f"Analysis: {first.name}" in x]
    assert mine and all(x.endswith(" · sample deleted since") for x in mine)
    assert not any(x.endswith("deleted since") for x in lines if f"Analysis: {second.name}" in x)
    reruns = [b.key for b in at.sidebar.button if b.label == "Re-run"]
    assert len(reruns) == 1 and reruns[0].startswith(state.JOBS_RERUN)


def test_a_job_run_again_keeps_no_rerun_and_analyse_all_skips_what_is_queued(seeded_ws):
    """QA: a cancelled job whose re-run finished still offered Re-run (an invitation to run it twice); two browsers'
    *Analyse all* one second apart queued the same sample twice."""
    from core.pipeline import AnalysisParams
    from ui import jobs

    s = seeded_ws.list_samples()[0]
    js = jobs.store(seeded_ws)
    old = js.create("analysis", {"sample_id": s.id, "params": AnalysisParams().to_dict()}, title="Analysis: x")
    js.cancel(old.id)
    new = js.rerun(old.id)  # queued again (not run: the panel only reads the table)
    at = AppTest.from_function(panel_script, default_timeout=TIMEOUT).run()
    no_exception(at)
    [line] = [c.value for c in at.sidebar.caption if f"#{old.id}**" in c.value]
    assert "cancelled" in line and line.endswith(f"· run again as #{new.id}")  # (QA walk 11: "run again" alone)
    assert not [b for b in at.sidebar.button if b.label == "Re-run"]
    # Analyse all, clicked in a browser that listed a sample before another browser queued it: skipped
    fresh = seeded_ws.add_sample("fresh", "demo:pristine", spacing=0.4, source_options={"shape": [24, 24, 24]})
    js.create("analysis", {"sample_id": fresh.id, "params": AnalysisParams().to_dict()}, title="Analysis: fresh")
    before = len(js.list(limit=100))
    jobs._analyse_all(seeded_ws, [fresh.id])
    assert len(js.list(limit=100)) == before and seeded_ws.latest_analysis(fresh.id) is None


class _Gone:
    """A cluster executor whose client lost its scheduler (distributed closed it), or that cannot take a job."""

    name, cluster_pid = "dask", None

    def __init__(self, connected=True):
        self.connected, self.closed = connected, False

    def submit(self, root, job_id):
        raise RuntimeError("the Dask scheduler at tcp://x:8786 did not take the job (ClosedClientError)")

    def close(self):
        self.closed = True


def test_a_lost_scheduler_is_reconnected_and_an_unreachable_one_not_retried_on_every_click(empty_ws, env,
                                                                                          monkeypatch):
    """QA: after the scheduler was gone 20 s every submit raised ClosedClientError until the server restarted,
    leaving a job row 'queued' forever at each click; a wrong address made every rerun of every page wait 20 s."""
    from ui import jobs

    monkeypatch.setenv("DETACH_JOBS", "cluster")
    monkeypatch.setenv("DETACH_SCHEDULER", "tcp://x:8786")
    jobs._FAILED.clear()
    made = []

    def holder(root, address, workers):
        made.append(_Gone(connected=len(made) > 0))
        return jobs._Holder(made[-1])

    holder.clear = lambda: None
    monkeypatch.setattr(jobs, "_executor_holder", holder)
    ex = jobs.executor(empty_ws)  # the first client had lost its scheduler: closed, a new one made
    assert made[0].closed and ex is made[1]
    # a job the cluster does not take ends failed, with why; not left queued
    s = empty_ws.add_sample("d", "demo:pristine", spacing=0.4, source_options={"shape": [24, 24, 24]})
    from core.pipeline import AnalysisParams

    assert jobs.submit(empty_ws, s, AnalysisParams()) is None
    [job] = jobs.store(empty_ws).list()
    assert job.state == "failed" and job.error.startswith("not started: the Dask scheduler at tcp://x:8786 did not")

    def unreachable(root, address, workers):
        made.append("tried")
        raise OSError("Timed out trying to connect to tcp://x:8786 after 10 s")

    unreachable.clear = lambda: None
    monkeypatch.setattr(jobs, "_executor_holder", unreachable)
    n = len(made)
    for _ in range(3):
        try:
            jobs.executor(empty_ws)
        except RuntimeError as exc:
            msg = str(exc)
    assert len(made) == n + 1  # tried once, then said at once for RETRY_AFTER_S
    assert msg.startswith("Timed out trying to connect to tcp://x:8786 after 10 s (tried at ")
    jobs._FAILED.clear()


def test_a_done_job_whose_analysis_was_deleted_says_so(seeded_ws):
    """QA: a finished job still read "analysis 7: 68 particles" after that analysis was deleted."""
    from core.jobs import InlineExecutor
    from core.pipeline import AnalysisParams
    from ui import jobs

    s = seeded_ws.list_samples()[0]
    js = jobs.store(seeded_ws)
    j = js.create("analysis", {"sample_id": s.id, "params": AnalysisParams().to_dict()}, title=f"Analysis: {s.name}")
    InlineExecutor().submit(seeded_ws.root, j.id)
    aid = js.get(j.id).analysis_id
    at = AppTest.from_function(panel_script, default_timeout=TIMEOUT).run()
    [line] = [c.value for c in at.sidebar.caption if f"#{j.id}**" in c.value]
    assert "deleted since" not in line
    seeded_ws.delete_analysis(aid)
    at.run()
    [line] = [c.value for c in at.sidebar.caption if f"#{j.id}**" in c.value]
    assert line.endswith(f"analysis {aid}: {js.get(j.id).result['n_particles']} particles · analysis deleted since")


def fragment_script():
    """The panel as its own 2-s refresh runs it: without the page's full run (which records when it was drawn)."""
    import streamlit as st

    from ui import cache, jobs

    with st.sidebar:
        jobs._panel(cache.workspace())


def _done_notice(drawn: float):
    """(the AppTest, its notice of other sessions' jobs done since ``drawn``, the page's last full run)."""
    from ui import state

    at = AppTest.from_function(fragment_script, default_timeout=TIMEOUT)
    at.session_state[state.JOBS_DRAWN_AT] = drawn
    at.run()
    no_exception(at)
    [said] = [i.value for i in at.sidebar.info if i.value.startswith("Done since this page was drawn")]
    return at, said


def test_jobs_of_other_sessions_done_since_the_page_was_drawn_are_said_with_a_way_to_update_it(seeded_ws):
    """QA walk 13: session B's sweeps finished while session A's Compare page stayed as drawn (still "Run the sweep"),
    and A's report, made after they were done, had no sweep section: nothing said the page was behind."""
    import time

    from core.pipeline import AnalysisParams
    from ui import jobs, state

    s = seeded_ws.list_samples()[0]
    js = jobs.store(seeded_ws)

    def done_job(owner):
        j = js.create("analysis", {"sample_id": s.id, "params": AnalysisParams().to_dict()},
                      title=f"Analysis: {s.name} by {owner}", owner=owner)
        js.start(j.id, pid=1, host="h")
        js.finish(j.id, {"analysis_id": seeded_ws.latest_analysis(s.id).id, "n_particles": 3}, "done: 3 particles")
        return js.get(j.id)

    before = done_job("early")
    drawn = time.time()
    time.sleep(0.01)
    other, mine = done_job("session b"), done_job("session a")
    # this session's own jobs are not said: their end reruns the whole page (the panel's "ended")
    assert jobs.others_done_since([before, other, mine], drawn, {mine.id}) == [other]
    assert jobs.others_done_since([other], None, set()) == []  # no page drawn yet: nothing is behind
    at, said = _done_notice(drawn)
    assert f": #{other.id} Analysis: {s.name} by session b, #{mine.id} Analysis: {s.name} by session a. Update" in said
    assert f"#{before.id} " not in said
    assert at.sidebar.button(key=state.JOBS_UPDATE).label == "Update the page"
    # the page's full run (the panel as app.py calls it) records when it was drawn: nothing is behind it
    full = AppTest.from_function(panel_script, default_timeout=TIMEOUT).run()
    no_exception(full)
    assert not [i for i in full.sidebar.info if i.value.startswith("Done since this page was drawn")]


def test_every_queued_job_counts_however_many_are_newer(seeded_ws):
    """The panel read only the 25 newest jobs: with more queued, an older queued job's sample was offered again by
    "Analyse all (1 not analysed)", the header undercounted, and a job of this session older than those never said
    it had ended (its page was not redrawn)."""
    from core.pipeline import AnalysisParams
    from ui import jobs, state

    js = jobs.store(seeded_ws)
    s = seeded_ws.list_samples()[0]
    new = seeded_ws.add_sample("late", "demo:pristine", spacing=0.4, source_options={"shape": [16, 16, 16], "seed": 0})
    spec = lambda sid: {"sample_id": sid, "params": AnalysisParams().to_dict()}  # noqa: E731
    oldest = js.create("analysis", spec(new.id), title="Analysis: late", owner="b")  # queued, then 30 newer
    mine_old = js.create("analysis", spec(s.id), title=f"Analysis: {s.name} (mine)", owner="a")
    for i in range(30):
        js.create("analysis", spec(s.id), title=f"Analysis: {s.name} #{i}", owner="b")
    js.start(mine_old.id, pid=1, host="h")
    js.finish(mine_old.id, {"analysis_id": seeded_ws.latest_analysis(s.id).id, "n_particles": 3}, "done: 3 particles")
    at = AppTest.from_function(panel_script, default_timeout=TIMEOUT)
    at.session_state[state.JOBS_MINE] = {mine_old.id}
    at.run()
    no_exception(at)
    assert any(m.value == "**Jobs** (31 running or queued)" for m in at.sidebar.markdown)
    assert at.sidebar.button(key=state.JOBS_ANALYSE_ALL).label == "Analyse all (0 not analysed)"  # 'late' is queued
    assert any(c.value.startswith("… and 19 more running or queued") for c in at.sidebar.caption)
    assert len(at.sidebar.get("progress")) == jobs.ACTIVE_SHOWN
    shown = [p.proto.text for p in at.sidebar.get("progress")]
    assert shown[0].startswith(f"#{oldest.id} Analysis: late")  # the oldest queued first (they run in turn)
    assert at.session_state[state.JOBS_MINE] == set()  # its end was seen (and the page redrawn)


def test_a_job_done_since_the_page_was_drawn_is_said_however_many_are_newer(seeded_ws):
    """The notice read only the 45 newest jobs: another session's job done after the page was drawn, with more jobs
    queued after it (an "Analyse all" of a big study: the oldest finish first), was never said."""
    import time

    from core.pipeline import AnalysisParams
    from ui import jobs

    js = jobs.store(seeded_ws)
    s = seeded_ws.list_samples()[0]
    spec = {"sample_id": s.id, "params": AnalysisParams().to_dict()}
    old_done = js.create("analysis", spec, title="Analysis: done before", owner="b")
    js.start(old_done.id, pid=1, host="h")
    js.finish(old_done.id, {"analysis_id": seeded_ws.latest_analysis(s.id).id, "n_particles": 3}, "done: 3 particles")
    first = js.create("analysis", spec, title="Analysis: first of many", owner="b")
    for i in range(60):
        js.create("analysis", spec, title=f"Analysis: {s.name} #{i}", owner="b")
    drawn = time.time()
    time.sleep(0.01)
    js.start(first.id, pid=1, host="h")
    js.finish(first.id, {"analysis_id": seeded_ws.latest_analysis(s.id).id, "n_particles": 3}, "done: 3 particles")
    seen = js.overview(newest=jobs.RECENT + 20, done_after=drawn)
    assert [j.id for j in seen] == sorted((j.id for j in seen), reverse=True)
    assert first.id in {j.id for j in seen} and old_done.id not in {j.id for j in seen}
    assert len([j for j in seen if j.active]) == 60
    assert [j.id for j in js.overview(newest=3)] == [j.id for j in js.list(limit=3)] + [
        j.id for j in js.list(states=("queued",), limit=100)][3:]
    _, said = _done_notice(drawn)
    assert f": #{first.id} Analysis: first of many. Update" in said
