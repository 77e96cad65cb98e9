"""Known-answer tests for core.metrics on tiny synthetic volumes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skimage.measure import marching_cubes, mesh_surface_area

from core import metrics
from core.codes import CBD, NMC, PORE
from core.metrics import COLUMNS, detect_separator_side, fill_cracks, particle_table, surface_areas


def ball(shape, centre, radius) -> np.ndarray:
    zz, yy, xx = np.indices(shape)
    return (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= radius**2


def phases_of(mask: np.ndarray) -> np.ndarray:
    ph = np.zeros(mask.shape, np.uint8)
    ph[mask] = NMC
    return ph


def table_of(labels, phases, spacing=None, **kw) -> pd.DataFrame:
    kw.setdefault("separator_side", "start")
    return particle_table(labels, phases, spacing, **kw)


def face_counts(mask: np.ndarray) -> tuple[int, int, int]:
    """Number of faces of ``mask`` to outside (zero-padded), per normal axis z, y, x."""
    m = np.pad(mask, 1).astype(np.int8)
    return tuple(int(np.abs(np.diff(m, axis=a)).sum()) for a in range(3))


def shell(mask: np.ndarray, thickness: float) -> np.ndarray:
    from scipy import ndimage as ndi

    d = ndi.distance_transform_edt(~mask)
    return (d > 0) & (d <= thickness)


# --------------------------------------------------------------------------- table layout


def test_columns_and_attrs():
    ph = np.zeros((5, 5, 5), np.uint8)
    ph[1:3, 1:3, 1:3] = NMC
    lab = (ph == NMC).astype(np.int32)
    t = particle_table(lab, ph, (1.0, 2.0, 3.0), axis=1, separator_side="end")
    assert tuple(t.columns) == COLUMNS
    assert len(t) == 1
    assert t.attrs == {"spacing_um": [1.0, 2.0, 3.0], "axis": 1, "separator_side": "end"}


def test_non_contiguous_labels_one_row_each():
    ph = np.zeros((6, 6, 12), np.uint8)
    lab = np.zeros(ph.shape, np.int64)
    lab[1:3, 1:3, 1:3] = 3
    lab[2:5, 2:5, 6:10] = 7
    ph[lab > 0] = NMC
    t = table_of(lab, ph)
    assert t["label"].tolist() == [3, 7]
    assert t["n_voxels"].tolist() == [8, 36]


def test_empty_labels_give_empty_table():
    ph = np.zeros((4, 4, 4), np.uint8)
    ph[1, 1, 1] = NMC
    t = table_of(np.zeros(ph.shape, np.int32), ph)
    assert len(t) == 0 and tuple(t.columns) == COLUMNS


# --------------------------------------------------------------------------- exact face areas


def test_single_voxel_anisotropic():
    dz, dy, dx = 2.0, 1.0, 0.5
    ph = np.zeros((3, 3, 3), np.uint8)
    ph[1, 1, 1] = NMC
    lab = (ph == NMC).astype(np.int32)
    r = table_of(lab, ph, (dz, dy, dx)).iloc[0]
    assert r["n_voxels"] == 1
    assert r["volume_um3"] == dz * dy * dx == r["solid_volume_um3"]
    assert r["area_pore_um2"] == 2 * (dy * dx + dz * dx + dz * dy)  # 7.0
    assert r["area_cbd_um2"] == r["area_particle_um2"] == r["area_edge_um2"] == 0
    assert not r["touches_edge"]
    assert r["frac_pore"] == 1.0 and r["detachment"] == 1.0 and r["detachment_note"] == ""
    assert (r["centroid_z_um"], r["centroid_y_um"], r["centroid_x_um"]) == (dz, dy, dx)
    assert (r["extent_z_um"], r["extent_y_um"], r["extent_x_um"]) == (dz, dy, dx)
    assert r["crack_fraction"] == 0.0
    assert r["equiv_diameter_um"] == pytest.approx((6 * dz * dy * dx / np.pi) ** (1 / 3), rel=1e-12)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.0, 1.0, 0.5), (0.3, 0.7, 1.9)])
def test_box_face_areas_are_exact(spacing):
    dz, dy, dx = spacing
    nz, ny, nx = 2, 3, 4
    ph = np.zeros((6, 7, 8), np.uint8)
    ph[2 : 2 + nz, 2 : 2 + ny, 2 : 2 + nx] = NMC
    lab = (ph == NMC).astype(np.int32)
    r = table_of(lab, ph, spacing).iloc[0]
    expected = 2 * (dy * dx * ny * nx + dz * dx * nz * nx + dz * dy * nz * ny)
    assert r["area_pore_um2"] == pytest.approx(expected, rel=1e-12)
    assert r["volume_um3"] == pytest.approx(nz * ny * nx * dz * dy * dx, rel=1e-12)
    assert r["centroid_z_um"] == pytest.approx(2.5 * dz)
    assert r["centroid_y_um"] == pytest.approx(3.0 * dy)
    assert r["centroid_x_um"] == pytest.approx(3.5 * dx)
    assert (r["extent_z_um"], r["extent_y_um"], r["extent_x_um"]) == pytest.approx((nz * dz, ny * dy, nx * dx))
    assert not r["touches_edge"] and r["area_edge_um2"] == 0


def test_bounding_box_extents_of_several_shapes():
    """Extents = (max - min + 1) index along each axis x spacing, per label, shapes that are not boxes."""
    sp = (0.5, 1.0, 2.0)
    lab = np.zeros((12, 13, 14), np.int32)
    lab[ball(lab.shape, (4, 4, 4), 3)] = 1
    lab[8:11, 2:3, 9:13] = 2          # a plate
    lab[1, 9:12, 9] = 3               # a rod along y
    lab[2:4, 9, 9:12] = 3             # ... with an arm along x (an L)
    ph = phases_of(lab > 0)
    t = table_of(lab, ph, sp).set_index("label")
    for L in (1, 2, 3):
        idx = np.nonzero(lab == L)
        want = [(i.max() - i.min() + 1) * s for i, s in zip(idx, sp)]
        got = t.loc[L, ["extent_z_um", "extent_y_um", "extent_x_um"]].to_numpy(float)
        assert got == pytest.approx(want)


def test_box_touching_volume_edge():
    dz, dy, dx = 2.0, 1.0, 0.5
    nz, ny, nx = 2, 3, 4
    ph = np.zeros((6, 7, 8), np.uint8)
    # on the z = 0 face and the x = last face
    ph[0:nz, 2 : 2 + ny, 8 - nx :] = NMC
    lab = (ph == NMC).astype(np.int32)
    r = table_of(lab, ph, (dz, dy, dx)).iloc[0]
    edge = ny * nx * dy * dx + nz * ny * dz * dy
    total = 2 * (dy * dx * ny * nx + dz * dx * nz * nx + dz * dy * nz * ny)
    assert r["touches_edge"]
    assert r["area_edge_um2"] == pytest.approx(edge, rel=1e-12)
    assert r["area_pore_um2"] == pytest.approx(total - edge, rel=1e-12)
    assert r["frac_edge"] == pytest.approx(edge / total, rel=1e-12)
    # the edge is not part of the open interface
    assert r["detachment"] == 1.0


def test_face_categories():
    """One box, each side facing something else: pore, CBD, another particle, unlabelled NMC, edge."""
    ph = np.zeros((5, 6, 9), np.uint8)
    lab = np.zeros(ph.shape, np.int32)
    ph[1:4, 1:4, 3:6] = NMC  # 3x3x3 box, label 1
    lab[1:4, 1:4, 3:6] = 1
    ph[1:4, 4, 3:6] = CBD  # +y side: 9 faces to CBD
    ph[1:4, 1:4, 2] = NMC  # -x side: other particle (label 2)
    lab[1:4, 1:4, 2] = 2
    ph[1:4, 1:4, 6] = NMC  # +x side: unlabelled NMC counts as particle
    ph[0, 1:4, 3:6] = NMC  # -z side: unlabelled NMC touching the edge, also particle
    sp = (1.0, 2.0, 3.0)  # faces: z-normal 6, y-normal 3, x-normal 2 µm²
    t = table_of(lab, ph, sp).set_index("label")
    r = t.loc[1]
    assert r["area_cbd_um2"] == 9 * 3.0
    assert r["area_particle_um2"] == 9 * 2.0 + 9 * 2.0 + 9 * 6.0
    assert r["area_pore_um2"] == 9 * 6.0 + 9 * 3.0  # +z and -y sides
    assert r["area_edge_um2"] == 0
    assert r["detachment"] == pytest.approx(81 / (81 + 27), rel=1e-12)
    assert r["frac_cbd"] + r["frac_pore"] + r["frac_particle"] + r["frac_edge"] == pytest.approx(1.0)


def test_anisotropic_ball_volume_and_axis_areas():
    shape = (20, 20, 20)
    mask = ball(shape, (10, 10, 10), 6)
    ph, lab = phases_of(mask), mask.astype(np.int32)
    iso = table_of(lab, ph, (1.0, 1.0, 1.0)).iloc[0]
    ani = table_of(lab, ph, (2.0, 1.0, 0.5)).iloc[0]
    n = int(mask.sum())
    # 2 * 1 * 0.5 = 1 µm³ per voxel, as for unit voxels
    assert iso["volume_um3"] == ani["volume_um3"] == n * 1.0
    assert ani["solid_volume_um3"] == n * 1.0
    assert ani["equiv_diameter_um"] == iso["equiv_diameter_um"]
    assert ani["centroid_z_um"] == pytest.approx(2 * iso["centroid_z_um"])
    assert ani["centroid_x_um"] == pytest.approx(0.5 * iso["centroid_x_um"])
    fz, fy, fx = face_counts(mask)
    assert iso["area_pore_um2"] == fz + fy + fx
    assert ani["area_pore_um2"] == pytest.approx(fz * 1.0 * 0.5 + fy * 2.0 * 0.5 + fx * 2.0 * 1.0, rel=1e-12)


# --------------------------------------------------------------------------- CBD coverage / detachment


def test_half_coated_sphere():
    shape = (40, 40, 40)
    c = (20, 20, 20)
    mask = ball(shape, c, 8)
    ph = phases_of(mask)
    zz = np.indices(shape)[0]
    ph[shell(mask, 2) & (zz < c[0])] = CBD
    r = table_of(mask.astype(np.int32), ph).iloc[0]
    assert r["frac_cbd"] == pytest.approx(0.5, abs=0.05)
    assert r["detachment"] == pytest.approx(0.5, abs=0.05)
    assert r["frac_cbd"] + r["frac_pore"] == pytest.approx(1.0)
    assert r["detachment"] == pytest.approx(r["frac_pore"], rel=1e-12)


def test_half_coated_symmetric_sphere_is_exactly_half():
    """Centre between two voxel rows: the lower half's faces are exactly half the faces."""
    shape = (40, 40, 40)
    c = (19.5, 20, 20)
    mask = ball(shape, c, 8)
    ph = phases_of(mask)
    ph[shell(mask, 2) & (np.indices(shape)[0] < c[0])] = CBD
    r = table_of(mask.astype(np.int32), ph).iloc[0]
    assert r["frac_cbd"] == 0.5
    assert r["detachment"] == 0.5


