"""Small widgets several pages share: the sample picker, the slice picker, the downsampling picker and
copy button, and the progress bar around a core run."""

from __future__ import annotations

from typing import Callable

import numpy as np
import streamlit as st

from core.workspace import Sample, Workspace

from . import state
from .messages import flash, one_sentence
from .render import AXES
from .state import init

Progress = Callable[[float, str], None]


# --------------------------------------------------------------------------- samples


def sample_label(ws: Workspace, s: Sample, *, mark: bool = True) -> str:
    """``"✓ pristine · SYNTHETIC"``: the sample's name, ✓ analysed or ○ not yet (``mark``), SYNTHETIC for a demo."""
    tag = " · SYNTHETIC" if s.is_demo else ""
    if not mark:
        return f"{s.name}{tag}"
    return f"{'✓' if ws.latest_analysis(s.id) is not None else '○'} {s.name}{tag}"


#: The URL's query parameter naming the chosen sample (``?sample=3``).
URL_SAMPLE = "sample"


def url_sample() -> int | None:
    """The sample id the URL names (``?sample=ID``), or None when it names none or not a number."""
    raw = st.query_params.get(URL_SAMPLE)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def sample_picker(ws: Workspace) -> Sample | None:
    """The shared sidebar sample picker (rendered by ``app.py`` on every page)."""
    samples = ws.list_samples()
    ids = [s.id for s in samples]
    by_id = {s.id: s for s in samples}
    pending = st.session_state.pop(state.PENDING_SAMPLE, None)
    if pending in by_id:
        st.session_state[state.SAMPLE_PICKER] = pending
    elif st.session_state.get(state.SAMPLE_PICKER) not in by_id:
        current = st.session_state.get(state.SAMPLE_ID)
        if current not in by_id:  # a reload or a shared link: the sample named in the URL
            current = url_sample()
            if current is not None and current not in by_id and ids:  # deleted since (QA: silently another)
                st.warning(f"Sample #{current}, named in the link, is no longer in the workspace (deleted); showing "
                           f"'{by_id[ids[0]].name}' instead.", icon=":material/link_off:")
        st.session_state[state.SAMPLE_PICKER] = current if current in by_id else (ids[0] if ids else None)
    if not ids:
        st.sidebar.info("No sample yet: add one on the Samples page.")
        st.session_state[state.SAMPLE_ID] = None
        return None
    # the chosen sample's status is the box's icon, not part of its text: the browser keeps showing the text it
    # had when the sample was chosen (an analysis finished meanwhile left "○" there), and redraws the icon
    chosen = st.session_state[state.SAMPLE_PICKER]
    analysed = ws.latest_analysis(chosen) is not None
    sid = st.sidebar.selectbox(
        "Sample", ids, key=state.SAMPLE_PICKER,
        format_func=lambda i: sample_label(ws, by_id[i], mark=i != chosen),
        icon=":material/check_circle:" if analysed else ":material/radio_button_unchecked:",
        help="✓ analysed, ○ not analysed yet (the chosen sample: the icon in the box). SYNTHETIC = built-in demo "
             "electrode with known ground truth.",
    )
    st.session_state[state.SAMPLE_ID] = sid
    if st.query_params.get(URL_SAMPLE) != str(sid):  # so that a reload or a shared link opens the same sample
        st.query_params[URL_SAMPLE] = str(sid)
    s = by_id[sid]
    st.sidebar.caption(
        f"group: {s.group_label or '–'} · voxel {s.spacing[0]:g}×{s.spacing[1]:g}×{s.spacing[2]:g} µm (z×y×x)"
    )
    return s


def current_sample(ws: Workspace) -> Sample | None:
    """The sample chosen in the sidebar (or the first one when a page runs on its own)."""
    sid = st.session_state.get(state.SAMPLE_ID)
    if sid is None:
        sid = url_sample()
    if sid is not None:
        try:
            return ws.get_sample(sid)
        except KeyError:
            pass
    samples = ws.list_samples()
    if samples:
        st.session_state[state.SAMPLE_ID] = samples[0].id
        return samples[0]
    return None


# --------------------------------------------------------------------------- slices


