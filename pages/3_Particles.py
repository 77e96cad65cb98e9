"""Particles: separation parameters, the per-particle table, and a slice with outlines coloured by detachment."""

from dataclasses import replace

import streamlit as st

from core.runner import run_analysis
from ui import cache, exports, forms, messages, page, particles_view, state, widgets

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
    # built inside the run: parameters the cue cannot take (phases of a brush-stroke classifier) are one sentence
    a = widgets.run_with_progress("Analysis (3D U-Net)", lambda progress: run_analysis(ws, sid, vol, replace(
        latest.rerun_params if latest is not None else current, particles="model", separation=sep), progress=progress))
    if a is not None:
        messages.flash("success", f"Analysis {a.id}: {a.n_particles} particles.")
        st.rerun()
elif submitted and sep is not None:
    current = replace(current, particles="watershed")
    if latest is not None:
        # reuse the stored phases: only separation and measurement run again
        phases = cache.result_arrays(cache.ResultRef.of(ws, latest))[0]
        params = replace(current, separation=sep)
        a = widgets.run_with_progress("Particle separation", lambda progress: run_analysis(
            ws, sid, phases, params, presegmented=True, progress=progress,
            extra_provenance={"phases_from_analysis": latest.id}))
    else:
        _, vol = page.require_volume(ws, sample)
        params = replace(current, separation=sep)
        a = widgets.run_with_progress("Analysis", lambda progress: run_analysis(
            ws, sid, vol, params, progress=progress))
    if a is not None:
        messages.flash("success", f"Analysis {a.id}: {a.n_particles} particles.")
        st.rerun()

latest = page.require_analysis(ws, sample, "its particles")
particles_view.table_and_slice(ws, sample, latest)
exports.particles_section(ws, sample, latest)
