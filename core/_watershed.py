"""Memory-lean marker-free watershed of a distance transform, in numba.

The distance transform is quantised to ``uint8`` levels.  Seeds are the
regional maxima (connected plateaus of non-strict local maxima); a priority
flood grows them downhill, and when two basins meet at a saddle the one whose
peak rises less than ``h`` above that saddle joins the other (merging by
*dynamics*, which is what h-maxima seeding does).  Only the flood front is
held in memory besides the label volume.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.typed import List

from ._kernels import flat_step, unravel


def quantise(dt: np.ndarray, step: float | None = None) -> tuple[np.ndarray, float]:
    """Quantise a non-negative distance map to uint8 levels (0 = background).

    Parameters
    ----------
    dt : (Z, Y, X) float
    step : float, optional
        Distance per level; default ``max(dt) / 254`` (at least 1e-6).

    Returns
    -------
    q : (Z, Y, X) uint8
        ``ceil(dt / step)`` clipped to 255; 0 only where ``dt == 0``.
    step : float
    """
    dmax = float(dt.max()) if dt.size else 0.0
    if step is None:
        step = max(dmax / 254.0, 1e-6)
    q = np.empty(dt.shape, np.uint8)
    _quantise(dt, np.float32(1.0 / step), q)
    return q, step


@numba.njit(cache=True, nogil=True)
def _quantise(dt, inv, out):
    flat_in = dt.ravel()
    flat_out = out.ravel()
    for i in range(flat_in.size):
        v = flat_in[i]
        if v <= 0:
            flat_out[i] = 0
        else:
            q = int(np.ceil(v * inv))
            flat_out[i] = 255 if q > 255 else (1 if q < 1 else q)


@numba.njit(cache=True)
def _find(parent, a):
    root = a
    while parent[root] != root:
        root = parent[root]
    while parent[a] != root:
        nxt = parent[a]
        parent[a] = root
        a = nxt
    return root


@numba.njit(cache=True)
def _push(qs, tails, level, idx):
    arr = qs[level]
    t = tails[level]
    if t == arr.size:
        grown = np.empty(max(16, arr.size * 2), np.int64)
        grown[:t] = arr[:t]
        qs[level] = grown
        arr = grown
    arr[t] = idx
    tails[level] = t + 1


@numba.njit(cache=True)
def _flood(q, labels, n_seeds, h):
    """Priority flood from seeded labels with merging by dynamics (in place).

    A bucket queue over the 256 levels, first in first out within a level;
    a voxel is queued at the lower of its own level and the level being
    flooded, so the flood never climbs.
    """
    nz, ny, nx = q.shape
    parent = np.arange(n_seeds + 1)
    peak = np.zeros(n_seeds + 1, np.int64)
    flat_l = labels.ravel()
    flat_q = q.ravel()
    qs = List()
    for _ in range(256):
        qs.append(np.empty(16, np.int64))
    heads = np.zeros(256, np.int64)
    tails = np.zeros(256, np.int64)
    for i in range(flat_l.size):
        lab = flat_l[i]
        if lab > 0:
            if flat_q[i] > peak[lab]:
                peak[lab] = flat_q[i]
            _push(qs, tails, flat_q[i], i)
    for level in range(255, 0, -1):
        while heads[level] < tails[level]:
            i = qs[level][heads[level]]
            heads[level] += 1
            a = _find(parent, flat_l[i])
            z, y, x = unravel(i, ny, nx)
            for d in range(6):
                j = flat_step(i, z, y, x, d, nz, ny, nx)
                if j < 0:
                    continue
                qj = flat_q[j]
                if qj == 0:
                    continue
                lj = flat_l[j]
                if lj == 0:
                    flat_l[j] = a
                    _push(qs, tails, qj if qj < level else level, j)
                else:
                    b = _find(parent, lj)
                    if b != a:
                        # basins meet at this level: the lower peak joins if shallow
                        if peak[a] >= peak[b]:
                            hi, lo = a, b
                        else:
                            hi, lo = b, a
                        if peak[lo] - level < h:
                            parent[lo] = hi
                            a = _find(parent, a)
        qs[level] = np.empty(1, np.int64)  # release the finished level
    # resolve roots and renumber 1..n
    new_id = np.zeros(n_seeds + 1, np.int32)
    k = 0
    for s in range(1, n_seeds + 1):
        if _find(parent, s) == s:
            k += 1
            new_id[s] = k
    lut = np.zeros(n_seeds + 1, np.int32)
    for s in range(1, n_seeds + 1):
        lut[s] = new_id[_find(parent, s)]
    for i in range(flat_l.size):
        if flat_l[i] > 0:
            flat_l[i] = lut[flat_l[i]]
    return k


@numba.njit(cache=True, nogil=True)
def _is_max(q, z, y, x):
    """True where ``q[z, y, x] > 0`` has no strictly higher face neighbour."""
    nz, ny, nx = q.shape
    v = q[z, y, x]
    if v == 0:
        return False
    if z > 0 and q[z - 1, y, x] > v:
        return False
    if z < nz - 1 and q[z + 1, y, x] > v:
        return False
    if y > 0 and q[z, y - 1, x] > v:
        return False
    if y < ny - 1 and q[z, y + 1, x] > v:
        return False
    if x > 0 and q[z, y, x - 1] > v:
        return False
    if x < nx - 1 and q[z, y, x + 1] > v:
        return False
    return True


@numba.njit(cache=True, nogil=True)
def _plateaus(q):
    """Regional maxima of ``q`` as 6-connected plateaus, without a mask volume.

    Returns the flat indices of the local-maximum voxels (ascending) and, for
    each, its plateau number 1..n; plateaus are numbered in the raster order
    of their first voxel (as ``cc3d.connected_components`` numbers them).
    Two planes of provisional ids stand in for a label volume.
    """
    nz, ny, nx = q.shape
    plane = ny * nx
    n = 0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if _is_max(q, z, y, x):
                    n += 1
    idx = np.empty(n, np.int64)
    parent = np.arange(n)
    prev = np.full(plane, -1, np.int64)
    cur = np.full(plane, -1, np.int64)
    k = 0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                p = y * nx + x
                if not _is_max(q, z, y, x):
                    cur[p] = -1
                    continue
                idx[k] = z * plane + p
                cur[p] = k
                # earlier neighbours (-x, -y, -z) already have ids: link to them
                for b in (cur[p - 1] if x > 0 else -1, cur[p - nx] if y > 0 else -1, prev[p]):
                    if b >= 0:
                        ra = _find(parent, k)
                        rb = _find(parent, b)
                        if ra != rb:
                            # the root is the plateau's first voxel in raster order
                            if ra < rb:
                                parent[rb] = ra
                            else:
                                parent[ra] = rb
                k += 1
        prev, cur = cur, prev
    comp = np.zeros(n, np.int64)
    n_comp = 0
    for a in range(n):
        r = _find(parent, a)
        if r == a:
            n_comp += 1
            comp[a] = n_comp
        else:
            comp[a] = comp[r]
    return idx, comp, n_comp


def label_dtype(n: int) -> np.dtype:
    """Smallest label dtype used for ``n`` labels: uint16 below 65535, else int32."""
    return np.dtype(np.uint16) if n < np.iinfo(np.uint16).max else np.dtype(np.int32)


@numba.njit(cache=True, nogil=True)
def _scatter(flat, idx, values):
    for k in range(idx.size):
        flat[idx[k]] = values[k]


def watershed_dynamics(q: np.ndarray, h_levels: int) -> np.ndarray:
    """Label the basins of a quantised distance map, merging by dynamics.

    Parameters
    ----------
    q : (Z, Y, X) uint8
        Quantised distance map from :func:`quantise`; 0 is background.
    h_levels : int
        Minimum dynamics (in levels) for a peak to keep its own basin.

    Returns
    -------
    labels : (Z, Y, X) uint16 or int32
        1..n on ``q > 0``, 0 elsewhere; uint16 when there are fewer than
        65535 seeds (regional maxima), int32 otherwise (:func:`label_dtype`).
    """
    if q.dtype != np.uint8 or q.ndim != 3:
        raise TypeError(f"q must be a 3D uint8 array, got {q.dtype} with shape {q.shape}")
    q = np.ascontiguousarray(q)
    idx, comp, n_seeds = _plateaus(q)
    labels = np.zeros(q.shape, label_dtype(n_seeds))
    if n_seeds == 0:
        return labels
    _scatter(labels.reshape(-1), idx, comp)
    del idx, comp
    _flood(q, labels, n_seeds, int(h_levels))
    return labels
