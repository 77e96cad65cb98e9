"""NumPy ``.npy`` files, headerless raw binary (``.raw``, ``.bin``, ``.vol``; the layout given, or read from a header
beside the file) and MetaImage (``.mhd`` / ``.mha``); all memory-mapped by default."""

from __future__ import annotations

import math
import os
import tokenize
from pathlib import Path

import numpy as np

from ._common import InputFileError, Loaded, ReadOptions, _check_numeric, _name, _short, _to_zyx, _zyx_shape
from ._registry import register
from .rawheader import RawLayout, header_beside, layout_from_name, read_metaimage_header


def _npy_header(path: Path, name: str) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """Shape, dtype, Fortran order and data offset of an ``.npy`` file; refuse anything else.

    The file size must equal the header's offset plus shape x itemsize: ``np.load`` with a memory map
    would otherwise read a file that is longer than its header declares as its first part.
    """
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy version {version}")
            offset = f.tell()
    except (ValueError, EOFError, SyntaxError, TypeError, tokenize.TokenError) as exc:
        raise InputFileError(f"{name} is not a NumPy .npy file ({_short(exc, 100)})") from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise InputFileError(f"{name} holds data of dtype {dtype}; expected integer or floating-point voxels")
    return tuple(int(n) for n in shape), dtype, bool(fortran), offset


