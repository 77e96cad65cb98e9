"""Sections of the Samples page about the current sample: details, orthogonal slices, analyses, deletion."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.workspace import Analysis, Sample, Workspace

from . import cache, forms, render, state, tables
from .messages import flash, one_sentence
from .render import AXES


def details_section(ws: Workspace, sample: Sample) -> None:
    """The sample's metadata, editable, with its source; a warning when the latest analysis used another voxel size."""
    sid = sample.id
    with st.expander("Sample details", expanded=False):
        meta = forms.sample_metadata(("edit", sid), name=sample.name, group=sample.group_label,
                                     spacing=sample.spacing, axis=sample.axis, side=sample.separator_side)
        if st.button("Save details", key=state.k(state.EDIT_SAVE, sid)):
            try:
                ws.update_sample(sid, **meta.as_kwargs())
                flash("success", "Saved. Changed voxel size, axis or separator side apply to the next analysis.")
                st.rerun()
            except (ValueError, TypeError) as exc:
                st.error(one_sentence(exc))
        st.caption(f"Source: `{sample.source}`")
        if sample.downsample > 1:
            st.caption(f"Downsampled by {sample.downsample} when loaded: the voxel size above is the one analysed, "
                       f"{sample.downsample} × the file's ("
                       + " × ".join(f"{v / sample.downsample:g}" for v in sample.spacing) + " µm). To change the "
                       "factor, add the file again.")

    latest = ws.latest_analysis(sid)
    if latest is not None:
        used = latest.provenance.get("spacing_um")
        if used and any(abs(a - b) > 1e-9 for a, b in zip(used, sample.spacing)):
            st.warning(f"The latest analysis used voxel size {used} µm; the sample now says "
                       f"{list(sample.spacing)} µm. Rerun the analysis (Segment page) to update the measurements.")


@st.fragment
def slice_viewer(ref: cache.VolumeRef, vol: np.ndarray, sample: Sample) -> None:
    """Three orthogonal slices with a shared contrast slider (a fragment: moving a slider reruns only this)."""
    sid = sample.id
    st.subheader("Orthogonal slices")
    state.init(state.k(state.VIEW_CONTRAST, sid), (1.0, 99.0))
    pct = st.slider("Contrast: grey-value percentiles mapped to black and white (%)", 0.0, 100.0,
                    key=state.k(state.VIEW_CONTRAST, sid), step=0.5)
    lo, hi = cache.contrast(ref, pct[0], pct[1])
    cols = st.columns(3)
    for axis, col in enumerate(cols):
        n = vol.shape[axis]
        key = state.k(state.VIEW_INDEX, AXES[axis], sid)
        state.init(key, n // 2)
        with col:
            idx = st.slider(f"{AXES[axis]} index (voxels, 0–{n - 1})", 0, max(n - 1, 1), key=key, disabled=n <= 1)
            img = render.grey_rgb(cache.grey_slice(ref, axis, min(idx, n - 1)), lo, hi)
            st.image(render.upscale(img, 360), caption=f"slice ⊥ {AXES[axis]} at {AXES[axis]} = {idx} "
                     f"({idx * sample.spacing[axis]:.1f} µm)", width="stretch")
    st.caption(f"Volume {'×'.join(map(str, vol.shape))} voxels (z×y×x), {vol.dtype}; "
               f"display range {lo:.0f}–{hi:.0f} grey units.")


def analyses_section(analyses: list[Analysis]) -> None:
    if analyses:
        with st.expander(f"Analyses of this sample ({len(analyses)})"):
            st.dataframe(tables.analyses_table(analyses), hide_index=True)


def delete_section(ws: Workspace, sample: Sample, analyses: list[Analysis]) -> None:
    """Delete the sample with its analyses, after a confirmation tick."""
    sid = sample.id
    with st.expander("Delete this sample", icon=":material/delete:"):
        st.write(f"Deletes **{sample.name}** from the workspace with its {len(analyses)} analyses and their files"
                 + (" and the uploaded file." if "uploads" in sample.source else ". The source file is not touched."))
        ok = st.checkbox("Yes, delete it", key=state.k(state.DELETE_CONFIRM, sid))
        if st.button("Delete sample", key=state.k(state.DELETE_BUTTON, sid), disabled=not ok, type="primary"):
            ws.delete_sample(sid)
            st.session_state[state.SAMPLE_ID] = None
            st.session_state[state.PENDING_SAMPLE] = None
            flash("success", f"Deleted sample '{sample.name}'.")
            st.rerun()
