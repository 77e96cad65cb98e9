"""A comparison of electrodes as one run: its settings, its statistics, their words and their files.

The dashboard's Compare page and the headless ``python -m core compare`` (and
``run`` of a recipe that records a comparison) compute the same numbers through
:func:`compare_electrodes`, with the same bootstrap (:data:`N_BOOT` resamples,
seed :data:`SEED`), and word them with the same functions here
(:func:`summary_note`, :func:`tests_note`, ...): a comparison replayed headless
gives the page's summary, tests and trend, and :func:`write_comparison` writes
them as CSV, JSON and an HTML report (:func:`core.report.build_report`).

The statistics themselves are :mod:`core.compare`'s.  Nothing here imports
streamlit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from numbers import Real
from pathlib import Path

import pandas as pd

from . import compare
from .metrics import MEASURES, column_title
from .recipe import folder_name
from .records import Attribute
from .report import SYNTHETIC_NOTE, ReportElectrode, ReportSection, build_report, shown_params

SEED = 0  # bootstrap seed of every comparison (the dashboard's too)
N_BOOT = 2000  # bootstrap resamples (summary, pairwise tests, electrodes on an axis); binned trends use half

DEFAULT_EDGE = "include"
DEFAULT_CUT = 0.5

#: The edge policies in words, as the Compare page offers them.
EDGE_LABELS = {"exclude": "leave out", "include": "include", "miles": "Miles–Lantuéjoul weights"}
#: The scales a trend along an axis is a straight line in, in words.
SCALE_LABELS = {"linear": "the value", "log": "its logarithm", "rank": "its rank (order only)"}

#: The reading of a pair that sets a single slice against a volume (its numbers stay in the table).
NOT_COMPARABLE = ("not comparable: a single slice against a volume (diameters of circles against balls, contact "
                  "shares along outlines against over surfaces), whatever the p-value says")

_SETTING_KEYS = ("edge_policy", "cut", "min_diameter_um", "metric", "axis", "axis_scale")


class ComparisonError(ValueError):
    """Settings of a comparison that cannot be used (one sentence naming the setting)."""


@dataclass(frozen=True)
class CompareSettings:
    """The choices of a comparison, as the Compare page makes them (and a recipe records them).

    Attributes
    ----------
    edge_policy : {"include", "exclude", "miles"}
        Particles cut by the volume edge (:mod:`core.compare`); the summary, tests and trend count particles, so
        "miles" leaves out the same ones as "exclude" there.
    cut : float
        The detached cut, strictly between 0 and 1: the summary's and the trend's share of particles with a
        detachment above it.
    min_diameter_um : float
        Particles with a smaller equivalent diameter (µm) are left out of everything; 0 keeps all.
    metric : str
        The particle-table column the tests between electrodes compare.
    axis : str or None
        The sample attribute the electrodes are put on for a trend (e.g. ``"C-rate"``); None: no trend.
    axis_scale : {"linear", "log", "rank"} or None
        The scale the trend is a straight line in; None: the one the attribute's values lie the more evenly on
        (:func:`core.compare.suggested_scale`, as the page starts).
    """

    edge_policy: str = DEFAULT_EDGE
    cut: float = DEFAULT_CUT
    min_diameter_um: float = 0.0
    metric: str = "detachment"
    axis: str | None = None
    axis_scale: str | None = None

    def __post_init__(self):
        if self.edge_policy not in EDGE_LABELS:
            raise ComparisonError(f"edge_policy must be one of {list(EDGE_LABELS)}, got {self.edge_policy!r}")
        for name, lo, hi in (("cut", 0.0, 1.0), ("min_diameter_um", 0.0, math.inf)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(float(v)):
                raise ComparisonError(f"{name} must be a finite number, got {v!r}")
            object.__setattr__(self, name, float(v))
        if not 0.0 < self.cut < 1.0:
            raise ComparisonError(f"cut must lie strictly between 0 and 1 (a detachment), got {self.cut!r}")
        if self.min_diameter_um < 0:
            raise ComparisonError(f"min_diameter_um must be 0 or more (µm), got {self.min_diameter_um!r}")
        if self.metric not in MEASURES:
            raise ComparisonError(f"metric must be a measure of the particle table ({', '.join(MEASURES)}), got "
                                  f"{self.metric!r}")
        if self.axis is not None and (not isinstance(self.axis, str) or not self.axis.strip()):
            raise ComparisonError(f"axis must name a sample attribute (e.g. 'C-rate') or be null, got {self.axis!r}")
        if self.axis_scale is not None and self.axis_scale not in compare.X_SCALES:
            raise ComparisonError(f"axis_scale must be one of {list(compare.X_SCALES)} or null, got "
                                  f"{self.axis_scale!r}")
        if self.axis_scale is not None and self.axis is None:
            raise ComparisonError(f"axis_scale {self.axis_scale!r} is the scale of a trend along an attribute: name "
                                  "the attribute (axis) too")

    def to_dict(self) -> dict:
        """The settings as a JSON-ready dict (every key; ``axis`` and ``axis_scale`` may be None)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "CompareSettings":
        """Settings from :meth:`to_dict`'s form; keys left out take their defaults, an unknown key is refused."""
        if not isinstance(d, Mapping):
            raise ComparisonError(f"a comparison's settings must be a JSON object, got {type(d).__name__}")
        unknown = sorted(set(d) - set(_SETTING_KEYS))
        if unknown:
            raise ComparisonError(f"unknown comparison setting {unknown[0]!r} (known: {', '.join(_SETTING_KEYS)})")
        return cls(**dict(d))


