"""``python -m core analyze INPUT --method classifier --classifier CLF`` and ``run()`` with a trained classifier."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import cli
from core.io import save_tiff
from core.memory import estimate_peak_bytes, method_label
from core.pipeline import AnalysisParams, run
from core.synth import demo_electrode

N = 64


def main_ok(args, capsys):
    rc = cli.main([str(a) for a in args])
    assert rc == 0, capsys.readouterr().err
    capsys.readouterr()


@pytest.fixture(scope="module")
def painted(tmp_path_factory):
    """A 64³ demo electrode, scribbles = its true phases on three z-slices, and a classifier trained on them."""
    d = tmp_path_factory.mktemp("painted")
    e = demo_electrode("pristine", rng=1, shape=(N, N, N))
    s = np.full(e.phases.shape, 255, np.uint8)
    for z in (N // 6, N // 2, 5 * N // 6):
        s[z] = e.phases[z]
    save_tiff(d / "img.tif", e.greyscale, e.spacing)
    save_tiff(d / "scr.tif", s, e.spacing)
    assert cli.main(["train-classifier", "--image", str(d / "img.tif"), "--scribbles", str(d / "scr.tif"),
                     "--out", str(d / "CLF"), "-q"]) == 0
    return d, e


def test_default_params_dict_unchanged():
    """A new field must not change the parameters of the existing methods (stored recipes replay byte for byte)."""
    # "seeding" and "refine" are written since their defaults became "auto", "depth_from" since depth runs over the
    # electrode; a dict written before (without them) reads as "phases", "off" and "volume" and is written back the
    # same
    assert list(AnalysisParams().to_dict()) == ["method", "segment", "separation", "axis", "separator_side", "model",
                                                "particles", "seeding", "refine", "depth_from"]
    old = {k: v for k, v in AnalysisParams().to_dict().items() if k not in ("seeding", "refine", "depth_from")}
    assert json.dumps(AnalysisParams.from_dict(old).to_dict()) == json.dumps(old)
    assert list(AnalysisParams(method="model").to_dict()) == list(AnalysisParams().to_dict())
    p = AnalysisParams(method="classifier", classifier="/x/CLF")
    assert p.to_dict()["classifier"] == "/x/CLF"
    assert AnalysisParams.from_dict(p.to_dict()) == p
    assert AnalysisParams.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_analyze_classifier_table_close_to_thresholds_and_deterministic(painted, tmp_path, capsys):
    d, e = painted
    clf = d / "CLF"
    main_ok(["analyze", d / "img.tif", "--out", tmp_path / "A", "--method", "classifier", "--classifier", clf, "-q"],
            capsys)
    main_ok(["analyze", d / "img.tif", "--out", tmp_path / "B", "--method", "classifier", "--classifier", clf, "-q"],
            capsys)
    main_ok(["analyze", d / "img.tif", "--out", tmp_path / "T", "-q"], capsys)
    assert sorted(p.name for p in (tmp_path / "A").iterdir()) == sorted(p.name for p in (tmp_path / "T").iterdir())
    a = pd.read_csv(tmp_path / "A" / "particles.csv")
    t = pd.read_csv(tmp_path / "T" / "particles.csv")
    assert list(a.columns) == list(t.columns)
    assert abs(len(a) - len(t)) <= max(3, 0.2 * len(t)), (len(a), len(t), len(e.table))
    # two runs: the same table, byte for byte
    for name in ("particles.csv", "particles.parquet"):
        assert (tmp_path / "A" / name).read_bytes() == (tmp_path / "B" / name).read_bytes()
    record = json.loads((tmp_path / "A" / "run.json").read_text())
    assert record["params"]["method"] == "classifier"
    assert record["params"]["classifier"] == str(clf.resolve())
    prov = record["provenance"]
    assert prov["phases_from"] == "classifier" and prov["classifier"] == str(clf.resolve())
    assert prov["classifier_pairs_sha256"] == hashlib.sha256((clf / "pairs.npz").read_bytes()).hexdigest()
    assert "classifier" not in json.loads((tmp_path / "T" / "run.json").read_text())["params"]


def test_run_with_classifier_params(painted):
    d, e = painted
    params = AnalysisParams(method="classifier", classifier=str(d / "CLF"))
    seen = []
    res = run(e.greyscale, params, spacing=e.spacing, progress=lambda f, m: seen.append((f, m)))
    assert res.params.classifier == params.classifier and res.provenance["phases_from"] == "classifier"
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(m.startswith("classifying slices") for _, m in seen)
    assert np.mean(res.phases == e.phases) > 0.8
    assert len(res.table) == res.provenance["n_particles"] > 0


def test_the_classifier_phases_small_islands_join_the_phase_around_them(painted):
    from dataclasses import replace

    from core.classify import load_classifier
    from core.phases import SegmentParams, remove_small_islands

    d, e = painted
    grey = e.greyscale.copy()
    hi = int(np.percentile(grey, 99.9))
    for z, y, x in ((10, 10, 10), (30, 40, 20), (50, 20, 45)):  # single bright voxels: NMC specks in any phase
        grey[z, y, x] = hi
    predicted = load_classifier(d / "CLF").predict(grey, e.spacing)[0]
    params = AnalysisParams(method="classifier", classifier=str(d / "CLF"))
    res = run(grey, params, spacing=e.spacing)
    np.testing.assert_array_equal(res.phases, remove_small_islands(predicted, SegmentParams().min_island))
    assert not np.array_equal(res.phases, predicted)  # there were islands
    off = run(grey, replace(params, segment=SegmentParams(min_island=0)), spacing=e.spacing)
    np.testing.assert_array_equal(off.phases, predicted)  # min_island 0: as predicted


def test_nonfinite_voxels_filled_and_warned(painted):
    d, e = painted
    grey = e.greyscale.astype(np.float32)
    grey[3, 5, 7] = np.nan
    params = AnalysisParams(method="classifier", classifier=str(d / "CLF"))
    with pytest.warns(UserWarning, match="not finite"):
        res = run(grey, params, spacing=e.spacing)
    assert res.provenance["nonfinite_filled"] == 1
    assert np.isnan(grey[3, 5, 7])  # the input is not modified


def test_memory_estimate_counts_the_feature_bank():
    shape = (256, 256, 256)
    clf = AnalysisParams(method="classifier", classifier="c")
    assert method_label(clf) == "trained classifier"
    assert estimate_peak_bytes(shape, "uint16", clf) > estimate_peak_bytes(shape, "uint16")
    assert estimate_peak_bytes(shape, "float32", clf) > estimate_peak_bytes(shape, "uint16", clf)


BAD = [
    (["--classifier", "{d}/CLF"], "--classifier is only used with --method classifier"),
    (["--method", "threshold", "--classifier", "{d}/CLF"], "--classifier is only used with --method classifier"),
    (["--method", "classifier"], "--method classifier needs --classifier CLF"),
    (["--method", "classifier", "--classifier", "{d}/missing"], "no such folder"),
    (["--method", "classifier", "--classifier", "{d}/img.tif"], "is not a classifier folder written by"),
    (["--method", "classifier", "--classifier", "{d}/CLF", "--weights", "x.pt"],
     "--weights is only used with --method model"),
]


@pytest.mark.parametrize("extra, message", BAD)
def test_bad_combinations_exit_2_with_one_line(painted, tmp_path, capsys, extra, message):
    d, _ = painted
    capsys.readouterr()
    rc = cli.main(["analyze", str(d / "img.tif"), "--out", str(tmp_path / "O"), "-q",
                   *[a.format(d=d) for a in extra]])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "O").exists() and list(tmp_path.iterdir()) == []


def test_params_file_with_classifier(painted, tmp_path, capsys):
    d, _ = painted
    (tmp_path / "p.json").write_text(json.dumps(AnalysisParams(method="classifier",
                                                               classifier=str(d / "CLF")).to_dict()))
    main_ok(["analyze", d / "img.tif", "--out", tmp_path / "A", "--params", tmp_path / "p.json", "-q"], capsys)
    assert json.loads((tmp_path / "A" / "run.json").read_text())["provenance"]["phases_from"] == "classifier"
    # --method threshold replaces the file's classifier
    main_ok(["analyze", d / "img.tif", "--out", tmp_path / "T", "--params", tmp_path / "p.json", "--method",
             "threshold", "-q"], capsys)
    assert json.loads((tmp_path / "T" / "run.json").read_text())["provenance"]["phases_from"] == "threshold"


def test_recipe_of_a_classifier_run_replays_to_the_same_table(painted, tmp_path, capsys):
    d, _ = painted
    main_ok(["analyze", d / "img.tif", "--out", tmp_path / "A", "--method", "classifier", "--classifier", d / "CLF",
             "--recipe", tmp_path / "r.json", "--name", "a", "-q"], capsys)
    main_ok(["run", tmp_path / "r.json", "--out", tmp_path / "R", "-q"], capsys)
    assert (tmp_path / "A" / "particles.csv").read_bytes() == (tmp_path / "R" / "a" / "particles.csv").read_bytes()
    # a recipe whose classifier folder is gone: one sentence before any work, nothing written
    recipe = json.loads((tmp_path / "r.json").read_text())
    recipe["analyses"][0]["params"]["classifier"] = str(tmp_path / "gone")
    (tmp_path / "r2.json").write_text(json.dumps(recipe))
    assert cli.main(["run", str(tmp_path / "r2.json"), "--out", str(tmp_path / "X"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "analysis 'a' classifier" in err and "no such folder" in err
    assert not (tmp_path / "X").exists()


def test_recipe_archive_carries_the_training_pairs_and_replays_elsewhere(painted, tmp_path, capsys):
    import io
    import shutil
    import zipfile

    from core.recipe import ARCHIVE_RECIPE, has_classifier, read_recipe, recipe_archive

    d, _ = painted
    clf = tmp_path / "server" / "CLF"
    shutil.copytree(d / "CLF", clf)
    main_ok(["analyze", d / "img.tif", "--out", tmp_path / "A", "--method", "classifier", "--classifier", clf,
             "--recipe", tmp_path / "r.json", "--name", "a", "-q"], capsys)
    recipe = read_recipe(tmp_path / "r.json")
    assert has_classifier(recipe)
    data = recipe_archive(recipe)
    shutil.rmtree(tmp_path / "server")  # the archive does not need the server's classifier folder
    shutil.rmtree(tmp_path / "r-training", ignore_errors=True)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        assert ARCHIVE_RECIPE in names and any(n.startswith("recipe-training/a/") for n in names)
        zf.extractall(tmp_path / "moved")
    text = (tmp_path / "moved" / ARCHIVE_RECIPE).read_text()
    assert json.loads(text)["analyses"][0]["params"]["classifier"] == "recipe-training/a"
    main_ok(["run", tmp_path / "moved" / ARCHIVE_RECIPE, "--out", tmp_path / "R", "-q"], capsys)
    assert (tmp_path / "A" / "particles.csv").read_bytes() == (tmp_path / "R" / "a" / "particles.csv").read_bytes()


def test_the_recipe_zip_replays_as_downloaded(painted, tmp_path, capsys):
    """``run`` takes the dashboard's recipe ZIP itself (it said "not UTF-8 text"): unpacked into a temporary folder,
    replayed to the same table; the output's recipes point at the training pairs copied into it, so it replays
    again after the ZIP is gone. A ZIP that is no recipe archive, or would unpack outside its folder: exit 2, one
    sentence, nothing written."""
    import shutil
    import zipfile

    from core.recipe import read_recipe, recipe_archive

    d, _ = painted
    clf = tmp_path / "server" / "CLF"
    shutil.copytree(d / "CLF", clf)
    main_ok(["analyze", d / "img.tif", "--out", tmp_path / "A", "--method", "classifier", "--classifier", clf,
             "--recipe", tmp_path / "r.json", "--name", "a", "-q"], capsys)
    (tmp_path / "recipe.zip").write_bytes(recipe_archive(read_recipe(tmp_path / "r.json")))
    shutil.rmtree(tmp_path / "server")
    main_ok(["run", tmp_path / "recipe.zip", "--out", tmp_path / "R", "-q"], capsys)
    assert (tmp_path / "A" / "particles.csv").read_bytes() == (tmp_path / "R" / "a" / "particles.csv").read_bytes()
    # QA: --overwrite refused the folder it wrote itself ("holds 'recipe-training/a', which this tool did not write")
    main_ok(["run", tmp_path / "recipe.zip", "--out", tmp_path / "R", "--overwrite", "-q"], capsys)
    assert (tmp_path / "A" / "particles.csv").read_bytes() == (tmp_path / "R" / "a" / "particles.csv").read_bytes()
    (tmp_path / "R" / "recipe-training" / "a" / "thesis.docx").write_text("mine")
    assert cli.main([str(x) for x in ["run", tmp_path / "recipe.zip", "--out", tmp_path / "R", "--overwrite", "-q"]]) == 2
    assert "holds 'recipe-training/a/thesis.docx', which this tool did not write" in capsys.readouterr().err
    (tmp_path / "R" / "recipe-training" / "a" / "thesis.docx").unlink()
    written = read_recipe(tmp_path / "R" / "recipe.json").analyses[0].params.classifier
    assert Path(written) == (tmp_path / "R" / "recipe-training" / "a").resolve()
    assert read_recipe(tmp_path / "R" / "a" / "recipe.json").analyses[0].params.classifier == written
    prov = json.loads((tmp_path / "R" / "a" / "provenance.json").read_text())
    assert prov["recipe"] == str((tmp_path / "recipe.zip").resolve())
    (tmp_path / "recipe.zip").unlink()
    main_ok(["run", tmp_path / "R" / "recipe.json", "--out", tmp_path / "R2", "-q"], capsys)
    assert (tmp_path / "R2" / "a" / "particles.csv").read_bytes() == (tmp_path / "A" / "particles.csv").read_bytes()
    for members, words in (({"notes.txt": "x"}, "holds no recipe.json at its top"),
                           ({"recipe.json": "{}", "../evil.txt": "x"}, "holds '../evil.txt', outside its folder")):
        with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
            for name, text in members.items():
                zf.writestr(name, text)
        assert cli.main(["run", str(tmp_path / "bad.zip"), "--out", str(tmp_path / "B")]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and "bad.zip" in err and "\n" not in err
        assert not (tmp_path / "B").exists() and not (tmp_path / "evil.txt").exists()
    # QA: a ZIP cut short in the download was read as JSON ("the recipe is not valid JSON")
    (tmp_path / "cut.zip").write_bytes((tmp_path / "bad.zip").read_bytes()[:60])
    assert cli.main(["run", str(tmp_path / "cut.zip"), "--out", str(tmp_path / "B")]) == 2
    assert "the recipe archive cut.zip cannot be read (damaged, or cut short" in capsys.readouterr().err
    assert not (tmp_path / "B").exists()
