"""Widget groups that return frozen parameter dataclasses: sample metadata, segmentation, particle separation,
the 3D view.

Widgets are initialised through session state (:func:`ui.state.init`) rather
than ``value=``, so callbacks (e.g. "Suggest") may set them; per-sample keys
carry the sample id.  Values the user is still editing persist for the session
(``persist_state=state.PERSIST``) but are never shared between sessions.  A
page reads what a group returns, never the group's keys.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import streamlit as st

from core.particles import SeparationParams
from core.phases import DENOISE_METHODS, SegmentParams
from core.slices import is_single_slice
from core.workspace import Analysis, Sample

from . import cache, compute, state
from .messages import one_sentence
from .render import AXES
from .state import PERSIST, init

SIDE_LABELS = {"auto": "auto-detect (less NMC = separator)", "start": "start of the axis (index 0)",
               "end": "end of the axis (last index)"}
AXIS_LABELS = {0: "z (axis 0)", 1: "y (axis 1)", 2: "x (axis 2)"}


# --------------------------------------------------------------------------- sample metadata


@dataclass(frozen=True)
class SampleMetadata:
    """What the user says about a sample: the keyword arguments of ``Workspace.add_sample`` / ``update_sample``.

    Attributes
    ----------
    name, group_label : str
    spacing : (3,) float, µm (z, y, x)
    axis : int
        Thickness axis (separator to current collector).
    separator_side : {"auto", "start", "end"}
    """

    name: str
    group_label: str
    spacing: tuple[float, float, float]
    axis: int
    separator_side: str

    def __post_init__(self):
        _validate_spacing(self.spacing)

    def as_kwargs(self) -> dict:
        return {"name": self.name, "group_label": self.group_label, "spacing": self.spacing, "axis": self.axis,
                "separator_side": self.separator_side}


SPACING_RANGE_UM = (1e-4, 1e4)  # a voxel size outside this is a typing or metadata error, not a measurement


def _validate_spacing(spacing) -> None:
    if len(spacing) != 3:
        raise ValueError(f"The voxel size needs 3 values (z, y, x), got {len(spacing)}.")
    lo, hi = SPACING_RANGE_UM
    bad = []
    for a, v in zip(AXES, spacing):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
            raise TypeError(f"The voxel size {a} must be a number, got {type(v).__name__}.")
        if not np.isfinite(v) or not lo <= v <= hi:
            bad.append((a, v))
    if bad:  # every axis at once (QA: the next one was said only once the first was mended)
        got = ", ".join(f"{a} {v:g}" for a, v in bad)
        names = [a for a, _ in bad]
        which = (f"voxel size {names[0]}" if len(bad) == 1 else
                 f"voxel sizes {', '.join(names[:-1])} and {names[-1]}")
        raise ValueError(f"The {which} must be between {lo:g} and {hi:g} µm, got {got}.")


def _prefill_spacing(spacing) -> tuple[tuple[float, ...], str]:
    """The voxel size to pre-fill (a file's may be absurd): 1 µm for an implausible value, and a note saying so."""
    lo, hi = SPACING_RANGE_UM
    out, bad = [], []
    for a, v in zip(AXES, spacing):
        try:
            v = float(v)
        except (TypeError, ValueError):
            v = float("nan")
        if np.isfinite(v) and lo <= v <= hi:
            out.append(v)
        else:
            out.append(1.0)
            bad.append(f"{a} = {v:g}")
    note = (f"The file's voxel size ({', '.join(bad)} µm) is not plausible: 1 µm put in instead, enter the right "
            "one." if bad else "")
    return tuple(out), note


def sample_metadata(scope: tuple, *, name: str, group: str, spacing, axis: int, side: str,
                    spacing_help: str = "", shape=None, taken=()) -> SampleMetadata | None:
    """Name, group, voxel size per axis (µm), thickness axis and separator side.

    ``scope`` specialises the keys (:data:`ui.state.META_NAME` ...): ``("add", kind, token)`` while adding,
    ``("edit", sample id)`` while editing.  Returns None after a one-sentence error when the voxel size is not
    a number between :data:`SPACING_RANGE_UM` (zero, negative, NaN, absurd).  With the volume's ``shape``, a
    thickness axis one voxel long (across a single slice) is said under it (:func:`thin_axis_note`).  A name in
    ``taken`` (the other samples') is refused too: the Compare page, its charts and reports name electrodes by name.
    """
    keys = {f: state.k(base, *scope) for f, base in (("name", state.META_NAME), ("group", state.META_GROUP),
                                                      ("axis", state.META_AXIS), ("side", state.META_SIDE))}
    sp_keys = [state.k(state.META_SPACING, *scope, a) for a in AXES]
    init(keys["name"], name)
    init(keys["group"], group)
    spacing, note = _prefill_spacing(spacing)
    if note and sp_keys[0] not in st.session_state:
        st.warning(note)
    for key, v in zip(sp_keys, spacing):
        init(key, float(v))
    init(keys["axis"], int(axis))
    init(keys["side"], side)
    c1, c2 = st.columns(2)
    name = c1.text_input("Name", key=keys["name"])
    group = c2.text_input("Group label", key=keys["group"],
                          help="Free text to group electrodes, e.g. 'pristine' or 'cycled 5C'.")
    cols = st.columns(3)
    spacing = tuple(
        # no min_value / max_value: the widget would clamp a typed 0 or 1e-5 silently; _validate_spacing says why
        float(cols[i].number_input(f"voxel size {a} (µm)", format="%.4f", key=sp_keys[i],
                                   help=spacing_help or None))
        for i, a in enumerate(AXES)
    )
    c1, c2 = st.columns(2)
    axis = c1.selectbox("Thickness axis", (0, 1, 2), key=keys["axis"], format_func=AXIS_LABELS.get,
                        help="The axis running from separator to current collector.")
    side = c2.selectbox("Separator side", tuple(SIDE_LABELS), key=keys["side"], format_func=SIDE_LABELS.get)
    note = thin_axis_note(shape, int(axis))
    if note:
        st.info(note)
    coarse = coarse_voxel_note(spacing)
    if coarse:
        st.warning(coarse)
    # (QA walk 7: two electrodes "calendered"; walk 10: "Cycled-1C " beside "cycled-1C")
    if name.strip() and name.strip().casefold() in {str(t).strip().casefold() for t in taken}:
        st.error(f"A sample named '{name.strip()}' exists already: give this one another name (the Compare page, "
                 "its charts and reports tell electrodes apart by their names).")
        return None
    try:
        return SampleMetadata(name=name, group_label=group, spacing=spacing, axis=int(axis),  # type: ignore[arg-type]
                              separator_side=side)
    except (ValueError, TypeError) as exc:
        st.error(one_sentence(exc, alone=True))
        return None


def unique_name(base: str, taken) -> str:
    """``base``, or ``"base (2)"``, ``"base (3)"``, ... : the first not in ``taken`` (a new sample's proposed name;
    names that differ only in case or surrounding spaces are the same)."""
    taken = {str(t).strip().casefold() for t in taken}
    name, i = base, 2
    while name.casefold() in taken:
        name, i = f"{base} ({i})", i + 1
    return name


#: A voxel this big (µm) or bigger is as wide as an NMC particle (5-20 µm across): not a cathode scan's voxel size
#: but, mostly, a unit read wrong (a NIfTI header without a unit is read in mm: 0.398 became 398 µm, QA).
COARSE_VOXEL_UM = 5.0


def coarse_voxel_note(spacing) -> str | None:
    """A sentence where a voxel size (µm) is :data:`COARSE_VOXEL_UM` or more (a unit read wrong?), else None; not
    a refusal (a coarse overview scan is possible)."""
    try:
        big = max(float(v) for v in spacing)
    except (TypeError, ValueError):
        return None
    if not np.isfinite(big) or big < COARSE_VOXEL_UM or big > SPACING_RANGE_UM[1]:
        return None
    return (f"A voxel of {big:g} µm is as wide as an NMC particle (5-20 µm across): the particles would be a voxel "
            "or two. Check the unit: a file that states none may be read in mm (NIfTI) or in another unit than the "
            "scanner wrote.")


def thin_axis_note(shape, axis: int) -> str | None:
    """Where the thickness axis is one voxel long (a single slice, read across it): what is then not measured and
    what to choose for a cross-section; else None (also without a shape)."""
    if shape is None or len(shape) != 3 or int(shape[axis]) != 1:
        return None
    inplane = " or ".join(AXES[a] for a in range(3) if int(shape[a]) > 1)
    return (f"A single slice across the thickness axis ({AXES[axis]}): no depth and no path to the current collector "
            f"are measured in it. If the slice is a cross-section of the electrode, choose the in-plane axis "
            f"({inplane}) that runs from the separator to the current collector.")



def finer_depth_range(depth: tuple[float, float], stride: int) -> tuple[float, float] | None:
    """Where the 3D view sampled its labels every ``stride`` > 2 voxels: a slab about the middle of ``depth`` that
    the same triangle budget draws sampled about every 2 voxels (the triangles go as the slab's width over the
    square of the sampling step), on the slider's steps of 0.05; None where the view is fine enough or the slab
    would be no thinner."""
    lo, hi = float(depth[0]), float(depth[1])
    if stride <= 2 or hi <= lo:
        return None
    width = max(0.05, round((hi - lo) * (2.0 / stride) ** 2 / 0.05) * 0.05)
    if width >= hi - lo:
        return None
    mid = (lo + hi) / 2
    start = min(max(lo, round((mid - width / 2) / 0.05) * 0.05), hi - width)
    return round(start, 2), round(start + width, 2)


def set_depth_range(depth: tuple[float, float]) -> None:
    """The 3D page's depth range (a button's callback: before the slider is drawn)."""
    st.session_state[state.V3_DEPTH] = (float(depth[0]), float(depth[1]))

# --------------------------------------------------------------------------- segmentation


def _globals_key(base: SegmentParams, latest: Analysis | None, denoise: str, size: float,
                 pv: bool) -> SegmentParams:
    """The preview-globals key of these denoising settings (the blur of ``latest`` where it applies)."""
    pv_sigma = base.pv_sigma if (latest is not None and denoise == base.denoise
                                 and float(size) == float(base.denoise_size)) else None
    return compute.globals_key(SegmentParams(denoise=denoise, denoise_size=float(size), partial_volume=bool(pv),
                                             pv_sigma=pv_sigma))


def suggested_thresholds(ref: cache.VolumeRef, key: SegmentParams) -> tuple[float, float]:
    """What a run without thresholds would use after this denoising (:attr:`PreviewGlobals.suggested`)."""
    return tuple(float(v) for v in cache.preview_globals(ref, key).suggested)  # type: ignore[return-value]


def threshold_defaults(ref: cache.VolumeRef, latest: Analysis | None, key: SegmentParams) -> tuple[float, float]:
    if latest is not None:
        seg = latest.resolved.segment
        if seg.low is not None and seg.high is not None:
            return float(seg.low), float(seg.high)
    return suggested_thresholds(ref, key)


@dataclass(frozen=True)
class SegmentChoice:
    """What the Segment page's threshold and denoising widgets give.

    Attributes
    ----------
    low, high : float
        The two threshold sliders (grey values), also when they are not in order (the histogram draws them).
    params : SegmentParams or None
        The parameters of a run; None when ``low`` is not below ``high`` (the group showed why).
    automatic : bool
        The sliders hold the thresholds a run without thresholds takes (:func:`suggested_thresholds`: untouched,
        or set back with "Suggest"): the run asks for none (:attr:`run_params`), as the demo analyses and the
        command line do, so that the Compare page does not take the numbers the automatic choice gave each
        electrode for settings that differ, and a recipe replays the choice, not its numbers.
    """

    low: float
    high: float
    params: SegmentParams | None
    automatic: bool = False

    @property
    def run_params(self) -> SegmentParams | None:
        """:attr:`params` as a run asks for them: without thresholds where they are the automatic ones."""
        if self.params is None or not self.automatic:
            return self.params
        return replace(self.params, low=None, high=None)


def _slider_step(vmin: float, vmax: float) -> tuple[float, str]:
    """Threshold slider step (a power of ten near a thousandth of the range) and its display format."""
    span = max(vmax - vmin, 1e-9)
    step = float(10 ** np.floor(np.log10(span / 1000))) if span > 0 else 1.0
    return step, "%.0f" if step >= 1 else "%.3f"


def _threshold_sliders(sample: Sample, ref: cache.VolumeRef, vmin: float, vmax: float,
                       defaults: tuple[float, float], key_now: Callable[[], SegmentParams]) -> tuple[float, float]:
    """The two threshold sliders, "Suggest" and, where the grey values allow it, "Use the NMC-first reading"."""
    sid = sample.id
    k_low, k_high = state.k(state.SEG_LOW, sid), state.k(state.SEG_HIGH, sid)
    init(k_low, float(np.clip(defaults[0], vmin, vmax)))
    init(k_high, float(np.clip(defaults[1], vmin, vmax)))
    step, fmt = _slider_step(vmin, vmax)

    def set_thresholds(lo: float, hi: float) -> None:
        st.session_state[k_low] = float(np.clip(lo, vmin, vmax))
        st.session_state[k_high] = float(np.clip(hi, vmin, vmax))

    low = st.slider("Pore | CBD threshold (grey value)", float(vmin), float(vmax), key=k_low, step=step, format=fmt,
                    persist_state=PERSIST, help="Voxels darker than this are pore.")
    high = st.slider("CBD | NMC threshold (grey value)", float(vmin), float(vmax), key=k_high, step=step, format=fmt,
                     persist_state=PERSIST, help="Voxels at least this bright are NMC; between the two, CBD.")
    alternative = cache.preview_globals(ref, key_now()).alternative
    st.button("Suggest thresholds (midpoints of the pure phases)", key=state.k(state.SEG_SUGGEST, sid),
              on_click=lambda: set_thresholds(*suggested_thresholds(ref, key_now())),
              help="The thresholds a run without thresholds would use, after the chosen denoising: the midpoints of "
                   "the pure grey values of pore, CBD and NMC, measured two voxels inside each phase of a central "
                   "block.")
    if alternative is not None:
        st.info("The grey values allow a second reading, **NMC first**: the brightest class taken whole before "
                "pore and CBD are split, where three-class Otsu may cut a dominant NMC peak in two. Compare the "
                "preview with both. On the real nano-CT slices of the test data, where NMC is 50–90 % of the "
                "voxels, it matched the manual labels better (mean IoU 0.43 against 0.35).",
                icon=":material/alt_route:")
        st.button(f"Use the NMC-first reading ({alternative[0]:.{3 if step < 1 else 0}f} / "
                  f"{alternative[1]:.{3 if step < 1 else 0}f})", key=state.k(state.SEG_ALTERNATIVE, sid),
                  on_click=set_thresholds, args=tuple(alternative))
    return float(low), float(high)


def _clean_up_options(sample: Sample, base: SegmentParams) -> tuple[str, float, bool, int]:
    """The "Denoising and clean-up" expander; returns (denoise, size, partial volume, min island)."""
    sid = sample.id
    k_dn, k_size = state.k(state.SEG_DENOISE, sid), state.k(state.SEG_DENOISE_SIZE, sid)
    k_pv, k_isl = state.k(state.SEG_PV, sid), state.k(state.SEG_MIN_ISLAND, sid)
    with st.expander("Denoising and clean-up", expanded=False, key=state.k(state.SEG_CLEANUP_EXPANDER, sample.id)):
        init(k_dn, base.denoise)
        init(k_size, float(base.denoise_size))
        init(k_pv, bool(base.partial_volume))
        init(k_isl, int(base.min_island))
        def median_that_filters() -> None:  # (QA walk 9: the Gaussian's 0.7 kept, "rounds to 1 voxel: no filtering")
            from core.phases.denoise import median_window

            if st.session_state[k_dn] == "median" and median_window(float(st.session_state[k_size])) == 1:
                st.session_state[k_size] = 1.5

        denoise = st.selectbox("Denoising filter", DENOISE_METHODS, key=k_dn, persist_state=PERSIST,
                               on_change=median_that_filters,
                               help="none is the default: the partial-volume correction reads thin gaps between "
                                    "NMC and CBD from the grey values, and denoising blurs them (on the demo "
                                    "electrodes Gaussian denoising doubled the detachment error or worse). "
                                    "Denoise noisy data. nlm (non-local means) is slow on big volumes.")
        if denoise != "none":  # the size means nothing without a filter: not shown then (its value is kept)
            size = st.slider("Filter size (voxels: Gaussian sigma / median window / NLM patch distance)", 0.0, 5.0,
                             key=k_size, step=0.1, persist_state=PERSIST)
            if denoise == "median":
                from core.phases.denoise import median_window

                k = median_window(size)
                if k == 1:
                    st.warning(f"A median window of {size:g} voxels rounds to 1 voxel: no filtering. Choose 1.5 or "
                               "more (a window of 3 voxels).")
                else:
                    st.caption(f"Median window: {k}×{k}×{k} voxels.")
        else:
            size = st.session_state[k_size]
        pv = st.checkbox("Partial-volume correction (removes the false CBD shell that blur puts around particles)",
                         key=k_pv, persist_state=PERSIST)
        island = st.number_input("Merge islands smaller than (voxels)", 0, 10_000, key=k_isl, step=1,
                                 persist_state=PERSIST)
    return denoise, float(size), bool(pv), int(island)


def segment_params(sample: Sample, ref: cache.VolumeRef, vmin: float, vmax: float,
                   latest: Analysis | None) -> SegmentChoice:
    """Threshold sliders, "Suggest" button and denoising options of the Segment page."""
    sid = sample.id
    base = SegmentParams()
    if latest is not None:
        base = latest.resolved.segment
    ss = st.session_state

    def key_now() -> SegmentParams:  # the denoising as the widgets hold it now (they are drawn below the sliders)
        return _globals_key(base, latest, ss.get(state.k(state.SEG_DENOISE, sid), base.denoise),
                            ss.get(state.k(state.SEG_DENOISE_SIZE, sid), base.denoise_size),
                            ss.get(state.k(state.SEG_PV, sid), base.partial_volume))

    low, high = _threshold_sliders(sample, ref, vmin, vmax, threshold_defaults(ref, latest, key_now()), key_now)
    denoise, size, pv, island = _clean_up_options(sample, base)
    if not low < high:
        from .tables import grey_text  # the thresholds to the digits the sliders show

        st.error(f"The pore | CBD threshold ({grey_text(low)}) must be below the CBD | NMC threshold "
                 f"({grey_text(high)}).")
        return SegmentChoice(low, high, None)
    # the σ the user gave (None when it was fitted), never the last fit's: passed back it would read as given
    requested = latest.rerun_params.segment if latest is not None else base
    pv_sigma = _globals_key(requested, latest, denoise, size, pv).pv_sigma
    params = SegmentParams(denoise=denoise, denoise_size=float(size), low=float(low), high=float(high),
                           partial_volume=bool(pv), pv_sigma=pv_sigma, min_island=int(island))
    auto = suggested_thresholds(ref, key_now())  # the widgets' denoising: the key the sliders' defaults came from
    return SegmentChoice(low, high, params, automatic=bool(np.allclose((low, high), auto, rtol=1e-9, atol=0.0)))


# --------------------------------------------------------------------------- particles


def separation_form(sample: Sample, current: SeparationParams, *, cue: bool = False,
                    source=None) -> tuple[SeparationParams | None, bool]:
    """SeparationParams in an ``st.form``; returns (params, submitted).

    With ``cue`` (particles from the 3D U-Net's instance cue) the watershed's
    seed settings do not apply: they are shown disabled, and a caption says so.
    ``source``: what ``current`` was read from (the latest analysis's id): the
    form shows ``current`` again when it changes (:func:`ui.state.init_from`).
    """
    sid = sample.id
    keys = {n: state.k(b, sid) for n, b in (
        ("markers", state.PART_MARKERS), ("h", state.PART_H), ("dist", state.PART_MIN_DIST),
        ("merge", state.PART_MERGE), ("vol", state.PART_MIN_VOL), ("fill", state.PART_FILL))}
    for name, value in (("markers", current.markers), ("h", float(current.h_um)),
                        ("dist", float(current.min_distance_um)), ("merge", float(current.merge_ratio)),
                        ("vol", float(current.min_volume_um3)), ("fill", bool(current.fill_cracks))):
        state.init_from(keys[name], value, source)
    if cue:
        st.caption("Particles from the U-Net's instance cue: its own seeds and crack handling apply, so only "
                   "the merge ratio and the minimum volume below are used.")
    # outside the form, so that only the setting of the chosen kind of seeds is shown below
    markers = st.selectbox("Seeds", ("hmaxima", "peaks"), key=keys["markers"], disabled=cue, persist_state=PERSIST,
                           format_func={"hmaxima": "h-maxima (flooding by dynamics)",
                                        "peaks": "local peaks (min. distance)"}.get)
    with st.form(state.k(state.PART_FORM, sid)):
        c1, c2 = st.columns(2)
        if markers == "hmaxima":
            h = c1.slider("h (µm): a peak must rise this much above its saddle to seed a particle", 0.0, 3.0,
                          key=keys["h"], step=0.05, disabled=cue, persist_state=PERSIST)
            dist = st.session_state[keys["dist"]]
        else:
            dist = c1.slider("Minimum seed distance (µm)", 0.2, 10.0, key=keys["dist"], step=0.1, disabled=cue,
                             persist_state=PERSIST)
            h = st.session_state[keys["h"]]
        fill = c2.checkbox("Fill internal cracks before splitting", key=keys["fill"], disabled=cue)
        merge = c1.slider("Merge ratio (contact area / π r² of the smaller fragment; 0 = off)", 0.0, 3.0,
                          key=keys["merge"], step=0.05)
        on_slice = is_single_slice(sample.shape)
        vol = c2.number_input("Minimum particle volume (µm³; on this slice, of the ball of a particle's circle)"
                              if on_slice else "Minimum particle volume (µm³)", 0.0, 1e6, key=keys["vol"], step=0.5,
                              help="Fragments smaller than this join the neighbour they share most interface with. "
                                   "On a single slice (a 2D image) a fragment is weighed as the ball of the circle "
                                   "of its area: 1 µm³ is a disc about 1.24 µm across.")
        submitted = st.form_submit_button("Run particle separation", type="primary")
    try:
        params = SeparationParams(fill_cracks=bool(fill), markers=markers, h_um=float(h),
                                  min_distance_um=float(dist), merge_ratio=float(merge), min_volume_um3=float(vol))
    except ValueError as exc:
        st.error(one_sentence(exc, alone=True))
        return None, False
    return params, submitted


def model_card(params) -> str | None:
    """The model card (markdown) beside the weights (``MODEL_CARD.md`` in their folder), or None where there is none
    (weights of the user's own)."""
    try:
        return (params.path.parent / "MODEL_CARD.md").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def model_card_line(params) -> str:
    """One line on the model's weights and their measured scores (from the JSON next to them)."""
    import json

    meta_path = params.path.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text())
        real = meta["holdout"]
        return (f"Weights `{params.path.name}`: trained on synthetic electrodes and real labelled nano-CT slices; "
                f"held-out real acquisition {real['acquisition']}: mean phase IoU {real['mean_iou']:.2f}"
                + (". Its model card, below, says what it is good and bad at." if model_card(params) else "."))
    except (OSError, KeyError, ValueError, TypeError):
        return f"Weights `{params.path}`."


