"""The coarse-grid separation on the chunked engine (core.chunked.coarse, analyze --coarsen)."""

from __future__ import annotations

import json

import dask
import dask.array as da
import numpy as np
import pytest
import zarr

from core import cli
from core.coarse import separate_coarse
from core.chunked.coarse import coarse_nmc_chunked, separate_coarse_chunked
from core.coarse import block_nmc
from core.evaluate import instance_scores
from core.recipe import read_recipe
from core.synth import demo_electrode



@pytest.fixture(scope="module")
def phases_store(tmp_path_factory):
    e = demo_electrode("cycled-1C", shape=(44, 40, 48), rng=7)
    path = tmp_path_factory.mktemp("coarse") / "phases.zarr"
    z = zarr.create_array(str(path), shape=e.phases.shape, dtype=np.uint8, chunks=(16, 16, 16), zarr_format=3)
    z[...] = e.phases
    return z, e.phases, e.spacing


def test_the_coarse_nmc_chunk_by_chunk_equals_the_whole(phases_store):
    z, phases, _ = phases_store
    with dask.config.set(scheduler="sync"):
        for f in (2, 3):
            got = coarse_nmc_chunked(z, f)
            assert np.array_equal(got.compute(), block_nmc(phases, f))
            assert np.array_equal(coarse_nmc_chunked(da.from_array(phases, chunks=20), f).compute(), got.compute())


@pytest.mark.parametrize("whole_voxels", [10**9, 0])
def test_chunked_coarse_labels_against_the_whole_volume_with_the_same_factor(phases_store, tmp_path, whole_voxels):
    z, phases, sp = phases_store
    ref = separate_coarse(phases, sp, None, 2)
    with dask.config.set(scheduler="sync"):
        res = separate_coarse_chunked(z, sp, None, 2, out=tmp_path / "labels.zarr", scratch=tmp_path / "s",
                                      whole_voxels=whole_voxels, max_diameter_um=6.0)
    labels = np.asarray(zarr.open_array(str(tmp_path / "labels.zarr" / "0"))[...])
    assert res.coarse_shape == (22, 20, 24) and res.unlabelled == int(np.count_nonzero((phases == 2) & (labels == 0)))
    if whole_voxels:  # the coarse volume separated whole: the very labels of the whole-volume path
        assert res.whole and res.halo is None and np.array_equal(labels, ref.labels)
        assert res.n_particles == int(ref.labels.max()) and res.unlabelled == ref.unlabelled
    else:  # chunk by chunk on the coarse grid, halo at the coarse voxel (0.8 µm): ceil(6 / 0.8) + 1
        assert not res.whole and res.halo == 9
        assert instance_scores(ref.labels, labels, thresholds=(0.5,))["f1"].iloc[0] >= 0.95
    with pytest.raises(ValueError, match="factor must be a whole number from 2 to 4"):
        separate_coarse_chunked(z, sp, None, 1, out=tmp_path / "x.zarr", scratch=tmp_path / "x")


def test_analyze_coarsen_chunked_equals_whole_and_its_recipe_replays(tmp_path, sync_cluster):
    d = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(d), "--seed", "5", "--size", "40", "--names", "pristine", "-q"]) == 0
    grey = d / "pristine" / "greyscale.tif"
    out, whole, recipe = tmp_path / "c", tmp_path / "w", tmp_path / "r.json"
    assert cli.main(["analyze", str(grey), "--out", str(out), "--chunk-size", "20", "--coarsen", "2",
                     "--recipe", str(recipe), "-q"]) == 0
    assert cli.main(["analyze", str(grey), "--out", str(whole), "--coarsen", "2", "-q"]) == 0
    from core.io import load_volume

    labels = np.asarray(da.from_zarr(str(out / "labels.zarr" / "0")).compute())
    assert np.array_equal(labels, load_volume(whole / "labels.tif").data)
    run = json.loads((out / "run.json").read_text())
    assert run["params"]["coarsen"] == 2 and run["provenance"]["coarsen"] == 2
    assert run["provenance"]["coarse_separation"] == "whole"
    assert json.loads((whole / "run.json").read_text())["params"]["coarsen"] == 2
    import pandas as pd

    a, b = pd.read_csv(out / "particles.csv"), pd.read_csv(whole / "particles.csv")
    assert len(a) == len(b) > 3
    np.testing.assert_allclose(a["detachment"].to_numpy(float), b["detachment"].to_numpy(float), rtol=1e-9,
                               equal_nan=True)
    entry = read_recipe(recipe).analyses[0]
    assert entry.params.coarsen == 2
    assert cli.main(["run", str(recipe), "--out", str(tmp_path / "replay"), "-q"]) == 0
    assert (tmp_path / "replay" / entry.folder / "particles.csv").read_bytes() == (out / "particles.csv").read_bytes()
    # auto on the demo's small particles: 1, left out of the parameters
    auto = tmp_path / "a"
    assert cli.main(["analyze", str(grey), "--out", str(auto), "--chunk-size", "20", "--coarsen", "auto", "-q"]) == 0
    assert "coarsen" not in json.loads((auto / "run.json").read_text())["params"]
