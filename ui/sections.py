"""Two sections of the Compare page: isolated particles, and the segmentation-uncertainty sweep.

Each draws itself for the latest finished analysis of each chosen sample, so
the page calls it with one line::

    sections.isolation_section(ws, chosen, name_of=display_name)
    sections.uncertainty_section(ws, chosen, name_of=display_name)

* :func:`isolation_section`: :func:`core.connectivity.contact_graph` of each
  analysis (cached by analysis id + parameters; a few tenths of a second at
  160³), the share of isolated particles per electrode (by number and by
  volume, with n) and the isolated share against depth.
* :func:`uncertainty_section`: :func:`core.uncertainty.sweep` re-runs each
  analysis six times (about 10 s per 160³ demo on 2 cores), so it runs on a
  button, with a progress bar, and its result is kept in the workspace as
  ``analyses/<id>/sweep-<key>.json`` (``key`` from the sweep parameters): it
  survives restarts and goes away with its analysis.

The chart builders (:func:`isolation_chart`, :func:`isolation_depth_chart`,
:func:`uncertainty_chart`) take plain tables and import no streamlit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from core import connectivity, uncertainty
from core.pipeline import AnalysisParams
from core.uncertainty import SEPARATION_VARIANTS, SweepParams
from core.workspace import Analysis, Sample, Workspace

from . import cache, charts, exports, jobs, state, tables

NameOf = Callable[[int], str]
AnalysisOf = Callable[[int], "Analysis | None"]  # sample id -> the analysis a section shows (default: the latest)
DEPTH_TITLE = "depth (0 = separator side, 1 = current collector)"
WEIGHTINGS = ("by number", "by volume")
MOVED = {"low": "pore | CBD threshold", "high": "CBD | NMC threshold", "h_um": "separation h"}


@dataclass(frozen=True)
class Target:
    """One chosen electrode: its sample, latest finished analysis and the parameters that analysis resolved."""

    sample: Sample
    analysis: Analysis
    name: str
    ref: cache.ResultRef
    params: AnalysisParams
    spacing: tuple[float, float, float]

    @property
    def separator_side(self) -> str:
        side = self.params.separator_side
        if side not in ("start", "end"):  # not resolved: take what the table was measured with
            side = self.analysis.provenance.get("table_attrs", {}).get("separator_side", "start")
        return side


def targets(ws: Workspace, chosen_ids: Sequence[int], name_of: NameOf | None = None,
            analysis_of: AnalysisOf | None = None) -> tuple[list[Target], list[str]]:
    """The chosen samples with a finished analysis (``analysis_of(sample id)``, default the latest), and the names
    of those without one."""
    found, missing = [], []
    for sid in chosen_ids:
        sample = ws.get_sample(sid)
        name = name_of(sid) if name_of else sample.name
        a = analysis_of(sid) if analysis_of else ws.latest_analysis(sid)
        if a is None:
            missing.append(name)
            continue
        spacing = tuple(float(v) for v in (a.provenance.get("spacing_um") or sample.spacing))
        found.append(Target(sample, a, name, cache.ResultRef.of(ws, a), a.resolved,
                            spacing))  # type: ignore[arg-type]
    return found, missing


def _section_targets(title: str, ws: Workspace, chosen_ids: Sequence[int], name_of: NameOf | None,
                     analysis_of: AnalysisOf | None = None) -> list[Target]:
    """A section's subheader, a caption naming the chosen samples not analysed yet, and the analysed ones."""
    st.subheader(title)
    found, missing = targets(ws, chosen_ids, name_of, analysis_of)
    if missing:
        st.caption("Not analysed yet: " + ", ".join(missing) + ".")
    return found


def _whole_volume_only(found: list[Target], what: str) -> list[Target]:
    """The targets whose volumes are held whole; one caption per chunked analysis (stored as Zarr) saying why it
    is left out of ``what``."""
    kept = []
    for t in found:
        refusal = cache.lazy_refusal(t.analysis, what)
        if refusal:
            st.caption(f"{t.name}: {refusal}")
        else:
            kept.append(t)
    return kept


def _across_thickness(found: list[Target]) -> list[Target]:
    """The targets whose thickness axis is more than one voxel long; one caption per single slice read across it
    (every particle of it touches both ends of that axis: "0 isolated" would be said of nothing measured)."""
    kept = []
    for t in found:
        shape = t.analysis.provenance.get("input_shape")
        if shape is not None and len(shape) == 3 and int(shape[t.params.axis]) == 1:
            st.caption(f"{t.name}: a single slice across its thickness axis ({'zyx'[t.params.axis]}), so no path to "
                       "the current collector can be followed in it; for a cross-section, choose its in-plane "
                       "thickness axis on the Samples page and analyse it again.")
        else:
            kept.append(t)
    return kept


