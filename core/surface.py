"""One particle's surface, face by face: what each voxel face of it touches.

The particle table counts a particle's open surface in voxel faces
(:func:`core._kernels.face_areas`): each face of the particle (its cracks
filled) belongs to the phase across it, pore, CBD, another particle (or NMC
not labelled) or the volume's edge, and ``detachment`` is the pore faces' area
over the pore and CBD faces' area.  :func:`particle_faces` lists those faces
for one particle, with where they lie, so that a view can show *where* on the
particle the detachment is (the 3D page); their areas are the table's
``area_*_um2`` of that particle.

Nothing here imports streamlit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._validate import normalize_spacing
from .codes import CBD, NMC

#: What a face touches, in the order of the codes in :attr:`ParticleFaces.kind`.
FACE_KINDS = ("pore", "cbd", "particle", "edge")
PORE_FACE, CBD_FACE, PARTICLE_FACE, EDGE_FACE = range(4)


@dataclass(frozen=True, eq=False)
class ParticleFaces:
    """The voxel faces of one particle's surface (cracks filled), each with what it touches.

    Attributes
    ----------
    label : int
    voxel : (n, 3) int64
        The particle's voxel (z, y, x index in the volume) each face belongs to.
    axis : (n,) int8
        The axis the face is normal to (0 z, 1 y, 2 x).
    side : (n,) int8
        -1: the face towards the lower index along ``axis``; +1: towards the higher.
    kind : (n,) uint8
        :data:`FACE_KINDS` code: 0 pore, 1 CBD, 2 another particle (or unlabelled NMC), 3 the volume's edge.
    spacing : (3,) float
        Voxel size in µm (z, y, x).
    """

    label: int
    voxel: np.ndarray
    axis: np.ndarray
    side: np.ndarray
    kind: np.ndarray
    spacing: tuple[float, float, float]

    def areas(self) -> dict[str, float]:
        """Area (µm²) of the faces of each kind, ``{"pore": ..., "cbd": ..., "particle": ..., "edge": ...}``."""
        sz, sy, sx = self.spacing
        face_area = np.array([sy * sx, sz * sx, sz * sy])[self.axis]
        return {k: float(face_area[self.kind == i].sum()) for i, k in enumerate(FACE_KINDS)}

    @property
    def detachment(self) -> float:
        """Pore faces' area over the pore and CBD faces' area (NaN where it has neither), as the table's."""
        a = self.areas()
        open_ = a["pore"] + a["cbd"]
        return a["pore"] / open_ if open_ > 0 else math.nan


def window_around(centroid_um, extent_um, spacing, shape, margin: int = 2) -> tuple[slice, slice, slice]:
    """A window (3 slices) that holds a particle whole with ``margin`` voxels around it, from its table row: every
    voxel of a particle lies within its extent of its centroid along each axis.

    Parameters
    ----------
    centroid_um, extent_um : (3,) float
        The particle's ``centroid_*_um`` and ``extent_*_um`` (z, y, x).
    spacing : (3,) float
    shape : (3,) int
        The volume's shape.
    """
    sp = normalize_spacing(spacing)
    out = []
    for c, e, s, n in zip(centroid_um, extent_um, sp, shape):
        lo = int(math.floor((float(c) - float(e)) / s)) - margin
        hi = int(math.ceil((float(c) + float(e)) / s)) + margin + 1
        out.append(slice(max(lo, 0), min(hi, int(n))))
    return tuple(out)  # type: ignore[return-value]