@dataclass(frozen=True, eq=False)
class Comparison:
    """What :func:`compare_electrodes` computed.

    Attributes
    ----------
    settings : CompareSettings
    tables : {electrode: particle table}
        After the smallest diameter counted (every particle the edge policy may keep or leave out).
    dropped : {electrode: int}
        Particles under that diameter, per electrode.
    summary : core.compare.Summary or None
    tests : core.compare.PairwiseTests or None
        Every pair of electrodes, on ``settings.metric``; a pair of a single slice and a volume read as
        :data:`NOT_COMPARABLE`.
    axis_trend : core.compare.ElectrodeTrend or None
    notes : tuple of str
        What was not computed and why, and which electrodes the trend left out (one sentence each).
    """

    settings: CompareSettings
    tables: dict[str, pd.DataFrame]
    dropped: dict[str, int]
    summary: compare.Summary | None = None
    tests: compare.PairwiseTests | None = None
    axis_trend: compare.ElectrodeTrend | None = None
    notes: tuple[str, ...] = ()

    def used(self) -> dict[str, pd.DataFrame]:
        """The particles the summary, tests and trend count: :attr:`tables` less, unless the edge policy is
        "include", the particles cut by the volume edge."""
        return used_tables(self.tables, self.settings.edge_policy)


def used_tables(tables: Mapping[str, pd.DataFrame], edge_policy: str) -> dict[str, pd.DataFrame]:
    """``tables`` less, unless ``edge_policy`` is "include", the particles cut by the volume edge (``touches_edge``;
    "miles" leaves out the same ones)."""
    if edge_policy == "include":
        return dict(tables)
    return {n: t[~t["touches_edge"].to_numpy(bool)].reset_index(drop=True) if "touches_edge" in t else t
            for n, t in tables.items()}


def _clause(exc: Exception) -> str:
    """An error's sentence after a colon ("No summary: electrode 'a' has ..."): its first word in lower case where it
    is a plain word (not a name in capitals, "NMC"), one full stop."""
    text = str(exc).strip().rstrip(".")
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text + "."


def axis_values(attributes: Mapping[str, Sequence[Attribute]], axis: str) -> dict[str, Attribute]:
    """``{electrode: its attribute named axis}`` for the electrodes that have it, in the order given."""
    return {n: a for n, attrs in attributes.items() for a in attrs if a.name == axis}


