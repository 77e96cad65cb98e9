"""DICOM (core.io.dicom): a CT series folder in the order of its slices in space, single and multi-frame files,
their voxel size in mm read as µm, and the files refused in one sentence."""

from __future__ import annotations

import numpy as np
import pytest

from core.chunked import open_lazy
from core.io import InputFileError, detect_format, load_volume

from dicom_files import write_dicom
from reading_checks import read_both, refused

VOL = (np.random.default_rng(0).random((6, 20, 24)) * 4000).astype(np.uint16)
SHUFFLED = [3, 0, 5, 1, 4, 2]  # file k holds slice SHUFFLED[k]: the names do not give the order


@pytest.mark.parametrize("by", ["position", "instance"])
def test_a_series_folder_in_the_order_of_its_slices_with_its_voxel_size(tmp_path, by):
    """The slices in space order (ImagePositionPatient along the normal, else InstanceNumber), whatever their file
    names; PixelSpacing (y, x) and SliceThickness in mm as µm; whole and lazily read alike."""
    folder = tmp_path / "series"
    folder.mkdir()
    for k, z in enumerate(SHUFFLED):
        write_dicom(folder / f"IM{k:04d}.dcm", VOL[z], position_mm=z * 0.0006 if by == "position" else None,
                    instance=z + 1 if by == "instance" else None)
    assert detect_format(folder) == "slices"
    v = read_both(folder)
    np.testing.assert_array_equal(v.data, VOL)
    assert v.spacing == pytest.approx((0.6, 0.5, 0.4)) and v.spacing_from_metadata
    assert v.metadata["spacing_source"] == "dicom" and "spacing_z_assumed" not in v.metadata


def test_a_series_without_positions_or_numbers_keeps_the_names_order(tmp_path):
    folder = tmp_path / "series"
    folder.mkdir()
    for z in range(6):
        write_dicom(folder / f"slice{z + 1}.dcm", VOL[z])  # slice10 after slice9: natural order
    np.testing.assert_array_equal(read_both(folder).data, VOL)


def test_z_spacing_between_slices_first_and_assumed_where_none(tmp_path):
    a, b = tmp_path / "a.dcm", tmp_path / "b.dcm"
    write_dicom(a, VOL[0], thickness_mm=0.001, between_mm=0.0007)
    assert load_volume(a).spacing == pytest.approx((0.7, 0.5, 0.4))
    write_dicom(b, VOL[0], thickness_mm=None)
    v = load_volume(b)
    assert v.spacing == pytest.approx((0.4, 0.5, 0.4)) and v.metadata["spacing_z_assumed"]


@pytest.mark.parametrize("shared", [False, True])
def test_a_multi_frame_file_is_a_volume(tmp_path, shared):
    """An enhanced multi-frame file: (frames, Y, X), its spacing at the top level or in the shared functional
    groups; whole and lazily read alike; signed pixels kept signed."""
    vol = (VOL.astype(np.int32) - 2000).astype(np.int16)
    path = tmp_path / "volume.dcm"
    write_dicom(path, vol, shared=shared)
    assert detect_format(path) == "dicom"
    v = read_both(path)
    np.testing.assert_array_equal(v.data, vol)
    assert v.data.dtype == np.int16 and v.spacing == pytest.approx((0.6, 0.5, 0.4))
    assert open_lazy(path).data.shape == (6, 20, 24)


def test_one_slice_file_is_a_volume_of_depth_one(tmp_path):
    path = tmp_path / "slice.dcm"
    write_dicom(path, VOL[2].astype(np.uint8))
    v = read_both(path)
    assert v.data.shape == (1, 20, 24) and v.data.dtype == np.uint8


