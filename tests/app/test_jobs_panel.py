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
