"""What a fill outside the field of view does to an analysis (``core.phases.fill``), and what the crop mends.

A demo electrode's greyscale with the corners of its section outside the inscribed circle set to 0 (the fill a
reconstruction with a circular field of view writes there) is analysed as it is and cropped to the box
:func:`core.phases.data_box` proposes, against the same volume without the fill.  Two section sizes: one whose
central block (128 voxels a side, where the suggested thresholds and the fitted blur are read) reaches the fill,
one whose block lies inside the circle.

Usage:  python bench/fill_effect.py [--seeds 4 5] [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)
from core.phases import data_box, fill_reading
from core.pipeline import run
from core.synth import demo_electrode


def _inner_median(table, centre: float, radius: float, spacing: float) -> float:
    """Median detachment of the particles whose centroid lies within ``radius`` voxels of the section's centre."""
    cy, cx = table["centroid_y_um"] / spacing, table["centroid_x_um"] / spacing
    return float(table.loc[(cy - centre) ** 2 + (cx - centre) ** 2 < radius ** 2, "detachment"].median())


def one(side: int, depth: int, seed: int) -> list[dict]:
    e = demo_electrode("cycled-1C", rng=seed, shape=(depth, side, side))
    sp = float(e.spacing[0])
    yy, xx = np.mgrid[:side, :side]
    outside = (yy - (side - 1) / 2) ** 2 + (xx - (side - 1) / 2) ** 2 > (side / 2) ** 2
    fov = e.greyscale.copy()
    fov[:, outside] = 0
    reading = fill_reading(fov)
    box = data_box(fov, reading["value"])
    inside = ~np.broadcast_to(outside, fov.shape)
    import sys

    S = sys.modules["core.phases.segment"]  # (core.phases.segment is also the name of its function)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean, filled = run(e.greyscale, spacing=e.spacing), run(fov, spacing=e.spacing)
        keep, S.fill_value = S.fill_value, (lambda *a, **k: None)  # the thresholds as before session 35
        try:
            before = run(fov, spacing=e.spacing)
        finally:
            S.fill_value = keep
        P = sys.modules["core.pipeline"]
        keep, P.fill_region = P.fill_region, (lambda v, value: np.zeros(v.shape, bool))  # as before session 39
        try:
            as_pore = run(fov, spacing=e.spacing)
        finally:
            P.fill_region = keep
        cut = tuple(slice(a, b) for a, b in box)
        cropped, clean_box = run(fov[cut], spacing=e.spacing), run(e.greyscale[cut], spacing=e.spacing)
    rows = []
    agree = lambda r: float((clean.phases[inside] == r.phases[inside]).mean())  # noqa: E731
    for name, r, same in (("no fill", clean, 1.0), ("with the fill, in the threshold sample (before)", before,
                                                    agree(before)),
                          ("with the fill, its faces as pore (before)", as_pore, agree(as_pore)),
                          ("with the fill", filled, agree(filled)),
                          ("cropped to the box", cropped, float((clean_box.phases == cropped.phases).mean()))):
        seg = r.params.segment
        rows.append({"section": f"{depth}×{side}²", "seed": seed, "volume": name, "low threshold": seg.low,
                     "high threshold": seg.high, "fitted blur (voxels)": seg.pv_sigma,
                     "phases as without the fill": same, "particles": len(r.table),
                     "median detachment": float(r.table["detachment"].median()),
                     "median, edge particles left out": float(r.table.loc[~r.table["touches_edge"],
                                                                          "detachment"].median()),
                     "median, centroid within 0.7 r": _inner_median(r.table, (side - 1) / 2, 0.35 * side, sp)
                     if name != "cropped to the box" else float("nan")})
    return rows


