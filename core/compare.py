"""Statistics that compare electrodes: weights, distributions, tests, summaries and trends.

Input everywhere is a mapping ``{electrode name: particle table}`` (tables from
:func:`core.metrics.particle_table`, one row per particle); the order of the
mapping is the order of the output rows.  Nothing here imports streamlit.

Which particles count
---------------------
Particles cut by the volume edge (``touches_edge``) have truncated sizes and
only part of their surface is seen.  Every function takes an ``edge_policy``:

``"exclude"``
    edge particles are left out;
``"include"``
    every particle counts;
``"miles"``
    edge particles are left out and, in *weighted distributions*, each
    remaining particle gets the Miles–Lantuéjoul weight
    ``V_window / prod_i (L_i - d_i)`` (see :func:`miles_weights`), which undoes
    the bias against large particles (they touch the edge more often).
    Hypothesis tests, summaries and trends count particles, not weights: there
    ``"miles"`` selects the same particles as ``"exclude"``.

The policy used is recorded in every result.

Randomness (bootstrap) only comes through an ``rng`` argument (a
:class:`numpy.random.Generator` or an int seed): the same seed gives the same
numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

EdgePolicy = Literal["exclude", "include", "miles"]
Weighting = Literal["number", "volume"]
Binning = Literal["quantile", "fixed"]

EDGE_POLICIES: tuple[str, ...] = ("exclude", "include", "miles")
WEIGHTINGS: tuple[str, ...] = ("number", "volume")
BINNINGS: tuple[str, ...] = ("quantile", "fixed")

#: Bounding-box columns of the particle table (µm), used for Miles–Lantuéjoul weights.
EXTENT_COLUMNS: tuple[str, str, str] = ("extent_z_um", "extent_y_um", "extent_x_um")

#: Thresholds of |Cliff's delta| for negligible / small / medium / large (Romano et al. 2006).
CLIFF_THRESHOLDS: tuple[float, float, float] = (0.147, 0.33, 0.474)

#: In the "miles" policy without bounding-box columns, ``L - d`` is kept >= this share of ``L``.
MILES_MIN_FREE_SHARE: float = 0.05

Rng = np.random.Generator | int | None


# --------------------------------------------------------------------------- validation


def _check_tables(tables, *, min_count: int = 1) -> dict[str, pd.DataFrame]:
    if not isinstance(tables, Mapping):
        raise TypeError(f"tables must be a mapping {{electrode name: particle table}}, got {type(tables).__name__}")
    for name, t in tables.items():
        if not isinstance(t, pd.DataFrame):
            raise TypeError(f"the table of electrode {name!r} must be a pandas DataFrame, got {type(t).__name__}")
    if len(tables) < min_count:
        what = "electrode" if min_count == 1 else "electrodes"
        raise ValueError(f"need at least {min_count} {what} to compare, got {len(tables)}")
    return dict(tables)


def _check_metric(tables: Mapping[str, pd.DataFrame], metric: str, what: str = "metric") -> None:
    for name, t in tables.items():
        if metric not in t.columns:
            numeric = [c for c in t.columns if t[c].dtype.kind in "fiub"]
            raise ValueError(f"unknown {what} column {metric!r} in the table of electrode {name!r}; "
                             f"choose one of {numeric}")
        if t[metric].dtype.kind not in "fiub":
            raise ValueError(f"{what} column {metric!r} of electrode {name!r} is not numeric "
                             f"(dtype {t[metric].dtype})")


def _check_policy(edge_policy: str) -> None:
    if edge_policy not in EDGE_POLICIES:
        raise ValueError(f"edge_policy must be one of {list(EDGE_POLICIES)}, got {edge_policy!r}")


def _check_confidence(confidence: float) -> float:
    c = float(confidence)
    if not 0 < c < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    return c


def _check_n_boot(n_boot: int) -> int:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    return int(n_boot)


def _edge_mask(table: pd.DataFrame, name: str) -> np.ndarray:
    if "touches_edge" not in table.columns:
        raise ValueError(f"the table of electrode {name!r} has no 'touches_edge' column, needed to leave out "
                         "particles cut by the volume edge; use edge_policy='include'")
    return table["touches_edge"].to_numpy(bool)


def _selected(table: pd.DataFrame, name: str, edge_policy: str) -> np.ndarray:
    """Rows kept by the edge policy (bool, one per particle)."""
    if edge_policy == "include":
        return np.ones(len(table), bool)
    return ~_edge_mask(table, name)


def _policy_words(edge_policy: str) -> str:
    return "edge particles included" if edge_policy == "include" else "edge particles excluded"


def _finite_values(table: pd.DataFrame, name: str, metric: str, edge_policy: str, min_n: int) -> np.ndarray:
    """Finite ``metric`` values of the particles the policy keeps; at least ``min_n`` or ValueError."""
    v = table[metric].to_numpy(float)[_selected(table, name, edge_policy)]
    v = v[np.isfinite(v)]
    if v.size < min_n:
        if len(table) and v.size == 0 and not np.isfinite(table[metric].to_numpy(float)).any():
            raise ValueError(f"electrode {name!r} has no particle with a finite {metric} (all NaN); "
                             "nothing to compare")
        raise ValueError(f"electrode {name!r} has {v.size} particle{'s' if v.size != 1 else ''} with a finite "
                         f"{metric} ({_policy_words(edge_policy)}); at least {min_n} are needed")
    return v


# --------------------------------------------------------------------------- tables


def combine(tables: Mapping[str, pd.DataFrame], groups: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One long table of several electrodes.

    Parameters
    ----------
    tables : {name: particle table}
    groups : {name: group label}, optional

    Returns
    -------
    DataFrame
        The rows of every table with two leading columns ``electrode`` and
        ``group`` ("" where no group is given); empty when ``tables`` is.
    """
    tables = _check_tables(tables, min_count=0)
    parts = []
    for name, t in tables.items():
        t = t.copy()
        t.insert(0, "electrode", name)
        t.insert(1, "group", (groups or {}).get(name, ""))
        parts.append(t)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def drop_small(tables: Mapping[str, pd.DataFrame], min_diameter_um: float
               ) -> tuple[dict[str, pd.DataFrame], dict[str, int]]:
    """Leave out particles smaller than an equivalent diameter (fines, segmentation debris).

    A few-voxel "particle" has a detachment of 0, 1 or a coarse fraction in
    between.  In the real calendered NMC volume of ``../shared/data/real``
    95 of 1765 particles (5 %) had fewer than 16 voxels, with detachments
    spread over 0-1 (IQR 0.82); leaving out those under 2 µm (at an assumed
    0.4 µm voxel) moved the median detachment from 0.371 to 0.368 and the IQR
    from 0.129 to 0.122 (``bench/real_volume.py``).

    Parameters
    ----------
    tables : {name: particle table}
        With an ``equiv_diameter_um`` column.
    min_diameter_um : float
        Keep particles with ``equiv_diameter_um >= min_diameter_um``; 0 keeps all.

    Returns
    -------
    tables : {name: particle table}
        Filtered copies (the input tables themselves where nothing is dropped).
    dropped : {name: int}
        Particles left out per electrode.

    Raises
    ------
    ValueError
        A negative or non-finite ``min_diameter_um``, or a table without ``equiv_diameter_um``.
    """
    tables = _check_tables(tables, min_count=0)
    d = float(min_diameter_um)
    if not np.isfinite(d) or d < 0:
        raise ValueError(f"min_diameter_um must be a finite number >= 0, got {min_diameter_um!r}")
    out, dropped = {}, {}
    for name, t in tables.items():
        if "equiv_diameter_um" not in t.columns:
            raise ValueError(f"the table of electrode {name!r} has no 'equiv_diameter_um' column to filter by size")
        keep = t["equiv_diameter_um"].to_numpy() >= d if d > 0 else np.ones(len(t), bool)
        dropped[name] = int(len(t) - keep.sum())
        out[name] = t if keep.all() else t[keep].reset_index(drop=True)
    return out, dropped


