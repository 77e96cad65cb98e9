"""Scribbles (:mod:`core.scribbles`) as the stored artefact: in the workspace, in recipes, and replayed."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from core import cli
from core import recipe as rc
from core.classify import UNPAINTED, ClassifierParams, load_classifier
from core.io import save_tiff
from core.pipeline import AnalysisParams, classifier_checksum
from core.runner import run_analysis
from core.scribbles import Scribbles, classifier_pairs, load_scribbles, save_scribbles, slice_of
from core.synth import demo_electrode
from core.workspace import Workspace

N = 40
FAST = ClassifierParams(n_estimators=30, max_depth=10, seed=4)


def painted_slice(truth2d: np.ndarray, step: int = 3) -> np.ndarray:
    """Every ``step``-th pixel of a slice painted with its true phase (255 elsewhere)."""
    s = np.full(truth2d.shape, UNPAINTED, np.uint8)
    s[::step, ::step] = truth2d[::step, ::step]
    return s


@pytest.fixture(scope="module")
def electrode():
    return demo_electrode("pristine", rng=5, shape=(N, N, N))


def scribbles_of(e, slices=((0, 8), (1, 30))) -> Scribbles:
    s = Scribbles.empty(e.phases.shape)
    for axis, index in slices:
        s = s.with_slice(axis, index, painted_slice(slice_of(e.phases, axis, index)))
    return s


# --------------------------------------------------------------------------- the record


def test_scribbles_keep_painted_slices_only_and_count():
    s = Scribbles.empty((4, 5, 6))
    assert s.counts() == (0, 0, 0) and not s.slices
    lab = np.full((5, 6), UNPAINTED, np.uint8)
    lab[1, 1:4] = [0, 2, 2]
    s2 = s.with_slice(0, 3, lab)
    assert s2.counts() == (1, 0, 2) and s2.n_painted == 3 and list(s2.slices) == [(0, 3)]
    assert s.counts() == (0, 0, 0)  # a new record: the old one is unchanged
    np.testing.assert_array_equal(s2.slice(0, 3), lab)
    assert (s2.slice(2, 0) == UNPAINTED).all() and s2.slice(2, 0).shape == (4, 5)
    lab[1, 1] = 1
    assert s2.counts() == (1, 0, 2)  # the record copied the labels
    with pytest.raises(ValueError):
        s2.slice(0, 3)[0, 0] = 0  # read-only
    assert s2.with_slice(0, 3, np.full((5, 6), UNPAINTED, np.uint8)).slices == {}  # all erased: the slice goes
    assert s2.digest() != s.digest() and s2.digest() == Scribbles((4, 5, 6), {(0, 3): s2.slice(0, 3)}).digest()


@pytest.mark.parametrize("call, match", [
    (lambda s: s.with_slice(3, 0, np.zeros((5, 6), np.uint8)), "axis must be 0"),
    (lambda s: s.with_slice(0, 4, np.zeros((5, 6), np.uint8)), r"outside 0\.\.3"),
    (lambda s: s.with_slice(1, 0, np.zeros((5, 6), np.uint8)), r"shape \(5, 6\), the slice \(4, 6\)"),
    (lambda s: s.with_slice(0, 0, np.full((5, 6), 7, np.uint8)), "the value 7"),
    (lambda s: s.with_slice(0, 0, np.zeros((5, 6), np.float32)), "must be integers"),
])
def test_bad_scribbles_refused_in_one_sentence(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(Scribbles.empty((4, 5, 6)))


def test_classifier_pairs_are_the_painted_slices_with_their_in_plane_voxel_size():
    vol = np.arange(4 * 5 * 6, dtype=np.uint16).reshape(4, 5, 6)
    lab_y = np.full((4, 6), UNPAINTED, np.uint8)
    lab_y[0, 0], lab_y[1, 1] = 0, 2
    s = Scribbles.empty(vol.shape).with_slice(1, 2, lab_y)
    images, labels, spacings = classifier_pairs(vol, s, (0.5, 0.2, 0.3))
    np.testing.assert_array_equal(images[0], vol[:, 2, :])
    np.testing.assert_array_equal(labels[0], lab_y)
    assert spacings == [(0.2, 0.5, 0.3)]  # the slice's own axis first: in-plane z and x
    with pytest.raises(ValueError, match="shape"):
        classifier_pairs(vol[:3], s)
    with pytest.raises(ValueError, match="nothing is painted"):
        classifier_pairs(vol, Scribbles.empty(vol.shape))


def test_scribbles_file_round_trips_and_damage_is_one_sentence(tmp_path, electrode):
    s = scribbles_of(electrode)
    save_scribbles(tmp_path / "s.npz", s)
    back = load_scribbles(tmp_path / "s.npz")
    assert back.shape == s.shape and list(back.slices) == list(s.slices) and back.digest() == s.digest()
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="is not a scribbles file"):
        load_scribbles(tmp_path / "bad.npz")
    np.savez(tmp_path / "other.npz", shape=np.array([2, 2, 2]), axes=np.array([0]), indices=np.array([0]),
             labels_0=np.zeros((2, 2), np.uint8), extra=np.zeros(1))
    with pytest.raises(ValueError, match="other arrays"):
        load_scribbles(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError):
        load_scribbles(tmp_path / "missing.npz")


# --------------------------------------------------------------------------- the workspace


@pytest.fixture()
def workspace_run(tmp_path, electrode):
    """A sample (a TIFF), its scribbles on a z- and a y-slice kept in the workspace, and a classifier analysis."""
    e = electrode
    save_tiff(tmp_path / "v.tif", e.greyscale, e.spacing)
    ws = Workspace(tmp_path / "ws")
    sample = ws.add_sample("painted", str(tmp_path / "v.tif"), spacing=e.spacing)
    vol = ws.load_volume(sample)
    scr = scribbles_of(e)
    ws.save_scribbles(sample.id, scr)
    folder = ws.save_training(sample.id, vol, scr, FAST)
    a = run_analysis(ws, sample.id, vol, AnalysisParams(method="classifier", classifier=str(folder)))
    return ws, sample, vol, scr, folder, a


def test_workspace_keeps_scribbles_and_content_named_training_pairs(workspace_run):
    ws, sample, vol, scr, folder, a = workspace_run
    # the scribbles survive a new Workspace object (a reload of the dashboard)
    again = Workspace(ws.root).load_scribbles(sample.id)
    assert again.digest() == scr.digest()
    # the training pairs: under the sample's folder, named by their content, written once
    assert folder.parent == ws.sample_dir(sample.id) / "training"
    before = (folder / "pairs.npz").stat().st_mtime_ns
    assert ws.save_training(sample.id, vol, scr, FAST) == folder
    assert (folder / "pairs.npz").stat().st_mtime_ns == before
    other = ws.save_training(sample.id, vol, scr.with_slice(2, 3, painted_slice(slice_of(vol, 2, 3) % 3)), FAST)
    assert other != folder
    clf = load_classifier(folder)
    assert clf.ndim == 2 and len(clf.pairs) == 2 and clf.painted == scr.counts() and clf.params == FAST
    # the analysis records the pairs it was trained on
    assert a.status == "done" and a.resolved.classifier == str(folder)
    assert a.provenance["classifier_pairs_sha256"] == classifier_checksum(folder)
    # nothing painted removes the file; deleting the sample removes its folder
    ws.save_scribbles(sample.id, Scribbles.empty(vol.shape))
    assert ws.load_scribbles(sample.id) is None
    ws.delete_sample(sample.id)
    assert not ws.sample_dir(sample.id).exists()


def test_strokes_of_one_sample_classify_another_that_keeps_its_own_copy(tmp_path, workspace_run, electrode):
    ws, sample, vol, scr, folder, a = workspace_run
    e2 = demo_electrode("cycled-5C", rng=6, shape=(N, N, N))
    save_tiff(tmp_path / "w.tif", e2.greyscale, e2.spacing)
    other = ws.add_sample("other scan", str(tmp_path / "w.tif"), spacing=e2.spacing)
    copy = ws.share_training(folder, other.id)
    # kept with the other sample under the same content name; written once
    assert copy == ws.sample_dir(other.id) / "training" / folder.name
    assert classifier_checksum(copy) == classifier_checksum(folder)
    before = (copy / "pairs.npz").stat().st_mtime_ns
    assert ws.share_training(folder, other.id) == copy and (copy / "pairs.npz").stat().st_mtime_ns == before
    assert ws.share_training(folder, sample.id) == folder  # already that sample's
    b = run_analysis(ws, other.id, ws.load_volume(other), AnalysisParams(method="classifier", classifier=str(copy)))
    assert b.status == "done" and b.n_particles > 0
    assert b.provenance["classifier_pairs_sha256"] == a.provenance["classifier_pairs_sha256"]
    # the painted sample deleted (its training folder with it): the other analysis still replays from its copy
    expected = ws.load_table(b.id).to_csv(index=False).encode()
    ws.delete_sample(sample.id)
    assert not folder.exists() and copy.is_dir()
    rc.write_recipe(rc.recipe_from_workspace(ws, [b.id]), tmp_path / "r.json")
    assert cli.main(["run", str(tmp_path / "r.json"), "--out", str(tmp_path / "R"), "-q"]) == 0
    assert (tmp_path / "R" / "other_scan" / "particles.csv").read_bytes() == expected
    # bad input: not a classifier folder; no such sample
    with pytest.raises(ValueError, match="not a classifier folder"):
        ws.share_training(tmp_path, other.id)
    with pytest.raises(KeyError):
        ws.share_training(copy, 999)
    # another folder of the same name, other content: refused, the copy kept
    alien = tmp_path / "elsewhere" / folder.name
    shutil.copytree(copy, alien)
    (alien / "classifier.json").write_text((alien / "classifier.json").read_text().replace('"seed": 4', '"seed": 5'))
    with pytest.raises(ValueError, match="already keeps another classifier folder"):
        ws.share_training(alien, other.id)
    assert classifier_checksum(copy) == b.provenance["classifier_pairs_sha256"]


# --------------------------------------------------------------------------- recipes


def test_recipe_of_a_workspace_classifier_analysis_replays_to_an_identical_table(tmp_path, workspace_run, capsys):
    ws, sample, vol, scr, folder, a = workspace_run
    (tmp_path / "rec").mkdir()
    rc.write_recipe(rc.recipe_from_workspace(ws, [a.id]), tmp_path / "rec" / "r.json")
    entry = json.loads((tmp_path / "rec" / "r.json").read_text())["analyses"][0]
    # the training pairs are copied beside the recipe and recorded relative to it, with their checksum
    assert entry["params"]["classifier"] == "r-training/painted"
    assert entry["classifier_checksum"] == a.provenance["classifier_pairs_sha256"]
    assert classifier_checksum(tmp_path / "rec" / "r-training" / "painted") == entry["classifier_checksum"]
    expected = ws.load_table(a.id).to_csv(index=False).encode()
    # the recipe folder moved as a whole still replays; the classifier is retrained: the same table, byte for byte
    shutil.copytree(tmp_path / "rec", tmp_path / "moved")
    shutil.rmtree(tmp_path / "rec")
    capsys.readouterr()
    assert cli.main(["run", str(tmp_path / "moved" / "r.json"), "--out", str(tmp_path / "R"), "-q"]) == 0
    assert (tmp_path / "R" / "painted" / "particles.csv").read_bytes() == expected
    record = json.loads((tmp_path / "R" / "painted" / "provenance.json").read_text())
    assert record["classifier_verified"] is True
    assert record["provenance"]["classifier_pairs_sha256"] == entry["classifier_checksum"]
    # other scribbles in the recipe's training folder: refused in one sentence before any work
    from core.classify import save_training

    images, labels, spacings = classifier_pairs(vol, scr.with_slice(0, 20, painted_slice(vol[20] % 3)),
                                                sample.spacing)
    save_training(tmp_path / "moved" / "r-training" / "painted", images, labels, spacings, FAST)
    capsys.readouterr()
    assert cli.main(["run", str(tmp_path / "moved" / "r.json"), "--out", str(tmp_path / "X"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "the scribbles changed" in err and entry["classifier_checksum"] in err and "--no-verify" in err
    assert not (tmp_path / "X").exists()
    # --no-verify: replayed, with a warning naming both checksums
    assert cli.main(["run", str(tmp_path / "moved" / "r.json"), "--out", str(tmp_path / "Y"), "-q",
                     "--no-verify"]) == 0
    err = capsys.readouterr().err
    assert "differ from the recipe's" in err and entry["classifier_checksum"] in err


def test_recipe_refuses_a_classifier_folder_changed_after_the_run(tmp_path, workspace_run):
    ws, sample, vol, scr, folder, a = workspace_run
    e = rc.entry_from_workspace(ws, a)
    assert e.classifier_checksum == a.provenance["classifier_pairs_sha256"]
    changed = replace(e, classifier_checksum="0" * 64)
    with pytest.raises(rc.RecipeError, match="changed after the run"):
        rc.write_recipe(rc.Recipe((changed,)), tmp_path / "r.json")
    with pytest.raises(rc.ClassifierChanged, match="the scribbles changed"):
        rc.replay(changed)
    # a recipe text with a checksum but no classifier is refused
    d = rc.recipe_to_dict(rc.Recipe((e,)))
    d["analyses"][0]["params"] = AnalysisParams().to_dict()
    with pytest.raises(rc.RecipeError, match="classifier_checksum but its method is 'threshold'"):
        rc.recipe_from_dict(d)


def test_a_moved_workspace_still_finds_its_training_pairs(tmp_path, workspace_run, capsys):
    ws, sample, vol, scr, folder, a = workspace_run
    import sqlite3

    with sqlite3.connect(ws.db_path) as con:  # the catalogue holds the folder relative to the workspace
        stored = json.loads(con.execute("SELECT params FROM analyses WHERE id = ?", (a.id,)).fetchone()[0])
    assert stored["classifier"] == folder.relative_to(ws.root).as_posix()
    shutil.move(ws.root, tmp_path / "moved-ws")
    moved = Workspace(tmp_path / "moved-ws")
    b = moved.get_analysis(a.id)
    assert b.resolved.classifier == str(moved.root / folder.relative_to(tmp_path / "ws"))
    assert b.requested.classifier == b.resolved.classifier == b.provenance["classifier"]
    rc.write_recipe(rc.recipe_from_workspace(moved, [a.id]), tmp_path / "r.json")
    capsys.readouterr()
    # (the sample's TIFF did not move: the input is found where it was)
    assert cli.main(["run", str(tmp_path / "r.json"), "--out", str(tmp_path / "R"), "-q"]) == 0
    assert (tmp_path / "R" / "painted" / "particles.csv").read_bytes() == \
        moved.load_table(a.id).to_csv(index=False).encode()


def test_strokes_painted_on_the_volume_read_otherwise_are_kept_aside_not_overwritten(tmp_path):
    """The sample's volume read at another shape (a crop, an alignment of its slices): the strokes painted before
    are kept aside by their shape when new ones are saved, and come back where the volume is read so again."""
    vol = np.zeros((4, 16, 16), np.uint8)
    save_tiff(tmp_path / "v.tif", vol, (1.0, 1.0, 1.0))
    ws = Workspace(tmp_path / "ws")
    sample = ws.add_sample("s", str(tmp_path / "v.tif"), spacing=1.0)
    lab = np.full((16, 16), UNPAINTED, np.uint8)
    lab[:4, :4] = 0
    whole = Scribbles.empty((4, 16, 16)).with_slice(0, 1, lab)
    small_lab = np.full((10, 12), UNPAINTED, np.uint8)
    small_lab[5:, 6:] = 2
    small = Scribbles.empty((4, 10, 12)).with_slice(0, 2, small_lab)
    ws.save_scribbles(sample.id, whole)
    ws.save_scribbles(sample.id, small)  # painted on the volume read smaller: the strokes before are kept aside
    assert ws.load_scribbles(sample.id).digest() == small.digest()
    assert ws.load_scribbles(sample.id, (4, 10, 12)).digest() == small.digest()
    assert ws.load_scribbles(sample.id, (4, 16, 16)).digest() == whole.digest()
    assert ws.load_scribbles(sample.id, (4, 8, 8)) is None
    more = whole.with_slice(0, 3, lab)
    ws.save_scribbles(sample.id, more)  # read whole again and painted: these replace the ones kept for that shape
    assert ws.load_scribbles(sample.id).digest() == more.digest()
    assert ws.load_scribbles(sample.id, (4, 10, 12)).digest() == small.digest()
    assert sorted(p.name for p in ws.sample_dir(sample.id).glob("scribbles*.npz")) == ["scribbles-4x10x12.npz",
                                                                                         "scribbles.npz"]
