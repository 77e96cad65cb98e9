"""Every input the project reads, opened as a lazily chunked :class:`dask.array.Array`.

:func:`open_lazy` takes the arguments of :func:`core.io.load_volume` and runs
the same checks before any voxel is read (the format, the path kind, a
truncated TIFF / ``.npy`` / raw file, the dataset choice, the shape and dtype,
the voxel size from the metadata), but returns a :class:`LazyVolume` whose
``data`` is a dask array: each chunk is read from the file when a task needs
it, and nothing volume-sized is ever held.

Each format is read by a small picklable *source* (the path and how to
read it, a few hundred bytes) that opens the file on every chunk read, so a
task graph sent to the workers of a cluster carries no voxels, and a worker
needs to see the input path:

``npy``, ``raw``, ``metaimage`` and uncompressed contiguous TIFF
    :class:`numpy.memmap` of the chunk's bytes (``np.load(mmap_mode="r")``
    layout for ``.npy``, Fortran order included).
other TIFF (compressed, tiled, multi-file OME)
    tifffile's zarr store of series 0 (``series.aszarr()``): only the strips
    or tiles a chunk covers are decoded (a page stored as one strip is
    decoded whole for every chunk that covers part of it: give such files
    chunks of whole planes, ``chunks=(c, Y, X)``).
``slices``
    one file per z plane, read when a chunk covers it.
``hdf5``
    the h5py dataset, sliced.
``zarr``
    the zarr array, sliced.

Boolean voxels come as uint8 and a foreign byte order as native, chunk by
chunk, as :func:`core.io.load_volume` gives them whole.
"""

from __future__ import annotations

import atexit
import math
import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .._validate import check_choice, normalize_spacing
from ..io import _common as C
from ..io import hdf5 as _h5
from ..io import load as _load
from ..io import raw as _raw
from ..io import tiff as _tiff
from ..io import zarr as _zarr
from ..io._registry import READERS

__all__ = ["DEFAULT_CHUNK", "LazyVolume", "as_dask", "decompressed_copy", "open_lazy", "streamed"]

#: Edge length (voxels) of the cubic chunks :func:`open_lazy` cuts a volume into by default.
DEFAULT_CHUNK = 128


