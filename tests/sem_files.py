"""Test helpers: SEM images as the microscopes' software saves them (TIFFs with an FEI / Thermo Fisher, Zeiss or
Zeiss Atlas tag, a data bar burned into the bottom rows), and a FIB-SEM stack whose slices are not aligned."""

from __future__ import annotations

import numpy as np
import tifffile

FEI_TAG, ZEISS_TAG, FIBICS_TAG = 34682, 34118, 51023


def fei_text(pixel_m: float, width: int, scanned_rows: int, bar_rows: int, tilt_correction: str = "yes",
             beam: str = "EBeam") -> str:
    """The FEI_HELIOS tag's text of a Helios cross-section image (the sections and keys the readers use, among
    others a Helios writes): the stage at 52°, the tilt correction ``tilt_correction`` (``yes``: at -38°, as a
    Helios 5 saves a cross-section), the image of the beam ``beam``."""
    angle = "TiltCorrectionAngle=-0.663242\r\n" if tilt_correction == "yes" else ""
    return (
        "[User]\r\nDate=11/20/2026\r\nTime=02:33:36 PM\r\nUser=supervisor\r\n\r\n"
        "[System]\r\nType=DualBeam\r\nSystemType=Helios G4 UX\r\nSource=FEG\r\n\r\n"
        f"[Beam]\r\nHV=5000\r\nBeam={beam}\r\nScan=EScan\r\n\r\n"
        f"[EBeam]\r\nStageTa=0.907571\r\nTiltCorrectionIsOn={tilt_correction}\r\n{angle}\r\n"
        "[Stage]\r\nStageX=-0.00446317\r\nStageT=0.907571\r\nStageTb=0\r\n\r\n"
        f"[Image]\r\nDigitalContrast=1\r\nResolutionX={width}\r\nResolutionY={scanned_rows}\r\nZoomFactor=1\r\n\r\n"
        f"[Scan]\r\nInternalScan=true\r\nDwelltime=3e-006\r\nPixelWidth={pixel_m:.6g}\r\nPixelHeight={pixel_m:.6g}\r\n"
        f"HorFieldsize={pixel_m * width:.6g}\r\n\r\n"
        f"[PrivateFei]\r\nBitShift=0\r\nDataBarSelected=DataBar\r\nDatabarHeight={bar_rows}\r\n"
    )


def zeiss_text(size: float, unit: str, stage_deg: float | None = None, tilt_correction: str = "On") -> bytes:
    """The CZ_SEM tag's text of a SmartSEM image: a list of ``KEY`` / ``Name = value unit`` pairs (in Windows'
    code page: µ and ° are one byte each, 0xB5 and 0xB0); with ``stage_deg``, the stage tilt and the tilt
    correction (``On``: at 36°, a Crossbeam's cross-section setting)."""
    tilt = "" if stage_deg is None else (
        f"AP_STAGE_AT_T\r\nStage at T = {stage_deg} °\r\nDP_TILT_CORRECTION\r\nTilt Corrn. = {tilt_correction}\r\n"
        "AP_TILT_ANGLE\r\nTilt Angle = 36.0 °\r\n")
    return ("0\r\nAP_WD\r\nWD = 5.1 mm\r\nAP_IMAGE_PIXEL_SIZE\r\n"
            f"Image Pixel Size = {size} {unit}\r\n{tilt}AP_MAG\r\nMag = 10.00 K X\r\n").encode("cp1252")


def fibics_xml(step_um: float = 0.00522874872557056, width: int | None = 300, height: int | None = 200, *,
               steps: bool = True, fov: bool = True, rotation_deg: float = 0.0) -> str:
    """The FibicsXML block (tag 51023) of a Zeiss Atlas 5 image, with the element names and nesting Atlas writes
    (``<OriginalWidth>`` beside ``<Width>``, ``units`` on the fields of view; ``<Uy>`` 0, ``<Vy>`` negative):
    the scan's step vectors of ``step_um`` (rotated by ``rotation_deg``) and / or its fields of view."""
    import math

    c, s = math.cos(math.radians(rotation_deg)), math.sin(math.radians(rotation_deg))
    image = ("" if width is None or height is None else
             f"<Image><Width>{width}</Width><Height>{height}</Height><OriginalWidth>0</OriginalWidth>"
             "<OriginalHeight>0</OriginalHeight><Cropped>false</Cropped></Image>")
    scan = ""
    if fov and width is not None and height is not None:
        scan += f'<FOV_X units="um">{step_um * width!r}</FOV_X><FOV_Y units="um">{step_um * height!r}</FOV_Y>'
    scan += f'<ScanRot units="deg">{rotation_deg}</ScanRot>'
    if steps:
        scan += (f"<Ux>{step_um * c!r}</Ux><Uy>{step_um * s!r}</Uy><Vx>{step_um * s!r}</Vx>"
                 f"<Vy>{-step_um * c!r}</Vy>")
    return ('<?xml version="1.0"?>\r\n<Fibics version="1.2" format="Image"><Application><Version>ZEISS Atlas 5 '
            f"Client v5.5.5.35</Version></Application>{image}<Scan>{scan}</Scan>"
            '<Stage><X units="um">0</X></Stage></Fibics>')