def compare_electrodes(
    tables: Mapping[str, pd.DataFrame],
    settings: CompareSettings = CompareSettings(),
    *,
    groups: Mapping[str, str] | None = None,
    attributes: Mapping[str, Sequence[Attribute]] | None = None,
    single_slice: Mapping[str, bool | None] | None = None,
) -> Comparison:
    """The Compare page's statistics of electrodes: summary, tests between every pair, trend along an axis.

    Parameters
    ----------
    tables : {electrode name: particle table}
        At least two electrodes, in the order the outputs list them (:func:`core.metrics.particle_table`).
    settings : CompareSettings
    groups : {electrode: group label}, optional
    attributes : {electrode: sequence of Attribute}, optional
        The samples' attributes; the trend runs on those named ``settings.axis``.
    single_slice : {electrode: bool or None}, optional
        Which electrodes are single slices (None: unknown); a pair of a slice and a volume is read as
        :data:`NOT_COMPARABLE` (its numbers stay).

    Returns
    -------
    Comparison
        A statistic that cannot be computed (too few particles, an axis too few electrodes carry) is None, with
        the reason in ``notes``.

    Raises
    ------
    ComparisonError
        Fewer than two electrodes, or a metric that is not a column of every table.
    """
    if not isinstance(settings, CompareSettings):
        raise TypeError(f"settings must be CompareSettings, got {type(settings).__name__}")
    if len(tables) < 2:
        raise ComparisonError(f"a comparison needs at least two electrodes, got {len(tables)}")
    missing = [n for n, t in tables.items() if settings.metric not in t.columns]
    if missing:
        raise ComparisonError(f"metric {settings.metric!r} is not a column of the particle table of "
                              f"{missing[0]!r}")
    kept, dropped = compare.drop_small(tables, settings.min_diameter_um)
    groups = dict(groups or {})
    notes: list[str] = []
    try:
        summary = compare.summary(kept, groups, cut=settings.cut, edge_policy=settings.edge_policy, n_boot=N_BOOT,
                                  rng=SEED)
    except ValueError as exc:
        summary = None
        notes.append("No summary: " + _clause(exc))
    try:
        tests = compare.pairwise_tests(kept, settings.metric, edge_policy=settings.edge_policy, rng=SEED,
                                       n_boot=N_BOOT, label=metric_label(settings.metric))
        tests = mixed_dimensions_marked(tests, single_slice or {})
    except ValueError as exc:
        tests = None
        notes.append("No tests between electrodes: " + _clause(exc))
    trend, trend_notes = _axis_trend(kept, settings, attributes or {})
    return Comparison(settings, dict(kept), dict(dropped), summary, tests, trend, tuple(notes + trend_notes))


def metric_label(metric: str) -> str:
    """A column's title without its unit ("equivalent diameter"), as the tests' readings name it."""
    return column_title(metric).split(" (")[0]


def _axis_trend(tables: Mapping[str, pd.DataFrame], s: CompareSettings,
                attributes: Mapping[str, Sequence[Attribute]]) -> tuple[compare.ElectrodeTrend | None, list[str]]:
    """The trend along ``s.axis`` as the Compare page makes it, with what it left out, in words."""
    if s.axis is None:
        return None, []
    have = {n: a for n, a in axis_values(attributes, s.axis).items() if n in tables}
    notes = []
    missing = [n for n in tables if n not in have]
    if missing:
        notes.append(f"Left out of the trend along {s.axis} (no {s.axis} given): " + ", ".join(missing) + ".")
    units = sorted({a.unit for a in have.values()})
    if len(units) > 1:
        return None, notes + [f"No trend along {s.axis}: it is given in different units "
                              f"({', '.join(repr(u) for u in units)})."]
    scale = s.axis_scale or (compare.suggested_scale([a.value for a in have.values()]) if have else "linear")
    if scale == "log":
        have, left = on_log_axis(s.axis, have)
        notes += [left] if left else []
    if len(have) < compare.MIN_ELECTRODES:
        return None, notes + [f"No trend along {s.axis}: it needs at least {compare.MIN_ELECTRODES} electrodes "
                              f"with {s.axis} given{' above 0' if scale == 'log' else ''}, {len(have)} have it."]
    try:
        res = compare.electrode_trend({n: tables[n] for n in have}, {n: a.value for n, a in have.items()},
                                      cut=s.cut, attribute=s.axis, unit=units[0], x_scale=scale,
                                      edge_policy=s.edge_policy, n_boot=N_BOOT, rng=SEED)
    except ValueError as exc:
        return None, notes + [f"No trend along {s.axis}: " + _clause(exc)]
    return res, notes


