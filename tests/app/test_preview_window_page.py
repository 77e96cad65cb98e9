"""The Segment page previews a window of a section over core's pixel limit (monkeypatched small so the volume stays
tiny): a caption says so and how big the window is, two sliders move it, and its phases are those of the whole
slice's preview on the window's pixels."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core import phases as ph
from ui import state

from apphelpers import TIMEOUT, no_exception, page

SHAPE = (16, 120, 128)


@pytest.fixture
def wide(empty_ws, env, monkeypatch):
    """A Zarr sample read lazily (the page's rule monkeypatched) whose z-sections exceed a 2,100-pixel limit."""
    import zarr

    import core.phases.preview as P
    from core.synth import demo_electrode
    from ui import cache

    monkeypatch.setattr(P, "MAX_PREVIEW_PIXELS", 2100)
    monkeypatch.setattr(P, "PREVIEW_WINDOW", 24)
    monkeypatch.setattr(cache, "LAZY_VOXELS", 1000)
    grey = demo_electrode("pristine", rng=4, shape=SHAPE).greyscale
    path = env / "data" / "wide.zarr"
    zarr.create_array(str(path), shape=grey.shape, chunks=(16, 64, 64), dtype=grey.dtype)[:] = grey
    return empty_ws, empty_ws.add_sample("wide", str(path), spacing=0.5), grey


def _caption(at, text: str) -> str:
    return next(c.value for c in at.caption if text in c.value)


def test_a_large_section_is_previewed_in_a_window_the_sliders_move(wide, reads):
    from core.chunked import LazyArray
    from ui import cache

    ws, s, grey = wide
    at = AppTest.from_file(page("2_segment.py"), default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    note = _caption(at, "shows a window")
    assert ("This slice is 120 × 128 pixels" in note and "window of 24 × 24 pixels (12.0 × 12.0 µm)" in note
            and "y 48–71 (24.0–36.0 µm) and x 52–75 (26.0–38.0 µm)" in note), note
    axis = at.radio(key=state.k(state.SEG_AXIS, s.id)).value
    index = at.slider(key=state.k(state.SEG_INDEX, s.id, axis)).value
    assert axis == 0
    reads.clear()
    at.slider(key=state.k(state.SEG_WINDOW, s.id, 0, 1)).set_value(127).run()  # to the +x face
    no_exception(at)
    # the move reads the window's grey pixels and the box of its preview (the window, its in-plane halo, clipped
    # at the +x face), nothing of the section beyond: not the slice, nor a slab of the whole section
    moved = sorted(reads)
    note = _caption(at, "shows a window")
    assert "y 48–71" in note and "x 104–127 (52.0–64.0 µm)" in note, note
    assert any("grey values with the phases over them" in (i.proto.imgs[0].caption or "") for i in at.image)
    assert {m.label for m in at.metric} >= {"pore (this window)", "CBD (this window)", "NMC (this window)"}
    # the page's window preview of the lazily read sample: the whole slice's preview (in memory) on its pixels
    ref = cache.VolumeRef.of(ws, s)
    assert isinstance(cache.volume(ref), LazyArray)
    g = ph.preview_globals(grey, ph.SegmentParams())
    p = ph.SegmentParams(low=g.suggested[0], high=g.suggested[1])
    whole = ph.preview_from(ph.prepare_preview(grey, 0, index, p, globals=g), p.low, p.high)
    w = ((48, 72), (104, 128))
    got = cache.preview_phases(ref, 0, index, p, w)
    assert got.shape == (24, 24) and np.array_equal(got, whole[48:72, 104:128])
    slab = cache.preview_context(ref, 0, index, p, w).slab  # the page's context (no denoising: the box read)
    assert slab.shape[2] < slab.shape[1] < grey.shape[1] and slab.shape[0] == grey.shape[0]  # clipped at +x
    assert moved == [24 * 24, slab.size] and slab.size < grey.size // 4, (moved, grey.size)
    # a section within the limit (y = const: 16 x 128 = 2048 pixels) has no window
    at.radio(key=state.k(state.SEG_AXIS, s.id)).set_value(1).run()
    no_exception(at)
    assert not [c for c in at.caption if "shows a window" in c.value]
