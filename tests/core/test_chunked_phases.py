"""core.chunked.segment_chunked: phases chunk by chunk with halos, identical to core.phases.segment_detailed."""

from __future__ import annotations

import dask
import numpy as np
import pytest

from core.chunked import island_halo, phase_halo, segment_chunked
from core.chunked import phases as chunked_phases
from core.phases import SegmentParams, segment_detailed
from core.synth import demo_electrode


@pytest.fixture(scope="module")
def grey() -> np.ndarray:
    """A 64 x 80 x 72 synthetic electrode (uint16): chunks of 32 cut through many particles."""
    return demo_electrode("cycled-5C", rng=1, shape=(64, 80, 72)).greyscale


@pytest.fixture(autouse=True)
def _sync():
    with dask.config.set(scheduler="sync"):
        yield


def _check_equal(volume, params, chunks=32):
    whole = segment_detailed(volume, params)
    seg = segment_chunked(volume, params, chunks=chunks)
    assert seg.phases.dtype == np.uint8 and seg.phases.shape == volume.shape
    got = seg.phases.compute()
    assert np.array_equal(got, whole.phases), f"{int((got != whole.phases).sum())} voxels differ"
    assert seg.params == whole.params
    assert seg.pv_sigma_origin == whole.pv_sigma_origin
    return seg


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
@pytest.mark.parametrize("params", [
    SegmentParams(),
    SegmentParams(denoise="gaussian", denoise_size=0.7),
    SegmentParams(partial_volume=False, min_island=20),
], ids=["default", "gaussian", "no-pv"])
def test_phases_identical_to_whole_volume(grey, params, dtype):
    seg = _check_equal(grey.astype(dtype), params)
    assert seg.halo == phase_halo(seg.params, seg.params.pv_sigma)
    assert seg.island_halo == island_halo(params.min_island)


def test_phases_identical_with_median_and_given_values(grey):
    v = grey[:, :48, :40]
    _check_equal(v, SegmentParams(denoise="median", denoise_size=3, min_island=4))
    whole = segment_detailed(v)
    given = SegmentParams(low=whole.params.low, high=whole.params.high, pv_sigma=0.8)
    _check_equal(v, given, chunks=(24, 16, 40))


def test_phases_identical_with_uneven_chunks_and_dask_input(grey):
    """Chunks of different edges per axis, a ragged last chunk, a dask array given with its own chunks."""
    import dask.array as da

    _check_equal(grey, SegmentParams(), chunks=(24, 32, 40))
    d = da.from_array(grey, chunks=(40, 27, 72))
    whole = segment_detailed(grey)
    seg = segment_chunked(d)
    assert seg.phases.chunks == d.chunks
    assert np.array_equal(seg.phases.compute(), whole.phases)


def test_phases_identical_on_a_volume_thinner_than_the_halo(grey):
    """An axis shorter than the halo (a thin slab, several chunks across it) is no error: its windows hold the
    whole axis, as the whole-volume run sees it."""
    seg = _check_equal(grey[:5, :40, :36], SegmentParams(), chunks=(2, 16, 36))
    assert seg.halo > 5


def test_phases_identical_with_non_finite_voxels(grey):
    v = grey.astype(np.float32)
    rng = np.random.default_rng(0)
    idx = tuple(rng.integers(0, n, 60) for n in v.shape)
    v[idx] = np.nan
    v[idx[0][:5], idx[1][:5], idx[2][:5]] = np.inf
    before = v.copy()
    _check_equal(v, SegmentParams())
    np.testing.assert_array_equal(v, before)  # input untouched


def test_halo_rule_values():
    assert phase_halo(SegmentParams(), 1.0) == 6 + 4
    assert phase_halo(SegmentParams(denoise="gaussian", denoise_size=0.7), 1.0) == 5 + 10
    assert phase_halo(SegmentParams(partial_volume=False), None) == 0
    assert island_halo(8) == 24 and island_halo(1) == 0 and island_halo(0) == 0


@pytest.mark.parametrize("which", ["phase", "island"])
def test_a_narrower_halo_breaks_equality(grey, monkeypatch, which):
    """The halos are needed: with a third of the phase halo or a 1-voxel island halo, chunk faces show."""
    whole = segment_detailed(grey).phases
    if which == "phase":
        real = chunked_phases.phase_halo
        monkeypatch.setattr(chunked_phases, "phase_halo", lambda p, s: real(p, s) // 3)
    else:
        monkeypatch.setattr(chunked_phases, "island_halo", lambda m: 1)
    got = segment_chunked(grey, chunks=32).phases.compute()
    assert not np.array_equal(got, whole)


@pytest.mark.parametrize("step", [1, 7, 100, 5000])
@pytest.mark.parametrize("blocks", [[(0, 30)], [(0, 4), (9, 13), (26, 30)]])
def test_strided_sample_equals_the_whole_volume_stride(step, blocks):
    """The global values' sample, gathered chunk by chunk, is the whole-volume strided sample in its order."""
    import dask.array as da

    v = np.random.default_rng(1).random((30, 22, 17), dtype=np.float32)
    want = np.concatenate([v[a:b].reshape(-1)[::step] for a, b in blocks])
    got = chunked_phases._strided_sample(da.from_array(v, chunks=(8, 6, 5)), blocks, step)
    np.testing.assert_array_equal(got, want)


def test_refusals(grey):
    with pytest.raises(ValueError, match="nlm"):
        segment_chunked(grey, SegmentParams(denoise="nlm"))
    with pytest.raises(TypeError, match="boolean"):
        segment_chunked(grey > 100)
    with pytest.raises(ValueError, match="constant"):
        segment_chunked(np.full((8, 8, 8), 7, np.uint16))
    with pytest.raises(ValueError, match="no finite value"):
        segment_chunked(np.full((8, 8, 8), np.nan, np.float32))
    many = np.arange(512, dtype=np.float32).reshape(8, 8, 8)
    many[0, 0, :3] = np.nan
    with pytest.raises(ValueError, match="non-finite voxels"):
        segment_chunked(many)
    with pytest.raises(TypeError, match="SegmentParams"):
        segment_chunked(grey, {"low": 1})
    with pytest.raises(TypeError, match="dask array"):
        segment_chunked([[[1, 2]]])


def test_phases_from_map_equals_apply_phase_map():
    from core.chunked import phases_from_map
    from core.io import apply_phase_map

    seg = np.random.default_rng(2).choice(np.array([0, 128, 255], np.uint8), size=(20, 30, 40))
    got = phases_from_map(seg, "0=pore,128=nmc,255=cbd", chunks=16)
    assert got.dtype == np.uint8 and got.chunksize == (16, 16, 16)
    np.testing.assert_array_equal(got.compute(), apply_phase_map(seg, "0=pore,128=nmc,255=cbd"))
    with pytest.raises(ValueError):
        phases_from_map(seg, "0=pore,128=metal")  # a bad map: refused at once
    lazy = phases_from_map(seg, "0=pore,128=nmc", name="seg.tif")  # 255 unmapped: found when read
    with pytest.raises(ValueError, match="seg.tif"):
        lazy.compute()