# --------------------------------------------------------------------------- 3D view


def view3d_params() -> cache.View3DParams | None:
    """Depth range, triangle budget, interactive or image, CBD surface and its opacity (one choice for all
    samples); None after an error when the depth range is empty."""
    from .view3d import CBD_OPACITY, CBD_OPACITY_RANGE, MAX_TRIANGLES

    init(state.V3_DEPTH, (0.0, 1.0))
    init(state.V3_MAX_TRI, 100_000)
    init(state.V3_MODE, "interactive")
    init(state.V3_CBD, False)
    init(state.V3_CBD_OPACITY, CBD_OPACITY)
    c1, c2, c3 = st.columns([3, 2, 2])
    depth = c1.slider("Depth range shown (0 = separator side, 1 = current collector)", 0.0, 1.0, key=state.V3_DEPTH,
                      step=0.05, persist_state=PERSIST)
    max_tri = c2.select_slider("Triangle budget", (20_000, 40_000, 60_000, 100_000), key=state.V3_MAX_TRI,
                               persist_state=PERSIST, format_func=lambda n: f"{n // 1000}k",
                               help=f"At most {MAX_TRIANGLES // 1000}k: browsers without a GPU redraw big meshes "
                                    "slowly.")
    mode = c3.radio("View", ("interactive", "image"), key=state.V3_MODE, persist_state=PERSIST,
                    format_func={"interactive": "interactive (rotate, zoom)", "image": "static image"}.get)
    d1, d2 = st.columns([3, 4])
    show_cbd = d1.checkbox("Show the CBD (carbon-binder) as a translucent grey surface", key=state.V3_CBD,
                           persist_state=PERSIST,
                           help="The CBD surface takes at most a third of the triangle budget, the particles the rest.")
    cbd_opacity = d2.slider("CBD opacity", *CBD_OPACITY_RANGE, key=state.V3_CBD_OPACITY, step=0.05,
                            persist_state=PERSIST, disabled=not show_cbd)
    if depth[1] <= depth[0]:
        st.error("Pick a depth range of non-zero width.")
        return None
    return cache.View3DParams(depth_range=(float(depth[0]), float(depth[1])), max_triangles=int(max_tri),
                              interactive=mode == "interactive", show_cbd=bool(show_cbd),
                              cbd_opacity=round(float(cbd_opacity), 2) if show_cbd else CBD_OPACITY)
