"""Tests for the trainable phase classifier (:mod:`core.classify`)."""

from __future__ import annotations

import json
import pickle
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.classify import (
    DEFAULT_SIGMAS_VOXELS, UNPAINTED, ClassifierParams, features, halo, load_classifier, normalize_intensity, save_classifier, train,
)
from core.evaluate import phase_iou
from core.synth import demo_electrode

# small scales so that the halo (ceil(4 * 4) + 3 = 19 slices) is below the tiny volumes' depth
SMALL = ClassifierParams(sigma_min_um=0.4, sigma_max_um=1.6, n_estimators=20, max_depth=8, seed=3, n_jobs=2)


def scribbles_from(phases: np.ndarray, fraction: float = 0.02, seed: int = 0) -> np.ndarray:
    """Scattered painted voxels taken from the true phases (255 elsewhere)."""
    rng = np.random.default_rng(seed)
    s = np.full(phases.shape, UNPAINTED, np.uint8)
    pick = rng.random(phases.shape) < fraction
    s[pick] = phases[pick]
    return s


@pytest.fixture(scope="module")
def electrodes():
    return (demo_electrode("pristine", rng=1, shape=(32, 32, 32)),
            demo_electrode("pristine", rng=2, shape=(32, 32, 32)))


@pytest.fixture(scope="module")
def trained(electrodes):
    e = electrodes[0]
    return train(e.greyscale, scribbles_from(e.phases), e.spacing, SMALL)


def mean_iou(truth, pred) -> float:
    return float(np.mean(list(phase_iou(truth, pred).values())))


def test_recovers_phases_of_another_volume(electrodes, trained):
    other = electrodes[1]
    phases, conf = trained.predict(other.greyscale, other.spacing)
    assert phases.shape == other.greyscale.shape and phases.dtype == np.uint8
    assert conf.dtype == np.float32 and conf.shape == phases.shape
    assert set(np.unique(phases)) <= {0, 1, 2}
    assert mean_iou(other.phases, phases) > 0.75
    assert float(conf.min()) >= 1 / 3 - 1e-6 and float(conf.max()) <= 1.0 + 1e-6
    # confident voxels are right more often than the others
    right = phases == other.phases
    assert right[conf > 0.9].mean() > right[conf < 0.6].mean()


@pytest.mark.parametrize("slab", [1, 5, 13, 40])
def test_slab_wise_equals_whole_volume(electrodes, trained, slab):
    e = electrodes[1]
    whole = trained.predict(e.greyscale, e.spacing, slab=64)
    assert halo(SMALL, e.spacing) < 32
    part = trained.predict(e.greyscale, e.spacing, slab=slab)
    np.testing.assert_array_equal(part[0], whole[0])
    np.testing.assert_array_equal(part[1], whole[1])


def test_progress_is_reported(electrodes, trained):
    seen = []
    trained.predict(electrodes[1].greyscale, electrodes[1].spacing, slab=10, progress=lambda f, m: seen.append(f))
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)


def test_features_shape_and_scales(electrodes):
    e = electrodes[0]
    f = features(e.greyscale, e.spacing, SMALL)
    # sigmas 1, 2, 4 voxels: intensity + edges + 3 Hessian eigenvalues each
    assert f.shape == (32, 32, 32, 15) and f.dtype == np.float32
    f2 = features(e.greyscale[5], e.spacing, SMALL)
    assert f2.shape == (1, 32, 32, 12)


def test_input_not_modified(electrodes):
    e = electrodes[0]
    grey, s = e.greyscale.copy(), scribbles_from(e.phases)
    s0 = s.copy()
    clf = train(grey, s, e.spacing, SMALL)
    clf.predict(grey, e.spacing)
    np.testing.assert_array_equal(grey, e.greyscale)
    np.testing.assert_array_equal(s, s0)


def test_retrained_from_saved_folder_is_identical(tmp_path, electrodes, trained):
    folder = save_classifier(tmp_path / "clf", trained)
    assert sorted(p.name for p in folder.iterdir()) == ["classifier.json", "pairs.npz"]
    again = load_classifier(folder)
    assert again.params == trained.params and again.painted == trained.painted
    e = electrodes[1]
    a, b = trained.predict(e.greyscale, e.spacing), again.predict(e.greyscale, e.spacing)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_thread_count_does_not_change_the_result(electrodes):
    e, other = electrodes
    s = scribbles_from(e.phases)
    one = train(e.greyscale, s, e.spacing, ClassifierParams(**{**SMALL.to_dict(), "n_jobs": 1}))
    two = train(e.greyscale, s, e.spacing, SMALL)
    np.testing.assert_array_equal(one.predict(other.greyscale, other.spacing)[1],
                                  two.predict(other.greyscale, other.spacing)[1])


