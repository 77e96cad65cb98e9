"""The faster kernels of the separation and measuring path against library references.

Each kernel here replaced a slower one with the same output; the references
are scipy's (connected components, hole filling) on small random volumes
whose answer is not known in advance but is computed independently.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy import ndimage as ndi

from core import _kernels as K


def reference_flood(blocked, seeds):
    """Open voxels 6-connected to a seed: scipy's connected components of the open voxels."""
    lab, _ = ndi.label(blocked == 0)
    keep = np.unique(lab.reshape(-1)[seeds])
    return np.isin(lab, keep[keep > 0])


def _serpentine():
    """A channel winding up and down along z (21 x 3 x 21, blocked elsewhere), and its one entry voxel at one end."""
    blocked = np.ones((21, 3, 21), bool)
    for x in range(1, 20, 2):
        blocked[1:20, 1, x] = False
    for k, x in enumerate(range(2, 19, 2)):
        blocked[19 if k % 2 == 0 else 1, 1, x] = False
    return blocked, np.array([np.ravel_multi_index((1, 1, 1), blocked.shape)], np.int64)


def _random_blocked(rng, *, labels: bool):
    """A small random volume of blocked voxels (bool, or uint16 labels that block too) and seed voxels (repeats)."""
    shape = tuple(int(v) for v in rng.integers(1, 14, 3))
    blocked = rng.random(shape) < rng.uniform(0.2, 0.8)
    if labels:
        blocked = blocked.astype(np.uint16) * rng.integers(1, 9, shape).astype(np.uint16)
    return blocked, rng.integers(0, blocked.size, int(rng.integers(0, 12))).astype(np.int64)


@pytest.mark.parametrize("seed", range(8))
def test_flood_outside_equals_connected_components(seed):
    rng = np.random.default_rng(seed)
    for _ in range(25):
        blocked, seeds = _random_blocked(rng, labels=bool(seed % 2))
        reached = K.flood_outside(blocked, seeds)
        assert reached.dtype == bool and reached.shape == blocked.shape
        np.testing.assert_array_equal(reached, reference_flood(blocked, seeds))


def test_flood_outside_winding_channel():
    # a serpentine channel through a solid block: every voxel of it is reached from one end
    blocked = np.ones((3, 21, 21), bool)
    for y in range(1, 20, 2):
        blocked[1, y, 1:20] = False
    for k, y in enumerate(range(2, 19, 2)):
        blocked[1, y, 19 if k % 2 == 0 else 1] = False
    reached = K.flood_outside(blocked, np.array([np.ravel_multi_index((1, 1, 1), blocked.shape)], np.int64))
    np.testing.assert_array_equal(reached, ~blocked)
    assert reached.sum() == (~blocked).sum() > 100


