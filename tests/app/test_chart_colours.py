"""Electrode colours and legends of the Compare page's charts (ui.charts): an electrode has one colour in every chart
(the electrode-axis charts list the electrodes in attribute order, the others in the page's order), and the size
trend's few-particle legend entry stays inside the chart however many electrodes its legend lists.

Colours are read from the specs (scheme and domain) and checked against the tableau10 colours by index; positions
are read from what vl-convert lays out (its scenegraph) as Streamlit sizes the chart (its theme, autosize "fit").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import vl_convert as vlc

from core import compare
from ui import charts

from apphelpers import nested_dicts

# page order of the electrodes, and a C-rate for each whose order (0.2, 0.5, 1, 3, 5) is not the page's
RATES = {"pristine": 0.5, "cycled-1C": 1.0, "cycled-5C": 5.0, "calendered-real": 0.2, "nanoct-B-360": 3.0}
PAGE = list(RATES)
# Vega's tableau10, in order: the i-th electrode of the page gets the i-th colour
TABLEAU10 = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d",
             "#bab0ac"]
EXPECTED = {"pristine": "#4c78a8", "cycled-1C": "#f58518", "cycled-5C": "#e45756", "calendered-real": "#72b7b2",
            "nanoct-B-360": "#54a24b"}
# Streamlit's theme for legends (streamlit/static CustomTheme: 14 px text, its paddings), under the chart's config
STREAMLIT_LEGEND = {"labelFontSize": 14, "titleFontSize": 14, "titlePadding": 8, "labelPadding": 16,
                    "columnPadding": 8, "rowPadding": 2, "padding": 8, "symbolStrokeWidth": 2}


def _tables(names, *, few: int | None = None) -> dict[str, pd.DataFrame]:
    """Particle tables; electrode number ``few`` has 40 particles spread to 30 µm (bins of fewer than 10)."""
    rng = np.random.default_rng(0)
    out = {}
    for i, name in enumerate(names):
        n = 40 if i == few else 120
        out[name] = pd.DataFrame({
            "label": np.arange(1, n + 1), "detachment": np.clip(rng.normal(0.15 + 0.05 * i, 0.12, n), 0, 1),
            "equiv_diameter_um": rng.uniform(4, 30 if i == few else 13, n), "depth_frac": rng.uniform(0, 1, n),
            "touches_edge": rng.uniform(0, 1, n) < 0.2, "volume_um3": rng.uniform(1, 100, n)})
    return out


@pytest.fixture(scope="module")
def tables():
    return _tables(PAGE)


def _colour_encodings(spec: dict) -> list[dict]:
    """Every colour encoding of a spec that maps the electrode field (conditions unwrapped)."""
    encs = [node.get("encoding", {}).get("color") for node in nested_dicts(spec)]
    # (grey bins: a condition beside the field)
    return [e for e in encs if isinstance(e, dict) and e.get("field") == "electrode"]


def _colours(chart) -> dict[str, str]:
    """{electrode: colour} of a chart, the same in each of its colour encodings."""
    encs = _colour_encodings(chart.to_dict())
    assert encs, "no electrode colour"
    maps = []
    for enc in encs:
        scale = enc["scale"]
        assert scale["scheme"] == charts.GROUP_SCHEME == "tableau10", scale
        maps.append({n: TABLEAU10[i % 10] for i, n in enumerate(scale["domain"])})
    assert all(m == maps[0] for m in maps), maps
    return maps[0]


def _axis_trend(tables, names):
    return compare.electrode_trend({n: tables[n] for n in names}, {n: RATES[n] for n in names}, attribute="C-rate",
                                   unit="C", edge_policy="include", rng=0, n_boot=100)


# --------------------------------------------------------------------------- one colour per electrode


def test_an_electrode_has_one_colour_in_every_chart_of_the_page(tables):
    """The axis charts coloured the electrodes in attribute order: pristine (0.5 C) was orange there, blue in the
    histogram."""
    res = _axis_trend(tables, PAGE)
    assert list(res.table["electrode"]) != PAGE  # the axis order is not the page's
    dist = compare.distributions(tables, "detachment", edge_policy="include")
    tr = compare.trend(tables, "equiv_diameter_um", edge_policy="include", rng=0, n_boot=50)
    built = {
        "histogram": charts.distribution(dist), "ecdf": charts.distribution(dist, "ecdf"),
        "box": charts.distribution(dist, "box"), "facets": charts.distribution(dist, facet=True),
        "trend": charts.trend(tr), "spread": charts.trend_spread(tr), "counts": charts.trend_counts(tr),
        "median": charts.electrode_trend(res, "median", order=PAGE),
        "share": charts.electrode_trend(res, "share_above", legend=False, order=PAGE),
    }
    for name, chart in built.items():
        colours = _colours(chart)
        assert {n: colours[n] for n in PAGE} == EXPECTED, name


def test_a_trend_that_leaves_an_electrode_out_keeps_the_others_colours(tables):
    """An electrode without depth (a single slice) is left out of the depth trend: given the page's order, the ones
    after it keep their colours."""
    kept = [n for n in PAGE if n != "cycled-1C"]
    tr = compare.trend({n: tables[n] for n in kept}, "depth_frac", edge_policy="include", rng=0, n_boot=50)
    for chart in (charts.trend(tr, order=PAGE), charts.trend_spread(tr, order=PAGE),
                  charts.trend_counts(tr, order=PAGE)):
        assert {n: _colours(chart)[n] for n in kept} == {n: EXPECTED[n] for n in kept}
    assert _colours(charts.trend(tr))["cycled-5C"] != EXPECTED["cycled-5C"]  # without the order: shifted


def test_the_axis_chart_lists_its_electrodes_in_the_page_order(tables):
    res = _axis_trend(tables, PAGE)
    colour = _colour_encodings(charts.electrode_trend(res, "median", order=PAGE).to_dict())[0]
    assert colour["scale"]["domain"] == colour["sort"] == PAGE and "values" not in colour["legend"]  # all of them
    spec = charts.electrode_trend(res, "median", order=PAGE).to_dict()
    at = sorted((round(y), x, t) for t, x, y in _legend_label_xy(spec))
    assert [t for *_, t in at] == PAGE  # the legend in the page's order, row by row (as the violins' panels run)
    hidden = charts.electrode_trend(res, "share_above", legend=False, order=PAGE)
    for c in _colour_encodings(hidden.to_dict()):  # laid out as the shown one (its room kept), nothing of it seen
        leg = c["legend"]
        assert leg["labelOpacity"] == leg["titleOpacity"] == 0 and leg["symbolOpacity"] < 1e-3
        assert {k: v for k, v in leg.items() if "Opacity" not in k} == colour["legend"]


def test_the_violin_legend_reads_row_by_row_in_the_panels_order(tables):
    """QA walk 10: in three columns the violins' legend was filled column by column (pristine, cycled-5C,
    nanoct-B-360 along its first row) under panels running pristine, cycled-1C, cycled-5C, ...: now row by row."""
    dist = compare.distributions(tables, "detachment", weighting="volume", edge_policy="include")
    at = sorted((round(y), x, t) for t, x, y in _legend_label_xy(charts.distribution(dist, "violin").to_dict()))
    assert len({y for y, _, _ in at}) == 2  # (5 names in 3 columns: 2 rows)
    assert [t for *_, t in at] == list(dist.quantiles["electrode"]) == PAGE


def test_electrodes_without_the_attribute_keep_the_others_colours_and_leave_the_legend(tables):
    """Electrodes left off the axis (no C-rate) do not shift the colours of the rest, nor show in its legend."""
    on_axis = ["nanoct-B-360", "cycled-5C", "pristine"]
    res = _axis_trend(tables, on_axis)
    chart = charts.electrode_trend(res, "median", order=PAGE)
    assert _colours(chart) == EXPECTED
    colour = _colour_encodings(chart.to_dict())[0]
    assert colour["legend"]["values"] == ["pristine", "cycled-5C", "nanoct-B-360"]  # drawn ones, page order
    svg = vlc.vegalite_to_svg(chart.to_json())
    for name in on_axis:
        assert EXPECTED[name] in svg.lower(), name
    for name in ("cycled-1C", "calendered-real"):  # neither drawn nor in the legend
        assert EXPECTED[name] not in svg.lower() and f">{name}<" not in svg, name


def test_without_an_order_the_axis_chart_colours_in_its_table_order(tables):
    res = _axis_trend(tables, PAGE)
    assert list(_colours(charts.electrode_trend(res, "median"))) == list(res.table["electrode"])


def test_an_order_that_leaves_out_a_drawn_electrode_is_refused(tables):
    res = _axis_trend(tables, PAGE)
    with pytest.raises(ValueError, match=r"order must name every electrode drawn; \['cycled-5C'\] missing"):
        charts.electrode_trend(res, "median", order=[n for n in PAGE if n != "cycled-5C"])


def test_electrode_scale_gives_the_i_th_electrode_the_i_th_colour():
    order = ["b", "a", "b", "c"]
    assert charts.electrode_scale(order).to_dict() == {"scheme": "tableau10", "domain": ["b", "a", "c"]}
    assert order == ["b", "a", "b", "c"]  # not modified


# --------------------------------------------------------------------------- the few-particle legend entry


def _legend_labels(spec: dict) -> tuple[list[tuple[str, float]], float]:
    """The legend labels vl-convert lays out as (text, y from the chart's top edge), and the chart's height."""
    sg = vlc.vegalite_to_scenegraph(spec)
    found = []

    def walk(node, y0, in_legend):
        if isinstance(node, dict):
            in_legend = in_legend or node.get("role") == "legend"
            if node.get("role") == "legend-label":
                for it in node.get("items", []):
                    found.append((it["text"], y0 + it.get("y", 0)))
                return
            items = node.get("items")
            if isinstance(items, list):
                for it in items:
                    # a group item moves its children; a mark (marktype) does not
                    dy = it.get("y", 0) if isinstance(it, dict) and "items" in it and "marktype" not in it else 0
                    walk(it, y0 + dy, in_legend)

    walk(sg["scenegraph"], float(sg["origin"][1]), False)
    return found, float(sg["height"])


def _legend_label_xy(spec: dict) -> list[tuple[str, float, float]]:
    """The legend labels vl-convert lays out as (text, x, y) from the chart's top left corner."""
    sg = vlc.vegalite_to_scenegraph(spec)
    found = []

    def walk(node, x0, y0):
        if isinstance(node, dict):
            if node.get("role") == "legend-label":
                found.extend((it["text"], x0 + it.get("x", 0), y0 + it.get("y", 0)) for it in node.get("items", []))
                return
            for it in node.get("items", []) if isinstance(node.get("items"), list) else []:
                group = isinstance(it, dict) and "items" in it and "marktype" not in it
                walk(it, x0 + (it.get("x", 0) if group else 0), y0 + (it.get("y", 0) if group else 0))

    walk(sg["scenegraph"], 0.0, 0.0)
    return found


@pytest.mark.parametrize("n_electrodes", [8, 16])
def test_the_few_particle_entry_of_the_size_trend_is_inside_the_chart(n_electrodes):
    """With 8 electrodes the 'n < 10' entry, stacked under their legend, was cut off at the chart's bottom."""
    names = [f"electrode-{i:02d} (SYNTHETIC)" for i in range(n_electrodes)]
    tr = compare.trend(_tables(names, few=1), "equiv_diameter_um", edge_policy="include", rng=0, n_boot=50)
    assert tr.n_low > 0  # there are grey triangles to explain
    chart = charts.trend(tr)
    spec = chart.to_dict()
    shape = next(p["encoding"]["shape"] for p in spec["layer"] if "shape" in p.get("encoding", {}))
    assert shape["legend"]["orient"] == "top"  # not stacked under the electrodes' legend
    assert spec["height"] >= n_electrodes * 20 + 50 + 40  # the electrode legend fits beside the plot
    # as Streamlit draws it: its theme, the container 640 px wide, the axes and legends inside the height
    dash = dict(spec, width=640, autosize={"type": "fit", "contains": "padding"},
                config=charts._merged({"legend": STREAMLIT_LEGEND}, spec.get("config", {})))
    labels, height = _legend_labels(dash)
    texts = [t for t, _ in labels]
    assert "n < 10" in texts and "ok" in texts and all(n in texts for n in names), texts
    outside = [(t, y) for t, y in labels if not 0 <= y <= height - 7]  # a 14 px label centred on y
    assert not outside, (outside, height)


# --------------------------------------------------------------------------- legends of charts side by side


def _plot_box(chart, width: int = 430) -> tuple[float, float]:
    """(width, height) px of a chart's plot as Streamlit draws it in a column ``width`` px wide (its legend theme,
    autosize "fit": the axes and legends inside the chart's size)."""
    spec = chart.to_dict()
    spec = dict(spec, width=width, autosize={"type": "fit", "contains": "padding"},
                config=charts._merged({"legend": STREAMLIT_LEGEND}, spec.get("config", {})))
    root = vlc.vegalite_to_scenegraph(spec)["scenegraph"]["items"][0]
    return float(root["width"]), float(root["height"])


def _electrode_legends(chart) -> list[dict]:
    return [c["legend"] for c in _colour_encodings(chart.to_dict())]


def test_the_two_axis_charts_have_plots_of_one_size(tables):
    """QA: the median chart, its legend beside the plot inside its column, was squeezed to about 40 % of the width
    of the share chart beside it (which has no legend)."""
    long = {f"{n} (SYNTHETIC)": t for n, t in tables.items()}
    res = compare.electrode_trend(long, {f"{n} (SYNTHETIC)": r for n, r in RATES.items()}, attribute="C-rate",
                                  unit="C", edge_policy="include", rng=0, n_boot=100)
    order = list(long)
    median = charts.electrode_trend(res, "median", order=order)
    share = charts.electrode_trend(res, "share_above", legend=False, order=order)
    assert all(leg["orient"] == "bottom" for leg in _electrode_legends(median))
    w_median, h_median = _plot_box(median)
    w_share, h_share = _plot_box(share)
    assert abs(w_median - w_share) <= 1 and abs(h_median - h_share) <= 1, ((w_median, h_median), (w_share, h_share))
    assert w_median > 0.8 * 430 and h_median >= 180  # not squeezed by the legend


def test_the_spread_and_count_charts_have_the_electrode_legend(tables):
    """QA: in the HTML report the IQR and count charts stood alone with five coloured lines and no key."""
    tr = compare.trend(tables, "depth_frac", edge_policy="include", rng=0, n_boot=50)
    main = _colours(charts.trend(tr, order=PAGE))
    boxes = []
    for chart in (charts.trend_spread(tr, order=PAGE), charts.trend_counts(tr, order=PAGE)):
        legends = _electrode_legends(chart)
        assert legends and all(leg is not None and leg["orient"] == "bottom" for leg in legends)
        assert _colours(chart) == main  # the main trend chart's colours
        svg = vlc.vegalite_to_svg(chart.to_json())
        assert all(f">{n}<" in svg for n in PAGE) and ">electrode<" in svg  # the key is drawn, in a file too
        boxes.append(_plot_box(chart))
    # side by side: plots of one height, of one width but for their y tick labels ("0.25" and "35")
    assert boxes[0][1] == boxes[1][1] and abs(boxes[0][0] - boxes[1][0]) <= 15, boxes


def test_the_colour_bar_shows_the_grey_of_no_open_interface():
    """QA walk 17: the colour bar's title said "grey = no open interface" and showed no grey: a box beyond the scale's
    end in the colour a particle without a detachment is drawn in (ui.render.NAN_COLOUR), its ticks only 0-1."""
    from ui.render import NAN_COLOUR

    spec = charts.colour_bar().to_dict()
    scale, box = spec["layer"]
    assert box["mark"]["color"] == "#%02x%02x%02x" % NAN_COLOUR
    assert "grey box: no open interface" in scale["encoding"]["x"]["title"]
    assert scale["encoding"]["x"]["axis"]["values"][-1] == 1.0 and spec["datasets"][box["data"]["name"]][0]["v0"] > 1.0
    plain = charts.colour_bar(nan_note=False).to_dict()
    assert "layer" not in plain and "no open interface" not in plain["encoding"]["x"]["title"]
