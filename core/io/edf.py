"""ESRF Data Format ``.edf`` images: a slice or a volume from an ESRF beamline (PyHST2, nabu, fabio write it).

An EDF file is one or more frames, each a text header ``{ key = value ; ... }`` (padded to a multiple of 512
bytes) followed by its voxels.  What is read here (key names case-insensitive):

- ``Dim_1`` (x, fastest), ``Dim_2`` (y), ``Dim_3`` (z, where given): the frame's shape, C order (z, y, x);
- ``DataType`` (``UnsignedByte``, ``UnsignedShort``, ``SignedInteger``, ``FloatValue``, ``DoubleValue`` and the
  other names of the format and of fit2d: :data:`DATA_TYPES`), ``ByteOrder`` (``LowByteFirst`` /
  ``HighByteFirst``), ``Size`` (bytes; else the shape's), ``Compression`` (none only);
- ``PSize_1`` / ``PSize_2`` / ``PSize_3``: the pixel size along x / y / z in metres (the format's unit), read as
  the voxel size; without them the file states none.

A file of several 2D frames of one shape and type is read as a volume, a frame a z plane; a folder of 2D ``.edf``
slices is read as a slice folder (:mod:`.folder`).  Refused in one sentence naming the file: no ``{`` header,
an unknown type or byte order, compressed frames, a frame shorter than declared, frames that differ.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._common import InputFileError, Loaded, ReadOptions, _check_numeric, _name, _to_zyx, read_planes
from ._registry import register

__all__ = ["DATA_TYPES", "EdfLayout", "read_edf", "read_edf_header"]

#: EDF data type names -> numpy (the names of the format, of fit2d and of fabio's writer).
DATA_TYPES = {
    "signedbyte": "i1", "signed8": "i1", "signedchar": "i1", "unsignedbyte": "u1", "unsigned8": "u1",
    "unsignedchar": "u1", "signedshort": "i2", "signed16": "i2", "unsignedshort": "u2", "unsigned16": "u2",
    "unsignedshortinteger": "u2", "signedinteger": "i4", "signed32": "i4", "unsignedinteger": "u4",
    "unsigned32": "u4", "signedlong": "i4", "unsignedlong": "u4", "signed64": "i8", "unsigned64": "u8",
    "floatvalue": "f4", "float": "f4", "floatieee32": "f4", "float32": "f4", "real": "f4", "doublevalue": "f8",
    "double": "f8", "floatieee64": "f8", "doubleieee64": "f8",
}
#: Bytes of one frame header read at most.
MAX_HEADER_BYTES = 1 << 20
_NO_COMPRESSION = ("", "none", "nocompression", "uncompressed")


@dataclass(frozen=True)
class EdfLayout:
    """Where an EDF file's voxels lie.

    Attributes
    ----------
    path : Path
    shape : (Z, Y, X) tuple of int
        Of the whole volume (the frames stacked along z where there are several 2D ones).
    dtype : numpy dtype
        In the file's byte order.
    offsets : tuple of int
        Byte offset of each frame's voxels.
    spacing : (3,) float, µm, or None
        From ``PSize_1..3`` (metres); None where the first frame states no pixel size.
    notes : dict
        ``edf_frames`` (how many), ``spacing_unit`` where a size was read, ``spacing_z_assumed`` where the
        header gives no ``PSize_3`` (z taken equal to x).
    """

    path: Path
    shape: tuple[int, int, int]
    dtype: np.dtype
    offsets: tuple[int, ...]
    spacing: tuple[float, float, float] | None
    notes: dict = field(default_factory=dict)

    @property
    def planes(self) -> tuple[tuple[tuple[int, int]], ...]:
        """For each z plane of a file of 2D frames, its one (byte offset, byte count) run."""
        nbytes = math.prod(self.shape[1:]) * self.dtype.itemsize
        return tuple(((off, nbytes),) for off in self.offsets)


def _frame_header(f, start: int, name: str) -> tuple[dict[str, str], int] | None:
    """The ``key = value`` pairs (keys upper-cased) of the frame header at ``start`` and where its data begins;
    None at the end of the file (only whitespace left)."""
    f.seek(start)
    raw = f.read(MAX_HEADER_BYTES)
    lead = len(raw) - len(raw.lstrip())
    if lead == len(raw):
        return None
    if raw[lead:lead + 1] != b"{":
        if start == 0:
            raise InputFileError(f"{name} is not an EDF file (it does not start with a '{{' header)")
        raise InputFileError(f"{name}: bytes after the frame ending at byte {start:,} are not another frame "
                             "(a corrupt file?)")
    m = re.search(rb"}[ \t]*\r?\n", raw)
    if m is None:
        raise InputFileError(f"{name}: the EDF header at byte {start:,} does not end (no '}}' line)")
    text = raw[lead + 1:m.start()].decode("latin-1")
    pairs = {}
    for part in text.split(";"):
        if "=" in part:
            key, value = part.split("=", 1)
            pairs[key.strip().upper()] = value.strip()
    return pairs, start + m.end()


def _frame_layout(h: dict[str, str], name: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape z, y, x; dtype in the file's order; bytes) of one frame header."""
    dims = []
    for k in ("DIM_3", "DIM_2", "DIM_1"):
        if k in h:
            try:
                n = int(float(h[k]))
            except ValueError:
                n = 0
            if n < 1:
                raise InputFileError(f"{name}: {k.title()} must be a positive whole number, got {h[k]!r}")
            dims.append(n)
        elif k != "DIM_3":
            raise InputFileError(f"{name}: its EDF header has no {k.title()} (the image's size)")
    if "DATATYPE" not in h:
        raise InputFileError(f"{name}: its EDF header has no DataType")
    code = DATA_TYPES.get(h["DATATYPE"].replace(" ", "").lower())
    if code is None:
        raise InputFileError(f"{name}: EDF DataType {h['DATATYPE']!r} is not one of the types read "
                             "(UnsignedByte, UnsignedShort, SignedInteger, FloatValue, DoubleValue...)")
    order = h.get("BYTEORDER", "LowByteFirst").lower()
    if order not in ("lowbytefirst", "highbytefirst"):
        raise InputFileError(f"{name}: EDF ByteOrder must be LowByteFirst or HighByteFirst, got {h['BYTEORDER']!r}")
    dt = np.dtype(code)
    dt = dt.newbyteorder("<" if order == "lowbytefirst" else ">") if dt.itemsize > 1 else dt
    comp = h.get("COMPRESSION", "").replace(" ", "").lower()
    if comp not in _NO_COMPRESSION:
        raise InputFileError(f"{name}: its frames are compressed ({h['COMPRESSION']}); save it uncompressed "
                             "(or as TIFF)")
    nbytes = math.prod(dims) * dt.itemsize
    if "SIZE" in h:
        try:
            stated = int(float(h["SIZE"]))
        except ValueError:
            stated = -1
        if stated < nbytes:
            raise InputFileError(f"{name}: its EDF header states Size {h['SIZE']} bytes, less than the "
                                 f"{nbytes:,} of its {'×'.join(map(str, dims))} {dt.name} voxels")
        nbytes = stated  # a frame may be padded: the next one starts after Size bytes
    return tuple(dims), dt, nbytes