# --------------------------------------------------------------------------- weights


def miles_weights(extents_um, window_um) -> np.ndarray:
    """Miles–Lantuéjoul edge-correction weights.

    A particle of extents ``d`` placed uniformly at random lies fully inside a
    box window of sides ``L`` with probability ``prod_i (L_i - d_i) / L_i``;
    weighting each particle seen fully inside by the inverse,
    ``V_window / prod_i (L_i - d_i)``, gives unbiased size distributions.

    Parameters
    ----------
    extents_um : (N, 3) float, µm
        Extent of each particle along (z, y, x), e.g. its bounding box.
    window_um : (3,) float, µm
        Side lengths of the imaged volume.

    Returns
    -------
    weights : (N,) float64
        >= 1; exactly 1 for a point (extent 0).

    Raises
    ------
    ValueError
        Wrong shapes, a non-positive window, negative extents, or a particle as
        wide as the window along an axis (it cannot lie fully inside).

    Notes
    -----
    On a voxel grid "fully inside" is ambiguous by about one voxel; with
    bounding-box extents ``d = (voxels along the axis) x spacing`` the formula
    is exact for a particle that may touch the outermost voxel layer.
    """
    d = np.asarray(extents_um, dtype=float)
    L = np.asarray(window_um, dtype=float).ravel()
    if L.shape != (3,):
        raise ValueError(f"window_um needs 3 side lengths (z, y, x) in µm, got {np.asarray(window_um).shape}")
    if not np.all(np.isfinite(L)) or np.any(L <= 0):
        raise ValueError(f"window_um must be finite and > 0 µm, got {tuple(L)}")
    if d.ndim != 2 or d.shape[1] != 3:
        raise ValueError(f"extents_um must have shape (N, 3), got {d.shape}")
    if np.any(~np.isfinite(d)) or np.any(d < 0):
        raise ValueError("extents_um must be finite and >= 0 µm")
    free = L[None, :] - d
    if np.any(free <= 0):
        i = int(np.flatnonzero((free <= 0).any(axis=1))[0])
        raise ValueError(f"particle {i} (extents {tuple(d[i])} µm) is as wide as the window {tuple(L)} µm along "
                         "an axis; it cannot lie fully inside it")
    return np.prod(L) / np.prod(free, axis=1)


