"""Known-answer tests for core.phases (greyscale -> phase codes)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage as ndi

from core import phases as P
from core.phases import partial_volume as PV
from core.io import downsampling as DS
from core.codes import CBD, NMC, PORE
from core.phases import (
    BlurAssessment,
    SegmentParams,
    correct_partial_volume,
    remove_small_islands,
    segment,
    segment_detailed,
    suggest_thresholds,
    threshold,
)


def ball(shape, centre, radius) -> np.ndarray:
    zz, yy, xx = np.indices(shape)
    return (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= radius**2


# --------------------------------------------------------------------------- threshold / Otsu


def test_threshold_on_ramp_gives_exact_codes():
    ramp = np.arange(10, dtype=np.float32).reshape(1, 1, 10)
    out = threshold(ramp, 3, 7)
    assert out.dtype == np.uint8 and out.shape == ramp.shape
    assert out.ravel().tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]  # < low pore, >= high NMC
    ramp16 = np.arange(24, dtype=np.uint16).reshape(2, 3, 4)
    np.testing.assert_array_equal(threshold(ramp16, 8, 16), np.repeat([0, 1, 2], 8).reshape(2, 3, 4))


def test_threshold_rejects_low_not_below_high():
    with pytest.raises(ValueError, match=r"low threshold \(5\) must be below high threshold \(5\)"):
        threshold(np.zeros((2, 2, 2)), 5, 5)


@pytest.mark.parametrize("dtype, low, high", [
    (np.float32, 0.3, 0.7), (np.float32, np.float64(0.3), np.float64(0.7)), (np.float64, 0.3, 0.7),
    (np.float16, 0.1, 0.7), (np.uint16, 20000.5, 40000), (np.uint16, 20000, 70000),
])
def test_threshold_compares_as_numpy_does(dtype, low, high):
    """One compiled pass for run and preview, with numpy's comparison types (NaN is CBD)."""
    v = np.random.default_rng(0).random((6, 7, 9))
    if np.issubdtype(dtype, np.integer):
        v = v * 65535
    v = v.astype(dtype)
    if np.issubdtype(dtype, np.floating):
        v[0, 0, :3] = (np.nan, np.inf, -np.inf)
    want = np.full(v.shape, CBD, np.uint8)
    want[v < low] = PORE
    want[v >= high] = NMC
    np.testing.assert_array_equal(threshold(v, low, high), want)
    np.testing.assert_array_equal(threshold(v[:, ::2, ::-1], low, high), want[:, ::2, ::-1])


def test_suggest_thresholds_three_levels():
    rng = np.random.default_rng(0)
    levels = np.array([0.1, 0.45, 0.8], np.float32)
    codes = rng.integers(0, 3, size=(24, 24, 24))
    vol = levels[codes] + rng.normal(0, 0.03, codes.shape).astype(np.float32)
    lo, hi = suggest_thresholds(vol)
    assert isinstance(lo, float) and isinstance(hi, float)
    assert 0.2 < lo < 0.35
    assert 0.55 < hi < 0.7
    # thresholding with them recovers the levels almost everywhere
    assert (threshold(vol, lo, hi) == codes).mean() > 0.99


# --------------------------------------------------------------------------- islands


def test_remove_small_islands():
    ph = np.zeros((12, 12, 12), np.uint8)
    ph[2:8, 2:8, 2:8] = CBD  # big block: kept
    ph[10, 10, 10] = CBD  # single CBD voxel in pore: removed
    ph[4, 4, 4] = NMC  # single NMC voxel inside CBD: becomes CBD
    ph[0, 0, 0] = NMC  # single NMC voxel in the corner, in pore
    out = remove_small_islands(ph, 8)
    assert out.dtype == np.uint8
    assert out[10, 10, 10] == PORE
    assert out[4, 4, 4] == CBD
    assert out[0, 0, 0] == PORE
    assert (out[2:8, 2:8, 2:8] == CBD).all()
    assert (out == CBD).sum() == 216
    assert (out == NMC).sum() == 0
    # min_size <= 1 keeps everything (but is a copy)
    same = remove_small_islands(ph, 1)
    np.testing.assert_array_equal(same, ph)
    assert same is not ph


def test_remove_small_islands_majority_neighbour():
    ph = np.zeros((5, 5, 7), np.uint8)
    ph[:, :, 4:] = NMC
    ph[2, 2, 3] = CBD  # 1 face to NMC, 5 faces to pore -> pore
    ph[2, 2, 5] = CBD  # inside NMC -> NMC
    out = remove_small_islands(ph, 2)
    assert out[2, 2, 3] == PORE and out[2, 2, 5] == NMC


# --------------------------------------------------------------------------- partial volume


@pytest.fixture(scope="module")
def blurred_spheres():
    """Sphere A bare in pore; sphere B in a 3-voxel CBD shell; Gaussian blur sigma 1."""
    shape = (36, 36, 72)
    a = ball(shape, (18, 18, 18), 10)
    b = ball(shape, (18, 18, 53), 10)
    d_b = ndi.distance_transform_edt(~b)
    shell_b = (d_b > 0) & (d_b <= 3)
    img = np.full(shape, 0.1, np.float32)
    img[a | b] = 0.85
    img[shell_b] = 0.42
    vol = ndi.gaussian_filter(img, 1.0)
    near_a = ndi.distance_transform_edt(~a) <= 4  # A and the 4 voxels around it
    lo, hi = suggest_thresholds(vol)
    ph = threshold(vol, lo, hi)
    return vol, ph, lo, near_a, shell_b


