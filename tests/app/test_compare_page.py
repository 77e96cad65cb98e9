"""Compare page: summary with CIs, weighted distributions (histogram / ECDF / box / violin, small multiples),
pairwise tests, trends with n per bin, edge policy, slices on one colour scale."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core import compare
from ui import state

from apphelpers import TIMEOUT, chart_data, chart_specs, classifier_sample, no_exception, page

PAGE = page("4_compare.py")


def _table(at, column: str):
    """The shown DataFrame that has this column (summary: share_above, quantiles: q95, tests: mwu_p_holm); the
    electrode axis' table (the demo electrodes come with their C-rates; it has a share_above too) not counted."""
    found = [d.value for d in at.dataframe if column in d.value.columns and "median_fit" not in d.value.columns]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    return found[0]


def _title(spec: dict, channel: str):
    """The first title of an x / y encoding in a chart, its facet's inner chart or its layers."""
    spec = spec.get("spec", spec)  # facet
    for part in [spec, *spec.get("layer", [])]:
        title = part.get("encoding", {}).get(channel, {}).get("title")
        if title:
            return title
    return None


def _x_title(spec: dict):
    return _title(spec, "x")


def _y_title(spec: dict):
    return _title(spec, "y")


def _stored(ws):
    return {f"{s.name} (SYNTHETIC)": ws.load_table(ws.latest_analysis(s.id)) for s in ws.list_samples()}


def test_summary_distribution_tests_trends_and_slices(seeded_ws):
    for s in seeded_ws.list_samples():  # the charts counted below in order: no electrode axis (test_electrode_axis)
        seeded_ws.set_attributes(s.id, [])
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    no_exception(at)
    stored = _stored(seeded_ws)
    assert at.radio(key=state.CMP_EDGE).value == "include"        # the default, explained in the caption
    summary = _table(at, "share_above")
    assert list(summary["electrode"]) == list(stored)
    for _, row in summary.iterrows():
        t = stored[row["electrode"]]
        det = t["detachment"].dropna()
        assert row["n_particles"] == row["n_used"] == len(t) and row["n_valid"] == len(det)
        assert row["median"] == pytest.approx(det.median())
        assert row["iqr"] == pytest.approx(det.quantile(0.75) - det.quantile(0.25))
        assert row["median_ci_lo"] <= row["median"] <= row["median_ci_hi"]
        assert row["share_above"] == pytest.approx((det > 0.5).mean())
        assert row["share_ci_lo"] <= row["share_above"] <= row["share_ci_hi"]
    med = dict(zip(summary["electrode"], summary["median"]))
    assert med["cycled-5C (SYNTHETIC)"] > med["pristine (SYNTHETIC)"]

    # charts: distribution, then per trend (median + CI, spread, counts) twice, then the colour bar;
    # after them the isolated-particle charts (tested in test_sections.py)
    specs = chart_specs(at)
    assert len(specs) >= 8
    titles = [_x_title(s) for s in specs]
    assert titles[0].startswith("detachment index")
    assert titles[1] == "equivalent diameter (µm); median of each bin"
    assert titles[2] == titles[3] == "equivalent diameter (µm)"
    assert titles[4].startswith("depth (0 = separator side")
    assert titles[7].startswith("detachment index")
    assert _y_title(specs[1]).startswith("median detachment index (0–1), 95 % CI")
    assert _y_title(specs[3]) == "particles per bin (count)"
    hist = next(iter(chart_data(at, 0).values()))
    assert set(hist["electrode"]) == set(summary["electrode"])
    for _, g in hist.groupby("electrode"):
        assert g["share"].sum() == pytest.approx(1.0)

    # pairwise tests of the chosen measure: three pairs, Holm-adjusted, with a reading per pair
    tests = _table(at, "mwu_p_holm")
    assert len(tests) == 3
    # p-values written as the readings write them (QA walk 16: the table's own format mixed "0.0000025" and "6.9e-22")
    assert list(tests["mwu_p_holm"]) == [compare.p_text(p) for p in compare.holm(tests["mwu_p"].to_numpy())]
    assert all(compare.p_text(float(v)) == v for v in tests["ks_p_holm"])
    a, b = stored["pristine (SYNTHETIC)"]["detachment"].dropna(), stored["cycled-5C (SYNTHETIC)"]["detachment"].dropna()
    row = tests[(tests["electrode_a"] == "pristine (SYNTHETIC)") & (tests["electrode_b"] == "cycled-5C (SYNTHETIC)")]
    assert row["cliffs_delta"].iloc[0] == pytest.approx(compare.cliffs_delta(a, b))
    assert row["median_diff"].iloc[0] == pytest.approx(a.median() - b.median())
    readings = [m.value for m in at.markdown if "vs" in m.value and "Mann–Whitney" in m.value]
    assert len(readings) == 1 and readings[0].count("\n- ") == 2

    # every trend bin of the tiny (48^3) demos holds fewer than 10 particles: flagged and warned about
    n_bins = at.slider(key=state.CMP_TREND_BINS).value
    trend = chart_data(at, 1)
    assert any(f": {3 * n_bins} of {3 * n_bins} bins have fewer than 10 particles" in w.value
               for w in at.warning)
    assert all(d["low_n"].all() for d in trend.values() if "low_n" in d)

    # one slice per electrode at the same depth, on the shared scale
    assert len(at.image) == 3
    assert all("(depth 0.50" in img.proto.imgs[0].caption for img in at.image)
    at.slider(key=state.CMP_DEPTH).set_value(0.1).run()
    no_exception(at)
    assert all("(depth 0.10" in img.proto.imgs[0].caption for img in at.image)
    # the depth runs over each electrode's slices found (its analysis's depth_extent), as the table's depth_frac
    want = []
    for x in seeded_ws.list_samples():
        first, last = seeded_ws.latest_analysis(x.id).provenance["depth_extent"]
        want.append(f"z = {round(first + 0.1 * (last - first))} (depth 0.10")
    assert [w in img.proto.imgs[0].caption for w, img in zip(want, at.image)] == [True] * 3


