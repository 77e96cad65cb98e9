"""Segment page: histogram with threshold rules, sliders, Suggest, live preview, full run with progress."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.phases import suggest_thresholds
from ui import state

from apphelpers import TIMEOUT, chart_specs, drifting_scan, layer_data, no_exception, page

PAGE = page("2_segment.py")


def _rule_values(at) -> list[float]:
    return sorted(layer_data(at, "rule")["value"])


def _metric(at, label: str) -> float:
    return float(next(m.value for m in at.metric if m.label == label).rstrip("%")) / 100


def _open(seeded_ws, name="cycled-5C"):
    s = next(x for x in seeded_ws.list_samples() if x.name == name)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    return s, at.run()


def test_histogram_thresholds_and_preview_follow_the_sliders(seeded_ws):
    s, at = _open(seeded_ws)
    no_exception(at)
    latest = seeded_ws.latest_analysis(s.id)
    seg = latest.resolved_params["segment"]
    k_low, k_high = state.k(state.SEG_LOW, s.id), state.k(state.SEG_HIGH, s.id)
    # the stored analysis' blur says which gaps it can resolve, in µm of this sample
    from core.phases import resolvable_gap_um

    gap = resolvable_gap_um(seg["pv_sigma"], s.spacing)
    assert any(f"narrower than about {gap:.2f} µm" in c.value for c in at.caption)
    assert not any("wider than the partial-volume correction handles" in w.value for w in at.warning)  # σ 0.75
    # the sliders start at the thresholds of the stored analysis, drawn as rules on the histogram
    assert at.slider(key=k_low).value == pytest.approx(seg["low"])
    assert _rule_values(at) == pytest.approx([seg["low"], seg["high"]])
    spec = chart_specs(at)[0]
    titles = {str(layer["encoding"]["x"].get("title")) for layer in spec["layer"] if "title" in layer["encoding"]["x"]}
    assert any("grey value" in t for t in titles)
    pore_before = _metric(at, "pore (this slice)")
    fractions = sum(_metric(at, f"{p} (this slice)") for p in ("pore", "CBD", "NMC"))
    assert fractions == pytest.approx(1.0, abs=0.002)
    assert len(at.image) == 2 and "analysis #" in at.image[1].proto.imgs[0].caption  # the preview, the analysed
    # raising the pore | CBD threshold makes more pore in the preview and moves the rule
    new_low = seg["low"] + 0.5 * (seg["high"] - seg["low"])
    at.slider(key=k_low).set_value(new_low).run()
    no_exception(at)
    assert _rule_values(at)[0] == pytest.approx(new_low, rel=1e-3)
    assert _metric(at, "pore (this slice)") > pore_before
    # another slice, and the opacity
    at.slider(key=state.k(state.SEG_INDEX, s.id, 0)).set_value(3).run()
    no_exception(at)
    assert "slice z = 3" in at.image[0].proto.imgs[0].caption


def test_suggest_sets_the_otsu_thresholds(seeded_ws):
    s, at = _open(seeded_ws, "pristine")
    k_low, k_high = state.k(state.SEG_LOW, s.id), state.k(state.SEG_HIGH, s.id)
    lo, hi = at.slider(key=k_low).min, at.slider(key=k_high).max
    at.slider(key=k_low).set_value(lo + 1).run()
    at.slider(key=k_high).set_value(hi - 1).run()
    at.button(key=state.k(state.SEG_SUGGEST, s.id)).click().run()
    no_exception(at)
    want = suggest_thresholds(seeded_ws.load_volume(s))
    assert at.slider(key=k_low).value == pytest.approx(want[0], abs=1.0)
    assert at.slider(key=k_high).value == pytest.approx(want[1], abs=1.0)
    # with a denoising chosen, Suggest gives what a run without thresholds would use after that denoising
    from core.phases import SegmentParams, preview_globals

    assert not [w for w in at.slider if w.key == state.k(state.SEG_DENOISE_SIZE, s.id)]  # no size without a filter
    at.selectbox(key=state.k(state.SEG_DENOISE, s.id)).select("median").run()
    # the default size (0.7, a Gaussian's) is no median window at all: median starts at 1.5, a 3-voxel window (QA
    # walk 9: it kept 0.7, "no filtering"); a size set under it is said, with what to choose
    assert at.slider(key=state.k(state.SEG_DENOISE_SIZE, s.id)).value == 1.5
    assert "Median window: 3×3×3 voxels." in [c.value for c in at.caption]
    at.slider(key=state.k(state.SEG_DENOISE_SIZE, s.id)).set_value(0.7).run()
    assert [w.value for w in at.warning if "median window" in w.value] == [
        "A median window of 0.7 voxels rounds to 1 voxel: no filtering. Choose 1.5 or more (a window of 3 voxels)."]
    at.slider(key=state.k(state.SEG_DENOISE_SIZE, s.id)).set_value(3.0).run()
    assert not [w for w in at.warning if "median window" in w.value]
    assert "Median window: 3×3×3 voxels." in [c.value for c in at.caption]
    at.button(key=state.k(state.SEG_SUGGEST, s.id)).click().run()
    no_exception(at)
    smoothed = preview_globals(seeded_ws.load_volume(s), SegmentParams(denoise="median", denoise_size=3.0)).suggested
    assert smoothed != pytest.approx(want, abs=1.0)  # the denoising matters: the check below can fail
    assert at.slider(key=k_low).value == pytest.approx(smoothed[0], abs=1.0)
    assert at.slider(key=k_high).value == pytest.approx(smoothed[1], abs=1.0)


def test_inverted_thresholds_are_an_error_and_block_the_run(seeded_ws):
    s, at = _open(seeded_ws)
    k_low, k_high = state.k(state.SEG_LOW, s.id), state.k(state.SEG_HIGH, s.id)
    high = at.slider(key=k_high).value
    at.slider(key=k_low).set_value(high + 10.123456).run()
    no_exception(at)
    from ui.tables import grey_text  # said to the digits the sliders show (QA: "(3.18895)" beside 3.189)

    assert any(e.value == f"The pore | CBD threshold ({grey_text(high + 10.123456)}) must be below the CBD | NMC "
                          f"threshold ({grey_text(high)})." for e in at.error)
    assert at.button(key=state.k(state.SEG_RUN, s.id)).disabled


def test_run_full_analysis_stores_it(seeded_ws):
    s, at = _open(seeded_ws, "cycled-1C")
    before = seeded_ws.latest_analysis(s.id)
    k_low = state.k(state.SEG_LOW, s.id)
    low = at.slider(key=k_low).value + 200
    at.slider(key=k_low).set_value(low).run()
    at.selectbox(key=state.k(state.SEG_DENOISE, s.id)).select("median").run()
    at.button(key=state.k(state.SEG_RUN, s.id)).click().run()
    no_exception(at)
    after = seeded_ws.latest_analysis(s.id)
    assert after.id > before.id and after.status == "done"
    seg = after.params["segment"]
    assert seg["low"] == pytest.approx(low) and seg["denoise"] == "median"
    assert any(f"Analysis {after.id} done: {after.n_particles} particles" in m.value for m in at.success)
    assert next(m.value for m in at.metric if m.label == "latest analysis") == f"#{after.id}"


def test_model_method_previews_and_runs_the_network(seeded_ws):
    s, at = _open(seeded_ws, "pristine")
    before = seeded_ws.latest_analysis(s.id)
    at.radio(key=state.SEG_METHOD).set_value("model").run()
    no_exception(at)
    assert any("held-out real acquisition" in c.value and "Its model card, below, says" in c.value
               for c in at.caption)
    # the model card in the page, not a path into the source tree (QA walk 16)
    [card] = [e for e in at.expander if e.label == "Model card: what the 3D U-Net is good and bad at"]
    assert any(m.value.startswith("# Model card: `unet3d.pt`") for m in card.markdown)
    # no thresholds to set: the network reads the grey values itself
    assert not [w for w in at.slider if "threshold" in w.label] and any("no thresholds apply" in c.value
                                                                         for c in at.caption)
    assert not [b for b in at.button if "Suggest thresholds" in b.label]
    fractions = sum(_metric(at, f"{p} (this slice)") for p in ("pore", "CBD", "NMC"))
    assert fractions == pytest.approx(1.0, abs=0.002) and _metric(at, "NMC (this slice)") > 0.1
    run = at.button(key=state.k(state.SEG_RUN, s.id))
    assert not run.disabled
    run.click().run()
    no_exception(at)
    after = seeded_ws.latest_analysis(s.id)
    assert after.id > before.id and after.status == "done" and after.n_particles > 0
    assert after.params["method"] == "model" and after.params["particles"] == "model"
    assert any("Phases by the 3D U-Net" in c.value for c in at.caption)


def test_unreadable_volume_is_one_sentence(empty_ws, env):
    s = empty_ws.add_sample("gone", str(env / "data" / "missing.tif"))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    [err] = [e.value for e in at.error]
    assert err.startswith("Cannot read the volume of 'gone'") and "missing.tif" in err and "\n" not in err


def test_a_sample_whose_analysis_is_queued_says_which_job(empty_ws, env):
    """QA walk 11: the page said "Not analysed yet." while the sample's job was running."""
    from core.io import save_tiff
    from core.pipeline import AnalysisParams
    from core.synth import demo_electrode
    from ui import jobs

    save_tiff(env / "data" / "a.tif", demo_electrode("pristine", rng=1, shape=(32, 48, 48)).greyscale, (0.4,) * 3)
    s = empty_ws.add_sample("a", str(env / "data" / "a.tif"), spacing=0.4)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    assert "Not analysed yet." in [i.value for i in at.info]
    j = jobs.store(empty_ws).create("analysis", {"sample_id": s.id, "params": AnalysisParams().to_dict()},
                                    title="Analysis: a", owner="someone")  # queued (by another session)
    at.run()
    no_exception(at)
    assert f"Not analysed yet: job #{j.id} is analysing it (queued; its progress is in the sidebar)." in \
        [i.value for i in at.info]