@pytest.mark.parametrize("seed", range(6))
def test_open_face_equals_not_fill_holes(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        shape = tuple(int(v) for v in rng.integers(1, 20, 2))
        face = rng.random(shape) < rng.uniform(0.2, 0.9)
        np.testing.assert_array_equal(K._open_face(face), ~ndi.binary_fill_holes(face))


def test_outside_reach_on_random_volumes_equals_reference():
    # the reference: open voxels connected to those open in a face after 2D hole filling
    rng = np.random.default_rng(3)
    for _ in range(30):
        shape = tuple(int(v) for v in rng.integers(2, 12, 3))
        blocked = rng.random(shape) < rng.uniform(0.3, 0.8)
        seeds = []
        for axis in range(3):
            for side in (0, shape[axis] - 1):
                open_ = ~ndi.binary_fill_holes(np.take(blocked, side, axis=axis))
                idx = np.zeros(shape, bool)
                sl = [slice(None)] * 3
                sl[axis] = side
                idx[tuple(sl)] = open_
                seeds.append(np.flatnonzero(idx))
        seeds = np.concatenate(seeds).astype(np.int64)
        np.testing.assert_array_equal(K.outside_reach(blocked), reference_flood(blocked, seeds))


@pytest.mark.parametrize("pieces", [1, 2, 3])
def test_reach_by_runs_equals_connected_components(pieces, monkeypatch):
    """The run union-find of outside_reach, its planes joined in 1-3 pieces (threads) and across their seams."""
    monkeypatch.setattr(K, "cores", lambda: pieces)
    monkeypatch.setattr(K, "RUNS_PER_VOXEL_MAX", 1.0)  # every volume by runs, however noisy
    rng = np.random.default_rng(10 + pieces)
    for k in range(40):
        blocked, seeds = _random_blocked(rng, labels=bool(k % 2))
        reached = K._reach_by_runs(blocked, seeds)
        assert reached.dtype == bool and reached.shape == blocked.shape
        np.testing.assert_array_equal(reached, reference_flood(blocked, seeds))
    # a channel winding up and down across the seams many times, entered at one end only
    blocked, start = _serpentine()
    np.testing.assert_array_equal(K._reach_by_runs(blocked, start), ~blocked)


def test_outside_reach_floods_where_runs_are_too_many(monkeypatch):
    """Above RUNS_PER_VOXEL_MAX the run tables are not built (None) and outside_reach floods instead: same set."""
    rng = np.random.default_rng(5)
    blocked = rng.random((9, 10, 11)) < 0.5
    runs = int((~blocked[..., 0]).sum() + (~blocked[..., 1:] & blocked[..., :-1]).sum())
    want = K.outside_reach(blocked)
    monkeypatch.setattr(K, "RUNS_PER_VOXEL_MAX", (runs - 1) / blocked.size)
    assert K._reach_by_runs(blocked, K._face_seeds(blocked)) is None
    np.testing.assert_array_equal(K.outside_reach(blocked), want)
    monkeypatch.setattr(K, "RUNS_PER_VOXEL_MAX", runs / blocked.size)
    np.testing.assert_array_equal(K._reach_by_runs(blocked, K._face_seeds(blocked)), want)


@pytest.mark.parametrize("misleading", [False, True])
def test_slab_distance_exact_whatever_the_slab_order(misleading, monkeypatch):
    """Slabs transformed in the order of a wrong guess of where the maximum is are quantised again: same result."""
    import core.particles as P
    from core._watershed import quantise

    rng = np.random.default_rng(2)
    shape = (48, 20, 20)
    zz, yy, xx = np.indices(shape)
    mask = np.zeros(shape, bool)
    for cz, r in ((8, 4), (24, 9), (40, 6)):  # the thickest ball in the middle
        mask |= (zz - cz) ** 2 + (yy - 10) ** 2 + (xx - 10) ** 2 <= r**2
    mask |= rng.random(shape) < 0.05
    if misleading:  # claims the maximum is at the top, the thinnest part, and no halo is needed
        monkeypatch.setattr(P, "_slice_bounds", lambda f, sp: np.linspace(1.0, 0.0, f.shape[0]))
    monkeypatch.setattr(P, "quantise_cubic_in_place", lambda buf, s: None)  # the slab path, as for non-cubic voxels
    calls = []
    orig = P._slab_edt
    monkeypatch.setattr(P, "_slab_edt", lambda *a: calls.append(a[1:3]) or orig(*a))
    q0, s0 = quantise(P.distance_transform(mask, 0.5))
    q1, s1 = P.quantised_distance(mask, 0.5, slab_voxels=14 * 400, halo=1)
    assert s1 == s0
    np.testing.assert_array_equal(q1, q0)
    ranges = sorted(set(calls))
    assert len(ranges) >= 3  # several slabs
    if misleading:
        assert len(calls) > len(ranges)  # some slab transformed again (halo grown or quantised again)


@pytest.mark.parametrize("seed", range(4))
def test_plateaus_equal_connected_local_maxima(seed):
    """The maxima and their numbering equal scipy's labelling of the local-maximum mask (raster order)."""
    from core._watershed import _is_max, _plateaus

    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 16, 3))
    q = rng.integers(0, int(rng.integers(2, 6)), size=shape).astype(np.uint8)
    is_max = np.array([_is_max(q, z, y, x) for z, y, x in np.ndindex(shape)]).reshape(shape)
    idx, comp, n = _plateaus(q)
    np.testing.assert_array_equal(idx, np.flatnonzero(is_max))
    lab, n_ref = ndi.label(is_max)  # 6-connected, numbered in raster order of the first voxel
    assert n == n_ref
    np.testing.assert_array_equal(comp, lab.reshape(-1)[idx])


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.5, 0.3, 0.2)])
def test_mc_areas_equal_skimage_per_label(spacing):
    """The sliding-window cell walk gives each label scikit-image's marching-cubes area of its padded mask."""
    from skimage.measure import marching_cubes, mesh_surface_area

    from core.metrics import _mc_lut

    rng = np.random.default_rng(4)
    lab = np.zeros((9, 10, 11), np.uint16)
    lab[1:5, 2:8, 1:6] = 1
    lab[5:9, 0:4, 5:11] = 2  # touches the volume edge
    lab[rng.random(lab.shape) < 0.1] = 3  # scattered voxels
    lab[2:4, 3:5, 2:4] = 0  # a cavity in label 1
    areas = K.mc_areas(lab, 3, _mc_lut(spacing))
    for k in (1, 2, 3):
        m = np.pad((lab == k).astype(np.float32), 1)
        verts, faces, _, _ = marching_cubes(m, 0.5, spacing=spacing, method="lewiner")
        assert areas[k] == pytest.approx(mesh_surface_area(verts, faces), rel=1e-6)  # skimage: float32 vertices
    assert areas[0] == 0


@numba.njit
def _face_areas_voxelwise(filled, phases, n_lab, sz, sy, sx, nmc_code, cbd_code):
    """core._kernels.face_areas as it was until session 28: voxel by voxel, every face through step()."""
    nz, ny, nx = filled.shape
    az = sy * sx
    ay = sz * sx
    ax = sz * sy
    areas = np.zeros((n_lab + 1, 5), np.float64)
    counts = np.zeros((n_lab + 1, 2), np.int64)
    sums = np.zeros((n_lab + 1, 3), np.float64)
    lo = np.full((n_lab + 1, 3), max(nz, ny, nx), np.int64)
    hi = np.full((n_lab + 1, 3), -1, np.int64)
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                lab = filled[z, y, x]
                if lab == 0:
                    continue
                own_solid = phases[z, y, x] == nmc_code
                counts[lab, 0] += 1
                if own_solid:
                    counts[lab, 1] += 1
                sums[lab, 0] += z
                sums[lab, 1] += y
                sums[lab, 2] += x
                if z < lo[lab, 0]:
                    lo[lab, 0] = z
                if z > hi[lab, 0]:
                    hi[lab, 0] = z
                if y < lo[lab, 1]:
                    lo[lab, 1] = y
                if y > hi[lab, 1]:
                    hi[lab, 1] = y
                if x < lo[lab, 2]:
                    lo[lab, 2] = x
                if x > hi[lab, 2]:
                    hi[lab, 2] = x
                for d in range(6):
                    a = az if d < 2 else (ay if d < 4 else ax)
                    inside, zz, yy, xx = K.step(z, y, x, d, nz, ny, nx)
                    if not inside:
                        areas[lab, 3] += a
                        continue
                    other = filled[zz, yy, xx]
                    if other == lab:
                        # solid/crack face inside the filled particle
                        if own_solid and phases[zz, yy, xx] != nmc_code:
                            areas[lab, 4] += a
                        continue
                    if other > 0:
                        areas[lab, 2] += a
                        continue
                    p = phases[zz, yy, xx]
                    if p == nmc_code:
                        areas[lab, 2] += a
                    elif p == cbd_code:
                        areas[lab, 1] += a
                    else:
                        areas[lab, 0] += a
    return areas, counts, sums, lo, hi