def test_metric_and_weighting_change_the_shown_tables(seeded_ws):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    stored = _stored(seeded_ws)
    at.selectbox(key=state.CMP_METRIC).select("equiv_diameter_um").run()
    no_exception(at)
    assert _x_title(chart_specs(at)[0]) == "equivalent diameter (µm)"
    q = _table(at, "q95").set_index("electrode")
    for name, t in stored.items():
        assert q.loc[name, "median"] == pytest.approx(t["equiv_diameter_um"].median())
    tests = _table(at, "mwu_p_holm")       # the tests follow the chosen measure
    assert tests["reading"].str.contains("equivalent diameter").all()
    assert _table(at, "share_above")["median"].tolist() == pytest.approx(
        [t["detachment"].median() for t in stored.values()])   # the summary stays on detachment

    at.radio(key=state.CMP_WEIGHTING).set_value("volume").run()
    no_exception(at)
    qv = _table(at, "q95").set_index("electrode")
    for name, t in stored.items():
        want = compare.weighted_quantile(t["equiv_diameter_um"], 0.5, t["volume_um3"])
        assert qv.loc[name, "median"] == pytest.approx(want)
        assert qv.loc[name, "median"] > q.loc[name, "median"]       # big particles carry the volume
    assert "share of particle volume per bin" in _y_title(chart_specs(at)[0])


@pytest.mark.parametrize("kind", ["ecdf", "box", "violin"])
def test_chart_kinds(seeded_ws, kind):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.radio(key=state.CMP_KIND).set_value(kind).run()
    no_exception(at)
    spec = chart_specs(at)[0]
    data = chart_data(at, 0)
    if kind == "ecdf":
        assert spec["mark"]["interpolate"] == "step-after"
        assert spec["encoding"]["y"]["title"].startswith("share of particles ≤ value")
        e = next(iter(data.values()))
        assert e.groupby("electrode")["ecdf"].max().tolist() == pytest.approx([1.0] * 3)
    elif kind == "box":
        assert [layer["mark"]["type"] for layer in spec["layer"]] == ["rule", "bar", "tick"]
        assert spec["layer"][0]["encoding"]["y"]["title"].startswith("detachment index")
        assert [c for c in at.caption if "whiskers: 5–95 %" in c.value]
    else:
        assert spec["facet"]["field"] == "electrode" and spec["columns"] == 3  # (up to 4 a row: ui.charts)
        assert spec["spec"]["layer"][0]["mark"]["type"] == "area"
        d = data[spec["data"]["name"]].dropna(subset=["density"])
        assert (d["lo"] == -d["hi"]).all() and (d["hi"] > 0).all()     # symmetric about the centre line


