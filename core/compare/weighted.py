"""Weighted distributions: quantiles, ECDF, histogram, density, and the per-electrode :func:`distributions`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ._common import EdgePolicy, Weighting, _check_metric, _check_tables, _policy_words
from .weights import particle_weights


def _clean_weighted(values, weights) -> tuple[np.ndarray, np.ndarray]:
    """Finite values with positive weights (weights default to 1)."""
    x = np.asarray(values, dtype=float).ravel()
    if weights is None:
        w = np.ones_like(x)
    else:
        w = np.asarray(weights, dtype=float).ravel()
        if w.shape != x.shape:
            raise ValueError(f"weights must have one value per value: {w.shape} weights for {x.shape} values")
        if np.any(w[np.isfinite(w)] < 0) or np.any(np.isnan(w)):
            raise ValueError("weights must be >= 0 and not NaN")
    keep = np.isfinite(x) & (w > 0)
    x, w = x[keep], w[keep]
    if x.size == 0:
        raise ValueError("no finite value with a positive weight")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite")
    return x, w


def weighted_quantile(values, q, weights=None) -> float | np.ndarray:
    """Quantiles of weighted data, linear between data points.

    Each sorted value ``x_i`` with weight ``w_i`` sits at the centre of its
    share of the total weight ``W``, ``c_i = S_i - w_i / 2`` (``S_i`` the
    cumulative weight), placed at ``p_i = (c_i - w̄ / 2) / (W - w̄)`` with the
    mean weight ``w̄ = W / N``; quantiles are interpolated linearly between the
    ``p_i`` and held at the end values outside ``[p_1, p_N]``.  With equal
    weights ``p_i = (i - 1) / (N - 1)``: exactly :func:`numpy.quantile` (its
    default, linear method).  A heavy value holds a long stretch of ``p`` (the
    median of 0.1, 0.2, 0.9 weighted 1, 1, 100 is 0.89); the result does not
    change when all weights are scaled.

    Parameters
    ----------
    values : (N,) float
        NaN values (and values of weight 0) are ignored.
    q : float or (K,) float in [0, 1]
    weights : (N,) float >= 0, optional

    Returns
    -------
    float or (K,) float64
    """
    x, w = _clean_weighted(values, weights)
    qa = np.asarray(q, dtype=float)
    if np.any(~np.isfinite(qa)) or np.any(qa < 0) or np.any(qa > 1):
        raise ValueError(f"quantiles must lie in [0, 1], got {q!r}")
    order = np.argsort(x, kind="stable")
    x, w = x[order], w[order]
    if x.size == 1:
        out = np.full(qa.shape, x[0])
    else:
        total = w.sum()
        mean_w = total / w.size
        p = (np.cumsum(w) - w / 2 - mean_w / 2) / (total - mean_w)
        out = np.interp(qa, p, x)
    return float(out) if np.ndim(out) == 0 else out


def weighted_ecdf(values, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """Empirical cumulative distribution of weighted data.

    Parameters
    ----------
    values : (N,) float
        NaN values (and values of weight 0) are ignored.
    weights : (N,) float >= 0, optional

    Returns
    -------
    x : (M,) float64
        The distinct values, ascending.
    F : (M,) float64
        Share of the total weight at values <= ``x`` (the last is 1).
    """
    x, w = _clean_weighted(values, weights)
    ux, inv = np.unique(x, return_inverse=True)
    cum = np.cumsum(np.bincount(inv, weights=w))
    return ux, cum / cum[-1]


def weighted_histogram(values, bins=30, *, weights=None, value_range=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histogram of weighted data as shares of the weight in range.

    Parameters
    ----------
    values : (N,) float
    bins : int or (B + 1,) float
        Number of equal bins or the bin edges.
    weights : (N,) float >= 0, optional
    value_range : (lo, hi), optional
        Range of equal bins (default: the data range).

    Returns
    -------
    share : (B,) float64
        Weight per bin / weight of all values inside the bins (sums to 1).
    count : (B,) int64
        Particles (unweighted) per bin.
    edges : (B + 1,) float64
    """
    x, w = _clean_weighted(values, weights)
    if value_range is None and np.ndim(bins) == 0:
        lo, hi = float(x.min()), float(x.max())
        value_range = (lo, hi if hi > lo else lo + 1.0)
    wsum, edges = np.histogram(x, bins=bins, range=value_range, weights=w)
    count, _ = np.histogram(x, bins=edges)
    total = wsum.sum()
    return (wsum / total if total > 0 else wsum.astype(float)), count.astype(np.int64), edges


