"""Charts readable in the dashboard and in files: no tick label repeated or touching its neighbour, every electrode
named and none cut short, y titles inside the chart (ui.charts: legible_spec, fit_height, the box plot's axis).

Labels are read from what vl-convert lays out (its scenegraph: position, alignment, hidden or not) and draws (SVG).
"""

from __future__ import annotations

import copy
import html
import re

import altair as alt
import numpy as np
import pandas as pd
import pytest
import vl_convert as vlc

from core import compare, connectivity
from ui import charts, exports

NAMES = ["pristine (SYNTHETIC)", "cycled-1C (SYNTHETIC)", "cycled-5C (SYNTHETIC)", "calendered-real", "nanoct-B-360"]
# what Streamlit's theme puts under a chart's own config (it drops touching labels and cuts them at 100 px)
STREAMLIT_CONFIG = {"axis": {"labelOverlap": True, "labelLimit": 100, "labelFontSize": 12, "titleFontSize": 14,
                             "labelFlush": True}, "legend": {"labelLimit": 160}}


@pytest.fixture(scope="module")
def tables():
    rng = np.random.default_rng(0)
    out = {}
    for i, name in enumerate(NAMES):
        n = 120
        out[name] = pd.DataFrame({
            "label": np.arange(1, n + 1), "detachment": np.clip(rng.normal(0.15 + 0.1 * i, 0.12, n), 0, 1),
            "equiv_diameter_um": rng.uniform(4, 13 if i < 4 else 32, n), "depth_frac": rng.uniform(0, 1, n),
            "touches_edge": rng.uniform(0, 1, n) < 0.2, "volume_um3": rng.uniform(1, 100, n)})
    return out


@pytest.fixture(scope="module")
def crate(tables):
    three = {n: tables[n] for n in NAMES[:3]}
    return compare.electrode_trend(three, dict(zip(NAMES[:3], (0.0, 1.0, 5.0))), attribute="C-rate", unit="C",
                                   edge_policy="include", rng=0, n_boot=200)


def _share_chart() -> alt.Chart:
    """The isolated-particles chart's x axis (ui.sections): shares 0-0.1 with two decimals, one band per name."""
    d = pd.DataFrame({"row": [f"{n} · by number" for n in NAMES], "share": [0, 0, 0, 23 / 1866, 0]})
    return alt.Chart(d).mark_bar().encode(
        y=alt.Y("row:N", title=None, sort=list(d["row"])),
        x=alt.X("share:Q", title="share of particles isolated (0–1)", scale=alt.Scale(domain=[0, 0.1]),
                axis=alt.Axis(format=".2f")))


def _spec(chart) -> dict:
    with alt.data_transformers.enable("default", max_rows=None):
        return chart.to_dict()


