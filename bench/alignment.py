"""Slices shifted against one another (``core.phases.alignment``): what aligned volumes read, what a FIB-SEM stack
drifting by a known shift a slice reads, and how long the reading takes.

1. Aligned volumes (the target: below the warning's 0.25 pixel): the three demo electrodes at 64×128×128 (seeds 0,
   5, 9), the real calendered volume of ``shared/data/real`` (if present), and a demo electrode's phases as grey
   values blurred 0.8 voxel with fresh noise in every slice (``tests/sem_files.fib_stack``) of 0.03 / 0.22 / 0.44
   of the pore-NMC contrast; pure noise (no reading: no plane like the next).
2. The same stack with every slice shifted by a drift (dy, dx) more than the one before (a cubic spline shift):
   the reading against the drift's length, and whether it is said.
3. The time of one reading on a 512³ and a 64×2048×2048 uint8 volume (12 pairs, 512² windows; random values: the
   correlations cost the same whatever the planes hold).
4. The stacks aligned (``slice_shifts``: every pair of neighbouring planes, the steps summed, each plane's offset
   rounded to whole pixels): the largest distance, over the planes that hold structure (the separator's first
   planes left out), between a plane's offset and where its content truly lies (the true offset less the error's
   median: the frame is plane 0's where the structure starts); and the particles found (the default analysis at
   0.4 µm) in the stack as it drifts (all of it), aligned by the measured offsets, and aligned by the true ones
   rounded (the region they keep).  Then the time of an alignment of a 512³ and a 64×2048×2048 uint8 volume (a
   demo electrode's 64×128×128 greyscale tiled: structure in every plane, so every pair takes both passes).

Usage:  python bench/alignment.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)

CALENDERED = C.REPO_ROOT.parent / "shared" / "data" / "real" / "nmc_calendered_3phase" / \
    "nmc-1-cal_generatedCBD_bridge.tif"


def _row(label: str, reading: dict | None, truth: float | None = None) -> dict:
    row = {"volume": label, "pairs read": reading["pairs"] if reading else 0,
           "median step (px)": reading["step_px"] if reading else None,
           "median drift y / x (px)": "/".join(f"{v:+.2f}" for v in reading["shift_px"]) if reading else "–",
           "said": ("yes" if reading["warn"] else "no") if reading else "no reading"}
    if truth is not None:
        row["true step (px)"] = truth
    C.print_row(row)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    C.add_common_args(ap)
    args = ap.parse_args()
    import tifffile

    sys.path.insert(0, str(C.REPO_ROOT / "tests"))
    from sem_files import fib_stack  # the tests' FIB-SEM stack

    from core.phases.alignment import ALIGN_WARN_PX, alignment_reading, slice_shifts
    from core.pipeline import run
    from core.synth import DEMO_ELECTRODES, demo_electrode

    load_start = os.getloadavg()
    t_start = time.perf_counter()
    aligned, drifting, timing, mended, mend_timing = [], [], [], [], []
    for name in DEMO_ELECTRODES:
        for seed in ((0,) if args.quick else (0, 5, 9)):
            g = demo_electrode(name, rng=seed, shape=(64, 128, 128)).greyscale
            aligned.append(_row(f"demo {name}, seed {seed}", alignment_reading(g)))
    if CALENDERED.exists():
        aligned.append(_row("real calendered volume (phases 0/1/2)", alignment_reading(tifffile.imread(CALENDERED))))
    for noise in (5.0, 40.0, 80.0):
        aligned.append(_row(f"stack, noise {noise / 180:.2f} of the contrast", alignment_reading(fib_stack((0, 0), noise))))
    aligned.append(_row("pure noise", alignment_reading(np.random.default_rng(0).random((64, 128, 128)))))
    drifts = [(0.1, 0.1), (0.2, 0.1), (0.3, 0.3), (0.7, -1.3), (2.2, 0.4)]
    for drift in drifts[:3] if args.quick else drifts:
        for noise in ((20.0,) if args.quick else (20.0, 80.0)):
            drifting.append(_row(f"stack drifting {drift[0]:+.1f} / {drift[1]:+.1f} px a slice, noise "
                                 f"{noise / 180:.2f}", alignment_reading(fib_stack(drift, noise)),
                                 truth=float(np.hypot(*drift))))
    for shape in ((512, 512, 512), (64, 2048, 2048)):
        v = (np.random.default_rng(0).random(shape) * 255).astype(np.uint8)
        t0 = time.perf_counter()
        alignment_reading(v)
        timing.append({"shape (z×y×x)": "×".join(map(str, shape)), "s": time.perf_counter() - t0})
        C.print_row(timing[-1])
        del v
    from core.io._common import aligned_shape

    def aligned_by(v, o):  # the region all planes share, each plane shifted back by its offset
        a = o - o.min(axis=0)
        _, ly, lx = aligned_shape(o, v.shape)
        if ly < 1 or lx < 1:
            return None
        return np.stack([v[z, a[z, 0]:a[z, 0] + ly, a[z, 1]:a[z, 1] + lx] for z in range(v.shape[0])])

    def particles(v) -> int:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return len(run(np.clip(v, 0, 255).astype(np.uint8), spacing=0.4).table)

    for drift in ((0.0, 0.0), (0.3, 0.3), (0.7, -1.3)) if args.quick else ((0.0, 0.0), (0.1, 0.1), (0.3, 0.3),
                                                                           (0.7, -1.3), (2.2, 0.4)):
        for noise in ((20.0,) if args.quick else (20.0, 80.0)):
            v = fib_stack(drift, noise)
            t0 = time.perf_counter()
            off = np.array(slice_shifts(v))
            took = time.perf_counter() - t0
            truth = np.array([[drift[0] * k, drift[1] * k] for k in range(v.shape[0])])
            err = (off - truth)[4:]  # the separator's first planes hold noise only (no step to read)
            err = np.abs(err - np.median(err, axis=0)).max(axis=0)
            al, exact = aligned_by(v, off), aligned_by(v, np.round(truth).astype(int))
            row = {"stack": f"drifting {drift[0]:+.1f} / {drift[1]:+.1f} px a slice, noise {noise / 180:.2f}",
                   "largest offset error y / x (px)": f"{err[0]:.1f} / {err[1]:.1f}",
                   "region kept (y × x)": "none shared" if al is None else "{} × {}".format(*al.shape[1:]),
                   "particles: as it drifts / aligned / aligned by the true offsets": (
                       f"{particles(v)} / {particles(al) if al is not None else '–'} / "
                       f"{particles(exact) if exact is not None else '–'}"),
                   "s": took}
            mended.append(row)
            C.print_row(row)
    tile = (demo_electrode("cycled-1C", rng=0, shape=(64, 128, 128)).greyscale >> 8).astype(np.uint8)
    for shape in ((512, 512, 512), (64, 2048, 2048)):
        v = np.tile(tile, tuple(n // t for n, t in zip(shape, tile.shape)))  # structure in every plane: two passes
        t0 = time.perf_counter()
        slice_shifts(v)
        mend_timing.append({"shape (z×y×x)": "×".join(map(str, shape)), "s": time.perf_counter() - t0})
        C.print_row(mend_timing[-1])
        del v
    description = ("The median over 12 pairs of neighbouring z planes of the shift between them (cross-correlation "
                   "to a twentieth of a pixel on 512² central windows, each smoothed by a Gaussian of 1 pixel and "
                   f"tapered at its edges, in two passes); said where it is at least {ALIGN_WARN_PX} pixel. "
                   "'stack': a demo electrode's phases as grey values 20 / 100 / 200 blurred 0.8 voxel, fresh "
                   "Gaussian noise in every slice (its σ as a share of the 180 pore-NMC contrast), each slice a window of the "
                   "plane mirrored on every side, moved by the drift more than the one before (a cubic spline shift); "
                   "'true step': the drift's length.")
    lines = C.section_lines("Slices shifted against one another: aligned volumes and drifting stacks "
                            "(`bench/alignment.py`)", time.perf_counter() - t_start, load_start, description,
                            {"Aligned volumes (target: not said)": aligned,
                             "Stacks drifting by a known shift a slice": drifting, "Time of one reading": timing,
                             "The stacks aligned (slice_shifts)": mended, "Time of one alignment": mend_timing})
    C.publish("alignment", lines, args)


if __name__ == "__main__":
    main()
