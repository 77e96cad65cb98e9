"""Thresholds: the phase codes of two thresholds, the phases' pure grey values, and the suggested thresholds.

The suggested thresholds are the midpoints of the phases' pure grey values
(:func:`phase_references`: medians two voxels inside each phase of a first,
multi-Otsu, segmentation of a central block), not the multi-Otsu thresholds,
which the blur halo drags.  A second reading, "NMC first" (two-step Otsu as
the first segmentation), is offered where NMC dominates the histogram.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numba
import numpy as np
from scipy import ndimage as ndi

from .._validate import check_phases, check_volume
from ..codes import CBD, NMC, PORE
from ..slices import face_structure
from .denoise import _sample
from .params import check_greyscale

__all__ = ["READING_GAP", "phase_references", "suggest_thresholds", "threshold"]


def threshold(volume: np.ndarray, low: float, high: float) -> np.ndarray:
    """Phase codes by two thresholds: ``< low`` pore, ``>= high`` NMC, CBD between.

    The one place the thresholds are applied: a full run, its central block
    and a one-slice preview all call it (through :func:`_threshold`).  The
    comparisons are numpy's (``volume < low`` in the type numpy compares
    ``volume`` with ``low`` and ``high``: float32 for a float32 volume and
    Python floats); a NaN voxel is CBD.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        Greyscale (the engine passes the denoised float32 volume).
    low, high : float
        Thresholds in the grey values of ``volume``, ``low < high``.

    Returns
    -------
    phases : (Z, Y, X) uint8
    """
    volume = check_volume(volume)
    if not low < high:
        raise ValueError(f"low threshold ({low}) must be below high threshold ({high})")
    return _threshold(volume, low, high)[0]


def _threshold(volume: np.ndarray, low: float, high: float) -> tuple[np.ndarray, int]:
    """:func:`threshold`, unvalidated, and the number of NMC voxels (one pass)."""
    kind = np.result_type(volume.dtype, low, high)  # what numpy compares in
    if kind == np.float32:
        lo, hi = np.float32(low), np.float32(high)
    else:  # float64 holds every other comparison exactly (after rounding to float16 where numpy would)
        lo, hi = (np.float64(kind.type(t)) if kind.kind == "f" else np.float64(t) for t in (low, high))
    if volume.dtype == np.float16:  # exact in float32; the compiled loop has no float16
        volume = volume.astype(np.float32)
    phases = np.empty(volume.shape, np.uint8)
    return phases, int(_threshold_kernel(volume, lo, hi, phases))


assert (PORE, CBD, NMC) == (0, 1, 2)  # _threshold_kernel writes these codes


@numba.njit(cache=True, nogil=True)
def _threshold_kernel(v, low, high, out):
    """``out`` = 0 (pore) where ``v < low``, 2 (NMC) where ``v >= high``, else 1 (CBD); returns the NMC count.

    Branch-free: ``not v < low`` plus ``v >= high`` (``low < high``), so NaN is CBD as in numpy.
    """
    nz, ny, nx = v.shape
    n_nmc = 0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                a = np.uint8(not v[z, y, x] < low)
                b = np.uint8(v[z, y, x] >= high)
                out[z, y, x] = a + b
                n_nmc += b
    return n_nmc


#: Share of the sample below / above which grey values count as outliers for the histogram of Otsu's method
#: (percent, each side), and how few of its 256 bins the rest may fill before the outliers are clipped.
_OUTLIER_PCT, _OUTLIER_BINS = 0.1, 32


def _histogram_values(sample: np.ndarray) -> np.ndarray:
    """``sample`` as float64 for Otsu's 256-bin histogram, outliers clipped where they would squeeze it.

    A few extreme voxels (a hot pixel of 1e15 in an int64 volume) stretch the
    histogram so that all the real grey values fall into one or two bins.
    Where the central 99.8 % of the sample would fill fewer than
    ``_OUTLIER_BINS`` of the 256 bins, the values are clipped to its 0.1 and
    99.9 percentiles; otherwise they are used unchanged (so ordinary volumes
    keep their thresholds bit for bit).
    """
    v = np.asarray(sample, np.float64)
    if v.size == 0:
        return v
    lo, hi = float(v.min()), float(v.max())
    p_lo, p_hi = (float(p) for p in np.percentile(v, [_OUTLIER_PCT, 100 - _OUTLIER_PCT]))
    if hi > lo and (p_hi - p_lo) * 256 < _OUTLIER_BINS * (hi - lo) and p_hi > p_lo:
        v = np.clip(v, p_lo, p_hi)
    return v


def _too_few_levels(v: np.ndarray, clipped: bool) -> ValueError:
    levels = np.unique(v[: 1_000_000])[:3]
    what = (f"only two grey values ({levels[0]:g} and {levels[1]:g})" if len(levels) == 2 else
            f"only the value {levels[0]:g}" if len(levels) == 1 else "fewer than three distinct grey levels")
    return ValueError(f"the volume holds {what}{' besides a few outliers' if clipped else ''}, so pore, CBD and "
                      "NMC cannot be told apart: load a mask or a segmented volume as phases (--phase-map "
                      "VALUE=PHASE,... on the command line), or give both thresholds")


def _otsu(sample: np.ndarray) -> tuple[float, float]:
    from skimage.filters import threshold_multiotsu

    v = _histogram_values(sample)
    try:
        lo, hi = threshold_multiotsu(v, classes=3, nbins=256)
    except ValueError:  # skimage: "After discretization into bins, the input image has only 2 different values"
        raise _too_few_levels(v, v is not sample and not np.array_equal(v, sample)) from None
    return float(lo), float(hi)


def _otsu_nmc_first(sample: np.ndarray) -> tuple[float, float] | None:
    """Two-step Otsu: NMC | the rest, then pore | CBD within the rest (None when the rest is one value).

    Where NMC dominates the histogram, three-class Otsu splits the NMC peak in
    two; this reading does not.
    """
    from skimage.filters import threshold_otsu

    v = _histogram_values(sample)
    hi = float(threshold_otsu(v, nbins=256))
    rest = v[v < hi]
    if rest.size < 2 or rest.min() == rest.max():
        return None
    lo = float(threshold_otsu(rest, nbins=256))
    return (lo, hi) if lo < hi else None


def _central_slices(shape, side: int) -> tuple[slice, slice, slice]:
    """The central block of at most ``side`` voxels along each axis."""
    return tuple(slice((n - m) // 2, (n - m) // 2 + m) for n, m in zip(shape, (min(n, side) for n in shape)))


def phase_references(volume: np.ndarray, phases: np.ndarray, *, min_voxels: int = 50) -> tuple[float, float, float]:
    """Grey values of pure pore, CBD and NMC.

    The median grey value of the voxels two face steps inside each phase
    (one step, or the whole phase, when fewer than ``min_voxels`` are that
    deep).  Blur darkens thin CBD and brightens pore next to NMC, so the
    median of a whole phase is biased; its interior is not.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
    phases : (Z, Y, X) uint8
        Phases of ``volume`` (for example from :func:`threshold`).

    Returns
    -------
    (pore, cbd, nmc) : tuple of float
        NaN for a phase that is absent.
    """
    volume = check_volume(volume)
    phases = check_phases(phases)
    if volume.shape != phases.shape:
        raise ValueError(f"volume shape {volume.shape} differs from phases shape {phases.shape}")
    return _interior_references(volume, phases, min_voxels)


def _interior_references(v, ph, min_voxels=50):
    from .partial_volume import _eroded2  # (partial_volume imports this module)

    ph = np.ascontiguousarray(ph, dtype=np.uint8)
    # a one- or two-slice axis (a 2D image as a volume) is not eroded along: the phases' insides are in-plane
    face = face_structure([axis for axis, n in enumerate(ph.shape) if n < 3])
    counted = _inner2_histograms(v, ph) if min(ph.shape) >= 3 else None
    out = []
    for code in (PORE, CBD, NMC):
        if counted is not None:  # an integer volume: the depth-2 medians from histograms, in one pass
            hist, offset = counted
            if hist[code].sum() >= min_voxels:
                out.append(_histogram_median(hist[code], offset))
                continue
        m = ph == code
        value = float("nan")
        for depth in (2, 1, 0):
            if depth == 2 and min(ph.shape) >= 3:  # the full face structure: from capped L1 distances, one pass
                inner = _eroded2(ph, code)
            else:
                inner = ndi.binary_erosion(m, face, iterations=depth) if depth else m
            n = int(np.count_nonzero(inner))
            if n >= min_voxels or (depth == 0 and n):
                value = float(np.median(v[inner]))
                break
        out.append(value)
    return tuple(out)


def _inner2_histograms(v, ph):
    """Histograms of the grey values of each phase's voxels two face steps inside it, for 8- and 16-bit integer
    volumes (None for others): ``(hist (3, 2**bits) int64, offset)``, bin ``i`` holding the value ``i + offset``.

    The voxels counted are those of ``_eroded2(ph, code)`` (the phase's double erosion by the face structure,
    the volume's outside not the phase), found in one pass for the three phases, in two halves along z side by
    side where there are two cores; so the medians equal ``np.median(v[_eroded2(ph, code)])`` exactly.
    """
    from .. import _kernels as K

    if v.dtype not in (np.uint8, np.int8, np.uint16, np.int16) or ph.shape != v.shape:
        return None
    v = np.ascontiguousarray(v)
    bits = 8 * v.dtype.itemsize
    offset = int(np.iinfo(v.dtype).min)
    nz = ph.shape[0]
    cuts = [0, nz // 2, nz] if K.cores() > 1 and nz >= 16 else [0, nz]
    parts = K.run_side_by_side(*[
        (lambda a=a, b=b: _count_inner2(v, ph, a, b, np.zeros((3, 1 << bits), np.int64), offset))
        for a, b in zip(cuts[:-1], cuts[1:])])
    return sum(parts[1:], parts[0]), offset


@numba.njit(cache=True, nogil=True)
def _inner_row(ph, z, out):
    """``out[y, x]`` = 1 where voxel (z, y, x) is off the volume's faces and its six face neighbours share its
    phase (its single erosion), else 0."""
    nz, ny, nx = ph.shape
    out[:, :] = 0
    if z == 0 or z == nz - 1:
        return
    for y in range(1, ny - 1):
        for x in range(1, nx - 1):
            c = ph[z, y, x]
            if (ph[z - 1, y, x] == c and ph[z + 1, y, x] == c and ph[z, y - 1, x] == c and ph[z, y + 1, x] == c
                    and ph[z, y, x - 1] == c and ph[z, y, x + 1] == c):
                out[y, x] = 1


@numba.njit(cache=True, nogil=True)
def _count_inner2(v, ph, z0, z1, hist, offset):
    """Add to ``hist[phase, value - offset]`` each voxel of slices ``z0 <= z < z1`` whose own single erosion and
    its six face neighbours' hold (the double erosion); the single erosions in a ring of three slices."""
    nz, ny, nx = ph.shape
    ring = np.zeros((3, ny, nx), np.uint8)
    if z0 >= 1:
        _inner_row(ph, z0 - 1, ring[(z0 - 1) % 3])
    _inner_row(ph, z0, ring[z0 % 3])
    for z in range(z0, z1):
        if z + 1 < nz:
            _inner_row(ph, z + 1, ring[(z + 1) % 3])
        if z == 0 or z == nz - 1:
            continue
        below, here, above = ring[(z - 1) % 3], ring[z % 3], ring[(z + 1) % 3]
        for y in range(1, ny - 1):
            for x in range(1, nx - 1):
                if (here[y, x] and below[y, x] and above[y, x] and here[y - 1, x] and here[y + 1, x]
                        and here[y, x - 1] and here[y, x + 1]):
                    hist[ph[z, y, x], np.int64(v[z, y, x]) - offset] += 1
    return hist


def _histogram_median(hist: np.ndarray, offset: int) -> float:
    """``np.median`` of the values counted by ``hist`` (bin ``i`` = value ``i + offset``; at least one)."""
    n = int(hist.sum())
    cum = np.cumsum(hist)
    lo = int(np.searchsorted(cum, (n - 1) // 2 + 1)) + offset  # the ((n - 1) // 2)-th value, from 0
    hi = int(np.searchsorted(cum, n // 2 + 1)) + offset
    return float(np.mean(np.array([lo, hi], np.float64)))


#: NMC share of the sampled voxels by which the "NMC first" reading must differ from the suggested thresholds
#: to be offered (:attr:`PreviewGlobals.alternative`).  The two readings agreed within 0.7 percentage points on
#: the synthetic demo electrodes and differed by 2.3-19 points on the real nano-CT slices, where NMC dominates.
READING_GAP = 0.05


def _midpoint_reading(blk: np.ndarray, boot: tuple[float, float]):
    """Midpoints of the pure grey values of ``blk`` segmented at the bootstrap thresholds ``boot``.

    Returns (suggested thresholds, pure grey values, the bootstrap phases of ``blk``); a phase that the block
    lacks keeps the bootstrap threshold.
    """
    ph_blk = threshold(blk, *boot)
    pore, cbd, nmc = refs = _interior_references(blk, ph_blk)
    low = 0.5 * (pore + cbd) if np.isfinite(pore) and np.isfinite(cbd) else boot[0]
    high = 0.5 * (cbd + nmc) if np.isfinite(cbd) and np.isfinite(nmc) else boot[1]
    suggested = (float(low), float(high)) if low < high else (float(boot[0]), float(boot[1]))
    return suggested, refs, ph_blk


@dataclass(frozen=True, eq=False)
class _ImageModel:
    """What a full run and a preview read from the image before any threshold of the user's.

    Attributes
    ----------
    suggested : (float, float)
        The suggested thresholds (:func:`suggest_thresholds`).
    i_nmc : float
        NMC grey value of the partial-volume correction.
    references : (float, float, float)
        Pure grey values of pore, CBD and NMC in ``block`` (NaN where absent).
    block : (D, H, W) float32
        The central block of the denoised volume (at most 128 voxels a side).
    block_phases : (D, H, W) uint8
        ``block`` thresholded at three-class Otsu of the sample: what the blur
        is fitted to (:func:`~core.phases.partial_volume._image_sigma`).
    alternative : (float, float) or None
        The "NMC first" reading's thresholds, where asked for and different enough.
    """

    suggested: tuple[float, float]
    i_nmc: float
    references: tuple[float, float, float]
    block: np.ndarray
    block_phases: np.ndarray
    alternative: tuple[float, float] | None = None


def _image_model(shape, denoised: Callable[[int, int], np.ndarray], sample: np.ndarray, *,
                 alternative: bool = False, exclude: float | None = None) -> _ImageModel:
    """Suggested thresholds and NMC grey value of the image, from a central block.

    The block (at most 128 voxels a side, of the denoised volume
    ``denoised(a, b)``) is thresholded by three-class Otsu of ``sample``;
    :func:`phase_references` gives the pure grey values, whose midpoints are
    the suggested thresholds.  None of it depends on the thresholds a user
    picks, so a full run and a preview share it (and the blur fitted to the
    block, see :func:`~core.phases.partial_volume._image_sigma`).

    With ``alternative``, also the thresholds of the "NMC first" reading
    (:func:`_otsu_nmc_first` as the first segmentation, the same midpoints),
    kept only when they put at least :data:`READING_GAP` more or less of
    ``sample`` in NMC than the suggested ones (else None).

    ``exclude``: a grey value left out of ``sample`` (a fill outside the reconstructed region,
    :func:`core.phases.fill_reading`, whose spike pulls the three-class Otsu that the central block's reading
    starts from), unless what is left holds fewer than three grey values (a toy volume's constant background,
    which the fill test cannot tell from a fill: then it stays); where the fill reaches the central block, the
    block is read beside it (:func:`_without_fill`).
    """
    if exclude is not None:
        kept = sample[sample != exclude]
        if np.unique(kept[:: max(1, kept.size // 50_000)]).size >= 3:
            sample = kept
    otsu = _otsu(sample)
    sz, sy, sx = _central_slices(shape, 128)
    blk = np.ascontiguousarray(denoised(sz.start, sz.stop)[:, sy, sx], dtype=np.float32)
    if exclude is not None and sample is kept:  # a fill reaching the block (a small section): read beside it
        blk = _without_fill(blk, exclude)
    suggested, refs, ph_blk = _midpoint_reading(blk, otsu)
    i_nmc = float(refs[2])
    if not np.isfinite(i_nmc):  # no NMC in the block: the sample's
        above = sample[sample >= otsu[1]]
        i_nmc = float(np.median(above)) if above.size else float(sample.max())
    alt = None
    if alternative:
        boot = _otsu_nmc_first(sample)
        if boot is not None:
            alt = _midpoint_reading(blk, boot)[0]
            share = lambda t: float(np.count_nonzero(sample >= t[1])) / max(sample.size, 1)  # noqa: E731
            if abs(share(alt) - share(suggested)) < READING_GAP:
                alt = None
    return _ImageModel(suggested, i_nmc, refs, blk, ph_blk, alt)


def _without_fill(blk: np.ndarray, value: float) -> np.ndarray:
    """The largest box of ``blk`` without the fill ``value`` (:func:`core.phases.data_box`) where the fill reaches
    it and that box is at least 16 voxels a side in the plane (else ``blk``): the fill's flat value would pull the
    pore's pure grey value, and its sharp edge the blur fitted to the block (``bench/RESULTS.md`` fill_effect)."""
    from .fill import data_box

    if not np.any(blk == np.float32(value)):
        return blk
    box = data_box(blk, np.float32(value))
    if box is None or min(b - a for a, b in box[1:]) < 16:
        return blk
    return np.ascontiguousarray(blk[tuple(slice(a, b) for a, b in box)])


def suggest_thresholds(volume: np.ndarray) -> tuple[float, float]:
    """Two thresholds (pore/CBD, CBD/NMC): midpoints of the phases' pure grey values.

    Three-class Otsu on a sample gives a first segmentation of a central
    block (at most 128 voxels a side); the pure grey values are the medians
    two voxels inside each phase (:func:`phase_references`), and each
    threshold is the midpoint of its two neighbours.  Otsu's own thresholds
    sit where the blur halo around NMC drags them (the pore/CBD one towards
    CBD); they are returned for a phase that the block lacks.

    Returns
    -------
    low, high : float
        In the grey values of ``volume``.
    """
    volume = check_greyscale(volume)
    return _image_model(volume.shape, lambda a, b: volume[a:b], _sample(volume)).suggested
