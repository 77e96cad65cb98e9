"""Shared by the readers of :mod:`core.io`: the :class:`Volume` and :class:`Loaded` records, format
constants, unit conversion, and the checks that make every reader return numeric ``(Z, Y, X)`` data."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from .._validate import normalize_spacing

#: Format names accepted by ``load_volume(fmt=...)``.
FORMATS: tuple[str, ...] = ("tiff", "slices", "hdf5", "zarr", "npy", "raw", "metaimage", "amira", "edf", "txm", "image",
                            "dicom", "nifti", "mrc")

_TIFF_SUFFIXES = (".tif", ".tiff")
_SLICE_SUFFIXES = (".tif", ".tiff", ".png", ".bmp", ".edf", ".dcm")
#: The slices a slice folder may hold, as messages name them.
SLICE_KINDS = "/".join(_SLICE_SUFFIXES)
_IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg")
_HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs")
_RAW_SUFFIXES = (".raw", ".bin", ".vol")
_METAIMAGE_SUFFIXES = (".mhd", ".mha")
_AMIRA_SUFFIXES = (".am",)
_EDF_SUFFIXES = (".edf",)
_TXM_SUFFIXES = (".txm",)
_DICOM_SUFFIXES = (".dcm",)
#: NIfTI names end so (told by the whole name: ``.nii.gz``'s suffix is ``.gz``).
_NIFTI_ENDINGS = (".nii", ".nii.gz")
#: MRC suffixes (IMOD's ``.rec`` reconstructions and ``.st`` stacks), and the names MRC files end so (compressed
#: ones told by the whole name).
_MRC_SUFFIXES = (".mrc", ".mrcs", ".rec", ".st")
_MRC_ENDINGS = _MRC_SUFFIXES + (".mrc.gz", ".mrc.bz2")
#: Names of compressed volumes whose format is told by the part before the compression's suffix.
COMPRESSED_ENDINGS = tuple(e for e in _NIFTI_ENDINGS + _MRC_ENDINGS if e.count(".") == 2)
_XRADIA_PROJECTION_SUFFIXES = (".txrm", ".xrm")
#: How the names of every file a reader reads end (a file picker offers these; DICOM files saved without a suffix
#: are told by their content, :func:`_suffixless_dicom`).
VOLUME_FILE_ENDINGS = (_TIFF_SUFFIXES + (".npy",) + _HDF5_SUFFIXES + _RAW_SUFFIXES + _METAIMAGE_SUFFIXES
                       + _AMIRA_SUFFIXES + _EDF_SUFFIXES + _TXM_SUFFIXES + _DICOM_SUFFIXES + _NIFTI_ENDINGS
                       + _MRC_ENDINGS + _IMAGE_SUFFIXES)
_ZARR_MARKERS = ("zarr.json", ".zarray", ".zgroup")

_SUPPORTED_TEXT = (
    "TIFF (.tif/.tiff), a folder of .tif/.png/.bmp/.edf/.dcm slices, HDF5 (.h5/.hdf5/.hdf/.nxs), zarr, .npy, "
    "raw (.raw/.bin/.vol), MetaImage (.mhd/.mha), Avizo .am, EDF, Zeiss .txm, DICOM .dcm, NIfTI, MRC, PNG/BMP/JPEG"
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
    "pm": 1e-6,  # a Zeiss SEM's pixel size at high magnification
    "picometer": 1e-6,
    "picometre": 1e-6,
}

# TIFF ResolutionUnit tag values (CENTIMETER, MILLIMETER, MICROMETER) -> µm per unit.
# INCH (2) is ignored for the same reason as above; NONE (1) carries no unit.
_RESUNIT_TO_UM = {3: 1e4, 4: 1e3, 5: 1.0}

# Attribute names holding a spacing in HDF5 / zarr, in order of preference.
_SPACING_ATTRS = ("element_size_um", "voxel_size_um", "spacing", "pixel_size")
_UNIT_ATTRS = ("spacing_unit", "pixel_size_unit", "unit", "units")


class InputFileError(ValueError):
    """An input file or folder that cannot be read as what it claims to be.

    The message is one sentence naming the file (by its name) and what is wrong;
    readers raise it for corrupt, truncated or inconsistent files and for paths
    that are not regular files (FIFOs, devices, sockets).
    """




# --------------------------------------------------------------------------- records


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


@dataclass(frozen=True, eq=False)
class Loaded:
    """What every reader returns.

    Attributes
    ----------
    data : (Z, Y, X) ndarray
        Numeric, native byte order; may be a read-only memory map.
    spacing : (3,) float, µm, or None
        The voxel size the file states; None when it states none.
    meta : Mapping
        Notes of the reader (``"spacing_source"``, ``"dataset"``, ``"files"``...).
    source : str
        The path read; ``"file.h5::/group/ds"`` for a dataset inside a file.
    """

    data: np.ndarray
    spacing: tuple[float, float, float] | None
    meta: Mapping[str, object]
    source: str


@dataclass(frozen=True)
class ReadOptions:
    """Options of :func:`core.io.load_volume` that readers use (each reader reads the ones it accepts)."""

    dataset: str | None = None
    shape: Sequence[int] | None = None
    dtype: object = None
    byte_order: str = "<"
    offset: int = 0
    mmap: bool = True


# --------------------------------------------------------------------------- helpers


def _natural_key(name: str) -> tuple:
    """Sort key so that ``slice2`` comes before ``slice10`` (case-insensitive)."""
    parts = re.split(r"(\d+)", name.lower())
    # re.split with a capture group alternates text (even) and digits (odd), so
    # the same position always holds the same type.
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), name


#: Every suffix a reader knows: a file with none of them may be a DICOM file saved without ``.dcm`` (sniffed).
_KNOWN_SUFFIXES = frozenset(_SLICE_SUFFIXES + _TIFF_SUFFIXES + _IMAGE_SUFFIXES + _HDF5_SUFFIXES + _RAW_SUFFIXES
                            + _METAIMAGE_SUFFIXES + _AMIRA_SUFFIXES + _EDF_SUFFIXES + _TXM_SUFFIXES + _DICOM_SUFFIXES
                            + _XRADIA_PROJECTION_SUFFIXES
                            + _NIFTI_ENDINGS[:1] + _MRC_SUFFIXES
                            + (".npy", ".zarr", ".vgi", ".info", ".log", ".txt", ".gz", ".bz2"))


def _sniffed_dicom(p: Path) -> bool:
    """Whether ``p`` is a DICOM file by its content (``DICM`` after the 128-byte preamble, as Part 10 files are
    written): CT software and PACS exports save slices without a suffix (``IM0001``) or named by their UID
    (``1.2.840....``, whose last part reads as a suffix).  ``DICOMDIR`` (the index of a DICOM medium) is not one."""
    if p.name.upper() == "DICOMDIR":
        return False
    try:
        with open(p, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def _suffixless_dicom(p: Path) -> bool:
    """A regular file with no suffix a reader knows that holds DICOM (:func:`_sniffed_dicom`)."""
    return p.suffix.lower() not in _KNOWN_SUFFIXES and p.is_file() and _sniffed_dicom(p)


def _is_dicom(p: Path) -> bool:
    """A ``.dcm`` file, or a DICOM file saved without it (:func:`_suffixless_dicom`)."""
    return p.suffix.lower() in _DICOM_SUFFIXES or _suffixless_dicom(p)


def _holds_slices(folder: Path) -> bool:
    """Whether :func:`_slice_files` finds any in ``folder``: at the first slice file, or the first DICOM file without
    a suffix (the data-folder browser asks it of every folder it lists: no folder is read whole for it)."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    return (any(p.suffix.lower() in _SLICE_SUFFIXES and p.is_file() for p in entries)
            or any(_suffixless_dicom(p) for p in entries))


