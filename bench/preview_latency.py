"""Latency of the Segment page's live one-slice phase preview.

Times ``ui.compute.preview_phases`` (what ``pages/2_Segment.py`` calls, through
``ui.cache.preview_phases``, for the live preview) directly, without Streamlit
and without its cache, on a 512 x 512 slice (axis 0) of a synthetic greyscale
volume ``make_electrode(ElectrodeParams(shape=(64, 512, 512)), rng=7)``.

Cases: a few threshold pairs around the three-class Otsu suggestion, each with
the default ``SegmentParams`` (Gaussian denoise 0.7 voxel, partial-volume
correction, islands < 8 voxels merged) in the two situations the page meets:

* ``pv_sigma`` known (the sample was analysed before: the page passes the
  analysis' resolved blur sigma),
* ``pv_sigma`` None (not analysed yet: the preview estimates it per call).

Each case: ``--warmup`` calls (numba compilation, caches), then ``--calls``
timed calls; median and 90th percentile of the wall time.  Target: ≤ 0.2 s.

Where the time goes: one extra call per ``pv_sigma`` case under cProfile;
the section lists the cumulative time of the ``core.phases`` functions it
made (profiling adds a little overhead).

Usage:  python bench/preview_latency.py [--quick] [--calls 20] [--warmup 2] [--shape Z Y X]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)

SEED = 7
SHAPE = (64, 512, 512)
QUICK_SHAPE = (32, 128, 128)
TARGET_S = 0.2


def _volume(shape) -> tuple[np.ndarray, str]:
    from core.synth import ElectrodeParams, make_electrode

    t0 = time.perf_counter()
    e = make_electrode(ElectrodeParams(shape=tuple(shape)), rng=SEED)
    return e.greyscale, f"`make_electrode(ElectrodeParams(shape={tuple(shape)}), rng={SEED})` greyscale " \
                        f"({e.greyscale.dtype}), generated in {time.perf_counter() - t0:.0f} s"


def _time(fn, n_warm: int, n_calls: int) -> np.ndarray:
    for _ in range(n_warm):
        fn()
    out = np.empty(n_calls)
    for i in range(n_calls):
        t0 = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t0
    return out


def _profile(fn) -> dict[str, float]:
    """Cumulative seconds of each ``core.phases`` function (and the whole call) in one profiled call."""
    import cProfile
    import pstats

    pr = cProfile.Profile()
    t0 = time.perf_counter()
    pr.runcall(fn)
    total = time.perf_counter() - t0
    out = {"whole call (profiled)": total}
    for (path, _line, name), (_cc, _nc, _tt, ct, _callers) in pstats.Stats(pr).stats.items():
        if path.replace("\\", "/").endswith("core/phases.py") and not name.startswith("<"):
            out[f"core.phases.{name}"] = out.get(f"core.phases.{name}", 0.0) + ct
    top = ("denoise", "threshold", "estimate_pv_sigma", "correct_partial_volume", "remove_small_islands")
    out["rest: slab copy, NMC median, slice (ui.compute)"] = total - sum(out.get(f"core.phases.{n}", 0.0)
                                                                          for n in top)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_common_args(ap)
    ap.add_argument("--calls", type=int, default=20, help="timed calls per case (default 20)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls per case first (default 2)")
    ap.add_argument("--shape", type=int, nargs=3, default=None, help=f"volume shape (default {SHAPE})")
    ap.add_argument("--section", default=None, help="RESULTS.md section name (default preview_latency[_quick])")
    args = ap.parse_args(argv)

    from core.phases import SegmentParams, estimate_pv_sigma, suggest_thresholds
    from ui import compute

    t_start = time.perf_counter()
    shape = tuple(args.shape or (QUICK_SHAPE if args.quick else SHAPE))
    vol, vol_desc = _volume(shape)
    axis, index = 0, shape[0] // 2
    lo, hi = suggest_thresholds(vol)
    span = hi - lo
    pairs = [("Otsu", lo, hi), ("Otsu −10 % / +5 %", lo - 0.10 * span, hi + 0.05 * span),
             ("Otsu +10 % / −10 %", lo + 0.10 * span, hi - 0.10 * span)]
    # the blur sigma an analysis of this volume would resolve (the page passes it once the sample is analysed)
    from core.phases import denoise, threshold

    mid = vol[max(0, index - 32): index + 32]
    d = denoise(mid, "gaussian", size=SegmentParams().denoise_size)
    sigma = estimate_pv_sigma(d, threshold(d, lo, hi))
    del d, mid
    print(f"volume {shape}, slice axis {axis} index {index} ({shape[1]}x{shape[2]}); Otsu thresholds "
          f"{lo:.0f} / {hi:.0f}; pv sigma {sigma:g}", flush=True)

    rows, profiles = [], {}
    for sig_name, sig in (("known", sigma), ("None (estimated per call)", None)):
        for name, low, high in pairs:
            p = SegmentParams(low=float(low), high=float(high), pv_sigma=sig)
            ts = _time(lambda: compute.preview_phases(vol, axis, index, p), args.warmup, args.calls)
            out = compute.preview_phases(vol, axis, index, p)
            row = {"pv_sigma": sig_name, "thresholds": f"{name}: {low:.0f} / {high:.0f}",
                   "calls": len(ts), "median s": float(np.median(ts)), "p90 s": float(np.percentile(ts, 90)),
                   "min s": float(ts.min()), f"≤ {TARGET_S:g} s": bool(np.median(ts) <= TARGET_S),
                   "CBD %": 100 * float(np.mean(out == 1))}
            rows.append(row)
            print(f"  {row['pv_sigma']:>26} | {row['thresholds']:<32} median {row['median s']:.3f} s, "
                  f"p90 {row['p90 s']:.3f} s", flush=True)
            if sig_name not in profiles:
                profiles[sig_name] = _profile(lambda: compute.preview_phases(vol, axis, index, p))
    total = time.perf_counter() - t_start

    table = C.md_table(rows, digits=3)
    names = sorted({k for pr in profiles.values() for k in pr}, key=lambda k: -max(pr.get(k, 0) for pr in
                                                                                  profiles.values()))
    prof_rows = [{"function (cumulative, nested calls overlap)": k,
                  **{f"pv_sigma {sig} s": profiles[sig].get(k) for sig in profiles}} for k in names]
    prof_table = C.md_table(prof_rows, digits=3)
    worst = max(r["median s"] for r in rows)
    worst_p90 = max(r["p90 s"] for r in rows)
    verdict = f"**{'meets' if worst <= TARGET_S else 'MISSES'}** the target"
    if shape[1:] != (512, 512):
        verdict = f"the slice is {shape[1]}×{shape[2]}, not 512², so the target does not apply"
    lines = [
        f"## Segment page: one-slice preview latency (`bench/preview_latency.py`)"
        f"{' — QUICK smoke run' if args.quick else ''}", "",
        *C.env_lines(), f"- script wall time: {total:.0f} s", "",
        f"Input: {vol_desc}. Timed: `ui.compute.preview_phases(volume, axis={axis}, index={index}, params)` "
        f"(the function behind the Segment page's live preview, called directly: no Streamlit, no cache), "
        f"output {shape[1]}×{shape[2]}; default `SegmentParams` (Gaussian denoise σ 0.7 voxel, partial-volume "
        f"correction, islands < 8 voxels merged) with the thresholds below; `pv_sigma` known = {sigma:g} voxel "
        f"(estimated once with `core.phases.estimate_pv_sigma` on the middle of the volume; the page passes the "
        f"analysis' resolved value once the sample is analysed), None = estimated in every call (not analysed yet). "
        f"Per row {args.warmup} untimed warm-up call(s), then {args.calls} timed calls.", "",
        table,
        "Where the time goes (one cProfile'd call of the first threshold pair per `pv_sigma` case; a function's "
        "time includes the functions it calls, e.g. `correct_partial_volume` includes `_grow_rim`):", "",
        prof_table,
        f"Target: the preview of one 512² slice updates in ≤ {TARGET_S:g} s. Worst median {worst:.3f} s, worst p90 "
        f"{worst_p90:.3f} s: {verdict}.",
    ]
    body = "\n".join(lines)
    print()
    print(body)
    section = args.section or ("preview_latency_quick" if args.quick else "preview_latency")
    C.write_section(section, body, C.results_path(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
