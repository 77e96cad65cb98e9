"""Sections of the Segment page: the method, the grey-value histogram with the threshold widgets, the slice preview."""

from __future__ import annotations

import streamlit as st

from core.nn.params import ModelParams
from core.phases import SegmentParams
from core.workspace import Analysis, Sample

from . import cache, charts, compute, forms, render, state, widgets
from .messages import one_sentence

METHOD_LABELS = {"threshold": "Thresholds (+ partial-volume correction)",
                 "model": "Trained 3D U-Net (phases and particles)"}


def method_picker(mparams: ModelParams) -> str:
    """The segmentation method, ``"threshold"`` or ``"model"`` (one choice for all samples); with the model, a
    line on its weights."""
    state.init(state.SEG_METHOD, "threshold")
    method = st.radio("Method", tuple(METHOD_LABELS), key=state.SEG_METHOD, horizontal=True,
                      persist_state=state.PERSIST, format_func=METHOD_LABELS.get)
    if method == "model":
        st.caption(forms.model_card_line(mparams))
    return method


def grey_values_section(sample: Sample, ref: cache.VolumeRef, latest: Analysis | None) -> forms.SegmentChoice:
    """The threshold and denoising widgets (:func:`ui.forms.segment_params`) over the grey-value histogram."""
    hist, vmin, vmax = cache.histogram(ref)
    st.subheader("Grey values")
    choice = forms.segment_params(sample, ref, vmin, vmax, latest)
    st.altair_chart(charts.grey_histogram(hist, choice.low, choice.high), width="stretch")
    st.caption("Histogram of a strided sample of about a million voxels of the raw volume; the thresholds apply "
               "to the volume after the chosen denoising (none by default).")
    return choice


def preview_section(sample: Sample, ref: cache.VolumeRef, shape, method: str, params: SegmentParams | None,
                    mparams: ModelParams) -> None:
    """One slice with the phases of ``method`` over it, and its phase fractions (the grey slice alone without
    valid ``params``); stops the page with one sentence when the preview fails."""
    sid = sample.id
    st.subheader("Preview (one slice)")
    axis, index = widgets.slice_picker(state.k(state.SEG_AXIS, sid), state.k(state.SEG_INDEX, sid), shape,
                                       label="Preview slice")
    state.init(state.SEG_OPACITY, 0.45)
    opacity = st.slider("Phase colour opacity", 0.0, 1.0, key=state.SEG_OPACITY, step=0.05,
                        persist_state=state.PERSIST)
    grey = cache.grey_image(ref, axis, index)
    if method != "model" and params is None:
        st.image(render.upscale(grey, 520), width="stretch", caption=f"slice {render.AXES[axis]} = {index}")
        return
    try:
        ph2d = (cache.preview_model(ref, axis, index, mparams) if method == "model"
                else cache.preview_phases(ref, axis, index, params))
    except (ValueError, MemoryError) as exc:
        st.error(one_sentence(exc))
        st.stop()
    st.image(render.upscale(render.phase_overlay(grey, ph2d, opacity), 520), width="stretch",
             caption=f"slice {render.AXES[axis]} = {index}: grey values with the phases over them")
    if method != "model":
        st.caption(cache.preview_note(ref, axis, index, params))
    st.html(charts.phase_legend_html())
    fr = compute.phase_fractions(ph2d)
    c = st.columns(3)
    c[0].metric("pore (this slice)", f"{fr['pore']:.1%}")
    c[1].metric("CBD (this slice)", f"{fr['cbd']:.1%}")
    c[2].metric("NMC (this slice)", f"{fr['nmc']:.1%}")
