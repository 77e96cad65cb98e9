"""Bad input files and input specs through the CLI: exit 2, one sentence naming the file, nothing written.

Each case builds a tiny bad input (a few KB) in ``tmp_path / "in"`` and runs ``python -m core`` in-process.
A few valid counterparts must exit 0, so the corpus cannot pass by refusing everything.
Issue 16 ("every bad input refused cleanly"): readers and input validation.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import signal
import socket
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
import zarr
from PIL import Image

from core import cli
from core.io import save_tiff
from core.pipeline import AnalysisParams

# --------------------------------------------------------------------------- inputs


def _volume(shape=(8, 16, 16), dtype=np.uint16) -> np.ndarray:
    """A small ramp: content for files that are refused before their voxels matter."""
    return (np.arange(int(np.prod(shape))) % 251).astype(dtype).reshape(shape)


def _grey() -> np.ndarray:
    """A 24³ demo greyscale with pore, CBD and NMC (what the valid counterparts analyse)."""
    from core.synth import demo_electrode

    return demo_electrode("pristine", rng=1, shape=(24, 24, 24)).greyscale


def _ij_stack(path: Path, data: np.ndarray) -> bytes:
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "ZYX"})
    return path.read_bytes()


def _npy_with_header(path: Path, header_shape, data: np.ndarray) -> None:
    """An .npy whose header declares ``header_shape`` but which holds ``data``'s bytes."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": np.lib.format.dtype_to_descr(data.dtype), "fortran_order": False, "shape": header_shape})
        f.write(data.tobytes())


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _socket(path: Path) -> Path:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(os.fspath(path))
    s.close()  # the socket file stays on disk
    return path


def _recipe(path: Path, input_: dict, spacing=(0.4, 0.4, 0.4)) -> Path:
    path.write_text(json.dumps({
        "recipe_version": 1, "package_version": "0.1.0",
        "analyses": [{"name": "a", "input": input_, "spacing_um": spacing, "params": AnalysisParams().to_dict()}],
    }))
    return path


def _slices(folder: Path, images: dict[str, np.ndarray]) -> Path:
    folder.mkdir()
    for name, img in images.items():
        if name.endswith(".png"):
            Image.fromarray(img).save(folder / name)
        else:
            tifffile.imwrite(folder / name, img)
    return folder


def _zarr_array(path: Path, data: np.ndarray, **kw):
    arr = zarr.create_array(os.fspath(path), shape=data.shape, dtype=data.dtype, **kw)
    arr[...] = data
    return arr


# Every builder takes the input folder and returns the CLI arguments (without --out).
def c_tiff_truncated_imagej(d):
    b = _ij_stack(d / "full.tif", _volume((8, 64, 64), np.uint8))
    (d / "full.tif").unlink()
    (d / "stack.tif").write_bytes(b[: 64 * 64 * 3 + 500])
    return ["analyze", d / "stack.tif"]


def c_tiff_truncated_pages(d):
    tifffile.imwrite(d / "full.tif", _volume((8, 64, 64), np.uint8))
    b = (d / "full.tif").read_bytes()
    (d / "full.tif").unlink()
    (d / "pages.tif").write_bytes(b[: 64 * 64 * 3 + 500])
    return ["analyze", d / "pages.tif"]


