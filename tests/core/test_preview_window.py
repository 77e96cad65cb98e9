"""The windowed preview of a large cross-section: on the window's pixels the same phases as the whole slice's
preview (and the full run), from a slab of the window and its in-plane halo only."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from core import phases as ph
from core.chunked import LazyArray
from core.codes import CBD, NMC, PORE
from core.synth import ElectrodeParams, make_electrode

from .test_lazy_preview import Counting


@pytest.fixture(scope="module")
def electrode():
    vol = make_electrode(ElectrodeParams(shape=(40, 48, 52)), rng=7).greyscale
    res = ph.segment_detailed(vol, ph.SegmentParams())  # Otsu thresholds, blur estimated, islands < 8 merged
    return vol, res


# windows near an edge of the volume, in the middle, and touching a face (the halo is clipped there)
WINDOWS = {0: ((9, 30), (30, 47)), 1: ((12, 27), (0, 21)), 2: ((20, 36), (17, 40))}


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_a_window_shows_the_whole_slice_preview_and_the_run_on_its_pixels(electrode, axis):
    vol, res = electrode
    g = ph.preview_globals(vol, ph.SegmentParams())
    assert g.sigma_source == "estimated"
    (r0, r1), (c0, c1) = w = WINDOWS[axis]
    whole = ph.prepare_preview(vol, axis, 20, ph.SegmentParams(), globals=g)
    win = ph.prepare_preview(vol, axis, 20, ph.SegmentParams(), globals=g, window=w)
    assert win.window == w and win.slab.size < whole.slab.size
    lo, hi = res.params.low, res.params.high
    for low, high in [(lo, hi), (lo * 0.9, hi * 1.05)]:
        full = ph.preview_from(whole, low, high)
        got = ph.preview_from(win, low, high)
        assert got.shape == (r1 - r0, c1 - c0) and got.flags.c_contiguous
        np.testing.assert_array_equal(got, full[r0:r1, c0:c1])
    want = np.take(res.phases, 20, axis=axis)[r0:r1, c0:c1]
    got = ph.preview_from(win, lo, hi)
    if axis == 0:
        np.testing.assert_array_equal(got, want)
    else:  # along axes 1 and 2 the filters sum in another order (as for the whole slice): a rare voxel may flip
        assert (got != want).mean() < 0.005


def test_islands_and_particles_just_outside_the_window_count():
    """A CBD rod that leaves the window is no island; the spill of NMC outside the window reaches into it."""
    vol = np.full((20, 40, 40), 100, np.uint16)
    vol[:, 30:, :] = 800  # NMC beyond row 30
    vol[10, 5, 17:29] = 400  # a 12-voxel CBD rod along x, 3 voxels in the window (x < 20): kept (>= 8)
    vol[10, 12, 18:23] = 400  # a 5-voxel one across the window's edge: an island
    vol[:, 27:30, :] = 420  # a blurred rim beside it, inside the window: CBD by the thresholds, pore by the spill
    params = ph.SegmentParams(denoise="none", pv_sigma=1.5, min_island=8, low=250, high=600)
    w = ((0, 30), (0, 20))
    ctx = ph.prepare_preview(vol, 0, 10, params, window=w)
    got = ph.preview_from(ctx, 250, 600)
    full = ph.segment(vol, params)[10]
    np.testing.assert_array_equal(got, full[:30, :20])
    np.testing.assert_array_equal(got, ph.preview_slice(vol, 0, 10, params)[:30, :20])
    assert (got[5, 17:20] == CBD).all() and (got[12, 18:20] == PORE).all()
    assert (got[29] == PORE).all() and (ph.threshold(vol[10:11, 29:30], 250, 600) == CBD).all()


def test_a_lazy_volume_reads_only_the_window_and_its_halo(electrode):
    vol, _ = electrode
    big = np.ascontiguousarray(np.concatenate([vol] * 4, axis=2))  # 40 x 48 x 208
    params = ph.SegmentParams(denoise="gaussian", denoise_size=1.0, pv_sigma=1.0)
    g = ph.preview_globals(big, params)
    halo = params.min_island - 1 + 6 + int(4 * 1.0 + 0.5)  # islands' depth + the correction's reach
    h = int(np.ceil(4 * params.denoise_size)) + 2  # denoising
    cases = ((0, 20, ((10, 30), (90, 130))), (1, 24, ((5, 30), (100, 150))), (2, 104, ((0, 12), (8, 40))))
    for axis, index, w in cases:
        r = Counting(big)
        ctx = ph.prepare_preview(LazyArray(r), axis, index, params, globals=g, window=w)
        mem = ph.prepare_preview(big, axis, index, params, globals=g, window=w)
        assert np.array_equal(ctx.slab, mem.slab) and ctx.inner == mem.inner
        lo, hi = g.suggested
        np.testing.assert_array_equal(ph.preview_from(ctx, lo, hi), ph.preview_from(mem, lo, hi))
        assert len(r.boxes) == 1
        box = r.boxes[0]
        others = [i for i in range(3) if i != axis]
        n = big.shape[axis]
        assert (box[axis].start, box[axis].stop) == (max(0, index - halo - h), min(n, index + halo + h + 1))
        for i, (a, b) in zip(others, w):
            assert (box[i].start, box[i].stop) == (max(0, a - halo - h), min(big.shape[i], b + halo + h))
        whole = ph.prepare_preview(big, axis, index, params, globals=g)
        assert ctx.slab.size < whole.slab.size


def test_preview_window_is_none_up_to_the_limit_then_centred_and_kept_inside(monkeypatch):
    import core.phases.preview as P

    assert ph.preview_window((8, 1024, 1024), 0) is None  # 1024² pixels: the whole slice, as before
    assert ph.preview_window((8, 2048, 2048), 0) == ((512, 1536), (512, 1536))
    assert ph.preview_window((8, 2048, 2048), 1) is None  # 8 x 2048
    monkeypatch.setattr(P, "MAX_PREVIEW_PIXELS", 100)
    monkeypatch.setattr(P, "PREVIEW_WINDOW", 6)
    assert ph.preview_window((5, 20, 4), 0) is None  # 80 pixels
    assert ph.preview_window((5, 20, 8), 0) == ((7, 13), (1, 7))
    assert ph.preview_window((5, 20, 8), 0, (0, 7)) == ((0, 6), (2, 8))  # moved inside the section
    assert ph.preview_window((5, 20, 8), 0, (19, 3), size=3) == ((17, 20), (2, 5))
    with pytest.raises(ValueError, match="size must be >= 1"):
        ph.preview_window((5, 20, 8), 0, size=0)
    with pytest.raises(ValueError, match="axis"):
        ph.preview_window((5, 20, 8), 3)
    vol = np.random.default_rng(0).random((6, 8, 8)).astype(np.float32)
    for bad in (((0, 9), (0, 4)), ((3, 3), (0, 4)), (1, 2), ((0, 4), (-1, 2))):
        with pytest.raises(ValueError, match="window"):
            ph.prepare_preview(vol, 0, 3, ph.SegmentParams(pv_sigma=1.0), window=bad)


def test_without_a_window_the_context_is_the_whole_slice(electrode):
    vol, res = electrode
    ctx = ph.prepare_preview(vol, 0, 20, replace(res.params, low=None, high=None))
    assert ctx.window is None and ctx.slab.shape[1:] == vol.shape[1:]
    np.testing.assert_array_equal(ph.preview_from(ctx, res.params.low, res.params.high), res.phases[20])
    assert NMC in res.phases[20]
