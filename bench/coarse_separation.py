"""Issue #12 experiment: separate the particles on a coarser grid, then bring them back to full resolution.

On a crop of the seed-size volume (particles ~100 voxels across at 0.1 µm) this script

1. runs :func:`core.pipeline.run` (whole-volume path) once for the phases and its ``particles_s``;
2. times the full-resolution separation (:func:`core.particles._separate_particles`, the pipeline's call);
3. for each factor ``f``: block-reduces the NMC mask by ``f`` (majority), separates it there with the
   spacing scaled by ``f``, keeps each coarse label's interior (voxels whose 3×3×3 coarse neighbourhood
   holds only that label), repeats it ``f`` times along each axis onto the full-resolution NMC, and floods
   the rest of the full-resolution NMC from those seeds over its quantised distance transform
   (:func:`core._watershed._flood`, no merging, as :func:`core.seeding.regularised_particles` does);
   NMC components that hold no seed become one particle each;
4. scores each against the full-resolution labels: F1 at IoU 0.5 (:func:`core.evaluate.instance_scores`),
   counts, and the median detachment of :func:`core.metrics.particle_table` (all and matched pairs).

With ``--truth`` (the seed volume of ``bench/paper_scale.py``, which is made at 0.4 µm and upsampled 4×):
the generator's labels are remade at 0.4 µm with the same parameters and seed (:func:`seed_truth`, ~15 s),
repeated 4× onto the crop, and every separation is also scored against them (F1 at IoU 0.5).  The crop's
offset must then be a multiple of 4.  Caution: on this volume a 4× reduction aligned with the generator's
grid loses nothing the generator put in; real 0.1 µm scans have finer detail.

Prints one Markdown table (not written to bench/RESULTS.md).  Timings are wall seconds on a shared machine:
the load average is printed beside them.

    python bench/coarse_separation.py --input /tmp/h12/ps/seed_1324x1985x492.npy --crop 256 384 492
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import pipeline  # noqa: E402
from core._watershed import _flood  # noqa: E402
from core.codes import NMC  # noqa: E402
from core.evaluate import instance_scores, match_instances  # noqa: E402
from core.metrics import particle_table  # noqa: E402
from core.particles import _separate_particles, quantised_distance  # noqa: E402
from core.seeding import _NO_MERGING  # noqa: E402


def seed_truth(shape=(1324, 1985, 492)) -> np.ndarray:
    """The particle labels of ``bench/paper_scale.py``'s seed volume at its generation grid (0.4 µm)."""
    from dataclasses import replace

    from bench.paper_scale import SEED, SEED_SPACING, SEED_UPSAMPLE
    from core.synth import ElectrodeParams, make_electrode

    f = SEED_UPSAMPLE
    coarse_shape = tuple(-(-n // f) for n in shape)
    e = make_electrode(replace(ElectrodeParams(), shape=coarse_shape, spacing=(SEED_SPACING * f,) * 3,
                               radius_median_um=5.0, radius_min_um=2.4, radius_max_um=10.0), rng=SEED)
    return np.asarray(e.labels)


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def coarse_separation(phases: np.ndarray, sp, f: int, how: str = "flood") -> tuple[np.ndarray, float, float]:
    """Labels on exactly the NMC of ``phases`` from a separation on the grid reduced by ``f``.

    ``how="flood"``: the coarse labels' interiors seed a flood of the full-resolution distance transform;
    ``how="nearest"``: every full-resolution NMC voxel takes the label of its coarse block, the coarse labels
    first grown by up to 2 coarse voxels (:func:`skimage.segmentation.expand_labels`) so that NMC voxels in
    blocks that the majority vote left empty are covered (boundaries then follow the coarse grid).

    Returns the labels, the seconds of the coarse separation and of the full-resolution step.
    """
    nmc = phases == NMC
    if not nmc.any():
        raise ValueError("phases hold no NMC")
    t0 = time.perf_counter()
    pad = [(0, (-n) % f) for n in nmc.shape]
    m = np.pad(nmc, pad) if any(p[1] for p in pad) else nmc
    zc, yc, xc = (n // f for n in m.shape)
    frac = m.reshape(zc, f, yc, f, xc, f).mean(axis=(1, 3, 5), dtype=np.float32)
    coarse_ph = np.where(frac >= 0.5, np.uint8(NMC), np.uint8(0))
    del frac, m
    csp = tuple(s * f for s in sp)
    cl, _ = _separate_particles(coarse_ph, csp, None)
    cl = cl.astype(np.int32)
    if how == "nearest":
        from skimage.segmentation import expand_labels

        cl = expand_labels(cl, 2)
        t1 = time.perf_counter()
        labels = np.repeat(np.repeat(np.repeat(cl, f, 0), f, 1), f, 2)[: nmc.shape[0], : nmc.shape[1],
                                                                         : nmc.shape[2]]
        labels[~nmc] = 0
        return _finish(labels, nmc), t1 - t0, time.perf_counter() - t1
    # interior: the 3x3x3 neighbourhood holds one label only
    inner = (ndi.maximum_filter(cl, size=3) == cl) & (ndi.minimum_filter(cl, size=3) == cl)
    cl[~inner] = 0
    t1 = time.perf_counter()
    up = np.repeat(np.repeat(np.repeat(cl, f, 0), f, 1), f, 2)[: nmc.shape[0], : nmc.shape[1], : nmc.shape[2]]
    labels = np.where(nmc, up, 0).astype(np.int32)
    del up
    q, _ = quantised_distance(nmc, sp)
    _flood(q, labels, int(labels.max()), _NO_MERGING)
    del q
    return _finish(labels, nmc), t1 - t0, time.perf_counter() - t1


def _finish(labels: np.ndarray, nmc: np.ndarray) -> np.ndarray:
    """NMC components without a label become one particle each; labels renumbered 1..n."""
    rest = nmc & (labels == 0)
    if rest.any():
        comp, _ = ndi.label(rest)
        labels[rest] = comp[rest] + int(labels.max())
    present = np.flatnonzero(np.bincount(labels.ravel()))
    present = present[present > 0]
    lut = np.zeros(int(labels.max()) + 1, np.int32)
    lut[present] = np.arange(1, present.size + 1, dtype=np.int32)
    return lut[labels]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", required=True, help="uint16 .npy (z, y, x)")
    ap.add_argument("--spacing", type=float, default=0.1, help="µm")
    ap.add_argument("--crop", type=int, nargs=3, default=(256, 384, 492), metavar=("Z", "Y", "X"))
    ap.add_argument("--offset", type=int, nargs=3, default=(0, 0, 0), metavar=("Z", "Y", "X"))
    ap.add_argument("--factors", type=int, nargs="+", default=(2, 4))
    ap.add_argument("--truth", action="store_true", help="also score against the seed volume's generator labels")
    ap.add_argument("--how", nargs="+", default=("flood", "nearest"), choices=("flood", "nearest"))
    args = ap.parse_args(argv)
    src = np.load(args.input, mmap_mode="r")
    sl = tuple(slice(o, o + c) for o, c in zip(args.offset, args.crop))
    vol = np.array(src[sl])
    del src
    sp = (args.spacing,) * 3
    truth = None
    if args.truth:
        if any(o % 4 for o in args.offset):
            raise SystemExit("--truth needs an offset of multiples of 4")
        t = seed_truth()[tuple(slice(o // 4, -(-(o + c) // 4)) for o, c in zip(args.offset, args.crop))]
        truth = np.repeat(np.repeat(np.repeat(t, 4, 0), 4, 1), 4, 2)[tuple(slice(0, n) for n in vol.shape)]
        del t

    def vs_truth(lab) -> str:
        if truth is None:
            return ""
        r = instance_scores(truth, lab, thresholds=(0.5,)).iloc[0]
        return f"; vs truth ({len(np.unique(truth)) - 1} particles): F1 {r['f1']:.4f} (fp {r['fp']}, fn {r['fn']})"

    print(f"crop {vol.shape} at offset {tuple(args.offset)}, {args.spacing} µm; load {load()}", flush=True)
    t0 = time.perf_counter()
    res = pipeline.run(vol, spacing=sp)
    print(f"pipeline.run {time.perf_counter() - t0:.1f} s, timings "
          f"{ {k: round(v, 1) for k, v in res.provenance['timings_s'].items()} }; load {load()}", flush=True)
    phases = np.asarray(res.phases)
    del vol, res
    t0 = time.perf_counter()
    ref, _ = _separate_particles(phases, sp, None)
    t_ref = time.perf_counter() - t0
    l_ref = load()
    ref_table = particle_table(ref, phases, sp, separator_side="start")
    rows = [("full", t_ref, float("nan"), float("nan"), l_ref, int(ref.max()), 1.0,
             float(ref_table["detachment"].median()), 0.0, 0.0)]
    print(f"full: {t_ref:.1f} s, {int(ref.max())} particles; load {l_ref}{vs_truth(ref)}", flush=True)
    for f, how in [(f, h) for h in args.how for f in args.factors]:
        coarse_separation(phases[:64, :64, :64], sp, f, how)  # compile the numba flood outside the timing
        t0 = time.perf_counter()
        lab, tc, tf = coarse_separation(phases, sp, f, how)
        t = time.perf_counter() - t0
        lo = load()
        f1 = float(instance_scores(ref, lab, thresholds=(0.5,))["f1"].iloc[0])
        table = particle_table(lab, phases, sp, separator_side="start")
        pairs = match_instances(ref, lab)
        pairs = pairs[pairs["iou"] > 0.5]
        d_ref = ref_table.set_index("label")["detachment"].reindex(pairs["true"]).to_numpy()
        d = table.set_index("label")["detachment"].reindex(pairs["pred"]).to_numpy()
        med = float(table["detachment"].median())
        vox = float(np.prod(sp))
        size_ref, size_lab = np.bincount(ref.ravel()) * vox, np.bincount(lab.ravel()) * vox
        miss = np.setdiff1d(np.arange(1, size_ref.size), pairs["true"])
        extra = np.setdiff1d(np.arange(1, size_lab.size), pairs["pred"])
        print(f"  unmatched full-res particles (µm³): {np.round(np.sort(size_ref[miss]), 1).tolist()}; "
              f"unmatched {f}x {how} particles (µm³): {np.round(np.sort(size_lab[extra]), 1).tolist()}; "
              f"median full-res particle {np.median(size_ref[1:]):.1f} µm³", flush=True)
        rows.append((f"{f}x {how}", t, tc, tf, lo, int(lab.max()), f1, med, med - rows[0][7],
                     float(np.median(np.abs(d - d_ref)))))
        print(f"{f}x {how}: {t:.1f} s (coarse {tc:.1f}, full-res {tf:.1f}), {int(lab.max())} particles, F1 {f1:.4f}; "
              f"load {lo}{vs_truth(lab)}", flush=True)
    print()
    print("| grid | particles step s | coarse sep s | full-res step s | load (1/5/15) | particles | F1@0.5 "
          "| median detachment | diff vs full | median abs diff (matched) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.1f} | {r[2]:.1f} | {r[3]:.1f} | {r[4]} | {r[5]} | {r[6]:.4f} | {r[7]:.4f} "
              f"| {r[8]:+.4f} | {r[9]:.4f} |")


if __name__ == "__main__":
    main()
