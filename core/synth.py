"""Synthetic composite-cathode volumes with ground truth.

:func:`make_electrode` builds an NMC / CBD / pore microstructure with known
particle labels and a **detachment knob**, then images it into a realistic
greyscale volume.  Everything is seeded through an ``rng`` argument.

The microstructure, step by step:

1. polydisperse secondary particles (log-normal radii, slightly ellipsoidal and
   rough) placed by random sequential addition, then inflated so that
   neighbours overlap and form necks; a calendering factor flattens them along
   the thickness axis (axis 0).  The first ``surface_gap_um`` of axis 0 is
   left empty: the separator side of the electrode is its free surface.
2. touching particles are split along the power-diagram plane (each voxel goes
   to the particle whose normalised distance is smallest);
3. a share of particles gets one or two internal planar cracks that do not
   reach the surface;
4. CBD forms bridges in the concave necks between particles (a morphological
   closing of the NMC phase) and partial coatings (a shell of
   ``cbd_thickness_um`` on patches of the free surface);
5. detachment: for each particle a share ``s`` of its CBD contact (drawn around
   ``detachment_mean`` plus a linear gradient through the depth) is replaced by
   a gap of ``gap_um``; the detached share is a contiguous cap of the particle.

The true per-particle table is measured on the true phases and labels with
:func:`core.metrics.particle_table`, so it follows exactly the same
definitions as an analysis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import edt as edt_pkg
import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from ._validate import normalize_spacing
from .codes import CBD, NMC, PORE
from .metrics import particle_table


@dataclass(frozen=True)
class ElectrodeParams:
    """Microstructure of a synthetic electrode (lengths in µm).

    Attributes
    ----------
    shape : (3,) int
        Volume shape (z, y, x); axis 0 is the electrode thickness, index 0 the
        separator side.
    spacing : (3,) float, µm
        Voxel size.
    radius_median_um, radius_sigma : float
        Log-normal particle radius distribution (median, sigma of ln r).
    radius_min_um, radius_max_um : float
        Clip of the radii.
    packing : float
        Target NMC volume fraction before inflation (random sequential
        addition saturates near 0.4).
    inflate : float
        Radius growth after placement; > 1 makes neighbours overlap (necks).
    calendering : float
        Scale of particle shapes and positions along axis 0 (< 1 flattens).
    shape_jitter : float
        Relative random spread of the three ellipsoid semi-axes.
    roughness : float
        Amplitude of low-order surface undulation (relative to the radius).
    surface_gap_um : float
        Empty layer at the separator side (index 0 of axis 0).
    crack_prob : float
        Probability that a particle has internal cracks.
    crack_width_um : float
        Crack opening.
    cbd_bridge_um : float
        Radius of the closing that fills particle necks with CBD.
    cbd_coverage : float
        Share of the free particle surface covered by a CBD coating.
    cbd_thickness_um : float
        Coating thickness.
    detachment_mean : float
        Mean share of each particle's CBD contact that is detached.
    detachment_gradient : float
        Change of that mean from the separator side (depth 0) to the current
        collector (depth 1): ``mean(d) = detachment_mean + gradient * (d - 0.5)``.
    detachment_spread : float
        Standard deviation of the per-particle share around its mean.
    gap_um : float
        Thickness of the gap that replaces detached CBD.
    """

    shape: tuple[int, int, int] = (160, 160, 160)
    spacing: tuple[float, float, float] = (0.4, 0.4, 0.4)
    radius_median_um: float = 3.4
    radius_sigma: float = 0.25
    radius_min_um: float = 1.6
    radius_max_um: float = 7.0
    packing: float = 0.42
    inflate: float = 1.14
    calendering: float = 0.92
    shape_jitter: float = 0.08
    roughness: float = 0.06
    surface_gap_um: float = 2.0
    crack_prob: float = 0.3
    crack_width_um: float = 0.5
    cbd_bridge_um: float = 1.6
    cbd_coverage: float = 0.75
    cbd_thickness_um: float = 1.0
    detachment_mean: float = 0.1
    detachment_gradient: float = 0.0
    detachment_spread: float = 0.1
    gap_um: float = 0.8


@dataclass(frozen=True)
class ImagingParams:
    """Greyscale imaging model.

    Attributes
    ----------
    intensity_pore, intensity_cbd, intensity_nmc : float
        Mean attenuation of each phase (arbitrary units; CBD lies between).
    cbd_texture : float
        Relative standard deviation of a smooth texture inside CBD.
    blur_um : float
        Gaussian point-spread function sigma.
    noise : float
        Standard deviation of additive Gaussian noise (same units as the
        intensities).
    cupping : float
        Beam-hardening cupping: relative brightening towards the rim of each
        slice.
    rings : float
        Amplitude of ring artefacts (concentric about the slice centre).
    streaks : float
        Amplitude of streak artefacts.
    dtype : str
        Output dtype (an unsigned integer type).
    """

    intensity_pore: float = 0.12
    intensity_cbd: float = 0.42
    intensity_nmc: float = 0.85
    cbd_texture: float = 0.05
    blur_um: float = 0.3
    noise: float = 0.035
    cupping: float = 0.0
    rings: float = 0.0
    streaks: float = 0.0
    dtype: str = "uint16"


@dataclass(frozen=True, eq=False)
class SyntheticElectrode:
    """A synthetic electrode and its ground truth.

    Attributes
    ----------
    name : str
    greyscale : (Z, Y, X) uint16
    phases : (Z, Y, X) uint8, codes 0 pore / 1 CBD / 2 NMC
    labels : (Z, Y, X) int32, particle labels on NMC voxels (cracks are 0)
    spacing : (3,) float, µm
    table : DataFrame
        True per-particle table (:func:`core.metrics.particle_table` columns)
        plus ``target_detached_share``, the share drawn by the knob.
    electrode : ElectrodeParams
    imaging : ImagingParams
    seed : int or None
    extra : dict
        ``"cracks"``: (Z, Y, X) bool, the generator's crack voxels (pore inside particles; label 0), so
        that a reference can leave out a particle's faces to its own cracks without inferring them.
    """

    name: str
    greyscale: np.ndarray
    phases: np.ndarray
    labels: np.ndarray
    spacing: tuple[float, float, float]
    table: pd.DataFrame
    electrode: ElectrodeParams
    imaging: ImagingParams
    seed: int | None = None
    extra: dict = field(default_factory=dict)


#: The three built-in demo electrodes (clearly synthetic), increasing detachment.
DEMO_ELECTRODES: dict[str, ElectrodeParams] = {
    "pristine": ElectrodeParams(detachment_mean=0.05, detachment_spread=0.05),
    "cycled-1C": ElectrodeParams(detachment_mean=0.30, detachment_spread=0.12, crack_prob=0.4),
    "cycled-5C": ElectrodeParams(
        detachment_mean=0.55, detachment_gradient=-0.3, detachment_spread=0.15, crack_prob=0.55
    ),
}

#: The C-rate each demo electrode was "cycled" at, given it as a sample attribute (unit ``C``) so that the Compare
#: page's electrode axis has something to show on a first start; the uncycled electrode stands at 0.
DEMO_C_RATES: dict[str, float] = {"pristine": 0.0, "cycled-1C": 1.0, "cycled-5C": 5.0}

DEMO_DESCRIPTIONS: dict[str, str] = {
    "pristine": "SYNTHETIC demo: uncycled electrode, CBD well attached (mean detached share 0.05).",
    "cycled-1C": "SYNTHETIC demo: cycled at 1C, mean detached share 0.30, more cracks.",
    "cycled-5C": "SYNTHETIC demo: cycled at 5C, mean detached share 0.55, more near the separator.",
}


def _validate_params(p: ElectrodeParams) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    shape = tuple(int(s) for s in p.shape)
    if len(shape) != 3 or min(shape) < 8:
        raise ValueError(f"shape must be 3 sizes >= 8 voxels, got {p.shape}")
    sp = normalize_spacing(p.spacing)
    for name in ("packing", "crack_prob", "cbd_coverage", "detachment_mean"):
        v = getattr(p, name)
        if not 0 <= v <= 1:
            raise ValueError(f"{name} must lie in [0, 1], got {v}")
    if p.radius_median_um <= 0 or p.radius_min_um <= 0 or p.radius_max_um < p.radius_min_um:
        raise ValueError("radii must be > 0 with radius_min_um <= radius_max_um")
    if not 0.5 <= p.calendering <= 1.0:
        raise ValueError(f"calendering must lie in [0.5, 1], got {p.calendering}")
    return shape, sp


#: Placed spheres between two rebuilds of :func:`_place_particles`'s k-d tree.
_REINDEX_EVERY = 64


def _free(cand: np.ndarray, r: float, centres: np.ndarray, kept: np.ndarray, n: int, tree, indexed: int) -> np.ndarray:
    """Which candidate centres ``cand`` (k, 3) leave a sphere of radius ``r`` clear of the ``n`` placed ones.

    The same test as ``all(|cand - c_j| >= kept_j + r)`` over every placed sphere ``j``, with the same arithmetic
    (so the same packing, bit for bit), made on the spheres near each candidate only: the k-d tree of the first
    ``indexed`` ones finds those within ``r + max(kept)`` (every placed radius is at least ``r``: the radii come
    largest first), the later ones are all checked.  (At 320³ the check over every sphere took 15 of the demo's
    41 s; this, 1 s.)
    """
    k = len(cand)
    if n == 0:
        return np.ones(k, bool)
    rows, cols = [], []
    if indexed:
        reach = (r + float(kept[:indexed].max())) * (1 + 1e-9) + 1e-12  # a hair wider than any conflict
        near = tree.query_ball_point(cand, reach)
        lengths = np.fromiter((len(x) for x in near), np.int64, k)
        if lengths.sum():
            rows.append(np.repeat(np.arange(k), lengths))
            cols.append(np.fromiter((j for x in near for j in x), np.int64, int(lengths.sum())))
    if n > indexed:
        rest = np.arange(indexed, n)
        rows.append(np.repeat(np.arange(k), len(rest)))
        cols.append(np.tile(rest, k))
    ok = np.ones(k, bool)
    if rows:
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        d = np.linalg.norm(cand[rows] - centres[cols], axis=1)
        ok[rows[d < kept[cols] + r]] = False
    return ok


def _place_particles(p: ElectrodeParams, size_um: np.ndarray, rng: np.random.Generator):
    """Random sequential addition of spheres in an uncalendered box; returns centres and radii (µm)."""
    zlen = size_um[0] / p.calendering
    box_lo = np.array([p.surface_gap_um / p.calendering, -0.5 * p.radius_median_um, -0.5 * p.radius_median_um])
    box_hi = np.array([zlen + 0.5 * p.radius_median_um, size_um[1] + 0.5 * p.radius_median_um,
                       size_um[2] + 0.5 * p.radius_median_um])
    box_vol = float(np.prod(box_hi - box_lo))
    target = p.packing * box_vol
    radii = []
    vol = 0.0
    while vol < target * 1.6:
        r = float(np.clip(p.radius_median_um * np.exp(rng.normal(0, p.radius_sigma)), p.radius_min_um,
                          p.radius_max_um))
        radii.append(r)
        vol += 4 / 3 * np.pi * r**3
    radii = np.sort(np.array(radii))[::-1]
    centres = np.empty((len(radii), 3))
    kept = np.empty(len(radii))
    n = 0
    vol = 0.0
    tree, indexed = None, 0  # a k-d tree of centres[:indexed]; the later ones are checked one by one
    for r in radii:
        if vol >= target:
            break
        lo = box_lo.copy()
        lo[0] += r  # particles do not cross the free surface
        cand = rng.uniform(lo, box_hi, size=(60, 3))
        if n - indexed >= _REINDEX_EVERY:
            tree, indexed = cKDTree(centres[:n]), n
        ok = _free(cand, r, centres, kept, n, tree, indexed)
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            continue
        centres[n] = cand[idx[0]]
        kept[n] = r
        n += 1
        vol += 4 / 3 * np.pi * r**3
    centres = centres[:n]
    centres[:, 0] *= p.calendering
    return centres, kept[:n] * p.inflate


def _rasterise(p, shape, sp, centres, radii, rng):
    """Label volume by the power diagram of rough ellipsoids; plus crack mask."""
    labels = np.zeros(shape, np.int32)
    best = np.full(shape, np.inf, np.float32)
    cracks = np.zeros(shape, bool)
    sp_arr = np.asarray(sp)
    n = len(radii)
    semi = radii[:, None] * (1 + rng.uniform(-p.shape_jitter, p.shape_jitter, size=(n, 3)))
    semi[:, 0] *= p.calendering
    rough_dirs = rng.normal(size=(n, 3, 3))
    rough_dirs /= np.linalg.norm(rough_dirs, axis=2, keepdims=True)
    rough_amp = rng.uniform(-1, 1, size=(n, 3)) * p.roughness
    cracked = rng.random(n) < p.crack_prob
    for i in range(n):
        c, s = centres[i], semi[i]
        reach = s * (1 + 2 * p.roughness)
        lo = np.maximum(np.floor((c - reach) / sp_arr).astype(int), 0)
        hi = np.minimum(np.ceil((c + reach) / sp_arr).astype(int) + 1, shape)
        if np.any(hi <= lo):
            continue
        zz, yy, xx = np.ogrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        dz, dy, dx = zz * sp[0] - c[0], yy * sp[1] - c[1], xx * sp[2] - c[2]
        q = np.sqrt((dz / s[0]) ** 2 + (dy / s[1]) ** 2 + (dx / s[2]) ** 2)
        dist = np.sqrt(dz**2 + dy**2 + dx**2) + 1e-9
        undulation = 1.0
        for k in range(3):
            t = (rough_dirs[i, k, 0] * dz + rough_dirs[i, k, 1] * dy + rough_dirs[i, k, 2] * dx) / dist
            undulation = undulation + rough_amp[i, k] * (t**2 - 1 / 3)
        q = (q / undulation).astype(np.float32)
        sl = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))
        win = (q < 1) & (q < best[sl])
        labels[sl][win] = i + 1
        best[sl][win] = q[win]
        if cracked[i]:
            for _ in range(rng.integers(1, 3)):
                nrm = rng.normal(size=3)
                nrm /= np.linalg.norm(nrm)
                off = rng.uniform(-0.3, 0.3) * s.mean()
                plane = np.abs(nrm[0] * dz + nrm[1] * dy + nrm[2] * dx - off) < p.crack_width_um / 2
                cracks[sl] |= plane & (q < 0.8)
    # a crack only exists inside its own particle
    cracks &= labels > 0
    return labels, cracks


def _dist_outside(mask: np.ndarray, sp) -> np.ndarray:
    """Euclidean distance (µm) of each voxel outside ``mask`` to the mask."""
    return edt_pkg.edt(~mask, anisotropy=sp, black_border=False, parallel=2).astype(np.float32)


def _smooth_field(shape, sigma_vox, rng) -> np.ndarray:
    f = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_vox)
    return f / (f.std() + 1e-12)


def _make_cbd(p, sp, nmc, cracks, rng):
    """CBD as neck bridges plus partial coatings."""
    d_out = _dist_outside(nmc, sp)
    dilated = d_out <= p.cbd_bridge_um
    # closing = erosion of the dilation: voxels farther than r from the dilation's outside
    d_back = edt_pkg.edt(dilated, anisotropy=sp, black_border=False, parallel=2)
    closing = d_back > p.cbd_bridge_um
    bridges = closing & ~nmc
    shell = (d_out > 0) & (d_out <= p.cbd_thickness_um)
    patches = _smooth_field(nmc.shape, 2.0 / np.asarray(sp), rng)
    coated = shell & (patches < np.quantile(patches[shell], p.cbd_coverage)) if shell.any() else shell
    return (bridges | coated) & ~nmc & ~cracks


def _coordinate_sums(labels: np.ndarray, n: int) -> np.ndarray:
    """(n + 1, 3) sums of the z, y and x voxel indices of each label 0..n: per-plane voxel counts times the plane's
    index (one plain bincount per plane, not a weighted bincount over the whole volume per axis)."""
    sums = np.zeros((n + 1, 3))
    for a in range(3):
        for i in range(labels.shape[a]):
            plane = np.take(labels, i, axis=a)
            if i:
                sums[:, a] += i * np.bincount(plane.ravel(), minlength=n + 1)
    return sums


def _detach(p, shape, sp, labels, nmc, cbd, centres, rng):
    """Replace a cap-shaped share of each particle's CBD contact by a gap."""
    n = int(labels.max())
    # the nearest NMC voxel of each CBD voxel (scipy's feature transform), and the distance to it computed as scipy's
    # distance_transform_edt does, on the CBD voxels only (over the whole volume it took 3 of the demo's 41 s at 320³)
    ft = ndi.distance_transform_edt(~nmc, sampling=sp, return_distances=False, return_indices=True)
    cz, cy, cx = np.nonzero(cbd)
    near = ft[:, cz, cy, cx]
    del ft
    step = [(near[a] - c).astype(np.float64) * float(sp[a]) for a, c in enumerate((cz, cy, cx))]
    dist_cbd = np.sqrt((step[0] * step[0] + step[1] * step[1]) + step[2] * step[2])
    del step
    # voxels and coordinate sums per particle: whole numbers, so exact in any order (as the weighted bincounts were)
    cnt = np.bincount(labels.ravel(), minlength=n + 1).astype(float)
    sums = _coordinate_sums(labels, n)
    zc = sums[:, 0]
    with np.errstate(invalid="ignore"):
        depth = zc / np.maximum(cnt, 1) / max(shape[0] - 1, 1)
    mean = p.detachment_mean + p.detachment_gradient * (depth - 0.5)
    share = np.clip(rng.normal(mean, p.detachment_spread), 0, 1)
    share[0] = 0
    directions = rng.normal(size=(n + 1, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)

    in_layer = dist_cbd <= p.gap_um
    lz, ly, lx = cz[in_layer], cy[in_layer], cx[in_layer]
    owner = labels[near[0, in_layer], near[1, in_layer], near[2, in_layer]]
    dist_layer = dist_cbd[in_layer]
    del near, dist_cbd
    pos = np.stack([lz * sp[0], ly * sp[1], lx * sp[2]], axis=1)
    # centroid of each particle in µm (from the voxels, robust to clipping)
    cen = np.zeros((n + 1, 3))
    for a in range(3):
        cen[:, a] = sums[:, a] / np.maximum(cnt, 1) * sp[a]
    vec = pos - cen[owner]
    vec /= np.linalg.norm(vec, axis=1, keepdims=True) + 1e-12
    score = np.einsum("ij,ij->i", vec, directions[owner])
    # per-owner threshold: the (1 - share) quantile of scores of the voxels touching the particle
    touching = dist_layer <= max(sp) * 1.01
    order = np.lexsort((score[touching], owner[touching]))
    own_t, sc_t = owner[touching][order], score[touching][order]
    starts = np.searchsorted(own_t, np.arange(n + 1), side="left")
    ends = np.searchsorted(own_t, np.arange(n + 1), side="right")
    counts = ends - starts
    k = starts + np.floor((1 - share) * counts).astype(int)
    thr = np.full(n + 1, np.inf)
    has = (counts > 0) & (k < ends)
    thr[has] = sc_t[k[has]]
    remove = score >= thr[owner]
    out = cbd.copy()
    out[lz[remove], ly[remove], lx[remove]] = False
    return out, share


def _image(phases, sp, im: ImagingParams, rng) -> np.ndarray:
    lut = np.array([im.intensity_pore, im.intensity_cbd, im.intensity_nmc], np.float32)
    img = lut[phases]
    if im.cbd_texture > 0:
        tex = _smooth_field(phases.shape, 1.0, rng) * im.cbd_texture * im.intensity_cbd
        img += np.where(phases == CBD, tex, 0).astype(np.float32)
    if im.blur_um > 0:
        img = ndi.gaussian_filter(img, [im.blur_um / s for s in sp])
    nz, ny, nx = phases.shape
    yy, xx = np.ogrid[:ny, :nx]
    rad = np.sqrt((yy - (ny - 1) / 2) ** 2 + (xx - (nx - 1) / 2) ** 2)
    if im.cupping:
        img *= (1 + im.cupping * (rad / rad.max()) ** 2)[None].astype(np.float32)
    if im.rings:
        ring = np.zeros_like(rad, dtype=np.float32)
        for r0 in rng.uniform(0, rad.max(), size=8):
            ring += rng.uniform(-1, 1) * np.exp(-((rad - r0) ** 2) / 0.5)
        img += (im.rings * ring)[None]
    if im.streaks:
        for z in rng.integers(0, nz, size=max(1, nz // 16)):
            ang = rng.uniform(0, np.pi)
            dist = np.abs((yy - ny / 2) * np.cos(ang) - (xx - nx / 2) * np.sin(ang))
            img[z] += im.streaks * np.exp(-(dist**2) / 2).astype(np.float32)
    if im.noise > 0:
        img += rng.normal(0, im.noise, size=img.shape).astype(np.float32)
    info = np.iinfo(np.dtype(im.dtype))
    scaled = np.clip(img * (0.6 * info.max) + 0.1 * info.max, 0, info.max)
    return scaled.astype(im.dtype)


def make_electrode(
    params: ElectrodeParams | None = None,
    imaging: ImagingParams | None = None,
    *,
    rng: np.random.Generator | int | None = None,
    name: str = "synthetic",
    progress: Callable[[float, str], None] | None = None,
) -> SyntheticElectrode:
    """Generate a synthetic electrode with its ground truth.

    Parameters
    ----------
    params : ElectrodeParams
        Microstructure (default: :class:`ElectrodeParams()`).
    imaging : ImagingParams
        Greyscale model (default: :class:`ImagingParams()`).
    rng : numpy Generator or int or None
        Source of randomness; an int seeds ``np.random.default_rng``.
    name : str
        Name carried into the result.
    progress : callable(fraction, message), optional
        Told each step (placing the particles, drawing them, the CBD, the detachment gaps, the image, the true
        table; the fractions are those of a 320³ electrode's time); a 320³ electrode takes 24-28 s on 2 cores,
        and a job is cancelled at its next report.

    Returns
    -------
    SyntheticElectrode
        ``greyscale`` (Z, Y, X) uint16, ``phases`` (Z, Y, X) uint8,
        ``labels`` (Z, Y, X) int32 and the true per-particle ``table``.
    """
    def step(fraction: float, what: str) -> None:
        if progress is not None:
            progress(fraction, f"generating the synthetic electrode: {what}")

    params = params or ElectrodeParams()
    imaging = imaging or ImagingParams()
    seed = rng if isinstance(rng, (int, np.integer)) else None
    rng = np.random.default_rng(rng)
    shape, sp = _validate_params(params)
    size_um = np.asarray(shape) * np.asarray(sp)

    step(0.0, "placing the particles")
    centres, radii = _place_particles(params, size_um, rng)
    step(0.05, f"drawing {len(radii)} particles")
    labels, cracks = _rasterise(params, shape, sp, centres, radii, rng)
    labels[cracks] = 0
    # relabel 1..n in order of appearance (particles clipped away vanish)
    present = np.unique(labels)
    present = present[present > 0]
    remap = np.zeros(int(labels.max()) + 1, np.int32)
    remap[present] = np.arange(1, len(present) + 1, dtype=np.int32)
    labels = remap[labels]
    nmc = labels > 0
    step(0.15, "the carbon-binder domain")
    cbd = _make_cbd(params, sp, nmc, cracks, rng)
    step(0.45, "the detachment gaps")
    cbd, share = _detach(params, shape, sp, labels, nmc, cbd, centres, rng)
    phases = np.full(shape, PORE, np.uint8)
    phases[cbd] = CBD
    phases[nmc] = NMC
    step(0.8, "the greyscale image (blur and noise)")
    grey = _image(phases, sp, imaging, rng)
    step(0.95, "its true particle table")
    table = particle_table(labels, phases, sp, axis=0, separator_side="start")
    table["target_detached_share"] = share[table["label"].to_numpy()]
    step(1.0, "done")
    return SyntheticElectrode(
        name=name, greyscale=grey, phases=phases, labels=labels, spacing=sp, table=table,
        electrode=params, imaging=imaging, seed=seed, extra={"cracks": cracks},
    )


#: Demo electrodes are for demonstration: each side from DEMO_MIN_SIDE to DEMO_MAX_SIDE voxels and at most
#: DEMO_MAX_VOXELS voxels in all (512³, about 1 minute and a few GB to generate), so a typo cannot start hours
#: of generation.  Real volumes of any size are read from files.
DEMO_MIN_SIDE = 8
DEMO_MAX_SIDE = 1024
DEMO_MAX_VOXELS = 512**3


def check_demo_shape(shape, what: str = "demo shape") -> tuple[int, int, int]:
    """Validate the shape of a demo electrode (see :data:`DEMO_MAX_VOXELS`); return it as 3 ints."""
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) != 3:
        raise ValueError(f"{what} must be 3 whole numbers (z, y, x), got {shape!r}")
    if any(isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) for n in shape):
        raise TypeError(f"{what} must be 3 whole numbers (z, y, x), got {tuple(shape)!r}")
    dims = tuple(int(n) for n in shape)
    if any(not DEMO_MIN_SIDE <= n <= DEMO_MAX_SIDE for n in dims):
        raise ValueError(f"{what} {dims} is outside the demo limits: each side from {DEMO_MIN_SIDE} to "
                         f"{DEMO_MAX_SIDE} voxels")
    total = dims[0] * dims[1] * dims[2]
    if total > DEMO_MAX_VOXELS:
        raise ValueError(f"{what} {dims} has {total:,} voxels, more than the demo limit of {DEMO_MAX_VOXELS:,} "
                         f"(512³)")
    return dims  # type: ignore[return-value]


def demo_electrode(name: str, *, rng=0, shape: tuple[int, int, int] | None = None,
                   progress: Callable[[float, str], None] | None = None) -> SyntheticElectrode:
    """One of the built-in demo electrodes (see :data:`DEMO_ELECTRODES`).

    ``shape`` must respect :func:`check_demo_shape` (each side 8..1024, at most 512³ voxels); ``progress`` is
    :func:`make_electrode`'s.
    """
    if name not in DEMO_ELECTRODES:
        raise ValueError(f"unknown demo electrode {name!r}; choose one of {list(DEMO_ELECTRODES)}")
    params = DEMO_ELECTRODES[name]
    if shape is not None:
        params = replace(params, shape=check_demo_shape(shape))
    return make_electrode(params, rng=rng, name=name, progress=progress)



# ---------------------------------------------------------------------------------------------------------
# Sphere packings: a second, simpler generator with imaging and shape knobs (robustness grids)
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackingParams:
    """A packing of polydisperse spheres with necks, CBD in the necks, blur and noise (lengths in µm).

    Unlike :class:`ElectrodeParams` (rough ellipsoids, cracks, coatings, detachment caps), the particles are
    plain spheres and the knobs are the ones that decide whether touching particles can be told apart on a
    greyscale image: size in voxels, neck overlap, CBD in the necks, blur and noise.

    Attributes
    ----------
    shape : (3,) int
        Volume shape (z, y, x).
    spacing : (3,) float, µm
        Voxel size.
    radius_median_um, radius_sigma : float
        Log-normal radius distribution (median, sigma of ln r) of the spheres as placed, before the
        neck growth.
    radius_min_um, radius_max_um : float
        Clip of those radii.
    packing : float
        Target volume fraction of the placed (non-overlapping) spheres; random sequential addition
        stops earlier when no free place is found.
    neck_overlap : float
        The spheres are grown by ``1 / (1 - neck_overlap)`` after placement, so two that touched
        overlap by up to ``neck_overlap`` of the sum of their radii (``r1 + r2 - d``); 0 gives point
        contacts.  The overlap of two spheres is split by the plane of their power diagram (each voxel
        goes to the sphere of smallest ``|x - c|² - r²``): a planar interface.
    cbd_fraction : float
        Volume fraction of the whole volume filled with CBD, in the necks: the pore voxels of the
        morphological closing of the NMC whose radius gives that fraction (bisection; less where even a
        closing of ``4 * radius_median_um`` gives less).
    blur_voxels : float
        Gaussian blur sigma of the image, in voxels of the finest axis.
    noise_contrast : float
        Standard deviation of the additive Gaussian noise as a share of the pore-NMC contrast.
    """

    shape: tuple[int, int, int] = (128, 128, 128)
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    radius_median_um: float = 7.0
    radius_sigma: float = 0.35
    radius_min_um: float = 4.0
    radius_max_um: float = 15.0
    packing: float = 0.5
    neck_overlap: float = 0.10
    cbd_fraction: float = 0.12
    blur_voxels: float = 1.0
    noise_contrast: float = 0.09

    def __post_init__(self):
        shape = tuple(self.shape) if hasattr(self.shape, "__len__") else ()
        if len(shape) != 3 or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 8
                                  for s in shape):
            raise ValueError(f"shape must be 3 whole numbers >= 8, got {self.shape!r}")
        normalize_spacing(self.spacing)
        for name in ("radius_median_um", "radius_sigma", "radius_min_um", "radius_max_um", "packing",
                     "neck_overlap", "cbd_fraction", "blur_voxels", "noise_contrast"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
                raise TypeError(f"{name} must be a finite number, got {v!r}")
            if v < 0:
                raise ValueError(f"{name} must be >= 0, got {v}")
        if not 0 < self.radius_min_um <= self.radius_max_um:
            raise ValueError(f"radii must satisfy 0 < radius_min_um <= radius_max_um, got {self.radius_min_um} "
                             f"and {self.radius_max_um}")
        if self.radius_median_um <= 0:
            raise ValueError(f"radius_median_um must be > 0, got {self.radius_median_um}")
        for name in ("packing", "cbd_fraction"):
            if not getattr(self, name) <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if not self.neck_overlap < 0.5:
            raise ValueError(f"neck_overlap must lie in [0, 0.5), got {self.neck_overlap}")

    def imaging(self) -> ImagingParams:
        """The :class:`ImagingParams` of these blur and noise knobs (default phase grey values)."""
        im = ImagingParams()
        contrast = im.intensity_nmc - im.intensity_pore
        sp = normalize_spacing(self.spacing)
        return replace(im, blur_um=float(self.blur_voxels * min(sp)), noise=float(self.noise_contrast * contrast))


def _draw_radii(p: PackingParams, box_vol: float, rng: np.random.Generator) -> np.ndarray:
    """Log-normal radii (µm), clipped, enough to fill ``packing`` of ``box_vol``, largest first."""
    radii: list[float] = []
    vol, target = 0.0, p.packing * box_vol
    while vol < target:
        r = float(np.clip(p.radius_median_um * np.exp(rng.normal(0, p.radius_sigma)), p.radius_min_um,
                          p.radius_max_um))
        radii.append(r)
        vol += 4 / 3 * np.pi * r**3
    return np.sort(np.array(radii))[::-1]


def _place_spheres(p: PackingParams, shape, sp, rng: np.random.Generator):
    """Random sequential addition on a grid that holds each point's clearance to the spheres placed so far.

    The domain is the volume plus a margin (spheres may be cut by the volume edge).  Each sphere tries
    random grid points and takes, among those with clearance >= its radius, the one of least clearance
    (the closest to touching a sphere already placed), which makes a dense packing rich in contacts.
    Returns centres (µm, in the volume's frame) and radii (µm) before the neck growth.
    """
    sp_arr = np.asarray(sp)
    grow = 1.0 / (1.0 - p.neck_overlap)
    margin = np.ceil(p.radius_max_um * grow / sp_arr).astype(int) + 1
    dom = np.asarray(shape) + 2 * margin
    origin = -margin * sp_arr  # µm position of domain voxel 0
    radii = _draw_radii(p, float(np.prod(dom * sp_arr)), rng)
    clear = np.full(tuple(dom), np.inf, np.float32)
    centres, kept = [], []
    tries = 128
    for r in radii:
        idx = rng.integers(0, dom, size=(tries, 3))
        c = clear[idx[:, 0], idx[:, 1], idx[:, 2]]
        ok = np.flatnonzero(c >= r)
        if ok.size == 0:
            continue
        j = ok[np.argmin(c[ok])]
        centre = origin + idx[j] * sp_arr
        centres.append(centre)
        kept.append(r)
        # clearance update in the window that a later sphere could still need
        reach = r + p.radius_max_um
        lo = np.maximum(idx[j] - np.ceil(reach / sp_arr).astype(int), 0)
        hi = np.minimum(idx[j] + np.ceil(reach / sp_arr).astype(int) + 1, dom)
        zz, yy, xx = (np.arange(lo[a], hi[a]) * sp_arr[a] + origin[a] - centre[a] for a in range(3))
        d = np.sqrt(zz[:, None, None] ** 2 + yy[None, :, None] ** 2 + xx[None, None, :] ** 2) - r
        sl = tuple(slice(lo[a], hi[a]) for a in range(3))
        np.minimum(clear[sl], d.astype(np.float32), out=clear[sl])
    return np.array(centres).reshape(-1, 3), np.array(kept) * grow


def _rasterise_power(shape, sp, centres, radii) -> np.ndarray:
    """Labels 1..n of the spheres, overlaps split by the power diagram (planar interfaces)."""
    sp_arr = np.asarray(sp)
    labels = np.zeros(shape, np.int32)
    best = np.zeros(shape, np.float32)  # power |x - c|² - r² of the owner (< 0 inside a sphere)
    for i, (c, r) in enumerate(zip(centres, radii), start=1):
        lo = np.maximum(np.floor((c - r) / sp_arr).astype(int), 0)
        hi = np.minimum(np.ceil((c + r) / sp_arr).astype(int) + 1, shape)
        if np.any(hi <= lo):
            continue
        zz, yy, xx = (np.arange(lo[a], hi[a]) * sp_arr[a] - c[a] for a in range(3))
        power = (zz[:, None, None] ** 2 + yy[None, :, None] ** 2 + xx[None, None, :] ** 2 - r * r).astype(np.float32)
        sl = tuple(slice(lo[a], hi[a]) for a in range(3))
        win = power < best[sl]
        labels[sl][win] = i
        best[sl][win] = power[win]
    present = np.unique(labels)
    present = present[present > 0]
    remap = np.zeros(len(radii) + 1, np.int32)
    remap[present] = np.arange(1, len(present) + 1, dtype=np.int32)
    return remap[labels]


def _neck_cbd(nmc: np.ndarray, sp, fraction: float, r_max: float) -> np.ndarray:
    """Pore voxels of the closing of ``nmc`` whose radius (bisection, at most ``r_max`` µm) fills ``fraction``."""
    if fraction <= 0:
        return np.zeros(nmc.shape, bool)
    d_out = _dist_outside(nmc, sp)
    target = fraction * nmc.size

    def closing_pore(radius: float) -> np.ndarray:
        d_back = edt_pkg.edt(d_out <= radius, anisotropy=sp, black_border=False, parallel=2)
        return (d_back > radius) & ~nmc

    lo, hi = 0.0, float(r_max)
    best = closing_pore(hi)
    if np.count_nonzero(best) <= target:
        return best
    for _ in range(10):
        mid = 0.5 * (lo + hi)
        cand = closing_pore(mid)
        if np.count_nonzero(cand) > target:
            hi, best = mid, cand
        else:
            lo = mid
    # the closing at ``hi`` holds slightly more than the target: keep its voxels nearest the NMC
    n_extra = int(np.count_nonzero(best) - round(target))
    if n_extra > 0:
        idx = np.flatnonzero(best)
        drop = idx[np.argsort(d_out.ravel()[idx], kind="stable")[len(idx) - n_extra:]]
        best.ravel()[drop] = False
    return best


def make_sphere_packing(
    params: PackingParams | None = None,
    *,
    rng: np.random.Generator | int | None = None,
    name: str = "packing",
) -> SyntheticElectrode:
    """A packing of polydisperse spheres with necks, CBD bridging them, blurred and noisy, with its truth.

    Parameters
    ----------
    params : PackingParams
        Shape and imaging knobs (default: :class:`PackingParams()`, the conditions of issue 15 at 128³).
    rng : numpy Generator or int or None
        Source of randomness; an int seeds ``np.random.default_rng``.
    name : str

    Returns
    -------
    SyntheticElectrode
        ``greyscale`` (Z, Y, X) uint16, ``phases`` (Z, Y, X) uint8, ``labels`` (Z, Y, X) int32 (exactly
        on the NMC voxels, 1..n), the true per-particle ``table`` (:func:`core.metrics.particle_table`,
        separator side at the start of axis 0), ``electrode`` = ``params``, ``imaging`` =
        ``params.imaging()``; ``extra["cracks"]`` is all False (spheres have no cracks) and
        ``extra["centres_um"]`` / ``extra["radii_um"]`` hold the spheres (after the neck growth; some
        may lie outside the volume).
    """
    params = params if params is not None else PackingParams()
    if not isinstance(params, PackingParams):
        raise TypeError(f"params must be PackingParams, got {type(params).__name__}")
    seed = rng if isinstance(rng, (int, np.integer)) else None
    rng = np.random.default_rng(rng)
    shape = tuple(int(s) for s in params.shape)
    sp = normalize_spacing(params.spacing)
    centres, radii = _place_spheres(params, shape, sp, rng)
    labels = _rasterise_power(shape, sp, centres, radii)
    nmc = labels > 0
    cbd = _neck_cbd(nmc, sp, params.cbd_fraction, 4 * params.radius_median_um)
    phases = np.full(shape, PORE, np.uint8)
    phases[cbd] = CBD
    phases[nmc] = NMC
    imaging = params.imaging()
    grey = _image(phases, sp, imaging, rng)
    table = particle_table(labels, phases, sp, axis=0, separator_side="start")
    return SyntheticElectrode(
        name=name, greyscale=grey, phases=phases, labels=labels, spacing=sp, table=table,
        electrode=params, imaging=imaging, seed=seed,
        extra={"cracks": np.zeros(shape, bool), "centres_um": centres, "radii_um": radii},
    )
