"""Pinned comparisons: the Compare page names the analysis of each electrode, lets the user pick another, flags
the parameters in which the compared analyses differ, keeps its analyses (session and URL ``?a=``) when a newer
one appears (a notice with *Use it* instead), and survives the deletion of a pinned analysis; the Samples page
lists a sample's analyses with a note, *Compare with this one* and deletion with confirmation."""

from __future__ import annotations

from dataclasses import replace

from streamlit.testing.v1 import AppTest

from core.particles import SeparationParams
from core.runner import run_analysis
from ui import pins, state

from apphelpers import APP, TIMEOUT, no_exception, page

PAGE = page("4_compare.py")


def _rerun(ws, sample, **changes):
    """A new finished analysis of ``sample``: its latest one's parameters (as requested) with ``changes``."""
    params = ws.latest_analysis(sample.id).requested
    return run_analysis(ws, sample.id, ws.load_volume(sample), replace(params, **changes))


def _summary_n(at) -> dict[str, int]:
    [t] = [d.value for d in at.dataframe if "share_above" in d.value.columns and "median_fit" not in d.value.columns]
    return dict(zip(t["electrode"], t["n_particles"]))


def _newer_notices(at) -> list[str]:
    return [i.value for i in at.info if "has a newer analysis" in i.value]


def _diff_flags(at) -> list[str]:
    return [w.value for w in at.warning if "used different parameters" in w.value]


def _analysis(aid: int, params=None, **provenance):
    from core.pipeline import AnalysisParams
    from core.records import Analysis

    p = params or AnalysisParams()
    return Analysis(id=aid, sample_id=aid, requested=p, resolved=p, status="done", error=None, created_at=0.0,
                    updated_at=0.0, owner_pid=None, provenance=provenance, phases_path=None, labels_path=None,
                    table_path=None, n_particles=1)


def test_slices_compared_with_volumes_are_named():
    vol, flat = {"input_shape": [40, 50, 60]}, {"input_shape": [1, 754, 1012]}
    assert pins.dimensions_sentence({"a": _analysis(1, **vol), "b": _analysis(2, **vol)}) is None
    assert pins.dimensions_sentence({"a": _analysis(1, **flat), "b": _analysis(2, **flat)}) is None  # slices only
    assert pins.dimensions_sentence({"a": _analysis(1), "b": _analysis(2, **flat)}) is None  # shape unknown: quiet
    said = pins.dimensions_sentence({"a": _analysis(1, **vol), "FIB": _analysis(2, **flat), "c": _analysis(3, **vol)})
    assert said.startswith("FIB is a single slice (measured in the plane") and "compare slices with slices" in said


def test_url_form_and_parameter_differences_in_words():
    from core.pipeline import AnalysisParams
    from core.phases import SegmentParams

    assert pins.parse_url_ids(" 3, 7,x,3,,-1,9") == [3, 7, 9]
    assert pins.parse_url_ids(None) == [] and pins.url_value([3, 7, 9]) == "3,7,9"
    same = {"a": _analysis(1), "b": _analysis(2)}
    assert pins.param_differences(same) == [] and pins.differences_sentence([]) == ""
    # settings that do not act on a method are not differences; the U-Net's own defaults are not listed
    unet = AnalysisParams(method="model", segment=SegmentParams(denoise="gaussian"))
    diffs = pins.param_differences({"a": _analysis(1), "b": _analysis(2, unet)})
    assert pins.differences_sentence(diffs) == "b used phases by the 3D U-Net; a used the defaults."
    assert pins.method_words(_analysis(3, unet)) == "3D U-Net"
    assert pins.method_words(_analysis(4, presegmented=True, phases_from_analysis=1)) == "phases of #1"
    denoised = AnalysisParams(segment=SegmentParams(denoise="gaussian", denoise_size=1.5, pv_sigma=0.8))
    diffs = pins.param_differences({"a": _analysis(1), "b": _analysis(2, denoised), "c": _analysis(3)})
    assert [d.key for d in diffs] == ["denoise", "denoise_size", "pv_sigma"]
    assert pins.differences_sentence(diffs) == ("b used gaussian denoising, denoising size 1.5 voxels and blur "
                                                "σ 0.8 voxels; the others used the defaults.")
    # an analysis made before depth ran over the electrode (its parameters without depth_from) is named
    before = AnalysisParams.from_dict({k: v for k, v in AnalysisParams().to_dict().items() if k != "depth_from"})
    diffs = pins.param_differences({"a": _analysis(1), "old": _analysis(2, before)})
    assert [d.key for d in diffs] == ["depth_from"]
    assert pins.differences_sentence(diffs) == "old used depth over the imaged volume; a used the defaults."
    # the network read flattened along z (session 38) is a difference from the network read as it is
    flat_unet = AnalysisParams(method="model", segment=SegmentParams(flatten=True))
    diffs = pins.param_differences({"a": _analysis(1, unet), "flat": _analysis(2, flat_unet)})
    assert [d.key for d in diffs] == ["flatten"]
    assert pins.differences_sentence(diffs) == "flat used flattened along z; a used the defaults."
    # phases read from an already-segmented input are no thresholds at their defaults (a real calendered volume
    # compared with a classified slice and a demo was said to use "the defaults"); a sweep's rerun that reused
    # another analysis's phases keeps that analysis's settings
    classified = AnalysisParams(method="classifier", classifier="/x")
    diffs = pins.param_differences({"a": _analysis(1), "seg": _analysis(2, presegmented=True),
                                    "cls": _analysis(3, classified)})
    assert pins.differences_sentence(diffs) == ("seg used phases read from the already-segmented input; cls used "
                                                "phases by a brush-stroke classifier; a used the defaults.")
    assert pins.param_differences({"a": _analysis(1), "b": _analysis(2, presegmented=True,
                                                                      phases_from_analysis=1)}) == []


