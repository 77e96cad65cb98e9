"""Known-answer tests for core.evaluate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.evaluate import IOU_THRESHOLDS, detachment_errors, instance_scores, match_instances, phase_iou


def boxes():
    """Two 4x4x4 particles (64 voxels each) in a 6x6x12 volume."""
    lab = np.zeros((6, 6, 12), np.int32)
    lab[1:5, 1:5, 1:5] = 1
    lab[1:5, 1:5, 7:11] = 2
    return lab


def test_thresholds():
    assert IOU_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def test_identical_labels_score_one_everywhere():
    lab = boxes()
    lab[0, 0, 0] = 5  # non-contiguous ids are fine
    s = instance_scores(lab, lab)
    assert s["threshold"].tolist() == list(IOU_THRESHOLDS)
    assert (s["tp"] == 3).all() and (s["fp"] == 0).all() and (s["fn"] == 0).all()
    assert (s["f1"] == 1.0).all() and (s["ap"] == 1.0).all()
    assert (s["precision"] == 1.0).all() and (s["recall"] == 1.0).all()
    # renumbering does not matter
    renum = np.select([lab == 1, lab == 2, lab == 5], [9, 3, 1], 0).astype(np.int32)
    pd.testing.assert_frame_equal(instance_scores(lab, renum), s)


def test_particle_split_in_two_halves():
    true = boxes()
    pred = true.copy()
    pred[1:5, 1:5, 9:11] = 3  # particle 2 split into two halves of 32 voxels: IoU 0.5 each
    pairs = match_instances(true, pred).sort_values(["true", "pred"]).reset_index(drop=True)
    assert pairs["true"].tolist() == [1, 2, 2]
    assert pairs["pred"].tolist() == [1, 2, 3]
    assert pairs["iou"].tolist() == [1.0, 0.5, 0.5]
    s = instance_scores(true, pred, thresholds=[0.5]).iloc[0]
    # IoU must exceed the threshold: only particle 1 matches
    assert (s["tp"], s["fp"], s["fn"]) == (1, 2, 1)
    assert s["precision"] == pytest.approx(1 / 3)
    assert s["recall"] == pytest.approx(1 / 2)
    assert s["f1"] == pytest.approx(2 * 1 / (2 * 1 + 2 + 1))  # 0.4
    assert s["ap"] == pytest.approx(1 / (1 + 2 + 1))  # 0.25


def test_unequal_split_keeps_the_bigger_part():
    true = boxes()
    pred = true.copy()
    pred[1:5, 1:5, 10] = 3  # 48 / 64 = 0.75 stays with label 2, 16 / 64 = 0.25 is label 3
    s = instance_scores(true, pred, thresholds=[0.5, 0.7, 0.75, 0.8]).set_index("threshold")
    assert s.loc[0.5, "tp"] == 2 and s.loc[0.5, "fp"] == 1 and s.loc[0.5, "fn"] == 0
    assert s.loc[0.7, "tp"] == 2
    assert s.loc[0.75, "tp"] == 1  # 0.75 does not exceed 0.75
    assert s.loc[0.8, "tp"] == 1 and s.loc[0.8, "fn"] == 1 and s.loc[0.8, "fp"] == 2


def test_missing_and_extra_particles():
    true = boxes()
    pred = np.zeros_like(true)
    pred[1:5, 1:5, 1:5] = 1
    pred[0, 0, 11] = 2  # spurious
    s = instance_scores(true, pred, thresholds=[0.5]).iloc[0]
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 1)
    assert s["f1"] == 0.5 and s["ap"] == pytest.approx(1 / 3)
    empty = instance_scores(np.zeros_like(true), np.zeros_like(true), thresholds=[0.5]).iloc[0]
    assert empty["tp"] == 0 and np.isnan(empty["f1"]) and np.isnan(empty["precision"])


def test_thresholds_below_half_rejected():
    with pytest.raises(ValueError, match=r"below 0.5 do not give unique matches"):
        instance_scores(boxes(), boxes(), thresholds=[0.3])


def test_match_instances_rejects_shape_mismatch():
    with pytest.raises(ValueError, match=r"pred shape \(6, 6, 11\) does not match phases shape \(6, 6, 12\)"):
        match_instances(boxes(), boxes()[:, :, :11])


def test_phase_iou_exact():
    true = np.array([0, 0, 0, 1, 1, 2, 2, 2], np.uint8).reshape(2, 2, 2)
    pred = np.array([0, 0, 1, 1, 2, 2, 2, 0], np.uint8).reshape(2, 2, 2)
    iou = phase_iou(true, pred)
    # pore: inter {0,1}, union {0,1,2,7} -> 2/4; CBD: inter {3}, union {2,3,4} -> 1/3;
    # NMC: inter {5,6}, union {4,5,6,7} -> 2/4
    assert iou == {"pore": 0.5, "cbd": pytest.approx(1 / 3), "nmc": 0.5}
    assert phase_iou(true, true) == {"pore": 1.0, "cbd": 1.0, "nmc": 1.0}
    no_cbd = np.zeros((2, 2, 2), np.uint8)
    r = phase_iou(no_cbd, no_cbd)
    assert r["pore"] == 1.0 and np.isnan(r["cbd"]) and np.isnan(r["nmc"])


def test_phase_iou_validation():
    with pytest.raises(ValueError, match=r"shapes differ"):
        phase_iou(np.zeros((2, 2, 2), np.uint8), np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match=r"pred must hold only the codes .* found \[3\]"):
        phase_iou(np.zeros((2, 2, 2), np.uint8), np.full((2, 2, 2), 3, np.uint8))


def test_detachment_errors():
    true_t = pd.DataFrame({"label": [1, 2, 3], "detachment": [0.1, 0.5, np.nan]})
    pred_t = pd.DataFrame({"label": [7, 8, 9], "detachment": [0.2, 0.3, 0.4]})
    pairs = pd.DataFrame({"true": [1, 2, 3, 1], "pred": [7, 8, 9, 8], "iou": [0.9, 0.6, 0.8, 0.1]})
    out = detachment_errors(true_t, pred_t, pairs)
    assert out["true_label"].tolist() == [1, 2, 3]
    assert out["pred_label"].tolist() == [7, 8, 9]
    np.testing.assert_allclose(out["error"].to_numpy(), [0.1, -0.2, np.nan])
    assert len(detachment_errors(true_t, pred_t, pairs, min_iou=0.7)) == 2
