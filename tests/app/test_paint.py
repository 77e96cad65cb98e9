"""Segment page, "Train from brush strokes": canvas pixels -> scribbles, the page's states, the full run.

AppTest cannot drive the canvas (a component): the strokes it would return are tested through
:func:`ui.paint.strokes_from_rgba`, and the page is given scribbles through the workspace (as a reload finds
them).  Painting in a real browser: ``test_browser_paint.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.classify import PREVIEW_TREES, UNPAINTED, load_classifier, train
from core.scribbles import Scribbles, slice_of
from ui import paint, render, segment_view, state

from apphelpers import TIMEOUT, no_exception, page

PAGE = page("2_segment.py")


# --------------------------------------------------------------------------- canvas pixels -> scribbles


def _rgba(shape, strokes) -> np.ndarray:
    """A transparent canvas with rectangles ``(rows, cols, hex colour, alpha)`` drawn on it."""
    a = np.zeros((*shape, 4), np.uint8)
    for rows, cols, hx, alpha in strokes:
        a[rows, cols, :3] = [int(hx[i:i + 2], 16) for i in (1, 3, 5)]
        a[rows, cols, 3] = alpha
    return a


def test_canvas_pixels_become_phase_codes_at_each_voxel_centre():
    # a 4 x 6 slice shown 3 times larger: the canvas is 12 x 18
    rgba = _rgba((12, 18), [
        (slice(0, 3), slice(0, 18), render.PHASE_HEX[0], 255),   # voxel row 0: pore
        (slice(3, 6), slice(0, 9), render.PHASE_HEX[2], 255),    # voxel row 1, cols 0-2: NMC
        (slice(3, 6), slice(9, 18), render.PHASE_HEX[1], 60),    # voxel row 1, cols 3-5: CBD, too transparent
        (slice(6, 9), slice(0, 6), "#ffffff", 255),              # voxel row 2, cols 0-1: eraser
        (slice(6, 9), slice(6, 12), "#00ff00", 255),             # voxel row 2, cols 2-3: no brush's colour
        (slice(9, 12), slice(0, 3), "#cdbc46", 230),             # voxel row 3, col 0: CBD, antialiased shade
    ])
    got = paint.strokes_from_rgba(rgba, (4, 6))
    n = paint.NO_STROKE
    want = np.array([[0, 0, 0, 0, 0, 0],
                     [2, 2, 2, n, n, n],
                     [UNPAINTED, UNPAINTED, n, n, n, n],
                     [1, n, n, n, n, n]])
    np.testing.assert_array_equal(got, want)
    # laid over the stored scribbles: strokes win, the rest is kept, erased voxels are unpainted
    stored = np.full((4, 6), UNPAINTED, np.uint8)
    stored[2, :] = 1
    stored[3, 5] = 2
    out = paint.apply_strokes(stored, got)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[0], 0)
    np.testing.assert_array_equal(out[2], [UNPAINTED, UNPAINTED, 1, 1, 1, 1])
    assert out[3, 5] == 2 and out[3, 0] == 1 and stored[0, 0] == UNPAINTED  # the input is not modified
    # applying the same canvas again changes nothing (the canvas keeps its strokes between reruns)
    np.testing.assert_array_equal(paint.apply_strokes(out, got), out)
    with pytest.raises(ValueError, match="RGBA"):
        paint.strokes_from_rgba(rgba[..., :3], (4, 6))


def test_scale_and_colouring_helpers():
    assert paint.scale_factor((48, 48)) == 10 and paint.scale_factor((512, 512)) == 1
    assert paint.scale_factor((1000, 300)) == 1 and paint.scale_factor((64, 128)) == 4
    rgb = np.zeros((2, 3, 3), np.uint8)
    lab = np.array([[0, 255, 2], [1, 255, 255]], np.uint8)
    out = paint.scribble_rgb(rgb, lab)
    assert tuple(out[0, 0]) == render.PHASE_COLOURS[0] and tuple(out[0, 2]) == render.PHASE_COLOURS[2]
    assert tuple(out[0, 1]) == (0, 0, 0) and rgb.sum() == 0
    low = paint.low_confidence_rgb(rgb, np.array([[0.9, 0.5, 0.7], [0.2, 1.0, 0.6]]), 0.6)
    assert [tuple(low[i, j]) == paint.LOW_CONFIDENCE_RGB for i, j in ((0, 0), (0, 1), (1, 0), (1, 2))] == \
        [False, True, True, False]
    assert paint.pair_spacing((0.5, 0.2, 0.3), 2) == (0.3, 0.5, 0.2)


def test_a_slice_wider_than_the_canvas_is_shown_smaller_and_painted_at_full_resolution():
    fits = [paint.fit_canvas(np.zeros(shape, np.uint8)).shape for shape in
            ((500, 512), (754, 1012), (2048, 2048), (500, 572), (513, 40))]
    assert fits == [(500, 512), (381, 512), (512, 512), (448, 512), (512, 40)]
    img = np.arange(2048, dtype=np.int32)[None].repeat(4, 0)
    np.testing.assert_array_equal(paint.fit_canvas(img)[0], np.arange(2, 2048, 4))  # each pixel's nearest voxel
    # a 754 x 1012 slice on a half-scale canvas (377 x 506): a stroke over canvas pixels (100-101, 300-309)
    # paints voxels (200-203, 600-619) of the slice, nothing else
    canvas = np.zeros((377, 506, 4), np.uint8)
    canvas[100:102, 300:310] = (*paint._hex_rgb(paint.BRUSHES["CBD"][1]).astype(np.uint8), 255)
    codes = paint.strokes_from_rgba(canvas, (754, 1012))
    ys, xs = np.nonzero(codes != paint.NO_STROKE)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (200, 203, 600, 619) and set(codes[ys, xs]) == {1}


def test_full_resolution_window_lies_inside_the_slice_and_takes_strokes_at_its_place():
    assert paint.full_resolution_window((754, 1012), (377, 506)) == ((121, 633), (250, 762))
    assert paint.full_resolution_window((754, 1012), (0, 1011)) == ((0, 512), (500, 1012))  # moved inside
    assert paint.full_resolution_window((300, 2048), (299, 10)) == ((0, 300), (0, 512))  # shorter side whole
    stored = np.full((754, 1012), UNPAINTED, np.uint8)
    stored[0, 0] = 2
    strokes = np.full((512, 512), paint.NO_STROKE, np.int16)
    strokes[3:5, 7:9] = 1
    out = paint.apply_strokes(stored, strokes, ((121, 633), (250, 762)))
    assert np.count_nonzero(out != UNPAINTED) == 5 and out[0, 0] == 2
    np.testing.assert_array_equal(out[124:126, 257:259], 1)
    assert stored[124, 257] == UNPAINTED  # a new array
    with pytest.raises(ValueError, match="shape"):
        paint.apply_strokes(stored, strokes, ((0, 500), (0, 512)))


def test_a_big_slice_is_painted_through_a_full_resolution_window(empty_ws, tmp_path, monkeypatch):
    from core.inputs import FileInput
    from core.io import save_tiff

    rng = np.random.default_rng(0)
    save_tiff(tmp_path / "big.tif", rng.integers(0, 60000, (1, 600, 1100), dtype=np.uint16), (0.05,) * 3)
    s = empty_ws.add_sample("big slice", FileInput(tmp_path / "big.tif"), spacing=0.05, axis=1)
    drawn = []

    def fake_canvas(key, background, brush, width_px):  # CBD over canvas pixels (10-11, 20-29), NMC (40-41, 20-29)
        drawn.append((key, background.shape[:2], width_px))
        rgba = np.zeros((*background.shape[:2], 4), np.uint8)
        rgba[10:12, 20:30] = (*paint._hex_rgb(paint.BRUSHES["CBD"][1]).astype(np.uint8), 255)
        rgba[40:42, 20:30] = (*paint._hex_rgb(paint.BRUSHES["NMC"][1]).astype(np.uint8), 255)
        return rgba

    monkeypatch.setattr(paint, "canvas", fake_canvas)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    at.radio(key=state.SEG_METHOD).set_value("classifier").run()
    no_exception(at)
    assert drawn[-1][1] == (279, 512)  # the whole slice, shrunk: its stroke lands at about twice the place
    assert any("Turn on *Paint at full resolution*" in c.value for c in at.caption)
    whole = empty_ws.load_scribbles(s.id).slice(0, 0)
    ys, xs = np.nonzero(whole != UNPAINTED)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (22, 89, 43, 63)
    at.toggle(key=state.k(state.PAINT_FULLRES, s.id)).set_value(True).run()
    at.slider(key=state.k(state.PAINT_WINDOW, s.id, 0, 1)).set_value(1000).run()
    no_exception(at)
    key, shape, width = drawn[-1]
    assert shape == (512, 512) and width == 3 and key.endswith("_44_588")  # one canvas per window place
    assert any(c.value.startswith("The canvas shows 512 × 512 of this slice's 600 × 1100 pixels at full "
                                  "resolution: y 44–555 (2.2–27.8 µm) and x 588–1099") for c in at.caption)
    painted = empty_ws.load_scribbles(s.id).slice(0, 0)
    new = (painted != UNPAINTED) & (whole == UNPAINTED)
    expected = np.zeros_like(new)  # the stroke of each canvas, voxel for pixel at its window's place: the
    expected[54:56, 314:324] = expected[54:56, 608:618] = True  # centred window, then the one moved right
    expected[84:86, 314:324] = expected[84:86, 608:618] = True
    np.testing.assert_array_equal(new, expected)
    assert set(painted[54:56, 608:618].ravel()) == {1} and set(painted[84:86, 608:618].ravel()) == {2}
    assert np.array_equal(painted[whole != UNPAINTED], whole[whole != UNPAINTED])  # the first stroke kept
    assert len(at.image) == 1 and "the canvas's window: the classifier's phases" in at.image[0].captions[0]


def test_where_to_paint_counts_the_unsure_pixels_at_the_edges_between_phases():
    phases = np.zeros((6, 8), np.uint8)
    phases[:, 4:] = 2  # one edge, between columns 3 and 4
    conf = np.ones((6, 8))
    conf[0, 3] = conf[2, 5] = 0.4  # within 2 px of the edge (columns 2-5)
    conf[0, 0] = conf[5, 7] = 0.5  # farther
    before = conf.copy()
    assert paint.low_confidence_where(phases, conf, 0.6) == (4 / 48, 0.5)
    assert paint.low_confidence_where(phases, conf, 0.6, reach=1) == (4 / 48, 0.25)  # columns 3-4 only
    assert paint.low_confidence_where(phases, conf, 0.3) == (0.0, 0.0)
    np.testing.assert_array_equal(conf, before)
    assert segment_view.where_to_paint(4 / 48, 0.5).endswith("along those edges just inside each phase.")
    assert "inside the magenta patches" in segment_view.where_to_paint(0.1, 0.2)
    assert segment_view.where_to_paint(0.0, 0.0).startswith("No pixel of this slice")


# --------------------------------------------------------------------------- the page


def _open(ws, name="pristine"):
    s = next(x for x in ws.list_samples() if x.name == name)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    at.radio(key=state.SEG_METHOD).set_value("classifier").run()
    no_exception(at)
    # what the classifier does not model is said beside its full analysis (bench classifier_detachment)
    assert [i for i in at.info if i.value.startswith("Unlike the threshold method, the classifier does not model")]
    return s, at


def _metric(at, label: str) -> float:
    return float(next(m.value for m in at.metric if m.label == label).rstrip("%")) / 100


def _painted(ws, s) -> Scribbles:
    """Every 4th voxel of z-slice 20 and y-slice 10 painted with the phase of the sample's stored analysis."""
    phases = ws.load_phases(ws.latest_analysis(s.id))
    out = Scribbles.empty(phases.shape)
    for axis, index in ((0, 20), (1, 10)):
        lab = np.full(slice_of(phases, axis, index).shape, UNPAINTED, np.uint8)
        lab[::4, ::4] = slice_of(phases, axis, index)[::4, ::4]
        out = out.with_slice(axis, index, lab)
    return out


