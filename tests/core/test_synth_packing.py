"""Tests for core.synth.make_sphere_packing: truth consistency, planar interfaces, necks, CBD share, imaging knobs."""

from __future__ import annotations

import numpy as np
import pytest

from core.codes import CBD, NMC, PORE
from core.seeding import estimate_noise
from core.synth import PackingParams, _rasterise_power, make_sphere_packing

SMALL = PackingParams(shape=(48, 48, 48), radius_median_um=5.0, radius_min_um=3.0, radius_max_um=8.0)


@pytest.fixture(scope="module")
def pack():
    return make_sphere_packing(SMALL, rng=3)


def test_truth_is_consistent(pack):
    assert pack.greyscale.shape == pack.phases.shape == pack.labels.shape == (48, 48, 48)
    assert pack.greyscale.dtype == np.uint16 and pack.phases.dtype == np.uint8 and pack.labels.dtype == np.int32
    np.testing.assert_array_equal(pack.labels > 0, pack.phases == NMC)
    ids = np.unique(pack.labels)
    np.testing.assert_array_equal(ids, np.arange(ids.size))
    assert ids.size - 1 == len(pack.table) >= 20
    assert set(np.unique(pack.phases)) == {PORE, CBD, NMC}
    assert pack.electrode == SMALL and pack.imaging == SMALL.imaging()


def test_same_seed_same_packing(pack):
    again = make_sphere_packing(SMALL, rng=3)
    np.testing.assert_array_equal(again.greyscale, pack.greyscale)
    np.testing.assert_array_equal(again.labels, pack.labels)
    assert not np.array_equal(make_sphere_packing(SMALL, rng=4).labels, pack.labels)


def test_cbd_fraction_is_the_knob(pack):
    assert abs(np.mean(pack.phases == CBD) - SMALL.cbd_fraction) < 0.002
    other = make_sphere_packing(PackingParams(**{**SMALL.__dict__, "cbd_fraction": 0.05}), rng=3)
    assert abs(np.mean(other.phases == CBD) - 0.05) < 0.002
    # CBD sits in the necks: each CBD voxel lies within a few voxels of NMC
    from scipy import ndimage as ndi

    near = ndi.binary_dilation(pack.phases == NMC, iterations=4)
    assert np.all(near[pack.phases == CBD])


def test_necks_overlap_up_to_the_knob(pack):
    c, r = pack.extra["centres_um"], pack.extra["radii_um"]
    d = np.linalg.norm(c[:, None] - c[None], axis=2)
    s = r[:, None] + r[None]
    iu = np.triu_indices(len(r), 1)
    overlap = (s - d)[iu] / s[iu]
    assert overlap.max() <= SMALL.neck_overlap + 1e-9
    assert np.count_nonzero(overlap > 0) >= len(r) // 2  # a packing rich in necks
    # radii within the clip times the neck growth
    grow = 1 / (1 - SMALL.neck_overlap)
    assert r.min() >= SMALL.radius_min_um * grow - 1e-9 and r.max() <= SMALL.radius_max_um * grow + 1e-9


def test_planar_interface_between_touching_spheres():
    # two spheres of radius 7 and 5 whose centres lie 10 apart on the x axis: the power plane is at
    # x1 = (d² + r1² - r2²) / (2 d) = 6.2 from the first centre
    centres = np.array([[12.0, 12.0, 8.0], [12.0, 12.0, 18.0]])
    labels = _rasterise_power((24, 24, 28), (1.0, 1.0, 1.0), centres, np.array([7.0, 5.0]))
    x = np.arange(28)[None, None, :] * np.ones((24, 24, 1))
    assert x[labels == 1].max() == 14 and x[labels == 2].min() == 15  # plane at x = 8 + 6.2 = 14.2
    both = np.unique(labels[:, :, 14:16])
    np.testing.assert_array_equal(both, [0, 1, 2])


def test_noise_knob_is_a_share_of_the_contrast():
    p = PackingParams(shape=(48, 48, 48), blur_voxels=0.0, noise_contrast=0.08)
    e = make_sphere_packing(p, rng=1)
    im = e.imaging
    scale = 0.6 * 65535  # the grey scaling of core.synth._image
    want = 0.08 * (im.intensity_nmc - im.intensity_pore) * scale
    assert im.blur_um == 0 and abs(estimate_noise(e.greyscale, e.phases) / want - 1) < 0.05
    # blur in voxels of the finest axis
    assert PackingParams(spacing=(0.5, 0.25, 0.25), blur_voxels=1.2).imaging().blur_um == pytest.approx(0.3)


@pytest.mark.parametrize("kw, match", [
    ({"shape": (4, 48, 48)}, "shape"), ({"neck_overlap": 0.6}, "neck_overlap"),
    ({"cbd_fraction": 1.5}, "cbd_fraction"), ({"radius_min_um": 9.0, "radius_max_um": 8.0}, "radii"),
    ({"noise_contrast": -0.1}, "noise_contrast"),
])
def test_bad_params_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        PackingParams(**kw)
    with pytest.raises(TypeError, match="blur_voxels"):
        PackingParams(blur_voxels="1")
    with pytest.raises(TypeError, match="PackingParams"):
        make_sphere_packing({"shape": (8, 8, 8)})