@numba.njit
def _mc_areas_cellwise(filled, n_lab, lut):
    """core._kernels.mc_areas as it was until session 28: every corner read with bounds tests, all 8 compared."""
    nz, ny, nx = filled.shape
    out = np.zeros(n_lab + 1, np.float64)
    labs = np.zeros(8, filled.dtype)
    zero = filled.dtype.type(0)
    for z in range(-1, nz):
        for y in range(-1, ny):
            # corners at x = -1 (padding): bits 0, 2, 4, 6 of the first cell
            nxt = np.zeros(4, filled.dtype)  # the next x: (dz, dy) = (0,0), (0,1), (1,0), (1,1)
            for x in range(-1, nx):
                # the cell's low-x corners are the previous high-x corners
                labs[0] = nxt[0]
                labs[2] = nxt[1]
                labs[4] = nxt[2]
                labs[6] = nxt[3]
                xx = x + 1
                for c in range(4):
                    zz = z + (c >> 1)
                    yy = y + (c & 1)
                    if zz < 0 or yy < 0 or xx >= nx or zz >= nz or yy >= ny:
                        nxt[c] = zero
                    else:
                        nxt[c] = filled[zz, yy, xx]
                labs[1] = nxt[0]
                labs[3] = nxt[1]
                labs[5] = nxt[2]
                labs[7] = nxt[3]
                first = labs[0]
                uniform = True
                for k in range(1, 8):
                    if labs[k] != first:
                        uniform = False
                        break
                if uniform:
                    continue
                for k in range(8):
                    lab = labs[k]
                    if lab == 0:
                        continue
                    seen = False
                    for j in range(k):
                        if labs[j] == lab:
                            seen = True
                            break
                    if seen:
                        continue
                    code = 0
                    for j in range(8):
                        if labs[j] == lab:
                            code |= 1 << j
                    out[lab] += lut[code]
    return out


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.5, 0.3, 0.7)])
def test_face_and_mc_areas_equal_the_voxelwise_passes_bit_for_bit(seed, spacing):
    """The run-wise face_areas and the row-wise mc_areas give the values of the plain passes they replaced
    (voxel by voxel / cell by cell), bit for bit: labels at the edges, runs, cracks (labelled non-NMC), CBD."""
    from core.codes import CBD, NMC
    from core.metrics import _mc_lut

    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 12)), int(rng.integers(1, 13)), int(rng.integers(1, 14)))
    lab = ndi.zoom(rng.integers(0, 6, (3, 3, 3)), np.array(shape) / 3, order=0, grid_mode=True, mode="nearest")
    lab = lab[: shape[0], : shape[1], : shape[2]].astype(np.uint16)
    lab[rng.random(lab.shape) < 0.08] = rng.integers(0, 6)  # specks
    ph = np.where(lab > 0, NMC, rng.choice([0, CBD], lab.shape)).astype(np.uint8)
    ph[(lab > 0) & (rng.random(lab.shape) < 0.1)] = CBD  # cracks inside particles
    n = int(lab.max())
    for dtype in (np.uint16, np.int32):
        got = K.face_areas(lab.astype(dtype), ph, n, *spacing, NMC, CBD)
        want = _face_areas_voxelwise(lab.astype(dtype), ph, n, *spacing, NMC, CBD)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
        lut = _mc_lut(spacing)
        np.testing.assert_array_equal(K.mc_areas(lab.astype(dtype), n, lut), _mc_areas_cellwise(lab.astype(dtype), n, lut))


@pytest.mark.parametrize("slab", [None, 5, 9])
def test_quantise_in_place_equals_whole_volume_transform(slab):
    """The pipeline lends the mask's memory as the output (slabs read ``buf != 0``): same as quantise(edt)."""
    import core.particles as P
    from core._watershed import quantise

    rng = np.random.default_rng(5)
    shape = (40, 18, 22)
    mask = ndi.gaussian_filter(rng.random(shape), 1.5) > 0.5
    q0, s0 = quantise(P.distance_transform(mask, (0.5, 0.4, 0.3)))
    buf = mask.copy().view(np.uint8)
    step = P._quantise_in_place(buf, (0.5, 0.4, 0.3), (slab or 40) * 18 * 22, 1)
    assert step == s0
    np.testing.assert_array_equal(buf, q0)


def test_flood_refuses_slots_that_collide_with_the_level_codes():
    from core._watershed import UINT16_SLOTS, _flood_slots

    q = np.ones((2, 2, 2), np.uint8)
    args = (np.zeros(1, np.int64),) * 6
    with pytest.raises(ValueError, match=r"max_slots must be in 1..65280 for uint16 labels, got 65281"):
        _flood_slots(q, np.zeros(q.shape, np.uint16), *args, 1, UINT16_SLOTS + 1, np.empty(4, np.int32))


def test_unravel_recip_equals_divmod():
    """Unravelling by float reciprocals equals integer division, at multiples of the row and plane and around them."""
    import numba

    @numba.njit
    def both(idx, ny, nx):
        out = np.empty((idx.size, 6), np.int64)
        for k in range(idx.size):
            out[k, :3] = K.unravel(idx[k], ny, nx)
            out[k, 3:] = K.unravel_recip(idx[k], ny, nx, 1.0 / (ny * nx), 1.0 / nx)
        return out

    rng = np.random.default_rng(0)
    for ny, nx in [(1, 1), (3, 7), (512, 512), (1985, 1324), (1 << 20, 3)]:
        m = np.arange(1, 2000, dtype=np.int64)
        idx = np.concatenate([rng.integers(0, 2**52, 5000), m * nx * ny - 1, m * nx * ny, m * nx - 1, m * nx, m])
        res = both(idx[(idx >= 0) & (idx < 2**52)], ny, nx)
        np.testing.assert_array_equal(res[:, :3], res[:, 3:])
        z, r = np.divmod(idx[(idx >= 0) & (idx < 2**52)], ny * nx)
        np.testing.assert_array_equal(res[:, 0], z)
        np.testing.assert_array_equal(res[:, 1:3], np.stack(np.divmod(r, nx), 1))


