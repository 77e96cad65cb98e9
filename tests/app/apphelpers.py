"""Shared constants and helpers of the dashboard tests (importable: conftest puts this folder on sys.path)."""

from __future__ import annotations

import contextlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
DEMO_SIZE = 48  # voxels per edge: each demo generates and analyses in well under a second
TIMEOUT = 120


def page(name: str) -> str:
    return str(ROOT / "pages" / name)


def no_exception(at) -> None:
    assert not at.exception, "\n".join(e.message + "\n" + "\n".join(e.stack_trace or []) for e in at.exception)


def nested_dicts(obj, skip=None):
    """Every dict in a nested JSON-like object (a chart spec, a vtk.js scene), depth first; a dict for which
    ``skip(d)`` is true is left out with everything in it."""
    if isinstance(obj, dict):
        if skip is not None and skip(obj):
            return
        yield obj
        for v in obj.values():
            yield from nested_dicts(v, skip)
    elif isinstance(obj, list):
        for v in obj:
            yield from nested_dicts(v, skip)


def chart_specs(at) -> list[dict]:
    import json

    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def chart_data(at, index: int = 0) -> dict:
    """The named datasets of the ``index``-th Altair chart, as DataFrames (Streamlit sends them as Arrow)."""
    import pyarrow as pa

    proto = at.get("vega_lite_chart")[index].proto
    return {d.name: pa.ipc.open_stream(d.data.data).read_pandas() for d in proto.datasets}


def layer_data(at, mark: str, index: int = 0):
    """DataFrame of the first layer with this mark type in the ``index``-th chart."""
    import json

    spec = json.loads(at.get("vega_lite_chart")[index].proto.spec)
    data = chart_data(at, index)
    for layer in spec.get("layer", [spec]):
        m = layer.get("mark")
        if (m.get("type") if isinstance(m, dict) else m) == mark:
            return data[layer["data"]["name"]]
    raise AssertionError(f"no {mark} layer in chart {index}")


# --------------------------------------------------------------------------- a real server for browser tests


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log_path: Path, env_extra: dict, port: int | None = None):
    """``streamlit run app.py`` in its own process group; returns (process, url) once it answers its health check."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    import pytest

    port = port or free_port()
    env = dict(os.environ, VTK_DEFAULT_OPENGL_WINDOW="vtkEGLRenderWindow")
    env.pop("DETACH_JOBS", None)
    env.update(env_extra)
    log = open(log_path, "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("streamlit did not start:\n" + Path(log_path).read_text()[-3000:])
        time.sleep(0.3)


@contextlib.contextmanager
def served_page(workspace, tmp_path: Path, viewport=(1300, 1000)):
    """A page of Chromium on a dashboard served (inline jobs, no demos) over ``workspace``, with an empty data
    folder under ``tmp_path``: yields ``(page, url)``; the browser and the server are stopped on leaving."""
    from playwright.sync_api import sync_playwright

    from test_browser import CHROMIUM, CHROMIUM_ARGS

    (tmp_path / "data").mkdir(exist_ok=True)
    proc, url = start_server(tmp_path / "server.log", {
        "DETACH_WORKSPACE": str(workspace), "DETACH_DATA": str(tmp_path / "data"), "DETACH_DEMOS": "0",
        "DETACH_JOBS": "inline"})
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
            try:
                yield browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}).new_page(), url
            finally:
                browser.close()
    finally:
        stop_server(proc)


def stop_server(proc, sig=None) -> None:
    """Stop the server's whole process group (its local Dask cluster included): SIGTERM, or ``sig``."""
    import os
    import signal
    import subprocess

    try:
        os.killpg(proc.pid, sig or signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    _wait_group_gone(proc.pid)


def _wait_group_gone(pgid: int, timeout_s: float = 30.0) -> None:
    """Wait until no process of group ``pgid`` is left, zombies included (SIGKILL after ``timeout_s / 2``).

    The server exits before its local Dask cluster's worker processes do, and a killed worker stays a zombie until
    PID 1 reaps it (about a second here): a check of the workspace meanwhile finds its ``running`` analysis owned by
    a live process and leaves it so.
    """
    import os
    import signal
    import time

    t0 = time.monotonic()
    killed = False
    while time.monotonic() - t0 < timeout_s:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        if not killed and time.monotonic() - t0 > timeout_s / 2:
            os.killpg(pgid, signal.SIGKILL)
            killed = True
        time.sleep(0.1)
    raise AssertionError(f"processes of the server's group {pgid} still there {timeout_s:.0f} s after it was stopped")


def settle(page, timeout=120_000) -> None:
    """Wait until Streamlit has finished the current run of a Playwright ``page``."""
    page.wait_for_timeout(400)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)
    # elements of the previous run linger (marked stale) until the new run has replaced them:
    # without this wait a screenshot can show the old and the new layout at once
    page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')", timeout=timeout)
    page.wait_for_timeout(300)


