"""Tests for core.recipe and ``python -m core run``: schema, validation, replay to identical tables."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import cli
from core import recipe as rc
from core.io import save_tiff
from core.pipeline import AnalysisParams, checksum
from core.runner import run_analysis
from core.synth import ElectrodeParams, demo_electrode, make_electrode
from core.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
SIZE = 64


def subprocess_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


@pytest.fixture(scope="module")
def elec():
    return make_electrode(ElectrodeParams(shape=(SIZE,) * 3, detachment_mean=0.3), rng=11, name="syn")


@pytest.fixture(scope="module")
def analysed(elec, tmp_path_factory):
    """A 64^3 synthetic electrode saved as TIFF, analysed with ``analyze --recipe``."""
    d = tmp_path_factory.mktemp("rt")
    (d / "data").mkdir()
    save_tiff(d / "data" / "scan.tif", elec.greyscale, elec.spacing)
    assert cli.main(["analyze", str(d / "data" / "scan.tif"), "--out", str(d / "A"), "--recipe",
                     str(d / "data" / "recipe.json"), "--name", "cathode 1", "-q"]) == 0
    return d


def _valid() -> dict:
    params = AnalysisParams().to_dict()
    return {
        "recipe_version": 1,
        "package_version": "0.1.0",
        "analyses": [{
            "name": "a", "input": {"demo": "pristine", "seed": 0, "shape": [16, 16, 16]},
            "spacing_um": [0.4, 0.4, 0.4], "params": params, "input_checksum": "00ff" * 8,
        }],
    }


# --------------------------------------------------------------------------- schema


def test_valid_recipe_round_trips_through_json(tmp_path):
    d = _valid()
    d["analyses"].append({
        "name": "b", "group": "cycled", "input": {"path": "sub/x.raw", "shape": [4, 5, 6], "dtype": "uint16",
                                                  "byte_order": ">", "offset": 12},
        "spacing_um": [1, 2, 3], "params": AnalysisParams().to_dict(), "n_particles": 3,
        "versions": {"numpy": "2.0"},
    })
    r = rc.recipe_from_dict(d, base_dir=tmp_path)
    b = r.entry("b")
    assert b.input.path == tmp_path / "sub" / "x.raw"  # relative to the recipe's folder
    assert b.input.load_kwargs() == {"shape": (4, 5, 6), "dtype": "uint16", "byte_order": ">", "offset": 12}
    assert b.spacing == (1.0, 2.0, 3.0) and b.group == "cycled" and b.n_particles == 3
    assert isinstance(r.entry("a").input, rc.DemoInput) and r.entry("a").input.shape == (16, 16, 16)
    again = rc.recipe_to_dict(r, relative_to=tmp_path)
    assert again == d
    assert rc.loads(rc.dumps(r, relative_to=tmp_path), base_dir=tmp_path) == r


def test_write_recipe_paths_relative_inside_absolute_outside(tmp_path):
    inside = rc.FileInput(path=tmp_path / "rec" / "data" / "v.tif")
    outside = rc.FileInput(path=tmp_path / "elsewhere" / "v.tif")
    p = AnalysisParams()
    r = rc.Recipe((rc.RecipeEntry("in", inside, (1.0, 1.0, 1.0), p), rc.RecipeEntry("out", outside, (1.0, 1.0, 1.0), p)))
    (tmp_path / "rec").mkdir()
    rc.write_recipe(r, tmp_path / "rec" / "r.json")
    d = json.loads((tmp_path / "rec" / "r.json").read_text())
    assert d["analyses"][0]["input"]["path"] == "data/v.tif"
    assert d["analyses"][1]["input"]["path"] == str(tmp_path / "elsewhere" / "v.tif")
    assert rc.read_recipe(tmp_path / "rec" / "r.json") == r
    assert [p.name for p in (tmp_path / "rec").iterdir()] == ["r.json"]  # no temporary file left


def test_write_recipe_refuses_a_folder(tmp_path):
    r = rc.Recipe((rc.RecipeEntry("a", rc.DemoInput("pristine", 0, (16, 16, 16)), (1.0, 1.0, 1.0), AnalysisParams()),))
    with pytest.raises(rc.RecipeError, match="is a folder; give a file name"):
        rc.write_recipe(r, tmp_path)
    assert list(tmp_path.iterdir()) == []


def _mut(path, value=None, delete=False):
    def f(d):
        obj = d
        for k in path[:-1]:
            obj = obj[k]
        if delete:
            del obj[path[-1]]
        else:
            obj[path[-1]] = value
    return f


BAD = {
    "unknown top key": (_mut(["colour"], "red"), r"unknown key 'colour' in the recipe"),
    "unknown entry key": (_mut(["analyses", 0, "sample"], 1), r"unknown key 'sample' in analyses\[0\] \('a'\)"),
    "unknown input key": (_mut(["analyses", 0, "input", "zoom"], 2), r"unknown key 'zoom' in analyses\[0\].*input"),
    "unknown param": (_mut(["analyses", 0, "params", "segment", "lowest"], 2), r"params: unknown 'segment'"),
    "missing version": (_mut(["recipe_version"], delete=True), r"lacks 'recipe_version'"),
    "future version": (_mut(["recipe_version"], 2), r"unsupported recipe_version 2"),
    "missing params": (_mut(["analyses", 0, "params"], delete=True), r"lacks the required key 'params'"),
    "missing spacing": (_mut(["analyses", 0, "spacing_um"], delete=True), r"required key 'spacing_um'"),
    "bad spacing": (_mut(["analyses", 0, "spacing_um"], [1, 0, 1]), r"spacing_um: .*> 0"),
    "no analyses": (_mut(["analyses"], []), r"non-empty list"),
    "both inputs": (_mut(["analyses", 0, "input", "path"], "x.tif"), r"exactly one of 'path'"),
    "unknown demo": (_mut(["analyses", 0, "input", "demo"], "fresh"), r"unknown demo electrode 'fresh'"),
    "bad shape": (_mut(["analyses", 0, "input", "shape"], [16, 16]), r"shape must be 3 integers"),
    "bad checksum": (_mut(["analyses", 0, "input_checksum"], "not-hex"), r"hexadecimal digest"),
    "bad separator side": (_mut(["analyses", 0, "params", "separator_side"], "top"), r"separator_side"),
    "bad downsample": (_mut(["analyses", 0, "input", "downsample"], 0), r"downsample must be between 1 and 8"),
    "fractional downsample": (_mut(["analyses", 0, "input", "downsample"], 1.5), r"downsample must be a whole"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_schema_errors_name_the_problem(case):
    mutate, pattern = BAD[case]
    d = _valid()
    mutate(d)
    with pytest.raises(rc.RecipeError, match=pattern):
        rc.recipe_from_dict(d)


def test_file_input_errors():
    d = _valid()
    d["analyses"][0]["input"] = {"path": "x.raw", "format": "jpeg"}
    with pytest.raises(rc.RecipeError, match=r"format must be one of tiff"):
        rc.recipe_from_dict(d)
    d["analyses"][0]["input"] = {"path": "x.raw", "dtype": "complex-ish"}
    with pytest.raises(rc.RecipeError, match=r"not a numpy data type"):
        rc.recipe_from_dict(d)
    d["analyses"][0]["input"] = {"path": "x.tif", "phase_map": "0=pore,1=glue"}
    with pytest.raises(rc.RecipeError, match=r"phase_map: .*unknown phase 'glue'"):
        rc.recipe_from_dict(d)
    d["analyses"][0]["input"] = {"path": "x.tif", "phase_map": "0=pore,1=cbd,2=nmc", "downsample": 2}
    with pytest.raises(rc.RecipeError, match=r"pre-segmented phase volume cannot be downsampled"):
        rc.recipe_from_dict(d)


def test_downsample_round_trips_and_is_applied_on_loading():
    d = _valid()
    d["analyses"][0]["input"]["downsample"] = 2
    e = rc.recipe_from_dict(d).analyses[0]
    assert e.input == rc.DemoInput("pristine", seed=0, shape=(16, 16, 16), downsample=2)
    assert "downsampled by 2" in e.input.describe()
    assert rc.recipe_to_dict(rc.recipe_from_dict(d))["analyses"][0]["input"]["downsample"] == 2
    assert "downsample" not in rc.input_to_dict(rc.DemoInput("pristine"))  # the default is not written
    full = demo_electrode("pristine", rng=0, shape=(16, 16, 16)).greyscale
    np.testing.assert_array_equal(rc.load_input(e), full.reshape(8, 2, 8, 2, 8, 2).mean(axis=(1, 3, 5),
                                                                                        dtype=np.float32))


def test_duplicate_names_and_folders_are_refused():
    d = _valid()
    d["analyses"].append(copy.deepcopy(d["analyses"][0]))
    with pytest.raises(rc.RecipeError, match=r"two analyses of the recipe are named 'a'; names must be unique"):
        rc.recipe_from_dict(d)
    d["analyses"][1]["name"] = "a/"  # same folder name after cleaning
    with pytest.raises(rc.RecipeError, match=r"share the output folder 'a'"):
        rc.recipe_from_dict(d)


def test_read_recipe_errors(tmp_path):
    with pytest.raises(rc.RecipeError, match=r"no such recipe file"):
        rc.read_recipe(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{ not json")
    with pytest.raises(rc.RecipeError, match=r"bad.json: the recipe is not valid JSON"):
        rc.read_recipe(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(rc.RecipeError, match=r"must be a JSON object, got list"):
        rc.read_recipe(tmp_path / "list.json")


# --------------------------------------------------------------------------- inputs and checksums


def test_missing_input_file_is_reported(tmp_path):
    d = _valid()
    d["analyses"][0]["input"] = {"path": "gone.tif"}
    r = rc.recipe_from_dict(d, base_dir=tmp_path)
    with pytest.raises(rc.RecipeError, match=r"the input of analysis 'a' does not exist: .*gone.tif"):
        rc.check_inputs(r)
    with pytest.raises(rc.RecipeError, match=r"does not exist"):
        rc.replay(r.analyses[0])


def test_demo_input_regenerates_the_demo_greyscale():
    entry = rc.RecipeEntry("d", rc.DemoInput("cycled-1C", seed=5, shape=(24, 24, 24)), (0.4,) * 3, AnalysisParams())
    vol = rc.load_input(entry)
    np.testing.assert_array_equal(vol, demo_electrode("cycled-1C", rng=5, shape=(24, 24, 24)).greyscale)
    assert rc.verify_checksum(entry, vol) == checksum(vol)  # no recorded checksum: nothing to refuse


def test_checksum_mismatch_refused_unless_not_verifying(tmp_path, elec):
    save_tiff(tmp_path / "v.tif", elec.greyscale, elec.spacing)
    good = checksum(elec.greyscale)
    entry = rc.RecipeEntry("v", rc.FileInput(tmp_path / "v.tif"), elec.spacing, AnalysisParams(),
                           input_checksum=good)
    assert rc.verify_checksum(entry, rc.load_input(entry)) == good
    changed = elec.greyscale.copy()
    changed[0, 0, 0] += 1
    save_tiff(tmp_path / "v.tif", changed, elec.spacing)
    with pytest.raises(rc.ChecksumMismatch, match=rf"recorded {good}: the data changed .*--no-verify"):
        rc.replay(entry)
    res = rc.replay(entry, verify=False)
    assert res.provenance["input_checksum"] == checksum(changed) != good


def test_raw_input_with_options_replays_like_the_array(tmp_path, elec):
    big = elec.greyscale.astype(">u2")
    (tmp_path / "v.raw").write_bytes(b"HDR!" + big.tobytes())
    entry = rc.RecipeEntry("raw", rc.FileInput(tmp_path / "v.raw", shape=big.shape, dtype="uint16", byte_order=">",
                                               offset=4), elec.spacing, AnalysisParams(),
                           input_checksum=checksum(elec.greyscale))
    vol = rc.load_input(entry)
    np.testing.assert_array_equal(vol, elec.greyscale)


# --------------------------------------------------------------------------- CLI round trip


def test_analyze_writes_a_recipe(analysed, elec):
    d = json.loads((analysed / "data" / "recipe.json").read_text())
    assert d["recipe_version"] == 1
    [a] = d["analyses"]
    assert a["name"] == "cathode 1"
    assert a["input"] == {"path": "scan.tif"}  # beside the recipe: relative
    assert a["spacing_um"] == pytest.approx(list(elec.spacing))
    run = json.loads((analysed / "A" / "run.json").read_text())
    assert a["params"] == run["params"]  # thresholds resolved
    assert a["params"]["segment"]["low"] is not None and a["params"]["separator_side"] in ("start", "end")
    assert a["input_checksum"] == run["provenance"]["input_checksum"] == checksum(elec.greyscale)
    assert a["n_particles"] == len(pd.read_csv(analysed / "A" / "particles.csv"))
    assert a["versions"]["core"] == d["package_version"]


def test_run_replays_to_byte_identical_tables(analysed, tmp_path):
    """The round trip in a fresh process: CSV bytes equal, Parquet bytes equal and read back equal."""
    out = tmp_path / "R"
    proc = subprocess.run([sys.executable, "-m", "core", "run", str(analysed / "data" / "recipe.json"), "--out", str(out)],
                          cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "[100%]" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["cathode_1", "recipe.json"]
    d = out / "cathode_1"
    assert sorted(p.name for p in d.iterdir()) == ["particles.csv", "particles.parquet", "provenance.json", "recipe.json"]
    a = analysed / "A"
    assert (d / "particles.csv").read_bytes() == (a / "particles.csv").read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(d / "particles.parquet"), pd.read_parquet(a / "particles.parquet"))
    assert (d / "particles.parquet").read_bytes() == (a / "particles.parquet").read_bytes()
    prov = json.loads((d / "provenance.json").read_text())
    assert prov["command"] == "run" and prov["input_verified"] is True
    assert prov["input"]["path"] == str(analysed / "data" / "scan.tif")
    assert prov["provenance"]["input_checksum"] == json.loads((a / "run.json").read_text())["provenance"]["input_checksum"]
    # the copies replay too: absolute paths
    copy_ = rc.read_recipe(out / "recipe.json")
    assert copy_ == rc.read_recipe(analysed / "data" / "recipe.json")
    assert rc.read_recipe(d / "recipe.json") == copy_
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_run_refuses_a_changed_input_and_writes_nothing(analysed, elec, tmp_path, capsys):
    (tmp_path / "recipe.json").write_text((analysed / "data" / "recipe.json").read_text())
    changed = elec.greyscale.copy()
    changed[1, 2, 3] ^= 1
    save_tiff(tmp_path / "scan.tif", changed, elec.spacing)
    out = tmp_path / "R"
    assert cli.main(["run", str(tmp_path / "recipe.json"), "--out", str(out), "-q"]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: the input of analysis 'cathode 1'") and "--no-verify" in err
    assert err.count("\n") == 1
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
    capsys.readouterr()
    assert cli.main(["run", str(tmp_path / "recipe.json"), "--out", str(out), "--no-verify", "-q"]) == 0
    prov = json.loads((out / "cathode_1" / "provenance.json").read_text())
    assert prov["input_verified"] is False and prov["provenance"]["input_checksum"] == checksum(changed)
    # QA: nothing said the input had changed, and the record could not tell a changed input from an unchecked one
    recorded = rc.read_recipe(tmp_path / "recipe.json").analyses[0].input_checksum
    assert prov["input_checksum_recipe"] == recorded != checksum(changed)
    said = (f"the input differs from the recipe's (checksum {checksum(changed)}, the recipe recorded {recorded}): "
            "analysed anyway (--no-verify)")
    assert said in capsys.readouterr().err and any(said in w for w in prov["warnings"])


@pytest.mark.parametrize("case", ["missing file", "unknown key", "unknown --only"])
def test_run_bad_recipe_exits_2(analysed, tmp_path, capsys, case):
    d = json.loads((analysed / "data" / "recipe.json").read_text())
    args = []
    if case == "missing file":
        d["analyses"][0]["input"]["path"] = "nowhere.tif"
        expect = "does not exist"
    elif case == "unknown key":
        d["analyses"][0]["colour"] = "red"
        expect = "unknown key 'colour'"
    else:
        args = ["--only", "cathode 2"]
        expect = "--only names 'cathode 2'"
    (tmp_path / "r.json").write_text(json.dumps(d))
    out = tmp_path / "R"
    assert cli.main(["run", str(tmp_path / "r.json"), "--out", str(out), *args]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expect in err
    assert not out.exists()


def test_presegmented_input_round_trip(elec, tmp_path):
    ph = np.choose(elec.phases, [0, 128, 255]).astype(np.uint8)
    save_tiff(tmp_path / "ph.tif", ph, elec.spacing)
    assert cli.main(["analyze", str(tmp_path / "ph.tif"), "--phase-map", "0=pore,128=cbd,255=nmc", "--out",
                     str(tmp_path / "A"), "--recipe", str(tmp_path / "r.json"), "-q"]) == 0
    [a] = json.loads((tmp_path / "r.json").read_text())["analyses"]
    assert a["name"] == "ph" and a["input"] == {"path": "ph.tif", "phase_map": "0=pore,128=cbd,255=nmc"}
    assert a["input_checksum"] == checksum(elec.phases)  # of the phase codes the pipeline was given
    assert cli.main(["run", str(tmp_path / "r.json"), "--out", str(tmp_path / "R"), "-q"]) == 0
    assert (tmp_path / "R" / "ph" / "particles.csv").read_bytes() == (tmp_path / "A" / "particles.csv").read_bytes()


# --------------------------------------------------------------------------- from a workspace


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Two demo samples analysed (40^3), and a separation rerun on the reused phases of the second."""
    ws = Workspace(tmp_path_factory.mktemp("ws") / "ws")
    ids = []
    for i, name in enumerate(("pristine", "cycled-5C")):
        s = ws.add_sample(name, f"demo:{name}", spacing=(0.4, 0.4, 0.4), group_label="SYNTHETIC demo", axis=0,
                          separator_side="start", source_options={"shape": [40, 40, 40], "seed": i})
        ids.append(run_analysis(ws, s.id, ws.load_volume(s)).id)
    first = ws.get_analysis(ids[1])
    params = AnalysisParams.from_dict(first.resolved_params)
    params = replace(params, separation=replace(params.separation, h_um=0.9))
    again = run_analysis(ws, first.sample_id, ws.load_phases(first), params, presegmented=True,
                            extra_provenance={"phases_from_analysis": first.id})
    return ws, ids + [again.id]


