"""One-slice preview in two steps, for a page whose threshold sliders move.

:func:`preview_globals` (per volume and denoising) and :func:`prepare_preview`
(per slice) do the threshold-independent work once; :func:`preview_from` then
gives the slice's phases for any thresholds, equal to the full run's slice
(see its docstring for the exceptions).  :func:`preview_slice` does both in
one call.

Both take a volume held in memory or one read lazily, box by box (a
:class:`core.chunked.LazyArray`, a Zarr array: any array-like that numpy's
basic indexing reads).  A lazy volume is never read whole: the global values
read the blocks :func:`grey_sample` names (the whole volume up to 16 M voxels
or 128 slices along z, else 8 blocks of 16 slices, each with its denoising
halo) slab by slab, plus the central block of at most 128³ voxels with its
halo; a preview reads its slab (of a large section's window,
:func:`preview_window`: the window's box with its in-plane halo).  The
results equal those of the same voxels in memory bit for bit, with one exception: the value non-finite voxels of a
floating-point volume are given (:func:`~core.phases.nonfinite_fill`) is taken
from the sampled blocks instead of a stride over the whole volume, so for a
float volume with NaN or infinite voxels and more than one block it may
differ from the full run's (and so may what depends on the filled voxels).
The checks of :func:`~core.phases.check_greyscale` (no finite value, too many
non-finite voxels, a constant volume) are made on the sampled blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .._validate import check_choice, check_volume, check_volume_header
from .denoise import _denoise_halo, _denoiser, _global_sample, _nan_fill, _sample_blocks, denoise
from .islands import _remove_small_islands_inplace
from .params import SegmentParams, check_greyscale, check_greyscale_nonfinite, nonfinite_fill, refuse_mask
from .partial_volume import _correct_rows, _image_sigma, _reach
from .threshold import _image_model, _threshold

__all__ = ["MAX_ISLAND_DEPTH", "MAX_PREVIEW_PIXELS", "PREVIEW_WINDOW", "PreviewContext", "PreviewGlobals",
           "grey_sample", "prepare_preview", "preview_from", "preview_globals", "preview_slice", "preview_window"]


#: Largest island depth a preview looks at (slices on either side of the previewed one).
MAX_ISLAND_DEPTH = 16

#: Most pixels of a cross-section a preview covers whole (:func:`preview_window`): a larger section is previewed
#: in a window.  With the default parameters a prepared preview keeps a slab of 29 slices of the section plus
#: its halo as float32: measured on a 64 x 2048 x 2048 sample (``bench/preview_window_memory.py``), the 1024² window
#: kept 122 MiB (peak +181 MiB) and the whole 2048² section 464 MiB (peak +692 MiB); the dashboard server grew by
#: 470 MiB instead of 1466 MiB rendering that sample (``bench/dashboard_memory.py --wide``).
MAX_PREVIEW_PIXELS = 1024 * 1024

#: Side (pixels) of the preview window of a section over :data:`MAX_PREVIEW_PIXELS` (at most the section's side).
PREVIEW_WINDOW = 1024


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
    nan_fill : float or None
        The grey value non-finite voxels were denoised as (None for an
        integer volume); :func:`prepare_preview` of a lazy volume uses it.
    """

    sample: np.ndarray
    suggested: tuple[float, float]
    pv_sigma: float | None
    sigma_source: str
    denoise: tuple[str, float]
    i_nmc: float | None = None
    alternative: tuple[float, float] | None = None
    nan_fill: float | None = None


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
    window : ((int, int), (int, int)) or None
        The part of the slice previewed, ``((r0, r1), (c0, c1))`` along the
        slice's two axes (those of the volume without ``axis``); None: the
        whole slice.
    inner : (slice, slice)
        Where ``window`` lies in the slab's last two axes (the slab spans the
        window and its in-plane halo); the whole of them without a window.
    """

    slab: np.ndarray
    centre: int
    rows: tuple[int, int]
    params: SegmentParams
    globals: PreviewGlobals
    axis: int
    index: int
    sigma_source: str
    window: tuple[tuple[int, int], tuple[int, int]] | None = None
    inner: tuple[slice, slice] = (slice(None), slice(None))

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
    volume : (Z, Y, X) ndarray or lazily read array-like
        Greyscale; not modified.  A lazy volume (see the module docstring)
        is read block by block, never whole.
    params : SegmentParams
        ``low`` and ``high`` are ignored.

    Returns
    -------
    PreviewGlobals

    Raises
    ------
    TypeError, ValueError
        As :func:`~core.phases.check_greyscale` (for a lazy volume, of the sampled blocks).
    """

    params = params or SegmentParams()
    if _is_lazy(volume):
        _check_lazy_array(volume)
        floating = np.issubdtype(np.dtype(volume.dtype), np.floating)
        fill = _check_lazy(volume) if floating else None  # a float volume: its fill value before the denoising
        seen: list = []
        denoised = _lazy_denoiser(volume, params, fill, None if floating else seen)
        sample = _strided_blocks(volume.shape, denoised, 2_000_000)
        if not floating and min(lo for lo, _ in seen) == max(hi for _, hi in seen):
            raise ValueError(f"volume is constant in its sampled blocks (every voxel = {seen[0][0]:g}): nothing to "
                             "segment")
        central = _LazyDenoised(volume, params, fill)
    else:
        volume = check_greyscale(volume)
        fill = _nan_fill(volume)
        denoised = central = _denoiser(volume, params, fill)
        sample, _ = _global_sample(volume.shape, denoised, lambda f, m: None)
    sample.flags.writeable = False
    from .segment import fill_value

    # a fill outside the reconstructed region is left out of the suggestion, as the analysis leaves it (a big
    # volume read lazily: judged on its middle plane, which the page reads anyway)
    exclude = fill_value(volume, planes=(0.5,) if _is_lazy(volume) else None)
    model = _image_model(volume.shape, central, sample, alternative=True, exclude=exclude)
    sigma, source = None, "none"
    if params.partial_volume:
        sigma = _image_sigma(params.pv_sigma, model)
        source = "given" if params.pv_sigma is not None else "estimated"
    return PreviewGlobals(sample=sample, suggested=model.suggested, pv_sigma=sigma, sigma_source=source,
                          denoise=(params.denoise, float(params.denoise_size)), i_nmc=model.i_nmc,
                          alternative=model.alternative, nan_fill=fill)


