"""The 3D U-Net: architecture, training targets, shipped weights, inference and wiring."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from core import synth
from core.codes import CBD, NMC, PORE
from core.evaluate import instance_scores, phase_iou
from core.nn import data, infer
from core.nn.model import N_OUT, ModelConfig, UNet3D
from core.nn.params import DEFAULT_WEIGHTS, ModelParams
from core.nn.train import TrainConfig, save_weights, train
from core.pipeline import AnalysisParams, run

META = json.loads(DEFAULT_WEIGHTS.with_suffix(".json").read_text())


def test_unet_shapes_and_config_validation():
    m = UNet3D(ModelConfig(base=4, levels=3, groups=2))
    assert m.multiple == 4
    out = m(torch.zeros(2, 1, 8, 12, 16))
    assert out.shape == (2, N_OUT, 8, 12, 16)
    with pytest.raises(ValueError, match="invalid model configuration"):
        ModelConfig(base=6, groups=4)


def _two_touching_balls(crack=False):
    z, y, x = np.ogrid[:20, :20, :36]
    a = (z - 10) ** 2 + (y - 10) ** 2 + (x - 10) ** 2 <= 64
    b = (z - 10) ** 2 + (y - 10) ** 2 + (x - 25) ** 2 <= 64
    labels = np.zeros((20, 20, 36), np.int32)
    labels[a] = 1
    labels[b & ~a] = 2
    if crack:  # a thin internal crack in ball 1, enclosed by it
        labels[10, 7:14, 8] = 0
    return labels


def test_instance_targets_centre_boundary_and_cracks():
    labels = _two_touching_balls()
    centre, boundary = data.instance_targets(labels)
    assert centre[labels == 0].max() == 0
    assert centre[10, 10, 10] == pytest.approx(1.0) and centre[labels == 2].max() == pytest.approx(1.0)
    assert centre[10, 10, 25] > 0.95
    assert 0 < centre[labels > 0].min() < 0.3
    # boundary only where the two balls meet (x around 17..18), and only on particle voxels
    xs = np.nonzero(boundary)[2]
    assert boundary.any() and xs.min() >= 16 and xs.max() <= 19
    assert not boundary[labels == 0].any()
    # a crack enclosed by a particle is not a surface: the centre cue is unchanged around it
    cracked = _two_touching_balls(crack=True)
    c2, _ = data.instance_targets(cracked)
    near = (cracked > 0)
    assert np.allclose(c2[near], centre[near])


def test_normalize_and_robust_range():
    x = np.arange(1000, dtype=np.float32)
    lo, hi = data.robust_range(x)
    y = data.normalize(x, lo, hi)
    assert y.dtype == np.float32 and np.median(y) == pytest.approx(0.0, abs=0.01)
    with pytest.raises(ValueError, match="hi > lo"):
        data.normalize(x, 1.0, 1.0)


def test_training_and_inference_normalize_alike_on_a_big_volume():
    # 1.2 M voxels: above the 1 M sample size, where a flat stride and a per-axis stride used to disagree
    from core.nn import tiling

    vol = np.random.default_rng(5).gamma(2.0, 1000.0, size=(120, 100, 100)).astype(np.float32)
    lo, hi = data.robust_range(vol)
    assert (lo, hi) == tiling.robust_range(vol)
    sample = vol[::2, ::2, ::2].astype(np.float64).ravel()       # the inference rule: one stride per axis
    assert (lo, hi) == tuple(float(v) for v in np.percentile(sample, [0.5, 99.5]))
    flat = vol.reshape(-1)[:: vol.size // 1_000_000].astype(np.float64)   # the old training rule differs
    assert tuple(np.percentile(flat, [0.5, 99.5])) != (lo, hi)
    x_train = data.normalize(vol, lo, hi)
    x_infer = tiling.predict_tiled(lambda t: t, vol, channels_out=1, tile=128, overlap=0, device="cpu",
                                   intensity_range=(lo, hi), out_dtype=np.float32)[0]
    np.testing.assert_allclose(x_infer, x_train, atol=1e-5)


def test_robust_range_of_a_2d_image_is_the_full_sample_below_n():
    img = np.random.default_rng(6).random((499, 601)).astype(np.float32)
    assert data.robust_range(img) == tuple(float(v) for v in np.percentile(img.astype(np.float64), [0.5, 99.5]))


def test_shipped_weights_load_small_and_weights_only(tmp_path):
    assert DEFAULT_WEIGHTS.stat().st_size < 20 * 2**20
    blob = torch.load(DEFAULT_WEIGHTS, map_location="cpu", weights_only=True)
    assert blob["format"] == "core.nn.unet3d/1"
    m = infer.load_model()
    assert sum(p.numel() for p in m.parameters()) == META["parameters"]
    with pytest.raises(FileNotFoundError):
        infer.load_model(tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"^bad.pt is not a weights file of this model \(not a PyTorch file\)$"):
        infer.load_model(bad)
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a core.nn.unet3d/1 checkpoint"):
        infer.load_model(tmp_path / "other.pt")


def _bad_weights(tmp_path, kind: str):
    import pickle

    path = tmp_path / f"{kind}.pt"
    good = DEFAULT_WEIGHTS.read_bytes()
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("hello\n")
    elif kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "pickle":
        path.write_bytes(pickle.dumps({"x": 1}, protocol=4))
    elif kind == "list":
        torch.save([1, 2], path)
    elif kind == "layers":
        blob = torch.load(DEFAULT_WEIGHTS, map_location="cpu", weights_only=True)
        sd = dict(blob["state_dict"])
        sd[next(iter(sd))] = torch.zeros(3)
        torch.save({**blob, "state_dict": sd}, path)
    elif kind == "config":
        blob = torch.load(DEFAULT_WEIGHTS, map_location="cpu", weights_only=True)
        torch.save({**blob, "config": {"nope": 1}}, path)
    return path


@pytest.mark.parametrize("kind, reason", [
    ("empty", "the file is empty"), ("text", "not a PyTorch file"),
    ("truncated", "a truncated or damaged PyTorch file"), ("pickle", "a plain pickle, not a PyTorch file"),
    ("list", "a PyTorch file, but not a core.nn.unet3d/1 checkpoint"),
    ("layers", "its configuration or layers do not match the network"),
    ("config", "its configuration or layers do not match the network"),
])
def test_bad_weights_file_is_one_sentence(tmp_path, kind, reason, recwarn):
    path = _bad_weights(tmp_path, kind)
    with pytest.raises(ValueError) as info:
        infer.load_model(path)
    msg = str(info.value)
    assert msg == f"{kind}.pt is not a weights file of this model ({reason})"
    assert "\n" not in msg and len(msg) < 120
    assert not [w for w in recwarn if "pickle" in str(w.message)]  # torch's own warning is not shown either
    # the model method names the same sentence
    vol = np.random.default_rng(0).random((16, 16, 16)).astype(np.float32)
    with pytest.raises(ValueError, match=r"is not a weights file of this model"):
        infer.segment_volume(vol, ModelParams(weights=str(path)), device="cpu")


def test_shipped_weights_give_the_documented_scores():
    """The model card's fixed check (core/nn/weights/unet3d.json "check") holds on this machine."""
    check = META["check"]
    e = synth.demo_electrode("cycled-1C", rng=7, shape=(64, 64, 64))
    seg = infer.segment_volume(e.greyscale, ModelParams(precision="float32"), device="cpu")
    iou = phase_iou(e.phases, seg.phases)
    for phase, documented in check["phase_iou"].items():
        assert iou[phase] == pytest.approx(documented, abs=0.01)
    labels = infer.instances_from_cue(seg.phases, seg.cue, e.spacing, h=0.3)
    sc = instance_scores(e.labels, labels)
    assert sc.loc[sc.threshold == 0.5, "f1"].item() == pytest.approx(check["f1_at_0.5"], abs=0.03)
    assert seg.weights_sha256 == infer.weights_digest(DEFAULT_WEIGHTS)


