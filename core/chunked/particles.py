"""Particles chunk by chunk with seamless labels: a particle cut by a chunk face gets one label.

1. **Per chunk, with a halo.**  Each chunk is read with ``halo`` voxels of
   its neighbours (clipped at the volume's faces) and separated by
   :func:`core.particles.separate_particles` as a volume of its own; the
   labels of the chunk's core are kept (numbered 1..n within the chunk) and
   written to an intermediate Zarr array, so no task holds more than its
   window and nothing volume-sized reaches the client.
2. **One global labelling.**  Across every face between two chunks, a pair
   of face-adjacent voxels ``(x, y)`` (``x`` in the lower chunk, ``y`` in the
   upper one) is a *vote* when the lower chunk's window labels both with its
   label ``a`` and the upper chunk's window labels both with its label ``b``
   (each chunk's window reaches across the face, so each says which particle
   continues there).  ``a`` and ``b`` are one particle when their votes are
   at least half of the face voxels of each (mutual majority, so a particle
   one chunk splits and the other does not is not glued to two).  The pairs
   are joined by connected components (union-find) of the graph of all
   chunk labels, and renumbered 1..n.

The halo rule
-------------
``halo >= the largest particle's diameter in voxels`` (:func:`particle_halo`):
then every particle that reaches a chunk's core lies whole inside the
chunk's window, so the window's distance transform, seeds and over-split
merge see all of it.  Without a given diameter the rule uses
:func:`estimate_max_diameter`: the diameter of the largest ball that fits in
the NMC phase, from the distance transform of a strided copy of it (one
voxel in ``f`` along each axis, at most 8 M voxels, gathered chunk by chunk),
bounded from above for the stride.  That bound makes the distance
transform exact in every core (each voxel's nearest non-NMC voxel lies
within half the diameter) and holds near-spherical particles whole in the
window; a particle longer than its largest inscribed ball is held whole as
far as the halo reaches.  The labels are *not* bit-identical to the whole-volume
ones: the quantisation of the distance transform (its step is set by the
largest distance in the volume, here in the window) and the crack filling
near the window's faces differ, so a few particles near a chunk face may be
split or merged differently; the acceptance is F1@0.5 >= 0.995 and counts
within 0.5 % against the whole-volume labels (tested).  A particle bigger
than the halo allows (wider than ``halo``) is seen cut by the window's face:
its distance transform there is too high (the face is not background), so it
may be split into pieces that the face votes then join only where both
chunks agree; it keeps one label when each window holds it as one particle.
Such particles are counted (:attr:`ChunkedLabels.beyond_halo`: the chunk
labels that touch a face of their window that is not a face of the volume)
so a run can say so.  With ``wide_halo`` (phases read from a Zarr array),
a chunk that holds such a label is first labelled again with a window of
that wider halo, and counts only what still reaches its faces then
(:attr:`ChunkedLabels.widened`): the largest inscribed ball bounds a round
particle, not an elongated one, whose length only the labels show.

Memory: a task holds a window of ``(c + 2 halo)³`` voxels (``(c + 2 wide_halo)³`` where it is labelled
again); the separation of
one window added 7.6 to 7.8 bytes a voxel of the window to the peak resident
memory (phases of the 256³ demo electrode, ``c`` = 64 and 96, ``halo`` = 36,
one task in a fresh process after warm-up).  The halo, not the volume, sets
the budget: ``workers * (8 B + 1 B) * (c + 2 halo)³`` plus each process's base.
The face planes stay on the workers (a task per pair of chunks turns them
into the few label pairs its face joins); the client holds those pairs and
one lookup table entry per chunk label.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._validate import normalize_spacing
from ..codes import NMC
from ..particles import SeparationParams, separate_particles

__all__ = ["ChunkedLabels", "MIN_HALO", "estimate_max_diameter", "particle_halo", "separate_chunked"]

#: The smallest particle halo (voxels), also that of a volume without NMC.
MIN_HALO = 4

#: Most voxels of the strided NMC copy of :func:`estimate_max_diameter`.
ESTIMATE_VOXELS = 8_000_000


def particle_halo(max_diameter_um: float, spacing) -> int:
    """The halo (voxels) of the rule: the largest particle diameter over the finest voxel edge, rounded up, + 1."""
    sp = normalize_spacing(spacing)
    if not max_diameter_um > 0:
        raise ValueError(f"max_diameter_um must be > 0 µm, got {max_diameter_um}")
    return int(math.ceil(float(max_diameter_um) / min(sp))) + 1


def estimate_max_diameter(phases, spacing=None, *, fill_cracks: bool = True,
                          max_voxels: int = ESTIMATE_VOXELS) -> float:
    """An upper bound of the diameter (µm) of the largest ball inside the NMC phase, read chunk by chunk.

    The NMC voxels of a strided copy (every ``f``-th voxel along each axis,
    ``f`` the smallest stride that keeps it at most ``max_voxels``) are
    computed by the current dask scheduler (each chunk gives its strided
    voxels); their distance transform (voxel edges ``f * spacing``, the
    volume's faces not background, cavities filled first as
    :func:`core.particles.separate_particles` does) gives the largest radius
    ``r`` on that grid.  Every voxel lies within ``f * sqrt(3) / 2`` voxel edges
    of a grid voxel, so ``2 * (r + f * sqrt(3) / 2 * max(spacing))`` bounds the
    largest inscribed ball of the full-resolution phase from above (a thin
    pore or crack the stride skips only makes it larger), except around a
    cavity the separation fills whose NMC wall is thinner than the stride:
    the strided copy may see through that wall and leave the cavity open.

    Parameters
    ----------
    phases : (Z, Y, X) dask.array.Array of uint8
        Phase codes (2 = NMC).
    spacing : float or (3,) float, µm
    fill_cracks : bool
        Fill cavities enclosed by NMC first (as the separation does).
    max_voxels : int
        Most voxels of the strided copy.

    Returns
    -------
    float
        µm; 0.0 when the volume holds no NMC.
    """
    import dask.array as da

    from ..particles import distance_transform, fill_enclosed

    if not isinstance(phases, da.Array) or phases.ndim != 3:
        raise TypeError("phases must be a 3D dask array of phase codes (z, y, x)")
    sp = normalize_spacing(spacing)
    if isinstance(max_voxels, bool) or not isinstance(max_voxels, (int, np.integer)) or max_voxels < 1:
        raise ValueError(f"max_voxels must be a whole number >= 1, got {max_voxels!r}")
    f = 1
    while math.prod(-(-int(n) // f) for n in phases.shape) > max_voxels:
        f += 1
    coarse = np.ascontiguousarray((phases[::f, ::f, ::f] == NMC).compute())
    if not coarse.any():
        return 0.0
    if fill_cracks:
        coarse = fill_enclosed(coarse)
    r = float(distance_transform(coarse, tuple(f * s for s in sp)).max())
    return 2.0 * (r + f * math.sqrt(3.0) / 2.0 * max(sp))


@dataclass(frozen=True, eq=False)
class ChunkedLabels:
    """The labels of :func:`separate_chunked`.

    Attributes
    ----------
    labels : (Z, Y, X) dask.array.Array of int32
        1..n on NMC voxels, 0 elsewhere; read from ``scratch`` (keep it until
        they are computed or written).
    n_particles : int
    halo : int
    joined : int
        Chunk labels joined across faces (the number of unions made).
    beyond_halo : int
        Chunk labels that touch a face of their chunk's window inside the
        volume: particles (or pieces) bigger than the halo allows, each
        counted once per chunk that holds it (after the wider window, where
        the chunk was labelled again).
    widened : int
        Chunks labelled again with the wider halo (``wide_halo``) because a
        label of their core reached a face of their window.
    scratch : Path
        The folder of the intermediate per-chunk labels (``chunk_labels.zarr``)
        and the lookup table (``lut.npy``) that :attr:`labels` reads.
    """

    labels: object
    n_particles: int
    halo: int
    joined: int
    scratch: Path
    beyond_halo: int = 0
    widened: int = 0


def separate_chunked(phases, spacing=None, params: SeparationParams | None = None, *, halo: int,
                     scratch: str | os.PathLike | None = None, wide_halo: int | None = None,
                     progress=None) -> ChunkedLabels:
    """Label the NMC particles of a phase volume chunk by chunk; a particle cut by chunk faces gets one label.

    Parameters
    ----------
    phases : (Z, Y, X) dask.array.Array or zarr.Array of uint8
        Phase codes (0 pore, 1 CBD, 2 NMC), e.g. :attr:`ChunkedSegmentation.phases`;
        its chunks are the chunks of the work.  A Zarr array (a store the
        workers see) is read by each task itself, its window straight from
        the store, so no voxels pass between worker processes.
    spacing : float or (3,) float, µm
    params : SeparationParams or None
    halo : int
        Voxels of the neighbours read around each chunk (see the halo rule,
        :func:`particle_halo`).
    scratch : path or None
        A new or empty folder for the intermediate per-chunk labels (the
        workers must see it); None: a new temporary folder.
    wide_halo : int or None
        A halo (voxels, at least ``halo``) for a second try: a chunk whose
        core holds a label that reaches a face of its window inside the
        volume is labelled again, once, with a window of this halo (clipped
        at the volume's faces), and keeps that labelling.  Only for phases
        given as a Zarr array (each task reads its window itself).  None:
        ``halo`` (no second try).
    progress : callable(fraction, message), optional
        Called as each chunk's labelling ends (:func:`core.chunked.cluster.compute_counting`).

    Returns
    -------
    ChunkedLabels
    """
    import dask
    import dask.array as da
    import zarr

    phases, source = _dask_and_source(phases, "phases")
    sp = normalize_spacing(spacing)
    params = params or SeparationParams()
    if not isinstance(params, SeparationParams):
        raise TypeError(f"params must be a SeparationParams, got {type(params).__name__}")
    if isinstance(halo, bool) or not isinstance(halo, (int, np.integer)) or halo < 1:
        raise ValueError(f"halo must be a whole number of voxels >= 1, got {halo!r}")
    wide_halo = halo if wide_halo is None else wide_halo
    if isinstance(wide_halo, bool) or not isinstance(wide_halo, (int, np.integer)) or wide_halo < halo:
        raise ValueError(f"wide_halo must be a whole number of voxels >= halo ({halo}), got {wide_halo!r}")
    if wide_halo > halo and source is None:
        raise ValueError("wide_halo needs the phases as a Zarr array (each task reads its wider window itself), "
                         "not a dask array")
    chunk = tuple(int(c) for c in phases.chunksize)
    if any(len(set(c[:-1])) > 1 or c[-1] > c[0] for c in phases.chunks):
        phases = phases.rechunk(chunk)
    root = Path(tempfile.mkdtemp(prefix="chunked-labels-")) if scratch is None else Path(scratch)
    root.mkdir(exist_ok=True)
    if any(root.iterdir()):
        raise ValueError(f"scratch folder {root.name} is not empty")
    store = root / "chunk_labels.zarr"
    zarr.create_array(os.fspath(store), shape=phases.shape, dtype=np.int32, chunks=chunk, zarr_format=3,
                      fill_value=0)
    grid = [np.cumsum((0,) + c) for c in phases.chunks]
    nblocks = tuple(len(c) for c in phases.chunks)
    tasks = []
    for idx in np.ndindex(*nblocks):
        core = tuple(slice(int(g[i]), int(g[i + 1])) for g, i in zip(grid, idx))
        win, inner, cut = _window(core, halo, phases.shape)
        window = (source, win) if source is not None else phases[win]
        wider = None
        if wide_halo > halo:
            win2, inner2, cut2 = _window(core, int(wide_halo), phases.shape)
            if win2 != win:  # (clipped at the volume's faces on every side: nothing wider to read)
                wider = ((source, win2), inner2, cut2)
        tasks.append(dask.delayed(_label_window, pure=False)(window, inner, core, sp, params, os.fspath(store), cut,
                                                             wider))
    # the face planes stay on the workers: one task per pair of chunks returns the pairs its votes join
    by_index = dict(zip(np.ndindex(*nblocks), tasks))
    pairs = [(idx, nxt, dask.delayed(_face_votes)(by_index[idx], by_index[nxt], axis))
             for idx, nxt, axis in _neighbours(nblocks)]
    from .cluster import compute_counting

    counts, votes = compute_counting([dask.delayed(_count)(t) for t in tasks], [v for _, _, v in pairs], progress,
                                     "chunks labelled")
    beyond = int(sum(c for _, c, _ in counts))
    widened = int(sum(w for _, _, w in counts))
    counts = np.asarray([n for n, _, _ in counts], np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).reshape(nblocks)
    total = int(counts.sum())
    lut, joined = _join([(idx, nxt, ab) for (idx, nxt, _), ab in zip(pairs, votes)], offsets, total)
    n = int(lut.max()) if lut.size else 0
    np.save(root / "lut.npy", lut)  # read (memory-mapped) by each relabelling task rather than sent with it
    stored = da.from_zarr(os.fspath(store))
    labels = stored.map_blocks(_relabel, offsets=offsets, lut_path=os.fspath(root / "lut.npy"), dtype=np.int32)
    return ChunkedLabels(labels, n, int(halo), joined, root, beyond, widened)


def _window(core, halo: int, shape):
    """The window of a chunk's ``core`` with ``halo`` (clipped at the volume), the core inside it, and which of its
    faces lie inside the volume (per axis, ``(low face, high face)``)."""
    win = tuple(slice(max(0, s.start - halo), min(n, s.stop + halo)) for s, n in zip(core, shape))
    inner = tuple(slice(s.start - w.start, s.stop - w.start) for s, w in zip(core, win))
    cut = tuple((s.start > 0, s.stop < n) for s, n in zip(win, shape))
    return win, inner, cut


def _dask_and_source(arr, name: str):
    """``(dask array, zarr array or None)`` of a 3D dask or Zarr array: the Zarr array is what tasks read themselves."""
    import dask.array as da
    import zarr

    source = None
    if isinstance(arr, zarr.Array):
        source, arr = arr, da.from_zarr(arr)
    if not isinstance(arr, da.Array) or arr.ndim != 3:
        raise TypeError(f"{name} must be a 3D dask array or zarr array (z, y, x)")
    return arr, source


def _read_window(window) -> np.ndarray:
    """The voxels of a task's window: an array as it is, or ``(zarr array, slices)`` read from the store."""
    if isinstance(window, tuple):
        source, win = window
        return source[win]
    return np.asarray(window)


def _label_window(window, inner, core, sp, params, store, cut=((False, False),) * 3, wider=None):
    """Separate one window; write its core's labels (1..n) to ``store``; return n, the face planes, the cut count
    and whether the wider window was used.

    The face planes, for each axis and side where the core has a face inside
    the window: the core's label at the face layer where the window labels
    the voxel across the face the same (0 elsewhere).  The cut count: labels
    of the core that also lie on a face of the window that ``cut`` (per axis,
    ``(low face, high face)``) marks as inside the volume.  ``wider``:
    ``(window, inner, cut)`` of a wider window, labelled instead where the cut
    count of this one is not 0 (None: none).
    """
    import zarr

    lab, core_lab, present, n_cut = _window_labels(window, inner, sp, params, cut)
    widened = False
    if n_cut and wider is not None:
        window, inner, cut = wider
        del lab, core_lab, present  # (not held beside the wider window's)
        lab, core_lab, present, n_cut = _window_labels(window, inner, sp, params, cut)
        widened = True
    m = present.size - 1
    # the core's labels renumbered 1..n in increasing order (a lookup table: no sort of the voxels)
    n = int(np.count_nonzero(present))
    local_of = np.zeros(m + 1, np.int32)
    local_of[present] = np.arange(1, n + 1, dtype=np.int32)
    zarr.open_array(store, mode="r+")[core] = local_of[core_lab]
    faces = {}
    for axis in range(3):
        for side in (-1, 1):
            s = inner[axis]
            here = s.start if side < 0 else s.stop - 1
            there = here + side
            if there < 0 or there >= lab.shape[axis]:
                continue  # the volume's face: no neighbour chunk
            a = np.take(lab, here, axis=axis)
            b = np.take(lab, there, axis=axis)
            keep = (a == b) & (a > 0)
            rest = [inner[k] for k in range(3) if k != axis]
            a, keep = a[tuple(rest)], keep[tuple(rest)]
            plane = np.zeros(a.shape, np.int32)
            if keep.any():
                plane[keep] = local_of[a[keep]]  # the core's local label
            faces[(axis, side)] = plane
    return n, faces, n_cut, widened


def _window_labels(window, inner, sp, params, cut):
    """The labels of one window (1..m), those of its core, which of 0..m the core holds (0 never), and how many of
    those also lie on a face of the window inside the volume (``cut``)."""
    window = np.asarray(_read_window(window), np.uint8)
    if (window == NMC).any():
        # the faces the window was cut at are not the volume's: particles go on beyond them
        own = tuple((not lo, not hi) for lo, hi in cut)
        lab = separate_particles(window, sp, params, faces=own)  # 1..m (uint16 or int32)
    else:
        lab = np.zeros(window.shape, np.uint16)
    del window
    core_lab = lab[inner]
    m = int(lab.max(initial=0))
    present = np.bincount(core_lab.reshape(-1), minlength=m + 1) > 0
    present[0] = False
    on_cut = [np.take(lab, 0 if side == 0 else -1, axis=axis).reshape(-1)
              for axis in range(3) for side in (0, 1) if cut[axis][side]]
    n_cut = 0
    if on_cut and present.any():
        hit = np.zeros(m + 1, bool)
        hit[np.concatenate(on_cut)] = True
        n_cut = int(np.count_nonzero(hit & present))
    return lab, core_lab, present, n_cut


def _count(result) -> tuple[int, int, int]:
    return int(result[0]), int(result[2]), int(result[3])


def _neighbours(nblocks):
    """``(index, next index, axis)`` of every pair of chunks sharing a face."""
    for idx in np.ndindex(*nblocks):
        for axis in range(3):
            if idx[axis] + 1 < nblocks[axis]:
                yield idx, tuple(i + (k == axis) for k, i in enumerate(idx)), axis


def _face_votes(lower, upper, axis: int):
    """Local label pairs ``(a, b)`` of two face-sharing chunks that the votes across their face join.

    ``lower``, ``upper``: the results of :func:`_label_window` of the chunks
    below and above the face along ``axis``.  Mutual majority: the votes for
    ``(a, b)`` are at least half of the face voxels of ``a`` and of ``b``.
    """
    a = lower[1].get((axis, 1))
    b = upper[1].get((axis, -1))
    none = (np.empty(0, np.int64), np.empty(0, np.int64))
    if a is None or b is None:
        return none
    both = (a > 0) & (b > 0)
    if not both.any():
        return none
    pa, pb = a[both].astype(np.int64), b[both].astype(np.int64)
    nb = int(pb.max()) + 1
    keys, votes = np.unique(pa * nb + pb, return_counts=True)
    ka, kb = keys // nb, keys % nb
    area_a = np.bincount(a[a > 0], minlength=int(ka.max()) + 1)
    area_b = np.bincount(b[b > 0], minlength=nb)
    ok = (2 * votes >= area_a[ka]) & (2 * votes >= area_b[kb])
    return ka[ok], kb[ok]


def _join(pairs, offsets, total):
    """Union the chunk labels the face votes join; returns (lookup table global id -> final label, unions).

    ``pairs``: ``(index, next index, (a, b))`` with the local labels joined
    across the face between the chunks at ``index`` and ``next index``.
    """
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    rows = [a + offsets[idx] - 1 for idx, _, (a, _) in pairs]
    cols = [b + offsets[nxt] - 1 for _, nxt, (_, b) in pairs]
    r = np.concatenate(rows) if rows else np.empty(0, np.int64)
    c = np.concatenate(cols) if cols else np.empty(0, np.int64)
    graph = sparse.coo_matrix((np.ones(r.size, np.int8), (r, c)), shape=(total, total))
    _, comp = connected_components(graph, directed=False)
    # final labels 1..n, numbered in the order of each component's first chunk label
    _, first = np.unique(comp, return_index=True)
    order = np.empty(first.size, np.int64)
    order[np.argsort(first)] = np.arange(first.size)
    lut = np.concatenate([[0], order[comp] + 1]).astype(np.int32)
    return lut, int(r.size)


def _relabel(block, *, offsets, lut_path, block_info=None):
    """Final labels of one chunk: its local labels plus the chunk's offset, through the lookup table."""
    idx = tuple(block_info[0]["chunk-location"])
    lut = np.load(lut_path, mmap_mode="r")
    out = np.zeros(block.shape, np.int32)
    on = block > 0
    out[on] = lut[block[on].astype(np.int64) + int(offsets[idx])]
    return out