@pytest.mark.parametrize("seed", range(3))
def test_assign_cracks_equals_scipy_components(seed):
    """Each enclosed background component bordered by one label only goes to it: scipy's labelling as reference."""
    rng = np.random.default_rng(seed)
    face = ndi.generate_binary_structure(3, 1)
    assigned_any = 0
    for _ in range(15):
        shape = tuple(int(v) for v in rng.integers(3, 14, 3))
        labels = rng.integers(1, 4, shape).astype(np.uint16)
        labels[rng.random(shape) < rng.uniform(0.1, 0.5)] = 0
        reached = K.outside_reach(labels)
        want = labels.copy()
        comp, n = ndi.label((labels == 0) & ~reached, face)
        for k in range(1, n + 1):
            m = comp == k
            owners = np.unique(labels[ndi.binary_dilation(m, face) & ~m])
            owners = owners[owners > 0]
            if owners.size == 1:
                want[m] = owners[0]
        got = labels.copy()
        count = K.assign_cracks(got, reached)
        np.testing.assert_array_equal(got, want)
        assert count == int((got != labels).sum())
        assigned_any += count
    assert assigned_any > 0


@pytest.mark.parametrize("seed", range(3))
def test_cracks_found_from_phases_equal_those_of_the_labels(seed):
    """enclosed_of_phases + assign_enclosed (before the labels exist) fill what assign_cracks fills from labels
    that are nonzero exactly on the solid."""
    rng = np.random.default_rng(20 + seed)
    assigned_any = 0
    for _ in range(15):
        shape = tuple(int(v) for v in rng.integers(3, 14, 3))
        ph = rng.choice(np.array([0, 1, 2], np.uint8), shape, p=(0.2, 0.1, 0.7))
        labels = np.where(ph == 2, rng.integers(1, 4, shape), 0).astype(np.uint16)
        reached = K.outside_reach(ph == 2)
        want = labels.copy()
        n_want = K.assign_cracks(want, reached)
        idx, root = K.enclosed_of_phases(ph, np.packbits(reached), np.uint8(2))
        np.testing.assert_array_equal(idx, np.flatnonzero((ph != 2) & ~reached))
        got = labels.copy()
        assert K.assign_enclosed(got, idx, root) == n_want
        np.testing.assert_array_equal(got, want)
        assigned_any += n_want
    assert assigned_any > 0


@pytest.mark.parametrize("seed", range(4))
def test_flood_in_two_halves_equals_one_flood(seed, monkeypatch):
    """outside_reach floods the two halves along axis 0 in two threads and re-seeds across the seam: same set."""
    monkeypatch.setattr(K, "SPLIT_MIN_SLICES", 2)
    rng = np.random.default_rng(seed)
    for _ in range(25):
        shape = tuple(int(v) for v in rng.integers(2, 14, 3))
        blocked = rng.random(shape) < rng.uniform(0.2, 0.8)
        seeds = rng.integers(0, blocked.size, int(rng.integers(0, 6))).astype(np.int64)
        np.testing.assert_array_equal(K._flood_halves(blocked, seeds), reference_flood(blocked, seeds))
    # a channel winding up and down across the seam (z = 10) many times, entered at one end only
    blocked, start = _serpentine()
    np.testing.assert_array_equal(K._flood_halves(blocked, start), ~blocked)
    assert (~blocked).sum() > 150


def _sum_on_cores(n):
    out = np.zeros(n, np.int64)

    def work(k0, k1):
        out[k0:k1] = np.arange(k0, k1)

    K.run_on_cores(work, n)
    return int(out.sum())


def test_run_on_cores_covers_every_piece_and_works_in_a_forked_child():
    """Every index is worked once, also after a fork (the parent's pool threads do not exist in the child)."""
    import multiprocessing as mp

    assert _sum_on_cores(1001) == sum(range(1001))
    assert _sum_on_cores(1) == 0
    if "fork" in mp.get_all_start_methods():
        with mp.get_context("fork").Pool(1) as pool:
            assert pool.apply_async(_sum_on_cores, (77,)).get(timeout=20) == sum(range(77))


@pytest.mark.parametrize("n_cores", [1, 2])
def test_side_work_gives_the_results_of_plain_calls(n_cores, monkeypatch):
    """SideWork: the calls' results in order, whether started on the pool (2 cores), never started, or one core."""
    monkeypatch.setattr(K, "cores", lambda: n_cores)
    a = np.arange(10_000, dtype=np.int64)
    calls = (lambda: int(a.sum()), lambda: a[::-1].copy(), lambda: None)
    for start in (False, True):
        side = K.SideWork(*calls)
        if start:
            side.start()
            side.start()  # once only
        got = side.results()
        assert got[0] == int(a.sum()) and got[2] is None
        np.testing.assert_array_equal(got[1], a[::-1])
    assert K.SideWork().results() == []


def test_numpy_hugepages_sets_and_restores_numpy_switch():
    """numpy's huge-page advice inside the block, as before after it (nested, and when the block raises)."""
    get = np._core.multiarray._get_madvise_hugepage
    before = get()
    with K.numpy_hugepages(not before):
        assert get() == (not before)
        with K.numpy_hugepages(before):
            assert get() == before
        assert get() == (not before)
    assert get() == before
    with pytest.raises(RuntimeError, match="inside"):
        with K.numpy_hugepages(not before):
            raise RuntimeError("inside")
    assert get() == before
    # blocks of two threads that overlap without nesting (entered a, b; left a, b): numpy's own setting at the end
    a, b = K.numpy_hugepages(not before), K.numpy_hugepages(not before)
    a.__enter__()
    b.__enter__()
    a.__exit__(None, None, None)
    assert get() == (not before)  # b is still open
    b.__exit__(None, None, None)
    assert get() == before



def _always_huge_pages() -> bool:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return "[always]" in f.read()
    except OSError:
        return False


