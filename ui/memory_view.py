"""The memory a full analysis will need, shown before the run (the Segment page's "Full analysis")."""

from __future__ import annotations

from typing import Callable

import streamlit as st

from core.memory import BUDGET_ENV, MemoryFit, memory_fit

from .settings import chunked_always

__all__ = ["chunked_line", "memory_line", "memory_note"]

_LIMITS = {"memory": "available on this machine", "address space": "left under this server's address-space limit",
           "budget": f"allowed by {BUDGET_ENV}"}


def _gb(n: int) -> str:
    g = n / 1e9
    return f"{g:.1f} GB" if g >= 0.95 else f"{g:.2f} GB"


def memory_line(fit: MemoryFit) -> str:
    """The estimate and what is available, in words (no streamlit: testable alone)."""
    z, y, x = fit.shape
    head = (f"Estimated peak memory of this run: about {_gb(fit.needed)} ({z}×{y}×{x} voxels, {fit.method}); "
            f"{_gb(fit.available)} {_LIMITS[fit.limited_by]}")
    if fit.fits:
        return head + "."
    return head + (": the run would not fit. Make a downsampled copy of the sample (Samples page) or crop the "
                   "volume, or give the server more memory.")


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
            f"{_gb(fit.available)} {_LIMITS[fit.limited_by]}. It runs on the chunked engine instead: " + how)


def memory_note(shape, dtype, params, *, presegmented: bool = False,
                chunked: Callable[[], int | None] | None = None, workers: int | None = None) -> bool:
    """A caption with the estimated peak and what is available, a warning when it does not fit; whether it runs.

    The volume is already in the server's memory (the page holds it), so it
    is not counted again, as in the run's own check (:func:`core.memory.check_memory`).
    ``chunked``: called when the whole-volume run does not fit, it gives the
    chunk edge when the run goes to the chunked engine instead, else None
    (:func:`ui.jobs.chunked_engine`; ``workers`` its local workers): then it
    runs, and the note says how.
    """
    try:
        fit = memory_fit(shape, dtype, params, presegmented=presegmented, resident_input=True)
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