def _spacing(h: dict[str, str]) -> tuple[float, float, float] | None:
    """(z, y, x) µm from ``PSize_3/2/1`` (metres); the z of a 2D frame is its x.  None without PSize_1."""
    sizes = {}
    for axis, k in ((0, "PSIZE_3"), (1, "PSIZE_2"), (2, "PSIZE_1")):
        try:
            v = float(h[k].split()[0]) if k in h and h[k].split() else None
        except ValueError:
            v = None
        if v is not None and math.isfinite(v) and v > 0:
            sizes[axis] = v * 1e6
    if 2 not in sizes:
        return None
    x = sizes[2]
    return (sizes.get(0, x), sizes.get(1, x), x)


def read_edf_header(path: str | os.PathLike) -> EdfLayout:
    """The layout of an EDF file: its frames' shape, type and offsets, and the voxel size its first header states.

    Raises
    ------
    InputFileError
        Not an EDF file, a header not understood, compressed or truncated frames, frames that differ (one sentence
        naming the file).
    """
    path = Path(path)
    name = _name(path)
    size = path.stat().st_size
    frames: list[tuple[tuple[int, ...], np.dtype, int]] = []
    offsets: list[int] = []
    first_header: dict[str, str] = {}
    with open(path, "rb") as f:
        pos = 0
        while True:
            found = _frame_header(f, pos, name)
            if found is None:
                break
            h, data_at = found
            shape, dt, nbytes = _frame_layout(h, name)
            if data_at + math.prod(shape) * dt.itemsize > size:
                raise InputFileError(f"{name}: frame {len(frames) + 1} needs {math.prod(shape) * dt.itemsize:,} "
                                     f"bytes from byte {data_at:,}, but the file has {size:,} (truncated file?)")
            if not frames:
                first_header = h
            frames.append((shape, dt, nbytes))
            offsets.append(data_at)
            pos = data_at + nbytes
            if pos >= size:
                break
    if not frames:
        raise InputFileError(f"{name} is empty")
    shape0, dt0, _ = frames[0]
    if len(frames) > 1:
        if len(shape0) != 2 or any((s, d) != (shape0, dt0) for s, d, _ in frames):
            raise InputFileError(f"{name} holds {len(frames)} frames that are not all 2D images of one size and "
                                 "type: save them as one volume or as a folder of slices")
        shape = (len(frames),) + shape0
    else:
        shape = shape0 if len(shape0) == 3 else (1,) + shape0
    spacing = _spacing(first_header)
    notes: dict = {"edf_frames": len(frames)}
    if spacing is not None:
        notes["spacing_unit"] = "m (PSize, the EDF convention)"
        if "PSIZE_3" not in first_header:
            notes["spacing_z_assumed"] = True  # a slice's pixel size: z taken equal to x
    return EdfLayout(path, tuple(int(n) for n in shape), dt0, tuple(offsets), spacing, notes)


def layout_voxels(layout: EdfLayout, *, mmap: bool = True) -> np.ndarray:
    """The (Z, Y, X) voxels of an EDF layout: a memory map where there is one frame in native order, else read."""
    if len(layout.offsets) == 1:
        if mmap and layout.dtype.isnative:
            return np.memmap(layout.path, dtype=layout.dtype, mode="r", offset=layout.offsets[0], shape=layout.shape)
        return np.fromfile(layout.path, dtype=layout.dtype, count=math.prod(layout.shape),
                           offset=layout.offsets[0]).reshape(layout.shape)
    return read_planes(layout.path, layout.planes, layout.dtype, layout.shape[1:])


@register("edf", target="file")
def read_edf(path: Path, opts: ReadOptions) -> Loaded:
    """An ESRF ``.edf`` image or volume (the module docstring): voxels and the pixel size its header states."""
    layout = read_edf_header(path)
    name = _name(path)
    data = _check_numeric(layout_voxels(layout, mmap=opts.mmap), name)
    return Loaded(_to_zyx(data, name), layout.spacing, dict(layout.notes), os.fspath(path))
