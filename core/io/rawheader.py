"""Raw volumes whose layout a small text header states, so that nobody types it.

Three headers are read:

ESRF ``X.vol.info`` beside ``X.vol``
    What PyHST2 and nabu write beside a reconstructed volume (ESRF beamlines such as ID16A, where nano-
    holotomography of battery electrodes is done): ``NUM_X``, ``NUM_Y``, ``NUM_Z``, ``voxelSize`` (µm),
    ``BYTEORDER`` (``LOWBYTEFIRST`` / ``HIGHBYTEFIRST``); the voxels are float32 unless a ``DATA_TYPE`` line
    names another type.
MetaImage (``.mhd`` beside its data file, or ``.mha`` holding both)
    ITK's format, written by 3D Slicer, Avizo / Amira, Dragonfly and ITK-based tools: ``NDims``, ``DimSize``
    (x y z), ``ElementType``, ``ElementSpacing`` (x y z), ``BinaryDataByteOrderMSB``, ``HeaderSize``,
    ``ElementDataFile``.  MetaImage states no length unit; its convention (ITK, Slicer) is millimetres, so the
    spacing is read as mm, and the metadata says so (``spacing_unit``) for the user to check.

VGStudio ``X.vgi`` beside ``X.vol``
    What Nikon's CT Pro (XT H systems) and VGStudio MAX write beside a reconstructed volume: section ``[file1]``
    with ``Size`` (x y z), ``Name`` (the data file), ``Datatype`` (``unsigned integer``, ``signed integer``,
    ``float``), ``BitsPerElement``, ``SkipHeader`` (bytes), ``FileFormat`` (``raw``); section ``[geometry]`` with
    ``resolution`` (x y z, or one value) in its ``unit`` (``mm`` as written; read as mm where none is stated, and
    said).  The voxels are little-endian, as these programs write them.

All are plain ``key = value`` lines.  A data file a header names must be a file name in the header's own folder (no
path: a header cannot send the reader elsewhere; a ``.vgi``'s ``Name`` often holds the full path of the machine that
reconstructed it, so only its last part is taken, in the header's folder).  Compressed, ASCII, multi-channel and
list-of-files MetaImages are refused in one sentence.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._common import InputFileError, _name, _unit_factor

__all__ = ["NamedLayout", "RawLayout", "header_beside", "layout_from_name", "read_metaimage_header", "read_vgi",
           "read_vol_info"]

#: Bytes of a header read at most (a header is a few hundred bytes; an ``.mha`` is followed by its voxels).
MAX_HEADER_BYTES = 1 << 16

_MET_TYPES = {
    "MET_UCHAR": "uint8", "MET_CHAR": "int8", "MET_USHORT": "uint16", "MET_SHORT": "int16",
    "MET_UINT": "uint32", "MET_INT": "int32", "MET_ULONG_LONG": "uint64", "MET_LONG_LONG": "int64",
    "MET_FLOAT": "float32", "MET_DOUBLE": "float64",
}
_TRUE = ("true", "1", "yes")


@dataclass(frozen=True)
class RawLayout:
    """Where and how a header says a raw volume's voxels lie.

    Attributes
    ----------
    data : Path
        The binary file.
    shape : (Z, Y, X) tuple of int
        C order, x fastest (a 2D image has Z = 1).
    dtype : str
        A numpy type name (native; see ``byte_order``).
    byte_order : {"<", ">"}
    offset : int
        Bytes before the first voxel.
    spacing : (3,) float, µm, or None
        The voxel size the header states, z, y, x.
    header : Path
    kind : {"ESRF .vol.info", "MetaImage", "VGStudio .vgi"}
    notes : dict
        For the volume's metadata (``spacing_unit``: how the header's spacing was read).
    """

    data: Path
    shape: tuple[int, int, int]
    dtype: str
    byte_order: str
    offset: int
    spacing: tuple[float, float, float] | None
    header: Path
    kind: str
    notes: dict = field(default_factory=dict)


def _pairs(text: str) -> dict[str, str]:
    """``key = value`` lines (keys upper-cased; comments and lines without ``=`` skipped)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "!#" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        out[key.strip().upper()] = value.strip()
    return out