def _faults_of_fresh_array() -> int:
    """Minor page faults of this thread while a 64 MiB array is allocated and filled (then freed)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    a = np.ones(64 << 20, np.uint8)
    faults = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before
    del a
    return faults


@pytest.mark.skipif(K._glibc_malloc() is None, reason="recycled_heap acts on glibc only (elsewhere it does nothing)")
@pytest.mark.skipif(_always_huge_pages(), reason="the kernel backs every array with huge pages: few faults anyway")
def test_recycled_heap_reuses_freed_arrays_until_released():
    """Inside recycled_heap a freed 64 MiB array's pages serve the next one (a few faults, not one per 4 KiB page);
    after release_recycled, and after the block, each array gets fresh pages again."""
    pages = (64 << 20) // 4096
    with K.numpy_hugepages(False):
        with K.recycled_heap():
            _faults_of_fresh_array()
            inside = _faults_of_fresh_array()
            assert K.release_recycled()
            assert not K.release_recycled()  # once
            _faults_of_fresh_array()
            released = _faults_of_fresh_array()
        after = _faults_of_fresh_array()
    assert inside < pages // 20
    assert released > pages // 2 and after > pages // 2


@pytest.mark.skipif(K._glibc_malloc() is None, reason="recycled_heap acts on glibc only (elsewhere it does nothing)")
def test_recycled_heap_blocks_nest_and_overlap():
    """Recycling is on from the first block entered until the last one left (blocks of two threads that overlap
    without nesting: entered a, b; left a, b), and after a block that raised."""
    assert not K.release_recycled()  # outside any block
    a, b = K.recycled_heap(), K.recycled_heap()
    a.__enter__()
    b.__enter__()
    a.__exit__(None, None, None)
    assert K._RECYCLE["on"]  # b is still open
    b.__exit__(None, None, None)
    assert not K._RECYCLE["on"] and K._RECYCLE["open"] == 0
    with pytest.raises(RuntimeError, match="inside"):
        with K.recycled_heap():
            with K.recycled_heap():
                assert K._RECYCLE["on"]
                raise RuntimeError("inside")
    assert not K._RECYCLE["on"] and K._RECYCLE["open"] == 0


def _exact_levels(mask, s):
    """quantise() of the exact distances float32(sqrt(d2) * s), d2 the integer squared distance from scipy."""
    from scipy import ndimage as ndi

    from core._watershed import quantise

    d2 = np.rint(ndi.distance_transform_edt(mask) ** 2)
    return quantise((np.sqrt(d2) * s).astype(np.float32))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("s", [1.0, 0.4])
def test_cubic_distance_levels_are_the_exact_distances_quantised(seed, s):
    """core._edt's levels equal those of the exact distance (scipy's), and edt's up to its float32 rounding."""
    import core.particles as P

    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(20, 40, 3))
    zz, yy, xx = np.indices(shape)
    mask = np.zeros(shape, bool)
    for _ in range(6):
        c, r = rng.uniform(0, shape), rng.uniform(3, 12)
        mask |= (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= r**2
    mask &= rng.random(shape) > 0.02  # pinholes
    q, step = P.quantised_distance(mask, s)
    q0, s0 = _exact_levels(mask, s)
    assert step == s0
    np.testing.assert_array_equal(q, q0)
    q1, s1 = P.quantise(P.distance_transform(mask, s))  # edt, float32 inside
    assert abs(step - s1) <= 1e-6 * s1
    assert np.abs(q.astype(int) - q1).max() <= 1


def test_cubic_distance_hands_far_volumes_to_the_slab_path():
    """255 voxels or more from the background, or no background: the mask is given back and edt does it."""
    import core.particles as P
    from core._edt import quantise_cubic_in_place

    mask = np.ones((300, 3, 4), bool)
    mask[0, 1, 1] = False
    buf = mask.view(np.uint8).copy()
    assert quantise_cubic_in_place(buf, 1.0) is None
    np.testing.assert_array_equal(buf, mask)  # the mask again
    q, step = P.quantised_distance(mask, 1.0)
    q0, s0 = P.quantise(P.distance_transform(mask, 1.0))
    assert step == s0 and step > 299 / 254
    np.testing.assert_array_equal(q, q0)
    near = mask.copy()
    near[250:, 2, 3] = False  # every voxel within 254 voxels: done in place
    buf = near.view(np.uint8).copy()
    assert quantise_cubic_in_place(buf, 1.0) == _exact_levels(near, 1.0)[1]
    everywhere = np.ones((5, 6, 7), bool)
    buf = everywhere.view(np.uint8).copy()
    assert quantise_cubic_in_place(buf, 1.0) is None
    np.testing.assert_array_equal(buf, 1)


@pytest.mark.parametrize("keep", [1, 4, 64, 1 << 17])
@pytest.mark.parametrize("seed", range(3))
def test_cubic_distance_largest_from_kept_voxels_or_by_slices(monkeypatch, seed, keep):
    """The largest distance comes from the exact distances of the voxels of largest bound; where too few were
    kept to be sure of it (the threshold raised again and again) the slices are searched: the same levels."""
    import core._edt as E

    rng = np.random.default_rng(10 + seed)
    shape = (30, 33, 35)
    zz, yy, xx = np.indices(shape)
    mask = np.zeros(shape, bool)
    for _ in range(8):
        c, r = rng.uniform(0, shape), rng.uniform(2, 10)
        mask |= (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= r**2
    searched = []
    orig = E._slices
    monkeypatch.setattr(E, "CANDIDATES", keep)
    monkeypatch.setattr(E, "_slices", lambda buf, sl, *a: searched.append(a[3]) or orig(buf, sl, *a))
    buf = mask.view(np.uint8).copy()
    step = E.quantise_cubic_in_place(buf, 0.5)
    q0, s0 = _exact_levels(mask, 0.5)
    assert step == s0
    np.testing.assert_array_equal(buf, q0)
    slice_search = any(w is False for w in searched)
    if keep == 1 << 17:  # every voxel kept (the threshold never raised): no slice searched
        assert not slice_search
    if keep == 1:  # one voxel a core: the threshold ends above bounds larger than any distance, so the slices
        assert slice_search  # are searched (these volumes' bounds exceed their largest distance)


def test_exact_d2_and_raise_keep():
    from scipy import ndimage as ndi

    import core._edt as E

    rng = np.random.default_rng(5)
    mask = rng.random((12, 14, 16)) > 0.15
    buf = mask.view(np.uint8).copy()
    flat = buf.reshape(12, -1)
    E._z_sweeps(flat, 0, flat.shape[1])
    d2 = np.rint(ndi.distance_transform_edt(mask) ** 2).astype(np.int64)
    bound = np.zeros(12, np.int64)
    cand, cand_b, keep = np.empty(mask.size, np.int64), np.empty(mask.size, np.uint8), np.ones(1, np.int64)
    n = E._slice_bounds(buf, 0, 12, bound, cand, cand_b, keep)
    assert n == mask.sum() and keep[0] == 1  # room for all: every voxel inside kept
    for i, b in zip(cand[:n], cand_b[:n].astype(np.int64)):
        if b == E.FAR:  # no background along any axis: no bound (the slice search handles such volumes)
            continue
        assert b * b >= d2.flat[i]  # a bound
        assert E._exact_d2(buf, i, int(b), -1) == d2.flat[i]  # exact (top -1: no early stop)
        assert E._exact_d2(buf, i, int(b), d2.flat[i]) <= d2.flat[i]  # stops at a value <= top
    b = np.array([1, 1, 2, 3, 3, 3, 5, 9], np.uint8)
    c = np.arange(8, dtype=np.int64)
    m, t = E._raise_keep(c, b, 8, 1)
    # the least threshold above 1 that keeps at most half (4): 4 keeps 5 and 9 (3 would keep 5 voxels)
    assert (m, t) == (2, 4)
    np.testing.assert_array_equal(c[:2], [6, 7])
    np.testing.assert_array_equal(b[:2], [5, 9])


def test_cubic_distance_of_an_empty_mask_and_of_a_thin_volume():
    from core._edt import quantise_cubic_in_place

    buf = np.zeros((4, 5, 6), np.uint8)
    assert quantise_cubic_in_place(buf, 0.5) == 1e-6
    assert not buf.any()
    mask = np.zeros((1, 9, 9), bool)
    mask[0, 2:7, 1:8] = True
    buf = mask.view(np.uint8).copy()
    step = quantise_cubic_in_place(buf, 0.5)
    q0, s0 = _exact_levels(mask, 0.5)
    assert step == s0
    np.testing.assert_array_equal(buf, q0)


def test_cubic_distance_finds_the_largest_distance_past_slices_of_larger_bound():
    # a thin rod along z (z-distances up to 30, 3D distance 1) in 60 slices, a ball (3D distance 9) beside it:
    # the slices are looked at by their largest z-distance, so the rod's come first and must not end the search
    from core._edt import quantise_cubic_in_place

    shape = (64, 30, 30)
    zz, yy, xx = np.indices(shape)
    mask = (zz >= 2) & (zz < 62) & (yy == 3) & (xx == 3)
    mask |= (zz - 32) ** 2 + (yy - 15) ** 2 + (xx - 17) ** 2 <= 9**2
    buf = mask.view(np.uint8).copy()
    step = quantise_cubic_in_place(buf, 1.0)
    q0, s0 = _exact_levels(mask, 1.0)
    assert step == s0 and s0 > 8 / 254
    np.testing.assert_array_equal(buf, q0)


def _geodesic_steps(mask, region):
    """Face steps from ``region`` to every voxel through ``mask`` (scipy dilations; inf where unreachable)."""
    dist = np.full(mask.shape, np.inf)
    dist[region] = 0
    front, step, face = region.copy(), 0, ndi.generate_binary_structure(3, 1)
    while True:
        grown = ndi.binary_dilation(front, face, mask=mask | front)
        new = grown & ~np.isfinite(dist)
        if not new.any():
            return dist
        step += 1
        dist[new] = step
        front = grown


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grow_labels_gives_each_voxel_a_nearest_label(seed):
    """Every reachable mask voxel takes a label at the least geodesic distance (scipy dilations as reference)."""
    rng = np.random.default_rng(seed)
    mask = ndi.binary_opening(rng.random((18, 20, 22)) < 0.75)
    labels = np.zeros(mask.shape, np.int32)
    pts = np.argwhere(mask)[rng.choice(int(mask.sum()), 6, replace=False)]
    for k, p in enumerate(pts, 1):
        labels[tuple(p)] = k
    before = labels.copy()
    n, left = K.grow_labels(mask, labels, report_left=True)
    dist = np.stack([_geodesic_steps(mask, before == k) for k in range(1, 7)])
    nearest = dist.min(axis=0)
    reach = np.isfinite(nearest) & (before == 0)
    assert n == int(reach.sum())
    assert left == int((mask & (before == 0)).sum()) - n
    assert np.array_equal(labels[before > 0], before[before > 0])
    assert (labels[~mask & (before == 0)] == 0).all()
    assert (labels[mask & ~np.isfinite(nearest)] == 0).all()
    got = labels[reach]
    assert (got > 0).all()
    assert np.array_equal(dist[got - 1, *np.nonzero(reach)], nearest[reach])  # a nearest label, not just any


@pytest.mark.parametrize("seed", [0, 1])
def test_grow_labels_split_first_step_equals_one_scan(seed):
    """The first step scanned in ranges on the cores and joined equals one scan of the volume, ties included."""
    rng = np.random.default_rng(seed)
    mask = rng.random((15, 17, 19)) < 0.8
    labels = np.zeros(mask.shape, np.int32)
    labels.flat[rng.choice(labels.size, 60, replace=False)] = rng.integers(1, 9, 60)  # ties between labels
    ref = labels.copy()
    fl, fm = ref.reshape(-1), mask.view(np.uint8).reshape(-1)
    n_open = K._count_open(fl, fm, -1, 0, fl.size)
    queue, first = np.empty(n_open, np.int32), np.empty(n_open, np.int32)
    t = K._first_step(fl, fm, -1, queue, first, 0, 0, fl.size, *mask.shape)
    K._label_first(fl, queue, first, t)
    K._spread(fl, fm, queue, t, *mask.shape)
    K.grow_labels(mask, labels)
    np.testing.assert_array_equal(labels, ref)


def test_grow_labels_line_and_wall():
    mask = np.ones((1, 1, 9), bool)
    labels = np.zeros((1, 1, 9), np.int32)
    labels[0, 0, 0], labels[0, 0, 8] = 1, 2
    assert K.grow_labels(mask, labels) == 7
    assert labels[0, 0].tolist() == [1, 1, 1, 1, 1, 2, 2, 2, 2]  # the tie at the middle to the first queued
    mask[0, 0, 4] = False
    labels[:] = 0
    labels[0, 0, 0] = 3
    assert K.grow_labels(mask, labels) == 3
    assert labels[0, 0].tolist() == [3, 3, 3, 3, 0, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="shape"):
        K.grow_labels(mask[:, :, :4], labels)
    with pytest.raises(TypeError, match="int32 or uint16"):
        K.grow_labels(mask, labels.astype(np.int64))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16])
