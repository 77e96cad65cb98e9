"""Tests for core.phases.forward (phases refined against a forward model of the blurred, noisy image)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

import core.phases.forward as F
from core.codes import CBD, NMC, PORE
from core.phases.forward import forward_energy, refine_phases

MU = (10000.0, 20000.0, 35000.0)
CONTRAST = MU[2] - MU[0]


def _image(phases, blur, noise, seed=0):
    grey = ndi.gaussian_filter(np.asarray(MU)[phases], blur)
    return (grey + np.random.default_rng(seed).normal(0, noise, phases.shape)).astype(np.float32)


def _threshold(grey):
    """Two thresholds at the midpoints of the pure grey values: what a blur-blind segmentation reads."""
    lo, hi = (MU[0] + MU[1]) / 2, (MU[1] + MU[2]) / 2
    return np.where(grey < lo, PORE, np.where(grey < hi, CBD, NMC)).astype(np.uint8)


def _coated_sphere():
    """An NMC sphere (radius 9) under a one-voxel pore gap; CBD (to radius 13) on one half, pore on the other."""
    z, y, x = np.indices((40, 40, 40))
    d = np.sqrt((z - 19.5) ** 2 + (y - 19.5) ** 2 + (x - 19.5) ** 2)
    phases = np.zeros(d.shape, np.uint8)
    phases[(d < 13) & (x >= 19)] = CBD
    phases[d < 10] = PORE
    phases[d < 9] = NMC
    gap = (d >= 9) & (d < 10) & (x >= 20)  # the gap where CBD lies beyond it
    return phases, gap


@pytest.mark.parametrize("shape, blur", [((12, 9, 7), 1.2), ((24, 20, 18), 0.9), ((5, 40, 3), 1.5)])
def test_the_tracked_energy_change_is_the_energy_change(shape, blur):
    """The local updates (mirrored at the faces, also where the volume is thinner than the kernel) add up to the
    whole-volume energy difference."""
    rng = np.random.default_rng(1)
    phases = rng.integers(0, 2, shape).astype(np.uint8)  # pore and CBD: no NMC specks to revert
    phases[: shape[0] // 2, : shape[1] // 2] = NMC
    grey = rng.normal(20000, 5000, shape).astype(np.float32)
    out, info = refine_phases(grey, phases, blur=blur, noise=3000.0, references=MU, sweeps=3)
    assert info["reverted_nmc_voxels"] == 0 and sum(info["changes"]) > 0
    e0 = forward_energy(grey, phases, blur=blur, noise=3000.0, references=MU)
    e1 = forward_energy(grey, out, blur=blur, noise=3000.0, references=MU)
    assert e1 - e0 == pytest.approx(info["energy_change"], rel=1e-4)
    assert info["energy_change"] < 0


@pytest.mark.parametrize("blur", [1.0, 1.2])
def test_refinement_opens_a_thin_gap_the_thresholds_miss_and_leaves_fewer_voxels_wrong(blur):
    truth, gap = _coated_sphere()
    grey = _image(truth, blur, 0.05 * CONTRAST)
    thr = _threshold(grey)
    out, _ = refine_phases(grey, thr, blur=blur, noise=0.05 * CONTRAST, references=MU)
    assert (thr[gap] == PORE).mean() < 0.05  # the blur fills the gap for the thresholds
    assert (out[gap] == PORE).mean() > 0.2
    assert np.count_nonzero(out != truth) < 0.8 * np.count_nonzero(thr != truth)


def test_a_uniform_pair_cost_would_close_the_gap(monkeypatch):
    """Why the pair cost does not count pore against CBD: with every unlike pair costing the same, a pore gap
    between NMC and CBD costs a pair more than NMC touching CBD, and the refinement closes it."""
    truth, gap = _coated_sphere()
    grey = _image(truth, 1.0, 0.05 * CONTRAST)
    monkeypatch.setattr(F, "PAIR_COST", np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]))
    out, _ = refine_phases(grey, _threshold(grey), blur=1.0, noise=0.05 * CONTRAST, references=MU)
    assert (out[gap] == PORE).mean() < 0.1


def test_refinement_adds_no_nmc_component_and_is_deterministic():
    truth, _ = _coated_sphere()
    grey = _image(truth, 1.2, 0.09 * CONTRAST, seed=3)
    thr = _threshold(grey)
    a, info = refine_phases(grey, thr, blur=1.2, noise=0.09 * CONTRAST, references=MU)
    b, _ = refine_phases(grey, thr, blur=1.2, noise=0.09 * CONTRAST, references=MU)
    np.testing.assert_array_equal(a, b)
    comp, n = ndi.label(a == NMC)
    assert n >= 1 and all((thr[comp == i] == NMC).any() for i in range(1, n + 1))
    assert info["changes"][0] > 0 and set(info) >= {"energy_change", "reverted_nmc_voxels", "blur", "noise", "beta"}


def test_refine_phases_refuses_bad_input():
    phases = np.zeros((8, 8, 8), np.uint8)
    grey = np.zeros((8, 8, 8), np.float32)
    kw = dict(blur=1.0, noise=100.0, references=MU)
    with pytest.raises(ValueError, match="blur must be"):
        refine_phases(grey, phases, **{**kw, "blur": 0.0})
    with pytest.raises(ValueError, match="noise must be"):
        refine_phases(grey, phases, **{**kw, "noise": float("nan")})
    with pytest.raises(ValueError, match="beta must be"):
        refine_phases(grey, phases, beta=-1.0, **kw)
    with pytest.raises(ValueError, match="sweeps must be"):
        refine_phases(grey, phases, sweeps=0, **kw)
    with pytest.raises(ValueError, match="references must be three"):
        refine_phases(grey, phases, **{**kw, "references": (1.0, 2.0)})
    with pytest.raises(ValueError, match="references must be finite"):
        refine_phases(grey, phases, **{**kw, "references": (float("nan"), 2.0, 3.0)})
    with pytest.raises(ValueError, match="differs from phases shape"):
        refine_phases(grey[:4], phases, **kw)
    with pytest.raises(ValueError, match="must be 3D"):
        refine_phases(grey[0], phases[0], **kw)
    with pytest.raises(ValueError, match="moves must be one of"):
        refine_phases(grey, phases, moves="pore", **kw)


def test_an_absent_phase_may_have_no_reference():
    from core.phases.forward import _codes_present

    phases = np.zeros((6, 7, 8), np.uint8)
    phases[2:5, 2:5, 2:6] = NMC
    grey = np.where(phases == NMC, MU[2], MU[0]).astype(np.float32)
    out, _ = refine_phases(grey, phases, blur=1.0, noise=100.0, references=(MU[0], float("nan"), MU[2]))
    assert not (out == 1).any()  # no CBD proposed: no neighbour has it
    with pytest.raises(ValueError, match="references must be finite"):
        refine_phases(grey, phases, blur=1.0, noise=100.0, references=(MU[0], 2.0, float("nan")))
    np.testing.assert_array_equal(_codes_present(phases.ravel()), [True, False, True])
    phases[0, 0, 0] = 1
    np.testing.assert_array_equal(_codes_present(phases[:, ::2].ravel()), [True, True, True])
    np.testing.assert_array_equal(_codes_present(phases[1:].ravel()), [True, False, True])


def test_nmc_moves_never_swap_pore_and_cbd_and_still_track_the_energy():
    """moves="nmc": every change is into or out of NMC (pore and CBD as thresholded); where "all" moves, it also
    swaps pore and CBD.  The tracked energy change is still the energy change."""
    truth, gap = _coated_sphere()
    grey = _image(truth, 1.0, 0.09 * CONTRAST, seed=4)
    thr = _threshold(grey)
    kw = dict(blur=1.0, noise=0.09 * CONTRAST, references=MU)
    nmc, info = refine_phases(grey, thr, moves="nmc", **kw)
    every, _ = refine_phases(grey, thr, **kw)
    changed = nmc != thr
    assert info["moves"] == "nmc" and changed.sum() > 100
    assert ((nmc[changed] == NMC) | (thr[changed] == NMC)).all()
    swapped = (every != thr) & (every != NMC) & (thr != NMC)
    assert swapped.sum() > 100
    assert (nmc[gap] == PORE).mean() < 0.05  # the gap is a pore/CBD reading: left as the thresholds have it
    assert np.count_nonzero((nmc == NMC) != (truth == NMC)) < np.count_nonzero((thr == NMC) != (truth == NMC))
    # one sweep visits each voxel once: nothing goes pore -> NMC -> CBD, nothing to restore, the books balance
    one, info1 = refine_phases(grey, thr, moves="nmc", sweeps=1, **kw)
    assert info1["restored_voxels"] == 0 and info1["reverted_nmc_voxels"] == 0
    e0, e1 = (forward_energy(grey, p, **kw) for p in (thr, one))
    assert e1 - e0 == pytest.approx(info1["energy_change"], rel=1e-4)


# --- the switch in the pipeline (AnalysisParams.refine) ---------------------------------------------------------

def _packing(blur: float, seed: int = 3):
    from core.synth import PackingParams, make_sphere_packing

    return make_sphere_packing(PackingParams(shape=(64, 64, 64), blur_voxels=blur, noise_contrast=0.05), rng=seed)


def test_refine_switch_round_trips_and_old_dicts_read_as_off():
    from core.pipeline import AnalysisParams

    assert AnalysisParams().refine == "auto" and AnalysisParams().to_dict()["refine"] == "auto"
    assert AnalysisParams.from_dict(AnalysisParams().to_dict()) == AnalysisParams()
    # parameters written before the refinement have no "refine": they replay without it
    old = {k: v for k, v in AnalysisParams().to_dict().items() if k != "refine"}
    assert AnalysisParams.from_dict(old).refine == "off"
    assert "refine" not in AnalysisParams(refine="off").to_dict()
    for choice in ("on", "nmc"):
        on = AnalysisParams(refine=choice)
        assert AnalysisParams.from_dict(on.to_dict()) == on
    with pytest.raises(ValueError, match="refine"):
        AnalysisParams(refine="yes")


@pytest.mark.parametrize("blur, want", [(0.6, "off"), (1.2, "on")])
def test_run_resolves_auto_refine_by_the_blur_and_records_it(blur, want):
    import warnings

    from core.pipeline import AnalysisParams, run

    e = _packing(blur)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auto = run(e.greyscale, spacing=e.spacing)
        off = run(e.greyscale, AnalysisParams(refine="off"), spacing=e.spacing)
        on = run(e.greyscale, AnalysisParams(refine="on"), spacing=e.spacing)
    assert auto.params.refine == want and off.params.refine == "off" and on.params.refine == "on"
    # one reading of the blur decides both the refinement and the seeding
    assert auto.provenance["seeding_auto"]["seeding"] == ("deconvolved" if want == "on" else "phases")
    same = on if want == "on" else off
    np.testing.assert_array_equal(auto.phases, same.phases)
    np.testing.assert_array_equal(auto.labels, same.labels)
    assert ("phase_refinement" in auto.provenance) == (want == "on")
    assert "phase_refinement" not in off.provenance
    rec = on.provenance["phase_refinement"]
    assert rec["changes"][0] > 0 and rec["blur"] == pytest.approx(blur, abs=0.15)
    assert not np.array_equal(on.phases, off.phases)
    # the refined phases are closer to the truth than the thresholded ones
    assert np.count_nonzero(on.phases != e.phases) < np.count_nonzero(off.phases != e.phases)
    # presegmented input has no greyscale: never refined
    pre = run(e.phases, AnalysisParams(refine="on"), spacing=e.spacing, presegmented=True)
    assert pre.params.refine == "off" and "phase_refinement" not in pre.provenance


@pytest.mark.parametrize("noise, want", [(0.05, "off"), (0.10, "nmc")])
def test_auto_refines_the_nmc_surfaces_of_a_noisy_scan_below_the_blur_rule(noise, want):
    """Blur 0.6 (below AUTO_BLUR): "auto" refines the NMC surfaces where the noise reads at least AUTO_NOISE of the
    contrast, and records what it read; the result is that of refine="nmc" (or "off")."""
    import warnings

    from core.pipeline import AnalysisParams, run
    from core.synth import PackingParams, make_sphere_packing

    e = make_sphere_packing(PackingParams(shape=(64, 64, 64), blur_voxels=0.6, noise_contrast=noise), rng=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auto = run(e.greyscale, spacing=e.spacing)
        same = run(e.greyscale, AnalysisParams(refine=want), spacing=e.spacing)
    assert auto.params.refine == want and auto.params.seeding == "phases"
    read = auto.provenance["refine_auto"]
    assert read["refine"] == want and read["noise_contrast"] == pytest.approx(noise, abs=0.01)
    assert read["blur_voxels"] == pytest.approx(0.6, abs=0.15)
    np.testing.assert_array_equal(auto.phases, same.phases)
    np.testing.assert_array_equal(auto.labels, same.labels)
    if want == "nmc":
        rec = auto.provenance["phase_refinement"]
        assert rec["moves"] == "nmc" and rec["changes"][0] > 0
        thr = run(e.greyscale, AnalysisParams(refine="off"), spacing=e.spacing).phases
        changed = auto.phases != thr
        assert ((auto.phases[changed] == NMC) | (thr[changed] == NMC)).all()
    else:
        assert "phase_refinement" not in auto.provenance


def test_refine_on_warns_where_the_blur_cannot_be_measured():
    from core.pipeline import AnalysisParams, run
    from core.synth import make_sphere_packing, PackingParams

    e = make_sphere_packing(PackingParams(shape=(24, 24, 24), blur_voxels=1.2, noise_contrast=0.05), rng=0)
    with pytest.warns(UserWarning, match="phases were not refined"):
        r = run(e.greyscale, AnalysisParams(refine="on"), spacing=e.spacing)
    assert r.params.refine == "off"


def test_a_blur_read_as_zero_leaves_the_phases_unrefined_instead_of_failing():
    """Edges as sharp as the blur reading resolves (a noisy image without blur) read a blur of 0 voxel: auto leaves
    the phases as thresholded (its noise rule alone would refine the NMC surfaces), 'on' says why; neither fails
    on refine_phases' refusal of a zero blur (it did)."""
    from core.pipeline import AnalysisParams, run
    from core.seeding import estimate_blur

    img = (np.random.default_rng(0).random((1, 300, 400)) * 200).astype(np.uint8)
    auto = run(img, spacing=(0.025,) * 3)
    assert auto.provenance["refine_auto"]["blur_voxels"] == 0.0 and auto.provenance["refine_auto"]["refine"] == "off"
    assert auto.params.refine == "off" and "phase_refinement" not in auto.provenance
    assert estimate_blur(img, auto.phases) == 0.0
    with pytest.warns(UserWarning, match=r"as sharp as its blur can be read \(blur 0 voxel\), so the phases were not"):
        on = run(img, AnalysisParams(refine="on"), spacing=(0.025,) * 3)
    assert on.params.refine == "off"
    np.testing.assert_array_equal(on.phases, auto.phases)


