"""Numba kernels shared by the measuring and separating modules.

Every kernel makes one pass over a volume; none loops over particles in Python.
Face conventions: a face is shared by two 6-neighbour voxels; its area is the
product of the two spacings perpendicular to the axis it is normal to.
"""

from __future__ import annotations

import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

# interface categories returned by ``face_areas``
CAT_PORE, CAT_CBD, CAT_PARTICLE, CAT_EDGE, CAT_CRACK = 0, 1, 2, 3, 4
N_CAT = 5
#: A code the measures' phases may hold besides pore / CBD / NMC: no data (a fill outside the field of view,
#: :func:`core.phases.fill_region`); :func:`face_areas` counts a face to it as one to the volume's edge.
NO_DATA = 3


@numba.njit(cache=True, inline="always")
def step(z, y, x, d, nz, ny, nx):
    """The ``d``-th face neighbour (0..5: -z, +z, -y, +y, -x, +x) of ``(z, y, x)``.

    Returns ``(inside, zz, yy, xx)``; ``inside`` is False past the volume edge.
    """
    zz, yy, xx = z, y, x
    if d == 0:
        zz -= 1
    elif d == 1:
        zz += 1
    elif d == 2:
        yy -= 1
    elif d == 3:
        yy += 1
    elif d == 4:
        xx -= 1
    else:
        xx += 1
    inside = 0 <= zz < nz and 0 <= yy < ny and 0 <= xx < nx
    return inside, zz, yy, xx


@intrinsic
def prefetch(typingctx, arr, idx):
    """``prefetch(arr, i)`` in a jitted function: ask the CPU to bring ``arr.ravel()[i]``'s cache line in.

    LLVM's ``llvm.prefetch`` (read, high locality): a hint that never faults
    and changes no value, for loops that know which random address they will
    read a few iterations ahead.  ``arr`` must be 1D and ``i`` inside it.
    """
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        aty = signature.args[0]
        ary = context.make_array(aty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aty, ary, [args[1]], wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True, inline="always")
def unravel(i, ny, nx):
    """``(z, y, x)`` of flat index ``i`` in a C-ordered volume with ``ny * nx`` voxels a slice."""
    z = i // (ny * nx)
    r = i - z * (ny * nx)
    y = r // nx
    return z, y, r - y * nx


@numba.njit(cache=True, inline="always")
def divmod_recip(i, n, inv_n):
    """``divmod(i, n)`` without an integer division, for ``0 <= i < 2**52`` (``inv_n = 1.0 / n``, float64).

    A 64-bit integer division takes tens of cycles.  Here the quotient is a
    float64 product truncated, off by at most one (relative error below
    2**-52), and corrected by one comparison, so the result is exact.
    """
    q = np.int64(i * inv_n)
    r = i - q * n
    if r < 0:
        q -= 1
        r += n
    elif r >= n:
        q += 1
        r -= n
    return q, r


@numba.njit(cache=True, inline="always")
def unravel_recip(i, ny, nx, inv_plane, inv_nx):
    """:func:`unravel` without integer division: ``inv_plane = 1.0 / (ny * nx)``, ``inv_nx = 1.0 / nx`` (float64).

    The two integer divisions of :func:`unravel` are most of the time a flood
    spends on a voxel whose memory is already in cache; here they are
    :func:`divmod_recip`'s, so the result equals :func:`unravel`'s exactly.
    """
    z, r = divmod_recip(i, ny * nx, inv_plane)
    y, x = divmod_recip(r, nx, inv_nx)
    return z, y, x


@numba.njit(cache=True, inline="always")
def flat_step(i, z, y, x, d, nz, ny, nx):
    """Flat index of the ``d``-th face neighbour of flat voxel ``i`` at ``(z, y, x)``; -1 past the edge."""
    if d == 0:
        return i - ny * nx if z > 0 else -1
    if d == 1:
        return i + ny * nx if z < nz - 1 else -1
    if d == 2:
        return i - nx if y > 0 else -1
    if d == 3:
        return i + nx if y < ny - 1 else -1
    if d == 4:
        return i - 1 if x > 0 else -1
    return i + 1 if x < nx - 1 else -1


@numba.njit(cache=True, nogil=True, inline="always")
def _face_to(areas, lab, own_solid, other, phases, zz, yy, xx, a, nmc_code, cbd_code):
    """Add face area ``a`` of label ``lab`` (solid where ``own_solid``) to the category of its neighbour: label
    ``other`` at ``(zz, yy, xx)`` (:func:`face_areas`; its phase read up front, which measured faster than
    reading it only where it decides)."""
    p = phases[zz, yy, xx]
    if other == lab:
        if own_solid and p != nmc_code:  # solid/crack face inside the filled particle
            areas[lab, 4] += a
    elif other > 0:
        areas[lab, 2] += a
    else:
        if p == nmc_code:
            areas[lab, 2] += a
        elif p == cbd_code:
            areas[lab, 1] += a
        elif p == NO_DATA:  # outside the field of view (core.phases.fill_region): as the volume's edge
            areas[lab, 3] += a
        else:
            areas[lab, 0] += a