def test_refusals_in_one_sentence(tmp_path, monkeypatch):
    from pydicom.uid import JPEG2000Lossless

    text = tmp_path / "notes.dcm"
    text.write_text("not an image\n" * 20)
    assert refused(text) == "notes.dcm is not a DICOM file (no DICM preamble and no DICOM header)"
    rgb = tmp_path / "photo.dcm"
    write_dicom(rgb, VOL[0].astype(np.uint8), colour=True)
    assert refused(rgb) == "photo.dcm holds a colour image (RGB); export it as greyscale"
    jp2 = tmp_path / "jp2.dcm"
    write_dicom(jp2, VOL[0], syntax=JPEG2000Lossless)
    assert refused(jp2).startswith("jp2.dcm holds compressed pixel data (JPEG 2000 Image Compression (Lossless "
                                   "Only)), which is not read: export the series as uncompressed DICOM, or as TIFF")
    cut = tmp_path / "cut.dcm"
    write_dicom(cut, VOL[0])
    cut.write_bytes(cut.read_bytes()[:-300])  # the end of the pixel data lost
    assert refused(cut) == "cut.dcm is truncated or corrupt: its pixel data holds 660 bytes, its header declares 960"
    with pytest.raises(InputFileError, match=r"^cut\.dcm is truncated or corrupt"):  # read lazily: the file named
        np.asarray(open_lazy(cut).data)
    folder = tmp_path / "mixed"
    folder.mkdir()
    write_dicom(folder / "a.dcm", VOL[0])
    write_dicom(folder / "b.dcm", VOL[1, :10])
    with pytest.raises(InputFileError, match="mixed"):
        load_volume(folder)
    import builtins

    real_import = builtins.__import__

    def no_pydicom(name, *args, **kw):
        if name == "pydicom" or name.startswith("pydicom."):
            raise ImportError(name)
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_pydicom)
    with pytest.raises(InputFileError, match=r"^reading DICOM \(\.dcm\) files needs the Python package pydicom: "
                                             r"pip install pydicom$"):
        load_volume(jp2)


def test_telling_a_series_folder_reads_no_header(tmp_path, monkeypatch):
    """The data-folder browser asks every listed folder's format: a DICOM series is told by its names alone (its
    slices' headers are read to order them only when the volume is read)."""
    import core.io.dicom as dicom

    folder = tmp_path / "series"
    folder.mkdir()
    for z in range(3):
        write_dicom(folder / f"IM{z}.dcm", VOL[z])

    def refuse(files):
        raise AssertionError("series_order called")

    monkeypatch.setattr(dicom, "series_order", refuse)
    assert detect_format(folder) == "slices"


@pytest.mark.parametrize("names", ["plain", "uid"])
def test_a_series_saved_without_the_dcm_suffix_is_read_by_its_content(tmp_path, monkeypatch, names):
    """CT and PACS exports name slices without a suffix (IM0001) or by their UID (1.2.840....: its last part reads
    as a suffix); the series sits beside a DICOMDIR index and other files: its slices are told by the DICM marker
    after the preamble, read in space order as a .dcm series is; telling the folder reads no header and stops at
    the first slice it finds."""
    import core.io._common as common

    folder = tmp_path / "SE000000"
    folder.mkdir()
    for k, z in enumerate(SHUFFLED):
        name = f"IM{k:04d}" if names == "plain" else f"1.2.840.113619.2.55.3.{1000 + k}"
        write_dicom(folder / name, VOL[z], position_mm=z * 0.0006)
    write_dicom(folder / "DICOMDIR", VOL[0])  # an index file (here with pixels: it is never a slice all the same)
    (folder / "VERSION").write_text("1.0\n")  # a file without a suffix that is not DICOM
    (folder / "notes.txt").write_text("scan of cathode A\n")
    assert detect_format(folder) == "slices"
    v = read_both(folder)
    np.testing.assert_array_equal(v.data, VOL)
    assert v.spacing == pytest.approx((0.6, 0.5, 0.4)) and v.metadata["spacing_source"] == "dicom"
    one = folder / ("IM0001" if names == "plain" else "1.2.840.113619.2.55.3.1001")
    assert detect_format(one) == "dicom"
    np.testing.assert_array_equal(load_volume(one).data, VOL[SHUFFLED[1]][None])
    sniffed = []
    real = common._sniffed_dicom
    monkeypatch.setattr(common, "_sniffed_dicom", lambda p: sniffed.append(p.name) or real(p))
    assert common._holds_slices(folder) and len(sniffed) <= 3  # VERSION, DICOMDIR at most before a slice
    # a folder of suffixed slices is not sniffed; one of non-DICOM files without suffixes holds none
    other = tmp_path / "plain"
    other.mkdir()
    (other / "README").write_text("nothing to read\n")
    sniffed.clear()
    with pytest.raises(InputFileError, match="holds no"):
        detect_format(other)
    assert sniffed == ["README"]
    with pytest.raises(InputFileError, match="unknown file format for README"):
        detect_format(other / "README")