def test_a_new_session_opens_with_the_strokes_painted_since_the_latest_analysis(seeded_ws):
    """QA walk 15: after a reload the strokes were kept, but the page showed thresholds and the scientist had to pick
    the method again to find them."""
    import os

    s = next(x for x in seeded_ws.list_samples() if x.name == "pristine")

    def method():
        at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
        at.session_state[state.SAMPLE_ID] = s.id
        at.run()
        no_exception(at)
        return at.radio(key=state.SEG_METHOD).value

    assert method() == "threshold"  # the latest analysis's, nothing painted
    path = seeded_ws.save_scribbles(s.id, _painted(seeded_ws, s))
    assert seeded_ws.scribbles_saved_at(s.id) == os.stat(path).st_mtime
    assert method() == "classifier"  # painted after it
    old = seeded_ws.latest_analysis(s.id).created_at - 60
    os.utime(path, (old, old))  # painted before the latest analysis (by thresholds): its method
    assert method() == "threshold"
    assert seeded_ws.scribbles_saved_at(10**6) is None


def test_nothing_painted_asks_for_strokes_and_cannot_run(seeded_ws):
    s, at = _open(seeded_ws)
    assert any("Paint at least two of pore, CBD and NMC" in i.value for i in at.info)
    assert at.button(key=state.k(state.SEG_RUN, s.id)).disabled
    assert at.radio(key=state.PAINT_BRUSH).options == ["pore", "CBD", "NMC", "eraser"]
    assert any("0 voxels painted on this slice" in c.value for c in at.caption)
    # no preview yet (the canvas is a component, not an image); the one image: the latest analysis's phases
    assert [i.proto.imgs[0].caption.split(": ")[1] for i in at.image] == [
        f"grey values with the analysed phases over them (analysis #{seeded_ws.latest_analysis(s.id).id}, thresholds)"]
    # one phase only is not enough either
    one = Scribbles.empty(seeded_ws.load_volume(s).shape).with_slice(0, 3, np.zeros((48, 48), np.uint8))
    seeded_ws.save_scribbles(s.id, one)
    s, at = _open(seeded_ws)
    assert any("Paint at least two" in i.value for i in at.info)
    assert any("2304 pore, 0 CBD, 0 NMC voxels painted on 1 slice." == c.value for c in at.caption)


