"""Tests for core.comparison and the headless comparison: ``python -m core compare`` and ``run`` of a recipe that
records the Compare page's choices."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import cli, compare
from core import comparison as cmp
from core import recipe as rc
from core.pipeline import AnalysisParams
from core.records import Attribute


def _table(detachment, diameters=None, edge=None) -> pd.DataFrame:
    d = np.asarray(detachment, float)
    n = len(d)
    return pd.DataFrame({
        "label": np.arange(1, n + 1),
        "equiv_diameter_um": np.full(n, 5.0) if diameters is None else np.asarray(diameters, float),
        "volume_um3": np.full(n, 65.0),
        "depth_frac": np.linspace(0, 1, n),
        "touches_edge": np.zeros(n, bool) if edge is None else np.asarray(edge, bool),
        "detachment": d,
    })


def _summary_csv(path) -> pd.DataFrame:
    """A written summary read back (its empty group labels as the empty text they were)."""
    return pd.read_csv(path, dtype={"group": "str"}).fillna({"group": ""})


@pytest.fixture
def three():
    rng = np.random.default_rng(3)
    return {f"e{i}": _table(np.clip(rng.normal(m, 0.08, 60), 0, 1), diameters=rng.uniform(1, 9, 60),
                            edge=rng.random(60) < 0.2)
            for i, m in enumerate((0.2, 0.35, 0.6))}


# --------------------------------------------------------------------------- settings


def test_settings_round_trip_and_defaults():
    s = cmp.CompareSettings(edge_policy="miles", cut=0.4, min_diameter_um=2, metric="sphericity", axis="C-rate",
                            axis_scale="log")
    assert cmp.CompareSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert cmp.CompareSettings.from_dict({}) == cmp.CompareSettings()
    assert cmp.CompareSettings().to_dict() == {"edge_policy": "include", "cut": 0.5, "min_diameter_um": 0.0,
                                               "metric": "detachment", "axis": None, "axis_scale": None}


@pytest.mark.parametrize("kw, msg", [
    ({"edge_policy": "all"}, "edge_policy must be one of"),
    ({"cut": 1.0}, "cut must lie strictly between 0 and 1"),
    ({"cut": 0}, "cut must lie strictly between 0 and 1"),
    ({"cut": float("nan")}, "cut must be a finite number"),
    ({"cut": True}, "cut must be a finite number"),
    ({"min_diameter_um": -1}, "min_diameter_um must be 0 or more"),
    ({"metric": ""}, "metric must be a measure of the particle table"),
    ({"metric": "label"}, r"metric must be a measure of the particle table \(n_voxels, volume_um3"),
    ({"metric": "touches_edge"}, "metric must be a measure of the particle table"),
    ({"axis_scale": "log"}, "axis_scale 'log' is the scale of a trend along an attribute: name the attribute"),
    ({"axis": " "}, "axis must name a sample attribute"),
    ({"axis": "C-rate", "axis_scale": "sqrt"}, "axis_scale must be one of"),
])
def test_bad_settings_get_one_sentence(kw, msg):
    with pytest.raises(cmp.ComparisonError, match=msg):
        cmp.CompareSettings(**kw)


def test_unknown_setting_refused():
    with pytest.raises(cmp.ComparisonError, match="unknown comparison setting 'bins'"):
        cmp.CompareSettings.from_dict({"bins": 10})
    with pytest.raises(cmp.ComparisonError, match="must be a JSON object"):
        cmp.CompareSettings.from_dict([1])


# --------------------------------------------------------------------------- the statistics


def test_the_statistics_are_the_pages(three):
    """The same calls, bootstrap and seed as the dashboard's cached ones (ui.cache.cmp_summary, cmp_pairwise,
    cmp_electrode_trend), after the smallest diameter."""
    s = cmp.CompareSettings(edge_policy="exclude", cut=0.3, min_diameter_um=2.0, axis="C-rate", axis_scale="log")
    attrs = {"e0": [Attribute("C-rate", 0.5, "C")], "e1": [Attribute("C-rate", 1, "C")],
             "e2": [Attribute("C-rate", 5, "C"), Attribute("cycles", 100, "-")]}
    res = cmp.compare_electrodes(three, s, groups={"e0": "g"}, attributes=attrs)
    kept, dropped = compare.drop_small(three, 2.0)
    assert dropped == res.dropped and all(v > 0 for v in dropped.values())
    want = compare.summary(kept, {"e0": "g"}, cut=0.3, edge_policy="exclude", n_boot=cmp.N_BOOT, rng=cmp.SEED)
    pd.testing.assert_frame_equal(res.summary.table, want.table)
    tests = compare.pairwise_tests(kept, "detachment", edge_policy="exclude", rng=cmp.SEED, n_boot=cmp.N_BOOT,
                                   label="detachment index")
    pd.testing.assert_frame_equal(res.tests.table, tests.table)
    trend = compare.electrode_trend(kept, {"e0": 0.5, "e1": 1.0, "e2": 5.0}, cut=0.3, attribute="C-rate", unit="C",
                                    x_scale="log", edge_policy="exclude", n_boot=cmp.N_BOOT, rng=cmp.SEED)
    pd.testing.assert_frame_equal(res.axis_trend.table, trend.table)
    assert res.axis_trend.median_test.p == trend.median_test.p and res.notes == ()
    assert res.axis_trend.median_test.slope > 0  # 0.2, 0.35, 0.6 along 0.5, 1, 5 C
    assert {n: len(t) for n, t in res.used().items()} == {
        n: int((~t["touches_edge"]).sum()) for n, t in kept.items()}


def test_the_scale_starts_where_the_values_lie_evenly(three):
    attrs = {n: [Attribute("C-rate", v, "C")] for n, v in zip(three, (0.5, 1, 5))}
    assert cmp.compare_electrodes(three, cmp.CompareSettings(axis="C-rate"), attributes=attrs).axis_trend.x_scale \
        == compare.suggested_scale([0.5, 1, 5]) == "log"
    attrs = {n: [Attribute("cycles", v, "-")] for n, v in zip(three, (0, 100, 200))}
    assert cmp.compare_electrodes(three, cmp.CompareSettings(axis="cycles"), attributes=attrs).axis_trend.x_scale \
        == "linear"


def test_what_the_trend_leaves_out_is_said(three):
    four = {**three, "e3": three["e0"]}
    attrs = {"e0": [Attribute("C-rate", 0, "C")], "e1": [Attribute("C-rate", 1, "C")],
             "e2": [Attribute("C-rate", 5, "C")], "e3": [Attribute("C-rate", 2, "C")]}
    res = cmp.compare_electrodes(four, cmp.CompareSettings(axis="C-rate", axis_scale="log"), attributes=attrs)
    assert res.axis_trend is not None and list(res.axis_trend.table["electrode"]) == ["e1", "e3", "e2"]
    assert res.notes == ("Left out of the logarithmic axis (C-rate has no logarithm at 0 or below): e0 (0).",)
    res = cmp.compare_electrodes(three, cmp.CompareSettings(axis="C-rate"), attributes={
        "e0": [Attribute("C-rate", 1, "C")], "e1": [Attribute("C-rate", 2, "C")]})
    assert res.axis_trend is None and res.summary is not None
    assert res.notes == ("Left out of the trend along C-rate (no C-rate given): e2.",
                         "No trend along C-rate: it needs at least 3 electrodes with C-rate given, 2 have it.")
    res = cmp.compare_electrodes(three, cmp.CompareSettings(axis="C-rate"), attributes={
        "e0": [Attribute("C-rate", 1, "C")], "e1": [Attribute("C-rate", 2, "C")],
        "e2": [Attribute("C-rate", 3, "1/h")]})
    assert res.axis_trend is None and res.notes == ("No trend along C-rate: it is given in different units ('1/h', "
                                                    "'C').",)


def test_what_cannot_be_computed_is_said_and_the_rest_kept(three):
    few = {**three, "tiny": _table([0.5])}
    res = cmp.compare_electrodes(few, cmp.CompareSettings())
    assert res.summary is None and res.tests is None
    assert res.notes[0].startswith("No summary: ") and "tiny" in res.notes[0]
    with pytest.raises(cmp.ComparisonError, match="at least two electrodes, got 1"):
        cmp.compare_electrodes({"a": three["e0"]})
    with pytest.raises(cmp.ComparisonError, match="metric 'sphericity' is not a column of the particle table of 'e0'"):
        cmp.compare_electrodes(three, cmp.CompareSettings(metric="sphericity"))  # (these tables lack it)


def test_a_slice_against_a_volume_is_not_comparable(three):
    res = cmp.compare_electrodes(three, single_slice={"e0": True, "e1": False, "e2": None})
    t = res.tests.table
    readings = dict(zip(zip(t["electrode_a"], t["electrode_b"]), t["reading"]))
    assert readings[("e0", "e1")] == cmp.NOT_COMPARABLE
    assert readings[("e0", "e2")] != cmp.NOT_COMPARABLE and readings[("e1", "e2")] != cmp.NOT_COMPARABLE


def test_written_files(three, tmp_path):
    attrs = {n: [Attribute("C-rate", v, "C")] for n, v in zip(three, (0.5, 1, 5))}
    res = cmp.compare_electrodes(three, cmp.CompareSettings(edge_policy="exclude", axis="C-rate"), attributes=attrs)
    runs = [cmp.AnalysisRun(n, t) for n, t in three.items()]
    files = cmp.write_comparison(res, tmp_path / "c", [r.report_electrode() for r in runs], made="now")
    assert [f.name for f in files] == ["summary.csv", "tests.csv", "trend-C-rate.csv", "comparison.json",
                                       "report.html"]
    pd.testing.assert_frame_equal(_summary_csv(tmp_path / "c" / "summary.csv"), res.summary.table, check_dtype=False)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "c" / "trend-C-rate.csv"),
                                  compare.trend_file_table(res.axis_trend), check_dtype=False)
    rec = json.loads((tmp_path / "c" / "comparison.json").read_text())
    assert rec["settings"]["edge_policy"] == "exclude" and rec["bootstrap"] == {"resamples": 2000, "seed": 0}
    assert rec["particles"]["e0"]["used"] == int((~three["e0"]["touches_edge"]).sum())
    assert rec["trend"]["scale"] == "log" and "median detachment index with C-rate across 3" in rec["trend"]["median"]
    html = (tmp_path / "c" / "report.html").read_text()
    assert "Differences between electrodes: detachment index (0–1)" in html and "Made now." in html
    assert cmp.edge_sentence("exclude", {n: (len(t), len(three[n])) for n, t in res.used().items()},
                             headless=True)[:60] in html
    with pytest.raises(cmp.ComparisonError, match="the report's electrodes must be the comparison's"):
        cmp.write_comparison(res, tmp_path / "d", [r.report_electrode() for r in runs[::-1]])


# --------------------------------------------------------------------------- recipes


def _entry(name, demo, c_rate):
    return rc.RecipeEntry(name, rc.DemoInput(demo, 0, (64, 64, 64)), (0.4,) * 3, AnalysisParams(),
                          attributes=(Attribute("C-rate", c_rate, "C"),))


def test_a_recipe_records_its_comparison():
    settings = cmp.CompareSettings(edge_policy="exclude", cut=0.35, axis="C-rate")
    r = rc.Recipe((_entry("a", "pristine", 0.5), _entry("b", "cycled-1C", 1)), compare=settings)
    d = rc.recipe_to_dict(r)
    assert d["compare"] == settings.to_dict()
    assert rc.recipe_from_dict(json.loads(rc.dumps(r))).compare == settings
    assert "compare" not in rc.recipe_to_dict(rc.Recipe(r.analyses))  # a recipe without one is as before
    with pytest.raises(rc.RecipeError, match="'compare' needs at least two analyses to compare, it has 1"):
        rc.Recipe(r.analyses[:1], compare=settings)
    d["compare"]["cut"] = 2
    with pytest.raises(rc.RecipeError, match="the recipe's 'compare': cut must lie strictly between 0 and 1"):
        rc.recipe_from_dict(d)
    d["compare"] = {"edge": "exclude"}
    with pytest.raises(rc.RecipeError, match="unknown comparison setting 'edge'"):
        rc.recipe_from_dict(d)


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """Three demo electrodes at 64^3 with C-rates, replayed from a recipe that compares them."""
    d = tmp_path_factory.mktemp("cmp")
    settings = cmp.CompareSettings(edge_policy="exclude", cut=0.4, axis="C-rate")
    r = rc.Recipe((_entry("pristine", "pristine", 0.5), _entry("one C", "cycled-1C", 1),
                   _entry("five C", "cycled-5C", 5)), compare=settings)
    rc.write_recipe(r, d / "recipe.json")
    assert cli.main(["run", str(d / "recipe.json"), "--out", str(d / "R"), "-q"]) == 0
    return d


def test_run_writes_the_recipes_comparison(replayed):
    out = replayed / "R"
    assert sorted(p.name for p in out.iterdir()) == ["comparison", "five_C", "one_C", "pristine", "recipe.json"]
    assert rc.read_recipe(out / "recipe.json").compare == rc.read_recipe(replayed / "recipe.json").compare
    tables = {n: pd.read_parquet(out / f / "particles.parquet")
              for n, f in (("pristine", "pristine"), ("one C", "one_C"), ("five C", "five_C"))}
    want = cmp.compare_electrodes(tables, rc.read_recipe(replayed / "recipe.json").compare, attributes={
        "pristine": [Attribute("C-rate", 0.5, "C")], "one C": [Attribute("C-rate", 1, "C")],
        "five C": [Attribute("C-rate", 5, "C")]})
    c = out / "comparison"
    assert sorted(p.name for p in c.iterdir()) == ["comparison.json", "report.html", "summary.csv",
                                                   "tests.csv", "trend-C-rate.csv"]
    pd.testing.assert_frame_equal(_summary_csv(c / "summary.csv"),
                                  want.summary.table, check_dtype=False)
    got = pd.read_csv(c / "trend-C-rate.csv")
    assert list(got["electrode"]) == ["pristine", "one C", "five C"] and got["value"].tolist() == [0.5, 1, 5]
    assert json.loads((c / "comparison.json").read_text())["trend"]["scale"] == "log"
    html = (c / "report.html").read_text()
    assert "<h2>Electrodes on an axis: detachment against C-rate (C)</h2>" in html
    assert "<h2>Summary</h2>" in html and "Differences between electrodes" in html
    assert "&quot;compare&quot;: {" in html  # the recipe, embedded, with its comparison
    # what the page's report says too (QA walk 18): demos are synthetic, the choices in one place, the parameters
    # as the page lists them (the network's left out where it did not run, the seeding named), the code's commit
    from core.pipeline import source_commit
    from core.report import SYNTHETIC_NOTE

    assert SYNTHETIC_NOTE in html
    assert ("Compared with: particles cut by the volume edge &#x27;leave out&#x27;, detached cut 0.4, smallest "
            "equivalent diameter counted 0 µm, tests between electrodes on detachment index, the trend along C-rate "
            "a straight line in its logarithm (as the values suggest)") in html
    assert ">seeding<" in html and ">model.weights<" not in html
    assert source_commit() is None or source_commit() in html
    assert "miles_weight" not in html and "charts and summary" not in html


def test_compare_command_on_the_analysis_folders(replayed, tmp_path, capsys):
    out = replayed / "R"
    # the folders of a run carry their names and attributes in their recipes
    assert cli.main(["compare", str(out / "pristine"), str(out / "one_C"), str(out / "five_C"), "--out",
                     str(tmp_path / "C"), "--edge", "exclude", "--cut", "0.4", "--axis", "C-rate"]) == 0
    for name in ("summary.csv", "tests.csv", "trend-C-rate.csv"):
        assert (tmp_path / "C" / name).read_bytes() == (out / "comparison" / name).read_bytes(), name
    assert "3 electrodes compared" in capsys.readouterr().err
    # values given on the command line take the place of the recipes'
    assert cli.main(["compare", str(out / "pristine"), str(out / "one_C"), str(out / "five_C"), "--out",
                     str(tmp_path / "D"), "--axis", "cycles", "--values", "0", "100", "200", "--unit", "-",
                     "-q"]) == 0
    trend = pd.read_csv(tmp_path / "D" / "trend-cycles.csv")
    assert trend["value"].tolist() == [0, 100, 200]


@pytest.mark.parametrize("extra, msg", [
    (["--values", "1", "2"], "--values gives the electrodes' values of an attribute: name it with --axis"),
    (["--axis", "C-rate", "--values", "1"], "--values needs one value per folder: 2 folders, 1 values"),
    (["--unit", "C"], "--unit is the unit of --values"),
    (["--cut", "1.5"], "cut must lie strictly between 0 and 1"),
    (["--metric", "porosity"], "metric must be a measure of the particle table"),
    (["--metric", "label"], "metric must be a measure of the particle table"),
    (["--axis-scale", "log"], "axis_scale 'log' is the scale of a trend along an attribute"),
    (["--names", "a"], "--names needs one name per folder: 2 folders, 1 names"),
])
def test_compare_command_bad_input_one_sentence(replayed, tmp_path, capsys, extra, msg):
    out = replayed / "R"
    capsys.readouterr()
    assert cli.main(["compare", str(out / "pristine"), str(out / "one_C"), "--out", str(tmp_path / "X"),
                     *extra]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: ") and msg in err and err.count("\n") == 1
    assert not (tmp_path / "X").exists()


def test_compare_command_needs_analysis_folders(replayed, tmp_path, capsys):
    assert cli.main(["compare", str(replayed / "R" / "pristine"), str(tmp_path), "--out",
                     str(tmp_path / "X")]) == cli.EXIT_BAD_INPUT
    assert "holds no particle table" in capsys.readouterr().err
    assert cli.main(["compare", str(replayed / "R"), str(replayed / "R" / "pristine"), "--out",
                     str(tmp_path / "Z")]) == cli.EXIT_BAD_INPUT  # a run's folder: its analyses' folders named
    assert f"(the folders of its analyses are: {replayed / 'R' / 'five_C'}, " in capsys.readouterr().err
    assert cli.main(["compare", str(replayed / "R" / "pristine"), str(replayed / "R" / "pristine"), "--out",
                     str(tmp_path / "Y")]) == cli.EXIT_BAD_INPUT
    assert "two electrodes are named 'pristine'" in capsys.readouterr().err


def test_run_only_one_analysis_writes_no_comparison(replayed, tmp_path, capsys):
    assert cli.main(["run", str(replayed / "recipe.json"), "--out", str(tmp_path / "O"), "--only", "pristine",
                     "-q"]) == 0
    assert "--only left 1, so no comparison is written" in capsys.readouterr().err
    assert not (tmp_path / "O" / "comparison").exists()
    assert rc.read_recipe(tmp_path / "O" / "recipe.json").compare is None


def test_a_recipe_testing_no_measure_is_refused_before_any_work(replayed, tmp_path, capsys):
    """QA walk 18: a hand-edited recipe whose comparison tests a column that is no measure ran every analysis first
    and then wrote nothing: it is refused as it is read."""
    d = json.loads((replayed / "recipe.json").read_text())
    d["compare"]["metric"] = "porosity"
    (tmp_path / "recipe.json").write_text(json.dumps(d))
    assert cli.main(["run", str(tmp_path / "recipe.json"), "--out", str(tmp_path / "R"), "-q"]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "the recipe's 'compare': metric must be a measure of the particle table" in err and "[" not in err
    assert not (tmp_path / "R").exists()


def test_a_comparison_that_cannot_be_made_leaves_the_replayed_analyses(replayed, tmp_path, capsys, monkeypatch):
    """Should the comparison fail after the analyses ran, they are written and a warning says why."""
    def refuse(*a, **k):
        raise cmp.ComparisonError("something the comparison refuses")

    monkeypatch.setattr(cmp, "compare_electrodes", refuse)
    d = json.loads((replayed / "recipe.json").read_text())
    d["analyses"] = d["analyses"][:2]
    for a in d["analyses"]:
        a["input"]["shape"] = [40, 40, 40]
    (tmp_path / "recipe.json").write_text(json.dumps(d))
    assert cli.main(["run", str(tmp_path / "recipe.json"), "--out", str(tmp_path / "R"), "-q"]) == 0
    assert "the recipe's comparison cannot be made, so none is written: something the comparison refuses" in \
        capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "R").iterdir()) == ["one_C", "pristine", "recipe.json"]


def test_overwrite_replaces_a_comparison_of_this_tool(replayed, tmp_path):
    """QA walk 18: --overwrite refused the tool's own comparison files (summary.csv, trend-*.csv, report.html...)."""
    out = replayed / "R"
    folders = [str(out / "pristine"), str(out / "one_C"), str(out / "five_C")]
    assert cli.main(["compare", *folders, "--out", str(tmp_path / "C"), "--axis", "C-rate", "-q"]) == 0
    assert cli.main(["compare", *folders, "--out", str(tmp_path / "C"), "--axis", "C-rate", "-q"]) == \
        cli.EXIT_BAD_INPUT  # not without --overwrite
    assert cli.main(["compare", *folders, "--out", str(tmp_path / "C"), "--overwrite", "-q"]) == 0
    assert not (tmp_path / "C" / "trend-C-rate.csv").exists()  # replaced whole
    shutil.copytree(out, tmp_path / "R")  # a replay with its comparison/ folder, replayed into again
    assert cli.main(["run", str(replayed / "recipe.json"), "--out", str(tmp_path / "R"), "--overwrite", "-q"]) == 0
    assert (tmp_path / "R" / "comparison" / "trend-C-rate.csv").is_file()


