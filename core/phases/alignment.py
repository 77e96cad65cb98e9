"""Slices shifted against one another along z: a serial-section stack (FIB-SEM) that was not aligned.

A FIB-SEM tomography stack is imaged one milled face at a time; the stage, the beams and the charging sample drift
between faces, so the raw stack's slices are shifted against one another (by a pixel or more from one to the next)
and are aligned before any 3D analysis (Fiji's *Register Virtual Stack Slices* or *Linear Stack Alignment with
SIFT*, the microscope software's own alignment).  Left as they are, every particle is sheared along z: touching
particles merge or split and their surfaces, contacts and detachment are wrong.  An X-ray tomography reconstruction
is aligned by construction (a drift shows as blur or streaks, not as shifted slices).

:func:`alignment_reading` measures the shift between consecutive z planes by cross-correlation
(:func:`skimage.registration.phase_cross_correlation` without its phase normalisation, to a twentieth of a pixel, each
plane smoothed by a Gaussian of one pixel and tapered at its edges, in two passes: the second on the plane moved back by
the first) on :data:`ALIGN_PAIRS` pairs spread along z, each on the central window of at most :data:`ALIGN_WINDOW`
pixels a side; it reads two planes a pair, so a lazily read volume is not read whole.  A pair whose planes share no
structure (a blank separator, pure noise) is left out, and the median over the others is the reading; planes narrower
than 64 pixels are not read.  Aligned volumes read 0.0-0.11 pixel (the demo electrodes, the real calendered NMC
volume of ``shared/data/real``, a demo electrode's phases blurred with fresh noise of up to 0.44 of the pore-NMC
contrast in every slice); the same drifting by 0.42 / 1.48 / 2.24 pixels a slice reads 0.50 / 1.47 / 2.23
(``tests/core/test_alignment.py``, ``bench/RESULTS.md`` alignment).

:func:`alignment_message` says it in one sentence where the median step is at least :data:`ALIGN_WARN_PX`.

:func:`slice_shifts` mends it the way Fiji's *StackReg* (translation) does: the same registration on every pair of
consecutive planes, the steps summed from the first plane, each plane's offset rounded to whole pixels (so no grey
value is interpolated and phase codes stay codes; a plane is off by at most half a pixel, which does not add up
along z).  Read with those offsets (``align`` of :func:`core.io.load_volume`, of a sample's input, ``--align`` of the
CLI), each plane is shifted back and the region all planes share is kept; the offsets are stored with the sample
and in recipes, so a rerun reads the same volume without measuring again.  A pair whose planes share no structure
(or whose weak match lies far from the others) adds the typical step, the median of the others.  The sum drifts
where the structure itself leans from one plane to the next (a random walk of the registration's error too): a
stack aligned here is for a stack that was not aligned at all, not a replacement of the microscope's own alignment
(``bench/RESULTS.md`` alignment: over 64 planes each offset within 0.7-3.1 pixels of the truth; 512³ in 8 s).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["ALIGN_PAIRS", "ALIGN_WARN_PX", "ALIGN_WINDOW", "alignment_message", "alignment_reading", "aligned_message",
           "slice_shifts"]

#: Pairs of consecutive z planes read (spread evenly along z).
ALIGN_PAIRS = 12
#: Each pair is compared on its central window at most this many pixels a side.
ALIGN_WINDOW = 512
#: A median shift from one slice to the next of at least this many pixels is said (aligned volumes read 0.0-0.1;
#: a quarter of a pixel a slice shears a particle by 14° where the voxels are cubes).
ALIGN_WARN_PX = 0.25
#: A median step of sub-pixel length whose median direction does not drift (the median shift under
#: :data:`ALIGN_WARN_PX`) is the reading's own jitter, not a stack to align, unless the steps reach this length (a
#: stage that jumps back and forth by a pixel or more).  QA: a 100³ crop of the real calendered CT volume, labels,
#: read a step of 0.25 pixel with a median shift of (-0.05, +0.12) and was told to align its slices.
ALIGN_JITTER_PX = 0.75
#: Fewer planes than this give too few pairs for a median: no reading.
_MIN_PLANES = 4
#: :func:`alignment_reading` also reads planes this far apart: a stack that steps a whole pixel every few planes
#: reads 0 between most neighbours (a median of 0), but its drift adds up over the gap (QA walk 7: 1 pixel every
#: 3-4 planes, 40 pixels over the stack, unsaid).
ALIGN_GAP = 8
#: A pair whose registration error (skimage's normalised RMS error after the shift: 0.999-1.0 for planes of pure
#: noise or a blank separator, 0.24-0.64 for neighbouring slices of the demo electrodes and the real calendered
#: volume, 0.87-0.93 with noise of 0.44 of the contrast) is at least this shares no structure: left out.
_UNRELATED = 0.95
#: A pair registered with at least this error (near-empty planes; very noisy ones: 0.87-0.93 with noise of 0.44 of
#: the contrast) is a weak match: :func:`slice_shifts` takes its step only where it lies within :data:`_JUMP_PX`
#: of the stack's typical step (a chance peak 60 pixels away, error 0.94, between two planes of the pristine demo's
#: phases that hold a few CBD voxels alone, sheared the whole stack).
_WEAK = 0.8
#: How far (pixels, along y or x) a weak match may lie from the typical step.
_JUMP_PX = 3.0
#: The share of each side of a plane the taper (:func:`_taper`) rolls off over (0.2 read aligned demo electrodes of
#: 48² planes as shifted by 0.30 pixel, 0.1 by 0.28 and 64² ones by 0.25 / 0.21).
_TAPER = 0.1
#: Planes narrower than this (pixels, along y or x) are not read for a shift: too few structures for the median of
#: the steps' lengths to stay under the warning where nothing moves (aligned demo electrodes of 32² planes read up to
#: 0.43 pixel, of 48² ones 0.28, of 64² ones 0.21).
_MIN_WIDTH = 64
#: Each plane is smoothed by a Gaussian of this σ (pixels) first: fresh noise in every plane (0.44 of the pore-NMC
#: contrast) read an aligned stack as shifted by 0.33 pixel a plane without it, 0.11 with it (with a taper of 0.2).
_SMOOTH = 1.0
#: The registration's sub-pixel resolution: 1 / this pixel.
_UPSAMPLE = 20
#: The spline order of the second pass's shift (linear: a quarter of the time of a cubic one).
_ORDER = 1


class _Plane:
    """Plane ``z``'s window as the registration takes it: NaN filled, smoothed (:data:`_SMOOTH`), mean 0 (all 0
    for a constant plane), float32; with the FFT of it tapered (:func:`_taper`), computed once (a plane is the
    second of one pair and the first of the next)."""

    def __init__(self, volume, z: int, window: tuple[slice, slice]):
        from scipy import fft
        from scipy import ndimage as ndi

        # float64: values near float32's limit (a big-endian file read as little-endian: 1e38) overflowed its sums
        # and FFT into NaN, which the registration refuses (QA: the Samples page stopped with a ValueError)
        a = np.asarray(volume[z:z + 1, window[0], window[1]])[0].astype(np.float64)
        finite = np.isfinite(a)
        if not finite.all():  # a NaN would spread over the whole correlation
            a[~finite] = np.mean(a[finite]) if finite.any() else 0.0
        self.constant = a.size == 0 or bool(a.min() == a.max())
        if not self.constant:
            a = ndi.gaussian_filter(a, _SMOOTH)
            a -= a.mean()
        self.data = a.astype(np.float32) if np.abs(a).max(initial=0.0) < 1e30 else a
        self.spectrum = None if self.constant else fft.fft2(a * _taper(a.shape))
        if self.spectrum is not None and not np.isfinite(self.spectrum).all():  # beyond even float64: not read
            self.constant, self.spectrum = True, None


@lru_cache(maxsize=4)
def _taper(shape: tuple[int, int]) -> np.ndarray:
    """A Tukey window (flat but for a twentieth at each end of a side, :data:`_TAPER`), float32: the FFT's
    correlation wraps around, and a plane's edges, which do not wrap, pulled every shift towards 0 (a whole pixel of
    shift read 0.9 without it, 1.0 with it, on a demo electrode's plane).  Read-only (it is shared)."""
    from skimage.filters import window

    w = window(("tukey", _TAPER), shape).astype(np.float32)
    w.flags.writeable = False
    return w


