"""Tests for core.pipeline: parameters, provenance, reproducibility, end-to-end accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import _kernels as K
from core import pipeline
from core.codes import NMC
from core.evaluate import instance_scores, phase_iou
from core.metrics import COLUMNS
from core.particles import SeparationParams
from core.phases import SegmentParams
from core.pipeline import AnalysisParams, checksum, run
from core.synth import ElectrodeParams, make_electrode


@pytest.fixture(scope="module")
def elec():
    return make_electrode(ElectrodeParams(shape=(48, 48, 48), radius_median_um=3, spacing=(0.5, 0.5, 0.5)), rng=1)


@pytest.fixture(scope="module")
def result(elec):
    return run(elec.greyscale, spacing=elec.spacing)


# --------------------------------------------------------------------------- parameters


CUSTOM = AnalysisParams(
    segment=SegmentParams(denoise="median", denoise_size=3, low=0.2, high=0.6, partial_volume=False,
                          pv_sigma=1.1, min_island=4),
    separation=SeparationParams(fill_cracks=False, markers="peaks", h_um=0.3, min_distance_um=1.5,
                                merge_ratio=0.8, min_volume_um3=2.0),
    axis=2,
    separator_side="end",
)


@pytest.mark.parametrize("params", [AnalysisParams(), CUSTOM], ids=["default", "custom"])
def test_params_round_trip_through_json(params):
    d = params.to_dict()
    assert set(d) == {"method", "segment", "separation", "axis", "separator_side", "model", "particles", "seeding",
                      "refine", "depth_from"}
    back = AnalysisParams.from_dict(json.loads(json.dumps(d)))
    assert back == params
    assert isinstance(back.segment, SegmentParams) and isinstance(back.separation, SeparationParams)


def test_depth_from_defaults_to_the_electrode_and_reads_as_the_volume_where_written_before_it():
    assert AnalysisParams().depth_from == "electrode" and AnalysisParams().to_dict()["depth_from"] == "electrode"
    old = AnalysisParams(depth_from="volume")
    assert "depth_from" not in old.to_dict()  # written as before the key
    assert AnalysisParams.from_dict(old.to_dict()) == old
    assert AnalysisParams.from_dict({"axis": 1}).depth_from == "volume"
    with pytest.raises(ValueError, match="depth_from"):
        AnalysisParams(depth_from="sample")


def test_params_from_partial_dict_uses_defaults():
    p = AnalysisParams.from_dict({"axis": 1, "segment": {"low": 0.1, "high": 0.5}})
    assert p.axis == 1 and p.segment == SegmentParams(low=0.1, high=0.5)
    assert p.separation == SeparationParams() and p.separator_side == "auto"


@pytest.mark.parametrize(
    "d, exc, match",
    [
        ({"foo": 1}, ValueError, r"unknown analysis parameter\(s\) \['foo'\]"),
        ({"segment": {"threshold": 3}}, ValueError, r"unknown 'segment' parameter\(s\) \['threshold'\]"),
        ({"separation": {"h": 3}}, ValueError, r"unknown 'separation' parameter\(s\) \['h'\]"),
        ({"segment": 3}, TypeError, r"'segment' parameters must be a JSON object"),
        ([1, 2], TypeError, r"must be a JSON object, got list"),
        ({"axis": 3}, ValueError, r"axis must be one of \[0, 1, 2\], got 3"),
        ({"separator_side": "top"}, ValueError, r"separator_side must be one of"),
        ({"method": "unet"}, ValueError, r"method must be one of \['threshold', 'model', 'classifier'\]"),
        ({"method": "classifier"}, ValueError, r"method 'classifier' needs classifier"),
        ({"method": "threshold", "classifier": "clf"}, ValueError, r"only used with method 'classifier'"),
        ({"classifier": "clf"}, ValueError, r"only used with method 'classifier', not 'threshold'"),
        ({"method": "classifier", "classifier": 3}, TypeError, r"classifier must be the path"),
        ({"method": "classifier", "classifier": "c", "particles": "model"}, ValueError, r"not 'classifier'"),
        ({"segment": {"low": 0.6, "high": 0.2}}, ValueError, r"low threshold \(0.6\) must be below high"),
        ({"separation": {"markers": "x"}}, ValueError, r"markers must be one of"),
    ],
)
def test_params_from_dict_rejects(d, exc, match):
    with pytest.raises(exc, match=match):
        AnalysisParams.from_dict(d)


# --------------------------------------------------------------------------- run on a synthetic electrode


def test_run_outputs(elec, result):
    t = result.table
    assert isinstance(t, pd.DataFrame) and list(t.columns) == list(COLUMNS)
    assert len(t) == result.labels.max() >= 10
    assert result.labels.dtype == np.uint16 and result.phases.dtype == np.uint8
    assert result.labels.shape == result.phases.shape == elec.greyscale.shape
    assert set(np.unique(result.phases)) == {0, 1, 2}
    assert not (result.labels[result.phases != NMC]).any()
    assert (result.labels[result.phases == NMC] > 0).mean() > 0.99
    assert result.spacing == (0.5, 0.5, 0.5)
    assert t.attrs["spacing_um"] == [0.5, 0.5, 0.5] and t.attrs["separator_side"] == "start"


def test_run_provenance(elec, result):
    prov = result.provenance
    assert prov["input_checksum"] == checksum(elec.greyscale)
    assert prov["input_shape"] == [48, 48, 48] and prov["input_dtype"] == "uint16"
    assert prov["spacing_um"] == [0.5, 0.5, 0.5]
    assert prov["presegmented"] is False
    assert prov["n_particles"] == len(result.table)
    assert set(prov["timings_s"]) == {"phases_s", "particles_s", "metrics_s"}
    assert all(0 <= v < 120 for v in prov["timings_s"].values()) and sum(prov["timings_s"].values()) > 0
    assert prov["separator_side_detected"] == "start" and prov["separator_side_contrast"] > 0.1
    assert {"core", "numpy", "scipy", "scikit-image", "numba"} <= set(prov["versions"])
    json.dumps(prov)  # plain JSON


@pytest.mark.parametrize("advice", [True, False])
def test_run_leaves_numpy_hugepage_advice_as_it_was(elec, result, advice):
    """run switches numpy's huge-page advice off while it runs (core._kernels.numpy_hugepages): restored, same result;
    and the freed memory it recycles (core._kernels.recycled_heap) is no longer recycled after it."""
    switch = np._core.multiarray._set_madvise_hugepage
    before = switch(advice)
    try:
        again = run(elec.greyscale, spacing=elec.spacing)
        assert np._core.multiarray._get_madvise_hugepage() == advice
        assert K._RECYCLE["open"] == 0 and not K._RECYCLE["on"]
    finally:
        switch(before)
    np.testing.assert_array_equal(again.labels, result.labels)
    pd.testing.assert_frame_equal(again.table, result.table)


def test_run_warns_at_its_caller(elec):
    """run's body sits one frame further down (core.pipeline._run): its warnings still name the caller's line."""
    grey = elec.greyscale.astype(np.float32)
    grey[3, 4, 5] = np.nan
    with pytest.warns(UserWarning, match="not finite") as caught:
        run(grey, spacing=elec.spacing)
    assert any(w.filename == __file__ for w in caught if "not finite" in str(w.message))


def test_run_resolved_params(result):
    p = result.params
    assert p.segment.low is not None and p.segment.high is not None
    assert p.segment.low < p.segment.high
    assert p.segment.pv_sigma is not None
    assert p.separator_side == "start"
    # everything else as given (defaults)
    assert p.separation == SeparationParams() and p.axis == 0
    assert p.segment.denoise == SegmentParams().denoise


def test_rerun_with_resolved_params_is_identical(elec, result):
    d = json.loads(json.dumps(result.params.to_dict()))
    again = run(elec.greyscale, AnalysisParams.from_dict(d), spacing=elec.spacing)
    np.testing.assert_array_equal(again.phases, result.phases)
    np.testing.assert_array_equal(again.labels, result.labels)
    pd.testing.assert_frame_equal(again.table, result.table)
    assert again.params == result.params
    assert again.provenance["separator_side_detected"] is None  # side was given this time


def test_run_accuracy_on_synthetic_electrode(elec, result):
    iou = phase_iou(elec.phases, result.phases)
    assert iou["nmc"] > 0.9 and iou["pore"] > 0.85
    s = instance_scores(elec.labels, result.labels, thresholds=[0.5]).iloc[0]
    assert s["f1"] > 0.8


def test_run_estimates_the_blur_of_synthetic_electrode(result):
    # the generator's blur, 0.3 µm at 0.5 µm voxels = 0.6 voxel (no denoising by default)
    assert result.params.segment.pv_sigma == pytest.approx(0.6, abs=0.05)


def test_run_presegmented_truth_gives_true_phases(elec):
    res = run(elec.phases, spacing=elec.spacing, presegmented=True)
    np.testing.assert_array_equal(res.phases, elec.phases)
    assert res.params.segment == SegmentParams()  # untouched: nothing was segmented
    assert res.provenance["presegmented"] is True
    s = instance_scores(elec.labels, res.labels, thresholds=[0.5]).iloc[0]
    assert s["f1"] > 0.85
    # other integer dtypes are accepted and converted
    res16 = run(elec.phases.astype(np.int16), spacing=elec.spacing, presegmented=True)
    np.testing.assert_array_equal(res16.labels, res.labels)
    assert res16.phases.dtype == np.uint8


def test_run_progress(elec):
    calls = []
    run(elec.phases, presegmented=True, spacing=elec.spacing, progress=lambda f, m: calls.append((f, m)))
    fracs = [f for f, _ in calls]
    assert fracs == sorted(fracs)
    assert 0 <= fracs[0] and fracs[-1] == 1.0
    assert calls[-1][1].startswith("done: ")
    assert all(isinstance(m, str) and m for _, m in calls)


@pytest.mark.parametrize("refine", ["auto", "on", "off"])
def test_run_progress_never_goes_back_on_the_greyscale(elec, refine):
    calls = []
    run(elec.greyscale, AnalysisParams(refine=refine), spacing=elec.spacing,
        progress=lambda f, m: calls.append((f, m)))
    fracs = [f for f, _ in calls]
    assert fracs == sorted(fracs), calls
    if refine == "on":
        assert any(m.startswith("refining the phases") for _, m in calls)


def test_run_does_not_modify_inputs(elec):
    grey = elec.greyscale.copy()
    grey_copy = grey.copy()
    params = AnalysisParams(segment=SegmentParams(pv_sigma=1.0), separator_side="start")
    res = run(grey, params, spacing=elec.spacing)
    np.testing.assert_array_equal(grey, grey_copy)
    grey.flags.writeable = False
    res_ro = run(grey, params, spacing=elec.spacing)
    np.testing.assert_array_equal(res_ro.phases, res.phases)
    np.testing.assert_array_equal(grey, grey_copy)
    ph = elec.phases.copy()
    ph_copy = ph.copy()
    res2 = run(ph, presegmented=True, spacing=elec.spacing)
    np.testing.assert_array_equal(ph, ph_copy)
    ph.flags.writeable = False
    res3 = run(ph, presegmented=True, spacing=elec.spacing)
    np.testing.assert_array_equal(res3.labels, res2.labels)
    np.testing.assert_array_equal(ph, ph_copy)
    assert len(res.table) > 0


def test_checksum():
    a = np.arange(24, dtype=np.uint16).reshape(2, 3, 4)
    c = checksum(a)
    assert isinstance(c, str) and len(c) == 32
    assert checksum(np.asfortranarray(a)) == c  # memory layout does not matter
    assert checksum(a.astype(np.int32)) != c  # dtype does
    assert checksum(a.reshape(4, 3, 2)) != c  # shape does
    b = a.copy()
    b[1, 2, 3] += 1
    assert checksum(b) != c


@pytest.mark.parametrize(
    "volume, kw, exc, match",
    [
        (np.zeros((6, 6, 6), np.uint8), {"presegmented": True}, ValueError, r"the NMC phase is empty"),
        (np.full((6, 6, 6), 3, np.uint8), {"presegmented": True}, ValueError, r"found \[3\]"),
        (np.full((6, 6, 6), 2.0), {"presegmented": True}, TypeError, r"integer phase codes"),
        (np.full((6, 6), 2, np.uint8), {"presegmented": True}, ValueError, r"must be 3D"),
        (np.full((6, 6, 6), 9, np.uint16), {}, ValueError, r"constant"),
        (np.full((6, 6, 6), np.nan, np.float32), {}, ValueError, r"no finite value"),
        (np.full((6, 6, 6), 2, np.uint8), {"presegmented": True, "spacing": (1, 1)}, ValueError,
         r"spacing needs 3 values"),
        (np.full((6, 6, 6), 2, np.uint8), {"presegmented": True, "spacing": -1}, ValueError, r"finite and > 0"),
        (np.full((6, 6, 6), 2, np.uint8), {"presegmented": True, "spacing": (1, 0, 1)}, ValueError,
         r"finite and > 0"),
    ],
)
def test_run_rejects_bad_input(volume, kw, exc, match):
    with pytest.raises(exc, match=match):
        run(volume, **kw)


def test_run_greyscale_without_nmc_is_rejected():
    # two grey levels, both far below the NMC threshold the user set
    vol = np.zeros((10, 10, 10), np.uint16)
    vol[5:] = 1000
    params = AnalysisParams(segment=SegmentParams(denoise="none", low=500, high=5000, partial_volume=False))
    with pytest.raises(ValueError, match=r"the NMC phase is empty"):
        run(vol, params)


def test_params_validation_on_construction():
    with pytest.raises(ValueError, match=r"axis must be one of"):
        AnalysisParams(axis=-1)
    with pytest.raises(ValueError, match=r"separator_side must be one of"):
        AnalysisParams(separator_side="middle")
    assert pipeline.versions()["core"]


REAL_3PHASE = (Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real" / "nmc_calendered_3phase"
               / "nmc-1-cal_generatedCBD_bridge.tif")


@pytest.mark.skipif(not REAL_3PHASE.exists(), reason=f"real data not available at {REAL_3PHASE}")
def test_real_calendered_volume_end_to_end():
    """Measured particle geometry (X-ray CT, NREL MATBOX; its CBD is generated): the analysis' invariants hold."""
    from core.compare import drop_small
    from core.io import load_phases

    ph = load_phases(REAL_3PHASE, {0: "pore", 1: "nmc", 2: "cbd"}).data
    r = run(ph, AnalysisParams(), spacing=0.4, presegmented=True)  # voxel size not stated: 0.4 µm assumed
    t = r.table
    assert np.array_equal(r.labels > 0, ph == NMC)  # every NMC voxel in exactly one particle, nothing else
    assert len(t) == r.labels.max() and len(t) > 1000
    fr = t[["frac_cbd", "frac_pore", "frac_particle", "frac_edge"]].sum(axis=1)
    np.testing.assert_allclose(fr[t["surface_area_um2"] > 0], 1.0, atol=1e-9)
    det = t["detachment"].dropna()
    assert det.between(0, 1).all() and len(det) > 0.95 * len(t)
    # the calendered particles' sizes: median equivalent diameter of several µm, few voxel-sized fragments
    assert 5 < t["equiv_diameter_um"].median() < 15
    small = (t["n_voxels"] < 16).sum()
    assert small < 0.1 * len(t)
    assert drop_small({"real": t}, 2.0)[1]["real"] >= small  # 16 voxels of 0.4 µm: under 2 µm across