def _axis_labels(spec: dict) -> list[list[dict]]:
    """The labels vl-convert lays out, one list per axis, those hidden as overlapping left out."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("role") == "axis-label":
                found.append([it for it in node.get("items", []) if it.get("opacity", 1) != 0])
                return
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(vlc.vegalite_to_scenegraph(spec))
    return found


def _x_labels(spec: dict) -> list[dict]:
    axes = [a for a in _axis_labels(spec) if a and all(it.get("baseline") == "top" and not it.get("angle")
                                                       for it in a)]
    assert axes, "no horizontal x axis labels"
    return axes[0]


def _extent(item: dict, widen: float = 1.0) -> tuple[float, float]:
    """Left and right end of a label (a generous 0.6 em a character), ``widen`` times as wide (another font)."""
    w = 0.6 * item.get("fontSize", 10) * len(item["text"]) * widen
    x = item["x"]
    return {"left": (x, x + w), "right": (x - w, x)}.get(item.get("align"), (x - w / 2, x + w / 2))


def _svg_texts(svg: str) -> list[str]:
    """The texts an SVG draws (those at opacity 0 left out)."""
    return [html.unescape(t) for attrs, t in re.findall(r"<text([^>]*)>([^<]*)</text>", svg)
            if 'opacity="0"' not in attrs]


# --------------------------------------------------------------------------- tick labels in files


def test_a_two_decimal_axis_never_repeats_a_tick_label():
    spec = exports._spec(_share_chart())
    axis = spec["encoding"]["x"]["axis"]
    assert axis["format"] == ".2f" and axis["tickMinStep"] == pytest.approx(0.01)
    texts = [it["text"] for it in _x_labels(spec)]
    assert len(texts) == len(set(texts)) >= 5, texts  # was 0.00 0.01 0.01 0.01 0.02 0.02 ... 0.10 0.10
    assert texts[0] == "0.00" and texts[-1] == "0.10"
    # a percent format counts two more decimals; other formats set no step
    assert charts._min_step(".1%") == pytest.approx(0.001) and charts._min_step("+.3f") == pytest.approx(0.001)
    assert charts._min_step(".3g") is None and charts._min_step(None) is None


@pytest.mark.parametrize("which", ["crate", "share_above", "histogram", "ecdf", "trend", "colour_bar", "shares"])
def test_tick_labels_in_files_keep_apart_even_in_a_wider_font(which, tables, crate):
    """A reader's font a quarter wider than the one vl-convert measured still leaves the labels apart (the report
    had shown "0.00.2", "4.85.0", "0.951.00")."""
    chart = {
        "crate": lambda: charts.electrode_trend(crate, "median"),
        "share_above": lambda: charts.electrode_trend(crate, "share_above", legend=False),
        "histogram": lambda: charts.distribution(compare.distributions(tables, "detachment", edge_policy="include")),
        "ecdf": lambda: charts.distribution(compare.distributions(tables, "detachment", edge_policy="include"),
                                            "ecdf"),
        "trend": lambda: charts.trend(compare.trend(tables, "equiv_diameter_um", edge_policy="include", rng=0)),
        "colour_bar": charts.colour_bar,
        "shares": _share_chart,
    }[which]()
    labels = _x_labels(exports._spec(chart))
    texts = [it["text"] for it in labels]
    assert len(texts) == len(set(texts)) >= 3, texts
    spans = sorted(_extent(it, widen=1.25) for it in labels)
    for (_, right), (left, _) in zip(spans, spans[1:]):
        assert left - right >= 0, texts


def test_file_axes_get_a_tick_per_80_px_and_keep_their_own_settings(crate):
    spec = exports._spec(charts.electrode_trend(crate, "median"))
    x = spec["layer"][0]["encoding"]["x"]["axis"]
    assert spec["width"] == exports.EXPORT_WIDTH and x["tickCount"] == exports.EXPORT_WIDTH // charts.TICK_SPACING
    bar = exports._spec(charts.colour_bar())
    assert bar["layer"][0]["encoding"]["x"]["axis"]["tickCount"] == 11  # the chart's own count wins
    assert bar["config"]["font"] == charts.FILE_FONT and bar["config"]["padding"] >= 10
    # the chart's own config wins over the files' defaults; the spec given is not modified
    own = _spec(charts.colour_bar().configure_legend(labelLimit=50))
    before = copy.deepcopy(own)
    out = charts.legible_spec(own)
    assert own == before and out["config"]["legend"]["labelLimit"] == 50
    assert out["config"]["axis"]["labelLimit"] == charts.LABEL_LIMIT


# --------------------------------------------------------------------------- names: every one, none cut


def test_every_electrode_is_named_on_the_box_plot_in_the_dashboard_and_in_files(tables):
    dist = compare.distributions(tables, "equiv_diameter_um", weighting="volume", edge_policy="include")
    chart = charts.distribution(dist, "box")
    spec = _spec(chart)
    x = spec["layer"][0]["encoding"]["x"]
    assert x["axis"]["labelOverlap"] is False and x["axis"]["labelLimit"] >= charts.LABEL_LIMIT
    assert x["axis"]["labelAngle"] != 0
    # as Streamlit draws it: its theme under the chart's config, the container 640 px wide
    dash = dict(spec, width=640, config=charts._merged(STREAMLIT_CONFIG, spec.get("config", {})))
    shown = [it["text"] for axis in _axis_labels(dash) for it in axis]
    assert all(n in shown for n in NAMES), shown  # 3 of 5 had been shown
    drawn = _svg_texts(vlc.vegalite_to_svg(dash))
    assert all(n in drawn for n in NAMES), drawn  # whole, not cut short with "…"
    # and in the exported picture
    drawn = _svg_texts(exports.chart_svg(chart))
    assert all(n in drawn for n in NAMES) and not any(t.endswith("…") for t in drawn), drawn


def test_the_box_plot_s_median_tick_is_black_as_its_caption_says(tables):
    """QA walk 8: the caption says "black tick: median", but the electrode colour encoded on the layers overrode the
    tick's own colour (drawn in the box's colour, hard to see on it)."""
    dist = compare.distributions(tables, "detachment", weighting="number", edge_policy="include")
    layers = _spec(charts.distribution(dist, "box"))["layer"]
    [tick] = [layer for layer in layers if (layer["mark"] if isinstance(layer["mark"], str)
                                            else layer["mark"]["type"]) == "tick"]
    assert tick["encoding"]["color"] == {"value": "black"}


def test_long_names_are_whole_in_legends_and_on_a_name_axis_in_files(tables):
    long = {f"{n} · by number": t for n, t in tables.items()}
    dist = compare.distributions(long, "detachment", edge_policy="include")
    drawn = _svg_texts(exports.chart_svg(charts.distribution(dist, "ecdf")))
    assert all(n in drawn for n in long), drawn  # the legend (was "calendered-rea")
    drawn = _svg_texts(exports.chart_svg(_share_chart()))
    assert all(f"{n} · by number" in drawn for n in NAMES), drawn  # a nominal y axis (was "ycled-1C (SYNTH...")
    assert not any(t.endswith("…") for t in drawn)


# --------------------------------------------------------------------------- y titles inside the dashboard's chart


def _y_title_and_height(spec: dict) -> tuple[str, int]:
    parts = [spec, *spec.get("layer", [])]
    title = next(p["encoding"]["y"]["title"] for p in parts if p.get("encoding", {}).get("y", {}).get("title"))
    return title, spec["height"]


def test_y_titles_fit_the_height_streamlit_gives_the_plot(tables, crate):
    """Streamlit fits the axes into the chart's height: the plot keeps about height - 90 px, and a longer title
    ran out of the chart ("IQR of detachment index (0–1", "median detachment index (0–1), 95 % C")."""
    tr = compare.trend(tables, "equiv_diameter_um", edge_policy="include", rng=0)
    wide = compare.distributions(tables, "detachment", weighting="volume", edge_policy="miles",
                                 windows_um={n: (50.0, 50.0, 50.0) for n in tables})
    built = {
        "trend": charts.trend(tr), "spread": charts.trend_spread(tr), "counts": charts.trend_counts(tr),
        "median": charts.electrode_trend(crate, "median"), "share": charts.electrode_trend(crate, "share_above"),
        "histogram": charts.distribution(wide), "ecdf": charts.distribution(wide, "ecdf"),
        "box": charts.distribution(wide, "box"),
    }
    for name, chart in built.items():
        title, height = _y_title_and_height(_spec(chart))
        assert height >= len(title) * 6.2 + 100, (name, title, height)
    assert _y_title_and_height(_spec(built["trend"]))[1] >= 340  # 300 had cut "95 % CI"
    assert _spec(built["spread"])["height"] == _spec(built["counts"])["height"] >= 280  # side by side, alike
    assert charts.fit_height(300, "short") == 300 and charts.fit_height(220, "x" * 40, above=40) == 390


def test_the_isolated_particles_depth_chart_fits_its_y_title_and_its_own_title():
    """Beside the isolation bars its title was cut at the top: its y title (33 characters) took the plot's height."""
    from ui import sections

    depth = connectivity.depth_table({})
    depth.loc[0] = ["a", 0.0, 0.5, 2, 1, 0.5, 0.4]
    spec = sections.isolation_depth_chart(depth).to_dict()
    title, height = spec["encoding"]["y"]["title"], spec["height"]
    assert height >= len(title) * 6.2 + 100 + 30


