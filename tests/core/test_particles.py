"""Known-answer tests for core.particles (crack-aware watershed separation)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from core import pipeline
from core.codes import CBD, NMC, PORE
from core.evaluate import match_instances
from core.particles import (
    SeparationParams,
    distance_transform,
    fill_enclosed,
    find_markers,
    merge_fragments,
    separate_particles,
)


def ball(shape, centre, radius) -> np.ndarray:
    zz, yy, xx = np.indices(shape)
    return (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= radius**2


def phases_of(mask: np.ndarray) -> np.ndarray:
    ph = np.zeros(mask.shape, np.uint8)
    ph[mask] = NMC
    return ph


@pytest.fixture(scope="module")
def two_spheres():
    """Two balls of radius 8, centres 14 voxels apart: they overlap into a neck."""
    shape = (40, 40, 60)
    a = ball(shape, (20, 20, 23), 8)
    b = ball(shape, (20, 20, 37), 8)
    assert (a & b).any()  # touching
    truth = np.zeros(shape, np.int32)
    truth[a] = 1
    truth[b] = 2
    xx = np.indices(shape)[2]
    truth[a & b & (xx <= 30)] = 1  # the neck is split on the mid-plane x = 30
    return phases_of(a | b), truth


def assert_two_matched(labels, truth):
    assert labels.dtype == np.uint16  # fewer than 65535 basins
    assert set(np.unique(labels)) == {0, 1, 2}
    # labels exactly on NMC voxels
    np.testing.assert_array_equal(labels > 0, truth > 0)
    pairs = match_instances(truth, labels)
    good = pairs[pairs["iou"] > 0.9]
    assert sorted(good["true"]) == [1, 2]
    assert sorted(good["pred"]) == [1, 2]  # one-to-one


def test_two_touching_spheres_are_two_particles(two_spheres):
    ph, truth = two_spheres
    assert_two_matched(separate_particles(ph), truth)


def test_two_touching_spheres_through_pipeline(two_spheres):
    ph, truth = two_spheres
    res = pipeline.run(ph, pipeline.AnalysisParams(separator_side="start"), presegmented=True)
    assert_two_matched(res.labels, truth)
    assert len(res.table) == 2
    # the neck is a small particle-particle interface
    assert (res.table["area_particle_um2"] > 0).all()
    assert (res.table["frac_particle"] < 0.1).all()


def test_two_touching_spheres_anisotropic_spacing():
    """The same two physical spheres sampled at spacing (2, 1, 1): still two particles."""
    zz, yy, xx = np.indices((20, 40, 60))
    z_um = zz * 2.0
    a = (z_um - 20) ** 2 + (yy - 20) ** 2 + (xx - 23) ** 2 <= 64
    b = (z_um - 20) ** 2 + (yy - 20) ** 2 + (xx - 37) ** 2 <= 64
    truth = np.zeros(a.shape, np.int32)
    truth[a], truth[b] = 1, 2
    truth[a & b & (xx <= 30)] = 1
    assert_two_matched(separate_particles(phases_of(a | b), (2.0, 1.0, 1.0)), truth)


def test_separated_spheres_and_cbd_around():
    shape = (24, 24, 60)
    a, b = ball(shape, (12, 12, 12), 7), ball(shape, (12, 12, 45), 9)
    ph = phases_of(a | b)
    ph[(ph == PORE) & ball(shape, (12, 12, 12), 9)] = CBD
    lab = separate_particles(ph)
    assert lab.max() == 2
    assert len(np.unique(lab[a])) == 1 and len(np.unique(lab[b])) == 1
    assert lab[a][0] != lab[b][0]
    assert np.all(lab[ph != NMC] == 0)


# --------------------------------------------------------------------------- cracks


def test_internal_crack_gives_one_particle():
    shape = (30, 30, 30)
    mask = ball(shape, (15, 15, 15), 10)
    zz, yy, xx = np.indices(shape)
    crack = (np.abs(zz - 15) < 2) & ((yy - 15) ** 2 + (xx - 15) ** 2 <= 64)
    assert np.all(mask[crack])
    ph = phases_of(mask)
    ph[crack] = PORE
    lab = separate_particles(ph)
    assert lab.max() == 1
    np.testing.assert_array_equal(lab > 0, ph == NMC)  # crack voxels stay 0
    # without crack filling the same crack splits the particle: the test is meaningful
    assert separate_particles(ph, params=SeparationParams(fill_cracks=False)).max() == 2


def test_phases_handed_over_give_the_same_particles_and_are_let_go():
    """Handed over as a one-item list, the phases are taken out of it (only a packed NMC mask is held through the
    flood) and the particles are those of the plain call: the crack voxels cleared as before."""
    from core.particles import _separate_particles

    shape = (30, 30, 44)
    mask = ball(shape, (15, 15, 15), 10) | ball(shape, (15, 15, 31), 9)
    zz, yy, xx = np.indices(shape)
    ph = phases_of(mask)
    ph[(np.abs(zz - 15) < 2) & ((yy - 15) ** 2 + (xx - 15) ** 2 <= 36)] = PORE  # an enclosed crack
    want = separate_particles(ph)
    assert want.max() == 2
    handed = [ph.copy()]
    got, outside = _separate_particles(handed, None)
    assert handed == [] and outside is None
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="one array, without keep_outside"):
        _separate_particles([ph], None, keep_outside=True)


def edge_cut_cracked_ball():
    """A ball cut by the x = 0 face of the volume, its crack cut by that face too."""
    shape = (30, 30, 20)
    mask = ball(shape, (15, 15, 2), 10)
    zz, yy, xx = np.indices(shape)
    crack = (np.abs(zz - 15) < 2) & ((yy - 15) ** 2 + (xx - 2) ** 2 <= 64)
    assert np.all(mask[crack]) and crack[:, :, 0].any()
    return mask, crack


def test_crack_reaching_the_volume_face_gives_one_particle():
    mask, crack = edge_cut_cracked_ball()
    ph = phases_of(mask)
    ph[crack] = PORE
    lab = separate_particles(ph)
    assert lab.max() == 1
    np.testing.assert_array_equal(lab > 0, ph == NMC)
    assert separate_particles(ph, params=SeparationParams(fill_cracks=False)).max() == 2


def test_fill_enclosed():
    mask, crack = edge_cut_cracked_ball()
    solid = mask & ~crack
    filled = fill_enclosed(solid)
    assert filled.dtype == bool
    np.testing.assert_array_equal(filled, mask)  # the cut crack is closed
    # an internal cavity is filled, a groove open to the side is not
    box = np.zeros((10, 10, 10), bool)
    box[2:8, 2:8, 2:8] = True
    box[4:6, 4:6, 4:6] = False  # cavity
    box[4, 2:8, 2] = False  # groove on the outside
    f = fill_enclosed(box)
    assert f[4:6, 4:6, 4:6].all()
    assert not f[4, 2:8, 2].any()
    assert not f[0].any() and f.sum() == box.sum() + 8


# --------------------------------------------------------------------------- building blocks


def test_distance_transform_anisotropic():
    mask = np.ones((1, 1, 9), bool)
    mask[0, 0, 0] = False
    dt = distance_transform(mask, (1.0, 1.0, 0.5))
    assert dt.dtype == np.float32
    np.testing.assert_allclose(dt[0, 0], 0.5 * np.arange(9))  # the volume edge is not background
    mask = np.zeros((5, 5, 5), bool)
    mask[2, 2, 2] = True
    dt = distance_transform(mask, (2.0, 3.0, 0.25))
    assert dt[2, 2, 2] == pytest.approx(0.25)


def test_find_markers_two_balls():
    shape = (24, 24, 50)
    mask = ball(shape, (12, 12, 12), 8) | ball(shape, (12, 12, 36), 8)
    dt = distance_transform(mask)
    for params in (SeparationParams(markers="hmaxima"), SeparationParams(markers="peaks", min_distance_um=4)):
        m = find_markers(dt, params)
        assert m.dtype == np.int32 and m.max() == 2
        assert m[12, 12, 12] > 0 and m[12, 12, 36] > 0


def test_sphere_cut_by_a_face_stays_apart_from_the_sphere_it_touches():
    """Two touching spheres (radii 8 and 5 voxels, 2 voxels of overlap), the smaller cut by the volume's +x face
    to a cap of 118 voxels: two particles.  Its contact with the big sphere is 1.55 times the cross-section of a
    sphere of the cap's volume, so the area merge of before (merge_ratio 1.2) joined them; the default (2.0) only
    merges interfaces wider than a half sphere's (1.59) by a margin."""
    z, y, x = np.indices((20, 20, 19))
    big = (z - 10) ** 2 + (y - 10) ** 2 + (x - 9) ** 2 <= 8**2
    small = (z - 10) ** 2 + (y - 10) ** 2 + (x - 20) ** 2 <= 5**2
    ph = np.zeros(big.shape, np.uint8)
    ph[big | small] = NMC
    assert SeparationParams().merge_ratio == 2.0
    lab = separate_particles(ph, 1.0)
    assert lab.max() == 2
    assert lab[10, 10, 9] != lab[10, 10, 18]
    assert separate_particles(ph, 1.0, SeparationParams(merge_ratio=1.2)).max() == 1  # what the old default did


