"""Tests for core.seeding (particle separation seeded on a regularised NMC mask) and its switch in the pipeline."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from core.codes import CBD, NMC
from core.pipeline import AnalysisParams, run
from core.seeding import (DECONV_BLUR, DECONV_ITERATIONS, DECONV_STEP, MAX_SIGMA, MIN_SIGMA, deconv_settings, deconvolve,
                          denoise_sigma, estimate_blur, estimate_noise, presmooth_sigma, regularised_particles,
                          seeding_mask)
from core.synth import ImagingParams, PackingParams, _image, _neck_cbd, _rasterise_power, make_sphere_packing

SP = (1.0, 1.0, 1.0)


def _pair(seed: int, *, blur=1.0, noise=0.09):
    """Spheres of radius 8 and 5 overlapping by 15 % of r1 + r2 (planar interface), CBD in the neck, imaged."""
    shape = (32, 32, 44)
    d = 13 * 0.85
    centres = np.array([[16, 16, 22 - d / 2], [16, 16, 22 + d / 2]])
    labels = _rasterise_power(shape, SP, centres, np.array([8.0, 5.0]))
    nmc = labels > 0
    phases = np.zeros(shape, np.uint8)
    phases[_neck_cbd(nmc, SP, 0.002, 6.0)] = CBD
    phases[nmc] = NMC
    im = ImagingParams(blur_um=blur, noise=noise * (ImagingParams().intensity_nmc - ImagingParams().intensity_pore))
    return _image(phases, SP, im, np.random.default_rng(seed)), phases, labels


def test_estimate_noise_known_answer():
    rng = np.random.default_rng(0)
    phases = np.zeros((40, 40, 40), np.uint8)
    phases[5:35, 5:35, 5:35] = NMC
    grey = np.where(phases == NMC, 1000.0, 100.0) + rng.normal(0, 25.0, phases.shape)
    assert estimate_noise(grey, phases) == pytest.approx(25.0, rel=0.05)
    assert np.isnan(estimate_noise(grey, np.zeros_like(phases)))


def test_denoise_sigma_follows_the_noise_and_is_clipped():
    s = [denoise_sigma(n, 400.0, 1000.0) for n in (1.0, 100.0, 200.0, 1e4)]
    assert s[0] == MIN_SIGMA and s[-1] == MAX_SIGMA and s[1] < s[2]
    assert denoise_sigma(float("nan"), 400.0, 1000.0) == MIN_SIGMA


def test_seeding_mask_is_inside_the_nmc_and_thinner():
    grey, phases, _ = _pair(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = run(grey, spacing=SP)
    mask, info = seeding_mask(grey, r.phases)
    nmc = r.phases == NMC
    assert not np.any(mask & ~nmc) and 0.5 * nmc.sum() < mask.sum() < nmc.sum()
    assert info["i_cbd"] < info["cut"] < info["i_nmc"] and MIN_SIGMA <= info["sigma"] <= MAX_SIGMA


@pytest.mark.parametrize("deconvolved", [False, True])
def test_labels_cover_exactly_the_nmc_and_inputs_untouched(deconvolved):
    grey, phases, _ = _pair(1)
    g0, p0 = grey.copy(), phases.copy()
    labels = regularised_particles(grey, phases, SP, deconvolved=deconvolved)
    np.testing.assert_array_equal(grey, g0)
    np.testing.assert_array_equal(phases, p0)
    np.testing.assert_array_equal(labels > 0, phases == NMC)
    ids = np.unique(labels)
    np.testing.assert_array_equal(ids, np.arange(ids.size))


@pytest.mark.parametrize("seeding", ["regularised", "deconvolved"])
def test_regularised_seeding_splits_touching_spheres_that_the_plain_path_merges(seeding):
    plain, reg = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the blur warning of the partial-volume correction
        for seed in range(6):
            grey, _, _ = _pair(seed)
            plain.append(int(run(grey, AnalysisParams(seeding="phases"), spacing=SP).labels.max()))
            reg.append(int(run(grey, AnalysisParams(seeding=seeding), spacing=SP).labels.max()))
    assert max(plain + reg) <= 2
    assert sum(n == 2 for n in reg) > sum(n == 2 for n in plain)


@pytest.mark.parametrize("seeding", ["regularised", "deconvolved"])
def test_packing_scores_better_with_regularised_seeding(seeding):
    from core.evaluate import instance_scores

    e = make_sphere_packing(PackingParams(shape=(64, 64, 64)), rng=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = run(e.greyscale, AnalysisParams(seeding="phases"), spacing=e.spacing)
        reg = run(e.greyscale, AnalysisParams(seeding=seeding), spacing=e.spacing)
    np.testing.assert_array_equal(reg.phases, plain.phases)  # the phases are not touched
    f1 = [float(instance_scores(e.labels, r.labels)["f1"].iloc[0]) for r in (plain, reg)]
    assert f1[1] > f1[0]
    assert reg.params.seeding == seeding and plain.params.seeding == "phases"


def test_seeding_switch_round_trips_and_old_dicts_read_as_phases():
    assert AnalysisParams().seeding == "auto" and AnalysisParams().to_dict()["seeding"] == "auto"
    assert AnalysisParams.from_dict(AnalysisParams().to_dict()) == AnalysisParams()
    # parameters written before "auto" left "phases" out: they replay on the phases
    old = {k: v for k, v in AnalysisParams().to_dict().items() if k != "seeding"}
    assert AnalysisParams.from_dict(old).seeding == "phases"
    assert "seeding" not in AnalysisParams(seeding="phases").to_dict()
    p = AnalysisParams(seeding="regularised")
    assert p.to_dict()["seeding"] == "regularised" and AnalysisParams.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError, match="seeding"):
        AnalysisParams(seeding="smooth")
    with pytest.raises(ValueError, match="seeding 'regularised' is for particles 'watershed'"):
        AnalysisParams(seeding="regularised", particles="model")
    with pytest.raises(ValueError, match="needs the greyscale volume"):
        run(np.full((8, 8, 8), NMC, np.uint8), p, presegmented=True)
    d = AnalysisParams(seeding="deconvolved")
    assert AnalysisParams.from_dict(d.to_dict()) == d and d.to_dict()["seeding"] == "deconvolved"
    with pytest.raises(ValueError, match="seeding 'deconvolved' is for particles 'watershed'"):
        AnalysisParams(seeding="deconvolved", particles="model")
    with pytest.raises(ValueError, match="seeding 'deconvolved' needs the greyscale volume"):
        run(np.full((8, 8, 8), NMC, np.uint8), d, presegmented=True)


def test_presmooth_sigma_follows_the_noise_and_is_clipped():
    s = [presmooth_sigma(n, 400.0, 1000.0) for n in (0.1, 50.0, 100.0, 1e4)]
    assert s[0] == MIN_SIGMA and s[-1] == MAX_SIGMA and s[1] < s[2]
    assert s[2] == pytest.approx(3.1 * (100.0 / 600.0) ** (2 / 3))
    assert presmooth_sigma(float("nan"), 400.0, 1000.0) == MIN_SIGMA


def test_deconvolve_undoes_part_of_a_gaussian_blur():
    from scipy import ndimage as ndi

    sharp = np.zeros((24, 24, 24), np.float32)
    sharp[6:18, 6:18, 6:18] = 1.0
    sharp[11:13, 6:18, 6:18] = 0.0  # a 2-voxel slit that the blur nearly closes
    blurred = ndi.gaussian_filter(sharp, 1.0)
    before = np.abs(blurred - sharp).mean()
    x = deconvolve(blurred, sigma=0.0, blur=1.0)
    assert x.dtype == np.float32 and x.shape == sharp.shape
    assert np.abs(x - sharp).mean() < 0.9 * before  # measured 0.044 against 0.051
    assert x[12, 12, 12] < 0.5 * blurred[12, 12, 12]  # the slit comes back darker (measured 0.17 against 0.36)
    np.testing.assert_array_equal(deconvolve(blurred, iterations=0), blurred)
    for kw, msg in (({"blur": 0.0}, "blur"), ({"step": 2.0}, "step"), ({"iterations": 1.5}, "iterations"),
                    ({"sigma": -1.0}, "sigma")):
        with pytest.raises(ValueError, match=msg):
            deconvolve(blurred, **kw)


@pytest.mark.parametrize("shape", [(7, 9, 11), (3, 20, 5), (1, 16, 12)])
@pytest.mark.parametrize("sigma, blur, iterations", [(0.0, 1.0, 4), (0.6, 1.2, 4), (1.5, 0.5, 0), (0.0, 3.0, 8)])
def test_deconvolve_equals_the_landweber_iteration_of_scipy_gaussians(shape, sigma, blur, iterations):
    # the one-step DCT filter against the iteration it replaces, in float64 with scipy's reflecting Gaussians;
    # blur 3.0 has a kernel (radius 12) longer than every axis: scipy then reflects more than once
    from scipy import ndimage as ndi

    v = np.random.default_rng(1).random(shape).astype(np.float32) * 1000
    b = ndi.gaussian_filter(v.astype(np.float64), sigma) if sigma > 0 else v.astype(np.float64)
    x = b.copy()
    for _ in range(iterations):
        x += DECONV_STEP * ndi.gaussian_filter(b - ndi.gaussian_filter(x, blur), blur)
    before = v.copy()
    out = deconvolve(v, sigma=sigma, blur=blur, iterations=iterations)
    assert out.dtype == np.float32 and out.shape == shape
    np.testing.assert_allclose(out, x, rtol=0, atol=2e-3)  # float32 rounding of values up to ~1000
    np.testing.assert_array_equal(v, before)


@pytest.mark.parametrize("iterations", [0, 1, 4])
def test_landweber_multiplier_kernel_equals_the_numpy_plane_form(iterations):
    # the numba multiplier of deconvolve against the numpy form it replaced (one plane at a time, float64
    # temporaries), bit for bit, split over the cores
    from core._kernels import run_on_cores
    from core.seeding import _gaussian_transfer, _landweber_multiply

    shape, mu = (6, 13, 17), 1.3
    c = np.random.default_rng(2).normal(size=shape).astype(np.float32)
    gz, gy, gx = (_gaussian_transfer(n, 1.1) for n in shape)
    pz, py, px = (_gaussian_transfer(n, 0.7) for n in shape)
    p_yx = (py[:, None] * px[None, :]).astype(np.float32)
    want = c.copy()
    for z in range(shape[0]):
        g = gz[z] * (gy[:, None] * gx[None, :])
        h = np.ones_like(g)
        b = mu * g
        g *= b
        np.subtract(1.0, g, out=g)
        for _ in range(iterations):
            h *= g
            h += b
        h *= pz[z]
        want[z] *= h.astype(np.float32) * p_yx
    run_on_cores(lambda z0, z1: _landweber_multiply(c, gz, gy, gx, pz, p_yx, mu, iterations, z0, z1), shape[0])
    np.testing.assert_array_equal(c, want)


def test_deconvolved_mask_is_inside_the_nmc_and_thinner():
    grey, phases, _ = _pair(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = run(grey, spacing=SP)
    mask, info = seeding_mask(grey, r.phases, deconvolved=True)
    nmc = r.phases == NMC
    assert not np.any(mask & ~nmc) and 0.5 * nmc.sum() < mask.sum() < nmc.sum()
    assert info["sigma"] == presmooth_sigma(info["noise"], info["i_cbd"], info["i_nmc"])


@pytest.mark.parametrize("deconvolved", [False, True])
def test_a_crack_does_not_become_a_cut(deconvolved):
    # one sphere of radius 9 with an internal planar crack (pore, 1 voxel wide, radius 7) that does not reach
    # the surface; without the crack clause the raised level opens it and the sphere comes out in 2 pieces
    z, y, x = np.ogrid[:28, :28, :28]
    r2 = (z - 14) ** 2 + (y - 14) ** 2 + (x - 14) ** 2
    phases = np.where(r2 <= 81, NMC, 0).astype(np.uint8)
    phases[(x == 14) & (r2 <= 49)] = 0
    grey = _image(phases, SP, ImagingParams(blur_um=0.8, noise=0.02), np.random.default_rng(0))
    labels = regularised_particles(grey, phases, SP, deconvolved=deconvolved)
    assert labels.max() == 1
    np.testing.assert_array_equal(labels > 0, phases == NMC)


@pytest.mark.parametrize("reach", [1, 2, 3])
def test_mark_within_is_the_face_dilation(reach):
    """The sparse marking of the voxels near cavities equals scipy's binary dilation by the face structure."""
    from scipy import ndimage as ndi

    from core.seeding import _mark_within

    rng = np.random.default_rng(reach)
    seeds = rng.random((9, 11, 13)) < 0.01
    seeds[0, 0, 0] = seeds[-1, -1, -1] = True  # at the corners: the dilation stays inside
    mask = rng.random(seeds.shape) < 0.2
    want = mask | ndi.binary_dilation(seeds, ndi.generate_binary_structure(3, 1), iterations=reach)
    _mark_within(mask, np.flatnonzero(seeds), reach)
    np.testing.assert_array_equal(mask, want)