def test_strokes_on_one_slice_of_a_volume_ask_for_another_slice(seeded_ws):
    """Strokes on two slices classified the real slices not painted better than strokes on one
    (classifier_detachment_real_two): the page says so while every stroke is on one slice of a volume."""
    s = next(x for x in seeded_ws.list_samples() if x.name == "pristine")
    both = _painted(seeded_ws, s)
    one = Scribbles(both.shape, {(0, 20): both.slice(0, 20)})
    seeded_ws.save_scribbles(s.id, one)
    s, at = _open(seeded_ws)
    want = segment_view.one_slice_note(one)
    assert want.startswith("Every stroke is on one slice (z = 20): paint another one too")
    assert [c.value for c in at.caption].count(want) == 1
    seeded_ws.save_scribbles(s.id, both)
    s, at = _open(seeded_ws)
    assert segment_view.one_slice_note(both) is None
    assert not [c for c in at.caption if c.value.startswith("Every stroke is on one slice")]
    # a single 2D slice has no other slice to paint
    flat = Scribbles((1, 8, 8), {(0, 0): np.zeros((8, 8), np.uint8)})
    assert segment_view.one_slice_note(flat) is None


def test_saved_strokes_preview_then_full_run_with_the_same_phases(seeded_ws):
    s = next(x for x in seeded_ws.list_samples() if x.name == "pristine")
    scr = _painted(seeded_ws, s)
    seeded_ws.save_scribbles(s.id, scr)  # as a reload of the page finds them
    s, at = _open(seeded_ws)
    p, c, n = scr.counts()
    assert any(f"{p} pore, {c} CBD, {n} NMC voxels painted on 2 slices." == x.value for x in at.caption)
    # the preview of z = 20 (a painted slice): the classifier's phases, the low-confidence share, timings
    at.slider(key=state.k(state.SEG_INDEX, s.id, 0)).set_value(20).run()
    no_exception(at)
    assert any("the classifier's phases; magenta where its confidence is below 0.60" in i.proto.imgs[0].caption
               for i in at.image)
    assert any("of the slice is below the confidence mark" in x.value and x.value.startswith("Trained in")
               and "px of an edge between phases" in x.value for x in at.caption)
    assert any(f"{int((scr.slice(0, 20) != UNPAINTED).sum())} voxels painted on this slice" in x.value
               for x in at.caption)
    fr = {ph: _metric(at, f"{ph} (this slice)") for ph in ("pore", "CBD", "NMC")}
    assert sum(fr.values()) == pytest.approx(1.0, abs=0.002) and fr["NMC"] > 0.1
    # the y orientation shows its own painted slice
    at.radio(key=state.k(state.SEG_AXIS, s.id)).set_value(1).run()
    at.slider(key=state.k(state.SEG_INDEX, s.id, 1)).set_value(10).run()
    no_exception(at)
    assert any(f"{int((scr.slice(1, 10) != UNPAINTED).sum())} voxels painted on this slice" in x.value
               for x in at.caption)
    # the full analysis: method classifier, trained on the painted slices kept in the workspace
    before = seeded_ws.latest_analysis(s.id)
    run = at.button(key=state.k(state.SEG_RUN, s.id))
    assert not run.disabled
    run.click().run()
    no_exception(at)
    a = seeded_ws.latest_analysis(s.id)
    assert a.id > before.id and a.status == "done" and a.n_particles > 0
    assert a.resolved.method == "classifier"
    folder = seeded_ws.sample_dir(s.id) / "training"
    assert a.resolved.classifier.startswith(str(folder))
    clf = load_classifier(a.resolved.classifier)
    assert clf.painted == scr.counts() and len(clf.pairs) == 2
    assert any("Phases by a classifier trained on brush strokes" in x.value for x in at.caption)
    # the preview of a z-slice is that slice of a run by the full classifier's first PREVIEW_TREES trees, and
    # close to that slice of the full run
    full = seeded_ws.load_phases(a)[20]
    light = train([p.image for p in clf.pairs], [p.scribbles for p in clf.pairs], [p.spacing for p in clf.pairs],
                  clf.params.preview())
    assert light.params.n_estimators == min(PREVIEW_TREES, clf.params.n_estimators)
    shown = light.predict(seeded_ws.load_volume(s)[20], s.spacing)[0][0]
    at.radio(key=state.k(state.SEG_AXIS, s.id)).set_value(0).run()
    at.slider(key=state.k(state.SEG_INDEX, s.id, 0)).set_value(20).run()
    no_exception(at)
    assert any("slice z = 20: the classifier's phases" in i.proto.imgs[0].caption for i in at.image)
    assert np.mean(shown == full) > 0.97
    for code, ph in enumerate(("pore", "CBD", "NMC")):
        assert _metric(at, f"{ph} (this slice)") == pytest.approx(np.mean(shown == code), abs=0.0006)