def test_face_levels_move_to_the_maximum_their_voxel_climbs_to():
    from core.particles import _seed_face_levels

    q = np.zeros((5, 7, 7), np.uint8)
    q[0:3, 1:6, 1:6] = 1
    q[0, 3, 3], q[1, 3, 3], q[2, 3, 3] = 2, 3, 2  # the face voxel (0, 3, 3) is one step below the maximum
    flat = np.ravel_multi_index(([0, 0], [1, 3], [1, 3]), q.shape).astype(np.int64)
    top, lev = _seed_face_levels(q, (1.0, 1.0, 1.0), 1.0, flat, np.array([4, 9], np.uint8))
    # (0, 1, 1) has no higher neighbour: it stays; (0, 3, 3) climbs to (1, 3, 3), 1 µm away, inside its 3 µm ball
    np.testing.assert_array_equal(top, np.ravel_multi_index(([0, 1], [1, 3], [1, 3]), q.shape))
    np.testing.assert_array_equal(lev, [4, 9])
    # two levels reaching one maximum ((0, 3, 2) climbs through (0, 3, 3)): the higher one
    both = np.ravel_multi_index(([0, 0], [3, 3], [2, 3]), q.shape).astype(np.int64)
    top, lev = _seed_face_levels(q, (1.0, 1.0, 1.0), 1.0, both, np.array([7, 5], np.uint8))
    assert top.tolist() == [int(np.ravel_multi_index((1, 3, 3), q.shape))] and lev.tolist() == [7]
    # a climb that ends farther than the maximum's inscribed ball left the particle: the level is dropped
    ramp = np.zeros((12, 3, 3), np.uint8)
    ramp[:, 1, 1] = np.arange(1, 13)
    start = np.array([int(np.ravel_multi_index((0, 1, 1), ramp.shape))], np.int64)
    assert _seed_face_levels(ramp, (1.0, 1.0, 1.0), 0.5, start, np.array([3], np.uint8))[0].size == 0  # 11 > 6
    kept = _seed_face_levels(ramp, (1.0, 1.0, 1.0), 1.0, start, np.array([3], np.uint8))[0]  # 11 <= 12
    assert kept.tolist() == [int(np.ravel_multi_index((11, 1, 1), ramp.shape))]