def test_threshold_moves_reuse_the_preview_context(seeded_ws, monkeypatch):
    """The slab is denoised once per slice; a threshold move only redoes core.phases.preview_from."""
    from core import phases as P
    from ui import compute

    built = []
    real = P.prepare_preview

    def counting(volume, axis, index, *args, **kwargs):
        built.append((axis, index))
        return real(volume, axis, index, *args, **kwargs)

    monkeypatch.setattr(P, "prepare_preview", counting)
    s, at = _open(seeded_ws)
    no_exception(at)
    assert len(built) == 1
    axis, index = built[0]
    # at the stored analysis' thresholds and blur the preview shows the stored phases of that slice
    latest = seeded_ws.latest_analysis(s.id)
    stored = compute.phase_fractions(np.take(seeded_ws.load_phases(latest), index, axis=axis))
    for name, key in (("pore", "pore"), ("CBD", "cbd"), ("NMC", "nmc")):
        assert next(m.value for m in at.metric if m.label == f"{name} (this slice)") == f"{stored[key]:.1%}"
    sigma = latest.resolved_params['segment']['pv_sigma']
    assert any("islands followed 7 slices either side" in c.value and
               f"partial-volume blur σ = {sigma:.3g} voxel" in c.value for c in at.caption)
    pore_before = _metric(at, "pore (this slice)")
    k_low, k_high = state.k(state.SEG_LOW, s.id), state.k(state.SEG_HIGH, s.id)
    for low in (at.slider(key=k_low).value + 300, at.slider(key=k_low).value + 600):
        at.slider(key=k_low).set_value(low).run()
        no_exception(at)
    at.slider(key=k_high).set_value(at.slider(key=k_high).value - 300).run()
    no_exception(at)
    assert _metric(at, "pore (this slice)") > pore_before
    assert len(built) == 1  # three threshold moves, no new slab
    at.slider(key=state.k(state.SEG_INDEX, s.id, 0)).set_value(5).run()
    no_exception(at)
    assert built[-1] == (0, 5) and len(built) == 2
    # another denoising: no analysis gave its blur, so the preview says it estimated one
    at.selectbox(key=state.k(state.SEG_DENOISE, s.id)).select("median").run()
    no_exception(at)
    assert any("fitted to the grey values around the NMC as the full run does" in c.value for c in at.caption)


