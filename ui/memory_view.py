"""The memory a full analysis will need, shown before the run (the Segment page's "Full analysis")."""

from __future__ import annotations

from typing import Callable

import streamlit as st

from core.memory import BUDGET_ENV, MemoryFit, memory_fit

from .settings import chunked_always

__all__ = ["chunked_line", "memory_line", "memory_note", "unreachable_line"]

_LIMITS = {"memory": "available on this machine", "address space": "left under this server's address-space limit",
           "budget": f"allowed by {BUDGET_ENV}"}
_WORKERS = {"workers": "judged against the cluster's workers: {} left of their smallest memory limit once a worker "
                       "process's own share is counted",
            "workers budget": "judged against the cluster's workers: {} allowed by " + BUDGET_ENV}


def _gb(n: int) -> str:
    g = n / 1e9
    return f"{g:.1f} GB" if g >= 0.95 else f"{g:.2f} GB"


def _available(fit: MemoryFit) -> str:
    if fit.on_workers:
        return _WORKERS[fit.limited_by].format(_gb(fit.available))
    return f"{_gb(fit.available)} {_LIMITS[fit.limited_by]}"


def memory_line(fit: MemoryFit) -> str:
    """The estimate and what is available, in words (no streamlit: testable alone)."""
    z, y, x = fit.shape
    head = (f"Estimated peak memory of this run: about {_gb(fit.needed)} ({z}×{y}×{x} voxels, {fit.method}); "
            f"{_available(fit)}")
    if fit.fits:
        return head + "."
    return head + (": the run would not fit. Make a downsampled copy of the sample (Samples page) or crop the "
                   f"volume, or give the {'workers' if fit.on_workers else 'server'} more memory.")


def unreachable_line(address: str, timeout: float) -> str:
    """The jobs' scheduler did not answer, so the run is not offered, in words (no streamlit)."""
    return (f"The Dask scheduler at {address} (DETACH_SCHEDULER) did not answer within {timeout:g} s, so the "
            "memory of its workers, which would run this analysis, is unknown and the run is not offered: start "
            "the cluster or correct the address.")


def chunked_line(fit: MemoryFit, chunk: int, workers: int | None) -> str:
    """Why and how a run goes to the chunked engine, in words (no streamlit)."""
    z, y, x = fit.shape
    on = f"{workers} worker{'s' if workers != 1 else ''}" if workers else "the cluster's workers"
    how = (f"chunks of {chunk}³ voxels on {on}, the phases and labels stored as Zarr and shown a slice at a "
           "time.")
    if fit.fits:
        return (f"This run goes to the chunked engine, as DETACH_CHUNKED=always asks ({z}×{y}×{x} voxels; the "
                f"whole-volume run would need about {_gb(fit.needed)}): " + how)
    return (f"The whole-volume run would need about {_gb(fit.needed)} ({z}×{y}×{x} voxels, {fit.method}); "
            f"{_available(fit)}. It runs on the chunked engine instead: " + how)


def memory_note(shape, dtype, params, *, presegmented: bool = False,
                chunked: Callable[[], int | None] | None = None, workers: int | None = None,
                scheduler: str | None = None) -> bool:
    """A caption with the estimated peak and what is available, a warning when it does not fit; whether it runs.

    The volume is already in the server's memory (the page holds it), so it
    is not counted again, as in the run's own check (:func:`core.memory.check_memory`).
    ``chunked``: called when the whole-volume run does not fit, it gives the
    chunk edge when the run goes to the chunked engine instead, else None
    (:func:`ui.jobs.chunked_engine`; ``workers`` its local workers): then it
    runs, and the note says how.
    ``scheduler``: the address of the cluster that runs the jobs
    (:func:`ui.jobs.cluster_address`); the run is then judged against the
    smallest memory limit its workers report, as the job judges it
    (:func:`core.chunked.analysis.chunked_engine_for`), and not offered when
    the scheduler does not answer.  Workers without a memory limit leave it
    on this server's memory, as the job does.
    """
    try:
        limit = None
        if scheduler is not None:
            from core.chunked.analysis import SchedulerUnreachableError, cluster_worker_memory

            try:
                limit = cluster_worker_memory(scheduler, unreachable="raise")
            except SchedulerUnreachableError as exc:
                st.warning(unreachable_line(exc.address, exc.timeout))
                return False
        fit = memory_fit(shape, dtype, params, presegmented=presegmented, resident_input=True, worker_limit=limit)
    except ValueError as exc:  # an unreadable DETACH_MEMORY_BUDGET
        st.warning(str(exc).rstrip(".") + ".")
        return False
    chunk = chunked() if chunked is not None and (not fit.fits or chunked_always()) else None
    if chunk is not None:
        st.info(chunked_line(fit, chunk, workers))
        return True
    if fit.fits:
        st.caption(memory_line(fit))
    else:
        st.warning(memory_line(fit))
    return fit.fits