def test_threshold_creates_false_cbd_shell(blurred_spheres):
    vol, ph, lo, near_a, shell_b = blurred_spheres
    assert (ph[near_a] == CBD).sum() > 500  # the blur halo of a bare sphere reads as CBD
    assert (ph[shell_b] == CBD).mean() > 0.9


def test_correct_partial_volume_removes_false_shell(blurred_spheres):
    vol, ph, lo, near_a, shell_b = blurred_spheres
    before = (ph[near_a] == CBD).sum()
    out = correct_partial_volume(vol, ph, lo, sigma=1.0)  # the blur of the image
    assert out.dtype == np.uint8
    after = (out[near_a] == CBD).sum()
    assert after < 0.2 * before
    assert (out[shell_b] == CBD).mean() > 0.7  # genuine thick CBD is kept
    assert np.all(out[ph == NMC] == NMC)  # NMC is kept (and may grow)


def test_correct_partial_volume_estimated_sigma_removes_false_shell(blurred_spheres):
    vol, ph, lo, near_a, shell_b = blurred_spheres
    before = (ph[near_a] == CBD).sum()
    out = correct_partial_volume(vol, ph, lo)
    assert (out[near_a] == CBD).sum() < 0.2 * before
    assert (out[shell_b] == CBD).mean() > 0.7


def test_estimate_pv_sigma_without_cbd():
    shape = (32, 32, 32)
    img = np.full(shape, 0.1, np.float32)
    img[ball(shape, (16, 16, 16), 8)] = 0.85
    vol = ndi.gaussian_filter(img, 1.0)
    # the estimate expects NMC out to its true edge (segment() grows the thresholded rim
    # for that); with no CBD at all it fits the pore side only
    ph = np.where(img > 0.5, NMC, PORE).astype(np.uint8)
    assert P.estimate_pv_sigma(vol, ph) == pytest.approx(1.0, abs=0.25)


def test_correct_partial_volume_rejects_shape_mismatch():
    with pytest.raises(ValueError, match=r"volume shape \(4, 4, 4\) differs from phases shape \(4, 4, 5\)"):
        correct_partial_volume(np.zeros((4, 4, 4)), np.zeros((4, 4, 5), np.uint8), 0.5)


# --------------------------------------------------------------------------- segment


def test_segment_two_level_volume_with_explicit_thresholds():
    shape = (20, 20, 20)
    truth = np.zeros(shape, np.uint8)
    truth[ball(shape, (10, 10, 10), 6)] = NMC
    truth[:, :, :3] = CBD
    vol = np.array([100, 400, 800], np.uint16)[truth]
    params = SegmentParams(denoise="none", low=250, high=600, partial_volume=False, min_island=0)
    np.testing.assert_array_equal(segment(vol, params), truth)
    res = segment_detailed(vol, params)
    assert res.params == params


def test_segment_resolves_params_and_is_reproducible(blurred_spheres):
    vol = blurred_spheres[0]
    res = segment_detailed(vol)
    p = res.params
    assert p.low is not None and p.high is not None and p.low < p.high
    assert p.pv_sigma is not None and p.pv_sigma > 0
    assert set(np.unique(res.phases)) <= {0, 1, 2}
    np.testing.assert_array_equal(segment(vol, p), res.phases)


@pytest.mark.parametrize("params", [SegmentParams(), SegmentParams(denoise="median", denoise_size=3, pv_sigma=0.9)])
def test_segment_by_slabs_equals_whole_volume(blurred_spheres, params):
    vol = blurred_spheres[0]
    whole = segment_detailed(vol, params, slab=10_000)
    for slab in (1, 5):
        part = segment_detailed(vol, params, slab=slab)
        np.testing.assert_array_equal(part.phases, whole.phases)
        assert part.params == whole.params


@pytest.mark.parametrize(
    "volume, exc, match",
    [
        (np.full((6, 6, 6), 7, np.uint16), ValueError, r"constant \(every voxel = 7\): nothing to segment"),
        (np.full((6, 6, 6), np.nan, np.float32), ValueError, r"holds no finite value \(all NaN or infinite\)"),
        (np.full((6, 6, 6), np.inf, np.float64), ValueError, r"holds no finite value"),
        (np.zeros((6, 6, 6), bool), TypeError, r"is boolean"),
        (np.zeros((6, 6)), ValueError, r"must be 3D"),
        (np.zeros((0, 6, 6)), ValueError, r"is empty"),
        ([[[1, 2]]], TypeError, r"must be a numpy array"),
    ],
)
def test_segment_rejects_bad_volume(volume, exc, match):
    with pytest.raises(exc, match=match):
        segment(volume)


def test_segment_float_volume_with_some_nan():
    shape = (16, 16, 16)
    truth = np.zeros(shape, np.uint8)
    truth[4:12, 4:12, 4:12] = NMC
    truth[4:12, 4:12, 12:15] = CBD
    vol = np.array([0.1, 0.45, 0.85], np.float32)[truth]
    vol[0, 0, :4] = np.nan
    params = SegmentParams(denoise="none", partial_volume=False, min_island=0)
    out = segment(vol, params)
    assert set(np.unique(out)) == {0, 1, 2}
    np.testing.assert_array_equal(out[1:], truth[1:])


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"low": 0.5, "high": 0.5}, r"low threshold \(0.5\) must be below high threshold \(0.5\)"),
        ({"low": 0.7, "high": 0.3}, r"low threshold \(0.7\) must be below high threshold \(0.3\)"),
        ({"denoise": "wavelet"}, r"denoise must be one of \['none', 'gaussian', 'median', 'nlm'\], got 'wavelet'"),
        ({"denoise_size": -1}, r"denoise_size must be >= 0"),
        ({"pv_sigma": 0}, r"pv_sigma must be > 0"),
        ({"min_island": -1}, r"min_island must be >= 0"),
    ],
)
def test_segment_params_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        SegmentParams(**kw)


