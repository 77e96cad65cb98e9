"""The start of a page about one sample: its header, and guards that stop the page with a hint.

A page calls :func:`sample_page` first; :func:`require_volume` and
:func:`require_analysis` stop it (``st.stop``) with one sentence where what it
shows does not exist yet.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.workspace import Analysis, Sample, Workspace

from . import cache
from . import state
from .messages import flash, one_sentence, show_flash
from .widgets import current_sample


def through_app() -> None:
    """Run the dashboard's entry script instead of this page where Streamlit ran the page itself.

    A server process's first script run is in Streamlit's legacy pages-folder mode (``pages/`` lies beside
    ``app.py``): it runs the page of a deep link (``/particles``) as a script of its own, without ``app.py``'s
    navigation, sidebar and first-start step.  Called first by every page: there it runs ``app.py`` (whose
    ``st.navigation`` picks this page and runs it again, normally) and stops.  Elsewhere (a normal run, an
    AppTest of the page) it does nothing.
    """
    import runpy
    from pathlib import Path

    from streamlit.runtime.pages_manager import PagesManager

    if not PagesManager.uses_pages_directory:
        return
    runpy.run_path(str(Path(__file__).resolve().parent.parent / "app.py"), run_name="__main__")
    st.stop()


def sample_page(title: str) -> tuple[Workspace, Sample]:
    """Title ``"{title} — {sample name}"``, the SYNTHETIC badge and the flashed message of the current sample.

    Stops the page with a hint when the workspace has no sample.
    """
    ws = cache.workspace()
    sample = require_sample(ws)
    st.title(f"{title} — {sample.name}")
    demo_badge(sample)
    show_flash()
    return ws, sample


def require_sample(ws: Workspace) -> Sample:
    s = current_sample(ws)
    if s is None:
        st.info("No sample in the workspace yet. Add one on the **Samples** page.")
        st.stop()
    return s


def read_volume(ws: Workspace, sample: Sample) -> tuple[cache.VolumeRef, np.ndarray | None]:
    """(VolumeRef, volume) of a sample; the volume is None after a one-sentence error when it cannot be read.

    The volume is :func:`ui.cache.volume`'s: for a big sample a :class:`core.chunked.LazyArray` (index it, a slice
    or a slab at a time; its ``shape`` and ``dtype`` are there without a read), never to be taken whole.  Opening
    one reads its header only, so its sampled blocks (:func:`ui.cache.grey_values`, which the histogram and the
    display contrast read anyway; not for an already-segmented sample) and its middle z-slice are read here: a file whose voxels cannot be read
    (a corrupt compressed chunk) gets the same one sentence as one that cannot be opened."""
    ref = cache.VolumeRef.of(ws, sample)
    try:
        vol = cache.volume(ref)
        if cache.is_lazy(vol):
            if not sample.input.presegmented:  # a segmented one has no histogram: its slices only
                cache.grey_values(ref)
            cache.grey_slice(ref, 0, vol.shape[0] // 2)
        return ref, vol
    except (OSError, ValueError, TypeError, KeyError, MemoryError) as exc:
        st.error(f"Cannot read the volume of '{sample.name}': {one_sentence(exc)}")
        return ref, None


def require_volume(ws: Workspace, sample: Sample) -> tuple[cache.VolumeRef, np.ndarray]:
    """(VolumeRef, volume) of a sample; a one-sentence error and stop when it cannot be read."""
    ref, vol = read_volume(ws, sample)
    if vol is None:
        st.stop()
    return ref, vol


def require_analysis(ws: Workspace, sample: Sample, what: str) -> Analysis:
    a = ws.latest_analysis(sample.id)
    if a is None:
        st.info(f"'{sample.name}' has no finished analysis yet: run it on the **Segment** page to see {what}.")
        st.stop()
    return a


def demo_badge(sample: Sample) -> None:
    if sample.is_demo:
        from core.synth import DEMO_DESCRIPTIONS

        shape = sample.source_options.get("shape")
        size = f" Generated at {'×'.join(map(str, shape))} voxels." if shape else ""
        text = DEMO_DESCRIPTIONS.get(sample.demo_name, "SYNTHETIC demo electrode.").removeprefix("SYNTHETIC demo: ")
        st.warning(f"**SYNTHETIC demo electrode:** {text}{size}",
                   icon=":material/science:")


def latest_params(latest: Analysis | None):
    """The resolved parameters of ``latest`` (the defaults when there is none)."""
    from core.pipeline import AnalysisParams

    if latest is None:
        return AnalysisParams()
    return latest.resolved


def fill_note(ws: Workspace, ref: cache.VolumeRef, sample: Sample) -> None:
    """A warning where the sample's greyscale holds a fill outside its reconstructed region
    (:func:`core.phases.fill_reading`: the particles it cuts would look detached), with a button that crops the
    sample to the largest box without it (:func:`core.phases.data_box`)."""
    from core.phases import fill_message

    if data_bar_note(ws, ref, sample):
        return
    found = cache.fill(ref)
    if found is None:
        return
    st.warning(fill_message(found))
    box = cache.fill_box(ref, found["value"])
    if box is None or not hasattr(sample.input, "crop") or _aligned_no_crop(sample):
        return
    _crop_button(ws, sample, box, "the largest box without the fill", state.FILL_CROP)


def aligned_note(ws: Workspace, sample: Sample) -> None:
    """Where the sample's slices are aligned as read (its input's ``align``): what was done, with a button that reads
    them as they are in the file again.  Needs no read of the volume, so it shows where an alignment no longer fits
    the file (the read fails in one sentence, and this is the way out)."""
    from core.phases.alignment import aligned_message

    offsets = getattr(sample.input, "align", None)
    if offsets is None:
        return
    st.info(aligned_message(offsets) + " The next analysis reads them so.", icon=":material/align_horizontal_center:")
    if st.button("Use the slices as read (undo the alignment)", key=state.k(state.UNALIGN, sample.id)):
        so = dict(sample.source_options)
        read = {k: v for k, v in (so.get("read") or {}).items() if k != "align"}
        ws.update_sample(sample.id, source_options={**so, "read": read})
        flash("success", "The slices are read as they are in the file again. It applies to the next analysis.")
        st.rerun()


def alignment_note(ws: Workspace, ref: cache.VolumeRef, sample: Sample) -> None:
    """A warning where the sample's slices are shifted against one another (:func:`core.phases.alignment_reading`:
    a FIB-SEM stack not aligned, whose particles would be sheared along z), with a button that aligns them
    (:func:`core.phases.alignment.slice_shifts`, stored as the input's ``align``; :func:`aligned_note` says it
    then)."""
    from core.phases.alignment import aligned_message, alignment_message

    if getattr(sample.input, "align", None) is not None:
        return
    message = alignment_message(cache.alignment(ref))
    if message is None:
        return
    st.warning(message, icon=":material/align_horizontal_center:")
    if not hasattr(sample.input, "align"):
        return
    if st.button("Align the slices", key=state.k(state.ALIGN, sample.id),
                 help="Measure how far each slice lies from the one before (cross-correlation, to a twentieth of a "
                      "pixel), shift every slice back by its offset in whole pixels and keep the region all slices "
                      "share. Stored with the sample, undone with one click; the analyses made before keep what "
                      "they read."):
        from core.phases.alignment import slice_shifts

        bar = st.progress(0.0, text="Aligning the slices…")
        try:
            offsets = slice_shifts(cache.volume(cache.unflattened_ref(ref)),
                                   progress=lambda done, total: bar.progress(done / total,
                                                                             text=f"Aligning the slices: {done} of "
                                                                                  f"{total} pairs"))
            so = dict(sample.source_options)
            ws.update_sample(sample.id, source_options={**so, "read": {**(so.get("read") or {}), "align": offsets}})
        except (OSError, ValueError, TypeError) as exc:
            bar.empty()
            st.error(f"The slices could not be aligned: {one_sentence(exc)}")
            return
        flash("success", aligned_message(offsets) + " It applies to the next analysis (Segment page).")
        st.rerun()


def data_bar_note(ws: Workspace, ref: cache.VolumeRef, sample: Sample) -> bool:
    """A warning where the sample's image holds an SEM's data bar at its bottom (:func:`ui.cache.data_bar`), with a
    button that crops it out; whether there is one (its background would read as a fill: that is not said too)."""
    from core.io.sem import data_bar_message

    bar = cache.data_bar(ref)
    if bar is None:
        return False
    shape = [int(n) for n in cache.volume(ref).shape]
    st.warning(data_bar_message(bar))
    if not hasattr(sample.input, "crop") or _aligned_no_crop(sample):
        return True
    _crop_button(ws, sample, [[0, shape[0]], [0, bar["start"]], [0, shape[2]]], "the image without the data bar",
                 state.BAR_CROP)
    return True


def _aligned_no_crop(sample: Sample) -> bool:
    """Whether the sample's slices are aligned (then a box of the volume as read is no box of the file: no crop
    button, one sentence instead)."""
    if getattr(sample.input, "align", None) is None:
        return False
    st.caption("The slices are aligned, so a box of them is not a box of the file: use the slices as read (below), "
               "crop, then align them again.")
    return True


def _crop_button(ws: Workspace, sample: Sample, box, what: str, key: str) -> None:
    """A button that crops the sample to ``box`` (voxels of its volume as read), saying the crop of its file and
    ``what`` it keeps; ``key`` + the sample's id is the button's key."""
    crop = file_crop(sample, box)
    words = ", ".join(f"{a} {lo}:{hi}" for a, (lo, hi) in zip("zyx", crop))
    if st.button(f"Crop to {words} (voxels of the file): {what}", key=state.k(key, sample.id)):
        so = dict(sample.source_options)
        ws.update_sample(sample.id, source_options={**so, "read": {**(so.get("read") or {}), "crop": crop}})
        # the thresholds start again from the cropped volume's own (QA walk 10: they fell to 0 | 0 after the crop
        # that took a fill away, whose value had pulled them, and the run was refused)
        for base in (state.SEG_LOW, state.SEG_HIGH):
            st.session_state.pop(state.k(base, sample.id), None)
        flash("success", f"Cropped to {words}. It applies to the next analysis (Segment page).")
        st.rerun()


def file_crop(sample: Sample, box) -> list[list[int]]:
    """A box in voxels of the sample's volume as read (after its crop and downsampling) as a crop of its file."""
    f = int(sample.downsample)
    start = [lo for lo, _ in sample.input.crop] if sample.input.crop is not None else [0, 0, 0]
    return [[s + f * int(lo), s + f * int(hi)] for s, (lo, hi) in zip(start, box)]