# --------------------------------------------------------------------------- isolated particles


def isolation_section(ws: Workspace, chosen_ids: Sequence[int], *, name_of: NameOf | None = None,
                      depth_bins: int = 5, analysis_of: AnalysisOf | None = None,
                      kept: Mapping[str, Sequence[int]] | None = None, min_diameter_um: float = 0.0) -> None:
    """Isolated particles (no conductive path to the current collector) of each chosen electrode.

    Parameters
    ----------
    ws : Workspace
    chosen_ids : sequence of int
        Sample ids; the latest finished analysis of each is used, or ``analysis_of(sample id)``'s.
    name_of : callable(sample id) -> str, optional
        Display name (default: the sample name).
    depth_bins : int
        Bins of the depth chart.
    kept : {display name: labels}, optional
        The particles the page counts (its size filter, ``min_diameter_um``): the counts and shares are of those
        (:meth:`core.connectivity.ContactGraph.among`); a path to the collector may still run through the others.
    """
    found = _section_targets("Isolated particles", ws, chosen_ids, name_of, analysis_of)
    order = [t.name for t in found]  # the page's electrodes: their colours, also of those left out below
    found = _whole_volume_only(found, "the contact graph of its particles")
    found = _across_thickness(found)
    if not found:  # (QA walk 11: "No analysed electrode chosen." under two chosen, each left out above)
        st.info("None of the chosen analyses can be shown here (why is said above)." if order else
                "No analysed electrode chosen.")
        return
    graphs = {t.name: cache.contact_graph(t.ref, t.params.axis, t.separator_side, t.spacing, int(depth_bins))
              for t in found}
    if kept is not None:  # (QA: 4 of 6 "isolated particles" were specks of 1-27 voxels the page's filter left out)
        graphs = {n: g.among(kept[n]) if n in kept else g for n, g in graphs.items()}
    summary = connectivity.summary_table(graphs)
    if int(summary["n_isolated"].sum()) == 0:
        st.success("No isolated particles: every particle of the chosen electrodes has a path to the current "
                   "collector through touching particles and connected CBD.")
    c1, c2 = st.columns(2)
    with c1:
        exports.show(isolation_chart(summary), "isolated particles per electrode")
    with c2:
        exports.show(isolation_depth_chart(connectivity.depth_table(graphs), order=order),
                     "isolated particles vs depth")
    shown = pd.DataFrame({
        "electrode": summary["electrode"],
        "n particles": summary["n_particles"],
        "isolated": summary["n_isolated"],
        "share isolated (number)": summary["share_isolated"],
        "share isolated (volume)": summary["share_isolated_volume"],
        "isolated, cut by a side face": summary["n_isolated_at_edge"],
        "touching the collector": summary["n_touching_collector"],
        "CBD clusters": summary["n_cbd_clusters"],
        "CBD volume connected (share)": summary["share_cbd_connected"],
    })
    bars = {c: st.column_config.ProgressColumn(c, format="%.3f", min_value=0.0, max_value=1.0)
            for c in ("share isolated (number)", "share isolated (volume)")}
    st.dataframe(shown, placeholder=tables.MISSING, hide_index=True, key=state.ISO_TABLE,
                 column_config={**{c: st.column_config.NumberColumn(format="%.3f") for c in shown.columns
                                   if shown[c].dtype.kind == "f"}, **bars})
    st.caption(
        "A particle is isolated when no chain of touching particles and connected carbon-binder (CBD) clusters "
        "leads from it to the current-collector face of the volume (the end opposite the separator). Contacts "
        "are shared voxel faces. Particles cut by a side face of the volume may be connected outside the "
        "imaged window: their isolation is uncertain."
        + (f" Particles under {min_diameter_um:g} µm (the page's smallest particle counted) are not counted; a "
           "path may still run through them." if kept is not None and min_diameter_um > 0 else "")
    )


def volume_share_text(share: float) -> str:
    """The label of a "by volume" bar: ``"0.42 % of the volume"``, ``"none of the volume"`` (QA walk 13: two tiny
    isolated particles drew an empty-looking bar with no label beside the number bar's "2 of 97")."""
    if not np.isfinite(share):
        return ""
    return "none of the volume" if share == 0 else f"{100 * share:.2g} % of the volume"