@pytest.mark.parametrize("deconvolved", [False, True])
def test_kept_outside_is_the_outside_reach_of_the_labels(deconvolved):
    # a sphere with an enclosed crack (filled: not outside) next to one cut by the volume's face
    from core._kernels import outside_reach
    from core.seeding import _regularised_particles

    z, y, x = np.ogrid[:28, :28, :36]
    phases = np.zeros((28, 28, 36), np.uint8)
    r2 = (z - 14) ** 2 + (y - 14) ** 2 + (x - 12) ** 2
    phases[r2 <= 81] = NMC
    phases[(x == 12) & (r2 <= 49)] = 0
    phases[(z - 14) ** 2 + (y - 14) ** 2 + (x - 33) ** 2 <= 36] = NMC
    grey = _image(phases, SP, ImagingParams(blur_um=0.8, noise=0.02), np.random.default_rng(0))
    labels, outside = _regularised_particles(grey, phases, SP, deconvolved=deconvolved, keep_outside=True)
    np.testing.assert_array_equal(labels, regularised_particles(grey, phases, SP, deconvolved=deconvolved))
    reached = outside_reach(labels)
    assert not reached[14, 14, 12] and reached[0, 0, 0]  # the crack is not outside, the pore is
    np.testing.assert_array_equal(outside, np.packbits(reached))
    assert _regularised_particles(grey, phases, SP, deconvolved=deconvolved)[1] is None