def _ints(value: str | None, what: str, name: str, count: tuple[int, ...]) -> list[int]:
    try:
        out = [int(v) for v in (value or "").split()]
    except ValueError:
        out = []
    if len(out) not in count or any(n < 1 for n in out):
        many = " or ".join(map(str, count))
        raise InputFileError(f"header {name}: {what} must be "
                             + ("a positive whole number" if count == (1,) else f"{many} positive whole numbers")
                             + f", got {value!r}")
    return out


def _positive(value: str | None) -> list[float] | None:
    try:
        out = [float(v) for v in (value or "").split()]
    except ValueError:
        return None
    return out if out and all(np.isfinite(v) and v > 0 for v in out) else None


def _read_text(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_HEADER_BYTES)
    except OSError as exc:
        raise InputFileError(f"cannot read the header {_name(path)} ({exc.strerror or exc})") from None
    return raw.decode("latin-1")


def _data_file(header: Path, value: str) -> Path:
    """The data file a header names: a plain file name in the header's folder."""
    value = value.strip()
    if not value or os.path.basename(value) != value or value in (".", ".."):
        raise InputFileError(f"header {_name(header)} names its data file {value!r}: only a file name in the "
                             "header's own folder is read")
    data = header.parent / value
    # nor through a link out of that folder
    if data.is_symlink() and data.resolve().parent != header.parent.resolve():
        raise InputFileError(f"header {_name(header)} names its data file {value!r}, a link out of the header's "
                             "folder: only a file in the header's own folder is read")
    return data


def read_vol_info(info: str | os.PathLike, data: str | os.PathLike | None = None) -> RawLayout:
    """The layout an ESRF ``.vol.info`` states for its ``.vol`` (``data``; default: the info's name less ``.info``).

    Raises
    ------
    InputFileError
        The header lacks ``NUM_X`` / ``NUM_Y`` / ``NUM_Z``, or states a byte order or data type not understood.
    """
    info = Path(info)
    data = Path(data) if data is not None else info.with_suffix("")
    name = _name(info)
    kv = _pairs(_read_text(info))
    dims = [_ints(kv.get(k), k, name, (1,))[0] for k in ("NUM_Z", "NUM_Y", "NUM_X")]
    order = kv.get("BYTEORDER", "LOWBYTEFIRST").upper()
    if order not in ("LOWBYTEFIRST", "HIGHBYTEFIRST"):
        raise InputFileError(f"header {name}: BYTEORDER must be LOWBYTEFIRST or HIGHBYTEFIRST, got {order!r}")
    dtype = kv.get("DATA_TYPE", "float32")
    try:
        dt = np.dtype(dtype.lower())
    except TypeError:
        dt = None
    if dt is None or dt.kind not in "iuf":
        raise InputFileError(f"header {name}: DATA_TYPE {dtype!r} is not a numeric voxel type (e.g. float32)")
    size = _positive(kv.get("VOXELSIZE"))
    spacing = (size[0],) * 3 if size and len(size) == 1 else None
    return RawLayout(data=data, shape=(dims[0], dims[1], dims[2]), dtype=dt.name,
                     byte_order="<" if order == "LOWBYTEFIRST" else ">", offset=0, spacing=spacing, header=info,
                     kind="ESRF .vol.info", notes={"spacing_unit": "µm (voxelSize)"} if spacing else {})