@numba.njit(cache=True, nogil=True)
def face_areas(filled, phases, n_lab, sz, sy, sx, nmc_code, cbd_code):
    """Per-label interface areas and voxel moments in one pass.

    Parameters
    ----------
    filled : (Z, Y, X) int array
        Particle labels with enclosed cracks assigned to their particle.
    phases : (Z, Y, X) uint8
        Phase codes; a labelled voxel that is not NMC is a crack voxel.  A face to a voxel of :data:`NO_DATA`
        counts as one to the volume edge.
    n_lab : int
        Largest label.
    sz, sy, sx : float
        Spacing (µm).

    Returns
    -------
    areas : (n_lab + 1, 5) float64
        Face area (µm²) to pore, CBD, other particle, volume edge, own crack.
    counts : (n_lab + 1, 2) int64
        Filled voxel count and solid voxel count.
    sums : (n_lab + 1, 3) float64
        Sum of z, y, x voxel indices over the filled particle.
    lo, hi : (n_lab + 1, 3) int64
        Smallest and largest z, y, x index of the filled particle (its
        bounding box; ``lo > hi`` for an absent label).

    Notes
    -----
    Row by row, in runs of one label along x: a run's count, index sums and
    bounds are added once (the sums are whole numbers, exact in float64 in
    any order); its voxels' faces are added one by one, in the order of a
    voxel-by-voxel raster pass (-z, +z, -y, +y, -x, +x), so the areas are
    those of that pass bit for bit.
    """
    nz, ny, nx = filled.shape
    az = sy * sx
    ay = sz * sx
    ax = sz * sy
    areas = np.zeros((n_lab + 1, 5), np.float64)
    counts = np.zeros((n_lab + 1, 2), np.int64)
    sums = np.zeros((n_lab + 1, 3), np.float64)
    lo = np.full((n_lab + 1, 3), max(nz, ny, nx), np.int64)
    hi = np.full((n_lab + 1, 3), -1, np.int64)
    for z in range(nz):
        for y in range(ny):
            row = filled[z, y]
            prow = phases[z, y]
            inner = 0 < z < nz - 1 and 0 < y < ny - 1
            x = 0
            while x < nx:
                lab = row[x]
                if lab == 0:
                    x += 1
                    continue
                x0 = x
                while x < nx and row[x] == lab:
                    x += 1
                n = x - x0
                counts[lab, 0] += n
                sums[lab, 0] += z * n
                sums[lab, 1] += y * n
                sums[lab, 2] += (x0 + x - 1) * n // 2
                if z < lo[lab, 0]:
                    lo[lab, 0] = z
                if z > hi[lab, 0]:
                    hi[lab, 0] = z
                if y < lo[lab, 1]:
                    lo[lab, 1] = y
                if y > hi[lab, 1]:
                    hi[lab, 1] = y
                if x0 < lo[lab, 2]:
                    lo[lab, 2] = x0
                if x - 1 > hi[lab, 2]:
                    hi[lab, 2] = x - 1
                for v in range(x0, x):
                    own_solid = prow[v] == nmc_code
                    if own_solid:
                        counts[lab, 1] += 1
                    if inner:  # all four z / y neighbours inside the volume
                        _face_to(areas, lab, own_solid, filled[z - 1, y, v], phases, z - 1, y, v, az, nmc_code, cbd_code)
                        _face_to(areas, lab, own_solid, filled[z + 1, y, v], phases, z + 1, y, v, az, nmc_code, cbd_code)
                        _face_to(areas, lab, own_solid, filled[z, y - 1, v], phases, z, y - 1, v, ay, nmc_code, cbd_code)
                        _face_to(areas, lab, own_solid, filled[z, y + 1, v], phases, z, y + 1, v, ay, nmc_code, cbd_code)
                    else:
                        for d in range(4):
                            a = az if d < 2 else ay
                            inside, zz, yy, xx = step(z, y, v, d, nz, ny, nx)
                            if inside:
                                _face_to(areas, lab, own_solid, filled[zz, yy, xx], phases, zz, yy, xx, a, nmc_code,
                                         cbd_code)
                            else:
                                areas[lab, 3] += a
                    if v == 0:
                        areas[lab, 3] += ax
                    else:  # the run's own label within it, else the voxel before it
                        _face_to(areas, lab, own_solid, lab if v > x0 else row[v - 1], phases, z, y, v - 1, ax,
                                 nmc_code, cbd_code)
                    if v == nx - 1:
                        areas[lab, 3] += ax
                    else:
                        _face_to(areas, lab, own_solid, lab if v < x - 1 else row[v + 1], phases, z, y, v + 1, ax,
                                 nmc_code, cbd_code)
    return areas, counts, sums, lo, hi


@numba.njit(cache=True, nogil=True)
def _mc_cell(labs, out, lut):
    """Add the marching-cubes area of every label of one 2x2x2 cell (corner labels ``labs``, bit order
    z*4 + y*2 + x) to ``out``, each label once, in the order of its first corner."""
    done = 0  # corners whose label has been counted
    for k in range(8):
        if (done >> k) & 1:
            continue
        lab = labs[k]
        code = 0
        for j in range(k, 8):
            if labs[j] == lab:
                code |= 1 << j
        done |= code
        if lab != 0:
            out[lab] += lut[code]


@numba.njit(cache=True, nogil=True)
def mc_areas(filled, n_lab, lut):
    """Marching-cubes surface area of every label from a 256-entry cell table.

    The volume is treated as padded by one background voxel on every side, so
    each particle's surface is closed.  ``lut[c]`` is the area of the
    marching-cubes triangles in a 2x2x2 cell whose corner occupancy bits are
    ``c`` (bit order: z*4 + y*2 + x).  The cells of a row are visited with a
    sliding window (each step reads the 4 corners of the next x), and a cell
    whose 8 corners hold one value (background, or inside a particle, where
    ``lut[255]`` is 0) is skipped: where the 4 corners it reads hold one
    value and the 4 it keeps held that same value.  Rows of cells whose
    corners all lie in the volume read them without bounds tests.
    """
    nz, ny, nx = filled.shape
    out = np.zeros(n_lab + 1, np.float64)
    labs = np.zeros(8, filled.dtype)
    zero = filled.dtype.type(0)
    nxt = np.zeros(4, filled.dtype)  # the next x: (dz, dy) = (0,0), (0,1), (1,0), (1,1)
    for z in range(-1, nz):
        for y in range(-1, ny):
            # corners at x = -1 (padding): bits 0, 2, 4, 6 of the first cell
            nxt[:] = zero
            was_one = True  # the 4 corners kept hold one value ...
            was = zero  # ... this one
            inner = 0 <= z < nz - 1 and 0 <= y < ny - 1
            for x in range(-1, nx):
                # the cell's low-x corners are the previous high-x corners
                labs[0] = nxt[0]
                labs[2] = nxt[1]
                labs[4] = nxt[2]
                labs[6] = nxt[3]
                xx = x + 1
                if xx >= nx:
                    nxt[:] = zero
                elif inner:
                    nxt[0] = filled[z, y, xx]
                    nxt[1] = filled[z, y + 1, xx]
                    nxt[2] = filled[z + 1, y, xx]
                    nxt[3] = filled[z + 1, y + 1, xx]
                else:
                    for c in range(4):
                        zz = z + (c >> 1)
                        yy = y + (c & 1)
                        if zz < 0 or yy < 0 or zz >= nz or yy >= ny:
                            nxt[c] = zero
                        else:
                            nxt[c] = filled[zz, yy, xx]
                one = nxt[0] == nxt[1] and nxt[1] == nxt[2] and nxt[2] == nxt[3]
                if one and was_one and nxt[0] == was:
                    continue  # uniform cell
                was_one = one
                was = nxt[0]
                labs[1] = nxt[0]
                labs[3] = nxt[1]
                labs[5] = nxt[2]
                labs[7] = nxt[3]
                _mc_cell(labs, out, lut)
    return out


@numba.njit(cache=True, nogil=True)
def remap_inplace(labels, lut):
    """``labels[...] = lut[labels]`` without a temporary volume."""
    flat = labels.ravel()
    for i in range(flat.size):
        flat[i] = lut[flat[i]]