def test_the_chunked_engine_refuses_refine_on():
    from core.chunked.analysis import check_supported
    from core.pipeline import AnalysisParams

    check_supported(AnalysisParams())  # "auto": not refined there
    for choice in ("on", "nmc"):
        with pytest.raises(ValueError, match="does not refine the phases"):
            check_supported(AnalysisParams(refine=choice))


def test_the_two_halves_run_side_by_side_track_the_energy_and_repeat(monkeypatch):
    """With two cores a sweep visits the two halves at once (then the band between): the tracked energy change is
    still the energy change, and the result does not depend on the timing."""
    from core import _kernels as K

    rng = np.random.default_rng(2)
    shape = (64, 20, 20)  # room for two halves apart by the kernel (blur 1: half-width 5)
    phases = rng.integers(0, 2, shape).astype(np.uint8)
    phases[:, :10] = NMC
    grey = rng.normal(20000, 5000, shape).astype(np.float32)
    kw = dict(blur=1.0, noise=3000.0, references=MU)
    monkeypatch.setattr(K, "cores", lambda: 2)
    runs = [refine_phases(grey, phases, **kw) for _ in range(3)]
    for out, info in runs[1:]:
        np.testing.assert_array_equal(out, runs[0][0])
    out, info = runs[0]
    assert info["reverted_nmc_voxels"] == 0
    e0, e1 = (forward_energy(grey, p, **kw) for p in (phases, out))
    assert e1 - e0 == pytest.approx(info["energy_change"], rel=1e-4)
    monkeypatch.setattr(K, "cores", lambda: 1)  # one raster sweep: another visiting order, the same energy books
    seq, info1 = refine_phases(grey, phases, **kw)
    assert forward_energy(grey, seq, **kw) - e0 == pytest.approx(info1["energy_change"], rel=1e-4)