def prepare_preview(
    volume: np.ndarray, axis: int, index: int, params: SegmentParams | None = None, *,
    island_depth: int | None = None, globals: PreviewGlobals | None = None,
    window: tuple[tuple[int, int], tuple[int, int]] | None = None,
) -> PreviewContext:
    """Threshold-independent work of a one-slice preview: the denoised slab (and the global values).

    Parameters
    ----------
    volume : (Z, Y, X) ndarray or lazily read array-like
        Greyscale; not modified.  A lazy volume (see the module docstring):
        only the slab (and, without ``globals``, the sampled blocks) is read.
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
    window : ((int, int), (int, int)) or None
        Preview only the pixels ``[r0, r1) x [c0, c1)`` of the slice (along
        its two axes, those of the volume without ``axis``; see
        :func:`preview_window`); None: the whole slice.  The slab then spans
        the window plus an in-plane halo as deep as the one along ``axis``
        (the islands' depth plus the partial-volume correction's reach,
        clipped at the volume's faces), read with the denoising halo around
        it (a lazy volume reads only that box), so the window's pixels are
        those of the whole slice's preview where the rim growth's float64
        running sums, which run along whole rows and columns of the slab,
        are exact: while the nonzero grey values near NMC in a row stay
        within a ratio of about 2^30 / the row's length (2^19 for 2048
        pixels) of each other.

    Returns
    -------
    PreviewContext
    """
    params = replace(params or SegmentParams(), low=None, high=None)
    lazy = _is_lazy(volume)
    if lazy:
        _check_lazy_array(volume)
    else:
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
    rows = (max(0, index - island_depth) - a, min(n, index + island_depth + 1) - a)
    if window is not None:
        window = _check_window(window, _section(volume.shape, axis))
        slab, inner = _window_slab(volume, axis, (a, b), window, island_depth + reach, params,
                                   globals.nan_fill if lazy else _nan_fill(volume))
        slab.flags.writeable = False
        return PreviewContext(slab=slab, centre=index - a, rows=rows, params=params, globals=globals, axis=axis,
                              index=index, sigma_source=source, window=window, inner=inner)
    if lazy:  # read the slab with its denoising halo along the axis: the same range of the same denoising
        h = _denoise_halo(params)
        lo_, hi_ = max(0, a - h), min(n, b + h)
        at: list = [slice(None)] * 3
        at[axis] = slice(lo_, hi_)
        sub = np.moveaxis(_read(volume, tuple(at)), axis, 0)
        slab = np.ascontiguousarray(_denoiser(sub, params, globals.nan_fill)(a - lo_, b - lo_), dtype=np.float32)
    else:
        moved = np.moveaxis(volume, axis, 0)
        slab = np.ascontiguousarray(_denoiser(moved, params, _nan_fill(volume))(a, b), dtype=np.float32)
    slab.flags.writeable = False
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
        The slice (its window, ``(r1 - r0, c1 - c0)``, where the context has
        one), axes in the order of the volume without the slice axis.
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
    if context.window is None:
        return out[context.centre - r0]
    return np.ascontiguousarray(out[context.centre - r0][context.inner])


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


