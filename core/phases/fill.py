"""A fill outside the reconstructed region: one exact grey value on the volume's faces that the centre lacks.

A reconstruction holds no data outside its field of view, and a rotated, registered or padded volume none in its
added corners; tools write one value there (0, the lowest, or the highest of the type).  The analysis cannot tell
that fill from a phase: it reads it as pore (or NMC), so the particles it cuts get "pore" faces and look detached.
:func:`fill_reading` finds it: the lowest or the highest value of the faces that holds at least
:data:`FILL_MIN_FACE_SHARE` of the face voxels, while the central box (the middle half along each axis) holds it
at most :data:`FILL_CENTRE_RATIO` as often.  Pores clipped to the lowest value of an 8-bit export hold it as often in
the centre as on the faces, so they are not taken for a fill.  What to do about it is to crop the volume to the
region with data.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FILL_CENTRE_RATIO", "FILL_MIN_FACE_SHARE", "fill_message", "fill_reading"]

#: Share of the face voxels the fill value must hold (the corners outside a circular field of view inscribed in a
#: square section are 21 % of its area, and more of its border).
FILL_MIN_FACE_SHARE = 0.05
#: The central box may hold the value at most this fraction as often as the faces.
FILL_CENTRE_RATIO = 0.1
#: Voxels of the central box and of the whole volume sampled (strided) at most.
_SAMPLE = 2_000_000
#: An axis shorter than this has no faces of its own in the test (a single slice: its four edges only).
_MIN_AXIS = 8


def _sample(v: np.ndarray, box: tuple[slice, ...]) -> np.ndarray:
    """At most about :data:`_SAMPLE` voxels of the box, on a regular grid (no copy of the box is made)."""
    ranges = [range(*b.indices(n)) for b, n in zip(box, v.shape)]
    step = max(1, int(np.ceil((np.prod([len(r) for r in ranges], dtype=np.float64) / _SAMPLE) ** (1 / 3))))
    return np.asarray(v[tuple(slice(r.start, r.stop, step) for r in ranges)]).reshape(-1)


def fill_reading(volume: np.ndarray) -> dict | None:
    """The fill of a greyscale volume's faces, or None.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        Greyscale (a memory map is read only on its faces and a strided sample).

    Returns
    -------
    dict or None
        ``value`` (the grey value), ``end`` (``"lowest"`` / ``"highest"``), ``face_share`` (of the face voxels
        holding it), ``centre_share`` and ``share`` (of a regular sample of the central box and of the volume);
        :func:`fill_message` puts it in words.
    """
    v = np.asarray(volume) if not hasattr(volume, "shape") else volume
    axes = [a for a in range(3) if v.shape[a] >= _MIN_AXIS]
    if len(axes) < 2:
        return None
    faces = []
    for a in axes:
        for i in (0, v.shape[a] - 1):
            at = [slice(None)] * 3
            at[a] = i
            faces.append(np.asarray(v[tuple(at)]).reshape(-1))
    face = np.concatenate(faces)
    if face.dtype.kind == "f":
        face = face[np.isfinite(face)]
    if face.size == 0:
        return None
    centre_box = tuple(slice(n // 4, n - n // 4) if a in axes else slice(None) for a, n in enumerate(v.shape))
    centre = _sample(v, centre_box)
    for end, value in (("lowest", face.min()), ("highest", face.max())):
        face_share = float(np.count_nonzero(face == value)) / face.size
        if face_share < FILL_MIN_FACE_SHARE:
            continue
        centre_share = float(np.count_nonzero(centre == value)) / max(1, centre.size)
        if centre_share <= FILL_CENTRE_RATIO * face_share:
            whole = _sample(v, (slice(None),) * 3)
            return {"value": float(value), "end": end, "face_share": face_share, "centre_share": centre_share,
                    "share": float(np.count_nonzero(whole == value)) / max(1, whole.size)}
    return None


def fill_message(reading: dict) -> str:
    """The warning of a :func:`fill_reading`, with what to do about it."""
    return (f"{reading['share']:.0%} of the voxels ({reading['face_share']:.0%} of those on the volume's faces, "
            f"{reading['centre_share']:.1%} of the central ones) hold exactly {reading['value']:g}, the "
            f"{reading['end']} grey value: a fill outside the reconstructed region (the corners outside a circular "
            "field of view, the padding of a rotated or registered volume). The analysis reads it as "
            f"{'pore' if reading['end'] == 'lowest' else 'NMC'}, so the particles it cuts "
            f"{'look detached' if reading['end'] == 'lowest' else 'grow into it'}: crop the volume to the region "
            "with data (Samples page: Region of interest; command line: --crop).")
