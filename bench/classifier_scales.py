"""The brush-stroke classifier's feature scales: in voxels (the default since session 32) or in µm.

``core.classify.ClassifierParams`` gives the smallest and largest Gaussian scale of the features.  Up to session 31
the defaults were 0.5 and 8 µm, converted to voxels with the scan's voxel size, so the same strokes on the same image
gave other features when the voxel size typed in changed; the default is now 0.5 to 8 voxels whatever the voxel size
(``DEFAULT_SIGMAS_VOXELS``), as ilastik's and Weka's scales are in pixels.  Here both on:

* **real nano-CT slices** of acquisition B (``../shared/data/real``; no voxel size is stated, the benchmarks read them
  at 1 µm): the protocol of ``bench/accuracy_real.py``'s classifier rows ('inside' strokes on ONE slice, scored on the
  others) with the scales in µm at voxel sizes of 1, 0.3 and 0.1 µm (nano-CT voxels are 16-130 nm), against the
  voxel scales (the same at every voxel size);
* **demo electrodes** (``core.synth.DEMO_ELECTRODES`` at their 0.4 µm voxels, 64 × 160 × 160, held-out seeds 100-101):
  every third pixel of z-slice 20 painted with its true phase (one pixel inside each phase), scored on z-slices
  40-43.

Usage:  python bench/classifier_scales.py [--quick] [--no-write]
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

import _common as C  # noqa: E402  (sets sys.path)
import accuracy_real as AR
from core.classify import ClassifierParams, train
from core.evaluate import phase_iou
from core.synth import DEMO_ELECTRODES, demo_electrode

UM = ClassifierParams(sigma_min_um=0.5, sigma_max_um=8.0)  # the defaults up to session 31
VOX = ClassifierParams()
PHASES = ("pore", "cbd", "nmc")


def _mean_iou(truth, found) -> tuple[float, list[float]]:
    iou = phase_iou(truth, found)
    per = [float(iou[p]) for p in PHASES]
    return float(np.mean(per)), per


def real_rows(data: Path, acq: str, spacings) -> list[dict]:
    nums = [n for n in AR.slices(data) if AR.acq_of_file(data, n) == acq]
    loaded = {}
    for n in nums:
        grey, truth = AR.load_slice(data, n)
        loaded[n] = (grey, truth)
    settings = [("voxels: 0.5-8 voxels (default)", VOX, spacings[0])] + [
        (f"µm: 0.5-8 µm at {sp:g} µm ({0.5 / sp:g}-{8 / sp:g} voxels)", UM, sp) for sp in spacings]
    rows = []
    for name, params, sp in settings:
        t0 = time.perf_counter()
        scores = []
        for n_train, (grey, truth) in loaded.items():
            scribbles = AR.paint_slice("inside", truth[0], n_train, grey, params)[None]
            clf = train(grey, scribbles, sp, params)
            for m, (g, t) in loaded.items():
                if m != n_train:
                    scores.append(_mean_iou(t, clf.predict(g, sp)[0])[1])
        s = np.mean(scores, axis=0)
        rows.append({"data": f"nano-CT {acq} ({len(scores)} pairs)", "scales": name, "mean IoU": float(s.mean()),
                     "IoU pore": s[0], "IoU CBD": s[1], "IoU NMC": s[2], "s": time.perf_counter() - t0})
        C.print_row(rows[-1])
    return rows


def demo_rows(seeds, shape) -> list[dict]:
    rows = []
    for name in DEMO_ELECTRODES:
        for seed in seeds:
            e = demo_electrode(name, rng=seed, shape=shape)
            z0, z1 = shape[0] // 3, shape[0] * 5 // 8
            truth = e.phases[z0]
            scr = np.full(truth.shape, 255, np.uint8)
            grid = np.zeros(truth.shape, bool)
            grid[::3, ::3] = True
            for code in range(3):
                scr[ndi.binary_erosion(truth == code) & grid] = code
            row = {"data": f"demo {name} seed {seed}", "voxel µm": e.spacing[0]}
            for label, params in (("voxels", VOX), ("µm", UM)):
                clf = train(e.greyscale[z0], scr, e.spacing, params)
                m, per = _mean_iou(e.phases[z1:z1 + 4], clf.predict(e.greyscale[z1:z1 + 4], e.spacing)[0])
                row[f"{label} mean IoU"] = m
                row[f"{label} pore/CBD/NMC"] = "/".join(f"{v:.3f}" for v in per)
            row["voxels − µm"] = row["voxels mean IoU"] - row["µm mean IoU"]
            rows.append(row)
            C.print_row(row)
    return rows


def main(argv=None) -> int:
    args = AR.parse_data_args(__doc__, argv)
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    seeds = [100] if args.quick else [100, 101]
    shape = (32, 96, 96) if args.quick else (64, 160, 160)
    demos = demo_rows(seeds, shape)
    if args.data.is_dir():
        real = real_rows(args.data, "B", [1.0] if args.quick else [1.0, 0.3, 0.1])
    else:
        print(f"skipped the real slices: {args.data} is not there")
        real = []
    total = time.perf_counter() - t0
    C.publish("classifier_scales", [
        "## Brush-stroke classifier: feature scales in voxels or in µm (`bench/classifier_scales.py`)", "",
        *C.env_lines(), f"- script wall time: {total:.0f} s", C.load_line(load_start), "",
        "Default `ClassifierParams` (extra trees, 100 trees, depth 12, one feature per split) with the feature "
        "scales 0.5-8 voxels (the default since session 32: `sigma_min_um` / `sigma_max_um` None) or 0.5-8 µm (the "
        "defaults before), converted with the voxel size. Real nano-CT: `bench/accuracy_real.py`'s classifier "
        "protocol ('inside' strokes on ONE slice of acquisition B, scored on its other slices; the voxel scales do "
        "not depend on the voxel size, so they are scored once). Demo electrodes: every third pixel of one z-slice "
        "painted with its true phase, one pixel inside each phase, scored on four z-slices further in. Mean "
        "per-phase IoU.", "",
        "### Real nano-CT slices", "", C.md_table(real) if real else "(data folder absent)", "",
        "### Demo electrodes (0.4 µm voxels)", "", C.md_table(demos),
    ], args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