@pytest.mark.skipif(not data.REAL_DIR.is_dir(), reason="real nano-CT slices (../shared/data/real) not present")
def test_shipped_weights_held_out_real_acquisition_score():
    m = infer.load_model()
    held = META["holdout"]
    scores = infer.real_slice_scores(m, data.load_real_slices(acquisitions=[held["acquisition"]]))
    assert scores["mean_iou"] == pytest.approx(held["mean_iou"], abs=0.01)


def test_segment_volume_shapes_and_validation():
    rng = np.random.default_rng(0)
    seg = infer.segment_volume(rng.random((1, 30, 41)).astype(np.float32))  # thinner than the network's multiple
    assert seg.phases.shape == seg.cue.shape == (1, 30, 41)
    assert seg.phases.dtype == np.uint8 and set(np.unique(seg.phases)) <= {PORE, CBD, NMC}
    assert 0 <= seg.cue.min() and seg.cue.max() <= 1
    with pytest.raises(ValueError, match="3D greyscale"):
        infer.segment_volume(np.zeros((4, 4)))
    with pytest.raises(FileNotFoundError):
        infer.segment_volume(np.zeros((8, 8, 8)), ModelParams(weights="/no/such/weights.pt"))
    for bad in (dict(tile=20), dict(overlap=60), dict(h=1.5)):
        with pytest.raises(ValueError):
            ModelParams(**bad)


