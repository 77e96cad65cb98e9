"""zarr v2 / v3 stores: one array, its voxel size from attributes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._common import (
    _ZARR_MARKERS, InputFileError, Loaded, ReadOptions, _check_numeric, _memory_error, _name, _require_regular,
    _short, _to_zyx, _unit_factor, _valid_spacing, _zyx_shape,
)
from ._registry import register
from .hdf5 import _as_float_list, _pick_dataset, _spacing_from_attrs


# What zarr raises for a store that is not one or is broken: missing metadata (FileNotFoundError, an OSError,
# or its own errors, which derive from ValueError/KeyError/TypeError), bad JSON (ValueError), codec errors
# (RuntimeError from numcodecs / imagecodecs).
_ZARR_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError)


def _array_and_attrs(root, name: str):
    """The array ``name`` of an open zarr ``root`` ("/" = the root itself) and the attributes of it and of each
    group above it, innermost first, as ``[(path, attrs), ...]`` (where the voxel size may be declared)."""
    if name == "/":
        return root, [("/", dict(root.attrs))]
    arr = root[name.strip("/")]
    parts = name.strip("/").split("/")
    levels = [(name, dict(arr.attrs))]
    for i in range(len(parts) - 1, 0, -1):
        group_path = "/".join(parts[:i])
        levels.append(("/" + group_path, dict(root[group_path].attrs)))
    levels.append(("/", dict(root.attrs)))
    return arr, levels

def _scale(transforms) -> list[float] | None:
    """The product of the ``scale`` entries of an OME-NGFF ``coordinateTransformations`` list (None: none)."""
    if not isinstance(transforms, list):
        return None
    out = None
    for t in transforms:
        if isinstance(t, dict) and t.get("type") == "scale":
            values = _as_float_list(t.get("scale"))
            if values is None:
                return None
            out = values if out is None else ([a * b for a, b in zip(out, values)] if len(out) == len(values)
                                              else None)
            if out is None:
                return None
    return out


def _ome_spacing(levels, name: str) -> tuple[float, float, float] | None:
    """The voxel size (µm, z y x) that OME-Zarr (NGFF 0.4 ``multiscales`` or 0.5 ``ome.multiscales``) metadata
    of a group above the array ``name`` declares for it: its dataset's scale times the multiscale's own, on the
    three axes of type "space" (the last three axes when none has a type), each in its own unit.  None where the
    array is not one of the datasets, the spatial axes are not three, or a unit is missing or not a length."""
    target = name.strip("/")
    for level, attrs in levels:
        ome = attrs.get("ome")
        multiscales = ome.get("multiscales") if isinstance(ome, dict) else attrs.get("multiscales")
        if not isinstance(multiscales, list):
            continue
        prefix = level.strip("/")
        for ms in multiscales:
            if not isinstance(ms, dict) or not isinstance(ms.get("datasets"), list):
                continue
            axes = ms.get("axes")
            for ds in ms["datasets"]:
                path = str(ds.get("path", "")).strip("/") if isinstance(ds, dict) else ""
                if not path or "/".join(p for p in (prefix, path) if p) != target:
                    continue
                scale = _scale(ds.get("coordinateTransformations"))
                outer = _scale(ms.get("coordinateTransformations")) if "coordinateTransformations" in ms else None
                if scale is None or not isinstance(axes, list) or len(axes) != len(scale):
                    return None
                if outer is not None:
                    if len(outer) != len(scale):
                        return None
                    scale = [a * b for a, b in zip(scale, outer)]
                typed = [a for a in axes if isinstance(a, dict) and "type" in a]
                idx = ([i for i, a in enumerate(axes) if isinstance(a, dict) and a.get("type") == "space"]
                       if typed else list(range(len(axes)))[-3:])
                if len(idx) != 3:
                    return None
                factors = [_unit_factor(axes[i].get("unit")) if isinstance(axes[i], dict) else None for i in idx]
                if any(f is None for f in factors):
                    return None
                return _valid_spacing([scale[i] * f for i, f in zip(idx, factors)])
    return None


def _ome_full_resolution(root, arrays) -> str | None:
    """The array an OME-Zarr image group names first (its full-resolution level, ``"/0"`` ...), when it is one
    of ``arrays``: what a reader takes by default, as viewers do.  None without such metadata."""
    attrs = dict(root.attrs)
    ome = attrs.get("ome")
    multiscales = ome.get("multiscales") if isinstance(ome, dict) else attrs.get("multiscales")
    try:
        first = "/" + str(multiscales[0]["datasets"][0]["path"]).strip("/")
    except (TypeError, KeyError, IndexError):
        return None
    return first if first in {a[0] for a in arrays} else None


def pick_array(path: Path, root, dataset: str | None):
    """The name of the array read from a zarr group: ``dataset``, else the only image array, else the first level
    of its OME-Zarr multiscales; the refusals of :func:`core.io.hdf5._pick_dataset` (several image arrays and
    none named, a name that is missing or a group)."""
    import zarr

    try:
        arrays = _zarr_arrays(root)
        groups = ("/",) + tuple("/" + n.strip("/") for n, obj in root.members(max_depth=None)
                                if isinstance(obj, zarr.Group))
    except _ZARR_ERRORS as exc:
        raise InputFileError(f"could not read {_name(path)} as a zarr store: {_short(exc, path=path)}") from None
    if dataset is None:
        dataset = _ome_full_resolution(root, arrays)
    return _pick_dataset(path, arrays, dataset, groups)


def _zarr_spacing(levels, name: str) -> tuple[tuple | None, dict]:
    """The voxel size a zarr array's metadata declares (µm) and the notes on where it came from: OME-Zarr
    metadata first (:func:`_ome_spacing`), then the attributes HDF5 files use too (``element_size_um``...)."""
    sp = _ome_spacing(levels, name)
    if sp is not None:
        return sp, {"spacing_source": "ome"}
    return _spacing_from_attrs(levels)


def _check_store_entries(path: Path) -> None:
    """Refuse a store holding anything but files and folders (a FIFO chunk would block the read)."""
    stack = [path]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir():
                    stack.append(Path(entry.path))
                elif not entry.is_file():
                    try:
                        _require_regular(Path(entry.path))
                    except FileNotFoundError:
                        raise InputFileError(f"zarr store {_name(path)} holds {entry.name}, a link to a missing "
                                             "file") from None
                    except InputFileError as exc:
                        raise InputFileError(f"zarr store {_name(path)}: {exc}") from None
                    raise InputFileError(f"zarr store {_name(path)} holds {entry.name}, which is not a regular file")


def _open_zarr(path: Path):
    import zarr

    if not path.is_dir():
        raise InputFileError(f"{_name(path)} is a file, but a zarr store is a folder (zipped stores are not read)")
    if not any((path / m).exists() for m in _ZARR_MARKERS):
        raise InputFileError(f"{_name(path)} holds no zarr metadata ({', '.join(_ZARR_MARKERS)}); it is not a zarr "
                             "store")
    _check_store_entries(path)
    try:
        return zarr.open(os.fspath(path), mode="r")
    except _ZARR_ERRORS as exc:
        raise InputFileError(f"could not read {_name(path)} as a zarr store: {_short(exc, path=path)}") from None


def _zarr_arrays(root) -> list[tuple[str, tuple[int, ...], str]]:
    import zarr

    if isinstance(root, zarr.Array):
        return [("/", tuple(int(n) for n in root.shape), str(root.dtype))]
    found = [
        ("/" + name.strip("/"), tuple(int(n) for n in obj.shape), str(obj.dtype))
        for name, obj in root.members(max_depth=None)
        if isinstance(obj, zarr.Array)
    ]
    return sorted(found)


@register("zarr", target="any", options=("dataset",))
def read_zarr(path: Path, opts: ReadOptions) -> Loaded:
    dataset = opts.dataset
    import zarr

    fname = _name(path)
    root = _open_zarr(path)
    if isinstance(root, zarr.Array):
        if dataset is not None and dataset.strip("/"):
            raise InputFileError(f"{fname} is a single zarr array and has no dataset {dataset!r}")
        name = "/"
    else:
        name = pick_array(path, root, dataset)
    where = fname if name == "/" else f"array {name} of {fname}"
    declared = None
    try:
        arr, levels = _array_and_attrs(root, name)
        _zyx_shape(tuple(arr.shape), where)  # 1D, 4D+ and empty refused before reading
        declared = int(np.prod(arr.shape, dtype=np.int64)) * np.dtype(arr.dtype).itemsize
        if np.dtype(arr.dtype).kind not in "biuf":
            raise InputFileError(f"{where} holds data of dtype {arr.dtype}; expected integer or floating-point voxels")
        data = np.asarray(arr[...])
    except InputFileError:
        raise
    except MemoryError as exc:
        raise _memory_error(fname, "zarr", exc, declared) from None
    except _ZARR_ERRORS as exc:
        raise InputFileError(f"could not read {where} as zarr: {_short(exc, path=path)}") from None
    data = _check_numeric(data, where)
    spacing, notes = _zarr_spacing(levels, name)
    meta = {"dataset": name, **notes}
    source = os.fspath(path) if name == "/" else f"{path}::{name}"
    return Loaded(_to_zyx(data, where), spacing, meta, source)
