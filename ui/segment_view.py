"""Sections of the Segment page: the method, the grey-value histogram with the threshold widgets, the slice preview,
and the brush canvas of the classifier trained on painted voxels."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.classify import UNPAINTED, ClassifierParams
from core.nn.params import ModelParams
from core.phases import SegmentParams
from core.phases import preview as phase_preview
from core.scribbles import Scribbles
from core.slices import is_single_slice
from core.workspace import Analysis, Sample, Workspace

from . import cache, charts, compute, forms, jobs, page, paint, render, state, widgets
from .messages import flash, one_sentence, read_or_stop

METHOD_LABELS = {"threshold": "Thresholds (+ partial-volume correction)",
                 "model": "Trained 3D U-Net (phases and particles)",
                 "classifier": "Train from brush strokes"}
#: The previews' default phase colour opacity (the analysed phases' view takes the one the slider holds).
PHASE_OPACITY = 0.45
#: The classifier of the "Train from brush strokes" method (preview and full analysis alike).
CLASSIFIER_PARAMS = ClassifierParams()


#: What the classifier does not model (the Segment page says it beside its full analysis): bench/RESULTS.md
#: classifier_detachment (demo electrodes) and classifier_detachment_real (the real nano-CT slices).
CLASSIFIER_EDGE_NOTE = (
    "Unlike the threshold method, the classifier does not model the blur: the edge of a particle, whose grey values "
    "lie between the particle's and its neighbour's, is read as whichever painted phase it resembles. Read as CBD, it "
    "is a shell that hides detachment: on the demo electrodes, strokes inside each phase gave a median detachment "
    "0.14-0.43 too low, strokes half along the edges between phases (just inside each) 0.09-0.33 too low, where "
    "thresholds came within 0.03. Read as pore, it makes the particles look detached: on the real nano-CT slices, a "
    "classifier of strokes on one slice read the median detachment of a slice of the same acquisition from 0.77 too "
    "low to 0.82 too high against its expert labels, depending on the slice painted. Paint each phase right up to the "
    "particles where the scan shows it there, look at the preview's phases along the particle edges, and where "
    "thresholds read the scan well, compare with a threshold run.")


def first_method(ws: Workspace, sample: Sample, latest: Analysis | None) -> str:
    """The method a new session's Segment page starts with: the brush strokes where strokes were saved after the
    sample's latest analysis (or it has none), else that analysis's method, else thresholds (QA walk 15: after a
    reload the strokes were kept, but the page showed thresholds and the scientist had to pick the method again to
    find them)."""
    painted = ws.scribbles_saved_at(sample.id)
    if painted is not None and (latest is None or painted > latest.created_at):
        return "classifier"
    method = latest.resolved.method if latest is not None else None
    return method if method in METHOD_LABELS else "threshold"


def method_picker(mparams: ModelParams, ws: Workspace, sample: Sample, latest: Analysis | None) -> str:
    """The segmentation method, ``"threshold"``, ``"model"`` or ``"classifier"`` (one choice for all samples; a new
    session starts with :func:`first_method` of the sample shown); with the model, a line on its weights."""
    if state.SEG_METHOD not in st.session_state:
        state.init(state.SEG_METHOD, first_method(ws, sample, latest))
    method = st.radio("Method", tuple(METHOD_LABELS), key=state.SEG_METHOD, horizontal=True,
                      persist_state=state.PERSIST, format_func=METHOD_LABELS.get)
    if method == "model":
        st.caption(forms.model_card_line(mparams))
        card = forms.model_card(mparams)
        if card:  # in the page (QA walk 16: a path into the source tree, which a scientist cannot open)
            with st.expander("Model card: what the 3D U-Net is good and bad at", icon=":material/description:",
                             key=state.SEG_MODEL_CARD_EXPANDER):
                st.markdown(card)
    return method


def grey_values_section(sample: Sample, ref: cache.VolumeRef, latest: Analysis | None) -> forms.SegmentChoice:
    """The threshold and denoising widgets (:func:`ui.forms.segment_params`) over the grey-value histogram."""
    filled = cache.fill(cache.unflattened_ref(ref))
    fill_value = None if filled is None else float(filled["value"])
    hist, vmin, vmax = cache.histogram(ref, exclude=fill_value)
    if ref != cache.unflattened_ref(ref):  # the sliders keep the file's range (a new range would reset them)
        _, vmin, vmax = cache.histogram(cache.unflattened_ref(ref))
    st.subheader("Grey values")
    choice = forms.segment_params(sample, ref, vmin, vmax, latest)
    st.altair_chart(charts.grey_histogram(hist, choice.low, choice.high), width="stretch")
    where = ("of the blocks of z-slices a full run samples its global values from (this volume is read a slab at a "
             "time, never held whole)" if cache.is_lazy(cache.volume(ref)) else
             "of the volume flattened along z" if ref != cache.unflattened_ref(ref) else "of the raw volume")
    st.caption(f"Histogram of {_sampled_words(ref)} {where}; the thresholds apply to the volume after the chosen "
               "denoising (none by default)."
               + (f" The fill outside the field of view (grey value {fill_value:g}) is left out of the bars."
                  if fill_value is not None else ""))
    return choice


def flatten_choice(sample: Sample, ref: cache.VolumeRef, vol, latest: Analysis | None,
                   method: str = "threshold") -> bool:
    """Where the grey values drift along z (:func:`core.phases.shading_reading`): the warning, the pure levels
    along z and "Flatten the drift" (on by default where it warns; the preview, the
    histogram and the run then read the flattened volume).  Returns the choice (False where nothing drifts).

    ``method``: the Segment page's, "threshold" or "model" (the 3D U-Net scales the whole volume by one pair of
    percentiles, so a drift moves its phases as it moves thresholds').
    """
    from core.phases import shading_message

    reading = cache.shading(ref)
    before = latest is not None and latest.resolved.segment.flatten
    if reading is None or not (reading["warn"] or before):
        return False
    if reading["warn"]:
        st.warning(shading_message(reading, method))
    st.altair_chart(charts.shading_levels(reading, float(sample.spacing[0])), width="stretch")
    key = state.k(state.SEG_FLATTEN, sample.id)
    state.init(key, bool(before or reading["warn"]))
    what = "thresholding" if method == "threshold" else "the 3D U-Net reads it"
    return bool(st.checkbox(f"Flatten the drift along z before {what} (every slice's pure pore and NMC grey "
                            "values mapped onto the whole volume's; the histogram and preview show the flattened "
                            "volume)", key=key, persist_state=state.PERSIST))


def field_of_view_words(analysis) -> str | None:
    """A caption where ``analysis`` held a fill outside the field of view as no material (its provenance's
    ``fill``, :func:`core.phases.fill_region`), else None."""
    fill = (analysis.provenance or {}).get("fill") or {}
    if not fill.get("as_edge"):
        return None
    n = int(fill.get("region_voxels") or 0)
    return (f"Outside the field of view: {n:,} voxels of grey value {fill['value']:g} (the fill) held as no "
            "material. The phase shares are those of the field of view, and a particle's faces to the fill count "
            "as the volume's edge, as where the volume's box cuts it.")


def flattened_words(latest: Analysis) -> str:
    """"on the volume flattened along z (its drift read as N% of the pore-NMC contrast)" for an analysis that
    flattened a drift it read (thresholds or the 3D U-Net), else ""."""
    shading = (latest.provenance or {}).get("shading")
    if not (latest.resolved.segment.flatten and shading):
        return ""
    return f"on the volume flattened along z (its drift read as {shading['drift']:.0%} of the pore-NMC contrast)"


def grey_histogram_section(ref: cache.VolumeRef) -> None:
    """The grey-value histogram alone, for the 3D U-Net (its phases do not come from thresholds); ``ref`` the
    volume it reads (flattened along z where chosen)."""
    hist, _, _ = cache.histogram(ref)
    st.subheader("Grey values")
    st.altair_chart(charts.grey_histogram(hist, None, None), width="stretch")
    flat = ref != cache.unflattened_ref(ref)
    st.caption(f"The 3D U-Net takes the grey values {'of the volume flattened along z' if flat else 'as they are'} "
               "(scaled by the volume's 0.5 and 99.5 percentiles, as in its training): no thresholds apply. "
               f"Histogram of {_sampled_words(ref)}.")


def _sampled_words(ref: cache.VolumeRef) -> str:
    """What the histogram counts: "all 286,000 voxels" or "a strided sample of 2,000,000 voxels" (it said "about a
    million" of a 286,000-pixel slice)."""
    n, total = int(cache.grey_values(ref).size), int(np.prod(cache.volume(ref).shape))
    return f"all {n:,} voxels" if n >= total else f"a strided sample of {n:,} voxels"


def preview_section(sample: Sample, ref: cache.VolumeRef, shape, method: str, params: SegmentParams | None,
                    mparams: ModelParams) -> None:
    """One slice with the phases of ``method`` over it, and its phase fractions (the grey slice alone without
    valid ``params``); stops the page with one sentence when the preview fails."""
    sid = sample.id
    st.subheader("Preview (one slice)")
    axis, index = widgets.slice_picker(state.k(state.SEG_AXIS, sid), state.k(state.SEG_INDEX, sid), shape,
                                       label="Preview slice")
    state.init(state.SEG_OPACITY, PHASE_OPACITY)
    opacity = st.slider("Phase colour opacity", 0.0, 1.0, key=state.SEG_OPACITY, step=0.05,
                        persist_state=state.PERSIST)
    window = window_picker(sample, shape, axis)
    grey = read_or_stop(cache.grey_image, ref, axis, index, window)
    if method != "model" and params is None:
        st.image(render.upscale(grey, 520), width="stretch", caption=f"slice {render.AXES[axis]} = {index}")
        return
    try:
        if method == "model":
            ph2d = cache.preview_model(ref, axis, index, mparams)
            if window is not None:
                (r0, r1), (c0, c1) = window
                ph2d = ph2d[r0:r1, c0:c1]
        else:
            ph2d = cache.preview_phases(ref, axis, index, params, window)
    except (ValueError, MemoryError) as exc:
        st.error(one_sentence(exc, alone=True))
        st.stop()
    outside = _fill_pixels(ref, axis, index, window)
    shown = render.phase_overlay(grey, ph2d, opacity)
    caption = f"slice {render.AXES[axis]} = {index}: grey values with the phases over them"
    if outside is not None:  # the run holds the fill as no material: left uncoloured, out of the shares
        shown[outside] = grey[outside]
        ph2d = ph2d[~outside]
        caption += " (the fill outside the field of view uncoloured: no material)"
    st.image(render.upscale(shown, 520), width="stretch", caption=caption)
    if method != "model":
        st.caption(cache.preview_note(ref, axis, index, params, window))
    st.html(charts.phase_legend_html())
    fr = compute.phase_fractions(ph2d)
    where = "this slice" if window is None else "this window"
    c = st.columns(3)
    c[0].metric(f"pore ({where})", f"{fr['pore']:.1%}")
    c[1].metric(f"CBD ({where})", f"{fr['cbd']:.1%}")
    c[2].metric(f"NMC ({where})", f"{fr['nmc']:.1%}")
    if outside is not None:
        st.caption(f"Shares of {where}'s field of view: the fill outside it ({int(outside.sum()):,} pixels) is left out.")


def _fill_pixels(ref: cache.VolumeRef, axis: int, index: int, window) -> np.ndarray | None:
    """The pixels of a preview slice that a run holds as no material (a fill outside the field of view,
    :func:`core.phases.fill_region`), or None where it has none."""
    from core.phases import fill_region

    found = cache.fill(ref)
    if found is None:
        return None
    mask = fill_region(np.asarray(cache.grey_slice(ref, axis, index, window))[None], found["value"])[0]
    return mask if mask.any() else None


def window_picker(sample: Sample, shape, axis: int) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """For a section over :data:`core.phases.MAX_PREVIEW_PIXELS`: two sliders placing the preview window and a
    caption saying what it shows; returns the window (:func:`core.phases.preview_window`), else None."""
    if phase_preview.preview_window(shape, axis) is None:
        return None
    others = [i for i in range(3) if i != axis]
    section = [int(shape[i]) for i in others]
    centre = _centre_sliders(state.SEG_WINDOW, sample.id, axis, section, "Preview window centre")
    window = phase_preview.preview_window(shape, axis, tuple(centre))
    st.caption(window_note(section, window, [float(sample.spacing[i]) for i in others],
                           [render.AXES[i] for i in others]))
    return window


def _centre_sliders(key: str, sample_id: int, axis: int, section, label: str) -> tuple[int, int]:
    """Two sliders side by side placing a window's centre on a section (``section``: its rows and columns) of the
    slices across ``axis``; their keys are ``key`` + sample id + axis + 0 / 1; a centre past a smaller section is
    moved to its last row or column."""
    others = [i for i in range(3) if i != axis]
    centre = []
    cols = st.columns(2)
    for j, (i, n) in enumerate(zip(others, section)):
        n = int(n)
        k = state.k(key, sample_id, axis, j)
        state.init(k, n // 2)
        if st.session_state[k] > n - 1:
            st.session_state[k] = n - 1
        centre.append(cols[j].slider(f"{label} along {render.AXES[i]} (voxels, 0–{n - 1})", 0, n - 1, key=k,
                                     persist_state=state.PERSIST))
    return tuple(centre)


def window_note(section, window, spacing, names) -> str:
    """"This slice is 2048 × 2048 pixels: the preview shows a window of 1024 × 1024 pixels (409.6 × 409.6 µm), y
    512–1535 (204.8–614.4 µm) and x ..."."""
    (r0, r1), (c0, c1) = window
    (sr, sc), (nr, nc) = spacing, names
    return (f"This slice is {section[0]} × {section[1]} pixels, more than the live preview covers whole "
            f"({phase_preview.MAX_PREVIEW_PIXELS:,} pixels): it shows a window of {r1 - r0} × {c1 - c0} pixels "
            f"({(r1 - r0) * sr:.1f} × {(c1 - c0) * sc:.1f} µm), {nr} {r0}–{r1 - 1} "
            f"({r0 * sr:.1f}–{r1 * sr:.1f} µm) and {nc} {c0}–{c1 - 1} ({c0 * sc:.1f}–{c1 * sc:.1f} µm). "
            "Move it with the sliders above; it is segmented with a margin around it, so its pixels get the "
            "phases the whole slice's preview gives them.")


# --------------------------------------------------------------------------- train from brush strokes


def scribbles_of(ws: Workspace, sample: Sample, shape) -> Scribbles:
    """The sample's scribbles: this session's, else those kept in the workspace, else none."""
    key, aside = state.k(state.SCRIBBLES, sample.id), state.k(state.SCRIBBLES_ASIDE, sample.id)
    shape = tuple(int(n) for n in shape)
    s = st.session_state.get(key)
    if s is None or s.shape != shape:
        st.session_state.pop(aside, None)
        try:
            s = ws.load_scribbles(sample.id, shape)
            other = ws.load_scribbles(sample.id) if s is None else None
        except ValueError as exc:
            st.warning(f"The saved brush strokes of this sample cannot be read ({one_sentence(exc)}); starting "
                       "without them.")
            s = other = None
        if other is not None and other.shape != shape:
            st.session_state[aside] = (
                f"The brush strokes saved for this sample were painted on its volume as read before "
                f"({'×'.join(map(str, other.shape))} voxels, before its crop or its slices' alignment changed); "
                f"it is read as {'×'.join(map(str, shape))} now. They are kept aside, and come back where it is "
                "read so again: paint anew here.")
        if s is None:
            s = Scribbles.empty(shape)
        st.session_state[key] = s
    if st.session_state.get(aside) and not s.slices:  # (said on every run until strokes are painted anew, not once)
        st.info(st.session_state[aside])
    return s


def _keep(ws: Workspace, sample: Sample, scribbles: Scribbles) -> None:
    """Scribbles into this session and into the workspace (they survive a reload)."""
    st.session_state[state.k(state.SCRIBBLES, sample.id)] = scribbles
    ws.save_scribbles(sample.id, scribbles)


def _enlarge(img: np.ndarray, f: int) -> np.ndarray:
    return img if f == 1 else np.repeat(np.repeat(img, f, axis=0), f, axis=1)


def paint_section(ws: Workspace, sample: Sample, ref: cache.VolumeRef, shape) -> Scribbles:
    """The brush canvas on a slice of any orientation, and the classifier's phases on it after each stroke.

    Returns the sample's scribbles (after this run's strokes).
    """
    sid = sample.id
    scribbles = scribbles_of(ws, sample, shape)
    st.subheader("Paint the phases")
    state.init(state.PAINT_BRUSH, "NMC")
    state.init(state.PAINT_WIDTH, 3)
    state.init(state.PAINT_CONFIDENCE, 0.6)
    state.init(state.SEG_OPACITY, PHASE_OPACITY)
    c = st.columns([3, 2, 2, 2])
    brush = c[0].radio("Brush", tuple(paint.BRUSHES), key=state.PAINT_BRUSH, horizontal=True,
                       persist_state=state.PERSIST)
    width = c[1].slider("Brush width (voxels)", 1, 15, key=state.PAINT_WIDTH, persist_state=state.PERSIST)
    threshold = c[2].slider("Mark confidence below", 0.35, 1.0, key=state.PAINT_CONFIDENCE, step=0.05,
                            persist_state=state.PERSIST,
                            help="Pixels where the classifier's largest class probability is lower are shown in "
                                 "magenta: paint there next.")
    opacity = c[3].slider("Phase colour opacity", 0.0, 1.0, key=state.SEG_OPACITY, step=0.05,
                          persist_state=state.PERSIST)
    axis, index = widgets.slice_picker(state.k(state.SEG_AXIS, sid), state.k(state.SEG_INDEX, sid), shape,
                                       label="Slice")
    grey = read_or_stop(cache.grey_image, ref, axis, index)
    stored = scribbles.slice(axis, index)
    f = paint.scale_factor(grey.shape[:2])
    where = f"slice {render.AXES[axis]} = {index}"
    window = _paint_window(sample, grey.shape[:2], axis)
    left, right = st.columns(2, gap="medium")
    with left:
        gen_key = state.k(state.PAINT_CANVAS_GEN, sid, axis, index)
        canvas_key = state.k(state.PAINT_CANVAS, sid, axis, index, st.session_state.get(gen_key, 0))
        if window is None:
            # a slice wider than the column is shown smaller, not cropped
            background = paint.fit_canvas(_enlarge(paint.scribble_rgb(grey, stored), f))
            scale = background.shape[1] / grey.shape[1]  # canvas pixels per voxel
        else:  # one voxel a canvas pixel; a canvas of its own for each place of the window: strokes stay put
            (r0, r1), (c0, c1) = window
            background = paint.scribble_rgb(grey[r0:r1, c0:c1], stored[r0:r1, c0:c1])
            canvas_key = state.k(canvas_key, r0, c0)
            scale = 1.0
        px = max(1, round(width * scale))  # the brush on the canvas, its pixels
        rgba = paint.canvas(canvas_key, background, brush, px)
        if scale < 1:
            st.caption(f"This slice is {grey.shape[0]} × {grey.shape[1]} pixels: the canvas shows it at "
                       f"{background.shape[0]} × {background.shape[1]} ({scale:.2f} canvas pixel a voxel; a brush "
                       f"{width} voxels wide paints about {px / scale:.0f}). Turn on *Paint at full resolution* "
                       "above to paint finer.")
        if rgba is not None:
            strokes = paint.strokes_from_rgba(rgba, stored.shape if window is None else (r1 - r0, c1 - c0))
            new = paint.apply_strokes(stored, strokes, window)
            if not np.array_equal(new, stored):
                scribbles = scribbles.with_slice(axis, index, new)
                stored = scribbles.slice(axis, index)
                _keep(ws, sample, scribbles)
            if (strokes == UNPAINTED).any():  # an eraser stroke (whether it unpainted anything or not): a fresh
                st.session_state[gen_key] = st.session_state.get(gen_key, 0) + 1  # canvas, whose slice shows what
                st.rerun()  # is left (QA walk 15: the eraser's white line hid the slice under it until a reload)
        n_here = int((stored != UNPAINTED).sum())
        st.caption(f"{where}: paint a few strokes inside each phase with its brush, then along the edges between "
                   "phases (just inside each phase) and where the preview is magenta; the eraser unpaints. "
                   f"{n_here} voxels painted on this slice. Strokes are kept for this sample in the workspace.")
        if st.button("Clear this slice", key=state.k(state.PAINT_CLEAR, sid, axis, index), disabled=n_here == 0):
            _keep(ws, sample, scribbles.with_slice(axis, index, np.full(stored.shape, UNPAINTED, np.uint8)))
            st.session_state[gen_key] = st.session_state.get(gen_key, 0) + 1  # a fresh, empty canvas
            st.rerun()
    with right:
        _classifier_preview(sample, ref, scribbles, axis, index, grey, f, opacity, threshold, window)
    return scribbles


def _paint_window(sample: Sample, slice_shape: tuple[int, int], axis: int) -> paint.Window | None:
    """For a slice longer than the canvas: *Paint at full resolution* and, where on, two sliders placing a
    window of at most :data:`ui.paint.CANVAS_TARGET` pixels a side painted one canvas pixel a voxel, and a caption
    saying where it lies; returns it (:func:`ui.paint.full_resolution_window`), else None (the whole slice)."""
    if max(slice_shape) <= paint.CANVAS_TARGET:
        return None
    if not st.toggle("Paint at full resolution", key=state.k(state.PAINT_FULLRES, sample.id),
                     persist_state=state.PERSIST,
                     help="The canvas then shows a window of the slice one screen pixel a voxel, to paint thin "
                          "phases and edges voxel by voxel; move it with the sliders. The preview beside it shows "
                          "the same window."):
        return None
    others = [i for i in range(3) if i != axis]
    centre = _centre_sliders(state.PAINT_WINDOW, sample.id, axis, slice_shape, "Window centre")
    window = paint.full_resolution_window(slice_shape, centre)
    (r0, r1), (c0, c1) = window
    (sr, sc), (nr, nc) = [float(sample.spacing[i]) for i in others], [render.AXES[i] for i in others]
    st.caption(f"The canvas shows {r1 - r0} × {c1 - c0} of this slice's {slice_shape[0]} × {slice_shape[1]} "
               f"pixels at full resolution: {nr} {r0}–{r1 - 1} ({r0 * sr:.1f}–{r1 * sr:.1f} µm) and {nc} "
               f"{c0}–{c1 - 1} ({c0 * sc:.1f}–{c1 * sc:.1f} µm). Strokes painted elsewhere on the slice are kept.")
    return window


def painted_summary(scribbles: Scribbles) -> str:
    """"120 pore, 0 CBD, 300 NMC voxels painted on 2 slices"."""
    p, c, n = scribbles.counts()
    k = len(scribbles.slices)
    return f"{p} pore, {c} CBD, {n} NMC voxels painted on {k} slice{'' if k == 1 else 's'}"


#: Mean per-phase IoU on the real nano-CT slices not painted, acquisitions A / B / D, strokes inside each phase on
#: one slice and on two (bench/RESULTS.md classifier_detachment_real and classifier_detachment_real_two).
ONE_SLICE_IOU, TWO_SLICES_IOU = (0.53, 0.55, 0.60), (0.56, 0.57, 0.63)


def one_slice_note(scribbles: Scribbles) -> str | None:
    """Where every stroke lies on one slice of a volume: paint another slice too, with what a second slice gave on the
    real nano-CT slices; None where strokes lie on several slices, or the sample is a single slice."""
    if len(scribbles.slices) != 1 or is_single_slice(scribbles.shape):
        return None
    (axis, index), = scribbles.slices
    one, two = (" / ".join(f"{v:.2f}" for v in t) for t in (ONE_SLICE_IOU, TWO_SLICES_IOU))
    return (f"Every stroke is on one slice ({render.AXES[axis]} = {index}): paint another one too, where "
            "the scan looks different. On the real nano-CT slices, strokes on two slices classified the slices "
            f"not painted better than strokes on one (mean per-phase IoU {one} -> {two} for acquisitions A / B / D; "
            "bench/RESULTS.md classifier_detachment_real_two).")


def where_to_paint(low: float, at_edges: float) -> str:
    """The words under the preview that say where to paint next, from :func:`ui.paint.low_confidence_where`."""
    if low == 0:
        return "No pixel of this slice is below the confidence mark: check another slice, or raise the mark."
    text = f"{low:.1%} of the slice is below the confidence mark"
    if at_edges >= 0.5:
        return (text + f", {at_edges:.0%} of it within {paint.EDGE_REACH} px of an edge between phases: paint there "
                "next, with strokes along those edges just inside each phase.")
    return (text + f" ({at_edges:.0%} of it within {paint.EDGE_REACH} px of an edge between phases): paint there "
            "next, inside the magenta patches with the brush of their phase.")


def enough_painted(scribbles: Scribbles) -> bool:
    """At least two phases painted (what a classifier needs)."""
    return sum(c > 0 for c in scribbles.counts()) >= 2


def classify_others_section(ws: Workspace, sample: Sample, volume, scribbles: Scribbles) -> None:
    """"Classify other samples with these strokes": one set of strokes for the scans of one study.

    Each chosen sample (not those whose phases were read from their file) is analysed in the background with a
    classifier trained on this sample's painted slices (:meth:`core.workspace.Workspace.save_training`, copied
    to it by :meth:`~core.workspace.Workspace.share_training`, so that it replays without this sample) and with
    its own latest separation settings.  ``volume``: this sample's volume as analysed (its painted slices are
    read).
    """
    from core.pipeline import AnalysisParams

    others = {s.id: s for s in ws.list_samples() if s.id != sample.id and not s.input.presegmented}
    if not others:
        return
    chosen = st.multiselect(
        "Classify other samples with these strokes", list(others), key=state.k(state.PAINT_OTHERS, sample.id),
        format_func=lambda i: others[i].name, placeholder="other samples of the same study",
        help="Phases of several scans segmented by one classifier are segmented alike, so that their detachment "
             "compares. Each sample chosen is analysed in the background with a classifier trained on the strokes "
             "painted here (a copy of them is kept with it) and with its own separation settings. The classifier "
             "learns the grey values and textures painted here: paint every phase as it looks across the scans "
             "(on the real nano-CT slices, simulated strokes on one slice reached a mean per-phase IoU of 0.53-0.60 "
             "on the other slices of its acquisition, bench/RESULTS.md accuracy_real_classifier, and strokes "
             "painted by hand less; their median detachment came out from 0.77 too low to 0.82 too high, depending "
             "on the slice painted, classifier_detachment_real), and check each sample's phases on its own Segment "
             "page.")
    unlike = unlike_note(sample, [others[i] for i in chosen])
    if unlike:
        st.warning(unlike)
    ready = enough_painted(scribbles)
    if not st.button("Classify them", key=state.k(state.PAINT_OTHERS_RUN, sample.id), disabled=not chosen or not ready):
        return
    folder = ws.save_training(sample.id, volume, scribbles, CLASSIFIER_PARAMS)
    queued = []
    for sid in chosen:
        try:
            target = ws.get_sample(sid)
            copy = ws.share_training(folder, sid)
        except KeyError:  # deleted meanwhile
            continue
        sep = page.latest_params(ws.latest_analysis(sid)).separation
        job = jobs.submit(ws, target, AnalysisParams(method="classifier", classifier=str(copy), separation=sep))
        if job is not None:
            queued.append((target.name, job))
    if not queued:
        return
    said = {"done": lambda j: f"done, {j.result['n_particles']} particles", "failed": lambda j: f"failed: {j.error}"}
    parts = [f"{name} (job #{j.id}, {said[j.state](j) if j.state in said else 'queued'})" for name, j in queued]
    finished = all(j.state in said for _, j in queued)
    flash("error" if any(j.state == "failed" for _, j in queued) else "success" if finished else "info",
          "Analyses with these strokes: " + "; ".join(parts)
          + ("." if finished else ". They run in the background; follow them in the sidebar."))
    st.rerun()


def unlike_note(painted: Sample, targets: list[Sample]) -> str | None:
    """A sentence naming the chosen samples unlike the one painted (QA: a nano-CT slice's strokes were offered to
    the synthetic demos and a FIB-SEM image without a word): another voxel size (more than 10 % apart on an axis:
    the features' scales are in µm), or a synthetic demo for strokes painted on a scan or the other way round.
    None where all are alike."""
    from .tables import voxel_text

    def voxel(s: Sample) -> str:
        return voxel_text(s.spacing)

    out = []
    for t in targets:
        why = []
        if any(abs(a - b) > 0.1 * max(a, b) for a, b in zip(t.spacing, painted.spacing)):
            why.append(f"voxel {voxel(t)}")
        if t.is_demo != painted.is_demo:
            why.append("a synthetic demo" if t.is_demo else "a scan, not a synthetic demo")
        if why:
            out.append(f"{t.name} ({', '.join(why)})")
    if not out:
        return None
    demo = ", a synthetic demo" if painted.is_demo else ""
    return (f"The strokes were painted on {painted.name} (voxel {voxel(painted)}{demo}); {'; '.join(out)} "
            f"{'is' if len(out) == 1 else 'are'} unlike it: the classifier learns the grey values "
            "and textures painted here, so check their phases on their own Segment pages, or paint on them.")


def _classifier_preview(sample: Sample, ref: cache.VolumeRef, scribbles: Scribbles, axis: int, index: int,
                        grey: np.ndarray, f: int, opacity: float, threshold: float,
                        window: paint.Window | None = None) -> None:
    """The classifier's phases on the painted slice, or on the ``window`` of it the canvas shows."""
    where = f"slice {render.AXES[axis]} = {index}" + ("" if window is None else ", the canvas's window")
    st.caption(painted_summary(scribbles) + ".")
    if (second := one_slice_note(scribbles)) is not None and enough_painted(scribbles):
        st.caption(second)
    if not enough_painted(scribbles):
        st.info("Paint at least two of pore, CBD and NMC (a few strokes inside each) to see the phases the "
                "classifier learns from them.")
        return
    try:
        pv = paint.preview(ref, tuple(float(s) for s in sample.spacing), scribbles, axis, index, CLASSIFIER_PARAMS)
    except (ValueError, MemoryError) as exc:
        st.error(one_sentence(exc, alone=True))
        return
    outside = _fill_pixels(ref, axis, index, None)  # the run holds a fill as no material, whatever the guess there
    conf = pv.confidence if outside is None else np.where(outside, np.float32(1), pv.confidence)
    img = paint.low_confidence_rgb(render.phase_overlay(grey, pv.phases, opacity), conf, threshold)
    caption = f"{where}: the classifier's phases; magenta where its confidence is below {threshold:.2f}"
    if outside is not None:
        img[outside] = grey[outside]
        caption += " (the fill outside the field of view uncoloured: no material)"
    if window is not None:
        img = img[window[0][0]:window[0][1], window[1][0]:window[1][1]]
    st.image(_enlarge(img, f), caption=caption, width="content")
    st.caption(f"Trained in {pv.train_s:.2f} s, this slice classified in {pv.predict_s:.2f} s. "
               + where_to_paint(*paint.low_confidence_where(pv.phases, conf, threshold)))
    st.html(charts.phase_legend_html())
    fr = compute.phase_fractions(pv.phases if outside is None else pv.phases[~outside])
    cols = st.columns(3)
    cols[0].metric("pore (this slice)", f"{fr['pore']:.1%}")
    cols[1].metric("CBD (this slice)", f"{fr['cbd']:.1%}")
    cols[2].metric("NMC (this slice)", f"{fr['nmc']:.1%}")
    if outside is not None:
        st.caption(f"Shares of this slice's field of view: the fill outside it ({int(outside.sum()):,} pixels) is left "
                   "out.")


#: The Segment page's *Depth runs over* choice, in words.
DEPTH_FROM_LABELS = {"electrode": "the electrode (its surface found from the NMC profile)",
                     "volume": "the imaged volume"}


def depth_from_choice(sample: Sample, latest: Analysis | None, shape=None) -> str:
    """What the table's ``depth_frac`` runs over (:attr:`core.pipeline.AnalysisParams.depth_from`): the electrode by
    default, the latest analysis's choice where it chose the volume.  A single slice across its thickness axis
    (``shape``) has no depth: no choice offered (QA), one caption."""
    from core.slices import slice_axis

    key = state.k(state.SEG_DEPTH_FROM, sample.id)
    state.init(key, latest.resolved.depth_from if latest is not None else "electrode")
    if shape is not None and slice_axis(shape) == sample.axis:
        st.caption(f"Depth: none (a single slice across the thickness axis, {render.AXES[sample.axis]}).")
        return str(st.session_state[key])
    return str(st.radio(
        "Depth (depth_frac) runs over", tuple(DEPTH_FROM_LABELS), key=key, horizontal=True,
        format_func=DEPTH_FROM_LABELS.get, persist_state=state.PERSIST,
        help="The electrode: from its separator-side surface to its other face, where a slice's NMC share reaches "
             "half its plateau, so that a margin of pore, mounting medium or separator in the scan is not depth. "
             "The imaged volume: from face to face of the stack, as earlier versions of this tool measured it (for a "
             "circular field of view around an in-plane thickness axis, or an electrode whose NMC thins out "
             "towards a face)."))


METHOD_WORDS = {"threshold": "thresholds", "model": "the trained 3D U-Net",
                "classifier": "a classifier trained on brush strokes"}


def analysed_phases_section(ws: Workspace, sample: Sample, latest: Analysis, method: str) -> None:
    """The phases the latest analysis stored, over the grey values of a slice: what the particles were found in.

    The preview above shows the method chosen now (one choice for all samples); where the latest analysis made its
    phases otherwise (a sample classified with strokes painted on another, QA), that is said and this view opens
    by itself."""
    made = latest.resolved.method
    differs = made != method
    if differs:
        st.info(f"Analysis #{latest.id} made its phases with {METHOD_WORDS.get(made, made)}; the preview above is of "
                f"{METHOD_WORDS.get(method, method)}. Its phases are shown below.")
    rref = cache.ResultRef.of(ws, latest)
    with st.expander(f"Phases of analysis #{latest.id} on a slice", expanded=differs, icon=":material/layers:",
                     key=state.k(state.SEG_DONE_EXPANDER, sample.id, latest.id)):
        phases, _ = cache.result_arrays(rref)
        sid = sample.id
        axis, index = widgets.slice_picker(state.k(state.SEG_DONE_AXIS, sid), state.k(state.SEG_DONE_INDEX, sid),
                                           tuple(phases.shape), label="Slice")
        ph2d = np.asarray(cache.phase_slice(rref, axis, index))
        try:
            grey = cache.grey_image(cache.VolumeRef.of(ws, sample), axis, index)
        except (OSError, ValueError, TypeError):  # the source moved: the phases alone
            grey = None
        if grey is None or grey.shape[:2] != ph2d.shape:  # the sample read otherwise since (a new crop)
            from .phase_map_view import phase_codes_rgb

            img, on = phase_codes_rgb(ph2d), "phases"
        else:
            opacity = float(st.session_state.get(state.SEG_OPACITY, PHASE_OPACITY))
            img, on = render.phase_overlay(grey, ph2d, opacity), "grey values with the analysed phases over them"
        st.image(render.upscale(img, 520), width="stretch",
                 caption=f"slice {render.AXES[axis]} = {index}: {on} (analysis #{latest.id}, "
                         f"{METHOD_WORDS.get(made, made)})")
        st.html(charts.phase_legend_html())
