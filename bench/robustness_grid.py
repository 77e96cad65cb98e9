"""Particle separation under noise and blur: a grid over noise x blur x particle radius (issue 15).

Each cell is a sphere packing of :func:`core.synth.make_sphere_packing` (polydisperse log-normal radii,
sigma 0.35, clipped to [4/7, 15/7] x the median; necks overlapping up to 10 % of r1 + r2 with planar
power-diagram interfaces; 12 % CBD in the necks; 1 µm voxels), imaged with Gaussian blur ``blur`` (voxels)
and noise ``noise`` (share of the pore-NMC contrast), for each seed.  Pipelines:

* ``grey``        ``core.pipeline.run(e.greyscale)`` with default ``AnalysisParams`` (``seeding="auto"``: the
                  deconvolved mask where the measured blur is at least ``core.seeding.AUTO_BLUR``, else the
                  phases; the blur read and the choice are in the per-seed table);
                  The phases are refined by the forward model (``refine="auto"``, :mod:`core.phases.forward`)
                  where the same blur reading is at least ``AUTO_BLUR``, and below it their NMC surfaces
                  where the noise reads at least ``core.phases.forward.AUTO_NOISE`` of the contrast (the
                  noise read and the choice are in the per-seed table);
* ``grey-norefine`` the same with ``AnalysisParams(refine="off")`` (the default before session 15);
* ``grey-phases`` the same with ``AnalysisParams(seeding="phases", refine="off")`` (the default before session 14);
* ``grey-reg``    the same with ``AnalysisParams(seeding="regularised")`` (:mod:`core.seeding`);
* ``grey-dec``    the same with ``AnalysisParams(seeding="deconvolved")`` (:mod:`core.seeding`, deconvolved mask);
* ``true``        ``run(e.phases, presegmented=True)``: the same separation on the true phases;
* ``porespy``     Gaussian sigma 1 voxel + three-class multi-Otsu (top class = NMC) +
                  ``porespy.filters.snow_partitioning`` (defaults), regions kept on that NMC;
* ``ceiling``     not a pipeline but a bound (:func:`labelling_ceiling`): the best labelling of the NMC of the
                  default greyscale analysis's phases, near enough: each voxel that is NMC there and in truth
                  keeps its true particle's label, the phases' other NMC voxels join a neighbour by a flood of
                  the distance transform.  No separation of those phases scores much above it (it is exact
                  on the true phases: F1 1); where ``ceiling − true`` is below -0.03, no separation of the
                  default analysis's phases meets issue 15's test in that cell: the phases (the blurred necks
                  and caps) would have to improve;
* ``cores``       a second bound (:func:`cores_flood`): perfect seeds, the separation's flood: each true particle's
                  core (its voxels at least :data:`CORE_DEPTH` voxels deep, or half its own greatest depth where
                  that is less, so that a thin cap at a face has one) that is NMC in the default analysis's
                  phases, flooded over that NMC by scikit-image's watershed of its distance transform (the
                  separation's flood with the right seeds; F1 1 on the true phases).  ``grey`` below ``cores``:
                  what the seeds (markers) cost; ``cores`` below ``ceiling``: what the distance-transform flood
                  of those phases costs.

Scores per cell (mean over seeds): instance F1 at IoU > 0.5 and AP over IoU 0.5:0.95
(``core.evaluate.instance_scores``), the same F1 over the particles, true and found, that touch no face of
the volume ("interior F1"), and the median |detachment error| over particles matched at IoU > 0.5
(``core.evaluate.detachment_errors`` against the generator's table; PoreSpy gives no detachment), and
why the true particles cut by a face of the volume are missed (:func:`face_misses`: joined to a
neighbour, or lost).

A grid too long for one command runs in parts: each part with ``--rows-out PART.json`` (its rows, wall
time, load and command; no section written), then ``--from-rows PART.json ...`` writes the section of
them all without running anything.  ``--section`` names the section of bench/RESULTS.md (default
``robustness_grid``).

Usage:  python bench/robustness_grid.py [--quick] [--size 128] [--seeds 0 1 2]
            [--noise 0.05 0.10] [--blur 0.6 1.2] [--radii 7 14] [--no-porespy] [--pipelines grey grey-dec ...]
            [--rows-out PART.json | --from-rows PART.json ...] [--section NAME]
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
from core.evaluate import detachment_errors, instance_scores, match_instances
from core.pipeline import AnalysisParams, run
from core.synth import PackingParams, make_sphere_packing

PIPELINES = ("grey", "grey-norefine", "grey-phases", "grey-reg", "grey-dec", "true", "porespy", "ceiling", "cores")
#: The bounds, scored like the pipelines but not pipelines (module docstring).
BOUNDS = ("ceiling", "cores")
#: ``cores``: the seed of a true particle is its voxels at least this deep (voxels), or half its own depth if less.
CORE_DEPTH = 2.0
#: The greyscale pipelines other than the default: their AnalysisParams.
SEEDED = {"grey-norefine": {"refine": "off"}, "grey-phases": {"seeding": "phases", "refine": "off"},
          "grey-reg": {"seeding": "regularised"}, "grey-dec": {"seeding": "deconvolved"}}


def porespy_labels(grey: np.ndarray) -> np.ndarray:
    """Gaussian sigma 1 + multi-Otsu (3 classes, top = NMC) + snow_partitioning, regions on that NMC."""
    import porespy as ps
    from scipy import ndimage as ndi
    from skimage.filters import threshold_multiotsu

    smooth = ndi.gaussian_filter(grey.astype(np.float32), 1.0)
    nmc = smooth >= threshold_multiotsu(smooth, classes=3)[1]
    regions = ps.filters.snow_partitioning(nmc).regions * nmc
    return regions.astype(np.int32)


def nmc_depth(phases: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The NMC of ``phases`` and its Euclidean distance transform (the volume's faces not a boundary): what both
    bounds flood over."""
    import edt

    from core.codes import NMC

    nmc = phases == NMC
    return nmc, edt.edt(nmc, black_border=False)