def test_names_picks_flags_differences_and_offers_newer_analyses(seeded_ws):
    pristine, c1, c5 = seeded_ws.list_samples()
    first = {s.id: seeded_ws.latest_analysis(s.id) for s in (pristine, c1, c5)}
    seg = first[c1.id].resolved.segment  # the thresholds it resolved, moved by hand below
    moved = _rerun(seeded_ws, c1, separation=SeparationParams(h_um=0.75),
                   segment=replace(first[c1.id].requested.segment, low=seg.low + 3, high=seg.high - 3))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    no_exception(at)
    # each electrode named by its analysis: id, date, method; the latest one of each to start with
    pick = {s.id: at.selectbox(key=state.k(state.CMP_PICK, s.id)) for s in (pristine, c1, c5)}
    assert [pick[s].value for s in pick] == [first[pristine.id].id, moved.id, first[c5.id].id]
    assert pick[c1.id].options[0] == f"#{moved.id} · {pins.finished_text(moved)} · thresholds · latest"
    assert set(pick[c1.id].options) == {pins.analysis_label(a, latest_id=moved.id) for a in (moved, first[c1.id])}
    # the parameters in which the compared analyses differ, in words with units
    [flag] = _diff_flags(at)
    assert (f"cycled-1C (SYNTHETIC) used thresholds {seg.low + 3:g} / {seg.high - 3:g} (grey) and h = 0.75 µm; "
            "the others used the defaults.") in flag
    assert at.query_params["a"] == f"{first[pristine.id].id},{moved.id},{first[c5.id].id}"
    assert _summary_n(at)["cycled-1C (SYNTHETIC)"] == moved.n_particles

    # pick the older analysis of cycled-1C: the same parameters everywhere, no flag; the URL follows
    pick[c1.id].select(first[c1.id].id).run()
    no_exception(at)
    assert at.selectbox(key=state.k(state.CMP_PICK, c1.id)).value == first[c1.id].id
    assert not _diff_flags(at) and not _newer_notices(at)
    assert at.query_params["a"] == ",".join(str(first[s].id) for s in first)
    assert _summary_n(at)["cycled-1C (SYNTHETIC)"] == first[c1.id].n_particles

    # another user analyses cycled-5C again: the page keeps its analysis and offers the new one
    newer = _rerun(seeded_ws, c5, separation=SeparationParams(h_um=0.9))
    at.run()
    no_exception(at)
    assert at.selectbox(key=state.k(state.CMP_PICK, c5.id)).value == first[c5.id].id
    assert _summary_n(at)["cycled-5C (SYNTHETIC)"] == first[c5.id].n_particles
    [notice] = _newer_notices(at)
    assert notice.startswith(f"cycled-5C (SYNTHETIC) has a newer analysis #{newer.id} ({pins.finished_text(newer)}, "
                             f"thresholds); this page still shows #{first[c5.id].id}")
    assert not _diff_flags(at)
    at.button(key=state.k(state.CMP_USE_NEWER, c5.id)).click().run()
    no_exception(at)
    assert at.selectbox(key=state.k(state.CMP_PICK, c5.id)).value == newer.id
    assert not _newer_notices(at)
    assert "cycled-5C (SYNTHETIC) used h = 0.9 µm" in _diff_flags(at)[0]
    assert at.query_params["a"].split(",")[-1] == str(newer.id)
    assert _summary_n(at)["cycled-5C (SYNTHETIC)"] == newer.n_particles

    # a newer one again, kept away with "Keep #N": no notice, no switch
    newest = _rerun(seeded_ws, c5)
    at.run()
    assert len(_newer_notices(at)) == 1
    at.button(key=state.k(state.CMP_KEEP, c5.id)).click().run()
    no_exception(at)
    assert not _newer_notices(at)
    assert at.selectbox(key=state.k(state.CMP_PICK, c5.id)).value == newer.id != newest.id