def test_workspace_stores_the_input_snapshot(workspace):
    ws, ids = workspace
    a = ws.get_analysis(ids[0])
    assert a.provenance["input"] == {"source": "demo:pristine", "source_options": {"shape": [40, 40, 40], "seed": 0}}


def test_recipe_from_workspace_replays_identically(workspace, tmp_path):
    ws, ids = workspace
    rerun = ws.get_analysis(ids[2])
    r = rc.recipe_from_workspace(ws, [ids[0], rerun])
    assert [e.name for e in r.analyses] == ["pristine", "cycled-5C"]
    e = r.entry("cycled-5C")
    # the rerun on reused phases replays from the greyscale with the first run's segmentation
    assert e.input == rc.DemoInput("cycled-5C", seed=1, shape=(40, 40, 40))
    assert e.params.segment == AnalysisParams.from_dict(ws.get_analysis(ids[1]).resolved_params).segment
    assert e.params.separation.h_um == 0.9
    assert e.input_checksum == ws.get_analysis(ids[1]).provenance["input_checksum"]
    rc.write_recipe(r, tmp_path / "r.json")
    assert cli.main(["run", str(tmp_path / "r.json"), "--out", str(tmp_path / "R"), "-q"]) == 0
    for name, aid in (("pristine", ids[0]), ("cycled-5C", ids[2])):
        stored = ws.load_table(aid)
        assert (tmp_path / "R" / name / "particles.csv").read_bytes() == stored.to_csv(index=False).encode()
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "R" / name / "particles.parquet"), stored)


