"""Scribbles: the phases a scientist paints on slices of a volume (the stored artefact of a trained classifier).

A :class:`Scribbles` holds, for each painted slice of one volume (an
orientation ``axis``, 0 z / 1 y / 2 x, and an ``index`` along it), a 2D array
of that slice's shape: 0 pore, 1 CBD, 2 NMC (the phase codes of
:mod:`core.codes`), 255 not painted (:data:`core.classify.UNPAINTED`).  The
painted voxels keep the orientation they were painted in, because the
classifier trained on them (:func:`classifier_pairs`) uses 2D features of
each painted slice.

:func:`save_scribbles` / :func:`load_scribbles` store them as an ``.npz``
(no Python objects: read with ``allow_pickle=False``); the workspace keeps one
per sample (:meth:`core.workspace.Workspace.save_scribbles`).

Nothing here imports streamlit.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from ._validate import normalize_spacing
from .classify import UNPAINTED

__all__ = ["Scribbles", "classifier_pairs", "load_scribbles", "save_scribbles", "scribbles_bytes", "slice_of"]

_AXES = (0, 1, 2)
_CODES = (0, 1, 2, UNPAINTED)


def _check_shape(shape) -> tuple[int, int, int]:
    try:
        t = tuple(int(n) for n in shape)
    except (TypeError, ValueError):
        raise TypeError(f"shape must be three whole numbers (Z, Y, X), got {shape!r}") from None
    if len(t) != 3 or min(t) < 1:
        raise ValueError(f"shape must be three positive whole numbers (Z, Y, X), got {shape!r}")
    return t


def _slice_shape(shape: tuple[int, int, int], axis: int) -> tuple[int, int]:
    return tuple(n for i, n in enumerate(shape) if i != axis)


def _check_key(shape, axis, index) -> tuple[int, int]:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or int(axis) not in _AXES:
        raise ValueError(f"axis must be 0 (z), 1 (y) or 2 (x), got {axis!r}")
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"a slice index must be a whole number, got {index!r}")
    if not 0 <= int(index) < shape[int(axis)]:
        raise ValueError(f"slice index {index} is outside 0..{shape[int(axis)] - 1} along axis {axis}")
    return int(axis), int(index)


def _check_labels(labels, expected: tuple[int, int], where: str) -> np.ndarray:
    a = np.asarray(labels)
    if a.shape != expected:
        raise ValueError(f"{where}: the scribbles have shape {a.shape}, the slice {expected}; they must match")
    if a.dtype.kind not in "ui":
        raise TypeError(f"{where}: scribbles must be integers (0 pore, 1 CBD, 2 NMC, 255 not painted), "
                        f"got dtype {a.dtype}")
    bad = np.setdiff1d(np.unique(a), _CODES)
    if bad.size:
        raise ValueError(f"{where}: the scribbles hold the value {int(bad[0])}; only 0 pore, 1 CBD, 2 NMC and 255 "
                         "(not painted) are allowed")
    out = a.astype(np.uint8, copy=True)
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class Scribbles:
    """Painted slices of one volume.

    Attributes
    ----------
    shape : (3,) int
        The volume's (Z, Y, X) shape.
    slices : mapping (axis, index) -> (H, W) uint8
        One read-only array per painted slice, of the slice's shape (the
        volume's shape without ``axis``): 0 pore, 1 CBD, 2 NMC, 255 not
        painted.  Slices with nothing painted are left out; keys sorted.
    """

    shape: tuple[int, int, int]
    slices: Mapping = field(default_factory=dict)

    def __post_init__(self):
        shape = _check_shape(self.shape)
        if not isinstance(self.slices, Mapping):
            raise TypeError(f"slices must map (axis, index) to a 2D array, got {type(self.slices).__name__}")
        checked = {}
        for key in sorted(self.slices, key=lambda k: (int(k[0]), int(k[1])) if isinstance(k, tuple) else (9, 0)):
            if not (isinstance(key, tuple) and len(key) == 2):
                raise TypeError(f"a painted slice is keyed by (axis, index), got {key!r}")
            axis, index = _check_key(shape, *key)
            labels = _check_labels(self.slices[key], _slice_shape(shape, axis), f"slice {'zyx'[axis]} = {index}")
            if (labels != UNPAINTED).any():
                checked[(axis, index)] = labels
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "slices", MappingProxyType(checked))

    @classmethod
    def empty(cls, shape) -> Scribbles:
        """No painted voxel on a volume of this shape."""
        return cls(shape, {})

    def slice(self, axis: int, index: int) -> np.ndarray:
        """(H, W) uint8: the scribbles of one slice (all 255 when it is not painted)."""
        axis, index = _check_key(self.shape, axis, index)
        found = self.slices.get((axis, index))
        return found if found is not None else np.full(_slice_shape(self.shape, axis), UNPAINTED, np.uint8)

    def with_slice(self, axis: int, index: int, labels) -> Scribbles:
        """A copy whose slice ``(axis, index)`` holds ``labels`` ((H, W) codes; all 255 removes it)."""
        axis, index = _check_key(self.shape, axis, index)
        return Scribbles(self.shape, {**self.slices, (axis, index): labels})

    def counts(self) -> tuple[int, int, int]:
        """Painted voxels per phase (pore, CBD, NMC)."""
        total = np.zeros(3, np.int64)
        for labels in self.slices.values():
            total += np.bincount(labels[labels != UNPAINTED], minlength=3)[:3]
        return tuple(int(c) for c in total)

    @property
    def n_painted(self) -> int:
        return sum(self.counts())

    def digest(self) -> str:
        """BLAKE2b of the shape and every painted slice (same scribbles, same digest)."""
        h = hashlib.blake2b(digest_size=16)
        h.update(repr(self.shape).encode())
        for (axis, index), labels in self.slices.items():
            h.update(f"{axis},{index};".encode())
            h.update(np.ascontiguousarray(labels).tobytes())
        return h.hexdigest()


def slice_of(volume, axis: int, index: int) -> np.ndarray:
    """(H, W): slice ``index`` of ``volume`` ((Z, Y, X)) across ``axis`` (0 z, 1 y, 2 x), as a new array."""
    return np.array(np.take(volume, int(index), axis=int(axis)))


def classifier_pairs(volume, scribbles: Scribbles, spacing=None):
    """The training pairs of ``scribbles`` on ``volume``: one per painted slice.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        Greyscale (only the painted slices are read).
    scribbles : Scribbles
        Of ``volume``'s shape.
    spacing : float or (3,) float, µm, optional

    Returns
    -------
    images, labels : lists of (H, W) ndarray
        The painted slices and their scribbles, in the order of ``scribbles.slices``.
    spacings : list of (3,) float, µm
        Per slice, its voxel size with the slice's own axis first, so that the
        in-plane voxel size of :meth:`core.classify.ClassifierParams.sigmas_vox`
        is the slice's.

    Raises
    ------
    ValueError
        Nothing painted, or scribbles of another volume shape.
    """
    if not isinstance(scribbles, Scribbles):
        raise TypeError(f"scribbles must be Scribbles, got {type(scribbles).__name__}")
    shape = tuple(np.shape(volume))
    if shape != scribbles.shape:
        raise ValueError(f"the scribbles were painted on a volume of shape {scribbles.shape}, not {shape}")
    if not scribbles.slices:
        raise ValueError("nothing is painted: paint at least two of pore, CBD and NMC")
    sp = normalize_spacing(1.0 if spacing is None else spacing)
    images, labels, spacings = [], [], []
    for (axis, index), lab in scribbles.slices.items():
        images.append(slice_of(volume, axis, index))
        labels.append(np.array(lab))
        spacings.append((sp[axis], *(s for i, s in enumerate(sp) if i != axis)))
    return images, labels, spacings


# --------------------------------------------------------------------------- storage


def scribbles_bytes(scribbles: Scribbles) -> bytes:
    """The ``.npz`` bytes :func:`save_scribbles` writes: ``shape``, ``axes``, ``indices``, ``labels_K``."""
    arrays = {"shape": np.asarray(scribbles.shape, np.int64),
              "axes": np.asarray([a for a, _ in scribbles.slices], np.int64),
              "indices": np.asarray([i for _, i in scribbles.slices], np.int64)}
    for k, labels in enumerate(scribbles.slices.values()):
        arrays[f"labels_{k}"] = np.ascontiguousarray(labels)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def save_scribbles(path, scribbles: Scribbles) -> Path:
    """Write ``scribbles`` to ``path`` (an ``.npz``; see :func:`scribbles_bytes`), atomically."""
    from ._atomic import write_bytes

    p = Path(path)
    write_bytes(p, scribbles_bytes(scribbles))
    return p


def load_scribbles(path) -> Scribbles:
    """Read a file written by :func:`save_scribbles` (``allow_pickle=False``).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not such a file, or damaged.
    """
    name = os.fspath(path)
    if not os.path.exists(name):
        raise FileNotFoundError(f"no such scribbles file: {name}")
    try:
        with np.load(name, allow_pickle=False) as z:
            shape = tuple(int(n) for n in z["shape"])
            axes, indices = z["axes"], z["indices"]
            if axes.shape != indices.shape or axes.ndim != 1:
                raise ValueError("axes and indices differ in length")
            expected = {"shape", "axes", "indices", *(f"labels_{k}" for k in range(axes.size))}
            if set(z.files) != expected:
                raise ValueError("it holds other arrays than the painted slices listed")
            slices = {(int(a), int(i)): z[f"labels_{k}"] for k, (a, i) in enumerate(zip(axes, indices))}
        return Scribbles(shape, slices)
    except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile, EOFError) as exc:
        msg = str(exc).rstrip(".") if not isinstance(exc, KeyError) else f"missing array {exc}"
        raise ValueError(f"{name} is not a scribbles file that can be read: {msg}") from None
