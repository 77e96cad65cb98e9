"""Per-particle measurements: size, shape, cracks, depth and interface shares.

The central output is a tidy :class:`pandas.DataFrame` with one row per particle
and units in the column names (see :data:`COLUMNS`).  Interface areas come from
exact voxel-face counting with anisotropic face areas; the surface area used for
sphericity comes from a marching-cubes mesh of the filled particle.

Definitions
-----------
filled particle
    The particle's solid voxels plus every background region (pore or CBD) that
    it alone encloses: its internal cracks.
crack_fraction
    Crack voxels / filled-particle voxels.
sphericity
    ``π^(1/3) (6 V)^(2/3) / A`` with the marching-cubes area ``A``; NaN for
    particles of fewer than :data:`MIN_VOXELS_FOR_SHAPE` voxels.
area_*_um2
    Area of the filled particle's voxel faces that touch pore, CBD, another
    particle (or unlabelled NMC) and the volume edge.  Faces to the particle's
    own cracks are not surface.
frac_*
    Each area divided by their sum (the particle's total face area).
detachment
    ``area_pore / (area_pore + area_cbd)``: the share of the particle's interface
    with the electrolyte-filled network (neither particle nor edge) that faces pore
    instead of CBD.  NaN when that denominator is 0; ``detachment_note`` says why.
extent_{z,y,x}_um
    Side lengths of the filled particle's axis-aligned bounding box
    (voxel count along the axis times the spacing); truncated for
    particles that touch the volume edge.  Used for edge-truncation
    (Miles–Lantuéjoul) weights in :mod:`core.compare`.
depth_frac
    Centroid position along the thickness axis, 0 at the separator side and 1
    at the current-collector side: of the electrode where the table is made
    with ``depth_from="electrode"`` (its faces found where the NMC share of
    a slice reaches half its plateau, :func:`electrode_extent`, so that a
    margin of pore or mounting medium beyond the electrode is not depth;
    clipped to 0..1), else of the imaged volume.

A single slice (one voxel thick along one axis, e.g. a 2D image) is measured
in its plane (:mod:`core.slices`): the areas and shares are those of the
outline (face areas: outline length times the voxel's size across the
slice; the slice's own two faces are not surface), ``touches_edge`` means
the image border, ``equiv_diameter_um`` is the circle of the particle's
area, ``surface_area_um2`` and ``sphericity`` are NaN, and so is
``depth_frac`` where the thickness axis runs across the slice.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd

from . import _kernels as K
from ._validate import check_choice, check_labels, check_phases, normalize_spacing
from .codes import CBD, NMC
from .slices import circle_diameter, plane_axes, slice_axis

Side = Literal["auto", "start", "end"]

#: Particles with fewer (crack-filled) voxels get NaN sphericity.
MIN_VOXELS_FOR_SHAPE: int = 27

#: Columns of the particle table, in order.
COLUMNS: tuple[str, ...] = (
    "label",
    "n_voxels",
    "volume_um3",
    "solid_volume_um3",
    "equiv_diameter_um",
    "surface_area_um2",
    "sphericity",
    "centroid_z_um",
    "centroid_y_um",
    "centroid_x_um",
    "extent_z_um",
    "extent_y_um",
    "extent_x_um",
    "depth_frac",
    "touches_edge",
    "area_cbd_um2",
    "area_pore_um2",
    "area_particle_um2",
    "area_edge_um2",
    "frac_cbd",
    "frac_pore",
    "frac_particle",
    "frac_edge",
    "detachment",
    "detachment_note",
    "crack_fraction",
)

#: The per-particle measures among :data:`COLUMNS`: what a comparison may test between electrodes (the id, the edge
#: flag and the note left out).
MEASURES: tuple[str, ...] = tuple(c for c in COLUMNS if c not in ("label", "touches_edge", "detachment_note"))

#: What each column of :data:`COLUMNS` holds, in one sentence each (reports carry them beside the tables and their
#: CSV; the README's column list says more).
COLUMN_MEANINGS: dict[str, str] = {
    "label": "the particle's id: the value of its voxels in the labels volume",
    "n_voxels": "its NMC voxels (its internal cracks not counted)",
    "volume_um3": "its volume with its internal cracks filled (µm³)",
    "solid_volume_um3": "the volume of its NMC only: n_voxels times the voxel volume (µm³)",
    "equiv_diameter_um": "the diameter of the ball of volume_um3 (µm)",
    "surface_area_um2": "the area of its crack-filled surface by marching cubes (µm²); smaller than the sum of the "
                        "area_* columns, which count the voxel faces' staircase",
    "sphericity": "π^(1/3) (6 volume_um3)^(2/3) / surface_area_um2; empty for fewer than 27 voxels",
    "centroid_z_um": "its centroid along z, from the analysed volume's first voxel (µm)",
    "centroid_y_um": "its centroid along y, from the analysed volume's first voxel (µm)",
    "centroid_x_um": "its centroid along x, from the analysed volume's first voxel (µm)",
    "extent_z_um": "the side of its bounding box along z (µm)",
    "extent_y_um": "the side of its bounding box along y (µm)",
    "extent_x_um": "the side of its bounding box along x (µm)",
    "depth_frac": "where it lies through the electrode: 0 at the separator side, 1 at the current collector, of the "
                  "electrode's own extent (a margin of pore or separator beyond it is not depth) unless the analysis "
                  "measured over the imaged volume (depth_from)",
    "touches_edge": "True where a face of the analysed volume cuts it (its size is then truncated)",
    "area_cbd_um2": "the area of its voxel faces touching CBD (µm²)",
    "area_pore_um2": "the area of its voxel faces touching pore (µm²)",
    "area_particle_um2": "the area of its voxel faces touching another particle (µm²)",
    "area_edge_um2": "the area of its voxel faces on the analysed volume's faces (µm²)",
    "frac_cbd": "area_cbd_um2 as a share of its total voxel-face area",
    "frac_pore": "area_pore_um2 as a share of its total voxel-face area",
    "frac_particle": "area_particle_um2 as a share of its total voxel-face area",
    "frac_edge": "area_edge_um2 as a share of its total voxel-face area",
    "detachment": "area_pore_um2 / (area_pore_um2 + area_cbd_um2): 0 wholly on CBD, 1 wholly facing pore; empty (NaN) "
                  "where it touches neither",
    "detachment_note": "why detachment is empty; empty where it is a number",
    "crack_fraction": "its enclosed crack voxels as a share of its crack-filled voxels",
}


#: A column's title with its unit, for an axis or a heading (:func:`column_title`); others are read from their names.
COLUMN_TITLES: dict[str, str] = {
    "detachment": "detachment index (0–1)",
    "depth_frac": "depth (0 = separator side, 1 = current collector)",
    "equiv_diameter_um": "equivalent diameter (µm)",
    "volume_um3": "volume (µm³)",
    "solid_volume_um3": "solid volume (µm³)",
    "surface_area_um2": "surface area (µm²)",
    "sphericity": "sphericity (–, 1 = sphere)",
    "crack_fraction": "crack fraction (share of particle volume)",
    "n_voxels": "size (voxels)",
    "label": "particle label (id)",
}
_SUFFIX_UNITS = (("_um3", "µm³"), ("_um2", "µm²"), ("_um", "µm"))  # a particle-table column's unit, by its name


def column_unit(column: str) -> str:
    """The unit of a particle-table column, from its name ("µm" for ``equiv_diameter_um``), or "" (a share, a
    count, an index)."""
    return next((unit for suffix, unit in _SUFFIX_UNITS if column.endswith(suffix)), "")


def column_title(column: str) -> str:
    """A particle-table column's title with its unit ("equivalent diameter (µm)"), for an axis or a heading."""
    if column in COLUMN_TITLES:
        return COLUMN_TITLES[column]
    for suffix, unit in _SUFFIX_UNITS:
        if column.endswith(suffix):
            return f"{column[: -len(suffix)].replace('_', ' ')} ({unit})"
    if column.startswith("frac_"):
        return f"share of surface facing {column[5:]} (0–1)"
    return column.replace("_", " ")