def test_the_extension_goes_on_in_int32_where_uint16_labels_run_out(monkeypatch):
    """The separation's uint16 labels are grown in place; where the new components' labels would pass 65535
    (:func:`core._kernels.grow_labels` raises OverflowError), the extension goes on in int32: the same particles."""
    import core.seeding as S

    z, y, x = np.ogrid[:28, :28, :36]
    phases = np.zeros((28, 28, 36), np.uint8)
    phases[(z - 14) ** 2 + (y - 14) ** 2 + (x - 10) ** 2 <= 64] = NMC
    phases[(z - 14) ** 2 + (y - 14) ** 2 + (x - 26) ** 2 <= 49] = NMC
    phases[2, 2, 2] = NMC  # a speck no seed reaches: a component of its own
    grey = _image(phases, SP, ImagingParams(blur_um=0.8, noise=0.02), np.random.default_rng(0))
    want = regularised_particles(grey, phases, SP, deconvolved=True)
    assert want.dtype == np.uint16 and want.max() >= 2
    grow, calls = S.K.grow_labels, []

    def short(mask, labels, **kw):
        calls.append(labels.dtype)
        if labels.dtype == np.uint16:
            raise OverflowError("uint16")
        return grow(mask, labels, **kw)

    monkeypatch.setattr(S.K, "grow_labels", short)
    got = regularised_particles(grey, phases, SP, deconvolved=True)
    assert calls == [np.uint16, np.int32] and got.dtype == np.int32
    np.testing.assert_array_equal(got, want)