def grow_labels(mask: np.ndarray, labels: np.ndarray, *, report_left: bool = False, label_rest: bool = False,
                code: int | None = None, idle=None):
    """Label the unlabelled voxels of ``mask`` by breadth-first growth from every labelled voxel at once (in place).

    Each step gives the unlabelled mask voxels next to (6-connected) the voxels labelled so far the label of
    such a neighbour; so every voxel reached takes the label of one of the labelled regions nearest to it along
    paths through the mask (geodesic, in face steps).  Ties go to the first neighbour in the order -z, +z, -y,
    +y, -x, +x in the first step, and to the neighbour labelled first after it.  Voxels of ``mask`` with no path
    to a label stay 0; labelled voxels keep their labels (and spread also where ``mask`` is 0).

    Parameters
    ----------
    mask : (Z, Y, X) uint8 or bool
        Where labels may grow (nonzero; with ``code``, where it equals ``code``).
    labels : (Z, Y, X) int32 or uint16
        Positive labels to grow, 0 elsewhere; changed in place.
    report_left : bool
        Also return the number of unlabelled voxels of ``mask`` left (no path to a label).
    label_rest : bool
        Then give each 6-connected component of those left a new label of its own, numbered from the largest
        label + 1 in the raster order of the components' first voxels (what ``scipy.ndimage.label`` of them,
        offset by the largest label, gives).
    code : int or None
        Grow where ``mask == code`` (e.g. phase codes and :data:`core.codes.NMC`: no mask volume of a byte a voxel
        beside them); None: where ``mask`` is nonzero.
    idle : callable or None
        Called (no arguments) once the growth turns single-threaded (after the first step, which runs on the
        cores): e.g. :meth:`SideWork.start`, so that other work has the core the growth leaves idle.

    Returns
    -------
    int, or (int, int) with ``report_left``
        The number of voxels labelled (and of those left).

    Raises
    ------
    OverflowError
        With ``label_rest``, where the new labels do not fit in uint16 ``labels``: those that fit are given
        (every voxel grown and the first components), so that a call on ``labels.astype(np.int32)`` gives the
        rest, numbered on, as one call on int32 labels would.

    Notes
    -----
    Memory: a queue of the unlabelled mask voxels (4 bytes each below 2**31 voxels, else 8) and, for the first
    step, their labels (the labels' bytes each).
    """
    if mask.shape != labels.shape:
        raise ValueError(f"mask shape {mask.shape} differs from labels shape {labels.shape}")
    m = np.ascontiguousarray(mask).view(np.uint8) if mask.dtype == np.bool_ else np.ascontiguousarray(mask)
    if labels.dtype not in (np.int32, np.uint16) or not labels.flags.c_contiguous:
        raise TypeError("labels must be a C-contiguous int32 or uint16 array (labelled in place)")
    if code is not None and not (m.dtype == np.uint8 and 0 <= int(code) <= 255):
        raise ValueError(f"code needs a uint8 mask of codes and a code in 0..255, got {m.dtype} and {code!r}")
    want = -1 if code is None else int(code)  # -1: nonzero
    index = np.int32(0) if labels.size < 2**31 else np.int64(0)
    n_open, grown = _grow_labels(m, labels, index, want, idle)
    if label_rest and n_open > grown:
        if _label_rest(m, labels, n_open - grown, index, int(np.iinfo(labels.dtype).max), want) < 0:
            raise OverflowError(f"the NMC components without a label need labels beyond {labels.dtype}'s largest "
                                f"value {np.iinfo(labels.dtype).max}")
    return (grown, n_open - grown) if report_left else grown


@numba.njit(cache=True, nogil=True)
def _label_rest(mask, labels, n_left, index_type, limit, want=-1):
    """New labels, from the largest + 1, for the 6-connected components of the unlabelled voxels of ``mask``
    (``n_left`` of them), in the raster order of their first voxels.  Returns 0, or -1 where a component would
    need a label above ``limit`` (the components before it are labelled, the rest left at 0)."""
    nz, ny, nx = labels.shape
    fl = labels.ravel()
    fm = mask.ravel()
    nxt = 0
    for i in range(fl.size):
        if fl[i] > nxt:
            nxt = np.int64(fl[i])
    queue = np.empty(n_left, type(index_type))
    for start in range(fl.size):
        if not _open(fm[start], want) or fl[start] != 0:
            continue
        if nxt >= limit:
            return -1
        nxt += 1
        fl[start] = nxt
        queue[0] = start
        _spread(fl, fm, queue, 1, nz, ny, nx, want)
    return 0


@numba.njit(cache=True, nogil=True, inline="always")
def _open(v, want):
    """A voxel of mask value ``v`` is open to growth: nonzero (``want`` -1), else equal to ``want``."""
    return v != 0 if want < 0 else v == want


@numba.njit(cache=True, nogil=True)
def _spread(fl, fm, queue, tail, nz, ny, nx, want=-1):
    """Breadth-first: each voxel of ``queue[:tail]`` in turn, and each it reaches after them, gives its label to
    its unlabelled face neighbours open in ``fm`` (flat labels ``fl``, flat mask ``fm``; :func:`_open` of
    ``want``).  Returns the final tail."""
    head = 0
    while head < tail:
        i = np.int64(queue[head])
        head += 1
        lab = fl[i]
        z, y, x = unravel(i, ny, nx)
        for d in range(6):
            j = flat_step(i, z, y, x, d, nz, ny, nx)
            if j >= 0 and fl[j] == 0 and _open(fm[j], want):
                fl[j] = lab
                queue[tail] = j
                tail += 1
    return tail


def _grow_labels(mask, labels, index_type, want=-1, idle=None):
    """:func:`grow_labels`' growth: ``(n_open, grown)``.

    The count of open voxels and the first step (a scan that writes nothing, so that no voxel labelled in it
    passes its label on within it) run on the cores, each on its own range of the flat volume, writing its
    part of the queue at the offset its count gives; the parts are then put end to end, in the order of one
    scan, and the breadth-first spread from them runs in one thread.
    """
    nz, ny, nx = labels.shape
    fl = labels.reshape(-1)
    fm = mask.reshape(-1)
    opens = {}
    run_on_cores(lambda a, b: opens.__setitem__(a, _count_open(fl, fm, want, a, b)), fl.size)
    starts = sorted(opens)
    n_open = sum(opens.values())
    if n_open == 0:
        if idle is not None:
            idle()
        return 0, 0
    queue = np.empty(n_open, type(index_type))
    first = np.empty(n_open, fl.dtype)
    offset = dict(zip(starts, np.cumsum([0] + [opens[a] for a in starts[:-1]]).tolist()))
    found = {}
    run_on_cores(lambda a, b: found.__setitem__(a, _first_step(fl, fm, want, queue, first, offset[a], a, b,
                                                                nz, ny, nx)), fl.size)
    tail = _join_parts(queue, first, np.array([offset[a] for a in starts], np.int64),
                       np.array([found[a] for a in starts], np.int64))
    _label_first(fl, queue, first, tail)
    if idle is not None:
        idle()
    return n_open, _spread(fl, fm, queue, tail, nz, ny, nx, want)


@numba.njit(cache=True, nogil=True)
def _count_open(fl, fm, want, a, b):
    """Unlabelled voxels open to growth (:func:`_open`) among flat voxels ``a..b-1``."""
    n = 0
    for i in range(a, b):
        if fl[i] == 0 and _open(fm[i], want):
            n += 1
    return n


