"""Reading and writing tomography volumes.

Every loader returns a :class:`Volume`: a numpy array with axes ``(z, y, x)``
plus the voxel ``spacing`` in micrometres (µm) per axis and where it came from.
A 2D image is returned with depth 1, shape ``(1, Y, X)``.

Supported inputs (see :func:`detect_format`):

``"tiff"``
    Multi-page TIFF, ImageJ hyperstack or OME-TIFF (``.tif``, ``.tiff``,
    ``.ome.tif``).
``"slices"``
    A folder of 2D ``.tif``/``.tiff``/``.png`` slices, stacked in natural order
    (``slice2`` before ``slice10``).
``"hdf5"``
    ``.h5``, ``.hdf5``, ``.hdf``, ``.nxs``; one dataset is chosen with ``dataset``.
``"zarr"``
    A zarr v2 or v3 store (``.zarr`` folder, or any folder holding
    ``zarr.json``/``.zarray``/``.zgroup``).
``"npy"``
    A NumPy ``.npy`` file (memory-mapped by default).
``"raw"``
    Headerless binary (``.raw``, ``.bin``, ``.vol``); needs ``shape`` and ``dtype``.

Loaders never write to or modify their input.  :func:`save_tiff` writes an
ImageJ-compatible TIFF atomically (temporary file + :func:`os.replace`).

Phase volumes that are already segmented are turned into the fixed codes
``0 = pore``, ``1 = CBD``, ``2 = NMC`` with :func:`load_phases`,
:func:`parse_phase_map` and :func:`apply_phase_map`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

import numpy as np
import tifffile

from .._validate import check_choice, normalize_spacing
from ..codes import CBD, NMC, PORE

__all__ = [
    "FORMATS",
    "Volume",
    "apply_phase_map",
    "detect_format",
    "list_datasets",
    "load_phases",
    "load_volume",
    "parse_phase_map",
    "save_tiff",
]

#: Format names accepted by ``load_volume(fmt=...)``.
FORMATS: tuple[str, ...] = ("tiff", "slices", "hdf5", "zarr", "npy", "raw")

_TIFF_SUFFIXES = (".tif", ".tiff")
_SLICE_SUFFIXES = (".tif", ".tiff", ".png")
_HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs")
_RAW_SUFFIXES = (".raw", ".bin", ".vol")
_ZARR_MARKERS = ("zarr.json", ".zarray", ".zgroup")

_SUPPORTED_TEXT = (
    "TIFF (.tif, .tiff, .ome.tif), a folder of .tif/.tiff/.png slices, "
    "HDF5 (.h5, .hdf5, .hdf, .nxs), zarr (.zarr), NumPy (.npy) and raw binary (.raw, .bin, .vol)"
)

# Length units found in ImageJ / OME / attribute metadata -> factor to µm.
# "inch" is deliberately absent: in practice it is a print DPI setting, not a voxel size.
_UNIT_TO_UM: dict[str, float] = {
    "um": 1.0,
    "µm": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "micrometer": 1.0,
    "micrometre": 1.0,
    "micrometers": 1.0,
    "micrometres": 1.0,
    "nm": 1e-3,
    "nanometer": 1e-3,
    "nanometre": 1e-3,
    "nanometers": 1e-3,
    "nanometres": 1e-3,
    "mm": 1e3,
    "millimeter": 1e3,
    "millimetre": 1e3,
    "millimeters": 1e3,
    "millimetres": 1e3,
    "cm": 1e4,
    "centimeter": 1e4,
    "centimetre": 1e4,
    "m": 1e6,
    "meter": 1e6,
    "metre": 1e6,
    "å": 1e-4,
    "angstrom": 1e-4,
}

# TIFF ResolutionUnit tag values (CENTIMETER, MILLIMETER, MICROMETER) -> µm per unit.
# INCH (2) is ignored for the same reason as above; NONE (1) carries no unit.
_RESUNIT_TO_UM = {3: 1e4, 4: 1e3, 5: 1.0}

# Attribute names holding a spacing in HDF5 / zarr, in order of preference.
_SPACING_ATTRS = ("element_size_um", "voxel_size_um", "spacing", "pixel_size")
_UNIT_ATTRS = ("spacing_unit", "pixel_size_unit", "unit", "units")

_PHASE_ALIASES: dict[str, int] = {
    "pore": PORE,
    "cbd": CBD,
    "binder": CBD,
    "carbon": CBD,
    "nmc": NMC,
    "particle": NMC,
    "solid": NMC,
    "am": NMC,
}
_PHASE_HELP = "pore, cbd (binder, carbon), nmc (particle, solid, am) or the codes 0, 1, 2"
_UNMAPPED = 255  # sentinel code in apply_phase_map; real codes are 0..2


class _FormatError(ValueError):
    """A ValueError raised on purpose inside a ``try`` that wraps foreign errors."""


# --------------------------------------------------------------------------- Volume


@dataclass(frozen=True, eq=False)
class Volume:
    """A loaded image volume with its voxel spacing.

    Attributes
    ----------
    data : numpy.ndarray, shape (Z, Y, X)
        The voxels.  A 2D image has ``Z == 1``.  May be a read-only
        :class:`numpy.memmap` when the file was memory-mapped.  Boolean data is
        returned as ``uint8``.
    spacing : tuple of 3 float
        Voxel size in µm along ``(z, y, x)``.
    source : str
        The path read; for HDF5 / zarr datasets ``"file.h5::/group/ds"``.
    fmt : str
        One of :data:`FORMATS`.
    spacing_from_metadata : bool
        ``True`` when ``spacing`` was read from the file, ``False`` when it was
        passed by the caller or defaulted to 1 µm.
    metadata : Mapping[str, object]
        Read-only extra information, e.g. ``"spacing_source"`` (``"imagej"``,
        ``"ome"``, ``"json"``, ``"resolution"``, ``"attrs:<name>"``,
        ``"argument"`` or ``"default"``), ``"spacing_z_assumed"`` (z spacing set
        equal to the x spacing because the file only gave the in-plane pixel
        size), ``"file_spacing"`` (what the file said when the caller's
        ``spacing`` overrode it), ``"mmap"``, ``"files"`` (slice folders),
        ``"dataset"`` (HDF5 / zarr).
    """

    data: np.ndarray
    spacing: tuple[float, float, float]
    source: str
    fmt: str
    spacing_from_metadata: bool
    metadata: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        if not isinstance(self.metadata, MappingProxyType):
            object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape ``(Z, Y, X)`` of :attr:`data`."""
        return tuple(self.data.shape)  # type: ignore[return-value]

    def __repr__(self) -> str:
        return (
            f"Volume(shape={self.data.shape}, dtype={self.data.dtype}, spacing={self.spacing}, "
            f"fmt={self.fmt!r}, source={self.source!r}, spacing_from_metadata={self.spacing_from_metadata})"
        )