def test_inputs_not_modified(blurred_spheres):
    vol, ph, lo, _, _ = blurred_spheres
    vol, ph = vol.copy(), ph.copy()
    vol_copy, ph_copy = vol.copy(), ph.copy()
    out1 = correct_partial_volume(vol, ph, lo, sigma=1.0)
    seg1 = segment(vol, SegmentParams(pv_sigma=1.0))
    np.testing.assert_array_equal(vol, vol_copy)
    np.testing.assert_array_equal(ph, ph_copy)
    vol.flags.writeable = False
    ph.flags.writeable = False
    np.testing.assert_array_equal(correct_partial_volume(vol, ph, lo, sigma=1.0), out1)
    np.testing.assert_array_equal(segment(vol, SegmentParams(pv_sigma=1.0)), seg1)
    np.testing.assert_array_equal(remove_small_islands(ph, 8), remove_small_islands(ph_copy, 8))
    np.testing.assert_array_equal(vol, vol_copy)
    # an integer greyscale is not modified either
    grey = (vol_copy * 60000).astype(np.uint16)
    grey_copy = grey.copy()
    segment(grey, SegmentParams(denoise="median", denoise_size=3, pv_sigma=1.0))
    np.testing.assert_array_equal(grey, grey_copy)


# --------------------------------------------------------------------------- small helpers


def test_crop_and_downsample():
    vol = np.arange(4 * 6 * 8, dtype=np.uint16).reshape(4, 6, 8)
    c = P.crop(vol, z=(1, 3), x=(2, 8))
    assert c.shape == (2, 6, 6) and np.shares_memory(c, vol)
    np.testing.assert_array_equal(c, vol[1:3, :, 2:8])
    with pytest.raises(ValueError, match=r"crop range y=\(0, 7\) must satisfy 0 <= start < stop <= 6"):
        P.crop(vol, y=(0, 7))
    small, sp = DS.downsample(vol, 2, (0.5, 1.0, 2.0))
    assert small.shape == (2, 3, 4) and small.dtype == np.float32
    assert sp == (1.0, 2.0, 4.0)
    assert small[0, 0, 0] == np.mean(vol[:2, :2, :2])
    np.testing.assert_allclose(small, vol.reshape(2, 2, 3, 2, 4, 2).mean(axis=(1, 3, 5)))
    with pytest.raises(ValueError, match=r"downsample factor must be between 1 and 8, got 0"):
        DS.downsample(vol, 0)
    with pytest.raises(TypeError, match=r"downsample factor must be a whole number, got 1.5"):
        DS.downsample(vol, 1.5)
    with pytest.raises(ValueError, match=r"smaller than the downsample factor 5"):
        DS.downsample(vol, 5)
    assert DS.downsample(vol, 2.0)[0].shape == (2, 3, 4)


def test_downsample_factors_keep_eight_voxels_and_the_total_limit():
    assert DS.downsample_factors((20, 24, 32)) == [1, 2]
    assert DS.downsample_factors((512, 512, 512)) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert DS.downsample_factors((512, 512, 512), already=2) == [1, 2, 3, 4]
    assert DS.downsample_factors((1, 500, 600)) == [1]  # a 2D image


def test_downsample_memory_map_drops_trailing_planes(tmp_path):
    """A memory map is read block by block; planes that do not fill a block are dropped on every axis."""
    rng = np.random.default_rng(0)
    vol = rng.integers(0, 60000, (7, 10, 9)).astype(np.uint16)
    np.save(tmp_path / "v.npy", vol)
    mm = np.load(tmp_path / "v.npy", mmap_mode="r")
    small, sp = DS.downsample(mm, 3, 0.2)
    assert small.shape == (2, 3, 3) and sp == pytest.approx((0.6, 0.6, 0.6))
    want = vol[:6, :9, :9].astype(np.float64).reshape(2, 3, 3, 3, 3, 3).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(small, want, rtol=1e-6)


def test_normalize_intensity_values():
    vol = np.arange(1000, dtype=np.float32).reshape(10, 10, 10)
    n = P.normalize_intensity(vol, low_pct=0, high_pct=100)
    assert n.min() == 0 and n.max() == 1
    assert n[0, 0, 1] == pytest.approx(1 / 999)
    clipped = P.normalize_intensity(vol, low_pct=10, high_pct=90)
    assert clipped[0, 0, 0] == 0 and clipped[-1, -1, -1] == 1
    assert clipped.ravel()[500] == pytest.approx((500 - 99.9) / (899.1 - 99.9), rel=1e-5)


def test_normalize_intensity_returns_float32():
    vol = np.arange(1000, dtype=np.uint16).reshape(10, 10, 10)
    assert P.normalize_intensity(vol).dtype == np.float32


def test_denoise_none_is_a_float32_copy():
    vol = np.arange(27, dtype=np.uint16).reshape(3, 3, 3)
    out = P.denoise(vol, "none")
    assert out.dtype == np.float32 and not np.shares_memory(out, vol)
    np.testing.assert_array_equal(out, vol)
    g = P.denoise(np.full((5, 5, 5), 3.0, np.float32), "gaussian", size=1.0)
    np.testing.assert_allclose(g, 3.0)
    with pytest.raises(ValueError, match=r"method must be one of"):
        P.denoise(vol, "bilateral")


