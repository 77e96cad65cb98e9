"""What a single slice tells about an electrode's detachment, against its volume (``core.slices``).

Scientists often have only 2D cross-sections (SEM, FIB-SEM, one tomography slice), and Jiang et al. (2020) measured
detachment per slice.  A slice is analysed in its plane: the detachment is the pore share of each particle
section's outline instead of its surface.  Here the demo electrodes (``core.synth.DEMO_ELECTRODES``, imaged as
shipped, 0.4 µm voxels) are analysed whole and as single z-slices, and the electrode's median detachment is
compared:

* **true 3D**: the generator's per-particle table (particles not cut by the volume's faces);
* **volume**: the default analysis of the greyscale volume (particles not touching its faces);
* **slices**: the default analysis of ``--slices`` z-slices, each a 2D image, particle sections pooled (those
  not touching the image border); **slices, true phases**: the same slices' true phases (``presegmented``).

Held-out seeds by default (100-102).

Usage:  python bench/slice_vs_volume.py [--seeds 100 101 102] [--slices 8] [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd

import _common as C  # noqa: E402  (sets sys.path)
from core.pipeline import AnalysisParams, run
from core.synth import DEMO_ELECTRODES, make_electrode


def _median_inner(table: pd.DataFrame) -> tuple[float, int]:
    inner = table[~table["touches_edge"].astype(bool)]
    return float(np.nanmedian(inner["detachment"])), int(inner["detachment"].notna().sum())


def one(name: str, seed: int, n_slices: int, shape) -> dict:
    params = DEMO_ELECTRODES[name]
    if shape is not None:
        from dataclasses import replace

        params = replace(params, shape=shape)
    e = make_electrode(params, rng=seed, name=name)
    row = {"electrode": name, "seed": seed}
    row["true 3D"], row["n true"] = _median_inner(e.table)
    t0 = time.perf_counter()
    vol = run(e.greyscale, AnalysisParams(), spacing=e.spacing)
    row["volume s"] = time.perf_counter() - t0
    row["volume"], row["n volume"] = _median_inner(vol.table)
    nz = e.greyscale.shape[0]
    zs = np.linspace(0, nz - 1, n_slices + 2)[1:-1].round().astype(int)  # evenly inside the thickness
    grey, true = [], []
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="A single slice", category=UserWarning)
        for z in zs:
            grey.append(run(e.greyscale[z:z + 1], AnalysisParams(axis=1), spacing=e.spacing).table)
            true.append(run(e.phases[z:z + 1], AnalysisParams(axis=1), spacing=e.spacing, presegmented=True).table)
    row["slices s"] = time.perf_counter() - t0
    row["slices"], row["n slices"] = _median_inner(pd.concat(grey))
    one_slice = [_median_inner(t)[0] for t in grey]
    row["one slice: min"], row["one slice: max"] = float(np.nanmin(one_slice)), float(np.nanmax(one_slice))
    row["slices, true phases"], row["n slices true"] = _median_inner(pd.concat(true))
    row["slices − true 3D"] = row["slices"] - row["true 3D"]
    row["volume − true 3D"] = row["volume"] - row["true 3D"]
    return row


def _means(rows: list[dict]) -> list[dict]:
    out = []
    for m, sub in C.grouped(rows, ("electrode",)):
        m["seeds"] = len(sub)
        m.update(C.means(sub, ("true 3D", "volume", "slices", "slices, true phases", "volume − true 3D",
                               "slices − true 3D")))
        m["particle sections per seed"] = float(np.mean([r["n slices"] for r in sub]))
        m["one slice: min–max"] = (f"{min(r['one slice: min'] for r in sub):.3f}–"
                                   f"{max(r['one slice: max'] for r in sub):.3f}")
        out.append(m)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_common_args(ap)
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default 100 101 102 (--quick: 100)")
    ap.add_argument("--slices", type=int, default=8, help="z-slices per electrode (default 8)")
    args = ap.parse_args(argv)
    seeds = args.seeds or ([100] if args.quick else [100, 101, 102])
    shape = (64, 64, 64) if args.quick else None
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    rows = []
    for name in DEMO_ELECTRODES:
        for seed in seeds:
            rows.append(one(name, seed, args.slices, shape))
            C.print_row(rows[-1])
    total = time.perf_counter() - t0
    means = _means(rows)
    C.publish("slice_vs_volume", C.section_lines(
        "A single slice against the volume: the electrode's median detachment (`bench/slice_vs_volume.py`)",
        total, load_start,
        f"Demo electrodes ({'64³ quick' if args.quick else '160³'}, seeds {seeds}, imaged as shipped, 0.4 µm "
        f"voxels). Median detachment of the particles not cut by the volume's faces: 'true 3D' the generator's "
        f"table, 'volume' the default analysis of the greyscale volume; of {args.slices} z-slices evenly inside "
        "the thickness, each analysed as a single 2D image (`core.slices`: the detachment is the pore share of "
        "each particle section's outline), the sections not cut by the image border pooled: 'slices' from the "
        "greyscale, 'slices, true phases' from the true phases; 'one slice': the median of one slice's sections "
        "alone (greyscale), lowest and highest over the slices (and seeds). Seconds: the volume's analysis and all "
        "the slices' (greyscale and true phases).",
        {"Mean over seeds": means, "Per seed": rows}), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