@numba.njit(cache=True, nogil=True)
def _first_step(fl, fm, want, queue, first, off, a, b, nz, ny, nx):
    """The first step of :func:`_grow_labels` for flat voxels ``a..b-1``: each unlabelled open voxel with a
    labelled face neighbour (the first in the order -z, +z, -y, +y, -x, +x) goes to ``queue[off:]`` and that
    label to ``first[off:]``, in flat order; writes no label.  Returns how many."""
    t = off
    for i in range(a, b):
        if fl[i] != 0 or not _open(fm[i], want):
            continue
        z, y, x = unravel(i, ny, nx)
        for d in range(6):
            j = flat_step(i, z, y, x, d, nz, ny, nx)
            if j >= 0 and fl[j] > 0:
                first[t] = fl[j]
                queue[t] = i
                t += 1
                break
    return t - off


@numba.njit(cache=True, nogil=True)
def _label_first(fl, queue, first, n):
    """``fl[queue[k]] = first[k]`` for ``k < n``."""
    for k in range(n):
        fl[queue[k]] = first[k]


@numba.njit(cache=True, nogil=True)
def _join_parts(queue, first, offsets, counts):
    """Put the parts ``queue[offsets[k]:offsets[k] + counts[k]]`` (and ``first``'s) end to end; returns the
    total."""
    n = 0
    for k in range(offsets.size):
        o = offsets[k]
        for m in range(counts[k]):
            queue[n] = queue[o + m]
            first[n] = first[o + m]
            n += 1
    return n


@numba.njit(cache=True, nogil=True)
def flood_outside(blocked, seeds):
    """Mark every non-blocked voxel 6-connected to a seed.

    A scanline (span) flood: a popped voxel grows to the whole run of open,
    unreached voxels along x that holds it, and the four rows beside that
    run (±y, ±z) are scanned over its x range, one entry pushed per run of
    open voxels found there.  Memory is read row by row, and the stack holds
    runs, not voxels.  The result is the set of voxels connected to a seed,
    which does not depend on the order of the flood.

    Parameters
    ----------
    blocked : (Z, Y, X) bool or int
        Voxels the flood cannot enter (nonzero).
    seeds : (K,) int64
        Flat indices where the flood starts (blocked ones are skipped).

    Returns
    -------
    reached : (Z, Y, X) bool
    """
    reached = np.zeros(blocked.shape, np.bool_)
    flood_into(blocked, reached, seeds)
    return reached


@numba.njit(cache=True, nogil=True)
def flood_into(blocked, reached, seeds):
    """:func:`flood_outside` continued in an existing ``reached`` (same shape as ``blocked``), in place.

    Voxels already reached are not entered again, so a second call with new
    seeds adds what they reach; :func:`outside_reach` floods two halves of a
    volume this way, one per thread.
    """
    nz, ny, nx = blocked.shape
    plane = ny * nx
    flat_b = blocked.ravel()
    flat_r = reached.ravel()
    stack = np.empty(max(1 << 12, seeds.size), np.int64)
    top = 0
    for s in seeds:
        if flat_b[s] == 0 and not flat_r[s]:
            stack[top] = s
            top += 1
    while top > 0:
        top -= 1
        i = stack[top]
        if flat_r[i]:
            continue
        row = i - i % nx  # flat index of x = 0 in this row
        a = i
        while a > row and flat_b[a - 1] == 0 and not flat_r[a - 1]:
            a -= 1
        b = i
        while b < row + nx - 1 and flat_b[b + 1] == 0 and not flat_r[b + 1]:
            b += 1
        for k in range(a, b + 1):
            flat_r[k] = True
        z = i // plane
        y = (i - z * plane) // nx
        for d in range(4):
            if d == 0:
                if y == 0:
                    continue
                off = -nx
            elif d == 1:
                if y == ny - 1:
                    continue
                off = nx
            elif d == 2:
                if z == 0:
                    continue
                off = -plane
            else:
                if z == nz - 1:
                    continue
                off = plane
            open_run = False
            for k in range(a + off, b + off + 1):
                if flat_b[k] == 0 and not flat_r[k]:
                    if not open_run:
                        if top == stack.size:
                            grown = np.empty(2 * stack.size, np.int64)
                            grown[:top] = stack[:top]
                            stack = grown
                        stack[top] = k
                        top += 1
                        open_run = True
                else:
                    open_run = False


@numba.njit(cache=True, nogil=True)
def assign_cracks(labels, reached):
    """Give each enclosed background region bordered by a single label to that label (in place).

    ``labels`` > 0 are particles; background voxels with ``reached`` False are
    enclosed.  Enclosed regions are found as 6-connected components over the
    sparse set of enclosed voxels (union-find on sorted flat indices), so no
    extra volume is allocated.  Returns the number of voxels assigned.
    """
    flat_l = labels.ravel()
    flat_r = reached.ravel()
    n = 0
    for i in range(flat_l.size):
        if flat_l[i] == 0 and not flat_r[i]:
            n += 1
    if n == 0:
        return 0
    idx = np.empty(n, np.int64)
    k = 0
    for i in range(flat_l.size):
        if flat_l[i] == 0 and not flat_r[i]:
            idx[k] = i
            k += 1
    return assign_enclosed(labels, idx, _enclosed_roots(idx, labels.shape))


@numba.njit(cache=True, nogil=True)
def enclosed_of_phases(phases, packed, solid_code):
    """The enclosed voxels of :func:`assign_cracks` from phases: not ``solid_code``, not reached.

    ``packed``: ``np.packbits`` of ``outside_reach`` of the solid (bit set =
    reached), read bit by bit (no unpacked volume).  Where the labels are
    nonzero exactly on the solid, these are the voxels :func:`assign_cracks`
    finds from the labels, so a caller can find them before the labels exist.

    Returns
    -------
    idx : (n,) int64
        Flat indices, ascending.
    root : (n,) int64
        Each voxel's component: the position in ``idx`` of its first voxel.
    """
    flat_p = phases.ravel()
    n = 0
    for i in range(flat_p.size):
        if flat_p[i] != solid_code and not (packed[i >> 3] >> (7 - (i & 7))) & 1:
            n += 1
    idx = np.empty(n, np.int64)
    k = 0
    for i in range(flat_p.size):
        if flat_p[i] != solid_code and not (packed[i >> 3] >> (7 - (i & 7))) & 1:
            idx[k] = i
            k += 1
    return idx, _enclosed_roots(idx, phases.shape)


