"""One input spec and one way to open it.

An input is either a volume file, :class:`FileInput`, or a synthetic demo
electrode, :class:`DemoInput`.  Workspace samples, recipes and the CLI all
hold one of these and read it with :func:`open_input`, which handles the demo
generator, every file format of :mod:`core.io`, the phase map of a
pre-segmented volume and the block-mean downsampling.

JSON form (:func:`input_to_dict` / :func:`input_from_dict`, the ``input`` of a
recipe)::

    {"path": "scan.tif", "format": ..., "dataset": ..., "shape": [z, y, x], "dtype": ...,
     "byte_order": "<", "offset": 0, "crop": [[z0, z1], [y0, y1], [x0, x1]], "align": [[dy, dx], ...],
     "phase_map": ..., "downsample": 1}
    {"demo": "cycled-1C", "seed": 1, "shape": [160, 160, 160], "downsample": 1}

Every key but ``path`` / ``demo`` is optional; defaults are not written.

Workspace rows store an input as a ``source`` (a path or ``"demo:NAME"``) and
its options, ``{"read": {load_volume kwargs}, "phase_map": ..., "downsample": F}``
for a file and ``{"seed": N, "shape": [z, y, x], "downsample": F}`` for a demo
(:func:`input_source` / :func:`source_options`, read back by
:func:`input_from_source`): the form workspaces have always held, so old rows
load unchanged.

Nothing here imports streamlit.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEMO_PREFIX", "DemoInput", "FileInput", "InputError", "InputSpec", "Opened", "input_from_dict",
    "input_from_source", "input_source", "input_to_dict", "open_input", "read_info", "source_options",
]

DEMO_PREFIX = "demo:"
_FILE_KEYS = ("path", "format", "dataset", "shape", "dtype", "byte_order", "offset", "crop", "align", "phase_map",
              "downsample")
_DEMO_KEYS = ("demo", "seed", "shape", "downsample")
_READ_KEYS = ("fmt", "dataset", "shape", "dtype", "byte_order", "offset", "crop", "align")


class InputError(ValueError):
    """An input spec that is invalid (one sentence)."""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class FileInput:
    """A volume file and how to read it.

    Attributes
    ----------
    path : Path
        The file or folder.
    format : str or None
        One of :data:`core.io.FORMATS`; None guesses it from the name.
    dataset : str or None
        HDF5 / zarr dataset.
    shape : (3,) int or None
        Raw files: ``(z, y, x)``.
    dtype : str or None
        Raw files: voxel type such as ``"uint16"``.
    byte_order : {"<", ">"}
        Raw files.
    offset : int
        Raw files: header bytes to skip.
    crop : 3 (start, stop) pairs of int, or None
        A region of interest in voxels of the file along z, y, x (stop excluded), read alone
        (:func:`core.io.load_volume`'s ``crop``); before any downsampling.
    align : tuple of (int, int), or None
        A stack whose slices were not aligned: one ``(dy, dx)`` offset a z plane of the volume as read (after the
        crop), each plane shifted back and the region all share kept (:func:`core.io.load_volume`'s ``align``,
        measured by :func:`core.phases.alignment.slice_shifts`); before the phase map and any downsampling.
    phase_map : str or dict or None
        Set for a pre-segmented phase volume: voxel value -> phase, as
        accepted by :func:`core.io.load_phases`.
    downsample : int
        Block-mean downsampling factor applied after reading
        (:func:`core.io.downsampling.downsample`); 1 = none.  Greyscale only.
    """

    path: Path
    format: str | None = None
    dataset: str | None = None
    shape: tuple[int, int, int] | None = None
    dtype: str | None = None
    byte_order: str = "<"
    offset: int = 0
    crop: tuple | None = None
    phase_map: str | dict | None = None
    downsample: int = 1
    align: tuple | None = None

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))
        from .io._common import normalize_align, normalize_crop

        try:
            object.__setattr__(self, "crop", normalize_crop(self.crop))
            object.__setattr__(self, "align", normalize_align(self.align))
        except (TypeError, ValueError) as exc:
            raise InputError(f"{self.path.name}: {exc}") from None
        if self.shape is not None:
            try:
                object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))
            except (TypeError, ValueError):
                raise InputError(f"the raw shape of {self.path.name} must be 3 whole numbers (z, y, x), got "
                                 f"{self.shape!r}") from None
        object.__setattr__(self, "downsample", _downsample(self.downsample, "downsample"))
        if self.downsample > 1 and self.phase_map is not None:
            raise InputError("a pre-segmented phase volume cannot be downsampled (block means of phase codes "
                             "are not phases)")

    @property
    def presegmented(self) -> bool:
        return self.phase_map is not None

    def load_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`core.io.load_volume` (only those that differ from its defaults)."""
        kw: dict[str, Any] = {}
        if self.format is not None:
            kw["fmt"] = self.format
        if self.dataset is not None:
            kw["dataset"] = self.dataset
        if self.shape is not None:
            kw["shape"] = tuple(self.shape)
        if self.dtype is not None:
            kw["dtype"] = self.dtype
        if self.byte_order != "<":
            kw["byte_order"] = self.byte_order
        if self.offset:
            kw["offset"] = int(self.offset)
        if self.crop is not None:
            kw["crop"] = [list(pair) for pair in self.crop]
        if self.align is not None:
            kw["align"] = [list(pair) for pair in self.align]
        return kw

    def describe(self) -> str:
        crop = (" (cropped to " + ", ".join(f"{a} {p}:{q}" for a, (p, q) in zip("zyx", self.crop)) + ")"
                if self.crop is not None else "")
        align = f" (its {len(self.align)} slices aligned)" if self.align is not None else ""
        return (os.fspath(self.path) + crop + align
                + (f" (downsampled by {self.downsample})" if self.downsample > 1 else ""))


@dataclass(frozen=True)
class DemoInput:
    """A synthetic demo electrode, regenerated by :func:`core.synth.demo_electrode`.

    Attributes
    ----------
    name : str
        A key of :data:`core.synth.DEMO_ELECTRODES`.
    seed : int
    shape : (3,) int or None
        None: the generator's default shape.  Each side 8..1024 voxels and at most 512³ voxels in
        all (:func:`core.synth.check_demo_shape`): the demo is for demonstration.
    downsample : int
        Block-mean downsampling factor applied after generating; 1 = none.
    """

    name: str
    seed: int = 0
    shape: tuple[int, int, int] | None = None
    downsample: int = 1

    presegmented = False

    def __post_init__(self):
        from .synth import check_demo_shape

        if self.shape is not None:
            try:
                object.__setattr__(self, "shape", check_demo_shape(self.shape, f"shape of demo {self.name!r}"))
            except (TypeError, ValueError) as exc:
                raise InputError(str(exc)) from None
        object.__setattr__(self, "downsample", _downsample(self.downsample, "downsample"))

    def describe(self) -> str:
        shape = "x".join(map(str, self.shape)) if self.shape else "default shape"
        down = f", downsampled by {self.downsample}" if self.downsample > 1 else ""
        return f"demo:{self.name} (seed {self.seed}, {shape}{down})"


InputSpec = FileInput | DemoInput


# --------------------------------------------------------------------------- validation helpers


def _check_keys(d: Mapping, known: Sequence[str], where: str) -> None:
    unknown = [k for k in d if k not in known]
    if unknown:
        raise InputError(f"unknown key {unknown[0]!r} in {where}; known keys: {', '.join(known)}")


def _int(value, what: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{what} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise InputError(f"{what} must be >= {minimum}, got {value}")
    return int(value)


def _downsample(value, what: str) -> int:
    from .io.downsampling import check_downsample

    try:
        return check_downsample(value, what)
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc)) from None