# --------------------------------------------------------------------------- windows of large sections


def preview_window(shape, axis: int, centre: tuple[int, int] | None = None, *,
                   size: int | None = None) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """The window a preview of a slice along ``axis`` covers: None (the whole slice) up to :data:`MAX_PREVIEW_PIXELS`.

    A larger section gets a window of ``size`` (default :data:`PREVIEW_WINDOW`)
    pixels a side, or the section's side where that is shorter, centred on
    ``centre`` and moved inside the section.

    Parameters
    ----------
    shape : (Z, Y, X)
        The volume's shape.
    axis : {0, 1, 2}
        The slice axis.
    centre : (int, int) or None
        Pixel of the slice (along its two axes, those of the volume without
        ``axis``) the window is centred on; default the section's centre.
    size : int or None
        Side of the window (pixels, >= 1).

    Returns
    -------
    ((r0, r1), (c0, c1)) or None
        Half-open pixel ranges along the slice's two axes, for
        :func:`prepare_preview`'s ``window``.
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be three positive sizes (z, y, x), got {shape}")
    check_choice(axis, "axis", (0, 1, 2))
    section = _section(shape, axis)
    if section[0] * section[1] <= MAX_PREVIEW_PIXELS:
        return None
    size = PREVIEW_WINDOW if size is None else int(size)
    if size < 1:
        raise ValueError(f"the window's size must be >= 1 pixel, got {size}")
    if centre is None:
        centre = (section[0] // 2, section[1] // 2)
    if len(centre) != 2:
        raise ValueError(f"centre must be two pixel indices (row, column) of the slice, got {centre!r}")
    out = []
    for c, n in zip(centre, section):
        w = min(size, n)
        lo = min(max(0, int(c) - w // 2), n - w)
        out.append((lo, lo + w))
    return tuple(out)


def _section(shape, axis: int) -> tuple[int, int]:
    """The slice's shape: ``shape`` without ``axis``."""
    return tuple(int(n) for i, n in enumerate(shape) if i != axis)


def _check_window(window, section) -> tuple[tuple[int, int], tuple[int, int]]:
    try:
        (r0, r1), (c0, c1) = window
        out = ((int(r0), int(r1)), (int(c0), int(c1)))
    except (TypeError, ValueError):
        raise ValueError(f"window must be ((r0, r1), (c0, c1)), pixel ranges of the slice; got {window!r}") from None
    for (lo, hi), n in zip(out, section):
        if not 0 <= lo < hi <= n:
            raise ValueError(f"window {out} is not a non-empty part of the {section[0]}x{section[1]} slice")
    return out


def _window_slab(volume, axis: int, along: tuple[int, int], window, halo: int, params: SegmentParams, fill):
    """The denoised slab of a windowed preview and where the window lies in its last two axes.

    The slab spans ``along`` on ``axis`` and ``window`` grown by ``halo``
    (clipped to the volume) in-plane; the box read adds the denoising halo
    on every axis (clipped), so every filter sees what it sees in the whole
    slice's slab.
    """
    others = [i for i in range(3) if i != axis]
    ranges = {axis: along}
    for i, (lo, hi) in zip(others, window):
        ranges[i] = (max(0, lo - halo), min(volume.shape[i], hi + halo))
    h = _denoise_halo(params)
    key, crop = [None] * 3, {}
    for i, (lo, hi) in ranges.items():
        a_, b_ = max(0, lo - h), min(volume.shape[i], hi + h)
        key[i] = slice(a_, b_)
        crop[i] = slice(lo - a_, hi - a_)
    sub = np.moveaxis(_read(volume, tuple(key)), axis, 0)
    d = _denoiser(sub, params, fill)(crop[axis].start, crop[axis].stop)
    slab = np.ascontiguousarray(d[:, crop[others[0]], crop[others[1]]], dtype=np.float32)
    inner = tuple(slice(lo - ranges[i][0], hi - ranges[i][0]) for i, (lo, hi) in zip(others, window))
    return slab, inner


# --------------------------------------------------------------------------- volumes read lazily


def grey_sample(volume, n: int = 2_000_000) -> np.ndarray:
    """Deterministic sample of a volume's grey values, read block by block: never the whole of a lazy volume.

    The blocks along z that the global values of a run are sampled from
    (the whole volume up to 16 M voxels or 128 slices, else 8 evenly spaced
    blocks of 16 slices), flat-strided to about ``n`` values.  For a volume
    that is one block it equals ``volume.reshape(-1)[::volume.size // n]``.
    The blocks are read in slabs of at most 4 M voxels.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray or lazily read array-like
        Not modified.
    n : int
        About how many values (at least 1).

    Returns
    -------
    (N,) ndarray
        The volume's dtype; non-finite values kept.
    """
    if _is_lazy(volume):
        _check_lazy_array(volume)
    else:
        check_volume(volume)
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return _strided_blocks(volume.shape, lambda a, b: _read(volume, (slice(a, b),)), n)


