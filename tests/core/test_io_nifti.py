"""NIfTI (core.io.nifti): volumes and label maps as ITK-SNAP, 3D Slicer or nnU-Net write them, (x, y, z) read as
(z, y, x) with the voxel size in the header's unit, whole and lazily alike; what is not one volume refused."""

from __future__ import annotations

import numpy as np
import pytest

from core.io import InputFileError, detect_format, load_volume

from reading_checks import read_both, refused

nib = pytest.importorskip("nibabel")

VOL = (np.random.default_rng(0).random((6, 20, 24)) * 4000).astype(np.uint16)  # (z, y, x)


def _write(path, zyx: np.ndarray, zooms_xyz=(0.0004, 0.0005, 0.0006), unit: str | None = "mm", slope=None):
    img = nib.Nifti1Image(np.asarray(zyx).T, np.diag([*zooms_xyz, *(1.0,) * (4 - len(zooms_xyz))]))
    img.header.set_zooms(zooms_xyz[:img.ndim] if img.ndim < 3 else tuple(zooms_xyz) + (1.0,) * (img.ndim - 3))
    if unit is not None:
        img.header.set_xyzt_units(unit)
    if slope is not None:
        img.header.set_slope_inter(*slope)
    nib.save(img, str(path))


@pytest.mark.parametrize("name", ["ct.nii", "ct.nii.gz", "CT.NII.GZ"])
def test_a_volume_in_its_voxel_order_with_its_voxel_size(tmp_path, name):
    """(x, y, z) stored, (z, y, x) read, whole and lazily alike; pixdim in mm read as µm (to float32's digits), the
    unit said for the user to check."""
    path = tmp_path / name
    _write(path, VOL)
    assert detect_format(path) == "nifti"
    v = read_both(path)
    np.testing.assert_array_equal(v.data, VOL)
    assert v.data.dtype == np.uint16 and v.spacing == (0.6, 0.5, 0.4) and v.spacing_from_metadata
    assert v.metadata["spacing_unit"] == "mm (the header's unit)"


@pytest.mark.parametrize("unit, zooms_xyz, said", [("micron", (4.0, 5.0, 6.0), "µm (the header's unit)"),
                                                  ("meter", (4e-6, 5e-6, 6e-6), "m (the header's unit)"),
                                                  (None, (0.004, 0.005, 0.006), "mm (no unit in the header")])
def test_the_header_s_unit(tmp_path, unit, zooms_xyz, said):
    """Each read as µm: (6, 5, 4) from µm, metres or no unit (mm)."""
    path = tmp_path / "v.nii"
    _write(path, VOL, zooms_xyz, unit)
    v = load_volume(path)
    assert v.spacing == (6.0, 5.0, 4.0) and v.metadata["spacing_unit"].startswith(said)


def test_a_label_map_analysed_as_phases_and_a_scaled_volume_as_floats(tmp_path):
    """An nnU-Net-style segmentation (uint8 0 / 1 / 2) is read as stored, for a phase map; values scaled by the
    header (scl_slope / scl_inter) are read scaled, as nibabel reads them."""
    from core.io import load_phases

    labels = np.zeros((8, 16, 16), np.uint8)
    labels[:, 4:12, 4:12] = 2
    labels[:, 2:4, :] = 1
    _write(tmp_path / "seg.nii.gz", labels)
    phases = load_phases(tmp_path / "seg.nii.gz", {0: "pore", 1: "cbd", 2: "nmc"})
    np.testing.assert_array_equal(phases.data, labels)
    _write(tmp_path / "scaled.nii", VOL, slope=(2.0, -100.0))
    v = read_both(tmp_path / "scaled.nii")
    assert v.data.dtype.kind == "f"
    np.testing.assert_allclose(v.data, VOL * 2.0 - 100.0)