def test_recipe_from_workspace_falls_back_to_the_sample_and_names_duplicates(workspace):
    ws, ids = workspace
    a = ws.get_analysis(ids[0])
    old = replace(a, provenance={k: v for k, v in a.provenance.items() if k != "input"})  # a row from before snapshots
    e = rc.entry_from_workspace(ws, old)
    assert e.input == rc.DemoInput("pristine", seed=0, shape=(40, 40, 40))
    r = rc.recipe_from_workspace(ws, [ids[0], ids[1]], names=["first", "second"])
    assert [x.name for x in r.analyses] == ["first", "second"]
    with pytest.raises(rc.RecipeError, match=r"are named 'pristine #\d+'; names must be unique"):
        rc.recipe_from_workspace(ws, [ids[0], ids[0]])  # duplicates get the sample id, which is still the same


def test_recipe_from_workspace_refuses_unfinished_or_orphaned(workspace, tmp_path):
    ws, ids = workspace
    failed = replace(ws.get_analysis(ids[0]), status="failed")
    with pytest.raises(rc.RecipeError, match=r"is failed; only finished analyses"):
        rc.entry_from_workspace(ws, failed)
    orphan = ws.get_analysis(ids[2])
    orphan = replace(orphan, provenance={**orphan.provenance, "phases_from_analysis": 9999})
    with pytest.raises(rc.RecipeError, match=r"reused the phases of analysis 9999, which is no longer"):
        rc.entry_from_workspace(ws, orphan)