def test_the_memory_estimate_counts_an_explicit_refinement_and_auto_checks_again(monkeypatch):
    """refine "on" / "nmc" add a step of 7 B per voxel (4.25 measured at the peak, the thresholded phases it refines
    in place and margin), above the default particles step; "auto" is estimated as not refining, and the run checks
    again when it picks a refinement, leaving the phases as thresholded (with a warning) where that does not fit."""
    import warnings

    import core.pipeline as pipeline
    from core.memory import MemoryBudgetError, estimate_peak_bytes
    from core.pipeline import AnalysisParams, run
    from core.synth import PackingParams, make_sphere_packing

    shape = (512, 512, 512)
    n = 512 ** 3
    off = estimate_peak_bytes(shape, np.uint16, AnalysisParams(refine="off"))
    assert estimate_peak_bytes(shape, np.uint16, AnalysisParams()) == off
    for choice in ("on", "nmc"):
        est = estimate_peak_bytes(shape, np.uint16, AnalysisParams(refine=choice))
        assert est > off and est >= 2 * n + 7 * n

    real = pipeline.check_memory

    def tight(shape, dtype, params, **kw):
        if params.refine != "auto" and params.refine != "off":
            raise MemoryBudgetError("needs 9.9 GiB, 1.0 GiB available")
        return real(shape, dtype, params, **kw)

    monkeypatch.setattr(pipeline, "check_memory", tight)
    e = make_sphere_packing(PackingParams(shape=(64, 64, 64), blur_voxels=0.6, noise_contrast=0.10), rng=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = run(e.greyscale, spacing=e.spacing)
    assert r.params.refine == "off" and r.provenance["refine_auto"]["refine"] == "off"
    assert "phase_refinement" not in r.provenance
    assert any("left as thresholded" in str(w.message) for w in caught)


def test_the_cli_help_and_the_readme_quote_the_rule_constants():
    """The CLI help (kept free of numba imports, so written out) and the README say the thresholds of
    refine="auto" as the code has them."""
    from pathlib import Path

    from core.phases.forward import AUTO_NOISE
    from core.seeding import AUTO_BLUR

    root = Path(__file__).resolve().parents[2]
    cli = " ".join((root / "core" / "cli.py").read_text().split())
    readme = " ".join((root / "README.md").read_text().split())
    cli = cli.replace('" "', "")  # the help's implicitly joined string pieces
    assert f"blur measures {AUTO_BLUR} voxel or more, else nmc where its noise measures {AUTO_NOISE:g} of the " \
           "pore-NMC contrast" in cli
    assert f"where the blur measured on the scan is {AUTO_BLUR} voxel or more" in readme
    assert f"noise of {AUTO_NOISE:g} of the pore-NMC contrast or more, it refines the NMC surfaces only" in readme


@pytest.mark.parametrize("cores", [1, 2])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_revert_specks_equals_the_connected_components_reference(monkeypatch, seed, cores):
    """The speck revert (a flood over the new NMC only) against cc3d's components of the refined NMC: the
    components that hold no input NMC take their input phases, all else stays (new NMC listed on 1 or 2 cores)."""
    import cc3d
    from scipy import ndimage as ndi

    from core import _kernels as K
    from core.phases.forward import _revert_specks

    monkeypatch.setattr(K, "cores", lambda: cores)

    rng = np.random.default_rng(seed)
    shape = (17, 23, 19)
    phases = rng.integers(0, 3, shape).astype(np.uint8)
    phases = ndi.median_filter(phases, 3)
    out = phases.copy()
    flip = rng.random(shape) < 0.25  # moves into NMC and out of it, as a refinement makes them
    out[flip] = np.where(rng.random(int(flip.sum())) < 0.6, 2, rng.integers(0, 2, int(flip.sum())))
    comp = cc3d.connected_components(out == 2, connectivity=6, out_dtype=np.uint32)
    kept = np.zeros(int(comp.max()) + 1, bool)
    kept[comp[phases == 2]] = True
    kept[0] = True
    want = out.copy()
    want[~kept[comp]] = phases[~kept[comp]]
    got = out.copy()
    n = _revert_specks(got, F._pack2(phases))
    assert n == int(np.count_nonzero(~kept[comp])) > 0
    assert np.array_equal(got, want)


@pytest.mark.parametrize("shape", [(12, 9, 7), (1, 9, 2), (3, 20, 30), (70, 6, 5)])
@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.int32, np.bool_])
@pytest.mark.parametrize("cores", [1, 2])
def test_residual_equals_scipys_filters_bit_for_bit(monkeypatch, shape, dtype, cores):
    """The numba residual is ``correlate1d`` (float32 taps, float32 output, mode reflect) along z, y, x of the image
    minus the same with the wider kernel of ``mu[P]``: equal bit for bit, on volumes thinner than the kernel too
    (mirrored more than once) and on both cores."""
    from core import _kernels as K

    monkeypatch.setattr(K, "cores", lambda: cores)
    rng = np.random.default_rng(sum(shape))
    grey = (rng.random(shape) * 40000).astype(dtype) if dtype != np.bool_ else rng.random(shape) < 0.5
    phases = rng.integers(0, 3, shape).astype(np.int64)  # any integer type of codes 0-2
    mu = np.asarray(MU)
    k, k2 = F._kernel(1.1), F._kernel(1.1 * np.sqrt(2.0))

    def chain(a, taps):
        for axis in range(3):
            a = ndi.correlate1d(a, taps.astype(np.float32), axis=axis, mode="reflect", output=np.float32)
        return a

    want = chain(grey, k) - chain(mu.astype(np.float32)[phases], k2)
    np.testing.assert_array_equal(F._residual(grey, phases, mu, k, k2), want)


