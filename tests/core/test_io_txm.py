"""Zeiss Xradia ``.txm`` reconstructions (:mod:`core.io.txm`): OLE compound files written by :mod:`cfb_files`
(checked first against olefile, the library the reader opens them with), read whole (:func:`core.io.load_volume`)
and lazily (:func:`core.chunked.open_lazy`) to the voxels written."""

from __future__ import annotations

import re
import struct

import numpy as np
import pytest

from core.io import InputFileError, detect_format, load_volume
from core.io.txm import _runs, _streams, read_txm_header

from cfb_files import txm_streams, write_compound, write_txm
from reading_checks import read_both, refused

olefile = pytest.importorskip("olefile")


@pytest.mark.parametrize("version", [3, 4])
@pytest.mark.parametrize("interleave", [False, True])
@pytest.mark.parametrize("data_last", [False, True])
def test_the_runs_of_every_stream_hold_what_olefile_reads(tmp_path, version, interleave, data_last):
    """The sector chains followed by hand (regular and mini sectors, contiguous or in turns) against olefile."""
    vol = (np.arange(3 * 40 * 56).reshape(3, 40, 56) * 7 % 3000).astype(np.uint16)  # 4,480-byte slices
    streams = {**txm_streams(vol, 0.5), "Tiny/Empty": b"", "Tiny/Odd": bytes(range(77))}
    path = write_compound(tmp_path / "f.txm", streams, version=version, interleave=interleave, data_last=data_last)
    ole = olefile.OleFileIO(str(path), raise_defects=olefile.DEFECT_INCORRECT)  # strict: the writer is right
    raw = path.read_bytes()
    with ole:
        found = _streams(ole)
        assert set(found) == {k.lower() for k in streams}
        fat = np.asarray(ole.fat, np.uint32)
        for key, data in streams.items():
            runs = _runs(ole, found[key.lower()], "f.txm", fat)
            got = b"".join(raw[off:off + n] for off, n in runs)
            assert got == ole.openstream(key).read() == data, key
            if interleave and len(data) >= 4096:
                assert len(runs) > 1  # fragmented chains are what is tested


def test_a_volume_with_its_voxel_size_whole_lazily_and_memory_mapped(tmp_path):
    vol = (np.random.default_rng(0).random((205, 64, 64)) * 60000).astype(np.uint16)  # > 100 slices: ImageData3
    path = write_txm(tmp_path / "scan.txm", vol, 0.7)
    assert detect_format(path) == "txm"
    layout = read_txm_header(path)
    assert layout.shape == (205, 64, 64) and layout.contiguous  # slices of whole sectors written in order
    v = read_both(path)
    np.testing.assert_array_equal(v.data, vol)
    assert isinstance(v.data, np.memmap) and v.fmt == "txm"
    assert v.spacing == (0.7, 0.7, 0.7) and v.spacing_from_metadata  # the float32 0.7, not 0.699999988
    assert v.metadata["txm_images"] == 205 and "PixelSize" in v.metadata["spacing_unit"]
    np.testing.assert_array_equal(load_volume(path, mmap=False).data, vol)


@pytest.mark.parametrize("dtype", ["float32", "int16", "uint8", "float64"])
def test_fragmented_and_small_slices_of_each_type(tmp_path, dtype):
    rng = np.random.default_rng(1)
    big = (rng.random((4, 48, 50)) * 100).astype(dtype)  # 2,400+ byte slices: mini stream for the small types
    for name, kw in (("turns.txm", {"interleave": True}), ("v4.txm", {"version": 4})):
        path = write_txm(tmp_path / name, big, 1.25, **kw)
        v = read_both(path)
        np.testing.assert_array_equal(v.data, big)
        assert v.data.dtype == np.dtype(dtype) and v.spacing == (1.25,) * 3
    tiny = np.arange(2 * 3 * 5, dtype=dtype).reshape(2, 3, 5)
    np.testing.assert_array_equal(read_both(write_txm(tmp_path / "tiny.txm", tiny, None)).data, tiny)


def test_without_a_pixel_size_the_file_states_none(tmp_path):
    vol = np.zeros((2, 8, 8), np.uint16)
    for pixel in (None, 0.0, float("nan")):
        v = load_volume(write_txm(tmp_path / "n.txm", vol, pixel))
        assert v.spacing == (1.0, 1.0, 1.0) and not v.spacing_from_metadata
    assert load_volume(tmp_path / "n.txm", spacing=0.4).spacing == (0.4, 0.4, 0.4)


