"""One-slice preview in two steps, for a page whose threshold sliders move.

:func:`preview_globals` (per volume and denoising) and :func:`prepare_preview`
(per slice) do the threshold-independent work once; :func:`preview_from` then
gives the slice's phases for any thresholds, equal to the full run's slice
(see its docstring for the exceptions).  :func:`preview_slice` does both in
one call.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .._validate import check_choice
from .denoise import _denoiser, _global_sample, _nan_fill
from .islands import _remove_small_islands_inplace
from .params import SegmentParams, check_greyscale
from .partial_volume import _correct_rows, _image_sigma, _reach
from .threshold import _image_model, _threshold

__all__ = ["MAX_ISLAND_DEPTH", "PreviewContext", "PreviewGlobals", "prepare_preview", "preview_from",
           "preview_globals", "preview_slice"]


#: Largest island depth a preview looks at (slices on either side of the previewed one).
MAX_ISLAND_DEPTH = 16


@dataclass(frozen=True, eq=False)
class PreviewGlobals:
    """The values a full run takes from the whole volume, for previews (threshold-independent).

    Attributes
    ----------
    sample : (N,) float32
        Strided sample of the denoised volume: the sample
        :func:`segment_detailed` takes the suggested thresholds from (read-only).
    suggested : (float, float)
        What a run without thresholds uses (see :func:`suggest_thresholds`).
    pv_sigma : float or None
        Blur of the partial-volume correction (None without it).
    sigma_source : {"given", "estimated", "none"}
        ``pv_sigma`` came with the parameters; was estimated from the image
        as :func:`segment_detailed` does; or is unused (no partial-volume
        correction).
    i_nmc : float or None
        NMC grey value of the partial-volume correction.
    denoise : (str, float)
        The denoising (method, size) the sample was taken after.
    alternative : (float, float) or None
        The thresholds of a second reading of the grey values, "NMC first"
        (two-step Otsu as the first segmentation, then the same midpoints of
        the pure grey values), when it puts at least :data:`READING_GAP` more
        or less of the voxels in NMC than ``suggested``; else None.  On the 15
        real nano-CT slices (``bench/accuracy_real.py``) it matched the manual
        labels better (mean IoU 0.43 against 0.35; NMC 0.71 against 0.57):
        there NMC dominates and three-class Otsu splits its peak.  Offered on
        the Segment page, never applied by itself.
    """

    sample: np.ndarray
    suggested: tuple[float, float]
    pv_sigma: float | None
    sigma_source: str
    denoise: tuple[str, float]
    i_nmc: float | None = None
    alternative: tuple[float, float] | None = None


@dataclass(frozen=True, eq=False)
class PreviewContext:
    """What a one-slice preview needs that does not depend on the two thresholds.

    Build it with :func:`prepare_preview`; :func:`preview_from` then gives the
    phases of the slice for any pair of thresholds.

    Attributes
    ----------
    slab : (D, H, W) float32
        Denoised slices around the previewed one (read-only), the slice axis
        first: the island rows and what their partial-volume correction reads.
    centre : int
        Row of the previewed slice in ``slab``.
    rows : (int, int)
        Rows of ``slab`` whose phases are corrected and cleaned of islands.
    params : SegmentParams
        Without thresholds; ``pv_sigma`` resolved when ``partial_volume``.
    globals : PreviewGlobals
    axis, index : int
        The slice.
    sigma_source : {"given", "estimated", "none"}
        Where ``params.pv_sigma`` came from (see :class:`PreviewGlobals`).
    """

    slab: np.ndarray
    centre: int
    rows: tuple[int, int]
    params: SegmentParams
    globals: PreviewGlobals
    axis: int
    index: int
    sigma_source: str

    @property
    def island_depth(self) -> int:
        """Slices on either side of the previewed one that island removal looks at."""
        return max(self.centre - self.rows[0], self.rows[1] - 1 - self.centre)


def preview_globals(volume: np.ndarray, params: SegmentParams | None = None) -> PreviewGlobals:
    """Global values of a full run that previews reuse (one per volume and denoising).

    Denoises the blocks :func:`segment_detailed` samples (the whole volume up
    to 16 M voxels) and, with partial-volume correction, takes the phase
    grey values and (with ``pv_sigma`` None) the blur from the image as
    :func:`segment_detailed` does.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        Greyscale; not modified.
    params : SegmentParams
        ``low`` and ``high`` are ignored.

    Returns
    -------
    PreviewGlobals
    """

    params = params or SegmentParams()
    volume = check_greyscale(volume)
    denoised = _denoiser(volume, params, _nan_fill(volume))
    sample, _ = _global_sample(volume.shape, denoised, lambda f, m: None)
    sample.flags.writeable = False
    model = _image_model(volume.shape, denoised, sample, alternative=True)
    sigma, source = None, "none"
    if params.partial_volume:
        sigma = _image_sigma(params.pv_sigma, model)
        source = "given" if params.pv_sigma is not None else "estimated"
    return PreviewGlobals(sample=sample, suggested=model.suggested, pv_sigma=sigma, sigma_source=source,
                          denoise=(params.denoise, float(params.denoise_size)), i_nmc=model.i_nmc,
                          alternative=model.alternative)


def prepare_preview(
    volume: np.ndarray, axis: int, index: int, params: SegmentParams | None = None, *,
    island_depth: int | None = None, globals: PreviewGlobals | None = None,
) -> PreviewContext:
    """Threshold-independent work of a one-slice preview: the denoised slab (and the global values).

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        Greyscale; not modified.
    axis : {0, 1, 2}
    index : int
        Slice index along ``axis``.
    params : SegmentParams
        ``low`` and ``high`` are ignored (they are the arguments of
        :func:`preview_from`).
    island_depth : int or None
        Slices on either side whose islands are looked at; default
        ``min_island - 1`` (enough for every island that touches the slice; a
        chain of islands that reaches farther is not followed), at most
        :data:`MAX_ISLAND_DEPTH`.
    globals : PreviewGlobals or None
        From :func:`preview_globals` for this volume and these parameters
        (reuse it across slices); None computes it.

    Returns
    -------
    PreviewContext
    """
    params = replace(params or SegmentParams(), low=None, high=None)
    volume = check_greyscale(volume)
    check_choice(axis, "axis", (0, 1, 2))
    n = volume.shape[axis]
    index = int(index)
    if not 0 <= index < n:
        raise ValueError(f"slice index {index} is outside 0..{n - 1} along axis {axis}")
    if island_depth is None:
        island_depth = min(max(params.min_island - 1, 0), MAX_ISLAND_DEPTH)
    island_depth = int(island_depth)
    if island_depth < 0:
        raise ValueError(f"island_depth must be >= 0, got {island_depth}")
    if globals is None:
        globals = preview_globals(volume, params)
    elif not isinstance(globals, PreviewGlobals):
        raise TypeError(f"globals must be a PreviewGlobals (from preview_globals), got {type(globals).__name__}")
    if globals.denoise != (params.denoise, float(params.denoise_size)):
        raise ValueError(f"the global values were taken after denoising {globals.denoise}, not "
                         f"{(params.denoise, float(params.denoise_size))}")
    source = "none"
    if params.partial_volume:
        source = "given"
        if params.pv_sigma is None:
            if globals.pv_sigma is None:
                raise ValueError("the global values hold no blur sigma (taken without partial-volume correction)")
            params, source = replace(params, pv_sigma=float(globals.pv_sigma)), globals.sigma_source
    reach = _reach(params.pv_sigma) if params.partial_volume else 0
    a, b = max(0, index - island_depth - reach), min(n, index + island_depth + reach + 1)
    moved = np.moveaxis(volume, axis, 0)
    slab = np.ascontiguousarray(_denoiser(moved, params, _nan_fill(volume))(a, b), dtype=np.float32)
    slab.flags.writeable = False
    rows = (max(0, index - island_depth) - a, min(n, index + island_depth + 1) - a)
    return PreviewContext(slab=slab, centre=index - a, rows=rows, params=params, globals=globals, axis=axis,
                          index=index, sigma_source=source)


def preview_from(context: PreviewContext, low: float, high: float, *, islands: bool = True) -> np.ndarray:
    """Phases of the context's slice for the thresholds ``low`` and ``high``.

    The steps of :func:`segment_detailed` on the context's slab, with the
    same global values (NMC grey value and pore/CBD boundary from the same
    sample of the denoised volume; the context's blur), so the slice equals
    the full run's slice along axis 0 bit for bit, except where small
    islands chain farther than ``context.island_depth`` slices (and, with
    ``pv_sigma`` None, where the blur the full run estimates at these
    thresholds differs from the one estimated at the suggested ones).  Along
    axes 1 and 2 the filters sum in another order: a rare voxel may flip.

    Parameters
    ----------
    context : PreviewContext
        From :func:`prepare_preview`.
    low, high : float
        Thresholds in the volume's grey values (``low < high``).
    islands : bool
        Also merge small islands (``params.min_island``).

    Returns
    -------
    phases : (H, W) uint8
        The slice, axes in the order of the volume without the slice axis.
    """
    if not isinstance(context, PreviewContext):
        raise TypeError(f"context must be a PreviewContext (from prepare_preview), got {type(context).__name__}")
    low, high = float(low), float(high)
    if not low < high:
        raise ValueError(f"low threshold ({low:g}) must be below high threshold ({high:g})")
    p, d = context.params, context.slab
    r0, r1 = context.rows
    ph, n_nmc = _threshold(d, low, high)
    if p.partial_volume and n_nmc:
        out = _correct_rows(d, ph, low, float(p.pv_sigma), context.globals.i_nmc, context.rows)
    else:
        out = ph[r0:r1].copy()
    if islands and p.min_island > 1:
        _remove_small_islands_inplace(out, p.min_island)
    return out[context.centre - r0]


def preview_slice(
    volume: np.ndarray, axis: int, index: int, params: SegmentParams, *, islands: bool = True,
) -> np.ndarray:
    """Phases of one slice, as :func:`segment` would give them (one call of the two-step preview).

    ``prepare_preview(volume, axis, index, params)`` then
    ``preview_from(context, params.low, params.high)``; see :func:`preview_from`
    for where the result equals the full run's slice.  A page that moves the
    thresholds keeps the context and calls :func:`preview_from` alone.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
    axis : {0, 1, 2}
    index : int
        Slice index along ``axis``.
    params : SegmentParams
        ``low`` and ``high`` must be set.
    islands : bool
        Also remove small islands.

    Returns
    -------
    phases : 2D uint8
        The slice, axes in the order of ``volume`` without ``axis``.
    """
    if params.low is None or params.high is None:
        raise ValueError("set both thresholds (low and high) for a preview")
    return preview_from(prepare_preview(volume, axis, index, params), params.low, params.high, islands=islands)
