"""Tests for core.uncertainty: the segmentation sweep on a small synthetic electrode."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from core import uncertainty
from core.codes import NMC, PORE
from core.pipeline import AnalysisParams, run
from core.uncertainty import (
    ROW_COLUMNS, SPREAD_COLUMNS, VARIANTS, SweepParams, SweepResult, phase_contrast, spread_table, sweep,
    sweep_table,
)
from core.synth import demo_electrode

PARAMS = AnalysisParams(separator_side="start")


@pytest.fixture(scope="module")
def elec():
    return demo_electrode("cycled-1C", rng=0, shape=(64, 64, 64))


@pytest.fixture(scope="module")
def plain(elec):
    return run(elec.greyscale, PARAMS, spacing=elec.spacing)


@pytest.fixture(scope="module")
def swept(elec):
    return sweep(elec.greyscale, PARAMS, spacing=elec.spacing)


def median_detachment(table: pd.DataFrame) -> float:
    return float(table["detachment"].dropna().median())


def test_baseline_row_is_a_plain_run(swept, plain):
    b = swept.baseline
    assert b.variant == "baseline" and b.parameter == "baseline"
    assert b.n_particles == len(plain.table) > 10
    assert b.median_detachment == median_detachment(plain.table)
    assert b.n_with_detachment == int(plain.table["detachment"].notna().sum())
    assert swept.params == plain.params  # thresholds and blur resolved by the baseline run
    assert (b.low, b.high, b.h_um) == (plain.params.segment.low, plain.params.segment.high, 0.5)


def test_variants_move_one_parameter_by_one_step(swept, plain, elec):
    seg = plain.params.segment
    grey, ph = elec.greyscale, plain.phases
    contrast = float(np.median(grey[ph == NMC]) - np.median(grey[ph == PORE]))
    assert swept.threshold_step == pytest.approx(0.02 * contrast)
    assert swept.h_step_um == pytest.approx(0.25)
    t = swept.table()
    assert tuple(t.columns) == ROW_COLUMNS
    assert t["variant"].tolist() == ["baseline", *VARIANTS]
    rows = t.set_index("variant")
    s = swept.threshold_step
    expect = {
        "low-": (seg.low - s, seg.high, 0.5), "low+": (seg.low + s, seg.high, 0.5),
        "high-": (seg.low, seg.high - s, 0.5), "high+": (seg.low, seg.high + s, 0.5),
        "h-": (seg.low, seg.high, 0.25), "h+": (seg.low, seg.high, 0.75),
    }
    for v, (lo, hi, h) in expect.items():
        assert (rows.loc[v, "low"], rows.loc[v, "high"], rows.loc[v, "h_um"]) == pytest.approx((lo, hi, h))
    assert rows.loc["low+", "parameter"] == "low" and rows.loc["h-", "parameter"] == "h_um"
    # a higher pore|CBD threshold makes more pore: detachment cannot fall; more separation -> fewer particles
    assert rows.loc["low+", "median_detachment"] >= rows.loc["low-", "median_detachment"]
    assert rows.loc["h+", "n_particles"] <= rows.loc["baseline", "n_particles"] <= rows.loc["h-", "n_particles"]
    np.testing.assert_allclose(t["deviation"], t["median_detachment"] - swept.baseline.median_detachment)


def test_a_variant_equals_a_plain_run_with_its_parameters(swept, elec):
    from dataclasses import replace

    p = swept.params
    p_high = replace(p, segment=replace(p.segment, high=p.segment.high + swept.threshold_step))
    r = run(elec.greyscale, p_high, spacing=elec.spacing)
    row = swept.table().set_index("variant").loc["high+"]
    assert row["n_particles"] == len(r.table)
    assert row["median_detachment"] == median_detachment(r.table)


def test_spread(swept):
    sp = swept.spread
    meds = swept.table()["median_detachment"]
    assert sp.median_min == meds.min() and sp.median_max == meds.max()
    assert sp.median_min <= swept.baseline.median_detachment <= sp.median_max
    dev = (meds - swept.baseline.median_detachment).abs()
    assert sp.max_deviation == pytest.approx(dev.max())
    assert sp.max_deviation > 0  # the thresholds do move the median on this electrode
    assert sp.max_deviation == max(sp.max_deviation_thresholds, sp.max_deviation_separation)
    assert sp.n_variants == len(VARIANTS)


def test_reusing_the_baseline_gives_the_same_rows_and_reuses_phases(swept, plain, elec, monkeypatch):
    calls = []

    def counting_run(volume, params, **kw):
        calls.append(kw.get("presegmented", False))
        return run(volume, params, **kw)

    monkeypatch.setattr(uncertainty, "run", counting_run)
    again = sweep(elec.greyscale, plain.params, spacing=elec.spacing, baseline_phases=plain.phases,
                  baseline_table=plain.table)
    assert again.rows == swept.rows
    assert calls == [False] * 4 + [True] * 2  # no baseline run; the separation variants start from the phases
    calls.clear()
    only_h = sweep(elec.greyscale, plain.params, spacing=elec.spacing, baseline_phases=plain.phases,
                   options=SweepParams(variants=("h+",)))
    assert calls == [True, True]  # baseline table from the phases, then h+
    assert only_h.rows == (swept.rows[0], swept.rows[-1])
    assert math.isnan(only_h.threshold_step) and math.isnan(only_h.spread.max_deviation_thresholds)



def test_phases_given_as_input_are_swept_on_the_separation_only(elec):
    """An already-segmented volume's analysis has no thresholds (None): its separation variants run from its
    phases and its rows say NaN for the thresholds; asking to vary the thresholds is refused in one sentence."""
    seg = run(elec.phases, PARAMS, spacing=elec.spacing, presegmented=True)
    assert seg.params.segment.low is None
    s = sweep(elec.phases, seg.params, spacing=elec.spacing, baseline_phases=seg.phases, baseline_table=seg.table,
              options=SweepParams(variants=("h-", "h+")))
    t = s.table().set_index("variant")
    assert list(t.index) == ["baseline", "h-", "h+"] and t[["low", "high"]].isna().all().all()
    assert t.loc["baseline", "n_particles"] == len(seg.table)
    assert t.loc["h+", "h_um"] == pytest.approx(seg.params.separation.h_um + s.h_step_um)
    assert math.isnan(s.spread.max_deviation_thresholds) and s.spread.max_deviation_separation >= 0
    with pytest.raises(ValueError, match="the thresholds .and pv_sigma. must be resolved"):
        sweep(elec.phases, seg.params, spacing=elec.spacing, baseline_phases=seg.phases, baseline_table=seg.table,
              options=SweepParams(variants=("low-", "h+")))

def test_progress_rises_to_one(plain, elec):
    seen = []
    sweep(elec.greyscale, plain.params, spacing=elec.spacing, baseline_phases=plain.phases,
          baseline_table=plain.table, options=SweepParams(variants=("low+", "h-")),
          progress=lambda f, m: seen.append((f, m)))
    fracs = [f for f, _ in seen]
    assert fracs == sorted(fracs) and 0 <= fracs[0] and fracs[-1] == 1.0
    assert any(m.startswith("low+: ") for _, m in seen) and any(m.startswith("h-: ") for _, m in seen)


def test_inputs_not_modified(plain, elec):
    grey, ph, tab = elec.greyscale.copy(), plain.phases.copy(), plain.table.copy()
    sweep(elec.greyscale, plain.params, spacing=elec.spacing, baseline_phases=plain.phases,
          baseline_table=plain.table, options=SweepParams(variants=("h-",)))
    np.testing.assert_array_equal(elec.greyscale, grey)
    np.testing.assert_array_equal(plain.phases, ph)
    pd.testing.assert_frame_equal(plain.table, tab)


def test_explicit_steps(plain, elec):
    s = sweep(elec.greyscale, plain.params, spacing=elec.spacing, baseline_phases=plain.phases,
              baseline_table=plain.table, options=SweepParams(threshold_step=100.0, h_step_um=0.1,
                                                               variants=("low-", "h+")))
    t = s.table().set_index("variant")
    assert t.loc["low-", "low"] == pytest.approx(plain.params.segment.low - 100.0)
    assert t.loc["h+", "h_um"] == pytest.approx(0.6)
    assert (s.threshold_step, s.h_step_um) == (100.0, 0.1)


def test_round_trip_through_json(swept):
    back = SweepResult.from_dict(json.loads(json.dumps(swept.to_dict())))
    assert back == swept
    with pytest.raises(ValueError, match="not a stored sweep"):
        SweepResult.from_dict({"rows": []})


def test_tables_of_several_electrodes(swept):
    long = sweep_table({"a": swept, "b": swept})
    assert tuple(long.columns) == ("electrode", *ROW_COLUMNS)
    assert len(long) == 2 * len(swept.rows) and long["electrode"].tolist()[:: len(swept.rows)] == ["a", "b"]
    wide = spread_table({"a": swept, "b": swept})
    assert tuple(wide.columns) == SPREAD_COLUMNS
    assert wide["median_detachment"].tolist() == [swept.baseline.median_detachment] * 2
    # each row is the electrode's own spread (the same sweep twice here), and the bar has a width
    for col in ("median_min", "median_max", "max_deviation", "n_variants"):
        assert wide[col].tolist() == [getattr(swept.spread, col)] * 2, col
    assert (wide["median_max"] > wide["median_min"]).all()
    assert len(sweep_table({})) == 0 and len(spread_table({})) == 0


def test_phase_contrast():
    grey = np.zeros((4, 4, 4), np.float32)
    ph = np.zeros((4, 4, 4), np.uint8)
    ph[2:] = NMC
    grey[2:] = 10.0
    grey[0, 0, 0] = 3.0  # one bright pore voxel does not move the median
    assert phase_contrast(grey, ph) == 10.0
    with pytest.raises(ValueError, match="needs pore and NMC voxels"):
        phase_contrast(grey, np.full_like(ph, NMC))


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kw, match", [
    ({"threshold_step": -1.0}, "threshold_step must be finite and > 0"),
    ({"threshold_step": float("nan")}, "threshold_step must be finite and > 0"),
    ({"h_step_um": 0.0}, "h_step_um must be finite and > 0"),
    ({"threshold_rel_step": 0.0}, "threshold_rel_step must be finite and > 0"),
    ({"h_rel_step": 1.5}, "h_rel_step must be <= 1"),
    ({"variants": ("low-", "mid")}, "variants must be distinct names"),
    ({"variants": ()}, "variants must be distinct names"),
])
def test_bad_sweep_params(kw, match):
    with pytest.raises(ValueError, match=match):
        SweepParams(**kw)
    with pytest.raises(TypeError, match="threshold_step must be a number"):
        SweepParams(threshold_step="1")


def test_bad_step_for_these_parameters(plain, elec):
    gap = plain.params.segment.high - plain.params.segment.low
    common = dict(spacing=elec.spacing, baseline_phases=plain.phases, baseline_table=plain.table)
    with pytest.raises(ValueError, match="smaller than the gap between the thresholds"):
        sweep(elec.greyscale, plain.params, options=SweepParams(threshold_step=gap), **common)
    with pytest.raises(ValueError, match="must not exceed h_um"):
        sweep(elec.greyscale, plain.params, options=SweepParams(h_step_um=0.6), **common)
    with pytest.raises(ValueError, match="must be resolved"):
        sweep(elec.greyscale, PARAMS, **common)
    with pytest.raises(ValueError, match="needs baseline_phases"):
        sweep(elec.greyscale, plain.params, spacing=elec.spacing, baseline_table=plain.table)
    with pytest.raises(ValueError, match="does not match volume"):
        sweep(elec.greyscale, plain.params, spacing=elec.spacing, baseline_phases=plain.phases[1:])


def test_a_model_analysis_has_nothing_to_sweep():
    from core.pipeline import AnalysisParams

    vol = np.zeros((8, 8, 8), np.uint16)
    with pytest.raises(ValueError, match="'model' method has neither to vary"):
        uncertainty.sweep(vol, AnalysisParams(method="model"), spacing=1.0)
    with pytest.raises(ValueError, match="network's cue is not swept"):
        uncertainty.sweep(vol, AnalysisParams(particles="model"), spacing=1.0)
