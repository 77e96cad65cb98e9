"""NumPy ``.npy`` files and headerless raw binary (``.raw``, ``.bin``, ``.vol``); both memory-mapped by default."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._common import Loaded, ReadOptions, _check_numeric, _short, _to_zyx
from ._registry import register


@register("npy", target="file")
def read_npy(path: Path, opts: ReadOptions) -> Loaded:
    try:
        data = np.load(path, mmap_mode="r" if opts.mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    except Exception as exc:
        raise ValueError(f"could not read {path} as NPY: {_short(exc)}") from exc
    if not isinstance(data, np.ndarray):
        raise ValueError(f"could not read {path} as NPY: it does not hold a single array")
    data = _check_numeric(data, str(path))
    return Loaded(_to_zyx(data, str(path)), None, {}, os.fspath(path))


@register("raw", target="file", options=("shape", "dtype", "byte_order", "offset"))
def read_raw(path: Path, opts: ReadOptions) -> Loaded:
    shape, dtype, byte_order, offset = opts.shape, opts.dtype, opts.byte_order, int(opts.offset)
    if shape is None or dtype is None:
        raise ValueError(f"reading raw file {path} needs shape=(z, y, x) and dtype= (e.g. 'uint16')")
    try:
        dims = tuple(int(n) for n in shape)
        if any(not float(s).is_integer() for s in shape):
            raise ValueError
    except (TypeError, ValueError) as exc:
        raise TypeError(f"shape must be 2 or 3 integers (z, y, x), got {shape!r}") from exc
    if len(dims) not in (2, 3) or any(n <= 0 for n in dims):
        raise ValueError(f"shape must be 2 or 3 positive integers (z, y, x), got {tuple(shape)}")
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype {dtype!r} is not a numpy data type") from exc
    if dt.kind not in "biuf":
        raise ValueError(f"dtype must be a boolean, integer or floating-point type, got {dt}")
    dt = dt.newbyteorder(byte_order) if dt.itemsize > 1 else dt
    expected = int(np.prod(dims, dtype=np.int64)) * dt.itemsize
    size = path.stat().st_size
    actual = size - offset
    if actual != expected:
        raise ValueError(
            f"raw file {path} has {actual} bytes after the {offset}-byte header ({size} in total), "
            f"but shape {dims} of {dt.name} needs {expected} bytes"
        )
    if opts.mmap and dt.isnative:
        data = np.memmap(path, dtype=dt, mode="r", offset=offset, shape=dims)
    else:
        data = np.fromfile(path, dtype=dt, count=int(np.prod(dims)), offset=offset).reshape(dims)
    data = _check_numeric(data, str(path))
    return Loaded(_to_zyx(data, str(path)), None, {"byte_order": byte_order, "offset": offset}, os.fspath(path))