def _slice_files(folder: Path) -> list[Path]:
    """Visible ``.tif``/``.tiff``/``.png``/``.bmp``/``.edf``/``.dcm`` files of ``folder`` in natural order, else
    (none of those) its DICOM files saved without the ``.dcm`` suffix (:func:`_sniffed_dicom`); a DICOM series in the
    order of its slices in space, :func:`core.io.dicom.series_order`, which reads every slice's header (whether a
    folder holds slices: :func:`_holds_slices`)."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file()]
    files = [p for p in entries if p.suffix.lower() in _SLICE_SUFFIXES]
    dicom = bool(files) and all(p.suffix.lower() in _DICOM_SUFFIXES for p in files)
    if not files:  # sniffed once: each file is opened for its first 132 bytes
        files = [p for p in entries if _suffixless_dicom(p)]
        dicom = True
    files = sorted(files, key=lambda p: _natural_key(p.name))
    if files and dicom:
        from .dicom import series_order

        files = series_order(files)
    return files


def _read_dtype(dtype) -> str:
    """The name of the type a slice of ``dtype`` is read as (:func:`_check_numeric`'s rule: bool as uint8, native
    byte order); a type it refuses keeps its own name."""
    try:
        return str(_check_numeric(np.empty(0, np.dtype(dtype)), "").dtype)
    except InputFileError:
        return str(np.dtype(dtype))


def _plane_header(p: Path) -> tuple[tuple[int, ...], str] | None:
    """(shape, dtype name) of a slice file from its header (no pixel read); None where it cannot be read."""
    try:
        if p.suffix.lower() in _IMAGE_SUFFIXES:
            from .image import image_header

            return image_header(p)
        if _is_dicom(p):
            from .dicom import dicom_header

            return dicom_header(p)
        if p.suffix.lower() == ".edf":
            from .edf import read_edf_header

            layout = read_edf_header(p)
            shape = layout.shape[1:] if layout.shape[0] == 1 else layout.shape
            return tuple(shape), _read_dtype(layout.dtype)
        import tifffile

        with tifffile.TiffFile(p) as tif:
            series = tif.series[0]
            shape = tuple(int(n) for n in series.shape)
            while len(shape) > 2 and shape[0] == 1:
                shape = shape[1:]
            return shape, _read_dtype(series.dtype)
    except (OSError, ValueError, TypeError, IndexError, SyntaxError, EOFError, MemoryError):
        return None  # a header that cannot be read is a kind of its own here, not an error


def mismatched_slices_message(folder: Path, files: list[Path], *, most: int = 3) -> str:
    """One sentence for a slice folder whose slices are not all alike: its kinds of slice (size and type), the
    largest first, with a few names of each, and what to do (read only in this error's path: every file's header).
    """
    kinds: dict = {}
    for p in files:
        kinds.setdefault(_plane_header(p), []).append(p.name)
    order = sorted(kinds.items(), key=lambda kv: -len(kv[1]))

    def said(key, names) -> str:
        what = "unreadable" if key is None else f"{key[1]} of {'×'.join(str(n) for n in key[0])}"
        shown = ", ".join(names[:2]) + (", …" if len(names) > 2 else "")
        return f"{len(names)} {what} ({shown})"

    parts = [said(k, v) for k, v in order[:most]]
    if len(order) > most:
        parts.append(f"{len(order) - most} more kind{'s' if len(order) - most > 1 else ''}")
    listed = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    return (f"slice folder {_name(folder)} holds slices of {len(order)} kinds, not one: {listed}; a folder is read "
            "as one volume only when all its slices have the same size and type: open the folder and pick one "
            "file, or keep one kind of slice in it")


def _is_zarr_dir(path: Path) -> bool:
    return path.suffix.lower() == ".zarr" or any((path / m).exists() for m in _ZARR_MARKERS)


def _short(exc: BaseException, limit: int = 160, path: str | os.PathLike | None = None) -> str:
    """First line of a library's message, shortened; the folders of ``path`` are cut from it.

    Libraries quote the full path they were given (``cannot identify image file '/srv/data/x/s2.png'``);
    the message keeps only the file name, as ours do.
    """
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if path is not None:
        p = Path(path)
        for folder in {os.fspath(p.parent), os.fspath(p.resolve().parent)}:
            if folder not in ("", ".", os.sep):
                text = text.replace(folder.rstrip(os.sep) + os.sep, "")
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: Below this many declared bytes a MemoryError while reading means a corrupt block, not a big image.
_SMALL_IMAGE_BYTES = 1 << 26  # 64 MiB


def _memory_error(name: str, fmt: str, exc: MemoryError, declared_bytes: int | None) -> Exception:
    """The error to raise for a MemoryError while reading ``name``.

    A decoder handed a corrupt block size asks for absurd memory (imagecodecs, numcodecs): when the image
    itself is small that is a corrupt file (:class:`InputFileError`); otherwise a real shortage of memory.
    """
    if declared_bytes is not None and declared_bytes < _SMALL_IMAGE_BYTES:
        return InputFileError(f"could not read {name} as {fmt}: a compressed block is corrupt")
    size = f" ({declared_bytes / 2**30:.1f} GiB)" if declared_bytes else ""
    return MemoryError(f"not enough memory to read {name}{size}")


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
        raise InputFileError(f"{where} holds data of dtype {data.dtype}; expected integer or floating-point voxels")
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
                raise InputFileError(f"{where} has {size} channels; convert it to greyscale first")
        keep = [i for i, (a, n) in enumerate(zip(axes, shape)) if n > 1 or a in "YX"]
        if len(keep) < 2 and len(shape) >= 2:  # no Y/X letters (odd file): keep the last two axes
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
        raise InputFileError(
            f"{where} has {len(kept)} dimension{'' if len(kept) == 1 else 's'} (shape {shape}{extra}); "
            "expected a 2D image or a 3D (z, y, x) volume"
        )
    if 0 in kept:
        raise InputFileError(f"{where} is empty: shape {shape}")
    return kept  # type: ignore[return-value]


def _to_zyx(data: np.ndarray, where: str, axes: str | None = None) -> np.ndarray:
    """``data`` reshaped (a view, no copy) to ``(Z, Y, X)``; see :func:`_zyx_shape`."""
    target = _zyx_shape(data.shape, where, axes)
    return data if data.shape == target else data.reshape(target)


def read_planes(path: str | os.PathLike, planes, dtype, plane_shape: tuple[int, int]) -> np.ndarray:
    """z planes of ``dtype`` read from the byte runs of a file that hold them.

    Parameters
    ----------
    path : path-like
    planes : sequence of sequence of (int, int)
        For each plane to read, the (byte offset, byte count) runs of the file holding it, in order.
    dtype : numpy dtype
        As stored (any byte order).
    plane_shape : (Y, X)

    Returns
    -------
    (len(planes), Y, X) ndarray, native byte order
    """
    dtype = np.dtype(dtype)
    out = np.empty((len(planes), *plane_shape), dtype.newbyteorder("="))
    count = int(np.prod(plane_shape))
    with open(path, "rb") as f:
        for z, runs in enumerate(planes):
            buf = bytearray()
            for off, n in runs:
                f.seek(off)
                buf += f.read(n)
            out[z] = np.frombuffer(bytes(buf), dtype, count=count).reshape(plane_shape)
    return out


def _require_exists(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")


def _name(path: str | os.PathLike) -> str:
    """How messages name a file: its name, not its (possibly long, server-side) absolute path.

    ``"/data/scan.h5::/entry/data"`` (a dataset inside a file, :attr:`Volume.source`) -> ``"scan.h5::/entry/data"``.
    """
    text = os.fspath(path)
    file_part, sep, inner = text.partition("::")
    p = Path(file_part)
    return (p.name or file_part) + (sep + inner if sep else "")


_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _require_regular(path: Path, *, allow_dir: bool = True) -> None:
    """Refuse anything but a regular file (or a folder when ``allow_dir``) before it is opened.

    Opening a FIFO blocks until a writer appears and a device can stream forever, so both are
    refused from :func:`os.stat` alone (symbolic links are followed); an unreadable file is refused too.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    except OSError as exc:
        raise InputFileError(f"cannot access {_name(path)}: {exc.strerror or type(exc).__name__}") from None
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        if not allow_dir:
            raise InputFileError(f"{_name(path)} is a folder, not a file")
        return
    if not stat.S_ISREG(mode):
        kind = next((text for test, text in _SPECIAL_KINDS if test(mode)), "not a regular file")
        raise InputFileError(f"{_name(path)} is {kind}, not a regular file; give a volume file or folder")
    if not os.access(path, os.R_OK):
        raise InputFileError(f"cannot read {_name(path)}: permission denied")


