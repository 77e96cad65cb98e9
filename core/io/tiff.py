"""TIFF, ImageJ hyperstack and OME-TIFF: pixels (memory-mapped where possible) and the voxel size."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import threading
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import tifffile

from ._common import (
    _RESUNIT_TO_UM, _SMALL_IMAGE_BYTES, InputFileError, Loaded, ReadOptions, _check_numeric, _memory_error, _name,
    _short, _to_zyx, _unit_factor, _valid_spacing, _zyx_shape,
)
from ._registry import register
from .sem import fei_data_bar_rows, sem_spacing, sem_tilt


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

    # 4. an SEM's own tag (FEI / Thermo Fisher, Zeiss): its resolution tags hold a print density
    sp, notes = sem_spacing(tif)
    if sp is not None:
        return sp, notes

    # 5. plain resolution tags in metric units
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


def tiff_metadata(tif: tifffile.TiffFile, depth: int, height: int) -> tuple[tuple[float, float, float] | None, dict]:
    """:func:`_tiff_spacing`, and in the notes ``data_bar_rows`` where an SEM's metadata states that the bottom rows
    of an image ``height`` rows high are its data bar (:func:`core.io.sem.fei_data_bar_rows`), and ``sem_tilt`` where
    it states the stage tilt (:func:`core.io.sem.sem_tilt`)."""
    spacing, notes = _tiff_spacing(tif, depth)
    bar = fei_data_bar_rows(tif, height)
    if bar:
        notes = {**notes, "data_bar_rows": bar}
    tilt = sem_tilt(tif)
    return spacing, ({**notes, "sem_tilt": tilt} if tilt else notes)


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


# What tifffile (and the codecs it calls) raise for a broken file: its own TiffFileError (a ValueError), short
# reads, bad offsets and tags, failed decompression (imagecodecs errors are RuntimeErrors).  Fuzzed files also
# reach its internal ``assert dtype is not None`` and ``divmod(size, product(keyframe.shape))`` with a zero
# shape, hence AssertionError and ArithmeticError.  Programming errors such as AttributeError or NameError are
# not caught.
_TIFF_ERRORS = (tifffile.TiffFileError, OSError, ValueError, struct.error, IndexError, KeyError, EOFError,
                RuntimeError, ArithmeticError, AssertionError, TypeError, zlib.error)

# tifffile log messages that mean the page chain or the declared shape does not match the bytes on disk.
_BROKEN_LOG = ("invalid page offset", "corrupted", "failed to reshape", "truncated", "incomplete")

# A header declaring more than this many times the file's size in voxels is corrupt, not compressed: real
# tomograms compress a few times, label volumes a few hundred times at most.  Checked before any allocation.
_MAX_COMPRESSION = 10_000

_LOG_LOCK = threading.Lock()
_LOG_STATE = {"depth": 0, "propagate": True}


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.messages.append(record.getMessage())


@contextlib.contextmanager
def _tifffile_log():
    """Collect tifffile's log records instead of printing them (the caller turns them into one sentence).

    While any read is in progress the ``tifffile`` logger does not propagate, so Python's last-resort
    handler prints nothing; the previous setting is restored when the last read ends.
    """
    logger = logging.getLogger("tifffile")
    handler = _Collect()
    with _LOG_LOCK:
        if _LOG_STATE["depth"] == 0:
            _LOG_STATE["propagate"] = logger.propagate
            logger.propagate = False
        _LOG_STATE["depth"] += 1
        logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        with _LOG_LOCK:
            logger.removeHandler(handler)
            _LOG_STATE["depth"] -= 1
            if _LOG_STATE["depth"] == 0:
                logger.propagate = _LOG_STATE["propagate"]


def _planes(axes: str, shape: tuple[int, ...]) -> int:
    """Number of 2D planes in a series (every axis but Y, X and samples)."""
    return int(np.prod([n for a, n in zip(axes, shape) if a not in "YXS"], dtype=np.int64))


def _declared_planes(tif: tifffile.TiffFile) -> int | None:
    """Planes the ImageJ metadata declares (``images=N``), or None."""
    ij = tif.imagej_metadata if tif.is_imagej else None
    if not ij:
        return None
    try:
        n = int(ij.get("images", 0))
    except (TypeError, ValueError):
        return None
    return n if n > 0 else None


def _data_end(series) -> int:
    """Largest byte offset the series' pixel data reaches (strips or tiles of every page it can reach)."""
    if series.dataoffset is not None:  # contiguous, uncompressed
        return int(series.dataoffset) + int(series.nbytes)
    end = 0
    for page in series.pages:
        if page is None:
            continue
        for off, count in zip(getattr(page, "dataoffsets", ()), getattr(page, "databytecounts", ())):
            if count:
                end = max(end, int(off) + int(count))
    return end


