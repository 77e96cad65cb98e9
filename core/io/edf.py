"""ESRF Data Format ``.edf`` images: a slice or a volume from an ESRF beamline (PyHST2, nabu, fabio write it).

An EDF file is one or more frames, each a text header ``{ key = value ; ... }`` (padded to a multiple of 512
bytes) followed by its voxels.  What is read here (key names case-insensitive):

- ``Dim_1`` (x, fastest), ``Dim_2`` (y), ``Dim_3`` (z, where given): the frame's shape, C order (z, y, x);
- ``DataType`` (``UnsignedByte``, ``UnsignedShort``, ``SignedInteger``, ``FloatValue``, ``DoubleValue`` and the
  other names of the format and of fit2d: :data:`DATA_TYPES`), ``ByteOrder`` (``LowByteFirst`` /
  ``HighByteFirst``), ``Size`` (bytes; else the shape's), ``Compression`` (none, or each frame compressed whole
  as fabio reads it: a name holding ``GZIP`` (gzip), ``BZ`` (bzip2) or else ``Z`` (zlib); ``Size`` is then the
  compressed length and must be given);
- ``PSize_1`` / ``PSize_2`` / ``PSize_3``: the pixel size along x / y / z in metres (the format's unit), read as
  the voxel size; without them the file states none.

A file of several 2D frames of one shape and type is read as a volume, a frame a z plane; a folder of 2D ``.edf``
slices is read as a slice folder (:mod:`.folder`).  Compressed frames are decompressed a frame at a time (a volume
of 2D frames plane by plane where a caller reads boxes).  Refused in one sentence naming the file: no ``{``
header, an unknown type, byte order or compression (``OFFSET``, CBF's byte offsets), a frame shorter than declared,
a compressed frame that does not decompress to its shape, frames that differ.
"""

from __future__ import annotations

