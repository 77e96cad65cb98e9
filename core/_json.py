"""JSON of records that hold numpy numbers, arrays and paths."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["json_default"]


def json_default(o):
    """``default=`` of :func:`json.dumps`: numpy scalars and arrays to Python, paths to text."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return os.fspath(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
