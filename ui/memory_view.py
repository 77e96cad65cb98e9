"""The memory a full analysis will need, shown before the run (the Segment page's "Full analysis")."""

from __future__ import annotations

import streamlit as st

from core.memory import BUDGET_ENV, MemoryFit, memory_fit

__all__ = ["memory_line", "memory_note"]

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


def memory_note(shape, dtype, params, *, presegmented: bool = False) -> bool:
    """A caption with the estimated peak and what is available, a warning when it does not fit; whether it fits.

    The volume is already in the server's memory (the page holds it), so it
    is not counted again, as in the run's own check (:func:`core.memory.check_memory`).
    """
    try:
        fit = memory_fit(shape, dtype, params, presegmented=presegmented, resident_input=True)
    except ValueError as exc:  # an unreadable DETACH_MEMORY_BUDGET
        st.warning(str(exc).rstrip(".") + ".")
        return False
    if fit.fits:
        st.caption(memory_line(fit))
    else:
        st.warning(memory_line(fit))
    return fit.fits
