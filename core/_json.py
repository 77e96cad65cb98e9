"""JSON of records that hold numpy numbers, arrays and paths."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

__all__ = ["dumps_strict", "json_default"]


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


def _finite(o):
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    return o


def dumps_strict(obj, **kwargs) -> str:
    """:func:`json.dumps` of a record written for others to read (``run.json``, ``provenance.json``): numpy values
    and paths as :func:`json_default` writes them, and a NaN or infinite number as ``null``, so that strict readers
    (jq, JavaScript's ``JSON.parse``) take the file (Python's default writes a bare ``NaN``, which is not JSON).

    >>> dumps_strict({"pore": [float("nan"), 1.5], "n": np.int64(3)})
    '{"pore": [null, 1.5], "n": 3}'
    """
    plain = json.loads(json.dumps(obj, default=json_default))  # numpy and paths to Python (NaN passes as NaN)
    return json.dumps(_finite(plain), allow_nan=False, **kwargs)
