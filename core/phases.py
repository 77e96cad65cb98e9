"""Greyscale volume -> phase codes (0 = pore, 1 = CBD, 2 = NMC).

Steps, each a public function so the UI can cache and preview them:
:func:`crop`, :func:`downsample`, :func:`normalize_intensity`, :func:`denoise`,
:func:`suggest_thresholds` (multi-Otsu), :func:`threshold`,
:func:`correct_partial_volume`, :func:`remove_small_islands`, and
:func:`segment`, which runs them in order from a :class:`SegmentParams`.

Partial-volume correction
-------------------------
Blur makes an NMC-pore edge pass through grey values between the two, which a
plain two-threshold segmentation reads as CBD: a false CBD shell around every
particle, which hides detachment.  :func:`correct_partial_volume` models each
voxel outside NMC as a mixture ``I = s * I_nmc + (1 - s) * I_x`` where ``s`` is
the share of the point-spread function (Gaussian, ``sigma`` voxels) that falls
on NMC, solves for the intensity ``I_x`` of the voxel's own material, and
classifies that as pore or CBD.  Thick CBD keeps its intensity; a blur halo
falls back to pore.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import cc3d
import numba
import numpy as np
from scipy import ndimage as ndi

from . import _kernels as K
from ._validate import check_choice, check_phases, check_volume, normalize_spacing
from .codes import CBD, NMC, PORE

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
        CBD between.  ``None`` takes the multi-Otsu suggestion.
    partial_volume : bool
        Apply :func:`correct_partial_volume`.
    pv_sigma : float or None
        Blur sigma (voxels) assumed by the partial-volume correction; None
        estimates it from the data with :func:`estimate_pv_sigma`.
    min_island : int
        Connected islands of a phase smaller than this many voxels join the
        phase that surrounds them (0 disables).
    """

    denoise: Denoise = "gaussian"
    denoise_size: float = 0.7
    low: float | None = None
    high: float | None = None
    partial_volume: bool = True
    pv_sigma: float | None = None
    min_island: int = 8

    def __post_init__(self):
        check_choice(self.denoise, "denoise", DENOISE_METHODS)
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


