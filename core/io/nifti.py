"""NIfTI-1 / NIfTI-2 (``.nii``, ``.nii.gz``): volumes and label maps as medical-imaging and deep-learning tools write
them (ITK-SNAP, 3D Slicer, nnU-Net's segmentations), read with nibabel (an optional requirement: without it a
``.nii`` is refused saying what to install).

- Axes: the file's voxel axes (i, j, k), i fastest, are taken as (x, y, z) and read as (z, y, x): the transpose of
  nibabel's array, no copy.  The affine's orientation (flips, rotations, the patient frame) is not applied: the
  voxel grid as stored.
- Voxel size: ``pixdim[1:4]`` (nibabel's zooms) in the header's spatial unit (``xyzt_units``: metres, mm or µm); a
  header that states none is read as mm (the convention of ITK and of the tools above), and the metadata says how
  (``spacing_unit``) for the user to check.
- Values: scaled by ``scl_slope`` / ``scl_inter`` where the header sets them (as nibabel reads them: float), else as
  stored.  A fourth or higher axis longer than one (time, channels) is refused.
- A ``.nii`` is memory-mapped and read a box at a time by the chunked engine; a ``.nii.gz`` read a box at a time is
  decompressed from its start for each box (gzip has no index), so the chunked engine decompresses it once into a
  copy in its output folder and reads the boxes from there (:func:`core.chunked.inputs.decompressed_copy`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._common import InputFileError, Loaded, ReadOptions, _check_numeric, _name, _short, _valid_spacing
from ._registry import register

__all__ = ["nifti_image", "nifti_layout", "nifti_voxels_at", "read_box", "read_nifti"]

#: µm per the header's spatial unit (nibabel's names of ``xyzt_units``); "unknown" is read as mm, and said.
_UNITS = {"meter": 1e6, "mm": 1e3, "micron": 1.0}


def _why(exc: Exception, path: Path) -> str:
    """nibabel's reason, on one line, the file named without its server path."""
    text = " ".join(str(exc).split()).replace(os.fspath(path), _name(path)).replace(os.fspath(Path(path).parent), "")
    return _short(text, 120)


def nifti_image(path: Path):
    """nibabel's image of ``path`` (its header read, no voxel), refused in one sentence naming the file."""
    name = _name(path)
    try:
        import nibabel
    except ImportError:  # pragma: no cover - nibabel is in requirements.txt
        raise InputFileError("reading NIfTI (.nii) files needs the Python package nibabel: pip install nibabel") \
            from None
    try:
        img = nibabel.load(os.fspath(path), mmap=True)
    except Exception as exc:  # noqa: BLE001 - an untrusted file: any reader failure is a refusal
        raise InputFileError(f"{name} is not a NIfTI file nibabel can read ({_why(exc, path)})") from None
    if not isinstance(img, (nibabel.Nifti1Image, nibabel.Nifti2Image)):
        raise InputFileError(f"{name} is not a NIfTI image (nibabel reads it as {type(img).__name__})")
    return img


def nifti_layout(path: Path) -> tuple[tuple[int, int, int], np.dtype, tuple[float, float, float] | None, dict]:
    """(z, y, x) shape, the type voxels are read as, the voxel size (µm, or None) and the notes, from the header.

    Raises
    ------
    InputFileError
        Not a NIfTI file, a fourth axis longer than one, not a numeric type.
    """
    return _layout(nifti_image(path), path)


