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

    from core.phases.alignment import ALIGN_WARN_PX, alignment_reading
    from core.synth import DEMO_ELECTRODES, demo_electrode

    load_start = os.getloadavg()
    t_start = time.perf_counter()
    aligned, drifting, timing = [], [], []
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
    description = (f"The median over 12 pairs of neighbouring z planes of the shift between them (cross-correlation "
                   f"to a tenth of a pixel on 512² central windows); said where it is at least {ALIGN_WARN_PX} pixel. "
                   "'stack': a demo electrode's phases as grey values 20 / 100 / 200 blurred 0.8 voxel, fresh "
                   "Gaussian noise in every slice (its σ as a share of the 180 pore-NMC contrast), each slice shifted "
                   "by the drift more than the one before (a cubic spline shift); 'true step': the drift's length.")
    lines = C.section_lines("Slices shifted against one another: aligned volumes and drifting stacks "
                            "(`bench/alignment.py`)", time.perf_counter() - t_start, load_start, description,
                            {"Aligned volumes (target: not said)": aligned,
                             "Stacks drifting by a known shift a slice": drifting, "Time of one reading": timing})
    C.publish("alignment", lines, args)


if __name__ == "__main__":
    main()
