"""Memory known before a run: the estimated peak of an analysis, what the machine allows, and the refusal.

:func:`estimate_peak_bytes` predicts, from the volume's shape and dtype and
the analysis parameters only, how much memory :func:`core.pipeline.run` adds
to the process that calls it.  :func:`available_bytes` says how much the
process may still take, and :func:`check_memory` refuses a run that would
not fit with :class:`MemoryBudgetError` (a :class:`MemoryError`), whose
message is one sentence with both figures and the remedies, instead of the
process aborting half-way (``std::bad_alloc`` in a distance transform kills a
CLI run, or the dashboard's server with every user's session).
:func:`core.pipeline.run` calls it first, before any heavy work.

The estimate
------------
Per step of the pipeline, in bytes per voxel of the analysed grid, fitted to
the peak RSS measured by ``bench/memory_estimate.py`` (64³ to 256³, each
method; one checking run at 512³); ``N`` voxels, ``S1`` the phase
segmentation's slab (``min(N, max(16 M, N / 4))`` voxels; ``N / 8`` until session 28), ``S2`` the
distance transform's slab (``min(N, max(32 M, N / 4))``), ``B`` the central
block of at most 128³ voxels the thresholds and blur are read from:

- input: its dtype's size per voxel (pages of a memory-mapped file count
  once read; a volume already in memory is counted again, a small
  over-estimate);
- threshold phases: ``max(1 N + 11.9 S1, 4 N + 25 B)`` (+ 8 S1 with a
  denoising filter, not measured);
- the blur readings of a greyscale on the central block (the partial-volume
  correction's blur fit; with "auto" seeding or refinement also
  :func:`core.seeding.estimate_blur` and the noise: float32 Gaussians and
  derivatives of the block and the indices of its edge voxels):
  ``3 N + 48 B`` (measured 47.9 B per voxel at 128³, where ``B`` is the
  whole volume, session 21; 56.2 with the refinement and the deconvolved
  seeding, which read the blur again on the block, session 27, when ``42 B``
  became ``48 B``; it sets the peak of a greyscale up to ~192³);
- particles, crack-aware watershed by dynamics (the default):
  ``5.6 N + 0.5 S2``, phases included (refitted in session 21 after the
  exact in-place distance transform and the flood in two halves: 5.55 B per
  voxel at 512³, 5.8 at 384³, 6.0 at 256³ with the phases' byte; it was
  ``3.5 N + 5.5 S2``, 0.6 B per voxel low at 512³ once the flood set the
  peak); with ``markers="peaks"`` or given
  markers the whole-volume scikit-image path, 45 N (not measured: from the
  scikit-image baseline of ``bench/speed_memory.py``);
- 3D U-Net (model and hybrid): ``5 N + 115 T³ + 48 T_z Y X + 192 MiB``
  (``T`` the tile side, ``T_z`` the tile's depth: the network's activations
  and the float32 accumulator of one z-row of tiles; the fixed part added in
  session 21, when runs of 64³ to 192³ peaked 31-179 MiB above the rest with
  torch 2.13); its particles from the cue
  ``15 N`` (measured with 32-voxel tiles, where this step sets the peak);
  hybrid adds ``4 N`` for the thresholded phases;
- classifier trained on brush strokes (:mod:`core.classify`), the phases:
  ``5 N + 2.5 min(116 N, 256 MiB)`` (+ the input's item size per voxel for a
  floating-point input: the filled copy made when it holds NaN); the phases
  and the per-voxel confidence, and the feature bank of one slab (about
  256 MiB by design, 116 B per voxel with the default 25 features, 2.5 times
  for scikit-image's intermediate arrays).  A rough term, not measured: the
  particles then cost what they cost after the threshold method;
- seeding on the deconvolved mask (``AnalysisParams.seeding="deconvolved"``,
  :mod:`core.seeding`; the default "auto" is estimated as "phases", and
  :func:`core.pipeline.run` checks again when it picks the deconvolved mask,
  falling back to the phases where that does not fit), from the mask through
  the flood and the extension: ``5.6 N + 3.0 S2`` (refitted in session 27,
  after the mask came to be packed plane by plane beside the deconvolved
  float32 volume and the particles to grow over the phase codes: with the
  refinement on, runs of the demo-like electrode peaked at 56.2 / 18.6 /
  14.5 / 7.8 B per voxel at 128³ / 192³ / 256³ / 384³, section
  ``memory_estimate_s27``, and the 512³ blurred packing at 7.7 with its flood
  the highest step; the ``S2`` term covers the fixed part that dominates
  small volumes.  It was ``15 N``, fitted when the deconvolution's float32
  volumes were three: 2.2 times the 384³ peak; a blurred volume of the seed
  study's size, its input in memory, needed 19.4 GB by it and 9.1 GB now);
- seeding on a regularised mask (``seeding="regularised"``): ``15 N`` (three
  float32 volumes of the smoothing, the phases and a mask; measured 16.5 B
  per voxel with the uint16 input at 256³, 15.2 at 192³, against 14.3 of the
  default at both; not remeasured);
- the phase refinement (``AnalysisParams.refine`` "on" or "nmc",
  :mod:`core.phases.forward`): ``7 N`` (4.25 B per voxel at its peak,
  tracemalloc at 160³ and 256³ in session 26, when the residual came to be
  filtered plane by plane in numba and the pipeline refines the thresholded
  phases in place, keeping them packed at two bits a voxel: 8.0-8.3 in
  session 25, 12 before; the thresholded phases it refines; and margin;
  freed before the particles step).  "auto" is estimated as not
  refining, and :func:`core.pipeline.run` checks again when it picks a
  refinement, leaving the phases as thresholded where that does not fit;
- 8 MiB fixed; and, where torch is not imported yet, its 0.55 GiB.

The run's peak is the input plus the largest step.  Measured error: see the
tables in ``bench/RESULTS.md`` (section ``memory_estimate_s27``: the threshold
method and the deconvolved path from 128³ to 384³, 1-21 % above the measured
peak; section ``memory_estimate_s21``, after that session's
refit): from 128³ up the estimate was 2-91 % above the measured peak (2-15 %
for the threshold method and presegmented phases from 192³ up, 36-91 % for
the network from 192³ up; every 64³ run, where fixed costs dominate, further
above), never below it; the 512³ threshold run of section speed_memory_s20
measured 966 MiB against 997 estimated.

Available memory
----------------
The smallest of: ``MemAvailable`` of ``/proc/meminfo``; the address-space
limit (``RLIMIT_AS``, ``ulimit -v``) minus the process's current size
(``VmSize``) minus the address space a first run maps besides its data
(numba's compiled kernels, thread stacks and allocator arenas: about 1.3 GiB;
measured on cold 64³ runs, 1.2 GB for the threshold method and 1.6 GB with the
network, of which 0.55 GB is torch's import, counted in the estimate); and the budget in the
environment variable ``DETACH_MEMORY_BUDGET``: bytes, or a number with a unit
``K``, ``M``, ``G``, ``T`` (powers of 1024; ``"6G"``, ``"6 GB"``, ``"0.5T"``),
for a machine shared by several users or a server that must keep headroom.
"""