def test_the_violin_legend_sits_under_the_panels_with_whole_names(tables):
    """QA: beside the violins the legend ran past the page's width: "cycled-1C (SYNTHETI"."""
    dist = compare.distributions(tables, "detachment", weighting="volume", edge_policy="include")
    chart = charts.distribution(dist, "violin")
    spec = chart.to_dict()
    legends = [n["encoding"]["color"]["legend"] for n in _nodes(spec)
               if isinstance(n.get("encoding", {}).get("color"), dict) and "legend" in n["encoding"]["color"]]
    assert legends and all(leg["orient"] == "bottom" and leg["labelLimit"] >= charts.LABEL_LIMIT for leg in legends)
    # as Streamlit draws it (its theme cuts legend labels at 160 px): no wider than the panels alone
    dash = dict(spec, config=charts._merged(STREAMLIT_CONFIG, spec.get("config", {})))
    bare = copy.deepcopy(dash)
    for n in _nodes(bare):
        if isinstance(n.get("encoding", {}).get("color"), dict):
            n["encoding"]["color"]["legend"] = None
    assert vlc.vegalite_to_scenegraph(dash)["width"] <= vlc.vegalite_to_scenegraph(bare)["width"]
    drawn = _svg_texts(vlc.vegalite_to_svg(dash))
    assert all(n in drawn for n in NAMES) and not any(t.endswith("…") for t in drawn), drawn
    for kind in ("histogram", "ecdf", "box"):  # the other kinds keep their legend beside the plot
        assert all(leg is None or "orient" not in leg for leg in (
            n["encoding"]["color"].get("legend") for n in _nodes(charts.distribution(dist, kind).to_dict())
            if isinstance(n.get("encoding", {}).get("color"), dict)))