@dataclass(frozen=True)
class ParticleWeights:
    """Per-particle weights for size statistics of one electrode.

    Attributes
    ----------
    weights : (N,) float64
        One per table row; 0 for a particle left out.
    weighting : {"number", "volume"}
        Base weight: 1 per particle, or its ``volume_um3``.
    edge_policy : {"exclude", "include", "miles"}
        What was done with particles cut by the volume edge.
    window_um : (3,) float or None
        Window used for Miles–Lantuéjoul weights (µm).
    extent_source : {"bbox", "equiv_diameter", "none"}
        What the Miles–Lantuéjoul weights used as particle extents: the
        bounding-box columns, the equivalent diameter on every axis (older
        tables without bounding boxes), or nothing (other policies).
    n_edge : int
        Particles that touch the volume edge (NaN-free count; 0 when unknown).
    n_capped : int
        Particles whose weight was capped (equivalent-diameter fallback only).
    """

    weights: np.ndarray
    weighting: Weighting
    edge_policy: EdgePolicy
    window_um: tuple[float, float, float] | None
    extent_source: Literal["bbox", "equiv_diameter", "none"]
    n_edge: int
    n_capped: int = 0

    @property
    def used(self) -> np.ndarray:
        """(N,) bool: particles with a positive weight."""
        return self.weights > 0