def with_bar(image: np.ndarray, rows: int, background: int = 0, ink: int = 255) -> np.ndarray:
    """``image`` with a data bar of ``rows`` below it: ``background`` with ``ink`` text-like marks, a rule along
    its top and a scale bar."""
    rng = np.random.default_rng(7)
    h, w = rows, image.shape[1]
    bar = np.full((h, w), background, image.dtype)
    bar[0] = ink // 2 + background // 2  # the rule
    for y0 in range(6, h - 10, 20):  # lines of "text": glyph-sized marks
        for x0 in range(10, int(w * 0.7), 9):
            if rng.random() < 0.8:
                glyph = rng.random((9, 6)) < 0.35
                bar[y0:y0 + 9, x0:x0 + 6][glyph] = ink
    bar[h - 12:h - 8, int(w * 0.8):int(w * 0.9)] = ink  # the scale bar
    return np.vstack([image, bar])


def drawn_bar(width: int, rows: int, background: int, ink: int) -> np.ndarray:
    """A data bar as microscope software draws one: ``rows`` high, ``background`` with ``ink`` text in PIL's
    scalable font, a 2-pixel rule along its top and a scale bar from 80 % to 90 % of the width (pixels x 0.8 w to
    0.9 w, ends included), 5 rows thick."""
    from PIL import Image, ImageDraw, ImageFont

    bar = Image.new("L", (width, rows), background)
    d = ImageDraw.Draw(bar)
    font = ImageFont.load_default(size=max(10, rows // 4))
    d.line((0, 0, width, 0), fill=(background + ink) // 2, width=2)
    d.text((8, rows // 8), "HV 5.00 kV | curr 0.40 nA | mag 10 000 x | WD 4.1 mm | det TLD", fill=ink, font=font)
    d.text((8, rows // 2), "HFW 25.3 µm | tilt 52° | 2026-11-20 14:33", fill=ink, font=font)
    d.rectangle((int(width * 0.8), rows - rows // 4, int(width * 0.9), rows - rows // 4 + 4), fill=ink)
    d.text((int(width * 0.82), rows // 3), "5 µm", fill=ink, font=font)
    return np.asarray(bar)


def write_sem_tiff(path, image: np.ndarray, *, fei: str | None = None, zeiss: bytes | None = None,
                   fibics: str | None = None, dpi: float = 96.0) -> None:
    """One image as the microscope saves it: resolution tags holding a print density, and the vendor's tag (a Zeiss
    Atlas image: ``ResolutionUnit`` NONE, no resolution, as Atlas saves it)."""
    if fibics is not None:
        tifffile.imwrite(path, image, resolutionunit="NONE", extratags=[(FIBICS_TAG, "s", 0, fibics, True)])
        return
    extratags = []
    if fei is not None:
        extratags.append((FEI_TAG, "s", 0, fei, True))
    if zeiss is not None:
        extratags.append((ZEISS_TAG, "s", 0, zeiss, True))
    tifffile.imwrite(path, image, resolution=(dpi, dpi), resolutionunit="INCH", extratags=extratags)


def fib_stack(drift, noise: float, seed: int = 1) -> np.ndarray:
    """A serial-section stack (FIB-SEM) not aligned: a demo electrode's phases as grey values (20 / 100 / 200,
    blurred 0.8 voxel), each z plane a window of a field that moves by ``drift`` pixels (dy, dx) more than under the
    plane before (the field: the plane mirrored on every side, shifted by a cubic spline, so new structure comes in
    at one edge as in a microscope's moving field of view), fresh noise of ``noise`` on every plane; (64, 128, 128)
    float.  Plane ``k``'s content lies at ``(drift[0] * k, drift[1] * k)`` against plane 0's."""
    from scipy import ndimage as ndi

    from core.synth import demo_electrode

    e = demo_electrode("cycled-5C", rng=3, shape=(64, 128, 128))
    clean = ndi.gaussian_filter(np.choose(e.phases.astype(int), [20.0, 100.0, 200.0]), 0.8)
    rng = np.random.default_rng(seed)
    m = int(np.ceil(np.abs(drift).max() * 63)) + 4
    window = (slice(m, m + 128), slice(m, m + 128))
    return np.stack([ndi.shift(np.pad(clean[k], m, mode="reflect"), (drift[0] * k, drift[1] * k), order=3,
                               mode="nearest")[window]
                     + rng.normal(0, noise, clean.shape[1:]) for k in range(clean.shape[0])])
