"""The quantised Euclidean distance transform of a mask with cubic voxels, in place, in numba.

:func:`core.particles.quantised_distance` needs, for every voxel of a mask, its
distance to the nearest voxel outside, coded in uint8 levels of ``dmax / 254``.
With cubic voxels the squared distance in voxels is an integer, so it is
computed exactly, in the mask's own memory and slice by slice:

1. two sweeps along z write, in place of the mask, each voxel's distance to
   the nearest background voxel of its z-column (0 on the background, 255 for
   255 voxels or more: "far");
2. per z-slice, the lower envelope of parabolas (Felzenszwalb & Huttenlocher,
   *Distance transforms of sampled functions*, Theory Comput. 8, 2012) along y
   and then x gives the squared 3D distance, exact where it is at most 254²
   (a far column cannot be nearest then).  A zero (background) parabola hides
   every parabola beyond it, so each line is cut at its background voxels.

The level step depends on the largest distance, which is found before step 2
writes the levels: a voxel's least distance to the background along z, y or x
bounds its 3D distance, and each core keeps the voxels of largest bound (about
:data:`CANDIDATES`); their exact distances, largest bound first, each the least
over the z-distances of the columns within its bound, give the largest
distance once it reaches the bound of every voxel left out (on issue 15's
512³ packing 56,853 voxels have a bound of 16 voxels or more, the largest
distance is 15.6; the search this replaced transformed 496 of its 512 slices,
1.0 s of 3.2).  Where it does not, step 2 first
runs on the slices that might hold the largest distance (slices by their
largest bound, largest first, until that cannot beat the largest distance
found).  Only a slice's scratch is held beside the mask.  Both
steps run on all cores.  The distances are those of ``edt`` (which also
leaves the volume's edge out of the background) up to float32 rounding; the
levels are computed from ``float32(sqrt(d2) * spacing)`` as
:func:`core._watershed.quantise` computes them from a float32 transform.
"""

from __future__ import annotations

import numba
import numpy as np

from ._kernels import run_on_cores
from ._watershed import quantise

#: A z-distance of 255 voxels or more ("far"): no parabola.
FAR: int = 255
#: Largest squared distance (in voxels²) computed exactly: a far column is at least 255 away.
EXACT_D2: int = 254 * 254
_NONE = 1e30  # no parabola / no finite value


@numba.njit(cache=True, nogil=True)
def _z_sweeps(buf, p0, p1):
    """In place on the (Z, P) mask ``buf`` (0 outside), columns ``p0..p1-1``: the distance along z (0..254, FAR)."""
    nz = buf.shape[0]
    for z in range(nz):
        for p in range(p0, p1):
            if buf[z, p] != 0:
                if z == 0:
                    buf[z, p] = FAR
                else:
                    v = buf[z - 1, p]
                    buf[z, p] = FAR if v >= FAR - 1 else v + 1
    for z in range(nz - 2, -1, -1):
        for p in range(p0, p1):
            v = buf[z + 1, p]
            if v < FAR - 1 and v + 1 < buf[z, p]:
                buf[z, p] = v + 1


@numba.njit(cache=True, nogil=True, inline="always")
def _envelope(f, lo, hi, out, v, zb):
    """``out[i] = min_{lo <= j < hi} f[j] + (i - j)²`` for ``lo <= i < hi`` (``f[j] >= _NONE``: no parabola)."""
    k = -1
    for q in range(lo, hi):
        fq = f[q]
        if fq >= _NONE:
            continue
        if k < 0:
            k = 0
            v[0] = q
            zb[0] = -1e300
            zb[1] = 1e300
            continue
        s = 0.0
        while k >= 0:
            r = v[k]
            s = ((fq + q * q) - (f[r] + r * r)) / (2.0 * (q - r))
            if s > zb[k]:
                break
            k -= 1
        k += 1
        v[k] = q
        zb[k] = s if k > 0 else -1e300
        zb[k + 1] = 1e300
    if k < 0:
        for i in range(lo, hi):
            out[i] = _NONE
        return
    k = 0
    for i in range(lo, hi):
        while zb[k + 1] < i:
            k += 1
        r = v[k]
        out[i] = (i - r) * (i - r) + f[r]


@numba.njit(cache=True, nogil=True, inline="always")
def _line(f, n, out, v, zb):
    """:func:`_envelope` of a whole line, cut at its zeros (a zero parabola hides all beyond it)."""
    i = 0
    while i < n:
        if f[i] == 0.0:
            out[i] = 0.0
            i += 1
            continue
        j = i
        while j < n and f[j] != 0.0:
            j += 1
        _envelope(f, i - 1 if i > 0 else 0, j + 1 if j < n else n, out, v, zb)
        i = j