def test_the_strokes_of_one_sample_classify_the_others_chosen(seeded_ws):
    s = next(x for x in seeded_ws.list_samples() if x.name == "pristine")
    others = [x for x in seeded_ws.list_samples() if x.id != s.id]
    assert len(others) >= 2
    scr = _painted(seeded_ws, s)
    seeded_ws.save_scribbles(s.id, scr)
    s, at = _open(seeded_ws)
    pick = at.multiselect(key=state.k(state.PAINT_OTHERS, s.id))
    assert set(pick.options) == {x.name for x in others}  # the painted sample itself is not offered
    go = at.button(key=state.k(state.PAINT_OTHERS_RUN, s.id))
    assert go.disabled  # nothing chosen yet
    before = {x.id: seeded_ws.latest_analysis(x.id) for x in others}
    pick.set_value([others[0].id, others[1].id]).run()
    assert not any("unlike it" in w.value for w in at.warning)  # demos alike (same voxel size)
    at.button(key=state.k(state.PAINT_OTHERS_RUN, s.id)).click().run()
    no_exception(at)
    said = [m.value for m in at.success]
    assert said and said[0].startswith("Analyses with these strokes: "), (said, [m.value for m in at.error])
    clf_here = load_classifier(seeded_ws.save_training(s.id, seeded_ws.load_volume(s), scr,
                                                       segment_view.CLASSIFIER_PARAMS))
    for x in others[:2]:
        a = seeded_ws.latest_analysis(x.id)
        assert a.id != before[x.id].id and a.status == "done" and a.resolved.method == "classifier"
        assert f"{x.name} (job #" in said[0] and f"done, {a.n_particles} particles" in said[0]
        # trained on the painted sample's strokes, from a copy kept with this sample; its own separation
        assert a.resolved.classifier.startswith(str(seeded_ws.sample_dir(x.id) / "training"))
        assert load_classifier(a.resolved.classifier).painted == clf_here.painted == scr.counts()
        assert a.resolved.separation == before[x.id].resolved.separation
    # the painted sample itself was not analysed by this button
    assert seeded_ws.latest_analysis(s.id).resolved.method != "classifier"


