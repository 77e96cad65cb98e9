"""Electrodes on an axis: sample attributes set on the Samples page, the trend across electrodes on the Compare
page (chart with units, the nested test and its reading, the table as CSV, the report section)."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core import compare
from core.records import Attribute
from ui import cache, state

from apphelpers import TIMEOUT, nested_dicts, no_exception, page

SAMPLES = page("1_samples.py")
COMPARE = page("4_compare.py")
RATES = {"pristine": 0.0, "cycled-1C": 1.0, "cycled-5C": 5.0}


def _clear(ws):
    """The demo electrodes come with their C-rates: take them away, as for electrodes added without any."""
    for s in ws.list_samples():
        ws.set_attributes(s.id, [])


def _select(at, ws, name):
    sid = next(s.id for s in ws.list_samples() if s.name == name)
    at.session_state[state.SAMPLE_ID] = sid
    return sid


def test_demo_electrodes_come_with_their_c_rates(seeded_ws):
    """A first start shows the electrode axis: the demos are added with their C-rate (the uncycled one at 0)."""
    rates = {s.name: s.attributes for s in seeded_ws.list_samples()}
    assert rates == {n: (Attribute("C-rate", v, "C"),) for n, v in RATES.items()}
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT).run()
    no_exception(at)
    assert at.selectbox(key=state.CMP_AXIS_ATTR).value == "C-rate"
    assert any("across 3 electrodes" in m.value for m in at.markdown)


def test_samples_page_sets_replaces_and_removes_attributes(seeded_ws):
    _clear(seeded_ws)
    at = AppTest.from_file(SAMPLES, default_timeout=TIMEOUT)
    sid = _select(at, seeded_ws, "cycled-1C")
    at.run()
    no_exception(at)
    assert at.selectbox(key=state.k(state.ATTR_NAME, sid)).options[:3] == ["C-rate (C)", "cycles (-)", "SOC (%)"]
    assert at.button(key=state.k(state.ATTR_SET, sid)).disabled  # no value yet
    at.number_input(key=state.k(state.ATTR_VALUE, sid, "C-rate")).set_value(1.0).run()
    at.button(key=state.k(state.ATTR_SET, sid)).click().run()
    no_exception(at)
    assert seeded_ws.get_sample(sid).attributes == (Attribute("C-rate", 1.0, "C"),)
    assert any("Set C-rate (C) = 1" in m.value for m in at.success)
    # the value shown is the stored one; a new value replaces it in place
    assert at.number_input(key=state.k(state.ATTR_VALUE, sid, "C-rate")).value == 1.0
    at.number_input(key=state.k(state.ATTR_VALUE, sid, "C-rate")).set_value(2.0).run()
    at.button(key=state.k(state.ATTR_SET, sid)).click().run()
    assert seeded_ws.get_sample(sid).attributes == (Attribute("C-rate", 2.0, "C"),)
    # a named attribute with its own unit
    at.selectbox(key=state.k(state.ATTR_NAME, sid)).select("other…").run()
    at.text_input(key=state.k(state.ATTR_CUSTOM, sid)).input("temperature").run()
    at.text_input(key=state.k(state.ATTR_UNIT, sid)).input("°C").run()
    at.number_input(key=state.k(state.ATTR_VALUE, sid, "other…")).set_value(25.0).run()
    at.button(key=state.k(state.ATTR_SET, sid)).click().run()
    no_exception(at)
    assert seeded_ws.get_sample(sid).attribute("temperature") == Attribute("temperature", 25.0, "°C")
    shown = [d.value for d in at.dataframe if "attribute" in d.value.columns][0]
    assert list(shown["attribute"]) == ["C-rate", "temperature"] and list(shown["unit"]) == ["C", "°C"]
    # the same name in another unit is refused in one sentence
    at.selectbox(key=state.k(state.ATTR_NAME, sid)).select("other…").run()
    at.text_input(key=state.k(state.ATTR_CUSTOM, sid)).input("C-rate").run()
    at.text_input(key=state.k(state.ATTR_UNIT, sid)).input("mA/cm²").run()
    at.button(key=state.k(state.ATTR_SET, sid)).click().run()
    assert any("already given in 'C'" in e.value for e in at.error)
    assert seeded_ws.get_sample(sid).attribute("C-rate").unit == "C"
    # a C-rate below 0 C is refused in one sentence and stores nothing
    at.selectbox(key=state.k(state.ATTR_NAME, sid)).select("C-rate").run()
    at.number_input(key=state.k(state.ATTR_VALUE, sid, "C-rate")).set_value(-3.0).run()
    at.button(key=state.k(state.ATTR_SET, sid)).click().run()
    no_exception(at)
    assert any(e.value.startswith("C-rate -3 C is not possible") for e in at.error)
    assert seeded_ws.get_sample(sid).attribute("C-rate").value == 2.0
    # remove one
    at.selectbox(key=state.k(state.ATTR_REMOVE, sid)).select("temperature").run()
    at.button(key=state.k(state.ATTR_REMOVE_BUTTON, sid)).click().run()
    no_exception(at)
    assert seeded_ws.get_sample(sid).attributes == (Attribute("C-rate", 2.0, "C"),)


def test_compare_page_without_attributes_says_where_to_set_them(seeded_ws):
    _clear(seeded_ws)
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT).run()
    no_exception(at)
    assert any("Samples** page under *Attributes*" in i.value for i in at.info)


def _set_rates(ws, rates=RATES, unit="C"):
    for s in ws.list_samples():
        if s.name in rates:
            ws.set_attributes(s.id, [Attribute("C-rate", rates[s.name], unit)])


def test_compare_page_puts_electrodes_on_the_attribute_axis(seeded_ws):
    _set_rates(seeded_ws)
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT).run()
    no_exception(at)
    assert at.selectbox(key=state.CMP_AXIS_ATTR).value == "C-rate"
    # the numbers are core.compare.electrode_trend's on the page's particles (edge particles included)
    tables = {f"{s.name} (SYNTHETIC)": seeded_ws.load_table(seeded_ws.latest_analysis(s.id))
              for s in seeded_ws.list_samples()}
    ref = compare.electrode_trend(tables, {f"{n} (SYNTHETIC)": v for n, v in RATES.items()}, attribute="C-rate",
                                  unit="C", edge_policy="include", n_boot=cache.N_BOOT, rng=cache.SEED)
    shown = [d.value for d in at.dataframe if "median_fit" in d.value.columns]
    assert len(shown) == 1
    pd.testing.assert_frame_equal(shown[0].reset_index(drop=True), ref.table)
    reading = compare.trend_reading(ref, label="detachment index")
    assert any(reading in m.value for m in at.markdown)
    assert "across 3 electrodes" in reading
    # both charts: x in the attribute's unit, y with the measure's unit and CI
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    titles = [(layer["encoding"]["x"].get("title"), layer["encoding"].get("y", {}).get("title"))
              for sp in specs for layer in sp.get("layer", []) if "x" in layer.get("encoding", {})]
    assert ("C-rate (C)", "median detachment index (0–1)") in titles
    assert ("C-rate (C)", "share with detachment index > 0.5 (0–1)") in titles
    assert any("counts electrodes, not particles" in c.value and "Knapp–Hartung" in c.value for c in at.caption)
    # the per-electrode table as CSV
    csv = at.get("download_button")
    assert any(b.proto.label == "Trend table (CSV)" for b in csv)
    from ui.exports import electrode_trend_csv

    back = pd.read_csv(io.BytesIO(electrode_trend_csv(ref)))
    assert list(back["value"]) == [0.0, 1.0, 5.0] and set(back["unit"]) == {"C"}
    # on a log scale the zero C-rate is left out and named (QA: a Python list in an error, and no trend at all)
    at.radio(key=state.k(state.CMP_AXIS_SCALE, "C-rate")).set_value("log").run()
    no_exception(at)
    assert not [w for w in at.warning if "log" in w.value]
    assert any(c.value == "Left out of the logarithmic axis (C-rate has no logarithm at 0 or below): pristine "
               "(SYNTHETIC) (0)." for c in at.caption)
    assert any(i.value == "A trend needs at least 3 electrodes with C-rate given above 0; 2 of the chosen electrodes "
               "have it." for i in at.info)
    at.radio(key=state.k(state.CMP_AXIS_SCALE, "C-rate")).set_value("rank").run()
    no_exception(at)
    assert any("per step up the C-rate order" in m.value for m in at.markdown)


def test_the_trend_starts_on_the_scale_the_values_lie_evenly_on_and_keeps_a_choice_per_attribute(seeded_ws):
    """QA walk 16: C-rates 0.5 / 1 / 2 / 5 were put on a straight line in the value by default, which read 'No clear
    trend' (p = 0.072) where the logarithm, which the help itself named for C-rates, read one (p = 0.011)."""
    rates = {"pristine": 0.5, "cycled-1C": 1.0, "cycled-5C": 5.0}
    for s in seeded_ws.list_samples():
        seeded_ws.set_attributes(s.id, [Attribute("C-rate", rates[s.name], "C"),
                                        Attribute("cycles", {"pristine": 0, "cycled-1C": 100}.get(s.name, 200), "-")])
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT).run()
    no_exception(at)
    rate_scale = at.radio(key=state.k(state.CMP_AXIS_SCALE, "C-rate"))
    assert rate_scale.value == "log"
    why = ("A straight line in the logarithm of C-rate: its values (0.5, 1, 5) lie more evenly on that scale, each "
           "step a similar factor")
    assert any(c.value.startswith(why) for c in at.caption)
    assert any("per tenfold C-rate" in m.value for m in at.markdown)
    # the charts (QA walk 16): the electrodes' values as the log axis's ticks, every point inside the x domain, the
    # share's axis within 0-1, and the reading in short as the title (a PNG of the chart says what it shows)
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    trend = [sp for sp in specs if "C-rate" in json.dumps(sp.get("layer", [{}])[0].get("encoding", {}).get("x", {}))]
    assert len(trend) == 2
    for sp in trend:
        x = sp["layer"][0]["encoding"]["x"]
        assert x["axis"]["values"] == [0.5, 1.0, 5.0] and x["scale"]["type"] == "log"
        assert x["scale"]["domain"][0] < 0.5 and x["scale"]["domain"][1] > 5.0
        assert "with C-rate: p = " in sp["title"] and sp["title"].endswith(", 3 electrodes")
        assert x["title"] == "C-rate (C), log scale"
        lo, hi = sp["layer"][0]["encoding"]["y"]["scale"]["domain"]
        assert 0.0 <= lo < hi <= 1.0
    # the share chart leaves its legend to the median chart beside it on the page, not in its file (QA walk 17)
    from ui.charts import BLANK_OPACITY

    shown = at.session_state[state.EXP_SHOWN]
    page_share = [sp for sp in trend if "share with" in json.dumps(sp)][0]
    assert str(BLANK_OPACITY) in json.dumps(page_share) or repr(BLANK_OPACITY) in json.dumps(page_share)
    assert "1e-06" not in json.dumps(shown["share detached vs C-rate"].to_dict())
    rate_scale.set_value("rank").run()
    assert not any(c.value.startswith(why) for c in at.caption)
    # cycles 0 / 100 / 200: a line in the value; the choice made for the C-rate is kept for it
    at.selectbox(key=state.CMP_AXIS_ATTR).set_value("cycles").run()
    no_exception(at)
    assert at.radio(key=state.k(state.CMP_AXIS_SCALE, "cycles")).value == "linear"
    at.selectbox(key=state.CMP_AXIS_ATTR).set_value("C-rate").run()
    assert at.radio(key=state.k(state.CMP_AXIS_SCALE, "C-rate")).value == "rank"


