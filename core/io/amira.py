"""Avizo / Amira ``.am`` volumes (AmiraMesh): greyscale scans and label fields segmented in Avizo.

Avizo (Thermo Fisher), the most used tool for segmenting battery-electrode tomography, saves a volume as an
AmiraMesh file: a text header, then the voxels.  What is read here:

- the header's first line, ``# AmiraMesh`` or ``# Avizo``, then ``BINARY-LITTLE-ENDIAN`` (little-endian),
  ``BINARY`` (big-endian, the files of Amira 2.x/3.x) or ``ASCII``;
- ``define Lattice NX NY [NZ]`` (x fastest: the voxels are C order (z, y, x)) and the lattice's data items,
  e.g. ``Lattice { byte Labels } @1(HxByteRLE,360731)``: one is read, the one named by ``dataset``, else
  ``Labels`` where there is one, else the first; types ``byte`` (uint8), ``sbyte``, ``short``, ``ushort``,
  ``int``, ``uint``, ``float``, ``double``; the encodings raw, ``HxByteRLE`` (Avizo's run lengths of byte
  labels) and ``HxZip`` (zlib);
- ``Parameters``: ``BoundingBox xmin xmax ymin ymax zmin zmax`` (the centres of the first and last voxels
  along each axis, so the voxel size is ``(max - min) / (n - 1)``) with ``CoordType "uniform"``; a length unit
  where the header states one (``Units { Coordinates "µm" }``), else the numbers are read as µm and the
  metadata says so (``spacing_unit``) for the user to check; ``Materials`` (a label field's names of its
  values: ``Id`` where given, else the material's place in the list), returned as ``materials``
  ``{value: name}`` so that a proposed phase map can follow the names
  (:func:`core.io.phase_map.propose_phase_map`).

Refused in one sentence: meshes, surfaces and other non-lattice AmiraMesh data, rectilinear or curvilinear
coordinates, vector fields (``float[3]``), an unknown type or encoding, a data section shorter than the header
declares.  Raw little-endian voxels are memory-mapped; run lengths and zip-compressed voxels are decoded plane by
plane on demand where the caller reads boxes (:class:`RleVolume`, :class:`ZipVolume`), so a volume is never
decoded whole to show a slice or to analyse it chunk by chunk.
"""

from __future__ import annotations

import math
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np

from ._common import _UNIT_TO_UM, InputFileError, Loaded, ReadOptions, _check_numeric, _name, _short, _to_zyx
from ._registry import register

__all__ = ["AmiraItem", "AmiraLayout", "RleVolume", "ZipVolume", "list_items", "read_amira", "read_amira_header", "rle_decode"]

#: Bytes of a header read at most (the Parameters of an Avizo file, its materials and history, are a few kB).
MAX_HEADER_BYTES = 1 << 20

_TYPES = {"byte": "u1", "ubyte": "u1", "sbyte": "i1", "short": "i2", "ushort": "u2", "int": "i4", "uint": "u4",
          "long": "i8", "float": "f4", "double": "f8"}
_ENCODINGS = ("raw", "HxByteRLE", "HxZip")
_FIRST = re.compile(r"#\s*(AmiraMesh|Avizo|HyperSurface)\b([^\r\n]*)")
_DEFINE = re.compile(r"^\s*define\s+(\w+)((?:\s+\d+)+)\s*$", re.M)
_ITEM = re.compile(r"^\s*(\w+)\s*\{\s*(\w+)\s*(?:\[\s*(\d+)\s*\])?\s+(\w+)\s*\}\s*=?\s*@(\d+)"
                   r"(?:\(\s*(\w+)\s*,\s*(\d+)\s*\))?", re.M)
_NEXT_SECTION = re.compile(rb"\n[ \t]*@\d+[ \t]*\r?\n")
_TOKEN = re.compile(r'"[^"]*"|\{|\}|,|\n|[^\s{},"]+')