import bz2
import gzip
import math
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._common import InputFileError, Loaded, ReadOptions, _check_numeric, _name, _short, _to_zyx, read_planes
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
        header gives no ``PSize_3`` (z taken equal to x), ``edf_compression`` where the frames are compressed.
    compression : {None, "gzip", "bz2", "zlib"}
        How every frame is compressed.
    sizes : tuple of int
        Each frame's bytes as stored (compressed where it is).
    """

    path: Path
    shape: tuple[int, int, int]
    dtype: np.dtype
    offsets: tuple[int, ...]
    spacing: tuple[float, float, float] | None
    notes: dict = field(default_factory=dict)
    compression: str | None = None
    sizes: tuple[int, ...] = ()

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


def _frame_layout(h: dict[str, str], name: str) -> tuple[tuple[int, ...], np.dtype, int, str | None]:
    """(shape z, y, x; dtype in the file's order; bytes as stored; compression or None) of one frame header."""
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
    comp = _compression(h, name)
    nbytes = math.prod(dims) * dt.itemsize
    if comp is not None:
        try:
            stated = int(float(h.get("SIZE", "")))
        except ValueError:
            stated = 0
        if stated < 1:
            raise InputFileError(f"{name}: its {comp}-compressed frame states no Size (its compressed length)")
        return tuple(dims), dt, stated, comp
    if "SIZE" in h:
        try:
            stated = int(float(h["SIZE"]))
        except ValueError:
            stated = -1
        if stated < nbytes:
            raise InputFileError(f"{name}: its EDF header states Size {h['SIZE']} bytes, less than the "
                                 f"{nbytes:,} of its {'×'.join(map(str, dims))} {dt.name} voxels")
        nbytes = stated  # a frame may be padded: the next one starts after Size bytes
    return tuple(dims), dt, nbytes, None


def _compression(h: dict[str, str], name: str) -> str | None:
    """How a frame is compressed, by fabio's reading of ``Compression``: None, ``"gzip"``, ``"bz2"`` or ``"zlib"``."""
    text = h.get("COMPRESSION", "").replace(" ", "")
    if text.lower() in _NO_COMPRESSION:
        return None
    up = text.upper()
    if "OFFSET" in up:
        raise InputFileError(f"{name}: its frames are compressed by byte offsets ({h['COMPRESSION']}), which is not "
                             "read; save it uncompressed (or as TIFF)")
    if "GZIP" in up:
        return "gzip"
    if "BZ" in up:
        return "bz2"
    if "Z" in up:
        return "zlib"
    raise InputFileError(f"{name}: its EDF Compression {h['COMPRESSION']!r} is not one of none, gzip, bzip2, zlib")


_DECOMPRESS = {"gzip": gzip.decompress, "bz2": bz2.decompress, "zlib": zlib.decompress}


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
    frames: list[tuple[tuple[int, ...], np.dtype, int, str | None]] = []
    offsets: list[int] = []
    first_header: dict[str, str] = {}
    with open(path, "rb") as f:
        pos = 0
        while True:
            found = _frame_header(f, pos, name)
            if found is None:
                break
            h, data_at = found
            shape, dt, nbytes, comp = _frame_layout(h, name)
            need = nbytes if comp else math.prod(shape) * dt.itemsize
            if data_at + need > size:
                raise InputFileError(f"{name}: frame {len(frames) + 1} needs {need:,} bytes from byte {data_at:,}, "
                                     f"but the file has {size:,} (truncated file?)")
            if not frames:
                first_header = h
            frames.append((shape, dt, nbytes, comp))
            offsets.append(data_at)
            pos = data_at + nbytes
            if pos >= size:
                break
    if not frames:
        raise InputFileError(f"{name} is empty")
    shape0, dt0, _, comp0 = frames[0]
    if len(frames) > 1:
        if len(shape0) != 2 or any((s, d, c) != (shape0, dt0, comp0) for s, d, _, c in frames):
            raise InputFileError(f"{name} holds {len(frames)} frames that are not all 2D images of one size and "
                                 "type (and compression): save them as one volume or as a folder of slices")
        shape = (len(frames),) + shape0
    else:
        shape = shape0 if len(shape0) == 3 else (1,) + shape0
    spacing = _spacing(first_header)
    notes: dict = {"edf_frames": len(frames)}
    if spacing is not None:
        notes["spacing_unit"] = "m (PSize, the EDF convention)"
        if "PSIZE_3" not in first_header:
            notes["spacing_z_assumed"] = True  # a slice's pixel size: z taken equal to x
    if comp0:
        notes["edf_compression"] = comp0
    return EdfLayout(path, tuple(int(n) for n in shape), dt0, tuple(offsets), spacing, notes, comp0,
                     tuple(f[2] for f in frames))


def frames_voxels(layout: EdfLayout, i0: int, i1: int) -> np.ndarray:
    """Frames ``i0:i1`` of a compressed layout decompressed, each to its frame's shape, stacked; native order."""
    frame_shape = layout.shape[1:] if len(layout.offsets) > 1 else layout.shape
    want = math.prod(frame_shape) * layout.dtype.itemsize
    name = _name(layout.path)
    out = []
    with open(layout.path, "rb") as f:
        for i in range(i0, i1):
            f.seek(layout.offsets[i])
            try:
                raw = _DECOMPRESS[layout.compression](f.read(layout.sizes[i]))
            except (OSError, EOFError, ValueError, zlib.error) as exc:
                raise InputFileError(f"{name}: its {layout.compression}-compressed frame {i + 1} cannot be "
                                     f"decompressed ({_short(exc, 80)})") from None
            if len(raw) < want:
                raise InputFileError(f"{name}: its {layout.compression}-compressed frame {i + 1} holds {len(raw):,} "
                                     f"bytes, fewer than the {want:,} of its shape")
            out.append(np.frombuffer(raw[:want], layout.dtype).reshape(frame_shape))
    data = np.stack(out) if len(layout.offsets) > 1 else out[0]
    return data.astype(layout.dtype.newbyteorder("="), copy=False)


def layout_voxels(layout: EdfLayout, *, mmap: bool = True) -> np.ndarray:
    """The (Z, Y, X) voxels of an EDF layout: a memory map where there is one frame in native order, else read
    (decompressed where the frames are compressed)."""
    if layout.compression:
        return frames_voxels(layout, 0, len(layout.offsets)).reshape(layout.shape)
    if len(layout.offsets) == 1:
        if mmap and layout.dtype.isnative:
            return np.memmap(layout.path, dtype=layout.dtype, mode="r", offset=layout.offsets[0], shape=layout.shape)
        return np.fromfile(layout.path, dtype=layout.dtype, count=math.prod(layout.shape),
                           offset=layout.offsets[0]).reshape(layout.shape)
    return read_planes(layout.path, layout.planes, layout.dtype, layout.shape[1:])


def decoded_voxels(layout: EdfLayout) -> np.ndarray:
    """The layout's voxels read whole (:func:`layout_voxels` without a memory map)."""
    return layout_voxels(layout, mmap=False)


@register("edf", target="file")
def read_edf(path: Path, opts: ReadOptions) -> Loaded:
    """An ESRF ``.edf`` image or volume (the module docstring): voxels and the pixel size its header states."""
    layout = read_edf_header(path)
    name = _name(path)
    data = _check_numeric(layout_voxels(layout, mmap=opts.mmap), name)
    return Loaded(_to_zyx(data, name), layout.spacing, dict(layout.notes), os.fspath(path))
