"""The brush-stroke classifier's (and the U-Net's) phases with and without the small-island clean-up, on the real
nano-CT slices.

The threshold method merges islands of fewer than ``SegmentParams.min_island`` (8) voxels into the phase around
them; up to session 33 the classifier's phases went to the separation as predicted, so each isolated NMC speck the
classifier left inside the CBD became a "particle" with no open surface (detachment 0).  Here, with the protocol of
``bench/accuracy_real.py``'s classifier rows ('inside' strokes on ONE slice of an acquisition, seeded by its number;
the other slices of the acquisition classified), each classified slice is analysed as a single 2D image
(``core.pipeline.run(..., presegmented=True)``, default separation) as predicted ('raw') and after
``core.phases.remove_small_islands(·, 8)`` ('islands merged', what ``analyze --method classifier`` does since
session 33); the same for the shipped 3D U-Net's phases of each scored slice ('U-Net raw' / 'U-Net islands merged',
``analyze --method model`` merges them too since session 33; it was trained on A and D, so only B is unseen); the
manual labels are analysed alike for reference (they hold specks too: 'labels, islands merged').
Measured per scored slice: the mean per-phase IoU against the labels, the particle sections found, how many of them
have an area under 20 pixels (specks), and the median detachment of the sections not at the image border.

No voxel size is stated for these slices; they are read at 0.05 µm (nano-CT voxels are 16-130 nm): the counts,
areas in pixels and detachments do not depend on it except through the separation's ``min_volume_um3`` (1 µm³).

Usage:  python bench/classifier_islands.py [--no-write]
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)
import accuracy_real as AR
from core.classify import ClassifierParams, train
from core.evaluate import phase_iou
from core.nn.infer import segment_volume
from core.nn.params import ModelParams
from core.phases import SegmentParams, remove_small_islands
from core.pipeline import AnalysisParams, run

PHASES = ("pore", "cbd", "nmc")
SPACING = 0.05  # µm, nominal
SPECK_PX = 20


def _analyse(phases: np.ndarray) -> dict:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="A single slice", category=UserWarning)
        t = run(phases, AnalysisParams(axis=1), spacing=SPACING, presegmented=True).table
    area_px = (t["equiv_diameter_um"] / SPACING) ** 2 * np.pi / 4
    inner = t[~t["touches_edge"].astype(bool)]
    return {"n": len(t), "specks": int((area_px < SPECK_PX).sum()),
            "median det": float(np.nanmedian(inner["detachment"])) if len(inner) else float("nan")}


def rows_for(data: Path) -> list[dict]:
    nums = AR.slices(data)
    loaded = {}
    for n in nums:
        grey, truth = AR.load_slice(data, n)
        loaded[n] = (AR.acquisition_of(n, grey.shape[1:]) or "?", grey, truth)
    k = SegmentParams().min_island
    rows = []
    for acq in sorted({a for a, _, _ in loaded.values()}):
        group = [n for n in nums if loaded[n][0] == acq]
        n_train, others = group[0], group[1:]
        _, grey, truth = loaded[n_train]
        clf = train(grey, AR.simulate_strokes(truth[0], n_train)[None], 1.0, ClassifierParams())
        for m in others:
            _, g, t = loaded[m]
            raw = clf.predict(g, 1.0)[0]
            merged = remove_small_islands(raw, k)
            row = {"acq": acq, "trained on": f"raw_{n_train}", "slice": f"raw_{m}"}
            for name, ph in (("raw", raw), ("islands merged", merged)):
                iou = phase_iou(t, ph)
                row[f"{name} IoU"] = float(np.mean([iou[p] for p in PHASES]))
                for key, v in _analyse(ph).items():
                    row[f"{name} {key}"] = v
            unet = segment_volume(g, ModelParams()).phases  # the shipped network (trained on A and D)
            for name, ph in (("U-Net raw", unet), ("U-Net islands merged", remove_small_islands(unet, k))):
                iou = phase_iou(t, ph)
                row[f"{name} IoU"] = float(np.mean([iou[p] for p in PHASES]))
                for key, v in _analyse(ph).items():
                    row[f"{name} {key}"] = v
            for key, v in _analyse(remove_small_islands(t, k)).items():
                row[f"labels, islands merged {key}"] = v
            rows.append(row)
            C.print_row(row)
    return rows


def main(argv=None) -> int:
    args = AR.parse_data_args(__doc__, argv)
    data = args.data
    if not data.is_dir():
        print(f"skipped: {data} is absent (the real data of ../shared/data/real)")
        return 0
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    rows = rows_for(data)
    total = time.perf_counter() - t0
    means = C.group_means(rows, ("acq",), count="slices")
    C.publish("classifier_islands", C.section_lines(
        "The brush-stroke classifier's and the U-Net's phases: small islands merged or not (`bench/classifier_islands.py`)",
        total, load_start,
        f"Real nano-CT slices ({data.name}), read at {SPACING} µm. Per acquisition a classifier (default "
        "`ClassifierParams`) trained on 'inside' strokes of its first slice (`accuracy_real.simulate_strokes`, seeded "
        "by the slice number), the other slices classified: 'raw' = as predicted, 'islands merged' = after "
        f"`remove_small_islands(·, {SegmentParams().min_island})` (what an analysis with the classifier does since "
        "session 33); 'U-Net raw' / 'U-Net islands merged' = the same for the shipped 3D U-Net's phases (trained on A "
        "and D: only B is unseen); 'labels, islands merged' = the manual labels alike. 'IoU' = mean per-phase IoU against the "
        "labels; 'n' = particle sections of the default separation of the slice as a 2D image (`presegmented`); "
        f"'specks' = those of fewer than {SPECK_PX} pixels; 'median det' = median detachment of the sections not at "
        "the image border.",
        {"Mean per acquisition": means, "Per slice": rows}), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
