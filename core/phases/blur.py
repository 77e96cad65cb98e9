"""What a blur means for the analysis: the narrowest gap read as a gap, and whether to downsample.

The partial-volume correction was validated at a blur of 0.75 voxel; beyond
:data:`PV_SIGMA_MAX` the detachment comes out too low, and block-mean
downsampling brings the blur back.  The functions here return numbers; the
caller words the advice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from .._validate import check_choice, normalize_spacing
from ..io.downsampling import MAX_DOWNSAMPLE, check_downsample
from .partial_volume import SIGMA_BOUNDS

__all__ = ["BLUR_EITHER_WAY", "DOWNSAMPLE_MIN_RADIUS", "PV_SIGMA_MAX", "RESOLVABLE_GAP_SIGMAS", "SIGMA_ORIGINS", "BlurAssessment",
           "BlurKind", "SigmaOrigin", "assess_blur", "box_blur_removed", "resolvable_gap_um", "sigma_origin",
           "suggested_downsample"]

#: Downsampling is advised against a blur only where the particles' median radius is at least this many voxels
#: (so at least half of it after downsampling by 2).  On the second generator's packings at σ = 1.2 voxel (bench/
#: RESULTS.md second_generator_downsample_r10 / _r14 / _r20 / second_generator_downsample, 3 seeds x 2 noises) the
#: median |detachment error| at full resolution / downsampled by 2 was 0.02 / 0.22 at radius 10, 0.02 / 0.09 at 14,
#: 0.11 / 0.04 at 20 and 0.27 / 0.03 at 28 voxels (checked by tests/app/test_quoted_figures.py).  The app applies it
#: to the analysed particles (ui.advice); a run's warning, written before the particles are known, states it.
DOWNSAMPLE_MIN_RADIUS = 20.0

#: Where a blur σ came from: given by the user, fitted to the image, or fitted but at the fit's upper bound.
SigmaOrigin = Literal["given", "fitted", "fitted_at_bound"]
SIGMA_ORIGINS: tuple[str, ...] = get_args(SigmaOrigin)
#: The verdict of :func:`assess_blur`.
BlurKind = Literal["ok", "beyond_correction", "not_measured"]


#: Narrowest NMC-CBD gap, in blur sigmas, that the partial-volume correction reads as a gap.  Measured on
#: the synthetic electrodes (0.4 µm voxels, 2-voxel gaps, σ known or estimated): median detachment error
#: 0.024-0.029 at 2.7 σ, 0.05-0.07 at 2.3 σ, 0.12-0.19 at 2.0 σ, 0.24-0.40 at 1.6 σ, always too low (gaps
#: read as contact).  Valid near the blur it was measured at (see :data:`PV_SIGMA_MAX`).
RESOLVABLE_GAP_SIGMAS = 2.7


#: Largest blur (voxels) at which the partial-volume correction was seen to work.  It was validated at
#: 0.75 voxel.  The same electrode (gaps of 2.7 σ) on 0.3 µm voxels (σ 1.0 voxel) gave detachment 0.07 too
#: low, on 0.2 µm voxels (σ 1.5 voxel) 0.31 too low; the 0.2 µm volume downsampled by 2 gave an error of
#: 0.031 (``bench/blur_sweep.py``; 3.7 σ gaps at σ 1.0 voxel were still 0.06 too low).  The correction's
#: rim steps are one voxel wide, so a blur spread over more voxels than that escapes them.
PV_SIGMA_MAX = 0.9


def resolvable_gap_um(pv_sigma: float, spacing) -> float:
    """Narrowest gap (µm) between a particle and its CBD read as a gap at blur ``pv_sigma`` (voxels).

    ``RESOLVABLE_GAP_SIGMAS * pv_sigma`` voxels along the coarsest axis of
    ``spacing`` (µm); narrower gaps are increasingly read as contact, so the
    detachment comes out too low.
    """
    if not pv_sigma > 0:
        raise ValueError(f"pv_sigma must be > 0 voxels, got {pv_sigma}")
    return float(RESOLVABLE_GAP_SIGMAS * float(pv_sigma) * max(normalize_spacing(spacing)))


def box_blur_removed(pv_sigma: float, downsampled: int = 1) -> float:
    """The fitted blur without the share of a block-mean downsampling's box, in voxels of the coarse grid.

    Block means over ``f`` voxels add a box of variance ``(f² - 1) / 12`` fine
    voxels², i.e. ``(f² - 1) / (12 f²)`` coarse voxels², to the blur the
    image already had; the fitted σ contains both.  The box is harmless to the
    partial-volume correction (``bench/blur_sweep.py``: blur 1.5 voxel
    downsampled by 2 was fitted at 0.85 voxel and gave a detachment error of
    0.031, while a 1.0-voxel Gaussian blur without downsampling, fitted at
    0.97, gave 0.067), so the limit :data:`PV_SIGMA_MAX` applies to the rest.
    """
    f = check_downsample(downsampled, "downsampled")
    return float(np.sqrt(max(float(pv_sigma) ** 2 - (f * f - 1) / (12.0 * f * f), 0.0)))


def suggested_downsample(pv_sigma: float | None, downsampled: int = 1, *, estimated: bool = True) -> int:
    """Further downsampling factor that brings the blur back near the validated 0.75 voxel (1 = none needed).

    ``pv_sigma`` is the fitted blur of a volume already block-averaged by
    ``downsampled`` (1: not).  1 while :func:`box_blur_removed` is at most
    :data:`PV_SIGMA_MAX` (or ``pv_sigma`` is None, or at the fit's upper
    bound when ``estimated``, where the blur was not measured), else
    ``max(2, ceil(sigma / 0.75))`` of it, within :data:`MAX_DOWNSAMPLE` in all.
    A larger factor is not better: on the electrode of ``bench/blur_sweep.py``
    (0.8 µm gaps, blur 1.5 voxel of 0.2 µm) a factor 2 gave an error of 0.031,
    a factor 3 0.06, as the gaps shrink to about one voxel.
    """
    if pv_sigma is None or (estimated and _at_fit_bound(pv_sigma)):  # not measured
        return 1
    sigma = box_blur_removed(pv_sigma, downsampled)
    if not sigma > PV_SIGMA_MAX:
        return 1
    room = MAX_DOWNSAMPLE // check_downsample(downsampled, "downsampled")
    return max(1, min(room, max(2, int(np.ceil(sigma / 0.75 - 1e-9)))))


def _at_fit_bound(pv_sigma: float) -> bool:
    """The fitted blur sits at the upper end of :data:`SIGMA_BOUNDS`: the fit found no minimum."""
    return float(pv_sigma) >= SIGMA_BOUNDS[1] - 0.01


def sigma_origin(pv_sigma: float, given: bool) -> SigmaOrigin:
    """Where a blur σ came from: ``"given"`` by the user, else ``"fitted"``, or ``"fitted_at_bound"`` there.

    A fitted σ at the upper end of :data:`SIGMA_BOUNDS` means the fit found
    no minimum: the blur was not measured.  A σ the user gave is taken as
    measured, whatever its value.
    """
    if given:
        return "given"
    return "fitted_at_bound" if _at_fit_bound(pv_sigma) else "fitted"


@dataclass(frozen=True)
class BlurAssessment:
    """What a blur means for the partial-volume correction; the caller words the advice.

    Attributes
    ----------
    sigma : float
        Blur σ (voxels) as used.
    origin : {"given", "fitted", "fitted_at_bound"}
        Given by the user; fitted to the image; or fitted but at the fit's
        upper bound (not measured), see :func:`sigma_origin`.
    kind : {"ok", "beyond_correction", "not_measured"}
        Within :data:`PV_SIGMA_MAX` once the box of the downsampling is
        discounted (:func:`box_blur_removed`); wider, so the detachment will
        be underestimated; or not measured, so the correction is unreliable
        (compare with it switched off, or give σ).
    factor : int
        Suggested further downsampling factor (:func:`suggested_downsample`):
        1 for "ok" and "not_measured", and for "beyond_correction" where the
        volume cannot be downsampled further (:data:`MAX_DOWNSAMPLE` in all).
    downsampled : int
        Block-mean factor already applied on loading (1: none).
    """

    sigma: float
    origin: SigmaOrigin
    kind: BlurKind
    factor: int
    downsampled: int


def assess_blur(pv_sigma: float, downsampled: int = 1, *, origin: SigmaOrigin = "fitted") -> BlurAssessment:
    """Judge the blur ``pv_sigma`` (voxels) of a volume already downsampled by ``downsampled``.

    Parameters
    ----------
    pv_sigma : float
        Blur σ in voxels of the (downsampled) volume, > 0.
    downsampled : int
        Block-mean factor the volume was reduced by on loading (1-8); its box
        is discounted (:func:`box_blur_removed`).
    origin : {"given", "fitted", "fitted_at_bound"}
        Where σ came from (:func:`sigma_origin`).  A fitted σ at the fit's
        upper bound is "not_measured" whichever of the two fitted origins is
        passed; a given one is taken as measured.

    Returns
    -------
    BlurAssessment
    """
    check_choice(origin, "origin", SIGMA_ORIGINS)
    if pv_sigma is None or not float(pv_sigma) > 0:
        raise ValueError(f"pv_sigma must be > 0 voxels, got {pv_sigma}")
    sigma, f = float(pv_sigma), check_downsample(downsampled, "downsampled")
    if origin != "given" and (origin == "fitted_at_bound" or _at_fit_bound(sigma)):
        return BlurAssessment(sigma, "fitted_at_bound", "not_measured", 1, f)
    if not box_blur_removed(sigma, f) > PV_SIGMA_MAX:
        return BlurAssessment(sigma, origin, "ok", 1, f)
    factor = suggested_downsample(sigma, f, estimated=origin != "given")
    return BlurAssessment(sigma, origin, "beyond_correction", factor, f)


#: What a blur wider than the partial-volume correction does to the detachment, for the warnings of the runs and
#: the pages (QA walk 9: they said "underestimated ... a lower bound" of a run 0.21 too high).
BLUR_EITHER_WAY = ("so the detachment can be wrong either way: thin pore gaps close up (too low), and thin CBD "
                   "films whose grey value lies near the pore's are read as pore (too high)")
