"""A folder of 2D ``.tif``/``.tiff``/``.png`` slices, stacked in natural order."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._common import Loaded, ReadOptions, _check_numeric, _FormatError, _short, _slice_files
from ._registry import register
from .tiff import read_tiff


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


@register("slices", target="folder")
def read_slices(folder: Path, opts: ReadOptions) -> Loaded:
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
        one = read_tiff(p, ReadOptions(mmap=False))
        vol, sp, meta = one.data, one.spacing, one.meta
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
    return Loaded(out, found.get("spacing"), meta, os.fspath(folder))
