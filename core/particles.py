"""Phase volume -> individual particle labels (classic, crack-aware watershed).

Steps:

1. NMC voxels, with internal cracks filled (:func:`fill_enclosed`)
   so that a crack does not carve a particle into two distance-transform basins;
2. anisotropic Euclidean distance transform (µm) of the filled NMC;
3. watershed of the distance transform restricted to the filled NMC, either
   ``"hmaxima"`` (default): a priority flood from every regional maximum in
   which a basin whose peak rises less than ``h_um`` above the saddle to a
   neighbour joins it (merging by dynamics, equivalent to seeding from the
   h-maxima; numba, holds only the flood front besides the labels; a
   particle cut by a face of the volume counts the peak of its section in
   the face, :func:`face_peak_levels`, since its own peak lies beyond), or
   ``"peaks"``: scikit-image's marker watershed from local maxima at least
   ``min_distance_um`` apart;
5. merging of over-split fragments: two neighbours whose shared interface is
   large relative to the smaller one's cross-section (``merge_ratio``) are one
   particle (a real contact between two particles is a neck, much smaller
   than either cross-section; a cap cut off a sphere has an interface of at
   least 2^(2/3) ≈ 1.59 times the cross-section of a sphere of its own volume,
   the half sphere, and more the thinner the cap); fragments below
   ``min_volume_um3`` join the neighbour they share most interface with.
   The pairs join one at a time, the largest ratio first, each weighed on the
   regions as the merges before it left them (:func:`_agglomerate`), so a
   fragment wedged between two particles joins one of them, not both;
6. labels on NMC voxels only (cracks return to 0), numbered 1..n.

All parameters live in :class:`SeparationParams`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import edt as edt_pkg
import numba
import numpy as np
from scipy import ndimage as ndi

from . import _kernels as K
from ._checks import check_bool, check_number
from ._edt import quantise_cubic_in_place
from ._kernels import flat_step, unravel
from ._watershed import _flood_into, _plateaus, _quantise, _watershed_dynamics, quantise
from ._validate import check_choice, check_has_nmc, check_labels, check_phases, normalize_spacing
from .codes import NMC
from .slices import circle_diameter, plane_axes, slice_axis

MarkerMethod = Literal["hmaxima", "peaks"]
FloodOrder = Literal["row", "fifo"]


@dataclass(frozen=True)
class SeparationParams:
    """Parameters of particle identification (lengths in µm).

    Attributes
    ----------
    fill_cracks : bool
        Fill cavities enclosed by NMC before the distance transform.
    markers : {"hmaxima", "peaks"}
        Marker detection on the distance transform.
    h_um : float
        Height of the h-maxima: a distance-transform peak must rise this much
        above the saddle to its neighbour to seed its own particle.
    min_distance_um : float
        Minimum marker separation for ``markers="peaks"``.
    merge_ratio : float
        Merge two fragments when their interface area exceeds this share of
        the smaller fragment's equivalent cross-section ``π r²``, one pair at
        a time, the largest ratio first (:func:`merge_fragments`); 0 disables.
        The default, 2.0, merges a cap cut off a sphere when it is thinner
        than about 0.7 of the sphere's radius (a half sphere gives 1.59).  It
        was 1.2 before (a recipe records the value it ran with, so an older
        recipe replays with 1.2): at 1.2 the merge joined
        more distinct particles than it mended fragments (a particle cut by a
        face of the volume holds less volume for the same contact, and blur
        widens the necks), most of all on blurred greyscale (bench/RESULTS.md,
        merge_ratio_s13).
    min_volume_um3 : float
        Fragments smaller than this join their largest-contact neighbour.  On a single slice (a 2D image,
        :mod:`core.slices`) a fragment is weighed as the ball of its area's circle, and a contact by its length
        against the smaller fragment's circle diameter instead of ``π r²``.
    flood_order : {"row", "fifo"}
        The order in which the ``"hmaxima"`` flood visits the voxels queued at one level, which decides ties
        between basins (which of two that reach a voxel at one level takes it): ``"row"`` (the default since
        session 29) in rounds, each sorted by row (z, y), so that the voxels visited next lie near each other
        in memory (one half of the 512³ flood of issue 15's packing 2.9 -> 2.4 s;
        :func:`core._watershed._flood`); ``"fifo"`` first in, first out, as before (recipes written before
        this key replay with it).  Either order is the same wherever the volume lies in a larger one.
    """

    fill_cracks: bool = True
    markers: MarkerMethod = "hmaxima"
    h_um: float = 0.5
    min_distance_um: float = 2.0
    merge_ratio: float = 2.0
    min_volume_um3: float = 1.0
    flood_order: FloodOrder = "row"

    def __post_init__(self):
        check_bool(self.fill_cracks, "fill_cracks")
        check_choice(self.markers, "markers", ("hmaxima", "peaks"))
        check_choice(self.flood_order, "flood_order", ("row", "fifo"))
        for name in ("h_um", "min_distance_um", "merge_ratio", "min_volume_um3"):
            check_number(getattr(self, name), name)
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


def fill_enclosed(solid: np.ndarray) -> np.ndarray:
    """Fill cavities enclosed by ``solid``, including cracks cut by the volume edge.

    A crack that reaches a face of the volume is not a closed cavity in 3D.
    The volume is therefore treated as surrounded by a copy of each face after
    2D hole filling (see :func:`core._kernels.outside_reach`), so a crack
    enclosed within the particle's cut face is closed too, while pore channels
    that run into the volume stay open.

    Parameters
    ----------
    solid : (Z, Y, X) bool

    Returns
    -------
    filled : (Z, Y, X) bool
    """
    reached = K.outside_reach(np.asarray(solid, bool))
    np.logical_not(reached, out=reached)
    return reached


def distance_transform(mask: np.ndarray, spacing=None, *, black_border: bool = False) -> np.ndarray:
    """Anisotropic Euclidean distance (µm) of each voxel in ``mask`` to the nearest voxel outside.

    Parameters
    ----------
    mask : (Z, Y, X) bool
    spacing : float or (3,) float, µm

    Returns
    -------
    dt : (Z, Y, X) float32
        The volume edge is not treated as background.
    """
    sp = normalize_spacing(spacing)
    # edt 3.0 transforms a 0 / 1 uint8 volume about twice as fast as the same bool one (same distances to float32
    # rounding; bench/RESULTS.md, speed_memory), so the mask goes in as a uint8 view
    m = np.ascontiguousarray(mask, dtype=np.bool_).view(np.uint8)
    return edt_pkg.edt(m, anisotropy=sp, black_border=black_border, parallel=0).astype(np.float32, copy=False)


#: Smallest slab (voxels, halo included) of :func:`quantised_distance`; a volume
#: no bigger is transformed in one piece.
SLAB_VOXELS: int = 32_000_000


def _slab_edt(buf, z0, z1, halo, sp):
    """Distance transform of z-slices [z0, z1) from the slab [z0 - halo, z1 + halo) of ``buf != 0``.

    Returns the slab's values on [z0, z1) and whether they are exact: a voxel's
    value is that of the whole-volume transform when its nearest background
    voxel inside the slab is closer than anything outside the slab could be.
    """
    nz = buf.shape[0]
    a, b = max(0, z0 - halo), min(nz, z1 + halo)
    d = distance_transform(np.not_equal(buf[a:b], 0), sp)[z0 - a : z1 - a]
    m = float(d.max()) if d.size else 0.0
    # anything outside the slab is at least (halo + 1) slices away; keep one slice of margin
    reach = min(z0 - a if a > 0 else np.inf, b - z1 if b < nz else np.inf) * sp[0]
    return d, m, (a == 0 and b == nz) or m < reach  # the whole volume is exact by definition


def _slice_bounds(filled: np.ndarray, sp, stride: int = 4) -> np.ndarray:
    """Rough upper bound (µm) of the distance transform on each z-slice, from a subsampled volume.

    The distance to the background sampled every ``stride`` voxels is at
    least the distance to the whole background, and a voxel is within one
    sampling cell of a sampled one, so (up to rounding) the sampled maximum
    of the slices around ``z`` plus the cell diagonal bounds slice ``z``.  It
    only orders the slabs and sizes the first halo of
    :func:`quantised_distance`, whose results are exact whatever it says.
    ``filled``: the mask, nonzero inside.
    """
    nz = filled.shape[0]
    sub = np.not_equal(filled[::stride, ::stride, ::stride], 0)
    dsub = distance_transform(sub, tuple(stride * s for s in sp))
    del sub
    per = dsub.reshape(dsub.shape[0], -1).max(axis=1) if dsub.size else np.zeros(0, np.float32)
    del dsub
    diag = float(np.sqrt(sum(((stride - 1) * s) ** 2 for s in sp)))
    bound = np.zeros(nz, np.float64)
    for k, v in enumerate(per):
        lo, hi = max(0, k * stride - (stride - 1)), min(nz, k * stride + stride)
        bound[lo:hi] = np.maximum(bound[lo:hi], float(v) + diag)
    return bound


def quantised_distance(filled: np.ndarray, spacing=None, *, slab_voxels: int | None = None,
                       halo: int = 8) -> tuple[np.ndarray, float]:
    """:func:`core._watershed.quantise` of :func:`distance_transform`, computed slab by slab.

    With cubic voxels the levels are those of the exact distances, computed in
    place of the mask (:func:`core._edt.quantise_cubic_in_place`; they differ
    from the quantised float32 transform of ``edt`` only where its rounding
    crosses a level, by one level), unless some voxel is 255 voxels or more
    from the background.  Otherwise (or then) the following holds.

    The float32 distance map is never held whole: it is computed in z-slabs of
    about ``slab_voxels`` voxels with a halo of slices on each side.  The halo
    grows until every value in a slab is provably that of the whole-volume
    transform (a slab value smaller than the distance to the slab's outside
    cannot be beaten by a voxel outside), so the result equals
    ``quantise(distance_transform(filled, spacing))`` bit for bit.

    The quantisation step is set by the maximum distance of the whole volume.
    A transform of a volume subsampled every 4th voxel (:func:`_slice_bounds`,
    1/64 of the work) tells roughly where that maximum is and how deep the halo must be,
    so the slabs are transformed most likely maximum first, each quantised at
    once with the largest maximum seen so far; a slab quantised before a larger
    maximum turned up is transformed again (rarely: the whole volume is then
    transformed about once, not twice).

    Parameters
    ----------
    filled : (Z, Y, X) bool
    spacing : float or (3,) float, µm
    slab_voxels : int, optional
        Voxels of a slab including its halo; default ``max(SLAB_VOXELS,
        filled.size // 4)`` (the float32 slab then costs at most 1 byte per
        voxel of the volume; the slab ``S2`` of :mod:`core.memory`'s
        estimate).  A volume no bigger than a slab is done in one piece.  A
        slab is made thicker when its halo would leave it fewer own slices
        than the halo has.
    halo : int
        Smallest first halo, in slices (grown as needed).

    Returns
    -------
    q : (Z, Y, X) uint8
    step : float, µm per level
    """
    sp = normalize_spacing(spacing)
    q = np.array(filled, dtype=np.uint8, order="C")  # the mask (0 / 1), quantised in place
    if slab_voxels is None:
        slab_voxels = max(SLAB_VOXELS, q.size // 4)
    return q, _quantise_in_place(q, sp, slab_voxels, halo)


def _quantise_in_place(buf: np.ndarray, sp, slab_voxels: int, halo: int) -> float:
    """:func:`quantised_distance` of the mask ``buf != 0`` (C-contiguous uint8), written into ``buf``; the step.

    The mask needs no volume of its own: a slab's transform reads ``buf != 0``,
    which a slice already quantised still gives (a level is 0 exactly on the
    background), so a caller that owns the mask's memory lends it as the output.
    """
    if sp[0] == sp[1] == sp[2] and buf.flags.c_contiguous:
        step = quantise_cubic_in_place(buf, float(sp[0]))  # exact, in the mask's memory (core._edt)
        if step is not None:
            return step
    nz = buf.shape[0]
    plane = max(1, buf.shape[1] * buf.shape[2])
    depth = max(1, int(slab_voxels) // plane)  # slab slices, halo included
    if nz <= depth:
        return _quantise_whole(buf, sp)
    bound = _slice_bounds(buf, sp)
    top = float(bound.max()) if bound.size else 0.0
    if not np.isfinite(top):  # no background in the sample: one piece, as the halo would grow to the volume
        return _quantise_whole(buf, sp)
    halo = max(1, int(halo), int(np.ceil(top / sp[0])) + 1)
    own = max(depth - 2 * halo, halo)
    own = -(-nz // -(-nz // own))  # as many slabs as needed, of even thickness
    slabs = [(z0, min(nz, z0 + own)) for z0 in range(0, nz, own)]
    # most likely maximum first (ties: in z order)
    slabs.sort(key=lambda r: (-float(bound[r[0]:r[1]].max()), r[0]))
    done = []  # (z0, z1, halo that made it exact, step it was quantised with)
    dmax = 0.0
    for z0, z1 in slabs:
        h = halo
        while True:
            d, m, exact = _slab_edt(buf, z0, z1, h, sp)
            if exact:
                break
            d = None
            h = nz if not np.isfinite(m) else max(h + 1, int(np.ceil(m / sp[0])) + 1)
        dmax = max(dmax, m)
        step = max(dmax / 254.0, 1e-6)
        _quantise(np.ascontiguousarray(d), np.float32(1.0 / step), buf[z0:z1])
        del d
        done.append((z0, z1, h, step))
    step = max(dmax / 254.0, 1e-6)
    inv = np.float32(1.0 / step)
    for z0, z1, h, used in done:
        if used != step:  # quantised before the maximum was known: again, with the final step
            d = _slab_edt(buf, z0, z1, h, sp)[0]
            _quantise(np.ascontiguousarray(d), inv, buf[z0:z1])
            del d
    return step


def _quantise_whole(buf: np.ndarray, sp) -> float:
    """:func:`_quantise_in_place` in one piece."""
    d = distance_transform(buf.view(np.bool_), sp)  # buf holds 0 / 1 here
    dmax = float(d.max()) if d.size else 0.0
    step = max(dmax / 254.0, 1e-6)
    _quantise(d, np.float32(1.0 / step), buf)
    return step


#: Which faces of a volume are its own, per axis (low face, high face): all six.
ALL_FACES: tuple = ((True, True),) * 3
#: No face of the volume is its own (a window cut from a bigger volume on every side).
NO_FACES: tuple = ((False, False),) * 3


def face_peak_levels(q: np.ndarray, sp, step: float, h_um: float,
                     faces=ALL_FACES) -> tuple[np.ndarray, np.ndarray]:
    """The peaks of the particles the volume's faces cut: in-face distance levels at the faces' 2D h-maxima.

    A particle cut by a face of the volume leaves a cap in it, whose 3D
    distance peak is at most the cap's thickness (the edge is not background),
    so, merged by dynamics, a thin cap joins the neighbour it touches.  The
    cap's section in the face says more of the particle: the 2D distance
    transform of the face slice (in-plane spacing, the face's edges not
    background).  Its h-maxima (2D dynamics at least ``h_um``, so that a
    rough section's small bumps do not count; in µm, not levels, so that a
    window of the volume with its own quantisation finds the same) give the
    levels that
    :func:`core._watershed.watershed_dynamics` (``face_levels``) takes as the
    least peak of a basin whose seed holds them.

    Parameters
    ----------
    q : (Z, Y, X) uint8
        Quantised distance of the (filled) NMC, nonzero on it (:func:`quantised_distance`).
    sp : (3,) float, µm
    step : float
        µm per level of ``q``.
    h_um : float
        The separation's h (:class:`SeparationParams`), µm.
    faces : ((bool, bool),) * 3
        Per axis, whether the low and high faces are the volume's own
        (:data:`ALL_FACES`); a window cut from a bigger volume passes False
        where it was cut.

    Returns
    -------
    flat : (F,) int64
        Flat indices of the face voxels of ``q > 0`` on those h-maxima, ascending and unique.
    levels : (F,) uint8
        The in-face distance there, quantised as ``q`` is (``ceil(d / step)``,
        at most 255); the higher one on an edge of two faces.
    """
    flat, levels, _, _, _ = _face_sections(q, sp, step, h_um, faces)
    return flat, levels


def _face_sections(q, sp, step, h_um, faces=ALL_FACES):
    """:func:`face_peak_levels`, and the sections of the faces: ``(flat, levels, face, sections, offsets)``.

    ``face`` (F,) int64: per peak, the face it was found in (``2 * axis + side``; of two, the one of the higher
    level).  ``sections``: the faces' pixels concatenated, face ``f`` raveled from ``offsets[f]`` (``offsets``
    (7,) int64; an unused face holds no pixels), each labelled with the peak whose 2D watershed basin of the
    in-face distance holds it (a label per peak of that face, 0 off the NMC): what belongs to one section.
    """
    from skimage.segmentation import watershed

    flats, levs, fids, secs = [], [], [], []
    offsets = np.zeros(7, np.int64)
    for axis in range(3):
        for side in (0, 1):
            f = 2 * axis + side
            if not faces[axis][side]:
                offsets[f + 1] = offsets[f]
                continue
            pos = 0 if side == 0 else q.shape[axis] - 1
            face = np.ascontiguousarray(np.take(q, pos, axis=axis) != 0)
            offsets[f + 1] = offsets[f] + face.size
            if not face.any() or face.all():  # all NMC: no in-face distance (no background in the face), no peak
                secs.append(np.zeros(face.size, np.int32))
                continue
            inplane = tuple(s for a, s in enumerate(sp) if a != axis)
            d = edt_pkg.edt(face.view(np.uint8), anisotropy=inplane, black_border=False, parallel=1)
            lev = np.minimum(np.ceil(d / step), 255).astype(np.uint8)
            keep = _h_maxima(d, max(float(h_um), step)) & face  # the flood's h is at least a level
            rows, cols = _one_per_maximum(keep, d)
            markers = np.zeros(face.shape, np.int32)
            markers[rows, cols] = np.arange(1, rows.size + 1, dtype=np.int32)
            secs.append(watershed(-d, markers, mask=face).astype(np.int32).ravel())
            where = [rows, cols]
            where.insert(axis, np.full(rows.size, pos))
            flats.append(np.ravel_multi_index(tuple(where), q.shape).astype(np.int64))
            levs.append(lev[rows, cols])
            fids.append(np.full(rows.size, f, np.int64))
    sections = np.concatenate(secs) if secs else np.zeros(0, np.int32)
    if not flats:
        return np.zeros(0, np.int64), np.zeros(0, np.uint8), np.zeros(0, np.int64), sections, offsets
    flat, levels, fid = _highest_per_voxel(np.concatenate(flats), np.concatenate(levs), np.concatenate(fids))
    return flat, levels, fid, sections, offsets


def _h_maxima(image: np.ndarray, h: float) -> np.ndarray:
    """``skimage.morphology.h_maxima(image, h).astype(bool)`` of a 2D float image, with the reconstruction by
    dilation in numba (:func:`_reconstruct_dilation`).

    The arithmetic around the reconstruction is scikit-image's, expression for expression (its shift of the
    image by ``h`` and by twice the float type's resolution, then the residue); the reconstruction itself only
    compares and selects values, so any correct algorithm gives the same one.  scikit-image sorts every pixel:
    169 ms against 4.4 ms on a 512² face of issue 15's 512³ packing.  ``h > 0``.
    """
    image = np.ascontiguousarray(image)
    if not np.issubdtype(image.dtype, np.floating) or image.ndim != 2:
        raise TypeError(f"image must be a 2D float array, got {image.dtype} with {image.ndim} dimensions")
    if not np.isfinite(image).all():
        raise ValueError("image must be finite")
    if h > np.ptp(image):
        return np.zeros(image.shape, bool)
    resolution = 2 * np.finfo(image.dtype).resolution * np.abs(image)
    shifted_img = image - h - resolution
    rec_img = _reconstruct_dilation(shifted_img.astype(image.dtype, copy=False), image)
    residue_img = image - rec_img
    return residue_img >= h


@numba.njit(cache=True, nogil=True)
def _reconstruct_dilation(seed, mask):
    """Grey reconstruction by dilation of ``seed <= mask`` under ``mask`` (2D, 8-connected, as
    ``skimage.morphology.reconstruction``'s default footprint): L. Vincent's hybrid algorithm (IEEE Trans. Image
    Process. 2, 1993), a raster and an anti-raster scan, then a queue for what they leave.  A new array."""
    ny, nx = mask.shape
    J = seed.copy()
    # forward scan: the neighbours before each pixel
    for y in range(ny):
        for x in range(nx):
            v = J[y, x]
            if y > 0:
                for xx in range(max(x - 1, 0), min(x + 2, nx)):
                    if J[y - 1, xx] > v:
                        v = J[y - 1, xx]
            if x > 0 and J[y, x - 1] > v:
                v = J[y, x - 1]
            J[y, x] = min(v, mask[y, x])
    # backward scan: the neighbours after; queue a pixel that may still raise one of them
    n = ny * nx
    queue = np.empty(n, np.int64)
    queued = np.zeros(n, np.bool_)
    head = 0
    count = 0
    for y in range(ny - 1, -1, -1):
        for x in range(nx - 1, -1, -1):
            v = J[y, x]
            if y < ny - 1:
                for xx in range(max(x - 1, 0), min(x + 2, nx)):
                    if J[y + 1, xx] > v:
                        v = J[y + 1, xx]
            if x < nx - 1 and J[y, x + 1] > v:
                v = J[y, x + 1]
            v = min(v, mask[y, x])
            J[y, x] = v
            hit = x < nx - 1 and J[y, x + 1] < v and J[y, x + 1] < mask[y, x + 1]
            if not hit and y < ny - 1:
                for xx in range(max(x - 1, 0), min(x + 2, nx)):
                    if J[y + 1, xx] < v and J[y + 1, xx] < mask[y + 1, xx]:
                        hit = True
                        break
            if hit:
                i = y * nx + x
                queue[(head + count) % n] = i
                queued[i] = True
                count += 1
    # propagation
    while count > 0:
        i = queue[head]
        head = (head + 1) % n
        count -= 1
        queued[i] = False
        y = i // nx
        x = i - y * nx
        v = J[y, x]
        for yy in range(max(y - 1, 0), min(y + 2, ny)):
            for xx in range(max(x - 1, 0), min(x + 2, nx)):
                if J[yy, xx] < v and mask[yy, xx] != J[yy, xx]:
                    J[yy, xx] = min(v, mask[yy, xx])
                    k = yy * nx + xx
                    if not queued[k]:
                        queue[(head + count) % n] = k
                        queued[k] = True
                        count += 1
    return J


def _one_per_maximum(keep: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of one pixel per connected region of ``keep`` (2D, 8-connected, as ``h_maxima`` joins them):
    the one of highest ``d``, the first in raster order among equals.

    One h-maximum is one particle's section: its pixels may climb to different regional maxima of the 3D
    distance (a section's plateau two pixels wide above two noisy 3D peaks), and each maximum credited with
    the section's level would keep its basin apart, splitting the particle in two."""
    comp, n = ndi.label(keep, structure=np.ones((3, 3), bool))
    rows, cols = np.nonzero(comp)
    if n == 0:
        return rows, cols
    ids = comp[rows, cols]
    order = np.lexsort((-d[rows, cols], ids))  # stable: raster order among equal d
    first = order[np.r_[True, ids[order][1:] != ids[order][:-1]]]
    return rows[first], cols[first]


def _highest_per_voxel(flat: np.ndarray, levels: np.ndarray, *extra: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(flat, levels, *extra)`` with each voxel once, ascending, keeping its highest level (and the ``extra``
    values that go with it)."""
    if not flat.size:
        return (flat, levels, *extra)
    order = np.lexsort((-levels.astype(np.int64), flat))  # by voxel, the highest level first
    first = np.r_[True, flat[order][1:] != flat[order][:-1]]
    keep = order[first]
    return (flat[keep], levels[keep], *(e[keep] for e in extra))


@numba.njit(cache=True, nogil=True)
def _ascend(q, i, nz, ny, nx):
    """The steepest ascent over face neighbours of ``q`` from flat voxel ``i`` to a voxel with none higher."""
    fq = q.ravel()
    while True:
        z, y, x = unravel(i, ny, nx)
        best, bv = -1, fq[i]
        for d in range(6):
            j = flat_step(i, z, y, x, d, nz, ny, nx)
            if j >= 0 and fq[j] > bv:
                best, bv = j, fq[j]
        if best < 0:
            return i
        i = best


@numba.njit(cache=True, inline="always")
def _section_index(z, y, x, f, offsets, ny, nx):
    """Index in the concatenated face sections (:func:`_face_sections`) of voxel ``(z, y, x)`` of face ``f``."""
    axis = f // 2
    if axis == 0:
        return offsets[f] + y * nx + x
    if axis == 1:
        return offsets[f] + z * nx + x
    return offsets[f] + z * ny + y


@numba.njit(cache=True, nogil=True)
def _higher_in_section(q, i, start, f, sections, offsets, sz, sy, sx, step, h, nz, ny, nx):
    """The voxel of highest ``q`` above ``q[i]`` that lies in face ``f``, in the section of flat voxel ``start``
    there (:func:`_face_sections`), and that a path of face steps through voxels above ``q[i] - h`` joins to
    ``i`` within the ball of radius ``q[i] * step`` (µm) around it (the first in raster order among equals); -1 where
    none is.  Such a path is what the flood by dynamics (``h`` levels) needs to join the two."""
    fq = q.ravel()
    z0, y0, x0 = unravel(i, ny, nx)
    zs, ys, xs = unravel(start, ny, nx)
    own = sections[_section_index(zs, ys, xs, f, offsets, ny, nx)]
    axis = f // 2
    pos = (zs, ys, xs)[axis]
    r = fq[i] * step
    rz, ry, rx = int(r / sz), int(r / sy), int(r / sx)
    lz, ly, lx = max(0, z0 - rz), max(0, y0 - ry), max(0, x0 - rx)
    bz, by, bx = min(nz, z0 + rz + 1) - lz, min(ny, y0 + ry + 1) - ly, min(nx, x0 + rx + 1) - lx
    seen = np.zeros(bz * by * bx, np.bool_)
    queue = np.empty(bz * by * bx, np.int64)
    floor = np.int64(fq[i]) - h
    queue[0] = i
    seen[((z0 - lz) * by + (y0 - ly)) * bx + (x0 - lx)] = True
    head, tail = 0, 1
    best, bv = -1, fq[i]
    while head < tail:
        j = queue[head]
        head += 1
        z, y, x = unravel(j, ny, nx)
        if (fq[j] > bv or (best >= 0 and fq[j] == bv and j < best)) and (z, y, x)[axis] == pos \
                and sections[_section_index(z, y, x, f, offsets, ny, nx)] == own:
            best, bv = j, fq[j]
        for d in range(6):
            k = flat_step(j, z, y, x, d, nz, ny, nx)
            if k < 0 or np.int64(fq[k]) <= floor:
                continue
            kz, ky, kx = unravel(k, ny, nx)
            if kz < lz or ky < ly or kx < lx or kz >= lz + bz or ky >= ly + by or kx >= lx + bx:
                continue
            if ((kz - z0) * sz) ** 2 + ((ky - y0) * sy) ** 2 + ((kx - x0) * sx) ** 2 > r * r:
                continue
            b = ((kz - lz) * by + (ky - ly)) * bx + (kx - lx)
            if not seen[b]:
                seen[b] = True
                queue[tail] = k
                tail += 1
    return best


@numba.njit(cache=True, nogil=True)
def _climb(q, flat, sz, sy, sx, step, h, face, sections, offsets):
    """From each voxel ``flat`` of ``q``, the steepest ascent over face neighbours to a voxel with none higher,
    then on to the highest maximum of the same section.

    Returns, per start, the flat index of the voxel reached (a voxel of a
    regional maximum of ``q``), or -1 where the start lies outside the ball of
    radius ``q * step`` (µm) around the first maximum it reaches: the ball the
    distance transform guarantees free of background, so a start inside it
    belongs to the body of the same particle, not beyond a neck.  From that
    maximum the ascent goes on to the highest voxel inside its ball that lies
    in the start's section of its face (``face[k]``; ``sections``, ``offsets``
    of :func:`_face_sections`: the same body, by the same guarantee, and the
    same cut section) where that is higher and a path inside the ball joins it
    without dropping ``h`` levels below the maximum (so the flood by dynamics
    would join the two anyway, but for the level), and climbs again, until
    there is none:
    a noisy surface leaves a cut particle's distance map several maxima a few
    voxels apart along the face, and a section's level credited to a lesser
    one kept it apart as a particle of its own.  Only within the section: a
    cap's maximum lies in the face, and its ball may reach past the neck into
    the neighbour beside or beyond it.
    """
    nz, ny, nx = q.shape
    fq = q.ravel()
    out = np.empty(flat.size, np.int64)
    for k in range(flat.size):
        z0, y0, x0 = unravel(flat[k], ny, nx)
        i = _ascend(q, flat[k], nz, ny, nx)
        z, y, x = unravel(i, ny, nx)
        d2 = ((z - z0) * sz) ** 2 + ((y - y0) * sy) ** 2 + ((x - x0) * sx) ** 2
        if d2 > (fq[i] * step) ** 2:
            out[k] = -1
            continue
        while h > 0:
            j = _higher_in_section(q, i, flat[k], face[k], sections, offsets, sz, sy, sx, step, h, nz, ny, nx)
            if j < 0:
                break
            i = _ascend(q, j, nz, ny, nx)
        out[k] = i
    return out


def _seed_face_levels(q: np.ndarray, sp, step: float, flat: np.ndarray, levels: np.ndarray, face=None,
                      sections=None, offsets=None, h: int = 0):
    """The face levels of :func:`face_peak_levels` moved to the regional maxima their voxels climb to.

    A cut particle's 3D peak lies at or near its section's 2D peak, but not
    always on the very voxel (noise, quantisation, a plateau that ends a voxel
    short), and :func:`core._watershed.watershed_dynamics` credits a level
    only to a seed that holds its voxel.  Each voxel steps up the steepest
    ascent of ``q`` to a regional maximum (:func:`_climb`); a level whose
    voxel lies outside that maximum's inscribed ball is dropped (the ascent
    left the particle); from there it goes on, along the voxel's face, to the
    highest maximum of the same section that the flood by dynamics (``h``
    levels) would join to it but for the level (:func:`_climb`), where ``face``, ``sections`` and ``offsets``
    (:func:`_face_sections`) are given and ``h`` > 0.  Returns ``(flat, levels)`` as
    :func:`face_peak_levels` does: ascending, unique, the highest level where
    several reach one voxel.
    """
    if not flat.size:
        return flat, levels
    if face is None:  # no sections: nothing to go on along (_climb does not look with h = 0)
        face, sections, offsets, h = np.zeros(flat.size, np.int64), np.zeros(1, np.int32), np.zeros(7, np.int64), 0
    top = _climb(np.ascontiguousarray(q), flat, float(sp[0]), float(sp[1]), float(sp[2]), float(step), int(h),
                 face, sections, offsets)
    ok = top >= 0
    top, lv = top[ok], levels[ok]
    return _highest_per_voxel(top, lv)




def _flood_by_dynamics(q: np.ndarray, step: float, sp, h_um: float, faces, side=None, *,
                       order: FloodOrder = "row") -> np.ndarray:
    """:func:`core._watershed.watershed_dynamics` of ``q`` (``step`` µm per level) with ``h_um`` and the peaks
    of the particles the volume's own ``faces`` cut (:func:`face_peak_levels`), credited to the seeds they climb
    to (:func:`_seed_face_levels`).

    The regional maxima of ``q`` (:func:`core._watershed._plateaus`) and the face levels are found side by side
    (both only read ``q``); ``side`` (:class:`core._kernels.SideWork`, optional) is started as the
    single-threaded flood starts.  ``order``: :attr:`SeparationParams.flood_order`.
    """
    q = np.ascontiguousarray(q)
    h = max(1, int(round(h_um / step)))
    halo = split_halo(step, sp)
    # split whatever the cores (one after the other on one), so that the labels do not depend on the machine
    if q.size >= FLOOD_SPLIT_MIN_VOXELS and 4 * halo <= q.shape[0]:
        labels = _flood_halves(q, step, sp, h_um, faces, halo, side, order=order)
        if labels is not None:
            return labels
        side = None  # started by the split flood (its work runs or has run in the pool)
    plateaus, face_levels = K.run_side_by_side(
        lambda: _plateaus(q),
        lambda: _seed_face_levels(q, sp, step, *_face_sections(q, sp, step, h_um, faces), h=h))
    return _watershed_dynamics(q, h, plateaus, face_levels, side, order=order)


#: Fewest voxels for :func:`_flood_by_dynamics` to flood the two halves of a volume (along z) on two cores, or one
#: after the other on one (:func:`_flood_halves`; on any number of cores since session 28, so that the labels do not
#: depend on the machine); smaller volumes are flooded whole, in one thread.  16 M (was 32 M until session 22):
#: on the 256³ speed benchmark's input the flood took 0.65-0.70 s split against 0.91-0.92 s whole, the same
#: 1394 particles (only their numbering differs).
FLOOD_SPLIT_MIN_VOXELS: int = 1 << 24


def split_halo(step: float, spacing) -> int:
    """Slices each half of :func:`_flood_halves` reaches beyond the seam: twice the deepest distance a level
    of ``step`` µm can code (255 levels), in z-voxels, plus 2.

    So every particle that crosses the seam lies whole inside both halves, and so do its neighbours'
    shares near it.
    """
    sp = normalize_spacing(spacing)
    return int(np.ceil(2 * 255 * float(step) / float(sp[0]))) + 2


def _flood_halves(q: np.ndarray, step: float, sp, h_um: float, faces, halo: int, side=None, *,
                  order: FloodOrder = "row"):
    """:func:`_flood_by_dynamics` of a C-contiguous ``q`` whose two halves along z are flooded by two threads.

    The lower half is flooded as the volume ``q[:m + halo]``, the upper one as ``q[m - halo:]`` (``m = Z // 2``),
    each with its far cut as a face that is not the volume's (the particle goes on beyond).  A voxel takes the
    lower flood's basin below the seam ``m`` and the upper flood's from ``m`` on; a lower and an upper basin
    become one particle where, on the two slices at the seam (``m - 1`` and ``m``, labelled by both floods),
    they share at least half of the smaller one's voxels there.  With ``halo`` slices beyond the seam
    (:func:`split_halo`) both floods see every particle that crosses it whole, so they label it alike; the
    result equals the whole flood's except where the flood order's ties near the seam, or a far cut's
    truncated particles, decide differently.  Both floods write into one (Z + 2 halo) volume, the lower one
    at its start and the upper one after it, so the halves cost ``2 * halo`` slices of memory beyond the
    labels.

    ``side`` (:class:`core._kernels.SideWork`, optional) is started once the second flood is under way.

    Returns
    -------
    labels : (Z, Y, X) uint16 or None
        None where a half needs more than uint16 labels, or the two together more than 65535 particles (the
        caller floods the volume whole); ``side`` has then been started.
    """
    nz, ny, nx = q.shape
    m = nz // 2
    h = max(1, int(round(h_um / step)))
    big = np.empty((nz + 2 * halo, ny, nx), np.uint16)
    parts = ((q[:m + halo], big[:m + halo], ((faces[0][0], False), faces[1], faces[2])),
             (q[m - halo:], big[m + halo:], ((False, faces[0][1]), faces[1], faces[2])))

    def flood(k):
        qs, out, fc = parts[k]
        plateaus = _plateaus(qs)
        face_levels = _seed_face_levels(qs, sp, step, *_face_sections(qs, sp, step, h_um, fc), h=h)
        return _flood_into(qs, out, h, plateaus, face_levels, order=order)

    upper = K.pool_submit(flood, 1)
    if side is not None:
        side.start()
    k_lo = flood(0)
    k_hi = upper.result()
    if k_lo < 0 or k_hi < 0:
        return None
    # the two slices at the seam, as each flood labelled them
    lo = big[m - 1:m + 1].reshape(-1)
    hi = big[m - 1 + 2 * halo:m + 1 + 2 * halo].reshape(-1)
    on = lo > 0
    lo, hi = lo[on].astype(np.int64), hi[on].astype(np.int64)
    pairs, n_pair = np.unique(lo * (k_hi + 1) + hi, return_counts=True)
    a, b = pairs // (k_hi + 1), pairs % (k_hi + 1)
    n_lo = np.bincount(lo, minlength=k_lo + 1)
    n_hi = np.bincount(hi, minlength=k_hi + 1)
    join = 2 * n_pair >= np.minimum(n_lo[a], n_hi[b])
    # which basins keep voxels (lower below the seam, upper from it on), numbered lower ones first
    present = np.zeros(k_lo + k_hi + 1, np.bool_)
    K.run_side_by_side(lambda: K.mark_present(big[:m], present, 0),  # (lower labels and upper ones: disjoint)
                       lambda: K.mark_present(big[m + 2 * halo:], present, k_lo))
    root = _union_roots(k_lo + k_hi + 1, a[join], b[join] + k_lo)
    lut = np.zeros(k_lo + k_hi + 1, np.int64)
    new_of_root = np.zeros(k_lo + k_hi + 1, np.int64)
    k = 0
    for v in np.flatnonzero(present):
        r = root[v]
        if new_of_root[r] == 0:
            k += 1
            new_of_root[r] = k
        lut[v] = new_of_root[r]
    if k > np.iinfo(np.uint16).max:
        return None
    flat, seam, shift = big.reshape(-1), m * ny * nx, 2 * halo * ny * nx
    K.run_side_by_side(lambda: _relabel_halves(flat, seam, shift, seam, lut, k_lo),  # the lower half in place ...
                       lambda: _relabel_halves(flat, seam, shift, nz * ny * nx, lut, k_lo, seam))  # ... the upper one
    return big[:nz]


def _union_roots(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Root (least member) of each of ``n`` nodes after joining the pairs ``(a[i], b[i])``."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    g = coo_matrix((np.ones(a.size, np.int8), (a, b)), shape=(n, n))
    _, comp = connected_components(g, directed=False)
    first = np.full(comp.max() + 1, n, np.int64)
    np.minimum.at(first, comp, np.arange(n))
    return first[comp]


@numba.njit(cache=True, nogil=True)
def _relabel_halves(flat, seam, shift, size, lut, k_lo, start=0):
    """``flat[i] = lut[flat[i]]`` for ``start <= i < seam``; ``flat[i] = lut[k_lo + flat[i + shift]]`` for
    ``max(seam, start) <= i < size`` (upper labels, moved down by ``shift``; in ascending order, so no value is
    read after it is overwritten).  The part below the seam and the part from it on read and write disjoint
    voxels: two threads may do one each."""
    for i in range(start, seam):
        flat[i] = lut[flat[i]]
    for i in range(max(seam, start), size):
        v = flat[i + shift]
        flat[i] = lut[k_lo + v] if v > 0 else 0


def _check_faces(faces) -> tuple:
    """``faces`` as a tuple of three (bool, bool) pairs, or a ValueError."""
    try:
        out = tuple((bool(lo), bool(hi)) for lo, hi in faces)
        ok = len(out) == 3 and all(isinstance(v, (bool, np.bool_)) for pair in faces for v in pair)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"faces must be three (low, high) pairs of booleans, one per axis, got {faces!r}")
    return out


def find_markers(dt: np.ndarray, params: SeparationParams, spacing=None) -> np.ndarray:
    """Seed labels (int32, 1..n) from the distance transform.

    Parameters
    ----------
    dt : (Z, Y, X) float
        Distance transform in µm.
    params : SeparationParams
    spacing : float or (3,) float, µm
    """
    sp = normalize_spacing(spacing)
    fg = dt > 0
    if params.markers == "hmaxima":
        # morphological reconstruction by dilation of (dt - h) under dt
        from skimage.morphology import reconstruction

        seed = np.maximum(dt - params.h_um, 0).astype(np.float32)
        rec = reconstruction(seed, dt.astype(np.float32), method="dilation")
        peaks = (dt - rec) >= params.h_um * 0.999
        peaks &= fg
    else:
        radius = [max(1, int(round(params.min_distance_um / s))) for s in sp]
        size = [2 * r + 1 for r in radius]
        peaks = (dt == ndi.maximum_filter(dt, size=size, mode="nearest")) & fg
    import cc3d

    markers = cc3d.connected_components(peaks, connectivity=26).astype(np.int32)
    return markers


def merge_fragments(labels: np.ndarray, spacing=None, *, merge_ratio: float = 2.0,
                    min_volume_um3: float = 0.0) -> np.ndarray:
    """Merge over-split fragments (see module docstring); returns new labels 1..n.

    Parameters
    ----------
    labels : (Z, Y, X) int
    spacing : float or (3,) float, µm
    merge_ratio : float
        Two regions merge while their shared interface exceeds this many times the smaller one's equivalent
        cross-section ``π r²``: the pair of largest ratio first, then the pairs of the merged region weighed
        again with its summed contacts and volume (:func:`_agglomerate`).
    min_volume_um3 : float
        Regions smaller than this join, first, the neighbour they share most interface with.  On a single slice
        (:mod:`core.slices`) a region's volume is that of the ball of its area's circle, and the merge ratio a
        contact's length against the smaller region's circle diameter.

    Returns
    -------
    labels : (Z, Y, X) uint16 or int32
        uint16 when ``labels`` is uint16, else int32.
    """
    return _merge_fragments(labels, spacing, merge_ratio=merge_ratio, min_volume_um3=min_volume_um3, inplace=False)


def _merge_fragments(labels: np.ndarray, spacing=None, *, merge_ratio: float, min_volume_um3: float,
                     inplace: bool) -> np.ndarray:
    """:func:`merge_fragments`; ``inplace=True`` (labels handed over by the caller) relabels ``labels`` itself."""
    labels = check_labels(labels)
    sp = normalize_spacing(spacing)
    lab = labels if labels.dtype in (np.uint16, np.int32) else labels.astype(np.int32)
    n = int(lab.max())
    if n == 0:
        return lab.copy()
    # two read-only passes over the labels, one per core where there are two
    (pa, pb, area), counts = K.run_side_by_side(lambda: K.contact_areas(lab, sp[0], sp[1], sp[2]),
                                                lambda: K.label_counts(lab, n))
    thin = slice_axis(lab.shape)
    if thin is None:
        vol = counts * float(np.prod(sp))
        ball = vol
    else:  # a single slice: each region's area and each contact's length in the plane, a region weighed as the
        # ball of its area's circle (core.slices)
        p0, p1 = plane_axes(thin)
        vol = counts * float(sp[p0] * sp[p1])  # (µm²)
        area = area / float(sp[thin])  # (µm)
        ball = np.pi / 6 * circle_diameter(vol) ** 3
    parent = np.arange(n + 1)
    if pa.size:
        forced = np.zeros(0, np.int64)
        if min_volume_um3 > 0:
            # a small fragment joins the neighbour it shares the most area with
            small_a = ball[pa] < min_volume_um3
            small_b = ball[pb] < min_volume_um3
            firsts = []
            for small, own in ((small_a, pa), (small_b, pb)):
                idx = np.flatnonzero(small)
                if idx.size:
                    order = np.lexsort((-area[idx], own[idx]))
                    firsts.append(idx[order][np.r_[True, own[idx][order][1:] != own[idx][order][:-1]]])
            if firsts:
                forced = np.unique(np.concatenate(firsts))
        above = np.zeros(0, np.int64)
        if merge_ratio > 0:
            if thin is None:
                r_small = np.cbrt(3 * np.minimum(vol[pa], vol[pb]) / (4 * np.pi))
                above = np.flatnonzero(area > merge_ratio * np.pi * r_small**2)
            else:  # a contact's length against the smaller region's circle diameter
                above = np.flatnonzero(area > merge_ratio * circle_diameter(np.minimum(vol[pa], vol[pb])))
        if forced.size or above.size:
            parent = _agglomerate(pa, pb, area, vol, merge_ratio, forced, above, plane=thin is not None)
    # new consecutive ids, background stays 0
    present = counts > 0
    present[0] = False
    roots = np.unique(parent[present])
    new_id = np.zeros(parent.max() + 1, np.int32)
    new_id[roots] = np.arange(1, len(roots) + 1, dtype=np.int32)
    lut = new_id[parent].astype(lab.dtype)
    lut[0] = 0
    out = lab if (inplace or lab is not labels) else lab.copy()
    K.remap_inplace(out, lut)
    return out


def _agglomerate(pa, pb, area, vol, merge_ratio: float, forced, above, *, plane: bool = False) -> np.ndarray:
    """Root region of each region (``(n + 1,)`` int64, the least id of its group) after the merges of
    :func:`_merge_fragments`.

    ``pa``, ``pb``, ``area``: the contacts of :func:`core._kernels.contact_areas` (region pairs and shared
    area, µm²); ``vol``: volume of each region (µm³, index = id).  With ``plane`` (a single slice,
    :mod:`core.slices`): ``area`` the contacts' lengths (µm), ``vol`` the regions' areas (µm²), and a ratio is a
    length against the smaller region's circle diameter instead.  First the ``forced`` contacts (indices into
    them: small fragments and their largest-contact neighbour) join.  Then the pair of regions with the largest
    ratio of shared area to the smaller one's equivalent cross-section ``π r²`` joins, as long as that ratio
    exceeds ``merge_ratio``; after each merge the joined region's volume and contacts (areas summed) are those
    of the region as it now is.  So a small fragment wedged between two particles, sharing a large face with
    each, joins the one it shares the larger ratio with, and the two particles stay apart; the transitive
    closure of the pairs above the ratio (before session 18) joined all three.  Only the regions of the
    ``above`` contacts (those above the ratio to begin with) and of the forced ones are looked at: a merge
    changes the ratios of the joined region's pairs only, and those are weighed again after it.
    """
    import heapq

    n1 = vol.size
    src = np.concatenate([pa, pb])
    order = np.argsort(src, kind="stable")
    nbr = np.concatenate([pb, pa])[order].tolist()
    nbr_area = np.concatenate([area, area])[order].tolist()
    start = np.searchsorted(src[order], np.arange(n1 + 1)).tolist()
    del src, order
    pa, pb = pa.tolist(), pb.tolist()
    parent = list(range(n1))
    v = [float(x) for x in vol]
    adj: dict = {}  # root -> {neighbouring root: shared area}, built when a region is first looked at

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def contacts(a):
        d = adj.get(a)
        if d is None:  # a region not merged yet: its own contacts
            d = {}
            for k in range(start[a], start[a + 1]):
                c = find(nbr[k])
                if c != a:
                    d[c] = d.get(c, 0.0) + nbr_area[k]
            adj[a] = d
        return d

    def ratio(a, b):
        if plane:  # a single slice: a contact's length against the smaller region's circle diameter
            return adj[a][b] / float(circle_diameter(min(v[a], v[b])))
        r = np.cbrt(3 * min(v[a], v[b]) / (4 * np.pi))
        return adj[a][b] / (np.pi * r * r)

    def entry(a, b):
        # a heap entry of the pair, weighed on the lesser id's contacts as the loop below weighs it again
        lo, hi = min(a, b), max(a, b)
        contacts(lo)
        contacts(hi)
        return -ratio(lo, hi), lo, hi

    def join(keep, gone):
        dk, dg = contacts(keep), contacts(gone)
        parent[gone] = keep
        v[keep] += v[gone]
        for c, s in dg.items():
            if c == keep:
                continue
            dc = adj.get(c)
            if dc is not None:
                del dc[gone]
                dc[keep] = dc.get(keep, 0.0) + s
            dk[c] = dk.get(c, 0.0) + s
        dk.pop(gone, None)
        del adj[gone]

    for k in forced.tolist():
        a, b = find(pa[k]), find(pb[k])
        if a != b:
            join(min(a, b), max(a, b))
    if merge_ratio > 0:
        joined = sorted({find(x) for k in forced.tolist() for x in (pa[k], pb[k])})
        heap = [entry(a, c) for a in joined for c in list(contacts(a))]
        heap += [entry(a, b) for a, b in ((find(pa[k]), find(pb[k])) for k in above.tolist()) if a != b]
        heapq.heapify(heap)
        while heap:
            s, a, b = heapq.heappop(heap)
            if parent[a] != a or parent[b] != b or b not in adj.get(a, ()):
                continue  # joined since
            now = ratio(a, b)
            if now != -s:  # weighed before a merge changed it
                heapq.heappush(heap, (-now, a, b))
                continue
            if now <= merge_ratio:
                break
            join(a, b)  # a < b: the root is the least id
            for c in list(adj[a]):
                heapq.heappush(heap, entry(a, c))
    out = np.asarray(parent, np.int64)
    while True:
        nxt = out[out]
        if np.array_equal(nxt, out):
            return out
        out = nxt


def separate_particles(
    phases: np.ndarray,
    spacing=None,
    params: SeparationParams | None = None,
    *,
    dt: np.ndarray | None = None,
    markers: np.ndarray | None = None,
    progress: Callable[[float, str], None] | None = None,
    faces=ALL_FACES,
) -> np.ndarray:
    """Label individual NMC particles.

    Parameters
    ----------
    phases : (Z, Y, X) uint8
        Phase codes (0 pore, 1 CBD, 2 NMC); not modified.
    spacing : float or (3,) float, µm
    params : SeparationParams
    dt : (Z, Y, X) float32, optional
        Precomputed :func:`distance_transform` of the (filled) NMC.
    markers : (Z, Y, X) int32, optional
        Precomputed seeds for a marker watershed (scikit-image); when given,
        ``params.markers`` is ignored.
    progress : callable(fraction, message), optional
    faces : ((bool, bool),) * 3
        Per axis, whether the low and high faces of ``phases`` are faces of the
        volume (default all six, :data:`ALL_FACES`).  With ``markers="hmaxima"``
        a particle those faces cut is judged by its section in the face
        (:func:`face_peak_levels`); a window cut from a bigger volume passes
        False where it was cut (there the particle goes on beyond).

    Returns
    -------
    labels : (Z, Y, X) uint16 or int32
        1..n on NMC voxels, 0 elsewhere.  With ``markers="hmaxima"`` the dtype
        of :func:`core._watershed.watershed_dynamics`'s labels: uint16 unless
        more than about 49,000 basins are alive at one time during the flood
        (as when it ends with 65535 basins or more), int32 then; always int32
        with ``markers="peaks"`` or given ``markers``.
    """
    return _separate_particles(phases, spacing, params, dt=dt, markers=markers, progress=progress, faces=faces)[0]


def _separate_particles(phases, spacing=None, params: SeparationParams | None = None, *, dt=None, markers=None,
                        progress=None, keep_outside: bool = False,
                        faces=ALL_FACES, side=None) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`separate_particles`, and with ``keep_outside`` what the crack filling found outside the NMC.

    ``phases`` may be handed over as a one-item list (without ``keep_outside``): the list is emptied, and on the
    default path only a packed copy of where the phases are NMC is held through the flood (the caller, holding no
    other reference, saves a byte per voxel at the flood's peak).

    ``side``: a :class:`core._kernels.SideWork` started when the single-threaded flood by dynamics starts (its
    calls then run on the core the flood leaves idle; the caller collects their results).  Where the second
    value is returned (not None), a last call is added to it: the enclosed non-NMC voxels and their components,
    :func:`core._kernels.enclosed_of_phases` of ``phases`` and that value, which the particle table's crack
    filling needs (:func:`core._kernels.assign_enclosed`); none is added otherwise.

    The second value is ``np.packbits`` of ``core._kernels.outside_reach(phases == NMC)`` (an eighth of a
    byte per voxel) where the default path computed it (``markers="hmaxima"``, no ``dt`` or ``markers``
    given, ``fill_cracks``), else None.  The labels then cover exactly the NMC, so it is also
    ``outside_reach(labels)``, which the particle table needs again (:func:`core.metrics._particle_table`'s
    ``outside``).
    """
    from skimage.segmentation import watershed

    handed = isinstance(phases, list)  # [phases]: handed over, the caller keeps no reference (see below)
    if handed:
        if len(phases) != 1 or keep_outside:
            raise ValueError("phases handed over as a list must be one array, without keep_outside")
        phases = phases.pop()
    phases = check_phases(phases)
    check_has_nmc(phases)
    sp = normalize_spacing(spacing)
    params = params or SeparationParams()
    faces = _check_faces(faces)
    report = progress or (lambda f, m: None)
    outside = None
    solid_bits = None
    if params.markers == "hmaxima" and markers is None and dt is None:
        # lean path: no float32 distance volume, no boolean copies kept (see quantised_distance)
        report(0.05, "distance transform")
        solid = phases == NMC
        filled = K.outside_reach(solid) if params.fill_cracks else solid
        if handed:  # phases handed over: only where they are NMC is kept, packed, through the flood (1/8 byte a voxel)
            solid_bits = np.packbits(solid)
            phases = None
        del solid
        if params.fill_cracks:
            outside = np.packbits(filled) if keep_outside else None
            np.logical_not(filled, out=filled)
            if outside is not None and side is not None:
                side.add(lambda: K.enclosed_of_phases(phases, outside, NMC))
        q = filled.view(np.uint8)  # the mask's memory becomes the quantised distance (no second volume) ...
        del filled
        # ... so a slab twice as thick as the public default fits in the same memory
        step = _quantise_in_place(q, sp, max(SLAB_VOXELS, q.size // 2), 8)
        report(0.3, "watershed (flooding by dynamics)")
        K.release_recycled()  # the run's peak: the memory a run recycles is returned first (K.recycled_heap)
        ws = _flood_by_dynamics(q, step, sp, params.h_um, faces, side, order=params.flood_order)
        del q
    else:
        solid = phases == NMC
        filled = fill_enclosed(solid) if params.fill_cracks else solid
        del solid
        if dt is None:
            report(0.05, "distance transform")
            dt = distance_transform(filled, sp)
        elif dt.shape != phases.shape:
            raise ValueError(f"dt shape {dt.shape} does not match phases shape {phases.shape}")
        del filled
        if params.markers == "hmaxima" and markers is None:
            report(0.3, "watershed (flooding by dynamics)")
            K.release_recycled()  # the run's peak: the memory a run recycles is returned first (K.recycled_heap)
            q, step = quantise(dt)
            del dt
            ws = _flood_by_dynamics(q, step, sp, params.h_um, faces, order=params.flood_order)
            del q
        else:
            if markers is None:
                report(0.25, "finding markers")
                markers = find_markers(dt, params, sp)
            elif markers.shape != phases.shape:
                raise ValueError(f"markers shape {markers.shape} does not match phases shape {phases.shape}")
            report(0.45, f"watershed from {int(markers.max())} markers")
            ws = watershed(-dt, markers, mask=dt > 0).astype(np.int32, copy=False)
    if solid_bits is not None:
        K.clear_unset_bits(ws, solid_bits)
        del solid_bits
    else:
        K.clear_non_solid(ws, phases if phases.dtype == np.uint8 else phases.astype(np.uint8), NMC)
    report(0.85, "merging over-split fragments")
    labels = _merge_fragments(ws, sp, merge_ratio=params.merge_ratio, min_volume_um3=params.min_volume_um3,
                              inplace=True)
    report(1.0, f"{int(labels.max())} particles")
    return labels, outside
