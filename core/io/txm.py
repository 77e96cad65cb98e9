"""Zeiss Xradia ``.txm`` reconstructions: the volume a Zeiss Xradia nano- or micro-CT (Versa, Ultra) writes after
reconstruction.

A ``.txm`` file is an OLE compound file (Microsoft's Compound File Binary format, read with ``olefile``): a small
file system of storages and streams.  What is read here (stream names case-insensitive):

- ``ImageInfo/ImageWidth`` (x), ``ImageInfo/ImageHeight`` (y), ``ImageInfo/NoOfImages`` (z; else
  ``ImageInfo/ImagesTaken``): uint32;
- ``ImageInfo/DataType``: Xradia's type code (:data:`DATA_TYPES`: 5 uint16 and 10 float32 in practice);
- ``ImageInfo/PixelSize``: float32, the reconstructed voxel size in µm (isotropic); without it, or where it is not
  a positive number, the file states none;
- ``ImageData<k>/Image<n>``: slice ``n`` (1-based, a hundred to a storage ``k``), ``ImageHeight × ImageWidth``
  voxels, little-endian, row by row.

The slices are not copied through olefile: where each lies in the file (its sector chain, the compound file's
allocation table) is read once (:func:`read_txm_header`), then the voxels straight from the file; a volume whose
slices follow one another in the file (what a writer that writes slice after slice leaves) is memory-mapped.

A ``.txrm`` (``.xrm``) file holds the projections of a scan (the radiographs before reconstruction), not a volume:
refused in one sentence by :func:`core.io.detect_format`.  Refused in one sentence naming the file here: not a
compound file, a missing size or type stream, an unknown type code, a missing or short slice stream, a broken
sector chain.
"""

from __future__ import annotations

import math
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._common import InputFileError, Loaded, ReadOptions, _check_numeric, _name, _short, _to_zyx, read_planes
from ._registry import register

__all__ = ["DATA_TYPES", "TxmLayout", "read_txm", "read_txm_header"]

#: Xradia's ``DataType`` codes -> numpy (little-endian).
DATA_TYPES = {2: "i1", 3: "u1", 4: "<i2", 5: "<u2", 6: "<i4", 7: "<u4", 8: "<i8", 9: "<u8", 10: "<f4", 11: "<f8"}
#: A sector chain's end in the compound file's allocation table.
_END_OF_CHAIN = 0xFFFFFFFE
_IMAGE = re.compile(r"imagedata(\d+)/image(\d+)")


@dataclass(frozen=True)
class TxmLayout:
    """Where a ``.txm`` file's slices lie.

    Attributes
    ----------
    path : Path
    shape : (Z, Y, X) tuple of int
    dtype : numpy dtype
        Little-endian, as stored.
    planes : tuple of tuple of (int, int)
        For each z slice, the (byte offset, byte count) runs of the file that hold it, in order.
    spacing : (3,) float, µm, or None
        From ``ImageInfo/PixelSize``; None where the file states none.
    notes : dict
        ``txm_images`` (how many slices), ``spacing_unit`` where a size was read.
    """

    path: Path
    shape: tuple[int, int, int]
    dtype: np.dtype
    planes: tuple[tuple[tuple[int, int], ...], ...]
    spacing: tuple[float, float, float] | None
    notes: dict = field(default_factory=dict)

    @property
    def contiguous(self) -> bool:
        """True where the slices lie one after another in one run of the file (then memory-mappable)."""
        runs = [r for plane in self.planes for r in plane]
        return all(len(p) == 1 for p in self.planes) and all(
            a[0] + a[1] == b[0] for a, b in zip(runs, runs[1:]))


def _streams(ole) -> dict[str, object]:
    """Every stream of the compound file by its lower-case path (``"imageinfo/imagewidth"``)."""
    out = {}

    def walk(entry, prefix):
        for kid in entry.kids:
            path = f"{prefix}{kid.name.lower()}"
            if kid.kids:
                walk(kid, path + "/")
            elif kid.entry_type == 2:  # a stream (olefile's STGTY_STREAM)
                out[path] = kid
    walk(ole.root, "")
    return out


def _corrupt_chain(name: str, sect: int) -> InputFileError:
    return InputFileError(f"{name} is truncated or corrupt: a sector chain of its compound file runs past the file's "
                          f"end (sector {sect:,})")


def _chain(table, start: int, count: int, name: str) -> list[int]:
    """The ``count`` sectors of the chain from ``start`` in an allocation table (a short chain: the mini stream's)."""
    out = []
    sect = start
    while len(out) < count:
        if sect >= len(table):
            raise _corrupt_chain(name, sect)
        out.append(sect)
        sect = table[sect]
    return out