@dataclass(frozen=True)
class AmiraItem:
    """One data item of the lattice: ``Lattice { TYPE NAME } @INDEX(ENCODING,LENGTH)``."""

    name: str
    type: str
    components: int
    index: int
    encoding: str
    length: int | None  # encoded bytes the header states (compressed items), None for raw and ASCII


@dataclass(frozen=True)
class AmiraLayout:
    """What an AmiraMesh header says about its lattice and where the chosen item's voxels lie.

    Attributes
    ----------
    path : Path
    shape : (Z, Y, X) tuple of int
    dtype : numpy dtype
        Of the chosen item, in the file's byte order.
    item : AmiraItem
        The data item read.
    items : tuple of AmiraItem
        Every data item of the lattice, in header order.
    ascii : bool
    offset : int
        Byte offset of the chosen item's data in the file.
    nbytes : int
        Its encoded length in bytes (for ASCII: up to the next section or the end of the file).
    spacing : (3,) float, µm, or None
        From the ``BoundingBox`` (z, y, x); None where it states none or an axis of one voxel leaves it open
        on every axis.
    notes : dict
        ``spacing_unit`` (how the numbers were read), ``materials`` ({value: name}) where the header lists them and
        the item read is ``Labels`` or the file's only item,
        ``amira_item`` and ``amira_items`` (the items' names), ``amira_encoding``, ``amira_header`` (first line).
    """

    path: Path
    shape: tuple[int, int, int]
    dtype: np.dtype
    item: AmiraItem
    items: tuple[AmiraItem, ...]
    ascii: bool
    offset: int
    nbytes: int
    spacing: tuple[float, float, float] | None
    notes: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- the header


def _parse_block(tokens: list[str], i: int) -> tuple[list, int]:
    """Entries ``(name or None, values or block)`` of a ``{ ... }`` block whose ``{`` is before ``tokens[i]``;
    returns them and the index after its ``}`` (or the end)."""
    entries: list = []
    n = len(tokens)
    while i < n:
        t = tokens[i]
        if t in (",", "\n"):
            i += 1
            continue
        if t == "}":
            return entries, i + 1
        if t == "{":  # an anonymous entry: { Id 0, Name "Exterior" }
            sub, i = _parse_block(tokens, i + 1)
            entries.append((None, sub))
            continue
        name, values, i = t.strip('"'), [], i + 1
        while i < n and tokens[i] not in (",", "\n", "}", "{"):
            values.append(tokens[i].strip('"'))
            i += 1
        if i < n and tokens[i] == "{":
            sub, i = _parse_block(tokens, i + 1)
            entries.append((name, sub))
        else:
            entries.append((name, values))
    return entries, i


def _parameters(header: str, name: str = "Parameters") -> list:
    """The entries of the header's first ``NAME { ... }`` block ([] without one)."""
    m = re.search(r"^\s*" + name + r"\s*\{", header, re.M)
    if m is None:
        return []
    tokens = _TOKEN.findall(header[m.end():])
    return _parse_block(tokens, 0)[0]


def _get(entries: list, name: str):
    for key, value in entries:
        if key is not None and key.lower() == name.lower():
            return value
    return None


def _materials(entries: list) -> dict[int, str]:
    """``{value: name}`` of a ``Materials`` block: a material's ``Id`` where given, else its place in the list
    (a value an ``Id`` names keeps that material)."""
    block = _get(entries, "Materials")
    if not isinstance(block, list):
        return {}
    explicit: dict[int, str] = {}
    implicit: dict[int, str] = {}
    for place, (key, value) in enumerate(block):
        if not isinstance(value, list):
            continue
        sub = value if all(isinstance(e, tuple) for e in value) else []
        name = key
        if key is None:  # the { Id 0, Name "Exterior" } form
            name = _get(sub, "Name")
            name = name[0] if isinstance(name, list) and name else None
        ident = _get(sub, "Id")
        try:
            value_id, named = (int(float(ident[0])), explicit) if isinstance(ident, list) and ident else (place,
                                                                                                         implicit)
        except ValueError:
            value_id, named = place, implicit
        if name:
            named.setdefault(value_id, str(name))
    return dict(sorted({**implicit, **explicit}.items()))


