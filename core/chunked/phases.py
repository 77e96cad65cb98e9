"""Phases chunk by chunk, identical to the whole-volume :func:`core.phases.segment_detailed`.

Two kinds of work, as in the whole-volume engine:

1. **Global values, once.**  The thresholds, the NMC grey value and the
   fitted blur come from the code of :mod:`core.phases` (``_image_model``,
   ``_image_sigma``), fed with the same strided sample of the denoised volume
   and the same central block (at most 128³ voxels); only those voxels are
   read for them (the sample is gathered chunk by chunk and put back in the
   whole-volume order, so the thresholds are the same numbers).
2. **Per-voxel steps, chunk by chunk with a halo** (``dask.array.map_overlap``):
   denoise, threshold and partial-volume correction in one pass, the removal
   of small islands in a second pass over the phases.

The halo rule (voxels added on each side of a chunk, along every axis)
---------------------------------------------------------------------
``phase_halo = denoise_halo + reach`` where ``denoise_halo`` is
``ceil(4 * denoise_size) + 2`` for a Gaussian or median denoising (0 for
none; scipy truncates a Gaussian at ``int(4 sigma + 0.5)``, a median window
reaches ``size // 2``) and ``reach = 6 + int(4 * pv_sigma + 0.5)`` with the
partial-volume correction (its NMC rim growth reads NMC ``3 +
RIM_WINDOW_HALF`` = 6 face steps away, its spill is a Gaussian of
``pv_sigma``; :func:`core.phases.partial_volume._reach`), else 0.  A voxel of the chunk then
sees every voxel its result depends on, with the values the whole volume
gives them.

``island_halo = 3 * min_island`` (0 when ``min_island <= 1``): an island
smaller than ``m = min_island`` voxels lies within ``m - 2`` face steps of
any of its voxels and its neighbours within ``m - 1``; a component of ``m`` or
more voxels shows at least ``m`` of them within ``m - 1`` steps of any voxel.
So one pass is decided exactly ``m`` voxels inside a window, and the three
passes (CBD, pore, NMC, each reading the result of the one before) ``3 m``
inside.  Default parameters (``min_island=8``, blur about 1 voxel, no
denoising): 10 voxels for the phases, 24 for the islands.

What is exact, and what is not
------------------------------
* Every step is exact (``np.array_equal`` with :func:`~core.phases.segment`)
  when the NMC rim growth's window sums are: they are running sums in
  float64 along whole rows and columns of the array it is given (a window
  here, the whole cross-section there), so they agree wherever float64 adds
  their float32 terms without rounding, i.e. wherever a running sum stays
  below 2**29 times the smallest non-zero term added to it.  That always
  holds for integer grey values without denoising (whole numbers below
  2**53); for floating-point or denoised grey values it holds unless values
  near 0 sit in rows whose sums are 5e8 times larger, where a rare voxel of
  the grown NMC rim could differ.  Tested equal on uint16 and float32
  volumes, raw and Gaussian- or median-denoised, with non-finite voxels.
* ``denoise="nlm"`` is refused: its noise level is estimated from one slice of
  the volume it is given, so no chunking equals the whole volume.

Memory budget (the aim, per worker)
-----------------------------------
A task holds one window of ``(c + 2 h)³`` voxels, ``c`` the chunk edge and
``h`` the halo: its input voxels plus the working arrays of the steps
(float32 denoised grey values, phases, grown phases, capped distance,
float32 spill).  Measured: one window's phase and island steps added 11.6 to
11.9 bytes a voxel of the window to the peak resident memory (the 256³
demo electrode, ``c`` = 64 and 128, ``h`` = 33, one task in a fresh process
after warm-up).  So the aim is::

    workers * (12 B + itemsize) * (c + 2 h)³  +  the client's global values  +  each process's base

where the global values are the sample (at most about 2 M float32 voxels)
and the 128³ central block with its blur fit, and the base is Python, numpy,
numba and dask in each worker process.  With ``c = 128``, ``h = 33`` and
uint16 input: about 100 MiB per worker for the window.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np

from ..phases import SegmentParams
from ..phases.blur import SigmaOrigin, sigma_origin
from ..phases.denoise import _denoise_halo, _sample_blocks, denoise
from ..phases.islands import _remove_small_islands_inplace
from ..phases.params import NONFINITE_MAX_SHARE, nonfinite_fill
from ..phases.partial_volume import _correct_rows, _image_sigma, _reach
from ..phases.segment import _Globals
from ..phases.threshold import _image_model, _threshold
from .inputs import DEFAULT_CHUNK, LazyVolume, as_dask

__all__ = ["ChunkedSegmentation", "island_halo", "phase_halo", "phases_from_map", "remove_islands_chunked",
           "segment_chunked"]


def phase_halo(params: SegmentParams, pv_sigma: float | None) -> int:
    """Halo (voxels, each side, every axis) of the denoise + threshold + partial-volume pass.

    ``denoise_halo + reach``: see the module docstring.  ``pv_sigma`` is the
    blur the correction uses (the resolved one).
    """
    reach = _reach(pv_sigma) if params.partial_volume else 0
    return _denoise_halo(params) + reach


def island_halo(min_island: int) -> int:
    """Halo (voxels) of the small-island removal: ``3 * min_island``, 0 when it is off (see the module docstring)."""
    return 3 * int(min_island) if min_island > 1 else 0


@dataclass(frozen=True, eq=False)
class ChunkedSegmentation:
    """The lazy phases of :func:`segment_chunked` and what was resolved for them.

    Attributes
    ----------
    phases : (Z, Y, X) dask.array.Array of uint8
        0 = pore, 1 = CBD, 2 = NMC; nothing computed yet (compute it, or write
        it with :func:`~core.chunked.write_zarr`).
    params : SegmentParams
        ``low``, ``high`` and ``pv_sigma`` filled in, as :class:`~core.phases.SegmentResult`.
    pv_sigma_origin : {"given", "fitted", "fitted_at_bound"} or None
    halo : int
        Halo of the phase pass (:func:`phase_halo`).
    island_halo : int
        Halo of the island pass (:func:`island_halo`).
    """

    phases: object
    params: SegmentParams
    pv_sigma_origin: SigmaOrigin | None
    halo: int
    island_halo: int


def segment_chunked(volume, params: SegmentParams | None = None, *,
                    chunks: int | tuple[int, int, int] = DEFAULT_CHUNK, islands: bool = True,
                    exclude: float | None = None, shading: dict | None = None,
                    keep: float | None = None) -> ChunkedSegmentation:
    """Segment a greyscale volume chunk by chunk; the phases equal :func:`core.phases.segment`'s.

    The global values are computed now, with the current dask scheduler (a
    ``distributed.Client`` inside :func:`~core.chunked.cluster`), reading the
    volume once for the check and then only the sample; the per-voxel steps
    are returned as a lazy dask array.

    Parameters
    ----------
    volume : (Z, Y, X) dask.array.Array, LazyVolume or ndarray
        Greyscale; a numpy array is cut into ``chunks`` (a dask array keeps its own).
    params : SegmentParams or None
        As for :func:`core.phases.segment`; ``denoise="nlm"`` is refused.
    chunks : int or (3,) int
        Chunk edge of a numpy input.
    islands : bool
        False: leave the small-island pass out of ``phases`` (run it later with
        :func:`remove_islands_chunked`, e.g. on a store the first pass was
        written to, so that no worker holds the first pass's chunks for the second).
    exclude : float or None
        A fill's grey value (:func:`core.phases.fill_reading`, read by the caller), left out of the sample the
        thresholds are suggested from, as :func:`core.phases.segment_detailed` leaves it.
    shading : dict or None
        With ``params.flatten``: the volume's :func:`core.phases.shading_reading` (read by the caller); every
        chunk is flattened by it first (:func:`core.phases.shading.apply_flattening`, the numbers of
        :func:`core.phases.flatten_shading`, so the flattened volume is the whole-volume analysis's).
    keep : float or None
        With ``shading``: a fill's grey value, which the flattening leaves as it is.

    Returns
    -------
    ChunkedSegmentation

    Raises
    ------
    TypeError, ValueError
        As :func:`core.phases.check_greyscale` for the volume; ``nlm`` denoising.
    """
    params = params or SegmentParams()
    if not isinstance(params, SegmentParams):
        raise TypeError(f"params must be a SegmentParams, got {type(params).__name__}")
    if params.denoise == "nlm" and params.denoise_size > 0:
        raise ValueError("denoise='nlm' cannot run chunk-wise (its noise level is estimated from the volume it "
                         "is given, so chunks would differ from the whole volume): use 'gaussian', 'median' or none")
    vol = _as_volume(volume, chunks)
    _check_greyscale_lazy(vol)
    if params.flatten:
        if shading is None:
            raise ValueError("flatten needs the volume's shading reading (core.phases.shading_reading)")
        vol = _flattened(vol, shading, keep)
    fill = _nan_fill_lazy(vol)
    dn = _denoise_halo(params)
    denoised = _map(vol, _denoise_block, dn, np.float32, params=params, nan_fill=fill)
    g = _global_values_lazy(vol.shape, params, denoised, exclude=exclude)
    h = phase_halo(params, g.pv_sigma)
    phases = _map(vol, _phase_block, h, np.uint8, params=params, g=g, nan_fill=fill)
    ih = island_halo(params.min_island)
    if ih and islands:
        phases = remove_islands_chunked(phases, params.min_island)
    if phases.chunks != vol.chunks:
        phases = phases.rechunk(vol.chunks)
    origin = sigma_origin(g.pv_sigma, given=params.pv_sigma is not None) if g.pv_sigma is not None else None
    resolved = replace(params, low=float(g.low), high=float(g.high), pv_sigma=g.pv_sigma)
    return ChunkedSegmentation(phases, resolved, origin, h, ih)


def _flattened(vol, shading: dict, keep: float | None = None):
    """``vol`` (dask) with every slice mapped by the shading reading's gain and shift (elementwise: the chunks stay)."""
    import dask.array as da

    from ..phases.shading import apply_flattening, flatten_coefficients

    gain, shift = flatten_coefficients(shading, vol.shape[0])
    g = da.from_array(gain.reshape(-1, 1, 1), chunks=(vol.chunks[0], 1, 1))
    s = da.from_array(shift.reshape(-1, 1, 1), chunks=(vol.chunks[0], 1, 1))
    return da.map_blocks(apply_flattening, vol, g, s, dtype=vol.dtype, keep=keep)


def remove_islands_chunked(phases, min_island: int):
    """The small-island pass of :func:`segment_chunked` on a dask phase volume (halo :func:`island_halo`).

    Parameters
    ----------
    phases : (Z, Y, X) dask.array.Array of uint8
    min_island : int

    Returns
    -------
    (Z, Y, X) dask.array.Array of uint8
        Lazy; the chunks of ``phases``.
    """
    ih = island_halo(min_island)
    if not ih:
        return phases
    return _map(phases, _island_block, ih, np.uint8, min_island=int(min_island))


def phases_from_map(volume, phase_map, *, name: str = "volume", chunks: int | tuple[int, int, int] = DEFAULT_CHUNK):
    """An already-segmented volume as lazy phase codes, chunk by chunk (:func:`core.io.apply_phase_map`).

    Parameters
    ----------
    volume : (Z, Y, X) dask.array.Array, LazyVolume or ndarray
        Segmented voxel values.
    phase_map : mapping or str
        As for :func:`core.io.apply_phase_map` (``"0=pore,128=nmc,255=cbd"``); checked now.
    name : str
        How error messages call the volume.

    Returns
    -------
    (Z, Y, X) dask.array.Array of uint8
        Equal to ``apply_phase_map(volume, phase_map)``.  A voxel value the map
        lacks raises the ValueError of :func:`~core.io.apply_phase_map` when
        its chunk is computed; its counts are that chunk's.
    """
    from ..io import apply_phase_map
    from ..io.phase_map import _normalize_phase_map

    mapping = _normalize_phase_map(phase_map)  # a bad map is refused before any voxel is read
    vol = _as_volume(volume, chunks)
    if not (vol.dtype == bool or vol.dtype.kind in "iuf"):
        raise TypeError(f"{name} must be numeric, got dtype {vol.dtype}")
    # (map_blocks keeps ``name`` for itself: the volume's name goes in with partial)
    return vol.map_blocks(functools.partial(apply_phase_map, phase_map=mapping, name=name), dtype=np.uint8)


# --------------------------------------------------------------------------- the chunk functions


def _denoise_block(block: np.ndarray, *, params: SegmentParams, nan_fill: float | None) -> np.ndarray:
    """The denoised float32 grey values of a window (exact ``denoise_halo`` inside it)."""
    if nan_fill is not None and not np.isfinite(block).all():
        block = np.nan_to_num(block.astype(np.float32), nan=nan_fill, posinf=nan_fill, neginf=nan_fill)
    return denoise(np.asarray(block), params.denoise, size=params.denoise_size)


def _phase_block(block: np.ndarray, *, params: SegmentParams, g: _Globals, nan_fill: float | None) -> np.ndarray:
    """Denoise, threshold and correct a window: the code of ``segment._phases_by_slabs``, over the whole window."""
    d = _denoise_block(block, params=params, nan_fill=nan_fill)
    ph, n_nmc = _threshold(d, g.low, g.high)
    if params.partial_volume and n_nmc:
        return _correct_rows(d, ph, g.low, g.pv_sigma, g.i_nmc)
    return ph


def _island_block(block: np.ndarray, *, min_island: int) -> np.ndarray:
    out = np.array(block, dtype=np.uint8, copy=True)
    _remove_small_islands_inplace(out, min_island)
    return out


def _map(arr, fn, depth: int, dtype, **kwargs):
    """``fn`` on every chunk of ``arr`` with ``depth`` voxels of its neighbours (none beyond the volume's faces)."""
    if depth == 0:
        return arr.map_blocks(fn, dtype=dtype, **kwargs)
    # a halo deeper than an axis is long sees that whole axis: the same window, and dask refuses a deeper one
    depth = {axis: min(depth, n) for axis, n in enumerate(arr.shape)}
    return arr.map_overlap(fn, depth=depth, boundary="none", trim=True, dtype=dtype, **kwargs)


# --------------------------------------------------------------------------- inputs and global values


def _as_volume(volume, chunks):
    import dask.array as da

    if isinstance(volume, LazyVolume):
        volume = volume.data
    if isinstance(volume, da.Array):
        if volume.ndim != 3:
            raise ValueError(f"volume must be 3D (z, y, x), got shape {volume.shape}")
        return volume
    if not isinstance(volume, np.ndarray):
        raise TypeError(f"volume must be a dask array, a LazyVolume or a numpy array, got {type(volume).__name__}")
    return as_dask(volume, chunks)


def _check_greyscale_lazy(vol, name: str = "volume") -> None:
    """:func:`core.phases.check_greyscale` of a dask array, in one pass over its chunks."""
    import dask

    if vol.size == 0:
        raise ValueError(f"{name} is empty: shape {vol.shape}")
    if vol.dtype == bool:
        raise TypeError(f"{name} is boolean, a mask rather than a greyscale image: load a segmented volume as "
                        "phases (--phase-map VALUE=PHASE,... on the command line)")
    if not np.issubdtype(vol.dtype, np.number):
        raise TypeError(f"{name} must be numeric, got dtype {vol.dtype}")
    if np.issubdtype(vol.dtype, np.floating):
        import dask.array as da

        finite = da.isfinite(vol)
        lo, hi, good = dask.compute(da.where(finite, vol, np.inf).min(), da.where(finite, vol, -np.inf).max(),
                                    finite.sum(dtype=np.int64))
        bad = vol.size - int(good)
    else:
        lo, hi = dask.compute(vol.min(), vol.max())
        bad = 0
    if bad == vol.size:
        raise ValueError(f"{name} holds no finite value (all NaN or infinite)")
    if bad > NONFINITE_MAX_SHARE * vol.size:
        raise ValueError(f"{name} has {bad / vol.size:.1%} non-finite voxels (NaN or infinite; at most "
                         f"{NONFINITE_MAX_SHARE:.1%} are filled): crop it to the region with data, or give those "
                         "voxels a grey value before the analysis")
    if lo == hi:
        raise ValueError(f"{name} is constant (every voxel = {float(lo):g}): nothing to segment")


def _nan_fill_lazy(vol) -> float | None:
    """:func:`core.phases.nonfinite_fill` of a dask array: the same strided sample, read chunk by chunk."""
    if not np.issubdtype(vol.dtype, np.floating):
        return None
    step = max(1, vol.size // 2_000_000)
    sample = _strided_sample(vol, [(0, vol.shape[0])], step)
    return nonfinite_fill(sample)  # the sample is at most ~3 M values: nonfinite_fill takes all of it


def _global_values_lazy(shape, params: SegmentParams, denoised, *, exclude: float | None = None) -> _Globals:
    """``segment._global_values`` with the sample gathered chunk by chunk and the central block read alone."""
    low, high = params.low, params.high
    i_nmc = model = None
    if low is None or high is None or params.partial_volume:
        blocks = _sample_blocks(shape)
        n_vox = sum(b - a for a, b in blocks) * shape[1] * shape[2]
        sample = _strided_sample(denoised, blocks, max(1, n_vox // 2_000_000))
        # _image_model reads denoised(a, b)[:, sy, sx] with np.ascontiguousarray: only the central block is computed
        model = _image_model(shape, lambda a, b: denoised[a:b], sample, exclude=exclude)
        i_nmc = model.i_nmc
        low = model.suggested[0] if low is None else low
        high = model.suggested[1] if high is None else high
        if not low < high:
            raise ValueError(f"low threshold ({low:g}) must be below high threshold ({high:g})")
    pv_sigma = _image_sigma(params.pv_sigma, model) if params.partial_volume else params.pv_sigma
    return _Globals(low, high, pv_sigma, i_nmc)


def _strided_sample(arr, blocks, step: int) -> np.ndarray:
    """``concat(arr[a:b].reshape(-1)[::step] for a, b in blocks)``, reading ``arr`` chunk by chunk.

    Each chunk gives its voxels whose flat index within the block is a
    multiple of ``step``, with that index; sorting by it restores the order
    of the flat stride.
    """
    import dask

    _, ny, nx = arr.shape
    parts = []  # one list of tasks per block, all computed at once
    for a, b in blocks:
        sub = arr[a:b]
        offsets = [np.cumsum((0,) + c[:-1]) for c in sub.chunks]
        parts.append([dask.delayed(_pick)(blk, *(int(offsets[d][i]) for d, i in enumerate(idx)), ny, nx, step)
                      for idx, blk in np.ndenumerate(sub.to_delayed())])
    out = []
    for picked in dask.compute(*parts):
        flat = np.concatenate([f for f, _ in picked])
        vals = np.concatenate([v for _, v in picked])
        out.append(vals[np.argsort(flat, kind="stable")])
    return np.concatenate(out)


def _pick(chunk: np.ndarray, z0: int, y0: int, x0: int, ny: int, nx: int, step: int):
    """Flat indices (within the block) that are multiples of ``step``, and their values, of one chunk."""
    cz, cy, cx = chunk.shape
    rows = (z0 + np.arange(cz, dtype=np.int64))[:, None] * (ny * nx) + (y0 + np.arange(cy, dtype=np.int64)) * nx + x0
    first = (-rows) % step  # x offset of the first pick in each row of the chunk
    iz, iy = np.nonzero(first < cx)
    if iz.size == 0:
        return np.empty(0, np.int64), chunk.reshape(-1)[:0].copy()
    counts = (cx - 1 - first[iz, iy]) // step + 1
    rep_z, rep_y = np.repeat(iz, counts), np.repeat(iy, counts)
    start = np.repeat(first[iz, iy], counts)
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    ix = start + k * step
    return rows[rep_z, rep_y] + ix, np.ascontiguousarray(chunk[rep_z, rep_y, ix])