def _analysed_blurred_sample(ws, e, spacing: float):
    """Sample "blurred" (group "g") of the electrode ``e``'s greyscale saved as a TIFF, analysed (the blur warned of);
    returns (sample, its particles' median radius in voxels, the AppTest of the Segment page run on it)."""
    from core.io import save_tiff
    from core.runner import run_analysis
    from ui.advice import median_radius_voxels

    src = ws.root / "blurred.tif"
    save_tiff(src, e.greyscale, e.spacing)
    s = ws.add_sample("blurred", str(src), spacing=spacing, group_label="g", source_options={"read": {}})
    with pytest.warns(UserWarning, match="wider than the partial-volume correction handles"):
        run_analysis(ws, s.id, ws.load_volume(s))
    latest = ws.latest_analysis(s.id)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    return s, median_radius_voxels(ws.load_table(latest.id), spacing), at


def test_blur_warning_offers_a_downsampled_copy(empty_ws):
    """Beyond the validated blur the page warns and, where the particles are big enough in voxels
    (ui.advice.DOWNSAMPLE_MIN_RADIUS), adds the sample again, coarser, in one click."""
    from core.phases import suggested_downsample
    from core.synth import PackingParams, make_sphere_packing
    from ui.advice import DOWNSAMPLE_MIN_RADIUS

    # particles of median radius 24 voxels, blurred by σ 2 voxels
    n = 128  # big enough for particles that touch no face
    e = make_sphere_packing(PackingParams(shape=(n, n, n), radius_median_um=24.0, radius_min_um=20.0,
                                          radius_max_um=28.0, blur_voxels=2.0, noise_contrast=0.03), rng=2)
    s, radius, at = _analysed_blurred_sample(empty_ws, e, 1.0)
    assert radius >= DOWNSAMPLE_MIN_RADIUS
    f = suggested_downsample(empty_ws.latest_analysis(s.id).resolved_params["segment"]["pv_sigma"])
    assert f >= 2
    assert any("wider than the partial-volume correction handles" in w.value for w in at.warning)
    button = at.button(key=state.k(state.DOWNSAMPLED_COPY, s.id))
    assert f"Add a copy downsampled by {f} ({n // f}×{n // f}×{n // f} voxels)" == button.label
    button.click().run()
    no_exception(at)
    copy = empty_ws.list_samples()[-1]
    assert copy.name == f"blurred (downsampled by {f})" and copy.downsample == f and copy.group_label == "g"
    assert copy.spacing == pytest.approx((1.0 * f,) * 3)
    assert empty_ws.load_volume(copy).shape == (n // f,) * 3
    assert at.session_state[state.SAMPLE_ID] == copy.id or at.session_state[state.PENDING_SAMPLE] == copy.id


def test_blur_warning_keeps_small_particles_at_their_resolution(empty_ws):
    """Particles of a median radius below DOWNSAMPLE_MIN_RADIUS voxels: the page warns of the blur, says to keep the
    resolution, and offers no downsampled copy."""
    from core.synth import ElectrodeParams, ImagingParams, make_electrode
    from ui.advice import DOWNSAMPLE_MIN_RADIUS

    # 0.5 µm blur on 0.25 µm voxels: σ 2 voxels; the demo particles are about 4-8 µm across (8-16 voxels)
    e = make_electrode(ElectrodeParams(shape=(40, 48, 48), spacing=(0.25,) * 3), ImagingParams(blur_um=0.5), rng=2)
    s, radius, at = _analysed_blurred_sample(empty_ws, e, 0.25)
    assert radius < DOWNSAMPLE_MIN_RADIUS
    warned = [w.value for w in at.warning if "wider than the partial-volume correction handles" in w.value]
    assert len(warned) == 1 and "keep this resolution" in warned[0] and "Add a copy" not in warned[0]
    with pytest.raises(KeyError):
        at.button(key=state.k(state.DOWNSAMPLED_COPY, s.id))


@pytest.mark.parametrize("blur, noise, refine, what, particles", [
    (1.2, 0.05, "on", "The phases were", "refined the phases against a model of that blur and seeded on a "
                                         "deconvolved mask"),
    (0.6, 0.10, "nmc", "The NMC surfaces were", "refined the NMC surfaces against a model of that blur and seeded "
                                                "on the NMC phase")])
def test_a_blurred_or_noisy_scan_says_its_phases_were_refined(empty_ws, blur, noise, refine, what, particles):
    """At a blur of 1.2 voxel the analysis refines the thresholded phases (core.phases.forward), at 0.6 with noise
    0.10 of the contrast their NMC surfaces; the Segment and Particles pages say so, with the blur it read."""
    import warnings

    from core.io import save_tiff
    from core.runner import run_analysis
    from core.synth import PackingParams, make_sphere_packing

    e = make_sphere_packing(PackingParams(shape=(64, 64, 64), blur_voxels=blur, noise_contrast=noise), rng=3)
    src = empty_ws.root / "packing.tif"
    save_tiff(src, e.greyscale, e.spacing)
    s = empty_ws.add_sample("packing", str(src), spacing=1.0, group_label="g", source_options={"read": {}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the blur warning of the partial-volume correction
        run_analysis(empty_ws, s.id, empty_ws.load_volume(s))
    latest = empty_ws.latest_analysis(s.id)
    refined = latest.provenance["phase_refinement"]
    assert latest.resolved_params["refine"] == refine and refined["changes"][0] > 0
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    assert any(f"{what} then refined against a model of the scan's blur (σ = {refined['blur']:.2f} voxel)" in c.value
               for c in at.caption)
    assert any("the phases are then refined against a model of that blur" in c.value for c in at.caption)
    # the blur warning reads the wider of the two blurs (QA walk 9: the fit's 0.62 kept it silent at 1.49)
    from core.phases import assess_blur

    sigma = max(float(latest.resolved.segment.pv_sigma), float(refined["blur"]))
    said = [w.value for w in at.warning if w.value.startswith("The blur (σ = ")]
    want = f"The blur (σ = {sigma:.2f} voxel"
    assert [w[:len(want)] for w in said] == ([want] if assess_blur(sigma, 1).kind != "ok" else [])
    at = AppTest.from_file(page("3_particles.py"), default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    assert any(particles in c.value for c in at.caption)


REAL_SLICE = (Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
              / "nanoct_nmc_slices" / "raw_1.tif")


@pytest.mark.skipif(not REAL_SLICE.exists(), reason=f"real data not available at {REAL_SLICE}")
def test_nmc_first_reading_is_offered_where_the_readings_differ(empty_ws):
    """A real nano-CT slice (NMC 65 %): the page offers the NMC-first thresholds and sets them on request."""
    from core.phases import preview_globals

    s = empty_ws.add_sample("raw_1", str(REAL_SLICE), spacing=1.0, source_options={"read": {}})
    g = preview_globals(empty_ws.load_volume(s))
    assert g.alternative is not None and g.alternative[1] < g.suggested[1]
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    k_low, k_high = state.k(state.SEG_LOW, s.id), state.k(state.SEG_HIGH, s.id)
    assert at.slider(key=k_high).value == pytest.approx(g.suggested[1], abs=1e-3)  # the default is unchanged
    assert any("second reading" in i.value for i in at.info)
    at.button(key=state.k(state.SEG_ALTERNATIVE, s.id)).click().run()
    no_exception(at)
    assert at.slider(key=k_low).value == pytest.approx(g.alternative[0], abs=1e-3)
    assert at.slider(key=k_high).value == pytest.approx(g.alternative[1], abs=1e-3)


def test_no_second_reading_on_the_demo(seeded_ws):
    s, at = _open(seeded_ws)
    no_exception(at)
    assert not any("second reading" in i.value for i in at.info)
    with pytest.raises(KeyError):
        at.button(key=state.k(state.SEG_ALTERNATIVE, s.id))


def test_rerun_passes_the_requested_blur_not_the_last_fit(seeded_ws):
    """A rerun fits the blur again: the previous fit's σ is not passed back as if the user had given it
    (else the "blur fit at its upper bound" warning could never appear on a rerun)."""
    s, at = _open(seeded_ws, "pristine")
    before = seeded_ws.latest_analysis(s.id)
    assert before.requested.segment.pv_sigma is None and before.resolved.segment.pv_sigma is not None
    at.button(key=state.k(state.SEG_RUN, s.id)).click().run()
    no_exception(at)
    after = seeded_ws.latest_analysis(s.id)
    assert after.id > before.id and after.status == "done"
    assert after.requested.segment.pv_sigma is None
    assert after.pv_sigma_origin in ("fitted", "fitted_at_bound")


def test_a_single_slice_is_previewed_in_its_plane_without_an_orientation(empty_ws, tmp_path):
    from core.inputs import FileInput
    from core.io import save_tiff
    from core.synth import demo_electrode

    e = demo_electrode("pristine", rng=0, shape=(16, 48, 64))
    save_tiff(tmp_path / "slice.tif", e.greyscale[:, 20:21], e.spacing)  # a y-section: one voxel along y
    s = empty_ws.add_sample("section", FileInput(tmp_path / "slice.tif"), spacing=e.spacing)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    assert not [r for r in at.radio if r.key == state.k(state.SEG_AXIS, s.id)]  # no orientation to pick
    assert not [x for x in at.slider if (x.key or "").startswith(state.k(state.SEG_INDEX, s.id))]
    assert any(c.value == "A single slice (one voxel along y): its plane is shown." for c in at.caption)
    assert any("slice y = 0" in i.proto.imgs[0].caption for i in at.image)  # its plane, 16 x 64
    # a y-section with the thickness along z: depth runs along z in its plane, the choice offered
    assert at.radio(key=state.k(state.SEG_DEPTH_FROM, s.id))
    # the same slice with the thickness along y (across it): no depth, no choice (QA), one caption
    empty_ws.update_sample(s.id, axis=1)
    at.run()
    no_exception(at)
    assert not [r for r in at.radio if r.key == state.k(state.SEG_DEPTH_FROM, s.id)]
    assert "Depth: none (a single slice across the thickness axis, y)." in [c.value for c in at.caption]
    for method in ("classifier",):  # the brush canvas shows the same plane
        at.radio(key=state.SEG_METHOD).set_value(method).run()
        no_exception(at)
        assert any(c.value == "A single slice (one voxel along y): its plane is shown." for c in at.caption)


def test_a_drift_along_z_is_shown_and_flattened_in_preview_and_run(empty_ws, env):
    """A scan whose gain drifts by ±15 % along z: the page warns with the pure levels along z and offers the
    flattening, on by default; the preview reads the flattened volume, and the run records it."""
    s = empty_ws.add_sample("drift", drifting_scan(env / "data" / "drift.tif"), spacing=0.4)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    [w] = [w.value for w in at.warning if "drift along z" in w.value]
    assert "pure NMC grey value" in w
    levels = next(spec for spec in chart_specs(at) if "depth along z" in str(spec))
    assert "vs median (% of contrast)" in str(levels)
    assert any("of the volume flattened along z" in c.value for c in at.caption)
    box = at.checkbox(key=state.k(state.SEG_FLATTEN, s.id))
    assert box.value  # on by default where the drift is worth a warning
    flat_nmc = _metric(at, "NMC (this slice)")
    box.uncheck().run()
    no_exception(at)
    assert _metric(at, "NMC (this slice)") != flat_nmc  # the preview reads the raw volume now
    box = at.checkbox(key=state.k(state.SEG_FLATTEN, s.id))
    box.check().run()
    at.button(key=state.k(state.SEG_RUN, s.id)).click().run()
    no_exception(at)
    a = empty_ws.latest_analysis(s.id)
    assert a.status == "done" and a.params["segment"]["flatten"] is True
    assert a.provenance["shading"]["flattened"] and a.provenance["shading"]["warn"]
    [used] = [c.value for c in at.caption if c.value.startswith("Thresholds used:")]
    assert " grey (automatic) on the volume flattened along z (its drift read as " in used  # sliders untouched
    assert "); denoise none;" in used


def test_a_drift_along_z_is_flattened_for_the_network_too(empty_ws, env):
    """With the 3D U-Net (which scales the whole volume by one pair of percentiles) the drift is said in its terms
    and flattened on request: the histogram and the preview read the flattened volume, the run records it."""
    s = empty_ws.add_sample("drift", drifting_scan(env / "data" / "drift.tif"), spacing=0.4)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    at.radio(key=state.SEG_METHOD).set_value("model").run()
    no_exception(at)
    [w] = [w.value for w in at.warning if "drift along z" in w.value]
    assert "The 3D U-Net, which scales the whole volume by one pair of grey values, then reads" in w
    box = at.checkbox(key=state.k(state.SEG_FLATTEN, s.id))
    assert box.value and "before the 3D U-Net reads it" in box.label
    assert any(c.value.startswith("The 3D U-Net takes the grey values of the volume flattened along z")
               for c in at.caption)
    flat_nmc = _metric(at, "NMC (this slice)")
    box.uncheck().run()
    assert any(c.value.startswith("The 3D U-Net takes the grey values as they are") for c in at.caption)
    assert _metric(at, "NMC (this slice)") != flat_nmc  # the preview reads the raw volume now
    at.checkbox(key=state.k(state.SEG_FLATTEN, s.id)).check().run()
    at.button(key=state.k(state.SEG_RUN, s.id)).click().run()
    no_exception(at)
    a = empty_ws.latest_analysis(s.id)
    assert a.status == "done" and a.params["method"] == "model" and a.params["segment"]["flatten"] is True
    assert a.provenance["shading"]["flattened"]
    assert any(c.value.startswith("Phases by the 3D U-Net on the volume flattened along z (its drift read as ")
               for c in at.caption)


def test_no_drift_no_flatten_on_the_demo(seeded_ws):
    s, at = _open(seeded_ws, "cycled-1C")
    assert not [w for w in at.warning if "drift along z" in w.value]
    assert not [c for c in at.checkbox if c.key == state.k(state.SEG_FLATTEN, s.id)]
    [used] = [c.value for c in at.caption if c.value.startswith("Thresholds used:")]
    assert " grey (automatic); denoise none;" in used  # the demo analysis's caption, not flattened


def test_a_big_sample_read_lazily_is_flattened_box_by_box(empty_ws, env, monkeypatch):
    """A sample too big to hold whole (the rule monkeypatched): the drift read slab by slab, the flattened preview
    read box by box (core.chunked.flattened_array), the flattening offered and ticked."""
    from core.chunked import LazyArray
    from ui import cache

    monkeypatch.setattr(cache, "LAZY_VOXELS", 1000)
    s = empty_ws.add_sample("big", drifting_scan(env / "data" / "big.tif"), spacing=0.4)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    ref = cache.VolumeRef.of(empty_ws, s)
    assert isinstance(cache.volume(cache.flattened_ref(ref)), LazyArray)
    assert [w for w in at.warning if "drift along z" in w.value]
    assert at.checkbox(key=state.k(state.SEG_FLATTEN, s.id)).value
    assert _metric(at, "NMC (this slice)") > 0.2


def test_depth_runs_over_the_electrode_unless_the_volume_is_chosen(seeded_ws):
    """The run's depth_from follows the page's choice (the electrode by default, with the slices it found recorded;
    the imaged volume on request, without them), and the next visit starts from the latest analysis's choice."""
    s, at = _open(seeded_ws, "cycled-1C")
    key = state.k(state.SEG_DEPTH_FROM, s.id)
    assert at.radio(key=key).value == "electrode"
    at.radio(key=key).set_value("volume").run()
    at.button(key=state.k(state.SEG_RUN, s.id)).click().run()
    no_exception(at)
    a = seeded_ws.latest_analysis(s.id)
    assert a.status == "done" and a.resolved.depth_from == "volume" and "depth_extent" not in a.provenance
    assert "depth_from" not in a.params  # written as analyses were before the choice existed
    _, again = _open(seeded_ws, "cycled-1C")
    assert again.radio(key=key).value == "volume"


def test_thresholds_left_as_suggested_run_as_automatic(seeded_ws):
    """Sliders left at (or set back with Suggest to) the thresholds a run without thresholds takes: the run asks for
    none, as the demo analyses did, so the Compare page sees no difference in settings; moved, they are asked for."""
    s, at = _open(seeded_ws, "cycled-1C")
    before = seeded_ws.latest_analysis(s.id)
    assert before.requested.segment.low is None  # the demo analysis: automatic
    at.button(key=state.k(state.SEG_RUN, s.id)).click().run()
    no_exception(at)
    after = seeded_ws.latest_analysis(s.id)
    assert after.id > before.id and after.status == "done"
    assert after.requested.segment.low is None and after.requested.segment.high is None
    assert after.resolved.segment.low == pytest.approx(before.resolved.segment.low)
    assert after.resolved.segment.high == pytest.approx(before.resolved.segment.high)
    cmp = AppTest.from_file(page("4_compare.py"), default_timeout=TIMEOUT).run()
    no_exception(cmp)
    assert not any("used different parameters" in w.value for w in cmp.warning)
    # moved: asked for as set; set back with Suggest: automatic again
    k_low = state.k(state.SEG_LOW, s.id)
    at.slider(key=k_low).set_value(at.slider(key=k_low).value + 300).run()
    at.button(key=state.k(state.SEG_RUN, s.id)).click().run()
    moved = seeded_ws.latest_analysis(s.id)
    assert moved.requested.segment.low == pytest.approx(before.resolved.segment.low + 300)
    at.button(key=state.k(state.SEG_SUGGEST, s.id)).click().run()
    at.button(key=state.k(state.SEG_RUN, s.id)).click().run()
    no_exception(at)
    assert seeded_ws.latest_analysis(s.id).requested.segment.low is None
    [used] = [c.value for c in at.caption if c.value.startswith("Thresholds used:")]
    assert " grey (automatic); denoise none" in used


def test_a_float_scan_s_thresholds_are_said_to_their_digits(empty_ws, env):
    """A reconstruction in floats of about 0-2 (as the real nano-CT slices): the thresholds used are said with their
    digits on this page and in the Samples page's analyses table (they read "1 / 2" while the run used 0.86 /
    1.6), the blur to three."""
    from core.io import save_tiff
    from core.synth import demo_electrode
    from ui import tables

    e = demo_electrode("cycled-1C", rng=0, shape=(32, 48, 48))
    grey = (e.greyscale.astype(np.float32) / float(e.greyscale.max()) * 2.0).astype(np.float32)
    save_tiff(env / "data" / "float.tif", grey, e.spacing)
    s = empty_ws.add_sample("float", str(env / "data" / "float.tif"), spacing=e.spacing)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    at.button(key=state.k(state.SEG_RUN, s.id)).click().run()
    no_exception(at)
    seg = empty_ws.latest_analysis(s.id).resolved.segment
    assert 0 < seg.low < seg.high < 2
    [used] = [c.value for c in at.caption if c.value.startswith("Thresholds used:")]
    assert used.startswith(f"Thresholds used: {seg.low:.4g} / {seg.high:.4g} grey (automatic)")
    assert f"partial-volume blur σ = {seg.pv_sigma:.3g} voxels." in used
    shown = tables.analyses_table(empty_ws.list_analyses(s.id))
    assert shown["thresholds (grey)"].tolist() == [f"{seg.low:.4g} / {seg.high:.4g}"]
    assert [tables.grey_text(v) for v in (None, float("nan"), 12345.6, 99.95, 0.000123456)] == \
        ["–", "–", "12346", "99.95", "0.0001235"]


REAL_360 = REAL_SLICE.parent / "raw_360.tif"


@pytest.mark.skipif(not REAL_360.exists(), reason=f"real data not available at {REAL_360}")
def test_a_real_slice_whose_edges_give_no_blur_says_both_readings(empty_ws, env):
    """Real nano-CT slice B-360: the partial-volume fit reads a blur of 2.74 voxels, the widths of its pore-NMC
    edges none (too few clean edges): the pages said "blur 2.739 estimated as the full run does", then that the
    analysis "could not measure the blur". After a run both pages name the two readings and what was not done."""
    s = empty_ws.add_sample("raw_360", str(REAL_360), spacing=1.0, source_options={"read": {}})
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    at.button(key=state.k(state.SEG_RUN, s.id)).click().run()
    no_exception(at)
    a = empty_ws.latest_analysis(s.id)
    assert a.provenance["refine_auto"]["refine"] == "off" and np.isnan(a.provenance["refine_auto"]["blur_voxels"])
    assert a.resolved.segment.pv_sigma > 2
    assert any(c.value.startswith("The blur could not be read from the widths of the pore-NMC edges")
               for c in at.caption)
    at = AppTest.from_file(page("3_particles.py"), default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    assert any(f"the partial-volume correction's σ = {a.resolved.segment.pv_sigma:.2f} voxel is another reading"
               in c.value for c in at.caption)


def test_the_histogram_says_how_many_voxels_it_counts(seeded_ws, empty_ws, env):
    """It said "a strided sample of about a million voxels" of a 286,000-pixel slice: it names the count."""
    from core.io import save_tiff

    s, at = _open(seeded_ws)
    no_exception(at)
    n = int(np.prod(seeded_ws.load_volume(s).shape))
    assert any(c.value.startswith(f"Histogram of all {n:,} voxels of the raw volume") for c in at.caption)
    img = (np.random.default_rng(0).random((1, 500, 572)) * 1000).astype(np.uint16)
    save_tiff(env / "data" / "slice.tif", img, (1.0, 1.0, 1.0))
    big = (np.random.default_rng(1).random((40, 256, 256)) * 1000).astype(np.uint16)  # 2.6 M voxels
    save_tiff(env / "data" / "big.tif", big, (1.0, 1.0, 1.0))
    for name, words in (("slice.tif", "Histogram of all 286,000 voxels"),
                        ("big.tif", "Histogram of a strided sample of ")):
        t = empty_ws.add_sample(name, str(env / "data" / name), spacing=1.0)
        at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
        at.session_state[state.SAMPLE_ID] = t.id
        at.run()
        no_exception(at)
        assert any(c.value.startswith(words) for c in at.caption), [c.value for c in at.caption]


def test_the_latest_analysis_s_phases_are_shown_and_said_where_another_method_is_chosen(seeded_ws):
    """QA: a sample classified with strokes painted on another opened on the threshold preview, and its analysed
    phases could be seen nowhere.  The page shows the stored phases of the latest analysis on a slice, opened by
    itself, with a sentence, where the method chosen now is not the one that made them."""
    s, at = _open(seeded_ws, "pristine")
    no_exception(at)
    latest = seeded_ws.latest_analysis(s.id)
    [box] = [e for e in at.expander if e.label == f"Phases of analysis #{latest.id} on a slice"]
    assert not box.proto.expanded and not any("made its phases with" in i.value for i in at.info)
    [img] = [i for i in at.image if f"(analysis #{latest.id}, thresholds)" in i.proto.imgs[0].caption]
    assert "grey values with the analysed phases over them" in img.proto.imgs[0].caption
    at.radio(key=state.SEG_METHOD).set_value("model").run()
    no_exception(at)
    assert any(i.value == f"Analysis #{latest.id} made its phases with thresholds; the preview above is of the "
                          "trained 3D U-Net. Its phases are shown below." for i in at.info)
    [box] = [e for e in at.expander if e.label == f"Phases of analysis #{latest.id} on a slice"]
    assert box.proto.expanded
    # on the middle z slice of the stored phases, over the grey values
    z = np.asarray(seeded_ws.load_phases(latest)).shape[0] // 2
    assert box.slider[0].value == z
    [img] = list(box.image)
    assert img.proto.imgs[0].caption.startswith(f"slice z = {z}: grey values with the analysed phases")


def test_the_last_run_cancelled_or_failed_is_named_as_an_analysis(seeded_ws):
    """QA: "The last run (#13) failed: The run was interrupted (JobCancelled)." called the user's own Cancel a failure,
    and "#13" read as the sidebar's job numbers."""
    from core.pipeline import AnalysisParams

    s = seeded_ws.list_samples()[0]
    aid = seeded_ws.begin_analysis(s.id, AnalysisParams())
    seeded_ws.fail_analysis(aid, "Cancelled on request before it finished.")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    assert f"The last analysis (analysis {aid}) was cancelled on request before it finished." in [i.value for i in at.info]
    assert not [w for w in at.warning if "failed" in w.value]
    bad = seeded_ws.begin_analysis(s.id, AnalysisParams())
    seeded_ws.fail_analysis(bad, "No NMC voxels.")
    at.run()
    assert f"The last analysis (analysis {bad}) failed: No NMC voxels." in [w.value for w in at.warning]


def test_a_volume_that_cannot_be_segmented_is_said_in_one_sentence(empty_ws):
    """QA walk 9: a constant volume, or one with 1 % NaN, showed a traceback on this page."""
    root = empty_ws.root
    np.save(root / "c.npy", np.full((12, 16, 16), 0.5, np.float32))
    nan = np.random.default_rng(0).random((12, 16, 16)).astype(np.float32)
    nan.flat[::50] = np.nan
    np.save(root / "n.npy", nan)
    said = {"const": "This volume cannot be segmented: it is constant (every voxel = 0.5): nothing to segment.",
            "nan": "This volume cannot be segmented: it has 2.0% non-finite voxels (NaN or infinite; at most 0.1% "
                   "are filled): crop it to the region with data, or give those voxels a grey value before the "
                   "analysis."}
    for name in said:
        s = empty_ws.add_sample(name, str(root / f"{name[0]}.npy"), spacing=0.4)
        at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
        at.session_state[state.SAMPLE_ID] = s.id
        at.run()
        no_exception(at)
        assert [e.value for e in at.error] == [said[name]]


def test_the_threshold_run_says_how_its_phases_can_differ_from_the_preview(seeded_ws):
    """QA walk 9: at a blur of 1.5 voxel the preview read twice the CBD the refined analysis found on that slice,
    under a caption promising a voxel or so."""
    s, at = _open(seeded_ws)
    assert any("so the analysis's phases can differ from this preview: surfaces move by a voxel or so, and on a "
               "strongly blurred scan much of the CBD the thresholds read at the particles' edges goes" in c.value
               for c in at.caption)