def _valid_spacing(values: Sequence[float]) -> tuple[float, float, float] | None:
    """Spacing found in a file, or ``None`` if it is unusable (0, negative, NaN)."""
    try:
        return normalize_spacing(tuple(float(v) for v in values))
    except (TypeError, ValueError):
        return None


def normalize_crop(crop) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None:
    """A crop (region of interest) as 3 ``(start, stop)`` pairs of whole voxels along z, y, x; None for none.

    Raises
    ------
    TypeError
        Not 3 pairs of whole numbers.
    ValueError
        A pair whose start is negative or not below its stop.
    """
    if crop is None:
        return None
    try:
        if isinstance(crop, (str, bytes)) or len(crop) != 3:
            raise TypeError
        pairs = []
        for pair in crop:
            if isinstance(pair, (str, bytes)) or len(pair) != 2:
                raise TypeError
            a, b = pair
            if any(isinstance(v, bool) or not float(v).is_integer() for v in (a, b)):
                raise TypeError
            pairs.append((int(a), int(b)))
    except (TypeError, ValueError):
        raise TypeError(f"crop must be 3 (start, stop) pairs of whole voxels along z, y, x, got {crop!r}") from None
    for axis, (a, b) in zip("zyx", pairs):
        if a < 0 or b <= a:
            raise ValueError(f"crop along {axis} must run from a start >= 0 to a larger stop, got {a}:{b}")
    return tuple(pairs)  # type: ignore[return-value]


