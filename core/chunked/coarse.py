"""Coarse-grid particle separation on the chunked engine (:mod:`core.coarse` chunk by chunk).

:func:`separate_coarse_chunked` runs the three steps of :mod:`core.coarse`
with ``factor = f > 1`` without holding the full-resolution volume:

1. **Coarse NMC, chunk by chunk.**  One task per block of the coarse grid
   (``c // f`` coarse voxels a side, ``c`` the chunk edge of the phases)
   reads its ``f``-aligned full-resolution slab of the phases from the store
   and reduces it (:func:`core.coarse.block_nmc`, the same majority as the
   whole volume's, since the blocks are aligned to index 0).
2. **Separation on the coarse grid.**  A coarse volume of at most
   :data:`COARSE_WHOLE_VOXELS` voxels is gathered in this process and
   separated whole (:func:`core.particles.separate_particles` at ``f ×
   spacing``): the labels are then *identical* to those of the whole-volume
   path with the same factor (:func:`core.coarse.separate_coarse`).  A bigger
   one is written to a coarse phases Zarr (chunks of ``c`` coarse voxels) and
   separated by :func:`~core.chunked.separate_chunked` with the halo rule at
   the coarse voxel size (``halo`` in coarse voxels,
   :func:`~core.chunked.particle_halo` of the diameter over ``f × spacing``).
   The coarse labels go to a scratch Zarr.
3. **Full-resolution labels, chunk by chunk.**  One task per chunk reads its
   chunk of the phases and the coarse labels over its blocks plus
   :data:`core.coarse.GROW` coarse voxels on each side (a window of about
   ``(c / f + 2 GROW + 1)³`` coarse voxels), grows them
   (:func:`core.coarse.grow_labels`; the margin makes the grown values in the
   chunk equal to those of the whole coarse volume), brings them back onto
   the chunk's NMC (:func:`core.coarse.upsample_labels`), writes the chunk to
   the labels store and returns its unlabelled NMC voxels.

Memory: step 1 and 3 tasks hold a chunk (``c³``, about 10 bytes a voxel);
step 2 holds the coarse volume (about 15 bytes a coarse voxel for the
separation, so at most about 0.7 GiB at :data:`COARSE_WHOLE_VOXELS`) or,
chunked, the windows of :func:`~core.chunked.separate_chunked` on the coarse grid.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._validate import normalize_spacing
from ..coarse import GROW, block_nmc, check_factor, grow_labels, upsample_labels
from ..codes import NMC

__all__ = ["COARSE_WHOLE_VOXELS", "ChunkedCoarseLabels", "coarse_nmc_chunked", "separate_coarse_chunked"]

#: The largest coarse volume (voxels) separated whole in the client process rather than chunk by chunk.
COARSE_WHOLE_VOXELS = 48_000_000


@dataclass(frozen=True, eq=False)
class ChunkedCoarseLabels:
    """What :func:`separate_coarse_chunked` returns (the labels are in the store it wrote).

    Attributes
    ----------
    n_particles : int
        Labels 1..n.
    factor : int
    coarse_shape : (3,) int
    whole : bool
        The coarse volume was separated whole (else chunk by chunk).
    halo : int or None
        Coarse voxels of :func:`~core.chunked.separate_chunked`'s halo (None when whole).
    joined, beyond_halo : int
        Of the chunked coarse separation (0 when whole).
    unlabelled : int
        Full-resolution NMC voxels left 0 (see :mod:`core.coarse`).
    widened : int
        Chunks of the chunked coarse separation labelled again with ``wide_halo`` (0 when whole).
    """

    n_particles: int
    factor: int
    coarse_shape: tuple[int, int, int]
    whole: bool
    halo: int | None
    joined: int
    beyond_halo: int
    unlabelled: int
    widened: int = 0


def coarse_nmc_chunked(phases, factor: int):
    """The coarse NMC of :func:`core.coarse.block_nmc`, as a dask array computed chunk by chunk.

    Parameters
    ----------
    phases : (Z, Y, X) dask.array.Array or zarr.Array of uint8
        A Zarr array is read by each task itself (its slab straight from the store).
    factor : int
        1..:data:`core.coarse.MAX_FACTOR`.

    Returns
    -------
    (ceil(Z / f), ceil(Y / f), ceil(X / f)) dask.array.Array of uint8
        In chunks of ``max(1, c // f)`` coarse voxels, ``c`` the phases' chunk edge.
    """
    import dask
    import dask.array as da

    from .particles import _dask_and_source

    arr, source = _dask_and_source(phases, "phases")
    f = check_factor(factor, "factor")
    if f == "auto":
        raise ValueError("factor must be a whole number here, not 'auto'")
    shape = tuple(int(n) for n in arr.shape)
    cshape = tuple(-(-n // f) for n in shape)
    cc = max(1, int(max(arr.chunksize)) // f)
    edges = [list(range(0, n, cc)) + [n] for n in cshape]
    blocks = np.empty(tuple(len(e) - 1 for e in edges), object)
    for idx in np.ndindex(*blocks.shape):
        cs = tuple(slice(e[i], e[i + 1]) for e, i in zip(edges, idx))
        fs = tuple(slice(s.start * f, min(n, s.stop * f)) for s, n in zip(cs, shape))
        window = (source, fs) if source is not None else arr[fs]
        out = tuple(s.stop - s.start for s in cs)
        blocks[idx] = da.from_delayed(dask.delayed(_reduce_slab, pure=True)(window, f), out, np.uint8)
    return da.block(blocks.tolist())


def _reduce_slab(window, f: int) -> np.ndarray:
    from .particles import _read_window

    return block_nmc(np.asarray(_read_window(window)) == NMC, f)


def separate_coarse_chunked(phases, spacing, params=None, factor: int = 2, *, out: str | os.PathLike,
                            scratch: str | os.PathLike, halo: int | None = None,
                            max_diameter_um: float | None = None, wide_halo: int | None = None, grow: int = GROW,
                            whole_voxels: int = COARSE_WHOLE_VOXELS, name: str = "labels") -> ChunkedCoarseLabels:
    """Separate the particles of a chunked phase volume on the grid reduced by ``factor``; write full-res labels.

    Parameters
    ----------
    phases : (Z, Y, X) zarr.Array or dask.array.Array of uint8
        Phase codes; its chunks are the chunks of the work (a Zarr array in a
        store the workers see is read by each task itself).
    spacing : float or (3,) float, µm
        Of ``phases``.
    params : core.particles.SeparationParams or None
    factor : int
        2..:data:`core.coarse.MAX_FACTOR` (1: use :func:`~core.chunked.separate_chunked`).
    out : path
        The new labels store (OME-Zarr, array ``out/0``, int32, the chunks of ``phases``).
    scratch : path
        A new or empty folder for the coarse volumes (the workers must see it).
    halo : int or None
        Coarse voxels of the chunked coarse separation's halo; None: from
        ``max_diameter_um`` (:func:`~core.chunked.particle_halo` at ``factor ×
        spacing``).  Needed only when the coarse volume is bigger than ``whole_voxels``.
    max_diameter_um : float or None
        The largest particle's diameter (µm).
    wide_halo : int or None
        Coarse voxels of the second try's halo (:func:`~core.chunked.separate_chunked`; at least ``halo``); None:
        no second try.
    grow : int
        Coarse voxels the coarse labels grow by (:func:`core.coarse.grow_labels`).
    whole_voxels : int
        The largest coarse volume separated whole.
    name : str
        The image's name in the store's metadata.

    Returns
    -------
    ChunkedCoarseLabels
    """
    import dask
    import zarr

    from ..particles import SeparationParams, separate_particles
    from .particles import MIN_HALO, _dask_and_source, particle_halo, separate_chunked
    from .store import create_zarr, write_zarr

    arr, source = _dask_and_source(phases, "phases")
    sp = normalize_spacing(spacing)
    f = check_factor(factor, "factor")
    if f == "auto" or f < 2:
        raise ValueError(f"factor must be a whole number from 2 to 4 here, got {factor!r}")
    params = params or SeparationParams()
    if not isinstance(params, SeparationParams):
        raise TypeError(f"params must be a SeparationParams, got {type(params).__name__}")
    if isinstance(whole_voxels, bool) or not isinstance(whole_voxels, (int, np.integer)) or whole_voxels < 0:
        raise ValueError(f"whole_voxels must be a whole number >= 0, got {whole_voxels!r}")
    root = Path(scratch)
    root.mkdir(exist_ok=True)
    if any(root.iterdir()):
        raise ValueError(f"scratch folder {root.name} is not empty")
    chunk = tuple(int(c) for c in arr.chunksize)
    if any(len(set(c[:-1])) > 1 or c[-1] > c[0] for c in arr.chunks):
        arr, source = arr.rechunk(chunk), None
    csp = tuple(f * s for s in sp)
    coarse = coarse_nmc_chunked(source if source is not None else arr, f)
    cshape = tuple(int(n) for n in coarse.shape)
    coarse_path = root / "coarse_labels.zarr"
    whole = math.prod(cshape) <= whole_voxels
    joined = beyond = widened = 0
    if whole:
        cph = np.ascontiguousarray(coarse.compute())
        if (cph == NMC).any():
            cl = separate_particles(cph, csp, params)
        else:
            cl = np.zeros(cshape, np.int32)
        del cph
        n = int(cl.max(initial=0))
        zarr.create_array(os.fspath(coarse_path), shape=cshape, dtype=np.int32, chunks=coarse.chunksize,
                          zarr_format=3, fill_value=0)[...] = cl
        del cl
        halo = None
    else:
        if halo is None:
            if max_diameter_um is None:
                raise ValueError("a coarse volume separated chunk by chunk needs halo or max_diameter_um")
            halo = max(MIN_HALO, particle_halo(max_diameter_um, csp)) if max_diameter_um > 0 else MIN_HALO
        write_zarr(coarse.rechunk(chunk), root / "coarse_phases.zarr", spacing=csp, name="coarse phases")
        cstore = zarr.open_array(os.fspath(root / "coarse_phases.zarr" / "0"), mode="r")
        res = separate_chunked(cstore, csp, params, halo=int(halo), scratch=root / "separation",
                               wide_halo=None if wide_halo is None else max(int(halo), int(wide_halo)))
        n, joined, beyond, widened = res.n_particles, res.joined, res.beyond_halo, res.widened
        write_zarr(res.labels, coarse_path, spacing=csp, name="coarse labels")
        coarse_path = coarse_path / "0"
    target = create_zarr(out, arr.shape, np.int32, chunk, spacing=sp, name=name)
    target_path = os.fspath(Path(out) / "0")
    grid = [np.cumsum((0,) + c) for c in arr.chunks]
    tasks = []
    for idx in np.ndindex(*(len(c) for c in arr.chunks)):
        core = tuple(slice(int(g[i]), int(g[i + 1])) for g, i in zip(grid, idx))
        window = (source, core) if source is not None else arr[core]
        tasks.append(dask.delayed(_fine_chunk, pure=False)(window, core, os.fspath(coarse_path), f, int(grow),
                                                          target_path))
    del target
    unlabelled = int(sum(dask.compute(*tasks)))
    return ChunkedCoarseLabels(n, f, cshape, whole, None if halo is None else int(halo), int(joined), int(beyond),
                               unlabelled, int(widened))


def _fine_chunk(window, core, coarse_path: str, f: int, grow: int, target_path: str) -> int:
    """Full-resolution labels of one chunk from the coarse labels around it; write them; the unlabelled NMC voxels."""
    import zarr

    from .particles import _read_window

    nmc = np.asarray(_read_window(window)) == NMC
    coarse = zarr.open_array(coarse_path, mode="r")
    lo = tuple(max(0, s.start // f - grow) for s in core)
    hi = tuple(min(n, -(-s.stop // f) + grow) for s, n in zip(core, coarse.shape))
    cl = grow_labels(coarse[tuple(slice(a, b) for a, b in zip(lo, hi))], grow)
    lab = upsample_labels(cl, f, nmc, start=tuple(s.start for s in core), coarse_start=lo)
    zarr.open_array(target_path, mode="r+")[core] = lab
    return int(np.count_nonzero(nmc & (lab == 0)))
