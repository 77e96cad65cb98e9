"""The jobs panel's *Analyse all*: what it queues for each sample not analysed yet."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from apphelpers import TIMEOUT, drifting_scan, no_exception


def panel_script():
    import streamlit as st

    from ui import cache, jobs

    with st.sidebar:
        jobs.panel(cache.workspace())


def test_analyse_all_flattens_a_drifting_scan_as_the_segment_page_proposes(empty_ws, env):
    """Analyse all runs the Segment page's defaults: a scan whose grey values drift along z (the page warns and
    ticks *Flatten the drift*) is flattened; a steady one and an already-segmented one are not."""
    import numpy as np

    from core.io import save_tiff
    from core.synth import demo_electrode

    drift = empty_ws.add_sample("drift", drifting_scan(env / "data" / "drift.tif"), spacing=0.4)
    demo = demo_electrode("cycled-1C", rng=2, shape=(48, 48, 48))
    save_tiff(env / "data" / "steady.tif", demo.greyscale, (0.4, 0.4, 0.4))
    steady = empty_ws.add_sample("steady", str(env / "data" / "steady.tif"), spacing=0.4)
    save_tiff(env / "data" / "seg.tif", demo.phases.astype(np.uint8), (0.4, 0.4, 0.4))
    seg = empty_ws.add_sample("seg", str(env / "data" / "seg.tif"), spacing=0.4,
                              source_options={"phase_map": "0=pore,1=cbd,2=nmc"})
    at = AppTest.from_function(panel_script, default_timeout=TIMEOUT).run()
    no_exception(at)
    [button] = [b for b in at.sidebar.button if b.label.startswith("Analyse all")]
    assert button.label == "Analyse all (3 not analysed)"
    button.click().run()  # the jobs run inline (DETACH_JOBS=inline) inside the click
    no_exception(at)
    flattened = {}
    for s in (drift, steady, seg):
        a = empty_ws.latest_analysis(s.id)
        assert a is not None and a.status == "done", s.name
        flattened[s.name] = bool(a.params["segment"].get("flatten", False))
    assert flattened == {"drift": True, "steady": False, "seg": False}
    assert empty_ws.latest_analysis(drift.id).provenance["shading"]["flattened"]


def test_a_finished_job_of_a_deleted_sample_says_so_and_offers_no_rerun(seeded_ws):
    """QA: after a sample was deleted the panel still listed its analysis ("... 68 particles") as if it were there."""
    from core.pipeline import AnalysisParams
    from ui import jobs, state

    first, second = seeded_ws.list_samples()[:2]
    for s in (first, second):
        j = jobs.store(seeded_ws).create("analysis", {"sample_id": s.id, "params": AnalysisParams().to_dict()},
                                         title=f"Analysis: {s.name}", owner="test")
        jobs.store(seeded_ws).cancel(j.id)  # ended without running: a Re-run is offered
    seeded_ws.delete_sample(first.id)
    at = AppTest.from_function(panel_script, default_timeout=TIMEOUT).run()
    no_exception(at)
    lines = [c.value for c in at.sidebar.caption if "Analysis:" in c.value]
    mine = [x for x in lines if f"Analysis: {first.name}" in x]
    assert mine and all(x.endswith(" · sample deleted since") for x in mine)
    assert not any(x.endswith("deleted since") for x in lines if f"Analysis: {second.name}" in x)
    reruns = [b.key for b in at.sidebar.button if b.label == "Re-run"]
    assert len(reruns) == 1 and reruns[0].startswith(state.JOBS_RERUN)
