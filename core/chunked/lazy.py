"""A volume on disk read by numpy indexing, one box at a time: :class:`LazyArray`.

The dashboard shows slices of volumes far bigger than its memory.  A
:class:`LazyArray` wraps the reader of :func:`~core.chunked.open_lazy` (the
picklable source each chunk of its dask array is read from, which reads one
box of contiguous slices) or any array read the same way (a memory map, a
Zarr array), and gives it numpy's basic indexing: ``vol[5]``,
``vol[:, 10:50]``, ``vol[a:b, ::4]``.  Each index reads the one box it covers
and returns an ndarray; a step is applied after the box is read, so sample a
big volume by blocks, not by a stride over the whole of it.

It never converts to an ndarray whole: ``np.asarray(vol)`` raises TypeError,
and so does any numpy function but :func:`numpy.take` of one index,
:func:`numpy.shape` and :func:`numpy.ndim`, so that a whole-volume read is an
error where it would otherwise be a silent one.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence

import numpy as np

__all__ = ["LazyArray", "is_lazy_array", "open_lazy_array"]


class LazyArray:
    """A (Z, Y, X) volume read box by box through numpy basic indexing.

    Parameters
    ----------
    reader : array-like
        ``shape`` (3 ints), ``dtype``, and ``reader[key]`` for a tuple of 3
        slices with step 1, returning the voxels of that box (an ndarray or
        anything :func:`numpy.asarray` takes): :attr:`LazyVolume.reader
        <core.chunked.LazyVolume>`, a :class:`numpy.memmap`, a Zarr array.
    source : str, optional
        What the voxels are read from, for errors (a file name).

    Raises
    ------
    core.io.InputFileError
        From an index whose box the reader fails to read (a corrupt compressed
        chunk, a vanished file): one sentence naming ``source`` and the slices.

    Attributes
    ----------
    shape : (3,) int
    dtype : numpy.dtype
    ndim, size, nbytes : int
    """

    def __init__(self, reader, source: str | None = None):
        shape = tuple(int(n) for n in getattr(reader, "shape", ()))
        if len(shape) != 3:
            raise ValueError(f"a LazyArray reads a 3D (z, y, x) volume, got shape {shape}")
        self._reader = reader
        self.source = source
        self.shape: tuple[int, int, int] = shape  # type: ignore[assignment]
        self.dtype = np.dtype(reader.dtype)
        self.ndim = 3
        self.size = int(np.prod(shape, dtype=np.int64))
        self.nbytes = self.size * self.dtype.itemsize

    def __repr__(self) -> str:
        return f"LazyArray(shape={self.shape}, dtype={self.dtype}, reader={type(self._reader).__name__})"

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        box, pick = _box_and_pick(key, self.shape)
        try:
            out = np.asarray(self._reader[box])
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - a reader's failure (codec, I/O, phase map) as one sentence
            from ..io._common import InputFileError, _short

            if isinstance(exc, InputFileError):
                raise
            z = box[0]
            raise InputFileError(f"could not read {self.source or 'the volume'} at slices z {z.start}-{z.stop - 1}: "
                                 f"{_short(exc)}") from None
        if out.shape != tuple(s.stop - s.start for s in box):
            out = out.reshape(tuple(s.stop - s.start for s in box))
        if isinstance(out, np.memmap) or not out.flags.writeable:  # the file's pages, or shared: a copy of the pick
            return np.array(out[pick], copy=True)
        return np.ascontiguousarray(out[pick])

    def __array__(self, dtype=None, copy=None):
        raise TypeError(f"a LazyArray ({'×'.join(map(str, self.shape))} voxels) is read by index, one box at a "
                        "time, never converted whole")

    def __array_function__(self, func, types, args, kwargs):
        if func is np.shape:
            return self.shape
        if func is np.ndim:
            return 3
        if func is np.take:
            return self._take(*args[1:], **kwargs)
        return NotImplemented

    def _take(self, indices, axis=None, out=None, mode="raise"):
        if axis is None or out is not None or mode != "raise" or not isinstance(indices, numbers.Integral):
            return NotImplemented
        at: list = [slice(None)] * 3
        at[int(axis)] = int(indices)
        return self[tuple(at)]


def _box_and_pick(key, shape) -> tuple[tuple[slice, slice, slice], tuple]:
    """The box of contiguous slices a basic index reads, and the index into that box that gives the result."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = next(j for j, k in enumerate(key) if k is Ellipsis)
        key = key[:i] + (slice(None),) * (3 - (len(key) - 1)) + key[i + 1:]
    if len(key) > 3:
        raise IndexError(f"too many indices for a 3D volume: {len(key)}")
    key = key + (slice(None),) * (3 - len(key))
    box, pick = [], []
    for k, n in zip(key, shape):
        if isinstance(k, (numbers.Integral, np.integer)) and not isinstance(k, bool):
            i = int(k) + (n if int(k) < 0 else 0)
            if not 0 <= i < n:
                raise IndexError(f"index {int(k)} is out of bounds for an axis of size {n}")
            box.append(slice(i, i + 1))
            pick.append(0)
        elif isinstance(k, slice):
            a, b, step = k.indices(n)
            if step < 1:
                raise IndexError("a LazyArray reads slices with a positive step")
            m = len(range(a, b, step))
            stop = a + (m - 1) * step + 1 if m else a
            box.append(slice(a, stop))
            pick.append(slice(None, None, step) if step > 1 else slice(None))
        else:
            raise TypeError(f"a LazyArray takes ints and slices as indices, got {type(k).__name__}")
    return tuple(box), tuple(pick)  # type: ignore[return-value]


