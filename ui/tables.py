"""Display tables of the Samples page: the catalogue of samples and the analyses of one sample (no streamlit)."""

from __future__ import annotations

import numpy as np

from core.io.phase_map import parse_phase_map
from core.workspace import Analysis, Sample, Workspace

from . import pins
from .confine import display_path
from .render import AXES

#: What a table cell shows for a missing value (NaN, None): Streamlit's default prints "None", which reads as a
#: word of the data (a depth_frac of a slice with no depth, the crack share of a particle with no crack measure).
MISSING = "–"


def voxel_text(spacing) -> str:
    """A voxel size as the pages say it: ``"0.5×0.398×0.398 µm"`` (z×y×x)."""
    return "×".join(f"{float(v):g}" for v in spacing) + " µm"


def grey_text(value) -> str:
    """A grey value as the pages say it: whole numbers from 100 up (16-bit scans), four significant digits below
    (a float scan's 0.869 was shown as 1); "–" for none."""
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.4g}"


def same_map(a: str | None, b: str | None) -> bool:
    """Whether two ``phase_map`` texts give every value the same phase (their spelling and order aside)."""
    if a is None or b is None:
        return a is b
    return parse_phase_map(a) == parse_phase_map(b)


def analysed_map(analysis: Analysis) -> str | None:
    """The ``phase_map`` an analysis ran with (from its input snapshot; None for a greyscale input)."""
    snap = (analysis.provenance or {}).get("input") or {}
    return (snap.get("source_options") or {}).get("phase_map")


def analysed_input(sample: Sample, analysis: Analysis):
    """The input an analysis ran on (:mod:`core.inputs`, from its input snapshot: the phase map and region of
    interest it used, not those the sample holds since); the sample's own input where it kept none."""
    from core.inputs import input_from_source

    snap = (analysis.provenance or {}).get("input") or {}
    try:
        return input_from_source(snap["source"], snap.get("source_options"))
    except (KeyError, TypeError, ValueError):
        return sample.input


def input_words(analysis: Analysis) -> str:
    """How an analysis read its file, where that can change between analyses of a sample: the phase map, the
    region of interest and whether the slices were aligned, of its input snapshot ("" for none of them)."""
    snap = (analysis.provenance or {}).get("input") or {}
    opts = snap.get("source_options") or {}
    crop = (opts.get("read") or {}).get("crop")
    words = [f"phase map {opts['phase_map']}" if opts.get("phase_map") else "",
             "crop " + ", ".join(f"{a} {lo}:{hi}" for a, (lo, hi) in zip("zyx", crop)) if crop else "",
             "slices aligned" if (opts.get("read") or {}).get("align") else ""]
    return "; ".join(w for w in words if w)


def changed_since(sample: Sample, analysis: Analysis) -> list[str]:
    """What of the sample changed after ``analysis`` ran and would change its measures: "voxel size", "thickness
    axis", "separator side", "phase map", "region of interest", "slices' alignment" (empty: nothing).  The separator
    side has changed where the sample now sets one other than the analysis used, or asks to detect it where the
    analysis was given one (setting the side the analysis detected changes nothing)."""
    out = []
    used = analysis.provenance.get("spacing_um")
    if used and any(abs(a - b) > 1e-9 for a, b in zip(used, sample.spacing)):
        out.append("voxel size")
    if analysis.resolved.axis != sample.axis:
        out.append("thickness axis")
    elif (analysis.resolved.separator_side != sample.separator_side if sample.separator_side != "auto"
          else analysis.requested.separator_side != "auto"):
        out.append("separator side")
    ran, now = analysed_map(analysis), getattr(sample.input, "phase_map", None)
    if ran is not None and now is not None and not same_map(ran, now):
        out.append("phase map")
    snap = (analysis.provenance or {}).get("input")
    if snap is not None and not sample.is_demo:  # (an analysis without an input snapshot says nothing of it)
        read, now = (snap.get("source_options") or {}).get("read") or {}, sample.source_options.get("read") or {}
        if (read.get("crop") or None) != (now.get("crop") or None):
            out.append("region of interest")
        if (read.get("align") or None) != (now.get("align") or None):
            out.append("slices' alignment")
    return out