def _flood(seeds: np.ndarray, nmc_and_depth) -> np.ndarray:
    """``seeds`` (labels, 0 elsewhere) grown over the NMC by ``skimage.segmentation.watershed`` of its negated
    distance transform, inside it."""
    from skimage.segmentation import watershed

    nmc, depth = nmc_and_depth
    return watershed(-depth, seeds, mask=nmc).astype(np.int32)


def labelling_ceiling(true_labels: np.ndarray, phases: np.ndarray, nmc_and_depth=None) -> np.ndarray:
    """The best labelling of the NMC of ``phases``, near enough (the ``ceiling`` row of the module docstring).

    The voxels that are NMC in ``phases`` and belong to a true particle keep that particle's label; the other
    NMC voxels of ``phases`` (pore or CBD in truth) take the label that reaches them first in
    ``skimage.segmentation.watershed`` of the negated Euclidean distance transform of that NMC (the volume's
    faces not a boundary), inside it.  True particles the phases miss entirely are lost.  ``nmc_and_depth``:
    :func:`nmc_depth` of ``phases`` where the caller has it.
    """
    nmc, depth = nmc_and_depth if nmc_and_depth is not None else nmc_depth(phases)
    return _flood(np.where(nmc, true_labels, 0), (nmc, depth))


def cores_flood(true_labels: np.ndarray, phases: np.ndarray, nmc_and_depth=None) -> np.ndarray:
    """The true particles' cores flooded over the NMC of ``phases`` (the ``cores`` row of the module docstring).

    A voxel of a true particle is in its core where its distance to another label or the background (the
    volume's faces not a boundary) is at least :data:`CORE_DEPTH` voxels or half the particle's greatest such
    distance, whichever is less; the cores' voxels that are NMC in ``phases`` seed
    ``skimage.segmentation.watershed`` of the negated Euclidean distance transform of that NMC, inside it.
    ``nmc_and_depth``: :func:`nmc_depth` of ``phases`` where the caller has it.
    """
    import edt
    from scipy import ndimage as ndi

    nmc, depth = nmc_and_depth if nmc_and_depth is not None else nmc_depth(phases)
    depth_t = edt.edt(true_labels, black_border=False)
    deepest = ndi.maximum(depth_t, true_labels, index=np.arange(int(true_labels.max()) + 1))
    core = (depth_t >= np.minimum(CORE_DEPTH, 0.5 * deepest[true_labels])) & (true_labels > 0) & nmc
    return _flood(np.where(core, true_labels, 0), (nmc, depth))


