"""Tests for core.nn.tiling: tiled inference equals untiled inference, seams are smooth, memory is O(slab)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from core.nn.tiling import (
    WINDOW_FLOOR,
    TiledSegmentation,
    available_cpus,
    plan_tiles,
    predict_tiled,
    robust_range,
    segment_tiled,
)


# --------------------------------------------------------------------------- test models


class Repeat(torch.nn.Module):
    """Returns the input repeated ``c`` times; refuses sizes that are not multiples of ``multiple``."""

    def __init__(self, c: int = 2, multiple: int = 8):
        super().__init__()
        self.c, self.multiple = c, multiple
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        if x.ndim != 5 or x.shape[1] != 1 or any(d % self.multiple for d in x.shape[2:]):
            raise RuntimeError(f"bad input shape {tuple(x.shape)}")
        return x.repeat(1, self.c, 1, 1, 1)


def affine_conv(weights=(1.0, 2.0, -0.5), bias=(0.0, 0.25, 1.0)) -> torch.nn.Conv3d:
    """1x1x1 conv: channel c = weights[c] * x + bias[c]."""
    conv = torch.nn.Conv3d(1, len(weights), 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(weights).view(-1, 1, 1, 1, 1))
        conv.bias.copy_(torch.tensor(bias))
    return conv


def mean_conv(radius: int = 1) -> torch.nn.Conv3d:
    """(2r+1)^3 box mean with zero padding: receptive radius ``radius``."""
    k = 2 * radius + 1
    conv = torch.nn.Conv3d(1, 1, k, padding=radius, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0 / k**3)
    return conv


def untiled(model, volume: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(volume.astype(np.float32))[None, None])[0, 0].numpy()  # channel 0


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# --------------------------------------------------------------------------- identity-like models


SHAPES_TILES = [
    ((37, 50, 29), 16),            # not multiples of the tile
    ((5, 7, 3), 16),               # smaller than one tile along every axis
    ((70, 12, 9), (16, 8, 24)),    # anisotropic volume and tile, x shorter than the tile
    ((1, 40, 20), 16),             # a single slice
    ((16, 16, 16), 16),            # exactly one tile
]


@pytest.mark.parametrize("shape,tile", SHAPES_TILES)
def test_repeat_model_gives_back_the_input(rng, shape, tile):
    vol = rng.random(shape).astype(np.float32)
    model = Repeat(3)
    out = predict_tiled(model, vol, channels_out=3, tile=tile, overlap=4, device="cpu")
    assert out.shape == (3, *shape) and out.dtype == np.float16
    for c in range(3):
        np.testing.assert_allclose(out[c].astype(np.float32), vol, rtol=1e-3, atol=1e-3)
    assert model.shapes and all(s[2] % 8 == 0 and s[3] % 8 == 0 and s[4] % 8 == 0 for s in model.shapes)


@pytest.mark.parametrize("shape,tile", SHAPES_TILES)
def test_affine_conv_known_weights(rng, shape, tile):
    vol = (rng.random(shape) * 4).astype(np.float32)
    out = predict_tiled(affine_conv(), vol, channels_out=3, tile=tile, overlap=4, device="cpu",
                        out_dtype=np.float32)
    for c, (w, b) in enumerate(zip((1.0, 2.0, -0.5), (0.0, 0.25, 1.0))):
        np.testing.assert_allclose(out[c], w * vol + b, rtol=1e-5, atol=1e-5)


def test_intensity_range_maps_lo_hi_to_minus_one_plus_one(rng):
    vol = rng.integers(100, 5000, size=(20, 21, 22)).astype(np.uint16)
    out = predict_tiled(Repeat(1), vol, channels_out=1, tile=16, overlap=4, intensity_range=(1000, 3000),
                        device="cpu", out_dtype=np.float32)
    np.testing.assert_allclose(out[0], (vol.astype(np.float64) - 1000) / 1000 - 1, rtol=1e-5, atol=1e-5)


def test_input_not_modified_even_when_float32(rng):
    vol = rng.random((20, 20, 20)).astype(np.float32)
    before = vol.copy()
    predict_tiled(Repeat(1), vol, channels_out=1, tile=16, overlap=4, intensity_range=(0.2, 0.7), device="cpu")
    np.testing.assert_array_equal(vol, before)


# --------------------------------------------------------------------------- receptive field / seams


@pytest.mark.parametrize("overlap", [2, 4, 8])
@pytest.mark.parametrize("shape", [(40, 45, 50), (33, 64, 17)])
def test_mean_conv_tiled_equals_untiled(rng, shape, overlap):
    """Radius-1 receptive field: exact (to the window floor) once overlap >= 2 (see the module docstring)."""
    vol = rng.random(shape).astype(np.float32)
    model = mean_conv(1)
    out = predict_tiled(model, vol, channels_out=1, tile=16, overlap=overlap, device="cpu", out_dtype=np.float32)
    assert plan_tiles(shape, tile=16, overlap=overlap).n_tiles > 8   # really tiled
    np.testing.assert_allclose(out[0], untiled(model, vol), atol=1e-3, rtol=0)


@pytest.mark.parametrize("overlap,exact", [(8, True), (6, True), (4, False)])
def test_mean_conv_radius_2_needs_overlap_6(rng, overlap, exact):
    """Radius 2: exact when r <= overlap / 4 + 1/2, i.e. overlap >= 6; lengths chosen so that tiles share
    exactly ``overlap`` voxels."""
    n = 24 + 2 * (24 - overlap)                          # three tiles of 24 along every axis
    vol = rng.random((n, n, n)).astype(np.float32)
    plan = plan_tiles(vol.shape, tile=24, overlap=overlap)
    assert all(np.all(24 - np.diff(s) == overlap) for s in plan.starts)
    model = mean_conv(2)
    out = predict_tiled(model, vol, channels_out=1, tile=24, overlap=overlap, device="cpu", out_dtype=np.float32)
    err = np.abs(out[0] - untiled(model, vol)).max()
    assert (err < 1e-3) == exact


def test_without_overlap_tile_edges_show(rng):
    """Negative control: the comparison above does detect tile-edge errors when the overlap is too small."""
    vol = rng.random((40, 45, 50)).astype(np.float32)
    model = mean_conv(1)
    out = predict_tiled(model, vol, channels_out=1, tile=16, overlap=0, device="cpu", out_dtype=np.float32)
    assert np.abs(out[0] - untiled(model, vol)).max() > 0.05


def test_small_volume_padded_interior_matches(rng):
    """A volume smaller than the tile is reflect-padded: identical away from the padded faces."""
    vol = rng.random((12, 13, 11)).astype(np.float32)
    model = mean_conv(1)
    out = predict_tiled(model, vol, channels_out=1, tile=32, overlap=8, device="cpu", out_dtype=np.float32)
    ref = untiled(model, vol)
    np.testing.assert_allclose(out[0, :-1, :-1, :-1], ref[:-1, :-1, :-1], atol=1e-6)


class TileRamp(torch.nn.Module):
    """Output = input + slope * (x index inside the tile): tiles disagree by slope * shift where they overlap."""

    def __init__(self, slope: float):
        super().__init__()
        self.slope = slope

    def forward(self, x):
        ramp = torch.arange(x.shape[-1], dtype=x.dtype) * self.slope
        return x + ramp


def _max_step_x(a: np.ndarray) -> float:
    return float(np.abs(np.diff(a, axis=-1)).max())


@pytest.mark.parametrize("overlap", [8, 16])
def test_no_seam_where_tiles_disagree(overlap):
    """Blending spreads the disagreement between neighbouring tiles over many voxels: no jump at a seam."""
    vol = np.zeros((8, 8, 200), np.float32)
    slope, tile = 0.01, 48
    plan = plan_tiles(vol.shape, tile=(8, 8, tile), overlap=(0, 0, overlap))
    shifts = np.diff(plan.starts[2])
    assert shifts.size >= 3
    jump = slope * shifts.max()               # what a hard cut between two tiles would show
    out = predict_tiled(TileRamp(slope), vol, channels_out=1, tile=(8, 8, tile), overlap=(0, 0, overlap),
                        device="cpu", out_dtype=np.float32)[0]
    # a band of b voxels fades over b/2 of them: steps ~ pi/b of the jump (plus the in-tile slope)
    assert _max_step_x(out) < 0.5 * jump
    assert _max_step_x(out) <= np.pi / overlap * jump + slope + 1e-6


def test_hard_cut_would_show_a_seam():
    """Negative control for the seam measure: without shared voxels the same model jumps at every seam."""
    vol = np.zeros((8, 8, 192), np.float32)
    slope, tile = 0.01, 48
    out = predict_tiled(TileRamp(slope), vol, channels_out=1, tile=(8, 8, tile), overlap=0, device="cpu",
                        out_dtype=np.float32)[0]
    assert _max_step_x(out) == pytest.approx(slope * (tile - 1), rel=1e-4)


def test_window_floor_and_partition_of_unity():
    """Every voxel's weights are > 0; the windows of a band sum to 1 (so blended constants stay constant)."""
    from core.nn.tile_plan import _axis_windows

    for length, tile, overlap in [(100, 32, 8), (33, 16, 4), (16, 16, 4), (200, 48, 16)]:
        starts = plan_tiles((length, 1, 1), tile=(tile, 8, 8), overlap=(overlap, 0, 0)).starts[0]
        windows, total = _axis_windows(starts, tile, length)
        assert min(w.min() for w in windows) >= WINDOW_FLOOR * 0.999
        if len(starts) > 1:
            # interior tiles fade at both sides, first/last not at the volume border
            assert windows[0][0] == 1.0 and windows[-1][-1] == 1.0
            assert windows[0][-1] == pytest.approx(WINDOW_FLOOR)
        np.testing.assert_allclose(total, 1.0, atol=3 * WINDOW_FLOOR)