def slice_picker(axis_key: str, index_key: str, shape: tuple[int, int, int], *, default_axis: int = 0,
                 default_index: int | None = None, label: str = "Slice") -> tuple[int, int]:
    """Axis radio (``axis_key``) + index slider (``k(index_key, axis)``); returns (axis, index).

    A single slice (:func:`core.slices.slice_axis`: one voxel along one axis) has one plane to show: no radio
    and no slider, one caption instead (a y or x section of it would be one voxel tall).
    """
    from core.slices import slice_axis

    thin = slice_axis(shape)
    if thin is not None:
        st.caption(f"A single slice (one voxel along {AXES[thin]}): its plane is shown.")
        return thin, 0
    init(axis_key, default_axis)
    axis = st.radio(f"{label} orientation", (0, 1, 2), key=axis_key, horizontal=True,
                    format_func=lambda a: f"{AXES[a]} (⊥ axis {a})")
    ikey = state.k(index_key, axis)
    n = int(shape[axis])
    init(ikey, int(n // 2 if default_index is None else np.clip(default_index, 0, n - 1)))
    if st.session_state[ikey] > n - 1:
        st.session_state[ikey] = n - 1
    index = st.slider(f"{label} index along {AXES[axis]} (voxels, 0–{n - 1})", 0, max(n - 1, 1), key=ikey,
                      disabled=n <= 1)
    return axis, int(min(index, n - 1))


# --------------------------------------------------------------------------- downsampling


def downsample_picker(key: str, shape) -> int:
    """'Downsample by' selectbox for a volume of ``shape`` (z, y, x); returns the factor (1 = none)."""
    from core.io.downsampling import downsample_factors

    shape = [int(n) for n in shape]
    factors = downsample_factors(shape)

    # the options' words must not hold the shape: a selectbox keeps its choice by its words, so a crop changing
    # them set it back to "1 (none)" without a word (QA walk 7: a sample added at full resolution)
    def label(f: int) -> str:
        return "1 (none)" if f == 1 else f"{f} (blocks of {f}×{f}×{f} voxels averaged)"

    factor = int(st.selectbox(
        "Downsample by", factors, key=key, format_func=label,
        help="Average blocks of F×F×F voxels into one when loading (the file is not changed). Use it when the "
             "Segment page warns that the blur is wider than the partial-volume correction handles: on 0.2 µm "
             "voxels with 1.5 voxel blur (the phases refined against it) the detachment came out 0.19 too low, "
             "downsampled by 2 it was 0.03 off. "
             "Enter the FILE's voxel size above; the analysis uses F times it."))
    if factor > 1:
        st.caption(f"Loaded as {'×'.join(str(n // factor) for n in shape)} voxels (z×y×x), each {factor} times the "
                   "file's voxel size.")
    return factor


def downsampled_copy_button(ws: Workspace, sample: Sample, shape, factor: int) -> None:
    """Button that adds ``sample`` again, ``factor`` times coarser, and switches to the copy.

    Shown only where the copy is possible (total factor within the limit, at
    least 8 voxels left on every axis).
    """
    from core.io.downsampling import downsample_factors

    if factor < 2 or factor not in downsample_factors(shape, sample.downsample):
        return
    coarse = "×".join(str(int(n) // factor) for n in shape)
    if st.button(f"Add a copy downsampled by {factor} ({coarse} voxels)",
                 key=state.k(state.DOWNSAMPLED_COPY, sample.id), icon=":material/grid_goldenratio:",
                 help="A new sample reading the same file with blocks of "
                      f"{factor}×{factor}×{factor} voxels averaged; this one and its analyses stay as they are."):
        try:
            copy = ws.add_downsampled_copy(sample.id, factor)
        except (ValueError, TypeError) as exc:
            st.error(one_sentence(exc, alone=True))
            return
        st.session_state[state.PENDING_SAMPLE] = copy.id
        flash("success", f"Added sample '{copy.name}' (voxel {'×'.join(f'{v:g}' for v in copy.spacing)} µm). "
                         "Analyse it here.")
        st.rerun()


# --------------------------------------------------------------------------- running


def progress_callback(bar, label: str, *, start: float = 0.0, span: float = 1.0) -> Progress:
    """A core ``progress(frac, msg)`` callback drawing on ``bar`` (an ``st.progress``).

    The bar shows ``start + span * frac`` (clipped to 0..1; one run of several
    takes a ``span`` of the bar) and the text ``"{label}: {msg}"``.
    """
    def progress(frac: float, msg: str) -> None:
        bar.progress(float(np.clip(start + span * frac, 0, 1)), text=f"{label}: {msg}")

    return progress


def run_with_progress(label: str, work: Callable[[Progress], object]):
    """Run ``work(progress)`` under an ``st.progress`` bar showing the step name.

    Returns the result, or None after showing the error as one sentence.
    """
    bar = st.progress(0.0, text=f"{label}: starting…")
    try:
        out = work(progress_callback(bar, label))
    except (OSError, ValueError, TypeError, KeyError, MemoryError, RuntimeError) as exc:
        bar.empty()
        st.error(f"{label} failed: {one_sentence(exc)}")
        return None
    bar.progress(1.0, text=f"{label}: done")
    return out