def test_small_multiples(seeded_ws):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.checkbox(key=state.CMP_FACET).check().run()
    no_exception(at)
    spec = chart_specs(at)[0]
    assert spec["facet"]["field"] == "electrode" and spec["columns"] == 3
    assert spec["spec"]["encoding"]["x"]["title"].startswith("detachment index")


def test_edge_policy_changes_the_particles_and_warns_when_too_few_remain(seeded_ws):
    stored = _stored(seeded_ws)
    inner = {n: int((~t["touches_edge"]).sum()) for n, t in stored.items()}
    assert min(inner.values()) < 2       # the 48^3 demos are mostly cut by the edge
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.radio(key=state.CMP_EDGE).set_value("exclude").run()
    no_exception(at)
    name = min(inner, key=inner.get)
    warnings = [w.value for w in at.warning]
    assert any(f"Electrode '{name}' has {inner[name]} particle" in w and "edge particles excluded" in w
               for w in warnings), warnings
    assert not [d for d in at.dataframe if "share_above" in d.value.columns]   # no summary: a warning instead


def test_exclude_and_miles_on_electrodes_with_inner_particles(fine_ws):
    analyses = {s.name: fine_ws.latest_analysis(s.id) for s in fine_ws.list_samples()}
    stored = {n: fine_ws.load_table(a) for n, a in analyses.items()}
    inner = {n: ~t["touches_edge"].to_numpy() for n, t in stored.items()}
    assert all(m.sum() >= 5 for m in inner.values())
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.radio(key=state.CMP_EDGE).set_value("exclude").run()
    no_exception(at)
    s = _table(at, "share_above").set_index("electrode")
    tests = _table(at, "mwu_p_holm").iloc[0]
    for n, t in stored.items():
        assert s.loc[n, "n_used"] == inner[n].sum() < len(t) == s.loc[n, "n_particles"]
        assert s.loc[n, "median"] == pytest.approx(np.nanmedian(t["detachment"].to_numpy()[inner[n]]))
    assert (tests["n_a"], tests["n_b"]) == (inner["fine-0"].sum(), inner["fine-1"].sum())
    assert tests["differs"] and "higher in fine-1" in tests["reading"]   # planted: 0.1 vs 0.4

    at.selectbox(key=state.CMP_METRIC).select("equiv_diameter_um").run()
    at.radio(key=state.CMP_EDGE).set_value("miles").run()
    no_exception(at)
    q = _table(at, "q95").set_index("electrode")
    for n, t in stored.items():
        prov = analyses[n].provenance
        window = np.asarray(prov["input_shape"]) * np.asarray(prov["spacing_um"])
        w = compare.particle_weights(t, edge_policy="miles", window_um=window)
        assert w.extent_source == "bbox" and q.loc[n, "n_used"] == inner[n].sum()
        want = compare.weighted_quantile(t["equiv_diameter_um"], 0.5, w.weights)
        assert q.loc[n, "median"] == pytest.approx(want)
        plain = np.median(t["equiv_diameter_um"].to_numpy()[inner[n]])
        assert q.loc[n, "median"] > plain        # the correction favours the large particles
    assert "edge-corrected" in _y_title(chart_specs(at)[0])