@dataclass(frozen=True, eq=False)
class LazyVolume(C.Volume):
    """A volume on disk as a lazily chunked dask array, with its voxel size.

    The lazy counterpart of :class:`core.io.Volume`: the same record (a subclass), with a dask array.

    Attributes
    ----------
    data : (Z, Y, X) dask.array.Array
        Chunks read from the file on demand; numeric, native byte order.
    spacing : (3,) float, µm
    source : str
    fmt : str
    spacing_from_metadata : bool
    metadata : Mapping[str, object]
    reader : array-like or None
        What the chunks of :attr:`data` are read from: a picklable (Z, Y, X)
        array-like indexed by a tuple of 3 contiguous slices, which reads only
        that box from the file (:class:`core.chunked.LazyArray` gives it numpy
        indexing).
    """

    reader: object = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape ``(Z, Y, X)`` of :attr:`data`."""
        return tuple(int(n) for n in self.data.shape)  # type: ignore[return-value]


def open_lazy(
    path: str | os.PathLike,
    *,
    chunks: int | Sequence[int] = DEFAULT_CHUNK,
    fmt: str | None = None,
    spacing: float | Sequence[float] | None = None,
    dataset: str | None = None,
    shape: Sequence[int] | None = None,
    dtype: object = None,
    byte_order: str = "<",
    offset: int = 0,
    crop=None,
    align=None,
) -> LazyVolume:
    """Open a volume as a lazily chunked dask array, never reading it whole.

    Parameters
    ----------
    path : str or path-like
        File or folder, as for :func:`core.io.load_volume` (``"file.h5::/ds"`` too).
    chunks : int or (3,) int
        Chunk edge (voxels) along (z, y, x); one int for cubes.
    fmt, spacing, dataset, shape, dtype, byte_order, offset, crop, align
        As for :func:`core.io.load_volume` (a crop reads only its box, and its chunks start at the box's corner;
        an alignment reads each plane shifted back, by boxes too).

    Returns
    -------
    LazyVolume
        ``data`` has shape ``(Z, Y, X)`` and the chunks asked for (clipped to the shape).

    Raises
    ------
    FileNotFoundError, InputFileError (a ValueError), ValueError, TypeError
        As :func:`core.io.load_volume`, for the same inputs, before any voxel is read.
    """
    chunk3 = _check_chunks(chunks)
    p, dataset = _load._split_dataset(path, dataset)
    if fmt is not None:
        check_choice(fmt, "fmt", C.FORMATS)
    user_spacing = normalize_spacing(spacing) if spacing is not None else None
    opts = _load._read_options(dataset, shape, dtype, byte_order, offset, True)
    box = C.normalize_crop(crop)
    offsets = C.normalize_align(align)
    _load._require_exists(p)
    _load._require_regular(p)
    if fmt is None:
        fmt = _load.detect_format(p)
    _load._check_applies(READERS[fmt], opts, p)
    source, found, meta, where = _OPENERS[fmt](p, opts)
    if box is not None:
        C.check_crop(box, source.shape, C._name(where))
        meta = {**meta, "crop": [list(pair) for pair in box], "shape_read": list(source.shape)}
        source = _CroppedSource(source, box)
    if offsets is not None:
        C.check_align(offsets, source.shape, C._name(where))
        meta = {**meta, "align": C.aligned_info(offsets), "shape_unaligned": list(source.shape)}
        source = _AlignedSource(source, offsets)
    data = as_dask(source, chunk3)
    loaded = C.Loaded(data, found, {**meta, "mmap": False, "lazy": True}, where)
    v = _load._volume(loaded, fmt, user_spacing)
    return LazyVolume(data, v.spacing, v.source, fmt, v.spacing_from_metadata, v.metadata, reader=source)


#: Formats read a box at a time through their reader, whose compressed files (``.nii.gz``, ``.mrc.gz``,
#: ``.mrc.bz2``) are then decompressed from their start for every box (a gzip or bzip2 stream has no index).
_STREAMED_FORMATS = ("nifti", "mrc")


def streamed(path: str | os.PathLike, fmt: str | None = None) -> bool:
    """Whether a box of ``path`` is read by decompressing its file from the start (a ``.nii.gz``, ``.mrc.gz``,
    ``.mrc.bz2``): a chunked run reads such a file once into a copy instead (:func:`decompressed_copy`)."""
    p = Path(path)
    if not os.fspath(p).lower().endswith(C.COMPRESSED_ENDINGS) or not p.is_file():
        return False
    return (fmt or _load.detect_format(p)) in _STREAMED_FORMATS


def decompressed_copy(path: str | os.PathLike, folder: str | os.PathLike, nbytes: int, progress=None) -> Path:
    """Decompress a ``.nii.gz`` / ``.mrc.gz`` / ``.mrc.bz2`` once into ``folder`` (made here) and return the copy.

    The chunked engine reads its boxes from the copy (memory-mapped) instead of decompressing the file from its
    start for each box: on a 1.3 G-voxel label map that is one decompression instead of one per chunk and stage.

    Parameters
    ----------
    path : path
        The compressed file (:func:`streamed`).
    folder : path
        Where the copy goes, under the same name without the compression's suffix (a run's scratch folder, which
        the workers of a cluster see at the same path; the caller removes it).
    nbytes : int
        The volume's voxels in bytes (shape × item size): refused where the folder's disk has not that much free.
    progress : callable(fraction, message), optional

    Returns
    -------
    Path
        The copy, written atomically (a half-written copy is never read).

    Raises
    ------
    InputFileError
        The stream is damaged or cut short, or the disk has no room for the copy (one sentence each).
    """
    import bz2
    import gzip
    import zlib

    from .._atomic import atomic_path

    p, folder = Path(path), Path(folder)
    name = C._name(p)
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    need = int(nbytes) + (1 << 20)
    if free < need:
        raise C.InputFileError(f"{name} is compressed: the chunked engine reads it from an uncompressed copy of "
                               f"{_size(need)}, and the output folder's disk has {_size(free)} free; save it "
                               "uncompressed (gunzip) or free some space")
    dest = folder / p.name[: p.name.rfind(".")]
    opener = bz2.open if p.name.lower().endswith(".bz2") else gzip.open
    block, done = 1 << 24, 0
    try:
        with opener(p, "rb") as src, atomic_path(dest) as tmp, open(tmp, "wb") as out:
            while chunk := src.read(block):
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(min(1.0, done / need), f"decompressing {name} once: {_size(done)} of about "
                                                    f"{_size(need)}")
    except (EOFError, OSError, zlib.error, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:  # the disk, not the stream
            raise
        raise C.InputFileError(f"{name} cannot be decompressed ({C._short(exc, path=p)}): the file is damaged or "
                               "cut short") from None
    return dest


def _size(nbytes: int) -> str:
    """Bytes as a message says them: ``1.34 GB``, ``57.4 MB``."""
    return f"{nbytes / 1e9:.3g} GB" if nbytes >= 1e9 else f"{nbytes / 1e6:.3g} MB"


def as_dask(array, chunks: int | Sequence[int] = DEFAULT_CHUNK):
    """A (Z, Y, X) array-like (numpy, memmap, zarr, a source of this module) as a dask array of ``chunks``.

    A numpy array is embedded in the graph chunk by chunk (use it for small
    volumes and tests); a source object is read on demand.
    """
    import dask.array as da

    chunk3 = _check_chunks(chunks)
    if isinstance(array, da.Array):
        return array.rechunk(tuple(min(c, n) for c, n in zip(chunk3, array.shape)))
    if getattr(array, "ndim", None) != 3:
        raise ValueError(f"volume must be 3D (z, y, x), got shape {getattr(array, 'shape', None)}")
    chunk3 = tuple(min(c, int(n)) for c, n in zip(chunk3, array.shape))
    return da.from_array(array, chunks=chunk3, asarray=True, lock=False, fancy=False, name=_name_of(array))


def _name_of(array) -> str | bool:
    token = getattr(array, "token", None)
    return f"volume-{token}" if token is not None else False


def _check_chunks(chunks) -> tuple[int, int, int]:
    if isinstance(chunks, (int, np.integer)) and not isinstance(chunks, bool):
        c = (int(chunks),) * 3
    else:
        try:
            if isinstance(chunks, (str, bytes)) or any(isinstance(n, bool) or not isinstance(n, (int, np.integer))
                                                       for n in chunks):
                raise TypeError
            c = tuple(int(n) for n in chunks)
        except TypeError:
            raise TypeError(f"chunks must be an int or 3 ints (z, y, x), got {chunks!r}") from None
    if len(c) != 3 or min(c) < 1:
        raise ValueError(f"chunks must be one or three positive ints (z, y, x), got {chunks!r}")
    return c


# --------------------------------------------------------------------------- sources


class _Source:
    """A picklable (Z, Y, X) array-like read from a file on each ``[key]`` (a tuple of 3 slices)."""

    def __init__(self, shape, dtype, token):
        self.shape = tuple(int(n) for n in shape)
        self.dtype = _native(np.dtype(dtype))
        self.ndim = 3
        self.token = token

    def __getitem__(self, key):
        key = _full_key(key, self.shape)
        size = tuple(k.stop - k.start for k in key)
        if 0 in size:  # dask's look at the type (an empty box): nothing read, nothing decoded
            return np.empty(size, self.dtype)
        return _native_array(self._read(key))

    def _read(self, key):  # pragma: no cover - abstract
        raise NotImplementedError


def _native(dt: np.dtype) -> np.dtype:
    if dt == bool:
        return np.dtype(np.uint8)
    return dt.newbyteorder("=") if not dt.isnative else dt


def _native_array(a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == bool:
        return a.view(np.uint8)
    if not a.dtype.isnative:
        return a.astype(a.dtype.newbyteorder("="))
    return np.array(a, copy=True) if isinstance(a, np.memmap) else a


def _full_key(key, shape) -> tuple[slice, slice, slice]:
    if not isinstance(key, tuple):
        key = (key,)
    key = key + (slice(None),) * (3 - len(key))
    out = []
    for k, n in zip(key, shape):
        if not isinstance(k, slice):
            raise TypeError(f"a lazy volume is read by slices, got {k!r}")
        a, b, step = k.indices(n)
        if step != 1:
            raise TypeError("a lazy volume is read by contiguous slices")
        out.append(slice(a, max(a, b)))
    return tuple(out)


def _file_token(path: Path, *extra) -> str:
    st = os.stat(path)
    from dask.base import tokenize

    return tokenize(os.fspath(Path(path).resolve()), st.st_size, st.st_mtime_ns, *extra)


class _CroppedSource(_Source):
    """The box ``crop`` (3 ``(start, stop)`` pairs) of another source, read through it (its chunks start at the
    box's corner, so a chunked engine's chunks stay whole)."""

    def __init__(self, source: _Source, crop):
        from dask.base import tokenize

        super().__init__(tuple(b - a for a, b in crop), source.dtype, tokenize(source.token, "crop", crop))
        self.source, self.start = source, tuple(int(a) for a, _ in crop)

    def _read(self, key):
        return self.source[tuple(slice(k.start + s, k.stop + s) for k, s in zip(key, self.start))]


class _AlignedSource(_Source):
    """Another source with each z plane shifted back by its offset (:func:`core.io._common.normalize_align`):
    ``out[z, y, x] = source[z, y + oy[z], x + ox[z]]`` with the offsets less their smallest, over the region all
    planes share; planes of one offset are read in one box."""

    def __init__(self, source: _Source, offsets):
        from dask.base import tokenize

        a = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
        super().__init__(C.aligned_shape(a, source.shape), source.dtype, tokenize(source.token, "align", a.tolist()))
        self.source, self.offsets = source, a - a.min(axis=0)

    def _read(self, key):
        kz, ky, kx = key
        out = np.empty(tuple(k.stop - k.start for k in key), self.dtype)
        z = kz.start
        while z < kz.stop:
            end = z + 1
            while end < kz.stop and (self.offsets[end] == self.offsets[z]).all():
                end += 1
            oy, ox = (int(v) for v in self.offsets[z])
            out[z - kz.start:end - kz.start] = self.source[z:end, ky.start + oy:ky.stop + oy,
                                                           kx.start + ox:kx.stop + ox]
            z = end
        return out


class _MemmapSource(_Source):
    """Bytes at ``offset`` of a file, laid out as ``shape`` of ``dtype`` (C or Fortran order)."""

    def __init__(self, path, file_dtype, file_shape, offset, fortran, zyx_shape):
        super().__init__(zyx_shape, file_dtype, _file_token(path, offset, str(file_dtype), file_shape))
        self.path, self.file_dtype, self.file_shape = os.fspath(path), np.dtype(file_dtype), tuple(file_shape)
        self.offset, self.order = int(offset), "F" if fortran else "C"

    def _read(self, key):
        mm = np.memmap(self.path, dtype=self.file_dtype, mode="r", offset=self.offset, shape=self.file_shape,
                       order=self.order)
        return np.array(mm.reshape(self.shape, order=self.order)[key])


class _TiffSource(_Source):
    """Series 0 of a TIFF through tifffile's zarr store: only the strips / tiles a chunk covers are decoded.

    Opening a TIFF walks its page chain (about 0.1 s for 512 compressed pages
    here), so each process keeps the last few files it read open
    (:func:`_tiff_array`), keyed by the file's path, size and modification time.
    """

    def __init__(self, path, series_shape, axes, dtype, zyx_shape):
        super().__init__(zyx_shape, dtype, _file_token(path, "tiff"))
        self.path, self.series_shape, self.axes = os.fspath(path), tuple(series_shape), axes

    def _read(self, key):
        arr, lock = _tiff_array(self.path, self.token)
        with lock:
            out = np.asarray(arr[_series_key(key, self.series_shape, self.axes, self.shape)])
        return out.reshape(tuple(s.stop - s.start for s in key))


_TIFF_OPEN: dict = {}  # token -> (TiffFile, store, zarr array, lock), oldest first
_TIFF_OPEN_MAX = 4
_TIFF_OPEN_LOCK = threading.Lock()


def _tiff_array(path: str, token: str):
    """Series 0 of ``path`` as a zarr array and the lock its reads take, opened once per process."""
    import tifffile
    import zarr

    with _TIFF_OPEN_LOCK:
        hit = _TIFF_OPEN.pop(token, None)
        if hit is None:
            tif = tifffile.TiffFile(path)
            try:
                store = tif.series[0].aszarr()
                hit = (tif, store, zarr.open(store, mode="r"), threading.Lock())
            except BaseException:
                tif.close()
                raise
        _TIFF_OPEN[token] = hit  # most recent last
        while len(_TIFF_OPEN) > _TIFF_OPEN_MAX:  # dropped, not closed: a read in another thread may hold it;
            del _TIFF_OPEN[next(iter(_TIFF_OPEN))]  # its file closes when the last reference goes
        return hit[2], hit[3]


@atexit.register
def _close_open_tiffs() -> None:
    """Close the TIFF files still open for lazy reads when the process ends (else each is reported as an unclosed
    file, a ResourceWarning, as the interpreter shuts down)."""
    with _TIFF_OPEN_LOCK:
        for tif, *_ in _TIFF_OPEN.values():
            try:
                tif.close()
            except Exception:  # noqa: BLE001 - closing at exit: nothing left to tell
                pass
        _TIFF_OPEN.clear()


def _series_key(key, series_shape, axes, zyx_shape):
    """The key into the series' own axes of a (z, y, x) key (the axes :func:`C._zyx_shape` kept or dropped)."""
    if tuple(series_shape) == tuple(zyx_shape):
        return key
    keep = [i for i, (a, n) in enumerate(zip(axes, series_shape)) if n > 1 or a in "YX"]
    if len(keep) < 2:
        keep = sorted(set(keep) | {len(series_shape) - 2, len(series_shape) - 1})
    if len(keep) == 2:  # a 2D image: depth 1
        sub = key[1:]
    else:
        sub = key
    out = [slice(0, 1)] * len(series_shape)
    for i, k in zip(keep, sub):
        out[i] = k
    return tuple(out)