from __future__ import annotations

import math
import os
import re
import resource
import sys
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BUDGET_ENV", "chunked_peak_bytes", "needs_chunked_engine", "MemoryBudgetError", "MemoryFit", "available_bytes", "check_memory", "estimate_peak_bytes",
    "memory_fit", "method_label",
]

#: Environment variable holding a memory budget for an analysis (bytes, or e.g. "6G").
BUDGET_ENV = "DETACH_MEMORY_BUDGET"

_GIB = 2**30
_FIXED = 8 * 2**20
_TORCH_IMPORT = int(0.55 * _GIB)
#: The network step's fixed part (torch's workspaces and caches over a run, beyond the tile terms): the measured
#: peak of a model / hybrid run stood 31-179 MiB above the tile terms from 64³ to 192³ in session 21.
_NETWORK_FIXED = 192 * 2**20
#: Seeding on a regularised mask (core.seeding): bytes per voxel of that step.
_SEEDING_BYTES = 15.0
#: Seeding on the deconvolved mask, through the flood and the extension: bytes per voxel and per S2 voxel.
_DECONV_N, _DECONV_S2 = 5.6, 3.0
#: The blur readings of a greyscale on the central block: bytes per voxel and per block voxel.
_READING_N, _READING_BLOCK = 3.0, 48.0
#: The phase refinement (core.phases.forward): bytes per voxel of that step, the phases it refines in place included.
_REFINE_BYTES = 7.0
#: The classifier's feature bank: bytes per voxel (default 25 features + 4, float32), slab target, intermediates.
_CLF_FEATURE_BYTES = 116
_CLF_SLAB_BYTES = 256 * 2**20
_CLF_INTERMEDIATE = 2.5
#: Address space a first run in a process maps besides its data and torch (threshold / with the network), see the
#: module docstring.
_COLD_ADDRESS_SPACE = {"threshold": int(1.3 * _GIB), "network": int(1.3 * _GIB)}
#: Kinds of run this process has completed (their cold address space is mapped already).
_WARM: set[str] = set()