def _nodes(spec):
    """Every mapping in a spec (views, layers, facet panels)."""
    if isinstance(spec, dict):
        yield spec
        for v in spec.values():
            yield from _nodes(v)
    elif isinstance(spec, list):
        for v in spec:
            yield from _nodes(v)


@pytest.mark.parametrize("kind", ["histogram", "ecdf", "box", "violin"])
def test_a_long_electrode_name_is_whole_in_the_legend(tables, kind):
    """QA walk 10: Streamlit's theme cuts legend labels at 160 px: "NMC811 cycled 500x at 5C, cale…"; walk 12: at its
    14-px legend font the charts' own 320 px still cut that 58-character name."""
    long = "NMC811 cycled 500x at 5C, calendered 30 % (beamline ID16B)"
    named = {(long if i == 1 else n): t for i, (n, t) in enumerate(tables.items())}
    spec = charts.distribution(compare.distributions(named, "detachment", edge_policy="include"), kind).to_dict()
    theme = {**STREAMLIT_CONFIG, "legend": {**STREAMLIT_CONFIG["legend"], "labelFontSize": 14, "titleFontSize": 14}}
    drawn = _svg_texts(vlc.vegalite_to_svg(dict(spec, config=charts._merged(theme, spec.get("config", {})))))
    cut = [t for t in drawn if t.endswith("…")]
    assert long in drawn, cut
    # (the box's slanted axis labels stop at LABEL_LIMIT, a violin's panel name at its panel's width (walk 12: it ran
    # over its neighbours'): the legend names it whole)
    assert not cut or (kind in ("box", "violin") and all(long.startswith(t[:-1]) for t in cut)), cut


def test_many_violins_wrap_to_rows_that_fit_the_page(tables):
    """QA walk 12: six violins in one row ran past the page's column: up to four a row, the rows as even as can be."""
    assert [charts.violin_columns(n) for n in range(1, 10)] == [1, 2, 3, 4, 3, 3, 4, 4, 3]
    six = {f"{n} #{i}": t for i in (1, 2) for n, t in list(tables.items())[:3]}
    spec = charts.distribution(compare.distributions(six, "detachment", edge_policy="include"), "violin").to_dict()
    assert spec["columns"] == 3
    dash = dict(spec, config=charts._merged(STREAMLIT_CONFIG, spec.get("config", {})))
    width = vlc.vegalite_to_scenegraph(dash)["width"]
    assert width <= 4 * (charts.VIOLIN_WIDTH + 40) + 80, width  # a 1280-px screen's column holds about 850 px
    drawn = _svg_texts(vlc.vegalite_to_svg(dash))
    assert all(n in drawn for n in six)  # each panel named (and the legend whole)


def test_a_trend_chart_with_a_title_keeps_room_for_its_longest_y_title(crate):
    """QA walk 18: the share chart's title over its plot left its y title (41 characters) too little height: the
    title ran out at the top.  The title's room is added to what the longest y title needs."""
    title = "rises with C-rate: p = 0.039, 3 electrodes"
    legend = charts.legend_below_px(len(crate.table), charts.SIDE_LEGEND_COLUMNS)
    for measure in ("median", "share_above"):
        with_title = charts.electrode_trend(crate, measure, legend=False, title=title).to_dict()["height"]
        plain = charts.electrode_trend(crate, measure, legend=False).to_dict()["height"]
        y_title = f"share with detachment index > {crate.cut:g} (0–1)"
        assert with_title - legend >= len(y_title) * 6.2 + 100 + 30 and with_title >= plain + 30