def test_fully_coated_and_uncoated_spheres():
    shape = (24, 24, 48)
    a = ball(shape, (12, 12, 11), 7)
    b = ball(shape, (12, 12, 36), 7)
    ph = phases_of(a | b)
    ph[shell(a, 2)] = CBD
    lab = np.zeros(shape, np.int32)
    lab[a], lab[b] = 1, 2
    t = table_of(lab, ph).set_index("label")
    assert t.loc[1, "detachment"] == 0.0 and t.loc[1, "frac_cbd"] == 1.0
    assert t.loc[2, "detachment"] == 1.0 and t.loc[2, "frac_pore"] == 1.0
    assert (t["detachment_note"] == "").all()


def test_particle_enclosed_by_particle_has_nan_detachment():
    ph = np.zeros((9, 9, 9), np.uint8)
    lab = np.zeros(ph.shape, np.int32)
    ph[1:8, 1:8, 1:8] = NMC
    lab[1:8, 1:8, 1:8] = 2
    lab[3:6, 3:6, 3:6] = 1  # inner particle: only particle faces
    t = table_of(lab, ph).set_index("label")
    inner, outer = t.loc[1], t.loc[2]
    assert np.isnan(inner["detachment"])
    assert inner["detachment_note"] != "" and "no interface" in inner["detachment_note"]
    assert inner["frac_particle"] == 1.0 and inner["area_particle_um2"] == 54
    assert outer["detachment"] == 1.0 and outer["detachment_note"] == ""
    assert outer["area_particle_um2"] == 54 and outer["area_pore_um2"] == 6 * 49