def _chain_runs(fat: np.ndarray, start: int, count: int, name: str) -> list[tuple[int, int]]:
    """The ``count`` sectors of the chain from ``start`` as (first sector, how many) runs of consecutive sectors.

    A slice of a big file spans thousands of sectors, mostly consecutive: each run is found by comparing a window of
    the table with the numbers that would follow (doubled while they all do), not sector by sector in Python.
    """
    runs: list[tuple[int, int]] = []
    sect, left = int(start), int(count)
    while left:
        if sect >= len(fat):
            raise _corrupt_chain(name, sect)
        n, window = 1, 64  # sectors sect .. sect + n - 1 are known to follow one another
        while n < left:
            stop = min(sect + n - 1 + window, sect + left - 1, len(fat))
            links = fat[sect + n - 1:stop]
            follows = links == np.arange(sect + n, sect + n + len(links))
            k = len(links) if follows.all() else int(np.argmin(follows))
            n += k
            if k < len(links) or not len(links):
                break
            window *= 2
        n = min(n, left)
        runs.append((sect, n))
        left -= n
        if left:
            sect = int(fat[sect + n - 1])
    return runs


def _mini_root(ole, fat: np.ndarray, name: str) -> list[int]:
    """The sectors of the mini stream (the root entry's chain), its allocation table loaded: once per file."""
    ole.loadminifat()
    ss = ole.sectorsize
    return [s for first, n in _chain_runs(fat, ole.root.isectStart, math.ceil(ole.root.size / ss), name)
            for s in range(first, first + n)]


