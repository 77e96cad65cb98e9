"""The headline number, bounded end to end: per-particle detachment error of the default analysis.

One demo electrode (``cycled-5C``, where detachment matters: mean detached share 0.55) is generated at 128³
and analysed with the default threshold analysis (``core.pipeline.run`` with default ``AnalysisParams``). Its
per-particle detachment is compared with a truth that does NOT come from ``core.metrics.particle_table`` (the
code under test): ``bench/_truth.py`` counts each true particle's voxel faces to pore and to CBD on the true
phases, leaving out faces to the generator's own cracks. The reference is itself checked on a hand-made
volume and against the generator's table on a small electrode.

Measured (cycled-5C, 128³, seed 0, commit dc2bcee + this test): median |detachment error| 0.0246, bias
(median signed error) −0.0018, CBD IoU 0.605, 162 matched particles with a detachment. Regressions this test
was checked to catch (applied by hand, never committed):

* pore | CBD cut after the partial-volume unmixing moved (``v < low`` → ``v < low * 0.97`` in
  ``core.phases``): median |error| 0.0398, bias −0.0343 (CBD IoU 0.606, unchanged);
* partial-volume correction off (``SegmentParams.partial_volume = False`` by default): median |error| 0.576,
  bias −0.576, CBD IoU 0.414.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from core.evaluate import match_instances, phase_iou
from core.pipeline import AnalysisParams, run
from core.synth import demo_electrode

ROOT = Path(__file__).resolve().parents[2]


def _load_truth():
    spec = importlib.util.spec_from_file_location("bench_truth", ROOT / "bench" / "_truth.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


truth = _load_truth()

# Bounds for cycled-5C, 128³, seed 0 (measured 0.0246 / -0.0018 / 0.605, see the module docstring).
MAX_MEDIAN_ABS_ERROR = 0.030  # the project's target; the 0.97 mutation gives 0.040
MAX_ABS_BIAS = 0.012  # the 0.97 mutation gives -0.034
MIN_CBD_IOU = 0.58  # partial-volume correction off gives 0.41
MIN_MATCHED = 150  # the medians are over enough particles (162 measured)


# --- the reference itself -------------------------------------------------------------------------------


def test_reference_face_counts_on_a_hand_made_volume():
    """A 2x2x2 particle in a 4x4x5 box: every face counted by hand, anisotropic spacing."""
    labels = np.zeros((4, 4, 5), np.int32)
    phases = np.zeros((4, 4, 5), np.uint8)  # pore
    labels[1:3, 1:3, 0:2] = 1  # touches the x = 0 edge
    phases[labels == 1] = 2
    phases[1:3, 1:3, 2] = 1  # CBD on its +x side
    labels[0, 1:3, 0:2] = 2  # a second particle on its -z side
    phases[0, 1:3, 0:2] = 2
    sp = (2.0, 1.0, 0.5)  # face areas: normal to z 0.5, to y 1.0, to x 2.0
    t = truth.face_counts(labels, phases, sp).loc[1]
    assert t["area_cbd_um2"] == pytest.approx(4 * 2.0)  # 4 faces normal to x
    assert t["area_particle_um2"] == pytest.approx(4 * 0.5)  # 4 faces normal to z
    assert t["area_edge_um2"] == pytest.approx(4 * 2.0)  # x = 0 end
    # pore: +z (4 faces, 0.5 each), -y and +y (2 x 4 faces, 1.0 each)
    assert t["area_pore_um2"] == pytest.approx(4 * 0.5 + 8 * 1.0)
    assert t["detachment"] == pytest.approx(10.0 / 18.0)
    # a crack inside particle 1 (a pore voxel, label 0) is not surface once the generator's mask says so
    labels[1, 1, 1] = 0
    phases[1, 1, 1] = 0
    cracks = np.zeros(labels.shape, bool)
    cracks[1, 1, 1] = True
    without = truth.face_counts(labels, phases, sp).loc[1]
    assert without["area_pore_um2"] > t["area_pore_um2"]  # the crack's faces seen as pore
    with_mask = truth.face_counts(labels, phases, sp, cracks=cracks).loc[1]
    assert with_mask["area_pore_um2"] == pytest.approx(t["area_pore_um2"])
    assert with_mask["detachment"] == pytest.approx(t["detachment"])


def test_reference_agrees_with_the_generator_table_on_a_small_electrode():
    """Reference and ``particle_table`` (the generator's truth table) validate each other.

    They agree exactly on every particle but those next to a crack cut open by the volume edge or bordering
    two particles: such a crack is a crack for the reference (the generator's mask says so) and pore for
    ``particle_table`` (it cannot know); there they differ by design, in one direction only.
    """
    e = demo_electrode("cycled-5C", rng=1, shape=(64, 64, 64))
    ref = truth.face_counts(e.labels, e.phases, e.spacing, cracks=e.extra["cracks"])
    tab = e.table.set_index("label").reindex(ref.index)
    assert len(ref) == len(e.table) > 20
    np.testing.assert_allclose(ref["area_cbd_um2"], tab["area_cbd_um2"], atol=1e-9)
    np.testing.assert_allclose(ref["area_particle_um2"], tab["area_particle_um2"], atol=1e-9)
    inner = ~np.isin(ref.index, truth.ambiguous_crack_particles(e.labels, e.extra["cracks"]))
    assert inner.sum() >= 15 and (~tab["touches_edge"].to_numpy(bool)).sum() >= 5
    for col in ("area_pore_um2", "area_edge_um2", "detachment"):
        np.testing.assert_allclose(ref[col][inner], tab[col][inner], atol=1e-9, err_msg=col)
    # elsewhere only crack faces move, from pore (table) to inside / edge / another particle (reference)
    assert np.all(ref["area_pore_um2"] <= tab["area_pore_um2"] + 1e-9)
    assert np.all(ref["area_edge_um2"] >= tab["area_edge_um2"] - 1e-9)
    differ = ~np.isclose(ref["detachment"], tab["detachment"])
    assert differ.sum() <= 0.3 * len(ref)  # 8 of 33 measured


# --- the headline number --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def headline():
    e = demo_electrode("cycled-5C", rng=0, shape=(128, 128, 128))
    r = run(e.greyscale, spacing=e.spacing, params=AnalysisParams())
    ref = truth.face_counts(e.labels, e.phases, e.spacing, cracks=e.extra["cracks"])
    err = truth.detachment_errors(ref, r.table, match_instances(e.labels, r.labels), min_iou=0.5)
    return err, phase_iou(e.phases, r.phases)


def test_default_analysis_detachment_error_is_bounded(headline):
    err, _ = headline
    assert err.size >= MIN_MATCHED
    med_abs = float(np.median(np.abs(err)))
    assert med_abs <= MAX_MEDIAN_ABS_ERROR, f"median |detachment error| {med_abs:.4f}"


def test_default_analysis_detachment_bias_is_bounded(headline):
    err, _ = headline
    bias = float(np.median(err))
    assert abs(bias) <= MAX_ABS_BIAS, f"detachment bias (median signed error) {bias:+.4f}"


def test_default_analysis_cbd_iou_is_bounded(headline):
    _, iou = headline
    assert iou["cbd"] >= MIN_CBD_IOU, iou