def test_link_reload_notes_compare_from_samples_and_delete_with_fallback(seeded_ws, monkeypatch):
    monkeypatch.setenv("DETACH_DEMOS", "0")
    pristine, c1, c5 = seeded_ws.list_samples()
    old = seeded_ws.latest_analysis(c5.id)
    new = _rerun(seeded_ws, c5)
    # a shared link (a new session that has only the URL): two electrodes, the older analysis of cycled-5C,
    # an analysis deleted since, and the sidebar's sample
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["a"] = f"{old.id},999,{seeded_ws.latest_analysis(pristine.id).id}"
    at.query_params["sample"] = str(c1.id)
    at.run()
    no_exception(at)
    assert at.multiselect(key=state.CMP_SAMPLES).value == [c5.id, pristine.id]
    assert at.selectbox(key=state.k(state.CMP_PICK, c5.id)).value == old.id
    assert any("#999 named in the link is no longer in the workspace" in w.value for w in at.warning)
    assert len(_newer_notices(at)) == 1  # the link's analysis is not the newest: said, not switched
    assert at.sidebar.selectbox(key=state.SAMPLE_PICKER).value == c1.id  # ?sample= still works beside ?a=
    assert at.query_params["sample"] == str(c1.id)
    assert at.query_params["a"] == f"{old.id},{seeded_ws.latest_analysis(pristine.id).id}"

    # Samples page: the analyses of cycled-5C; a note, then "Compare with this one" for the newer one
    at.switch_page("pages/1_samples.py")
    at.sidebar.selectbox(key=state.SAMPLE_PICKER).select(c5.id).run()
    no_exception(at)
    [listed] = [d.value for d in at.dataframe if "note" in d.value.columns]
    assert list(listed["analysis"]) == [new.id, old.id]
    pick = at.selectbox(key=state.k(state.AN_PICK, c5.id))
    assert pick.value == old.id  # the one the Compare page shows
    pick.select(new.id).run()
    at.text_input(key=state.k(state.AN_NOTE, c5.id, new.id)).set_value("  same settings, rerun  ").run()
    at.button(key=state.k(state.AN_NOTE_SAVE, c5.id, new.id)).click().run()
    no_exception(at)
    assert seeded_ws.get_analysis(new.id).note == "same settings, rerun"
    [listed] = [d.value for d in at.dataframe if "note" in d.value.columns]
    assert list(listed["note"]) == ["same settings, rerun", ""]
    at.button(key=state.k(state.AN_COMPARE, c5.id, new.id)).click().run()
    no_exception(at)
    assert at.session_state[state.CMP_PINS][c5.id] == new.id

    # delete it: only after the confirmation tick; its files go too
    delete = state.k(state.AN_DELETE, c5.id, new.id)
    assert at.button(key=delete).disabled
    at.checkbox(key=state.k(state.AN_DELETE_CONFIRM, c5.id, new.id)).check().run()
    assert not at.button(key=delete).disabled
    folder = seeded_ws.analysis_dir(new.id)
    assert folder.is_dir()
    at.button(key=delete).click().run()
    no_exception(at)
    assert [a.id for a in seeded_ws.list_analyses(c5.id)] == [old.id]
    assert not folder.exists()
    assert any(f"Deleted analysis #{new.id}" in s.value for s in at.success)

    # the Compare page was pinned to it: it falls back to the latest left, with a notice, no crash
    at.switch_page("pages/4_compare.py").run()
    no_exception(at)
    assert at.selectbox(key=state.k(state.CMP_PICK, c5.id)).value == old.id
    assert any(f"Analysis #{new.id} of cycled-5C (SYNTHETIC) is no longer in the workspace" in w.value
               for w in at.warning)
    assert str(new.id) not in at.query_params["a"].split(",")


