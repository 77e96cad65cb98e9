"""Tiled, blended, memory-bounded inference of a 3D network on a volume of any size.

Works with any :class:`torch.nn.Module` (or callable on tensors) that maps a
float tensor ``(B, 1, D, H, W)`` to logits ``(B, C, D, H, W)`` of the same
spatial size, where the network needs ``D, H, W`` to be multiples of
``multiple`` (8 for a U-Net with three poolings).  A model returning a tuple or
list of such tensors is read as their concatenation along the channels.

Public functions: :func:`predict_tiled` (blended channels, written slab by slab
to an output array or handed to a ``sink``), :func:`segment_tiled` (argmax
labels plus one optional float channel), :func:`plan_tiles` (where the tiles
go, from :mod:`core.nn.tile_plan`, which also describes the blending window),
:func:`robust_range` (intensity percentiles from a strided sample,
:mod:`core.nn.intensity`) and :func:`available_cpus` (:mod:`core.nn.device`).

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
from collections.abc import Callable, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._validate import check_grey_range
from .device import available_cpus, resolve_device
from .intensity import _check_source, robust_range  # noqa: F401  (robust_range re-exported)
from .tile_plan import WINDOW_FLOOR, TilePlan, Triple, _axis_windows, plan_tiles  # noqa: F401  (re-exported)

Progress = Callable[[float, str], None]
Sink = Callable[[int, int, np.ndarray], None]


# --------------------------------------------------------------------------- validation


def _check_callable(value, name: str) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, got {type(value).__name__}")


def _check_range(intensity_range) -> tuple[float, float] | None:
    return check_grey_range(intensity_range, "intensity_range")


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


def _read_tile(volume, start: Triple, plan: TilePlan, scale: float | None, offset: float,
               fill: float | None = None) -> np.ndarray:
    """One input tile as a new float32 array: non-finite values filled, normalised, reflect-padded to the tile size."""
    sl = tuple(slice(s, min(s + t, n)) for s, t, n in zip(start, plan.tile, plan.shape))
    a = np.array(volume[sl], dtype=np.float32, copy=True)  # never a view: normalised in place below
    if fill is not None:
        np.nan_to_num(a, copy=False, nan=fill, posinf=fill, neginf=fill)
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


def _check_predict_args(model, shape: Triple, channels_out, batch_size, num_threads, out, out_dtype, *,
                        callables: dict) -> tuple[int, np.dtype]:
    """The checks of :func:`predict_tiled`'s arguments; returns the channel count and the output dtype."""
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
    for name, f in callables.items():
        _check_callable(f, name)
    if out is not None and callables["sink"] is not None:
        raise ValueError("give either out= or sink=, not both")
    out_dtype = np.dtype(out_dtype)
    reduce = callables["reduce"]
    if reduce is None and not np.issubdtype(out_dtype, np.floating):
        raise ValueError(f"out_dtype must be a floating dtype, got {out_dtype}; use reduce= to turn the "
                         "channels into integer labels")
    if out is not None:
        if not hasattr(out, "shape") or not hasattr(out, "__setitem__"):
            raise TypeError(f"out must be a writable array, got {type(out).__name__}")
        if reduce is None and tuple(out.shape) != (channels, *shape):
            raise ValueError(f"out has shape {tuple(out.shape)}; expected {(channels, *shape)} (channels_out, Z, Y, X)")
    return channels, out_dtype


def _autocast(dev: torch.device, use_amp: bool):
    """float16 autocast on CUDA when asked; nothing otherwise."""
    if use_amp and dev.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return nullcontext()


class _SlabAccumulator:
    """The weighted sum of the tiles of the current z-row, ``(C, min(T_z, Z), Y, X)`` float32.

    The sum of weights is not stored: being separable, it is the product of
    the three 1D sums (``inv_z`` and ``inv_yx`` hold their inverses).
    """

    def __init__(self, plan: TilePlan, channels: int):
        wins = [_axis_windows(plan.starts[a], plan.tile[a], plan.shape[a]) for a in range(3)]
        self.inv_z = (1.0 / wins[0][1]).astype(np.float32)
        self.inv_yx = torch.from_numpy((1.0 / np.outer(wins[1][1], wins[2][1])).astype(np.float32))
        self.win_t = [[torch.from_numpy(w) for w in wins[a][0]] for a in range(3)]
        self.depth = plan.slab_depth
        self.acc = np.zeros((channels, self.depth, plan.shape[1], plan.shape[2]), np.float32)
        self.acc_t = torch.from_numpy(self.acc)   # the same memory, for torch's multithreaded kernels
        self.z0 = 0

    def move_to(self, z0: int) -> None:
        """Shift the held planes so that the accumulator starts at plane ``z0`` (new planes zero)."""
        shift = z0 - self.z0
        if shift:
            keep = self.depth - shift
            self.acc[:, :keep] = self.acc[:, shift:]
            self.acc[:, keep:] = 0.0
            self.z0 = z0

    def add(self, y: torch.Tensor, iz: int, batch, starts) -> None:
        """Add the windowed outputs ``y`` (B, C, T_z, T_y, T_x) of the tiles ``batch`` of z-row ``iz``."""
        wz = self.win_t[0][iz]
        dz = wz.shape[0]
        for k, (iy, ix) in enumerate(batch):
            wy, wx = self.win_t[1][iy], self.win_t[2][ix]
            dy, dx = wy.shape[0], wx.shape[0]
            _, y0, x0 = starts[k]
            w3 = (wz[:, None, None] * wy[None, :, None]) * wx
            self.acc_t[:, :dz, y0:y0 + dy, x0:x0 + dx].addcmul_(y[k, :, :dz, :dy, :dx], w3)

    def finished(self, z0: int, z1: int) -> np.ndarray:
        """Blended planes ``[z0, z1)`` (divided by the sum of weights), float32 ``(C, z1 - z0, Y, X)``."""
        weight = torch.from_numpy(self.inv_z[z0:z1])[:, None, None] * self.inv_yx   # torch: multithreaded
        return (self.acc_t[:, z0 - self.z0:z1 - self.z0] * weight).numpy()


