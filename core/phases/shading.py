"""A brightness drift along the slices: the pure phases' grey values change with the slice index.

Scans drift: a lab source's output or a detector's gain changes while the slices are acquired or reconstructed,
and the same material comes out brighter at one end of the stack.  The analysis applies one pair of thresholds to
every slice, so where NMC is, say, 15 % of the pore-NMC contrast brighter at one end than at the other, the same
material is read as another phase there, and the particles' faces and their detachment follow the slice index: a
false trend with depth where the slices run along the electrode's thickness.  ``bench/RESULTS.md`` section
shading_drift measures it on a demo electrode.

:func:`shading_reading` reads the pure grey values of pore and NMC slab by slab along z (each slab thresholded
by its own three-class Otsu, the medians two voxels inside each phase, as :func:`core.phases.phase_references`),
so a change of the phases' amounts along z (more CBD near the separator) does not read as a drift, only a
change of their grey values does.  :func:`shading_message` words a drift of :data:`SHADING_WARN` of the contrast
or more; :func:`flatten_shading` maps every slice's pore and NMC grey values onto those of the whole volume
(two points, linear between the slabs' centres), which the analysis does with ``SegmentParams(flatten=True)``
(``--flatten-shading`` on the command line).
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["SHADING_SLABS", "SHADING_WARN", "apply_flattening", "flatten_coefficients", "flatten_shading",
           "shading_message", "shading_reading"]

#: Slabs read along z (at most; a thinner volume has fewer).
SHADING_SLABS = 8
#: Slices per slab (the interior medians need a few slices to erode along z).
_SLAB_SLICES = 6
#: Largest side of the central (y, x) window each slab is read in.
_WINDOW = 256
#: A drift of the pure grey values of this share of the pore-NMC contrast or more is worth a warning: on the
#: cycled-1C demo (128³, seeds 4 and 5) a drift read as 0.10 moved the median detachment by 0.006-0.008, one read
#: as 0.19 by 0.052-0.055 with a false rise along z, one read as 0.29 split particles (444-520 against 174-185)
#: (``bench/RESULTS.md`` shading_drift).
SHADING_WARN = 0.15
#: Fewest slabs for a reading.
_MIN_SLABS = 3
#: Fewest voxels (of a slab's strided sample, the fill left out) to threshold a slab by.
_MIN_SAMPLE = 500
#: A slab's phase is read only where its first (Otsu) segmentation gives it at least this share of the slab.
_MIN_SHARE = 0.05
#: A slab whose NMC-pore contrast is under this share of the median slab's holds one material (the pore-filled
#: layer beyond an electrode's surface, split by Otsu into noise classes): it is left out.
_MIN_CONTRAST = 0.6


def _slab_levels(block: np.ndarray, exclude: float | None = None) -> tuple[float, float, float]:
    """(pore, CBD, NMC) pure grey values of one slab, each NaN where the slab holds too little of it; voxels equal
    to ``exclude`` (a fill) belong to no phase."""
    from .threshold import _interior_references, _otsu, threshold

    nan3 = (float("nan"),) * 3
    blk = np.ascontiguousarray(block, dtype=np.float32)
    fill = None if exclude is None else blk == np.float32(exclude)
    sample = blk[:, :: max(1, blk.shape[1] // 128), :: max(1, blk.shape[2] // 128)]
    if fill is not None:
        sample = sample[sample != np.float32(exclude)]
    if sample.size < _MIN_SAMPLE:  # a slab (nearly) all fill: nothing to read
        return nan3
    try:
        otsu = _otsu(sample)
    except ValueError:  # fewer than three grey values
        return nan3
    ph = threshold(blk, *otsu)
    if fill is not None:
        ph[fill] = 3  # no phase: not counted, and an edge the phases' insides keep away from
    refs = _interior_references(blk, ph)
    counts = np.bincount(ph.ravel(), minlength=4)[:3]
    share = counts / max(int(counts.sum()), 1)
    return tuple(float(v) if s >= _MIN_SHARE else float("nan") for v, s in zip(refs, share))


def shading_reading(volume, *, slabs: int = SHADING_SLABS, exclude: float | None = None) -> dict | None:
    """The pure pore and NMC grey values slab by slab along z, and how far they drift.

    Each slab is thresholded by its own three-class Otsu and its phases' grey values are the medians two voxels
    inside them.  A slab that lacks a phase gives that phase's class to another material (a slab without pore
    splits CBD in two): a level nearer the slabs' median CBD level than the median level of its own phase is
    left out, the pore level of a slab without NMC too (beyond the electrode), and both levels of a slab whose
    NMC-pore contrast is under 0.6 of the median slab's (one material, split into noise classes).

    Parameters
    ----------
    volume : (Z, Y, X) ndarray or lazily read array-like
        Greyscale.  Each slab is read as a box: a central (y, x) window of at most 256² voxels and six slices.
        Non-finite voxels take the slab's median.
    slabs : int
        How many slabs, spread evenly over the depth (fewer in a thin volume).
    exclude : float, optional
        A fill's grey value (:func:`core.phases.fill_reading`): its voxels belong to no phase (in a section under
        about 360² voxels the central window reaches the corners outside a circular field of view).

    Returns
    -------
    dict or None
        None for a volume too thin to have slabs (fewer than three slabs of six slices).  Else ``z`` (each slab's
        centre, slices), ``pore`` and ``nmc`` (their pure grey values, NaN where a slab's reading is left out),
        ``contrast`` (median NMC minus median pore), ``drift`` (the larger range of the two levels over the slabs,
        as a share of the contrast; 0 where fewer than three slabs read a level) and ``warn`` (``drift >=``
        :data:`SHADING_WARN`).
    """
    nz, ny, nx = (int(n) for n in volume.shape)
    n = min(int(slabs), nz // _SLAB_SLICES)
    if n < _MIN_SLABS:
        return None
    wy, wx = min(ny, _WINDOW), min(nx, _WINDOW)
    y0, x0 = (ny - wy) // 2, (nx - wx) // 2
    centres = np.linspace(_SLAB_SLICES / 2, nz - _SLAB_SLICES / 2, n)
    z, levels = [], []
    for c in centres:
        a = min(max(int(round(c - _SLAB_SLICES / 2)), 0), nz - _SLAB_SLICES)
        z.append(a + _SLAB_SLICES / 2 - 0.5)
        block = np.asarray(volume[a : a + _SLAB_SLICES, y0 : y0 + wy, x0 : x0 + wx])
        if block.dtype.kind == "f" and not np.isfinite(block).all():  # the few non-finite voxels a run fills
            finite = np.isfinite(block)
            if not finite.any():
                levels.append((np.nan, np.nan, np.nan))
                continue
            block = np.where(finite, block, np.median(block[finite]))
        levels.append(_slab_levels(block, exclude))
    pore, cbd, nmc = (np.asarray(v, np.float64) for v in zip(*levels))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN medians
        mp, mc, mn = np.nanmedian(pore), np.nanmedian(cbd), np.nanmedian(nmc)
    if np.isfinite(mc):  # a level nearer CBD's than its own phase's is another material's
        pore[np.abs(pore - mc) < np.abs(pore - mp)] = np.nan
        nmc[np.abs(nmc - mc) < np.abs(nmc - mn)] = np.nan
    # a slab without NMC lies beyond the electrode (its open pore lacks the glow that NMC's blur lends the pores
    # between particles): its pore level is not the electrode's
    pore[~np.isfinite(nmc)] = np.nan
    both = np.isfinite(pore) & np.isfinite(nmc)
    if both.any():  # a slab of one material: its Otsu classes split noise, its "levels" are not the phases'
        slab_contrast = nmc - pore
        one = both & (slab_contrast < _MIN_CONTRAST * np.median(slab_contrast[both]))
        pore[one], nmc[one] = np.nan, np.nan
    fp, fn = np.isfinite(pore), np.isfinite(nmc)
    contrast = float(np.median(nmc[fn]) - np.median(pore[fp])) if fp.any() and fn.any() else float("nan")
    drift = 0.0
    if contrast > 0:
        ranges = [np.ptp(v[f]) for v, f in ((pore, fp), (nmc, fn)) if np.count_nonzero(f) >= _MIN_SLABS]
        drift = float(max(ranges) / contrast) if ranges else 0.0
    return {"z": [float(v) for v in z], "pore": [float(v) for v in pore], "nmc": [float(v) for v in nmc],
            "contrast": contrast, "drift": drift, "warn": bool(drift >= SHADING_WARN)}


def shading_message(reading: dict | None, method: str = "threshold") -> str | None:
    """One paragraph for a drift worth a warning (``reading["warn"]``), else None; ``method`` the analysis's
    (``"threshold"``, ``"model"`` or ``"classifier"``: what the drift does to it and whether flattening applies)."""
    if not reading or not reading.get("warn"):
        return None
    pore, nmc = np.asarray(reading["pore"]), np.asarray(reading["nmc"])
    which = "NMC" if np.nanmax(nmc) - np.nanmin(nmc) >= np.nanmax(pore) - np.nanmin(pore) else "pore"
    said = (f"The grey values drift along z: the pure {which} grey value varies by {reading['drift']:.0%} of the "
            "pore-NMC contrast between slabs of slices. ")
    if method == "classifier":
        return said + ("A classifier trained on painted slices scales each z-slice by its own grey values, which "
                       "takes out most of such a drift; one trained on whole volumes reads it as it is (thresholds "
                       "and the 3D U-Net can flatten it first: Segment page, or --flatten-shading).")
    what = ("One pair of thresholds then reads" if method == "threshold" else
            "The 3D U-Net, which scales the whole volume by one pair of grey values, then reads")
    return said + (f"{what} the same material as different phases at different depths, and the detachment follows "
                   "the slice index (a false trend with depth). Flatten the drift before segmenting (Segment page, "
                   "or --flatten-shading on the command line).")


def flatten_shading(volume: np.ndarray, reading: dict, *, keep: float | None = None) -> np.ndarray:
    """The volume with every slice's pure pore and NMC grey values mapped onto the whole volume's.

    Each slice ``z`` is mapped linearly so that its pore level ``p(z)`` goes to the median pore level ``P`` and
    its NMC level ``n(z)`` to ``N`` (``v' = P + (v - p(z)) (N - P) / (n(z) - p(z))``); ``p`` and ``n`` are the
    slab levels of ``reading`` interpolated linearly between the centres of the slabs that read them and held
    beyond the end ones.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        Greyscale, as read by ``reading``.
    reading : dict
        From :func:`shading_reading` of ``volume``.
    keep : float, optional
        A grey value left as it is: a fill outside the field of view (:func:`core.phases.fill_reading`), which
        holds no data to flatten and must stay one exact value for the analysis to find and leave out.

    Returns
    -------
    (Z, Y, X) ndarray
        A new array of ``volume``'s dtype (integer values rounded and clipped to the type's range).

    Raises
    ------
    ValueError
        Fewer than two slabs with a pore or an NMC level, or NMC not brighter than pore somewhere.
    """
    gain, shift = flatten_coefficients(reading, volume.shape[0])
    out = np.empty(volume.shape, volume.dtype)
    for k in range(volume.shape[0]):  # slice by slice: no volume-sized float scratch
        out[k] = apply_flattening(volume[k : k + 1], gain[k : k + 1], shift[k : k + 1], keep=keep)[0]
    return out


def flatten_coefficients(reading: dict, nz: int) -> tuple[np.ndarray, np.ndarray]:
    """(gain, shift), float32 of length ``nz``: slice ``z`` maps to ``v * gain[z] + shift[z]``
    (:func:`flatten_shading`; a chunked analysis maps its chunks with the same numbers).

    Raises
    ------
    ValueError
        As :func:`flatten_shading`.
    """
    z = np.asarray(reading["z"], np.float64)
    p = np.asarray(reading["pore"], np.float64)
    m = np.asarray(reading["nmc"], np.float64)
    fp, fm = np.isfinite(p), np.isfinite(m)
    if min(np.count_nonzero(fp), np.count_nonzero(fm)) < 2:
        raise ValueError("the shading reading has fewer than two slabs with a pore or an NMC level: nothing to "
                         "flatten by")
    P, N = float(np.median(p[fp])), float(np.median(m[fm]))
    zi = np.arange(int(nz), dtype=np.float64)
    pz, mz = np.interp(zi, z[fp], p[fp]), np.interp(zi, z[fm], m[fm])
    if np.any(mz <= pz) or not N > P:
        raise ValueError("the shading reading has NMC no brighter than pore somewhere along z: not a drift to "
                         "flatten")
    return ((N - P) / (mz - pz)).astype(np.float32), (P - pz * (N - P) / (mz - pz)).astype(np.float32)


def apply_flattening(block: np.ndarray, gain: np.ndarray, shift: np.ndarray, keep: float | None = None) -> np.ndarray:
    """``block`` (Z, Y, X) with its slices mapped by ``gain`` and ``shift`` (Z,) (or broadcastable (Z, 1, 1)), in
    float32, rounded and clipped back into an integer dtype; voxels equal to ``keep`` (a fill) left as they are."""
    s = block.astype(np.float32) * np.asarray(gain, np.float32).reshape(-1, 1, 1) \
        + np.asarray(shift, np.float32).reshape(-1, 1, 1)
    if np.issubdtype(block.dtype, np.integer):
        info = np.iinfo(block.dtype)
        np.rint(s, out=s)
        np.clip(s, info.min, info.max, out=s)
    out = s.astype(block.dtype, copy=False)
    if keep is not None:
        fill = block == keep
        if fill.any():
            out[fill] = block[fill]
    return out