def test_a_face_level_goes_on_to_the_highest_maximum_of_its_section_along_the_face():
    """A cut particle's noisy distance map holds two maxima in its section of the z = 0 face, 3 voxels apart, with
    a saddle one level below the lesser: with h = 2 levels the flood by dynamics would join them, so the
    section's level goes to the higher one, not to the one its voxel climbs to first (which it would keep
    apart).  Not with h = 1 (the flood keeps them apart too), nor beyond the lesser one's inscribed ball, nor
    into another section of the face (a neighbour beside a cap), nor to a higher voxel off the face (the body
    beyond a cap's neck)."""
    from core.particles import _seed_face_levels

    q = np.zeros((6, 9, 11), np.uint8)
    q[0:5, 1:8, 1:10] = 2
    q[0, 4, 3], q[0, 4, 4], q[0, 4, 5], q[0, 4, 6] = 6, 5, 5, 8  # two maxima on the z = 0 face
    one = np.array([int(np.ravel_multi_index((0, 4, 3), q.shape))], np.int64)
    seven, face0 = np.array([7], np.uint8), np.array([0], np.int64)
    offsets = np.r_[0, np.full(6, q.shape[1] * q.shape[2])].astype(np.int64)  # only face 0 (z = 0) has pixels
    same = np.ones(q.shape[1] * q.shape[2], np.int32)  # one section
    split = same.reshape(q.shape[1:]).copy()
    split[:, 5:] = 2  # the higher maximum in another section

    def climbed(q, sp, sections, h):
        return _seed_face_levels(q, sp, 1.0, one, seven, face0, sections.ravel(), offsets, h=h)[0].tolist()

    top, lev = _seed_face_levels(q, (1.0, 1.0, 1.0), 1.0, one, seven, face0, same, offsets, h=2)
    assert top.tolist() == [int(np.ravel_multi_index((0, 4, 6), q.shape))] and lev.tolist() == [7]
    assert climbed(q, (1.0, 1.0, 1.0), same, 1) == one.tolist()
    assert climbed(q, (1.0, 1.0, 1.0), split, 2) == one.tolist()
    # without sections, as before: the maximum the voxel climbs to
    assert _seed_face_levels(q, (1.0, 1.0, 1.0), 1.0, one, seven)[0].tolist() == one.tolist()
    # beyond the ball (radius 6 levels * 1 µm = 6 µm < 3 voxels of 2.5 µm): it stays
    assert climbed(q, (1.0, 1.0, 2.5), same, 2) == one.tolist()
    # higher, in the ball, but off the face: it stays
    q[0, 4, 4:7] = 2
    q[1:4, 4, 3] = 5
    q[3, 4, 3] = 9
    assert climbed(q, (1.0, 1.0, 1.0), same, 2) == one.tolist()