def test_a_single_slice_and_trailing_axes_of_one(tmp_path):
    _write(tmp_path / "slice.nii", VOL[0], (0.0004, 0.0005))  # (y, x) stored as (x, y)
    v = read_both(tmp_path / "slice.nii")
    np.testing.assert_array_equal(v.data, VOL[:1])
    img = nib.Nifti1Image(VOL.T[..., None], np.eye(4))
    nib.save(img, str(tmp_path / "t1.nii"))
    np.testing.assert_array_equal(read_both(tmp_path / "t1.nii").data, VOL)


def test_refusals_in_one_sentence(tmp_path):
    img = nib.Nifti1Image(np.zeros((4, 5, 6, 3), np.uint8), np.eye(4))
    nib.save(img, str(tmp_path / "series.nii"))
    msg = refused(tmp_path / "series.nii")
    assert "series.nii has 4 axes (4×5×6×3): a time series or channels, not one volume" in msg
    (tmp_path / "fake.nii").write_bytes(b"not a nifti header at all" * 20)
    assert refused(tmp_path / "fake.nii").startswith("fake.nii is not a NIfTI file nibabel can read")
    img = nib.Nifti1Image(np.zeros((4, 5, 6), np.complex64), np.eye(4))
    nib.save(img, str(tmp_path / "complex.nii"))
    assert "complex.nii holds data of dtype complex64" in refused(tmp_path / "complex.nii")
    with pytest.raises(InputFileError):
        load_volume(tmp_path / "fake.nii")


def test_truncated_files_are_refused_without_a_server_path(tmp_path):
    """A .nii cut short: said from its size before any read; a .nii.gz cut short: said when its stream ends."""
    _write(tmp_path / "full.nii", VOL)
    data = (tmp_path / "full.nii").read_bytes()
    (tmp_path / "cut.nii").write_bytes(data[:2000])
    assert refused(tmp_path / "cut.nii") == (f"cut.nii is truncated: its header states {352 + VOL.nbytes:,} bytes with "
                                             "its voxels, the file holds 2,000")
    _write(tmp_path / "full.nii.gz", VOL)
    data = (tmp_path / "full.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(data[:len(data) // 2])
    assert refused(tmp_path / "cut.nii.gz").startswith("cut.nii.gz cannot be read: ")


@pytest.mark.parametrize("order", ["<", ">"])
def test_an_uncompressed_unscaled_file_is_memory_mapped_for_the_lazy_reader(tmp_path, order):
    """The chunked engine's boxes of a ``.nii`` whose values are stored as read come from a memory map of the
    voxels (either byte order), not through nibabel; a scaled file or a ``.nii.gz`` through nibabel; the same
    boxes either way."""
    from core.chunked import open_lazy

    img = nib.Nifti1Image(VOL.T, np.eye(4))
    nib.save(nib.Nifti1Image(VOL.T, np.eye(4), header=img.header.as_byteswapped(order)), str(tmp_path / "v.nii"))
    assert nib.load(str(tmp_path / "v.nii")).dataobj.dtype == np.dtype(order + "u2")
    _write(tmp_path / "v.nii.gz", VOL)
    _write(tmp_path / "scaled.nii", VOL, slope=(2.0, -100.0))
    kinds = {name: type(open_lazy(tmp_path / name).reader).__name__ for name in ("v.nii", "v.nii.gz", "scaled.nii")}
    assert kinds == {"v.nii": "_MemmapSource", "v.nii.gz": "_BoxReaderSource", "scaled.nii": "_BoxReaderSource"}
    box = (slice(1, 5), slice(3, 17), slice(2, 21))
    np.testing.assert_array_equal(open_lazy(tmp_path / "v.nii").reader[box], VOL[box])
    np.testing.assert_array_equal(open_lazy(tmp_path / "v.nii.gz").reader[box], VOL[box])
    np.testing.assert_array_equal(open_lazy(tmp_path / "scaled.nii").reader[box], VOL[box] * 2.0 - 100.0)
    assert read_both(tmp_path / "v.nii").data.dtype == np.uint16
