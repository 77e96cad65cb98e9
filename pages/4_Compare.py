"""Compare electrodes: distributions, scatter plots, a summary table and slices on one colour scale."""

import numpy as np
import streamlit as st

from ui import cache, charts, compute, render, state, widgets

ws = cache.workspace()
st.title("Compare electrodes")
widgets.show_flash()

analysed = [(s, a) for s in ws.list_samples() if (a := ws.latest_analysis(s.id)) is not None]
if len(analysed) < 2:
    st.info("Comparing needs at least two analysed samples. Analyse more on the **Segment** page.")
    st.stop()

by_id = {s.id: (s, a) for s, a in analysed}
names = [s.name for s, _ in analysed]


def display_name(sid: int) -> str:
    s = by_id[sid][0]
    name = s.name if names.count(s.name) == 1 else f"{s.name} #{s.id}"
    return name + (" (SYNTHETIC)" if s.is_demo else "")


widgets.init(state.CMP_SAMPLES, [s.id for s, _ in analysed[:6]])
st.session_state[state.CMP_SAMPLES] = [i for i in st.session_state[state.CMP_SAMPLES] if i in by_id]
chosen = st.multiselect("Electrodes (latest analysis of each)", list(by_id), key=state.CMP_SAMPLES,
                        format_func=display_name, persist_state=widgets.PERSIST)
if len(chosen) < 2:
    st.info("Pick at least two electrodes.")
    st.stop()
if any(by_id[i][0].is_demo for i in chosen):
    st.caption("SYNTHETIC demo electrodes are generated with known ground truth; they are not measurements.")

refs = {display_name(i): cache.ResultRef.of(ws, by_id[i][1]) for i in chosen}
tables = {n: cache.table(r) for n, r in refs.items()}
groups = {display_name(i): by_id[i][0].group_label for i in chosen}
combined = compute.combine(tables, groups)

st.subheader("Summary per electrode")
summary = compute.summary(tables, groups)
st.dataframe(summary, hide_index=True, key="cmp_summary",
             column_config={c: st.column_config.NumberColumn(format="%.3f") for c in summary.columns
                            if summary[c].dtype.kind == "f"})
st.caption("Detachment = area_pore / (area_pore + area_cbd) per particle; IQR = Q3 − Q1. Particles with no open "
           "interface (enclosed by other particles or the volume edge) have no detachment and are left out.")

st.subheader("Distributions")
numeric = [c for c in combined.columns if combined[c].dtype.kind in "fiu" and c not in ("label",)]
widgets.init(state.CMP_METRIC, "detachment")
widgets.init(state.CMP_KIND, "histogram")
c1, c2 = st.columns([3, 2])
metric = c1.selectbox("Per-particle measure", numeric, key=state.CMP_METRIC, format_func=charts.metric_title,
                      persist_state=widgets.PERSIST)
kind = c2.radio("Show as", ("histogram", "ecdf"), key=state.CMP_KIND, horizontal=True, persist_state=widgets.PERSIST,
                format_func={"histogram": "histogram", "ecdf": "cumulative (ECDF)"}.get)
st.altair_chart(charts.distribution(combined, metric, kind), width="stretch")

c1, c2 = st.columns(2)
with c1:
    st.altair_chart(charts.scatter(combined, "equiv_diameter_um"), width="stretch")
with c2:
    st.altair_chart(charts.scatter(combined, "depth_frac"), width="stretch")

st.subheader("Slices at the same depth")
widgets.init(state.CMP_DEPTH, 0.5)
depth = st.slider("Depth (0 = separator side, 1 = current collector)", 0.0, 1.0, key=state.CMP_DEPTH, step=0.01,
                  persist_state=widgets.PERSIST)
cols = st.columns(len(chosen))
for col, sid in zip(cols, chosen):
    sample, analysis = by_id[sid]
    name = display_name(sid)
    ref = refs[name]
    params = widgets.latest_params(analysis)
    axis, side = params.axis, params.separator_side
    phases, labels = cache.result_arrays(ref)
    index = render.depth_index(depth, labels.shape[axis], side)
    lab2d = cache.label_slice(ref, axis, index)
    t = tables[name]
    colours = render.label_colour_table(t["label"].to_numpy(), t["detachment"].to_numpy(), int(labels.max()))
    try:
        vref = cache.VolumeRef.of(ws, sample)
        lo, hi = cache.contrast(vref, 0.5, 99.5)
        base = render.grey_rgb(cache.grey_slice(vref, axis, index), lo, hi)
    except (OSError, ValueError, TypeError):
        base = render.grey_rgb(np.zeros_like(lab2d, dtype=np.float32), 0, 1)
    img = render.particle_overlay(base, lab2d, colours, mode="fill")
    with col:
        st.image(render.upscale(img, 420), width="stretch",
                 caption=f"{name}: {render.AXES[axis]} = {index} (depth {depth:.2f}, separator at the {side})")
st.altair_chart(charts.colorbar(), width="stretch")

from ui import exports  # noqa: E402  (downloads: tables, charts, report, recipe)
exports.compare_section(ws)
