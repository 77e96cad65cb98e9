"""Numba kernels shared by the measuring and separating modules.

Every kernel makes one pass over a volume; none loops over particles in Python.
Face conventions: a face is shared by two 6-neighbour voxels; its area is the
product of the two spacings perpendicular to the axis it is normal to.
"""

from __future__ import annotations

import numba
import numpy as np

# interface categories returned by ``face_areas``
CAT_PORE, CAT_CBD, CAT_PARTICLE, CAT_EDGE, CAT_CRACK = 0, 1, 2, 3, 4
N_CAT = 5


@numba.njit(cache=True, nogil=True)
def crack_owners(comp, n_comp, labels):
    """Owner label of each background component, 0 if not a crack.

    A background component (``comp`` > 0, 6-connected) is a crack of particle
    ``L`` when it does not touch the volume edge and every particle face around
    it belongs to ``L``.
    """
    nz, ny, nx = labels.shape
    first = np.zeros(n_comp + 1, np.int64)
    bad = np.zeros(n_comp + 1, np.bool_)
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                c = comp[z, y, x]
                if c == 0:
                    continue
                if z == 0 or y == 0 or x == 0 or z == nz - 1 or y == ny - 1 or x == nx - 1:
                    bad[c] = True
                    continue
                for d in range(6):
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
                    lab = labels[zz, yy, xx]
                    if lab > 0:
                        if first[c] == 0:
                            first[c] = lab
                        elif first[c] != lab:
                            bad[c] = True
    out = np.zeros(n_comp + 1, np.int64)
    for c in range(1, n_comp + 1):
        if not bad[c]:
            out[c] = first[c]
    return out


@numba.njit(cache=True, nogil=True)
def face_areas(filled, solid_labels, phases, n_lab, sz, sy, sx, nmc_code, cbd_code):
    """Per-label interface areas and voxel moments in one pass.

    Parameters
    ----------
    filled : (Z, Y, X) int array
        Particle labels with enclosed cracks assigned to their particle.
    solid_labels : (Z, Y, X) int array
        Particle labels on solid voxels only (cracks are 0).
    phases : (Z, Y, X) uint8
        Phase codes.
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
    """
    nz, ny, nx = filled.shape
    az = sy * sx
    ay = sz * sx
    ax = sz * sy
    areas = np.zeros((n_lab + 1, 5), np.float64)
    counts = np.zeros((n_lab + 1, 2), np.int64)
    sums = np.zeros((n_lab + 1, 3), np.float64)
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                lab = filled[z, y, x]
                if lab == 0:
                    continue
                own_solid = solid_labels[z, y, x] == lab
                counts[lab, 0] += 1
                if own_solid:
                    counts[lab, 1] += 1
                sums[lab, 0] += z
                sums[lab, 1] += y
                sums[lab, 2] += x
                for d in range(6):
                    zz, yy, xx = z, y, x
                    if d == 0:
                        zz -= 1
                        a = az
                    elif d == 1:
                        zz += 1
                        a = az
                    elif d == 2:
                        yy -= 1
                        a = ay
                    elif d == 3:
                        yy += 1
                        a = ay
                    elif d == 4:
                        xx -= 1
                        a = ax
                    else:
                        xx += 1
                        a = ax
                    if zz < 0 or yy < 0 or xx < 0 or zz >= nz or yy >= ny or xx >= nx:
                        areas[lab, 3] += a
                        continue
                    other = filled[zz, yy, xx]
                    if other == lab:
                        # solid/crack face inside the filled particle
                        if own_solid and solid_labels[zz, yy, xx] != lab:
                            areas[lab, 4] += a
                        continue
                    if other > 0:
                        areas[lab, 2] += a
                        continue
                    p = phases[zz, yy, xx]
                    if p == nmc_code:
                        areas[lab, 2] += a
                    elif p == cbd_code:
                        areas[lab, 1] += a
                    else:
                        areas[lab, 0] += a
    return areas, counts, sums


@numba.njit(cache=True, nogil=True)
def mc_areas(filled, n_lab, lut):
    """Marching-cubes surface area of every label from a 256-entry cell table.

    The volume is treated as padded by one background voxel on every side, so
    each particle's surface is closed.  ``lut[c]`` is the area of the
    marching-cubes triangles in a 2x2x2 cell whose corner occupancy bits are
    ``c`` (bit order: z*4 + y*2 + x).
    """
    nz, ny, nx = filled.shape
    out = np.zeros(n_lab + 1, np.float64)
    labs = np.zeros(8, filled.dtype)
    for z in range(-1, nz):
        for y in range(-1, ny):
            for x in range(-1, nx):
                any_lab = False
                for k in range(8):
                    zz = z + (k >> 2)
                    yy = y + ((k >> 1) & 1)
                    xx = x + (k & 1)
                    if zz < 0 or yy < 0 or xx < 0 or zz >= nz or yy >= ny or xx >= nx:
                        labs[k] = 0
                    else:
                        labs[k] = filled[zz, yy, xx]
                        if labs[k] != 0:
                            any_lab = True
                if not any_lab:
                    continue
                for k in range(8):
                    lab = labs[k]
                    if lab == 0:
                        continue
                    seen = False
                    for j in range(k):
                        if labs[j] == lab:
                            seen = True
                            break
                    if seen:
                        continue
                    code = 0
                    for j in range(8):
                        if labs[j] == lab:
                            code |= 1 << j
                    out[lab] += lut[code]
    return out


@numba.njit(cache=True, nogil=True)
def label_contacts(labels):
    """Face counts between different positive labels.

    Returns
    -------
    a, b : (K,) int64
        Label pairs with ``a < b`` (unsorted, may repeat: one entry per face).
    axis : (K,) int8
        Axis (0, 1, 2) the face is normal to.
    """
    nz, ny, nx = labels.shape
    n = 0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                l0 = labels[z, y, x]
                if l0 == 0:
                    continue
                if z + 1 < nz and labels[z + 1, y, x] != 0 and labels[z + 1, y, x] != l0:
                    n += 1
                if y + 1 < ny and labels[z, y + 1, x] != 0 and labels[z, y + 1, x] != l0:
                    n += 1
                if x + 1 < nx and labels[z, y, x + 1] != 0 and labels[z, y, x + 1] != l0:
                    n += 1
    a = np.empty(n, np.int64)
    b = np.empty(n, np.int64)
    ax = np.empty(n, np.int8)
    i = 0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                l0 = labels[z, y, x]
                if l0 == 0:
                    continue
                for d in range(3):
                    zz, yy, xx = z, y, x
                    if d == 0:
                        zz += 1
                        if zz >= nz:
                            continue
                    elif d == 1:
                        yy += 1
                        if yy >= ny:
                            continue
                    else:
                        xx += 1
                        if xx >= nx:
                            continue
                    l1 = labels[zz, yy, xx]
                    if l1 != 0 and l1 != l0:
                        a[i] = min(l0, l1)
                        b[i] = max(l0, l1)
                        ax[i] = d
                        i += 1
    return a, b, ax


@numba.njit(cache=True, nogil=True)
def remap_inplace(labels, lut):
    """``labels[...] = lut[labels]`` without a temporary volume."""
    flat = labels.ravel()
    for i in range(flat.size):
        flat[i] = lut[flat[i]]