def test_a_single_slice_is_read_in_the_middle_of_a_stack_of_itself():
    """The network saw real slices stacked 8 deep and read in the middle: a (1, Y, X) volume is padded to that
    stack on both sides (bench/RESULTS.md unet_single_slices: at the stack's first slice the phases of the real
    slices were far worse), and tiled in wide tiles."""
    e = synth.demo_electrode("cycled-1C", rng=3, shape=(32, 200, 360))
    one = e.greyscale[16:17]
    padded, pads = infer._pad_short_axes(one, 8)
    assert pads == [(4, 3), (0, 0), (0, 0)] and padded.shape == (8, 200, 360)
    np.testing.assert_array_equal(padded, np.repeat(one, 8, axis=0))
    assert infer._pad_short_axes(np.zeros((3, 5, 9)), 8)[1] == [(3, 2), (2, 1), (0, 0)]
    assert infer._tile_shape((8, 200, 360), 96, 8) == (8, 200, 328)  # the voxels of a 96³ tile: 8 x 328 x 328
    assert infer._tile_shape((16, 200, 360), 96, 8) == (16, 96, 96)  # deeper: tiles as set
    params = ModelParams(precision="float32")
    seg = infer.segment_volume(one, params, device="cpu")
    stack = infer.segment_volume(np.repeat(one, 8, axis=0), params, device="cpu")
    np.testing.assert_array_equal(seg.phases[0], stack.phases[4])  # its phases are the stack's middle slice
    np.testing.assert_array_equal(seg.cue[0], stack.cue[4])
    # and as predict_slice reads it (the whole image, the middle of 8), up to the tiles' seam blending
    img = one[0].astype(np.float32)
    whole = infer.predict_slice(infer.load_model(), data.normalize(img, *data.robust_range(img)))[:3].argmax(0)
    assert np.mean(whole == seg.phases[0]) > 0.97


def test_instances_from_cue_splits_two_peaks_and_keeps_one():
    labels = _two_touching_balls()
    phases = np.where(labels > 0, NMC, PORE).astype(np.uint8)
    centre, boundary = data.instance_targets(labels)
    cue = centre * (1 - boundary)
    found = infer.instances_from_cue(phases, cue, 0.5, h=0.3)
    assert found.max() == 2
    one = found == found[10, 10, 10]
    assert np.count_nonzero(one & (labels == 1)) / np.count_nonzero(one | (labels == 1)) > 0.95
    # a shallow dip between the peaks (less than h) merges them
    flat = np.where(labels > 0, np.maximum(cue, 0.9), 0).astype(np.float32)
    assert infer.instances_from_cue(phases, flat, 0.5, h=0.3, merge_ratio=0).max() == 1
    with pytest.raises(ValueError, match="h must be"):
        infer.instances_from_cue(phases, cue, 0.5, h=0)
    with pytest.raises(ValueError, match="does not match"):
        infer.instances_from_cue(phases, cue[:-1], 0.5)


def test_pipeline_model_method_and_params():
    e = synth.demo_electrode("pristine", rng=3, shape=(48, 48, 48))
    p = AnalysisParams(method="model", particles="model")
    r = run(e.greyscale, p, spacing=e.spacing)
    assert len(r.table) > 3 and r.labels.max() == len(r.table)
    assert r.provenance["particles_from"] == "model" and "torch" in r.provenance["versions"]
    assert r.provenance["model_weights_sha256"] == infer.weights_digest(DEFAULT_WEIGHTS)
    assert AnalysisParams.from_dict(r.params.to_dict()) == r.params
    # model phases with the classic watershed
    r2 = run(e.greyscale, replace(p, particles="watershed"), spacing=e.spacing)
    assert np.array_equal(r2.phases, r.phases) and r2.provenance["particles_from"] == "watershed"
    # thresholded phases with the network's particles (hybrid)
    r3 = run(e.greyscale, AnalysisParams(particles="model"), spacing=e.spacing)
    r0 = run(e.greyscale, AnalysisParams(), spacing=e.spacing)
    assert np.array_equal(r3.phases, r0.phases) and r3.provenance["particles_from"] == "model"
    assert r3.provenance["phases_from"] == "threshold" and len(r3.table) > 3
    assert r3.provenance["model_weights_sha256"] == infer.weights_digest(DEFAULT_WEIGHTS)
    assert r3.params.model.precision in ("float32", "bfloat16")
    assert np.all((r3.labels > 0) <= (r3.phases == NMC))
    with pytest.raises(ValueError, match="need the greyscale"):
        run(e.phases, p, spacing=e.spacing, presegmented=True)
    old = {k: v for k, v in AnalysisParams().to_dict().items() if k not in ("model", "particles")}
    assert AnalysisParams.from_dict(old) == AnalysisParams()