def check_crop(crop, shape: Sequence[int], name: str) -> None:
    """Refuse (one sentence, :class:`InputFileError`) a :func:`normalize_crop`-ed crop that reaches beyond a
    ``(Z, Y, X)`` volume named ``name``."""
    for axis, (a, b), n in zip("zyx", crop, shape):
        if b > int(n):
            raise InputFileError(f"the crop {a}:{b} along {axis} reaches beyond {name}, which has {int(n)} voxels "
                                 f"along {axis} (0:{int(n)})")


def normalize_align(align) -> tuple[tuple[int, int], ...] | None:
    """An alignment (the offsets of the slices of a stack that was not aligned) as one ``(dy, dx)`` pair of whole
    pixels a z plane; None for none.

    ``align[z]`` is where plane ``z``'s content lies against a common frame (plane 0's, say): the structure at
    ``(y, x)`` of that frame is at ``(y + dy, x + dx)`` of plane ``z`` (what
    :func:`core.phases.alignment.slice_shifts` measures).  Reading with it (:func:`core.io.load_volume`'s
    ``align``) shifts every plane back and keeps the region all planes share.

    Raises
    ------
    TypeError
        Not pairs of whole numbers.
    ValueError
        No pair.
    """
    if align is None:
        return None
    try:
        if isinstance(align, (str, bytes, Mapping)):
            raise TypeError
        pairs = []
        for pair in align:
            if isinstance(pair, (str, bytes)) or len(pair) != 2:
                raise TypeError
            if any(isinstance(v, bool) or not float(v).is_integer() for v in pair):
                raise TypeError
            pairs.append((int(pair[0]), int(pair[1])))
    except (TypeError, ValueError, OverflowError):
        raise TypeError("align must be one (dy, dx) pair of whole pixels a z plane, got "
                        f"{_shown(align)}") from None
    if not pairs:
        raise ValueError("align must hold one (dy, dx) pair a z plane, got none")
    return tuple(pairs)


