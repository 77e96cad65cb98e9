"""Validation helpers shared by the public functions of :mod:`core`.

Each raises :class:`ValueError` or :class:`TypeError` with a message that names
the argument, its shape and the offending value, so that the CLI and the UI can
show it to a user as one sentence.
"""

from __future__ import annotations

import math

from collections.abc import Iterable, Mapping, Sequence
from numbers import Real

import numpy as np

from .codes import NMC

Spacing = tuple[float, float, float]


#: Smallest and largest voxel size accepted, in µm (0.1 nm to 1 cm): far beyond any X-ray or FIB-SEM
#: tomography of electrodes, yet tight enough that areas and volumes stay finite and exact in float64.
SPACING_MIN_UM = 1e-4
SPACING_MAX_UM = 1e4


def normalize_spacing(spacing: float | Sequence[float] | None, ndim: int = 3) -> Spacing:
    """Return voxel spacing as a tuple of ``ndim`` positive floats (µm).

    Parameters
    ----------
    spacing : float or sequence of float or None
        One value for isotropic voxels or one per axis ``(z, y, x)``, each from
        :data:`SPACING_MIN_UM` to :data:`SPACING_MAX_UM` µm.  ``None`` means 1 µm.
    ndim : int
        Number of axes.

    Raises
    ------
    ValueError
        If the number of values is wrong or a value is not finite or outside
        ``SPACING_MIN_UM..SPACING_MAX_UM``.
    TypeError
        If ``spacing`` is not a number or a sequence of numbers (text and
        booleans are refused, even ``"0.4"``).
    """
    if spacing is None:
        return (1.0,) * ndim  # type: ignore[return-value]
    expected = f"a number or {ndim} numbers (z, y, x) in µm"
    if isinstance(spacing, np.ndarray) and spacing.ndim == 0:
        spacing = spacing.item()
    if _is_number(spacing):
        values = [float(spacing)] * ndim
    else:
        if isinstance(spacing, (str, bytes, Mapping)) or not isinstance(spacing, Iterable):
            raise TypeError(f"spacing must be {expected}, got {_shown(spacing)}")
        items = list(np.asarray(spacing, dtype=object).ravel()) if isinstance(spacing, np.ndarray) else list(spacing)
        if not all(_is_number(v) for v in items):
            raise TypeError(f"spacing must be {expected}, got {_shown(spacing)}")
        values = [float(v) for v in items]
        if len(values) != ndim:
            raise ValueError(f"spacing needs {ndim} values (z, y, x) in µm, got {len(values)}: {_shown(spacing)}")
    for v in values:
        if not (np.isfinite(v) and SPACING_MIN_UM <= v <= SPACING_MAX_UM):
            raise ValueError(
                f"spacing must be finite and > 0, between {SPACING_MIN_UM:g} and {SPACING_MAX_UM:g} µm per voxel, "
                f"got {', '.join(f'{x:g}' for x in values)}"
            )
    return tuple(values)  # type: ignore[return-value]


def _is_number(value) -> bool:
    return isinstance(value, (Real, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _shown(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_volume(volume, name: str = "volume") -> np.ndarray:
    """Check that ``volume`` is a non-empty 3D numeric array; return it as ndarray (no copy)."""
    if not isinstance(volume, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(volume).__name__}")
    check_volume_header(volume.shape, volume.dtype, name)
    return volume


def check_volume_header(shape, dtype, name: str = "volume") -> None:
    """:func:`check_volume`'s checks from a shape and a dtype alone (a volume read lazily): 3D, non-empty, numeric
    or boolean."""
    shape, dtype = tuple(shape), np.dtype(dtype)
    if len(shape) != 3:
        raise ValueError(f"{name} must be 3D (z, y, x), got shape {shape}")
    if 0 in shape:
        raise ValueError(f"{name} is empty: shape {shape}")
    if not (np.issubdtype(dtype, np.number) or dtype == bool):
        raise TypeError(f"{name} must be numeric, got dtype {dtype}")


def check_phases(phases, name: str = "phases") -> np.ndarray:
    """Check a phase volume: 3D integer array holding only codes 0, 1, 2."""
    phases = check_volume(phases, name)
    if not np.issubdtype(phases.dtype, np.integer):
        raise TypeError(f"{name} must hold integer phase codes 0/1/2, got dtype {phases.dtype}")
    lo, hi = int(phases.min()), int(phases.max())
    if lo < 0 or hi > 2:
        bad = np.setdiff1d(np.unique(phases), [0, 1, 2])[:5]
        raise ValueError(
            f"{name} must hold only the codes 0 = pore, 1 = CBD, 2 = NMC; found {bad.tolist()}"
        )
    return phases


def check_labels(labels, shape: tuple[int, ...] | None = None, name: str = "labels") -> np.ndarray:
    """Check a particle label volume: 3D non-negative integers, optional shape match."""
    labels = check_volume(labels, name)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array, got dtype {labels.dtype}")
    if shape is not None and labels.shape != tuple(shape):
        raise ValueError(f"{name} shape {labels.shape} does not match phases shape {tuple(shape)}")
    if labels.min() < 0:
        raise ValueError(f"{name} must be >= 0 (0 = background), found {int(labels.min())}")
    return labels


#: Voxels :func:`check_has_nmc` compares at a time: it stops at the first slab holding NMC.
_NMC_SCAN_VOXELS = 1 << 20


def check_has_nmc(phases: np.ndarray) -> None:
    """Raise if the phase volume holds no NMC voxel.

    Scanned in slabs along the first axis, stopping at the first that holds
    NMC (on an electrode, the first): one whole pass only where there is none.
    """
    phases = np.atleast_1d(phases)
    per = max(1, _NMC_SCAN_VOXELS // max(1, phases[:1].size))
    if not any(np.any(phases[i:i + per] == NMC) for i in range(0, phases.shape[0], per)):
        raise ValueError("the NMC phase is empty: no particle can be identified (check the thresholds or the phase map)")


def check_choice(value, name: str, choices: Sequence) -> None:
    """Raise ``ValueError`` if ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def check_grey_range(value, name: str) -> tuple[float, float] | None:
    """``value`` as a (low, high) pair of finite grey values with high > low, or None; ``TypeError`` where it is
    not two numbers, ``ValueError`` where they are not such a pair (``name`` says what it is)."""
    if value is None:
        return None
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be (lo, hi) grey values or None, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError(f"{name} must be finite with hi > lo, got lo={lo}, hi={hi}")
    return lo, hi
