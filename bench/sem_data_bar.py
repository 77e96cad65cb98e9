"""An SEM image's data bar (``core.io.sem.find_data_bar``): found where one is burned in, never where there is none,
and what it does to an analysis left in.

1. Planes without a bar: every nano-CT slice and label image of ``shared/data/real`` (if present), every z, y and x
   plane of the real calendered volume, the real FIB-SEM slice (16-bit and 8-bit), and every z, y and x plane of the
   three demo electrodes (greyscale and phases) at 64³: how many the finder takes for a bar (the target: none).
2. The real FIB-SEM slice (8-bit) with bars burned in below it as microscope software does: a Thermo Fisher-like
   70-row black bar of white text in PIL's scalable font with a rule and a scale bar (what a Helios adds to 1024
   rows), a Zeiss-like 60-row white data zone with black text, and the first saved as a JPEG (quality 75): the rows
   found against the rows burned in, the scale bar's length found against the one drawn, then the analysis
   (``core.pipeline.run``, default parameters, 0.025 µm pixels) of the whole image and of the image cropped to the
   rows above the bar: particles and median detachment.

Usage:  python bench/sem_data_bar.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
import warnings

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)

REAL = C.REPO_ROOT.parent / "shared" / "data" / "real"
FIBSEM = REAL / "fibsem_nmc_2d" / "3_phase_old_NMC_FIBSEM.tif"


def _jpeg(img: np.ndarray) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=75)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())))


def _analysis(img: np.ndarray) -> dict:
    from core.pipeline import AnalysisParams, run

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = run(img[None], AnalysisParams(), spacing=(0.025, 0.025, 0.025))
    bar_said = any("data bar" in str(w.message) for w in caught)
    table = res.table
    return {"particles": len(table), "median detachment": float(np.nanmedian(table["detachment"])),
            "bar warned": "yes" if bar_said else "no"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    C.add_common_args(ap)
    args = ap.parse_args()
    import tifffile

    sys.path.insert(0, str(C.REPO_ROOT / "tests"))
    from sem_files import drawn_bar  # the tests' bar, drawn in a font

    from core.io.sem import find_data_bar, find_scale_bar
    from core.synth import DEMO_ELECTRODES, demo_electrode

    load_start = os.getloadavg()
    t_start = time.perf_counter()
    negatives = []

    def count(label, planes):
        planes = list(planes)
        found = [r for r in (find_data_bar(p) for p in planes) if r is not None]
        negatives.append({"planes": label, "n": len(planes), "bar found in": len(found)})
        C.print_row(negatives[-1])

    slices = REAL / "nanoct_nmc_slices"
    if slices.exists():
        count("nano-CT slices (real)", (tifffile.imread(p) for p in sorted(slices.glob("raw_*[0-9].tif"))))
        count("nano-CT label images (real)", (tifffile.imread(p) for p in sorted(slices.glob("raw_*_label.tif"))))
    cal = REAL / "nmc_calendered_3phase" / "nmc-1-cal_generatedCBD_bridge.tif"
    if cal.exists():
        v = tifffile.imread(cal)
        step = 10 if args.quick else 1
        count("calendered volume, z/y/x planes (real)",
              [v[i] for i in range(0, v.shape[0], step)] + [v[:, i] for i in range(0, v.shape[1], step)]
              + [v[:, :, i] for i in range(0, v.shape[2], step)])
    if FIBSEM.exists():
        real = tifffile.imread(FIBSEM)
        count("FIB-SEM slice, 16-bit and 8-bit (real)", [real, (real // 257).astype(np.uint8)])
    n = 32 if args.quick else 64
    for name in DEMO_ELECTRODES:
        e = demo_electrode(name, shape=(n, n, n))
        for kind, v in (("greyscale", np.asarray(e.greyscale)), ("phases", np.asarray(e.phases))):
            count(f"demo {name} {kind}, z/y/x planes (SYNTHETIC)",
                  [v[i] for i in range(n)] + [v[:, i] for i in range(n)] + [v[:, :, i] for i in range(n)])

    bars = []
    if FIBSEM.exists():
        img = (tifffile.imread(FIBSEM) // 257).astype(np.uint8)
        if args.quick:
            img = img[:300, :400]
        cropped = _analysis(img)
        width = img.shape[1]
        cases = [("black bar, white text (Thermo Fisher-like), PNG", 70,
                  np.vstack([img, drawn_bar(width, 70, 0, 255)])),
                 ("white data zone, black text (Zeiss-like), PNG", 60,
                  np.vstack([img, drawn_bar(width, 60, 255, 0)]))]
        cases.append(("black bar, white text, JPEG quality 75", 70, _jpeg(cases[0][2])))
        for label, rows, full in cases:
            whole = _analysis(full)
            found = find_data_bar(full)
            scale = find_scale_bar(full, {"rows": found, "start": full.shape[0] - found}) if found else None
            bars.append({"image": label, "rows burned in": rows, "rows found": found,
                         "scale bar drawn (px)": int(width * 0.9) - int(width * 0.8) + 1,
                         "scale bar found (px)": scale["length_px"] if scale else None,
                         "particles, bar left in": whole["particles"], "particles, cropped": cropped["particles"],
                         "median detachment, bar left in": whole["median detachment"],
                         "median detachment, cropped": cropped["median detachment"],
                         "analysis warned": whole["bar warned"]})
            C.print_row(bars[-1])
    description = ("Part 1: planes without a bar, how many the finder takes for one. Part 2: the real FIB-SEM slice "
                   f"({'a 300×400 corner, ' if args.quick else ''}8-bit) with a bar burned in below it; 'cropped' is "
                   "the image alone (the same for every row), analysed at 0.025 µm pixels with the default "
                   "parameters; 'analysis warned': whether the run with the bar left in said so.")
    lines = C.section_lines("An SEM image's data bar: found, and what it does left in (`bench/sem_data_bar.py`)",
                            time.perf_counter() - t_start, load_start, description,
                            {"Planes without a bar": negatives, "The real FIB-SEM slice with a bar burned in": bars})
    C.publish("sem_data_bar", lines, args)


if __name__ == "__main__":
    main()
