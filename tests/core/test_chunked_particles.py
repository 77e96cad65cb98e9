"""core.chunked.separate_chunked: particles chunk by chunk with seamless labels, against the whole-volume labels."""

from __future__ import annotations

import threading

import dask
import dask.array as da
import numpy as np
import pytest

from core.chunked import estimate_max_diameter, particle_halo, separate_chunked
from core.codes import NMC
from core.evaluate import instance_scores
from core.particles import distance_transform, fill_enclosed, separate_particles
from core.synth import ElectrodeParams, make_electrode

SHAPE = (80, 80, 80)
SPACING = (0.8, 0.8, 0.8)


@pytest.fixture(scope="module")
def electrode():
    """~440 particles about 8 voxels across, chunks of 32 cut through many; a sphere 41 voxels across in the middle."""
    e = make_electrode(ElectrodeParams(shape=SHAPE, spacing=SPACING, radius_median_um=3.0, radius_max_um=5.0),
                       rng=4)
    phases = e.phases.copy()
    zz, yy, xx = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    big = (zz - 40) ** 2 + (yy - 40) ** 2 + (xx - 40) ** 2 <= 20**2
    phases[big] = NMC
    whole = separate_particles(phases, SPACING)
    return phases, big, whole, float(e.table["equiv_diameter_um"].max()), e.phases


@pytest.fixture(autouse=True)
def _sync():
    with dask.config.set(scheduler="sync"):
        yield


def test_chunked_labels_match_whole_volume(electrode, tmp_path):
    phases, big, whole, diameter, _ = electrode
    halo = particle_halo(diameter, SPACING)
    assert halo < 32  # the rule's halo for these particles; the big sphere is wider than a chunk and the halo
    res = separate_chunked(da.from_array(phases, chunks=32), SPACING, halo=halo, scratch=tmp_path / "s")
    assert res.beyond_halo > 0  # the sphere reaches the faces of the windows it is in: counted
    labels = res.labels.compute()
    n_whole = int(whole.max())
    assert n_whole > 300
    assert res.n_particles == len(np.unique(labels)) - 1 == int(labels.max())
    assert abs(res.n_particles - n_whole) <= 0.005 * n_whole
    f1 = float(instance_scores(whole, labels, thresholds=[0.5])["f1"].iloc[0])
    # 0.9968 (session 13: merge_ratio 2.0, face levels credited to the maximum their voxel climbs to); 0.9946 with
    # merge_ratio 2.0 alone, where caps of 17-42 voxels at the volume's corners kept a label of their own in one
    # engine and joined a neighbour in the other
    assert f1 >= 0.995
    assert res.joined > 100  # many particles were cut by chunk faces and joined
    assert np.array_equal(labels > 0, phases == NMC)
    # the sphere bigger than a chunk: one label covers nearly all of it, as in the whole-volume labels
    ids, counts = np.unique(labels[big], return_counts=True)
    assert counts.max() >= 0.95 * big.sum()
    assert (whole[big] == np.bincount(whole[big]).argmax()).mean() >= 0.95


def test_without_the_face_join_particles_are_cut(electrode, tmp_path, monkeypatch):
    """The join is what makes labels seamless: without it, every particle cut by a face counts twice or more."""
    from core.chunked import particles as cp

    phases, _, whole, diameter, _ = electrode
    monkeypatch.setattr(cp, "_face_votes", lambda lower, upper, axis: (np.empty(0, np.int64), np.empty(0, np.int64)))
    res = separate_chunked(da.from_array(phases, chunks=32), SPACING, halo=particle_halo(diameter, SPACING),
                           scratch=tmp_path / "s")
    assert res.n_particles > 1.2 * int(whole.max())