def changed_sentences(sample: Sample, analysis: Analysis) -> list[str]:
    """One sentence for each thing of the sample changed after ``analysis`` ran (:func:`changed_since`), what
    it was and is, and to rerun the analysis (the Samples and Particles pages warn with them)."""
    voxel = voxel_text
    rerun = " Rerun the analysis (Segment page) to update the measurements."
    out = []
    changed = changed_since(sample, analysis)
    if "voxel size" in changed:
        out.append(f"Analysis #{analysis.id} used the voxel size {voxel(analysis.provenance['spacing_um'])}; the sample "
                   f"now says {voxel(sample.spacing)}.{rerun} A particle separation run from its phases measures "
                   "with the voxel size the sample says now.")
    if "thickness axis" in changed or "separator side" in changed:
        side = {"start": "the start", "end": "the end"}
        used = (f"the thickness axis {'zyx'[analysis.resolved.axis]}, the separator at "
                f"{side[analysis.resolved.separator_side]}"
                + (" (detected)" if analysis.requested.separator_side == "auto" else ""))
        now = (f"{'zyx'[sample.axis]}, " + (f"the separator at {side[sample.separator_side]}"
                                            if sample.separator_side != "auto" else "the separator side detected"))
        out.append(f"Analysis #{analysis.id} measured depth along {used}; the sample now says {now}.{rerun}")
    if "region of interest" in changed:
        out.append(f"Analysis #{analysis.id} ran on another region of interest than the sample now says.{rerun}")
    if "slices' alignment" in changed:
        out.append(f"Analysis #{analysis.id} read the slices aligned otherwise than the sample now says (aligned, or "
                   f"as they are in the file).{rerun}")
    if "phase map" in changed:
        out.append(f"Analysis #{analysis.id} used the phase map `{analysed_map(analysis)}`; the sample now says "
                   f"`{sample.input.phase_map}`.{rerun}")
    return out


def catalogue_table(ws: Workspace):
    """The samples of the workspace as a display table."""
    import pandas as pd

    rows = []
    for s in ws.list_samples():
        done = ws.latest_analysis(s.id)
        last = ws.latest_analysis(s.id, status=None)
        if done is not None:
            status = f"analysed ({done.n_particles} particles)"
            changed = changed_since(s, done)
            if changed:
                status += f", before the {' and '.join(changed)} changed: rerun"
        elif last is not None:
            status = f"{last.status}" + (f": {last.error}" if last.error else "")
        else:
            status = "not analysed"
        shape = s.source_options.get("shape") or s.shape
        size = "×".join(map(str, shape)) if shape else ""
        crop = (s.source_options.get("read") or {}).get("crop")
        if crop:
            shape = [int(b) - int(a) for a, b in crop]
            size += (" → " if size else "") + f"{'×'.join(map(str, shape))} (cropped)"
        align = (s.source_options.get("read") or {}).get("align")
        if shape and align:
            from core.io._common import aligned_shape

            shape = list(aligned_shape(align, shape))
            size += f" → {'×'.join(map(str, shape))} (slices aligned)"
        if shape and s.downsample > 1:
            size += f" → {'×'.join(str(int(n) // s.downsample) for n in shape)} (downsampled by {s.downsample})"
        elif not shape and done is not None and done.provenance.get("input_shape"):
            # added without its shape (the command line, the Python API): the shape its analysis read
            size = "×".join(map(str, done.provenance["input_shape"])) + " (as analysed)"
        rows.append({  # the status right after the name: a long source path must not push it off-screen
            "id": s.id, "name": s.name, "status": status, "group": s.group_label,
            # what Compare puts electrodes on an axis by (QA walk 16: shown only inside each sample's Attributes)
            "attributes": ", ".join(f"{a.name} {a.value:g}" + (f" {a.unit}" if a.unit and a.unit != "-" else "")
                                    for a in s.attributes),
            "source": ("SYNTHETIC demo " + s.demo_name) if s.is_demo else display_path(s.source),
            "voxel z×y×x (µm)": "×".join(f"{v:g}" for v in s.spacing),
            "size (voxels)": size,
            "thickness axis": AXES[s.axis], "separator": s.separator_side,
        })
    return pd.DataFrame(rows)


def analyses_table(analyses):
    """Analyses as a display table."""
    import datetime as dt

    import pandas as pd

    rows = []
    for a in analyses:
        seg = a.resolved.segment
        rows.append({
            "analysis": a.id, "status": a.status,
            "finished": dt.datetime.fromtimestamp(a.updated_at).strftime("%Y-%m-%d %H:%M:%S"),
            "method": pins.method_words(a),
            "note": a.note,
            "particles": a.n_particles,
            "thresholds (grey)": (f"{grey_text(seg.low)} / {grey_text(seg.high)}"
                                  if seg.low is not None and seg.high is not None else ""),
            "h (µm)": a.requested.separation.h_um,
            "read as": input_words(a),
            "error": a.error or "",
        })
    return pd.DataFrame(rows)


def detail_values(row):
    """One particle's row as a one-column table of text, floats to 4 significant digits (whole numbers from
    10,000 up), as the table beside it shows them; the CSV keeps every digit.

    ``astype(str)`` would print binary-rounding artefacts such as ``354.6880000000001``.
    """
    import numbers

    import pandas as pd

    def text(v) -> str:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            return str(v)
        if isinstance(v, numbers.Integral):
            return str(int(v))
        if v != v:
            return MISSING
        return f"{float(v):,.0f}" if abs(v) >= 1e4 else f"{float(v):.4g}"

    return pd.DataFrame({"value": [text(v) for v in row.to_numpy()]}, index=row.index)