def fill_cracks(labels: np.ndarray) -> np.ndarray:
    """Assign to each particle the background regions that it alone encloses.

    Parameters
    ----------
    labels : (Z, Y, X) int ndarray
        Particle labels, 0 = not a particle.

    Returns
    -------
    filled : (Z, Y, X) int32 ndarray
        A copy of ``labels`` with enclosed cracks set to their particle's
        label.  A background region open to the outside of the volume, or
        bordering two or more particles, stays 0.  A crack cut by the volume
        edge still counts as enclosed when it is enclosed within the cut face
        (see :func:`core._kernels.outside_reach`).
    """
    labels = check_labels(labels)
    filled = labels.astype(np.int32, copy=True)
    _fill_cracks_inplace(filled)
    return filled


def _fill_cracks_inplace(lab: np.ndarray, outside: np.ndarray | None = None) -> None:
    """Fill cracks into ``lab`` in place; ``outside``: ``K.outside_reach(lab)`` when the caller has it."""
    reached = K.outside_reach(lab) if outside is None else outside  # nonzero labels block the flood
    K.assign_cracks(lab, reached)


def cbrt_rounded(x: np.ndarray) -> np.ndarray:
    """Correctly rounded cube root of float64 values: the same bits on every CPU.

    ``np.cbrt`` dispatches to SIMD or libm code that differs by CPU (the same
    numpy gave 2.3487082447881824 on an Intel Xeon and 2.348708244788183, one
    unit in the last place off, on an AMD EPYC, where it missed the correctly
    rounded root for about half of random inputs), and the particle table is
    meant to replay byte for byte.  One Newton step in extended precision from
    ``np.cbrt``'s value, then an exact rational check of the few values that lie
    near a rounding tie.

    Parameters
    ----------
    x : (N,) float64, finite, >= 0

    Returns
    -------
    (N,) float64
    """
    from fractions import Fraction

    x = np.asarray(x, np.float64)
    y = np.cbrt(x)
    yl, xl = y.astype(np.longdouble), x.astype(np.longdouble)
    with np.errstate(invalid="ignore", divide="ignore"):
        refined = np.where(y > 0, yl - (yl * yl * yl - xl) / (3 * yl * yl), yl)
    out = refined.astype(np.float64)
    ulp = np.spacing(out).astype(np.longdouble)
    with np.errstate(invalid="ignore", divide="ignore"):
        off = np.abs((refined - out) / ulp)
    for i in np.flatnonzero((np.abs(off - 0.5) < 0.01) & (out > 0)):  # near a tie: decide exactly
        c, xi = float(out.flat[i]), Fraction(float(x.flat[i]))
        lo, hi = np.nextafter(c, -np.inf), np.nextafter(c, np.inf)
        if ((Fraction(c) + Fraction(hi)) / 2) ** 3 < xi:
            out.flat[i] = hi
        elif ((Fraction(lo) + Fraction(c)) / 2) ** 3 > xi:
            out.flat[i] = lo
    return out


