"""Slice images as RGB arrays (numpy only; no streamlit, no science).

Colours
-------
Phases: pore, CBD and NMC in a colour-blind-safe triple (Paul Tol's "bright":
blue, yellow, red).  Detachment: one sequential colormap (``viridis``) on the
fixed range 0..1, the same in every image and in the colour bars of
:mod:`ui.charts`; particles without a detachment value (no open interface) are
light grey.
"""

from __future__ import annotations

import numpy as np

PHASE_COLOURS: dict[int, tuple[int, int, int]] = {
    0: (68, 119, 170),    # pore  - blue
    1: (204, 187, 68),    # CBD   - yellow
    2: (238, 102, 119),   # NMC   - red
}
PHASE_HEX = {code: "#%02x%02x%02x" % rgb for code, rgb in PHASE_COLOURS.items()}
DETACHMENT_CMAP = "viridis"
DETACHMENT_RANGE = (0.0, 1.0)
NAN_COLOUR = (200, 200, 200)
#: Grey levels of an already-segmented sample's phase codes drawn as the background of particles (pore, CBD, NMC):
#: its CBD dark grey, far from :data:`NAN_COLOUR`, so that a CBD region (mid-grey at the codes' contrast) does not
#: read as a particle with no open interface; its NMC near white, as a scan shows it.
PHASE_GREYS = (0, 70, 235)
HIGHLIGHT = (255, 0, 200)  # magenta: outside the detachment colormap, visible on bright NMC
AXES = ("z", "y", "x")


def take_slice(volume, axis: int, index: int, window=None) -> np.ndarray:
    """2D slice ``index`` perpendicular to ``axis`` (clipped into range), as a new array.

    ``volume``: an ndarray, or any array that numpy-style indexing reads (a
    Zarr array reads only the chunks the slice crosses).  ``window``:
    ``((r0, r1), (c0, c1))``, only those pixels of the slice (along its two
    axes; :func:`core.phases.preview_window`), the only part read; None: all.
    """
    n = volume.shape[axis]
    i = int(np.clip(index, 0, n - 1))
    at: list = [slice(None)] * 3
    at[axis] = i
    if window is not None:
        for j, (lo, hi) in zip([k for k in range(3) if k != axis], window):
            at[j] = slice(int(lo), int(hi))
    return np.array(volume[tuple(at)], copy=True, order="C")


def depth_index(depth_frac: float, n: int, separator_side: str, extent=None) -> int:
    """Slice index along the thickness axis at a depth fraction (0 = separator side), of the ``n`` slices or, with
    ``extent`` (the analysis's ``depth_extent``: the electrode's first and last slice), of the electrode's."""
    d = float(np.clip(depth_frac, 0, 1))
    pos = d if separator_side != "end" else 1 - d
    first, last = (0, n - 1) if not extent else (int(extent[0]), int(extent[1]))
    return int(round(first + pos * (last - first)))