def test_2d_image(electrodes):
    e, other = electrodes
    img, truth = e.greyscale[16], e.phases[16]
    clf = train(img, scribbles_from(truth, 0.1), e.spacing, SMALL)
    assert clf.ndim == 2
    phases, conf = clf.predict(other.greyscale[10], other.spacing)
    assert phases.shape == (1, 32, 32) and conf.shape == (1, 32, 32)
    assert mean_iou(other.phases[10:11], phases) > 0.6
    # a volume: slice by slice along z, each slice exactly as on its own (the dashboard preview's contract)
    vol, conf3 = clf.predict(other.greyscale[8:12], other.spacing)
    assert vol.shape == (4, 32, 32) and conf3.shape == (4, 32, 32)
    np.testing.assert_array_equal(vol[2:3], phases)
    np.testing.assert_array_equal(conf3[2:3], conf)
    vol3d = train(e.greyscale, scribbles_from(e.phases), e.spacing, SMALL)
    with pytest.raises(ValueError, match="trained on volumes"):
        vol3d.predict(other.greyscale[10], other.spacing)


def test_several_images_train_one_classifier(electrodes):
    e, other = electrodes
    # the second image in other grey units: normalisation per image puts both on one scale
    img2 = other.greyscale.astype(np.float32) * 0.01 + 7
    clf = train([e.greyscale, img2], [scribbles_from(e.phases), scribbles_from(other.phases, seed=1)],
                [e.spacing, other.spacing], SMALL)
    assert len(clf.pairs) == 2
    phases, _ = clf.predict(other.greyscale, other.spacing)
    assert mean_iou(other.phases, phases) > 0.75


def test_normalize_intensity_maps_percentiles():
    v = np.arange(1000, dtype=np.uint16).reshape(10, 10, 10)
    n = normalize_intensity(v)
    assert n.dtype == np.float32
    assert abs(np.percentile(n, 0.5)) < 1e-5 and abs(np.percentile(n, 99.5) - 1) < 1e-5


# --------------------------------------------------------------------------- validation


def test_wrong_shape_refused(electrodes):
    e = electrodes[0]
    with pytest.raises(ValueError, match=r"scribbles have shape \(32, 32, 31\), the image \(32, 32, 32\)"):
        train(e.greyscale, scribbles_from(e.phases)[..., :31], e.spacing, SMALL)


def test_wrong_values_refused(electrodes):
    e = electrodes[0]
    s = scribbles_from(e.phases)
    s[0, 0, 0] = 7
    with pytest.raises(ValueError, match="hold the value 7"):
        train(e.greyscale, s, e.spacing, SMALL)
    with pytest.raises(TypeError, match="must be integers"):
        train(e.greyscale, scribbles_from(e.phases).astype(np.float32), e.spacing, SMALL)


def test_fewer_than_two_phases_refused(electrodes):
    e = electrodes[0]
    s = np.full(e.phases.shape, UNPAINTED, np.uint8)
    s[0, :4, :4] = 2
    with pytest.raises(ValueError, match=r"fewer than 2 phases \(painted: NMC\)"):
        train(e.greyscale, s, e.spacing, SMALL)
    with pytest.raises(ValueError, match=r"painted: none"):
        train(e.greyscale, np.full(e.phases.shape, UNPAINTED, np.uint8), e.spacing, SMALL)


def test_mismatched_counts_refused(electrodes):
    e = electrodes[0]
    with pytest.raises(ValueError, match="2 images but 1 scribble arrays"):
        train([e.greyscale, e.greyscale], [scribbles_from(e.phases)], e.spacing, SMALL)


@pytest.mark.parametrize("kw, match", [
    ({"sigma_min_um": 0}, "sigma_min_um must be a finite number > 0"),
    ({"sigma_min_um": 2, "sigma_max_um": 1}, "must be at least sigma_min_um"),
    ({"intensity": False, "edges": False, "texture": False}, "at least one feature family"),
    ({"n_estimators": 0}, "n_estimators must be from 1"),
    ({"max_depth": 2.5}, "max_depth must be a whole number"),
    ({"seed": -1}, "seed must be from 0"),
    ({"learner": "svm"}, "learner must be one of random-forest, extra-trees"),
    ({"max_features": 0}, "max_features must be from 1"),
])
def test_params_validated(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ClassifierParams(**kw)


def test_params_round_trip_strictly():
    p = ClassifierParams(sigma_max_um=4.0, seed=9)
    assert ClassifierParams.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError, match="unknown classifier parameter 'colour'"):
        ClassifierParams.from_dict({**p.to_dict(), "colour": 1})