def test_the_trend_says_beside_its_reading_when_it_mixes_slices_with_volumes_and_parameters(seeded_ws):
    """QA: a trend through 2D slices and 3D volumes analysed differently was read as a finding; the page's warnings
    about all chosen electrodes stood far above it.  The axis section says it beside the trend's reading."""
    from dataclasses import replace

    import numpy as np

    from core.particles import SeparationParams
    from core.runner import run_analysis

    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT).run()
    assert not any("on this axis" in w.value or "on one line" in w.value for w in at.warning)  # the demos: alike
    first = seeded_ws.list_samples()[0]
    path = seeded_ws.root.parent / "slice.npy"
    np.save(path, np.asarray(seeded_ws.load_volume(first))[24:25])
    flat = seeded_ws.add_sample("FIB slice", str(path), spacing=first.spacing,
                                attributes=[Attribute("C-rate", 2.0, "C")])
    params = replace(seeded_ws.latest_analysis(first.id).requested, separation=SeparationParams(h_um=0.75))
    with pytest.warns(UserWarning, match="single slice"):
        run_analysis(seeded_ws, flat.id, seeded_ws.load_volume(flat), params)
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT).run()
    no_exception(at)
    assert any("across 4 electrodes" in m.value for m in at.markdown)
    said = [w.value for w in at.warning if w.value.startswith("**This trend") or "on this axis" in w.value]
    assert len(said) == 2
    assert said[0].startswith("**This trend puts single slices and volumes on one line.** FIB slice is a single "
                              "slice")
    assert said[1].startswith("**The electrodes on this axis were analysed differently.** FIB slice used h")
    # an electrode without the attribute is not on the axis and not named beside it
    seeded_ws.set_attributes(flat.id, [])
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT).run()
    assert not any(w.value.startswith("**This trend") or "on this axis" in w.value for w in at.warning)


