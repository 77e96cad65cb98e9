"""The entry script: first start adds and analyses the demos; the sidebar picker is shared by every page."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from ui import state

from apphelpers import APP, TIMEOUT, no_exception


def test_first_start_analyses_the_demos_once_then_compare(empty_ws, monkeypatch):
    monkeypatch.setenv("DETACH_DEMO_SIZE", "32")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_exception(at)
    samples = empty_ws.list_samples()
    assert [s.name for s in samples] == ["pristine", "cycled-1C", "cycled-5C"]
    assert all(s.is_demo and s.source_options["shape"] == [32, 32, 32] for s in samples)
    assert all(empty_ws.latest_analysis(s.id) is not None for s in samples)
    picker = at.sidebar.selectbox(key=state.SAMPLE_PICKER)
    assert all("SYNTHETIC" in o for o in picker.options)
    # the chosen sample's status is the box's icon (its text, kept by the browser, would go stale); the others'
    # a mark before their names
    chosen = [o for o in picker.options if not o.startswith("✓")]
    assert chosen == [picker.format_func(picker.value)] and len(chosen) == 1
    assert picker.proto.icon == ":material/check_circle:"
    # the app opens on the Compare view of the three demos
    assert at.title[0].value == "Compare electrodes"
    assert len(at.dataframe[0].value) == 3
    assert len(at.image) == 3
    # a new session on the same workspace does not analyse again
    at2 = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_exception(at2)
    assert len(empty_ws.list_analyses()) == 3


def test_a_new_session_leaves_a_later_demo_and_a_cancelled_one_alone(empty_ws, monkeypatch):
    """QA walk 12: a demo added later on the Samples page (not analysed) was queued by the next session as a
    first-start demo, under the banner "three SYNTHETIC electrodes at 160³"; a demo whose analysis a user
    cancelled was queued again by every new session."""
    from core.jobs import JobStore
    from core.workspace import DEMO_PREFIX

    monkeypatch.setenv("DETACH_DEMO_SIZE", "32")
    AppTest.from_file(APP, default_timeout=TIMEOUT).run()  # the first start: three demos, analysed
    later = empty_ws.add_sample("big", f"{DEMO_PREFIX}pristine", spacing=0.4,
                                source_options={"shape": [40, 40, 40], "seed": 9})
    first = empty_ws.list_samples()[0]
    for a in empty_ws.list_analyses(first.id):
        empty_ws.delete_analysis(a.id)  # as if its analysis had been cancelled before it finished
    js = JobStore(empty_ws.root)
    job = js.create("analysis", {"sample_id": first.id, "params": {}}, title=f"Demo analysis: {first.name}")
    js.cancel(job.id)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()  # a new session
    no_exception(at)
    assert empty_ws.latest_analysis(later.id) is None and empty_ws.latest_analysis(first.id) is None
    assert max(j.id for j in js.list(limit=100)) == job.id  # nothing queued
    assert not [i for i in at.info if "Preparing the demo electrodes" in i.value]


def test_picker_choice_reaches_the_pages(seeded_ws, monkeypatch):
    monkeypatch.setenv("DETACH_DEMOS", "0")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    third = seeded_ws.list_samples()[2]
    at.sidebar.selectbox(key=state.SAMPLE_PICKER).select(third.id).run()
    no_exception(at)
    assert at.session_state[state.SAMPLE_ID] == third.id
    at.switch_page("pages/3_particles.py").run()
    no_exception(at)
    assert at.title[0].value == f"Particles — {third.name}"
    assert at.sidebar.selectbox(key=state.SAMPLE_PICKER).value == third.id


def test_the_chosen_sample_lives_in_the_url_so_a_reload_keeps_it(seeded_ws, monkeypatch):
    monkeypatch.setenv("DETACH_DEMOS", "0")
    first, _, third = seeded_ws.list_samples()[:3]
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert at.query_params["sample"] == str(first.id)
    at.sidebar.selectbox(key=state.SAMPLE_PICKER).select(third.id).run()
    assert at.query_params["sample"] == str(third.id)
    # a reload is a new session that has only the URL
    again = AppTest.from_file(APP, default_timeout=TIMEOUT)
    again.query_params["sample"] = str(third.id)
    again.run()
    no_exception(again)
    assert again.sidebar.selectbox(key=state.SAMPLE_PICKER).value == third.id
    # a URL naming no sample of this workspace (deleted since) falls back to the first, without an error, and says so
    stale = AppTest.from_file(APP, default_timeout=TIMEOUT)
    stale.query_params["sample"] = "9999"
    stale.run()
    no_exception(stale)
    assert stale.sidebar.selectbox(key=state.SAMPLE_PICKER).value == first.id
    assert any(w.value == f"Sample #9999, named in the link, is no longer in the workspace (deleted); showing "
                          f"'{first.name}' instead." for w in stale.warning)
    assert not any("named in the link" in w.value for w in again.warning)
