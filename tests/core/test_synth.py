"""Tests for core.synth: determinism, consistency of the ground truth, the detachment knob."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from core.codes import CBD, NMC, PORE
from core.metrics import COLUMNS, particle_table
from core.synth import DEMO_ELECTRODES, ElectrodeParams, ImagingParams, demo_electrode, make_electrode

SMALL = ElectrodeParams(shape=(48, 48, 48), radius_median_um=3, spacing=(0.5, 0.5, 0.5))


@pytest.fixture(scope="module")
def elec():
    return make_electrode(SMALL, rng=7)


def test_same_seed_same_electrode(elec):
    again = make_electrode(SMALL, rng=7)
    np.testing.assert_array_equal(again.greyscale, elec.greyscale)
    np.testing.assert_array_equal(again.phases, elec.phases)
    np.testing.assert_array_equal(again.labels, elec.labels)
    pd.testing.assert_frame_equal(again.table, elec.table)
    # a Generator seeded the same way gives the same electrode too
    gen = make_electrode(SMALL, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(gen.greyscale, elec.greyscale)
    assert elec.seed == 7 and gen.seed is None


def test_other_seed_other_electrode(elec):
    other = make_electrode(SMALL, rng=8)
    assert not np.array_equal(other.phases, elec.phases)
    assert not np.array_equal(other.greyscale, elec.greyscale)


def test_volumes_are_consistent(elec):
    assert elec.greyscale.shape == elec.phases.shape == elec.labels.shape == (48, 48, 48)
    assert elec.phases.dtype == np.uint8 and elec.labels.dtype == np.int32
    assert elec.greyscale.dtype == np.uint16
    assert set(np.unique(elec.phases)) == {PORE, CBD, NMC}
    # labels exactly on NMC voxels, numbered 1..n
    np.testing.assert_array_equal(elec.labels > 0, elec.phases == NMC)
    ids = np.unique(elec.labels)
    np.testing.assert_array_equal(ids, np.arange(ids.size))
    assert 10 <= ids.size - 1 == len(elec.table)
    assert elec.spacing == (0.5, 0.5, 0.5)
    assert elec.name == "synthetic" and elec.electrode == SMALL and elec.imaging == ImagingParams()


def test_free_surface_at_the_separator_side(elec):
    gap_vox = int(SMALL.surface_gap_um / SMALL.spacing[0])  # 4 voxels
    assert not (elec.phases[: gap_vox - 1] == NMC).any()
    nmc = (elec.phases == NMC).mean(axis=(1, 2))
    assert nmc[gap_vox + 8 :].mean() > 0.3


def test_true_table_is_particle_table_of_the_truth(elec):
    t = elec.table
    assert list(t.columns) == list(COLUMNS) + ["target_detached_share"]
    again = particle_table(elec.labels, elec.phases, elec.spacing, separator_side="start")
    pd.testing.assert_frame_equal(t[list(COLUMNS)], again)
    assert t["target_detached_share"].between(0, 1).all()
    # the truth has real interfaces: CBD coverage and detachment vary between particles
    assert t["frac_cbd"].max() > 0.2
    assert t["detachment"].dropna().between(0, 1).all()


def test_greyscale_orders_the_phases(elec):
    g = elec.greyscale.astype(np.float64)
    m_pore, m_cbd, m_nmc = (g[elec.phases == c].mean() for c in (PORE, CBD, NMC))
    assert m_nmc > m_cbd > m_pore
    # the imaging model: intensity * 0.6 * 65535 + 0.1 * 65535 (before blur and noise)
    im = ImagingParams()
    assert m_nmc == pytest.approx((im.intensity_nmc * 0.6 + 0.1) * 65535, rel=0.1)
    assert m_pore == pytest.approx((im.intensity_pore * 0.6 + 0.1) * 65535, rel=0.2)


def test_detachment_knob():
    low = make_electrode(replace(SMALL, detachment_mean=0.0), rng=3)
    high = make_electrode(replace(SMALL, detachment_mean=0.8), rng=3)
    d_low = low.table["detachment"].median()
    d_high = high.table["detachment"].median()
    assert d_high > d_low + 0.4
    assert high.table["target_detached_share"].median() > low.table["target_detached_share"].median() + 0.5
    # the microstructure (NMC) is the same, only CBD is removed
    np.testing.assert_array_equal(low.phases == NMC, high.phases == NMC)
    assert (high.phases == CBD).sum() < (low.phases == CBD).sum()


def test_no_cracks_when_crack_prob_zero():
    e = make_electrode(replace(SMALL, crack_prob=0.0, shape=(32, 32, 32)), rng=1)
    interior = ~e.table["touches_edge"]
    assert (e.table.loc[interior, "crack_fraction"] == 0).all()
    cracked = make_electrode(replace(SMALL, crack_prob=1.0, shape=(32, 32, 32)), rng=1)
    assert (cracked.table["crack_fraction"] > 0).sum() >= 1


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"packing": 1.5}, r"packing must lie in \[0, 1\], got 1.5"),
        ({"shape": (4, 48, 48)}, r"shape must be 3 sizes >= 8 voxels"),
        ({"shape": (48, 48)}, r"shape must be 3 sizes >= 8 voxels"),
        ({"detachment_mean": -0.1}, r"detachment_mean must lie in \[0, 1\]"),
        ({"radius_median_um": 0}, r"radii must be > 0"),
        ({"radius_min_um": 5, "radius_max_um": 2}, r"radius_min_um <= radius_max_um"),
        ({"calendering": 0.2}, r"calendering must lie in \[0.5, 1\]"),
        ({"spacing": (0.5, 0, 0.5)}, r"finite and > 0"),
    ],
)
def test_bad_params(kw, match):
    with pytest.raises(ValueError, match=match):
        make_electrode(replace(SMALL, **kw), rng=0)


def test_demo_electrode():
    assert list(DEMO_ELECTRODES) == ["pristine", "cycled-1C", "cycled-5C"]
    e = demo_electrode("cycled-5C", rng=2, shape=(32, 32, 32))
    assert e.name == "cycled-5C" and e.phases.shape == (32, 32, 32) and e.seed == 2
    assert e.electrode == replace(DEMO_ELECTRODES["cycled-5C"], shape=(32, 32, 32))
    with pytest.raises(ValueError, match=r"unknown demo electrode 'nope'"):
        demo_electrode("nope")
    # the generator's crack mask travels with the electrode: crack voxels are pore inside no label
    cracks = e.extra["cracks"]
    assert cracks.shape == e.phases.shape and cracks.dtype == bool
    assert not e.labels[cracks].any() and (e.phases[cracks] == 0).all()


def test_generating_a_demo_says_its_steps_and_a_job_can_stop_between_them(tmp_path):
    """QA walk 13: a 320³ demo's job read "reading the volume" for its whole 2.5 minutes (generation is 41 of its
    48 s alone), and a cancel waited for the end of it: each step of the generation is now reported, and a job's
    progress callback (which raises when it is cancelled) stops it between two steps."""
    from core.runner import run_analysis
    from core.workspace import Workspace

    said = []
    e = demo_electrode("pristine", rng=0, shape=(24, 24, 24), progress=lambda f, m: said.append((f, m)))
    assert [m.split(": ", 1)[1] for _, m in said] == [
        "placing the particles", f"drawing {said[1][1].split()[-2]} particles", "the carbon-binder domain",
        "the detachment gaps", "the greyscale image (blur and noise)", "its true particle table", "done"]
    assert all(m.startswith("generating the synthetic electrode: ") for _, m in said)
    assert [f for f, _ in said] == sorted(f for f, _ in said) and said[-1][0] == 1.0
    plain = demo_electrode("pristine", rng=0, shape=(24, 24, 24))
    np.testing.assert_array_equal(e.greyscale, plain.greyscale)  # reporting changes nothing

    class Stop(BaseException):
        pass

    def cancel_at_gaps(fraction, message):
        if message.endswith("the detachment gaps"):
            raise Stop

    ws = Workspace(tmp_path / "ws")
    s = ws.add_sample("d", "demo:pristine", spacing=0.4, source_options={"shape": [24, 24, 24], "seed": 0})
    with pytest.raises(Stop):
        run_analysis(ws, s, None, progress=cancel_at_gaps)
    assert not list(ws.cache_dir().glob("demo-*.npy"))  # no half-made volume kept


def test_free_places_as_the_check_over_every_sphere():
    """The k-d tree's neighbours give the same verdict, bit for bit, as the distance to every placed sphere."""
    from scipy.spatial import cKDTree

    from core.synth import _free

    rng = np.random.default_rng(8)
    n = 300
    kept = np.sort(rng.uniform(2.0, 6.0, n))[::-1]
    centres = rng.uniform(0, 60, (n, 3))
    for placed, indexed in ((0, 0), (1, 0), (40, 0), (40, 40), (300, 256), (300, 300)):
        tree = cKDTree(centres[:indexed]) if indexed else None
        r = float(kept[placed - 1]) if placed else 6.0
        cand = rng.uniform(0, 60, (200, 3))
        cand[:20] = centres[:20] + (kept[:20] + r)[:, None] * np.array([1.0, 0, 0])  # exactly touching: free
        if placed:
            d = np.linalg.norm(cand[:, None, :] - centres[None, :placed, :], axis=2)
            want = np.all(d >= kept[None, :placed] + r, axis=1)
        else:
            want = np.ones(len(cand), bool)
        got = _free(cand, r, centres, kept, placed, tree, indexed)
        np.testing.assert_array_equal(got, want)
        assert 0 < want.sum() < len(cand) or placed < 40


def test_coordinate_sums_are_the_weighted_counts():
    from core.synth import _coordinate_sums

    labels = np.random.default_rng(2).integers(0, 7, (9, 11, 13)).astype(np.int32)
    got = _coordinate_sums(labels, 8)
    for a, coord in enumerate(np.indices(labels.shape, sparse=True)):
        want = np.bincount(labels.ravel(), weights=np.broadcast_to(coord, labels.shape).ravel(), minlength=9)
        np.testing.assert_array_equal(got[:, a], want)
