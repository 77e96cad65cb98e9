"""One PNG or BMP image as a volume of depth 1 (:mod:`core.io.image`), and BMP slice folders with the voxel size of
a Bruker SkyScan reconstruction log beside them (:func:`core.io.folder.skyscan_pixel_size`); read whole and lazily."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from core.io import detect_format, load_volume

from reading_checks import read_both, refused


def _img(shape=(12, 17), dtype=np.uint8, seed=0):
    info = np.iinfo(dtype)
    return np.random.default_rng(seed).integers(0, min(info.max, 60000), shape).astype(dtype)


def test_one_image_in_each_mode_is_a_volume_of_depth_one(tmp_path):
    grey8, grey16 = _img(), _img(dtype=np.uint16)
    Image.fromarray(grey8).save(tmp_path / "sem.png")
    Image.fromarray(grey16).save(tmp_path / "sem16.png")
    Image.fromarray(grey8).save(tmp_path / "sem.bmp")  # 8-bit greyscale BMP
    Image.fromarray(grey8).convert("P").save(tmp_path / "palette.bmp")  # what NRecon writes: a grey palette
    Image.fromarray(np.stack([grey8] * 3, -1)).save(tmp_path / "rgb.bmp")  # a micrograph saved in colour
    rgba = np.dstack([grey8] * 3 + [np.full_like(grey8, 255)])
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    for name, want in (("sem.png", grey8), ("sem16.png", grey16), ("sem.bmp", grey8), ("rgb.bmp", grey8),
                       ("rgba.png", grey8)):
        assert detect_format(tmp_path / name) == "image"
        v = read_both(tmp_path / name)
        np.testing.assert_array_equal(v.data, want[None])
        assert v.data.dtype == want.dtype and v.fmt == "image" and not v.spacing_from_metadata
    p = read_both(tmp_path / "palette.bmp")  # the palette's indices: the grey values of a grey ramp
    assert p.data.shape == (1, 12, 17) and p.data.dtype == np.uint8
    assert load_volume(tmp_path / "sem.png", spacing=0.01).spacing == (0.01, 0.01, 0.01)


def test_colour_transparency_and_broken_images_are_refused_in_one_sentence(tmp_path):
    grey = _img()
    colour = np.stack([grey, grey, grey // 2], -1)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    assert refused(tmp_path / "colour.png") == "colour.png has 3 channels (RGB); convert it to greyscale first"
    rgba = np.dstack([grey] * 3 + [np.full_like(grey, 255)])
    rgba[0, 0, 3] = 0
    Image.fromarray(rgba).save(tmp_path / "cut_out.png")
    assert refused(tmp_path / "cut_out.png") == "cut_out.png has transparent pixels (RGBA); save it without transparency"
    (tmp_path / "notes.bmp").write_text("not an image\n")
    assert refused(tmp_path / "notes.bmp").startswith("could not read notes.bmp as BMP: ")


def test_a_jpeg_is_read_and_said_to_be_lossy(tmp_path):
    grey = (np.add.outer(np.arange(32), np.arange(48)) * 3).astype(np.uint8)  # a smooth ramp: JPEG keeps it closely
    Image.fromarray(grey).save(tmp_path / "sem.jpg", quality=95)
    v = read_both(tmp_path / "sem.jpg")
    assert v.fmt == "image" and v.data.shape == (1, 32, 48) and v.metadata["lossy"] == "JPEG"
    assert np.abs(v.data[0].astype(int) - grey).max() <= 6  # lossy: near, not equal
    # a grey saved as RGB by an encoder that leaves a little chroma: channels 2 levels apart read as their mean
    rgb = np.stack([grey, grey, grey], -1).astype(np.int16)
    rgb[..., 2] += 2
    from core.io.image import _grey

    np.testing.assert_array_equal(_grey(rgb.astype(np.uint8), "RGB", "x", tolerance=3), grey + 1)
    with pytest.raises(Exception, match="3 channels"):
        _grey(rgb.astype(np.uint8), "RGB", "x")  # lossless formats: equal channels only
    colour = np.stack([grey, grey // 2, grey], -1)
    Image.fromarray(colour).save(tmp_path / "colour.jpeg", quality=95)
    assert refused(tmp_path / "colour.jpeg") == "colour.jpeg has 3 channels (RGB); convert it to greyscale first"


REC_LOG = """[System]
Scanner=SkyScan1272
[Acquisition]
Image Pixel Size (um)=3.000000
[Reconstruction]
Reconstruction Program=NRecon
Pixel Size (um)=   0.90000
Result File Type=BMP
"""


def test_a_skyscan_bmp_folder_takes_the_voxel_size_of_its_reconstruction_log(tmp_path):
    vol = np.stack([_img((10, 14), seed=s) for s in range(5)])
    rec = tmp_path / "rec"
    rec.mkdir()
    for z in range(5):
        Image.fromarray(vol[z]).convert("P").save(rec / f"cathode_rec{z:08d}.bmp")
    assert detect_format(rec) == "slices"
    bare = read_both(rec)
    assert bare.spacing == (1.0, 1.0, 1.0) and not bare.spacing_from_metadata  # no log yet
    (rec / "cathode_rec.log").write_text(REC_LOG.replace("\n", "\r\n"), encoding="latin-1")  # Windows line ends
    (rec / "cathode.log").write_text("[Acquisition]\nImage Pixel Size (um)=3.0\n")  # the projections': not theirs
    v = read_both(rec)
    assert v.spacing == (0.9, 0.9, 0.9) and v.spacing_from_metadata
    assert v.metadata["spacing_log"] == "cathode_rec.log" and "SkyScan log cathode_rec.log" in v.metadata["spacing_unit"]
    assert v.data.shape == (5, 10, 14)
    (rec / "cathode_rec.log").write_text("[Reconstruction]\nPixel Size (um)=0\n")  # no positive size: none
    assert not read_both(rec).spacing_from_metadata
    (rec / "other.log").write_text("Pixel Size (um)=2.5\n")  # another log stating a reconstruction's size
    assert read_both(rec).spacing == (2.5, 2.5, 2.5)
    # TIFF slices that state their own pixel size keep it
    tifs = tmp_path / "tifs"
    tifs.mkdir()
    for z in range(3):
        tifffile.imwrite(tifs / f"s{z}.tif", vol[z], imagej=True, resolution=(1 / 0.25, 1 / 0.25),
                         metadata={"unit": "um"})
    (tifs / "scan_rec.log").write_text(REC_LOG)
    assert read_both(tifs).spacing == pytest.approx((0.25, 0.25, 0.25))


def test_inspect_names_the_log_the_voxel_size_comes_from(tmp_path, capsys):
    from core.cli import main

    rec = tmp_path / "rec"
    rec.mkdir()
    for z in range(3):
        Image.fromarray(_img((8, 9), seed=z)).save(rec / f"x_rec{z:04d}.bmp")
    (rec / "x_rec.log").write_text(REC_LOG)
    assert main(["inspect", str(rec)]) == 0
    out = capsys.readouterr().out
    assert "slices, 3×8×9 voxels" in out and "0.9×0.9×0.9 µm" in out and "SkyScan log x_rec.log" in out
