"""The whole analysis on the chunked engine: input file -> phases -> particles -> table, never a whole volume.

:func:`analyze_chunked` is what ``python -m core analyze --chunk-size N`` (and
a recipe entry with ``chunking``) runs: :func:`~core.chunked.open_lazy`,
:func:`~core.chunked.segment_chunked` (or :func:`~core.chunked.phases_from_map`),
the phases written to ``phases.zarr`` (in two passes: the phase pass to a
scratch store, then :func:`~core.chunked.phases.remove_islands_chunked` reading
its windows from it, so no worker holds first-pass chunks for their
neighbours) and read back from it,
:func:`~core.chunked.separate_chunked`, the labels written to ``labels.zarr``,
and :func:`~core.chunked.measure_chunked` on the two stores.  The tasks run on
the current dask scheduler (the client of :func:`~core.chunked.cluster`).

What it does not do (refused with one sentence): the 3D U-Net and the
classifier methods, the regularised or deconvolved seeding, and ``downsample``
(each needs its own chunk-wise rule); the default ``seeding="auto"`` seeds on
the phases here, whatever the blur.  The labels follow the halo rule of
:func:`~core.chunked.separate_chunked`: not bit-identical to the whole-volume
labels, but the same chunking gives the same labels and table every time
(so a recipe records the chunking).

The particle halo
-----------------
``halo`` given: used as it is.  Else ``max_diameter_um`` given (the largest
particle's diameter): :func:`~core.chunked.particle_halo` of it.  Else the
diameter is estimated from the phases once they are written
(:func:`~core.chunked.estimate_max_diameter`, the largest ball inside the
NMC phase, from a strided copy of at most 8 M voxels) and the halo is
:func:`~core.chunked.particle_halo` of that, at least
:data:`~core.chunked.particles.MIN_HALO`.  What it guarantees: the distance
transform is exact in every chunk's core, and a particle that reaches the
core and is no longer than that diameter lies whole in the task's window.  A
particle bigger than the halo allows touches its window's face: the run
counts those chunk labels, warns in one sentence when there are any, and
records the count in ``chunking["beyond_halo"]`` (with the diameter the halo
was set for in ``chunking["max_diameter_um"]``).  On a local cluster
(``local_workers``) an estimated halo is cut to the largest whose windows fit
the memory available (:func:`core.memory.largest_chunked_halo`), with a
warning: the run then completes, and the particles bigger than the cut halo
allows are counted as above.  On a cluster by address the same cut keeps one
window within its workers' smallest memory limit (``worker_memory``, which
the CLI and the dashboard's jobs ask the scheduler for).

That diameter is the largest inscribed ball's: an elongated particle can be
longer.  So a chunk whose window a label reaches is labelled once more with
a wider halo, ``wide_halo`` (default twice the halo, within the memory cut
on a local cluster; recorded in ``chunking["wide_halo"]``, and a recipe
written before it replays without the second try), and only what still
reaches the wider window is counted (:func:`~core.chunked.separate_chunked`).

Coarse-grid separation
----------------------
With ``params.coarsen`` ``f > 1`` (``analyze --coarsen``; ``"auto"``:
:func:`core.coarse.auto_factor` of the given or estimated largest diameter)
the particles are separated on the grid reduced by ``f`` and brought back
onto the full-resolution NMC chunk by chunk
(:func:`~core.chunked.coarse.separate_coarse_chunked`): the coarse volume is
separated whole when it has at most
:data:`~core.chunked.coarse.COARSE_WHOLE_VOXELS` voxels (the labels then
equal those of :func:`core.pipeline.run` with the same ``coarsen``), else
chunk by chunk with the halo rule at the coarse voxel (``halo`` and
``chunking["halo"]`` are then in coarse voxels, the memory cut included).
The factor is in the returned parameters (a recipe replays it) and in the
provenance (``coarsen``, ``coarse_shape``, ``coarse_separation`` "whole" or
"chunked", ``coarse_unlabelled_voxels``: full-resolution NMC voxels left 0,
see :mod:`core.coarse`).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Literal

import numpy as np

__all__ = ["ChunkedAnalysis", "SchedulerUnreachableError", "analyze_chunked", "chunked_engine_for",
           "cluster_worker_memory", "lazy_checksum"]

Progress = Callable[[float, str], None]


@dataclass(frozen=True, eq=False)
class ChunkedAnalysis:
    """What :func:`analyze_chunked` returns (the volumes are in the Zarr stores it wrote).

    Attributes
    ----------
    table : DataFrame
        :data:`core.metrics.COLUMNS`.
    params : core.pipeline.AnalysisParams
        As resolved (thresholds, blur, separator side).
    spacing : (3,) float, µm
    chunking : dict
        ``{"chunk_size": c, "halo": h, "wide_halo": w, "beyond_halo": n, "widened": k}`` (``k`` chunks labelled
        again with the halo ``w``) and, when the halo came from a diameter (given or estimated),
        ``"max_diameter_um"`` (rounded to 1e-6 µm).
    provenance : dict
        The keys of :class:`core.pipeline.AnalysisResult`'s provenance that
        apply, plus ``engine`` (``"chunked"``) and ``chunking``.
    """

    table: object
    params: object
    spacing: tuple[float, float, float]
    chunking: dict
    provenance: dict


def lazy_checksum(array) -> str:
    """:func:`core.pipeline.checksum` of a dask array, computed slab by slab along z (the same digest).

    The slabs (at most 64 MiB) are read in this process (dask's synchronous
    scheduler): the digest is sequential, and reading the file here is 20×
    faster than gathering the slabs from the workers of a cluster (256³
    uint16: 0.3 s against 6.3 s with 2 local workers).
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(str(array.dtype).encode() + str(tuple(int(n) for n in array.shape)).encode())
    z, y, x = (int(n) for n in array.shape)
    step = max(1, min(z, (1 << 26) // max(1, y * x * array.dtype.itemsize)))
    for z0 in range(0, z, step):
        slab = np.ascontiguousarray(array[z0: z0 + step].compute(scheduler="sync"))
        h.update(memoryview(slab.reshape(-1)).cast("B"))
    return h.hexdigest()


def check_supported(params, *, downsample: int = 1, presegmented: bool = False) -> None:
    """Refuse (ValueError, one sentence) what the chunked engine does not run."""
    if downsample > 1:
        raise ValueError("the chunked engine (--chunk-size) does not downsample: downsample the volume first or "
                         "leave --downsample out")
    if not presegmented and params.method != "threshold":
        raise ValueError(f"the chunked engine (--chunk-size) runs the threshold method, not {params.method!r}")
    if params.particles != "watershed" or params.seeding not in ("auto", "phases"):
        raise ValueError("the chunked engine (--chunk-size) separates particles by the watershed of the phases only")
    if params.refine in ("on", "nmc"):
        raise ValueError("the chunked engine (--chunk-size) does not refine the phases: leave --refine at auto or off")


def chunked_engine_for(spec, params=None, *, workers: int | None = None, chunk: int | None = None,
                       always: bool = False, scheduler: str | None = None) -> int | None:
    """The chunk edge when the memory-budget rule runs this input on the chunked engine, else None.

    The rule of ``python -m core analyze`` without ``--chunk-size``
    (:func:`core.memory.needs_chunked_engine`: the whole-volume run's
    estimated peak exceeds :func:`core.memory.available_bytes`, and chunks of
    ``chunk`` voxels on ``workers`` worker processes fit it), for what the
    chunked engine runs (:func:`check_supported`: a file input, not
    downsampled, the threshold method or phases read from the file, the
    watershed of the phases).  Only the file's header is read
    (:func:`~core.chunked.open_lazy`).  None also when the input cannot be
    read: the whole-volume path reads it, and words the error, as before.

    With ``scheduler`` (an existing cluster, whose workers run the analysis)
    the memory compared is the workers', not this machine's: the smallest
    ``memory_limit`` the scheduler reports for its workers
    (:func:`cluster_worker_memory`; :data:`core.memory.BUDGET_ENV` still caps
    it), against the whole-volume estimate (the run is one task on one worker)
    and against one worker's share of :func:`core.memory.chunked_peak_bytes`
    (its process base and one window).  Workers without a memory limit, or
    a scheduler that does not answer, leave the rule on this machine's memory.

    Parameters
    ----------
    spec : core.inputs.FileInput or core.inputs.DemoInput
    params : core.pipeline.AnalysisParams or None
    workers : int or None
        Worker processes the chunks would run on (None: the cores of this machine).
    chunk : int or None
        Chunk edge, voxels (None: :data:`~core.chunked.DEFAULT_CHUNK`).
    always : bool
        The chunked engine is asked for (as ``--chunk-size`` does): every input it runs gets it, whatever
        its size.
    scheduler : str or None
        Address of the cluster that runs the analysis (``tcp://host:8786``); None: this machine.

    Returns
    -------
    int or None
    """
    from ..inputs import FileInput

    if not isinstance(spec, FileInput):  # a demo: the whole-volume engine (nothing else imported)
        return None
    from ..memory import needs_chunked_engine
    from ..pipeline import AnalysisParams
    from .inputs import DEFAULT_CHUNK, open_lazy

    params = params or AnalysisParams()
    chunk = DEFAULT_CHUNK if chunk is None else int(chunk)
    try:
        check_supported(params, downsample=spec.downsample, presegmented=spec.presegmented)
        lazy = open_lazy(spec.path, **spec.load_kwargs())  # the header only
        if always:
            return chunk
        limit = cluster_worker_memory(scheduler) if scheduler is not None else None
        if not needs_chunked_engine(lazy.shape, lazy.data.dtype, params, presegmented=spec.presegmented,
                                    chunk=chunk, workers=workers, worker_limit=limit):
            return None
    except (ValueError, TypeError, OSError):
        return None
    return chunk


#: Seconds a cluster's worker memory limit (or its scheduler's silence) is reused before the scheduler is asked again.
WORKER_MEMORY_TTL = 30.0
#: The second try's halo, as a multiple of the halo (:func:`analyze_chunked`'s ``wide_halo``).
WIDEN = 2
#: Seconds :func:`cluster_worker_memory` waits for the scheduler by default.
WORKER_MEMORY_TIMEOUT = 5.0
_WORKER_MEMORY: dict[str, tuple[float, bool, int | None]] = {}  # address -> (when asked, answered, smallest limit)


class SchedulerUnreachableError(ConnectionError):
    """The scheduler at ``address`` did not answer within ``timeout`` seconds (or the address is not one)."""

    def __init__(self, address: str, timeout: float):
        super().__init__(f"the Dask scheduler at {address} did not answer within {timeout:g} s")
        self.address = address
        self.timeout = timeout


def cluster_worker_memory(address: str, *, timeout: float | None = None,
                          unreachable: Literal["none", "raise"] = "none") -> int | None:
    """The smallest memory limit (bytes) of the workers of the cluster at ``address``; None when unknown.

    Unknown: no worker, no worker with a limit (``memory_limit`` 0 or None),
    or no answer within ``timeout`` seconds (default
    :data:`WORKER_MEMORY_TIMEOUT`); with ``unreachable="raise"`` the last is
    :class:`SchedulerUnreachableError` instead of None (a guess on this
    machine's memory is then not made).  :data:`core.memory.BUDGET_ENV`
    (``DETACH_MEMORY_BUDGET``), when set, caps it.  The scheduler's answer
    (or its silence) is reused for :data:`WORKER_MEMORY_TTL` seconds (a page
    that renders again does not connect again).
    """
    if unreachable not in ("none", "raise"):
        raise ValueError(f"unreachable must be 'none' or 'raise', not {unreachable!r}")
    timeout = WORKER_MEMORY_TIMEOUT if timeout is None else float(timeout)
    hit = _WORKER_MEMORY.get(address)
    if hit is not None and time.monotonic() - hit[0] < WORKER_MEMORY_TTL:
        _, answered, smallest = hit
    else:
        answered, smallest = _ask_worker_memory(address, timeout)
        _WORKER_MEMORY[address] = (time.monotonic(), answered, smallest)
    if not answered and unreachable == "raise":
        raise SchedulerUnreachableError(address, timeout)
    return _within_budget(smallest)


def _ask_worker_memory(address: str, timeout: float) -> tuple[bool, int | None]:
    """(whether the scheduler answered, the smallest memory limit of its workers or None)."""
    try:
        from distributed import Client

        with Client(address, timeout=timeout, set_as_default=False) as client:
            return True, _smallest_limit(client)
    except (OSError, TimeoutError, ValueError):
        return False, None


def _smallest_limit(client) -> int | None:
    """The smallest memory limit (bytes) of the workers of ``client``'s cluster; None when none has one."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    limits = [int(w.get("memory_limit") or 0) for w in workers.values()]
    limits = [m for m in limits if m > 0]
    return min(limits) if limits else None


def client_worker_memory(client) -> int | None:
    """:func:`cluster_worker_memory` of a connected ``distributed.Client`` (a job's ``worker_client``): the
    smallest memory limit of its workers, capped by :data:`core.memory.BUDGET_ENV`; None when unknown."""
    return _within_budget(_smallest_limit(client))


def _within_budget(limit: int | None) -> int | None:
    """``limit`` capped by :data:`core.memory.BUDGET_ENV` where that is set (None stays None)."""
    from ..memory import _budget

    budget = _budget()
    return limit if limit is None or budget is None else min(limit, budget)


def _halo_cap(chunk: int, itemsize: int, workers: int | None, worker_memory: int | None, shape) -> int | None:
    """The largest halo whose windows (cut at the faces of a volume of ``shape``, the grid the particles are
    separated on) fit: ``workers`` local workers on this machine's memory available, or one window on a worker of
    a cluster by address with ``worker_memory`` bytes; None when neither is known."""
    from ..memory import available_bytes, largest_chunked_halo

    if workers is not None:
        return largest_chunked_halo(chunk, int(workers), available_bytes(), itemsize, shape=shape)
    if worker_memory is not None:
        return largest_chunked_halo(chunk, 1, int(worker_memory), itemsize, one_worker=True, shape=shape)
    return None


def _halo_within_memory(halo: int, chunk: int, itemsize: int, max_diameter_um: float, *, shape,
                        workers: int | None = None, worker_memory: int | None = None) -> int:
    """``halo``, or the largest halo whose windows fit the memory (:func:`_halo_cap`; with a warning)."""
    from .particles import MIN_HALO

    cap = _halo_cap(chunk, itemsize, workers, worker_memory, shape)
    if cap is None or cap >= halo:
        return halo
    cut = max(MIN_HALO, cap)
    window = "×".join(str(min(int(n), min(chunk, int(n)) + 2 * halo)) for n in shape)
    if workers is not None:
        fit = (f"{workers} windows of {window} voxels would not fit the memory available", "use fewer "
               "workers, or give --max-diameter")
    else:
        fit = (f"a window of {window} voxels would not fit the workers' memory limit "
               f"({worker_memory / 1e9:.3g} GB)", "give the workers more memory, use smaller chunks, or give "
               "--max-diameter")
    warnings.warn(f"the largest particle (about {max_diameter_um:.3g} µm) needs a halo of {halo} voxels, but "
                  f"{fit[0]}, so the halo is cut to {cut} voxels: bigger particles may be split or joined at chunk "
                  f"faces ({fit[1]})", stacklevel=3)
    return cut


def analyze_chunked(spec, params=None, *, out: str | os.PathLike, chunk_size: int, halo: int | None = None,
                    max_diameter_um: float | None = None, spacing=None, verify_checksum: str | None = None,
                    local_workers: int | None = None, progress: Progress | None = None,
                    wide_halo: int | None = None, worker_memory: int | None = None) -> ChunkedAnalysis:
    """Analyse a file input chunk by chunk; write ``out/phases.zarr`` and ``out/labels.zarr``.

    Parameters
    ----------
    spec : core.inputs.FileInput
    params : core.pipeline.AnalysisParams or None
    out : path
        An existing folder (the stores and scratch folders, removed at the end, go in it: among them the copy of
        a compressed NIfTI / MRC input, decompressed once, :func:`core.chunked.inputs.decompressed_copy`).
    chunk_size : int
        Chunk edge (voxels).
    halo : int or None
        Particle halo (voxels; coarse voxels with ``params.coarsen`` > 1); None: from ``max_diameter_um`` (see
        the module docstring).
    max_diameter_um : float or None
        The largest particle's diameter, µm; None: estimated from the phases.
        With ``halo`` too (a recipe's replay) it is only recorded.
    spacing : float or (3,) float, µm, optional
        Overrides the file's voxel size.
    verify_checksum : str or None
        Refuse (:class:`core.recipe.ChecksumMismatch`) an input whose checksum differs.
    local_workers : int or None
        The worker processes of a local cluster (None: a remote cluster, or not known).  With it, a halo
        estimated from the data is cut to what :func:`core.memory.available_bytes` allows for that many
        windows (:func:`core.memory.largest_chunked_halo`), with a warning; a given ``halo`` or
        ``max_diameter_um`` is used as it is.
    progress : callable(fraction, message), optional
    wide_halo : int or None
        The halo of the second try for the chunks a label reaches the window of (at least ``halo``; equal: no
        second try; see the module docstring); None: :data:`WIDEN` times the halo, on a local cluster within
        the windows that fit the memory available.  A recipe's replay gives the one recorded.
    worker_memory : int or None
        On a cluster by address (``local_workers`` None): the smallest memory limit of its workers, bytes
        (:func:`cluster_worker_memory`).  An estimated halo and the default ``wide_halo`` are then cut as on a
        local cluster, to the largest whose window fits one worker's limit (its process base and one window).

    Returns
    -------
    ChunkedAnalysis
    """
    import dask.array as da
    import zarr

    from ..inputs import FileInput
    from ..codes import PORE
    from ..pipeline import AnalysisParams, said_readings, versions
    from ..metrics import side_of_profile, side_warning
    from .measures import measure_chunked, nmc_profile_chunked
    from ..coarse import GROW, auto_factor, check_factor
    from .coarse import COARSE_WHOLE_VOXELS, separate_coarse_chunked
    from .particles import MIN_HALO, estimate_max_diameter, particle_halo, separate_chunked
    from .phases import island_halo, phases_from_map, remove_islands_chunked, segment_chunked
    from .store import write_zarr

    params = params or AnalysisParams()
    if not isinstance(spec, FileInput):
        raise TypeError(f"the chunked engine reads a file input, got {type(spec).__name__}")
    presegmented = spec.phase_map is not None
    check_supported(params, downsample=spec.downsample, presegmented=presegmented)
    chunk_size = int(chunk_size)
    if max_diameter_um is not None and not (isinstance(max_diameter_um, (int, float)) and max_diameter_um > 0):
        raise ValueError(f"max_diameter_um must be a number > 0 µm, got {max_diameter_um!r}")
    if wide_halo is not None and (isinstance(wide_halo, bool) or not isinstance(wide_halo, (int, np.integer))
                                  or wide_halo < 1 or (halo is not None and wide_halo < halo)):
        raise ValueError(f"wide_halo must be a whole number of voxels >= halo, got {wide_halo!r}"
                         + (f" with halo {halo}" if halo is not None else ""))
    if worker_memory is not None and (isinstance(worker_memory, bool) or not isinstance(worker_memory, (int, np.integer))
                                      or worker_memory < 1):
        raise ValueError(f"worker_memory must be a whole number of bytes >= 1, got {worker_memory!r}")
    if worker_memory is not None and local_workers is not None:
        raise ValueError("worker_memory applies to a cluster by address; a local cluster's (local_workers) memory "
                         "is this machine's")
    report = progress or (lambda f, m: None)
    out = Path(out)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    kw = spec.load_kwargs()
    kw.pop("mmap", None)
    if spacing is not None:
        kw["spacing"] = spacing
    # a compressed file read a box at a time through its reader (.nii.gz, .mrc.gz) is decompressed once into a copy
    # here (removed when the phases are written): else every box and stage would decompress it from its start
    copy_dir = out / ".input-copy"
    no_data_scratch = out / ".no-data-scratch"
    try:
        vol = _open_input(spec.path, kw, chunk_size, copy_dir, report)
        if not presegmented:  # a label field (an Avizo file's Labels) is not thresholded as grey values
            from ..io._common import _name
            from ..io.phase_map import check_not_label_field

            check_not_label_field(_name(spec.path), vol.metadata)
        sp = vol.spacing
        fill = shading = None
        if not presegmented:  # a fill outside the reconstructed region, on five z planes (core.phases.fill_reading)
            # a fill (or an SEM stack's data bar), slices not aligned (not those aligned as they are read), a
            # brightness drift along z: each read on a few planes or slabs of the lazy reader and said as the
            # whole-volume run says it
            fill, shading = said_readings(vol.reader, params, stacklevel=3, aligned=spec.align is not None)
        nblocks = int(np.prod(vol.data.numblocks))
        report(0.01, f"chunked engine: {'×'.join(map(str, vol.shape))} voxels in {nblocks} chunks of {chunk_size}³")
        # the checksum (a sequential read in this process) runs beside the global values (the workers' check pass
        # and this process's blur fit); it is checked before any chunk is segmented
        with ThreadPoolExecutor(1, thread_name_prefix="checksum") as pool:
            digest = pool.submit(lazy_checksum, vol.data)
            seg_params, origin = params.segment, None
            if presegmented:
                phases = phases_from_map(vol.data, spec.phase_map)
            else:
                report(0.02, "phases: global values from a sample")
                # (read beside the fill whether or not the thresholds are given, as the whole-volume run reads it)
                seg = segment_chunked(vol, params.segment, islands=False,  # the island pass reads a store, below
                                      exclude=None if fill is None else fill["value"],
                                      shading=shading if params.segment.flatten else None,
                                      keep=None if fill is None else fill["value"])
                phases, seg_params, origin = seg.phases, seg.params, seg.pv_sigma_origin
            checksum = digest.result()
        if verify_checksum is not None and checksum != verify_checksum:
            from ..recipe import ChecksumMismatch

            raise ChecksumMismatch(f"the input ({spec.describe()}) has checksum {checksum}, but the recipe "
                                   f"recorded {verify_checksum}: the data changed (replay with --no-verify to analyse "
                                   "it anyway)")
        # a fill outside the field of view: found plane by plane into a scratch store (removed at the end), its
        # voxels made pore in the phases (no material, whichever end of the grey values it holds) and measured as the
        # edge
        no_data = None
        if fill is not None:
            no_data = _fill_region_store(vol.data, fill["value"], no_data_scratch, sp, chunk_size)
            phases = da.where(da.from_zarr(no_data) != 0, np.uint8(PORE), phases.rechunk((chunk_size,) * 3))
        report(0.05, "phases: chunk by chunk -> phases.zarr")
        if presegmented or not island_halo(seg_params.min_island):
            write_zarr(phases, out / "phases.zarr", spacing=sp, name="phases")
        else:
            # two passes through a store: the island pass's windows are read from the first pass's store, so no worker
            # holds first-pass chunks waiting for their neighbours (seed-size volume, chunks of 192: the tree's peak
            # 2.46 -> 1.73 GiB, same time)
            first = out / ".phases-scratch"
            try:
                first.mkdir()
                write_zarr(phases, first / "pass1.zarr", spacing=sp, name="phases before the island pass")
                pass1 = da.from_zarr(os.fspath(first / "pass1.zarr" / "0"))
                write_zarr(remove_islands_chunked(pass1, seg_params.min_island), out / "phases.zarr", spacing=sp,
                           name="phases")
            finally:
                shutil.rmtree(first, ignore_errors=True)
        # the stores themselves from here on: each task reads its window from them (nothing passes between workers)
        phases_store = zarr.open_array(os.fspath(out / "phases.zarr" / "0"), mode="r")
        phases = da.from_zarr(phases_store)
        shutil.rmtree(copy_dir, ignore_errors=True)  # the input is not read again
        timings["phases_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        coarsen = check_factor(params.coarsen, "coarsen")
        if coarsen == "auto" and max_diameter_um is None:
            report(0.33, "particles: the largest particle from a strided copy of the NMC phase")
            max_diameter_um = estimate_max_diameter(phases, sp, fill_cracks=params.separation.fill_cracks)
        if coarsen == "auto":
            coarsen = auto_factor(max_diameter_um, sp)
        csp = tuple(coarsen * s for s in sp)  # the voxel of the grid the separation runs on
        grid = tuple(-(-int(n) // coarsen) for n in vol.shape)  # and its shape
        if halo is None:
            estimated = max_diameter_um is None
            if estimated:
                report(0.33, "particles: the largest particle from a strided copy of the NMC phase")
                max_diameter_um = estimate_max_diameter(phases, sp, fill_cracks=params.separation.fill_cracks)
            halo = max(MIN_HALO, particle_halo(max_diameter_um, csp)) if max_diameter_um > 0 else MIN_HALO
            coarse_whole = coarsen > 1 and math.prod(-(-n // coarsen) for n in vol.shape) <= COARSE_WHOLE_VOXELS
            if estimated and not coarse_whole:  # a coarse volume separated whole: no windows
                halo = _halo_within_memory(halo, chunk_size, vol.data.dtype.itemsize, max_diameter_um, shape=grid,
                                           workers=local_workers, worker_memory=worker_memory)
        halo = int(halo)
        if wide_halo is None:  # within the windows that fit the memory (as the halo itself), where it is known
            cap = _halo_cap(chunk_size, vol.data.dtype.itemsize, local_workers, worker_memory, grid)
            wide_halo = WIDEN * halo if cap is None else min(WIDEN * halo, cap)
        wide_halo = max(halo, int(wide_halo))  # (an estimated halo above a given wide_halo: no second try)
        scratch = out / ".chunked-scratch"
        coarse = None
        try:
            if coarsen == 1:
                window = "×".join(str(min(n, chunk_size + 2 * halo)) for n in vol.shape)
                report(0.35, f"particles: chunk by chunk with a halo of {halo} voxels"
                             + (f" (particles up to {max_diameter_um:.3g} µm)" if max_diameter_um else "")
                             + f", windows of {window}, joined across chunk faces")
                res = separate_chunked(phases_store, sp, params.separation, halo=halo, scratch=scratch,
                                       wide_halo=wide_halo,
                                       progress=lambda f, m: report(0.35 + 0.38 * f, f"particles: {m}"))
                n_particles, beyond, widened = res.n_particles, res.beyond_halo, res.widened
                report(0.75, f"particles: {n_particles} found; writing their labels")
                write_zarr(res.labels, out / "labels.zarr", spacing=sp, name="labels")
            else:
                cshape = "×".join(str(-(-n // coarsen)) for n in vol.shape)
                report(0.35, f"particles: on a grid {coarsen}× coarser ({cshape} voxels of "
                             f"{'×'.join(f'{s:.4g}' for s in csp)} µm), then chunk by chunk onto the NMC")
                coarse = separate_coarse_chunked(phases_store, sp, params.separation, coarsen, out=out / "labels.zarr",
                                                 scratch=scratch, halo=halo, wide_halo=wide_halo)
                n_particles, beyond, widened = coarse.n_particles, coarse.beyond_halo, coarse.widened
                if coarse.unlabelled:
                    warnings.warn(f"{coarse.unlabelled} NMC voxel(s) lie farther than {GROW} coarse voxels from every "
                                  f"particle of the {coarsen}× coarser grid and are left unlabelled (specks of NMC "
                                  "smaller than about half a coarse voxel)", stacklevel=2)
            if widened:
                report(0.8, f"particles: {widened} chunk(s) labelled again with a halo of {wide_halo} voxels (a particle "
                            f"reached the window of {halo})")
            if beyond:
                halos = f"halo {halo} voxels" + (f", {wide_halo} on a second try" if wide_halo > halo else "")
                warnings.warn(f"{beyond} particle label(s) reach the edge of their chunk's window ({halos}), so some "
                              "particles are bigger than the halo allows and may be split or joined differently from a "
                              "whole-volume analysis: a larger max_diameter_um (--max-diameter) widens it", stacklevel=2)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        labels_store = zarr.open_array(os.fspath(out / "labels.zarr" / "0"), mode="r")
        timings["particles_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        report(0.85, f"measuring {n_particles} particles")
        side, contrast = params.separator_side, None
        fov = None
        if no_data is not None:  # faces to the fill count as the volume's edge; the slices' shares are of their view
            from ..phases.fill import fov_disc

            others = tuple(a for a in range(3) if a != params.axis)
            fov = np.asarray((da.from_zarr(no_data) == 0).sum(axis=others, dtype=np.int64).compute(), np.int64)
            disc = fov_disc(np.asarray(no_data[no_data.shape[0] // 2]) != 0, sp[1:])
            fill = {**fill, "as_edge": True, "region_voxels": int(no_data.size - fov.sum()), "disc_radius_um": disc}
        profile = None  # the per-slice NMC counts, read once for the side and the electrode's extent
        if side == "auto" or params.depth_from == "electrode":
            profile = nmc_profile_chunked(phases, params.axis, data_voxels=fov)
        ambiguous = None
        if side == "auto":
            side, contrast = side_of_profile(profile)
            if (ambiguous := side_warning(profile, params.axis)) is not None:
                warnings.warn(ambiguous, stacklevel=2)
        table = measure_chunked(labels_store, phases_store, sp, axis=params.axis, separator_side=side,
                                depth_from=params.depth_from, profile=profile, no_data=no_data)
        timings["metrics_s"] = time.perf_counter() - t0
    finally:
        shutil.rmtree(no_data_scratch, ignore_errors=True)
        shutil.rmtree(copy_dir, ignore_errors=True)
    report(1.0, f"done: {len(table)} particles")

    # "auto" seeding is the phases here: the deconvolved mask would need the whole greyscale (core.seeding); the
    # phases are not refined (core.phases.forward sweeps the whole volume)
    resolved = replace(params, segment=seg_params, separator_side=side, coarsen=coarsen, seeding="phases",
                       refine="off")
    chunking = {"chunk_size": chunk_size, "halo": halo, "wide_halo": wide_halo, "beyond_halo": int(beyond),
                "widened": int(widened)}
    if max_diameter_um:
        chunking["max_diameter_um"] = round(float(max_diameter_um), 6)
    provenance = {
        "versions": versions(),
        "input_checksum": checksum,
        "input_shape": list(vol.shape),
        "input_dtype": str(vol.data.dtype),
        "spacing_um": list(sp),
        "downsampled": 1,
        "presegmented": presegmented,
        "separator_side_detected": side if contrast is not None else None,
        "separator_side_contrast": contrast,
        "separator_side_warning": ambiguous,
        "n_particles": int(len(table)),
        "pv_sigma_origin": origin if not presegmented and seg_params.partial_volume else None,
        "phases_from": "presegmented" if presegmented else params.method,
        "particles_from": params.particles,
        "timings_s": timings,
        "engine": "chunked",
        "chunking": chunking,
    }
    if fill is not None:
        provenance["fill"] = fill
    if shading is not None:
        provenance["shading"] = {**shading, "flattened": bool(params.segment.flatten)}
    if "depth_extent" in table.attrs:  # the electrode's first and last slice along its thickness axis
        provenance["depth_extent"] = [int(v) for v in table.attrs["depth_extent"]]
    if coarse is not None:
        provenance.update(coarsen=coarse.factor, coarse_shape=list(coarse.coarse_shape),
                          coarse_separation="whole" if coarse.whole else "chunked",
                          coarse_unlabelled_voxels=coarse.unlabelled)
    return ChunkedAnalysis(table, resolved, tuple(sp), chunking, provenance)


def _open_input(path, kw: dict, chunk_size: int, copy_dir: Path, report):
    """:func:`core.chunked.open_lazy` of a run's input; a compressed file its reader would decompress from the start
    for each box (:func:`core.chunked.inputs.streamed`) is decompressed once into ``copy_dir`` and read from there."""
    from .inputs import decompressed_copy, open_lazy, streamed

    vol = open_lazy(path, chunks=chunk_size, **kw)  # (a crop or alignment that does not fit: refused before the copy)
    if not streamed(path, kw.get("fmt")):
        return vol
    whole = open_lazy(path, chunks=chunk_size, **{k: v for k, v in kw.items() if k not in ("crop", "align")})
    copy = decompressed_copy(path, copy_dir, whole.data.nbytes, progress=lambda f, m: report(0.01 * f, m))
    return open_lazy(copy, chunks=chunk_size, **kw)


def _fill_region_store(grey, value: float, folder: Path, spacing, chunk_size: int):
    """:func:`core.phases.fill_region` of a lazy greyscale as a uint8 Zarr store in ``folder`` (made here), read
    in slabs of whole z planes (each plane's fill is found from its border) and written in chunks of
    ``chunk_size``; returns the store's array."""
    import dask.array as da
    import zarr

    from ..phases.fill import fill_region
    from .store import write_zarr

    from ..slices import slice_axis

    folder.mkdir()
    if slice_axis(grey.shape) not in (None, 0):  # a single slice across y or x: flooded in its own plane, whole
        region = da.from_array(fill_region(grey, value).view(np.uint8), chunks=chunk_size)
    else:
        plane_bytes = int(grey.shape[1]) * int(grey.shape[2]) * grey.dtype.itemsize
        depth = int(max(1, min(grey.shape[0], (64 << 20) // max(plane_bytes, 1))))
        slabs = grey.rechunk((depth, -1, -1))
        region = slabs.map_blocks(lambda b: fill_region(b, value).view(np.uint8), dtype=np.uint8)
    write_zarr(region.rechunk((chunk_size,) * 3), folder / "no_data.zarr", spacing=spacing,
               name="outside the field of view")
    return zarr.open_array(os.fspath(folder / "no_data.zarr" / "0"), mode="r")

