"""Scanning electron microscope images (SEM, FIB-SEM): the pixel size their TIFF states, and the data bar.

An SEM cross-section saved by the microscope's own software is a TIFF whose resolution tags hold a print density
(72 or 96 dpi), not the pixel size; the pixel size is in the vendor's tag, which tifffile parses:

- FEI / Thermo Fisher (Helios, Scios, Quanta, Apreo: tag 34682 ``FEI_HELIOS`` or 34680 ``FEI_SFEG``, an INI text,
  ``TiffFile.fei_metadata``): ``[Scan] PixelWidth`` and ``PixelHeight`` in metres (``[EScan]`` / ``[IScan]`` for
  the electron / ion beam where ``[Scan]`` is missing); ``[Image] ResolutionY`` is the height of the scanned image,
  and the rows the file holds below it are the instrument's data bar (``[PrivateFei] DatabarHeight``): text, a
  scale bar and a logo burned into the image.
- Zeiss SmartSEM (tag 34118 ``CZ_SEM``, ``TiffFile.sem_metadata``): ``ap_image_pixel_size`` (else
  ``ap_pixel_size``): a number and its unit (``pm``, ``nm``, ``µm``).  Its data zone has no metadata of its own.
- Zeiss Atlas 5 (Fibics; the Crossbeam's FIB-SEM tomography exports: tag 51023 ``FibicsXML``, with
  ``ResolutionUnit`` NONE): ``<Scan>``'s step vectors ``<Ux> <Uy>`` and ``<Vx> <Vy>`` in µm, the pixel width and
  height their lengths (``<Uy>`` is 0 and ``<Vy>`` negative in the files; a rotated scan mixes them), else
  ``<FOV_X>`` / ``<FOV_Y>`` (µm) over ``<Image> <Width>`` / ``<Height>``; a block whose ``<Width>`` / ``<Height>``
  are not the image's (a resized copy that kept the tag) is not read.

A data bar analysed as sample would be read as pore around white "particles" (its text and scale bar).
:func:`find_data_bar` finds one in the pixels alone (a Zeiss TIFF, a PNG or JPEG export): a band of rows at the
bottom of the image mostly of one exact value (its background) with a little of others (the text), under rows that
hold that value rarely.  :func:`data_bar` takes the metadata's rows first, else the pixels'.  What to do about one
is to crop it out (the add form proposes the crop; ``python -m core inspect`` prints it).

A FIB-SEM cross-section is milled into the sample and imaged with the stage tilted to the beams' coincidence point
(52° FEI / Thermo Fisher, 54° Zeiss): the electron beam sees the face at 90° less that tilt, so its heights are
foreshortened by sin(tilt) (0.788 at 52°).  The microscopes stretch the scan to undo it where their tilt correction
is on (FEI ``[EBeam] TiltCorrectionIsOn`` with ``TiltCorrectionAngle`` -38° for a cross-section, Zeiss ``Tilt
Corrn.`` with ``Tilt Angle`` 36°), and the pixel size they save is then the face's.  Where it was off, the file's
pixel height is the projection's: :func:`sem_tilt` reads the stage tilt and the correction's state,
:func:`tilt_reading` the pixel height on the face (``PixelHeight / sin(tilt)``), which the add form and ``inspect``
offer, since the same tilt with the correction off may also be a tilted view of the surface (foreshortened by
cos(tilt) instead): only the user knows which.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import _unit_factor, _valid_spacing

__all__ = ["BAR_MAX_SHARE", "BAR_MIN_ROWS", "CROSS_SECTION_TILT_DEG", "FIBICS_TAG", "SEM_SOURCES", "data_bar",
           "data_bar_message", "fei_data_bar_rows", "find_data_bar", "find_scale_bar", "scale_bar_message",
           "sem_spacing", "sem_tilt", "tilt_message", "tilt_reading", "volume_data_bar"]

#: The metadata :func:`sem_spacing` reads a pixel size from (its ``spacing_source`` note), named for the user.
SEM_SOURCES = {"fei": "FEI / Thermo Fisher SEM metadata", "zeiss": "Zeiss SEM metadata",
               "fibics": "Zeiss Atlas (Fibics) metadata"}
#: The private TIFF tag of Zeiss Atlas (Fibics) images: an XML block.
FIBICS_TAG = 51023
#: Stage tilts (degrees) at which an image with the tilt correction off is read as a FIB cross-section face seen
#: obliquely: around the coincidence points of the electron and ion beams (52° FEI / Thermo Fisher, 54° Zeiss, 55°
#: Tescan).  Outside, nothing is said (a face is not imaged there; a cross-section beam at 90° sees it square).
CROSS_SECTION_TILT_DEG = (40.0, 65.0)
#: The rows a data bar may take at most, as a share of the image's height (FEI: 70 of 1094, Zeiss: about 10 %).
BAR_MAX_SHARE = 0.3
#: A band of fewer rows than this is not taken for a data bar (a line of text needs about 8).
BAR_MIN_ROWS = 8
#: In the bar, the background value holds at least the first share of the band's pixels (the text the rest); a
#: band of that value only is padding, not a bar (a fill: :mod:`core.phases.fill`), so at most the second.
_BAR_BAND_SHARE = (0.6, 0.995)
#: An image row holds the bar's background value in at most this share of its pixels (an SEM image's pores clipped
#: to black hold up to 16-22 % of a row: the real FIB-SEM slice of ``shared/data/real``) ...
_IMAGE_SHARE = 0.3
#: ... and the band at least this share more than the rows above it.
_CONTRAST = 0.5
#: Values within this share of the image's value range of the background count as it (a JPEG's compression
#: moves the flat background by a few levels).
_TOLERANCE = 0.02
#: The bar holds at least _BLANK_ROWS rows of its background alone (at least this share of the row: a margin of
#: the text, crossed by a separator or two); an object cut by the image's bottom edge holds none across the width.
_BLANK_SHARE = 0.98
_BLANK_ROWS = 2
#: Rows just above the bar read for that.
_ABOVE_ROWS = 16
#: The image starts at the first run of this many rows holding the bar's background at most _IMAGE_SHARE.
_IMAGE_RUN = 4
#: Rows of a rule along the top of a bar, each one flat value, taken into the bar at most.
_RULE_ROWS = 3


def _section(meta: dict, *names: str) -> dict:
    for n in names:
        sec = meta.get(n)
        if isinstance(sec, dict):
            return sec
    return {}


def _positive(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def _um(value: float) -> float:
    """A size in µm to 10 significant digits (2.5e-08 m is 0.025 µm, not 0.024999999999999998)."""
    return float(f"{value:.10g}")


def _fibics_spacing(tif) -> tuple[float, float] | None:
    """(dx, dy) in µm from a Zeiss Atlas (Fibics) TIFF's tag 51023, or None (no tag, not a Fibics block, nothing
    usable, or a block that describes another raster)."""
    import xml.etree.ElementTree as ET

    page = tif.pages.first
    tag = page.tags.get(FIBICS_TAG)
    text = tag.value if tag is not None else None
    if isinstance(text, bytes):
        text = text.decode("latin-1", "replace")
    if not isinstance(text, str) or "<Fibics" not in text:
        return None
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError:
        return None
    if root.tag != "Fibics":
        return None

    def number(path: str) -> float | None:
        el = root.find(path)
        try:
            v = float(el.text) if el is not None and el.text is not None else None
        except ValueError:
            return None
        return v if v is not None and math.isfinite(v) else None

    width, height = number("Image/Width"), number("Image/Height")
    if width is not None and height is not None and (int(width), int(height)) != (page.imagewidth, page.imagelength):
        return None  # a resized copy that kept the tag: its pixel size is not this image's
    steps = [number(f"Scan/{n}") for n in ("Ux", "Uy", "Vx", "Vy")]
    if all(v is not None for v in steps):
        dx, dy = math.hypot(steps[0], steps[1]), math.hypot(steps[2], steps[3])
    else:
        fov_x, fov_y = number("Scan/FOV_X"), number("Scan/FOV_Y")
        dx = fov_x / page.imagewidth if fov_x is not None and page.imagewidth else None
        dy = fov_y / page.imagelength if fov_y is not None and page.imagelength else dx
    dx, dy = _positive(dx), _positive(dy)
    return None if dx is None else (dx, dy or dx)


def sem_spacing(tif) -> tuple[tuple[float, float, float] | None, dict]:
    """The pixel size of an FEI / Thermo Fisher, Zeiss or Zeiss Atlas (Fibics) SEM TIFF, from the vendor's tag.

    Parameters
    ----------
    tif : tifffile.TiffFile

    Returns
    -------
    spacing : (3,) float, µm, or None
        ``(dx, dy, dx)`` (one image: its depth taken as its width), or None where the file has neither tag or the
        tag no usable size.
    notes : dict
        ``spacing_source`` (a key of :data:`SEM_SOURCES`), ``spacing_z_assumed``; empty with no spacing.
    """
    fei = tif.fei_metadata if tif.is_fei else None
    if fei:
        scan = _section(fei, "Scan", "EScan", "IScan")
        dx = _positive(scan.get("PixelWidth"))
        dy = _positive(scan.get("PixelHeight")) or dx
        if dx is not None:
            sp = _valid_spacing((_um(dx * 1e6), _um(dy * 1e6), _um(dx * 1e6)))
            if sp is not None:
                return sp, {"spacing_source": "fei", "spacing_z_assumed": True}
    zeiss = tif.sem_metadata if tif.is_sem else None
    if zeiss:
        for key in ("ap_image_pixel_size", "ap_pixel_size"):
            entry = zeiss.get(key)
            if not isinstance(entry, tuple) or len(entry) < 3:
                continue
            size, factor = _positive(entry[1]), _unit_factor(entry[2])
            if size is not None and factor is not None:
                sp = _valid_spacing((_um(size * factor),) * 3)
                if sp is not None:
                    return sp, {"spacing_source": "zeiss", "spacing_z_assumed": True}
    fibics = _fibics_spacing(tif)
    if fibics is not None:
        dx, dy = fibics
        sp = _valid_spacing((_um(dx), _um(dy), _um(dx)))
        if sp is not None:
            return sp, {"spacing_source": "fibics", "spacing_z_assumed": True}
    return None, {}


def _flag(value) -> bool | None:
    """A metadata switch: FEI's ``yes`` / ``no``, Zeiss' ``On`` / ``Off`` (tifffile: a bool), in a Zeiss tuple or not."""
    if isinstance(value, tuple):
        value = value[-1] if value else None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    return True if text in ("yes", "on", "true", "1") else False if text in ("no", "off", "false", "0") else None


def _degrees(value, unit_of_number: str) -> float | None:
    """An angle in degrees from FEI's radians or a Zeiss ``(name, number, "°")`` tuple; None where unusable."""
    if isinstance(value, tuple):
        value = value[1] if len(value) >= 2 else None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(v):
        return None
    deg = math.degrees(v) if unit_of_number == "rad" else v
    return deg if -180.0 <= deg <= 180.0 else None