def test_a_series_rescaled_slice_by_slice_is_refused_and_one_rescale_is_read_as_stored(tmp_path):
    same, varied = tmp_path / "same", tmp_path / "varied"
    for folder in (same, varied):
        folder.mkdir()
        for z in range(3):
            rescale = (1.0, -1024.0) if folder is same else (1.0 + z, -1024.0)
            write_dicom(folder / f"IM{z}.dcm", VOL[z], position_mm=z * 0.0006, rescale=rescale)
    np.testing.assert_array_equal(read_both(same).data, VOL[:3])  # the stored values: one linear map away
    for read in (load_volume, open_lazy):
        with pytest.raises(InputFileError, match=r"^the DICOM series in folder varied rescales its slices "
                                                  r"differently \(3 RescaleSlope / RescaleIntercept pairs\)"):
            read(varied)


@pytest.mark.parametrize("name", ["report.dcm", "IM0009"])
def test_a_dicom_file_without_an_image_is_refused_in_one_sentence(tmp_path, name):
    """A DICOM file that states no image (a structured report, damage after the preamble): refused whole and lazily
    (the lazy reader raised pydicom's AttributeError on BitsAllocated), with or without its suffix."""
    from core.chunked import open_lazy

    path = tmp_path / name
    path.write_bytes(b"\0" * 128 + b"DICM" + b"garbage" * 10)
    assert refused(path) == f"{name} holds no pixel data"
    with pytest.raises(InputFileError, match=rf"^{name} holds no image \(its header states no Rows, Columns or "):
        open_lazy(path)


def _series(folder, zs_mm, *, thickness_mm=0.0006, pixel_mm=None):
    """A series of VOL's slices at positions ``zs_mm`` (mm along the normal); ``pixel_mm(k)``: slice k's PixelSpacing."""
    folder.mkdir()
    for k, z in enumerate(zs_mm):
        write_dicom(folder / f"IM{k:04d}.dcm", VOL[k], position_mm=z, thickness_mm=thickness_mm,
                    **({"pixel_mm": pixel_mm(k)} if pixel_mm else {}))
    return folder


def test_a_series_missing_a_slice_or_of_mixed_pixel_sizes_is_refused(tmp_path):
    """QA: a series with a slice left out, or whose PixelSpacing changed halfway, was read without a word (the
    first slice's size for all, the gap closed up)."""
    from core.chunked import open_lazy

    gap = _series(tmp_path / "gap", [0.0, 0.0006, 0.0012, 0.0024, 0.003, 0.0036])  # 0.0018 left out
    mixed = _series(tmp_path / "mixed", [k * 0.0006 for k in range(6)],
                    pixel_mm=lambda k: (0.0005, 0.0004) if k < 3 else (0.001, 0.0008))
    for folder, words in ((gap, r"the DICOM series in folder gap is not evenly spaced: its slices lie 0\.6 µm "
                                r"apart, but slices 3 and 4 \(in order\) lie 1\.2 µm apart: a slice or more missing "
                                r"\(2\.0 steps\)"),
                          (mixed, r"the DICOM series in folder mixed holds slices of different pixel sizes "
                                  r"\(0\.5×0\.4, 1×0\.8 µm\)")):
        with pytest.raises(InputFileError, match=words):
            load_volume(folder)
        with pytest.raises(InputFileError, match=words):
            open_lazy(folder)


def test_a_series_z_voxel_is_the_distance_between_its_slices(tmp_path):
    """QA: SliceThickness 0.6 µm was read as the z voxel of slices 0.8 µm apart (thickness is not spacing); slight
    jitter of the positions keeps the stated size."""
    apart = _series(tmp_path / "apart", [k * 0.0008 for k in range(6)])
    v = read_both(apart)
    assert v.spacing == pytest.approx((0.8, 0.5, 0.4)) and v.metadata["spacing_z_from"] == "positions"
    jitter = _series(tmp_path / "jitter", [k * 0.0006 + (0.00000002 if k % 2 else 0) for k in range(6)])
    v = read_both(jitter)
    assert v.spacing == pytest.approx((0.6, 0.5, 0.4)) and "spacing_z_from" not in v.metadata
