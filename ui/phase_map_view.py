"""An already-segmented volume: the "Already segmented" option of the add form (a value -> phase table, proposed
from the file, with a coloured slice to confirm it) and the phase slice the Segment page shows instead of sliders.

The map is stored once, as the input's ``phase_map`` text (``"0=pore,1=nmc,2=cbd"``, as the CLI's
``--phase-map``); "ignore" is stored as pore (a value outside the sample or unlabelled: void, touching nothing).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import streamlit as st

from core.codes import CBD, NMC, PORE
from core.io.phase_map import MAX_PROPOSED_VALUES, parse_phase_map, propose_phase_map

from . import render, state
from .tables import same_map

CHOICES = ("pore", "cbd", "nmc", "ignore")
CHOICE_LABELS = {"pore": "pore", "cbd": "CBD (carbon-binder)", "nmc": "NMC (particles)",
                 "ignore": "ignore (counted as pore)"}
_CODE_OF = {"pore": PORE, "cbd": CBD, "nmc": NMC, "ignore": PORE}
_CHOICE_OF_CODE = {PORE: "pore", CBD: "cbd", NMC: "nmc"}


@st.cache_data(max_entries=16, show_spinner="Counting the voxel values…")
def proposal(path: str, options_json: str, mtime: float) -> dict | None:
    """The file's distinct values, their voxel shares, the proposed map and its middle z slice of raw values
    (:func:`core.io.phase_map.propose_phase_map`); None when it looks greyscale.  ``mtime`` only keys the cache."""
    from core.chunked import open_lazy_array
    from core.io import load_volume

    from .cache import LAZY_VOXELS

    opts = json.loads(options_json)
    lazy, volume = open_lazy_array(path, **opts)  # the header only
    # the names a label field gives its values (an Avizo file's materials)
    names = {int(v): str(n) for v, n in (volume.metadata.get("materials") or {}).items()}
    if lazy.size > LAZY_VOXELS:  # a big file is counted slab by slab, never read whole
        found, data = propose_by_slabs(lazy, names=names), lazy
    else:
        data = load_volume(path, **opts).data
        found = propose_phase_map(data, names=names)
    if found is None:
        return None
    values, shares, proposed = found
    mid = np.array(data[data.shape[0] // 2])
    return {"values": values.tolist(), "shares": shares.tolist(), "proposed": proposed, "slice": mid,
            "names": {v: names[v] for v in values.tolist() if v in names}}


@st.cache_data(max_entries=16, show_spinner=False)
def label_field(path: str, options_json: str, mtime: float) -> bool:
    """Whether the file's own metadata says that its values are labels, not grey values (an Avizo file's Labels:
    :func:`core.io.phase_map.label_field_message`); the header only.  ``mtime`` only keys the cache."""
    from core.chunked import open_lazy_array
    from core.io.phase_map import label_field_message

    _, volume = open_lazy_array(path, **json.loads(options_json))
    return label_field_message(Path(path).name, volume.metadata) is not None


def propose_by_slabs(volume, slab_voxels: int = 1 << 24, names=None):
    """:func:`core.io.phase_map.propose_phase_map` of a volume read slab by slab along z (a
    :class:`core.chunked.LazyArray`): the same values, shares and proposal, and None as soon as a slab shows that
    it is greyscale (more than :data:`MAX_PROPOSED_VALUES` distinct values, or one that is not a whole number)."""
    nz, ny, nx = (int(n) for n in volume.shape)
    rows = max(1, int(slab_voxels) // max(1, ny * nx))
    counts: dict[int, int] = {}
    # the first plane alone first: a greyscale volume shows itself there, without reading a whole slab (the add
    # form reads the file picked, which is the first one listed, as soon as the Samples page opens)
    starts = [0] + list(range(1, nz, rows))
    for z, z_end in zip(starts, starts[1:] + [nz]):
        slab = np.asarray(volume[z:z_end])
        part = propose_phase_map(slab)
        if part is None:
            return None
        for v, share in zip(part[0].tolist(), part[1].tolist()):
            counts[v] = counts.get(v, 0) + int(round(share * slab.size))
        if len(counts) > MAX_PROPOSED_VALUES:
            return None
    values = np.array(sorted(counts), np.int64)
    # the proposal follows the value order only (propose_phase_map's notes): one voxel of each value gives it
    proposed = propose_phase_map(values.reshape(1, 1, -1), names=names)[2]
    total = sum(counts.values())
    return values, np.array([counts[v] / total for v in values.tolist()]), proposed


def map_text(choices: dict[int, str]) -> str:
    """The stored ``phase_map`` text of a table ``{value: choice}``."""
    return ",".join(f"{v}={'pore' if c == 'ignore' else c}" for v, c in sorted(choices.items()))


def check_choices(choices: dict[int, str]) -> str | None:
    """One sentence on what makes this table unusable (None when it is usable)."""
    if all(c == "ignore" for c in choices.values()):
        return "Every value is ignored: map at least one value to NMC (the particles) to analyse this volume."
    if "nmc" not in choices.values():
        return "No value is mapped to NMC: the particles are the NMC phase, so map at least one value to NMC."
    return None


def thickness_warning(raw2d: np.ndarray, choices: dict[int, str]) -> str | None:
    """One sentence when, under the table, another phase forms clearly thicker bodies on the slice than the one
    called NMC (:func:`core.io.phase_map.thicker_than_nmc`): the particles are the thickest phase of a cathode, so
    the map likely called the wrong value NMC (QA: the calendered volume, 0 pore / 1 NMC / 2 CBD, was proposed
    as 1 CBD / 2 NMC by the value order, with nothing to say so but the colours)."""
    from core.io.phase_map import thicker_than_nmc

    codes = np.full(raw2d.shape, -1, np.int8)
    for v, c in choices.items():
        if c != "ignore":
            codes[raw2d == v] = _CODE_OF[c]
    thicker = thicker_than_nmc(codes)
    if not thicker:
        return None
    def values(choice: str) -> str:
        vs = [str(v) for v, c in sorted(choices.items()) if c == choice]
        return ("value " if len(vs) == 1 else "values ") + ", ".join(vs)
    named = " and the ".join(f"{'CBD' if c == CBD else 'pore'} ({values('cbd' if c == CBD else 'pore')})"
                             for c in thicker)
    return (f"As mapped, the {named} {'form' if len(thicker) > 1 else 'forms'} thicker, smoother bodies on this slice "
            f"than the NMC ({values('nmc')}), but the NMC particles are the thickest phase of a cathode: check which "
            "value is NMC against the coloured slice.")


def phase_slice_rgb(raw2d: np.ndarray, choices: dict[int, str]) -> np.ndarray:
    """(H, W, 3) uint8: the phase colours of a slice of raw values under the table (ignored values black)."""
    out = np.zeros(raw2d.shape + (3,), np.uint8)
    for v, c in choices.items():
        if c != "ignore":
            out[raw2d == v] = render.PHASE_COLOURS[_CODE_OF[c]]
    return out


def already_segmented(path, options: dict, kind: str, token: str) -> tuple[bool, str | None]:
    """The "Already segmented" checkbox and, when ticked, the value -> phase table with a coloured slice.

    Returns
    -------
    (bool, str or None)
        Whether the Add button may be used, and the ``phase_map`` text to store (None: greyscale).
    """
    options_json = json.dumps(options, sort_keys=True)
    try:
        prop = proposal(str(path), options_json, path.stat().st_mtime)
    except (OSError, ValueError, TypeError, MemoryError) as exc:  # the caption above already read it
        st.error(str(exc))
        return False, None
    if prop is not None and len(prop["values"]) == 1:  # neither phases nor a scan: nothing to segment or separate
        st.error(f"Every voxel of this volume holds the value {prop['values'][0]}: there is nothing to segment or "
                 "separate (a dark or flat field, or an empty mask?). Pick another file or dataset.")
        return False, None
    # one checkbox and table per dataset of the file (an HDF5 dataset, an Avizo data item): a scan and its labels
    # in one file each get their own proposal, not the tick left by the other
    if options.get("dataset"):
        token = f"{token}_{hashlib.blake2b(str(options['dataset']).encode(), digest_size=4).hexdigest()}"
    key = state.k(state.ADD_PRESEG, kind, token)
    labels = label_field(str(path), options_json, path.stat().st_mtime)
    # (a Data item box is shown, so a dataset chosen, only where the file holds several items)
    other = ", or pick the file's greyscale data item above" if options.get("dataset") else ""
    if labels and prop is None:  # labels that no phase map takes, and that thresholds cannot segment
        st.error(f"{path.name} is a label field with more than {MAX_PROPOSED_VALUES} labels (particles labelled one "
                 "by one, as Avizo's Separate Objects gives?): a phase map takes at most "
                 f"{MAX_PROPOSED_VALUES} values, and labels are not grey values to threshold. Save the phases (pore, "
                 f"CBD, NMC) as a label field of their own and add that{other}.")
        return False, None
    state.init(key, prop is not None)
    ticked = st.checkbox("Already segmented (each voxel value is a phase)", key=key,
                         help="For volumes segmented elsewhere (Avizo, Dragonfly, ilastik, GeoDict): the values "
                              "are read as phases, not thresholded as grey values.")
    if not ticked:
        if labels:
            st.error(f"{path.name} is a label field (the file says so), not a greyscale scan: thresholds cannot "
                     f"segment its labels. Tick 'Already segmented' to read them as phases{other}.")
            return False, None
        return True, None
    if prop is None:
        st.error(f"This volume holds more than {MAX_PROPOSED_VALUES} distinct values or values that are not whole "
                 "numbers, so it is a greyscale volume: untick 'Already segmented'.")
        return False, None
    if prop.get("names"):
        st.caption("Proposed from the names the file gives its values where a name says a phase (NMC, CBD, pore and "
                   "their usual words), else from the value order (low to high: pore, CBD, NMC). CHECK IT against "
                   "the coloured slice and fix it below.")
    else:
        st.caption("Proposed from the value order (low to high: pore, CBD, NMC; with two values pore, NMC), not "
                   "from the shares. CHECK IT against the coloured slice and fix it below.")
    choices = _table(prop, lambda v: state.k(state.ADD_PHASE, kind, token, v),
                     {v: _CHOICE_OF_CODE[prop["proposed"][v]] for v in prop["values"]})
    problem = check_choices(choices)
    if problem:
        st.error(problem)
        return False, None
    return True, map_text(choices)


def _table(prop: dict, key_of, initial: dict) -> dict[int, str]:
    """The value -> phase table (one select box a value, with its share of the voxels) beside the middle z slice
    in the table's phases; returns ``{value: choice}``.  ``key_of(value)`` names a box, ``initial`` fills it."""
    choices: dict[int, str] = {}
    cols = st.columns([3, 4])
    names = prop.get("names") or {}
    with cols[0]:
        for v, share in zip(prop["values"], prop["shares"]):
            k = key_of(v)
            state.init(k, initial[v])
            named = f" “{names[v]}”" if v in names else ""
            choices[int(v)] = st.selectbox(f"value {v}{named} — {share:.1%} of the voxels", CHOICES, key=k,
                                           format_func=CHOICE_LABELS.get)
    with cols[1]:
        st.image(render.upscale(phase_slice_rgb(prop["slice"], choices), 360), width="stretch",
                 caption=f"middle z slice ({len(prop['slice'])} × {prop['slice'].shape[1]} voxels) in the phases "
                         "of the table")
        from .charts import phase_legend_html

        st.html(phase_legend_html())
    note = thickness_warning(prop["slice"], choices)
    if note:
        st.warning(note)
    return choices