@pytest.mark.parametrize("method", ["gaussian", "median", "nlm"])
def test_each_denoising_lowers_the_noise_and_keeps_the_step(method):
    """Every method the Segment page offers runs on a fresh install (non-local means reads its noise level with
    skimage's ``estimate_sigma``, which needs PyWavelets) and more than halves the noise of a two-level step
    volume, its step staying between the same voxels."""
    rng = np.random.default_rng(0)
    clean = np.zeros((12, 24, 24), np.float32)
    clean[:, :, 12:] = 1.0
    out = P.denoise(clean + rng.normal(0, 0.1, clean.shape).astype(np.float32), method, size=2.0)
    assert out.dtype == np.float32 and out.shape == clean.shape
    assert np.std(out[:, :, :9]) < 0.05 and np.std(out[:, :, 15:]) < 0.05
    profile = out.mean(axis=(0, 1))
    assert profile[11] < 0.5 < profile[12]
    one = P.denoise(clean[:1] + rng.normal(0, 0.1, clean[:1].shape).astype(np.float32), method, size=2.0)
    assert one.shape == clean[:1].shape and np.std(one[:, :, :9]) < 0.06  # a single slice keeps its z axis


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_preview_slice_matches_the_full_segmentation(axis):
    from core.synth import ElectrodeParams, make_electrode

    e = make_electrode(ElectrodeParams(shape=(40, 40, 40)), rng=5)
    res = P.segment_detailed(e.greyscale)
    # the preview takes the full run's global values; along axes 1 and 2 the filters sum
    # in another order, so a rare voxel may flip there
    got = P.preview_slice(e.greyscale, axis, 20, res.params)
    want = np.take(res.phases, 20, axis=axis)
    assert got.shape == want.shape
    if axis == 0:
        np.testing.assert_array_equal(got, want)
    else:
        assert (got != want).mean() < 0.005


def test_preview_slice_needs_thresholds_and_a_valid_index():
    vol = np.random.default_rng(0).random((8, 8, 8)).astype(np.float32)
    with pytest.raises(ValueError, match="set both thresholds"):
        P.preview_slice(vol, 0, 3, SegmentParams())
    with pytest.raises(ValueError, match="outside 0..7"):
        P.preview_slice(vol, 0, 8, SegmentParams(low=0.3, high=0.6))


# --------------------------------------------------------------------------- two-step preview


@pytest.fixture(scope="module")
def electrode64():
    from core.synth import ElectrodeParams, make_electrode

    return make_electrode(ElectrodeParams(shape=(48, 56, 56)), rng=3).greyscale


@pytest.mark.parametrize("params", [SegmentParams(pv_sigma=1.2),
                                    SegmentParams(denoise="median", denoise_size=3, pv_sigma=0.9, min_island=20)])
def test_one_context_follows_the_thresholds_like_full_runs(electrode64, params):
    """A threshold move only redoes preview_from; each result is the slice of a full run (in slabs of 7)."""
    vol = electrode64
    lo, hi = suggest_thresholds(vol)
    span = hi - lo
    ctxs = {i: P.prepare_preview(vol, 0, i, params) for i in (0, 5, 24, 47)}
    for low, high in [(lo, hi), (lo - 0.1 * span, hi + 0.05 * span), (lo + 0.1 * span, hi - 0.1 * span)]:
        full = P.segment_detailed(vol, replace(params, low=float(low), high=float(high)), slab=7).phases
        for i, ctx in ctxs.items():
            np.testing.assert_array_equal(P.preview_from(ctx, low, high), full[i])


def test_preview_with_estimated_blur_equals_the_run_at_any_thresholds(electrode64):
    """The blur and the phase grey values are the image's (taken at the suggested thresholds), in both."""
    vol = electrode64
    res = P.segment_detailed(vol, SegmentParams())  # Otsu thresholds, blur estimated
    g = P.preview_globals(vol, SegmentParams())
    assert g.sigma_source == "estimated" and g.pv_sigma == res.params.pv_sigma
    assert g.suggested == pytest.approx((res.params.low, res.params.high), abs=0)
    for axis in (0, 1, 2):
        ctx = P.prepare_preview(vol, axis, 20, SegmentParams(), globals=g)
        assert ctx.sigma_source == "estimated" and ctx.params.pv_sigma == res.params.pv_sigma
        got = P.preview_from(ctx, res.params.low, res.params.high)
        want = np.take(res.phases, 20, axis=axis)
        if axis == 0:
            np.testing.assert_array_equal(got, want)
        else:
            assert (got != want).mean() < 0.005
    # at other thresholds the full run estimates the same blur, and the preview is its slice
    lo, hi = res.params.low, res.params.high
    moved = P.segment_detailed(vol, SegmentParams(low=lo * 0.95, high=hi * 1.03))
    assert moved.params.pv_sigma == res.params.pv_sigma
    ctx = P.prepare_preview(vol, 0, 20, SegmentParams(), globals=g)
    np.testing.assert_array_equal(P.preview_from(ctx, lo * 0.95, hi * 1.03), moved.phases[20])
    # a given blur wins over the estimated one
    ctx = P.prepare_preview(vol, 0, 20, SegmentParams(pv_sigma=1.7), globals=g)
    assert ctx.params.pv_sigma == 1.7 and ctx.sigma_source == "given"


def test_preview_removes_islands_that_reach_beyond_the_slice():
    """A CBD rod along axis 0 through the slice is an island in 3D when shorter than min_island, not otherwise."""
    vol = np.full((30, 12, 12), 100, np.uint16)
    vol[:, 6:, :] = 800  # NMC half
    vol[10:17, 2, 2] = 400  # 7-voxel CBD rod through slice 12: an island (< 8)
    vol[8:20, 2, 8] = 400  # 12-voxel rod: kept
    params = SegmentParams(denoise="none", partial_volume=False, min_island=8)
    ctx = P.prepare_preview(vol, 0, 12, params)
    assert ctx.island_depth == 7 and ctx.sigma_source == "none"
    out = P.preview_from(ctx, 250, 600)
    assert out[2, 2] == PORE and out[2, 8] == CBD
    assert (out[6:] == NMC).all()
    np.testing.assert_array_equal(out, segment(vol, replace(params, low=250, high=600))[12])
    # without island removal both rods show
    assert P.preview_from(ctx, 250, 600, islands=False)[2, 2] == CBD