class _SliceSource(_Source):
    """A folder of 2D slices, one file per z plane."""

    def __init__(self, folder, files, yx, dtype):
        super().__init__((len(files),) + tuple(yx), dtype, _file_token(folder, tuple(files)))
        self.folder, self.files = os.fspath(folder), tuple(files)

    def _read(self, key):
        kz, ky, kx = key
        out = np.empty((kz.stop - kz.start, ky.stop - ky.start, kx.stop - kx.start), self.dtype)
        for i, z in enumerate(range(kz.start, kz.stop)):
            out[i] = _native_array(_read_plane(Path(self.folder) / self.files[z], self.shape[1:], self.dtype))[ky, kx]
        return out


def _read_plane(p: Path, yx, dtype) -> np.ndarray:
    from ..io.folder import read_slice

    img = read_slice(p, C._name(p.parent)).data[0]
    if img.shape != tuple(yx) or img.dtype != dtype:
        raise C.InputFileError(C.mismatched_slices_message(p.parent, C._slice_files(p.parent)))
    return img


class _H5Source(_Source):
    def __init__(self, path, name, series_shape, dtype, zyx_shape):
        super().__init__(zyx_shape, dtype, _file_token(path, name))
        self.path, self.name, self.series_shape = os.fspath(path), name, tuple(series_shape)

    def _read(self, key):
        import h5py

        with h5py.File(self.path, "r") as f:
            return np.asarray(f[self.name][_plain_key(key, self.series_shape, self.shape)]).reshape(
                tuple(s.stop - s.start for s in key))


