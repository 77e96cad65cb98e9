"""Opening a volume: the format guessed from the path, the reader looked up in the registry, the spacing chosen."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._validate import check_choice, normalize_spacing
from . import amira, dicom, edf, folder, hdf5, image, mrc, nifti, raw, tiff, txm, zarr  # noqa: F401  (importing a format module registers its reader)
from ._common import (
    _AMIRA_SUFFIXES, _MRC_ENDINGS, _NIFTI_ENDINGS, _EDF_SUFFIXES, _HDF5_SUFFIXES, _IMAGE_SUFFIXES, SLICE_KINDS, _TXM_SUFFIXES, _DICOM_SUFFIXES, _XRADIA_PROJECTION_SUFFIXES, _METAIMAGE_SUFFIXES, _RAW_SUFFIXES, _SUPPORTED_TEXT, _TIFF_SUFFIXES, FORMATS, InputFileError,
    Loaded, ReadOptions, Volume, _holds_slices, _is_zarr_dir, _name, _suffixless_dicom, _require_exists, _require_regular, _short, _slice_files,
    normalize_align,
    normalize_crop,
)
from ._registry import READERS

__all__ = ["detect_format", "list_datasets", "load_volume"]

_RAW_ONLY = ("shape", "dtype", "byte_order", "offset")


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
        a folder holding ``.tif``/``.tiff``/``.png``/``.bmp``/``.edf``/``.dcm`` files -> ``"slices"``; a
        ``.zarr`` path or a folder holding a zarr store -> ``"zarr"``;
        ``.h5``/``.hdf5``/``.hdf``/``.nxs`` -> ``"hdf5"``; ``.npy`` -> ``"npy"``;
        ``.raw``/``.bin``/``.vol`` -> ``"raw"``; ``.mhd``/``.mha`` -> ``"metaimage"``; ``.am`` -> ``"amira"``; ``.edf`` -> ``"edf"``;
        ``.txm`` -> ``"txm"``; ``.dcm`` -> ``"dicom"`` (a slice or a multi-frame file; a folder of them: ``"slices"``); ``.png``/``.bmp``/``.jpg``/``.jpeg`` (one 2D image) -> ``"image"``.  Suffixes are case-insensitive.

    Raises
    ------
    ValueError
        If the suffix is unknown, or a folder is neither a zarr store nor holds slices; a Zeiss Xradia
        projection file (``.txrm``, ``.xrm``), which holds radiographs, not a volume, in a sentence of its own; so is
        the header of a raw volume (``.vgi``, ``.vol.info``), saying to open the volume beside it.
    """
    p = Path(os.path.expanduser(os.fspath(path)))
    if p.is_dir():
        if _is_zarr_dir(p):
            return "zarr"
        if _holds_slices(p):
            return "slices"
        raise InputFileError(f"folder {_name(p)} holds no {SLICE_KINDS} slices and is not a zarr store")
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
    if suffix in _METAIMAGE_SUFFIXES:
        return "metaimage"
    if suffix in _AMIRA_SUFFIXES:
        return "amira"
    if suffix in _EDF_SUFFIXES:
        return "edf"
    if suffix in _TXM_SUFFIXES:
        return "txm"
    if suffix in _DICOM_SUFFIXES:
        return "dicom"
    if p.name.lower().endswith(_NIFTI_ENDINGS):
        return "nifti"
    if p.name.lower().endswith(_MRC_ENDINGS):
        return "mrc"
    if suffix in _IMAGE_SUFFIXES:
        return "image"
    if suffix in _XRADIA_PROJECTION_SUFFIXES:
        raise InputFileError(
            f"{_name(p)} is a Zeiss Xradia {suffix} file: the projections (radiographs) of a scan, not a volume; "
            "open the reconstructed .txm (or the reconstruction exported as TIFF)")
    if suffix in _HEADER_SUFFIXES:
        raise InputFileError(f"{_name(p)} is {_HEADER_SUFFIXES[suffix]}, not a volume: open the volume file beside "
                             "it (read with this header)")
    if _suffixless_dicom(p):
        return "dicom"  # a DICOM file saved without .dcm (IM0001, or named by its UID)
    raise InputFileError(
        f"unknown file format for {_name(p)} (suffix {suffix or 'none'!r}); supported are {_SUPPORTED_TEXT}")