def read_metaimage_header(path: str | os.PathLike) -> RawLayout:
    """The layout a MetaImage header states (``.mhd``, or ``.mha`` with its voxels after the header).

    Raises
    ------
    InputFileError
        Not a MetaImage header, or one this reader refuses (compressed, ASCII, several channels or files, an
        unknown element type, a data file outside the header's folder).
    """
    path = Path(path)
    name = _name(path)
    text = _read_text(path)
    # the header ends at the ElementDataFile line (the format puts it last); an .mha's voxels follow it
    lines, end = [], 0
    for line in text.splitlines(keepends=True):
        end += len(line.encode("latin-1"))
        lines.append(line)
        if line.strip().upper().startswith("ELEMENTDATAFILE"):
            break
    else:
        raise InputFileError(f"{name} is not a MetaImage header (no ElementDataFile line)")
    kv = _pairs("".join(lines))
    if kv.get("OBJECTTYPE", "Image").lower() != "image":
        raise InputFileError(f"{name}: MetaImage object {kv['OBJECTTYPE']!r} is not an image")
    ndims = _ints(kv.get("NDIMS"), "NDims", name, (1,))[0]
    if ndims not in (2, 3):
        raise InputFileError(f"{name}: a MetaImage of {ndims} dimensions is not a volume (2 or 3)")
    xyz = _ints(kv.get("DIMSIZE"), "DimSize", name, (ndims,))
    if int(kv.get("ELEMENTNUMBEROFCHANNELS", "1") or 1) != 1:
        raise InputFileError(f"{name}: a MetaImage with several channels per voxel is not a greyscale volume")
    if kv.get("COMPRESSEDDATA", "false").lower() in _TRUE:
        raise InputFileError(f"{name} is a compressed MetaImage, which is not read: save it uncompressed, or as "
                             "a TIFF")
    if kv.get("BINARYDATA", "true").lower() not in _TRUE:
        raise InputFileError(f"{name} stores its voxels as text (BinaryData = False), which is not read")
    etype = kv.get("ELEMENTTYPE", "").upper()
    if etype not in _MET_TYPES:
        raise InputFileError(f"{name}: ElementType {etype or 'missing'!r} is not read (one of "
                             f"{', '.join(_MET_TYPES)})")
    msb = kv.get("BINARYDATABYTEORDERMSB", kv.get("ELEMENTBYTEORDERMSB", "false")).lower() in _TRUE
    target = kv.get("ELEMENTDATAFILE", "")
    if target.upper().startswith("LIST") or "%" in target:
        raise InputFileError(f"{name}: a MetaImage spread over several data files is not read")
    local = target.upper() == "LOCAL"
    data = path if local else _data_file(path, target)
    try:
        skip = int(kv.get("HEADERSIZE", "0") or 0)
    except ValueError:
        raise InputFileError(f"{name}: HeaderSize {kv['HEADERSIZE']!r} is not a whole number") from None
    dims = tuple(reversed(xyz)) if ndims == 3 else (1, xyz[1], xyz[0])
    dt = np.dtype(_MET_TYPES[etype])
    if skip == -1:  # the voxels are the data file's last bytes
        try:
            size = data.stat().st_size
        except OSError:
            raise FileNotFoundError(f"no such file: {_name(data)} (the data file of {name})") from None
        skip = max(0, size - int(np.prod(dims, dtype=np.int64)) * dt.itemsize)
    elif skip < 0:
        raise InputFileError(f"{name}: HeaderSize must be -1 or a number of bytes, got {skip}")
    offset = (end if local else 0) + skip
    sp = _positive(kv.get("ELEMENTSPACING", kv.get("ELEMENTSIZE")))
    spacing = None
    if sp is not None and len(sp) == ndims:
        zyx = tuple(reversed(sp)) if ndims == 3 else (sp[0], sp[1], sp[0])
        spacing = tuple(1000.0 * v for v in zyx)  # mm, the format's convention -> µm
    return RawLayout(data=data, shape=dims, dtype=dt.name, byte_order=">" if msb else "<", offset=offset,
                     spacing=spacing, header=path, kind="MetaImage",
                     notes={"spacing_unit": "mm (the MetaImage convention)"} if spacing else {})


#: A ``.vgi``'s ``Datatype`` and ``BitsPerElement`` as a numpy type.
_VGI_TYPES = {("unsigned integer", 8): "uint8", ("unsigned integer", 16): "uint16", ("unsigned integer", 32): "uint32",
              ("signed integer", 8): "int8", ("signed integer", 16): "int16", ("signed integer", 32): "int32",
              ("float", 32): "float32", ("float", 64): "float64"}


def _vgi_sections(text: str) -> dict[str, dict[str, str]]:
    """``[section]`` -> ``key = value`` (names lower-cased; a section or key met twice keeps its first values: the
    first ``{volume}`` block's)."""
    out: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            name = line[1:-1].strip().lower()
            current = out.setdefault(name, {}) if name not in out else None
        elif current is not None and "=" in line and not line.startswith("{"):
            key, value = line.split("=", 1)
            current.setdefault(key.strip().lower(), value.strip())
    return out