def test_merge_fragments():
    lab = np.zeros((10, 10, 24), np.int32)
    lab[1:9, 1:9, 1:5] = 1
    lab[1:9, 1:9, 5:9] = 2  # big interface with 1 -> merged
    lab[1:9, 1:9, 14:22] = 3
    lab[5, 5, 9:14] = 4  # thin rod joining 2 and 3 (one face each side)
    lab[1:9, 1:9, 22] = 7  # non-contiguous id, 64 faces with 3: 64 > 1.2 * pi r^2 of the slab (r ~ 2.5)
    out = merge_fragments(lab, merge_ratio=1.2, min_volume_um3=0)
    assert out.dtype == np.int32
    assert out[2, 2, 2] == out[2, 2, 6]
    assert out[2, 2, 15] == out[2, 2, 22]
    assert out[2, 2, 2] != out[2, 2, 15]
    assert len(np.unique(out[lab > 0])) == 3 and out.max() == 3  # renumbered 1..n
    np.testing.assert_array_equal(out > 0, lab > 0)
    # the 5-voxel rod joins a neighbour when fragments below 6 µm³ are merged
    out2 = merge_fragments(lab, merge_ratio=0, min_volume_um3=6.0)
    assert out2.max() == 4
    assert out2[5, 5, 10] in (out2[2, 2, 6], out2[2, 2, 15])
    # nothing to merge
    np.testing.assert_array_equal(merge_fragments(lab, merge_ratio=0, min_volume_um3=0) > 0, lab > 0)
    assert merge_fragments(lab, merge_ratio=0, min_volume_um3=0).max() == 5


def test_a_fragment_between_two_particles_joins_one_of_them_not_both():
    """Merging is greedy, weighed on the regions as they grow: no chain through a wedged fragment."""
    lab = np.zeros((12, 12, 27), np.int32)
    lab[1:11, 1:11, 1:12] = 1  # 1,100 voxels
    lab[1:11, 1:11, 12:14] = 2  # a 200-voxel slab: 100 faces with each neighbour, 2.4 x its pi r^2
    lab[1:11, 1:11, 14:25] = 3  # 1,100 voxels
    out = merge_fragments(lab, merge_ratio=2.0, min_volume_um3=0)
    # the slab joins 1 (the first of two equal ratios); 1 + slab and 3 then share 100 faces, 0.78 x pi r^2 of 3
    assert out.max() == 2
    assert out[5, 5, 5] == out[5, 5, 12] == out[5, 5, 13] != out[5, 5, 20]
    # where the merged region's summed contact is large for the smaller one, it goes on
    lab2 = lab.copy()
    lab2[1:11, 1:11, 14:16] = 3  # now a second 200-voxel slab...
    lab2[1:11, 1:11, 16:25] = 0
    out2 = merge_fragments(lab2, merge_ratio=2.0, min_volume_um3=0)
    assert out2.max() == 1  # ... that joins 1 + slab: 100 faces against pi r^2 of 200 voxels


def test_separation_params_validation():
    with pytest.raises(ValueError, match=r"markers must be one of \['hmaxima', 'peaks'\]"):
        SeparationParams(markers="random")
    for name in ("h_um", "min_distance_um", "merge_ratio", "min_volume_um3"):
        with pytest.raises(ValueError, match=rf"{name} must be >= 0"):
            SeparationParams(**{name: -1.0})
    with pytest.raises(ValueError, match=r"flood_order must be one of \['row', 'fifo'\]"):
        SeparationParams(flood_order="random")