# --------------------------------------------------------------------------- plan


def test_plan_known_layouts():
    p = plan_tiles((40, 41, 16), tile=16, overlap=4)
    assert p.starts == ((0, 12, 24), (0, 8, 17, 25), (0,))     # evenly spaced, last one flush with the end
    assert p.tile == (16, 16, 16) and p.pad == (0, 0, 0) and p.n_tiles == 12 and p.tiles_per_slab == 4
    small = plan_tiles((5, 9, 30), tile=(16, 16, 32), overlap=4, multiple=8)
    assert small.tile == (8, 16, 32) and small.pad == (3, 7, 2) and small.n_tiles == 1
    for length in range(17, 120, 7):
        starts = plan_tiles((length, 8, 8), tile=16, overlap=5).starts[0]
        assert starts[0] == 0 and starts[-1] == length - 16
        assert all(16 - (b - a) >= 5 for a, b in zip(starts, starts[1:]))    # at least `overlap` shared


# --------------------------------------------------------------------------- progress, sink, memory


def test_progress_monotonic_ending_at_one(rng):
    vol = rng.random((30, 30, 30)).astype(np.float32)
    calls = []
    predict_tiled(Repeat(1), vol, channels_out=1, tile=16, overlap=4, device="cpu",
                  progress=lambda f, m: calls.append((f, m)))
    fracs = [f for f, _ in calls]
    assert len(calls) == plan_tiles(vol.shape, tile=16, overlap=4).n_tiles
    assert all(b > a for a, b in zip(fracs, fracs[1:])) and fracs[-1] == 1.0 and 0 < fracs[0]
    assert all(isinstance(m, str) and m for _, m in calls)


