"""Small islands of a phase merged into the phase around them."""

from __future__ import annotations

import numba
import numpy as np

from .. import _kernels as K
from .._validate import check_phases
from ..codes import CBD, NMC, PORE

__all__ = ["remove_small_islands"]


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
    min_size = int(min_size)
    nz = out.shape[0]
    state = np.zeros(out.shape, np.uint8)
    stacks = [np.zeros(min_size, np.int64) for _ in range(2)]
    # An island's fill spans fewer than min_size slices, so fills started below slice `mid` and fills started
    # from mid + 2 * min_size on never touch the same voxels: those two ranges run side by side, the band between
    # them after.  Each component's fate does not depend on the order its voxels are met in (it is small or not,
    # and joins the phase of most faces, which this pass does not change), so the result is that of one pass.
    mid = nz // 2
    split = nz >= 4 * min_size + 64 and K.cores() > 1
    for code in (CBD, PORE, NMC):
        state[...] = 0
        c = np.uint8(code)
        if split:
            K.run_side_by_side(lambda: _islands_pass(out, c, min_size, state, stacks[0], 0, mid),
                               lambda: _islands_pass(out, c, min_size, state, stacks[1], mid + 2 * min_size, nz))
            _islands_pass(out, c, min_size, state, stacks[0], mid, mid + 2 * min_size)
        else:
            _islands_pass(out, c, min_size, state, stacks[0], 0, nz)


@numba.njit(cache=True, nogil=True)
def _islands_pass(phases, code, min_size, state, stack, z0, z1):
    """Merge the 6-connected components of ``code`` smaller than ``min_size`` into their surroundings.

    A bounded flood fill from each voxel not yet reached: it stops as soon as
    it holds ``min_size`` voxels or touches a voxel known to be in a big
    component.  A small component joins the phase that shares most faces
    with it (ties to the lower code); one without any neighbour stays.
    ``state``: 0 unknown, 1 done, 2 in the current fill.  Fills start from
    the voxels of slices ``[z0, z1)`` only (and reach up to ``min_size - 1``
    slices beyond).
    """
    nz, ny, nx = phases.shape
    flat = phases.ravel()
    st = state.ravel()
    counts = np.zeros(3, np.int64)
    inv_plane = 1.0 / (ny * nx)  # K.unravel_recip: no integer division per voxel
    inv_nx = 1.0 / nx
    x_of_i = -1  # i % nx, counted along
    for i in range(z0 * ny * nx, z1 * ny * nx):
        x_of_i += 1
        if x_of_i == nx:
            x_of_i = 0
        if flat[i] != code or st[i] != 0:
            continue
        if x_of_i != 0 and flat[i - 1] == code and st[i - 1] == 1:
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
            z, y, x = K.unravel_recip(j, ny, nx, inv_plane, inv_nx)
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
            z, y, x = K.unravel_recip(j, ny, nx, inv_plane, inv_nx)
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