def isolation_chart(summary: pd.DataFrame) -> alt.Chart:
    """Share of isolated particles per electrode, by number and by volume, labelled with ``k of n`` and the share of
    the particles' volume.

    Parameters
    ----------
    summary : DataFrame
        :func:`core.connectivity.summary_table`.
    """
    rows = []
    for _, r in summary.iterrows():
        for w, col in zip(WEIGHTINGS, ("share_isolated", "share_isolated_volume")):
            rows.append({"electrode": r["electrode"], "weighting": w, "share": float(r[col]),
                         "n_isolated": int(r["n_isolated"]), "n_particles": int(r["n_particles"]),
                         "label": f"{int(r['n_isolated'])} of {int(r['n_particles'])}" if w == WEIGHTINGS[0]
                         else volume_share_text(float(r[col]))})
    d = pd.DataFrame(rows, columns=["electrode", "weighting", "share", "n_isolated", "n_particles", "label"])
    # one band per (electrode, weighting): a plain nominal axis renders reliably in every Vega-Lite host
    d["row"] = d["electrode"] + " · " + d["weighting"]
    rows_order = list(d["row"])
    top = max(0.1, float(d["share"].max()) * 1.2 if len(d) else 0.1)  # all-zero data would collapse the axis
    base = alt.Chart(d).encode(y=alt.Y("row:N", sort=rows_order, title=None, axis=alt.Axis(labelLimit=320)))
    bars = base.mark_bar().encode(
        x=alt.X("share:Q", title="share of particles isolated (0–1)", scale=alt.Scale(domain=[0, min(1.0, top)]),
                axis=alt.Axis(format=".2f", tickMinStep=0.01)),
        color=alt.Color("weighting:N", title="weighted", sort=list(WEIGHTINGS),
                        scale=alt.Scale(domain=list(WEIGHTINGS), range=["#4477aa", "#aaaaaa"]),
                        legend=alt.Legend(orient="top")),
        tooltip=[alt.Tooltip("electrode:N"), alt.Tooltip("weighting:N"),
                 alt.Tooltip("share:Q", format=".3f", title="share isolated"),
                 alt.Tooltip("n_isolated:Q", title="isolated particles"),
                 alt.Tooltip("n_particles:Q", title="particles")],
    )
    text = base.mark_text(align="left", dx=4, fontSize=11).encode(x="share:Q", text="label:N")
    return (bars + text).properties(height=alt.Step(26), title="Isolated particles per electrode")


