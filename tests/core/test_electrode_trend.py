"""core.compare.electrode_trend: electrodes on an attribute axis, tested with the electrode as the unit."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from core import compare
from core.compare.electrode_trend import _permutation_kendall, _re_trend


def _tables(medians, n=200, spread=0.1, rng=0, tau=0.0, sizes=None):
    rng = np.random.default_rng(rng)
    out = {}
    for i, m in enumerate(medians):
        nn = n if sizes is None else sizes[i]
        shift = rng.normal(0, tau) if tau else 0.0
        out[f"e{i}"] = pd.DataFrame({
            "detachment": np.clip(rng.normal(m + shift, spread, nn), 0, 1),
            "touches_edge": np.zeros(nn, bool)})
    return out


def test_per_electrode_rows_are_ordered_by_the_attribute_and_use_the_shared_bootstrap():
    tables = _tables([0.4, 0.2, 0.3, 0.1])
    values = {"e0": 4.0, "e1": 2.0, "e2": 3.0, "e3": 1.0}
    r = compare.electrode_trend(tables, values, cut=0.25, attribute="C-rate", unit="C", rng=5, n_boot=500)
    t = r.table
    assert t["electrode"].tolist() == ["e3", "e1", "e2", "e0"] and t["value"].tolist() == [1.0, 2.0, 3.0, 4.0]
    for row in t.itertuples():
        v = tables[row.electrode]["detachment"].to_numpy()
        assert row.median == np.median(v) and row.n_valid == v.size
        assert row.share_above == np.mean(v > 0.25)
        assert (row.share_ci_lo, row.share_ci_hi) == compare.wilson_ci(int((v > 0.25).sum()), v.size)
    # the first electrode's CI is exactly bootstrap_median_ci with the same seed (resampled first)
    first = tables["e3"]["detachment"].to_numpy()
    assert (t["median_ci_lo"][0], t["median_ci_hi"][0]) == compare.bootstrap_median_ci(first, n_boot=500, rng=5)
    assert r.median_test.slope > 0 and r.median_test.kendall_tau == 1.0 and r.n_electrodes == 4
    assert r.tests["measure"].tolist() == ["median", "share_above"]
    # same seed, same numbers; inputs untouched
    again = compare.electrode_trend(tables, values, cut=0.25, rng=5, n_boot=500)
    pd.testing.assert_frame_equal(again.table, r.table)
    assert tables["e0"].shape == (200, 2)


def test_equal_weights_give_the_least_squares_slope_test_of_scipy_linregress():
    x = np.array([0.5, 1.0, 2.0, 3.0, 5.0])
    y = np.array([0.21, 0.27, 0.33, 0.45, 0.52])
    ref = stats.linregress(x, y)
    for v in (np.full(5, 1e-4), np.full(5, 3.0)):  # any common variance: tau^2 or not, the same test
        got = _re_trend(y, v, x, "two-sided", 0.95)
        assert got["slope"] == pytest.approx(ref.slope, rel=1e-12)
        assert got["p"] == pytest.approx(ref.pvalue, rel=1e-9)
        assert got["t"] == pytest.approx(ref.slope / ref.stderr, rel=1e-9)
        half = stats.t(3).ppf(0.975) * ref.stderr
        assert (got["slope_ci_lo"], got["slope_ci_hi"]) == pytest.approx((ref.slope - half, ref.slope + half))
    one = _re_trend(y, np.full(5, 1e-4), x, "increasing", 0.95)
    assert one["p"] == pytest.approx(ref.pvalue / 2, rel=1e-9)
    assert _re_trend(y, np.full(5, 1e-4), x, "decreasing", 0.95)["p"] == pytest.approx(1 - ref.pvalue / 2)


def test_unequal_variances_weight_by_inverse_variance_plus_between_electrode_variance():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    y = np.array([0.20, 0.31, 0.33, 0.47, 0.46, 0.62])
    v = np.array([1e-4, 4e-4, 1e-4, 9e-4, 1e-4, 4e-4])
    got = _re_trend(y, v, x, "two-sided", 0.95)
    # DerSimonian-Laird by hand: fixed-effect WLS, Q_E, tr(P)
    w = 1 / v
    X = np.column_stack([np.ones(6), x])
    b = np.linalg.solve(X.T @ (w[:, None] * X), X.T @ (w * y))
    q_e = np.sum(w * (y - X @ b) ** 2)
    W = np.diag(w)
    P = W - W @ X @ np.linalg.inv(X.T @ W @ X) @ X.T @ W
    tau2 = max(0.0, (q_e - 4) / np.trace(P))
    assert tau2 > 0 and got["tau2"] == pytest.approx(tau2, rel=1e-9)
    # then weighted least squares with 1/(v + tau2) and the Knapp-Hartung variance, via numpy's lstsq
    ws = 1 / (v + tau2)
    sw = np.sqrt(ws)
    coef, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
    q = np.sum(ws * (y - X @ coef) ** 2) / 4
    se = math.sqrt(q * np.linalg.inv(X.T @ np.diag(ws) @ X)[1, 1])
    assert got["slope"] == pytest.approx(coef[1], rel=1e-9)
    assert got["p"] == pytest.approx(2 * stats.t(4).sf(abs(coef[1] / se)), rel=1e-9)


@pytest.mark.parametrize("k", [4, 5, 6])
def test_exact_permutation_p_is_scipys_exact_kendall_p(k):
    rng = np.random.default_rng(k)
    for _ in range(5):
        x = rng.permutation(k).astype(float) + 1
        y = rng.normal(size=k)
        tau, p, p_min, exact = _permutation_kendall(x, y, "two-sided", rng)
        ref = stats.kendalltau(x, y, method="exact")
        assert exact and tau == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
        assert p_min == pytest.approx(2 / math.factorial(k))
        inc = _permutation_kendall(x, y, "increasing", rng)[1]
        assert inc == pytest.approx(stats.kendalltau(x, y, method="exact", alternative="greater").pvalue)


def test_permutation_p_with_tied_attribute_values_is_scipys_permutation_test():
    x = np.array([1.0, 1.0, 2.0, 3.0, 3.0])  # two replicate electrodes at two of the levels
    y = np.array([0.20, 0.25, 0.22, 0.40, 0.35])
    _, p, _, exact = _permutation_kendall(x, y, "two-sided", np.random.default_rng(0))
    ref = stats.permutation_test((y,), lambda a: stats.kendalltau(x, a).statistic, permutation_type="pairings",
                                 n_resamples=np.inf, alternative="two-sided")
    assert exact and p == pytest.approx(ref.pvalue)


def test_many_electrodes_use_random_orderings_with_the_given_seed():
    x = np.arange(10, dtype=float)
    y = x * 0.01 + np.random.default_rng(1).normal(0, 0.05, 10)
    a = _permutation_kendall(x, y, "two-sided", np.random.default_rng(3))
    b = _permutation_kendall(x, y, "two-sided", np.random.default_rng(3))
    assert a == b and not a[3]
    ref = stats.kendalltau(x, y, method="exact").pvalue
    assert abs(a[1] - ref) < 0.01  # 20,000 orderings: Monte Carlo error ~0.002


def test_scales_log_and_rank():
    tables = _tables([0.1, 0.2, 0.3, 0.4])
    values = {"e0": 0.5, "e1": 1.0, "e2": 2.0, "e3": 4.0}
    log = compare.electrode_trend(tables, values, x_scale="log", rng=0, n_boot=200)
    assert np.allclose(log.table["x"], np.log10([0.5, 1, 2, 4]))
    rank = compare.electrode_trend(tables, values, x_scale="rank", rng=0, n_boot=200)
    assert rank.table["x"].tolist() == [1.0, 2.0, 3.0, 4.0]
    # medians evenly spaced in rank: the rank scale fits them better than the raw values
    assert rank.median_test.tau2 <= compare.electrode_trend(tables, values, rng=0, n_boot=200).median_test.tau2
    assert compare.slope_unit(log) == "per tenfold attribute"
    with pytest.raises(ValueError, match="log scale needs attribute values above 0: e0 has 0, e2 has -1$"):
        compare.electrode_trend(tables, {**values, "e0": 0.0, "e2": -1.0}, x_scale="log")


def test_bad_inputs_are_refused_in_one_sentence():
    tables = _tables([0.1, 0.2, 0.3, 0.4])
    values = {"e0": 1, "e1": 2, "e2": 3, "e3": 4}
    with pytest.raises(ValueError, match="at least 3 electrodes"):
        compare.electrode_trend(dict(list(tables.items())[:2]), values)
    with pytest.raises(ValueError, match=r"no attribute value for electrode\(s\) \['e3'\]"):
        compare.electrode_trend(tables, {"e0": 1, "e1": 2, "e2": 3})
    with pytest.raises(ValueError, match="same attribute value"):
        compare.electrode_trend(tables, dict.fromkeys(values, 2.0))
    with pytest.raises(ValueError, match="must be finite"):
        compare.electrode_trend(tables, {**values, "e1": float("nan")})
    with pytest.raises(TypeError, match="must be a number"):
        compare.electrode_trend(tables, {**values, "e1": "2C"})
    with pytest.raises(ValueError, match="x_scale must be one of"):
        compare.electrode_trend(tables, values, x_scale="sqrt")
    with pytest.raises(ValueError, match="alternative must be one of"):
        compare.electrode_trend(tables, values, alternative="up")
    with pytest.raises(ValueError, match="unknown metric column"):
        compare.electrode_trend(tables, values, metric="nope")
    tiny = {**tables, "e2": tables["e2"].head(1)}
    with pytest.raises(ValueError, match="electrode 'e2' has 1 particle"):
        compare.electrode_trend(tiny, values)


def test_reading_says_direction_p_and_method():
    tables = _tables([0.40, 0.30, 0.20, 0.10], n=400, spread=0.05)
    res = compare.electrode_trend(tables, {"e0": 1, "e1": 2, "e2": 3, "e3": 4}, attribute="cycles", unit="-",
                                  rng=0, n_boot=300)
    text = compare.trend_reading(res, label="detachment index")
    assert text.startswith("Median detachment index falls with cycles across 4 electrodes (p ")
    assert "t-test on 2 df" in text and "per unit of cycles" in text
    flat = compare.electrode_trend(_tables([0.3] * 4, rng=2), {"e0": 1, "e1": 2, "e2": 3, "e3": 4},
                                   attribute="SOC", unit="%", rng=0, n_boot=300)
    if flat.p > 0.05:
        assert compare.trend_reading(flat).startswith("No clear trend of median detachment with SOC")
    share = compare.trend_reading(res, measure="share_above")
    assert "share of particles with detachment above 0.5" in share.lower()


@pytest.mark.parametrize("values, scale", [
    ([0.5, 1, 2, 5], "log"),        # C-rates, each step about a doubling (QA walk 16)
    ([1, 10, 100, 1000], "log"),
    ([100, 200, 500], "log"),
    ([0, 100, 200], "linear"),      # a zero has no logarithm
    ([1, 2, 3], "linear"),          # evenly spaced values
    ([5, 2], "linear"),             # two points lie on a line on any scale
    ([1, 1, 2, 2, 5, 5], "log"),    # repeats are one value each
    ([1, 2, float("nan"), 3], "linear"),
    ([-1, 1, 2], "linear"),
])
def test_the_suggested_scale_is_the_one_the_values_lie_evenly_on(values, scale):
    assert compare.suggested_scale(values) == scale
    assert compare.suggested_scale(np.asarray(values)[::-1]) == scale  # the order is not read


def test_p_values_are_written_in_two_digits_and_never_rounded_onto_alpha():
    """QA walk 16: 'No clear trend ... p = 0.050' for p = 0.0502 beside a page that calls p <= 0.05 a finding."""
    assert [compare.p_text(p) for p in (0.342, 0.0012, 2.5e-6, 6.9e-22, 0.5, 1.0)] == [
        "0.34", "0.0012", "2.5e-06", "6.9e-22", "0.50", "1.0"]
    assert compare.p_text(0.05023) == "0.0502" and compare.p_text(0.0496) == "0.0496"
    assert compare.p_text(0.05) == "0.050"  # on alpha itself: nothing to tell apart
    assert compare.p_text(0.0104, alpha=0.01) == "0.0104" and compare.p_text(0.0104) == "0.010"
    assert compare.p_text(float("nan")) == "nan"
    # in the readings, with their alpha
    assert compare.reading("a", "b", label="detachment", mwu_p_holm=0.0502, ks_p_holm=0.3, delta=0.1) == (
        "no clear difference in detachment (p=0.0502, Mann–Whitney, Holm)")
    tables = _tables([0.40, 0.30, 0.20, 0.10], n=400, spread=0.05)
    res = compare.electrode_trend(tables, {"e0": 1, "e1": 2, "e2": 3, "e3": 4}, attribute="cycles", unit="-",
                                  rng=0, n_boot=300)
    near = replace(res, median_test=replace(res.median_test, p=0.05023))
    assert "(p = 0.0502, random-effects" in compare.trend_reading(near)
    assert compare.trend_reading(near).startswith("No clear trend")


def test_nesting_a_particle_level_test_finds_trends_that_are_not_there_the_electrode_test_does_not():
    """Null of no trend, but each electrode shifted by its own random offset (sd 0.03, particles sd 0.15):
    the particle-level Kendall test (particles as if independent electrodes) rejects far above 5 %, the
    electrode-level tests stay near 5 % (binomial 99.9 % range over 300 datasets: up to ~0.10)."""
    rng = np.random.default_rng(11)
    values = {f"e{i}": float(i + 1) for i in range(5)}
    ours, perm, naive = [], [], []
    for s in range(300):
        tables = _tables([0.3] * 5, n=60, spread=0.15, tau=0.03, rng=rng.integers(1 << 31),
                         sizes=rng.integers(30, 90, 5))
        res = compare.electrode_trend(tables, values, n_boot=100, rng=s)
        ours.append(res.p)
        perm.append(res.median_test.p_perm)
        x = np.concatenate([np.full(len(t), values[n]) for n, t in tables.items()])
        y = np.concatenate([t["detachment"].to_numpy() for t in tables.values()])
        naive.append(stats.kendalltau(x, y).pvalue)
    ours, perm, naive = map(np.asarray, (ours, perm, naive))
    assert np.mean(ours <= 0.05) <= 0.10 and np.mean(perm <= 0.05) <= 0.10
    assert np.mean(naive <= 0.05) >= 0.25


def test_a_real_trend_is_found_with_four_electrodes():
    tables = _tables([0.15, 0.25, 0.35, 0.45], n=300, spread=0.12, tau=0.01, rng=4)
    res = compare.electrode_trend(tables, {"e0": 1, "e1": 2, "e2": 3, "e3": 4}, rng=0, n_boot=500)
    assert res.p < 0.01 and res.median_test.slope_ci_lo > 0
    # ... which the distribution-free check cannot show with 4 electrodes (its floor is 2/24)
    assert res.median_test.p_perm == pytest.approx(2 / 24) == res.median_test.p_perm_min
