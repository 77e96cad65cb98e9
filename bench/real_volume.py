"""The whole analysis on the real calendered NMC volume (measured particle geometry, no particle truth).

Data: ``../shared/data/real/nmc_calendered_3phase/nmc-1-cal_generatedCBD_bridge.tif``
(251x301x301 phase codes 0 pore, 1 NMC, 2 CBD; particle and pore geometry from
X-ray CT of a calendered NMC electrode, Usseglio-Viretta et al., J. Electrochem.
Soc. 2018, via NREL MATBOX; its CBD was added numerically, so the detachment
values describe that generated CBD, not a measurement).  The voxel size is not
stated; ``--spacing`` (default 0.4 µm) is an assumption, and every µm value
below scales with it (particle counts and contact shares do not, except through
the separation's µm parameters).

Reported: wall time per step of ``core.pipeline.run(..., presegmented=True)``
with default parameters, the particle count, size and detachment summaries,
and how many particles are voxel-sized fragments (the reason for the Compare
page's smallest-particle filter, ``core.compare.drop_small``).

Usage:  python bench/real_volume.py [--spacing UM] [--quick]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)

DATA = (Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "nmc_calendered_3phase"
        / "nmc-1-cal_generatedCBD_bridge.tif")
PHASE_MAP = {0: "pore", 1: "nmc", 2: "cbd"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_common_args(ap)
    ap.add_argument("--data", default=str(DATA), help=f"the phase volume (default {DATA})")
    ap.add_argument("--spacing", type=float, default=0.4, help="assumed voxel size in µm (not stated by the data)")
    args = ap.parse_args(argv)
    title = "## The whole analysis on the real calendered NMC volume (`bench/real_volume.py`)" + (
        " — QUICK smoke run" if args.quick else "")
    data = Path(args.data)
    if not data.exists():
        msg = f"SKIPPED: {data} is absent (the shared data folder is missing)."
        print(msg)
        C.publish("real_volume", [title, "", *C.env_lines(), "", msg], args)
        return 0
    from core.compare import drop_small
    from core.io import load_phases
    from core.pipeline import AnalysisParams, run

    t0 = time.perf_counter()
    ph = load_phases(data, PHASE_MAP).data
    if args.quick:
        ph = np.ascontiguousarray(ph[:96, :128, :128])
    t_load = time.perf_counter() - t0
    run(ph[:32, :64, :64], AnalysisParams(), spacing=args.spacing, presegmented=True)  # warm-up (numba)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t1 = time.perf_counter()
        r = run(ph, AnalysisParams(), spacing=args.spacing, presegmented=True)
        t_run = time.perf_counter() - t1
    t = r.table
    frac = np.bincount(ph.ravel(), minlength=3) / ph.size
    det = t["detachment"].dropna()
    rows = [{
        "shape": "×".join(map(str, ph.shape)), "Mvoxel": ph.size / 1e6, "pore / CBD / NMC": "/".join(
            f"{v:.3f}" for v in frac), "read s": t_load, "analysis s": t_run,
        "Mvoxel/s": ph.size / 1e6 / t_run, "particles": len(t),
        "touching the edge": int(t["touches_edge"].sum()),
    }]
    steps = {k: v for k, v in r.provenance["timings_s"].items()}
    sizes = [{"measure": name, "median": float(col.median()), "Q1": float(col.quantile(0.25)),
              "Q3": float(col.quantile(0.75)), "max": float(col.max())}
             for name, col in (("equivalent diameter (µm)", t["equiv_diameter_um"]), ("voxels", t["n_voxels"]),
                               ("sphericity", t["sphericity"].dropna()), ("detachment", det),
                               ("share of surface on CBD", t["frac_cbd"]), ("share on pore", t["frac_pore"]),
                               ("share on other particles", t["frac_particle"]))]
    small = []
    for n in (8, 16, 64):
        few = t[t["n_voxels"] < n]
        d = few["detachment"].dropna()
        small.append({"fewer than (voxels)": n, "particles": len(few), "share": len(few) / max(len(t), 1),
                      "their median detachment": float(d.median()) if len(d) else None,
                      "their IQR": float(d.quantile(0.75) - d.quantile(0.25)) if len(d) else None})
    kept = drop_small({"v": t}, 2.0)[0]["v"]["detachment"].dropna()
    lines = [title, "", *C.env_lines(), "",
             f"Data: `{data.name}` ({PHASE_MAP}), default `AnalysisParams`, `presegmented=True`, voxel size "
             f"**assumed** {args.spacing:g} µm (not stated by the data). Its CBD is generated (MATBOX 'bridge'), "
             "so the detachment values describe that model, not a measurement; no particle truth exists.", "",
             C.md_table(rows), "Steps (s): " + ", ".join(f"{k} {v:.2f}" for k, v in steps.items()) + ".", "",
             "### Particle measures", "", C.md_table(sizes),
             "### Voxel-sized fragments", "",
             "Segmentation debris and fines: few-voxel particles whose detachment is 0, 1 or a coarse fraction. "
             f"Leaving out those under 2 µm equivalent diameter (`core.compare.drop_small`) moves the median "
             f"detachment from {det.median():.3f} to {kept.median():.3f} and the IQR from "
             f"{det.quantile(0.75) - det.quantile(0.25):.3f} to {kept.quantile(0.75) - kept.quantile(0.25):.3f}.",
             "", C.md_table(small)]
    C.publish("real_volume", lines, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