def isolation_depth_chart(depth: pd.DataFrame, order: Sequence[str] | None = None) -> alt.Chart:
    """Isolated share (by number) against depth, one line per electrode; empty bins are left out.

    Parameters
    ----------
    depth : DataFrame
        :func:`core.connectivity.depth_table`.
    order : sequence of str, optional
        The page's electrodes in its order (:func:`ui.charts.electrode_scale`: their colours in its other charts,
        also where some are not in this one); None: the order of ``depth``.
    """
    d = depth.copy()
    d["depth_mid"] = (d["depth_lo"] + d["depth_hi"]) / 2
    d = d[np.isfinite(d["share_isolated"].astype(float))]
    present = list(dict.fromkeys(d["electrode"]))
    order = present if order is None else list(dict.fromkeys([*order, *present]))
    top = max(0.1, float(d["share_isolated"].max()) * 1.2 if len(d) else 0.1)
    return alt.Chart(d).mark_line(point=True).encode(
        x=alt.X("depth_mid:Q", title=DEPTH_TITLE, scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("share_isolated:Q", title="share of particles isolated (0–1)",
                scale=alt.Scale(domain=[0, min(1.0, top)]), axis=alt.Axis(format=".2f", tickMinStep=0.01)),
        color=charts.electrode_colour(d, "electrode", order=order),
        tooltip=[alt.Tooltip("electrode:N"), alt.Tooltip("depth_lo:Q", format=".2f", title="depth from"),
                 alt.Tooltip("depth_hi:Q", format=".2f", title="depth to"),
                 alt.Tooltip("n_particles:Q", title="particles in bin"),
                 alt.Tooltip("n_isolated:Q", title="isolated"),
                 alt.Tooltip("share_isolated:Q", format=".3f", title="share isolated")],
    ).properties(height=charts.fit_height(260, "share of particles isolated (0–1)", above=30),  # its title
                 title="Where the isolated particles sit")


# --------------------------------------------------------------------------- segmentation uncertainty


def sweep_options(target: Target, options: SweepParams) -> SweepParams | None:
    """The options that apply to an analysis: only the separation variants when its phases were given as input.

    None when nothing of ``options`` applies.
    """
    prov = target.analysis.provenance
    if target.params.method != "threshold" or target.params.particles != "watershed":
        return None
    if prov.get("presegmented") and "phases_from_analysis" not in prov:
        kept = tuple(v for v in options.variants if v in SEPARATION_VARIANTS)
        return replace(options, variants=kept) if kept else None
    return options


def uncertainty_section(ws: Workspace, chosen_ids: Sequence[int], *, name_of: NameOf | None = None,
                        options: SweepParams | None = None, analysis_of: AnalysisOf | None = None,
                        edge_policy: str = "include", min_diameter_um: float = 0.0) -> None:
    """Median detachment per electrode with the error bar of the segmentation sweep.

    Parameters
    ----------
    ws : Workspace
    chosen_ids : sequence of int
        Sample ids; the latest finished analysis of each is used, or ``analysis_of(sample id)``'s.
    name_of : callable(sample id) -> str, optional
        Display name (default: the sample name).
    options : SweepParams, optional
        Steps and variants (default :class:`core.uncertainty.SweepParams`).
    edge_policy : {"include", "exclude", "miles"}
        The page's choice for particles cut by the volume edge, and
    min_diameter_um : float
        its smallest particle counted: the sweep's medians count every particle of each run, which is said where the
        page counts fewer (QA: the medians here were read against the summary's).
    """
    options = options or SweepParams()
    found = _section_targets("Segmentation uncertainty", ws, chosen_ids, name_of, analysis_of)
    opts = {t.name: sweep_options(t, options) for t in found}
    for t in found:
        if opts[t.name] is None:
            by = "the brush-stroke classifier" if t.params.method == "classifier" else "the trained model (3D U-Net)"
            st.caption(f"{t.name}: segmented by {by}, so there are no thresholds to vary."
                       if t.params.method != "threshold" else
                       f"{t.name}: its particles come from the trained model's cue, which the sweep does not vary."
                       if t.params.particles != "watershed" else
                       f"{t.name}: its phases were given as input, so there are no thresholds to vary.")
    chosen = bool(found)
    found = _whole_volume_only([t for t in found if opts[t.name] is not None], "the segmentation sweep")
    if not found:
        st.info("None of the chosen analyses can be swept (why is said above)." if chosen else
                "No analysed electrode to sweep.")
        return
    st.caption(
        f"Each analysis is re-run with one parameter moved by one step: the pore | CBD and CBD | NMC thresholds "
        f"(± {100 * options.threshold_rel_step:g} % of the NMC − pore grey contrast"
        + (f", or ± {options.threshold_step:g} grey values" if options.threshold_step else "")
        + f") and the particle separation h (± {100 * options.h_rel_step:g} %"
        + (f", or ± {options.h_step_um:g} µm" if options.h_step_um else "")
        + "). The bar spans the medians of all runs: how far the segmentation choices alone move the result."
    )
    done = {t.name: ws.load_sweep(t.analysis.id, opts[t.name]) for t in found}
    todo = [t for t in found if done[t.name] is None]
    running = {t.name: jobs.active_sweep(ws, t.analysis.id, opts[t.name]) for t in todo}
    for t in todo:
        if running[t.name] is not None:
            j = running[t.name]
            st.info(f"The sweep of {t.name} is {j.state} (job #{j.id}, see the sidebar); it shows here when done.")
    todo = [t for t in todo if running[t.name] is None]
    if todo:
        n_runs = sum(len(opts[t.name].variants) for t in todo)
        clicked = st.button(f"Run the sweep ({len(todo)} electrode{'s' if len(todo) > 1 else ''}, {n_runs} "
                            f"run{'s' if n_runs > 1 else ''})",
                            key=state.UNC_RUN, type="primary",
                            help="Slow: each run is a full analysis (the separation runs reuse the phases). "
                                 "It runs as background jobs, one per electrode; results are kept in the workspace.")
        if clicked:
            last = None
            for t in todo:
                last = jobs.submit_sweep(ws, t.sample, t.analysis.id, opts[t.name]) or last
            jobs.announce(last)
        else:
            st.info("Not swept yet: " + ", ".join(t.name for t in todo) + ".")
    ready = {name: s for name, s in done.items() if s is not None}
    if not ready:
        return
    spread = uncertainty.spread_table(ready)
    exports.show(uncertainty_chart(spread, uncertainty.sweep_table(ready)), "median detachment: segmentation range")
    shown = pd.DataFrame({
        "electrode": spread["electrode"],
        "n particles": spread["n_particles"],
        "median detachment": spread["median_detachment"],
        "lowest median": spread["median_min"],
        "highest median": spread["median_max"],
        "max |Δ median|": spread["max_deviation"],
        "max |Δ| thresholds": spread["max_deviation_thresholds"],
        "max |Δ| separation": spread["max_deviation_separation"],
        "threshold step (grey)": spread["threshold_step"],
        "h step (µm)": spread["h_step_um"],
    })
    # (Miles–Lantuéjoul leaves out the same particles as "leave out": the summary counts particles; QA walk 14)
    unlike = ([f"particles under {min_diameter_um:g} µm"] if min_diameter_um > 0 else []) + (
        ["the particles cut by the volume edge"] if edge_policy in ("exclude", "miles") else [])
    if unlike:
        shown = shown.rename(columns={"n particles": "n particles (all)", "median detachment": "median (all)"})
        st.caption("The sweep's medians count every particle of each run: unlike the summary above, they do not "
                   f"leave out {' or '.join(unlike)}, so its median and this baseline can differ; the bar says how "
                   "far the segmentation choices move a median, not where the summary's lies.")
    unswept = shown["max |Δ| thresholds"].isna()  # phases read from the input: no thresholds were varied
    if unswept.all():
        shown = shown.drop(columns=["max |Δ| thresholds", "threshold step (grey)"])
    st.dataframe(shown, placeholder=tables.MISSING, hide_index=True, key=state.UNC_TABLE,
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c in shown.columns
                                if shown[c].dtype.kind == "f" and c != "threshold step (grey)"})
    if unswept.any():
        names = ", ".join(shown["electrode"][unswept])
        st.caption(f"No thresholds varied for {names}: {'its' if unswept.sum() == 1 else 'their'} phases were read "
                   "from the input (already segmented), so only the particle separation h was moved"
                   + ("." if unswept.all() else "; their threshold cells are empty."))