class _ZarrSource(_Source):
    def __init__(self, path, name, series_shape, dtype, zyx_shape):
        super().__init__(zyx_shape, dtype, _file_token(path, name))
        self.path, self.name, self.series_shape = os.fspath(path), name, tuple(series_shape)

    def _read(self, key):
        import zarr

        root = zarr.open(self.path, mode="r")
        arr = root if self.name == "/" else root[self.name.strip("/")]
        return np.asarray(arr[_plain_key(key, self.series_shape, self.shape)]).reshape(
            tuple(s.stop - s.start for s in key))


def _plain_key(key, series_shape, zyx_shape):
    """Key into an array whose singleton axes :func:`C._zyx_shape` dropped (no axis letters)."""
    if tuple(series_shape) == tuple(zyx_shape):
        return key
    if len(series_shape) == 2:
        return key[1:]
    lead = 0
    s = list(series_shape)
    while len(s) > 3 and s[0] == 1:
        s, lead = s[1:], lead + 1
    trail = len(s) - 3
    return (slice(0, 1),) * lead + tuple(key) + (slice(0, 1),) * trail


# --------------------------------------------------------------------------- openers


def _open_npy(p: Path, opts):
    name = C._name(p)
    shape, dtype, fortran, offset = _raw._npy_header(p, name)
    expected = offset + math.prod(shape) * dtype.itemsize
    size = p.stat().st_size
    if size != expected:  # the message of core.io.raw.read_npy
        raise C.InputFileError(
            f"{name}: the .npy header declares shape {shape} of {dtype.name} ({expected:,} bytes with the header), "
            f"but the file has {size:,} bytes (truncated or corrupt file)")
    zyx = C._zyx_shape(shape, name)
    return _MemmapSource(p, dtype, shape, offset, fortran, zyx), None, {}, os.fspath(p)


