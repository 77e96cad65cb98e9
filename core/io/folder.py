"""A folder of 2D ``.tif``/``.tiff``/``.png``/``.edf`` slices, stacked in natural order."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._common import (
    _SLICE_SUFFIXES, InputFileError, Loaded, ReadOptions, _check_numeric, _name, _require_regular, _short,
    _slice_files, mismatched_slices_message,
)
from ._registry import register
from .edf import read_edf
from .tiff import read_tiff


def _read_png(path: Path, where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            bands = len(im.getbands())
            if bands > 1 and im.mode != "P":
                raise InputFileError(f"{where} has {bands} channels ({im.mode}); convert it to greyscale first")
            arr = np.asarray(im)
    except InputFileError:
        raise
    except MemoryError as exc:
        raise MemoryError(f"not enough memory to read {where}: {_short(exc, path=path)}") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError,
            EOFError) as exc:
        raise InputFileError(f"could not read {where} as PNG: {_short(exc, path=path)}") from None
    return arr


def read_slice(path: Path, folder_name: str, *, mmap: bool = False) -> Loaded:
    """One slice of a slice folder: a 2D ``.tif``/``.tiff``/``.png``/``.edf`` image.

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
        (None and empty for a PNG).

    Raises
    ------
    InputFileError
        Unreadable, several channels, or not 2D (one sentence naming the slice and its folder).
    """
    where = f"slice {path.name} in folder {folder_name}"
    if path.suffix.lower() == ".png":
        img = _check_numeric(_read_png(path, where), where)
        if img.ndim != 2:
            raise InputFileError(f"{where} is not a 2D image: shape {img.shape}")
        return Loaded(img[None], None, {}, os.fspath(path))
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
            continue
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
        raise InputFileError(f"folder {fname} holds no .tif/.tiff/.png/.edf slices")

    found: dict = {}  # spacing of the first TIFF slice, if it has any

    def read(p: Path) -> np.ndarray:
        one = read_slice(p, fname)
        if "tiff_seen" not in found and p.suffix.lower() != ".png":  # the first TIFF or EDF slice's pixel size
            found["tiff_seen"] = True
            if one.spacing is not None:
                found["spacing"] = one.spacing
                found["notes"] = {k: v for k, v in one.meta.items() if k.startswith("spacing")}
        return one.data[0]

    first = read(files[0])
    out = np.empty((len(files),) + first.shape, dtype=first.dtype)
    out[0] = first
    for i, p in enumerate(files[1:], start=1):
        img = read(p)
        if img.shape != first.shape or img.dtype != first.dtype:
            raise InputFileError(mismatched_slices_message(folder, files))
        out[i] = img
    meta = {"files": tuple(p.name for p in files), "n_slices": len(files), **found.get("notes", {})}
    return Loaded(out, found.get("spacing"), meta, os.fspath(folder))
