"""Single slices: a 2D image (an SEM or FIB-SEM cross-section, one tomography slice) as a one-voxel-thick volume.

A 2D file loads as a ``(1, Y, X)`` volume, and every step runs on it as on a
volume.  The separation then works in the slice's plane (the distance
transform has no background along the thin axis), but a measure made for
3D would read the slab: every particle would touch the volume edge through
the slab's own top and bottom, its "volume" would be an area times one
voxel, and a size threshold in µm³ would drop or merge whole particles.  So
where the volume is one voxel thick along exactly one axis
(:func:`slice_axis`), the measures that have a 2D meaning take it:

- the contact shares and the detachment are read along each particle's
  outline in the plane (the slab's two faces are not surface);
- ``touches_edge`` means the image's border;
- ``equiv_diameter_um`` is the diameter of the circle of the particle's area
  (:func:`circle_diameter`); the size rules of the separation (``min_volume_um3``,
  ``merge_ratio``) weigh each region as the ball of that diameter and a
  contact by its length against that diameter (:mod:`core.particles`);
- ``depth_frac`` is NaN where the thickness axis runs across the slice (for a
  cross-section, pick the in-plane thickness axis);
- ``surface_area_um2`` and ``sphericity`` are NaN (no surface is imaged);
  ``volume_um3`` stays the slab's (area times the voxel's size across it).

What a slice cannot give: the particles' 3D size and shape (a section through
a ball is a disc no wider than it, mostly smaller), nor which particles touch
above or below the plane.
"""

from __future__ import annotations

import numpy as np

__all__ = ["circle_diameter", "face_structure", "is_single_slice", "plane_axes", "slice_axis", "slice_warning"]


def slice_axis(shape) -> int | None:
    """The axis along which a volume of ``shape`` (Z, Y, X) is a single slice, or None.

    A single slice: one voxel along exactly one axis and more than one along the other two.

    Examples
    --------
    >>> slice_axis((1, 754, 1012)), slice_axis((40, 40, 40)), slice_axis((1, 1, 9))
    (0, None, None)
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3:
        raise ValueError(f"shape must have 3 axes (z, y, x), got {shape}")
    thin = [a for a, n in enumerate(shape) if n == 1]
    return thin[0] if len(thin) == 1 else None


def is_single_slice(shape) -> bool:
    """Whether a recorded ``shape`` (e.g. an analysis's ``provenance["input_shape"]``; None or not three axes:
    unknown, False) is a single slice (:func:`slice_axis`)."""
    return shape is not None and len(shape) == 3 and slice_axis(shape) is not None


def recorded_single_slice(shape) -> bool | None:
    """Whether a recorded ``shape`` (an analysis's ``provenance["input_shape"]``) is a single slice; None where no
    shape of three axes was recorded (unknown, unlike :func:`is_single_slice`'s False)."""
    return is_single_slice(shape) if shape is not None and len(shape) == 3 else None


def face_structure(flat_axes=()) -> np.ndarray:
    """The 3D face (6-neighbour) structure, with no step along ``flat_axes`` (a single slice's, or any axis too thin
    to erode along: morphology stays in the plane).

    Examples
    --------
    >>> int(face_structure().sum()), int(face_structure((0,)).sum())
    (7, 5)
    """
    from scipy import ndimage as ndi

    face = ndi.generate_binary_structure(3, 1)
    for axis in flat_axes:
        keep = [slice(None)] * 3
        keep[axis] = slice(1, 2)
        flat = np.zeros_like(face)
        flat[tuple(keep)] = face[tuple(keep)]
        face = flat
    return face


def plane_axes(axis: int) -> tuple[int, int]:
    """The two axes of the plane of a slice across ``axis``."""
    return tuple(a for a in range(3) if a != axis)  # type: ignore[return-value]


def circle_diameter(area_um2) -> np.ndarray:
    """Diameter (µm) of the circle of each area (µm²): ``2 sqrt(A / π)``; (N,) float64."""
    return 2.0 * np.sqrt(np.asarray(area_um2, np.float64) / np.pi)


def slice_warning(axis: int, thickness_axis: int) -> str:
    """The one-paragraph warning of an analysis of a single slice across ``axis`` (the pipeline warns it)."""
    return (f"A single slice (one voxel along {'zyx'[axis]}): the particles are separated and measured in its "
            "plane: the contact shares and the detachment along their outlines, equiv_diameter_um the diameter of "
            "the circle of each particle's area, touches_edge the image border; surface area and sphericity are "
            "not measured"
            + (", nor the depth (the thickness axis runs across the slice: for a cross-section, choose the "
               "in-plane thickness axis)" if axis == thickness_axis else "")
            + ". A slice does not give the particles' 3D sizes: a section through a ball is a disc, mostly "
              "smaller than the ball.")
