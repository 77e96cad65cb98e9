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
