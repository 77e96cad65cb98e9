"""Before the thresholds: crop, intensity scaling, denoising, and the denoised volume slab by slab.

The engine (:func:`~core.phases.segment_detailed` and the preview) never holds
the whole denoised volume: :func:`_denoiser` gives any range of slices along
axis 0, denoised with a halo of its own so that it equals the same range of a
whole-volume denoising, and :func:`_global_sample` the strided sample of the
denoised volume that the global values (thresholds, NMC grey value, blur) are
taken from.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage as ndi

from .._validate import check_choice, check_volume
from .params import DENOISE_METHODS, Denoise, SegmentParams, check_greyscale, nonfinite_fill

__all__ = ["crop", "denoise", "normalize_intensity"]


def crop(volume: np.ndarray, z=None, y=None, x=None) -> np.ndarray:
    """Crop to index ranges ``(start, stop)`` per axis; returns a view.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
    z, y, x : (int, int) or None
        Half-open index range along each axis; None keeps the axis whole.
    """
    volume = check_volume(volume)
    sl = []
    for name, rng, n in zip("zyx", (z, y, x), volume.shape):
        if rng is None:
            sl.append(slice(None))
            continue
        a, b = (int(v) for v in rng)
        if not 0 <= a < b <= n:
            raise ValueError(f"crop range {name}={rng} must satisfy 0 <= start < stop <= {n}")
        sl.append(slice(a, b))
    return volume[tuple(sl)]


def normalize_intensity(volume: np.ndarray, *, low_pct: float = 0.5, high_pct: float = 99.5) -> np.ndarray:
    """Map the ``low_pct``..``high_pct`` percentile range to 0..1 (float32, clipped)."""
    volume = check_greyscale(volume)
    lo, hi = (float(p) for p in _percentiles(volume, (low_pct, high_pct)))
    if hi <= lo:
        hi = lo + 1.0
    out = (volume.astype(np.float32) - lo) / (hi - lo)
    return np.clip(out, 0, 1, out=out)


def _sample(volume: np.ndarray, n: int = 2_000_000) -> np.ndarray:
    """Deterministic strided sample of the finite values."""
    step = max(1, volume.size // n)
    flat = volume.reshape(-1)[::step]
    if np.issubdtype(flat.dtype, np.floating):
        flat = flat[np.isfinite(flat)]
    return flat


def _percentiles(volume: np.ndarray, q) -> np.ndarray:
    return np.percentile(_sample(volume).astype(np.float64), q)


def median_window(size: float) -> int:
    """The median filter's window (voxels a side) for a denoising ``size``: rounded to an odd whole number, at least
    1 (a size under 1.5 gives 1: no filtering)."""
    k = max(1, int(round(size)))
    return k + 1 - k % 2


def denoise(volume: np.ndarray, method: Denoise = "gaussian", *, size: float = 1.0) -> np.ndarray:
    """Denoise a greyscale volume; returns float32, input untouched.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
    method : {"none", "gaussian", "median", "nlm"}
    size : float
        Gaussian sigma (voxels); median window (odd voxels); non-local means
        patch distance (voxels).
    """
    volume = check_volume(volume)
    check_choice(method, "method", DENOISE_METHODS)
    if method == "none" or size == 0:
        return volume.astype(np.float32, copy=True)
    v = volume if method == "gaussian" else volume.astype(np.float32)
    if method == "gaussian":
        return ndi.gaussian_filter(volume, float(size), mode="nearest", output=np.float32)
    if method == "median":
        return ndi.median_filter(v, size=median_window(size), mode="nearest")
    from skimage.restoration import denoise_nl_means, estimate_sigma

    sigma = float(np.mean(estimate_sigma(v[v.shape[0] // 2])))
    flat = v.shape[0] == 1  # one slice: skimage denoises it in 2D and gives it back without its z axis
    out = denoise_nl_means(
        v[0] if flat else v, h=0.8 * sigma, sigma=sigma, patch_size=3, patch_distance=max(1, int(round(size))),
        fast_mode=True, channel_axis=None,
    ).astype(np.float32)
    return out[None] if flat else out


def _denoise_halo(params: SegmentParams) -> int:
    return int(np.ceil(4 * params.denoise_size)) + 2 if params.denoise != "none" else 0


def _denoiser(volume: np.ndarray, params: SegmentParams, nan_fill: float | None) -> Callable[[int, int], np.ndarray]:
    """``denoised(a, b)``: the denoised range ``[a, b)`` along axis 0, computed with its own halo."""
    nz, dn_halo = volume.shape[0], _denoise_halo(params)

    def denoised(a: int, b: int) -> np.ndarray:
        lo_, hi_ = max(0, a - dn_halo), min(nz, b + dn_halo)
        sub = volume[lo_:hi_]
        if nan_fill is not None and not np.isfinite(sub).all():
            sub = np.nan_to_num(sub.astype(np.float32), nan=nan_fill, posinf=nan_fill, neginf=nan_fill)
        return denoise(sub, params.denoise, size=params.denoise_size)[a - lo_ : a - lo_ + (b - a)]

    return denoised


def _nan_fill(volume: np.ndarray) -> float | None:
    """The value non-finite voxels are denoised and thresholded as (:func:`~core.phases.params.nonfinite_fill`)."""
    return nonfinite_fill(volume)


def _sample_blocks(shape: tuple[int, ...]) -> list[tuple[int, int]]:
    """Ranges along axis 0 whose denoised values give the global sample (independent of the slab size)."""
    nz = shape[0]
    if int(np.prod(shape)) <= 16_000_000 or nz <= 128:
        return [(0, nz)]
    return [(int(z), int(z) + 16) for z in np.linspace(0, nz - 16, 8).round()]


def _global_sample(shape, denoised, report) -> tuple[np.ndarray, np.ndarray | None]:
    """Strided sample of the denoised volume (and the denoised volume itself when it is one block)."""
    blocks = _sample_blocks(shape)
    n_vox = sum(b - a for a, b in blocks) * shape[1] * shape[2]
    step = max(1, n_vox // 2_000_000)
    samples, whole = [], None
    for i, (a, b) in enumerate(blocks):
        report(0.25 * i / len(blocks), "sampling grey values")
        d = denoised(a, b)
        samples.append(d.reshape(-1)[::step].copy())
        if len(blocks) == 1:
            whole = d
    return np.concatenate(samples), whole
