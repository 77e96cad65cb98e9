"""Electrodes on an axis: each electrode's median (and share above a cut) against a numeric sample attribute
(C-rate, cycles, SOC, ...), with a trend test whose unit is the electrode (:func:`electrode_trend`).

Which test, and why
-------------------
Particles are nested in electrodes: the particles of one scan share its cycling history, its calendering and
its segmentation, so an electrode-to-electrode difference is not averaged away by counting more particles.
A particle-level test (Jonckheere–Terpstra, Kendall or Spearman over all particles) treats 1,000 particles of
one electrode as 1,000 independent electrodes: any two electrodes differ "significantly", with or without a
trend in the attribute.  The experimental unit here is the electrode, so the test is done on one number per
electrode:

1. **Primary: random-effects meta-regression of the electrode medians on the attribute** (the "summary
   statistics" approach of nested designs), with the Knapp–Hartung t-test on ``k - 2`` degrees of freedom.
   Each electrode contributes its median ``y_i`` with its particle-level sampling variance ``v_i`` (the
   bootstrap variance of the median over the electrode's particles: this is where the particle counts enter);
   the between-electrode variance ``tau^2`` is estimated from the scatter of the medians around the trend line
   (DerSimonian–Laird for meta-regression).  Weighted least squares with weights ``1 / (v_i + tau^2)`` gives the
   slope; Knapp–Hartung scales its variance by the weighted residual scatter, so the test stays calibrated when
   ``v_i`` or ``tau^2`` are misestimated (e.g. particles of one volume that are not independent).  With equal
   ``v_i`` it is exactly the ordinary least-squares t-test of the slope of the electrode medians
   (:func:`scipy.stats.linregress`).

   Assumptions: the electrode medians scatter normally and with one common between-electrode variance around a
   straight line in ``x`` (the attribute on the chosen scale: as given, its logarithm, or its rank, the
   ordered levels of a Jonckheere–Terpstra-like design); electrodes are independent.  With ``k`` electrodes the
   test has ``k - 2`` degrees of freedom: with 4 electrodes a p below 0.01 needs ``|t| > 9.9``, i.e. a trend
   large against the electrode-to-electrode scatter, not against the particle-to-particle one.

2. **Distribution-free check: permutation of the electrode labels** against the attribute, with Kendall's tau
   between the attribute and the electrode medians, exact over all ``k!`` orderings up to
   :data:`EXACT_MAX_ELECTRODES` electrodes (Monte Carlo beyond).  It assumes nothing about shapes or
   linearity, but its p cannot go below ``1 / k!`` (one-sided) or ``2 / k!`` (two-sided): 0.083 with
   4 electrodes, 0.017 with 5, 0.0028 with 6.  It is reported beside the primary test, with its floor.

The same two tests are applied to the share of particles above ``cut`` (sampling variance from the binomial
proportion).  Under a null of equal means the rate at which the primary test finds a trend was measured by
simulation on synthetic electrodes (``bench/electrode_trend.py``, ``bench/RESULTS.md``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from ._common import (
    EdgePolicy, Rng, _check_confidence, _check_metric, _check_n_boot, _check_policy, _check_tables, _finite_values,
)
from .statistics import _boot_medians, _percentile_ci, base_seed, p_text, sample_rng, wilson_ci

XScale = Literal["linear", "log", "rank"]
Alternative = Literal["two-sided", "increasing", "decreasing"]
X_SCALES: tuple[str, ...] = ("linear", "log", "rank")
ALTERNATIVES: tuple[str, ...] = ("two-sided", "increasing", "decreasing")



def suggested_scale(values) -> str:
    """The scale on which a trend's axis values lie the more evenly: ``"log"`` where every value is positive and
    the gaps between their logarithms are more even than between the values (C-rates 0.5, 1, 2, 5: each a doubling
    or so), else ``"linear"`` (cycles 0, 100, 200; C-rates 1, 2, 3).

    Read from the attribute's values alone, before any detachment is looked at, so that offering it as the default
    does not choose the scale by the result.

    Parameters
    ----------
    values : (k,) array_like of float
        The electrodes' attribute values (repeats and non-finite values are ignored).

    Returns
    -------
    {"linear", "log"}
        ``"linear"`` with fewer than three distinct finite values (two points lie on a line on any scale).
    """
    v = np.unique(np.asarray(values, dtype=float).ravel())
    v = v[np.isfinite(v)]
    if v.size < 3 or (v <= 0).any():
        return "linear"

    def unevenness(x: np.ndarray) -> float:  # coefficient of variation of the gaps
        gaps = np.diff(x)
        return float(gaps.std() / gaps.mean())

    return "log" if unevenness(np.log(v)) < unevenness(v) else "linear"


#: Up to this many electrodes the permutation test enumerates all k! orderings (8! = 40,320).
EXACT_MAX_ELECTRODES = 8
#: Random orderings of the Monte Carlo permutation test beyond :data:`EXACT_MAX_ELECTRODES`.
N_PERMUTATIONS = 20_000
#: Fewest electrodes for a trend test (the regression needs k - 2 >= 1 degrees of freedom).
MIN_ELECTRODES = 3

_MEASURES = ("median", "share_above")


@dataclass(frozen=True)
class TrendTest:
    """The trend of one per-electrode measure against the attribute.

    Attributes
    ----------
    measure : {"median", "share_above"}
    slope : float
        Change of the measure per unit of ``x`` (the attribute on the tested
        scale: its unit, a tenfold step for ``"log"``, one rank for ``"rank"``).
    slope_ci_lo, slope_ci_hi : float
        Its confidence interval (Knapp–Hartung, t with ``df`` degrees of freedom).
    intercept : float
        The fitted measure at ``x = 0``.
    t : float
        Slope / its Knapp–Hartung standard error.
    df : int
        ``k - 2``.
    p : float
        p-value of the random-effects meta-regression (see the module notes).
    tau2 : float
        Between-electrode variance around the line (DerSimonian–Laird; measure units²).
    kendall_tau : float
        Kendall's tau-b between the attribute and the measure (one value per electrode).
    p_perm : float
        p-value of the permutation of electrode labels with that tau.
    p_perm_min : float
        The smallest p that permutation test can give with these electrodes (``1 / k!`` one-sided).
    perm_exact : bool
        All ``k!`` orderings enumerated (else :data:`N_PERMUTATIONS` random ones).
    """

    measure: str
    slope: float
    slope_ci_lo: float
    slope_ci_hi: float
    intercept: float
    t: float
    df: int
    p: float
    tau2: float
    kendall_tau: float
    p_perm: float
    p_perm_min: float
    perm_exact: bool


@dataclass(frozen=True)
class ElectrodeTrend:
    """Each electrode's median and share above a cut against an attribute, and the trend tests.

    Attributes
    ----------
    table : DataFrame
        One row per electrode, ordered by the attribute: ``electrode``,
        ``value`` (the attribute, its unit), ``x`` (as tested: value, log10
        value or rank), ``n_valid`` (particles with a finite metric after the
        edge policy), ``median``, ``median_ci_lo``, ``median_ci_hi`` (percentile
        bootstrap), ``median_se`` (bootstrap standard error), ``share_above``,
        ``share_ci_lo``, ``share_ci_hi`` (Wilson), ``share_se``, and
        ``median_fit``, ``share_fit`` (the fitted trend lines at ``x``).
    median_test, share_test : TrendTest
    metric : str
    attribute, unit : str
        Name and unit of the attribute (for labels).
    x_scale : {"linear", "log", "rank"}
    alternative : {"two-sided", "increasing", "decreasing"}
    cut : float
    edge_policy : {"exclude", "include", "miles"}
    confidence : float
    n_boot : int
    """

    table: pd.DataFrame
    median_test: TrendTest
    share_test: TrendTest
    metric: str
    attribute: str
    unit: str
    x_scale: str
    alternative: str
    cut: float
    edge_policy: EdgePolicy
    confidence: float
    n_boot: int

    @property
    def n_electrodes(self) -> int:
        return int(len(self.table))

    @property
    def p(self) -> float:
        """p-value of the primary test (median)."""
        return self.median_test.p

    @property
    def tests(self) -> pd.DataFrame:
        """Both tests as a table, one row per measure."""
        rows = [{"metric": self.metric, "attribute": self.attribute, "unit": self.unit, "x_scale": self.x_scale,
                 "alternative": self.alternative, "cut": self.cut if t.measure == "share_above" else np.nan,
                 "n_electrodes": self.n_electrodes, **t.__dict__} for t in (self.median_test, self.share_test)]
        return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the tests


def _re_trend(y: np.ndarray, v: np.ndarray, x: np.ndarray, alternative: str, confidence: float) -> dict:
    """Random-effects meta-regression ``y ~ a + b x`` (weights ``1 / (v + tau^2)``, DerSimonian–Laird tau^2),
    Knapp–Hartung t-test of ``b`` on ``k - 2`` degrees of freedom."""
    k = y.size
    X = np.column_stack([np.ones(k), x])
    df = k - 2

    def wls(w):
        xtwx = X.T @ (w[:, None] * X)
        inv = np.linalg.inv(xtwx)
        beta = inv @ (X.T @ (w * y))
        return beta, inv

    w0 = 1.0 / v
    beta0, inv0 = wls(w0)
    q_e = float(np.sum(w0 * (y - X @ beta0) ** 2))
    # tr(P), P = W - W X (X'WX)^-1 X' W
    trace = float(np.sum(w0) - np.trace(inv0 @ (X.T @ ((w0**2)[:, None] * X))))
    tau2 = max(0.0, (q_e - df) / trace) if trace > 0 else 0.0
    w = 1.0 / (v + tau2)
    beta, inv = wls(w)
    resid = y - X @ beta
    q = float(np.sum(w * resid**2)) / df
    se = math.sqrt(max(q * inv[1, 1], 0.0))
    slope = float(beta[1])
    if se > 0:
        t = slope / se
    else:  # the medians lie exactly on the line
        t = math.copysign(math.inf, slope) if slope != 0 else 0.0
    dist = stats.t(df)
    if alternative == "two-sided":
        p = float(2 * dist.sf(abs(t)))
    elif alternative == "increasing":
        p = float(dist.sf(t))
    else:
        p = float(dist.cdf(t))
    half = float(dist.ppf(0.5 + confidence / 2)) * se
    return {"slope": slope, "slope_ci_lo": slope - half, "slope_ci_hi": slope + half, "intercept": float(beta[0]),
            "t": float(t), "df": int(df), "p": min(1.0, p), "tau2": float(tau2), "fit": X @ beta}


def _permutation_kendall(x: np.ndarray, y: np.ndarray, alternative: str,
                         rng: np.random.Generator) -> tuple[float, float, float, bool]:
    """Kendall's tau-b of (x, y); p of permuting y against x (exact up to EXACT_MAX_ELECTRODES), its floor."""
    k = x.size
    i, j = np.triu_indices(k, 1)
    sx = np.sign(x[i] - x[j])
    tau = float(stats.kendalltau(x, y).statistic) if np.ptp(y) > 0 else 0.0
    exact = k <= EXACT_MAX_ELECTRODES
    if exact:
        perms = np.array(list(itertools.permutations(range(k))), dtype=np.intp)
    else:
        perms = np.array([rng.permutation(k) for _ in range(N_PERMUTATIONS)], dtype=np.intp)
    yp = y[perms]
    s = (np.sign(yp[:, i] - yp[:, j]) * sx).sum(axis=1)  # tau-b's numerator: its denominator does not change
    s_obs = float((np.sign(y[i] - y[j]) * sx).sum())
    if alternative == "two-sided":
        stat, obs = np.abs(s), abs(s_obs)
    elif alternative == "increasing":
        stat, obs = s, s_obs
    else:
        stat, obs = -s, -s_obs
    hits = np.count_nonzero(stat >= obs - 1e-9)
    floor_hits = np.count_nonzero(stat >= stat.max() - 1e-9)
    if exact:
        return tau, hits / stat.size, floor_hits / stat.size, True
    return tau, (hits + 1) / (stat.size + 1), 1 / (stat.size + 1), False