#: Headers that describe a raw volume file beside them (:func:`core.io.rawheader.header_beside`), picked instead of
#: it: said so in a sentence of their own.
_HEADER_SUFFIXES = {".vgi": "the VGStudio / Nikon CT Pro header of a raw volume (X.vgi beside X.vol)",
                    ".info": "the header of a raw volume (ESRF's X.vol.info beside X.vol)"}


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
    """List every array in an HDF5 file or a zarr store, or the data items of an Avizo / Amira ``.am`` lattice.

    Parameters
    ----------
    path : str or path-like
        HDF5 file, zarr store or ``.am`` file.

    Returns
    -------
    list of (name, shape, dtype)
        One entry per array, recursing into groups, sorted by name.  ``name``
        starts with ``/`` (e.g. ``"/entry/data/data"``) and can be passed as
        ``dataset`` to :func:`load_volume`; a zarr store that is a single array
        is listed as ``"/"``.  An ``.am`` file's items (``Labels``, ``Data``...) are listed the one read by
        default first, then in the header's order (:func:`core.io.amira.list_items`).  ``dtype`` is the numpy
        dtype name, e.g. ``"uint16"``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If ``path`` is not an HDF5 file, zarr store or ``.am`` file, or cannot be read.
    """
    p = Path(os.path.expanduser(os.fspath(path)))
    _require_exists(p)
    _require_regular(p)
    fmt = detect_format(p)
    if fmt == "hdf5":
        h5py = hdf5._import_h5py()
        with hdf5._open_h5(p, h5py) as f:
            try:
                return hdf5._h5_arrays(f, h5py)
            except hdf5._H5_ERRORS as exc:
                raise InputFileError(f"could not list the datasets of {_name(p)}: {_short(exc, path=path)}") from None
    if fmt == "zarr":
        root = zarr._open_zarr(p)
        try:
            return zarr._zarr_arrays(root)
        except zarr._ZARR_ERRORS as exc:
            raise InputFileError(f"could not list the arrays of {_name(p)}: {_short(exc, path=path)}") from None
    if fmt == "amira":
        return amira.list_items(p)
    raise InputFileError(f"cannot list datasets of {_name(p)}: it is a {fmt} file, not an HDF5 file, zarr store or "
                         "Avizo / Amira file")


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
    crop=None,
    align=None,
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
        Raw only: array shape ``(z, y, x)`` (or ``(y, x)``).  Required with ``dtype``, unless both are left out
        and a header beside the file states the layout (:func:`core.io.rawheader.header_beside`: ESRF
        ``X.vol.info``, MetaImage ``X.mhd``, VGStudio ``X.vgi``; its voxel size is then the file's).
    dtype : numpy dtype or str, optional
        Raw only: voxel type, e.g. ``"uint16"`` (see ``shape``).
    byte_order : {"<", ">"}
        Raw only: little (``"<"``, default) or big (``">"``) endian.
    offset : int
        Raw only: number of header bytes to skip.
    mmap : bool
        Memory-map the data read-only where the format allows (uncompressed
        contiguous TIFF, ``.npy``, raw) instead of reading it into memory.
        Data stored in the non-native byte order (e.g. big-endian ImageJ TIFFs)
        is always read into memory and converted, so ``data`` is native-endian.
    crop : 3 (start, stop) pairs of int, optional
        A region of interest in voxels of the file along z, y, x (stop excluded): only it is read and returned,
        in memory (``mmap`` does not apply; the voxel size is the file's; ``metadata["crop"]`` records the box
        and ``metadata["shape_read"]`` the file's shape).  A box reaching beyond the file is refused.
    align : sequence of (dy, dx) int, optional
        One offset a z plane (of the crop, where there is one) for a stack whose slices were not aligned
        (:func:`core.phases.alignment.slice_shifts`, :func:`core.io._common.normalize_align`): each plane is read
        shifted back, and only the region all planes share is returned, in memory (``metadata["align"]`` says the
        offsets' spread, ``metadata["shape_unaligned"]`` the shape before).  An alignment that is not one pair a
        plane, or that leaves no region common to all planes, is refused.

    Returns
    -------
    Volume
        ``data`` has shape ``(Z, Y, X)``; ``spacing`` is in µm.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    InputFileError
        (a ValueError) If the path is not a regular file or folder (FIFO,
        device, socket), the format is unknown, the file is truncated or
        corrupt (fewer pages or bytes than its header declares; a ``.npy`` or
        raw file whose size does not match its shape and dtype), the data is
        not 2D/3D greyscale numbers, or the dataset is missing or ambiguous.
        The message names the file by its name, not its folder.
    ValueError
        If an argument is invalid.
    MemoryError
        If the declared image does not fit in memory.
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
    opts = _read_options(dataset, shape, dtype, byte_order, offset, mmap)
    box = normalize_crop(crop)
    offsets = normalize_align(align)
    _require_exists(p)
    _require_regular(p)  # a FIFO or device would block the reader
    if fmt is None:
        fmt = detect_format(p)
    reader = READERS[fmt]
    _check_applies(reader, opts, p)
    if box is not None or offsets is not None:
        return _read_box(p, fmt, box, user_spacing, opts, offsets)
    loaded = reader.read(p, opts)
    return _volume(loaded, fmt, user_spacing)


def _read_box(p: Path, fmt: str, box, user_spacing, opts: ReadOptions, offsets=None) -> Volume:
    """A crop (and / or an alignment) read alone: through the file's chunk-wise source (:func:`core.chunked.open_lazy`), which reads only
    the pages, planes, chunks or bytes the box covers (a compressed TIFF or a Zarr store is never decoded whole);
    an in-memory array of the box."""
    from ..chunked.inputs import open_lazy

    lazy = open_lazy(p, fmt=fmt, spacing=user_spacing, dataset=opts.dataset, shape=opts.shape, dtype=opts.dtype,
                     byte_order=opts.byte_order, offset=opts.offset, crop=box, align=offsets)
    data = lazy.reader[(slice(None),) * 3]
    meta = {k: v for k, v in lazy.metadata.items() if k != "lazy"}
    meta["mmap"] = False
    return Volume(data=data, spacing=lazy.spacing, source=lazy.source, fmt=lazy.fmt,
                  spacing_from_metadata=lazy.spacing_from_metadata, metadata=meta)


def _read_options(dataset, shape, dtype, byte_order, offset, mmap) -> ReadOptions:
    check_choice(byte_order, "byte_order", ("<", ">"))
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)):
        raise TypeError(f"offset must be an integer number of bytes, got {offset!r}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0 bytes, got {offset}")
    if not isinstance(mmap, (bool, np.bool_)):
        raise TypeError(f"mmap must be True or False, got {mmap!r}")
    return ReadOptions(dataset=dataset, shape=shape, dtype=dtype, byte_order=byte_order, offset=int(offset),
                       mmap=bool(mmap))


def _check_applies(reader, opts: ReadOptions, p: Path) -> None:
    """Refuse options the reader does not take, and a folder where it needs a file (or the reverse)."""
    defaults = ReadOptions()
    unused = [name for name in _RAW_ONLY
              if name not in reader.options and getattr(opts, name) != getattr(defaults, name)]
    if unused:
        verb = "applies" if len(unused) == 1 else "apply"
        raise ValueError(f"{', '.join(unused)} only {verb} to raw files, but {_name(p)} is read as {reader.name}")
    if opts.dataset is not None and "dataset" not in reader.options:
        raise ValueError(f"dataset only applies to HDF5 and zarr files, but {_name(p)} is read as {reader.name}")
    if reader.target == "file" and p.is_dir():
        raise InputFileError(f"{_name(p)} is a folder, but format {reader.name!r} needs a file")
    if reader.target == "folder" and not p.is_dir():
        raise InputFileError(f"{_name(p)} is a file, but format {reader.name!r} needs a folder of 2D images")


def _volume(loaded: Loaded, fmt: str, user_spacing) -> Volume:
    """The :class:`Volume` of what a reader returned: the caller's spacing, else the file's, else 1 µm."""
    found = loaded.spacing
    meta = dict(loaded.meta)
    meta.setdefault("mmap", isinstance(loaded.data, np.memmap))
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
    return Volume(data=loaded.data, spacing=final, source=loaded.source, fmt=fmt, spacing_from_metadata=from_meta,
                  metadata=meta)
