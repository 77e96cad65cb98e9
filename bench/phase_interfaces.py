"""Phase labels at the NMC surfaces of noisy, blurred sphere packings (issue 15, the phases' part).

The detachment index is counted on the faces of the NMC, so what decides it is the phase of the voxels
that touch the NMC.  For each cell of a small grid (sphere packings of :func:`core.synth.make_sphere_packing`
as in ``bench/robustness_grid.py``: 12 % CBD as a thin film in the necks, Gaussian blur and noise as given)
the greyscale is analysed with the defaults (``core.pipeline.run``) and compared with the truth:

* the confusion of the voxels at the true NMC surface: the true pore and CBD voxels that share a face with
  true NMC (the "outer layer"), and the true NMC voxels that share a face with something else (the "rim"),
  each as shares found pore / CBD / NMC;
* the faces of the found NMC to found pore and to found CBD against the true NMC's (thousands of faces),
  and the whole volume's detachment ``faces to pore / (faces to pore + faces to CBD)``;
* F1@0.5 and the median |detachment error| of the particles matched at IoU > 0.5 (the robustness grid's
  own scoring, ``robustness_grid._scores``).

Tune on seeds 3-5 (``--seeds 3 4 5 --no-write``), report on 0-2 (the default).  ``--rows-out`` /
``--from-rows`` split a long grid into parts as in the robustness grid.

Usage:  python bench/phase_interfaces.py [--size 128] [--seeds 0 1 2] [--radii 7 14] [--blur 0.6 1.2]
            [--noise 0.05 0.10] [--rows-out PART.json | --from-rows PART.json ...] [--note-file NOTE.md]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import warnings

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)
from core.codes import CBD, NMC, PORE
from core.pipeline import run
from core.synth import PackingParams, make_sphere_packing
from robustness_grid import _scores, add_grid_args, grid_of, read_parts

_NAMES = {PORE: "pore", CBD: "CBD", NMC: "NMC"}


def _neighbour_any(mask: np.ndarray) -> np.ndarray:
    """Voxels with at least one face neighbour in ``mask`` (the volume's outside is not in it)."""
    out = np.zeros_like(mask)
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        out[tuple(lo)] |= mask[tuple(hi)]
        out[tuple(hi)] |= mask[tuple(lo)]
    return out


def nmc_faces(phases: np.ndarray) -> dict[str, int]:
    """Faces between NMC voxels and pore voxels, and between NMC and CBD voxels, inside the volume."""
    out = {"pore": 0, "CBD": 0}
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        a, b = phases[tuple(lo)], phases[tuple(hi)]
        for code, key in ((PORE, "pore"), (CBD, "CBD")):
            out[key] += int(np.count_nonzero((a == NMC) & (b == code)) + np.count_nonzero((b == NMC) & (a == code)))
    return out


def interface_stats(true: np.ndarray, found: np.ndarray) -> dict[str, float]:
    """Confusion of the voxels at the true NMC surface, and NMC faces per neighbour, found against true.

    Keys ``pore→X`` / ``CBD→X``: shares of the true pore / CBD voxels sharing a face with true NMC that are
    found X; ``NMC rim→X``: the same for true NMC voxels sharing a face with a non-NMC voxel; ``faces
    pore`` / ``faces CBD`` (found) and ``true faces pore`` / ``true faces CBD``; ``det vol`` /
    ``true det vol``: faces to pore / (faces to pore + faces to CBD).
    """
    t_nmc = true == NMC
    outer = _neighbour_any(t_nmc) & ~t_nmc
    rim = t_nmc & _neighbour_any(~t_nmc)
    row: dict[str, float] = {}
    for code in (PORE, CBD):
        sel = found[outer & (true == code)]
        n = max(sel.size, 1)
        for f in (PORE, CBD, NMC):
            row[f"{_NAMES[code]}→{_NAMES[f]}"] = np.count_nonzero(sel == f) / n
    sel = found[rim]
    for f in (PORE, CBD, NMC):
        row[f"NMC rim→{_NAMES[f]}"] = np.count_nonzero(sel == f) / max(sel.size, 1)
    ff, tf = nmc_faces(found), nmc_faces(true)
    row.update({"faces pore": ff["pore"], "faces CBD": ff["CBD"], "true faces pore": tf["pore"],
                "true faces CBD": tf["CBD"],
                "det vol": ff["pore"] / max(ff["pore"] + ff["CBD"], 1),
                "true det vol": tf["pore"] / max(tf["pore"] + tf["CBD"], 1)})
    return row


def packing(size: int, noise: float, blur: float, radius: float, seed: int):
    """The robustness grid's packing of one cell (radii scaled with the median as there)."""
    k = radius / 7.0
    return make_sphere_packing(PackingParams(shape=(size, size, size), radius_median_um=radius,
                                             radius_min_um=4 * k, radius_max_um=15 * k, blur_voxels=blur,
                                             noise_contrast=noise), rng=seed)


def evaluate_cell(size: int, noise: float, blur: float, radius: float, seed: int) -> dict:
    e = packing(size, noise, blur, radius, seed)
    t0 = time.perf_counter()
    r = run(e.greyscale, spacing=e.spacing)
    row = {"radius": radius, "blur": blur, "noise": noise, "seed": seed, "s": time.perf_counter() - t0,
           "pv sigma": float(r.params.segment.pv_sigma)}
    row.update(interface_stats(e.phases, r.phases))
    row.update(_scores(e, r.labels, r.table))
    return row


def _run_rows(size, seeds, radii, blurs, noises, args):
    warnings.filterwarnings("ignore", message="The blur", category=UserWarning)
    t_start = time.perf_counter()
    load_start = os.getloadavg()
    w = make_sphere_packing(PackingParams(shape=(40, 40, 40)), rng=0)  # warm-up: numba compilation
    run(w.greyscale, spacing=w.spacing)
    rows = []
    for radius in radii:
        for blur in blurs:
            for noise in noises:
                for seed in seeds:
                    row = evaluate_cell(size, noise, blur, radius, seed)
                    rows.append(row)
                    print(f"  r {radius:g} blur {blur:g} noise {noise:g} seed {seed}: CBD→pore {row['CBD→pore']:.3f}"
                          f" CBD→NMC {row['CBD→NMC']:.3f} pore→CBD {row['pore→CBD']:.3f} det {row['det']:.3f}"
                          f" f1 {row['f1']:.3f}", flush=True)
    command = "python bench/phase_interfaces.py " + shlex.join(sys.argv[1:])
    part = {"rows": rows, "size": size, "wall_s": time.perf_counter() - t_start,
            "load": [load_start[0], os.getloadavg()[0]], "command": command}
    if args.rows_out:
        with open(args.rows_out, "w") as f:
            json.dump(part, f)
        print(f"rows written to {args.rows_out}")
        return None
    return [part]


_CONF = ["pore→pore", "pore→CBD", "pore→NMC", "CBD→pore", "CBD→CBD", "CBD→NMC", "NMC rim→pore", "NMC rim→CBD",
         "NMC rim→NMC"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_common_args(ap)
    add_grid_args(ap)
    ap.add_argument("--note-file", default=None, help="markdown file whose text is added under the tables")
    ap.add_argument("--section", default=None, help="section of RESULTS.md (default phase_interfaces)")
    args = ap.parse_args(argv)
    if args.from_rows:
        parts = read_parts(args.from_rows)
    else:
        size, seeds, radii = grid_of(args)
        parts = _run_rows(size, seeds, radii, args.blur, args.noise, args)
        if parts is None:
            return 0
    rows = [r for p in parts for r in p["rows"]]
    cells = []
    for key in sorted({(r["radius"], r["blur"], r["noise"]) for r in rows}):
        sub = [r for r in rows if (r["radius"], r["blur"], r["noise"]) == key]
        cell = {"radius (vox)": f"{key[0]:g}", "blur (vox)": f"{key[1]:g}", "noise": f"{key[2]:g}"}
        for k in ["pv sigma", *_CONF, "det vol", "true det vol", "det", "f1"]:
            cell[k] = float(np.nanmean([r[k] for r in sub]))
        for k in ("faces pore", "true faces pore", "faces CBD", "true faces CBD"):
            cell[k + " (k)"] = float(np.mean([r[k] for r in sub])) / 1000
        cells.append(cell)
    head = ["radius (vox)", "blur (vox)", "noise"]
    seeds = sorted({r["seed"] for r in rows})
    run_lines = [f"- `{p['command']}`: {p['wall_s']:.0f} s, load average at the start / end {p['load'][0]:.1f} / "
                 f"{p['load'][1]:.1f} (1 min) on {os.cpu_count()} cores" for p in parts]
    lines = ["## Phase labels at the NMC surfaces of sphere packings (`bench/phase_interfaces.py`)", "",
             *C.env_lines(), *run_lines, "",
             f"Sphere packings of `core.synth.make_sphere_packing` at {parts[0]['size']}³ voxels (as in the "
             f"robustness grid: 12 % CBD as a film in the necks), seeds {seeds}, analysed with the default "
             "`core.pipeline.run`. 'pore→CBD' = share of the true pore voxels that share a face with true NMC "
             "found as CBD (likewise for CBD and for the NMC rim, the true NMC voxels with a non-NMC face "
             "neighbour); faces = faces of the (found / true) NMC to pore and to CBD inside the volume, thousands; "
             "det vol = faces to pore / (faces to pore + faces to CBD) of the whole volume; det = median "
             "|detachment error| of the particles matched at IoU > 0.5; F1 at IoU > 0.5. Mean over seeds.", "",
             "### Voxels at the true NMC surface: true → found", "",
             C.md_table(cells, head + ["pv sigma", *_CONF]), "",
             "### NMC faces per neighbour and detachment", "",
             C.md_table(cells, head + ["faces pore (k)", "true faces pore (k)", "faces CBD (k)", "true faces CBD (k)",
                                       "det vol", "true det vol", "det", "f1"])]
    if args.note_file:
        with open(args.note_file) as f:
            lines += ["", f.read().strip()]
    C.publish("phase_interfaces", lines, args, section=args.section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
