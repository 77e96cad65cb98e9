"""Sections of the Samples page: uploads (saved, checked, deleted at once when rejected), and about the current
sample: details, attributes (numbers with units: C-rate, cycles, SOC...), orthogonal slices, analyses, deletion."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.io import parse_phase_map
from core.io.sem import SEM_SOURCES
from core.jobs import ACTIVE, Job, JobStore
from core.records import ATTRIBUTE_PRESETS, Attribute
from core.slices import slice_axis
from core.workspace import NOTE_MAX, Analysis, Sample, Workspace

from . import cache, forms, pins, render, state, tables, widgets
from .confine import READ_SUFFIXES, VOLUME_SUFFIXES, confine
from .messages import display_path, flash, one_sentence, read_or_stop
from .render import AXES

REJECTED_UPLOADS = state.UPLOADS_REJECTED


# --------------------------------------------------------------------------- uploads


def _used_by_a_sample(ws: Workspace, path: Path) -> bool:
    folder = path.parent
    for s in ws.list_samples():
        try:
            if Path(s.source).resolve().parent == folder.resolve():
                return True
        except (OSError, RuntimeError):
            continue
    return False


def discard_upload(ws: Workspace, path) -> None:
    """Delete the ``uploads/<token>`` folder holding ``path`` now (only a folder right inside the workspace's
    uploads folder, and never one a sample reads)."""
    uploads = (ws.root / "uploads").resolve()
    folder = Path(path).parent
    if folder.is_symlink() or not folder.is_dir():
        return
    real = folder.resolve()
    if real.parent != uploads or _used_by_a_sample(ws, Path(path)):
        return
    shutil.rmtree(real, ignore_errors=True)


def _check_upload(name: str, size: int) -> None:
    """Checks before an upload is saved: a volume suffix and some content; ValueError (one sentence) if not."""
    low = name.lower()
    if not low.endswith(VOLUME_SUFFIXES):
        suffix = Path(name).suffix or "none"
        raise ValueError(f"{name} is not a volume file: its suffix ({suffix}) is not one of "
                         f"{', '.join(READ_SUFFIXES)}.")
    if size == 0:
        raise ValueError(f"{name} is empty (0 bytes).")


def saved_upload(ws: Workspace, up) -> Path | None:
    """The workspace path of the file in the uploader ``up`` (saved once per file), or None.

    Uploads saved earlier in this session that are no longer in the uploader and were not added as a sample
    are deleted now.  An upload refused before (here or by :func:`reject_upload`) shows its refusal again and
    gives None; a file with a wrong suffix or no content is refused without being saved.
    """
    saved: dict = st.session_state.setdefault(state.UPLOADS_SAVED, {})
    rejected: dict = st.session_state.setdefault(REJECTED_UPLOADS, {})
    current = up.file_id if up is not None else None
    for fid in [f for f in saved if f != current]:
        discard_upload(ws, saved.pop(fid))
    for fid in [f for f in rejected if f != current]:
        rejected.pop(fid)
    if up is None:
        return None
    if current in rejected:
        st.error(rejected[current])
        return None
    if current not in saved:
        path = None
        try:
            _check_upload(up.name, up.size)
            path = ws.save_upload(up.name, up.getvalue())
            # confined to its own uploads/<token> folder: an HDF5 external link or an OME-TIFF naming other
            # files would make the reader open server files
            confine(path.parent, path, area="the uploaded file")
        except (ValueError, OSError) as exc:
            reject_upload(ws, up, path, one_sentence(exc))
            return None
        saved[current] = str(path)
    return Path(saved[current])


def reject_upload(ws: Workspace, up, path, message: str, *, show: bool = True) -> None:
    """Delete a refused upload at once; ``message`` (shown now unless ``show`` is False) is shown again on every
    run while the file stays in the uploader."""
    if path is not None:
        discard_upload(ws, path)
    st.session_state.setdefault(state.UPLOADS_SAVED, {}).pop(up.file_id, None)
    if show:
        st.error(message)
    st.session_state.setdefault(REJECTED_UPLOADS, {})[up.file_id] = message


# --------------------------------------------------------------------------- reading a new file


def _naming(name: str, msg: str) -> str:
    """``msg``, prefixed with the file's name where the reader did not name it."""
    if name in msg:
        return msg
    return f"{name} cannot be read: {msg[0].lower() + msg[1:] if msg[1:2].islower() else msg}"


