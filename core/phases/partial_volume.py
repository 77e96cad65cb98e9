"""The partial-volume model of the image: fit its blur, and undo the NMC spill.

Blur makes an NMC-pore edge pass through grey values between the two, which a
plain two-threshold segmentation reads as CBD: a false CBD shell around every
particle, which hides detachment.  The model: each voxel outside NMC is a
mixture ``I = s * I_nmc + (1 - s) * I_x`` where ``s`` is the share of the
point-spread function (Gaussian, ``sigma`` voxels) that falls on NMC.
:func:`estimate_pv_sigma` fits ``sigma`` to the image; :func:`correct_partial_volume`
solves for the intensity ``I_x`` of each voxel's own material and classifies
that as pore or CBD at the pore/CBD threshold.  Thick CBD keeps its
intensity; a blur halo falls back to pore.

A full run and a one-slice preview correct with one implementation,
:func:`_correct_rows`, which reads only the slices along axis 0 that the rows
it corrects depend on, so a slab or a slice equals the whole-volume result bit
for bit.
"""

from __future__ import annotations

import numba
import numpy as np

from .. import _kernels as K

from .._validate import check_phases, check_volume
from ..codes import CBD, NMC
from .threshold import _central_slices, _interior_references

__all__ = ["SIGMA_BOUNDS", "correct_partial_volume", "estimate_pv_sigma"]

#: Half-width (voxels) of the window in which :func:`_grow_rim` averages the "ring" voxels, the material
#: just outside the NMC: (2 h + 1)^3 voxels around each rim voxel.  A smaller window follows the material
#: at CBD edges more closely but shifts where the cancelling rim errors balance: on the demo electrodes'
#: training seeds 0-2, h = 2 gave median |detachment error| 0.019 / 0.028 / 0.028 against 0.022 / 0.029 /
#: 0.029 with h = 3, but a cycled-5C bias near -0.01 against about 0, and on the headline test's electrode
#: (cycled-5C 128^3) 0.0265 with bias -0.014 against 0.0229 and 0.000 (bench/RESULTS.md demo_detachment_h16d).
RIM_WINDOW_HALF = 3


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


def _correct_partial_volume(volume, phases, low, *, sigma=None, i_nmc=None, grow_nmc=True):
    """:func:`correct_partial_volume` of the whole volume, unvalidated; returns (phases, sigma used)."""
    if i_nmc is None:
        nmc = phases == NMC
        i_nmc = float(np.median(volume[nmc])) if nmc.any() else float(volume.max())
    if sigma is None:  # the fit reads the grown phases
        if grow_nmc:
            phases, grow_nmc = _grow_rim(volume, phases, i_nmc, low), False
        sigma = estimate_pv_sigma(volume, phases)
    return _correct_rows(volume, phases, low, sigma, i_nmc, grow_nmc=grow_nmc), float(sigma)


def _correct_rows(volume, phases, low: float, sigma: float, i_nmc: float, rows: tuple[int, int] | None = None, *,
                  grow_nmc: bool = True) -> np.ndarray:
    """The partial-volume correction of rows ``r0:r1`` along axis 0: the one implementation.

    Grows the NMC rim (:func:`_grow_rim`) in the rows that the spill of those
    rows reads, spreads the grown NMC by a Gaussian of ``sigma``
    (:func:`_spill_kernel`: ``ndi.gaussian_filter`` of the NMC mask, mode
    "nearest", bit for bit) and unmixes every other voxel of the rows
    (:func:`_unmix`).  The whole volume of :func:`correct_partial_volume`, a
    slab of :func:`~core.phases.segment_detailed` and the slab of a one-slice
    preview (:func:`~core.phases.preview_from`) are all corrected here; rows
    whose :func:`_reach` lies inside the arrays agree bit for bit whichever
    of them they came from.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        The (denoised) greyscale ``phases`` were thresholded from.
    phases : (Z, Y, X) uint8
        Thresholded phases (:func:`~core.phases.threshold`).
    low : float
        Pore/CBD threshold, in grey values.
    sigma : float
        Blur (voxels).
    i_nmc : float
        Grey value of NMC.
    rows : (int, int) or None
        The rows to correct; None: all.
    grow_nmc : bool
        Grow the NMC rim first (see :func:`correct_partial_volume`).

    Returns
    -------
    phases : (r1 - r0, Y, X) ndarray
        New array, the dtype of ``phases``.
    """
    n = phases.shape[0]
    r0, r1 = rows if rows is not None else (0, n)
    radius = _spill_radius(sigma)
    g0, g1 = max(0, r0 - radius), min(n, r1 + radius)
    grown = _grow_rim(volume, phases, i_nmc, low, rows=(g0, g1)) if grow_nmc else phases
    spill = _spill_kernel(grown, np.uint8(NMC), g0, g1, r0, r1, _gaussian_weights(sigma, radius))
    out = grown[r0:r1].copy()
    _unmix(volume[r0:r1], out == NMC, spill, np.float32(i_nmc), np.float32(low), out)
    return out


