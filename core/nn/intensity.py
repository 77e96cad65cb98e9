"""Grey-value normalisation shared by training and inference (no torch import).

One rule for both sides, so that the network sees the same input scale in
training as in use: :func:`robust_range` takes the 0.5 / 99.5 percentiles of
a strided sample of at most ``n`` voxels, and :func:`normalize` maps them to
-1 and +1.  :func:`core.nn.tiling.predict_tiled` applies the same map tile by
tile (``intensity_range=``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _check_source(volume, ndim: int | None = 3) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a numeric array or array-like read by slicing (memmap, h5py, zarr).

    ``ndim`` is the required number of axes (3: ``(z, y, x)``), None for any.
    """
    if not isinstance(volume, np.ndarray) and not (
            hasattr(volume, "shape") and hasattr(volume, "dtype") and hasattr(volume, "__getitem__")):
        raise TypeError(f"volume must be a numpy array or an array-like with shape, dtype and slicing "
                        f"(np.memmap, h5py, zarr), got {type(volume).__name__}")
    shape = tuple(int(s) for s in volume.shape)
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"volume must be 3D (z, y, x), got shape {shape}" if ndim == 3
                         else f"volume must have {ndim} axes, got shape {shape}")
    if not shape or min(shape) == 0:
        raise ValueError(f"volume is empty: shape {shape}")
    dtype = np.dtype(volume.dtype)
    if not (np.issubdtype(dtype, np.number) or dtype == bool) or np.issubdtype(dtype, np.complexfloating):
        raise TypeError(f"volume must hold real numbers, got dtype {dtype}")
    return shape, dtype


def _sample_stride(shape: Sequence[int], n: float) -> int:
    """Smallest stride ``s`` such that ``volume[::s, ::s, ...]`` holds at most ``n`` values."""
    s = max(1, math.ceil((math.prod(shape) / float(n)) ** (1.0 / len(shape))))
    while math.prod(-(-d // s) for d in shape) > n:
        s += 1
    return s


def robust_range(volume, q: Sequence[float] = (0.5, 99.5), n: float = 1e6, *,
                 fill: float | None = None) -> tuple[float, float]:
    """Grey-value percentiles of a strided sample of at most ``n`` voxels.

    Reads ``volume[::s, ::s, ::s]`` (the same stride along every axis, for
    any number of axes) with the smallest stride ``s`` that keeps the sample
    at ``n`` voxels or fewer, so a memory-mapped volume is not read whole;
    non-finite values are ignored.  Training (:mod:`core.nn.data`) and
    inference (:func:`core.nn.infer.segment_volume`) both use it.

    Parameters
    ----------
    volume : (Z, Y, X) array, or an image of any other number of axes
        Greyscale values (ndarray, memmap, or an array-like with slicing).
    q : (2,) float
        Lower and upper percentiles, ``0 <= q[0] < q[1] <= 100``.
    n : float
        Maximum sample size (>= 1).
    fill : float or None
        Non-finite values count as this grey value (how the tiler feeds them to
        the network, :func:`core.nn.tiling.predict_tiled`); None ignores them.

    Returns
    -------
    (lo, hi) : tuple of float
        The two percentiles; ``hi = lo + 1`` when they are equal (a constant
        sample), so that ``hi > lo`` always holds.

    Raises
    ------
    ValueError
        Bad ``q`` or ``n``; no finite value in the sample.
    """
    shape, _ = _check_source(volume, ndim=None)
    try:
        q0, q1 = (float(v) for v in q)
    except (TypeError, ValueError):
        raise TypeError(f"q must be two percentiles, got {q!r}") from None
    if not 0.0 <= q0 < q1 <= 100.0:
        raise ValueError(f"q must satisfy 0 <= q[0] < q[1] <= 100, got {(q0, q1)}")
    if not (isinstance(n, (int, float, np.integer, np.floating)) and not isinstance(n, bool) and n >= 1):
        raise ValueError(f"n must be a number >= 1, got {n!r}")
    s = _sample_stride(shape, n)
    sample = np.asarray(volume[(slice(None, None, s),) * len(shape)], dtype=np.float64).ravel()
    if fill is not None:
        sample = np.nan_to_num(sample, nan=fill, posinf=fill, neginf=fill)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        raise ValueError("the volume sample holds no finite value")
    lo, hi = (float(v) for v in np.percentile(sample, [q0, q1]))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def normalize(image: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map grey values so that ``lo -> -1`` and ``hi -> +1`` (float32, not clipped)."""
    if not hi > lo:
        raise ValueError(f"intensity range must have hi > lo, got lo={lo}, hi={hi}")
    return ((np.asarray(image, np.float32) - np.float32(lo)) * np.float32(2.0 / (hi - lo)) - 1.0).astype(
        np.float32, copy=False)