#: Voxels of one slab a lazy volume's blocks are read (and denoised) in.
_SLAB_VOXELS = 1 << 22


def _is_lazy(volume) -> bool:
    return not isinstance(volume, np.ndarray) and hasattr(volume, "shape") and hasattr(volume, "__getitem__")


def _read(volume, key) -> np.ndarray:
    return np.asarray(volume[key])


def _check_lazy_array(volume, name: str = "volume") -> None:
    """The checks of :func:`~core._validate.check_volume` and the boolean refusal, from the shape and dtype."""
    check_volume_header(volume.shape, volume.dtype, name)
    refuse_mask(volume.dtype, name)


def _check_lazy(volume, name: str = "volume") -> float | None:
    """:func:`~core.phases.check_greyscale` of a lazy volume, on the sampled blocks; their non-finite fill value."""
    _check_lazy_array(volume, name)
    raw = grey_sample(volume, 2_000_000)
    check_greyscale_nonfinite(raw.reshape(1, 1, -1), name)  # the checks of the whole volume, on the sample
    return nonfinite_fill(raw)


def _lazy_denoiser(volume, params: SegmentParams, nan_fill: float | None, seen: list | None = None):
    """``denoised(a, b)`` of :func:`~core.phases.denoise._denoiser` on a lazy volume: reads ``[a, b)`` and its halo.

    ``seen``: a list to append the (min, max) of every integer slab read to (the constant-volume check).
    """
    nz, h = volume.shape[0], _denoise_halo(params)

    def denoised(a: int, b: int) -> np.ndarray:
        lo_, hi_ = max(0, a - h), min(nz, b + h)
        sub = _read(volume, (slice(lo_, hi_),))
        if seen is not None:
            seen.append((float(sub.min()), float(sub.max())))
        return _denoiser(sub, params, nan_fill)(a - lo_, b - lo_)

    return denoised


def _strided_blocks(shape, read, n: int) -> np.ndarray:
    """``concat(read(a, b).reshape(-1)[::step] for the sample blocks)``, ``step`` from ``n``, read in slabs.

    A slab ``[s, t)`` of block ``[a, b)`` gives the flat indices of the block
    that are multiples of ``step``: the same values, in the same order, as the
    block read whole.
    """
    blocks = _sample_blocks(tuple(shape))
    plane = int(shape[1]) * int(shape[2])
    step = max(1, sum(b - a for a, b in blocks) * plane // n)
    rows = max(1, _SLAB_VOXELS // max(plane, 1))
    out = []
    for a, b in blocks:
        for s in range(a, b, rows):
            d = read(s, min(b, s + rows))
            out.append(np.ascontiguousarray(d.reshape(-1)[(-(s - a) * plane) % step :: step]))
    return np.concatenate(out)


class _LazyDenoised:
    """``denoised(a, b)`` for :func:`~core.phases.threshold._image_model` on a lazy volume.

    ``_LazyDenoised(volume, params, fill)(a, b)[:, sy, sx]`` reads only that
    box with the denoising halo along every axis (clipped at the volume's
    faces) and denoises it: the values of the whole volume's denoising there
    (every filter reaches less than the halo; at a face of the volume the
    box's face is the volume's).
    """

    def __init__(self, volume, params: SegmentParams, nan_fill: float | None):
        self.volume, self.params, self.nan_fill = volume, params, nan_fill

    def __call__(self, a: int, b: int) -> "_LazyDenoised._Rows":
        return self._Rows(self, int(a), int(b))

    class _Rows:
        def __init__(self, outer, a, b):
            self.outer, self.a, self.b = outer, a, b

        def __getitem__(self, key) -> np.ndarray:
            o = self.outer
            _, sy, sx = key
            h = _denoise_halo(o.params)
            ranges = [(self.a, self.b)] + [k.indices(n)[:2] for k, n in zip((sy, sx), o.volume.shape[1:])]
            box, crop = [], []
            for (lo, hi), n in zip(ranges, o.volume.shape):
                a_, b_ = max(0, lo - h), min(n, hi + h)
                box.append(slice(a_, b_))
                crop.append(slice(lo - a_, hi - a_))
            sub = _read(o.volume, tuple(box))
            if o.nan_fill is not None and not np.isfinite(sub).all():
                sub = np.nan_to_num(sub.astype(np.float32), nan=o.nan_fill, posinf=o.nan_fill, neginf=o.nan_fill)
            return denoise(sub, o.params.denoise, size=o.params.denoise_size)[tuple(crop)]
