"""How much an electrode's median detachment depends on the segmentation choices.

:func:`sweep` re-runs the analysis (:func:`core.pipeline.run`) with each
uncertain parameter moved by one step, one at a time:

========  =====================================================
variant   change from the baseline parameters
========  =====================================================
low-      pore | CBD threshold lowered by ``threshold_step``
low+      pore | CBD threshold raised by ``threshold_step``
high-     CBD | NMC threshold lowered by ``threshold_step``
high+     CBD | NMC threshold raised by ``threshold_step``
h-        particle separation ``h_um`` lowered by ``h_step_um``
h+        particle separation ``h_um`` raised by ``h_step_um``
========  =====================================================

and reports each variant's median detachment and number of particles.  The
spread of the medians (min..max over baseline and variants, and the largest
deviation from the baseline) is an error bar of the segmentation, to be set
beside the sampling error of the median.

Default steps
-------------
``threshold_step`` defaults to ``threshold_rel_step`` (2 %) of the grey
contrast between the phases: the median grey value of the baseline's NMC
voxels minus that of its pore voxels (from a strided sample of at most about
2 M voxels).  The contrast, unlike the distance between the two thresholds,
does not depend on where the thresholds were put.  2 % is a deliberately
small move (about 500 grey values on the 16-bit demo electrodes, against
about 12 600 between the two thresholds); widen it to match how far apart two
operators' thresholds really are on your data.  ``h_step_um``
defaults to ``h_rel_step`` (50 %) of the baseline ``h_um``.  Both can be given
in absolute units instead.

Cost
----
One full analysis per threshold variant.  The separation variants reuse the
baseline phases (``run(..., presegmented=True)``), and the baseline itself is
not re-run when its phases and table are passed in (``baseline_phases``,
``baseline_table``), e.g. from a stored analysis.  The partial-volume blur
(``pv_sigma``) and the separator side are taken from the resolved baseline
parameters, so each variant differs from the baseline in one value only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

import numpy as np
import pandas as pd

from ._validate import check_phases, normalize_spacing
from .codes import NMC, PORE
from .pipeline import AnalysisParams, run
from .phases import check_greyscale

Progress = Callable[[float, str], None]

#: Every variant, in the order they run.
VARIANTS: tuple[str, ...] = ("low-", "low+", "high-", "high+", "h-", "h+")
THRESHOLD_VARIANTS: tuple[str, ...] = ("low-", "low+", "high-", "high+")
SEPARATION_VARIANTS: tuple[str, ...] = ("h-", "h+")
#: Relative cost of a separation-only run (phases reused) against a full run, for the progress bar.
_SEPARATION_COST = 0.65

#: Columns of :meth:`SweepResult.table` (and of :func:`sweep_table` after ``electrode``).
ROW_COLUMNS: tuple[str, ...] = (
    "variant", "parameter", "low", "high", "h_um", "n_particles", "n_with_detachment", "median_detachment",
    "deviation",
)
#: Columns of :func:`spread_table`.
SPREAD_COLUMNS: tuple[str, ...] = (
    "electrode", "n_particles", "median_detachment", "median_min", "median_max", "max_deviation",
    "max_deviation_thresholds", "max_deviation_separation", "n_variants", "threshold_step", "h_step_um",
)


def _positive(value, name: str, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")


@dataclass(frozen=True)
class SweepParams:
    """What :func:`sweep` varies and by how much.

    Attributes
    ----------
    threshold_step : float or None
        Step of both thresholds in the volume's grey units; None takes
        ``threshold_rel_step`` of the grey contrast between NMC and pore
        (see the module notes).
    threshold_rel_step : float
        Share of the NMC - pore contrast used when ``threshold_step`` is None.
    h_step_um : float or None
        Step of :attr:`core.particles.SeparationParams.h_um` (µm); None takes
        ``h_rel_step * h_um``.
    h_rel_step : float
        Share of ``h_um`` used when ``h_step_um`` is None; at most 1 (h_um - step >= 0).
    variants : tuple of str
        Subset of :data:`VARIANTS` to run.
    """

    threshold_step: float | None = None
    threshold_rel_step: float = 0.02
    h_step_um: float | None = None
    h_rel_step: float = 0.5
    variants: tuple[str, ...] = VARIANTS

    def __post_init__(self):
        _positive(self.threshold_step, "threshold_step", allow_none=True)
        _positive(self.threshold_rel_step, "threshold_rel_step")
        _positive(self.h_step_um, "h_step_um", allow_none=True)
        _positive(self.h_rel_step, "h_rel_step")
        if self.h_rel_step > 1:
            raise ValueError(f"h_rel_step must be <= 1 (h_um - step must stay >= 0), got {self.h_rel_step}")
        variants = tuple(self.variants) if not isinstance(self.variants, str) else (self.variants,)
        bad = [v for v in variants if v not in VARIANTS]
        if bad or not variants or len(set(variants)) != len(variants):
            raise ValueError(f"variants must be distinct names among {list(VARIANTS)}, got {list(variants)}")
        object.__setattr__(self, "variants", tuple(v for v in VARIANTS if v in variants))


@dataclass(frozen=True)
class SweepRow:
    """One analysis of a sweep.

    Attributes
    ----------
    variant : str
        ``"baseline"`` or one of :data:`VARIANTS`.
    parameter : {"baseline", "low", "high", "h_um"}
        The parameter this run moved.
    low, high : float
        Thresholds used (grey units).
    h_um : float
        Separation parameter used (µm).
    n_particles : int
    n_with_detachment : int
        Particles with a finite detachment index.
    median_detachment : float
        Median of the finite detachment indices; NaN when there is none.
    """

    variant: str
    parameter: str
    low: float
    high: float
    h_um: float
    n_particles: int
    n_with_detachment: int
    median_detachment: float


@dataclass(frozen=True)
class Spread:
    """Spread of the median detachment over a sweep (NaN medians are left out).

    Attributes
    ----------
    median_min, median_max : float
        Over the baseline and every variant.
    max_deviation : float
        Largest ``|median(variant) - median(baseline)|``; NaN when the
        baseline or every variant has no median.
    max_deviation_thresholds, max_deviation_separation : float
        The same over the threshold variants / the separation variants only
        (NaN when none of that kind ran).
    n_variants : int
        Variants with a finite median.
    """

    median_min: float
    median_max: float
    max_deviation: float
    max_deviation_thresholds: float
    max_deviation_separation: float
    n_variants: int


@dataclass(frozen=True)
class SweepResult:
    """Output of :func:`sweep`.

    Attributes
    ----------
    rows : tuple of SweepRow
        The baseline first, then the variants in :data:`VARIANTS` order.
    params : AnalysisParams
        The baseline parameters (resolved).
    threshold_step : float
        Grey units (NaN when no threshold variant ran and none was given).
    h_step_um : float
        µm (NaN when no separation variant ran and none was given).
    options : SweepParams
        As requested.
    """

    rows: tuple[SweepRow, ...]
    params: AnalysisParams
    threshold_step: float
    h_step_um: float
    options: SweepParams = field(default_factory=SweepParams)

    @property
    def baseline(self) -> SweepRow:
        return self.rows[0]

    @property
    def spread(self) -> Spread:
        base = self.baseline.median_detachment

        def dev(kinds: tuple[str, ...]) -> float:
            d = [abs(r.median_detachment - base) for r in self.rows[1:]
                 if r.variant in kinds and math.isfinite(r.median_detachment)]
            return float(max(d)) if d and math.isfinite(base) else float("nan")

        meds = [r.median_detachment for r in self.rows if math.isfinite(r.median_detachment)]
        return Spread(
            median_min=float(min(meds)) if meds else float("nan"),
            median_max=float(max(meds)) if meds else float("nan"),
            max_deviation=dev(VARIANTS),
            max_deviation_thresholds=dev(THRESHOLD_VARIANTS),
            max_deviation_separation=dev(SEPARATION_VARIANTS),
            n_variants=sum(1 for r in self.rows[1:] if math.isfinite(r.median_detachment)),
        )

    def table(self) -> pd.DataFrame:
        """One row per run, columns :data:`ROW_COLUMNS` (``deviation`` = median - baseline median)."""
        t = pd.DataFrame([asdict(r) for r in self.rows], columns=list(ROW_COLUMNS[:-1]))
        t["deviation"] = t["median_detachment"] - self.baseline.median_detachment
        return t

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (NaN stays NaN); inverse :meth:`from_dict`."""
        return {
            "rows": [asdict(r) for r in self.rows], "params": self.params.to_dict(),
            "threshold_step": self.threshold_step, "h_step_um": self.h_step_um,
            "options": {**asdict(self.options), "variants": list(self.options.variants)},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SweepResult":
        try:
            return cls(
                rows=tuple(SweepRow(**r) for r in d["rows"]), params=AnalysisParams.from_dict(d["params"]),
                threshold_step=float(d["threshold_step"]), h_step_um=float(d["h_step_um"]),
                options=SweepParams(**{**d["options"], "variants": tuple(d["options"]["variants"])}),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a stored sweep: {exc}") from exc


def phase_contrast(volume: np.ndarray, phases: np.ndarray, *, n: int = 2_000_000) -> float:
    """Median grey value of the NMC voxels minus that of the pore voxels.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        Greyscale.
    phases : (Z, Y, X) uint8
        Phase codes of the same volume.
    n : int
        About this many voxels are sampled (a fixed stride: deterministic).

    Raises
    ------
    ValueError
        If the sample holds no pore or no NMC voxel.
    """
    check_greyscale(volume)
    phases = check_phases(phases)
    if phases.shape != volume.shape:
        raise ValueError(f"phases shape {phases.shape} does not match volume shape {volume.shape}")
    step = max(1, volume.size // int(n))
    g = np.asarray(volume.reshape(-1)[::step], np.float64)
    p = phases.reshape(-1)[::step]
    ok = np.isfinite(g)
    pore, nmc = g[ok & (p == PORE)], g[ok & (p == NMC)]
    if pore.size == 0 or nmc.size == 0:
        raise ValueError("the grey contrast needs pore and NMC voxels; give threshold_step in grey units instead")
    return float(np.median(nmc) - np.median(pore))


def _row(variant: str, parameter: str, params: AnalysisParams, table: pd.DataFrame) -> SweepRow:
    det = table["detachment"].to_numpy(float)
    ok = det[np.isfinite(det)]
    low, high = params.segment.low, params.segment.high  # None for phases given as input (separation only)
    return SweepRow(
        variant=variant, parameter=parameter, low=float("nan") if low is None else float(low),
        high=float("nan") if high is None else float(high),
        h_um=float(params.separation.h_um), n_particles=int(len(table)), n_with_detachment=int(ok.size),
        median_detachment=float(np.median(ok)) if ok.size else float("nan"),
    )


def _resolved(params: AnalysisParams) -> bool:
    s = params.segment
    return s.low is not None and s.high is not None and (s.pv_sigma is not None or not s.partial_volume)


def _variant_params(params: AnalysisParams, variant: str, t_step: float, h_step: float) -> tuple[str, AnalysisParams]:
    seg, sep = params.segment, params.separation
    sign = -1.0 if variant.endswith("-") else 1.0
    if variant.startswith("low"):
        return "low", replace(params, segment=replace(seg, low=seg.low + sign * t_step))
    if variant.startswith("high"):
        return "high", replace(params, segment=replace(seg, high=seg.high + sign * t_step))
    return "h_um", replace(params, separation=replace(sep, h_um=max(0.0, sep.h_um + sign * h_step)))


def sweep(
    volume: np.ndarray,
    params: AnalysisParams | None = None,
    *,
    spacing=None,
    options: SweepParams | None = None,
    baseline_phases: np.ndarray | None = None,
    baseline_table: pd.DataFrame | None = None,
    progress: Progress | None = None,
) -> SweepResult:
    """Re-run the analysis with thresholds and particle separation moved by one step.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        Greyscale; not modified.
    params : AnalysisParams
        Baseline parameters.  Unresolved thresholds / blur (None) are
        resolved by a baseline run first; with ``baseline_phases`` they must
        be resolved already (use the ``params`` of the analysis they came from),
        except where only the separation is varied (phases given as input have
        no thresholds: their rows' ``low`` / ``high`` are NaN).
    spacing : float or (3,) float, µm
    options : SweepParams
        Steps and variants (defaults: :class:`SweepParams`).
    baseline_phases : (Z, Y, X) uint8, optional
        Phases of the baseline analysis, to skip its segmentation.
    baseline_table : DataFrame, optional
        Particle table of the baseline analysis (with ``baseline_phases``),
        to skip the baseline run altogether.
    progress : callable(fraction, message), optional

    Returns
    -------
    SweepResult

    Raises
    ------
    ValueError
        A step that would cross the other threshold or make ``h_um``
        negative; baseline inputs with unresolved parameters or of the
        wrong shape.
    """
    options = options or SweepParams()
    params = params or AnalysisParams()
    if params.method != "threshold":
        raise ValueError(f"the sweep varies thresholds and the watershed's h; an analysis segmented by the "
                         f"{params.method!r} method has neither to vary")
    if params.particles != "watershed":
        raise ValueError("the sweep varies the watershed's h; an analysis whose particles come from the "
                         "network's cue is not swept")
    check_greyscale(volume)
    sp = normalize_spacing(spacing)
    report = progress or (lambda f, m: None)
    if baseline_table is not None and baseline_phases is None:
        raise ValueError("baseline_table needs baseline_phases (the separation variants start from them)")
    if baseline_phases is not None:
        baseline_phases = check_phases(baseline_phases)
        if baseline_phases.shape != volume.shape:
            raise ValueError(f"baseline_phases shape {baseline_phases.shape} does not match volume {volume.shape}")
        if not _resolved(params) and any(v in THRESHOLD_VARIANTS for v in options.variants):
            raise ValueError("with baseline_phases the thresholds (and pv_sigma) must be resolved: pass the params "
                             "the baseline analysis returned")
    if baseline_table is not None and "detachment" not in baseline_table.columns:
        raise ValueError("baseline_table has no 'detachment' column: pass a particle table")
    if _resolved(params) or baseline_phases is not None:  # fail on a bad step before any heavy work
        _steps(params, options, None)

    # the runs and their relative cost, for the progress bar
    plan = [] if baseline_table is not None else [_SEPARATION_COST if baseline_phases is not None else 1.0]
    plan += [_SEPARATION_COST if v in SEPARATION_VARIANTS else 1.0 for v in options.variants]
    total, done = sum(plan), [0.0, 0]  # cost done, runs done

    def stage(name: str) -> Progress:
        lo, w = done[0] / total, plan[done[1]] / total
        return lambda f, m: report(lo + w * float(f), f"{name}: {m}")

    def finished() -> None:
        done[0] += plan[done[1]]
        done[1] += 1

    if baseline_table is None:
        if baseline_phases is not None:
            res = run(baseline_phases, params, spacing=sp, presegmented=True, progress=stage("baseline"))
        else:
            res = run(volume, params, spacing=sp, progress=stage("baseline"))
            baseline_phases = res.phases
        params, baseline_table = res.params, res.table
        finished()
        del res
    t_step, h_step = _steps(params, options, (volume, baseline_phases))
    rows = [_row("baseline", "baseline", params, baseline_table)]
    for variant in options.variants:
        parameter, p = _variant_params(params, variant, t_step, h_step)
        if variant in SEPARATION_VARIANTS:
            res = run(baseline_phases, p, spacing=sp, presegmented=True, progress=stage(variant))
        else:
            res = run(volume, p, spacing=sp, progress=stage(variant))
        finished()
        rows.append(_row(variant, parameter, p, res.table))
        del res
    report(1.0, f"sweep done: {len(rows)} analyses")
    return SweepResult(rows=tuple(rows), params=params, threshold_step=t_step, h_step_um=h_step, options=options)


def _steps(params: AnalysisParams, options: SweepParams, data) -> tuple[float, float]:
    """The two steps (NaN when not needed and not given), checked against the parameters.

    ``data`` = (volume, baseline phases) for the default threshold step, or
    None to check the explicit steps only.
    """
    seg, h = params.segment, params.separation.h_um
    want_t = any(v in THRESHOLD_VARIANTS for v in options.variants)
    want_h = any(v in SEPARATION_VARIANTS for v in options.variants)
    t_step = options.threshold_step
    if t_step is None and want_t and data is not None:
        t_step = options.threshold_rel_step * phase_contrast(*data)
        if not t_step > 0:
            raise ValueError(f"the NMC grey value is not above the pore grey value (contrast {t_step:g}); "
                             "give threshold_step in grey units")
    if want_t and t_step is not None and not t_step < seg.high - seg.low:
        raise ValueError(
            f"threshold_step {t_step:g} must be smaller than the gap between the thresholds "
            f"({seg.low:g} .. {seg.high:g}): the variants would swap them"
        )
    h_step = options.h_step_um if options.h_step_um is not None else options.h_rel_step * h
    if want_h and not h_step > 0:
        raise ValueError("h_um is 0: give h_step_um (µm) to vary the particle separation")
    if want_h and h_step > h:
        raise ValueError(f"h_step_um {h_step:g} must not exceed h_um ({h:g}): h_um - step would be negative")
    return (float("nan") if t_step is None else float(t_step)), float(h_step)


def sweep_table(sweeps: Mapping[str, SweepResult]) -> pd.DataFrame:
    """Several electrodes' sweeps as one long table for charting.

    Parameters
    ----------
    sweeps : {electrode name: SweepResult}

    Returns
    -------
    DataFrame
        ``electrode`` then :data:`ROW_COLUMNS`, one row per electrode and run.
    """
    parts = []
    for name, s in sweeps.items():
        t = s.table()
        t.insert(0, "electrode", name)
        parts.append(t)
    if not parts:
        return pd.DataFrame(columns=["electrode", *ROW_COLUMNS])
    return pd.concat(parts, ignore_index=True)


def spread_table(sweeps: Mapping[str, SweepResult]) -> pd.DataFrame:
    """One row per electrode: baseline median detachment and its segmentation error bar.

    Returns
    -------
    DataFrame
        Columns :data:`SPREAD_COLUMNS`; ``median_min`` .. ``median_max`` is the
        error bar, ``max_deviation`` its largest distance from the baseline.
    """
    rows = []
    for name, s in sweeps.items():
        sp = s.spread
        rows.append({
            "electrode": name, "n_particles": s.baseline.n_particles,
            "median_detachment": s.baseline.median_detachment, **asdict(sp),
            "threshold_step": s.threshold_step, "h_step_um": s.h_step_um,
        })
    return pd.DataFrame(rows, columns=list(SPREAD_COLUMNS))
