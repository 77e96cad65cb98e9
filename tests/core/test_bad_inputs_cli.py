"""Bad-input corpus of the command line: every option and recipe field with bad values.

Each case runs ``core.cli.main`` in-process and asserts exit status 2, exactly one
stderr line ``error: ....`` naming the option or field and what is wrong, and
that nothing was written (no output folder, no hidden partial folder or file,
earlier files unchanged).  The valid counterparts at the end exit 0, so the
corpus cannot pass by refusing everything.  Bad input *files* (truncated
TIFFs, broken ``.npy``, ...) have their own corpus.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from core import cli, outputs
from core.io import save_tiff
from core.pipeline import AnalysisParams

ANALYZE_FILES = ["labels.tif", "particles.csv", "particles.parquet", "phases.tif", "run.json"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Shared inputs (never written by a case): a 32³ demo greyscale, its phases, params and a recipe."""
    d = tmp_path_factory.mktemp("inputs")
    assert cli.main(["demo", "--out", str(d / "demo"), "--size", "32", "--names", "pristine", "-q"]) == 0
    grey = d / "demo" / "pristine" / "greyscale.tif"
    (d / "a.json").write_text(json.dumps({"separation": {"h_um": 1}}))  # an int where a float goes: fine
    assert cli.main(["analyze", str(grey), "--out", str(d / "ref"), "--recipe", str(d / "recipe.json"), "-q"]) == 0
    (d / "text.pt").write_text("not a checkpoint\n" * 40)
    (d / "folder").mkdir()
    return d


def _grey(data: Path) -> str:
    return str(data / "demo" / "pristine" / "greyscale.tif")


def _phases(data: Path) -> str:
    return str(data / "demo" / "pristine" / "true_phases.tif")


