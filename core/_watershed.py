"""Memory-lean marker-free watershed of a distance transform, in numba.

The distance transform is quantised to ``uint8`` levels.  Seeds are the
regional maxima (connected plateaus of non-strict local maxima); a priority
flood grows them downhill, and when two basins meet at a saddle the one whose
peak rises less than ``h`` above that saddle joins the other (merging by
*dynamics*, which is what h-maxima seeding does).  Only the flood front is
held in memory besides the label volume, which is uint16 unless more than
about 49,000 basins are alive at one time (label values are recycled as
basins merge, so the number of seeds does not matter).
"""

from __future__ import annotations

import numba
import numpy as np
from numba.typed import List

from ._kernels import divmod_recip, flat_step, prefetch, unravel, unravel_recip



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
def _flood(q, labels, n_seeds, h, peak0=None, by_row=True):
    """Priority flood from seeded labels with merging by dynamics (in place).

    The reference implementation (seed labels 1..n written before the flood,
    so ``labels`` must hold ``n_seeds``); :func:`watershed_dynamics` runs
    :func:`_flood_slots`, which gives the same labels.  ``peak0`` ((n + 1,)
    int64, optional): the least peak level of each seed's basin (its
    ``face_levels``).  A bucket queue over the 256 levels; a voxel is queued
    at the lower of its own level and the level being flooded, so the flood
    never climbs.  Within a level the seed voxels come first (raster order),
    then the queue in rounds: each round takes every voxel queued at the level
    since the last one (a generation of the level's breadth-first growth) and
    visits them stably ordered by their row (z, y; queue order within a row),
    so that the voxels visited next lie near each other in memory (``by_row``
    False: first in, first out).  Ties between basins (which of two that reach
    a voxel in one round takes it) follow that order.  It does not depend on
    where the volume lies in a larger one, nor on its width: the flood of a
    window or of a half of a volume orders its rounds as the whole volume's.
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
            # only a seed voxel next to an unlabelled voxel of the map or to another seed does anything when
            # popped (labels of seeded voxels never change): the others stay out of the queue, same result
            z, y, x = unravel(i, ny, nx)
            for d in range(6):
                j = flat_step(i, z, y, x, d, nz, ny, nx)
                if j >= 0 and flat_q[j] != 0 and flat_l[j] != lab:
                    _push(qs, tails, flat_q[i], i)
                    break
    seeds_at = tails.copy()  # the seed voxels lead each level's queue
    if peak0 is not None:
        for s in range(1, n_seeds + 1):
            if peak0[s] > peak[s]:
                peak[s] = peak0[s]
    for level in range(255, 0, -1):
        end = seeds_at[level]  # the end of the seeds, then of each round
        while True:
            if heads[level] == end:
                if end == tails[level]:
                    break
                # a round: what was queued at this level since, stably by block of flat indices
                stop = tails[level]
                part = qs[level][end:stop]
                if by_row:
                    qs[level][end:stop] = part[np.argsort(part // nx, kind="mergesort")]
                end = stop
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


#: Queue entries between the voxel the flood pops and the one whose memory it prefetches.
PREFETCH_AHEAD: int = 12


@numba.njit(cache=True, nogil=True, inline="always")
def _prefetch_around(flat_e, i, nx, plane):
    """Prefetch the codes of flat voxel ``i`` and of its ±y, ±z neighbours (±x share their lines)."""
    n = flat_e.size
    prefetch(flat_e, i)
    if i >= plane:
        prefetch(flat_e, i - plane)
    if i + plane < n:
        prefetch(flat_e, i + plane)
    if i >= nx:
        prefetch(flat_e, i - nx)
    if i + nx < n:
        prefetch(flat_e, i + nx)


#: Entries of one block of the flood's queue (see :func:`_flood_slots`).
QUEUE_BLOCK: int = 1 << 15

#: Label values (slots) the uint16 flood of :func:`watershed_dynamics` may use: the values above
#: them code the unlabelled voxels' levels during the flood (see :func:`_flood_slots`).
UINT16_SLOTS: int = int(np.iinfo(np.uint16).max) - 255


def _unlabelled_base(dtype) -> int:
    """During the flood an unlabelled voxel of level ``q`` holds ``base + q``: the largest value of ``dtype`` - 255."""
    return int(np.iinfo(dtype).max) - 255


@numba.njit(cache=True, nogil=True)
def _encode(q, labels, base):
    """``labels = where(q > 0, base + q, 0)`` (the flood's start), flat, in place."""
    flat_q = q.ravel()
    flat_e = labels.ravel()
    for i in range(flat_q.size):
        v = flat_q[i]
        flat_e[i] = 0 if v == 0 else base + v


@numba.njit(cache=True, nogil=True)
def _new_block(blocks, free_blocks, n_free, bnext):
    """An unused queue block, reused or from a doubled block table.

    ``blocks`` is the (n, B) table of queue blocks, ``free_blocks[:n_free]``
    the unused ones, ``bnext`` each block's successor in its level's chain.
    Returns ``(block, blocks, free_blocks, n_free, bnext)``.
    """
    if n_free == 0:
        n = blocks.shape[0]
        grown = np.empty((2 * n, blocks.shape[1]), blocks.dtype)
        grown[:n] = blocks
        blocks = grown
        g_next = np.full(2 * n, -1, np.int64)
        g_next[:n] = bnext
        bnext = g_next
        free_blocks = np.empty(2 * n, np.int64)  # every block can be free at once
        for k in range(n):
            free_blocks[k] = 2 * n - 1 - k
        n_free = n
    n_free -= 1
    b = free_blocks[n_free]
    bnext[b] = -1
    return b, blocks, free_blocks, n_free, bnext


@numba.njit(cache=True, nogil=True)
def _queued(level, head_b, head_p, tail_b, tail_p, bnext, bsize):
    """How many entries are queued at ``level`` (its chain of blocks)."""
    n = 0
    hb = head_b[level]
    p = head_p[level]
    while hb >= 0:
        last = hb == tail_b[level]
        n += (tail_p[level] if last else bsize) - p
        hb = -1 if last else bnext[hb]
        p = 0
    return n


@numba.njit(cache=True, nogil=True, inline="always")
def _row_of(i, nx, inv_nx):
    """``(i // nx, i % nx)``: the row of flat index ``i`` and its place in the row (``inv_nx = 1.0 / nx``)."""
    return divmod_recip(i, nx, inv_nx)


@numba.njit(cache=True, nogil=True)
def _take_round(level, n, large, blocks, bnext, head_b, head_p, tail_b, tail_p, free_blocks, n_free, low, small,
                scratch, counts, nx, inv_nx):
    """Take the ``n`` entries queued at ``level`` (its chain of blocks, all of them), stably sorted by row, and
    recycle the blocks; the level's queue is then empty.  Returns ``n_free``.

    A large round (``large``: :func:`_large_round`) is sorted straight out of the blocks by counting: ``counts[r]``
    is then the end in ``low`` of the entries of row ``r``, and ``low`` holds their ``x`` (uint16 where rows are at
    most 65535 voxels: two bytes an entry, not four or eight).  A small one goes whole into ``small``, sorted there
    with ``scratch`` (:func:`_sort_round`).
    """
    bsize = blocks.shape[1]
    nb = counts.size
    if large:
        counts[:] = 0
        hb, p = head_b[level], head_p[level]
        while hb >= 0:
            last = hb == tail_b[level]
            for e in range(p, tail_p[level] if last else bsize):
                counts[_row_of(np.int64(blocks[hb, e]), nx, inv_nx)[0]] += 1
            hb, p = (-1 if last else bnext[hb]), 0
        total = 0
        for b in range(nb):
            c = counts[b]
            counts[b] = total
            total += c
    k = 0
    hb, p = head_b[level], head_p[level]
    while hb >= 0:
        last = hb == tail_b[level]
        stop = tail_p[level] if last else bsize
        if large:
            for e in range(p, stop):
                r, x = _row_of(np.int64(blocks[hb, e]), nx, inv_nx)
                low[counts[r]] = x
                counts[r] += 1
        else:
            small[k:k + stop - p] = blocks[hb, p:stop]
            k += stop - p
        free_blocks[n_free] = hb  # recycled (read no more)
        n_free += 1
        hb, p = (-1 if last else bnext[hb]), 0
    if not large:
        _sort_round(small, n, scratch, nb, nx, inv_nx)
    head_b[level] = -1
    head_p[level] = 0
    tail_b[level] = -1
    tail_p[level] = 0
    return n_free


@numba.njit(cache=True, nogil=True)
def _unpack_round(low, counts, pos, row, nx, window):
    """The flat indices of a large round's entries ``pos`` on (:func:`_take_round`), as many as ``window`` holds
    or the round has left, written to ``window``; ``row``: the row of entry ``pos`` or one before it.  Returns
    (how many, the row of the last one)."""
    n = min(window.size, counts[counts.size - 1] - pos)
    for k in range(n):
        while counts[row] <= pos + k:
            row += 1
        window[k] = np.int64(row) * nx + np.int64(low[pos + k])
    return n, row


@numba.njit(cache=True, nogil=True, inline="always")
def _large_round(n, n_keys):
    """Whether a round of ``n`` entries is sorted by counting over the ``n_keys`` rows (:func:`_take_round`)."""
    return n > 16 and 8 * n >= n_keys


@numba.njit(cache=True, nogil=True)
def _sort_round(a, n, tmp, n_keys, nx, inv_nx):
    """Sort ``a[:n]`` (flat indices) stably by row, ``a // nx``, in place (``inv_nx = 1.0 / nx``): a small round of
    :func:`_take_round` (the large ones are counted out of the queue's blocks there).

    ``tmp``: scratch of at least ``n`` entries; ``n_keys``: more than the largest row.  A radix sort of the rows 8
    bits a pass, an insertion sort for a few entries: the same order.
    """
    if n <= 16:
        for k in range(1, n):
            v = a[k]
            key = _row_of(np.int64(v), nx, inv_nx)[0]
            m = k - 1
            while m >= 0 and _row_of(np.int64(a[m]), nx, inv_nx)[0] > key:
                a[m + 1] = a[m]
                m -= 1
            a[m + 1] = v
        return
    # least significant digit first, 8 bits a pass (stable), between a and tmp
    src, dst = a, tmp
    in_a = True  # whether src is a
    digits = np.zeros(256, np.int64)
    bit = 0
    while (1 << bit) < n_keys:
        digits[:] = 0
        for k in range(n):
            digits[(_row_of(np.int64(src[k]), nx, inv_nx)[0] >> bit) & 255] += 1
        total = 0
        for d in range(256):
            c = digits[d]
            digits[d] = total
            total += c
        for k in range(n):
            v = src[k]
            d = (_row_of(np.int64(v), nx, inv_nx)[0] >> bit) & 255
            dst[digits[d]] = v
            digits[d] += 1
        src, dst = dst, src
        in_a = not in_a
        bit += 8
    if not in_a:
        for k in range(n):
            a[k] = tmp[k]


@numba.njit(cache=True, nogil=True)
def _compact(flat_e, base, parent, used, free_slots):
    """Replace every label by its root slot and free the slots of merged basins; returns the free count."""
    for i in range(flat_e.size):
        lab = flat_e[i]
        if lab > 0 and lab <= base:
            flat_e[i] = _find(parent, lab)
    n_free = 0
    for s in range(parent.size - 1, 0, -1):
        if used[s] and parent[s] != s:
            used[s] = False
        if not used[s]:
            parent[s] = s
            free_slots[n_free] = s  # popped from the end: lowest slot first
            n_free += 1
    return n_free


def _flood_slots(q, labels, seed_idx, seed_comp, level_start, plat_vox, plat_start, peak0, h, max_slots, proto,
                 order="row"):
    """Priority flood with merging by dynamics; labels basins as :func:`_flood` does.

    The flood is :func:`_flood`'s, with three economies.  ``labels`` holds
    *slots* 1..``max_slots``, not seed numbers, and a seed (a plateau of
    local maxima at level ``p``) takes a slot only when the flood pops its
    first voxel: it cannot be reached earlier (no neighbour of a plateau voxel
    is higher, and other plateaus of the same level do not touch it), and
    ``_flood`` pops every level's seed voxels first, in ascending flat index,
    as this does, and then takes the level's queue in the same rounds (a large
    round held as each voxel's row and its two-byte ``x``: :func:`_take_round`).  When no slot is free, every label is replaced by its
    basin's root slot, which frees the slots of the basins merged so far; only
    the basins alive at one time need slots.  The queue holds flat indices of
    ``proto``'s dtype in blocks of ``proto.size`` entries, reused as they empty.
    And the flood reads one volume, not two: before it, ``labels`` is set to
    ``base + q`` on the voxels of ``q > 0`` (``base`` = the dtype's largest
    value - 255, above every slot), so a neighbour's level and its label are
    one memory access (the flood waits on memory, not arithmetic).

    Parameters
    ----------
    q : (Z, Y, X) uint8
    labels : (Z, Y, X) uint16 or int32
        Written in place: 1..k on ``q > 0``, 0 elsewhere.
    seed_idx : (S,) int64
        Flat indices of the seed voxels, by level and ascending within a level.
    seed_comp : (S,) int64
        Seed number 1..n of each (the raster order of the seed's first voxel).
    level_start : (257,) int64
        Seed voxels of level ``L`` are ``seed_idx[level_start[L]:level_start[L + 1]]``.
    plat_vox : (S,) int64
        The seed voxels by seed number: those of seed ``c`` are
        ``plat_vox[plat_start[c - 1]:plat_start[c]]``.
    plat_start : (n + 1,) int64
    peak0 : (n + 1,) int64
        Least peak level of each seed's basin (0: its own level; see
        :func:`watershed_dynamics`'s ``face_levels``).
    h : int
    max_slots : int
        Largest value ``labels`` may hold, at most the dtype's largest value - 255.
    proto : (B,) int32 or int64
        Queue block prototype (dtype and size).
    order : {"row", "fifo"}
        The rounds sorted by row (:func:`_flood`), or first in, first out (one round of one "row": the volume).

    Returns
    -------
    k : int
        Number of basins (labels 1..k in the order of their root seed's
        number, as :func:`_flood` numbers them), or -1 when a compaction
        freed fewer than ``max_slots // 4`` slots (more than about
        ``3 / 4 * max_slots`` basins alive at once); ``labels`` is then
        garbage.  With ``max_slots`` at least the number of seeds no
        compaction is needed.
    """
    base = _unlabelled_base(labels.dtype)
    if not 0 < max_slots <= base:
        raise ValueError(f"max_slots must be in 1..{base} for {labels.dtype} labels, got {max_slots}")
    if order not in ("row", "fifo"):
        raise ValueError(f"order must be 'row' or 'fifo', got {order!r}")
    row_len = q.shape[2] if order == "row" else max(q.size, 1)
    low = np.uint16 if row_len <= np.iinfo(np.uint16).max else np.uint32 if row_len <= np.iinfo(np.uint32).max \
        else np.int64
    _encode(q, labels, labels.dtype.type(base))
    return _flood_coded(labels, labels.dtype.type(base), seed_idx, seed_comp, level_start, plat_vox, plat_start,
                        peak0, h, max_slots, proto, np.empty(0, low), row_len)


@numba.njit(cache=True, nogil=True)
def _flood_coded(labels, base, seed_idx, seed_comp, level_start, plat_vox, plat_start, peak0, h, max_slots, proto,
                 low_proto, row_len):
    """The flood of :func:`_flood_slots` on ``labels`` coded by :func:`_encode` (0, slot, or ``base`` + level).

    Rounds sorted by "rows" of ``row_len`` flat indices (the volume's x extent; its size for first in, first
    out); ``low_proto``: an array of the dtype that holds an index within a row (:func:`_take_round`)."""
    nz, ny, nx = labels.shape
    flat_e = labels.ravel()
    nslot = max_slots + 1
    parent = np.arange(nslot)
    peak = np.zeros(nslot, np.int64)
    seed_of = np.zeros(nslot, np.int64)
    used = np.zeros(nslot, np.bool_)
    free_slots = np.empty(max_slots, np.int64)
    for s in range(max_slots):
        free_slots[s] = max_slots - s  # popped from the end: 1, 2, 3, ...
    n_free_slots = max_slots
    min_free = max(1, max_slots // 4)  # a compaction must free this much, else give up
    active = np.zeros(plat_start.size, np.bool_)
    plane = ny * nx
    inv_plane = 1.0 / plane  # unravel by multiplication (flat indices are far below 2**52)
    inv_nx = 1.0 / nx
    ibase = np.int64(base)
    # the queue: per level a chain of blocks, read from (head_b, head_p), written at (tail_b, tail_p)
    bsize = proto.size
    n_blocks = 16
    blocks = np.empty((n_blocks, bsize), proto.dtype)
    free_blocks = np.empty(n_blocks, np.int64)
    for k in range(n_blocks):
        free_blocks[k] = n_blocks - 1 - k
    n_free = n_blocks
    bnext = np.full(n_blocks, -1, np.int64)
    head_b = np.full(256, -1, np.int64)
    head_p = np.zeros(256, np.int64)
    tail_b = np.full(256, -1, np.int64)
    tail_p = np.zeros(256, np.int64)
    # the round being flooded (see _flood and _take_round): a large one by row (counts) and x (low), a small one
    # whole (small)
    inv_row = 1.0 / row_len
    counts = np.zeros((flat_e.size + row_len - 1) // row_len + 1, np.int64)
    n_keys = counts.size
    low = np.empty(1 << 16, low_proto.dtype)
    small = np.empty(n_keys // 8 + 17, proto.dtype)
    scratch = np.empty(small.size, proto.dtype)
    window = np.empty(1 << 14, proto.dtype)  # a large round's next entries as flat indices
    large = False
    w_pos = w_len = row = 0
    for level in range(255, 0, -1):
        t = level_start[level]
        s1 = level_start[level + 1]
        n_round = pos = 0
        while True:
            if t < s1:
                # this level's seeds first
                i = seed_idx[t]
                c = seed_comp[t]
                t += 1
                if not active[c]:
                    if n_free_slots == 0:
                        n_free_slots = _compact(flat_e, base, parent, used, free_slots)
                        if n_free_slots < min_free:
                            return -1
                    n_free_slots -= 1
                    slot = free_slots[n_free_slots]
                    used[slot] = True
                    peak[slot] = max(level, peak0[c])
                    seed_of[slot] = c
                    active[c] = True
                    for v in range(plat_start[c - 1], plat_start[c]):
                        flat_e[plat_vox[v]] = slot
            else:
                if pos == n_round:
                    # the next round: every voxel queued at this level since the last, by block of flat indices
                    n_round = _queued(level, head_b, head_p, tail_b, tail_p, bnext, bsize)
                    if n_round == 0:
                        break
                    large = _large_round(n_round, n_keys)
                    if large and n_round > low.size:
                        low = np.empty(0, low_proto.dtype)  # (freed first)
                        low = np.empty(n_round + n_round // 8, low_proto.dtype)
                    n_free = _take_round(level, n_round, large, blocks, bnext, head_b, head_p, tail_b, tail_p,
                                         free_blocks, n_free, low, small, scratch, counts, row_len, inv_row)
                    pos = w_pos = w_len = row = 0
                if large and w_pos == w_len:  # the next entries of a large round, as flat indices
                    w_len, row = _unpack_round(low, counts, pos, row, row_len, window)
                    w_pos = 0
                if large:
                    i = np.int64(window[w_pos])
                    w_pos += 1
                    pos += 1
                    if w_pos + PREFETCH_AHEAD < w_len:
                        # the memory of a voxel popped soon: the flood waits on memory, not arithmetic
                        _prefetch_around(flat_e, np.int64(window[w_pos + PREFETCH_AHEAD]), nx, plane)
                else:
                    i = np.int64(small[pos])
                    pos += 1
                    if pos + PREFETCH_AHEAD < n_round:
                        _prefetch_around(flat_e, np.int64(small[pos + PREFETCH_AHEAD]), nx, plane)
            a = _find(parent, flat_e[i])
            z, y, x = unravel_recip(i, ny, nx, inv_plane, inv_nx)
            for d in range(6):
                j = flat_step(i, z, y, x, d, nz, ny, nx)
                if j < 0:
                    continue
                ej = np.int64(flat_e[j])
                if ej == 0:
                    continue  # background
                if ej > ibase:  # not labelled yet: ej codes its level
                    flat_e[j] = a
                    qj = ej - ibase
                    lv = qj if qj < level else level
                    tb = tail_b[lv]
                    if tb < 0 or tail_p[lv] == bsize:
                        nb, blocks, free_blocks, n_free, bnext = _new_block(blocks, free_blocks, n_free, bnext)
                        if tb < 0:
                            head_b[lv] = nb
                            head_p[lv] = 0
                        else:
                            bnext[tb] = nb
                        tail_b[lv] = nb
                        tail_p[lv] = 0
                        tb = nb
                    blocks[tb, tail_p[lv]] = j
                    tail_p[lv] += 1
                elif ej != a:  # labelled by another slot (most neighbours hold the root ``a`` itself)
                    b = _find(parent, ej)
                    if b != a:
                        # basins meet at this level: the lower peak joins if shallow
                        if peak[a] >= peak[b]:
                            hi, lo = a, b
                        else:
                            hi, lo = b, a
                        if peak[lo] - level < h:
                            parent[lo] = hi
                            a = _find(parent, a)
    # roots numbered 1..k in the order of their seed numbers
    k = 0
    for s in range(1, nslot):
        if used[s] and _find(parent, s) == s:
            k += 1
    roots = np.empty(k, np.int64)
    k = 0
    for s in range(1, nslot):
        if used[s] and parent[s] == s:
            roots[k] = s
            k += 1
    order = np.argsort(seed_of[roots])
    lut = np.zeros(nslot, np.int64)
    for r in range(k):
        lut[roots[order[r]]] = r + 1
    final = np.zeros(nslot, np.int64)  # each slot's basin number, its root looked up once per slot
    for s in range(1, nslot):
        final[s] = lut[_find(parent, s)]
    for i in range(flat_e.size):
        lab = np.int64(flat_e[i])
        if lab > ibase:
            flat_e[i] = 0  # never reached (every component of q > 0 holds a seed)
        elif lab > 0:
            flat_e[i] = final[lab]
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
    One pass finds the maxima; a second, over the maxima only, links each to
    its -x, -y and -z neighbours that are maxima, found through one plane of
    ids stamped with their slice (no label volume).
    """
    nz, ny, nx = q.shape
    plane = ny * nx
    flat = q.ravel()
    idx = np.empty(1 << 12, np.int64)
    n = 0
    for z in range(nz):
        for y in range(ny):
            row = z * plane + y * nx
            for x in range(nx):
                # :func:`_is_max`, nearest memory first (most voxels have a higher neighbour along x or y)
                i = row + x
                v = flat[i]
                if v == 0:
                    continue
                if x > 0 and flat[i - 1] > v:
                    continue
                if x < nx - 1 and flat[i + 1] > v:
                    continue
                if y > 0 and flat[i - nx] > v:
                    continue
                if y < ny - 1 and flat[i + nx] > v:
                    continue
                if z > 0 and flat[i - plane] > v:
                    continue
                if z < nz - 1 and flat[i + plane] > v:
                    continue
                if n == idx.size:
                    grown = np.empty(2 * n, np.int64)
                    grown[:n] = idx
                    idx = grown
                idx[n] = i
                n += 1
    idx = idx[:n].copy()
    parent = np.arange(n)
    own = np.full(plane, -1, np.int64)  # id of the last maximum seen at each (y, x) ...
    own_z = np.full(plane, -1, np.int64)  # ... and its slice
    for k in range(n):
        i = idx[k]
        z = i // plane
        p = i - z * plane
        x = p % nx
        below = own[p] if own_z[p] == z - 1 else -1  # the maximum at -z, if any
        left = k - 1 if x > 0 and k > 0 and idx[k - 1] == i - 1 else -1
        up = -1
        if p >= nx and own_z[p - nx] == z:
            up = own[p - nx]
        own[p] = k
        own_z[p] = z
        # earlier neighbours (-x, -y, -z) already have ids: link to them
        for b in (left, up, below):
            if b >= 0:
                ra = _find(parent, k)
                rb = _find(parent, b)
                if ra != rb:
                    # the root is the plateau's first voxel in raster order
                    if ra < rb:
                        parent[rb] = ra
                    else:
                        parent[ra] = rb
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


def watershed_dynamics(q: np.ndarray, h_levels: int, *, face_levels: tuple | None = None,
                       order: str = "row") -> np.ndarray:
    """Label the basins of a quantised distance map, merging by dynamics.

    Parameters
    ----------
    q : (Z, Y, X) uint8
        Quantised distance map from :func:`quantise`; 0 is background.
    h_levels : int
        Minimum dynamics (in levels) for a peak to keep its own basin.
    face_levels : ((F,) int64, (F,) uint8), optional
        Flat indices (ascending, unique) of voxels on the volume's faces and a
        level for each: a basin whose seed (regional maximum) holds one counts
        its peak as at least that level when it meets another (the peak of a
        particle the face cut, :func:`core.particles.face_peak_levels`).  The
        flood itself, and so which voxel reaches which seed, is unchanged.
    order : {"row", "fifo"}
        Within a level, rounds sorted by row or first in, first out (:func:`_flood`;
        :attr:`core.particles.SeparationParams.flood_order`).

    Returns
    -------
    labels : (Z, Y, X) uint16 or int32
        1..n on ``q > 0``, 0 elsewhere, numbered in the raster order of each
        basin's first seed (regional maximum).  uint16 when there are at most
        :data:`UINT16_SLOTS` (65280) seeds, or more seeds but the flood
        manages with that many recycled label values (it gives up when fewer
        than a quarter of them can be freed, i.e. with more than about 49,000
        basins alive at one time; in practice the number alive stays close to
        the final number of basins); int32 otherwise.
    """
    if q.dtype != np.uint8 or q.ndim != 3:
        raise TypeError(f"q must be a 3D uint8 array, got {q.dtype} with shape {q.shape}")
    q = np.ascontiguousarray(q)
    return _watershed_dynamics(q, h_levels, _plateaus(q), face_levels, order=order)


def _watershed_dynamics(q: np.ndarray, h_levels: int, plateaus: tuple, face_levels: tuple | None = None,
                        side=None, *, order: str = "row") -> np.ndarray:
    """:func:`watershed_dynamics` of a C-contiguous ``q`` whose :func:`_plateaus` the caller has computed.

    ``side``: a :class:`core._kernels.SideWork` started as the flood starts, so that its calls run on the core
    the single-threaded flood leaves idle (the caller collects their results).
    """
    idx, comp, n_seeds = plateaus
    del plateaus
    if n_seeds == 0:
        return np.zeros(q.shape, np.uint16)
    args = _seed_order(q, idx, comp, n_seeds, face_levels)
    del idx, comp
    if side is not None:
        side.start()
    proto = np.empty(QUEUE_BLOCK, np.int32 if q.size < 2**31 else np.int64)
    h = int(h_levels)
    if n_seeds > UINT16_SLOTS:
        # more seeds than uint16 values: flood with recycled slots, int32 only if that fails
        labels = np.zeros(q.shape, np.uint16)
        if _flood_slots(q, labels, *args, h, UINT16_SLOTS, proto, order) >= 0:
            return labels
        del labels  # too many basins alive at once for uint16
    labels = np.zeros(q.shape, np.uint16 if n_seeds <= UINT16_SLOTS else np.int32)
    _flood_slots(q, labels, *args, h, n_seeds, proto, order)
    return labels


def _flood_into(q: np.ndarray, labels: np.ndarray, h_levels: int, plateaus: tuple,
                face_levels: tuple | None = None, *, order: str = "row") -> int:
    """:func:`_watershed_dynamics` of a C-contiguous ``q`` written into a given C-contiguous uint16 ``labels``.

    Returns the number of basins, or -1 where uint16 labels do not suffice
    (more than about 49,000 basins alive at once, see :func:`_flood_slots`);
    ``labels`` is then garbage.
    """
    idx, comp, n_seeds = plateaus
    del plateaus
    if n_seeds == 0:
        labels[...] = 0
        return 0
    args = _seed_order(q, idx, comp, n_seeds, face_levels)
    del idx, comp
    proto = np.empty(QUEUE_BLOCK, np.int32 if q.size < 2**31 else np.int64)
    return _flood_slots(q, labels, *args, int(h_levels), min(n_seeds, UINT16_SLOTS), proto, order)


def _seed_order(q, idx, comp, n_seeds, face_levels=None):
    """The seed tables of :func:`_flood_slots` from :func:`_plateaus`'s output.

    Returns ``seed_idx, seed_comp, level_start, plat_vox, plat_start, peak0``.
    """
    peak0 = np.zeros(n_seeds + 1, np.int64)
    if face_levels is not None:
        f_idx, f_lev = face_levels
        at = np.searchsorted(f_idx, idx)
        hit = at < f_idx.size
        hit[hit] = f_idx[at[hit]] == idx[hit]
        np.maximum.at(peak0, comp[hit], f_lev[at[hit]].astype(np.int64))
    lev = q.reshape(-1)[idx]
    order = np.argsort(lev, kind="stable")  # by level, ascending flat index within a level
    level_start = np.searchsorted(lev[order], np.arange(257)).astype(np.int64)
    seed_idx, seed_comp = idx[order], comp[order]
    del lev, order
    order = np.argsort(comp, kind="stable")  # by seed number
    plat_vox = idx[order]
    plat_start = np.searchsorted(comp[order], np.arange(1, n_seeds + 2)).astype(np.int64)
    return seed_idx, seed_comp, level_start, plat_vox, plat_start, peak0