@lru_cache(maxsize=32)
def _mc_lut(spacing: tuple[float, float, float]) -> np.ndarray:
    """Marching-cubes area (µm²) of each of the 256 binary 2x2x2 cell configurations."""
    from skimage.measure import marching_cubes, mesh_surface_area

    lut = np.zeros(256, np.float64)
    cell = np.zeros((2, 2, 2), np.float32)
    for code in range(1, 255):
        for k in range(8):
            cell[k >> 2, (k >> 1) & 1, k & 1] = (code >> k) & 1
        verts, faces, _, _ = marching_cubes(cell, 0.5, spacing=spacing, method="lewiner")
        lut[code] = mesh_surface_area(verts.astype(np.float64), faces)
    return lut


def surface_areas(filled: np.ndarray, spacing=None) -> np.ndarray:
    """Marching-cubes surface area of every label, in one pass.

    Parameters
    ----------
    filled : (Z, Y, X) int ndarray
        Labels (cracks filled); the volume is treated as padded with background.
    spacing : float or (3,) float, µm

    Returns
    -------
    area : (max_label + 1,) float64, µm²
        ``area[L]`` equals ``mesh_surface_area`` of ``marching_cubes`` of the
        zero-padded mask ``filled == L`` at level 0.5.
    """
    filled = check_labels(filled, name="filled")
    sp = normalize_spacing(spacing)
    n_lab = int(filled.max())
    return K.mc_areas(filled, n_lab, _mc_lut(sp))


#: :func:`side_warning`: the two ends' NMC shares must differ by at least this much for the separator side to be
#: read from them ...
SIDE_MIN_CONTRAST: float = 0.02
#: ... and by this many times :func:`side_noise`, how much the share changes between neighbouring slabs inside the
#: volume.  Measured: on 600 random crops (60-200 voxels, three axes) of the real calendered electrode, which shows no
#: separator, 542 are called ambiguous (178 by the fixed 0.02 alone); the demo electrodes' ends differ by 3.4x-6x
#: this bound (``test_metrics``).
SIDE_NOISE_FACTOR: float = 3.0


def side_noise(profile, *, slab_frac: float = 0.1) -> float:
    """How much a slab's NMC share changes from one slab to the next inside the volume.

    Parameters
    ----------
    profile : (N,) float
        NMC share of each slice along the thickness axis (:func:`nmc_profile`).
    slab_frac : float
        Share of the thickness in a slab (the end slabs of :func:`side_of_profile`).

    Returns
    -------
    float
        Robust standard deviation (1.4826 x the median absolute deviation) of the differences between consecutive
        inner slabs' mean shares: the end slabs are left out, a steady trend cancels, a single step (an electrode
        face inside the volume) does not count.  0 where there are fewer than three inner slabs.
    """
    f = np.asarray(profile, np.float64).ravel()
    k = max(1, int(round(f.size * slab_frac)))
    slabs = np.array([f[i:i + k].mean() for i in range(0, f.size - k + 1, k)])
    d = np.diff(slabs[1:-1])
    if d.size < 2:
        return 0.0
    return float(1.4826 * np.median(np.abs(d - np.median(d))))


