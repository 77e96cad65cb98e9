"""An independent reference for per-particle interface areas and detachment.

Plain numpy, written to be read, not to be fast: for each particle label of the TRUE labels it counts the
voxel faces (6-neighbourhood) it shares with pore, with CBD, with another particle and with the volume
edge, on the TRUE phases, and derives ``detachment = area_pore / (area_pore + area_cbd)``.

It does not call ``core.metrics`` (the code whose numbers it checks). The one place where the project's
definition needs more than a face count is cracks: a particle's faces to its own internal cracks are not
surface. Here cracks are not inferred: the caller passes the generator's crack mask (``e.extra["cracks"]``
of :func:`core.synth.make_electrode`), and each crack region belongs to the particle that owns most of the
voxels around it (the one particle around it, except where a crack plane crosses a particle boundary).

Used by ``tests/core/test_headline_accuracy.py`` and ``bench/accuracy_synthetic.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

#: Phase codes (the project's contract: 0 pore, 1 CBD, 2 NMC).
PORE, CBD, NMC = 0, 1, 2


def fill_generator_cracks(labels: np.ndarray, cracks: np.ndarray | None) -> np.ndarray:
    """Labels with each connected crack region (6-connected) given to the particle around it."""
    filled = np.asarray(labels).astype(np.int64, copy=True)
    if cracks is None or not np.any(cracks):
        return filled
    regions, _ = ndi.label(cracks)
    for r, box in enumerate(ndi.find_objects(regions), start=1):
        # the region's box grown by one voxel, and the voxels just outside the region within it
        box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
        region = regions[box] == r
        ring = ndi.binary_dilation(region) & ~cracks[box]
        around = filled[box][ring]
        around = around[around > 0]
        if around.size:  # the particle owning most of the crack's neighbours
            filled[box][region] = np.bincount(around).argmax()
    return filled


def ambiguous_crack_particles(labels: np.ndarray, cracks: np.ndarray | None) -> np.ndarray:
    """Labels of the particles where this reference and ``core.metrics.particle_table`` differ by design.

    Those next to a crack region that the volume edge cuts open, or that borders two particles (a crack
    plane crossing a particle boundary): the generator knows it is a crack; ``particle_table``, which sees
    only labels and phases, counts it as pore (unless the cut crack is enclosed within the cut face).
    """
    if cracks is None or not np.any(cracks):
        return np.zeros(0, np.int64)
    lab = np.asarray(labels)
    regions, _ = ndi.label(cracks)
    cut = set(np.unique(np.concatenate([np.take(regions, end, axis=ax).ravel()
                                        for ax in range(3) for end in (0, regions.shape[ax] - 1)])))
    out: set[int] = set()
    for r, box in enumerate(ndi.find_objects(regions), start=1):
        box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
        region = regions[box] == r
        around = set(np.unique(lab[box][ndi.binary_dilation(region) & ~cracks[box]]).tolist()) - {0}
        if r in cut or len(around) > 1:
            out |= around
    return np.array(sorted(out), np.int64)


def face_counts(labels: np.ndarray, phases: np.ndarray, spacing=(1.0, 1.0, 1.0),
                cracks: np.ndarray | None = None) -> pd.DataFrame:
    """Per particle: areas (µm²) of its faces to pore, CBD, other particles and the volume edge.

    Parameters
    ----------
    labels : (Z, Y, X) int ndarray
        True particle labels, 0 = not a particle.
    phases : (Z, Y, X) uint8 ndarray
        True phases, 0 pore / 1 CBD / 2 NMC.
    spacing : (3,) float, µm
    cracks : (Z, Y, X) bool ndarray, optional
        The generator's crack mask; faces to a particle's own cracks are not counted.

    Returns
    -------
    DataFrame indexed by label with columns ``area_pore_um2``, ``area_cbd_um2``, ``area_particle_um2``,
    ``area_edge_um2`` and ``detachment`` (NaN when the particle touches neither pore nor CBD).
    """
    lab = fill_generator_cracks(labels, cracks)
    ph = np.asarray(phases)
    sp = np.asarray(spacing, float)
    n = int(lab.max())
    pore = np.zeros(n + 1)
    cbd = np.zeros(n + 1)
    other = np.zeros(n + 1)
    edge = np.zeros(n + 1)
    for axis in range(3):
        face_area = float(np.prod(np.delete(sp, axis)))
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        a_lab, b_lab = lab[tuple(lo)], lab[tuple(hi)]
        a_ph, b_ph = ph[tuple(lo)], ph[tuple(hi)]
        # each face seen from both sides: (this voxel, its neighbour)
        for me, you, you_ph in ((a_lab, b_lab, b_ph), (b_lab, a_lab, a_ph)):
            mine = me > 0
            for target, sel in ((pore, (you == 0) & (you_ph == PORE)), (cbd, (you == 0) & (you_ph == CBD)),
                                (other, (you != me) & ((you > 0) | (you_ph == NMC)))):
                target += np.bincount(me[mine & sel], minlength=n + 1) * face_area
        # faces on the two ends of this axis
        for end in (0, lab.shape[axis] - 1):
            sl = np.take(lab, end, axis=axis)
            edge += np.bincount(sl[sl > 0], minlength=n + 1) * face_area
    present = np.flatnonzero(np.bincount(lab.ravel(), minlength=n + 1))
    present = present[present > 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        det = pore / (pore + cbd)
    return pd.DataFrame({
        "area_pore_um2": pore[present], "area_cbd_um2": cbd[present], "area_particle_um2": other[present],
        "area_edge_um2": edge[present], "detachment": det[present],
    }, index=pd.Index(present, name="label"))


def detachment_errors(truth: pd.DataFrame, pred_table: pd.DataFrame, pairs: pd.DataFrame,
                      *, min_iou: float = 0.5) -> np.ndarray:
    """Measured − true detachment over matched particles (NaN-free).

    ``truth`` from :func:`face_counts`; ``pred_table`` an analysis' particle table (``label``,
    ``detachment``); ``pairs`` with columns ``true``, ``pred``, ``iou`` (one row per matched pair).
    """
    p = pairs[pairs["iou"] > min_iou]
    t = truth["detachment"].reindex(p["true"].to_numpy()).to_numpy()
    m = pred_table.set_index("label")["detachment"].reindex(p["pred"].to_numpy()).to_numpy()
    e = m - t
    return e[np.isfinite(e)]
