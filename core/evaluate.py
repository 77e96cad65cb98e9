"""Accuracy measures against ground truth: phase IoU, instance matching, detachment error."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._validate import check_labels, check_phases

IOU_THRESHOLDS: tuple[float, ...] = tuple(np.round(np.arange(0.5, 0.96, 0.05), 2))


def phase_iou(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Per-phase intersection over union.

    Parameters
    ----------
    true, pred : (Z, Y, X) uint8 phase codes

    Returns
    -------
    dict
        ``{"pore": iou, "cbd": iou, "nmc": iou}``; NaN for a phase absent from both.
    """
    true, pred = check_phases(true, "true"), check_phases(pred, "pred")
    if true.shape != pred.shape:
        raise ValueError(f"shapes differ: true {true.shape}, pred {pred.shape}")
    out = {}
    for code, name in enumerate(("pore", "cbd", "nmc")):
        t, p = true == code, pred == code
        union = np.count_nonzero(t | p)
        out[name] = np.count_nonzero(t & p) / union if union else float("nan")
    return out


def match_instances(true: np.ndarray, pred: np.ndarray) -> pd.DataFrame:
    """IoU of every overlapping (true, pred) label pair.

    Returns
    -------
    DataFrame
        Columns ``true``, ``pred``, ``iou``; one row per overlapping pair.
    """
    true, pred = check_labels(true, name="true"), check_labels(pred, true.shape, name="pred")
    t = true.ravel().astype(np.int64)
    p = pred.ravel().astype(np.int64)
    both = (t > 0) & (p > 0)
    n_p = int(p.max()) + 1
    key, inter = np.unique(t[both] * n_p + p[both], return_counts=True)
    tl, pl = key // n_p, key % n_p
    size_t = np.bincount(t, minlength=int(t.max()) + 1)
    size_p = np.bincount(p, minlength=n_p)
    iou = inter / (size_t[tl] + size_p[pl] - inter)
    return pd.DataFrame({"true": tl, "pred": pl, "iou": iou})


def instance_scores(true: np.ndarray, pred: np.ndarray, thresholds=IOU_THRESHOLDS) -> pd.DataFrame:
    """Detection scores at each IoU threshold.

    A true and a predicted particle match when their IoU exceeds the
    threshold (for thresholds >= 0.5 a match is unique).  ``ap`` is
    ``TP / (TP + FP + FN)``, the average-precision measure used by StarDist and
    Cellpose for segmentations without confidence scores.

    Returns
    -------
    DataFrame
        One row per threshold: ``threshold, tp, fp, fn, precision, recall, f1, ap``.
    """
    pairs = match_instances(true, pred)
    n_true = len(np.setdiff1d(np.unique(true), [0]))
    n_pred = len(np.setdiff1d(np.unique(pred), [0]))
    rows = []
    for th in thresholds:
        if th < 0.5:
            raise ValueError("IoU thresholds below 0.5 do not give unique matches")
        tp = int((pairs["iou"] > th).sum())
        fp, fn = n_pred - tp, n_true - tp
        rows.append({
            "threshold": float(th), "tp": tp, "fp": fp, "fn": fn,
            "precision": tp / n_pred if n_pred else float("nan"),
            "recall": tp / n_true if n_true else float("nan"),
            "f1": 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else float("nan"),
            "ap": tp / (tp + fp + fn) if (tp + fp + fn) else float("nan"),
        })
    return pd.DataFrame(rows)


def detachment_errors(true_table: pd.DataFrame, pred_table: pd.DataFrame, pairs: pd.DataFrame,
                      min_iou: float = 0.5) -> pd.DataFrame:
    """Per matched particle: true and measured detachment and their difference.

    Parameters
    ----------
    true_table, pred_table : DataFrame
        Particle tables (``label``, ``detachment``).
    pairs : DataFrame
        From :func:`match_instances`.
    min_iou : float
        Only pairs above this IoU count as the same particle.
    """
    m = pairs[pairs["iou"] > min_iou]
    t = true_table.set_index("label")["detachment"]
    p = pred_table.set_index("label")["detachment"]
    out = pd.DataFrame({
        "true_label": m["true"].to_numpy(), "pred_label": m["pred"].to_numpy(),
        "true": t.reindex(m["true"]).to_numpy(), "pred": p.reindex(m["pred"]).to_numpy(),
    })
    out["error"] = out["pred"] - out["true"]
    return out
