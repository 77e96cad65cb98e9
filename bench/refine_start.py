"""Where the phase refinement starts from, and whether its energy can tell which start fits a scan.

The real calendered electrode's geometry read back as a greyscale scan (``bench/real_geometry_grey.py``) is read
0.14-0.27 too detached by the default path, while the demo electrodes are read within about 0.03: the partial-volume
correction (:mod:`core.phases.partial_volume`) turns thin CBD films (1-3 voxels, as the real volume's generated CBD)
into pore and lets NMC grow into CBD, and the refinement (:mod:`core.phases.forward`) starts from its reading.  Here
every scan is analysed three ways:

- ``default``: ``AnalysisParams()`` (refined only where the blur reads at least ``core.seeding.AUTO_BLUR``);
- ``from PV``: ``refine="on"``: the refinement from the partial-volume-corrected phases (today's refinement);
- ``from thresholds``: ``refine="on"`` with ``SegmentParams(partial_volume=False)``: the refinement from the plain
  two-threshold phases;

and the forward energy of the two refined phase sets (:func:`core.phases.forward.forward_energy`, the same blur,
noise and pure grey values for both: those the ``from PV`` run read) is compared: ``E(thr) - E(PV)`` below 0 means
the model explains the scan better from the thresholds.  Scans: the three demo electrodes (160³, seed 0, blur
0.75 / 1.0 / 1.2 voxel), the real calendered geometry (crops A and B of ``real_geometry_grey``, blur 0.6 / 1.0),
and 128³ sphere packings (``core.synth.make_sphere_packing``, seed 3, radius 7 / 14, blur 0.9 / 1.2, noise 0.05 /
0.10 of the contrast).  Error = median signed detachment error of the matched particles (synthetic scans) or
median detachment minus the true phases' (the real geometry, whose particles are not matched one to one).

A session-49 exploration: nothing in ``core`` uses this choice yet.

Usage:  python bench/refine_start.py [--quick]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)
from accuracy_synthetic import _det_stats, _inst
from real_geometry_grey import CROPS, DATA, SPACING, grey_of


def _runs(grey, spacing):
    from core.phases import SegmentParams, phase_references
    from core.phases.forward import forward_energy
    from core.pipeline import AnalysisParams, run

    variants = {"default": AnalysisParams(separator_side="start"),
                "from PV": AnalysisParams(refine="on", separator_side="start"),
                "from thresholds": AnalysisParams(refine="on", separator_side="start",
                                                  segment=SegmentParams(partial_volume=False))}
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, p in variants.items():
            out[k] = run(grey, p, spacing=spacing)
    info = out["from PV"].provenance["phase_refinement"]
    refs = phase_references(grey, out["from PV"].phases)
    e = {k: forward_energy(grey, out[k].phases, blur=info["blur"], noise=info["noise"], references=refs)
         for k in ("from PV", "from thresholds")}
    return out, e["from thresholds"] - e["from PV"], info["blur"]


def _faces(true: np.ndarray, est: np.ndarray) -> np.ndarray:
    """(3, 3) counts over the faces between a true NMC voxel and a true non-NMC one: rows the true phase of the
    non-NMC voxel (pore, CBD, NMC), columns the phase ``est`` gives that voxel."""
    from core.codes import NMC

    out = np.zeros((3, 3), np.int64)
    for axis in range(3):
        a, b = np.moveaxis(true, axis, 0), np.moveaxis(est, axis, 0)
        for inner, outer, guess in ((a[:-1], a[1:], b[1:]), (a[1:], a[:-1], b[:-1])):
            m = (inner == NMC) & (outer != NMC)
            np.add.at(out, (outer[m], guess[m]), 1)
    return out


def from_truth(whole: np.ndarray, quick: bool) -> tuple[list[dict], tuple]:
    """The refinement started from the true phases of crop A at blur 1.0 (the model's own blur, noise and grey
    values): noise-free and noisy scan, beta 0 and the default."""
    from scipy import ndimage as ndi

    from real_geometry_grey import LEVELS, NOISE
    from core.codes import CBD, NMC, PORE
    from core.phases.forward import BETA, SWEEPS, refine_phases

    crop = CROPS["A"] if not quick else tuple(slice(s.start, s.start + 48) for s in CROPS["A"])
    ph = np.ascontiguousarray(whole[crop])
    blur = 1.0
    clean = np.zeros(ph.shape, np.float32)
    for code, name in ((PORE, "pore"), (CBD, "cbd"), (NMC, "nmc")):
        clean[ph == code] = LEVELS[name]
    clean = ndi.gaussian_filter(clean, blur).astype(np.float32)
    rows = []
    for label, img in (("none", clean), (f"{NOISE}", grey_of(ph, blur, seed=1))):
        for beta in (0.0, BETA):
            new, info = refine_phases(img, ph, blur=blur, noise=NOISE, references=tuple(LEVELS.values()),
                                      beta=beta, sweeps=SWEEPS, moves="all")
            f = _faces(ph, new)
            rows.append({"noise": label, "beta": beta, "voxels changed": int(sum(info["changes"])),
                         "true pore faces: pore / CBD / NMC": "/".join(str(int(v)) for v in f[PORE]),
                         "true CBD faces: pore / CBD / NMC": "/".join(str(int(v)) for v in f[CBD])})
            C.print_row(rows[-1])
    return rows, ph.shape


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_common_args(ap)
    args = ap.parse_args(argv)
    from core.synth import DEMO_ELECTRODES, ImagingParams, PackingParams, make_electrode, make_sphere_packing

    title = "## Where the phase refinement starts from, and its energy (`bench/refine_start.py`)" + \
            (" — QUICK smoke run" if args.quick else "")
    import os

    t_start, load0 = time.perf_counter(), os.getloadavg()
    rows = []

    def add(scan, blur, out, de, blur_read, err):
        row = {"scan": scan, "blur (vox)": blur, "blur read": blur_read}
        for k, r in out.items():
            row[f"{k} error"] = err(r)
        row["E(thr) - E(PV)"] = de
        better = "thresholds" if abs(row["from thresholds error"]) < abs(row["from PV error"]) else "PV"
        row["energy picks"] = "thresholds" if de < 0 else "PV"
        row["closer start"] = better
        rows.append(row)
        C.print_row(row)

    demos = list(DEMO_ELECTRODES)[:1] if args.quick else list(DEMO_ELECTRODES)
    for name in demos:
        for blur in ((1.0,) if args.quick else (0.75, 1.0, 1.2)):
            p = DEMO_ELECTRODES[name]
            if args.quick:
                from dataclasses import replace
                p = replace(p, shape=(64, 64, 64))
            e = make_electrode(p, ImagingParams(blur_um=blur * float(min(p.spacing))), rng=0, name=name)
            out, de, br = _runs(e.greyscale, e.spacing)
            add(f"demo {name}", blur, out, de, br,
                lambda r, e=e: _det_stats(e.table, r.table, e.labels, r.labels)["med_signed"])
    if DATA.exists():
        from core.io import load_phases
        from core.pipeline import AnalysisParams, run

        whole = load_phases(DATA, {0: "pore", 1: "nmc", 2: "cbd"}).data
        for c in (("A",) if args.quick else ("A", "B")):
            crop = CROPS[c] if not args.quick else tuple(slice(s.start, s.start + 48) for s in CROPS[c])
            ph = np.ascontiguousarray(whole[crop])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t = float(run(ph, AnalysisParams(separator_side="start"), spacing=SPACING,
                              presegmented=True).table["detachment"].median())
            for i, blur in enumerate((0.6, 1.0)):
                out, de, br = _runs(grey_of(ph, blur, seed=i), SPACING)
                add(f"real geometry {c}", blur, out, de, br, lambda r, t=t: float(r.table["detachment"].median()) - t)
        truth_rows, truth_shape = from_truth(whole, args.quick)
    else:
        rows.append({"scan": f"real geometry: SKIPPED, {DATA.name} absent"})
        truth_rows, truth_shape = [], None
    for radius in ((7.0,) if args.quick else (7.0, 14.0)):
        for blur in ((1.2,) if args.quick else (0.9, 1.2)):
            for noise in ((0.05,) if args.quick else (0.05, 0.10)):
                pp = PackingParams(radius_median_um=radius, blur_voxels=blur, noise_contrast=noise,
                                   **({"shape": (64, 64, 64)} if args.quick else {}))
                e = make_sphere_packing(pp, rng=3)
                out, de, br = _runs(e.greyscale, e.spacing)
                add(f"packing r{radius:g} noise {noise:g}", blur, out, de, br,
                    lambda r, e=e: _det_stats(e.table, r.table, e.labels, r.labels)["med_signed"])
                rows[-1]["F1 from PV / from thresholds"] = "/".join(
                    f"{_inst(e.labels, out[k].labels)[0]:.3f}" for k in ("from PV", "from thresholds"))
    picked = [r for r in rows if "energy picks" in r]
    agree = sum(r["energy picks"] == r["closer start"] for r in picked)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    paragraphs = __doc__.split("\n\n")
    lines = [title, "", *C.env_lines(), f"- script wall time: {time.perf_counter() - t_start:.0f} s",
             C.load_line(load0), ""]
    for p in paragraphs[1:4]:
        lines += [" ".join(p.split()) if not p.startswith("- ") else p, ""]
    lines += [f"The energy picks the start whose median error is the smaller in {agree} of {len(picked)} scans.",
              "", C.md_table(rows, columns)]
    if truth_rows:
        lines += ["", "### The refinement started from the true phases (real geometry, crop A, blur 1.0 voxel)", "",
                  "The model's own blur (1.0), noise (the bench's sigma) and grey values; two sweeps, every move. "
                  "Counted over the faces between a true NMC voxel and a true pore or CBD voxel: the phase the "
                  "refined result gives the outer voxel.", "",
                  "Voxels changed: noise-free without the prior " + str(truth_rows[0]["voxels changed"]) +
                  ", noisy without the prior " + str(truth_rows[2]["voxels changed"]) + " (of " +
                  f"{int(np.prod(truth_shape)):,}): where the noise-free truth stays, what the noisy one loses is the "
                  "noise's doing, not the model's.", "", C.md_table(truth_rows)]
    C.publish("refine_start", lines, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
