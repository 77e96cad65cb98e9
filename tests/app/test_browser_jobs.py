"""Background jobs in a real browser (Chromium through Playwright) against `streamlit run app.py` and its local
Dask cluster: a job survives page switches and a closed tab, a second browser sees it, Cancel works, and after
the server is killed mid-job and restarted the job shows as interrupted and re-runs to completion."""

from __future__ import annotations

import os
import signal
import time

import pytest

from apphelpers import settle, start_server, stop_server
from test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing (apt-get install chromium)")

#: Voxels per edge of the sample analysed by the jobs: long enough to act while it runs (256 until session 29,
#: when the faster analysis once finished before the second browser's cancel reached it).
SIZE = 320


def _workspace(tmp_path):
    from core.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    ws.add_sample("big", "demo:cycled-1C", spacing=0.4, source_options={"shape": [SIZE] * 3, "seed": 5})
    return ws


def _sidebar(page) -> str:
    return page.locator("[data-testid='stSidebar']").inner_text()


def _wait_sidebar(page, predicate, timeout_s: float, what: str) -> str:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        text = _sidebar(page)
        if predicate(text):
            return text
        page.wait_for_timeout(1000)
    raise AssertionError(f"{what} not seen within {timeout_s:.0f} s; the sidebar says:\n{_sidebar(page)}")


def test_jobs_survive_the_page_and_a_server_restart(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=120_000)  # the first job also starts the local cluster
    ws = _workspace(tmp_path)
    env = {"DETACH_WORKSPACE": str(ws.root), "DETACH_DATA": str(tmp_path / "data"), "DETACH_DEMOS": "0",
           "DETACH_WORKERS": "1"}
    (tmp_path / "data").mkdir()
    log = tmp_path / "server.log"
    proc, url = start_server(log, env)
    shots = tmp_path / "shots"
    shots.mkdir()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
            try:
                one = browser.new_context(viewport={"width": 1400, "height": 1400}).new_page()
                one.set_default_timeout(60_000)
                one.goto(url, timeout=60_000)
                # the first session of a server process starts in Streamlit's pages-folder mode: wait until the
                # entry script's navigation (with the jobs panel) has replaced Streamlit's own page list
                _wait_sidebar(one, lambda t: "Jobs" in t, 120, "the jobs panel")
                one.locator("[data-testid='stSidebarNav'] a", has_text="Segment").first.click()
                expect(one.locator("h1", has_text="Segment — big")).to_be_visible(timeout=120_000)
                run = one.get_by_role("button", name="Run the full analysis")
                try:
                    expect(run).to_be_enabled(timeout=240_000)  # the page reads (generates) the volume first
                except AssertionError:
                    one.screenshot(path=str(shots / "0_segment_failed.png"), full_page=True)
                    raise
                run.click()
                # (its own words: the page's "Not analysed yet: job #1 is analysing it (queued; ...)" may show beside
                # it, and "queued" alone matched both: a strict-mode failure in a CI run)
                expect(one.locator("[data-testid='stAlertContentInfo']", has_text="Job #1 queued")).to_be_visible()
                _wait_sidebar(one, lambda t: "running" in t, 90, "the job running")
                # move a widget (the page reruns) and switch pages while it runs; then close the tab
                # .first: while the page reruns Streamlit can show the stale slider beside the new one (strict mode
                # would fail at once); expect() re-resolves .first until the value has moved
                slider = one.locator("[data-testid='stSlider']", has_text="Pore | CBD threshold").first
                before = slider.locator("[data-testid='stSliderThumbValue']").inner_text()
                slider.locator("input[type='range']").focus()
                one.keyboard.press("PageUp")
                expect(slider.locator("[data-testid='stSliderThumbValue']")).not_to_have_text(before)
                settle(one)
                one.locator("[data-testid='stSidebarNav'] a", has_text="Samples").first.click()
                one.locator("[data-testid='stSidebarNav'] a", has_text="Particles").first.click()
                one.close()
                # a second browser sees the job, and cancels it
                two = browser.new_context(viewport={"width": 1400, "height": 1400}).new_page()
                two.goto(url, timeout=60_000)
                _wait_sidebar(two, lambda t: "#1 Analysis: big · running" in t, 60, "job #1 in browser 2")
                settle(two)
                two.screenshot(path=str(shots / "1_second_browser_sees_the_job.png"))
                two.locator("[data-testid='stSidebar']").get_by_role("button", name="Cancel").click()
                _wait_sidebar(two, lambda t: "⊘ #1 Analysis: big" in t, 120, "job #1 cancelled")
                # a new job from browser 2, then the server dies mid-job
                two.get_by_role("button", name="Re-run").first.click()
                _wait_sidebar(two, lambda t: "#2 Analysis: big · running" in t, 90, "job #2 running")
            finally:
                browser.close()
        stop_server(proc, signal.SIGKILL)  # the whole process group: server and its local cluster
        from core.jobs import JobStore

        assert JobStore(ws.root).get(2).state == "running"  # as the dead server left it
        proc, url = start_server(log, env)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
            try:
                three = browser.new_context(viewport={"width": 1400, "height": 1400}).new_page()
                three.goto(url, timeout=60_000)
                _wait_sidebar(three, lambda t: "Jobs" in t, 120, "the jobs panel")
                _wait_sidebar(three, lambda t: "↯ #2 Analysis: big" in t, 60, "job #2 interrupted")
                settle(three)  # a click in the panel while the page's first run (cluster start) goes on can be lost
                three.screenshot(path=str(shots / "2_interrupted_after_restart.png"))
                three.locator("[data-testid='stSidebar']").get_by_role("button", name="Re-run").first.click()
                _wait_sidebar(three, lambda t: "✓ #3 Analysis: big" in t, 240, "job #3 done")
                three.screenshot(path=str(shots / "3_rerun_done.png"))
            finally:
                browser.close()
    finally:
        stop_server(proc)
    store = JobStore(ws.root)
    assert [store.get(i).state for i in (1, 2, 3)] == ["cancelled", "interrupted", "done"]
    assert (store.get(3).rerun_of, store.get(2).rerun_of) == (2, 1)
    from core.workspace import Workspace

    done = Workspace(ws.root).list_analyses(status="done")
    assert [a.id for a in done] == [store.get(3).analysis_id]  # the cancelled and the killed runs stored nothing
    others = [a for a in Workspace(ws.root).list_analyses(status=None) if a.id != done[0].id]
    assert all(a.status == "failed" for a in others), [(a.id, a.status, a.error) for a in others]