def read_vgi(path: str | os.PathLike) -> RawLayout:
    """The layout a VGStudio / Nikon CT Pro ``.vgi`` header states for its volume file.

    Raises
    ------
    InputFileError
        No ``[file1]`` section, a size, type or header length not understood, a data file that is not raw, or none
        named.
    """
    path = Path(path)
    name = _name(path)
    sections = _vgi_sections(_read_text(path))
    f1 = sections.get("file1")
    if not f1:
        raise InputFileError(f"{name} is not a VGStudio header (no [file1] section)")
    if f1.get("fileformat", "raw").lower() != "raw":
        raise InputFileError(f"{name}: its volume is stored as {f1['fileformat']!r}, not raw, which is not read")
    size = f1.get("size") or (sections.get("representation") or {}).get("size")
    x, y, z = _ints(size, "Size", name, (3,))
    kind = " ".join(f1.get("datatype", "").lower().split())
    try:
        bits = int(f1.get("bitsperelement", ""))
    except ValueError:
        bits = 0
    dtype = _VGI_TYPES.get((kind, bits))
    if dtype is None:
        raise InputFileError(f"{name}: Datatype {f1.get('datatype', 'missing')!r} with BitsPerElement "
                             f"{f1.get('bitsperelement', 'missing')!r} is not a voxel type read (unsigned or signed "
                             "integer of 8, 16 or 32 bits, float of 32 or 64)")
    target = f1.get("name", "").replace("\\", "/").rsplit("/", 1)[-1]
    if not target:
        raise InputFileError(f"{name} names no data file (Name in [file1])")
    try:
        skip = int(f1.get("skipheader", "0") or 0)
    except ValueError:
        raise InputFileError(f"{name}: SkipHeader {f1['skipheader']!r} is not a whole number of bytes") from None
    if skip < 0:
        raise InputFileError(f"{name}: SkipHeader must be a number of bytes, got {skip}")
    geometry = sections.get("geometry") or {}
    res = _positive(geometry.get("resolution"))
    unit = geometry.get("unit")
    factor = _unit_factor(unit) if unit else 1000.0
    spacing, notes = None, {}
    if res is not None and len(res) in (1, 3) and factor is not None:
        rx, ry, rz = res * 3 if len(res) == 1 else res
        spacing = (rz * factor, ry * factor, rx * factor)
        if not unit:
            notes = {"spacing_unit": "mm (no unit in the header: VGStudio's default)"}
    return RawLayout(data=_data_file(path, target), shape=(z, y, x), dtype=dtype, byte_order="<", offset=skip,
                     spacing=spacing, header=path, kind="VGStudio .vgi", notes=notes)


def header_beside(path: str | os.PathLike) -> RawLayout | None:
    """The layout a header beside the raw file ``path`` states, or None when there is none.

    Looked for: ``<path>.info`` (ESRF: ``X.vol.info`` beside ``X.vol``), then a MetaImage ``.mhd`` of the same
    stem whose ``ElementDataFile`` is this file, then a VGStudio ``.vgi`` of the same stem whose data file is this
    file (Nikon CT Pro: ``X.vgi`` beside ``X.vol``).

    Raises
    ------
    InputFileError
        A header is there but cannot be used (see :func:`read_vol_info`, :func:`read_metaimage_header`).
    """
    path = Path(path)
    info = Path(os.fspath(path) + ".info")
    if info.is_file():
        return read_vol_info(info, path)
    mhd = path.with_suffix(".mhd")
    if mhd.is_file():
        layout = read_metaimage_header(mhd)
        if layout.data.name == path.name:
            return layout
    vgi = path.with_suffix(".vgi")
    if vgi.is_file():
        layout = read_vgi(vgi)
        if layout.data.name == path.name:
            return layout
    return None


# --- a layout written in the file's name -------------------------------------------------------------------------

