"""ui.sections: the isolated-particles and segmentation-uncertainty sections, run from a tiny script."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core import connectivity, uncertainty
from core.pipeline import AnalysisParams
from core.uncertainty import SweepParams
from ui import sections, state

from apphelpers import TIMEOUT, chart_data, chart_specs, no_exception

VARIANTS = ("low+", "h-")  # two variants keep the sweep short


def script():
    import streamlit as st

    from core.uncertainty import SweepParams
    from ui import cache, sections

    ws = cache.workspace()
    ids = [s.id for s in ws.list_samples()]
    sections.isolation_section(ws, ids, name_of=lambda i: f"electrode {i}")
    sections.uncertainty_section(ws, ids, name_of=lambda i: f"electrode {i}",
                                 options=SweepParams(variants=("low+", "h-")),
                                 edge_policy=st.session_state.get("edge", "include"),
                                 min_diameter_um=st.session_state.get("min_d", 0.0))


def run_app(**page):
    at = AppTest.from_function(script, default_timeout=TIMEOUT)
    for k, v in page.items():
        at.session_state[k] = v
    return at.run()


def test_isolation_section_matches_core(seeded_ws):
    at = run_app()
    no_exception(at)
    assert [h.value for h in at.subheader] == ["Isolated particles", "Segmentation uncertainty"]
    shown = at.dataframe[0].value
    samples = seeded_ws.list_samples()
    assert shown["electrode"].tolist() == [f"electrode {s.id}" for s in samples]
    for s, (_, row) in zip(samples, shown.iterrows()):
        a = seeded_ws.latest_analysis(s.id)
        p = AnalysisParams.from_dict(a.resolved_params)
        g = connectivity.contact_graph(seeded_ws.load_labels(a), seeded_ws.load_phases(a), s.spacing,
                                       axis=p.axis, separator_side=p.separator_side)
        assert row["n particles"] == len(seeded_ws.load_table(a)) == g.summary.n_particles
        assert row["isolated"] == g.summary.n_isolated
        assert row["share isolated (volume)"] == pytest.approx(g.summary.share_isolated_volume)
    specs = chart_specs(at)
    assert specs[0]["layer"][0]["encoding"]["x"]["title"] == "share of particles isolated (0–1)"
    assert specs[1]["encoding"]["x"]["title"].startswith("depth (0 = separator side")
    bars = next(iter(chart_data(at, 0).values()))
    assert set(bars["weighting"]) == {"by number", "by volume"}
    numbers = bars[bars["weighting"] == "by number"]
    assert numbers["label"].tolist() == [f"{k} of {n}" for k, n in zip(shown["isolated"], shown["n particles"])]
    volumes = bars[bars["weighting"] == "by volume"]
    assert volumes["label"].tolist() == [sections.volume_share_text(v) for v in shown["share isolated (volume)"]]
    assert all(t.endswith("of the volume") for t in volumes["label"])
    assert [sections.volume_share_text(v) for v in (0.0, 0.0042, 0.25)] == [
        "none of the volume", "0.42 % of the volume", "25 % of the volume"]
    depth = next(iter(chart_data(at, 1).values()))
    assert set(depth["electrode"]) == set(shown["electrode"])
    assert depth.groupby("electrode")["n_particles"].sum().to_dict() == dict(
        zip(shown["electrode"], shown["n particles"]))


def test_sweep_runs_on_click_and_is_kept(seeded_ws):
    at = run_app()
    no_exception(at)
    assert any(i.value.startswith("Not swept yet") for i in at.info)
    assert len(at.get("vega_lite_chart")) == 2  # no sweep chart yet
    button = at.button(key=state.UNC_RUN)
    assert "3 electrodes, 6 runs" in button.label
    button.click().run()
    no_exception(at)
    assert not at.error
    assert len(at.get("vega_lite_chart")) == 3
    table = at.dataframe[1].value
    assert len(table) == 3 and (table["highest median"] >= table["lowest median"]).all()
    # the section shows what core computes from the stored analysis
    s = seeded_ws.list_samples()[1]
    a = seeded_ws.latest_analysis(s.id)
    direct = uncertainty.sweep(seeded_ws.load_volume(s), AnalysisParams.from_dict(a.resolved_params),
                               spacing=s.spacing, options=SweepParams(variants=VARIANTS),
                               baseline_phases=seeded_ws.load_phases(a), baseline_table=seeded_ws.load_table(a))
    row = table.set_index("electrode").loc[f"electrode {s.id}"]
    assert row["median detachment"] == pytest.approx(direct.baseline.median_detachment)
    assert row["lowest median"] == pytest.approx(direct.spread.median_min)
    assert row["highest median"] == pytest.approx(direct.spread.median_max)
    assert row["max |Δ median|"] == pytest.approx(direct.spread.max_deviation)
    # kept in the workspace, next to the analysis
    stored = list(seeded_ws.analysis_dir(a.id).glob("sweep-*.json"))
    assert len(stored) == 1
    assert uncertainty.SweepResult.from_dict(json.loads(stored[0].read_text())) == direct
    # a new session shows it without running anything
    again = run_app()
    no_exception(again)
    assert not again.button and len(again.get("vega_lite_chart")) == 3
    runs = chart_data(again, 2)
    variants = next(d for d in runs.values() if "variant" in d.columns)
    assert sorted(set(variants["variant"])) == sorted(VARIANTS)
    assert not any("every particle" in c.value for c in again.caption)
    # the page leaves out edge particles and fines: the sweep's medians (of every particle) are said to differ
    for edge, min_d, said in (("exclude", 0.0, "leave out the particles cut by the volume edge"),
                              ("include", 2.0, "leave out particles under 2 µm"),
                              ("miles", 1.5, "leave out particles under 1.5 µm or the particles cut by the volume "
                                             "edge")):
        other = run_app(edge=edge, min_d=min_d)
        no_exception(other)
        [note] = [c.value for c in other.caption if "every particle" in c.value]
        assert f"they do not {said}, so" in note, note
        assert {"n particles (all)", "median (all)"} <= set(other.dataframe[1].value.columns)



def test_a_sweep_of_phases_given_as_input_varies_the_separation_only(empty_ws, env):
    """An already-segmented volume has no thresholds to vary: its sweep runs the separation variant from its
    phases (it failed as a job, asking for resolved thresholds) and its threshold columns stay empty."""
    from core.codes import CBD, NMC, PORE
    from core.io import save_tiff
    from core.runner import run_analysis
    from core.synth import demo_electrode

    e = demo_electrode("cycled-1C", rng=0, shape=(48, 48, 48))
    path = env / "data" / "labels.tif"
    save_tiff(path, e.phases, e.spacing)
    s = empty_ws.add_sample("labels", str(path), spacing=e.spacing,
                            source_options={"phase_map": f"{PORE}=pore,{CBD}=cbd,{NMC}=nmc"})
    run_analysis(empty_ws, s.id)
    at = run_app()
    no_exception(at)
    button = at.button(key=state.UNC_RUN)
    assert "1 electrode, 1 run)" in button.label
    button.click().run()
    no_exception(at)
    assert not at.error
    table = at.dataframe[1].value
    row = table.iloc[0]
    assert row["n particles"] == len(empty_ws.load_table(empty_ws.latest_analysis(s.id)))
    # no threshold varied: those columns (empty: "None" in the browser) left out, and said why
    assert "max |Δ| thresholds" not in table.columns and "threshold step (grey)" not in table.columns
    assert f"No thresholds varied for electrode {s.id}: its phases were read from the input (already segmented), " \
           "so only the particle separation h was moved." in [c.value for c in at.caption]
    assert row["max |Δ| separation"] >= 0 and row["h step (µm)"] > 0
    # beside a greyscale electrode: the columns stay, its cells empty, said
    demo = empty_ws.add_sample("demo", "demo:pristine", spacing=(0.4, 0.4, 0.4),
                               source_options={"shape": [48, 48, 48], "seed": 0})
    run_analysis(empty_ws, demo.id)
    at = run_app()
    at.button(key=state.UNC_RUN).click().run()
    no_exception(at)
    table = at.dataframe[1].value.set_index("electrode")
    assert np.isnan(table.loc[f"electrode {s.id}", "max |Δ| thresholds"])
    assert table.loc[f"electrode {demo.id}", "max |Δ| thresholds"] >= 0
    assert any(c.value.endswith("so only the particle separation h was moved; their threshold cells are empty.")
               for c in at.caption)


def test_a_single_slice_across_its_thickness_axis_has_no_isolation_said(seeded_ws, env):
    """A slice analysed with the thickness axis it lies across: every particle touched "the collector", so the
    section said 0 isolated of 137; it is left out with one sentence saying why and what to choose."""
    from core.io import save_tiff
    from core.runner import run_analysis

    demo = seeded_ws.list_samples()[0]
    grey = np.ascontiguousarray(seeded_ws.load_volume(demo)[20:21])
    save_tiff(env / "data" / "slice.tif", grey, demo.spacing)
    s = seeded_ws.add_sample("face", str(env / "data" / "slice.tif"), spacing=demo.spacing, axis=0)
    run_analysis(seeded_ws, s.id)
    at = run_app()
    no_exception(at)
    assert f"electrode {s.id}: a single slice across its thickness axis (z), so no path to the current collector " \
           "can be followed in it; for a cross-section, choose its in-plane thickness axis on the Samples page and " \
           "analyse it again." in [c.value for c in at.caption]
    assert f"electrode {s.id}" not in at.dataframe[0].value["electrode"].tolist()
    assert len(at.dataframe[0].value) == 3

def test_electrode_without_analysis(seeded_ws):
    from core.workspace import DEMO_PREFIX

    sample = seeded_ws.add_sample("fresh", f"{DEMO_PREFIX}pristine", spacing=(0.4, 0.4, 0.4),
                                  source_options={"shape": [32, 32, 32], "seed": 5})
    at = run_app()
    no_exception(at)
    assert sum(f"Not analysed yet: electrode {sample.id}." in c.value for c in at.caption) == 2
    assert len(at.dataframe[0].value) == 3


def test_no_analysed_electrode(empty_ws):
    at = run_app()
    no_exception(at)
    assert [i.value for i in at.info] == ["No analysed electrode chosen.", "No analysed electrode to sweep."]


def test_chart_builders_leave_out_empty_bins():
    from ui.sections import isolation_depth_chart

    depth = connectivity.depth_table({})
    depth.loc[0] = ["a", 0.0, 0.5, 0, 0, np.nan, np.nan]
    depth.loc[1] = ["a", 0.5, 1.0, 2, 1, 0.5, 0.4]
    chart = isolation_depth_chart(depth)
    assert chart.data["depth_mid"].tolist() == [0.75]
    # given the page's electrodes, "a" keeps its colour there (the 2nd) and the legend lists only those drawn
    colour = isolation_depth_chart(depth, order=["slice", "a"]).to_dict()["encoding"]["color"]
    assert colour["scale"] == {"scheme": "tableau10", "domain": ["slice", "a"]} and colour["legend"]["values"] == ["a"]


def test_band_charts_size_by_step_and_keep_an_axis_when_nothing_is_isolated():
    """A fixed height with one band per electrode collapsed the bands in Chromium: the charts use a step."""
    summary = pd.DataFrame({"electrode": ["a", "b"], "n_isolated": [0, 0], "n_particles": [10, 12],
                            "share_isolated": [0.0, 0.0], "share_isolated_volume": [0.0, 0.0]})
    spec = sections.isolation_chart(summary).to_dict()
    assert spec["height"] == {"step": 26}
    x = spec["layer"][0]["encoding"]["x"]
    assert x["scale"]["domain"][1] > 0  # an all-zero share still has an axis to draw on
    spread = pd.DataFrame({"electrode": ["a"], "median_detachment": [0.2], "median_min": [0.1],
                           "median_max": [0.3], "n_particles": [10]})
    runs = pd.DataFrame({"electrode": ["a"], "variant": ["low-"], "parameter": ["low"], "median_detachment": [0.1],
                         "deviation": [-0.1], "n_particles": [10], "low": [1.0], "high": [2.0], "h_um": [0.5]})
    assert sections.uncertainty_chart(spread, runs).to_dict()["height"] == {"step": 40}


def test_the_compare_page_s_size_filter_reaches_the_isolated_particles(seeded_ws):
    """QA walk 8: with *Smallest particle counted* set, the summary left the specks out but the isolation section
    still counted them (4 of 6 isolated particles were specks of 1-27 voxels)."""
    from apphelpers import page

    min_d = 6.0
    at = AppTest.from_file(page("4_compare.py"), default_timeout=TIMEOUT).run()
    at.number_input(key=state.CMP_MIN_DIAMETER).set_value(min_d).run()
    no_exception(at)
    [shown] = [d.value for d in at.dataframe if "n particles" in d.value.columns]
    for s in seeded_ws.list_samples():
        a = seeded_ws.latest_analysis(s.id)
        t = seeded_ws.load_table(a)
        big = t.loc[t["equiv_diameter_um"] >= min_d, "label"].to_numpy()
        assert 0 < len(big) < len(t)
        p = AnalysisParams.from_dict(a.resolved_params)
        g = connectivity.contact_graph(seeded_ws.load_labels(a), seeded_ws.load_phases(a), s.spacing,
                                       axis=p.axis, separator_side=p.separator_side)
        row = shown[shown["electrode"].str.startswith(s.name)].iloc[0]
        assert row["n particles"] == len(big)
        assert row["isolated"] == int((~g.particles.set_index("label").loc[big, "connected"]).sum())
    assert any(f"Particles under {min_d:g} µm (the page's smallest particle counted) are not counted" in c.value
               for c in at.caption)