def _open_layout(layout):
    """A raw file laid out as a header states (:mod:`core.io.rawheader`): the same checks as its reader."""
    name = C._name(layout.data)
    if not layout.data.is_file():
        raise FileNotFoundError(f"no such file: {name} (the data file of {C._name(layout.header)})")
    dims, dt = _raw.raw_layout_checked(layout.shape, layout.dtype, layout.byte_order, name)
    _raw.check_raw_size(layout.data, dims, dt, layout.offset, name)
    zyx = C._zyx_shape(dims, name)
    return (_MemmapSource(layout.data, dt, dims, layout.offset, False, zyx), layout.spacing,
            _raw.layout_meta(layout), os.fspath(layout.data))


def _open_metaimage(p: Path, opts):
    return _open_layout(_raw.read_metaimage_header(p))


def _open_raw(p: Path, opts):
    if opts.shape is None and opts.dtype is None:
        layout = _raw.header_beside(p)
        if layout is not None:
            return _open_layout(layout)
    # read_raw checks shape, dtype and file size; asked in the native byte order (the same sizes) it only maps
    # the file, and the map is not kept
    native = "<" if np.little_endian else ">"
    probe = _raw.read_raw(p, replace(opts, byte_order=native, mmap=True))
    dt = np.dtype(opts.dtype)
    dt = dt.newbyteorder(opts.byte_order) if dt.itemsize > 1 else dt
    file_shape = tuple(int(n) for n in opts.shape)
    zyx = tuple(int(n) for n in probe.data.shape)
    del probe
    return (_MemmapSource(p, dt, file_shape, opts.offset, False, zyx), None,
            {"byte_order": opts.byte_order, "offset": int(opts.offset)}, os.fspath(p))


