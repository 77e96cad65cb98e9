"""Raw volumes laid out by a header (:mod:`core.io.rawheader`): ESRF ``.vol.info`` and MetaImage ``.mhd`` / ``.mha``,
read whole (:func:`core.io.load_volume`) and lazily (:func:`core.chunked.open_lazy`) to the voxels written."""

from __future__ import annotations

import numpy as np
import pytest

from core.chunked import open_lazy
from core.io import InputFileError, detect_format, load_volume
from core.io.rawheader import NamedLayout, header_beside, layout_from_name, read_metaimage_header

from reading_checks import read_both

ZYX = (3, 4, 5)


def _data(dtype) -> np.ndarray:
    return (np.arange(np.prod(ZYX)).reshape(ZYX) * 3 + 1).astype(dtype)


def _vol_info(tmp_path, *, order="LOWBYTEFIRST", extra="", dtype="<f4", voxel="0.65"):
    data = _data(np.float32).astype(dtype)
    vol = tmp_path / "rec.vol"
    vol.write_bytes(data.tobytes())
    (tmp_path / "rec.vol.info").write_text(
        "! PyHST_SLAVE VOLUME INFO FILE\n"
        f"NUM_X =  {ZYX[2]}\nNUM_Y =  {ZYX[1]}\nNUM_Z =  {ZYX[0]}\nvoxelSize =  {voxel}\nBYTEORDER = {order}\n"
        f"ValMin =  0.0\nValMax =  1.0\n{extra}")
    return vol, data


_both = read_both


@pytest.mark.parametrize("order, dtype", [("LOWBYTEFIRST", "<f4"), ("HIGHBYTEFIRST", ">f4")])
def test_esrf_vol_info_gives_layout_and_voxel_size(tmp_path, order, dtype):
    vol, data = _vol_info(tmp_path, order=order, dtype=dtype)
    v = _both(vol)
    np.testing.assert_array_equal(v.data, data.astype(np.float32))
    assert v.data.dtype == np.float32 and v.data.dtype.isnative
    assert v.fmt == "raw" and v.spacing == (0.65, 0.65, 0.65) and v.spacing_from_metadata
    assert v.metadata["layout_from"] == "ESRF .vol.info" and v.metadata["header"] == "rec.vol.info"
    # a layout given by the caller wins over the header (and the voxel size is then not the header's)
    given = load_volume(vol, shape=(ZYX[0] * ZYX[1], ZYX[2]), dtype="float32", byte_order=dtype[0])
    assert given.data.shape == (1, 12, 5) and not given.spacing_from_metadata


def test_esrf_data_type_line_and_missing_voxel_size(tmp_path):
    data = _data(np.uint16)
    vol = tmp_path / "seg.vol"
    vol.write_bytes(data.tobytes())
    (tmp_path / "seg.vol.info").write_text(f"NUM_X = {ZYX[2]}\nNUM_Y = {ZYX[1]}\nNUM_Z = {ZYX[0]}\n"
                                           "DATA_TYPE = UINT16\n")
    v = _both(vol)
    np.testing.assert_array_equal(v.data, data)
    assert v.spacing == (1.0, 1.0, 1.0) and not v.spacing_from_metadata


def test_esrf_header_that_cannot_be_used_is_refused_in_one_sentence(tmp_path):
    vol, _ = _vol_info(tmp_path)
    (tmp_path / "rec.vol.info").write_text("NUM_X = 5\nNUM_Y = 4\n")
    with pytest.raises(InputFileError, match=r"header rec\.vol\.info: NUM_Z must be a positive whole number, got"):
        load_volume(vol)
    (tmp_path / "rec.vol.info").write_text("NUM_X = 5\nNUM_Y = 4\nNUM_Z = 4\n")  # one plane too many
    with pytest.raises(InputFileError, match=r"has 240 bytes .* needs 320 bytes"):
        load_volume(vol)
    with pytest.raises(InputFileError, match=r"has 240 bytes .* needs 320 bytes"):
        open_lazy(vol)
    (tmp_path / "rec.vol.info").write_text("NUM_X = 5\nNUM_Y = 4\nNUM_Z = 3\nBYTEORDER = MIDDLE\n")
    with pytest.raises(InputFileError, match="BYTEORDER must be LOWBYTEFIRST or HIGHBYTEFIRST"):
        load_volume(vol)


