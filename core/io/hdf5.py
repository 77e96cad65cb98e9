"""HDF5 files (``.h5``, ``.hdf5``, ``.hdf``, ``.nxs``): one dataset, its voxel size from attributes (or a
Data Exchange file's objective resolution).

The dataset picking and the attribute spacing are shared with :mod:`core.io.zarr`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ._common import (
    _SPACING_ATTRS, _UNIT_ATTRS, InputFileError, Loaded, ReadOptions, _check_numeric, _memory_error, _name,
    _short, _to_zyx, _unit_factor, _valid_spacing, _zyx_shape,
)
from ._registry import register


def _import_h5py():
    import h5py

    return h5py


# What h5py raises for a broken file or dataset (its errors are OSError, KeyError, ValueError, RuntimeError
# or TypeError subclasses mapped from the HDF5 error stack).
_H5_ERRORS = (OSError, KeyError, ValueError, RuntimeError, TypeError)


def _open_h5(path: Path, h5py):
    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    except _H5_ERRORS as exc:
        raise InputFileError(f"could not read {_name(path)} as HDF5: {_short(exc, path=path)}") from None


def _h5_arrays(f, h5py) -> list[tuple[str, tuple[int, ...], str]]:
    found: list[tuple[str, tuple[int, ...], str]] = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            found.append(("/" + name, tuple(int(n) for n in obj.shape), str(obj.dtype)))

    f.visititems(visit)
    return sorted(found)


def _listing(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit]) or "none"
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _pick_dataset(path: Path, arrays: list[tuple[str, tuple[int, ...], str]], dataset: str | None,
                  groups: tuple[str, ...] = ()) -> str:
    names = [a[0] for a in arrays]
    name = _name(path)
    if dataset is not None:
        wanted = "/" + dataset.strip("/")
        if wanted not in names:
            what = "is a group, not a dataset" if wanted in groups else "does not exist"
            raise InputFileError(f"dataset {dataset!r} of {name} {what}; datasets: {_listing(names)}")
        return wanted
    images = [a[0] for a in arrays if len(a[1]) >= 2]
    if len(images) == 1:
        return images[0]
    if not images:
        raise InputFileError(f"{name} holds no array with 2 or more dimensions; datasets: {_listing(names)}")
    raise InputFileError(f"{name} holds {len(images)} image datasets; choose one with the dataset option: "
                         f"{_listing(images)}")


def _h5_groups(f, h5py) -> tuple[str, ...]:
    found = ["/"]

    def visit(name, obj):
        if isinstance(obj, h5py.Group):
            found.append("/" + name)

    f.visititems(visit)
    return tuple(found)


def _as_float_list(value) -> list[float] | None:
    if isinstance(value, (str, bytes, Mapping)):
        return None
    try:
        arr = np.asarray(value, dtype=float).ravel()
    except (TypeError, ValueError):
        return None
    return [float(v) for v in arr]


def _spacing_from_attrs(levels: Iterable[tuple[str, Mapping]]) -> tuple[tuple | None, dict]:
    """Spacing from attributes of a dataset and its parents, nearest level first."""
    for _level, attrs in levels:
        for key in _SPACING_ATTRS:
            if key not in attrs:
                continue
            values = _as_float_list(attrs[key])
            if values is None:
                continue
            if key.endswith("_um"):
                factor = 1.0
            else:
                unit = next((attrs[u] for u in _UNIT_ATTRS if u in attrs), None)
                factor = 1.0 if unit is None else _unit_factor(unit)
                if factor is None:
                    continue
            values = [v * factor for v in values]
            notes = {"spacing_source": f"attrs:{key}"}
            if len(values) == 1:
                values = values * 3
            elif len(values) == 2:
                values = [values[1], values[0], values[1]]
                notes["spacing_z_assumed"] = True
            elif len(values) != 3:
                continue
            sp = _valid_spacing(values)
            if sp is not None:
                return sp, notes
    return None, {}


#: Where a Data Exchange (DXchange) file of an APS-style beamline keeps its pixel size: the objective's
#: ``resolution`` is the effective pixel in µm (the camera pixel divided by the magnification); with it missing,
#: the camera's ``pixel_size`` over the ``magnification``.  The detector's pixel size alone is the camera's, not
#: the scan's, and is never read as the voxel size.
DXCHANGE_RESOLUTION = "/measurement/instrument/detection_system/objective/resolution"
DXCHANGE_MAGNIFICATION = "/measurement/instrument/detection_system/objective/magnification"
DXCHANGE_PIXEL_SIZE = ("/measurement/instrument/detector/pixel_size", "/measurement/instrument/detector/pixel_size_x")


def _dx_value(f, name: str, *, length: bool = True) -> float | None:
    """One positive number stored at ``name`` (a dataset), else None; a ``length`` in µm (its ``units`` attribute
    if any), else as stored (a magnification)."""
    obj = f.get(name)
    if obj is None or not hasattr(obj, "dtype") or obj.dtype.kind not in "iuf" or obj.size < 1:
        return None
    try:
        value = float(np.asarray(obj[()], dtype=float).ravel()[0])
    except (TypeError, ValueError, OSError):
        return None
    unit = next((obj.attrs[u] for u in _UNIT_ATTRS if u in obj.attrs), None) if length else None
    factor = 1.0 if unit is None else _unit_factor(unit)
    if factor is None or not np.isfinite(value) or value <= 0:
        return None
    return value * factor


def _dxchange_spacing(f) -> tuple[tuple | None, dict]:
    """The voxel size of a Data Exchange file (:data:`DXCHANGE_RESOLUTION`), isotropic; ``(None, {})`` without."""
    pixel = _dx_value(f, DXCHANGE_RESOLUTION)
    source = "dxchange"
    if pixel is None:
        camera = next((v for v in (_dx_value(f, n) for n in DXCHANGE_PIXEL_SIZE) if v is not None), None)
        mag = _dx_value(f, DXCHANGE_MAGNIFICATION, length=False)
        if camera is None or mag is None:
            return None, {}
        pixel, source = camera / mag, "dxchange_magnification"
    sp = _valid_spacing([pixel] * 3)
    return (sp, {"spacing_source": source}) if sp is not None else (None, {})


def h5_spacing(f, obj) -> tuple[tuple | None, dict]:
    """The voxel size of dataset ``obj`` of open file ``f`` and its reader's notes.

    From the attributes of the dataset and its parent groups, nearest first (:data:`_SPACING_ATTRS`); else from
    a Data Exchange file's objective (:func:`_dxchange_spacing`).  ``(None, {})`` when the file says none.
    """
    levels, node = [], obj
    while True:
        levels.append((node.name, dict(node.attrs)))
        if node.name == "/":
            break
        node = node.parent
    spacing, notes = _spacing_from_attrs(levels)
    if spacing is None:
        spacing, notes = _dxchange_spacing(f)
    return spacing, notes


def _check_stored_here(obj, where: str) -> None:
    """Refuse a dataset whose voxels live in other files (external storage, virtual dataset)."""
    if getattr(obj, "external", None) or getattr(obj, "is_virtual", False):
        raise InputFileError(f"{where} keeps its voxels in other files (external or virtual dataset); "
                             "copy them into the file first")


@register("hdf5", target="file", options=("dataset",))
def read_hdf5(path: Path, opts: ReadOptions) -> Loaded:
    dataset = opts.dataset
    h5py = _import_h5py()
    fname = _name(path)
    declared = None
    with _open_h5(path, h5py) as f:
        try:
            name = _pick_dataset(path, _h5_arrays(f, h5py), dataset, _h5_groups(f, h5py))
            obj = f[name]
            where = f"dataset {name} of {fname}"
            _check_stored_here(obj, where)
            _zyx_shape(tuple(obj.shape), where)  # 1D, 4D+, scalar and empty refused before reading
            if obj.dtype.kind not in "biuf":
                raise InputFileError(f"{where} holds data of dtype {obj.dtype}; expected integer or floating-point "
                                     "voxels")
            declared = int(obj.size) * obj.dtype.itemsize
            spacing, notes = h5_spacing(f, obj)
            data = np.asarray(obj[()])
        except InputFileError:
            raise
        except MemoryError as exc:
            raise _memory_error(fname, "HDF5", exc, declared) from None
        except _H5_ERRORS as exc:
            raise InputFileError(f"could not read {fname} as HDF5: {_short(exc, path=path)}") from None
    data = _check_numeric(data, where)
    return Loaded(_to_zyx(data, where), spacing, {"dataset": name, **notes}, f"{os.fspath(path)}::{name}")
