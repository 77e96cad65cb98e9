"""A big sample's greyscale (a compressed Zarr store) is never read whole by the Segment page: its histogram, display
contrast and preview read the sampled blocks and a slab (``ui.cache.volume`` gives a ``core.chunked.LazyArray``),
and the preview equals the in-memory one on the same voxels."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core import phases as ph
from core.classify import UNPAINTED
from core.scribbles import Scribbles
from ui import state

from apphelpers import TIMEOUT, no_exception, page

SHAPE = (2048, 96, 96)  # 18.9 M voxels: above ui.cache.LAZY_VOXELS and core's one-block sample (16 M voxels)


@pytest.fixture(scope="module")
def grey():
    """A demo electrode of 64 slices stacked 32 times along z (uint16)."""
    from core.synth import demo_electrode

    one = demo_electrode("pristine", rng=3, shape=(64,) + SHAPE[1:]).greyscale
    vol = np.ascontiguousarray(np.tile(one, (SHAPE[0] // 64, 1, 1)))
    assert vol.shape == SHAPE and vol.size > 16_000_000
    return vol


@pytest.fixture
def big(empty_ws, grey, env):
    import zarr

    path = env / "data" / "big.zarr"
    z = zarr.create_array(str(path), shape=grey.shape, chunks=(64, 96, 96), dtype=grey.dtype)  # zstd-compressed
    z[:] = grey
    return empty_ws, empty_ws.add_sample("big", str(path), spacing=0.4)


def _open(sample_id: int) -> AppTest:
    at = AppTest.from_file(page("2_segment.py"), default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = sample_id
    return at


def test_the_segment_page_reads_only_blocks_and_a_slab_of_a_big_zarr_sample(big, grey, reads):
    from ui import cache

    ws, s = big
    at = _open(s.id).run()
    no_exception(at)
    assert at.get("vega_lite_chart"), "no histogram"
    assert any("Preview" in (i.proto.imgs[0].caption or "") or "phases" in (i.proto.imgs[0].caption or "")
               for i in at.image), [i.proto.imgs[0].caption for i in at.image]
    assert reads, "the sample was not read through zarr"
    # never the whole volume, nor anything close: the sampled blocks (1/16 of the slices), the central block and
    # a slab around the previewed slice
    assert max(reads) <= grey.size // 8, max(reads)
    assert sum(reads) <= grey.size // 2, sum(reads) / grey.size
    # the preview equals the one of the same voxels held in memory
    from core.chunked import LazyArray

    ref = cache.VolumeRef.of(ws, s)
    assert isinstance(cache.volume(ref), LazyArray)
    key = ph.SegmentParams()
    lazy_g, mem_g = cache.preview_globals(ref, key), ph.preview_globals(grey, key)
    assert lazy_g.suggested == mem_g.suggested and lazy_g.pv_sigma == mem_g.pv_sigma
    assert np.array_equal(lazy_g.sample, mem_g.sample)
    p = ph.SegmentParams(low=mem_g.suggested[0], high=mem_g.suggested[1])
    mem = ph.preview_from(ph.prepare_preview(grey, 0, 1000, p, globals=mem_g), p.low, p.high)
    assert np.array_equal(cache.preview_phases(ref, 0, 1000, p), mem)


def test_the_paint_method_reads_only_the_painted_and_shown_slices(big, grey, reads):
    ws, s = big
    lab = np.full(SHAPE[1:], UNPAINTED, np.uint8)
    g = grey[100].astype(float)
    lo, hi = np.percentile(g, [30, 80])
    lab[::3, ::3] = np.where(g < lo, 0, np.where(g < hi, 1, 2))[::3, ::3]  # three phases painted on z = 100
    ws.save_scribbles(s.id, Scribbles.empty(SHAPE).with_slice(0, 100, lab))
    at = _open(s.id).run()
    at.radio(key=state.SEG_METHOD).set_value("classifier").run()
    at.slider(key=state.k(state.SEG_INDEX, s.id, 0)).set_value(100).run()
    no_exception(at)
    assert any("the classifier's phases" in (i.proto.imgs[0].caption or "") for i in at.image)
    assert max(reads) <= grey.size // 8 and sum(reads) <= grey.size // 2, (max(reads), sum(reads))


def test_a_big_segmented_sample_is_read_a_slice_at_a_time(empty_ws, env, grey, reads):
    import zarr

    codes = np.digitize(grey, np.percentile(grey[::7, ::7, ::7], [40, 70])).astype(np.uint8)  # 0, 1, 2
    seg = np.array([0, 128, 255], np.uint8)[codes]
    path = env / "data" / "seg.zarr"
    zarr.create_array(str(path), shape=seg.shape, chunks=(64, 96, 96), dtype=seg.dtype)[:] = seg
    from core.inputs import FileInput

    s = empty_ws.add_sample("seg", FileInput(path, phase_map="0=pore,128=cbd,255=nmc"), spacing=0.4)
    reads.clear()
    at = _open(s.id).run()
    no_exception(at)
    assert any(m.label == "NMC (this slice)" for m in at.metric)
    assert reads and max(reads) <= SHAPE[1] * SHAPE[2] and sum(reads) <= grey.size // 8  # slices only
    from ui import cache

    index = at.slider(key=state.k(state.SEG_INDEX, s.id, 0)).value
    assert np.array_equal(cache.grey_slice(cache.VolumeRef.of(empty_ws, s), 0, index), codes[index])


def test_the_phase_map_proposal_of_a_big_volume_counts_slab_by_slab(grey):
    from core.chunked import LazyArray
    from core.io.phase_map import propose_phase_map
    from ui.phase_map_view import propose_by_slabs

    small = grey[:300:3, ::2, ::2]
    seg = np.array([7, 70, 200], np.uint16)[np.digitize(small, [15000, 30000])]
    want = propose_phase_map(seg)
    got = propose_by_slabs(LazyArray(seg), slab_voxels=7 * 48 * 48)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]) and got[2] == want[2]
    assert propose_by_slabs(LazyArray(small), slab_voxels=7 * 48 * 48) is None  # greyscale


def test_the_samples_page_shows_slices_of_a_big_sample_from_its_blocks(big, grey, reads):
    ws, s = big
    at = AppTest.from_file(page("1_samples.py"), default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    assert any("2048×96×96 voxels" in c.value for c in at.caption)
    assert len(at.image) >= 3  # the three orthogonal slices
    assert reads and max(reads) <= grey.size // 8 and sum(reads) <= grey.size // 4, (max(reads), sum(reads))


def test_a_downsampled_big_sample_is_read_in_bounded_slabs(big, grey, reads):
    from core.inputs import FileInput
    from core.io.downsampling import downsample
    from ui import cache

    ws, s = big
    d = ws.add_sample("half", FileInput(s.input.path, downsample=2), spacing=0.4)
    reads.clear()
    at = _open(d.id).run()
    no_exception(at)
    assert at.get("vega_lite_chart") and at.image
    # the downsampled volume (2.4 M voxels) is sampled whole, as a run samples it, but the file is never held
    # whole: read in slabs of whole planes of at most READ_VOXELS voxels
    assert reads and max(reads) <= grey.size // 4
    from core.chunked.lazy import _Downsampled

    assert max(reads) <= _Downsampled.READ_VOXELS
    small = downsample(grey, 2)[0]
    ref = cache.VolumeRef.of(ws, d)
    g = ph.preview_globals(small, ph.SegmentParams())
    assert cache.preview_globals(ref, ph.SegmentParams()).suggested == g.suggested
    p = ph.SegmentParams(low=g.suggested[0], high=g.suggested[1])
    mem = ph.preview_from(ph.prepare_preview(small, 0, 500, p, globals=g), p.low, p.high)
    assert np.array_equal(cache.preview_phases(ref, 0, 500, p), mem)


def _corrupt_store(env, grey, name: str, chunks: list[str]):
    """A compressed Zarr copy of ``grey`` (chunks of 64 slices) with the named chunk files overwritten by garbage."""
    import zarr

    path = env / "data" / name
    z = zarr.create_array(str(path), shape=grey.shape, chunks=(64, 96, 96), dtype=grey.dtype)
    z[:] = grey
    for c in chunks:
        (path / "c" / c / "0" / "0").write_bytes(b"not zstd" * 8)
    return path


def test_a_corrupt_chunk_of_a_big_sample_is_one_sentence_not_an_exception(empty_ws, env, grey):
    """Opening a big sample reads its header only; a corrupt compressed chunk shows when voxels in it are read: the
    sampled blocks at the page's start (the sentence of a file that cannot be read), or a slice moved into it."""
    at_start = empty_ws.add_sample("bad", str(_corrupt_store(env, grey, "bad.zarr", ["0"])), spacing=0.4)
    for p in ("1_samples.py", "2_segment.py"):
        at = AppTest.from_file(page(p), default_timeout=TIMEOUT)
        at.session_state[state.SAMPLE_ID] = at_start.id
        at.run()
        no_exception(at)
        assert any("Cannot read the volume of 'bad'" in e.value and "bad.zarr" in e.value and "z 0-" in e.value
                   for e in at.error), [e.value for e in at.error]
    inside = empty_ws.add_sample("bad2", str(_corrupt_store(env, grey, "bad2.zarr", ["6"])), spacing=0.4)
    at = _open(inside.id).run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]  # the sampled blocks and the middle slice are readable
    at.session_state[state.k(state.k(state.SEG_INDEX, inside.id), 0)] = 400  # in chunk 6: slices 384-447
    at.run()
    no_exception(at)
    assert [e.value for e in at.error] == [
        "Could not read bad2.zarr at slices z 400-400: Zstd decompression error: invalid input data."]


def test_the_histogram_caption_says_a_big_sample_is_sampled_by_blocks(big):
    ws, s = big
    at = _open(s.id).run()
    no_exception(at)
    assert any("blocks of z-slices a full run samples" in c.value for c in at.caption), [c.value for c in at.caption]
