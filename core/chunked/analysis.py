"""The whole analysis on the chunked engine: input file -> phases -> particles -> table, never a whole volume.

:func:`analyze_chunked` is what ``python -m core analyze --chunk-size N`` (and
a recipe entry with ``chunking``) runs: :func:`~core.chunked.open_lazy`,
:func:`~core.chunked.segment_chunked` (or :func:`~core.chunked.phases_from_map`),
the phases written to ``phases.zarr`` and read back from it,
:func:`~core.chunked.separate_chunked`, the labels written to ``labels.zarr``,
and :func:`~core.chunked.measure_chunked` on the two stores.  The tasks run on
the current dask scheduler (the client of :func:`~core.chunked.cluster`).

What it does not do (refused with one sentence): the 3D U-Net and the
classifier methods, the regularised seeding, and ``downsample`` (each needs
its own chunk-wise rule).  The labels follow the halo rule of
:func:`~core.chunked.separate_chunked`: not bit-identical to the whole-volume
labels, but the same chunking gives the same labels and table every time
(so a recipe records the chunking).

The default halo
----------------
Without a known largest particle the halo is half the chunk edge
(:func:`default_halo`), so the window of a task is ``(2 c)³`` voxels: the
halo rule then holds for particles up to ``c / 2`` voxels across; give the
largest particle diameter (``max_diameter_um``) for bigger ones.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["ChunkedAnalysis", "analyze_chunked", "default_halo", "lazy_checksum"]

Progress = Callable[[float, str], None]


def default_halo(chunk_size: int) -> int:
    """The particle halo without a known largest particle: half the chunk edge, at least 4 voxels."""
    return max(4, int(chunk_size) // 2)


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
        ``{"chunk_size": c, "halo": h}``.
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
    """:func:`core.pipeline.checksum` of a dask array, computed slab by slab along z (the same digest)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(array.dtype).encode() + str(tuple(int(n) for n in array.shape)).encode())
    z, y, x = (int(n) for n in array.shape)
    step = max(1, min(z, (1 << 26) // max(1, y * x * array.dtype.itemsize)))
    for z0 in range(0, z, step):
        slab = np.ascontiguousarray(array[z0: z0 + step].compute())
        h.update(memoryview(slab.reshape(-1)).cast("B"))
    return h.hexdigest()


def check_supported(params, *, downsample: int = 1, presegmented: bool = False) -> None:
    """Refuse (ValueError, one sentence) what the chunked engine does not run."""
    if downsample > 1:
        raise ValueError("the chunked engine (--chunk-size) does not downsample: downsample the volume first or "
                         "leave --downsample out")
    if not presegmented and params.method != "threshold":
        raise ValueError(f"the chunked engine (--chunk-size) runs the threshold method, not {params.method!r}")
    if params.particles != "watershed" or params.seeding != "phases":
        raise ValueError("the chunked engine (--chunk-size) separates particles by the watershed of the phases only")


def analyze_chunked(spec, params=None, *, out: str | os.PathLike, chunk_size: int, halo: int | None = None,
                    spacing=None, verify_checksum: str | None = None,
                    progress: Progress | None = None) -> ChunkedAnalysis:
    """Analyse a file input chunk by chunk; write ``out/phases.zarr`` and ``out/labels.zarr``.

    Parameters
    ----------
    spec : core.inputs.FileInput
    params : core.pipeline.AnalysisParams or None
    out : path
        An existing folder (the stores and a scratch folder, removed at the end, go in it).
    chunk_size : int
        Chunk edge (voxels).
    halo : int or None
        Particle halo (voxels); None: :func:`default_halo`.
    spacing : float or (3,) float, µm, optional
        Overrides the file's voxel size.
    verify_checksum : str or None
        Refuse (:class:`core.recipe.ChecksumMismatch`) an input whose checksum differs.
    progress : callable(fraction, message), optional

    Returns
    -------
    ChunkedAnalysis
    """
    import dask.array as da

    from ..inputs import FileInput
    from ..pipeline import AnalysisParams, versions
    from .inputs import open_lazy
    from .measures import measure_chunked, separator_side_chunked
    from .particles import separate_chunked
    from .phases import phases_from_map, segment_chunked
    from .store import write_zarr

    params = params or AnalysisParams()
    if not isinstance(spec, FileInput):
        raise TypeError(f"the chunked engine reads a file input, got {type(spec).__name__}")
    presegmented = spec.phase_map is not None
    check_supported(params, downsample=spec.downsample, presegmented=presegmented)
    chunk_size = int(chunk_size)
    halo = default_halo(chunk_size) if halo is None else int(halo)
    report = progress or (lambda f, m: None)
    out = Path(out)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    kw = spec.load_kwargs()
    kw.pop("mmap", None)
    if spacing is not None:
        kw["spacing"] = spacing
    vol = open_lazy(spec.path, chunks=chunk_size, **kw)
    sp = vol.spacing
    nblocks = int(np.prod(vol.data.numblocks))
    report(0.01, f"chunked engine: {'×'.join(map(str, vol.shape))} voxels in {nblocks} chunks of {chunk_size}³, "
                f"halo {halo}")
    checksum = lazy_checksum(vol.data)
    if verify_checksum is not None and checksum != verify_checksum:
        from ..recipe import ChecksumMismatch

        raise ChecksumMismatch(f"the input ({spec.describe()}) has checksum {checksum}, but the recipe recorded "
                               f"{verify_checksum}: the data changed (replay with --no-verify to analyse it anyway)")
    seg_params, origin = params.segment, None
    if presegmented:
        phases = phases_from_map(vol.data, spec.phase_map)
    else:
        report(0.02, "phases: global values from a sample")
        seg = segment_chunked(vol, params.segment)
        phases, seg_params, origin = seg.phases, seg.params, seg.pv_sigma_origin
    report(0.05, "phases: chunk by chunk -> phases.zarr")
    write_zarr(phases, out / "phases.zarr", spacing=sp, name="phases")
    phases = da.from_zarr(os.fspath(out / "phases.zarr" / "0"))
    timings["phases_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    report(0.35, "particles: chunk by chunk with a halo, joined across chunk faces")
    scratch = out / ".chunked-scratch"
    try:
        res = separate_chunked(phases, sp, params.separation, halo=halo, scratch=scratch)
        report(0.75, f"particles: {res.n_particles} -> labels.zarr")
        write_zarr(res.labels, out / "labels.zarr", spacing=sp, name="labels")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    labels = da.from_zarr(os.fspath(out / "labels.zarr" / "0"))
    timings["particles_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    report(0.85, f"measuring {res.n_particles} particles")
    side, contrast = params.separator_side, None
    if side == "auto":
        side, contrast = separator_side_chunked(phases, params.axis)
    table = measure_chunked(labels, phases, sp, axis=params.axis, separator_side=side)
    timings["metrics_s"] = time.perf_counter() - t0
    report(1.0, f"done: {len(table)} particles")

    resolved = replace(params, segment=seg_params, separator_side=side)
    chunking = {"chunk_size": chunk_size, "halo": halo}
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
        "n_particles": int(len(table)),
        "pv_sigma_origin": origin if not presegmented and seg_params.partial_volume else None,
        "phases_from": "presegmented" if presegmented else params.method,
        "particles_from": params.particles,
        "timings_s": timings,
        "engine": "chunked",
        "chunking": chunking,
    }
    return ChunkedAnalysis(table, resolved, tuple(sp), chunking, provenance)
