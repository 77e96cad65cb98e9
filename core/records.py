"""The records of a workspace catalogue: :class:`Sample` (one input to analyse) and :class:`Analysis` (one run),
and :class:`Attribute`, a numeric property of a sample with its unit (C-rate, cycles, SOC...).

Both are frozen and hold parsed objects (an input spec, :class:`core.pipeline.AnalysisParams`); the
dict forms stored in SQLite are parsed once, where :class:`core.workspace.Workspace` reads the rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from numbers import Real
from typing import TYPE_CHECKING

from .inputs import DemoInput, InputSpec, input_source
from .inputs import source_options as _stored_options

if TYPE_CHECKING:
    from .pipeline import AnalysisParams

__all__ = ["ATTRIBUTE_PRESETS", "ATTRIBUTE_RANGES", "Analysis", "Attribute", "Sample", "attributes_from_list", "attributes_to_list",
           "check_attributes", "check_range", "row_options"]


# --------------------------------------------------------------------------- attributes

#: Common sample attributes and their units (the Samples page offers them first).
ATTRIBUTE_PRESETS: dict[str, str] = {"C-rate": "C", "cycles": "-", "SOC": "%"}

#: The physical range of a preset attribute in its preset unit: (lowest, highest, whole numbers only).  A C-rate
#: below 0 C, a negative or fractional cycle count or an SOC outside 0-100 % is a typing slip, and one such value
#: moves the trend of the electrodes on that axis (:func:`check_attributes` refuses it).
ATTRIBUTE_RANGES: dict[str, tuple[float, float, bool]] = {
    "C-rate": (0.0, math.inf, False), "cycles": (0.0, math.inf, True), "SOC": (0.0, 100.0, False)}

ATTRIBUTE_NAME_MAX = 60
ATTRIBUTE_UNIT_MAX = 20


@dataclass(frozen=True)
class Attribute:
    """A numeric property of a sample, with its unit: the axis electrodes are put on to test a trend.

    Attributes
    ----------
    name : str
        Non-empty, at most 60 characters, stripped (e.g. ``"C-rate"``); unique within a sample.
    value : float
        Finite.
    unit : str
        At most 20 characters, stripped; ``"-"`` for a count or a ratio, ``""`` when not given.
    """

    name: str
    value: float
    unit: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"an attribute needs a non-empty name, got {self.name!r}")
        if len(self.name.strip()) > ATTRIBUTE_NAME_MAX:
            raise ValueError(f"attribute name {self.name.strip()[:20]!r}... is longer than {ATTRIBUTE_NAME_MAX} "
                             "characters")
        if isinstance(self.value, bool) or not isinstance(self.value, Real):
            raise TypeError(f"the value of attribute {self.name.strip()!r} must be a number, got {self.value!r}")
        if not math.isfinite(float(self.value)):
            raise ValueError(f"the value of attribute {self.name.strip()!r} must be finite, got {self.value!r}")
        if not isinstance(self.unit, str):
            raise TypeError(f"the unit of attribute {self.name.strip()!r} must be text, got {self.unit!r}")
        if len(self.unit.strip()) > ATTRIBUTE_UNIT_MAX:
            raise ValueError(f"the unit of attribute {self.name.strip()!r} is longer than {ATTRIBUTE_UNIT_MAX} "
                             "characters")
        object.__setattr__(self, "name", self.name.strip())
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "unit", self.unit.strip())

    @property
    def label(self) -> str:
        """``"C-rate (C)"``: the name with its unit, for an axis title (the name alone when there is no unit)."""
        return f"{self.name} ({self.unit})" if self.unit else self.name


def check_range(attribute: Attribute) -> None:
    """``ValueError`` (one sentence) for a preset attribute outside its physical range in its preset unit
    (:data:`ATTRIBUTE_RANGES`: a C-rate below 0 C, cycles not a whole number from 0, an SOC outside 0-100 %); other
    attributes and other units are not checked."""
    preset = next((n for n in ATTRIBUTE_RANGES if n.casefold() == attribute.name.casefold()), None)
    if preset is None or attribute.unit != ATTRIBUTE_PRESETS[preset]:
        return
    lo, hi, whole = ATTRIBUTE_RANGES[preset]
    v = attribute.value
    if not lo <= v <= hi or (whole and v != int(v)):
        unit = "" if attribute.unit == "-" else f" {attribute.unit}"
        what = ("a whole number, 0 or more" if whole else f"{lo:g}{unit} or more" if hi == math.inf
                else f"between {lo:g} and {hi:g}{unit}")
        raise ValueError(f"{attribute.name} {v:g}{unit} is not possible: it must be {what}")


def check_attributes(attributes: Iterable[Attribute] | None, *, ranges: bool = True) -> tuple[Attribute, ...]:
    """The attributes as a tuple; ``TypeError`` for a non-:class:`Attribute`, ``ValueError`` for a repeated name
    and (``ranges``) for a preset attribute outside its physical range (:func:`check_range`)."""
    if attributes is None:
        return ()
    if isinstance(attributes, (str, bytes, Mapping)) or not isinstance(attributes, Iterable):
        raise TypeError(f"attributes must be a sequence of Attribute records, got {type(attributes).__name__}")
    out = tuple(attributes)
    seen: set[str] = set()
    for a in out:
        if not isinstance(a, Attribute):
            raise TypeError(f"attributes must be Attribute records, got {type(a).__name__}")
        if a.name.casefold() in seen:
            raise ValueError(f"attribute {a.name!r} is given twice; each name once per sample")
        seen.add(a.name.casefold())
        if ranges:
            check_range(a)
    return out


def attributes_to_list(attributes: Iterable[Attribute]) -> list[dict]:
    """The stored (JSON) form: ``[{"name": ..., "value": ..., "unit": ...}, ...]`` (``unit`` left out when empty)."""
    return [{"name": a.name, "value": a.value, **({"unit": a.unit} if a.unit else {})}
            for a in check_attributes(attributes, ranges=False)]  # (a workspace may hold one set before the check)


def attributes_from_list(items, where: str = "attributes") -> tuple[Attribute, ...]:
    """Parse :func:`attributes_to_list`'s form (None or ``[]``: no attributes); ``ValueError``/``TypeError`` naming
    ``where`` otherwise."""
    if items is None:
        return ()
    if not isinstance(items, list):
        raise TypeError(f"{where} must be a list of {{name, value, unit}} objects, got {type(items).__name__}")
    out = []
    for i, d in enumerate(items):
        if not isinstance(d, Mapping):
            raise TypeError(f"{where}[{i}] must be an object with name, value and unit, got {type(d).__name__}")
        unknown = set(d) - {"name", "value", "unit"}
        if unknown:
            raise ValueError(f"{where}[{i}] has unknown key(s) {sorted(unknown)}; allowed: name, value, unit")
        if "name" not in d or "value" not in d:
            raise ValueError(f"{where}[{i}] needs a name and a value")
        try:
            out.append(Attribute(d["name"], d["value"], d.get("unit", "")))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{where}[{i}]: {exc}") from None
    return check_attributes(out)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Sample:
    """One row of ``samples``.

    Attributes
    ----------
    input : core.inputs.FileInput or core.inputs.DemoInput
        What the sample reads (opened by :func:`core.inputs.open_input`),
        including its block-mean downsampling factor.
    spacing : (3,) float, µm
        Voxel size (z, y, x) of the volume as analysed, i.e. after
        downsampling (the file's voxel size times :attr:`downsample`).
    axis : {0, 1, 2}
        Electrode thickness axis.
    separator_side : {"auto", "start", "end"}
    created_at, updated_at : float
        Seconds since the epoch.
    shape : (3,) int or None
        Shape of the file as read (before downsampling) when it was probed on
        adding; a demo's shape.  Informative (the catalogue shows it).
    attributes : tuple of Attribute
        Numeric properties with units (C-rate, cycles, SOC, ...), in the order
        they were set; empty for samples stored before attributes existed.
    """

    id: int
    name: str
    group_label: str
    input: InputSpec
    spacing: tuple[float, float, float]
    axis: int
    separator_side: str
    created_at: float
    updated_at: float
    shape: tuple[int, int, int] | None = None
    attributes: tuple[Attribute, ...] = ()

    def attribute(self, name: str) -> Attribute | None:
        """The attribute called ``name`` (case-insensitive), or None."""
        key = str(name).strip().casefold()
        return next((a for a in self.attributes if a.name.casefold() == key), None)

    @property
    def source(self) -> str:
        """A file or folder path, or ``"demo:NAME"`` for a synthetic demo electrode."""
        return input_source(self.input)

    @property
    def source_options(self) -> dict:
        """How the source is read, as stored (:func:`core.inputs.source_options`, with a file's probed ``shape``)."""
        return row_options(self.input, self.shape)

    @property
    def is_demo(self) -> bool:
        """True for a synthetic demo electrode."""
        return isinstance(self.input, DemoInput)

    @property
    def demo_name(self) -> str | None:
        return self.input.name if isinstance(self.input, DemoInput) else None

    @property
    def downsample(self) -> int:
        """Block-mean downsampling factor applied when the volume is loaded (1 = none)."""
        return self.input.downsample


def display_name(sample: Sample, all_names: Sequence[str]) -> str:
    """A sample's name where several are listed together: `` #<id>`` added when the name is not unique."""
    return sample.name if list(all_names).count(sample.name) == 1 else f"{sample.name} #{sample.id}"


@dataclass(frozen=True)
class Analysis:
    """One row of ``analyses``.

    Attributes
    ----------
    requested : core.pipeline.AnalysisParams
        The parameters the run was given.
    resolved : core.pipeline.AnalysisParams
        As resolved by the run (thresholds, blur and separator side filled
        in); the requested ones while the run is not done.
    status : {"running", "done", "failed"}
    error : str or None
        One sentence for a failed run.
    provenance : dict
        From :func:`core.pipeline.run` plus ``resolved_params`` (thresholds filled in)
        and, for runs through :func:`core.runner.run_analysis`, ``input``: the
        sample's ``source`` and ``source_options`` at run time (what
        :func:`core.recipe.entry_from_workspace` replays; older rows lack it).
    phases_path, labels_path, table_path : str or None
        Artefact paths relative to the workspace folder (set when done).
    note : str
        The user's note on the analysis (:meth:`core.workspace.Workspace.set_analysis_note`); ``""`` when none.
    """

    id: int
    sample_id: int
    requested: "AnalysisParams"
    resolved: "AnalysisParams"
    status: str
    error: str | None
    created_at: float
    updated_at: float
    owner_pid: int | None
    provenance: dict
    phases_path: str | None
    labels_path: str | None
    table_path: str | None
    n_particles: int | None
    note: str = ""

    @property
    def params(self) -> dict:
        """:attr:`requested` as a plain dict."""
        return self.requested.to_dict()

    @property
    def resolved_params(self) -> dict:
        """:attr:`resolved` as a plain dict."""
        return self.resolved.to_dict()

    @property
    def pv_sigma_origin(self) -> str | None:
        """Where the blur σ of the partial-volume correction came from: ``"given"``, ``"fitted"`` or
        ``"fitted_at_bound"``; None when the run used no blur (no correction, the model's phases,
        presegmented input) or is not done."""
        if "pv_sigma_origin" in self.provenance:
            return self.provenance["pv_sigma_origin"]
        sigma = self.resolved.segment.pv_sigma  # rows written before the origin was recorded
        if self.status != "done" or sigma is None or self.provenance.get("presegmented") \
                or self.resolved.method != "threshold" or not self.resolved.segment.partial_volume:
            return None
        from .phases import sigma_origin

        return sigma_origin(sigma, self.requested.segment.pv_sigma is not None)

    @property
    def rerun_params(self) -> "AnalysisParams":
        """Parameters that run this analysis again: :attr:`resolved`, but the blur σ only where the user
        gave it (a fitted σ is fitted again, and judged as a fit, not passed back as if measured)."""
        origin = self.pv_sigma_origin
        seg = self.resolved.segment
        sigma = self.requested.segment.pv_sigma if origin is None else (seg.pv_sigma if origin == "given" else None)
        return replace(self.resolved, segment=replace(seg, pv_sigma=sigma))


def row_options(spec: InputSpec, shape) -> dict:
    """The ``source_options`` column: the input's stored options, plus the probed shape of a file."""
    options = _stored_options(spec)
    if shape is not None and not isinstance(spec, DemoInput):
        options["shape"] = [int(n) for n in shape]
    return options