def _spacing(entries: list, dims_xyz: list[int], name: str) -> tuple[tuple[float, float, float] | None, str | None]:
    """The voxel size (z, y, x) in µm from ``BoundingBox`` and ``Units``, and how its numbers were read."""
    coord = _get(entries, "CoordType")
    if isinstance(coord, list) and coord and coord[0].lower() != "uniform":
        raise InputFileError(f"{name} has {coord[0]} coordinates: only a uniform lattice (voxels of one size) is "
                             "read; resample it in Avizo (Resample Transformed Image) and save it again")
    box = _get(entries, "BoundingBox")
    try:
        bounds = [float(v) for v in box] if isinstance(box, list) else []
    except ValueError:
        bounds = []
    if len(bounds) != 6 or not all(math.isfinite(b) for b in bounds):
        return None, None
    steps = []
    for axis, n in enumerate(dims_xyz):
        lo, hi = bounds[2 * axis], bounds[2 * axis + 1]
        steps.append((hi - lo) / (n - 1) if n > 1 else None)
    known = [s for s in steps if s is not None]
    if not known or any(not s > 0 for s in known):
        return None, None
    steps = [s if s is not None else known[0] for s in steps]  # an axis of one voxel: the others' size
    units = _get(entries, "Units")
    unit = None
    if isinstance(units, list):
        coords = _get(units, "Coordinates") if all(isinstance(e, tuple) for e in units) else None
        if isinstance(coords, list) and coords:
            unit = coords[0]
    if unit is not None:
        factor = _UNIT_TO_UM.get(unit.strip().lower().replace("μ", "µ"))
        if factor is None:
            raise InputFileError(f"{name} states its coordinates in {unit!r}, a length unit not understood: give "
                                 "the voxel size in µm")
        how = f"{unit} (the file's Units)"
    else:
        factor, how = 1.0, "µm (the file states no unit)"
    sx, sy, sz = (s * factor for s in steps)
    return (sz, sy, sx), how


def _find_section(raw: bytes, index: int, start: int, name: str) -> int:
    """Byte offset just after the ``@index`` line at or after ``start``."""
    m = re.compile(rb"(?:^|\n)[ \t]*@" + str(index).encode() + rb"[ \t]*\r?\n").search(raw, start)
    if m is None:
        raise InputFileError(f"{name}: the data section @{index} the header declares is missing (truncated file?)")
    return m.end()


def _encoded_length(it: AmiraItem, n_voxels: int, is_ascii: bool) -> int | None:
    """Bytes of an item's data section: the header's length for a compressed item, the lattice's for a raw binary
    one; None for text (and a type not known), whose section ends where the next one starts."""
    if it.encoding != "raw":
        return it.length
    if is_ascii or it.type not in _TYPES:
        return None
    return n_voxels * it.components * np.dtype(_TYPES[it.type]).itemsize


