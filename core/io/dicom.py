"""DICOM ``.dcm``: a CT series as a folder of slices, or one file (a slice, or a multi-frame volume).

Lab CT scanners and their reconstruction software (Bruker SkyScan, Nikon, Scanco, medical-type CT) export a
reconstruction as DICOM: one file per slice, or one enhanced multi-frame file.  Read with ``pydicom`` (an optional
requirement: without it a ``.dcm`` is refused saying what to install):

- the pixels as stored (``pixel_array``: 8 or 16 bit, signed where ``PixelRepresentation`` says so); the rescale to
  Hounsfield units (``RescaleSlope`` / ``RescaleIntercept``) is a linear map the analysis does not need and is not
  applied (a series whose slices state different rescales is refused: its stored values are not one scale);
- the voxel size, in mm in the file: ``PixelSpacing`` (row spacing = y, column spacing = x) and along z
  ``SpacingBetweenSlices``, else ``SliceThickness`` (taken from the frames' shared functional groups in an enhanced
  multi-frame file); none of these: z taken equal to x, and said;
- a series folder in the order of the slices' positions along the slice normal (``ImagePositionPatient`` on
  ``ImageOrientationPatient``'s normal), else of their ``InstanceNumber``, else of their names.

Refused in one sentence naming the file: not a DICOM file (no ``DICM`` preamble, and no DICOM header either), no
pixel data, colour (``SamplesPerPixel`` > 1), compressed pixel data (JPEG, JPEG 2000, RLE...: pydicom needs a codec
plug-in for them; export uncompressed DICOM or TIFF).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._common import InputFileError, Loaded, ReadOptions, _check_numeric, _name, _short, _valid_spacing
from ._registry import register

__all__ = ["dicom_header", "dicom_layout", "dicom_spacing", "read_dicom", "read_dicom_slice", "series_order"]


def _pydicom():
    try:
        import pydicom
    except ImportError:
        raise InputFileError("reading DICOM (.dcm) files needs the Python package pydicom: pip install pydicom") \
            from None
    return pydicom


def _dataset(path: Path, where: str, *, pixels: bool):
    """The DICOM dataset of ``path`` (its header only unless ``pixels``), or a refusal."""
    pydicom = _pydicom()
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, stop_before_pixels=not pixels)
    except InvalidDicomError:
        raise InputFileError(f"{where} is not a DICOM file (no DICM preamble and no DICOM header)") from None
    except (OSError, ValueError, TypeError, KeyError, IndexError, EOFError, AttributeError, NotImplementedError) \
            as exc:
        raise InputFileError(f"could not read {where} as DICOM: {_short(exc, path=path)}") from None


def _check_grey(ds, where: str) -> None:
    if int(getattr(ds, "SamplesPerPixel", 1) or 1) != 1:
        raise InputFileError(f"{where} holds a colour image ({ds.get('PhotometricInterpretation', 'RGB')}); "
                             "export it as greyscale")


def _pixels(ds, where: str) -> np.ndarray:
    """The stored pixels: (Y, X), or (frames, Y, X) for a multi-frame file."""
    if "PixelData" not in ds:
        raise InputFileError(f"{where} holds no pixel data")
    _check_grey(ds, where)
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is not None and syntax.is_compressed:
        raise InputFileError(f"{where} holds compressed pixel data ({syntax.name}), which is not read: export the "
                             "series as uncompressed DICOM, or as TIFF")
    try:
        declared = (int(ds.Rows) * int(ds.Columns) * int(getattr(ds, "NumberOfFrames", 1) or 1)
                    * int(ds.BitsAllocated) // 8)
    except (AttributeError, TypeError, ValueError):
        declared = None
    held = len(ds.PixelData)
    if declared is not None and held < declared:
        raise InputFileError(f"{where} is truncated or corrupt: its pixel data holds {held:,} bytes, its header "
                             f"declares {declared:,}")
    try:
        arr = ds.pixel_array
    except MemoryError as exc:
        raise MemoryError(f"not enough memory to read {where}: {exc}") from None
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, NotImplementedError, RuntimeError) as exc:
        raise InputFileError(f"could not read the pixels of {where}: {_short(exc)}") from None
    return _check_numeric(np.asarray(arr), where)


def _mm(values) -> list[float] | None:
    """A DICOM decimal string or list of them as positive floats (mm), or None."""
    if values is None:
        return None
    many = [values] if isinstance(values, (str, bytes, int, float)) else values  # one value, or a MultiValue
    try:
        out = [float(v) for v in many]
    except (TypeError, ValueError):
        return None
    return out if out and all(np.isfinite(v) and v > 0 for v in out) else None


def dicom_spacing(ds) -> tuple[tuple[float, float, float] | None, dict]:
    """The voxel size a DICOM dataset states, in µm (z, y, x), and notes for the volume's metadata.

    ``PixelSpacing`` (mm: y, then x), along z ``SpacingBetweenSlices`` else ``SliceThickness``; in an enhanced
    multi-frame file, those of its shared functional groups' pixel measures where the top level has none.  No
    z: taken equal to x (``spacing_z_assumed``).  No ``PixelSpacing``: None.
    """
    sources = [ds]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        measures = shared[0].get("PixelMeasuresSequence")
        if measures:
            sources.append(measures[0])
    yx = z = None
    for src in sources:
        yx = yx or _mm(src.get("PixelSpacing"))
        for key in ("SpacingBetweenSlices", "SliceThickness"):
            z = z or _mm(src.get(key))
    if yx is None or len(yx) != 2:
        return None, {}
    notes: dict = {"spacing_source": "dicom"}
    if z is None:
        z, notes["spacing_z_assumed"] = [yx[1]], True
    sp = _valid_spacing((1000.0 * z[0], 1000.0 * yx[0], 1000.0 * yx[1]))
    return (sp, notes) if sp is not None else (None, {})


def read_dicom_slice(path: Path, where: str) -> Loaded:
    """One slice of a DICOM series folder: (1, Y, X), its voxel size (:func:`dicom_spacing`) and notes.

    Raises
    ------
    InputFileError
        Unreadable, several frames, or a refusal of :func:`_pixels` (one sentence naming ``where``).
    """
    ds = _dataset(path, where, pixels=True)
    arr = _pixels(ds, where)
    if arr.ndim != 2:
        raise InputFileError(f"{where} is not a 2D image: shape {arr.shape} (a multi-frame file inside a slice "
                             "folder)")
    spacing, notes = dicom_spacing(ds)
    return Loaded(arr[None], spacing, notes, os.fspath(path))


def dicom_header(path: Path) -> tuple[tuple[int, ...], str]:
    """((Y, X) or (frames, Y, X), dtype name) of a DICOM file from its header (no pixel read)."""
    return dicom_layout(path)[:2]


def dicom_layout(path: Path) -> tuple[tuple[int, ...], str, tuple[float, float, float] | None, dict]:
    """What a DICOM file's header says (no pixel read): its shape ((Y, X), or (frames, Y, X)), the dtype name of
    its pixels, and its voxel size and notes (:func:`dicom_spacing`)."""
    ds = _dataset(path, _name(path), pixels=False)
    _check_grey(ds, _name(path))
    try:  # an image's header: a DICOM file without one (a report, a DICOMDIR, damage) is refused
        bits = int(ds.BitsAllocated)
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
        shape = (int(ds.Rows), int(ds.Columns))
    except (AttributeError, TypeError, ValueError):
        raise InputFileError(f"{_name(path)} holds no image (its header states no Rows, Columns or BitsAllocated)") \
            from None
    signed = int(getattr(ds, "PixelRepresentation", 0) or 0) == 1
    dtype = np.dtype(("i" if signed else "u") + str(max(1, bits // 8)))
    return ((frames,) + shape if frames > 1 else shape), dtype.name, *dicom_spacing(ds)


def series_order(files: list[Path]) -> list[Path]:
    """The slices of a DICOM series in their order in space: by position along the slice normal where every
    slice states ``ImagePositionPatient`` and ``ImageOrientationPatient``, else by ``InstanceNumber`` where every
    slice states one, else as given (natural order of names).  Headers only are read; one that cannot be read
    leaves the order as given (the slice's own read says why).

    Raises
    ------
    InputFileError
        The slices state different rescales (``RescaleSlope`` / ``RescaleIntercept``): the stored values, which are
        read, would not be one scale.
    """
    pydicom = _pydicom()
    keys_pos, keys_num, rescales = [], [], set()
    for p in files:
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True,
                                 specific_tags=["ImagePositionPatient", "ImageOrientationPatient", "InstanceNumber",
                                                "RescaleSlope", "RescaleIntercept"])
        except Exception:  # noqa: BLE001 - any unreadable header: keep the names' order (the read refuses it)
            return files
        rescales.add((float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)))
        pos, iop = ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient")
        if pos is not None and iop is not None and len(pos) == 3 and len(iop) == 6:
            normal = np.cross(np.asarray(iop[:3], float), np.asarray(iop[3:], float))
            keys_pos.append(float(np.dot(normal, np.asarray(pos, float))))
        num = ds.get("InstanceNumber")
        if num is not None and str(num).strip():
            keys_num.append(int(num))
    if len(rescales) > 1:
        raise InputFileError(f"the DICOM series in folder {_name(files[0].parent)} rescales its slices differently "
                             f"({len(rescales)} RescaleSlope / RescaleIntercept pairs): its stored values are not one "
                             "scale, so it is not read; export the series with one rescale, or as TIFF")
    for keys in (keys_pos, keys_num):
        if len(keys) == len(files) and len(set(keys)) == len(keys):
            return [files[i] for i in np.argsort(np.asarray(keys), kind="stable")]
    return files


#: How far a step between two neighbouring slices of a series may stray from the series' median step (a fraction of
#: it) before the series is refused as missing slices or unevenly spaced.
SERIES_STEP_TOLERANCE = 0.1


def series_spacing(files: list[Path], spacing, notes: dict) -> tuple[tuple | None, dict]:
    """The voxel size of a DICOM series (its slices in order, :func:`series_order`), checked across its slices.

    ``spacing`` / ``notes``: what the first slice states (:func:`dicom_spacing`).  Every slice's header is read:
    ``PixelSpacing`` must be the same in all; where every slice states its position along the slice normal, the
    steps between neighbours must be even (within :data:`SERIES_STEP_TOLERANCE` of their median) and that median
    step is the z voxel size (``SliceThickness`` is a slice's thickness, not the distance between slices: it is
    used only without positions; ``notes["spacing_z_from"] = "positions"`` where they differ by more than 1 %).

    Raises
    ------
    InputFileError
        Slices of different pixel sizes; a step more than the tolerance from the median (a slice missing, or
        slices unevenly spaced): one sentence naming the folder and the positions.
    """
    pydicom = _pydicom()
    where = f"the DICOM series in folder {_name(files[0].parent)}"
    pixel, positions = set(), []
    for p in files:
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True, specific_tags=[
                "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SharedFunctionalGroupsSequence"])
        except Exception:  # noqa: BLE001 - an unreadable header: the slice's own read says why
            return spacing, notes
        sp, _ = dicom_spacing(ds)
        pixel.add(None if sp is None else (round(sp[1], 6), round(sp[2], 6)))
        pos, iop = ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient")
        if pos is not None and iop is not None and len(pos) == 3 and len(iop) == 6:
            normal = np.cross(np.asarray(iop[:3], float), np.asarray(iop[3:], float))
            positions.append(1000.0 * float(np.dot(normal, np.asarray(pos, float))))  # µm
    if len(pixel) > 1:  # (QA: read with the first slice's pixel size, unsaid)
        sizes = sorted(f"{y:g}×{x:g}" for y, x in (v for v in pixel if v is not None))
        raise InputFileError(f"{where} holds slices of different pixel sizes ({', '.join(sizes)} µm"
                             + (", and slices stating none" if None in pixel else "") + "): not one volume; export "
                             "the series at one pixel size")
    if len(positions) != len(files) or len(files) < 2:
        return spacing, notes
    steps = np.abs(np.diff(np.sort(np.asarray(positions))))
    step = float(np.median(steps))
    if step <= 0:
        return spacing, notes
    worst = int(np.argmax(np.abs(steps - step)))
    if abs(steps[worst] - step) > SERIES_STEP_TOLERANCE * step:  # (QA: a missing slice was read without a word)
        what = (f"a slice or more missing ({steps[worst] / step:.1f} steps)" if steps[worst] > step else
                "slices closer together than the others")
        raise InputFileError(f"{where} is not evenly spaced: its slices lie {step:.4g} µm apart, but slices "
                             f"{worst + 1} and {worst + 2} (in order) lie {steps[worst]:.4g} µm apart: {what}; "
                             "the volume would be distorted along z, so it is not read")
    if spacing is None:
        return spacing, notes
    if abs(step - spacing[0]) > 0.01 * step:  # (QA: SliceThickness 0.398 µm read for slices 0.8 µm apart)
        spacing = (step, spacing[1], spacing[2])
        notes = {**{k: v for k, v in notes.items() if k != "spacing_z_assumed"}, "spacing_z_from": "positions"}
    return spacing, notes


@register("dicom", target="file")
def read_dicom(path: Path, opts: ReadOptions) -> Loaded:
    """One DICOM file: a slice as (1, Y, X), a multi-frame file as (frames, Y, X), with the voxel size it states.

    Raises
    ------
    InputFileError
        See the module's docstring.
    """
    name = _name(path)
    ds = _dataset(path, name, pixels=True)
    arr = _pixels(ds, name)
    spacing, notes = dicom_spacing(ds)
    data = arr[None] if arr.ndim == 2 else arr
    if data.ndim != 3:
        raise InputFileError(f"{name} is not a greyscale slice or volume: shape {arr.shape}")
    return Loaded(data, spacing, notes, os.fspath(path))
