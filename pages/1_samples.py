"""Samples: the catalogue, adding a sample (demo / server file / upload), its metadata, slices, deletion."""

import streamlit as st

from core.records import Attribute
from core.synth import DEMO_C_RATES, DEMO_DESCRIPTIONS, DEMO_ELECTRODES
from ui import (cache, file_browser, forms, jobs, messages, page, phase_map_view, samples_view, settings, startup, state,
                tables, widgets)

page.through_app()  # a first run in Streamlit's pages-folder mode: through app.py (ui.page)

ws = cache.workspace()
st.title("Samples")
messages.show_flash()

table = tables.catalogue_table(ws)
if len(table):
    st.dataframe(table, placeholder=tables.MISSING, hide_index=True, key=state.SAMPLES_TABLE, width="stretch",
                 column_config={
        "status": st.column_config.TextColumn("status", width="medium"),
        "source": st.column_config.TextColumn("source", width="medium",
                                              help="Relative to the data folder; hover a cell for the whole path."),
        "size (voxels)": st.column_config.TextColumn(
            "size (voxels)", help="The file's shape (z×y×x), then (→) as read after its crop, its slices' alignment "
                                  "and its downsampling; hover a cell for the whole of it."),
    })
else:
    st.info("The workspace is empty: add a demo electrode, a file from the data folder, or upload a small volume.")


def _add(name: str, source: str, meta: forms.SampleMetadata, options: dict, factor: int = 1) -> str:
    """Add the sample and switch to it (reruns the page); returns the one-sentence error it showed otherwise."""
    spacing = tuple(v * factor for v in meta.spacing)  # the voxel size as analysed
    if factor > 1:
        options = {**options, "downsample": factor}
    try:
        # a name left empty takes the file's, made free as the form's proposal is (QA walk 12: the empty name took
        # "cal96" a second time)
        given = meta.name.strip() or forms.unique_name(name, [x.name for x in ws.list_samples()])
        demo = source.removeprefix("demo:") if source.startswith("demo:") else None
        s = ws.add_sample(given, source, spacing=spacing, group_label=meta.group_label,
                          axis=meta.axis, separator_side=meta.separator_side, source_options=options,
                          # a demo comes with its C-rate, as on the first start (QA walk 16: added here, it had none)
                          attributes=[Attribute("C-rate", DEMO_C_RATES[demo], "C")] if demo in DEMO_C_RATES else ())
    except (ValueError, TypeError) as exc:
        msg = messages.one_sentence(exc, alone=True)
        st.error(msg)
        return msg
    st.session_state[state.PENDING_SAMPLE] = s.id
    st.session_state[state.ADD_CLOSE] = True  # the form closes on the sample added (at the page's next run)
    # and, opened again, proposes a free name (QA walk 13: the name just added was kept and said in red to be taken)
    for key in [k for k in st.session_state if str(k).startswith(state.k(state.META_NAME, "add", ""))]:
        del st.session_state[key]
    if s.is_demo:  # analysed with the defaults at once, as the first start's demos are (it waited for a new session)
        from core.pipeline import AnalysisParams

        job = jobs.submit(ws, s, AnalysisParams(), what=startup.DEMO_JOB)
        if job is not None:
            messages.flash("success", f"Added sample '{s.name}'; its analysis with the default settings is job "
                                      f"#{job.id} (progress in the sidebar).")
            st.rerun()
    messages.flash("success", f"Added sample '{s.name}'. Segment it on the Segment page.")
    st.rerun()


def _options(opts: dict, info: dict, phase_map: str | None) -> dict:
    """The stored source options of a file: how to read it, its shape and, already segmented, its phase map."""
    out = {"read": opts, "shape": info["shape"]}
    if phase_map:
        out["phase_map"] = phase_map
    return out


# open on an empty workspace; then as the user leaves it (its key keeps it open while a message above it comes or
# goes, or a sample is added meanwhile by a colleague or the demo electrodes landing), closed on a sample added here
state.init(state.ADD_EXPANDER, not len(table))
if st.session_state.pop(state.ADD_CLOSE, False):
    st.session_state[state.ADD_EXPANDER] = False