@pytest.mark.parametrize("shape", [(21, 30, 25), (3, 12, 9), (16, 4, 33)])
def test_interior_references_histograms_equal_eroded_medians(dtype, shape):
    """The one-pass histogram medians of integer volumes equal np.median over scipy's double erosion."""
    from core.phases.threshold import _inner2_histograms, _interior_references

    rng = np.random.default_rng(sum(shape))
    smooth = ndi.gaussian_filter(rng.random(shape), 3.0)
    ph = np.digitize(smooth, np.quantile(smooth, [0.33, 0.67])).astype(np.uint8)  # blobs: phases two steps deep
    info = np.iinfo(dtype)
    v = rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
    face = ndi.generate_binary_structure(3, 1)
    hist, _ = _inner2_histograms(v, ph)
    for code in range(3):
        inner = ndi.binary_erosion(ph == code, face, iterations=2)
        assert hist[code].sum() == inner.sum()
    if min(shape) > 4:
        assert (hist.sum(axis=1) >= 50).all()  # the histograms give the medians, not the fallback
    want = []
    for code in range(3):  # the reference's depth fallback (2, 1, 0 face steps, at least 50 voxels)
        for depth in (2, 1, 0):
            inner = ndi.binary_erosion(ph == code, face, iterations=depth) if depth else ph == code
            if inner.sum() >= 50 or (depth == 0 and inner.any()):
                want.append(float(np.median(v[inner])))
                break
        else:
            want.append(float("nan"))
    np.testing.assert_array_equal(_interior_references(v, ph), want)
    np.testing.assert_array_equal(_interior_references(v.astype(np.float32), ph), want)  # float: no histograms