def sem_tilt(tif) -> dict | None:
    """The stage tilt an FEI / Thermo Fisher or Zeiss SEM TIFF states, and whether its tilt correction was on.

    Parameters
    ----------
    tif : tifffile.TiffFile

    Returns
    -------
    dict or None
        ``stage_deg`` (float, degrees: FEI ``[Stage] StageT``, else ``[EBeam] StageTa``, in radians in the file;
        Zeiss ``Stage at T``), ``corrected`` (bool, or None where the file does not say: FEI
        ``[EBeam] TiltCorrectionIsOn``, Zeiss ``Tilt Corrn.``) and ``correction_deg`` (the correction's angle where
        it is on and stated, else None); None where the file states no stage tilt, or for an FEI ion-beam image.
    """
    fei = tif.fei_metadata if tif.is_fei else None
    if fei:
        if str(_section(fei, "Beam").get("Beam", "EBeam")).strip().lower().startswith("ibeam"):
            return None  # the ion beam's image: at the coincidence tilt it sees the surface square, not the face
        beam = _section(fei, "EBeam")
        stage = _degrees(_section(fei, "Stage").get("StageT", beam.get("StageTa")), "rad")
        if stage is not None:
            on = _flag(beam.get("TiltCorrectionIsOn"))
            angle = _degrees(beam.get("TiltCorrectionAngle"), "rad") if on else None
            return {"stage_deg": round(stage, 3), "corrected": on,
                    "correction_deg": None if angle is None else round(angle, 3)}
    zeiss = tif.sem_metadata if tif.is_sem else None
    if zeiss:
        stage = _degrees(zeiss.get("ap_stage_at_t"), "deg")
        if stage is not None:
            on = _flag(zeiss.get("dp_tilt_correction"))
            angle = _degrees(zeiss.get("ap_tilt_angle"), "deg") if on else None
            return {"stage_deg": round(stage, 3), "corrected": on,
                    "correction_deg": None if angle is None else round(angle, 3)}
    return None