class MemoryBudgetError(MemoryError):
    """An analysis would need more memory than is available; the message is one sentence with both figures."""


@dataclass(frozen=True)
class MemoryFit:
    """What :func:`memory_fit` found: bytes needed, bytes available, and whether the one fits in the other.

    ``limited_by`` names what set ``available``: ``"memory"`` (MemAvailable),
    ``"address space"`` (``ulimit -v``) or ``"budget"`` (:data:`BUDGET_ENV`)
    on this machine; ``"workers"`` (the smallest memory limit of a cluster's
    workers) or ``"workers budget"`` (:data:`BUDGET_ENV`, lower than that)
    when the run is judged for a cluster's workers (``memory_fit(worker_limit=)``).
    ``shape`` is the analysed grid (after downsampling).
    """

    needed: int
    available: int
    limited_by: str
    shape: tuple[int, int, int]
    method: str

    @property
    def fits(self) -> bool:
        return self.needed <= self.available

    @property
    def on_workers(self) -> bool:
        """Judged against the memory limit of a cluster's workers, not this machine's memory."""
        return self.limited_by in ("workers", "workers budget")


def method_label(params=None, *, presegmented: bool = False) -> str:
    """The run's kind in words: "threshold", "3D U-Net", "trained classifier", "threshold + U-Net particles" or
    "presegmented phases"."""
    if presegmented:
        return "presegmented phases"
    method = getattr(params, "method", "threshold")
    particles = getattr(params, "particles", "watershed")
    if method == "model":
        return "3D U-Net"
    if method == "classifier":
        return "trained classifier"
    return "threshold + U-Net particles" if particles == "model" else "threshold"


