"""Command-line interface: ``python -m core {analyze,run,compare,segment,train-classifier,inspect,demo}``.

The contract (other tools rely on it):

``python -m core analyze INPUT --out DIR [--overwrite] [--spacing UM | --spacing Z Y X] [--phase-map VALUE=PHASE,...] [--params FILE.json]``
    writes ``DIR/particles.csv``, ``DIR/particles.parquet``, ``DIR/phases.tif``,
    ``DIR/labels.tif`` and ``DIR/run.json``.  With ``--phase-map`` INPUT is a
    pre-segmented phase volume and segmentation is skipped.  ``--downsample F``
    block-averages the greyscale by F first (outputs on the coarser grid, voxel
    size times F; recorded in ``run.json`` and in a recipe).
``python -m core segment INPUT --out DIR [--overwrite] [--method threshold] [--downsample F]``
    writes ``DIR/phases.tif`` (0 = pore, 1 = CBD, 2 = NMC).  ``--method classifier
    --classifier CLF`` uses a classifier trained on brush strokes (:mod:`core.classify`).
``python -m core train-classifier --image IMG --scribbles S [--image IMG2 --scribbles S2 ...] --out CLF [--spacing UM | --spacing Z Y X]``
    trains a phase classifier on painted voxels (each ``S`` of its ``IMG``'s shape,
    uint8: 0 pore, 1 CBD, 2 NMC, 255 not painted) and writes the folder ``CLF``
    (``classifier.json`` + ``pairs.npz``: the training pairs, no pickle); reading
    it retrains the same classifier.
``python -m core analyze INPUT --out DIR --method classifier --classifier CLF``
    the same outputs, the phases by a classifier trained on brush strokes
    (retrained from ``CLF``'s pairs); ``run.json`` records the folder (absolute)
    and the SHA-256 of its ``pairs.npz`` (``provenance.classifier_pairs_sha256``).
``python -m core analyze ... --recipe FILE.json [--name NAME]``
    also writes a recipe (:mod:`core.recipe`) that replays this analysis; with
    ``--method classifier`` the classifier folder (its training pairs) is copied
    beside it, to ``FILE-training/NAME/``, and recorded with its SHA-256.
``python -m core run RECIPE.json --out DIR [--overwrite] [--no-verify] [--only NAME ...]``
    replays every analysis of a recipe headless and writes ``DIR/recipe.json``
    (input paths absolute) and per analysis ``DIR/NAME/particles.csv``,
    ``particles.parquet``, ``provenance.json`` and ``recipe.json`` (that
    analysis alone).  An input whose checksum differs from the recipe's is
    refused unless ``--no-verify``, and so are a classifier's training pairs
    (retrained from, seeded: the same table) whose SHA-256 differs.  A recipe
    that records a comparison (the dashboard's Compare page writes one) also gets
    ``DIR/comparison/``: what ``compare`` writes, with the recipe's settings.
``python -m core compare DIR DIR ... --out OUT [--names NAME ...] [--edge include|exclude|miles] [--cut C] [--min-diameter UM] [--metric COL] [--axis NAME [--values V ...] [--unit U]] [--axis-scale linear|log|rank]``
    the Compare page's statistics of analysis folders (of ``analyze`` or
    ``run``), headless (:mod:`core.comparison`): ``OUT/summary.csv``,
    ``tests.csv``, ``trend-NAME.csv`` (with ``--axis``), ``comparison.json``
    (settings, bootstrap, readings, notes) and ``report.html``.
``python -m core demo --out DIR [--overwrite] [--seed N]``
    writes ``DIR/NAME/{greyscale.tif,true_phases.tif,true_labels.tif,true_particles.csv}``
    for each demo electrode.

Bad input exits with status 2 and one sentence on stderr (``error: ...``, no
usage block), and writes nothing.  ``--out`` and ``--recipe`` are checked before
any input is read: ``DIR`` must be a folder that can be written (its parent
must exist), and a ``DIR`` that already holds files is refused unless
``--overwrite``, which replaces the whole folder (never a mix of two runs).
``--overwrite`` only replaces a folder of this tool's results and never one
that holds an input of the command.  Every output is first written into a
hidden folder ``.DIR.partial-<pid>-XXXXXXXX`` beside ``DIR`` and swapped into
place in one step when all of it succeeded, so a killed run leaves either the
earlier folder or the new one, never part of one; such hidden folders left by a
killed run are removed by the next run into ``DIR`` (:mod:`core.outputs`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

from .outputs import check_out, check_recipe_path, staged_output
from ._validate import SPACING_MAX_UM, SPACING_MIN_UM
from ._json import dumps_strict, json_default

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


def _check_weights(weights, where: str = "--weights") -> None:
    """The model weights can be loaded (before any work); a bad file is one sentence, not torch's text."""
    if weights is None or weights == "default":
        return
    path = Path(weights).expanduser()
    if not path.exists():
        raise CLIError(f"{where} {weights}: no such file")
    if not path.is_file():
        raise CLIError(f"{where} {weights} is not a file")
    from .nn.infer import load_model

    try:
        load_model(path)
    except Exception:  # torch's errors (zip, pickle, state-dict mismatch) are many and long
        raise CLIError(f"{where} {weights} is not a model checkpoint of this tool (written by core.nn.train)") from None


