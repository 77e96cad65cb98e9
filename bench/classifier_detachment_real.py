"""The brush-stroke classifier's detachment on the real nano-CT slices, against the same analysis of the expert labels.

The demo electrodes show the classifier's edge bias one way (the blurred particle edge read as CBD: detachment too
low, ``bench/classifier_detachment.py``); here the real labelled slices (``../shared/data/real/nanoct_nmc_slices``):
for each acquisition A, B, D the classifier is trained on simulated strokes on each of its slices in turn
(``accuracy_real.simulate_strokes``, seed = the slice number, at least 1,000 pixels per phase; inside each phase, or
half of each phase's pixels along its edges) and classifies every slice of the acquisition; the classifier's phases
and the expert labels are each analysed as already-segmented phases (``core.pipeline.run(presegmented=True)``,
default separation, voxel 1 µm as in ``bench/accuracy_real``) and their median detachment compared.  With
``--painted 2`` the classifier is trained on strokes on each PAIR of slices of an acquisition (the dashboard lets a
scientist paint on several slices) and scored on the slices not painted.  Skipped with a message where the data
folder is absent.

Usage:  python bench/classifier_detachment_real.py [--painted 1|2] [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
import warnings

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)
from accuracy_real import ACQ, DATA, LABEL_MAP, simulate_strokes

STROKES = {"inside": 0.0, "edges": 0.5}


def _slices(acq: str):
    import tifffile

    from core.io import apply_phase_map

    numbers, shape = ACQ[acq]
    out = []
    for p in sorted(DATA.glob("raw_*_label.tif"), key=lambda p: int(p.stem.split("_")[1])):
        n = int(p.stem.split("_")[1])
        grey = tifffile.imread(DATA / f"raw_{n}.tif").astype(np.float32)
        if n in numbers and grey.shape == shape:
            out.append((n, grey, apply_phase_map(tifffile.imread(p), LABEL_MAP, name=p.name)))
    return out


def _analysed(phases: np.ndarray) -> tuple[float, int]:
    from core.pipeline import AnalysisParams, run

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = run(phases[None], AnalysisParams(), spacing=1.0, presegmented=True).table
    return float(table["detachment"].median()), len(table)


def main(argv=None) -> int:
    from core.classify import ClassifierParams, train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--painted", type=int, choices=(1, 2), default=1,
                    help="slices painted together (each slice, or each pair of slices, in turn)")
    C.add_common_args(ap)
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"skipped: {DATA} is missing (the shared real data)")
        return 0
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    params = ClassifierParams()
    rows, per_training = [], []
    for acq in ("A",) if args.quick else ("A", "B", "D"):
        slices = _slices(acq)[:2] if args.quick else _slices(acq)
        labels = {n: _analysed(truth) for n, _, truth in slices}
        for kind, share in STROKES.items():
            for painted in itertools.combinations(slices, args.painted):  # each slice (pair) in turn
                names = tuple(n0 for n0, _, _ in painted)
                clf = train([g0 for _, g0, _ in painted],
                            [simulate_strokes(truth0, seed=n0, edge_share=share) for n0, _, truth0 in painted],
                            1.0, params)
                mine = []
                for n, grey, truth in slices:
                    phases = clf.predict(grey, 1.0)[0][0]
                    iou = [((phases == c) & (truth == c)).sum() / ((phases == c) | (truth == c)).sum()
                           for c in range(3)]
                    det, count = _analysed(phases)
                    mine.append({"acquisition": acq, "strokes": kind, "trained on": names, "slice": n,
                                 "painted": n in names,
                                 "mean IoU": float(np.mean(iou)), "classifier": det, "labels": labels[n][0],
                                 "difference": det - labels[n][0], "particles": count, "label particles": labels[n][1],
                                 "pore share": float(np.mean(phases == 0)), "label pore share":
                                     float(np.mean(truth == 0))})
                own = [r for r in mine if r["painted"]]
                others = [r for r in mine if not r["painted"]] or own
                rows += others
                diff = np.array([r["difference"] for r in others])
                per_training.append({
                    "acquisition": acq, "strokes": kind, "painted": " + ".join(f"raw_{n}" for n in names),
                    "painted: median detachment (classifier / labels)":
                        ", ".join(f"{r['classifier']:.2f} / {r['labels']:.2f}" for r in own),
                    "other slices: mean IoU": float(np.mean([r["mean IoU"] for r in others])),
                    "other slices: difference (mean)": float(diff.mean()),
                    "other slices: difference (range)": f"{diff.min():+.2f} to {diff.max():+.2f}",
                    "painted: pore share (classifier / labels)":
                        ", ".join(f"{r['pore share']:.3f} / {r['label pore share']:.3f}" for r in own)})
                C.print_row(per_training[-1])
    summary = []
    for key, group in C.grouped(rows, ("acquisition", "strokes")):
        diff = np.array([r["difference"] for r in group])
        summary.append({**key, "pairs (painted, classified)": len(group),
                        "mean IoU": float(np.mean([r["mean IoU"] for r in group])),
                        "difference, absolute (mean)": float(np.abs(diff).mean()),
                        "classifier median detachment (range)":
                            f"{min(r['classifier'] for r in group):.2f}-{max(r['classifier'] for r in group):.2f}",
                        "labels (range)": f"{min(r['labels'] for r in group):.2f}-{max(r['labels'] for r in group):.2f}",
                        "difference (mean)": float(diff.mean()),
                        "difference (range)": f"{diff.min():+.2f} to {diff.max():+.2f}",
                        "pairs with difference > +0.3 / < -0.1": f"{int((diff > 0.3).sum())} / {int((diff < -0.1).sum())}"})
    total = time.perf_counter() - t0
    painted = "each slice" if args.painted == 1 else "each pair of slices"
    description = ("Classifier (default `ClassifierParams`) trained on simulated strokes on "
                   f"{painted} of an acquisition in turn, scored on the slices not painted (the 'per painted' table "
                   "also gives the painted slices' own readings); the classifier's phases and the expert labels analysed alike "
                   "(already-segmented phases, default separation, voxel 1 µm). Difference = classifier − labels "
                   "(negative: the classifier's phases hide detachment).")
    lines = C.section_lines("Brush-stroke classifier: detachment on the real nano-CT slices against their labels "
                            f"(`bench/classifier_detachment_real.py{'' if args.painted == 1 else ' --painted 2'}`)"
                            f"{' — QUICK smoke run' if args.quick else ''}",
                            total, load0, description, {"Per acquisition and strokes (every painted and classified slice not painted)": summary,
                             "Per painted slice" + ("" if args.painted == 1 else "s"): per_training})
    C.publish("classifier_detachment_real" + ("" if args.painted == 1 else "_two"), lines, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
