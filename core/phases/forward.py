"""Refine thresholded phases against a forward model of the blurred, noisy image.

A threshold reads each voxel's grey value on its own, so blur biases it where
phases meet: the NMC rim next to pore is dimmed into the CBD range, the CBD
in a neck between two particles is brightened into the NMC range, a thin cap
of NMC is dimmed into CBD, a one-voxel detachment gap between a particle and
its CBD fills in.  Here the phases ``P`` are instead scored by how well they
explain the whole image: the image model is ``G * mu[P] + noise`` (``mu`` the
pure grey values of pore, CBD and NMC, ``G`` a Gaussian of the measured blur,
the noise white with the measured standard deviation ``s``), and the energy

    E(P) = ||I - G * mu[P]||^2 / (2 s^2) + beta * sum over face-neighbour pairs of PAIR_COST[P(a), P(b)]

is lowered by iterated conditional modes: voxel by voxel in raster order, a
voxel on a phase boundary takes the phase of one of its face neighbours where
that lowers ``E`` (the lowest such), for :data:`SWEEPS` sweeps.  The data term
of a change at voxel ``v`` by ``d = mu[new] - mu[old]`` is
``(-2 d R(v) + d^2 K(v, v)) / (2 s^2)`` with ``R = G * (I - G * mu[P])``; ``R``
is kept up to date after each change: ``d K(., v)`` is subtracted (``K = G * G``, taken as the sampled
Gaussian of ``sqrt(2)`` times the blur, cut at 2.5 of its sigma, mirrored at the faces as scipy's
``mode="reflect"``), one axis at a time as late as the raster order allows (:func:`_icm`), so a sweep costs
a few passes over the volume.  NMC that the sweeps leave cut off from all NMC of
the input (specks) takes its input phase again: the refinement moves
surfaces, it does not make particles.

**The pair cost** (:data:`PAIR_COST`) counts only the NMC surface: a face
between NMC and pore or CBD costs 1, one between pore and CBD nothing.  The
prior then smooths the particles' surfaces against the noise (one voxel's
evidence after the blur is about as large as the noise's: at blur 1 voxel and
noise 0.09 of the pore-NMC contrast the data term of a whole-contrast change
is about 1.3, its noise about 1.6) but costs nothing for a thin pore gap
between a particle and its CBD, nor for a thin CBD coat between a particle
and pore: both cost one NMC face, as the plain contact does.  A cost on every
unlike pair closes such gaps (on the demo electrodes imaged at a blur of 1.0
and 1.2 voxel it made the median |detachment error| of the cycled electrodes
worse than no refinement: 0.18-0.43 against 0.12-0.39).

**Chosen on** (scratch runs of session 15, 128³ sphere packings of
:func:`core.synth.make_sphere_packing` with the training seeds 3-4, median
radius 7 and 14, blur 0.9 and 1.2, noise 0.05 and 0.10: 16 volumes; and the
three demo electrodes imaged at a blur of 1.0 and 1.2 voxel, seeds 0-1: 12
volumes).  Means over the packings / the demo volumes:

=======================  ===============  ================  ===================
                         F1@0.5           median |det err|  median det err
=======================  ===============  ================  ===================
no refinement            0.920 / 0.900    0.106 / 0.166     +0.028 / -0.163
beta 1.5 (the default)   0.931 / 0.924    0.094 / 0.102     +0.076 / -0.076
beta 1, 2, 3             0.928-0.931 /    0.093-0.096 /
                         0.909-0.928      0.094-0.117
pore-CBD cost 0.1-0.5    0.930-0.932 /    0.112-0.148 /
(beta 0.5-2)             0.864-0.925      0.068-0.097
=======================  ===============  ================  ===================

On the packings the refinement moves the signed error up (their CBD lies
only in the necks; without it the sign follows the blur: +0.19 at 0.9, -0.02
to -0.13 at 1.2); on the blurred demo electrodes, whose particles are coated
and detach by thin gaps, it halves the underestimate.

The pipeline refines only where the blur read on the scan is at least
:data:`core.seeding.AUTO_BLUR` (``AnalysisParams(refine="auto")``, the
reading of ``seeding="auto"``).  On the demo electrodes as shipped (blur
0.75 voxel, where the partial-volume correction of
:mod:`core.phases.partial_volume` is validated) it would raise the median
|detachment error| (seed 100, this pair cost with beta 2: 0.031-0.038
against 0.022-0.031).

**Noisy scans with less blur: the NMC surfaces only** (``moves="nmc"``,
session 16).  Below that blur, "auto" refines where the noise reads at least
:data:`AUTO_NOISE` (0.065) of the pore-NMC contrast, and then only into and
out of NMC: pore and CBD keep the partial-volume correction's reading (with
every move, the pristine demo's median |detachment error| went from 0.026 to
0.08 at noise 0.10).  Chosen on the training seeds (scratch runs): the demo
electrodes as shipped (blur 0.75) but imaged with more noise, seeds 0-1, means over the three
electrodes; and 128³ sphere packings, blur 0.6 and 0.8, radius 7 and 14,
seeds 3-4 (before the two-sweep round trips were restored, which are rare):

========  ==========================  ==========================  ======================
noise     demos F1@0.5 off -> nmc     demos median |det err|      packings F1 off -> nmc
========  ==========================  ==========================  ======================
0.048     0.9758 -> 0.9743            0.0271 -> 0.0278            (0.05) 0.9526 -> 0.9643
0.06      0.9706 -> 0.9754            0.0285 -> 0.0290
0.075     0.9687 -> 0.9724            0.0326 -> 0.0317            0.9377 -> 0.9543
0.10      0.9537 -> 0.9694            0.0395 -> 0.0380            0.9320 -> 0.9517
========  ==========================  ==========================  ======================

The demos gain F1 from 0.06 and detachment from about 0.065 (between the
two rows); as shipped (0.048) they would lose a little of both, so the
rule leaves them, and the 512³ speed benchmark's input, as they are.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy import ndimage as ndi

from .. import _kernels as K
from .._validate import check_phases, check_volume
from ..codes import NMC
from .partial_volume import _axis1_row, _edge, _x_pass

__all__ = ["AUTO_NOISE", "BETA", "MOVES", "SWEEPS", "refine_phases", "forward_energy"]

#: Potts weight per pair of unlike face neighbours, in units of the data term.
BETA = 1.5
#: Cost of a pair of face neighbours by their phases (pore, CBD, NMC), times ``beta``.
PAIR_COST = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
#: Raster sweeps of iterated conditional modes.
SWEEPS = 2
#: The Gaussians are cut at this many standard deviations.
_TRUNCATE = 2.5
# (3.0 until session 25.  Cut at 2.5 the windows of a change hold 9³ voxels instead of 11³ at blur 1 voxel, and the
# 512³ packing of issue 15's table refines in 10.6 s instead of 14.5 s; on the protocol the refinement was chosen
# on (the 16 packings and 12 blurred demo volumes listed above) F1@0.5 / median |detachment error| moved from
# 0.9484 / 0.0933 to 0.9474 / 0.0928 on the packings and from 0.9265 / 0.1024 to 0.9274 / 0.1034 on the demos.)
#: Which changes of phase a voxel may make: "all" (to the phase of any face neighbour), or "nmc" (only into or
#: out of NMC: pore and CBD are never swapped for each other, the partial-volume correction's reading of them
#: stands).
MOVES = {"all": np.ones((3, 3), np.bool_),
         "nmc": np.array([[1, 0, 1], [0, 1, 1], [1, 1, 1]], np.bool_)}
#: ``AnalysisParams(refine="auto")`` refines the NMC surfaces (``moves="nmc"``) of a scan whose blur reads below
#: :data:`core.seeding.AUTO_BLUR` where its noise reads at least this share of the pore-NMC contrast
#: (:func:`core.seeding.estimate_relative_noise`).
AUTO_NOISE = 0.065


def _kernel(sigma: float) -> np.ndarray:
    """Sampled, normalised 1D Gaussian of ``sigma`` voxels cut at :data:`_TRUNCATE` sigma (float64)."""
    h = max(int(np.ceil(_TRUNCATE * sigma)), 1)
    x = np.arange(-h, h + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _residual(volume: np.ndarray, phases: np.ndarray, mu: np.ndarray, k: np.ndarray, k2: np.ndarray) -> np.ndarray:
    """``R = G * volume - K * mu[phases]`` (float32): ``G``, ``K`` the separable kernels ``k``, ``k2`` (mirrored faces).

    Plane by plane in numba (:func:`_residual_planes`), the two halves of the planes on two cores where there are:
    besides ``R`` only a few planes are held.  The values are those of ``ndi.correlate1d(..., output=np.float32)``
    with the taps in float32 along axes 0, 1 and 2 in a row over the whole volume (``mode="reflect"``), bit for
    bit: each pass sums in float64 in scipy's order for a symmetric kernel and rounds to float32
    (``tests/core/test_forward.py`` checks it); three times faster than those calls (0.45 -> 0.16 s at 256³).
    """
    if volume.dtype == np.bool_:
        volume = volume.view(np.uint8)
    elif volume.dtype.kind == "c":
        raise TypeError(f"volume must be real-valued, got dtype {volume.dtype}")
    elif volume.dtype.itemsize < 4 and volume.dtype.kind == "f":
        volume = volume.astype(np.float32)  # float16: exact, and a type numba takes
    phases = np.asarray(phases)
    if phases.dtype != np.uint8:
        phases = phases.astype(np.uint8)  # codes 0-2 (checked by the caller)
    volume = np.asarray(volume)
    R = np.empty(volume.shape, np.float32)
    kk = k.astype(np.float32).astype(np.float64)  # scipy takes the float32 taps in float64
    kk2 = k2.astype(np.float32).astype(np.float64)
    mu32 = mu.astype(np.float32)
    nz = volume.shape[0]
    if K.cores() > 1 and nz >= 2:
        K.run_side_by_side(lambda: _residual_planes(volume, phases, mu32, kk, kk2, R, 0, nz // 2),
                           lambda: _residual_planes(volume, phases, mu32, kk, kk2, R, nz // 2, nz))
    else:
        _residual_planes(volume, phases, mu32, kk, kk2, R, 0, nz)
    return R


@numba.njit(cache=True, nogil=True, inline="always")
def _value(row, x, mu):
    """``row[x]`` as float64, or ``mu[row[x]]`` where ``mu`` (float32 values of codes) is given (numba compiles the
    two cases apart: ``mu is None`` is decided by its type)."""
    if mu is None:
        return np.float64(row[x])
    return np.float64(mu[row[x]])


@numba.njit(cache=True, nogil=True)
def _z_pass(src, z, w, acc, t, mu=None):
    """``t`` (Y, X float32) = plane ``z`` of ``src`` (Z, Y, X) correlated along z with the symmetric taps ``w``
    (float64), mirrored at the faces: summed in float64 as scipy's ``correlate1d`` does for a symmetric kernel (the
    centre tap, then the pairs from the outermost in), rounded to float32 (``acc``: (X,) float64 scratch).  With
    ``mu``: of ``mu[src]`` (``src`` codes, ``mu`` float32), without making that volume."""
    Z, Y, X = src.shape
    h = (w.size - 1) // 2
    for y in range(Y):
        c = src[z, y]
        for x in range(X):
            acc[x] = _value(c, x, mu) * w[h]
        for j in range(-h, 0):
            a = src[_edge(z + j, Z, True), y]
            b = src[_edge(z - j, Z, True), y]
            wj = w[h + j]
            for x in range(X):
                acc[x] += (_value(a, x, mu) + _value(b, x, mu)) * wj
        for x in range(X):
            t[y, x] = np.float32(acc[x])


@numba.njit(cache=True, nogil=True)
def _residual_planes(volume, phases, mu32, k, k2, R, z0, z1):
    """Planes ``z0 <= z < z1`` of :func:`_residual`'s ``R`` (in place): ``G * volume - K * mu32[phases]``.

    The passes along z here; along y and x those of :mod:`core.phases.partial_volume` (mode "reflect")."""
    Z, Y, X = volume.shape
    t = np.empty((Y, X), np.float32)
    u = np.empty((Y, X), np.float32)
    gi = np.empty((Y, X), np.float32)
    km = np.empty((Y, X), np.float32)
    acc = np.empty(X, np.float64)
    row = np.empty(X + 2 * ((max(k.size, k2.size) - 1) // 2), np.float64)
    for z in range(z0, z1):
        _z_pass(volume, z, k, acc, t)
        _yx_passes(t, k, acc, row, u, gi)
        _z_pass(phases, z, k2, acc, t, mu32)
        _yx_passes(t, k2, acc, row, u, km)
        for y in range(Y):
            for x in range(X):
                R[z, y, x] = gi[y, x] - km[y, x]


@numba.njit(cache=True, nogil=True)
def _yx_passes(t, w, acc, row, u, out):
    """``out`` = the plane ``t`` (Y, X float32) correlated with ``w`` along y (into ``u``, float32) and then along x,
    mirrored at the faces, as scipy's ``correlate1d`` sums them (:func:`core.phases.partial_volume._axis1_row`,
    :func:`~core.phases.partial_volume._x_pass`)."""
    for y in range(t.shape[0]):
        _axis1_row(t, y, w, acc, True)
        for x in range(t.shape[1]):
            u[y, x] = acc[x]
    _x_pass(u, w, row, acc, out, True)


def forward_energy(volume: np.ndarray, phases: np.ndarray, *, blur: float, noise: float,
                   references, beta: float = BETA) -> float:
    """The energy ``E(P)`` of the module docstring, up to a constant that does not depend on the phases.

    Computed with whole-volume filters (for tests and diagnostics; :func:`refine_phases` updates it locally).
    ``||I - G mu[P]||^2 = mu[P]^T K mu[P] - 2 mu[P]^T (G I) + const`` with ``K = G G`` (the Gaussian of
    ``sqrt(2)`` times the blur, as :func:`refine_phases` takes it).

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
    phases : (Z, Y, X) uint8
    blur : float
        Gaussian sigma of the image, voxels (> 0).
    noise : float
        Standard deviation of the noise, grey units (> 0).
    references : (pore, cbd, nmc) floats
        Pure grey values.
    beta : float

    Returns
    -------
    float
    """
    mu = np.asarray(references, np.float64)
    k = _kernel(blur)
    k2 = _kernel(blur * np.sqrt(2.0))
    m = mu[phases].astype(np.float64)
    a = np.asarray(volume, np.float32)
    for axis in range(3):  # float32 passes, as the refinement's residual takes them
        a = ndi.correlate1d(a, k.astype(np.float32), axis=axis, mode="reflect", output=np.float32)
    a = a.astype(np.float64)
    km = m.copy()
    for axis in range(3):
        km = ndi.correlate1d(km, k2, axis=axis, mode="reflect")
    data = float((m * km).sum() - 2 * (m * a).sum()) / (2 * noise * noise)
    cost = np.asarray(PAIR_COST, np.float64)
    pairs = 0.0
    for ax in range(3):
        a = np.moveaxis(phases, ax, 0)
        pairs += float(cost[a[:-1], a[1:]].sum())
    return data + beta * pairs


@numba.njit(cache=True, nogil=True)
def _axis_weights(k2, h2, v, n, out):
    """Weights along one axis of ``K(., v)`` at ``w`` in ``[v - h2, v + h2]`` clipped to ``[0, n)``, mirrored
    images of ``v`` (scipy's ``reflect``: about -0.5 and n - 0.5) included; out[i] is for ``w = lo + i``."""
    if v >= h2 and v + h2 <= n - 1:  # no face within reach: the kernel itself (what the loop below sums to)
        for i in range(2 * h2 + 1):
            out[i] = k2[i]
        return v - h2, v + h2
    lo = max(v - h2, 0)
    hi = min(v + h2, n - 1)
    for i in range(hi - lo + 1):
        out[i] = 0.0
    period = 2 * n
    # images of v: v + t*period and -1 - v + t*period
    tmin = (lo - h2 - v) // period - 1
    tmax = (hi + h2 - v) // period + 1
    for t in range(tmin, tmax + 1):
        for img in (v + t * period, -1 - v + t * period):
            a = max(lo, img - h2)
            b = min(hi, img + h2)
            for w in range(a, b + 1):
                out[w - lo] += k2[w - img + h2]
    return lo, hi


@numba.njit(cache=True, nogil=True)
def _icm(P, R, mu, k2, inv2s2, cost, allowed, z0, z1):
    """One raster sweep of iterated conditional modes over the boundary voxels of ``P`` (uint8, in place) in the
    slices ``z0 <= z < z1``; ``R`` (float32) is ``G * (I - G * mu[P])`` on entry and is so again on return.  Reads
    ``P`` in ``[z0 - 1, z1]`` and writes ``R`` in ``[z0 - h2, z1 + h2)`` (``h2`` the half-width of ``k2``).  A voxel
    of phase ``p`` may take phase ``l`` only where ``allowed[p, l]``.  Returns (changes, summed energy change).

    Each row first flags its boundary voxels branch-free (a face neighbour of another phase, as the row stands);
    of a row's voxels only the left neighbour can change before the voxel's visit, so a voxel after a change is
    tested in full.  Voxels of one phase all round are skipped (70 % of the voxels of issue 15's packing).

    The changes reach ``R`` through the separable kernel one axis at a time, as late as the raster order allows:
    a change adds its x-weights to a row buffer ``B``; at the end of a row ``B`` goes into a plane buffer ``A``
    with the y-weights; at the end of a plane ``A`` is subtracted from the planes of ``R`` within reach with the
    z-weights.  A voxel's residual is then ``R - wz (A + wy B)`` (its plane's and its row's own weights), the
    value a window update of ``R`` after every change gives up to float32 rounding, at about 2 (2 h2 + 1) float
    operations a voxel a sweep instead of (2 h2 + 1)³ a change (a 9³ window at a blur of 1 voxel).
    """
    Z, Y, X = P.shape
    h2 = (k2.size - 1) // 2
    wz = np.empty(2 * h2 + 1)
    wy = np.empty(2 * h2 + 1)
    wx = np.empty(2 * h2 + 1)
    centre = k2[h2] * k2[h2] * k2[h2]
    A = np.zeros((Y, X), np.float32)  # the plane's changes so far, spread along y and x
    B = np.zeros(X, np.float32)  # the row's changes so far, spread along x
    total = 0.0
    nch = 0
    flag = np.zeros(X, np.uint8)
    for z in range(z0, z1):
        lo_z, hi_z = _axis_weights(k2, h2, z, Z, wz)
        self_z = wz[z - lo_z]
        plane_changed = False
        for y in range(Y):
            lo_y, hi_y = _axis_weights(k2, h2, y, Y, wy)
            self_y = wy[y - lo_y]
            f_z = np.float32(self_z)
            f_zy = np.float32(self_z * self_y)
            row_changed = False
            # boundary flags of the row as it stands (branch-free, vectorised); only the left neighbour of a voxel
            # can change before the voxel is visited, so a voxel after a change is tested in full
            row = P[z, y]
            for x in range(X):
                flag[x] = 0
            for x in range(1, X):
                flag[x] |= row[x] ^ row[x - 1]
            for x in range(X - 1):
                flag[x] |= row[x] ^ row[x + 1]
            if y > 0:
                o = P[z, y - 1]
                for x in range(X):
                    flag[x] |= row[x] ^ o[x]
            if y < Y - 1:
                o = P[z, y + 1]
                for x in range(X):
                    flag[x] |= row[x] ^ o[x]
            if z > 0:
                o = P[z - 1, y]
                for x in range(X):
                    flag[x] |= row[x] ^ o[x]
            if z < Z - 1:
                o = P[z + 1, y]
                for x in range(X):
                    flag[x] |= row[x] ^ o[x]
            prev_changed = False
            for x in range(X):
                if flag[x] == 0 and not prev_changed:
                    continue
                prev_changed = False
                p = row[x]
                c0 = 0
                c1 = 0
                c2 = 0
                if z > 0:
                    v = P[z - 1, y, x]
                    c0 += v == 0
                    c1 += v == 1
                    c2 += v == 2
                if z < Z - 1:
                    v = P[z + 1, y, x]
                    c0 += v == 0
                    c1 += v == 1
                    c2 += v == 2
                if y > 0:
                    v = P[z, y - 1, x]
                    c0 += v == 0
                    c1 += v == 1
                    c2 += v == 2
                if y < Y - 1:
                    v = P[z, y + 1, x]
                    c0 += v == 0
                    c1 += v == 1
                    c2 += v == 2
                if x > 0:
                    v = row[x - 1]
                    c0 += v == 0
                    c1 += v == 1
                    c2 += v == 2
                if x < X - 1:
                    v = row[x + 1]
                    c0 += v == 0
                    c1 += v == 1
                    c2 += v == 2
                cp = c0 if p == 0 else (c1 if p == 1 else c2)
                if c0 + c1 + c2 == cp:
                    continue
                r = R[z, y, x] - (f_z * A[y, x] + f_zy * B[x])
                lo_x = hi_x = 0
                best = 0.0
                best_l = p
                inner_x = x >= h2 and x + h2 < X
                self_w = centre if (inner_x and z >= h2 and z + h2 < Z and y >= h2 and y + h2 < Y) else -1.0
                weighed = False
                for l in range(3):
                    cl = c0 if l == 0 else (c1 if l == 1 else c2)
                    if l == p or cl == 0 or not allowed[p, l]:
                        continue
                    if self_w < 0:
                        lo_x, hi_x = _axis_weights(k2, h2, x, X, wx)
                        weighed = True
                        self_w = self_z * self_y * wx[x - lo_x]
                    d = mu[l] - mu[p]
                    de = (-2.0 * d * r + d * d * self_w) * inv2s2
                    de += c0 * (cost[l, 0] - cost[p, 0])
                    de += c1 * (cost[l, 1] - cost[p, 1])
                    de += c2 * (cost[l, 2] - cost[p, 2])
                    if de < best:
                        best = de
                        best_l = l
                if best_l == p:
                    continue
                prev_changed = True
                row_changed = True
                if not weighed:
                    lo_x, hi_x = _axis_weights(k2, h2, x, X, wx)
                d = np.float32(mu[best_l] - mu[p])
                row[x] = best_l
                total += best
                nch += 1
                for q in range(hi_x - lo_x + 1):
                    B[lo_x + q] += d * np.float32(wx[q])
            if row_changed:
                plane_changed = True
                for b in range(hi_y - lo_y + 1):
                    wb = np.float32(wy[b])
                    a_row = A[lo_y + b]
                    for x in range(X):
                        a_row[x] += wb * B[x]
                for x in range(X):
                    B[x] = 0.0
        if plane_changed:
            for a in range(hi_z - lo_z + 1):
                wa = np.float32(wz[a])
                plane = R[lo_z + a]
                for y in range(Y):
                    r_row = plane[y]
                    a_row = A[y]
                    for x in range(X):
                        r_row[x] -= wa * a_row[x]
            A[:, :] = 0.0
    return nch, total


@numba.njit(cache=True, nogil=True)
def _phase_values(P, mu, out):
    """``out[...] = mu[P]`` (float32) without numpy's fancy-indexing pass."""
    fp = P.ravel()
    fo = out.ravel()
    for i in range(fp.size):
        fo[i] = mu[fp[i]]


@numba.njit(cache=True, nogil=True)
def _codes_present(flat):
    """Whether each of the codes 0, 1, 2 occurs in ``flat`` (codes 0-2 only), stopping once all three have."""
    seen = np.zeros(3, np.bool_)
    left = 3
    for i in range(flat.size):
        c = flat[i]
        if not seen[c]:
            seen[c] = True
            left -= 1
            if left == 0:
                break
    return seen


@numba.njit(cache=True, nogil=True)
def _pack2(phases):
    """Phase codes 0-3 at two bits a voxel (flat, four voxels a byte, the first in the low bits)."""
    fp = phases.ravel()
    out = np.zeros((fp.size + 3) // 4, np.uint8)
    for i in range(fp.size):
        out[i >> 2] |= np.uint8(fp[i] << ((i & 3) * 2))
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _code2(packed, i):
    """Flat voxel ``i``'s code in :func:`_pack2`'s ``packed``."""
    return (packed[i >> 2] >> ((i & 3) * 2)) & 3


def _revert_specks(out, packed):
    """Give the voxels of each component of refined NMC that holds no NMC of the input phases their input phase.

    ``packed``: the input phases, :func:`_pack2`.  Such a component is made only of voxels that became NMC; so the
    components of those voxels (6-connected) are followed, and one is reverted where none of its voxels has a face
    neighbour that is NMC in both the input and ``out`` (the same voxels as cc3d's components of ``out == NMC``
    that hold no input NMC; ``tests/core/test_forward.py`` checks it).  On the cores: the voxels that became NMC
    are listed (:func:`_new_nmc`, two passes over the volume) and those with such a neighbour marked kept
    (:func:`_anchor_new`, most of them); then one thread follows the components of the others, which are
    kept where they reach a kept one (:func:`_revert_new`).  Returns the number of voxels reverted.
    """
    fo = out.reshape(-1)
    n = packed.size  # bytes of four voxels
    cut = n // 2
    c0, c1 = K.run_side_by_side(lambda: _new_nmc(fo, packed, 0, cut, None, 0),
                                lambda: _new_nmc(fo, packed, cut, n, None, 0))
    new = np.empty(c0 + c1, np.int64)
    K.run_side_by_side(lambda: _new_nmc(fo, packed, 0, cut, new, 0), lambda: _new_nmc(fo, packed, cut, n, new, c0))
    half = new.size // 2
    K.run_side_by_side(lambda: _anchor_new(out, packed, new[:half]), lambda: _anchor_new(out, packed, new[half:]))
    reverted = _revert_new(out, packed, new)
    K.run_side_by_side(lambda: _unmark(fo, new[:half]), lambda: _unmark(fo, new[half:]))
    return reverted


#: :func:`_revert_specks`' marks on the voxels that became NMC: queued in a component being followed, and kept.
_QUEUED, _KEPT = np.uint8(255), np.uint8(254)


@numba.njit(cache=True, nogil=True)
def _new_nmc(fo, packed, b0, b1, into, k0):
    """The flat voxels of bytes ``b0 <= b < b1`` of ``packed`` (voxels ``4 b`` to ``4 b + 3``) that are NMC in
    ``fo`` but not in ``packed``: how many (``into`` None), or written in ascending order to ``into[k0:]``.

    Four voxels at a time: bit ``2 j`` of a byte's NMC mask is voxel ``j``'s (code 2 is ``0b10``)."""
    n = fo.size
    k = k0
    for b in range(b0, b1):
        pk = np.int64(packed[b])
        was = (pk >> 1) & ~pk & 0x55
        i = 4 * b
        now = 0
        for j in range(4):
            if i + j < n:
                now |= np.int64(fo[i + j] == NMC) << (2 * j)
        became = now & ~was
        if became == 0:
            continue
        for j in range(4):
            if (became >> (2 * j)) & 1:
                if into is not None:
                    into[k] = i + j
                k += 1
    return k - k0


@numba.njit(cache=True, nogil=True)
def _anchor_new(out, packed, new):
    """Mark :data:`_KEPT` the voxels of ``new`` (flat, became NMC) with a face neighbour that is NMC in both
    ``packed`` and ``out``.  Such a neighbour is never one of the new voxels, so parts of ``new`` can be marked by
    different threads."""
    nz, ny, nx = out.shape
    fo = out.ravel()
    for i in new:
        z, y, x = K.unravel(i, ny, nx)
        for d in range(6):
            j = K.flat_step(i, z, y, x, d, nz, ny, nx)
            if j >= 0 and fo[j] == NMC and _code2(packed, j) == NMC:
                fo[i] = _KEPT
                break


@numba.njit(cache=True, nogil=True)
def _revert_new(out, packed, new):
    """The components of the voxels of ``new`` (flat, became NMC, ascending) that :func:`_anchor_new` left
    unmarked: kept where one reaches a kept voxel, else given their input phases.  Returns how many reverted."""
    nz, ny, nx = out.shape
    fo = out.ravel()
    queue = np.empty(max(new.size, 1), np.int64)
    reverted = 0
    for start in new:
        if fo[start] != NMC:  # kept, or already followed from an earlier voxel of its component
            continue
        head, tail = 0, 1
        queue[0] = start
        fo[start] = _QUEUED
        anchored = False
        while head < tail:
            i = queue[head]
            head += 1
            z, y, x = K.unravel(i, ny, nx)
            for d in range(6):
                j = K.flat_step(i, z, y, x, d, nz, ny, nx)
                if j < 0:
                    continue
                if fo[j] == _KEPT:
                    anchored = True
                elif fo[j] == NMC and _code2(packed, j) != NMC:  # (an NMC voxel of the input would be kept)
                    fo[j] = _QUEUED
                    queue[tail] = j
                    tail += 1
        for k in range(tail):
            i = queue[k]
            fo[i] = _KEPT if anchored else _code2(packed, i)
        if not anchored:
            reverted += tail
    return reverted


@numba.njit(cache=True, nogil=True)
def _unmark(fo, new):
    """NMC again on the voxels of ``new`` marked kept."""
    for i in new:
        if fo[i] == _KEPT:
            fo[i] = NMC


@numba.njit(cache=True, nogil=True)
def _restore_round_trips(out, packed):
    """``moves="nmc"``: give a voxel that went from pore to CBD or back (through NMC, over two sweeps) its input
    phase (``packed``, :func:`_pack2`) again.  Returns how many."""
    fo = out.ravel()
    n = 0
    for i in range(fo.size):
        o = fo[i]
        if o != NMC:
            c = _code2(packed, i)
            if c != NMC and c != o:
                fo[i] = c
                n += 1
    return n


def _sweeps(P, R, mu, k2, inv2s2, cost, allowed, sweeps):
    """:data:`SWEEPS` sweeps of :func:`_icm`, stopping where one changes nothing: (changes per sweep, energy change).

    Each sweep runs the slices below ``mid - h2 - 1`` and those from ``mid + h2 + 1`` side by side (what one
    writes, the other neither reads nor writes; one after the other on one core), then the band between; the
    order is fixed, so the result depends neither on the timing nor on the number of cores (it differs from one
    raster sweep in the order of the visits; until session 28 one core swept in raster order, so a one-core
    machine refined a little differently).  Volumes too thin for the halves are swept whole.
    """
    Z = P.shape[0]
    h2 = (k2.size - 1) // 2
    mid = Z // 2
    split = Z >= 4 * (h2 + 1) + 16
    changes, total = [], 0.0
    for _ in range(sweeps):
        if split:
            lo, hi = mid - h2 - 1, mid + h2 + 1
            parts = K.run_side_by_side(lambda: _icm(P, R, mu, k2, inv2s2, cost, allowed, 0, lo),
                                       lambda: _icm(P, R, mu, k2, inv2s2, cost, allowed, hi, Z))
            parts.append(_icm(P, R, mu, k2, inv2s2, cost, allowed, lo, hi))
        else:
            parts = [_icm(P, R, mu, k2, inv2s2, cost, allowed, 0, Z)]
        n = sum(int(p[0]) for p in parts)
        total += sum(float(p[1]) for p in parts)
        changes.append(n)
        if n == 0:
            break
    return changes, total


def refine_phases(volume: np.ndarray, phases: np.ndarray, *, blur: float, noise: float, references,
                  beta: float = BETA, sweeps: int = SWEEPS, moves: str = "all",
                  overwrite: bool = False) -> tuple[np.ndarray, dict]:
    """Phases refined by the forward model of the module docstring.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        The raw greyscale (not denoised: the model has the noise); not modified.
    phases : (Z, Y, X) uint8
        Phase codes 0 pore, 1 CBD, 2 NMC (e.g. thresholded); not modified unless ``overwrite``.
    blur : float
        Gaussian sigma of the image, voxels (> 0; e.g. :func:`core.seeding.estimate_blur`).
    noise : float
        Standard deviation of the noise, grey units (> 0; e.g. :func:`core.seeding.estimate_noise`).
    references : (pore, cbd, nmc) floats
        Pure grey values (:func:`core.phases.phase_references`); a phase absent from ``phases`` may be NaN
        (it is never proposed: only phases of a neighbour are).
    beta : float
        Potts weight (>= 0).
    sweeps : int
        Raster sweeps (>= 1); stops early where a sweep changes nothing.
    moves : {"all", "nmc"}
        "all": a boundary voxel may take the phase of any face neighbour; "nmc": only into or out of NMC
        (:data:`MOVES`; pore and CBD are left as ``phases`` has them).
    overwrite : bool
        Refine ``phases`` itself where it is a C-contiguous uint8 array (and return it): a byte per voxel less
        at the peak, for a caller that has no further use for the input phases (the input is kept packed at two
        bits a voxel for the clean-ups after the sweeps).

    Returns
    -------
    phases : (Z, Y, X) uint8
        New array (``phases`` itself with ``overwrite``, where it could be).
    info : dict
        ``changes`` (voxels changed per sweep), ``energy_change`` (the summed change of :func:`forward_energy`,
        negative, before the reverts), ``reverted_nmc_voxels`` (NMC the sweeps left in components that hold no
        NMC of the input: back to their input phase), ``restored_voxels`` (with ``moves="nmc"``: voxels that went
        through NMC from pore to CBD or back over two sweeps, given their input phase again), ``blur``, ``noise``,
        ``beta``, ``moves``.

    Notes
    -----
    The Gaussians are isotropic in voxels: for anisotropic voxels ``blur`` should be the estimate's average over
    the edge directions (as :func:`core.seeding.estimate_blur` gives it), an approximation.

    Memory: 5.25 bytes per voxel at its peak besides the inputs, 4.25 with ``overwrite`` (tracemalloc at 160³
    and 256³): the float32 residual (:func:`_residual`, filtered plane by plane), the refined phases (unless
    ``overwrite``), the input packed at two bits a voxel and a few planes.  Two threads
    where the volume has room for two halves apart by the kernel (:func:`_sweeps`).
    """
    volume = check_volume(volume)
    phases = check_phases(phases)
    if volume.shape != phases.shape:
        raise ValueError(f"volume shape {volume.shape} differs from phases shape {phases.shape}")
    if not (np.isfinite(blur) and blur > 0):
        raise ValueError(f"blur must be a finite number > 0 voxels, got {blur}")
    if not (np.isfinite(noise) and noise > 0):
        raise ValueError(f"noise must be a finite number > 0 grey units, got {noise}")
    if not (np.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta must be a finite number >= 0, got {beta}")
    if int(sweeps) != sweeps or sweeps < 1:
        raise ValueError(f"sweeps must be a whole number >= 1, got {sweeps}")
    if moves not in MOVES:
        raise ValueError(f"moves must be one of {sorted(MOVES)}, got {moves!r}")
    mu = np.asarray(references, np.float64)
    if mu.shape != (3,):
        raise ValueError(f"references must be three grey values (pore, cbd, nmc), got shape {mu.shape}")
    present = _codes_present(phases.ravel())  # (check_phases: codes 0-2 only; stops once all three are seen)
    if not np.isfinite(mu[present]).all():
        raise ValueError(f"references must be finite for the phases present, got {tuple(mu)}")
    mu = np.where(np.isfinite(mu), mu, 0.0)
    k = _kernel(blur)
    k2 = _kernel(blur * np.sqrt(2.0))
    R = _residual(volume, phases, mu, k, k2)  # G I - G G mu[P]
    packed = _pack2(phases)  # the input, for the clean-ups below (a quarter of a byte a voxel)
    in_place = overwrite and phases.dtype == np.uint8 and phases.flags.c_contiguous and phases.flags.writeable
    out = phases if in_place else phases.astype(np.uint8, order="C")
    changes, total = _sweeps(out, R, mu, k2, 1.0 / (2.0 * float(noise) ** 2), float(beta) * PAIR_COST, MOVES[moves],
                              int(sweeps))
    del R
    # the refinement moves surfaces: NMC that it joined to no NMC of the input (specks left where a voxel that
    # connected them moved back) is not a new particle; it takes its input phase again
    n_reverted = _revert_specks(out, packed)
    n_restored = 0
    if moves == "nmc":  # a voxel can go CBD -> NMC in one sweep and NMC -> pore in the next: left as it was
        n_restored = int(_restore_round_trips(out, packed))
    info = {"changes": [int(c) for c in changes if c] or [0], "energy_change": float(total),
            "reverted_nmc_voxels": n_reverted, "restored_voxels": n_restored,
            "blur": float(blur), "noise": float(noise), "beta": float(beta), "moves": moves}
    return out, info
