"""A brightness drift along z (:mod:`core.phases.shading`): read from the pure phases' grey values, flattened."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from core.phases import SHADING_WARN, SegmentParams, flatten_shading, shading_message, shading_reading
from core.synth import demo_electrode

OFFSET = 0.1 * 65535  # core.synth's grey value of zero attenuation


@pytest.fixture(scope="module")
def electrode():
    return demo_electrode("cycled-1C", rng=2, shape=(64, 64, 64))


def _drifted(g, amount):
    """``g`` with a gain changing linearly along z by ``amount`` (±amount/2 about 1), about zero attenuation."""
    gain = 1 + amount * np.linspace(-0.5, 0.5, g.shape[0])[:, None, None]
    return np.clip((g.astype(np.float32) - OFFSET) * gain + OFFSET, 0, 65535).astype(g.dtype)


def test_a_steady_scan_reads_no_drift(electrode):
    r = shading_reading(electrode.greyscale)
    assert r is not None and r["drift"] < 0.05 and not r["warn"]
    assert shading_message(r) is None
    assert len(r["z"]) == len(r["pore"]) == len(r["nmc"]) == 8


def test_a_gain_drift_is_read_at_its_size_and_worded(electrode):
    r = shading_reading(_drifted(electrode.greyscale, 0.3))
    # the NMC level moves by 0.3 of its distance to zero attenuation, a little more than the pore-NMC contrast
    assert 0.22 < r["drift"] < 0.4 and r["warn"]
    text = shading_message(r)
    assert "pure NMC grey value" in text and f"{r['drift']:.0%}" in text and "--flatten-shading" in text
    assert "One pair of thresholds then reads" in text
    # worded for the method: the network is flattened as thresholds are; a classifier trained on slices is not
    assert "The 3D U-Net, which scales the whole volume by one pair of grey values, then reads" in shading_message(
        r, "model") and "Flatten the drift before segmenting" in shading_message(r, "model")
    clf = shading_message(r, "classifier")
    assert "scales each z-slice by its own grey values" in clf and "Flatten the drift" not in clf
    # below the warning's share: read, not worded
    small = shading_reading(_drifted(electrode.greyscale, 0.06))
    assert 0.02 < small["drift"] < SHADING_WARN and shading_message(small) is None


def test_more_of_a_phase_along_z_is_not_a_drift():
    # pure phases with noise; NMC's share falls from 70 % to 20 % of the slices along z, pore's grows
    rng = np.random.default_rng(0)
    nz = 48
    share = np.linspace(0.7, 0.2, nz)
    u = rng.random((nz, 64, 64))
    codes = np.where(u < share[:, None, None], 2, np.where(u < share[:, None, None] + 0.15, 1, 0))
    from scipy import ndimage as ndi

    codes = ndi.median_filter(codes, size=3)  # phases in patches, with insides to read
    grey = np.array([100.0, 300.0, 700.0])[codes] + rng.normal(0, 20, codes.shape)
    r = shading_reading(grey.astype(np.float32))
    assert r["drift"] < 0.05 and not r["warn"]


def test_flattening_removes_the_drift_and_keeps_the_type(electrode):
    g = _drifted(electrode.greyscale, 0.3)
    flat = flatten_shading(g, shading_reading(g))
    assert flat.dtype == g.dtype and flat.shape == g.shape
    assert shading_reading(flat)["drift"] < 0.03
    # an undrifted scan barely moves: mean change under 1 % of the pore-NMC contrast
    steady = electrode.greyscale
    r = shading_reading(steady)
    moved = np.abs(flatten_shading(steady, r).astype(np.float64) - steady).mean()
    assert moved < 0.01 * r["contrast"]


def test_thin_volumes_and_bad_readings(electrode):
    assert shading_reading(electrode.greyscale[:17]) is None  # fewer than three slabs of six slices
    bad = {"z": [0.0, 10.0], "pore": [5.0, np.nan], "nmc": [9.0, 9.0]}
    with pytest.raises(ValueError, match="fewer than two slabs"):
        flatten_shading(electrode.greyscale[:20], bad)
    with pytest.raises(ValueError, match="no brighter"):
        flatten_shading(electrode.greyscale[:20], {"z": [0.0, 10.0], "pore": [5.0, 5.0], "nmc": [9.0, 4.0]})


def test_non_finite_voxels_are_read_around(electrode):
    g = _drifted(electrode.greyscale, 0.3).astype(np.float32)
    g[3, 5, 5] = np.nan
    g[40, 7, 9] = np.inf
    assert shading_reading(g)["warn"]


def test_the_analysis_warns_records_and_flattens(electrode):
    from core.pipeline import AnalysisParams, run

    g = _drifted(electrode.greyscale, 0.3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drifted = run(g, spacing=electrode.spacing)
    assert any("drift along z" in str(w.message) for w in caught)
    assert drifted.provenance["shading"]["warn"] and not drifted.provenance["shading"]["flattened"]
    params = AnalysisParams(segment=SegmentParams(flatten=True))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flat = run(g, params, spacing=electrode.spacing)
    assert not any("drift along z" in str(w.message) for w in caught)
    assert flat.provenance["shading"]["flattened"] and flat.params.segment.flatten
    steady = run(electrode.greyscale, spacing=electrode.spacing)
    # the input's checksum is the file's, not the flattened copy's
    from core.pipeline import checksum

    assert flat.provenance["input_checksum"] == checksum(g)
    # flattened, the drifted scan's phases agree with the steady scan's as well as the steady scan's own run
    agree = np.mean(flat.phases == steady.phases)
    assert agree > 0.97 > np.mean(drifted.phases == steady.phases) + 0.02


def test_flatten_in_parameters_only_when_set():
    from core.pipeline import AnalysisParams

    assert "flatten" not in AnalysisParams().to_dict()["segment"]  # earlier recipes and records read as before
    on = AnalysisParams(segment=SegmentParams(flatten=True))
    assert on.to_dict()["segment"]["flatten"] is True
    assert AnalysisParams.from_dict(on.to_dict()) == on
    assert AnalysisParams.from_dict(AnalysisParams().to_dict()).segment.flatten is False
    with pytest.raises(TypeError):
        SegmentParams(flatten="yes")


def test_flatten_is_refused_where_it_does_not_apply(electrode):
    from core.pipeline import AnalysisParams, run

    with pytest.raises(ValueError, match="at least 18 slices"):
        run(electrode.greyscale[:12], AnalysisParams(segment=SegmentParams(flatten=True)), spacing=0.4)
    with pytest.raises(ValueError, match="applies to the threshold and model methods, not 'classifier'"):
        from core.pipeline import _flattened

        _flattened(electrode.greyscale, shading_reading(electrode.greyscale),
                   AnalysisParams(method="classifier", classifier="clf"))


def test_the_network_reads_the_flattened_volume(electrode):
    """The 3D U-Net scales the whole volume by one pair of percentiles: a drift moves its phases (the same
    material read differently at the two ends), flattening brings them back to the steady scan's."""
    from core.nn.infer import segment_volume
    from core.nn.params import ModelParams
    from core.pipeline import AnalysisParams, run

    g = _drifted(electrode.greyscale, 0.3)
    steady = segment_volume(electrode.greyscale, ModelParams()).phases
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drifted = run(g, AnalysisParams(method="model", particles="model"), spacing=electrode.spacing)
    assert any("The 3D U-Net, which scales" in str(w.message) for w in caught)
    flat = run(g, AnalysisParams(method="model", particles="model", segment=SegmentParams(flatten=True)),
               spacing=electrode.spacing)
    assert flat.provenance["shading"]["flattened"] and flat.params.segment.flatten
    assert AnalysisParams.from_dict(flat.params.to_dict()) == flat.params
    # the phases as the network reads the steady scan, at the ends of the stack most
    ends = np.r_[0:12, 52:64]
    agree_flat, agree_drift = (np.mean(p[ends] == steady[ends]) for p in (flat.phases, drifted.phases))
    assert agree_flat > 0.97 and agree_flat > agree_drift + 0.02, (agree_flat, agree_drift)


