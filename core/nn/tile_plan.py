"""Where the tiles of :func:`core.nn.tiling.predict_tiled` go and how their outputs are weighted (no torch).

Geometry
--------
Along each axis of length ``L``, tiles of ``T`` voxels start at evenly spaced
positions from ``0`` to ``L - T``: as few tiles as possible such that
neighbours share at least ``overlap`` voxels.  Tiles at the volume border are
shifted inward, so nothing is padded beyond the volume.  Only an axis shorter
than the tile gets one tile of ``L`` rounded up to ``multiple``; the input is
padded by reflection at the high end and the output cropped back.

Blending
--------
The output is ``sum(w * y) / sum(w)`` over the tiles covering a voxel, with a
separable window ``w = w_z * w_y * w_x``.  Along an axis the window is 1,
except in the band of ``b`` voxels a tile shares with a neighbour: across the
middle half of the band it fades with a raised cosine (``sin^2``) from 1 on the
tile's inner side to a floor of ``1e-4`` on its outer side, and the outer
quarter of the band stays at the floor.  The two windows of a band sum to 1, so
the transition is smooth (no visible seam where two tiles disagree); the
window is > 0 everywhere; faces on the volume border are not faded.  The
outer ``b/4`` voxels of a tile next to a neighbour, where a network that pads
with zeros sees the least context, thus count ~1e-4 as much as the
neighbour's: a model of receptive radius ``r`` (``r`` voxels of context needed
on each side) gives the untiled result, to ~1e-4 of the size of its edge
errors, when ``r <= overlap / 4 + 1/2``; with less overlap the seams are still
smooth but not exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Smallest blending weight (the window is > 0 everywhere).
WINDOW_FLOOR = 1e-4

Triple = tuple[int, int, int]


def _as_triple(value, name: str, minimum: int) -> Triple:
    """An int or three ints (z, y, x), each >= ``minimum``."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int or three ints (z, y, x), got {value!r}")
    if isinstance(value, (int, np.integer)):
        values = [int(value)] * 3
    else:
        try:
            values = list(value)
        except TypeError:
            raise TypeError(f"{name} must be an int or three ints (z, y, x), got {value!r}") from None
        if len(values) != 3 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                       for v in values):
            raise TypeError(f"{name} must be an int or three ints (z, y, x), got {value!r}")
        values = [int(v) for v in values]
    if min(values) < minimum:
        raise ValueError(f"{name} must be >= {minimum} along every axis, got {tuple(values)}")
    return tuple(values)  # type: ignore[return-value]


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of :func:`predict_tiled` go.

    Attributes
    ----------
    shape : (3,) int
        Volume shape ``(Z, Y, X)``.
    tile : (3,) int
        Tile size actually run per axis: the requested tile, or for an axis
        shorter than it, the axis length rounded up to ``multiple``.
    starts : tuple of three tuples of int
        Start of each tile along z, y and x (the tiles are their product).
    pad : (3,) int
        Voxels of reflection padding at the high end of an axis shorter than
        the tile (0 elsewhere).
    """

    shape: Triple
    tile: Triple
    starts: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
    pad: Triple

    @property
    def n_tiles(self) -> int:
        """Number of tiles (network calls with ``batch_size=1``)."""
        return len(self.starts[0]) * len(self.starts[1]) * len(self.starts[2])

    @property
    def tiles_per_slab(self) -> int:
        """Tiles in one z-row (one slab)."""
        return len(self.starts[1]) * len(self.starts[2])

    @property
    def slab_depth(self) -> int:
        """z-planes held by the float32 accumulator: ``min(tile_z, Z)``."""
        return min(self.tile[0], self.shape[0])

    def accumulator_bytes(self, channels: int) -> int:
        """Bytes of the float32 accumulator for ``channels`` output channels."""
        return 4 * channels * self.slab_depth * self.shape[1] * self.shape[2]


def _axis_starts(length: int, tile: int, overlap: int) -> tuple[int, ...]:
    if length <= tile:
        return (0,)
    n = -(-(length - tile) // (tile - overlap)) + 1
    span = length - tile
    return tuple((i * span + (n - 1) // 2) // (n - 1) for i in range(n))


def plan_tiles(shape: Sequence[int], *, tile: int | Sequence[int] = 64, overlap: int | Sequence[int] = 16,
               multiple: int = 8) -> TilePlan:
    """Tile layout for a volume of ``shape`` (see the module docstring).

    Parameters
    ----------
    shape : (3,) int
        Volume shape ``(Z, Y, X)``.
    tile : int or (3,) int
        Tile size in voxels, a multiple of ``multiple`` along every axis.
    overlap : int or (3,) int
        Minimum number of voxels neighbouring tiles share, per axis;
        ``2 * overlap <= tile``.
    multiple : int
        The network needs tile sizes divisible by this.

    Returns
    -------
    TilePlan

    Raises
    ------
    ValueError
        Tile not a multiple of ``multiple``, tile smaller than ``2 * overlap``,
        non-positive sizes.
    """
    if isinstance(shape, (int, np.integer)):
        raise TypeError(f"shape must be three ints (z, y, x), got {shape!r}")
    shape3 = _as_triple(shape, "shape", 1)
    if isinstance(multiple, bool) or not isinstance(multiple, (int, np.integer)) or multiple < 1:
        raise ValueError(f"multiple must be an int >= 1, got {multiple!r}")
    multiple = int(multiple)
    tile3 = _as_triple(tile, "tile", 1)
    over3 = _as_triple(overlap, "overlap", 0)
    if any(t % multiple for t in tile3):
        raise ValueError(f"tile {tile3} must be a multiple of {multiple} along every axis (the network's "
                         f"required multiple)")
    if any(t < 2 * o for t, o in zip(tile3, over3)):
        raise ValueError(f"tile {tile3} must be at least 2 * overlap = {tuple(2 * o for o in over3)} voxels "
                         f"along every axis")
    eff, starts, pad = [], [], []
    for length, t, o in zip(shape3, tile3, over3):
        if length < t:
            t = -(-length // multiple) * multiple
        eff.append(t)
        starts.append(_axis_starts(length, t, o))
        pad.append(max(0, t - length))
    return TilePlan(shape=shape3, tile=tuple(eff), starts=tuple(starts), pad=tuple(pad))  # type: ignore[arg-type]


def _ramp(band: int) -> np.ndarray:
    """Rising half of a band of ``band`` voxels: 0 on the outer quarter, sin^2 across the middle half, 1 after."""
    u = (np.arange(band) + 0.5) / band
    r = np.clip((u - 0.25) / 0.5, 0.0, 1.0)
    return np.sin(0.5 * np.pi * r) ** 2


def _axis_windows(starts: tuple[int, ...], tile: int, length: int) -> tuple[list[np.ndarray], np.ndarray]:
    """1D window of each tile along one axis (cropped to the volume) and their sum over the axis."""
    windows, total = [], np.zeros(length, np.float64)
    for i, s in enumerate(starts):
        w = np.ones(tile)
        if i > 0:
            band = starts[i - 1] + tile - s
            w[:band] *= _ramp(band)
        if i < len(starts) - 1:
            band = s + tile - starts[i + 1]
            w[tile - band:] *= _ramp(band)[::-1]
        w = np.maximum(w, WINDOW_FLOOR)[: min(tile, length - s)]
        total[s:s + w.size] += w
        windows.append(w.astype(np.float32))
    return windows, total