def _runs(ole, entry, name: str, fat: np.ndarray, root: list[int] | None = None,
          length: int | None = None) -> tuple[tuple[int, int], ...]:
    """The (offset, count) runs of the file that hold a stream's first ``length`` bytes (all of it by default), in
    order, adjacent runs merged; ``fat``: the allocation table as an array; ``root``: :func:`_mini_root` where the
    caller has it (else found here)."""
    size = int(entry.size)
    if size == 0:
        return ()
    ss = ole.sectorsize
    if size < ole.minisectorcutoff:  # in the mini stream: 64-byte sectors inside the root entry's chain
        mini = ole.minisectorsize
        root = _mini_root(ole, fat, name) if root is None else root
        pieces = []
        for m in _chain(ole.minifat, entry.isectStart, math.ceil(size / mini), name):
            at = m * mini
            if at // ss >= len(root):
                raise InputFileError(f"{name} is corrupt: a stream's mini sector {m:,} lies past its mini stream")
            pieces.append(((root[at // ss] + 1) * ss + at % ss, mini))
    else:
        pieces = [((first + 1) * ss, n * ss) for first, n in _chain_runs(fat, entry.isectStart, math.ceil(size / ss),
                                                                          name)]
    merged: list[list[int]] = []
    for off, n in pieces:
        if merged and merged[-1][0] + merged[-1][1] == off:
            merged[-1][1] += n
        else:
            merged.append([off, n])
    left = size if length is None else min(size, length)
    out = []
    for off, n in merged:
        if left <= 0:
            break
        out.append((off, min(n, left)))
        left -= out[-1][1]
    return tuple(out)


def _missing(ole, name: str, what: str) -> InputFileError:
    """The refusal for a stream that is not there: a damaged compound file where olefile noted defects (a file
    cut short loses its directory's last sectors), else the stream named."""
    issues = getattr(ole, "parsing_issues", None)
    if issues:
        return InputFileError(f"{name} is a damaged compound file: truncated or corrupt ({_short(issues[0][1])})")
    return InputFileError(f"{name} {what}")


def _scalar(ole, streams, key: str, fmt: str, name: str, required: bool = True):
    entry = streams.get(key.lower())
    if entry is None:
        if required:
            raise _missing(ole, name, f"has no {key} stream (is it a Zeiss .txm reconstruction?)")
        return None
    data = ole.openstream(key).read()  # olefile finds a path case-insensitively
    if len(data) < struct.calcsize(fmt):
        raise InputFileError(f"{name}: its {key} stream holds {len(data)} bytes, fewer than a {fmt[1:]} value")
    return struct.unpack(fmt, data[:struct.calcsize(fmt)])[0]


def read_txm_header(path: str | os.PathLike) -> TxmLayout:
    """The layout of a Zeiss ``.txm`` file: its size, type, voxel size and where each slice lies.

    Raises
    ------
    InputFileError
        Not a compound file, a size, type or slice stream missing or wrong, a broken sector chain (one sentence
        naming the file).
    """
    path = Path(path)
    name = _name(path)
    try:
        import olefile
    except ImportError:
        raise InputFileError(f"reading {name} needs the olefile package (pip install -r requirements.txt)") from None
    if not olefile.isOleFile(os.fspath(path)):
        raise InputFileError(f"{name} is not a Zeiss .txm file (it is not an OLE compound file)")
    try:
        ole = olefile.OleFileIO(os.fspath(path))
    except Exception as exc:  # noqa: BLE001 - olefile raises several types for a corrupt file
        raise InputFileError(f"could not read {name} as a compound file: truncated or corrupt "
                             f"({_short(exc, path=path)})") from None
    with ole:
        streams = _streams(ole)
        fat = np.frombuffer(ole.fat, np.uint32) if ole.fat.itemsize == 4 else np.asarray(ole.fat, np.uint32)
        width = _scalar(ole, streams, "ImageInfo/ImageWidth", "<I", name)
        height = _scalar(ole, streams, "ImageInfo/ImageHeight", "<I", name)
        count = _scalar(ole, streams, "ImageInfo/NoOfImages", "<I", name, required=False)
        if count is None:
            count = _scalar(ole, streams, "ImageInfo/ImagesTaken", "<I", name)
        code = _scalar(ole, streams, "ImageInfo/DataType", "<I", name)
        if code not in DATA_TYPES:
            raise InputFileError(f"{name}: its ImageInfo/DataType {code} is not one of Xradia's numeric types "
                                 "(5 uint16, 10 float32...)")
        if min(width, height, count) < 1:
            raise InputFileError(f"{name} states an empty volume ({count} images of {width}×{height})")
        pixel = _scalar(ole, streams, "ImageInfo/PixelSize", "<f", name, required=False)
        dtype = np.dtype(DATA_TYPES[code])
        plane_bytes = width * height * dtype.itemsize
        images = {}
        for key, entry in streams.items():
            m = _IMAGE.fullmatch(key)
            if m:
                images[int(m.group(2))] = entry
        planes, root = [], None
        for n in range(1, count + 1):
            entry = images.get(n)
            if entry is None:
                raise _missing(ole, name, f"states {count} images but has no stream for image {n} "
                                          f"(ImageData{(n - 1) // 100 + 1}/Image{n})")
            if entry.size < plane_bytes:
                raise InputFileError(f"{name}: image {n} holds {entry.size:,} bytes, fewer than the {plane_bytes:,} "
                                     f"of a {width}×{height} {dtype.name} slice (truncated file?)")
            if entry.size < ole.minisectorcutoff and root is None:
                root = _mini_root(ole, fat, name)  # small slices: the mini stream's sectors found once
            # the slice's own bytes (a stream may be padded past them)
            planes.append(_runs(ole, entry, name, fat, root, plane_bytes))
    size = path.stat().st_size
    end = max((off + nb for plane in planes for off, nb in plane), default=0)
    if end > size:
        raise InputFileError(f"{name}: its slices need {end:,} bytes, but the file has {size:,} (truncated file?)")
    spacing = None
    notes: dict = {"txm_images": count}
    if pixel is not None and math.isfinite(pixel) and pixel > 0:
        spacing = (float(str(np.float32(pixel))),) * 3  # the float32's shortest decimal: 0.7, not 0.699999988
        notes["spacing_unit"] = "µm (ImageInfo/PixelSize)"
    return TxmLayout(path, (count, height, width), dtype, tuple(planes), spacing, notes)


def layout_voxels(layout: TxmLayout, *, mmap: bool = True) -> np.ndarray:
    """The (Z, Y, X) voxels of a ``.txm`` layout: a memory map where the slices follow one another, else read."""
    if layout.contiguous and mmap:
        return np.memmap(layout.path, dtype=layout.dtype, mode="r", offset=layout.planes[0][0][0],
                         shape=layout.shape)
    return read_planes(layout.path, layout.planes, layout.dtype, layout.shape[1:])


@register("txm", target="file")
def read_txm(path: Path, opts: ReadOptions) -> Loaded:
    """A Zeiss Xradia ``.txm`` reconstruction (the module docstring): voxels and the voxel size it states."""
    layout = read_txm_header(path)
    name = _name(path)
    data = _check_numeric(layout_voxels(layout, mmap=opts.mmap), name)
    return Loaded(_to_zyx(data, name), layout.spacing, dict(layout.notes), os.fspath(path))
