"""Parameters of threshold phase segmentation, and the check of a greyscale input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .._checks import check_bool, check_int, check_number
from .._validate import check_choice, check_volume

__all__ = ["DENOISE_METHODS", "NONFINITE_MAX_SHARE", "Denoise", "SegmentParams", "check_greyscale", "check_greyscale_nonfinite",
           "nonfinite_fill"]


Denoise = Literal["none", "gaussian", "median", "nlm"]


DENOISE_METHODS: tuple[str, ...] = ("none", "gaussian", "median", "nlm")


@dataclass(frozen=True)
class SegmentParams:
    """Parameters of threshold phase segmentation.

    Attributes
    ----------
    denoise : {"none", "gaussian", "median", "nlm"}
        Denoising filter applied before thresholding.
    denoise_size : float
        Gaussian sigma (voxels), median window (voxels, rounded to an odd
        int) or non-local-means patch distance.
    low, high : float or None
        Thresholds in the volume's grey values: ``< low`` pore, ``>= high`` NMC,
        CBD between.  ``None`` takes the suggestion of :func:`suggest_thresholds`.
    partial_volume : bool
        Apply :func:`correct_partial_volume`.
    pv_sigma : float or None
        Blur sigma (voxels) assumed by the partial-volume correction; None
        estimates it from the data with :func:`estimate_pv_sigma`.
    min_island : int
        Connected islands of a phase smaller than this many voxels join the
        phase that surrounds them (0 disables).
    flatten : bool
        Map every slice's pure pore and NMC grey values onto the whole
        volume's before anything else (:func:`core.phases.flatten_shading`):
        for a scan whose brightness drifts along z.

    Notes
    -----
    No denoising is the default: the partial-volume correction reads a
    2-voxel gap between NMC and CBD from the grey values, and a denoising
    blur washes it out.  On the demo electrodes, Gaussian denoising
    (sigma 0.7) roughly doubled to quadrupled the median per-particle
    detachment error (see ``bench/RESULTS.md``).  Denoise noisier data
    anyway when the thresholds alone cannot separate the phases.
    """

    denoise: Denoise = "none"
    denoise_size: float = 0.7
    low: float | None = None
    high: float | None = None
    partial_volume: bool = True
    pv_sigma: float | None = None
    min_island: int = 8
    flatten: bool = False

    def __post_init__(self):
        check_choice(self.denoise, "denoise", DENOISE_METHODS)
        check_number(self.denoise_size, "denoise_size")
        check_number(self.low, "low", optional=True)
        check_number(self.high, "high", optional=True)
        check_bool(self.partial_volume, "partial_volume")
        check_number(self.pv_sigma, "pv_sigma", optional=True)
        check_int(self.min_island, "min_island")
        check_bool(self.flatten, "flatten")
        if self.denoise_size < 0:
            raise ValueError(f"denoise_size must be >= 0, got {self.denoise_size}")
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ValueError(f"low threshold ({self.low}) must be below high threshold ({self.high})")
        if self.pv_sigma is not None and self.pv_sigma <= 0:
            raise ValueError(f"pv_sigma must be > 0 voxels, got {self.pv_sigma}")
        if self.min_island < 0:
            raise ValueError(f"min_island must be >= 0, got {self.min_island}")


#: Largest share of non-finite voxels (NaN, +inf, -inf) a greyscale volume may hold: up to it they are filled
#: (:func:`nonfinite_fill`), above it the volume is refused (:func:`check_greyscale`).
NONFINITE_MAX_SHARE: float = 0.001

#: Voxels per chunk of the scans of :func:`check_greyscale` (bounds their scratch memory).
_SCAN_VOXELS = 4_000_000


def check_greyscale(volume, name: str = "volume") -> np.ndarray:
    """Validate a greyscale volume: 3D, numeric, not a mask, some finite values, not constant.

    Non-finite voxels (NaN, +inf, -inf), which only a floating-point volume
    can hold, are allowed up to :data:`NONFINITE_MAX_SHARE` of the voxels;
    the analysis fills them (:func:`nonfinite_fill`).  A larger share is
    refused: that many voxels without a grey value are a region outside the
    field of view or a broken reconstruction, which the analysis would read
    as some phase.  The volume is scanned in chunks (no volume-sized scratch).

    Raises
    ------
    TypeError
        Not an array, not numeric, or boolean (a mask, not a greyscale).
    ValueError
        Not 3D, empty, no finite value, more than :data:`NONFINITE_MAX_SHARE`
        non-finite voxels, or constant.
    """
    check_greyscale_nonfinite(volume, name)
    return volume


def refuse_mask(dtype, name: str = "volume") -> None:
    """TypeError for a boolean ``dtype``: a mask, not a greyscale image."""
    if np.dtype(dtype) == bool:
        raise TypeError(f"{name} is boolean, a mask rather than a greyscale image: load a segmented volume as "
                        "phases (--phase-map VALUE=PHASE,... on the command line)")


def check_greyscale_nonfinite(volume, name: str = "volume") -> int:
    """:func:`check_greyscale` (one scan), returning the number of non-finite voxels (0 for an integer volume)."""
    volume = check_volume(volume, name)
    refuse_mask(volume.dtype, name)
    lo, hi, bad = _scan(volume)
    if bad == volume.size:
        raise ValueError(f"{name} holds no finite value (all NaN or infinite)")
    if bad > NONFINITE_MAX_SHARE * volume.size:
        raise ValueError(f"{name} has {bad / volume.size:.1%} non-finite voxels (NaN or infinite; at most "
                         f"{NONFINITE_MAX_SHARE:.1%} are filled): crop it to the region with data, or give those "
                         "voxels a grey value before the analysis")
    if lo == hi:
        raise ValueError(f"{name} is constant (every voxel = {lo:g}): nothing to segment")
    return bad


def nonfinite_fill(volume: np.ndarray) -> float | None:
    """The grey value that replaces a floating-point volume's non-finite voxels: the median of its finite values.

    Taken from the deterministic strided sample of at most about 2 M voxels
    that the thresholds come from; None for an integer volume.  The phase
    segmentation fills slab by slab and the network tile by tile, so neither
    ever sees a NaN and no filled copy of the volume is made.
    """
    if not np.issubdtype(volume.dtype, np.floating):
        return None
    step = max(1, volume.size // 2_000_000)
    flat = volume.reshape(-1)[::step]
    flat = flat[np.isfinite(flat)]
    return float(np.median(flat.astype(np.float64))) if flat.size else None


def _scan(volume: np.ndarray) -> tuple[float, float, int]:
    """Minimum and maximum of the finite values (NaN when none) and the number of non-finite voxels."""
    if not np.issubdtype(volume.dtype, np.floating):
        return float(volume.min()), float(volume.max()), 0
    step = max(1, _SCAN_VOXELS // max(1, volume.shape[1] * volume.shape[2]))
    lo, hi, bad = np.inf, -np.inf, 0
    for z in range(0, volume.shape[0], step):
        chunk = volume[z : z + step]
        finite = np.isfinite(chunk)
        n = int(np.count_nonzero(finite))
        bad += chunk.size - n
        if n == chunk.size:
            lo, hi = min(lo, float(chunk.min())), max(hi, float(chunk.max()))
        elif n:
            vals = chunk[finite]
            lo, hi = min(lo, float(vals.min())), max(hi, float(vals.max()))
    return (lo, hi, bad) if bad < volume.size else (float("nan"), float("nan"), bad)