def particle_weights(
    table: pd.DataFrame,
    *,
    weighting: Weighting = "number",
    edge_policy: EdgePolicy = "exclude",
    window_um=None,
    name: str = "electrode",
) -> ParticleWeights:
    """Per-particle weights for number- or volume-weighted size statistics.

    Parameters
    ----------
    table : DataFrame
        Particle table; needs ``touches_edge`` (unless ``edge_policy="include"``),
        ``volume_um3`` (for ``weighting="volume"``) and, for ``"miles"``,
        ``extent_{z,y,x}_um`` (else ``equiv_diameter_um`` stands in, see Notes).
    weighting : {"number", "volume"}
    edge_policy : {"exclude", "include", "miles"}
    window_um : (3,) float, µm
        Side lengths of the imaged volume; required for ``"miles"``.
    name : str
        Electrode name used in error messages.

    Returns
    -------
    ParticleWeights

    Notes
    -----
    Tables written before the bounding-box columns existed fall back to the
    equivalent diameter as the extent along every axis (a sphere's extent;
    elongated particles are then under-weighted).  In that fallback a
    particle wider than the window gets ``L - d`` raised to
    :data:`MILES_MIN_FREE_SHARE` ``x L`` (weight capped) and is counted in
    ``n_capped``.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {list(WEIGHTINGS)}, got {weighting!r}")
    _check_policy(edge_policy)
    n = len(table)
    if weighting == "volume":
        if "volume_um3" not in table.columns:
            raise ValueError(f"volume weighting needs a 'volume_um3' column in the table of electrode {name!r}")
        base = table["volume_um3"].to_numpy(float).copy()
        base[~np.isfinite(base) | (base < 0)] = 0.0
    else:
        base = np.ones(n)
    edge = _edge_mask(table, name) if (edge_policy != "include" or "touches_edge" in table.columns) \
        else np.zeros(n, bool)
    n_edge = int(edge.sum())
    window = None
    source = "none"
    n_capped = 0
    if edge_policy == "include":
        w = base
    elif edge_policy == "exclude":
        w = np.where(edge, 0.0, base)
    else:
        if window_um is None:
            raise ValueError(f"edge_policy 'miles' needs the window size (µm per axis) of electrode {name!r}")
        L = np.asarray(window_um, dtype=float).ravel()
        if L.shape != (3,) or not np.all(np.isfinite(L)) or np.any(L <= 0):
            raise ValueError(f"window_um of electrode {name!r} must be 3 finite side lengths > 0 µm, "
                             f"got {window_um!r}")
        window = (float(L[0]), float(L[1]), float(L[2]))
        inner = ~edge
        if all(c in table.columns for c in EXTENT_COLUMNS) and \
                np.isfinite(table.loc[inner, list(EXTENT_COLUMNS)].to_numpy(float)).all():
            source = "bbox"
            d = table.loc[inner, list(EXTENT_COLUMNS)].to_numpy(float)
        elif "equiv_diameter_um" in table.columns:
            source = "equiv_diameter"
            d = np.repeat(table.loc[inner, "equiv_diameter_um"].to_numpy(float)[:, None], 3, axis=1)
            limit = L * (1 - MILES_MIN_FREE_SHARE)
            too_wide = (d > limit).any(axis=1)
            n_capped = int(too_wide.sum())
            d = np.minimum(d, limit)
        else:
            raise ValueError(f"edge_policy 'miles' needs particle extents: the table of electrode {name!r} has "
                             f"neither {list(EXTENT_COLUMNS)} nor 'equiv_diameter_um'")
        w = np.zeros(n)
        w[inner] = base[inner] * miles_weights(d, window)
    return ParticleWeights(np.asarray(w, float), weighting, edge_policy, window, source, n_edge, n_capped)


# --------------------------------------------------------------------------- weighted distributions


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


def weighted_histogram(values, bins=30, *, weights=None, range=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histogram of weighted data as shares of the weight in range.

    Parameters
    ----------
    values : (N,) float
    bins : int or (B + 1,) float
        Number of equal bins or the bin edges.
    weights : (N,) float >= 0, optional
    range : (lo, hi), optional
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
    if range is None and np.ndim(bins) == 0:
        lo, hi = float(x.min()), float(x.max())
        range = (lo, hi if hi > lo else lo + 1.0)
    wsum, edges = np.histogram(x, bins=bins, range=range, weights=w)
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
    range: tuple[float, float] | None = None,
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
    range : (lo, hi), optional
        Histogram range (default: the pooled range of the used values).

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
                              window_um=(windows_um or {}).get(name), name=name)
        v = t[metric].to_numpy(float)
        ok = np.isfinite(v) & pw.used
        if not ok.any():
            raise ValueError(f"electrode {name!r} has no particle with a finite {metric} "
                             f"({_policy_words(edge_policy)}, {weighting}-weighted)")
        data[name] = (v[ok], pw.weights[ok], pw, len(t))
    if range is None:
        lo = min(float(x.min()) for x, *_ in data.values())
        hi = max(float(x.max()) for x, *_ in data.values())
        range = (lo, hi if hi > lo else lo + 1.0)
    hist, ecdf, dens, qrows = [], [], [], []
    for name, (x, w, pw, n_rows) in data.items():
        share, count, edges = weighted_histogram(x, bins, weights=w, range=range)
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


# --------------------------------------------------------------------------- statistics


def holm(pvalues) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (step-down, family-wise error rate).

    Parameters
    ----------
    pvalues : (M,) float in [0, 1]
        NaN entries are left NaN and not counted in the family.

    Returns
    -------
    adjusted : (M,) float64
        ``max_{j <= i} min(1, (m - j + 1) p_(j))`` in sorted order, returned in
        the input order.  Reject at level ``alpha`` where ``adjusted <= alpha``.
    """
    p = np.asarray(pvalues, dtype=float).ravel()
    if np.any(p[np.isfinite(p)] < 0) or np.any(p[np.isfinite(p)] > 1) or np.any(np.isinf(p)):
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