def tilt_reading(tilt: dict | None, spacing) -> dict | None:
    """The pixel height on a FIB cross-section face where the image was saved without the tilt correction.

    Parameters
    ----------
    tilt : dict or None
        :func:`sem_tilt`'s reading.
    spacing : (3,) float
        The file's voxel size (z, y, x) in µm.

    Returns
    -------
    dict or None
        ``stage_deg``, ``factor`` (1 / sin(stage tilt)), ``dy_file_um`` (the file's pixel height) and ``dy_um`` (that
        on the face: ``dy_file_um * factor``); None where the correction was on or is not stated, or the stage tilt
        lies outside :data:`CROSS_SECTION_TILT_DEG`.
    """
    if not tilt or tilt.get("corrected") is not False or spacing is None:
        return None
    stage = abs(float(tilt["stage_deg"]))
    lo, hi = CROSS_SECTION_TILT_DEG
    if not lo <= stage <= hi:
        return None
    factor = 1.0 / math.sin(math.radians(stage))
    dy = float(spacing[1])
    return {"stage_deg": stage, "factor": factor, "dy_file_um": dy, "dy_um": _um(dy * factor)}


def tilt_message(reading: dict, name: str = "the image") -> str:
    """One sentence: the stage tilt with the correction off, and the pixel height on a cross-section face."""
    return (f"The stage was tilted {reading['stage_deg']:g}° and the microscope's tilt correction off when {name} "
            f"was taken: on a FIB cross-section face seen at that tilt, heights are foreshortened, and the pixel "
            f"height is {reading['dy_file_um']:.4g} µm / sin {reading['stage_deg']:g}° = "
            f"{reading['dy_um']:.4g} µm, not the file's {reading['dy_file_um']:.4g} µm.")


