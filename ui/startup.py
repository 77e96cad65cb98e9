"""First start: add the three synthetic demo electrodes and analyse each once."""

from __future__ import annotations

import streamlit as st

from core.pipeline import AnalysisParams
from core.runner import run_analysis
from core.synth import DEMO_ELECTRODES
from core.workspace import DEMO_PREFIX, Workspace

from . import cache, settings, state
from .messages import flash, one_sentence
from .widgets import progress_callback

META_KEY = "demos_added"
MAX_FAILED = 2


def _todo(ws: Workspace) -> list:
    """Demo samples without a finished analysis (and not failing over and over)."""
    out = []
    for s in ws.list_samples():
        if not s.is_demo or ws.latest_analysis(s.id) is not None:
            continue
        if len(ws.list_analyses(s.id, status="failed")) >= MAX_FAILED:
            continue
        out.append(s)
    return out


def add_demos(ws: Workspace, size: int) -> list:
    """Add the demo electrodes (SYNTHETIC) to the catalogue."""
    added = []
    for i, name in enumerate(DEMO_ELECTRODES):
        added.append(ws.add_sample(
            name, f"{DEMO_PREFIX}{name}", spacing=settings.demo_spacing(name), group_label="SYNTHETIC demo",
            axis=0, separator_side="start", source_options={"shape": [size] * 3, "seed": i},
        ))
    return added


def ensure_demos(ws: Workspace) -> None:
    """Once per session: on a fresh workspace add the demos; analyse the ones not analysed yet (with progress)."""
    if st.session_state.get(state.STARTUP_DONE) or not settings.demos_enabled():
        return
    if ws.get_meta(META_KEY) is not None and not _todo(ws):
        st.session_state[state.STARTUP_DONE] = True
        return
    size = settings.demo_size()
    slot = st.empty()
    box = slot.container()
    with cache.startup_lock(str(ws.root)):
        if ws.get_meta(META_KEY) is None:
            if not any(s.is_demo for s in ws.list_samples()):
                add_demos(ws, size)
            ws.set_meta(META_KEY, "1")
        todo = _todo(ws)
        if todo:
            box.subheader("Preparing the demo electrodes (first start only)")
            box.caption(
                f"Three SYNTHETIC electrodes at {size}³ voxels are generated and analysed once, then kept in the "
                f"workspace ({ws.root}). Each takes {settings.demo_time_text(size)}."
            )
        for s in todo:
            bar = box.progress(0.0, text=f"{s.name}: generating the synthetic volume…")
            try:
                vol = cache.volume(cache.VolumeRef.of(ws, s))
                progress = progress_callback(bar, s.name)
                a = run_analysis(ws, s.id, vol, AnalysisParams(), progress=progress)
                bar.progress(1.0, text=f"{s.name}: {a.n_particles} particles")
            except Exception as exc:  # keep the app usable; the run is stored as failed
                flash("error", f"Analysing the demo '{s.name}' failed: {one_sentence(exc)}")
    slot.empty()
    st.session_state[state.STARTUP_DONE] = True