def test_preview_validation(electrode64):
    vol = electrode64
    ctx = P.prepare_preview(vol, 1, 3, SegmentParams(pv_sigma=1.0))
    with pytest.raises(ValueError, match=r"low threshold \(5 ?\) must be below high threshold \(5 ?\)"):
        P.preview_from(ctx, 5, 5)
    with pytest.raises(TypeError, match="must be a PreviewContext"):
        P.preview_from(vol, 1, 2)
    with pytest.raises(ValueError, match=r"outside 0..55 along axis 2"):
        P.prepare_preview(vol, 2, 56)
    with pytest.raises(ValueError, match=r"axis must be one of"):
        P.prepare_preview(vol, 3, 0)
    with pytest.raises(ValueError, match=r"island_depth must be >= 0"):
        P.prepare_preview(vol, 0, 0, island_depth=-1)
    g = P.preview_globals(vol, SegmentParams(denoise="none", pv_sigma=1.0))
    with pytest.raises(ValueError, match=r"taken after denoising \('none', 0.7\), not \('gaussian', 0.7\)"):
        P.prepare_preview(vol, 0, 0, SegmentParams(denoise="gaussian"), globals=g)


def test_preview_does_not_modify_the_volume_and_keeps_a_read_only_slab(electrode64):
    vol = electrode64.copy()
    ctx = P.prepare_preview(vol, 0, 10, SegmentParams(pv_sigma=1.0))
    np.testing.assert_array_equal(vol, electrode64)
    assert not ctx.slab.flags.writeable and not ctx.globals.sample.flags.writeable
    a = P.preview_from(ctx, *suggest_thresholds(vol))
    np.testing.assert_array_equal(P.preview_from(ctx, *suggest_thresholds(vol)), a)


# --------------------------------------------------------------------------- the kernels behind the preview


@pytest.mark.parametrize("sigma", [0.6, 1.3, 2.0])
def test_spill_kernel_is_scipys_gaussian_bit_for_bit(sigma):
    rng = np.random.default_rng(2)
    grown = (rng.random((30, 17, 23)) < 0.4).astype(np.uint8) * NMC
    want = ndi.gaussian_filter((grown == NMC).astype(np.float32), sigma, mode="nearest")
    rs = int(4 * sigma + 0.5)
    w = PV._gaussian_weights(sigma, rs)
    np.testing.assert_array_equal(PV._spill_kernel(grown, np.uint8(NMC), 0, 30, 0, 30, w), want)
    # rows 12:18 from rows 12 - rs : 18 + rs only
    got = PV._spill_kernel(grown, np.uint8(NMC), 12 - rs, 18 + rs, 12, 18, w)
    np.testing.assert_array_equal(got, want[12:18])


@pytest.mark.parametrize("seed", range(3))
def test_gaussian_of_the_blur_fit_is_scipys_bit_for_bit(seed):
    """The blur fit's Gaussian (numba, planes split between threads) equals ndi.gaussian_filter exactly."""
    rng = np.random.default_rng(seed)
    for _ in range(12):
        shape = tuple(int(v) for v in rng.integers(1, 20, 3))
        lut = np.asarray([0.12, 0.47, 0.91], np.float32)
        img = lut[rng.integers(0, 3, shape)] if seed % 2 else rng.random(shape).astype(np.float32)
        sigma = float(rng.uniform(*PV.SIGMA_BOUNDS))
        got = PV._gaussian_nearest(img, PV._gaussian_weights(sigma, PV._spill_radius(sigma)))
        np.testing.assert_array_equal(got, ndi.gaussian_filter(img, sigma, mode="nearest"))


@pytest.mark.parametrize("seed", range(3))
def test_blur_fit_gaussian_at_the_band_is_the_whole_filters_bit_for_bit(seed):
    """The blur fit's cost reads the Gaussian at the band voxels only; they equal the whole filter's, in order."""
    rng = np.random.default_rng(10 + seed)
    for _ in range(12):
        shape = tuple(int(v) for v in rng.integers(1, 24, 3))
        img = rng.random(shape).astype(np.float32)
        band = rng.random(shape) < rng.uniform(0.0, 0.6)
        sigma = float(rng.uniform(*PV.SIGMA_BOUNDS))
        w = PV._gaussian_weights(sigma, PV._spill_radius(sigma))
        rows, xs = PV._band_rows(band)
        got = PV._gaussian_nearest_at(img, w, rows, xs)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, PV._gaussian_nearest(img, w)[band])


@pytest.mark.parametrize("sigma", [0.75, 1.6])
def test_correct_rows_of_a_slab_equal_the_whole_volume(electrode64, sigma):
    """The correction a run's slab or a preview's slab makes is the whole volume's, in the rows it corrects."""
    d = P.denoise(electrode64, "none")
    lo, hi = suggest_thresholds(d)
    ph = threshold(d, lo, hi)
    i_nmc = float(np.median(d[ph == NMC]))
    whole = correct_partial_volume(d, ph, lo, sigma=sigma, i_nmc=i_nmc)
    reach = PV._reach(sigma)
    a, b = 20 - reach, 26 + reach
    part = PV._correct_rows(d[a:b], ph[a:b], lo, sigma, i_nmc, (20 - a, 26 - a))
    np.testing.assert_array_equal(part, whole[20:26])
    np.testing.assert_array_equal(PV._correct_rows(d, ph, lo, sigma, i_nmc), whole)