def test_compare_names_two_replays_of_one_recipe(replayed, tmp_path):
    out = replayed / "R"
    assert cli.main(["compare", str(out / "pristine"), str(out / "pristine"), "--names", "first", "second",
                     "--out", str(tmp_path / "N"), "-q"]) == 0
    assert pd.read_csv(tmp_path / "N" / "summary.csv")["electrode"].tolist() == ["first", "second"]


def test_an_analysis_named_comparison_keeps_its_folder(tmp_path):
    r = rc.Recipe((_entry("comparison", "pristine", 0.5), _entry("b", "cycled-1C", 1)),
                  compare=cmp.CompareSettings())
    rc.write_recipe(r, tmp_path / "recipe.json")
    assert cli.main(["run", str(tmp_path / "recipe.json"), "--out", str(tmp_path / "R"), "-q"]) == 0
    assert (tmp_path / "R" / "comparison" / "particles.csv").is_file()
    assert (tmp_path / "R" / "comparison_1" / "summary.csv").is_file()


def test_read_analysis_folder_of_analyze(tmp_path):
    from core.io import save_tiff
    from core.synth import demo_electrode

    e = demo_electrode("pristine", rng=1, shape=(40, 40, 40))
    save_tiff(tmp_path / "scan.tif", e.greyscale, e.spacing)
    assert cli.main(["analyze", str(tmp_path / "scan.tif"), "--out", str(tmp_path / "A"), "-q"]) == 0
    run = cmp.read_analysis_folder(tmp_path / "A")
    assert run.name == "A" and run.attributes == () and run.single_slice is False
    pd.testing.assert_frame_equal(run.table, pd.read_parquet(tmp_path / "A" / "particles.parquet"))
    el = run.report_electrode()
    assert el.source == str(tmp_path / "scan.tif") and el.input_checksum and el.spacing_um
    with pytest.raises(cmp.ComparisonError, match="is not a folder of an analysis"):
        cmp.read_analysis_folder(tmp_path / "scan.tif")


def test_module_docstring_names_the_compare_command():
    assert "compare" in Path(cli.__file__).read_text().split('"""')[1]