def on_log_axis(axis: str, have: Mapping[str, Attribute]) -> tuple[dict[str, Attribute], str | None]:
    """The electrodes a logarithmic axis keeps (values above 0: an uncycled electrode's C-rate 0 has no logarithm)
    and the sentence naming those it leaves out (None where it keeps all): left out and named, not a refusal."""
    nonpositive = [n for n, a in have.items() if a.value <= 0]
    if not nonpositive:
        return dict(have), None
    return ({n: a for n, a in have.items() if a.value > 0},
            f"Left out of the logarithmic axis ({axis} has no logarithm at 0 or below): "
            + ", ".join(f"{n} ({have[n].value:g})" for n in nonpositive) + ".")


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def dimensions_sentence(single_slice: Mapping[str, bool | None]) -> str | None:
    """A sentence where single slices (2D images, :mod:`core.slices`) are compared with volumes, else None
    (``single_slice``: per electrode, None where unknown): their sizes are circle against ball diameters, and their
    contact shares are read along outlines against over surfaces."""
    flat = [name for name, is_flat in single_slice.items() if is_flat]
    vols = [name for name, is_flat in single_slice.items() if is_flat is False]
    if not flat or not vols:
        return None
    return (f"{_join(flat)} {'is a single slice' if len(flat) == 1 else 'are single slices'} (measured in the "
            f"plane: sizes are the diameters of circles, contact shares read along outlines), {_join(vols)} "
            f"{'a volume' if len(vols) == 1 else 'volumes'} (diameters of balls, shares over surfaces): compare "
            "slices with slices and volumes with volumes.")


def mixed_dimensions_marked(res: compare.PairwiseTests, single_slice: Mapping[str, bool | None]
                            ) -> compare.PairwiseTests:
    """``res`` with each pair of a single slice and a volume read as :data:`NOT_COMPARABLE` (QA: "calA vs nanoct300:
    detachment index differs (p=1.1e-18 ...), large effect" stood under the page's own warning not to compare them,
    and went so into the report); ``res`` itself untouched."""
    t = res.table
    mixed = [single_slice.get(a) is not None and single_slice.get(b) is not None
             and single_slice.get(a) != single_slice.get(b) for a, b in zip(t["electrode_a"], t["electrode_b"])]
    if not any(mixed):
        return res
    t = t.copy()
    t.loc[mixed, "reading"] = NOT_COMPARABLE
    return replace(res, table=t)


# --------------------------------------------------------------------------- words


def edge_words(edge_policy: str) -> str:
    """Which particles a test counts, in a few words."""
    return "edge particles included" if edge_policy == "include" else "edge particles left out"


def summary_columns(res: compare.Summary) -> dict[str, str]:
    """The columns of the summary the page and its report show, in order, with their labels (the cut in the
    share's)."""
    pct = round(res.confidence * 100)
    share = f"share > {res.cut:g}"
    return {"electrode": "electrode", "group": "group", "n_particles": "particles", "n_used": "particles used",
            "n_valid": "with detachment", "median": "median detachment", "median_ci_lo": f"median: {pct} % CI low",
            "median_ci_hi": f"median: {pct} % CI high", "q1": "Q1", "q3": "Q3", "iqr": "IQR", "share_above": share,
            "share_ci_lo": f"{share}: {pct} % CI low", "share_ci_hi": f"{share}: {pct} % CI high",
            "median_equiv_diameter_um": "median diameter (µm)"}


def summary_table(res: compare.Summary) -> pd.DataFrame:
    """The summary as the page shows it (:func:`summary_columns`), for its report."""
    cols = summary_columns(res)
    return res.table[[c for c in cols if c in res.table.columns]].rename(columns=cols)


