"""Binned trends: median of one column per bin of another, with bootstrap CIs (:func:`trend`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._common import (
    BINNINGS, Binning, EdgePolicy, Rng, _check_confidence, _check_metric, _check_n_boot, _check_policy,
    _check_tables, _policy_words, _selected,
)
from .statistics import base_seed, bootstrap_median_ci


@dataclass(frozen=True)
class Trend:
    """Binned trend of ``y`` against ``x`` per electrode.

    Attributes
    ----------
    table : DataFrame
        One row per electrode and bin (empty bins included): ``electrode``,
        ``bin`` (0-based), ``x_lo``, ``x_hi`` (bin edges, x units), ``x_mid``
        (bin centre), ``x_median`` (median x of the bin's particles), ``n``,
        ``median``, ``ci_lo``, ``ci_hi`` (percentile bootstrap of the median;
        NaN when n < 2), ``q1``, ``q3``, ``iqr`` (spread within the bin) and
        ``low_n`` (n < the threshold).
    x, y : str
    binning : {"quantile", "fixed", "edges"}
    edges : tuple of float
        The bin edges (shared by all electrodes).
    low_n : int
        Threshold of the ``low_n`` flag.
    edge_policy : {"exclude", "include", "miles"}
    confidence : float
    n_boot : int
    """

    table: pd.DataFrame
    x: str
    y: str
    binning: str
    edges: tuple[float, ...]
    low_n: int
    edge_policy: EdgePolicy
    confidence: float
    n_boot: int

    @property
    def n_low(self) -> int:
        """Number of (electrode, bin) cells with too few particles."""
        return int(self.table["low_n"].sum())


def _bin_edges(pooled: np.ndarray, bins, binning: str, value_range) -> tuple[np.ndarray, str]:
    """Bin edges of :func:`trend` over the pooled ``x`` values, and the binning used ("edges" when given)."""
    if np.ndim(bins) == 1:
        edges = np.asarray(bins, dtype=float)
        if edges.size < 2 or np.any(~np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
            raise ValueError(f"bin edges must be at least 2 finite, increasing values, got {list(bins)}")
        binning_used = "edges"
    else:
        if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
            raise ValueError(f"bins must be a positive integer or a sequence of edges, got {bins!r}")
        if binning not in BINNINGS:
            raise ValueError(f"binning must be one of {list(BINNINGS)}, got {binning!r}")
        if binning == "quantile":
            edges = np.unique(np.quantile(pooled, np.linspace(0, 1, int(bins) + 1)))
        else:
            lo, hi = value_range if value_range is not None else (float(pooled.min()), float(pooled.max()))
            edges = np.linspace(lo, hi, int(bins) + 1)
        if edges.size < 2 or edges[-1] <= edges[0]:
            edges = np.array([pooled.min(), pooled.min() + 1.0]) if value_range is None else np.asarray(value_range, float)
        binning_used = binning
    return edges, binning_used


def trend(
    tables: Mapping[str, pd.DataFrame],
    x: str,
    y: str = "detachment",
    *,
    bins: int | Sequence[float] = 5,
    binning: Binning = "quantile",
    value_range: tuple[float, float] | None = None,
    edge_policy: EdgePolicy = "exclude",
    low_n: int = 10,
    n_boot: int = 1000,
    confidence: float = 0.95,
    rng: Rng = None,
) -> Trend:
    """Median of ``y`` per bin of ``x`` with bootstrap CIs, n and spread, per electrode.

    Parameters
    ----------
    tables : {name: particle table}
        Each electrode needs at least two particles with finite ``x`` and ``y``.
    x, y : str
        Numeric columns (e.g. ``equiv_diameter_um`` or ``depth_frac`` against
        ``detachment``).
    bins : int or (B + 1,) float
        Number of bins, or explicit edges (then ``binning`` is ignored).
    binning : {"quantile", "fixed"}
        Edges at pooled quantiles of ``x`` over all electrodes (about equal
        particle counts; repeated edges merge) or equally spaced.
    value_range : (lo, hi), optional
        Range of fixed bins (default: pooled range of x), e.g. (0, 1) for depth.
    edge_policy : {"exclude", "include", "miles"}
    low_n : int
        Bins with fewer particles are flagged ``low_n``.
    n_boot, confidence, rng
        Bootstrap of each bin's median.

    Returns
    -------
    Trend
    """
    tables = _check_tables(tables)
    _check_metric(tables, x, "x")
    _check_metric(tables, y, "y")
    _check_policy(edge_policy)
    n_boot = _check_n_boot(n_boot)
    confidence = _check_confidence(confidence)
    if isinstance(low_n, bool) or not isinstance(low_n, (int, np.integer)) or low_n < 0:
        raise ValueError(f"low_n must be an integer >= 0, got {low_n!r}")
    base = base_seed(rng)
    pairs = {}
    for name, t in tables.items():
        sel = _selected(t, name, edge_policy)
        xv, yv = t[x].to_numpy(float)[sel], t[y].to_numpy(float)[sel]
        ok = np.isfinite(xv) & np.isfinite(yv)
        if ok.sum() < 2:
            raise ValueError(f"electrode {name!r} has {int(ok.sum())} particle{'s' if ok.sum() != 1 else ''} with "
                             f"finite {x} and {y} ({_policy_words(edge_policy)}); at least 2 are needed")
        pairs[name] = (xv[ok], yv[ok])
    edges, binning_used = _bin_edges(np.concatenate([p[0] for p in pairs.values()]), bins, binning, value_range)
    nb = edges.size - 1
    rows = []
    for name, (xv, yv) in pairs.items():
        inside = (xv >= edges[0]) & (xv <= edges[-1])
        which = np.clip(np.searchsorted(edges, xv, side="right") - 1, 0, nb - 1)
        for k in np.arange(nb):
            m = inside & (which == k)
            yk, xk = yv[m], xv[m]
            n = int(yk.size)
            q1, med, q3 = np.quantile(yk, [0.25, 0.5, 0.75]) if n else (np.nan,) * 3
            lo, hi = bootstrap_median_ci(yk, n_boot=n_boot, rng=base, confidence=confidence) if n >= 2 \
                else (np.nan, np.nan)
            rows.append({
                "electrode": name, "bin": int(k), "x_lo": float(edges[k]), "x_hi": float(edges[k + 1]),
                "x_mid": float((edges[k] + edges[k + 1]) / 2), "x_median": float(np.median(xk)) if n else np.nan,
                "n": n, "median": float(med), "ci_lo": lo, "ci_hi": hi,
                "q1": float(q1), "q3": float(q3), "iqr": float(q3 - q1), "low_n": n < low_n,
            })
    return Trend(pd.DataFrame(rows), x, y, binning_used, tuple(float(e) for e in edges), int(low_n),
                 edge_policy, confidence, n_boot)