def _layout(img, path: Path):
    """:func:`nifti_layout` of an image nibabel has opened."""
    name = _name(path)
    shape = tuple(int(n) for n in img.shape)
    if len(shape) > 3 and any(n != 1 for n in shape[3:]):
        raise InputFileError(f"{name} has {len(shape)} axes ({'×'.join(map(str, shape))}): a time series or channels, "
                             "not one volume; save one 3D volume")
    shape = (shape + (1, 1, 1))[:3]
    if min(shape) < 1:
        raise InputFileError(f"{name} is empty (shape {shape})")
    stored = np.dtype(img.get_data_dtype())
    if stored.kind not in "biuf":
        raise InputFileError(f"{name} holds data of dtype {stored}; expected integer or floating-point voxels")
    if not str(path).lower().endswith(".gz"):  # a truncated file would fail on reading, naming its server path
        # the voxels' offset as nibabel reads them (a header's vox_offset of 0 means right after it: 352 in NIfTI-1)
        need = int(getattr(img.dataobj, "offset", 0)) + int(np.prod(img.shape)) * stored.itemsize
        have = os.path.getsize(path)
        if have < need:
            raise InputFileError(f"{name} is truncated: its header states {need:,} bytes with its voxels, the file "
                                 f"holds {have:,}")
    try:
        dtype = np.asarray(img.dataobj[(0,) * len(img.shape)]).dtype  # as read: floats where the header scales
    except Exception as exc:  # noqa: BLE001 - a damaged compressed file
        raise InputFileError(f"{name} cannot be read: {_why(exc, path)}") from None
    zooms = [float(z) for z in img.header.get_zooms()[:3]] + [1.0] * (3 - len(img.shape[:3]))
    unit, _ = img.header.get_xyzt_units()
    factor = _UNITS.get(unit, 1e3)
    notes: dict = {"spacing_unit": "mm (no unit in the header: the NIfTI tools' convention)" if unit not in _UNITS
                   else {"meter": "m", "mm": "mm", "micron": "µm"}[unit] + " (the header's unit)"}
    # pixdim is float32 in NIfTI-1: 7 significant digits (0.0006 mm is 0.6 µm, not 0.6000000284984708)
    spacing = _valid_spacing(tuple(float(f"{z * factor:.7g}") for z in reversed(zooms)))
    if spacing is None:
        notes = {}
    return (shape[2], shape[1], shape[0]), dtype, spacing, notes


def nifti_voxels_at(path: Path) -> tuple[int, np.dtype] | None:
    """Where an uncompressed, unscaled NIfTI file's voxels lie, to be memory-mapped as stored: (byte offset, stored
    dtype with its byte order); their bytes are the (z, y, x) volume in C order (the file's (x, y, z), x fastest).
    None for a ``.nii.gz`` or a file whose values the header scales (read through nibabel, :func:`read_box`)."""
    if str(path).lower().endswith(".gz"):
        return None
    proxy = nifti_image(path).dataobj
    slope, inter = getattr(proxy, "slope", 1.0), getattr(proxy, "inter", 0.0)
    if slope != 1.0 or inter != 0.0 or getattr(proxy, "order", "F") != "F":
        return None
    return int(proxy.offset), np.dtype(proxy.dtype)


def read_box(path: Path, key: tuple[slice, slice, slice]) -> np.ndarray:
    """The (z, y, x) box ``key`` of a NIfTI file's volume (nibabel reads only what the box needs of a ``.nii``)."""
    img = nifti_image(path)
    kz, ky, kx = key
    nd = len(img.shape)
    try:
        if nd == 2:  # one slice
            box = np.asarray(img.dataobj[kx, ky])[:, :, None][:, :, kz]
        else:
            box = np.asarray(img.dataobj[(kx, ky, kz) + (0,) * (nd - 3)])
    except Exception as exc:  # noqa: BLE001 - a damaged compressed file
        raise InputFileError(f"{_name(path)} cannot be read: {_why(exc, path)}") from None
    return box.T


@register("nifti", target="file")
def read_nifti(path: Path, opts: ReadOptions) -> Loaded:
    """A NIfTI file as (Z, Y, X) with the voxel size its header states (see the module's docstring).

    Raises
    ------
    InputFileError
        Not a NIfTI file, a fourth axis longer than one, not a numeric type.
    """
    name = _name(path)
    img = nifti_image(path)  # its header read once
    shape, _, spacing, notes = _layout(img, path)
    try:
        data = np.asanyarray(img.dataobj)  # a .nii not scaled by its header: memory-mapped
    except Exception as exc:  # noqa: BLE001 - a damaged compressed file
        raise InputFileError(f"{name} cannot be read: {_why(exc, path)}") from None
    data = data.reshape(tuple(shape[::-1]))  # (x, y, z): a 2D image gains its z, trailing axes of one go
    return Loaded(_check_numeric(data.T, name), spacing, notes, os.fspath(path))
