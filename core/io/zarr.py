"""zarr v2 / v3 stores: one array, its voxel size from attributes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._common import Loaded, ReadOptions, _check_numeric, _short, _to_zyx
from ._registry import register
from .hdf5 import _pick_dataset, _spacing_from_attrs


def _open_zarr(path: Path):
    import zarr

    try:
        return zarr.open(os.fspath(path), mode="r")
    except Exception as exc:
        raise ValueError(f"could not read {path} as zarr: {_short(exc)}") from exc


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

    root = _open_zarr(path)
    if isinstance(root, zarr.Array):
        if dataset is not None and dataset.strip("/"):
            raise ValueError(f"{path} is a single zarr array and has no dataset {dataset!r}")
        name = "/"
    else:
        name = _pick_dataset(path, _zarr_arrays(root), dataset)
    try:
        if name == "/":
            arr, levels = root, [("/", dict(root.attrs))]
        else:
            arr = root[name.strip("/")]
            parts = name.strip("/").split("/")
            levels = [(name, dict(arr.attrs))]
            for i in range(len(parts) - 1, 0, -1):
                group_path = "/".join(parts[:i])
                levels.append(("/" + group_path, dict(root[group_path].attrs)))
            levels.append(("/", dict(root.attrs)))
        data = np.asarray(arr[...])
    except Exception as exc:
        raise ValueError(f"could not read dataset {name} of {path} as zarr: {_short(exc)}") from exc
    where = os.fspath(path) if name == "/" else f"{path}::{name}"
    data = _check_numeric(data, where)
    spacing, notes = _spacing_from_attrs(levels)
    meta = {"dataset": name, **notes}
    return Loaded(_to_zyx(data, where), spacing, meta, where)