def _spill_radius(sigma: float) -> int:
    """Half-width (voxels) of the spill's Gaussian: scipy's truncation at 4 sigma, ``int(4 * sigma + 0.5)``."""
    return int(4.0 * float(sigma) + 0.5)


def _reach(sigma: float) -> int:
    """Slices along axis 0 that the correction of one slice reads on either side.

    The rim growth reads NMC ``3 + RIM_WINDOW_HALF`` face steps away along
    axis 0 (ring voxels up to 3 steps from NMC, in a window
    :data:`RIM_WINDOW_HALF` rows either side); the spill is a Gaussian of the
    grown NMC, :func:`_spill_radius` wide.
    """
    return 3 + RIM_WINDOW_HALF + _spill_radius(sigma)


def _grow_rim(volume, phases, i_nmc, low, rows=None):
    """Grow NMC by one voxel where its rim is brighter than the local halfway value.

    The NMC surface lies where the grey value is halfway between NMC and the
    material just outside it.  That outside value is estimated, for each rim
    voxel (a non-NMC face neighbour of NMC), as the mean grey value of the
    "ring" voxels (2 to 3 face steps away from NMC) within a window of
    ``2 * RIM_WINDOW_HALF + 1`` voxels a side (:data:`RIM_WINDOW_HALF`).
    The window sums run along x and y as running sums over whole rows and
    along axis 0 as direct sums, so a voxel's value does not depend on where
    a slab of the volume starts along axis 0 (slabs and one-slice previews
    agree bit for bit with a whole-volume run).  Returns new phases; with
    ``rows=(lo, hi)`` only NMC in rows ``lo:hi`` along axis 0 grows (the
    other rows are left as they are).
    """
    out = phases.copy()
    lo, hi = rows if rows is not None else (0, phases.shape[0])
    v = np.ascontiguousarray(volume, dtype=np.float32)
    dist = _l1_distance4_on_cores(np.ascontiguousarray(phases), np.uint8(NMC))
    i_nmc, low, code = np.float64(i_nmc), np.float64(low), np.uint8(NMC)
    # row ranges on the cores (each with its own window sums: 3 planes either side are summed twice)
    h = RIM_WINDOW_HALF
    _on_cores(lambda a, b: _grow_rim_rows(v, dist, i_nmc, low, code, out, int(lo) + a, int(lo) + b, h),
              int(hi) - int(lo))
    return out


@numba.njit(cache=True, nogil=True)
def _grow_rim_kernel(v, ph, i_nmc, low, nmc_code, out, out_lo, out_hi, h):
    """:func:`_grow_rim`'s growth of rows ``out_lo:out_hi`` on one core (window half-width ``h``)."""
    _grow_rim_rows(v, _l1_distance4(ph, nmc_code), i_nmc, low, nmc_code, out, out_lo, out_hi, h)