def uncertainty_chart(spread: pd.DataFrame, runs: pd.DataFrame) -> alt.Chart:
    """Baseline median detachment per electrode (black dot), each variant's median (open symbols) and the range.

    Parameters
    ----------
    spread : DataFrame
        :func:`core.uncertainty.spread_table`.
    runs : DataFrame
        :func:`core.uncertainty.sweep_table`.
    """
    order = list(dict.fromkeys(spread["electrode"]))
    x_title = "median detachment index (0–1)"
    y = alt.Y("electrode:N", sort=order, title=None, axis=alt.Axis(labelLimit=260))
    rng = alt.Chart(spread).mark_rule(strokeWidth=3, color="#888888").encode(
        x=alt.X("median_min:Q", title=x_title), x2="median_max:Q", y=y,
    )
    v = runs[runs["variant"] != "baseline"].copy()
    v["moved"] = v["parameter"].map(MOVED).fillna(v["parameter"])
    domain = list(MOVED.values())
    variants = alt.Chart(v).mark_point(size=70, filled=False, strokeWidth=2).encode(
        x=alt.X("median_detachment:Q", title=x_title), y=y,
        shape=alt.Shape("moved:N", title="moved", scale=alt.Scale(domain=domain)),
        color=alt.Color("moved:N", title="moved", scale=alt.Scale(domain=domain, range=["#4477aa", "#ee6677", "#228833"]),
                        legend=alt.Legend(orient="top")),
        tooltip=[alt.Tooltip("electrode:N"), alt.Tooltip("variant:N"),
                 alt.Tooltip("median_detachment:Q", format=".3f", title="median detachment"),
                 alt.Tooltip("deviation:Q", format="+.3f", title="minus baseline"),
                 alt.Tooltip("n_particles:Q", title="particles"), alt.Tooltip("low:Q", format=".4g"),
                 alt.Tooltip("high:Q", format=".4g"), alt.Tooltip("h_um:Q", format=".3g", title="h (µm)")],
    )
    base = alt.Chart(spread).mark_point(size=140, filled=True, color="black").encode(
        x=alt.X("median_detachment:Q", title=x_title), y=y,
        tooltip=[alt.Tooltip("electrode:N"), alt.Tooltip("n_particles:Q", title="particles"),
                 alt.Tooltip("median_detachment:Q", format=".3f", title="median detachment"),
                 alt.Tooltip("median_min:Q", format=".3f", title="lowest"),
                 alt.Tooltip("median_max:Q", format=".3f", title="highest")],
    )
    return (rng + variants + base).properties(
        # a band step, not a fixed height: a fixed height collapsed the bands in the browser
        height=alt.Step(40), title="Median detachment with its segmentation range (black: as analysed)",
    )
