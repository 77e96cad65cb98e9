"""The per-particle table of a chunked label volume, equal to :func:`core.metrics.particle_table`'s.

Every column of :data:`core.metrics.COLUMNS` is computed by the code of
:mod:`core.metrics` (its kernels and :func:`core.metrics._table_of`), run on
small pieces instead of the whole volume:

1. **Reductions over chunks.**  Each chunk gives the bounding box and the
   solid voxel count of every label it holds (reduced by min / max / sum on
   the client), and the NMC voxels of each slice along the thickness axis
   (summed: the profile of :func:`core.metrics.detect_separator_side`, as
   exact integers).
2. **Per-particle crops.**  The measures that need the whole filled particle
   (its cracks, so its volume, surface area, sphericity, crack fraction,
   centroid, extents and the face areas per neighbour kind) are computed on
   the particle's bounding box grown by one voxel (clipped at the volume's
   faces): the particles are grouped by the chunk holding their first corner
   and one task reads the union of its group's crops.

Why a crop gives the whole-volume answer exactly
------------------------------------------------
A crack of particle ``L`` (a background region enclosed by ``L`` alone,
:func:`core.metrics.fill_cracks`) lies inside ``L``'s bounding box: every
non-crack 6-neighbour of it is an ``L`` voxel, or outside the volume where
``L`` encloses it within the volume's face.  So in the crop the crack is the
same region with the same neighbours.  The one-voxel layer of the crop that
is not a face of the volume is cleared before the cracks are filled, so a
region reaching it opens to the outside (as it does in the volume: it is not
enclosed by ``L`` alone), and a region reaching a volume edge opens there as
in the volume.  Face areas count each face of the filled particle against
its neighbour (all inside the crop), and the marching-cubes area sums the
cells around the particle; both visit the particle's voxels and cells in the
same order as the whole-volume pass, so the sums are the same numbers.

Memory: a group task holds the union of its group's crops, about
``(c + d + 2)³`` voxels (``c`` the chunk edge, ``d`` the largest particle's
extent in voxels) of labels (4 B) and phases (1 B), plus one crop's working
copies.
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from .. import _kernels as K
from .._validate import check_choice, normalize_spacing
from ..codes import CBD, NMC
from ..metrics import (_fill_cracks_inplace, _mc_lut, _resolve_separator_side, _table_of, electrode_extent,
                       profile_of, side_of_profile)
from ..slices import slice_axis
from .particles import _dask_and_source, _read_window

__all__ = ["measure_chunked", "separator_side_chunked"]


def nmc_profile_chunked(phases, axis: int = 0, *, data_voxels: np.ndarray | None = None) -> np.ndarray:
    """:func:`core.metrics.nmc_profile` of a dask phase volume (per-slice NMC counts over the slice size, or over
    ``data_voxels``, each slice's voxels inside the field of view: the same numbers)."""
    check_choice(axis, "axis", (0, 1, 2))
    others = tuple(a for a in range(3) if a != axis)
    counts = np.asarray((phases == NMC).sum(axis=others, dtype=np.int64).compute(), np.int64)
    per_slice = int(np.prod([phases.shape[a] for a in others]))
    return profile_of(counts, per_slice, data_voxels)


def separator_side_chunked(phases, axis: int = 0, *, slab_frac: float = 0.1) -> tuple[str, float]:
    """:func:`core.metrics.detect_separator_side` of a dask phase volume, from per-slice NMC counts.

    Returns the same side and contrast: the profile is the same numbers
    (whole counts over the slice size, as ``mean`` of a boolean slice gives).
    """
    return side_of_profile(nmc_profile_chunked(phases, axis), slab_frac=slab_frac)


def measure_chunked(labels, phases, spacing=None, *, axis: int = 0, separator_side: str = "auto",
                    depth_from: str = "volume", profile: np.ndarray | None = None, no_data=None) -> pd.DataFrame:
    """The per-particle table of a chunked label volume.

    Parameters
    ----------
    labels : (Z, Y, X) dask.array.Array or zarr.Array of int
        Particle labels on NMC voxels, 0 elsewhere (e.g.
        :attr:`~core.chunked.ChunkedLabels.labels`).
    phases : (Z, Y, X) dask.array.Array or zarr.Array of uint8
        Phase codes, same shape.  Zarr arrays (stores the workers see) are
        read by each task itself, straight from the store, so no voxels pass
        between worker processes.
    spacing : float or (3,) float, µm
    axis : {0, 1, 2}
        Thickness axis (for ``depth_frac``).
    separator_side : {"auto", "start", "end"}
        As :func:`core.metrics.particle_table` (``"auto"`` warns when ambiguous).
    depth_from : {"volume", "electrode"}
        As :func:`core.metrics.particle_table`.
    profile : (N,) float ndarray, optional
        :func:`nmc_profile_chunked` of ``phases`` along ``axis`` where the caller has it (not read again).
    no_data : (Z, Y, X) dask.array.Array or zarr.Array of bool or uint8, optional
        Nonzero outside the field of view (:func:`core.phases.fill_region`), as
        :func:`core.metrics.particle_table`'s ``no_data``; read like ``phases``.

    Returns
    -------
    table : DataFrame
        Columns :data:`core.metrics.COLUMNS`, one row per label, equal to
        ``particle_table(labels, phases, spacing, ...)`` of the same volumes;
        ``attrs`` as there.
    """
    import dask

    labels, lab_src = _dask_and_source(labels, "labels")
    phases, ph_src = _dask_and_source(phases, "phases")
    if labels.shape != phases.shape:
        raise ValueError(f"labels {labels.shape} and phases {phases.shape} must have the same shape")
    nd_src = None
    if no_data is not None:
        no_data, nd_src = _dask_and_source(no_data, "no_data")
        if no_data.shape != labels.shape:
            raise ValueError(f"no_data {no_data.shape} and labels {labels.shape} must have the same shape")
        if nd_src is None and no_data.chunks != labels.chunks:
            no_data = no_data.rechunk(labels.chunks)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must hold whole numbers, got {labels.dtype}")
    sp = normalize_spacing(spacing)
    check_choice(depth_from, "depth_from", ("volume", "electrode"))
    if profile is None and (depth_from == "electrode" or separator_side == "auto"):
        profile = nmc_profile_chunked(phases, axis)
    separator_side = _resolve_separator_side(separator_side, axis, profile, stacklevel=3)
    span = electrode_extent(profile) if depth_from == "electrode" and slice_axis(phases.shape) != axis else None
    phases = phases.rechunk(labels.chunks) if phases.chunks != labels.chunks and ph_src is None else phases
    shape = tuple(int(n) for n in labels.shape)

    # 1. bounding boxes and solid counts, reduced over chunks
    grid = [np.cumsum((0,) + tuple(c)) for c in labels.chunks]
    origins = [tuple(int(g[i]) for g, i in zip(grid, idx)) for idx in np.ndindex(*labels.numblocks)]
    if lab_src is not None:
        blocks = [(lab_src, tuple(slice(int(g[i]), int(g[i + 1])) for g, i in zip(grid, idx)))
                  for idx in np.ndindex(*labels.numblocks)]
    else:
        blocks = labels.to_delayed().ravel()
    parts = dask.compute(*[dask.delayed(_boxes)(b, o) for b, o in zip(blocks, origins)])
    n_lab = max((int(p[0][-1]) for p in parts if p[0].size), default=0)
    lo = np.full((n_lab + 1, 3), max(shape), np.int64)
    hi = np.full((n_lab + 1, 3), -1, np.int64)
    for ids, plo, phi in parts:
        np.minimum.at(lo, ids, plo)
        np.maximum.at(hi, ids, phi)

    # 2. per-particle crops, grouped by the chunk that holds each particle's first corner
    present = np.flatnonzero(hi[:, 0] >= 0)
    present = present[present > 0]
    home = np.stack([np.searchsorted(g, lo[present, a], side="right") - 1 for a, g in enumerate(grid)], axis=1)
    order = np.lexsort(home.T[::-1])
    present, home = present[order], home[order]
    tasks = []
    cuts = np.flatnonzero(np.any(np.diff(home, axis=0) != 0, axis=1)) + 1 if present.size else []
    for ids in np.split(present, cuts) if present.size else []:
        glo = np.maximum(lo[ids].min(axis=0) - 1, 0)
        ghi = np.minimum(hi[ids].max(axis=0) + 2, shape)
        win = tuple(slice(int(a), int(b)) for a, b in zip(glo, ghi))
        lab_win = (lab_src, win) if lab_src is not None else labels[win]
        ph_win = (ph_src, win) if ph_src is not None else phases[win]
        nd_win = None if no_data is None else (nd_src, win) if nd_src is not None else no_data[win]
        tasks.append(dask.delayed(_measure_group)(lab_win, ph_win, tuple(int(a) for a in glo), shape,
                                                  ids, lo[ids], hi[ids], sp, nd_win))
    results = dask.compute(*tasks)

    counts = np.zeros((n_lab + 1, 2), np.int64)
    sums = np.zeros((n_lab + 1, 3), np.float64)
    areas = np.zeros((n_lab + 1, 5), np.float64)
    mc = np.zeros(n_lab + 1, np.float64)
    flo = np.full((n_lab + 1, 3), max(shape), np.int64)
    fhi = np.full((n_lab + 1, 3), -1, np.int64)
    for ids, r_counts, r_sums, r_lo, r_hi, r_areas, r_mc in results:
        counts[ids], sums[ids], flo[ids], fhi[ids], areas[ids], mc[ids] = r_counts, r_sums, r_lo, r_hi, r_areas, r_mc
    table = _table_of(counts, sums, flo, fhi, areas, mc, sp, shape=shape, axis=axis,
                      separator_side=separator_side, depth_extent=span)
    table.attrs.update({"spacing_um": list(sp), "axis": axis, "separator_side": separator_side})
    if span is not None:
        table.attrs["depth_extent"] = list(span)
    return table


def _boxes(block, origin):
    """Labels of one chunk with their bounding boxes (global indices): ``(ids, lo, hi)``, ids sorted, no 0."""
    block = _read_window(block)
    # the chunk's labels renumbered 1..n in increasing order, 0 kept (a lookup table: no sort of the voxels)
    present = np.bincount(block.reshape(-1), minlength=int(block.max(initial=0)) + 1) > 0
    present[0] = False
    ids = np.flatnonzero(present)
    compact_of = np.zeros(present.size, np.int32)
    compact_of[ids] = np.arange(1, ids.size + 1, dtype=np.int32)
    compact = compact_of[block]
    zero = np.zeros(block.shape, np.uint8)
    _, _, _, lo, hi = K.face_areas(compact, zero, int(ids.size), 1.0, 1.0, 1.0, NMC, CBD)
    off = np.asarray(origin, np.int64)
    return ids.astype(np.int64), lo[1:] + off, hi[1:] + off


def _measure_group(lab_win, ph_win, origin, shape, ids, lo, hi, sp, nd_win=None):
    """The whole-particle measures of the labels ``ids`` (bounding boxes ``lo``..``hi``, global) in one window;
    ``nd_win``: the window of :func:`measure_chunked`'s ``no_data``, marked :data:`core._kernels.NO_DATA` in the
    phases.

    Returns ``(ids, counts, sums, lo, hi, areas, mc)`` in the layout of
    :func:`core._kernels.face_areas` (global indices), one row per id.
    """
    lab_win = _read_window(lab_win)
    ph_win = np.asarray(_read_window(ph_win), np.uint8)
    if nd_win is not None:
        ph_win = np.where(np.asarray(_read_window(nd_win)) != 0, np.uint8(K.NO_DATA), ph_win)
    org = np.asarray(origin, np.int64)
    n = len(ids)
    counts = np.zeros((n, 2), np.int64)
    sums = np.zeros((n, 3), np.float64)
    flo = np.zeros((n, 3), np.int64)
    fhi = np.zeros((n, 3), np.int64)
    areas = np.zeros((n, 5), np.float64)
    mc = np.zeros(n, np.float64)
    lut = _mc_lut(sp)
    for k, lab in enumerate(ids):
        c0 = np.maximum(lo[k] - 1, 0)
        c1 = np.minimum(hi[k] + 2, shape)
        crop = tuple(slice(int(a - o), int(b - o)) for a, b, o in zip(c0, c1, org))
        sub = lab_win[crop]
        work = np.where(sub == lab, np.int32(1), np.where(sub != 0, np.int32(2), np.int32(0)))
        fill = work.copy()
        _clear_margin(fill, c0, c1, shape)
        _fill_cracks_inplace(fill)
        mine = fill == 1
        work[mine] = 1
        a_, c_, s_, l_, h_ = K.face_areas(work, np.ascontiguousarray(ph_win[crop]), 2, sp[0], sp[1], sp[2], NMC, CBD)
        areas[k], counts[k] = a_[1], c_[1]
        sums[k] = s_[1] + c_[1, 0] * c0
        flo[k], fhi[k] = l_[1] + c0, h_[1] + c0
        mc[k] = K.mc_areas(mine.astype(np.int32), 1, lut)[1]
    return ids, counts, sums, flo, fhi, areas, mc


def _clear_margin(crop, c0, c1, shape) -> None:
    """Set to 0 (in place) the layers of a crop (``c0``..``c1`` in a volume of ``shape``) that are not volume faces."""
    for a in range(3):
        if c0[a] > 0:
            crop[(slice(None),) * a + (0,)] = 0
        if c1[a] < shape[a]:
            crop[(slice(None),) * a + (-1,)] = 0