def test_flood_order_row_by_default_and_fifo_for_parameters_written_before_it(two_spheres):
    """New analyses flood in rounds by row; separation parameters without the key (recipes written before session
    29) replay first in, first out; both orders separate the two touching spheres."""
    from core.pipeline import AnalysisParams

    assert SeparationParams().flood_order == "row" and AnalysisParams().separation.flood_order == "row"
    assert AnalysisParams.from_dict(AnalysisParams().to_dict()).separation.flood_order == "row"
    assert AnalysisParams.from_dict({"separation": {"h_um": 0.5}}).separation.flood_order == "fifo"
    assert AnalysisParams.from_dict({}).separation.flood_order == "row"  # no separation given: the defaults
    ph, truth = two_spheres
    for order in ("row", "fifo"):
        assert separate_particles(ph, 1.0, SeparationParams(flood_order=order)).max() == 2


# --------------------------------------------------------------------------- inputs and validation


def test_inputs_not_modified_and_read_only(two_spheres):
    ph, truth = two_spheres
    ph = ph.copy()
    ph[ph == PORE] = np.where(np.indices(ph.shape)[0] < 5, CBD, PORE)[ph == PORE]
    ph_copy = ph.copy()
    lab1 = separate_particles(ph, (1.0, 1.0, 1.0))
    np.testing.assert_array_equal(ph, ph_copy)
    ph.flags.writeable = False
    lab2 = separate_particles(ph, (1.0, 1.0, 1.0))
    np.testing.assert_array_equal(lab1, lab2)
    dt = distance_transform(fill_enclosed(ph == NMC))
    dt.flags.writeable = False
    dt_copy = dt.copy()
    lab3 = separate_particles(ph, dt=dt)
    np.testing.assert_array_equal(dt, dt_copy)
    np.testing.assert_array_equal(lab1, lab3)


def test_progress_is_reported(two_spheres):
    ph, _ = two_spheres
    calls = []
    separate_particles(ph, progress=lambda f, m: calls.append((f, m)))
    fracs = [f for f, _ in calls]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0
    assert calls[-1][1] == "2 particles"


@pytest.mark.parametrize(
    "phases, kw, exc, match",
    [
        (np.zeros((6, 6, 6), np.uint8), {}, ValueError, r"the NMC phase is empty"),
        (np.ones((6, 6, 6), np.uint8), {}, ValueError, r"the NMC phase is empty"),
        (np.full((6, 6, 6), 3, np.uint8), {}, ValueError, r"only the codes 0 = pore, 1 = CBD, 2 = NMC; found \[3\]"),
        (np.full((6, 6), 2, np.uint8), {}, ValueError, r"phases must be 3D"),
        (np.full((6, 6, 6), 2.0), {}, TypeError, r"integer phase codes"),
        (np.full((6, 6, 6), 2, np.uint8), {"spacing": 0}, ValueError, r"finite and > 0"),
        (np.full((6, 6, 6), 2, np.uint8), {"spacing": (1, 1)}, ValueError, r"spacing needs 3 values"),
        (np.full((6, 6, 6), 2, np.uint8), {"spacing": (1, -2, 1)}, ValueError, r"finite and > 0"),
        (np.full((6, 6, 6), 2, np.uint8), {"spacing": (1, np.nan, 1)}, ValueError, r"finite and > 0"),
        (np.full((6, 6, 6), 2, np.uint8), {"dt": np.zeros((6, 6, 5), np.float32)}, ValueError,
         r"dt shape \(6, 6, 5\) does not match phases shape \(6, 6, 6\)"),
        (np.full((6, 6, 6), 2, np.uint8), {"markers": np.zeros((5, 6, 6), np.int32)}, ValueError,
         r"markers shape .* does not match"),
    ],
)
def test_separate_particles_rejects_bad_input(phases, kw, exc, match):
    with pytest.raises(exc, match=match):
        separate_particles(phases, **kw)


