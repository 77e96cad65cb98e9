"""Depth over the electrode or over the imaged volume (``AnalysisParams.depth_from``, ``electrode_extent``).

Each demo electrode is analysed as shipped and again with a margin of pore (grey values drawn like those of its
first, empty slice) added before its separator-side surface, as a scan that images the space above the electrode
holds.  With ``depth_from="electrode"`` (the default) depth runs from the surface found to the last slice of NMC;
with ``"volume"`` over the whole stack, so the margin shifts every particle's depth.  The median detachment per third
of the depth and the particles' depth change between the two stacks show which reading depends on the margin.  The
real calendered volume (an interior crop, already segmented) shows that an electrode without a margin keeps the
volume's ends.

Usage:  python bench/depth_extent.py [--margin 32] [--seeds 4] [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)
from core.pipeline import AnalysisParams, run
from core.synth import DEMO_ELECTRODES, make_electrode

REAL = (Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "nmc_calendered_3phase"
        / "nmc-1-cal_generatedCBD_bridge.tif")


def _thirds(table) -> str:
    d = table["depth_frac"]
    parts = [table.loc[(d >= k / 3) & ((d < (k + 1) / 3) if k < 2 else (d <= 1)), "detachment"].median()
             for k in range(3)]
    return " / ".join(f"{v:.3f}" for v in parts)


def _depth_shift(a, b, margin: int, sp: float) -> float:
    """Median |depth_frac| change of the particles found in both stacks (matched by their centroid, the padded
    stack's moved back by the margin, within half a voxel)."""
    za = a[["centroid_z_um", "centroid_y_um", "centroid_x_um"]].to_numpy()
    zb = b[["centroid_z_um", "centroid_y_um", "centroid_x_um"]].to_numpy() - np.array([margin * sp, 0, 0])
    from scipy.spatial import cKDTree

    dist, idx = cKDTree(zb).query(za)
    ok = dist < 0.5 * sp
    return float(np.median(np.abs(a["depth_frac"].to_numpy()[ok] - b["depth_frac"].to_numpy()[idx[ok]])))


def one(name: str, shape, seed: int, margin: int) -> list[dict]:
    e = make_electrode(replace(DEMO_ELECTRODES[name], shape=shape), rng=seed, name=name)
    sp = float(e.spacing[0])
    g = e.greyscale
    rng = np.random.default_rng(seed)
    first = g[0].astype(np.float64)  # the demo's first slice holds no solid: pore and its noise
    pad = np.clip(rng.normal(first.mean(), first.std(), (margin,) + g.shape[1:]), 0, 65535).astype(g.dtype)
    padded = np.concatenate([pad, g])
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for how in ("electrode", "volume"):
            p = AnalysisParams(separator_side="start", depth_from=how)
            a, b = run(g, p, spacing=e.spacing), run(padded, p, spacing=e.spacing)
            rows.append({"electrode": name, "seed": seed, "depth over": how,
                         "extent found (as shipped)": str(a.provenance.get("depth_extent", "-")),
                         "extent found (margin added)": str(b.provenance.get("depth_extent", "-")),
                         "particles": f"{len(a.table)} / {len(b.table)}",
                         "median by third of depth (as shipped)": _thirds(a.table),
                         "median by third of depth (margin added)": _thirds(b.table),
                         "median depth change of a particle": _depth_shift(a.table, b.table, margin, sp)})
    return rows


def real_rows(spacing: float = 0.4) -> list[dict]:
    if not REAL.exists():
        return [{"volume": "real calendered NMC", "note": f"SKIPPED: {REAL.name} is absent"}]
    from core.io import load_phases

    ph = load_phases(REAL, {0: "pore", 1: "nmc", 2: "cbd"}).data
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for axis in (0, 1, 2):
            r = run(ph, AnalysisParams(axis=axis, separator_side="start"), spacing=spacing, presegmented=True)
            rows.append({"volume": "real calendered NMC (251×301×301, already segmented)", "axis": axis,
                         "slices": ph.shape[axis], "extent found": str(r.provenance.get("depth_extent")),
                         "particles": len(r.table)})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_common_args(ap)
    ap.add_argument("--margin", type=int, default=32, help="slices of pore added before the electrode")
    ap.add_argument("--seeds", type=int, nargs="+", default=[4])
    args = ap.parse_args(argv)
    shape = (64, 96, 96) if args.quick else (128, 128, 128)
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    rows = []
    for seed in args.seeds:
        for name in DEMO_ELECTRODES:
            rows += one(name, shape, seed, args.margin)
            for r in rows[-2:]:
                C.print_row(r)
    real = [] if args.quick else real_rows()
    for r in real:
        C.print_row(r)
    total = time.perf_counter() - t0
    C.publish("depth_extent", C.section_lines(
        "Depth over the electrode or over the imaged volume (`bench/depth_extent.py`)", total, load_start,
        f"Each demo electrode at {'×'.join(map(str, shape))} voxels (0.4 µm, imaged as shipped, seeds as in the "
        f"table), analysed with the default parameters (separator side given: the start of z) as shipped and with "
        f"{args.margin} slices of pore added before it (grey values drawn with the mean and spread of its first, empty "
        "slice), with depth_frac over the electrode (`depth_from=\"electrode\"`, the default: "
        "`core.metrics.electrode_extent`, its first and last slice where a slice's NMC share reaches half its "
        "plateau) or over the imaged volume. 'extent found': those slices; 'median by third of depth': the median "
        "detachment of the particles in each third of depth_frac; 'median depth change of a particle': of the "
        "particles found in both stacks (matched by centroid). The real calendered volume (an interior crop) along "
        "each axis: the extent found.",
        {"Demo electrodes, as shipped and with a margin": rows, "Real calendered volume": real}), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
