"""Pairwise tests between electrodes: Mann–Whitney U and Kolmogorov–Smirnov (Holm-corrected), effect sizes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from ._common import (
    EdgePolicy, Rng, _check_confidence, _check_metric, _check_n_boot, _check_policy, _check_tables, _finite_values,
)
from .statistics import (
    _boot_medians, _percentile_ci, base_seed, copy_numbers, effect_size_label, holm, p_text, sample_rng,
)


def _fmt_p(p: float, alpha: float) -> str:
    return "p=nan" if not np.isfinite(p) else f"p={p_text(p, alpha)}"


def reading(a: str, b: str, *, label: str, mwu_p_holm: float, ks_p_holm: float, delta: float,
            alpha: float = 0.05) -> str:
    """A plain-language sentence for one pair (Holm-adjusted p-values)."""
    if mwu_p_holm <= alpha:
        higher = a if delta > 0 else b
        return (f"{label} differs ({_fmt_p(mwu_p_holm, alpha)}, Mann–Whitney, Holm): higher in {higher}, "
                f"{effect_size_label(delta)} effect (Cliff's δ = {delta:+.2f})")
    if ks_p_holm <= alpha:
        return (f"typical {label} does not differ clearly ({_fmt_p(mwu_p_holm, alpha)}), but the distributions differ "
                f"in shape (KS {_fmt_p(ks_p_holm, alpha)}, Holm)")
    return f"no clear difference in {label} ({_fmt_p(mwu_p_holm, alpha)}, Mann–Whitney, Holm)"


@dataclass(frozen=True)
class PairwiseTests:
    """Tests between every pair of electrodes.

    Attributes
    ----------
    table : DataFrame
        One row per pair (``a`` before ``b`` in the input order); columns
        ``electrode_a``, ``electrode_b``, ``n_a``, ``n_b`` (particles tested),
        ``median_a``, ``median_b``, ``median_diff`` (``median_a - median_b``),
        ``diff_ci_lo``, ``diff_ci_hi`` (percentile bootstrap CI of that
        difference), ``ks_stat``, ``ks_p``, ``ks_p_holm`` (two-sample
        Kolmogorov–Smirnov), ``mwu_u`` (U of ``a``), ``mwu_p``, ``mwu_p_holm``
        (two-sided Mann–Whitney U), ``cliffs_delta`` (> 0: ``a`` larger),
        ``effect`` (negligible/small/medium/large), ``differs`` (``mwu_p_holm
        <= alpha``) and ``reading`` (one plain sentence).
    metric : str
    edge_policy : {"exclude", "include", "miles"}
        ("miles" tests the same particles as "exclude": tests count particles.)
    alpha, confidence : float
    n_boot : int
    """

    table: pd.DataFrame
    metric: str
    edge_policy: EdgePolicy
    alpha: float
    confidence: float
    n_boot: int


def pairwise_tests(
    tables: Mapping[str, pd.DataFrame],
    metric: str = "detachment",
    *,
    edge_policy: EdgePolicy = "exclude",
    rng: Rng = None,
    n_boot: int = 2000,
    alpha: float = 0.05,
    confidence: float = 0.95,
    label: str | None = None,
) -> PairwiseTests:
    """KS, Mann–Whitney U, Holm correction, Cliff's delta and a bootstrap CI for every pair of electrodes.

    Parameters
    ----------
    tables : {name: particle table}
        At least two electrodes, each with at least two particles with a
        finite ``metric`` (after the edge policy).
    metric : str
        Numeric column to compare.
    edge_policy : {"exclude", "include", "miles"}
    rng : numpy Generator or int seed
        For the bootstrap: ``n_boot`` medians are drawn per electrode, each
        from its own stream (:func:`~core.compare.statistics.sample_rng`:
        the seed and its values), and each pair's interval uses the
        differences of its two electrodes' sets: exactly
        :func:`bootstrap_median_diff_ci` with the same seed, whatever other
        electrodes are compared.
    n_boot : int
        Bootstrap resamples per pair.
    alpha : float
        Level for ``differs`` and the reading (on Holm-adjusted p-values).
    confidence : float
        Level of the bootstrap interval.
    label : str, optional
        Name of the metric in the reading (default: ``metric`` with spaces).

    Returns
    -------
    PairwiseTests
    """
    tables = _check_tables(tables, min_count=2)
    _check_metric(tables, metric)
    _check_policy(edge_policy)
    n_boot = _check_n_boot(n_boot)
    confidence = _check_confidence(confidence)
    if not 0 < float(alpha) < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    base = base_seed(rng)
    values = {name: _finite_values(t, name, metric, edge_policy, 2) for name, t in tables.items()}
    # one set of bootstrap medians per electrode, shared by its pairs, from its own stream (the summary's
    # resamples of it): a pair's interval does not depend on the other electrodes compared; a second electrode with
    # the same values gets a stream of its own (one stream for both read their difference as exactly 0)
    copies = dict(zip(values, copy_numbers(values.values())))
    boot = {name: _boot_medians(v, n_boot, sample_rng(base, v, copies[name])) for name, v in values.items()}
    rows = []
    for a, b in combinations(values, 2):
        xa, xb = values[a], values[b]
        ks = stats.ks_2samp(xa, xb)
        mw = stats.mannwhitneyu(xa, xb, alternative="two-sided")
        lo, hi = _percentile_ci(boot[a] - boot[b], confidence)
        ma, mb = float(np.median(xa)), float(np.median(xb))
        rows.append({
            "electrode_a": a, "electrode_b": b, "n_a": int(xa.size), "n_b": int(xb.size),
            "median_a": ma, "median_b": mb, "median_diff": ma - mb, "diff_ci_lo": lo, "diff_ci_hi": hi,
            "ks_stat": float(ks.statistic), "ks_p": float(ks.pvalue),
            "mwu_u": float(mw.statistic), "mwu_p": float(mw.pvalue),
            "cliffs_delta": float(2.0 * mw.statistic / (xa.size * xb.size) - 1.0),
        })
    t = pd.DataFrame(rows)
    t.insert(t.columns.get_loc("ks_p") + 1, "ks_p_holm", holm(t["ks_p"]))
    t.insert(t.columns.get_loc("mwu_p") + 1, "mwu_p_holm", holm(t["mwu_p"]))
    t["effect"] = [effect_size_label(d) for d in t["cliffs_delta"]]
    t["differs"] = t["mwu_p_holm"] <= alpha
    words = label or metric.replace("_", " ")
    t["reading"] = [reading(r.electrode_a, r.electrode_b, label=words, mwu_p_holm=r.mwu_p_holm,
                            ks_p_holm=r.ks_p_holm, delta=r.cliffs_delta, alpha=alpha) for r in t.itertuples()]
    return PairwiseTests(t, metric, edge_policy, float(alpha), confidence, n_boot)