def test_kept_outside_reach_is_that_of_the_labels():
    """The pipeline shares the separation's outside_reach with the table: it must be the labels' own."""
    from core import _kernels as K
    from core.particles import _separate_particles

    shape = (30, 34, 40)
    mask = ball(shape, (15, 15, 12), 8) | ball(shape, (15, 18, 25), 8) | ball(shape, (4, 30, 36), 5)
    zz, yy, xx = np.indices(shape)
    ph = phases_of(mask)
    ph[(zz == 15) & ((yy - 15) ** 2 + (xx - 12) ** 2 <= 16)] = PORE  # a crack, filled for the transform
    ph[~mask & ((xx + yy) % 7 == 0)] = CBD
    for fill in (True, False):
        params = SeparationParams(fill_cracks=fill)
        labels, bits = _separate_particles(ph, (0.5, 0.4, 0.4), params, keep_outside=True)
        np.testing.assert_array_equal(labels, separate_particles(ph, (0.5, 0.4, 0.4), params))
        if not fill:
            assert bits is None  # nothing computed to share
            continue
        outside = np.unpackbits(bits, count=labels.size).view(bool).reshape(shape)
        np.testing.assert_array_equal(outside, K.outside_reach(labels))
        assert not outside[15, 15, 12]  # the crack is enclosed
    assert _separate_particles(ph, 0.4, keep_outside=False)[1] is None
    assert _separate_particles(ph, 0.4, SeparationParams(markers="peaks"), keep_outside=True)[1] is None


def test_flood_with_side_work_on_two_cores_equals_one_core(monkeypatch):
    """Regional maxima and face levels found side by side, side work run during the flood: the labels of one core."""
    from core import _kernels as K
    from core.particles import _separate_particles

    shape = (30, 34, 40)
    mask = ball(shape, (15, 15, 12), 8) | ball(shape, (15, 18, 25), 8) | ball(shape, (0, 30, 36), 6)
    ph = phases_of(mask)
    got = {}
    for n in (1, 2):
        monkeypatch.setattr(K, "cores", lambda: n)
        side = K.SideWork(lambda: int(ph.sum()), lambda: ph[::2].copy())
        got[n] = _separate_particles(ph, (0.5, 0.4, 0.4), keep_outside=True, side=side)
        assert (side._futures is not None) == (n == 2)  # started with the flood where there is a second core
        total, half, (idx, root) = side.results()  # the crack sets of the NMC added by the separation
        assert total == int(ph.sum())
        np.testing.assert_array_equal(half, ph[::2])
        outside = np.unpackbits(got[n][1], count=ph.size).view(bool).reshape(ph.shape)
        np.testing.assert_array_equal(idx, np.flatnonzero((ph != NMC) & ~outside))
        assert root.shape == idx.shape
    np.testing.assert_array_equal(got[1][0], got[2][0])
    np.testing.assert_array_equal(got[1][1], got[2][1])
    assert got[2][0].max() >= 3


def _reference_flood(q, labels, n_seeds, h, by_row=True):
    """Plain-Python priority flood of :func:`core._watershed._flood` (every seed voxel queued): within a level the
    seed voxels first, then rounds of what was queued since, stably by row (z, y) (``by_row`` False: first in,
    first out)."""
    from collections import deque

    shape = q.shape
    parent = list(range(n_seeds + 1))
    peak = [0] * (n_seeds + 1)

    def find(a):
        while parent[a] != a:
            a = parent[a]
        return a

    queues = [deque() for _ in range(256)]
    for i in zip(*np.nonzero(labels)):
        peak[labels[i]] = max(peak[labels[i]], int(q[i]))
    for i in np.ndindex(shape):  # raster order, as the numba flood pushes
        if labels[i] > 0:
            queues[q[i]].append(i)
    seeds_at = [len(queue) for queue in queues]

    def visits(level):
        for _ in range(seeds_at[level]):
            yield queues[level].popleft()
        while queues[level]:
            rnd = sorted(queues[level], key=lambda i: i[:2] if by_row else 0)  # (stable)
            queues[level].clear()
            yield from rnd

    for level in range(255, 0, -1):
        for i in visits(level):
            a = find(labels[i])
            for ax in range(3):
                for s in (-1, 1):
                    j = list(i)
                    j[ax] += s
                    if not 0 <= j[ax] < shape[ax]:
                        continue
                    j = tuple(j)
                    if q[j] == 0:
                        continue
                    if labels[j] == 0:
                        labels[j] = a
                        queues[min(int(q[j]), level)].append(j)
                    else:
                        b = find(labels[j])
                        if b != a:
                            hi, lo = (a, b) if peak[a] >= peak[b] else (b, a)
                            if peak[lo] - level < h:
                                parent[lo] = hi
                                a = find(a)
    roots = sorted({find(s) for s in range(1, n_seeds + 1)})
    new = {r: k + 1 for k, r in enumerate(roots)}
    out = np.zeros_like(labels)
    out[labels > 0] = [new[find(v)] for v in labels[labels > 0]]
    return out