def particle_faces(labels, phases, label: int, spacing=None, *, window: tuple[slice, slice, slice] | None = None,
                   no_data_code: int | None = None) -> ParticleFaces:
    """The voxel faces of one particle's surface and what each touches, as the particle table counts them.

    Parameters
    ----------
    labels : (Z, Y, X) int array or array-like
        The analysis's particle labels (solid voxels; its enclosed cracks are filled here, as the table fills
        them); anything numpy-style indexing reads (a Zarr array reads only the window).
    phases : (Z, Y, X) array or array-like
        Phase codes 0 pore, 1 CBD, 2 NMC, same shape.
    label : int
        The particle (> 0).
    spacing : float or (3,) float, optional
        Voxel size in µm; default 1.
    window : tuple of 3 slices, optional
        A part of the volume that holds the particle with at least one voxel around it wherever it does not reach
        the volume's faces (:func:`window_around`); default the whole volume.
    no_data_code : int, optional
        A phase code read as outside the field of view (its faces count as the volume's edge).

    Returns
    -------
    ParticleFaces

    Raises
    ------
    ValueError
        Shapes differ, a label below 1, the particle not in the window, or the window cuts it.
    """
    from .metrics import fill_cracks

    shape = tuple(int(n) for n in labels.shape)
    if tuple(int(n) for n in phases.shape) != shape or len(shape) != 3:
        raise ValueError(f"labels {shape} and phases {tuple(phases.shape)} must be one 3D shape")
    if isinstance(label, (bool, np.bool_)) or int(label) != label or label < 1:
        raise ValueError(f"label must be a whole number of at least 1, got {label!r}")
    label = int(label)
    sp = normalize_spacing(spacing)
    if window is None:
        window = (slice(0, shape[0]), slice(0, shape[1]), slice(0, shape[2]))
    window = tuple(slice(*s.indices(n)[:2]) for s, n in zip(window, shape))
    lab = fill_cracks(np.asarray(labels[window]))
    ph = np.asarray(phases[window])
    mine = lab == label
    if not mine.any():
        raise ValueError(f"particle {label} is not in the window {_window_text(window)}")
    for a in range(3):
        s = window[a]
        first = np.take(mine, 0, axis=a).any()
        last = np.take(mine, mine.shape[a] - 1, axis=a).any()
        if (first and s.start > 0) or (last and s.stop < shape[a]):
            raise ValueError(f"the window {_window_text(window)} cuts particle {label}: widen it by a voxel")
    origin = np.array([s.start for s in window])
    voxels, axes, sides, kinds = [], [], [], []
    for a in range(3):
        for side in (-1, 1):
            # the particle's voxels whose neighbour on this side is not the particle
            nb = np.zeros_like(mine)
            src = [slice(None)] * 3
            dst = [slice(None)] * 3
            if side == 1:
                src[a], dst[a] = slice(1, None), slice(None, -1)
            else:
                src[a], dst[a] = slice(None, -1), slice(1, None)
            nb[tuple(dst)] = mine[tuple(src)]
            face = mine & ~nb
            idx = np.argwhere(face)
            if not len(idx):
                continue
            n_idx = idx.copy()
            n_idx[:, a] += side
            inside = (n_idx[:, a] >= 0) & (n_idx[:, a] < mine.shape[a])
            kind = np.full(len(idx), EDGE_FACE, np.uint8)
            ni = n_idx[inside]
            other = lab[ni[:, 0], ni[:, 1], ni[:, 2]]
            p = ph[ni[:, 0], ni[:, 1], ni[:, 2]]
            k = np.full(len(ni), PORE_FACE, np.uint8)
            k[p == CBD] = CBD_FACE
            k[p == NMC] = PARTICLE_FACE
            if no_data_code is not None:
                k[p == no_data_code] = EDGE_FACE
            k[other > 0] = PARTICLE_FACE
            kind[inside] = k
            voxels.append(idx + origin)
            axes.append(np.full(len(idx), a, np.int8))
            sides.append(np.full(len(idx), side, np.int8))
            kinds.append(kind)
    return ParticleFaces(label, np.concatenate(voxels).astype(np.int64), np.concatenate(axes),
                         np.concatenate(sides), np.concatenate(kinds), sp)


def _window_text(window) -> str:
    return ", ".join(f"{a} {s.start}:{s.stop}" for a, s in zip("zyx", window))


__all__ = ["CBD_FACE", "EDGE_FACE", "FACE_KINDS", "PARTICLE_FACE", "PORE_FACE", "ParticleFaces", "particle_faces",
           "window_around"]