def test_particle_filling_the_volume_has_nan_detachment():
    ph = np.full((3, 4, 5), NMC, np.uint8)
    t = table_of(np.ones(ph.shape, np.int32), ph)
    r = t.iloc[0]
    assert np.isnan(r["detachment"]) and r["detachment_note"]
    assert r["frac_edge"] == 1.0 and r["touches_edge"]
    assert r["area_edge_um2"] == 2 * (4 * 5 + 3 * 5 + 3 * 4)


# --------------------------------------------------------------------------- cracks


def cracked_ball():
    shape = (30, 30, 30)
    mask = ball(shape, (15, 15, 15), 10)
    zz, yy, xx = np.indices(shape)
    crack = (zz == 15) & ((yy - 15) ** 2 + (xx - 15) ** 2 <= 36)
    assert crack.sum() > 0 and np.all(mask[crack])
    return mask, crack


def test_internal_crack_fraction_and_areas():
    mask, crack = cracked_ball()
    ph = phases_of(mask)
    ph[crack] = PORE
    sp = (0.5, 0.4, 0.3)
    cracked = table_of((ph == NMC).astype(np.int32), ph, sp).iloc[0]
    whole = table_of(mask.astype(np.int32), phases_of(mask), sp).iloc[0]
    # (1 - solid / filled in core: equal to crack / filled up to rounding)
    assert cracked["crack_fraction"] == pytest.approx(crack.sum() / mask.sum(), rel=1e-12, abs=0)
    assert cracked["n_voxels"] == mask.sum() - crack.sum()
    assert cracked["solid_volume_um3"] == pytest.approx((mask.sum() - crack.sum()) * 0.5 * 0.4 * 0.3, rel=1e-12)
    # filled particle: same volume, same faces, same surface
    for col in ("volume_um3", "area_pore_um2", "area_cbd_um2", "area_particle_um2", "area_edge_um2",
                "surface_area_um2", "sphericity", "detachment", "centroid_z_um"):
        assert cracked[col] == pytest.approx(whole[col], rel=1e-12), col
    assert whole["crack_fraction"] == 0.0


