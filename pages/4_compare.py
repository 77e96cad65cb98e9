"""Compare electrodes, each through its pinned analysis (named, changeable, kept in the URL): summary with CIs,
weighted distributions, tests between electrodes, trends, electrodes on an attribute axis (C-rate, cycles...),
slices.

Each section is one function of ``ui.compare_view`` (or of another ``ui`` module) taking the same context;
the statistics are computed in ``core.compare``.
"""

import streamlit as st

from ui import cache, compare_view, exports, messages, page, sections

page.through_app()  # a first run in Streamlit's pages-folder mode: through app.py (ui.page)

ws = cache.workspace()
exports.begin_page()
st.title("Compare electrodes")
messages.show_flash()

ctx = compare_view.select(ws)
edge_policy = compare_view.edge_policy_picker()

# ---- summary per electrode
st.subheader("Summary per electrode")
summary = compare_view.summary_section(ctx, edge_policy)

# ---- distributions of any per-particle measure
st.subheader("Distributions")
metric = compare_view.distributions_section(ctx, edge_policy)

# ---- tests between electrodes (the measure chosen above)
st.subheader("Differences between electrodes")
compare_view.tests_section(ctx, metric, edge_policy)

# ---- trends with size and depth
st.subheader("Detachment against size and depth")
compare_view.trends_section(ctx, edge_policy)

# ---- electrodes on an axis (a sample attribute: C-rate, cycles, SOC...)
st.subheader("Electrodes on an axis")
axis_trend = compare_view.axis_section(ctx, edge_policy)

# ---- slices
st.subheader("Slices at the same depth")
compare_view.slices_section(ctx)

# ---- isolated particles (contact graph) and segmentation uncertainty
sections.isolation_section(ws, list(ctx.names), name_of=ctx.names.get, analysis_of=ctx.analysis_of,
                           kept={n: t["label"].to_numpy() for n, t in ctx.tables.items()},
                           min_diameter_um=ctx.min_diameter_um)
sections.uncertainty_section(ws, list(ctx.names), name_of=ctx.names.get, analysis_of=ctx.analysis_of,
                             edge_policy=edge_policy, min_diameter_um=ctx.min_diameter_um)

# ---- downloads: tables, charts, report, recipe
exports.compare_section(ctx, edge_policy=edge_policy, summary=summary, metric=metric, axis_trend=axis_trend)
