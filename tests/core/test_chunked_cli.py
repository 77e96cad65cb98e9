"""``python -m core analyze --chunk-size N`` and ``run --workers K``: the chunked engine from the command line."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest

from core import cli
from core.chunked import particle_halo
from core.io import load_volume
from core.metrics import COLUMNS, particle_table
from core.recipe import read_recipe

CHUNKED_FILES = ("labels.zarr", "particles.csv", "particles.parquet", "phases.zarr", "run.json")




def _zarr(path):
    return np.asarray(da.from_zarr(str(path / "0")).compute())


def test_analyze_chunked_writes_the_outputs_and_a_recipe_that_replays(demo_tif_40, tmp_path, sync_cluster, capsys):
    out, recipe = tmp_path / "o", tmp_path / "r.json"
    assert cli.main(["analyze", str(demo_tif_40), "--out", str(out), "--chunk-size", "20", "--workers", "2",
                     "--recipe", str(recipe)]) == 0
    err = capsys.readouterr().err
    assert "chunked engine" in err and "particles ->" in err  # progress lines
    assert sorted(p.name for p in out.iterdir()) == sorted(CHUNKED_FILES)
    # the phases equal the whole-volume engine's
    whole = tmp_path / "w"
    assert cli.main(["analyze", str(demo_tif_40), "--out", str(whole), "-q"]) == 0
    phases, labels = _zarr(out / "phases.zarr"), _zarr(out / "labels.zarr")
    assert np.array_equal(phases, load_volume(whole / "phases.tif").data)
    # the table is the particle table of the labels written
    run = json.loads((out / "run.json").read_text())
    ch = run["provenance"]["chunking"]
    assert run["provenance"]["engine"] == "chunked" and set(ch) == {"chunk_size", "halo", "wide_halo", "beyond_halo",
                                                                     "widened", "max_diameter_um"}
    # the second try's halo: twice the halo (within the memory of the local cluster's windows)
    assert ch["halo"] <= ch["wide_halo"] <= 2 * ch["halo"] and ch["beyond_halo"] >= 0 and ch["widened"] >= 0
    # the halo from the largest particle, estimated from the phases
    assert ch["chunk_size"] == 20 and ch["halo"] == max(4, particle_halo(ch["max_diameter_um"], run["provenance"]["spacing_um"]))
    table = __import__("pandas").read_parquet(out / "particles.parquet")
    ref = particle_table(labels, phases, run["provenance"]["spacing_um"], separator_side=run["params"]["separator_side"])
    assert list(table.columns) == list(COLUMNS) and len(table) == len(ref) > 5
    for col in ("n_voxels", "volume_um3", "area_cbd_um2", "area_pore_um2", "detachment", "sphericity"):
        np.testing.assert_allclose(table[col].to_numpy(float), ref[col].to_numpy(float), rtol=1e-9, equal_nan=True)
    # the recipe records the chunking and replays to the same table
    entry = read_recipe(recipe).analyses[0]
    assert entry.chunking == ch
    assert cli.main(["run", str(recipe), "--out", str(tmp_path / "replay"), "-q"]) == 0
    replayed = tmp_path / "replay" / entry.folder
    assert (replayed / "particles.csv").read_bytes() == (out / "particles.csv").read_bytes()
    assert json.loads((replayed / "provenance.json").read_text())["provenance"]["engine"] == "chunked"
    # --overwrite replaces a folder of chunked results (its Zarr stores are the tool's own), but not a foreign file
    (out / "phases.zarr" / "notes.txt").write_text("mine")
    assert cli.main(["analyze", str(demo_tif_40), "--out", str(out), "--chunk-size", "20", "--overwrite", "-q"]) == 2
    assert "phases.zarr/notes.txt" in capsys.readouterr().err
    (out / "phases.zarr" / "notes.txt").unlink()
    assert cli.main(["analyze", str(demo_tif_40), "--out", str(out), "--chunk-size", "20", "--overwrite", "-q"]) == 0
    assert (out / "particles.csv").read_bytes() == (replayed / "particles.csv").read_bytes()
    # a recipe written before the second try (no "wide_halo") replays without it, as it ran
    old = json.loads(recipe.read_text())
    for a in old["analyses"]:
        a["chunking"].pop("wide_halo"), a["chunking"].pop("widened")
    recipe.write_text(json.dumps(old))
    assert cli.main(["run", str(recipe), "--out", str(tmp_path / "old"), "-q"]) == 0
    prov = json.loads((tmp_path / "old" / entry.folder / "provenance.json").read_text())["provenance"]
    assert prov["chunking"]["wide_halo"] == prov["chunking"]["halo"] == ch["halo"]


def test_a_chunked_run_refuses_an_input_whose_checksum_differs(demo_tif_40, tmp_path, sync_cluster):
    from core.chunked.analysis import analyze_chunked
    from core.inputs import FileInput
    from core.recipe import ChecksumMismatch

    with pytest.raises(ChecksumMismatch, match="the data changed"):
        analyze_chunked(FileInput(demo_tif_40), out=tmp_path, chunk_size=20, verify_checksum="0" * 32)
    assert not (tmp_path / "phases.zarr").exists()  # refused before any chunk was segmented


def test_the_memory_rule_picks_the_chunked_engine(demo_tif_40, tmp_path, sync_cluster, monkeypatch, capsys):
    import core.memory as M

    real = M.estimate_peak_bytes
    monkeypatch.setattr(M, "estimate_peak_bytes", lambda *a, **k: 1 << 50)  # the whole volume would not fit
    assert cli.main(["analyze", str(demo_tif_40), "--out", str(tmp_path / "o")]) == 0
    assert "would not fit in memory; running the chunked engine" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == sorted(CHUNKED_FILES)
    monkeypatch.setattr(M, "estimate_peak_bytes", real)
    assert cli.main(["analyze", str(demo_tif_40), "--out", str(tmp_path / "w"), "-q"]) == 0  # fits: as before
    assert (tmp_path / "w" / "phases.tif").is_file() and not (tmp_path / "w" / "phases.zarr").exists()


def test_an_estimated_halo_is_cut_to_the_memory_available_with_a_warning(demo_tif_40, tmp_path, sync_cluster, monkeypatch,
                                                                         capsys):
    from core.chunked.particles import MIN_HALO
    from core.memory import BUDGET_ENV, chunked_peak_bytes

    assert cli.main(["analyze", str(demo_tif_40), "--out", str(tmp_path / "a"), "--chunk-size", "20", "--workers", "1",
                     "-q"]) == 0
    free = json.loads((tmp_path / "a" / "run.json").read_text())["provenance"]["chunking"]
    assert free["halo"] > MIN_HALO + 1  # the demo's particles need more than the smallest halo
    cap = MIN_HALO + 1
    import core.memory as M

    # at 20-voxel chunks the phase pass's window (a 34-voxel halo) would dominate the budget; without it the
    # particle windows alone set the largest halo that fits
    monkeypatch.setattr(M, "_CHUNK_PHASE_HALO", 0)
    monkeypatch.setenv(BUDGET_ENV, str(chunked_peak_bytes(20, cap, 1)))
    assert cli.main(["analyze", str(demo_tif_40), "--out", str(tmp_path / "b"), "--chunk-size", "20", "--workers", "1"]) == 0
    err = capsys.readouterr().err
    assert f"needs a halo of {free['halo']} voxels" in err and f"the halo is cut to {cap} voxels" in err
    cut = json.loads((tmp_path / "b" / "run.json").read_text())["provenance"]["chunking"]
    assert cut["halo"] == cap
    # a diameter given on the command line is used as it is
    assert cli.main(["analyze", str(demo_tif_40), "--out", str(tmp_path / "c"), "--chunk-size", "20", "--workers", "1",
                     "--max-diameter", "8", "-q"]) == 0
    prov = json.loads((tmp_path / "c" / "run.json").read_text())["provenance"]
    assert prov["chunking"]["halo"] == particle_halo(8, prov["spacing_um"])


def test_on_a_cluster_by_address_the_halo_is_cut_to_its_workers_memory_limit(demo_tif_40, tmp_path, sync_cluster,
                                                                             monkeypatch, capsys):
    import core.chunked.analysis as A
    import core.memory as M
    from core.chunked.particles import MIN_HALO
    from core.memory import chunked_peak_bytes

    assert cli.main(["analyze", str(demo_tif_40), "--out", str(tmp_path / "a"), "--chunk-size", "20", "--workers", "1",
                     "-q"]) == 0
    free = json.loads((tmp_path / "a" / "run.json").read_text())["provenance"]["chunking"]
    cap = MIN_HALO + 1
    assert free["halo"] > cap
    monkeypatch.setattr(M, "_CHUNK_PHASE_HALO", 0)  # (as above: the particle windows alone set the cap)
    # one worker's limit: its process base and one window of that halo (the scheduler and client run elsewhere)
    limit = chunked_peak_bytes(20, cap, 1) - 2 * M._CHUNK_PROCESS_BASE
    asked = []
    monkeypatch.setattr(A, "cluster_worker_memory", lambda address, **kw: asked.append(address) or limit)
    assert cli.main(["analyze", str(demo_tif_40), "--out", str(tmp_path / "b"), "--chunk-size", "20",
                     "--scheduler", "tcp://cluster:8786"]) == 0
    assert asked == ["tcp://cluster:8786"]
    err = capsys.readouterr().err
    assert f"needs a halo of {free['halo']} voxels" in err and "the workers' memory limit" in err
    assert f"the halo is cut to {cap} voxels" in err
    ch = json.loads((tmp_path / "b" / "run.json").read_text())["provenance"]["chunking"]
    assert ch["halo"] == ch["wide_halo"] == cap  # the second try's wider window would not fit either
    # unknown limit (no worker reports one): the halo as estimated, as before
    monkeypatch.setattr(A, "cluster_worker_memory", lambda address, **kw: None)
    assert cli.main(["analyze", str(demo_tif_40), "--out", str(tmp_path / "c"), "--chunk-size", "20",
                     "--scheduler", "tcp://cluster:8786", "-q"]) == 0
    assert json.loads((tmp_path / "c" / "run.json").read_text())["provenance"]["chunking"]["halo"] == free["halo"]


def test_worker_memory_is_checked(demo_tif_40, tmp_path):
    from core.chunked.analysis import analyze_chunked
    from core.inputs import FileInput

    for bad in (0, -5, 1.5, True, "4GB"):
        with pytest.raises(ValueError, match="worker_memory must be a whole number of bytes"):
            analyze_chunked(FileInput(demo_tif_40), out=tmp_path, chunk_size=20, worker_memory=bad)
    with pytest.raises(ValueError, match="applies to a cluster by address"):
        analyze_chunked(FileInput(demo_tif_40), out=tmp_path, chunk_size=20, worker_memory=2**30, local_workers=2)


def test_the_memory_rule(monkeypatch):
    import core.memory as M

    monkeypatch.setattr(M, "_limits", lambda network=False: [(4 * 2**30, "budget")])
    chunked = M.chunked_peak_bytes(128, 64, 2, 2)
    assert chunked < 4 * 2**30 < M.estimate_peak_bytes((1024,) * 3, np.uint16)
    assert M.needs_chunked_engine((1024,) * 3, np.uint16, workers=2)
    assert not M.needs_chunked_engine((128,) * 3, np.uint16, workers=2)  # fits whole: the whole-volume engine
    monkeypatch.setattr(M, "_limits", lambda network=False: [(chunked - 1, "budget")])
    assert not M.needs_chunked_engine((1024,) * 3, np.uint16, workers=2)  # fits neither: refused as before


@pytest.mark.parametrize("extra, words", [
    (["--chunk-size", "16", "--downsample", "2"], "does not downsample"),
    (["--chunk-size", "16", "--method", "model"], "runs the threshold method"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "existing one"),
    (["--max-diameter", "5"], "use it with --chunk-size"),
    (["--chunk-size", "4"], "chunk-size"),
])
def test_chunked_refusals_are_one_sentence(demo_tif_40, tmp_path, extra, words, capsys):
    assert cli.main(["analyze", str(demo_tif_40), "--out", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and words in err and "\n" not in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_run_with_workers_replays_the_analyses_in_parallel(demo_tif_40, tmp_path):
    """Two analyses of a recipe as tasks of a real 2-worker local cluster: the same files as one after the other."""
    recipe = tmp_path / "r.json"
    assert cli.main(["analyze", str(demo_tif_40), "--out", str(tmp_path / "a"), "--recipe", str(recipe), "-q"]) == 0
    d = json.loads(recipe.read_text())
    second = json.loads(json.dumps(d["analyses"][0]))
    second["name"] = "other"
    second["params"]["separator_side"] = "start" if d["analyses"][0]["params"]["separator_side"] == "end" else "end"
    d["analyses"].append(second)
    recipe.write_text(json.dumps(d))
    assert cli.main(["run", str(recipe), "--out", str(tmp_path / "seq"), "-q"]) == 0
    assert cli.main(["run", str(recipe), "--out", str(tmp_path / "par"), "--workers", "2", "-q"]) == 0
    for name in [a["name"] for a in d["analyses"]]:
        for f in ("particles.csv", "particles.parquet", "recipe.json"):
            assert (tmp_path / "par" / name / f).read_bytes() == (tmp_path / "seq" / name / f).read_bytes()
    assert (tmp_path / "par" / "recipe.json").read_bytes() == (tmp_path / "seq" / "recipe.json").read_bytes()


def test_chunked_analysis_of_a_crop_equals_that_of_the_cropped_file(demo_tif_40, tmp_path, sync_cluster):
    """``--crop`` on the chunked engine reads the box through the file's own source, its chunks starting at the
    box's corner: the same chunks, phases and table as the chunked analysis of a file holding only the box; its
    recipe records the box and replays to the same table."""
    from core.io import save_tiff

    v = load_volume(demo_tif_40)
    save_tiff(tmp_path / "box.tif", np.ascontiguousarray(v.data[3:37, 0:36, 5:40]), v.spacing)
    a, b, recipe = tmp_path / "a", tmp_path / "b", tmp_path / "r.json"
    assert cli.main(["analyze", str(demo_tif_40), "--out", str(a), "--chunk-size", "16", "--workers", "1",
                     "--crop", "3", "37", "0", "36", "5", "40", "--recipe", str(recipe), "-q"]) == 0
    assert cli.main(["analyze", str(tmp_path / "box.tif"), "--out", str(b), "--chunk-size", "16", "--workers", "1",
                     "-q"]) == 0
    assert np.array_equal(_zarr(a / "phases.zarr"), _zarr(b / "phases.zarr"))
    assert (a / "particles.csv").read_bytes() == (b / "particles.csv").read_bytes()
    entry = read_recipe(recipe).analyses[0]
    assert entry.input.crop == ((3, 37), (0, 36), (5, 40))
    assert cli.main(["run", str(recipe), "--out", str(tmp_path / "replay"), "-q"]) == 0
    assert (tmp_path / "replay" / entry.folder / "particles.csv").read_bytes() == (a / "particles.csv").read_bytes()


def test_chunked_engine_warns_of_a_fill_outside_the_field_of_view(demo_tif_40, tmp_path, sync_cluster):
    """The chunked engine reads the fill test's five z planes of its input and warns and records as the whole-volume
    engine does (core.phases.fill_reading)."""
    from core.io import save_tiff

    v = load_volume(demo_tif_40)
    g = v.data.copy()
    yy, xx = np.mgrid[: g.shape[1], : g.shape[2]]
    g[:, (yy - (g.shape[1] - 1) / 2) ** 2 + (xx - (g.shape[2] - 1) / 2) ** 2 > (g.shape[1] / 2) ** 2] = 0
    save_tiff(tmp_path / "fov.tif", g, v.spacing)
    out = tmp_path / "o"
    assert cli.main(["analyze", str(tmp_path / "fov.tif"), "--out", str(out), "--chunk-size", "20", "--workers", "1",
                     "-q"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["provenance"]["fill"]["value"] == 0
    assert any("a fill outside the reconstructed region" in w for w in run["warnings"])


@pytest.mark.parametrize("name", ["scan.nii.gz", "scan.mrc.gz"])
def test_a_compressed_nifti_or_mrc_is_decompressed_once_for_the_chunked_engine(demo_tif_40, tmp_path, sync_cluster,
                                                                               monkeypatch, name):
    """A ``.nii.gz`` / ``.mrc.gz`` read a box at a time would be decompressed from its start for every box and stage:
    the chunked engine decompresses it once into a copy in its output folder (removed at the end) and reads the boxes
    from that; the same phases, table and checksum as the uncompressed file's run."""
    import mrcfile
    import nibabel

    import core.io.mrc as mrc_mod
    import core.io.nifti as nifti_mod

    v = load_volume(demo_tif_40)
    plain = tmp_path / name.removesuffix(".gz")
    if name.endswith(".nii.gz"):
        img = nibabel.Nifti1Image(np.ascontiguousarray(v.data.T), np.diag([*(s / 1000 for s in v.spacing[::-1]), 1]))
        img.header.set_xyzt_units("mm")
        nibabel.save(img, str(plain))
        nibabel.save(img, str(tmp_path / name))
    else:
        for path, compression in ((plain, None), (tmp_path / name, "gzip")):
            with mrcfile.new(str(path), v.data, compression=compression) as m:
                m.voxel_size = tuple(s * 1e4 for s in v.spacing[::-1])
    from_stream = []
    for module, reader in ((nifti_mod, "read_box"), (mrc_mod, "read_mrc_box")):
        original = getattr(module, reader)
        monkeypatch.setattr(module, reader, lambda path, key, _o=original: (
            from_stream.append(path) if str(path).endswith(".gz") else None, _o(path, key))[1])
    a, b = tmp_path / "a", tmp_path / "b"
    for src, out in ((plain, a), (tmp_path / name, b)):
        assert cli.main(["analyze", str(src), "--out", str(out), "--chunk-size", "20", "--workers", "1", "-q"]) == 0
    assert from_stream == []  # no box read from the compressed stream
    assert sorted(p.name for p in b.iterdir()) == sorted(CHUNKED_FILES)  # the copy removed
    assert np.array_equal(_zarr(a / "phases.zarr"), _zarr(b / "phases.zarr"))
    assert (a / "particles.csv").read_bytes() == (b / "particles.csv").read_bytes()
    runs = [json.loads((o / "run.json").read_text()) for o in (a, b)]
    assert runs[0]["provenance"]["input_checksum"] == runs[1]["provenance"]["input_checksum"]
    assert runs[1]["input"]["path"].endswith(name)  # the run names the file given, not the copy


