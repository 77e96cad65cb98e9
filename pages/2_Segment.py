"""Segment: thresholds on the grey-value histogram, a live one-slice preview, and the full analysis run."""

import streamlit as st

from core.nn.params import ModelParams
from core.pipeline import AnalysisParams
from core.phases import RESOLVABLE_GAP_SIGMAS, pv_sigma_warning, resolvable_gap_um, suggested_downsample
from ui import cache, charts, compute, forms, messages, page, render, state, widgets

ws, sample = page.sample_page("Segment")
sid = sample.id
ref, vol = page.require_volume(ws, sample)
latest = ws.latest_analysis(sid)

state.init(state.SEG_METHOD, "threshold")
method = st.radio(
    "Method", ("threshold", "model"), key=state.SEG_METHOD, horizontal=True, persist_state=state.PERSIST,
    format_func={"threshold": "Thresholds (+ partial-volume correction)",
                 "model": "Trained 3D U-Net (phases and particles)"}.get,
)
mparams = ModelParams()
if method == "model":
    st.caption(forms.model_card_line(mparams))

hist, vmin, vmax = cache.histogram(ref)
left, right = st.columns([5, 6], gap="large")
with left:
    st.subheader("Grey values")
    choice = forms.segment_params(sample, ref, vmin, vmax, latest)
    params = choice.params
    st.altair_chart(charts.grey_histogram(hist, choice.low, choice.high), width="stretch")
    st.caption("Histogram of a strided sample of about a million voxels of the raw volume; the thresholds apply "
               "to the volume after the chosen denoising (none by default).")

with right:
    st.subheader("Preview (one slice)")
    axis, index = widgets.slice_picker(state.k(state.SEG_AXIS, sid), state.k(state.SEG_INDEX, sid), vol.shape,
                                       label="Preview slice")
    state.init(state.SEG_OPACITY, 0.45)
    opacity = st.slider("Phase colour opacity", 0.0, 1.0, key=state.SEG_OPACITY, step=0.05,
                        persist_state=state.PERSIST)
    lo, hi = cache.contrast(ref, 0.5, 99.5)
    grey = render.grey_rgb(cache.grey_slice(ref, axis, index), lo, hi)
    if method == "model" or params is not None:
        try:
            ph2d = (cache.preview_model(ref, axis, index, mparams) if method == "model"
                    else cache.preview_phases(ref, axis, index, params))
        except (ValueError, MemoryError) as exc:
            st.error(messages.one_sentence(exc))
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
    else:
        st.image(render.upscale(grey, 520), width="stretch", caption=f"slice {render.AXES[axis]} = {index}")

st.divider()
st.subheader("Full analysis")
sep = page.latest_params(latest).separation
if method == "model":
    st.caption("Runs the 3D U-Net over the whole volume tile by tile, identifies the particles from its instance "
               f"cue (merge ratio {sep.merge_ratio:g}) and measures each particle. The result is stored in the "
               "workspace.")
else:
    st.caption("Segments the whole volume with these settings, separates the particles "
               f"(h = {sep.h_um:g} µm, merge ratio {sep.merge_ratio:g}; change them on the Particles page) and "
               "measures each particle. The result is stored in the workspace.")
run = st.button("Run the full analysis", key=state.k(state.SEG_RUN, sid), type="primary",
                disabled=params is None and method == "threshold")
if run and (params is not None or method == "model"):
    if method == "model":
        ap = AnalysisParams(method="model", particles="model", separation=sep, model=mparams)
    else:
        ap = AnalysisParams(method="threshold", segment=params, separation=sep)
    a = widgets.run_with_progress("Analysis", lambda progress: ws.run_analysis(sid, vol, ap, progress=progress))
    if a is not None:
        messages.flash("success", f"Analysis {a.id} done: {a.n_particles} particles. See the Particles page.")
        st.rerun()

if latest is not None:
    fr = cache.phase_fractions(cache.ResultRef.of(ws, latest))
    seg = latest.resolved_params.get("segment", {})
    c = st.columns(5)
    c[0].metric("latest analysis", f"#{latest.id}")
    c[1].metric("particles", latest.n_particles)
    c[2].metric("pore (volume)", f"{fr['pore']:.1%}")
    c[3].metric("CBD (volume)", f"{fr['cbd']:.1%}")
    c[4].metric("NMC (volume)", f"{fr['nmc']:.1%}")
    if latest.resolved_params.get("method") == "model":
        st.caption("Phases by the 3D U-Net; particles by "
                   f"{'its instance cue' if latest.resolved_params.get('particles') == 'model' else 'the watershed'}.")
    else:
        st.caption(f"Thresholds used: {seg.get('low', float('nan')):.0f} / {seg.get('high', float('nan')):.0f} "
                   f"grey; denoise {seg.get('denoise')}"
                   f"{'' if seg.get('denoise') == 'none' else ' (' + str(seg.get('denoise_size')) + ')'}; "
                   "partial-volume blur σ = "
                   f"{seg.get('pv_sigma')} voxels.")
        if seg.get("partial_volume") and seg.get("pv_sigma"):
            gap = resolvable_gap_um(float(seg["pv_sigma"]), sample.spacing)
            st.caption(f"At this blur, gaps between a particle and its CBD narrower than about {gap:.2f} µm "
                       f"({RESOLVABLE_GAP_SIGMAS:g} σ) read increasingly as contact, so detachment comes out too "
                       "low where the gaps are that thin (measured on synthetic electrodes; see the README).")
            estimated = (latest.params.get("segment") or {}).get("pv_sigma") is None
            too_blurred = pv_sigma_warning(float(seg["pv_sigma"]), sample.downsample, estimated=estimated)
            if too_blurred:
                st.warning(too_blurred)
                widgets.downsampled_copy_button(ws, sample, vol.shape, suggested_downsample(
                    float(seg["pv_sigma"]), sample.downsample, estimated=estimated))
else:
    st.info("Not analysed yet.")
failed = ws.latest_analysis(sid, status=None)
if failed is not None and failed.status == "failed":
    st.warning(f"The last run (#{failed.id}) failed: {failed.error}")
