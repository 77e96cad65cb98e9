"""Tests for core.io: every format round-trips with its spacing, every bad input has a clear error."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
import zarr
from PIL import Image

from core import io
from core.io import (
    Volume,
    apply_phase_map,
    detect_format,
    list_datasets,
    load_phases,
    load_volume,
    parse_phase_map,
    save_tiff,
)

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real"
REAL_3PHASE = REAL / "nmc_calendered_3phase" / "nmc-1-cal_generatedCBD_bridge.tif"
REAL_NANOCT = REAL / "nanoct_nmc_slices" / "raw_1.tif"


def ramp(shape=(3, 4, 5), dtype=np.uint16) -> np.ndarray:
    return (np.arange(int(np.prod(shape))) % 251).astype(dtype).reshape(shape)


# --------------------------------------------------------------------------- save_tiff / TIFF


@pytest.mark.parametrize("compress", [True, False])
def test_save_tiff_roundtrip_anisotropic(tmp_path, compress):
    data = ramp()
    path = tmp_path / "vol.tif"
    save_tiff(path, data, (2.0, 0.5, 0.25), compress=compress)
    vol = load_volume(path)
    assert isinstance(vol, Volume)
    assert vol.fmt == "tiff" and vol.source == str(path)
    assert vol.data.shape == (3, 4, 5) and vol.data.dtype == np.uint16
    np.testing.assert_array_equal(vol.data, data)
    assert vol.spacing == pytest.approx((2.0, 0.5, 0.25), rel=1e-6)
    assert vol.spacing_from_metadata is True
    assert vol.metadata["spacing_source"] == "imagej"
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej
        assert tif.imagej_metadata["unit"] == "um"
        assert (tif.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE) == compress
    # an uncompressed contiguous file is memory-mapped read-only
    assert isinstance(vol.data, np.memmap) != compress
    if not compress:
        assert not vol.data.flags.writeable


def test_save_tiff_odd_spacing_precision(tmp_path):
    spacing = (0.3333333, 0.123456789, 0.987654321)
    save_tiff(tmp_path / "v.tif", ramp(dtype=np.float32), spacing)
    assert load_volume(tmp_path / "v.tif").spacing == pytest.approx(spacing, rel=1e-6)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint32, np.float64, np.int8])
def test_save_tiff_non_imagej_dtypes(tmp_path, dtype):
    data = ramp(dtype=dtype)
    data.flat[0] = 100_000 if np.dtype(dtype).itemsize >= 4 else 100
    path = tmp_path / "labels.tif"
    save_tiff(path, data, (2.0, 0.5, 0.25))
    with tifffile.TiffFile(path) as tif:
        assert not tif.is_imagej
        assert json.loads(tif.pages[0].description)["spacing_um"] == [2.0, 0.5, 0.25]
    vol = load_volume(path)
    assert vol.data.dtype == dtype
    np.testing.assert_array_equal(vol.data, data)
    assert vol.spacing == pytest.approx((2.0, 0.5, 0.25), rel=1e-6)
    assert vol.spacing_from_metadata and vol.metadata["spacing_source"] == "json"


def test_save_tiff_bool_2d_and_last_axis_3(tmp_path):
    mask = np.zeros((4, 6), dtype=bool)
    mask[1:3, 2:5] = True
    save_tiff(tmp_path / "m.tif", mask, 0.5)
    vol = load_volume(tmp_path / "m.tif")
    assert vol.data.shape == (1, 4, 6) and vol.data.dtype == np.uint8
    np.testing.assert_array_equal(vol.data[0], mask)
    # a last axis of length 3 must not be taken for RGB
    data = ramp((2, 5, 3), np.uint8)
    save_tiff(tmp_path / "thin.tif", data, 1.0)
    np.testing.assert_array_equal(load_volume(tmp_path / "thin.tif").data, data)


def test_save_tiff_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="numpy array"):
        save_tiff(tmp_path / "a.tif", [[1, 2]], 1.0)
    with pytest.raises(ValueError, match="2D .* or 3D"):
        save_tiff(tmp_path / "a.tif", np.zeros((2, 2, 2, 2)), 1.0)
    with pytest.raises(ValueError, match="spacing"):
        save_tiff(tmp_path / "a.tif", ramp(), (1.0, -1.0, 1.0))
    with pytest.raises(ValueError, match=r"\.tif or \.tiff"):
        save_tiff(tmp_path / "a.png", ramp(), 1.0)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        save_tiff(tmp_path / "missing" / "a.tif", ramp(), 1.0)
    assert list(tmp_path.iterdir()) == []


def test_save_tiff_atomic_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "vol.tif"
    original = ramp()
    save_tiff(path, original, 1.0)
    before = path.read_bytes()

    def broken_imwrite(file, data, **kwargs):
        with open(file, "wb") as fh:  # leave a partial temp file behind
            fh.write(b"II*\x00 partial")
        raise RuntimeError("disk exploded")

    monkeypatch.setattr(tifffile, "imwrite", broken_imwrite)
    with pytest.raises(RuntimeError, match="disk exploded"):
        save_tiff(path, ramp() + 1, 2.0)
    with pytest.raises(RuntimeError):
        save_tiff(tmp_path / "new.tif", ramp(), 2.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vol.tif"]  # no temp file, no new file
    assert path.read_bytes() == before  # not clobbered


def test_save_tiff_replaces_existing_file_with_normal_permissions(tmp_path):
    path = tmp_path / "vol.tif"
    save_tiff(path, ramp(), 1.0)
    mode = path.stat().st_mode & 0o777
    assert mode & 0o600 == 0o600
    save_tiff(path, ramp() * 2, 3.0)
    assert load_volume(path).spacing == pytest.approx((3.0, 3.0, 3.0))
    assert path.stat().st_mode & 0o777 == mode
    assert [p.name for p in tmp_path.iterdir()] == ["vol.tif"]


def test_imagej_tiff_in_nanometres(tmp_path):
    path = tmp_path / "nm.tif"
    tifffile.imwrite(
        path,
        ramp((3, 4, 5), np.uint8),
        imagej=True,
        resolution=(1 / 250.0, 1 / 500.0),  # pixels per nm
        metadata={"axes": "ZYX", "unit": "nm", "spacing": 1000.0},
    )
    vol = load_volume(path)
    assert vol.spacing == pytest.approx((1.0, 0.5, 0.25), rel=1e-6)
    assert vol.spacing_from_metadata


def test_imagej_micro_sign_unit_and_default_depth(tmp_path):
    # ImageJ writes µm as the escape "\u00B5m" and omits spacing when the depth is 1 unit
    path = tmp_path / "mu.tif"
    tifffile.imwrite(path, ramp((3, 4, 5), np.uint8), imagej=True, resolution=(2.0, 2.0),
                     metadata={"axes": "ZYX", "unit": "\\u00B5m"})
    assert load_volume(path).spacing == pytest.approx((1.0, 0.5, 0.5))
    # a single image without spacing: z assumed equal to x
    tifffile.imwrite(path, ramp((4, 5), np.uint8), imagej=True, resolution=(4.0, 4.0),
                     metadata={"unit": "micron"})
    vol = load_volume(path)
    assert vol.spacing == pytest.approx((0.25, 0.25, 0.25))
    assert vol.metadata["spacing_z_assumed"] is True


def test_ome_tiff_physical_size(tmp_path):
    path = tmp_path / "vol.ome.tif"
    data = ramp()
    tifffile.imwrite(
        path,
        data,
        ome=True,
        metadata={
            "axes": "ZYX",
            "PhysicalSizeX": 250.0,
            "PhysicalSizeXUnit": "nm",
            "PhysicalSizeY": 0.5,
            "PhysicalSizeZ": 0.002,
            "PhysicalSizeZUnit": "mm",
        },
    )
    assert detect_format(path) == "tiff"
    vol = load_volume(path)
    np.testing.assert_array_equal(vol.data, data)
    assert vol.spacing == pytest.approx((2.0, 0.5, 0.25), rel=1e-6)
    assert vol.metadata["spacing_source"] == "ome"


def test_plain_tiff_default_spacing_and_caller_override(tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, ramp(), photometric="minisblack")  # no physical size in the file
    vol = load_volume(path)
    assert vol.spacing == (1.0, 1.0, 1.0) and not vol.spacing_from_metadata
    assert vol.metadata["spacing_source"] == "default"

    save_tiff(path, ramp(), (2.0, 0.5, 0.25))
    vol = load_volume(path, spacing=0.7)
    assert vol.spacing == (0.7, 0.7, 0.7) and not vol.spacing_from_metadata
    assert vol.metadata["file_spacing"] == pytest.approx((2.0, 0.5, 0.25))
    with pytest.raises(ValueError, match="spacing"):
        load_volume(path, spacing=(1.0, 0.0, 1.0))


def test_tiff_squeezes_singletons_and_rejects_channels(tmp_path):
    path = tmp_path / "hyper.tif"
    data = ramp((1, 3, 1, 4, 5), np.uint8)  # TZCYX with T = C = 1
    tifffile.imwrite(path, data, imagej=True)
    assert load_volume(path).data.shape == (3, 4, 5)

    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((4, 5, 3), np.uint8), photometric="rgb")
    with pytest.raises(ValueError, match="has 3 channels; convert it to greyscale first"):
        load_volume(rgb)

    four = tmp_path / "four.tif"
    tifffile.imwrite(four, ramp((2, 3, 4, 5), np.uint8), imagej=True, metadata={"axes": "TZYX"})
    with pytest.raises(ValueError, match=r"4 dimensions \(shape \(2, 3, 4, 5\)"):
        load_volume(four)


def test_2d_tiff_has_depth_one(tmp_path):
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, ramp((6, 7), np.uint16))
    vol = load_volume(path)
    assert vol.data.shape == (1, 6, 7)


def test_corrupt_and_missing_tiff(tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_text("this is not an image")
    with pytest.raises(ValueError, match=r"could not read .*bad\.tif as TIFF: "):
        load_volume(bad)
    with pytest.raises(FileNotFoundError, match=r"no such file: .*nothere\.tif"):
        load_volume(tmp_path / "nothere.tif")
    assert bad.read_text() == "this is not an image"


# --------------------------------------------------------------------------- formats / arguments


def test_detect_format(tmp_path):
    cases = {
        "a.tif": "tiff", "a.TIFF": "tiff", "a.ome.tif": "tiff", "a.h5": "hdf5", "a.hdf5": "hdf5",
        "a.hdf": "hdf5", "a.nxs": "hdf5", "a.npy": "npy", "a.raw": "raw", "a.bin": "raw",
        "a.vol": "raw", "a.zarr": "zarr", "a.txm": "txm", "a.PNG": "image", "a.bmp": "image", "a.jpg": "image",
        "a.jpeg": "image",
    }
    for name, fmt in cases.items():
        assert detect_format(tmp_path / name) == fmt, name
    with pytest.raises(ValueError, match=r"unknown file format .*supported are TIFF"):
        detect_format(tmp_path / "a.gif")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no .tif/.tiff/.png/.bmp/.edf/.dcm slices"):
        detect_format(empty)


def test_unknown_format_and_empty_folder(tmp_path):
    f = tmp_path / "data.xyz"
    f.write_bytes(b"123")
    with pytest.raises(ValueError, match="unknown file format"):
        load_volume(f)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="holds no"):
        load_volume(empty)
    with pytest.raises(ValueError, match="holds no"):
        load_volume(empty, fmt="slices")
    with pytest.raises(ValueError, match="fmt must be one of"):
        load_volume(f, fmt="jpeg")


def test_raw_only_options_rejected_for_other_formats(tmp_path):
    save_tiff(tmp_path / "v.tif", ramp(), 1.0)
    with pytest.raises(ValueError, match="shape, dtype only apply to raw files"):
        load_volume(tmp_path / "v.tif", shape=(3, 4, 5), dtype="uint16")
    with pytest.raises(ValueError, match="dataset only applies to HDF5 and zarr"):
        load_volume(tmp_path / "v.tif", dataset="x")
    with pytest.raises(ValueError, match="byte_order must be one of"):
        load_volume(tmp_path / "v.tif", byte_order="big")


# --------------------------------------------------------------------------- slices


def test_slice_folder_natural_order(tmp_path):
    folder = tmp_path / "stack"
    folder.mkdir()
    for i in range(1, 13):  # unpadded 1..12: lexical order would put 10, 11, 12 after 1
        tifffile.imwrite(folder / f"slice{i}.tif", np.full((4, 5), i, np.uint16))
    (folder / "readme.txt").write_text("ignored")
    tifffile.imwrite(folder / ".hidden.tif", np.zeros((9, 9), np.uint8))  # hidden: ignored
    assert detect_format(folder) == "slices"
    vol = load_volume(folder)
    assert vol.fmt == "slices" and vol.data.shape == (12, 4, 5)
    assert vol.data[:, 0, 0].tolist() == list(range(1, 13))
    assert vol.metadata["files"][:3] == ("slice1.tif", "slice2.tif", "slice3.tif")
    assert vol.spacing == (1.0, 1.0, 1.0) and not vol.spacing_from_metadata


def test_natural_key():
    names = ["img10.tif", "img2.tif", "IMG1.tif", "img1b.tif", "a.png"]
    assert sorted(names, key=io._natural_key) == ["a.png", "IMG1.tif", "img1b.tif", "img2.tif", "img10.tif"]


def test_slice_folder_spacing_from_first_tiff(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    for i in range(3):
        save_tiff(folder / f"z{i:03d}.tiff", np.full((4, 5), i, np.float32), (9.0, 0.5, 0.5))
    vol = load_volume(folder)
    assert vol.data.shape == (3, 4, 5) and vol.data.dtype == np.float32
    assert vol.spacing_from_metadata
    assert vol.spacing[1:] == pytest.approx((0.5, 0.5))


def test_png_slices(tmp_path):
    folder = tmp_path / "png"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((4, 5), 10 * i, np.uint8)).save(folder / f"s_{i}.png")
    vol = load_volume(folder)
    assert vol.data.shape == (3, 4, 5) and vol.data.dtype == np.uint8
    assert vol.data[:, 0, 0].tolist() == [0, 10, 20]

    folder16 = tmp_path / "png16"
    folder16.mkdir()
    for i in range(2):
        Image.fromarray(np.full((4, 5), 1000 * (i + 1), np.uint16)).save(folder16 / f"s_{i}.png")
    vol = load_volume(folder16)
    assert vol.data[:, 0, 0].tolist() == [1000, 2000]

    rgb = tmp_path / "rgb"
    rgb.mkdir()
    colour = np.zeros((4, 5, 3), np.uint8)
    colour[..., 1] = 5
    Image.fromarray(colour).save(rgb / "c.png")
    with pytest.raises(ValueError, match=r"3 channels \(RGB\); convert it to greyscale first"):
        load_volume(rgb)
    Image.fromarray(np.full((4, 5, 3), 7, np.uint8)).save(rgb / "c.png")  # grey saved as RGB: its grey
    assert load_volume(rgb).data.tolist() == [[[7] * 5] * 4]


def test_slice_folder_mixed_shapes(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i in range(1, 4):
        tifffile.imwrite(folder / f"s{i}.tif", np.zeros((4, 5), np.uint8))
    tifffile.imwrite(folder / "s10.tif", np.zeros((4, 6), np.uint8))
    with pytest.raises(ValueError, match=r"2 kinds, not one: 3 uint8 of 4×5 .* and 1 uint8 of 4×6 \(s10\.tif\)"):
        load_volume(folder)


# --------------------------------------------------------------------------- HDF5


def _two_dataset_h5(path: Path) -> tuple[np.ndarray, np.ndarray]:
    a, b = ramp(), ramp((2, 3, 4), np.float32)
    with h5py.File(path, "w") as f:
        f.create_dataset("raw", data=a)
        grp = f.create_group("seg")
        grp.attrs["element_size_um"] = [2.0, 0.5, 0.25]
        grp.create_dataset("labels", data=b)
        f.create_dataset("meta/energy_keV", data=np.array([25.0]))
    return a, b


def test_hdf5_two_datasets(tmp_path):
    path = tmp_path / "scan.h5"
    a, b = _two_dataset_h5(path)
    assert list_datasets(path) == [
        ("/meta/energy_keV", (1,), "float64"),
        ("/raw", (3, 4, 5), "uint16"),
        ("/seg/labels", (2, 3, 4), "float32"),
    ]
    with pytest.raises(ValueError, match=r"holds 2 image datasets; choose one with the dataset option: /raw, /seg/lab"):
        load_volume(path)
    vol = load_volume(path, dataset="seg/labels")
    assert vol.fmt == "hdf5" and vol.source == f"{path}::/seg/labels"
    np.testing.assert_array_equal(vol.data, b)
    assert vol.spacing == (2.0, 0.5, 0.25) and vol.spacing_from_metadata
    assert vol.metadata["spacing_source"] == "attrs:element_size_um"

    raw = load_volume(path, dataset="/raw")
    np.testing.assert_array_equal(raw.data, a)
    assert not raw.spacing_from_metadata
    # the source string can be passed back as a path
    again = load_volume(vol.source)
    np.testing.assert_array_equal(again.data, b)
    with pytest.raises(ValueError, match=r"dataset 'nope' of scan\.h5 does not exist; datasets: "):
        load_volume(path, dataset="nope")


def test_hdf5_single_image_and_spacing_units(tmp_path):
    path = tmp_path / "one.hdf5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("entry/data", data=ramp((4, 5), np.uint8))
        ds.attrs["pixel_size"] = 500.0
        ds.attrs["unit"] = "nm"
        f.create_dataset("entry/title", data=3.0)  # scalar metadata is not a candidate
    vol = load_volume(path)
    assert vol.data.shape == (1, 4, 5)
    assert vol.spacing == pytest.approx((0.5, 0.5, 0.5))


def _dxchange(path, *, resolution=None, unit=None, camera=None, magnification=None, attrs=None):
    """A Data Exchange reconstruction as APS-style beamlines write it: /exchange/data and /measurement."""
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("exchange/data", data=ramp((3, 4, 5), np.uint16))
        for key, value in (attrs or {}).items():
            ds.attrs[key] = value
        objective = "measurement/instrument/detection_system/objective/"
        if resolution is not None:
            res = f.create_dataset(objective + "resolution", data=[resolution])
            if unit is not None:
                res.attrs["units"] = unit
        if magnification is not None:
            f.create_dataset(objective + "magnification", data=[magnification])
        if camera is not None:
            f.create_dataset("measurement/instrument/detector/pixel_size", data=[camera])
    return path


@pytest.mark.parametrize("opener", ["whole", "lazy"])
def test_hdf5_dxchange_pixel_size(tmp_path, opener):
    from core.chunked import open_lazy

    def read(path):
        v = load_volume(path) if opener == "whole" else open_lazy(path)
        return v.spacing, v.spacing_from_metadata, v.metadata.get("spacing_source")

    # the objective's resolution is the effective pixel (µm, or its units)
    assert read(_dxchange(tmp_path / "a.h5", resolution=0.65)) == (pytest.approx((0.65,) * 3), True, "dxchange")
    assert read(_dxchange(tmp_path / "b.h5", resolution=325.0, unit="nm"))[0] == pytest.approx((0.325,) * 3)
    # without it, the camera pixel over the magnification; the camera pixel alone is not the scan's
    got = read(_dxchange(tmp_path / "c.h5", camera=6.5, magnification=10.0))
    assert got == (pytest.approx((0.65,) * 3), True, "dxchange_magnification")
    assert read(_dxchange(tmp_path / "d.h5", camera=6.5))[1] is False
    # an unusable resolution (0, an unknown unit) is not read; the dataset's own attributes come first
    assert read(_dxchange(tmp_path / "e.h5", resolution=0.0))[1] is False
    assert read(_dxchange(tmp_path / "f.h5", resolution=0.65, unit="furlong"))[1] is False
    got = read(_dxchange(tmp_path / "g.h5", resolution=0.65, attrs={"element_size_um": [1.0, 1.0, 1.0]}))
    assert got[0] == pytest.approx((1.0,) * 3) and got[2] == "attrs:element_size_um"


def test_hdf5_corrupt(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(ValueError, match=r"could not read .*bad\.h5 as HDF5"):
        load_volume(bad)
    with pytest.raises(ValueError, match="not an HDF5 file, zarr store or Avizo / Amira file"):
        save_tiff(tmp_path / "x.tif", ramp(), 1.0)
        list_datasets(tmp_path / "x.tif")


# --------------------------------------------------------------------------- zarr


def test_zarr_group_and_array(tmp_path):
    store = tmp_path / "vol.zarr"
    root = zarr.open_group(str(store), mode="w")
    root.attrs["voxel_size_um"] = [3.0, 1.5, 1.5]
    arr = root.create_array("recon/vol", shape=(3, 4, 5), dtype="uint16")
    arr[:] = ramp()
    root.create_array("recon/mask", shape=(3, 4, 5), dtype="bool")
    assert detect_format(store) == "zarr"
    assert [n for n, _, _ in list_datasets(store)] == ["/recon/mask", "/recon/vol"]
    with pytest.raises(ValueError, match="choose one with the dataset option"):
        load_volume(store)
    vol = load_volume(store, dataset="recon/vol")
    assert isinstance(vol.data, np.ndarray) and vol.fmt == "zarr"
    np.testing.assert_array_equal(vol.data, ramp())
    assert vol.spacing == (3.0, 1.5, 1.5) and vol.spacing_from_metadata
    mask = load_volume(store, dataset="/recon/mask")
    assert mask.data.dtype == np.uint8

    v2 = tmp_path / "plain_dir"  # no .zarr suffix: detected by its .zarray file
    a2 = zarr.create_array(str(v2), shape=(4, 5), dtype="int32", zarr_format=2)
    a2[:] = 7
    a2.attrs["spacing"] = 0.25
    assert detect_format(v2) == "zarr"
    assert list_datasets(v2) == [("/", (4, 5), "int32")]
    vol2 = load_volume(v2)
    assert vol2.data.shape == (1, 4, 5) and vol2.source == str(v2)
    assert vol2.spacing == (0.25, 0.25, 0.25)


def _ome_axes(*names, unit="micrometer"):
    return [{"name": n, "type": "space", "unit": unit} if n in "zyx" else {"name": n, "type": "channel"}
            for n in names]


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_voxel_size_from_its_multiscales(tmp_path, version):
    """OME-Zarr (NGFF) metadata written by other tools: each level's scale, times the multiscale's own, on the
    spatial axes in their units; the whole-volume and the lazy readers agree."""
    from core.chunked import open_lazy_array

    store = tmp_path / "img.ome.zarr"
    root = zarr.open_group(str(store), mode="w", zarr_format=3 if version == "0.5" else 2)
    root.create_array("s0", data=ramp().astype(np.uint16))
    root.create_array("s1", data=ramp()[:, ::2, ::2].astype(np.uint16))
    ms = {"axes": _ome_axes("z", "y", "x", unit="nanometer"),
          "datasets": [{"path": "s0", "coordinateTransformations": [{"type": "scale", "scale": [500, 250, 250]}]},
                       {"path": "s1", "coordinateTransformations": [{"type": "scale", "scale": [500, 500, 500]},
                                                                     {"type": "translation",
                                                                      "translation": [0, 125, 125]}]}],
          "coordinateTransformations": [{"type": "scale", "scale": [2, 1, 1]}]}
    if version == "0.5":
        root.attrs["ome"] = {"version": "0.5", "multiscales": [ms]}
    else:
        root.attrs["multiscales"] = [{"version": "0.4", **ms}]
    # no dataset named: the multiscales' first level (full resolution), as viewers read it
    assert load_volume(store).metadata["dataset"] == "/s0" and load_volume(store).spacing == pytest.approx(
        (1.0, 0.25, 0.25))
    assert open_lazy_array(store)[1].spacing == pytest.approx((1.0, 0.25, 0.25))
    for dataset, want in (("s0", (1.0, 0.25, 0.25)), ("/s1", (1.0, 0.5, 0.5))):
        vol = load_volume(store, dataset=dataset)
        assert vol.spacing == pytest.approx(want) and vol.spacing_from_metadata
        assert vol.metadata["spacing_source"] == "ome"
        assert open_lazy_array(store, dataset=dataset)[1].spacing == pytest.approx(want)


def test_ome_zarr_without_usable_metadata_falls_back(tmp_path):
    """A missing unit, a dataset the multiscales do not name, or other than three spatial axes: the attributes
    HDF5 files use are read instead, else no voxel size."""
    store = tmp_path / "img.zarr"
    root = zarr.open_group(str(store), mode="w")
    root.create_array("0", data=ramp().astype(np.uint16))
    root.create_array("other", data=ramp().astype(np.uint16))
    axes = [{"name": n, "type": "space"} for n in "zyx"]  # no unit: not assumed to be µm
    root.attrs["multiscales"] = [{"axes": axes, "datasets": [
        {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [2, 2, 2]}]}]}]
    assert not load_volume(store, dataset="0").spacing_from_metadata
    root.attrs["voxel_size_um"] = [0.3, 0.3, 0.3]
    assert load_volume(store, dataset="other").spacing == (0.3, 0.3, 0.3)
    assert load_volume(store, dataset="0").metadata["spacing_source"] == "attrs:voxel_size_um"
    root.attrs["multiscales"] = [{"axes": _ome_axes("c", "y", "x"), "datasets": [
        {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 2, 2]}]}]}]
    assert load_volume(store, dataset="0").metadata["spacing_source"] == "attrs:voxel_size_um"


def test_ome_zarr_with_singleton_time_and_channel_axes(tmp_path):
    store = tmp_path / "tczyx.zarr"
    root = zarr.open_group(str(store), mode="w")
    root.create_array("0", data=ramp().astype(np.uint16)[None, None])
    axes = [{"name": "t", "type": "time", "unit": "second"}] + _ome_axes("c", "z", "y", "x")
    root.attrs["ome"] = {"version": "0.5", "multiscales": [{"axes": axes, "datasets": [
        {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 0.7, 0.35, 0.35]}]}]}]}
    vol = load_volume(store)
    assert vol.shape == ramp().shape and vol.spacing == pytest.approx((0.7, 0.35, 0.35))


# --------------------------------------------------------------------------- npy / raw


def test_npy_mmap(tmp_path):
    data = ramp((3, 4, 5), np.float32)
    np.save(tmp_path / "v.npy", data)
    vol = load_volume(tmp_path / "v.npy", spacing=(2, 1, 1))
    assert isinstance(vol.data, np.memmap) and not vol.data.flags.writeable
    assert vol.metadata["mmap"] is True
    np.testing.assert_array_equal(vol.data, data)
    assert vol.spacing == (2.0, 1.0, 1.0) and not vol.spacing_from_metadata
    loaded = load_volume(tmp_path / "v.npy", mmap=False)
    assert not isinstance(loaded.data, np.memmap)

    np.save(tmp_path / "b.npy", np.ones((2, 2), bool))
    assert load_volume(tmp_path / "b.npy").data.dtype == np.uint8
    np.save(tmp_path / "four.npy", np.zeros((2, 2, 2, 2)))
    with pytest.raises(ValueError, match=r"4 dimensions \(shape \(2, 2, 2, 2\)"):
        load_volume(tmp_path / "four.npy")
    np.save(tmp_path / "lead.npy", np.zeros((1, 1, 3, 4, 5)))
    assert load_volume(tmp_path / "lead.npy").data.shape == (3, 4, 5)


@pytest.mark.parametrize("byte_order", ["<", ">"])
@pytest.mark.parametrize("mmap", [True, False])
def test_raw_byte_orders_with_offset(tmp_path, byte_order, mmap):
    data = ramp((3, 4, 5), np.uint16) * 257
    path = tmp_path / "scan.raw"
    path.write_bytes(b"HEADER!!" + data.astype(byte_order + "u2").tobytes())
    vol = load_volume(path, shape=(3, 4, 5), dtype="uint16", byte_order=byte_order, offset=8, mmap=mmap)
    np.testing.assert_array_equal(vol.data, data)
    assert vol.data.dtype.isnative and vol.data.dtype == np.uint16
    assert vol.fmt == "raw"
    assert isinstance(vol.data, np.memmap) == (mmap and byte_order == "<")
    assert path.read_bytes()[:8] == b"HEADER!!"


def test_raw_errors(tmp_path):
    path = tmp_path / "scan.raw"
    path.write_bytes(bytes(100))
    with pytest.raises(ValueError, match=r"^The raw file scan\.raw has 90 bytes after the 10-byte header .* needs 120 "
                                         r"bytes: they hold 45 voxels of uint16 \(z × y × x\)$"):
        load_volume(path, shape=(3, 4, 5), dtype="uint16", offset=10)
    with pytest.raises(ValueError, match="needs its shape"):
        load_volume(path)
    with pytest.raises(TypeError, match="not a numpy data type"):
        load_volume(path, shape=(10, 10), dtype="pixels")


# --------------------------------------------------------------------------- phase maps


def test_parse_phase_map():
    assert parse_phase_map("0=pore,128=nmc,255=cbd") == {0: 0, 128: 2, 255: 1}
    assert parse_phase_map(" 0 = Pore ; 1=BINDER\n2=Particle, 3=carbon,4=solid,5=AM,6=2, -1=0") == {
        0: 0, 1: 1, 2: 2, 3: 1, 4: 2, 5: 2, 6: 2, -1: 0,
    }
    with pytest.raises(ValueError, match=r"entry '0=foo' names an unknown phase 'foo'"):
        parse_phase_map("0=foo")
    with pytest.raises(ValueError, match=r"entry 'abc' is not of the form VALUE=PHASE"):
        parse_phase_map("abc")
    with pytest.raises(ValueError, match="not an integer"):
        parse_phase_map("x=pore")
    with pytest.raises(ValueError, match="twice"):
        parse_phase_map("0=pore,0=nmc")
    with pytest.raises(ValueError, match="maps to the code 3"):
        parse_phase_map("0=3")
    with pytest.raises(ValueError, match="empty"):
        parse_phase_map(" , ")


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.uint64, np.float32])
def test_apply_phase_map_dtypes(dtype):
    data = np.array([[[0, 10, 20], [20, 10, 0]]], dtype=dtype)
    copy = data.copy()
    out = apply_phase_map(data, {0: "pore", 10: "cbd", 20: 2})
    assert out.dtype == np.uint8
    assert out.tolist() == [[[0, 1, 2], [2, 1, 0]]]
    np.testing.assert_array_equal(data, copy)  # input untouched


def test_apply_phase_map_negative_and_bool():
    data = np.array([-5, 0, 300], dtype=np.int16)
    assert apply_phase_map(data, {-5: "nmc", 0: "pore", 300: "cbd"}).tolist() == [2, 0, 1]
    assert apply_phase_map(np.array([True, False]), {0: "pore", 1: "nmc"}).tolist() == [2, 0]


def test_apply_phase_map_unmapped_values():
    data = np.zeros((2, 3, 4), np.uint8)
    data[0, 0, :3] = 7
    data[1, 2, 3] = 9
    copy = data.copy()
    with pytest.raises(ValueError, match=r"2 voxel values .* not cover: 7 \(3 voxels\), 9 \(1 voxel\)"):
        apply_phase_map(data, {0: "pore"})
    np.testing.assert_array_equal(data, copy)
    many = np.arange(10, dtype=np.int64)
    with pytest.raises(ValueError, match="and 1 more"):
        apply_phase_map(many, {0: 0, 1: 1, 2: 2, 3: 0})
    floats = np.array([0.0, 1.0, 1.5], np.float32)
    with pytest.raises(ValueError, match=r"1 voxel that is not a whole number \(e\.g\. 1\.5\) and not covered"):
        apply_phase_map(floats, {0: 0, 1: 1})
    np.testing.assert_array_equal(apply_phase_map(floats, {0: 0, 1: 1, 1.5: 2}), [0, 1, 2])  # a float key maps it


def test_load_phases(tmp_path):
    seg = np.array([[[0, 128, 255], [255, 128, 0]]], dtype=np.uint8)
    path = tmp_path / "seg.tif"
    save_tiff(path, seg, (1.0, 0.5, 0.5))
    vol = load_phases(path, "0=pore,128=nmc,255=cbd")
    assert vol.data.dtype == np.uint8 and vol.data.tolist() == [[[0, 2, 1], [1, 2, 0]]]
    assert vol.spacing == pytest.approx((1.0, 0.5, 0.5)) and vol.spacing_from_metadata
    assert dict(vol.metadata["phase_map"]) == {0: 0, 128: 2, 255: 1}
    with pytest.raises(ValueError, match=r"phase volume .*seg\.tif holds 1 voxel value .*255 \(2 voxels\)"):
        load_phases(path, {0: "pore", 128: "nmc"})
    with pytest.raises(ValueError, match="unknown phase"):
        load_phases(path, "0=foo")


def test_volume_is_read_only():
    vol = Volume(np.zeros((1, 2, 2)), (1, 1, 1), "x", "npy", False, {"a": 1})
    with pytest.raises(TypeError):
        vol.metadata["b"] = 2  # type: ignore[index]
    with pytest.raises(AttributeError):
        vol.spacing = (2.0, 2.0, 2.0)  # type: ignore[misc]
    assert "shape=(1, 2, 2)" in repr(vol)


# --------------------------------------------------------------------------- real data (optional)


@pytest.mark.skipif(not REAL_3PHASE.exists(), reason=f"real data not available at {REAL_3PHASE}")
def test_real_calendered_three_phase_volume():
    vol = load_phases(REAL_3PHASE, {0: "pore", 1: "nmc", 2: "cbd"})
    assert vol.data.shape == (251, 301, 301) and vol.data.dtype == np.uint8
    assert set(np.unique(vol.data).tolist()) == {0, 1, 2}
    assert not vol.spacing_from_metadata  # the file only carries a 72 dpi default


@pytest.mark.skipif(not REAL_NANOCT.exists(), reason=f"real data not available at {REAL_NANOCT}")
def test_real_nanoct_slice():
    vol = load_volume(REAL_NANOCT)
    assert vol.data.shape == (1, 499, 601) and vol.data.dtype == np.float32
    assert np.isfinite(vol.data).all()


def test_every_format_has_one_registered_reader_returning_loaded(tmp_path):
    """The registry covers FORMATS, and each reader returns the one result type."""
    assert set(io.READERS) == set(io.FORMATS)
    data = ramp((2, 3, 4))
    save_tiff(tmp_path / "v.tif", data, 0.5)
    (tmp_path / "slices").mkdir()
    for i in range(2):
        save_tiff(tmp_path / "slices" / f"s{i}.tif", data[i], 0.5)
    with h5py.File(tmp_path / "v.h5", "w") as f:
        f["d"] = data
    zarr.save_array(str(tmp_path / "v.zarr"), data)
    np.save(tmp_path / "v.npy", data)
    data.astype("<u2").tofile(tmp_path / "v.raw")
    paths = {"tiff": "v.tif", "slices": "slices", "hdf5": "v.h5", "zarr": "v.zarr", "npy": "v.npy", "raw": "v.raw"}
    for fmt, name in paths.items():
        reader = io.READERS[fmt]
        opts = io.ReadOptions(shape=data.shape, dtype="uint16") if fmt == "raw" else io.ReadOptions()
        got = reader.read(tmp_path / name, opts)
        assert isinstance(got, io.Loaded) and reader.name == fmt
        np.testing.assert_array_equal(got.data, data)
        assert got.source.startswith(os.fspath(tmp_path / name))


def test_messages_name_the_file_not_its_folder():
    from core.io._common import _name, _short

    assert _name("/srv/data/scan.h5::/entry/data") == "scan.h5::/entry/data"
    assert _name("/srv/data/stack.tif") == "stack.tif"
    exc = OSError("cannot identify image file '/srv/data/run 1/s2.png'")
    assert _short(exc, path="/srv/data/run 1/s2.png") == "cannot identify image file 's2.png'"


def test_list_datasets_refuses_fifos_and_broken_files(tmp_path):
    os.mkfifo(tmp_path / "pipe.h5")
    with pytest.raises(ValueError, match=r"pipe\.h5 is a named pipe \(FIFO\), not a regular file"):
        list_datasets(tmp_path / "pipe.h5")
    (tmp_path / "text.h5").write_text("not HDF5")
    with pytest.raises(io.InputFileError, match=r"could not read text\.h5 as HDF5"):
        list_datasets(tmp_path / "text.h5")
    (tmp_path / "blank.zarr").mkdir()
    with pytest.raises(io.InputFileError, match=r"blank\.zarr holds no zarr metadata"):
        list_datasets(tmp_path / "blank.zarr")


def test_npy_size_must_match_its_header_with_and_without_mmap(tmp_path):
    data = ramp((4, 4, 4))
    np.save(tmp_path / "v.npy", data)
    whole = (tmp_path / "v.npy").read_bytes()
    (tmp_path / "long.npy").write_bytes(whole + b"\0" * 32)
    (tmp_path / "cut.npy").write_bytes(whole[:-32])
    for mmap in (True, False):
        np.testing.assert_array_equal(load_volume(tmp_path / "v.npy", mmap=mmap).data, data)
        for name in ("long.npy", "cut.npy"):
            with pytest.raises(io.InputFileError, match=rf"{name}: the \.npy header declares shape \(4, 4, 4\)"):
                load_volume(tmp_path / name, mmap=mmap)


# --------------------------------------------------------------------------- propose_phase_map


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64,
                                   np.float32, np.float64, ">u2"])
def test_propose_phase_map_value_order_any_integer_dtype(dtype):
    from core.io.phase_map import propose_phase_map

    vol = np.zeros((3, 4, 5), dtype=dtype)
    vol[1] = 7
    vol[2, :2] = 3
    before = vol.copy()
    values, shares, proposed = propose_phase_map(vol)
    np.testing.assert_array_equal(values, [0, 3, 7])
    np.testing.assert_allclose(shares, [30 / 60, 10 / 60, 20 / 60])
    assert proposed == {0: 0, 3: 1, 7: 2}  # low -> high: pore, CBD, NMC, whatever the shares
    np.testing.assert_array_equal(vol, before)  # not modified


def test_propose_phase_map_negative_two_and_many_values():
    from core.io.phase_map import propose_phase_map

    two = np.array([[[-5, 4], [4, 4]]], dtype=np.int8)
    assert propose_phase_map(two)[2] == {-5: 0, 4: 2}
    five = np.arange(5, dtype=np.uint8).reshape(1, 1, 5)
    assert propose_phase_map(five)[2] == {0: 0, 1: 1, 2: 1, 3: 1, 4: 2}
    assert propose_phase_map(np.arange(9, dtype=np.uint8).reshape(1, 3, 3)) is None  # > 8 values: greyscale
    assert propose_phase_map(np.arange(9, dtype=np.uint8).reshape(1, 3, 3), max_values=9) is not None


def test_propose_phase_map_greyscale_floats_are_not_proposed():
    from core.io.phase_map import propose_phase_map

    assert propose_phase_map(np.array([[[0.0, 0.5, 1.0]]])) is None
    assert propose_phase_map(np.array([[[0.0, np.nan, 1.0]]])) is None
    with pytest.raises(TypeError, match="numeric"):
        propose_phase_map(np.array([["a"]]))
    with pytest.raises(ValueError, match="empty"):
        propose_phase_map(np.zeros((0, 2, 2), np.uint8))


def test_proposed_map_applies():
    """The proposal covers every value, so apply_phase_map takes it as is."""
    from core.io.phase_map import propose_phase_map

    vol = np.array([[[10, 20, 30, 20]]], dtype=np.uint32)
    codes = apply_phase_map(vol, propose_phase_map(vol)[2])
    np.testing.assert_array_equal(codes, [[[0, 1, 2, 1]]])


@pytest.mark.parametrize("dtype", [np.int8, ">i2", np.int16, np.uint16, bool])
def test_propose_phase_map_extreme_values_of_narrow_dtypes(dtype):
    """The histogram path of 8/16-bit data reads the sign and byte order right."""
    from core.io.phase_map import propose_phase_map

    dt = np.dtype(dtype)
    if dt == bool:
        vals = [False, True]
    else:
        info = np.iinfo(dt)
        vals = [info.min, 0, info.max] if info.min < 0 else [0, 1, info.max]
    vol = np.array(vals * 2, dtype=dt).reshape(1, 2, len(vals))
    values, shares, proposed = propose_phase_map(vol)
    np.testing.assert_array_equal(values, [int(v) for v in vals])
    np.testing.assert_allclose(shares, [1 / len(vals)] * len(vals))
    np.testing.assert_array_equal(apply_phase_map(vol, proposed).ravel()[: len(vals)],
                                  [0, 2] if dt == bool else [0, 1, 2])


def test_boundary_density_and_the_thickest_phase():
    """Faces with other phases per voxel (hand-counted on a 2D toy), and the map that called a thin film NMC."""
    from core.codes import CBD, NMC, PORE
    from core.io.phase_map import boundary_density, thicker_than_nmc

    codes = np.full((10, 10), PORE, np.int8)
    codes[2:8, 2:8] = NMC  # a 6×6 particle: 24 faces to the film around it
    codes[1, 1:9], codes[8, 1:9], codes[1:9, 1], codes[1:9, 8] = CBD, CBD, CBD, CBD  # an 8×8 ring of 28 voxels
    d = boundary_density(codes)
    assert d[NMC] == pytest.approx(24 / 36)
    assert d[CBD] == pytest.approx((24 + 32) / 28)  # inner faces to the particle, outer to the pore
    assert d[PORE] == pytest.approx(32 / 36)
    assert thicker_than_nmc(codes) == []
    swapped = np.where(codes == NMC, CBD, np.where(codes == CBD, NMC, codes)).astype(np.int8)
    assert thicker_than_nmc(swapped) == [PORE, CBD]
    # ignored voxels neither count nor bound; no NMC, none
    assert boundary_density(np.where(codes == PORE, -1, codes).astype(np.int8))[NMC] == pytest.approx(24 / 36)
    assert thicker_than_nmc(np.full((4, 4), PORE, np.int8)) == []
    with pytest.raises(TypeError, match="2D or 3D integer"):
        boundary_density(np.zeros(5, np.int8))


def test_the_thickest_phase_tells_a_wrong_nmc_on_the_real_labels():
    """The rule behind :data:`core.io.phase_map.THICKER_RATIO`, on every real labelled slice and the calendered
    volume's middle slice: the true map says nothing; the map calling the CBD value NMC, and the value-order
    proposal (0 pore, 1 CBD, 2 NMC: wrong for both files), are told."""
    from core.io.phase_map import apply_phase_map, thicker_than_nmc

    labels = sorted((REAL_NANOCT.parent).glob("raw_*_label.tif"))
    if not labels or not REAL_3PHASE.is_file():
        pytest.skip("the real labelled slices or the calendered volume are absent (../shared/data/real)")
    cases = [(tifffile.imread(p), {0: "nmc", 1: "cbd", 2: "pore"}) for p in labels]
    cases.append((tifffile.imread(REAL_3PHASE)[125], {0: "pore", 1: "nmc", 2: "cbd"}))
    text = lambda m: ",".join(f"{v}={p}" for v, p in m.items())  # noqa: E731
    for raw, truth in cases:
        assert thicker_than_nmc(apply_phase_map(raw, text(truth))) == []
        cbd_as_nmc = {v: {"nmc": "cbd", "cbd": "nmc"}.get(p, p) for v, p in truth.items()}
        assert thicker_than_nmc(apply_phase_map(raw, text(cbd_as_nmc))) != []
        assert thicker_than_nmc(apply_phase_map(raw, "0=pore,1=cbd,2=nmc")) != []


def _restrided(plane: np.ndarray, width: int) -> np.ndarray:
    flat = plane.ravel()
    return flat[: flat.size // width * width].reshape(-1, width)


def test_row_length_finds_a_raw_files_true_x_size():
    """A plane's bytes re-read with rows too long or short, or z and x swapped, line up best at the true x size."""
    from scipy import ndimage

    from core.io.raw import row_length

    rng = np.random.default_rng(3)
    vol = ndimage.gaussian_filter(rng.random((32, 48, 64)), 3)
    assert row_length(vol[16]) == 64
    for d in (3, 7, -20, 40):
        assert row_length(_restrided(vol[16], 64 + d)) == 64, d
    assert row_length(vol.ravel().reshape(64, 48, 32)[32]) == 64  # z and x swapped
    # noise, a flat plane and tiny planes are never named
    assert all(row_length(p) == p.shape[1] for p in (rng.random((64, 96)), np.zeros((40, 40)), rng.random((8, 8))))
    with pytest.raises(ValueError, match="2D"):
        row_length(vol)


def test_row_length_on_the_real_slices():
    """The figures behind :data:`core.io.raw.ROW_GAIN`: every real slice as it is lines up at its own width, and
    re-read 3 to 60 voxels off, at its true width again."""
    from core.io.raw import row_length

    slices = sorted(p for p in REAL_NANOCT.parent.glob("raw_*.tif") if "label" not in p.name)
    if not slices or not REAL_3PHASE.is_file():
        pytest.skip("the real nano-CT slices or the calendered volume are absent (../shared/data/real)")
    planes = [tifffile.imread(p) for p in slices] + [tifffile.imread(REAL_3PHASE)[125]]
    for plane in planes:
        w = plane.shape[1]
        assert row_length(plane) == w
        for d in (3, 7, -30, 60):
            assert row_length(_restrided(plane, w + d)) == w
    cal = tifffile.imread(REAL_3PHASE)
    assert row_length(cal.ravel().reshape(301, 301, 251)[150]) == 301  # 251×301×301 read as 301×301×251
