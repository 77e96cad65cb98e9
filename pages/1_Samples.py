"""Samples: the catalogue, adding a sample (demo / server file / upload), its metadata, slices, deletion."""

import json

import streamlit as st

from core.synth import DEMO_DESCRIPTIONS, DEMO_ELECTRODES
from ui import cache, file_browser, forms, messages, page, samples_view, settings, state, tables, widgets

ws = cache.workspace()
st.title("Samples")
messages.show_flash()

table = tables.catalogue_table(ws)
if len(table):
    st.dataframe(table, hide_index=True, key=state.SAMPLES_TABLE)
else:
    st.info("The workspace is empty: add a demo electrode, a file from the data folder, or upload a small volume.")


def _add(name: str, source: str, meta: forms.SampleMetadata, options: dict, factor: int = 1) -> None:
    spacing = tuple(v * factor for v in meta.spacing)  # the voxel size as analysed
    if factor > 1:
        options = {**options, "downsample": factor}
    try:
        s = ws.add_sample(meta.name or name, source, spacing=spacing, group_label=meta.group_label,
                          axis=meta.axis, separator_side=meta.separator_side, source_options=options)
    except (ValueError, TypeError) as exc:
        st.error(messages.one_sentence(exc))
        return
    st.session_state[state.PENDING_SAMPLE] = s.id
    messages.flash("success", f"Added sample '{s.name}'. Segment it on the Segment page.")
    st.rerun()


def _probe_and_describe(path, options: dict) -> dict | None:
    try:
        info = cache.probe(str(path), json.dumps(options, sort_keys=True), path.stat().st_mtime)
    except (OSError, ValueError, TypeError, KeyError, MemoryError) as exc:
        st.error(messages.one_sentence(exc))
        return None
    if len(info["shape"]) != 3 or min(info["shape"]) < 1:
        st.error(f"{path.name} is not a 3D volume (shape {info['shape']}).")
        return None
    sp_note = ("voxel size read from the file's metadata" + (" (z assumed equal to x)" if info["z_assumed"] else "")
               if info["from_metadata"] else "no voxel size in the file: 1 µm assumed, CHECK IT below")
    st.caption(f"{info['fmt']} · {'×'.join(map(str, info['shape']))} voxels (z×y×x) · {info['dtype']} · {sp_note}")
    return info


with st.expander("Add a sample", expanded=not len(table), icon=":material/add:"):
    tab_demo, tab_server, tab_upload = st.tabs(["Demo electrode (SYNTHETIC)", "Server data folder", "Upload"])

    with tab_demo:
        demo = st.selectbox("Demo electrode", list(DEMO_ELECTRODES), key=state.ADD_DEMO,
                            format_func=lambda n: f"{n} — {DEMO_DESCRIPTIONS[n]}")
        state.init(state.ADD_DEMO_SIZE, settings.demo_size())
        size = st.number_input("Size (voxels per edge; generation ~3 s and analysis ~4 s at 160)", 16, 320,
                               key=state.ADD_DEMO_SIZE, step=16)
        st.caption("SYNTHETIC: generated with known ground truth (core.synth), not a measurement.")
        meta = forms.sample_metadata(("add", "demo", demo), name=f"{demo}", group="SYNTHETIC demo",
                                     spacing=settings.demo_spacing(demo), axis=0, side="start")
        if st.button("Add demo electrode", key=state.k(state.ADD_SUBMIT, "demo"), type="primary"):
            seed = list(DEMO_ELECTRODES).index(demo)
            _add(demo, f"demo:{demo}", meta, {"shape": [int(size)] * 3, "seed": seed})

    with tab_server:
        chosen = file_browser.file_browser(settings.data_dir())
        if chosen is not None:
            opts = file_browser.read_options(chosen, "file")
            info = _probe_and_describe(chosen, opts)
            if info is not None:
                meta = forms.sample_metadata(
                    ("add", "file", file_browser.path_token(chosen)), name=chosen.stem, group="",
                    spacing=info["spacing"], axis=0, side="auto",
                    spacing_help="The file's voxel size; pre-filled from its metadata where present.")
                factor = widgets.downsample_picker(
                    state.k(state.ADD_DOWNSAMPLE, "file", file_browser.path_token(chosen)), info["shape"])
                if st.button("Add this file", key=state.k(state.ADD_SUBMIT, "file"), type="primary"):
                    _add(chosen.stem, str(chosen), meta, {"read": opts, "shape": info["shape"]}, factor)

    with tab_upload:
        st.caption("For small volumes (the browser sends the whole file). Big volumes: use the server data folder.")
        up = st.file_uploader("Volume file", type=[s.lstrip(".") for s in file_browser.VOLUME_SUFFIXES],
                              key=state.ADD_UPLOAD)
        if up is not None:
            saved = st.session_state.setdefault(state.UPLOADS_SAVED, {})
            if up.file_id not in saved:
                saved[up.file_id] = str(ws.save_upload(up.name, up.getvalue()))
            from pathlib import Path

            path = Path(saved[up.file_id])
            opts = file_browser.read_options(path, "upload")
            info = _probe_and_describe(path, opts)
            if info is not None:
                meta = forms.sample_metadata(("add", "upload", up.file_id), name=path.stem,
                                             group="", spacing=info["spacing"], axis=0, side="auto",
                                             spacing_help="The file's voxel size.")
                factor = widgets.downsample_picker(state.k(state.ADD_DOWNSAMPLE, "upload", up.file_id),
                                                   info["shape"])
                if st.button("Add uploaded volume", key=state.k(state.ADD_SUBMIT, "upload"), type="primary"):
                    _add(path.stem, str(path), meta, {"read": opts, "shape": info["shape"]}, factor)

sample = widgets.current_sample(ws)
if sample is None:
    st.stop()

st.divider()
st.header(f"{sample.name}")
page.demo_badge(sample)
samples_view.details_section(ws, sample)
ref, vol = page.read_volume(ws, sample)
if vol is not None:
    samples_view.slice_viewer(ref, vol, sample)
analyses = ws.list_analyses(sample.id)
samples_view.analyses_section(analyses)
samples_view.delete_section(ws, sample, analyses)
