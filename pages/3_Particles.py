"""Particles: separation parameters, the per-particle table, and a slice with outlines coloured by detachment."""

from dataclasses import replace

import streamlit as st

from ui import cache, charts, forms, messages, page, render, state, widgets

ws, sample = page.sample_page("Particles")
sid = sample.id

latest = ws.latest_analysis(sid)
current = page.latest_params(latest)
state.init(state.k(state.PART_METHOD, sid), current.particles)
how = st.radio("Particles by", ("watershed", "model"), key=state.k(state.PART_METHOD, sid), horizontal=True,
               persist_state=state.PERSIST,
               format_func={"watershed": "Watershed of the distance transform (crack-aware)",
                            "model": "3D U-Net instance cue (runs the model on the greyscale; "
                                     "the phases stay those of the Segment page's method)"}.get)
sep, submitted = forms.separation_form(sample, current.separation, cue=how == "model")
if submitted and sep is not None and how == "model":
    _, vol = page.require_volume(ws, sample)
    params = replace(current, particles="model", separation=sep)
    a = widgets.run_with_progress("Analysis (3D U-Net)", lambda progress: ws.run_analysis(
        sid, vol, params, progress=progress))
    if a is not None:
        messages.flash("success", f"Analysis {a.id}: {a.n_particles} particles.")
        st.rerun()
elif submitted and sep is not None:
    current = replace(current, particles="watershed")
    if latest is not None:
        # reuse the stored phases: only separation and measurement run again
        phases = cache.result_arrays(cache.ResultRef.of(ws, latest))[0]
        params = replace(current, separation=sep)
        a = widgets.run_with_progress("Particle separation", lambda progress: ws.run_analysis(
            sid, phases, params, presegmented=True, progress=progress,
            extra_provenance={"phases_from_analysis": latest.id}))
    else:
        _, vol = page.require_volume(ws, sample)
        params = replace(current, separation=sep)
        a = widgets.run_with_progress("Analysis", lambda progress: ws.run_analysis(
            sid, vol, params, progress=progress))
    if a is not None:
        messages.flash("success", f"Analysis {a.id}: {a.n_particles} particles.")
        st.rerun()

latest = page.require_analysis(ws, sample, "its particles")
ref = cache.ResultRef.of(ws, latest)
table = cache.table(ref)
det = table["detachment"]
c = st.columns(4)
c[0].metric("particles", len(table))
c[1].metric("median detachment", f"{det.median():.2f}" if det.notna().any() else "–")
c[2].metric("touching the volume edge", int(table["touches_edge"].sum()))
c[3].metric("analysis", f"#{latest.id}")

labels_list = [int(v) for v in table["label"]]
sel_key = state.k(state.PART_SELECT, sid)
tbl_key = state.k(state.PART_TABLE, sid, latest.id)
axis_key = state.k(state.PART_AXIS, sid)
index_key = state.k(state.PART_INDEX, sid)
spacing = sample.spacing


def jump_to_selected():
    """Move the slice to the selected particle's centroid."""
    lab = st.session_state.get(sel_key)
    if lab is None or lab not in labels_list:
        return
    row = table.loc[table["label"] == lab].iloc[0]
    axis = st.session_state.get(axis_key, 0)
    cen = row[f"centroid_{render.AXES[axis]}_um"] / spacing[axis]
    st.session_state[state.k(index_key, axis)] = int(round(cen))


def on_table_select():
    rows = st.session_state[tbl_key].selection.rows
    if rows:
        st.session_state[sel_key] = int(table.iloc[rows[0]]["label"])
        jump_to_selected()


left, right = st.columns([6, 5], gap="large")
with left:
    st.subheader("Per-particle table")
    first = ["label", "detachment", "equiv_diameter_um", "depth_frac", "frac_pore", "frac_cbd", "touches_edge"]
    st.dataframe(
        table, key=tbl_key, hide_index=True, on_select=on_table_select, selection_mode="single-row", height=420,
        column_order=first + [c for c in table.columns if c not in first],
        column_config={c: st.column_config.NumberColumn(format="%.3f") for c in table.columns
                       if table[c].dtype.kind == "f"},
    )
    st.download_button("Download the table (CSV)", table.to_csv(index=False).encode(),
                       file_name=f"{sample.name}-analysis{latest.id}-particles.csv", mime="text/csv")
    st.caption("Click a row to show that particle; sort by clicking a column header. Units are in the column "
               "names; detachment = area_pore / (area_pore + area_cbd).")

with right:
    st.subheader("Slice")
    state.init(sel_key, None)
    if st.session_state[sel_key] not in labels_list:
        st.session_state[sel_key] = None
    det_of = dict(zip(labels_list, table["detachment"].to_numpy(float)))
    chosen = st.selectbox(
        "Particle", labels_list, key=sel_key, on_change=jump_to_selected,
        placeholder="none: pick one here or click a table row",
        format_func=lambda v: f"particle {v} (detachment {det_of[v]:.2f})",
    )
    phases, labels = cache.result_arrays(ref)
    axis, index = widgets.slice_picker(axis_key, index_key, labels.shape)
    lab2d = cache.label_slice(ref, axis, index)
    colours = render.label_colour_table(table["label"].to_numpy(), table["detachment"].to_numpy(),
                                        int(labels.max()))
    try:
        vref = cache.VolumeRef.of(ws, sample)
        lo, hi = cache.contrast(vref, 0.5, 99.5)
        base = render.grey_rgb(cache.grey_slice(vref, axis, index), lo, hi)
    except (OSError, ValueError, TypeError):  # the source moved: draw on the phases instead
        base = render.phase_overlay(render.grey_rgb(lab2d * 0, 0, 1), cache.phase_slice(ref, axis, index), 0.5)
    img = render.particle_overlay(base, lab2d, colours, mode="outline", highlight=chosen)
    st.image(render.upscale(img, 520), width="stretch",
             caption=f"slice {render.AXES[axis]} = {index}: particle outlines coloured by detachment"
             + (f"; particle {chosen} highlighted in magenta" if chosen is not None else ""))
    st.altair_chart(charts.colour_bar(), width="stretch")
    if chosen is not None:
        row = table.loc[table["label"] == chosen].iloc[0]
        if lab2d.size and not (lab2d == chosen).any():
            st.caption(f"Particle {chosen} is not in this slice; pick it again to jump to its centre.")
        st.dataframe(row.rename("value").to_frame().astype(str), width="stretch", height=300,
                     key=state.k(state.PART_ROW, sid))

from ui import exports  # noqa: E402  (downloads: tables, charts, report, recipe)
exports.particles_section(ws, sample, latest)