def read_amira_header(path: str | os.PathLike, dataset: str | None = None) -> AmiraLayout:
    """The lattice of an AmiraMesh file and where the voxels of one of its data items lie.

    Parameters
    ----------
    path : str or path-like
        An ``.am`` file.
    dataset : str, optional
        The data item to read (``Labels``, ``Data``...); default ``Labels`` where there is one, else the first.

    Returns
    -------
    AmiraLayout

    Raises
    ------
    InputFileError
        Not an AmiraMesh lattice, a header not understood, an item missing, or data shorter than declared (one
        sentence naming the file).
    """
    path = Path(path)
    name = _name(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(MAX_HEADER_BYTES)
    first = _FIRST.match(head[:256].decode("latin-1"))
    if first is None:
        raise InputFileError(f"{name} is not an Avizo / Amira file (its first line is not '# AmiraMesh ...' or "
                             "'# Avizo ...')")
    if first.group(1) == "HyperSurface":
        raise InputFileError(f"{name} is an Amira surface (HyperSurface), not a volume")
    flavour = first.group(2).upper()
    is_ascii = "ASCII" in flavour
    if not is_ascii and "BINARY" not in flavour:
        raise InputFileError(f"{name}: the header's first line says neither BINARY nor ASCII ({first.group(0)!r})")
    order = "<" if ("LITTLE" in flavour or is_ascii) else ">"
    # the header ends where the first data section starts (a line '@1'); the text before it is parsed
    end = _NEXT_SECTION.search(head)
    header_bytes = head[: end.start() + 1 if end else len(head)]
    try:  # Avizo writes UTF-8 (a unit "µm", a material's name); older files Latin-1
        header = header_bytes.decode("utf-8")
    except UnicodeDecodeError:
        header = header_bytes.decode("latin-1")
    defines = _DEFINE.findall(header)
    lattice = [d for d in defines if d[0] == "Lattice"]
    if not lattice:
        what = ", ".join(sorted({d[0] for d in defines})) or "no 'define Lattice'"
        raise InputFileError(f"{name} holds no volume (a lattice): it defines {what}")
    dims_xyz = [int(v) for v in lattice[0][1].split()]
    if len(dims_xyz) not in (2, 3) or any(n < 1 for n in dims_xyz):
        raise InputFileError(f"{name}: 'define Lattice' must give 2 or 3 positive sizes, got {lattice[0][1].strip()!r}")
    if len(dims_xyz) == 2:
        dims_xyz.append(1)
    nx, ny, nz = dims_xyz
    items = []
    for loc, typ, comps, item_name, index, enc, length in _ITEM.findall(header):
        if loc != "Lattice":
            continue
        items.append(AmiraItem(item_name, typ, int(comps or 1), int(index), enc or "raw",
                               int(length) if length else None))
    if not items:
        raise InputFileError(f"{name} declares no data on its lattice (no 'Lattice {{ TYPE NAME }} @1' line)")
    names = [it.name for it in items]
    if dataset is not None:
        chosen = [it for it in items if it.name == str(dataset).strip().lstrip("/")]
        if not chosen:
            raise InputFileError(f"{name} has no data item {dataset!r}; it has {', '.join(names)}")
        item = chosen[0]
    else:
        item = next((it for it in items if it.name == "Labels"), items[0])
    if item.type not in _TYPES:
        raise InputFileError(f"{name}: data item {item.name} has type {item.type!r}, not one of "
                             f"{', '.join(sorted(_TYPES))}")
    if item.components != 1:
        raise InputFileError(f"{name}: data item {item.name} has {item.components} components a voxel (a vector "
                             "field); only one value a voxel (a greyscale or label volume) is read")
    if item.encoding not in _ENCODINGS:
        raise InputFileError(f"{name}: data item {item.name} is encoded as {item.encoding!r}, not one of "
                             f"{', '.join(_ENCODINGS)}")
    dt = np.dtype(_TYPES[item.type])
    dt = dt.newbyteorder(order) if dt.itemsize > 1 else dt
    if item.encoding == "HxByteRLE" and dt.itemsize != 1:
        raise InputFileError(f"{name}: data item {item.name} is of {item.type} but run-length encoded (HxByteRLE is "
                             "for bytes only): a corrupt header")
    n_voxels = nx * ny * nz
    # where each item's data lies: the sections follow one another in the order of their numbers, each starting
    # on its '@k' line after the bytes of the one before (binary: its length, from the header or the lattice)
    with open(path, "rb") as f:
        cursor = len(header_bytes)
        for it in sorted(items, key=lambda it: it.index):
            length = _encoded_length(it, n_voxels, is_ascii)
            f.seek(cursor)
            # text is searched to its end (its sections are as long as their numbers' digits); binary data is not
            rest = f.read() if length is None else f.read(1 << 16)
            start = cursor + _find_section(b"\n" + rest, it.index, 0, name) - 1
            if it.index == item.index:
                offset, nbytes = start, length
                if length is None:  # text: up to the next section or the end
                    nxt = _NEXT_SECTION.search(rest, start - cursor)
                    nbytes = (nxt.start() if nxt else len(rest)) - (start - cursor)
                break
            cursor = start + (length or 0)
    if offset + nbytes > size:
        raise InputFileError(f"{name}: data item {item.name} needs {nbytes:,} bytes from byte {offset:,}, but the "
                             f"file has {size:,} bytes (truncated file?)")
    entries = _parameters(header)
    spacing, how = _spacing(entries, dims_xyz, name)
    notes: dict = {"amira_header": first.group(0).strip(), "amira_item": item.name, "amira_items": names,
                   "amira_encoding": "ASCII" if is_ascii else item.encoding}
    if how:
        notes["spacing_unit"] = how
    # in Parameters (Avizo, Amira 3+), or a block of its own after them (the older files); they name the values of
    # the label item, not those of a greyscale item beside it
    materials = _materials(entries) or _materials([("Materials", _parameters(header, "Materials"))])
    if materials and (item.name == "Labels" or len(items) == 1):
        notes["materials"] = materials
    return AmiraLayout(path, (nz, ny, nx), dt, item, tuple(items), is_ascii, int(offset), int(nbytes), spacing,
                       notes)


def list_items(path: str | os.PathLike) -> list[tuple[str, tuple[int, int, int], str]]:
    """The data items of an AmiraMesh lattice that can be read as a volume (one value a voxel, a known type), the
    one read by default first (``Labels`` where there is one): ``(name, (Z, Y, X), dtype name)``."""
    layout = read_amira_header(path)
    out = []
    for it in sorted(layout.items, key=lambda it: it is not layout.item):
        if it.components == 1 and it.type in _TYPES:
            out.append((it.name, layout.shape, np.dtype(_TYPES[it.type]).name))
    return out


# --------------------------------------------------------------------------- HxByteRLE


@numba.njit(cache=True, nogil=True)
def _rle_index(src, plane, nplanes):  # pragma: no cover - numba
    """For each plane start ``k * plane`` (k < nplanes): the source offset of the run holding it and that run's
    output start.  Returns (runs, outs, total) with ``total`` the decoded length (-1: a run overruns the source)."""
    runs = np.zeros(nplanes, np.int64)
    outs = np.zeros(nplanes, np.int64)
    k = 0
    i = 0
    o = 0
    n = src.size
    while i < n:
        c = np.int64(src[i])
        literal = c & 0x80
        length = c & 0x7F
        step = 1 + (length if literal else 1)
        if length > 0:
            if i + step > n:
                return runs, outs, np.int64(-1)
            while k < nplanes and k * plane < o + length:
                runs[k] = i
                outs[k] = o
                k += 1
        o += length
        i += step
    return runs, outs, np.int64(o)


@numba.njit(cache=True, nogil=True)
def _rle_range(src, run, out_start, lo, hi, out):  # pragma: no cover - numba
    """Decode the output bytes [lo, hi) into ``out`` (length hi - lo), starting at the run at ``run`` whose
    output starts at ``out_start`` (<= lo)."""
    i = run
    o = out_start
    n = src.size
    while i < n and o < hi:
        c = np.int64(src[i])
        length = c & 0x7F
        a = max(o, lo)
        b = min(o + length, hi)
        if c & 0x80:
            for p in range(a, b):
                out[p - lo] = src[i + 1 + (p - o)]
            i += 1 + length
        else:
            if b > a:  # (a run of length 0, as a last byte, has no value byte to read)
                v = src[i + 1]
                for p in range(a, b):
                    out[p - lo] = v
            i += 2
        o += length


def rle_decode(encoded: np.ndarray | bytes, size: int) -> np.ndarray:
    """Decode Avizo's ``HxByteRLE`` run lengths into ``size`` bytes.

    Each run starts with a control byte ``c``: ``c & 0x80`` set, ``c & 0x7f`` literal bytes follow; else the next
    byte is repeated ``c`` times.

    Raises
    ------
    ValueError
        The runs decode to another length than ``size``, or the last run is cut short.
    """
    src = np.frombuffer(encoded, np.uint8) if isinstance(encoded, (bytes, bytearray, memoryview)) else encoded
    src = np.ascontiguousarray(src, np.uint8)
    _, _, total = _rle_index(src, max(int(size), 1), 0)
    if total != size:
        raise ValueError(f"the run lengths decode to {total:,} bytes, not {size:,}" if total >= 0
                         else "the last run is cut short")
    out = np.empty(int(size), np.uint8)
    _rle_range(src, 0, 0, 0, int(size), out)
    return out


class _PlaneIndexed:
    """numpy's basic indexing (ints and slices along each axis) of a (z, y, x) volume that decodes whole planes
    (``planes(z0, z1)``)."""

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __array__(self, dtype=None, copy=None):
        data = self.planes(0, self.shape[0])
        return data if dtype is None else data.astype(dtype)

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key):
            i = next(j for j, k in enumerate(key) if k is Ellipsis)
            key = key[:i] + (slice(None),) * (3 - len(key) + 1) + key[i + 1:]
        key = key + (slice(None),) * (3 - len(key))
        kz = key[0]
        if isinstance(kz, (int, np.integer)):
            z = int(kz) + (self.shape[0] if kz < 0 else 0)
            if not 0 <= z < self.shape[0]:
                raise IndexError(f"index {kz} is out of bounds for axis 0 with size {self.shape[0]}")
            return self.planes(z, z + 1)[(0,) + key[1:]]
        if not isinstance(kz, slice):
            raise TypeError(f"{type(self).__name__} takes ints and slices, got {type(kz).__name__}")
        start, stop, step = kz.indices(self.shape[0])
        lo, hi = (start, stop) if step > 0 else (stop + 1, start + 1)
        if hi <= lo:
            return np.empty((0,) + np.empty(self.shape[1:], self.dtype)[key[1:]].shape, self.dtype)
        block = self.planes(lo, hi)
        return block[(slice(start - lo, stop - lo if stop - lo >= 0 else None, step),) + key[1:]]