@numba.njit(cache=True, nogil=True)
def _grow_rim_rows(v, dist, i_nmc, low, nmc_code, out, out_lo, out_hi, h):
    """Rows ``out_lo:out_hi`` of :func:`_grow_rim` from the capped NMC distance ``dist`` (:func:`_l1_distance4`).

    ``h``: half-width of the window (1..3).  A row reads ``dist`` and ``v``
    within ``h`` rows of it and writes ``out`` in that row only, so row
    ranges can be grown by different threads.
    """
    nz, ny, nx = v.shape
    # window sums across axes 1 and 2 of 8 planes at a time (plane p in slot p % 8)
    cnt = np.empty((8, ny, nx), np.uint16)
    tot = np.empty((8, ny, nx), np.float32)
    bufs = _ring_sum_buffers(ny, nx)
    done = max(0, out_lo - h)  # next plane to sum
    for z in range(out_lo, out_hi):
        z0, z1 = max(0, z - h), min(nz, z + h + 1)
        while done < z1:
            _ring_sums_plane(dist, v, done, cnt[done % 8], tot[done % 8], bufs, h)
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
    backward sweeps along x, then y (:func:`_l1_planes`), then axis 0
    (:func:`_l1_axis0`) give it exactly.
    """
    nz, ny, nx = ph.shape
    dist = np.empty((nz, ny, nx), np.uint8)
    _l1_planes(ph, nmc_code, dist, 0, nz)
    _l1_axis0(dist, 0, ny)
    return dist


def _l1_distance4_on_cores(ph, nmc_code):
    """:func:`_l1_distance4` with each sweep's independent parts split between the cores (:func:`_on_cores`)."""
    nz, ny, nx = ph.shape
    dist = np.empty((nz, ny, nx), np.uint8)
    _on_cores(lambda z0, z1: _l1_planes(ph, nmc_code, dist, z0, z1), nz)
    _on_cores(lambda y0, y1: _l1_axis0(dist, y0, y1), ny)
    return dist


@numba.njit(cache=True, nogil=True)
def _l1_planes(ph, nmc_code, dist, z0, z1):
    """The sweeps along x and y of :func:`_l1_distance4` in planes ``z0:z1``."""
    nz, ny, nx = ph.shape
    one, cap = np.uint8(1), np.uint8(4)
    for z in range(z0, z1):
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


@numba.njit(cache=True, nogil=True)
def _l1_axis0(dist, y0, y1):
    """The sweeps along axis 0 of :func:`_l1_distance4` in rows ``y0:y1`` of every plane."""
    nz, ny, nx = dist.shape
    one = np.uint8(1)
    for z in range(1, nz):
        for y in range(y0, y1):
            for x in range(nx):
                dist[z, y, x] = min(dist[z, y, x], dist[z - 1, y, x] + one)
    for z in range(nz - 2, -1, -1):
        for y in range(y0, y1):
            for x in range(nx):
                dist[z, y, x] = min(dist[z, y, x], dist[z + 1, y, x] + one)


@numba.njit(cache=True, nogil=True)
def _ring_sum_buffers(ny, nx):
    return (np.zeros(nx + 7, np.int32), np.zeros(nx + 7, np.float64), np.zeros(nx + 7, np.int32),
            np.zeros(nx + 7, np.float64), np.zeros((ny + 7, nx), np.int32), np.zeros((ny + 7, nx), np.float64),
            np.zeros(nx, np.int32), np.zeros(nx, np.float64))


@numba.njit(cache=True, nogil=True)
def _ring_sums_plane(dist, v, z, cnt, tot, bufs, h):
    """Count and grey sum of the ring voxels (distance 2..3) in the (2 h + 1)^2 windows of plane ``z``.

    Prefix sums along each whole row, then running sums along each whole
    column (float64, stored as float32), so a plane's values do not depend
    on the other planes.  ``bufs`` (:func:`_ring_sum_buffers`) hold room for
    ``h`` up to 3; their padding stays 0.
    """
    rowc, rowt, prec, pret, pc, pt, accc, acct = bufs
    ny, nx = cnt.shape
    w = 2 * h
    for y in range(ny):
        for x in range(nx):
            d = dist[z, y, x]
            ring = d == 2 or d == 3
            rowc[x + h] = 1 if ring else 0
            rowt[x + h] = v[z, y, x] if ring else 0.0
        c = 0
        t = 0.0
        for x in range(nx + w):
            c += rowc[x]
            t += rowt[x]
            prec[x] = c
            pret[x] = t
        for x in range(nx):
            pc[y + h, x] = prec[x + w] - (prec[x - 1] if x > 0 else 0)
            pt[y + h, x] = np.float32(pret[x + w] - (pret[x - 1] if x > 0 else 0.0))
    accc[:] = 0
    acct[:] = 0.0
    for k in range(w):
        for x in range(nx):
            accc[x] += pc[k, x]
            acct[x] += pt[k, x]
    for y in range(ny):
        for x in range(nx):
            accc[x] += pc[y + w, x]
            acct[x] += pt[y + w, x]
            cnt[y, x] = accc[x]
            tot[y, x] = acct[x]
            accc[x] -= pc[y, x]
            acct[x] -= pt[y, x]


