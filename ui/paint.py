"""Painting phases on a slice: the brush canvas, canvas pixels -> scribbles, and the classifier preview.

The canvas is ``streamlit-drawable-canvas`` (imported only inside :func:`canvas`:
it refuses to be imported outside a running app).  What it returns is the RGBA
image of the strokes alone (transparent elsewhere); :func:`strokes_from_rgba`
turns it into per-voxel codes of the slice, which :func:`apply_strokes` lays
over the slice's stored scribbles.  The canvas keeps its strokes between
reruns, so applying them again changes nothing.

The preview trains :func:`core.classify.train` on the painted slices only
(2D features, computed once per slice and kept by :func:`slice_features`:
they do not depend on the strokes, so a stroke only retrains the learner) and
classifies the shown slice on its kept features.  Its learner is the light
one of :meth:`core.classify.ClassifierParams.preview` (the first
:data:`core.classify.PREVIEW_TREES` trees of the full forest), so that it
follows a stroke within about a second on a 512² slice; a full analysis
classifies every z-slice the same way with the full forest, so the preview of
a z-slice is that slice of the full run up to the trees left out.

Numpy-only helpers (:func:`strokes_from_rgba`, :func:`apply_strokes`,
:func:`scribble_rgb`, :func:`low_confidence_rgb`, :func:`low_confidence_where`) are tested without Streamlit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import streamlit as st

from core.classify import UNPAINTED, ClassifierParams, PhaseClassifier, features, train, volume_range
from core.scribbles import Scribbles, classifier_pairs, slice_of

from . import cache, render

#: Brushes: label -> (code written in the scribbles, stroke colour).  The eraser writes "not painted".
BRUSHES: dict[str, tuple[int, str]] = {
    "pore": (0, render.PHASE_HEX[0]),
    "CBD": (1, render.PHASE_HEX[1]),
    "NMC": (2, render.PHASE_HEX[2]),
    "eraser": (UNPAINTED, "#ffffff"),
}
#: Canvas pixels more transparent than this (0-255) are not painted (the soft edge of a stroke).
ALPHA_MIN = 128
#: Largest RGB distance from a brush colour for a canvas pixel to count as that brush.
COLOUR_TOLERANCE = 60.0
#: Value of :func:`strokes_from_rgba` where the canvas holds no stroke.
NO_STROKE = -1
#: Colour of the low-confidence pixels in the preview (magenta: outside the phase colours).
LOW_CONFIDENCE_RGB = render.HIGHLIGHT
#: Pixels this close (chessboard distance, px) to an edge between the preview's phases count as "at an edge".
EDGE_REACH = 2
#: Longest side of the canvas on screen, pixels (a slice is enlarged by a whole factor up to it).
CANVAS_TARGET = 512
#: A part of a slice, ((r0, r1), (c0, c1)) pixels (:func:`full_resolution_window`).
Window = tuple[tuple[int, int], tuple[int, int]]


def _hex_rgb(h: str) -> np.ndarray:
    h = h.lstrip("#")
    return np.array([int(h[i:i + 2], 16) for i in (0, 2, 4)], np.float32)


def scale_factor(slice_shape: tuple[int, int], target: int = CANVAS_TARGET) -> int:
    """Whole enlargement of a slice on the canvas (1 for a slice as large as ``target`` or larger)."""
    return max(1, int(target) // max(int(slice_shape[0]), int(slice_shape[1])))


def fit_canvas(img: np.ndarray, target: int = CANVAS_TARGET) -> np.ndarray:
    """``img`` ((H, W, ...)) as shown on the canvas: itself where its longer side fits ``target`` pixels, else
    shrunk to that side (nearest pixel at each canvas pixel's centre; a canvas wider than the page's column is
    cropped there, and the rest of the slice could be neither seen nor painted).  :func:`strokes_from_rgba` maps
    the strokes back to every voxel whatever the canvas size."""
    h, w = int(img.shape[0]), int(img.shape[1])
    scale = int(target) / max(h, w)
    if scale >= 1:
        return img
    hh, ww = max(1, round(h * scale)), max(1, round(w * scale))
    rows = np.minimum(((np.arange(hh) + 0.5) * h / hh).astype(np.intp), h - 1)
    cols = np.minimum(((np.arange(ww) + 0.5) * w / ww).astype(np.intp), w - 1)
    return img[rows][:, cols]


def strokes_from_rgba(rgba: np.ndarray, slice_shape: tuple[int, int]) -> np.ndarray:
    """Per-voxel brush codes of a canvas image.

    Parameters
    ----------
    rgba : (H', W', 4) uint8
        The canvas's strokes (``image_data``), transparent where nothing is drawn.
        Any size: it is sampled at the centre of each voxel of the slice.
    slice_shape : (H, W)

    Returns
    -------
    (H, W) int16
        0 pore, 1 CBD, 2 NMC, 255 erased, :data:`NO_STROKE` (-1) where no brush
        painted (transparent, or a colour no brush has).
    """
    a = np.asarray(rgba)
    if a.ndim != 3 or a.shape[2] != 4:
        raise ValueError(f"the canvas image must be (H, W, 4) RGBA, got shape {a.shape}")
    h, w = int(slice_shape[0]), int(slice_shape[1])
    rows = np.minimum(((np.arange(h) + 0.5) * a.shape[0] / h).astype(np.intp), a.shape[0] - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * a.shape[1] / w).astype(np.intp), a.shape[1] - 1)
    px = a[rows][:, cols].astype(np.float32)
    codes = np.array([c for c, _ in BRUSHES.values()], np.int16)
    colours = np.stack([_hex_rgb(hx) for _, hx in BRUSHES.values()])
    dist = np.linalg.norm(px[..., None, :3] - colours, axis=-1)  # (H, W, brushes)
    nearest = np.argmin(dist, axis=-1)
    out = codes[nearest]
    out[(px[..., 3] < ALPHA_MIN) | (np.min(dist, axis=-1) > COLOUR_TOLERANCE)] = NO_STROKE
    return out


def apply_strokes(stored: np.ndarray, strokes: np.ndarray, window: Window | None = None) -> np.ndarray:
    """``stored`` scribbles ((H, W) uint8) with the canvas ``strokes`` laid over them (a new array).

    ``window``: the part of the slice the canvas showed at full resolution (:func:`full_resolution_window`);
    ``strokes`` then has that part's shape.  None: ``strokes`` covers the whole slice.
    """
    out = np.array(stored, dtype=np.uint8, copy=True)
    part = out if window is None else out[window[0][0]:window[0][1], window[1][0]:window[1][1]]
    if part.shape != np.shape(strokes):
        raise ValueError(f"the strokes' shape {np.shape(strokes)} is not that of the part painted {part.shape}")
    hit = strokes != NO_STROKE
    part[hit] = strokes[hit].astype(np.uint8)
    return out


def full_resolution_window(slice_shape: tuple[int, int], centre: tuple[int, int],
                           target: int = CANVAS_TARGET) -> Window:
    """The part of a slice painted one canvas pixel a voxel: at most ``target`` pixels along each side, centred
    on ``centre`` (row, column) and moved inside the slice where it would leave it; ((r0, r1), (c0, c1))."""
    out = []
    for n, c in zip(slice_shape, centre):
        n, size = int(n), min(int(n), int(target))
        start = min(max(int(c) - size // 2, 0), n - size)
        out.append((start, start + size))
    return tuple(out)


def scribble_rgb(rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """An RGB slice with its painted voxels in their brush colours (a new array)."""
    out = np.array(rgb, copy=True)
    for code, colour in render.PHASE_COLOURS.items():
        out[labels == code] = colour
    return out


def low_confidence_rgb(rgb: np.ndarray, confidence: np.ndarray, threshold: float) -> np.ndarray:
    """An RGB image with the pixels whose classifier confidence is below ``threshold`` in magenta."""
    out = np.array(rgb, copy=True)
    out[np.asarray(confidence) < threshold] = LOW_CONFIDENCE_RGB
    return out


def low_confidence_where(phases: np.ndarray, confidence: np.ndarray, threshold: float,
                         reach: int = EDGE_REACH) -> tuple[float, float]:
    """Where the preview is unsure: the share of the slice below ``threshold``, and the share of those pixels
    that lie within ``reach`` px of an edge between two of the preview's phases.

    Parameters
    ----------
    phases : (H, W) uint8
        The preview's phases.
    confidence : (H, W) float
        Its largest class probability per pixel.
    threshold : float
    reach : int, px
        Chessboard distance to the nearest pixel of another phase.

    Returns
    -------
    (low, at_edges) : (float, float)
        ``at_edges`` is 0 where nothing is below ``threshold``.
    """
    from scipy import ndimage as ndi
    from skimage.segmentation import find_boundaries

    ph = np.asarray(phases)
    low = np.asarray(confidence) < threshold
    n_low = int(low.sum())
    if n_low == 0:
        return 0.0, 0.0
    # both sides of every face between two phases
    edge = find_boundaries(ph, connectivity=1, mode="thick")
    if reach > 1:
        edge = ndi.binary_dilation(edge, np.ones((3,) * ph.ndim, bool), iterations=int(reach) - 1)
    return n_low / low.size, float((low & edge).sum()) / n_low


# --------------------------------------------------------------------------- the classifier preview


def pair_spacing(spacing, axis: int) -> tuple[float, float, float]:
    """The voxel size of a slice across ``axis`` as a training pair records it (its own axis first)."""
    sp = tuple(float(s) for s in spacing)
    return (sp[axis], *(s for i, s in enumerate(sp) if i != axis))


@st.cache_data(max_entries=8, show_spinner=False)
def reference(ref: cache.VolumeRef) -> tuple[float, float]:
    """The volume's range (:func:`core.classify.volume_range`): a narrow slice is scaled by it, as the full
    analysis scales it (:func:`core.classify.slice_range`)."""
    return volume_range(cache.volume(ref))


@st.cache_resource(max_entries=24, show_spinner=False)
def slice_features(ref: cache.VolumeRef, spacing: tuple, axis: int, index: int,
                   params: ClassifierParams) -> np.ndarray:
    """(1, H, W, F) float32, read-only: the 2D features of one slice (kept: a stroke reuses them)."""
    f = features(slice_of(cache.volume(ref), axis, index), pair_spacing(spacing, axis), params,
                 reference=reference(ref))
    f.flags.writeable = False
    return f


@dataclass(frozen=True, eq=False)
class Preview:
    """The classifier's phases on the shown slice.

    Attributes
    ----------
    phases : (H, W) uint8
    confidence : (H, W) float32
        Largest class probability per pixel.
    train_s, predict_s : float
        Seconds to train (features of new painted slices included) and to classify the slice.
    """

    phases: np.ndarray
    confidence: np.ndarray
    train_s: float
    predict_s: float


def _digest(s: Scribbles) -> str:
    return s.digest()


@st.cache_resource(max_entries=4, show_spinner=False, hash_funcs={Scribbles: _digest})
def classifier(ref: cache.VolumeRef, spacing: tuple, scribbles: Scribbles,
               params: ClassifierParams) -> tuple[PhaseClassifier, float]:
    """The preview's classifier of these scribbles (``params.preview()``: the full forest's first trees, trained
    on the painted slices' kept features) and its training seconds."""
    t0 = time.perf_counter()
    images, labels, spacings = classifier_pairs(cache.volume(ref), scribbles, spacing)
    feats = [slice_features(ref, spacing, a, i, params) for a, i in scribbles.slices]
    clf = train(images, labels, spacings, params.preview(), features=feats, references=[reference(ref)] * len(images))
    return clf, time.perf_counter() - t0