@numba.njit(cache=True, nogil=True)
def _enclosed_roots(idx, shape):
    """6-connected components of the voxels ``idx`` (ascending flat indices of a volume of ``shape``).

    Returns each voxel's root: the position in ``idx`` of its component's first voxel.
    """
    nz, ny, nx = shape
    sxy = ny * nx
    size = nz * sxy
    n = idx.size
    parent = np.arange(n)
    # idx is ascending and so are i + nx and i + sxy as a grows: each neighbour's position in idx is found by a
    # pointer that only moves forward (a merge of sorted lists, linear), not by a binary search per voxel
    at = np.zeros(3, np.int64)
    for a in range(n):
        i = idx[a]
        for k, off in enumerate((1, nx, sxy)):
            j = i + off
            # same row / plane checks for the +1 and +nx neighbours
            if off == 1 and (i % nx) == nx - 1:
                continue
            if off == nx and ((i // nx) % ny) == ny - 1:
                continue
            if j >= size:
                continue
            b = at[k]
            while b < n and idx[b] < j:
                b += 1
            at[k] = b
            if b < n and idx[b] == j:
                ra = a
                while parent[ra] != ra:
                    ra = parent[ra]
                rb = b
                while parent[rb] != rb:
                    rb = parent[rb]
                if ra != rb:
                    if ra < rb:
                        parent[rb] = ra
                    else:
                        parent[ra] = rb
    root = np.empty(n, np.int64)
    for a in range(n):
        r = a
        while parent[r] != r:
            r = parent[r]
        root[a] = r
        parent[a] = r
    return root


@numba.njit(cache=True, nogil=True)
def assign_enclosed(labels, idx, root):
    """Give each component of enclosed voxels (:func:`enclosed_of_phases`) bordered by a single label to it.

    ``labels`` is written in place on those voxels; returns the number of voxels assigned.
    """
    nz, ny, nx = labels.shape
    flat_l = labels.ravel()
    n = idx.size
    owner = np.zeros(n, np.int64)
    multi = np.zeros(n, np.bool_)
    for a in range(n):
        i = idx[a]
        z, y, x = unravel(i, ny, nx)
        ra = root[a]
        for d in range(6):
            j = flat_step(i, z, y, x, d, nz, ny, nx)
            if j < 0:
                continue
            lab = flat_l[j]
            if lab > 0:
                if owner[ra] == 0:
                    owner[ra] = lab
                elif owner[ra] != lab:
                    multi[ra] = True
    assigned = 0
    for a in range(n):
        ra = root[a]
        if not multi[ra] and owner[ra] > 0:
            flat_l[idx[a]] = owner[ra]
            assigned += 1
    return assigned


@numba.njit(cache=True, nogil=True)
def clear_non_solid(labels, phases, solid_code):
    """Set ``labels`` to 0 wherever ``phases`` is not ``solid_code`` (in place)."""
    flat_l = labels.ravel()
    flat_p = phases.ravel()
    for i in range(flat_l.size):
        if flat_p[i] != solid_code:
            flat_l[i] = 0


def clear_unset_bits(labels: np.ndarray, bits: np.ndarray) -> None:
    """Set the C-contiguous ``labels`` to 0 wherever ``np.unpackbits(bits)`` (one bit a voxel, the first in the
    high bit, as ``np.packbits`` packs them) is 0, in place, on the cores: no unpacked byte a voxel."""
    if not labels.flags.c_contiguous:
        raise ValueError("labels must be C-contiguous (changed in place)")
    flat = labels.reshape(-1)
    nbytes = (flat.size + 7) // 8
    run_on_cores(lambda a, b: _clear_unset_bits(flat, bits, a, b), nbytes)


@numba.njit(cache=True, nogil=True)
def _clear_unset_bits(flat, bits, b0, b1):
    """:func:`clear_unset_bits` of the voxels packed in bytes ``b0 <= k < b1``."""
    n = flat.size
    for k in range(b0, b1):
        byte = bits[k]
        if byte == 255:
            continue
        i0 = 8 * k
        for j in range(8):
            i = i0 + j
            if i < n and not (byte >> (7 - j)) & 1:
                flat[i] = 0


def _open_face(face: np.ndarray) -> np.ndarray:
    """``~scipy.ndimage.binary_fill_holes(face)``: the open pixels of a 2D face connected to its border.

    The same 4-connected flood as scipy's (which dilates from the border until
    nothing changes, many passes over a face with long winding channels), in
    one :func:`flood_outside` run on the face as a one-slice volume.
    """
    h, w = face.shape
    if face.size == 0:
        return np.zeros(face.shape, bool)
    border = np.zeros(face.shape, bool)
    border[0, :] = border[-1, :] = True
    border[:, 0] = border[:, -1] = True
    seeds = np.flatnonzero(border & ~face).astype(np.int64)
    return flood_outside(np.ascontiguousarray(face).reshape(1, h, w), seeds)[0]


def outside_reach(blocked: np.ndarray) -> np.ndarray:
    """Voxels connected to the outside of the volume without crossing ``blocked``.

    The volume is treated as surrounded by a layer that copies each face after
    2D hole filling: a region enclosed within a face's own slice (a crack cut
    by the volume edge) does not open to the outside, while pore channels
    that reach a face do.

    Parameters
    ----------
    blocked : (Z, Y, X) bool or int
        Nonzero voxels block the flood (a label volume can be passed as it is,
        without a boolean copy).

    Returns
    -------
    reached : (Z, Y, X) bool
    """
    blocked = np.asarray(blocked)
    if blocked.dtype != bool and blocked.dtype.kind not in "iu":
        blocked = blocked != 0
    blocked = np.ascontiguousarray(blocked)
    seeds = _face_seeds(blocked)
    reached = _reach_by_runs(blocked, seeds)
    return _flood_halves(blocked, seeds) if reached is None else reached


def cores() -> int:
    """CPU cores this process may run on (its affinity where the OS tells it, else ``os.cpu_count()``)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _forget_pool() -> None:
    """In a forked child the parent's worker threads do not exist: start a new pool when one is needed."""
    global _POOL
    _POOL = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _pool() -> ThreadPoolExecutor:
    """The process-wide pool of :func:`run_on_cores` (``cores() - 1`` plain threads, started on first use)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max(1, cores() - 1), thread_name_prefix="core-kernels")
        return _POOL


def run_side_by_side(*calls) -> list:
    """Call each of ``calls`` (no arguments) and return their results in order, several at once where cores allow.

    The first runs in the calling thread, the others in :func:`run_on_cores`'s
    pool; for numba kernels that release the GIL and only read shared inputs
    (a call must not itself wait on the pool: with one pool thread it would wait
    on itself).  On one core they run one after the other.
    """
    if cores() == 1 or len(calls) < 2:
        return [c() for c in calls]
    futures = [_pool().submit(c) for c in calls[1:]]
    first = calls[0]()
    return [first] + [f.result() for f in futures]


_HUGEPAGE_LOCK = threading.Lock()
_HUGEPAGE_BLOCKS: list = []  # the settings of the blocks open now, innermost (or latest) last
_HUGEPAGE_SAVED: list = []  # numpy's setting before the first of them


@contextmanager
def numpy_hugepages(enabled: bool):
    """Whether numpy asks the kernel for transparent huge pages (``madvise``) for the arrays allocated inside.

    numpy advises huge pages for every array of 4 MiB or more.  On the
    virtual machine this project is measured on, touching fresh huge pages
    costs far more than small ones (a fresh 67 MB float32 slab filled by two
    threads: 0.24-0.39 s against 0.06 s; the 512³ flood's 268 MB label
    volume: 1.5 s against 0.05 s), most likely because the host hands back
    (and must fault in again) the large free blocks the guest frees, so every
    fresh slab of the slab-wise steps pays it again.  Huge pages would make
    the flood's random reads a little faster (fewer TLB misses, about 0.4 s of
    7 s at 512³), less than their first touch costs here.  numpy's setting is
    process-wide (``numpy._core.multiarray._set_madvise_hugepage``, also the
    environment variable ``NUMPY_MADVISE_HUGEPAGE``): blocks may nest, and
    overlap in several threads (runs of the dashboard); leaving one restores
    the setting of the latest block still open, and leaving the last restores
    numpy's own, so other code sees it as it was once no block is open.  It
    changes only how memory is backed, never a value; where numpy lacks the
    switch this does nothing.
    """
    setter = getattr(getattr(getattr(np, "_core", None), "multiarray", None), "_set_madvise_hugepage", None)
    if setter is None:
        yield
        return
    token = [bool(enabled)]  # this block's entry (an object of its own: blocks with one setting are told apart)
    with _HUGEPAGE_LOCK:
        before = setter(token[0])
        if not _HUGEPAGE_BLOCKS:
            _HUGEPAGE_SAVED[:] = [before]
        _HUGEPAGE_BLOCKS.append(token)
    try:
        yield
    finally:
        with _HUGEPAGE_LOCK:
            for k in range(len(_HUGEPAGE_BLOCKS) - 1, -1, -1):
                if _HUGEPAGE_BLOCKS[k] is token:
                    del _HUGEPAGE_BLOCKS[k]
                    break
            setter(_HUGEPAGE_BLOCKS[-1][0] if _HUGEPAGE_BLOCKS else _HUGEPAGE_SAVED[0])



# glibc's mallopt(3) parameters (malloc.h) and the start value of both thresholds
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_GLIBC_START_THRESHOLD = 128 * 1024
_RECYCLE_LOCK = threading.Lock()
_RECYCLE = {"open": 0, "on": False}


@functools.cache
def _glibc_malloc():
    """The process's C library where it is glibc (which has ``mallopt`` and ``malloc_trim``), else None."""
    try:
        import ctypes
        import platform

        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            lib = ctypes.CDLL(None)
            lib.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            lib.malloc_trim.argtypes = [ctypes.c_size_t]
            return lib
    except (OSError, AttributeError, ValueError):  # no such library or symbols: nothing recycled
        pass
    return None


def _stop_recycling(lib) -> None:
    """glibc's start thresholds again (blocks of 128 KiB or more mapped apart and returned on free), and the free
    memory held in the heap returned to the kernel (``malloc_trim``)."""
    lib.mallopt(_M_MMAP_THRESHOLD, _GLIBC_START_THRESHOLD)
    lib.mallopt(_M_TRIM_THRESHOLD, _GLIBC_START_THRESHOLD)
    lib.malloc_trim(0)


@contextmanager
def recycled_heap():
    """Inside the block, large freed blocks of memory stay in the process and are reused (glibc's ``mallopt``).

    By default glibc maps each large array apart and returns it to the kernel
    when it is freed; the next large array then gets fresh pages, and every
    first touch of a fresh page is a page fault in which the kernel also zeroes
    it.  A run allocates and frees many volume-sized temporaries (slabs, copies,
    masks), so on issue 15's 512³ packing :func:`core.pipeline.run` took
    1.34 million page faults and 2.6-3.2 s of system time (of 31 s of CPU time);
    with its freed blocks reused throughout they were 0.3 million and 0.8 s.
    The price is memory: freed blocks stay resident, so a later step that
    cannot reuse them (a larger array, or the holes between arrays still in
    use) adds to the peak (+230 MiB at the flood of that run).  So a run ends
    recycling at the step of its peak (:func:`release_recycled`), which returns
    the free memory first; leaving the last open block does the same.  So run,
    the whole-process benchmark went 18.22 -> 16.72 s on that packing and
    11.91 -> 11.12 s on the demo-like electrode, the peak above the baseline
    the same (7.63 B/voxel) or lower (7.55 -> 7.35) (``bench/RESULTS.md``,
    ``session29_heap``).

    Blocks may nest and overlap in threads: recycling is on from the first
    block entered until a :func:`release_recycled` or until no block is open;
    then glibc's start values are set again (128 KiB for both thresholds; glibc
    stops adjusting them by itself once a program sets one).  It changes only
    how memory is reused, never a value; without glibc (macOS, musl) it does
    nothing.  Large blocks that threads other than the main one allocate are
    mapped apart whatever the setting (glibc's thread heaps are 64 MiB at most).
    """
    lib = _glibc_malloc()
    if lib is None:
        yield
        return
    with _RECYCLE_LOCK:
        if _RECYCLE["open"] == 0:
            big = 2**31 - 1  # mallopt takes an int
            _RECYCLE["on"] = bool(lib.mallopt(_M_MMAP_THRESHOLD, big)) and bool(lib.mallopt(_M_TRIM_THRESHOLD, big))
        _RECYCLE["open"] += 1
    try:
        yield
    finally:
        with _RECYCLE_LOCK:
            _RECYCLE["open"] -= 1
            if _RECYCLE["open"] == 0:
                _stop_recycling(lib)
                _RECYCLE["on"] = False


def release_recycled() -> bool:
    """End :func:`recycled_heap`'s recycling before the open blocks end: the free memory held is returned to the
    kernel, and later large arrays are mapped apart again (for a run's step of peak memory).  Returns whether
    recycling was on (False outside a block, after an earlier release, or without glibc)."""
    lib = _glibc_malloc()
    if lib is None:
        return False
    with _RECYCLE_LOCK:
        if not _RECYCLE["on"]:
            return False
        _stop_recycling(lib)
        _RECYCLE["on"] = False
        return True


class SideWork:
    """Calls (no arguments) that may run on an idle core while the calling thread runs a single-threaded step.

    :meth:`start` submits them to :func:`run_on_cores`'s pool, where there are
    two cores or more (once; later calls do nothing); :meth:`results` returns
    their results in order, waiting for those started and calling the others
    there and then, so a caller whose path has no single-threaded step still
    gets them.  For work that only reads arrays nobody writes meanwhile and
    releases the GIL (numpy, hashlib, numba ``nogil`` kernels); a call must
    not wait on the pool itself.
    """

    def __init__(self, *calls):
        self._calls = list(calls)
        self._futures = None

    def add(self, call) -> int:
        """Append a call (before :meth:`start`); returns its position in :meth:`results`."""
        if self._futures is not None:
            raise RuntimeError("SideWork already started: add calls before start()")
        self._calls.append(call)
        return len(self._calls) - 1

    def start(self) -> None:
        if self._futures is None and self._calls and cores() > 1:
            self._futures = [_pool().submit(c) for c in self._calls]

    def results(self) -> list:
        if self._futures is not None:
            return [f.result() for f in self._futures]
        return [c() for c in self._calls]


def pool_submit(call, *args):
    """``call(*args)`` in :func:`run_on_cores`'s pool; a future.  The call must not wait on the pool itself."""
    return _pool().submit(call, *args)


def run_on_cores(work, n: int) -> None:
    """``work(k0, k1)`` over ``[0, n)`` in as many even pieces as there are cores, one thread each.

    For numba kernels that release the GIL (``nogil``) and write disjoint
    parts of one output.  The first piece runs in the calling thread, the
    others in one process-wide pool of plain threads (started once: starting
    threads for every call cost more than a small kernel), so it is safe
    whatever numba's threading layer and from any thread, dask's threaded
    scheduler included (the pool's threads only run kernels, never wait on it).
    """
    workers = max(1, min(cores(), int(n)))
    if workers == 1:
        work(0, n)
        return
    pool = _pool()
    bounds = [n * i // workers for i in range(workers + 1)]
    futures = [pool.submit(work, bounds[i], bounds[i + 1]) for i in range(1, workers)]
    work(bounds[0], bounds[1])
    for f in futures:
        f.result()


#: Fewest slices along axis 0 for :func:`_flood_halves` to split a volume between two threads.
SPLIT_MIN_SLICES: int = 64


def _flood_halves(blocked: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """:func:`flood_outside` of a C-contiguous volume, its two halves along axis 0 flooded by two threads.

    Each half is flooded from the seeds in it (:func:`flood_into` on the
    half as a volume of its own); then every voxel next to the seam that one
    side reached and the other side's open, unreached neighbour across it
    seeds that side again, until no crossing is left.  The reached set does
    not depend on the order of the flood, so this equals :func:`flood_outside`.
    """
    nz, ny, nx = blocked.shape
    if cores() < 2 or nz < SPLIT_MIN_SLICES:
        return flood_outside(blocked, seeds)
    plane = ny * nx
    mid = nz // 2
    reached = np.zeros(blocked.shape, np.bool_)
    lo_b, hi_b, lo_r, hi_r = blocked[:mid], blocked[mid:], reached[:mid], reached[mid:]
    lo_s, hi_s = seeds[seeds < mid * plane], seeds[seeds >= mid * plane] - mid * plane
    while lo_s.size or hi_s.size:
        halves = ((lo_b, lo_r, lo_s), (hi_b, hi_r, hi_s))
        run_on_cores(lambda k0, k1: [flood_into(*halves[k]) for k in range(k0, k1) if halves[k][2].size], 2)
        # crossings of the seam: reached on one side, open and not yet reached on the other
        below, above = reached[mid - 1], reached[mid]
        lo_s = np.flatnonzero(above & ~below & (blocked[mid - 1] == 0)).astype(np.int64) + (mid - 1) * plane
        hi_s = np.flatnonzero(below & ~above & (blocked[mid] == 0)).astype(np.int64)
    return reached


#: Most open runs per voxel for :func:`_reach_by_runs` (its tables cost 13 bytes a run: at this share at most
#: 13 / 16 of a byte per voxel); a volume with more (fine noise) is flooded by :func:`_flood_halves` instead.
RUNS_PER_VOXEL_MAX: float = 1 / 16


@numba.njit(cache=True, nogil=True)
def _count_runs(flat_b, nx, row_start, r0, r1):
    """``row_start[r + 1]`` = the number of runs of open (zero) voxels along x in row ``r``, rows ``[r0, r1)``."""
    for r in range(r0, r1):
        base = r * nx
        n = 0
        prev_open = False
        for x in range(nx):
            op = flat_b[base + x] == 0
            if op and not prev_open:
                n += 1
            prev_open = op
        row_start[r + 1] = n


@numba.njit(cache=True, nogil=True)
def _fill_runs(flat_b, nx, row_start, xa, xb, r0, r1):
    """First and last x of each open run of rows ``[r0, r1)``, at the places ``row_start`` gives them."""
    for r in range(r0, r1):
        base = r * nx
        k = row_start[r]
        x = 0
        while x < nx:
            if flat_b[base + x] == 0:
                a = x
                while x + 1 < nx and flat_b[base + x + 1] == 0:
                    x += 1
                xa[k] = a
                xb[k] = x
                k += 1
            x += 1


@numba.njit(cache=True, nogil=True, inline="always")
def _run_root(parent, a):
    """Root of run ``a`` (path halving; a root is the smallest run of its set, so ``parent[k] <= k``)."""
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@numba.njit(cache=True, nogil=True)
def _join_rows(row_start, xa, xb, parent, r, q):
    """Union every run of row ``r`` with the runs of row ``q`` it overlaps in x (face neighbours)."""
    i, i1 = row_start[r], row_start[r + 1]
    j, j1 = row_start[q], row_start[q + 1]
    while i < i1 and j < j1:
        if xa[i] <= xb[j] and xa[j] <= xb[i]:
            a = _run_root(parent, i)
            b = _run_root(parent, j)
            if a != b:
                if a < b:
                    parent[b] = a
                else:
                    parent[a] = b
        if xb[i] < xb[j]:
            i += 1
        else:
            j += 1


@numba.njit(cache=True, nogil=True)
def _join_planes(row_start, xa, xb, parent, ny, z0, z1):
    """Union the runs of planes ``[z0, z1)`` with their -y neighbours and, from plane ``z0 + 1`` on, their -z ones.

    Only runs of those planes are touched, so two calls on disjoint plane ranges can run at once.
    """
    for z in range(z0, z1):
        for y in range(ny):
            r = z * ny + y
            if y > 0:
                _join_rows(row_start, xa, xb, parent, r, r - 1)
            if z > z0:
                _join_rows(row_start, xa, xb, parent, r, r - ny)


@numba.njit(cache=True, nogil=True)
def _join_seam(row_start, xa, xb, parent, ny, z):
    """Union the runs of plane ``z`` with those of plane ``z - 1`` they overlap (the seam between two pieces)."""
    for y in range(ny):
        _join_rows(row_start, xa, xb, parent, z * ny + y, (z - 1) * ny + y)


@numba.njit(cache=True, nogil=True)
def _mark_seeded(flat_b, nx, row_start, xa, parent, seeds, mark):
    """Flatten ``parent`` (every run points at its root) and mark the roots of the runs that hold an open seed."""
    for k in range(parent.size):
        parent[k] = parent[parent[k]]  # parent[k] <= k is already flat
    for s in seeds:
        if flat_b[s] != 0:
            continue
        r = s // nx
        x = s - r * nx
        lo, hi = row_start[r], row_start[r + 1] - 1  # the last run of the row starting at or before x
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if xa[mid] <= x:
                lo = mid
            else:
                hi = mid - 1
        mark[parent[lo]] = True


@numba.njit(cache=True, nogil=True)
def _paint_runs(flat_r, nx, row_start, xa, xb, parent, mark, r0, r1):
    """``reached`` True on the runs of rows ``[r0, r1)`` whose root is marked (``parent`` flat)."""
    for r in range(r0, r1):
        base = r * nx
        for k in range(row_start[r], row_start[r + 1]):
            if mark[parent[k]]:
                for i in range(base + xa[k], base + xb[k] + 1):
                    flat_r[i] = True


def _reach_by_runs(blocked: np.ndarray, seeds: np.ndarray) -> np.ndarray | None:
    """:func:`flood_outside` of a C-contiguous volume as connected runs: None where it has too many runs.

    The open voxels of each row along x form runs; a union-find joins every
    run with the runs it overlaps in the row before it (-y) and in the plane
    before it (-z), and the sets that hold a seed are painted.  The volume is
    read row by row (a flood jumps around it), and every pass but the
    flattening of the sets and the seeds runs on all cores: rows are counted
    and painted in even pieces, runs joined in two halves of the planes and
    then across the seam between them.  The reached set is the set of open
    voxels 6-connected to a seed, the same as the flood's.  Memory: 13 bytes
    per run (first and last x, set, mark) besides the result; more than
    :data:`RUNS_PER_VOXEL_MAX` runs per voxel returns None before any of it
    is allocated.
    """
    nz, ny, nx = blocked.shape
    flat_b = blocked.reshape(-1)
    nrows = nz * ny
    row_start = np.zeros(nrows + 1, np.int64)
    run_on_cores(lambda r0, r1: _count_runs(flat_b, nx, row_start, r0, r1), nrows)
    np.cumsum(row_start, out=row_start)
    n = int(row_start[-1])
    if n > RUNS_PER_VOXEL_MAX * blocked.size:
        return None
    xa = np.empty(n, np.int32)
    xb = np.empty(n, np.int32)
    run_on_cores(lambda r0, r1: _fill_runs(flat_b, nx, row_start, xa, xb, r0, r1), nrows)
    parent = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
    bounds = []
    run_on_cores(lambda z0, z1: (bounds.append(z0), _join_planes(row_start, xa, xb, parent, ny, z0, z1)), nz)
    for z in sorted(bounds)[1:]:  # the seams between the pieces: a piece's first plane against the plane before
        _join_seam(row_start, xa, xb, parent, ny, z)
    mark = np.zeros(n, np.bool_)
    _mark_seeded(flat_b, nx, row_start, xa, parent, seeds, mark)
    reached = np.zeros(blocked.shape, np.bool_)
    flat_r = reached.reshape(-1)
    run_on_cores(lambda r0, r1: _paint_runs(flat_r, nx, row_start, xa, xb, parent, mark, r0, r1), nrows)
    return reached


def _face_seeds(blocked: np.ndarray) -> np.ndarray:
    """Flat indices of the face voxels open after 2D hole filling of each face (where :func:`outside_reach` starts)."""
    shape = blocked.shape
    seeds = []
    for axis in range(3):
        for side in (0, shape[axis] - 1):
            open_ = _open_face(np.take(blocked, side, axis=axis) != 0)
            a, b = np.nonzero(open_)
            coords = [None, None, None]
            others = [ax for ax in range(3) if ax != axis]
            coords[axis] = np.full(a.size, side, np.int64)
            coords[others[0]] = a.astype(np.int64)
            coords[others[1]] = b.astype(np.int64)
            seeds.append(np.ravel_multi_index(tuple(coords), shape))
    return np.concatenate(seeds).astype(np.int64, copy=False)  # repeats (edges, corners) are skipped by the flood


@numba.njit(cache=True, nogil=True)
def _probe(keys, key):
    """The slot of ``key`` in the open-addressing table ``keys`` (a power of two long, -1 where free), or the free
    slot where it would go (multiplicative hash, linear probing)."""
    mask = np.int64(keys.size - 1)
    h = ((key * np.int64(-7046029254386353131)) >> np.int64(32)) & mask
    while keys[h] != -1 and keys[h] != key:
        h = (h + 1) & mask
    return h


def contact_areas(labels, sz, sy, sx):
    """Shared face area (µm²) of every pair of touching labels.

    Returns
    -------
    a, b : (P,) int64
        Label pairs with ``a < b``, one entry per touching pair, in the order
        their first shared face is met (raster order of the lower voxel; +z,
        +y, +x).
    area : (P,) float64
        Each pair's face areas summed in that order.

    Notes
    -----
    The pairs are kept in an open-addressing hash table of flat arrays (key
    ``a * (max + 1) + b``, linear probing; :func:`_probe`) sized for 8 pairs
    a label, the sums in the order of first insertion (a numba typed dict
    before session 28: the same output; 0.37 s instead of 0.61 on the labels of issue 15's 512³ packing).  A
    table that gets half full is given up and the pass made again with one
    twice the size.
    """
    big = int(labels.max()) + 1
    size = 1 << max(12, int(np.ceil(np.log2(16 * big))))
    while True:
        n, pair_key, pair_area = _contact_pass(labels, sz, sy, sx, np.int64(big), size)
        if n >= 0:
            return pair_key[:n] // big, pair_key[:n] % big, pair_area[:n]
        size *= 2


@numba.njit(cache=True, nogil=True)
def _contact_pass(labels, sz, sy, sx, big, size):
    """:func:`contact_areas` with a table of ``size`` slots: ``(n, keys, areas)`` of the pairs in insertion
    order, or ``n = -1`` where more than ``size // 2`` pairs turned up."""
    nz, ny, nx = labels.shape
    areas = (sy * sx, sz * sx, sz * sy)
    keys = np.full(size, -1, np.int64)  # the table's slots: a pair's key, or -1
    slot_of = np.empty(size, np.int64)  # the pair's index in insertion order
    pair_key = np.empty(size // 2, np.int64)
    pair_area = np.empty(size // 2, np.float64)
    n = 0
    last_key = np.int64(-1)
    last = 0
    for z in range(nz):
        for y in range(ny):
            row = labels[z, y]
            row_z = labels[z + 1, y] if z + 1 < nz else row
            row_y = labels[z, y + 1] if y + 1 < ny else row
            for x in range(nx):
                l0 = row[x]
                if l0 == 0:
                    continue
                for ax in range(3):
                    if ax == 0:
                        if z + 1 >= nz:
                            continue
                        l1 = row_z[x]
                    elif ax == 1:
                        if y + 1 >= ny:
                            continue
                        l1 = row_y[x]
                    else:
                        if x + 1 >= nx:
                            continue
                        l1 = row[x + 1]
                    if l1 == 0 or l1 == l0:
                        continue
                    key = np.int64(min(l0, l1)) * big + np.int64(max(l0, l1))
                    if key != last_key:  # (a surface meets the same neighbour many faces in a row)
                        h = _probe(keys, key)
                        if keys[h] != key:  # a new pair
                            if n == size // 2:
                                return -1, pair_key, pair_area
                            keys[h] = key
                            slot_of[h] = n
                            pair_key[n] = key
                            pair_area[n] = 0.0
                            n += 1
                        last_key = key
                        last = slot_of[h]
                    pair_area[last] += areas[ax]
    return n, pair_key, pair_area


@numba.njit(cache=True, nogil=True)
def mark_present(labels, present, offset):
    """``present[offset + v] = True`` for every label ``v > 0`` of ``labels`` (C-contiguous)."""
    flat = labels.ravel()
    for i in range(flat.size):
        v = flat[i]
        if v > 0:
            present[offset + v] = True


@numba.njit(cache=True, nogil=True)
def label_counts(labels, n_lab):
    """Voxel count of each label 0..n_lab (no int64 copy of the volume, unlike bincount)."""
    out = np.zeros(n_lab + 1, np.int64)
    flat = labels.ravel()
    for i in range(flat.size):
        out[flat[i]] += 1
    return out
