"""ui.messages.flash: every message queued before a rerun is shown once, in order, then gone."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from apphelpers import TIMEOUT, no_exception


def script():
    import streamlit as st

    from ui.messages import flash, show_flash

    if st.button("queue", key="queue"):
        flash("success", "Analyses with these strokes: raw_510 (job #2, queued).")  # a page's own message
        flash("success", "Analysis 7 done: 95 particles (job #2, raw_510).")        # the jobs panel's, just after
        flash("success", "Analysis 7 done: 95 particles (job #2, raw_510).")        # the same again: shown once
        flash("error", "Job #3 (raw_929) failed: no NMC.")
        st.rerun()
    show_flash()


def test_flash_keeps_every_message_of_one_rerun_once_in_order():
    at = AppTest.from_function(script, default_timeout=TIMEOUT).run()
    assert not at.success and not at.error
    at.button(key="queue").click().run()
    no_exception(at)
    assert [m.value for m in at.success] == ["Analyses with these strokes: raw_510 (job #2, queued).",
                                             "Analysis 7 done: 95 particles (job #2, raw_510)."]
    assert [m.value for m in at.error] == ["Job #3 (raw_929) failed: no NMC."]
    at.run()  # shown once: the next run has none
    assert not at.success and not at.error


def panel_script():
    import streamlit as st

    from ui import cache, jobs, state
    from ui.messages import show_flash

    ws = cache.workspace()
    if "mine_set" not in st.session_state:  # this session started every job of the store
        st.session_state["mine_set"] = True
        st.session_state[state.JOBS_MINE] = {j.id for j in jobs.store(ws).list()}
    show_flash()
    with st.sidebar:
        jobs.panel(ws)


def test_jobs_panel_says_each_job_of_this_session_that_ended(empty_ws):
    from core.jobs import JobStore

    js = JobStore(empty_ws.root)
    spec = {"sample_id": 1, "params": {}}
    done = js.create("analysis", spec, title="analysis of raw_510")
    failed = js.create("analysis", spec, title="analysis of raw_929")
    js.finish(done.id, {"analysis_id": 7, "n_particles": 95})
    js.fail(failed.id, "no NMC")
    at = AppTest.from_function(panel_script, default_timeout=TIMEOUT).run()
    no_exception(at)
    assert [m.value for m in at.success] == [f"Analysis 7 done: 95 particles (job #{done.id}, analysis of raw_510)."]
    assert [m.value for m in at.error] == [f"Job #{failed.id} (analysis of raw_929) failed: no NMC"]
    at.run()
    assert not at.success and not at.error  # said once