class RleVolume(_PlaneIndexed):
    """A run-length encoded (z, y, x) uint8 volume read plane by plane: a box decodes only its planes.

    Indexing returns numpy arrays (basic indexing: ints and slices along each axis).  One pass over the runs on
    opening finds where each plane starts (two int64 a plane); the encoded bytes are memory-mapped on each read,
    so the object pickles small (the path and that index) for a cluster's workers.
    """

    def __init__(self, path: Path, offset: int, nbytes: int, shape: tuple[int, int, int], name: str):
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(np.uint8)
        self.ndim = 3
        self.path, self.offset, self.nbytes = os.fspath(path), int(offset), int(nbytes)
        self._plane = self.shape[1] * self.shape[2]
        runs, outs, total = _rle_index(self._encoded(), self._plane, self.shape[0])
        expected = self._plane * self.shape[0]
        if total != expected:
            raise InputFileError(f"{name}: its run-length encoded voxels decode to {max(int(total), 0):,} bytes, "
                                 f"not the {expected:,} of its lattice {self.shape[::-1]} (corrupt file?)")
        self._runs, self._outs = runs, outs

    def _encoded(self) -> np.ndarray:
        if not self.nbytes:
            return np.zeros(0, np.uint8)
        return np.memmap(self.path, np.uint8, mode="r", offset=self.offset, shape=(self.nbytes,))

    def planes(self, z0: int, z1: int) -> np.ndarray:
        """Planes ``z0:z1`` (0 <= z0 <= z1 <= Z) decoded, shape (z1 - z0, Y, X)."""
        out = np.empty((z1 - z0) * self._plane, np.uint8)
        if z1 > z0:
            _rle_range(self._encoded(), int(self._runs[z0]), int(self._outs[z0]), z0 * self._plane,
                       z1 * self._plane, out)
        return out.reshape(z1 - z0, self.shape[1], self.shape[2])