def _interior(labels: np.ndarray) -> np.ndarray:
    """``labels`` with every particle that touches a face of the volume set to 0."""
    faces = np.unique(np.concatenate([np.take(labels, i, axis=a).ravel() for a in range(3) for i in (0, -1)]))
    out = labels.copy()
    out[np.isin(labels, faces[faces > 0])] = 0
    return out


def _f1(sc) -> float:
    return float(sc.loc[np.isclose(sc["threshold"], 0.5), "f1"].iloc[0])


def face_misses(true: np.ndarray, found: np.ndarray) -> dict:
    """Why the true particles that touch a face of the volume are missed (no found particle at IoU > 0.5).

    ``fn face``: how many; ``fn face joined``: of them, those with at least half their voxels in one found
    particle that is bigger than the true one by more than the rest of the true one (joined to a
    neighbour); ``fn face lost``: those with less than half their voxels in any found particle (lost in
    the phases or spread over several).  The rest: found too small or split.
    """
    pairs = match_instances(true, found)
    matched = set(pairs.loc[pairs["iou"] > 0.5, "true"])
    faces = np.unique(np.concatenate([np.take(true, i, axis=a).ravel() for a in range(3) for i in (0, -1)]))
    miss = [int(t) for t in faces if t > 0 and t not in matched]
    size_t = np.bincount(true.ravel(), minlength=int(true.max()) + 1)
    size_f = np.bincount(found.ravel(), minlength=int(found.max()) + 1)
    joined = lost = 0
    for t in miss:
        sel = pairs[pairs["true"] == t]
        if sel.empty:
            lost += 1
            continue
        best = sel.loc[sel["iou"].idxmax()]
        inter = best["iou"] * (size_t[t] + size_f[int(best["pred"])]) / (1 + best["iou"])
        if inter < 0.5 * size_t[t]:
            lost += 1
        elif size_f[int(best["pred"])] - inter > size_t[t] - inter:
            joined += 1
    return {"fn face": len(miss), "fn face joined": joined, "fn face lost": lost}


def _scores(e, labels, table=None) -> dict:
    sc = instance_scores(e.labels, labels)
    out = {"f1": _f1(sc), "ap": float(sc["ap"].mean()), "n": int(len(np.unique(labels)) - 1),
           "f1 int": _f1(instance_scores(_interior(e.labels), _interior(labels))), "det": float("nan"),
           **face_misses(e.labels, labels)}
    if table is not None:
        err = detachment_errors(e.table, table, match_instances(e.labels, labels))["error"].dropna().to_numpy()
        out["det"] = float(np.median(np.abs(err))) if err.size else float("nan")
    return out


def evaluate_cell(size: int, noise: float, blur: float, radius: float, seed: int, pipelines) -> dict:
    k = radius / 7.0
    params = PackingParams(shape=(size, size, size), radius_median_um=radius, radius_min_um=4 * k,
                           radius_max_um=15 * k, blur_voxels=blur, noise_contrast=noise)
    e = make_sphere_packing(params, rng=seed)
    row = {"noise": noise, "blur": blur, "radius": radius, "seed": seed, "n true": int(len(e.table))}
    grey_phases = grey_nmc = None
    for name in pipelines:
        t0 = time.perf_counter()
        if name in BOUNDS:
            if grey_phases is None:
                grey_phases = run(e.greyscale, spacing=e.spacing).phases
            if grey_nmc is None:  # the NMC and its distance transform, once for both bounds
                grey_nmc = nmc_depth(grey_phases)
            bound = labelling_ceiling if name == "ceiling" else cores_flood
            s = _scores(e, bound(e.labels, grey_phases, grey_nmc))
        elif name == "grey":
            r = run(e.greyscale, spacing=e.spacing)
            grey_phases = r.phases
            s = _scores(e, r.labels, r.table)
            auto = r.provenance["seeding_auto"]
            s["blur read"] = float("nan") if auto["blur_voxels"] is None else auto["blur_voxels"]
            s["seeding"] = "dec" if auto["seeding"] == "deconvolved" else auto["seeding"]
            noise_read = r.provenance.get("refine_auto", {}).get("noise_contrast")  # None: not read (blur rule)
            s["noise read"] = float("nan") if noise_read is None else noise_read
            s["refine"] = r.params.refine
        elif name in SEEDED:
            r = run(e.greyscale, AnalysisParams(**SEEDED[name]), spacing=e.spacing)
            s = _scores(e, r.labels, r.table)
        elif name == "true":
            r = run(e.phases, spacing=e.spacing, presegmented=True)
            s = _scores(e, r.labels, r.table)
        else:
            s = _scores(e, porespy_labels(e.greyscale))
        s["s"] = time.perf_counter() - t0
        for key, v in s.items():
            row[f"{name} {key}"] = v
    return row