def _snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``roots`` (hidden ones too) with size and modification time."""
    out = {}
    for root in roots:
        for d, dirs, files in os.walk(root):
            for name in dirs + files:
                p = Path(d) / name
                st = p.lstat()
                out[str(p)] = (st.st_size if p.is_file() else -1, st.st_mtime_ns)
    return out


def _write_params(tmp: Path, obj, name: str = "p.json") -> str:
    p = tmp / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(p)


def _recipe_with(data: Path, tmp: Path, change) -> str:
    """A copy of the reference recipe with ``change(dict)`` applied (input path absolute)."""
    d = json.loads((data / "recipe.json").read_text())
    d["analyses"][0]["input"]["path"] = str((data / d["analyses"][0]["input"]["path"]).resolve())
    change(d)
    p = tmp / "r.json"
    p.write_text(json.dumps(d))
    return str(p)


def _set(path: str, value):
    """A recipe change setting ``analyses[0].<path>`` (dotted) to ``value``."""
    def change(d):
        node = d["analyses"][0]
        *head, last = path.split(".")
        for k in head:
            node = node[k]
        node[last] = value
    return change


# Each case: (arguments builder (data, tmp) -> argv without --out, regex the error line must match, out mode).
# out mode: "new" (--out tmp/out, absent), or a builder (data, tmp) -> argv tail giving --out itself.
def _out(tmp):
    return ["--out", str(tmp / "out")]


CASES = {
    # ------------------------------------------------------------------ argparse (usage) errors
    "downsample 0": (lambda d, t: ["analyze", _grey(d), "--downsample", "0"] + _out(t),
                     r"--downsample: the factor must be between 1 and 8, got 0"),
    "downsample 9": (lambda d, t: ["analyze", _grey(d), "--downsample", "9"] + _out(t),
                     r"--downsample: .*between 1 and 8, got 9"),
    "downsample 1.5": (lambda d, t: ["analyze", _grey(d), "--downsample", "1.5"] + _out(t),
                       r"--downsample: not a whole number: '1\.5'"),
    "axis 3": (lambda d, t: ["analyze", _grey(d), "--axis", "3"] + _out(t), r"--axis: invalid choice: 3"),
    "axis text": (lambda d, t: ["analyze", _grey(d), "--axis", "z"] + _out(t), r"--axis: invalid int value: 'z'"),
    "raw-shape two numbers": (lambda d, t: ["analyze", _grey(d), "--raw-shape", "4", "4"] + _out(t),
                              r"--raw-shape: expected 3 arguments"),
    "raw-shape zero": (lambda d, t: ["analyze", _grey(d), "--raw-shape", "4", "4", "0"] + _out(t),
                       r"--raw-shape: must be a whole number of at least 1, got 0"),
    "raw-dtype unknown": (lambda d, t: ["analyze", _grey(d), "--raw-dtype", "uint13"] + _out(t),
                          r"--raw-dtype: not a numeric data type: 'uint13'"),
    "raw-offset negative": (lambda d, t: ["analyze", _grey(d), "--raw-offset", "-4"] + _out(t),
                            r"--raw-offset: must be a whole number of at least 0, got -4"),
    "spacing zero": (lambda d, t: ["analyze", _grey(d), "--spacing", "0", "1", "1"] + _out(t),
                     r"--spacing: a voxel size must be a finite number > 0 µm, got 0"),
    "spacing text": (lambda d, t: ["analyze", _grey(d), "--spacing", "a", "1", "1"] + _out(t),
                     r"--spacing: not a number: 'a'"),
    "spacing nan": (lambda d, t: ["analyze", _grey(d), "--spacing", "nan", "1", "1"] + _out(t),
                    r"--spacing: a voxel size must be a finite number"),
    "spacing tiny": (lambda d, t: ["analyze", _grey(d), "--spacing", "1e-300", "1", "1"] + _out(t),
                     r"--spacing: a voxel size must be between 0\.0001 and 10000 µm, got 1e-300"),
    "spacing huge": (lambda d, t: ["analyze", _grey(d), "--spacing", "1", "1e300", "1"] + _out(t),
                     r"--spacing: a voxel size must be between .* got 1e300"),
    "spacing two numbers": (lambda d, t: ["analyze", _grey(d), "--spacing", "1", "1"] + _out(t),
                            r"--spacing: give one voxel size in µm \(isotropic\) or three \(Z Y X\), got 2: 1 1"),
    "method unknown": (lambda d, t: ["analyze", _grey(d), "--method", "unet"] + _out(t),
                       r"--method: invalid choice: 'unet'"),
    "separator-side unknown": (lambda d, t: ["analyze", _grey(d), "--separator-side", "left"] + _out(t),
                               r"--separator-side: invalid choice: 'left'"),
    "phase-map unknown phase": (lambda d, t: ["analyze", _phases(d), "--phase-map", "0=pore,1=glue"] + _out(t),
                                r"--phase-map: .*unknown phase 'glue'"),
    "phase-map syntax": (lambda d, t: ["analyze", _phases(d), "--phase-map", "0pore,1=cbd"] + _out(t),
                         r"--phase-map: .*'0pore' is not of the form VALUE=PHASE"),
    "phase-map value not a number": (lambda d, t: ["analyze", _phases(d), "--phase-map", "a=pore"] + _out(t),
                                     r"--phase-map: .*voxel value 'a' that is not an integer"),
    "phase-map empty": (lambda d, t: ["analyze", _phases(d), "--phase-map", ""] + _out(t),
                        r"--phase-map: phase map is empty"),
    "unknown option": (lambda d, t: ["analyze", _grey(d), "--frobnicate"] + _out(t),
                       r"unrecognized arguments: --frobnicate"),
    "missing --out": (lambda d, t: ["analyze", _grey(d)], r"the following arguments are required: --out"),
    "unknown command": (lambda d, t: ["analyse", _grey(d)] + _out(t), r"invalid choice: 'analyse'"),
    "demo seed negative": (lambda d, t: ["demo", "--seed", "-1"] + _out(t),
                           r"--seed: must be a whole number of at least 0, got -1"),
    "demo size huge": (lambda d, t: ["demo", "--size", "100000"] + _out(t),
                       r"--size: must be a whole number from 16 to 512, got 100000"),
    "demo unknown name": (lambda d, t: ["demo", "--names", "nope"] + _out(t), r"unknown demo electrode 'nope'"),
    "segment method unknown": (lambda d, t: ["segment", _grey(d), "--method", "otsu"] + _out(t),
                               r"--method: invalid choice: 'otsu'"),
    "run without recipe": (lambda d, t: ["run"] + _out(t), r"required: recipe"),
    # ------------------------------------------------------------------ --params
    "params not JSON": (lambda d, t: ["analyze", _grey(d), "--params", _write_params(t, "{nope")] + _out(t),
                        r"--params .*p\.json is not valid JSON: .* at line 1"),
    "params missing": (lambda d, t: ["analyze", _grey(d), "--params", str(t / "none.json")] + _out(t),
                       r"no such parameter file \(--params\): .*none\.json"),
    "params a folder": (lambda d, t: ["analyze", _grey(d), "--params", str(d / "folder")] + _out(t),
                        r"--params .*folder is a folder, not a JSON file"),
    "params not UTF-8": (lambda d, t: ["analyze", _grey(d), "--params", _write_bytes(t, b"\xff\xfe{")] + _out(t),
                         r"--params .* is not UTF-8 text"),
    "params a list": (lambda d, t: ["analyze", _grey(d), "--params", _write_params(t, [1, 2])] + _out(t),
                      r"--params .*: analysis parameters must be a JSON object, got list"),
    "params unknown key": (lambda d, t: ["analyze", _grey(d), "--params", _write_params(t, {"bogus": 1})] + _out(t),
                           r"--params .*unknown analysis parameter\(s\) \['bogus'\]"),
    "params unknown group key": (
        lambda d, t: ["analyze", _grey(d), "--params", _write_params(t, {"separation": {"h": 1}})] + _out(t),
        r"--params .*unknown 'separation' parameter\(s\) \['h'\]"),
    "params h_um text": (
        lambda d, t: ["analyze", _grey(d), "--params", _write_params(t, {"separation": {"h_um": "abc"}})] + _out(t),
        r"--params .*: separation\.h_um must be a number, got 'abc'"),
    "params h_um boolean": (
        lambda d, t: ["analyze", _grey(d), "--params", _write_params(t, {"separation": {"h_um": True}})] + _out(t),
        r"separation\.h_um must be a number, got True"),
    "params h_um negative": (
        lambda d, t: ["analyze", _grey(d), "--params", _write_params(t, {"separation": {"h_um": -1}})] + _out(t),
        r"separation\.h_um must be >= 0, got -1"),
    "params low text": (
        lambda d, t: ["analyze", _grey(d), "--params", _write_params(t, {"segment": {"low": "10"}})] + _out(t),
        r"segment\.low must be a number or null, got '10'"),
    "params low above high": (
        lambda d, t: ["analyze", _grey(d), "--params",
                      _write_params(t, {"segment": {"low": 9, "high": 3}})] + _out(t),
        r"segment\.low threshold \(9\) must be below high threshold \(3\)"),
    "params min_island fraction": (
        lambda d, t: ["analyze", _grey(d), "--params", _write_params(t, {"segment": {"min_island": 1.5}})] + _out(t),
        r"segment\.min_island must be a whole number, got 1\.5"),
    "params partial_volume text": (
        lambda d, t: ["analyze", _grey(d), "--params",
                      _write_params(t, {"segment": {"partial_volume": "yes"}})] + _out(t),
        r"segment\.partial_volume must be true or false, got 'yes'"),
    "params denoise unknown": (
        lambda d, t: ["analyze", _grey(d), "--params", _write_params(t, {"segment": {"denoise": "tv"}})] + _out(t),
        r"segment\.denoise must be one of .*, got 'tv'"),
    "params pv_sigma NaN": (
        lambda d, t: ["analyze", _grey(d), "--params", _write_params(t, '{"segment": {"pv_sigma": NaN}}')] + _out(t),
        r"segment\.pv_sigma must be a finite number, got nan"),
    "params model.h out of range": (
        lambda d, t: ["analyze", _grey(d), "--params", _write_params(t, {"model": {"h": 2}})] + _out(t),
        r"model\.h must be in \(0, 1\), got 2"),
    "params model.tile text": (
        lambda d, t: ["analyze", _grey(d), "--params", _write_params(t, {"model": {"tile": "96"}})] + _out(t),
        r"model\.tile must be a whole number, got '96'"),
    "params axis text": (
        lambda d, t: ["analyze", _grey(d), "--params", _write_params(t, {"axis": "0"})] + _out(t),
        r"--params .*: axis must be a whole number, got '0'"),
    "params method unknown": (
        lambda d, t: ["analyze", _grey(d), "--params", _write_params(t, {"method": "magic"})] + _out(t),
        r"method must be one of \['threshold', 'model', 'classifier'\], got 'magic'"),
    "params group not an object": (
        lambda d, t: ["analyze", _grey(d), "--params", _write_params(t, {"segment": 5})] + _out(t),
        r"'segment' parameters must be a JSON object, got 5"),
    # ------------------------------------------------------------------ --weights
    "weights missing": (lambda d, t: ["analyze", _grey(d), "--method", "model", "--weights",
                                      str(t / "none.pt")] + _out(t), r"--weights .*none\.pt: no such file"),
    "weights not a checkpoint": (lambda d, t: ["analyze", _grey(d), "--method", "model", "--weights",
                                               str(d / "text.pt")] + _out(t),
                                 r"--weights .*text\.pt is not a model checkpoint of this tool"),
    "weights a folder": (lambda d, t: ["analyze", _grey(d), "--method", "model", "--weights",
                                       str(d / "folder")] + _out(t), r"--weights .*folder is not a file"),
    "weights without the model": (lambda d, t: ["analyze", _grey(d), "--weights", str(d / "text.pt")] + _out(t),
                                  r"--weights is only used with --method model"),
    "segment weights not a checkpoint": (lambda d, t: ["segment", _grey(d), "--method", "model", "--weights",
                                                       str(d / "text.pt")] + _out(t),
                                         r"--weights .*text\.pt is not a model checkpoint"),
    "segment weights without the model": (lambda d, t: ["segment", _grey(d), "--weights", "x.pt"] + _out(t),
                                          r"--weights is only used with --method model"),
    "params weights not a checkpoint": (
        lambda d, t: ["analyze", _grey(d), "--params",
                      _write_params(t, {"method": "model", "particles": "model",
                                        "model": {"weights": str(d / "text.pt")}})] + _out(t),
        r"model\.weights .*text\.pt is not a model checkpoint"),
    # ------------------------------------------------------------------ --out
    "out is a file": (lambda d, t: ["analyze", _grey(d), "--out", _write_params(t, "x", "out")],
                      r"--out .*out exists and is not a folder"),
    "out in /proc": (lambda d, t: ["analyze", _grey(d), "--out", "/proc/x"], r"--out /proc/x is inside /proc"),
    "out in /sys": (lambda d, t: ["segment", _grey(d), "--out", "/sys/x"], r"--out /sys/x is inside /sys"),
    "out under a file": (lambda d, t: ["analyze", _grey(d), "--out", _write_params(t, "x", "f") + "/out"],
                         r"the parent of --out .*f/out is a file, not a folder"),
    "out parent missing": (lambda d, t: ["analyze", _grey(d), "--out", str(t / "no" / "out")],
                           r"the parent folder of --out does not exist: .*/no"),
    "out holds earlier results": (lambda d, t: ["analyze", _grey(d), "--out", _earlier(t)],
                                  r"--out .*earlier already holds files \(earlier results\); .*--overwrite"),
    "segment into an analyze folder": (lambda d, t: ["segment", _grey(d), "--out", _earlier(t)],
                                       r"--out .*earlier already holds files"),
    "demo into earlier results": (lambda d, t: ["demo", "--names", "pristine", "--out", _earlier(t)],
                                  r"--out .*earlier already holds files"),
    "out holds the user's own file": (lambda d, t: ["analyze", _grey(d), "--out", _foreign(t)],
                                      r"--out .*mine holds 'notes\.txt', which this tool did not write; choose another "
                                      r"\(new or empty\) folder"),
    "phase map with a method": (lambda d, t: ["analyze", _grey(d), "--phase-map", "0=pore,1=cbd,2=nmc", "--method",
                                              "model"] + _out(t),
                                r"--phase-map reads INPUT as phases already segmented: --method model would segment "
                                r"nothing; leave it out"),
    "overwrite a folder not ours": (lambda d, t: ["analyze", _grey(d), "--overwrite", "--out", _foreign(t)],
                                    r"--out .*mine holds 'notes\.txt', which this tool did not write"),
    "overwrite the folder of the input": (
        lambda d, t: ["analyze", _copy_input(d, t), "--overwrite", "--out", str(t / "earlier")],
        r"--out .*earlier holds greyscale\.tif, which this command reads"),
    "out is a symbolic link": (lambda d, t: ["analyze", _grey(d), "--out", _link(t)],
                               r"--out .*link is a symbolic link"),
    "out the root folder": (lambda d, t: ["analyze", _grey(d), "--out", "/"],
                            r"--out / is not a folder this tool can write into"),
    # ------------------------------------------------------------------ --recipe
    "recipe a folder": (lambda d, t: ["analyze", _grey(d), "--recipe", str(d / "folder")] + _out(t),
                        r"--recipe .*folder is a folder; give a file name"),
    "recipe folder missing": (lambda d, t: ["analyze", _grey(d), "--recipe", str(t / "no" / "r.json")] + _out(t),
                              r"the folder of --recipe does not exist: .*/no"),
    "recipe in /proc": (lambda d, t: ["analyze", _grey(d), "--recipe", "/proc/r.json"] + _out(t),
                        r"--recipe /proc/r\.json is inside /proc"),
    "recipe same as out": (lambda d, t: ["analyze", _grey(d), "--recipe", str(t / "out")] + _out(t),
                           r"--recipe and --out name the same path"),
    # ------------------------------------------------------------------ run: the recipe and its fields
    "run recipe missing": (lambda d, t: ["run", str(t / "none.json")] + _out(t), r"no such recipe file: .*none\.json"),
    "run recipe a folder": (lambda d, t: ["run", str(d / "folder")] + _out(t), r"the recipe .*folder is a folder"),
    "run recipe not JSON": (lambda d, t: ["run", _write_params(t, "{x", "r.json")] + _out(t),
                            r"r\.json: the recipe is not valid JSON"),
    "run recipe_version": (lambda d, t: ["run", _recipe_top(d, t, "recipe_version", 2)] + _out(t),
                           r"unsupported recipe_version 2"),
    "run recipe unknown top key": (lambda d, t: ["run", _recipe_top(d, t, "extra", 1)] + _out(t), r"extra"),
    "run recipe analyses empty": (lambda d, t: ["run", _recipe_top(d, t, "analyses", [])] + _out(t),
                                  r"'analyses' must be a non-empty list"),
    "run unknown entry key": (lambda d, t: ["run", _recipe_with(d, t, _set("colour", "red"))] + _out(t),
                              r"unknown key 'colour' in analyses\[0\]"),
    "run spacing text": (lambda d, t: ["run", _recipe_with(d, t, _set("spacing_um", "abc"))] + _out(t),
                         r"analyses\[0\].* spacing_um"),
    "run spacing negative": (lambda d, t: ["run", _recipe_with(d, t, _set("spacing_um", [1, -1, 1]))] + _out(t),
                             r"analyses\[0\].* spacing_um: .*> 0"),
    "run spacing huge": (lambda d, t: ["run", _recipe_with(d, t, _set("spacing_um", [1, 1e300, 1]))] + _out(t),
                         r"analyses\[0\].* spacing_um: spacing must be finite and > 0, between 0\.0001 and 10000 µm per voxel, got 1, 1e\+300"),
    "run params h_um text": (lambda d, t: ["run", _recipe_with(d, t, _set("params.separation.h_um", "abc"))]
                             + _out(t), r"analyses\[0\].* params: separation\.h_um must be a number, got 'abc'"),
    "run params unknown key": (lambda d, t: ["run", _recipe_with(d, t, _set("params.speed", 1))] + _out(t),
                               r"params: unknown analysis parameter\(s\) \['speed'\]"),
    "run params min_island text": (
        lambda d, t: ["run", _recipe_with(d, t, _set("params.segment.min_island", "8"))] + _out(t),
        r"params: segment\.min_island must be a whole number, got '8'"),
    "run checksum not hex": (lambda d, t: ["run", _recipe_with(d, t, _set("input_checksum", "xyz"))] + _out(t),
                             r"input_checksum must be a hexadecimal digest"),
    "run n_particles negative": (lambda d, t: ["run", _recipe_with(d, t, _set("n_particles", -3))] + _out(t),
                                 r"n_particles"),
    "run name not text": (lambda d, t: ["run", _recipe_with(d, t, _set("name", 5))] + _out(t), r"name"),
    "run input missing": (lambda d, t: ["run", _recipe_with(d, t, _set("input.path", str(t / "gone.tif")))]
                          + _out(t), r"the input of analysis .* does not exist: .*gone\.tif"),
    "run input unknown demo": (lambda d, t: ["run", _recipe_with(d, t, _set("input", {"demo": "nope"}))] + _out(t),
                               r"nope"),
    "run weights not a checkpoint": (
        lambda d, t: ["run", _recipe_with(d, t, _model_weights(str(d / "text.pt")))] + _out(t),
        r"analysis 'greyscale' model\.weights .*text\.pt is not a model checkpoint"),
    "run only unknown": (lambda d, t: ["run", str(d / "recipe.json"), "--only", "other"] + _out(t),
                         r"--only names 'other', which is not in the recipe"),
    "run into earlier results": (lambda d, t: ["run", str(d / "recipe.json"), "--out", _earlier(t)],
                                 r"--out .*earlier already holds files"),
    "run checksum differs": (lambda d, t: ["run", _recipe_with(d, t, _set("input_checksum", "0" * 32))] + _out(t),
                             r"has checksum .* but the recipe recorded 0{32}.*--no-verify"),
    # a region of interest, a raw file's header, a MetaImage (session 35)
    "crop beyond the volume": (lambda d, t: ["analyze", _grey(d), "--crop", 0, 40, 0, 8, 0, 8] + _out(t),
                               r"the crop 0:40 along z reaches beyond greyscale\.tif, which has 32 voxels"),
    "crop stop before start": (lambda d, t: ["analyze", _grey(d), "--crop", 6, 2, 0, 8, 0, 8] + _out(t),
                               r"--crop: .*crop along z must run from a start >= 0 to a larger stop, got 6:2"),
    "crop of 5 numbers": (lambda d, t: ["analyze", _grey(d), "--crop", 0, 4, 0, 8, 0] + _out(t),
                          r"--crop: expected 6 arguments"),
    "ESRF header of another size": (lambda d, t: ["analyze", _raw_with_header(t, "w.vol", "w.vol.info",
                                                                          "NUM_X = 8\nNUM_Y = 8\nNUM_Z = 4\n")]
                                    + _out(t), r"raw file w\.vol has 512 bytes .* needs 1024 bytes"),
    "MetaImage compressed": (lambda d, t: ["analyze", _raw_with_header(t, "s.raw", "s.mhd", _MHD + "CompressedData = "
                                                                       "True\nElementDataFile = s.raw\n")] + _out(t),
                             r"s\.mhd is a compressed MetaImage, which is not read"),
    "MetaImage data file elsewhere": (lambda d, t: ["analyze", _raw_with_header(t, "s.raw", "s.mhd", _MHD +
                                                                                "ElementDataFile = ../s.raw\n")]
                                      + _out(t), r"header s\.mhd names its data file '\.\./s\.raw'"),
    "inspect of a compressed MetaImage": (lambda d, t: ["inspect", _raw_with_header(
        t, "s.raw", "s.mhd", _MHD + "CompressedData = True\nElementDataFile = s.raw\n")],
        r"s\.mhd is a compressed MetaImage"),
}

_MHD = "NDims = 3\nDimSize = 8 8 4\nElementType = MET_USHORT\n"


def _raw_with_header(tmp: Path, data_name: str, header_name: str, header: str) -> str:
    """512 bytes of voxels and a header beside them; the path to analyse (the header for a MetaImage)."""
    (tmp / data_name).write_bytes(bytes(512))
    (tmp / header_name).write_text(header)
    return str(tmp / (header_name if header_name.endswith(".mhd") else data_name))


def _write_bytes(tmp: Path, data: bytes) -> str:
    p = tmp / "p.json"
    p.write_bytes(data)
    return str(p)


def _earlier(tmp: Path) -> str:
    """A folder holding the files of an earlier analysis."""
    d = tmp / "earlier"
    d.mkdir()
    for name in ANALYZE_FILES:
        (d / name).write_text(f"earlier {name}\n")
    return str(d)


def _foreign(tmp: Path) -> str:
    d = tmp / "mine"
    d.mkdir()
    (d / "particles.csv").write_text("a\n")
    (d / "notes.txt").write_text("my notes\n")
    return str(d)


def _copy_input(data: Path, tmp: Path) -> str:
    d = Path(_earlier(tmp))
    (d / "greyscale.tif").write_bytes((data / "demo" / "pristine" / "greyscale.tif").read_bytes())
    return str(d / "greyscale.tif")


def _link(tmp: Path) -> str:
    (tmp / "real").mkdir()
    (tmp / "link").symlink_to(tmp / "real")
    return str(tmp / "link")


def _recipe_top(data: Path, tmp: Path, key: str, value) -> str:
    def change(d):
        d[key] = value
    return _recipe_with(data, tmp, change)


def _model_weights(weights: str):
    def change(d):
        p = d["analyses"][0]["params"]
        p["method"], p["particles"] = "model", "model"
        p["model"]["weights"] = weights
    return change


@pytest.mark.parametrize("case", list(CASES))
def test_bad_option_or_field_exits_2_with_one_sentence_and_writes_nothing(case, data, tmp_path, capsys):
    build, pattern = CASES[case]
    argv = [str(a) for a in build(data, tmp_path)]
    before = _snapshot(tmp_path, data)
    rc = cli.main(argv + ["-q"])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("error: ") and line.endswith("."), line
    assert "usage:" not in err and "Traceback" not in err
    assert len(line) < 400, f"{len(line)} characters: {line}"
    assert re.search(pattern, line), line
    assert _snapshot(tmp_path, data) == before  # nothing written, nothing changed, no partial left


def test_corpus_size():
    assert len(CASES) >= 30


# --------------------------------------------------------------------------- read-only target


def test_unwritable_out_is_refused_before_reading_the_input(data, tmp_path, capsys, monkeypatch):
    import core.inputs

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    def never(*a, **k):
        raise AssertionError("the input was read before --out was checked")

    monkeypatch.setattr(outputs.tempfile, "mkdtemp", refuse)  # as root a chmod'ed folder is writable: simulate it
    monkeypatch.setattr(core.inputs, "open_input", never)
    assert cli.main(["analyze", _grey(data), "--out", str(tmp_path / "out"), "-q"]) == 2
    assert capsys.readouterr().err == f"error: --out {tmp_path / 'out'} cannot be written: Permission denied.\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="permissions do not bind root")
def test_read_only_parent_is_refused(data, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert cli.main(["analyze", _grey(data), "--out", str(ro / "out"), "-q"]) == 2
        assert "cannot be written" in capsys.readouterr().err
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


# --------------------------------------------------------------------------- valid counterparts


def _files(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def test_valid_analyze_into_a_new_and_into_an_empty_folder(data, tmp_path, capsys):
    params = _write_params(tmp_path, {"separation": {"h_um": 1, "merge_ratio": 1}, "segment": {"min_island": 8}})
    assert cli.main(["analyze", _grey(data), "--out", str(tmp_path / "new"), "--params", params, "-q"]) == 0
    (tmp_path / "empty").mkdir()
    assert cli.main(["analyze", _grey(data), "--out", str(tmp_path / "empty"), "--spacing", "0.5", "0.5", "0.5",
                     "--axis", "2", "--separator-side", "start", "--downsample", "1", "--recipe", str(tmp_path / "r.json"),
                     "-q"]) == 0  # (the side set: along x the demo's ends are alike, and 'auto' would say so)
    assert _files(tmp_path / "new") == ANALYZE_FILES == _files(tmp_path / "empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "new", "p.json", "r.json"]  # no partial left
    assert capsys.readouterr().err == ""


def test_valid_params_and_recipe_values_round_trip():
    p = AnalysisParams.from_dict({"separation": {"h_um": 1, "min_volume_um3": 0}, "segment": {"low": 1, "high": 2.5,
                                  "pv_sigma": None, "min_island": np.int64(3)}, "axis": 1})
    assert AnalysisParams.from_dict(p.to_dict()) == p


def test_overwrite_replaces_the_whole_folder(data, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["analyze", _grey(data), "--out", str(out), "-q"]) == 0
    # segment into the analyze folder: without --overwrite refused, with it only phases.tif remains
    assert cli.main(["segment", _grey(data), "--out", str(out), "-q"]) == 2
    assert _files(out) == ANALYZE_FILES
    assert cli.main(["segment", _grey(data), "--out", str(out), "--overwrite", "-q"]) == 0
    assert _files(out) == ["phases.tif"]
    # run into an earlier run folder that holds another analysis: no stale subfolder is kept
    assert cli.main(["run", str(data / "recipe.json"), "--out", str(out), "--overwrite", "-q"]) == 0
    (out / "stale").mkdir()
    (out / "stale" / "particles.csv").write_text("old\n")
    assert cli.main(["run", str(data / "recipe.json"), "--out", str(out), "--overwrite", "-q"]) == 0
    assert "stale" not in _files(out)
    assert _files(out) == ["greyscale", "greyscale/particles.csv", "greyscale/particles.parquet",
                           "greyscale/provenance.json", "greyscale/recipe.json", "recipe.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (out.stat().st_mode & 0o777) == (0o777 & ~_umask())


def test_overwrite_keeps_working_with_the_recipe_inside_the_folder(data, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["analyze", _grey(data), "--out", str(out), "--recipe", str(out / "r.json"), "-q"]
    (out).mkdir()
    assert cli.main(args) == 0
    assert cli.main(args + ["--overwrite"]) == 0  # the recipe is written after the output: it may lie inside
    assert _files(out) == sorted(ANALYZE_FILES + ["r.json"])
    # a run folder's own recipe replays into the same folder
    assert cli.main(["run", str(out / "r.json"), "--out", str(tmp_path / "run"), "-q"]) == 0
    assert cli.main(["run", str(tmp_path / "run" / "recipe.json"), "--out", str(tmp_path / "run"), "--overwrite",
                     "-q"]) == 0
    # another recipe inside the folder would be lost: refused
    assert cli.main(["run", str(out / "r.json"), "--out", str(out), "--overwrite", "-q"]) == 2
    assert "holds r.json, which this command reads" in capsys.readouterr().err


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def test_a_failed_overwrite_keeps_the_earlier_results(data, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["analyze", _grey(data), "--out", str(out), "-q"]) == 0
    before = {p: p.read_bytes() for p in out.iterdir()}
    const = tmp_path / "const.tif"
    save_tiff(const, np.full((8, 8, 8), 3, np.uint16), 1.0)
    assert cli.main(["analyze", str(const), "--out", str(out), "--overwrite", "-q"]) == 2
    assert "constant" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["const.tif", "out"]


def test_stale_partials_are_removed_and_nothing_else(data, tmp_path, capsys):
    out = tmp_path / "out"
    stale = [tmp_path / ".out.partial-abcd1234", tmp_path / ".out.partial-999999-zz__0099"]
    keep = [tmp_path / ".out.partial-mine", tmp_path / ".other.partial-abcd1234", tmp_path / "out.partial-abcd1234"]
    live = tmp_path / f".out.partial-{os.getppid()}-livelive"  # a run of a live process: kept
    for d in stale + keep + [live]:
        d.mkdir()
        (d / "particles.csv").write_text("half\n")
    recipe_tmp = tmp_path / ".r.json.ab12cd34.partial"
    recipe_tmp.write_text("{")
    assert cli.main(["analyze", _grey(data), "--out", str(out), "--recipe", str(tmp_path / "r.json"), "-q"]) == 0
    assert not any(d.exists() for d in stale) and not recipe_tmp.exists()
    assert all(d.exists() for d in keep) and live.exists()


def test_a_set_aside_earlier_folder_is_put_back(data, tmp_path, capsys):
    # a run killed between "earlier folder aside" and "new folder in" (where renameat2 is missing)
    aside = tmp_path / ".out.partial-999999-abcdefgh.old"
    aside.mkdir()
    (aside / "run.json").write_text("{}")
    assert cli.main(["analyze", _grey(data), "--out", str(tmp_path / "out"), "-q"]) == 2
    assert "already holds files" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (tmp_path / "out" / "run.json").read_text() == "{}"


def test_commit_without_renameat2_replaces_the_folder(data, tmp_path, monkeypatch):
    monkeypatch.setattr(outputs, "_exchange", lambda a, b: False)
    out = tmp_path / "out"
    assert cli.main(["segment", _grey(data), "--out", str(out), "-q"]) == 0
    assert cli.main(["analyze", _grey(data), "--out", str(out), "--overwrite", "-q"]) == 0
    assert _files(out) == ANALYZE_FILES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_overwrite_never_replaces_the_current_folder(data, tmp_path, capsys, monkeypatch):
    out = Path(_earlier(tmp_path))
    before = _snapshot(tmp_path)
    monkeypatch.chdir(out)
    assert cli.main(["analyze", _grey(data), "--out", ".", "--overwrite", "-q"]) == 2
    assert capsys.readouterr().err == "error: --out . is the current folder (or holds it); --overwrite replaces " \
                                      "only another folder.\n"
    assert _snapshot(tmp_path) == before