def summary_note(res: compare.Summary) -> str:
    """How the summary was made, in words (the page's caption and the note under its report's table)."""
    pct = round(res.confidence * 100)
    same = " (the same particles as leave out: the summary counts particles)" if res.edge_policy == "miles" else ""
    return (
        f"Detachment = area_pore / (area_pore + area_cbd) per particle (0–1). Particles cut by the volume edge: "
        f"{EDGE_LABELS[res.edge_policy]}{same}; 'particles' = the electrode's particles (those at least the smallest "
        f"diameter counted, where one is set), 'particles used' = those of them the edge choice keeps, "
        f"'with detachment' = those of them with "
        f"an open interface (the others have no detachment and are left out). 'share > {res.cut:g}' = share of "
        f"those with detachment above {res.cut:g}. {pct} % intervals. Median CI: percentile bootstrap "
        f"({res.n_boot} resamples, seed {SEED}); IQR = Q3 − Q1; share CI: Wilson score interval.")


_P_COLUMNS = ("mwu_p_holm", "ks_p_holm")


def p_values_written(res: compare.PairwiseTests) -> pd.DataFrame:
    """The tests table with its p-values written as the readings write them (:func:`core.compare.p_text`), for the
    page and its report alike (QA walk 16: the table's own number format gave "0.0000025" beside "6.9e-22", and the
    report "2.2e-09" where the page had "2.2e-9")."""
    t = res.table.copy()
    for c in _P_COLUMNS:
        t[c] = [compare.p_text(v, res.alpha) for v in t[c]]
    return t


def tests_columns(res: compare.PairwiseTests) -> dict[str, str]:
    """The columns of the tests table the page and its report show, in order, with their labels."""
    pct = round(res.confidence * 100)
    return {"electrode_a": "A", "electrode_b": "B", "n_a": "n A", "n_b": "n B", "median_diff": "median A − B",
            "diff_ci_lo": f"{pct} % CI low", "diff_ci_hi": f"{pct} % CI high",
            "mwu_p_holm": "Mann–Whitney p (Holm)", "ks_p_holm": "Kolmogorov–Smirnov p (Holm)",
            "cliffs_delta": "Cliff's δ", "effect": "effect size"}


def tests_note(res: compare.PairwiseTests) -> str:
    """How the tests were made, in words (the page's caption and the report's note)."""
    n = len(res.table)
    return (
        f"Particles are the observations ({edge_words(res.edge_policy)}). Two-sided Mann–Whitney U (typical value) "
        f"and two-sample Kolmogorov–Smirnov (any difference in shape); p-values Holm-corrected across the "
        f"{n} pair{'s' if n != 1 else ''}; 'differs' at p ≤ {res.alpha:g}. Cliff's δ = P(A > B) − "
        f"P(A < B) (|δ| < 0.15 negligible, < 0.33 small, < 0.47 medium, else large). CI of the median difference: "
        f"percentile bootstrap ({res.n_boot} resamples, seed {SEED}). Particles of one volume are not fully "
        "independent (neighbours share CBD), so treat small p-values from one scan per electrode with care.")


def tests_report_section(res: compare.PairwiseTests, note: str | None = None) -> ReportSection:
    """The tests as the page shows them, for its report: a reading per pair, the table, how they were made
    (``note``; default :func:`tests_note`)."""
    cols = tests_columns(res)
    t = p_values_written(res)
    return ReportSection(
        title=f"Differences between electrodes: {column_title(res.metric)}",
        items=[f"{r.electrode_a} vs {r.electrode_b}: {r.reading}." for r in t.itertuples()],
        table=t[list(cols)].rename(columns=cols).reset_index(drop=True), note=tests_note(res) if note is None else note)