names = [s.name for s in ws.list_samples()]  # a new sample's name must be another (forms.sample_metadata)
DEMO_SIZE_RANGE = (16, 320)  # voxels per edge of a demo added here (at 320³ its analysis takes minutes on 2 cores)
with st.expander("Add a sample", icon=":material/add:", key=state.ADD_EXPANDER, on_change="rerun"):
    tab_demo, tab_server, tab_upload = st.tabs(["Demo electrode (SYNTHETIC)", "Server data folder", "Upload"])

    with tab_demo:
        demo = st.selectbox("Demo electrode", list(DEMO_ELECTRODES), key=state.ADD_DEMO,
                            format_func=lambda n: f"{n} — {DEMO_DESCRIPTIONS[n]}")
        state.init(state.ADD_DEMO_SIZE, settings.demo_size())
        # no bounds on the widget: a number typed outside them was kept at the last valid one, and the button added
        # that (QA: 352 typed, a 160³ electrode added); refused here in one sentence instead, the button disabled
        size = st.number_input("Size (voxels per edge)", key=state.ADD_DEMO_SIZE, step=16)
        size_ok = DEMO_SIZE_RANGE[0] <= int(size) <= DEMO_SIZE_RANGE[1]
        if size_ok:
            st.caption(f"At {int(size)}³ voxels: {settings.demo_time_text(int(size))}.")
        else:
            st.error(f"A demo electrode of the dashboard is {DEMO_SIZE_RANGE[0]} to {DEMO_SIZE_RANGE[1]} voxels per "
                     f"edge (its analysis runs on this server), not {int(size)}.")
        st.caption("SYNTHETIC: generated with known ground truth (core.synth), not a measurement.")
        meta = forms.sample_metadata(("add", "demo", demo), name=forms.unique_name(demo, names), taken=names,
                                     group="SYNTHETIC demo", spacing=settings.demo_spacing(demo), axis=0, side="start")
        if st.button("Add demo electrode", key=state.k(state.ADD_SUBMIT, "demo"), type="primary",
                     disabled=meta is None or not size_ok) and meta is not None and size_ok:
            seed = list(DEMO_ELECTRODES).index(demo)
            _add(demo, f"demo:{demo}", meta, {"shape": [int(size)] * 3, "seed": seed})

    with tab_server:
        pick = file_browser.file_browser(settings.data_dir())
        if pick is not None:
            token = file_browser.path_token(pick.path)
            try:
                opts, info = samples_view.describe_new_file(pick.path, "file", messages.display_path(pick.path))
            except ValueError as exc:
                st.error(str(exc))
            else:
                # the fields are keyed by the dataset too: another dataset of an HDF5 file is filled from its own
                # voxel size (QA: /binned kept /full's 0.398 µm, its caption said "read from the file")
                meta = forms.sample_metadata(
                    ("add", "file", token, *samples_view.dataset_scope(opts)),
                    name=forms.unique_name(samples_view.dataset_name(pick.name, opts), names), taken=names,
                    group="", spacing=info["spacing"], axis=0,
                    side="auto", spacing_help="The file's voxel size; pre-filled from its metadata where present.",
                    shape=info["shape"])
                usable, pmap = phase_map_view.already_segmented(pick.path, opts, "file", token)
                bar = None if pmap else samples_view.sem_notes(pick.path, opts, info, messages.display_path(pick.path),
                                                               ("add", "file", token))
                crop, crop_ok = samples_view.crop_picker(pick.path, opts, info["shape"], "file", token, pmap, bar)
                if crop is not None:
                    opts = {**opts, "crop": crop}
                factor = 1 if pmap else widgets.downsample_picker(state.k(state.ADD_DOWNSAMPLE, "file", token),
                                                                  samples_view.cropped_shape(info["shape"], crop))
                usable = usable and crop_ok
                if st.button("Add this file", key=state.k(state.ADD_SUBMIT, "file"), type="primary",
                             disabled=meta is None or not usable) and meta is not None and usable:
                    _add(pick.name, str(pick.path), meta, _options(opts, info, pmap), factor)

    with tab_upload:
        st.caption("For small volumes (the browser sends the whole file). Big volumes: use the server data folder. "
                   "A file that cannot be added is deleted at once.")
        # no type=: Streamlit would raise on a wrong suffix; samples_view.saved_upload refuses it in one sentence
        up = st.file_uploader("Volume file", key=state.ADD_UPLOAD,
                              help="One of " + ", ".join(file_browser.READ_SUFFIXES) + ".")
        path = samples_view.saved_upload(ws, up)
        if path is not None:
            try:
                opts, info = samples_view.describe_new_file(path, "upload", up.name)
            except ValueError as exc:
                samples_view.reject_upload(ws, up, path, str(exc))
            else:
                meta = forms.sample_metadata(("add", "upload", up.file_id, *samples_view.dataset_scope(opts)),
                                             name=forms.unique_name(samples_view.dataset_name(
                                                 file_browser.sample_name(path), opts), names), taken=names,
                                             group="", spacing=info["spacing"], axis=0, side="auto",
                                             spacing_help="The file's voxel size.", shape=info["shape"])
                usable, pmap = phase_map_view.already_segmented(path, opts, "upload", up.file_id)
                bar = None if pmap else samples_view.sem_notes(path, opts, info, up.name, ("add", "upload", up.file_id))
                crop, crop_ok = samples_view.crop_picker(path, opts, info["shape"], "upload", up.file_id, pmap, bar)
                if crop is not None:
                    opts = {**opts, "crop": crop}
                factor = 1 if pmap else widgets.downsample_picker(
                    state.k(state.ADD_DOWNSAMPLE, "upload", up.file_id), samples_view.cropped_shape(info["shape"], crop))
                usable = usable and crop_ok
                if st.button("Add uploaded volume", key=state.k(state.ADD_SUBMIT, "upload"), type="primary",
                             disabled=meta is None or not usable) and meta is not None and usable:
                    error = _add(file_browser.sample_name(path), str(path), meta, _options(opts, info, pmap), factor)
                    samples_view.reject_upload(ws, up, path, error, show=False)

sample = widgets.current_sample(ws)
if sample is None:
    st.stop()

st.divider()
st.header(f"{sample.name}")
page.demo_badge(sample)
samples_view.details_section(ws, sample)
phase_map_view.edit_section(ws, sample)
samples_view.crop_section(ws, sample)
samples_view.attributes_section(ws, sample)
page.aligned_note(ws, sample)  # before the read: the way out where an alignment no longer fits the file
ref, vol = page.read_volume(ws, sample)
if vol is not None:
    page.fill_note(ws, ref, sample)
    if not sample.input.presegmented:
        huge = samples_view.huge_values_note(cache.grey_values(ref), vol.dtype)
        if huge:
            st.warning(huge)
    page.alignment_note(ws, ref, sample)
    samples_view.slice_viewer(ref, vol, sample)
analyses = ws.list_analyses(sample.id)
samples_view.analyses_section(ws, sample, analyses)
samples_view.delete_section(ws, sample, analyses)