def test_training_is_seeded_and_writes_a_weights_only_checkpoint(tmp_path):
    cfg = TrainConfig(steps=2, pool_size=1, pool_shape=(32, 40, 40), synth_patch=32, refresh_every=1)
    m1, s1 = train(cfg, real_dir=None, device="cpu", threads=1, log=lambda m: None)
    m2, _ = train(cfg, real_dir=None, device="cpu", threads=1, log=lambda m: None)
    for (k, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k
    assert s1["parameters"] == sum(p.numel() for p in m1.parameters())
    path = tmp_path / "w.pt"
    save_weights(m1, path, {"note": "test"})
    again = infer.load_model(path)
    assert again.meta == {"note": "test"}
    x = torch.zeros(1, 1, 8, 8, 8)
    with torch.inference_mode():
        assert torch.equal(m1.eval()(x), again(x))


def test_cli_segment_and_analyze_with_the_model(tmp_path):
    from core.cli import main
    from core.io import save_tiff

    e = synth.demo_electrode("pristine", rng=5, shape=(40, 48, 48))
    src = tmp_path / "grey.tif"
    save_tiff(src, e.greyscale, e.spacing)
    assert main(["segment", str(src), "--out", str(tmp_path / "seg"), "--method", "model", "-q"]) == 0
    assert (tmp_path / "seg" / "phases.tif").is_file()
    assert main(["analyze", str(src), "--out", str(tmp_path / "an"), "--method", "model", "-q"]) == 0
    rec = json.loads((tmp_path / "an" / "run.json").read_text())
    assert rec["params"]["method"] == "model" and rec["params"]["particles"] == "model"
    assert main(["analyze", str(src), "--out", str(tmp_path / "bad"), "--method", "model",
                 "--weights", str(tmp_path / "missing.pt"), "-q"]) == 2
    assert not (tmp_path / "bad").exists()


def test_precision_is_resolved_recorded_and_close_to_float32():
    e = synth.demo_electrode("cycled-1C", rng=7, shape=(32, 48, 48))
    a = infer.segment_volume(e.greyscale, ModelParams(precision="float32"), device="cpu")
    assert a.precision == "float32"
    if infer.native_bfloat16("cpu"):  # emulated bfloat16 is slow and untested on other CPUs
        b = infer.segment_volume(e.greyscale, ModelParams(precision="bfloat16"), device="cpu")
        assert b.precision == "bfloat16"
        assert np.mean(a.phases == b.phases) > 0.99
        assert np.abs(a.cue.astype(np.float32) - b.cue.astype(np.float32)).max() < 0.1
    assert infer.resolve_precision("auto") == ("bfloat16" if infer.native_bfloat16() else "float32")
    assert infer.resolve_precision("float32", "cpu") == "float32"
    with pytest.raises(ValueError, match="precision"):
        ModelParams(precision="float16")
    with pytest.raises(ValueError, match="precision"):
        infer.resolve_precision("half")
    # the pipeline records the resolved arithmetic, so that a recipe replays with it
    r = run(e.greyscale, AnalysisParams(method="model"), spacing=e.spacing)
    assert r.params.model.precision == infer.resolve_precision("auto")


def test_training_time_limit_and_holdout_option(tmp_path):
    from core.nn.train import main as train_main

    out = tmp_path / "w.pt"
    rc = train_main(["--out", str(out), "--steps", "50", "--no-real", "--device", "cpu", "--threads", "1",
                     "--holdout", "D", "--max-minutes", "0", "--set", "pool_size=1", "--set", "synth_patch=32",
                     "--set", "refresh_every=100"])
    assert rc == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["steps_done"] == 1 and meta["train_config"]["steps"] == 50
    assert meta["train_config"]["holdout"] == "D"
    with pytest.raises(SystemExit):
        train_main(["--set", "holdout=A"])  # not a number: --holdout is the option


def test_interface_weights_mark_pore_and_cbd_within_two_voxels_of_nmc():
    from core.nn.train import interface_weights, phase_loss

    t = torch.zeros(1, 9, 9, 9, dtype=torch.int64)
    t[0, 4, 4, 4] = NMC
    t[0, 4, 4, 6] = 1  # CBD two voxels away (inside the band)
    w = interface_weights(t, 3.0)
    assert w.shape == t.shape
    assert w[0, 4, 4, 4] == 1.0  # NMC itself is not up-weighted
    assert w[0, 4, 4, 6] == 4.0 and w[0, 2, 2, 2] == 4.0  # Chebyshev distance 2
    assert w[0, 4, 4, 7] == 1.0 and w[0, 0, 0, 0] == 1.0
    assert int((w == 4.0).sum()) == 5**3 - 1
    # the weighted loss is the plain one when all weights are equal, and larger when the band is wrong
    logits = torch.zeros(1, 3, 9, 9, 9)
    logits[:, 0] = 5.0  # everything called pore
    plain = phase_loss(logits, t)
    assert torch.allclose(phase_loss(logits, t, torch.ones_like(w)), plain)
    assert phase_loss(logits, t, w) > plain