#: Decompressed bytes between two of :class:`ZipVolume`'s checkpoints (at most this much is decompressed and
#: dropped before the first plane a read asks for).
ZIP_CHECKPOINT_BYTES = 32 << 20
#: Compressed bytes fed to zlib at a time.
_ZIP_BLOCK = 1 << 20
#: Index of the last zip-compressed volumes this process opened: (path, offset, nbytes, mtime) -> checkpoints.
_ZIP_INDEX: dict = {}


class ZipVolume(_PlaneIndexed):
    """A zlib-compressed (Amira ``HxZip``) (z, y, x) volume read plane by plane, in bounded memory.

    zlib cannot start in the middle of a stream, so one pass over it on the first read (in each process) keeps
    the decompressor's state (:meth:`zlib.Decompress.copy`, about 40 kB) every :data:`ZIP_CHECKPOINT_BYTES` of
    output; a read starts at the checkpoint before its first plane and decompresses only up to its last.  The
    pass also checks that the stream decompresses to the lattice's size.  Pickles small (the path and the layout,
    never the checkpoints) for a cluster's workers; each process keeps the index of the last few files it read.

    Indexing returns numpy arrays in native byte order (basic indexing, as :class:`RleVolume`).
    """

    def __init__(self, path: Path, offset: int, nbytes: int, shape: tuple[int, int, int], dtype, name: str):
        self.shape = tuple(int(n) for n in shape)
        self.file_dtype = np.dtype(dtype)
        self.dtype = self.file_dtype.newbyteorder("=") if not self.file_dtype.isnative else self.file_dtype
        self.ndim = 3
        self.path, self.offset, self.nbytes, self.name = os.fspath(path), int(offset), int(nbytes), name
        self._plane = self.shape[1] * self.shape[2] * self.file_dtype.itemsize

    def _key(self):
        return (self.path, self.offset, self.nbytes, os.stat(self.path).st_mtime_ns)

    def _checkpoints(self) -> list:
        """[(decompressor state, compressed bytes consumed, decompressed bytes out)], built on the first call."""
        key = self._key()
        if key in _ZIP_INDEX:
            return _ZIP_INDEX[key]
        total = self._plane * self.shape[0]
        d = zlib.decompressobj()
        points = [(d.copy(), 0, 0)]
        consumed = out = 0
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            tail = b""
            while not d.eof:
                block = tail or f.read(min(_ZIP_BLOCK, self.nbytes - consumed))
                if not block:
                    break
                try:
                    got = len(d.decompress(block, ZIP_CHECKPOINT_BYTES))
                except zlib.error as exc:
                    raise InputFileError(f"{self.name}: its zip-compressed voxels cannot be decompressed "
                                         f"({_short(exc, 80)})") from None
                tail = d.unconsumed_tail
                consumed += len(block) - len(tail)
                out += got
                # a clean state (every byte fed used, no output held back) far enough from the last checkpoint
                if not tail and got < ZIP_CHECKPOINT_BYTES and out - points[-1][2] >= ZIP_CHECKPOINT_BYTES:
                    points.append((d.copy(), consumed, out))
        if out != total:
            raise InputFileError(f"{self.name}: its zip-compressed voxels hold {out:,} bytes, not the {total:,} of "
                                 "its lattice")
        while len(_ZIP_INDEX) >= 4:
            _ZIP_INDEX.pop(next(iter(_ZIP_INDEX)))
        _ZIP_INDEX[key] = points
        return points

    def planes(self, z0: int, z1: int) -> np.ndarray:
        """Planes ``z0:z1`` (0 <= z0 <= z1 <= Z) decompressed, shape (z1 - z0, Y, X), native byte order."""
        lo, hi = z0 * self._plane, z1 * self._plane
        buf = bytearray()
        if hi > lo:
            state, consumed, out = max((p for p in self._checkpoints() if p[2] <= lo), key=lambda p: p[2])
            d = state.copy()
            with open(self.path, "rb") as f:
                f.seek(self.offset + consumed)
                tail = b""
                while out < hi:
                    block = tail or f.read(min(_ZIP_BLOCK, self.nbytes - consumed))
                    if not block:
                        break
                    chunk = d.decompress(block, min(hi - out, ZIP_CHECKPOINT_BYTES))
                    tail = d.unconsumed_tail
                    consumed += len(block) - len(tail)
                    if out + len(chunk) > lo:
                        buf += chunk[max(lo - out, 0):]
                    out += len(chunk)
        data = np.frombuffer(bytes(buf), self.file_dtype).reshape(z1 - z0, self.shape[1], self.shape[2])
        return data.astype(self.dtype, copy=False)