def edge_sentence(edge_policy: str, kept: Mapping[str, tuple[int, int]], *, headless: bool = False) -> str:
    """What a report says of the particles cut by the volume edge, under its title.

    Parameters
    ----------
    edge_policy : {"include", "exclude", "miles"}
    kept : {electrode: (particles kept, particles before)}
    headless : bool
        The report of a headless comparison (:func:`write_comparison`): the comparison's choice, its own tables
        (the analyses' particle files keep every particle) and no weighted distributions; else the Compare page's.
    """
    label = EDGE_LABELS[edge_policy]
    whose = "the comparison's" if headless else "the page's"
    if edge_policy == "include":
        return (f"Particles cut by the volume edge are included ({whose} choice, '{label}'): every particle "
                "counts; the column touches_edge marks them.")
    held = ("the particle tables of this report hold only those (the analyses' own particle files keep them all)"
            if headless else "the particle tables (here and in the CSV and Parquet downloads) hold only those")
    miles = ""
    if edge_policy == "miles":
        miles = (" Miles–Lantuéjoul weights only weight distributions, which the dashboard draws; the summary, "
                 "tests and trend count particles." if headless else
                 " The distributions weight them by Miles–Lantuéjoul: column miles_weight (number weighting; times "
                 "volume_um3 for volume weighting).")
    return (f"Particles cut by the volume edge are left out ({whose} choice, '{label}'): the summary, tests and "
            f"trends count the rest, and {held}: " + ", ".join(f"{n} {k} of {m}" for n, (k, m) in kept.items())
            + "." + miles)


def min_diameter_sentence(min_diameter_um: float, dropped: Mapping[str, int], *, headless: bool = False
                          ) -> str | None:
    """What a report says of the particles under the smallest diameter counted (None where it is 0)."""
    if min_diameter_um <= 0:
        return None
    what = "the tables, summary, tests and trend" if headless else "the tables, charts and summary"
    return (f"Particles with an equivalent diameter under {min_diameter_um:g} µm are left out of {what} ("
            + ", ".join(f"{n}: {k}" for n, k in dropped.items()) + ").")


def settings_sentence(s: CompareSettings, scale: str | None = None) -> str:
    """The comparison's choices in one sentence (its report's first note); ``scale``: the trend's scale as used
    (the suggested one where the settings leave it open)."""
    axis = ("no trend along an attribute" if s.axis is None else
            f"the trend along {s.axis} a straight line in {SCALE_LABELS[scale or s.axis_scale or 'linear']}"
            + ("" if s.axis_scale else " (as the values suggest)"))
    return (f"Compared with: particles cut by the volume edge '{EDGE_LABELS[s.edge_policy]}', detached cut "
            f"{s.cut:g}, smallest equivalent diameter counted {s.min_diameter_um:g} µm, tests between electrodes on "
            f"{metric_label(s.metric)}, {axis}; bootstrap {N_BOOT} resamples, seed {SEED}.")


# --------------------------------------------------------------------------- files