def _test(measure: str, y, v, x, alternative, confidence, rng) -> tuple[TrendTest, np.ndarray]:
    reg = _re_trend(y, v, x, alternative, confidence)
    fit = reg.pop("fit")
    tau, p_perm, p_min, exact = _permutation_kendall(x, y, alternative, rng)
    return TrendTest(measure=measure, kendall_tau=tau, p_perm=float(p_perm), p_perm_min=float(p_min),
                     perm_exact=exact, **reg), fit


# --------------------------------------------------------------------------- validation


def _check_values(values, names: list[str], x_scale: str) -> np.ndarray:
    if not isinstance(values, Mapping):
        raise TypeError(f"values must map each electrode name to its attribute value, got {type(values).__name__}")
    missing = [n for n in names if n not in values]
    if missing:
        raise ValueError(f"no attribute value for electrode(s) {missing}; give one number per electrode")
    out = []
    for n in names:
        val = values[n]
        if isinstance(val, (bool, np.bool_)) or not isinstance(val, (int, float, np.integer, np.floating)):
            raise TypeError(f"the attribute value of electrode {n!r} must be a number, got {val!r}")
        if not np.isfinite(float(val)):
            raise ValueError(f"the attribute value of electrode {n!r} must be finite, got {val!r}")
        out.append(float(val))
    arr = np.asarray(out)
    if x_scale == "log" and np.any(arr <= 0):
        bad = [n for n, a in zip(names, arr) if a <= 0]
        raise ValueError("a log scale needs attribute values above 0: " + ", ".join(
            f"{n} has {v:g}" for n, v in zip(bad, arr[arr <= 0])))
    if np.unique(arr).size < 2:
        raise ValueError(f"all {len(names)} electrodes have the same attribute value ({arr[0]:g}); a trend needs "
                         "at least two different values")
    return arr


