"""3D: particle surfaces coloured by detachment, optionally with the CBD as a translucent surface
(interactive vtk.js, or a static image); or one particle, face by face, coloured by what each face touches."""

import streamlit as st

from core.slices import is_single_slice
from ui import cache, charts, compare_view, forms, page, particle3d_view

page.through_app()  # a first run in Streamlit's pages-folder mode: through app.py (ui.page)

ws, sample = page.sample_page("3D")
page.require_analysis(ws, sample, "its particles in 3D")
latest = compare_view.shown_analysis(ws, sample)  # the one Compare shows for it (the latest unless picked there)
params = page.latest_params(latest)

if is_single_slice(latest.provenance.get("input_shape")):
    st.info("This sample is a single slice (a 2D image): it has no 3D surfaces to show. Its particles, outlined "
            "and coloured by detachment, are on the Particles page.")
    st.stop()
if particle3d_view.show_picker() == "one":
    particle3d_view.section(ws, sample, latest)
    st.stop()
view = forms.view3d_params()
if view is None:
    st.stop()
ref = cache.ResultRef.of(ws, latest)
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
stride_note = (f"; labels sampled every {out['stride']} voxels to fit the budget (a narrower depth range draws the "
               "particles finer)" if out["stride"] > 1 else "")
cbd_note = ""
if view.show_cbd:
    if out["n_cbd_triangles"]:
        cbd_stride = (f", phases sampled every {out['cbd_stride']} voxels to fit the budget"
                      if out["cbd_stride"] > 1 else "")
        cbd_note = (f" CBD (carbon-binder): translucent grey surface, {out['n_cbd_triangles']:,} triangles, "
                    f"opacity {view.cbd_opacity:.2f}{cbd_stride}.")
    else:
        cbd_note = " No CBD in this depth range."
drawn = out.get("n_drawn")
drawn_note = (f" ({drawn} drawn: the others, a few voxels each, lost their triangles to the sampling or the "
              "triangle budget)" if drawn is not None and drawn < out["n_particles"] else "")
if out.get("centred"):  # a chunked analysis read strided: the count is the table's, by the particles' centres
    drawn_note = (" with their centre in this depth range (of the analysis's table)"
                  + (f"; {drawn} drawn from the labels read every {out['stride']} voxels" if drawn is not None
                     else ""))
st.caption(f"{out['n_particles']} particles{drawn_note}, {out['n_triangles']:,} triangles{stride_note}.{cbd_note} "
           f"Coordinates in µm; the thickness axis is {'zyx'[params.axis]}, separator at its "
           f"{params.separator_side}. Analysis #{latest.id}.")
finer = forms.finer_depth_range(view.depth_range, out["stride"])
if finer is not None:  # sampled coarsely, the particles come out as shards: one click to a slab drawn finely
    st.info(f"Sampled every {out['stride']} voxels, small particles come out as shards. A slab of depth "
            f"{finer[0]:.2f}–{finer[1]:.2f} fits the same budget sampled about every 2 voxels or finer.")
    st.button(f"Show depth {finer[0]:.2f}–{finer[1]:.2f} finer", on_click=forms.set_depth_range, args=(finer,),
              icon=":material/zoom_in:")