# --------------------------------------------------------------------------- helpers


def _natural_key(name: str) -> tuple:
    """Sort key so that ``slice2`` comes before ``slice10`` (case-insensitive)."""
    parts = re.split(r"(\d+)", name.lower())
    # re.split with a capture group alternates text (even) and digits (odd), so
    # the same position always holds the same type.
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), name


def _slice_files(folder: Path) -> list[Path]:
    """Visible ``.tif``/``.tiff``/``.png`` files of ``folder`` in natural order."""
    files = [
        p
        for p in folder.iterdir()
        if not p.name.startswith(".") and p.suffix.lower() in _SLICE_SUFFIXES and p.is_file()
    ]
    return sorted(files, key=lambda p: _natural_key(p.name))


def _is_zarr_dir(path: Path) -> bool:
    return path.suffix.lower() == ".zarr" or any((path / m).exists() for m in _ZARR_MARKERS)


def _short(exc: BaseException, limit: int = 160) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unit_factor(unit: object) -> float | None:
    """µm per ``unit``, or ``None`` when the unit is missing or not a length we trust."""
    if isinstance(unit, bytes):
        unit = unit.decode("utf-8", "replace")
    if not isinstance(unit, str):
        return None
    u = unit.strip().lower()
    u = u.replace("\\u00b5", "µ").replace("\\u03bc", "µ").replace("μ", "µ").replace("\u212b", "å")
    return _UNIT_TO_UM.get(u)


def _check_numeric(data: np.ndarray, where: str) -> np.ndarray:
    """Reject non-numeric data; bool -> uint8 (no copy); foreign byte order -> native (copy)."""
    if data.dtype == bool:
        return data.view(np.uint8)
    if data.dtype.kind not in "iuf":
        raise ValueError(f"{where} holds data of dtype {data.dtype}; expected integer or floating-point voxels")
    if not data.dtype.isnative:
        data = np.asarray(data.astype(data.dtype.newbyteorder("=")))  # plain ndarray, not a memmap
    return data


def _zyx_shape(shape: tuple[int, ...], where: str, axes: str | None = None) -> tuple[int, int, int]:
    """Target ``(Z, Y, X)`` shape for data of ``shape``: reject channels, 4D+ and empty data.

    With tifffile ``axes`` letters, channel axes ``C``/``S`` longer than 1 are
    rejected and every singleton axis other than Y and X is dropped.  Without
    axes, leading and trailing singleton axes are dropped while more than 3 remain.
    """
    shape = tuple(int(n) for n in shape)
    kept = shape
    kept_axes = None
    if axes is not None and len(axes) == len(shape):
        for letter, size in zip(axes, shape):
            if letter in "CS" and size > 1:
                raise _FormatError(f"{where} has {size} channels; convert it to greyscale first")
        keep = [i for i, (a, n) in enumerate(zip(axes, shape)) if n > 1 or a in "YX"]
        if len(keep) < 2:  # no Y/X letters (odd file): keep the last two axes
            keep = sorted(set(keep) | {len(shape) - 2, len(shape) - 1})
        kept = tuple(shape[i] for i in keep)
        kept_axes = "".join(axes[i] for i in keep)
    else:
        while len(kept) > 3 and kept[0] == 1:
            kept = kept[1:]
        while len(kept) > 3 and kept[-1] == 1:
            kept = kept[:-1]
    if len(kept) == 2:
        kept = (1,) + kept
    if len(kept) != 3:
        extra = f", axes {axes!r}" if kept_axes else ""
        raise _FormatError(
            f"{where} has {len(kept)} dimensions (shape {shape}{extra}); "
            "expected a 2D image or a 3D (z, y, x) volume"
        )
    if 0 in kept:
        raise _FormatError(f"{where} is empty: shape {shape}")
    return kept  # type: ignore[return-value]


def _to_zyx(data: np.ndarray, where: str, axes: str | None = None) -> np.ndarray:
    """``data`` reshaped (a view, no copy) to ``(Z, Y, X)``; see :func:`_zyx_shape`."""
    target = _zyx_shape(data.shape, where, axes)
    return data if data.shape == target else data.reshape(target)


# --------------------------------------------------------------------------- detect / list


def detect_format(path: str | os.PathLike) -> str:
    """Guess the format of ``path`` from its suffix or, for a folder, its content.

    Parameters
    ----------
    path : str or path-like
        File or folder.

    Returns
    -------
    str
        One of :data:`FORMATS`: ``.tif``/``.tiff``/``.ome.tif`` -> ``"tiff"``;
        a folder holding ``.tif``/``.tiff``/``.png`` files -> ``"slices"``; a
        ``.zarr`` path or a folder holding a zarr store -> ``"zarr"``;
        ``.h5``/``.hdf5``/``.hdf``/``.nxs`` -> ``"hdf5"``; ``.npy`` -> ``"npy"``;
        ``.raw``/``.bin``/``.vol`` -> ``"raw"``.  Suffixes are case-insensitive.

    Raises
    ------
    ValueError
        If the suffix is unknown, or a folder is neither a zarr store nor holds slices.
    """
    p = Path(os.path.expanduser(os.fspath(path)))
    if p.is_dir():
        if _is_zarr_dir(p):
            return "zarr"
        if _slice_files(p):
            return "slices"
        raise ValueError(f"folder {p} holds no .tif/.tiff/.png slices and is not a zarr store")
    suffix = p.suffix.lower()
    if suffix in _TIFF_SUFFIXES:
        return "tiff"
    if suffix in _HDF5_SUFFIXES:
        return "hdf5"
    if suffix == ".zarr":
        return "zarr"
    if suffix == ".npy":
        return "npy"
    if suffix in _RAW_SUFFIXES:
        return "raw"
    raise ValueError(f"unknown file format for {p} (suffix {suffix or 'none'!r}); supported are {_SUPPORTED_TEXT}")


