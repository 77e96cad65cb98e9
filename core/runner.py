"""Running an analysis of a workspace sample: begin the row, run the pipeline, store the result or the failure.

:func:`run_analysis` is the only place that ties :mod:`core.workspace` (the
catalogue and the artefacts) to :func:`core.pipeline.run`;
:func:`run_chunked_analysis` the one that ties it to the chunked engine
(:func:`core.chunked.analysis.analyze_chunked`, for a sample too big for the
whole-volume run).  Nothing here imports streamlit.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from .inputs import open_input
from .workspace import Analysis, Sample, Workspace

__all__ = ["PHASE_CODES_MAP", "one_sentence", "run_analysis", "run_chunked_analysis", "run_sweep"]

#: The phase map of stored phase codes (0 pore, 1 CBD, 2 NMC): a chunked analysis's ``phases.zarr`` read as
#: a pre-segmented input (:func:`run_chunked_analysis` with ``phases_from``).
PHASE_CODES_MAP = "0=pore,1=cbd,2=nmc"


def one_sentence(exc: BaseException) -> str:
    """An exception as the one sentence stored with a failed run."""
    import asyncio
    import concurrent.futures

    if type(exc).__name__ == "JobCancelled":  # core.jobs: the user's Cancel (QA: it read "interrupted", a failure)
        return "Cancelled on request before it finished."
    if isinstance(exc, (concurrent.futures.CancelledError, asyncio.CancelledError)) or "cannot schedule new futures after shutdown" in str(exc):
        # a chunk task of the Dask cluster dropped (QA: "_count-d1b3... cancelled for reason: unknown")
        return ("The Dask cluster dropped the run's tasks before they finished (its scheduler stopped or restarted?); "
                "run it again.")
    if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit, a UI framework stopping the run
        return f"The run was interrupted ({type(exc).__name__})."
    msg = str(exc).strip().replace("\n", " ") or type(exc).__name__
    if isinstance(exc, KeyError):
        msg = f"missing key {msg}"
    return msg.rstrip(".") + "."


def run_analysis(
    ws: Workspace, sample: Sample | int, volume: np.ndarray | None = None, params=None, *,
    presegmented: bool | None = None, progress: Callable[[float, str], None] | None = None,
    extra_provenance: dict | None = None,
) -> Analysis:
    """Run :func:`core.pipeline.run` on a sample's volume and store the result in the workspace.

    The sample's spacing, thickness axis and separator side override those
    in ``params``.  On any error the analysis is marked failed (with the
    error as one sentence), its partial files are removed and the error is
    re-raised; earlier analyses are untouched.

    Parameters
    ----------
    ws : Workspace
    sample : Sample or int
    volume : (Z, Y, X) ndarray, optional
        Greyscale, or phase codes when ``presegmented``; default: the sample's
        input opened by :func:`core.inputs.open_input` (pass it when it is
        already in memory).
    params : core.pipeline.AnalysisParams, optional
    presegmented : bool, optional
        ``volume`` holds phase codes; default: what the sample's input says.
    progress : callable(fraction, message), optional
    extra_provenance : dict, optional
        Merged into the stored provenance (e.g. the analysis the phases came from).

    Returns
    -------
    Analysis
        The finished row.
    """
    from .pipeline import AnalysisParams, run

    s = sample if isinstance(sample, Sample) else ws.get_sample(sample)
    if volume is None:  # (a demo's generation says its steps: QA walk 13 read "reading the volume" for 2.5 min)
        volume = open_input(s.input, cache_dir=ws.cache_dir(),
                            progress=(lambda f, m: progress(0.0, m)) if progress is not None else None).volume
    if presegmented is None:
        presegmented = s.input.presegmented
    params = params or AnalysisParams()
    params = replace(params, axis=s.axis, separator_side=s.separator_side)
    aid = ws.begin_analysis(s.id, params)
    # what was read, as it was at run time (the sample may change later): enough to replay
    snapshot = {"input": {"source": s.source, "source_options": s.source_options}}
    if (extra_provenance or {}).get("phases_from_analysis") is not None:  # phases reused: so is their blur
        snapshot["pv_sigma_origin"] = ws.get_analysis(int(extra_provenance["phases_from_analysis"])).pv_sigma_origin
    try:
        result = run(volume, params, spacing=s.spacing, presegmented=presegmented, progress=progress,
                     downsampled=s.downsample, aligned=getattr(s.input, "align", None) is not None)
        _saving(progress, len(result.table))
        return ws.finish_analysis(aid, result, extra_provenance={**snapshot, **(extra_provenance or {})})
    except BaseException as exc:
        ws.fail_analysis(aid, one_sentence(exc))
        raise


def _saving(progress, n: int) -> None:
    """Said while the results are written: the run's own last word ("done: 150 particles") showed in the jobs panel
    as "running: done" until the job ended (QA walk 9)."""
    if progress is not None:
        progress(1.0, f"saving the results ({n} particle{'' if n == 1 else 's'})")


def run_chunked_analysis(
    ws: Workspace, sample: Sample | int, params=None, *, chunk_size: int, local_workers: int | None = None,
    phases_from: int | None = None, progress: Callable[[float, str], None] | None = None,
    worker_memory: int | None = None,
) -> Analysis:
    """Run :func:`core.chunked.analysis.analyze_chunked` on a sample and store it as a Zarr-backed analysis.

    The phases and labels are written chunk by chunk into the analysis's
    folder (``phases.zarr``, ``labels.zarr``) and never held whole
    (:meth:`Workspace.finish_chunked_analysis`; the pages read them with
    :meth:`Workspace.open_phases`).  The chunks run on the current dask
    scheduler (a job on a cluster worker: that cluster).  As
    :func:`run_analysis`: the sample's spacing, thickness axis and separator
    side override ``params``; on any error the analysis is marked failed and
    the error re-raised.  The voxels of each phase are counted too
    (``provenance["phase_voxels"]``: pore, CBD, NMC), so that the phase
    fractions never need the whole volume.

    Parameters
    ----------
    ws : Workspace
    sample : Sample or int
        A file input (:func:`core.chunked.analysis.check_supported` says what runs).
    params : core.pipeline.AnalysisParams, optional
    chunk_size : int
        Chunk edge, voxels.
    local_workers : int, optional
        Worker processes of a local cluster (the estimated halo is kept within their memory).
    worker_memory : int, optional
        On a cluster by address: its workers' smallest memory limit, bytes (the estimated halo is kept within
        it; :func:`core.chunked.analysis.client_worker_memory`).
    phases_from : int, optional
        A chunked analysis of this sample whose stored phases are separated and measured again
        (they are read from its ``phases.zarr`` as a pre-segmented input).
    progress : callable(fraction, message), optional

    Returns
    -------
    Analysis
        The finished row (``provenance["engine"] == "chunked"``, with its ``chunking``).
    """
    from .chunked.analysis import analyze_chunked
    from .inputs import FileInput
    from .pipeline import AnalysisParams

    s = sample if isinstance(sample, Sample) else ws.get_sample(sample)
    params = replace(params or AnalysisParams(), axis=s.axis, separator_side=s.separator_side)
    spec, extra = s.input, {"input": {"source": s.source, "source_options": s.source_options}}
    if phases_from is not None:
        src = ws.get_analysis(int(phases_from))
        if not ws.is_chunked(src):
            raise ValueError(f"analysis {src.id} is stored whole (npz), not as Zarr: separate it with run_analysis")
        spec = FileInput(ws.root / src.phases_path, format="zarr", dataset="0", phase_map=PHASE_CODES_MAP)
        extra.update(phases_from_analysis=src.id, pv_sigma_origin=src.pv_sigma_origin)
    elif not isinstance(spec, FileInput):
        raise ValueError(f"the chunked engine reads a file; sample {s.name!r} is a {type(spec).__name__}")
    aid = ws.begin_analysis(s.id, params)
    try:
        out = ws.analysis_dir(aid)
        out.mkdir(parents=True, exist_ok=True)
        res = analyze_chunked(spec, params, out=out, chunk_size=chunk_size, spacing=s.spacing,
                              local_workers=local_workers, worker_memory=worker_memory, progress=progress)
        _saving(progress, len(res.table))
        extra["phase_voxels"] = _phase_voxels(out / "phases.zarr")
        return ws.finish_chunked_analysis(aid, res, extra_provenance=extra)
    except BaseException as exc:
        ws.fail_analysis(aid, one_sentence(exc))
        raise


def _phase_voxels(store) -> list[int]:
    """Voxels of pore, CBD and NMC in a ``phases.zarr`` store, counted chunk by chunk (the current dask scheduler)."""
    import os

    import dask
    import dask.array as da
    import zarr

    phases = da.from_zarr(zarr.open_array(os.fspath(store / "0"), mode="r"))
    return [int(n) for n in dask.compute(*[(phases == k).sum(dtype=np.int64) for k in range(3)])]


def run_sweep(ws: Workspace, analysis_id: int, options=None, *,
              progress: Callable[[float, str], None] | None = None):
    """Run the segmentation sweep (:func:`core.uncertainty.sweep`) of a finished analysis and keep it in the workspace.

    The analysis's stored phases and table are the baseline; the volume is its
    sample's input as :meth:`Workspace.load_volume` reads it.

    Parameters
    ----------
    ws : Workspace
    analysis_id : int
        A finished analysis.
    options : core.uncertainty.SweepParams, optional
    progress : callable(fraction, message), optional

    Returns
    -------
    core.uncertainty.SweepResult
        Also saved with :meth:`Workspace.save_sweep`.
    """
    from .uncertainty import SweepParams, sweep

    a = ws.get_analysis(int(analysis_id))
    if a.status != "done":
        raise ValueError(f"analysis {a.id} is {a.status}, not finished: there is nothing to sweep")
    options = options or SweepParams()
    sample = ws.get_sample(a.sample_id)
    spacing = tuple(float(v) for v in (a.provenance.get("spacing_um") or sample.spacing))
    result = sweep(ws.load_volume(sample), a.resolved, spacing=spacing, options=options,
                   baseline_phases=ws.load_phases(a), baseline_table=ws.load_table(a.id), progress=progress)
    ws.save_sweep(a.id, options, result)
    return result