def test_mixed_units_and_too_few_electrodes_are_explained(seeded_ws):
    _clear(seeded_ws)
    _set_rates(seeded_ws, {"pristine": 0.0, "cycled-1C": 1.0})
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT).run()
    no_exception(at)
    assert any("needs at least 3 electrodes with C-rate given; 2 of the chosen electrodes have it." in i.value
               for i in at.info)
    assert any("Left out (no C-rate given): cycled-5C (SYNTHETIC)" in c.value for c in at.caption)
    s5 = next(s for s in seeded_ws.list_samples() if s.name == "cycled-5C")
    seeded_ws.set_attributes(s5.id, [Attribute("C-rate", 5.0, "1/h")])
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT).run()
    no_exception(at)
    assert any("different units" in w.value for w in at.warning)


def test_a_count_s_unit_is_not_shown_as_a_dash(seeded_ws):
    """QA: cycles (unit "-", a count) read "cycles (-)" on the axis picker and in the table's column."""
    _clear(seeded_ws)
    for s, n in zip(seeded_ws.list_samples(), (0, 100, 200)):
        seeded_ws.set_attributes(s.id, [Attribute("cycles", n, "-")])
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT).run()
    no_exception(at)
    picker = at.selectbox(key=state.CMP_AXIS_ATTR)
    assert picker.value == "cycles" and picker.options == ["cycles"]
    [table] = [d for d in at.dataframe if "value" in d.value.columns]
    config = str(table.proto)
    assert "cycles" in config and "cycles (-)" not in config