class _Output:
    """Where finished blocks go: through ``reduce``, then into ``out``, a new array or the ``sink``."""

    def __init__(self, shape: Triple, reduce, out, sink, out_dtype: np.dtype):
        self.shape, self.reduce, self.result, self.sink, self.out_dtype = shape, reduce, out, sink, out_dtype

    def write(self, z0: int, z1: int, block: np.ndarray) -> None:
        _, Y, X = self.shape
        if self.reduce is not None:
            block = np.asarray(self.reduce(block))
            if block.ndim < 3 or block.shape[-3:] != (z1 - z0, Y, X):
                raise ValueError(f"reduce must return an array whose last three axes are (dz, Y, X) = "
                                 f"{(z1 - z0, Y, X)}, got shape {block.shape}")
        else:
            block = block.astype(self.out_dtype, copy=False)
        if self.sink is not None:
            self.sink(z0, z1, block)
            return
        full = (*block.shape[:-3], *self.shape)
        if self.result is None:
            self.result = np.empty(full, block.dtype)
        elif tuple(self.result.shape) != full:
            raise ValueError(f"out has shape {tuple(self.result.shape)}; reduce yields {full} for the whole volume")
        self.result[..., z0:z1, :, :] = block


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
    fill: float | None = None,
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
    fill : float or None
        Grey value given to non-finite input voxels (NaN, ±inf) as each tile
        is read, before the intensity map, so the network never sees one
        (e.g. :func:`core.phases.nonfinite_fill`); None leaves them as they are.

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
    channels, out_dtype = _check_predict_args(model, shape, channels_out, batch_size, num_threads, out, out_dtype,
                                              callables=dict(postprocess=postprocess, reduce=reduce, sink=sink,
                                                             progress=progress))
    rng = _check_range(intensity_range)
    if fill is not None and not (isinstance(fill, (int, float, np.integer, np.floating)) and math.isfinite(fill)):
        raise ValueError(f"fill must be a finite grey value or None, got {fill!r}")
    scale, offset = (None, 0.0) if rng is None else (2.0 / (rng[1] - rng[0]), -rng[0] * 2.0 / (rng[1] - rng[0]) - 1.0)
    plan = plan_tiles(shape, tile=tile, overlap=overlap, multiple=multiple)
    dev = resolve_device(device)
    use_amp = (dev.type == "cuda") if autocast is None else bool(autocast)
    acc = _SlabAccumulator(plan, channels)
    output = _Output(shape, reduce, out, sink, out_dtype)
    yx_tiles = [(iy, ix) for iy in range(len(plan.starts[1])) for ix in range(len(plan.starts[2]))]
    in_dtype = _input_dtype(model)
    n_done, zs = 0, plan.starts[0]
    with _session(model, dev, num_threads):
        flushed = 0
        for iz, z0 in enumerate(zs):
            acc.move_to(z0)
            for b0 in range(0, len(yx_tiles), batch_size):
                batch = yx_tiles[b0:b0 + batch_size]
                starts = [(z0, plan.starts[1][iy], plan.starts[2][ix]) for iy, ix in batch]
                x = np.stack([_read_tile(volume, st, plan, scale, offset, fill) for st in starts])[:, None]
                xt = torch.from_numpy(x).to(dev, dtype=in_dtype)
                with _autocast(dev, use_amp):
                    y = _model_output(model, xt, channels, postprocess)
                acc.add(y.cpu(), iz, batch, starts)
                n_done += len(batch)
                if progress is not None:
                    progress(n_done / plan.n_tiles,
                             f"tile {n_done}/{plan.n_tiles} (z-slab {iz + 1}/{len(zs)})")
            z_end = zs[iz + 1] if iz + 1 < len(zs) else shape[0]
            output.write(flushed, z_end, acc.finished(flushed, z_end))
            flushed = z_end
    return None if sink is not None else output.result


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


def _check_segment_args(shape: Triple, channels_out, class_channels, extra_channel, labels_out,
                        extra_out) -> list[int]:
    """The checks of :func:`segment_tiled`'s own arguments; returns the class channels as a list."""
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
    return classes


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
    fill: float | None = None,
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
    tile, overlap, multiple, intensity_range, postprocess, device, batch_size, num_threads, autocast, progress, fill
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
    classes = _check_segment_args(shape, channels_out, class_channels, extra_channel, labels_out, extra_out)
    labels = np.empty(shape, np.uint8) if labels_out is None else labels_out
    extra = None if extra_channel is None else (np.empty(shape, np.float16) if extra_out is None else extra_out)

    def write(z0: int, z1: int, block: np.ndarray) -> None:
        labels[z0:z1] = _argmax_uint8(block, classes)
        if extra is not None:
            extra[z0:z1] = torch.from_numpy(block[extra_channel]).to(torch.float16).numpy()

    predict_tiled(model, volume, channels_out=channels_out, tile=tile, overlap=overlap, multiple=multiple,
                  intensity_range=intensity_range, postprocess=postprocess, sink=write, out_dtype=np.float32,
                  device=device, batch_size=batch_size, num_threads=num_threads, autocast=autocast,
                  progress=progress, fill=fill)
    return TiledSegmentation(labels=labels, extra=extra)