def _gaussian_weights(sigma: float, radius: int) -> np.ndarray:
    """Normalised Gaussian weights at ``-radius..radius`` (float64), in the arithmetic of ``ndi.gaussian_filter1d``.

    Written out here rather than taken from scipy's private helper; that the
    spill equals ``ndi.gaussian_filter`` bit for bit is tested.
    """
    sigma = float(sigma)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x ** 2)
    return phi / phi.sum()


def _spill_kernel(grown, code, g0, g1, r0, r1, w):
    """``ndi.gaussian_filter(float32(grown == code), sigma, mode="nearest")[r0:r1]`` bit for bit.

    ``w``: the Gaussian weights (:func:`_gaussian_weights`, symmetric);
    the same sums as scipy's ``correlate1d`` (symmetric kernel, float64
    accumulation, float32 between the axes), reading only rows ``g0:g1``
    (clamped there, as "nearest" clamps at the array's ends).  Each output
    plane depends on ``grown`` only, so the planes are split between the
    cores (:func:`_on_cores`; same operations per value whatever the thread).
    """
    ny, nx = grown.shape[1:]
    out = np.empty((r1 - r0, ny, nx), np.float32)
    _on_cores(lambda k0, k1: _spill_planes(grown, code, g0, g1, r0, w, out, k0, k1), r1 - r0)
    return out


def _on_cores(work, n: int) -> None:
    """``work(k0, k1)`` over ``[0, n)`` split between the cores: :func:`core._kernels.run_on_cores`."""
    K.run_on_cores(work, n)


@numba.njit(cache=True, inline="always")
def _edge(i, n, reflect):
    """Index ``i`` brought into ``[0, n)`` as scipy.ndimage's mode "nearest" (clamped) or, with ``reflect``, mode
    "reflect" (d c b a | a b c d | d c b a, mirrored as often as needed)."""
    if 0 <= i < n:
        return i
    if not reflect:
        return 0 if i < 0 else n - 1
    m = 2 * n
    i = i % m
    return i if i < n else m - 1 - i


@numba.njit(cache=True, nogil=True)
def _x_pass(b, w, row, acc, out, reflect=False):
    """The axis-2 (last-axis) pass of the separable Gaussians here: ``b`` (Y, X) -> ``out`` (Y, X), mode "nearest"
    (or "reflect").

    ``row`` (X + 2 r) and ``acc`` (X) are scratch rows; the sums run in the order of ``ndi.gaussian_filter1d``.
    """
    ny, nx = b.shape
    size1 = (w.size - 1) // 2
    fw0 = w[size1]
    for y in range(ny):
        for x in range(nx):
            row[x + size1] = b[y, x]
        for k in range(size1):
            row[k] = b[y, _edge(k - size1, nx, reflect)]
            row[nx + size1 + k] = b[y, _edge(nx + k, nx, reflect)]
        for x in range(nx):
            acc[x] = row[x + size1] * fw0
        for jj in range(-size1, 0):
            wj = w[size1 + jj]
            for x in range(nx):
                acc[x] += (row[x + size1 + jj] + row[x + size1 - jj]) * wj
        for x in range(nx):
            out[y, x] = acc[x]


@numba.njit(cache=True, nogil=True)
def _spill_planes(grown, code, g0, g1, r0, w, out, k0, k1):
    """Planes ``k0:k1`` of :func:`_spill_kernel`'s ``out`` (rows ``r0 + k0 : r0 + k1`` of ``grown``)."""
    n, ny, nx = grown.shape
    size1 = (w.size - 1) // 2
    fw0 = w[size1]
    a = np.empty((ny, nx), np.float32)
    b = np.empty((ny, nx), np.float32)
    acc = np.empty(nx, np.float64)
    row = np.empty(nx + 2 * size1, np.float64)
    for kz in range(k0, k1):
        z = r0 + kz
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
            _axis1_row(a, y, w, acc)
            for x in range(nx):
                b[y, x] = acc[x]
        # axis 2
        _x_pass(b, w, row, acc, out[z - r0])