def _grid(shape, downsample: int) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be three positive sizes (z, y, x), got {shape}")
    f = int(downsample)
    if f < 1:
        raise ValueError(f"downsample must be >= 1, got {downsample!r}")
    return tuple(max(1, s // f) for s in shape)  # type: ignore[return-value]


def _network_bytes(shape, tile: int) -> float:
    """The network step: phases and cue out, activations of one tile, the float32 accumulator of one z-row."""
    n = math.prod(shape)
    t = [min(tile, -(-s // 8) * 8) for s in shape]
    plane = (-(-shape[1] // 8) * 8) * (-(-shape[2] // 8) * 8)
    return 5 * n + 115 * math.prod(t) + 48 * t[0] * plane


def estimate_peak_bytes(shape, dtype, params=None, *, downsample: int = 1, presegmented: bool = False) -> int:
    """Memory :func:`core.pipeline.run` adds to its process at its peak, in bytes (see the module docstring).

    Parameters
    ----------
    shape : (3,) int
        The volume's shape (z, y, x) as stored.
    dtype : numpy dtype
        Its voxel type (the analysed volume is float32 when downsampled).
    params : core.pipeline.AnalysisParams, optional
        Method (threshold / model / hybrid / classifier), denoising, flattening (a copy of the volume), separation markers and tile size.
    downsample : int
        Block-mean factor applied at loading (1: none); the analysis runs on ``shape // downsample``.
    presegmented : bool
        The volume holds phase codes: no segmentation.

    Returns
    -------
    int
        Bytes, the input's pages included, torch's import where it is needed and not done yet.
    """
    from .pipeline import AnalysisParams

    params = params or AnalysisParams()
    grid = _grid(shape, downsample)
    n = math.prod(grid)
    itemsize = 4 if int(downsample) > 1 else np.dtype(dtype).itemsize
    s1 = min(n, max(16_000_000, n // 4))
    s2 = min(n, max(32_000_000, n // 4))
    block = math.prod(min(s, 128) for s in grid)
    if params.separation.markers == "hmaxima":
        particles = 5.6 * n + 0.5 * s2
    else:
        particles = 45.0 * n
    network = not presegmented and (params.method == "model" or params.particles == "model")
    if presegmented:
        steps = [particles]
    else:
        steps = []
        if params.method == "threshold":
            phase = max(1 * n + 11.9 * s1, 4 * n + 25 * block)
            if params.segment.denoise != "none":
                phase += 8 * s1
            steps.append(phase)
            steps.append(_READING_N * n + _READING_BLOCK * block)
            if params.refine in ("on", "nmc"):  # "auto": checked again once it picks a refinement
                steps.append(_REFINE_BYTES * n)
        elif params.method == "classifier":
            phase = 5 * n + _CLF_INTERMEDIATE * min(_CLF_FEATURE_BYTES * n, _CLF_SLAB_BYTES)
            if np.dtype(dtype).kind == "f" or int(downsample) > 1:
                phase += itemsize * n
            steps.append(phase)
        if network:
            net = _network_bytes(grid, params.model.tile) + _NETWORK_FIXED
            steps.append(net + (4 * n if params.method == "threshold" else 0))
            steps.append(15.0 * n if params.particles == "model" else particles)
        else:
            steps.append(particles)
        if params.seeding == "deconvolved":  # "auto": checked again once it picks the deconvolved mask
            steps.append(_DECONV_N * n + _DECONV_S2 * s2)
        elif params.seeding == "regularised":
            steps.append(_SEEDING_BYTES * n)
    total = itemsize * n + max(steps) + _FIXED
    if not presegmented and params.segment.flatten:  # the flattened copy lives through the whole run
        total += itemsize * n
    if network and "torch" not in sys.modules:
        total += _TORCH_IMPORT
    return int(math.ceil(total))


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _vm_size() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _budget() -> int | None:
    """:data:`BUDGET_ENV` in bytes, None when unset or empty; ``ValueError`` naming it when unreadable."""
    text = os.environ.get(BUDGET_ENV, "").strip()
    if not text:
        return None
    m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*([KMGT]?)(?:i?B)?", text, re.I)
    if not m or not float(m.group(1)) > 0:
        raise ValueError(f"{BUDGET_ENV}={text!r} is not a memory size: give bytes or a number with K, M, G or T "
                         "(e.g. 6G)")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def _cold_kind(network: bool) -> str:
    return "network" if network else "threshold"


def _limits(network: bool = False) -> list[tuple[int, str]]:
    out = []
    mem = _meminfo_available()
    if mem is not None:
        out.append((mem, "memory"))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    vm = _vm_size()
    if soft != resource.RLIM_INFINITY and vm is not None:
        kind = _cold_kind(network)
        cold = 0 if kind in _WARM else _COLD_ADDRESS_SPACE[kind]
        out.append((max(0, soft - vm - cold), "address space"))
    budget = _budget()
    if budget is not None:
        out.append((budget, "budget"))
    return out


def available_bytes(*, network: bool = False) -> int:
    """Bytes an analysis may still take: the smallest of MemAvailable, the address-space headroom and the budget.

    The address-space headroom is ``RLIMIT_AS`` minus the process's ``VmSize``
    minus what a first run maps besides its data (with the network:
    ``network=True``); see the module docstring.  With none of the three known
    (not Linux, no budget) the answer is unbounded (``sys.maxsize``).
    """
    limits = _limits(network)
    return min(v for v, _ in limits) if limits else sys.maxsize


def memory_fit(shape, dtype, params=None, *, downsample: int = 1, presegmented: bool = False,
               resident_input: bool = False, worker_limit: int | None = None) -> MemoryFit:
    """The estimate of a run and what is available, as data (the dashboard words it).

    ``resident_input``: the volume is already in this process's memory or
    memory-mapped into it, so its bytes are not needed again (a mapped file's
    pages are in the address space already, and page cache the kernel can
    reclaim counts as available).
    ``worker_limit`` (bytes): the run goes to a worker of an existing cluster
    whose smallest memory limit this is
    (:func:`core.chunked.analysis.cluster_worker_memory`): what is available
    is that limit less the worker process's own resident base (:data:`_CHUNK_PROCESS_BASE`: the estimates count
    the run's arrays only, and a worker's nanny kills it near its limit; QA measured a 400³ run at 0.38 GB
    estimated peaking 0.41 GB above a process base of 0.29 GB); :data:`BUDGET_ENV` still caps it.
    """
    from .pipeline import AnalysisParams

    params = params or AnalysisParams()
    needed = estimate_peak_bytes(shape, dtype, params, downsample=downsample, presegmented=presegmented)
    grid = _grid(shape, downsample)
    if resident_input and int(downsample) == 1:
        needed -= np.dtype(dtype).itemsize * math.prod(grid)
    if worker_limit is not None:
        budget = _budget()
        limits = [(max(int(worker_limit) - _CHUNK_PROCESS_BASE, 0), "workers")] + (
            [(budget, "workers budget")] if budget is not None else [])
    else:
        limits = _limits(not presegmented and (params.method == "model" or params.particles == "model"))
    available, limited_by = min(limits) if limits else (sys.maxsize, "memory")
    return MemoryFit(int(needed), int(available), limited_by, grid, method_label(params, presegmented=presegmented))


def _gb(n: int) -> str:
    g = n / 1e9
    return f"{g:.1f}" if g >= 0.95 else f"{g:.2f}" if g >= 0.005 else "0"


def _fitting_factor(shape, dtype, params, presegmented: bool, available: int, resident_input: bool) -> int | None:
    if presegmented:
        return None
    for f in range(2, 9):
        if min(int(s) for s in shape) // f < 1:
            break
        if estimate_peak_bytes(shape, dtype, params, downsample=f) <= available:
            return f
    return None


def check_memory(shape, dtype, params=None, *, downsample: int = 1, presegmented: bool = False,
                 resident_input: bool = False, downsampled: int = 1) -> MemoryFit:
    """Refuse a run whose estimated peak exceeds the available memory; return the :class:`MemoryFit` otherwise.

    ``downsampled``: the factor the volume of ``shape`` was already reduced by
    (only for the downsampling the message suggests, which counts from the
    stored volume).

    Raises
    ------
    MemoryBudgetError
        One sentence: the estimate, the grid and method, what is available, and
        the remedies (a downsampling factor that would fit, or cropping).
    ValueError
        :data:`BUDGET_ENV` is set but not a memory size.
    """
    fit = memory_fit(shape, dtype, params, downsample=downsample, presegmented=presegmented,
                     resident_input=resident_input)
    if fit.fits:
        return fit
    z, y, x = fit.shape
    what = {"memory": "is available", "address space": "is left under the address-space limit (ulimit -v)",
            "budget": f"is allowed by {BUDGET_ENV}"}[fit.limited_by]
    factor = _fitting_factor(shape, dtype, params, presegmented, fit.available, resident_input)
    if presegmented:
        remedy = "crop the volume"
    elif factor is not None and factor * max(int(downsample), 1) * int(downsampled) <= 8:
        remedy = f"downsample (--downsample {factor * max(int(downsample), 1) * int(downsampled)}) or crop the volume"
    else:
        remedy = "downsample (--downsample F) or crop the volume"
    raise MemoryBudgetError(
        f"This analysis needs about {_gb(fit.needed)} GB of memory (estimated for {z}×{y}×{x} voxels, {fit.method}) "
        f"but about {_gb(fit.available)} GB {what}; {remedy}.")


def mark_warm(params=None, *, presegmented: bool = False) -> None:
    """Record that a run of this kind completed in this process (its first-run address space is mapped)."""
    network = not presegmented and params is not None and (params.method == "model" or params.particles == "model")
    _WARM.add(_cold_kind(network))
    if network:
        _WARM.add("threshold")


#: Bytes a voxel of a task's window adds on a worker of the chunked engine (phase pass: 12 + the input's
#: item size, ``core.chunked.phases``; particles: 7.6-7.8, ``core.chunked.particles``; rounded up), and the
#: resident base of each Python process of a local cluster (numpy, numba, dask and distributed imported).
_CHUNK_WINDOW_BYTES = 12
_CHUNK_PROCESS_BASE = 300 * 2**20
_CHUNK_PHASE_HALO = 34


def chunked_peak_bytes(chunk: int, halo: int, workers: int, itemsize: int = 2, *, shape=None) -> int:
    """Rough peak of the chunked engine on a local cluster: ``(workers + 2) * base + workers * window``.

    ``window = max((12 + itemsize) (c + 68)³, 12 (c + 2 halo)³)`` bytes: the
    phase pass's window (its halo about 34 voxels with the default parameters)
    or the particle pass's (``halo``, the particle halo); ``base`` is 300 MiB
    for each worker, the scheduler and the client.  Independent of the volume,
    unless its ``shape`` (Z, Y, X) is given: a window is then cut at the
    volume's faces along each axis (``min(n, c + 2 halo)``: a thin slab or a
    single slice holds far less than a cube).
    """
    c, h = int(chunk), int(halo)
    if shape is None:
        phase, part = (c + 2 * _CHUNK_PHASE_HALO) ** 3, (c + 2 * h) ** 3
    else:
        phase = math.prod(min(int(n), min(c, int(n)) + 2 * _CHUNK_PHASE_HALO) for n in shape)
        part = math.prod(min(int(n), min(c, int(n)) + 2 * h) for n in shape)
    window = max((_CHUNK_WINDOW_BYTES + int(itemsize)) * phase, _CHUNK_WINDOW_BYTES * part)
    return (int(workers) + 2) * _CHUNK_PROCESS_BASE + int(workers) * window


def largest_chunked_halo(chunk: int, workers: int, available: int, itemsize: int = 2, *,
                         one_worker: bool = False, shape=None) -> int:
    """The largest particle halo whose :func:`chunked_peak_bytes` fits ``available`` bytes; -1 if none does.

    Parameters
    ----------
    chunk : int, voxels
    workers : int
        Worker processes of the local cluster (ignored with ``one_worker``).
    available : int, bytes
        E.g. :func:`available_bytes`.
    itemsize : int, bytes
        Of the input's voxels.
    one_worker : bool
        ``available`` is one worker's memory limit (a worker of a cluster by address: its own process base and
        one window count, the scheduler and the client run elsewhere; as :func:`needs_chunked_engine` with
        ``worker_limit``).
    shape : (3,) int, optional
        The volume's: windows cut at its faces (:func:`chunked_peak_bytes`); a halo that makes the windows the
        whole volume along every axis is returned as the volume's longest side when it fits.
    """
    if one_worker:
        workers, available = 1, int(available) + 2 * _CHUNK_PROCESS_BASE
    c, w = int(chunk), int(workers)
    if chunked_peak_bytes(c, 0, w, itemsize, shape=shape) > available:
        return -1
    if shape is not None:  # the windows stop growing at the faces: the largest halo that fits, by bisection
        lo, hi = 0, max(int(n) for n in shape)
        if chunked_peak_bytes(c, hi, w, itemsize, shape=shape) <= available:
            return hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if chunked_peak_bytes(c, mid, w, itemsize, shape=shape) <= available else (lo, mid)
        return lo
    per_worker = (int(available) - (w + 2) * _CHUNK_PROCESS_BASE) // w
    edge = int((per_worker / _CHUNK_WINDOW_BYTES) ** (1 / 3)) + 2
    while edge > c and _CHUNK_WINDOW_BYTES * edge ** 3 > per_worker:
        edge -= 1
    return max(0, (edge - c) // 2)


def needs_chunked_engine(shape, dtype, params=None, *, presegmented: bool = False, chunk: int = 128,
                         workers: int | None = None, worker_limit: int | None = None) -> bool:
    """The memory-budget rule of the CLI: the chunked engine runs when the whole-volume engine would not fit.

    True when :func:`estimate_peak_bytes` exceeds :func:`available_bytes`
    (the comparison on which :func:`check_memory` refuses a whole-volume run,
    the input counted as already mapped) and :func:`chunked_peak_bytes` of
    ``chunk``-voxel chunks, a halo of half a chunk, windows cut at the faces of a volume of ``shape``, and
    ``workers`` (default:
    the cores) fits it.  A volume that fits runs exactly as before, and one
    that fits neither way is refused as before.

    With ``worker_limit`` (bytes: the smallest memory limit of the workers of
    an existing cluster, which run the analysis) the memory compared is one
    worker's instead of this machine's: the whole-volume estimate (the run is
    one task on one worker) and one worker's process base and one window (the
    scheduler and the client run elsewhere); the whole-volume comparison is
    ``memory_fit(worker_limit=).fits``, the one the dashboard shows before a run.
    """
    fit = memory_fit(shape, dtype, params, presegmented=presegmented, resident_input=True, worker_limit=worker_limit)
    if fit.fits:
        return False
    if worker_limit is not None:  # one window, the worker's own base already left out of fit.available
        one = chunked_peak_bytes(chunk, max(4, chunk // 2), 1, np.dtype(dtype).itemsize,
                                 shape=shape) - 3 * _CHUNK_PROCESS_BASE
        return one <= fit.available
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    need = chunked_peak_bytes(chunk, max(4, chunk // 2), workers, np.dtype(dtype).itemsize, shape=shape)
    return need <= fit.available