def test_crack_cut_by_the_volume_edge_is_a_crack():
    """A ball cut by the x = 0 face, its crack cut too: enclosed within the cut face, so still a crack."""
    shape = (30, 30, 20)
    mask = ball(shape, (15, 15, 2), 10)
    zz, yy, xx = np.indices(shape)
    crack = (np.abs(zz - 15) < 2) & ((yy - 15) ** 2 + (xx - 2) ** 2 <= 64)
    assert np.all(mask[crack]) and crack[:, :, 0].any()
    ph = phases_of(mask)
    ph[crack] = PORE
    cracked = table_of((ph == NMC).astype(np.int32), ph).iloc[0]
    whole = table_of(mask.astype(np.int32), phases_of(mask)).iloc[0]
    assert cracked["crack_fraction"] == pytest.approx(crack.sum() / mask.sum(), rel=1e-12, abs=0)
    for col in ("volume_um3", "area_pore_um2", "area_edge_um2", "surface_area_um2"):
        assert cracked[col] == pytest.approx(whole[col], rel=1e-12), col
    assert whole["touches_edge"] and whole["area_edge_um2"] == (mask[:, :, 0]).sum()


def test_crack_filled_with_cbd_is_still_a_crack():
    mask, crack = cracked_ball()
    ph = phases_of(mask)
    ph[crack] = CBD
    r = table_of((ph == NMC).astype(np.int32), ph).iloc[0]
    assert r["crack_fraction"] == pytest.approx(crack.sum() / mask.sum(), rel=1e-12, abs=0)
    assert r["area_cbd_um2"] == 0 and r["detachment"] == 1.0


def test_fill_cracks_rules():
    lab = np.zeros((7, 7, 12), np.int32)
    lab[1:6, 1:6, 1:6] = 1
    lab[3, 3, 3] = 0  # enclosed cavity -> crack of 1
    lab[1:6, 1:6, 6:11] = 2
    lab[3, 3, 6] = 0  # cavity bordering label 1 (x=5) and label 2 (x=7): nobody's crack
    lab[0:3, 3, 8] = 0  # channel of 2 reaching the volume edge -> not a crack
    filled = fill_cracks(lab)
    assert filled.dtype == np.int32
    assert filled[3, 3, 3] == 1
    assert filled[3, 3, 6] == 0  # borders label 1 (x=5) and label 2 (x=7)
    assert np.all(filled[0:3, 3, 8] == 0)
    np.testing.assert_array_equal(filled[lab > 0], lab[lab > 0])


# --------------------------------------------------------------------------- marching-cubes surface


def mc_reference(mask, spacing):
    verts, faces, _, _ = marching_cubes(np.pad(mask, 1).astype(np.float64), 0.5, spacing=spacing)
    return mesh_surface_area(verts.astype(np.float64), faces)  # float32 verts with unit spacing


MC_FLOAT32_BUG = (
    "core.metrics._mc_lut builds the 256-cell area table from float32 vertices when spacing == (1, 1, 1) "
    "(skimage only multiplies by spacing, in float64, when it is not all ones), so each cell area is "
    "rounded to float32 (~2e-8 relative error) and surface_areas misses the float64 marching-cubes "
    "area by ~1e-8 relative"
)


@pytest.mark.parametrize(
    "spacing",
    [
        (2.0, 1.0, 0.5),
        (0.4, 0.4, 0.4),
        (1.0, 1.0, 1.0),
    ],
)
def test_surface_areas_match_marching_cubes(spacing):
    rng = np.random.default_rng(0)
    lab = np.zeros((12, 13, 14), np.int32)
    lab[2:6, 3:9, 1:5] = 1
    lab[5:11, 6:12, 6:13] = 3
    lab[0, 0, 0] = 2
    lab[7:9, 1:3, 1:3] = 2
    lab[rng.random(lab.shape) < 0.05] = 4
    lab[12 - 3 :, 10:, 10:] = 5  # touches three volume faces: closed by the padding
    sa = surface_areas(lab, spacing)
    assert sa.shape == (6,) and sa[0] == 0
    for L in range(1, 6):
        assert sa[L] == pytest.approx(mc_reference(lab == L, spacing), rel=1e-9), L


def test_surface_area_of_ball_is_close_to_sphere():
    r = 12
    mask = ball((32, 32, 32), (16, 16, 16), r)
    exact = 4 * np.pi * r**2
    sa = surface_areas(mask.astype(np.int32))[1]
    # rel 1e-6 only: see MC_FLOAT32_BUG (exact at other spacings, tested above)
    assert sa == pytest.approx(mc_reference(mask, (1.0, 1.0, 1.0)), rel=1e-6)
    assert abs(sa / exact - 1) < 0.10
    row = table_of(mask.astype(np.int32), phases_of(mask)).iloc[0]
    assert row["surface_area_um2"] == sa
    assert row["area_pore_um2"] / exact > 1.30  # voxel faces overestimate
    assert 0.85 < row["sphericity"] <= 1.0