def test_clear_this_slice_removes_its_strokes_from_the_workspace(seeded_ws):
    s = next(x for x in seeded_ws.list_samples() if x.name == "pristine")
    seeded_ws.save_scribbles(s.id, _painted(seeded_ws, s))
    s, at = _open(seeded_ws)
    at.slider(key=state.k(state.SEG_INDEX, s.id, 0)).set_value(20).run()
    at.button(key=state.k(state.PAINT_CLEAR, s.id, 0, 20)).click().run()
    no_exception(at)
    kept = seeded_ws.load_scribbles(s.id)
    assert list(kept.slices) == [(1, 10)]
    assert at.session_state[state.k(state.SCRIBBLES, s.id)].digest() == kept.digest()
    assert any("0 voxels painted on this slice" in x.value for x in at.caption)
    assert at.button(key=state.k(state.PAINT_CLEAR, s.id, 0, 20)).disabled


def test_particles_page_refuses_the_network_cue_on_classifier_phases_in_one_sentence(seeded_ws):
    from core.pipeline import AnalysisParams
    from core.runner import run_analysis

    s = next(x for x in seeded_ws.list_samples() if x.name == "pristine")
    vol = seeded_ws.load_volume(s)
    folder = seeded_ws.save_training(s.id, vol, _painted(seeded_ws, s))
    a = run_analysis(seeded_ws, s.id, vol, AnalysisParams(method="classifier", classifier=str(folder)))
    at = AppTest.from_file(page("3_particles.py"), default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    at.radio(key=state.k(state.PART_METHOD, s.id)).set_value("model").run()
    at.button[0].click().run()
    no_exception(at)
    assert any("particles from the model need method 'threshold' or 'model', not 'classifier'" in e.value
               for e in at.error)
    assert seeded_ws.latest_analysis(s.id).id == a.id


def test_the_fill_outside_the_field_of_view_is_left_out_of_the_classifier_s_preview(empty_ws, env):
    """A scan with a disc: the classifier's preview leaves the fill uncoloured and out of the slice's shares, as
    the run holds it (no material), whatever the preview classifier guessed there."""
    import warnings

    from core.io import save_tiff
    from core.runner import run_analysis
    from core.synth import demo_electrode

    g = demo_electrode("cycled-1C", rng=2, shape=(32, 48, 48)).greyscale.copy()
    yy, xx = np.mgrid[:48, :48]
    outside = (yy - 23.5) ** 2 + (xx - 23.5) ** 2 > 24**2
    g[:, outside] = 0
    save_tiff(env / "data" / "fov.tif", g, (0.4, 0.4, 0.4))
    s = empty_ws.add_sample("fov", str(env / "data" / "fov.tif"), spacing=0.4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_analysis(empty_ws, s.id, empty_ws.load_volume(s))
    scr = _painted(empty_ws, s)
    empty_ws.save_scribbles(s.id, scr)
    s, at = _open(empty_ws, "fov")
    at.slider(key=state.k(state.SEG_INDEX, s.id, 0)).set_value(20).run()
    no_exception(at)
    assert any("(the fill outside the field of view uncoloured: no material)" in i.proto.imgs[0].caption
               for i in at.image)
    assert any(x.value == f"Shares of this slice's field of view: the fill outside it ({int(outside.sum()):,} "
               "pixels) is left out." for x in at.caption)
    fr = {ph: _metric(at, f"{ph} (this slice)") for ph in ("pore", "CBD", "NMC")}
    assert sum(fr.values()) == pytest.approx(1.0, abs=0.002)


def test_samples_unlike_the_painted_one_are_named_before_they_are_classified():
    """QA: strokes painted on a nano-CT slice were offered to the synthetic demos and a FIB-SEM image unsaid."""
    from types import SimpleNamespace as NS

    from ui.segment_view import unlike_note

    painted = NS(name="nct360", spacing=(0.05, 0.05, 0.05), is_demo=False)
    same = NS(name="nct100", spacing=(0.052, 0.05, 0.05), is_demo=False)  # within 10 %
    fib = NS(name="fibsem", spacing=(0.025, 0.025, 0.025), is_demo=False)
    demo = NS(name="pristine", spacing=(0.4, 0.4, 0.4), is_demo=True)
    assert unlike_note(painted, [same]) is None and unlike_note(painted, []) is None
    assert unlike_note(painted, [same, fib, demo]) == (
        "The strokes were painted on nct360 (voxel 0.05×0.05×0.05 µm); fibsem (voxel 0.025×0.025×0.025 µm); "
        "pristine (voxel 0.4×0.4×0.4 µm, a synthetic demo) are unlike it: the classifier learns the grey values "
        "and textures painted here, so check their phases on their own Segment pages, or paint on them.")
    one = unlike_note(demo, [NS(name="scan", spacing=(0.4, 0.4, 0.4), is_demo=False)])
    assert one.startswith("The strokes were painted on pristine (voxel 0.4×0.4×0.4 µm, a synthetic demo); scan (a "
                          "scan, not a synthetic demo) is unlike it")