def test_projection_files_are_refused_with_what_to_open_instead(tmp_path):
    for name in ("tomo.txrm", "ref.XRM"):
        p = write_txm(tmp_path / name, np.zeros((2, 8, 8), np.uint16))
        for call in (detect_format, load_volume):
            with pytest.raises(InputFileError, match=rf"^{name} is a Zeiss Xradia \.(txrm|xrm) file: the projections "
                                                     r"\(radiographs\) of a scan, not a volume; open the reconstructed "
                                                     r"\.txm"):
                call(p)


def _refused(tmp_path, streams=None, data=None, name="bad.txm") -> str:
    p = tmp_path / name
    if data is not None:
        p.write_bytes(data)
    else:
        write_compound(p, streams)
    return refused(p)


def test_what_is_not_a_txm_or_is_broken_is_refused_in_one_sentence(tmp_path):
    vol = (np.arange(3 * 64 * 64) % 999).astype(np.uint16).reshape(3, 64, 64)
    good = txm_streams(vol, 0.5)
    assert "is not a Zeiss .txm file (it is not an OLE compound file)" in _refused(tmp_path, data=b"II*\0" + bytes(600))
    no_width = {k: v for k, v in good.items() if k != "ImageInfo/ImageWidth"}
    assert "has no ImageInfo/ImageWidth stream" in _refused(tmp_path, no_width)
    assert "ImageInfo/DataType 12 is not one of Xradia's numeric types" in _refused(
        tmp_path, {**good, "ImageInfo/DataType": struct.pack("<I", 12)})
    assert "holds 2 bytes, fewer than a I value" in _refused(tmp_path, {**good, "ImageInfo/ImageHeight": b"\1\0"})
    assert "states an empty volume" in _refused(tmp_path, {**good, "ImageInfo/NoOfImages": struct.pack("<I", 0)})
    missing = {k: v for k, v in good.items() if k != "ImageData1/Image2"}
    assert "states 3 images but has no stream for image 2 (ImageData1/Image2)" in _refused(tmp_path, missing)
    short = {**good, "ImageData1/Image3": good["ImageData1/Image3"][:-2]}
    assert "image 3 holds 8,190 bytes, fewer than the 8,192 of a 64×64 uint16 slice" in _refused(tmp_path, short)
    whole = write_compound(tmp_path / "whole.txm", good).read_bytes()  # the allocation table last: lost
    assert "could not read cut.txm as a compound file: truncated or corrupt (incomplete OLE sector)" == _refused(
        tmp_path, data=whole[:-5000], name="cut.txm")
    whole = write_compound(tmp_path / "whole.txm", good, data_last=True).read_bytes()
    np.testing.assert_array_equal(load_volume(tmp_path / "whole.txm").data, vol)
    # the slices last: the file opens, the last slice's sectors are missing
    for cut in (600, 100):  # a sector or more, or inside the last sector
        assert re.search(r"^cut\.txm: its slices need [\d,]+ bytes, but the file has [\d,]+ \(truncated file\?\)$",
                         _refused(tmp_path, data=whole[:-cut], name="cut.txm"))
    # a link of a slice's chain pointing past the allocation table (the table is the file's first sector)
    with olefile.OleFileIO(str(tmp_path / "whole.txm")) as ole:
        start = ole.root.kids[[k.name for k in ole.root.kids].index("ImageData1")].kids[0].isectStart
    linked = whole[:512 + 4 * start] + struct.pack("<I", 0x00FFFFFF) + whole[512 + 4 * start + 4:]
    assert ("bad.txm is truncated or corrupt: a sector chain of its compound file runs past the file's end (sector "
            "16,777,215)" == _refused(tmp_path, data=linked))
    # a directory entry pointing past the directory: olefile drops that storage and notes why
    at = whole.index("ImageInfo".encode("utf-16-le"))
    broken = whole[:at + 76] + struct.pack("<I", 0x00FFFFFF) + whole[at + 80:]
    assert ("bad.txm is a damaged compound file: truncated or corrupt (OLE DirEntry index out of range)"
            == _refused(tmp_path, data=broken))


def test_inspect_names_the_format_and_voxel_size(tmp_path, capsys):
    from core.cli import main

    path = write_txm(tmp_path / "scan.txm", (np.arange(4 * 32 * 32) % 700).astype(np.uint16).reshape(4, 32, 32), 0.35)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "txm, 4×32×32 voxels" in out and "0.35" in out


def test_without_olefile_the_file_is_refused_saying_what_to_install(tmp_path, monkeypatch):
    import sys

    path = write_txm(tmp_path / "scan.txm", np.zeros((2, 8, 8), np.uint16))
    monkeypatch.setitem(sys.modules, "olefile", None)  # import olefile raises ImportError
    assert refused(path) == "reading scan.txm needs the olefile package (pip install -r requirements.txt)"