def _run_rows(size, seeds, radii, blurs, noises, pipelines, args):
    """Run the grid: its rows and the lines that say how (rows None when they went to ``--rows-out``)."""
    # the blur warning of the partial-volume correction (blur > 0.9 voxel) is expected in half of the grid
    warnings.filterwarnings("ignore", message="The blur", category=UserWarning)
    t_start = time.perf_counter()
    load_start = os.getloadavg()
    w = make_sphere_packing(PackingParams(shape=(40, 40, 40)), rng=0)  # warm-up: numba compilation
    run(w.greyscale, spacing=w.spacing)
    for p in pipelines:
        if p in SEEDED:
            run(w.greyscale, AnalysisParams(**SEEDED[p]), spacing=w.spacing)
    rows = []
    for radius in radii:
        for blur in blurs:
            for noise in noises:
                for seed in seeds:
                    row = evaluate_cell(size, noise, blur, radius, seed, pipelines)
                    rows.append(row)
                    print(f"  r {radius:g} blur {blur:g} noise {noise:g} seed {seed}: " + ", ".join(
                        f"{p} {row[f'{p} f1']:.3f}" for p in pipelines), flush=True)
    total = time.perf_counter() - t_start
    command = "python bench/robustness_grid.py " + shlex.join(sys.argv[1:])
    if args.rows_out:
        with open(args.rows_out, "w") as f:
            json.dump({"rows": rows, "size": size, "wall_s": total, "load": [load_start[0], os.getloadavg()[0]],
                       "command": command}, f)
        print(f"rows written to {args.rows_out}")
        return None, []
    return rows, [f"- command: `{command}`", f"- script wall time: {total:.0f} s", C.load_line(load_start)]


def add_grid_args(ap: argparse.ArgumentParser) -> None:
    """The grid's options (volume side, packing seeds, noise, blur, radii), shared with bench/phase_interfaces.py."""
    ap.add_argument("--size", type=int, default=None, help="side of the cubic volume (default 128; --quick 64)")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2 (--quick: 0)")
    ap.add_argument("--noise", type=float, nargs="+", default=[0.05, 0.10], help="share of the pore-NMC contrast")
    ap.add_argument("--blur", type=float, nargs="+", default=[0.6, 1.2], help="Gaussian sigma, voxels")
    ap.add_argument("--radii", type=float, nargs="+", default=None, help="median radius, voxels (default 7 14)")
    ap.add_argument("--rows-out", default=None, help="write this part's rows to a JSON file, no section")
    ap.add_argument("--from-rows", nargs="+", default=None, help="write the section of these parts; run nothing")


def read_parts(paths) -> list[dict]:
    """The parts that ``--rows-out`` wrote (JSON), in order."""
    parts = []
    for path in paths:
        with open(path) as f:
            parts.append(json.load(f))
    return parts


