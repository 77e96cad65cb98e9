"""A folder of 2D ``.tif``/``.tiff``/``.png``/``.bmp``/``.edf``/``.dcm`` slices, stacked in natural order (a DICOM
series in the order of its slices in space).

The voxel size is the first TIFF or EDF slice's where it states one, else the one a Bruker SkyScan reconstruction
log in the folder states (:func:`skyscan_pixel_size`: NRecon's BMP or PNG slices state none themselves).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

from ._common import (
    _IMAGE_SUFFIXES, _SLICE_SUFFIXES, SLICE_KINDS, InputFileError, Loaded, ReadOptions, _name, _require_regular,
    _is_dicom, _slice_files, mismatched_slices_message,
)
from ._registry import register
from .edf import read_edf
from .image import read_image_pixels
from .tiff import read_tiff


#: Bytes of a SkyScan log read at most (a reconstruction log is a few kB).
_LOG_BYTES = 1 << 20
_PIXEL_SIZE = re.compile(r"^\s*Pixel\s+Size\s*\(um\)\s*=\s*([0-9.eE+-]+)\s*$", re.M | re.I)


def skyscan_pixel_size(folder: Path) -> tuple[float, str] | None:
    """The voxel size (µm) a Bruker SkyScan reconstruction log beside the slices states, and the log's name.

    NRecon writes ``<name>_rec.log`` into the folder of the slices it reconstructs (BMP, PNG or TIFF), with a line
    ``Pixel Size (um)=0.90000`` (the reconstruction's voxel; the acquisition's ``Image Pixel Size (um)``, the
    projections' pixel before any binning, is not read).  A ``*_rec.log`` is preferred, then any other ``.log``
    with such a line and a positive size; None where none has one.
    """
    logs = sorted((p for p in folder.iterdir() if p.suffix.lower() == ".log" and not p.name.startswith(".")),
                  key=lambda p: (not p.name.lower().endswith("_rec.log"), p.name))
    for log in logs:
        try:
            if not log.is_file() or log.stat().st_size > _LOG_BYTES:
                continue
            text = log.read_bytes()[:_LOG_BYTES].decode("latin-1")
        except OSError:
            continue
        m = _PIXEL_SIZE.search(text)
        if m:
            try:
                size = float(m.group(1))
            except ValueError:
                continue
            if math.isfinite(size) and size > 0:
                return size, log.name
    return None


def slice_notes(meta) -> dict:
    """What a slice's metadata says of the folder: its voxel size notes, an SEM's data bar and stage tilt."""
    return {k: v for k, v in meta.items() if k.startswith("spacing") or k in ("data_bar_rows", "sem_tilt")}


def log_spacing(folder: Path, spacing, notes: dict):
    """``(spacing, notes)`` of a slice folder: the slices' own where they state one, else a SkyScan log's."""
    if spacing is not None:
        return spacing, notes
    found = skyscan_pixel_size(folder)
    if found is None:
        return None, notes
    size, log = found
    return (size,) * 3, {**notes, "spacing_unit": f"µm (Pixel Size of the SkyScan log {log})", "spacing_log": log}


def read_slice(path: Path, folder_name: str, *, mmap: bool = False) -> Loaded:
    """One slice of a slice folder: a 2D ``.tif``/``.tiff``/``.png``/``.bmp``/``.edf``/``.dcm`` image.

    Parameters
    ----------
    path : Path
    folder_name : str
        How messages name the folder.
    mmap : bool
        Memory-map an uncompressed TIFF or EDF slice.

    Returns
    -------
    Loaded
        ``data`` (1, Y, X), numeric, native byte order; ``spacing`` and ``meta`` as a TIFF or EDF slice states them
        (None and empty for a PNG or BMP).

    Raises
    ------
    InputFileError
        Unreadable, several channels, or not 2D (one sentence naming the slice and its folder).
    """
    where = f"slice {path.name} in folder {folder_name}"
    if path.suffix.lower() in _IMAGE_SUFFIXES:
        img = read_image_pixels(path, where)
        if img.ndim != 2:
            raise InputFileError(f"{where} is not a 2D image: shape {img.shape}")
        return Loaded(img[None], None, {}, os.fspath(path))
    if _is_dicom(path):
        from .dicom import read_dicom_slice

        try:
            return read_dicom_slice(path, where)
        except InputFileError as exc:
            raise InputFileError(f"slice folder {folder_name}: {exc}") from None
    try:
        one = (read_edf if path.suffix.lower() == ".edf" else read_tiff)(path, ReadOptions(mmap=mmap))
    except InputFileError as exc:
        raise InputFileError(f"slice folder {folder_name}: {exc}") from None
    if one.data.shape[0] != 1:
        raise InputFileError(f"{where} is not a 2D image: shape {one.data.shape} (a 3D stack inside a slice folder)")
    return one


def _check_entries(folder: Path) -> None:
    """Refuse slice-named entries that are not regular files (a FIFO would block, a folder is no slice)."""
    for p in folder.iterdir():
        if p.name.startswith(".") or p.suffix.lower() not in _SLICE_SUFFIXES:
            continue  # (DICOM slices without a suffix are sniffed as regular files only: _slice_files)
        try:
            _require_regular(p, allow_dir=False)
        except FileNotFoundError:
            raise InputFileError(f"slice folder {_name(folder)}: {p.name} is a link to a missing file") from None
        except InputFileError as exc:
            raise InputFileError(f"slice folder {_name(folder)}: {exc}") from None


@register("slices", target="folder")
def read_slices(folder: Path, opts: ReadOptions) -> Loaded:
    _check_entries(folder)
    files = _slice_files(folder)
    fname = _name(folder)
    if not files:
        raise InputFileError(f"folder {fname} holds no {SLICE_KINDS} slices")

    found: dict = {}  # spacing of the first TIFF slice, if it has any

    def read(p: Path) -> np.ndarray:
        one = read_slice(p, fname)
        if "tiff_seen" not in found and p.suffix.lower() not in _IMAGE_SUFFIXES:  # the first TIFF or EDF slice's
            found["tiff_seen"] = True
            if one.spacing is not None:
                found["spacing"] = one.spacing
                found["notes"] = slice_notes(one.meta)
        return one.data[0]

    first = read(files[0])
    out = np.empty((len(files),) + first.shape, dtype=first.dtype)
    out[0] = first
    for i, p in enumerate(files[1:], start=1):
        img = read(p)
        if img.shape != first.shape or img.dtype != first.dtype:
            raise InputFileError(mismatched_slices_message(folder, files))
        out[i] = img
    spacing, notes = series_checked(files, found.get("spacing"), found.get("notes", {}))
    spacing, notes = log_spacing(folder, spacing, notes)
    meta = {"files": tuple(p.name for p in files), "n_slices": len(files), **notes}
    return Loaded(out, spacing, meta, os.fspath(folder))


def series_checked(files: list[Path], spacing, notes: dict) -> tuple[tuple | None, dict]:
    """A DICOM series' voxel size checked across its slices (:func:`core.io.dicom.series_spacing`); other slice
    folders' as given."""
    if files and _is_dicom(files[0]):
        from .dicom import series_spacing

        return series_spacing(files, spacing, notes)
    return spacing, notes
