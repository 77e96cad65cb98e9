"""Command-line interface: ``python -m core {analyze,segment,demo}``.

The contract (other tools rely on it):

``python -m core analyze INPUT --out DIR [--spacing Z Y X] [--phase-map VALUE=PHASE,...] [--params FILE.json]``
    writes ``DIR/particles.csv``, ``DIR/particles.parquet``, ``DIR/phases.tif``,
    ``DIR/labels.tif`` and ``DIR/run.json``.  With ``--phase-map`` INPUT is a
    pre-segmented phase volume and segmentation is skipped.  ``--downsample F``
    block-averages the greyscale by F first (outputs on the coarser grid, voxel
    size times F; recorded in ``run.json`` and in a recipe).
``python -m core segment INPUT --out DIR [--method threshold] [--downsample F]``
    writes ``DIR/phases.tif`` (0 = pore, 1 = CBD, 2 = NMC).
``python -m core analyze ... --recipe FILE.json [--name NAME]``
    also writes a recipe (:mod:`core.recipe`) that replays this analysis.
``python -m core run RECIPE.json --out DIR [--no-verify] [--only NAME ...]``
    replays every analysis of a recipe headless and writes ``DIR/recipe.json``
    (input paths absolute) and per analysis ``DIR/NAME/particles.csv``,
    ``particles.parquet``, ``provenance.json`` and ``recipe.json`` (that
    analysis alone).  An input whose checksum differs from the recipe's is
    refused unless ``--no-verify``.
``python -m core demo --out DIR [--seed N]``
    writes ``DIR/NAME/{greyscale.tif,true_phases.tif,true_labels.tif,true_particles.csv}``
    for each demo electrode.

Bad input exits with status 2 and one sentence on stderr, and writes nothing:
every output is first written into a hidden temporary folder inside ``DIR``'s
parent and moved into place only when all of it succeeded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

from ._json import json_default

EXIT_BAD_INPUT = 2


class CLIError(Exception):
    """A user error reported as one sentence."""


def _progress(quiet: bool):
    last = [-1.0]

    def report(frac: float, msg: str) -> None:
        if quiet:
            return
        pct = int(frac * 100)
        if pct != last[0]:
            last[0] = pct
            print(f"[{pct:3d}%] {msg}", file=sys.stderr, flush=True)

    return report


@contextlib.contextmanager
def _staged_output(out: Path):
    """Yield a temporary folder; on success move its files into ``out``."""
    out = Path(out)
    parent = out.resolve().parent
    if not parent.exists():
        raise CLIError(f"the parent folder of --out does not exist: {parent}")
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} exists and is not a folder")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=parent))
    try:
        yield tmp
        out.mkdir(exist_ok=True)
        for item in sorted(tmp.iterdir()):
            target = out / item.name
            if target.is_dir() and item.is_dir():
                shutil.rmtree(target)
            os.replace(item, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _input_spec(args):
    """The :class:`core.inputs.FileInput` the arguments name (its path as given)."""
    from .inputs import FileInput

    factor = getattr(args, "downsample", 1) or 1
    if getattr(args, "phase_map", None) and factor > 1:
        raise CLIError("--downsample cannot be used with --phase-map (block means of phase codes are not phases)")
    return FileInput(
        path=Path(args.input), dataset=getattr(args, "dataset", None) or None,
        shape=tuple(args.raw_shape) if getattr(args, "raw_shape", None) else None,
        dtype=getattr(args, "raw_dtype", None) or None, offset=int(getattr(args, "raw_offset", 0) or 0),
        phase_map=getattr(args, "phase_map", None) or None, downsample=factor,
    )


def _load_input(args):
    """:func:`core.inputs.open_input` of the arguments' input, with ``--spacing`` as the voxel size read."""
    from .inputs import open_input

    return open_input(_input_spec(args), spacing=tuple(args.spacing) if args.spacing is not None else None)


