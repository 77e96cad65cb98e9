"""The memory-lean separation path equals the whole-volume one.

``separate_particles`` (default h-maxima) transforms the distance slab by
slab and labels seeds without a mask volume; these tests compare each piece,
and the whole pipeline, with the plain whole-volume computation they replace.
"""

from __future__ import annotations

import cc3d
import numpy as np
import pytest

from core import _kernels as K
from core._watershed import _plateaus, label_dtype, quantise, watershed_dynamics
from core.codes import NMC
from core.metrics import particle_table
from core.particles import (
    SeparationParams,
    distance_transform,
    fill_enclosed,
    merge_fragments,
    quantised_distance,
    separate_particles,
)
from core.synth import ElectrodeParams, make_electrode


@pytest.fixture(scope="module")
def elec():
    return make_electrode(ElectrodeParams(shape=(96, 96, 96)), rng=11)


def reference_labels(phases, spacing, params=SeparationParams()):
    """The whole-volume computation: float32 distance map, boolean mask of maxima, cc3d seeds."""
    from core._watershed import _flood

    solid = phases == NMC
    filled = fill_enclosed(solid)
    q, step = quantise(distance_transform(filled, spacing))
    is_max = np.zeros(q.shape, bool)
    for z, y, x in np.argwhere(q > 0):
        v = q[z, y, x]
        nb = [q[zz, yy, xx] for zz, yy, xx in ((z - 1, y, x), (z + 1, y, x), (z, y - 1, x), (z, y + 1, x),
                                                (z, y, x - 1), (z, y, x + 1))
              if 0 <= zz < q.shape[0] and 0 <= yy < q.shape[1] and 0 <= xx < q.shape[2]]
        is_max[z, y, x] = all(n <= v for n in nb)
    seeds = cc3d.connected_components(is_max, connectivity=6, out_dtype=np.uint32).view(np.int32)
    _flood(q, seeds, int(seeds.max()), max(1, int(round(params.h_um / step))))
    seeds[~solid] = 0
    return merge_fragments(seeds, spacing, merge_ratio=params.merge_ratio, min_volume_um3=params.min_volume_um3)


@pytest.mark.parametrize("slab", [3, 7, 16, 40])
@pytest.mark.parametrize("halo", [1, 8])
def test_slab_distance_equals_whole_volume(elec, slab, halo):
    filled = fill_enclosed(elec.phases == NMC)
    q0, s0 = quantise(distance_transform(filled, elec.spacing))
    plane = filled.shape[1] * filled.shape[2]
    q1, s1 = quantised_distance(filled, elec.spacing, slab_voxels=slab * plane, halo=halo)
    assert s1 == s0
    np.testing.assert_array_equal(q1, q0)


def test_slab_distance_anisotropic_and_large_ball():
    # one ball much thicker than the slab: the halo has to grow to its radius
    shape = (60, 30, 30)
    zz, yy, xx = np.indices(shape)
    mask = ((zz - 30) / 2.0) ** 2 + (yy - 15) ** 2 + (xx - 15) ** 2 <= 13**2
    sp = (0.5, 1.0, 1.0)
    q0, s0 = quantise(distance_transform(mask, sp))
    q1, s1 = quantised_distance(mask, sp, slab_voxels=4 * 30 * 30, halo=1)
    assert s1 == s0
    np.testing.assert_array_equal(q1, q0)


def test_slab_distance_without_background():
    # no background voxel at all: every value is infinite in the whole-volume transform too
    mask = np.ones((20, 4, 4), bool)
    with np.errstate(invalid="ignore"):
        q0, s0 = quantise(distance_transform(mask))
        q1, s1 = quantised_distance(mask, slab_voxels=3 * 16)
    assert s1 == s0
    np.testing.assert_array_equal(q1, q0)


def test_plateaus_number_like_cc3d():
    rng = np.random.default_rng(5)
    q = rng.integers(0, 4, size=(12, 13, 14)).astype(np.uint8)
    idx, comp, n = _plateaus(q)
    mask = np.zeros(q.size, bool)
    mask[idx] = True
    expected = cc3d.connected_components(mask.reshape(q.shape), connectivity=6)
    assert n == expected.max() > 10
    np.testing.assert_array_equal(comp, expected.reshape(-1)[idx])


def test_label_dtype_switches_to_int32():
    assert label_dtype(65534) == np.uint16
    assert label_dtype(65535) == np.int32
    # a checkerboard of isolated maxima: 2 * 256 * 256 / 2 = 65536 seeds
    zz, yy, xx = np.indices((2, 256, 256))
    q = np.where((zz + yy + xx) % 2 == 0, 2, 1).astype(np.uint8)
    labels = watershed_dynamics(q, h_levels=0)  # no merging: every maximum keeps its basin
    assert labels.dtype == np.int32
    assert labels.max() == 65536 and (labels > 0).all()


def test_separation_equals_whole_volume_reference(elec):
    labels = separate_particles(elec.phases, elec.spacing)
    ref = reference_labels(elec.phases, elec.spacing)
    assert ref.max() < 65535 and labels.dtype == np.uint16
    np.testing.assert_array_equal(labels, ref)


def test_table_of_uint16_labels_equals_int32(elec):
    labels = separate_particles(elec.phases, elec.spacing)
    t16 = particle_table(labels, elec.phases, elec.spacing, separator_side="start")
    t32 = particle_table(labels.astype(np.int32), elec.phases, elec.spacing, separator_side="start")
    owned = labels.copy()
    t_own = particle_table(owned, elec.phases, elec.spacing, separator_side="start", _owned=True)
    np.testing.assert_array_equal(owned, labels)  # cracks cleared again
    import pandas as pd

    pd.testing.assert_frame_equal(t16, t32)
    pd.testing.assert_frame_equal(t_own, t32)


def test_outside_reach_takes_labels_as_they_are(elec):
    labels = separate_particles(elec.phases, elec.spacing)
    np.testing.assert_array_equal(K.outside_reach(labels), K.outside_reach(labels > 0))