def test_a_re_separation_of_an_already_segmented_sample_differs_by_its_separation_only(empty_ws, env):
    """QA: after "Run particle separation" (h = 1 µm) on an already-segmented sample, Compare said it "used phases
    not refined, seeds on the NMC phase and h = 1 µm" beside another sample of the same file's phases: only h
    differs."""
    from dataclasses import replace

    import numpy as np

    from core.io import save_tiff
    from core.pipeline import AnalysisParams
    from core.runner import run_analysis
    from core.synth import demo_electrode
    from ui import pins

    ids = []
    for i in range(2):
        path = env / "data" / f"seg{i}.tif"
        save_tiff(path, demo_electrode("pristine", rng=i, shape=(32, 32, 32)).phases.astype(np.uint8), (0.4,) * 3)
        s = empty_ws.add_sample(f"seg{i}", str(path), spacing=0.4, source_options={"phase_map": "0=pore,1=cbd,2=nmc"})
        ids.append((s, run_analysis(empty_ws, s.id)))
    (s0, first), (_, other) = ids
    params = AnalysisParams()
    again = run_analysis(empty_ws, s0.id, empty_ws.load_phases(first.id),
                         replace(params, separation=replace(params.separation, h_um=1.0)), presegmented=True,
                         extra_provenance={"phases_from_analysis": first.id})
    assert pins.phases_given(again) and pins.phases_given(other)
    diffs = pins.param_differences({"seg0": again, "seg1": other})
    assert [d.key for d in diffs] == ["h_um"], diffs
    # the Particles page asks for seeds on the phases where there is no greyscale: the same as the first run's "auto"
    on_phases = run_analysis(empty_ws, s0.id, empty_ws.load_phases(first.id),
                             replace(params, seeding="phases", separation=replace(params.separation, h_um=1.0)),
                             presegmented=True, extra_provenance={"phases_from_analysis": first.id})
    assert on_phases.requested.seeding == "phases" and other.requested.seeding == "auto"
    assert [d.key for d in pins.param_differences({"seg0": on_phases, "seg1": other})] == ["h_um"]


def test_the_3d_page_draws_the_analysis_compare_shows_and_names_it(seeded_ws):
    """QA walk 8: the 3D page drew the sample's latest analysis (190 particles) while Compare kept #4 (170) and
    named none.  It draws Compare's pick, names it, and a pick there is Compare's too."""
    s = next(x for x in seeded_ws.list_samples() if x.name == "cycled-5C")
    first = seeded_ws.latest_analysis(s.id)
    newer = _rerun(seeded_ws, s, separation=SeparationParams(h_um=0.75))
    assert newer.n_particles != first.n_particles
    at = AppTest.from_file(page("5_3d.py"), default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.session_state[state.CMP_PINS] = {s.id: first.id}  # as the Compare page keeps it
    at.session_state[state.CMP_SEEN] = {s.id: newer.id}
    at.run()
    no_exception(at)
    picker = at.selectbox(key=state.k(state.V3_ANALYSIS, s.id))
    assert picker.value == first.id and set(picker.options) == {pins.analysis_label(a, latest_id=newer.id)
                                                               for a in (first, newer)}
    assert any(c.value.startswith(f"{first.n_particles} particles") and f"Analysis #{first.id}." in c.value for c in at.caption)
    picker.set_value(newer.id).run()
    no_exception(at)
    assert at.session_state[state.CMP_PINS][s.id] == newer.id
    assert any(c.value.startswith(f"{newer.n_particles} particles") and f"Analysis #{newer.id}." in c.value for c in at.caption)