def _open_tiff(p: Path, opts):
    import tifffile

    name = C._name(p)
    try:
        with _tiff._tifffile_log() as log, tifffile.TiffFile(p) as tif:
            if not tif.series:
                raise C.InputFileError(f"{name} holds no image data")
            series = tif.series[0]
            axes, shape = series.axes, tuple(int(n) for n in series.shape)
            _tiff._check_complete(tif, series, log, name)
            zyx = C._zyx_shape(shape, name, axes)
            depth = int(np.prod([n for a, n in zip(axes, shape) if a not in "YXCS"], dtype=np.int64))
            spacing, notes = _tiff.tiff_metadata(tif, depth, zyx[1])
            meta = {"axes": axes, "imagej": bool(tif.is_imagej), "ome": bool(tif.is_ome), **notes}
            dtype = np.dtype(series.dtype)
            if dtype.kind not in "biuf":
                raise C.InputFileError(f"{name} holds data of dtype {dtype}; expected integer or floating-point voxels")
            if series.dataoffset is not None:  # uncompressed and contiguous in this one file
                src = _MemmapSource(p, np.dtype(tif.byteorder + dtype.char), shape, int(series.dataoffset), False,
                                    zyx)
            else:
                src = _TiffSource(p, shape, axes, dtype, zyx)
    except C.InputFileError:
        raise
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {p}") from None
    except _tiff._TIFF_ERRORS as exc:
        raise C.InputFileError(f"could not read {name} as TIFF: {C._short(exc, path=p)}") from None
    return src, spacing, meta, os.fspath(p)


#: A slice folder opened lazily: the headers of up to this many of its other slices, spread over it, are checked
#: against the first's (size and type).
_HEADERS_SAMPLED = 8


def _open_slices(folder: Path, opts):
    from ..io.folder import _check_entries, log_spacing, read_slice, series_checked, slice_notes

    _check_entries(folder)
    files = C._slice_files(folder)
    fname = C._name(folder)
    if not files:
        raise C.InputFileError(f"folder {fname} holds no {C.SLICE_KINDS} slices")
    one = read_slice(files[0], fname, mmap=True)
    img = one.data[0]
    spacing, notes = log_spacing(folder, *series_checked(files, one.spacing, slice_notes(one.meta)))
    # a few headers spread over the folder (no pixels read): a folder of mixed slices is said on opening, not
    # only when a plane of another kind is read (the add form would show the first slice's size as the volume's)
    kind = (tuple(int(n) for n in img.shape), str(np.dtype(img.dtype)))
    for i in np.unique(np.linspace(1, len(files) - 1, min(len(files) - 1, _HEADERS_SAMPLED)).round().astype(int)):
        if C._plane_header(files[int(i)]) != kind:
            raise C.InputFileError(C.mismatched_slices_message(folder, files))
    src = _SliceSource(folder, [f.name for f in files], img.shape, img.dtype)
    meta = {"files": tuple(f.name for f in files), "n_slices": len(files), **notes}
    return src, spacing, meta, os.fspath(folder)


def _open_hdf5(p: Path, opts):
    h5py = _h5._import_h5py()
    fname = C._name(p)
    with _h5._open_h5(p, h5py) as f:
        try:
            name = _h5._pick_dataset(p, _h5._h5_arrays(f, h5py), opts.dataset, _h5._h5_groups(f, h5py))
            obj = f[name]
            where = f"dataset {name} of {fname}"
            _h5._check_stored_here(obj, where)
            shape = tuple(int(n) for n in obj.shape)
            zyx = C._zyx_shape(shape, where)
            if obj.dtype.kind not in "biuf":
                raise C.InputFileError(f"{where} holds data of dtype {obj.dtype}; expected integer or floating-point "
                                       "voxels")
            spacing, notes = _h5.h5_spacing(f, obj)
            dtype = obj.dtype
        except C.InputFileError:
            raise
        except _h5._H5_ERRORS as exc:
            raise C.InputFileError(f"could not read {fname} as HDF5: {C._short(exc, path=p)}") from None
    return _H5Source(p, name, shape, dtype, zyx), spacing, {"dataset": name, **notes}, f"{os.fspath(p)}::{name}"