def electrode_trend(
    tables: Mapping[str, pd.DataFrame],
    values: Mapping[str, float],
    *,
    metric: str = "detachment",
    cut: float = 0.5,
    attribute: str = "attribute",
    unit: str = "",
    x_scale: XScale = "linear",
    alternative: Alternative = "two-sided",
    edge_policy: EdgePolicy = "exclude",
    n_boot: int = 2000,
    confidence: float = 0.95,
    rng: Rng = None,
) -> ElectrodeTrend:
    """Per-electrode median and share above ``cut`` of a metric against an attribute, with nested trend tests.

    See the module notes for the tests, their assumptions and why they work on one number per electrode.

    Parameters
    ----------
    tables : {name: particle table}
        At least :data:`MIN_ELECTRODES` electrodes, each with at least two
        particles with a finite ``metric`` (after the edge policy).
    values : {name: float}
        The attribute of each electrode (e.g. its C-rate in C); at least two
        different values.
    metric : str
        Numeric particle-table column (default the detachment index, 0–1).
    cut : float
        Threshold of ``share_above`` (metric units).
    attribute, unit : str
        Name and unit of the attribute, carried for labels.
    x_scale : {"linear", "log", "rank"}
        The scale on which the trend is a straight line: the value, its
        base-10 logarithm (values > 0; e.g. C-rates 0.5, 1, 2, 5), or its rank
        (average ranks for ties: only the order counts).
    alternative : {"two-sided", "increasing", "decreasing"}
    edge_policy : {"exclude", "include", "miles"}
        ("miles" uses the same particles as "exclude": tests count particles.)
    n_boot : int
        Bootstrap resamples of each electrode's median (its CI and the
        sampling variance that weights it).
    confidence : float
        Level of the CIs (medians, shares, slopes).
    rng : numpy Generator or int seed
        Bootstrap (electrodes in attribute order), then Monte Carlo
        permutations where more than :data:`EXACT_MAX_ELECTRODES` electrodes.

    Returns
    -------
    ElectrodeTrend
    """
    tables = _check_tables(tables, min_count=MIN_ELECTRODES)
    _check_metric(tables, metric)
    _check_policy(edge_policy)
    n_boot = _check_n_boot(n_boot)
    confidence = _check_confidence(confidence)
    if x_scale not in X_SCALES:
        raise ValueError(f"x_scale must be one of {list(X_SCALES)}, got {x_scale!r}")
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {list(ALTERNATIVES)}, got {alternative!r}")
    if isinstance(cut, bool) or not isinstance(cut, (int, float, np.integer, np.floating)) or not np.isfinite(cut):
        raise ValueError(f"cut must be a finite number, got {cut!r}")
    if not isinstance(attribute, str) or not isinstance(unit, str):
        raise TypeError("attribute and unit must be text")
    names = list(tables)
    raw = _check_values(values, names, x_scale)
    order = np.argsort(raw, kind="stable")
    names, raw = [names[i] for i in order], raw[order]
    x = {"linear": raw, "log": np.log10(raw) if x_scale == "log" else raw,
         "rank": stats.rankdata(raw)}[x_scale].astype(float)
    base = base_seed(rng)
    rng = np.random.default_rng(base)  # the permutation test's
    rows, med_v, share_v = [], [], []
    for name, val, xi in zip(names, raw, x):
        v = _finite_values(tables[name], name, metric, edge_policy, 2)
        boot = _boot_medians(v, n_boot, sample_rng(base, v))  # the summary's resamples of this electrode
        lo, hi = _percentile_ci(boot, confidence)
        se = float(np.std(boot, ddof=1)) if n_boot > 1 else 0.0
        k = int((v > cut).sum())
        slo, shi = wilson_ci(k, v.size, confidence=confidence)
        p_tilde = (k + 0.5) / (v.size + 1)  # never 0 or 1: a share of 0 % still has a sampling variance
        rows.append({"electrode": name, "value": float(val), "x": float(xi), "n_valid": int(v.size),
                     "median": float(np.median(v)), "median_ci_lo": lo, "median_ci_hi": hi, "median_se": se,
                     "share_above": k / v.size, "share_ci_lo": slo, "share_ci_hi": shi,
                     "share_se": math.sqrt(p_tilde * (1 - p_tilde) / v.size)})
        # a median whose resamples all agree (ties) still has a tiny variance: never an infinite weight
        med_v.append(max(se**2, (hi - lo) ** 2 / 16, 1e-12))
        share_v.append(p_tilde * (1 - p_tilde) / v.size)
    table = pd.DataFrame(rows)
    med_test, med_fit = _test("median", table["median"].to_numpy(float), np.asarray(med_v), x, alternative,
                              confidence, rng)
    share_test, share_fit = _test("share_above", table["share_above"].to_numpy(float), np.asarray(share_v), x,
                                  alternative, confidence, rng)
    table["median_fit"] = med_fit
    table["share_fit"] = share_fit
    return ElectrodeTrend(table, med_test, share_test, metric, attribute.strip(), unit.strip(), x_scale,
                          alternative, float(cut), edge_policy, confidence, n_boot)