#: Words of a raw file's name that say its voxel type (lower case, whole words between ``_ - . space``).
NAME_DTYPES: dict[str, str] = {
    "uint8": "uint8", "u8": "uint8", "8bit": "uint8", "8-bit": "uint8", "ubyte": "uint8",
    "int8": "int8", "s8": "int8",
    "uint16": "uint16", "u16": "uint16", "16bit": "uint16", "16-bit": "uint16", "ushort": "uint16",
    "int16": "int16", "s16": "int16",
    "uint32": "uint32", "u32": "uint32", "int32": "int32", "s32": "int32",
    "float32": "float32", "f32": "float32", "32bit": "float32", "32-bit": "float32", "float": "float32",
    "real32": "float32",
    "float64": "float64", "f64": "float64", "double": "float64", "64bit": "float64", "64-bit": "float64",
}
#: Words of a raw file's name that say its byte order.
NAME_ORDERS: dict[str, str] = {"be": ">", "bigendian": ">", "big-endian": ">", "big_endian": ">", "msb": ">",
                               "le": "<", "littleendian": "<", "little-endian": "<", "little_endian": "<", "lsb": "<"}
#: The type a byte count alone proposes for each voxel width (CT reconstructions: 8 / 16-bit or float).
_BY_WIDTH = {1: "uint8", 2: "uint16", 4: "float32", 8: "float64"}
_DIMS = re.compile(r"(?<![0-9])([0-9]{1,6})\s*[x×X*]\s*([0-9]{1,6})(?:\s*[x×X*]\s*([0-9]{1,6}))?(?![0-9])")


@dataclass(frozen=True)
class NamedLayout:
    """A raw file's layout proposed from its name and checked against its byte count.

    Attributes
    ----------
    shape : (Z, Y, X) tuple of int
        From the name's ``W x H x D`` (width × height × slices: x, y, z), or ``W x H`` for one slice.
    dtype : str
    byte_order : {"<", ">"}
    dtype_from : {"name", "size"}
        Whether the name says the type or only the byte count proposes it (1 byte uint8, 2 uint16, 4 float32,
        8 float64: a guess to check).
    """

    shape: tuple[int, int, int]
    dtype: str
    byte_order: str
    dtype_from: str

    def describe(self) -> str:
        """One phrase for the user: the layout and where it came from."""
        z, y, x = self.shape
        order = "" if np.dtype(self.dtype).itemsize == 1 else (
            ", big-endian" if self.byte_order == ">" else ", little-endian")
        what = "named" if self.dtype_from == "name" else "from the byte count: check it"
        return (f"{x}×{y}×{z} (width × height × slices, read as x, y, z), {self.dtype} ({what}){order}")


def _words(stem: str) -> list[str]:
    low = stem.lower()
    parts = [w for w in re.split(r"[_\s.]+", low) if w]
    # hyphenated words ("16-bit", "big-endian") as written and split
    return parts + [p for w in parts if "-" in w for p in w.split("-")]


def layout_from_name(path: str | os.PathLike) -> NamedLayout | None:
    """The layout a raw file's name writes (``scan_512x512x300_uint16.raw``), when its byte count agrees.

    The sizes are read as width × height × slices (x, y, z: how ImageJ, Avizo and beamline scripts name
    volumes); the type from a word of the name (:data:`NAME_DTYPES`), else from the bytes per voxel the size
    leaves (:data:`_BY_WIDTH`); the byte order from a word (:data:`NAME_ORDERS`), else little-endian.  Only a
    proposal for the user to confirm: the byte count cannot tell x from z.

    Returns
    -------
    NamedLayout or None
        None when the name holds no sizes, or they (with the named type) do not fill the file exactly.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        return None
    found = _DIMS.findall(path.stem)
    if not found or size <= 0:
        return None
    dims = [int(n) for n in found[-1] if n]
    if any(n <= 0 for n in dims):
        return None
    x, y, z = (dims + [1])[:3]
    words = _words(path.stem)
    named = next((NAME_DTYPES[w] for w in words if w in NAME_DTYPES), None)
    order = next((NAME_ORDERS[w] for w in words if w in NAME_ORDERS), "<")
    count = x * y * z
    if named is not None:
        if count * np.dtype(named).itemsize != size:
            return None
        return NamedLayout((z, y, x), named, order, "name")
    width, rest = divmod(size, count)
    if rest or width not in _BY_WIDTH:
        return None
    return NamedLayout((z, y, x), _BY_WIDTH[width], order, "size")