def _write_table(table, folder: Path, stem: str) -> None:
    """CSV and Parquet; the same table gives the same bytes (Parquet holds no timestamp)."""
    table.to_csv(folder / f"{stem}.csv", index=False)
    table.to_parquet(folder / f"{stem}.parquet", index=False)


def _cmd_analyze(args) -> None:
    from .io import save_tiff
    from .pipeline import AnalysisParams, run

    params = AnalysisParams()
    if args.params:
        try:
            d = json.loads(Path(args.params).read_text())
        except FileNotFoundError:
            raise CLIError(f"no such parameter file: {args.params}") from None
        except json.JSONDecodeError as exc:
            raise CLIError(f"{args.params} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
        params = AnalysisParams.from_dict(d.get("params", d) if isinstance(d, dict) else d)
    overrides = {}
    if args.axis is not None:
        overrides["axis"] = args.axis
    if args.separator_side is not None:
        overrides["separator_side"] = args.separator_side
    if args.method is not None:
        overrides["method"] = args.method
        overrides["particles"] = "model" if args.method == "model" else "watershed"
    if args.weights is not None:
        overrides["model"] = {**params.model.to_dict(), "weights": args.weights}
    if overrides:
        params = AnalysisParams.from_dict({**params.to_dict(), **overrides})
    if args.recipe is not None and not Path(args.recipe).expanduser().resolve().parent.is_dir():
        raise CLIError(f"the folder of --recipe does not exist: {Path(args.recipe).expanduser().resolve().parent}")
    opened = _load_input(args)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run(opened.volume, params, spacing=opened.spacing, presegmented=opened.presegmented,
                     progress=_progress(args.quiet), downsampled=getattr(args, "downsample", 1) or 1)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    record = {
        "command": "analyze",
        "input": {**opened.info, "path": str(args.input)},
        "params": result.params.to_dict(),
        "provenance": {**result.provenance, "total_s": time.perf_counter() - t0},
        "warnings": [str(w.message) for w in caught],
    }
    with _staged_output(args.out) as tmp:
        _write_table(result.table, tmp, "particles")
        save_tiff(tmp / "phases.tif", result.phases, result.spacing)
        save_tiff(tmp / "labels.tif", result.labels, result.spacing)
        (tmp / "run.json").write_text(json.dumps(record, indent=2, default=json_default))
    if args.recipe is not None:
        from .recipe import Recipe, entry_from_result, write_recipe

        name = args.name or Path(args.input).name.split(".")[0] or "analysis"
        spec = _input_spec(args)
        spec = replace(spec, path=spec.path.expanduser().resolve())
        write_recipe(Recipe((entry_from_result(name, spec, result),)), args.recipe)
    if not args.quiet:
        print(f"{len(result.table)} particles -> {args.out}", file=sys.stderr)
        if args.recipe is not None:
            print(f"recipe -> {args.recipe} (replay: python -m core run {args.recipe} --out DIR)", file=sys.stderr)


def _cmd_run(args) -> None:
    from .recipe import (
        Recipe, check_inputs, dumps, entry_to_dict, read_recipe, replay, version_differences,
    )

    recipe = read_recipe(args.recipe)
    entries = list(recipe.analyses)
    if args.only:
        unknown = [n for n in args.only if n not in {e.name for e in entries}]
        if unknown:
            raise CLIError(f"--only names {unknown[0]!r}, which is not in the recipe (it has "
                           f"{', '.join(repr(e.name) for e in entries)})")
        entries = [e for e in entries if e.name in args.only]
    check_inputs(recipe)
    from . import __version__

    if recipe.package_version != __version__:
        print(f"warning: the recipe was written by core {recipe.package_version}; this is {__version__}",
              file=sys.stderr)
    report = _progress(args.quiet)
    n = len(entries)
    with _staged_output(args.out) as tmp:
        (tmp / "recipe.json").write_text(dumps(Recipe(tuple(entries), recipe.package_version)), encoding="utf-8")
        for i, entry in enumerate(entries):
            def progress(frac, msg, _i=i, _name=entry.name):
                report((_i + frac) / n, f"[{_i + 1}/{n}] {_name}: {msg}")

            for pkg, (then, now) in version_differences(entry).items():
                print(f"warning: {entry.name}: {pkg} {now} here, {then} in the original run", file=sys.stderr)
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = replay(entry, verify=not args.no_verify, progress=progress)
            for w in caught:
                print(f"warning: {entry.name}: {w.message}", file=sys.stderr)
            verified = entry.input_checksum is not None and not args.no_verify
            if entry.input_checksum is None:
                print(f"warning: {entry.name}: the recipe has no input checksum; the input was not verified",
                      file=sys.stderr)
            if entry.n_particles is not None and entry.n_particles != len(result.table):
                print(f"warning: {entry.name}: {len(result.table)} particles, the original run found "
                      f"{entry.n_particles}", file=sys.stderr)
            d = tmp / entry.folder
            d.mkdir()
            _write_table(result.table, d, "particles")
            (d / "recipe.json").write_text(dumps(Recipe((entry,), recipe.package_version)), encoding="utf-8")
            record = {
                "command": "run",
                "name": entry.name,
                "recipe": str(Path(args.recipe).expanduser().resolve()),
                "input": entry_to_dict(entry)["input"],
                "input_verified": verified,
                "params": result.params.to_dict(),
                "provenance": {**result.provenance, "total_s": time.perf_counter() - t0},
                "warnings": [str(w.message) for w in caught],
            }
            (d / "provenance.json").write_text(json.dumps(record, indent=2, default=json_default), encoding="utf-8")
        report(1.0, f"{n} analyses replayed")
    if not args.quiet:
        print(f"{n} analyses -> {args.out}", file=sys.stderr)


def _cmd_segment(args) -> None:
    from .io import save_tiff
    from .phases import SegmentParams, segment_detailed

    opened = _load_input(args)
    data, spacing = opened.volume, opened.spacing
    if args.method == "model":
        from .nn.infer import segment_volume
        from .nn.params import ModelParams

        seg = segment_volume(data, ModelParams(weights=args.weights), progress=_progress(args.quiet))
        phases, what = seg.phases, f"3D U-Net ({args.weights} weights)"
    else:
        res = segment_detailed(data, SegmentParams(), progress=_progress(args.quiet))
        phases, what = res.phases, f"thresholds low={res.params.low:g} high={res.params.high:g}"
    with _staged_output(args.out) as tmp:
        save_tiff(tmp / "phases.tif", phases, spacing)
    if not args.quiet:
        print(f"{what}; phases -> {args.out}", file=sys.stderr)


def _cmd_demo(args) -> None:
    from .io import save_tiff
    from .synth import DEMO_ELECTRODES, demo_electrode

    names = args.names or list(DEMO_ELECTRODES)
    for n in names:
        if n not in DEMO_ELECTRODES:
            raise CLIError(f"unknown demo electrode {n!r}; choose from {', '.join(DEMO_ELECTRODES)}")
    shape = (args.size,) * 3 if args.size else None
    report = _progress(args.quiet)
    with _staged_output(args.out) as tmp:
        for i, name in enumerate(names):
            report(i / len(names), f"generating {name} (seed {args.seed})")
            e = demo_electrode(name, rng=args.seed + i, shape=shape)
            d = tmp / name
            d.mkdir()
            save_tiff(d / "greyscale.tif", e.greyscale, e.spacing)
            save_tiff(d / "true_phases.tif", e.phases, e.spacing)
            save_tiff(d / "true_labels.tif", e.labels, e.spacing)
            e.table.to_csv(d / "true_particles.csv", index=False)
        report(1.0, f"{len(names)} demo electrodes written")


def _factor(text: str) -> int:
    from .io.downsampling import check_downsample

    try:
        factor = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    try:
        return check_downsample(factor, "--downsample")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core", description="Particle detachment analysis of cathode tomography.")
    sub = p.add_subparsers(dest="command", required=True)

    def add_input(sp):
        sp.add_argument("input", help="volume: TIFF, slice folder, HDF5, Zarr, .npy or raw")
        sp.add_argument("--out", required=True, type=Path, help="output folder")
        sp.add_argument("--spacing", nargs=3, type=float, metavar=("Z", "Y", "X"), help="voxel size in µm")
        sp.add_argument("--dataset", help="HDF5/Zarr dataset name")
        sp.add_argument("--raw-shape", nargs=3, type=int, metavar=("Z", "Y", "X"), help="raw files: shape")
        sp.add_argument("--raw-dtype", help="raw files: dtype such as uint16 or float32")
        sp.add_argument("--raw-offset", type=int, default=0, help="raw files: header bytes to skip")
        sp.add_argument("--downsample", type=_factor, default=1, metavar="F",
                        help="block-average F×F×F voxels into one before the analysis (1-8; default 1 = none); the "
                             "outputs are on the coarser grid and the voxel size is multiplied by F. Use it when the "
                             "blur spans more than about 0.9 voxel (the analysis warns)")
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")

    a = sub.add_parser("analyze", help="segment, identify particles, write the particle table")
    add_input(a)
    a.add_argument("--phase-map", help="INPUT is a phase volume: e.g. 0=pore,128=nmc,255=cbd")
    a.add_argument("--params", help="JSON file of analysis parameters")
    a.add_argument("--method", choices=("threshold", "model"),
                   help="phases and particles by thresholds + watershed (default) or by the shipped 3D U-Net")
    a.add_argument("--weights", help="model weights for --method model (default: shipped)")
    a.add_argument("--axis", type=int, choices=(0, 1, 2), help="electrode thickness axis (default 0 = z)")
    a.add_argument("--separator-side", choices=("auto", "start", "end"), help="end of the axis facing the separator")
    a.add_argument("--recipe", type=Path, help="also write a recipe (JSON) that replays this analysis")
    a.add_argument("--name", help="name of the analysis in the recipe (default: the input's file name)")
    a.set_defaults(func=_cmd_analyze)

    r = sub.add_parser("run", help="replay every analysis of a recipe headless")
    r.add_argument("recipe", help="recipe file (JSON) written by 'analyze --recipe' or the dashboard")
    r.add_argument("--out", required=True, type=Path, help="output folder")
    r.add_argument("--no-verify", action="store_true", help="analyse inputs whose checksum differs from the recipe's")
    r.add_argument("--only", nargs="+", metavar="NAME", help="replay only these analyses")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    r.set_defaults(func=_cmd_run)

    s = sub.add_parser("segment", help="phase segmentation only")
    add_input(s)
    s.add_argument("--method", choices=("threshold", "model"), default="threshold",
                   help="two thresholds (default) or the shipped 3D U-Net")
    s.add_argument("--weights", default="default", help="model weights for --method model (default: shipped)")
    s.set_defaults(func=_cmd_segment)

    d = sub.add_parser("demo", help="write the synthetic demo electrodes with ground truth")
    d.add_argument("--out", required=True, type=Path)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--size", type=int, help=argparse.SUPPRESS)
    d.add_argument("--names", nargs="*", help="subset of demo electrodes")
    d.add_argument("-q", "--quiet", action="store_true")
    d.set_defaults(func=_cmd_demo)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (CLIError, ValueError, TypeError, OSError, KeyError, MemoryError) as exc:
        msg = str(exc) or type(exc).__name__
        if isinstance(exc, KeyError):
            msg = f"missing key {msg}"
        msg = msg.strip().rstrip(".").replace("\n", " ")
        print(f"error: {msg}.", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
