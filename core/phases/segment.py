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
    about 16 M voxels or a quarter of the volume, whichever is larger (an eighth until session 28: with a
    quarter the 512³ packing of issue 15 segments in 2.93 s instead of 3.08, fewer halo slices being read
    twice, for 190 MiB more, below the peak of the later steps).  Global values
    (thresholds, NMC grey value, blur) come from a strided sample of the
    denoised volume and from a central block.
    """
    params = params or SegmentParams()
    volume = check_greyscale(volume)
    report = progress or (lambda f, m: None)
    if slab is None:
        budget = max(16_000_000, volume.size // 4)
        slab = budget // (volume.shape[1] * volume.shape[2])
    slab = max(1, int(slab))
    denoised = _denoiser(volume, params, _nan_fill(volume))
    g, kept = _global_values(volume.shape, params, denoised, report, one_slab=slab >= volume.shape[0],
                             exclude=fill_value(volume))
    phases = _phases_by_slabs(volume.shape, params, g, denoised, slab, report, kept)
    del kept
    if params.min_island > 1:
        report(0.85, "removing small islands")
        _remove_small_islands_inplace(phases, params.min_island)
    report(1.0, "phases done")
    origin = sigma_origin(g.pv_sigma, given=params.pv_sigma is not None) if g.pv_sigma is not None else None
    resolved = replace(params, low=float(g.low), high=float(g.high), pv_sigma=g.pv_sigma)
    return SegmentResult(phases, resolved, origin)


@dataclass(frozen=True, eq=False)
class _Globals:
    """The values of a run taken from the whole volume (pass 1 of :func:`segment_detailed`).

    ``low`` and ``high`` as given (a numpy scalar keeps its type, and numpy
    compares in it) or suggested; ``i_nmc`` None without partial-volume
    correction when both thresholds were given.
    """

    low: float
    high: float
    pv_sigma: float | None
    i_nmc: float | None


def fill_value(volume, planes=None) -> float | None:
    """The grey value of a fill outside the reconstructed region (:func:`core.phases.fill_reading`, on its five
    z planes, or on ``planes``), else None.

    Read whether or not the thresholds are given: the image model the NMC grey value and the blur come from is
    read beside the fill either way (:func:`~core.phases.threshold._without_fill`), as the preview reads it."""
    from .fill import PLANES, fill_reading

    found = fill_reading(volume, planes=planes or PLANES)
    return None if found is None else found["value"]


def _global_values(shape, params: SegmentParams, denoised, report, *, one_slab: bool, exclude: float | None = None):
    """Thresholds, NMC grey value and blur of a run, from a sample of the denoised volume and a central block.

    Returns the :class:`_Globals` and the denoised volume where it was
    denoised whole for the sample and one slab covers it (else None).  ``exclude``: a fill's grey value, left
    out of the sample the thresholds are suggested from (:func:`~core.phases.threshold._image_model`).
    """
    low, high = params.low, params.high
    i_nmc = kept = model = None
    if low is None or high is None or params.partial_volume:
        sample, whole = _global_sample(shape, denoised, report)
        kept = whole if one_slab else None
        del whole
        report(0.25, "estimating the blur" if params.partial_volume and params.pv_sigma is None
               else "measuring the phase grey values")
        model = _image_model(shape, denoised, sample, exclude=exclude)
        i_nmc = model.i_nmc
        low = model.suggested[0] if low is None else low
        high = model.suggested[1] if high is None else high
        if not low < high:
            raise ValueError(f"low threshold ({low:g}) must be below high threshold ({high:g})")
    pv_sigma = _image_sigma(params.pv_sigma, model) if params.partial_volume else params.pv_sigma
    return _Globals(low, high, pv_sigma, i_nmc), kept


def _phases_by_slabs(shape, params: SegmentParams, g: _Globals, denoised, slab: int, report, kept) -> np.ndarray:
    """Pass 2: threshold and correct ``slab`` slices at a time, each read with the correction's reach around it.

    ``kept``: the whole denoised volume, or None to denoise each slab (:func:`_global_values`).
    """
    nz = shape[0]
    reach = _reach(g.pv_sigma) if params.partial_volume else 0
    phases = np.empty(shape, np.uint8)
    for z0 in range(0, nz, slab):
        z1 = min(nz, z0 + slab)
        report(0.35 + 0.45 * z0 / nz, f"thresholding slices {z0}-{z1 - 1} of {nz}")
        a, b = max(0, z0 - reach), min(nz, z1 + reach)
        d = kept if kept is not None else denoised(a, b)
        kept = None
        ph, n_nmc = _threshold(d, g.low, g.high)
        rows = (z0 - a, z1 - a)
        if params.partial_volume and n_nmc:
            phases[z0:z1] = _correct_rows(d, ph, g.low, g.pv_sigma, g.i_nmc, rows)
        else:
            phases[z0:z1] = ph[rows[0] : rows[1]]
        del d, ph
    return phases
