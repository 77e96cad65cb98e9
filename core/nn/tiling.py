"""Tiled, blended, memory-bounded inference of a 3D network on a volume of any size.

Works with any :class:`torch.nn.Module` (or callable on tensors) that maps a
float tensor ``(B, 1, D, H, W)`` to logits ``(B, C, D, H, W)`` of the same
spatial size, where the network needs ``D, H, W`` to be multiples of
``multiple`` (8 for a U-Net with three poolings).  A model returning a tuple or
list of such tensors is read as their concatenation along the channels.

Public functions: :func:`predict_tiled` (blended channels, written slab by slab
to an output array or handed to a ``sink``), :func:`segment_tiled` (argmax
labels plus one optional float channel), :func:`plan_tiles` (where the tiles
go), :func:`robust_range` (intensity percentiles from a strided sample) and
:func:`available_cpus`.

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

Memory
------
The volume is processed in z-slabs, one row of tiles along z at a time.  Only
the float32 accumulator of the current row is held, ``C x min(T_z, Z) x Y x X``
floats, plus one normalised block of at most that size, the input and output
of one batch of tiles and the network's own activations.  The sum of weights
is not stored: being separable it is the product of three 1D sums.  When a
row is done, the z-range no later tile touches is normalised and written into
``out`` (e.g. an :class:`numpy.memmap`) or handed to ``sink(z0, z1, block)``,
optionally through ``reduce`` first (e.g. an argmax to uint8).  The input is
read tile by tile with plain slicing, so a memory-mapped volume (or any array
with ``shape``, ``dtype`` and numpy-style slicing) is never loaded whole.
Memory therefore grows with ``T_z * Y * X``, not with ``Z``; for very wide
slices choose a tile thinner in z, e.g. ``tile=(32, 128, 128)``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: Smallest blending weight (the window is > 0 everywhere).
WINDOW_FLOOR = 1e-4

Triple = tuple[int, int, int]
Progress = Callable[[float, str], None]
Sink = Callable[[int, int, np.ndarray], None]


# --------------------------------------------------------------------------- validation


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


def _check_source(volume) -> tuple[Triple, np.dtype]:
    """Shape and dtype of a 3D numeric array or array-like read by slicing (memmap, h5py, zarr)."""
    if not isinstance(volume, np.ndarray) and not (
            hasattr(volume, "shape") and hasattr(volume, "dtype") and hasattr(volume, "__getitem__")):
        raise TypeError(f"volume must be a numpy array or an array-like with shape, dtype and slicing "
                        f"(np.memmap, h5py, zarr), got {type(volume).__name__}")
    shape = tuple(int(s) for s in volume.shape)
    if len(shape) != 3:
        raise ValueError(f"volume must be 3D (z, y, x), got shape {shape}")
    if min(shape) == 0:
        raise ValueError(f"volume is empty: shape {shape}")
    dtype = np.dtype(volume.dtype)
    if not (np.issubdtype(dtype, np.number) or dtype == bool) or np.issubdtype(dtype, np.complexfloating):
        raise TypeError(f"volume must hold real numbers, got dtype {dtype}")
    return shape, dtype  # type: ignore[return-value]


def _check_callable(value, name: str) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, got {type(value).__name__}")


def _check_range(intensity_range) -> tuple[float, float] | None:
    if intensity_range is None:
        return None
    try:
        lo, hi = (float(v) for v in intensity_range)
    except (TypeError, ValueError):
        raise TypeError(f"intensity_range must be (lo, hi) grey values or None, got {intensity_range!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError(f"intensity_range must be finite with hi > lo, got lo={lo}, hi={hi}")
    return lo, hi


def _resolve_device(device) -> torch.device:
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device, got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but CUDA is not available on this machine")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be a CPU or CUDA device, got {device!r}")
    return dev


# --------------------------------------------------------------------------- CPUs


def available_cpus() -> int:
    """Number of CPU cores this process may use.

    The CPU affinity mask (``os.sched_getaffinity``), further limited by a
    cgroup v2 CPU quota (``/sys/fs/cgroup/cpu.max``) where one is set, as in
    containers; ``os.cpu_count()`` where affinity is unknown.  At least 1.
    """
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, n)


# --------------------------------------------------------------------------- geometry


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


# --------------------------------------------------------------------------- torch session


@contextmanager
def _session(model, dev: torch.device, num_threads: int | None):
    """Eval mode, model on ``dev``, torch threads set, inference mode; everything restored afterwards."""
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(int(num_threads) if num_threads is not None else available_cpus())
    modes: list[tuple[torch.nn.Module, bool]] = []
    moved_from = None
    if isinstance(model, torch.nn.Module):
        modes = [(m, m.training) for m in model.modules()]
        model.eval()
        first = next(iter(model.parameters()), None)
        if first is None:
            first = next(iter(model.buffers()), None)
        if first is not None and first.device != dev:
            moved_from = first.device
            model.to(dev)
    try:
        with torch.inference_mode():
            yield
    finally:
        if moved_from is not None:
            model.to(moved_from)
        for m, mode in modes:
            m.training = mode
        torch.set_num_threads(prev_threads)


def _input_dtype(model) -> torch.dtype:
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            if p.is_floating_point():
                return p.dtype
    return torch.float32


# --------------------------------------------------------------------------- predict_tiled


def _read_tile(volume, start: Triple, plan: TilePlan, scale: float | None, offset: float) -> np.ndarray:
    """One input tile as a new float32 array, normalised and reflect-padded to the tile size."""
    sl = tuple(slice(s, min(s + t, n)) for s, t, n in zip(start, plan.tile, plan.shape))
    a = np.array(volume[sl], dtype=np.float32, copy=True)  # never a view: normalised in place below
    if scale is not None:
        a *= np.float32(scale)
        a += np.float32(offset)
    pads = [(0, t - n) for t, n in zip(plan.tile, a.shape)]
    if any(p for _, p in pads):
        a = np.pad(a, pads, mode="reflect")
    return a


def _model_output(model, x: torch.Tensor, channels: int, postprocess) -> torch.Tensor:
    y = model(x)
    if isinstance(y, (tuple, list)) and y and all(torch.is_tensor(t) for t in y):
        y = torch.cat(list(y), dim=1)
    if not torch.is_tensor(y):
        raise TypeError(f"the model must return a tensor (or a tuple of tensors), got {type(y).__name__}")
    want = (x.shape[0], channels, *x.shape[2:])
    if tuple(y.shape) != want:
        raise ValueError(f"the model returned shape {tuple(y.shape)} for an input of shape {tuple(x.shape)}; "
                         f"expected {want} (batch, channels_out={channels}, the same D, H, W)")
    if postprocess is not None:
        y = postprocess(y)
        if not torch.is_tensor(y) or tuple(y.shape) != want:
            got = tuple(y.shape) if torch.is_tensor(y) else type(y).__name__
            raise ValueError(f"postprocess must return a tensor of the shape it was given, {want}, got {got}")
    return y.float()


def predict_tiled(
    model: Callable[[torch.Tensor], Any],
    volume,
    *,
    channels_out: int,
    tile: int | Sequence[int] = 64,
    overlap: int | Sequence[int] = 16,
    multiple: int = 8,
    intensity_range: tuple[float, float] | None = None,
    postprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    reduce: Callable[[np.ndarray], np.ndarray] | None = None,
    out: np.ndarray | None = None,
    sink: Sink | None = None,
    out_dtype=np.float16,
    device: str | torch.device = "auto",
    batch_size: int = 1,
    num_threads: int | None = None,
    autocast: bool | None = None,
    progress: Progress | None = None,
) -> np.ndarray | None:
    """Run ``model`` over ``volume`` tile by tile and blend the outputs.

    See the module docstring for the tile layout, the blending window and the
    memory bound.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps a float tensor ``(B, 1, D, H, W)`` to ``(B, channels_out, D, H, W)``
        (or a tuple of tensors whose channels add up to ``channels_out``).
        A module is put in eval mode and moved to ``device`` for the call; its
        device and train/eval modes are restored afterwards.
    volume : (Z, Y, X) array
        Greyscale volume, any real dtype; an :class:`numpy.memmap` (or h5py /
        zarr array) is read tile by tile.  Not modified.
    channels_out : int
        Number of output channels ``C`` of the model.
    tile : int or (3,) int
        Tile size in voxels per axis, a multiple of ``multiple``.
    overlap : int or (3,) int
        Minimum number of voxels neighbouring tiles share per axis (the
        blending band); ``2 * overlap <= tile``.
    multiple : int
        The network needs ``D, H, W`` divisible by this.
    intensity_range : (lo, hi) or None
        Grey values mapped to -1 and +1 (linearly, not clipped) before the
        network, e.g. from :func:`robust_range`; None feeds the values
        unchanged as float32.
    postprocess : callable or None
        Applied to each batch of tile outputs ``(B, C, D, H, W)`` on the
        device before blending, e.g. ``lambda t: torch.softmax(t, 1)``; must
        return the same shape.  None blends the raw outputs (logits): no
        softmax or sigmoid is applied by the tiler.
    reduce : callable or None
        Applied to each finished block, float32 ``(C, dz, Y, X)``; returns an
        array whose last three axes are ``(dz, Y, X)`` (e.g. an argmax to
        uint8 ``(dz, Y, X)``), written or handed on with its own dtype.
    out : array or None
        Preallocated output (e.g. :class:`numpy.memmap`) of shape
        ``(C, Z, Y, X)``, or the shape ``reduce`` yields for the whole volume;
        filled slab by slab (values cast to its dtype).
    sink : callable or None
        ``sink(z0, z1, block)`` receives each finished z-range ``[z0, z1)`` in
        order, ``block`` of shape ``(C, z1 - z0, Y, X)`` (or what ``reduce``
        returns), a new array the sink may keep.  Excludes ``out``.
    out_dtype : dtype
        Floating dtype of the blended blocks when ``reduce`` is None.
    device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device
        "auto" takes CUDA when available, else the CPU.
    batch_size : int
        Tiles per network call (tiles of one z-row).
    num_threads : int or None
        ``torch.set_num_threads`` for the call (restored afterwards); None
        uses :func:`available_cpus`.
    autocast : bool or None
        Run the network under float16 autocast on CUDA (None: yes).  The CPU
        always runs float32.
    progress : callable or None
        ``progress(frac, message)`` after each batch of tiles, ``frac`` the
        share of tiles done, increasing to 1.0.

    Returns
    -------
    ndarray or None
        ``out`` if given; None with a ``sink``; otherwise a new array
        ``(C, Z, Y, X)`` of ``out_dtype`` (or what ``reduce`` yields).

    Raises
    ------
    ValueError
        Wrong ndim or empty volume, tile not a multiple of ``multiple`` or
        smaller than ``2 * overlap``, model or postprocess output of the wrong
        shape, ``out`` of the wrong shape, ``out`` and ``sink`` both given,
        CUDA requested but absent, bad ``intensity_range``.
    TypeError
        Wrong argument types (non-callable model, sink, reduce, ...).
    """
    shape, _ = _check_source(volume)
    if not callable(model):
        raise TypeError(f"model must be a torch.nn.Module or a callable on tensors, got {type(model).__name__}")
    if isinstance(channels_out, bool) or not isinstance(channels_out, (int, np.integer)) or channels_out < 1:
        raise ValueError(f"channels_out must be an int >= 1, got {channels_out!r}")
    channels = int(channels_out)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer))
                                    or num_threads < 1):
        raise ValueError(f"num_threads must be an int >= 1 or None, got {num_threads!r}")
    for f, name in ((postprocess, "postprocess"), (reduce, "reduce"), (sink, "sink"), (progress, "progress")):
        _check_callable(f, name)
    if out is not None and sink is not None:
        raise ValueError("give either out= or sink=, not both")
    out_dtype = np.dtype(out_dtype)
    if reduce is None and not np.issubdtype(out_dtype, np.floating):
        raise ValueError(f"out_dtype must be a floating dtype, got {out_dtype}; use reduce= to turn the "
                         "channels into integer labels")
    if out is not None:
        if not hasattr(out, "shape") or not hasattr(out, "__setitem__"):
            raise TypeError(f"out must be a writable array, got {type(out).__name__}")
        if reduce is None and tuple(out.shape) != (channels, *shape):
            raise ValueError(f"out has shape {tuple(out.shape)}; expected {(channels, *shape)} (channels_out, Z, Y, X)")
    rng = _check_range(intensity_range)
    scale, offset = (None, 0.0) if rng is None else (2.0 / (rng[1] - rng[0]), -rng[0] * 2.0 / (rng[1] - rng[0]) - 1.0)
    plan = plan_tiles(shape, tile=tile, overlap=overlap, multiple=multiple)
    dev = _resolve_device(device)
    use_amp = (dev.type == "cuda") if autocast is None else bool(autocast)

    Z, Y, X = shape
    wins = [_axis_windows(plan.starts[a], plan.tile[a], shape[a]) for a in range(3)]
    inv_z = (1.0 / wins[0][1]).astype(np.float32)
    inv_yx = torch.from_numpy((1.0 / np.outer(wins[1][1], wins[2][1])).astype(np.float32))
    win_t = [[torch.from_numpy(w) for w in wins[a][0]] for a in range(3)]
    depth = plan.slab_depth
    acc = np.zeros((channels, depth, Y, X), np.float32)
    acc_t = torch.from_numpy(acc)   # the same memory, for torch's multithreaded kernels
    yx_tiles = [(iy, ix) for iy in range(len(plan.starts[1])) for ix in range(len(plan.starts[2]))]
    n_done, result = 0, out

    def emit(z0: int, z1: int, acc_z0: int) -> None:
        nonlocal result
        weight = torch.from_numpy(inv_z[z0:z1])[:, None, None] * inv_yx   # torch: multithreaded
        block = (acc_t[:, z0 - acc_z0:z1 - acc_z0] * weight).numpy()
        if reduce is not None:
            block = np.asarray(reduce(block))
            if block.ndim < 3 or block.shape[-3:] != (z1 - z0, Y, X):
                raise ValueError(f"reduce must return an array whose last three axes are (dz, Y, X) = "
                                 f"{(z1 - z0, Y, X)}, got shape {block.shape}")
        else:
            block = block.astype(out_dtype, copy=False)
        if sink is not None:
            sink(z0, z1, block)
            return
        full = (*block.shape[:-3], Z, Y, X)
        if result is None:
            result = np.empty(full, block.dtype)
        elif tuple(result.shape) != full:
            raise ValueError(f"out has shape {tuple(result.shape)}; reduce yields {full} for the whole volume")
        result[..., z0:z1, :, :] = block

    def amp():
        if use_amp and dev.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return nullcontext()

    in_dtype = _input_dtype(model)
    with _session(model, dev, num_threads):
        acc_z0, flushed = 0, 0
        zs = plan.starts[0]
        for iz, z0 in enumerate(zs):
            shift = z0 - acc_z0
            if shift:
                keep = depth - shift
                acc[:, :keep] = acc[:, shift:]
                acc[:, keep:] = 0.0
                acc_z0 = z0
            wz = win_t[0][iz]
            for b0 in range(0, len(yx_tiles), batch_size):
                batch = yx_tiles[b0:b0 + batch_size]
                starts = [(z0, plan.starts[1][iy], plan.starts[2][ix]) for iy, ix in batch]
                x = np.stack([_read_tile(volume, s, plan, scale, offset) for s in starts])[:, None]
                xt = torch.from_numpy(x).to(dev, dtype=in_dtype)
                with amp():
                    y = _model_output(model, xt, channels, postprocess)
                y = y.cpu()
                dz = wz.shape[0]
                for k, (iy, ix) in enumerate(batch):
                    wy, wx = win_t[1][iy], win_t[2][ix]
                    dy, dx = wy.shape[0], wx.shape[0]
                    _, y0, x0 = starts[k]
                    w3 = (wz[:, None, None] * wy[None, :, None]) * wx
                    acc_t[:, :dz, y0:y0 + dy, x0:x0 + dx].addcmul_(y[k, :, :dz, :dy, :dx], w3)
                n_done += len(batch)
                if progress is not None:
                    progress(n_done / plan.n_tiles,
                             f"tile {n_done}/{plan.n_tiles} (z-slab {iz + 1}/{len(zs)})")
            z_end = zs[iz + 1] if iz + 1 < len(zs) else Z
            emit(flushed, z_end, acc_z0)
            flushed = z_end
    return None if sink is not None else result


# --------------------------------------------------------------------------- segment_tiled


def _argmax_uint8(block: np.ndarray, channels: Sequence[int]) -> np.ndarray:
    """Position in ``channels`` of the largest of ``block[channels]`` (ties: the first), as uint8.

    Same as ``np.argmax(block[channels], axis=0)`` but about twice as fast, without the int64 array.
    """
    best = block[channels[0]].copy()
    labels = np.zeros(best.shape, np.uint8)
    for k, c in enumerate(channels[1:], start=1):
        better = block[c] > best
        labels[better] = k
        np.maximum(best, block[c], out=best)
    return labels


@dataclass(frozen=True)
class TiledSegmentation:
    """Result of :func:`segment_tiled`.

    Attributes
    ----------
    labels : (Z, Y, X) uint8 array
        Index of the largest of the class channels at each voxel.
    extra : (Z, Y, X) float16 array or None
        The blended ``extra_channel``, if one was asked for.
    """

    labels: np.ndarray
    extra: np.ndarray | None


def segment_tiled(
    model: Callable[[torch.Tensor], Any],
    volume,
    *,
    channels_out: int,
    class_channels: Sequence[int] | None = None,
    extra_channel: int | None = None,
    labels_out: np.ndarray | None = None,
    extra_out: np.ndarray | None = None,
    tile: int | Sequence[int] = 64,
    overlap: int | Sequence[int] = 16,
    multiple: int = 8,
    intensity_range: tuple[float, float] | None = None,
    postprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: str | torch.device = "auto",
    batch_size: int = 1,
    num_threads: int | None = None,
    autocast: bool | None = None,
    progress: Progress | None = None,
) -> TiledSegmentation:
    """Argmax class labels (uint8) and optionally one float16 channel, with memory O(slab).

    Runs :func:`predict_tiled` (same tiling, blending and model arguments) and
    reduces each finished slab at once, so no ``(C, Z, Y, X)`` array exists.

    Parameters
    ----------
    model, volume, channels_out
        As in :func:`predict_tiled`.
    class_channels : sequence of int or None
        Channels holding the class scores, in class order; the label is the
        position of the largest (ties: the first).  None: all channels.
        At most 256.
    extra_channel : int or None
        One channel also returned, blended, as float16 (e.g. a distance cue).
    labels_out, extra_out : (Z, Y, X) arrays or None
        Preallocated outputs (e.g. :class:`numpy.memmap`), filled slab by slab.
    tile, overlap, multiple, intensity_range, postprocess, device, batch_size, num_threads, autocast, progress
        As in :func:`predict_tiled`; blending happens after ``postprocess``.

    Returns
    -------
    TiledSegmentation

    Raises
    ------
    ValueError
        As :func:`predict_tiled`; channel indices outside ``[0, channels_out)``,
        more than 256 classes, outputs of the wrong shape.
    """
    shape, _ = _check_source(volume)
    if isinstance(channels_out, bool) or not isinstance(channels_out, (int, np.integer)) or channels_out < 1:
        raise ValueError(f"channels_out must be an int >= 1, got {channels_out!r}")
    classes = list(range(channels_out)) if class_channels is None else list(class_channels)
    if not classes or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c < channels_out
                              for c in classes):
        raise ValueError(f"class_channels must be channel indices in [0, {channels_out}), got {class_channels!r}")
    if len(classes) > 256:
        raise ValueError(f"at most 256 class channels fit uint8 labels, got {len(classes)}")
    if extra_channel is not None and (isinstance(extra_channel, bool) or not isinstance(extra_channel, (int, np.integer))
                                      or not 0 <= extra_channel < channels_out):
        raise ValueError(f"extra_channel must be a channel index in [0, {channels_out}) or None, got {extra_channel!r}")
    if extra_out is not None and extra_channel is None:
        raise ValueError("extra_out was given but extra_channel is None")
    for arr, name in ((labels_out, "labels_out"), (extra_out, "extra_out")):
        if arr is not None and tuple(getattr(arr, "shape", ())) != shape:
            raise ValueError(f"{name} has shape {tuple(getattr(arr, 'shape', ()))}; expected the volume's {shape}")
    labels = np.empty(shape, np.uint8) if labels_out is None else labels_out
    extra = None if extra_channel is None else (np.empty(shape, np.float16) if extra_out is None else extra_out)

    def write(z0: int, z1: int, block: np.ndarray) -> None:
        labels[z0:z1] = _argmax_uint8(block, classes)
        if extra is not None:
            extra[z0:z1] = torch.from_numpy(block[extra_channel]).to(torch.float16).numpy()

    predict_tiled(model, volume, channels_out=channels_out, tile=tile, overlap=overlap, multiple=multiple,
                  intensity_range=intensity_range, postprocess=postprocess, sink=write, out_dtype=np.float32,
                  device=device, batch_size=batch_size, num_threads=num_threads, autocast=autocast,
                  progress=progress)
    return TiledSegmentation(labels=labels, extra=extra)


# --------------------------------------------------------------------------- intensity range


def robust_range(volume, q: Sequence[float] = (0.5, 99.5), n: float = 1e6) -> tuple[float, float]:
    """Grey-value percentiles of a strided sample of at most ``n`` voxels.

    Reads ``volume[::s, ::s, ::s]`` with the smallest stride ``s`` that keeps
    the sample at ``n`` voxels or fewer, so a memory-mapped volume is not read
    whole; non-finite values are ignored.

    Parameters
    ----------
    volume : (Z, Y, X) array
        Greyscale volume (ndarray, memmap, or an array-like with slicing).
    q : (2,) float
        Lower and upper percentiles, ``0 <= q[0] < q[1] <= 100``.
    n : float
        Maximum sample size (>= 1).

    Returns
    -------
    (lo, hi) : tuple of float
        The two percentiles; ``hi = lo + 1`` when they are equal (a constant
        sample), so that ``hi > lo`` always holds.

    Raises
    ------
    ValueError
        Bad ``q`` or ``n``; no finite value in the sample.
    """
    shape, _ = _check_source(volume)
    try:
        q0, q1 = (float(v) for v in q)
    except (TypeError, ValueError):
        raise TypeError(f"q must be two percentiles, got {q!r}") from None
    if not 0.0 <= q0 < q1 <= 100.0:
        raise ValueError(f"q must satisfy 0 <= q[0] < q[1] <= 100, got {(q0, q1)}")
    if not (isinstance(n, (int, float, np.integer, np.floating)) and not isinstance(n, bool) and n >= 1):
        raise ValueError(f"n must be a number >= 1, got {n!r}")
    size = math.prod(shape)
    s = max(1, math.ceil((size / float(n)) ** (1.0 / 3.0)))
    while math.prod(-(-d // s) for d in shape) > n:
        s += 1
    sample = np.asarray(volume[::s, ::s, ::s], dtype=np.float64).ravel()
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        raise ValueError("the volume sample holds no finite value")
    lo, hi = (float(v) for v in np.percentile(sample, [q0, q1]))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)
