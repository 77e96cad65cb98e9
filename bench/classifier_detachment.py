"""The brush-stroke classifier's detachment on the demo electrodes, against the generator's truth and the thresholds.

A classifier trained on strokes painted inside each phase never sees the blurred edge between NMC and pore, whose
grey values lie between the two, like CBD's: it reads that edge as CBD, a shell around the particles that covers
their detached surface.  The threshold method models this edge (partial-volume correction); the classifier does not.
Here each demo electrode is analysed by thresholds (the default) and by the classifier of simulated strokes on three
z-slices (``bench/accuracy_real.py``'s :func:`simulate_strokes`: inside each phase, or half of each phase's pixels
along its edges), and the classifier's phases once more after the threshold path's partial-volume correction and
after the forward-model refinement (``refine="on"``'s step), each separated as already-segmented phases.  Scores:
per-phase IoU against the truth, particles found, the median detachment and the median |error| and bias of the
matched particles' detachment.

Usage:  python bench/classifier_detachment.py [--seeds 4] [--per-phase 250] [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from dataclasses import replace

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)
from accuracy_real import simulate_strokes
from core.classify import ClassifierParams, save_training
from core.evaluate import detachment_errors, match_instances
from core.phases import correct_partial_volume, estimate_pv_sigma, phase_references
from core.phases.forward import BETA, SWEEPS, refine_phases
from core.phases.threshold import _interior_references
from core.pipeline import AnalysisParams, run
from core.scribbles import Scribbles, classifier_pairs
from core.seeding import _estimate_blur, estimate_noise
from core.synth import DEMO_ELECTRODES, make_electrode

#: The painted z-slices, as shares of the depth.
PAINTED = (0.31, 0.5, 0.69)
#: The stroke simulations: share of each phase's painted pixels along its edges.
STROKES = {"inside": 0.0, "edges": 0.5}


def _scores(e, phases, result) -> dict:
    iou = [((phases == c) & (e.phases == c)).sum() / ((phases == c) | (e.phases == c)).sum() for c in range(3)]
    err = detachment_errors(e.table, result.table, match_instances(e.labels, result.labels))["error"].dropna()
    return {"IoU pore / CBD / NMC": " / ".join(f"{v:.3f}" for v in iou), "particles": len(result.table),
            "true particles": len(e.table), "median detachment": float(result.table["detachment"].median()),
            "true median": float(e.table["detachment"].median()), "median abs error": float(err.abs().median()),
            "bias (median error)": float(err.median())}


def _corrected(grey, phases):
    """The threshold path's partial-volume correction of ``phases`` (pore / CBD cut at the midpoint of their pure
    grey values read on ``phases``, the blur fitted to the image)."""
    v = grey.astype(np.float32)
    refs = _interior_references(v, phases)
    return correct_partial_volume(v, phases, 0.5 * (refs[0] + refs[1]), sigma=estimate_pv_sigma(v, phases),
                                  i_nmc=refs[2])


def _refined(grey, phases):
    """The forward-model refinement of ``phases`` (every phase may move; the pipeline's ``refine="on"`` step)."""
    blur, _ = _estimate_blur(grey, phases)
    new, _ = refine_phases(grey, phases.copy(), blur=blur, noise=estimate_noise(grey, phases),
                           references=phase_references(grey, phases), beta=BETA, sweeps=SWEEPS, moves="all")
    return new


def one(name: str, shape, seed: int, per_phase: int) -> list[dict]:
    e = make_electrode(replace(DEMO_ELECTRODES[name], shape=shape), rng=seed, name=name)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        thr = run(e.greyscale, spacing=e.spacing)
        rows.append({"electrode": name, "seed": seed, "phases": "thresholds (default)", **_scores(e, thr.phases, thr)})
        for strokes, edge in STROKES.items():
            sc = Scribbles.empty(shape)
            for f in PAINTED:
                z = int(round(f * (shape[0] - 1)))
                sc = sc.with_slice(0, z, simulate_strokes(e.phases[z], seed=z, per_phase=per_phase, erode=1,
                                                          edge_share=edge))
            images, labels, spacings = classifier_pairs(e.greyscale, sc, e.spacing)
            with tempfile.TemporaryDirectory() as d:
                save_training(d, images, labels, spacings, ClassifierParams())
                r = run(e.greyscale, AnalysisParams(method="classifier", classifier=d), spacing=e.spacing)
            painted = "/".join(str(c) for c in sc.counts())
            base = {"electrode": name, "seed": seed, "painted pore/CBD/NMC": painted}
            rows.append({**base, "phases": f"classifier ({strokes} strokes)", **_scores(e, r.phases, r)})
            for what, fix in (("+ partial-volume correction", _corrected), ("+ forward-model refinement", _refined)):
                ph = fix(e.greyscale, r.phases)
                rows.append({**base, "phases": f"classifier ({strokes} strokes) {what}",
                             **_scores(e, ph, run(ph, spacing=e.spacing, presegmented=True))})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_common_args(ap)
    ap.add_argument("--seeds", type=int, nargs="+", default=[4])
    ap.add_argument("--per-phase", type=int, default=250, help="painted pixels per phase and slice (default 250)")
    args = ap.parse_args(argv)
    shape = (64, 96, 96) if args.quick else (128, 128, 128)
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    rows = []
    for seed in args.seeds[:1] if args.quick else args.seeds:
        for name in DEMO_ELECTRODES:
            new = one(name, shape, seed, args.per_phase)
            for r in new:
                C.print_row(r)
            rows += new
    total = time.perf_counter() - t0
    cols = ["electrode", "seed", "phases", "painted pore/CBD/NMC", "IoU pore / CBD / NMC", "particles",
            "true particles", "median detachment", "true median", "median abs error", "bias (median error)"]
    rows = [{c: r.get(c, "") for c in cols} for r in rows]
    C.publish("classifier_detachment", C.section_lines(
        "The brush-stroke classifier's detachment on the demo electrodes (`bench/classifier_detachment.py`)", total,
        load_start,
        f"Demo electrodes at {'×'.join(map(str, shape))} voxels (0.4 µm, seeds as in the table). 'thresholds': the "
        "default analysis. 'classifier': `core.classify` with default `ClassifierParams` trained on strokes "
        f"simulated on the z-slices at {', '.join(f'{f:.0%}' for f in PAINTED)} of the depth (`bench/accuracy_real.py`"
        f"'s `simulate_strokes`, 3-px brush, {args.per_phase} px per phase and slice, stroke centres one pixel inside "
        "the phase; 'edges': half of them along each phase's edges), the whole analysis (`method=\"classifier\"`). "
        "'+ partial-volume correction': its phases corrected as the threshold path corrects its own "
        "(`correct_partial_volume`, pore / CBD cut at the midpoint of their pure grey values read on the classifier's "
        "phases, blur fitted by `estimate_pv_sigma`); '+ forward-model refinement': `core.phases.forward.refine_phases` "
        "with every phase free to move (the pipeline's `refine=\"on\"` step, blur and noise read on the classifier's "
        "phases); both then separated as already-segmented phases. Errors: found minus true detachment of the "
        "particles matched at IoU > 0.5.", {"Per electrode": rows}), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
