"""The dashboard server's memory while the Segment page renders a big compressed Zarr sample (issue 12).

A real server (``streamlit run app.py``) and Chromium (Playwright, ``/usr/bin/chromium``): the workspace holds a
small sample (64 x 128 x 128, read whole) and a big one, a ``cycled-1C`` demo electrode of 64 x 128 x 128 tiled
to Z x 512 x 512 (uint16, Zarr v3, zstd, chunks 64 x 128 x 128).  The Segment page is opened on the small sample
first (the page's imports and compiled kernels), then the sidebar picks the big one; the server process's
resident memory (``/proc/PID/status`` VmRSS, every 20 ms) is compared before and during that render (histogram,
display contrast, preview globals, one-slice preview), then during one move of the slice slider (a new slab).
``--compare REV`` runs the same with the app of a git revision (``git archive``) beside the working tree's.
``--wide 64x2048x2048`` adds big samples of other shapes (the same electrode tiled; each side a multiple of 64 x
128 x 128): a section over ``core.phases.MAX_PREVIEW_PIXELS`` is previewed in a window.

Usage:  python bench/dashboard_memory.py [--depths 256 1024] [--wide 64x2048x2048] [--compare 23abcfb]
        [--work DIR] [--shots DIR] [--section NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def _volumes(work: Path, shapes) -> dict[tuple[int, int, int], Path]:
    """The small sample (64 x 128 x 128) and a big one of each shape: Zarr stores, written once into ``work``."""
    import zarr

    from core.synth import demo_electrode

    one = demo_electrode("cycled-1C", rng=0, shape=(64, 128, 128)).greyscale
    out = {}
    for shape in [(64, 128, 128), *shapes]:
        path = work / ("grey-{}.zarr".format(shape[0]) if shape[1:] == (512, 512) else
                       "grey-{}x{}x{}.zarr".format(*shape))
        if not path.exists():
            reps = tuple(n // m for n, m in zip(shape, one.shape))
            vol = np.ascontiguousarray(np.tile(one, reps))
            zarr.create_array(str(path), shape=vol.shape, chunks=(64, 128, 128), dtype=vol.dtype)[:] = vol
            del vol
        out[shape] = path
    return out


def _shape(text: str) -> tuple[int, int, int]:
    shape = tuple(int(n) for n in text.lower().split("x"))
    if len(shape) != 3 or any(n % m for n, m in zip(shape, (64, 128, 128))):
        raise argparse.ArgumentTypeError(f"a shape ZxYxX with multiples of 64 x 128 x 128, got {text!r}")
    return shape


def _status(pid: int) -> dict[str, int]:
    d = {}
    for line in open(f"/proc/{pid}/status"):
        k, v = line.split(":", 1)
        if k in ("VmRSS", "RssAnon"):
            d[k] = int(v.split()[0]) * 1024
    return d


class _Peak:
    """The largest VmRSS of a process while running (polled every 20 ms)."""

    def __init__(self, pid: int):
        self.pid, self.value, self._stop = pid, 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.value = max(self.value, _status(self.pid)["VmRSS"])
            except OSError:
                pass
            time.sleep(0.02)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def _measure(app_root: Path, small: Path, big: Path, run_dir: Path, shot: Path | None) -> dict:
    sys.path.insert(0, str(C.REPO_ROOT / "tests" / "app"))
    from apphelpers import free_port, no_page_exception, settle
    from playwright.sync_api import expect, sync_playwright

    from core.workspace import Workspace
    from ui import startup

    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / "data").mkdir(parents=True)
    for p in (small, big):
        shutil.copytree(p, run_dir / "data" / p.name)
    ws = Workspace(run_dir / "ws")
    ws.set_meta(startup.META_KEY, "1")  # no demo electrodes
    ws.add_sample("small", str(run_dir / "data" / small.name), spacing=0.4)
    ws.add_sample("big", str(run_dir / "data" / big.name), spacing=0.4)
    port = free_port()
    env = dict(os.environ, DETACH_WORKSPACE=str(run_dir / "ws"), DETACH_DATA=str(run_dir / "data"),
               DETACH_WORKERS="1", PYTHONPATH=str(app_root))
    env.pop("DETACH_JOBS", None)
    with open(run_dir / "server.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(app_root / "app.py"),
                                 "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port",
                                 str(port), "--browser.gatherUsageStats", "false"], cwd=app_root, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    res: dict = {}
    try:
        for _ in range(300):
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read().strip() == b"ok":
                    break
            except OSError:
                time.sleep(0.3)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=60_000)
            page = browser.new_page(viewport={"width": 1440, "height": 2200})
            page.set_default_timeout(300_000)
            page.goto(url, timeout=120_000)
            settle(page)

            def pick(name):
                page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
                page.locator("[role='option']", has_text=name).first.click()
                settle(page, 300_000)

            def shown(name):
                wait = 300_000  # a fresh app copy (--compare) compiles its numba kernels first
                expect(page.locator("h1", has_text=f"Segment — {name}")).to_be_visible(timeout=wait)
                settle(page, 300_000)
                expect(page.locator("[data-testid='stVegaLiteChart']").first).to_be_visible(timeout=wait)
                expect(page.locator("[data-testid='stImage'] img").first).to_be_visible(timeout=wait)
                settle(page, 300_000)
                no_page_exception(page)

            pick("small")
            page.locator("[data-testid='stSidebarNav'] a", has_text="Segment").first.click()
            settle(page, 300_000)
            shown("small")
            time.sleep(2)
            before = _status(proc.pid)["VmRSS"]
            with _Peak(proc.pid) as first:
                t0 = time.perf_counter()
                pick("big")
                shown("big")
                res["render_s"] = time.perf_counter() - t0
            slider = page.locator("[data-testid='stSlider']", has_text="Preview slice index")
            with _Peak(proc.pid) as moved:
                slider.locator("input[type='range']").focus()
                page.keyboard.press("PageUp")  # a tenth of the range: a new slab
                settle(page, 300_000)
                page.wait_for_timeout(1500)
                settle(page, 300_000)
                no_page_exception(page)
            res["slice"] = slider.locator("[data-testid='stSliderThumbValue']").inner_text()
            if shot is not None:
                page.screenshot(path=str(shot))
            browser.close()
        res.update(before=before, first=first.value - before, moved=max(first.value, moved.value) - before)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    return res


def main() -> None:
    from core.phases import MAX_PREVIEW_PIXELS, PREVIEW_WINDOW

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--depths", type=int, nargs="*", default=[256, 1024], help="Z of the big samples (x 512 x 512)")
    ap.add_argument("--wide", type=_shape, nargs="*", default=[], help="more big samples, ZxYxX (e.g. 64x2048x2048)")
    ap.add_argument("--compare", default=None, help="also measure the app of this git revision")
    ap.add_argument("--work", default=str(C.BENCH_DIR / "out" / "dashboard_memory"))
    ap.add_argument("--shots", default=None, help="folder for a screenshot of each big sample's Segment page")
    ap.add_argument("--section", default="dashboard_memory")
    C.add_common_args(ap)
    args = ap.parse_args()
    if args.quick:
        args.depths = [128]
    t_start, load0 = time.perf_counter(), os.getloadavg()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    shapes = [(nz, 512, 512) for nz in args.depths] + list(args.wide)
    vols = _volumes(work, shapes)
    apps = [("working tree", C.REPO_ROOT)]
    tmp = None
    if args.compare:
        tmp = Path(tempfile.mkdtemp(prefix="dashmem-"))
        subprocess.run(f"git archive {args.compare} | tar -x -C {tmp}", shell=True, check=True, cwd=C.REPO_ROOT)
        apps.append((f"`{args.compare}`", tmp))
    rows = []
    try:
        for label, root in apps:
            for shape in shapes:
                name = shape[0] if shape[1:] == (512, 512) else "x".join(map(str, shape))
                shot = Path(args.shots) / f"segment-{name}-{label.strip('`').replace(' ', '_')}.png" \
                    if args.shots else None
                if shot is not None:
                    shot.parent.mkdir(parents=True, exist_ok=True)
                r = _measure(root, vols[(64, 128, 128)], vols[shape], work / "run", shot)
                nbytes = int(np.prod(shape)) * 2
                rows.append({"app": label, "big sample (z×y×x, uint16)": "×".join(map(str, shape)),
                             "volume MiB": nbytes / 2**20, "render s": r["render_s"],
                             "server RSS before MiB": r["before"] / 2**20,
                             "RSS increase, render MiB": r["first"] / 2**20,
                             "÷ volume": r["first"] / nbytes,
                             "RSS increase, + slider move MiB": r["moved"] / 2**20,
                             "÷ volume ": r["moved"] / nbytes})
                print(json.dumps(rows[-1]), flush=True)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    lines = [
        "## Dashboard server memory: the Segment page on a big Zarr sample (`bench/dashboard_memory.py`)", "",
        *C.env_lines(), f"- script wall time: {time.perf_counter() - t_start:.0f} s", C.load_line(load0), "",
        "The server process's resident memory (VmRSS) while the Segment page renders a big compressed Zarr sample "
        "in Chromium, above what it held after rendering the page for a 64×128×128 sample (imports, compiled "
        "kernels); then including one move of the slice slider (a new slab).  A sample over "
        "`ui.cache.LAZY_VOXELS` (16 M voxels) is read box by box (`core.chunked.LazyArray`): the sampled blocks "
        "of the histogram and the preview's global values, the central block, a slab around the slice.  A "
        f"z-section over `core.phases.MAX_PREVIEW_PIXELS` ({MAX_PREVIEW_PIXELS:,} pixels) is previewed in a window "
        f"of `core.phases.PREVIEW_WINDOW`² = {PREVIEW_WINDOW}² pixels (centred) and its in-plane halo only (in the "
        "apps that have the window).", "",
        C.md_table(rows, digits=2),
    ]
    C.publish("dashboard_memory", lines, args, section=args.section)


if __name__ == "__main__":
    main()
