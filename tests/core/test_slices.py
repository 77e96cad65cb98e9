"""Single slices (a 2D image as a one-voxel-thick volume) are measured in their plane (core.slices)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from core import compare as C
from core.codes import CBD, NMC, PORE
from core.metrics import particle_table
from core.particles import merge_fragments
from core.slices import circle_diameter, is_single_slice, slice_axis

SP = (0.5, 0.2, 0.2)  # µm: the voxel's size across the slice differs from the pixel's


def _disc(shape, cy, cx, r):
    y, x = np.ogrid[: shape[0], : shape[1]]
    return (y - cy) ** 2 + (x - cx) ** 2 <= r * r


def _faces_2d(mask, other):
    """4-neighbour faces from ``mask`` pixels to ``other`` pixels (counted by hand, in the plane)."""
    n = 0
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        shifted = np.zeros_like(other)
        ys = slice(max(dy, 0), other.shape[0] + min(dy, 0))
        xs = slice(max(dx, 0), other.shape[1] + min(dx, 0))
        yd = slice(max(-dy, 0), other.shape[0] + min(-dy, 0))
        xd = slice(max(-dx, 0), other.shape[1] + min(-dx, 0))
        shifted[yd, xd] = other[ys, xs]
        n += int((mask & shifted).sum())
    return n


@pytest.fixture(scope="module")
def slice_scene():
    """(1, 40, 64) phases and labels: disc 1 inside (CBD on its left half, pore on its right), disc 2 cut by the
    right border."""
    shape = (40, 64)
    ph = np.full(shape, PORE, np.uint8)
    ph[:, :20] = CBD
    d1, d2 = _disc(shape, 20, 20, 9), _disc(shape, 12, 62, 6)
    ph[d1 | d2] = NMC
    lab = np.zeros(shape, np.int32)
    lab[d1], lab[d2] = 1, 2
    return ph[None], lab[None], d1, d2


def test_slice_axis():
    assert slice_axis((1, 754, 1012)) == 0 and slice_axis((30, 1, 20)) == 1 and slice_axis((9, 9, 1)) == 2
    assert slice_axis((40, 40, 40)) is None and slice_axis((1, 1, 9)) is None
    with pytest.raises(ValueError, match="3 axes"):
        slice_axis((4, 4))
    assert is_single_slice([1, 754, 1012]) and not is_single_slice([9, 9, 9])
    assert not is_single_slice(None) and not is_single_slice((754, 1012))  # unknown: not a slice


def test_a_slice_is_measured_in_its_plane(slice_scene):
    ph, lab, d1, d2 = slice_scene
    t = particle_table(lab, ph, SP, axis=0, separator_side="start").set_index("label")
    px = SP[1] * SP[2]
    face = SP[0] * SP[1]  # an in-plane face: the pixel's side times the voxel's size across the slice
    # disc 1: its outline only, in the plane; the slice's own top and bottom are not surface
    cbd, pore = _faces_2d(d1, ph[0] == CBD), _faces_2d(d1, ph[0] == PORE)
    assert t.loc[1, "area_cbd_um2"] == pytest.approx(cbd * face)
    assert t.loc[1, "area_pore_um2"] == pytest.approx(pore * face)
    assert t.loc[1, "area_edge_um2"] == 0 and not t.loc[1, "touches_edge"] and t.loc[1, "frac_edge"] == 0
    assert t.loc[1, "detachment"] == pytest.approx(pore / (pore + cbd))
    assert t.loc[1, "frac_pore"] + t.loc[1, "frac_cbd"] == pytest.approx(1.0)
    assert t.loc[1, "equiv_diameter_um"] == pytest.approx(2 * np.sqrt(d1.sum() * px / np.pi))
    assert t.loc[1, "volume_um3"] == pytest.approx(d1.sum() * px * SP[0])  # the slab's
    # disc 2 touches the image border: its edge is the pixels' sides on the border
    on_border = int(d2[:, -1].sum())
    assert t.loc[2, "touches_edge"] and t.loc[2, "area_edge_um2"] == pytest.approx(on_border * face)
    # not measured on a slice; no depth across it
    assert t[["surface_area_um2", "sphericity", "depth_frac"]].isna().all().all()
    # the thickness axis in the plane (a cross-section): depth along it
    ty = particle_table(lab, ph, SP, axis=1, separator_side="start").set_index("label")
    ys = np.nonzero(d1)[0]
    assert ty.loc[1, "depth_frac"] == pytest.approx(ys.mean() / (ph.shape[1] - 1))
    # over the electrode: a cross-section's extent is read along its in-plane thickness axis; across the slice none
    te = particle_table(lab, ph, SP, axis=1, separator_side="start", depth_from="electrode")
    first, last = te.attrs["depth_extent"]
    assert 0 <= first <= last <= ph.shape[1] - 1
    across = particle_table(lab, ph, SP, axis=0, separator_side="start", depth_from="electrode")
    assert "depth_extent" not in across.attrs and across["depth_frac"].isna().all()


def test_the_same_slice_along_another_axis_measures_alike(slice_scene):
    ph, lab, _, _ = slice_scene
    a = particle_table(lab, ph, SP, axis=1, separator_side="start")
    b = particle_table(np.moveaxis(lab, 0, 2), np.moveaxis(ph, 0, 2), (SP[1], SP[2], SP[0]), axis=0,
                       separator_side="start")
    cols = ["equiv_diameter_um", "area_cbd_um2", "area_pore_um2", "area_edge_um2", "detachment", "touches_edge",
            "depth_frac"]
    pd.testing.assert_frame_equal(a[cols], b[cols])


def test_a_volume_keeps_its_3d_measures(slice_scene):
    ph, lab, _, _ = slice_scene
    t = particle_table(np.repeat(lab, 3, axis=0), np.repeat(ph, 3, axis=0), SP, separator_side="start")
    assert t["touches_edge"].all() and t["sphericity"].notna().all() and t["depth_frac"].notna().all()


def test_fragments_on_a_slice_are_weighed_as_discs():
    shape = (60, 60)
    disc = _disc(shape, 30, 30, 20)
    lab = np.zeros(shape, np.int32)
    lab[disc] = 1
    # a cap cut off at 0.8 r: a chord of 24 px against the cap's circle diameter (area 64 px²: 9 px), ratio 2.6
    lab[disc & (np.arange(60)[None, :] >= 46)] = 2
    merged = merge_fragments(lab[None], 1.0, merge_ratio=2.0)
    assert merged.max() == 1
    # two halves: a chord of 41 px against the half's circle diameter (28 px), ratio 1.45: apart
    halves = np.zeros(shape, np.int32)
    halves[disc] = 1
    halves[disc & (np.arange(60)[None, :] > 30)] = 2
    assert merge_fragments(halves[None], 1.0, merge_ratio=2.0).max() == 2
    assert merge_fragments(halves[None], 1.0, merge_ratio=1.4).max() == 1
    # min_volume_um3 weighs a region as the ball of its circle: a half's circle (~28 µm) is a ball of ~11,800 µm³
    d_half = float(circle_diameter((halves == 2).sum()))
    ball = np.pi / 6 * d_half ** 3
    assert merge_fragments(halves[None], 1.0, merge_ratio=0, min_volume_um3=0.9 * ball).max() == 2
    assert merge_fragments(halves[None], 1.0, merge_ratio=0, min_volume_um3=1.1 * ball).max() == 1


def test_miles_weights_of_a_slice_are_those_of_its_plane(slice_scene):
    ph, lab, d1, _ = slice_scene
    t = particle_table(lab, ph, SP, axis=1, separator_side="start")
    window = tuple(n * s for n, s in zip(ph.shape, SP))
    pw = C.particle_weights(t, edge_policy="miles", window_um=window)
    inner = t.set_index("label").loc[1]
    ly, lx = window[1], window[2]
    want = ly * lx / ((ly - inner["extent_y_um"]) * (lx - inner["extent_x_um"]))
    assert pw.weights[t["label"].to_numpy() == 1][0] == pytest.approx(want)
    assert pw.weights[t["label"].to_numpy() == 2][0] == 0  # cut by the border: left out


def test_the_pipeline_warns_once_about_a_slice():
    from core.pipeline import AnalysisParams, run
    from core.synth import demo_electrode

    e = demo_electrode("pristine", rng=0, shape=(32, 64, 64))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = run(e.phases[16:17], AnalysisParams(), spacing=e.spacing, presegmented=True)
    said = [str(w.message) for w in caught if "single slice" in str(w.message)]
    assert len(said) == 1 and "one voxel along z" in said[0] and "nor the depth" in said[0]
    assert len(r.table) > 0 and r.table["sphericity"].isna().all() and not r.table["touches_edge"].all()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(e.phases[16:17], AnalysisParams(axis=1), spacing=e.spacing, presegmented=True)
    said = [str(w.message) for w in caught if "single slice" in str(w.message)]
    assert len(said) == 1 and "nor the depth" not in said[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(e.phases[14:18], AnalysisParams(), spacing=e.spacing, presegmented=True)
    assert not [w for w in caught if "single slice" in str(w.message)]


@pytest.fixture(scope="module")
def blurred_packing():
    """A sphere packing (48 x 160 x 160 voxels) imaged with a blur of 1.2 voxel and noise 0.05 (seed 3)."""
    from core.synth import PackingParams, make_sphere_packing

    return make_sphere_packing(PackingParams(shape=(48, 160, 160), blur_voxels=1.2, noise_contrast=0.05), rng=3)


def test_the_blur_of_a_slice_is_read_in_its_plane(blurred_packing):
    from core.seeding import _estimate_blur

    e = blurred_packing
    g, ph = e.greyscale, e.phases
    for sl in (np.s_[24:25], np.s_[:, 80:81], np.s_[:, :, 60:61]):  # across z, y and x (read 1.25 / 1.24 / 1.25)
        blur, edges = _estimate_blur(g[sl], ph[sl])
        assert 1.05 < blur < 1.4 and edges >= 200, (sl, blur, edges)  # NaN before (the thin axis was too short)
    blur3d, _ = _estimate_blur(g, ph)
    assert 1.1 < blur3d < 1.3
    # the same slice read as a plain 2D edge profile of a known blur: a disc's edge blurred in its plane only
    from scipy import ndimage as ndi

    disc = _disc((160, 160), 80, 80, 40)
    img = ndi.gaussian_filter(np.where(disc, 1.0, 0.0), 1.5)[None].astype(np.float32)
    phases = np.where(disc, NMC, PORE).astype(np.uint8)[None]
    assert abs(_estimate_blur(img, phases)[0] - 1.5) < 0.1
    # too thin a plane to probe an edge: NaN, as for a volume
    assert np.isnan(_estimate_blur(img[:, :6], phases[:, :6])[0])


def test_a_blurred_slice_is_seeded_on_a_deconvolved_mask_only_where_its_particles_are_small(blurred_packing,
                                                                                            monkeypatch):
    import core.seeding as S
    from core.pipeline import AnalysisParams, run
    from core.synth import PackingParams, make_sphere_packing

    e = blurred_packing  # median radius 7 voxels, blur 1.2
    big = make_sphere_packing(PackingParams(shape=(24, 160, 160), radius_median_um=14, radius_min_um=8,
                                            radius_max_um=30, blur_voxels=1.2, noise_contrast=0.05), rng=3)
    monkeypatch.setattr(S, "AUTO_MIN_EDGES", 200)  # the small test slice has fewer edges than the default asks
    assert S.auto_seeding(e.greyscale, e.phases)[0] == "deconvolved"
    assert S.auto_seeding(big.greyscale, big.phases)[0] == "deconvolved"  # volumes: the blur alone decides
    # slices: also the blur against the NMC's mean depth in the plane (measured in bench/slice_blur.py: the
    # deconvolved seeding helps particle sections of radius 5-7 pixels, loses those of 14)
    small_depth, big_depth = S.nmc_mean_depth(e.phases[24:25]), S.nmc_mean_depth(big.phases[12:13])
    assert 3 < small_depth < 4.5 < 6.5 < big_depth < 9, (small_depth, big_depth)
    choice, blur = S.auto_seeding(e.greyscale[24:25], e.phases[24:25])
    assert choice == "deconvolved" and 1.05 < blur < 1.4 and blur >= S.AUTO_SLICE_BLUR_DEPTH * small_depth
    choice, blur = S.auto_seeding(big.greyscale[12:13], big.phases[12:13])
    assert choice == "phases" and 1.05 < blur < 1.4 and blur < S.AUTO_SLICE_BLUR_DEPTH * big_depth
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = run(e.greyscale[24:25], AnalysisParams(axis=1), spacing=e.spacing)
        rb = run(big.greyscale[12:13], AnalysisParams(axis=1), spacing=big.spacing)
    auto = r.provenance["seeding_auto"]
    assert auto["seeding"] == "deconvolved" and 1.05 < auto["blur_voxels"] < 1.4
    assert r.provenance["phase_refinement"] is not None  # the full refinement, as on a blurred volume
    assert rb.provenance["seeding_auto"]["seeding"] == "phases"


def test_nmc_mean_depth_of_a_disc_and_of_its_slice_in_any_orientation():
    import core.seeding as S

    disc = np.where(_disc((101, 101), 50, 50, 30), NMC, PORE).astype(np.uint8)
    d = S.nmc_mean_depth(disc[None])
    assert abs(d - 10.0) < 0.6  # a disc of radius r: r / 3
    assert S.nmc_mean_depth(disc[:, None]) == S.nmc_mean_depth(disc[:, :, None]) == d
    assert np.isnan(S.nmc_mean_depth(np.zeros((1, 8, 8), np.uint8)))