def _open_zarr_lazy(p: Path, opts):
    import zarr

    fname = C._name(p)
    root = _zarr._open_zarr(p)
    dataset = opts.dataset
    if isinstance(root, zarr.Array):
        if dataset is not None and dataset.strip("/"):
            raise C.InputFileError(f"{fname} is a single zarr array and has no dataset {dataset!r}")
        name = "/"
    else:
        name = _zarr.pick_array(p, root, dataset)
    where = fname if name == "/" else f"array {name} of {fname}"
    try:
        arr, levels = _zarr._array_and_attrs(root, name)
        shape = tuple(int(n) for n in arr.shape)
        zyx = C._zyx_shape(shape, where)
        dtype = np.dtype(arr.dtype)
        if dtype.kind not in "biuf":
            raise C.InputFileError(f"{where} holds data of dtype {arr.dtype}; expected integer or floating-point voxels")
    except C.InputFileError:
        raise
    except _zarr._ZARR_ERRORS as exc:
        raise C.InputFileError(f"could not read {where} as zarr: {C._short(exc, path=p)}") from None
    spacing, notes = _zarr._zarr_spacing(levels, name)
    source = os.fspath(p) if name == "/" else f"{p}::{name}"
    return _ZarrSource(p, name, shape, dtype, zyx), spacing, {"dataset": name, **notes}, source


class _PlaneDecodedSource(_Source):
    """An Avizo volume decoded plane by plane: run lengths (``HxByteRLE``, :class:`core.io.amira.RleVolume`) or
    zip-compressed voxels (``HxZip``, :class:`core.io.amira.ZipVolume`); the path and a small index travel to the
    workers, never the voxels."""

    def __init__(self, volume, token):
        super().__init__(volume.shape, volume.dtype, token)
        self.volume = volume

    def _read(self, key):
        return self.volume.planes(key[0].start, key[0].stop)[:, key[1], key[2]]


#: The last whole volume a process decoded (ASCII Amira data, a one-frame compressed EDF): (token, array).
_DECODED: list = []


class _DecodedSource(_Source):
    """A volume that can only be decoded whole (Amira ASCII data, an EDF volume compressed as one frame): each
    process decodes it once (``decode(layout)``, a module-level function) and keeps the last one (the path travels
    to the workers, never the voxels)."""

    def __init__(self, layout, token, decode):
        super().__init__(layout.shape, layout.dtype, token)
        self.layout, self.decode = layout, decode

    def _read(self, key):
        if not (_DECODED and _DECODED[0][0] == self.token):
            _DECODED[:] = [(self.token, np.asarray(self.decode(self.layout)).reshape(self.shape))]
        return _DECODED[0][1][key]


class _EdfCompressedFramesSource(_Source):
    """An EDF file of compressed 2D frames, a frame a z plane: the frames a read covers decompressed."""

    def __init__(self, layout, token):
        super().__init__(layout.shape, layout.dtype, token)
        self.layout = layout

    def _read(self, key):
        from ..io.edf import frames_voxels

        return frames_voxels(self.layout, key[0].start, key[0].stop)[:, key[1], key[2]]


class _PlanesSource(_Source):
    """A volume whose z planes lie in byte runs of a file (EDF 2D frames, a ``.txm`` file's slices): the runs of
    each plane asked for read (:func:`core.io._common.read_planes`)."""

    def __init__(self, path, dtype, shape, planes, token):
        super().__init__(shape, dtype, token)
        self.path, self.file_dtype, self.planes = os.fspath(path), np.dtype(dtype), planes

    def _read(self, key):
        planes = C.read_planes(self.path, self.planes[key[0]], self.file_dtype, self.shape[1:])
        return planes[:, key[1], key[2]]


def _open_edf(p: Path, opts):
    from ..io import edf

    layout = edf.read_edf_header(p)
    if layout.compression and len(layout.offsets) > 1:
        source = _EdfCompressedFramesSource(layout, _file_token(p, "frames"))
    elif layout.compression:
        source = _DecodedSource(layout, _file_token(p, "edf"), edf.decoded_voxels)
    elif len(layout.offsets) == 1:
        source = _MemmapSource(p, layout.dtype, layout.shape, layout.offsets[0], False, layout.shape)
    else:
        source = _PlanesSource(p, layout.dtype, layout.shape, layout.planes, _file_token(p, "frames"))
    return source, layout.spacing, dict(layout.notes), os.fspath(p)


