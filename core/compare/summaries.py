"""One row per electrode: counts, median with bootstrap CI, quartiles, detached share (:func:`summary`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._common import (
    EdgePolicy, Rng, _check_confidence, _check_metric, _check_n_boot, _check_policy, _check_tables, _finite_values,
    _selected,
)
from .statistics import base_seed, bootstrap_median_ci, wilson_ci


@dataclass(frozen=True)
class Summary:
    """Per-electrode summary of one metric (detachment by default).

    Attributes
    ----------
    table : DataFrame
        One row per electrode: ``electrode``, ``group``, ``n_particles`` (all
        rows), ``n_used`` (kept by the edge policy), ``n_valid`` (kept and with
        a finite metric), ``median``, ``median_ci_lo``, ``median_ci_hi``
        (percentile bootstrap), ``q1``, ``q3``, ``iqr``, ``share_above`` (share
        of the valid particles with metric > ``cut``), ``share_ci_lo``,
        ``share_ci_hi`` (Wilson score interval), ``median_equiv_diameter_um``
        (of the used particles).
    metric : str
    edge_policy : {"exclude", "include", "miles"}
    cut : float
    confidence : float
    n_boot : int
    """

    table: pd.DataFrame
    metric: str
    edge_policy: EdgePolicy
    cut: float
    confidence: float
    n_boot: int


def summary(
    tables: Mapping[str, pd.DataFrame],
    groups: Mapping[str, str] | None = None,
    *,
    metric: str = "detachment",
    cut: float = 0.5,
    edge_policy: EdgePolicy = "exclude",
    n_boot: int = 2000,
    confidence: float = 0.95,
    rng: Rng = None,
) -> Summary:
    """Per-electrode n, median with bootstrap CI, quartiles and the share above a cut.

    Parameters
    ----------
    tables : {name: particle table}
        Each electrode needs at least two particles with a finite ``metric``
        (after the edge policy).
    groups : {name: group label}, optional
    metric : str
    cut : float
        Threshold for ``share_above`` (metric units; for detachment 0.5 means
        "more pore than CBD on the open interface").
    edge_policy : {"exclude", "include", "miles"}
    n_boot : int
    confidence : float
    rng : numpy Generator or int seed

    Returns
    -------
    Summary
    """
    tables = _check_tables(tables)
    _check_metric(tables, metric)
    _check_policy(edge_policy)
    n_boot = _check_n_boot(n_boot)
    confidence = _check_confidence(confidence)
    if not np.isfinite(float(cut)):
        raise ValueError(f"cut must be a finite number, got {cut!r}")
    base = base_seed(rng)
    rows = []
    for name, t in tables.items():
        v = _finite_values(t, name, metric, edge_policy, 2)
        sel = _selected(t, name, edge_policy)
        q1, med, q3 = np.quantile(v, [0.25, 0.5, 0.75])
        # each electrode's own stream: its interval does not depend on the others compared
        lo, hi = bootstrap_median_ci(v, n_boot=n_boot, rng=base, confidence=confidence)
        k = int((v > cut).sum())
        slo, shi = wilson_ci(k, v.size, confidence=confidence)
        diam = t["equiv_diameter_um"].to_numpy(float)[sel] if "equiv_diameter_um" in t.columns else np.empty(0)
        diam = diam[np.isfinite(diam)]
        rows.append({
            "electrode": name, "group": (groups or {}).get(name, ""),
            "n_particles": int(len(t)), "n_used": int(sel.sum()), "n_valid": int(v.size),
            "median": float(med), "median_ci_lo": lo, "median_ci_hi": hi,
            "q1": float(q1), "q3": float(q3), "iqr": float(q3 - q1),
            "share_above": k / v.size, "share_ci_lo": slo, "share_ci_hi": shi,
            "median_equiv_diameter_um": float(np.median(diam)) if diam.size else np.nan,
        })
    return Summary(pd.DataFrame(rows), metric, edge_policy, float(cut), confidence, n_boot)