def _require_exists(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")


def _split_dataset(path: str | os.PathLike, dataset: str | None) -> tuple[Path, str | None]:
    """Accept ``"file.h5::/group/ds"`` as produced in :attr:`Volume.source`."""
    text = os.path.expanduser(os.fspath(path))
    if "::" in text and not os.path.exists(text):
        file_part, ds_part = text.split("::", 1)
        if os.path.exists(file_part):
            if dataset is not None and dataset.strip("/") != ds_part.strip("/"):
                raise ValueError(
                    f"dataset given twice for {file_part}: {ds_part!r} in the path and {dataset!r} as argument"
                )
            return Path(file_part), ds_part
    return Path(text), dataset


def list_datasets(path: str | os.PathLike) -> list[tuple[str, tuple[int, ...], str]]:
    """List every array in an HDF5 file or a zarr store.

    Parameters
    ----------
    path : str or path-like
        HDF5 file or zarr store.

    Returns
    -------
    list of (name, shape, dtype)
        One entry per array, recursing into groups, sorted by name.  ``name``
        starts with ``/`` (e.g. ``"/entry/data/data"``) and can be passed as
        ``dataset`` to :func:`load_volume`; a zarr store that is a single array
        is listed as ``"/"``.  ``dtype`` is the numpy dtype name, e.g. ``"uint16"``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If ``path`` is not an HDF5 file or zarr store, or cannot be read.
    """
    p = Path(os.path.expanduser(os.fspath(path)))
    _require_exists(p)
    fmt = detect_format(p)
    if fmt == "hdf5":
        h5py = _import_h5py()
        with _open_h5(p, h5py) as f:
            return _h5_arrays(f, h5py)
    if fmt == "zarr":
        root = _open_zarr(p)
        return _zarr_arrays(root)
    raise ValueError(f"cannot list datasets of {p}: it is a {fmt} file, not an HDF5 file or zarr store")


# --------------------------------------------------------------------------- load_volume


def load_volume(
    path: str | os.PathLike,
    *,
    fmt: str | None = None,
    spacing: float | Sequence[float] | None = None,
    dataset: str | None = None,
    shape: Sequence[int] | None = None,
    dtype: object = None,
    byte_order: str = "<",
    offset: int = 0,
    mmap: bool = True,
) -> Volume:
    """Load a 3D volume (or a 2D image as depth 1) from disk.

    Parameters
    ----------
    path : str or path-like
        File or folder.  For HDF5 / zarr, ``"file.h5::/group/ds"`` (the form of
        :attr:`Volume.source`) is accepted too.
    fmt : str, optional
        One of :data:`FORMATS`; guessed with :func:`detect_format` when ``None``.
    spacing : float or sequence of 3 float, optional
        Voxel size in µm, ``(z, y, x)`` or one value for isotropic voxels.  When
        given it overrides what the file says (``spacing_from_metadata=False``);
        when ``None`` the file's metadata is used, else 1 µm.
    dataset : str, optional
        HDF5 / zarr only: which array to read (see :func:`list_datasets`).  May
        be omitted when the file holds exactly one array with 2 or more dimensions.
    shape : sequence of 2 or 3 int, optional
        Raw only (required): array shape ``(z, y, x)`` (or ``(y, x)``).
    dtype : numpy dtype or str, optional
        Raw only (required): voxel type, e.g. ``"uint16"``.
    byte_order : {"<", ">"}
        Raw only: little (``"<"``, default) or big (``">"``) endian.
    offset : int
        Raw only: number of header bytes to skip.
    mmap : bool
        Memory-map the data read-only where the format allows (uncompressed
        contiguous TIFF, ``.npy``, raw) instead of reading it into memory.
        Data stored in the non-native byte order (e.g. big-endian ImageJ TIFFs)
        is always read into memory and converted, so ``data`` is native-endian.

    Returns
    -------
    Volume
        ``data`` has shape ``(Z, Y, X)``; ``spacing`` is in µm.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the format is unknown, the file cannot be read, the data is not 2D/3D
        greyscale, a raw file's size does not match ``shape``/``dtype``, the
        dataset is ambiguous or missing, or an argument is invalid.
    TypeError
        If ``spacing``, ``shape``, ``dtype`` or ``offset`` has the wrong type.

    Notes
    -----
    Spacing metadata understood, in order: our own JSON TIFF description
    (``{"spacing_um": [dz, dy, dx]}``), ImageJ (``unit``, ``spacing`` and the
    X/YResolution tags), OME-XML ``PhysicalSizeX/Y/Z`` (+ ``...Unit``), and
    TIFF resolution tags in cm/mm/µm.  Units nm, µm, mm, cm and m are converted
    to µm; ``inch`` and ``pixel`` are ignored.  When only the in-plane pixel size
    is known, z is set equal to x (``metadata["spacing_z_assumed"] = True``),
    except for ImageJ stacks without ``spacing``, which follow ImageJ's default
    voxel depth of 1 unit.  HDF5 / zarr spacing comes from the attributes
    ``element_size_um``, ``voxel_size_um``, ``spacing`` or ``pixel_size`` of the
    dataset or its parent groups (``spacing``/``pixel_size`` in µm unless a
    ``unit`` attribute says otherwise).
    """
    p, dataset = _split_dataset(path, dataset)
    if fmt is not None:
        check_choice(fmt, "fmt", FORMATS)
    user_spacing = normalize_spacing(spacing) if spacing is not None else None
    check_choice(byte_order, "byte_order", ("<", ">"))
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)):
        raise TypeError(f"offset must be an integer number of bytes, got {offset!r}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0 bytes, got {offset}")
    if not isinstance(mmap, (bool, np.bool_)):
        raise TypeError(f"mmap must be True or False, got {mmap!r}")
    _require_exists(p)
    if fmt is None:
        fmt = detect_format(p)

    if fmt != "raw":
        unused = [
            name
            for name, value, default in (
                ("shape", shape, None),
                ("dtype", dtype, None),
                ("byte_order", byte_order, "<"),
                ("offset", offset, 0),
            )
            if value != default
        ]
        if unused:
            raise ValueError(f"{', '.join(unused)} only apply to raw files, but {p} is read as {fmt}")
    if dataset is not None and fmt not in ("hdf5", "zarr"):
        raise ValueError(f"dataset only applies to HDF5 and zarr files, but {p} is read as {fmt}")
    if fmt in ("tiff", "npy", "raw", "hdf5") and p.is_dir():
        raise ValueError(f"{p} is a folder, but format {fmt!r} needs a file")
    if fmt == "slices" and not p.is_dir():
        raise ValueError(f"{p} is a file, but format 'slices' needs a folder of 2D images")

    if fmt == "tiff":
        data, found, meta = _read_tiff(p, mmap=bool(mmap))
        source = os.fspath(p)
    elif fmt == "slices":
        data, found, meta = _read_slices(p)
        source = os.fspath(p)
    elif fmt == "hdf5":
        data, found, meta, name = _read_hdf5(p, dataset)
        source = f"{os.fspath(p)}::{name}"
    elif fmt == "zarr":
        data, found, meta, name = _read_zarr(p, dataset)
        source = os.fspath(p) if name == "/" else f"{os.fspath(p)}::{name}"
    elif fmt == "npy":
        data, found, meta = _read_npy(p, mmap=bool(mmap))
        source = os.fspath(p)
    else:  # raw
        data, found, meta = _read_raw(p, shape=shape, dtype=dtype, byte_order=byte_order, offset=int(offset), mmap=bool(mmap))
        source = os.fspath(p)

    meta = dict(meta)
    meta.setdefault("mmap", isinstance(data, np.memmap))
    if user_spacing is not None:
        if found is not None:
            meta["file_spacing"] = found
        meta["spacing_source"] = "argument"
        final, from_meta = user_spacing, False
    elif found is not None:
        final, from_meta = found, True
    else:
        meta["spacing_source"] = "default"
        final, from_meta = (1.0, 1.0, 1.0), False
    if not from_meta:
        meta.pop("spacing_z_assumed", None)
    return Volume(data=data, spacing=final, source=source, fmt=fmt, spacing_from_metadata=from_meta, metadata=meta)


