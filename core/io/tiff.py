"""TIFF, ImageJ hyperstack and OME-TIFF: pixels (memory-mapped where possible) and the voxel size."""

from __future__ import annotations

import contextlib
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import tifffile

from ._common import (
    _RESUNIT_TO_UM, Loaded, ReadOptions, _check_numeric, _FormatError, _short, _to_zyx, _unit_factor,
    _valid_spacing, _zyx_shape,
)
from ._registry import register


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


@register("tiff", target="file")
def read_tiff(path: Path, opts: ReadOptions) -> Loaded:
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
            if opts.mmap and series.dataoffset is not None and np.dtype(tif.byteorder + series.dtype.char).isnative:
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
    return Loaded(_to_zyx(data, str(path), axes), spacing, meta, os.fspath(path))