def _mhd(tmp_path, *, data_file="scan.raw", extra="", etype="MET_USHORT", msb="False", header_size=None,
         spacing="0.0004 0.0005 0.0006"):
    lines = ["ObjectType = Image", "NDims = 3", f"DimSize = {ZYX[2]} {ZYX[1]} {ZYX[0]}", f"ElementType = {etype}",
             f"BinaryDataByteOrderMSB = {msb}", "CompressedData = False", f"ElementSpacing = {spacing}"]
    if header_size is not None:
        lines.append(f"HeaderSize = {header_size}")
    lines += [x for x in extra.splitlines() if x] + [f"ElementDataFile = {data_file}"]
    (tmp_path / "scan.mhd").write_text("\n".join(lines) + "\n")
    return tmp_path / "scan.mhd"


@pytest.mark.parametrize("msb", ["False", "True"])
def test_metaimage_mhd_read_by_its_header_or_by_its_data_file(tmp_path, msb):
    data = _data(np.uint16)
    (tmp_path / "scan.raw").write_bytes(data.astype(">u2" if msb == "True" else "<u2").tobytes())
    mhd = _mhd(tmp_path, msb=msb)
    assert detect_format(mhd) == "metaimage" and detect_format(tmp_path / "x.MHA") == "metaimage"
    v = _both(mhd)
    np.testing.assert_array_equal(v.data, data)
    # x y z spacing in mm (the MetaImage convention) -> z y x in µm
    np.testing.assert_allclose(v.spacing, (0.6, 0.5, 0.4))
    assert v.spacing_from_metadata and v.metadata["spacing_unit"] == "mm (the MetaImage convention)"
    # the data file picked instead: its header beside it is read
    r = _both(tmp_path / "scan.raw")
    np.testing.assert_array_equal(r.data, data)
    assert r.fmt == "raw" and r.spacing == v.spacing and r.metadata["layout_from"] == "MetaImage"


def test_metaimage_mha_local_and_header_size(tmp_path):
    data = _data(np.float32)
    header = (f"ObjectType = Image\nNDims = 3\nDimSize = {ZYX[2]} {ZYX[1]} {ZYX[0]}\nElementType = MET_FLOAT\n"
              "ElementSpacing = 1 1 2\nElementDataFile = LOCAL\n").encode()
    (tmp_path / "one.mha").write_bytes(header + data.tobytes())
    v = _both(tmp_path / "one.mha")
    np.testing.assert_array_equal(v.data, data)
    assert v.spacing == (2000.0, 1000.0, 1000.0)
    # HeaderSize -1: the voxels are the data file's last bytes; HeaderSize n: n bytes skipped
    (tmp_path / "scan.raw").write_bytes(b"x" * 37 + _data(np.uint16).tobytes())
    for size in (-1, 37):
        np.testing.assert_array_equal(_both(_mhd(tmp_path, header_size=size)).data, _data(np.uint16))


def test_metaimage_2d(tmp_path):
    img = _data(np.uint8)[0]
    (tmp_path / "slice.raw").write_bytes(img.tobytes())
    (tmp_path / "slice.mhd").write_text(f"NDims = 2\nDimSize = {ZYX[2]} {ZYX[1]}\nElementType = MET_UCHAR\n"
                                        "ElementSpacing = 0.01 0.02\nElementDataFile = slice.raw\n")
    v = _both(tmp_path / "slice.mhd")
    np.testing.assert_array_equal(v.data, img[None])
    np.testing.assert_allclose(v.spacing, (10.0, 20.0, 10.0))


@pytest.mark.parametrize("change, message", [
    ({"extra": "CompressedData = True"}, "compressed MetaImage, which is not read"),
    ({"data_file": "../scan.raw"}, "only a file name in the header's own folder is read"),
    ({"data_file": "/etc/passwd"}, "only a file name in the header's own folder is read"),
    ({"data_file": "LIST"}, "spread over several data files"),
    ({"extra": "ElementNumberOfChannels = 3"}, "several channels per voxel"),
    ({"etype": "MET_STRING"}, "ElementType 'MET_STRING' is not read"),
    ({"extra": "BinaryData = False"}, "stores its voxels as text"),
])
def test_metaimage_refusals(tmp_path, change, message):
    (tmp_path / "scan.raw").write_bytes(_data(np.uint16).tobytes())
    mhd = _mhd(tmp_path, **change)
    with pytest.raises(InputFileError, match=message):
        load_volume(mhd)
    with pytest.raises(InputFileError, match=message):
        open_lazy(mhd)