def _valid_spacing(values: Sequence[float]) -> tuple[float, float, float] | None:
    """Spacing found in a file, or ``None`` if it is unusable (0, negative, NaN)."""
    try:
        return normalize_spacing(tuple(float(v) for v in values))
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- TIFF


def _tiff_description_json(page) -> dict | None:
    for attr in ("description", "description1"):
        text = getattr(page, attr, "") or ""
        text = text.strip()
        if text.startswith("{"):
            with contextlib.suppress(ValueError):
                obj = json.loads(text)
                if isinstance(obj, dict):
                    return obj
    return None


def _pixel_size(page, tag: str) -> float | None:
    """Pixel size in resolution units from an X/YResolution tag, or ``None``."""
    t = page.tags.get(tag)
    if t is None:
        return None
    value = t.value
    try:
        if isinstance(value, tuple):
            num, den = float(value[0]), float(value[1])
        else:
            num, den = float(value), 1.0
    except (TypeError, ValueError, IndexError):
        return None
    if not (num > 0 and den > 0):
        return None
    return den / num


def _tiff_spacing(tif: tifffile.TiffFile, depth: int) -> tuple[tuple[float, float, float] | None, dict]:
    """Spacing in µm from TIFF metadata (or ``None``) and metadata notes."""
    page = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]

    # 1. our own JSON description (save_tiff for non-ImageJ dtypes)
    desc = _tiff_description_json(page)
    if desc is not None and "spacing_um" in desc:
        values = desc["spacing_um"]
        if isinstance(values, (list, tuple)) and len(values) == 3:
            sp = _valid_spacing(values)
            if sp is not None:
                return sp, {"spacing_source": "json"}

    # 2. ImageJ
    ij = tif.imagej_metadata if tif.is_imagej else None
    if ij:
        fx = _unit_factor(ij.get("unit"))
        if fx is not None:
            fy = _unit_factor(ij.get("yunit", ij.get("unit"))) or fx
            fz = _unit_factor(ij.get("zunit", ij.get("unit"))) or fx
            px = _pixel_size(page, "XResolution")
            py = _pixel_size(page, "YResolution")
            if px is not None:
                dx = px * fx
                dy = (py if py is not None else px) * fy
                notes: dict = {"spacing_source": "imagej"}
                if "spacing" in ij:
                    try:
                        dz = float(ij["spacing"]) * fz
                    except (TypeError, ValueError):
                        dz, notes["spacing_z_assumed"] = dx, True
                elif depth > 1:
                    dz = 1.0 * fz  # ImageJ's default voxel depth is 1 unit
                else:
                    dz, notes["spacing_z_assumed"] = dx, True
                sp = _valid_spacing((dz, dy, dx))
                if sp is not None:
                    return sp, notes

    # 3. OME-XML
    if tif.is_ome and tif.ome_metadata:
        sp, notes = _ome_spacing(tif.ome_metadata)
        if sp is not None:
            return sp, notes

    # 4. plain resolution tags in metric units
    unit_tag = page.tags.get("ResolutionUnit")
    factor = _RESUNIT_TO_UM.get(int(unit_tag.value)) if unit_tag is not None else None
    if factor is not None:
        px = _pixel_size(page, "XResolution")
        py = _pixel_size(page, "YResolution")
        if px is not None:
            dx = px * factor
            dy = (py if py is not None else px) * factor
            sp = _valid_spacing((dx, dy, dx))
            if sp is not None:
                return sp, {"spacing_source": "resolution", "spacing_z_assumed": True}
    return None, {}