def grid_of(args) -> tuple[int, list[int], list[float]]:
    """(volume side, packing seeds, radii) of a run: the options given, else the defaults (smaller with --quick)."""
    return (args.size or (64 if args.quick else 128), args.seeds or ([0] if args.quick else [0, 1, 2]),
            args.radii or ([7.0] if args.quick else [7.0, 14.0]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_common_args(ap)
    add_grid_args(ap)
    ap.add_argument("--no-porespy", action="store_true", help="leave out the PoreSpy pipeline")
    ap.add_argument("--pipelines", nargs="+", choices=PIPELINES, default=None,
                    help=f"pipelines to run (default: all of {', '.join(PIPELINES)})")
    ap.add_argument("--section", default=None, help="section of RESULTS.md (default robustness_grid)")
    args = ap.parse_args(argv)
    if args.from_rows:
        parts = read_parts(args.from_rows)
        rows = [r for part in parts for r in part["rows"]]
        pipelines = [p for p in PIPELINES if all(f"{p} f1" in r for r in rows)]
        size = parts[0]["size"]
        seeds = sorted({r["seed"] for r in rows})
        radii = sorted({r["radius"] for r in rows})
        blurs = sorted({r["blur"] for r in rows})
        noises = sorted({r["noise"] for r in rows})
        run_lines = [f"- run in {len(parts)} parts, then `python bench/robustness_grid.py --from-rows "
                     f"{' '.join(args.from_rows)}`:"]
        run_lines += [f"  - `{p['command']}`: {p['wall_s']:.0f} s, load average at the start / end "
                      f"{p['load'][0]:.1f} / {p['load'][1]:.1f} (1 min) on {os.cpu_count()} cores" for p in parts]
    else:
        size, seeds, radii = grid_of(args)
        blurs, noises = args.blur, args.noise
        pipelines = [p for p in (args.pipelines or PIPELINES) if not (p == "porespy" and args.no_porespy)]
        rows, run_lines = _run_rows(size, seeds, radii, blurs, noises, pipelines, args)
        if rows is None:
            return 0
    cells = []
    for radius in radii:
        for blur in blurs:
            for noise in noises:
                sub = [r for r in rows if (r["radius"], r["blur"], r["noise"]) == (radius, blur, noise)]
                if not sub:
                    continue
                cell = {"radius (vox)": f"{radius:g}", "blur (vox)": f"{blur:g}", "noise": f"{noise:g}",
                        "n true": f"{np.mean([r['n true'] for r in sub]):.0f}"}
                for p in pipelines:
                    for key, label in (("f1", "F1"), ("ap", "AP"), ("det", "det"), ("f1 int", "int F1"),
                                       ("fn face", "fn face"), ("fn face joined", "joined"),
                                       ("fn face lost", "lost")):
                        vals = [r.get(f"{p} {key}", float("nan")) for r in sub]
                        cell[f"{p} {label}"] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
                for p in ("grey", *SEEDED, *BOUNDS):
                    if p in pipelines and "true" in pipelines:
                        cell[f"{p} − true"] = cell[f"{p} F1"] - cell["true F1"]
                        if "porespy" in pipelines:
                            cell[f"{p} − PoreSpy"] = cell[f"{p} F1"] - cell["porespy F1"]
                cells.append(cell)

    greys = [p for p in ("grey", *SEEDED) if p in pipelines]
    bounds = [p for p in BOUNDS if p in pipelines]
    cols_f1 = ["radius (vox)", "blur (vox)", "noise", "n true"] + [f"{p} F1" for p in pipelines] + [
        c for c in [f"{p} − true" for p in greys + bounds] + [f"{p} − PoreSpy" for p in greys] if c in cells[0]]
    cols_ap = ["radius (vox)", "blur (vox)", "noise"] + [f"{p} AP" for p in pipelines] + [
        f"{p} det" for p in pipelines if p not in ("porespy", *BOUNDS)]
    cols_int = ["radius (vox)", "blur (vox)", "noise"] + [f"{p} int F1" for p in pipelines]
    cols_face = ["radius (vox)", "blur (vox)", "noise"] + [f"{p} {k}" for p in pipelines
                                                           for k in ("fn face", "joined", "lost")]
    cols_seed = ["radius", "blur", "noise", "seed", "n true"] + [f"{p} {k}" for p in pipelines
                                                                 for k in ("f1", "n", "s")]
    if "grey" in pipelines and all("grey seeding" in r for r in rows):
        cols_seed[5:5] = ["grey blur read", "grey seeding"]
    if "grey" in pipelines and all("grey refine" in r for r in rows):
        cols_seed[7:7] = ["grey noise read", "grey refine"]
    def met(p):
        return sum(1 for c in cells if f"{p} − true" in c and c[f"{p} − true"] >= -0.03
                   and (f"{p} − PoreSpy" not in c or c[f"{p} − PoreSpy"] >= 0.02))

    lines = [f"## Robustness grid: noise x blur x particle radius (`bench/robustness_grid.py`)"
             f"{' — QUICK smoke run' if args.quick else ''}", "", *C.env_lines(),
             *run_lines, f"- pipelines: {', '.join(pipelines)}",
             "",
             f"Sphere packings of `core.synth.make_sphere_packing` at {size}³ voxels of 1 µm, seeds {seeds}: "
             "log-normal radii (median as in the table, sigma 0.35, clipped to [4/7, 15/7] x the median), necks "
             "overlapping up to 10 % of r1 + r2 split by the power-diagram plane, 12 % CBD in the necks; Gaussian "
             "blur (voxels) and noise (share of the pore-NMC contrast) as in the table. 'grey' = default analysis "
             "of the greyscale (`seeding=\"auto\"`: seeds on the deconvolved mask where the blur read on the scan, "
             "'grey blur read' in the per-seed table, is at least `core.seeding.AUTO_BLUR`, else on the phases; "
             "there the phases are also refined by the forward model, `refine=\"auto\"`, and below it their NMC "
             "surfaces where the noise read, 'grey noise read', is at least `core.phases.forward.AUTO_NOISE`, "
             "'grey refine' = nmc); 'grey-norefine' = the "
             "same with `refine=\"off\"` (the default before session 15); "
             "'grey-phases' = the same with `seeding=\"phases\", refine=\"off\"` (the default before session 14); 'grey-reg = the same with `seeding=\"regularised\"` (`core.seeding`); 'grey-dec' = "
             "the same with `seeding=\"deconvolved\"` (`core.seeding`, mask cut from the deconvolved greyscale); "
             "'true' = "
             "the same separation on the true phases (`presegmented=True`); 'porespy' = Gaussian σ 1 + multi-Otsu "
             "+ `porespy.filters.snow_partitioning`; 'ceiling' (a bound, not a pipeline) = the best labelling of "
             "the NMC of the default analysis's phases, near enough: every voxel NMC there and in a true particle "
             "keeps that particle's label, the phases' other NMC voxels join a neighbour by a distance-transform "
             "flood (scikit-image's watershed); where 'ceiling − true' < -0.03, no separation of those phases "
             "meets issue 15's test; 'cores' (a bound) = each true particle's core (voxels ≥ "
             f"{CORE_DEPTH:g} voxels deep, or half its own depth) on that NMC, flooded over it by the same watershed: "
             "perfect seeds, a distance-transform flood ('grey' below 'cores' = what the seeds cost). F1 = instance F1 at IoU > 0.5, AP = mean over IoU 0.5:0.95 "
             "of TP/(TP+FP+FN), det = median |detachment error| over particles matched at IoU > 0.5; mean over "
             "seeds.",
             "",
             "### F1@0.5 per cell", "", C.md_table(cells, cols_f1),
             ("Acceptance (issue 15: greyscale F1 within 0.03 of true phases and ≥ PoreSpy + 0.02) met by "
              + ", ".join(f"'{p}' in {met(p)}" for p in greys) + f" of {len(cells)} cells.")
             if greys and "true" in pipelines else "",
             "", "### AP@[.5:.95] and detachment error per cell", "", C.md_table(cells, cols_ap),
             "", "### Interior F1@0.5 (true and found particles that touch no face of the volume)", "",
             C.md_table(cells, cols_int),
             *(["", "### True particles cut by a face and missed (mean per seed)", "",
                "'fn face': true particles touching a face with no found particle at IoU > 0.5; 'joined': of "
                "them, at least half inside one found particle that has more voxels outside this particle than "
                "this particle has outside it (joined to a neighbour); 'lost': less than half inside any found "
                "particle (lost in the phases, or spread over several).", "",
                C.md_table(cells, cols_face)] if all(f"{p} fn face" in r for r in rows for p in pipelines) else []),
             "", "### Per seed (F1, particles found, seconds)", "", C.md_table(rows, cols_seed)]
    C.publish("robustness_grid", lines, args, section=args.section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