def test_sphericity_of_physical_sphere_with_anisotropic_voxels():
    # semi-axes 6, 12, 12 voxels at spacing (2, 1, 1) µm: a sphere of radius 12 µm
    zz, yy, xx = np.indices((18, 30, 30))
    mask = ((zz - 9) * 2.0) ** 2 + (yy - 15.0) ** 2 + (xx - 15.0) ** 2 <= 144
    row = table_of(mask.astype(np.int32), phases_of(mask), (2.0, 1.0, 1.0)).iloc[0]
    assert 0.85 < row["sphericity"] <= 1.0
    assert abs(row["surface_area_um2"] / (4 * np.pi * 144) - 1) < 0.15  # coarse along z
    assert row["surface_area_um2"] == pytest.approx(mc_reference(mask, (2.0, 1.0, 1.0)), rel=1e-9)


# --------------------------------------------------------------------------- depth / separator side


def test_depth_frac_start_and_end():
    shape = (40, 16, 16)
    ph = np.zeros(shape, np.uint8)
    ph[1:4, 5:8, 5:8] = NMC  # centroid z = 2
    ph[30:35, 5:8, 5:8] = NMC  # centroid z = 32
    lab = np.zeros(shape, np.int32)
    lab[1:4], lab[30:35] = 1, 2
    lab[ph != NMC] = 0
    start = table_of(lab, ph, separator_side="start").set_index("label")
    end = table_of(lab, ph, separator_side="end").set_index("label")
    assert start.loc[1, "depth_frac"] == pytest.approx(2 / 39)
    assert start.loc[2, "depth_frac"] == pytest.approx(32 / 39)
    assert end.loc[1, "depth_frac"] == pytest.approx(1 - 2 / 39)
    assert end.loc[2, "depth_frac"] == pytest.approx(1 - 32 / 39)


def test_depth_frac_along_other_axis():
    ph = np.zeros((8, 8, 21), np.uint8)
    ph[2:5, 2:5, 18:21] = NMC  # centroid x = 19
    r = table_of((ph == NMC).astype(np.int32), ph, axis=2, separator_side="start").iloc[0]
    assert r["depth_frac"] == pytest.approx(19 / 20)


def _electrode_with_margins(shape=(60, 24, 24), top=10, bottom=6, axis=0):
    """Phases of an electrode (NMC slabs between pore, a particle per slab) with a pore margin of ``top`` slices
    before it and ``bottom`` after it along ``axis``; and its labels."""
    ph = np.zeros(shape, np.uint8)
    lab = np.zeros(shape, np.int32)
    n = 0
    for z in range(top, shape[0] - bottom, 4):
        n += 1
        ph[z:z + 3, 2:22, 2:22] = NMC
        ph[z + 3:z + 4, 2:22, 2:22] = CBD
        lab[z:z + 3, 2:22, 2:22] = n
    ph[shape[0] - bottom:] = PORE
    lab[shape[0] - bottom:] = 0
    order = {0: (0, 1, 2), 1: (1, 0, 2), 2: (1, 2, 0)}[axis]
    return np.ascontiguousarray(np.transpose(ph, order)), np.ascontiguousarray(np.transpose(lab, order))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_electrode_extent_leaves_the_margins_out_of_the_depth(axis):
    """A pore margin before and after the electrode is not depth: with depth_from="electrode" depth_frac runs from
    the electrode's first slice to its last (its particles' centroids at 0 and 1 there), along any axis; with the
    default "volume" over the whole volume as before; the profile is the per-slice NMC share."""
    ph, lab = _electrode_with_margins(axis=axis)
    profile = metrics.nmc_profile(ph, axis)
    want = (ph == NMC).mean(axis=tuple(a for a in range(3) if a != axis))
    np.testing.assert_array_equal(profile, want)
    first, last = metrics.electrode_extent(profile)
    assert (first, last) == (10, 52)  # the NMC's first and last slice (the last slab's CBD slice is under half)
    el = table_of(lab, ph, axis=axis, separator_side="start", depth_from="electrode").set_index("label")
    vol = table_of(lab, ph, axis=axis, separator_side="start").set_index("label")
    assert el.attrs["depth_extent"] == [10, 52] and "depth_extent" not in vol.attrs
    assert el["depth_frac"].iloc[0] == pytest.approx((11 - 10) / 42)
    assert el["depth_frac"].iloc[-1] == pytest.approx((51 - 10) / 42)
    assert vol["depth_frac"].iloc[0] == pytest.approx(11 / 59)
    end = table_of(lab, ph, axis=axis, separator_side="end", depth_from="electrode").set_index("label")
    np.testing.assert_allclose(end["depth_frac"], 1 - el["depth_frac"])


def test_electrode_extent_keeps_the_volume_of_an_interior_crop_and_odd_profiles():
    rng = np.random.default_rng(0)
    crop = 0.5 + 0.1 * rng.standard_normal(80)  # no margin: NMC everywhere, slice to slice noise
    assert metrics.electrode_extent(crop) == (0, 79)
    assert metrics.electrode_extent(np.zeros(12)) == (0, 11)  # no NMC at all
    band = np.zeros(100)
    band[40:50] = 0.6  # NMC in a tenth of the slices: not trusted as an electrode
    assert metrics.electrode_extent(band) == (0, 99)
    margin = np.r_[np.zeros(10), np.full(30, 0.5), np.full(5, 0.2)]  # a last slab under half the plateau
    assert metrics.electrode_extent(margin) == (10, 39)
    with pytest.raises(ValueError, match="empty"):
        metrics.electrode_extent([])
    with pytest.raises(ValueError, match="depth_from"):
        particle_table(np.zeros((4, 4, 4), np.int32), np.zeros((4, 4, 4), np.uint8), depth_from="sample")


