"""Single slices (2D images) of blurred scans: the blur read in their plane, and what the blur-driven steps do there.

``core.seeding.estimate_blur`` reads the blur from the widths of the pore-NMC edges; on a single slice
(``core.slices``) it reads them in the slice's plane (before session 32 it gave NaN there, so a slice was never
refined against its blur and the dashboard could not say how blurred it was).  Here sphere packings of
``core.synth.make_sphere_packing`` (24 × 384 × 384 voxels of 1 µm, the robustness grid's generator: log-normal
radii, necks, 12 % CBD in the necks) are imaged with a known blur and noise, and z-slices are analysed each as a
2D image:

* **blur read**: the in-plane reading of each slice against the 3D reading of the volume and the true blur;
* **F1@0.5** of the particle sections found against the true sections of that slice, and the |error| of the
  slice's median detachment (sections not at the image border) against the same slice's true phases analysed
  alike (``presegmented``), for: ``phases / off`` (seeds on the phases, no refinement: what a slice got before),
  ``auto`` (the default: on a slice the deconvolved seeding with the full refinement where the blur read is at
  least ``core.seeding.AUTO_BLUR`` and ``core.seeding.AUTO_SLICE_BLUR_DEPTH`` of the NMC's mean depth, since
  session 33; else seeds on the phases, whose NMC surfaces are refined where the noise read is at least
  ``core.phases.forward.AUTO_NOISE``), ``deconvolved / on`` (what "auto" does on a blurred volume).

Usage:  python bench/slice_blur.py [--seeds 0 1] [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)
from core.evaluate import instance_scores
from core.pipeline import AnalysisParams, run
from core.seeding import estimate_blur
from core.synth import PackingParams, make_sphere_packing

VARIANTS = {"phases / off": dict(seeding="phases", refine="off"), "auto": {},
            "deconvolved / on": dict(seeding="deconvolved", refine="on")}


def _f1(true, found) -> float:
    sc = instance_scores(true, found)
    return float(sc.loc[np.isclose(sc["threshold"], 0.5), "f1"].iloc[0])


def _median_inner(table) -> float:
    inner = table[~table["touches_edge"].astype(bool)]
    return float(np.nanmedian(inner["detachment"]))


def one(blur: float, radius: float, noise: float, seed: int, shape, zs) -> list[dict]:
    k = radius / 7.0
    e = make_sphere_packing(PackingParams(shape=shape, radius_median_um=radius, radius_min_um=4 * k,
                                          radius_max_um=15 * k, blur_voxels=blur, noise_contrast=noise), rng=seed)
    blur3d = estimate_blur(e.greyscale, e.phases)
    rows = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="A single slice", category=UserWarning)
        for z in zs:
            grey, labels, phases = e.greyscale[z:z + 1], e.labels[z:z + 1], e.phases[z:z + 1]
            true = run(phases, AnalysisParams(axis=1), spacing=e.spacing, presegmented=True)
            row = {"blur": blur, "radius": radius, "noise": noise, "seed": seed, "z": int(z),
                   "blur read 3D": blur3d, "blur read slice": estimate_blur(grey, phases),
                   "true phases F1": _f1(labels, true.labels)}
            d_true = _median_inner(true.table)
            for name, kw in VARIANTS.items():
                t0 = time.perf_counter()
                out = run(grey, AnalysisParams(axis=1, **kw), spacing=e.spacing)
                row[f"{name} s"] = time.perf_counter() - t0
                row[f"{name} F1"] = _f1(labels, out.labels)
                row[f"{name} det"] = abs(_median_inner(out.table) - d_true)
                if name == "auto":
                    row["auto refine"] = out.provenance.get("refine_auto", {}).get("refine", "-")
            rows.append(row)
    return rows


def _means(rows: list[dict]) -> list[dict]:
    out = []
    for m, sub in C.grouped(rows, ("blur", "radius", "noise")):
        m["slices"] = len(sub)
        m.update(C.means(sub, ("blur read 3D",)))
        m["blur read slice (min–max)"] = (f"{min(r['blur read slice'] for r in sub):.2f}–"
                                          f"{max(r['blur read slice'] for r in sub):.2f}")
        m.update(C.means(sub, ("true phases F1", *(f"{n} F1" for n in VARIANTS), *(f"{n} det" for n in VARIANTS))))
        m["auto refine"] = "/".join(sorted({r["auto refine"] for r in sub}))
        out.append(m)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_common_args(ap)
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 (--quick: 0)")
    ap.add_argument("--blurs", type=float, nargs="+", default=[0.6, 0.9, 1.2])
    ap.add_argument("--radii", type=float, nargs="+", default=[5, 7, 14])
    args = ap.parse_args(argv)
    seeds = args.seeds or ([0] if args.quick else [0, 1])
    shape = (24, 128, 128) if args.quick else (24, 384, 384)
    zs = (12,) if args.quick else (8, 16)
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    rows = []
    for blur in args.blurs:
        for radius in args.radii:
            for noise in (0.05, 0.10):
                for seed in seeds:
                    rows.extend(one(blur, radius, noise, seed, shape, zs))
                    C.print_row(rows[-1])
    total = time.perf_counter() - t0
    C.publish("slice_blur", [
        "## Single slices of blurred scans: the blur read in their plane (`bench/slice_blur.py`)", "",
        *C.env_lines(), f"- script wall time: {total:.0f} s", C.load_line(load_start), "",
        f"Sphere packings ({shape[0]} × {shape[1]} × {shape[2]} voxels of 1 µm, seeds {seeds}, the robustness "
        f"grid's generator) imaged with the blur (voxels) and noise (share of the pore-NMC contrast) of each row; "
        f"z-slices {list(zs)} analysed each as a 2D image. 'blur read': `core.seeding.estimate_blur` of the volume "
        "(3D) and of each slice (in its plane), on the true phases. F1@0.5: the slice's particle sections against "
        "its true sections; 'det': |median detachment − that of the slice's true phases analysed alike| (sections "
        "not at the image border). 'true phases F1': the separation of the slice's true phases. Variants: "
        "'phases / off' (what a slice got before its blur could be read), 'auto' (the default; 'auto refine': what "
        "it chose), 'deconvolved / on' (what 'auto' does on a blurred volume). Mean over seeds and slices.", "",
        "### Mean per cell", "", C.md_table(_means(rows)), "",
        "### Per slice", "", C.md_table(rows),
    ], args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
