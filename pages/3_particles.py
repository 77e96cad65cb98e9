"""Particles: separation parameters, the per-particle table, and a slice with outlines coloured by detachment."""

from dataclasses import replace

import streamlit as st

from core.seeding import AUTO_BLUR, AUTO_SLICE_BLUR_DEPTH
from ui import advice, exports, forms, jobs, page, particles_view, state
from ui.messages import one_sentence

page.through_app()  # a first run in Streamlit's pages-folder mode: through app.py (ui.page)

ws, sample = page.sample_page("Particles")
sid = sample.id
exports.begin_page()  # the warnings the page shows below go into its report (exports.warn)

latest = ws.latest_analysis(sid)
current = page.latest_params(latest)
if sample.input.presegmented:  # no greyscale for the network to read: the watershed only
    how = "watershed"
    st.caption("Particles by the watershed of the distance transform (crack-aware). The 3D U-Net's instance cue "
               "reads a greyscale scan, and this sample's values are phases.")
else:
    state.init_from(state.k(state.PART_METHOD, sid), current.particles, latest.id if latest is not None else None)
    how = st.radio("Particles by", ("watershed", "model"), key=state.k(state.PART_METHOD, sid), horizontal=True,
                   persist_state=state.PERSIST,
                   format_func={"watershed": "Watershed of the distance transform (crack-aware)",
                                "model": "3D U-Net instance cue (runs the model on the greyscale; "
                                         "the phases stay those of the Segment page's method)"}.get)
seeding = "phases"
# what the latest run seeded on, and whether "auto" chose it (core.pipeline.run records the blur it read)
auto_seen = (latest.provenance.get("seeding_auto") or {}) if latest is not None else {}
if how == "watershed" and not sample.input.presegmented:
    requested = "auto" if auto_seen or latest is None else current.seeding
    state.init_from(state.k(state.PART_SEEDING, sid), requested if requested != "regularised" else "phases",
                    latest.id if latest is not None else None)
    seeding = st.radio(
        "Seeds from", ("auto", "phases", "deconvolved"), key=state.k(state.PART_SEEDING, sid), horizontal=True,
        persist_state=state.PERSIST,
        format_func={"auto": f"by the scan's blur (default): the deconvolved mask where it is {AUTO_BLUR} voxel or more",
                     "phases": "the NMC phase",
                     "deconvolved": "a deconvolved greyscale mask (noisy or blurred scans; slower)"}.get,
        help="On a noisy, blurred scan the blur fills the necks between touching particles, so they merge. "
             "The deconvolved mask undoes the blur measured on the scan (at least 1 voxel) before the seeds are cut; the phases, and so the "
             "contact areas, stay those of the Segment page. On the synthetic robustness grid it changed F1@0.5 "
             "by −0.03 to +0.05 (bench/RESULTS.md, robustness_grid_s13), most at a blur of 1.2 voxels; the whole analysis takes up to about twice as "
             "long (256³ grid cells) and more memory. It re-runs the whole analysis. 'Chosen by the scan's blur' "
             f"takes the deconvolved mask where the blur measured on the scan is {AUTO_BLUR} voxel or more, on a "
             "volume; on a single slice (2D image) only where the blur is also at least "
             f"{AUTO_SLICE_BLUR_DEPTH} of the NMC's mean depth in pixels (small particles: there the mask "
             "helped particles of radius 5-7 px and lost bigger ones; bench/RESULTS.md, slice_blur).")
    if auto_seen.get("blur_voxels") is not None:  # (None: not read, e.g. a phase volume)
        st.caption(advice.seeding_reading(auto_seen, latest.provenance.get("phase_refinement"),
                                          latest.resolved.segment.pv_sigma))
sep, submitted = forms.separation_form(sample, current.separation, cue=how == "model",
                                       source=latest.id if latest is not None else None)
# background jobs (ui/jobs.py): the page may rerun or the browser close while they run
if submitted and sep is not None and how == "model":
    try:  # the cue cannot take every method's phases (a brush-stroke classifier's): one sentence then
        params = replace(latest.rerun_params if latest is not None else current, particles="model", separation=sep)
    except ValueError as exc:
        st.error(f"Analysis (3D U-Net) failed: {one_sentence(exc)}")
    else:
        jobs.announce(jobs.submit(ws, sample, params, what="Analysis (3D U-Net)"))
elif submitted and sep is not None:
    params = replace(current, particles="watershed", separation=sep, seeding=seeding)
    # "auto" that chose the phases last time chooses them again on the same phases: those can be reused
    reuse = seeding == "phases" or (seeding == "auto" and auto_seen.get("seeding") == "phases")
    if not reuse:  # seeds from the greyscale: the whole analysis runs again (same phases)
        jobs.announce(jobs.submit(ws, sample, params))
    elif latest is not None:  # reuse the stored phases: only separation and measurement run again
        jobs.announce(jobs.submit(ws, sample, params, phases_from=latest.id, what="Particle separation"))
    else:
        jobs.announce(jobs.submit(ws, sample, params))

latest = page.require_analysis(ws, sample, "its particles")
particles_view.table_and_slice(ws, sample, latest)
exports.particles_section(ws, sample, latest)
