"""MRC (core.io.mrc): volumes as IMOD, TrakEM2, Amira or Dragonfly write them, read as stored (z, y, x) with the
voxel size in ångström read as µm, whole and lazily alike (memory-mapped, or a compressed file whole); what is not
one volume of numbers refused in one sentence."""

from __future__ import annotations

import numpy as np
import pytest

from core.io import detect_format, load_volume

from reading_checks import read_both, refused

mrcfile = pytest.importorskip("mrcfile")

VOL = (np.random.default_rng(0).random((6, 20, 24)) * 4000).astype(np.uint16)


def _write(path, data, voxel_xyz=(40.0, 50.0, 60.0), compression=None):
    with mrcfile.new(str(path), overwrite=True, compression=compression) as m:
        m.set_data(data)
        if voxel_xyz is not None:
            m.voxel_size = voxel_xyz


@pytest.mark.parametrize("name, compression", [("stack.mrc", None), ("aligned.rec", None), ("stack.MRC", None),
                                               ("stack.mrc.gz", "gzip"), ("stack.mrc.bz2", "bzip2")])
def test_a_volume_with_its_voxel_size_in_angstrom(tmp_path, name, compression):
    path = tmp_path / name
    _write(path, VOL, compression=compression)
    assert detect_format(path) == "mrc"
    v = read_both(path)
    np.testing.assert_array_equal(v.data, VOL)
    assert v.spacing == (0.006, 0.005, 0.004) and v.spacing_from_metadata
    assert v.metadata["spacing_unit"] == "Å (the MRC convention)"
    assert v.metadata["mmap"] == (compression is None)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.float32, np.float16])
def test_every_real_mode_as_stored(tmp_path, dtype):
    data = (VOL % 100).astype(dtype)
    _write(tmp_path / "v.mrc", data)
    v = read_both(tmp_path / "v.mrc")
    assert v.data.dtype == dtype
    np.testing.assert_array_equal(v.data, data)


def test_one_image_and_no_voxel_size(tmp_path):
    """A single image (2D) is a volume one plane deep; a header with no voxel size (0) states none."""
    _write(tmp_path / "image.mrc", VOL[0], voxel_xyz=None)
    v = read_both(tmp_path / "image.mrc")
    np.testing.assert_array_equal(v.data, VOL[:1])
    assert not v.spacing_from_metadata and v.spacing == (1.0, 1.0, 1.0)


def test_refusals_in_one_sentence(tmp_path):
    (tmp_path / "fake.mrc").write_bytes(b"this is not an MRC header" * 60)
    assert refused(tmp_path / "fake.mrc").startswith("fake.mrc is not an MRC file mrcfile can read")
    _write(tmp_path / "complex.mrc", np.zeros((2, 4, 4), np.complex64))
    assert "complex.mrc holds data of dtype complex64" in refused(tmp_path / "complex.mrc")


def test_a_label_map_read_as_phases(tmp_path):
    from core.io import load_phases

    labels = np.zeros((8, 16, 16), np.int8)
    labels[:, 4:12, 4:12] = 2
    labels[:, 2:4, :] = 1
    _write(tmp_path / "seg.mrc", labels)
    np.testing.assert_array_equal(load_phases(tmp_path / "seg.mrc", {0: "pore", 1: "cbd", 2: "nmc"}).data, labels)
    assert load_volume(tmp_path / "seg.mrc").data.dtype == np.int8


def test_a_truncated_file_is_refused_in_one_sentence(tmp_path):
    _write(tmp_path / "full.mrc", VOL)
    (tmp_path / "cut.mrc").write_bytes((tmp_path / "full.mrc").read_bytes()[:1500])
    assert refused(tmp_path / "cut.mrc") == "cut.mrc is truncated: its header states more voxels than the file holds"