def test_batches_give_the_same_result(rng):
    vol = rng.random((30, 35, 30)).astype(np.float32)
    model = mean_conv(1)
    one = predict_tiled(model, vol, channels_out=1, tile=16, overlap=4, device="cpu", out_dtype=np.float32)
    calls = []
    many = predict_tiled(model, vol, channels_out=1, tile=16, overlap=4, device="cpu", out_dtype=np.float32,
                         batch_size=3, progress=lambda f, m: calls.append(f))
    np.testing.assert_allclose(many, one, atol=1e-6)
    assert calls[-1] == 1.0 and len(calls) < plan_tiles(vol.shape, tile=16, overlap=4).n_tiles


def test_sink_gets_ordered_slabs_of_bounded_depth(rng):
    shape = (100, 20, 24)
    vol = rng.random(shape).astype(np.float32)
    blocks = []

    def sink(z0, z1, block):
        blocks.append((z0, z1, block.shape, block.dtype))
        got[:, z0:z1] = block

    got = np.zeros((2, *shape), np.float32)
    assert predict_tiled(Repeat(2), vol, channels_out=2, tile=16, overlap=4, sink=sink, device="cpu") is None
    assert blocks[0][0] == 0 and blocks[-1][1] == shape[0]
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))                  # contiguous, in order
    assert all(0 < z1 - z0 <= 16 and s == (2, z1 - z0, 20, 24) and d == np.float16 for z0, z1, s, d in blocks)
    np.testing.assert_allclose(got[1], vol, rtol=1e-3, atol=1e-3)