def write_comparison(comp: Comparison, out: str | Path, electrodes: Sequence[ReportElectrode], *,
                     title: str = "Comparison of electrodes", made: str = "", recipe: Mapping | None = None,
                     caveats: Sequence[str] = (), versions: Mapping[str, str] | None = None,
                     extra_notes: Sequence[str] = ()) -> list[Path]:
    """Write a comparison as files into the folder ``out`` (made where missing).

    ``summary.csv`` (:attr:`Comparison.summary`'s table), ``tests.csv`` (every pair, p-values as numbers),
    ``trend-<axis>.csv`` where a trend was computed (:func:`core.compare.trend_file_table`),
    ``comparison.json`` (the settings, the bootstrap, the readings in words and the notes) and ``report.html``
    (:func:`core.report.build_report`: the page's summary and tests sections, the trend, the particle tables the
    statistics count; no charts: the dashboard draws them).  A statistic that was not computed leaves its CSV out.

    Parameters
    ----------
    comp : Comparison
    out : path
    electrodes : sequence of ReportElectrode
        The electrodes of ``comp``, in its order (their tables are replaced by the particles the statistics count).
    title, made, recipe, caveats, versions
        As :func:`core.report.build_report` takes them.
    extra_notes : sequence of str
        More notes under the title (after the comparison's own).

    Returns
    -------
    list of Path
        The files written.
    """
    from ._json import dumps_strict

    names = list(comp.tables)
    if [e.name for e in electrodes] != names:
        raise ComparisonError("the report's electrodes must be the comparison's, in its order: got "
                              f"{[e.name for e in electrodes]}, the comparison has {names}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def put(name: str, text: str) -> None:
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)

    s = comp.settings
    used = comp.used()
    if comp.summary is not None:
        put("summary.csv", comp.summary.table.to_csv(index=False))
    if comp.tests is not None:
        put("tests.csv", comp.tests.table.to_csv(index=False))
    trend_file = None
    if comp.axis_trend is not None:
        trend_file = f"trend-{folder_name(s.axis)}.csv"  # the page's download's name
        put(trend_file, compare.trend_file_table(comp.axis_trend).to_csv(index=False))
    record = {
        "settings": s.to_dict(),
        "bootstrap": {"resamples": N_BOOT, "seed": SEED},
        "electrodes": names,
        "particles": {n: {"counted": len(t), "smaller_than_min_diameter": comp.dropped.get(n, 0),
                          "used": len(used[n])} for n, t in comp.tables.items()},
        "tests": ([f"{r.electrode_a} vs {r.electrode_b}: {r.reading}." for r in comp.tests.table.itertuples()]
                  if comp.tests is not None else None),
        "trend": ({"scale": comp.axis_trend.x_scale, "file": trend_file,
                   "median": compare.trend_reading(comp.axis_trend, label="detachment index") + ".",
                   "share_above": compare.trend_reading(comp.axis_trend, label="detachment index",
                                                        measure="share_above") + "."}
                  if comp.axis_trend is not None else None),
        "notes": list(comp.notes),
    }
    put("comparison.json", dumps_strict(record, indent=2))
    scale = comp.axis_trend.x_scale if comp.axis_trend is not None else None
    notes = [settings_sentence(s, scale)]
    notes += [n for n in (min_diameter_sentence(s.min_diameter_um, comp.dropped, headless=True),
                          edge_sentence(s.edge_policy, {n: (len(used[n]), len(comp.tables[n])) for n in names},
                                        headless=True)) if n]
    notes += list(comp.notes)
    notes.append("Charts are drawn by the dashboard's Compare page (its recipe replays these numbers), not here.")
    notes += list(extra_notes)
    report_electrodes = [replace(e, table=used[e.name]) for e in electrodes]
    sections = [tests_report_section(comp.tests)] if comp.tests is not None else []
    html = build_report(report_electrodes, title=title,
                        summary=summary_table(comp.summary) if comp.summary is not None else None,
                        summary_note=summary_note(comp.summary) if comp.summary is not None else "",
                        versions=versions, recipe=recipe, notes=notes, axis_trend=comp.axis_trend,
                        caveats=caveats, sections=sections, made=made)
    put("report.html", html)
    return written


# --------------------------------------------------------------------------- analysis folders


@dataclass(frozen=True, eq=False)
class AnalysisRun:
    """One electrode of a headless comparison: an analysis's particle table with what its run recorded.

    Attributes
    ----------
    name : str
    table : DataFrame
        Its particle table.
    group : str
    attributes : tuple of Attribute
    record : dict
        What the run recorded (``run.json`` of ``analyze``, ``provenance.json`` of ``run``): ``params``,
        ``provenance`` (``spacing_um``, ``input_shape``, ``input_checksum``, ``versions``), ``input``.
    """

    name: str
    table: pd.DataFrame
    group: str = ""
    attributes: tuple[Attribute, ...] = ()
    record: Mapping = field(default_factory=dict)

    @property
    def single_slice(self) -> bool | None:
        """Whether the analysed input was a single slice (None: not recorded)."""
        from .slices import recorded_single_slice

        return recorded_single_slice((self.record.get("provenance") or {}).get("input_shape"))

    def report_electrode(self) -> ReportElectrode:
        """The electrode as a report shows it (its inputs, parameters and versions)."""
        prov = self.record.get("provenance") or {}
        inp = self.record.get("input") or {}
        source = inp.get("path") or (f"demo:{inp['demo']}" if inp.get("demo") else "")
        params = shown_params(self.record.get("params") or {})
        if inp.get("phase_map"):  # the phases were read from the file (as the dashboard's report says it)
            params.pop("segment", None)
            params["method"] = f"phases read from the file (phase map {inp['phase_map']})"
        return ReportElectrode(name=self.name, table=self.table, params=params,
                               source=str(source), spacing_um=prov.get("spacing_um"),
                               input_checksum=prov.get("input_checksum"), versions=prov.get("versions") or {},
                               group=self.group)