def data_bar_crop(path: Path, options: dict, info: dict, name: str, scope: tuple) -> list[list[int]] | None:
    """An SEM image's data bar (:func:`core.io.sem.data_bar`: the rows its metadata states, else found in the
    middle z plane), said in a warning; returns the crop without it (voxels of the file), or None.

    Where the file states no voxel size and the bar holds a scale bar (:func:`core.io.sem.find_scale_bar`), the bar
    is shown with the scale bar outlined and the length printed beside it can be typed: the voxel size fields of
    the add form (``scope``, :func:`ui.forms.sample_metadata`'s) take that length over the scale bar's pixels.
    """
    from core.io.sem import data_bar, data_bar_message

    shape = [int(n) for n in info["shape"]]
    plane = None
    if not info.get("data_bar_rows"):  # none stated: looked for in the middle plane (where one plane is cheap),
        try:  # the one the crop preview shows (its box is the whole depth): read once, from the cache
            plane = cache.file_plane(str(path), json.dumps(options, sort_keys=True), path.stat().st_mtime,
                                     (shape[0] - 1) // 2)
        except (OSError, ValueError, TypeError, MemoryError):
            return None
    bar = data_bar(shape[1], info.get("data_bar_rows"), plane)
    if bar is None:
        return None
    st.warning(data_bar_message(bar, name) + " The region of interest below leaves them out: check it there.",
               icon=":material/crop:")
    if plane is not None and not info["from_metadata"]:
        _scale_bar_input(plane, bar, scope)
    return [[0, shape[0]], [0, bar["start"]], [0, shape[2]]]


def sem_notes(path: Path, options: dict, info: dict, name: str, scope: tuple) -> list[list[int]] | None:
    """An SEM image's notes in the add form: its data bar (:func:`data_bar_crop`, whose crop is returned) and a
    stage tilt with the tilt correction off (:func:`tilt_note`)."""
    bar = data_bar_crop(path, options, info, name, scope)
    tilt_note(info, name, scope)
    return bar


def tilt_note(info: dict, name: str, scope: tuple) -> None:
    """Where an SEM image was taken at a FIB's cross-section tilt with the tilt correction off
    (:func:`core.io.sem.tilt_reading` of the file's pixel size), a warning saying so and a button that sets the
    pixel height field of the add form (``scope``, :func:`ui.forms.sample_metadata`'s) to the face's."""
    from core.io.sem import tilt_message, tilt_reading

    reading = tilt_reading(info.get("sem_tilt"), info["spacing"]) if info["from_metadata"] else None
    if reading is None:
        return
    st.warning(tilt_message(reading, name) + " Only you know whether it is: a tilted view of the surface is "
               "foreshortened otherwise.", icon=":material/rotate_90_degrees_ccw:")
    key = state.k(state.META_SPACING, *scope, "y")
    now = float(st.session_state.get(key, reading["dy_file_um"]))
    done = math.isclose(now, reading["dy_um"], rel_tol=1e-6)

    def stretch() -> None:
        st.session_state[key] = reading["dy_um"]

    st.button(f"It is a cross-section: pixel height y = {reading['dy_um']:.4g} µm", on_click=stretch, disabled=done,
              key=state.k(state.ADD_TILT, *scope[1:]),
              help=f"Sets the y voxel size above to the file's × 1 / sin {reading['stage_deg']:g}° "
                   f"({reading['factor']:.3f}).")
    if done:
        st.caption(f"Pixel height set for a face seen at {reading['stage_deg']:g}°: y {reading['dy_um']:.4g} µm.")


def _scale_bar_input(plane: np.ndarray, bar: dict, scope: tuple) -> None:
    """The data bar with its scale bar outlined, and the length printed beside it (µm), which sets the voxel size
    fields of ``scope`` (in a callback: they are drawn above)."""
    from core.io.sem import find_scale_bar, scale_bar_message

    scale = find_scale_bar(plane, bar)
    if scale is None:
        return
    strip = plane[bar["start"]:]
    finite = strip[np.isfinite(strip)] if strip.dtype.kind == "f" else strip
    rgb = render.grey_rgb(strip, float(finite.min()), float(finite.max()))
    r, x0, n = scale["row"] - bar["start"], scale["x0"], scale["length_px"]
    frame = np.zeros(strip.shape, bool)  # a 2-pixel frame a pixel off the scale bar
    frame[max(0, r - 3):r + scale["rows"] + 3, max(0, x0 - 3):x0 + n + 3] = True
    frame[max(0, r - 1):r + scale["rows"] + 1, max(0, x0 - 1):x0 + n + 1] = False
    rgb[frame] = (255, 210, 0)
    st.image(rgb, caption="The data bar, its scale bar outlined in yellow", width="stretch")
    keys = [state.k(state.META_SPACING, *scope, a) for a in AXES]
    length_key = state.k(state.ADD_SCALE_BAR, *scope[1:])

    def set_spacing() -> None:
        um = float(st.session_state.get(length_key) or 0.0)
        if um > 0:
            for key in keys:
                st.session_state[key] = um / n

    st.number_input("Length printed beside the scale bar (µm)", min_value=0.0, value=0.0, step=0.5, format="%.3f",
                    key=length_key, on_change=set_spacing,
                    help=scale_bar_message(scale) + " The voxel size fields above take it (depth included).")
    um = float(st.session_state.get(length_key) or 0.0)
    st.caption(f"Pixel size: {um:g} µm / {n} pixels = {um / n:.4g} µm, set above." if um > 0 else
               scale_bar_message(scale) + " Type that length to set the voxel size above.")


def describe_new_file(path: Path, kind: str, name: str) -> tuple[dict, dict]:
    """Reading options (:func:`ui.file_browser.read_options`, widgets included) and shape, dtype and voxel size
    (:func:`ui.cache.probe`) of a file about to be added; shows a caption of them.

    Parameters
    ----------
    path : Path
        The file or folder, already confined.
    kind : {"file", "upload"}
    name : str
        How the file is named to the user (relative to the data folder, or the uploaded file's name).

    Returns
    -------
    (dict, dict)
        ``load_volume`` keyword arguments, and the probe (``shape``, ``dtype``, ``spacing``, ...).

    Raises
    ------
    ValueError
        One sentence naming the file (never an absolute server path): it cannot be read, or it is not a 3D
        volume.
    """
    from .file_browser import read_options

    try:
        options = read_options(path, kind)
        info = cache.probe(str(path), json.dumps(options, sort_keys=True), path.stat().st_mtime)
    except (OSError, ValueError, TypeError, KeyError, IndexError, MemoryError, EOFError, RuntimeError) as exc:
        raise ValueError(_naming(name, one_sentence(exc))) from None
    except Exception as exc:  # noqa: BLE001 - an untrusted file: any other reader failure is a refusal too
        raise ValueError(f"{name} cannot be read as a volume ({type(exc).__name__}).") from None
    if len(info["shape"]) != 3 or min(info["shape"]) < 1:
        raise ValueError(f"{name} is not a 3D volume (shape {info['shape']}).")
    sp_note = ("voxel size read from the file's metadata" + (" (z assumed equal to x)" if info["z_assumed"] else "")
               if info["from_metadata"] else "no voxel size in the file: 1 µm assumed, CHECK IT below")
    if info["from_metadata"] and info.get("spacing_source") in SEM_SOURCES:
        sp_note = f"pixel size read from the {SEM_SOURCES[info['spacing_source']]} " + (
            "(depth taken equal to it)" if info["shape"][0] == 1 else
            "(the slice thickness, z, taken equal to it: CHECK IT below)")
    if info["from_metadata"] and info.get("spacing_log"):
        sp_note = f"voxel size read from the SkyScan log {info['spacing_log']} beside the slices"
    unit = info.get("spacing_unit")
    if info["from_metadata"] and unit and (unit.startswith("mm") or "no unit" in unit):
        sp_note += f", its numbers read as {unit}: CHECK IT below"
    elif info["from_metadata"] and unit and not info.get("spacing_log"):  # (QA: MRC's Å, EDF's m were said nowhere)
        sp_note += f", its numbers read as {unit}"
    st.caption(f"{info['fmt']} · {'×'.join(map(str, info['shape']))} voxels (z×y×x) · {info['dtype']} · {sp_note}")
    if "shape" in options and info["fmt"] == "raw":  # a layout typed (or proposed from the name), no header's
        note = raw_rows_note(path, options, info["shape"])
        if note:
            st.warning(note)
    if info.get("lossy"):
        st.warning(f"{name} is a {info['lossy']}: its lossy compression moves grey values near edges, where the "
                   "phases meet; export the image as TIFF or PNG from the microscope's software where you can.")
    return options, info


def raw_rows_note(path: Path, options: dict, shape) -> str | None:
    """One sentence when the rows of a raw file's middle plane, read with the layout given, do not line up
    (:func:`core.io.raw.row_length`): the x size is wrong, and the slices come out sheared or scrambled (QA: a wrong
    shape of the right byte count read as noise and was taken for unaligned slices)."""
    from core.io.raw import row_length

    try:
        plane = cache.file_plane(str(path), json.dumps(options, sort_keys=True), path.stat().st_mtime,
                                 int(shape[0]) // 2)
    except (OSError, ValueError, TypeError, MemoryError):
        return None
    x = int(shape[2])
    likely = x if plane is None else row_length(plane)
    if likely == x:
        return None
    return (f"The rows of this layout do not line up: the voxels of the middle slice are most like those {likely} "
            f"further on, not {x}, so its rows are likely {likely} voxels long. Check the sizes (x is the one that "
            "runs fastest in the file; z and x swapped read like this).")


CROP_HELP = ("Analyse only a box of the volume, in voxels of the file (before any downsampling): leave out the current "
             "collector, the separator, empty margins, or the corners outside a reconstruction's circle, which would "
             "otherwise count as pore around the particles they cut.")


def crop_picker(path: Path, options: dict, shape, kind: str, token: str,
                phase_map: str | None = None, proposed: list[list[int]] | None = None
                ) -> tuple[list[list[int]] | None, bool]:
    """The add form's *Region of interest*: a range of voxels along z, y and x (a slider each, the whole volume
    by default, or ``proposed``, on, where given: :func:`data_bar_crop`) and the middle plane of the box with the
    box drawn on it.

    Returns
    -------
    (list of 3 [start, stop] or None, bool)
        The crop (stop excluded, voxels of the file; None for the whole volume), and whether it may be used (an
        empty range may not: the page says why).
    """
    with st.expander("Region of interest (crop)", icon=":material/crop:", expanded=proposed is not None,
                     key=state.k(state.ADD_CROP_EXPANDER, kind, token)):
        st.caption(CROP_HELP)
        # the sliders and the preview (a plane read from the file) only when asked for
        on = state.k(state.ADD_CROP, kind, token, "on")
        state.init(on, proposed is not None)
        if not st.toggle("Crop the volume", key=on):
            return None, True
        return _crop_controls(path, options, shape, lambda axis: state.k(state.ADD_CROP, kind, token, axis), proposed,
                              phase_map)


def _crop_controls(path: Path, options: dict, shape, key_of, initial,
                   phase_map: str | None = None) -> tuple[list[list[int]] | None, bool]:
    """The sliders of a crop (``key_of(axis)`` names one, ``initial`` the box they start at, None the whole) and
    the preview (in the phase colours of ``phase_map``, where given); returns what :func:`crop_picker` returns."""
    shape = [int(n) for n in shape]
    cols = st.columns(3)
    box = []
    for i, (col, axis, n) in enumerate(zip(cols, "zyx", shape)):
        if n < 2:
            box.append([0, n])
            continue
        key = key_of(axis)
        start = tuple(int(v) for v in initial[i]) if initial is not None else (0, n)
        state.init(key, start)
        lo, hi = col.slider(f"{axis} range (voxels)", 0, n, key=key)
        box.append([int(lo), int(hi)])
    if any(hi - lo < 1 for lo, hi in box):
        st.error("The box is empty along " + ", ".join(a for a, (lo, hi) in zip("zyx", box) if hi - lo < 1)
                 + ": give each range at least one voxel.")
        return None, False
    whole = all(lo == 0 and hi == n for (lo, hi), n in zip(box, shape))
    size = "×".join(str(hi - lo) for lo, hi in box)
    st.caption("The whole volume." if whole else f"Cropped to {size} voxels (z×y×x).")
    z = (box[0][0] + box[0][1] - 1) // 2
    try:
        plane = cache.file_plane(str(path), json.dumps(options, sort_keys=True), path.stat().st_mtime, z)
    except (OSError, ValueError, TypeError, MemoryError) as exc:
        st.caption(f"No preview: {one_sentence(exc)}")
        plane = None
    if plane is not None:
        st.image(render.upscale(crop_preview(plane, box[1], box[2], phase_map), 480), width=480,
                 caption=f"z = {z} (the middle of the box): the box bright, the rest dimmed")
    elif not whole:
        st.caption("No preview for a file this size stored in chunks: check the box on the sample's slices "
                   "once added.")
    return (None if whole else box), True


def crop_section(ws: Workspace, sample: Sample) -> None:
    """A file sample's region of interest, editable (the add form's sliders, at the box stored); saved for the
    next analysis, the analyses made before keep theirs."""
    spec = sample.input
    if sample.is_demo or not hasattr(spec, "crop"):
        return
    sid = sample.id
    so = dict(sample.source_options)
    read = {k: v for k, v in (so.get("read") or {}).items() if k not in ("crop", "align")}
    stored = (so.get("read") or {}).get("crop")
    aligned = (so.get("read") or {}).get("align") is not None
    title = "Region of interest (crop)" + (" · " + ", ".join(f"{a} {p}:{q}" for a, (p, q) in zip("zyx", stored))
                                           if stored else "")
    with st.expander(title, icon=":material/crop:", key=state.k(state.SAMPLE_EXPANDER, sid, "crop")):
        st.caption(("Stored: " + ", ".join(f"{a} {p}:{q}" for a, (p, q) in zip("zyx", stored))
                    + " (voxels of the file, stops excluded)." if stored else "Stored: the whole volume.")
                   + " " + CROP_HELP)
        # the sliders and the preview (a plane read from the file) only when asked for
        if not st.toggle("Change the region", key=state.k(state.EDIT_CROP_OPEN, sid)):
            return
        path = Path(spec.path)
        try:
            shape = so.get("shape") or cache.probe(str(path), json.dumps(read, sort_keys=True),
                                                   path.stat().st_mtime)["shape"]
        except (OSError, ValueError, TypeError, KeyError) as exc:
            st.error(f"The file cannot be read to change the region: {one_sentence(exc)}")
            return
        crop, ok = _crop_controls(path, read, shape, lambda axis: state.k(state.EDIT_CROP, sid, axis), stored,
                                  getattr(spec, "phase_map", None))
        changed = ok and (crop or None) != (stored or None)
        if st.button("Save region", key=state.k(state.EDIT_CROP_SAVE, sid), disabled=not changed,
                     help=None if changed else "The sliders hold the region stored."):
            new_read = {**read, "crop": crop} if crop is not None else read
            try:
                ws.update_sample(sid, source_options={**so, "read": new_read})
            except (ValueError, TypeError) as exc:
                st.error(one_sentence(exc, alone=True))
                return
            flash("success", "Saved the region of interest. It applies to the next analysis (Segment page); the "
                             "analyses made before keep the region they ran on."
                  + (" The slices' alignment was measured on the region before, so it was dropped: align them "
                     "again (the button under the warning)." if aligned else ""))
            st.rerun()


def cropped_shape(shape, crop) -> list[int]:
    """The shape of a volume of ``shape`` under ``crop`` (3 [start, stop], or None: the whole)."""
    return [int(n) for n in shape] if crop is None else [int(b) - int(a) for a, b in crop]


def crop_preview(plane: np.ndarray, ys, xs, phase_map: str | None = None) -> np.ndarray:
    """(H, W, 3) uint8: a plane in grey (0.5-99.5 % of its values), or in the phase colours of ``phase_map`` (an
    already-segmented file), outside the box ``ys`` × ``xs`` dimmed and the box outlined in yellow."""
    if phase_map:
        from core.codes import CBD, NMC

        from .phase_map_view import phase_slice_rgb

        names = {NMC: "nmc", CBD: "cbd"}
        rgb = phase_slice_rgb(plane, {int(v): names.get(c, "pore") for v, c in parse_phase_map(phase_map).items()})
    else:
        finite = plane[np.isfinite(plane)] if plane.dtype.kind == "f" else plane
        lo, hi = (np.percentile(finite, [0.5, 99.5]) if finite.size else (0.0, 1.0))
        rgb = render.grey_rgb(plane, lo, hi)
    inside = np.zeros(plane.shape, bool)
    inside[ys[0]:ys[1], xs[0]:xs[1]] = True
    rgb[~inside] = (rgb[~inside] * 0.35).astype(np.uint8)
    w = max(1, max(plane.shape) // 200)
    edge = inside.copy()
    edge[ys[0] + w:ys[1] - w, xs[0] + w:xs[1] - w] = False
    rgb[edge] = (255, 210, 0)
    return rgb


# --------------------------------------------------------------------------- the current sample


def details_section(ws: Workspace, sample: Sample) -> None:
    """The sample's metadata, editable, with its source; a warning when the latest analysis used another voxel size."""
    sid = sample.id
    with st.expander("Sample details", expanded=False, key=state.k(state.SAMPLE_EXPANDER, sample.id, "details")):
        meta = forms.sample_metadata(("edit", sid), name=sample.name, group=sample.group_label,
                                     taken=[s.name for s in ws.list_samples() if s.id != sid],
                                     spacing=sample.spacing, axis=sample.axis, side=sample.separator_side,
                                     shape=sample.source_options.get("shape"))
        if st.button("Save details", key=state.k(state.EDIT_SAVE, sid), disabled=meta is None) and meta is not None:
            try:
                ws.update_sample(sid, **meta.as_kwargs())
                flash("success", "Saved. Changed voxel size, axis or separator side apply to the next analysis.")
                st.rerun()
            except (ValueError, TypeError) as exc:
                st.error(one_sentence(exc, alone=True))
        st.caption(f"Source: `{display_path(sample.source)}`" if not sample.is_demo else f"Source: `{sample.source}`")
        if sample.downsample > 1:
            st.caption(f"Downsampled by {sample.downsample} when loaded: the voxel size above is the one analysed, "
                       f"{sample.downsample} × the file's ("
                       + " × ".join(f"{v / sample.downsample:g}" for v in sample.spacing) + " µm). To change the "
                       "factor, add the file again.")

    latest = ws.latest_analysis(sid)
    if latest is not None:
        for text in tables.changed_sentences(sample, latest):
            st.warning(text)


@st.fragment
def slice_viewer(ref: cache.VolumeRef, vol: np.ndarray, sample: Sample) -> None:
    """Three orthogonal slices with a shared contrast slider (a fragment: moving a slider reruns only this)."""
    from .phase_map_view import phase_codes_rgb

    sid = sample.id
    st.subheader("Orthogonal slices")
    presegmented = sample.input.presegmented
    if presegmented:
        from .charts import phase_legend_html

        st.caption(f"Already segmented (phase map `{sample.input.phase_map}`): the phases in their colours.")
        st.html(phase_legend_html())
        lo, hi = 0.0, 1.0
    else:
        state.init(state.k(state.VIEW_CONTRAST, sid), (1.0, 99.0))
        pct = st.slider("Contrast: grey-value percentiles mapped to black and white (%)", 0.0, 100.0,
                        key=state.k(state.VIEW_CONTRAST, sid), step=0.5)
        lo, hi = cache.contrast(ref, pct[0], pct[1])
    thin = slice_axis(vol.shape)
    if thin is None:
        cols = dict(enumerate(st.columns(3)))
    else:  # a single slice: its own plane only (the other two views are one pixel thin)
        cols = {thin: st.columns([2, 1])[0]}
    for axis, col in cols.items():
        n = vol.shape[axis]
        key = state.k(state.VIEW_INDEX, AXES[axis], sid, n)  # a new size (a crop changed): at its middle again
        state.init(key, n // 2)
        with col:
            if thin is None:
                idx = st.slider(f"{AXES[axis]} index (voxels, 0–{n - 1})", 0, max(n - 1, 1), key=key,
                                disabled=n <= 1)
            else:
                idx = 0
            sl = read_or_stop(cache.grey_slice, ref, axis, min(idx, n - 1))
            img = phase_codes_rgb(np.asarray(sl)) if presegmented else render.grey_rgb(sl, lo, hi)
            st.image(render.upscale(img, 360), caption=f"slice ⊥ {AXES[axis]} at {AXES[axis]} = {idx} "
                     f"({idx * sample.spacing[axis]:.1f} µm)", width="stretch")
    shown = ("read as phases through its phase map: pore blue, CBD yellow, NMC red." if presegmented
             else f"display range {lo + 0.0:.6g}–{hi + 0.0:.6g} grey units.")
    what = "A single slice (a 2D image, measured in its plane):" if thin is not None else "Volume"
    st.caption(f"{what} {'×'.join(map(str, vol.shape))} voxels (z×y×x), {vol.dtype}; {shown}")
    note = forms.thin_axis_note(vol.shape, sample.axis)
    if note:
        st.warning(note + " Set it under *Sample details*.")


def analyses_section(ws: Workspace, sample: Sample, analyses: list[Analysis]) -> None:
    """The sample's analyses (newest first) with, for one picked from them, its note, *Compare with this one* (the
    Compare page then shows it for this sample) and deletion with its files, after a confirmation tick."""
    if not analyses:
        return
    sid = sample.id
    with st.expander(f"Analyses of this sample ({len(analyses)})", icon=":material/history:",
                     key=state.k(state.SAMPLE_EXPANDER, sample.id, "analyses")):
        st.dataframe(tables.analyses_table(analyses), placeholder=tables.MISSING, hide_index=True, width="stretch",
                     column_config={"note": st.column_config.TextColumn("note", width="medium")})
        by_id = {a.id: a for a in analyses}
        done = [a for a in analyses if a.status == "done"]
        latest = done[0].id if done else None
        pinned = (st.session_state.get(state.CMP_PINS) or {}).get(sid)
        if st.session_state.get(state.k(state.AN_PICK, sid)) not in by_id:
            st.session_state[state.k(state.AN_PICK, sid)] = pinned if pinned in by_id else analyses[0].id

        def label(aid: int) -> str:
            a = by_id[aid]
            text = pins.analysis_label(a, latest_id=latest) if a.status == "done" else f"#{a.id} · {a.status}"
            return text + (" · on the Compare page" if aid == pinned else "")

        aid = st.selectbox("Analysis", list(by_id), key=state.k(state.AN_PICK, sid), format_func=label)
        a = by_id[aid]
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        note = c1.text_input(f"Note on analysis #{aid}", value=a.note, key=state.k(state.AN_NOTE, sid, aid),
                             max_chars=NOTE_MAX, placeholder="e.g. h raised for the cracked particles")
        if c2.button("Save note", key=state.k(state.AN_NOTE_SAVE, sid, aid), disabled=note.strip() == a.note):
            _act(lambda: ws.set_analysis_note(aid, note), f"Saved the note on analysis #{aid}.")
        if a.status == "done":
            if st.button("Compare with this one", key=state.k(state.AN_COMPARE, sid, aid),
                         icon=":material/query_stats:", disabled=aid == pinned,
                         help="The Compare page shows this analysis for this sample until you pick another there."):
                from .compare_view import pin_for_compare

                pin_for_compare(sid, aid, latest)
                flash("success", f"The Compare page now shows analysis #{aid} for '{sample.name}'.")
                st.rerun()
        reused = [b.id for b in analyses if b.provenance.get("phases_from_analysis") == aid]
        st.caption(f"Deleting analysis #{aid} removes it and its files (phases, labels, table, sweeps)"
                   + (f"; #{', #'.join(map(str, reused))} reused its phases and stay, but their recipes can no "
                      "longer be exported" if reused else "") + ". The sample and its other analyses stay.")
        ok = st.checkbox(f"Yes, delete analysis #{aid}", key=state.k(state.AN_DELETE_CONFIRM, sid, aid))
        if st.button("Delete analysis", key=state.k(state.AN_DELETE, sid, aid), disabled=not ok,
                     icon=":material/delete:"):
            _act(lambda: ws.delete_analysis(aid), f"Deleted analysis #{aid} of '{sample.name}' and its files.")


def _act(work, done: str) -> None:
    """Run a change of the catalogue, then flash ``done`` and rerun; its refusal in one sentence otherwise."""
    try:
        work()
    except (KeyError, ValueError, TypeError, OSError) as exc:
        st.error(one_sentence(exc, alone=True))
        return
    flash("success", done)
    st.rerun()


def _active_jobs(ws: Workspace, sample: Sample) -> list[Job]:
    """The sample's queued and running jobs (analyses, re-separations, sweeps), newest first."""
    return [j for j in JobStore(ws.root).list(states=ACTIVE) if j.sample_id == sample.id]


def delete_section(ws: Workspace, sample: Sample, analyses: list[Analysis]) -> None:
    """Delete the sample with its analyses, after a confirmation tick; its queued and running jobs are named there
    and asked to stop before it goes (QA: a job running on a deleted sample failed without saying why)."""
    sid = sample.id
    with st.expander("Delete this sample", icon=":material/delete:",
                     key=state.k(state.SAMPLE_EXPANDER, sample.id, "delete")):
        n = len(analyses)
        st.write(f"Deletes **{sample.name}** from the workspace with its {n} analys{'i' if n == 1 else 'e'}s and "
                 f"{'its' if n == 1 else 'their'} files"
                 + (" and the uploaded file." if "uploads" in sample.source else ". The source file is not touched."))
        for j in _active_jobs(ws, sample):
            st.write(f"Job #{j.id} ({j.title}) is {'running on' if j.state == 'running' else 'queued for'} it: "
                     "deleting the sample cancels it.")
        ok = st.checkbox("Yes, delete it", key=state.k(state.DELETE_CONFIRM, sid))
        if st.button("Delete sample", key=state.k(state.DELETE_BUTTON, sid), disabled=not ok, type="primary"):
            store = JobStore(ws.root)
            stopped = [store.cancel(j.id).id for j in _active_jobs(ws, sample)]  # (one queued since: it too)
            ws.delete_sample(sid)
            st.session_state[state.SAMPLE_ID] = None
            st.session_state[state.PENDING_SAMPLE] = None
            if widgets.url_sample() == sid:  # not read back as a link to a sample deleted since (QA walk 16)
                del st.query_params[widgets.URL_SAMPLE]
            flash("success", f"Deleted sample '{sample.name}'."
                  + (f" Asked job{'s' if len(stopped) > 1 else ''} #{', #'.join(map(str, stopped))} to stop."
                     if stopped else ""))
            st.rerun()


# --------------------------------------------------------------------------- attributes

OTHER_ATTRIBUTE = "other…"


def attributes_section(ws: Workspace, sample: Sample) -> None:
    """The sample's numeric attributes with units (C-rate, cycles, SOC or any named one): listed, set, removed.

    They put electrodes on an axis on the Compare page and travel with recipes.
    """
    sid = sample.id
    attrs = sample.attributes
    with st.expander(f"Attributes ({len(attrs)})" if attrs else "Attributes", expanded=False,
                     icon=":material/straighten:", key=state.k(state.SAMPLE_EXPANDER, sid, "attributes")):
        if attrs:
            st.dataframe(pd.DataFrame([{"attribute": a.name, "value": a.value, "unit": a.unit} for a in attrs]),
                         hide_index=True, placeholder=tables.MISSING,
                         column_config={"value": st.column_config.NumberColumn(format="%g")})
        else:
            st.caption("No attributes yet. Numbers such as the C-rate, cycle count or state of charge put "
                       "electrodes on an axis on the Compare page (a trend test across electrodes).")
        used = ws.attribute_units()
        choices = list(dict.fromkeys([*ATTRIBUTE_PRESETS, *used, OTHER_ATTRIBUTE]))

        def unit_of(n: str) -> str:
            return (used.get(n) or (ATTRIBUTE_PRESETS.get(n, ""),))[0]

        pick = st.selectbox("Attribute to set", choices, key=state.k(state.ATTR_NAME, sid),
                            format_func=lambda n: n if n == OTHER_ATTRIBUTE else f"{n} ({unit_of(n) or 'no unit'})")
        if pick == OTHER_ATTRIBUTE:
            c1, c2 = st.columns(2)
            name = c1.text_input("Name", key=state.k(state.ATTR_CUSTOM, sid), placeholder="e.g. temperature")
            unit = c2.text_input("Unit", key=state.k(state.ATTR_UNIT, sid), placeholder="e.g. °C")
        else:
            name, unit = pick, unit_of(pick)
        current = sample.attribute(name) if str(name).strip() else None
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        value = c1.number_input(f"Value ({unit})" if unit else "Value", key=state.k(state.ATTR_VALUE, sid, pick),
                                value=current.value if current is not None else None, format="%g",
                                placeholder="a number")
        if c2.button("Set", key=state.k(state.ATTR_SET, sid), disabled=value is None or not str(name).strip()) \
                and value is not None:
            set_attribute(ws, sample, str(name), float(value), str(unit))
        if attrs:
            c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
            gone = c1.selectbox("Remove an attribute", [a.name for a in attrs], key=state.k(state.ATTR_REMOVE, sid))
            if c2.button("Remove", key=state.k(state.ATTR_REMOVE_BUTTON, sid)):
                ws.set_attributes(sid, [a for a in attrs if a.name != gone])
                flash("success", f"Removed {gone} from '{sample.name}'.")
                st.rerun()


def set_attribute(ws: Workspace, sample: Sample, name: str, value: float, unit: str) -> None:
    """Add or replace one attribute of ``sample`` and rerun; shows the refusal in one sentence instead.

    A name already used in the workspace with another unit is refused (the Compare page puts samples with the
    same attribute on one axis)."""
    name, unit = name.strip(), unit.strip()
    try:
        new = Attribute(name, value, unit)
        known = {n.casefold(): (n, u) for n, u in ws.attribute_units().items()}
        if name.casefold() in known and unit not in known[name.casefold()][1]:
            n, units = known[name.casefold()]
            raise ValueError(f"{n} is already given in {' / '.join(repr(u) for u in units)} in this workspace; "
                             f"use that unit, not {unit!r}")
        kept = [a for a in sample.attributes if a.name.casefold() != name.casefold()]
        at = next((i for i, a in enumerate(sample.attributes) if a.name.casefold() == name.casefold()), len(kept))
        ws.set_attributes(sample.id, kept[:at] + [new] + kept[at:])
    except (ValueError, TypeError) as exc:
        st.error(one_sentence(exc, alone=True))
        return
    flash("success", f"Set {new.label} = {new.value:g} for '{sample.name}'.")
    st.rerun()


def dataset_scope(opts: dict) -> tuple[str, ...]:
    """The part of a new file's form scope that says which of its datasets is read (an HDF5 file's): the form's
    fields are filled again from the dataset chosen, not kept from the one before; () for a file of one."""
    return (str(opts["dataset"]),) if opts.get("dataset") else ()


def dataset_name(name: str, opts: dict) -> str:
    """A new sample's default name: the file's, with the dataset read where the file holds several (two datasets
    of one file got the same name)."""
    ds = str(opts.get("dataset") or "").strip("/")
    return f"{name} {ds.replace('/', '_')}" if ds else name


#: Grey values of a float scan beyond this in magnitude are not a reconstruction's (attenuation, a few units; counts,
#: up to about 1e6): the file was read with the wrong byte order or voxel type.
HUGE_GREY = 1e15


def huge_values_note(values: np.ndarray, dtype) -> str | None:
    """A sentence where a float volume's sampled grey values (``values``) reach :data:`HUGE_GREY` (QA: a big-endian
    raw file read as little-endian held values up to 3e38 and was added without a word), else None."""
    if np.dtype(dtype).kind != "f":
        return None
    v = np.asarray(values, np.float64)
    v = np.abs(v[np.isfinite(v)])
    if not v.size or v.max() < HUGE_GREY:
        return None
    return (f"This volume holds grey values up to {v.max():.1e} ({np.mean(v >= HUGE_GREY):.1%} of those sampled "
            f"{HUGE_GREY:.0e} or more), no scan's: read with the wrong byte order or voxel type? For a raw file, "
            "add it again with its layout (byte order, dtype); delete this sample below.")