def test_metaimage_data_file_linked_out_of_its_folder_is_refused(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.raw").write_bytes(_data(np.uint16).tobytes())
    here = tmp_path / "here"
    here.mkdir()
    (here / "scan.raw").symlink_to(outside / "secret.raw")
    with pytest.raises(InputFileError, match="a link out of the header's folder"):
        load_volume(_mhd(here))


def test_metaimage_naming_another_file_is_not_the_header_of_this_one(tmp_path):
    (tmp_path / "scan.raw").write_bytes(_data(np.uint16).tobytes())
    _mhd(tmp_path, data_file="other.raw")
    assert header_beside(tmp_path / "scan.raw") is None
    with pytest.raises(ValueError, match=r"needs its shape .* or a header beside it"):
        load_volume(tmp_path / "scan.raw")
    with pytest.raises(FileNotFoundError, match=r"other\.raw \(the data file of scan\.mhd\)"):
        load_volume(tmp_path / "scan.mhd")
    assert read_metaimage_header(tmp_path / "scan.mhd").data == tmp_path / "other.raw"


def _vgi(tmp_path, *, name="cathode.vol", datatype="unsigned integer", bits=16, skip=0, resolution="0.0005 0.0005 "
         "0.0007", unit="unit = mm\n", fileformat="raw"):
    """A Nikon CT Pro / VGStudio header as these programs write it (the data file named by the reconstructing
    machine's full Windows path)."""
    text = ("{volume1}\n[representation]\n"
            f"size = {ZYX[2]} {ZYX[1]} {ZYX[0]}\ndatatype = {datatype}\nbitsperelement = {bits}\n"
            f"[file1]\nSkipHeader = {skip}\nFileFormat = {fileformat}\nSize = {ZYX[2]} {ZYX[1]} {ZYX[0]}\n"
            f"Name = D:\\CT data\\2026-11\\{name}\nDatatype = {datatype}\ndatarange = 0 65535\n"
            f"BitsPerElement = {bits}\n"
            "{volumeprimitive12}\n[geometry]\nposition = 0 0 0\n"
            f"resolution = {resolution}\nscale = 1 1 1\n{unit}[volume]\nvolume = volume1\n[description]\n"
            "text = cathode\n")
    (tmp_path / "cathode.vgi").write_text(text)
    return tmp_path / "cathode.vol"


@pytest.mark.parametrize("datatype, bits, dtype", [("unsigned integer", 16, "<u2"), ("float", 32, "<f4"),
                                                   ("unsigned integer", 8, "u1"), ("signed integer", 16, "<i2")])
def test_vgstudio_vgi_gives_layout_and_voxel_size(tmp_path, datatype, bits, dtype):
    """A Nikon XT H reconstruction: X.vol with X.vgi beside it (its Name the full path of the reconstructing
    machine); x y z sizes, little-endian voxels, the resolution in mm (anisotropic here) as µm, z y x."""
    data = _data(dtype)
    vol = _vgi(tmp_path, datatype=datatype, bits=bits)
    vol.write_bytes(data.tobytes())
    v = _both(vol)
    np.testing.assert_array_equal(v.data, data)
    assert v.fmt == "raw" and v.spacing == pytest.approx((0.7, 0.5, 0.5)) and v.spacing_from_metadata
    assert v.metadata["layout_from"] == "VGStudio .vgi" and v.metadata["header"] == "cathode.vgi"
    assert "spacing_unit" not in v.metadata  # the unit is stated


def test_vgstudio_vgi_header_bytes_one_resolution_and_no_unit(tmp_path):
    """SkipHeader bytes before the voxels; one resolution value for the three axes; no unit: read as mm, said."""
    data = _data(np.uint16)
    vol = _vgi(tmp_path, skip=64, resolution="0.00032", unit="")
    vol.write_bytes(b"\0" * 64 + data.tobytes())
    v = _both(vol)
    np.testing.assert_array_equal(v.data, data)
    assert v.spacing == pytest.approx((0.32, 0.32, 0.32))
    assert v.metadata["spacing_unit"].startswith("mm (no unit in the header")


@pytest.mark.parametrize("change, message", [
    ({"datatype": "complex", "bits": 64}, r"cathode\.vgi: Datatype 'complex' with BitsPerElement '64' is not a voxel "
                                           "type read"),
    ({"bits": 12}, "BitsPerElement '12' is not a voxel type read"),
    ({"fileformat": "tiff"}, r"cathode\.vgi: its volume is stored as 'tiff', not raw"),
    ({"skip": -5}, "SkipHeader must be a number of bytes"),
])
def test_vgstudio_vgi_refusals(tmp_path, change, message):
    vol = _vgi(tmp_path, **change)
    vol.write_bytes(_data(np.uint16).tobytes())
    for read in (load_volume, open_lazy):
        with pytest.raises(InputFileError, match=message):
            read(vol)


def test_vgstudio_vgi_of_another_file_or_without_file1_is_not_this_files_header(tmp_path):
    from core.io.rawheader import read_vgi

    vol = _vgi(tmp_path, name="other.vol")
    vol.write_bytes(_data(np.uint16).tobytes())
    assert header_beside(vol) is None and read_vgi(tmp_path / "cathode.vgi").data == tmp_path / "other.vol"
    (tmp_path / "cathode.vgi").write_text("[geometry]\nresolution = 0.001\n")
    with pytest.raises(InputFileError, match=r"^cathode\.vgi is not a VGStudio header \(no \[file1\] section\)$"):
        load_volume(vol)


def test_a_header_picked_instead_of_its_volume_says_which_to_open(tmp_path):
    vol = _vgi(tmp_path)
    vol.write_bytes(_data(np.uint16).tobytes())
    (tmp_path / "rec.vol.info").write_text("NUM_X = 5\nNUM_Y = 4\nNUM_Z = 3\n")
    for header, what in (("cathode.vgi", "VGStudio / Nikon CT Pro header"),
                         ("rec.vol.info", "header of a raw volume")):
        with pytest.raises(InputFileError, match=rf"^{header.replace('.', '[.]')} is the {what}.*, not a volume: "
                                                  "open the volume file beside it"):
            detect_format(tmp_path / header)


@pytest.mark.parametrize("name, nbytes, expected", [
    ("scan_512x256x3_uint16.raw", 512 * 256 * 3 * 2, NamedLayout((3, 256, 512), "uint16", "<", "name")),
    ("rec 10×20×30 16-bit.vol", 6000 * 2, NamedLayout((30, 20, 10), "uint16", "<", "name")),
    ("v_10x20x30_BE_float32.raw", 6000 * 4, NamedLayout((30, 20, 10), "float32", ">", "name")),
    ("v_10x20x30.raw", 6000 * 4, NamedLayout((30, 20, 10), "float32", "<", "size")),  # the byte count's guess
    ("v_10x20x30.raw", 6000, NamedLayout((30, 20, 10), "uint8", "<", "size")),
    ("slice_100x50.raw", 5000 * 2, NamedLayout((1, 50, 100), "uint16", "<", "size")),  # one slice
    ("bad_10x10x10_uint8.raw", 999, None),  # the named layout does not fill the file
    ("odd_10x10x10.raw", 3000, None),  # 3 bytes per voxel: no type
    ("named_uint16_10x10x10.raw", 1000, None),  # named uint16, but one byte per voxel
    ("nodims_uint16.raw", 100, None),
    ("NMC811_4x_binned.raw", 100, None),  # "4x" is no size
])
def test_layout_from_name(tmp_path, name, nbytes, expected):
    """A raw file's name as beamline scripts, ImageJ and Avizo write it: width × height × slices, a type word, a byte
    order word; proposed only where it fills the file exactly."""
    (tmp_path / name).write_bytes(b"\0" * nbytes)
    assert layout_from_name(tmp_path / name) == expected
    assert layout_from_name(tmp_path / "missing_10x10x10.raw") is None


def test_a_raw_file_without_layout_is_told_what_its_name_suggests(tmp_path):
    (tmp_path / "scan_5x4x3_be_uint16.raw").write_bytes(_data(">u2").tobytes())
    with pytest.raises(ValueError, match=r"its name suggests shape 3 4 5 \(z y x\) and dtype uint16, big-endian\.?$"):
        load_volume(tmp_path / "scan_5x4x3_be_uint16.raw")
    np.testing.assert_array_equal(load_volume(tmp_path / "scan_5x4x3_be_uint16.raw", shape=ZYX, dtype="uint16",
                                              byte_order=">").data, _data(np.uint16))
