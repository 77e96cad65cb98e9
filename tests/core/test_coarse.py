"""core.coarse: the separation on a coarser grid, brought back onto the full-resolution NMC."""

from __future__ import annotations

import numpy as np
import pytest

from core import pipeline
from core.coarse import auto_factor, block_nmc, check_factor, grow_labels, separate_coarse, upsample_labels
from core.codes import NMC
from core.evaluate import instance_scores
from core.particles import separate_particles
from core.synth import demo_electrode


def _balls(shape, centres, radius):
    zz, yy, xx = np.indices(shape)
    ph = np.zeros(shape, np.uint8)
    for c in centres:
        ph[(zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= radius ** 2] = NMC
    return ph


def test_block_nmc_is_a_majority_of_the_voxels_inside_the_volume():
    nmc = np.zeros((5, 4, 4), bool)
    nmc[0:2, 0:2, 0:2] = True            # a whole block
    nmc[0, 2:4, 0:2] = True              # half a block: a tie counts as NMC
    nmc[0, 0, 2] = True                  # one voxel of eight: not NMC
    nmc[4, 0:2, 0] = True                # the last block along z is 1 voxel thick: 2 of its 4 voxels
    got = block_nmc(nmc, 2)
    assert got.shape == (3, 2, 2) and got.dtype == np.uint8
    want = np.zeros((3, 2, 2), np.uint8)
    want[0, 0, 0] = want[0, 1, 0] = want[2, 0, 0] = NMC
    assert np.array_equal(got, want)
    phases = np.where(nmc, NMC, 1).astype(np.uint8)  # phase codes: CBD is not NMC
    assert np.array_equal(block_nmc(phases, 2), want)


def test_grow_labels_largest_wins_and_a_window_with_a_margin_equals_the_whole():
    lab = np.zeros((1, 1, 7), np.int32)
    lab[0, 0, 1], lab[0, 0, 5] = 3, 7
    assert grow_labels(lab, 1)[0, 0].tolist() == [3, 3, 3, 0, 7, 7, 7]
    assert grow_labels(lab, 2)[0, 0].tolist() == [3, 3, 3, 7, 7, 7, 7]  # both reach the middle: 7 wins
    rng = np.random.default_rng(0)
    big = np.where(rng.random((20, 20, 20)) < 0.03, rng.integers(1, 9, (20, 20, 20)), 0).astype(np.int32)
    whole = grow_labels(big, 2)
    win = grow_labels(big[3:17, 2:15, 5:20], 2)
    assert np.array_equal(win[2:-2, 2:-2, 2:-2], whole[5:15, 4:13, 7:18])


def test_upsample_labels_takes_each_blocks_label_on_the_nmc_only():
    coarse = np.arange(1, 9, dtype=np.int32).reshape(2, 2, 2)
    nmc = np.ones((3, 4, 4), bool)
    nmc[0, 0, 0] = False
    up = upsample_labels(coarse, 2, nmc)
    assert up[0, 0, 0] == 0 and up[0, 0, 1] == 1 and up[2, 3, 3] == 8 and up[1, 2, 1] == coarse[0, 1, 0]
    # a window: its voxels from (2, 0, 2) read the coarse labels from coarse voxel (1, 0, 1)
    win = upsample_labels(coarse[1:, :, 1:], 2, np.ones((1, 2, 2), bool), start=(2, 0, 2), coarse_start=(1, 0, 1))
    assert (win == coarse[1, 0, 1]).all()
    with pytest.raises(ValueError, match="not inside the coarse labels"):
        upsample_labels(coarse[:1], 2, np.ones((3, 2, 2), bool))


def test_factor_1_is_the_full_resolution_separation():
    e = demo_electrode("pristine", shape=(40, 40, 40), rng=2)
    ref = separate_particles(e.phases, e.spacing)
    res = separate_coarse(e.phases, e.spacing, None, 1)
    assert np.array_equal(res.labels, ref) and res.unlabelled == 0 and res.factor == 1


def test_factor_2_on_big_spheres_gives_the_same_particles():
    # four balls of radius 11 voxels: two apart, two touching along a neck
    ph = _balls((48, 48, 64), [(24, 14, 14), (24, 34, 50), (14, 30, 20), (34, 30, 40)], 11)
    ph[(ph == 0) & (np.indices(ph.shape)[0] % 2 == 0)] = 1  # some CBD: only the NMC matters
    ref = separate_particles(ph, 0.5)
    res = separate_coarse(ph, 0.5, None, 2)
    assert res.coarse_shape == (24, 24, 32)
    assert int(ref.max()) == int(res.labels.max()) == 4
    assert res.unlabelled == 0 and np.array_equal(res.labels > 0, ph == NMC)  # every NMC voxel labelled
    assert instance_scores(ref, res.labels, thresholds=(0.5,))["f1"].iloc[0] == 1.0


def test_unreached_specks_are_left_unlabelled_and_counted():
    ph = _balls((32, 32, 32), [(16, 16, 16)], 8)
    ph[1, 30, 30] = NMC  # one voxel, 14 coarse voxels from the ball
    res = separate_coarse(ph, 1.0, None, 2)
    assert res.unlabelled == 1 and res.labels[1, 30, 30] == 0 and int(res.labels.max()) == 1


def test_auto_factor_rule():
    assert auto_factor(10.0, 0.1, target=50) == 2 and auto_factor(22.3, 0.1, target=50) == 4
    assert auto_factor(100.0, 0.1) == 4  # at most MAX_FACTOR
    assert auto_factor(0.0, 0.1) == 1 and auto_factor(15.2, 0.4) == 1
    with pytest.raises(ValueError, match="max_diameter_um"):
        auto_factor(-1.0, 0.1)
    for bad in (0, 5, 2.0, True, "3"):
        with pytest.raises(ValueError, match="coarsen must be 'auto' or a whole number from 1 to 4"):
            check_factor(bad)


def test_the_pipeline_option_default_auto_on_a_demo_and_factor_2():
    e = demo_electrode("cycled-1C", shape=(40, 40, 40), rng=4)
    base = pipeline.run(e.phases, spacing=e.spacing, presegmented=True)
    assert "coarsen" not in base.params.to_dict()
    auto = pipeline.run(e.phases, pipeline.AnalysisParams(coarsen="auto"), spacing=e.spacing, presegmented=True)
    assert auto.params.coarsen == 1 and "coarsen" not in auto.params.to_dict()  # the demo's particles are small
    assert np.array_equal(auto.labels, base.labels) and auto.table.equals(base.table)
    two = pipeline.run(e.phases, pipeline.AnalysisParams(coarsen=2), spacing=e.spacing, presegmented=True)
    assert two.params.to_dict()["coarsen"] == 2
    assert pipeline.AnalysisParams.from_dict(two.params.to_dict()) == two.params
    assert np.array_equal(two.labels, separate_coarse(e.phases, e.spacing, None, 2).labels)
    assert two.provenance["coarse_unlabelled_voxels"] >= 0
    with pytest.raises(ValueError, match="coarsen 2 is for particles 'watershed' seeded on the phases"):
        pipeline.AnalysisParams(coarsen=2, seeding="regularised")