def fei_data_bar_rows(tif, height: int) -> int | None:
    """The rows of an FEI / Thermo Fisher TIFF's data bar: the image's ``height`` less the scanned image's
    ``[Image] ResolutionY``; None where the file states no such rows (no FEI tag, no bar saved) or more than
    :data:`BAR_MAX_SHARE` of the height."""
    fei = tif.fei_metadata if tif.is_fei else None
    if not fei:
        return None
    scanned = _positive(_section(fei, "Image").get("ResolutionY"))
    if scanned is None or scanned != int(scanned):
        return None
    rows = int(height) - int(scanned)
    return rows if 0 < rows <= BAR_MAX_SHARE * height else None


def _mode(row: np.ndarray):
    values, counts = np.unique(row, return_counts=True)
    return values[int(np.argmax(counts))]


def find_data_bar(plane: np.ndarray) -> int | None:
    """The rows of a data bar at the bottom of an image, found in its pixels; None where there is none.

    The bar's background is the most common value of the bottom row (values within 2 % of the image's range of it count
    as it).  The bar is the band of rows from the bottom up to the image: the first run of four rows holding that
    value in at most 30 % of their pixels.  It holds that value in 60-99.5 % of its pixels (the text the rest; a
    band of that value only is padding, :mod:`core.phases.fill`), at least 50 % more than the :data:`_ABOVE_ROWS`
    rows above it, has two rows or more of that value alone (98 % of the row: the text's margins; an object cut by
    the image's bottom edge has none), and is at least :data:`BAR_MIN_ROWS` and at most :data:`BAR_MAX_SHARE` of the
    height; up to three rows above it that are each mostly one other value (a rule along the bar's top) are taken
    into it.  A noisy image holds no one value that often; a noiseless phantom's phases hold theirs above the band
    as well.

    Parameters
    ----------
    plane : (Y, X) ndarray
        One image or slice, numeric.

    Returns
    -------
    int or None
        The number of rows at the bottom that are the bar.

    Raises
    ------
    ValueError
        ``plane`` is not 2D.
    """
    plane = np.asarray(plane)
    if plane.ndim != 2:
        raise ValueError(f"find_data_bar takes one 2D image, got an array of shape {plane.shape}")
    height = plane.shape[0]
    most = int(BAR_MAX_SHARE * height)
    if most < BAR_MIN_ROWS or height < most + _ABOVE_ROWS or plane.shape[1] < 16:
        return None
    background = _mode(plane[-1])
    finite = plane[np.isfinite(plane)] if plane.dtype.kind == "f" else plane
    if not finite.size:
        return None
    tol = _TOLERANCE * (float(finite.max()) - float(finite.min()))
    # the share of the background value in each row, from the bottom row up to the deepest bar's and its image rows
    part = plane[height - most - _ABOVE_ROWS:].astype(np.float64)
    share = (np.abs(part - float(background)) <= tol).mean(axis=1)[::-1]
    image = share <= _IMAGE_SHARE
    # the bar ends where the image starts: the first run of _IMAGE_RUN image rows (a rule or the scale bar, a row
    # or two of other values inside the bar, does not end it)
    run = np.convolve(image.astype(np.int32), np.ones(_IMAGE_RUN, np.int32), "valid")
    starts = np.flatnonzero(run == _IMAGE_RUN)
    if not starts.size:
        return None
    rows = int(starts[0])
    if not BAR_MIN_ROWS <= rows <= most:
        return None
    band, above = float(share[:rows].mean()), float(share[rows:rows + _ABOVE_ROWS].mean())
    # a rule along the bar's top (a row or two of another flat value) belongs to it
    for _ in range(_RULE_ROWS):
        row = plane[height - rows - 1].astype(np.float64)
        if rows >= most or float((np.abs(row - float(_mode(row))) <= tol).mean()) < _BAR_BAND_SHARE[0]:
            break
        rows += 1
    if not _BAR_BAND_SHARE[0] <= band <= _BAR_BAND_SHARE[1] or above > _IMAGE_SHARE or band - above < _CONTRAST:
        return None
    if int((share[:rows] >= _BLANK_SHARE).sum()) < _BLANK_ROWS:
        return None
    return rows


