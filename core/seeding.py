"""Particle separation seeded on a regularised NMC mask (noisy, blurred greyscale).

On a noisy, blurred scan the NMC of the phases is right to about one voxel,
but blur followed by a threshold fills the concave necks between touching
particles (CBD there is brightened by the NMC on both sides) and noise roughens
the surface; the distance transform then sees wider necks, and small particles
merge into their neighbours.  Here the separation
(:func:`core.particles.separate_particles`, unchanged) runs on a *regularised*
NMC mask used for seeding and flooding only:

1. the noise of the volume is measured (:func:`estimate_noise`: the robust
   standard deviation of the grey values two voxels inside the NMC) and the
   pure grey values of CBD and NMC are read
   (:func:`core.phases.phase_references`);
2. the greyscale is smoothed by a Gaussian whose width brings that noise down
   to a quarter of the margin between the seeding level and pure NMC
   (:func:`denoise_sigma`; at least :data:`MIN_SIGMA`, at most
   :data:`MAX_SIGMA` voxels);
3. the seeding mask is the NMC of the phases where the smoothed grey value is
   at least :data:`LEVEL` of the way from pure CBD to pure NMC: a level above
   the phases' own threshold, so the blurred necks thin out; NMC voxels within
   two face steps of a cavity enclosed by the NMC (a crack) stay in the mask,
   since there the grey values drop because of the crack, not of a neck;
4. the particles of that mask are extended to exactly the NMC voxels of the
   phases by a marker watershed of the distance transform restricted to the
   NMC (the quantised transform of :func:`core.particles.quantised_distance`
   and the seeded flood of :mod:`core._watershed`, without merging); NMC
   components that the mask missed keep labels of their own.

The phases (and so every interface area of the particle table) are not
touched: only which NMC voxel belongs to which particle can change.

**Deconvolved variant** (``deconvolved=True``; ``AnalysisParams(seeding="deconvolved")``): a threshold of
a smoothed, blurred volume still fills the necks, because blur brightens a concave neck more than a flat
surface (the level set of a blurred shape moves with its curvature).  Step 2 then also undoes the blur:
after the Gaussian against the noise (:func:`presmooth_sigma`, wider than :func:`denoise_sigma` since
the deconvolution raises the noise again), :data:`DECONV_ITERATIONS` Landweber iterations with a Gaussian
of the blur measured on the image's pore-NMC edges (:func:`estimate_blur`), at least :data:`DECONV_BLUR`
voxels (:func:`deconv_settings`, :func:`deconvolve`), sharpen the necks before the cut at :data:`LEVEL`.

The level and the smoothing were chosen by measurement on
:func:`core.synth.make_sphere_packing` (``bench/robustness_grid.py``).
Status: opt-in (``AnalysisParams(seeding="regularised")``); the default since session 14 is ``"auto"``
(below), which picks the deconvolved variant or the phases.
On the sphere packings it raised the greyscale F1@0.5 by 0.015-0.04 at a
median radius of 7 voxels (blur 0.6-1.2 voxel, noise 0.05-0.10) but not
enough to come within 0.03 of the true phases at blur 1.2, and not at all at
radius 14; on the demo electrodes (seed 100, 160³) it gave F1@0.5 0.948 /
0.930 against 0.970 / 0.953 of the default (pristine / cycled-5C).  (Measured
with step 4 by scikit-image's watershed of the float distance transform; the
quantised flood now in its place was compared with it on the deconvolved mask
only: the same F1 on three packings, labels equal on 99.9 % of the voxels.)

The deconvolved variant was opt-in at first (``seeding="deconvolved"``; the history below, until
``"auto"`` picked it on blurred scans).  On the
grid of ``bench/robustness_grid.py`` (128³, seeds 0-2; bench/RESULTS.md) it
comes within 0.03 of the true phases in 6 of 8 cells (not at radius 7 with
blur 1.2: -0.046 / -0.061 at noise 0.05 / 0.10; default -0.13) and meets both
of issue 15's conditions in 4 (the radius-14, blur-1.2 cells miss PoreSpy +
0.02 by 0.006 and 0.003).  Undoing the measured blur instead of a fixed
1 voxel changed those cells by -0.004 to +0.005 (within the seed-to-seed
spread).  Most of what is left at radius 7 and blur 1.2 is particles cut by
the volume's faces: over the particles that touch no face the deconvolved
seeding is within 0.025 / 0.055 of the true phases there, and with seeds
from the true phases flooded onto the greyscale's NMC F1 is 0.930 against
0.965 (packing seed 3, noise 0.05): the blurred phases lose thin caps at the
faces, which no choice of seeds brings back.  On the demo electrodes (160³,
seeds 100-102) the measured blur is 0.8, so the deconvolution is the fixed
1-voxel one of before (F1@0.5 0.950-0.991 against the default's 0.952-0.975,
the median |detachment error| within 0.0011 of the default's).  It costs a float32 volume
(:func:`deconvolve`, one DCT filter in place since the iterated Gaussians
took most of its time) and a second separation: on a 256³ demo-like electrode
(``bench/speed_memory.py``'s input, rng 7) the whole analysis took 4.7 s
against 2.4 s of the default (particles step 3.5 s against 1.3 s; load 2.6 /
1.8 on 2 cores; 9.1 s for the particles step with the iterated Gaussians and
the flood that queued every seed voxel); not yet for the lean 512³ path.
It was not made the default for that reason: at 256³ the default analysis is 8.9 times
faster than the PoreSpy pipeline (bench/RESULTS.md speed_memory_256_vs_porespy),
the deconvolved one would be about 4.6 times; and it raises F1 on the blur-0.6
cells of the grid too, where the measured blur (0.62-0.67) is below the demo
electrodes' 0.82-0.84, so no rule on the blur picks every cell where it helps.

**Chosen by the blur** (``seeding="auto"``, the default since session 14;
:func:`auto_seeding`): the deconvolved mask where the blur read on the scan
is at least :data:`AUTO_BLUR` (0.9) voxel, else the phases.  At and above
that blur the deconvolved mask raised F1@0.5 on the training packings by
0.033 on average, and on every packing of median radius 7; below it (the
demo electrodes, the speed benchmark's electrode) the analysis is the one
of before, at the same speed plus the blur estimate (about 0.3 s).

The same reading decides ``AnalysisParams(refine="auto")``: at and above
:data:`AUTO_BLUR` the phases are first refined against a model of the
blurred, noisy image (:mod:`core.phases.forward`), so the deconvolved mask
is cut inside the refined NMC.  On the training packings (seeds 3-4, session
15), with the phases refined, seeding on the phases instead scored 0.007
lower at median radius 7 and 0.010 higher at radius 14 (F1@0.5, means over
8 packings each): the choice of the mask was left as it was.  Below
:data:`AUTO_BLUR`, where the noise reads at least
:data:`core.phases.forward.AUTO_NOISE` of the pore-NMC contrast
(:func:`estimate_relative_noise`), only the NMC surfaces are refined and the
particles are seeded on the phases.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numba
import numpy as np
from scipy import ndimage as ndi
from scipy.special import ndtri

from . import _kernels as K
from ._validate import check_has_nmc, check_phases, check_volume, normalize_spacing
from .codes import CBD, NMC
from .particles import SeparationParams, _separate_particles, fill_enclosed
from .phases import phase_references
from .phases.partial_volume import _l1_distance4, _l1_distance4_on_cores
from .slices import slice_axis

__all__ = ["AUTO_BLUR", "AUTO_MIN_EDGES", "AUTO_SLICE_BLUR_DEPTH", "auto_seeding", "DECONV_BLUR", "deconv_settings", "estimate_blur", "DECONV_ITERATIONS", "DECONV_MERGE_FACTOR", "DECONV_STEP", "LEVEL", "MAX_SIGMA",
           "MIN_SIGMA", "deconvolve", "denoise_sigma", "estimate_noise", "estimate_relative_noise", "nmc_mean_depth", "presmooth_sigma", "regularised_particles",
           "seeding_mask"]

#: Seeding level: the share of the way from pure CBD to pure NMC grey value that a smoothed voxel must reach.
LEVEL = 0.8
#: Bounds of the Gaussian smoothing of the seeding mask (voxels).
MIN_SIGMA, MAX_SIGMA = 0.5, 1.5
#: NMC voxels within this many face steps of an enclosed cavity (a crack) stay in the seeding mask (at most 3:
#: the L1 distance of :func:`core.phases.partial_volume._l1_distance4` is capped at 4).
_CRACK_REACH = 2
#: The crack clause marks the NMC near cavities voxel by voxel where the cavities are at most 1 / this of the volume
#: (8 bytes an index), else from capped L1 distances over the volume (:func:`_seeding_mask`).
_SPARSE_CAVITY = 64
#: ``h`` of :func:`core._watershed._flood` below any dynamics (levels 0-255): basins never merge.
_NO_MERGING = -256
#: Central block (voxels a side, at most) in which the noise is measured.
_NOISE_BLOCK = 128
#: Deconvolved seeding: Gaussian blur (voxels) undone, Landweber iterations and step (stable below 2).
DECONV_BLUR, DECONV_ITERATIONS, DECONV_STEP = 1.0, 4, 1.8
#: Deconvolved seeding: presmoothing sigma = this x (noise / (pure NMC - pure CBD))^(2/3), clipped.
_PRESMOOTH_GAIN = 3.1
#: ``AnalysisParams(seeding="auto")`` (the default): seeds on the deconvolved mask where :func:`estimate_blur`
#: reads at least this many voxels, else on the phases (:func:`auto_seeding`).
AUTO_BLUR = 0.9
#: ... and only where the estimate read at least this many pore-NMC edge voxels (the demo electrodes, blur 0.75,
#: read 0.80-0.92 from 591-2,611 edge voxels at 40³, 0.82-0.87 from 3,941-10,203 at 64³).
AUTO_MIN_EDGES = 4000
#: Deconvolved seeding: the separation of the mask merges fragments at this multiple of ``merge_ratio``.
#: 1 since session 23 (the mask merged at the phases' ratio, 2.0): 1.5 (3.0, as it was, 2.5 x 1.2, when the
#: default ratio was 1.2) left big particles cut by the volume's faces in pieces.  Sphere packings of
#: ``bench/robustness_grid.py``'s generator at blur 1.2, training seeds 3-4, mean F1@0.5 1.5 -> 1.0: median
#: radius 7 voxels 0.933 -> 0.934, 14 0.949 -> 0.950, 28 (192³) 0.927 -> 0.936, 50 (256³) 0.856 -> 0.904,
#: 5 0.865 -> 0.867 (bench/RESULTS.md, deconv_merge_s23).
DECONV_MERGE_FACTOR = 1.0
#: On a single slice, "auto" seeds on the deconvolved mask where the blur read (at least :data:`AUTO_BLUR`) is at
#: least this share of the NMC's mean depth (its 2D distance transform's mean over the NMC pixels): small particle
#: sections under a large blur, which the blur joins in the plane (a slice has no third dimension to tell them
#: apart).  Chosen on z-slices of ``bench/slice_blur.py``'s packings (24 × 384 × 384, training seeds 3-4, median
#: radius 5 / 7 / 10 / 14 / 20 pixels, blur 0.6 / 0.9 / 1.2, noise 0.05 / 0.10) and of the demo electrodes (seed 3):
#: the deconvolved seeding with the full refinement gained F1@0.5 on every slice reading 0.31 or more (radius 5 at
#: blur 0.9-1.2 and radius 7 at blur 1.2: +0.006 to +0.096) and lost on most of those reading 0.24 or less (radius
#: 10-20, and the demo electrodes' slices at 0.21-0.23: -0.028 on average over 9); a ratio in between (radius 7 at
#: blur 0.9, 0.25-0.26) was a wash.  Volumes keep :data:`AUTO_BLUR` alone (there the demos and the small packings'
#: readings overlap; bench/RESULTS.md, session30_tried).
AUTO_SLICE_BLUR_DEPTH = 0.28


def _central_block(shape, block: int) -> tuple[slice, ...]:
    """Slices of the central block of at most ``block`` voxels a side of a volume of ``shape``.

    A single slice (:func:`core.slices.slice_axis`) gets a square of ``block ** 1.5`` pixels a side instead, as
    many pixels as the cube has voxels (1,448² for 128³): the readings made in the block (blur, noise, pure grey
    values) rest on about as many voxels as in a volume.
    """
    if slice_axis(shape) is not None:
        block = int(round(block ** 1.5))
    return tuple(slice(max((n - block) // 2, 0), max((n - block) // 2, 0) + min(n, block)) for n in shape)


def estimate_noise(volume: np.ndarray, phases: np.ndarray) -> float:
    """Noise of a greyscale volume: robust standard deviation of the grey values two voxels inside the NMC.

    Measured in a central block of at most 128 voxels a side (a single slice: a square of as many pixels): 1.4826
    times the
    median absolute deviation of the grey values of the NMC voxels whose
    6-neighbourhood, twice over, is NMC (far enough from the surface that the
    blur does not reach them much).

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        Greyscale.
    phases : (Z, Y, X) uint8
        Its phases (codes 0 pore / 1 CBD / 2 NMC).

    Returns
    -------
    float
        In the volume's grey units; NaN where fewer than 50 such voxels exist.
    """
    volume, phases = _validate(volume, phases)
    sl = _central_block(volume.shape, _NOISE_BLOCK)
    # ndi.binary_erosion(NMC, face structure, iterations=2, border_value=1): more than two face steps from
    # every other voxel of the block (one numba pass)
    inner = _l1_distance4(np.ascontiguousarray(phases[sl] != NMC).view(np.uint8), np.uint8(1)) > 2
    v = np.asarray(volume[sl], np.float64)[inner]
    if v.size < 50:
        return float("nan")
    return float(1.4826 * np.median(np.abs(v - np.median(v))))


def estimate_relative_noise(volume: np.ndarray, phases: np.ndarray, *, noise: float | None = None) -> float:
    """Noise of a greyscale volume as a share of its pore-NMC contrast.

    :func:`estimate_noise` divided by the difference of the pure grey values
    of NMC and pore (:func:`core.phases.phase_references`), both read in the
    same central block of at most 128 voxels a side.  It read 0.049 on the
    demo electrodes (imaged with noise 0.048 of their contrast), and 0.050 /
    0.075 / 0.100-0.102 on sphere packings and demo electrodes imaged with
    0.05 / 0.075 / 0.10 (128³; blur 0.6-0.8 voxel).

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        Greyscale.
    phases : (Z, Y, X) uint8
        Its phases.
    noise : float or None
        :func:`estimate_noise` of ``volume`` and ``phases`` where the caller has it already (it reads the same
        block); None: read here.

    Returns
    -------
    float
        NaN where the noise or the contrast cannot be read (fewer than 50 deep NMC voxels, or no pore).
    """
    volume, phases = _validate(volume, phases)
    sl = _central_block(volume.shape, _NOISE_BLOCK)
    i_pore, _, i_nmc = phase_references(np.asarray(volume[sl], np.float32), phases[sl])
    contrast = float(i_nmc) - float(i_pore)
    if not (np.isfinite(contrast) and contrast > 0):
        return float("nan")
    return (estimate_noise(volume[sl], phases[sl]) if noise is None else float(noise)) / contrast


#: Blur estimate: Gaussian (voxels) of the gradient and the smoothed grey value; probe distance along the normal.
_EDGE_SMOOTH, _EDGE_PROBE = 1.0, 3.0
#: Blur estimate: fewest pore-NMC edge voxels for an estimate.
_EDGE_MIN = 200


def estimate_blur(volume: np.ndarray, phases: np.ndarray, *, block: int = _NOISE_BLOCK,
                  references: tuple[float, float, float] | None = None) -> float:
    """Gaussian blur sigma (voxels) of the image, from the widths of its pore-NMC edges.

    A planar step of height ``C`` blurred by a Gaussian of ``s`` and smoothed
    by one of ``p`` has, at a voxel where the grey value is a share ``u`` of
    the way from pore to NMC, the gradient magnitude
    ``C φ(Φ⁻¹(u)) / t`` with ``t = sqrt(s² + p²)``; every voxel with ``u`` in
    [0.25, 0.75] gives a ``t``.  The voxels kept are those of a pore-NMC edge:
    3 voxels along the gradient the smoothed value is within 0.15 of pure
    NMC, as far against it within 0.15 of pure pore, and no voxel on that
    path is CBD in ``phases`` (a thin CBD layer between pore and NMC widens
    the profile: on the demo electrodes, whose NMC is mostly coated, the
    estimate read 1.55 for a blur of 0.75 without this test).  The estimate
    is the mode of those ``t`` (a histogram of ``log t`` smoothed over about
    5 %), less the smoothing in quadrature.  The smoothing of ``p = 1`` voxel
    makes it insensitive to the noise; the blurred phases enter only through
    the pure grey values (:func:`core.phases.phase_references`) and the CBD
    test, not through the position of their surfaces (which follow the blur).

    On :func:`core.synth.make_sphere_packing` (96³, median radius 7 and 14
    voxels, seed 3) it read 0.62-0.67 / 0.92-0.97 / 1.20-1.24 / 1.47-1.53
    for a blur of 0.6 / 0.9 / 1.2 / 1.5 voxel at noise 0, 0.05 and 0.10 of
    the pore-NMC contrast, 0.82-0.84 on the three demo electrodes (blur
    0.75; 160³, seed 100) and 0.82 / 1.24 / 1.49 on :func:`core.synth.make_electrode`
    (128³, seed 5) imaged with a blur of 0.75 / 1.2 / 1.5 voxel at its
    default and at twice its default noise; the partial-volume fit
    (:func:`core.phases.partial_volume.estimate_pv_sigma`) read 1.08 / 1.06
    for 1.2 and 1.20 / 1.23 for 1.5 at noise 0.10 (radius 7 / 14).  About
    0.3-0.4 s (its 128³ block; 0.34 s on the 512³ benchmark's input).

    A single slice (:func:`core.slices.slice_axis`) is read in its plane, in a
    central square of as many pixels as the block has voxels: on z-slices of
    the packings of ``bench/slice_blur.py`` (384² pixels, median radius 5-14
    voxels, noise 0.05-0.10) it read 0.63-0.69 / 0.96-1.01 / 1.22-1.29 for a
    blur of 0.6 / 0.9 / 1.2 voxel, where their volumes read 0.62-0.68 /
    0.92-0.98 / 1.20-1.24 (a section cuts surfaces obliquely, which widens
    their profiles: a little high; bench/RESULTS.md slice_blur).

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        Greyscale; not modified.
    phases : (Z, Y, X) uint8
        Its phases (for the pure grey values of pore and NMC and the CBD).
    block : int
        Measured in a central block of at most this many voxels a side.
    references : (pore, cbd, nmc) or None
        Pure grey values; None: :func:`core.phases.phase_references` of the
        block.

    Returns
    -------
    float
        Voxels (of the grid; for anisotropic voxels an average over the edge
        directions); NaN where fewer than 200 pore-NMC edge voxels are found
        or pore or NMC is absent.
    """
    return _estimate_blur(volume, phases, block=block, references=references)[0]


def _estimate_blur(volume, phases, *, block: int = _NOISE_BLOCK, references=None) -> tuple[float, int]:
    """:func:`estimate_blur`, and the number of edge voxels whose profile it read (0 where it returns NaN early)."""
    volume, phases = _validate(volume, phases)
    if int(block) != block or block < 8:
        raise ValueError(f"block must be a whole number >= 8, got {block}")
    thin = slice_axis(volume.shape)  # a single slice: its edges are read in its plane
    plane = [n for ax, n in enumerate(volume.shape) if ax != thin]
    if min(plane) <= 2 * (_EDGE_PROBE + 1):
        return float("nan"), 0
    sl = _central_block(volume.shape, block)
    v = np.asarray(volume[sl], np.float32)
    i_pore, _, i_nmc = phase_references(v, phases[sl]) if references is None else references
    contrast = float(i_nmc) - float(i_pore)
    if not (np.isfinite(contrast) and contrast > 0):
        return float("nan"), 0
    ph = np.asarray(phases[sl])
    if thin is not None:
        v, ph = v.squeeze(thin), ph.squeeze(thin)
    nd = v.ndim

    # the Gaussian and its derivatives share their 1D passes (the same axis order and float32 intermediates as
    # ndi.gaussian_filter, so the same values): 9 passes instead of 12 in 3D, each on all cores
    def g1(x, axis, order=0):
        return _gaussian1d_on_cores(x, _EDGE_SMOOTH, axis, order)

    smoothed = [v]  # smoothed[k]: smoothed along the axes before k
    for ax in range(nd):
        smoothed.append(g1(smoothed[-1], ax))
    u = smoothed.pop()
    u -= np.float32(i_pore)
    u /= np.float32(contrast)
    sel = (u > 0.25) & (u < 0.75)
    m = int(np.ceil(_EDGE_PROBE)) + 1  # the probes stay inside the block
    inner = np.zeros(sel.shape, bool)
    inner[(slice(m, -m),) * nd] = True
    sel &= inner
    idx = np.nonzero(sel)
    del sel, inner
    if idx[0].size < _EDGE_MIN:
        return float("nan"), 0

    grad = []
    for ax in range(nd):  # the derivative along ax, smoothed along the other axes
        d = g1(smoothed[ax], ax, 1)
        for other in range(ax + 1, nd):
            d = g1(d, other)
        grad.append(d[idx])
    del smoothed, d
    grad = np.stack(grad)
    grad /= np.float32(contrast)
    mag = np.sqrt((grad ** 2).sum(axis=0))
    ok = mag > 0
    normal = grad[:, ok] / mag[ok]
    pts = np.stack(idx).astype(np.float32)[:, ok]
    ahead, behind = K.run_side_by_side(lambda: ndi.map_coordinates(u, pts + _EDGE_PROBE * normal, order=1),
                                       lambda: ndi.map_coordinates(u, pts - _EDGE_PROBE * normal, order=1))
    edge = (ahead > 0.85) & (behind < 0.15)
    # no CBD of the phases on the probe path: a thin CBD layer between pore and NMC widens the profile
    lim = np.array(ph.shape)[:, None] - 1
    for k in range(-int(_EDGE_PROBE), int(_EDGE_PROBE) + 1):
        q = np.clip(np.rint(pts + k * normal).astype(np.intp), 0, lim)
        edge &= ph[tuple(q)] != CBD
    del ph
    if edge.sum() < _EDGE_MIN:
        return float("nan"), int(edge.sum())
    uu = u[idx][ok][edge].astype(np.float64)
    t = np.exp(-0.5 * ndtri(uu) ** 2) / np.sqrt(2 * np.pi) / mag[ok][edge]
    lt = np.log(t[(t > 0.25) & (t < 8.0)])
    if lt.size < _EDGE_MIN:
        return float("nan"), int(lt.size)
    hist, edges = np.histogram(lt, bins=400, range=(np.log(0.25), np.log(8.0)))
    hist = ndi.gaussian_filter1d(hist.astype(np.float64), 6.0)  # bins of 0.87 %: about 5 %
    i = int(np.argmax(hist))
    t_mode = float(np.exp(0.5 * (edges[i] + edges[i + 1])))
    return float(np.sqrt(max(t_mode ** 2 - _EDGE_SMOOTH ** 2, 0.0))), int(lt.size)


def _gaussian1d_on_cores(x: np.ndarray, sigma: float, axis: int, order: int = 0) -> np.ndarray:
    """``ndi.gaussian_filter1d(x, sigma, axis=axis, order=order, output=np.float32)``, the same values, on all cores.

    Each core filters a range of the lines along ``axis`` (the volume split
    along another axis; scipy releases the GIL while it filters), so every
    line is filtered as scipy filters it whole.
    """
    out = np.empty(x.shape, np.float32)
    split = 1 if axis == 0 else 0

    def work(a, b):
        sl = (slice(None),) * split + (slice(a, b),)
        ndi.gaussian_filter1d(x[sl], sigma, axis=axis, order=order, output=out[sl])

    K.run_on_cores(work, x.shape[split])
    return out


def auto_seeding(volume: np.ndarray, phases: np.ndarray) -> tuple[str, float]:
    """What ``AnalysisParams(seeding="auto")`` seeds on: "deconvolved" on a blurred scan, else "phases".

    The rule: :func:`estimate_blur` of the volume (its central block, about
    0.3 s) at least :data:`AUTO_BLUR` voxels, read from at least
    :data:`AUTO_MIN_EDGES` edge voxels (a small volume's estimate scatters).  Chosen on the sphere packings
    of ``bench/robustness_grid.py`` (128³, training seeds 3 and 4, median
    radius 7 and 14 voxels, noise 0.05 and 0.10, blur 0.8-1.2 voxel; bench/RESULTS.md
    seeding_auto_s14): where the estimate read 0.92 or more (blur 0.9 and up)
    the deconvolved seeding raised F1@0.5 by 0.033 on average over the 32
    packings (-0.038 to +0.100; at radius 7 on every one, +0.017 to
    +0.062); where it read 0.82-0.85 (blur 0.8) it lowered it at radius 14
    (-0.064 to +0.007; +0.012 to +0.028 at radius 7).  The demo electrodes
    read 0.82-0.84 (blur 0.75), so they keep the phases.  On a single slice
    (read in its plane) the blur must also be at least
    :data:`AUTO_SLICE_BLUR_DEPTH` of the NMC's mean depth
    (:func:`nmc_mean_depth`): the mask there helps small particle sections
    only.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        Greyscale.
    phases : (Z, Y, X) uint8
        Its phases.

    Returns
    -------
    seeding : {"phases", "deconvolved"}
    blur : float
        The estimate (voxels; NaN where it could not be measured: then "phases",
        as where it read fewer than :data:`AUTO_MIN_EDGES` edge voxels).
    """
    blur, edges = _estimate_blur(volume, phases)
    return _auto_choice(blur, edges, phases), blur


def nmc_mean_depth(phases: np.ndarray) -> float:
    """Mean Euclidean distance (voxels) of the NMC voxels to the nearest other voxel (the NMC's mean depth;
    :data:`AUTO_SLICE_BLUR_DEPTH`); measured in the plane of a single slice.  NaN without NMC."""
    import edt

    ph = np.asarray(phases)
    ax = slice_axis(ph.shape)
    nmc = np.ascontiguousarray(np.squeeze(ph, axis=ax) if ax is not None else ph) == NMC
    if not nmc.any():
        return float("nan")
    return float(edt.edt(nmc, black_border=False, parallel=1)[nmc].mean())


def _auto_choice(blur: float, edges: int, phases: np.ndarray) -> str:
    """:func:`auto_seeding`'s rule on a reading of :func:`_estimate_blur` (the blur and its edge voxels) of
    ``phases``' scan: "deconvolved" where the blur, read from enough edges, is at least :data:`AUTO_BLUR`; on a
    single slice only where it is also at least :data:`AUTO_SLICE_BLUR_DEPTH` of the NMC's mean depth."""
    sure = np.isfinite(blur) and edges >= AUTO_MIN_EDGES
    if not (sure and blur >= AUTO_BLUR):
        return "phases"
    if slice_axis(np.shape(phases)) is None:
        return "deconvolved"
    depth = nmc_mean_depth(phases)
    return "deconvolved" if np.isfinite(depth) and blur >= AUTO_SLICE_BLUR_DEPTH * depth else "phases"


def denoise_sigma(noise: float, i_cbd: float, i_nmc: float, *, level: float = LEVEL) -> float:
    """Gaussian sigma (voxels) that brings white noise ``noise`` to a quarter of the seeding margin.

    A 3D Gaussian of sigma ``s`` voxels divides the standard deviation of
    white noise by ``(4 π)^(3/4) s^(3/2)``; the margin is the distance
    ``(1 - level) (i_nmc - i_cbd)`` between the seeding level and pure NMC.
    Clipped to [:data:`MIN_SIGMA`, :data:`MAX_SIGMA`]; :data:`MIN_SIGMA` when
    the noise is unknown (NaN).
    """
    margin = (1.0 - level) * (float(i_nmc) - float(i_cbd))
    if not (np.isfinite(noise) and margin > 0):
        return MIN_SIGMA
    s = (4.0 * float(noise) / margin / (4 * np.pi) ** 0.75) ** (2.0 / 3.0)
    return float(np.clip(s, MIN_SIGMA, MAX_SIGMA))


def presmooth_sigma(noise: float, i_cbd: float, i_nmc: float) -> float:
    """Gaussian sigma (voxels) against the noise before :func:`deconvolve`.

    ``3.1 (noise / (i_nmc - i_cbd))^(2/3)`` (the noise left after a 3D
    Gaussian falls as ``sigma^(-3/2)``), clipped to [:data:`MIN_SIGMA`,
    :data:`MAX_SIGMA`]: about 1 voxel at a noise of 0.18 of the CBD-NMC
    contrast, 0.6 at 0.08 (the values that scored best on the sphere
    packings).  :data:`MIN_SIGMA` when the noise is unknown (NaN).
    """
    contrast = float(i_nmc) - float(i_cbd)
    if not (np.isfinite(noise) and contrast > 0):
        return MIN_SIGMA
    s = _PRESMOOTH_GAIN * (max(float(noise), 0.0) / contrast) ** (2.0 / 3.0)
    return float(np.clip(s, MIN_SIGMA, MAX_SIGMA))


def _gaussian_transfer(n: int, sigma: float) -> np.ndarray:
    """Transfer function, at the ``n`` frequencies of the type-II DCT, of ``ndi.gaussian_filter1d(sigma)`` (mode "reflect").

    scipy's kernel (normalised samples of the Gaussian out to ``int(4 sigma + 0.5)``); a filter in mode
    "reflect" is the circular convolution of the signal's half-sample symmetric extension of period
    ``2 n``, which the type-II DCT diagonalises: the factor at DCT index ``k`` is
    ``sum_j w_j cos(pi k j / n)``.  1 everywhere for ``sigma == 0``.
    """
    if sigma == 0:
        return np.ones(n)
    r = int(4.0 * float(sigma) + 0.5)
    j = np.arange(-r, r + 1)
    w = np.exp(-0.5 / float(sigma) ** 2 * j.astype(np.float64) ** 2)
    w /= w.sum()
    return np.cos(np.pi * np.arange(n)[:, None] * j[None, :] / n) @ w


def deconvolve(volume: np.ndarray, *, sigma: float = 0.0, blur: float = DECONV_BLUR,
               iterations: int = DECONV_ITERATIONS, step: float = DECONV_STEP) -> np.ndarray:
    """Landweber deconvolution of a Gaussian blur, after a Gaussian against the noise.

    ``b = G_sigma * volume``; ``x_0 = b``; ``x_{k+1} = x_k + step G_blur * (b - G_blur * x_k)``.  Few
    iterations are the regularisation (each adds detail and noise back).  The Gaussians are those of
    ``scipy.ndimage.gaussian_filter`` (mode "reflect": the volume's faces mirror it, as a cut through an
    electrode is best continued), and the whole linear filter is applied at once in the basis of the
    type-II DCT, which diagonalises them exactly (:func:`_gaussian_transfer`): one forward and one
    inverse transform on every core instead of ``1 + 2 iterations`` Gaussians on one (at 256³ about
    0.4 s instead of 4.4 s; the same values as the iteration to float32 rounding).

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        Greyscale; not modified.
    sigma : float
        Gaussian presmoothing (voxels), 0 for none.
    blur : float
        Sigma (voxels) of the Gaussian blur undone; > 0.
    iterations : int
        >= 0.
    step : float
        In (0, 2).

    Returns
    -------
    (Z, Y, X) float32
        One float32 volume is held (the transforms run in place: peak 4.4 bytes per voxel traced by
        ``tracemalloc`` at 128³, besides the input).
    """
    from scipy import fft

    from ._kernels import cores

    if not sigma >= 0:
        raise ValueError(f"sigma must be >= 0 voxels, got {sigma}")
    if not blur > 0:
        raise ValueError(f"blur must be > 0 voxels, got {blur}")
    if int(iterations) != iterations or iterations < 0:
        raise ValueError(f"iterations must be a whole number >= 0, got {iterations}")
    if not 0 < step < 2:
        raise ValueError(f"step must lie in (0, 2), got {step}")
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"volume must be 3D (Z, Y, X), got shape {volume.shape}")
    v = np.empty(volume.shape, np.float32)  # the float32 copy written slab by slab on the cores (numpy's casts
    K.run_on_cores(lambda a, b, v=v: np.copyto(v[a:b], volume[a:b], casting="unsafe"), v.shape[0])  # drop the GIL)
    if v.size == 0 or (sigma == 0 and iterations == 0):  # the identity: no transform (exact)
        return v
    workers = cores()
    c = fft.dctn(v, type=2, norm="ortho", workers=workers, overwrite_x=True)
    del v
    gz, gy, gx = (_gaussian_transfer(n, blur) for n in c.shape)
    pz, py, px = (_gaussian_transfer(n, sigma) for n in c.shape)
    p_yx = (py[:, None] * px[None, :]).astype(np.float32)
    K.run_on_cores(lambda z0, z1: _landweber_multiply(c, gz, gy, gx, pz, p_yx, float(step), int(iterations), z0, z1),
                   c.shape[0])
    return fft.idctn(c, type=2, norm="ortho", workers=workers, overwrite_x=True)


@numba.njit(cache=True, nogil=True)
def _landweber_multiply(c, gz, gy, gx, pz, p_yx, mu, iterations, z0, z1):
    """``c[z] *= float32(h * pz[z]) * p_yx`` for planes ``z0:z1`` (:func:`deconvolve`'s filter in the DCT basis).

    ``h`` is the Landweber multiplier of ``g = gz[z] * (gy[y] * gx[x])``: ``h_0 = 1``,
    ``h_{k+1} = (1 - mu g g) h_k + mu g``, in float64 with numpy's order of operations (the values of the
    plane-by-plane numpy form, without its dozen temporaries of a plane each).
    """
    ny, nx = p_yx.shape
    for z in range(z0, z1):
        for y in range(ny):
            for x in range(nx):
                g = gz[z] * (gy[y] * gx[x])
                h = 1.0
                if iterations:
                    b = mu * g
                    a = 1.0 - g * b
                    for _ in range(iterations):
                        h = h * a + b
                h = h * pz[z]
                c[z, y, x] *= np.float32(h) * p_yx[y, x]


def deconv_settings(volume: np.ndarray, phases: np.ndarray, *, blur: float | None = None,
                    iterations: int | None = None,
                    references: tuple[float, float, float] | None = None) -> tuple[float, int]:
    """Gaussian undone and Landweber iterations of the deconvolved seeding, by the measured blur.

    The rule: undo the blur that :func:`estimate_blur` measures, but no less
    than :data:`DECONV_BLUR` (1 voxel); :data:`DECONV_ITERATIONS` iterations.
    :data:`DECONV_BLUR` when the blur cannot be measured.  On the sphere
    packings' seeds 3-5 (128³, ``bench/robustness_grid.py``'s generator) the
    measured blur (1.20-1.22 for a true 1.2) raised the mean F1@0.5 at a
    median radius of 7 voxels and blur 1.2 from 0.899 to 0.905 and left it
    unchanged within the seed-to-seed spread at radius 14 (0.905 / 0.906);
    at blur 0.6 the measured 0.63-0.67 scored 0.008-0.013 below the fixed
    1 voxel at radius 7, hence the floor.  Eight iterations instead of four,
    a kernel 1.15 or 1.3 times the measured blur, or a cut at 0.85 instead
    of :data:`LEVEL` changed the mean F1 by less than that spread.

    Parameters
    ----------
    volume, phases
        As for :func:`seeding_mask`.
    blur : float or None
        Gaussian (voxels) to undo; None: the rule above.
    iterations : int or None
        None: :data:`DECONV_ITERATIONS`.
    references : (pore, cbd, nmc) or None
        Pure grey values, passed to :func:`estimate_blur`.

    Returns
    -------
    blur : float
    iterations : int
    """
    if blur is None:
        blur = deconv_blur(estimate_blur(volume, phases, references=references))
    return float(blur), (DECONV_ITERATIONS if iterations is None else int(iterations))


def deconv_blur(measured: float) -> float:
    """The Gaussian (voxels) the deconvolved seeding undoes for a measured blur: :func:`deconv_settings`' rule
    (the measured blur, at least :data:`DECONV_BLUR`; :data:`DECONV_BLUR` where it is NaN)."""
    return max(DECONV_BLUR, float(measured)) if np.isfinite(measured) else DECONV_BLUR


def seeding_mask(volume: np.ndarray, phases: np.ndarray, *, level: float = LEVEL,
                 sigma: float | None = None, deconvolved: bool = False, blur: float | None = None,
                 iterations: int | None = None) -> tuple[np.ndarray, dict]:
    """The regularised NMC mask for seeding and flooding (see the module docstring).

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        Greyscale; not modified.
    phases : (Z, Y, X) uint8
        Its phases.
    level : float
        Share of the way from pure CBD to pure NMC grey value, in (0, 1).
    sigma : float or None
        Gaussian smoothing (voxels); None takes :func:`denoise_sigma` of the
        measured noise (:func:`presmooth_sigma` when ``deconvolved``).
    deconvolved : bool
        Cut the :func:`deconvolve`d volume (after the smoothing) instead of
        the smoothed one.
    blur, iterations : float or None, int or None
        With ``deconvolved``: the Gaussian (voxels) undone and the Landweber
        iterations; None takes :func:`deconv_settings` (the measured blur,
        at least 1 voxel; 4 iterations).

    Returns
    -------
    mask : (Z, Y, X) bool
        A subset of the NMC of ``phases``.
    info : dict
        ``noise`` (grey units), ``sigma`` (voxels), ``cut`` (the grey value of
        the level), ``i_cbd`` and ``i_nmc`` (pure grey values); with
        ``deconvolved`` also ``blur`` and ``iterations``.
    """
    volume, phases = _validate(volume, phases)
    mask, info, _ = _seeding_mask(volume, phases, level=level, sigma=sigma, deconvolved=deconvolved, blur=blur,
                                  iterations=iterations)
    return mask, info


def _seeding_mask(volume, phases, *, level, sigma, deconvolved, blur, iterations, keep_outside=False):
    """:func:`seeding_mask` of validated arrays and, with ``keep_outside``,
    ``np.packbits(core._kernels.outside_reach(phases == NMC))`` (from the crack test; else None)."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    refs = phase_references(volume, phases)
    i_cbd, i_nmc = refs[1], refs[2]
    if not np.isfinite(i_cbd):  # no CBD: the level runs from pore instead
        i_cbd = refs[0]
    noise = estimate_noise(volume, phases)
    if sigma is None:
        sigma = presmooth_sigma(noise, i_cbd, i_nmc) if deconvolved else denoise_sigma(noise, i_cbd, i_nmc,
                                                                                            level=level)
    elif not sigma >= 0:
        raise ValueError(f"sigma must be >= 0 voxels, got {sigma}")
    cut = float(i_cbd) + level * (float(i_nmc) - float(i_cbd))
    if deconvolved:
        blur, iterations = deconv_settings(volume, phases, blur=blur, iterations=iterations, references=refs)
        smooth = deconvolve(volume, sigma=sigma, blur=blur, iterations=iterations)
    else:
        smooth = ndi.gaussian_filter(np.asarray(volume, np.float32), sigma) if sigma > 0 else np.asarray(
            volume, np.float32)
    # the mask packed plane by plane beside the float32 volume, then unpacked once it is freed: an eighth of a
    # byte a voxel at that peak instead of a byte
    bits = np.empty((smooth.shape[0], (smooth[0].size + 7) // 8), np.uint8)
    for z in range(smooth.shape[0]):
        bits[z] = np.packbits(smooth[z] >= cut)
    del smooth
    mask = np.unpackbits(bits, axis=1, count=phases[0].size).view(bool).reshape(phases.shape)
    del bits
    nmc = phases == NMC
    # next to a cavity enclosed by the NMC (a crack) the grey values drop because of the crack, not of a
    # neck: those NMC voxels stay in the mask, so that the raised level does not open cracks into cuts
    cavity = fill_enclosed(nmc)
    outside = np.packbits(np.logical_not(cavity)) if keep_outside else None
    np.greater(cavity, nmc, out=cavity)  # cavity & ~nmc, without a temporary
    # ndi.binary_dilation(cavity, face structure, iterations=2): voxel by voxel where the cavities are few (the
    # usual case: 8 bytes an index), else from capped L1 distances over the volume
    n_cavity = int(np.count_nonzero(cavity))
    if 0 < n_cavity <= cavity.size // _SPARSE_CAVITY:
        idx = np.flatnonzero(cavity)
        del cavity
        _mark_within(mask, idx, _CRACK_REACH)
        del idx
    elif n_cavity:
        near = _l1_distance4_on_cores(cavity.view(np.uint8), np.uint8(1))
        del cavity
        np.less_equal(near, _CRACK_REACH, out=near.view(bool))  # in the distances' own bytes
        mask |= near.view(bool)
        del near
    else:
        del cavity
    mask &= nmc
    del nmc
    info = {"noise": noise, "sigma": float(sigma), "cut": cut, "i_cbd": float(i_cbd), "i_nmc": float(i_nmc)}
    if deconvolved:
        info.update(blur=blur, iterations=iterations)
    return mask, info, outside


@numba.njit(cache=True, nogil=True)
def _mark_within(mask, idx, reach):
    """Set ``mask`` (3D bool) at every voxel within ``reach`` face steps (L1) of the flat voxels ``idx``, inside the
    volume: ``ndi.binary_dilation`` of those voxels by the face structure, ``reach`` times."""
    nz, ny, nx = mask.shape
    plane = ny * nx
    for i in idx:
        z = i // plane
        y = (i - z * plane) // nx
        x = i - z * plane - y * nx
        for dz in range(-reach, reach + 1):
            zz = z + dz
            if zz < 0 or zz >= nz:
                continue
            ry = reach - abs(dz)
            for dy in range(-ry, ry + 1):
                yy = y + dy
                if yy < 0 or yy >= ny:
                    continue
                rx = ry - abs(dy)
                for xx in range(max(x - rx, 0), min(x + rx + 1, nx)):
                    mask[zz, yy, xx] = True


def regularised_particles(
    volume: np.ndarray,
    phases: np.ndarray,
    spacing=None,
    params: SeparationParams | None = None,
    *,
    level: float = LEVEL,
    sigma: float | None = None,
    deconvolved: bool = False,
    blur: float | None = None,
    iterations: int | None = None,
    merge_factor: float = DECONV_MERGE_FACTOR,
    progress: Callable[[float, str], None] | None = None,
) -> np.ndarray:
    """Particle labels of ``phases``, seeded and flooded on the regularised mask of ``volume``.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        Greyscale that ``phases`` was segmented from; not modified.
    phases : (Z, Y, X) uint8
        Phase codes (0 pore, 1 CBD, 2 NMC); not modified.
    spacing : float or (3,) float, µm
    params : SeparationParams
        Passed to :func:`core.particles.separate_particles` for the mask;
        with ``deconvolved`` its ``merge_ratio`` times
        ``merge_factor`` (:data:`DECONV_MERGE_FACTOR`, 1: the mask is merged
        at the phases' ratio; it was 3.0 until session 23, chosen when the
        default ``merge_ratio`` was 1.2, and left big particles cut by the
        volume's faces in pieces).
    level, sigma, deconvolved, blur, iterations
        See :func:`seeding_mask`.
    merge_factor : float
        With ``deconvolved``: the multiple of ``params.merge_ratio`` used for
        the mask (default :data:`DECONV_MERGE_FACTOR`).
    progress : callable(fraction, message), optional

    Returns
    -------
    labels : (Z, Y, X) uint16 or int32
        1..n on exactly the NMC voxels of ``phases``, 0 elsewhere (uint16 where the particles fit, as
        :func:`core.particles.separate_particles` gives them).
    """
    return _regularised_particles(volume, phases, spacing, params, level=level, sigma=sigma, deconvolved=deconvolved,
                                  blur=blur, iterations=iterations, merge_factor=merge_factor, progress=progress)[0]


def _regularised_particles(volume, phases, spacing=None, params=None, *, level=LEVEL, sigma=None, deconvolved=False,
                           blur=None, iterations=None, merge_factor=DECONV_MERGE_FACTOR, progress=None,
                           keep_outside: bool = False, side=None) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`regularised_particles`, and with ``keep_outside`` the packed ``outside_reach`` of the NMC.

    ``side``: a :class:`core._kernels.SideWork` started when the extension to every NMC voxel turns
    single-threaded (its calls then run on the core it leaves idle; the caller collects their results).

    The second value is ``np.packbits(core._kernels.outside_reach(phases == NMC))`` (None without
    ``keep_outside``), which the crack test of the seeding mask computes anyway; the labels cover exactly the
    NMC, so it is also ``outside_reach(labels)``, as :func:`core.particles._separate_particles` hands it to the
    particle table (:func:`core.metrics._particle_table`'s ``outside``).
    """
    volume, phases = _validate(volume, phases)
    check_has_nmc(phases)
    if not merge_factor > 0:
        raise ValueError(f"merge_factor must be > 0, got {merge_factor}")
    sp = normalize_spacing(spacing)
    report = progress or (lambda f, m: None)
    report(0.0, "regularised seeding mask")
    # (the level is checked first thing there)
    mask, _, outside = _seeding_mask(volume, phases, level=level, sigma=sigma, deconvolved=deconvolved,
                                     blur=blur, iterations=iterations, keep_outside=keep_outside)
    params = params or SeparationParams()
    if deconvolved:
        params = replace(params, merge_ratio=params.merge_ratio * merge_factor)
    if mask.any():
        codes = mask.view(np.uint8)  # the mask's own memory holds the phase codes the separation reads: 0 / NMC
        codes *= np.uint8(NMC)
        del mask
        handed = [codes]  # handed over: freed once the separation has what it needs from it (before the flood)
        del codes
        seeds = _separate_particles(handed, sp, params, progress=lambda f, m: report(0.1 + 0.6 * f, m))[0]
    else:
        del mask
        seeds = np.zeros(phases.shape, np.int32)
    report(0.75, "extending the particles to every NMC voxel")
    # the NMC voxels outside the mask (a shell a voxel or two thick, and the odd dark region) take the label of
    # the nearest particle through the NMC (breadth-first growth, numba).  Until session 25 a marker watershed of
    # the NMC's quantised distance transform, which gave the same particles (F1 0.9704 and 0.9707 on the 256³
    # packing of issue 15's table, 0.7 % of the NMC voxels labelled differently) in 5 times the time (the
    # distance transform of the whole NMC and a priority flood: 10.3 s of 54 at 512³)
    # grown in the separation's own uint16 labels where they have room (no int32 copy beside them: 4 bytes a voxel)
    lean = seeds.dtype in (np.int32, np.uint16) and seeds.flags.c_contiguous
    labels = seeds if lean else np.array(seeds, dtype=np.int32)
    del seeds
    # grown where the phases read NMC (no mask of a byte a voxel beside them; a copy only for other integer types)
    codes = phases if phases.dtype == np.uint8 else phases.astype(np.uint8)
    try:
        # NMC components that hold no seed: a particle each
        K.grow_labels(codes, labels, label_rest=True, code=NMC, idle=None if side is None else side.start)
    except OverflowError:  # more particles than uint16 holds: the rest numbered on in int32
        labels = labels.astype(np.int32)
        K.grow_labels(codes, labels, label_rest=True, code=NMC)
    del codes
    # number 1..n in order of label (numba passes: no sorted copy of the volume)
    n_lab = int(labels.max())
    present = np.flatnonzero(K.label_counts(labels, n_lab)[1:]) + 1
    if present.size < n_lab:
        lut = np.zeros(n_lab + 1, labels.dtype)
        lut[present] = np.arange(1, present.size + 1)
        K.remap_inplace(labels, lut)
    report(1.0, f"{present.size} particles")
    return labels, outside


def _validate(volume, phases) -> tuple[np.ndarray, np.ndarray]:
    volume = check_volume(volume)
    phases = check_phases(phases)
    if volume.shape != phases.shape:
        raise ValueError(f"volume shape {volume.shape} differs from phases shape {phases.shape}")
    return volume, phases