def test_detect_separator_side():
    ph = np.full((30, 10, 10), NMC, np.uint8)
    ph[::2, ::2, ::2] = PORE
    ph[:5] = PORE  # empty top slab: the free surface at the start
    side, contrast = detect_separator_side(ph)
    assert side == "start" and contrast > 0.5
    side, contrast = detect_separator_side(ph[::-1].copy())
    assert side == "end" and contrast > 0.5
    side, _ = detect_separator_side(np.ascontiguousarray(np.moveaxis(ph, 0, 2)), axis=2)
    assert side == "start"


def test_detect_separator_side_equals_the_whole_profile():
    """Only the two end slabs are read: same side and the same contrast, to the bit, as the whole profile's."""
    rng = np.random.default_rng(4)
    for _ in range(40):
        shape = tuple(int(v) for v in rng.integers(1, 30, 3))
        ph = rng.choice(np.array([PORE, CBD, NMC], np.uint8), shape, p=rng.dirichlet((1, 1, 1)))
        for axis in range(3):
            for frac in (0.1, 0.35, 0.7):
                k = max(1, int(round(shape[axis] * frac)))
                profile = (ph == NMC).mean(axis=tuple(a for a in range(3) if a != axis))
                first, last = float(profile[:k].mean()), float(profile[-k:].mean())
                want = ("start" if first <= last else "end"), abs(last - first)
                assert detect_separator_side(ph, axis, slab_frac=frac) == want
                # the pipeline's and the chunked engine's reading, from the whole profile
                assert metrics.side_of_profile(metrics.nmc_profile(ph, axis), slab_frac=frac) == want


def test_auto_separator_side_in_table():
    ph = np.zeros((30, 10, 10), np.uint8)
    ph[10:29, 2:8, 2:8] = NMC
    lab = (ph == NMC).astype(np.int32)
    t = particle_table(lab, ph)  # auto: empty slab at the start
    assert t.attrs["separator_side"] == "start"
    assert t["depth_frac"].iloc[0] == pytest.approx(19 / 29)
    sym = np.zeros((30, 10, 10), np.uint8)
    sym[10:20, 2:8, 2:8] = NMC
    with pytest.warns(UserWarning, match="ambiguous"):
        t = particle_table((sym == NMC).astype(np.int32), sym)
    assert t.attrs["separator_side"] == "start"


REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
CALENDERED = REAL / "nmc_calendered_3phase" / "nmc-1-cal_generatedCBD_bridge.tif"


def test_side_noise_ignores_a_trend_and_one_step():
    ramp = np.linspace(0.2, 0.6, 100)  # a steady trend: neighbouring slabs differ by the same amount
    assert metrics.side_noise(ramp) == pytest.approx(0.0, abs=1e-12)
    step = np.r_[np.zeros(35), np.full(65, 0.5)]  # an electrode face inside the volume
    assert metrics.side_noise(step) == 0.0
    assert metrics.side_warning(step, 0) is None
    rng = np.random.default_rng(1)
    flat = 0.5 + rng.normal(0, 0.03, 100)  # no gradient: the slabs' shares scatter
    assert metrics.side_noise(flat) > 0.005
    assert metrics.side_noise(np.ones(4)) == 0.0  # under three inner slabs


@pytest.mark.parametrize("name", ["pristine", "cycled-5C"])
def test_the_demo_electrodes_separator_side_is_clear(name):
    from core.synth import demo_electrode

    for seed in (0, 1):
        profile = metrics.nmc_profile(demo_electrode(name, rng=seed).phases, 0)
        side, contrast = metrics.side_of_profile(profile)
        assert side == "start" and metrics.side_warning(profile, 0) is None
        assert contrast > 2 * metrics.SIDE_NOISE_FACTOR * metrics.side_noise(profile)  # with a margin


def test_a_crop_without_a_separator_is_said_ambiguous():
    """QA walk 6: two crops of the real calendered electrode (no separator in view) were given opposite sides
    without a word: their ends differed by 0.033 and 0.076, above the fixed 0.02, but no more than slabs inside
    differ.  A crop whose ends differ by 0.084 is now said ambiguous; so is a single slice's profile never."""
    tifffile = pytest.importorskip("tifffile")
    if not CALENDERED.exists():
        pytest.skip(f"real data not present: {CALENDERED}")
    crop = tifffile.imread(CALENDERED)[100:220, 150:270, 150:270]
    ph = np.select([crop == 1, crop == 2], [NMC, CBD], PORE).astype(np.uint8)
    profile = metrics.nmc_profile(ph, 0)
    assert metrics.side_of_profile(profile)[1] > 0.06  # above the fixed bound: the old rule kept quiet
    message = metrics.side_warning(profile, 0)
    assert message is not None and "ambiguous" in message and "Set the separator side" in message
    # the bound is said as compared: "less than 3 x the slab-to-slab change", not "no more than (±...)"
    noise = metrics.side_noise(profile)
    assert f"less than {3 * noise:.3f}, 3 times the {noise:.3f} it typically changes by" in message
    with pytest.warns(UserWarning, match="separator side along axis z is ambiguous"):
        particle_table((ph == NMC).astype(np.int32), ph)
    assert metrics.side_warning(profile[:1], 0) is None


