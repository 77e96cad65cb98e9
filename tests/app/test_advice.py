"""The dashboard's wording of the blur assessment (ui.advice) and the run's own warning (core.pipeline)."""

from __future__ import annotations

import pytest

from core.phases import PV_SIGMA_MAX, SIGMA_BOUNDS, assess_blur
from ui.advice import blur_warning


def warning(sigma, downsampled=1, *, estimated=True):
    return blur_warning(assess_blur(sigma, downsampled, origin="fitted" if estimated else "given"))


def test_blur_warning_beyond_the_validated_blur():
    assert warning(0.75) is None and warning(PV_SIGMA_MAX) is None
    msg = warning(1.3)
    assert "σ = 1.30 voxel" in msg and "Downsample the volume by 2" in msg and "\n" not in msg
    # either way (QA walk 9: "underestimated ... a lower bound" of a run 0.21 too high, thin CBD films read as pore)
    assert "the detachment can be wrong either way: thin pore gaps close up (too low)" in msg
    assert "underestimated" not in msg and "lower bound" not in msg
    assert "Downsample the volume by 3" in warning(2.0)
    # QA walk 9: offered 3, validated at 2 (it read 0.69 against 0.36 from the phases)
    assert "more than 2 was not validated" in warning(2.0) and "not validated" not in warning(1.3)
    assert warning(0.93, 2) is None
    msg = warning(1.4, 2)
    assert "without the box of the downsampling by 2" in msg and "Downsample the volume by 2" in msg
    assert "cannot be downsampled further (at most 8 in all)" in warning(2.9, 8)
    # at the fit's upper bound the blur was not measured: no downsampling advice
    msg = warning(SIGMA_BOUNDS[1])
    assert "reached its upper bound" in msg and "downsample" not in msg
    # a blur given by the user is taken as measured
    assert "Downsample the volume by 4" in warning(3.0, estimated=False)


@pytest.mark.parametrize("sigma, downsampled", [(1.3, 1), (1.4, 2), (2.9, 8), (SIGMA_BOUNDS[1], 1)])
def test_the_app_names_its_buttons_and_the_run_only_the_cli(sigma, downsampled):
    from core.pipeline import _blur_warning

    blur = assess_blur(sigma, downsampled)
    app, run = blur_warning(blur), _blur_warning(blur)
    assert app.split(" (")[0] == run.split(" (")[0]  # the same verdict, worded for each
    assert "Segment page" not in run and "\n" not in run
    if blur.factor > 1:
        assert f"'Add a copy downsampled by {blur.factor}' on the Segment page" in app
        assert f"downsample the volume by {blur.factor}" in run and f"--downsample {blur.factor}" in run
        # written before the particles are known, the run's warning states the size rule the app applies
        from core.phases import DOWNSAMPLE_MIN_RADIUS

        assert f"median radius is {DOWNSAMPLE_MIN_RADIUS:g} voxels or more, downsample" in run
        assert "keep their resolution" in run


def test_small_particles_are_advised_to_keep_their_resolution():
    """Below DOWNSAMPLE_MIN_RADIUS voxels of median radius the warning advises against downsampling (and the page
    offers no downsampled copy); at or above it, and without a size, it advises downsampling as before."""
    from ui.advice import DOWNSAMPLE_MIN_RADIUS, advises_downsampling

    blur = assess_blur(1.3, 1)
    assert advises_downsampling(blur) and advises_downsampling(blur, DOWNSAMPLE_MIN_RADIUS)
    assert blur_warning(blur, DOWNSAMPLE_MIN_RADIUS) == blur_warning(blur)
    small = blur_warning(blur, 9.6)
    assert not advises_downsampling(blur, 9.6)
    assert "median radius 10 voxels" in small and "keep this resolution" in small
    assert "downsample the volume by" not in small and "Add a copy" not in small and "\n" not in small
    # no downsampling advice where there is no blur problem or no factor left, whatever the size
    assert not advises_downsampling(assess_blur(0.75, 1), 50) and blur_warning(assess_blur(0.75, 1), 5) is None
    assert not advises_downsampling(assess_blur(2.9, 8), 50)
    assert "cannot be downsampled further" in blur_warning(assess_blur(2.9, 8), 5)


def test_median_radius_from_the_particle_table():
    import pandas as pd

    from ui.advice import median_radius_voxels

    t = pd.DataFrame({"equiv_diameter_um": [8.0, 10.0, 12.0, 2.0], "touches_edge": [False, False, False, True]})
    assert median_radius_voxels(t, (0.5, 0.5, 0.5)) == pytest.approx(10.0)  # 10 µm across, 0.5 µm voxels: edge left out
    assert median_radius_voxels(t[t["touches_edge"]], 1.0) == pytest.approx(1.0)  # only edge particles: all of them
    assert median_radius_voxels(t.iloc[:0], 1.0) is None and median_radius_voxels(None, 1.0) is None


