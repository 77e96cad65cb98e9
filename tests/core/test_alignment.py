"""Slices shifted against one another (core.phases.alignment): a FIB-SEM stack that was not aligned is said; aligned
volumes (the demo electrodes, the real calendered volume, noisy ones) are not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.phases.alignment import ALIGN_WARN_PX, aligned_message, alignment_message, alignment_reading, slice_shifts
from core.synth import demo_electrode

from sem_files import fib_stack

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
CALENDERED = REAL / "nmc_calendered_3phase" / "nmc-1-cal_generatedCBD_bridge.tif"


@pytest.mark.parametrize("name", ["pristine", "cycled-1C", "cycled-5C"])
@pytest.mark.parametrize("seed", [0, 5])
def test_the_demo_electrodes_are_aligned(name, seed):
    r = alignment_reading(demo_electrode(name, rng=seed, shape=(64, 128, 128)).greyscale)
    assert r["step_px"] <= 0.15 and not r["warn"] and alignment_message(r) is None


@pytest.mark.parametrize("noise", [5.0, 40.0, 80.0])
def test_an_aligned_noisy_stack_is_not_said(noise):
    """Noise of 0.03 / 0.22 / 0.44 of the pore-NMC contrast, fresh in every plane: 0.07 / 0.11 / 0.11 pixel (each
    plane smoothed first: 0.33 at 0.44 without it)."""
    r = alignment_reading(fib_stack((0.0, 0.0), noise))
    assert r["step_px"] <= 0.15 and not r["warn"]


@pytest.mark.parametrize("drift, lo, hi", [((0.3, 0.3), 0.38, 0.52), ((0.7, -1.3), 1.40, 1.55),
                                           ((2.2, 0.4), 2.10, 2.35)])
def test_a_drifting_stack_is_said_with_its_shift(drift, lo, hi):
    """The reading within 0.08 pixel of the drift's length (0.424 / 1.476 / 2.236 read 0.495 / 1.471 / 2.228; the
    structure changes from one plane to the next), in its direction."""
    r = alignment_reading(fib_stack(drift, 20.0))
    assert lo <= r["step_px"] <= hi and r["warn"] and r["step_px"] >= ALIGN_WARN_PX
    assert np.sign(r["shift_px"][0]) == np.sign(drift[0]) and np.sign(r["shift_px"][1]) == np.sign(drift[1])
    assert r["pairs"] == 11 and r["stack_px"] == pytest.approx(r["step_px"] * 63)  # the separator's pair left out
    msg = alignment_message(r)
    digits = 2 if r["step_px"] < 1 else 1
    assert msg.startswith(f"The slices are shifted against one another: by a median of {r['step_px']:.{digits}f} "
                          "pixel")
    assert "align the slices first" in msg
    # QA: a reading at the rule, 0.25 pixel, was printed "0.2" (under the rule it warns from)
    at_rule = alignment_message({**r, "step_px": 0.25, "shift_px": (0.0, 0.25)})
    assert "by a median of 0.25 pixel" in at_rule and "(y +0.00, x +0.25;" in at_rule


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


def test_values_near_the_float32_limit_do_not_stop_the_reading():
    """A big-endian float32 file read as little-endian holds values up to about 1e38: the registration's sums
    overflowed into NaN and skimage raised (QA: the Samples page stopped with a ValueError)."""
    v = fib_stack((1.5, 0.0), 5.0)[:16].astype(np.float32)
    before = alignment_reading(v)
    assert before["warn"]
    huge = (v.astype(np.float64) * (1e38 / float(np.abs(v).max()))).astype(np.float32)  # near float32's limit
    with np.errstate(over="ignore", invalid="ignore"):
        got = alignment_reading(huge)
    assert got is not None and got["shift_px"] == pytest.approx(before["shift_px"], abs=0.05)
    garbage = np.frombuffer(v.astype(">f4").tobytes(), "<f4").reshape(v.shape)  # the byte order read wrong
    with np.errstate(over="ignore", invalid="ignore"):
        alignment_reading(garbage)  # a reading or None, not an error


def test_the_real_calendered_volume_is_aligned():
    tifffile = pytest.importorskip("tifffile")
    if not CALENDERED.exists():
        pytest.skip(f"real data not present: {CALENDERED}")
    r = alignment_reading(tifffile.imread(CALENDERED))
    assert r["step_px"] <= 0.1 and not r["warn"]
    # QA: a 100³ crop, read as phase codes, steps 0.25 pixel back and forth without drifting (median shift
    # (-0.05, +0.12)): the reading's own jitter, not a stack to align
    from core.io.phase_map import apply_phase_map

    crop = apply_phase_map(tifffile.imread(CALENDERED)[100:200, 150:250, 150:250], "0=pore,1=nmc,2=cbd")
    r = alignment_reading(crop)
    assert r["step_px"] >= 0.25 and np.hypot(*r["shift_px"]) < 0.25 and not r["warn"]


def test_a_lazily_read_volume_is_read_two_planes_a_pair():
    """Reads 2 planes a pair (24 of 64), each through the central window."""
    g = fib_stack((0.0, 0.0), 5.0)
    asked = []

    class Planes:
        shape = g.shape

        def __getitem__(self, key):
            asked.append(key[0].stop - key[0].start)
            return g[key]

    # 12 neighbouring pairs and 12 pairs ALIGN_GAP planes apart
    assert alignment_reading(Planes()) is not None and sum(asked) == 48


def test_whole_pixel_steps_every_few_planes_are_said():
    """QA walk 7: a stack stepping 1 pixel every 3 planes in y and every 4 in x (21 and 15 pixels over 64 planes)
    reads 0 between most neighbours (a median step of 0) and was not said; over ALIGN_GAP planes it adds up."""
    clean = fib_stack((0.0, 0.0), 5.0)
    stair = np.stack([np.roll(p, (k // 3, k // 4), axis=(0, 1)) for k, p in enumerate(clean)])
    r = alignment_reading(stair)
    assert r["warn"] and r["shift_px"][0] == pytest.approx(1 / 3, abs=0.06)
    assert r["shift_px"][1] == pytest.approx(1 / 4, abs=0.06)
    assert "shifted against one another" in alignment_message(r)
    assert not alignment_reading(clean)["warn"]


def test_analyses_and_inspect_say_it(tmp_path, capsys):
    """The whole-volume run warns (not for an aligned stack), the chunked engine too, inspect prints it."""
    import warnings

    import tifffile

    from core import cli
    from core.pipeline import run

    stack = np.clip(fib_stack((0.7, -1.3), 20.0), 0, 255).astype(np.uint8)
    said_as = "The slices are shifted against one another: by a median of 1.5 pixel"
    with pytest.warns(UserWarning, match=said_as) as said:
        run(stack, spacing=(1.0, 1.0, 1.0))
    assert [w.filename for w in said if "shifted against" in str(w.message)] == [__file__]  # the caller's line
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(np.clip(fib_stack((0.0, 0.0), 20.0), 0, 255).astype(np.uint8), spacing=(1.0, 1.0, 1.0))
    assert not any("shifted against" in str(w.message) for w in caught)
    path = tmp_path / "unaligned.tif"
    tifffile.imwrite(path, stack)
    assert cli.main(["inspect", str(path)]) == 0
    assert "  ALIGNMENT: " + said_as in capsys.readouterr().out
    assert cli.main(["analyze", str(path), "--out", str(tmp_path / "out"), "--chunk-size", "32", "--workers", "1",
                     "-q"]) == 0
    assert "warning: The slices are shifted against one another" in capsys.readouterr().err


# --- the slices aligned (slice_shifts, load_volume's align) ------------------------------------------------------


def _true_offsets(drift, n=64):
    return np.array([[drift[0] * k, drift[1] * k] for k in range(n)])


@pytest.mark.parametrize("drift, noise, most", [((0.0, 0.0), 20.0, 1.5), ((0.7, -1.3), 20.0, 1.5),
                                                ((0.7, -1.3), 80.0, 2.5), ((0.3, 0.3), 80.0, 2.5)])
def test_slice_shifts_follow_the_drift(drift, noise, most):
    """Each plane's offset within ``most`` pixels of where its content lies, over the planes that hold structure
    (the first four are the separator's noise: the typical step is taken there, so the frame is the structure's
    first plane; bench/RESULTS.md alignment: 0.8-2.4 pixels, the registration's error summed along z)."""
    v = fib_stack(drift, noise)
    off = np.array(slice_shifts(v))
    assert off.shape == (64, 2) and off.dtype.kind == "i" and tuple(off[0]) == (0, 0)
    err = (off - _true_offsets(drift))[4:]
    assert np.abs(err - np.median(err, axis=0)).max() <= most


def test_slice_shifts_of_whole_pixel_jumps_are_exact():
    """One plane's structure in every slice, each cut where a random walk of whole pixels put it (a stage that
    jumps), fresh noise on each: every offset found, to the pixel."""
    g = demo_electrode("cycled-5C", rng=3, shape=(64, 128, 128)).greyscale[32].astype(np.float64)
    walk = np.cumsum(np.random.default_rng(1).integers(-3, 4, (32, 2)), axis=0)
    walk -= walk[0]
    m = int(np.abs(walk).max()) + 2
    field = np.pad(g, m, mode="reflect")
    noise = np.random.default_rng(2).normal(0, 0.1 * g.std(), (32, 128, 128))
    stack = np.stack([field[m - walk[k, 0]:m - walk[k, 0] + 128, m - walk[k, 1]:m - walk[k, 1] + 128]
                      for k in range(32)]) + noise
    np.testing.assert_array_equal(np.array(slice_shifts(stack)), walk)


def test_slice_shifts_progress_edges_and_constant_planes():
    calls = []
    v = fib_stack((0.0, 0.0), 5.0)[:10]
    slice_shifts(v, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(k, 9) for k in range(1, 10)]
    assert slice_shifts(np.ones((5, 16, 16))) == [(0, 0)] * 5  # nothing to register: no step
    assert aligned_message([(0, 0), (1, -2), (1, -2), (3, 0)]) == (
        "The 4 slices were aligned: each shifted back by its offset (the offsets spread over 3 pixel(s) along y and 2 "
        "along x; 2 of 3 steps between neighbouring slices moved), and only the region all slices share is kept (3 "
        "row(s) and 2 column(s) fewer).")
    with pytest.raises(ValueError, match="at least 2 z planes"):
        slice_shifts(np.ones((1, 16, 16)))


def test_a_stack_read_aligned_is_aligned(tmp_path):
    """Read with its offsets (whole-volume and box by box: the same voxels), the drifting stack's planes line up
    (aligned again, the offsets spread over 5 pixels at most, the two alignments' errors, against 35 or more
    before); the analysis of the aligned stack is not warned (whole pixels leave a jitter of up to half a pixel
    that the reading, on 12 pairs, would take for a shift)."""
    import tifffile
    import warnings

    from core.chunked import open_lazy
    from core.io import load_volume
    from core.pipeline import run

    stack = np.clip(fib_stack((0.7, -0.6), 20.0), 0, 255).astype(np.uint8)  # 0.92 pixel a slice
    path = tmp_path / "unaligned.tif"
    tifffile.imwrite(path, stack)
    off = slice_shifts(stack)
    v = load_volume(path, align=off)
    span = np.ptp(np.array(off), axis=0)
    assert v.data.shape == (64, 128 - span[0], 128 - span[1])
    assert v.metadata["align"]["span_px"] == [int(s) for s in span] and v.metadata["shape_unaligned"] == [64, 128, 128]
    lazy = open_lazy(path, align=off, chunks=(16, 32, 32))
    np.testing.assert_array_equal(np.asarray(lazy.data), v.data)
    np.testing.assert_array_equal(np.asarray(lazy.reader[10:20, 5:30, 7:40]), v.data[10:20, 5:30, 7:40])
    assert alignment_reading(stack)["step_px"] > 0.85
    again = np.array(slice_shifts(v.data))  # what is left to align: no drift, the offsets' error alone
    assert np.ptp(again, axis=0).max() <= 5 and np.ptp(np.array(off), axis=0).min() >= 35
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(v.data, spacing=0.4, aligned=True)
    assert not any("shifted against" in str(w.message) for w in caught)


def test_an_input_with_its_alignment_round_trips_and_reads_aligned(tmp_path):
    """The offsets are a file input's: in its JSON form (a recipe's), in a workspace row's options, in its
    description; opened, the volume is the aligned one and its info says so."""
    import tifffile

    from core.inputs import FileInput, input_from_dict, input_from_source, input_to_dict, open_input, source_options

    stack = np.clip(fib_stack((0.7, -1.3), 20.0), 0, 255).astype(np.uint8)
    path = tmp_path / "unaligned.tif"
    tifffile.imwrite(path, stack)
    off = slice_shifts(stack)
    spec = FileInput(path=path, crop=[[0, 64], [0, 128], [0, 128]], align=off)
    assert input_from_dict(input_to_dict(spec)) == spec
    assert input_to_dict(spec)["align"] == [list(p) for p in off]
    assert input_from_source(str(path), source_options(spec)) == spec
    assert spec.describe().endswith("(its 64 slices aligned)")
    opened = open_input(spec)
    span = np.ptp(np.array(off), axis=0)
    assert opened.volume.shape == (64, 128 - span[0], 128 - span[1])
    assert opened.info["align"]["offsets"] == [list(p) for p in off]
    assert opened.info["shape_unaligned"] == [64, 128, 128]


@pytest.mark.parametrize("align, message", [
    ([[0, 0]] * 3, "the alignment holds 3 slice offsets but unaligned.tif has 64 z planes as read"),
    ([[0, 0]] * 63 + [[200, 0]], "spread over more than the 128 × 128 pixels of unaligned.tif's planes"),
    ("0,0", "align must be one (dy, dx) pair of whole pixels a z plane"),
    ([[0.5, 0]] * 64, "align must be one (dy, dx) pair of whole pixels a z plane"),
    ([], "align must hold one (dy, dx) pair a z plane, got none"),
])
def test_a_wrong_alignment_is_refused_in_one_sentence(tmp_path, align, message):
    import tifffile

    from core.inputs import InputError, input_from_dict, open_input
    from core.io import InputFileError

    path = tmp_path / "unaligned.tif"
    tifffile.imwrite(path, np.zeros((64, 128, 128), np.uint8))
    with pytest.raises((InputError, InputFileError)) as err:
        open_input(input_from_dict({"path": str(path), "align": align}))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_cli_aligns_on_request_and_its_recipe_replays_the_offsets(tmp_path, capsys):
    """``--align``: said on stderr, the offsets in run.json and in the recipe, which replays to the same table
    without measuring again; no warning of shifted slices; a single image refused in one sentence, nothing
    written."""
    import json

    import pandas as pd
    import tifffile

    from core import cli

    stack = np.clip(fib_stack((0.7, -1.3), 20.0), 0, 255).astype(np.uint8)
    path = tmp_path / "unaligned.tif"
    tifffile.imwrite(path, stack)
    out, recipe = tmp_path / "out", tmp_path / "recipe.json"
    assert cli.main(["analyze", str(path), "--out", str(out), "--spacing", "0.4", "--align", "--recipe",
                     str(recipe)]) == 0
    err = capsys.readouterr().err
    assert "note: The 64 slices were aligned: each shifted back by its offset" in err
    assert "shifted against one another" not in err
    off = [list(p) for p in slice_shifts(stack)]
    assert json.loads((out / "run.json").read_text())["input"]["align"]["offsets"] == off
    assert json.loads(recipe.read_text())["analyses"][0]["input"]["align"] == off
    assert cli.main(["run", str(recipe), "--out", str(tmp_path / "replay"), "-q"]) == 0
    name = json.loads(recipe.read_text())["analyses"][0]["name"]
    pd.testing.assert_frame_equal(pd.read_csv(out / "particles.csv"),
                                  pd.read_csv(tmp_path / "replay" / name / "particles.csv"))
    capsys.readouterr()
    assert cli.main(["inspect", str(path), "--align", "-q"]) == 0
    said = capsys.readouterr().out
    assert "  ALIGNED: The 64 slices were aligned" in said and "ALIGNMENT" not in said
    single = tmp_path / "single.tif"
    tifffile.imwrite(single, stack[0])
    assert cli.main(["analyze", str(single), "--out", str(tmp_path / "no"), "--align", "-q"]) == 2
    said = capsys.readouterr().err.strip().splitlines()
    assert said[-1] == "error: --align: single.tif has 1 z plane as read; aligning slices needs 2 or more."
    assert not (tmp_path / "no").exists()


def test_the_chunked_engine_reads_the_stack_aligned(tmp_path, capsys):
    """``--align`` with the chunked engine: its boxes read aligned (the phases of the region all slices share), the
    offsets in run.json, no warning of shifted slices."""
    import json

    import tifffile
    import zarr

    from core import cli

    path = tmp_path / "unaligned.tif"
    tifffile.imwrite(path, np.clip(fib_stack((0.7, -0.6), 20.0), 0, 255).astype(np.uint8))
    assert cli.main(["analyze", str(path), "--out", str(tmp_path / "chunked"), "--spacing", "0.4", "--align",
                     "--chunk-size", "32", "--workers", "1", "-q"]) == 0
    assert "shifted against" not in capsys.readouterr().err
    run = json.loads((tmp_path / "chunked" / "run.json").read_text())
    off = [list(p) for p in slice_shifts(tifffile.imread(path))]
    assert run["input"]["align"]["offsets"] == off and run["input"]["shape_unaligned"] == [64, 128, 128]
    span = np.ptp(np.array(off), axis=0)
    assert zarr.open_array(str(tmp_path / "chunked" / "phases.zarr" / "0"), mode="r").shape == \
        (64, 128 - span[0], 128 - span[1])