def _step(a: _Plane, b: _Plane) -> tuple[np.ndarray, float] | None:
    """How far ``b``'s content lies from ``a``'s (dy, dx), pixels to a twentieth (two passes: the second on ``b``
    moved back by the first, where the edges' pull, which grows with the shift, is small), with the registration's
    error; None where a plane is constant or they share no structure."""
    from scipy import fft
    from scipy import ndimage as ndi
    from skimage.registration import phase_cross_correlation

    if a.constant or b.constant:  # no peak to find
        return None
    # plain cross-correlation (no phase normalisation: that whitens the noise, which does not move with the
    # structure, and pulls a sub-pixel shift towards 0: 0.47 instead of 1.17 pixel on a drift of 1.48)
    shift, error, _ = phase_cross_correlation(a.spectrum, b.spectrum, space="fourier", upsample_factor=_UPSAMPLE,
                                              normalization=None)
    if error >= _UNRELATED:  # the planes share no structure (noise, a separator): the peak is chance
        return None
    if np.any(shift):
        back = ndi.shift(b.data, shift, order=_ORDER, mode="nearest")  # b registered onto a by the first pass
        rest, _, _ = phase_cross_correlation(a.spectrum, fft.fft2(back * _taper(back.shape)), space="fourier",
                                             upsample_factor=_UPSAMPLE, normalization=None)
        shift = shift + rest
    return -np.asarray(shift, dtype=np.float64), float(error)  # b moved by the opposite of what registers it


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
        drift) and ``warn`` (``step_px`` >= :data:`ALIGN_WARN_PX`, and a drift of that length or steps of
        :data:`ALIGN_JITTER_PX` or more); None for fewer than four planes, planes narrower than
        :data:`_MIN_WIDTH` pixels, or fewer than three pairs whose planes share structure (a constant volume, pure
        noise).
    """
    nz, ny, nx = (int(n) for n in volume.shape)
    if nz < _MIN_PLANES or pairs < 1 or min(ny, nx) < _MIN_WIDTH:
        return None
    window = tuple(slice(max(0, (n - ALIGN_WINDOW) // 2), max(0, (n - ALIGN_WINDOW) // 2) + min(n, ALIGN_WINDOW))
                   for n in (ny, nx))
    shifts = []
    for z in np.unique(np.linspace(0, nz - 2, min(pairs, nz - 1)).round().astype(int)):
        step = _step(_Plane(volume, int(z), window), _Plane(volume, int(z) + 1, window))
        if step is not None:
            shifts.append(step[0])
    if len(shifts) < _MIN_PLANES - 1:
        return None
    shifts = np.array(shifts)
    step = float(np.median(np.hypot(shifts[:, 0], shifts[:, 1])))
    drift = np.median(shifts, axis=0)
    warn = step >= ALIGN_WARN_PX and (float(np.hypot(*drift)) >= ALIGN_WARN_PX or step >= ALIGN_JITTER_PX)
    far = []  # the drift per plane over ALIGN_GAP planes: whole-pixel steps every few planes add up there
    if nz > 2 * ALIGN_GAP:
        for z in np.unique(np.linspace(0, nz - 1 - ALIGN_GAP, min(pairs, nz - ALIGN_GAP)).round().astype(int)):
            gap = _step(_Plane(volume, int(z), window), _Plane(volume, int(z) + ALIGN_GAP, window))
            if gap is not None:
                far.append(gap[0] / ALIGN_GAP)
    if len(far) >= _MIN_PLANES - 1:
        far_drift = np.median(np.array(far), axis=0)
        if float(np.hypot(*far_drift)) >= max(ALIGN_WARN_PX, float(np.hypot(*drift))):
            drift, step, warn = far_drift, max(step, float(np.hypot(*far_drift))), True
    return {"pairs": len(shifts), "shift_px": tuple(float(v) for v in drift),
            "step_px": step, "stack_px": step * (nz - 1), "warn": warn}


def alignment_message(reading: dict | None) -> str | None:
    """One sentence where :func:`alignment_reading` warns: the shift, what it does, what to do; else None."""
    if not reading or not reading["warn"]:
        return None
    dy, dx = reading["shift_px"]
    # two decimals under a pixel: 0.25 (the rule) printed as "0.2" read as under it (QA)
    digits = 2 if reading["step_px"] < 1 else 1
    return (f"The slices are shifted against one another: by a median of {reading['step_px']:.{digits}f} pixel from "
            f"one z plane to the next (y {dy:+.{digits}f}, x {dx:+.{digits}f}; read on {reading['pairs']} pairs of planes), as in a "
            f"FIB-SEM stack that was not aligned, so the particles are sheared along z and touching ones split or "
            f"merge: align the slices first (here: the button Align the slices, or --align on the command line; "
            f"elsewhere: Fiji's Register Virtual Stack Slices or Linear Stack Alignment with SIFT, or the microscope "
            f"software's alignment) and analyse the aligned stack.")


def slice_shifts(volume, *, progress=None) -> list[tuple[int, int]]:
    """The offset of every z plane of a (Z, Y, X) stack whose slices were not aligned, for ``align`` of
    :func:`core.io.load_volume`.

    Parameters
    ----------
    volume : (Z, Y, X) array-like
        Sliceable along z; read one plane at a time (each once), on its central window of at most
        :data:`ALIGN_WINDOW` pixels a side.
    progress : callable, optional
        Called as ``progress(done, total)`` after each pair of planes.

    Returns
    -------
    list of (int, int)
        ``(dy, dx)`` a plane: where its content lies against plane 0's (whole pixels; ``(0, 0)`` first).  The
        steps between neighbouring planes are measured as :func:`alignment_reading` measures them (to a twentieth
        of a pixel) and summed before rounding; a pair that shares no structure (or whose weak match lies far from
        the others, :data:`_WEAK`) adds the typical step (the median of the others: a drift goes on through a
        blank separator).

    Raises
    ------
    ValueError
        Fewer than two planes.
    """
    nz, ny, nx = (int(n) for n in volume.shape)
    if nz < 2:
        raise ValueError(f"aligning slices needs at least 2 z planes, got {nz}")
    window = tuple(slice(max(0, (n - ALIGN_WINDOW) // 2), max(0, (n - ALIGN_WINDOW) // 2) + min(n, ALIGN_WINDOW))
                   for n in (ny, nx))
    found: list[tuple[np.ndarray, float] | None] = []  # (step, registration error) a pair; None: no structure
    a = _Plane(volume, 0, window)
    for z in range(1, nz):
        b = _Plane(volume, z, window)
        found.append(_step(a, b))
        a = b
        if progress is not None:
            progress(z, nz - 1)
    sure = [f[0] for f in found if f is not None and f[1] < _WEAK]
    weak = [f[0] for f in found if f is not None and f[1] >= _WEAK]
    typical = np.median(np.array(sure or weak or [np.zeros(2)]), axis=0)
    total = np.zeros(2)
    offsets = [(0, 0)]
    for f in found:
        # a pair that shares no structure, or a weak match far from the typical step (chance): the typical step
        take = f is not None and (f[1] < _WEAK or np.abs(f[0] - typical).max() <= _JUMP_PX)
        total += f[0] if take else typical
        offsets.append((int(np.round(total[0])), int(np.round(total[1]))))
    return offsets


def aligned_message(offsets) -> str:
    """One sentence on an alignment of :func:`slice_shifts`: the planes, the spread of the offsets, the pixels
    the common region loses."""
    from ..io._common import aligned_info

    info = aligned_info(offsets)
    (sy, sx), n = info["span_px"], info["planes"]
    return (f"The {n} slices were aligned: each shifted back by its offset (the offsets spread over {sy} pixel(s) "
            f"along y and {sx} along x; {info['steps_moved']} of {max(n - 1, 0)} steps between neighbouring slices "
            f"moved), and only the region all slices share "
            f"is kept ({sy} row(s) and {sx} column(s) fewer).")