def edit_section(ws, sample) -> None:
    """The Samples page of an already-segmented file: its stored phase map, editable (the add form's table,
    filled with the map stored), saved for the next analysis; the analyses made before keep the map they ran
    with (their input snapshot), and the page says when the latest one used another."""
    from .messages import flash, one_sentence

    spec = sample.input
    if not getattr(spec, "presegmented", False):
        return
    sid = sample.id
    with st.expander("Phase map (already segmented)", icon=":material/palette:",
                     key=state.k(state.SAMPLE_EXPANDER, sid, "phase_map")):
        st.caption(f"Stored: `{spec.phase_map}`. Change a value's phase below and save: the next analysis (Segment "
                   "page) reads the file with the new map.")
        read = dict(sample.source_options.get("read") or {})
        path = Path(spec.path)
        try:
            prop = proposal(str(path), json.dumps(read, sort_keys=True), path.stat().st_mtime)
        except (OSError, ValueError, TypeError, MemoryError) as exc:
            st.error(f"The file's values cannot be read to edit the map: {one_sentence(exc)}")
            return
        if prop is None:
            st.error(f"{path.name} no longer holds a few whole-number values (was it replaced by a greyscale "
                     "volume?): the map cannot be edited. Add the file again.")
            return
        stored = parse_phase_map(spec.phase_map)
        initial = {v: _CHOICE_OF_CODE.get(stored.get(v), _CHOICE_OF_CODE[prop["proposed"][v]])
                   for v in prop["values"]}
        choices = _table(prop, lambda v: state.k(state.EDIT_PHASE, sid, v), initial)
        problem = check_choices(choices)
        if problem:
            st.error(problem)
        text = map_text(choices)
        changed = not same_map(text, spec.phase_map)
        if st.button("Save phase map", key=state.k(state.EDIT_MAP_SAVE, sid), disabled=bool(problem) or not changed,
                     help=None if changed else "The table is the map stored."):
            try:
                ws.update_sample(sid, source_options={**sample.source_options, "phase_map": text})
            except (ValueError, TypeError) as exc:
                st.error(one_sentence(exc, alone=True))
                return
            flash("success", f"Saved the phase map `{text}`. It applies to the next analysis (Segment page); the "
                             "analyses made before keep the map they ran with.")
            st.rerun()