def test_report_has_the_axis_section():
    from core.report import ReportElectrode, build_report

    import numpy as np

    rng = np.random.default_rng(0)
    tables = {f"e{i}": pd.DataFrame({"detachment": rng.normal(0.1 * i, 0.1, 60), "touches_edge": False})
              for i in range(4)}
    res = compare.electrode_trend(tables, {f"e{i}": float(i) for i in range(4)}, attribute="SOC", unit="%",
                                  rng=0, n_boot=200)
    html = build_report([ReportElectrode(n, t) for n, t in tables.items()], axis_trend=res)
    assert "Electrodes on an axis: detachment against SOC (%)" in html
    # the page's words: "median detachment index rises ..." (QA walk 18: the report read "median detachment")
    assert compare.trend_reading(res, label="detachment index").replace("'", "&#x27;") in html
    assert "Particles cut by the volume edge left out;" in html and "Edge policy" not in html
    assert 'download="trend-SOC.csv"' in html and "Knapp–Hartung" in html
    with pytest.raises(TypeError, match="axis_trend must be an ElectrodeTrend"):
        build_report([], axis_trend=res.table)


def test_the_axis_charts_colour_each_electrode_as_the_page_s_other_charts_do(seeded_ws):
    """QA: the axis charts coloured the electrodes in their attribute order, the other charts in the page's."""
    _set_rates(seeded_ws, {"pristine": 5.0, "cycled-1C": 1.0, "cycled-5C": 0.0})  # the axis order reversed
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT).run()
    no_exception(at)
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]

    def domains(spec):
        cols = [d.get("color") for d in nested_dicts(spec)]
        return {tuple(c["scale"]["domain"]) for c in cols
                if isinstance(c, dict) and c.get("field") == "electrode" and "domain" in c.get("scale", {})}

    page_order = tuple(f"{s.name} (SYNTHETIC)" for s in seeded_ws.list_samples())
    axis = [sp for sp in specs if "C-rate (C)" in json.dumps(sp)]
    assert len(axis) == 2 and all(domains(sp) == {page_order} for sp in axis)
    assert domains(specs[0]) == {page_order}  # the first distribution chart
