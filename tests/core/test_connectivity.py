"""Known-answer tests for core.connectivity (contact graph, isolated particles) on hand-built volumes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from core.codes import CBD, NMC, PORE
from core.connectivity import (
    CONTACT_COLUMNS, DEPTH_COLUMNS, PARTICLE_COLUMNS, IsolationSummary, _contact_graph, contact_graph, depth_table,
    isolation_by_depth, summary_table,
)

SHAPE = (24, 16, 16)  # thickness along z; the collector is at z = 23 with separator_side="start"


def ball(shape, centre, radius) -> np.ndarray:
    zz, yy, xx = np.indices(shape)
    return (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= radius**2


def scene(*balls, cbd=()):
    """Phases and labels: ``balls`` are (centre, radius) particles labelled 1, 2, ...; ``cbd`` are boolean masks."""
    ph = np.full(SHAPE, PORE, np.uint8)
    lab = np.zeros(SHAPE, np.int32)
    for m in cbd:
        ph[m] = CBD
    for i, (c, r) in enumerate(balls, start=1):
        m = ball(SHAPE, c, r)
        ph[m] = NMC
        lab[m] = i
    return lab, ph


def row(g, label) -> pd.Series:
    return g.particles.set_index("label").loc[label]


def mean_z(lab, label) -> float:
    return float(np.argwhere(lab == label)[:, 0].mean())


# centres chosen so that: A (r=4, z=19) reaches the collector slice z=23; B (r=3, z=12) touches A
A = ((19, 8, 8), 4)
B = ((12, 8, 8), 3)
FLOAT = ((4, 8, 8), 3)  # floats in pore: one empty slice (z = 8) below B


def test_columns_and_types():
    lab, ph = scene(A, B)
    g = contact_graph(lab, ph)
    assert tuple(g.particles.columns) == PARTICLE_COLUMNS
    assert tuple(g.contacts.columns) == CONTACT_COLUMNS
    assert tuple(g.by_depth.columns) == DEPTH_COLUMNS
    assert g.particles["connected"].dtype == bool
    assert g.axis == 0 and g.separator_side == "start" and g.spacing == (1.0, 1.0, 1.0)


def test_two_touching_spheres_one_on_the_collector_are_both_connected():
    lab, ph = scene(A, B)
    assert lab[-1].max() == 1 and lab[-2].max() == 1 and not (lab[-1] == 2).any()  # only A reaches z = 23
    g = contact_graph(lab, ph)
    assert row(g, 1)["touches_collector"] and not row(g, 2)["touches_collector"]
    assert row(g, 1)["n_particle_contacts"] == 1 and row(g, 2)["n_particle_contacts"] == 1
    assert g.particles["connected"].all()
    assert g.summary.n_isolated == 0 and g.summary.share_isolated == 0.0
    # the contact is the shared z-faces between the two balls
    shared = int(((lab[:-1] == 2) & (lab[1:] == 1)).sum() + ((lab[:-1] == 1) & (lab[1:] == 2)).sum())
    assert shared > 0
    assert g.contacts[["label_a", "label_b"]].values.tolist() == [[1, 2]]
    assert g.contacts["area_um2"].iloc[0] == pytest.approx(shared)


def test_sphere_floating_in_pore_is_isolated():
    lab, ph = scene(A, B, FLOAT)
    g = contact_graph(lab, ph)
    assert row(g, 3)["n_particle_contacts"] == 0 and row(g, 3)["n_cbd_clusters"] == 0
    assert not row(g, 3)["connected"]
    assert row(g, 1)["connected"] and row(g, 2)["connected"]
    assert g.summary.n_isolated == 1
    assert g.summary.share_isolated == pytest.approx(1 / 3)
    vol = g.particles.set_index("label")["volume_um3"]
    assert g.summary.share_isolated_volume == pytest.approx(vol[3] / vol.sum())
    assert g.isolated_labels.tolist() == [3]


def test_cbd_bridge_connects_a_floating_sphere():
    bridge = np.zeros(SHAPE, bool)
    bridge[5:13, 7:10, 7:10] = True  # from inside FLOAT to inside B; the balls overwrite their own part
    lab, ph = scene(A, B, FLOAT, cbd=[bridge])
    g = contact_graph(lab, ph)
    assert g.summary.n_cbd_clusters == 1
    assert row(g, 3)["n_cbd_clusters"] == 1 and row(g, 2)["n_cbd_clusters"] == 1
    assert row(g, 3)["n_particle_contacts"] == 0
    assert row(g, 3)["connected"]
    assert row(g, 3)["cbd_cluster_id"] == row(g, 2)["cbd_cluster_id"] == 1
    assert row(g, 3)["cbd_cluster_volume_um3"] == pytest.approx((ph == CBD).sum())
    assert g.summary.n_isolated == 0
    assert g.summary.share_cbd_connected == 1.0  # the bridge hangs on a connected particle


def test_a_graph_counted_among_some_particles_keeps_their_paths():
    """A size filter leaves B out: A and the floating ball are counted, B's path is still A's (a path through a
    particle left out still conducts), the CBD numbers are unchanged."""
    bridge = np.zeros(SHAPE, bool)
    bridge[5:13, 7:10, 7:10] = True  # FLOAT hangs on B through CBD
    lab, ph = scene(A, B, FLOAT, cbd=[bridge])
    g = contact_graph(lab, ph, depth_bins=4)
    sub = g.among([1, 3, 99])  # 99: not a particle, ignored
    assert sub.particles["label"].tolist() == [1, 3] and sub.particles["connected"].all()
    assert sub.contacts.empty and len(sub.by_depth) == 4 and sub.by_depth["n_particles"].sum() == 2
    assert (sub.summary.n_particles, sub.summary.n_isolated) == (2, 0)
    assert sub.summary.n_cbd_clusters == g.summary.n_cbd_clusters == 1
    assert sub.summary.share_cbd_connected == g.summary.share_cbd_connected
    lab, ph = scene(A, B, FLOAT)  # without the bridge: FLOAT isolated, and so among A and it
    g = contact_graph(lab, ph)
    sub = g.among([1, 3])
    assert sub.isolated_labels.tolist() == [3] and sub.summary.share_isolated == 0.5
    vol = g.particles.set_index("label")["volume_um3"]
    assert sub.summary.share_isolated_volume == pytest.approx(vol[3] / (vol[1] + vol[3]))
    empty = g.among([])
    assert empty.summary.n_particles == 0 and np.isnan(empty.summary.share_isolated)


def test_cbd_cluster_reaching_nothing_connects_nothing():
    blob = ball(SHAPE, (4, 8, 3), 2.5)  # touches FLOAT only
    lab, ph = scene(A, B, FLOAT, cbd=[blob])
    g = contact_graph(lab, ph)
    assert row(g, 3)["n_cbd_clusters"] == 1
    assert not row(g, 3)["connected"]
    assert g.summary.share_cbd_connected == 0.0


def test_cbd_on_the_collector_face_connects_what_it_touches():
    wall = np.zeros(SHAPE, bool)
    wall[:, 0:3, :] = True  # a CBD wall at y = 0..2 through the whole thickness
    floating = ((5, 5, 8), 2)  # its lowest voxel (y = 3) faces the wall
    lab, ph = scene(floating, cbd=[wall])
    g = contact_graph(lab, ph)
    assert not row(g, 1)["touches_collector"]
    assert row(g, 1)["n_cbd_clusters"] == 1
    assert row(g, 1)["connected"]
    # the same wall stopping one slice short of the collector connects nothing
    ph2 = ph.copy()
    ph2[-1][ph2[-1] == CBD] = PORE
    assert not row(contact_graph(lab, ph2), 1)["connected"]


def test_largest_touching_cluster_is_reported():
    small = np.zeros(SHAPE, bool)
    small[12, 8, 0:5] = True  # 5 voxels, touching B from -x
    big = np.zeros(SHAPE, bool)
    big[12, 8, 11:16] = True  # B overwrites x = 11: 4 voxels touching B from +x ...
    big[13:20, 8, 15] = True  # ... and 7 more
    other = ((12, 6, 2), 1)  # touches ``small`` only (at y = 7 -> 8)
    lab, ph = scene(B, other, cbd=[small, big])
    g = contact_graph(lab, ph)
    r, r_other = row(g, 1), row(g, 2)
    assert r["n_cbd_clusters"] == 2 and r_other["n_cbd_clusters"] == 1 and g.summary.n_cbd_clusters == 2
    assert r["cbd_cluster_volume_um3"] == 11.0
    assert r_other["cbd_cluster_volume_um3"] == 5.0
    # clusters are numbered in the raster order of their first voxel: ``small`` starts at x = 0
    assert r["cbd_cluster_id"] == 2 and r_other["cbd_cluster_id"] == 1


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.3, 0.5, 2.0)])
def test_spacing_changes_sizes_not_topology(spacing):
    bridge = np.zeros(SHAPE, bool)
    bridge[5:13, 7:10, 7:10] = True
    lab, ph = scene(A, B, FLOAT, ((4, 3, 3), 2), cbd=[bridge])
    iso = contact_graph(lab, ph)
    g = contact_graph(lab, ph, spacing)
    topo = ["label", "n_voxels", "touches_collector", "touches_edge", "n_particle_contacts", "n_cbd_clusters",
            "cbd_cluster_id", "connected"]
    pd.testing.assert_frame_equal(g.particles[topo], iso.particles[topo])
    v = float(np.prod(spacing))
    np.testing.assert_allclose(g.particles["volume_um3"], iso.particles["volume_um3"] * v)
    # area of the A-B contact: its faces are normal to z, each spacing_y * spacing_x
    np.testing.assert_allclose(g.contacts["area_um2"], iso.contacts["area_um2"] * spacing[1] * spacing[2])
    assert g.summary.share_isolated == iso.summary.share_isolated


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("side", ["start", "end"])
def test_axis_and_collector_side(axis, side):
    lab, ph = scene(A, B, FLOAT)  # built with the collector at the end of z
    if side == "end":  # mirror: the collector is now at z = 0, the separator at the end
        lab, ph = lab[::-1], ph[::-1]
    order = {0: (0, 1, 2), 1: (1, 0, 2), 2: (1, 2, 0)}[axis]  # move the thickness axis to ``axis``
    lab = np.ascontiguousarray(np.transpose(lab, order))
    ph = np.ascontiguousarray(np.transpose(ph, order))
    g = contact_graph(lab, ph, axis=axis, separator_side=side)
    assert g.particles.set_index("label")["connected"].to_dict() == {1: True, 2: True, 3: False}
    assert row(g, 1)["touches_collector"]
    assert row(g, 1)["depth_frac"] > row(g, 2)["depth_frac"] > row(g, 3)["depth_frac"]
    assert row(g, 1)["depth_frac"] == pytest.approx(mean_z(*scene(A, B)[:1], 1) / 23)
    # the wrong end: nothing touches a collector at the separator side, all isolated
    other = "end" if side == "start" else "start"
    wrong = contact_graph(lab, ph, axis=axis, separator_side=other)
    assert not wrong.particles["connected"].any()
    np.testing.assert_allclose(wrong.particles["depth_frac"], 1 - g.particles["depth_frac"])


def test_isolated_at_a_side_face_is_counted_apart():
    at_edge = ((5, 3, 2), 2.5)  # cut by the x = 0 face
    lab, ph = scene(A, B, at_edge, FLOAT)
    g = contact_graph(lab, ph)
    assert row(g, 3)["touches_edge"] and not row(g, 4)["touches_edge"]
    assert not row(g, 1)["touches_edge"]  # the collector face is not a side face
    assert g.summary.n_isolated == 2 and g.summary.n_isolated_at_edge == 1


def test_share_isolated_by_depth():
    lab, ph = scene(A, B, FLOAT)
    g = contact_graph(lab, ph, depth_bins=4)
    d = g.by_depth
    assert d["depth_lo"].tolist() == [0.0, 0.25, 0.5, 0.75]
    # FLOAT sits at depth 4/23 = 0.17 (bin 0), B at about 12/23 = 0.52 (bin 2), A at about 19/23 = 0.83 (bin 3)
    assert [mean_z(lab, i) / 23 for i in (3, 2, 1)] == pytest.approx([4 / 23, 12 / 23, 19 / 23], abs=0.01)
    assert d["n_particles"].tolist() == [1, 0, 1, 1]
    assert d["n_isolated"].tolist() == [1, 0, 0, 0]
    assert np.isnan(d["share_isolated"].iloc[1])
    assert d["share_isolated"].iloc[[0, 2, 3]].tolist() == [1.0, 0.0, 0.0]
    assert d["n_particles"].sum() == g.summary.n_particles


def test_isolation_by_depth_edges_and_weights():
    p = pd.DataFrame({"depth_frac": [0.0, 0.5, 0.5, 1.0], "volume_um3": [1.0, 1.0, 3.0, 2.0],
                      "connected": [True, False, True, False]})
    d = isolation_by_depth(p, 2)
    assert d["n_particles"].tolist() == [1, 3]  # 0.5 opens the second bin; 1.0 is in the last
    assert d["share_isolated"].tolist() == pytest.approx([0.0, 2 / 3])
    assert d["share_isolated_volume"].tolist() == pytest.approx([0.0, 3 / 6])
    with pytest.raises(ValueError, match="lacks the column"):
        isolation_by_depth(p.drop(columns="connected"))
    with pytest.raises(ValueError, match="bins must be an integer >= 1"):
        isolation_by_depth(p, 0)


def test_tables_of_several_electrodes():
    g1 = contact_graph(*scene(A, B, FLOAT), depth_bins=3)
    g2 = contact_graph(*scene(A, B), depth_bins=3)
    s = summary_table({"one": g1, "two": g2})
    assert s["electrode"].tolist() == ["one", "two"]
    assert s["n_isolated"].tolist() == [1, 0] and s["n_particles"].tolist() == [3, 2]
    row = s.drop(columns="electrode").iloc[0].to_dict()
    assert row == pytest.approx(dict(vars(g1.summary)), nan_ok=True)
    assert set(row) == set(IsolationSummary.__dataclass_fields__)
    d = depth_table({"one": g1, "two": g2})
    assert tuple(d.columns) == ("electrode", *DEPTH_COLUMNS) and len(d) == 6
    assert d.groupby("electrode")["n_particles"].sum().to_dict() == {"one": 3, "two": 2}
    assert len(summary_table({})) == 0 and len(depth_table({})) == 0


def test_no_particles_and_no_cbd():
    ph = np.zeros(SHAPE, np.uint8)
    g = contact_graph(np.zeros(SHAPE, np.int32), ph)
    assert len(g.particles) == 0 and g.summary.n_particles == 0
    assert np.isnan(g.summary.share_isolated) and np.isnan(g.summary.share_cbd_connected)
    assert g.summary.n_cbd_clusters == 0


def test_inputs_not_modified_and_labels_need_not_be_contiguous():
    bridge = np.zeros(SHAPE, bool)
    bridge[5:13, 7:10, 7:10] = True
    lab, ph = scene(A, B, FLOAT, cbd=[bridge])
    lab64 = (lab * 10).astype(np.int64)  # labels 10, 20, 30
    before = (lab64.copy(), ph.copy())
    g = contact_graph(lab64, ph)
    np.testing.assert_array_equal(lab64, before[0])
    np.testing.assert_array_equal(ph, before[1])
    assert g.particles["label"].tolist() == [10, 20, 30]
    assert g.particles["connected"].all()


# --------------------------------------------------------------------------- against a plain numpy reference


def reference(lab, ph, axis, side):
    """Connected flag per label by whole-volume face comparisons and scipy labelling (the slow, obvious way)."""
    cl, n_cl = ndi.label((ph == CBD) & (lab == 0))  # 6-connectivity by default
    n_lab = int(lab.max())
    coll = n_lab + n_cl + 1
    pp, pc = [], []
    for ax in range(3):
        a = [slice(None)] * 3
        b = [slice(None)] * 3
        a[ax], b[ax] = slice(None, -1), slice(1, None)
        la, lb, ca, cb = lab[tuple(a)], lab[tuple(b)], cl[tuple(a)], cl[tuple(b)]
        m = (la > 0) & (lb > 0) & (la != lb)
        pp.append(np.stack([np.minimum(la[m], lb[m]), np.maximum(la[m], lb[m])]))
        m = (la > 0) & (cb > 0)
        pc.append(np.stack([la[m], n_lab + cb[m]]))
        m = (ca > 0) & (lb > 0)
        pc.append(np.stack([lb[m], n_lab + ca[m]]))
    face = np.take(lab, -1 if side == "start" else 0, axis=axis)
    cface = np.take(cl, -1 if side == "start" else 0, axis=axis)
    ends = np.concatenate([face[face > 0], n_lab + cface[cface > 0]])
    edges = np.concatenate(pp + pc + [np.stack([ends, np.full(ends.size, coll)])], axis=1)
    gr = sparse.coo_matrix((np.ones(edges.shape[1]), (edges[0], edges[1])), shape=(coll + 1, coll + 1))
    comp = connected_components(gr, directed=False)[1]
    labels = np.unique(lab[lab > 0])
    pairs = np.unique(np.concatenate(pp, axis=1), axis=1)
    return labels, comp[labels] == comp[coll], n_cl, pairs


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("slab", [1, 3, None])
def test_matches_a_plain_reference_whatever_the_slab(seed, slab):
    rng = np.random.default_rng(seed)
    shape = (13, 11, 9)
    ph = rng.choice([PORE, CBD, NMC], size=shape, p=[0.7, 0.1, 0.2]).astype(np.uint8)
    # particles: NMC voxels grouped in 3x3x3 blocks, so several particles touch each other
    zz, yy, xx = np.indices(shape)
    block = (zz // 3) * 100 + (yy // 3) * 10 + xx // 3 + 1
    lab = np.where(ph == NMC, block, 0).astype(np.int32)
    axis, side = int(rng.integers(3)), ["start", "end"][int(rng.integers(2))]
    g = _contact_graph(lab, ph, axis=axis, separator_side=side, depth_bins=5, slab=slab)
    labels, connected, n_cl, pairs = reference(lab, ph, axis, side)
    assert g.particles["label"].tolist() == labels.tolist()
    assert g.particles["connected"].tolist() == connected.tolist()
    assert 0 < connected.sum() < connected.size  # the case is not trivial
    assert g.summary.n_cbd_clusters == n_cl
    assert g.contacts[["label_a", "label_b"]].to_numpy().T.tolist() == pairs.tolist()
    np.testing.assert_array_equal(g.particles["n_voxels"], np.bincount(lab.ravel())[labels])
    if slab is not None:  # every column (cluster ids and sizes, depth, contact areas) is independent of the slab
        whole = contact_graph(lab, ph, axis=axis, separator_side=side)
        pd.testing.assert_frame_equal(g.particles, whole.particles)
        pd.testing.assert_frame_equal(g.contacts, whole.contacts)
        assert g.summary == whole.summary


# --------------------------------------------------------------------------- validation


def test_bad_inputs():
    lab, ph = scene(A)
    with pytest.raises(ValueError, match="separator_side must be one of"):
        contact_graph(lab, ph, separator_side="auto")
    with pytest.raises(ValueError, match="axis must be one of"):
        contact_graph(lab, ph, axis=3)
    with pytest.raises(ValueError, match="does not match phases shape"):
        contact_graph(lab[:-1], ph)
    with pytest.raises(ValueError, match="depth_bins must be an integer >= 1"):
        contact_graph(lab, ph, depth_bins=0)
    with pytest.raises(TypeError, match="integer array"):
        contact_graph(lab.astype(float), ph)
    with pytest.raises(ValueError, match="only the codes"):
        contact_graph(lab, ph + 1)
