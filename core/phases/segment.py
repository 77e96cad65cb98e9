"""The segmentation driver: greyscale volume -> phase codes, slab by slab."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from .blur import SigmaOrigin, sigma_origin
from .denoise import _denoiser, _global_sample, _nan_fill
from .islands import _remove_small_islands_inplace
from .params import SegmentParams, check_greyscale
from .partial_volume import _correct_rows, _image_sigma, _reach
from .threshold import _image_model, _threshold

__all__ = ["SegmentResult", "segment", "segment_detailed"]


@dataclass(frozen=True, eq=False)
class SegmentResult:
    """Phases plus the values :func:`segment_detailed` resolved.

    Attributes
    ----------
    phases : (Z, Y, X) uint8
    params : SegmentParams
        The parameters with ``low``, ``high`` and ``pv_sigma`` filled in, so
        that rerunning with them gives the same phases.
    pv_sigma_origin : {"given", "fitted", "fitted_at_bound"} or None
        Where ``params.pv_sigma`` came from (:func:`~core.phases.sigma_origin`):
        given with the parameters, fitted to the image, or fitted but at the
        fit's upper bound (not measured).  None where there is no blur (no
        partial-volume correction and none given).  A rerun with ``params``
        gives the same phases but would take the blur as given: pass this on.
    """

    phases: np.ndarray
    params: SegmentParams
    pv_sigma_origin: SigmaOrigin | None = None


def segment(
    volume: np.ndarray,
    params: SegmentParams | None = None,
    *,
    progress: Callable[[float, str], None] | None = None,
) -> np.ndarray:
    """Segment a greyscale volume into phases.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        Greyscale; not modified.
    params : SegmentParams
    progress : callable(fraction, message) or None

    Returns
    -------
    phases : (Z, Y, X) uint8
        0 = pore, 1 = CBD, 2 = NMC.
    """
    return segment_detailed(volume, params, progress=progress).phases


def segment_detailed(
    volume: np.ndarray,
    params: SegmentParams | None = None,
    *,
    progress: Callable[[float, str], None] | None = None,
    slab: int | None = None,
) -> SegmentResult:
    """As :func:`segment`, also returning the resolved parameters.

    The volume is processed in slabs of ``slab`` z-slices plus a halo deep
    enough for every filter, so the result equals whole-volume processing
    while memory stays at the output plus a slab.  By default a slab holds
    about 16 M voxels or an eighth of the volume, whichever is larger.  Global values
    (thresholds, NMC grey value, blur) come from a strided sample of the
    denoised volume and from a central block.
    """
    params = params or SegmentParams()
    volume = check_greyscale(volume)
    report = progress or (lambda f, m: None)
    nz = volume.shape[0]
    if slab is None:
        budget = max(16_000_000, volume.size // 8)
        slab = budget // (volume.shape[1] * volume.shape[2])
    slab = max(1, int(slab))
    denoised = _denoiser(volume, params, _nan_fill(volume))

    # pass 1: a strided sample of the denoised volume for the global values
    low, high = params.low, params.high
    i_nmc = None
    need_sample = low is None or high is None or params.partial_volume
    slab_starts = list(range(0, nz, slab))
    kept = None  # the denoised volume, when it is one block and one slab
    if need_sample:
        sample, whole = _global_sample(volume.shape, denoised, report)
        if whole is not None and len(slab_starts) == 1:
            kept = whole
        del whole
        report(0.25, "estimating the blur" if params.partial_volume and params.pv_sigma is None
               else "measuring the phase grey values")
        model = _image_model(volume.shape, denoised, sample)
        i_nmc = model.i_nmc
        low = model.suggested[0] if low is None else low
        high = model.suggested[1] if high is None else high
        if not low < high:
            raise ValueError(f"low threshold ({low:g}) must be below high threshold ({high:g})")
    pv_sigma = _image_sigma(params.pv_sigma, model) if params.partial_volume else params.pv_sigma

    # pass 2: phases slab by slab
    reach = _reach(pv_sigma) if params.partial_volume else 0
    phases = np.empty(volume.shape, np.uint8)
    for z0 in slab_starts:
        z1 = min(nz, z0 + slab)
        report(0.35 + 0.45 * z0 / nz, f"thresholding slices {z0}-{z1 - 1} of {nz}")
        a, b = max(0, z0 - reach), min(nz, z1 + reach)
        d = kept if kept is not None else denoised(a, b)
        kept = None
        ph, n_nmc = _threshold(d, low, high)
        rows = (z0 - a, z1 - a)
        if params.partial_volume and n_nmc:
            phases[z0:z1] = _correct_rows(d, ph, low, pv_sigma, i_nmc, rows)
        else:
            phases[z0:z1] = ph[rows[0] : rows[1]]
        del d, ph
    if params.min_island > 1:
        report(0.85, "removing small islands")
        _remove_small_islands_inplace(phases, params.min_island)
    report(1.0, "phases done")
    origin = sigma_origin(pv_sigma, given=params.pv_sigma is not None) if pv_sigma is not None else None
    return SegmentResult(phases, replace(params, low=float(low), high=float(high), pv_sigma=pv_sigma), origin)