def test_estimated_diameter_bounds_the_largest_ball_and_sets_a_halo_nothing_crosses(electrode, tmp_path):
    _, _, _, diameter, plain = electrode
    ph = da.from_array(plain, chunks=32)
    ball = 2 * float(distance_transform(fill_enclosed(plain == NMC), SPACING).max())  # largest inscribed ball
    est = estimate_max_diameter(ph, SPACING)  # 80³ < 8 M voxels: no stride
    assert ball <= est <= ball + 2 * SPACING[0]
    for f in (2, 3):  # strided copies: still an upper bound (a stride skips thin pores: a few strides above)
        coarse = estimate_max_diameter(ph, SPACING, max_voxels=80**3 // f**3)
        assert ball <= coarse <= ball + 4 * f * SPACING[0]
    assert 0.9 * diameter <= est  # about the largest particle's equivalent diameter
    # the phases as a Zarr store that each task reads its window from: the same labels as through dask
    import zarr

    store = zarr.create_array(str(tmp_path / "ph.zarr"), shape=plain.shape, dtype=plain.dtype, chunks=(32, 32, 32),
                              zarr_format=3)
    store[...] = plain
    halo = particle_halo(est, SPACING)
    res = separate_chunked(store, SPACING, halo=halo, scratch=tmp_path / "s")
    # the rule bounds the largest inscribed ball (15.7 voxels here, halo 17), not an elongated particle: one of this
    # electrode is 21 voxels along x and reaches the window of the central chunk to its first slice or to within one
    # voxel of it, as the flood's ties at one level fall (first in, first out until session 29: within one voxel)
    assert res.beyond_halo <= 1
    whole = separate_particles(plain, SPACING)
    assert abs(res.n_particles - int(whole.max())) <= 0.005 * int(whole.max())
    ref = separate_chunked(ph, SPACING, halo=halo, scratch=tmp_path / "r")
    assert np.array_equal(res.labels.compute(), ref.labels.compute())
    # a second try with twice the halo for the chunks where a label reached the window: nothing reaches it then
    wide = separate_chunked(store, SPACING, halo=halo, wide_halo=2 * halo, scratch=tmp_path / "w")
    assert wide.beyond_halo == 0 and wide.widened == (1 if res.beyond_halo else 0)
    assert abs(wide.n_particles - int(whole.max())) <= 0.005 * int(whole.max())
    assert estimate_max_diameter(da.zeros((8, 8, 8), dtype=np.uint8, chunks=4), 1.0) == 0.0
    with pytest.raises(TypeError, match="dask array"):
        estimate_max_diameter(plain, SPACING)
    with pytest.raises(ValueError, match="max_voxels"):
        estimate_max_diameter(ph, SPACING, max_voxels=0)


def test_halo_rule_and_refusals(tmp_path):
    assert particle_halo(8.0, (0.8, 0.4, 0.4)) == 21
    with pytest.raises(ValueError, match="max_diameter_um"):
        particle_halo(0, 1.0)
    ph = da.zeros((8, 8, 8), dtype=np.uint8, chunks=4)
    with pytest.raises(ValueError, match="halo"):
        separate_chunked(ph, 1.0, halo=0)
    with pytest.raises(TypeError, match="dask array"):
        separate_chunked(np.zeros((8, 8, 8), np.uint8), 1.0, halo=2)
    with pytest.raises(TypeError, match="SeparationParams"):
        separate_chunked(ph, 1.0, {"h_um": 1.0}, halo=2)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        separate_chunked(ph, 1.0, halo=2, scratch=tmp_path / "full")
    empty = separate_chunked(ph, 1.0, halo=2, scratch=tmp_path / "e")  # no NMC: no particle
    assert empty.n_particles == 0 and not empty.labels.compute().any()


def _capsule_phases():
    """CBD everywhere but a capsule of NMC (radius 3 voxels, 31 long along x) across the chunk face at x = 32, and a
    ball (radius 3) in another chunk."""
    phases = np.full((40, 40, 64), 1, np.uint8)
    zz, yy, xx = np.ogrid[:40, :40, :64]
    axis = np.clip(xx, 17, 47)
    phases[(zz - 20) ** 2 + (yy - 20) ** 2 + (xx - axis) ** 2 <= 9] = NMC
    phases[(zz - 6) ** 2 + (yy - 6) ** 2 + (xx - 6) ** 2 <= 9] = NMC
    return phases


def test_wide_halo_holds_an_elongated_particle_whole(tmp_path):
    """The halo rule's ball (a diameter of 7 voxels: halo 8) does not hold a capsule 37 voxels long: its label reaches
    the windows' faces; a second try with a halo of 20 holds it whole in both chunks, as in the whole volume (16 does
    not: it reaches x = 14 to 50, the chunk face at 32)."""
    import zarr

    phases = _capsule_phases()
    whole = separate_particles(phases, 1.0)
    assert whole.max() == 2
    store = zarr.create_array(str(tmp_path / "ph.zarr"), shape=phases.shape, dtype=phases.dtype, chunks=(32, 32, 32),
                              zarr_format=3)
    store[...] = phases
    halo = particle_halo(7.0, 1.0)
    assert halo == 8
    plain = separate_chunked(store, 1.0, halo=halo, scratch=tmp_path / "p")
    assert plain.beyond_halo >= 2  # the capsule's piece in each chunk along x reaches its window's face
    short = separate_chunked(store, 1.0, halo=halo, wide_halo=16, scratch=tmp_path / "s")
    assert short.beyond_halo == 2 and short.widened == 2
    wide = separate_chunked(store, 1.0, halo=halo, wide_halo=20, scratch=tmp_path / "w")
    assert wide.beyond_halo == 0 and wide.widened == 2 and wide.halo == halo
    labels = wide.labels.compute()
    assert wide.n_particles == 2
    assert (labels > 0).sum() == (phases == NMC).sum()
    capsule = whole == whole[20, 20, 32]
    assert len(np.unique(labels[capsule])) == 1  # one label, as in the whole volume
    assert instance_scores(whole, labels, thresholds=[0.5])["f1"].iloc[0] == 1.0
    # the same wider windows through dask arrays are not possible: the task reads its window from the store
    with pytest.raises(ValueError, match="Zarr array"):
        separate_chunked(da.from_array(phases, chunks=32), 1.0, halo=halo, wide_halo=20, scratch=tmp_path / "d")
    for bad in (7, 2.5, True):
        with pytest.raises(ValueError, match="wide_halo must be a whole number"):
            separate_chunked(store, 1.0, halo=halo, wide_halo=bad, scratch=tmp_path / f"b{bad}")


_RELEASE = threading.Event()


def _long_chunk(i):
    """A chunk that runs until the test lets it go (or 30 s: then it was reported only at its end)."""
    _RELEASE.wait(30)
    return i


def test_compute_counting_says_the_count_while_a_long_chunk_runs_so_a_cancel_is_seen():
    """QA: a Cancel of a chunked analysis waited 3-12 s, until its next chunk ended: on a distributed client (a job's)
    the count is said again every POLL_S seconds while no chunk ends, and a report that raises stops it then."""
    import dask
    from distributed import Client, LocalCluster

    from core.chunked.cluster import compute_counting

    _RELEASE.clear()
    said = []

    class Stop(Exception):
        pass

    def cancel(fraction, message):
        said.append((fraction, message))
        raise Stop

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as lc, Client(lc):
        try:
            with pytest.raises(Stop):
                compute_counting([dask.delayed(_long_chunk, pure=False)(1)], [], cancel, "chunks labelled")
        finally:
            _RELEASE.set()
    assert said == [(0.0, "0 of 1 chunks labelled")]  # said (and stopped) while the chunk ran


@pytest.mark.parametrize("where", ["local", "distributed"])
def test_compute_counting_reports_each_chunk_and_stops_when_asked(where):
    """QA: the chunked particles pass said one message for 40 s, and a Cancel waited for the whole pass: each
    chunk's end is reported, on dask's local scheduler and on a distributed client, and a report that raises
    stops the rest."""
    import dask

    from core.chunked.cluster import compute_counting

    counted = [dask.delayed(lambda i: i * i, pure=False)(i) for i in range(6)]
    others = [dask.delayed(sum)(counted[:2])]
    said, kept = [], []

    def run():
        got = compute_counting(counted, others, lambda f, m: said.append((round(f, 3), m)), "chunks labelled")
        assert got == ([i * i for i in range(6)], [1])
        assert said[-1] == (1.0, "6 of 6 chunks labelled")
        # each chunk's end once (on a distributed client the count is said again while none ends)
        assert [m for i, (_, m) in enumerate(said) if i == 0 or said[i - 1][1] != m] == [
            f"{i} of 6 chunks labelled" for i in range(7 - len({m for _, m in said}), 7)]
        assert {m for _, m in said} >= {f"{i} of 6 chunks labelled" for i in range(1, 7)}
        said.clear()

        class Stop(Exception):
            pass

        def stop(f, m):
            raise Stop

        with pytest.raises(Stop) as stopped:
            compute_counting(counted, others, stop)
        kept.append(stopped)  # (CI: futures of a stopped call, alive in its traceback, cancelled the next call's)

    if where == "local":
        with dask.config.set(scheduler="threads"):
            run()
    else:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as lc, \
                Client(lc) as client:
            run()  # the default client (as the command line's cluster): dask's config says "dask.distributed"
            for _ in range(8):  # the same keys again after a stopped call (a race: 2 in 60 failed this way)
                run()
            with dask.config.set(scheduler=client):  # (as a job's worker_client)
                run()
