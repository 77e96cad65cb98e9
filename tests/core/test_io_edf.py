"""ESRF ``.edf`` images (:mod:`core.io.edf`): files written to the EDF layout by :mod:`edf_files`, read whole (:func:`core.io.load_volume`) and lazily
(:func:`core.chunked.open_lazy`) to the voxels written, alone and as a folder of slices."""

from __future__ import annotations

import numpy as np
import pytest

from core.chunked import open_lazy
from core.io import InputFileError, detect_format, load_volume

from edf_files import edf_frame as _frame
from reading_checks import read_both, refused

_both = read_both


def test_a_slice_a_volume_and_frames_with_their_pixel_size(tmp_path):
    img = (np.arange(20 * 30).reshape(20, 30) * 7 % 4000).astype(np.uint16)
    p = tmp_path / "slice_0001.edf"
    p.write_bytes(_frame(img, "PSize_1 = 6.5e-07 ;\nPSize_2 = 6.5e-07 ;\n"))
    assert detect_format(p) == "edf"
    v = _both(p)
    np.testing.assert_array_equal(v.data, img[None])
    assert v.spacing == pytest.approx((0.65, 0.65, 0.65)) and v.spacing_from_metadata and v.fmt == "edf"
    assert v.metadata["spacing_z_assumed"]
    assert (len(p.read_bytes()) - img.nbytes) % 512 == 0  # the header as the format pads it
    vol = np.random.default_rng(0).random((4, 5, 6)).astype(np.float32)
    q = tmp_path / "vol.edf"
    q.write_bytes(_frame(vol, order=">"))  # big-endian, Dim_3
    w = _both(q)
    np.testing.assert_array_equal(w.data, vol)
    assert w.data.dtype == np.float32 and w.data.dtype.isnative and not w.spacing_from_metadata
    frames = tmp_path / "frames.edf"
    frames.write_bytes(b"".join(_frame(vol[z]) for z in range(4)))  # 2D frames one after the other: a volume
    f = _both(frames)
    np.testing.assert_array_equal(f.data, vol)
    assert f.metadata["edf_frames"] == 4


def test_a_folder_of_edf_slices(tmp_path):
    vol = (np.random.default_rng(1).random((5, 12, 9)) * 255).astype(np.uint8)
    d = tmp_path / "rec"
    d.mkdir()
    for z in range(5):
        (d / f"rec_{z + 1}.edf").write_bytes(_frame(vol[z], "PSize_1 = 1e-6 ;\nPSize_2 = 1e-6 ;\n"))
    assert detect_format(d) == "slices"
    v = _both(d)
    np.testing.assert_array_equal(v.data, vol)
    assert v.spacing == pytest.approx((1.0, 1.0, 1.0)) and v.spacing_from_metadata
    # a slice of another size: refused on opening, naming the kinds
    (d / "rec_6.edf").write_bytes(_frame(vol[0, :10]))
    for read in (load_volume, open_lazy):
        with pytest.raises(InputFileError, match="rec"):
            read(d)


def _refused(tmp_path, data: bytes, name="bad.edf") -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return refused(p)


def test_what_is_not_an_edf_or_is_broken_is_refused_in_one_sentence(tmp_path):
    img = np.arange(64, dtype=np.uint16).reshape(8, 8)
    good = _frame(img)
    assert "does not start with a '{' header" in _refused(tmp_path, b"P5\n8 8\n255\n" + bytes(64))
    assert "does not end" in _refused(tmp_path, b"{\nDim_1 = 8 ;\n" + b" " * 100)
    assert "no Dim_1" in _refused(tmp_path, good.replace(b"Dim_1 = 8 ;", b"Dimx = 8 ;"))
    assert "'ComplexValue' is not one of" in _refused(tmp_path, good.replace(b"UnsignedShort", b"ComplexValue"))
    assert "its gzip-compressed frame 1 cannot be decompressed" in _refused(
        tmp_path, good.replace(b"Size = 128 ;\n", b"Size = 128 ;\nCompression = GzipCompression ;\n"))
    assert "truncated" in _refused(tmp_path, good[:-10])
    assert "less than the 128" in _refused(tmp_path, good.replace(b"Size = 128 ;", b"Size = 100 ;"))
    assert "not all 2D images of one size" in _refused(tmp_path, good + _frame(img[:4]))
    assert "are not another frame" in _refused(tmp_path, good + b"garbage after the frame")


@pytest.mark.parametrize("how", ["gzip", "bz2", "zlib"])
def test_compressed_frames_are_decompressed_a_frame_at_a_time(tmp_path, how, monkeypatch):
    vol = (np.random.default_rng(4).random((5, 9, 11)) * 3000).astype(np.uint16)
    one = tmp_path / "vol.edf"
    one.write_bytes(_frame(vol, "PSize_1 = 5e-07 ;\n", order=">", compress=how))  # one 3D frame, big-endian
    v = _both(one)
    np.testing.assert_array_equal(v.data, vol)
    assert v.data.dtype.isnative and v.metadata["edf_compression"] == how and v.spacing == pytest.approx((0.5,) * 3)
    frames = tmp_path / "frames.edf"
    frames.write_bytes(b"".join(_frame(vol[z], compress=how) for z in range(5)))
    np.testing.assert_array_equal(_both(frames).data, vol)
    import core.io.edf as edf

    calls = []
    real = edf._DECOMPRESS[how]
    monkeypatch.setitem(edf._DECOMPRESS, how, lambda b: calls.append(1) or real(b))
    np.testing.assert_array_equal(np.asarray(open_lazy(frames, chunks=(1, 9, 11)).data[2:4, 3:5]), vol[2:4, 3:5])
    assert len(calls) == 2  # chunks of one plane: the two frames read, not all five


def test_compressed_frames_that_cannot_be_read_are_refused_in_one_sentence(tmp_path):
    img = np.arange(64, dtype=np.uint16).reshape(8, 8)
    gz = _frame(img, compress="gzip")
    assert "compressed by byte offsets (ByteOffset), which is not read" in _refused(
        tmp_path, gz.replace(b"GzipCompression", b"ByteOffset     "))
    assert "Compression 'JPEGCompression' is not one of none, gzip, bzip2, zlib" in _refused(
        tmp_path, _frame(img, "Compression = JPEGCompression ;\n"))
    assert "gzip-compressed frame states no Size" in _refused(tmp_path, gz.replace(b"Size = ", b"Sise = "))
    short = _frame(img[:4], compress="gzip").replace(b"Dim_2 = 4 ;", b"Dim_2 = 8 ;")  # 64 bytes for 128
    assert "its gzip-compressed frame 1 holds 64 bytes, fewer than the 128 of its shape" in _refused(tmp_path, short)
    mixed = _frame(img, compress="gzip") + _frame(img)
    assert "not all 2D images of one size and type (and compression)" in _refused(tmp_path, mixed)
