"""Issue #12 accuracy guard: particles separated on a coarser grid (core.coarse) against full resolution.

Two volumes, each with particles ~100 voxels across at 0.1 µm:

* ``--input SEED.npy --crop Z Y X [--offset ...]``: a crop of the seed-size volume of
  ``bench/paper_scale.py`` (generated at 0.4 µm and upsampled 4×: a 4× reduction aligned with the
  generator's grid loses nothing the generator put in, so this is the best case); phases by
  :func:`core.pipeline.run`.
* ``--native N``: an N³ electrode generated natively at 0.1 µm (:func:`core.synth.make_electrode`, median
  particle radius 5 µm, 2.4 to 10 µm, the seed volume's parameters), the generator's own phases; so the rule
  is not tuned on the upsampled volume.

For each volume the script times the full-resolution separation (:func:`core.particles._separate_particles`,
the pipeline's call) and, for each factor ``f``, :func:`core.coarse.separate_coarse` (``how="core"``: the
majority-reduced NMC separated at ``f × spacing``, labels grown by :data:`core.coarse.GROW` coarse voxels and
brought back onto the full-resolution NMC), and optionally the earlier experiment ``how="flood"`` (the
coarse labels' interiors seed a flood of the full-resolution distance transform).  Each is scored against the
full-resolution labels: F1 at IoU 0.5 (:func:`core.evaluate.instance_scores`), counts, unlabelled NMC voxels,
and the median detachment of :func:`core.metrics.particle_table` (all, and the median absolute difference
over matched pairs).  ``--native`` also scores every labelling against the generator's labels.  Also printed:
:func:`core.chunked.estimate_max_diameter` of the phases and the factor :func:`core.coarse.auto_factor` picks.

With ``--truth`` (seed crop only): the generator's labels are remade at 0.4 µm, repeated 4× onto the crop
(offset a multiple of 4) and every separation is also scored against them.

Prints one Markdown table per run; with ``--publish`` it also writes it as the section
``coarse_separation_seed`` or ``coarse_separation_native`` of bench/RESULTS.md.  Timings are wall seconds
on a shared machine: the load average is printed beside them.

    python bench/coarse_separation.py --input /tmp/h12/ps/seed_1324x1985x492.npy --crop 400 768 492 --offset 400 600 0
    python bench/coarse_separation.py --native 384 --publish
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

from bench._common import env_lines, publish  # noqa: E402
from core import pipeline  # noqa: E402
from core._watershed import _flood  # noqa: E402
from core.coarse import auto_factor, block_nmc, separate_coarse  # noqa: E402
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


def coarse_separation(phases: np.ndarray, sp, f: int, how: str = "core") -> tuple[np.ndarray, float, int]:
    """Labels on the NMC of ``phases`` from a separation on the grid reduced by ``f``.

    ``how="core"``: :func:`core.coarse.separate_coarse`; ``how="flood"``: the coarse labels' interiors (voxels whose
    3×3×3 coarse neighbourhood holds one label) repeated onto the full-resolution NMC seed a flood of its quantised
    distance transform (no merging), NMC components without a seed one particle each.

    Returns the labels, the seconds, and the NMC voxels left unlabelled.
    """
    t0 = time.perf_counter()
    if how == "core":
        res = separate_coarse(phases, sp, None, f)
        return res.labels, time.perf_counter() - t0, res.unlabelled
    nmc = phases == NMC
    coarse_ph = block_nmc(nmc, f)
    cl = _separate_particles(coarse_ph, tuple(s * f for s in sp), None)[0].astype(np.int32)
    inner = (ndi.maximum_filter(cl, size=3) == cl) & (ndi.minimum_filter(cl, size=3) == cl)
    cl[~inner] = 0
    up = np.repeat(np.repeat(np.repeat(cl, f, 0), f, 1), f, 2)[: nmc.shape[0], : nmc.shape[1], : nmc.shape[2]]
    labels = np.where(nmc, up, 0).astype(np.int32)
    del up
    q, _ = quantised_distance(nmc, sp)
    _flood(q, labels, int(labels.max()), _NO_MERGING)
    del q
    return _finish(labels, nmc), time.perf_counter() - t0, 0


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


def native_volume(n: int, seed: int = 12):
    """An n³ electrode generated at 0.1 µm with the seed volume's particle sizes: (phases, labels, spacing)."""
    from dataclasses import replace

    from core.synth import ElectrodeParams, make_electrode

    e = make_electrode(replace(ElectrodeParams(), shape=(n, n, n), spacing=(0.1,) * 3, radius_median_um=5.0,
                               radius_min_um=2.4, radius_max_um=10.0), rng=seed)
    return np.asarray(e.phases), np.asarray(e.labels), e.spacing


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", help="uint16 .npy (z, y, x): the seed-size volume")
    ap.add_argument("--native", type=int, metavar="N", help="instead: an N³ volume generated natively at 0.1 µm")
    ap.add_argument("--spacing", type=float, default=0.1, help="µm (--input)")
    ap.add_argument("--crop", type=int, nargs=3, default=(256, 384, 492), metavar=("Z", "Y", "X"))
    ap.add_argument("--offset", type=int, nargs=3, default=(0, 0, 0), metavar=("Z", "Y", "X"))
    ap.add_argument("--factors", type=int, nargs="+", default=(2, 3, 4))
    ap.add_argument("--truth", action="store_true", help="also score against the seed volume's generator labels")
    ap.add_argument("--how", nargs="+", default=("core",), choices=("core", "flood"))
    ap.add_argument("--publish", action="store_true", help="also write the table to bench/RESULTS.md")
    ap.add_argument("--section", default=None, help="the RESULTS.md section (default coarse_separation_seed or "
                                                     "coarse_separation_native)")
    ap.add_argument("--results", default=None, help="markdown file to write with --publish (default RESULTS.md)")
    args = ap.parse_args(argv)
    if (args.input is None) == (args.native is None):
        raise SystemExit("give --input SEED.npy or --native N")
    truth = None
    t0 = time.perf_counter()
    if args.native is not None:
        phases, truth, sp = native_volume(args.native)
        what = f"{args.native}³ generated natively at 0.1 µm (median particle radius 5 µm), the generator's phases"
        print(f"{what}: made in {time.perf_counter() - t0:.0f} s; load {load()}", flush=True)
        section = args.section or "coarse_separation_native"
    else:
        src = np.load(args.input, mmap_mode="r")
        sl = tuple(slice(o, o + c) for o, c in zip(args.offset, args.crop))
        vol = np.array(src[sl])
        del src
        sp = (args.spacing,) * 3
        if args.truth:
            if any(o % 4 for o in args.offset):
                raise SystemExit("--truth needs an offset of multiples of 4")
            t = seed_truth()[tuple(slice(o // 4, -(-(o + c) // 4)) for o, c in zip(args.offset, args.crop))]
            truth = np.repeat(np.repeat(np.repeat(t, 4, 0), 4, 1), 4, 2)[tuple(slice(0, n) for n in vol.shape)]
            del t
        res = pipeline.run(vol, spacing=sp)
        what = (f"crop {'×'.join(map(str, vol.shape))} at offset {tuple(args.offset)} of {Path(args.input).name} "
                f"({args.spacing} µm), phases by pipeline.run")
        print(f"{what}: {time.perf_counter() - t0:.1f} s; load {load()}", flush=True)
        phases = np.asarray(res.phases)
        del vol, res
        section = args.section or "coarse_separation_seed"
    import dask.array as da

    from core.chunked import estimate_max_diameter

    dmax = estimate_max_diameter(da.from_array(phases, chunks=256), sp)
    auto = auto_factor(dmax, sp)
    print(f"estimate_max_diameter {dmax:.2f} µm ({dmax / min(sp):.0f} voxels): auto factor {auto}", flush=True)

    def vs_truth(lab) -> float:
        if truth is None:
            return float("nan")
        return float(instance_scores(truth, lab, thresholds=(0.5,))["f1"].iloc[0])

    t0 = time.perf_counter()
    ref, _ = _separate_particles(phases, sp, None)
    t_ref = time.perf_counter() - t0
    l_ref = load()
    ref_table = particle_table(ref, phases, sp, separator_side="start")
    med_ref = float(ref_table["detachment"].median())
    rows = [("full resolution", t_ref, l_ref, int(ref.max()), 0, 1.0, med_ref, 0.0, 0.0, vs_truth(ref))]
    print(f"full: {t_ref:.1f} s, {int(ref.max())} particles; load {l_ref}", flush=True)
    for how in args.how:
        for f in args.factors:
            coarse_separation(phases[:64, :64, :64], sp, f, how)  # compile outside the timing
            lab, t, unl = coarse_separation(phases, sp, f, how)
            lo = load()
            f1 = float(instance_scores(ref, lab, thresholds=(0.5,))["f1"].iloc[0])
            table = particle_table(lab, phases, sp, separator_side="start")
            pairs = match_instances(ref, lab)
            pairs = pairs[pairs["iou"] > 0.5]
            d_ref = ref_table.set_index("label")["detachment"].reindex(pairs["true"]).to_numpy()
            d = table.set_index("label")["detachment"].reindex(pairs["pred"]).to_numpy()
            med = float(table["detachment"].median())
            rows.append((f"{f}× {how}", t, lo, int(lab.max()), unl, f1, med, med - med_ref,
                         float(np.nanmedian(np.abs(d - d_ref))), vs_truth(lab)))
            print(f"{f}x {how}: {t:.1f} s, {int(lab.max())} particles, F1 {f1:.4f}, unlabelled {unl}; load {lo}",
                  flush=True)
    lines = [f"## {section}: coarse-grid separation against full resolution (issue 12)", "", *env_lines(),
             f"- volume: {what}",
             f"- estimate_max_diameter {dmax:.2f} µm = {dmax / min(sp):.0f} voxels; core.coarse.auto_factor picks "
             f"**{auto}**", "",
             "| grid | separation s | load (1/5/15) | particles | unlabelled NMC voxels | F1@0.5 vs full res "
             "| median detachment | diff vs full | median abs diff (matched) | F1@0.5 vs generator |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r[0]} | {r[1]:.1f} | {r[2]} | {r[3]} | {r[4]} | {r[5]:.4f} | {r[6]:.4f} | {r[7]:+.4f} "
                     f"| {r[8]:.4f} | {'—' if np.isnan(r[9]) else f'{r[9]:.4f}'} |")
    lines += ["", "separation s: the full-resolution separation, or core.coarse.separate_coarse (reduce, separate, "
              "grow, bring back); wall seconds on a shared 2-core machine, load beside."]
    if args.publish:
        publish(section, lines, args)
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