def test_rim_growth_does_not_depend_on_where_the_slab_starts(electrode64):
    d = P.denoise(electrode64, "gaussian", size=0.7)
    lo, hi = suggest_thresholds(d)
    ph = threshold(d, lo, hi)
    i_nmc = float(np.median(d[ph == NMC]))
    whole = PV._grow_rim(d, ph, i_nmc, lo)
    assert (whole != ph).any()  # it grows
    part = PV._grow_rim(d[14:40], ph[14:40], i_nmc, lo, rows=(6, 20))  # rows 20:34 of the volume
    np.testing.assert_array_equal(part[6:20], whole[20:34])
    np.testing.assert_array_equal(part[:6], ph[14:20])  # rows outside ``rows`` are left as they were
    # the row ranges grown on the cores equal the one-core kernel
    one = ph.copy()
    PV._grow_rim_kernel(d.astype(np.float32), ph, np.float64(i_nmc), np.float64(lo), np.uint8(NMC), one, 0, len(ph),
                        PV.RIM_WINDOW_HALF)
    np.testing.assert_array_equal(whole, one)


def _grow_rim_reference(volume, phases, i_nmc, low, h):
    """The rim growth's definition with scipy: a rim voxel (face step 1 from NMC) becomes NMC where its grey value
    is at least halfway between NMC and the mean of the ring voxels (face steps 2..3) in its (2 h + 1)^3 window
    (``low`` where the window holds none)."""
    dist = ndi.distance_transform_cdt(phases != NMC, metric="taxicab")
    ring = ((dist == 2) | (dist == 3)).astype(np.float64)
    v = volume.astype(np.float32).astype(np.float64)
    size = 2 * h + 1
    c = np.rint(ndi.uniform_filter(ring, size, mode="constant") * size**3)
    t = ndi.uniform_filter(ring * v, size, mode="constant") * size**3
    outside = np.where(c > 0, t / np.maximum(c, 1), low)
    out = phases.copy()
    out[(dist == 1) & (v >= 0.5 * (i_nmc + outside))] = NMC
    return out


@pytest.mark.parametrize("h", [1, 2, 3])
def test_rim_growth_follows_its_definition(electrode64, h):
    """The numba rim growth (running window sums) against the scipy definition, for each window half-width."""
    d = P.denoise(electrode64, "none")
    lo, hi = suggest_thresholds(d)
    ph = threshold(d, lo, hi)
    i_nmc = float(np.median(d[ph == NMC]))
    got = ph.copy()
    PV._grow_rim_kernel(d.astype(np.float32), ph, np.float64(i_nmc), np.float64(lo), np.uint8(NMC), got, 0, len(ph), h)
    want = _grow_rim_reference(d, ph, i_nmc, lo, h)
    assert (want != ph).any()
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed", range(3))
def test_capped_l1_distance_equals_scipy_taxicab(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 24, 3))
    ph = rng.integers(0, 3, shape).astype(np.uint8)
    ph[rng.random(shape) < 0.7] = PORE  # sparse NMC: distances up to the cap
    ph.flat[int(rng.integers(ph.size))] = NMC
    want = np.minimum(ndi.distance_transform_cdt(ph != NMC, metric="taxicab"), 4)
    np.testing.assert_array_equal(PV._l1_distance4(ph, np.uint8(NMC)), want)
    np.testing.assert_array_equal(PV._l1_distance4_on_cores(ph, np.uint8(NMC)), want)


def _islands_reference(phases, min_size):
    """The definition, with scipy's labelling: per phase (CBD, pore, NMC), components < min_size join the
    phase sharing most faces with them."""
    out = phases.copy()
    faces = ndi.generate_binary_structure(3, 1)
    for code in (CBD, PORE, NMC):
        lab, n = ndi.label(out == code, faces)
        new = out.copy()
        for c in range(1, n + 1):
            m = lab == c
            if m.sum() >= min_size:
                continue
            ring = ndi.binary_dilation(m, faces) & ~m
            counts = np.zeros(3, int)
            for axis in range(3):  # count faces, not voxels
                for shift in (1, -1):
                    nb = np.zeros_like(m)
                    src = [slice(None)] * 3
                    dst = [slice(None)] * 3
                    src[axis] = slice(None, -1) if shift == 1 else slice(1, None)
                    dst[axis] = slice(1, None) if shift == 1 else slice(None, -1)
                    nb[tuple(dst)] = m[tuple(src)]
                    sel = nb & ring
                    counts += np.bincount(out[sel], minlength=3)[:3]
            if counts.max() > 0:
                new[m] = int(np.argmax(counts))
        out = new
    return out


@pytest.mark.parametrize("min_size", [2, 8, 30])
def test_remove_small_islands_matches_the_definition(min_size):
    rng = np.random.default_rng(min_size)
    ph = ndi.median_filter(rng.integers(0, 3, (14, 15, 16)).astype(np.uint8), 2)
    want = _islands_reference(ph, min_size)
    assert (want != ph).sum() > 10  # there are islands to merge
    np.testing.assert_array_equal(remove_small_islands(ph, min_size), want)