def test_peak_numpy_memory_is_slab_sized(rng):
    """With a sink, no array of the volume's size is made: the peak stays a few slabs."""
    shape, tile, channels = (256, 24, 24), 16, 4
    vol = rng.random(shape).astype(np.float32)
    plan = plan_tiles(shape, tile=tile, overlap=4)
    slab = plan.accumulator_bytes(channels)
    full = 4 * channels * vol.size
    assert full > 10 * slab
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        predict_tiled(Repeat(channels), vol, channels_out=channels, tile=tile, overlap=4, device="cpu",
                      sink=lambda z0, z1, b: None)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 4 * slab
    assert peak < full / 3


def test_memmap_input_read_tile_by_tile(tmp_path, rng):
    vol = rng.integers(0, 60000, size=(40, 30, 20)).astype(np.uint16)
    np.save(tmp_path / "v.npy", vol)
    mm = np.load(tmp_path / "v.npy", mmap_mode="r")
    lo, hi = robust_range(mm)
    a = predict_tiled(affine_conv(), mm, channels_out=3, tile=16, overlap=4, intensity_range=(lo, hi), device="cpu")
    b = predict_tiled(affine_conv(), vol, channels_out=3, tile=16, overlap=4, intensity_range=(lo, hi), device="cpu")
    np.testing.assert_array_equal(a, b)


class SliceOnly:
    """Array-like that only supports slicing and records the size of every read."""

    def __init__(self, data):
        self._data, self.shape, self.dtype, self.reads = data, data.shape, data.dtype, []

    def __getitem__(self, key):
        out = self._data[key]
        self.reads.append(out.size)
        return out

    def __array__(self, *a, **k):
        raise AssertionError("the whole volume was converted to an array")


def test_array_like_input_is_never_read_whole(rng):
    data = rng.random((50, 40, 30)).astype(np.float32)
    src = SliceOnly(data)
    out = predict_tiled(Repeat(1), src, channels_out=1, tile=16, overlap=4, device="cpu", out_dtype=np.float32)
    np.testing.assert_allclose(out[0], data, atol=1e-6)
    assert max(src.reads) <= 16**3


def test_out_memmap_and_reduce(tmp_path, rng):
    vol = rng.random((30, 20, 20)).astype(np.float32)
    out = np.lib.format.open_memmap(tmp_path / "o.npy", mode="w+", dtype=np.float32, shape=(3, 30, 20, 20))
    assert predict_tiled(affine_conv(), vol, channels_out=3, tile=16, overlap=4, out=out, device="cpu") is out
    np.testing.assert_allclose(out[1], 2 * vol + 0.25, atol=1e-2)
    red = predict_tiled(affine_conv(), vol, channels_out=3, tile=16, overlap=4, device="cpu",
                        reduce=lambda b: np.argmax(b, axis=0).astype(np.uint8))
    assert red.shape == vol.shape and red.dtype == np.uint8
    expected = np.argmax(np.stack([vol, 2 * vol + 0.25, -0.5 * vol + 1]), axis=0)
    np.testing.assert_array_equal(red, expected)


