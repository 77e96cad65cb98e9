"""Type checks of parameter fields (the dataclasses' ``__post_init__``): one sentence naming the field.

Parameters come from JSON (``--params``, recipes, the workspace catalogue), so a
string or a boolean can arrive where a number goes; these checks turn that into
"h_um must be a number, got 'abc'" rather than a comparison error from deep
inside the analysis.  :meth:`core.pipeline.AnalysisParams.from_dict` prefixes
the group (``separation.h_um``).
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

__all__ = ["check_bool", "check_int", "check_number"]

def check_number(value, name: str, *, optional: bool = False) -> None:
    """Raise ``TypeError`` unless ``value`` is a finite real number (not a boolean); None allowed if ``optional``."""
    if value is None and optional:
        return
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        what = "a number or null" if optional else "a number"
        raise TypeError(f"{name} must be {what}, got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def check_int(value, name: str) -> None:
    """Raise ``TypeError`` unless ``value`` is a whole number (an int, not a boolean)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be a whole number, got {value!r}")


def check_bool(value, name: str) -> None:
    """Raise ``TypeError`` unless ``value`` is true or false."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be true or false, got {value!r}")