def phases_section(sample, ref, shape) -> None:
    """The Segment page of an already-segmented sample: its phases on one slice and their fractions."""
    from . import cache, compute, widgets
    from .messages import read_or_stop
    from .charts import phase_legend_html

    sid = sample.id
    st.subheader("Phases (already segmented)")
    left, right = st.columns([5, 6], gap="large")
    with left:
        st.caption(f"Read from the file with the phase map `{sample.input.phase_map}`: no thresholds. To change "
                   "the map: Samples page, *Phase map*.")
        axis, index = widgets.slice_picker(state.k(state.SEG_AXIS, sid), state.k(state.SEG_INDEX, sid), shape,
                                           label="Slice")
        ph2d = np.asarray(read_or_stop(cache.grey_slice, ref, axis, index)).astype(np.uint8)
        st.html(phase_legend_html())
        fr = compute.phase_fractions(ph2d)
        c = st.columns(3)
        c[0].metric("pore (this slice)", f"{fr['pore']:.1%}")
        c[1].metric("CBD (this slice)", f"{fr['cbd']:.1%}")
        c[2].metric("NMC (this slice)", f"{fr['nmc']:.1%}")
        doubt = map_doubt(ph2d if (axis, index) == (0, shape[0] // 2) else
                          np.asarray(read_or_stop(cache.grey_slice, ref, 0, shape[0] // 2)).astype(np.uint8),
                          shape[0] // 2)
        if doubt:
            st.warning(doubt)
    with right:
        st.image(render.upscale(phase_codes_rgb(ph2d), 520), width="stretch",
                 caption=f"slice {render.AXES[axis]} = {index}: phases")


def map_doubt(codes2d: np.ndarray, z: int) -> str | None:
    """One sentence where, on the middle z slice (``codes2d``, phase codes as mapped), pore or CBD forms clearly
    thicker bodies than the NMC (:func:`core.io.phase_map.thicker_than_nmc`, the add form's warning): QA walk 11
    kept the add form's proposal despite that warning and got 65,970 "particles" (1,666 with the right map), with
    no doubt said on any page after."""
    from core.io.phase_map import thicker_than_nmc

    thicker = thicker_than_nmc(np.asarray(codes2d).astype(np.int8))
    if not thicker:
        return None
    named = " and the ".join("CBD" if c == CBD else "pore" for c in thicker)
    return (f"On the middle slice (z = {z}) the {named} {'form' if len(thicker) > 1 else 'forms'} thicker, smoother "
            "bodies than the NMC, but the NMC particles are the thickest phase of a cathode: the phase map may call "
            "the wrong value NMC. Check it against the slice (Samples page, *Phase map*) before reading the "
            "particles.")


def phase_codes_rgb(codes2d: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: the phase colours of a slice of phase codes 0 pore / 1 CBD / 2 NMC."""
    return phase_slice_rgb(codes2d, {PORE: "pore", CBD: "cbd", NMC: "nmc"})