def side_warning(profile, axis: int, *, slab_frac: float = 0.1) -> str | None:
    """One sentence when :func:`side_of_profile`'s answer cannot be trusted, else None.

    The side is ambiguous where the two end slabs' NMC shares differ by less than :data:`SIDE_MIN_CONTRAST` or
    by less than :data:`SIDE_NOISE_FACTOR` x :func:`side_noise`: no more than the share varies inside the volume.
    A single slice across ``axis`` has no depth: None.

    Parameters
    ----------
    profile : (N,) float
        :func:`nmc_profile` along ``axis``.
    axis : {0, 1, 2}
    slab_frac : float
    """
    if np.size(profile) < 2:  # a single slice across the axis: it has no depth to run either way
        return None
    side, contrast = side_of_profile(profile, slab_frac=slab_frac)
    noise = side_noise(profile, slab_frac=slab_frac)
    if contrast >= max(SIDE_MIN_CONTRAST, SIDE_NOISE_FACTOR * noise):
        return None
    end = "the start of the axis (index 0)" if side == "start" else "the end of the axis"
    bound = SIDE_NOISE_FACTOR * noise
    # (QA: "differs by 0.046, no more than ... (±0.023)" read as more, not less: the bound is said as compared)
    why = (f"less than {bound:.3f}, {SIDE_NOISE_FACTOR:g} times the {noise:.3f} it typically changes by from one slab to the "
           "next inside the volume" if bound > SIDE_MIN_CONTRAST else f"less than {SIDE_MIN_CONTRAST:g}")
    return (f"The separator side along axis {'zyx'[axis]} is ambiguous: the NMC share differs by {contrast:.3f} "
            f"between the two ends, {why}; so '{end}' was assumed and every depth may run the wrong way. "
            f"Set the separator side to be sure.")


def _resolve_separator_side(separator_side: str, axis: int, profile, *, stacklevel: int) -> str:
    """``separator_side`` checked, and for "auto" the side :func:`side_of_profile` reads from ``profile`` (the
    :func:`nmc_profile` along ``axis``), with :func:`side_warning`'s warning when that is ambiguous.
    ``stacklevel`` as for :func:`warnings.warn`, counted from here."""
    check_choice(axis, "axis", (0, 1, 2))
    check_choice(separator_side, "separator_side", ("auto", "start", "end"))
    if separator_side != "auto":
        return separator_side
    message = side_warning(profile, axis)
    if message is not None:
        warnings.warn(message, stacklevel=stacklevel)
    return side_of_profile(profile)[0]


def detect_separator_side(phases: np.ndarray, axis: int = 0, *, slab_frac: float = 0.1) -> tuple[str, float]:
    """Guess which end of ``axis`` faces the separator from the solid profile.

    The separator side of a cathode is its free (or separator-backed) surface,
    where the NMC fraction drops; the current-collector side is backed by the
    foil.  The end whose outer slab holds less NMC is taken as the separator.

    Parameters
    ----------
    phases : (Z, Y, X) uint8
    axis : {0, 1, 2}
        Thickness axis.
    slab_frac : float
        Share of the thickness averaged at each end.

    Returns
    -------
    side : {"start", "end"}
    contrast : float
        Difference of the NMC fraction between the two slabs (0 = undecided).
    """
    phases = check_phases(phases)
    check_choice(axis, "axis", (0, 1, 2))
    n = phases.shape[axis]
    k = max(1, int(round(n * slab_frac)))
    other = tuple(a for a in range(3) if a != axis)

    def slab(lo: int, hi: int) -> float:
        """Mean NMC fraction of the slices lo..hi-1 along ``axis`` (only those are compared: no volume-sized mask)."""
        where = [slice(None)] * 3
        where[axis] = slice(lo, hi)
        return float((phases[tuple(where)] == NMC).mean(axis=other).mean())

    first, last = slab(0, k), slab(n - k, n)
    return ("start" if first <= last else "end"), abs(last - first)


def side_of_profile(profile, *, slab_frac: float = 0.1) -> tuple[str, float]:
    """:func:`detect_separator_side`'s answer from a whole per-slice NMC profile (:func:`nmc_profile`): the same
    side and contrast, for a caller that has the profile anyway (the pipeline, the chunked engine)."""
    f = np.asarray(profile, np.float64).ravel()
    k = max(1, int(round(f.size * slab_frac)))
    first, last = float(f[:k].mean()), float(f[-k:].mean())
    return ("start" if first <= last else "end"), abs(last - first)


DepthFrom = Literal["volume", "electrode"]

#: :func:`electrode_extent`: a face of the electrode is where a slice's NMC share reaches this fraction of the
#: electrode's plateau (the share most slices hold).
EXTENT_LEVEL: float = 0.5
#: :func:`electrode_extent`: an extent under this share of the slices is not trusted (the volume's ends are kept).
EXTENT_MIN_SHARE: float = 0.25


