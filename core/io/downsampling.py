"""Block-mean downsampling on loading: a coarser grid for volumes whose blur spans several voxels.

Reading side of the analysis (called by the input loaders, the recipe and the CLI), so it lives with
the I/O.  :func:`downsample` reads ``factor`` planes at a time: a memory-mapped volume is never
loaded whole.
"""

from __future__ import annotations

import numpy as np

from .._validate import check_volume, normalize_spacing

__all__ = ["MAX_DOWNSAMPLE", "MIN_DOWNSAMPLED_SIDE", "check_downsample", "downsample", "downsample_factors"]


#: Largest block-mean downsampling factor offered (the UI and the CLI accept 1..MAX_DOWNSAMPLE).
MAX_DOWNSAMPLE = 8


def check_downsample(factor, name: str = "downsample factor") -> int:
    """Validate a downsampling factor: an integer from 1 to :data:`MAX_DOWNSAMPLE`; return it as int."""
    whole = isinstance(factor, (int, np.integer)) or (
        isinstance(factor, (float, np.floating)) and float(factor).is_integer())
    if isinstance(factor, (bool, np.bool_)) or not whole:
        raise TypeError(f"{name} must be a whole number, got {factor!r}")
    factor = int(factor)
    if not 1 <= factor <= MAX_DOWNSAMPLE:
        raise ValueError(f"{name} must be between 1 and {MAX_DOWNSAMPLE}, got {factor}")
    return factor


#: Fewest voxels along any axis that a downsampled volume keeps (:func:`downsample_factors`).
MIN_DOWNSAMPLED_SIDE = 8


def downsample_factors(shape, already: int = 1) -> list[int]:
    """Further downsampling factors offered for a volume of ``shape`` already reduced by ``already``.

    1, and every factor from 2 that keeps the total within :data:`MAX_DOWNSAMPLE`
    and at least :data:`MIN_DOWNSAMPLED_SIDE` voxels along every axis.
    """
    already = check_downsample(already, "already")
    side = min(int(n) for n in shape)
    return [1] + [f for f in range(2, MAX_DOWNSAMPLE // already + 1) if side // f >= MIN_DOWNSAMPLED_SIDE]


def downsample(volume: np.ndarray, factor: int, spacing=None) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Block-mean downsampling by an integer ``factor`` on every axis.

    The volume is read ``factor`` z-planes at a time, so a memory-mapped input
    is never loaded whole: besides the output, at most ``factor`` planes are
    held as float32.  Trailing planes that do not fill a block are dropped.

    Parameters
    ----------
    volume : (Z, Y, X) array, numeric (may be a memory map)
    factor : int
        1 to :data:`MAX_DOWNSAMPLE`; 1 returns the volume as float32.
    spacing : float or (3,) float, optional
        Voxel size in µm (default 1 µm).

    Returns
    -------
    small : (Z // f, Y // f, X // f) float32
    spacing : (3,) float, µm, multiplied by ``factor``

    Raises
    ------
    ValueError
        A factor outside 1..MAX_DOWNSAMPLE, or larger than an axis of the volume.
    TypeError
        A non-integer factor.
    """
    volume = check_volume(volume)
    sp = normalize_spacing(spacing)
    factor = check_downsample(factor)
    if factor == 1:
        return volume.astype(np.float32, copy=False), sp
    nz, ny, nx = (s // factor for s in volume.shape)
    if min(nz, ny, nx) == 0:
        raise ValueError(f"volume {volume.shape} is smaller than the downsample factor {factor}")
    small = np.empty((nz, ny, nx), np.float32)
    for k in range(nz):
        v = np.asarray(volume[k * factor:(k + 1) * factor, : ny * factor, : nx * factor], dtype=np.float32)
        small[k] = v.reshape(factor, ny, factor, nx, factor).mean(axis=(0, 2, 4), dtype=np.float32)
    return small, tuple(s * factor for s in sp)  # type: ignore[return-value]
