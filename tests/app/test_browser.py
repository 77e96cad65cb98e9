"""One end-to-end run in a real browser (Debian's Chromium through Playwright) against `streamlit run app.py`.

A fresh workspace: the app prepares the demo electrodes on first start, then the test picks a demo,
changes a threshold, reruns the particle separation, opens Compare (and downloads its report, a chart and the
recipe) and 3D, saving a screenshot of each page under the test's tmp folder (copied to /tmp/dashboard_shots/).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from apphelpers import no_page_exception, settle, start_server, stop_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SHOTS_COPY = Path("/tmp/dashboard_shots")
DEMO_SIZE = 64

#: Browser console errors known to be harmless, each (substring, why). Anything else fails the test.
BENIGN_CONSOLE_ERRORS: tuple[tuple[str, str], ...] = ()

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium) for the browser test",
)


@pytest.fixture
def server(tmp_path):
    proc, url = start_server(tmp_path / "server.log", {
        "DETACH_WORKSPACE": str(tmp_path / "ws"), "DETACH_DATA": str(tmp_path / "data"),
        "DETACH_DEMO_SIZE": str(DEMO_SIZE)})
    try:
        yield url
    finally:
        stop_server(proc)


def test_end_to_end_in_chromium(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shots = tmp_path / "shots"
    shots.mkdir()
    errors: list[str] = []

    def shot(page, name):
        path = shots / name
        page.screenshot(path=str(path))  # tall viewport: Streamlit scrolls inside a div
        return path

    def goto(page, title):
        page.locator("[data-testid='stSidebarNav'] a", has_text=title).first.click()
        settle(page)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 2500})
            page.set_default_timeout(60_000)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on("console", lambda m: errors.append(f"console {m.type}: {m.text} (at {m.location.get('url')})")
                    if m.type == "error" else None)
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url} ({r.failure})"))
            page.goto(server, timeout=60_000)
            # first start: the demos are generated and analysed as background jobs, the comparison fills in
            expect(page.locator("h1", has_text="Compare electrodes")).to_be_visible(timeout=240_000)
            expect(page.get_by_text("Preparing the demo electrodes")).to_be_visible(timeout=120_000)
            shot(page, "0_first_start_jobs.png")
            expect(page.locator("[data-testid='stImage'] img")).to_have_count(3, timeout=300_000)
            expect(page.get_by_text("Preparing the demo electrodes")).to_have_count(0, timeout=60_000)
            settle(page, 240_000)
            no_page_exception(page)
            shot(page, "0_landing_compare.png")
            goto(page, "Samples")
            expect(page.locator("h1", has_text="Samples")).to_be_visible()
            expect(page.locator("[data-testid='stImage'] img")).to_have_count(3)
            shot(page, "1_samples.png")

            # pick a demo electrode in the shared sidebar picker
            page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
            page.locator("[role='option']", has_text="cycled-5C").first.click()
            settle(page)
            expect(page.locator("h2", has_text="cycled-5C")).to_be_visible()

            # Segment: move the pore | CBD threshold with the keyboard, the preview follows
            goto(page, "Segment")
            expect(page.locator("h1", has_text="Segment — cycled-5C")).to_be_visible()
            slider = page.locator("[data-testid='stSlider']", has_text="Pore | CBD threshold")
            value = slider.locator("[data-testid='stSliderThumbValue']")
            before = float(value.inner_text())
            pore_before = page.locator("[data-testid='stMetric']", has_text="pore (this slice)").inner_text()
            slider.locator("input[type='range']").focus()
            page.keyboard.press("PageUp")  # a tenth of the range
            settle(page)
            after = float(value.inner_text())
            assert after > before
            # the preview reruns after the slider's value shows: wait for the metric to move (a busy machine
            # can let settle() see the page idle between the two)
            expect(page.locator("[data-testid='stMetric']", has_text="pore (this slice)")).not_to_have_text(
                pore_before, timeout=120_000)
            no_page_exception(page)
            expect(page.locator("[data-testid='stVegaLiteChart']").first).to_be_visible()
            shot(page, "2_segment.png")

            # Particles: change h in the form and run the separation
            goto(page, "Particles")
            expect(page.locator("h1", has_text="Particles — cycled-5C")).to_be_visible()
            h = page.locator("[data-testid='stSlider']", has_text="h (µm)").locator("input[type='range']")
            h.focus()
            for _ in range(4):
                page.keyboard.press("ArrowRight")
            page.get_by_role("button", name="Run particle separation").click()
            settle(page)
            # a background job on the local Dask cluster: queued, then its result when it is done
            # (a warm cluster can finish a small job before the "queued" message is seen: either will do);
            # the demos' "done" messages of the last seconds may still show beside it
            from core.jobs import JobStore

            job = JobStore(tmp_path / "ws").list(limit=1)[0]
            assert job.kind == "separation", job
            expect(page.locator("[data-testid='stAlertContentInfo']", has_text=f"Job #{job.id} queued").or_(
                page.locator("[data-testid='stAlertContentSuccess']", has_text=f"(job #{job.id}")).first
                   ).to_be_visible()
            expect(page.locator("[data-testid='stAlertContentSuccess']", has_text=f"(job #{job.id}").first
                   ).to_be_visible(timeout=180_000)
            settle(page)
            no_page_exception(page)
            shot(page, "3_particles.png")

            # Compare: the three demos, charts and slices drawn
            goto(page, "Compare")
            expect(page.locator("h1", has_text="Compare electrodes")).to_be_visible()
            expect(page.locator("[data-testid='stImage'] img")).to_have_count(3)
            page.wait_for_function(
                "() => document.querySelectorAll('[data-testid=\"stVegaLiteChart\"] canvas, "
                "[data-testid=\"stVegaLiteChart\"] svg').length >= 4", timeout=60_000)
            no_page_exception(page)
            shot(page, "4_compare.png")
            # Export: files made on request (a click makes the file, a Save button takes the button's place; the
            # section is a fragment, so a file made stays offered when the next is made) arrive as downloads
            for label, saved, check in (
                    ("HTML report", "Save report · ",
                     lambda b: b.startswith(b"<!DOCTYPE html>") and b"<script" not in b),
                    ("PNG", "Save PNG · ", lambda b: b.startswith(b"\x89PNG\r\n\x1a\n")),
                    ("Recipe (JSON)", "Recipe (JSON)", lambda b: b'"recipe_version": 1' in b)):  # made with the page
                if saved != label:
                    page.locator("[data-testid='stButton'] button", has_text=label).first.click()
                save = page.locator("[data-testid='stDownloadButton'] button", has_text=saved).first
                expect(save).to_be_visible(timeout=60_000)
                with page.expect_download(timeout=60_000) as dl:
                    save.click()
                assert dl.value.failure() is None, label
                data = Path(dl.value.path()).read_bytes()
                assert check(data), (label, data[:80])
            made = page.locator("[data-testid='stDownloadButton'] button", has_text="Save report · ")
            expect(made.first).to_be_visible()
            no_page_exception(page)

            # 3D: the vtk.js page inside its iframe draws on a canvas
            goto(page, "3D")
            expect(page.locator("h1", has_text="3D — cycled-5C")).to_be_visible()
            frame = page.frame_locator("iframe").first
            expect(frame.locator("canvas").first).to_be_visible(timeout=120_000)
            page.wait_for_timeout(3000)  # let vtk.js draw the first frame
            no_page_exception(page)
            shot(page, "5_3d.png")
        finally:
            browser.close()

    unexpected = [e for e in errors if not any(pat in e for pat, _ in BENIGN_CONSOLE_ERRORS)]
    assert not unexpected, "\n".join(sorted(set(unexpected)))
    SHOTS_COPY.mkdir(parents=True, exist_ok=True)
    for f in shots.iterdir():
        shutil.copy2(f, SHOTS_COPY / f.name)
    assert len(list(shots.glob("*.png"))) == 7
