"""core.chunked.write_zarr (Zarr v3, OME-Zarr metadata) and cluster(): a chunked run on 2 local workers."""

from __future__ import annotations

import json

import dask
import dask.array as da
import numpy as np
import pytest
import zarr

from core.chunked import OME_ZARR_VERSION, cluster, open_lazy, segment_chunked, separate_chunked, write_zarr
from core.evaluate import instance_scores
from core.io import load_volume
from core.particles import separate_particles
from core.phases import segment
from core.synth import demo_electrode


def test_write_zarr_v3_with_ome_metadata(tmp_path):
    data = (np.arange(20 * 30 * 36) % 3).astype(np.uint8).reshape(20, 30, 36)
    with dask.config.set(scheduler="sync"):
        out = write_zarr(da.from_array(data, chunks=(8, 16, 16)), tmp_path / "ph.zarr", spacing=(0.5, 0.25, 0.2),
                         name="phases")
    assert out == tmp_path / "ph.zarr"
    meta = json.loads((out / "zarr.json").read_text())
    assert meta["zarr_format"] == 3 and meta["node_type"] == "group"
    ms = meta["attributes"]["ome"]
    assert ms["version"] == OME_ZARR_VERSION
    (image,) = ms["multiscales"]
    assert image["name"] == "phases"
    assert [a["name"] for a in image["axes"]] == ["z", "y", "x"]
    assert {a["unit"] for a in image["axes"]} == {"micrometer"}
    assert image["datasets"] == [{"path": "0", "coordinateTransformations": [{"type": "scale",
                                                                             "scale": [0.5, 0.25, 0.2]}]}]
    arr = zarr.open_array(out / "0", mode="r")
    assert arr.metadata.zarr_format == 3
    assert arr.chunks == (8, 16, 16) and arr.dtype == np.uint8
    assert tuple(arr.metadata.dimension_names) == ("z", "y", "x")
    np.testing.assert_array_equal(arr[...], data)
    back = load_volume(out)  # the voxel size reads back
    assert back.spacing == (0.5, 0.25, 0.2)
    lazy = open_lazy(out, chunks=16)
    assert lazy.spacing == (0.5, 0.25, 0.2)


def test_write_zarr_refuses_an_existing_store_and_a_missing_folder(tmp_path):
    data = np.zeros((4, 4, 4), np.uint8)
    with dask.config.set(scheduler="sync"):
        write_zarr(data, tmp_path / "a.zarr", spacing=1.0)
        with pytest.raises(ValueError, match="already exists"):
            write_zarr(data, tmp_path / "a.zarr", spacing=1.0)
        write_zarr(data + 1, tmp_path / "a.zarr", spacing=1.0, overwrite=True)
        with pytest.raises(ValueError, match="does not exist"):
            write_zarr(data, tmp_path / "no" / "a.zarr", spacing=1.0)
        with pytest.raises(ValueError, match="3D"):
            write_zarr(np.zeros((4, 4)), tmp_path / "b.zarr", spacing=1.0)
    assert zarr.open_array(tmp_path / "a.zarr" / "0", mode="r")[0, 0, 0] == 1


def test_write_zarr_irregular_chunks_are_made_regular(tmp_path):
    d = da.from_array(np.arange(30 * 8 * 8, dtype=np.uint16).reshape(30, 8, 8), chunks=((10, 5, 15), 8, 8))
    with dask.config.set(scheduler="sync"):
        write_zarr(d, tmp_path / "r.zarr", spacing=1.0)
    arr = zarr.open_array(tmp_path / "r.zarr" / "0", mode="r")
    np.testing.assert_array_equal(arr[...], d.compute(scheduler="sync"))


def test_cluster_arguments_are_checked_before_anything_starts():
    with pytest.raises(ValueError, match=">= 1"):
        with cluster(workers=0):
            pass
    with pytest.raises(TypeError, match="whole number"):
        with cluster(workers=1.5):
            pass
    with pytest.raises(ValueError, match="existing cluster"):
        with cluster(workers=2, address="tcp://127.0.0.1:1"):
            pass


def test_chunked_run_on_two_local_workers_equals_whole_volume(tmp_path):
    """A lazily read .npy, phases and particles on 2 worker processes, through Zarr: the whole-volume results."""
    e = demo_electrode("pristine", rng=2, shape=(40, 48, 48))
    np.save(tmp_path / "g.npy", e.greyscale)
    whole = segment(e.greyscale)
    vol = open_lazy(tmp_path / "g.npy", chunks=24, spacing=e.spacing)
    with cluster(workers=2) as client:
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 2
        # the default memory policy: held results spill to disk above 60 % of 1 GiB; no pausing, no killing
        assert all(w["memory_limit"] == 2**30 for w in workers.values())
        policy = client.run(lambda: (__import__("dask").config.get("distributed.worker.memory.pause"),
                                     __import__("dask").config.get("distributed.worker.memory.terminate")))
        assert set(policy.values()) == {(False, False)}
        seg = segment_chunked(vol)
        write_zarr(seg.phases, tmp_path / "phases.zarr", spacing=vol.spacing, name="phases")
        # particles from the stored phases; a halo that makes every window the whole volume: the same labels
        res = separate_chunked(open_lazy(tmp_path / "phases.zarr", chunks=24).data, e.spacing, halo=48,
                               scratch=tmp_path / "scratch")
        labels = res.labels.compute()
    got = load_volume(tmp_path / "phases.zarr")
    assert got.spacing == pytest.approx(e.spacing)
    np.testing.assert_array_equal(got.data, whole)
    whole_labels = separate_particles(whole, e.spacing)
    assert res.n_particles == int(whole_labels.max())
    assert float(instance_scores(whole_labels, labels, thresholds=[0.5])["f1"].iloc[0]) == 1.0


def test_local_cluster_starts_when_main_is_a_script_that_must_not_run_again(tmp_path, monkeypatch):
    """After an AppTest (or inside a Streamlit page) ``__main__`` is a page script: spawned workers must not run it."""
    import sys
    import types

    from core.chunked import cluster

    script = tmp_path / "page.py"
    script.write_text("raise SystemExit('a page script ran in a worker')\n")
    fake = types.ModuleType("__main__")
    fake.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", fake)
    with cluster(workers=1) as client:
        assert client.submit(sum, [1, 2], pure=False).result(timeout=60) == 3
    assert sys.modules["__main__"] is fake
