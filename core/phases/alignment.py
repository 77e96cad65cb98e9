"""Slices shifted against one another along z: a serial-section stack (FIB-SEM) that was not aligned.

A FIB-SEM tomography stack is imaged one milled face at a time; the stage, the beams and the charging sample drift
between faces, so the raw stack's slices are shifted against one another (by a pixel or more from one to the next)
and are aligned before any 3D analysis (Fiji's *Register Virtual Stack Slices* or *Linear Stack Alignment with
SIFT*, the microscope software's own alignment).  Left as they are, every particle is sheared along z: touching
particles merge or split and their surfaces, contacts and detachment are wrong.  An X-ray tomography reconstruction
is aligned by construction (a drift shows as blur or streaks, not as shifted slices).

:func:`alignment_reading` measures the shift between consecutive z planes by cross-correlation
(:func:`skimage.registration.phase_cross_correlation` without its phase normalisation, to a tenth of a pixel) on
:data:`ALIGN_PAIRS` pairs spread along z, each on the central window of at most :data:`ALIGN_WINDOW` pixels a side;
it reads two planes a pair, so a lazily read volume is not read whole.  A pair whose planes share no structure (a
blank separator, pure noise) is left out, and the median over the others is the reading.  Aligned volumes read
0.0-0.1 pixel (the demo electrodes, the real calendered NMC volume of ``shared/data/real``, a demo electrode's
phases blurred with fresh noise of 0.22 of the pore-NMC contrast in every slice; 0.22 at 0.44); the same drifting by
0.42 / 1.48 / 2.24 pixels a slice (a cubic spline shift) reads about 0.3 / 1.2 / 2.1
(``tests/core/test_alignment.py``, ``bench/RESULTS.md`` alignment).

:func:`alignment_message` says it in one sentence where the median step is at least :data:`ALIGN_WARN_PX`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ALIGN_PAIRS", "ALIGN_WARN_PX", "ALIGN_WINDOW", "alignment_message", "alignment_reading"]

#: Pairs of consecutive z planes read (spread evenly along z).
ALIGN_PAIRS = 12
#: Each pair is compared on its central window at most this many pixels a side.
ALIGN_WINDOW = 512
#: A median shift from one slice to the next of at least this many pixels is said (aligned volumes read 0.0-0.1;
#: a quarter of a pixel a slice shears a particle by 14° where the voxels are cubes).
ALIGN_WARN_PX = 0.25
#: Fewer planes than this give too few pairs for a median: no reading.
_MIN_PLANES = 4
#: A pair whose registration error (skimage's normalised RMS error after the shift: 0.999-1.0 for planes of pure
#: noise or a blank separator, 0.24-0.64 for neighbouring slices of the demo electrodes and the real calendered
#: volume, 0.87-0.93 with noise of 0.44 of the contrast) is at least this shares no structure: left out.
_UNRELATED = 0.95


def _plane(volume, z: int, window: tuple[slice, slice]) -> np.ndarray:
    a = np.asarray(volume[z:z + 1, window[0], window[1]])[0].astype(np.float64)
    finite = np.isfinite(a)
    if not finite.all():  # a NaN would spread over the whole correlation
        a[~finite] = np.mean(a[finite]) if finite.any() else 0.0
    return a - a.mean()


def alignment_reading(volume, *, pairs: int = ALIGN_PAIRS) -> dict | None:
    """The shift between consecutive z planes of a (Z, Y, X) greyscale.

    Parameters
    ----------
    volume : (Z, Y, X) array-like
        Sliceable along z (a :class:`core.chunked.LazyArray` reads the planes it is asked for only).
    pairs : int
        Pairs of consecutive planes read, spread evenly along z.

    Returns
    -------
    dict or None
        ``pairs`` (read), ``shift_px`` ((dy, dx): the median signed shift of a plane's content against the plane
        before, pixels; a steady drift), ``step_px`` (the median length of that shift, pixels; a drift or a
        jitter), ``stack_px`` (``step_px`` times the planes less one: what it sums to over the stack where it is a
        drift) and ``warn``
        (``step_px`` >= :data:`ALIGN_WARN_PX`); None for fewer than four planes, or fewer than three pairs whose
        planes share structure (a constant volume, pure noise).
    """
    from skimage.registration import phase_cross_correlation

    nz, ny, nx = (int(n) for n in volume.shape)
    if nz < _MIN_PLANES or pairs < 1:
        return None
    window = tuple(slice(max(0, (n - ALIGN_WINDOW) // 2), max(0, (n - ALIGN_WINDOW) // 2) + min(n, ALIGN_WINDOW))
                   for n in (ny, nx))
    shifts = []
    for z in np.unique(np.linspace(0, nz - 2, min(pairs, nz - 1)).round().astype(int)):
        a, b = _plane(volume, int(z), window), _plane(volume, int(z) + 1, window)
        if not a.any() or not b.any():  # a constant plane: no peak to find
            continue
        # plain cross-correlation (no phase normalisation: that whitens the noise, which does not move with the
        # structure, and pulls a sub-pixel shift towards 0: 0.47 instead of 1.17 pixel on a drift of 1.48)
        shift, error, _ = phase_cross_correlation(a, b, upsample_factor=10, normalization=None)
        if error >= _UNRELATED:  # the planes share no structure (noise, a separator): the peak is chance
            continue
        shifts.append(-shift)  # the shift that registers b onto a: b moved by its opposite
    if len(shifts) < _MIN_PLANES - 1:
        return None
    shifts = np.array(shifts)
    step = float(np.median(np.hypot(shifts[:, 0], shifts[:, 1])))
    return {"pairs": len(shifts), "shift_px": tuple(float(v) for v in np.median(shifts, axis=0)),
            "step_px": step, "stack_px": step * (nz - 1), "warn": step >= ALIGN_WARN_PX}


def alignment_message(reading: dict | None) -> str | None:
    """One sentence where :func:`alignment_reading` warns: the shift, what it does, what to do; else None."""
    if not reading or not reading["warn"]:
        return None
    dy, dx = reading["shift_px"]
    return (f"The slices are shifted against one another: by a median of {reading['step_px']:.1f} pixel from one "
            f"z plane to the next (y {dy:+.1f}, x {dx:+.1f}; read on {reading['pairs']} pairs of planes), as in a "
            f"FIB-SEM stack that was not aligned, so the particles are sheared along z and touching ones split or "
            f"merge: align the slices first (Fiji's Register Virtual Stack Slices or Linear Stack Alignment with "
            f"SIFT, or the microscope software's alignment) and analyse the aligned stack.")