@pytest.mark.parametrize("seed", [0, 1])
def test_grow_labels_label_rest_equals_ndimage_label_of_the_rest(seed):
    """The components no label reaches get new labels as scipy's ndimage.label of them, offset by the largest."""
    rng = np.random.default_rng(seed)
    mask = ndi.binary_opening(rng.random((16, 18, 20)) < 0.7) | (rng.random((16, 18, 20)) < 0.05)
    labels = np.zeros(mask.shape, np.int32)
    comp, n = ndi.label(mask)
    sizes = np.bincount(comp.ravel())
    for k in np.argsort(sizes[1:])[::-1][:2] + 1:  # a seed in the two largest components only
        labels[tuple(np.argwhere(comp == k)[0])] = 7 + int(k)
    want = labels.copy()
    K.grow_labels(mask, want)
    rest = (want == 0) & mask
    rc, nr = ndi.label(rest)
    assert nr > 1
    want[rest] = rc[rest] + int(want.max())
    small = labels.astype(np.uint16)
    grown, left = K.grow_labels(mask, labels, report_left=True, label_rest=True)
    assert left == int(rest.sum())
    assert np.array_equal(labels, want)
    assert K.grow_labels(mask, small, report_left=True, label_rest=True) == (grown, left)  # uint16: the same
    assert small.dtype == np.uint16 and np.array_equal(small, want)


@pytest.mark.parametrize("code", [0, 1, 2])
def test_grow_labels_by_code_equals_the_mask_of_that_code(code):
    """``code=`` grows where the phase codes equal it, as the mask ``phases == code`` does (the first step, the
    spread and the components labelled on), in int32 and uint16; a code outside uint8 or a mask that is not uint8
    codes is refused."""
    rng = np.random.default_rng(code)
    field = ndi.gaussian_filter(rng.random((14, 17, 19)), 1.0)
    phases = np.digitize(field, np.quantile(field, [1 / 3, 2 / 3])).astype(np.uint8)  # three phases in blobs
    seeds = np.zeros(phases.shape, np.int32)
    pts = rng.integers(0, phases.size, 3)
    seeds.ravel()[pts] = np.arange(1, 4)
    for dtype in (np.int32, np.uint16):
        want, got = seeds.astype(dtype), seeds.astype(dtype)
        a = K.grow_labels(phases == code, want, report_left=True, label_rest=True)
        b = K.grow_labels(phases, got, report_left=True, label_rest=True, code=code)
        assert a == b and a[1] > 0  # some components hold no seed: labelled on
        assert np.array_equal(got, want)
    with pytest.raises(ValueError, match="code"):
        K.grow_labels(phases, seeds.copy(), code=256)
    with pytest.raises(ValueError, match="code"):
        K.grow_labels(phases.astype(np.int32), seeds.copy(), code=2)


def test_grow_labels_uint16_overflow_leaves_the_rest_to_an_int32_call():
    """Where the new components' labels pass 65535, a uint16 call labels those that fit and says so; the same call
    on an int32 copy then numbers the rest on, as one int32 call does."""
    mask = np.zeros((1, 3, 13), bool)
    mask[0, 0, ::2] = True  # 7 single-voxel components, none reached by a label
    mask[0, 2, :3] = True
    labels = np.zeros(mask.shape, np.int32)
    labels[0, 2, 0] = 65531  # grows over its row; the 7 others would need 65532..65538
    want = labels.copy()
    K.grow_labels(mask, want, label_rest=True)
    assert want[0, 0, ::2].tolist() == list(range(65532, 65539)) and want[0, 2, :3].tolist() == [65531] * 3
    small = labels.astype(np.uint16)
    with pytest.raises(OverflowError, match="uint16"):
        K.grow_labels(mask, small, label_rest=True)
    assert small[0, 0, ::2].tolist() == [65532, 65533, 65534, 65535, 0, 0, 0]
    more = small.astype(np.int32)
    K.grow_labels(mask, more, label_rest=True)
    assert np.array_equal(more, want)