def open_lazy_array(path: str | os.PathLike, *, phase_map=None, downsample: int = 1,
                    **kwargs) -> tuple[LazyArray, object]:
    """A volume file as a :class:`LazyArray`, after the checks of :func:`~core.chunked.open_lazy` (header only).

    Parameters
    ----------
    path : str or path-like
    phase_map : mapping or str, optional
        A pre-segmented volume: each box read is converted to phase codes by
        :func:`core.io.apply_phase_map` (uint8; the codes
        :func:`core.io.load_phases` gives, box by box: a value missing from
        the map raises its ValueError when a box holding it is read).  The
        map is checked now.
    downsample : int
        A greyscale volume block-mean downsampled by this factor: each box
        holds the values :func:`core.io.downsampling.downsample` gives there
        (float32, bit for bit: each plane of the result is computed from the
        ``downsample`` planes of the file it covers, across the whole section,
        as that function does; so a slice across z or a z-slab reads only
        its planes, a slice along z reads every plane once).
    **kwargs
        The reading options of :func:`core.io.load_volume` (``fmt``, ``dataset``, ``shape``, ``dtype``,
        ``byte_order``, ``offset``, ``spacing``).

    Returns
    -------
    array : LazyArray
    volume : core.chunked.LazyVolume
        Its voxel size and metadata (and a dask array of the file's voxels).
    """
    from ..io._common import _name
    from .inputs import open_lazy

    mapping = None
    if phase_map is not None:
        from ..io.phase_map import _normalize_phase_map

        mapping = _normalize_phase_map(phase_map)  # a bad map is refused before any voxel is read
    lazy = open_lazy(path, **kwargs)
    if int(downsample) != 1:
        from ..io.downsampling import check_downsample

        factor = check_downsample(downsample)
        if mapping is not None:
            raise ValueError("a pre-segmented volume is not downsampled (the block mean of phase codes is no phase)")
        if min(lazy.shape) // factor == 0:
            raise ValueError(f"volume {lazy.shape} is smaller than the downsample factor {factor}")
        return LazyArray(_Downsampled(lazy.reader, factor), _name(lazy.source)), lazy
    if mapping is None:
        return LazyArray(lazy.reader, _name(lazy.source)), lazy
    return LazyArray(_PhaseCodes(lazy.reader, mapping, f"phase volume {_name(lazy.source)}"), _name(lazy.source)), lazy


class _PhaseCodes:
    """A reader whose boxes are a segmented volume's voxels as phase codes (:func:`core.io.apply_phase_map`)."""

    def __init__(self, reader, mapping, name: str):
        self.reader, self.mapping, self.name = reader, mapping, name
        self.shape, self.dtype = tuple(reader.shape), np.dtype(np.uint8)

    def __getitem__(self, key) -> np.ndarray:
        from ..io import apply_phase_map

        return apply_phase_map(np.asarray(self.reader[key]), self.mapping, name=self.name)


def is_lazy_array(volume: object) -> bool:
    """Whether ``volume`` is read by index rather than held as an ndarray (a :class:`LazyArray`, a Zarr array...)."""
    return not isinstance(volume, np.ndarray) and isinstance(getattr(volume, "shape", None), Sequence)


class _Downsampled:
    """A reader whose boxes are those of :func:`core.io.downsampling.downsample` of another reader's volume."""

    def __init__(self, reader, factor: int):
        self.reader, self.factor = reader, int(factor)
        self.shape = tuple(int(n) // self.factor for n in reader.shape)
        self.dtype = np.dtype(np.float32)

    #: File voxels read at once (whole planes; at least the ``factor`` planes of one output plane).
    READ_VOXELS = 1 << 22

    def __getitem__(self, key) -> np.ndarray:
        from ..io.downsampling import downsample

        kz, ky, kx = key
        f, (_, ny, nx) = self.factor, self.shape
        out = np.empty((kz.stop - kz.start, ky.stop - ky.start, kx.stop - kx.start), np.float32)
        per_read = max(1, self.READ_VOXELS // max(1, f * ny * f * nx * f))  # output planes per read
        for k0 in range(kz.start, kz.stop, per_read):
            k1 = min(kz.stop, k0 + per_read)
            # the whole planes of these output planes: downsample() computes each output plane from its own
            # ``f`` planes, so these are its values there
            buf = np.asarray(self.reader[slice(k0 * f, k1 * f), slice(0, ny * f), slice(0, nx * f)])
            out[k0 - kz.start : k1 - kz.start] = downsample(buf, f)[0][:, ky, kx]
        return out


class _FlattenedReader:
    """A reader of ``arr``'s boxes with their slices mapped by ``gain`` and ``shift`` (:func:`flattened_array`)."""

    def __init__(self, arr, gain: np.ndarray, shift: np.ndarray, keep: float | None):
        self._arr, self._gain, self._shift, self._keep = arr, gain, shift, keep
        self.shape, self.dtype = tuple(arr.shape), np.dtype(arr.dtype)

    def __getitem__(self, box):
        from ..phases.shading import apply_flattening

        z = box[0]
        return apply_flattening(np.asarray(self._arr[box]), self._gain[z], self._shift[z], keep=self._keep)


def flattened_array(arr, reading: dict, *, keep: float | None = None) -> LazyArray:
    """A :class:`LazyArray` of ``arr`` (a LazyArray, or any 3D array-like indexed by boxes) flattened along z by
    ``reading`` (:func:`core.phases.shading_reading` of it): each box read is mapped as
    :func:`core.phases.flatten_shading` maps the whole volume (the same values; ``keep``: a fill's value, left)."""
    from ..phases.shading import flatten_coefficients

    gain, shift = flatten_coefficients(reading, int(arr.shape[0]))
    return LazyArray(_FlattenedReader(arr, gain, shift, keep), source=getattr(arr, "source", None))