# --------------------------------------------------------------------------- loading is safe


class _Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('unpickled!')",))


def test_pickle_file_refused_without_unpickling(tmp_path):
    f = tmp_path / "model.pkl"
    f.write_bytes(pickle.dumps(_Boom()))
    with pytest.raises(ValueError, match="is not a classifier folder"):
        load_classifier(f)
    # a folder of the right names whose pairs.npz is a pickle
    d = tmp_path / "clf"
    d.mkdir()
    (d / "classifier.json").write_text('{"format": "core-phase-classifier", "version": 1, "params": {}, '
                                       '"pairs": [{"spacing_um": [1, 1, 1]}]}')
    (d / "pairs.npz").write_bytes(pickle.dumps(_Boom()))
    with pytest.raises(ValueError, match="damaged classifier folder"):
        load_classifier(d)
    # an npz holding an object array (needs pickle to read)
    np.savez(d / "pairs.npz", image_0=np.array([_Boom()], dtype=object), scribbles_0=np.zeros(1, np.uint8))
    with pytest.raises(ValueError, match="damaged classifier folder"):
        load_classifier(d)


def test_other_folders_refused(tmp_path, trained):
    with pytest.raises(FileNotFoundError, match="no such classifier folder"):
        load_classifier(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is not a classifier folder"):
        load_classifier(tmp_path / "empty")
    d = save_classifier(tmp_path / "clf", trained)
    (d / "classifier.json").write_text('{"format": "core-phase-classifier", "version": 99}')
    with pytest.raises(ValueError, match="format version 99 is not known"):
        load_classifier(d)
    (d / "classifier.json").write_text("{not json")
    with pytest.raises(ValueError, match="not readable JSON"):
        load_classifier(d)


def test_memory_mapped_input_predicted_slab_by_slab(tmp_path, electrodes, trained):
    e = electrodes[1]
    np.save(tmp_path / "v.npy", e.greyscale)
    mm = np.load(tmp_path / "v.npy", mmap_mode="r")
    a = trained.predict(mm, e.spacing, slab=7)
    b = trained.predict(e.greyscale, e.spacing)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_precomputed_features_give_the_same_classifier(electrodes):
    """``features=`` (the dashboard keeps those of the painted slices) changes nothing but the time."""
    e, other = electrodes
    imgs = [e.greyscale[5], e.greyscale[:, 9]]
    scr = [scribbles_from(e.phases[5], 0.1), scribbles_from(e.phases[:, 9], 0.1, seed=1)]
    feats = [features(im, e.spacing, SMALL) for im in imgs]
    a, b = train(imgs, scr, e.spacing, SMALL), train(imgs, scr, e.spacing, SMALL, features=feats)
    f_other = features(other.greyscale[12], other.spacing, SMALL)
    pa, ca = a.predict(other.greyscale[12], other.spacing)
    pb, cb = b.predict(other.greyscale[12], other.spacing, features=f_other)
    np.testing.assert_array_equal(pa, pb)
    np.testing.assert_array_equal(ca, cb)
    with pytest.raises(ValueError, match="features have shape"):
        train(imgs, scr, e.spacing, SMALL, features=[feats[0], feats[0][:, :5]])
    with pytest.raises(ValueError, match="features have shape"):
        a.predict(other.greyscale[12], other.spacing, features=f_other[:, :5])


def test_preview_forest_is_the_first_trees_of_the_full_forest(electrodes):
    """``params.preview(k)``: same features, and its k trees are the full forest's first k (only fewer averaged)."""
    e, other = electrodes
    img, scr = e.greyscale[5], scribbles_from(e.phases[5], 0.1)
    light = SMALL.preview(5)
    assert light.n_estimators == 5 and light.to_dict() | {"n_estimators": SMALL.n_estimators} == SMALL.to_dict()
    assert SMALL.preview(100) == SMALL  # never more trees than the full classifier
    full, prev = train(img, scr, e.spacing, SMALL), train(img, scr, e.spacing, light)
    x = features(other.greyscale[12], other.spacing, SMALL).reshape(-1, full._forest.n_features_in_)
    first = np.mean([t.predict_proba(x) for t in full._forest.estimators_[:5]], axis=0)
    np.testing.assert_allclose(prev._forest.predict_proba(x), first, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="trees must be from 1"):
        SMALL.preview(0)


# --------------------------------------------------------------------------- learners and folder versions

DATA = Path(__file__).parent / "data"


def test_learner_setting_picks_the_ensemble(electrodes):
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

    e = electrodes[0]
    s = scribbles_from(e.phases, 0.1)
    et = train(e.greyscale[16], s[16], e.spacing, SMALL)  # the default learner
    rf = train(e.greyscale[16], s[16], e.spacing, replace(SMALL, learner="random-forest", max_features=None))
    assert SMALL.learner == "extra-trees" and SMALL.max_features == 1
    assert type(et._forest) is ExtraTreesClassifier and et._forest.max_features == 1
    assert type(rf._forest) is RandomForestClassifier and rf._forest.max_features == "sqrt"
    # seeded: the same pairs give the same forest's predictions
    again = train(e.greyscale[16], s[16], e.spacing, SMALL)
    np.testing.assert_array_equal(et.predict(e.greyscale[20], e.spacing)[1], again.predict(e.greyscale[20], e.spacing)[1])


def test_version_1_folder_loads_to_the_same_classifier():
    """A folder written before the learner was a setting (format version 1, by the code of commit 3e2abaa) is a
    random forest with √F features per split, and predicts exactly what that code predicted."""
    clf = load_classifier(DATA / "classifier_v1")
    assert clf.params.learner == "random-forest" and clf.params.max_features is None
    with np.load(DATA / "classifier_v1_expected.npz") as z:
        phases, conf = clf.predict(z["image"], 0.5)
        np.testing.assert_array_equal(phases, z["phases"])
        np.testing.assert_array_equal(conf, z["confidence"])


def test_the_folder_records_the_learner(tmp_path, electrodes):
    e = electrodes[0]
    p = replace(SMALL, max_features=2)
    clf = train(e.greyscale[16], scribbles_from(e.phases[16], 0.1), e.spacing, p)
    d = save_classifier(tmp_path / "clf", clf)
    meta = json.loads((d / "classifier.json").read_text())
    assert meta["version"] == 4 and meta["params"]["learner"] == "extra-trees" and meta["params"]["max_features"] == 2
    back = load_classifier(d)
    assert back.params == p
    np.testing.assert_array_equal(back.predict(e.greyscale[20], e.spacing)[1], clf.predict(e.greyscale[20], e.spacing)[1])


def test_feature_scales_default_to_voxels_whatever_the_voxel_size():
    p = ClassifierParams()
    assert p.sigma_min_um is None and p.sigma_max_um is None
    for sp in (0.05, 0.4, 1.0, (2.0, 0.1, 0.1)):
        assert p.sigmas_vox(sp) == DEFAULT_SIGMAS_VOXELS == (0.5, 8.0)
    # given in µm: converted with the in-plane voxel size; one end given, the other the voxel default
    assert ClassifierParams(sigma_min_um=0.5, sigma_max_um=8.0).sigmas_vox((3.0, 0.5, 0.5)) == (1.0, 16.0)
    assert ClassifierParams(sigma_max_um=4.0).sigmas_vox(0.5) == (0.5, 8.0)
    with pytest.raises(ValueError, match="largest feature scale .* below the smallest"):
        ClassifierParams(sigma_max_um=0.1).sigmas_vox(1.0)
    # the features of a slice follow: the same at 0.05 µm and at 1 µm
    img = np.random.default_rng(0).normal(size=(40, 40)).astype(np.float32)
    np.testing.assert_array_equal(features(img, 0.05), features(img, 1.0))


def test_older_folders_keep_their_scales_in_um(tmp_path, electrodes):
    e = electrodes[0]
    p = replace(SMALL, sigma_min_um=None, sigma_max_um=None)
    clf = train(e.greyscale[16], scribbles_from(e.phases[16], 0.1), e.spacing, p)
    d = save_classifier(tmp_path / "clf", clf)
    meta = json.loads((d / "classifier.json").read_text())
    assert meta["params"]["sigma_min_um"] is None
    # a version-2 folder without the scales: those of version 2 (0.5 and 8 µm), not the voxel defaults
    v2 = dict(meta, version=2, params={k: v for k, v in meta["params"].items() if not k.startswith("sigma")})
    (d / "classifier.json").write_text(json.dumps(v2))
    assert load_classifier(d).params == replace(p, sigma_min_um=0.5, sigma_max_um=8.0)
    (d / "classifier.json").write_text(json.dumps(dict(v2, params={**v2["params"], "sigma_min_um": None})))
    with pytest.raises(ValueError, match="a version-2 folder gives its feature scales in µm, not null"):
        load_classifier(d)


def test_version_1_folder_naming_a_learner_refused(tmp_path):
    d = tmp_path / "clf"
    shutil.copytree(DATA / "classifier_v1", d)
    meta = json.loads((d / "classifier.json").read_text())
    meta["params"]["learner"] = "extra-trees"
    (d / "classifier.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="damaged classifier folder: a version-1 folder does not set 'learner'"):
        load_classifier(d)


# --------------------------------------------------------------------------- narrow slices (format version 4)


def test_a_narrow_slice_is_scaled_by_its_volume_s_range():
    from core.classify import NARROW_SHARE, slice_range

    rng = np.random.default_rng(0)
    wide = rng.uniform(100, 900, (30, 30))
    pore = rng.normal(150, 10, (30, 30))  # one material: its own range is noise
    ref = (100.0, 900.0)
    assert slice_range(wide, ref) == slice_range(wide) != ref
    assert slice_range(pore) != ref and slice_range(pore, ref) == ref
    lo, hi = slice_range(pore)
    assert hi - lo < NARROW_SHARE * (ref[1] - ref[0])
    with pytest.raises(ValueError, match="training image 1: the reference range must be finite with hi > lo"):
        train(wide[None], np.where(wide > 500, 2, 0).astype(np.uint8)[None], 1.0, SMALL, references=[(5, 5)])


def test_slices_beyond_the_electrode_read_as_pore_and_older_folders_as_before(tmp_path):
    """A classifier trained on painted z-slices classifies a volume slice by slice; slices of pore only (above the
    electrode) had their noise stretched over the phases' scale by their own range and read as CBD / NMC.  Scaled by
    the volume's range (format version 4) they read as pore; a folder of version 3 keeps its behaviour; every slice
    is what the dashboard's preview of it gives (predict of the slice with the volume's range)."""
    from core.classify import intensity_range
    from core.scribbles import Scribbles, classifier_pairs

    e = demo_electrode("cycled-1C", rng=4, shape=(48, 48, 48))
    empty = np.flatnonzero((e.phases == 2).sum(axis=(1, 2)) == 0)
    assert empty.size >= 2 and empty[0] == 0  # the demo's first slices image the space above the electrode
    sc = Scribbles.empty(e.greyscale.shape)
    for z in (20, 30):
        sc = sc.with_slice(0, z, scribbles_from(e.phases[z], 0.2, seed=z))
    images, labels, spacings = classifier_pairs(e.greyscale, sc, e.spacing)
    ref = intensity_range(e.greyscale)
    clf = train(images, labels, spacings, SMALL, references=[ref] * len(images))
    new, _ = clf.predict(e.greyscale, e.spacing)
    assert (new[empty] == 0).mean() > 0.95
    z = int(empty[-1])
    np.testing.assert_array_equal(new[z], clf.predict(e.greyscale[z], e.spacing, reference=ref)[0][0])
    # the folder records the reference and reads back to the same classifier
    d = save_classifier(tmp_path / "v4", clf)
    meta = json.loads((d / "classifier.json").read_text())
    assert meta["version"] == 4 and meta["pairs"][0]["reference_range"] == list(ref)
    np.testing.assert_array_equal(load_classifier(d).predict(e.greyscale, e.spacing)[0], new)
    # the same pairs in a version-3 folder: every slice scaled by its own range, as before (the empty ones not pore)
    meta3 = dict(meta, version=3, pairs=[{k: v for k, v in p.items() if k != "reference_range"} for p in meta["pairs"]])
    (d / "classifier.json").write_text(json.dumps(meta3))
    old = load_classifier(d)
    assert old.version == 3
    before, _ = old.predict(e.greyscale, e.spacing)
    assert (before[empty] == 0).mean() < 0.5
    np.testing.assert_array_equal(before[25], new[25])  # a slice through the electrode: the same either way


def test_volume_range_of_a_lazily_read_volume_is_near_the_whole_one():
    from core.chunked import LazyArray
    from core.classify import intensity_range, volume_range

    g = demo_electrode("pristine", rng=1, shape=(40, 48, 48)).greyscale
    assert volume_range(g) == intensity_range(g)
    lo, hi = volume_range(LazyArray(g))
    wlo, whi = intensity_range(g)
    assert abs(lo - wlo) < 0.05 * (whi - wlo) and abs(hi - whi) < 0.05 * (whi - wlo)
