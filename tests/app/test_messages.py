"""ui.messages.flash: every message queued before a rerun is shown once, in order, and stays through the reruns of
the next FLASH_KEEP_S seconds (the brush canvas reruns the page as soon as it is drawn)."""

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


def test_flash_keeps_every_message_of_one_rerun_once_in_order(monkeypatch):
    from ui import messages

    said = ["Analyses with these strokes: raw_510 (job #2, queued).", "Analysis 7 done: 95 particles (job #2, raw_510)."]
    at = AppTest.from_function(script, default_timeout=TIMEOUT).run()
    assert not at.success and not at.error
    at.button(key="queue").click().run()
    no_exception(at)
    assert [m.value for m in at.success] == ["  \n".join(said)]  # one box a kind, a line a message
    assert [m.value for m in at.error] == ["Job #3 (raw_929) failed: no NMC."]
    at.run()  # a rerun at once (as the brush canvas makes when it is drawn): still there, once each
    assert [m.value for m in at.success] == ["  \n".join(said)] and len(at.error) == 1
    monkeypatch.setattr(messages, "FLASH_KEEP_S", 0.0)  # later: shown on that run, then gone
    at.run()
    assert [m.value for m in at.success] == ["  \n".join(said)]
    at.run()
    assert not at.success and not at.error


def panel_script():
    import streamlit as st

    from ui import cache, jobs, state
    from ui.messages import flash, show_flash

    ws = cache.workspace()
    if "mine_set" not in st.session_state:  # this session started every job of the store
        st.session_state["mine_set"] = True
        mine = jobs.store(ws).list()
        st.session_state[state.JOBS_MINE] = {j.id for j in mine}
        flash("info", f"Job #{min(j.id for j in mine)} queued: analysis of raw_510.")  # as submitting said
    show_flash()
    with st.sidebar:
        jobs.panel(ws)


def test_jobs_panel_says_each_job_of_this_session_that_ended(empty_ws):
    from core.jobs import JobStore

    js = JobStore(empty_ws.root)
    spec = {"sample_id": 1, "params": {}}
    done = js.create("analysis", spec, title="analysis of raw_510")
    failed = js.create("analysis", spec, title="analysis of raw_929")
    other = js.create("analysis", spec, title="analysis of raw_103")
    js.finish(done.id, {"analysis_id": 7, "n_particles": 95})
    js.fail(failed.id, "no NMC")
    js.finish(other.id, {"analysis_id": 8, "n_particles": 40})
    at = AppTest.from_function(panel_script, default_timeout=TIMEOUT).run()
    no_exception(at)
    # the jobs that ended are said in one box per kind of ending, a line a job; the "queued" message is gone
    lines = sorted(at.success[0].value.split("  \n"))
    assert len(at.success) == 1 and lines == [f"Analysis 7 done: 95 particles (job #{done.id}, analysis of raw_510).",
                                              f"Analysis 8 done: 40 particles (job #{other.id}, analysis of raw_103)."]
    assert [m.value for m in at.error] == [f"Job #{failed.id} (analysis of raw_929) failed: no NMC"]
    assert not at.info
    at.run()  # said once, not again when the panel sees the same jobs
    assert len(at.success) == 1 and len(at.error) == 1


def test_a_job_cancelled_by_another_session_says_who_asked(empty_ws):
    """QA walk 11: session B cancelled session A's running job; A read "cancelled" and nothing of B."""
    from core.jobs import JobStore

    from core.workspace import DEMO_PREFIX

    sample = empty_ws.add_sample("raw_510", f"{DEMO_PREFIX}pristine", spacing=0.4,
                                 source_options={"shape": [16, 16, 16], "seed": 0})
    js = JobStore(empty_ws.root)
    job = js.create("analysis", {"sample_id": sample.id, "params": {}}, title="analysis of raw_510", owner="Ada")
    js.start(job.id, pid=1, host="here")
    js.cancel(job.id, by="session 811b")
    js.mark_cancelled(job.id)
    at = AppTest.from_function(panel_script, default_timeout=TIMEOUT).run()
    no_exception(at)
    assert [m.value for m in at.warning] == [f"Job #{job.id} (analysis of raw_510) cancelled at the request of "
                                             "session 811b."]
    assert any(f"#{job.id}" in c.value and c.value.endswith(": at the request of session 811b")
               for c in at.sidebar.caption)  # (the panel's line for it)


def announce_script():
    import streamlit as st

    from ui import cache, jobs, state
    from ui.messages import show_flash

    ws = cache.workspace()
    if "announced" not in st.session_state:  # a job this session submitted, run inline: ended when announced
        st.session_state["announced"] = True
        job = jobs.store(ws).list()[0]
        st.session_state[state.JOBS_MINE] = {job.id}
        jobs.announce(job)  # its message, then a rerun
    show_flash()
    with st.sidebar:
        jobs.panel(ws)


def test_a_job_run_inline_is_said_done_once(empty_ws):
    """Run inline, a job has ended when the page announces it: the panel said it a second time ("Analysis 1 done:
    7 particles (job #1). See the Particles page." and "... (job #1, Analysis: pristine).")."""
    from core.jobs import JobStore

    js = JobStore(empty_ws.root)
    job = js.create("analysis", {"sample_id": 1, "params": {}}, title="Analysis: pristine")
    js.finish(job.id, {"analysis_id": 1, "n_particles": 7})
    at = AppTest.from_function(announce_script, default_timeout=TIMEOUT).run()
    no_exception(at)
    said = [line for m in at.success for line in m.value.split("  \n")]
    assert said == [f"Analysis 1 done: 7 particles (job #{job.id}). See the Particles page."]



def test_one_sentence_alone_starts_a_plain_word_in_upper_case_and_leaves_names_as_written():
    """QA walk 7: "a sample needs a non-empty name" was shown on its own as raised (exceptions are lower case, as
    Python's); a name that starts the message (a parameter, a file) keeps its case, and after "... failed: " the
    sentence goes on in lower case."""
    from ui.messages import one_sentence

    def alone(exc):
        return one_sentence(exc, alone=True)

    assert alone(ValueError("a sample needs a non-empty name")) == "A sample needs a non-empty name."
    assert alone(ValueError("the volume holds no finite value.")) == "The volume holds no finite value."
    assert alone(ValueError("sigma_max_um (1) must be at least 2")) == "sigma_max_um (1) must be at least 2."
    assert alone(ValueError("scan.tif is empty")) == "scan.tif is empty."
    assert alone(KeyError("z")) == "Missing key 'z'."
    assert one_sentence(ValueError("it is constant")) == "it is constant."  # (said after "cannot be segmented: ")