def grey_rgb(slice2d: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map grey values ``lo..hi`` to 0..255 and return an (H, W, 3) uint8 image."""
    a = slice2d.astype(np.float32)
    scale = 255.0 / max(float(hi) - float(lo), 1e-12)
    g = np.clip((a - float(lo)) * scale, 0, 255)
    g = np.nan_to_num(g, nan=0).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def phase_overlay(base: np.ndarray, phases2d: np.ndarray, opacity: float) -> np.ndarray:
    """Blend phase colours over an RGB image with ``opacity`` (0..1)."""
    lut = np.zeros((256, 3), np.float32)
    for code, rgb in PHASE_COLOURS.items():
        lut[code] = rgb
    col = lut[phases2d]
    a = float(np.clip(opacity, 0, 1))
    return (base.astype(np.float32) * (1 - a) + col * a).round().astype(np.uint8)


def outlines(labels2d: np.ndarray, width: int = 1) -> np.ndarray:
    """Boolean mask of label pixels with a 4-neighbour of another value (inner boundary), ``width`` pixels wide
    (the boundary grown by ``width - 1`` pixels within the labels: outlines that stay visible where a big slice
    is shown smaller than its pixels)."""
    lab = labels2d
    edge = np.zeros(lab.shape, bool)
    edge[1:, :] |= lab[1:, :] != lab[:-1, :]
    edge[:-1, :] |= lab[:-1, :] != lab[1:, :]
    edge[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    edge[:, :-1] |= lab[:, :-1] != lab[:, 1:]
    edge &= lab > 0
    if width > 1 and edge.any():
        from scipy import ndimage as ndi

        edge = ndi.binary_dilation(edge, iterations=int(width) - 1, mask=lab > 0)
    return edge


def outline_width(shape, shown: int = 400) -> int:
    """Outline width (pixels) that stays about a screen pixel wide where a slice of ``shape`` is shown about
    ``shown`` pixels across: 1 up to that size, then one more per ``shown`` pixels of its longer side."""
    return max(1, -(-max(int(n) for n in shape) // int(shown)))


def _cmap_lut(name: str = DETACHMENT_CMAP, n: int = 256) -> np.ndarray:
    from matplotlib import colormaps

    return (colormaps[name](np.linspace(0, 1, n))[:, :3] * 255).round().astype(np.uint8)


def value_colours(values: np.ndarray, vmin: float = 0.0, vmax: float = 1.0, cmap: str = DETACHMENT_CMAP) -> np.ndarray:
    """(N, 3) uint8 colours of ``values`` on ``cmap`` over ``vmin..vmax``; NaN -> light grey."""
    lut = _cmap_lut(cmap)
    v = np.asarray(values, np.float64)
    t = np.clip((v - vmin) / max(vmax - vmin, 1e-12), 0, 1)
    idx = np.nan_to_num(t * (len(lut) - 1), nan=0).round().astype(int)
    out = lut[idx]
    out[~np.isfinite(v)] = NAN_COLOUR
    return out


def label_colour_table(labels: np.ndarray, values: np.ndarray, max_label: int, **kw) -> np.ndarray:
    """(max_label + 1, 3) uint8: colour of each particle label by its value; label 0 black."""
    table = np.zeros((max_label + 1, 3), np.uint8)
    labels = np.asarray(labels, np.int64)
    ok = (labels > 0) & (labels <= max_label)
    table[labels[ok]] = value_colours(np.asarray(values)[ok], **kw)
    return table


def particle_overlay(
    base: np.ndarray, labels2d: np.ndarray, colours: np.ndarray, *, mode: str = "outline",
    fill_opacity: float = 0.8, highlight: int | None = None, width: int = 1,
) -> np.ndarray:
    """Colour particles over an RGB image.

    Parameters
    ----------
    base : (H, W, 3) uint8
    labels2d : (H, W) int
    colours : (L + 1, 3) uint8
        Colour per label (:func:`label_colour_table`).
    mode : {"outline", "fill"}
        Outlines only, or filled particles (``fill_opacity``) with outlines.
    highlight : int, optional
        Label drawn with a thick magenta outline and a magenta tint.
    width : int
        Outline width in pixels (:func:`outline_width` for a big slice shown small).
    """
    out = base.astype(np.float32)
    lab = np.where(labels2d < len(colours), labels2d, 0)
    inside = lab > 0
    col = colours[lab].astype(np.float32)
    if mode == "fill":
        a = float(fill_opacity)
        out[inside] = out[inside] * (1 - a) + col[inside] * a
    edge = outlines(lab, width)
    out[edge] = col[edge]
    if highlight is not None and highlight > 0:
        sel = labels2d == highlight
        out[sel] = out[sel] * 0.65 + np.array(HIGHLIGHT, np.float32) * 0.35
        ring = outlines(sel.astype(np.int32), width)
        # thicken the ring by one pixel so it stands out
        ring2 = ring.copy()
        ring2[1:, :] |= ring[:-1, :]
        ring2[:, 1:] |= ring[:, :-1]
        out[ring2] = HIGHLIGHT
    return out.round().astype(np.uint8)


def upscale(img: np.ndarray, target: int = 480) -> np.ndarray:
    """Nearest-neighbour enlargement by an integer factor so the longer side is about ``target`` pixels."""
    f = max(1, int(target) // max(img.shape[:2]))
    if f == 1:
        return img
    return np.repeat(np.repeat(img, f, axis=0), f, axis=1)


def phase_codes_grey(codes2d: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: a slice of phase codes (0 pore / 1 CBD / 2 NMC) in :data:`PHASE_GREYS`, as the background
    of an already-segmented sample's particles (other values black)."""
    lut = np.zeros(256, np.uint8)
    lut[:3] = PHASE_GREYS
    g = lut[np.clip(np.asarray(codes2d), 0, 255).astype(np.uint8)]
    return np.repeat(g[..., None], 3, axis=2)