def no_page_exception(page) -> None:
    """No Streamlit exception box on a Playwright ``page``."""
    assert page.locator("[data-testid='stException']").count() == 0, page.locator(
        "[data-testid='stException']").first.inner_text()


def drifting_scan(path) -> str:
    """A 48³ demo electrode (0.4 µm) whose gain drifts by ±15 % along z, written to ``path``; its path."""
    import numpy as np

    from core.io import save_tiff
    from core.synth import demo_electrode

    g = demo_electrode("cycled-1C", rng=2, shape=(48, 48, 48)).greyscale
    off = 0.1 * 65535  # core.synth's grey value of zero attenuation
    gain = 1 + 0.3 * np.linspace(-0.5, 0.5, 48)[:, None, None]
    save_tiff(path, np.clip((g.astype(np.float32) - off) * gain + off, 0, 65535).astype(np.uint16), (0.4, 0.4, 0.4))
    return str(path)


def specks_sample(ws):
    """An already-segmented 24³ sample: a particle half in pore beside three specks of 8 voxels (0.51 µm³ at 0.4 µm)
    in the CBD touching no particle, analysed; returns (sample, analysis)."""
    import numpy as np

    from core.runner import run_analysis

    z, y, x = np.ogrid[:24, :24, :24]
    phases = np.ones((24, 24, 24), np.uint8)
    phases[:, :, 20:] = 0  # pore beside the particle
    phases[(z - 12) ** 2 + (y - 12) ** 2 + (x - 16) ** 2 <= 36] = 2
    for c in (6, 12, 18):
        phases[c : c + 2, 4:6, 4:6] = 2
    path = ws.root / "phases.npy"
    np.save(path, phases)
    s = ws.add_sample("seg", str(path), spacing=0.4, source_options={"phase_map": "0=pore,1=cbd,2=nmc"})
    return s, run_analysis(ws, s.id, ws.load_volume(s), presegmented=True)


def classifier_sample(ws):
    """A 32³ demo sample analysed by a brush-stroke classifier (strokes on every other pixel of one slice: its true
    phases); returns (sample, analysis)."""
    import numpy as np

    from core.classify import UNPAINTED
    from core.pipeline import AnalysisParams
    from core.runner import run_analysis
    from core.scribbles import Scribbles
    from core.synth import demo_electrode

    s = ws.add_sample("raw", "demo:pristine", spacing=0.4, source_options={"shape": [32, 32, 32], "seed": 0})
    vol = ws.load_volume(s)
    truth = demo_electrode("pristine", rng=0, shape=(32, 32, 32)).phases[16]
    painted = np.full(truth.shape, UNPAINTED, np.uint8)
    painted[::2, ::2] = truth[::2, ::2]
    folder = ws.save_training(s.id, vol, Scribbles.empty(vol.shape).with_slice(0, 16, painted))
    return s, run_analysis(ws, s.id, vol, AnalysisParams(method="classifier", classifier=str(folder)))