def test_a_compressed_input_that_cannot_be_decompressed_is_refused_in_one_sentence(demo_tif_40, tmp_path,
                                                                                   sync_cluster, monkeypatch, capsys):
    """A ``.nii.gz`` cut short after its first voxels: exit 2, one sentence naming the file and not its folder,
    nothing written; a disk without room for the copy: one sentence saying how much it needs."""
    import shutil
    from collections import namedtuple

    import nibabel

    from core.chunked.inputs import decompressed_copy
    from core.io import InputFileError

    v = load_volume(demo_tif_40)
    img = nibabel.Nifti1Image(np.ascontiguousarray(v.data.T), np.eye(4))
    nibabel.save(img, str(tmp_path / "full.nii.gz"))
    data = (tmp_path / "full.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(data[: len(data) * 2 // 3])
    out = tmp_path / "o"
    assert cli.main(["analyze", str(tmp_path / "cut.nii.gz"), "--out", str(out), "--chunk-size", "20",
                     "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress lines
    assert err.startswith("error: cut.nii.gz cannot be decompressed (") and err.endswith("damaged or cut short.")
    assert str(tmp_path) not in err
    assert not out.exists() or not any(out.iterdir())
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 5000, 5000))
    with pytest.raises(InputFileError, match=r"^full.nii.gz is compressed: the chunked engine reads it from an "
                                             r"uncompressed copy of 1.18 MB, and the output folder's disk has "
                                             r"0.005 MB free; save it uncompressed \(gunzip\) or free some space$"):
        decompressed_copy(tmp_path / "full.nii.gz", tmp_path / "copy", v.data.nbytes)
    assert not any((tmp_path / "copy").iterdir())
