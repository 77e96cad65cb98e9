"""A self-contained HTML report of one or more analyses.

:func:`build_report` returns one HTML document holding the caveats about what
is compared, the summary table (a column per electrode), sections the caller
words (the tests between electrodes), each electrode's inputs (source,
spacing, checksum), parameters and package versions, the charts (SVG or PNG
given by the caller, embedded as ``data:`` images), the per-particle tables
(the first rows shown, the whole table embedded as a CSV download), and
optionally the recipe that replays it all.
There is no script and no reference to anything outside the file: it opens
offline.

Nothing here imports streamlit or a plotting library: charts come in already
rendered.
"""

from __future__ import annotations

import base64
import html
import json
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .metrics import column_title
from .recipe import folder_name

if TYPE_CHECKING:
    from .compare import ElectrodeTrend

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:72em;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em;margin-bottom:0.2em}h2{font-size:1.3em;border-bottom:1px solid #ccc;padding-bottom:0.2em;
margin-top:1.8em}h3{font-size:1.1em;margin-top:1.4em}
table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}
th,td{border:1px solid #ddd;padding:0.2em 0.5em;text-align:right;vertical-align:top}
th{background:#f3f3f3}td.k,th.k{text-align:left}
.scroll{overflow-x:auto;max-height:32em;overflow-y:auto}
.note{color:#555;font-size:0.9em}.chart{margin:1em 0}.chart img{max-width:100%;height:auto}
.caveat{background:#fff8e1;border-left:4px solid #e0a800;padding:0.5em 0.8em;margin:0.6em 0}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:0.85em}
pre{background:#f7f7f7;padding:0.8em;overflow-x:auto;max-height:30em}
a.dl{display:inline-block;margin:0.2em 0.8em 0.2em 0}
"""


@dataclass(frozen=True, eq=False)
class ReportElectrode:
    """One analysed electrode in a report.

    Attributes
    ----------
    name : str
    table : DataFrame
        Its per-particle table (:data:`core.metrics.COLUMNS`).
    params : dict
        :meth:`core.pipeline.AnalysisParams.to_dict` as resolved.
    source : str
        Where the input came from (a path, ``demo:NAME``...).
    spacing_um : (3,) float or None
    input_checksum : str or None
        :func:`core.pipeline.checksum` of the pipeline's input.
    versions : dict
        Package versions of the run.
    group : str
    analysis : str
        Which analysis, worded by the caller ("#3, 2026-12-07 23:34 UTC"); "" leaves the column empty.
    """

    name: str
    table: pd.DataFrame
    params: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    spacing_um: Sequence[float] | None = None
    input_checksum: str | None = None
    versions: Mapping[str, str] = field(default_factory=dict)
    group: str = ""
    analysis: str = ""


@dataclass(frozen=True, eq=False)
class ReportSection:
    """A section worded by the caller (what a page showed, carried into its report).

    Attributes
    ----------
    title : str
        Its heading.
    items : sequence of str
        Sentences shown as a list (one reading per line).
    table : DataFrame, optional
        Shown whole, numbers to 4 significant digits.
    note : str
        How it was made, under the table.
    """

    title: str
    items: Sequence[str] = ()
    table: pd.DataFrame | None = None
    note: str = ""


def _esc(x: object) -> str:
    return html.escape(str(x), quote=True)


def _flatten(d: Mapping, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.extend(_flatten(v, key + "."))
        else:
            out.append((key, v))
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return "–" if v != v else f"{v:.10g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def _kv_table(rows: Sequence[tuple[str, Any]], header: tuple[str, str] = ("name", "value")) -> str:
    body = "".join(f'<tr><td class="k">{_esc(k)}</td><td class="k">{_esc(_fmt(v))}</td></tr>' for k, v in rows)
    return f'<table><tr><th class="k">{_esc(header[0])}</th><th class="k">{_esc(header[1])}</th></tr>{body}</table>'


def _frame_html(df: pd.DataFrame, max_rows: int | None = None) -> str:
    shown = df if max_rows is None else df.head(max_rows)
    text = shown.to_html(index=False, border=0, na_rep="–", escape=True, float_format=lambda v: f"{v:.4g}")
    # a column name such as equiv_diameter_um may break after its underscores: the table fits the page's width
    text = re.sub(r"(<th[^>]*>)([^<]*)(</th>)", lambda m: m[1] + m[2].replace("_", "_<wbr>") + m[3], text)
    return '<div class="scroll">' + text + "</div>"


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _download(data: bytes, mime: str, filename: str, label: str) -> str:
    return f'<a class="dl" download="{_esc(filename)}" href="{_data_uri(data, mime)}">{_esc(label)}</a>'


def _png_css_width(png: bytes) -> int | None:
    """The width (CSS px) a PNG is drawn at: its pixels times 72 / its stated density (pixels per inch, the
    ``pHYs`` chunk; 72 ppi = one pixel per CSS pixel, as vl-convert writes at scale 1); None where it states none
    or 72 (drawn pixel for pixel)."""
    width = struct.unpack(">I", png[16:20])[0] if png[12:16] == b"IHDR" and len(png) >= 24 else 0
    at = 8
    while width and at + 8 <= len(png):
        n, kind = struct.unpack(">I", png[at:at + 4])[0], png[at + 4:at + 8]
        if kind == b"pHYs" and n == 9 and at + 17 <= len(png):
            ppm_x, _, unit = struct.unpack(">IIB", png[at + 8:at + 17])
            ppi = ppm_x * 0.0254
            return round(width * 72 / ppi) if unit == 1 and ppi > 0 and abs(ppi - 72) > 0.5 else None
        if kind in (b"IDAT", b"IEND"):  # pHYs comes before the image data
            return None
        at += 12 + n
    return None


def _chart_img(chart: str | bytes, title: str) -> str:
    """An ``<img>`` with the chart inlined as a data URI (each SVG keeps its own ids); a PNG of a stated density
    above 72 ppi is drawn at its CSS size (a 2x render stays sharp and keeps its size)."""
    size = ""
    if isinstance(chart, bytes) and chart.startswith(PNG_SIGNATURE):
        uri = _data_uri(chart, "image/png")
        width = _png_css_width(chart)
        size = f' width="{width}"' if width else ""
    else:
        text = chart.decode("utf-8") if isinstance(chart, bytes) else str(chart)
        start = text.find("<svg")
        if start < 0:
            raise ValueError(f"chart {title!r} is neither SVG text (no '<svg') nor PNG bytes")
        uri = _data_uri(text[start:].encode("utf-8"), "image/svg+xml")
    return (f'<figure class="chart"><img alt="{_esc(title)}" src="{uri}"{size}><figcaption>{_esc(title)}'
            "</figcaption></figure>")


def _validate(electrodes, summary, charts, versions, max_rows, caveats=(), sections=()) -> None:
    if not isinstance(electrodes, Sequence) or isinstance(electrodes, (str, bytes)):
        raise TypeError(f"electrodes must be a list of ReportElectrode, got {type(electrodes).__name__}")
    for e in electrodes:
        if not isinstance(e, ReportElectrode):
            raise TypeError(f"electrodes must be ReportElectrode records, got {type(e).__name__}")
        if not isinstance(e.table, pd.DataFrame):
            raise TypeError(f"the table of electrode {e.name!r} must be a DataFrame, got {type(e.table).__name__}")
    names = [e.name for e in electrodes]
    if len(set(names)) != len(names):
        raise ValueError(f"electrode names must be unique in a report, got {names}")
    if summary is not None and not isinstance(summary, pd.DataFrame):
        raise TypeError(f"summary must be a DataFrame, got {type(summary).__name__}")
    if charts is not None and not isinstance(charts, Mapping):
        raise TypeError(f"charts must map titles to SVG text or PNG bytes, got {type(charts).__name__}")
    if versions is not None and not isinstance(versions, Mapping):
        raise TypeError(f"versions must map package names to versions, got {type(versions).__name__}")
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 0):
        raise ValueError(f"max_rows must be an integer >= 0 or None, got {max_rows!r}")
    if isinstance(caveats, (str, bytes)) or not all(isinstance(c, str) for c in caveats):
        raise TypeError(f"caveats must be a list of sentences, got {caveats!r:.80}")
    for sec in sections:
        if not isinstance(sec, ReportSection):
            raise TypeError(f"sections must be ReportSection records, got {type(sec).__name__}")
        if sec.table is not None and not isinstance(sec.table, pd.DataFrame):
            raise TypeError(f"the table of section {sec.title!r} must be a DataFrame, got {type(sec.table).__name__}")


def build_report(
    electrodes: Sequence[ReportElectrode],
    *,
    title: str = "Particle detachment report",
    summary: pd.DataFrame | None = None,
    charts: Mapping[str, str | bytes] | None = None,
    versions: Mapping[str, str] | None = None,
    recipe: Mapping | None = None,
    notes: Sequence[str] = (),
    max_rows: int | None = 500,
    embed_csv: bool = True,
    axis_trend: "ElectrodeTrend | None" = None,
    caveats: Sequence[str] = (),
    sections: Sequence[ReportSection] = (),
    summary_note: str = "",
    made: str = "",
) -> str:
    """Build a self-contained HTML report.

    Parameters
    ----------
    electrodes : sequence of ReportElectrode
        The analyses shown (tables, parameters, inputs).
    title : str
    summary : DataFrame, optional
        One row per electrode (e.g. :func:`ui.compute.summary`).
    charts : {title: SVG text or PNG bytes}, optional
        Rendered charts, embedded as ``data:`` images.
    versions : {package: version}, optional
        Versions of the software that built the report.
    recipe : dict, optional
        A recipe (:func:`core.recipe.recipe_to_dict`) shown and embedded for download.
    notes : sequence of str
        Paragraphs shown under the title.
    max_rows : int or None
        Rows of each per-particle table shown in the page (None: all).  The
        whole table is always embedded as CSV when ``embed_csv``.
    embed_csv : bool
        Embed each whole per-particle table as a CSV download link.
    axis_trend : core.compare.ElectrodeTrend, optional
        Electrodes on an attribute axis: a section with the readings, the
        per-electrode table (also as CSV), both tests and how they were done.
    caveats : sequence of str
        Warnings about what is compared (analyses with different parameters,
        slices with volumes), set apart under the title.
    sections : sequence of ReportSection
        Sections worded by the caller (the tests between electrodes), after
        the summary.
    summary_note : str
        How the summary was made (its intervals, which particles it counts),
        under its table.
    made : str
        When the report was made, worded by the caller ("2026-12-07 23:40
        UTC"), said under the title; "" says nothing (a report built twice
        from the same inputs is then the same bytes).

    Returns
    -------
    str
        The HTML document (UTF-8).  It holds no script and no reference to
        anything outside itself.

    Raises
    ------
    TypeError, ValueError
        Wrong argument types, duplicate electrode names, a chart that is
        neither SVG nor PNG.
    """
    _validate(electrodes, summary, charts, versions, max_rows, caveats, sections)
    if not isinstance(summary_note, str):
        raise TypeError(f"summary_note must be a sentence (str), got {type(summary_note).__name__}")
    if not isinstance(made, str):
        raise TypeError(f"made must be a time worded as text (str), got {type(made).__name__}")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        *([f'<p class="note">Made {_esc(made)}.</p>'] if made else []),
        f'<p class="note">{len(electrodes)} electrode{"" if len(electrodes) == 1 else "s"}. Detachment = area_pore / (area_pore + area_cbd) of '
        "each particle's open surface (NaN when the particle has no open interface). Units are in the column "
        "names.</p>",
    ]
    parts += [f"<p>{_esc(n)}</p>" for n in notes]
    parts += [f'<p class="caveat"><strong>Caveat:</strong> {_esc(c)}</p>' for c in caveats]
    parts += _inputs_html(electrodes)
    if summary is not None:
        parts.append("<h2>Summary</h2>")
        parts.append(_statistics_html(summary))
        if summary_note:
            parts.append(f'<p class="note">{_esc(summary_note)}</p>')
    for sec in sections:
        parts += _section_html(sec)
    if axis_trend is not None:
        parts += _axis_trend_html(axis_trend)
    if charts:
        parts.append("<h2>Charts</h2>")
        parts += [_chart_img(c, t) for t, c in charts.items()]
    parts += _parameters_html(electrodes)
    parts += _versions_html(versions, electrodes)
    parts += _tables_html(electrodes, max_rows, embed_csv)
    if recipe is not None:
        parts += _recipe_html(recipe)
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


def _statistics_html(table: pd.DataFrame, key: str = "electrode") -> str:
    """A table of statistics with a column per ``key`` (electrode, measure) and a row per statistic where ``key``
    names its rows, once each (a row per electrode ran off the page's right edge past a dozen statistics); else as
    it comes."""
    if key not in table.columns or not table[key].is_unique:
        return _frame_html(table)
    head = '<tr><th class="k">statistic</th>' + "".join(f"<th>{_esc(n)}</th>" for n in table[key]) + "</tr>"
    rows = []
    for col in table.columns.drop(key):
        cells = "".join(f"<td>{_esc(_cell(v))}</td>" for v in table[col])
        rows.append(f'<tr><td class="k">{_esc(col)}</td>{cells}</tr>')
    return f'<div class="scroll"><table>{head}{"".join(rows)}</table></div>'


def _cell(v: Any) -> str:
    """A table cell as the other tables write it: numbers to 4 significant digits, a missing value as –."""
    if v is None or (isinstance(v, float) and v != v) or v is pd.NA:
        return "–"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.4g}"
    return str(v)


def _section_html(sec: ReportSection) -> list[str]:
    parts = [f"<h2>{_esc(sec.title)}</h2>"]
    if sec.items:
        parts.append("<ul>" + "".join(f"<li>{_esc(i)}</li>" for i in sec.items) + "</ul>")
    if sec.table is not None:
        parts.append(_frame_html(sec.table))
    if sec.note:
        parts.append(f'<p class="note">{_esc(sec.note)}</p>')
    return parts


#: Particles cut by the volume edge, by the edge policy, in words.
_EDGE_WORDS = {"include": "included", "exclude": "left out", "miles": "left out (Miles–Lantuéjoul)"}
#: Said under a report's title where an electrode is a synthetic demo.
SYNTHETIC_NOTE = "SYNTHETIC demo electrodes are generated with known ground truth; they are not measurements."


def shown_params(params: Mapping[str, Any]) -> dict:
    """The parameters a report shows for an analysis (its resolved ``AnalysisParams.to_dict()``): those of a step
    that did not run left out (the network's where neither the phases nor the particles came from it), and the
    seeding and the refinement named also at their defaults (``to_dict`` leaves those out)."""
    p = dict(params)
    if p.get("method") != "model" and p.get("particles") != "model":
        p.pop("model", None)
    p.setdefault("seeding", "phases")
    p.setdefault("refine", "off")
    return p


def _axis_trend_html(res: "ElectrodeTrend") -> list[str]:
    """The electrodes-on-an-axis section: readings, per-electrode table, tests, method."""
    from .compare import ElectrodeTrend, trend_file_table, trend_reading

    if not isinstance(res, ElectrodeTrend):
        raise TypeError(f"axis_trend must be an ElectrodeTrend (core.compare.electrode_trend), got "
                        f"{type(res).__name__}")
    unit = f" ({res.unit})" if res.unit else ""
    m = res.median_test
    table = res.table.rename(columns={"value": f"{res.attribute}{unit}"})
    csv = trend_file_table(res).to_csv(index=False).encode("utf-8")  # the page's file (QA walk 17)
    k = res.n_electrodes
    words = column_title(res.metric).split(" (")[0]  # as the page reads it ("detachment index")
    edge = _EDGE_WORDS.get(res.edge_policy, res.edge_policy)
    return [
        f"<h2>Electrodes on an axis: {_esc(res.metric)} against {_esc(res.attribute)}{_esc(unit)}</h2>",
        f"<p><strong>{_esc(trend_reading(res, label=words))}.</strong></p>",
        f"<p>{_esc(trend_reading(res, label=words, measure='share_above'))}.</p>",
        _statistics_html(table),
        _download(csv, "text/csv", f"trend-{folder_name(res.attribute)}.csv", "download this table (CSV)"),
        "<h3>Tests</h3>", _statistics_html(res.tests, "measure"),
        f'<p class="note">The unit of the test is the electrode, not the particle (particles of one scan share '
        f"its history, structure and segmentation). Random-effects regression of the {k} electrode medians on "
        f"{_esc(res.attribute)} ({_esc(res.x_scale)} scale), each weighted by 1 / (its bootstrap variance + the "
        f"between-electrode variance tau², DerSimonian–Laird), Knapp–Hartung t-test on {m.df} df "
        f"({_esc(res.alternative)}); it assumes the medians scatter normally about a straight line. "
        f"Distribution-free check: exact permutation of the electrode labels with Kendall's tau, p = "
        f"{m.p_perm:.3g} (smallest possible with {k} electrodes: {m.p_perm_min:.3g}). Particles cut by the "
        f"volume edge {_esc(edge)}; medians' CIs: percentile bootstrap ({res.n_boot} resamples); shares: Wilson; "
        f"share cut {res.cut:g}.</p>",
    ]


def _inputs_html(electrodes: Sequence[ReportElectrode]) -> list[str]:
    rows = []
    dated = any(e.analysis for e in electrodes)
    for e in electrodes:
        sp = ", ".join(f"{float(s):g}" for s in e.spacing_um) if e.spacing_um is not None else "–"
        rows.append(
            f'<tr><td class="k">{_esc(e.name)}</td><td class="k">{_esc(e.group)}</td>'
            f'<td class="k">{_esc(e.source)}</td><td>{_esc(sp)}</td><td>{len(e.table)}</td>'
            f'<td class="k"><code>{_esc(e.input_checksum or "–")}</code></td>'
            + (f'<td class="k">{_esc(e.analysis or "–")}</td>' if dated else "") + "</tr>"
        )
    return ["<h2>Inputs</h2>",
            '<table><tr><th class="k">electrode</th><th class="k">group</th><th class="k">source</th>'
            '<th>voxel size z, y, x (µm)</th><th>particles in its table</th>'
            '<th class="k">input checksum (BLAKE2b-128)</th>'
            + ('<th class="k">analysis</th>' if dated else "") + "</tr>"
            + "".join(rows) + "</table>"]


def _by_electrode(corner: str, columns: Mapping[str, Mapping], cell) -> str:
    """A table with one row per key found in any column and one column per electrode; ``cell(column, key)``."""
    keys = list(dict.fromkeys(k for d in columns.values() for k in d))
    head = f'<tr><th class="k">{corner}</th>' + "".join(f'<th class="k">{_esc(n)}</th>' for n in columns) + "</tr>"
    body = "".join(
        f'<tr><td class="k">{_esc(k)}</td>'
        + "".join(f'<td class="k">{_esc(cell(d, k))}</td>' for d in columns.values()) + "</tr>"
        for k in keys
    )
    return f"<table>{head}{body}</table>"


#: The units of the parameters whose names do not carry one (``_um``, ``_um3``): a report names them beside the
#: parameter (QA walk 17: "segment.low 0.31" read without knowing it is a grey value).
PARAMETER_UNITS: dict[str, str] = {
    "segment.low": "grey value of the scan", "segment.high": "grey value of the scan",
    "segment.denoise_size": "voxels (σ, window or patch distance)", "segment.pv_sigma": "voxels",
    "segment.min_island": "voxels", "separation.merge_ratio": "contact area / π r² of the smaller fragment",
    "model.tile": "voxels", "model.overlap": "voxels", "model.h": "dynamics of the instance cue, 0-1",
}


def _parameters_html(electrodes: Sequence[ReportElectrode]) -> list[str]:
    def named(key: str) -> str:
        return f"{key} ({PARAMETER_UNITS[key]})" if key in PARAMETER_UNITS else key

    flat = {e.name: {named(k): v for k, v in _flatten(e.params)} for e in electrodes}
    if not any(flat.values()):
        return ["<h2>Parameters</h2>", '<p class="note">No parameters recorded.</p>']
    return ["<h2>Parameters</h2>", _by_electrode("parameter", flat, lambda d, k: _fmt(d.get(k)))]


def _versions_html(versions: Mapping[str, str] | None, electrodes: Sequence[ReportElectrode]) -> list[str]:
    parts = ["<h2>Software versions</h2>"]
    if versions:
        parts.append("<h3>This report</h3>" + _kv_table(sorted(versions.items()), ("package", "version")))
    run_versions = {e.name: dict(e.versions) for e in electrodes if e.versions}
    if run_versions:
        parts.append("<h3>Each analysis</h3>" + _by_electrode("package", run_versions, lambda d, p: d.get(p, "–")))
    return parts


#: The per-particle columns a report's tables show where the whole table is embedded beside them as CSV: all 26 made
#: a table wider than the page, read by scrolling sideways.
REPORT_COLUMNS = ("label", "equiv_diameter_um", "volume_um3", "sphericity", "depth_frac", "touches_edge", "frac_cbd",
                  "frac_pore", "frac_particle", "frac_edge", "detachment", "crack_fraction")


def _tables_html(electrodes: Sequence[ReportElectrode], max_rows: int | None, embed_csv: bool) -> list[str]:
    parts = ["<h2>Per-particle tables</h2>"]
    for e in electrodes:
        n = len(e.table)
        shown = n if max_rows is None else min(n, max_rows)
        parts.append(f"<h3>{_esc(e.name)}</h3>")
        cols = [c for c in REPORT_COLUMNS if c in e.table.columns]
        rest = [c for c in e.table.columns if c not in cols]
        if not embed_csv or not cols:  # nothing of the table is left out of the report
            cols, rest = list(e.table.columns), []
        if embed_csv:
            parts.append(_download(e.table.to_csv(index=False).encode("utf-8"), "text/csv",
                                   f"{folder_name(e.name)}-particles.csv", f"download the whole table (CSV, {n} rows)"))
        said = ([f"{shown} of {n} particles shown"] if shown < n else []) + (
            [f"{len(cols)} of {len(cols) + len(rest)} columns shown; the CSV holds every one ({', '.join(rest)})"]
            if rest else [])
        parts.append(f'<p class="note">{_esc("; ".join(said))}.</p>' if said else "")
        parts.append(_frame_html(e.table[cols], max_rows))
    return parts + _columns_html(electrodes)


def _columns_html(electrodes: Sequence[ReportElectrode]) -> list[str]:
    """What each column of the tables (and their CSV) holds (QA walk 17: only the detachment was defined)."""
    from .metrics import COLUMN_MEANINGS

    present = list(dict.fromkeys(c for e in electrodes for c in e.table.columns))
    known = [(c, COLUMN_MEANINGS[c]) for c in present if c in COLUMN_MEANINGS]
    if not known:
        return []
    return ["<h3>Columns</h3>", _kv_table(known, ("column", "what it holds"))]


def _recipe_html(recipe: Mapping) -> list[str]:
    text = json.dumps(recipe, indent=2, ensure_ascii=False, default=str)
    return ["<h2>Recipe</h2>",
            '<p class="note">Replays these analyses headless: '
            "<code>python -m core run recipe.json --out DIR</code>.</p>",
            _download(text.encode("utf-8"), "application/json", "recipe.json", "download recipe.json"),
            f"<pre>{_esc(text)}</pre>"]


__all__ = ["ReportElectrode", "ReportSection", "build_report"]
