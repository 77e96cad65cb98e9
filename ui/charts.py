"""Altair chart builders (no streamlit import).  Every axis names its unit."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd

from core import compare
from core.metrics import column_title, column_unit

from .render import DETACHMENT_CMAP, DETACHMENT_RANGE, NAN_COLOUR, PHASE_HEX

DETACHMENT_TITLE = column_title("detachment")
GROUP_SCHEME = "tableau10"  # categorical colours of electrodes
LABEL_LIMIT = 320  # px: an electrode's name ("cycled-5C (SYNTHETIC) · by number") is never cut short
TICK_SPACING = 80  # px between the labelled ticks of a quantitative x axis in a file (Vega's default: 40)
# Streamlit draws a chart of height H with its axes inside H (autosize "fit"): the plot keeps about H - 90 px and a
# y title longer than that runs out of the chart; titles are 14 px, at most 6.2 px a character in its font
_AXIS_OVERHEAD_PX, _TITLE_CHAR_PX, _TOP_LEGEND_PX = 100, 6.2, 40
_CHART_TITLE_PX = 30  # a chart's own title over its plot (Streamlit's 16 px and its offset)
# a legend beside the plot starts at its top and is not shrunk: about 16 px a row in Streamlit's 14 px labels (20 here,
# to spare) plus its title and padding and the chart's (50); whatever runs below the chart's height is cut off
_LEGEND_ROW_PX, _LEGEND_FRAME_PX = 20, 50
# (the columns' titles and units are the particle table's: core.metrics)
metric_unit = column_unit
metric_title = column_title


def fit_height(height: int, *y_titles: str, above: int = 0, legend_rows: int = 0) -> int:
    """``height`` (px), raised where a y-axis title would run out of a chart drawn by Streamlit (whose height holds
    the axes too): the longest title gets its length in characters times 6.2 px, plus the x axis' 100 px and
    ``above`` (px: a legend over the plot); and where a legend of ``legend_rows`` entries beside the plot would be
    cut off at the bottom: 20 px an entry, plus 50 px for its title and padding and ``above``."""
    longest = max((len(t) for t in y_titles if isinstance(t, str)), default=0)
    need = longest * _TITLE_CHAR_PX + _AXIS_OVERHEAD_PX + above
    if legend_rows > 0:
        need = max(need, legend_rows * _LEGEND_ROW_PX + _LEGEND_FRAME_PX + above)
    return int(max(height, 10 * np.ceil(need / 10)))


def legend_below_px(n_entries: int, columns: int) -> int:
    """Height (px) of a legend of ``n_entries`` under a plot in ``columns`` columns: 20 px a row, 40 for its
    title and padding (Streamlit draws it inside the chart's height: the chart grows by as much)."""
    return int(-(-max(int(n_entries), 0) // max(int(columns), 1)) * _LEGEND_ROW_PX + 40) if n_entries else 0


def _category_axis(*, angle: int = -30) -> alt.Axis:
    """An axis of categories (electrode names) that labels every one: no label dropped where two would touch
    (Streamlit's theme drops them), none cut short, slanted so that long names do not run into each other."""
    return alt.Axis(labelAngle=angle, labelAlign="right" if angle else "center", labelOverlap=False,
                    labelLimit=LABEL_LIMIT, labelPadding=4)


def grey_histogram(hist: pd.DataFrame, low: float | None, high: float | None, *, log: bool = False) -> alt.Chart:
    """Histogram of grey values with the two thresholds as vertical rules (none where both are None)."""
    h = hist.copy()
    h["count_plot"] = h["count"]
    y_title = "voxels in sample (count, log scale)" if log else "voxels in sample (count)"
    height = fit_height(260, y_title, above=0 if low is None and high is None else _TOP_LEGEND_PX)
    bars = alt.Chart(h).mark_bar(color="#888888", opacity=0.85).encode(
        x=alt.X("grey_lo:Q", bin="binned", title="grey value (scanner units)"),
        x2="grey_hi:Q",
        # symlog: log-like and still draws empty bins (a log scale drops bars that start at 0)
        y=alt.Y("count_plot:Q", title=y_title,
                scale=alt.Scale(type="symlog") if log else alt.Undefined),
        tooltip=[alt.Tooltip("grey_lo:Q", title="from", format=".0f"), alt.Tooltip("grey_hi:Q", title="to", format=".0f"),
                 alt.Tooltip("count:Q", title="voxels")],
    )
    if low is None and high is None:
        return bars.properties(height=height)
    rules = pd.DataFrame({
        "value": [low, high],
        "threshold": ["pore | CBD", "CBD | NMC"],
        "colour": [PHASE_HEX[1], PHASE_HEX[2]],
    })
    rule = alt.Chart(rules).mark_rule(strokeWidth=3).encode(
        x="value:Q",
        color=alt.Color("threshold:N", scale=alt.Scale(domain=list(rules["threshold"]), range=list(rules["colour"])),
                        legend=alt.Legend(title="threshold", orient="top")),
        tooltip=[alt.Tooltip("threshold:N"), alt.Tooltip("value:Q", format=".1f", title="grey value")],
    )
    return (bars + rule).properties(height=height)


SHADING_TITLE = "vs median (% of contrast)"


def shading_levels(reading: dict, spacing_z: float) -> alt.Chart:
    """The pure pore and NMC grey values slab by slab along z (:func:`core.phases.shading_reading`), each as its
    departure from its median over the slabs in % of the pore-NMC contrast: a drift shows as a sloped line on the
    scale of the warning; slabs whose reading was left out are not drawn."""
    contrast = float(reading["contrast"])
    rows = []
    for name, key in (("pore", "pore"), ("NMC", "nmc")):
        v = np.asarray(reading[key], np.float64)
        if not np.isfinite(v).any() or not contrast > 0:
            continue
        mid = float(np.nanmedian(v))
        rows += [{"z_um": z * spacing_z, "slice": z, "phase": name, "grey": g, "pct": 100 * (g - mid) / contrast}
                 for z, g in zip(reading["z"], v) if np.isfinite(g)]
    df = pd.DataFrame(rows, columns=["z_um", "slice", "phase", "grey", "pct"])
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("z_um:Q", title="depth along z (µm, slab centre)"),
        y=alt.Y("pct:Q", title=SHADING_TITLE),
        color=alt.Color("phase:N", scale=alt.Scale(domain=["pore", "NMC"], range=[PHASE_HEX[0], PHASE_HEX[2]]),
                        legend=alt.Legend(title="phase", orient="top")),
        tooltip=[alt.Tooltip("phase:N"), alt.Tooltip("slice:Q", format=".1f", title="slice (z)"),
                 alt.Tooltip("grey:Q", format=".1f", title="grey value"),
                 alt.Tooltip("pct:Q", format="+.1f", title="% of the contrast")],
    ).properties(height=fit_height(220, SHADING_TITLE, above=_TOP_LEGEND_PX))


def electrode_scale(order: Sequence[str]) -> alt.Scale:
    """The colour scale of electrodes: the i-th name of ``order`` gets the i-th colour of :data:`GROUP_SCHEME`.

    Every chart of a page that colours electrodes builds its scale here from the same ``order`` (the page's order
    of the electrodes, all of them), so that an electrode has one colour in all of them, whichever of the
    electrodes a chart draws and in whichever order its table lists them.

    Parameters
    ----------
    order : sequence of str
        Electrode names in the page's order (a repeated name counts once, where it first appears).

    Returns
    -------
    alt.Scale
        Scheme :data:`GROUP_SCHEME` over the domain ``order``.
    """
    return alt.Scale(scheme=GROUP_SCHEME, domain=list(dict.fromkeys(order)))


BLANK_OPACITY = 1e-6  # a legend laid out but not seen (electrode_colour(blank=True))


def electrode_colour(df: pd.DataFrame, column: str, *, legend: bool = True,
                  order: Sequence[str] | None = None, below: int = 0, blank: bool = False) -> alt.Color:
    """One colour per group of ``column`` (:func:`electrode_scale` over ``order``; None: the order in which the
    groups first appear in ``df``), the legend naming the groups ``df`` holds in that order (``legend=False``: no
    legend).  A group of ``df`` missing from ``order`` is a ``ValueError``.

    ``below``: the legend under the plot in that many columns, filled row by row (0: where Vega puts it, beside
    the plot).  The legend's names are never cut short: up to :data:`LABEL_LIMIT` px, and where a name is longer
    than :data:`LONG_NAME` characters the legend goes under the plot, a name a row, without a limit.  ``blank``:
    that legend laid out but not drawn, its room kept empty, so that the plot is as large as that of a chart beside
    it with the legend."""
    present = list(dict.fromkeys(df[column].tolist()))
    domain = present if order is None else list(dict.fromkeys(order))
    missing = [n for n in present if n not in domain]
    if missing:
        raise ValueError(f"order must name every {column} drawn; {missing} missing from {domain}")
    shown = [n for n in domain if n in present]
    props: dict = {} if shown == domain else {"values": shown}  # the page's other electrodes: not in this legend
    # names never cut short (Streamlit's theme cuts legend labels at 160 px: "NMC811 cycled 500x at 5C, cale…"); a
    # long one (at the dashboard's 14-px legend font 320 px hold about 40 characters: QA walk 12, a 58-character
    # name cut) puts the legend under the plot, a name a row, with no limit (Vega's 0)
    long = max((len(str(n)) for n in shown), default=0) > LONG_NAME
    props["labelLimit"] = 0 if long else LABEL_LIMIT
    if long:
        below = 1
    if below:
        props.update(orient="bottom", direction="horizontal", columns=int(below))
    if blank:  # symbols of opacity 0 would be left out of Vega's layout (the plot 8 px higher): nearly 0 instead
        props.update(symbolOpacity=BLANK_OPACITY, labelOpacity=0, titleOpacity=0)
    leg = alt.Legend(**props) if legend else None
    return alt.Color(f"{column}:N", title=column, scale=electrode_scale(domain), sort=domain, legend=leg)


LOW_N_GREY = "#b0b0b0"
#: Characters: an electrode name longer than this puts its chart's legend under the plot, a name a row, uncut
#: (:func:`electrode_colour`).
LONG_NAME = 30


def weight_words(weighting: str, edge_policy: str) -> str:
    """'particles' or 'particle volume', plus the edge treatment, for axis titles."""
    what = "particle volume" if weighting == "volume" else "particles"
    return what + (", edge-corrected" if edge_policy == "miles" else "")


def _detachment_scale() -> alt.Scale:
    """The scale of a detachment axis: 0–1 whatever the values (as the slices' colour bar)."""
    return alt.Scale(domain=list(DETACHMENT_RANGE), nice=False)


def _facet(chart: alt.Chart, order: list[str], columns: int) -> alt.FacetChart:
    return chart.properties(width=240, height=180).facet(
        facet=alt.Facet("electrode:N", sort=order, title=None), columns=columns)


VIOLIN_LEGEND_COLUMNS = 3  # the violins' legend under its panels, in up to this many columns
VIOLIN_WIDTH = 150  # px, a violin's panel
VIOLIN_ROW_MAX = 4  # violins side by side at most (about 740 px with the axis), more wrap to rows of even length


def violin_columns(n: int) -> int:
    """Violins per row for ``n`` electrodes: up to :data:`VIOLIN_ROW_MAX`, the rows as even as they can be (6: 3 + 3,
    5: 3 + 2; QA walk 12: six in one row ran past the page's column)."""
    rows = max(1, -(-int(n) // VIOLIN_ROW_MAX))
    return max(1, -(-int(n) // rows))


def distribution(dist: compare.Distributions, kind: str = "histogram", *, facet: bool = False,
                 columns: int = 3) -> alt.TopLevelMixin:
    """Distributions of one metric per electrode from :func:`core.compare.distributions`.

    ``kind``: "histogram" (share of the weight per bin, overlaid), "ecdf"
    (weighted cumulative share), "box" (weighted quartiles, whiskers 5–95 %) or
    "violin" (weighted density with the quartiles, one panel per electrode; its legend under the panels, which
    are as wide as the page allows).  ``facet=True`` draws histogram / ECDF as small multiples (one panel per
    electrode, shared axes).
    """
    if kind not in ("histogram", "ecdf", "box", "violin"):
        raise ValueError(f"kind must be histogram, ecdf, box or violin, got {kind!r}")
    metric, title = dist.metric, metric_title(dist.metric)
    # detachment on its whole scale, whatever the values (all under 0.06 had run the axis 0–0.058 under "(0–1)")
    scale = _detachment_scale() if metric == "detachment" else alt.Undefined
    who = "particle volume" if dist.weighting == "volume" else "particles"
    corr = ", edge-corrected" if dist.edge_policy == "miles" else ""
    order = list(dist.quantiles["electrode"])
    colour = electrode_colour(dist.quantiles, "electrode")
    y_title = (f"share of {who} ≤ value (ECDF, 0–1{corr})" if kind == "ecdf"
               else f"share of {who} per bin (0–1{corr})")
    if kind == "ecdf":
        chart = alt.Chart(dist.ecdf).mark_line(interpolate="step-after", strokeWidth=2.5).encode(
            x=alt.X("value:Q", title=title, scale=scale),
            y=alt.Y("ecdf:Q", title=y_title, scale=alt.Scale(domain=[0, 1])),
            color=colour,
            tooltip=[alt.Tooltip("electrode:N"), alt.Tooltip("value:Q", format=".3g", title=metric),
                     alt.Tooltip("ecdf:Q", format=".2f", title="share ≤ value")],
        )
    elif kind == "histogram":
        chart = alt.Chart(dist.histogram).mark_bar(opacity=0.45 if not facet else 0.8, binSpacing=0).encode(
            x=alt.X("bin_lo:Q", bin="binned", title=title, scale=scale),
            x2="bin_hi:Q",
            y=alt.Y("share:Q", title=y_title, stack=None),
            color=colour,
            tooltip=[alt.Tooltip("electrode:N"), alt.Tooltip("bin_lo:Q", format=".3g", title="from"),
                     alt.Tooltip("bin_hi:Q", format=".3g", title="to"), alt.Tooltip("share:Q", format=".3f"),
                     alt.Tooltip("count:Q", title="particles")],
        )
    elif kind == "box":
        q = dist.quantiles
        x = alt.X("electrode:N", sort=order, title="electrode", axis=_category_axis())
        tips = [alt.Tooltip("electrode:N"), alt.Tooltip("n_used:Q", title="particles")] + [
            alt.Tooltip(f"{c}:Q", format=".3g") for c in ("q05", "q25", "median", "q75", "q95")]
        base = alt.Chart(q).encode(x=x, color=colour, tooltip=tips)
        whisker = base.mark_rule(strokeWidth=1.5).encode(y=alt.Y("q05:Q", title=title, scale=scale), y2="q95:Q")
        box = base.mark_bar(size=36, opacity=0.55).encode(y="q25:Q", y2="q75:Q")
        # the encoded colour overrides a mark's own: the median is drawn black by value (QA: in the box's colour)
        med = base.mark_tick(size=36, thickness=3).encode(y="median:Q", color=alt.value("black"))
        # the slanted names take up to LABEL_LIMIT * sin 30° below the plot: the chart grows by as much
        longest = max((len(str(n)) for n in order), default=0)
        extra = int(min(LABEL_LIMIT, longest * _TITLE_CHAR_PX) / 2)
        return (whisker + box + med).properties(height=fit_height(300, title) + extra)
    else:  # violin: one panel per electrode, the density drawn symmetrically about 0
        d = dist.density.assign(part="density", lo=-dist.density["density"] / 2, hi=dist.density["density"] / 2)
        q = dist.quantiles[["electrode", "q25", "median", "q75"]].assign(part="box")
        data = pd.concat([d, q], ignore_index=True)
        base = alt.Chart(data)
        # the legend under the panels: beside them it ran past the page's width ("cycled-1C (SYNTHETI")
        colour = electrode_colour(dist.quantiles, "electrode", below=min(len(order), VIOLIN_LEGEND_COLUMNS))
        no_axis = alt.Axis(labels=False, ticks=False, grid=False, domain=False)
        area = base.transform_filter(alt.datum.part == "density").mark_area(orient="horizontal", opacity=0.6).encode(
            y=alt.Y("value:Q", title=title, scale=scale),
            x=alt.X("lo:Q", title=f"density of {who}{corr}", axis=no_axis), x2="hi:Q",
            color=colour,
        )
        box = base.transform_filter(alt.datum.part == "box").mark_rule(strokeWidth=5, color="black").encode(
            y="q25:Q", y2="q75:Q", x=alt.X(datum=0))
        med = base.transform_filter(alt.datum.part == "box").mark_point(filled=True, color="white", size=40,
                                                                        opacity=1).encode(
            y="median:Q", x=alt.X(datum=0),
            tooltip=[alt.Tooltip("electrode:N"), alt.Tooltip("q25:Q", format=".3g"),
                     alt.Tooltip("median:Q", format=".3g"), alt.Tooltip("q75:Q", format=".3g")])
        # a panel's name is cut at its panel's width (the legend under them names it whole): a long one ran over its
        # neighbours' (QA walk 12)
        return (area + box + med).properties(width=VIOLIN_WIDTH, height=280).facet(
            facet=alt.Facet("electrode:N", sort=order, title=None,
                            header=alt.Header(labelOrient="bottom", labelLimit=VIOLIN_WIDTH)),
            columns=violin_columns(len(order)))
    if facet:
        return _facet(chart, order, columns)
    return chart.properties(height=fit_height(300, y_title))


def trend(tr: compare.Trend, *, points: pd.DataFrame | None = None,
          order: Sequence[str] | None = None) -> alt.LayerChart:
    """Median of ``tr.y`` per bin of ``tr.x`` with bootstrap CI error bars, one colour per electrode.

    Bins with fewer than ``tr.low_n`` particles are drawn grey.  ``points``
    (``electrode``, ``tr.x``, ``tr.y``) adds every particle as faint dots.
    The legend of the bin marks (``ok`` / ``n < low_n``) sits over the plot, so that a long electrode legend
    beside it never pushes it out of the chart; the chart is as high as that electrode legend needs.  ``order``:
    the page's electrodes in its order (:func:`electrode_scale`), so that an electrode left out of this trend
    does not shift the others' colours (also for :func:`trend_spread` and :func:`trend_counts`).
    """
    t = tr.table.assign(few=tr.table["low_n"].map({True: f"n < {tr.low_n}", False: "ok"}))
    t = t[np.isfinite(t["median"])]
    groups = tr.table.drop_duplicates("electrode")
    colour = electrode_colour(groups, "electrode", order=order)
    pct = round(tr.confidence * 100)
    xt, yt = metric_title(tr.x), metric_title(tr.y)
    tips = [alt.Tooltip("electrode:N"), alt.Tooltip("x_lo:Q", format=".3g", title="bin from"),
            alt.Tooltip("x_hi:Q", format=".3g", title="bin to"), alt.Tooltip("n:Q", title="particles"),
            alt.Tooltip("median:Q", format=".3f"), alt.Tooltip("ci_lo:Q", format=".3f", title=f"{pct} % CI low"),
            alt.Tooltip("ci_hi:Q", format=".3f", title=f"{pct} % CI high"), alt.Tooltip("iqr:Q", format=".3f"),
            alt.Tooltip("few:N", title="bin size")]
    colour_or_grey = alt.condition(alt.datum.low_n, alt.value(LOW_N_GREY), colour)
    # detachment on its whole scale (medians all under 0.002 had run the axis 0–0.0013)
    y_scale = _detachment_scale() if tr.y == "detachment" else alt.Undefined
    base = alt.Chart(t).encode(x=alt.X("x_median:Q", title=f"{xt}; median of each bin"), tooltip=tips)
    line = base.mark_line(strokeWidth=1.5, opacity=0.6).encode(y=alt.Y("median:Q", scale=y_scale), color=colour)
    y_title = f"median {yt}, {pct} % CI"
    bars = base.mark_rule(strokeWidth=2).encode(
        y=alt.Y("ci_lo:Q", title=y_title, scale=y_scale), y2="ci_hi:Q", color=colour_or_grey)
    dots = base.mark_point(filled=True, size=70).encode(
        y=alt.Y("median:Q", scale=y_scale), color=colour_or_grey,
        shape=alt.Shape("few:N", title="bin", scale=alt.Scale(domain=["ok", f"n < {tr.low_n}"],
                                                                range=["circle", "triangle-down"]),
                        legend=alt.Legend(orient="top")))
    layers = [line, bars, dots]
    if points is not None and len(points):
        p = points[["electrode", tr.x, tr.y]]
        p = p[np.isfinite(p[tr.x].astype(float)) & np.isfinite(p[tr.y].astype(float))]
        layers.insert(0, alt.Chart(p).mark_circle(size=12, opacity=0.18).encode(
            x=f"{tr.x}:Q", y=alt.Y(f"{tr.y}:Q", scale=y_scale), color=colour))
    return alt.layer(*layers).properties(
        height=fit_height(300, y_title, above=_TOP_LEGEND_PX, legend_rows=len(groups)))


SIDE_LEGEND_COLUMNS = 2  # the legend under each of two charts side by side, in this many columns


def _side_height(tr: compare.Trend) -> int:
    """One height for the spread and counts charts drawn side by side, high enough for both y titles, plus their
    legend under the plot."""
    n = tr.table["electrode"].nunique()
    return fit_height(220, _spread_title(tr), COUNTS_TITLE) + legend_below_px(n, SIDE_LEGEND_COLUMNS)


def _spread_title(tr: compare.Trend) -> str:
    return "IQR of " + metric_title(tr.y)


COUNTS_TITLE = "particles per bin (count)"


def trend_spread(tr: compare.Trend, *, order: Sequence[str] | None = None) -> alt.LayerChart:
    """Spread within each bin (IQR of ``tr.y``, its units) against ``tr.x``; low-n bins grey.  The electrodes'
    legend under the plot (the chart stands alone in a file and the report), as in :func:`trend_counts`: the two
    are drawn side by side with plots of one size."""
    t = tr.table[np.isfinite(tr.table["iqr"])]
    colour = electrode_colour(tr.table.drop_duplicates("electrode"), "electrode", order=order,
                              below=SIDE_LEGEND_COLUMNS)
    base = alt.Chart(t).encode(
        x=alt.X("x_median:Q", title=metric_title(tr.x)),
        y=alt.Y("iqr:Q", title=_spread_title(tr)),
        tooltip=[alt.Tooltip("electrode:N"), alt.Tooltip("n:Q", title="particles"), alt.Tooltip("iqr:Q", format=".3f")])
    return (base.mark_line(opacity=0.6).encode(color=colour)
            + base.mark_point(filled=True, size=50).encode(
                color=alt.condition(alt.datum.low_n, alt.value(LOW_N_GREY), colour))
            ).properties(height=_side_height(tr))


def trend_counts(tr: compare.Trend, *, order: Sequence[str] | None = None) -> alt.LayerChart:
    """Particles per bin against ``tr.x``, with the low-n threshold as a dashed rule; the electrodes' legend
    under the plot (as :func:`trend_spread`)."""
    colour = electrode_colour(tr.table.drop_duplicates("electrode"), "electrode", order=order,
                              below=SIDE_LEGEND_COLUMNS)
    t = tr.table.assign(x_plot=tr.table["x_median"].fillna(tr.table["x_mid"]))
    base = alt.Chart(t).encode(
        x=alt.X("x_plot:Q", title=metric_title(tr.x)),
        y=alt.Y("n:Q", title=COUNTS_TITLE),
        tooltip=[alt.Tooltip("electrode:N"), alt.Tooltip("x_lo:Q", format=".3g", title="bin from"),
                 alt.Tooltip("x_hi:Q", format=".3g", title="bin to"), alt.Tooltip("n:Q", title="particles")])
    rule = alt.Chart(pd.DataFrame({"n": [tr.low_n]})).mark_rule(strokeDash=[4, 3], color="#d62728").encode(
        y="n:Q", tooltip=[alt.Tooltip("n:Q", title="few-particle threshold")])
    return (base.mark_line(opacity=0.6).encode(color=colour) + base.mark_point(filled=True, size=50).encode(
        color=alt.condition(alt.datum.low_n, alt.value(LOW_N_GREY), colour)) + rule
            ).properties(height=_side_height(tr))


def electrode_trend(res: compare.ElectrodeTrend, measure: str = "median", *, legend: bool = True,
                    order: Sequence[str] | None = None, title: str | None = None) -> alt.LayerChart:
    """Each electrode's median (``measure="median"``) or share above the cut (``"share_above"``) with its CI
    (bars) against the attribute, and the fitted trend as a dashed line; units on both axes.

    Parameters
    ----------
    res : ElectrodeTrend
        :func:`core.compare.electrode_trend`; its table lists the electrodes in attribute order.
    measure : {"median", "share_above"}
    legend : bool
        Draw the electrodes' colour legend (False for the second of two charts side by side).  It sits under the
        plot; with False its room is kept empty, so that the two plots side by side have one width and height
        (a legend beside the plot had squeezed the one chart's plot to 40 % of the other's).
    order : sequence of str, optional
        The page's electrodes in the page's order, those without the attribute too: each electrode gets the
        colour it has in the page's other charts (:func:`electrode_scale`), the legend lists the electrodes
        drawn in that order.  None: colours in the table's (attribute) order, which differ from the other
        charts' wherever the attribute order is not the page's.
    title : str, optional
        Drawn above the plot (the trend's reading in short: a PNG or SVG of the chart says what it shows).

    Returns
    -------
    alt.LayerChart
    """
    if measure not in ("median", "share_above"):
        raise ValueError(f"measure must be 'median' or 'share_above', got {measure!r}")
    pct = round(res.confidence * 100)
    t = res.table
    unit = f" ({res.unit})" if res.unit and res.unit != "-" else ""  # "-": a count or a ratio
    x_title = f"{res.attribute}{unit}" + (", log scale" if res.x_scale == "log" else "")
    titles = {"median": f"median {metric_title(res.metric)}",
              "share_above": f"share with {metric_title(res.metric).split(' (')[0]} > {res.cut:g} (0–1)"}
    y_title = titles[measure]
    if measure == "median":
        y, lo, hi, fit = "median", "median_ci_lo", "median_ci_hi", "median_fit"
    else:
        y, lo, hi, fit = "share_above", "share_ci_lo", "share_ci_hi", "share_fit"
    colour = electrode_colour(t, "electrode", order=order, below=SIDE_LEGEND_COLUMNS, blank=not legend)
    tips = [alt.Tooltip("electrode:N"), alt.Tooltip("value:Q", title=f"{res.attribute}{unit}", format=".4g"),
            alt.Tooltip("n_valid:Q", title="particles"), alt.Tooltip(f"{y}:Q", format=".3f"),
            alt.Tooltip(f"{lo}:Q", format=".3f", title=f"{pct} % CI low"),
            alt.Tooltip(f"{hi}:Q", format=".3f", title=f"{pct} % CI high")]
    # the points at the ends of the axis whole (QA walk 16: half cut at its edges), the electrodes' values as ticks on
    # a logarithmic axis (none fell at 0.5 and 5 C), the dashed fit only where the points and CIs are (on a 0-1
    # measure, the share's fit on a log scale had run below 0, the axis with it)
    values = t["value"].to_numpy(float)
    v0, v1 = float(np.nanmin(values)), float(np.nanmax(values))
    if res.x_scale == "log":
        f = (v1 / v0) ** 0.06 if v1 > v0 else 1.5
        scale = alt.Scale(type="log", domain=[v0 / f, v1 * f], nice=False)
        axis = alt.Axis(values=sorted(set(values.tolist())), format="~g")
    else:
        pad = 0.06 * (v1 - v0) if v1 > v0 else max(abs(v0) * 0.1, 0.5)
        scale, axis = alt.Scale(domain=[v0 - pad, v1 + pad], nice=False), alt.Axis()
    ys = t[[lo, hi, y]].to_numpy(float)
    y0, y1 = float(np.nanmin(ys)), float(np.nanmax(ys))
    ypad = 0.08 * (y1 - y0) if y1 > y0 else 0.05
    y_lo, y_hi = y0 - ypad, y1 + ypad
    if titles[measure].endswith("(0–1)"):
        y_lo, y_hi = max(y_lo, 0.0), min(y_hi, 1.0)
    y_scale = alt.Scale(domain=[y_lo, y_hi], nice=False)
    base = alt.Chart(t).encode(x=alt.X("value:Q", title=x_title, scale=scale, axis=axis), tooltip=tips)
    line = base.mark_line(strokeDash=[6, 4], color="#555555", strokeWidth=1.5, clip=True).encode(
        y=alt.Y(f"{fit}:Q", scale=y_scale))
    bars = base.mark_rule(strokeWidth=2.5).encode(y=alt.Y(f"{lo}:Q", title=y_title, scale=y_scale), y2=f"{hi}:Q",
                                                  color=colour)
    dots = base.mark_point(filled=True, size=90).encode(y=alt.Y(f"{y}:Q", scale=y_scale), color=colour)
    chart = alt.layer(line, bars, dots).properties(
        # one height for both measures (drawn side by side): high enough for either y title
        # (and its title over the plot: without it the longer y title ran out at the top, QA walk 18)
        height=fit_height(300, *titles.values(), above=_CHART_TITLE_PX if title else 0)
        + legend_below_px(len(t), SIDE_LEGEND_COLUMNS))
    return chart if title is None else chart.properties(title=title)


def colour_bar(title: str = DETACHMENT_TITLE, vmin: float = DETACHMENT_RANGE[0], vmax: float = DETACHMENT_RANGE[1],
             scheme: str = DETACHMENT_CMAP, *, nan_note: bool = True) -> alt.Chart:
    """A horizontal colour bar (the same scale as the slice images); with ``nan_note`` a grey box beyond its end in
    the colour of a particle with no open interface (:data:`ui.render.NAN_COLOUR`), named in the title (QA walk 17:
    "grey = no open interface" showed no grey)."""
    v = np.linspace(vmin, vmax, 101)
    d = pd.DataFrame({"v0": v[:-1], "v1": v[1:], "mid": (v[:-1] + v[1:]) / 2, "bar": "scale"})
    span = vmax - vmin
    x_max = vmax + (0.1 * span if nan_note else 0.0)
    x = alt.X("v0:Q", title=title + ("; grey box: no open interface" if nan_note else ""),
              scale=alt.Scale(domain=[vmin, x_max], nice=False),
              axis=alt.Axis(values=[float(t) for t in np.linspace(vmin, vmax, 11)], tickCount=11, grid=False))
    chart = alt.Chart(d).mark_rect().encode(
        x=x, x2="v1:Q",
        y=alt.Y("bar:N", axis=None),  # one band: the rectangles fill the plot height
        color=alt.Color("mid:Q", scale=alt.Scale(scheme=scheme, domain=[vmin, vmax]), legend=None),
    )
    if nan_note:
        box = pd.DataFrame({"v0": [vmax + 0.04 * span], "v1": [x_max], "bar": ["scale"]})
        chart = alt.layer(chart, alt.Chart(box).mark_rect(color="#%02x%02x%02x" % NAN_COLOUR).encode(
            x=x, x2="v1:Q", y=alt.Y("bar:N", axis=None)))
    # the height includes the axis and its title (Streamlit sizes charts with autosize "fit")
    return chart.properties(height=100, width="container")


def phase_legend_html() -> str:
    """Inline HTML legend of the phase colours."""
    names = {0: "pore", 1: "CBD (carbon-binder)", 2: "NMC particles"}
    items = [
        f'<span style="display:inline-block;width:0.9em;height:0.9em;background:{PHASE_HEX[c]};'
        f'border:1px solid #444;margin:0 0.3em 0 0.9em;vertical-align:middle"></span>{names[c]}'
        for c in (0, 1, 2)
    ]
    return "<div style='font-size:0.9em'>" + "".join(items) + "</div>"


# --------------------------------------------------------------------------- charts in files (PNG, SVG, report)

# Files are laid out by vl-convert (its sans-serif is Liberation Sans) and opened anywhere: an SVG names the fonts
# with Liberation Sans' widths (Arimo, Arial, Helvetica) first, and the padding takes up a wider fallback at the edges
FILE_FONT = "Liberation Sans, Arimo, Arial, Helvetica, sans-serif"
FILE_CONFIG = {
    "font": FILE_FONT,
    "padding": 12,
    "axis": {"labelLimit": LABEL_LIMIT, "labelSeparation": 4},
    "legend": {"labelLimit": LABEL_LIMIT, "titleLimit": LABEL_LIMIT},
    "header": {"labelLimit": LABEL_LIMIT},
}
_FIXED_FORMAT = re.compile(r"^[^.]*\.(\d+)([f%])$")  # d3 formats with a fixed number of decimals: ".2f", "+.1%"


def _min_step(fmt: object) -> float | None:
    """The smallest tick step a fixed-decimals d3 format tells apart (".2f": 0.01, ".0%": 0.01); None for others."""
    m = _FIXED_FORMAT.match(fmt) if isinstance(fmt, str) else None
    if m is None:
        return None
    return 10.0 ** -(int(m.group(1)) + (2 if m.group(2) == "%" else 0))


def _legible_channel(enc: object, channel: str, width: float | None) -> object:
    """One x / y encoding with the axis settings of :func:`legible_spec` (its own settings kept)."""
    if not isinstance(enc, Mapping) or "type" not in enc or enc.get("axis", {}) is None:
        return enc
    axis = dict(enc.get("axis") or {})
    if enc["type"] == "quantitative":
        step = _min_step(axis.get("format"))
        if step is not None and "values" not in axis:
            axis.setdefault("tickMinStep", step)  # no two ticks with the same label ("0.01 0.01")
        if channel == "x" and width and "values" not in axis:
            axis.setdefault("tickCount", max(2, int(width // TICK_SPACING)))
    elif enc["type"] in ("nominal", "ordinal"):
        axis.setdefault("labelOverlap", False)  # every category named
        axis.setdefault("labelLimit", LABEL_LIMIT)
    return {**enc, "axis": axis}


def _legible_view(node: object, width: float | None) -> object:
    if not isinstance(node, Mapping):
        return node
    w = node.get("width", width)
    w = float(w) if isinstance(w, (int, float)) and not isinstance(w, bool) else None
    out = dict(node)
    if isinstance(node.get("encoding"), Mapping):
        out["encoding"] = {ch: _legible_channel(e, ch, w) if ch in ("x", "y") else e
                           for ch, e in node["encoding"].items()}
    if isinstance(node.get("layer"), list):
        out["layer"] = [_legible_view(n, w) for n in node["layer"]]
    for key in ("hconcat", "vconcat", "concat"):
        if isinstance(node.get(key), list):
            out[key] = [_legible_view(n, None) for n in node[key]]
    if isinstance(node.get("spec"), Mapping):  # a facet's panel
        out["spec"] = _legible_view(node["spec"], None)
    return out


def _merged(base: Mapping, own: Mapping) -> dict:
    """``base`` with ``own`` over it, mapping by mapping (``own`` wins)."""
    out = dict(base)
    for k, v in own.items():
        out[k] = _merged(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def legible_spec(spec: Mapping) -> dict:
    """A Vega-Lite spec made legible in a file: every label readable, every category named.

    The one place the axis defaults of the exported charts (PNG, SVG, the HTML report) are set, whichever builder
    made them: a quantitative axis with a fixed-decimals format (".2f") gets that precision as its smallest tick
    step, so that no two ticks read the same; a quantitative x axis one labelled tick per 80 px of a known width
    (Vega's 40 px crowds the labels); a nominal axis every label, none shortened below 320 px; legends and facet
    headers the same limit; labels kept 4 px apart; the fonts that draw text in the widths vl-convert measures and
    a padding for a wider one. A chart's own settings win. ``spec`` is not modified (its data is shared).
    """
    out = _legible_view(spec, None)
    out["config"] = _merged(FILE_CONFIG, spec.get("config") or {})
    return out