def c_tiff_truncated_compressed(d):
    save_tiff(d / "full.tif", _volume(), 1.0)
    b = (d / "full.tif").read_bytes()
    (d / "full.tif").unlink()
    (d / "zip.tif").write_bytes(b[: len(b) // 2])
    return ["analyze", d / "zip.tif"]


def c_tiff_corrupt_deflate(d):
    tifffile.imwrite(d / "bad.tif", _volume((8, 64, 64), np.uint8), compression="zlib")
    b = bytearray((d / "bad.tif").read_bytes())
    with tifffile.TiffFile(d / "bad.tif") as tif:
        off = tif.pages[0].dataoffsets[0]
    b[off + 4: off + 60] = b"\xff" * 56
    (d / "bad.tif").write_bytes(bytes(b))
    return ["analyze", d / "bad.tif"]


def c_tiff_truncated_single_page(d):
    tifffile.imwrite(d / "full.tif", np.ones((128, 128), np.uint16))
    b = (d / "full.tif").read_bytes()
    (d / "full.tif").unlink()
    (d / "one.tif").write_bytes(b[: len(b) // 2])
    return ["analyze", d / "one.tif"]


def c_tiff_truncated_tiles(d):
    tifffile.imwrite(d / "full.tif", _volume((2, 64, 64)), tile=(32, 32))
    b = (d / "full.tif").read_bytes()
    (d / "full.tif").unlink()
    (d / "tiles.tif").write_bytes(b[: len(b) - 9000])
    return ["analyze", d / "tiles.tif"]


def c_tiff_text(d):
    (d / "notes.tif").write_text("this is not a TIFF\n")
    return ["analyze", d / "notes.tif"]


def c_tiff_empty(d):
    (d / "empty.tif").write_bytes(b"")
    return ["analyze", d / "empty.tif"]


def c_tiff_rgb(d):
    tifffile.imwrite(d / "rgb.tif", np.zeros((16, 16, 3), np.uint8), photometric="rgb")
    return ["analyze", d / "rgb.tif"]


def c_tiff_4d(d):
    tifffile.imwrite(d / "time.tif", np.zeros((2, 3, 8, 8), np.uint8), imagej=True, metadata={"axes": "TZYX"})
    return ["analyze", d / "time.tif"]


def c_tiff_complex(d):
    tifffile.imwrite(d / "complex.tif", np.zeros((2, 8, 8), np.complex64))
    return ["analyze", d / "complex.tif"]


def c_tiff_fifo(d):
    return ["analyze", _fifo(d / "pipe.tif")]


def c_tiff_socket(d):
    return ["analyze", _socket(d / "s.tif")]


def c_tiff_device(d):
    (d / "zero.tif").symlink_to("/dev/zero")
    return ["analyze", d / "zero.tif"]


def c_npy_header_smaller(d):
    _npy_with_header(d / "half.npy", (4, 16, 16), _volume())
    return ["analyze", d / "half.npy"]


def c_npy_header_larger(d):
    _npy_with_header(d / "short.npy", (16, 16, 16), _volume())
    return ["analyze", d / "short.npy"]


def c_npy_text(d):
    (d / "text.npy").write_text("0 1 2\n3 4 5\n")
    return ["analyze", d / "text.npy"]


def c_npy_pickle(d):
    np.save(d / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return ["analyze", d / "objects.npy"]


def c_npy_1d(d):
    np.save(d / "line.npy", np.arange(64, dtype=np.uint16))
    return ["analyze", d / "line.npy"]


def c_tiff_1d(d):
    import tifffile

    tifffile.imwrite(d / "line.tif", np.arange(100, dtype=np.uint16))  # axes "X": once read as 1×100×100
    return ["analyze", d / "line.tif"]


def c_npy_empty(d):
    np.save(d / "none.npy", np.zeros((0, 8, 8), np.uint16))
    return ["analyze", d / "none.npy"]


def c_npy_strings(d):
    np.save(d / "words.npy", np.array([["ab", "cd"], ["ef", "gh"]]))
    return ["analyze", d / "words.npy"]


def c_npy_fifo(d):
    return ["analyze", _fifo(d / "pipe.npy")]


def c_raw_too_small(d):
    (d / "small.raw").write_bytes(b"\0" * 100)
    return ["analyze", d / "small.raw", "--raw-shape", "4", "4", "4", "--raw-dtype", "uint16"]


def c_raw_too_large(d):
    (d / "large.raw").write_bytes(b"\0" * 1000)
    return ["analyze", d / "large.raw", "--raw-shape", "4", "4", "4", "--raw-dtype", "uint16"]


def c_raw_offset_beyond(d):
    (d / "head.raw").write_bytes(b"\0" * 128)
    return ["analyze", d / "head.raw", "--raw-shape", "4", "4", "4", "--raw-dtype", "uint16", "--raw-offset", "500"]


def c_raw_bad_dtype(d):
    (d / "odd.raw").write_bytes(b"\0" * 128)
    return ["analyze", d / "odd.raw", "--raw-shape", "4", "4", "4", "--raw-dtype", "uint17"]


def c_raw_complex(d):
    (d / "cplx.raw").write_bytes(b"\0" * 512)
    return ["analyze", d / "cplx.raw", "--raw-shape", "4", "4", "4", "--raw-dtype", "complex64"]


def c_raw_zero_shape(d):
    (d / "zero.raw").write_bytes(b"\0" * 128)
    return ["analyze", d / "zero.raw", "--raw-shape", "0", "4", "4", "--raw-dtype", "uint16"]


def c_raw_absurd_shape(d):
    (d / "huge.raw").write_bytes(b"\0" * 128)
    return ["analyze", d / "huge.raw", "--raw-shape", "100000", "100000", "100000", "--raw-dtype", "uint16"]


def c_raw_negative_offset(d):
    (d / "neg.raw").write_bytes(b"\0" * 128)
    return ["analyze", d / "neg.raw", "--raw-shape", "4", "4", "4", "--raw-dtype", "uint16", "--raw-offset", "-5"]


def c_dataset_on_tiff(d):
    save_tiff(d / "vol.tif", _volume(), 1.0)
    return ["analyze", d / "vol.tif", "--dataset", "raw"]


def c_raw_no_shape(d):
    (d / "plain.raw").write_bytes(b"\0" * 128)
    return ["analyze", d / "plain.raw"]


def c_raw_fifo(d):
    return ["analyze", _fifo(d / "pipe.raw"), "--raw-shape", "4", "4", "4", "--raw-dtype", "uint16"]


def c_raw_options_on_tiff(d):
    save_tiff(d / "vol.tif", _volume(), 1.0)
    return ["analyze", d / "vol.tif", "--raw-dtype", "uint16"]


def _h5(d, name="scan.h5", **datasets):
    with h5py.File(d / name, "w") as f:
        for key, value in datasets.items():
            f.create_dataset(key.replace("__", "/"), data=value)
    return d / name


def c_h5_missing_dataset(d):
    return ["analyze", _h5(d, raw=_volume()), "--dataset", "recon"]


def c_h5_group(d):
    return ["analyze", _h5(d, entry__raw=_volume()), "--dataset", "entry"]


def c_h5_1d(d):
    return ["analyze", _h5(d, energy=np.arange(10.0)), "--dataset", "energy"]


def c_h5_4d(d):
    return ["analyze", _h5(d, series=np.zeros((2, 3, 8, 8), np.uint16))]


def c_h5_strings(d):
    with h5py.File(d / "text.h5", "w") as f:
        f.create_dataset("names", data=np.array([[b"ab", b"cd"], [b"ef", b"gh"]]))
    return ["analyze", d / "text.h5", "--dataset", "names"]


def c_h5_two_images(d):
    return ["analyze", _h5(d, a=_volume(), b=_volume())]


def c_h5_text(d):
    (d / "notes.h5").write_text("not HDF5\n")
    return ["analyze", d / "notes.h5"]


def c_h5_truncated(d):
    path = _h5(d, name="full.h5", raw=_volume((8, 32, 32)))
    b = path.read_bytes()
    path.unlink()
    (d / "cut.h5").write_bytes(b[: len(b) // 2])
    return ["analyze", d / "cut.h5"]


def c_h5_external(d):
    (d / "pixels.bin").write_bytes(_volume().tobytes())
    with h5py.File(d / "ext.h5", "w") as f:
        f.create_dataset("raw", shape=(8, 16, 16), dtype=np.uint16, external=[("pixels.bin", 0, 8 * 16 * 16 * 2)])
    return ["analyze", d / "ext.h5"]


def c_zarr_missing_array(d):
    root = zarr.open_group(os.fspath(d / "store.zarr"), mode="w")
    root.create_array("vol", shape=(8, 16, 16), dtype=np.uint16)
    return ["analyze", d / "store.zarr", "--dataset", "mask"]


def c_zarr_1d(d):
    _zarr_array(d / "line.zarr", np.arange(64, dtype=np.uint16))
    return ["analyze", d / "line.zarr"]


def c_zarr_empty_folder(d):
    (d / "blank.zarr").mkdir()
    return ["analyze", d / "blank.zarr"]


def c_zarr_file(d):
    (d / "flat.zarr").write_text("not a folder\n")
    return ["analyze", d / "flat.zarr"]


def c_zarr_bad_metadata(d):
    (d / "broken.zarr").mkdir()
    (d / "broken.zarr" / "zarr.json").write_text("{not json")
    return ["analyze", d / "broken.zarr"]


def c_zarr_corrupt_chunk(d):
    _zarr_array(d / "chunk.zarr", _volume(), chunks=(8, 16, 16))
    chunk = next(p for p in (d / "chunk.zarr").rglob("*") if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(b"garbage" * 10)
    return ["analyze", d / "chunk.zarr"]


def c_zarr_fifo_chunk(d):
    _zarr_array(d / "pipe.zarr", _volume(), chunks=(4, 16, 16))
    chunk = next(p for p in (d / "pipe.zarr").rglob("*") if p.is_file() and p.name != "zarr.json")
    chunk.unlink()
    _fifo(chunk)
    return ["analyze", d / "pipe.zarr"]


def c_slices_dangling_link(d):
    _slices(d / "slices", {"s1.tif": np.zeros((8, 8), np.uint8)})
    (d / "slices" / "s2.tif").symlink_to(d / "gone.tif")
    return ["analyze", d / "slices"]


def c_slices_empty(d):
    (d / "slices").mkdir()
    return ["analyze", d / "slices"]


def c_slices_mixed_shapes(d):
    _slices(d / "slices", {"s1.tif": np.zeros((8, 8), np.uint8), "s2.tif": np.zeros((8, 9), np.uint8)})
    return ["analyze", d / "slices"]


def c_slices_mixed_dtypes(d):
    _slices(d / "slices", {"s1.tif": np.zeros((8, 8), np.uint8), "s2.tif": np.zeros((8, 8), np.uint16)})
    return ["analyze", d / "slices"]


def c_slices_text_png(d):
    _slices(d / "slices", {"s1.png": np.zeros((8, 8), np.uint8)})
    (d / "slices" / "s2.png").write_text("not a PNG\n")
    return ["analyze", d / "slices"]


def c_slices_truncated_png(d):
    _slices(d / "slices", {"s1.png": np.zeros((8, 8), np.uint8), "s2.png": _volume((1, 64, 64), np.uint8)[0]})
    b = (d / "slices" / "s2.png").read_bytes()
    (d / "slices" / "s2.png").write_bytes(b[: len(b) // 2])
    return ["analyze", d / "slices"]


def c_slices_fifo(d):
    _slices(d / "slices", {"s1.tif": np.zeros((8, 8), np.uint8)})
    _fifo(d / "slices" / "s2.tif")
    return ["analyze", d / "slices"]


def c_slices_stack_inside(d):
    _slices(d / "slices", {"s1.tif": np.zeros((8, 8), np.uint8), "s2.tif": np.zeros((5, 8, 8), np.uint8)})
    return ["analyze", d / "slices"]


def _phases(d, data, name="seg.tif"):
    save_tiff(d / name, data, 1.0)
    return d / name


def c_phase_value_not_covered(d):
    ph = np.zeros((8, 8, 8), np.uint8)
    ph[2:6, 2:6, 2:6] = 2
    ph[0, 0, 0] = 7
    return ["analyze", _phases(d, ph), "--phase-map", "0=pore,1=cbd,2=nmc"]


def c_phase_duplicate_value(d):
    return ["analyze", _phases(d, np.zeros((8, 8, 8), np.uint8)), "--phase-map", "0=pore,0=cbd,2=nmc"]


def c_phase_unknown_name(d):
    return ["analyze", _phases(d, np.zeros((8, 8, 8), np.uint8)), "--phase-map", "0=pore,1=glue,2=nmc"]


def c_phase_malformed(d):
    return ["analyze", _phases(d, np.zeros((8, 8, 8), np.uint8)), "--phase-map", "0pore,1=cbd"]


def c_phase_float_volume(d):
    ph = np.zeros((8, 8, 8), np.float32)
    ph[2:6] = 2.0
    ph[0, 0, :3] = 0.5
    return ["analyze", _phases(d, ph, "float.tif"), "--phase-map", "0=pore,1=cbd,2=nmc"]


def c_phase_nan_volume(d):
    ph = np.zeros((8, 8, 8), np.float32)
    ph[2:6] = 2.0
    ph[0, 0, 0] = np.nan
    return ["analyze", _phases(d, ph, "nan.tif"), "--phase-map", "0=pore,1=cbd,2=nmc"]


def _spacing_case(*values):
    def build(d):
        save_tiff(d / "vol.tif", _volume(), 1.0)
        return ["analyze", d / "vol.tif", "--spacing", *map(str, values)]
    return build


def c_recipe_huge_demo(d):
    return ["run", _recipe(d / "huge.json", {"demo": "pristine", "seed": 0, "shape": [100000, 100000, 100000]})]


def c_recipe_tiny_demo(d):
    return ["run", _recipe(d / "tiny.json", {"demo": "pristine", "seed": 0, "shape": [2, 2, 2]})]


def c_recipe_spacing_text(d):
    return ["run", _recipe(d / "text.json", {"demo": "pristine", "shape": [16, 16, 16]}, spacing="0.4")]


def c_recipe_spacing_tiny(d):
    return ["run", _recipe(d / "tiny_sp.json", {"demo": "pristine", "shape": [16, 16, 16]}, spacing=[1e-300] * 3)]


def c_recipe_spacing_count(d):
    return ["run", _recipe(d / "two.json", {"demo": "pristine", "shape": [16, 16, 16]}, spacing=[0.4, 0.4])]


def c_recipe_input_fifo(d):
    _fifo(d / "pipe.npy")
    return ["run", _recipe(d / "fifo.json", {"path": "pipe.npy"})]


def c_demo_size_huge(d):
    return ["demo", "--size", "100000", "--names", "pristine"]


def c_demo_size_tiny(d):
    return ["demo", "--size", "2", "--names", "pristine"]


def c_unknown_suffix(d):
    (d / "scan.xyz").write_bytes(b"\0" * 64)
    return ["analyze", d / "scan.xyz"]


def c_segment_truncated_npy(d):
    _npy_with_header(d / "seg.npy", (16, 16, 16), _volume())
    return ["segment", d / "seg.npy"]


# name -> (builder, pattern the one line must match)
CASES: dict[str, tuple] = {
    "TIFF: truncated uncompressed ImageJ stack": (
        c_tiff_truncated_imagej, r"stack\.tif: the TIFF stack declares 8 slices but the file ends after 1"),
    "TIFF: truncated multi-page file": (c_tiff_truncated_pages, r"pages\.tif is (a )?truncated"),
    "TIFF: truncated compressed stack": (c_tiff_truncated_compressed, r"zip\.tif(:| is) .*(truncated|declares)"),
    "TIFF: truncated single page": (c_tiff_truncated_single_page, r"one\.tif is truncated: its image data runs to"),
    "TIFF: truncated tiled file": (c_tiff_truncated_tiles, r"tiles\.tif is (a )?truncated"),
    "TIFF: corrupt deflate data": (c_tiff_corrupt_deflate, r"could not read bad\.tif as TIFF"),
    "TIFF: text file named .tif": (c_tiff_text, r"could not read notes\.tif as TIFF"),
    "TIFF: empty file": (c_tiff_empty, r"could not read empty\.tif as TIFF"),
    "TIFF: RGB image": (c_tiff_rgb, r"rgb\.tif has 3 channels"),
    "TIFF: 4D time series": (c_tiff_4d, r"time\.tif has 4 dimensions"),
    "TIFF: complex voxels": (c_tiff_complex, r"complex\.tif holds data of dtype complex64"),
    "TIFF: FIFO named .tif": (c_tiff_fifo, r"pipe\.tif is a named pipe \(FIFO\), not a regular file"),
    "TIFF: socket named .tif": (c_tiff_socket, r"s\.tif is a socket, not a regular file"),
    "TIFF: link to /dev/zero": (c_tiff_device, r"zero\.tif is a character device, not a regular file"),
    "NPY: header declares less than the data": (
        c_npy_header_smaller, r"half\.npy: the \.npy header declares shape \(4, 16, 16\) .* but the file has"),
    "NPY: header declares more than the data": (
        c_npy_header_larger, r"short\.npy: the \.npy header declares shape \(16, 16, 16\) .*truncated"),
    "NPY: text file named .npy": (c_npy_text, r"text\.npy is not a NumPy \.npy file"),
    "NPY: pickled objects": (c_npy_pickle, r"objects\.npy holds data of dtype object"),
    "NPY: 1D array": (c_npy_1d, r"line\.npy has 1 dimension \(shape"),
    "TIFF: 1D array": (c_tiff_1d, r"line\.tif has 1 dimension \(shape \(100,\), axes 'X'\); expected a 2D image"),
    "NPY: empty array": (c_npy_empty, r"none\.npy is empty"),
    "NPY: strings": (c_npy_strings, r"words\.npy holds data of dtype <U2"),
    "NPY: FIFO named .npy": (c_npy_fifo, r"pipe\.npy is a named pipe"),
    "raw: smaller than shape x dtype": (c_raw_too_small, r"small\.raw has 100 bytes .* needs 128 bytes"),
    "raw: larger than shape x dtype": (c_raw_too_large, r"large\.raw has 1000 bytes .* needs 128 bytes"),
    "raw: offset beyond the file": (c_raw_offset_beyond, r"head\.raw has 128 bytes, fewer than the 500-byte header"),
    "raw: unknown dtype": (c_raw_bad_dtype, r"--raw-dtype: not a numeric data type: 'uint17'"),
    "raw: complex dtype": (c_raw_complex, r"--raw-dtype: not a numeric data type: 'complex64'"),
    "raw: zero in the shape": (c_raw_zero_shape, r"--raw-shape: must be a whole number of at least 1, got 0"),
    "raw: absurd shape": (c_raw_absurd_shape, r"huge\.raw has 128 bytes .* needs 2,?000,?000,?000,?000,?000 bytes"),
    "raw: negative offset": (c_raw_negative_offset, r"--raw-offset: must be a whole number of at least 0, got -5"),
    "dataset option on a TIFF": (c_dataset_on_tiff, r"dataset only applies to HDF5 and zarr files, but vol\.tif"),
    "raw: no shape": (c_raw_no_shape, r"plain\.raw needs its shape"),
    "raw: FIFO named .raw": (c_raw_fifo, r"pipe\.raw is a named pipe"),
    "raw options on a TIFF": (c_raw_options_on_tiff, r"dtype only appl(y|ies) to raw files"),
    "HDF5: missing dataset": (c_h5_missing_dataset, r"dataset 'recon' of scan\.h5 does not exist"),
    "HDF5: group instead of a dataset": (c_h5_group, r"dataset 'entry' of scan\.h5 is a group, not a dataset"),
    "HDF5: 1D dataset": (c_h5_1d, r"dataset /energy of scan\.h5 has 1 dimension \(shape"),
    "HDF5: 4D dataset": (c_h5_4d, r"dataset /series of scan\.h5 has 4 dimensions"),
    "HDF5: string dataset": (c_h5_strings, r"dataset /names of text\.h5 holds data of dtype \|S2"),
    "HDF5: two image datasets, none chosen": (c_h5_two_images, r"scan\.h5 holds 2 image datasets; choose one"),
    "HDF5: text file named .h5": (c_h5_text, r"could not read notes\.h5 as HDF5"),
    "HDF5: truncated file": (c_h5_truncated, r"could not read cut\.h5 as HDF5"),
    "HDF5: external data file": (c_h5_external, r"dataset /raw of ext\.h5 keeps its voxels in other files"),
    "zarr: missing array": (c_zarr_missing_array, r"dataset 'mask' of store\.zarr does not exist"),
    "zarr: 1D array": (c_zarr_1d, r"line\.zarr has 1 dimension \(shape"),
    "zarr: empty .zarr folder": (c_zarr_empty_folder, r"blank\.zarr holds no zarr metadata"),
    "zarr: a file named .zarr": (c_zarr_file, r"flat\.zarr is a file, but a zarr store is a folder"),
    "zarr: bad metadata": (c_zarr_bad_metadata, r"could not read broken\.zarr as a zarr store"),
    "zarr: corrupt chunk": (c_zarr_corrupt_chunk, r"could not read chunk\.zarr as zarr"),
    "zarr: FIFO as a chunk": (c_zarr_fifo_chunk, r"zarr store pipe\.zarr: .* is a named pipe"),
    "slices: dangling link": (c_slices_dangling_link, r"slice folder slices: s2\.tif is a link to a missing file"),
    "slices: empty folder": (c_slices_empty, r"folder slices holds no \.tif/\.tiff/\.png/\.bmp/\.edf/\.dcm slices"),
    "slices: mixed shapes": (c_slices_mixed_shapes, r"slice folder slices holds slices of 2 kinds, not one: "
                             r"1 uint8 of 8×8 \(s1\.tif\) and 1 uint8 of 8×9 \(s2\.tif\); "),
    "slices: mixed dtypes": (c_slices_mixed_dtypes, r"slice folder slices holds slices of 2 kinds, .*1 uint16 of 8×8 "
                             r"\(s2\.tif\); .*pick one file"),
    "slices: text file named .png": (c_slices_text_png, r"could not read slice s2\.png in folder slices as PNG"),
    "slices: truncated PNG": (c_slices_truncated_png, r"could not read slice s2\.png in folder slices as PNG"),
    "slices: FIFO among the slices": (c_slices_fifo, r"slice folder slices: s2\.tif is a named pipe"),
    "slices: a 3D stack among the slices": (c_slices_stack_inside, r"slice s2\.tif in folder slices is not a 2D image"),
    "phase map: value not covered": (c_phase_value_not_covered, r"seg\.tif holds 1 voxel value .* does not cover: 7"),
    "phase map: value given twice": (c_phase_duplicate_value, r"phase map gives the voxel value 0 twice"),
    "phase map: unknown phase name": (c_phase_unknown_name, r"unknown phase 'glue'"),
    "phase map: malformed entry": (c_phase_malformed, r"'0pore' is not of the form VALUE=PHASE"),
    "phase map: non-integer float volume": (
        c_phase_float_volume, r"float\.tif holds 3 voxels that are not a whole number \(e\.g\. 0\.5\) .* not a "
                              r"segmented volume"),
    "phase map: NaN in the volume": (
        c_phase_nan_volume, r"nan\.tif holds 1 voxel that is not a whole number \(e\.g\. nan\)"),
    "spacing 1e-300": (_spacing_case(1e-300, 1, 1), r"--spacing: a voxel size must be between 0\.0001 and 10000 µm, got 1e-300"),
    "spacing 1e300": (_spacing_case(1e300, 1, 1), r"--spacing: a voxel size must be between 0\.0001 and 10000 µm, got 1e\+300"),
    "spacing NaN": (_spacing_case("nan", 1, 1), r"--spacing: a voxel size must be a finite number > 0 µm, got nan"),
    "spacing inf": (_spacing_case(1, "inf", 1), r"--spacing: a voxel size must be a finite number > 0 µm, got inf"),
    "spacing 0": (_spacing_case(0, 1, 1), r"--spacing: a voxel size must be a finite number > 0 µm, got 0"),
    "spacing negative": (_spacing_case(1, 1, -0.4), r"--spacing: a voxel size must be a finite number > 0 µm, got -0\.4"),
    "spacing: two values": (_spacing_case(0.4, 0.4), r"--spacing: give one voxel size in µm \(isotropic\) or three "
                                                     r"\(Z Y X\), got 2: 0\.4 0\.4"),
    "recipe: demo shape 100000³": (c_recipe_huge_demo, r"outside the demo limits: each side from 8 to 1024"),
    "recipe: demo shape 2³": (c_recipe_tiny_demo, r"outside the demo limits"),
    "recipe: spacing as text": (c_recipe_spacing_text, r"spacing must be a number or 3 numbers"),
    "recipe: spacing 1e-300": (c_recipe_spacing_tiny, r"spacing must be finite and > 0, between 0\.0001 and 10000 µm"),
    "recipe: two spacing values": (c_recipe_spacing_count, r"spacing needs 3 values"),
    "recipe: input is a FIFO": (c_recipe_input_fifo, r"pipe\.npy is a named pipe"),
    "demo --size 100000": (c_demo_size_huge, r"--size: must be a whole number from 16 to 512, got 100000"),
    "demo --size 2": (c_demo_size_tiny, r"--size: must be a whole number from 16 to 512, got 2"),
    "unknown suffix": (c_unknown_suffix, r"unknown file format for scan\.xyz"),
    "segment: truncated .npy": (c_segment_truncated_npy, r"seg\.npy: the \.npy header declares"),
}


@pytest.fixture
def alarm():
    """Fail instead of hanging forever (a FIFO opened for reading blocks until a writer appears)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def boom(signum, frame):
        raise TimeoutError("the CLI hung on a bad input")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(60)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _listing(root: Path) -> list[str]:
    return sorted(os.fspath(p.relative_to(root)) for p in root.rglob("*"))


def _run(args, tmp_path, capsys, out):
    rc = cli.main([os.fspath(a) for a in args] + ["--out", os.fspath(out), "-q"])
    return rc, capsys.readouterr()


@pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, sockets and /dev/zero are POSIX")
@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_file_is_refused_in_one_sentence(case, tmp_path, capsys, caplog, recwarn, alarm, monkeypatch):
    caplog.set_level(logging.WARNING)
    build, pattern = CASES[case]
    d = tmp_path / "in"
    d.mkdir()
    monkeypatch.chdir(tmp_path)
    args = build(d)
    capsys.readouterr()  # nothing the builders printed
    before = _listing(tmp_path)
    out = tmp_path / "out"
    rc, captured = _run(args, tmp_path, capsys, out)
    lines = captured.err.splitlines()
    assert rc == 2, captured.err
    assert len(lines) == 1 and captured.err == lines[0] + "\n", captured.err  # no log line, no traceback
    line = lines[0]
    assert line.startswith("error: ") and line.endswith("."), line
    assert "Traceback" not in line and len(line) <= 300, line
    assert re.search(pattern, line), line
    if not case.startswith("recipe"):  # core.recipe prefixes its messages with the recipe's path as given
        assert os.fspath(tmp_path) not in line, line  # names the file, not its full path
    assert captured.out == ""
    assert not out.exists()
    assert _listing(tmp_path) == before  # no '.out.partial-*' or stray file left
    # under pytest, log records go to its capture handler instead of stderr: no library may have logged either
    logged = [r for r in caplog.records if r.name.split(".")[0] in ("tifffile", "h5py", "zarr", "PIL", "imagecodecs")]
    assert not logged, [r.getMessage() for r in logged]
    # ... and warnings: pytest records them, outside pytest those shown by default would add a line to stderr
    shown = [w for w in recwarn if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning,
                                                              ImportWarning, ResourceWarning))]
    assert not shown, [str(w.message) for w in shown]


REPO = Path(__file__).resolve().parents[2]


def test_truncated_stack_and_fifo_in_a_real_process(tmp_path):
    """Outside pytest's log capture: tifffile's own log lines must not reach stderr, a FIFO must not block."""
    d = tmp_path / "in"
    d.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    for args, pattern in ((c_tiff_truncated_imagej(d), r"declares 8 slices but the file ends after 1"),
                          (c_npy_fifo(d), r"pipe\.npy is a named pipe")):
        out = tmp_path / "out"
        proc = subprocess.run([sys.executable, "-m", "core", *map(os.fspath, args), "--out", os.fspath(out)],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
        assert re.search(pattern, lines[0]), lines[0]
        assert not out.exists()


def test_tifffile_logger_is_restored_after_a_read(tmp_path):
    from core.io import load_volume

    logger = logging.getLogger("tifffile")
    before = (logger.propagate, list(logger.handlers))
    c_tiff_truncated_imagej(tmp_path)
    with pytest.raises(ValueError, match="declares 8 slices"):
        load_volume(tmp_path / "stack.tif")
    assert (logger.propagate, list(logger.handlers)) == before


# --------------------------------------------------------------------------- valid counterparts


def v_tiff(d):
    save_tiff(d / "grey.tif", _grey(), 0.4)
    return ["analyze", d / "grey.tif"]


def v_imagej_stack(d):
    _ij_stack(d / "stack.tif", _grey())
    return ["analyze", d / "stack.tif", "--spacing", "0.4", "0.4", "0.4"]


def v_npy(d):
    np.save(d / "grey.npy", _grey())
    return ["analyze", d / "grey.npy", "--spacing", "0.4", "0.4", "0.4"]


def v_raw(d):
    g = _grey()
    (d / "grey.raw").write_bytes(b"H" * 16 + g.astype("<u2").tobytes())
    return ["analyze", d / "grey.raw", "--raw-shape", *map(str, g.shape), "--raw-dtype", "uint16",
            "--raw-offset", "16", "--spacing", "0.4", "0.4", "0.4"]


def v_hdf5(d):
    with h5py.File(d / "grey.h5", "w") as f:
        f.create_dataset("entry/data", data=_grey())
        f.create_dataset("entry/energy", data=np.arange(3.0))
    return ["analyze", d / "grey.h5", "--spacing", "0.4", "0.4", "0.4"]


def v_zarr(d):
    _zarr_array(d / "grey.zarr", _grey())
    return ["analyze", d / "grey.zarr", "--spacing", "0.4", "0.4", "0.4"]


def v_slices(d):
    g = _grey()
    _slices(d / "slices", {f"z{i}.tif": g[i] for i in range(g.shape[0])})
    return ["analyze", d / "slices", "--spacing", "0.4", "0.4", "0.4"]


def v_phase_map(d):
    from core.synth import demo_electrode

    ph = demo_electrode("pristine", rng=1, shape=(24, 24, 24)).phases
    save_tiff(d / "seg.tif", np.choose(ph, [0, 128, 255]).astype(np.uint8), 0.4)
    return ["analyze", d / "seg.tif", "--phase-map", "0=pore,128=cbd,255=nmc"]


def v_recipe_demo(d):
    return ["run", _recipe(d / "demo.json", {"demo": "pristine", "seed": 0, "shape": [16, 16, 16]})]


VALID = {"TIFF": v_tiff, "ImageJ stack": v_imagej_stack, "NPY": v_npy, "raw with offset": v_raw, "HDF5": v_hdf5,
         "zarr": v_zarr, "slice folder": v_slices, "phase map": v_phase_map, "recipe with a demo": v_recipe_demo}


@pytest.mark.parametrize("case", list(VALID))
def test_valid_counterpart_is_analysed(case, tmp_path, capsys, alarm, monkeypatch):
    d = tmp_path / "in"
    d.mkdir()
    monkeypatch.chdir(tmp_path)
    args = VALID[case](d)
    out = tmp_path / "out"
    rc, captured = _run(args, tmp_path, capsys, out)
    assert rc == 0, captured.err
    assert out.is_dir() and any(out.iterdir())


def test_corpus_size():
    assert len(CASES) >= 30


# --------------------------------------------------------------------------- specs without a file


@pytest.mark.parametrize("spacing, error, match", [
    (1e-300, ValueError, r"between 0\.0001 and 10000 µm"),
    (1e300, ValueError, r"between 0\.0001 and 10000 µm"),
    (float("nan"), ValueError, r"got nan"),
    (float("-inf"), ValueError, r"got -inf"),
    (0, ValueError, r"between"),
    (-0.4, ValueError, r"between"),
    ((0.4, 0.4), ValueError, r"needs 3 values"),
    ((0.4,) * 4, ValueError, r"needs 3 values"),
    ("0.4", TypeError, r"must be a number or 3 numbers"),
    (["0.4", "0.4", "0.4"], TypeError, r"must be a number or 3 numbers"),
    (True, TypeError, r"must be a number"),
    ({"z": 1}, TypeError, r"must be a number"),
    ((0.4, None, 0.4), TypeError, r"must be a number"),
])
def test_normalize_spacing_refuses_with_the_allowed_range(spacing, error, match):
    from core._validate import normalize_spacing

    with pytest.raises(error, match=match):
        normalize_spacing(spacing)


def test_normalize_spacing_accepts_the_range_and_numpy_values():
    from core._validate import SPACING_MAX_UM, SPACING_MIN_UM, normalize_spacing

    assert normalize_spacing(SPACING_MIN_UM) == (1e-4,) * 3
    assert normalize_spacing([SPACING_MAX_UM, 1, 0.4]) == (1e4, 1.0, 0.4)
    assert normalize_spacing(np.array([0.4, 0.5, 0.6])) == (0.4, 0.5, 0.6)
    assert normalize_spacing(np.float32(0.5)) == (0.5,) * 3
    assert normalize_spacing(np.array(2)) == (2.0,) * 3


@pytest.mark.parametrize("shape, match", [
    ((100000, 100000, 100000), r"each side from 8 to 1024"),
    ((4, 64, 64), r"each side from 8 to 1024"),
    ((1024, 1024, 1024), r"more than the demo limit"),
    ((16, 16), r"3 whole numbers"),
])
def test_demo_input_shape_limits(shape, match):
    from core.inputs import DemoInput, InputError

    with pytest.raises(InputError, match=match):
        DemoInput("pristine", shape=shape)


def test_demo_generator_refuses_a_huge_shape_at_once():
    from core.synth import demo_electrode

    with pytest.raises(ValueError, match="demo limits"):
        demo_electrode("pristine", shape=(100000, 100000, 100000))


# --------------------------------------------------------------------------- fuzz


def _fuzz_sources(d: Path) -> dict[str, tuple[Path, Path]]:
    """name -> (file to mutate, path to load)."""
    a = _volume((6, 32, 32))
    tifffile.imwrite(d / "ij.tif", a, imagej=True, metadata={"axes": "ZYX", "spacing": 0.5, "unit": "um"},
                     resolution=(2, 2))
    tifffile.imwrite(d / "tiles.tif", a, compression="zlib", tile=(16, 16))
    save_tiff(d / "saved.tif", a, 0.4)
    np.save(d / "v.npy", a)
    with h5py.File(d / "v.h5", "w") as f:
        f.create_dataset("x", data=a, compression="gzip", chunks=(2, 16, 16))
    _slices(d / "png", {"s1.png": a[0].astype(np.uint8), "s2.png": a[1].astype(np.uint8)})
    _zarr_array(d / "v.zarr", a, chunks=(3, 32, 32))
    return {"ImageJ TIFF": (d / "ij.tif", d / "ij.tif"), "tiled zlib TIFF": (d / "tiles.tif", d / "tiles.tif"),
            "save_tiff TIFF": (d / "saved.tif", d / "saved.tif"), "NPY": (d / "v.npy", d / "v.npy"),
            "HDF5": (d / "v.h5", d / "v.h5"), "PNG slice": (d / "png" / "s2.png", d / "png"),
            "zarr metadata": (d / "v.zarr" / "zarr.json", d / "v.zarr")}


@pytest.mark.parametrize("kind", ["ImageJ TIFF", "tiled zlib TIFF", "save_tiff TIFF", "NPY", "HDF5", "PNG slice",
                                  "zarr metadata"])
def test_fuzzed_files_load_or_fail_with_one_sentence(kind, tmp_path, capsys, caplog, recwarn, alarm):
    """Flipped bytes, truncations and overwritten runs: the readers either load or raise the CLI's types."""
    import random

    from core.io import load_volume

    caplog.set_level(logging.WARNING)
    target, load_path = _fuzz_sources(tmp_path)[kind]
    base = target.read_bytes()
    rng = random.Random(16)
    for _ in range(150):
        b = bytearray(base)
        mode = rng.random()
        if mode < 0.5:
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(min(len(b), 600)) if rng.random() < 0.6 else rng.randrange(len(b))] = rng.randrange(256)
        elif mode < 0.8:
            b = b[: rng.randrange(len(b))]
        else:
            pos, n = rng.randrange(len(b)), rng.randint(1, 200)
            b[pos: pos + n] = bytes(rng.randrange(256) for _ in range(n))
        target.write_bytes(bytes(b))
        try:
            load_volume(load_path)
        except (ValueError, TypeError, OSError, KeyError) as exc:
            text = str(exc)
            assert text and "\n" not in text and len(text) <= 300, text
            assert os.fspath(tmp_path) not in text, text
    assert capsys.readouterr().err == ""
    logged = [r for r in caplog.records if r.name.split(".")[0] in ("tifffile", "h5py", "zarr", "PIL", "imagecodecs")]
    assert not logged, [r.getMessage() for r in logged]