@pytest.mark.parametrize("min_size", [2, 8])
def test_remove_small_islands_split_between_two_threads_matches_the_definition(min_size, monkeypatch):
    """A volume tall enough is done in two z-ranges side by side and the band between them; same result."""
    import core.phases.islands as isl

    calls = []
    real = isl.K.run_side_by_side
    monkeypatch.setattr(isl.K, "cores", lambda: 2)
    monkeypatch.setattr(isl.K, "run_side_by_side", lambda *c: calls.append(len(c)) or real(*c))
    rng = np.random.default_rng(10 + min_size)
    ph = ndi.median_filter(rng.integers(0, 3, (4 * min_size + 70, 11, 12)).astype(np.uint8), 2)
    want = _islands_reference(ph, min_size)
    assert (want != ph).sum() > 50
    np.testing.assert_array_equal(remove_small_islands(ph, min_size), want)
    assert calls == [2, 2, 2]  # one split per phase


# --------------------------------------------------------------------------- image model: phase grey values and blur


def test_phase_references_are_the_interior_grey_values():
    shape = (24, 24, 24)
    img = np.full(shape, 0.1, np.float32)
    img[:, :, 12:] = 0.4  # CBD slab
    img[ball(shape, (12, 12, 6), 5)] = 0.9
    vol = ndi.gaussian_filter(img, 1.0)
    ph = threshold(vol, 0.25, 0.65)
    pore, cbd, nmc = P.phase_references(vol, ph)
    assert pore == pytest.approx(0.1, abs=0.01) and cbd == pytest.approx(0.4, abs=0.01)
    assert nmc == pytest.approx(0.9, abs=0.02)
    no_cbd = np.where(ph == CBD, PORE, ph).astype(np.uint8)
    assert np.isnan(P.phase_references(vol, no_cbd)[1])
    # a one-slice volume erodes in-plane: the interior of
    # a 7-pixel CBD stripe is its centre, brighter than the whole stripe's median
    flat = np.full((1, 40, 40), 0.1, np.float32)
    flat[:, :, 16:23] = 0.4
    flat = ndi.gaussian_filter(flat, (0, 1.0, 1.0))
    ph2 = threshold(flat, 0.25, 0.65)
    cbd2 = P.phase_references(flat, ph2)[1]
    assert cbd2 == pytest.approx(0.4, abs=0.005)
    assert np.median(flat[ph2 == CBD]) < cbd2 - 0.01
    with pytest.raises(ValueError, match="differs from phases shape"):
        P.phase_references(vol, ph[:-1])


@pytest.mark.parametrize("blur_um, tol", [(0.3, 0.05), (0.5, 0.125)])
def test_estimate_pv_sigma_finds_the_generator_blur(blur_um, tol):
    """Close at the demo blur (0.75 voxel); up to ~10 % low at 1.25 voxel (documented)."""
    from core.synth import ElectrodeParams, ImagingParams, make_electrode

    e = make_electrode(ElectrodeParams(shape=(48, 64, 64), detachment_mean=0.3), ImagingParams(blur_um=blur_um),
                       rng=4)
    vol = e.greyscale.astype(np.float32)
    ph = threshold(vol, *suggest_thresholds(vol))
    true_sigma = blur_um / e.spacing[0]
    assert P.estimate_pv_sigma(vol, ph) == pytest.approx(true_sigma, abs=tol)
    if blur_um == 0.5:  # without the correct-and-refit rounds the thresholded rim pulls the fit low
        assert P.estimate_pv_sigma(vol, ph, iterations=0) < P.estimate_pv_sigma(vol, ph) - 0.03
    with pytest.raises(ValueError, match="iterations must be >= 0"):
        P.estimate_pv_sigma(vol, ph, iterations=-1)


def test_resolvable_gap_scales_with_blur_and_the_coarsest_axis():
    assert P.resolvable_gap_um(1.0, 0.4) == pytest.approx(P.RESOLVABLE_GAP_SIGMAS * 0.4)
    assert P.resolvable_gap_um(0.75, (0.8, 0.4, 0.4)) == pytest.approx(P.RESOLVABLE_GAP_SIGMAS * 0.75 * 0.8)
    with pytest.raises(ValueError, match="pv_sigma must be > 0"):
        P.resolvable_gap_um(0.0, 0.4)


def test_blur_assessment_beyond_the_validated_blur():
    """The decisions the warnings are worded from (the UI's sentences: tests/app/test_advice.py)."""
    assert P.assess_blur(0.75) == BlurAssessment(0.75, "fitted", "ok", 1, 1)
    assert P.assess_blur(P.PV_SIGMA_MAX).kind == "ok"
    assert P.assess_blur(1.3) == BlurAssessment(1.3, "fitted", "beyond_correction", 2, 1)
    assert P.assess_blur(2.0).factor == 3
    assert [P.suggested_downsample(v) for v in (None, 0.75, 0.9, 0.91, 1.5, 1.51, 2.0, 2.95)] == [1, 1, 1, 2, 2, 3, 3, 4]
    # a volume already downsampled by 2: the box's variance, 3/48 voxel², is discounted
    assert P.box_blur_removed(0.93, 2) == pytest.approx(np.sqrt(0.93 ** 2 - 3 / 48))
    assert P.box_blur_removed(0.93, 1) == pytest.approx(0.93)
    assert P.assess_blur(0.93, 2).kind == "ok" and P.suggested_downsample(0.93, 2) == 1
    assert P.assess_blur(1.4, 2) == BlurAssessment(1.4, "fitted", "beyond_correction", 2, 2)
    assert P.suggested_downsample(2.9, 4) == 2 and P.suggested_downsample(2.9, 8) == 1
    assert P.assess_blur(2.9, 8) == BlurAssessment(2.9, "fitted", "beyond_correction", 1, 8)  # no room left
    # at the fit's upper bound the blur was not measured: no downsampling advice
    top = P.SIGMA_BOUNDS[1]
    assert P.sigma_origin(top, given=False) == "fitted_at_bound" and P.sigma_origin(1.3, given=False) == "fitted"
    assert P.assess_blur(top) == BlurAssessment(top, "fitted_at_bound", "not_measured", 1, 1)
    assert P.assess_blur(top, origin="fitted_at_bound") == P.assess_blur(top)
    assert P.assess_blur(1.0, origin="fitted_at_bound").kind == "not_measured"
    assert P.suggested_downsample(top) == 1
    # a blur given by the user is taken as measured, at the bound too
    assert P.sigma_origin(top, given=True) == "given"
    assert P.assess_blur(top, origin="given") == BlurAssessment(top, "given", "beyond_correction", 4, 1)
    assert P.assess_blur(3.0, origin=P.sigma_origin(3.0, given=True)).factor == 4
    assert P.suggested_downsample(30.0, estimated=False) == 8


