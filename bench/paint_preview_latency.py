"""Latency of the Segment page's "Train from brush strokes" preview, per stroke, on a real 512 x 512 slice.

What the page does (``ui.paint``): the 2D features of each painted slice and of
the shown slice are computed once per slice and kept (``slice_features``; they
do not depend on the strokes); a stroke retrains only the learner, the light
one of ``ClassifierParams.preview()`` (the first ``PREVIEW_TREES`` trees of the
full forest), on the painted pixels' kept features
(``core.classify.train(..., features=)``) and classifies the shown slice on its
kept features (``PhaseClassifier.predict(..., features=)``).  The full analysis
uses the full forest.  This script times those calls directly, without
Streamlit and its cache (timing loop: ``_common.time_calls``):

* new slice: ``core.classify.features`` of one 512² slice (the first stroke on
  a slice, or a new shown slice);
* per stroke: ``train`` of the preview learner on the kept features +
  ``predict`` of the shown slice on its kept features + where to paint next
  (``ui.paint.low_confidence_where``) (what the user waits for);
* before: the same with the full forest, and with the features computed each time.

Input: ``nanoct_nmc_slices/raw_100.tif`` of the shared real data (499 x 601),
its top-left 499 x 512 reflected to 512 x 512, voxel size 1 µm as in
``bench/accuracy_real`` (feature scales 0.5-8 voxels); strokes from
``accuracy_real.simulate_strokes`` on its labels (seed 100: 3-px strokes, at
least 1,000 pixels per phase), the shown slice the same slice.

Usage:  python bench/paint_preview_latency.py [--quick] [--calls 5]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)

DATA = Path("/work/shared/data/real/nanoct_nmc_slices")
SLICE = "raw_100"
SEED = 100
TARGET_S = 1.0


def _slice(size: int, per_phase: int):
    import tifffile

    from accuracy_real import LABEL_MAP, simulate_strokes
    from core.io import apply_phase_map

    grey = tifffile.imread(DATA / f"{SLICE}.tif").astype(np.float32)
    lab = tifffile.imread(DATA / f"{SLICE}_label.tif")
    pad = ((0, max(0, size - grey.shape[0])), (0, max(0, size - grey.shape[1])))
    grey = np.pad(grey, pad, mode="reflect")[:size, :size]
    lab = np.pad(lab, pad, mode="reflect")[:size, :size]
    truth = apply_phase_map(lab, LABEL_MAP, name=f"{SLICE}_label.tif")
    return grey, simulate_strokes(truth, seed=SEED, per_phase=per_phase)


def main(argv=None) -> int:
    from core.classify import ClassifierParams, features, train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=5, help="timed calls per row")
    ap.add_argument("--section", default=None, help="RESULTS.md section name (default paint_preview_latency)")
    C.add_common_args(ap)
    args = ap.parse_args(argv)
    size = 128 if args.quick else 512
    t_start = time.perf_counter()
    load0 = os.getloadavg()
    grey, scr = _slice(size, 100 if args.quick else 1000)
    params = ClassifierParams()
    painted = np.bincount(scr[scr != 255], minlength=3)
    f = features(grey, 1.0, params)  # warm-up (imports, thread pools)
    rows = []

    def row(name, fn):
        wall, cpu = C.time_calls(fn, args.calls, warmup=1, cpu="process")
        rows.append({"step": name, "median wall s": float(np.median(wall)), "max wall s": float(wall.max()),
                     "median CPU s (process)": float(np.median(cpu))})
        print(rows[-1], flush=True)

    light = params.preview()  # what the page trains after each stroke
    row("features of one slice (new painted or shown slice)", lambda: features(grey, 1.0, params))
    clf = train(grey, scr, 1.0, light, features=f)
    row(f"train the preview learner ({light.n_estimators} trees) on kept features",
        lambda: train(grey, scr, 1.0, light, features=f))
    row("classify the shown slice with it on kept features", lambda: clf.predict(grey, 1.0, features=f))
    from ui.paint import low_confidence_where  # the page's "where to paint next" (numpy + scipy only)

    ph, conf = clf.predict(grey, 1.0, features=f)
    row("where to paint next: unsure pixels and their share at edges (`ui.paint.low_confidence_where`)",
        lambda: low_confidence_where(ph[0], conf[0], 0.6))

    def stroke():
        p, c = train(grey, scr, 1.0, light, features=f).predict(grey, 1.0, features=f)
        return low_confidence_where(p[0], c[0], 0.6)

    row(f"per stroke (the page): train + classify, {light.n_estimators} trees, kept features, + where to paint",
        stroke)
    row(f"(before) per stroke with the full forest ({params.n_estimators} trees), kept features",
        lambda: train(grey, scr, 1.0, params, features=f).predict(grey, 1.0, features=f))
    row("(before) per stroke, full forest, features computed each time",
        lambda: train(grey, scr, 1.0, params).predict(grey, 1.0))
    agree = float(np.mean(train(grey, scr, 1.0, light, features=f).predict(grey, 1.0, features=f)[0]
                          == train(grey, scr, 1.0, params, features=f).predict(grey, 1.0, features=f)[0]))
    per = next(r for r in rows if r["step"].startswith("per stroke (the page)"))
    stroke, stroke_cpu = per["median wall s"], per["median CPU s (process)"]
    verdict = "met" if stroke <= TARGET_S else "NOT met"
    total = time.perf_counter() - t_start
    lines = [
        f"## Brush-stroke classifier preview latency (Segment page, 'Train from brush strokes')"
        f"{' — QUICK smoke run' if args.quick else ''}", "",
        *C.env_lines(), f"- script wall time: {total:.0f} s",
        C.load_line(load0), "",
        f"Input: `{SLICE}.tif` of the shared real nano-CT slices, {size}×{size} (reflected at the edge), voxel "
        f"size 1 µm; default `ClassifierParams` ({params.learner}, {params.n_estimators} trees, depth "
        f"{params.max_depth}, {params.max_features or '√F'} feature(s) per split, "
        f"{params.n_jobs} threads, {f.shape[-1]} features at σ {params.sigma_min_um:g}-{params.sigma_max_um:g} "
        f"voxels); the page's preview learner is `params.preview()`: the first {light.n_estimators} trees of that "
        f"forest (same seed, same features). Strokes `accuracy_real.simulate_strokes(labels, seed={SEED})`: "
        f"{int(painted[0])} pore / {int(painted[1])} CBD / {int(painted[2])} NMC painted pixels on that slice, "
        f"which is also the slice shown. The slice's features are computed once per slice and kept (they do not "
        f"depend on the strokes); a stroke retrains the learner on the kept features of the painted pixels, "
        f"classifies the shown slice on its kept features and finds where to paint next (the pixels below the "
        f"default confidence mark 0.6 and their share within 2 px of an edge between phases). One untimed call, then {args.calls} timed calls per "
        "row (`_common.time_calls`). CPU = process CPU time (both threads); when other work shares the "
        "machine's 2 cores (see the load average) the wall times are upper bounds.",
        "",
        C.md_table(rows, digits=3),
        f"Target: the preview follows a stroke within about {TARGET_S:g} s on a 512² slice. Median per stroke "
        f"(the page's preview learner, kept features) {stroke:.2f} s wall ({stroke_cpu:.2f} s of CPU time over "
        f"the two threads): {verdict} at the load average above (the machine is shared). The preview's phases agree with the full "
        f"forest's on {agree:.1%} of the pixels of the shown slice (the full analysis uses the full forest).",
    ]
    C.publish("paint_preview_latency", lines, args, section=args.section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
