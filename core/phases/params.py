"""Parameters of threshold phase segmentation, and the check of a greyscale input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .._checks import check_bool, check_int, check_number
from .._validate import check_choice, check_volume

__all__ = ["DENOISE_METHODS", "Denoise", "SegmentParams", "check_greyscale"]


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

    def __post_init__(self):
        check_choice(self.denoise, "denoise", DENOISE_METHODS)
        check_number(self.denoise_size, "denoise_size")
        check_number(self.low, "low", optional=True)
        check_number(self.high, "high", optional=True)
        check_bool(self.partial_volume, "partial_volume")
        check_number(self.pv_sigma, "pv_sigma", optional=True)
        check_int(self.min_island, "min_island")
        if self.denoise_size < 0:
            raise ValueError(f"denoise_size must be >= 0, got {self.denoise_size}")
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ValueError(f"low threshold ({self.low}) must be below high threshold ({self.high})")
        if self.pv_sigma is not None and self.pv_sigma <= 0:
            raise ValueError(f"pv_sigma must be > 0 voxels, got {self.pv_sigma}")
        if self.min_island < 0:
            raise ValueError(f"min_island must be >= 0, got {self.min_island}")


def check_greyscale(volume, name: str = "volume") -> np.ndarray:
    """Validate a greyscale volume: 3D, numeric, some finite values, not constant."""
    volume = check_volume(volume, name)
    if volume.dtype == bool:
        raise TypeError(f"{name} is boolean; a greyscale volume is needed (or load it as a phase volume)")
    if np.issubdtype(volume.dtype, np.floating):
        finite = np.isfinite(volume)
        if not finite.any():
            raise ValueError(f"{name} holds no finite value (all NaN or infinite)")
        lo, hi = float(volume[finite].min()), float(volume[finite].max())
    else:
        lo, hi = float(volume.min()), float(volume.max())
    if lo == hi:
        raise ValueError(f"{name} is constant (every voxel = {lo:g}): nothing to segment")
    return volume
