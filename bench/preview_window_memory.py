"""Memory of one prepared slice preview of a large section: its window against the whole section (issue 12).

In one process (no server): the lazily read Zarr sample of ``bench/dashboard_memory.py --wide`` (the
``cycled-1C`` demo electrode of 64 x 128 x 128 tiled to Z x Y x X, uint16, chunks 64 x 128 x 128), the steps the
Segment page's cache runs for a preview of the middle z-slice: one slice read (the grey image),
``preview_globals``, then ``prepare_preview`` + ``preview_from`` of the centred window
(``core.phases.preview_window``) and of the whole section.  For each step its wall time, the peak resident memory
above what the process held before it (psutil, polled every 10 ms) and what it kept (the prepared context is kept,
as the page's cache keeps it); and the slab's size.  The kernels are compiled on a small crop first.

Usage:  python bench/preview_window_memory.py [--shape 64x2048x2048] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)
from dashboard_memory import _shape, _volumes

MiB = 2**20


class _Rss:
    """Resident memory of this process: now, and the peak since :meth:`reset` (polled every 10 ms)."""

    def __init__(self):
        import psutil

        self.proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def now(self) -> int:
        return self.proc.memory_info().rss

    def reset(self) -> int:
        self.peak = base = self.now()
        return base

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            time.sleep(0.01)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", type=_shape, default=(64, 2048, 2048), help="ZxYxX of the sample")
    ap.add_argument("--work", default=str(C.BENCH_DIR / "out" / "dashboard_memory"))
    ap.add_argument("--section", default="preview_window_memory")
    C.add_common_args(ap)
    args = ap.parse_args()
    if args.quick:
        args.shape = (64, 1280, 1280)
    from core import phases as ph
    from core.chunked import open_lazy_array

    t_start, load0 = time.perf_counter(), os.getloadavg()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    path = _volumes(work, [args.shape])[args.shape]
    vol, _ = open_lazy_array(path)
    small = np.asarray(vol[:40, :64, :64])  # compile the kernels
    g0 = ph.preview_globals(small)
    ph.preview_from(ph.prepare_preview(small, 0, 20, globals=g0, window=((0, 32), (0, 32))), *g0.suggested)
    del small, g0
    rss, rows, kept = _Rss(), [], []
    index = vol.shape[0] // 2
    window = ph.preview_window(vol.shape, 0)

    def step(name: str, fn, slab=None):
        base = rss.reset()
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        time.sleep(0.05)
        s = slab(out) if slab else None
        rows.append({"step": name, "s": dt, "peak increase MiB": (rss.peak - base) / MiB,
                     "kept MiB": (rss.now() - base) / MiB,
                     "slab (rows × H × W)": "×".join(map(str, s.shape)) if s is not None else "",
                     "slab MiB": s.nbytes / MiB if s is not None else float("nan")})
        print(rows[-1], flush=True)
        return out

    before = rss.now()
    kept.append(step(f"one z-slice read ({vol.shape[1]}×{vol.shape[2]})", lambda: vol[index]))
    g = step("preview_globals", lambda: ph.preview_globals(vol))
    lo, hi = g.suggested
    for label, w in ((f"window {window}", window), ("whole section", None)):
        ctx = step(f"prepare_preview, {label}", lambda: ph.prepare_preview(vol, 0, index, globals=g, window=w),
                   slab=lambda c: c.slab)
        kept.append(ctx)
        kept.append(step(f"preview_from, {label}", lambda: ph.preview_from(ctx, lo, hi)))
    lines = [
        "## One prepared preview of a large section: its window against the whole section "
        "(`bench/preview_window_memory.py`)", "",
        *C.env_lines(), f"- script wall time: {time.perf_counter() - t_start:.0f} s", C.load_line(load0),
        f"- sample: {'×'.join(map(str, vol.shape))} uint16 Zarr (chunks 64×128×128, zstd), read lazily; slice z = "
        f"{index}; default parameters (no denoising, partial-volume correction with the estimated blur "
        f"σ = {g.pv_sigma:g}, islands < 8 voxels); the process held {before / MiB:.0f} MiB before the first step", "",
        "Each step's wall time, the peak resident memory above what the process held before it, and what it kept "
        "(every result is kept, as the page's cache keeps the context).  The window is "
        f"`core.phases.preview_window`'s default (`PREVIEW_WINDOW` = {ph.PREVIEW_WINDOW}, for a section over "
        f"`MAX_PREVIEW_PIXELS` = {ph.MAX_PREVIEW_PIXELS:,} pixels); its slab adds the in-plane halo (island depth "
        "+ the correction's reach).", "",
        C.md_table(rows, digits=2),
    ]
    C.publish("preview_window_memory", lines, args, section=args.section)


if __name__ == "__main__":
    main()