def test_miles_weights_use_a_circular_field_of_view(env):
    """Two scans whose corners outside a disc hold a fill (held as no material): the Miles–Lantuéjoul weights of
    their distributions are the disc's (:func:`core.compare.disc_share`), read from each analysis's record."""
    import warnings

    from core.io import save_tiff
    from core.runner import run_analysis
    from core.synth import demo_electrode
    from core.workspace import Workspace

    ws = Workspace(env / "ws")
    yy, xx = np.mgrid[:96, :96]
    for i, name in enumerate(("pristine", "cycled-5C")):
        g = demo_electrode(name, rng=30 + i, shape=(32, 96, 96)).greyscale.copy()
        g[:, (yy - 47.5) ** 2 + (xx - 47.5) ** 2 > 48**2] = 0
        save_tiff(env / "data" / f"fov{i}.tif", g, (0.4, 0.4, 0.4))
        s = ws.add_sample(f"fov-{i}", str(env / "data" / f"fov{i}.tif"), spacing=0.4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run_analysis(ws, s.id, ws.load_volume(s))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.selectbox(key=state.CMP_METRIC).select("equiv_diameter_um").run()
    at.radio(key=state.CMP_EDGE).set_value("miles").run()
    no_exception(at)
    q = _table(at, "q95").set_index("electrode")
    for s in ws.list_samples():
        a = ws.latest_analysis(s.id)
        t = ws.load_table(a)
        radius = a.provenance["fill"]["disc_radius_um"]
        assert radius == pytest.approx(0.4 * 48, rel=0.01)
        window = np.asarray(a.provenance["input_shape"]) * 0.4
        w = compare.particle_weights(t, edge_policy="miles", window_um=window, disc_radius_um=radius)
        box = compare.particle_weights(t, edge_policy="miles", window_um=window)
        assert q.loc[s.name, "median"] == pytest.approx(compare.weighted_quantile(t["equiv_diameter_um"], 0.5,
                                                                                  w.weights))
        assert (w.weights >= box.weights).all() and (w.weights > box.weights).any()


def test_needs_two_electrodes(seeded_ws):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    first = seeded_ws.list_samples()[0].id
    at.multiselect(key=state.CMP_SAMPLES).set_value([first]).run()
    no_exception(at)
    assert any("at least two" in i.value for i in at.info)
    assert not at.image


def test_too_few_analysed(empty_ws, env):
    """The hint says what to do next: add electrodes where there are fewer than two, analyse them where not."""
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    no_exception(at)
    [hint] = [i.value for i in at.info if "at least two analysed samples" in i.value]
    assert "Add electrodes on the **Samples** page" in hint
    for name in ("a", "b", "c"):
        empty_ws.add_sample(name, "demo:pristine", spacing=0.4)
    at.run()
    [hint] = [i.value for i in at.info if "at least two analysed samples" in i.value]
    assert "or all 3 not analysed with *Analyse all* in the sidebar" in hint


def test_detachment_colours_share_one_scale():
    from ui.render import label_colour_table, value_colours

    c = value_colours(np.array([0.0, 0.5, 1.0, np.nan]))
    assert tuple(c[3]) == (200, 200, 200)
    t = label_colour_table(np.array([1, 2]), np.array([0.0, 1.0]), 2)
    assert (t[1] == value_colours(np.array([0.0]))[0]).all() and (t[2] == c[2]).all()


def test_outlines_widen_for_a_big_slice_and_stay_inside_their_particle():
    from ui.render import outline_width, outlines

    assert outline_width((96, 96)) == 1 and outline_width((400, 300)) == 1
    assert outline_width((754, 1012)) == 3 and outline_width((2048, 2048)) == 6
    lab = np.zeros((20, 20), np.int32)
    lab[4:16, 4:16] = 1
    one, three = outlines(lab), outlines(lab, 3)
    assert one.sum() == 44 and (one <= three).all()  # the 12x12 square's inner ring, inside the wider one
    assert three.sum() == 144 - 36 and not three[lab == 0].any()  # three rings, all on the particle


def test_size_filter_leaves_small_particles_out_of_the_statistics(seeded_ws):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    no_exception(at)
    stored = _stored(seeded_ws)
    assert at.number_input(key=state.CMP_MIN_DIAMETER).value == 0.0
    d = float(np.median(np.concatenate([t["equiv_diameter_um"].to_numpy() for t in stored.values()])))
    at.number_input(key=state.CMP_MIN_DIAMETER).set_value(round(d, 1)).run()
    no_exception(at)
    summary = _table(at, "share_above")
    for _, row in summary.iterrows():
        t = stored[row["electrode"]]
        kept = t[t["equiv_diameter_um"] >= round(d, 1)]
        assert 0 < row["n_particles"] == len(kept) < len(t)
        assert row["median"] == pytest.approx(kept["detachment"].dropna().median())
    note = next(c.value for c in at.caption if c.value.startswith("Left out below"))
    for name, t in stored.items():
        assert f"{name} {int((t['equiv_diameter_um'] < round(d, 1)).sum())}" in note


def test_the_default_electrodes_follow_the_analyses_until_the_user_picks(seeded_ws):
    """An electrode analysed while the page is open (a demo's job finishing) joins the default selection; once the
    user has picked, a rerun keeps their pick."""
    from core.runner import run_analysis

    late = next(s for s in seeded_ws.list_samples() if s.name == "cycled-5C")
    seeded_ws.delete_analysis(seeded_ws.latest_analysis(late.id).id)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    no_exception(at)
    pick = at.multiselect(key=state.CMP_SAMPLES)
    assert len(pick.value) == 2 and late.id not in pick.value
    run_analysis(seeded_ws, late.id, seeded_ws.load_volume(late))
    at.run()
    no_exception(at)
    assert at.multiselect(key=state.CMP_SAMPLES).value[-1] == late.id
    assert len(_table(at, "share_above")) == 3
    at.multiselect(key=state.CMP_SAMPLES).unselect(late.id).run()
    at.run()  # a rerun (as a finished job triggers) leaves the user's pick alone
    no_exception(at)
    assert late.id not in at.multiselect(key=state.CMP_SAMPLES).value
    assert len(_table(at, "share_above")) == 2


def test_a_drifting_scan_analysed_without_flattening_is_named_by_the_depth_trends():
    from types import SimpleNamespace as NS

    from ui.compare_view import drift_note

    a = lambda shading: NS(provenance={} if shading is None else {"shading": shading})  # noqa: E731
    ctx = NS(samples={"steady": (None, a({"drift": 0.02, "warn": False, "flattened": False})),
                      "old": (None, a(None)),
                      "drifting": (None, a({"drift": 0.29, "warn": True, "flattened": False})),
                      "flattened": (None, a({"drift": 0.31, "warn": True, "flattened": True}))})
    text = drift_note(ctx)
    assert text.startswith("The scan of drifting (29%) drifts in brightness along z") and "Flatten the drift" in text
    assert "flattened (" not in text and "steady" not in text
    assert drift_note(NS(samples={"steady": ctx.samples["steady"]})) == ""
    # a brush-stroke classifier scales each z-slice by its own grey values: its drift is not named
    painted = NS(provenance={"shading": {"drift": 0.3, "warn": True, "flattened": False}},
                 resolved=NS(method="classifier"))
    assert drift_note(NS(samples={"painted": (None, painted)})) == ""
    network = NS(provenance=painted.provenance, resolved=NS(method="model"))
    assert drift_note(NS(samples={"net": (None, network)})).startswith("The scan of net (30%) drifts")


def test_a_link_keeps_the_choices_that_change_the_numbers(seeded_ws):
    """The edge policy, the smallest particle counted and the detached cut are in the page's link: a reload or a
    colleague opening it sees the same medians (it kept the electrodes only: 'leave out' came back as 'include',
    pristine's n from 170 to 364)."""
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.query_params["edge"] = "exclude"
    at.query_params["min_d"] = "1.5"
    at.query_params["cut"] = "0.3"
    at.run()
    no_exception(at)
    assert at.radio(key=state.CMP_EDGE).value == "exclude"
    assert at.number_input(key=state.CMP_MIN_DIAMETER).value == 1.5
    assert at.slider(key=state.CMP_CUT).value == pytest.approx(0.3)
    seven = AppTest.from_file(PAGE, default_timeout=TIMEOUT)  # 7 * 0.05 = 0.35000000000000003: read as 0.35
    seven.query_params["cut"] = "0.35"
    seven.run()
    assert seven.slider(key=state.CMP_CUT).value == 0.35
    at.radio(key=state.CMP_EDGE).set_value("miles").run()
    assert list(at.query_params["edge"]) in (["miles"], list("miles"))
    at.radio(key=state.CMP_EDGE).set_value("include").run()  # the default: out of the link
    assert "edge" not in at.query_params and at.query_params["cut"]
    fresh = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()  # no link: the defaults, none in the URL
    assert fresh.radio(key=state.CMP_EDGE).value == "include" and "edge" not in fresh.query_params
    bad = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    bad.query_params["edge"], bad.query_params["cut"] = "sideways", "lots"
    bad.run()
    no_exception(bad)
    assert bad.radio(key=state.CMP_EDGE).value == "include" and bad.slider(key=state.CMP_CUT).value == 0.5


def test_a_link_keeps_the_measure_tested_and_the_axis_with_its_scale(seeded_ws):
    """The measure tested, the attribute on the axis and its trend's scale change the numbers too (QA walk 16 left:
    the scale was kept in the session only): in the link where not at their defaults, read back by a fresh page."""
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    no_exception(at)
    assert not {"measure", "axis", "scale"} & set(at.query_params)  # the defaults: C-rate 0 / 1 / 5 on the value
    start = at.radio(key=state.k(state.CMP_AXIS_SCALE, "C-rate")).value
    other = next(s for s in ("rank", "log", "linear") if s != start)
    at.selectbox(key=state.CMP_METRIC).set_value("sphericity").run()
    at.radio(key=state.k(state.CMP_AXIS_SCALE, "C-rate")).set_value(other).run()
    link = {k: at.query_params[k] for k in ("measure", "scale")}
    assert {k: (v if isinstance(v, str) else "".join(v)) for k, v in link.items()} == {
        "measure": "sphericity", "scale": other}
    fresh = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    fresh.query_params["measure"], fresh.query_params["scale"] = "sphericity", other
    fresh.run()
    no_exception(fresh)
    assert fresh.selectbox(key=state.CMP_METRIC).value == "sphericity"
    assert fresh.radio(key=state.k(state.CMP_AXIS_SCALE, "C-rate")).value == other
    # a link naming a measure or an attribute the electrodes do not have, or a scale that is none: the defaults
    bad = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    bad.query_params["measure"], bad.query_params["axis"], bad.query_params["scale"] = "porosity", "SOC", "cubic"
    bad.run()
    no_exception(bad)
    assert bad.selectbox(key=state.CMP_METRIC).value == "detachment"
    assert bad.selectbox(key=state.CMP_AXIS_ATTR).value == "C-rate"
    assert bad.radio(key=state.k(state.CMP_AXIS_SCALE, "C-rate")).value == start


def test_a_cross_section_along_the_thickness_axis_shows_its_plane_with_the_depth_marked(seeded_ws):
    """QA: a FIB-SEM cross-section (1 × Y × X, thickness along y) showed no image at a depth: its section there is
    a line one voxel tall.  Its whole plane is shown with the depth drawn as a magenta line."""
    from dataclasses import replace

    from core.runner import run_analysis
    from ui.compare_view import depth_line
    from ui.render import HIGHLIGHT

    img = np.zeros((500, 300, 3), np.uint8)
    row = depth_line(img, 0, 10)
    assert (row[10:12] == HIGHLIGHT).all() and not row[:10].any() and not row[12:].any() and not img.any()
    col = depth_line(img, 1, 299)  # the last column, one pixel wide (300 pixels across)
    assert (col[:, 299] == HIGHLIGHT).all() and not col[:, :299].any()

    first = seeded_ws.list_samples()[0]
    path = seeded_ws.root.parent / "cross.npy"
    np.save(path, np.asarray(seeded_ws.load_volume(first))[24:25])
    flat = seeded_ws.add_sample("FIB cross-section", str(path), spacing=first.spacing, axis=1)
    params = replace(seeded_ws.latest_analysis(first.id).requested, axis=1)
    run_analysis(seeded_ws, flat.id, seeded_ws.load_volume(flat), params)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    no_exception(at)
    caps = [i.proto.imgs[0].caption for i in at.image]
    [mine] = [c for c in caps if c.startswith("FIB cross-section: ")]
    assert mine.startswith("FIB cross-section: its only plane, a cross-section through every depth; the magenta "
                           "line is depth 0.50 (y = ")


def test_an_analysis_made_before_its_sample_s_voxel_size_changed_is_said_and_reported(seeded_ws):
    """QA: "cal" analysed at 0.5 µm, then its voxel size edited to 0.398 µm; Compare showed that analysis beside
    another without a word (the Particles and Samples pages warn). One warning names each such electrode with what
    changed (the Particles page's sentences), and the report carries it as a caveat."""
    import html as html_lib

    from ui import tables

    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    no_exception(at)
    assert not any("voxel size" in w.value for w in at.warning)  # nothing changed: nothing said

    cal = seeded_ws.list_samples()[0]
    used = seeded_ws.latest_analysis(cal.id)
    seeded_ws.update_sample(cal.id, spacing=(0.398, 0.398, 0.398))
    at.run()
    no_exception(at)
    [said] = [w.value for w in at.warning if "voxel size" in w.value]
    name = f"{cal.name} (SYNTHETIC)"
    [sentence] = tables.changed_sentences(seeded_ws.get_sample(cal.id), used)
    assert f"{name}: analysis #{used.id} used the voxel size {tables.voxel_text(used.provenance['spacing_um'])}; " \
           "the sample now says 0.398×0.398×0.398 µm." in said
    assert sentence[1:] in said and "Rerun" in said
    others = [s for s in seeded_ws.list_samples() if s.id != cal.id]
    assert not any(f"{s.name} (SYNTHETIC): analysis" in said for s in others)  # only the stale one is named
    report = state.k(state.EXP_REPORT, "compare")
    at.button(key=report).click().run()  # the report, made as a click makes it
    html = at.session_state[state.EXP_READY][report].decode()
    plain = said.replace("**", "")  # the report's caveats are plain text
    assert f'<p class="caveat"><strong>Caveat:</strong> {html_lib.escape(plain)}</p>' in html


def test_a_classifier_analysis_compared_is_said_with_its_bias(empty_ws):
    """The Particles page and its report say what a brush-stroke classifier's phases do to the detachment; the
    comparison, where a classifier electrode stands beside a threshold one, said nothing of it."""
    from core.runner import run_analysis
    from ui.segment_view import CLASSIFIER_EDGE_NOTE

    s, _ = classifier_sample(empty_ws)
    other = empty_ws.add_sample("thr", "demo:pristine", spacing=0.4, source_options={"shape": [32, 32, 32], "seed": 1})
    run_analysis(empty_ws, other.id)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    no_exception(at)
    [said] = [w.value for w in at.warning if CLASSIFIER_EDGE_NOTE in w.value]
    assert said.startswith(f"{s.name} (SYNTHETIC) has its phases from a brush-stroke classifier.")
    assert "thr" not in said.split(".")[0]


def test_tests_between_a_slice_and_a_volume_are_read_as_not_comparable(empty_ws, env):
    """QA: "calA vs nanoct300: detachment index differs (p=1.1e-18 ...), large effect" stood under the page's own
    warning to compare slices with slices, and went so into the report: such a pair is read as not comparable
    (its numbers stay), a pair of volumes as before."""
    from core.io import save_tiff
    from core.runner import run_analysis
    from core.synth import demo_electrode
    from core.comparison import NOT_COMPARABLE

    for i in range(2):
        s = empty_ws.add_sample(f"vol{i}", "demo:pristine", spacing=0.4, source_options={"shape": [32, 32, 32],
                                                                                         "seed": i})
        run_analysis(empty_ws, s.id)
    g = demo_electrode("cycled-5C", rng=3, shape=(32, 96, 96)).greyscale[16:17]
    save_tiff(env / "data" / "slice.tif", g, (0.4, 0.4, 0.4))
    flat = empty_ws.add_sample("slice", str(env / "data" / "slice.tif"), spacing=0.4)
    run_analysis(empty_ws, flat.id)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    no_exception(at)
    readings = {line.split("**")[1]: line.split("**: ")[1] for m in at.markdown for line in m.value.split("\n")
                if line.startswith("- **") and " vs " in line}
    mixed = {k: v for k, v in readings.items() if "slice" in k}
    assert len(mixed) == 2 and all(v == NOT_COMPARABLE + "." for v in mixed.values()), readings
    [(pair, reading)] = [(k, v) for k, v in readings.items() if "slice" not in k]
    assert pair.startswith("vol0 (SYNTHETIC) vs vol1") and NOT_COMPARABLE not in reading


def test_few_bins_are_named_with_their_unit():
    """QA walk 11: "grey_cal 0.494–0.622 (n=0)" for bins of the equivalent diameter, without its unit."""
    import pandas as pd

    from ui.compare_view import few_bins_words

    few = pd.DataFrame({"electrode": ["grey_cal"], "x_lo": [0.4941], "x_hi": [0.6222], "n": [0]})
    assert few_bins_words(few, "equiv_diameter_um") == ": grey_cal 0.494–0.622 µm (n=0)"
    assert few_bins_words(few, "depth_frac") == ": grey_cal 0.494–0.622 (n=0)"  # a share: no unit
    assert few_bins_words(pd.concat([few] * 5), "equiv_diameter_um") == ""  # too many to list


def test_the_measures_offered_are_the_particle_tables_measures():
    """The measure tested goes into the recipe, which reads only the particle table's measures: a numeric column that
    is no measure (an older table's, the id) is not offered, nor one that is not numeric in every table."""
    from types import SimpleNamespace as NS

    from ui.compare_view import numeric_metrics

    a = pd.DataFrame({"label": [1, 2], "detachment": [0.1, 0.2], "legacy_score": [1.0, 2.0],
                      "sphericity": [0.9, 0.8], "touches_edge": [False, True], "equiv_diameter_um": [3.0, 4.0]})
    b = a.assign(sphericity=["x", "y"])
    assert numeric_metrics(NS(tables={"a": a})) == ["equiv_diameter_um", "sphericity", "detachment"]
    assert numeric_metrics(NS(tables={"a": a, "b": b})) == ["equiv_diameter_um", "detachment"]