# --------------------------------------------------------------------------- reading


def trend_verdict(test: TrendTest, alpha: float = 0.05) -> str | None:
    """``"rises"`` or ``"falls"`` where a trend test's p is at most ``alpha`` and its slope not 0, else None (no
    clear trend): the one reading of :func:`trend_reading` and of the charts' titles."""
    if test.p <= alpha and test.slope != 0:
        return "rises" if test.slope > 0 else "falls"
    return None


def trend_file_table(res: ElectrodeTrend) -> pd.DataFrame:
    """The per-electrode table as files carry it (the page's CSV and the report's alike): one row per electrode,
    with what was measured against which attribute, on which scale, and how (metric, attribute, unit, x_scale,
    edge_policy, cut, confidence) after the electrode's name."""
    t = res.table.copy()
    lead = {"metric": res.metric, "attribute": res.attribute, "unit": res.unit, "x_scale": res.x_scale,
            "edge_policy": res.edge_policy, "cut": res.cut, "confidence": res.confidence}
    for i, (k, v) in enumerate(lead.items()):
        t.insert(1 + i, k, v)
    return t


def _fmt_p(p: float, alpha: float = 0.05) -> str:
    if not np.isfinite(p):
        return "p = nan"
    return "p < 0.001" if p < 0.001 else f"p = {p_text(p, alpha)}"


