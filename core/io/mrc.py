"""MRC (``.mrc``, ``.rec``, ``.st``; ``.mrc.gz`` / ``.mrc.bz2``): volumes as electron microscopy software writes them
(IMOD and TrakEM2 for aligned FIB-SEM stacks, Amira / Avizo and Dragonfly exports), read with mrcfile (an optional
requirement: without it an ``.mrc`` is refused saying what to install).

- Axes: the file's sections are z, its rows y and its columns x, stored (z, y, x): read as stored (the header's
  axis mapping ``mapc / mapr / maps`` describes a crystallographic map's axes, not a reordering of the voxels).
- Voxel size: the header's ``cella`` over ``mx / my / mz`` (mrcfile's ``voxel_size``), in ångström, read as µm
  (1 Å = 1e-4 µm); a header that states none (0) gives none.
- Values: modes 0 (int8), 1 (int16), 2 (float32), 6 (uint16) and 12 (float16) as stored; complex modes refused.
- An uncompressed file is memory-mapped and read a box at a time by the chunked engine; a compressed one is
  decompressed whole on each read, so the chunked engine decompresses it once into a copy in its output folder and
  reads the boxes from there (:func:`core.chunked.inputs.decompressed_copy`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._common import InputFileError, Loaded, ReadOptions, _check_numeric, _name, _short, _valid_spacing
from ._registry import register

__all__ = ["MRC_ENDINGS", "mrc_layout", "read_mrc", "read_mrc_box"]

#: MRC names end so (``.rec``: IMOD's reconstructions, ``.st``: its stacks).
MRC_ENDINGS = (".mrc", ".rec", ".st", ".mrc.gz", ".mrc.bz2", ".mrcs")


def _open(path: Path):
    """mrcfile's reader of ``path`` (memory-mapped where uncompressed), refused in one sentence naming the file."""
    name = _name(path)
    try:
        import mrcfile
    except ImportError:  # pragma: no cover - mrcfile is in requirements.txt
        raise InputFileError("reading MRC (.mrc) files needs the Python package mrcfile: pip install mrcfile") from None
    compressed = str(path).lower().endswith((".gz", ".bz2"))
    try:
        return mrcfile.open(os.fspath(path), mode="r") if compressed else mrcfile.mmap(os.fspath(path), mode="r")
    except Exception as exc:  # noqa: BLE001 - an untrusted file: any reader failure is a refusal
        why = str(exc).replace(os.fspath(path), name).replace(os.fspath(Path(path).parent), "")  # no server path
        if "greater than file size" in why or "shorter than expected" in why:
            raise InputFileError(f"{name} is truncated: its header states more voxels than the file holds") from None
        raise InputFileError(f"{name} is not an MRC file mrcfile can read ({_short(why, 120)})") from None


def mrc_layout(path: Path) -> tuple[tuple[int, int, int], np.dtype, tuple[float, float, float] | None, dict,
                                   int | None]:
    """(z, y, x) shape, voxel type (the file's byte order), voxel size (µm, or None), notes and the voxels' byte
    offset (None for a compressed file) of an MRC file.

    Raises
    ------
    InputFileError
        Not an MRC file, a complex or unreadable mode, no voxels.
    """
    name = _name(path)
    with _open(path) as mrc:
        data = mrc.data
        if data is None or data.size == 0:
            raise InputFileError(f"{name} holds no voxels")
        if data.dtype.kind not in "iuf":
            raise InputFileError(f"{name} holds data of dtype {data.dtype}; expected integer or floating-point voxels")
        shape = tuple(int(n) for n in data.shape)
        shape = (1,) * (3 - len(shape)) + shape if len(shape) < 3 else shape
        if len(shape) != 3:
            raise InputFileError(f"{name} is not one volume: shape {shape}")
        size = mrc.voxel_size
        zyx = (float(size.z), float(size.y), float(size.x))
        dtype = np.dtype(data.dtype)
        offset = None if str(path).lower().endswith((".gz", ".bz2")) else 1024 + int(mrc.header.nsymbt)
    spacing = _valid_spacing(tuple(float(f"{a * 1e-4:.7g}") for a in zyx)) if min(zyx) > 0 else None
    return shape, dtype, spacing, ({"spacing_unit": "Å (the MRC convention)"} if spacing else {}), offset


def read_mrc_box(path: Path, key: tuple[slice, slice, slice]) -> np.ndarray:
    """The (z, y, x) box ``key`` of a compressed MRC file's volume (decompressed whole)."""
    with _open(path) as mrc:  # decompressed once
        data = np.asarray(mrc.data)
        return np.array(data.reshape((1,) * (3 - data.ndim) + data.shape)[key])


@register("mrc", target="file")
def read_mrc(path: Path, opts: ReadOptions) -> Loaded:
    """An MRC file as (Z, Y, X) with the voxel size its header states (see the module's docstring); memory-mapped
    where it is not compressed.

    Raises
    ------
    InputFileError
        Not an MRC file, a complex mode, no voxels.
    """
    name = _name(path)
    shape, dtype, spacing, notes, offset = mrc_layout(path)
    if offset is not None:
        data = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
        data = data if opts.mmap else np.array(data)
    else:
        with _open(path) as mrc:
            data = np.array(mrc.data).reshape(shape)
    return Loaded(_check_numeric(data, name), spacing, notes, os.fspath(path))