def _check_complete(tif: tifffile.TiffFile, series, log: list[str], name: str, *, log_only: bool = False) -> None:
    """Refuse a stack whose file holds fewer planes or bytes than its header declares (a truncated file).

    tifffile falls back to the pages it can reach and only logs the problem, which would
    silently read a truncated ImageJ stack as its first slice.  ``log_only``: check only what
    tifffile logged (after the pixels were read).
    """
    if log_only:
        _check_log(log, name)
        return
    declared = _declared_planes(tif)
    got = _planes(series.axes, tuple(series.shape))
    if declared is not None and got < declared:
        n_pages = len(tif.pages)
        raise InputFileError(f"{name}: the TIFF stack declares {declared} slices but the file ends after "
                             f"{n_pages} (truncated or corrupt file)")
    end, size = _data_end(series), int(tif.filehandle.size)
    if end > size:
        raise InputFileError(f"{name} is truncated: its image data runs to byte {end:,}, but the file has {size:,} "
                             "bytes")
    declared_bytes = int(series.nbytes)
    if declared_bytes > max(_SMALL_IMAGE_BYTES, _MAX_COMPRESSION * size):
        raise InputFileError(f"{name} has a corrupt header: it declares {declared_bytes / 2**30:.1f} GiB of voxels "
                             f"(shape {tuple(series.shape)}) in a file of {size:,} bytes")
    _check_log(log, name)


def _check_log(log: list[str], name: str) -> None:
    broken = [m for m in log if any(k in m.lower() for k in _BROKEN_LOG)]
    if broken:
        detail = broken[0].split("> ", 1)[-1].strip()
        raise InputFileError(f"{name} is a truncated or corrupt TIFF file ({_short(ValueError(detail), 100)})")


@register("tiff", target="file")
def read_tiff(path: Path, opts: ReadOptions) -> Loaded:
    """Read series 0 of a TIFF as (Z, Y, X); memory-map it if possible and asked.

    Raises :class:`InputFileError` for a file that is not a TIFF, is truncated (fewer pages or bytes
    than its header declares) or corrupt; tifffile's own log lines are not printed.
    """
    name = _name(path)
    declared_bytes = None
    try:
        with _tifffile_log() as log, tifffile.TiffFile(path) as tif:
            if not tif.series:
                raise InputFileError(f"{name} holds no image data")
            series = tif.series[0]
            axes, shape = series.axes, tuple(series.shape)
            _check_complete(tif, series, log, name)
            declared_bytes = int(series.nbytes)
            zyx = _zyx_shape(shape, name, axes)  # reject channels / 4D+ before reading pixels
            depth = int(np.prod([n for a, n in zip(axes, shape) if a not in "YXCS"], dtype=np.int64))
            spacing, notes = tiff_metadata(tif, depth, zyx[1])
            meta = {"axes": axes, "imagej": bool(tif.is_imagej), "ome": bool(tif.is_ome), **notes}
            data = None
            if opts.mmap and series.dataoffset is not None and np.dtype(tif.byteorder + series.dtype.char).isnative:
                with contextlib.suppress(*_TIFF_ERRORS):
                    data = tifffile.memmap(path, series=0, mode="r").reshape(shape)
            if data is None:
                data = series.asarray()
                if data.shape != shape:
                    data = data.reshape(shape)
            _check_complete(tif, series, log, name, log_only=True)  # problems logged while reading the pixels
    except InputFileError:
        raise
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    except MemoryError as exc:
        raise _memory_error(name, "TIFF", exc, declared_bytes) from None
    except _TIFF_ERRORS as exc:
        raise InputFileError(f"could not read {name} as TIFF: {_short(exc, path=path)}") from None
    data = _check_numeric(data, name)
    return Loaded(_to_zyx(data, name, axes), spacing, meta, os.fspath(path))
