"""Writing volumes: an ImageJ-compatible TIFF that keeps the voxel size, written atomically."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tifffile

from .._atomic import atomic_path
from .._validate import normalize_spacing
from ._common import _TIFF_SUFFIXES, _short

__all__ = ["save_tiff"]


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
    try:
        with atomic_path(dest, mode=mode) as tmp:
            tifffile.imwrite(tmp, arr, **kwargs)
    except OSError as exc:
        raise OSError(f"could not write {dest}: {_short(exc)}") from exc