def _shape(value, what: str) -> tuple[int, int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise InputError(f"{what} must be 3 integers (z, y, x), got {value!r}")
    return tuple(_int(v, what, minimum=1) for v in value)  # type: ignore[return-value]


def _str(value, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _phase_map(value, what: str):
    from .io.phase_map import _normalize_phase_map

    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            try:
                num = float(k)
            except (TypeError, ValueError):
                raise InputError(f"{what} keys must be voxel values (numbers), got {k!r}") from None
            out[int(num) if num.is_integer() else num] = v
        value = out
    elif not isinstance(value, str):
        raise InputError(f"{what} must be text like '0=pore,128=nmc,255=cbd' or an object, got {value!r}")
    try:
        _normalize_phase_map(value)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{what}: {exc}") from None
    return value


# --------------------------------------------------------------------------- JSON form


def _crop(value, what: str):
    from .io._common import normalize_crop

    try:
        return normalize_crop(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what}: {exc}") from None


def _align(value, what: str):
    from .io._common import normalize_align

    try:
        return normalize_align(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what}: {exc}") from None


def _demo_from_dict(d: Mapping, where: str) -> DemoInput:
    from .synth import DEMO_ELECTRODES

    _check_keys(d, _DEMO_KEYS, where)
    name = _str(d["demo"], f"{where} demo")
    if name not in DEMO_ELECTRODES:
        raise InputError(f"{where} names an unknown demo electrode {name!r}; choose one of {list(DEMO_ELECTRODES)}")
    shape = _shape(d["shape"], f"{where} shape") if d.get("shape") is not None else None
    return DemoInput(name=name, seed=_int(d.get("seed", 0), f"{where} seed", minimum=0), shape=shape,
                     downsample=_downsample(d.get("downsample", 1), f"{where} downsample"))


def _file_from_dict(d: Mapping, where: str, base_dir: Path | None) -> FileInput:
    from .io import FORMATS

    _check_keys(d, _FILE_KEYS, where)
    path = Path(_str(d["path"], f"{where} path")).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    fmt = d.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"{where} format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    dataset = _str(d["dataset"], f"{where} dataset") if d.get("dataset") is not None else None
    shape = _shape(d["shape"], f"{where} shape") if d.get("shape") is not None else None
    dtype = d.get("dtype")
    if dtype is not None:
        try:
            dtype = np.dtype(_str(dtype, f"{where} dtype")).name
        except TypeError:
            raise InputError(f"{where} dtype {d['dtype']!r} is not a numpy data type") from None
    byte_order = d.get("byte_order", "<")
    if byte_order not in ("<", ">"):
        raise InputError(f"{where} byte_order must be '<' (little endian) or '>' (big endian), got {byte_order!r}")
    offset = _int(d.get("offset", 0), f"{where} offset", minimum=0)
    crop = _crop(d.get("crop"), f"{where} crop")
    align = _align(d.get("align"), f"{where} align")
    phase_map = _phase_map(d["phase_map"], f"{where} phase_map") if d.get("phase_map") is not None else None
    return FileInput(path=Path(os.path.normpath(path)), format=fmt, dataset=dataset, shape=shape, dtype=dtype,
                     byte_order=byte_order, offset=offset, crop=crop, align=align, phase_map=phase_map,
                     downsample=_downsample(d.get("downsample", 1), f"{where} downsample"))


def input_from_dict(d, where: str = "input", base_dir: str | os.PathLike | None = None) -> InputSpec:
    """Validate the JSON form of an input (see the module docstring).

    Parameters
    ----------
    d : dict
    where : str
        How error messages name the object (e.g. ``"analyses[0] input"``).
    base_dir : path, optional
        Folder a relative ``path`` is relative to; default the current folder.

    Raises
    ------
    InputError
        Unknown key, wrong type or value.
    """
    if not isinstance(d, Mapping):
        raise InputError(f"{where} must be an object with 'path' (a file) or 'demo' (a demo electrode)")
    if ("path" in d) == ("demo" in d):
        raise InputError(f"{where} needs exactly one of 'path' (a file) or 'demo' (a demo electrode)")
    if "demo" in d:
        return _demo_from_dict(d, where)
    return _file_from_dict(d, where, Path(base_dir) if base_dir is not None else None)


def _path_text(path: Path, relative_to: Path | None) -> str:
    if relative_to is not None:
        try:
            return Path(path).resolve().relative_to(relative_to.resolve()).as_posix()
        except ValueError:
            pass
    return os.fspath(path)


def input_to_dict(inp: InputSpec, *, relative_to: str | os.PathLike | None = None) -> dict[str, Any]:
    """JSON object of an input; paths inside ``relative_to`` are written relative to it."""
    if isinstance(inp, DemoInput):
        d: dict[str, Any] = {"demo": inp.name, "seed": int(inp.seed)}
        if inp.shape is not None:
            d["shape"] = [int(n) for n in inp.shape]
        if inp.downsample > 1:
            d["downsample"] = int(inp.downsample)
        return d
    if not isinstance(inp, FileInput):
        raise TypeError(f"input must be a FileInput or DemoInput, got {type(inp).__name__}")
    d = {"path": _path_text(inp.path, Path(relative_to) if relative_to is not None else None)}
    if inp.format is not None:
        d["format"] = inp.format
    if inp.dataset is not None:
        d["dataset"] = inp.dataset
    if inp.shape is not None:
        d["shape"] = [int(n) for n in inp.shape]
    if inp.dtype is not None:
        d["dtype"] = str(inp.dtype)
    if inp.byte_order != "<":
        d["byte_order"] = inp.byte_order
    if inp.offset:
        d["offset"] = int(inp.offset)
    if inp.crop is not None:
        d["crop"] = [list(pair) for pair in inp.crop]
    if inp.align is not None:
        d["align"] = [list(pair) for pair in inp.align]
    if inp.phase_map is not None:
        d["phase_map"] = (inp.phase_map if isinstance(inp.phase_map, str)
                          else {str(k): v for k, v in inp.phase_map.items()})
    if inp.downsample > 1:
        d["downsample"] = int(inp.downsample)
    return d


# --------------------------------------------------------------------------- workspace storage form


def input_source(inp: InputSpec) -> str:
    """The ``source`` text of an input: its path, or ``"demo:NAME"``."""
    return f"{DEMO_PREFIX}{inp.name}" if isinstance(inp, DemoInput) else os.fspath(inp.path)


def input_from_source(source: str, options: Mapping | None = None) -> InputSpec:
    """The input of a workspace row: ``source`` (a path or ``"demo:NAME"``) and its stored options.

    ``options`` is :func:`source_options` of the input (see the module docstring).

    Raises
    ------
    InputError
        Options that no spec can hold.
    """
    options = dict(options or {})
    if source.startswith(DEMO_PREFIX):
        shape = options.get("shape")
        return DemoInput(name=source[len(DEMO_PREFIX):], seed=int(options.get("seed", 0)),
                         shape=tuple(int(n) for n in shape) if shape else None,
                         downsample=options.get("downsample", 1))
    read = dict(options.get("read", {}))
    unknown = set(read) - set(_READ_KEYS)
    if unknown:
        raise InputError(f"the reading options {sorted(unknown)} of {source} are not options of an input")
    shape = read.get("shape")
    return FileInput(
        # absolute but links kept: the dashboard confines the stored path again before reading (ui.confine)
        path=Path(os.path.abspath(Path(source).expanduser())), format=read.get("fmt"), dataset=read.get("dataset"),
        shape=tuple(int(n) for n in shape) if shape else None, dtype=read.get("dtype"),
        byte_order=read.get("byte_order", "<"), offset=int(read.get("offset", 0)), crop=read.get("crop"),
        align=read.get("align"), phase_map=options.get("phase_map"), downsample=options.get("downsample", 1),
    )


def source_options(inp: InputSpec) -> dict[str, Any]:
    """The options a workspace row stores beside :func:`input_source` (inverse of :func:`input_from_source`)."""
    d: dict[str, Any]
    if isinstance(inp, DemoInput):
        d = {"seed": int(inp.seed)}
        if inp.shape is not None:
            d["shape"] = [int(n) for n in inp.shape]
    else:
        d = {"read": {k: (list(v) if isinstance(v, tuple) else v) for k, v in inp.load_kwargs().items()}}
        if inp.phase_map is not None:
            d["phase_map"] = inp.phase_map
    if inp.downsample > 1:
        d["downsample"] = int(inp.downsample)
    return d


# --------------------------------------------------------------------------- opening


@dataclass(frozen=True, eq=False)
class Opened:
    """An input as the pipeline takes it.

    Attributes
    ----------
    volume : (Z, Y, X) ndarray
        Greyscale (downsampled when the input says so), or phase codes 0/1/2
        for a pre-segmented input.  May be a read-only memory map: treat it
        as read-only.
    spacing : (3,) float, µm
        Voxel size of ``volume``: the file's (or the caller's, or the demo
        generator's) times the downsampling factor.
    presegmented : bool
    info : dict
        ``source``, ``format``, ``spacing_from_metadata`` and, when
        downsampled, ``downsample``, ``shape_read``, ``spacing_read_um``.
    """

    volume: np.ndarray
    spacing: tuple[float, float, float]
    presegmented: bool
    info: dict = field(default_factory=dict)


def _demo_greyscale(inp: DemoInput, cache_dir: Path | None,
                    progress=None) -> tuple[np.ndarray, tuple[float, float, float]]:
    from .synth import DEMO_ELECTRODES, demo_electrode

    if inp.name not in DEMO_ELECTRODES:
        raise InputError(f"unknown demo electrode {inp.name!r}; choose one of {list(DEMO_ELECTRODES)}")
    spacing = tuple(float(s) for s in DEMO_ELECTRODES[inp.name].spacing)
    if cache_dir is None:
        return demo_electrode(inp.name, rng=int(inp.seed), shape=inp.shape, progress=progress).greyscale, spacing
    from ._atomic import write_npy

    shp = tuple(int(n) for n in (inp.shape or DEMO_ELECTRODES[inp.name].shape))
    path = Path(cache_dir) / f"demo-{inp.name}-{'x'.join(map(str, shp))}-seed{int(inp.seed)}.npy"
    if not path.exists():
        write_npy(path, demo_electrode(inp.name, rng=int(inp.seed), shape=shp, progress=progress).greyscale)
    return np.load(path, mmap_mode="r"), spacing


def read_info(spec: FileInput, metadata: Mapping) -> dict[str, Any]:
    """What a run records of how a file input was read beyond its path (its ``info``): the crop with the file's
    shape, the alignment (its summary and offsets) with the shape before it; ``metadata`` is the read volume's
    (:func:`core.io.load_volume`'s or :func:`core.chunked.open_lazy`'s, which say the same)."""
    info: dict[str, Any] = {}
    if spec.crop is not None:
        info.update(crop=[list(pair) for pair in spec.crop], shape_file=list(metadata.get("shape_read", [])))
    if spec.align is not None:
        info.update(align={**metadata.get("align", {}), "offsets": [list(pair) for pair in spec.align]},
                    shape_unaligned=list(metadata.get("shape_unaligned", [])))
    return info


def open_input(spec: InputSpec, *, spacing=None, cache_dir: str | os.PathLike | None = None,
               progress=None) -> Opened:
    """Read an input: the demo generator or a file, its phase map, then the downsampling.

    Parameters
    ----------
    spec : FileInput or DemoInput
    spacing : float or (3,) float, µm, optional
        Voxel size as read, overriding the file's metadata (before downsampling).
    cache_dir : path, optional
        Keep a generated demo greyscale there as a memory-mappable ``.npy``
        and reuse it (the workspace's ``cache/``).
    progress : callable(fraction, message), optional
        Told the steps of generating a demo electrode (:func:`core.synth.make_electrode`).

    Returns
    -------
    Opened

    Raises
    ------
    FileNotFoundError, ValueError, TypeError
        From :func:`core.io.load_volume` / :func:`core.io.load_phases` for a
        missing or unreadable file; :class:`InputError` for an unknown demo.
    """
    from ._validate import normalize_spacing

    if isinstance(spec, DemoInput):
        data, found = _demo_greyscale(spec, Path(cache_dir) if cache_dir is not None else None, progress)
        sp = normalize_spacing(spacing) if spacing is not None else found
        info: dict[str, Any] = {"source": input_source(spec), "format": "demo", "spacing_from_metadata": False}
    elif isinstance(spec, FileInput):
        from .io import load_phases, load_volume

        kw = spec.load_kwargs()
        if spacing is not None:
            kw["spacing"] = spacing
        vol = (load_phases(spec.path, spec.phase_map, **kw) if spec.phase_map is not None
               else load_volume(spec.path, **kw))
        if spec.phase_map is None:  # a label field (an Avizo file's Labels) is not thresholded as grey values
            from .io._common import _name
            from .io.phase_map import check_not_label_field

            check_not_label_field(_name(spec.path), vol.metadata)
        data, sp = vol.data, vol.spacing
        info = {"source": vol.source, "format": vol.fmt, "spacing_from_metadata": vol.spacing_from_metadata}
        if vol.metadata.get("sem_tilt"):  # an SEM image's stage tilt and tilt correction (core.io.sem.sem_tilt)
            info["sem_tilt"] = dict(vol.metadata["sem_tilt"])
        info.update(read_info(spec, vol.metadata))
    else:
        raise TypeError(f"input must be a FileInput or DemoInput, got {type(spec).__name__}")
    if spec.downsample > 1:
        from .io.downsampling import downsample

        shape_read, spacing_read = list(data.shape), list(sp)
        data, sp = downsample(data, spec.downsample, sp)
        info.update(downsample=spec.downsample, shape_read=shape_read, spacing_read_um=spacing_read)
    return Opened(volume=data, spacing=tuple(float(s) for s in sp), presegmented=spec.presegmented, info=info)