def test_chunks_flattened_as_the_whole_volume(electrode):
    """segment_chunked with flatten: the same phases as the whole volume flattened and segmented, the chunks cut
    across the slabs; a lazily read volume flattened box by box gives the same voxels."""
    import dask

    from core.chunked import LazyArray, flattened_array, segment_chunked
    from core.phases import segment_detailed

    g = _drifted(electrode.greyscale, 0.3)
    reading = shading_reading(g)
    params = SegmentParams(flatten=True)
    whole = segment_detailed(flatten_shading(g, reading), params)
    with dask.config.set(scheduler="sync"):
        seg = segment_chunked(g, params, chunks=24, shading=reading)
        got = seg.phases.compute()
    assert np.array_equal(got, whole.phases), f"{int((got != whole.phases).sum())} voxels differ"
    assert (seg.params.low, seg.params.high) == (whole.params.low, whole.params.high)
    with pytest.raises(ValueError, match="needs the volume's shading reading"):
        segment_chunked(g, params, chunks=24)
    lazy = flattened_array(LazyArray(g), reading)
    np.testing.assert_array_equal(lazy[5:30, 7:50, :], flatten_shading(g, reading)[5:30, 7:50, :])


def test_cli_flatten_shading(electrode, tmp_path):
    from core.io import save_tiff

    save_tiff(tmp_path / "v.tif", _drifted(electrode.greyscale, 0.3), electrode.spacing)
    plain = subprocess.run([sys.executable, "-m", "core", "analyze", str(tmp_path / "v.tif"), "--out",
                            str(tmp_path / "a"), "-q"], capture_output=True, text=True)
    assert plain.returncode == 0 and "drift along z" in plain.stderr
    flat = subprocess.run([sys.executable, "-m", "core", "analyze", str(tmp_path / "v.tif"), "--out",
                           str(tmp_path / "b"), "-q", "--flatten-shading"], capture_output=True, text=True)
    assert flat.returncode == 0 and "drift along z" not in flat.stderr
    record = json.loads((tmp_path / "b" / "run.json").read_text())
    assert record["params"]["segment"]["flatten"] is True and record["provenance"]["shading"]["flattened"]
    assert "flatten" not in json.loads((tmp_path / "a" / "run.json").read_text())["params"]["segment"]