def data_bar(height: int, meta_rows: int | None = None, plane: np.ndarray | None = None) -> dict | None:
    """A data bar at the bottom of an image ``height`` rows high: the metadata's rows (``meta_rows``,
    :func:`fei_data_bar_rows`) where given, else those :func:`find_data_bar` finds in ``plane`` (one (Y, X) plane of
    the image), where given.

    Returns
    -------
    dict or None
        ``rows`` (at the bottom), ``start`` (the first row of the bar: a crop keeps rows ``0:start``) and
        ``source`` (``"metadata"`` or ``"pixels"``).
    """
    if meta_rows:
        rows, source = int(meta_rows), "metadata"
    elif plane is not None:
        rows, source = find_data_bar(plane), "pixels"
    else:
        return None
    if not rows:
        return None
    return {"rows": int(rows), "start": int(height) - int(rows), "source": source}


#: A scale bar is at least this many pixels and this share of the image's width long, at most _SCALE_MAX_SHARE of
#: it (a rule along the bar is longer), and at least _SCALE_MIN_ROWS rows thick; its pixels differ from the bar's
#: background by at least _INK_CONTRAST of the image's value range.
_SCALE_MIN_PX = 16
_SCALE_MIN_SHARE = 0.02
_SCALE_MAX_SHARE = 0.6
_SCALE_MIN_ROWS = 2
_INK_CONTRAST = 0.25