def _read_params(path):
    """The :class:`~core.pipeline.AnalysisParams` of a ``--params`` JSON file (one sentence on any error)."""
    from .pipeline import AnalysisParams

    p = Path(path).expanduser()
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CLIError(f"no such parameter file (--params): {path}") from None
    except IsADirectoryError:
        raise CLIError(f"--params {path} is a folder, not a JSON file") from None
    except UnicodeDecodeError:
        raise CLIError(f"--params {path} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise CLIError(f"--params {path} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    try:
        return AnalysisParams.from_dict(d.get("params", d) if isinstance(d, dict) else d)
    except (TypeError, ValueError) as exc:
        raise CLIError(f"--params {path}: {exc}") from None


def _input_spec(args):
    """The :class:`core.inputs.FileInput` the arguments name (its path as given)."""
    from .inputs import FileInput

    factor = getattr(args, "downsample", 1) or 1
    if getattr(args, "phase_map", None) and factor > 1:
        raise CLIError("--downsample cannot be used with --phase-map (block means of phase codes are not phases)")
    crop = getattr(args, "crop", None)
    try:
        spec = FileInput(
            path=Path(args.input), dataset=getattr(args, "dataset", None) or None,
            shape=tuple(args.raw_shape) if getattr(args, "raw_shape", None) else None,
            dtype=getattr(args, "raw_dtype", None) or None, offset=int(getattr(args, "raw_offset", 0) or 0),
            byte_order=">" if getattr(args, "raw_byte_order", "little") == "big" else "<",
            crop=list(zip(crop[::2], crop[1::2])) if crop else None,
            phase_map=getattr(args, "phase_map", None) or None, downsample=factor,
        )
    except ValueError as exc:  # core.inputs.InputError: a crop whose start is not below its stop
        raise CLIError(f"--crop: {exc}") from None
    if not getattr(args, "align", False):
        return spec
    if getattr(args, "_offsets", None) is None:  # measured once a run, however often the spec is asked for
        args._offsets = _measured_offsets(spec, args)
    return replace(spec, align=args._offsets)


def _measured_offsets(spec, args) -> list[tuple[int, int]]:
    """``--align``: the offsets of the input's slices (:func:`core.phases.alignment.slice_shifts`, read plane by
    plane after any crop), said on stderr unless ``--quiet``."""
    from .chunked import open_lazy
    from .phases.alignment import aligned_message, slice_shifts

    lazy = open_lazy(spec.path, **spec.load_kwargs())  # the header only: bad input refused before any plane
    if lazy.shape[0] < 2:
        raise CLIError(f"--align: {spec.path.name} has {lazy.shape[0]} z plane as read; aligning slices needs 2 "
                       f"or more")
    report = _progress(args.quiet)
    offsets = slice_shifts(lazy.reader, progress=lambda done, total: report(done / total, "aligning the slices"))
    if not args.quiet:
        print(f"note: {aligned_message(offsets)}", file=sys.stderr)
    return offsets


def _uncorrected_tilt(metadata, spacing, from_metadata: bool, given, depth: int) -> dict | None:
    """:func:`core.io.sem.tilt_reading` where an SEM image's pixel size was read from its file (no ``--spacing``
    ``given``) with the stage tilted and the tilt correction off, with its ``note`` (:func:`core.io.sem.tilt_message`
    for ``depth`` z planes); else None."""
    from .io.sem import tilt_message, tilt_reading

    reading = tilt_reading(metadata.get("sem_tilt"), spacing) if from_metadata and given is None else None
    return None if reading is None else {**reading,
                                         "note": tilt_message(reading, "the image" if depth == 1 else "each slice")}


def _tilt_warning(metadata, spacing, from_metadata: bool, given, depth: int) -> str | None:
    """What ``analyze`` warns of an :func:`_uncorrected_tilt`."""
    tilt = _uncorrected_tilt(metadata, spacing, from_metadata, given, depth)
    return None if tilt is None else tilt["note"] + " Give --spacing Z Y X with that height where it is one."


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

    # (--recipe is written after the output, so it may lie inside)
    reads = (args.input, args.params, args.weights, args.classifier)
    check_out(args.out, overwrite=args.overwrite, reads=reads)  # first: before any file is read
    if args.method is not None or args.classifier is not None:
        _check_method_args(args)
    params = _read_params(args.params) if args.params else AnalysisParams()
    overrides = {}
    if args.axis is not None:
        overrides["axis"] = args.axis
    if args.separator_side is not None:
        overrides["separator_side"] = args.separator_side
    if getattr(args, "depth_from", None) is not None:
        overrides["depth_from"] = args.depth_from
    if args.method is not None:
        overrides["method"] = args.method
        overrides["particles"] = "model" if args.method == "model" else "watershed"
    if args.seeding is not None:
        overrides["seeding"] = args.seeding
    if getattr(args, "refine", None) is not None:
        overrides["refine"] = args.refine
    if getattr(args, "coarsen", None) is not None:
        overrides["coarsen"] = args.coarsen if args.coarsen == "auto" else int(args.coarsen)
    if getattr(args, "flatten_shading", False):
        overrides["segment"] = {**params.to_dict()["segment"], "flatten": True}
    if args.weights is not None:
        overrides["model"] = {**params.model.to_dict(), "weights": args.weights}
    if args.classifier is not None:  # absolute, so that a recipe of this run replays from anywhere
        overrides["classifier"] = str(Path(args.classifier).expanduser().resolve())
    if overrides:
        d = {**params.to_dict(), **overrides}
        if d["method"] != "classifier":  # --method threshold/model replaces a --params file's classifier
            d.pop("classifier", None)
        params = AnalysisParams.from_dict(d)
    network = params.method == "model" or params.particles == "model"
    if args.weights is not None and not network:
        raise CLIError("--weights is only used with --method model")
    if params.segment.flatten and params.method == "classifier":
        raise CLIError(_FLATTEN_CLASSIFIER)
    spec = _input_spec(args)
    if args.recipe is not None:
        check_recipe_path(args.recipe, args.out)
    if network:
        _check_weights(params.model.weights, "--weights" if args.weights is not None else "model.weights")
    if params.method == "classifier":
        _check_classifier_folder(params.classifier, "--classifier" if args.classifier is not None else "classifier")
    chunk_size = _chunked_engine(args, spec, params)
    if chunk_size is not None:
        return _analyze_chunked(args, spec, params, chunk_size, reads)
    with staged_output(args.out, overwrite=args.overwrite, reads=reads) as tmp:
        opened = _load_input(args)
        t0 = time.perf_counter()
        with _caught_warnings() as caught:
            tilt = _tilt_warning(opened.info, opened.info.get("spacing_read_um", opened.spacing),
                                 opened.info["spacing_from_metadata"], args.spacing, opened.volume.shape[0])
            if tilt is not None:
                warnings.warn(tilt, stacklevel=1)
            _warn_assumed_spacing(opened.info["spacing_from_metadata"], args.spacing, opened.info.get("format"),
                                  opened.spacing)
            result = run(opened.volume, params, spacing=opened.spacing, presegmented=opened.presegmented,
                         progress=_progress(args.quiet), downsampled=getattr(args, "downsample", 1) or 1,
                         aligned="align" in opened.info)
        for w in _distinct(caught):
            print(f"warning: {w}", file=sys.stderr)
        record = {
            "command": "analyze",
            "input": {**opened.info, "path": str(args.input), **_map_record(spec)},
            "params": result.params.to_dict(),
            "provenance": {**result.provenance, "total_s": time.perf_counter() - t0},
            "warnings": _distinct(caught),
        }
        _write_table(result.table, tmp, "particles")
        save_tiff(tmp / "phases.tif", result.phases, result.spacing)
        save_tiff(tmp / "labels.tif", result.labels, result.spacing)
        (tmp / "run.json").write_text(dumps_strict(record, indent=2))
        if args.recipe is not None:  # built (and so checked) before the output is put in place
            from .recipe import Recipe, dumps, entry_from_result, write_recipe

            name = args.name or Path(args.input).name.split(".")[0] or "analysis"
            spec = replace(spec, path=spec.path.expanduser().resolve())
            recipe = Recipe((entry_from_result(name, spec, result),))
            dumps(recipe)
    if args.recipe is not None:
        write_recipe(recipe, args.recipe)
    if not args.quiet:
        print(f"{len(result.table)} particles -> {args.out}", file=sys.stderr)
        _specks_note(result.table, result.params)
        if args.recipe is not None:
            print(f"recipe -> {args.recipe} (replay: python -m core run {args.recipe} --out DIR)", file=sys.stderr)


@contextlib.contextmanager
def _caught_warnings():
    """Record every warning of a run for run.json and stderr, but dask's comms' unclosed sockets (ResourceWarning,
    QA: "warning: unclosed <socket.socket fd=9 ...>" after a chunked run: not the user's business)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", ResourceWarning)
        yield caught


def _map_record(spec) -> dict:
    """The phase map an analysis read its input through, for run.json (it was recorded nowhere but the recipe)."""
    return {"phase_map": spec.phase_map} if getattr(spec, "phase_map", None) else {}


def _warn_assumed_spacing(from_metadata: bool, given, fmt: str | None, spacing) -> None:
    """Warn (into run.json's warnings and on stderr) when neither the file nor ``--spacing`` gave the voxel size
    (QA: ``analyze`` measured at 1 µm unsaid; ``inspect`` and the dashboard say it)."""
    if from_metadata or given is not None or fmt == "demo":
        return
    size = "×".join(f"{v:g}" for v in spacing)
    warnings.warn(f"the file states no voxel size and --spacing was not given: measured at {size} µm assumed, so "
                  "every length, area and volume in µm is in voxels; give --spacing (µm) for physical units",
                  stacklevel=2)


def _specks_note(table, params) -> None:
    """The note of :func:`core.metrics.specks_reading` (particles under the minimum volume touching no other)."""
    from .metrics import specks_reading

    found = specks_reading(table, params.separation.min_volume_um3)
    if found is not None:
        print(f"note: {found[0]} Their rows are in particles.csv (equiv_diameter_um, frac_particle = 0).",
              file=sys.stderr)


def _chunked_engine(args, spec, params) -> int | None:
    """The chunk edge when the chunked engine runs, else None (see ``--chunk-size`` and the memory-budget rule).

    ``--chunk-size``, ``--workers`` or ``--scheduler`` ask for it; otherwise it
    is chosen when the whole-volume engine's estimated peak would not fit
    (:func:`core.chunked.analysis.chunked_engine_for`, the rule the dashboard applies too) and the chunked
    engine runs this analysis, with chunks of :data:`core.chunked.DEFAULT_CHUNK`.
    """
    from .chunked import DEFAULT_CHUNK
    from .chunked.analysis import check_supported

    asked = args.chunk_size is not None or args.workers is not None or args.scheduler is not None
    if args.workers is not None and args.scheduler is not None:
        raise CLIError("--workers sets the size of a local cluster; an existing one (--scheduler) has its own")
    if args.max_diameter is not None and not asked:
        raise CLIError("--max-diameter sets the halo of the chunked engine: use it with --chunk-size")
    if asked:
        try:
            check_supported(params, downsample=spec.downsample, presegmented=spec.presegmented)
        except ValueError as exc:
            raise CLIError(str(exc)) from None
        return args.chunk_size or DEFAULT_CHUNK
    from .chunked import open_lazy
    from .chunked.analysis import chunked_engine_for

    chunk = chunked_engine_for(spec, params)  # the rule, as the dashboard applies it (None: the whole-volume path)
    if chunk is not None and not args.quiet:
        shape = open_lazy(spec.path, **spec.load_kwargs()).shape  # the header only
        print(f"note: the whole-volume analysis of {'×'.join(map(str, shape))} voxels would not fit in memory; "
              f"running the chunked engine (chunks of {chunk}³)", file=sys.stderr)
    return chunk


def _analyze_chunked(args, spec, params, chunk_size: int, reads) -> None:
    """``analyze`` on the chunked engine: the same files, with ``phases.zarr`` / ``labels.zarr`` for the TIFFs."""
    from .chunked import cluster, open_lazy
    from .chunked.analysis import analyze_chunked, cluster_worker_memory
    from .inputs import read_info
    from .chunked.cluster import default_workers

    kw = spec.load_kwargs()
    spacing = tuple(args.spacing) if args.spacing is not None else None
    if spacing is not None:
        kw["spacing"] = spacing
    lazy = open_lazy(spec.path, chunks=chunk_size, **kw)  # the header: bad input is refused before the cluster
    if spec.phase_map is None:  # a label field (an Avizo file's Labels) is not thresholded as grey values
        from .io._common import _name
        from .io.phase_map import check_not_label_field

        check_not_label_field(_name(spec.path), lazy.metadata)
    report = _progress(args.quiet)
    with staged_output(args.out, overwrite=args.overwrite, reads=reads) as tmp:
        t0 = time.perf_counter()
        where = args.scheduler or f"{args.workers or 'one per core'} local workers"
        report(0.0, f"starting the cluster ({where})")
        with _caught_warnings() as caught:
            tilt = _tilt_warning(lazy.metadata, lazy.spacing, lazy.spacing_from_metadata, args.spacing, lazy.shape[0])
            if tilt is not None:
                warnings.warn(tilt, stacklevel=1)
            _warn_assumed_spacing(lazy.spacing_from_metadata, args.spacing, lazy.fmt, lazy.spacing)
            with cluster(workers=args.workers, address=args.scheduler):
                local = None if args.scheduler else (args.workers or default_workers())
                limit = cluster_worker_memory(args.scheduler) if args.scheduler else None
                res = analyze_chunked(spec, params, out=tmp, chunk_size=chunk_size, local_workers=local,
                                      worker_memory=limit, max_diameter_um=args.max_diameter, spacing=spacing,
                                      progress=report)
        for w in _distinct(caught):
            print(f"warning: {w}", file=sys.stderr)
        info = {"source": lazy.source, "format": lazy.fmt, "spacing_from_metadata": lazy.spacing_from_metadata}
        info.update(read_info(spec, lazy.metadata))  # the crop and alignment, as the whole-volume run records them
        record = {
            "command": "analyze",
            "input": {**info, "path": str(args.input), **_map_record(spec)},
            "params": res.params.to_dict(),
            "provenance": {**res.provenance, "workers": args.workers, "scheduler": args.scheduler,
                           "total_s": time.perf_counter() - t0},
            "warnings": _distinct(caught),
        }
        _write_table(res.table, tmp, "particles")
        (tmp / "run.json").write_text(dumps_strict(record, indent=2))
        if args.recipe is not None:
            from .recipe import Recipe, RecipeEntry, dumps, write_recipe

            name = args.name or Path(args.input).name.split(".")[0] or "analysis"
            prov = res.provenance
            entry = RecipeEntry(name=name, input=replace(spec, path=spec.path.expanduser().resolve()),
                                spacing=res.spacing, params=res.params, input_checksum=prov["input_checksum"],
                                n_particles=int(len(res.table)), versions=dict(prov["versions"]),
                                chunking=res.chunking)
            recipe = Recipe((entry,))
            dumps(recipe)
    if args.recipe is not None:
        write_recipe(recipe, args.recipe)
    if not args.quiet:
        print(f"{len(res.table)} particles -> {args.out}", file=sys.stderr)
        _specks_note(res.table, res.params)
        if args.recipe is not None:
            print(f"recipe -> {args.recipe} (replay: python -m core run {args.recipe} --out DIR)", file=sys.stderr)


def _cmd_run(args) -> None:
    """``run RECIPE``: a recipe's JSON file, or the ZIP the dashboard downloads where its analyses used brush strokes
    (the recipe and its training pairs), unpacked into a temporary folder for the replay."""
    import tempfile

    from .recipe import RecipeError, is_recipe_archive, unpack_recipe_archive

    if not is_recipe_archive(args.recipe):
        return _run_recipe(args, None)
    check_out(args.out, overwrite=args.overwrite, reads=(args.recipe,))
    with tempfile.TemporaryDirectory(prefix="recipe-") as unpacked:
        path = unpack_recipe_archive(args.recipe, unpacked)
        try:
            return _run_recipe(argparse.Namespace(**{**vars(args), "recipe": str(path)}), Path(args.recipe))
        except RecipeError as exc:  # named by the archive, not by the temporary folder it was unpacked into
            raise RecipeError(str(exc).replace(str(path), f"{Path(args.recipe).name}!{path.name}")) from None


def _run_recipe(args, archive: Path | None) -> None:
    """``run`` of the recipe file ``args.recipe`` (unpacked from ``archive`` where not None: the training pairs it
    holds are copied into ``--out``'s ``recipe-training`` and the recipes written there point at them)."""
    import shutil

    from .comparison import AnalysisRun, ComparisonError, compare_runs
    from .recipe import (
        Recipe, check_inputs, dumps, entry_to_dict, read_recipe, recipe_to_dict, replay, verify_classifier,
        version_differences,
    )

    # the recipe of an earlier run into --out (DIR/recipe.json, inputs absolute) may be replayed into it again
    own = os.path.realpath(Path(args.out).expanduser() / "recipe.json") == os.path.realpath(Path(args.recipe).expanduser())
    recipe_read = () if own or archive is not None else (args.recipe,)
    check_out(args.out, overwrite=args.overwrite, reads=recipe_read)
    recipe = read_recipe(args.recipe)
    entries = list(recipe.analyses)
    if args.only:
        unknown = [n for n in args.only if n not in {e.name for e in entries}]
        if unknown:
            raise CLIError(f"--only names {unknown[0]!r}, which is not in the recipe (it has "
                           f"{', '.join(repr(e.name) for e in entries)})")
        entries = [e for e in entries if e.name in args.only]
    check_inputs(recipe)
    for e in entries:
        if e.params.method == "model" or e.params.particles == "model":
            _check_weights(e.params.model.weights, f"analysis {e.name!r} model.weights")
        if e.params.method == "classifier":
            _check_classifier_folder(e.params.classifier, f"analysis {e.name!r} classifier")
            if not args.no_verify:  # training pairs other than the recorded ones: refused before any work
                verify_classifier(e)
    from . import __version__

    if recipe.package_version != __version__:
        print(f"warning: the recipe was written by core {recipe.package_version}; this is {__version__}",
              file=sys.stderr)
    report = _progress(args.quiet)
    n = len(entries)
    reads = [*recipe_read, *(getattr(e.input, "path", None) for e in entries)]
    if args.workers is not None and args.scheduler is not None:
        raise CLIError("--workers sets the size of a local cluster; an existing one (--scheduler) has its own")
    parallel = args.workers is not None or args.scheduler is not None
    compared = recipe.compare if len(entries) >= 2 else None
    if recipe.compare is not None and compared is None:
        print(f"warning: the recipe compares its analyses; --only left {len(entries)}, so no comparison is written",
              file=sys.stderr)
    with staged_output(args.out, overwrite=args.overwrite, reads=reads) as tmp, \
            _maybe_cluster(parallel, args) as client:
        written = (entries if archive is None else
                   _training_into_out(entries, Path(args.recipe).parent, tmp, Path(args.out)))
        whole = Recipe(tuple(written), recipe.package_version, compare=compared)
        (tmp / "recipe.json").write_text(dumps(whole), encoding="utf-8")
        runs = []
        done = _replay_parallel(client, entries, not args.no_verify, report) if client is not None else {}
        for i, entry in enumerate(entries):
            def progress(frac, msg, _i=i, _name=entry.name):
                report((_i + frac) / n, f"[{_i + 1}/{n}] {_name}: {msg}")

            for pkg, (then, now) in version_differences(entry).items():
                print(f"warning: {entry.name}: {pkg} {now} here, {then} in the original run", file=sys.stderr)
            t0 = time.perf_counter()
            if entry.name in done:  # replayed in parallel on the cluster
                result, caught_msgs = done[entry.name]
            else:
                with _caught_warnings() as caught:
                    if entry.chunking is not None:
                        result = _replay_chunked(entry, not args.no_verify, progress, tmp, args)
                    else:
                        result = replay(entry, verify=not args.no_verify, progress=progress)
                caught_msgs = _distinct(caught)
            analysed = result.provenance.get("input_checksum")
            if args.no_verify and entry.input_checksum is not None and analysed not in (None, entry.input_checksum):
                # (QA: --no-verify on a changed input said nothing, and provenance.json could not tell it apart)
                caught_msgs = [*caught_msgs, f"the input differs from the recipe's (checksum {analysed}, the recipe "
                                             f"recorded {entry.input_checksum}): analysed anyway (--no-verify), so "
                                             "the results may differ from the original run"]
            for w in caught_msgs:
                print(f"warning: {entry.name}: {w}", file=sys.stderr)
            verified = entry.input_checksum is not None and not args.no_verify
            if entry.input_checksum is None:
                print(f"warning: {entry.name}: the recipe has no input checksum; the input was not verified",
                      file=sys.stderr)
            used = result.provenance.get("classifier_pairs_sha256")
            if entry.classifier_checksum is not None and used != entry.classifier_checksum:
                print(f"warning: {entry.name}: the classifier's training pairs (SHA-256 {used}) differ from the "
                      f"recipe's ({entry.classifier_checksum}); the phases may differ from the original run",
                      file=sys.stderr)
            if entry.n_particles is not None and entry.n_particles != len(result.table):
                print(f"warning: {entry.name}: {len(result.table)} particles, the original run found "
                      f"{entry.n_particles}", file=sys.stderr)
            d = tmp / entry.folder
            d.mkdir()
            _write_table(result.table, d, "particles")
            (d / "recipe.json").write_text(dumps(Recipe((written[i],), recipe.package_version)), encoding="utf-8")
            record = {
                "command": "run",
                "name": entry.name,
                "recipe": str((archive or Path(args.recipe)).expanduser().resolve()),
                "input": entry_to_dict(entry)["input"],
                "input_verified": verified,
                "input_checksum_recipe": entry.input_checksum,
                **({"classifier_verified": entry.classifier_checksum is not None and not args.no_verify}
                   if entry.params.classifier is not None else {}),
                "params": result.params.to_dict(),
                "provenance": {**result.provenance, "total_s": time.perf_counter() - t0},
                "warnings": caught_msgs,
            }
            (d / "provenance.json").write_text(dumps_strict(record, indent=2), encoding="utf-8")
            runs.append(AnalysisRun(entry.name, result.table, entry.group, tuple(entry.attributes), record))
        report(1.0, f"{n} analys{'i' if n == 1 else 'e'}s replayed")
        if compared is not None:
            folder = _comparison_folder(entries)
            report(1.0, f"comparing the {n} analyses as the recipe records ({folder}/)")
            try:
                comp, files = compare_runs(runs, compared, tmp / folder, recipe=recipe_to_dict(whole),
                                           made=_utc_now(), versions=_report_versions())
            except ComparisonError as exc:  # the analyses replayed stay: the comparison alone is not written
                shutil.rmtree(tmp / folder, ignore_errors=True)
                print(f"warning: the recipe's comparison cannot be made, so none is written: {exc}", file=sys.stderr)
            else:
                for note in comp.notes:  # (what the comparison could not compute: said, as the page says it)
                    print(f"note: comparison: {note}", file=sys.stderr)
                if not args.quiet:
                    print(f"comparison -> {Path(args.out) / folder} ({', '.join(f.name for f in files)})",
                          file=sys.stderr)
    if not args.quiet:
        print(f"{n} analys{'i' if n == 1 else 'e'}s -> {args.out}", file=sys.stderr)


def _comparison_folder(entries) -> str:
    """The folder of a replay's comparison: ``comparison``, unless an analysis's folder has that name."""
    taken = {e.folder for e in entries}
    return next(f for f in ("comparison", *(f"comparison_{i}" for i in range(1, len(taken) + 2))) if f not in taken)


def _utc_now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def _report_versions() -> dict[str, str]:
    """The versions a headless report names: the analysis packages' and the code's git commit."""
    from .pipeline import source_commit, versions

    out = dict(versions())
    commit = source_commit()
    if commit:
        out["core commit"] = commit
    return out


def _cmd_compare(args) -> None:
    """``compare DIR DIR ...``: the Compare page's summary, tests and trend of analysis folders, headless."""
    from .comparison import CompareSettings, ComparisonError, compare_runs, read_analysis_folder
    from .records import Attribute

    folders = list(args.folders)
    check_out(args.out, overwrite=args.overwrite, reads=folders)
    runs = [read_analysis_folder(f) for f in folders]
    if args.names is not None:
        if len(args.names) != len(runs):
            raise CLIError(f"--names needs one name per folder: {len(runs)} folders, {len(args.names)} names")
        runs = [replace(r, name=n) for r, n in zip(runs, args.names)]
    if args.values is not None:
        if args.axis is None:
            raise CLIError("--values gives the electrodes' values of an attribute: name it with --axis")
        if len(args.values) != len(runs):
            raise CLIError(f"--values needs one value per folder: {len(runs)} folders, {len(args.values)} values")
        runs = [replace(r, attributes=tuple(a for a in r.attributes if a.name != args.axis)
                        + (Attribute(args.axis, v, args.unit or ""),)) for r, v in zip(runs, args.values)]
    elif args.unit is not None:
        raise CLIError("--unit is the unit of --values; without --values each folder's recipe gives its own")
    try:
        settings = CompareSettings(edge_policy=args.edge, cut=args.cut, min_diameter_um=args.min_diameter,
                                   metric=args.metric, axis=args.axis, axis_scale=args.axis_scale)
    except ComparisonError as exc:
        raise CLIError(str(exc)) from None
    with staged_output(args.out, overwrite=args.overwrite, reads=folders) as tmp:
        comp, files = compare_runs(runs, settings, tmp, made=_utc_now(), versions=_report_versions())
    if not args.quiet:
        for note in comp.notes:
            print(f"note: {note}", file=sys.stderr)
        print(f"{len(runs)} electrodes compared -> {args.out} ({', '.join(f.name for f in files)})", file=sys.stderr)


def _training_into_out(entries, unpacked: Path, tmp: Path, out: Path) -> list:
    """The entries as the recipes written into ``out`` name them: each classifier folder unpacked from an archive
    (under ``unpacked``) copied into the staged output ``tmp`` at the same relative path, and named by its path in
    ``out`` once the output is in place."""
    import shutil

    final = out.expanduser().resolve()
    written = []
    for e in entries:
        src = None if e.params.classifier is None else Path(e.params.classifier).resolve()
        if src is None or not src.is_relative_to(unpacked.resolve()):
            written.append(e)
            continue
        rel = src.relative_to(unpacked.resolve())
        if not (tmp / rel).exists():
            shutil.copytree(src, tmp / rel)
        written.append(replace(e, params=replace(e.params, classifier=str(final / rel))))
    return written


class _Replayed:
    """What ``run`` writes of a replayed analysis (an :class:`~core.pipeline.AnalysisResult`'s table, params and
    provenance), from the chunked engine or from a cluster worker."""

    def __init__(self, table, params, provenance):
        self.table, self.params, self.provenance = table, params, provenance


def _maybe_cluster(parallel: bool, args):
    import contextlib

    if not parallel:
        return contextlib.nullcontext(None)
    from .chunked import cluster

    return cluster(workers=args.workers, address=args.scheduler)


def _replay_task(entry, verify: bool):
    """One whole-volume analysis of a recipe, on a cluster worker: ``(_Replayed, warnings)``."""
    from .recipe import replay

    with _caught_warnings() as caught:
        result = replay(entry, verify=verify)
    return _Replayed(result.table, result.params, result.provenance), _distinct(caught)


def _replay_parallel(client, entries, verify: bool, report) -> dict:
    """Replay the whole-volume analyses of ``entries`` as tasks of the cluster at once; ``{name: (result, warnings)}``.

    The chunked ones are left to the caller (they use the cluster's workers for their chunks).
    """
    from distributed import as_completed

    whole = [e for e in entries if e.chunking is None]
    if not whole:
        return {}
    futures = {client.submit(_replay_task, e, verify, pure=False): e.name for e in whole}
    report(0.0, f"{len(whole)} analyses submitted to the cluster")
    out = {}
    for k, fut in enumerate(as_completed(futures), 1):
        out[futures[fut]] = fut.result()
        report(k / (len(whole) + 1), f"{futures[fut]}: done ({k}/{len(whole)})")
    return out


def _replay_chunked(entry, verify: bool, progress, tmp: Path, args):
    """One analysis of a recipe recorded with ``chunking``: the chunked engine, with the recorded chunks and halo."""
    import contextlib
    import shutil
    import tempfile

    from .chunked import cluster
    from .chunked.analysis import analyze_chunked

    work = Path(tempfile.mkdtemp(prefix=".chunked-", dir=tmp))
    own = (contextlib.nullcontext() if args.workers is not None or args.scheduler is not None
           else cluster())  # inside a parallel run the cluster is already the default scheduler
    try:
        with own:
            res = analyze_chunked(entry.input, entry.params, out=work, chunk_size=entry.chunking["chunk_size"],
                                  halo=entry.chunking["halo"],
                                  # recipes written before the second try: none (the halo itself), as they ran
                                  wide_halo=entry.chunking.get("wide_halo", entry.chunking["halo"]),
                                  max_diameter_um=entry.chunking.get("max_diameter_um"), spacing=entry.spacing,
                                  verify_checksum=entry.input_checksum if verify else None, progress=progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _Replayed(res.table, res.params, res.provenance)


def _load_classifier(path):
    """The classifier of a ``--classifier`` folder, retrained from its pairs (one sentence on any error)."""
    from .classify import load_classifier

    try:
        return load_classifier(Path(path).expanduser())
    except FileNotFoundError:
        raise CLIError(f"--classifier {path}: no such folder") from None
    except (ValueError, TypeError) as exc:
        raise CLIError(f"--classifier {exc}") from None


def _check_method_args(args) -> None:
    """``--weights`` / ``--classifier`` only with their ``--method``; ``--method classifier`` only with a classifier."""
    if args.weights is not None and args.method != "model":
        raise CLIError("--weights is only used with --method model")
    if args.classifier is not None and args.method != "classifier":
        raise CLIError("--classifier is only used with --method classifier")
    if args.method == "classifier" and args.classifier is None:
        raise CLIError("--method classifier needs --classifier CLF (a folder written by train-classifier)")
    if getattr(args, "phase_map", None) and args.method in ("classifier", "model"):
        # (QA: accepted, the classifier silently unused, run.json saying method "classifier")
        raise CLIError(f"--phase-map reads INPUT as phases already segmented: --method {args.method} would segment "
                       "nothing; leave it out")


def _check_classifier_folder(path, where: str = "--classifier") -> None:
    """A classifier folder is there (before any work; its content is read, and checked, by the run)."""
    from .classify import META_FILE, PAIRS_FILE

    folder = Path(path).expanduser()
    if not os.path.lexists(folder):
        raise CLIError(f"{where} {path}: no such folder")
    if not folder.is_dir() or not (folder / META_FILE).is_file() or not (folder / PAIRS_FILE).is_file():
        raise CLIError(f"{where} {path} is not a classifier folder written by 'python -m core train-classifier' "
                       f"({META_FILE} + {PAIRS_FILE})")


def _cmd_segment(args) -> None:
    from .io import save_tiff
    from .memory import check_memory
    from .phases import SegmentParams, segment_detailed
    from .pipeline import AnalysisParams, check_nonfinite, read_grey

    reads = (args.input, args.weights, args.classifier)
    check_out(args.out, overwrite=args.overwrite, reads=reads)  # first: before any reading
    _check_method_args(args)
    if args.flatten_shading and args.method == "classifier":
        raise CLIError(_FLATTEN_CLASSIFIER)
    weights = args.weights or "default"
    _input_spec(args)
    if args.method == "model":
        _check_weights(weights)
    classifier = _load_classifier(args.classifier) if args.method == "classifier" else None
    with staged_output(args.out, overwrite=args.overwrite, reads=reads) as tmp:
        opened = _load_input(args)
        data, spacing = opened.volume, opened.spacing
        # the whole analysis's estimate: a little more than segmenting alone needs
        check_memory(data.shape, data.dtype, AnalysisParams(method=args.method, classifier=args.classifier),
                     resident_input=True)
        with _caught_warnings() as caught:
            check_nonfinite(data)
            if classifier is not None:
                phases, _ = classifier.predict(data, spacing, progress=_progress(args.quiet))
                what = f"classifier trained on {sum(classifier.painted)} painted voxels"
            else:
                params = AnalysisParams(method=args.method, segment=SegmentParams(flatten=bool(args.flatten_shading)))
                # a fill and a drift warned, the drift flattened on request
                grey, _, _ = read_grey(data, params, aligned="align" in opened.info)
                if args.method == "model":
                    from .nn.infer import segment_volume
                    from .nn.params import ModelParams

                    seg = segment_volume(grey, ModelParams(weights=weights), progress=_progress(args.quiet))
                    phases, what = seg.phases, f"3D U-Net ({weights} weights)"
                else:
                    res = segment_detailed(grey, params.segment, progress=_progress(args.quiet))
                    phases, what = res.phases, f"thresholds low={res.params.low:g} high={res.params.high:g}"
                if params.segment.flatten:
                    what += " (on the volume flattened along z)"
        for w in _distinct(caught):
            print(f"warning: {w}", file=sys.stderr)
        save_tiff(tmp / "phases.tif", phases, spacing)
    if not args.quiet:
        print(f"{what}; phases -> {args.out}", file=sys.stderr)


def _cmd_train_classifier(args) -> None:
    from .classify import ClassifierParams, save_classifier, train
    from .inputs import FileInput, open_input
    from .io import load_volume

    reads = (*args.image, *args.scribbles)
    check_out(args.out, overwrite=args.overwrite, reads=reads)  # first: before any reading
    if len(args.image) != len(args.scribbles):
        raise CLIError(f"{len(args.image)} --image but {len(args.scribbles)} --scribbles; give one --scribbles "
                       "after each --image")
    spacing = tuple(args.spacing) if args.spacing is not None else None
    params = ClassifierParams(seed=args.seed)
    report = _progress(args.quiet)
    with staged_output(args.out, overwrite=args.overwrite, reads=reads) as tmp:
        images, scribbles, spacings = [], [], []
        for k, (img, scr) in enumerate(zip(args.image, args.scribbles)):
            report(k / (len(args.image) + 1), f"reading {Path(img).name}")
            opened = open_input(FileInput(path=Path(img)), spacing=spacing)
            s = load_volume(Path(scr).expanduser(), mmap=False).data
            if s.shape != opened.volume.shape:
                raise CLIError(f"--scribbles {scr} has shape {s.shape}, its --image {img} {opened.volume.shape}; "
                               "they must match")
            if s.dtype != "uint8":
                raise CLIError(f"--scribbles {scr} must be uint8 (0 pore, 1 CBD, 2 NMC, 255 not painted), got "
                               f"{s.dtype}")
            images.append(opened.volume)
            scribbles.append(s)
            spacings.append(opened.spacing)
        report(len(args.image) / (len(args.image) + 1), "training")
        clf = train(images, scribbles, spacings, params)
        save_classifier(tmp, clf)
        report(1.0, "classifier written")
    if not args.quiet:
        painted = ", ".join(f"{n} {c}" for n, c in zip(("pore", "CBD", "NMC"), clf.painted))
        print(f"classifier trained on {len(images)} image(s) ({painted} painted voxels) -> {args.out}",
              file=sys.stderr)


#: ``inspect``: voxels up to which the box without a fill is computed (it reads every plane).
INSPECT_BOX_VOXELS = 1 << 28


_FLATTEN_HELP = ("map every slice's pure pore and NMC grey values onto the whole volume's before segmenting (for a "
                 "scan whose brightness drifts along z; the analysis warns where it drifts by 15 %% of the pore-NMC "
                 "contrast or more; threshold and model methods)")
_FLATTEN_CLASSIFIER = ("--flatten-shading applies to --method threshold and model, not classifier: a classifier reads "
                       "the grey values of the images it was trained on (one trained on painted slices scales each "
                       "z-slice by its own grey values)")


def inspect_input(args) -> dict:
    """What an analysis of the arguments' input would read, from its header, a sample and a few planes (never the
    whole of a big file): the format, the shapes (file, crop, as analysed), voxel type and size and where the size comes
    from, the header a raw file was laid out by, the value range of a sample, whether the values look already
    segmented (and the map proposed), a fill outside the field of view (and, up to
    :data:`INSPECT_BOX_VOXELS`, the crop without it), a brightness drift along z (:func:`core.phases.shading_reading`),
    the memory estimate and the engine the analysis would use."""
    import numpy as np

    from .chunked import open_lazy_array
    from .chunked.analysis import chunked_engine_for
    from .io.phase_map import propose_phase_map
    from .io.sem import SEM_SOURCES, data_bar, data_bar_message, find_scale_bar, scale_bar_message
    from .memory import estimate_peak_bytes
    from .phases import (alignment_message, alignment_reading, data_box, fill_message, fill_reading, shading_message,
                         shading_reading)
    from .phases.preview import grey_sample
    from .pipeline import AnalysisParams

    spec = _input_spec(args)
    kw = spec.load_kwargs()
    if args.spacing is not None:
        kw["spacing"] = tuple(args.spacing)
    arr, lazy = open_lazy_array(spec.path, **kw)
    meta = dict(lazy.metadata)
    f = int(spec.downsample)
    shape = [int(n) for n in lazy.shape]
    out: dict = {
        "input": os.fspath(spec.path), "format": lazy.fmt,
        "shape_file_zyx": meta.get("shape_read", shape), "crop_zyx": meta.get("crop"), "shape_read_zyx": shape,
        "downsample": f, "shape_analysed_zyx": [n // f for n in shape], "dtype": str(lazy.data.dtype),
        "voxel_um_zyx": [float(v) * f for v in lazy.spacing],
        "voxel_size_from": ("the command line" if args.spacing is not None else
                            f"its header {meta['header']}" if meta.get("header") and lazy.spacing_from_metadata else
                            f"the file's {SEM_SOURCES[meta.get('spacing_source')]}"
                            if lazy.spacing_from_metadata and meta.get("spacing_source") in SEM_SOURCES else
                            "the file's metadata" if lazy.spacing_from_metadata else
                            "none in the file: 1 µm assumed, give --spacing"),
    }
    if meta.get("spacing_unit"):
        out["voxel_size_unit_read"] = meta["spacing_unit"]
    if (meta.get("spacing_z_assumed") and shape[0] > 1 and lazy.spacing_from_metadata
            and args.spacing is None):  # slices that state their pixel size only: the depth is not read
        out["voxel_z_assumed"] = True
    if meta.get("layout_from"):
        out["layout_from"] = f"{meta['layout_from']} ({meta['header']})"
    if lazy.fmt == "raw" and not meta.get("layout_from") and spec.crop is None:  # a layout typed, no header's
        from .io.raw import row_length

        likely = row_length(np.asarray(arr[shape[0] // 2]))
        if likely != shape[2]:
            out["rows_do_not_line_up"] = (f"the voxels of the middle slice are most like those {likely} further on, "
                                          f"not {shape[2]}: the rows are likely {likely} voxels long; check "
                                          "--raw-shape (Z Y X, x the fastest; z and x swapped read like this)")
    tilt = _uncorrected_tilt(meta, lazy.spacing, lazy.spacing_from_metadata, args.spacing, shape[0])
    if tilt is not None:  # a FIB cross-section face saved without the tilt correction: its pixel height on the face
        out["tilt_uncorrected"] = tilt
    sample = grey_sample(arr, 200_000)
    finite = sample[np.isfinite(sample)] if sample.dtype.kind == "f" else sample
    out["value_range"] = [float(finite.min()), float(finite.max())] if finite.size else None
    materials = meta.get("materials") or {}
    found = propose_phase_map(sample.reshape(1, 1, -1), names=materials)
    if found is not None:
        values, shares, proposal = found
        names = {0: "pore", 1: "cbd", 2: "nmc"}
        out["looks_segmented"] = {"values": values.tolist(), "shares_of_a_sample": [round(float(x), 4) for x in shares],
                                  "phase_map_proposed": ",".join(f"{v}={names[proposal[v]]}" for v in values.tolist())}
        if materials:
            out["looks_segmented"]["materials"] = {int(v): str(n) for v, n in materials.items()}
    elif spec.phase_map is None:  # labels that no phase map of a few values takes: analyze refuses them
        from .io.phase_map import label_field_message

        label = label_field_message(os.path.basename(os.fspath(spec.path)), meta)
        if label is not None:
            out["label_field"] = label
    if found is None and not out.get("label_field"):
        # an SEM image's data bar: the rows its metadata states (of the file: not after a crop), else found in
        # the middle plane as read
        plane = np.asarray(arr[shape[0] // 2])
        bar = data_bar(shape[1], meta.get("data_bar_rows") if spec.crop is None else None, plane)
        if bar is not None:
            start = [lo for lo, _ in spec.crop] if spec.crop is not None else [0, 0, 0]
            keep = [[0, shape[0]], [0, bar["start"]], [0, shape[2]]]
            out["data_bar"] = {**bar, "warning": data_bar_message(bar) + " (Inspect the image without it for a fill.)",
                               "crop_without_it": [[s0 + lo, s0 + hi] for s0, (lo, hi) in zip(start, keep)]}
            scale = None if lazy.spacing_from_metadata or args.spacing is not None else find_scale_bar(plane, bar)
            if scale is not None:  # no voxel size in the file: the scale bar gives it
                out["data_bar"]["scale_bar"] = {**scale, "note": scale_bar_message(scale)}
    fill = None if found is not None or out.get("label_field") or out.get("data_bar") else fill_reading(arr)
    if fill is not None:
        out["fill"] = {**fill, "warning": fill_message(fill)}
        if arr.size <= INSPECT_BOX_VOXELS:
            box = data_box(arr, fill["value"])
            if box is not None:
                start = [lo for lo, _ in spec.crop] if spec.crop is not None else [0, 0, 0]
                out["fill"]["crop_without_it"] = [[s0 + lo, s0 + hi] for s0, (lo, hi) in zip(start, box)]
    shading = (None if found is not None or out.get("label_field")
               else shading_reading(arr, exclude=None if fill is None else fill["value"]))
    if shading is not None:
        out["shading"] = {**shading, "warning": shading_message(shading)}
    if spec.align is not None:  # --align: what was done (the slices are not read for a shift again: see read_grey)
        from .phases.alignment import aligned_message

        out["aligned"] = {**meta.get("align", {}), "note": aligned_message(spec.align)}
    shifted = (None if found is not None or out.get("label_field") or spec.align is not None
               else alignment_reading(arr))
    if shifted is not None and shifted["warn"]:  # a FIB-SEM stack not aligned
        out["alignment"] = {**shifted, "warning": alignment_message(shifted)}
    params = AnalysisParams()
    out["memory_estimate_bytes"] = int(estimate_peak_bytes(tuple(shape), lazy.data.dtype, params, downsample=f,
                                                           presegmented=False))
    chunk = chunked_engine_for(spec, params)
    out["engine"] = "whole volume" if chunk is None else f"chunked (chunks of {chunk}³)"
    return out


def _cmd_inspect(args) -> None:
    info = inspect_input(args)
    if args.json:
        print(json.dumps(info, indent=2, default=json_default))
        return
    z = lambda v: "×".join(map(str, v))  # noqa: E731
    lines = [f"{info['input']}: {info['format']}, {z(info['shape_file_zyx'])} voxels (z×y×x), {info['dtype']}"]
    if info.get("layout_from"):
        lines.append(f"  laid out by {info['layout_from']}")
    if info["crop_zyx"]:
        lines.append("  cropped to " + ", ".join(f"{a} {lo}:{hi}" for a, (lo, hi) in zip("zyx", info["crop_zyx"]))
                     + f" -> {z(info['shape_read_zyx'])}")
    if info["downsample"] > 1:
        lines.append(f"  downsampled by {info['downsample']} -> {z(info['shape_analysed_zyx'])}")
    unit = f", read as {info['voxel_size_unit_read']}" if info.get("voxel_size_unit_read") else ""
    if info.get("voxel_z_assumed"):
        unit += "; z taken equal to x: give --spacing Z Y X where the slices are thicker or thinner"
    lines.append(f"  voxel size {z(f'{v:g}' for v in info['voxel_um_zyx'])} µm (from {info['voxel_size_from']}{unit})")
    if info.get("rows_do_not_line_up"):
        lines.append("  ROWS DO NOT LINE UP: " + info["rows_do_not_line_up"])
    if info.get("tilt_uncorrected"):
        t, v, f = info["tilt_uncorrected"], info["voxel_um_zyx"], info["downsample"]  # --spacing: the file's
        lines.append(f"  TILT: {t['note']} Where it is one: --spacing {v[0] / f:.4g} {t['dy_um']:.4g} {v[2] / f:.4g}")
    if info["value_range"]:
        lines.append(f"  values {info['value_range'][0]:g} to {info['value_range'][1]:g} (a sample)")
    if info.get("looks_segmented"):
        seg = info["looks_segmented"]
        if seg.get("materials"):
            named = ", ".join(f"{v} {n!r}" for v, n in seg["materials"].items())
            lines.append(f"  looks already segmented: values {seg['values']}, named in the file {named}; analyse it "
                         f"with --phase-map (the names and the value order propose {seg['phase_map_proposed']}: "
                         "check it)")
        else:
            lines.append(f"  looks already segmented: values {seg['values']}; analyse it with "
                         f"--phase-map (value order proposes {seg['phase_map_proposed']}: check it)")
    if info.get("label_field"):
        lines.append("  LABEL FIELD: " + info["label_field"])
    if info.get("fill"):
        lines.append("  FILL: " + info["fill"]["warning"])
        if info["fill"].get("crop_without_it"):
            lines.append("  the largest box without it: --crop "
                         + " ".join(str(v) for pair in info["fill"]["crop_without_it"] for v in pair))
    if info.get("data_bar"):
        lines.append("  DATA BAR: " + info["data_bar"]["warning"])
        lines.append("  the image without it: --crop "
                     + " ".join(str(v) for pair in info["data_bar"]["crop_without_it"] for v in pair))
        if info["data_bar"].get("scale_bar"):
            n = info["data_bar"]["scale_bar"]["length_px"]
            lines.append(f"  SCALE BAR: {info['data_bar']['scale_bar']['note']} Give it as --spacing (5 µm printed: "
                         f"--spacing {5 / n:.4g}).")
    if info.get("shading"):
        if info["shading"]["warn"]:
            lines.append("  WARNING: " + info["shading"]["warning"])
        else:
            lines.append(f"  grey values along z: the pure pore and NMC grey values vary by "
                         f"{info['shading']['drift']:.0%} of the pore-NMC contrast between slabs (no drift to flatten)")
    if info.get("alignment"):
        lines.append("  ALIGNMENT: " + info["alignment"]["warning"])
    if info.get("aligned"):
        lines.append("  ALIGNED: " + info["aligned"]["note"])
    lines.append(f"  analysis: the {info['engine'].replace('whole volume', 'whole-volume')} engine, about {info['memory_estimate_bytes'] / 2**30:.2f} GiB "
                 "at its peak (default parameters)")
    print("\n".join(lines))


def _cmd_demo(args) -> None:
    from .io import save_tiff
    from .synth import DEMO_ELECTRODES, demo_electrode

    names = args.names or list(DEMO_ELECTRODES)
    for n in names:
        if n not in DEMO_ELECTRODES:
            raise CLIError(f"unknown demo electrode {n!r}; choose from {', '.join(DEMO_ELECTRODES)}")
    shape = (args.size,) * 3 if args.size else None
    report = _progress(args.quiet)
    with staged_output(args.out, overwrite=args.overwrite) as tmp:
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


class _UsageError(Exception):
    """A command-line syntax error (argparse's), reported as one sentence without the usage block."""


class _Parser(argparse.ArgumentParser):
    """argparse without the usage block on errors: ``error: <sentence>.`` and exit status 2 (see :func:`main`)."""

    def error(self, message):  # noqa: D401  (argparse's hook)
        raise _UsageError(message)


def _factor(text: str) -> int:
    from .io.downsampling import check_downsample

    try:
        factor = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    try:
        return check_downsample(factor, "the factor")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _whole(minimum: int, maximum: int | None = None):
    """argparse type: a whole number from ``minimum`` (to ``maximum``)."""
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            span = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
            raise argparse.ArgumentTypeError(f"must be a whole number {span}, got {value}")
        return value
    return convert


class _Spacing(argparse.Action):
    """``--spacing``: one voxel size (isotropic) or three (Z Y X), µm; stored as three."""

    def __call__(self, parser, namespace, values, option_string=None):
        if len(values) not in (1, 3):
            parser.error(f"{option_string}: give one voxel size in µm (isotropic) or three (Z Y X), "
                         f"got {len(values)}: {' '.join(f'{v:g}' for v in values)}")
        setattr(namespace, self.dest, list(values) * 3 if len(values) == 1 else list(values))


def _voxel_size(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and 0 < value):
        raise argparse.ArgumentTypeError(f"a voxel size must be a finite number > 0 µm, got {text}")
    lo, hi = SPACING_MIN_UM, SPACING_MAX_UM
    if not lo <= value <= hi:
        raise argparse.ArgumentTypeError(f"a voxel size must be between {lo:g} and {hi:g} µm, got {text}")
    return value


def _distinct(caught) -> list[str]:
    """The messages of caught warnings, each once, in order."""
    return list(dict.fromkeys(str(w.message) for w in caught))


def _dtype(text: str) -> str:
    import numpy as np

    try:
        dt = np.dtype(text)
    except TypeError:
        dt = None
    if dt is None or dt.kind not in "uif":
        raise argparse.ArgumentTypeError(f"not a numeric data type: {text!r} (e.g. uint8, uint16, float32)")
    return text


def _phase_map(text: str) -> str:
    from .io.phase_map import parse_phase_map

    try:
        parse_phase_map(text)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


_OVERWRITE_HELP = ("replace --out if it already holds earlier results: the whole folder is replaced in one step "
                   "(nothing of the earlier run is kept, and a failed run keeps it untouched); only a folder of "
                   "this tool's results is replaced")


def build_parser() -> argparse.ArgumentParser:
    from .io._common import _SUPPORTED_TEXT

    p = _Parser(prog="python -m core", description="Particle detachment analysis of cathode tomography.")
    sub = p.add_subparsers(dest="command", required=True)

    def add_out(sp):
        sp.add_argument("--out", required=True, type=Path,
                        help="output folder (new or empty; its parent must exist); see --overwrite")
        sp.add_argument("--overwrite", action="store_true", help=_OVERWRITE_HELP)

    def add_input(sp, out: bool = True):
        sp.add_argument("input", help=f"volume: {_SUPPORTED_TEXT}")  # (QA: the help named 7 formats of 14)
        if out:
            add_out(sp)
        sp.add_argument("--spacing", nargs="+", type=_voxel_size, action=_Spacing, metavar="UM",
                        help="voxel size in µm: one value (isotropic) or three (Z Y X)")
        sp.add_argument("--dataset", help="HDF5/Zarr dataset name")
        sp.add_argument("--raw-shape", nargs=3, type=_whole(1), metavar=("Z", "Y", "X"),
                        help="raw files: shape (not needed where a header beside the file states it: ESRF "
                             "X.vol.info, MetaImage X.mhd, VGStudio / Nikon X.vgi)")
        sp.add_argument("--raw-dtype", type=_dtype, help="raw files: dtype such as uint16 or float32")
        sp.add_argument("--raw-offset", type=_whole(0), default=0, help="raw files: header bytes to skip")
        sp.add_argument("--raw-byte-order", choices=("little", "big"), default="little",
                        help="raw files: byte order of multi-byte values (big: ImageJ / Fiji's Save As > Raw Data)")
        sp.add_argument("--crop", nargs=6, type=_whole(0), metavar=("Z0", "Z1", "Y0", "Y1", "X0", "X1"),
                        help="analyse only this region of interest: voxels Z0 to Z1 (Z1 excluded), Y0 to Y1, X0 to "
                             "X1 of the file, before any downsampling (e.g. to leave out the current collector or "
                             "the corners outside a reconstruction's circle)")
        sp.add_argument("--downsample", type=_factor, default=1, metavar="F",
                        help="block-average F×F×F voxels into one before the analysis (1-8; default 1 = none); the "
                             "outputs are on the coarser grid and the voxel size is multiplied by F. Use it when the "
                             "blur spans more than about 0.9 voxel (the analysis warns)")
        sp.add_argument("--align", action="store_true",
                        help="the slices of a stack that was not aligned (a FIB-SEM stack; inspect says where the "
                             "slices are shifted against one another): measure each slice's offset against the one "
                             "before and shift it back, keeping the region all slices share (whole pixels; after "
                             "--crop, before --downsample; the offsets are written with the run, and a recipe "
                             "replays them)")
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")

    a = sub.add_parser("analyze", help="segment, identify particles, write the particle table")
    add_input(a)
    a.add_argument("--phase-map", type=_phase_map, help="INPUT is a phase volume: e.g. 0=pore,128=nmc,255=cbd")
    a.add_argument("--params", help="JSON file of analysis parameters")
    a.add_argument("--method", choices=("threshold", "model", "classifier"),
                   help="phases and particles by thresholds + watershed (default), by the shipped 3D U-Net, or "
                        "phases by a classifier trained on brush strokes + watershed")
    a.add_argument("--weights", help="model weights for --method model (default: shipped)")
    a.add_argument("--classifier", metavar="CLF", help="for --method classifier: a folder written by train-classifier")
    a.add_argument("--axis", type=int, choices=(0, 1, 2), help="electrode thickness axis (default 0 = z)")
    a.add_argument("--separator-side", choices=("auto", "start", "end"), help="end of the axis facing the separator")
    a.add_argument("--depth-from", choices=("electrode", "volume"),
                   help="what depth_frac runs over along the thickness axis: the electrode (default; its faces where "
                        "a slice's NMC share reaches half its plateau, so a margin beyond its surface is not depth; "
                        "run.json records the slices as depth_extent) or the whole imaged volume")
    a.add_argument("--seeding", choices=("auto", "phases", "regularised", "deconvolved"),
                   help="what the watershed seeds on: the NMC phase, or a regularised / deconvolved mask of the "
                        "greyscale for noisy, blurred scans where touching particles merge (slower; the phases and "
                        "contact areas stay the same); auto (default): the deconvolved mask where the scan's blur "
                        "measures 0.9 voxel or more, else the NMC phase (run.json records which)")
    a.add_argument("--refine", choices=("auto", "off", "on", "nmc"),
                   help="refine the thresholded phases against a model of the scan's blur and noise (on: moves the "
                        "NMC, CBD and pore surfaces that the blur shifted; nmc: the NMC surfaces only; about 0.7 s "
                        "per 128^3); auto (default): on where the scan's blur measures 0.9 voxel or more, else nmc "
                        "where its noise measures 0.065 of the pore-NMC contrast or more (run.json records it)")
    a.add_argument("--flatten-shading", action="store_true", help=_FLATTEN_HELP)
    a.add_argument("--coarsen", choices=("auto", "1", "2", "3", "4"),
                   help="separate the particles on a grid this many times coarser and bring the labels back onto "
                        "the full-resolution NMC (for scans whose particles are ~100 voxels across: 4x faster "
                        "separation or more); 1 (default): full resolution; auto: from the largest particle's "
                        "diameter (kept >= 50 voxels across; 1 for particles under 100 voxels across); with the "
                        "chunked engine too")
    a.add_argument("--recipe", type=Path, help="also write a recipe (JSON) that replays this analysis")
    a.add_argument("--name", help="name of the analysis in the recipe (default: the input's file name)")
    a.add_argument("--chunk-size", type=_whole(8, 4096), metavar="N",
                   help="run the chunked engine (core.chunked, on a Dask cluster): chunks of N³ voxels, never the "
                        "whole volume in memory; phases and labels are written as phases.zarr / labels.zarr "
                        "(OME-Zarr) instead of TIFF. Without it the chunked engine (N = 128) still runs when the "
                        "whole-volume analysis's estimated peak memory exceeds the memory available (free memory, "
                        "ulimit -v, DETACH_MEMORY_BUDGET): the rule by which a whole-volume run is otherwise refused")
    a.add_argument("--workers", type=_whole(1), metavar="K",
                   help="chunked engine: worker processes of the local cluster (default: one per core)")
    a.add_argument("--scheduler", metavar="ADDRESS",
                   help="chunked engine: an existing Dask scheduler (tcp://host:8786); its workers must see the "
                        "input and the --out folder at the same paths")
    a.add_argument("--max-diameter", type=_voxel_size, metavar="UM",
                   help="chunked engine: the largest particle's diameter in µm, which sets the particle halo "
                        "(halo = diameter / finest voxel edge + 1 voxels; default: estimated from the phases, the "
                        "largest ball inside the NMC phase; the run warns when particles reach beyond the halo)")
    a.set_defaults(func=_cmd_analyze)

    r = sub.add_parser("run", help="replay every analysis of a recipe headless")
    r.add_argument("recipe", help="recipe file (JSON) written by 'analyze --recipe' or the dashboard, or the "
                                  "dashboard's recipe ZIP (the recipe with its brush-stroke training pairs)")
    add_out(r)
    r.add_argument("--no-verify", action="store_true", help="analyse inputs whose checksum differs from the recipe's")
    r.add_argument("--only", nargs="+", metavar="NAME", help="replay only these analyses")
    r.add_argument("--workers", type=_whole(1), metavar="K",
                   help="replay the analyses in parallel on a local Dask cluster of K workers (chunked analyses "
                        "use its workers for their chunks); the outputs are the same")
    r.add_argument("--scheduler", metavar="ADDRESS",
                   help="the same on an existing Dask scheduler (its workers must see the inputs and --out)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    r.set_defaults(func=_cmd_run)

    c = sub.add_parser("compare", help="compare analysed electrodes as the dashboard's Compare page does: summary "
                                       "with CIs, tests between every pair, a trend along an attribute; headless")
    c.add_argument("folders", nargs="+", metavar="DIR",
                   help="output folders of 'analyze', or the analyses' folders of a 'run' (at least two; names, "
                        "groups and attributes from each folder's recipe.json where it has one, else the folder's "
                        "name)")
    add_out(c)
    c.add_argument("--names", nargs="+", metavar="NAME",
                   help="the electrodes' names, one per folder in their order (default: each folder's recipe's "
                        "name, else the folder's name; two replays of one recipe need names of their own)")
    c.add_argument("--edge", choices=("include", "exclude", "miles"), default="include",
                   help="particles cut by the volume edge: include (default; every particle counts), exclude (left "
                        "out), miles (left out; tests and summary count particles, so the same as exclude here)")
    c.add_argument("--cut", type=float, default=0.5,
                   help="detached cut: the summary's and the trend's share of particles with detachment above it "
                        "(strictly between 0 and 1; default 0.5)")
    c.add_argument("--min-diameter", type=float, default=0.0, metavar="UM",
                   help="leave out particles with an equivalent diameter under UM µm (default 0: keep all)")
    c.add_argument("--metric", default="detachment",
                   help="the per-particle measure the tests between electrodes compare (default detachment; any "
                        "measure of the particle table: equiv_diameter_um, sphericity, crack_fraction, frac_pore...)")
    c.add_argument("--axis", metavar="NAME",
                   help="put the electrodes on this attribute (e.g. C-rate) and test the trend across them; its "
                        "values from each folder's recipe, or from --values")
    c.add_argument("--values", nargs="+", type=float, metavar="V",
                   help="the --axis attribute's value of each folder, in their order")
    c.add_argument("--unit", help="the unit of --values (e.g. C)")
    c.add_argument("--axis-scale", choices=("linear", "log", "rank"),
                   help="the trend is a straight line in the value, its logarithm or its rank (default: the scale "
                        "the values lie the more evenly on, as the dashboard starts)")
    c.add_argument("-q", "--quiet", action="store_true", help="no notes on stderr")
    c.set_defaults(func=_cmd_compare)

    s = sub.add_parser("segment", help="phase segmentation only")
    add_input(s)
    s.add_argument("--method", choices=("threshold", "model", "classifier"), default="threshold",
                   help="two thresholds (default), the shipped 3D U-Net, or a classifier trained on brush strokes")
    s.add_argument("--weights", help="model weights for --method model (default: shipped)")
    s.add_argument("--classifier", metavar="CLF", help="for --method classifier: a folder written by train-classifier")
    s.add_argument("--flatten-shading", action="store_true", help=_FLATTEN_HELP)
    s.set_defaults(func=_cmd_segment)

    t = sub.add_parser("train-classifier", help="train a phase classifier on brush strokes (scribbles)")
    t.add_argument("--image", action="append", required=True, metavar="IMG",
                   help="greyscale image or volume (any reader's format); repeat for several")
    t.add_argument("--scribbles", action="append", required=True, metavar="S",
                   help="uint8 of IMG's shape: 0 pore, 1 CBD, 2 NMC, 255 not painted; one after each --image")
    add_out(t)
    t.add_argument("--spacing", nargs="+", type=_voxel_size, action=_Spacing, metavar="UM",
                   help="voxel size in µm of every image, one value (isotropic) or three (Z Y X) (default: the "
                        "files' metadata, else 1 µm)")
    t.add_argument("--seed", type=_whole(0, 2**32 - 1), default=0, help="seed of the learner (extra trees by default; default 0)")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    t.set_defaults(func=_cmd_train_classifier)

    i = sub.add_parser("inspect", help="what an analysis of INPUT would read: shape, voxel size and its source, "
                                      "a raw file's header, a fill outside the field of view, a drift along z, memory and engine")
    add_input(i, out=False)
    i.add_argument("--json", action="store_true", help="print it as JSON")
    i.set_defaults(func=_cmd_inspect)

    d = sub.add_parser("demo", help="write the synthetic demo electrodes with ground truth")
    add_out(d)
    d.add_argument("--seed", type=_whole(0), default=0)
    d.add_argument("--size", type=_whole(16, 512), help=argparse.SUPPRESS)
    d.add_argument("--names", nargs="*", help="subset of demo electrodes")
    d.add_argument("-q", "--quiet", action="store_true")
    d.set_defaults(func=_cmd_demo)
    return p


def _sentence(msg: str) -> str:
    return "error: " + msg.strip().replace("\n", " ").rstrip(".") + "."


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0, or 2 after one ``error: ...`` line on stderr)."""
    parser = build_parser()
    given, argv = list(sys.argv[1:] if argv is None else argv), []
    while given:  # a map of negative values ("-1=pore,..."), which argparse would read as an option (QA)
        a = given.pop(0)
        if a == "--phase-map" and given and given[0][:1] == "-" and "=" in given[0]:
            a = f"--phase-map={given.pop(0)}"
        argv.append(a)
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        msg = str(exc)
        msg = msg[len("argument "):] if msg.startswith("argument ") else msg
        print(_sentence(msg), file=sys.stderr)
        return EXIT_BAD_INPUT
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    try:
        args.func(args)
    except (CLIError, ValueError, TypeError, OSError, KeyError, MemoryError) as exc:
        msg = str(exc) or type(exc).__name__
        if isinstance(exc, KeyError):
            msg = f"missing key {msg}"
        print(_sentence(msg), file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