@register("npy", target="file")
def read_npy(path: Path, opts: ReadOptions) -> Loaded:
    """Read a ``.npy`` (never pickled objects), checking that the file holds exactly the data its header declares."""
    name = _name(path)
    shape, dtype, fortran, offset = _npy_header(path, name)
    expected = offset + math.prod(shape) * dtype.itemsize
    size = path.stat().st_size
    if size != expected:
        raise InputFileError(
            f"{name}: the .npy header declares shape {shape} of {dtype.name} ({expected:,} bytes with the header), "
            f"but the file has {size:,} bytes (truncated or corrupt file)"
        )
    _zyx_shape(shape, name)  # reject 1D, 4D+ and empty arrays before reading
    try:
        data = np.load(path, mmap_mode="r" if opts.mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    except MemoryError as exc:
        raise MemoryError(f"not enough memory to read {name}: {_short(exc, path=path)}") from None
    except (OSError, ValueError, EOFError) as exc:
        raise InputFileError(f"could not read {name} as NPY: {_short(exc, path=path)}") from None
    if not isinstance(data, np.ndarray):
        raise InputFileError(f"could not read {name} as NPY: it does not hold a single array")
    data = _check_numeric(data, name)
    return Loaded(_to_zyx(data, name), None, {}, os.fspath(path))


@register("raw", target="file", options=("shape", "dtype", "byte_order", "offset"))
def read_raw(path: Path, opts: ReadOptions) -> Loaded:
    """Headerless binary: the layout from ``opts`` (``shape`` and ``dtype`` both), else from a header beside the
    file (:func:`core.io.rawheader.header_beside`: ESRF ``X.vol.info``, MetaImage ``X.mhd``, VGStudio ``X.vgi``)."""
    name = _name(path)
    if opts.shape is None and opts.dtype is None:
        layout = header_beside(path)
        if layout is not None:
            return _read_layout(layout, opts.mmap)
    shape, dtype, byte_order, offset = opts.shape, opts.dtype, opts.byte_order, int(opts.offset)
    if shape is None or dtype is None:
        named = layout_from_name(path)
        hint = "" if named is None else (
            f"; its name suggests shape {' '.join(map(str, named.shape))} (z y x) and dtype {named.dtype}"
            + (", big-endian" if named.byte_order == ">" and np.dtype(named.dtype).itemsize > 1 else "")
            + ("" if named.dtype_from == "name" else " (from the byte count)"))
        raise ValueError(f"reading the raw file {name} needs its shape (z, y, x) and dtype (e.g. uint16), or a "
                         f"header beside it that states them ({name}.info as ESRF writes, a MetaImage "
                         f"{Path(name).stem}.mhd, or a {Path(name).stem}.vgi as Nikon CT Pro and VGStudio write)"
                         + hint)
    dims, dt = raw_layout_checked(shape, dtype, byte_order, name)
    data = _read_binary(path, dims, dt, offset, opts.mmap, name)
    return Loaded(_to_zyx(data, name), None, {"byte_order": byte_order, "offset": offset}, os.fspath(path))


def raw_layout_checked(shape, dtype, byte_order: str, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """The raw ``shape`` as ints (2 or 3 positive) and ``dtype`` with ``byte_order``, or the error that says why not."""
    try:
        dims = tuple(int(n) for n in shape)
        if any(not float(s).is_integer() for s in shape):
            raise ValueError
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the raw shape of {name} must be 2 or 3 integers (z, y, x), got {shape!r}") from exc
    if len(dims) not in (2, 3) or any(n <= 0 for n in dims):
        raise ValueError(f"the raw shape of {name} must be 2 or 3 positive integers (z, y, x), got {tuple(shape)}")
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the raw dtype {dtype!r} of {name} is not a numpy data type (e.g. uint8, uint16, "
                        "float32)") from exc
    if dt.kind not in "biuf":
        raise ValueError(f"the raw dtype of {name} must be a boolean, integer or floating-point type, got {dt}")
    return dims, (dt.newbyteorder(byte_order) if dt.itemsize > 1 else dt)


def check_raw_size(path: Path, dims, dt: np.dtype, offset: int, name: str) -> None:
    """Refuse a file whose bytes after ``offset`` are not exactly ``dims`` of ``dt``."""
    expected = math.prod(dims) * dt.itemsize  # Python ints: no overflow for absurd shapes
    size = path.stat().st_size
    if offset > size:
        raise InputFileError(f"raw file {name} has {size:,} bytes, fewer than the {offset:,}-byte header offset")
    actual = size - offset
    if actual != expected:
        fits = (f": they hold {actual // dt.itemsize:,} voxels of {dt.name} (z × y × x)"
                if actual % dt.itemsize == 0 and dt.itemsize > 1 else "")
        raise InputFileError(
            f"The raw file {name} has {actual} bytes after the {offset}-byte header ({size} in total), "
            f"but shape {dims} of {dt.name} needs {expected} bytes{fits}"
        )


def _read_binary(path: Path, dims, dt: np.dtype, offset: int, mmap: bool, name: str) -> np.ndarray:
    check_raw_size(path, dims, dt, offset, name)
    if mmap and dt.isnative:
        data = np.memmap(path, dtype=dt, mode="r", offset=offset, shape=dims)
    else:
        data = np.fromfile(path, dtype=dt, count=int(np.prod(dims)), offset=offset).reshape(dims)
    return _check_numeric(data, name)


def layout_meta(layout: RawLayout) -> dict:
    """The volume metadata of a layout read from a header."""
    return {"byte_order": layout.byte_order, "offset": int(layout.offset), "header": _name(layout.header),
            "layout_from": layout.kind, **layout.notes}


def _read_layout(layout: RawLayout, mmap: bool) -> Loaded:
    name = _name(layout.data)
    if not layout.data.is_file():
        raise FileNotFoundError(f"no such file: {name} (the data file of {_name(layout.header)})")
    dims, dt = raw_layout_checked(layout.shape, layout.dtype, layout.byte_order, name)
    data = _read_binary(layout.data, dims, dt, layout.offset, mmap, name)
    return Loaded(_to_zyx(data, name), layout.spacing, layout_meta(layout), os.fspath(layout.data))


@register("metaimage", target="file")
def read_metaimage(path: Path, opts: ReadOptions) -> Loaded:
    """A MetaImage (``.mhd`` + its data file, or ``.mha``): the layout and voxel size from its header."""
    return _read_layout(read_metaimage_header(path), opts.mmap)


#: Voxels of a plane :func:`row_length` reads at most (its first rows; a 2048-wide plane: 512 rows).
ROW_VOXELS = 1 << 20
#: The correlation another row length must gain over the one read before :func:`row_length` names it, and the
#: least correlation it must reach (noise, whose voxels correlate at no distance, is never named).  On the 15 real
#: nano-CT slices, the FIB-SEM slice, the calendered volume's middle slice and a smooth random toy as they are, the
#: row length read is always the best; re-read with rows 1, 3, 7, 30 or 60 voxels too long or short, the best is
#: the true one in every case, and it gains 0.01 or more from 3 voxels off (1 off: 0.00-0.06); the calendered
#: volume and the toy read with z and x swapped: the true x size, 301 for 251 and 64 for 32.
ROW_GAIN = 0.01
ROW_MIN_CORR = 0.3


def row_length(plane: np.ndarray, *, min_gain: float = ROW_GAIN) -> int:
    """The row length (x size) at which a raw file's plane, as its bytes run, lines up best: the x size it was
    read with when that one does, else the likely true one.

    A z plane of a raw file is a run of consecutive voxels; in the true layout each voxel is most like its
    neighbours, in x at distance 1 and in y at the true row length.  So the autocorrelation of the run (its mean
    removed, by FFT) peaks at the true row length among distances from 2 to 4 rows read: a row length read 30
    voxels too long, or z and x swapped, show as a peak elsewhere than at the row length read.

    Parameters
    ----------
    plane : (Y, X) ndarray
        One z plane as read (its first :data:`ROW_VOXELS` voxels are used).
    min_gain : float
        How much another row length must raise the correlation over the one read to be named.

    Returns
    -------
    int
        ``X`` when the rows line up (or the plane is under 16 × 32 voxels, or flat), else the likely row length.
    """
    a = np.asarray(plane, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"plane must be 2D, got shape {a.shape}")
    h, w = a.shape
    if h < 16 or w < 32:  # too few voxels for a steady peak
        return w
    x = np.nan_to_num(a.ravel()[:ROW_VOXELS], nan=0.0, posinf=0.0, neginf=0.0)
    x = x - x.mean()
    n = x.size
    var = float((x * x).mean())
    if var <= 0:
        return w
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(x, n=size)
    auto = np.fft.irfft(spectrum * spectrum.conj(), n=size)[:n]
    lags = np.arange(2, min(n // 4, 4 * w) + 1)
    if w not in lags:
        return w
    corr = auto[lags] / (n - lags) / var
    best = int(np.argmax(corr))
    at_w = corr[w - 2]
    named = corr[best] - at_w >= min_gain and corr[best] >= ROW_MIN_CORR
    return int(lags[best]) if named else w
