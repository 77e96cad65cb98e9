"""core.chunked.open_lazy: every input format as a lazily chunked dask array, equal to core.io.load_volume."""

from __future__ import annotations

import math
import os
import pickle
from pathlib import Path

import dask
import h5py
import numpy as np
import pytest
import tifffile
import zarr
from PIL import Image

from core.chunked import as_dask, inputs, open_lazy
from core.io import InputFileError, load_volume, save_tiff

SHAPE = (24, 40, 56)
CHUNKS = (8, 16, 16)


def volume(dtype=np.uint16) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 250, SHAPE).astype(dtype)


def _write(kind: str, tmp_path, data):
    """Write ``data`` as ``kind``; returns (path, keyword arguments of both loaders)."""
    if kind == "npy":
        np.save(tmp_path / "v.npy", data)
        return tmp_path / "v.npy", {}
    if kind == "npy-fortran":
        np.save(tmp_path / "v.npy", np.asfortranarray(data))
        return tmp_path / "v.npy", {}
    if kind == "raw-big-endian":
        data.astype(data.dtype.newbyteorder(">")).tofile(tmp_path / "v.raw")
        return tmp_path / "v.raw", {"shape": data.shape, "dtype": data.dtype.name, "byte_order": ">"}
    if kind == "raw-offset":
        with open(tmp_path / "v.raw", "wb") as f:
            f.write(b"H" * 64)
            f.write(data.tobytes())
        return tmp_path / "v.raw", {"shape": data.shape, "dtype": data.dtype.name, "offset": 64}
    if kind == "tiff-imagej":
        save_tiff(tmp_path / "v.tif", data, (0.5, 0.25, 0.25), compress=False)
        return tmp_path / "v.tif", {}
    if kind == "tiff-tiled-zlib":
        tifffile.imwrite(tmp_path / "v.tif", data, compression="zlib", tile=(16, 16))
        return tmp_path / "v.tif", {}
    if kind == "ome-tiff":
        tifffile.imwrite(tmp_path / "v.ome.tif", data, compression="zlib", metadata={
            "axes": "ZYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2, "PhysicalSizeZ": 0.3})
        return tmp_path / "v.ome.tif", {}
    if kind == "slices-tif":
        (tmp_path / "s").mkdir()
        for i, plane in enumerate(data):
            tifffile.imwrite(tmp_path / "s" / f"slice{i}.tif", plane)
        return tmp_path / "s", {}
    if kind == "slices-png":
        (tmp_path / "s").mkdir()
        for i, plane in enumerate(data.astype(np.uint8)):
            Image.fromarray(plane).save(tmp_path / "s" / f"slice{i}.png")
        return tmp_path / "s", {}
    if kind == "hdf5":
        with h5py.File(tmp_path / "v.h5", "w") as f:
            f.create_dataset("other", data=np.zeros(3))
            ds = f.create_dataset("entry/data", data=data, chunks=(8, 8, 8), compression="gzip")
            ds.attrs["element_size_um"] = [1.5, 0.5, 0.5]
        return tmp_path / "v.h5", {}
    if kind == "zarr":
        root = zarr.open_group(tmp_path / "v.zarr", mode="w")
        arr = root.create_array("img", shape=data.shape, dtype=data.dtype, chunks=(10, 10, 10))
        arr[...] = data
        arr.attrs["voxel_size_um"] = [0.7, 0.7, 0.7]
        return tmp_path / "v.zarr", {}
    raise AssertionError(kind)


KINDS = ["npy", "npy-fortran", "raw-big-endian", "raw-offset", "tiff-imagej", "tiff-tiled-zlib", "ome-tiff",
         "slices-tif", "slices-png", "hdf5", "zarr"]


@pytest.mark.parametrize("kind", KINDS)
def test_open_lazy_equals_load_volume(tmp_path, kind):
    data = volume()
    path, kw = _write(kind, tmp_path, data)
    eager = load_volume(path, **kw)
    lazy = open_lazy(path, chunks=CHUNKS, **kw)
    assert lazy.data.shape == eager.data.shape == SHAPE
    assert lazy.data.chunksize == CHUNKS
    assert lazy.data.dtype == eager.data.dtype
    assert lazy.spacing == eager.spacing and lazy.spacing_from_metadata == eager.spacing_from_metadata
    assert lazy.fmt == eager.fmt and lazy.source == eager.source
    got = lazy.data.compute(scheduler="sync")
    np.testing.assert_array_equal(got, eager.data)
    assert got.dtype.isnative


@pytest.mark.parametrize("kind", ["npy", "tiff-imagej", "tiff-tiled-zlib", "hdf5", "zarr", "slices-tif"])
def test_open_lazy_graph_carries_no_voxels(tmp_path, kind):
    """The task graph holds the path and how to read it, not the voxels: it pickles to far less than a chunk."""
    data = volume()
    path, kw = _write(kind, tmp_path, data)
    lazy = open_lazy(path, chunks=CHUNKS, **kw)
    chunk_bytes = math.prod(CHUNKS) * data.itemsize
    assert len(pickle.dumps(dict(lazy.data.__dask_graph__()))) < chunk_bytes
    # one chunk computes alone, with the chunk's shape and values
    block = lazy.data.blocks[1, 2, 3].compute(scheduler="sync")
    np.testing.assert_array_equal(block, data[8:16, 32:40, 48:56])


def test_open_lazy_reads_only_the_chunks_asked(tmp_path, monkeypatch):
    data = volume()
    path, _ = _write("npy", tmp_path, data)
    lazy = open_lazy(path, chunks=CHUNKS)
    reads = []
    original = inputs._MemmapSource._read
    monkeypatch.setattr(inputs._MemmapSource, "_read", lambda self, key: reads.append(key) or original(self, key))
    lazy.data[0:8, 0:16, 0:16].compute(scheduler="sync")
    assert len(reads) == 1
    assert tuple(s.stop - s.start for s in reads[0]) == CHUNKS


def test_open_lazy_bool_raw_is_uint8_and_2d_tiff_is_depth_1(tmp_path):
    mask = volume() > 120
    mask.tofile(tmp_path / "m.raw")
    lazy = open_lazy(tmp_path / "m.raw", shape=SHAPE, dtype="bool", chunks=16)
    assert lazy.data.dtype == np.uint8
    np.testing.assert_array_equal(lazy.data.compute(scheduler="sync"), mask.astype(np.uint8))
    tifffile.imwrite(tmp_path / "p.tif", volume()[0])
    flat = open_lazy(tmp_path / "p.tif", chunks=16)
    assert flat.shape == (1,) + SHAPE[1:]
    np.testing.assert_array_equal(flat.data.compute(scheduler="sync")[0], volume()[0])


def _truncated_npy(tmp_path):
    np.save(tmp_path / "t.npy", volume())
    raw = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(raw[:-100])
    return tmp_path / "t.npy", {}


def _short_raw(tmp_path):
    volume().tofile(tmp_path / "r.raw")
    return tmp_path / "r.raw", {"shape": (25, 40, 56), "dtype": "uint16"}


def _truncated_tiff(tmp_path):
    save_tiff(tmp_path / "t.tif", volume(), 1.0, compress=False)
    raw = (tmp_path / "t.tif").read_bytes()
    (tmp_path / "t.tif").write_bytes(raw[: len(raw) // 2])
    return tmp_path / "t.tif", {}


def _two_datasets(tmp_path):
    with h5py.File(tmp_path / "two.h5", "w") as f:
        f.create_dataset("a", data=volume())
        f.create_dataset("b", data=volume())
    return tmp_path / "two.h5", {}


def _rgb_slices(tmp_path):
    (tmp_path / "rgb").mkdir()
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[..., 2] = 9  # channels that differ (equal ones are read as their grey)
    Image.fromarray(colour).save(tmp_path / "rgb" / "s0.png")
    return tmp_path / "rgb", {}


@pytest.mark.parametrize("make", [_truncated_npy, _short_raw, _truncated_tiff, _two_datasets, _rgb_slices])
def test_open_lazy_refuses_what_load_volume_refuses_with_its_sentence(tmp_path, make):
    path, kw = make(tmp_path)
    with pytest.raises(InputFileError) as eager:
        load_volume(path, **kw)
    with pytest.raises(InputFileError) as lazy:
        open_lazy(path, **kw)
    assert str(lazy.value) == str(eager.value)


def test_open_lazy_checks_its_arguments(tmp_path):
    np.save(tmp_path / "v.npy", volume())
    with pytest.raises(ValueError, match="positive"):
        open_lazy(tmp_path / "v.npy", chunks=0)
    with pytest.raises(ValueError, match="three"):
        open_lazy(tmp_path / "v.npy", chunks=(8, 8))
    with pytest.raises(TypeError, match="chunks"):
        open_lazy(tmp_path / "v.npy", chunks="big")
    with pytest.raises(FileNotFoundError):
        open_lazy(tmp_path / "missing.npy")
    with pytest.raises(ValueError, match="only applies to raw"):
        open_lazy(tmp_path / "v.npy", shape=(1, 2, 3))


def test_as_dask_numpy_and_input_untouched():
    data = volume()
    before = data.copy()
    d = as_dask(data, 16)
    assert d.chunksize == (16, 16, 16)
    with dask.config.set(scheduler="sync"):
        np.testing.assert_array_equal((d + 1).compute(), before + 1)
    np.testing.assert_array_equal(data, before)
    with pytest.raises(ValueError, match="3D"):
        as_dask(np.zeros((4, 4)), 2)


REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real"


@pytest.mark.parametrize("rel", ["nmc_calendered_3phase/nmc-1-cal_generatedCBD_bridge.tif",
                                 "nanoct_nmc_slices/raw_1.tif"])
def test_open_lazy_real_files(rel):
    path = REAL / rel
    if not path.exists():
        pytest.skip(f"real data not available: {rel}")
    eager = load_volume(path)
    lazy = open_lazy(path, chunks=(32, 1024, 1024))  # whole planes: each compressed page decoded once
    assert lazy.spacing == eager.spacing
    np.testing.assert_array_equal(lazy.data.compute(scheduler="sync"), eager.data)


def test_tiff_is_opened_once_per_process_and_again_when_it_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "_TIFF_OPEN", {})
    data = volume()
    path, _ = _write("tiff-tiled-zlib", tmp_path, data)
    lazy = open_lazy(path, chunks=CHUNKS)
    np.testing.assert_array_equal(lazy.data.compute(scheduler="sync"), data)
    assert len(inputs._TIFF_OPEN) == 1  # 36 chunks, one open file
    tifffile.imwrite(path, data[::-1].copy(), compression="zlib", tile=(16, 16))
    os.utime(path, ns=(1, 1))  # a new modification time: a new token
    again = open_lazy(path, chunks=CHUNKS)
    np.testing.assert_array_equal(again.data.compute(scheduler="sync"), data[::-1])
    assert len(inputs._TIFF_OPEN) == 2


def test_tiffs_open_for_lazy_reads_are_closed_at_exit(tmp_path):
    """A process that read a TIFF lazily ends without an unclosed-file ResourceWarning (the per-process cache of open
    files is closed at exit)."""
    import subprocess
    import sys

    from core.io import save_tiff

    save_tiff(tmp_path / "v.tif", np.arange(4 * 8 * 8, dtype=np.uint16).reshape(4, 8, 8), (1.0, 1.0, 1.0))
    code = ("from core.chunked import open_lazy_array\n"
            f"arr, _ = open_lazy_array({str(tmp_path / 'v.tif')!r})\n"
            "assert arr[0:2, 0:3, 0:3].shape == (2, 3, 3)\n")
    proc = subprocess.run([sys.executable, "-W", "always::ResourceWarning", "-c", code], capture_output=True,
                          text=True, cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    assert proc.returncode == 0, proc.stderr
    assert "ResourceWarning" not in proc.stderr


def test_a_folder_of_images_and_their_labels_says_its_kinds_of_slice_read_whole_or_lazily(tmp_path):
    """A folder holding two acquisitions' images and their label images (the real nano-CT folder's layout): both
    readers name the kinds (size, type, a few names, the largest first) and what to do, in one sentence."""
    d = tmp_path / "nanoct"
    d.mkdir()
    for i in range(4):
        tifffile.imwrite(d / f"raw_{i}.tif", np.zeros((6, 7), np.float32))
        tifffile.imwrite(d / f"raw_{i}_label.tif", np.zeros((6, 7), np.uint8))
    for i in range(10, 13):
        tifffile.imwrite(d / f"raw_{i}.tif", np.zeros((5, 4), np.float32))
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(d / "raw_99.png")
    with pytest.raises(InputFileError) as eager:
        load_volume(d)
    said = str(eager.value)
    assert said.startswith("slice folder nanoct holds slices of 4 kinds, not one: 4 float32 of 6×7 (raw_0.tif, "
                           "raw_1.tif, …), 4 uint8 of 6×7 (raw_0_label.tif, raw_1_label.tif, …), 3 float32 of 5×4 "
                           "(raw_10.tif, raw_11.tif, …) and 1 more kind; ")
    assert said.endswith("open the folder and pick one file, or keep one kind of slice in it")
    with pytest.raises(InputFileError) as lazy:
        open_lazy(d).data.compute(scheduler="sync")
    assert str(lazy.value) == said


def test_a_mixed_slice_folder_is_refused_on_opening_before_any_plane_is_read(tmp_path):
    """Opening a slice folder lazily reads a few headers spread over it: a folder whose later slices differ from
    the first is refused there (the add form showed the first slice's size as the volume's), with the kinds; a
    folder of one kind opens, bilevel PNGs and big-endian TIFFs included (read as uint8 / native uint16)."""
    d = tmp_path / "mixed"
    d.mkdir()
    for i in range(12):
        tifffile.imwrite(d / f"s{i}.tif", np.zeros((6, 7), np.uint16))
    tifffile.imwrite(d / "s12.tif", np.zeros((6, 7), np.float32))
    with pytest.raises(InputFileError, match=r"2 kinds, not one: 12 uint16 of 6×7 \(s0\.tif, s1\.tif, …\) and 1 "
                                             r"float32 of 6×7 \(s12\.tif\)"):
        open_lazy(d)
    for name, write in {"bilevel": lambda p, i: Image.fromarray(np.full((4, 5), 200 * (i % 2), np.uint8))
                        .convert("1").save(p.with_suffix(".png")),
                        "big-endian": lambda p, i: tifffile.imwrite(p, np.full((4, 5), 300 + i, ">u2"),
                                                                  byteorder=">")}.items():
        f = tmp_path / name
        f.mkdir()
        for i in range(4):
            write(f / f"s{i}.tif", i)
        got = open_lazy(f).data.compute(scheduler="sync")
        assert got.shape == (4, 4, 5) and got.dtype == (np.uint8 if name == "bilevel" else np.uint16)
        np.testing.assert_array_equal(got, load_volume(f).data)
