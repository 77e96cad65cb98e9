"""Dashboard entry: ``streamlit run app.py``.

Page config, the shared sidebar sample picker, the first-start demo analyses (background jobs)
and the router over ``pages/``.
"""

import os

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

from pathlib import Path  # noqa: E402

import streamlit as st  # noqa: E402

# the tab icon is a file of the project: a ":material/…:" icon would be fetched from Google Fonts (fails offline)
st.set_page_config(page_title="Cathode detachment", page_icon=str(Path(__file__).parent / "assets" / "icon.png"),
                   layout="wide")

# The url paths are the names Streamlit derives from the file names in pages/ ("3_particles.py" ->
# "particles").  A run that Streamlit starts in its legacy pages-folder mode (the first run of a process,
# and every AppTest run of this script) finds the page of a deep link by that name and runs the page file
# itself, whose first call (ui.page.through_app) runs this entry script instead: its st.navigation picks
# the page, and the shared sidebar and the first-start step always run.  (Names that differed sent
# Streamlit's "Page not found" dialog over the right page on such a run.)
# (the default page's address is the root; its url_path only names it apart from the hidden page below)
compare = st.Page("pages/4_compare.py", title="Compare", icon=":material/query_stats:", url_path="compare-electrodes",
                  default=True)
pages = [
    st.Page("pages/1_samples.py", title="Samples", icon=":material/inventory_2:", url_path="samples"),
    st.Page("pages/2_segment.py", title="Segment", icon=":material/tune:", url_path="segment"),
    st.Page("pages/3_particles.py", title="Particles", icon=":material/bubble_chart:", url_path="particles"),
    compare,
    st.Page("pages/5_3d.py", title="3D", icon=":material/view_in_ar:", url_path="3d"),
    # the default page's address is the root, so a typed or bookmarked "/compare" found no page ("Page not
    # found" over the Compare page): this hidden one sends it there, its query (?a=..., ?sample=...) kept
    st.Page(lambda: st.switch_page(compare, query_params=dict(st.query_params)), title="Compare",
            url_path="compare", visibility="hidden"),
]
# the landing page is the comparison of the analysed electrodes (the three demos on first start).
# st.navigation comes before the first-start step: until it is called the sidebar shows Streamlit's own
# page list (with an "app" entry), which the first start would leave on screen for a minute.
nav = st.navigation(pages)

from ui import cache, jobs, startup, state, widgets  # noqa: E402  (after st.navigation: these imports take seconds)

ws = cache.workspace()
jobs.start(ws)  # the background jobs' cluster: started once per server, before any click needs it
startup.ensure_demos(ws)  # first start: the demo electrodes' analyses are queued as jobs
st.sidebar.markdown("**Cathode particle detachment**")
widgets.sample_picker(ws)
st.sidebar.caption(f"Workspace: `{ws.root}`")
with st.sidebar:
    st.divider()
    st.text_input("Your name (shown on the jobs you start)", key=state.JOBS_OWNER, max_chars=40)
    jobs.panel(ws)
nav.run()
