"""Chunked volumes out: a Zarr v3 store written chunk by chunk, with OME-Zarr metadata.

The store is an OME-Zarr 0.5 image: a group whose ``ome`` attribute holds
one ``multiscales`` entry (axes z, y, x in micrometres, one dataset ``"0"``
with its ``scale`` = the voxel size in µm), and the array ``"0"``
(``dimension_names`` z, y, x; chunks = the dask chunks).  The array also
carries ``voxel_size_um``, which :func:`core.io.load_volume` and
:func:`~core.chunked.open_lazy` read back as the spacing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._validate import normalize_spacing

__all__ = ["OME_ZARR_VERSION", "create_zarr", "ome_multiscales", "write_zarr"]

#: The OME-Zarr (NGFF) version written: 0.5 is the one on Zarr v3.
OME_ZARR_VERSION = "0.5"


def ome_multiscales(spacing, name: str) -> dict:
    """The ``ome`` group attribute of a one-level (Z, Y, X) image of voxel size ``spacing`` (µm)."""
    sp = normalize_spacing(spacing)
    axes = [{"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"]
    return {
        "version": OME_ZARR_VERSION,
        "multiscales": [{
            "name": str(name),
            "axes": axes,
            "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": list(sp)}]}],
        }],
    }


def write_zarr(array, path: str | os.PathLike, *, spacing, name: str = "volume", overwrite: bool = False) -> Path:
    """Write a (Z, Y, X) dask array to a new Zarr v3 OME-Zarr store, chunk by chunk.

    The chunks are computed and written by the current dask scheduler (the
    workers of :func:`~core.chunked.cluster`, which must see ``path``); no
    volume-sized array is ever held.

    Parameters
    ----------
    array : (Z, Y, X) dask.array.Array or ndarray
        A numpy array is written in chunks of at most 128³.
    path : str or path-like
        The store (a folder, conventionally ``*.zarr``); its parent must exist.
    spacing : float or (3,) float, µm
    name : str
        The image's name in the metadata.
    overwrite : bool
        Replace an existing store at ``path``; otherwise one there is refused.

    Returns
    -------
    Path
        ``path``; the array is at ``path/0``.
    """
    import dask.array as da

    sp = normalize_spacing(spacing)
    p = Path(os.path.expanduser(os.fspath(path)))
    if not p.parent.is_dir():
        raise ValueError(f"the folder of {p.name} ({p.parent}) does not exist")
    if p.exists() and not overwrite:
        raise ValueError(f"{p.name} already exists: choose a new path or pass overwrite=True")
    if not isinstance(array, da.Array):
        array = da.from_array(np.asarray(array), chunks=128)
    if array.ndim != 3:
        raise ValueError(f"array must be 3D (z, y, x), got shape {array.shape}")
    chunk = tuple(int(c) for c in array.chunksize)
    if any(len(set(c[:-1])) > 1 or c[-1] > c[0] for c in array.chunks):  # zarr needs regular chunks
        array = array.rechunk(chunk)
    target = create_zarr(p, array.shape, array.dtype, chunk, spacing=sp, name=name, overwrite=overwrite)
    da.store(array, target, lock=False, compute=True)
    return p


def create_zarr(path: str | os.PathLike, shape, dtype, chunks, *, spacing, name: str = "volume",
                overwrite: bool = False):
    """A new, empty (fill 0) Zarr v3 OME-Zarr store of the layout :func:`write_zarr` writes; returns its array.

    For tasks that write their chunks themselves (``zarr.open_array(path / "0", mode="r+")[slices] = ...``,
    each task whole chunks only).

    Parameters
    ----------
    path : str or path-like
        The store; its parent must exist.
    shape : (3,) int
    dtype : numpy dtype
    chunks : (3,) int
    spacing : float or (3,) float, µm
    name : str
    overwrite : bool

    Returns
    -------
    zarr.Array
        The array at ``path/0``.
    """
    import zarr

    sp = normalize_spacing(spacing)
    p = Path(os.path.expanduser(os.fspath(path)))
    if not p.parent.is_dir():
        raise ValueError(f"the folder of {p.name} ({p.parent}) does not exist")
    if len(tuple(shape)) != 3 or len(tuple(chunks)) != 3:
        raise ValueError(f"shape and chunks must be 3D (z, y, x), got {tuple(shape)} and {tuple(chunks)}")
    group = zarr.open_group(os.fspath(p), mode="w" if overwrite else "w-", zarr_format=3)
    group.attrs["ome"] = ome_multiscales(sp, name)
    return group.create_array("0", shape=tuple(int(n) for n in shape), dtype=np.dtype(dtype),
                              chunks=tuple(int(c) for c in chunks), dimension_names=("z", "y", "x"),
                              attributes={"voxel_size_um": list(sp)})