@numba.njit(cache=True, nogil=True)
def _slices(buf, slices, k0, k1, lut, write, floor=0.0):
    """Squared 3D distances of the slices ``slices[k0:k1]`` of ``buf`` (z-distances, :func:`_z_sweeps`).

    With ``write`` each slice is overwritten with ``lut[d2]``; returns the
    largest squared distance seen (``_NONE`` where some voxel has none that
    is exact, see :data:`EXACT_D2`).  Without, a row whose squared distances
    along z and y are all at most ``floor`` or the largest seen so far is
    skipped (its 3D distances are no larger), so the result is the largest
    squared distance where that exceeds ``floor``.
    """
    nz, ny, nx = buf.shape
    width = 16  # columns of the y pass at a time: their rows are read and written whole
    n = max(ny, nx)
    col = np.empty((width, ny), np.float64)
    res = np.empty((width, ny), np.float64)
    g = np.empty((ny, nx), np.float64)
    out = np.empty(n, np.float64)
    v = np.empty(n + 1, np.int64)
    zb = np.empty(n + 2, np.float64)
    top = 0.0
    for k in range(k0, k1):
        s = buf[slices[k]]
        for x0 in range(0, nx, width):
            w = min(width, nx - x0)
            for y in range(ny):
                for c in range(w):
                    t = s[y, x0 + c]
                    col[c, y] = _NONE if t == FAR else float(t) * float(t)
            for c in range(w):
                _line(col[c], ny, res[c], v, zb)
            for y in range(ny):
                for c in range(w):
                    g[y, x0 + c] = res[c, y]
        for y in range(ny):
            if not write:
                gmax = 0.0
                for x in range(nx):
                    gmax = max(gmax, g[y, x])
                if gmax <= max(top, floor):
                    continue
            _line(g[y], nx, out, v, zb)
            for x in range(nx):
                d2 = out[x]
                if d2 > EXACT_D2:
                    top = _NONE
                elif d2 > top:
                    top = d2
                if write:
                    s[y, x] = lut[int(d2)] if d2 <= EXACT_D2 else 255
    return top


@numba.njit(cache=True, nogil=True)
def _slice_bounds(buf, k0, k1, out, cand, cand_b, keep):
    """``out[z]`` = the largest, over slice ``z`` (``k0 <= z < k1``) of the z-distances ``buf``, of each voxel's
    least distance to the background along z, y or x (in voxels, at most FAR): a bound of its 3D distances.

    Also keeps the voxels of largest bound: ``cand[:n]`` (flat indices) and ``cand_b[:n]`` (their bounds)
    hold every voxel of these slices whose bound is at least ``keep[0]`` (>= 1), which is raised whenever
    ``cand`` is full (:func:`_raise_keep`); returns ``n``.
    """
    nz, ny, nx = buf.shape
    plane = ny * nx
    up = np.empty((ny, nx), np.int64)
    n = 0
    t = keep[0]
    for z in range(k0, k1):
        s = buf[z]
        for y in range(ny):  # distance along y, from above, then taking the least with below in the second sweep
            for x in range(nx):
                if s[y, x] == 0:
                    up[y, x] = 0
                elif y == 0:
                    up[y, x] = FAR
                else:
                    up[y, x] = min(up[y - 1, x] + 1, FAR)
        for y in range(ny - 2, -1, -1):
            for x in range(nx):
                up[y, x] = min(up[y, x], up[y + 1, x] + 1)
        top = 0
        for y in range(ny):
            run = FAR  # distance along x from the left
            for x in range(nx):
                run = 0 if s[y, x] == 0 else min(run + 1, FAR)
                up[y, x] = min(up[y, x], run, s[y, x])
            run = FAR
            for x in range(nx - 1, -1, -1):
                run = 0 if s[y, x] == 0 else min(run + 1, FAR)
                b = min(up[y, x], run)
                if b > top:
                    top = b
                if b >= t:
                    if n == cand.size:
                        n, t = _raise_keep(cand, cand_b, n, t)
                    if b >= t:
                        cand[n] = z * plane + y * nx + x
                        cand_b[n] = b
                        n += 1
        out[z] = top
    keep[0] = t
    return n


@numba.njit(cache=True, nogil=True)
def _raise_keep(cand, cand_b, n, t):
    """The least threshold above ``t`` that leaves at most half of the ``n`` kept voxels; the others dropped.

    Returns the new count and threshold.
    """
    hist = np.zeros(FAR + 2, np.int64)
    for k in range(n):
        hist[cand_b[k]] += 1
    above = 0  # kept voxels with a bound of at least t2
    t2 = FAR + 1
    while t2 - 1 > t and above + hist[t2 - 1] <= n // 2:
        t2 -= 1
        above += hist[t2]
    m = 0
    for k in range(n):
        if cand_b[k] >= t2:
            cand[m] = cand[k]
            cand_b[m] = cand_b[k]
            m += 1
    return m, t2


