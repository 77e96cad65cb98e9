"""Slices shifted against one another (core.phases.alignment): a FIB-SEM stack that was not aligned is said; aligned
volumes (the demo electrodes, the real calendered volume, noisy ones) are not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.phases.alignment import ALIGN_WARN_PX, alignment_message, alignment_reading
from core.synth import demo_electrode

from sem_files import fib_stack

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
CALENDERED = REAL / "nmc_calendered_3phase" / "nmc-1-cal_generatedCBD_bridge.tif"


@pytest.mark.parametrize("name", ["pristine", "cycled-1C", "cycled-5C"])
@pytest.mark.parametrize("seed", [0, 5])
def test_the_demo_electrodes_are_aligned(name, seed):
    r = alignment_reading(demo_electrode(name, rng=seed, shape=(64, 128, 128)).greyscale)
    assert r["step_px"] <= 0.1 and not r["warn"] and alignment_message(r) is None


@pytest.mark.parametrize("noise", [5.0, 40.0, 80.0])
def test_an_aligned_noisy_stack_is_not_said(noise):
    """Noise of 0.03 / 0.22 / 0.44 of the pore-NMC contrast, fresh in every plane: 0.1 / 0.1 / 0.22 pixel."""
    r = alignment_reading(fib_stack((0.0, 0.0), noise))
    assert r["step_px"] <= (0.1 if noise < 80 else 0.23) and not r["warn"]


@pytest.mark.parametrize("drift, lo, hi", [((0.3, 0.3), 0.28, 0.40), ((0.7, -1.3), 1.1, 1.3), ((2.2, 0.4), 2.0, 2.3)])
def test_a_drifting_stack_is_said_with_its_shift(drift, lo, hi):
    """The reading a little under the true shift (the structure changes from one plane to the next), in its
    direction."""
    r = alignment_reading(fib_stack(drift, 20.0))
    assert lo <= r["step_px"] <= hi and r["warn"] and r["step_px"] >= ALIGN_WARN_PX
    assert np.sign(r["shift_px"][0]) == np.sign(drift[0]) and np.sign(r["shift_px"][1]) == np.sign(drift[1])
    assert r["pairs"] == 11 and r["stack_px"] == pytest.approx(r["step_px"] * 63)  # the separator's pair left out
    msg = alignment_message(r)
    assert msg.startswith(f"The slices are shifted against one another: by a median of {r['step_px']:.1f} pixel")
    assert "align the slices first" in msg


def test_a_jittering_stack_is_said():
    """Shifts back and forth (a random walk of whole pixels): the median length, not the signed median."""
    g = demo_electrode("cycled-5C", rng=3, shape=(64, 128, 128)).greyscale
    off = np.cumsum(np.random.default_rng(0).normal(0, 1.5, (64, 2)), axis=0).round().astype(int)
    r = alignment_reading(np.stack([np.roll(g[k], tuple(off[k]), axis=(0, 1)) for k in range(64)]))
    assert r["warn"] and r["step_px"] >= 1.0


def test_no_reading_for_thin_or_constant_volumes_and_a_nan_does_not_spread():
    assert alignment_reading(np.zeros((3, 32, 32))) is None
    assert alignment_reading(np.ones((10, 32, 32))) is None
    assert alignment_reading(np.random.default_rng(0).random((64, 128, 128))) is None  # no plane like the next
    v = fib_stack((0.0, 0.0), 5.0)[:16]
    before = alignment_reading(v)
    v[3, 10, 10] = np.nan
    assert alignment_reading(v) == before and not before["warn"]
    v[3] = np.nan  # a plane of NaN only: the pairs with it left out
    assert alignment_reading(v)["pairs"] < before["pairs"]


def test_the_real_calendered_volume_is_aligned():
    tifffile = pytest.importorskip("tifffile")
    if not CALENDERED.exists():
        pytest.skip(f"real data not present: {CALENDERED}")
    r = alignment_reading(tifffile.imread(CALENDERED))
    assert r["step_px"] <= 0.1 and not r["warn"]


def test_a_lazily_read_volume_is_read_two_planes_a_pair():
    """Reads 2 planes a pair (24 of 64), each through the central window."""
    g = fib_stack((0.0, 0.0), 5.0)
    asked = []

    class Planes:
        shape = g.shape

        def __getitem__(self, key):
            asked.append(key[0].stop - key[0].start)
            return g[key]

    assert alignment_reading(Planes()) is not None and sum(asked) == 24


def test_analyses_and_inspect_say_it(tmp_path, capsys):
    """The whole-volume run warns (not for an aligned stack), the chunked engine too, inspect prints it."""
    import warnings

    import tifffile

    from core import cli
    from core.pipeline import run

    stack = np.clip(fib_stack((0.7, -1.3), 20.0), 0, 255).astype(np.uint8)
    with pytest.warns(UserWarning, match="The slices are shifted against one another: by a median of 1.2 pixel"):
        run(stack, spacing=(1.0, 1.0, 1.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(np.clip(fib_stack((0.0, 0.0), 20.0), 0, 255).astype(np.uint8), spacing=(1.0, 1.0, 1.0))
    assert not any("shifted against" in str(w.message) for w in caught)
    path = tmp_path / "unaligned.tif"
    tifffile.imwrite(path, stack)
    assert cli.main(["inspect", str(path)]) == 0
    assert "  ALIGNMENT: The slices are shifted against one another: by a median of 1.2 pixel" in capsys.readouterr().out
    assert cli.main(["analyze", str(path), "--out", str(tmp_path / "out"), "--chunk-size", "32", "--workers", "1",
                     "-q"]) == 0
    assert "warning: The slices are shifted against one another" in capsys.readouterr().err