def _ome_spacing(xml: str) -> tuple[tuple[float, float, float] | None, dict]:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None, {}
    pixels = next((el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return None, {}

    def size(axis: str) -> float | None:
        value = pixels.get(f"PhysicalSize{axis}")
        if value is None:
            return None
        factor = _unit_factor(pixels.get(f"PhysicalSize{axis}Unit", "µm"))
        try:
            return float(value) * factor if factor is not None else None
        except ValueError:
            return None

    dx, dy, dz = size("X"), size("Y"), size("Z")
    if dx is None:
        return None, {}
    notes: dict = {"spacing_source": "ome"}
    if dy is None:
        dy = dx
    if dz is None:
        dz, notes["spacing_z_assumed"] = dx, True
    sp = _valid_spacing((dz, dy, dx))
    return (sp, notes) if sp is not None else (None, {})


def _read_tiff(path: Path, *, mmap: bool) -> tuple[np.ndarray, tuple | None, dict]:
    """Read series 0 of a TIFF as (Z, Y, X); memory-map it if possible and asked."""
    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.series:
                raise _FormatError(f"{path} holds no image data")
            series = tif.series[0]
            axes, shape = series.axes, tuple(series.shape)
            _zyx_shape(shape, str(path), axes)  # reject channels / 4D+ before reading pixels
            depth = int(np.prod([n for a, n in zip(axes, shape) if a not in "YXCS"], dtype=np.int64))
            spacing, notes = _tiff_spacing(tif, depth)
            meta = {"axes": axes, "imagej": bool(tif.is_imagej), "ome": bool(tif.is_ome), **notes}
            data = None
            if mmap and series.dataoffset is not None and np.dtype(tif.byteorder + series.dtype.char).isnative:
                with contextlib.suppress(Exception):
                    data = tifffile.memmap(path, series=0, mode="r").reshape(shape)
            if data is None:
                data = series.asarray()
                if data.shape != shape:
                    data = data.reshape(shape)
    except _FormatError:
        raise
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    except Exception as exc:  # tifffile raises many types for broken files
        raise ValueError(f"could not read {path} as TIFF: {_short(exc)}") from exc
    data = _check_numeric(data, str(path))
    return _to_zyx(data, str(path), axes), spacing, meta


# --------------------------------------------------------------------------- slices


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            bands = len(im.getbands())
            if bands > 1 and im.mode != "P":
                raise _FormatError(f"{path} has {bands} channels ({im.mode}); convert it to greyscale first")
            arr = np.asarray(im)
    except _FormatError:
        raise
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValueError(f"could not read {path} as PNG: {_short(exc)}") from exc
    return arr


def _read_slices(folder: Path) -> tuple[np.ndarray, tuple | None, dict]:
    files = _slice_files(folder)
    if not files:
        raise ValueError(f"folder {folder} holds no .tif/.tiff/.png slices")

    found: dict = {}  # spacing of the first TIFF slice, if it has any

    def read(p: Path) -> np.ndarray:
        if p.suffix.lower() == ".png":
            img = _check_numeric(_read_png(p), str(p))
            if img.ndim != 2:
                raise ValueError(f"slice {p} is not a 2D image: shape {img.shape}")
            return img
        vol, sp, meta = _read_tiff(p, mmap=False)
        if vol.shape[0] != 1:
            raise ValueError(f"slice {p} is not a 2D image: shape {vol.shape} (a 3D stack inside a slice folder)")
        if "tiff_seen" not in found:
            found["tiff_seen"] = True
            if sp is not None:
                found["spacing"] = sp
                found["notes"] = {k: v for k, v in meta.items() if k.startswith("spacing")}
        return vol[0]

    first = read(files[0])
    out = np.empty((len(files),) + first.shape, dtype=first.dtype)
    out[0] = first
    for i, p in enumerate(files[1:], start=1):
        img = read(p)
        if img.shape != first.shape or img.dtype != first.dtype:
            raise ValueError(
                f"slice {p} has shape {img.shape} and dtype {img.dtype}, but the first slice "
                f"{files[0].name} has shape {first.shape} and dtype {first.dtype}; all slices must match"
            )
        out[i] = img
    meta = {"files": tuple(p.name for p in files), "n_slices": len(files), **found.get("notes", {})}
    return out, found.get("spacing"), meta


# --------------------------------------------------------------------------- HDF5 / zarr


def _import_h5py():
    import h5py

    return h5py


def _open_h5(path: Path, h5py):
    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    except Exception as exc:
        raise ValueError(f"could not read {path} as HDF5: {_short(exc)}") from exc


def _h5_arrays(f, h5py) -> list[tuple[str, tuple[int, ...], str]]:
    found: list[tuple[str, tuple[int, ...], str]] = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            found.append(("/" + name, tuple(int(n) for n in obj.shape), str(obj.dtype)))

    f.visititems(visit)
    return sorted(found)


def _pick_dataset(path: Path, arrays: list[tuple[str, tuple[int, ...], str]], dataset: str | None) -> str:
    names = [a[0] for a in arrays]
    if dataset is not None:
        wanted = "/" + dataset.strip("/")
        if wanted not in names:
            raise ValueError(f"{path} has no dataset {dataset!r}; available: {', '.join(names) or 'none'}")
        return wanted
    images = [a[0] for a in arrays if len(a[1]) >= 2]
    if len(images) == 1:
        return images[0]
    if not images:
        raise ValueError(f"{path} holds no array with 2 or more dimensions; datasets: {', '.join(names) or 'none'}")
    raise ValueError(f"{path} holds {len(images)} image datasets; choose one with dataset=: {', '.join(images)}")


def _as_float_list(value) -> list[float] | None:
    if isinstance(value, (str, bytes, Mapping)):
        return None
    try:
        arr = np.asarray(value, dtype=float).ravel()
    except (TypeError, ValueError):
        return None
    return [float(v) for v in arr]


def _spacing_from_attrs(levels: Iterable[tuple[str, Mapping]]) -> tuple[tuple | None, dict]:
    """Spacing from attributes of a dataset and its parents, nearest level first."""
    for _level, attrs in levels:
        for key in _SPACING_ATTRS:
            if key not in attrs:
                continue
            values = _as_float_list(attrs[key])
            if values is None:
                continue
            if key.endswith("_um"):
                factor = 1.0
            else:
                unit = next((attrs[u] for u in _UNIT_ATTRS if u in attrs), None)
                factor = 1.0 if unit is None else _unit_factor(unit)
                if factor is None:
                    continue
            values = [v * factor for v in values]
            notes = {"spacing_source": f"attrs:{key}"}
            if len(values) == 1:
                values = values * 3
            elif len(values) == 2:
                values = [values[1], values[0], values[1]]
                notes["spacing_z_assumed"] = True
            elif len(values) != 3:
                continue
            sp = _valid_spacing(values)
            if sp is not None:
                return sp, notes
    return None, {}


def _read_hdf5(path: Path, dataset: str | None) -> tuple[np.ndarray, tuple | None, dict, str]:
    h5py = _import_h5py()
    with _open_h5(path, h5py) as f:
        name = _pick_dataset(path, _h5_arrays(f, h5py), dataset)
        obj = f[name]
        levels = []
        node = obj
        while True:
            levels.append((node.name, dict(node.attrs)))
            if node.name == "/":
                break
            node = node.parent
        try:
            data = np.asarray(obj[()])
        except Exception as exc:
            raise ValueError(f"could not read dataset {name} of {path}: {_short(exc)}") from exc
    where = f"{path}::{name}"
    data = _check_numeric(data, where)
    spacing, notes = _spacing_from_attrs(levels)
    return _to_zyx(data, where), spacing, {"dataset": name, **notes}, name


def _open_zarr(path: Path):
    import zarr

    try:
        return zarr.open(os.fspath(path), mode="r")
    except Exception as exc:
        raise ValueError(f"could not read {path} as zarr: {_short(exc)}") from exc


def _zarr_arrays(root) -> list[tuple[str, tuple[int, ...], str]]:
    import zarr

    if isinstance(root, zarr.Array):
        return [("/", tuple(int(n) for n in root.shape), str(root.dtype))]
    found = [
        ("/" + name.strip("/"), tuple(int(n) for n in obj.shape), str(obj.dtype))
        for name, obj in root.members(max_depth=None)
        if isinstance(obj, zarr.Array)
    ]
    return sorted(found)


def _read_zarr(path: Path, dataset: str | None) -> tuple[np.ndarray, tuple | None, dict, str]:
    import zarr

    root = _open_zarr(path)
    if isinstance(root, zarr.Array):
        if dataset is not None and dataset.strip("/"):
            raise ValueError(f"{path} is a single zarr array and has no dataset {dataset!r}")
        name = "/"
    else:
        name = _pick_dataset(path, _zarr_arrays(root), dataset)
    try:
        if name == "/":
            arr, levels = root, [("/", dict(root.attrs))]
        else:
            arr = root[name.strip("/")]
            parts = name.strip("/").split("/")
            levels = [(name, dict(arr.attrs))]
            for i in range(len(parts) - 1, 0, -1):
                group_path = "/".join(parts[:i])
                levels.append(("/" + group_path, dict(root[group_path].attrs)))
            levels.append(("/", dict(root.attrs)))
        data = np.asarray(arr[...])
    except Exception as exc:
        raise ValueError(f"could not read dataset {name} of {path} as zarr: {_short(exc)}") from exc
    where = os.fspath(path) if name == "/" else f"{path}::{name}"
    data = _check_numeric(data, where)
    spacing, notes = _spacing_from_attrs(levels)
    meta = {"dataset": name, **notes}
    return _to_zyx(data, where), spacing, meta, name


# --------------------------------------------------------------------------- npy / raw


def _read_npy(path: Path, *, mmap: bool) -> tuple[np.ndarray, None, dict]:
    try:
        data = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    except Exception as exc:
        raise ValueError(f"could not read {path} as NPY: {_short(exc)}") from exc
    if not isinstance(data, np.ndarray):
        raise ValueError(f"could not read {path} as NPY: it does not hold a single array")
    data = _check_numeric(data, str(path))
    return _to_zyx(data, str(path)), None, {}


def _read_raw(
    path: Path, *, shape, dtype, byte_order: str, offset: int, mmap: bool
) -> tuple[np.ndarray, None, dict]:
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
    if mmap and dt.isnative:
        data = np.memmap(path, dtype=dt, mode="r", offset=offset, shape=dims)
    else:
        data = np.fromfile(path, dtype=dt, count=int(np.prod(dims)), offset=offset).reshape(dims)
    data = _check_numeric(data, str(path))
    return _to_zyx(data, str(path)), None, {"byte_order": byte_order, "offset": offset}


# --------------------------------------------------------------------------- phases


def _phase_code(value: object, context: str) -> int:
    """Code 0/1/2 for a phase name, alias or code."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{context} maps to {value!r}; use {_PHASE_HELP}")
    if isinstance(value, (int, np.integer)):
        if int(value) in (PORE, CBD, NMC):
            return int(value)
        raise ValueError(f"{context} maps to the code {int(value)}; use {_PHASE_HELP}")
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _PHASE_ALIASES:
            return _PHASE_ALIASES[text]
        if re.fullmatch(r"[+-]?\d+", text):
            return _phase_code(int(text), context)
        raise ValueError(f"{context} names an unknown phase {value.strip()!r}; use {_PHASE_HELP}")
    raise TypeError(f"{context} maps to {value!r} of type {type(value).__name__}; use {_PHASE_HELP}")


def parse_phase_map(text: str) -> dict[int, int]:
    """Parse a phase map such as ``"0=pore,128=nmc,255=cbd"``.

    Parameters
    ----------
    text : str
        Entries ``VALUE=PHASE`` separated by commas, semicolons or new lines.
        ``VALUE`` is an integer voxel value of the segmented image; ``PHASE`` is
        a name (case-insensitive): ``pore``, ``cbd`` (aliases ``binder``,
        ``carbon``), ``nmc`` (aliases ``particle``, ``solid``, ``am``), or a code
        ``0``, ``1``, ``2``.  ``:`` may be used instead of ``=``.

    Returns
    -------
    dict[int, int]
        Voxel value -> phase code (0 = pore, 1 = CBD, 2 = NMC).

    Raises
    ------
    ValueError
        If the text is empty, an entry is malformed, a value is not an integer,
        a phase name is unknown, or a voxel value appears twice.
    TypeError
        If ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"phase map must be a string like '0=pore,128=nmc,255=cbd', got {type(text).__name__}")
    entries = [e.strip() for e in re.split(r"[,;\n]", text) if e.strip()]
    if not entries:
        raise ValueError("phase map is empty; give entries like '0=pore,128=nmc,255=cbd'")
    result: dict[int, int] = {}
    seen: dict[int, str] = {}
    for entry in entries:
        parts = re.split(r"[=:]", entry)
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise ValueError(f"phase map entry {entry!r} is not of the form VALUE=PHASE (e.g. '0=pore')")
        key_text, phase_text = parts[0].strip(), parts[1].strip()
        if not re.fullmatch(r"[+-]?\d+", key_text):
            raise ValueError(f"phase map entry {entry!r} has a voxel value {key_text!r} that is not an integer")
        key = int(key_text)
        code = _phase_code(phase_text, f"phase map entry {entry!r}")
        if key in result:
            raise ValueError(f"phase map gives the voxel value {key} twice ({seen[key]!r} and {entry!r})")
        result[key] = code
        seen[key] = entry
    return result


def _normalize_phase_map(phase_map: Mapping | str) -> dict[int | float, int]:
    if isinstance(phase_map, str):
        return parse_phase_map(phase_map)
    if not isinstance(phase_map, Mapping):
        raise TypeError(f"phase_map must be a mapping {{value: phase}} or a string, got {type(phase_map).__name__}")
    if not phase_map:
        raise ValueError("phase map is empty; give at least one {value: phase} entry")
    out: dict[int | float, int] = {}
    for key, value in phase_map.items():
        if isinstance(key, (bool, np.bool_)):
            key = int(key)
        if isinstance(key, (int, np.integer)):
            k: int | float = int(key)
        elif isinstance(key, (float, np.floating)) and math.isfinite(key):
            k = int(key) if float(key).is_integer() else float(key)
        else:
            raise TypeError(f"phase map keys must be voxel values (numbers), got {key!r}")
        out[k] = _phase_code(value, f"phase map entry {key!r}")
    return out


def _format_value(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):g}"
    return str(int(v))