def _gaussian_nearest(img, w):
    """``ndi.gaussian_filter(img, sigma, mode="nearest")`` of a float32 volume bit for bit, on all cores.

    ``w``: the Gaussian weights (:func:`_gaussian_weights` of ``sigma`` and
    :func:`_spill_radius`).  The sums of scipy's ``correlate1d`` (symmetric
    kernel, float64 accumulation, float32 between the axes, axes in order
    0, 1, 2) as in :func:`_spill_kernel`; each pass's planes are split
    between the cores (:func:`_on_cores`).  About three times faster than
    scipy on one core.
    """
    img = np.ascontiguousarray(img, dtype=np.float32)
    t = np.empty(img.shape, np.float32)
    out = np.empty(img.shape, np.float32)
    _on_cores(lambda z0, z1: _gaussian_axis0(img, w, t, z0, z1), img.shape[0])
    _on_cores(lambda z0, z1: _gaussian_axes12(t, w, out, z0, z1), img.shape[0])
    return out


def _band_rows(band: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The voxels of a (Z, Y, X) mask by image row: ``rows`` (Z·Y + 1, int64) bounds row ``z·Y + y``'s run of
    ``xs`` (their x, int64); in C order, so ``img[band]`` is the values at them in that order."""
    nz, ny, nx = band.shape
    flat = np.flatnonzero(band)
    counts = np.bincount(flat // nx, minlength=nz * ny)
    rows = np.zeros(nz * ny + 1, np.int64)
    np.cumsum(counts, out=rows[1:])
    return rows, (flat % nx).astype(np.int64)


def _gaussian_nearest_at(img, w, rows, xs):
    """``_gaussian_nearest(img, w)[band]`` bit for bit, with the band given as :func:`_band_rows` of it.

    The same sums, but the axis-1 pass only on the rows that hold band voxels
    and the axis-2 pass only at the band voxels (the cost of the blur fit
    reads nothing else): about half the work of the whole filter at the
    demo electrodes' band.
    """
    img = np.ascontiguousarray(img, dtype=np.float32)
    t = np.empty(img.shape, np.float32)
    out = np.empty(xs.size, np.float32)
    _on_cores(lambda z0, z1: _gaussian_axis0(img, w, t, z0, z1), img.shape[0])
    _on_cores(lambda z0, z1: _gaussian_axes12_at(t, w, rows, xs, out, z0, z1), img.shape[0])
    return out


@numba.njit(cache=True, nogil=True)
def _gaussian_axes12_at(t, w, rows, xs, out, z0, z1):
    """Planes ``z0:z1`` of :func:`_gaussian_nearest_at`'s axis-1 and axis-2 passes (``t`` -> ``out``)."""
    nz, ny, nx = t.shape
    size1 = (w.size - 1) // 2
    fw0 = w[size1]
    acc = np.empty(nx, np.float64)
    row = np.empty(nx + 2 * size1, np.float64)
    for z in range(z0, z1):
        for y in range(ny):
            p0, p1 = rows[z * ny + y], rows[z * ny + y + 1]
            if p0 == p1:
                continue
            _axis1_row(t[z], y, w, acc)  # float32 between the axes, as _gaussian_axes12
            for x in range(nx):
                row[x + size1] = np.float64(np.float32(acc[x]))
            for k in range(size1):
                row[k] = row[size1]
                row[nx + size1 + k] = row[nx + size1 - 1]
            # axis 2 at the band voxels only, the sums of _x_pass
            for p in range(p0, p1):
                x = xs[p]
                a = row[x + size1] * fw0
                for jj in range(-size1, 0):
                    a += (row[x + size1 + jj] + row[x + size1 - jj]) * w[size1 + jj]
                out[p] = a


@numba.njit(cache=True, nogil=True)
def _gaussian_axis0(img, w, t, z0, z1):
    """Planes ``z0:z1`` of the axis-0 pass of :func:`_gaussian_nearest` into ``t``."""
    nz, ny, nx = img.shape
    size1 = (w.size - 1) // 2
    fw0 = w[size1]
    acc = np.empty(nx, np.float64)
    for z in range(z0, z1):
        for y in range(ny):
            for x in range(nx):
                acc[x] = np.float64(img[z, y, x]) * fw0
            for jj in range(-size1, 0):
                zl = min(max(z + jj, 0), nz - 1)
                zr = min(max(z - jj, 0), nz - 1)
                wj = w[size1 + jj]
                for x in range(nx):
                    acc[x] += (np.float64(img[zl, y, x]) + np.float64(img[zr, y, x])) * wj
            for x in range(nx):
                t[z, y, x] = acc[x]


@numba.njit(cache=True, nogil=True)
def _gaussian_axes12(t, w, out, z0, z1):
    """Planes ``z0:z1`` of the axis-1 and axis-2 passes of :func:`_gaussian_nearest` (``t`` -> ``out``)."""
    nz, ny, nx = t.shape
    size1 = (w.size - 1) // 2
    acc = np.empty(nx, np.float64)
    b = np.empty((ny, nx), np.float32)
    row = np.empty(nx + 2 * size1, np.float64)
    for z in range(z0, z1):
        for y in range(ny):
            _axis1_row(t[z], y, w, acc)
            for x in range(nx):
                b[y, x] = acc[x]
        _x_pass(b, w, row, acc, out[z])


@numba.njit(cache=True, nogil=True)
def _axis1_row(plane, y, w, acc, reflect=False):
    """The axis-1 pass of the separable Gaussians here at row ``y`` of a ``(Y, X)`` plane, mode "nearest" (or
    "reflect"), into ``acc`` (float64, X): the sums of ``ndi.gaussian_filter1d`` in its order."""
    ny, nx = plane.shape
    size1 = (w.size - 1) // 2
    fw0 = w[size1]
    for x in range(nx):
        acc[x] = np.float64(plane[y, x]) * fw0
    for jj in range(-size1, 0):
        yl = _edge(y + jj, ny, reflect)
        yr = _edge(y - jj, ny, reflect)
        wj = w[size1 + jj]
        for x in range(nx):
            acc[x] += (np.float64(plane[yl, x]) + np.float64(plane[yr, x])) * wj


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


def _within2(ph, code) -> np.ndarray:
    """``ndi.binary_dilation(ph == code, face structure, iterations=2)``: within two face steps (L1 <= 2) of ``code``.

    From the capped L1 distance (:func:`_l1_distance4_on_cores`), one numba
    pass on all cores instead of scipy's iterated binary morphology.
    """
    return _l1_distance4_on_cores(ph, np.uint8(code)) <= 2


def _eroded2(ph, code) -> np.ndarray:
    """``ndi.binary_erosion(ph == code, face structure, iterations=2)`` (border value 0).

    The voxels more than two face steps from every other voxel and from
    outside the volume (which scipy's erosion treats as background).
    """
    other = np.ascontiguousarray(ph != code).view(np.uint8)
    out = _l1_distance4_on_cores(other, np.uint8(1)) > 2
    for axis in range(3):
        sl = [slice(None)] * 3
        sl[axis] = slice(0, 2)
        out[tuple(sl)] = False
        sl[axis] = slice(-2, None)
        out[tuple(sl)] = False
    return out


def _fit_blur(v, ph, lut, bracket):
    """Sigma minimising the squared model error in the band around NMC (None without a band).

    The band is the voxels within two face steps of the NMC surface, away
    from CBD (all of them when fewer than 1000 are away from CBD).

    A coarse scan of :data:`SIGMA_BOUNDS` (or none, inside ``bracket``),
    then golden-section search to 0.005 voxel.
    """
    ph = np.ascontiguousarray(ph, dtype=np.uint8)
    band = _within2(ph, NMC) & ~_eroded2(ph, NMC)
    # NMC-pore edges only, where there are enough: thin CBD is the phase map's worst guess
    # under blur, and fitting it pulled the estimate low (0.92 for 1.0, 1.07 for 1.25 voxel)
    clear = band & ~_within2(ph, CBD)
    if np.count_nonzero(clear) >= 1000:
        band = clear
    if not band.any():
        return None
    img = lut[ph]
    target = v[band]
    rows, xs = _band_rows(band)
    del band

    def cost(sigma):
        # ndi.gaussian_filter(img, sigma, mode="nearest")[band] bit for bit, on both cores
        blurred = _gaussian_nearest_at(img, _gaussian_weights(sigma, _spill_radius(sigma)), rows, xs)
        return float(np.mean((blurred - target) ** 2))

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


def _image_sigma(given: float | None, model) -> float:
    """The blur a run corrects with: ``given``, else fitted to the image model's central block.

    ``model``: the :class:`~core.phases.threshold._ImageModel` of the image;
    the fit (:func:`estimate_pv_sigma`) starts from its Otsu phases and pure
    grey values, so it does not depend on the thresholds a user picks (1.0
    where the block holds no NMC).
    """
    if given is not None:
        return float(given)
    if not (model.block_phases == NMC).any():
        return 1.0
    return float(estimate_pv_sigma(model.block, model.block_phases, references=model.references))
