"""Pinned comparisons in a real browser (Chromium through Playwright), two browser contexts on one server: a new
analysis made while browser 1 shows the Compare page never changes browser 1's comparison, also after a reload;
a notice offers it and *Use it* switches. Screenshots (the Compare page with the naming, the parameter flag and
the notice; the analyses list of the Samples page) are copied to /tmp/shots-pin/."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from apphelpers import no_page_exception, settle, start_server, stop_server
from test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is missing (apt-get install chromium)")

SHOTS_COPY = Path("/tmp/shots-pin")


def _url_pins(page) -> list[str]:
    return parse_qs(urlparse(page.url).query).get("a", [""])[0].split(",")


def _expect_shows(selectbox, analysis_id: int) -> None:
    """The selectbox shows analysis ``#analysis_id`` (its value is in the combobox's input)."""
    from playwright.sync_api import expect

    expect(selectbox.get_by_role("combobox")).to_have_value(re.compile(rf"^#{analysis_id} · "))


def test_a_new_analysis_in_another_browser_is_offered_not_switched_to(seeded_template, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from core.particles import SeparationParams
    from core.runner import run_analysis
    from core.workspace import Workspace

    expect.set_options(timeout=60_000)
    shutil.copytree(seeded_template, tmp_path / "ws")
    ws = Workspace(tmp_path / "ws")
    pristine, c1, c5 = ws.list_samples()

    def rerun(sample, h_um):
        params = ws.latest_analysis(sample.id).requested
        return run_analysis(ws, sample.id, ws.load_volume(sample),
                            replace(params, separation=SeparationParams(h_um=h_um)))

    moved = rerun(c1, 0.75)  # cycled-1C analysed with another h: the page flags it
    shown_5c = ws.latest_analysis(c5.id)
    (tmp_path / "data").mkdir()
    proc, url = start_server(tmp_path / "server.log", {
        "DETACH_WORKSPACE": str(ws.root), "DETACH_DATA": str(tmp_path / "data"), "DETACH_DEMOS": "0",
        "DETACH_JOBS": "inline"})
    shots = tmp_path / "shots"
    shots.mkdir()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
            try:
                one = browser.new_context(viewport={"width": 1440, "height": 1100}).new_page()
                # a link naming two analyses (the URL routing a real browser does; two electrodes: a lighter page).
                # The Compare page is the default page: its address is the root ("/compare" is sent there,
                # checked below)
                one.goto(f"{url}/?a={moved.id},{shown_5c.id}")
                expect(one.locator("h1", has_text="Compare electrodes")).to_be_visible()
                settle(one)
                expect(one.get_by_text("Page not found")).to_have_count(0)
                pick_5c = one.locator("[data-testid='stSelectbox']", has_text="Analysis of cycled-5C")
                _expect_shows(pick_5c, shown_5c.id)
                _expect_shows(one.locator("[data-testid='stSelectbox']", has_text="Analysis of cycled-1C"), moved.id)
                expect(one.get_by_text("cycled-1C (SYNTHETIC) used h = 0.75 µm; cycled-5C (SYNTHETIC) used the "
                                       "defaults")).to_be_visible()
                expect(one.locator("[data-testid='stSelectbox']", has_text="Analysis of pristine")).to_have_count(0)
                assert _url_pins(one) == [str(moved.id), str(shown_5c.id)]

                # another user makes a new analysis of cycled-5C; browser 2 sees it in the sample's analyses
                newer = rerun(c5, 0.9)
                two = browser.new_context(viewport={"width": 1100, "height": 1400}).new_page()
                two.goto(f"{url}/samples?sample={c5.id}")
                expect(two.locator("h2", has_text="cycled-5C")).to_be_visible()
                settle(two)
                listing = two.locator("[data-testid='stExpander']", has_text="Analyses of this sample")
                listing.locator("summary").click()
                settle(two)
                _expect_shows(listing.locator("[data-testid='stSelectbox']"), newer.id)
                expect(listing.get_by_role("button", name="Delete analysis")).to_be_disabled()  # until ticked
                no_page_exception(two)
                listing.screenshot(path=str(shots / "samples_analyses_list.png"))

                # browser 1 reloads: the same analyses (from its URL), and the notice
                one.reload()
                expect(one.locator("h1", has_text="Compare electrodes")).to_be_visible()
                settle(one)
                _expect_shows(pick_5c, shown_5c.id)
                notice = one.locator("[data-testid='stAlertContentInfo']", has_text="has a newer analysis")
                expect(notice).to_contain_text(f"cycled-5C (SYNTHETIC) has a newer analysis #{newer.id}")
                no_page_exception(one)
                one.screenshot(path=str(shots / "compare_pinned_notice.png"))

                # "Use it" switches, and the URL follows
                one.get_by_role("button", name="Use it").click()
                settle(one)
                _expect_shows(pick_5c, newer.id)
                expect(notice).to_have_count(0)
                assert _url_pins(one)[-1] == str(newer.id)
                no_page_exception(one)

                # a typed or bookmarked "/compare" address, with its pins: the Compare page, no "Page not found"
                three = browser.new_context(viewport={"width": 1100, "height": 1400}).new_page()
                three.goto(f"{url}/compare?a={moved.id},{shown_5c.id}")
                expect(three.locator("h1", has_text="Compare electrodes")).to_be_visible()
                settle(three)
                expect(three.get_by_text("Page not found")).to_have_count(0)
                _expect_shows(three.locator("[data-testid='stSelectbox']", has_text="Analysis of cycled-5C"),
                              shown_5c.id)
                no_page_exception(three)
            finally:
                browser.close()
    finally:
        stop_server(proc)
    SHOTS_COPY.mkdir(parents=True, exist_ok=True)
    for f in shots.iterdir():
        shutil.copy2(f, SHOTS_COPY / f.name)
    assert len(list(shots.glob("*.png"))) == 2
