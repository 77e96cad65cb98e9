"""Non-cached computations behind the dashboard (no streamlit import).

Each function composes public :mod:`core` calls on small pieces of a volume so
the pages stay thin and :mod:`ui.cache` can wrap them.  Statistics that compare
electrodes live in :mod:`core.compare`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from core import phases as ph
from core.phases import SegmentParams


def grey_sample(volume, n: int = 1_000_000) -> np.ndarray:
    """Deterministic strided sample of the finite grey values (float64).

    A volume held in memory: a stride over all of it.  One read lazily (a
    :class:`core.chunked.LazyArray`, :func:`ui.cache.volume` of a big sample):
    the same stride over the blocks :func:`core.phases.grey_sample` reads, never the whole volume.
    """
    if isinstance(volume, np.ndarray):
        step = max(1, volume.size // n)
        flat = np.asarray(volume.reshape(-1)[::step], np.float64)
    else:
        flat = np.asarray(ph.grey_sample(volume, n), np.float64)
    return flat[np.isfinite(flat)]


def histogram_of(s: np.ndarray, bins: int = 128) -> tuple[pd.DataFrame, float, float]:
    """Histogram of a sample of finite grey values (:func:`grey_sample`) over its 0.05..99.95 percentile range.

    Returns
    -------
    table : DataFrame
        ``grey_lo``, ``grey_hi`` (bin edges, grey units) and ``count`` (sampled voxels).
    lo, hi : float
        Full range of the sampled values (for slider limits).
    """
    lo, hi = float(s.min()), float(s.max())
    p_lo, p_hi = np.percentile(s, [0.05, 99.95])
    if p_hi <= p_lo:
        p_lo, p_hi = lo, hi + 1
    counts, edges = np.histogram(s, bins=bins, range=(p_lo, p_hi))
    table = pd.DataFrame({"grey_lo": edges[:-1], "grey_hi": edges[1:], "count": counts})
    return table, lo, hi


def percentiles_of(s: np.ndarray, q: tuple[float, float]) -> tuple[float, float]:
    """Grey values at the percentiles ``q`` of a sample of finite grey values (:func:`grey_sample`)."""
    lo, hi = np.percentile(s, q)
    return float(lo), float(hi) if hi > lo else float(lo) + 1.0


def globals_key(params: SegmentParams) -> SegmentParams:
    """The part of ``params`` that :func:`core.phases.preview_globals` depends on (a cache key)."""
    return SegmentParams(denoise=params.denoise, denoise_size=params.denoise_size,
                         partial_volume=params.partial_volume, pv_sigma=params.pv_sigma)


def context_key(params: SegmentParams) -> SegmentParams:
    """The part of ``params`` that :func:`core.phases.prepare_preview` depends on: no thresholds."""
    return replace(params, low=None, high=None)


def preview_note(context: ph.PreviewContext) -> str:
    """One caption line: what the preview of ``context`` shares with the full run and what it approximates."""
    p = context.params
    parts = ["Preview: the full run's steps and global values on a slab around the slice"]
    if p.min_island > 1:
        parts.append(f"islands followed {context.island_depth} slices either side")
    if context.sigma_source == "estimated":
        parts.append(f"partial-volume blur σ = {p.pv_sigma:.3g} voxel, fitted to the grey values around the NMC "
                     "as the full run does")
    elif context.sigma_source == "given":
        parts.append(f"partial-volume blur σ = {p.pv_sigma:.3g} voxel")
    return "; ".join(parts) + "."


def preview_model(volume, axis: int, index: int, params, *, half_depth: int = 16) -> np.ndarray:
    """Phases of ONE slice by the 3D U-Net, run on a slab of ``2 * half_depth`` slices around it (the only part of
    ``volume``, an ndarray or a lazily read array, that is read).

    Returns
    -------
    phases : (H, W) uint8
    """
    from core.nn.infer import segment_volume

    n = volume.shape[axis]
    index = int(np.clip(index, 0, n - 1))
    lo, hi = max(0, index - half_depth), min(n, index + half_depth)
    at: list = [slice(None)] * 3
    at[axis] = slice(lo, hi)  # an index: a lazily read volume reads only the slab
    slab = np.moveaxis(np.ascontiguousarray(volume[tuple(at)]), axis, 0)
    return segment_volume(slab, params).phases[index - lo]


def phase_fractions(phases: np.ndarray) -> dict[str, float]:
    """Share of pore, CBD and NMC voxels."""
    return fractions_of(np.bincount(np.asarray(phases, np.uint8).ravel(), minlength=3)[:3])


def fractions_of(counts) -> dict[str, float]:
    """Shares from the voxel counts of pore, CBD and NMC."""
    counts = np.asarray(counts, float)[:3]
    total = max(counts.sum(), 1.0)
    return {"pore": counts[0] / total, "cbd": counts[1] / total, "nmc": counts[2] / total}


def phase_fractions_blockwise(phases) -> dict[str, float]:
    """:func:`phase_fractions` of an array read block by block (a Zarr array: one row of chunks at a time)."""
    return fractions_of(phase_counts_blockwise(phases))


def phase_counts_blockwise(phases) -> np.ndarray:
    """Pore, CBD and NMC voxels of an array read block by block (a Zarr array: one row of chunks at a time)."""
    z, y, _ = phases.shape
    cz, cy = (tuple(getattr(phases, "chunks", None) or (16, y)) + (y,))[:2]
    counts = np.zeros(3, np.int64)
    for z0 in range(0, z, int(cz)):
        for y0 in range(0, y, int(cy)):
            block = np.asarray(phases[z0: z0 + int(cz), y0: y0 + int(cy)], np.uint8)
            counts += np.bincount(block.ravel(), minlength=3)[:3]
    return counts


def phase_counts(phases: np.ndarray) -> np.ndarray:
    """Pore, CBD and NMC voxels."""
    return np.bincount(np.asarray(phases, np.uint8).ravel(), minlength=3)[:3]


def field_of_view_counts(counts, fill: dict | None) -> np.ndarray:
    """Phase voxel counts less an analysis's fill outside the field of view (``provenance["fill"]`` where the run
    held it as no material, :func:`core.phases.fill_region`: pore voxels of the phases)."""
    counts = np.asarray(counts, np.int64)[:3].copy()
    if fill and fill.get("as_edge"):
        counts[0] = max(int(counts[0]) - int(fill.get("region_voxels") or 0), 0)
    return counts