def test_postprocess_softmax_blends_probabilities(rng):
    vol = rng.random((20, 24, 28)).astype(np.float32)
    out = predict_tiled(affine_conv(), vol, channels_out=3, tile=16, overlap=4, device="cpu", out_dtype=np.float32,
                        postprocess=lambda t: torch.softmax(t, dim=1))
    logits = np.stack([vol, 2 * vol + 0.25, -0.5 * vol + 1])
    e = np.exp(logits - logits.max(0))
    np.testing.assert_allclose(out, e / e.sum(0), atol=1e-5)


def test_tuple_output_is_concatenated(rng):
    class Two(torch.nn.Module):
        def forward(self, x):
            return x, 2 * x

    vol = rng.random((10, 20, 20)).astype(np.float32)
    out = predict_tiled(Two(), vol, channels_out=2, tile=16, overlap=4, device="cpu", out_dtype=np.float32)
    np.testing.assert_allclose(out[1], 2 * vol, atol=1e-6)


# --------------------------------------------------------------------------- segment_tiled


def test_segment_tiled_labels_and_extra(rng):
    vol = rng.random((40, 20, 20)).astype(np.float32)
    calls = []
    res = segment_tiled(affine_conv(), vol, channels_out=3, extra_channel=1, tile=16, overlap=4, device="cpu",
                        progress=lambda f, m: calls.append(f))
    assert isinstance(res, TiledSegmentation)
    expected = np.argmax(np.stack([vol, 2 * vol + 0.25, -0.5 * vol + 1]), axis=0)
    assert res.labels.dtype == np.uint8 and res.extra.dtype == np.float16
    np.testing.assert_array_equal(res.labels, expected)
    np.testing.assert_allclose(res.extra.astype(np.float32), 2 * vol + 0.25, rtol=1e-3)
    assert calls[-1] == 1.0


def test_segment_tiled_class_subset_and_preallocated(rng):
    vol = rng.random((20, 20, 20)).astype(np.float32)
    labels = np.full(vol.shape, 255, np.uint8)
    res = segment_tiled(affine_conv(), vol, channels_out=3, class_channels=[2, 0], labels_out=labels, tile=16,
                        overlap=4, device="cpu")
    assert res.labels is labels and res.extra is None
    np.testing.assert_array_equal(labels, (vol > -0.5 * vol + 1).astype(np.uint8))   # 1 = channel 0 wins


# --------------------------------------------------------------------------- model state, threads, device


def test_model_mode_device_and_threads_restored(rng):
    model = torch.nn.Sequential(affine_conv(), torch.nn.Dropout(0.5))
    model.train()
    model[0].eval()
    threads = torch.get_num_threads()
    vol = rng.random((16, 16, 16)).astype(np.float32)
    seen = []
    model.register_forward_pre_hook(lambda m, a: seen.append((m.training, torch.get_num_threads(),
                                                             torch.is_inference_mode_enabled())))
    out = predict_tiled(model, vol, channels_out=3, tile=16, overlap=4, device="cpu", num_threads=1,
                        out_dtype=np.float32)
    np.testing.assert_allclose(out[0], vol, atol=1e-6)       # dropout off: eval mode during the call
    assert seen == [(False, 1, True)]
    assert model.training and not model[0].training and model[1].training
    assert torch.get_num_threads() == threads


def test_default_threads_are_the_available_cores(rng):
    seen = []

    def model(x):
        seen.append(torch.get_num_threads())
        return x

    predict_tiled(model, rng.random((8, 8, 8)).astype(np.float32), channels_out=1, tile=8, overlap=0,
                  device="cpu")
    assert seen == [available_cpus()]
    assert available_cpus() >= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu(rng):
    vol = rng.random((40, 45, 50)).astype(np.float32)
    model = mean_conv(1)
    cpu = predict_tiled(model, vol, channels_out=1, tile=16, overlap=4, device="cpu", out_dtype=np.float32)
    gpu = predict_tiled(model, vol, channels_out=1, tile=16, overlap=4, device="auto", autocast=False,
                        out_dtype=np.float32)
    half = predict_tiled(model, vol, channels_out=1, tile=16, overlap=4, device="cuda", out_dtype=np.float32)
    np.testing.assert_allclose(gpu, cpu, atol=1e-5)
    np.testing.assert_allclose(half, cpu, atol=2e-3)
    assert next(model.parameters()).device.type == "cpu"


