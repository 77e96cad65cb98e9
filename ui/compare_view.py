"""Sections of the Compare page, one function each.

The page picks the electrodes once (:func:`select`, a :class:`CompareContext`),
reads the page-wide edge policy (:func:`edge_policy_picker`) and then calls one
function per section.  A new section (from another ``ui`` module) takes the same
context: ``my_module.section(ctx, edge_policy)``.  Statistics come from
:mod:`core.compare` through the cached wrappers in :mod:`ui.cache`; charts from
:mod:`ui.charts`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import streamlit as st

from core import compare, comparison
from core.comparison import (  # the page's words are the headless comparison's
    DEFAULT_CUT, DEFAULT_EDGE, EDGE_LABELS, SCALE_LABELS, edge_words, p_values_written, summary_columns, summary_note,
    tests_columns, tests_note, tests_report_section,
)
from core.jobs import ACTIVE
from core.records import Attribute
from core.slices import slice_axis
from core.workspace import Analysis, Sample, Workspace

from . import advice, cache, charts, exports, jobs, messages, page, render, state, tables
from . import pins as pins_words

WEIGHTING_LABELS = {"number": "each particle counts once", "volume": "by particle volume"}
KIND_LABELS = {"histogram": "histogram", "ecdf": "cumulative (ECDF)", "box": "box", "violin": "violin"}
DEFAULT_LOW_N = 10


@dataclass(frozen=True)
class CompareContext:
    """The electrodes being compared (in display order) and what identifies their results.

    Attributes
    ----------
    ws : Workspace
    names : {sample id: display name}
    samples : {display name: (Sample, Analysis)}
        The analysis compared for each chosen sample (pinned: see :func:`analysis_pickers`).
    refs : {display name: ResultRef}
    tables : {display name: particle table}
    groups : {display name: group label}
    windows_um : {display name: (3,) float or None}
        Size of each analysed volume in µm (z, y, x), for Miles–Lantuéjoul weights.
    discs_um : {display name: float or None}
        The radius (µm) of an analysis's circular field of view (:func:`core.phases.fov_disc`), for the same.
    min_diameter_um : float
        Particles with a smaller equivalent diameter are left out of ``tables``
        and of every statistic keyed by :attr:`key` (0 keeps all).
    dropped : {display name: int}
        How many particles of each electrode that filter left out.
    """

    ws: Workspace
    names: dict[int, str]
    samples: dict[str, tuple[Sample, Analysis]]
    refs: dict[str, cache.ResultRef]
    tables: dict[str, pd.DataFrame]
    groups: dict[str, str]
    windows_um: dict[str, tuple[float, float, float] | None] = field(default_factory=dict)
    discs_um: dict[str, float | None] = field(default_factory=dict)
    min_diameter_um: float = 0.0
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def key(self) -> cache.Selection:
        """Hashable cache key: the (name, ResultRef) pairs and the size filter."""
        return cache.Selection(tuple(self.refs.items()), float(self.min_diameter_um))

    def analysis_of(self, sample_id: int) -> Analysis | None:
        """The analysis compared for a chosen sample (None for a sample not chosen)."""
        name = self.names.get(sample_id)
        return self.samples[name][1] if name is not None else None

    @property
    def combined(self) -> pd.DataFrame:
        """All particle tables in one, with ``electrode`` and ``group`` columns."""
        return compare.combine(self.tables, self.groups)

    def used(self, edge_policy: str) -> dict[str, pd.DataFrame]:
        """The particles the page's summary, tests and trends count: :attr:`tables` less, unless ``edge_policy`` is
        "include", the particles cut by the volume edge (``touches_edge``; "miles" leaves out the same ones)."""
        if edge_policy == "include":
            return dict(self.tables)
        return {n: t[~t["touches_edge"].to_numpy(bool)].reset_index(drop=True) if "touches_edge" in t else t
                for n, t in self.tables.items()}


    def miles_tables(self) -> dict[str, pd.DataFrame]:
        """:meth:`used` under "miles", each table with its particles' Miles–Lantuéjoul weights in a column
        ``miles_weight`` (number weighting: 1 / the chance that a particle of its extents lies whole inside the
        window; times ``volume_um3`` for volume weighting), as the page's distributions weigh them (QA: the
        edge-corrected histograms could not be recomputed from the download)."""
        out = {}
        for n, t in self.tables.items():
            w = compare.particle_weights(t, edge_policy="miles", window_um=self.windows_um.get(n), name=n,
                                         disc_radius_um=self.discs_um.get(n))
            out[n] = t[w.used].assign(miles_weight=w.weights[w.used]).reset_index(drop=True)
        return out


def disc_um(analysis: Analysis) -> float | None:
    """The radius (µm) of an analysis's circular field of view, where it held a fill outside it as no material
    (its provenance's ``fill``), else None."""
    fill = (analysis.provenance or {}).get("fill") or {}
    radius = fill.get("disc_radius_um") if fill.get("as_edge") else None
    return float(radius) if radius else None


def window_um(analysis: Analysis, ref: cache.ResultRef) -> tuple[float, float, float] | None:
    """Side lengths (µm) of an analysed volume: recorded shape x spacing (else the label volume's shape)."""
    prov = analysis.provenance or {}
    spacing = prov.get("spacing_um")
    shape = prov.get("input_shape")
    if spacing is None:
        return None
    if shape is None or len(shape) != 3:
        try:
            shape = cache.result_arrays(ref)[1].shape
        except (OSError, ValueError, KeyError):
            return None
    return tuple(float(n) * float(s) for n, s in zip(shape, spacing))  # type: ignore[return-value]


def select(ws: Workspace) -> CompareContext:
    """Electrode picker with its guards (stops the page with a hint when fewer than two are analysed/chosen), then
    the analysis of each electrode (:func:`analysis_pickers`: pinned, named, changeable; newer ones offered, never
    switched to silently) and the parameters in which they differ."""
    samples = ws.list_samples()
    done = {s.id: ws.list_analyses(s.id, status="done") for s in samples}  # newest first
    analysed = [s for s in samples if done[s.id]]
    if len(analysed) < 2:
        running = [j for j in jobs.store(ws).list(states=ACTIVE) if j.kind == "analysis"]
        todo = len(samples) - len(analysed)
        st.info("Comparing needs at least two analysed samples. "
                + (f"{len(running)} analys{'es are' if len(running) > 1 else 'is is'} running as background jobs "
                   "(progress in the sidebar)." if running else
                   "Add electrodes on the **Samples** page (a demo electrode, a file from the data folder or an "
                   "upload), then analyse them." if len(samples) < 2 else
                   f"Analyse more on the **Segment** page, or all {todo} not analysed with *Analyse all* in the "
                   "sidebar." if todo > 1 else "Analyse more on the **Segment** page."))
        st.stop()
    by_id = {s.id: s for s in analysed}
    plain = [s.name for s in analysed]

    def display_name(sid: int) -> str:
        return exports.electrode_name(by_id[sid], plain)

    notices = _pins_from_url(ws, by_id)
    first = [s.id for s in analysed[:6]]  # and any sample pinned from the Samples page before this page ran
    default = first + [i for i in _pins()[0] if i in by_id and i not in first]
    # until the user picks electrodes, the default follows the analysed samples (a demo or a job that finishes
    # while the page is open joins it); a pick, a link's electrodes or a pin from another page make it theirs
    def kept(ids):  # those still analysed (a sample deleted meanwhile is dropped from both)
        return [i for i in ids if i in by_id]

    if state.CMP_SAMPLES not in st.session_state or \
            kept(st.session_state[state.CMP_SAMPLES]) == kept(st.session_state.get(state.CMP_SAMPLES_DEFAULT, [None])):
        st.session_state[state.CMP_SAMPLES] = st.session_state[state.CMP_SAMPLES_DEFAULT] = default
    st.session_state[state.CMP_SAMPLES] = kept(st.session_state[state.CMP_SAMPLES])
    chosen = st.multiselect("Electrodes", list(by_id), key=state.CMP_SAMPLES, format_func=display_name,
                            persist_state=state.PERSIST)
    if len(chosen) < 2:
        st.info("Pick at least two electrodes.")
        st.stop()
    if any(by_id[i].is_demo for i in chosen):
        st.caption("SYNTHETIC demo electrodes are generated with known ground truth; they are not measurements.")
    names = {i: display_name(i) for i in chosen}
    picked = analysis_pickers(ws, {i: (names[i], done[i]) for i in chosen}, notices)
    stale = changed_caveat({names[i]: (by_id[i], picked[i]) for i in chosen})
    if stale:  # (QA: an analysis at 0.5 µm compared, unsaid, after its sample's voxel size became 0.398 µm)
        exports.warn(stale)
    by_classifier = classifier_caveat({names[i]: picked[i] for i in chosen})
    if by_classifier:  # (the Particles page and its report said it; the comparison's did not)
        exports.warn(by_classifier)
    unmeasured = [names[i] for i in chosen if advice.blur_not_measured(picked[i], by_id[i].downsample) is not None]
    if unmeasured:  # (QA: a median detachment of 0.00 from a blur shell compared as a clean result)
        exports.warn(f"{', '.join(unmeasured)}: the blur fit reached its upper bound, so the scan's blur could not "
                     "be measured and a blurred particle-pore edge may have been read as a shell of CBD that hides "
                     "detachment; check the phases on the Segment page before comparing the detachment.")
    refs = {names[i]: cache.ResultRef.of(ws, picked[i]) for i in chosen}
    for i in chosen:  # (QA walk 15: a median of 0.99 where the expert labels give 0.00, compared without a word)
        loose = advice.almost_loose_warning(cache.table(refs[names[i]]), advice.analysis_method(picked[i]), names[i])
        if loose:
            exports.warn(loose)
    guessed = guessed_side_note({names[i]: refs[names[i]] for i in chosen if by_id[i].separator_side == "auto"})
    if guessed:  # (QA: two crops of one electrode, depth running opposite ways, without a word)
        exports.warn(guessed)
    min_d = size_filter_picker()
    tables, dropped = compare.drop_small({n: cache.table(r) for n, r in refs.items()}, min_d)
    if min_d > 0:
        st.caption(f"Left out below {min_d:g} µm: " + ", ".join(f"{n} {k}" for n, k in dropped.items())
                   + " particles. Summary, distributions, tests, trends, slices and the isolated particles use the "
                     "rest; the uncertainty section below uses every particle.")
    return CompareContext(
        ws=ws, names=names, samples={names[i]: (by_id[i], picked[i]) for i in chosen}, refs=refs, tables=tables,
        groups={names[i]: by_id[i].group_label for i in chosen},
        windows_um={names[i]: window_um(picked[i], refs[names[i]]) for i in chosen},
        discs_um={names[i]: disc_um(picked[i]) for i in chosen},
        min_diameter_um=min_d, dropped=dropped,
    )


# --------------------------------------------------------------------------- pinned analyses


def _pins() -> tuple[dict[int, int], dict[int, int]]:
    """This session's pins ``{sample id: analysis id}`` and the newest analysis known when each was set."""
    return st.session_state.setdefault(state.CMP_PINS, {}), st.session_state.setdefault(state.CMP_SEEN, {})


def pin_for_compare(sample_id: int, analysis_id: int, latest_id: int) -> None:
    """Make the Compare page show ``analysis_id`` for this sample (and compare the sample), from another page."""
    _pin(sample_id, analysis_id, latest_id)
    chosen = st.session_state.get(state.CMP_SAMPLES)
    if chosen is not None and sample_id not in chosen:  # (before the page's first run its default adds it)
        st.session_state[state.CMP_SAMPLES] = [*chosen, int(sample_id)]


def shown_analysis(ws: Workspace, sample: Sample, label: str = "Analysis shown") -> Analysis | None:
    """The analysis of ``sample`` another page shows beside the Compare page: the one Compare shows for it (its pin
    in this session), else the latest; named in a selectbox when it has several, and a pick there is Compare's
    too (QA: the 3D page drew the latest analysis, 190 particles, while Compare kept #4 with 170, and named none).
    None where it has no finished analysis."""
    found = ws.list_analyses(sample.id, status="done")
    if not found:
        return None
    by_aid = {a.id: a for a in found}
    pins, seen = _pins()
    latest = found[0].id
    aid = pins.get(sample.id) if pins.get(sample.id) in by_aid else latest
    if len(found) > 1:
        key = state.k(state.V3_ANALYSIS, sample.id)
        st.session_state[key] = aid
        aid = st.selectbox(label, list(by_aid), key=key, on_change=_picked, args=(sample.id, key, latest),
                           format_func=lambda i: pins_words.analysis_label(by_aid[i], latest_id=latest),
                           help="The same analysis as the Compare page shows for this sample; picking another "
                                "here picks it there too.")
    return by_aid[aid]


def _pins_from_url(ws: Workspace, by_id: dict[int, Sample]) -> list[str]:
    """On a session's first Compare run, the electrodes and pins named by ``?a=ID,...`` (a reload or a shared
    link); returns one sentence for each id the workspace no longer has as a finished analysis."""
    if state.CMP_PINS in st.session_state:
        return []
    pins, seen = _pins()
    notices, chosen = [], []
    for aid in pins_words.parse_url_ids(st.query_params.get(pins_words.URL_ANALYSES)):
        try:
            a = ws.get_analysis(aid)
        except (KeyError, ValueError):
            a = None
        if a is None or a.status != "done" or a.sample_id not in by_id:
            notices.append(f"Analysis #{aid} named in the link is no longer in the workspace: it is left out.")
            continue
        if a.sample_id not in pins:
            pins[a.sample_id] = seen[a.sample_id] = a.id
            chosen.append(a.sample_id)
    if len(chosen) >= 2 or (chosen and state.CMP_SAMPLES not in st.session_state):
        st.session_state[state.CMP_SAMPLES] = chosen
    return notices


def _pin(sid: int, aid: int, latest: int) -> None:
    pins, seen = _pins()
    pins[sid], seen[sid] = int(aid), int(latest)


def _picked(sid: int, key: str, latest: int) -> None:
    _pin(sid, st.session_state[key], latest)


def analysis_pickers(ws: Workspace, electrodes: dict[int, tuple[str, list[Analysis]]],
                     notices: list[str] = ()) -> dict[int, Analysis]:
    """The analysis of each electrode: named in a selectbox (id, date, method), pinned in the session and in the
    URL, a notice with *Use it* where a newer one appeared, and the parameters in which they differ.

    Parameters
    ----------
    electrodes : {sample id: (display name, its finished analyses, newest first)}
    notices : list of str
        Sentences to show first (pins of a link that could not be kept).

    Returns
    -------
    {sample id: Analysis}
    """
    pins, seen = _pins()
    notices = list(notices)
    for sid, (name, found) in electrodes.items():
        have = {a.id for a in found}
        if pins.get(sid) not in have:
            if sid in pins:  # deleted meanwhile (here or in another browser)
                notices.append(f"Analysis #{pins[sid]} of {name} is no longer in the workspace; showing its "
                               f"latest, {pins_words.naming_sentence(name, found[0]).split(': ', 1)[1]}.")
            _pin(sid, found[0].id, found[0].id)
    for text in notices:
        st.warning(text, icon=":material/history:")
    picked: dict[int, Analysis] = {}
    per_row = min(len(electrodes), 3)
    cols = st.columns(per_row)
    for i, (sid, (name, found)) in enumerate(electrodes.items()):
        by_aid = {a.id: a for a in found}
        key = state.k(state.CMP_PICK, sid)
        st.session_state[key] = pins[sid]
        latest = found[0].id
        cols[i % per_row].selectbox(
            f"Analysis of {name}", list(by_aid), key=key, on_change=_picked, args=(sid, key, latest),
            format_func=lambda aid, by_aid=by_aid, latest=latest: pins_words.analysis_label(by_aid[aid],
                                                                                            latest_id=latest))
        picked[sid] = by_aid[pins[sid]]
    st.caption("The analysis shown for each electrode stays the same (also in the page's link) until you pick "
               "another; a newer one is offered, never switched to on its own. Notes and deleting: the Samples page.")
    for sid, (name, found) in electrodes.items():
        newest = found[0]
        if newest.id != pins[sid] and newest.id > seen.get(sid, pins[sid]):
            c1, c2, c3 = st.columns([8, 1, 1], vertical_alignment="center")
            c1.info(f"{name} has a newer analysis #{newest.id} ({pins_words.finished_text(newest)}, "
                    f"{pins_words.method_words(newest)}); this page still shows #{pins[sid]}.",
                    icon=":material/fiber_new:")
            c2.button("Use it", key=state.k(state.CMP_USE_NEWER, sid), on_click=_pin,
                      args=(sid, newest.id, newest.id), type="primary")
            c3.button(f"Keep #{pins[sid]}", key=state.k(state.CMP_KEEP, sid), on_click=_pin,
                      args=(sid, pins[sid], newest.id))
    compared = {electrodes[sid][0]: a for sid, a in picked.items()}
    differ = params_caveat(compared)
    if differ:
        st.warning(f"**{PARAMS_DIFFER}**{differ[len(PARAMS_DIFFER):]}", icon=":material/rule:")
    mixed = pins_words.dimensions_sentence(compared)
    if mixed:
        st.warning(mixed, icon=":material/layers:")
    value = pins_words.url_value(picked[sid].id for sid in electrodes)
    if st.query_params.get(pins_words.URL_ANALYSES) != value:  # a reload or a shared link shows the same
        st.query_params[pins_words.URL_ANALYSES] = value
    return picked


PARAMS_DIFFER = "The compared analyses used different parameters:"


def params_caveat(analyses: dict[str, Analysis]) -> str:
    """The sentence the page warns with where the compared analyses used different parameters ("" where not)."""
    diffs = pins_words.param_differences(analyses)
    if not diffs:
        return ""
    return (f"{PARAMS_DIFFER} {pins_words.differences_sentence(diffs)} Differences may come from these, not only "
            "from the electrodes.")


CHANGED_SINCE = "Analysed before the sample changed:"


def changed_caveat(samples: dict[str, tuple[Sample, Analysis]]) -> str:
    """The sentence the page warns with (and its report carries) where a compared analysis ran before its sample's
    voxel size, phase map, region of interest or slices' alignment changed: each such electrode by name with the
    Particles page's sentences (:func:`ui.tables.changed_sentences`); "" where none did.

    Parameters
    ----------
    samples : {display name: (Sample, the Analysis compared)}
    """
    said = []
    for name, (sample, analysis) in samples.items():
        sentences = tables.changed_sentences(sample, analysis)
        if sentences:
            text = " ".join(sentences)
            said.append(f"{name}: {text[:1].lower()}{text[1:]}")
    return f"**{CHANGED_SINCE}** " + " ".join(said) if said else ""


def classifier_caveat(analyses: dict[str, Analysis]) -> str:
    """Where compared analyses took their phases from a brush-stroke classifier: those electrodes by name and what
    its phases do to the detachment (the Segment page's words, :data:`ui.segment_view.CLASSIFIER_EDGE_NOTE`); ""
    where none did.

    Parameters
    ----------
    analyses : {display name: Analysis}
    """
    from .segment_view import CLASSIFIER_EDGE_NOTE

    names = [n for n, a in analyses.items()
             if advice.analysis_method(a) == "classifier"]
    if not names:
        return ""
    return (f"{', '.join(names)} {'has its' if len(names) == 1 else 'have their'} phases from a brush-stroke "
            f"classifier. {CLASSIFIER_EDGE_NOTE}")


def caveats(analyses: dict[str, Analysis]) -> list[str]:
    """The page's warnings about what is compared, for its report: analyses with different parameters, single
    slices compared with volumes (:func:`ui.pins.dimensions_sentence`).

    Parameters
    ----------
    analyses : {display name: Analysis}
    """
    return [s for s in (params_caveat(analyses), pins_words.dimensions_sentence(analyses)) if s]


#: The page's link keeps the choices that change its numbers (beside ``a``, the analyses): a reload or a colleague
#: opening it sees the same medians.
URL_EDGE, URL_MIN_DIAMETER, URL_CUT = "edge", "min_d", "cut"
#: ... and the measure tested, the attribute on the axis and the scale its trend is a straight line in.
URL_METRIC, URL_AXIS, URL_SCALE = "measure", "axis", "scale"


def _from_url(key: str, name: str, default, parse) -> None:
    """The widget ``key``'s first value in this session: the link's ``name`` (``parse``d; a value it cannot read
    gives ``default``), else ``default``."""
    if key in st.session_state:
        return
    raw = st.query_params.get(name)
    try:
        st.session_state[key] = default if raw is None else parse(raw)
    except (TypeError, ValueError):
        st.session_state[key] = default


def _to_url(name: str, default, value):
    """``value``, written into the link as ``name`` (removed at its default); returns it."""
    text = None if value == default else f"{value:g}" if isinstance(value, float) else str(value)
    if text is None:
        if name in st.query_params:
            del st.query_params[name]
    elif st.query_params.get(name) != text:
        st.query_params[name] = text
    return value


def size_filter_picker() -> float:
    """The page-wide smallest equivalent diameter counted (µm; 0 keeps every particle)."""
    _from_url(state.CMP_MIN_DIAMETER, URL_MIN_DIAMETER, 0.0, lambda v: min(1000.0, max(0.0, float(v))))
    return _to_url(URL_MIN_DIAMETER, 0.0, float(st.number_input(
        "Smallest particle counted: equivalent diameter (µm)", 0.0, 1000.0, key=state.CMP_MIN_DIAMETER, step=0.5,
        format="%.2f", persist_state=state.PERSIST,
        help="Leave out fines and segmentation debris: a particle of a few voxels has a detachment of 0, 1 or a "
             "coarse fraction between. In a real calendered NMC volume 5 % of the particles had fewer than 16 "
             "voxels; leaving them out narrowed the IQR of detachment from 0.129 to 0.122. 0 keeps every "
             "particle. Applies to the exports too.")))


def edge_policy_picker() -> str:
    """The page-wide choice for particles cut by the volume edge."""
    _from_url(state.CMP_EDGE, URL_EDGE, DEFAULT_EDGE, lambda v: v if v in EDGE_LABELS else DEFAULT_EDGE)
    policy = _to_url(URL_EDGE, DEFAULT_EDGE, st.radio(
        "Particles cut by the volume edge", tuple(EDGE_LABELS), key=state.CMP_EDGE, horizontal=True,
        format_func=EDGE_LABELS.get, persist_state=state.PERSIST))
    st.caption(
        "**Include** (the default) keeps every particle: detachment is a share of the particle's *visible* open "
        "surface, still a fair estimate for a particle cut by the edge, and leaving edge particles out discards "
        "many of them in a small volume and under-counts large particles. Their *sizes* are truncated, though: "
        "for size measures choose **Miles–Lantuéjoul weights**, which leave edge particles out and weight each "
        "remaining particle by 1 / P(fully inside) from its bounding box (inside a circular field of view where "
        "the analysis held a fill outside it as no material), undoing the bias against large "
        "particles in the distributions. Tests, summary and trends count particles: there Miles–Lantuéjoul "
        "uses the same particles as **leave out**.")
    return policy


def _one_sentence_warning(exc: Exception) -> None:
    st.warning(messages.one_sentence(exc, alone=True))


# --------------------------------------------------------------------------- summary


def summary_section(ctx: CompareContext, edge_policy: str) -> compare.Summary | None:
    """Per electrode: n, median detachment with bootstrap CI, IQR and the share above a cut (Wilson CI); returns
    what it showed, for the page's report (:func:`ui.exports.compare_section`)."""
    _from_url(state.CMP_CUT, URL_CUT, DEFAULT_CUT,  # (rounded twice: 7 * 0.05 is 0.35000000000000003, QA walk 18)
              lambda v: round(round(min(0.95, max(0.05, float(v))) / 0.05) * 0.05, 2))
    cut = _to_url(URL_CUT, DEFAULT_CUT, st.slider("Detached cut: count particles with detachment above", 0.05, 0.95,
                                                  key=state.CMP_CUT, step=0.05, persist_state=state.PERSIST))
    try:
        res = cache.cmp_summary(ctx.key, tuple(ctx.groups.items()), edge_policy, float(cut))
    except ValueError as exc:
        _one_sentence_warning(exc)
        return None
    cols = summary_columns(res)
    st.dataframe(res.table, placeholder=tables.MISSING, hide_index=True, key=state.CMP_SUMMARY_TABLE,
                 column_order=list(cols), column_config={
        c: st.column_config.NumberColumn(label, format=_SUMMARY_FORMATS.get(c, "%.3f"))
        for c, label in cols.items() if c not in ("electrode", "group")})
    st.caption(summary_note(res))
    return res


_SUMMARY_FORMATS = {"n_particles": "%d", "n_used": "%d", "n_valid": "%d"}


# --------------------------------------------------------------------------- distributions


def numeric_metrics(ctx: CompareContext) -> list[str]:
    """The per-particle measures (:data:`core.metrics.MEASURES`: the id, the edge flag and the note left out)
    numeric in every table: what the page may test, and its recipe record (a column of an older table that is no
    measure would make a recipe no replay reads)."""
    from core.metrics import MEASURES

    return [k for k in MEASURES if all(k in t.columns and t[k].dtype.kind in "fiu" for t in ctx.tables.values())]


def distributions_section(ctx: CompareContext, edge_policy: str) -> str:
    """Histogram / ECDF / box / violin of one metric, number- or volume-weighted; returns the metric."""
    metrics = numeric_metrics(ctx)
    _from_url(state.CMP_METRIC, URL_METRIC, "detachment", str)  # (one no table has: detachment, just below)
    state.init(state.CMP_WEIGHTING, "number")
    state.init(state.CMP_KIND, "histogram")
    state.init(state.CMP_FACET, False)
    if st.session_state[state.CMP_METRIC] not in metrics:
        st.session_state[state.CMP_METRIC] = "detachment" if "detachment" in metrics else metrics[0]
    c1, c2, c3 = st.columns([3, 2, 3])
    metric = _to_url(URL_METRIC, "detachment", c1.selectbox(
        "Per-particle measure", metrics, key=state.CMP_METRIC, format_func=charts.metric_title,
        persist_state=state.PERSIST))
    weighting = c2.radio("Weighting", tuple(WEIGHTING_LABELS), key=state.CMP_WEIGHTING,
                         format_func=WEIGHTING_LABELS.get, persist_state=state.PERSIST)
    kind = c3.radio("Show as", tuple(KIND_LABELS), key=state.CMP_KIND, horizontal=True, format_func=KIND_LABELS.get,
                    persist_state=state.PERSIST)
    facet = st.checkbox("One panel per electrode (small multiples)", key=state.CMP_FACET,
                        persist_state=state.PERSIST, disabled=kind in ("box", "violin"))
    try:
        dist = cache.cmp_distributions(ctx.key, metric, weighting, edge_policy, tuple(ctx.windows_um.items()),
                                       tuple(ctx.discs_um.items()))
    except ValueError as exc:
        _one_sentence_warning(exc)
        return metric
    chart = charts.distribution(dist, kind, facet=facet and kind in ("histogram", "ecdf"))
    compound = kind == "violin" or (facet and kind in ("histogram", "ecdf"))
    exports.show(chart, f"distribution of {charts.metric_title(metric)}", width="content" if compound else "stretch")
    q = dist.quantiles
    st.dataframe(q, placeholder=tables.MISSING, hide_index=True, key=state.CMP_QUANTILES_TABLE,
                 column_order=["electrode", "n_used", "mean", "q05", "q25", "median", "q75", "q95"],
                 column_config={"n_used": st.column_config.NumberColumn("particles used", format="%d"),
                                **{c: st.column_config.NumberColumn(format="%.3g")
                                   for c in ("mean", "q05", "q25", "median", "q75", "q95")}})
    who = charts.weight_words(weighting, edge_policy)
    shapes = {"box": " Box: 25–75 %, black tick: median, whiskers: 5–95 %.",
              "violin": " Violin: weighted kernel density; black bar: 25–75 %, white dot: median."}
    st.caption(f"Weighted quantiles of {charts.metric_title(metric)}: share of {who}"
               + (" (each particle weighted by its volume: what share of the active material)"
                  if weighting == "volume" else "") + "." + shapes.get(kind, ""))
    if (q["extent_source"] == "equiv_diameter").any():
        st.caption("Some analyses predate bounding boxes: their Miles–Lantuéjoul weights use the equivalent "
                   "diameter as the particle's extent on every axis (re-run the analysis for exact extents).")
    return metric


# --------------------------------------------------------------------------- tests


def tests_section(ctx: CompareContext, metric: str, edge_policy: str) -> compare.PairwiseTests | None:
    """KS and Mann–Whitney per pair (Holm-adjusted), Cliff's delta, bootstrap CI of the median difference."""
    label = charts.metric_title(metric).split(" (")[0]
    try:
        res = cache.cmp_pairwise(ctx.key, metric, edge_policy, label)
    except ValueError as exc:
        _one_sentence_warning(exc)
        return None
    res = mixed_dimensions_marked(res, ctx)
    t = res.table
    cols = tests_columns(res)
    st.markdown("\n".join(f"- **{r.electrode_a} vs {r.electrode_b}**: {r.reading}." for r in t.itertuples()))
    st.dataframe(p_values_written(res), placeholder=tables.MISSING, hide_index=True, key=state.CMP_TESTS_TABLE,
                 column_order=list(cols), column_config={
        c: st.column_config.NumberColumn(label, format=_TEST_FORMATS[c]) if c in _TEST_FORMATS else label
        for c, label in cols.items()})
    note = tests_note(res)
    st.caption(note)
    exports.offer_section(tests_report_section(res, note))
    return res


def mixed_dimensions_marked(res: compare.PairwiseTests, ctx: CompareContext) -> compare.PairwiseTests:
    """``res`` with each pair of a single slice and a volume read as :data:`core.comparison.NOT_COMPARABLE`
    (:func:`core.comparison.mixed_dimensions_marked`); the cached result itself untouched."""
    return comparison.mixed_dimensions_marked(res, single_slices(ctx))


def single_slices(ctx: CompareContext) -> dict[str, bool | None]:
    """Which compared electrodes are single slices (None: not recorded)."""
    from core.slices import recorded_single_slice

    return {n: recorded_single_slice(a.provenance.get("input_shape")) for n, (_, a) in ctx.samples.items()}


_TEST_FORMATS = {"n_a": "%d", "n_b": "%d", "median_diff": "%.3g", "diff_ci_lo": "%.3g", "diff_ci_hi": "%.3g",
                 "cliffs_delta": "%+.2f"}
# --------------------------------------------------------------------------- trends


TRENDS = (("equiv_diameter_um", "quantile", None), ("depth_frac", "fixed", (0.0, 1.0)))


def few_bins_words(few: pd.DataFrame, x: str) -> str:
    """": name lo–hi unit (n=k), ..." for up to four bins of few particles (rows ``electrode``, ``x_lo``, ``x_hi``,
    ``n`` of a :class:`core.compare.Trend` table) of the measure ``x``; "" for more.  The bins' unit where the
    measure has one (QA walk 11: "grey_cal 0.494–0.622 (n=0)" for a diameter)."""
    if len(few) > 4:
        return ""
    unit = f" {charts.metric_unit(x)}" if charts.metric_unit(x) else ""
    return ": " + ", ".join(f"{r.electrode} {r.x_lo:.3g}–{r.x_hi:.3g}{unit} (n={r.n})" for r in few.itertuples())


def trends_section(ctx: CompareContext, edge_policy: str) -> list[compare.Trend]:
    """Median detachment per bin of size (equal-count bins) and of depth (equal-width bins), CIs and n."""
    state.init(state.CMP_TREND_BINS, 5)
    state.init(state.CMP_TREND_LOW_N, DEFAULT_LOW_N)
    state.init(state.CMP_TREND_POINTS, False)
    c1, c2, c3 = st.columns(3)
    bins = c1.slider("Bins", 2, 12, key=state.CMP_TREND_BINS, persist_state=state.PERSIST)
    low_n = c2.number_input("Flag bins with fewer particles than", 2, 1000, key=state.CMP_TREND_LOW_N, step=1,
                            persist_state=state.PERSIST)
    points = c3.checkbox("Show every particle", key=state.CMP_TREND_POINTS, persist_state=state.PERSIST)
    combined = ctx.combined if points else None
    out = []
    for x, binning, rng in TRENDS:
        sel, name = ctx.key, charts.metric_title(x).split(" (")[0]
        # an electrode without this measure (a single slice across the thickness axis has no depth) is left out of
        # its trend and named, not a refusal of the whole trend (QA: "0 particles with finite depth_frac")
        without = [n for n, t in ctx.tables.items() if x in t and not np.isfinite(t[x].to_numpy(float)).any()]
        if without:
            st.caption(f"Left out of detachment against {name}: {', '.join(without)} (no {name}: "
                       + ("a single slice across the thickness axis has none)." if x == "depth_frac" else "none "
                          "measured)."))
            sel = replace(sel, electrodes=tuple(e for e in sel.electrodes if e[0] not in without))
            if not sel.electrodes:
                continue
        try:
            tr = cache.cmp_trend(sel, x, int(bins), binning, rng, edge_policy, int(low_n))
        except ValueError as exc:
            _one_sentence_warning(exc)
            continue
        out.append(tr)
        st.markdown(f"**Detachment against {name}** "
                    f"({'equal-count' if binning == 'quantile' else 'equal-width'} bins)")
        order = list(ctx.tables)  # the page's colours, also where an electrode is left out of this trend
        exports.show(charts.trend(tr, points=combined, order=order), f"detachment vs {name}")
        c1, c2 = st.columns(2)
        with c1:
            exports.show(charts.trend_spread(tr, order=order), f"detachment spread (IQR) vs {name}")
        with c2:
            exports.show(charts.trend_counts(tr, order=order), f"particles per bin of {name}")
        if tr.n_low:
            few = tr.table[tr.table["low_n"]]
            where = few_bins_words(few, x)
            exports.warn(f"Detachment against {name}: {tr.n_low} of {len(tr.table)} bins have fewer than "
                         f"{tr.low_n} particles (grey triangles): their medians and intervals are unreliable{where}.")
    drifting = drift_note(ctx)
    if drifting:
        exports.warn(drifting)
    st.caption(f"Points: median detachment of the particles in each bin, bars: its 95 % "
               f"bootstrap CI ({comparison.N_BOOT // 2} resamples); left: spread (IQR) within each bin (Jiang et al., "
               f"Nat. Commun. 11, 2310 (2020) found small particles to scatter more: read it here, it is not "
               f"tested); right: particles per bin, dashed line = the few-particle threshold. "
               f"Size bins hold about equal numbers of particles of all electrodes together; {edge_words(edge_policy)}.")
    return out


def drift_note(ctx: CompareContext) -> str:
    """A sentence naming the compared electrodes whose analysis read a brightness drift along z worth a warning
    and did not flatten it (:func:`core.phases.shading_reading`): their detachment can follow the slice index
    ("" for none).  A brush-stroke classifier's analysis is not named: it scales each z-slice by its own grey values,
    which takes such a drift out (and flattening does not apply to it)."""
    found = []
    for name, (_, a) in ctx.samples.items():
        read = (a.provenance or {}).get("shading") or {}
        method = getattr(getattr(a, "resolved", None), "method", None)
        if read.get("warn") and not read.get("flattened") and method != "classifier":
            found.append(f"{name} ({read['drift']:.0%})")
    if not found:
        return ""
    return (f"The scan of {', '.join(found)} drifts in brightness along z (share of the pore-NMC contrast) and was "
            "analysed without flattening it: its detachment can follow the slice index, so a trend with depth may be "
            "the drift's. Rerun it with *Flatten the drift* (Segment page).")


def guessed_side_note(refs: dict[str, cache.ResultRef]) -> str:
    """A sentence naming the compared electrodes whose separator side was auto-detected where the volume's two ends
    differ in NMC share no more than slabs inside it do (:func:`ui.cache.side_said`): their depth, and the
    current-collector face the isolation section counts paths to, may be the wrong way round ("" for none).

    Parameters
    ----------
    refs : {display name: ResultRef}
    """
    found = [name for name, ref in refs.items() if cache.side_said(ref)]
    if not found:
        return ""
    return (f"The separator side of {', '.join(found)} was auto-detected, but the NMC share of the volume's two ends "
            "differs no more than it does between slabs inside it: depth (its trend, the slices at the same depth) "
            "and the current-collector face (isolated particles) may run the wrong way. Set the separator side on "
            "the Samples page and analyse again.")


# --------------------------------------------------------------------------- slices


def slices_section(ctx: CompareContext) -> None:
    """One slice per electrode at the same relative depth, particles coloured on one detachment scale."""
    state.init(state.CMP_DEPTH, 0.5)
    depth = st.slider("Depth (0 = separator side, 1 = current collector)", 0.0, 1.0, key=state.CMP_DEPTH, step=0.01,
                      persist_state=state.PERSIST)
    cols = st.columns(len(ctx.samples))
    for col, (name, (sample, analysis)) in zip(cols, ctx.samples.items()):
        ref = ctx.refs[name]
        params = page.latest_params(analysis)
        axis, side = params.axis, params.separator_side
        _, labels = cache.result_arrays(ref)
        index = render.depth_index(depth, labels.shape[axis], side, analysis.provenance.get("depth_extent"))
        # a single slice along the thickness axis (a FIB-SEM cross-section) is a plane through every depth: that
        # plane, the depth marked on it (its section at one depth is a line one voxel tall: QA, an empty image)
        thin = slice_axis(labels.shape)
        cross = thin is not None and thin != axis
        shown_axis, shown_index = (thin, 0) if cross else (axis, index)
        lab2d = cache.label_slice(ref, shown_axis, shown_index)
        t = ctx.tables[name]
        colours = render.label_colour_table(t["label"].to_numpy(), t["detachment"].to_numpy(), cache.max_label(ref))
        try:
            base = cache.grey_image(cache.VolumeRef.of(ctx.ws, sample), shown_axis, shown_index)
        except (OSError, ValueError, TypeError):
            base = render.grey_rgb(np.zeros_like(lab2d, dtype=np.float32), 0, 1)
        img = render.particle_overlay(base, lab2d, colours, mode="fill", width=render.outline_width(lab2d.shape))
        if cross:
            img = depth_line(img, [a for a in range(3) if a != thin].index(axis), index)
        with col:
            if cross:
                where = (f"its only plane, a cross-section through every depth; the magenta line is depth "
                         f"{depth:.2f} ({render.AXES[axis]} = {index}, separator at the {side})")
            elif labels.shape[axis] == 1:
                where = f"its only slice (a single slice across the thickness axis {render.AXES[axis]}: no depth)"
            else:
                where = f"{render.AXES[axis]} = {index} (depth {depth:.2f}, separator at the {side})"
            st.image(render.upscale(img, 420), width="stretch", caption=f"{name}: {where}")
    exports.show(charts.colour_bar(), "detachment colour scale")


def depth_line(img: np.ndarray, along: int, index: int) -> np.ndarray:
    """``img`` (H, W, 3) uint8 with the row (``along`` 0) or column (1) ``index`` drawn magenta, two pixels wide
    where the image is over 400 pixels on that side (a copy)."""
    out = np.array(img, copy=True)
    n = out.shape[along]
    width = 2 if n > 400 else 1
    lo = int(np.clip(index, 0, n - width))
    sl = [slice(None), slice(None)]
    sl[along] = slice(lo, lo + width)
    out[tuple(sl)] = render.HIGHLIGHT
    return out


# --------------------------------------------------------------------------- electrodes on an axis




def axis_attributes(ctx: CompareContext) -> dict[str, dict[str, Attribute]]:
    """``{attribute name: {display name: Attribute}}`` over the chosen electrodes, most widely given first."""
    found: dict[str, dict[str, Attribute]] = {}
    for name, (sample, _) in ctx.samples.items():
        for a in sample.attributes:
            found.setdefault(a.name, {})[name] = a
    return dict(sorted(found.items(), key=lambda kv: -len(kv[1])))


def axis_caveats(analyses: dict[str, Analysis]) -> list[str]:
    """What the trend across the electrodes on the axis mixes, said beside its reading (the page's warnings above
    are about all the chosen electrodes, and a reader of the trend's headline may not connect them): single slices
    with volumes, analyses with different parameters (a method among them)."""
    out = []
    mixed = pins_words.dimensions_sentence(analyses)
    if mixed:
        out.append(f"**This trend puts single slices and volumes on one line.** {mixed}")
    differ = params_caveat(analyses)
    if differ:
        out.append(f"**The electrodes on this axis were analysed differently.** {differ[len(PARAMS_DIFFER):].strip()}")
    return out


def trend_title(res: compare.ElectrodeTrend, measure: str, alpha: float = 0.05) -> str:
    """A trend chart's title: its reading in short ("rises with C-rate: p = 0.011, 4 electrodes"; the scale is in the
    x axis's title), so that the chart saved as a file says what it shows (QA walk 16: the PNG had no title and no
    p)."""
    t = res.median_test if measure == "median" else res.share_test
    verdict = compare.trend_verdict(t, alpha) or "no clear trend"
    return f"{verdict} with {res.attribute}: p = {compare.p_text(t.p, alpha)}, {res.n_electrodes} electrodes"


def scale_reason(attr: str, have: dict[str, Attribute]) -> str:
    """Why the trend starts on the logarithmic scale (:func:`core.compare.suggested_scale`), in one sentence."""
    values = ", ".join(f"{v:g}" for v in sorted({a.value for a in have.values()}))
    return (f"A straight line in the logarithm of {attr}: its values ({values}) lie more evenly on that scale, each "
            "step a similar factor (read from the values alone, before any detachment is looked at; choose "
            "'the value' for a line in the value itself).")


def axis_section(ctx: CompareContext, edge_policy: str) -> compare.ElectrodeTrend | None:
    """Each electrode's median detachment and share above the cut against a sample attribute, with CIs, the
    nested trend test and its reading in one sentence; the per-electrode table as CSV."""
    attrs = axis_attributes(ctx)
    if not attrs:
        st.info("None of these electrodes has a numeric attribute yet. Give each one (C-rate, cycles, SOC or "
                "your own, with its unit) on the **Samples** page under *Attributes*.")
        return None
    names = list(attrs)
    _from_url(state.CMP_AXIS_ATTR, URL_AXIS, names[0], str)
    if st.session_state[state.CMP_AXIS_ATTR] not in attrs:
        st.session_state[state.CMP_AXIS_ATTR] = names[0]

    def label(n: str) -> str:
        units = sorted({a.unit for a in attrs[n].values()} - {"", "-"})  # "-": a count or a ratio, no unit
        return f"{n} ({', '.join(units)})" if units else n

    c1, c2 = st.columns([2, 3])
    attr = c1.selectbox("Attribute on the x axis", names, key=state.CMP_AXIS_ATTR, format_func=label,
                        persist_state=state.PERSIST)
    have = attrs[attr]
    suggested = compare.suggested_scale([a.value for a in have.values()])
    scale_key = state.k(state.CMP_AXIS_SCALE, attr)
    # per attribute: a choice made for one is kept when coming back to it; the link's is the scale of its attribute
    linked = st.query_params.get(URL_AXIS, names[0]) == attr
    _from_url(scale_key, URL_SCALE, suggested, lambda v: v if linked and v in compare.X_SCALES else suggested)
    _to_url(URL_AXIS, names[0], attr)
    x_scale = c2.radio("The trend is a straight line in", compare.X_SCALES, key=scale_key,
                       horizontal=True, format_func=SCALE_LABELS.get, persist_state=state.PERSIST,
                       help="Straight in the value (e.g. cycles 0, 100, 200), in its logarithm (C-rates 0.5, 1, "
                            "2, 5: each doubling does the same) or in its rank (only the order counts). It starts "
                            "at the scale on which the electrodes' values lie the more evenly, read from the values "
                            "alone, before any detachment is looked at.")
    _to_url(URL_SCALE, suggested, x_scale)
    if x_scale == suggested == "log":
        st.caption(scale_reason(attr, have))
    missing = [n for n in ctx.samples if n not in have]
    if missing:
        st.caption(f"Left out (no {attr} given): " + ", ".join(missing) + ".")
    units = sorted({a.unit for a in have.values()})
    if len(units) > 1:
        st.warning(f"{attr} is given in different units ({', '.join(repr(u) for u in units)}): make them the same "
                   "on the Samples page before putting the electrodes on one axis.")
        return None
    if x_scale == "log":
        have, left = comparison.on_log_axis(attr, have)
        if left:
            st.caption(left)
    if len(have) < compare.MIN_ELECTRODES:
        st.info(f"A trend needs at least {compare.MIN_ELECTRODES} electrodes with {attr} given"
                + (" above 0" if x_scale == "log" else "") + f"; {len(have)} of the chosen electrodes "
                + ("has it." if len(have) == 1 else "have it."))
        return None
    cut = float(st.session_state.get(state.CMP_CUT, DEFAULT_CUT))
    try:
        res = cache.cmp_electrode_trend(ctx.key, tuple((n, a.value) for n, a in have.items()), attr, units[0],
                                        x_scale, edge_policy, cut)
    except ValueError as exc:
        _one_sentence_warning(exc)
        return None
    words = charts.metric_title(res.metric).split(" (")[0]
    m = res.median_test
    st.markdown(f"**{compare.trend_reading(res, label=words)}.**")
    for text in axis_caveats({n: ctx.samples[n][1] for n in have}):
        st.warning(text, icon=":material/warning:")
    c1, c2 = st.columns(2)
    with c1:
        exports.show(charts.electrode_trend(res, "median", order=list(ctx.tables), title=trend_title(res, "median")),
                     f"median detachment vs {attr}")
    with c2:
        share = functools.partial(charts.electrode_trend, res, "share_above", order=list(ctx.tables),
                                  title=trend_title(res, "share_above"))
        exports.show(share(legend=False), f"share detached vs {attr}", exported=share(legend=True))
    st.markdown(f"{compare.trend_reading(res, label=words, measure='share_above')}.")
    pct = round(res.confidence * 100)
    unit = f" ({res.unit})" if res.unit and res.unit != "-" else ""
    num = lambda label, fmt="%.3f": st.column_config.NumberColumn(label, format=fmt)  # noqa: E731
    st.dataframe(res.table, placeholder=tables.MISSING, hide_index=True, key=state.CMP_AXIS_TABLE, column_order=[
        "electrode", "value", "n_valid", "median", "median_ci_lo", "median_ci_hi", "share_above", "share_ci_lo",
        "share_ci_hi"], column_config={
        "value": num(f"{attr}{unit}", "%g"), "n_valid": num("particles", "%d"), "median": num(f"median {words}"),
        "median_ci_lo": num(f"{pct} % CI low"), "median_ci_hi": num(f"{pct} % CI high"),
        "share_above": num(f"share > {res.cut:g}"), "share_ci_lo": num(f"{pct} % CI low "),
        "share_ci_hi": num(f"{pct} % CI high ")})
    st.download_button("Trend table (CSV)", exports.electrode_trend_csv(res),
                       file_name=f"trend-{exports.slug(attr)}.csv", mime="text/csv", key=state.CMP_AXIS_CSV,
                       on_click="ignore", icon=":material/table:")
    k = res.n_electrodes
    st.caption(
        f"Bars: {pct} % CIs (median: percentile bootstrap over the electrode's particles, {res.n_boot} resamples, "
        f"seed {comparison.SEED}; share: Wilson); dashed: the fitted trend. **The test counts electrodes, not "
        f"particles**: particles of one scan share its history, structure and segmentation, so a particle-level "
        f"test, which counts 1,000 particles of one scan as 1,000 electrodes, takes electrode-to-electrode "
        f"scatter for a trend. Test: random-effects regression of the {k} "
        f"electrode medians on {attr} ({SCALE_LABELS[x_scale]}), each weighted by its bootstrap variance plus the "
        f"between-electrode variance, Knapp–Hartung t-test on {m.df} df (two-sided). It assumes the medians "
        f"scatter normally about a straight line; with few electrodes only a trend large against the "
        f"electrode-to-electrode scatter reaches a small p. Distribution-free check, a permutation of the "
        f"electrode labels (Kendall τ = {m.kendall_tau:+.2f}): p = {m.p_perm:.2g}"
        + (f", the smallest it can give with {k} electrodes" if m.p_perm <= m.p_perm_min + 1e-12
           else f" (its floor with {k} electrodes: {m.p_perm_min:.2g})") + f"; {edge_words(edge_policy)}.")
    return res