RUN_RECORDS = ("provenance.json", "run.json")  # what ``run`` and ``analyze`` write beside the particle table


def read_analysis_folder(path: str | Path) -> AnalysisRun:
    """An analysis folder written by ``python -m core analyze`` or ``run`` (one analysis of it), as an electrode.

    The table is ``particles.parquet`` (else ``particles.csv``); the record ``provenance.json`` or ``run.json``;
    the name, group and attributes those of the folder's ``recipe.json`` where it holds one analysis (``run``
    writes it), else the folder's name, no group and no attributes.

    Raises
    ------
    ComparisonError
        Not a folder, or no particle table in it.
    """
    import json

    from .recipe import RecipeError, read_recipe

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ComparisonError(f"{folder} is not a folder of an analysis (written by 'analyze' or 'run')")
    for stem in ("particles.parquet", "particles.csv"):
        if (folder / stem).is_file():
            table = pd.read_parquet(folder / stem) if stem.endswith(".parquet") else pd.read_csv(folder / stem)
            break
    else:
        subs = sorted(p.name for p in folder.iterdir() if (p / "particles.parquet").is_file()
                      or (p / "particles.csv").is_file())
        hint = (f" (the folders of its analyses are: {', '.join(str(folder / n) for n in subs)})" if subs else "")
        raise ComparisonError(f"{folder} holds no particle table (particles.parquet or particles.csv): not the "
                              f"output folder of an analysis{hint}")
    record: dict = {}
    for name in RUN_RECORDS:
        if (folder / name).is_file():
            try:
                record = json.loads((folder / name).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ComparisonError(f"{folder / name} cannot be read as JSON: {exc}") from None
            break
    name, group, attributes = folder.resolve().name, "", ()
    if (folder / "recipe.json").is_file():
        try:
            recipe = read_recipe(folder / "recipe.json")
        except RecipeError as exc:
            raise ComparisonError(f"{folder / 'recipe.json'}: {exc}") from None
        if len(recipe.analyses) == 1:
            e = recipe.analyses[0]
            name, group, attributes = e.name, e.group, tuple(e.attributes)
    return AnalysisRun(name, table, group, attributes, record if isinstance(record, Mapping) else {})


def compare_runs(runs: Sequence[AnalysisRun], settings: CompareSettings, out: str | Path, *,
                 recipe: Mapping | None = None, made: str = "", versions: Mapping[str, str] | None = None
                 ) -> tuple[Comparison, list[Path]]:
    """:func:`compare_electrodes` of analysis runs, written into ``out`` (:func:`write_comparison`).

    Raises
    ------
    ComparisonError
        Fewer than two runs, two of one name, or what :func:`compare_electrodes` refuses.
    """
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ComparisonError(f"two electrodes are named {dup!r}: name each analysis once")
    comp = compare_electrodes({r.name: r.table for r in runs}, settings, groups={r.name: r.group for r in runs},
                              attributes={r.name: r.attributes for r in runs},
                              single_slice={r.name: r.single_slice for r in runs})
    mixed = dimensions_sentence({r.name: r.single_slice for r in runs})
    caveats = [mixed] if mixed else []
    demo = [SYNTHETIC_NOTE] if any((r.record.get("input") or {}).get("demo") for r in runs) else []
    files = write_comparison(comp, out, [r.report_electrode() for r in runs], recipe=recipe, made=made,
                             caveats=caveats, versions=versions, extra_notes=demo)
    return comp, files


__all__ = [
    "AnalysisRun", "CompareSettings", "Comparison", "ComparisonError", "DEFAULT_CUT", "DEFAULT_EDGE", "EDGE_LABELS",
    "N_BOOT", "NOT_COMPARABLE", "RUN_RECORDS", "SCALE_LABELS", "SEED", "axis_values", "compare_electrodes",
    "compare_runs", "dimensions_sentence", "edge_sentence", "edge_words", "metric_label", "min_diameter_sentence",
    "mixed_dimensions_marked", "on_log_axis", "p_values_written", "read_analysis_folder", "settings_sentence",
    "summary_columns", "summary_note", "summary_table", "tests_columns", "tests_note", "tests_report_section",
    "used_tables", "write_comparison",
]