# --------------------------------------------------------------------------- inputs and validation


def test_inputs_not_modified_and_read_only_ok():
    mask, crack = cracked_ball()
    ph = phases_of(mask)
    ph[crack] = PORE
    lab = (ph == NMC).astype(np.int32)
    ph_copy, lab_copy = ph.copy(), lab.copy()
    t1 = particle_table(lab, ph, (1.0, 0.5, 0.5), separator_side="start")
    np.testing.assert_array_equal(ph, ph_copy)
    np.testing.assert_array_equal(lab, lab_copy)
    ph.flags.writeable = False
    lab.flags.writeable = False
    t2 = particle_table(lab, ph, (1.0, 0.5, 0.5), separator_side="start")
    pd.testing.assert_frame_equal(t1, t2)
    # other dtypes give the same answer
    t3 = particle_table(lab.astype(np.uint16), ph.astype(np.int64), (1.0, 0.5, 0.5), separator_side="start")
    pd.testing.assert_frame_equal(t1, t3)
    f = fill_cracks(lab)
    assert f[15, 15, 15] == 1


def _ok():
    ph = np.zeros((4, 4, 4), np.uint8)
    ph[1:3, 1:3, 1:3] = NMC
    return (ph == NMC).astype(np.int32), ph


@pytest.mark.parametrize(
    "mutate, exc, match",
    [
        (lambda l, p: (l[0], p), ValueError, r"labels must be 3D \(z, y, x\), got shape \(4, 4\)"),
        (lambda l, p: (l, p[None]), ValueError, r"phases must be 3D"),
        (lambda l, p: (l[:3], p), ValueError, r"labels shape \(3, 4, 4\) does not match phases shape \(4, 4, 4\)"),
        (lambda l, p: (l, np.where(p == 0, 3, p).astype(np.uint8)), ValueError, r"only the codes 0 = pore.*found \[3\]"),
        (lambda l, p: (l - 1, p), ValueError, r"labels must be >= 0"),
        (lambda l, p: (l.astype(float), p), TypeError, r"labels must be an integer array"),
        (lambda l, p: (l, p.astype(np.float32)), TypeError, r"phases must hold integer phase codes"),
        (lambda l, p: (l.tolist(), p), TypeError, r"labels must be a numpy array"),
        (lambda l, p: (l, np.zeros((0, 4, 4), np.uint8)), ValueError, r"phases is empty"),
    ],
)
def test_particle_table_rejects_bad_arrays(mutate, exc, match):
    lab, ph = mutate(*_ok())
    with pytest.raises(exc, match=match):
        particle_table(lab, ph, separator_side="start")


@pytest.mark.parametrize(
    "spacing, match",
    [
        (0, r"finite and > 0"),
        ((1.0, -1.0, 1.0), r"finite and > 0"),
        ((1.0, 1.0), r"spacing needs 3 values"),
        ((1.0, float("nan"), 1.0), r"finite and > 0"),
        ((1.0, float("inf"), 1.0), r"finite and > 0"),
    ],
)
def test_particle_table_rejects_bad_spacing(spacing, match):
    lab, ph = _ok()
    with pytest.raises(ValueError, match=match):
        particle_table(lab, ph, spacing, separator_side="start")
    with pytest.raises(ValueError, match=match):
        surface_areas(lab, spacing)


def test_particle_table_rejects_bad_axis_and_side():
    lab, ph = _ok()
    with pytest.raises(ValueError, match=r"axis must be one of \[0, 1, 2\], got 3"):
        particle_table(lab, ph, axis=3, separator_side="start")
    with pytest.raises(ValueError, match=r"separator_side must be one of .*got 'top'"):
        particle_table(lab, ph, separator_side="top")
    with pytest.raises(ValueError, match=r"axis must be one of"):
        detect_separator_side(ph, axis=-1)


def test_module_exports():
    assert metrics.COLUMNS[0] == "label" and len(set(metrics.COLUMNS)) == len(metrics.COLUMNS)


def test_tiny_particles_have_no_sphericity():
    labels = np.zeros((12, 12, 12), np.int32)
    labels[2, 2, 2] = 1  # one voxel: its marching-cubes shape is meaningless
    labels[5:9, 5:9, 5:9] = 2  # 64 voxels: measured
    phases = np.where(labels > 0, NMC, PORE).astype(np.uint8)
    t = particle_table(labels, phases, 1.0, separator_side="start").set_index("label")
    assert np.isnan(t.loc[1, "sphericity"])
    assert 0.5 < t.loc[2, "sphericity"] <= 1.0
    assert metrics.MIN_VOXELS_FOR_SHAPE == 27
    # the README's column table says so, with the same number (QA walk 13: only this module's docstring did)
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert f"empty for a particle of fewer than {metrics.MIN_VOXELS_FOR_SHAPE} voxels" in readme