def test_assess_blur_validation():
    with pytest.raises(ValueError, match="origin must be one of"):
        P.assess_blur(1.0, origin="estimated")
    with pytest.raises(ValueError, match="pv_sigma must be > 0"):
        P.assess_blur(0.0)
    with pytest.raises(ValueError, match="downsampled must be between 1 and 8"):
        P.assess_blur(1.0, 9)


def test_segment_records_where_the_blur_came_from(blurred_spheres):
    vol = blurred_spheres[0]
    assert segment_detailed(vol).pv_sigma_origin == "fitted"
    assert segment_detailed(vol, SegmentParams(pv_sigma=1.0)).pv_sigma_origin == "given"
    assert segment_detailed(vol, SegmentParams(partial_volume=False)).pv_sigma_origin is None


def test_nmc_first_reading_where_nmc_dominates():
    """A dominant, broad NMC peak: three-class Otsu cuts it, the NMC-first reading keeps it whole."""
    rng = np.random.default_rng(0)
    v = np.empty((40, 40, 40), np.float32)
    v[:4], v[4:8] = 0.1, 0.35                           # pore and CBD slabs
    v[8:] = np.linspace(0.6, 1.0, 32)[:, None, None]    # NMC: 80 % of the voxels, grey values 0.6-1.0
    v += rng.normal(0, 0.02, v.shape).astype(np.float32)
    g = P.preview_globals(v)
    assert g.suggested[1] > 0.7                          # inside the NMC ramp: part of NMC read as CBD
    lo, hi = g.alternative
    assert lo == pytest.approx(0.225, abs=0.02)          # midway between pore 0.1 and CBD 0.35
    assert 0.35 < hi < 0.6                               # between CBD and the darkest NMC
    assert np.mean(v[8:] >= hi) > 0.99


def test_no_second_reading_where_the_readings_agree():
    from core.synth import demo_electrode

    g = P.preview_globals(demo_electrode("cycled-1C", rng=3, shape=(64, 64, 64)).greyscale)
    assert g.alternative is None


def test_mask_volume_is_refused_in_a_sentence():
    """A boolean mask (loaded as uint8 0/1 by the readers) is not a greyscale: one sentence, not skimage's text."""
    rng = np.random.default_rng(0)
    mask = rng.random((24, 24, 24)) > 0.5
    with pytest.raises(TypeError, match=r"^volume is boolean, a mask rather than a greyscale image: load a segmented "
                                        r"volume as phases \(--phase-map"):
        segment(mask)
    with pytest.raises(ValueError, match=r"^the volume holds only two grey values \(0 and 1\), so pore, CBD and NMC "
                                         r"cannot be told apart: load a mask or a segmented volume as phases "
                                         r"\(--phase-map VALUE=PHASE,\.\.\. on the command line\), or give both "
                                         r"thresholds$"):
        segment(mask.astype(np.uint8))


def test_outlier_does_not_squeeze_the_suggested_thresholds():
    """One hot voxel of 1e15 in an int64 volume: the thresholds of the volume without it, not skimage's error."""
    from core.synth import demo_electrode

    e = demo_electrode("pristine", rng=2, shape=(48, 48, 48))
    clean = e.greyscale.astype(np.int64)
    hot = clean.copy()
    hot[20, 20, 20] = 10**15
    want = P.suggest_thresholds(clean)
    got = P.suggest_thresholds(hot)
    assert got == pytest.approx(want, rel=0.01)
    a, b = segment(clean), segment(hot)
    assert np.count_nonzero(a != b) < 0.005 * a.size
    # ordinary volumes keep their Otsu input untouched (bit for bit)
    from core.phases.threshold import _histogram_values

    sample = clean.ravel().astype(np.float64)
    assert _histogram_values(sample) is not None and np.array_equal(_histogram_values(sample), sample)
    # two values besides outliers: still the plain sentence
    two = np.zeros((24, 24, 24), np.int64)
    two[12:] = 1
    two[0, 0, 0] = 10**15
    with pytest.raises(ValueError, match=r"only two grey values \(0 and 1\) besides a few outliers"):
        segment(two)


@pytest.mark.parametrize("seed", range(3))
def test_blur_fit_band_masks_equal_scipy_morphology(seed):
    """The band of the blur fit from capped L1 distances equals scipy's iterated face dilation / erosion."""
    face = ndi.generate_binary_structure(3, 1)
    rng = np.random.default_rng(seed)
    for _ in range(20):
        shape = tuple(int(v) for v in rng.integers(1, 14, 3))
        ph = rng.integers(0, 3, shape).astype(np.uint8)
        ph[rng.random(shape) < rng.uniform(0, 0.7)] = NMC
        for code in (CBD, NMC):
            np.testing.assert_array_equal(PV._within2(ph, code), ndi.binary_dilation(ph == code, face, iterations=2))
            np.testing.assert_array_equal(PV._eroded2(ph, code), ndi.binary_erosion(ph == code, face, iterations=2))
