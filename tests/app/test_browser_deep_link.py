"""A deep link opened as a server process's first browser session (Chromium through Playwright): Streamlit runs
that first script run in its legacy pages-folder mode, which runs the page file itself; the page goes through
``app.py`` (``ui.page.through_app``), so the page shows with the dashboard's own sidebar and no "Page not found"
dialog over it, its query (``?sample=``) kept."""

from __future__ import annotations

import os
import shutil

import pytest

from apphelpers import no_page_exception, served_page, settle
from test_browser import CHROMIUM

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is missing (apt-get install chromium)")


def test_a_deep_link_as_the_first_session_shows_its_page(seeded_template, tmp_path):
    from playwright.sync_api import expect

    from core.workspace import Workspace

    expect.set_options(timeout=60_000)
    shutil.copytree(seeded_template, tmp_path / "ws")
    ws = Workspace(tmp_path / "ws")
    c1 = next(s for s in ws.list_samples() if s.name == "cycled-1C")
    with served_page(ws.root, tmp_path) as (page, url):
        page.goto(f"{url}/particles?sample={c1.id}")  # the first session of this server process
        expect(page.locator("h1", has_text="Particles — cycled-1C")).to_be_visible()
        settle(page)
        expect(page.get_by_text("Page not found")).to_have_count(0)
        nav = page.locator("[data-testid='stSidebarNav']")
        expect(nav.get_by_text("Samples", exact=True)).to_be_visible()  # the dashboard's page list
        expect(nav.get_by_text("app", exact=True)).to_have_count(0)  # not Streamlit's own
        expect(page.get_by_text("Cathode particle detachment")).to_be_visible()  # app.py's sidebar
        no_page_exception(page)