# --------------------------------------------------------------------------- the reader


def layout_voxels(layout: AmiraLayout, *, mmap: bool = True):
    """The voxels of the layout's item, (Z, Y, X): a memory map (raw, little-endian or bytes), an
    :class:`RleVolume` (``HxByteRLE`` with ``mmap``), a :class:`ZipVolume` (``HxZip`` with ``mmap``) or a decoded
    array."""
    name = _name(layout.path)
    shape, dt = layout.shape, layout.dtype
    n = math.prod(shape)
    if layout.ascii:
        with open(layout.path, "rb") as f:
            f.seek(layout.offset)
            text = f.read(layout.nbytes)
        try:
            values = np.array(text.split(), dtype=np.float64)
        except ValueError:
            raise InputFileError(f"{name}: the ASCII data of {layout.item.name} holds something that is not a "
                                 "number") from None
        if values.size != n:
            raise InputFileError(f"{name}: the ASCII data of {layout.item.name} holds {values.size:,} numbers, not "
                                 f"the {n:,} of its lattice")
        return values.astype(dt.newbyteorder("=")).reshape(shape)
    enc = layout.item.encoding
    if enc == "raw":
        if mmap and dt.isnative:
            return np.memmap(layout.path, dtype=dt, mode="r", offset=layout.offset, shape=shape)
        return np.fromfile(layout.path, dtype=dt, count=n, offset=layout.offset).reshape(shape).astype(
            dt.newbyteorder("="), copy=False)
    with open(layout.path, "rb") as f:
        f.seek(layout.offset)
        if enc == "HxByteRLE":
            if mmap:
                return RleVolume(layout.path, layout.offset, layout.nbytes, shape, name)
            encoded = np.frombuffer(f.read(layout.nbytes), np.uint8)
            try:
                return rle_decode(encoded, n).reshape(shape)
            except ValueError as exc:
                raise InputFileError(f"{name}: its run-length encoded voxels are corrupt ({exc})") from None
        if mmap:
            return ZipVolume(layout.path, layout.offset, layout.nbytes, shape, dt, name)
        encoded = f.read(layout.nbytes)
    try:
        raw = zlib.decompress(encoded)
    except zlib.error as exc:
        raise InputFileError(f"{name}: its zip-compressed voxels cannot be decompressed ({_short(exc, 80)})") from None
    if len(raw) != n * dt.itemsize:
        raise InputFileError(f"{name}: its zip-compressed voxels hold {len(raw):,} bytes, not the "
                             f"{n * dt.itemsize:,} of its lattice")
    return np.frombuffer(raw, dt).reshape(shape).astype(dt.newbyteorder("="), copy=False)


def decoded_voxels(layout: AmiraLayout) -> np.ndarray:
    """The layout's voxels decoded whole (:func:`layout_voxels` without memory maps or plane-by-plane volumes)."""
    return np.asarray(layout_voxels(layout, mmap=False))


@register("amira", target="file", options=("dataset",))
def read_amira(path: Path, opts: ReadOptions) -> Loaded:
    """An Avizo / Amira ``.am`` lattice (the module docstring): voxels, voxel size and the materials' names."""
    layout = read_amira_header(path, opts.dataset)
    data = layout_voxels(layout, mmap=False if layout.item.encoding in ("HxByteRLE", "HxZip") else opts.mmap)
    name = _name(path)
    data = _check_numeric(np.asarray(data), name)
    meta = {**layout.notes, "dataset": layout.item.name}
    return Loaded(_to_zyx(data, name), layout.spacing, meta, os.fspath(path))