def nmc_profile(phases: np.ndarray, axis: int = 0, *, data_voxels: np.ndarray | None = None) -> np.ndarray:
    """NMC share of each slice along ``axis``.

    Parameters
    ----------
    phases : (Z, Y, X) uint8
        Phase codes.
    axis : {0, 1, 2}
    data_voxels : (N,) int ndarray, optional
        The voxels of each slice inside the field of view (:func:`fov_voxels`), where a fill outside it is held
        as no material: each slice's share is of those (a slice without any is 0).  None: of the whole slice.

    Returns
    -------
    (N,) float64 ndarray
        ``N = phases.shape[axis]``; counted a slab of z-slices at a time (no volume-sized mask).
    """
    phases = check_phases(phases)
    check_choice(axis, "axis", (0, 1, 2))
    counts = np.zeros(phases.shape[axis], np.int64)
    step = max(1, (1 << 24) // max(1, phases.shape[1] * phases.shape[2]))
    for z in range(0, phases.shape[0], step):
        nmc = phases[z:z + step] == NMC
        if axis == 0:
            counts[z:z + step] = nmc.sum(axis=(1, 2))
        else:
            counts += nmc.sum(axis=(0, 3 - axis))
    per_slice = phases.size // max(phases.shape[axis], 1)
    return profile_of(counts, per_slice, data_voxels)


def profile_of(counts, per_slice: int, data_voxels=None) -> np.ndarray:
    """Per-slice NMC shares from NMC voxel counts: over the slice size, or over ``data_voxels`` (each slice's
    voxels inside the field of view; 0 where a slice has none)."""
    counts = np.asarray(counts, np.int64)
    if data_voxels is None:
        return counts / max(per_slice, 1)
    data = np.asarray(data_voxels, np.int64)
    if data.shape != counts.shape:
        raise ValueError(f"data_voxels needs one count per slice ({counts.shape[0]}), got shape {data.shape}")
    return np.where(data > 0, counts / np.maximum(data, 1), 0.0)


def fov_voxels(no_data: np.ndarray, axis: int) -> np.ndarray:
    """The voxels of each slice along ``axis`` inside the field of view: outside ``no_data`` (bool, True for a fill
    outside it, :func:`core.phases.fill_region`)."""
    check_choice(axis, "axis", (0, 1, 2))
    others = tuple(a for a in range(3) if a != axis)
    per_slice = int(np.prod([no_data.shape[a] for a in others]))
    return per_slice - np.count_nonzero(no_data, axis=others).astype(np.int64)


def electrode_extent(profile) -> tuple[int, int]:
    """The first and last slice of the electrode along its thickness axis, from its NMC profile.

    The plateau is the upper quartile of the NMC shares of the slices that hold some NMC (at least a tenth of the
    largest share, so that the plateau does not depend on how many empty slices the scan holds); a face is the
    outermost slice whose share reaches
    :data:`EXTENT_LEVEL` of it (the mean surface of a rough face), so the slices beyond it, with less NMC than that
    (a margin of pore, mounting medium or separator), are not the electrode.  Where nothing lies beyond (an
    interior crop), the ends are the volume's.  Where the extent found would be under :data:`EXTENT_MIN_SHARE` of
    the slices, or no slice holds NMC, the volume's ends are returned.

    Parameters
    ----------
    profile : (N,) float array-like
        NMC share of each slice (:func:`nmc_profile`).

    Returns
    -------
    (first, last) : (int, int)
        Slice indices, ``0 <= first <= last <= N - 1``.
    """
    f = np.asarray(profile, np.float64).ravel()
    n = f.size
    if n == 0:
        raise ValueError("the NMC profile is empty")
    top = float(np.max(f))
    if not np.isfinite(top) or top <= 0:
        return 0, n - 1
    plateau = float(np.percentile(f[f >= 0.1 * top], 75))
    inside = np.flatnonzero(f >= EXTENT_LEVEL * plateau)
    first, last = int(inside[0]), int(inside[-1])
    if last - first + 1 < EXTENT_MIN_SHARE * n:
        return 0, n - 1
    return first, last


def particle_table(
    labels: np.ndarray,
    phases: np.ndarray,
    spacing=None,
    *,
    axis: int = 0,
    separator_side: Side = "auto",
    depth_from: DepthFrom = "volume",
    no_data: np.ndarray | None = None,
) -> pd.DataFrame:
    """Measure every particle.

    Parameters
    ----------
    labels : (Z, Y, X) int ndarray
        Particle labels on NMC voxels, 0 elsewhere.  Labels need not be
        contiguous; one row is returned per label present.
    phases : (Z, Y, X) integer ndarray
        Phase codes 0 = pore, 1 = CBD, 2 = NMC.
    spacing : float or (3,) float, µm
        Voxel size along (z, y, x).
    axis : {0, 1, 2}
        Thickness axis of the electrode (for ``depth_frac``).
    separator_side : {"auto", "start", "end"}
        Which end of ``axis`` faces the separator.  ``"auto"`` uses
        :func:`detect_separator_side` and warns when the profile is ambiguous.
    depth_from : {"volume", "electrode"}
        What ``depth_frac`` runs over: the imaged volume along ``axis`` (the
        default here), or the electrode (:func:`electrode_extent` of the NMC
        profile: a margin beyond the electrode's surface is not depth).
    no_data : (Z, Y, X) bool ndarray, optional
        Voxels outside the field of view (a fill, :func:`core.phases.fill_region`; pore in ``phases``): a
        particle's face to one counts as a face to the volume edge (``area_edge_um2``, ``touches_edge``), not to
        pore, so a particle the field of view cuts is judged by the surface it shows, as one the volume's box cuts.

    Returns
    -------
    table : DataFrame
        One row per particle, columns :data:`COLUMNS`.  ``table.attrs`` holds
        ``spacing_um``, ``axis`` and ``separator_side`` (as resolved), and with
        ``depth_from="electrode"`` ``depth_extent`` (first and last slice).

    Notes
    -----
    Inputs are not modified.  Runs in a few passes over the volume whatever
    the number of particles.
    """
    return _particle_table(labels, phases, spacing, axis=axis, separator_side=separator_side, owned=False,
                           depth_from=depth_from, no_data=no_data)


def _particle_table(labels: np.ndarray, phases: np.ndarray, spacing=None, *, axis: int = 0,
                    separator_side: Side = "auto", owned: bool, outside: np.ndarray | None = None,
                    cracks: tuple | None = None, depth_from: DepthFrom = "volume",
                    profile: np.ndarray | None = None, no_data: np.ndarray | None = None) -> pd.DataFrame:
    """:func:`particle_table`, with ``owned=True`` for a caller that hands over ``labels`` (the pipeline).

    With ``owned=True`` cracks are filled into ``labels`` in place and cleared
    again afterwards, which saves a volume of memory; ``labels`` must then be
    uint16 or int32 and 0 outside NMC, and holds the same values on return.
    ``outside`` : (Z, Y, X) bool, optional: ``core._kernels.outside_reach(labels)``
    where the caller already has it (the pipeline: that of the NMC, computed
    by the particle separation, whose labels cover exactly the NMC), so that
    it is not computed twice.  ``cracks`` : ``(idx, root)``, optional: instead,
    :func:`core._kernels.enclosed_of_phases` of ``phases`` and the packed
    ``outside_reach`` of the NMC, for labels nonzero exactly on the NMC (the
    pipeline's, found while the separation's flood ran).  ``profile``: :func:`nmc_profile` of ``phases`` along
    ``axis`` where the caller has it (not read again).  With ``owned=True`` and ``no_data``, uint8 ``phases`` are
    marked there while the faces are measured and given back as they were.
    """
    phases = check_phases(phases)
    labels = check_labels(labels, phases.shape)
    sp = normalize_spacing(spacing)
    check_choice(depth_from, "depth_from", ("volume", "electrode"))
    check_choice(axis, "axis", (0, 1, 2))
    ph8 = phases if phases.dtype == np.uint8 else phases.astype(np.uint8)
    if no_data is not None:
        no_data = _check_no_data(no_data, phases.shape)
    # (a single slice across the thickness axis has no depth: its depth_frac is NaN, no extent is read)
    extent = depth_from == "electrode" and slice_axis(phases.shape) != axis
    if profile is None and (extent or separator_side == "auto"):
        profile = nmc_profile(ph8, axis, data_voxels=None if no_data is None else fov_voxels(no_data, axis))
    separator_side = _resolve_separator_side(separator_side, axis, profile, stacklevel=4)
    if outside is not None and outside.shape != labels.shape:
        raise ValueError(f"outside shape {outside.shape} does not match labels shape {labels.shape}")
    span = electrode_extent(profile) if extent else None
    kept = None
    if no_data is not None:
        if owned and ph8 is phases:
            kept = ph8[no_data]
        elif ph8 is phases:
            ph8 = ph8.copy()
        ph8[no_data] = K.NO_DATA
    try:
        counts, sums, lo, hi, areas, mc = _face_measures(labels, ph8, sp, owned, outside, cracks)
    finally:
        if kept is not None:
            ph8[no_data] = kept
    table = _table_of(counts, sums, lo, hi, areas, mc, sp, shape=phases.shape, axis=axis,
                      separator_side=separator_side, depth_extent=span)
    table.attrs.update({"spacing_um": list(sp), "axis": axis, "separator_side": separator_side})
    if span is not None:
        table.attrs["depth_extent"] = list(span)
    return table


def _check_no_data(no_data, shape) -> np.ndarray:
    """``no_data`` as a bool array of ``shape``, else a specific error."""
    no_data = np.asarray(no_data)
    if no_data.dtype != bool:
        raise TypeError(f"no_data must be a bool array (True outside the field of view), got dtype {no_data.dtype}")
    if no_data.shape != tuple(shape):
        raise ValueError(f"no_data shape {no_data.shape} does not match phases shape {tuple(shape)}")
    return no_data


def _face_measures(labels: np.ndarray, ph8: np.ndarray, sp, owned: bool, outside: np.ndarray | None = None,
                   cracks: tuple | None = None):
    """Per-label voxel counts, coordinate sums, bounding boxes, face areas by category and surface areas.

    Cracks are filled before measuring (a copy, or ``labels`` itself when
    ``owned``, cleared back to solid-only labels afterwards); from ``cracks``
    (see :func:`_particle_table`) where given.
    """
    if owned and labels.dtype in (np.uint16, np.int32):
        filled = labels
    else:
        filled = labels.astype(labels.dtype if labels.dtype in (np.uint16, np.int32) else np.int32)
    if cracks is not None:
        K.assign_enclosed(filled, *cracks)
    else:
        _fill_cracks_inplace(filled, outside)
    del outside, cracks
    n_lab = int(filled.max())
    lut = _mc_lut(sp)
    # two read-only passes over the labels, one per core where there are two
    (areas, counts, sums, lo, hi), mc = K.run_side_by_side(
        lambda: K.face_areas(filled, ph8, n_lab, sp[0], sp[1], sp[2], NMC, CBD),
        lambda: K.mc_areas(filled, n_lab, lut))
    if owned:
        K.clear_non_solid(filled, ph8, NMC)  # give the caller back solid-only labels
    return counts, sums, lo, hi, areas, mc


def _table_of(counts, sums, lo, hi, areas, mc, sp, *, shape, axis: int, separator_side: str,
              depth_extent: tuple[int, int] | None = None) -> pd.DataFrame:
    """The particle table (columns :data:`COLUMNS`) from the per-label measures of :func:`_face_measures` on a
    volume of ``shape`` (a single slice: the plane's measures, :mod:`core.slices`); ``depth_extent``: the electrode's
    first and last slice along ``axis`` that ``depth_frac`` runs over (None: the volume's)."""
    present = np.flatnonzero(counts[:, 1] > 0)
    present = present[present > 0]
    voxel_vol = sp[0] * sp[1] * sp[2]
    n_filled = counts[present, 0].astype(np.float64)
    volume = n_filled * voxel_vol
    centroid_idx = sums[present] / n_filled[:, None]
    lo_p, hi_p = lo[present], hi[present]
    extent = (hi_p - lo_p + 1) * np.asarray(sp)
    a = areas[present]
    a_pore, a_cbd, a_part, a_edge = a[:, K.CAT_PORE], a[:, K.CAT_CBD], a[:, K.CAT_PARTICLE], a[:, K.CAT_EDGE]
    thin = slice_axis(shape)
    if thin is not None:  # a single slice: its own two faces are not surface, its edge is the image's border
        p0, p1 = plane_axes(thin)
        border = (lo_p[:, [p0, p1]] == 0) | (hi_p[:, [p0, p1]] == np.asarray(shape)[[p0, p1]] - 1)
        # the rest of the edge faces are in-plane ones: the border's, or a fill's (core.phases.fill_region)
        rest = a_edge - 2.0 * n_filled * sp[p0] * sp[p1]
        touches = border.any(axis=1) | (rest > 0.5 * min(sp[a] * sp[b] for a, b in ((p0, thin), (p1, thin))))
        a_edge = np.where(touches, np.maximum(rest, 0.0), 0.0)
    else:
        touches = a_edge > 0
    total = a_pore + a_cbd + a_part + a_edge
    open_iface = a_pore + a_cbd
    with np.errstate(invalid="ignore", divide="ignore"):
        detachment = np.where(open_iface > 0, a_pore / open_iface, np.nan)
        sphericity = np.pi ** (1 / 3) * (6 * volume) ** (2 / 3) / mc[present]
    # a digital shape of a few voxels has no meaningful sphericity (it can exceed 1)
    sphericity[n_filled < MIN_VOXELS_FOR_SHAPE] = np.nan
    note = np.where(open_iface > 0, "", "no interface with pore or CBD (enclosed by particles / volume edge)")
    if depth_extent is None:
        pos = centroid_idx[:, axis] / max(shape[axis] - 1, 1)
    else:
        first, last = depth_extent
        pos = np.clip((centroid_idx[:, axis] - first) / max(last - first, 1), 0.0, 1.0)
    depth = pos if separator_side == "start" else 1.0 - pos
    diameter = cbrt_rounded(6 * volume / np.pi)
    surface = mc[present]
    if thin is not None:
        diameter = circle_diameter(n_filled * sp[p0] * sp[p1])
        surface = np.full(len(present), np.nan)
        sphericity = np.full(len(present), np.nan)
        if thin == axis:  # the thickness axis runs across the slice: no depth in it
            depth = np.full(len(present), np.nan)

    table = pd.DataFrame(
        {
            "label": present.astype(np.int64),
            "n_voxels": counts[present, 1],
            "volume_um3": volume,
            "solid_volume_um3": counts[present, 1] * voxel_vol,
            "equiv_diameter_um": diameter,
            "surface_area_um2": surface,
            "sphericity": sphericity,
            "centroid_z_um": centroid_idx[:, 0] * sp[0],
            "centroid_y_um": centroid_idx[:, 1] * sp[1],
            "centroid_x_um": centroid_idx[:, 2] * sp[2],
            "extent_z_um": extent[:, 0],
            "extent_y_um": extent[:, 1],
            "extent_x_um": extent[:, 2],
            "depth_frac": depth,
            "touches_edge": touches,
            "area_cbd_um2": a_cbd,
            "area_pore_um2": a_pore,
            "area_particle_um2": a_part,
            "area_edge_um2": a_edge,
            "frac_cbd": a_cbd / total,
            "frac_pore": a_pore / total,
            "frac_particle": a_part / total,
            "frac_edge": a_edge / total,
            "detachment": detachment,
            "detachment_note": note,
            "crack_fraction": 1.0 - counts[present, 1] / n_filled,
        },
        columns=list(COLUMNS),
    )
    return table


def isolated_specks(table: pd.DataFrame, min_volume_um3: float) -> np.ndarray:
    """Which particles of a table are specks: smaller than ``min_volume_um3`` and touching no other particle.

    The separation merges a fragment under the minimum particle volume into the neighbour it shares the most
    surface with (:class:`core.particles.SeparationParams`); a region that touches no particle has none, so it
    stays a particle: on a fine scan, bright dots in the carbon-binder or the pores (on a FIB-SEM slice at 20 nm
    most of the "particles").  A particle's volume is that of the ball of its equivalent diameter (on a single
    slice, the ball of its area's circle, as the separation weighs it).

    Parameters
    ----------
    table : DataFrame
        A particle table (:data:`COLUMNS`); one without ``equiv_diameter_um`` or ``frac_particle`` has no specks.
    min_volume_um3 : float

    Returns
    -------
    (N,) bool ndarray
    """
    if "equiv_diameter_um" not in table or "frac_particle" not in table:
        return np.zeros(len(table), bool)
    ball = np.pi / 6 * table["equiv_diameter_um"].to_numpy(np.float64) ** 3
    touching = table["frac_particle"].to_numpy(np.float64) > 0
    return (ball < float(min_volume_um3)) & ~touching


#: :func:`specks_reading`: from this share of the table on, the specks are most of it (and the sentence asks which
#: phase is NMC: a map or thresholds that took the carbon-binder as NMC leave its voxel-sized bits as "particles").
MOSTLY_SPECKS = 0.5


def specks_reading(table: pd.DataFrame, min_volume_um3: float, *, where: str | None = None,
                   single_slice: bool = False) -> tuple[str, float] | None:
    """One sentence on the table's :func:`isolated_specks` where they are at least 5 % of it or move its median
    detachment by 0.02 or more, and that move; None otherwise.  Where they are
    :data:`MOSTLY_SPECKS` of it or more, a second sentence asks which phase is NMC (and, given ``where``, says
    in brackets where to check it).  ``single_slice``: the table is of a single slice (a 2D image), whose particles
    are weighed as the balls of their areas' circles (its ``volume_um3`` column is area times the slice's thickness):
    the minimum is said as the disc it is (QA walk 15: "a ball 1.24 µm across" beside a table of µm³ that disagreed).

    Examples
    --------
    The form of the sentence: "29 of 43 particles are smaller than the minimum particle volume (1 µm³, a ball 1.24 µm across) and touch no
    other particle: specks that the separation had no neighbour to merge into, so they count as particles. The
    median detachment is 0.24 with them and 0.57 without."
    """
    v = float(min_volume_um3)
    if v <= 0 or table.empty:
        return None
    specks = isolated_specks(table, v)
    n = int(specks.sum())
    if n == 0:
        return None
    det = table["detachment"]
    with_them, without = det.median(), det[~specks].median()
    shift = float(abs(with_them - without)) if pd.notna(with_them) and pd.notna(without) else 0.0
    if n < 0.05 * len(table) and shift < 0.02:
        return None
    d = (6 * v / np.pi) ** (1 / 3)
    size = (f"{v:g} µm³; on a single slice a particle is weighed as the ball of its area's circle: a disc {d:.2f} µm "
            "across" if single_slice else f"{v:g} µm³, a ball {d:.2f} µm across")
    text = (f"{n} of {len(table)} particles are smaller than the minimum particle volume ({size}) and touch no "
            "other particle: specks that the separation had no neighbour to merge "
            f"into, so they count as particles. The median detachment is {with_them:.2f} with them and "
            f"{without:.2f} without.")
    if n >= MOSTLY_SPECKS * len(table):
        text += (" With most of the table specks, the phase read as NMC may hold more than the particles (a thin "
                 "phase such as the carbon-binder, or noise): check which phase is NMC"
                 + (f" ({where})." if where else "."))
    return text, shift