def apply_phase_map(data: np.ndarray, phase_map: Mapping[int, int | str] | str, *, name: str = "volume") -> np.ndarray:
    """Convert a segmented image to the phase codes 0 = pore, 1 = CBD, 2 = NMC.

    Parameters
    ----------
    data : numpy.ndarray, any shape, typically (Z, Y, X)
        Segmented voxel values (integer, boolean or floating point).  Not modified.
    phase_map : mapping or str
        Voxel value -> phase, the phase given as a code 0/1/2 or a name accepted
        by :func:`parse_phase_map`; a string is parsed with :func:`parse_phase_map`.
    name : str
        How to call ``data`` in error messages (e.g. the file name).

    Returns
    -------
    numpy.ndarray of uint8, same shape as ``data``
        Phase codes.

    Raises
    ------
    ValueError
        If a voxel value is not in the map (the message names up to 5 such
        values, most frequent first, with their voxel counts), or the map is
        empty or invalid.
    TypeError
        If ``data`` is not a numeric numpy array or the map has the wrong type.

    Notes
    -----
    Vectorised: a lookup table for 8/16-bit integer and boolean data,
    :func:`numpy.searchsorted` on the sorted map keys in slabs along the first
    axis otherwise (bounded temporary memory).
    """
    if not isinstance(data, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(data).__name__}")
    if not (data.dtype == bool or data.dtype.kind in "iuf"):
        raise TypeError(f"{name} must be numeric, got dtype {data.dtype}")
    mapping = _normalize_phase_map(phase_map)
    work = data.view(np.uint8) if data.dtype == bool else data
    out = np.empty(work.shape, dtype=np.uint8)
    unmapped: dict = {}

    def note_unmapped(values: np.ndarray) -> None:
        vals, counts = np.unique(values, return_counts=True)
        for v, c in zip(vals.tolist(), counts.tolist()):
            key = "nan" if isinstance(v, float) and math.isnan(v) else v
            unmapped[key] = unmapped.get(key, 0) + int(c)

    if work.dtype.kind in "iu" and work.dtype.itemsize <= 2:
        bits = 8 * work.dtype.itemsize
        info = np.iinfo(work.dtype)
        lut = np.full(2**bits, _UNMAPPED, dtype=np.uint8)
        for k, code in mapping.items():
            if isinstance(k, int) and info.min <= k <= info.max:
                lut[k % 2**bits] = code  # two's complement: index of the unsigned view
        unsigned = work.view(work.dtype.str.replace("i", "u"))
        out = lut[unsigned]
        bad = out == _UNMAPPED
        if bad.any():
            note_unmapped(work[bad])
    else:
        if work.dtype.kind in "iu":
            info = np.iinfo(work.dtype)
            items = [(k, c) for k, c in mapping.items() if isinstance(k, int) and info.min <= k <= info.max]
        else:
            items = list(mapping.items())
        items.sort(key=lambda kc: kc[0])
        native = work.dtype.newbyteorder("=")
        keys = np.array([k for k, _ in items], dtype=native)
        codes = np.array([c for _, c in items], dtype=np.uint8)
        if work.ndim == 0:
            slabs = [(Ellipsis, work)]
        else:
            per_row = max(1, int(np.prod(work.shape[1:], dtype=np.int64)))
            step = max(1, (1 << 22) // per_row)
            slabs = [(slice(i, i + step), work[i : i + step]) for i in range(0, work.shape[0], step)]
        for index, slab in slabs:
            slab = np.asarray(slab)
            if keys.size == 0:
                hit = np.zeros(slab.shape, dtype=bool)
                out[index] = _UNMAPPED
            else:
                pos = np.searchsorted(keys, slab)
                np.minimum(pos, keys.size - 1, out=pos)
                hit = keys[pos] == slab
                out[index] = np.where(hit, codes[pos], _UNMAPPED)
            if not hit.all():
                note_unmapped(slab[~hit])
    if unmapped:
        ranked = sorted(unmapped.items(), key=lambda kv: (-kv[1], str(kv[0])))
        shown = ", ".join(
            f"{v if v == 'nan' else _format_value(v)} ({c:,} voxel{'s' if c != 1 else ''})" for v, c in ranked[:5]
        )
        more = f" and {len(ranked) - 5} more" if len(ranked) > 5 else ""
        example = ranked[0][0]
        raise ValueError(
            f"{name} holds {len(ranked)} voxel value{'s' if len(ranked) != 1 else ''} that the phase map "
            f"does not cover: {shown}{more}; add them to the phase map "
            f"(e.g. '{example if example == 'nan' else _format_value(example)}=pore')"
        )
    return out


def load_phases(path: str | os.PathLike, phase_map: Mapping[int, int | str] | str, **load_kwargs) -> Volume:
    """Load a pre-segmented volume and convert it to phase codes.

    Parameters
    ----------
    path : str or path-like
        Anything :func:`load_volume` reads.
    phase_map : mapping or str
        Voxel value -> phase (code 0/1/2 or name), or text for
        :func:`parse_phase_map`, e.g. ``"0=pore,128=nmc,255=cbd"``.
    **load_kwargs
        Keyword options of :func:`load_volume` (``spacing``, ``fmt``, ``dataset``...).

    Returns
    -------
    Volume
        ``data`` is ``uint8`` of shape (Z, Y, X) holding only 0 = pore, 1 = CBD,
        2 = NMC; ``metadata["phase_map"]`` holds the map used and
        ``metadata["source_dtype"]`` the dtype of the file's voxels.

    Raises
    ------
    ValueError
        As :func:`load_volume`, or if a voxel value of the file is not in
        ``phase_map`` (the message names the file, the values and their counts).
    """
    mapping = _normalize_phase_map(phase_map)  # fail fast, before reading a large file
    vol = load_volume(path, **load_kwargs)
    codes = apply_phase_map(vol.data, mapping, name=f"phase volume {vol.source}")
    meta = dict(vol.metadata)
    meta.update(phase_map=MappingProxyType(dict(mapping)), source_dtype=str(vol.data.dtype), mmap=False)
    return replace(vol, data=codes, metadata=meta)


# --------------------------------------------------------------------------- save


def _umask() -> int:
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_tiff(path: str | os.PathLike, data: np.ndarray, spacing: float | Sequence[float], *, compress: bool = True) -> None:
    """Write a volume as a TIFF that keeps its voxel spacing.

    uint8, uint16, int16 and float32 (and bool, stored as uint8) are written as an
    ImageJ hyperstack (axes ZYX, ``unit=um``, ``spacing=dz``, X/YResolution =
    1/dx, 1/dy pixels per µm) that Fiji opens with the right calibration.  Other
    dtypes (int32, int64 label volumes, float64, ...) cannot be stored by ImageJ
    and are written as a plain TIFF whose description is JSON holding
    ``{"spacing_um": [dz, dy, dx]}`` plus resolution tags in pixels per cm.
    :func:`load_volume` reads the spacing back from both.

    Parameters
    ----------
    path : str or path-like
        Destination ``.tif``/``.tiff`` file; its folder must exist.  An existing
        file is replaced.
    data : numpy.ndarray, shape (Z, Y, X) or (Y, X)
        Numeric or boolean voxels.
    spacing : float or sequence of 3 float
        Voxel size in µm, ``(z, y, x)``.
    compress : bool
        zlib (deflate) compression.  Compressed files are read into memory
        rather than memory-mapped.

    Raises
    ------
    TypeError
        If ``data`` is not a numeric numpy array.
    ValueError
        If ``data`` is not 2D/3D or empty, ``spacing`` is invalid, or the suffix is
        not ``.tif``/``.tiff``.
    FileNotFoundError
        If the destination folder does not exist.
    OSError
        If writing fails; no partial file is left and an existing file is kept.

    Notes
    -----
    The file is written to a temporary file in the same folder and moved into
    place with :func:`os.replace`, so readers never see a half-written file.
    """
    if not isinstance(data, np.ndarray):
        raise TypeError(f"data must be a numpy array, got {type(data).__name__}")
    if not (data.dtype == bool or data.dtype.kind in "iuf"):
        raise TypeError(f"data must be numeric, got dtype {data.dtype}")
    if data.ndim not in (2, 3):
        raise ValueError(f"data must be 2D (y, x) or 3D (z, y, x), got shape {data.shape}")
    if data.size == 0:
        raise ValueError(f"data is empty: shape {data.shape}")
    dz, dy, dx = normalize_spacing(spacing)
    dest = Path(os.path.expanduser(os.fspath(path)))
    if dest.suffix.lower() not in _TIFF_SUFFIXES:
        raise ValueError(f"cannot save {dest} as TIFF: the file name must end in .tif or .tiff")
    folder = dest.parent if str(dest.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder} (needed to save {dest.name})")

    arr = data.view(np.uint8) if data.dtype == bool else data
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    common = {"photometric": "minisblack", "compression": "zlib" if compress else None}
    if arr.dtype.char in "BHhf":
        kwargs = dict(
            imagej=True,
            resolution=(1.0 / dx, 1.0 / dy),
            metadata={"axes": "ZYX", "spacing": dz, "unit": "um"},
            **common,
        )
    else:
        kwargs = dict(
            resolution=(1e4 / dx, 1e4 / dy),
            resolutionunit="CENTIMETER",
            metadata={"axes": "ZYX", "spacing_um": [dz, dy, dx]},
            **common,
        )

    if dest.exists():
        mode = dest.stat().st_mode & 0o7777
    else:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        try:
            tifffile.imwrite(tmp, arr, **kwargs)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, dest)
        except OSError as exc:
            raise OSError(f"could not write {dest}: {_short(exc)}") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
