"""Sections of the Particles page: the headline numbers, the per-particle table and a slice with outlines.

The table and the slice share the selected particle: clicking a table row or
picking it in the "Particle" box selects it, and the slice jumps to its centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from core.metrics import MOSTLY_SPECKS, isolated_specks, specks_reading
from core.slices import is_single_slice
from core.workspace import Analysis, Sample, Workspace

from . import advice, cache, charts, exports, render, state, tables, widgets
from .segment_view import CLASSIFIER_EDGE_NOTE

FIRST_COLUMNS = ["label", "detachment", "equiv_diameter_um", "depth_frac", "frac_pore", "frac_cbd", "touches_edge"]


@dataclass(frozen=True)
class _Keys:
    """Widget keys of one sample's table and slice (:mod:`ui.state`)."""

    select: str
    table: str
    axis: str
    index: str
    row: str

    @classmethod
    def of(cls, sample: Sample, analysis: Analysis) -> "_Keys":
        sid = sample.id
        return cls(state.k(state.PART_SELECT, sid), state.k(state.PART_TABLE, sid, analysis.id),
                   state.k(state.PART_AXIS, sid), state.k(state.PART_INDEX, sid), state.k(state.PART_ROW, sid))


#: Beside a brush-stroke classifier's particles, and in their report: what its phases do to the detachment, in the
#: Segment page's words (bench/RESULTS.md classifier_detachment).
CLASSIFIER_DETACHMENT_NOTE = f"These phases come from a brush-stroke classifier. {CLASSIFIER_EDGE_NOTE}"


def headline(table: pd.DataFrame, analysis: Analysis) -> None:
    """Particle count, median detachment, particles touching the volume edge, analysis id."""
    det = table["detachment"]
    c = st.columns(4)
    c[0].metric("particles", len(table))
    c[1].metric("median detachment", f"{det.median():.2f}" if det.notna().any() else "–")
    fov = ((analysis.provenance or {}).get("fill") or {}).get("as_edge")  # the fill's faces count as the edge
    c[2].metric("touching the volume edge or the fill" if fov else "touching the volume edge",
                int(table["touches_edge"].sum()))
    c[3].metric("analysis", f"#{analysis.id}")


def specks_note(table: pd.DataFrame, analysis: Analysis) -> None:
    """:func:`core.metrics.specks_reading` of the table (specks under the minimum particle volume that touch no
    other particle), with how to leave them out of a comparison; a warning where they move the median by 0.05 or
    are most of the table (then also where to check which phase is NMC)."""
    v = float(analysis.resolved.separation.min_volume_um3)
    where = ("Samples page, *Phase map*" if analysis.provenance.get("presegmented")
             else "Segment page: the thresholds or the classifier's strokes")
    found = specks_reading(table, v, where=where, single_slice=is_single_slice(analysis.provenance.get("input_shape")))
    if found is None:
        return
    text, shift = found
    mostly = isolated_specks(table, v).mean() >= MOSTLY_SPECKS
    d = (6 * v / np.pi) ** (1 / 3)
    text += f" To leave them out of a comparison, set *Smallest particle counted* to {d:.2f} µm on the Compare page."
    (exports.warn if shift >= 0.05 or mostly else st.caption)(text)


def chunked_note(ws: Workspace, analysis: Analysis) -> None:
    """For an analysis run on the chunked engine: how (chunks, halo), and a warning when particles reached the edge
    of their chunk's window (bigger than the halo allows: perhaps split or joined differently)."""
    if not ws.is_chunked(analysis):
        return
    ch = analysis.provenance.get("chunking") or {}
    halo, wide = ch.get("halo"), ch.get("wide_halo") or ch.get("halo")
    widened = int(ch.get("widened") or 0)
    st.caption(f"Analysed chunk by chunk (chunks of {ch.get('chunk_size')}³ voxels, particle halo {halo} "
               "voxels) and stored as Zarr: slices are read from it one at a time. The particles follow the chunked "
               "engine's halo rule: close to, not identical with, a whole-volume analysis."
               + (f" {widened} chunk(s) were labelled again with a halo of {wide} voxels: a particle reached the "
                  "edge of their window." if widened else ""))
    beyond = int(ch.get("beyond_halo") or 0)
    if beyond:
        halos = f"halo {halo} voxels" + (f", {wide} on a second try" if wide != halo else "")
        exports.warn(f"{beyond} particle label(s) reached the edge of their chunk's window ({halos}): particles "
                     "bigger than the halo allows may be split or joined differently from a whole-volume analysis.")


