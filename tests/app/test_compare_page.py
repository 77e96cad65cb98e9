"""Compare page: summary per electrode, overlaid distributions (histogram / ECDF), scatters, slices."""

from __future__ import annotations

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ui import state

from apphelpers import TIMEOUT, chart_data, no_exception, page

PAGE = page("4_Compare.py")


def _specs(at):
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def _x_titles(at):
    out = []
    for spec in _specs(at):
        enc = spec.get("encoding") or spec.get("layer", [{}])[0].get("encoding", {})
        out.append(enc.get("x", {}).get("title"))
    return out


def test_summary_distributions_and_slices(seeded_ws):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    no_exception(at)
    samples = seeded_ws.list_samples()
    summary = at.dataframe[0].value
    assert list(summary["electrode"]) == [f"{s.name} (SYNTHETIC)" for s in samples]
    for s, (_, row) in zip(samples, summary.iterrows()):
        t = seeded_ws.load_table(seeded_ws.latest_analysis(s.id))
        det = t["detachment"].dropna()
        assert row["n particles"] == len(t)
        assert row["median detachment"] == pytest.approx(det.median())
        assert row["IQR detachment"] == pytest.approx(det.quantile(0.75) - det.quantile(0.25))
    # the more cycled demo detaches more
    med = dict(zip(summary["electrode"], summary["median detachment"]))
    assert med["cycled-5C (SYNTHETIC)"] > med["pristine (SYNTHETIC)"]
    titles = _x_titles(at)
    assert titles[0].startswith("detachment index")            # distribution
    assert titles[1] == "equivalent diameter (µm)"               # scatter 1
    assert titles[2].startswith("depth (0 = separator side")    # scatter 2
    assert titles[3].startswith("detachment index")            # colour bar under the slices
    hist = next(iter(chart_data(at, 0).values()))
    assert set(hist["electrode"]) == set(summary["electrode"])
    for _, g in hist.groupby("electrode"):
        assert g["share"].sum() == pytest.approx(1.0)
    # one slice per electrode at the same depth, on the shared scale
    assert len(at.image) == 3
    assert all("(depth 0.50" in img.proto.imgs[0].caption for img in at.image)
    at.slider(key=state.CMP_DEPTH).set_value(0.1).run()
    no_exception(at)
    assert all("(depth 0.10" in img.proto.imgs[0].caption for img in at.image)
    assert all(" z = 5 " in img.proto.imgs[0].caption for img in at.image)  # round(0.1 * 47)


def test_ecdf_toggle_and_metric_choice(seeded_ws):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.radio(key=state.CMP_KIND).set_value("ecdf").run()
    no_exception(at)
    spec = _specs(at)[0]
    assert spec["transform"][0]["window"][0]["op"] == "cume_dist"
    assert spec["encoding"]["y"]["title"].startswith("share of particles ≤ value")
    at.selectbox(key=state.CMP_METRIC).select("equiv_diameter_um").run()
    no_exception(at)
    assert _x_titles(at)[0] == "equivalent diameter (µm)"


def test_needs_two_electrodes(seeded_ws):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    first = seeded_ws.list_samples()[0].id
    at.multiselect(key=state.CMP_SAMPLES).set_value([first]).run()
    no_exception(at)
    assert any("at least two" in i.value for i in at.info)
    assert not at.image


def test_too_few_analysed(empty_ws):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    no_exception(at)
    assert any("at least two analysed samples" in i.value for i in at.info)


def test_detachment_colours_share_one_scale():
    from ui.render import label_colour_table, value_colours

    c = value_colours(np.array([0.0, 0.5, 1.0, np.nan]))
    assert tuple(c[3]) == (200, 200, 200)
    t = label_colour_table(np.array([1, 2]), np.array([0.0, 1.0]), 2)
    assert (t[1] == value_colours(np.array([0.0]))[0]).all() and (t[2] == c[2]).all()