def test_seeding_reading_says_when_the_blur_could_not_be_measured():
    from ui.advice import seeding_reading

    assert seeding_reading({"blur_voxels": 1.234, "seeding": "deconvolved"}, None) == (
        "The latest analysis measured a blur of 1.23 voxel from the widths of the pore-NMC edges and seeded on a "
        "deconvolved mask.")
    assert seeding_reading({"blur_voxels": 0.8, "seeding": "phases"}, {"moves": "nmc"}) == (
        "The latest analysis measured a blur of 0.80 voxel from the widths of the pore-NMC edges, refined the NMC "
        "surfaces against a model of that blur and seeded on the NMC phase.")
    # both readings where they differ (QA, the FIB-SEM slice: 0.83 here, 0.858 on the Segment page), one where not
    assert seeding_reading({"blur_voxels": 0.83, "seeding": "phases"}, None, pv_sigma=0.858).endswith(
        "seeded on the NMC phase; the partial-volume correction's σ = 0.86 voxel (Segment page) is another reading, "
        "fitted to the grey values around the NMC.")
    assert seeding_reading({"blur_voxels": 0.8, "seeding": "phases"}, None, pv_sigma=0.801).endswith(
        "edges and seeded on the NMC phase.")
    said = seeding_reading({"blur_voxels": float("nan"), "seeding": "phases"}, None)
    assert "nan" not in said and said == (
        "The latest analysis could not read the blur from the widths of the pore-NMC edges (too few clean edges, or "
        "too small for the edge profiles), so it did not refine the phases, and seeded on the NMC phase.")
    # the partial-volume fit's own blur (a real nano-CT slice: 2.74 voxels where the edges gave none) is named as
    # another reading, not left to contradict the sentence
    said = seeding_reading({"blur_voxels": float("nan"), "seeding": "phases"}, None, pv_sigma=2.739)
    assert said.endswith("seeded on the NMC phase; the partial-volume correction's σ = 2.74 voxel is another "
                         "reading, fitted to the grey values around the NMC.")


def test_refine_reading_says_when_the_edges_gave_no_blur():
    from ui.advice import refine_reading

    nan = float("nan")
    assert refine_reading({"refine_auto": {"blur_voxels": nan, "noise_contrast": 0.17, "refine": "off"}}) == (
        "The blur could not be read from the widths of the pore-NMC edges (too few clean edges), so the phases were "
        "not refined against it; the partial-volume blur σ is another reading, fitted to the grey values around the "
        "NMC.")
    assert refine_reading({"refine_auto": {"blur_voxels": 1.3, "refine": "on"}}) is None
    assert refine_reading({"refine_auto": {"blur_voxels": 0.5, "refine": "off"}}) is None
    assert refine_reading({}) is None and refine_reading(None) is None


def test_an_unmeasured_blur_is_said_beside_the_particles_and_in_the_comparison(seeded_ws, monkeypatch):
    """QA: a real nano-CT slice read a median detachment of 0.00 (its manual labels: 0.33), a blurred ring around
    every particle read as CBD; only the Segment page said the blur fit had reached its bound. The Particles page
    (and its report) and the Compare page say it beside the numbers."""
    from types import SimpleNamespace

    from streamlit.testing.v1 import AppTest

    from apphelpers import TIMEOUT, no_exception, page
    from ui import advice, state

    def analysis(sigma, origin, *, pv=True, preseg=False):
        seg = SimpleNamespace(partial_volume=pv, pv_sigma=sigma)
        return SimpleNamespace(resolved=SimpleNamespace(segment=seg), provenance={"presegmented": preseg},
                               pv_sigma_origin=origin)

    top = SIGMA_BOUNDS[1]
    assert advice.blur_not_measured(analysis(top, "fitted_at_bound")) == pytest.approx(top)
    assert advice.blur_not_measured(analysis(0.8, "fitted")) is None
    assert advice.blur_not_measured(analysis(top, "fitted_at_bound", pv=False)) is None
    assert advice.blur_not_measured(analysis(top, "fitted_at_bound", preseg=True)) is None
    note = advice.unmeasured_blur_note(top, 0.004)
    assert note.startswith(f"The blur fit of this analysis reached its upper bound (σ = {top:.2f} voxel)")
    assert "(median detachment 0.00 here)" in note

    first = seeded_ws.list_samples()[0]
    monkeypatch.setattr(advice, "blur_not_measured", lambda a, d=1: top if a.sample_id == first.id else None)
    at = AppTest.from_file(page("3_particles.py"), default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = first.id
    at.run()
    no_exception(at)
    assert [w for w in at.warning if w.value.startswith("The blur fit of this analysis reached its upper bound")]
    at = AppTest.from_file(page("4_compare.py"), default_timeout=TIMEOUT).run()
    no_exception(at)
    [said] = [w.value for w in at.warning if "the blur fit reached its upper bound" in w.value]
    assert said.startswith(f"{first.name} (SYNTHETIC): the blur fit")
