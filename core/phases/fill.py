"""A fill outside the reconstructed region: one exact grey value on the volume's faces that the centre lacks.

A reconstruction holds no data outside its field of view, and a rotated, registered or padded volume none in its
added corners; tools write one value there (0, the lowest, or the highest of the type).  Thresholds alone would
read that fill as pore (or NMC), and the particles it cuts would get "pore" faces and look detached (or grow into
it).  So the fill is found voxel by voxel (:func:`fill_region`: the fill connected to its z plane's border), held
as no material (pore in the phases, whatever method made them) and left out of the measures: a particle's face to
it counts as one to the volume's edge (:data:`core._kernels.NO_DATA`), as where the volume's box cuts a particle.
Its spike would also pull the three-class Otsu that the suggested thresholds start from, so the thresholds leave
its value out (:func:`core.phases.threshold._image_model`'s ``exclude``); where it reaches the central block the
blur and the pure grey values are read on (a section under about 180² voxels), they are read beside it
(:func:`core.phases.threshold._without_fill`, ``core.pipeline._data_box``), and the phase refinement leaves the
phases next to it as thresholded (``core.pipeline._near_fill``).  A fill of the highest value (which thresholds
read as NMC) is held as no material the same way.  ``bench/RESULTS.md`` section fill_effect: with the fill's faces
counted as the volume's edge the table's median stays near the volume's without the fill.
:func:`fill_reading` finds it: the lowest value of the faces, or the highest where it is the type's highest (for
whole-number types; a bright material that a face holds and the centre lacks is not a fill), that holds at least
:data:`FILL_MIN_FACE_SHARE` of the face voxels, while the central box (the middle half along each axis) holds it
at most :data:`FILL_CENTRE_RATIO` as often.  Pores clipped to the lowest value of an 8-bit export hold it as often in
the centre as on the faces, so they are not taken for a fill.  What to do about it is to crop the volume to the
region with data.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DISC_MIN_IOU", "FILL_CENTRE_RATIO", "FILL_MIN_FACE_SHARE", "PLANES", "data_box", "fill_message",
           "fill_reading", "fill_region", "fov_disc"]

#: Share of the face voxels the fill value must hold (the corners outside a circular field of view inscribed in a
#: square section are 21 % of its area, and more of its border).
FILL_MIN_FACE_SHARE = 0.05
#: The central box may hold the value at most this fraction as often as the faces.
FILL_CENTRE_RATIO = 0.1
#: An axis shorter than this has no faces of its own in the test (a single slice: its four edges only).
_MIN_AXIS = 8
#: A field of view is taken for a disc (:func:`fov_disc`) where the disc of its area at its centroid covers it
#: with at least this intersection over union.
DISC_MIN_IOU = 0.98
#: The z planes read, as fractions of the depth: the two faces and three planes between.
PLANES = (0.0, 0.25, 0.5, 0.75, 1.0)


def _plane(v, z: int) -> np.ndarray:
    """Plane ``z`` as a (Y, X) array (read as a box: a lazily read volume reads only the chunks it crosses)."""
    return np.asarray(v[z : z + 1])[0]


def fill_reading(volume, planes=PLANES) -> dict | None:
    """The fill of a greyscale volume's faces, or None.

    Read on a few z planes only (``planes``, fractions of the depth): their four edges, and the whole plane where
    it is a z face of the volume, are the faces; the middle half of each other plane along y and x is the centre.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray or lazily read array-like
        Greyscale (a memory map or a lazy volume is read only on those planes).
    planes : sequence of float
        Which z planes, as fractions of the depth (0 and 1 are the z faces).

    Returns
    -------
    dict or None
        ``value`` (the grey value), ``end`` (``"lowest"`` / ``"highest"``), ``face_share`` (of the face voxels read
        holding it) and ``centre_share`` (of the central ones); :func:`fill_message` puts it in words.
    """
    nz, ny, nx = (int(n) for n in volume.shape)
    in_plane = ny >= _MIN_AXIS and nx >= _MIN_AXIS
    if not in_plane:
        return None
    faces, centre = [], []
    for z in sorted({int(round(f * (nz - 1))) for f in planes}):
        p = _plane(volume, z)
        if nz >= _MIN_AXIS and z in (0, nz - 1):
            faces.append(p.reshape(-1))
            continue
        faces += [p[0], p[-1], p[1:-1, 0], p[1:-1, -1]]
        centre.append(p[ny // 4 : ny - ny // 4, nx // 4 : nx - nx // 4].reshape(-1))
    face = np.concatenate(faces)
    if face.dtype.kind == "f":
        face = face[np.isfinite(face)]
    if face.size == 0 or not centre:
        return None
    middle = np.concatenate(centre)
    for end, value in (("lowest", face.min()), ("highest", face.max())):
        if end == "highest" and face.dtype.kind in "iu" and value != np.iinfo(face.dtype).max:
            continue  # a fill at the top is the type's highest value (a bright material at a face is not one)
        face_share = float(np.count_nonzero(face == value)) / face.size
        if face_share < FILL_MIN_FACE_SHARE:
            continue
        centre_share = float(np.count_nonzero(middle == value)) / max(1, middle.size)
        if centre_share <= FILL_CENTRE_RATIO * face_share:
            return {"value": float(value), "end": end, "face_share": face_share, "centre_share": centre_share}
    return None


def fill_message(reading: dict) -> str:
    """The warning of a :func:`fill_reading`, with what the analysis does about it and what to do."""
    head = (f"{reading['face_share']:.0%} of the voxels on the volume's faces (and {reading['centre_share']:.1%} "
            f"of the central ones) hold exactly {reading['value']:g}, the {reading['end']} grey value: a fill outside "
            "the reconstructed region (the corners outside a circular field of view, the padding of a rotated or "
            "registered volume). ")
    crop = "(Samples page: Region of interest; command line: --crop)."
    return (head + "The analysis holds it as no material and counts a particle's faces to it as the volume's "
            "edge, as where the volume's box cuts a particle: the particles it cuts are judged by the surface they "
            "show (or left out on the Compare page with the other edge particles), and the phase shares are those "
            "of the field of view. To analyse the region with data alone, crop the volume to it " + crop)


def data_box(volume: np.ndarray, value: float, *, region: np.ndarray | None = None) -> list[list[int]] | None:
    """A box of the volume that holds no voxel of the fill ``value``: a crop for it (3 ``[start, stop]``).

    The planes at both ends of z that are all (99 % or more) fill are left out; then the columns (y, x) that
    hold the fill (its voxels connected to their plane's border, as :func:`fill_region`) in any plane left are
    marked, and the bounding box of the others shrinks one row or column at
    a time, from the side with the most marked pixels, until it holds none (for the disc of a circular field
    of view: close to its inscribed square).  The volume is read once.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
    value : float
        The fill (:func:`fill_reading`'s ``value``).
    region : (Z, Y, X) bool ndarray, optional
        :func:`fill_region` of the volume where the caller has it (its planes are then not labelled again).

    Returns
    -------
    list of 3 [start, stop] or None
        None where no voxel is free of the fill.
    """
    v = volume
    nz = v.shape[0]
    share = np.array([np.count_nonzero(np.asarray(v[z]) == value) / v[z].size for z in range(nz)])
    kept = np.flatnonzero(share < 0.99)
    if kept.size == 0:
        return None
    from scipy import ndimage as ndi

    z0, z1 = int(kept[0]), int(kept[-1]) + 1
    dirty = np.zeros(v.shape[1:], bool)
    for z in range(z0, z1):  # the fill of each plane: its voxels of the value reaching the plane's border
        if region is not None:
            dirty |= region[z]
            continue
        plane = np.asarray(v[z]) == value
        if plane.any():  # (a pore voxel inside the disc clipped to the fill's value is not fill: QA walk 9, a
            dirty |= _border_connected(plane, ndi)  # disc of radius 58 cropped to 7x6 voxels around such specks)
    clean = np.argwhere(~dirty)
    if clean.size == 0:
        return None
    (y0, x0), (y1, x1) = clean.min(axis=0), clean.max(axis=0) + 1
    sat = np.pad(dirty.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))

    def count(a0, a1, b0, b1):  # marked pixels in rows a0:a1, columns b0:b1
        return int(sat[a1, b1] - sat[a0, b1] - sat[a1, b0] + sat[a0, b0])

    while y0 < y1 and x0 < x1 and count(y0, y1, x0, x1):
        sides = {"top": count(y0, y0 + 1, x0, x1), "bottom": count(y1 - 1, y1, x0, x1),
                 "left": count(y0, y1, x0, x0 + 1), "right": count(y0, y1, x1 - 1, x1)}
        # the most marked pixels; between equals, the side that shortens the longer extent (a disc: a square)
        side = max(sides, key=lambda k: (sides[k], (y1 - y0) if k in ("top", "bottom") else (x1 - x0)))
        if side == "top":
            y0 += 1
        elif side == "bottom":
            y1 -= 1
        elif side == "left":
            x0 += 1
        else:
            x1 -= 1
    if y0 >= y1 or x0 >= x1:
        return None
    return [[z0, z1], [int(y0), int(y1)], [int(x0), int(x1)]]


def fill_region(volume, value: float) -> np.ndarray:
    """Where a fill is: the voxels of ``value`` connected to the border of their own z plane (in-plane, by faces).

    A circular field of view's fill lies outside its disc in every z plane (it reaches the plane's border); a pore
    of the same value inside the disc (an 8-bit export's clipped pores) does not, so it stays pore.  A single
    slice (:func:`core.slices.slice_axis`) is one plane, whatever its axis.  The analysis counts a particle's face
    to this region as one to the volume's edge (:data:`core._kernels.NO_DATA`), not to pore.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray or lazily read array-like
        Greyscale (read a plane at a time).
    value : float
        The fill (:func:`fill_reading`'s ``value``).

    Returns
    -------
    (Z, Y, X) bool ndarray
    """
    from scipy import ndimage as ndi

    from ..slices import slice_axis

    shape = tuple(int(n) for n in volume.shape)
    out = np.zeros(shape, bool)
    thin = slice_axis(shape) if len(shape) == 3 else None
    if thin is not None and thin != 0:  # one plane across y or x: flooded in its own plane
        plane = np.asarray(volume).squeeze(thin) == value
        out[...] = np.expand_dims(_border_connected(plane, ndi), thin)
        return out
    for z in range(shape[0]):
        plane = _plane(volume, z) == value
        if plane.any():
            out[z] = _border_connected(plane, ndi)
    return out


def _border_connected(plane: np.ndarray, ndi) -> np.ndarray:
    """The pixels of a 2D bool mask connected (by edges) to the image's border."""
    lab, n = ndi.label(plane)
    if n == 0:
        return plane
    rim = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    keep = np.zeros(n + 1, bool)
    keep[rim] = True
    keep[0] = False
    return keep[lab]


def fov_disc(region_plane: np.ndarray, spacing_yx=(1.0, 1.0)) -> float | None:
    """The radius (µm) of a circular field of view, from one plane of :func:`fill_region`, or None.

    The field of view is the plane less the fill; its disc is the one of the same area (µm²) at its centroid,
    kept where it covers the field of view with an intersection over union of at least :data:`DISC_MIN_IOU` (a
    disc cut by the volume's box, or the padding of a rotated volume, is not one).  The Compare page's
    Miles–Lantuéjoul weights use it (:func:`core.compare.particle_weights`' ``disc_radius_um``).

    Parameters
    ----------
    region_plane : (Y, X) bool ndarray
        True on the fill.
    spacing_yx : (2,) float, µm

    Returns
    -------
    float or None
    """
    fov = ~np.asarray(region_plane, bool)
    sy, sx = (float(v) for v in spacing_yx)
    n = int(np.count_nonzero(fov))
    if n == 0 or fov.all():
        return None
    radius = float(np.sqrt(n * sy * sx / np.pi))
    yy, xx = np.nonzero(fov)
    cy, cx = yy.mean() * sy, xx.mean() * sx
    gy, gx = np.ogrid[: fov.shape[0], : fov.shape[1]]
    disc = (gy * sy - cy) ** 2 + (gx * sx - cx) ** 2 <= radius * radius
    iou = np.count_nonzero(disc & fov) / np.count_nonzero(disc | fov)
    return round(radius, 6) if iou >= DISC_MIN_IOU else None