def test_cube_root_is_correctly_rounded_so_tables_replay_on_any_cpu():
    import decimal

    from core.metrics import cbrt_rounded

    rng = np.random.default_rng(3)
    x = np.concatenate([[0.0, 1.0, 27.0, 6 * 6.784000000000002 / np.pi], rng.uniform(0, 1e4, 3000),
                        rng.uniform(0, 1e-3, 500), rng.uniform(1e6, 1e9, 500)])
    decimal.getcontext().prec = 60
    exact = [float(decimal.Decimal(float(v)) ** (decimal.Decimal(1) / 3)) if v > 0 else 0.0 for v in x]
    got = cbrt_rounded(x)
    assert got.dtype == np.float64 and [float(g) for g in got] == exact
    assert got[3] == 2.3487082447881824  # the value stored by the recipes of dc2bcee (tests/core/data)


def test_given_outside_reach_gives_the_same_table():
    """The pipeline passes the separation's outside_reach: same table as computing it here; checked shape."""
    from core import _kernels as K

    mask, crack = cracked_ball()
    ph = phases_of(mask)
    ph[crack] = PORE
    labels = (ph == NMC).astype(np.uint16)
    labels[:, :, 20:] *= 2  # two particles, one with the crack
    ref = table_of(labels, ph, (0.5, 0.4, 0.3))
    own = labels.copy()
    got = metrics._particle_table(own, ph, (0.5, 0.4, 0.3), separator_side="start", owned=True,
                                  outside=K.outside_reach(labels))
    pd.testing.assert_frame_equal(got, ref)
    np.testing.assert_array_equal(own, labels)  # handed back solid-only
    with pytest.raises(ValueError, match=r"outside shape \(30, 30, 29\) does not match labels shape"):
        metrics._particle_table(labels, ph, owned=False, outside=np.zeros((30, 30, 29), bool))
    # or the enclosed voxels found from the phases and the packed outside_reach (while the flood ran)
    cracks = K.enclosed_of_phases(ph, np.packbits(K.outside_reach(ph == NMC)), NMC)
    assert cracks[0].size == crack.sum() > 0
    own = labels.copy()
    got = metrics._particle_table(own, ph, (0.5, 0.4, 0.3), separator_side="start", owned=True, cracks=cracks)
    pd.testing.assert_frame_equal(got, ref)
    np.testing.assert_array_equal(own, labels)


def test_isolated_specks_and_their_reading():
    """Specks: under the minimum volume (as the ball of the equivalent diameter) AND touching no particle; the
    sentence only where they are 5 % of the table or move the median detachment by 0.02."""
    import pandas as pd

    from core.metrics import isolated_specks, specks_reading

    d_min = (6 / np.pi) ** (1 / 3)  # the ball of 1 µm³: 1.2407 µm
    t = pd.DataFrame({"equiv_diameter_um": [5.0, 1.0, 1.0, d_min + 1e-6, 0.5],
                      "frac_particle": [0.0, 0.0, 0.1, 0.0, np.nan],
                      "detachment": [0.6, 0.0, 0.5, 0.7, 0.0]})
    np.testing.assert_array_equal(isolated_specks(t, 1.0), [False, True, False, False, True])
    assert not isolated_specks(t, 0.0).any() and not isolated_specks(t.drop(columns="frac_particle"), 1.0).any()
    text, shift = specks_reading(t, 1.0)
    assert text.startswith("2 of 5 particles are smaller than the minimum particle volume (1 µm³, a ball 1.24 µm")
    assert "0.50 with them and 0.60 without" in text and shift == pytest.approx(0.1)
    flat = specks_reading(t, 1.0, single_slice=True)[0]  # (QA walk 15: "a ball" beside a slice's table)
    assert flat.startswith("2 of 5 particles are smaller than the minimum particle volume (1 µm³; on a single slice "
                           "a particle is weighed as the ball of its area's circle: a disc 1.24 µm across) and touch no other particle")
    assert specks_reading(t, 0.0) is None and specks_reading(t.iloc[:0], 1.0) is None
    many = pd.concat([t.iloc[[0]]] * 40 + [t.iloc[[1]]], ignore_index=True)  # 1 speck in 41, median unmoved
    assert specks_reading(many, 1.0) is None
    assert "check which phase is NMC" not in text  # 2 of 5: not most of the table
    mostly = pd.concat([t.iloc[[0]]] * 2 + [t.iloc[[1]]] * 2, ignore_index=True)  # 2 of 4: most (from half on)
    assert specks_reading(mostly, 1.0)[0].endswith("the phase read as NMC may hold more than the particles (a thin "
                                                   "phase such as the carbon-binder, or noise): check which phase "
                                                   "is NMC.")