@numba.njit(cache=True, nogil=True)
def _exact_d2(buf, i, b, top):
    """The squared 3D distance (voxels²) of flat voxel ``i``, whose bound (:func:`_slice_bounds`) is ``b < FAR``,
    where it exceeds ``top``; else some value at most ``top`` (the search stops there).

    The least, over the columns within ``b`` of the voxel in its slice, of the column's z-distance squared
    plus the in-slice distance squared (no column beyond ``b`` can be nearer, as ``b`` is a distance); rows
    nearest first.
    """
    nz, ny, nx = buf.shape
    plane = ny * nx
    z = i // plane
    y = (i - z * plane) // nx
    x = i - z * plane - y * nx
    s = buf[z]
    best = b * b
    for k in range(2 * b + 1):
        dy = (k + 1) // 2 if k % 2 else -(k // 2)  # 0, 1, -1, 2, -2, ...
        yy = y + dy
        dy2 = dy * dy
        if yy < 0 or yy >= ny or dy2 >= best:
            continue
        w = int(np.sqrt(best - dy2))
        for xx in range(max(0, x - w), min(nx, x + w + 1)):
            t = np.int64(s[yy, xx])
            if t >= FAR:
                continue
            v = t * t + dy2 + (xx - x) * (xx - x)
            if v < best:
                best = v
                if best <= top:
                    return best
    return best


@numba.njit(cache=True, nogil=True)
def _largest_d2(buf, idx, bnd):
    """The largest squared distance of the voxels ``idx``, whose bounds ``bnd`` descend (all below FAR)."""
    top = 0
    for k in range(idx.size):
        b = np.int64(bnd[k])
        if b * b <= top:
            break
        d2 = _exact_d2(buf, idx[k], b, top)
        if d2 > top:
            top = d2
    return top


#: Voxels of largest bound each core keeps (:func:`_slice_bounds`), whose exact distances give the largest
#: distance of the volume without a transform of every slice (:func:`quantise_cubic_in_place`).
CANDIDATES: int = 1 << 17


def quantise_cubic_in_place(buf: np.ndarray, spacing: float) -> float | None:
    """:func:`core.particles._quantise_in_place` of the mask ``buf != 0`` with cubic voxels of ``spacing`` µm.

    Parameters
    ----------
    buf : (Z, Y, X) uint8, C-contiguous
        0 outside the mask, 1 inside; overwritten with the levels
        (0 outside, 1..255 inside).
    spacing : float, µm

    Returns
    -------
    step : float or None
        µm per level (``dmax / 254``, at least 1e-6).  None where some voxel
        is 255 voxels or more from the background, or no background is in the
        volume: ``buf`` then holds the mask again (0 / 1) for another method.
    """
    nz = buf.shape[0]
    if buf.size == 0:
        return 1e-6
    flat = buf.reshape(nz, -1)
    run_on_cores(lambda p0, p1: _z_sweeps(flat, p0, p1), flat.shape[1])
    # the largest distance: the exact distances of the voxels of largest bound (_slice_bounds), largest first
    bound = np.zeros(nz, np.int64)
    kept = []

    def bounds(k0, k1):
        cand, cand_b, keep = np.empty(CANDIDATES, np.int64), np.empty(CANDIDATES, np.uint8), np.ones(1, np.int64)
        n = _slice_bounds(buf, k0, k1, bound, cand, cand_b, keep)
        kept.append((cand[:n], cand_b[:n], int(keep[0])))

    run_on_cores(bounds, nz)
    top, settled = 0.0, False
    if nz and bound.max() < FAR:
        t = max(k for _, _, k in kept)  # every voxel of a bound of at least t is kept by some core
        idx = np.concatenate([c[b >= t] for c, b, _ in kept])
        bnd = np.concatenate([b[b >= t] for _, b, _ in kept])
        by = np.argsort(-bnd.astype(np.int64), kind="stable")
        top = float(_largest_d2(buf, idx[by], bnd[by]))
        settled = top >= (t - 1) ** 2  # no voxel left out can be further
    # else (rarely): slices by their largest bound, largest first, until none can hold a larger distance
    order = np.argsort(-bound, kind="stable")
    dummy = np.zeros(1, np.uint8)
    at = 0
    while not settled and at < nz:
        b = bound[order[at]]
        if b == 0 or (b < FAR and b * b <= top):
            break
        batch = order[at:at + 8]  # a few slices per round, one share per core
        tops = []
        run_on_cores(lambda k0, k1: tops.append(_slices(buf, batch, k0, k1, dummy, False, top)), batch.size)
        top = max([top] + tops)
        at += batch.size
        if top >= _NONE:
            np.minimum(buf, 1, out=buf)  # the mask again
            return None
    if top == 0.0:  # no voxel inside
        buf[...] = 0
        return 1e-6
    d = (np.sqrt(np.arange(EXACT_D2 + 1, dtype=np.float64)) * float(spacing)).astype(np.float32)  # µm
    lut, step = quantise(d, max(float(d[int(top)]) / 254.0, 1e-6))  # the level of each squared distance
    every = np.arange(nz)
    run_on_cores(lambda k0, k1: _slices(buf, every, k0, k1, lut, True), nz)
    return step