def table_and_slice(ws: Workspace, sample: Sample, analysis: Analysis) -> None:
    """The headline, the per-particle table (left) and a slice with the particles' outlines (right); first what of
    the sample changed since the analysis (QA: its µm values were shown under a new voxel size without a word)."""
    for text in tables.changed_sentences(sample, analysis):
        exports.warn(text)
    ref = cache.ResultRef.of(ws, analysis)
    table = cache.table(ref)
    headline(table, analysis)
    specks_note(table, analysis)
    chunked_note(ws, analysis)
    # the run's warning (the page shows none of the job's own); once the sample sets a side, it is the side that
    # changed (said above) or the one detected: no guess is left (QA walk 7: the warning stayed after it was set)
    guessed = cache.side_said(ref) if sample.separator_side == "auto" else None
    if guessed:
        exports.warn(f"{guessed} It is set on the Samples page (Separator side); analyse again after setting it.")
    method = advice.analysis_method(analysis)
    if method == "classifier":
        exports.warn(CLASSIFIER_DETACHMENT_NOTE)  # the report is read without the page: it carries it
    loose = advice.almost_loose_warning(table, method)
    if loose:  # (QA walk 15: a median of 0.99 where the expert labels give 0.00, beside a note on the other bias)
        exports.warn(loose)
    sigma = advice.blur_not_measured(analysis, sample.downsample)
    if sigma is not None:
        exports.warn(advice.unmeasured_blur_note(sigma, float(table["detachment"].median())
                                                 if "detachment" in table and len(table) else None))
    keys = _Keys.of(sample, analysis)
    labels_list = [int(v) for v in table["label"]]

    def jump_to_selected():
        """Move the slice to the selected particle's centroid."""
        lab = st.session_state.get(keys.select)
        if lab is None or lab not in labels_list:
            return
        row = table.loc[table["label"] == lab].iloc[0]
        axis = st.session_state.get(keys.axis, 0)
        cen = row[f"centroid_{render.AXES[axis]}_um"] / sample.spacing[axis]
        st.session_state[state.k(keys.index, axis)] = int(round(cen))

    def on_table_select():
        rows = st.session_state[keys.table].selection.rows
        if rows:
            st.session_state[keys.select] = int(table.iloc[rows[0]]["label"])
            jump_to_selected()

    left, right = st.columns([6, 5], gap="large")
    with left:
        _table(table, keys, on_table_select, f"{sample.name}-analysis{analysis.id}-particles.csv")
        line = depth_line(sample, analysis)
        if line:
            st.caption(line)
        line = origin_line(analysis)
        if line:
            st.caption(line)
    with right:
        _slice(ws, sample, ref, table, keys, labels_list, jump_to_selected)


def origin_line(analysis: Analysis) -> str | None:
    """Where the positions of a cropped analysis count from (its region of interest's first voxel in the file),
    else None (QA walk 7: centroids of a crop from z 20 ran from 0, unsaid)."""
    snap = (analysis.provenance or {}).get("input") or {}
    crop = ((snap.get("source_options") or {}).get("read") or {}).get("crop")
    if not crop:
        return None
    first = ", ".join(f"{a} {int(c[0])}" for a, c in zip("zyx", crop))
    return (f"Positions (centroid_z_um, centroid_y_um, centroid_x_um) and slice indices count from the region of "
            f"interest's first voxel: voxel ({first}) of the file.")


def depth_line(sample: Sample, analysis: Analysis) -> str | None:
    """What ``depth_frac`` runs over in this analysis: the electrode's slices found (µm along the thickness axis),
    or the imaged volume (analyses made before the electrode's extent was read, or with ``depth_from="volume"``);
    for a single slice across the thickness axis, that it has none."""
    span = analysis.provenance.get("depth_extent")
    axis = analysis.resolved.axis
    name = render.AXES[axis]
    n = int((analysis.provenance.get("input_shape") or [0, 0, 0])[axis])
    if n == 1:
        return (f"depth_frac is empty: this single slice lies across the thickness axis ({name}), so it has no "
                "depth; for a cross-section of the electrode, choose its in-plane thickness axis on the Samples page "
                "and analyse it again.")
    # which end is 0 (QA walk 7: "slices 0–79" read as depth 0 at slice 0, where the separator found was at 79)
    side = analysis.resolved.separator_side
    if span:  # the electrode's face on that side (QA walk 10: "index 219" where depth 0 was at its face, 159)
        at = f"slice {int(span[0]) if side == 'start' else int(span[1])}"
    else:
        at = "index 0" if side == "start" else f"index {n - 1}" if n else "its last index"
    zero = (f" Depth 0 is the separator side: the {'start' if side == 'start' else 'end'} of {name} ({at}), "
            + ("detected as the end with less NMC." if analysis.requested.separator_side == "auto" else
               "as set on the Samples page."))
    if not span:
        return f"depth_frac runs over the imaged volume along {name}.{zero}"
    step = float((analysis.provenance.get("spacing_um") or sample.spacing)[axis])  # as analysed (downsampled)
    first, last = int(span[0]), int(span[1])
    if n and first == 0 and last == n - 1:
        return (f"depth_frac runs over the electrode along {name}: the whole imaged thickness (no margin beyond "
                f"its surfaces found).{zero}")
    beyond = first + (n - 1 - last if n else 0)
    return (f"depth_frac runs over the electrode along {name}: slices {first}–{last} ({first * step:.1f}–"
            f"{last * step:.1f} µm), where a slice's NMC share reaches half its plateau; the "
            + (f"{beyond} slices beyond are a margin, not depth." if beyond != 1 else
               "one slice beyond is a margin, not depth.") + zero)