def test_a_margin_added_above_the_electrode_leaves_depth_over_the_electrode_unchanged():
    """The electrode's phases with 16 slices of pore added before it: over the electrode every particle keeps its
    depth_frac (the extent found moves by 16 slices); over the volume it moves (bench/RESULTS.md depth_extent)."""
    from core.codes import PORE
    from core.synth import demo_electrode

    e = demo_electrode("cycled-1C", rng=3, shape=(48, 48, 48))
    padded = np.concatenate([np.full((16, 48, 48), PORE, np.uint8), e.phases])
    out = {}
    for how in ("electrode", "volume"):
        p = AnalysisParams(separator_side="start", depth_from=how)
        a = run(e.phases, p, spacing=e.spacing, presegmented=True)
        b = run(padded, p, spacing=e.spacing, presegmented=True)
        assert len(a.table) == len(b.table) > 10
        np.testing.assert_allclose(b.table["centroid_z_um"] - 16 * e.spacing[0], a.table["centroid_z_um"])
        out[how] = (a, b)
    (a, b), (va, vb) = out["electrode"], out["volume"]
    assert [v + 16 for v in a.provenance["depth_extent"]] == b.provenance["depth_extent"]
    np.testing.assert_allclose(a.table["depth_frac"], b.table["depth_frac"], atol=1e-12)
    assert "depth_extent" not in va.provenance
    assert float(np.median(np.abs(va.table["depth_frac"] - vb.table["depth_frac"]))) > 0.05