@pytest.mark.parametrize("seed", range(3))
def test_h_maxima_equals_scikit_image(seed):
    """The numba reconstruction inside core.particles._h_maxima gives skimage.morphology.h_maxima's maxima: in-face
    distances of random masks (float32 and float64, anisotropic, some rounded to plateaus), several h."""
    import edt
    from skimage.morphology import h_maxima

    from core.particles import _h_maxima

    rng = np.random.default_rng(seed)
    n = 0
    for _ in range(40):
        shape = (int(rng.integers(1, 30)), int(rng.integers(1, 30)))
        m = ndi.gaussian_filter(rng.random(shape), rng.uniform(0.5, 3)) > rng.uniform(0.3, 0.6)
        if m.all() or not m.any():
            continue
        d = edt.edt(m.view(np.uint8), anisotropy=tuple(rng.uniform(0.3, 1, 2)), black_border=False)
        if rng.random() < 0.3:
            d = np.round(d * 2) / 2  # plateaus
        d = d.astype(np.float32 if rng.random() < 0.7 else np.float64)
        for h in (0.05, 0.3, 1.0, 2.5):
            np.testing.assert_array_equal(_h_maxima(d, h), h_maxima(d, h).astype(bool))
            n += 1
    assert n >= 60
    with pytest.raises(ValueError, match="finite"):
        _h_maxima(np.full((3, 4), np.inf, np.float32), 0.5)  # (scikit-image crashes on it)


def test_a_face_all_nmc_gives_no_face_peaks():
    """A face without background has no in-face distance: no peaks, no sections (it used to reach scikit-image's
    h_maxima with an infinite distance, which crashed the process)."""
    from core.particles import _face_sections

    q = np.zeros((6, 7, 8), np.uint8)
    q[:, :, :] = 5
    q[3, 3, 3] = 0  # background inside only: the faces are all NMC
    flat, levels, fid, sections, offsets = _face_sections(q, np.ones(3), 0.1, 0.5)
    assert flat.size == 0 and levels.size == 0 and fid.size == 0
    assert not sections.any() and offsets[-1] == sections.size


@numba.njit
def _contact_areas_dict(labels, sz, sy, sx):
    """core._kernels.contact_areas as it was until session 28 (a numba typed dict), for the test below."""
    nz, ny, nx = labels.shape
    areas = (sy * sx, sz * sx, sz * sy)
    d = dict()
    d[np.int64(0)] = 0.0
    big = np.int64(labels.max()) + 1
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                l0 = labels[z, y, x]
                if l0 == 0:
                    continue
                for ax in range(3):
                    zz, yy, xx = z + (ax == 0), y + (ax == 1), x + (ax == 2)
                    if zz >= nz or yy >= ny or xx >= nx:
                        continue
                    l1 = labels[zz, yy, xx]
                    if l1 != 0 and l1 != l0:
                        key = np.int64(min(l0, l1)) * big + max(l0, l1)
                        if key in d:
                            d[key] += areas[ax]
                        else:
                            d[key] = areas[ax]
    n = len(d) - 1
    a = np.empty(n, np.int64)
    b = np.empty(n, np.int64)
    area = np.empty(n, np.float64)
    i = 0
    for key, val in d.items():
        if key == 0:
            continue
        a[i], b[i], area[i] = key // big, key % big, val
        i += 1
    return a, b, area


@pytest.mark.parametrize("seed", range(3))
def test_contact_areas_hash_table_equals_the_dict(seed):
    """The open-addressing table gives the typed dict's pairs, order and sums bit for bit; a full table is
    reported (and contact_areas then tries a larger one)."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 20)), int(rng.integers(1, 20)), int(rng.integers(1, 20)))
    n_lab = int(rng.integers(1, 3000))
    lab = ndi.zoom(rng.integers(0, n_lab + 1, (6, 6, 6)), np.array(shape) / 6, order=0, grid_mode=True,
                   mode="nearest")[: shape[0], : shape[1], : shape[2]]
    lab[rng.random(lab.shape) < 0.2] = rng.integers(0, n_lab + 1)
    for dtype in (np.uint16, np.int32):
        got = K.contact_areas(lab.astype(dtype), 0.5, 0.3, 0.7)
        want = _contact_areas_dict(lab.astype(dtype), 0.5, 0.3, 0.7)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
    n_pairs = got[0].size
    if n_pairs > 1:
        big = np.int64(lab.max()) + 1
        size = 1 << int(np.ceil(np.log2(n_pairs)))  # room for fewer than all pairs
        assert K._contact_pass(lab, 0.5, 0.3, 0.7, big, size)[0] == -1
        n, keys, areas = K._contact_pass(lab, 0.5, 0.3, 0.7, big, 4 * size)
        np.testing.assert_array_equal(keys[:n] // big, want[0])
        np.testing.assert_array_equal(areas[:n], want[2])


def test_clear_unset_bits_equals_clearing_with_the_unpacked_mask():
    rng = np.random.default_rng(3)
    for shape in [(1, 1, 1), (2, 3, 5), (7, 9, 13), (4, 16, 16)]:
        lab = rng.integers(0, 6, shape).astype(np.uint16)
        keep = rng.random(shape) < 0.6
        want = np.where(keep, lab, 0)
        K.clear_unset_bits(lab, np.packbits(keep))
        np.testing.assert_array_equal(lab, want)
    with pytest.raises(ValueError, match="C-contiguous"):
        K.clear_unset_bits(np.zeros((4, 4, 4), np.int32)[:, ::2], np.zeros(4, np.uint8))