def _shown(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def aligned_shape(align, shape: Sequence[int]) -> tuple[int, int, int]:
    """The shape of a ``(Z, Y, X)`` volume read with a :func:`normalize_align`-ed ``align``: the region all its
    planes share (Y and X less the spread of the offsets)."""
    a = np.asarray(align, dtype=np.int64).reshape(-1, 2)
    span = a.max(axis=0) - a.min(axis=0)
    return int(shape[0]), int(shape[1]) - int(span[0]), int(shape[2]) - int(span[1])


def aligned_info(align) -> dict:
    """What is said of an alignment (:func:`normalize_align`): the planes, the largest offset from one plane to the
    next and the offsets' spread over the stack (pixels, y and x), and how many steps between neighbouring planes
    move at all (a volume's ``metadata["align"]`` holds it)."""
    a = np.asarray(align, dtype=np.int64).reshape(-1, 2)
    steps = np.abs(np.diff(a, axis=0)) if len(a) > 1 else np.zeros((1, 2), np.int64)
    return {"planes": int(len(a)), "largest_step_px": [int(v) for v in steps.max(axis=0)],
            "span_px": [int(v) for v in a.max(axis=0) - a.min(axis=0)],
            "steps_moved": int(np.count_nonzero(steps.any(axis=1))) if len(a) > 1 else 0}


def check_align(align, shape: Sequence[int], name: str) -> None:
    """Refuse (one sentence, :class:`InputFileError`) a :func:`normalize_align`-ed alignment that does not fit a
    ``(Z, Y, X)`` volume named ``name`` (as read, after any crop): not one pair a plane, or offsets spreading
    wider than the planes (no region left that all share)."""
    nz = int(shape[0])
    if len(align) != nz:
        raise InputFileError(f"the alignment holds {len(align)} slice offsets but {name} has {nz} z planes as read: "
                             f"align the slices again (after any change of the crop along z)")
    _, ly, lx = aligned_shape(align, shape)
    if ly < 1 or lx < 1:
        raise InputFileError(f"the alignment's slice offsets spread over more than the {int(shape[1])} × "
                             f"{int(shape[2])} pixels of {name}'s planes, so no region is common to all of them")