def test_inspect_reads_the_drift(electrode, tmp_path, capsys):
    from core import cli
    from core.io import save_tiff

    save_tiff(tmp_path / "d.tif", _drifted(electrode.greyscale, 0.3), electrode.spacing)
    save_tiff(tmp_path / "s.tif", electrode.greyscale, electrode.spacing)
    assert cli.main(["inspect", str(tmp_path / "d.tif")]) == 0
    text = capsys.readouterr().out
    assert "WARNING: The grey values drift along z" in text
    assert cli.main(["inspect", str(tmp_path / "s.tif"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert not info["shading"]["warn"] and info["shading"]["warning"] is None and info["shading"]["drift"] < 0.05
    assert cli.main(["inspect", str(tmp_path / "s.tif")]) == 0
    assert "no drift to flatten" in capsys.readouterr().out


def test_cli_chunked_engine_flattens(electrode, tmp_path, sync_cluster):
    from core.io import load_volume, save_tiff

    save_tiff(tmp_path / "v.tif", _drifted(electrode.greyscale, 0.3), electrode.spacing)
    from core import cli

    assert cli.main(["analyze", str(tmp_path / "v.tif"), "--out", str(tmp_path / "c"), "-q", "--chunk-size", "32",
                     "--workers", "1", "--flatten-shading"]) == 0
    assert cli.main(["analyze", str(tmp_path / "v.tif"), "--out", str(tmp_path / "w"), "-q", "--flatten-shading"]) == 0
    run = json.loads((tmp_path / "c" / "run.json").read_text())
    assert run["provenance"]["shading"]["flattened"] and not any("drift along z" in w for w in run["warnings"])
    import dask.array as da

    chunked = np.asarray(da.from_zarr(str(tmp_path / "c" / "phases.zarr" / "0")).compute())
    assert chunked.shape == (64, 64, 64)
    whole = load_volume(tmp_path / "w" / "phases.tif").data
    # the islands pass and the refinement the whole-volume engine adds may move a few voxels; the flattening not
    assert np.mean(chunked == whole) > 0.99
    assert cli.main(["analyze", str(tmp_path / "v.tif"), "--out", str(tmp_path / "d"), "-q", "--chunk-size", "32",
                     "--workers", "1"]) == 0
    assert any("drift along z" in w for w in json.loads((tmp_path / "d" / "run.json").read_text())["warnings"])


def test_a_recipe_of_a_flattened_analysis_replays_identically(electrode, tmp_path):
    from core import cli
    from core.io import save_tiff

    save_tiff(tmp_path / "v.tif", _drifted(electrode.greyscale, 0.3), electrode.spacing)
    assert cli.main(["analyze", str(tmp_path / "v.tif"), "--out", str(tmp_path / "a"), "-q", "--flatten-shading",
                     "--recipe", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["analyses"][0]["params"]["segment"]["flatten"] is True
    assert cli.main(["run", str(tmp_path / "r.json"), "--out", str(tmp_path / "R"), "-q"]) == 0
    [replayed] = [p for p in (tmp_path / "R").iterdir() if p.is_dir()]
    assert (replayed / "particles.csv").read_bytes() == (tmp_path / "a" / "particles.csv").read_bytes()


def test_a_fill_is_no_phase_and_stays_one_value():
    """Corners outside a circular field of view, written as 0, in a drifting scan: read as no phase (the drift as
    without the fill), left as 0 by the flattening, so that the analysis still finds the fill and leaves it out."""
    from core.pipeline import AnalysisParams, run

    e = demo_electrode("cycled-1C", rng=2, shape=(48, 96, 96))
    g = _drifted(e.greyscale, 0.3)
    yy, xx = np.mgrid[:96, :96]
    corners = (yy - 47.5) ** 2 + (xx - 47.5) ** 2 > 48 ** 2
    f = g.copy()
    f[:, corners] = 0
    clean, read = shading_reading(g), shading_reading(f, exclude=0)
    assert abs(read["drift"] - clean["drift"]) < 0.04 and np.nanmin(read["pore"]) > 0  # 0.297 against 0.267
    assert np.nanmin(shading_reading(f)["pore"]) == 0  # not left out, the fill is read as the pure pore
    flat = flatten_shading(f, read, keep=0)
    assert (flat[:, corners] == 0).all() and not (flat[:, ~corners] == 0).any()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = run(f, AnalysisParams(segment=SegmentParams(flatten=True)), spacing=e.spacing)
    assert r.provenance["fill"]["value"] == 0 and abs(r.provenance["shading"]["drift"] - clean["drift"]) < 0.04
    assert any("reconstructed region" in str(w.message) for w in caught)


def test_cli_segment_flattens_thresholds_and_the_network_and_refuses_a_classifier(electrode, tmp_path):
    from core import cli
    from core.io import load_volume, save_tiff

    g = _drifted(electrode.greyscale, 0.3)
    save_tiff(tmp_path / "v.tif", g, electrode.spacing)
    plain = subprocess.run([sys.executable, "-m", "core", "segment", str(tmp_path / "v.tif"), "--out",
                            str(tmp_path / "p")], capture_output=True, text=True)
    assert plain.returncode == 0 and "drift along z" in plain.stderr
    flat = subprocess.run([sys.executable, "-m", "core", "segment", str(tmp_path / "v.tif"), "--out",
                           str(tmp_path / "f"), "--flatten-shading"], capture_output=True, text=True)
    assert flat.returncode == 0 and "drift along z" not in flat.stderr and "flattened along z" in flat.stderr
    from core.phases import segment_detailed

    want = segment_detailed(flatten_shading(g, shading_reading(g)), SegmentParams(flatten=True)).phases
    np.testing.assert_array_equal(load_volume(tmp_path / "f" / "phases.tif").data, want)
    # the network flattened as the pipeline flattens it; a classifier refused, in one sentence, nothing written
    model = subprocess.run([sys.executable, "-m", "core", "segment", str(tmp_path / "v.tif"), "--out",
                            str(tmp_path / "m"), "--method", "model", "--flatten-shading"], capture_output=True,
                           text=True)
    assert model.returncode == 0 and "drift along z" not in model.stderr, model.stderr
    assert "3D U-Net (default weights) (on the volume flattened along z)" in model.stderr
    from core.nn.infer import segment_volume
    from core.nn.params import ModelParams

    np.testing.assert_array_equal(load_volume(tmp_path / "m" / "phases.tif").data,
                                  segment_volume(flatten_shading(g, shading_reading(g)), ModelParams()).phases)
    for command in ("segment", "analyze"):
        done = subprocess.run([sys.executable, "-m", "core", command, str(tmp_path / "v.tif"), "--out",
                               str(tmp_path / f"c{command}"), "--method", "classifier", "--classifier",
                               str(tmp_path / "nowhere"), "--flatten-shading"], capture_output=True, text=True)
        assert done.returncode == cli.EXIT_BAD_INPUT and not (tmp_path / f"c{command}").exists()
        assert done.stderr.count("\n") == 1 and "applies to --method threshold and model, not classifier" in done.stderr


def test_slabs_all_fill_are_not_read(electrode):
    """A stack whose first slices are all fill (padding to a bigger box): those slabs read nothing, the rest as
    without them."""
    g = electrode.greyscale.copy()
    g[:12] = 0
    r = shading_reading(g, exclude=0)
    assert np.isnan(r["nmc"][0]) and np.isnan(r["pore"][0]) and np.isfinite(r["nmc"][-1])
    assert r["drift"] < SHADING_WARN
