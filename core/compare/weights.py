"""Particle weights: edge policies and the Miles–Lantuéjoul correction (:func:`miles_weights`, :func:`particle_weights`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from ._common import EXTENT_COLUMNS, WEIGHTINGS, EdgePolicy, Weighting, _check_policy, _edge_mask


#: In the "miles" policy without bounding-box columns, ``L - d`` is kept >= this share of ``L``.
MILES_MIN_FREE_SHARE: float = 0.05


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


def disc_share(extents_yx_um, radius_um: float) -> np.ndarray:
    """Share of a disc's positions where a rectangle fits whole: :func:`miles_weights` in a circular field of view.

    A rectangle of sides ``(dy, dx)`` whose centre lies uniformly in a disc of radius ``R`` lies whole in it where
    its farthest corner does: ``(|u| + dy/2)² + (|v| + dx/2)² <= R²`` for the centre ``(u, v)``.  A quarter of that
    region is ``∫ (sqrt(R² - t²) - dx/2) dt`` for ``t`` from ``dy/2`` to ``sqrt(R² - dx²/4)``, in closed form
    with ``F(t) = (t sqrt(R² - t²) + R² asin(t / R)) / 2``; the share is four of it over ``π R²``.

    Parameters
    ----------
    extents_yx_um : (N, 2) float, µm
        Extents of each particle in the disc's plane.
    radius_um : float
        The disc's radius (µm).

    Returns
    -------
    (N,) float64
        In [0, 1]; 0 where the rectangle's diagonal is the disc's diameter or more.
    """
    d = np.asarray(extents_yx_um, dtype=float)
    r = float(radius_um)
    if not (np.isfinite(r) and r > 0):
        raise ValueError(f"radius_um must be finite and > 0 µm, got {radius_um!r}")
    if d.ndim != 2 or d.shape[1] != 2 or np.any(~np.isfinite(d)) or np.any(d < 0):
        raise ValueError("extents_yx_um must be finite extents >= 0 µm of shape (N, 2)")
    a, b = d[:, 0] / 2, d[:, 1] / 2
    fits = a * a + b * b < r * r
    t1 = np.sqrt(np.maximum(r * r - b * b, 0.0))

    def F(t):
        t = np.clip(t, -r, r)
        return 0.5 * (t * np.sqrt(np.maximum(r * r - t * t, 0.0)) + r * r * np.arcsin(t / r))

    quarter = np.where(fits, F(t1) - F(a) - b * (t1 - a), 0.0)
    return np.clip(4.0 * quarter / (np.pi * r * r), 0.0, 1.0)


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
    disc_radius_um : float or None
        The circular field of view the Miles–Lantuéjoul weights used in the y-x plane (None: the box).
    """

    weights: np.ndarray
    weighting: Weighting
    edge_policy: EdgePolicy
    window_um: tuple[float, float, float] | None
    extent_source: Literal["bbox", "equiv_diameter", "none"]
    n_edge: int
    n_capped: int = 0
    disc_radius_um: float | None = None

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
    disc_radius_um: float | None = None,
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
    disc_radius_um : float, optional
        A circular field of view in the y-x plane (a fill outside it held as no material, whose faces count as
        the volume's edge): the Miles–Lantuéjoul weights are then ``1 / (disc_share(dy, dx) * (Lz - dz) / Lz)``
        (:func:`disc_share`) instead of the box's.

    Returns
    -------
    ParticleWeights

    Notes
    -----
    On a single slice (:mod:`core.slices`; every particle of the table spans the window along one axis) that
    axis is left out of the Miles–Lantuéjoul weights: they are those of the slice's plane.
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
            d = table.loc[inner, list(EXTENT_COLUMNS)].to_numpy(float, copy=True)
            # a single slice (core.slices): every particle spans its one voxel layer; weighed in its plane
            d[:, np.all(table[list(EXTENT_COLUMNS)].to_numpy(float) == L[None, :], axis=0)] = 0.0
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
        if disc_radius_um is not None and not (np.isfinite(float(disc_radius_um)) and float(disc_radius_um) > 0):
            raise ValueError(f"disc_radius_um of electrode {name!r} must be finite and > 0 µm, got {disc_radius_um!r}")
        w = np.zeros(n)
        if disc_radius_um is None:
            w[inner] = base[inner] * miles_weights(d, window)
        else:
            share = disc_share(d[:, 1:], disc_radius_um) * (L[0] - d[:, 0]) / L[0]
            if np.any(share <= 0):
                i = int(np.flatnonzero(share <= 0)[0])
                raise ValueError(f"particle {i} of electrode {name!r} (extents {tuple(d[i])} µm) cannot lie fully "
                                 f"inside its field of view (a disc of radius {disc_radius_um:g} µm, depth {L[0]:g} µm)")
            w[inner] = base[inner] / share
    disc = None if disc_radius_um is None or edge_policy != "miles" else float(disc_radius_um)
    return ParticleWeights(np.asarray(w, float), weighting, edge_policy, window, source, n_edge, n_capped, disc)