def weighted_density(values, weights=None, *, grid: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian kernel density of weighted data over the data range (for violin plots).

    Parameters
    ----------
    values : (N,) float
    weights : (N,) float >= 0, optional
    grid : int
        Number of evaluation points.

    Returns
    -------
    x : (grid,) float64
        From the smallest to the largest value; empty when fewer than two
        distinct values (no density to draw).
    density : (grid,) float64
        Scott's-rule :class:`scipy.stats.gaussian_kde`, integrating to ~1.
    """
    x, w = _clean_weighted(values, weights)
    if np.unique(x).size < 2:
        return np.empty(0), np.empty(0)
    kde = stats.gaussian_kde(x, weights=w)
    xs = np.linspace(x.min(), x.max(), int(grid))
    return xs, kde(xs)


QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class Distributions:
    """Weighted distributions of one metric for several electrodes.

    Attributes
    ----------
    metric : str
    weighting : {"number", "volume"}
    edge_policy : {"exclude", "include", "miles"}
    histogram : DataFrame
        ``electrode``, ``bin_lo``, ``bin_hi`` (metric units; the same edges for
        every electrode), ``share`` (of the electrode's weight, sums to 1),
        ``count`` (particles).
    ecdf : DataFrame
        ``electrode``, ``value``, ``ecdf`` (share of the weight <= value).
    density : DataFrame
        ``electrode``, ``value``, ``density`` (weighted Gaussian KDE; no rows for
        an electrode with fewer than two distinct values).
    quantiles : DataFrame
        One row per electrode: ``electrode``, ``n_particles`` (rows),
        ``n_used`` (finite value, positive weight), ``weight_total``, ``mean``,
        ``q05``, ``q25``, ``median``, ``q75``, ``q95`` (weighted), ``n_edge``,
        ``extent_source``, ``n_capped`` (see :class:`ParticleWeights`).
    """

    metric: str
    weighting: Weighting
    edge_policy: EdgePolicy
    histogram: pd.DataFrame
    ecdf: pd.DataFrame
    density: pd.DataFrame
    quantiles: pd.DataFrame


def distributions(
    tables: Mapping[str, pd.DataFrame],
    metric: str,
    *,
    weighting: Weighting = "number",
    edge_policy: EdgePolicy = "exclude",
    windows_um: Mapping[str, Sequence[float]] | None = None,
    bins: int = 30,
    value_range: tuple[float, float] | None = None,
    discs_um: Mapping[str, float | None] | None = None,
) -> Distributions:
    """Weighted histogram, ECDF, density and quantiles of ``metric`` per electrode.

    Parameters
    ----------
    tables : {name: particle table}
    metric : str
        A numeric column of the tables.
    weighting : {"number", "volume"}
    edge_policy : {"exclude", "include", "miles"}
    windows_um : {name: (3,) float, µm}, optional
        Volume size of each electrode; required for ``"miles"``.
    bins : int
        Histogram bins, shared by all electrodes.
    value_range : (lo, hi), optional
        Histogram range (default: the pooled range of the used values).
    discs_um : {name: float or None}, optional
        The radius (µm) of an electrode's circular field of view, for ``"miles"``
        (:func:`~core.compare.weights.particle_weights`' ``disc_radius_um``); None or absent: its box.

    Returns
    -------
    Distributions

    Raises
    ------
    ValueError
        Unknown metric, no electrode, or an electrode without any used particle
        with a finite value.
    """
    tables = _check_tables(tables)
    _check_metric(tables, metric)
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    data = {}
    for name, t in tables.items():
        pw = particle_weights(t, weighting=weighting, edge_policy=edge_policy,
                              window_um=(windows_um or {}).get(name), name=name,
                              disc_radius_um=(discs_um or {}).get(name))
        v = t[metric].to_numpy(float)
        ok = np.isfinite(v) & pw.used
        if not ok.any():
            raise ValueError(f"electrode {name!r} has no particle with a finite {metric} "
                             f"({_policy_words(edge_policy)}, {weighting}-weighted)")
        data[name] = (v[ok], pw.weights[ok], pw, len(t))
    if value_range is None:
        lo = min(float(x.min()) for x, *_ in data.values())
        hi = max(float(x.max()) for x, *_ in data.values())
        value_range = (lo, hi if hi > lo else lo + 1.0)
    hist, ecdf, dens, qrows = [], [], [], []
    for name, (x, w, pw, n_rows) in data.items():
        share, count, edges = weighted_histogram(x, bins, weights=w, value_range=value_range)
        hist.append(pd.DataFrame({"electrode": name, "bin_lo": edges[:-1], "bin_hi": edges[1:],
                                  "share": share, "count": count}))
        ux, F = weighted_ecdf(x, w)
        ecdf.append(pd.DataFrame({"electrode": name, "value": ux, "ecdf": F}))
        dx, dd = weighted_density(x, w)
        dens.append(pd.DataFrame({"electrode": name, "value": dx, "density": dd}))
        q = weighted_quantile(x, QUANTILES, w)
        qrows.append({"electrode": name, "n_particles": n_rows, "n_used": int(x.size),
                      "weight_total": float(w.sum()), "mean": float(np.average(x, weights=w)),
                      **{f"q{round(p * 100):02d}" if p != 0.5 else "median": float(v) for p, v in zip(QUANTILES, q)},
                      "n_edge": pw.n_edge, "extent_source": pw.extent_source, "n_capped": pw.n_capped})
    return Distributions(metric, weighting, edge_policy, pd.concat(hist, ignore_index=True),
                         pd.concat(ecdf, ignore_index=True), pd.concat(dens, ignore_index=True),
                         pd.DataFrame(qrows))
