"""Particle separation on a coarser grid, brought back onto exactly the full-resolution NMC.

A scan whose particles are far more voxels across than the separation needs
(the seed study's 100 nm scans: particles about 100 voxels across) spends
most of its time in the distance transform and watershed of voxels that add
nothing to where one particle ends and the next begins.  With a factor
``f > 1`` (``AnalysisParams.coarsen``, ``analyze --coarsen``):

1. **Reduce** (:func:`block_nmc`): the NMC mask is cut into blocks of
   ``f × f × f`` voxels (:func:`skimage.measure.block_reduce`, summing); a
   block is NMC when at least half of its voxels inside the volume are NMC
   (majority, ties NMC; blocks cut by the volume's far faces count only
   their voxels inside it).
2. **Separate** the coarse NMC with the usual separation
   (:func:`core.particles.separate_particles`, the same
   :class:`~core.particles.SeparationParams`, voxel edges ``f × spacing``):
   labels 1..n.
3. **Grow** (:func:`grow_labels`) the coarse labels by :data:`GROW` coarse
   voxels into unlabelled coarse voxels (a 3×3×3 maximum filter, repeated:
   where two labels meet in an unlabelled voxel the larger one wins), so that
   full-resolution NMC voxels in blocks the majority left empty (the rim of
   each particle) are reached.
4. **Bring back** (:func:`upsample_labels`): every full-resolution NMC voxel
   takes the grown label of its block; every other voxel is 0.

What is lost: full-resolution NMC voxels farther than :data:`GROW` coarse
voxels (Chebyshev) from every coarse NMC block (isolated specks of NMC
smaller than about half a block, with no particle near them; the
whole-volume separation makes each of those a tiny particle of its own) stay
0 and are counted (:attr:`CoarseLabels.unlabelled`).  Particle boundaries at
contacts follow the coarse grid (within ``f`` voxels of the full-resolution
watershed line).  Each coarse label keeps at least one NMC voxel (a coarse
NMC block holds at least half its voxels in NMC, and growth never overwrites
a label), so the labels stay numbered 1..n, n the coarse separation's count.

``f = 1`` is the full-resolution separation itself (nothing here runs).
The rule for ``f = "auto"`` is :func:`auto_factor`.

Measured (``bench/coarse_separation.py``, sections ``coarse_separation_*`` of
``bench/RESULTS.md``; F1@0.5 against the full-resolution labels): on the
512³ benchmark electrode at 0.4 µm (largest particle 44 voxels across,
:func:`auto_factor` 1) ``f = 2`` gives 0.984 and ``f = 3`` 0.938: the
separation degrades once the largest particle is about 15 coarse voxels
across (the median one under 10).  With particles about 100 voxels across
(largest about 200) ``f`` = 2 to 4 gives 0.97 to 0.98 on a crop of the
upsampled seed-size volume (and is closer to its generator's labels than
full resolution) and 1.0 on a volume generated natively at 0.1 µm.  Hence
the rule's target of 50 voxels across the largest particle, about three
times the width where it degrades.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._validate import normalize_spacing
from .codes import NMC

__all__ = ["AUTO_TARGET_VOXELS", "CoarseLabels", "GROW", "MAX_FACTOR", "auto_factor", "block_nmc", "check_factor",
           "grow_labels", "separate_coarse", "upsample_labels"]

#: The largest coarsening factor.
MAX_FACTOR = 4

#: :func:`auto_factor`: the largest particle's diameter keeps at least this many voxels across on the coarse grid.
AUTO_TARGET_VOXELS = 50

#: Coarse voxels by which the coarse labels grow before they are brought back (step 3).
GROW = 2


def check_factor(factor, name: str = "coarsen"):
    """``factor`` as an int in 1..:data:`MAX_FACTOR`, or ``"auto"``; anything else is refused (ValueError)."""
    if isinstance(factor, str):
        if factor == "auto":
            return factor
        raise ValueError(f"{name} must be 'auto' or a whole number from 1 to {MAX_FACTOR}, got {factor!r}")
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or not 1 <= factor <= MAX_FACTOR:
        raise ValueError(f"{name} must be 'auto' or a whole number from 1 to {MAX_FACTOR}, got {factor!r}")
    return int(factor)


def auto_factor(max_diameter_um: float, spacing, *, target: int = AUTO_TARGET_VOXELS,
                max_factor: int = MAX_FACTOR) -> int:
    """The coarsening factor of ``coarsen="auto"``: ``clip(floor(D / (target * s)), 1, max_factor)``.

    ``D`` is the largest particle's diameter (µm; e.g.
    :func:`core.chunked.estimate_max_diameter`, the largest ball inside the
    NMC phase) and ``s`` the finest voxel edge: the largest particle keeps at
    least ``target`` voxels across on the coarse grid (the median particle of
    the synthetic electrodes, about half as wide, at least about
    ``target / 2``; the measured limit is in the module docstring).  Every
    demo electrode and benchmark volume up to 768³ (largest particles 38 to 45
    voxels across by that estimate) gives 1; the seed-size volume (223) gives 4.

    Parameters
    ----------
    max_diameter_um : float
        µm, >= 0 (0: no NMC, factor 1).
    spacing : float or (3,) float, µm
    target : int
        Voxels across the largest particle keeps on the coarse grid (>= 1).
    max_factor : int

    Returns
    -------
    int
        1..``max_factor``.
    """
    sp = normalize_spacing(spacing)
    if isinstance(max_diameter_um, bool) or not isinstance(max_diameter_um, (int, float, np.floating)) \
            or not math.isfinite(max_diameter_um) or max_diameter_um < 0:
        raise ValueError(f"max_diameter_um must be a finite number >= 0 µm, got {max_diameter_um!r}")
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or target < 1:
        raise ValueError(f"target must be a whole number of voxels >= 1, got {target!r}")
    check_factor(max_factor, "max_factor")
    across = float(max_diameter_um) / min(sp)
    return int(min(max_factor, max(1, math.floor(across / target))))


def _block_sizes(n: int, f: int) -> np.ndarray:
    """Voxels of each block of ``f`` along an axis of ``n`` voxels (the last block may be shorter)."""
    return np.minimum(f, n - np.arange(0, n, f))


def block_nmc(phases: np.ndarray, factor: int) -> np.ndarray:
    """The NMC phase on the grid reduced by ``factor``: a block is NMC when >= half its voxels are.

    Parameters
    ----------
    phases : (Z, Y, X) uint8
        Phase codes (2 = NMC); or a bool NMC mask.  Blocks start at index 0
        of each axis; the last block along an axis may be cut by the
        volume's face and counts only its voxels inside it.
    factor : int
        1..:data:`MAX_FACTOR`.

    Returns
    -------
    (ceil(Z / f), ceil(Y / f), ceil(X / f)) uint8
        :data:`core.codes.NMC` on NMC blocks, 0 elsewhere.
    """
    from skimage.measure import block_reduce

    f = check_factor(factor, "factor")
    if f == "auto":
        raise ValueError("factor must be a whole number here, not 'auto'")
    arr = np.asarray(phases)
    if arr.ndim != 3 or not arr.size:
        raise ValueError(f"phases must be a non-empty 3D array (z, y, x), got shape {arr.shape}")
    nmc = arr if arr.dtype == bool else arr == NMC
    if f == 1:
        return np.where(nmc, np.uint8(NMC), np.uint8(0))
    counts = block_reduce(nmc, (f, f, f), np.sum, cval=0)  # NMC voxels of each block
    sizes = [_block_sizes(n, f) for n in nmc.shape]
    inside = sizes[0][:, None, None] * sizes[1][None, :, None] * sizes[2][None, None, :]
    return np.where(2 * counts >= inside, np.uint8(NMC), np.uint8(0))


def grow_labels(labels: np.ndarray, steps: int = GROW) -> np.ndarray:
    """Grow labels into unlabelled (0) voxels by ``steps`` voxels; where two meet the larger label wins.

    Each step gives every 0 voxel the largest label of its 3×3×3
    neighbourhood (:func:`scipy.ndimage.maximum_filter`, nothing beyond the
    array's faces), so a result at distance ``>= steps`` from the array's
    faces depends only on the labels within ``steps`` voxels: a window with a
    margin of ``steps`` gives the same values in its inside as the whole array.

    Parameters
    ----------
    labels : (Z, Y, X) int
    steps : int
        >= 0.

    Returns
    -------
    (Z, Y, X) int32
    """
    from scipy import ndimage as ndi

    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a whole number >= 0, got {steps!r}")
    lab = np.asarray(labels).astype(np.int32, copy=True)
    if lab.ndim != 3:
        raise ValueError(f"labels must be 3D (z, y, x), got shape {lab.shape}")
    for _ in range(int(steps)):
        empty = lab == 0
        if not empty.any():
            break
        grown = ndi.maximum_filter(lab, size=3, mode="constant", cval=0)
        lab[empty] = grown[empty]
    return lab


def upsample_labels(coarse: np.ndarray, factor: int, nmc: np.ndarray, *, start=(0, 0, 0),
                    coarse_start=(0, 0, 0)) -> np.ndarray:
    """Full-resolution labels: each NMC voxel takes the coarse label of its block, every other voxel 0.

    Parameters
    ----------
    coarse : (z, y, x) int
        Coarse labels (already grown), whose first voxel is the coarse voxel
        ``coarse_start`` of the whole coarse grid.
    factor : int
    nmc : (Z, Y, X) bool
        The full-resolution NMC of a window whose first voxel is ``start``
        (full-resolution indices); its blocks must lie inside ``coarse``.
    start, coarse_start : (3,) int

    Returns
    -------
    (Z, Y, X) int32
    """
    f = int(factor)
    nmc = np.asarray(nmc, bool)
    coarse = np.asarray(coarse)
    idx = []
    for a in range(3):
        i = np.arange(int(start[a]), int(start[a]) + nmc.shape[a]) // f - int(coarse_start[a])
        if i.size and (i[0] < 0 or i[-1] >= coarse.shape[a]):
            raise ValueError(f"the window's blocks along axis {a} are not inside the coarse labels")
        idx.append(i)
    out = coarse[np.ix_(*idx)].astype(np.int32, copy=False)
    out[~nmc] = 0
    return out


@dataclass(frozen=True, eq=False)
class CoarseLabels:
    """What :func:`separate_coarse` returns.

    Attributes
    ----------
    labels : (Z, Y, X) int32
        1..n on the NMC voxels that were reached, 0 elsewhere.
    factor : int
    coarse_shape : (3,) int
    unlabelled : int
        Full-resolution NMC voxels left 0 (see the module docstring).
    """

    labels: np.ndarray
    factor: int
    coarse_shape: tuple[int, int, int]
    unlabelled: int


def separate_coarse(phases: np.ndarray, spacing=None, params=None, factor: int = 2, *,
                    grow: int = GROW) -> CoarseLabels:
    """Separate the particles of ``phases`` on the grid reduced by ``factor``; labels on its full-resolution NMC.

    Parameters
    ----------
    phases : (Z, Y, X) uint8
        Phase codes (0 pore, 1 CBD, 2 NMC).
    spacing : float or (3,) float, µm
        Of ``phases``; the coarse separation runs at ``factor * spacing``.
    params : core.particles.SeparationParams or None
    factor : int
        1..:data:`MAX_FACTOR`; 1 is :func:`core.particles.separate_particles` itself.
    grow : int
        Coarse voxels the coarse labels grow by (:func:`grow_labels`).

    Returns
    -------
    CoarseLabels
    """
    from ._validate import check_has_nmc, check_phases
    from .particles import separate_particles

    phases = check_phases(phases)
    check_has_nmc(phases)
    sp = normalize_spacing(spacing)
    f = check_factor(factor, "factor")
    if f == "auto":
        raise ValueError("factor must be a whole number here; resolve 'auto' with auto_factor first")
    if f == 1:
        lab = separate_particles(phases, sp, params).astype(np.int32, copy=False)
        return CoarseLabels(lab, 1, tuple(phases.shape), 0)
    nmc = phases == NMC
    coarse = block_nmc(nmc, f)
    if (coarse == NMC).any():
        cl = separate_particles(coarse, tuple(f * s for s in sp), params)
    else:  # the NMC is all specks smaller than half a block
        cl = np.zeros(coarse.shape, np.int32)
    cl = grow_labels(cl, grow)
    labels = upsample_labels(cl, f, nmc)
    unlabelled = int(np.count_nonzero(nmc & (labels == 0)))
    return CoarseLabels(labels, f, tuple(int(n) for n in coarse.shape), unlabelled)
