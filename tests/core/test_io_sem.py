"""SEM images (core.io.sem): the pixel size of FEI / Thermo Fisher and Zeiss TIFFs, and the data bar."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile

from core.chunked import open_lazy
from core.io import load_volume
from core.io.sem import data_bar, data_bar_message, find_data_bar

from sem_files import fei_text, with_bar, write_sem_tiff, zeiss_text

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
FIBSEM = REAL / "fibsem_nmc_2d" / "3_phase_old_NMC_FIBSEM.tif"


def _image(shape=(200, 300), seed=0) -> np.ndarray:
    """A noisy 8-bit image: no value holds more than a few % of a row."""
    rng = np.random.default_rng(seed)
    return rng.normal(120, 30, shape).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("lazy", [False, True])
def test_fei_tiff_pixel_size_and_data_bar_from_its_tag(tmp_path, lazy):
    """A Helios image: resolution tags at 96 dpi (a print density, never read), the pixel size from [Scan]
    PixelWidth / PixelHeight in metres, the data bar the rows below [Image] ResolutionY."""
    img = with_bar(_image(), 40)
    path = tmp_path / "helios.tif"
    write_sem_tiff(path, img, fei=fei_text(2.5e-8, 300, 200, 40))
    v = open_lazy(path) if lazy else load_volume(path)
    assert v.spacing == (0.025, 0.025, 0.025) and v.spacing_from_metadata
    assert v.metadata["spacing_source"] == "fei" and v.metadata["spacing_z_assumed"]
    assert v.metadata["data_bar_rows"] == 40
    # anisotropic pixels: y from PixelHeight
    write_sem_tiff(path, img, fei=fei_text(2.5e-8, 300, 200, 40).replace("PixelHeight=2.5e-08", "PixelHeight=3e-08"))
    assert load_volume(path).spacing == (0.025, 0.03, 0.025)


def test_fei_tiff_without_a_data_bar_or_with_an_unusable_one(tmp_path):
    """No bar saved (ResolutionY the image's height), one taller than 30 % of the image, no ResolutionY: no rows
    stated; no PixelWidth: no pixel size (1 µm assumed, as for a file that states none)."""
    img = _image()
    path = tmp_path / "helios.tif"
    for scanned in (200, 100):
        write_sem_tiff(path, img, fei=fei_text(2.5e-8, 300, scanned, 0))
        v = load_volume(path)
        assert v.spacing == (0.025,) * 3 and "data_bar_rows" not in v.metadata
    write_sem_tiff(path, img, fei=fei_text(2.5e-8, 300, 200, 0).replace("ResolutionY=200\r\n", ""))
    assert "data_bar_rows" not in load_volume(path).metadata
    write_sem_tiff(path, img, fei=fei_text(2.5e-8, 300, 200, 0).replace("PixelWidth=2.5e-08\r\n", "")
                   .replace("PixelHeight=2.5e-08\r\n", ""))
    v = load_volume(path)
    assert v.spacing == (1.0, 1.0, 1.0) and not v.spacing_from_metadata


@pytest.mark.parametrize("size, unit, um", [(12.4, "nm", 0.0124), (850, "pm", 0.00085), (1.2, "µm", 1.2)])
def test_zeiss_tiff_pixel_size_from_its_tag(tmp_path, size, unit, um):
    path = tmp_path / "smartsem.tif"
    write_sem_tiff(path, _image(), zeiss=zeiss_text(size, unit))
    v = load_volume(path)
    assert v.spacing == pytest.approx((um,) * 3) and v.metadata["spacing_source"] == "zeiss"


def test_an_image_with_print_density_only_states_no_pixel_size(tmp_path):
    path = tmp_path / "export.tif"
    write_sem_tiff(path, _image(), dpi=72)
    v = load_volume(path)
    assert v.spacing == (1.0, 1.0, 1.0) and not v.spacing_from_metadata


def test_find_data_bar_in_the_pixels():
    """The bar below a noisy image: all its rows, the rule along its top included; a JPEG-like bar (its background
    and text moved by a few levels) too; a 16-bit image; none in the image alone."""
    img = _image()
    assert find_data_bar(with_bar(img, 40)) == 40
    assert find_data_bar(with_bar(img, 12)) == 12
    assert find_data_bar(img) is None
    rng = np.random.default_rng(1)
    jpeg = with_bar(img, 40).astype(np.int16) + rng.integers(-3, 4, (240, 300))
    assert find_data_bar(jpeg.clip(0, 255).astype(np.uint8)) == 40
    wide = with_bar((img.astype(np.uint16) * 257), 40, background=0, ink=65535)
    assert find_data_bar(wide) == 40
    # a white bar with black text
    assert find_data_bar(with_bar(img, 30, background=255, ink=0)) == 30


def test_no_data_bar_in_padding_phantoms_or_small_images():
    """A band of one value only is padding (a fill, core.phases.fill), not a bar; a noiseless phantom whose pore
    reaches the bottom holds its value above the band as well; a bar taller than 30 % of the image is not taken;
    a plane too small to hold one is not read; a 3D array is refused."""
    img = _image()
    padded = np.vstack([img, np.zeros((40, 300), np.uint8)])
    assert find_data_bar(padded) is None
    phantom = np.zeros((64, 64), np.uint8)
    yy, xx = np.mgrid[:64, :64]
    for cy, cx in [(16, 16), (16, 48), (48, 16), (48, 48), (60, 30)]:
        phantom[(yy - cy) ** 2 + (xx - cx) ** 2 < 100] = 2
    phantom[(yy % 16 == 0) & (xx < 40)] = 1
    assert find_data_bar(phantom) is None
    assert find_data_bar(with_bar(img[:80], 40)) is None  # 40 of 120 rows: a third
    assert find_data_bar(with_bar(img[:10, :10], 8)) is None
    with pytest.raises(ValueError, match="one 2D image"):
        find_data_bar(np.zeros((2, 30, 30)))


@pytest.mark.skipif(not FIBSEM.exists(), reason="the real FIB-SEM slice of ../shared/data/real is not here")
def test_the_real_fibsem_slice_has_no_bar_and_gets_one_found_when_a_bar_is_burned_in():
    """The real slice (pores clipped to black: up to 16 % of a row at 0): no bar; with a 70-row black bar of text
    below it (as a Helios saves 1024 rows + 70): 70."""
    real = tifffile.imread(FIBSEM)
    assert find_data_bar(real) is None
    img8 = (real // 257).astype(np.uint8)
    assert find_data_bar(img8) is None
    assert find_data_bar(with_bar(img8, 70)) == 70


def test_real_nanoct_slices_and_demo_electrodes_have_no_bar():
    from core.synth import DEMO_ELECTRODES, demo_electrode

    folder = REAL / "nanoct_nmc_slices"
    for p in sorted(folder.glob("raw_*.tif")) if folder.exists() else []:
        assert find_data_bar(tifffile.imread(p)) is None, p.name
    # pristine at 64³, x planes 8-12: a particle cut by the bottom edge fills 60 % of the bottom rows and little of
    # those above (taken for a bar before the finder asked for rows of the background alone)
    phases = np.asarray(demo_electrode("pristine", shape=(64, 64, 64)).phases)
    assert all(find_data_bar(phases[:, :, x]) is None for x in range(8, 13))
    for name in DEMO_ELECTRODES:
        e = demo_electrode(name, shape=(32, 64, 64))
        for v in (e.greyscale, e.phases):
            assert all(find_data_bar(np.asarray(v)[z]) is None for z in (0, 16, 31))
            assert find_data_bar(np.asarray(v)[:, :, 5]) is None and find_data_bar(np.asarray(v)[:, 5]) is None


def test_data_bar_prefers_the_metadata_and_says_where_it_is():
    img = with_bar(_image(), 40)
    assert data_bar(240, 50, img) == {"rows": 50, "start": 190, "source": "metadata"}
    assert data_bar(240, None, img) == {"rows": 40, "start": 200, "source": "pixels"}
    assert data_bar(240, None, None) is None and data_bar(200, None, _image()) is None
    msg = data_bar_message(data_bar(240, None, img), "sem.png")
    assert msg.startswith("The bottom 40 rows of sem.png (y 200:240) look like the microscope's data bar")
    assert data_bar_message(data_bar(240, 40)).startswith(
        "The bottom 40 rows of the image (y 200:240) are the microscope's data bar, as its metadata states")


def test_an_analysis_warns_of_a_bar_and_not_once_it_is_cropped(tmp_path):
    """read_grey says a data bar (instead of the fill its background looks like) and, cropped, nothing of it."""
    from core.pipeline import AnalysisParams, read_grey

    img = with_bar(_image(), 40)[None]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_grey(img, AnalysisParams())
    said = [str(w.message) for w in caught]
    assert any(m.startswith("The bottom 40 rows of the image (y 200:240) look like") for m in said)
    assert not any("fill outside" in m for m in said)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_grey(np.ascontiguousarray(img[:, :200]), AnalysisParams())
    assert not any("data bar" in str(w.message) for w in caught)


def test_a_folder_of_fei_slices_states_its_pixel_size_and_bar(tmp_path):
    """An Auto Slice & View folder: each slice a Helios TIFF; the pixel size (depth taken as it) and the bar from
    the first slice, whole and lazily."""
    folder = tmp_path / "asv"
    folder.mkdir()
    for z in range(3):
        write_sem_tiff(folder / f"slice_{z:03d}.tif", with_bar(_image(seed=z), 40), fei=fei_text(5e-9, 300, 200, 40))
    for v in (load_volume(folder), open_lazy(folder)):
        assert v.shape == (3, 240, 300) and v.spacing == (0.005,) * 3
        assert v.metadata["data_bar_rows"] == 40 and v.metadata["spacing_source"] == "fei"


def test_inspect_says_the_pixel_size_source_the_bar_and_its_crop(tmp_path, capsys):
    """``inspect`` of a Helios image: the pixel size from its FEI tag, the data bar (not a fill) and the --crop
    without it; with that crop, no bar; a folder of such slices: its depth taken as the pixel size, said."""
    from core import cli

    path = tmp_path / "helios.tif"
    write_sem_tiff(path, with_bar(_image(), 40), fei=fei_text(2.5e-8, 300, 200, 40))
    assert cli.main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "voxel size 0.025×0.025×0.025 µm (from the file's FEI / Thermo Fisher SEM metadata)\n" in out
    assert "DATA BAR: The bottom 40 rows of the image (y 200:240) are the microscope's data bar" in out
    assert "--crop 0 1 0 200 0 300" in out and "FILL" not in out
    assert cli.main(["inspect", str(path), "--crop", "0", "1", "0", "200", "0", "300"]) == 0
    assert "DATA BAR" not in capsys.readouterr().out
    folder = tmp_path / "asv"
    folder.mkdir()
    for z in range(3):
        write_sem_tiff(folder / f"slice_{z}.tif", with_bar(_image(seed=z), 40), fei=fei_text(5e-9, 300, 200, 40))
    assert cli.main(["inspect", str(folder)]) == 0
    assert ("(from the file's FEI / Thermo Fisher SEM metadata; z taken equal to x: give --spacing Z Y X where the "
            "slices are thicker or thinner)") in capsys.readouterr().out


def test_the_chunked_engine_warns_of_a_bar_as_the_whole_volume_engine_does(tmp_path, capsys):
    from core import cli

    folder = tmp_path / "asv"
    folder.mkdir()
    for z in range(24):
        write_sem_tiff(folder / f"slice_{z:02d}.tif", with_bar(_image((60, 64), seed=z), 20),
                       fei=fei_text(5e-9, 64, 60, 20))
    assert cli.main(["analyze", str(folder), "--out", str(tmp_path / "out"), "--chunk-size", "32", "--workers", "1",
                     "-q"]) == 0
    err = capsys.readouterr().err
    assert "warning: The bottom 20 rows of each z plane (y 60:80) look like the microscope's data bar" in err
    assert "fill outside" not in err


def test_find_scale_bar_in_the_data_bar():
    """The scale bar: the longest line of ink two rows thick or more, in black-on-white and white-on-black bars and
    a JPEG-like one; not the rule along the bar's top (longer than 60 % of the width), nor text."""
    from core.io.sem import find_scale_bar, scale_bar_message

    img = _image()
    for full in (with_bar(img, 40), with_bar(img, 40, background=255, ink=0)):
        bar = data_bar(240, None, full)
        assert find_scale_bar(full, bar) == {"length_px": 30, "row": 228, "x0": 240, "rows": 4}
    rng = np.random.default_rng(2)
    noisy = (with_bar(img, 40).astype(np.int16) + rng.integers(-3, 4, (240, 300))).clip(0, 255).astype(np.uint8)
    assert find_scale_bar(noisy, data_bar(240, None, noisy))["length_px"] == 30
    no_scale = with_bar(img, 40)
    no_scale[228:232, 240:270] = 0  # the scale bar wiped: text and the rule remain
    assert find_scale_bar(no_scale, data_bar(240, None, no_scale)) is None
    assert scale_bar_message({"length_px": 30, "row": 228, "x0": 240}) == (
        "The data bar holds a scale bar 30 pixels long (y 228, x 240:270): the pixel size is the length printed "
        "beside it divided by 30.")


@pytest.mark.skipif(not FIBSEM.exists(), reason="the real FIB-SEM slice of ../shared/data/real is not here")
def test_the_scale_bar_drawn_below_the_real_fibsem_slice():
    """A 70-row bar with text in a font, a 2-px rule and a 102-pixel scale bar (sem_files.drawn_bar, as
    bench/sem_data_bar.py draws it), black on white and white on black, below the real slice: 102 pixels found."""
    from core.io.sem import find_scale_bar
    from sem_files import drawn_bar

    img8 = (tifffile.imread(FIBSEM) // 257).astype(np.uint8)
    for background, ink in ((0, 255), (255, 0)):
        full = np.vstack([img8, drawn_bar(img8.shape[1], 70, background, ink)])
        found = find_scale_bar(full, data_bar(full.shape[0], None, full))
        assert found is not None and found["length_px"] == 102 and found["x0"] == 809


# --------------------------------------------------------------------------- FIB cross-sections and the stage tilt


def test_sem_tilt_reads_the_stage_tilt_and_the_tilt_correction(tmp_path):
    """FEI: [Stage] StageT in radians, [EBeam] TiltCorrectionIsOn / TiltCorrectionAngle (a Helios 5 saving a
    cross-section: on, -38°); an ion-beam image is not read; Zeiss: Stage at T, Tilt Corrn., Tilt Angle; no tag,
    or a tag without a tilt: None."""
    from core.io.sem import sem_tilt

    def tilt(**kw):
        path = tmp_path / "t.tif"
        write_sem_tiff(path, _image((20, 30)), **kw)
        with tifffile.TiffFile(path) as tif:
            return sem_tilt(tif)

    assert tilt(fei=fei_text(5e-9, 30, 20, 0)) == {"stage_deg": 52.0, "corrected": True, "correction_deg": -38.001}
    assert tilt(fei=fei_text(5e-9, 30, 20, 0, "no")) == {"stage_deg": 52.0, "corrected": False, "correction_deg": None}
    assert tilt(fei=fei_text(5e-9, 30, 20, 0, "no", beam="IBeam")) is None
    # the stage tilt where [Stage] is missing: [EBeam] StageTa; neither: None
    no_stage = fei_text(5e-9, 30, 20, 0, "no").replace("StageT=0.907571", "StageX=0")
    assert tilt(fei=no_stage)["stage_deg"] == 52.0
    assert tilt(fei=no_stage.replace("StageTa=0.907571", "StageTa=")) is None
    assert tilt(zeiss=zeiss_text(5.0, "nm", 54.0, "Off")) == {"stage_deg": 54.0, "corrected": False,
                                                               "correction_deg": None}
    assert tilt(zeiss=zeiss_text(5.0, "nm", 54.0, "On")) == {"stage_deg": 54.0, "corrected": True,
                                                              "correction_deg": 36.0}
    assert tilt(zeiss=zeiss_text(5.0, "nm")) is None
    assert tilt() is None


def test_tilt_reading_stretches_the_pixel_height_only_for_an_uncorrected_cross_section_tilt():
    """y / sin(tilt) where the correction was off and the stage at a FIB's cross-section tilt; nothing where it was on,
    is not stated, or the stage lies flat or past the coincidence tilts."""
    from core.io.sem import CROSS_SECTION_TILT_DEG, tilt_message, tilt_reading

    sp = (0.025, 0.025, 0.025)
    r = tilt_reading({"stage_deg": 52.0, "corrected": False, "correction_deg": None}, sp)
    assert r["factor"] == pytest.approx(1.0 / np.sin(np.radians(52.0))) == pytest.approx(1.269, abs=5e-4)
    assert r["dy_file_um"] == 0.025 and r["dy_um"] == pytest.approx(0.025 * r["factor"], rel=1e-9)
    assert tilt_reading({"stage_deg": -54.0, "corrected": False}, sp)["stage_deg"] == 54.0  # the other way round
    for tilt in ({"stage_deg": 52.0, "corrected": True}, {"stage_deg": 52.0, "corrected": None},
                 {"stage_deg": 0.0, "corrected": False}, {"stage_deg": CROSS_SECTION_TILT_DEG[0] - 1, "corrected": False},
                 {"stage_deg": CROSS_SECTION_TILT_DEG[1] + 1, "corrected": False}, None):
        assert tilt_reading(tilt, sp) is None
    assert tilt_message(r, "helios.tif") == (
        "The stage was tilted 52° and the microscope's tilt correction off when helios.tif was taken: on a FIB "
        "cross-section face seen at that tilt, heights are foreshortened, and the pixel height is 0.025 µm / sin 52° "
        "= 0.03173 µm, not the file's 0.025 µm.")


@pytest.mark.parametrize("lazy", [False, True])
def test_readers_carry_the_stage_tilt_of_an_image_and_of_a_slice_folder(tmp_path, lazy):
    path = tmp_path / "helios.tif"
    write_sem_tiff(path, _image(), fei=fei_text(2.5e-8, 300, 200, 0, "no"))
    want = {"stage_deg": 52.0, "corrected": False, "correction_deg": None}
    assert (open_lazy(path) if lazy else load_volume(path)).metadata["sem_tilt"] == want
    folder = tmp_path / "asv"
    folder.mkdir()
    for z in range(3):
        write_sem_tiff(folder / f"slice_{z}.tif", _image(seed=z), fei=fei_text(5e-9, 300, 200, 0, "no"))
    assert (open_lazy(folder) if lazy else load_volume(folder)).metadata["sem_tilt"] == want


def test_inspect_and_analyze_say_an_uncorrected_cross_section_tilt(tmp_path, capsys):
    """``inspect`` gives the pixel height on the face and the --spacing that takes it; ``analyze`` warns (also in
    run.json), on both engines; a voxel size given on the command line, or the correction on, says nothing."""
    import json

    from core import cli

    path = tmp_path / "helios.tif"
    write_sem_tiff(path, _image(), fei=fei_text(2.5e-8, 300, 200, 0, "no"))
    assert cli.main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert ("TILT: The stage was tilted 52° and the microscope's tilt correction off when the image was taken: on a "
            "FIB cross-section face seen at that tilt, heights are foreshortened, and the pixel height is 0.025 µm / sin "
            "52° = 0.03173 µm, not the file's 0.025 µm. Where it is one: --spacing 0.025 0.03173 0.025\n") in out
    assert cli.main(["inspect", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["tilt_uncorrected"]["dy_um"] == pytest.approx(0.025 / np.sin(np.radians(52.0)), rel=1e-9)
    assert cli.main(["inspect", str(path), "--downsample", "2"]) == 0  # --spacing is the file's voxel size
    assert "--spacing 0.025 0.03173 0.025\n" in capsys.readouterr().out
    assert cli.main(["inspect", str(path), "--spacing", "0.025", "0.0317", "0.025"]) == 0
    assert "TILT" not in capsys.readouterr().out
    assert cli.main(["analyze", str(path), "--out", str(tmp_path / "out"), "-q"]) == 0
    said = "warning: The stage was tilted 52° and the microscope's tilt correction off when {} was taken"
    assert said.format("the image") in capsys.readouterr().err
    assert any("0.03173 µm" in w for w in json.loads((tmp_path / "out" / "run.json").read_text())["warnings"])
    assert cli.main(["analyze", str(path), "--out", str(tmp_path / "out2"), "-q", "--spacing", "0.025"]) == 0
    assert "tilted" not in capsys.readouterr().err
    corrected = tmp_path / "corrected.tif"
    write_sem_tiff(corrected, _image(), fei=fei_text(2.5e-8, 300, 200, 0))
    assert cli.main(["inspect", str(corrected)]) == 0
    assert "TILT" not in capsys.readouterr().out
    folder = tmp_path / "asv"
    folder.mkdir()
    for z in range(24):
        write_sem_tiff(folder / f"slice_{z:02d}.tif", _image((60, 64), seed=z), fei=fei_text(5e-9, 64, 60, 0, "no"))
    assert cli.main(["analyze", str(folder), "--out", str(tmp_path / "out3"), "--chunk-size", "32", "--workers", "1",
                     "-q"]) == 0
    assert said.format("each slice") in capsys.readouterr().err


# --------------------------------------------------------------------------- Zeiss Atlas (Fibics)


@pytest.mark.parametrize("lazy", [False, True])
def test_zeiss_atlas_tiff_pixel_size_from_its_fibics_tag(tmp_path, lazy):
    """A Zeiss Atlas 5 export (tag 51023, ResolutionUnit NONE): the pixel size is the length of the scan's step
    vectors (x from U, y from V: <Uy> is 0 in the files), also for a rotated scan; else the fields of view over the
    image's size."""
    from sem_files import fibics_xml

    step = 0.00522874872557056
    path = tmp_path / "atlas.tif"

    def read(xml):
        write_sem_tiff(path, _image(), fibics=xml)
        v = open_lazy(path) if lazy else load_volume(path)
        return v.spacing, v.spacing_from_metadata, v.metadata.get("spacing_source")

    want = pytest.approx((step, step, step), rel=1e-9)
    assert read(fibics_xml(step)) == (want, True, "fibics")
    assert read(fibics_xml(step, rotation_deg=30.0))[0] == want
    assert read(fibics_xml(step, steps=False))[0] == want
    assert read(fibics_xml(step, width=None, height=None))[0] == want  # older writers: no <Image>
    # anisotropic: y from V
    xml = fibics_xml(step).replace(f"<Vy>{-step!r}</Vy>", f"<Vy>{-2 * step!r}</Vy>")
    assert read(xml)[0] == pytest.approx((step, 2 * step, step), rel=1e-9)


@pytest.mark.parametrize("xml", [
    "stale",  # a resized copy that kept the tag: <Width> / <Height> are not the image's
    '<?xml version="1.0"?><Fibics><Scan><Ux>not-a-number</Ux></Scan>',  # malformed
    "<SomeOtherVendor><Ux>0.5</Ux></SomeOtherVendor>",  # not a Fibics block
    "zero",  # step vectors of length 0 and no field of view
])
def test_a_fibics_tag_that_does_not_describe_this_image_states_no_pixel_size(tmp_path, xml):
    from sem_files import fibics_xml

    xml = {"stale": fibics_xml(width=600, height=400),
           "zero": fibics_xml(0.0, fov=False)}.get(xml, xml)
    path = tmp_path / "atlas.tif"
    write_sem_tiff(path, _image(), fibics=xml)
    v = load_volume(path)
    assert v.spacing == (1.0, 1.0, 1.0) and not v.spacing_from_metadata


def test_inspect_names_the_atlas_metadata_and_a_slice_folder_reads_it(tmp_path, capsys):
    from core import cli
    from sem_files import fibics_xml

    folder = tmp_path / "atlas_stack"
    folder.mkdir()
    for z in range(3):
        write_sem_tiff(folder / f"slice_{z:04d}.tif", _image(seed=z), fibics=fibics_xml(0.005))
    assert cli.main(["inspect", str(folder)]) == 0
    assert ("voxel size 0.005×0.005×0.005 µm (from the file's Zeiss Atlas (Fibics) metadata; z taken equal to x: "
            "give --spacing Z Y X where the slices are thicker or thinner)") in capsys.readouterr().out