def blurred(seed: int, side: int = 128, depth: int = 48) -> list[dict]:
    """A sphere packing at a blur of 1.2 voxel (the phases refined, the seeds on the deconvolved mask) with the
    fill, against the same packing without it, and with the fill as before session 39 (the blur read on the
    central block across the fill's sharp edge, the phases refined up to it)."""
    import sys

    from core.synth import PackingParams, make_sphere_packing

    e = make_sphere_packing(PackingParams(shape=(depth, side, side), spacing=(1.0, 1.0, 1.0), radius_median_um=7.0,
                                          blur_voxels=1.2, noise_contrast=0.05), rng=seed)
    yy, xx = np.mgrid[:side, :side]
    r = np.sqrt((yy - (side - 1) / 2) ** 2 + (xx - (side - 1) / 2) ** 2)
    fov = e.greyscale.copy()
    fov[:, r > side / 2] = 0
    P, T = sys.modules["core.pipeline"], sys.modules["core.phases.threshold"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean, filled = run(e.greyscale, spacing=1.0), run(fov, spacing=1.0)
        keep = P._data_box, T._without_fill, P._near_fill
        P._data_box, T._without_fill = (lambda v, f: None), (lambda blk, value: blk)
        P._near_fill = lambda nd, shape, blur: np.zeros(0, np.intp)
        try:
            before = run(fov, spacing=1.0)
            P._data_box, T._without_fill = keep[:2]  # read beside the fill, refined up to it
            up_to = run(fov, spacing=1.0)
        finally:
            P._data_box, T._without_fill, P._near_fill = keep
    ring = (r >= side / 2 - 6) & (r <= side / 2)
    inner = r < side / 2 - 6
    rows = []
    for name, res in (("no fill", clean), ("with the fill, read across it and refined up to it (before)", before),
                      ("with the fill, read beside it, refined up to it", up_to), ("with the fill", filled)):
        auto = res.provenance.get("refine_auto") or {}
        rows.append({"seed": seed, "volume": name, "blur read (voxels)": auto.get("blur_voxels"),
                     "refined": auto.get("refine"), "fitted blur (voxels)": res.params.segment.pv_sigma,
                     "phases right, within 6 voxels of the circle": float((res.phases[:, ring] == e.phases[:, ring]).mean()),
                     "phases right, further in": float((res.phases[:, inner] == e.phases[:, inner]).mean()),
                     "particles": len(res.table), "median detachment": float(res.table["detachment"].median()),
                     "median, edge particles left out": float(res.table.loc[~res.table["touches_edge"],
                                                                            "detachment"].median())})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_common_args(ap)
    ap.add_argument("--seeds", type=int, nargs="+", default=[4, 5])
    args = ap.parse_args(argv)
    sections = [(128, 48)] if args.quick else [(128, 96), (256, 96)]
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    rows = []
    for side, depth in sections:
        for seed in args.seeds[:1] if args.quick else args.seeds:
            rows += one(side, depth, seed)
            for r in rows[-5:]:
                C.print_row(r)
    packing = []
    for seed in ([3] if args.quick else [3, 4]):
        packing += blurred(seed)
        for r in packing[-4:]:
            C.print_row(r)
    total = time.perf_counter() - t0
    C.publish("fill_effect", C.section_lines(
        "A fill outside the field of view: what it does to an analysis (`bench/fill_effect.py`)", total, load_start,
        "The cycled-1C demo electrode (0.4 µm voxels, imaged as shipped, seeds as in the table) with the corners of "
        "its section outside the inscribed circle set to 0, analysed with the default parameters: as it is ('with "
        "the fill'; 'in the threshold sample (before)': its value not left out of the sample the thresholds are "
        "suggested from, as before session 35; 'its faces as pore (before)': a particle's faces to the fill counted as "
        "faces to pore, as before session 39, where they count as the volume's edge, `core.phases.fill_region`), "
        "and cropped to the box `core.phases.data_box` proposes, against the same volume without the "
        "fill ('no fill'). 'phases as without the fill': share of the voxels inside the circle (for the cropped "
        "volume: inside the box, against the clean volume cropped alike) in the same phase. 'median, centroid "
        "within 0.7 r': the particles away from the fill; 'edge particles left out': the Compare page's choice, "
        "which leaves out the particles the fill cuts once its faces count as the volume's edge."
        " " + "In the packing's table, 'blur read': the blur the phase refinement and the seeding read "
        "(`core.seeding.estimate_blur`, 'refined' what the refinement chose); 'phases right': share of the "
        "voxels in the phase of the packing's truth, in the ring within 6 voxels inside the circle and further "
        "in. Before session 39 the fill's sharp edge, in the central block, was read as the blur (0.0-0.1 voxel: "
        "the phases were not refined and the seeds not deconvolved), and refined phases beside the fill "
        "followed the fill's phase (pore) into the blur of the material beyond the field of view ('read beside "
        "it, refined up to it': the first mended, not the second): the blur and the pure grey values "
        "are read beside the fill (`core.pipeline._data_box`, `core.phases.threshold._without_fill`) and not "
        "refined within 3 blurs of it (`core.pipeline._near_fill`).",
        {"Per section and seed": rows,
         "A blurred sphere packing (blur 1.2 voxel, noise 0.05, median radius 7 voxels, 48×128², 1 µm voxels)": packing}), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
