"""The memory-lean separation path equals the whole-volume one.

``separate_particles`` (default h-maxima) transforms the distance slab by
slab, labels seeds without a mask volume and floods with recycled uint16
label values; these tests compare each piece, and the whole pipeline, with the
plain whole-volume computation they replace.
"""

from __future__ import annotations

import cc3d
import numpy as np
from scipy import ndimage as ndi
import pytest

from core import _kernels as K
import core._watershed as W
from core._watershed import (
    _flood,
    _flood_slots,
    _plateaus,
    _seed_order,
    label_dtype,
    quantise,
    watershed_dynamics,
)
from core.codes import NMC
from core.metrics import _particle_table, particle_table
from core.particles import (
    SeparationParams,
    _face_sections,
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


def _peak0(seeds, n, face_levels):
    """Least peak of each seed's basin: the largest face level on its voxels (0 where none)."""
    peak0 = np.zeros(n + 1, np.int64)
    f_idx, f_lev = face_levels
    on = seeds.reshape(-1)[f_idx]
    for s, lev in zip(on, f_lev):
        if s > 0:
            peak0[s] = max(peak0[s], int(lev))
    return peak0


def _ascended(q, p):
    """The steepest ascent of ``q`` from voxel ``p`` (first strictly highest of the -z, +z, -y, +y, -x, +x
    neighbours) to a voxel with none higher."""
    p = np.array(p)
    while True:
        nxt, v = None, q[tuple(p)]
        for d in ((-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0), (0, 0, -1), (0, 0, 1)):
            r = p + d
            if np.all(r >= 0) and np.all(r < q.shape) and q[tuple(r)] > v:
                nxt, v = r, q[tuple(r)]
        if nxt is None:
            return p
        p = nxt


def _climbed(q, spacing, step, face_levels, h):
    """Each face level moved up the steepest ascent of ``q`` to a voxel with none higher; dropped where its voxel
    lies outside that voxel's ball of radius ``q * step`` µm; else moved on to the highest voxel of that ball
    lying in its voxel's section of its face (``core.particles._face_sections``) and joined to it inside the ball
    by face steps through voxels above ``q - h`` (first in raster order), where that is higher, and up again,
    until there is none."""
    f_idx, f_lev, f_face, sections, offsets = face_levels
    sp = np.asarray(spacing, float) * np.ones(3)
    grid = np.indices(q.shape).reshape(3, -1).T  # every voxel, raster order
    best = {}
    for i, lev, f in zip(f_idx.tolist(), f_lev.tolist(), f_face.tolist()):
        start = np.array(np.unravel_index(i, q.shape))
        p = _ascended(q, start)
        if np.sum(((p - start) * sp) ** 2) > (float(q[tuple(p)]) * step) ** 2:
            continue
        axis, pos = f // 2, (0 if f % 2 == 0 else q.shape[f // 2] - 1)
        sec = sections[offsets[f]:offsets[f + 1]].reshape(np.delete(q.shape, axis))
        own = sec[tuple(np.delete(start, axis))]
        on_face = np.zeros(len(grid), bool)
        at = grid[:, axis] == pos
        on_face[at] = sec[tuple(np.delete(grid[at], axis, axis=1).T)] == own
        while True:
            ball = (np.sum(((grid - p) * sp) ** 2, axis=1) <= (float(q[tuple(p)]) * step) ** 2).reshape(q.shape)
            comp, _ = ndi.label(ball & (q.astype(int) > int(q[tuple(p)]) - h))
            joined = (comp == comp[tuple(p)]).reshape(-1)
            cand = np.flatnonzero(on_face & joined & (q.reshape(-1) > q[tuple(p)]))
            if not cand.size:
                break
            vals = q.reshape(-1)[cand]
            p = _ascended(q, grid[cand[int(np.argmax(vals))]])
        j = int(np.ravel_multi_index(tuple(p), q.shape))
        best[j] = max(best.get(j, 0), lev)
    keys = np.array(sorted(best), np.int64)
    return keys, np.array([best[k] for k in keys.tolist()], np.uint8)


def reference_labels(phases, spacing, params=SeparationParams()):
    """The whole-volume computation: float32 distance map, boolean mask of maxima, cc3d seeds."""
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
    n = int(seeds.max())
    h = max(1, int(round(params.h_um / step)))
    levels = _climbed(q, spacing, step, _face_sections(q, spacing, step, params.h_um), h)
    _flood(q, seeds, n, max(1, int(round(params.h_um / step))), _peak0(seeds, n, levels))
    seeds[~solid] = 0
    return merge_fragments(seeds, spacing, merge_ratio=params.merge_ratio, min_volume_um3=params.min_volume_um3)


@pytest.mark.parametrize("slab", [3, 7, 16, 40])
@pytest.mark.parametrize("halo", [1, 8])
def test_slab_distance_equals_whole_volume(elec, slab, halo, monkeypatch):
    import core.particles as P

    monkeypatch.setattr(P, "quantise_cubic_in_place", lambda buf, s: None)  # the slab path, as for non-cubic voxels
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
    # no merging: every maximum keeps its basin, so recycling uint16 values fails and the flood reruns in int32
    labels = watershed_dynamics(q, h_levels=0)
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
    t_own = _particle_table(owned, elec.phases, elec.spacing, separator_side="start", owned=True)
    np.testing.assert_array_equal(owned, labels)  # cracks cleared again
    import pandas as pd

    pd.testing.assert_frame_equal(t16, t32)
    pd.testing.assert_frame_equal(t_own, t32)


def test_outside_reach_takes_labels_as_they_are(elec):
    labels = separate_particles(elec.phases, elec.spacing)
    np.testing.assert_array_equal(K.outside_reach(labels), K.outside_reach(labels > 0))


def reference_flood(q, h, peak0=None, by_row=True):
    """:func:`core._watershed._flood`: every seed labelled 1..n (int32) before the flood."""
    idx, comp, n = _plateaus(q)
    labels = np.zeros(q.shape, np.int32)
    labels.reshape(-1)[idx] = comp
    _flood(q, labels, n, h, peak0, by_row)
    return labels


@pytest.fixture(scope="module")
def elec_q(elec):
    q, step = quantise(distance_transform(fill_enclosed(elec.phases == NMC), elec.spacing))
    return q, max(1, int(round(SeparationParams().h_um / step)))


@pytest.mark.parametrize("order", ["row", "fifo"])
def test_slot_flood_equals_reference_with_few_slots(elec_q, order):
    """The slot flood labels as the reference flood, with recycled slots and tiny queue blocks, in rounds sorted by
    row or first in, first out."""
    q, h = elec_q
    ref = reference_flood(q, h, by_row=order == "row")
    idx, comp, n = _plateaus(q)
    args = _seed_order(q, idx, comp, n)
    recycled = 0
    for slots in (n, n // 4, n // 8, n // 16):
        for block in (3, 1 << 10):  # tiny queue blocks: chains of many blocks, recycled often
            labels = np.zeros(q.shape, np.uint16)
            k = _flood_slots(q, labels, *args, h, slots, np.empty(block, np.int32), order)
            if k < 0:
                assert slots < n  # gave up recycling: too many basins alive at once
                continue
            assert k == ref.max()
            np.testing.assert_array_equal(labels, ref)
            recycled += slots < n
    assert recycled >= 2
    # the order matters: the other one labels differently
    assert not np.array_equal(ref, reference_flood(q, h, by_row=order != "row"))


def test_flood_of_rows_longer_than_uint16_equals_reference():
    """Rows of more than 65535 voxels: a large round's x held as uint32 instead of uint16, the same labels."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(11)
    f = ndi.gaussian_filter(rng.random((1, 3, 70000)), 2.0)
    q = (np.clip((f - f.min()) / np.ptp(f) * 1.4 - 0.2, 0, 1) * 200).astype(np.uint8)
    want = reference_flood(q, 3)
    assert want.max() > 100
    np.testing.assert_array_equal(watershed_dynamics(q, 3), want)


def test_flood_rounds_do_not_depend_on_where_the_volume_lies():
    """A flood of a volume padded with background on any side (another width and height, another place in a
    larger volume) labels the voxels as the flood of the volume itself."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(5)
    f = ndi.gaussian_filter(rng.random((20, 23, 26)), 1.5)
    q = (np.clip((f - f.min()) / np.ptp(f) * 1.6 - 0.3, 0, 1) * 60).astype(np.uint8)
    want = watershed_dynamics(q, 2)
    assert want.max() >= 5
    for pad in (((0, 0), (3, 0), (0, 0)), ((2, 1), (0, 5), (7, 3)), ((0, 0), (0, 0), (0, 40))):
        got = watershed_dynamics(np.pad(q, pad), 2)
        inner = got[tuple(slice(a, a + n) for (a, _), n in zip(pad, q.shape))]
        np.testing.assert_array_equal(inner, want)


@pytest.mark.parametrize("n", [0, 1, 5, 16, 17, 40, 300, 5000])
@pytest.mark.parametrize("nx", [1, 7, 64, 1000])
def test_sort_round_is_a_stable_sort_by_row(n, nx):
    """_sort_round's two ways (insertion, radix) order as np.argsort(stable) of i // nx."""
    from core._watershed import _sort_round

    rng = np.random.default_rng(n + 7 * nx)
    size = 1 << 16
    a = rng.integers(0, size, n).astype(np.int32)
    want = a[np.argsort(a // nx, kind="stable")]
    got = a.copy()
    _sort_round(got, n, np.empty(max(n, 1), np.int32), size // nx + 1, nx, 1.0 / nx)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed", range(6))
def test_watershed_equals_reference_on_random_maps(seed):
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(4, 24, 3))
    f = ndi.gaussian_filter(rng.random(shape), rng.uniform(0.5, 2.0))
    f = (f - f.min()) / (np.ptp(f) + 1e-12)
    q = (f * rng.integers(3, 255)).astype(np.uint8)  # zeros are background
    for h in (0, 1, 3):
        np.testing.assert_array_equal(watershed_dynamics(q, h), reference_flood(q, h))


@pytest.mark.parametrize("seed", range(4))
def test_watershed_with_face_levels_equals_reference_on_random_maps(seed):
    """Least peaks given on face voxels change the merges as the reference's, whichever voxels get them."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(100 + seed)
    shape = tuple(int(v) for v in rng.integers(6, 24, 3))
    f = ndi.gaussian_filter(rng.random(shape), rng.uniform(0.5, 2.0))
    f = (f - f.min()) / (np.ptp(f) + 1e-12)
    q = (f * rng.integers(20, 255)).astype(np.uint8)
    face = np.zeros(shape, bool)
    face[0] = face[-1] = True
    face[:, :, 0] = True
    f_idx = np.flatnonzero(face & (q > 0) & (rng.random(shape) < 0.5))
    f_lev = rng.integers(0, 256, f_idx.size).astype(np.uint8)
    idx, comp, n = _plateaus(q)
    seeds = np.zeros(q.size, np.int32)
    seeds[idx] = comp
    changed = False
    for h in (1, 3, 8):
        want = reference_flood(q, h, _peak0(seeds.reshape(shape), n, (f_idx, f_lev)))
        got = watershed_dynamics(q, h, face_levels=(f_idx, f_lev))
        np.testing.assert_array_equal(got, want)
        changed |= not np.array_equal(got, watershed_dynamics(q, h))
    assert changed  # the face levels made a difference somewhere


def test_more_seeds_than_uint16_values_give_uint16_labels():
    # a checkerboard: 131072 isolated maxima, each merging as soon as it is flooded
    _, yy, xx = np.indices((1, 512, 512))
    q = np.where((yy + xx) % 2 == 0, 2, 1).astype(np.uint8)
    labels = watershed_dynamics(q, h_levels=1)
    assert labels.dtype == np.uint16
    np.testing.assert_array_equal(labels, reference_flood(q, 1))


def test_pipeline_with_recycled_label_values_equals_reference(elec, elec_q, monkeypatch):
    """Fewer label values than seeds (as with > 65534 seeds at 512^3): same labels and table as before."""
    import pandas as pd

    from core.pipeline import AnalysisParams, run

    q, _ = elec_q
    n_seeds = _plateaus(q)[2]
    calls = []

    def spy(*args):
        k = _flood_slots(*args)
        calls.append((args[9], k))  # (max_slots)
        return k

    monkeypatch.setattr(W, "UINT16_SLOTS", n_seeds // 8)
    monkeypatch.setattr(W, "_flood_slots", spy)
    r = run(elec.phases, AnalysisParams(separator_side="start"), spacing=elec.spacing, presegmented=True)
    assert calls[0][0] == n_seeds // 8 and calls[0][1] > 0  # the recycling flood ran and succeeded
    assert len(calls) == 1 and r.labels.dtype == np.uint16
    ref = reference_labels(elec.phases, elec.spacing)
    np.testing.assert_array_equal(r.labels, ref)
    pd.testing.assert_frame_equal(r.table, particle_table(ref, elec.phases, elec.spacing, separator_side="start",
                                                          depth_from="electrode"))