@st.cache_data(max_entries=16, show_spinner=False, hash_funcs={Scribbles: _digest})
def preview(ref: cache.VolumeRef, spacing: tuple, scribbles: Scribbles, axis: int, index: int,
            params: ClassifierParams) -> Preview:
    """The preview classifier's phases and confidence on slice ``(axis, index)`` (``params`` are the full
    analysis' ones; the preview uses ``params.preview()``); ValueError (one sentence) when fewer than two phases
    are painted."""
    clf, train_s = classifier(ref, spacing, scribbles, params)
    t0 = time.perf_counter()
    f = slice_features(ref, spacing, axis, index, params)
    phases, conf = clf.predict(slice_of(cache.volume(ref), axis, index), pair_spacing(spacing, axis), features=f,
                               reference=reference(ref))
    return Preview(phases[0], conf[0], train_s, time.perf_counter() - t0)


# --------------------------------------------------------------------------- the canvas


def canvas(key: str, background: np.ndarray, brush: str, width_px: int) -> np.ndarray | None:
    """The drawing canvas over ``background`` ((H, W, 3) uint8, shown at its size); the strokes' RGBA image
    ((H, W, 4) uint8), or None before the first stroke."""
    from PIL import Image
    from streamlit_drawable_canvas import st_canvas  # only inside a running app

    h, w = background.shape[:2]
    result = st_canvas(stroke_width=int(width_px), stroke_color=BRUSHES[brush][1], background_image=Image.fromarray(
        background), height=int(h), width=int(w), drawing_mode="freedraw", return_image_data=True, key=key)
    data = result.image_data
    return None if data is None else np.asarray(data)