def _table(table: pd.DataFrame, keys: _Keys, on_select, csv_name: str) -> None:
    st.subheader("Per-particle table")
    st.dataframe(
        table, placeholder=tables.MISSING, key=keys.table, hide_index=True, on_select=on_select,
        selection_mode="single-row", height=420,
        column_order=FIRST_COLUMNS + [c for c in table.columns if c not in FIRST_COLUMNS],
        column_config={c: st.column_config.NumberColumn(format="%.3f") for c in table.columns
                       if table[c].dtype.kind == "f"},
    )
    # no rerun on a download (QA: the rerun replaced the deferred HTML report, so its button, clicked next, did nothing)
    st.download_button("Download the table (CSV)", table.to_csv(index=False).encode(), file_name=csv_name,
                       mime="text/csv", on_click="ignore")
    st.caption("Click a row to show that particle; sort by clicking a column header. Units are in the column "
               "names; detachment = area_pore / (area_pore + area_cbd).")


def _slice(ws: Workspace, sample: Sample, ref: cache.ResultRef, table: pd.DataFrame, keys: _Keys,
           labels_list: list[int], jump_to_selected) -> None:
    st.subheader("Slice")
    state.init(keys.select, None)
    if st.session_state[keys.select] not in labels_list:
        st.session_state[keys.select] = None
    det_of = dict(zip(labels_list, table["detachment"].to_numpy(float)))
    chosen = st.selectbox(
        "Particle", labels_list, key=keys.select, on_change=jump_to_selected, persist_state=state.PERSIST,
        placeholder="none: pick one here or click a table row",
        format_func=lambda v: f"particle {v} (detachment {det_of[v]:.2f})",
    )
    st.session_state[state.k(state.PART_PICKED, sample.id)] = chosen  # (kept across pages: the 3D page draws it)
    _, labels = cache.result_arrays(ref)
    axis, index = widgets.slice_picker(keys.axis, keys.index, labels.shape)
    lab2d = cache.label_slice(ref, axis, index)
    colours = render.label_colour_table(table["label"].to_numpy(), table["detachment"].to_numpy(),
                                        cache.max_label(ref))
    try:
        base = cache.grey_image(cache.VolumeRef.of(ws, sample), axis, index)
    except (OSError, ValueError, TypeError):  # the source moved: draw on the phases instead
        base = render.phase_overlay(render.grey_rgb(lab2d * 0, 0, 1), cache.phase_slice(ref, axis, index), 0.5)
    img = render.particle_overlay(base, lab2d, colours, mode="outline", highlight=chosen,
                                  width=render.outline_width(lab2d.shape))
    st.image(render.upscale(img, 520), width="stretch",
             caption=f"slice {render.AXES[axis]} = {index}: particle outlines coloured by detachment"
             + (f"; particle {chosen} highlighted in magenta" if chosen is not None else "")
             + ("; behind them the phases read from the file: pore black, CBD dark grey, NMC white"
                if sample.source_options.get("phase_map") else ""))
    st.altair_chart(charts.colour_bar(), width="stretch")
    if chosen is not None:
        row = table.loc[table["label"] == chosen].iloc[0]
        if lab2d.size and not (lab2d == chosen).any():
            st.caption(f"Particle {chosen} is not in this slice; pick it again to jump to its centre.")
        st.dataframe(tables.detail_values(row), placeholder=tables.MISSING, width="stretch", height=300, key=keys.row)
        if not is_single_slice(labels.shape):
            st.caption(f"Where on its surface particle {chosen} faces pore, CBD or other particles: the **3D** page, "
                       "*Show: one particle, face by face*.")
