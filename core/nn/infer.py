"""Inference with the shipped 3D U-Net: weights, phases and particle instances.

- :func:`load_model` reads a checkpoint written by :mod:`core.nn.train`
  with ``torch.load(..., weights_only=True)``;
- :func:`predict_slice` runs a 2D image as a stack of identical slices
  (how the real labelled slices were seen in training);
- :func:`real_slice_scores` scores the model on labelled real slices.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..evaluate import phase_iou
from .params import DEFAULT_WEIGHTS, PRECISIONS, ModelParams  # noqa: F401  (re-exported)
from .device import resolve_device
from .intensity import robust_range
from .model import CH_BOUNDARY, CH_CENTRE, N_OUT, N_PHASES, ModelConfig, UNet3D
from .tiling import segment_tiled

_FORMAT = "core.nn.unet3d/1"


def load_model(path: Path | str = DEFAULT_WEIGHTS, device: str | torch.device = "cpu") -> UNet3D:
    """Load a checkpoint written by :func:`core.nn.train.save_weights`.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is not a checkpoint of this model, as one sentence naming the
        file and a short reason (empty, truncated, not a PyTorch file, another
        model's checkpoint, layers that do not match); never torch's own text.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model weights not found: {path}")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before failing
            warnings.simplefilter("ignore")
            blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # pickle / zip errors differ between torch versions: classified from the file itself
        raise _not_weights(path, _unreadable_reason(path)) from None
    if not isinstance(blob, dict) or blob.get("format") != _FORMAT:
        raise _not_weights(path, f"a PyTorch file, but not a {_FORMAT} checkpoint")
    try:
        model = UNet3D(ModelConfig(**blob["config"]))
        model.load_state_dict(blob["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError):
        raise _not_weights(path, "its configuration or layers do not match the network") from None
    model.meta = blob.get("meta", {})
    return model.to(device).eval()


def _not_weights(path: Path, reason: str) -> ValueError:
    return ValueError(f"{path.name} is not a weights file of this model ({reason})")


def _unreadable_reason(path: Path) -> str:
    """Why ``torch.load`` could not read ``path``, in a few words, from the file's first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return "the file cannot be read"
    if not head:
        return "the file is empty"
    if head == b"PK\x03\x04":  # torch.save's zip archive
        return "a truncated or damaged PyTorch file"
    if head[:1] == b"\x80":  # a pickle: an old-style torch file or arbitrary Python objects
        return "a plain pickle, not a PyTorch file"
    return "not a PyTorch file"


def _pad_to(x: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[slice, ...]]:
    pads = [(0, (-s) % multiple) for s in x.shape]
    crop = tuple(slice(0, s) for s in x.shape)
    return np.pad(x, pads, mode="reflect" if all(s > p[1] for s, p in zip(x.shape, pads)) else "edge"), crop


def predict_slice(model: UNet3D, image: np.ndarray, depth: int = 8) -> np.ndarray:
    """Logits of one normalised 2D image seen as ``depth`` identical slices.

    Parameters
    ----------
    image : (H, W) float32, normalised (:func:`core.nn.intensity.normalize`)

    Returns
    -------
    logits : (5, H, W) float32
        Output channels of the middle slice (see :mod:`core.nn.model`).
    """
    image = np.asarray(image, np.float32)
    if image.ndim != 2:
        raise ValueError(f"expected a 2D image, got shape {image.shape}")
    padded, crop = _pad_to(image, model.multiple)
    x = torch.from_numpy(np.repeat(padded[None, None, None], depth, axis=2))
    dev = next(model.parameters()).device
    with torch.inference_mode():
        out = model(x.to(dev))[0, :, depth // 2].float().cpu().numpy()
    return out[(slice(None),) + crop]


def real_slice_scores(model: UNet3D, slices) -> dict:
    """Per-phase IoU of the model on labelled real slices (mean over slices).

    Parameters
    ----------
    slices : list of :class:`core.nn.data.RealSlice`

    Returns
    -------
    dict
        ``iou`` {pore, cbd, nmc}, ``mean_iou``, ``per_slice`` {name: {phase: iou}}.
    """
    per = {}
    for s in slices:
        pred = predict_slice(model, s.image)[:N_PHASES].argmax(0).astype(np.uint8)
        per[s.name] = {k: round(float(v), 4) for k, v in phase_iou(s.phases[None], pred[None]).items()}
    iou = {p: round(float(np.nanmean([v[p] for v in per.values()])), 4) for p in ("pore", "cbd", "nmc")}
    return {"iou": iou, "mean_iou": round(float(np.mean(list(iou.values()))), 4), "per_slice": per}


def instances_from_cue(phases: np.ndarray, cue: np.ndarray, spacing=None, *, h: float = 0.3,
                       merge_ratio: float = 2.0, min_volume_um3: float = 1.0) -> np.ndarray:
    """Particle labels from the network's instance cue.

    The cue (``sigmoid(centre) * (1 - sigmoid(boundary))``, see
    :func:`cue_from_logits`) is flooded from its peaks inside the
    crack-filled NMC, merging basins whose peak rises less than ``h`` above
    the saddle (:func:`core._watershed.watershed_dynamics`); then over-split
    fragments are merged as in the classic method
    (:func:`core.particles.merge_fragments`).

    Parameters
    ----------
    phases : (Z, Y, X) uint8
    cue : (Z, Y, X) float, in [0, 1]
    spacing : float or (3,) float, µm
    h : float
        Minimum dynamics of a peak, in cue units, in (0, 1).
    merge_ratio, min_volume_um3 : float
        As in :class:`core.particles.SeparationParams`.

    Returns
    -------
    labels : (Z, Y, X) uint16 or int32, 1..n on NMC voxels
        The dtype of :func:`core._watershed.watershed_dynamics` (uint16 unless
        the flood needed more than 65534 labels at once).
    """
    from .._validate import check_has_nmc, check_phases, normalize_spacing
    from .._watershed import quantise, watershed_dynamics
    from ..codes import NMC
    from ..particles import _merge_fragments, fill_enclosed

    phases = check_phases(phases)
    check_has_nmc(phases)
    sp = normalize_spacing(spacing)
    if np.shape(cue) != phases.shape:
        raise ValueError(f"cue shape {np.shape(cue)} does not match phases shape {phases.shape}")
    if not 0 < h < 1:
        raise ValueError(f"h must be in (0, 1), got {h}")
    solid = phases == NMC
    filled = fill_enclosed(solid)
    c = np.clip(np.asarray(cue, np.float32), 0, 1)
    c[~filled] = 0
    c[filled & (c <= 0)] = 1e-6
    q, step = quantise(c, 1.0 / 254)
    del c, filled
    labels = watershed_dynamics(q, max(1, int(round(h / step))))
    labels[~solid] = 0
    return _merge_fragments(labels, sp, merge_ratio=merge_ratio, min_volume_um3=min_volume_um3, inplace=True)


def cue_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Phase probabilities and the instance cue from the network's 5 output channels.

    Returns a tensor of the same shape: channels 0..2 softmax of the phase
    logits, channel 3 ``sigmoid(centre) * (1 - sigmoid(boundary))``, channel 4 zero.
    """
    prob = torch.softmax(logits[:, :N_PHASES].float(), 1)
    cue = torch.sigmoid(logits[:, CH_CENTRE].float()) * (1 - torch.sigmoid(logits[:, CH_BOUNDARY].float()))
    return torch.cat([prob, cue[:, None], torch.zeros_like(cue[:, None])], 1)


@dataclass(frozen=True, eq=False)
class ModelSegmentation:
    """Output of :func:`segment_volume`: phases (Z, Y, X) uint8 and cue (Z, Y, X) float16 in [0, 1].

    ``precision`` is the arithmetic actually used ("float32" or "bfloat16").
    """

    phases: np.ndarray
    cue: np.ndarray
    weights_sha256: str
    precision: str = "float32"


def native_bfloat16(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` does bfloat16 convolutions natively (CPU: AVX512-BF16 / AMX via oneDNN)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # private probe: absent in some torch builds
        return False


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """``"auto"`` → ``"bfloat16"`` where :func:`native_bfloat16`, else ``"float32"``; others unchanged."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    return "bfloat16" if native_bfloat16(device) else "float32"


class _Forward(torch.nn.Module):
    """The network in the chosen arithmetic; CPU tensors in channels-last-3D (faster oneDNN kernels)."""

    def __init__(self, model: UNet3D, precision: str):
        super().__init__()
        self.model = model
        self.precision = precision
        self.multiple = model.multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dev = x.device.type
        if dev == "cpu":
            x = x.contiguous(memory_format=torch.channels_last_3d)
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=self.precision == "bfloat16"):
            y = self.model(x)
        return y.float().contiguous()


@lru_cache(maxsize=4)
def _cached_model(path: str, mtime: float) -> UNet3D:
    return load_model(path)


def weights_digest(path: Path | str) -> str:
    """SHA-256 of a weights file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _pad_short_axes(vol: np.ndarray, multiple: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """``vol`` with each axis shorter than ``multiple`` repeated (edge) on both sides, the volume in the middle
    (the extra slice on the side before), and the padding ((before, after) per axis).

    A single slice then sits in the middle of a stack of the network's depth, as the real slices it was trained on
    (the same slice stacked 8 deep) and as :func:`predict_slice` reads it.  Padded on one side only (up to session
    33), a nano-CT slice was the stack's first slice, where the network's phases were far worse: mean per-phase IoU
    on the real labelled slices A 0.434 / B 0.396 / D 0.615 against 0.623 / 0.564 / 0.702 in the middle, with the
    wide tiles of :func:`_tile_shape` (bench/RESULTS.md, unet_single_slices).
    """
    pads = [((max(0, multiple - s) + 1) // 2, max(0, multiple - s) // 2) for s in vol.shape]
    return (np.pad(vol, pads, mode="edge") if any(b or a for b, a in pads) else vol), pads


def _tile_shape(shape, tile: int, multiple: int) -> tuple[int, int, int]:
    """Tile of :func:`segment_volume` for a (padded) volume of ``shape``: ``tile`` a side, at most the volume
    (rounded up to ``multiple``); a volume no deeper than ``multiple`` (a single slice or a thin slab) gets tiles as
    wide as the voxels of a ``tile``-cube allow (a 2D image in a few tiles: faster, and more context a tile)."""
    up = [-(-int(s) // multiple) * multiple for s in shape]
    out = [min(int(tile), n) for n in up]
    if up[0] <= multiple:
        wide = max(int(tile), int((tile ** 3 / up[0]) ** 0.5) // multiple * multiple)
        out[1], out[2] = min(wide, up[1]), min(wide, up[2])
    return tuple(out)


def segment_volume(volume: np.ndarray, params: ModelParams | None = None, *, device: str = "auto",
                   progress=None) -> ModelSegmentation:
    """Phases and the particle instance cue of a greyscale volume with the 3D U-Net.

    Tiled with overlap and blended (:func:`core.nn.tiling.segment_tiled`);
    memory is bounded by one z-slab of tiles whatever the volume size.
    Intensities are normalised with the volume's 0.5 / 99.5 percentiles, as
    in training.  Non-finite voxels (at most
    :data:`core.phases.NONFINITE_MAX_SHARE` of them, else the volume is
    refused) are given the median of the finite values as each tile is read
    (:func:`core.phases.nonfinite_fill`): the network never sees a NaN.

    Parameters
    ----------
    volume : (Z, Y, X) real array (ndarray or memmap); not modified
    params : ModelParams
    device : "auto", "cpu" or "cuda"
    progress : callable(fraction, message), optional

    Returns
    -------
    ModelSegmentation
    """
    params = params or ModelParams()
    vol = np.asarray(volume) if not isinstance(volume, np.ndarray) else volume
    if vol.ndim != 3:
        raise ValueError(f"expected a 3D greyscale volume (Z, Y, X), got shape {vol.shape}")
    if vol.dtype.kind not in "uif":
        raise TypeError(f"expected a real-valued greyscale volume, got dtype {vol.dtype}")
    path = params.path
    if not path.is_file():
        raise FileNotFoundError(f"model weights not found: {path}")
    fill = None
    if vol.dtype.kind == "f":
        from ..phases import check_greyscale_nonfinite, nonfinite_fill

        fill = nonfinite_fill(vol) if check_greyscale_nonfinite(vol) else None
    model = _cached_model(str(path.resolve()), path.stat().st_mtime)
    dev = resolve_device(device)
    precision = resolve_precision(params.precision, dev)
    if dev.type == "cpu":  # in place on the cached model: only inference uses it
        model = model.to(memory_format=torch.channels_last_3d)
    src, pads = _pad_short_axes(vol, model.multiple)
    tile = _tile_shape(src.shape, params.tile, model.multiple)
    seg = segment_tiled(_Forward(model, precision).eval(), src, channels_out=N_OUT, class_channels=(0, 1, 2),
                        extra_channel=CH_CENTRE, tile=tile, overlap=tuple(min(params.overlap, t // 2) for t in tile),
                        multiple=model.multiple, intensity_range=robust_range(src, fill=fill),
                        postprocess=cue_from_logits, device=dev, progress=progress, fill=fill)
    crop = tuple(slice(before, before + s) for (before, _), s in zip(pads, vol.shape))
    return ModelSegmentation(np.ascontiguousarray(seg.labels[crop]), np.ascontiguousarray(seg.extra[crop]),
                             weights_digest(path), precision)