def _icm_reference(grey, phases, kw, allowed):
    """One raster sweep of iterated conditional modes from the energy itself: each boundary voxel in turn takes the
    phase of a face neighbour (allowed from its own) that lowers :func:`forward_energy` most, where one does."""
    P = phases.copy()
    Z, Y, X = P.shape
    e = forward_energy(grey, P, **kw)
    for z in range(Z):
        for y in range(Y):
            for x in range(X):
                p = P[z, y, x]
                near = {P[c] for c in ((z - 1, y, x), (z + 1, y, x), (z, y - 1, x), (z, y + 1, x), (z, y, x - 1),
                                       (z, y, x + 1)) if 0 <= c[0] < Z and 0 <= c[1] < Y and 0 <= c[2] < X}
                best, best_l = 0.0, p
                for lab in sorted(near - {p}):
                    if not allowed[p, lab]:
                        continue
                    P[z, y, x] = lab
                    de = forward_energy(grey, P, **kw) - e
                    if de < best:
                        best, best_l = de, lab
                P[z, y, x] = best_l
                e += best
    return P


@pytest.mark.parametrize("moves", ["all", "nmc"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_sweep_equals_the_energy_reference(moves, seed):
    """One sweep of :func:`_icm` (boundary flags per row, the left neighbour's change rechecked) makes the same
    changes as the plain reference that recomputes the energy for every candidate."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((6, 8, 30), np.uint8)  # stripes along x: many rows where a change makes the next voxel a boundary
    truth[:, ::3] = NMC
    truth[:, 1::3] = CBD
    grey = _image(truth, 1.0, 2500.0, seed=seed)
    phases = _threshold(grey)
    kw = dict(blur=1.0, noise=2500.0, references=MU)
    flip = rng.random(phases.shape) < 0.1  # more boundary voxels, some next to each other in a row
    phases[flip] = rng.integers(0, 3, int(flip.sum()))
    mu = np.asarray(MU)
    k2 = F._kernel(np.sqrt(2.0))
    R = F._residual(grey, phases, mu, F._kernel(1.0), k2)
    out = phases.copy()
    changes, _ = F._icm(out, R, mu, k2, 1.0 / (2 * 2500.0 ** 2), F.BETA * F.PAIR_COST, F.MOVES[moves], 0, out.shape[0])
    assert changes > 20
    np.testing.assert_array_equal(out, _icm_reference(grey, phases, kw, F.MOVES[moves]))


@pytest.mark.parametrize("moves", ["all", "nmc"])
def test_overwrite_refines_the_given_phases_to_the_same_result(moves):
    """``overwrite=True`` refines the caller's array itself (returned) and gives what a copy gives; arrays it cannot
    refine in place (another dtype, not contiguous) are copied as without it."""
    phases, _ = _coated_sphere()
    grey = _image(phases, 1.0, 2500.0)
    start = _threshold(grey)
    kw = dict(blur=1.0, noise=2500.0, references=MU, moves=moves)
    want, info = refine_phases(grey, start, **kw)
    assert info["changes"][0] > 0 and not np.array_equal(want, start)
    mine = start.copy()
    got, info2 = refine_phases(grey, mine, overwrite=True, **kw)
    assert got is mine and info2 == info
    np.testing.assert_array_equal(got, want)
    wide = start.astype(np.int64)
    got, _ = refine_phases(grey, wide, overwrite=True, **kw)
    assert got is not wide and got.dtype == np.uint8 and np.array_equal(wide, start)
    np.testing.assert_array_equal(got, want)
