"""Downloads: particle tables (CSV, Parquet), charts (PNG, SVG), an HTML report and a recipe.

The pages call one function each, at their end:

* :func:`compare_section` on the Compare page (its :class:`~ui.compare_view.CompareContext`),
* :func:`particles_section` on the Particles page (the current analysis).

The byte builders (:func:`chart_svg`, :func:`chart_png`, :func:`table_csv`,
:func:`table_parquet`, :func:`report_html`, :func:`recipe_json`) do not touch
streamlit.  Charts are rendered with ``vl-convert-python`` (no browser, no
network); files that take a moment (tables, images, report, the recipe's ZIP)
are made only when asked for (:func:`offer`): a click makes the file, and a
*Save* button with its bytes takes the button's place.

Why two clicks, not ``st.download_button(data=callable)``: Streamlit 1.67
keeps the file such a button makes unreferenced and deletes it at the second
clean-up after it is made, and every script run of every session (the jobs
panel reruns every 2 s on each open page) ends with one, so the browser's
request for the file can find it gone (1 of 27 downloads in a QA walk with
two sessions running jobs; 19 of 20 in a reproduction with pages rerunning
every 0.1 s). A file given as bytes is referenced by the session that shows
it until its next full run (0 of 20 in the same reproduction).
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import altair as alt
import pandas as pd
import streamlit as st

from core import compare, comparison
from core.recipe import (RecipeError, dumps, folder_name, has_classifier, recipe_archive, recipe_from_workspace,
                         recipe_to_dict, root_analysis)
from core.pipeline import source_commit  # noqa: F401  (re-exported: the reports' commit)
from core.records import display_name
from core.report import SYNTHETIC_NOTE, ReportElectrode, ReportSection, build_report, shown_params
from core.workspace import Analysis, Sample, Workspace

from . import cache, charts, state
from .confine import file_size_text
from .tables import analysed_input

if TYPE_CHECKING:  # compare_view imports this module (for show)
    from .compare_view import CompareContext

EXPORT_WIDTH = 640  # px: charts sized "container" in the app get this width in files
REPORT_SCALE = 2.0  # the report's charts: PNG at twice their CSS size (sharp on a high-density screen and in print)
_OFFERED = state.EXP_SECTIONS  # the report sections a page run offered (see offer_section)
_READY = state.EXP_READY  # files made on request (see offer)


def _altair_lock() -> threading.Lock:
    try:  # the lock Streamlit holds while it sets Altair's global theme and data transformer
        from streamlit.elements.vega_charts import _altair_globals_lock

        return _altair_globals_lock
    except ImportError:
        return threading.Lock()


_ALTAIR_LOCK = _altair_lock()


# --------------------------------------------------------------------------- bytes (no streamlit)


def _spec(chart: alt.TopLevelMixin | Mapping) -> dict:
    """A Vega-Lite spec with inline data, a fixed width (files have no container) and the axis settings of files
    (:func:`ui.charts.legible_spec`)."""
    if isinstance(chart, Mapping):
        spec = dict(chart)
    elif isinstance(chart, alt.TopLevelMixin):
        # Altair's data transformer is process-global and Streamlit swaps it (under its lock) while it draws
        # charts; exports run on another thread when a button is clicked, so they take the same lock
        with _ALTAIR_LOCK, alt.data_transformers.enable("default", max_rows=None):
            spec = chart.to_dict()
    else:
        raise TypeError(f"chart must be an Altair chart or a Vega-Lite dict, got {type(chart).__name__}")
    if ("mark" in spec or "layer" in spec) and spec.get("width", "container") == "container":
        spec["width"] = EXPORT_WIDTH
    return charts.legible_spec(spec)


def _vl_version(spec: Mapping) -> str | None:
    """The Vega-Lite version named in ``$schema`` if vl-convert has it (else its default)."""
    import vl_convert as vlc

    m = re.search(r"/v(\d+)\.(\d+)", str(spec.get("$schema", "")))
    if m is None:
        return None
    wanted = f"{m.group(1)}.{m.group(2)}"
    have = vlc.get_vegalite_versions()
    if wanted in have:
        return wanted
    same_major = [v for v in have if v.split(".")[0] == m.group(1)]
    return same_major[-1] if same_major else None


def chart_svg(chart: alt.TopLevelMixin | Mapping) -> str:
    """The chart as SVG text (``<svg ...>``), rendered offline.

    Parameters
    ----------
    chart : altair chart or Vega-Lite spec (dict)
    """
    import vl_convert as vlc

    spec = _spec(chart)
    return vlc.vegalite_to_svg(spec, vl_version=_vl_version(spec))


def chart_png(chart: alt.TopLevelMixin | Mapping, *, scale: float = 2.0) -> bytes:
    """The chart as PNG bytes, rendered offline at ``scale`` times its CSS pixel size; its stated density is
    ``72 * scale`` pixels per inch (72 being one pixel per CSS pixel), so that a page shows it at its CSS size
    (:mod:`core.report`) and a document at its size in print."""
    import vl_convert as vlc

    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    spec = _spec(chart)
    # vl-convert draws ppi / 72 times the CSS size and states the ppi (its scale would multiply once more)
    return vlc.vegalite_to_png(spec, ppi=72 * float(scale), vl_version=_vl_version(spec))


def table_csv(table: pd.DataFrame) -> bytes:
    """UTF-8 CSV without the index."""
    return table.to_csv(index=False).encode("utf-8")


def table_parquet(table: pd.DataFrame) -> bytes:
    """Parquet without the index (the same table gives the same bytes)."""
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    return buf.getvalue()


def export_versions() -> dict[str, str]:
    """Versions of the analysis packages plus those that drew the charts and the page."""
    from importlib.metadata import PackageNotFoundError, version

    from core.pipeline import versions

    out = dict(versions())
    commit = source_commit()
    if commit:
        out["core commit"] = commit
    for pkg in ("altair", "vl-convert-python", "pyarrow", "streamlit"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def utc_text(seconds: float) -> str:
    """"2026-12-07 23:34 UTC": a time of the epoch, as reports write it."""
    import datetime as dt

    return dt.datetime.fromtimestamp(float(seconds), dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def slug(text: str) -> str:
    """A file-name-safe form of ``text`` (as the output folders of ``python -m core run``)."""
    return folder_name(text)


def electrode_trend_csv(res: compare.ElectrodeTrend) -> bytes:
    """The per-electrode trend table as CSV (:func:`core.compare.trend_file_table`: the report's is the same file)."""
    return compare.trend_file_table(res).to_csv(index=False).encode("utf-8")


def report_html(ws: Workspace, items: Sequence[tuple[str, Sample, Analysis]], tables: Mapping[str, pd.DataFrame],
                *, title: str, summary: pd.DataFrame | None = None,
                chart_map: Mapping[str, Any] | None = None, recipe: Mapping | None = None,
                notes: Sequence[str] = (), axis_trend: compare.ElectrodeTrend | None = None,
                caveats: Sequence[str] = (), sections: Sequence[ReportSection] = (), summary_note: str = "") -> bytes:
    """The HTML report (:func:`core.report.build_report`) of workspace analyses, as UTF-8 bytes.

    ``items`` are ``(display name, sample, analysis)``; ``tables`` their
    particle tables by display name; ``chart_map`` Altair charts by title,
    rendered here as PNG (:data:`REPORT_SCALE` times their size): the text
    of an SVG would be drawn in the reader's fonts, wider or narrower than
    the ones its labels were measured and laid out in, and run into its
    neighbours or off the picture.  ``caveats`` and ``sections`` are the
    page's warnings and sections (the tests between electrodes) as it showed
    them; ``summary_note`` how its summary was made (under that table).  The
    input checksum of each is that of the greyscale (of the analysis that
    segmented it, for a re-separation).
    """
    electrodes = []
    for name, sample, a in items:
        prov = a.provenance
        electrodes.append(ReportElectrode(
            name=name, table=tables[name], params=report_params(sample, a), source=sample.source,
            spacing_um=prov.get("spacing_um") or sample.spacing, input_checksum=_greyscale_checksum(ws, a),
            versions=prov.get("versions", {}), group=sample.group_label,
            analysis=f"#{a.id}, {utc_text(a.updated_at)}",
        ))
    rendered = {t: chart_png(c, scale=REPORT_SCALE) for t, c in (chart_map or {}).items()}
    notes = list(notes)
    if any(s.is_demo for _, s, _ in items):
        notes.append(SYNTHETIC_NOTE)
    html = build_report(electrodes, title=title, summary=summary, charts=rendered, versions=export_versions(),
                        recipe=recipe, notes=notes, axis_trend=axis_trend, caveats=caveats, sections=sections,
                        summary_note=summary_note, made=utc_text(time.time()))
    return html.encode("utf-8")


def report_params(sample: Sample, analysis: Analysis) -> dict:
    """The parameters a report shows for an analysis: its resolved parameters, those of steps that did not run
    left out (the network's where neither the phases nor the particles came from it; the thresholds' where the
    sample's values are phases, whose map takes the ``method`` row), and the seeding and refinement named also at
    their defaults (``to_dict`` leaves those out); the phase map, region of interest and slices' alignment are
    those the analysis ran with (:func:`ui.tables.analysed_input`)."""
    p = shown_params(analysis.resolved_params)
    inp = analysed_input(sample, analysis)  # the map and region it ran with (the sample may hold others since)
    if inp.presegmented:
        p.pop("segment", None)
        p["method"] = f"phases read from the file (phase map {inp.phase_map})"
    if getattr(inp, "crop", None) is not None:
        p["region of interest"] = (", ".join(f"{a} {lo}:{hi}" for a, (lo, hi) in zip("zyx", inp.crop))
                                   + " (voxels of the file)")
    if getattr(inp, "align", None) is not None:  # the offsets themselves are in the recipe
        from core.phases.alignment import aligned_message

        p["slices aligned"] = aligned_message(inp.align)
    return p


def _greyscale_checksum(ws: Workspace, analysis: Analysis) -> str | None:
    """The checksum the recipe records: of the greyscale, not of the phases a re-separation ran on."""
    try:
        return root_analysis(ws, analysis).provenance.get("input_checksum")
    except RecipeError:  # its source analysis is gone: the phases' checksum is all there is, and it is not the greyscale's
        return None


def recipe_json(ws: Workspace, analyses: Sequence[Analysis], names: Sequence[str] | None = None) -> bytes:
    """A recipe replaying these finished analyses (:func:`core.recipe.recipe_from_workspace`), as JSON bytes."""
    return dumps(recipe_from_workspace(ws, analyses, names=names)).encode("utf-8")


# --------------------------------------------------------------------------- streamlit


def electrode_name(sample: Sample, all_names: Sequence[str]) -> str:
    """The name the Compare page shows: ``#id`` added to duplicates, ``(SYNTHETIC)`` to demos."""
    return display_name(sample, all_names) + (" (SYNTHETIC)" if sample.is_demo else "")


def standard_charts(tables: Mapping[str, pd.DataFrame], metric: str = "detachment", kind: str = "histogram",
                    *, edge_policy: str = "include") -> dict[str, Any]:
    """The Compare page's charts: a distribution and binned detachment against size (bins of equal counts) and depth
    (bins of equal widths over 0-1), as the page bins them (:data:`ui.compare_view.TRENDS`).

    Computed with :mod:`core.compare` (number-weighted, the given edge policy); detachment binned over its whole
    scale, 0–1 (the pooled range of an electrode whose detachments all lie under 0.06 ran the axis 0–0.058); a chart
    that cannot be computed (too few particles) is left out.
    """
    first = next(iter(tables.values()), None)
    if first is None or metric not in first.columns:
        metric = "detachment"
    out: dict[str, Any] = {}
    try:
        dist = compare.distributions(tables, metric, edge_policy=edge_policy,
                                     value_range=charts.DETACHMENT_RANGE if metric == "detachment" else None)
        out[f"distribution of {charts.metric_title(metric)}"] = charts.distribution(dist, kind)
    except ValueError:
        pass
    from .compare_view import TRENDS  # binned as the Compare page bins them (QA walk 17: the Particles page's report
    # binned depth by equal counts, the Compare page by equal widths: one electrode, two depth curves)

    titles = {"equiv_diameter_um": "detachment vs equivalent diameter", "depth_frac": "detachment vs depth"}
    for x, binning, value_range in TRENDS:
        try:
            out[titles[x]] = charts.trend(compare.trend(tables, x, binning=binning, value_range=value_range,
                                                        edge_policy=edge_policy, rng=0))
        except ValueError:
            pass
    return out


def begin_page() -> None:
    """Start collecting the charts a page shows (see :func:`show`), so its export offers every one of them, and the
    sections it offers its report (:func:`offer_section`); forget the files made on the page's last run
    (:func:`offer`)."""
    st.session_state[state.EXP_SHOWN] = {}
    st.session_state[_OFFERED] = []
    st.session_state[state.EXP_CAVEATS] = []
    st.session_state[_READY] = {}  # a full run may have changed what the files would hold: made again on request


def offer_section(section: ReportSection) -> None:
    """Carry a section the page showed (the tests between electrodes, worded as there) into its report."""
    st.session_state.setdefault(_OFFERED, []).append(section)


def warn(text: str) -> None:
    """``st.warning`` of a reading the page's numbers depend on (bins with few particles, a scan's drift), also
    carried into its report as a caveat (the report is read without the page)."""
    st.warning(text)
    shown = st.session_state.setdefault(state.EXP_CAVEATS, [])
    plain = re.sub(r"\*{1,2}([^*]+)\*{1,2}", r"\1", text)  # the report's caveats are plain text
    if plain not in shown:
        shown.append(plain)


def shown_caveats() -> list[str]:
    """The warnings :func:`warn` showed since :func:`begin_page`, in page order."""
    return list(st.session_state.get(state.EXP_CAVEATS) or [])


def offered_sections() -> list[ReportSection]:
    """The sections :func:`offer_section` offered since :func:`begin_page`, in page order."""
    return list(st.session_state.get(_OFFERED) or [])


def show(chart, title: str, *, width: str = "stretch", exported=None) -> None:
    """``st.altair_chart`` that also offers the chart in the page's *Export* section under ``title``; ``exported``:
    the chart to offer there instead, where the page's leans on its neighbour (a legend left to the chart beside
    it: on its own in a file, its colours were unexplained, QA walk 17)."""
    st.altair_chart(chart, width=width)
    shown = st.session_state.setdefault(state.EXP_SHOWN, {})
    shown[title] = chart if exported is None else exported


def shown_charts() -> dict[str, Any]:
    """The charts :func:`show` drew since :func:`begin_page`, in page order."""
    return dict(st.session_state.get(state.EXP_SHOWN) or {})


def _recipe_or_reason(ws: Workspace, analyses: Sequence[Analysis], names: Sequence[str], compare_settings=None):
    try:
        recipe = recipe_from_workspace(ws, analyses, names=names, compare=compare_settings)
    except (RecipeError, ValueError, TypeError, KeyError) as exc:
        from .messages import one_sentence

        return None, one_sentence(exc)
    return recipe, None


def offer(c, label: str, build, *, file_name: str, mime: str, key: str, icon: str | None = None,
          help: str | None = None, short: str | None = None) -> None:
    """A download made on request, in container ``c``: a button that makes the file; once made, a *Save* button with
    its bytes (primary, its size beside the label) takes the button's place until the page's next full run.

    Parameters
    ----------
    c : streamlit container (a column)
    label : str
        What the file is ("HTML report", "PNG").
    build : callable () -> bytes
        Makes the file; called once, on the click.
    file_name, mime : str
        The saved file's name and media type.
    key : str
        The button's widget key (the Save button's is ``key + "_save"``); also the file's key in the session's
        files made (:data:`ui.state.EXP_READY`, emptied by :func:`begin_page`).
    icon, help : str, optional
        The button's icon and tooltip.
    short : str, optional
        The file's name on the Save button ("Save CSV · 0.4 MB"; default ``label``): a quarter of the page's width
        cut "Save Particle table (CSV) · 0.4…" before its size.

    Notes
    -----
    Inside a fragment (:func:`_buttons`) a click reruns the export section only, so files made before stay offered.
    See the module's docstring for why a file is not made by the download button itself.
    """
    ready = st.session_state.setdefault(_READY, {})
    slot = c.empty()
    if key not in ready:
        if not slot.button(label, key=key, icon=icon, width="stretch",
                           help=((help + " ") if help else "") + "A click makes the file; a Save button then takes "
                                                                  "this one's place."):
            return
        with c, st.spinner(f"Making {file_name}…"):
            try:
                ready[key] = bytes(build())
            except Exception as exc:  # noqa: BLE001 (the page stays; the file is said not made, and why)
                from .messages import one_sentence

                slot.error(f"{file_name} could not be made: {one_sentence(exc)}")
                return
    data = ready[key]
    slot.download_button(f"Save {short or label} · {file_size_text(len(data))}", data, file_name=file_name, mime=mime,
                         key=f"{key}_save", on_click="ignore", type="primary", icon=":material/download:",
                         width="stretch", help=f"Save {file_name} (made from the page as it is now).")


def _recipe_button(c, recipe, reason: str | None, *, stem: str, key: str) -> None:
    """The recipe download: JSON, or a ZIP with the training strokes when a classifier analysis is in it (a JSON
    alone would point at this server's workspace folder)."""
    if recipe is not None and has_classifier(recipe):
        offer(c, "Recipe (ZIP)", lambda: recipe_archive(recipe), file_name=f"{stem}-recipe.zip",
              mime="application/zip", key=key, icon=":material/replay:", short="recipe ZIP",
              help="The recipe with the brush-stroke training pairs of its classifier analyses: "
                   "python -m core run RECIPE.zip --out DIR (or unzip it and run its recipe.json).")
        return
    c.download_button(
        "Recipe (JSON)", dumps(recipe).encode("utf-8") if recipe is not None else b"", file_name=f"{stem}-recipe.json",
        mime="application/json", key=key, on_click="ignore", icon=":material/replay:", disabled=recipe is None,
        width="stretch", help=reason or "Replays these analyses headless: python -m core run RECIPE --out DIR")


@st.fragment
def _buttons(where: str, stem: str, table: pd.DataFrame, chart_map: Mapping[str, Any], report,
             recipe, recipe_reason: str | None, *, csv: bool, chart_buttons: bool) -> None:
    """The export buttons (a fragment: making a file reruns this section only, and the files made stay offered)."""
    k = lambda base, *p: state.k(base, where, *p)  # noqa: E731
    buttons = []  # filled left to right, so that no column is left empty before the others
    if csv:
        buttons.append(lambda c: offer(
            c, "Particle table (CSV)", lambda: table_csv(table), file_name=f"{stem}-particles.csv", mime="text/csv",
            key=k(state.EXP_TABLE_CSV), icon=":material/table:", short="CSV"))
    buttons.append(lambda c: offer(
        c, "Particle table (Parquet)", lambda: table_parquet(table), file_name=f"{stem}-particles.parquet",
        mime="application/vnd.apache.parquet", key=k(state.EXP_TABLE_PARQUET), icon=":material/table:",
        short="Parquet"))
    buttons.append(lambda c: offer(
        c, "HTML report", report, file_name=f"{stem}-report.html", mime="text/html", key=k(state.EXP_REPORT),
        icon=":material/description:", short="report",
        help="One self-contained file: charts, tables, parameters, versions, input checksums."))
    buttons.append(lambda c: _recipe_button(c, recipe, recipe_reason, stem=stem, key=k(state.EXP_RECIPE)))
    zipped = recipe is not None and has_classifier(recipe)  # (QA walk 15: the ZIP was said to save at once)
    made = ["Tables", "report"] + (["recipe"] if zipped else []) + (["images"] if chart_buttons and chart_map else [])
    made_words = ", ".join(made[:-1]) + " and " + made[-1]  # images only where offered (QA walk 17)
    st.caption(f"{made_words}: a click makes the file, and the blue *Save* "
               "button that takes its place saves it (until the page changes)."
               + ("" if zipped else " The recipe (JSON) saves at once."))
    for col, button in zip(st.columns(4), buttons):
        button(col)
    if recipe_reason:
        st.caption(f"No recipe: {recipe_reason}")
    if chart_buttons and chart_map:
        st.caption("Charts as images (rendered offline when asked for):")
        for i, (title, chart) in enumerate(chart_map.items()):
            c = st.columns([3.4, 1.5, 1.5], vertical_alignment="center")  # room for "Save PNG · 0.2 MB"
            c[0].write(title)
            offer(c[1], "PNG", lambda chart=chart: chart_png(chart), file_name=f"{stem}-{slug(title)}.png",
                  mime="image/png", key=k(state.EXP_CHART, i, "png"))
            offer(c[2], "SVG", lambda chart=chart: chart_svg(chart).encode("utf-8"),
                  file_name=f"{stem}-{slug(title)}.svg", mime="image/svg+xml", key=k(state.EXP_CHART, i, "svg"))


def compare_section(ctx: CompareContext, *, edge_policy: str = "include", summary: compare.Summary | None = None,
                    chart_map: Mapping[str, Any] | None = None, metric: str = "detachment", kind: str = "histogram",
                    axis_trend: compare.ElectrodeTrend | None = None) -> None:
    """The Compare page's downloads, for the electrodes of ``ctx`` (their latest analyses).

    Parameters
    ----------
    ctx : CompareContext
        The page's selection (:func:`ui.compare_view.select`): names, analyses, particle tables after its size
        filter.
    edge_policy : {"include", "exclude", "miles"}
        The page's choice for particles cut by the volume edge: the tables (CSV, Parquet, the report's) hold the
        particles its summary, tests and trends count (:meth:`~ui.compare_view.CompareContext.used`), and the report
        says which.
    summary : core.compare.Summary, optional
        The summary the page showed (:func:`ui.compare_view.summary_section`), reported as the page showed it, with
        its note; None: the report has no summary (the page had none).
    chart_map : {title: altair chart}, optional
        The charts to offer as PNG/SVG and put in the report.  Default: every
        chart the page drew through :func:`show`, else a ``kind`` distribution
        of ``metric`` and the two binned trends.
    axis_trend : ElectrodeTrend, optional
        The page's electrodes-on-an-axis result, reported in its own section.

    The report also carries the page's warnings about what is compared (:func:`ui.compare_view.caveats`) and the
    sections the page offered (:func:`offer_section`: the tests between electrodes).
    """
    from . import compare_view  # (compare_view imports this module)

    items = [(name, s, a) for name, (s, a) in ctx.samples.items()]
    if not items:
        return
    caveats = compare_view.caveats({name: a for name, (_, a) in ctx.samples.items()}) + shown_caveats()
    sections = offered_sections()
    min_d = float(ctx.min_diameter_um)
    dropped = ctx.dropped
    tables = ctx.miles_tables() if edge_policy == "miles" else ctx.used(edge_policy)
    at_edge = {n: len(ctx.tables[n]) - len(t) for n, t in tables.items()}
    if chart_map is None:
        chart_map = shown_charts() or standard_charts(tables, metric, kind, edge_policy=edge_policy)
    settings = compare_settings(ctx, edge_policy, metric)
    recipe, reason = _recipe_or_reason(ctx.ws, [a for _, _, a in items], [n for n, _, _ in items], settings)
    st.subheader("Export")
    st.caption(f"{len(items)} electrodes: " + ", ".join(n for n, _, _ in items)
               + (f"; particles under {min_d:g} µm left out of the table, charts and report "
                  f"({sum(dropped.values())} in all)" if min_d > 0 else "")
               + (f"; particles cut by the volume edge left out of the table and report, as the edge choice above "
                  f"leaves them out of the summary, tests and trends ({sum(at_edge.values())} in all)"
                  if edge_policy != "include" else "")
               + ". The recipe (its JSON, or its ZIP where brush strokes made phases) replays them headless with "
                 "`python -m core run RECIPE --out DIR`, and with them this comparison (its edge choice, cut, "
                 "smallest diameter, tested measure, and axis with its scale) into `DIR/comparison`: the summary, "
                 "tests and trend as CSV and a report.")

    def report() -> bytes:
        notes = [n for n in (comparison.min_diameter_sentence(min_d, dropped), comparison.edge_sentence(
            edge_policy, {n: (len(t), len(ctx.tables[n])) for n, t in tables.items()})) if n]
        return report_html(ctx.ws, items, tables, title="Comparison of electrodes",
                           summary=comparison.summary_table(summary) if summary is not None else None,
                           summary_note=comparison.summary_note(summary) if summary is not None else "",
                           chart_map=chart_map, recipe=recipe_to_dict(recipe) if recipe is not None else None,
                           notes=notes, axis_trend=axis_trend, caveats=caveats, sections=sections)

    _buttons("compare", "comparison", compare.combine(tables, ctx.groups), chart_map, report, recipe, reason,
             csv=True, chart_buttons=True)


def compare_settings(ctx: CompareContext, edge_policy: str, metric: str) -> comparison.CompareSettings:
    """The Compare page's choices as its recipe records them (:class:`core.comparison.CompareSettings`): the edge
    choice, the cut, the smallest diameter, the measure tested and the attribute on the axis with its scale (as
    chosen, also where the trend could not be computed: a headless replay then says why, as the page did)."""
    from . import compare_view  # (compare_view imports this module)

    attrs = compare_view.axis_attributes(ctx)
    axis = st.session_state.get(state.CMP_AXIS_ATTR)
    axis = axis if axis in attrs else None
    scale = st.session_state.get(state.k(state.CMP_AXIS_SCALE, axis)) if axis is not None else None
    return comparison.CompareSettings(
        edge_policy=edge_policy, cut=float(st.session_state.get(state.CMP_CUT, comparison.DEFAULT_CUT)),
        min_diameter_um=float(ctx.min_diameter_um), metric=metric, axis=axis,
        axis_scale=scale if scale in compare.X_SCALES else None)


def particles_section(ws: Workspace, sample: Sample, analysis: Analysis) -> None:
    """The Particles page's downloads for one analysis: table (Parquet; the page has the CSV), report, recipe.

    Its report's summary is the Compare page's (:func:`core.comparison.summary_table`, the same labels and note),
    every particle counted (the page has no edge choice) and the default cut."""
    name = electrode_name(sample, [sample.name])
    ref = cache.ResultRef.of(ws, analysis)
    table = cache.table(ref)
    chart_map = standard_charts({name: table})
    try:
        summary = cache.cmp_summary(cache.Selection(((name, ref),)), ((name, sample.group_label),), "include",
                                    comparison.DEFAULT_CUT)
    except ValueError:  # fewer than two particles with a detachment
        summary = None
    recipe, reason = _recipe_or_reason(ws, [analysis], [sample.name])
    caveats = shown_caveats()  # the page's warnings (specks that move the median, a classifier's phases...)
    st.subheader("Export")

    def report() -> bytes:
        return report_html(ws, [(name, sample, analysis)], {name: table}, title=f"{sample.name}: particles",
                           summary=comparison.summary_table(summary) if summary is not None else None,
                           summary_note=comparison.summary_note(summary) if summary is not None else "",
                           chart_map=chart_map, recipe=recipe_to_dict(recipe) if recipe is not None else None,
                           caveats=caveats)

    stem = f"{slug(sample.name)}-analysis{analysis.id}"
    _buttons("particles", stem, table, chart_map, report, recipe, reason, csv=False, chart_buttons=False)


__all__ = [
    "chart_png", "chart_svg", "compare_section", "electrode_name", "electrode_trend_csv",
    "export_versions", "offer", "offer_section", "offered_sections", "particles_section", "recipe_json", "report_html",
    "report_params", "shown_caveats", "slug", "standard_charts", "table_csv", "table_parquet", "warn",
]