def _longest_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of the longest run of True in each row of a 2D mask ((0, 0) for a row without any)."""
    out = []
    for row in mask:
        edges = np.diff(np.concatenate(([0], row.astype(np.int8), [0])))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        if not starts.size:
            out.append((0, 0))
            continue
        i = int(np.argmax(ends - starts))
        out.append((int(starts[i]), int(ends[i] - starts[i])))
    return out


def find_scale_bar(plane: np.ndarray, bar: dict) -> dict | None:
    """The scale bar drawn in a data bar: the longest horizontal line of ink, at least two rows thick.

    Ink is what differs from the bar's background (its bottom row's most common value) by a quarter of the image's
    value range or more.  In each row of the bar the longest run of ink is taken; the scale bar is the longest run
    that :data:`_SCALE_MIN_ROWS` consecutive rows or more share (the same start and length within a pixel), at least
    16 pixels and 2 % of the width long and at most 60 % (a rule along the bar is longer).  Text has no such runs.

    Parameters
    ----------
    plane : (Y, X) ndarray
        The image with its bar.
    bar : dict
        :func:`data_bar`'s answer for it.

    Returns
    -------
    dict or None
        ``length_px`` (pixels, ends included), ``row`` (its first row, in the image), ``x0`` (its first column),
        ``rows`` (its thickness).
    """
    plane = np.asarray(plane)
    region = plane[int(bar["start"]):].astype(np.float64)
    if region.shape[0] < _SCALE_MIN_ROWS:
        return None
    finite = plane[np.isfinite(plane)] if plane.dtype.kind == "f" else plane
    span = float(finite.max()) - float(finite.min()) if finite.size else 0.0
    if span <= 0:
        return None
    background = float(_mode(plane[-1]))
    runs = _longest_runs(np.abs(region - background) >= _INK_CONTRAST * span)
    width = plane.shape[1]
    shortest, longest = max(_SCALE_MIN_PX, _SCALE_MIN_SHARE * width), _SCALE_MAX_SHARE * width
    best = None
    for r in range(len(runs) - _SCALE_MIN_ROWS + 1):
        x0, n = runs[r]
        if not shortest <= n <= longest:
            continue
        thick = 1
        while r + thick < len(runs) and abs(runs[r + thick][0] - x0) <= 1 and abs(runs[r + thick][1] - n) <= 1:
            thick += 1
        if thick >= _SCALE_MIN_ROWS and (best is None or n > best["length_px"]):
            best = {"length_px": int(n), "row": int(bar["start"]) + r, "x0": int(x0), "rows": thick}
    return best


def scale_bar_message(scale: dict) -> str:
    """One sentence: where the scale bar is and how to turn its printed length into the pixel size."""
    return (f"The data bar holds a scale bar {scale['length_px']} pixels long (y {scale['row']}, x {scale['x0']}:"
            f"{scale['x0'] + scale['length_px']}): the pixel size is the length printed beside it divided by "
            f"{scale['length_px']}.")


def volume_data_bar(volume, plane: np.ndarray | None = None) -> dict | None:
    """:func:`data_bar` found in the middle z plane of a (Z, Y, X) volume (a lazily read one reads that plane
    only; ``plane``: that plane, read already), with ``name``: how :func:`data_bar_message` names where it is
    ("the image", or "each z plane")."""
    if plane is None:
        z = int(volume.shape[0]) // 2
        plane = np.asarray(volume[z:z + 1])[0]
    bar = data_bar(int(volume.shape[1]), None, plane)
    if bar is not None:
        bar["name"] = "the image" if int(volume.shape[0]) == 1 else "each z plane"
    return bar


def data_bar_message(bar: dict, name: str | None = None) -> str:
    """One sentence: where the bar is (in ``name``, else the bar's own ``name``, else "the image"), where it was
    read, and what to do."""
    name = name or bar.get("name", "the image")
    where = f"The bottom {bar['rows']} rows of {name} (y {bar['start']}:{bar['start'] + bar['rows']})"
    what = ("are the microscope's data bar, as its metadata states" if bar["source"] == "metadata"
            else "look like the microscope's data bar (one grey value with a little text, unlike the image above)")
    return f"{where} {what}: crop them out, or its text and scale bar are analysed as particles in pore."