def _two_samples(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        raise ValueError(f"both samples need at least one finite value, got {a.size} and {b.size}")
    return a, b


def cliffs_delta(a, b) -> float:
    """Cliff's delta: ``P(A > B) - P(A < B)`` over all pairs, in [-1, 1].

    Computed from the Mann–Whitney U of ``a`` (ties count one half), as
    ``2 U / (n_a n_b) - 1``; positive when ``a`` tends to be larger.
    NaN values are ignored.
    """
    a, b = _two_samples(a, b)
    u = stats.mannwhitneyu(a, b, alternative="two-sided").statistic
    return float(2.0 * u / (a.size * b.size) - 1.0)


def effect_size_label(delta: float) -> str:
    """"negligible", "small", "medium" or "large" for |Cliff's delta| (Romano et al. 2006)."""
    d = abs(float(delta))
    if not np.isfinite(d):
        return "unknown"
    t1, t2, t3 = CLIFF_THRESHOLDS
    return "negligible" if d < t1 else "small" if d < t2 else "medium" if d < t3 else "large"


def wilson_ci(k: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``k / n``.

    Returns
    -------
    (lo, hi) : float
        (NaN, NaN) when ``n == 0``.
    """
    c = _check_confidence(confidence)
    k, n = int(k), int(n)
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return (np.nan, np.nan)
    z = stats.norm.ppf(0.5 + c / 2)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # exact ends at k = 0 and k = n (rounding left 1e-17 there), and the interval always holds p
    lo = 0.0 if k == 0 else min(p, max(0.0, centre - half))
    hi = 1.0 if k == n else max(p, min(1.0, centre + half))
    return (lo, hi)


def _boot_medians(x: np.ndarray, n_boot: int, rng: np.random.Generator, chunk: int = 2_000_000) -> np.ndarray:
    """Medians of ``n_boot`` resamples (with replacement) of ``x``, drawn in memory-bounded chunks."""
    n = x.size
    out = np.empty(n_boot)
    step = max(1, chunk // n)
    for s in np.arange(0, n_boot, step):
        m = min(step, n_boot - s)
        out[s : s + m] = np.median(x[rng.integers(0, n, size=(m, n))], axis=1)
    return out


def _percentile_ci(boot: np.ndarray, confidence: float) -> tuple[float, float]:
    a = (1 - confidence) / 2
    lo, hi = np.quantile(boot, [a, 1 - a])
    return float(lo), float(hi)


def bootstrap_median_ci(x, *, n_boot: int = 2000, rng: Rng = None,
                        confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the median.

    Parameters
    ----------
    x : (N,) float
        NaN values are ignored; at least 2 finite values.
    n_boot : int
        Resamples.
    rng : numpy Generator or int seed
    confidence : float

    Returns
    -------
    (lo, hi) : float
    """
    x = np.asarray(x, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if x.size < 2:
        raise ValueError(f"a bootstrap interval needs at least 2 finite values, got {x.size}")
    boot = _boot_medians(x, _check_n_boot(n_boot), np.random.default_rng(rng))
    return _percentile_ci(boot, _check_confidence(confidence))


def bootstrap_median_diff_ci(a, b, *, n_boot: int = 2000, rng: Rng = None,
                             confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``median(a) - median(b)``.

    ``a`` and ``b`` are resampled independently (``n_boot`` times each).
    NaN values are ignored; each sample needs at least 2 finite values.

    Returns
    -------
    (lo, hi) : float
    """
    a, b = _two_samples(a, b)
    if a.size < 2 or b.size < 2:
        raise ValueError(f"a bootstrap interval needs at least 2 finite values per sample, got {a.size} and {b.size}")
    n_boot = _check_n_boot(n_boot)
    rng = np.random.default_rng(rng)
    boot = _boot_medians(a, n_boot, rng) - _boot_medians(b, n_boot, rng)
    return _percentile_ci(boot, _check_confidence(confidence))


# --------------------------------------------------------------------------- pairwise tests


def _fmt_p(p: float) -> str:
    return "p=nan" if not np.isfinite(p) else f"p={p:.2g}"


def reading(a: str, b: str, *, label: str, mwu_p_holm: float, ks_p_holm: float, delta: float,
            alpha: float = 0.05) -> str:
    """A plain-language sentence for one pair (Holm-adjusted p-values)."""
    if mwu_p_holm <= alpha:
        higher = a if delta > 0 else b
        return (f"{label} differs ({_fmt_p(mwu_p_holm)}, Mann–Whitney, Holm): higher in {higher}, "
                f"{effect_size_label(delta)} effect (Cliff's δ = {delta:+.2f})")
    if ks_p_holm <= alpha:
        return (f"typical {label} does not differ clearly ({_fmt_p(mwu_p_holm)}), but the distributions differ "
                f"in shape (KS {_fmt_p(ks_p_holm)}, Holm)")
    return f"no clear difference in {label} ({_fmt_p(mwu_p_holm)}, Mann–Whitney, Holm)"


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
        For the bootstrap: ``n_boot`` medians are drawn per electrode, in
        input order, and each pair's interval uses the differences of its two
        electrodes' sets (for two electrodes this is exactly
        :func:`bootstrap_median_diff_ci` with the same seed).
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
    rng = np.random.default_rng(rng)
    values = {name: _finite_values(t, name, metric, edge_policy, 2) for name, t in tables.items()}
    # one set of bootstrap medians per electrode (drawn in input order), shared by its pairs
    boot = {name: _boot_medians(v, n_boot, rng) for name, v in values.items()}
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


# --------------------------------------------------------------------------- summary


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
    rng = np.random.default_rng(rng)
    rows = []
    for name, t in tables.items():
        v = _finite_values(t, name, metric, edge_policy, 2)
        sel = _selected(t, name, edge_policy)
        q1, med, q3 = np.quantile(v, [0.25, 0.5, 0.75])
        lo, hi = bootstrap_median_ci(v, n_boot=n_boot, rng=rng, confidence=confidence)
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


# --------------------------------------------------------------------------- trends


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


def trend(
    tables: Mapping[str, pd.DataFrame],
    x: str,
    y: str = "detachment",
    *,
    bins: int | Sequence[float] = 5,
    binning: Binning = "quantile",
    range: tuple[float, float] | None = None,
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
    range : (lo, hi), optional
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
    rng = np.random.default_rng(rng)
    pairs = {}
    for name, t in tables.items():
        sel = _selected(t, name, edge_policy)
        xv, yv = t[x].to_numpy(float)[sel], t[y].to_numpy(float)[sel]
        ok = np.isfinite(xv) & np.isfinite(yv)
        if ok.sum() < 2:
            raise ValueError(f"electrode {name!r} has {int(ok.sum())} particle{'s' if ok.sum() != 1 else ''} with "
                             f"finite {x} and {y} ({_policy_words(edge_policy)}); at least 2 are needed")
        pairs[name] = (xv[ok], yv[ok])
    pooled = np.concatenate([p[0] for p in pairs.values()])
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
            lo, hi = range if range is not None else (float(pooled.min()), float(pooled.max()))
            edges = np.linspace(lo, hi, int(bins) + 1)
        if edges.size < 2 or edges[-1] <= edges[0]:
            edges = np.array([pooled.min(), pooled.min() + 1.0]) if range is None else np.asarray(range, float)
        binning_used = binning
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
            lo, hi = bootstrap_median_ci(yk, n_boot=n_boot, rng=rng, confidence=confidence) if n >= 2 \
                else (np.nan, np.nan)
            rows.append({
                "electrode": name, "bin": int(k), "x_lo": float(edges[k]), "x_hi": float(edges[k + 1]),
                "x_mid": float((edges[k] + edges[k + 1]) / 2), "x_median": float(np.median(xk)) if n else np.nan,
                "n": n, "median": float(med), "ci_lo": lo, "ci_hi": hi,
                "q1": float(q1), "q3": float(q3), "iqr": float(q3 - q1), "low_n": n < low_n,
            })
    return Trend(pd.DataFrame(rows), x, y, binning_used, tuple(float(e) for e in edges), int(low_n),
                 edge_policy, confidence, n_boot)


__all__ = [
    "BINNINGS", "CLIFF_THRESHOLDS", "EDGE_POLICIES", "EXTENT_COLUMNS", "QUANTILES", "WEIGHTINGS",
    "Binning", "Distributions", "EdgePolicy", "PairwiseTests", "ParticleWeights", "Summary", "Trend", "Weighting",
    "bootstrap_median_ci", "bootstrap_median_diff_ci", "cliffs_delta", "combine", "distributions", "drop_small",
    "effect_size_label", "holm", "miles_weights", "pairwise_tests", "particle_weights", "reading", "summary",
    "trend", "weighted_density", "weighted_ecdf", "weighted_histogram", "weighted_quantile", "wilson_ci",
]
