"""3D: particle surfaces coloured by detachment, optionally with the CBD as a translucent surface
(interactive vtk.js, or a static image)."""

import streamlit as st

from ui import cache, charts, page, state
from ui.view3d import CBD_OPACITY, CBD_OPACITY_RANGE, MAX_TRIANGLES

ws, sample = page.sample_page("3D")
latest = page.require_analysis(ws, sample, "its particles in 3D")
params = page.latest_params(latest)

state.init(state.V3_DEPTH, (0.0, 1.0))
state.init(state.V3_MAX_TRI, 100_000)
state.init(state.V3_MODE, "interactive")
state.init(state.V3_CBD, False)
state.init(state.V3_CBD_OPACITY, CBD_OPACITY)
c1, c2, c3 = st.columns([3, 2, 2])
depth = c1.slider("Depth range shown (0 = separator side, 1 = current collector)", 0.0, 1.0, key=state.V3_DEPTH,
                  step=0.05, persist_state=state.PERSIST)
max_tri = c2.select_slider("Triangle budget", (20_000, 40_000, 60_000, 100_000), key=state.V3_MAX_TRI,
                           persist_state=state.PERSIST, format_func=lambda n: f"{n // 1000}k",
                           help=f"At most {MAX_TRIANGLES // 1000}k: browsers without a GPU redraw big meshes slowly.")
mode = c3.radio("View", ("interactive", "image"), key=state.V3_MODE, persist_state=state.PERSIST,
                format_func={"interactive": "interactive (rotate, zoom)", "image": "static image"}.get)
d1, d2 = st.columns([3, 4])
show_cbd = d1.checkbox("Show the CBD (carbon-binder) as a translucent grey surface", key=state.V3_CBD,
                       persist_state=state.PERSIST,
                       help="The CBD surface takes at most a third of the triangle budget, the particles the rest.")
cbd_opacity = d2.slider("CBD opacity", *CBD_OPACITY_RANGE, key=state.V3_CBD_OPACITY, step=0.05,
                        persist_state=state.PERSIST, disabled=not show_cbd)
if depth[1] <= depth[0]:
    st.error("Pick a depth range of non-zero width.")
    st.stop()

ref = cache.ResultRef.of(ws, latest)
view = cache.View3DParams(depth_range=(float(depth[0]), float(depth[1])), max_triangles=int(max_tri),
                          interactive=mode == "interactive", show_cbd=bool(show_cbd),
                          cbd_opacity=round(float(cbd_opacity), 2) if show_cbd else CBD_OPACITY)
out = cache.view3d(ref, view, params.axis, params.separator_side, tuple(sample.spacing))

if out["html"] is not None:
    # st.iframe is the successor of st.components.v1.html (deprecated in Streamlit 1.5x)
    st.iframe(out["html"], height=640)
elif out["png"] is not None:
    if out["error"] and view.interactive:
        st.warning(f"The interactive view is not available ({out['error']}); showing a static image instead.")
    st.image(out["png"], width="stretch")
else:
    st.info(f"Nothing to show: {out['error']}.")
st.altair_chart(charts.colour_bar(), width="stretch")
stride_note = f"; labels sampled every {out['stride']} voxels to fit the budget" if out["stride"] > 1 else ""
cbd_note = ""
if view.show_cbd:
    if out["n_cbd_triangles"]:
        cbd_stride = (f", phases sampled every {out['cbd_stride']} voxels to fit the budget"
                      if out["cbd_stride"] > 1 else "")
        cbd_note = (f" CBD (carbon-binder): translucent grey surface, {out['n_cbd_triangles']:,} triangles, "
                    f"opacity {view.cbd_opacity:.2f}{cbd_stride}.")
    else:
        cbd_note = " No CBD in this depth range."
st.caption(f"{out['n_particles']} particles, {out['n_triangles']:,} triangles{stride_note}.{cbd_note} "
           f"Coordinates in µm; the thickness axis is {'zyx'[params.axis]}, separator at its "
           f"{params.separator_side}.")