def _open_amira(p: Path, opts):
    from ..io import amira

    layout = amira.read_amira_header(p, opts.dataset)
    token = _file_token(p, layout.item.name)
    if layout.ascii:
        source = _DecodedSource(layout, token, amira.decoded_voxels)
    elif layout.item.encoding in ("HxByteRLE", "HxZip"):
        source = _PlaneDecodedSource(amira.layout_voxels(layout, mmap=True), token)
    else:
        source = _MemmapSource(p, layout.dtype, layout.shape, layout.offset, False, layout.shape)
    return source, layout.spacing, {**layout.notes, "dataset": layout.item.name}, os.fspath(p)


def _open_txm(p: Path, opts):
    from ..io import txm

    layout = txm.read_txm_header(p)
    if layout.contiguous:
        source = _MemmapSource(p, layout.dtype, layout.shape, layout.planes[0][0][0], False, layout.shape)
    else:
        source = _PlanesSource(p, layout.dtype, layout.shape, layout.planes, _file_token(p, "slices"))
    return source, layout.spacing, dict(layout.notes), os.fspath(p)


def _open_image(p: Path, opts):
    """A PNG, BMP or JPEG image: a slice folder of one slice (read whole on each read; it is one plane)."""
    from ..io.image import image_notes, read_image_pixels

    img = read_image_pixels(p, C._name(p))
    if img.ndim != 2:
        raise C.InputFileError(f"{C._name(p)} is not a 2D image: shape {img.shape}")
    return _SliceSource(p.parent, [p.name], img.shape, img.dtype), None, image_notes(p), os.fspath(p)


class _DicomLayout:
    """What :class:`_DecodedSource` needs of a multi-frame DICOM file: its shape, type and path."""

    def __init__(self, path: Path, shape, dtype) -> None:
        self.path, self.shape, self.dtype = path, tuple(shape), np.dtype(dtype)


def _dicom_frames(layout: _DicomLayout) -> np.ndarray:
    from ..io.dicom import read_dicom

    return read_dicom(layout.path, C.ReadOptions()).data


def _open_dicom(p: Path, opts):
    """A DICOM file (one slice, or a multi-frame volume): decoded whole on its first read (pydicom decodes the
    pixel data at once), a refusal naming the file."""
    from ..io.dicom import dicom_layout

    shape, dtype, spacing, notes = dicom_layout(p)
    layout = _DicomLayout(p, shape if len(shape) == 3 else (1,) + tuple(shape), dtype)
    return _DecodedSource(layout, _file_token(p, "dicom"), _dicom_frames), spacing, notes, os.fspath(p)


class _BoxReaderSource(_Source):
    """A file read a box at a time by its reader's ``read(path, key)`` (a module-level function, so picklable):
    a NIfTI file through nibabel (a ``.nii`` memory-mapped, a ``.nii.gz`` decompressed up to the box), a compressed
    MRC file (decompressed whole: a gzip stream has no index); a chunked run reads a copy of a compressed one
    (:func:`streamed`, :func:`decompressed_copy`)."""

    def __init__(self, path, shape, dtype, read):
        super().__init__(shape, dtype, _file_token(path, read.__module__, read.__name__))
        self.path, self.read = os.fspath(path), read

    def _read(self, key):
        return self.read(Path(self.path), key)


def _open_nifti(p: Path, opts):
    """A NIfTI file: its voxels memory-mapped where they are stored as read (uncompressed, not scaled; a box read at
    a time, 40× faster than through nibabel), else read through nibabel (:func:`core.io.nifti.read_box`)."""
    from ..io.nifti import nifti_layout, nifti_voxels_at, read_box

    shape, dtype, spacing, notes = nifti_layout(p)
    at = nifti_voxels_at(p)
    source = (_BoxReaderSource(p, shape, dtype, read_box) if at is None
              else _MemmapSource(p, at[1], shape, at[0], False, shape))
    return source, spacing, notes, os.fspath(p)


def _open_mrc(p: Path, opts):
    """An MRC file: its voxels memory-mapped at their offset (a box read at a time), or a compressed one whole."""
    from ..io.mrc import mrc_layout, read_mrc_box

    shape, dtype, spacing, notes, offset = mrc_layout(p)
    source = (_BoxReaderSource(p, shape, dtype, read_mrc_box) if offset is None
              else _MemmapSource(p, dtype, shape, offset, False, shape))
    return source, spacing, notes, os.fspath(p)


_OPENERS = {"npy": _open_npy, "raw": _open_raw, "tiff": _open_tiff, "slices": _open_slices, "hdf5": _open_hdf5,
            "zarr": _open_zarr_lazy, "metaimage": _open_metaimage, "amira": _open_amira, "edf": _open_edf,
            "txm": _open_txm, "image": _open_image, "dicom": _open_dicom, "nifti": _open_nifti,
            "mrc": _open_mrc}
