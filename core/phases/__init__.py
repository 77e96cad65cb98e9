"""Greyscale volume -> phase codes (0 = pore, 1 = CBD, 2 = NMC).

Steps, each a public function so the UI can cache and preview them:
:func:`crop`, :func:`normalize_intensity`, :func:`denoise`,
:func:`suggest_thresholds`, :func:`threshold`,
:func:`correct_partial_volume`, :func:`remove_small_islands`, and
:func:`segment`, which runs them in order from a :class:`SegmentParams`.

One-slice preview in two steps, for a page whose threshold sliders move:
:func:`preview_globals` (per volume and denoising) and :func:`prepare_preview`
(per slice) do the threshold-independent work once; :func:`preview_from` then
gives the slice's phases for any thresholds, equal to the full run's slice
(see its docstring for the exceptions).  :func:`preview_slice` does both in
one call.

Partial-volume correction
-------------------------
Blur makes an NMC-pore edge pass through grey values between the two, which a
plain two-threshold segmentation reads as CBD: a false CBD shell around every
particle, which hides detachment.  :func:`correct_partial_volume` models each
voxel outside NMC as a mixture ``I = s * I_nmc + (1 - s) * I_x`` where ``s`` is
the share of the point-spread function (Gaussian, ``sigma`` voxels) that falls
on NMC, solves for the intensity ``I_x`` of the voxel's own material, and
classifies that as pore or CBD at the pore/CBD threshold.  Thick CBD keeps
its intensity; a blur halo falls back to pore.

The suggested thresholds are the midpoints of the phases' pure grey values
(:func:`phase_references`: medians two voxels inside each phase of a first,
multi-Otsu, segmentation), not the multi-Otsu thresholds, which the blur halo
drags.  The blur ``sigma`` is fitted to the image (:func:`estimate_pv_sigma`).
The grey values and the blur are properties of the image: a change of
thresholds leaves them alone, so a preview and a full run share them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import numba
import numpy as np
from scipy import ndimage as ndi

from .. import _kernels as K
from .._validate import check_choice, check_phases, check_volume, normalize_spacing
from ..codes import CBD, NMC, PORE
from ..io.downsampling import MAX_DOWNSAMPLE, check_downsample

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
    return _image_model(volume.shape, lambda a, b: volume[a:b], _sample(volume), None, False)[0]


def _otsu(sample: np.ndarray) -> tuple[float, float]:
    from skimage.filters import threshold_multiotsu

    lo, hi = threshold_multiotsu(sample.astype(np.float64), classes=3, nbins=256)
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


def _grow_rim(volume, phases, i_nmc, low, rows=None):
    """Grow NMC by one voxel where its rim is brighter than the local halfway value.

    The NMC surface lies where the grey value is halfway between NMC and the
    material just outside it.  That outside value is estimated, for each rim
    voxel (a non-NMC face neighbour of NMC), as the mean grey value of the
    "ring" voxels (2 to 3 face steps away from NMC) within a 7x7x7 window.
    The window sums run along x and y as running sums over whole rows and
    along axis 0 as direct sums, so a voxel's value does not depend on where
    a slab of the volume starts along axis 0 (slabs and one-slice previews
    agree bit for bit with a whole-volume run).  Returns new phases; with
    ``rows=(lo, hi)`` only NMC in rows ``lo:hi`` along axis 0 grows (the
    other rows are left as they are).
    """
    out = phases.copy()
    lo, hi = rows if rows is not None else (0, phases.shape[0])
    _grow_rim_kernel(np.ascontiguousarray(volume, dtype=np.float32), np.ascontiguousarray(phases),
                     np.float64(i_nmc), np.float64(low), np.uint8(NMC), out, int(lo), int(hi))
    return out


@numba.njit(cache=True, nogil=True)
def _grow_rim_kernel(v, ph, i_nmc, low, nmc_code, out, out_lo, out_hi):
    nz, ny, nx = v.shape
    dist = _l1_distance4(ph, nmc_code)
    # window sums across axes 1 and 2 of 8 planes at a time (plane p in slot p % 8)
    cnt = np.empty((8, ny, nx), np.uint16)
    tot = np.empty((8, ny, nx), np.float32)
    bufs = _ring_sum_buffers(ny, nx)
    done = max(0, out_lo - 3)  # next plane to sum
    for z in range(out_lo, out_hi):
        z0, z1 = max(0, z - 3), min(nz, z + 4)
        while done < z1:
            _ring_sums_plane(dist, v, done, cnt[done % 8], tot[done % 8], bufs)
            done += 1
        # along axis 0: direct sums at the rim voxels; then the halfway test
        for y in range(ny):
            for x in range(nx):
                if dist[z, y, x] != 1:
                    continue
                c = 0
                t = 0.0
                for zz in range(z0, z1):
                    c += cnt[zz % 8, y, x]
                    t += tot[zz % 8, y, x]
                outside = t / c if c > 0 else low
                if v[z, y, x] >= 0.5 * (i_nmc + outside):
                    out[z, y, x] = nmc_code


@numba.njit(cache=True, nogil=True)
def _l1_distance4(ph, nmc_code):
    """Face-step (L1) distance to ``nmc_code`` voxels, capped at 4 (uint8).

    Separable: the L1 distance is a sum over the axes, so forward and
    backward sweeps along x, then y, then axis 0 give it exactly.
    """
    nz, ny, nx = ph.shape
    dist = np.empty((nz, ny, nx), np.uint8)
    one, cap = np.uint8(1), np.uint8(4)
    for z in range(nz):
        for y in range(ny):
            run = cap  # the sweeps along x carry their value in a register
            for x in range(nx):
                run = np.uint8(0) if ph[z, y, x] == nmc_code else min(cap, run + one)
                dist[z, y, x] = run
            run = cap
            for x in range(nx - 1, -1, -1):
                run = min(dist[z, y, x], run + one)
                dist[z, y, x] = run
        for y in range(1, ny):
            for x in range(nx):
                dist[z, y, x] = min(dist[z, y, x], dist[z, y - 1, x] + one)
        for y in range(ny - 2, -1, -1):
            for x in range(nx):
                dist[z, y, x] = min(dist[z, y, x], dist[z, y + 1, x] + one)
    for z in range(1, nz):
        for y in range(ny):
            for x in range(nx):
                dist[z, y, x] = min(dist[z, y, x], dist[z - 1, y, x] + one)
    for z in range(nz - 2, -1, -1):
        for y in range(ny):
            for x in range(nx):
                dist[z, y, x] = min(dist[z, y, x], dist[z + 1, y, x] + one)
    return dist


@numba.njit(cache=True, nogil=True)
def _ring_sum_buffers(ny, nx):
    return (np.zeros(nx + 7, np.int32), np.zeros(nx + 7, np.float64), np.zeros(nx + 7, np.int32),
            np.zeros(nx + 7, np.float64), np.zeros((ny + 7, nx), np.int32), np.zeros((ny + 7, nx), np.float64),
            np.zeros(nx, np.int32), np.zeros(nx, np.float64))


@numba.njit(cache=True, nogil=True)
def _ring_sums_plane(dist, v, z, cnt, tot, bufs):
    """Count and grey sum of the ring voxels (distance 2..3) in the 7x7 windows of plane ``z``.

    Prefix sums along each whole row, then running sums along each whole
    column (float64, stored as float32), so a plane's values do not depend
    on the other planes.
    """
    rowc, rowt, prec, pret, pc, pt, accc, acct = bufs
    ny, nx = cnt.shape
    for y in range(ny):
        for x in range(nx):
            d = dist[z, y, x]
            ring = d == 2 or d == 3
            rowc[x + 3] = 1 if ring else 0
            rowt[x + 3] = v[z, y, x] if ring else 0.0
        c = 0
        t = 0.0
        for x in range(nx + 7):
            c += rowc[x]
            t += rowt[x]
            prec[x] = c
            pret[x] = t
        for x in range(nx):
            pc[y + 3, x] = prec[x + 6] - (prec[x - 1] if x > 0 else 0)
            pt[y + 3, x] = np.float32(pret[x + 6] - (pret[x - 1] if x > 0 else 0.0))
    accc[:] = 0
    acct[:] = 0.0
    for k in range(6):
        for x in range(nx):
            accc[x] += pc[k, x]
            acct[x] += pt[k, x]
    for y in range(ny):
        for x in range(nx):
            accc[x] += pc[y + 6, x]
            acct[x] += pt[y + 6, x]
            cnt[y, x] = accc[x]
            tot[y, x] = acct[x]
            accc[x] -= pc[y, x]
            acct[x] -= pt[y, x]


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
    face = ndi.generate_binary_structure(3, 1)
    # a one- or two-slice axis (a 2D image as a volume) is not eroded along: the phases' insides are in-plane
    for axis, n in enumerate(ph.shape):
        if n < 3:
            keep = [slice(None)] * 3
            keep[axis] = slice(1, 2)
            flat = np.zeros_like(face)
            flat[tuple(keep)] = face[tuple(keep)]
            face = flat
    out = []
    for code in (PORE, CBD, NMC):
        m = ph == code
        value = float("nan")
        for depth in (2, 1, 0):
            inner = ndi.binary_erosion(m, face, iterations=depth) if depth else m
            n = int(np.count_nonzero(inner))
            if n >= min_voxels or (depth == 0 and n):
                value = float(np.median(v[inner]))
                break
        out.append(value)
    return tuple(out)


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


def pv_sigma_warning(pv_sigma: float, downsampled: int = 1, *, estimated: bool = True) -> str | None:
    """One sentence when the blur is beyond what the partial-volume correction handles, else None.

    ``downsampled``: the block-mean factor the volume was already reduced by
    (its box is discounted, see :func:`box_blur_removed`).  ``estimated``:
    ``pv_sigma`` was fitted to the image (not given), so a value at the fit's
    upper bound means the blur was not measured.
    """
    if pv_sigma is None:
        return None
    if estimated and _at_fit_bound(pv_sigma):
        return (f"The blur fit reached its upper bound (σ = {float(pv_sigma):.2f} voxel): the image's blur could "
                "not be measured (a blur model of the phases does not fit these grey values), so the partial-volume "
                "correction is unreliable here; compare the preview with it switched off (Denoising and clean-up), "
                "or give pv_sigma yourself.")
    sigma = box_blur_removed(pv_sigma, downsampled)
    if not sigma > PV_SIGMA_MAX:
        return None
    factor = suggested_downsample(pv_sigma, downsampled, estimated=estimated)
    head = (f"The blur (σ = {float(pv_sigma):.2f} voxel"
            + (f"; {sigma:.2f} without the box of the downsampling by {int(downsampled)}" if downsampled > 1 else "")
            + ") is wider than the partial-volume correction handles (validated at 0.75 voxel; on synthetic "
              "electrodes at σ ≥ 1 voxel the detachment came out too low by 0.07-0.31), so the detachment will be "
              "underestimated")
    if factor < 2:
        return head + f", and the volume cannot be downsampled further (at most {MAX_DOWNSAMPLE} in all)."
    return (head + f": downsample the volume by {factor} "
            f"before the analysis (in the app: 'Add a copy downsampled by {factor}' on the Segment page, or "
            f"'Downsample by' on the Samples page; CLI: --downsample {factor}).")


def resolvable_gap_um(pv_sigma: float, spacing) -> float:
    """Narrowest gap (µm) between a particle and its CBD read as a gap at blur ``pv_sigma`` (voxels).

    ``RESOLVABLE_GAP_SIGMAS * pv_sigma`` voxels along the coarsest axis of
    ``spacing`` (µm); narrower gaps are increasingly read as contact, so the
    detachment comes out too low.
    """
    if not pv_sigma > 0:
        raise ValueError(f"pv_sigma must be > 0 voxels, got {pv_sigma}")
    return float(RESOLVABLE_GAP_SIGMAS * float(pv_sigma) * max(normalize_spacing(spacing)))


#: Range (voxels) searched by :func:`estimate_pv_sigma`.
SIGMA_BOUNDS = (0.3, 3.0)


def estimate_pv_sigma(
    volume: np.ndarray, phases: np.ndarray, *, references: tuple[float, float, float] | None = None,
    iterations: int = 2, max_voxels: int = 128**3, fallback: float = 1.0,
) -> float:
    """Blur sigma (voxels) of the image, by fitting a blurred phase model to the voxels around NMC.

    The model image is each phase's pure grey value (``references``) blurred
    by a Gaussian of ``sigma``; the estimate minimises its squared difference
    from ``volume`` over the voxels within two face steps of the NMC surface
    (either side) and not within two of CBD.  Thresholded phases are themselves wrong at a blurred
    surface (they follow the blur), which pulls the fit low, so the phases
    are corrected for the partial volume with the fitted sigma
    (:func:`correct_partial_volume`) and the fit repeated ``iterations``
    times.  On synthetic electrodes of generator blur 0.75 / 1.0 / 1.25 /
    1.75 voxel the estimate was 0.755 / 0.981 / 1.166 / 1.413: close at the
    demo electrodes' blur, increasingly low above one voxel, where the
    corrected phases still miss small features.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        The greyscale the phases come from (after any denoising, whose blur
        is then part of the estimate).
    phases : (Z, Y, X) uint8
        Thresholded phases of ``volume`` (:func:`threshold`), before
        partial-volume correction.
    references : (pore, cbd, nmc) or None
        Pure grey values; default :func:`phase_references` of ``phases``.
    iterations : int
        Correct-and-refit rounds after the first fit (the estimate moved by
        less than 0.005 voxel after the second in our tests).
    max_voxels : int
        A central block of at most this many voxels is used.
    fallback : float
        Returned when there is no NMC surface to fit.

    Returns
    -------
    sigma : float
        Within :data:`SIGMA_BOUNDS`, rounded to 0.001 voxel.
    """
    volume = check_volume(volume)
    phases = check_phases(phases)
    if volume.shape != phases.shape:
        raise ValueError(f"volume shape {volume.shape} differs from phases shape {phases.shape}")
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    sl = _central_slices(volume.shape, max(8, int(round(max_voxels ** (1 / 3)))))
    v = np.ascontiguousarray(volume[sl], dtype=np.float32)
    ph = np.ascontiguousarray(phases[sl])
    nmc = ph == NMC
    if not nmc.any() or nmc.all():
        return fallback
    refs = _interior_references(v, ph) if references is None else tuple(float(r) for r in references)
    i_nmc = refs[2] if np.isfinite(refs[2]) else float(v.max())
    if np.isfinite(refs[0]) and np.isfinite(refs[1]):
        pv_low = 0.5 * (refs[0] + refs[1])
    else:  # pore or CBD absent: every unmixed voxel is the phase present
        pv_low = 0.5 * (refs[0] + i_nmc) if np.isfinite(refs[0]) else -np.inf
    # a phase absent from the block gets any value: no voxel of the model image uses it
    lut = np.nan_to_num(np.asarray([refs[0], refs[1], i_nmc], np.float32), nan=0.0)
    sigma = _fit_blur(v, ph, lut, None)
    if sigma is None:
        return fallback
    for _ in range(iterations):
        corrected, _ = _correct_partial_volume(v, ph, pv_low, sigma=sigma, i_nmc=i_nmc)
        s = _fit_blur(v, corrected, lut, (sigma - 0.2, sigma + 0.2))
        if s is None:
            break
        sigma = s
    return round(float(sigma), 3)


def _fit_blur(v, ph, lut, bracket):
    """Sigma minimising the squared model error in the band around NMC (None without a band).

    The band is the voxels within two face steps of the NMC surface, away
    from CBD (all of them when fewer than 1000 are away from CBD).

    A coarse scan of :data:`SIGMA_BOUNDS` (or none, inside ``bracket``),
    then golden-section search to 0.005 voxel.
    """
    nmc = ph == NMC
    face = ndi.generate_binary_structure(3, 1)
    band = ndi.binary_dilation(nmc, face, iterations=2) & ~ndi.binary_erosion(nmc, face, iterations=2)
    # NMC-pore edges only, where there are enough: thin CBD is the phase map's worst guess
    # under blur, and fitting it pulled the estimate low (0.92 for 1.0, 1.07 for 1.25 voxel)
    clear = band & ~ndi.binary_dilation(ph == CBD, face, iterations=2)
    if np.count_nonzero(clear) >= 1000:
        band = clear
    if not band.any():
        return None
    img = lut[ph]
    target = v[band]

    def cost(sigma):
        return float(np.mean((ndi.gaussian_filter(img, sigma, mode="nearest")[band] - target) ** 2))

    lo_b, hi_b = SIGMA_BOUNDS
    if bracket is None:
        grid = np.geomspace(lo_b, hi_b, 11)
        costs = [cost(s) for s in grid]
        k = int(np.argmin(costs))
        a, b = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    else:
        a, b = max(lo_b, bracket[0]), min(hi_b, bracket[1])
    g = (np.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = cost(c), cost(d)
    while b - a > 0.005:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = cost(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = cost(d)
    return 0.5 * (a + b)


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
    state = np.zeros(out.shape, np.uint8)
    stack = np.zeros(int(min_size), np.int64)
    for code in (CBD, PORE, NMC):
        state[...] = 0
        _islands_pass(out, np.uint8(code), int(min_size), state, stack)


@numba.njit(cache=True, nogil=True)
def _islands_pass(phases, code, min_size, state, stack):
    """Merge the 6-connected components of ``code`` smaller than ``min_size`` into their surroundings.

    A bounded flood fill from each voxel not yet reached: it stops as soon as
    it holds ``min_size`` voxels or touches a voxel known to be in a big
    component.  A small component joins the phase that shares most faces
    with it (ties to the lower code); one without any neighbour stays.
    ``state``: 0 unknown, 1 done, 2 in the current fill.
    """
    nz, ny, nx = phases.shape
    flat = phases.ravel()
    st = state.ravel()
    counts = np.zeros(3, np.int64)
    for i in range(flat.size):
        if flat[i] != code or st[i] != 0:
            continue
        if i % nx != 0 and flat[i - 1] == code and st[i - 1] == 1:
            st[i] = 1  # its -x neighbour is in a big component, so it is too
            continue
        n = 1
        head = 0
        stack[0] = i
        st[i] = 2
        big = False
        while head < n and not big:
            j = stack[head]
            head += 1
            z, y, x = K.unravel(j, ny, nx)
            for d in range(6):
                k = K.flat_step(j, z, y, x, d, nz, ny, nx)
                if k < 0 or flat[k] != code or st[k] == 2:
                    continue
                if st[k] == 1 or n == min_size:
                    big = True
                    break
                st[k] = 2
                stack[n] = k
                n += 1
            if n == min_size:
                big = True
        if big:
            for m in range(n):
                st[stack[m]] = 1
            continue
        counts[:] = 0
        for m in range(n):
            j = stack[m]
            z, y, x = K.unravel(j, ny, nx)
            for d in range(6):
                k = K.flat_step(j, z, y, x, d, nz, ny, nx)
                if k >= 0 and flat[k] != code:
                    counts[flat[k]] += 1
        best, best_n = -1, 0
        for p in range(3):
            if counts[p] > best_n:
                best, best_n = p, counts[p]
        for m in range(n):
            st[stack[m]] = 1
            if best >= 0:
                flat[stack[m]] = best


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
    return float(np.nanmin(_sample(volume))) if np.issubdtype(volume.dtype, np.floating) else None


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


def _image_model(shape, denoised, sample, sigma: float | None, want_sigma: bool, *, alternative: bool = False):
    """Suggested thresholds, NMC grey value and blur of the image, from a central block.

    The block (at most 128 voxels a side, of the denoised volume) is
    thresholded by three-class Otsu of ``sample``; :func:`phase_references`
    gives the pure grey values, whose midpoints are the suggested
    thresholds, and (with ``want_sigma`` and ``sigma`` None)
    :func:`estimate_pv_sigma` the blur.  None of it depends on the
    thresholds a user picks, so a full run and a preview share it.

    With ``alternative``, also the thresholds of the "NMC first" reading
    (:func:`_otsu_nmc_first` as the first segmentation, the same midpoints),
    returned only when they put at least :data:`READING_GAP` more or less of
    ``sample`` in NMC than the suggested ones (else None).

    Returns
    -------
    suggested : (float, float)
    i_nmc : float
    sigma : float or None
    alternative : (float, float) or None
    """
    otsu = _otsu(sample)
    sz, sy, sx = _central_slices(shape, 128)
    blk = np.ascontiguousarray(denoised(sz.start, sz.stop)[:, sy, sx], dtype=np.float32)
    suggested, refs, ph_blk = _midpoint_reading(blk, otsu)
    i_nmc = float(refs[2])
    if not np.isfinite(i_nmc):  # no NMC in the block: the sample's
        above = sample[sample >= otsu[1]]
        i_nmc = float(np.median(above)) if above.size else float(sample.max())
    if want_sigma and sigma is None:
        sigma = estimate_pv_sigma(blk, ph_blk, references=refs) if (ph_blk == NMC).any() else 1.0
    alt = None
    if alternative:
        boot = _otsu_nmc_first(sample)
        if boot is not None:
            alt = _midpoint_reading(blk, boot)[0]
            share = lambda t: float(np.count_nonzero(sample >= t[1])) / max(sample.size, 1)  # noqa: E731
            if abs(share(alt) - share(suggested)) < READING_GAP:
                alt = None
    return suggested, i_nmc, (float(sigma) if sigma is not None else None), alt


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


def _otsu_nmc_first(sample: np.ndarray) -> tuple[float, float] | None:
    """Two-step Otsu: NMC | the rest, then pore | CBD within the rest (None when the rest is one value).

    Where NMC dominates the histogram, three-class Otsu splits the NMC peak in
    two; this reading does not.
    """
    from skimage.filters import threshold_otsu

    v = np.asarray(sample, np.float64)
    hi = float(threshold_otsu(v, nbins=256))
    rest = v[v < hi]
    if rest.size < 2 or rest.min() == rest.max():
        return None
    lo = float(threshold_otsu(rest, nbins=256))
    return (lo, hi) if lo < hi else None


def _pv_reach(sigma: float) -> int:
    """Slices along axis 0 that the partial-volume correction of one slice reads on either side.

    The rim growth reads NMC 6 face steps away (rim 1, ring 2..3, window 3);
    the spill is a Gaussian of the grown NMC, ``int(4 * sigma + 0.5)`` voxels
    wide (scipy's truncation).
    """
    return 6 + int(4.0 * float(sigma) + 0.5)


def _gaussian_weights(sigma: float, radius: int) -> np.ndarray:
    """The weights ``ndi.gaussian_filter1d`` correlates with (order 0)."""
    from scipy.ndimage import _filters

    return np.asarray(_filters._gaussian_kernel1d(sigma, 0, radius)[::-1], np.float64)


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
    suggested, i_nmc, sigma, alternative = _image_model(volume.shape, denoised, sample, params.pv_sigma,
                                                        params.partial_volume, alternative=True)
    source = "none"
    if params.partial_volume:
        source = "given" if params.pv_sigma is not None else "estimated"
    else:
        sigma = None
    return PreviewGlobals(sample=sample, suggested=suggested, pv_sigma=sigma, sigma_source=source,
                          denoise=(params.denoise, float(params.denoise_size)), i_nmc=i_nmc,
                          alternative=alternative)


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
    from dataclasses import replace

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
    reach = _pv_reach(params.pv_sigma) if params.partial_volume else 0
    a, b = max(0, index - island_depth - reach), min(n, index + island_depth + reach + 1)
    moved = np.moveaxis(volume, axis, 0)
    slab = np.ascontiguousarray(_denoiser(moved, params, _nan_fill(volume))(a, b), dtype=np.float32)
    slab.flags.writeable = False
    rows = (max(0, index - island_depth) - a, min(n, index + island_depth + 1) - a)
    return PreviewContext(slab=slab, centre=index - a, rows=rows, params=params, globals=globals, axis=axis,
                          index=index, sigma_source=source)


@numba.njit(cache=True, nogil=True)
def _spill_kernel(grown, code, g0, g1, r0, r1, w):
    """``ndi.gaussian_filter(float32(grown == code), sigma, mode="nearest")[r0:r1]`` bit for bit.

    ``w``: scipy's Gaussian weights (``_gaussian_kernel1d(sigma, 0, radius)``);
    the same sums as scipy's ``correlate1d`` (symmetric kernel, float64
    accumulation, float32 between the axes), reading only rows ``g0:g1``
    (clamped there, as "nearest" clamps at the array's ends).
    """
    n, ny, nx = grown.shape
    size1 = (w.size - 1) // 2
    fw0 = w[size1]
    out = np.empty((r1 - r0, ny, nx), np.float32)
    a = np.empty((ny, nx), np.float32)
    b = np.empty((ny, nx), np.float32)
    acc = np.empty(nx, np.float64)
    row = np.empty(nx + 2 * size1, np.float64)
    for z in range(r0, r1):
        # axis 0
        for y in range(ny):
            for x in range(nx):
                acc[x] = np.float64(grown[z, y, x] == code) * fw0
            for jj in range(-size1, 0):
                zl = min(max(z + jj, g0), g1 - 1)
                zr = min(max(z - jj, g0), g1 - 1)
                wj = w[size1 + jj]
                for x in range(nx):
                    acc[x] += (np.float64(grown[zl, y, x] == code) + np.float64(grown[zr, y, x] == code)) * wj
            for x in range(nx):
                a[y, x] = acc[x]
        # axis 1
        for y in range(ny):
            for x in range(nx):
                acc[x] = np.float64(a[y, x]) * fw0
            for jj in range(-size1, 0):
                yl = min(max(y + jj, 0), ny - 1)
                yr = min(max(y - jj, 0), ny - 1)
                wj = w[size1 + jj]
                for x in range(nx):
                    acc[x] += (np.float64(a[yl, x]) + np.float64(a[yr, x])) * wj
            for x in range(nx):
                b[y, x] = acc[x]
        # axis 2
        for y in range(ny):
            for x in range(nx):
                row[x + size1] = b[y, x]
            for k in range(size1):
                row[k] = b[y, 0]
                row[nx + size1 + k] = b[y, nx - 1]
            for x in range(nx):
                acc[x] = row[x + size1] * fw0
            for jj in range(-size1, 0):
                wj = w[size1 + jj]
                for x in range(nx):
                    acc[x] += (row[x + size1 + jj] + row[x + size1 - jj]) * wj
            for x in range(nx):
                out[z - r0, y, x] = acc[x]
    return out


@numba.njit(cache=True, nogil=True)
def _threshold_kernel(v, low, high, out):
    """:func:`threshold` of a float32 volume into ``out`` (codes 0, 1, 2 = pore, CBD, NMC; ``low < high``).

    Returns the number of NMC voxels.
    """
    fv = v.ravel()
    fo = out.ravel()
    n_nmc = 0
    for i in range(fv.size):
        a = np.uint8(fv[i] >= low)
        b = np.uint8(fv[i] >= high)
        fo[i] = a + b
        n_nmc += b
    return n_nmc


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
    ph = np.empty(d.shape, np.uint8)
    # float32 comparisons, as numpy compares a float32 volume with a Python float in threshold()
    assert (PORE, CBD, NMC) == (0, 1, 2)  # _threshold_kernel writes these codes
    n_nmc = _threshold_kernel(d, np.float32(low), np.float32(high), ph)
    if p.partial_volume and n_nmc:
        i_nmc, pv_low = context.globals.i_nmc, low
        sigma = float(p.pv_sigma)
        rs = int(4.0 * sigma + 0.5)
        g0, g1 = max(0, r0 - rs), min(d.shape[0], r1 + rs)
        grown = _grow_rim(d, ph, i_nmc, pv_low, rows=(g0, g1))
        weights = np.ascontiguousarray(_gaussian_weights(sigma, rs))
        spill = _spill_kernel(grown, np.uint8(NMC), g0, g1, r0, r1, weights)
        out = grown[r0:r1].copy()
        _unmix(d[r0:r1], out == NMC, spill, np.float32(i_nmc), np.float32(pv_low), out)
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
    dn_halo = _denoise_halo(params)
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
        suggested, i_nmc, est_sigma, _ = _image_model(volume.shape, denoised, sample, params.pv_sigma,
                                                      params.partial_volume)
        low = suggested[0] if low is None else low
        high = suggested[1] if high is None else high
        if not low < high:
            raise ValueError(f"low threshold ({low:g}) must be below high threshold ({high:g})")
    pv_sigma = est_sigma if params.partial_volume else params.pv_sigma

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
            ph, _ = _correct_partial_volume(d, ph, low, sigma=pv_sigma, i_nmc=i_nmc)
        phases[z0:z1] = ph[z0 - a : z0 - a + (z1 - z0)]
        del d, ph
    if params.min_island > 1:
        report(0.85, "removing small islands")
        _remove_small_islands_inplace(phases, params.min_island)
    report(1.0, "phases done")
    return SegmentResult(phases, replace(params, low=float(low), high=float(high), pv_sigma=pv_sigma))