# --------------------------------------------------------------------------- robust_range


def test_robust_range_known_percentiles():
    vol = np.arange(100 * 10 * 10, dtype=np.float32).reshape(100, 10, 10)
    assert robust_range(vol, q=(0, 100)) == (0.0, 9999.0)
    lo, hi = robust_range(vol, q=(10, 90))
    assert lo == pytest.approx(999.9) and hi == pytest.approx(8999.1)
    lo_s, hi_s = robust_range(vol, q=(10, 90), n=1000)       # strided sample: close, from <= 1000 voxels
    assert abs(lo_s - lo) < 300 and abs(hi_s - hi) < 300


def test_robust_range_constant_and_nan():
    assert robust_range(np.full((4, 4, 4), 7, np.uint8)) == (7.0, 8.0)
    vol = np.full((4, 4, 4), np.nan, np.float32)
    vol[0, 0, :2] = (1.0, 3.0)
    assert robust_range(vol, q=(0, 100)) == (1.0, 3.0)
    with pytest.raises(ValueError, match="no finite value"):
        robust_range(np.full((2, 2, 2), np.nan))


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(tile=16, overlap=10), ValueError, "at least 2 \\* overlap"),
    (dict(tile=20, overlap=4), ValueError, "multiple of 8"),
    (dict(tile=(16, 16), overlap=4), TypeError, "three ints"),
    (dict(channels_out=0), ValueError, "channels_out"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(intensity_range=(5, 5)), ValueError, "hi > lo"),
    (dict(out_dtype=np.uint8), ValueError, "floating dtype"),
    (dict(out=np.zeros((1, 16, 16, 16), np.float32)), ValueError, "out has shape"),
    (dict(out=np.zeros((2, 16, 16, 16), np.float32), sink=lambda *a: None), ValueError, "not both"),
    (dict(sink="file.npy"), TypeError, "sink must be callable"),
    (dict(device="tpu"), ValueError, "device"),
])
def test_validation_errors(kwargs, exc, match):
    args = dict(channels_out=2, tile=16, overlap=4, device="cpu")
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        predict_tiled(Repeat(2), np.zeros((16, 16, 16), np.float32), **args)


def test_wrong_volume_and_model_output():
    with pytest.raises(ValueError, match="3D"):
        predict_tiled(Repeat(1), np.zeros((16, 16)), channels_out=1, device="cpu")
    with pytest.raises(TypeError, match="numpy array"):
        predict_tiled(Repeat(1), [[[1.0]]], channels_out=1, device="cpu")
    with pytest.raises(ValueError, match=r"returned shape \(1, 1, 16, 16, 16\).*channels_out=3"):
        predict_tiled(Repeat(1), np.zeros((16, 16, 16)), channels_out=3, tile=16, overlap=4, device="cpu")
    with pytest.raises(ValueError, match="same D, H, W"):
        predict_tiled(lambda x: x[..., :8], np.zeros((16, 16, 16)), channels_out=1, tile=16, overlap=4,
                      device="cpu")
    with pytest.raises(ValueError, match="class_channels"):
        segment_tiled(Repeat(2), np.zeros((8, 8, 8)), channels_out=2, class_channels=[0, 2], device="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            predict_tiled(Repeat(1), np.zeros((8, 8, 8)), channels_out=1, device="cuda")


def test_argmax_helper_matches_numpy_with_ties(rng):
    from core.nn.tiling import _argmax_uint8

    block = rng.integers(0, 3, size=(4, 6, 7, 8)).astype(np.float32)      # many ties
    for channels in ([0, 1, 2, 3], [3, 1], [2]):
        np.testing.assert_array_equal(_argmax_uint8(block, channels), np.argmax(block[channels], axis=0))