def downsample(volume: np.ndarray, factor: int, spacing=None) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Block-mean downsampling by an integer ``factor`` on every axis.

    Returns
    -------
    small : (Z // f, Y // f, X // f) float32
    spacing : (3,) float, µm, multiplied by ``factor``
    """
    volume = check_volume(volume)
    sp = normalize_spacing(spacing)
    factor = int(factor)
    if factor < 1:
        raise ValueError(f"downsample factor must be >= 1, got {factor}")
    if factor == 1:
        return volume.astype(np.float32, copy=False), sp
    nz, ny, nx = (s // factor for s in volume.shape)
    if min(nz, ny, nx) == 0:
        raise ValueError(f"volume {volume.shape} is smaller than the downsample factor {factor}")
    v = volume[: nz * factor, : ny * factor, : nx * factor].astype(np.float32)
    small = v.reshape(nz, factor, ny, factor, nx, factor).mean(axis=(1, 3, 5), dtype=np.float32)
    return small, tuple(s * factor for s in sp)  # type: ignore[return-value]


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
        k = max(1, int(round(size)))
        k += 1 - k % 2
        return ndi.median_filter(v, size=k, mode="nearest")
    from skimage.restoration import denoise_nl_means, estimate_sigma

    sigma = float(np.mean(estimate_sigma(v[v.shape[0] // 2])))
    return denoise_nl_means(
        v, h=0.8 * sigma, sigma=sigma, patch_size=3, patch_distance=max(1, int(round(size))),
        fast_mode=True, channel_axis=None,
    ).astype(np.float32)


def suggest_thresholds(volume: np.ndarray) -> tuple[float, float]:
    """Two thresholds (pore/CBD, CBD/NMC) by three-class Otsu on a sample.

    Returns
    -------
    low, high : float
        In the grey values of ``volume``.
    """
    from skimage.filters import threshold_multiotsu

    volume = check_greyscale(volume)
    s = _sample(volume)
    lo, hi = threshold_multiotsu(s.astype(np.float64), classes=3, nbins=256)
    return float(lo), float(hi)


def threshold(volume: np.ndarray, low: float, high: float) -> np.ndarray:
    """Phase codes by two thresholds: ``< low`` pore, ``>= high`` NMC, CBD between.

    Returns
    -------
    phases : (Z, Y, X) uint8
    """
    volume = check_volume(volume)
    if not low < high:
        raise ValueError(f"low threshold ({low}) must be below high threshold ({high})")
    phases = np.full(volume.shape, CBD, np.uint8)
    phases[volume < low] = PORE
    phases[volume >= high] = NMC
    return phases


def class_means(volume: np.ndarray, phases: np.ndarray) -> tuple[float, float, float]:
    """Median grey value of pore, CBD and NMC voxels (NaN for an empty class)."""
    out = []
    for code in (PORE, CBD, NMC):
        vals = volume[phases == code]
        out.append(float(np.median(vals)) if vals.size else float("nan"))
    return tuple(out)  # type: ignore[return-value]


def correct_partial_volume(
    volume: np.ndarray, phases: np.ndarray, low: float, *, sigma: float | None = None,
    i_nmc: float | None = None, grow_nmc: bool = True,
) -> np.ndarray:
    """Reclassify non-NMC voxels after removing the NMC blur spill.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        The (denoised) greyscale that ``phases`` was thresholded from.
    phases : (Z, Y, X) uint8
        Phases from :func:`threshold`.
    low : float
        Pore/CBD threshold.
    sigma : float or None
        Gaussian blur (voxels) of the imaging system plus denoising; None
        estimates it with :func:`estimate_pv_sigma`.
    i_nmc : float or None
        Grey value of NMC; default the median of NMC voxels.

    grow_nmc : bool
        First grow NMC by one voxel into neighbours brighter than the midpoint
        of pore and NMC, where an NMC-pore edge lies (the multi-Otsu NMC
        threshold sits higher and leaves the NMC rim as CBD).

    Returns
    -------
    phases : (Z, Y, X) uint8
        New array; NMC voxels are kept (and grown), the others are pore or CBD
        by their unmixed intensity.
    """
    volume = check_volume(volume)
    phases = check_phases(phases)
    if volume.shape != phases.shape:
        raise ValueError(f"volume shape {volume.shape} differs from phases shape {phases.shape}")
    return _correct_partial_volume(volume, phases, low, sigma=sigma, i_nmc=i_nmc, grow_nmc=grow_nmc)[0]


def _grow_rim(volume, phases, i_nmc, low):
    """Grow NMC by one voxel where its rim is brighter than the local halfway value.

    The NMC surface lies where the grey value is halfway between NMC and the
    material just outside it.  That outside value is estimated, for each rim
    voxel (a non-NMC face neighbour of NMC), as the mean grey value of the
    "ring" voxels (2 to 3 dilation steps away from NMC) within a 7x7x7 window
    (two separable box filters).  Returns new phases.
    """
    nmc = phases == NMC
    d1 = ndi.binary_dilation(nmc)
    ring = ndi.binary_dilation(d1, iterations=2)
    ring &= ~d1
    rim = d1 & ~nmc
    del d1
    count = ndi.uniform_filter(ring.astype(np.float32), 7, mode="constant", cval=0.0)
    total = ndi.uniform_filter(np.where(ring, volume, 0).astype(np.float32), 7, mode="constant", cval=0.0)
    del ring
    out = phases.copy()
    _grow_rim_kernel(volume, rim, count, total, np.float32(i_nmc), np.float32(low), np.uint8(NMC), out)
    return out


@numba.njit(cache=True, nogil=True)
def _grow_rim_kernel(volume, rim, count, total, i_nmc, low, nmc_code, out):
    flat_v = volume.ravel()
    flat_r = rim.ravel()
    flat_c = count.ravel()
    flat_t = total.ravel()
    flat_o = out.ravel()
    for i in range(flat_v.size):
        if not flat_r[i]:
            continue
        outside = flat_t[i] / flat_c[i] if flat_c[i] > 1e-6 else low
        if flat_v[i] >= 0.5 * (i_nmc + outside):
            flat_o[i] = nmc_code


def _correct_partial_volume(volume, phases, low, *, sigma=None, i_nmc=None, grow_nmc=True):
    if i_nmc is None:
        nmc = phases == NMC
        i_nmc = float(np.median(volume[nmc])) if nmc.any() else float(volume.max())
    if grow_nmc:
        phases = _grow_rim(volume, phases, i_nmc, low)
    if sigma is None:
        sigma = estimate_pv_sigma(volume, phases)
    nmc = phases == NMC
    spill = ndi.gaussian_filter(nmc.astype(np.float32), sigma, mode="nearest")
    out = phases.copy()
    _unmix(volume, nmc, spill, np.float32(i_nmc), np.float32(low), out)
    return out, float(sigma)


def estimate_pv_sigma(
    volume: np.ndarray, phases: np.ndarray, *, candidates=tuple(np.round(np.arange(0.6, 2.05, 0.1), 2)),
    max_voxels: int = 128**3, fallback: float = 1.0,
) -> float:
    """Blur sigma (voxels) that best unmixes the voxels around NMC.

    For each candidate sigma the voxels within 1.5 voxels outside NMC are
    unmixed as in :func:`correct_partial_volume`; the chosen sigma makes their
    unmixed grey values cluster closest to the pore and CBD grey values (taken
    from voxels more than 3 voxels away from NMC).  A central block of at most
    ``max_voxels`` is used.

    When CBD (or pore) far from NMC is too rare to take its grey value, the
    fit uses the other class only.

    Returns
    -------
    sigma : float
        One of ``candidates``; ``fallback`` when there is no NMC surface or
        neither pore nor CBD to judge by.
    """
    import edt as edt_pkg

    volume = check_volume(volume)
    phases = check_phases(phases)
    side = [min(n, max(8, int(round(max_voxels ** (1 / 3))))) for n in volume.shape]
    sl = tuple(slice((n - s) // 2, (n - s) // 2 + s) for n, s in zip(volume.shape, side))
    v = np.ascontiguousarray(volume[sl], dtype=np.float32)
    ph = phases[sl]
    nmc = ph == NMC
    if not nmc.any() or nmc.all():
        return fallback
    d = edt_pkg.edt(~nmc, black_border=False)
    shell = (d > 0) & (d <= 1.5)
    # reference grey values of pore and CBD away from NMC (> 3 voxels, or
    # beyond the shell for thin CBD); a class too rare is left out of the fit
    refs = []
    for code in (PORE, CBD):
        for dmin in (3.0, 1.5):
            m = (d > dmin) & (ph == code)
            if m.sum() >= 50:
                refs.append(float(np.median(v[m])))
                break
    if not refs or shell.sum() < 50:
        return fallback
    i_nmc = float(np.median(v[nmc]))
    refs_arr = np.asarray(refs, np.float64)
    vs = v[shell].astype(np.float64)
    best, best_cost = fallback, np.inf
    for sigma in candidates:
        s = np.minimum(ndi.gaussian_filter(nmc.astype(np.float32), sigma, mode="nearest")[shell], 0.9)
        u = (vs - s * i_nmc) / (1 - s)
        cost = float(np.mean(np.min((u[:, None] - refs_arr[None, :]) ** 2, axis=1)))
        if cost < best_cost:
            best, best_cost = float(sigma), cost
    return best


@numba.njit(cache=True, nogil=True)
def _unmix(volume, nmc, spill, i_nmc, low, out):
    nz, ny, nx = volume.shape
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if nmc[z, y, x]:
                    continue
                s = min(spill[z, y, x], np.float32(0.9))
                v = (volume[z, y, x] - s * i_nmc) / (1 - s)
                out[z, y, x] = 0 if v < low else 1


def remove_small_islands(phases: np.ndarray, min_size: int) -> np.ndarray:
    """Merge connected islands smaller than ``min_size`` voxels into their surroundings.

    Each island (6-connected component of one phase) joins the phase that
    shares most faces with it.  Returns a new array.
    """
    phases = check_phases(phases)
    out = phases.astype(np.uint8, copy=True)
    _remove_small_islands_inplace(out, min_size)
    return out


def _remove_small_islands_inplace(out: np.ndarray, min_size: int) -> None:
    if min_size <= 1:
        return
    for code in (CBD, PORE, NMC):
        comp, n = cc3d.connected_components(out == code, connectivity=6, return_N=True)
        if n == 0:
            continue
        sizes = K.label_counts(comp, int(n))
        small = sizes < min_size
        small[0] = False
        if small.any():
            _absorb_islands(comp, small, out)
        del comp


@numba.njit(cache=True, nogil=True)
def _absorb_islands(comp, small, phases):
    """Reassign voxels of small components to their most common other neighbour phase."""
    nz, ny, nx = comp.shape
    n_comp = small.size - 1
    counts = np.zeros((n_comp + 1, 3), np.int64)
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                c = comp[z, y, x]
                if c == 0 or not small[c]:
                    continue
                for d in range(6):
                    inside, zz, yy, xx = K.step(z, y, x, d, nz, ny, nx)
                    if not inside:
                        continue
                    if comp[zz, yy, xx] != c:
                        counts[c, phases[zz, yy, xx]] += 1
    target = np.full(n_comp + 1, -1, np.int64)
    for c in range(1, n_comp + 1):
        if small[c]:
            best, best_n = -1, 0
            for p in range(3):
                if counts[c, p] > best_n:
                    best, best_n = p, counts[c, p]
            target[c] = best
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                c = comp[z, y, x]
                if c != 0 and target[c] >= 0:
                    phases[z, y, x] = target[c]


def _pv_references(values: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """NMC grey value and the pore/CBD boundary used after unmixing.

    After unmixing, a voxel is pore or CBD: it is classified at the midpoint
    of their grey values (medians of the values below ``low`` and between the
    thresholds), not at the multi-Otsu threshold, which the blur halo drags
    towards CBD.
    """
    above = values[values >= high]
    i_nmc = float(np.median(above)) if above.size else float(values.max())
    below, mid = values[values < low], values[(values >= low) & (values < high)]
    pv_low = 0.5 * (float(np.median(below)) + float(np.median(mid))) if below.size and mid.size else float(low)
    return i_nmc, pv_low


def preview_slice(
    volume: np.ndarray, axis: int, index: int, params: SegmentParams, *, islands: bool = True,
) -> np.ndarray:
    """Phases of one slice, as :func:`segment` would give them, from a slab around it.

    The slab is as thick as the filters reach.  The global values that
    :func:`segment` takes from the whole volume (NMC grey value, pore/CBD
    boundary after unmixing, and the blur when ``params.pv_sigma`` is None)
    come from the slab, so the preview can differ slightly from a full run;
    pass the resolved parameters of a run to fix the blur.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
    axis : {0, 1, 2}
    index : int
        Slice index along ``axis``.
    params : SegmentParams
        ``low`` and ``high`` must be set.
    islands : bool
        Also remove small islands (slower; they can reach far along ``axis``).

    Returns
    -------
    phases : 2D uint8
        The slice, axes in the order of ``volume`` without ``axis``.
    """
    volume = check_volume(volume)
    check_choice(axis, "axis", (0, 1, 2))
    if params.low is None or params.high is None:
        raise ValueError("set both thresholds (low and high) for a preview")
    n = volume.shape[axis]
    if not 0 <= index < n:
        raise ValueError(f"slice index {index} is outside 0..{n - 1} along axis {axis}")
    sigma = params.pv_sigma
    halo = int(np.ceil(4 * params.denoise_size)) + 2 if params.denoise != "none" else 0
    if params.partial_volume:
        halo += 1 + 3 + 3 + int(np.ceil(4 * (sigma or 2.0))) + 2
    a, b = max(0, index - halo), min(n, index + halo + 1)
    slab = np.moveaxis(np.take(volume, np.arange(a, b), axis=axis), axis, 0)
    d = denoise(slab, params.denoise, size=params.denoise_size)
    phases = threshold(d, params.low, params.high)
    if params.partial_volume and (phases == NMC).any():
        i_nmc, pv_low = _pv_references(_sample(d), params.low, params.high)
        phases, _ = _correct_partial_volume(d, phases, pv_low, sigma=sigma, i_nmc=i_nmc)
    if islands and params.min_island > 1:
        _remove_small_islands_inplace(phases, params.min_island)
    return phases[index - a]


@dataclass(frozen=True, eq=False)
class SegmentResult:
    """Phases plus the values :func:`segment_detailed` resolved.

    Attributes
    ----------
    phases : (Z, Y, X) uint8
    params : SegmentParams
        The parameters with ``low``, ``high`` and ``pv_sigma`` filled in, so
        that rerunning with them gives the same phases.
    """

    phases: np.ndarray
    params: SegmentParams


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
    from dataclasses import replace

    params = params or SegmentParams()
    volume = check_greyscale(volume)
    report = progress or (lambda f, m: None)
    nz = volume.shape[0]
    if slab is None:
        budget = max(16_000_000, volume.size // 8)
        slab = budget // (volume.shape[1] * volume.shape[2])
    slab = max(1, int(slab))
    dn_halo = int(np.ceil(4 * params.denoise_size)) + 2 if params.denoise != "none" else 0
    nan_fill = None
    if np.issubdtype(volume.dtype, np.floating):
        nan_fill = float(np.nanmin(_sample(volume)))

    def denoised(a: int, b: int) -> np.ndarray:
        """Denoised z-range [a, b) computed with its own halo."""
        lo_, hi_ = max(0, a - dn_halo), min(nz, b + dn_halo)
        sub = volume[lo_:hi_]
        if nan_fill is not None and not np.isfinite(sub).all():
            sub = np.nan_to_num(sub.astype(np.float32), nan=nan_fill, posinf=nan_fill, neginf=nan_fill)
        return denoise(sub, params.denoise, size=params.denoise_size)[a - lo_ : a - lo_ + (b - a)]

    # pass 1: a strided sample of the denoised volume for the global values
    low, high = params.low, params.high
    i_nmc = None
    need_sample = low is None or high is None or params.partial_volume
    slab_starts = list(range(0, nz, slab))
    kept = None  # the denoised volume, when it is one block and one slab
    if need_sample:
        # blocks of slices spread through the depth, independent of ``slab``
        # so that the result does not depend on it
        if volume.size <= 16_000_000 or nz <= 128:
            blocks = [(0, nz)]
        else:
            blocks = [(int(z), int(z) + 16) for z in np.linspace(0, nz - 16, 8).round()]
        n_vox = sum(b - a for a, b in blocks) * volume.shape[1] * volume.shape[2]
        step = max(1, n_vox // 2_000_000)
        samples = []
        for i, (a, b) in enumerate(blocks):
            report(0.25 * i / len(blocks), "sampling grey values")
            d = denoised(a, b)
            samples.append(d.reshape(-1)[::step].copy())
            if len(blocks) == 1 and len(slab_starts) == 1:
                kept = d
        sample = np.concatenate(samples)
        del samples
        if low is None or high is None:
            from skimage.filters import threshold_multiotsu

            s_low, s_high = threshold_multiotsu(sample.astype(np.float64), classes=3, nbins=256)
            low = float(s_low) if low is None else low
            high = float(s_high) if high is None else high
        if not low < high:
            raise ValueError(f"low threshold ({low:g}) must be below high threshold ({high:g})")
        i_nmc, pv_low = _pv_references(sample, low, high)

    pv_sigma = params.pv_sigma
    if params.partial_volume and pv_sigma is None:
        report(0.3, "estimating the blur")
        # central block, all axes at most ~128 voxels, with a halo for the rim growth
        side = [min(n, 128) for n in volume.shape]
        starts = [(n - s) // 2 for n, s in zip(volume.shape, side)]
        halo = 12
        z0, z1 = max(0, starts[0] - halo), min(nz, starts[0] + side[0] + halo)
        blk = denoised(z0, z1)[:, starts[1] : starts[1] + side[1], starts[2] : starts[2] + side[2]]
        ph_blk = threshold(blk, low, high)
        if (ph_blk == NMC).any():
            ph_blk = _grow_rim(blk, ph_blk, i_nmc, low)
            pv_sigma = estimate_pv_sigma(blk, ph_blk)
        else:
            pv_sigma = 1.0

    # pass 2: phases slab by slab
    halo = dn_halo
    if params.partial_volume:
        halo += 1 + 3 + 3 + int(np.ceil(4 * (pv_sigma or 1.0))) + 2
    phases = np.empty(volume.shape, np.uint8)
    for z0 in slab_starts:
        z1 = min(nz, z0 + slab)
        report(0.35 + 0.45 * z0 / nz, f"thresholding slices {z0}-{z1 - 1} of {nz}")
        a, b = max(0, z0 - (halo - dn_halo)), min(nz, z1 + (halo - dn_halo))
        d = kept if kept is not None else denoised(a, b)
        kept = None
        ph = threshold(d, low, high)
        if params.partial_volume and (ph == NMC).any():
            ph, _ = _correct_partial_volume(d, ph, pv_low, sigma=pv_sigma, i_nmc=i_nmc)
        phases[z0:z1] = ph[z0 - a : z0 - a + (z1 - z0)]
        del d, ph
    if params.min_island > 1:
        report(0.85, "removing small islands")
        _remove_small_islands_inplace(phases, params.min_island)
    report(1.0, "phases done")
    return SegmentResult(phases, replace(params, low=float(low), high=float(high), pv_sigma=pv_sigma))