def _balls(blur: float, noise: float, seed: int, *, coat: bool = False):
    """Three NMC balls (radius 7-9) in pore, optionally coated by a 1-voxel CBD shell, imaged (48³)."""
    z, y, x = np.ogrid[:48, :48, :48]
    phases = np.zeros((48, 48, 48), np.uint8)
    for (cz, cy, cx), r in (((14, 14, 14), 9), ((33, 30, 16), 8), ((24, 20, 34), 7)):
        r2 = (z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2
        if coat:
            phases[(r2 <= (r + 1.5) ** 2) & (phases == 0)] = CBD
        phases[r2 <= r * r] = NMC
    im = ImagingParams(blur_um=blur, noise=noise * (ImagingParams().intensity_nmc - ImagingParams().intensity_pore),
                       cbd_texture=0.0)
    return _image(phases, SP, im, np.random.default_rng(seed)), phases


@pytest.mark.parametrize("blur", [0.7, 1.2, 1.5])
@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_estimate_blur_reads_the_known_blur_under_noise(blur, noise):
    from core.phases import phase_references

    grey, phases = _balls(blur, noise, 0)
    g0, p0 = grey.copy(), phases.copy()
    assert estimate_blur(grey, phases) == pytest.approx(blur, abs=0.12)
    np.testing.assert_array_equal(grey, g0)
    np.testing.assert_array_equal(phases, p0)
    assert estimate_blur(grey, phases, references=phase_references(grey, phases)) == pytest.approx(blur, abs=0.12)


@pytest.mark.parametrize("order", [0, 1])
def test_edge_reading_gaussian_on_cores_is_scipys_bit_for_bit(order):
    """The edge reading's 1D Gaussians, split between threads along another axis, equal scipy's whole pass."""
    from scipy import ndimage as ndi

    from core.seeding import _gaussian1d_on_cores

    rng = np.random.default_rng(order)
    for shape in [(1, 1, 5), (2, 9, 3), (17, 30, 11), (40, 3, 64)]:
        v = (rng.random(shape) * 1000).astype(np.float32)
        for axis in range(3):
            want = ndi.gaussian_filter1d(v, 1.0, axis=axis, order=order, output=np.float32)
            np.testing.assert_array_equal(_gaussian1d_on_cores(v, 1.0, axis, order), want)


def test_estimate_blur_leaves_out_edges_through_cbd():
    # half the balls' surface coated: those profiles are wider; the estimate follows the bare pore-NMC edges
    grey, phases = _balls(0.8, 0.05, 1, coat=True)
    z = np.arange(48)[:, None, None]
    bare, _ = _balls(0.8, 0.05, 1)
    grey = np.where(z < 24, grey, bare)
    phases = np.where(z < 24, phases, _balls(0.8, 0.05, 1)[1])
    assert estimate_blur(grey, phases) == pytest.approx(0.8, abs=0.12)


def test_estimate_blur_is_nan_without_pore_nmc_edges_and_checks_block():
    grey, phases = _balls(1.0, 0.05, 2)
    assert np.isnan(estimate_blur(grey, np.full_like(phases, NMC)))  # no pore: no contrast
    assert np.isnan(estimate_blur(grey[:6], phases[:6]))  # too thin for the probes
    with pytest.raises(ValueError, match="block"):
        estimate_blur(grey, phases, block=4)
    with pytest.raises(ValueError, match="shape"):
        estimate_blur(grey, phases[:-1])


def test_deconv_settings_follow_the_measured_blur_with_a_floor():
    grey, phases = _balls(1.4, 0.05, 3)
    blur, its = deconv_settings(grey, phases)
    assert blur == pytest.approx(estimate_blur(grey, phases)) and blur > 1.2 and its == DECONV_ITERATIONS
    assert deconv_settings(*_balls(0.5, 0.05, 3))[0] == DECONV_BLUR  # a measured 0.5 is raised to 1 voxel
    assert deconv_settings(grey, phases, blur=0.7, iterations=2) == (0.7, 2)
    mask, info = seeding_mask(grey, phases, deconvolved=True)
    assert info["blur"] == blur and info["iterations"] == DECONV_ITERATIONS
    with pytest.raises(ValueError, match="merge_factor"):
        regularised_particles(grey, phases, SP, deconvolved=True, merge_factor=0.0)


def _packing(blur: float, seed: int = 3):
    return make_sphere_packing(PackingParams(shape=(64, 64, 64), blur_voxels=blur, noise_contrast=0.05), rng=seed)


def test_auto_seeding_reads_the_blur():
    from core.phases import segment
    from core.seeding import AUTO_BLUR, auto_seeding

    for blur, want in ((0.6, "phases"), (1.2, "deconvolved")):
        e = _packing(blur)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            phases = segment(e.greyscale)
        seeding, measured = auto_seeding(e.greyscale, phases)
        assert seeding == want and (measured >= AUTO_BLUR) == (want == "deconvolved")
        assert measured == pytest.approx(blur, abs=0.15)
    # too few edge voxels for a sure estimate (a 32³ crop of the blurred packing): the phases
    from core.seeding import AUTO_MIN_EDGES, _estimate_blur

    e = _packing(1.2)
    crop = (slice(0, 32),) * 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        phases = segment(e.greyscale[crop])
    assert _estimate_blur(e.greyscale[crop], phases)[1] < AUTO_MIN_EDGES
    assert auto_seeding(e.greyscale[crop], phases)[0] == "phases"
    # nothing to measure (no pore-NMC edges): the phases
    assert auto_seeding(np.full((16, 16, 16), 7.0), np.full((16, 16, 16), NMC, np.uint8))[0] == "phases"


@pytest.mark.parametrize("blur, want", [(0.6, "phases"), (1.2, "deconvolved")])
def test_run_resolves_auto_seeding_and_records_it(blur, want):
    e = _packing(blur)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auto = run(e.greyscale, spacing=e.spacing)
        same = run(e.greyscale, AnalysisParams(seeding=want), spacing=e.spacing)
    assert auto.params.seeding == want and auto.provenance["seeding_auto"]["seeding"] == want
    assert auto.provenance["seeding_auto"]["blur_voxels"] == pytest.approx(blur, abs=0.15)
    np.testing.assert_array_equal(auto.labels, same.labels)
    assert "seeding_auto" not in same.provenance
    # presegmented input has no greyscale to measure: "auto" seeds on the phases
    pre = run(e.phases, spacing=e.spacing, presegmented=True)
    assert pre.params.seeding == "phases" and pre.provenance["seeding_auto"]["blur_voxels"] is None


def test_side_work_runs_during_the_extension_and_changes_nothing(monkeypatch):
    """The pipeline's side work (input checksum, separator side) is started by the regularised seeding's
    extension, when it turns single-threaded; never started (its calls then made when the results are asked
    for), the run gives the same labels, table and provenance."""
    from core import _kernels as K
    from core.pipeline import checksum

    e = _packing(1.2)
    real_grow, real_start = K.grow_labels, K.SideWork.start
    idle = []
    monkeypatch.setattr(K, "grow_labels", lambda *a, **kw: idle.append(kw.get("idle")) or real_grow(*a, **kw))
    got = {}
    for started in (True, False):
        monkeypatch.setattr(K.SideWork, "start", real_start if started else lambda self: None)
        idle.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got[started] = run(e.greyscale, AnalysisParams(seeding="deconvolved"), spacing=e.spacing)
        assert len(idle) == 1 and idle[0] is not None and idle[0].__func__ is K.SideWork.start
    assert got[True].provenance["input_checksum"] == checksum(e.greyscale)
    np.testing.assert_array_equal(got[True].labels, got[False].labels)
    assert got[True].table.equals(got[False].table)
    assert got[True].provenance["input_checksum"] == got[False].provenance["input_checksum"]
    assert got[True].params.separator_side == got[False].params.separator_side


def test_one_core_and_two_give_the_same_analysis(monkeypatch):
    """The refinement's sweeps and the flood run in the same two halves whatever the cores (one after the other on
    one), so a one-core machine gives the phases, labels and table of a two-core one (they differed until session
    28)."""
    import core.particles as P
    from core import _kernels as K

    e = _packing(1.2)
    monkeypatch.setattr(P, "FLOOD_SPLIT_MIN_VOXELS", 1)  # the 64³ volume flooded in halves too
    got = {}
    for n in (1, 2):
        monkeypatch.setattr(K, "cores", lambda: n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got[n] = run(e.greyscale, AnalysisParams(seeding="deconvolved", refine="on"), spacing=e.spacing)
    assert got[1].provenance["phase_refinement"]["changes"][0] > 0
    np.testing.assert_array_equal(got[1].phases, got[2].phases)
    np.testing.assert_array_equal(got[1].labels, got[2].labels)
    assert got[1].table.equals(got[2].table)


def test_auto_seeding_falls_back_to_the_phases_where_the_deconvolved_mask_does_not_fit(monkeypatch):
    import core.pipeline as pipeline
    from core.memory import MemoryBudgetError

    real = pipeline.check_memory

    def tight(shape, dtype, params, **kw):
        if params.seeding == "deconvolved":
            raise MemoryBudgetError("needs 9.9 GiB, 1.0 GiB available")
        return real(shape, dtype, params, **kw)

    monkeypatch.setattr(pipeline, "check_memory", tight)
    e = _packing(1.2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = run(e.greyscale, spacing=e.spacing)
    assert r.params.seeding == "phases" and r.provenance["seeding_auto"]["seeding"] == "phases"
    assert any("does not fit in memory" in str(w.message) for w in caught)


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, float("nan")])
def test_a_level_outside_zero_to_one_is_refused(level):
    from core.seeding import regularised_particles, seeding_mask

    e = _packing(1.2)
    with pytest.raises(ValueError, match="level must lie in"):
        regularised_particles(e.greyscale, e.phases, e.spacing, level=level)
    with pytest.raises(ValueError, match="level must lie in"):
        seeding_mask(e.greyscale, e.phases, level=level)


def test_crack_clause_by_indices_or_by_distances_gives_one_mask(monkeypatch):
    """The NMC near cavities marked from the cavities' indices (few cavities) or from distances over the volume
    (many): the same seeding mask either way."""
    import core.seeding as S

    z, y, x = np.ogrid[:40, :40, :40]
    phases = np.where((z - 20) ** 2 + (y - 20) ** 2 + (x - 20) ** 2 <= 17**2, NMC, 0).astype(np.uint8)
    phases[(x == 20) & ((z - 20) ** 2 + (y - 20) ** 2 <= 12**2)] = 0  # an inner crack
    phases[12:15, 12:15, 26:29] = 0  # and an inner pore
    grey = _image(phases, SP, ImagingParams(blur_um=0.8, noise=0.02), np.random.default_rng(1))
    masks = []
    for every in (1, 1 << 40):  # by the indices (any number of cavities is "few"), then by distances (none is)
        monkeypatch.setattr(S, "_SPARSE_CAVITY", every)
        masks.append(S.seeding_mask(grey, phases, deconvolved=True, level=0.99)[0])  # a thin mask: the clause shows
    np.testing.assert_array_equal(masks[0], masks[1])