@pytest.mark.parametrize("by_row", [True, False])
@pytest.mark.parametrize("h", [-256, 0, 4, 40])
def test_seeded_flood_equals_the_plain_priority_flood(h, by_row):
    # _flood queues only the seed voxels next to an unlabelled voxel or another seed; the labels (and the
    # merges by dynamics) must be those of queueing every seed voxel
    from core._watershed import _flood
    from core.particles import quantised_distance

    rng = np.random.default_rng(3)
    for _ in range(12):
        shape = tuple(int(n) for n in rng.integers(3, 11, 3))
        mask = ndi.gaussian_filter(rng.random(shape), 1.0) > 0.5
        q, _ = quantised_distance(mask, 1.0)
        scattered = np.zeros(shape, np.int32)
        pick = (rng.random(shape) < 0.15) & mask
        scattered[pick] = rng.integers(1, 4, int(pick.sum()))  # a few seeds of several voxels, some touching
        # seeds that fill the inside of the mask, cut in three along x: they meet inside, away from the rim
        slabs = np.where(mask & (q >= 2), 1 + np.indices(shape)[2] * 3 // shape[2], 0).astype(np.int32)
        for seeds in (scattered, slabs):
            n = int(seeds.max())
            if n == 0:
                continue
            got = seeds.copy()
            _flood(q, got, n, h, None, by_row)
            np.testing.assert_array_equal(got, _reference_flood(q, seeds.copy(), n, h, by_row))


def _thin_cap_at_a_face(n=40):
    """A particle inside the volume and a thin cap (4 voxels) of a second one the x-high face cut, touching it."""
    z, y, x = np.mgrid[:n, :n, :n]
    a = (z - 20) ** 2 + (y - 20) ** 2 + (x - 26) ** 2 <= 11**2
    b = (z - 20) ** 2 + (y - 20) ** 2 + (x - 46) ** 2 <= 10**2
    ph = np.zeros((n, n, n), np.uint8)
    ph[a | b] = NMC
    return ph, a, b


def test_a_thin_cap_cut_by_a_face_keeps_its_own_label():
    """Its 3D peak is only the cap's thickness (it would join its neighbour); its section in the face is its size."""
    from core.particles import ALL_FACES, NO_FACES

    ph, a, b = _thin_cap_at_a_face()
    lab = separate_particles(ph, 1.0)
    assert lab.max() == 2
    cap = b & ~a
    assert np.unique(lab[cap]).size == 1 and lab[cap][0] != lab[20, 20, 26]
    assert np.array_equal(separate_particles(ph, 1.0, faces=ALL_FACES), lab)
    # where the face is not the volume's (a window cut from a bigger one) the particle goes on: one basin
    assert separate_particles(ph, 1.0, faces=NO_FACES).max() == 1
    assert separate_particles(ph, 1.0, faces=((True, True), (True, True), (True, False))).max() == 1
    # the other five faces do not matter here
    assert separate_particles(ph, 1.0, faces=((False, False), (False, False), (False, True))).max() == 2


@pytest.mark.parametrize("faces", [None, ((True, True),) * 2, "all", ((True, 1),) * 3])
def test_faces_must_be_three_pairs_of_booleans(faces):
    ph, _, _ = _thin_cap_at_a_face(24)
    with pytest.raises(ValueError, match="faces must be three"):
        separate_particles(ph, 1.0, faces=faces)


def test_one_face_level_per_section_of_a_cut_particle():
    """A half ball cut by the z = 0 face with its centre between two voxel columns: the section's 2D distance
    peaks on a plateau of two pixels.  One section is one particle, so one face level: two, climbing to two
    noisy 3D maxima, kept both basins apart and split the particle (a 3,892-voxel face-cut particle of a blurred
    sphere packing was split in two so)."""
    from core.particles import face_peak_levels, quantised_distance

    z, y, x = np.indices((12, 24, 25))
    ph = np.zeros(z.shape, np.uint8)
    ph[z**2 + (y - 12) ** 2 + (x - 12.5) ** 2 <= 9**2] = NMC
    q, step = quantised_distance(ph == NMC, 1.0)
    flat, levels = face_peak_levels(q, np.ones(3), step, 0.5)
    assert flat.size == 1  # was 2: both pixels of the plateau (0, 12, 12) and (0, 12, 13)
    assert np.unravel_index(int(flat[0]), q.shape) == (0, 12, 12)  # the first in raster order among equals
    d2 = ndi.distance_transform_edt(ph[0] == NMC)  # the section's in-face distance, scipy's
    assert d2[12, 12] == d2[12, 13] == d2.max()
    assert abs(int(levels[0]) - d2.max() / step) < 1  # its level: the section's peak, quantised as q is


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True where labels ``a`` and ``b`` cut the volume into the same regions (numbers aside)."""
    if not np.array_equal(a > 0, b > 0):
        return False
    on = a > 0
    pairs = np.unique(np.stack([a[on].astype(np.int64), b[on].astype(np.int64)]), axis=1)
    return pairs.shape[1] == np.unique(a[on]).size == np.unique(b[on]).size


def _split_and_whole(monkeypatch, ph, spacing):
    """Labels of :func:`separate_particles` with the flood split between two cores, and flooded whole."""
    from core import _kernels as K
    from core import particles as P

    monkeypatch.setattr(K, "cores", lambda: 2)
    calls = []
    halves = P._flood_halves
    monkeypatch.setattr(P, "_flood_halves", lambda *a, **k: calls.append(1) or halves(*a, **k))
    monkeypatch.setattr(P, "FLOOD_SPLIT_MIN_VOXELS", 1)
    split = separate_particles(ph, spacing)
    assert calls, "the split flood was not used"
    monkeypatch.setattr(P, "FLOOD_SPLIT_MIN_VOXELS", 1 << 62)
    whole = separate_particles(ph, spacing)
    assert len(calls) == 1
    return split, whole


def test_the_flood_split_between_two_cores_labels_as_the_whole_flood(monkeypatch):
    from core.synth import ElectrodeParams, make_electrode

    w = make_electrode(ElectrodeParams(shape=(160, 40, 40)), rng=3)
    split, whole = _split_and_whole(monkeypatch, w.phases, w.spacing)
    assert split.shape == whole.shape and split.dtype == np.uint16
    assert whole.max() >= 15
    assert _same_partition(split, whole)
    np.testing.assert_array_equal(np.unique(split), np.arange(int(split.max()) + 1))  # numbered 1..n


def test_a_chain_of_balls_across_the_seam_of_the_split_flood(monkeypatch):
    # touching balls of radius 6 along z, one centred on the seam (z = 48): each its own particle in both floods
    shape = (96, 20, 20)
    centres = range(4, 96, 11)  # 4, 15, .., 48, .., 92
    mask = np.zeros(shape, bool)
    for c in centres:
        mask |= ball(shape, (c, 10, 10), 6)
    split, whole = _split_and_whole(monkeypatch, phases_of(mask), 0.5)
    assert int(whole.max()) == len(centres)
    assert _same_partition(split, whole)
    assert split[45, 10, 10] == split[48, 10, 10] == split[51, 10, 10]  # the ball on the seam is one particle


def test_the_flood_is_done_whole_where_a_half_needs_more_than_uint16_labels(monkeypatch):
    from core import particles as P
    from core.synth import ElectrodeParams, make_electrode

    w = make_electrode(ElectrodeParams(shape=(160, 40, 40)), rng=3)
    monkeypatch.setattr(P, "_flood_into", lambda *a, **k: -1)  # as when too many basins are alive at once
    split, whole = _split_and_whole(monkeypatch, w.phases, w.spacing)
    np.testing.assert_array_equal(split, whole)


@pytest.mark.parametrize("where", [(0, 0, 0), (9, 4, 7), None])
def test_check_has_nmc_scans_in_slabs_to_the_last_voxel(monkeypatch, where):
    """The slab scan finds NMC wherever it is (the last voxel of the last slab too) and raises only without it."""
    import core._validate as V

    monkeypatch.setattr(V, "_NMC_SCAN_VOXELS", 40)  # 40 voxels a slab: one 5 x 8 slice of a (10, 5, 8) volume
    ph = np.full((10, 5, 8), CBD, np.uint8)
    if where is None:
        with pytest.raises(ValueError, match="the NMC phase is empty"):
            V.check_has_nmc(ph)
        with pytest.raises(ValueError, match="the NMC phase is empty"):
            V.check_has_nmc(ph[:0])
    else:
        ph[where] = NMC
        V.check_has_nmc(ph)
        V.check_has_nmc(ph[:, ::-1, ::2] if where[2] % 2 == 0 else ph[:, ::-1])
