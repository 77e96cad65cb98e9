"""First start: add the three synthetic demo electrodes and analyse each once, as background jobs."""

from __future__ import annotations

import streamlit as st

from core.jobs import ACTIVE
from core.pipeline import AnalysisParams
from core.records import Attribute
from core.synth import DEMO_C_RATES, DEMO_ELECTRODES
from core.workspace import DEMO_PREFIX, Workspace

from . import cache, jobs, settings, state

META_KEY = "demos_added"
DEMO_JOB = "Demo analysis"  # the title of the first-start jobs ("Demo analysis: pristine")
MAX_FAILED = 2


def _first_demos(ws: Workspace) -> set[int] | None:
    """The sample ids of the demos the first start added (None: a workspace of before they were kept, whose
    marker says only "1": every demo counts)."""
    meta = ws.get_meta(META_KEY)
    if meta is None or meta == "1":
        return None
    return {int(v) for v in meta.split(",") if v.strip()}


def _todo(ws: Workspace) -> list:
    """The first start's demo samples without a finished analysis (and not failing over and over, nor cancelled:
    QA walk 12: a demo whose analysis a user cancelled was queued again by the next session that opened, and a
    demo added later on the Samples page was taken for one of the first start's)."""
    first = _first_demos(ws)
    cancelled = {j.sample_id for j in jobs.store(ws).list(states=("cancelled",), limit=1000)}
    out = []
    for s in ws.list_samples():
        if not s.is_demo or ws.latest_analysis(s.id) is not None or s.id in cancelled:
            continue
        if first is not None and s.id not in first:
            continue
        if len(ws.list_analyses(s.id, status="failed")) >= MAX_FAILED:
            continue
        out.append(s)
    return out


def add_demos(ws: Workspace, size: int) -> list:
    """Add the demo electrodes (SYNTHETIC) to the catalogue, each with its C-rate as an attribute."""
    added = []
    for i, name in enumerate(DEMO_ELECTRODES):
        added.append(ws.add_sample(
            name, f"{DEMO_PREFIX}{name}", spacing=settings.demo_spacing(name), group_label="SYNTHETIC demo",
            axis=0, separator_side="start", source_options={"shape": [size] * 3, "seed": i},
            attributes=[Attribute("C-rate", DEMO_C_RATES[name], "C")],
        ))
    return added


def ensure_demos(ws: Workspace) -> None:
    """On a fresh workspace add the demos; queue an analysis job for each demo not analysed yet (once per
    session), and while those jobs run say so at the top of the page (the comparison fills in as they finish)."""
    if not settings.demos_enabled():
        return
    if not st.session_state.get(state.STARTUP_DONE):
        if ws.get_meta(META_KEY) is None or _todo(ws):
            size = settings.demo_size()
            with cache.startup_lock(str(ws.root)):
                if ws.get_meta(META_KEY) is None:
                    added = [] if any(s.is_demo for s in ws.list_samples()) else add_demos(ws, size)
                    ws.set_meta(META_KEY, ",".join(str(s.id) for s in added) or "1")
                queued = {j.sample_id for j in jobs.store(ws).list(states=ACTIVE)}
                for s in _todo(ws):
                    if s.id not in queued:
                        jobs.submit(ws, s, AnalysisParams(), what=DEMO_JOB)
        st.session_state[state.STARTUP_DONE] = True
    first = _first_demos(ws)
    running = [j for j in jobs.store(ws).list(states=ACTIVE) if j.title.startswith(DEMO_JOB + ":")
               and (first is None or j.sample_id in first)]  # (not a demo added later: "three at 160³" is not it)
    if not running:
        if st.session_state.pop(state.DEMOS_WAITING, False):
            # the Compare page chose its electrodes while only some demos were analysed: choose again, all of them
            st.session_state.pop(state.CMP_SAMPLES, None)
        return
    st.session_state[state.DEMOS_WAITING] = True
    st.info(
        f"**Preparing the demo electrodes (first start only).** Three SYNTHETIC electrodes at "
        f"{settings.demo_size()}³ voxels are generated and analysed once as background jobs "
        f"({', '.join(f'#{j.id}' for j in sorted(running, key=lambda j: j.id))}; progress in the sidebar), "
        f"then kept in the workspace ({ws.root}). Each takes {settings.demo_time_text(settings.demo_size())} once "
        "the workers are warm; the first start also starts the workers and compiles their kernels (2 minutes in "
        "all from a fresh clone here). This page fills in as they finish."
    )