def slope_unit(res: ElectrodeTrend) -> str:
    """What one unit of ``x`` is: ``"per C"``, ``"per tenfold C-rate"``, ``"per rank of C-rate"``."""
    if res.x_scale == "log":
        return f"per tenfold {res.attribute}"
    if res.x_scale == "rank":
        return f"per step up the {res.attribute} order"
    return f"per {res.unit}" if res.unit and res.unit != "-" else f"per unit of {res.attribute}"


def trend_reading(res: ElectrodeTrend, *, label: str | None = None, alpha: float = 0.05,
                  measure: str = "median") -> str:
    """One plain sentence for the trend of ``measure`` ("median" or "share_above").

    E.g. "Median detachment index rises with C-rate across 4 electrodes (p = 0.008, random-effects trend of
    the electrode medians, t-test on 2 df; +0.12 per C, 95 % CI +0.07 to +0.17)".
    """
    if measure not in _MEASURES:
        raise ValueError(f"measure must be one of {list(_MEASURES)}, got {measure!r}")
    if not 0 < float(alpha) < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    t = res.median_test if measure == "median" else res.share_test
    words = label or res.metric.replace("_", " ")
    what = f"median {words}" if measure == "median" else f"share of particles with {words} above {res.cut:g}"
    what = what[0].upper() + what[1:]
    pct = round(res.confidence * 100)
    method = (f"{_fmt_p(t.p, alpha)}, random-effects trend of the electrode "
              f"{'medians' if measure == 'median' else 'shares'}, t-test on {t.df} df; "
              f"{t.slope:+.3g} {slope_unit(res)}, {pct} % CI {t.slope_ci_lo:+.3g} to {t.slope_ci_hi:+.3g}")
    k = res.n_electrodes
    verb = trend_verdict(t, alpha)
    if verb is not None:
        return f"{what} {verb} with {res.attribute} across {k} electrodes ({method})"
    return f"No clear trend of {what[0].lower() + what[1:]} with {res.attribute} across {k} electrodes ({method})"