def test_analyze_recipe_folder_must_exist(analysed, tmp_path, capsys):
    out = tmp_path / "A"
    rc_ = cli.main(["analyze", str(analysed / "data" / "scan.tif"), "--out", str(out), "--recipe",
                    str(tmp_path / "no" / "r.json"), "-q"])
    assert rc_ == cli.EXIT_BAD_INPUT
    assert "the folder of --recipe does not exist" in capsys.readouterr().err
    assert not out.exists()


def test_downsampled_workspace_sample_replays_identically(tmp_path):
    """A sample read downsampled: its recipe carries the factor and replays the same table on the coarse grid."""
    ws = Workspace(tmp_path / "ws")
    s = ws.add_sample("coarse", "demo:cycled-1C", spacing=0.8,
                      source_options={"shape": [64, 64, 64], "seed": 1, "downsample": 2})
    a = run_analysis(ws, s.id, ws.load_volume(s))
    assert a.provenance["downsampled"] == 2 and a.provenance["input_shape"] == [32, 32, 32]
    e = rc.entry_from_workspace(ws, a)
    assert e.input == rc.DemoInput("cycled-1C", seed=1, shape=(64, 64, 64), downsample=2)
    assert e.spacing == (0.8, 0.8, 0.8)
    rc.write_recipe(rc.Recipe((e,)), tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["analyses"][0]["input"]["downsample"] == 2
    assert cli.main(["run", str(tmp_path / "r.json"), "--out", str(tmp_path / "R"), "-q"]) == 0  # checksum verified
    assert (tmp_path / "R" / "coarse" / "particles.csv").read_bytes() == ws.load_table(a.id).to_csv(index=False).encode()


# --------------------------------------------------------------------------- recipes written before the input spec

BASE = Path(__file__).parent / "data" / "recipes_dc2bcee"  # written by the code at commit dc2bcee


def _same_workflow_recipes(folder: Path) -> dict[str, rc.Recipe]:
    """The workflow that wrote BASE, run with this code: a workspace export and an ``analyze --recipe``."""
    from core.io import save_tiff

    ws = Workspace(folder / "_ws")
    s = ws.add_sample("pristine", "demo:pristine", spacing=0.4, source_options={"shape": [32, 32, 32], "seed": 3})
    c = ws.add_sample("cycled", "demo:cycled-1C", spacing=0.4,
                      source_options={"shape": [48, 48, 48], "seed": 1, "downsample": 2})
    ids = [run_analysis(ws, x.id, ws.load_volume(x)).id for x in (s, c)]
    rc.write_recipe(rc.recipe_from_workspace(ws, ids), folder / "workspace.json")
    e = demo_electrode("cycled-5C", rng=2, shape=(32, 32, 32))
    save_tiff(folder / "v.tif", e.greyscale, e.spacing)
    assert cli.main(["analyze", str(folder / "v.tif"), "--out", str(folder / "_A"), "--recipe",
                     str(folder / "analyze.json"), "-q"]) == 0
    return {n: rc.read_recipe(folder / f"{n}.json") for n in ("workspace", "analyze")}


def _with_flood_order(text: str, order: str) -> str:
    """A recipe's text with ``"flood_order"`` after each separation's last key (``min_volume_um3``)."""
    out, n = re.subn(r'( *)"min_volume_um3": ([0-9.]+)\n',
                     rf'\1"min_volume_um3": \2,\n\1"flood_order": "{order}"\n', text)
    assert n >= 1
    return out


def _with_depth_from(text: str) -> str:
    """A recipe's text with ``"depth_from": "electrode"`` after each analysis's last key (``particles``): what the
    same workflow writes since depth runs over the electrode."""
    out, n = re.subn(r'( *)"particles": "watershed"\n', r'\1"particles": "watershed",\n\1"depth_from": "electrode"\n',
                     text)
    assert n >= 1
    return out


def test_recipes_written_before_the_input_spec_replay_byte_identically(tmp_path):
    """Recipes written at dc2bcee: the same workflow writes the same bytes now (the package versions
    aside), and replaying them gives the tables the old code stored, byte for byte."""
    new = _same_workflow_recipes(tmp_path / "new")
    for name in ("workspace", "analyze"):
        text = (BASE / f"{name}.json").read_text(encoding="utf-8")
        old = rc.loads(text, base_dir=BASE)
        # read and written back: the same bytes, and the flood order they replay with (session 29 added the key)
        assert rc.dumps(old, relative_to=BASE) == _with_flood_order(text, "fifo")
        # the one default changed since: the area merge's merge_ratio, 1.2 -> 2.0 (bench/RESULTS.md merge_ratio_s13),
        # which leaves one more particle in the cycled sample (11, was 10): the particle counts are the old ones here,
        # the replay below checks the old recipes' results
        same_env = rc.Recipe(tuple(replace(e, versions=o.versions, n_particles=o.n_particles)
                                   for e, o in zip(new[name].analyses, old.analyses)), old.package_version)
        assert text.count('"merge_ratio": 1.2') == len(old.analyses)
        # and since session 29 the separation records the flood's order (rounds by row; the old recipes, without
        # the key, replay first in, first out)
        assert all(a.params.separation.flood_order == "fifo" for a in old.analyses)
        # and since session 37 depth runs over the electrode (the old recipes, without the key, over the volume)
        assert all(a.params.depth_from == "volume" for a in old.analyses)
        want = _with_depth_from(_with_flood_order(text.replace('"merge_ratio": 1.2', '"merge_ratio": 2.0'), "row"))
        assert rc.dumps(same_env, relative_to=tmp_path / "new") == want
    # replay: the file input is the same greyscale, regenerated beside a copy of the recipe
    shutil.copy(BASE / "analyze.json", tmp_path / "analyze.json")
    shutil.copy(tmp_path / "new" / "v.tif", tmp_path / "v.tif")
    for recipe, tables in (("workspace", {"pristine": "workspace-pristine", "cycled": "workspace-cycled"}),
                           ("analyze", {"v": "analyze-v"})):
        src = BASE / "workspace.json" if recipe == "workspace" else tmp_path / "analyze.json"
        out = tmp_path / f"R-{recipe}"
        assert cli.main(["run", str(src), "--out", str(out), "-q"]) == 0
        for name, stem in tables.items():
            assert (out / name / "particles.csv").read_bytes() == (BASE / f"{stem}.csv").read_bytes()


# --------------------------------------------------------------------------- core.inputs


def test_open_input_reads_files_phase_maps_demos_and_downsamples(tmp_path):
    from core.inputs import DemoInput, FileInput, input_from_source, input_source, open_input, source_options

    vol = np.arange(4 * 6 * 8, dtype=np.uint16).reshape(4, 6, 8)
    save_tiff(tmp_path / "v.tif", vol, 0.5)
    got = open_input(FileInput(tmp_path / "v.tif", downsample=2))
    assert got.volume.shape == (2, 3, 4) and got.spacing == (1.0, 1.0, 1.0) and not got.presegmented
    assert got.volume[0, 0, 0] == vol[:2, :2, :2].mean()
    assert got.info["downsample"] == 2 and got.info["shape_read"] == [4, 6, 8] and got.info["format"] == "tiff"
    assert open_input(FileInput(tmp_path / "v.tif"), spacing=0.25).spacing == (0.25, 0.25, 0.25)
    codes = (vol % 3).astype(np.uint8)
    save_tiff(tmp_path / "p.tif", codes * 100, 0.5)
    ph = open_input(FileInput(tmp_path / "p.tif", phase_map="0=pore,100=cbd,200=nmc"))
    assert ph.presegmented and np.array_equal(ph.volume, codes)
    demo = DemoInput("pristine", seed=2, shape=(16, 16, 16))
    cached = open_input(demo, cache_dir=tmp_path / "cache")
    assert isinstance(cached.volume, np.memmap) and len(list((tmp_path / "cache").glob("demo-*.npy"))) == 1
    np.testing.assert_array_equal(cached.volume, open_input(demo).volume)
    # the workspace storage form round-trips both kinds
    for spec in (demo, FileInput((tmp_path / "v.tif").resolve(), dataset=None, downsample=2),
                 FileInput((tmp_path / "r.raw").resolve(), shape=(2, 3, 4), dtype="uint16", byte_order=">", offset=8)):
        assert input_from_source(input_source(spec), source_options(spec)) == spec
    with pytest.raises(ValueError, match="unknown demo electrode"):
        open_input(DemoInput("nope"))


def test_chunking_keys_are_checked():
    """A recipe entry's chunking: the second try's halo at least the halo, counts whole and >= 0; keys kept as given
    (a recipe written before ``wide_halo`` keeps none: its replay tries no wider window)."""
    def entry(ch):
        return rc.RecipeEntry("c", rc.DemoInput("pristine", 0, (16, 16, 16)), (1.0, 1.0, 1.0), AnalysisParams(),
                              chunking=ch)

    full = {"chunk_size": 64, "halo": 9, "wide_halo": 18, "beyond_halo": 0, "widened": 3, "max_diameter_um": 7.5}
    assert entry(full).chunking == full
    assert entry({"chunk_size": 64, "halo": 9}).chunking == {"chunk_size": 64, "halo": 9}
    for bad in ({"wide_halo": 8}, {"wide_halo": 9.5}, {"widened": -1}, {"widened": True}, {"extra": 1}):
        with pytest.raises(rc.RecipeError, match="chunking must be"):
            entry({"chunk_size": 64, "halo": 9, **bad})
