"""Tests for the command line: ``python -m core {demo,analyze,segment}``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import cli
from core.io import load_volume, save_tiff
from core.metrics import COLUMNS
from core.pipeline import AnalysisParams

REPO = Path(__file__).resolve().parents[2]
DEMO_NAMES = ("pristine", "cycled-1C", "cycled-5C")
DEMO_FILES = ("greyscale.tif", "true_phases.tif", "true_labels.tif", "true_particles.csv")
ANALYZE_FILES = ("labels.tif", "particles.csv", "particles.parquet", "phases.tif", "run.json")


def main_ok(args, capsys=None):
    rc = cli.main([str(a) for a in args])
    if rc != 0:
        err = capsys.readouterr().err if capsys else ""
        raise AssertionError(f"exit {rc}: {err}")
    return rc


def subprocess_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo") / "D"
    assert cli.main(["demo", "--out", str(d), "--seed", "3", "--size", "48", "-q"]) == 0
    return d


@pytest.fixture(scope="module")
def analyzed(demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("analyze") / "O"
    assert cli.main(["analyze", str(demo / "pristine" / "greyscale.tif"), "--out", str(out), "-q"]) == 0
    return out


# --------------------------------------------------------------------------- demo


def test_demo_writes_every_file(demo):
    assert sorted(p.name for p in demo.iterdir()) == sorted(DEMO_NAMES)
    for name in DEMO_NAMES:
        assert sorted(p.name for p in (demo / name).iterdir()) == sorted(DEMO_FILES)
    # no staging folder left behind
    assert not [p for p in demo.parent.iterdir() if ".partial-" in p.name]


@pytest.mark.parametrize("name", DEMO_NAMES)
def test_demo_contents(demo, name):
    grey = load_volume(demo / name / "greyscale.tif")
    phases = load_volume(demo / name / "true_phases.tif")
    labels = load_volume(demo / name / "true_labels.tif")
    for v in (grey, phases, labels):
        assert v.shape == (48, 48, 48)
        assert v.spacing == pytest.approx((0.4, 0.4, 0.4))
    assert grey.data.dtype == np.uint16 and phases.data.dtype == np.uint8
    assert set(np.unique(phases.data)) == {0, 1, 2}
    np.testing.assert_array_equal(labels.data > 0, phases.data == 2)
    table = pd.read_csv(demo / name / "true_particles.csv")
    assert set(COLUMNS) <= set(table.columns)
    assert len(table) == len(np.unique(labels.data)) - 1
    assert set(table["label"]) == set(np.unique(labels.data)) - {0}


def test_demo_other_seed_differs(demo, tmp_path):
    out = tmp_path / "D4"
    assert cli.main(["demo", "--out", str(out), "--seed", "4", "--size", "48", "--names", "pristine", "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["pristine"]
    a = load_volume(demo / "pristine" / "greyscale.tif").data
    b = load_volume(out / "pristine" / "greyscale.tif").data
    assert not np.array_equal(a, b)
    assert (out / "pristine" / "true_particles.csv").read_bytes() != (demo / "pristine" / "true_particles.csv").read_bytes()


def test_demo_subprocess_is_deterministic(demo, tmp_path):
    out = tmp_path / "D3"
    proc = subprocess.run(
        [sys.executable, "-m", "core", "demo", "--out", str(out), "--seed", "3", "--size", "48", "--names", "pristine"],
        cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "[100%]" in proc.stderr  # progress goes to stderr without -q
    for f in ("greyscale.tif", "true_phases.tif", "true_labels.tif"):
        np.testing.assert_array_equal(load_volume(out / "pristine" / f).data, load_volume(demo / "pristine" / f).data)
    pd.testing.assert_frame_equal(
        pd.read_csv(out / "pristine" / "true_particles.csv"), pd.read_csv(demo / "pristine" / "true_particles.csv")
    )


# --------------------------------------------------------------------------- analyze / segment


def test_analyze_greyscale_writes_every_file(analyzed, demo):
    assert sorted(p.name for p in analyzed.iterdir()) == sorted(ANALYZE_FILES)
    assert not [p for p in analyzed.parent.iterdir() if ".partial-" in p.name]
    csv = pd.read_csv(analyzed / "particles.csv")
    assert list(csv.columns) == list(COLUMNS)
    pq = pd.read_parquet(analyzed / "particles.parquet")
    assert list(pq.columns) == list(COLUMNS)
    assert len(csv) == len(pq) > 0
    np.testing.assert_allclose(csv["detachment"].to_numpy(), pq["detachment"].to_numpy(), rtol=1e-12)
    phases = load_volume(analyzed / "phases.tif")
    labels = load_volume(analyzed / "labels.tif")
    assert phases.data.dtype == np.uint8 and set(np.unique(phases.data)) <= {0, 1, 2}
    assert phases.spacing == pytest.approx((0.4, 0.4, 0.4)) and labels.spacing == pytest.approx((0.4, 0.4, 0.4))
    assert int(labels.data.max()) == len(csv)
    assert not labels.data[phases.data != 2].any()


def test_analyze_run_json(analyzed, demo):
    rec = json.loads((analyzed / "run.json").read_text())
    assert rec["command"] == "analyze"
    assert rec["input"]["path"] == str(demo / "pristine" / "greyscale.tif")
    assert rec["input"]["format"] == "tiff" and rec["input"]["spacing_from_metadata"] is True
    params = AnalysisParams.from_dict(rec["params"])
    assert params.segment.low is not None and params.segment.high is not None
    assert params.separator_side in ("start", "end")
    prov = rec["provenance"]
    assert len(prov["input_checksum"]) == 32 and prov["input_shape"] == [48, 48, 48]
    assert set(prov["timings_s"]) == {"phases_s", "particles_s", "metrics_s"} and prov["total_s"] > 0
    assert prov["n_particles"] == len(pd.read_csv(analyzed / "particles.csv"))
    assert isinstance(rec["warnings"], list)


def _strict(text: str):
    """JSON as a strict reader takes it (jq, JavaScript): a bare NaN or Infinity refused."""
    def refuse(name):
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_run_records_are_strict_json_with_null_for_a_number_that_is_not_finite(analyzed, tmp_path):
    """QA walk 17: provenance.json held a bare NaN (a slab's pore grey value where the slab has no pore), which jq
    and JavaScript refuse; a number that is not finite is written as null."""
    from core._json import dumps_strict

    assert _strict(dumps_strict({"pore": [float("nan"), 1.5, float("inf")], "n": np.int64(3)})) == {
        "pore": [None, 1.5, None], "n": 3}
    _strict((analyzed / "run.json").read_text())
    rec = json.loads((analyzed / "run.json").read_text())
    rec["provenance"]["shading"] = {"pore": [float("nan"), 2.0]}  # as a scan with an empty slab gives
    out = tmp_path / "rec"
    out.mkdir()
    (out / "run.json").write_text(dumps_strict(rec, indent=2))
    assert _strict((out / "run.json").read_text())["provenance"]["shading"]["pore"] == [None, 2.0]


def test_analyze_with_params_file_reproduces(analyzed, demo, tmp_path, capsys):
    out = tmp_path / "again"
    # run.json itself is a valid --params file ({"params": {...}})
    main_ok(["analyze", demo / "pristine" / "greyscale.tif", "--out", out, "--params", analyzed / "run.json"], capsys)
    err = capsys.readouterr().err
    assert "[100%]" in err and f"particles -> {out}" in err
    for f in ("phases.tif", "labels.tif"):
        np.testing.assert_array_equal(load_volume(out / f).data, load_volume(analyzed / f).data)
    pd.testing.assert_frame_equal(pd.read_csv(out / "particles.csv"), pd.read_csv(analyzed / "particles.csv"))


def test_analyze_seeding_deconvolved_keeps_the_phases_and_is_recorded(analyzed, demo, tmp_path, capsys):
    out = tmp_path / "dec"
    main_ok(["analyze", demo / "pristine" / "greyscale.tif", "--out", out, "--seeding", "deconvolved", "-q"], capsys)
    np.testing.assert_array_equal(load_volume(out / "phases.tif").data, load_volume(analyzed / "phases.tif").data)
    assert json.loads((out / "run.json").read_text())["params"]["seeding"] == "deconvolved"
    assert "seeding" not in json.loads((analyzed / "run.json").read_text())["params"]
    # seeds from the greyscale need the greyscale: one sentence for a phase volume
    rc = cli.main(["analyze", str(demo / "pristine" / "true_phases.tif"), "--phase-map", "0=pore,1=cbd,2=nmc",
                   "--seeding", "deconvolved", "--out", str(tmp_path / "o"), "-q"])
    assert rc == 2
    assert "needs the greyscale volume" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_segment_command_matches_analyze(analyzed, demo, tmp_path):
    out = tmp_path / "S"
    assert cli.main(["segment", str(demo / "pristine" / "greyscale.tif"), "--out", str(out), "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["phases.tif"]
    np.testing.assert_array_equal(load_volume(out / "phases.tif").data, load_volume(analyzed / "phases.tif").data)


def test_spacing_one_value_is_isotropic(demo, tmp_path):
    src = str(demo / "pristine" / "greyscale.tif")
    for given, want in ((["0.5"], (0.5, 0.5, 0.5)), (["0.5", "0.4", "0.3"], (0.5, 0.4, 0.3))):
        out = tmp_path / "_".join(given)
        assert cli.main(["segment", src, "--spacing", *given, "--out", str(out), "-q"]) == 0
        np.testing.assert_allclose(load_volume(out / "phases.tif").spacing, want)


def test_analyze_phase_volume_with_phase_map(demo, tmp_path):
    src = demo / "pristine" / "true_phases.tif"
    o2, o3 = tmp_path / "O2", tmp_path / "O3"
    assert cli.main(["analyze", str(src), "--phase-map", "0=pore,1=cbd,2=nmc", "--out", str(o2), "-q"]) == 0
    assert sorted(p.name for p in o2.iterdir()) == sorted(ANALYZE_FILES)
    np.testing.assert_array_equal(load_volume(o2 / "phases.tif").data, load_volume(src).data)
    rec = json.loads((o2 / "run.json").read_text())
    assert rec["provenance"]["presegmented"] is True
    assert rec["params"]["separator_side"] == "start"  # the demo's free surface is at z = 0
    t2 = pd.read_csv(o2 / "particles.csv")
    assert list(t2.columns) == list(COLUMNS)
    # the separator side given on the command line flips depth_frac
    assert cli.main(["analyze", str(src), "--phase-map", "0=pore,1=cbd,2=nmc", "--separator-side", "end",
                     "--axis", "0", "--out", str(o3), "-q"]) == 0
    t3 = pd.read_csv(o3 / "particles.csv")
    assert json.loads((o3 / "run.json").read_text())["params"]["separator_side"] == "end"
    np.testing.assert_allclose(t2["depth_frac"] + t3["depth_frac"], 1.0)
    # a remapped file (NMC stored as 255, CBD as 128) gives the same result
    ph = load_volume(src).data
    remapped = np.choose(ph, [0, 128, 255]).astype(np.uint8)
    save_tiff(tmp_path / "remapped.tif", remapped, (0.4, 0.4, 0.4))
    o4 = tmp_path / "O4"
    assert cli.main(["analyze", str(tmp_path / "remapped.tif"), "--phase-map", "0=pore,128=cbd,255=nmc",
                     "--out", str(o4), "-q"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(o4 / "particles.csv"), t2)


# --------------------------------------------------------------------------- bad input


def _bad_cases(d: Path) -> dict[str, list[str]]:
    """Write the bad inputs into ``d``; return name -> CLI arguments (without --out)."""
    (d / "x.tif").write_text("this is not a TIFF\n")
    (d / "short.raw").write_bytes(b"\0" * 100)
    save_tiff(d / "const.tif", np.full((8, 8, 8), 7, np.uint16), 1.0)
    save_tiff(d / "nan.tif", np.full((8, 8, 8), np.nan, np.float32), 1.0)
    seven = np.zeros((8, 8, 8), np.uint8)
    seven[2:6, 2:6, 2:6] = 2
    seven[0, 0, 0] = 7
    save_tiff(d / "seven.tif", seven, 1.0)
    save_tiff(d / "no_nmc.tif", np.ones((8, 8, 8), np.uint8), 1.0)
    good = np.zeros((8, 8, 8), np.uint16)
    good[2:6] = 1000
    save_tiff(d / "good.tif", good, 1.0)
    (d / "bad.json").write_text("{not json")
    (d / "unknown.json").write_text('{"segment": {"nonsense": 1}}')
    return {
        "missing file": ["analyze", str(d / "missing.tif")],
        "text file named .tif": ["analyze", str(d / "x.tif")],
        "raw file of the wrong size": ["analyze", str(d / "short.raw"), "--raw-shape", "4", "4", "4",
                                       "--raw-dtype", "uint16"],
        "constant volume": ["analyze", str(d / "const.tif")],
        "all-NaN float volume": ["analyze", str(d / "nan.tif")],
        "unknown phase value": ["analyze", str(d / "seven.tif"), "--phase-map", "0=pore,1=cbd,2=nmc"],
        "phase volume without NMC": ["analyze", str(d / "no_nmc.tif"), "--phase-map", "0=pore,1=cbd,2=nmc"],
        "bad params JSON": ["analyze", str(d / "good.tif"), "--params", str(d / "bad.json")],
        "unknown params key": ["analyze", str(d / "good.tif"), "--params", str(d / "unknown.json")],
        "missing params file": ["analyze", str(d / "good.tif"), "--params", str(d / "nope.json")],
        "bad phase map": ["analyze", str(d / "seven.tif"), "--phase-map", "0=pore,1=glue"],
        "segment constant volume": ["segment", str(d / "const.tif")],
        "unknown demo name": ["demo", "--names", "pristine", "nope"],
    }


BAD_MATCH = {
    "missing file": r"no such file: .*missing\.tif",
    "text file named .tif": r"could not read .*x\.tif as TIFF",
    "raw file of the wrong size": r"has 100 bytes .* needs 128 bytes",
    "constant volume": r"constant \(every voxel = 7\)",
    "all-NaN float volume": r"no finite value",
    "unknown phase value": r"does not cover: 7 \(1 voxel\)",
    "phase volume without NMC": r"the NMC phase is empty",
    "bad params JSON": r"bad\.json is not valid JSON",
    "unknown params key": r"unknown 'segment' parameter\(s\) \['nonsense'\]",
    "missing params file": r"no such parameter file",
    "bad phase map": r"glue",
    "segment constant volume": r"constant",
    "unknown demo name": r"unknown demo electrode 'nope'",
}


@pytest.mark.parametrize("case", list(BAD_MATCH))
def test_bad_input_exits_2_and_writes_nothing(case, tmp_path, capsys):
    import re

    args = _bad_cases(tmp_path)[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    out = tmp_path / "out"
    rc = cli.main(args + ["--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ") and lines[0].endswith(".")
    assert re.search(BAD_MATCH[case], lines[0]), lines[0]
    assert "Traceback" not in captured.err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no '.out.partial-*' left


def test_bad_input_in_a_real_process(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "core", "analyze", str(tmp_path / "missing.tif"), "--out", str(out)],
        cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: no such file: {tmp_path / 'missing.tif'}."]
    assert proc.stdout == ""
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_out_parent_must_exist(demo, tmp_path, capsys):
    out = tmp_path / "no" / "such" / "O"
    rc = cli.main(["analyze", str(demo / "pristine" / "true_phases.tif"), "--phase-map", "0=pore,1=cbd,2=nmc",
                   "--out", str(out), "-q"])
    assert rc == 2
    assert "the parent folder of --out does not exist" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_analyze_warns_when_the_blur_is_beyond_the_partial_volume_correction(tmp_path, capsys):
    from core.synth import ElectrodeParams, ImagingParams, make_electrode

    # 0.5 µm blur on 0.25 µm voxels: σ 2 voxels, beyond what the correction handles
    e = make_electrode(ElectrodeParams(shape=(40, 48, 48), spacing=(0.25,) * 3), ImagingParams(blur_um=0.5), rng=2)
    src = tmp_path / "blurred.tif"
    save_tiff(src, e.greyscale, e.spacing)
    assert cli.main(["analyze", str(src), "--out", str(tmp_path / "out"), "-q"]) == 0
    err = capsys.readouterr().err
    assert "warning: The blur" in err and "downsample the volume by" in err and "--downsample" in err
    rec = json.loads((tmp_path / "out" / "run.json").read_text())
    assert any("wider than the partial-volume correction handles" in w for w in rec["warnings"])
    assert rec["params"]["segment"]["pv_sigma"] > 0.9


def test_analyze_downsample_writes_the_coarse_grid_and_replays(tmp_path, capsys):
    from core.io import load_volume
    from core.synth import ElectrodeParams, make_electrode

    e = make_electrode(ElectrodeParams(shape=(50, 48, 48), spacing=(0.25,) * 3), rng=3)
    src = tmp_path / "fine.tif"
    save_tiff(src, e.greyscale, e.spacing)
    out, recipe = tmp_path / "out", tmp_path / "r.json"
    assert cli.main(["analyze", str(src), "--out", str(out), "--downsample", "2", "--recipe", str(recipe), "-q"]) == 0
    phases = load_volume(out / "phases.tif")
    assert phases.shape == (25, 24, 24)
    assert phases.spacing == pytest.approx((0.5, 0.5, 0.5))
    rec = json.loads((out / "run.json").read_text())
    assert rec["input"]["downsample"] == 2 and rec["input"]["shape_read"] == [50, 48, 48]
    assert rec["provenance"]["spacing_um"] == pytest.approx([0.5, 0.5, 0.5])
    assert rec["provenance"]["downsampled"] == 2
    assert json.loads(recipe.read_text())["analyses"][0]["input"]["downsample"] == 2
    # the recipe replays on the same coarse grid: the checksum of the downsampled input matches
    assert cli.main(["run", str(recipe), "--out", str(tmp_path / "replay"), "-q"]) == 0
    a = pd.read_csv(out / "particles.csv")
    b = pd.read_csv(tmp_path / "replay" / "fine" / "particles.csv")
    pd.testing.assert_frame_equal(a, b)
    # segment too
    assert cli.main(["segment", str(src), "--out", str(tmp_path / "seg"), "--downsample", "2", "-q"]) == 0
    assert load_volume(tmp_path / "seg" / "phases.tif").shape == (25, 24, 24)


@pytest.mark.parametrize("value, message", [("0", "must be between 1 and 8, got 0"), ("9", "between 1 and 8"),
                                            ("1.5", "not a whole number")])
def test_downsample_bad_factor_is_a_usage_error(tmp_path, capsys, value, message):
    rc = cli.main(["analyze", str(tmp_path / "x.tif"), "--out", str(tmp_path / "o"), "--downsample", value])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --downsample: ") and err.count("\n") == 1 and "usage" not in err
    assert message in err


def test_usage_errors_are_one_line_and_help_still_works(capsys):
    assert cli.main(["analyze", "x.tif"]) == 2
    assert capsys.readouterr().err == "error: the following arguments are required: --out.\n"
    assert cli.main(["analyze", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m core analyze") and "--overwrite" in out


def test_downsample_refused_for_a_phase_volume(demo, tmp_path, capsys):
    rc = cli.main(["analyze", str(demo / "pristine" / "true_phases.tif"), "--phase-map", "0=pore,1=cbd,2=nmc",
                   "--downsample", "2", "--out", str(tmp_path / "o"), "-q"])
    assert rc == 2
    assert "--downsample cannot be used with --phase-map" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_segment_warns_of_filled_nonfinite_voxels_and_checks_memory(tmp_path, capsys, monkeypatch):
    """`segment` follows the analysis's rules: a few NaN voxels are filled with a warning, and a volume whose
    estimated peak exceeds the memory budget is refused before any work (nothing written)."""
    from core.synth import demo_electrode

    vol = demo_electrode("pristine", shape=(40, 40, 40), rng=0).greyscale.astype(np.float32)
    vol[0, 0, :3] = np.nan
    np.save(tmp_path / "v.npy", vol)
    assert cli.main(["segment", str(tmp_path / "v.npy"), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "3 of 64000 voxels" in err and "median grey value" in err
    phases = np.asarray(load_volume(tmp_path / "o" / "phases.tif").data)
    assert phases.shape == (40, 40, 40) and set(np.unique(phases)) <= {0, 1, 2}

    monkeypatch.setenv("DETACH_MEMORY_BUDGET", "1M")
    assert cli.main(["segment", str(tmp_path / "v.npy"), "--out", str(tmp_path / "o2"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: This analysis needs about") and "DETACH_MEMORY_BUDGET" in err and "\n" not in err
    assert not (tmp_path / "o2").exists()


# --------------------------------------------------------------------------- train-classifier / segment --method classifier


@pytest.fixture(scope="module")
def painted(tmp_path_factory):
    """A 32³ demo greyscale and scribbles taken from its true phases (2 % of the voxels), as TIFFs."""
    from core.synth import demo_electrode

    d = tmp_path_factory.mktemp("painted")
    e = demo_electrode("pristine", rng=1, shape=(32, 32, 32))
    s = np.full(e.phases.shape, 255, np.uint8)
    pick = np.random.default_rng(0).random(e.phases.shape) < 0.02
    s[pick] = e.phases[pick]
    save_tiff(d / "img.tif", e.greyscale, e.spacing)
    save_tiff(d / "scr.tif", s, e.spacing)
    save_tiff(d / "slice.tif", e.greyscale[10], e.spacing)
    save_tiff(d / "slice_scr.tif", s[10], e.spacing)
    np.save(d / "scr16.npy", s.astype(np.uint16))
    np.save(d / "scr_short.npy", s[:, :, :31])
    return d, e


def test_train_classifier_then_segment(painted, tmp_path, capsys):
    d, e = painted
    clf = tmp_path / "CLF"
    main_ok(["train-classifier", "--image", d / "img.tif", "--scribbles", d / "scr.tif", "--out", clf, "-q"], capsys)
    assert sorted(p.name for p in clf.iterdir()) == ["classifier.json", "pairs.npz"]
    main_ok(["segment", d / "img.tif", "--out", tmp_path / "S", "--method", "classifier", "--classifier", clf, "-q"],
            capsys)
    phases = np.asarray(load_volume(tmp_path / "S" / "phases.tif").data)
    assert phases.shape == (32, 32, 32) and phases.dtype == np.uint8
    assert np.mean(phases == e.phases) > 0.8
    # trained again into another folder: the same phases (deterministic)
    main_ok(["train-classifier", "--image", d / "img.tif", "--scribbles", d / "scr.tif", "--out", tmp_path / "C2",
             "-q"], capsys)
    main_ok(["segment", d / "img.tif", "--out", tmp_path / "S2", "--method", "classifier", "--classifier",
             tmp_path / "C2", "-q"], capsys)
    np.testing.assert_array_equal(np.asarray(load_volume(tmp_path / "S2" / "phases.tif").data), phases)
    # --overwrite replaces a classifier folder
    main_ok(["train-classifier", "--image", d / "img.tif", "--scribbles", d / "scr.tif", "--out", clf, "-q",
             "--overwrite", "--seed", "4"], capsys)
    assert '"seed": 4' in (clf / "classifier.json").read_text()


def test_train_classifier_on_two_images_and_a_slice(painted, tmp_path, capsys):
    d, _ = painted
    main_ok(["train-classifier", "--image", d / "slice.tif", "--scribbles", d / "slice_scr.tif", "--out",
             tmp_path / "C", "--spacing", "1", "0.4", "0.4"], capsys)
    assert "-> " in capsys.readouterr().err
    main_ok(["segment", d / "slice.tif", "--out", tmp_path / "S", "--method", "classifier", "--classifier",
             tmp_path / "C", "-q"], capsys)
    assert np.asarray(load_volume(tmp_path / "S" / "phases.tif").data).shape == (1, 32, 32)
    main_ok(["train-classifier", "--image", d / "img.tif", "--scribbles", d / "scr.tif", "--image", d / "img.tif",
             "--scribbles", d / "scr.tif", "--out", tmp_path / "C2", "-q"], capsys)


def test_train_classifier_on_a_png_slice_with_png_scribbles(painted, tmp_path, capsys):
    """A micrograph and the strokes painted on it in an image editor, both PNG (read as 1-slice volumes since
    session 41): trained, then the same slice classified like its TIFF."""
    from PIL import Image

    d, e = painted
    grey = np.asarray(load_volume(d / "slice.tif").data)[0]
    scr = np.asarray(load_volume(d / "slice_scr.tif").data)[0]
    lo, hi = float(grey.min()), float(grey.max())
    Image.fromarray(np.rint((grey - lo) / (hi - lo) * 255).astype(np.uint8)).save(tmp_path / "slice.png")
    Image.fromarray(scr).save(tmp_path / "slice_scr.png")
    main_ok(["train-classifier", "--image", tmp_path / "slice.png", "--scribbles", tmp_path / "slice_scr.png",
             "--out", tmp_path / "C", "-q"], capsys)
    main_ok(["segment", tmp_path / "slice.png", "--out", tmp_path / "S", "--method", "classifier", "--classifier",
             tmp_path / "C", "-q"], capsys)
    phases = np.asarray(load_volume(tmp_path / "S" / "phases.tif").data)
    assert phases.shape == (1, 32, 32) and np.mean(phases[0] == e.phases[10]) > 0.8


CLASSIFIER_BAD = [
    (["segment", "{d}/img.tif", "--classifier", "{d}"], "--classifier is only used with --method classifier"),
    (["segment", "{d}/img.tif", "--method", "classifier"], "--method classifier needs --classifier CLF"),
    (["segment", "{d}/img.tif", "--method", "classifier", "--classifier", "{d}/img.tif"],
     "is not a classifier folder written by"),
    (["segment", "{d}/img.tif", "--method", "classifier", "--classifier", "{d}/missing"], "no such folder"),
    (["segment", "{d}/img.tif", "--method", "classifier", "--classifier", "{d}/model.pkl"],
     "is not a classifier folder written by"),
    (["segment", "{d}/img.tif", "--method", "classifier", "--classifier", "{d}", "--weights", "x.pt"],
     "--weights is only used with --method model"),
    (["train-classifier", "--image", "{d}/img.tif", "--scribbles", "{d}/scr16.npy"], "must be uint8"),
    (["train-classifier", "--image", "{d}/img.tif", "--scribbles", "{d}/scr_short.npy"],
     "has shape (32, 32, 31), its --image"),
    (["train-classifier", "--image", "{d}/img.tif"], "the following arguments are required: --scribbles"),
    (["train-classifier", "--image", "{d}/img.tif", "--scribbles", "{d}/scr.tif", "--image", "{d}/img.tif"],
     "2 --image but 1 --scribbles"),
    (["train-classifier", "--image", "{d}/img.tif", "--scribbles", "{d}/img.tif"], "must be uint8"),
    (["train-classifier", "--image", "{d}/nope.tif", "--scribbles", "{d}/scr.tif"], "nope.tif"),
    (["train-classifier", "--image", "{d}/img.tif", "--scribbles", "{d}/scr.tif", "--image", "{d}/slice.tif",
      "--scribbles", "{d}/slice_scr.tif"], "mix single slices"),
    (["train-classifier", "--image", "{d}/img.tif", "--scribbles", "{d}/scr.tif", "--seed", "-1"],
     "--seed: must be a whole number from 0"),
]


@pytest.mark.parametrize("argv, message", CLASSIFIER_BAD, ids=[" ".join(a[:3]) + f" #{i}" for i, (a, _) in
                                                                 enumerate(CLASSIFIER_BAD)])
def test_classifier_bad_inputs_exit_2_and_write_nothing(painted, tmp_path, capsys, argv, message):
    import pickle

    d, _ = painted
    (d / "model.pkl").write_bytes(pickle.dumps({"a": 1}))
    out = tmp_path / "o"
    rc = cli.main([a.format(d=d) for a in argv] + ["--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_train_classifier_out_checked_before_reading(painted, tmp_path, capsys):
    d, _ = painted
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    rc = cli.main(["train-classifier", "--image", str(d / "nope.tif"), "--scribbles", str(d / "scr.tif"), "--out",
                   str(tmp_path / "full"), "-q"])
    assert rc == 2 and "holds 'x.txt', which this tool did not write; choose another" in capsys.readouterr().err


def test_analyze_notes_specks_that_touch_no_particle(tmp_path, capsys):
    """A particle half in pore and three specks of 8 voxels (0.51 µm³ at 0.4 µm) in the CBD: the CLI says so."""
    z, y, x = np.ogrid[:24, :24, :24]
    phases = np.ones((24, 24, 24), np.uint8)
    phases[:, :, 20:] = 0
    phases[(z - 12) ** 2 + (y - 12) ** 2 + (x - 16) ** 2 <= 36] = 2
    for c in (6, 12, 18):
        phases[c : c + 2, 4:6, 4:6] = 2
    save_tiff(tmp_path / "seg.tif", phases, (0.4, 0.4, 0.4))
    capsys.readouterr()
    main_ok(["analyze", tmp_path / "seg.tif", "--out", tmp_path / "out", "--phase-map", "0=pore,1=cbd,2=nmc"], capsys)
    err = capsys.readouterr().err
    assert "note: 3 of 4 particles are smaller than the minimum particle volume (1 µm³, a ball 1.24 µm" in err
    assert len(pd.read_csv(tmp_path / "out" / "particles.csv")) == 4  # nothing left out of the table


def test_inspect_says_what_an_analysis_would_read(tmp_path, capsys):
    """``inspect``: shape, voxel size and where it comes from, a raw file's header, a segmented look, a fill with the
    crop without it, memory and engine, from the header and a few planes; as text and as JSON."""
    from core.synth import demo_electrode

    g = demo_electrode("cycled-1C", rng=2, shape=(32, 64, 64)).greyscale.copy()
    yy, xx = np.mgrid[:64, :64]
    g[:, (yy - 31.5) ** 2 + (xx - 31.5) ** 2 > 32 ** 2] = 0
    save_tiff(tmp_path / "fov.tif", g, (0.4, 0.4, 0.4))
    assert cli.main(["inspect", str(tmp_path / "fov.tif"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "tiff" and info["shape_file_zyx"] == [32, 64, 64] and info["voxel_um_zyx"] == [0.4] * 3
    assert info["voxel_size_from"] == "the file's metadata" and info["engine"] == "whole volume"
    (z0, z1), (y0, y1), (x0, x1) = info["fill"]["crop_without_it"]
    assert (z0, z1) == (0, 32) and not (g[z0:z1, y0:y1, x0:x1] == 0).any()
    assert cli.main(["inspect", str(tmp_path / "fov.tif")]) == 0
    assert "  FILL: " in capsys.readouterr().out  # what the analysis does with it, not an alarm: it is handled
    # the crop it proposes, given back: no fill left, the shapes said
    assert cli.main(["inspect", str(tmp_path / "fov.tif"), "--crop", str(z0), str(z1), str(y0), str(y1), str(x0), str(x1),
                 "--downsample", "2"]) == 0
    text = capsys.readouterr().out
    assert "FILL" not in text and f"cropped to z {z0}:{z1}, y {y0}:{y1}, x {x0}:{x1}" in text
    assert "downsampled by 2" in text and "voxel size 0.8×0.8×0.8 µm" in text
    # a raw file laid out by its ESRF header; a segmented volume
    (tmp_path / "r.vol").write_bytes(g.astype("<f4").tobytes())
    (tmp_path / "r.vol.info").write_text("NUM_X = 64\nNUM_Y = 64\nNUM_Z = 32\nvoxelSize = 0.05\n")
    assert cli.main(["inspect", str(tmp_path / "r.vol")]) == 0
    text = capsys.readouterr().out
    assert "laid out by ESRF .vol.info (r.vol.info)" in text and "voxel size 0.05×0.05×0.05 µm (from its header" in text
    seg = np.zeros((8, 16, 16), np.uint8)
    seg[:, 4:12, 4:12] = 2
    seg[:, 6:10, 2:4] = 1
    save_tiff(tmp_path / "seg.tif", seg, (1.0, 1.0, 1.0))
    assert cli.main(["inspect", str(tmp_path / "seg.tif")]) == 0
    text = capsys.readouterr().out
    assert "looks already segmented: values [0, 1, 2]" in text and "0=pore,1=cbd,2=nmc" in text
    assert "none in the file: 1 µm assumed" not in text  # its TIFF states 1 µm


def test_inspect_says_when_a_raw_files_rows_do_not_line_up(tmp_path, capsys):
    """QA: a raw file read with z and x swapped (its byte count right) came out scrambled, unsaid; ``inspect`` says
    the rows' likely length, and nothing for the right layout."""
    from core.synth import demo_electrode

    g = demo_electrode("cycled-1C", rng=2, shape=(32, 48, 64)).greyscale
    g.astype("<f4").tofile(tmp_path / "r.raw")
    base = ["inspect", str(tmp_path / "r.raw"), "--raw-dtype", "float32", "--raw-shape"]
    assert cli.main(base + ["64", "48", "32"]) == 0
    assert ("ROWS DO NOT LINE UP: the voxels of the middle slice are most like those 64 further on, not 32"
            in capsys.readouterr().out)
    assert cli.main(base + ["32", "48", "64"]) == 0
    assert "ROWS" not in capsys.readouterr().out


def test_a_big_endian_raw_file_is_read_with_raw_byte_order_big(tmp_path):
    """ImageJ / Fiji's Save As > Raw Data writes big-endian: --raw-byte-order big reads it (the default, little,
    reads it byte-swapped)."""
    vol = np.linspace(0.1, 0.9, 4 * 6 * 8, dtype=np.float32).reshape(4, 6, 8)
    path = tmp_path / "imagej.raw"
    path.write_bytes(vol.astype(">f4").tobytes())
    base = ["inspect", str(path), "--raw-shape", "4", "6", "8", "--raw-dtype", "float32"]
    spec = cli._input_spec(cli.build_parser().parse_args(base + ["--raw-byte-order", "big"]))
    assert spec.byte_order == ">"
    np.testing.assert_array_equal(np.asarray(load_volume(spec.path, **spec.load_kwargs()).data), vol)
    little = cli._input_spec(cli.build_parser().parse_args(base))
    assert little.byte_order == "<"
    assert not np.array_equal(np.asarray(load_volume(little.path, **little.load_kwargs()).data), vol)


def test_analyze_says_when_the_voxel_size_is_assumed(tmp_path, capsys):
    """QA: a TIFF without a voxel size was measured at 1 µm unsaid (``inspect`` and the dashboard say it); with
    --spacing, or a file that states it, nothing is said."""
    import tifffile

    from core.synth import demo_electrode

    g = demo_electrode("pristine", rng=1, shape=(32, 32, 32)).greyscale
    tifffile.imwrite(tmp_path / "bare.tif", g)
    assert cli.main(["analyze", str(tmp_path / "bare.tif"), "--out", str(tmp_path / "a"), "-q"]) == 0
    said = "the file states no voxel size and --spacing was not given: measured at 1×1×1 µm assumed"
    assert said in capsys.readouterr().err
    assert any(w.startswith(said) for w in json.loads((tmp_path / "a" / "run.json").read_text())["warnings"])
    assert cli.main(["analyze", str(tmp_path / "bare.tif"), "--out", str(tmp_path / "b"), "--spacing", "0.4",
                     "-q"]) == 0
    assert "no voxel size" not in capsys.readouterr().err


def test_a_phase_map_of_negative_values_is_read(tmp_path, capsys):
    """QA: ``--phase-map -1=pore,1=nmc,2=cbd`` gave "--phase-map: expected one argument" (argparse took the map
    for an option)."""
    import tifffile

    v = np.full((24, 32, 32), -1, np.int8)
    v[:, 8:24, 8:24] = 1
    v[:, 4:8, 4:28] = 2
    tifffile.imwrite(tmp_path / "neg.tif", v)
    assert cli.main(["analyze", str(tmp_path / "neg.tif"), "--phase-map", "-1=pore,1=nmc,2=cbd", "--spacing", "0.4",
                     "--out", str(tmp_path / "o"), "-q"]) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "o" / "run.json").read_text())["input"]["phase_map"] == "-1=pore,1=nmc,2=cbd"


def test_a_runs_warnings_leave_out_unclosed_sockets():
    """QA: a chunked run on a cluster printed "warning: unclosed <socket.socket fd=9 ...>" (dask's comms), recorded
    with the run's own warnings."""
    import warnings

    with cli._caught_warnings() as caught:
        warnings.warn("unclosed <socket.socket fd=9>", ResourceWarning)
        warnings.warn("3 particles beyond the halo", UserWarning)
    assert [str(w.message) for w in caught] == ["3 particles beyond the halo"]


def test_the_help_names_every_format(capsys):
    """QA: ``analyze --help`` named 7 of the 14 formats the command reads."""
    assert cli.main(["analyze", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for word in ("DICOM", "NIfTI", "MRC", "Avizo", "EDF", "Zeiss .txm", "PNG/BMP/JPEG", "HDF5", "zarr"):
        assert word in text
