"""The shipped 3D U-Net on single slices (2D images): where the slice sits in the stack the network sees.

``core.nn.infer.segment_volume`` pads an axis shorter than the network's multiple (8) by repeating the edge.  Up to
session 33 it padded after the volume only, so a single slice was the FIRST slice of an 8-deep stack of itself;
the network was trained on real slices stacked 8 deep and read in the middle (``core.nn.infer.predict_slice``),
and at the stack's edge its phases are far worse.  Since session 33 the padding is split (the slice at index 4 of 8)
and a volume no deeper than 8 is tiled in wide tiles (the voxels of a 96³ tile: 8 × 328 × 328).

Here, on the real labelled nano-CT slices (``../shared/data/real/nanoct_nmc_slices``; the network was trained on
acquisitions A and D, so only B is unseen), per slice: the mean per-phase IoU against the manual labels and the
seconds of ``segment_volume`` for
* **edge (before)**: the old padding and tiles, reproduced here (pad after, tiles of 96);
* **middle (now)**: ``segment_volume`` as it is;
* **predict_slice**: the network on the whole slice stacked 8 deep, its middle slice (what the model card's real-slice
  scores use).

Usage:  python bench/unet_single_slices.py [--no-write]
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

import _common as C  # noqa: E402  (sets sys.path)
import accuracy_real as AR
from core.evaluate import phase_iou
from core.nn import infer
from core.nn.intensity import normalize, robust_range
from core.nn.params import ModelParams
from core.nn.tiling import segment_tiled

PHASES = ("pore", "cbd", "nmc")


def _old_segment(model, vol: np.ndarray, params: ModelParams) -> np.ndarray:
    """Phases as ``segment_volume`` gave them up to session 33 (padding after the volume, tiles of ``tile``)."""
    short = [(0, max(0, model.multiple - s)) for s in vol.shape]
    src = np.pad(vol, short, mode="edge")
    tile = tuple(min(params.tile, -(-s // model.multiple) * model.multiple) for s in src.shape)
    seg = segment_tiled(infer._Forward(model, "float32").eval(), src, channels_out=infer.N_OUT,
                        class_channels=(0, 1, 2), extra_channel=infer.CH_CENTRE, tile=tile,
                        overlap=tuple(min(params.overlap, t // 2) for t in tile), multiple=model.multiple,
                        intensity_range=robust_range(src), postprocess=infer.cue_from_logits,
                        device=torch.device("cpu"))
    return seg.labels[tuple(slice(0, s) for s in vol.shape)]


def rows_for(data: Path) -> list[dict]:
    params = ModelParams(precision="float32")
    model = infer._cached_model(str(params.path.resolve()), params.path.stat().st_mtime)
    rows = []
    for n in AR.slices(data):
        grey, truth = AR.load_slice(data, n)
        row = {"acq": AR.acquisition_of(n, grey.shape[1:]) or "?", "slice": f"raw_{n}"}

        def score(name, fn):
            t0 = time.perf_counter()
            phases = fn()
            row[f"{name} s"] = time.perf_counter() - t0
            iou = phase_iou(truth, phases)
            row[f"{name} IoU"] = float(np.mean([iou[p] for p in PHASES]))

        score("edge (before)", lambda: _old_segment(model, grey, params))
        score("middle (now)", lambda: infer.segment_volume(grey, params, device="cpu").phases)
        img = grey[0].astype(np.float32)
        score("predict_slice", lambda: infer.predict_slice(model, normalize(img, *robust_range(img)))[:3]
              .argmax(0).astype(np.uint8)[None])
        rows.append(row)
        C.print_row(row)
    return rows


def main(argv=None) -> int:
    args = AR.parse_data_args(__doc__, argv)
    if not args.data.is_dir():
        print(f"skipped: {args.data} is absent (the real data of ../shared/data/real)")
        return 0
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    rows = rows_for(args.data)
    total = time.perf_counter() - t0
    means = C.group_means(rows, ("acq",), count="slices")
    C.publish("unet_single_slices", C.section_lines(
        "The 3D U-Net on single slices: the slice in the middle of the stack (`bench/unet_single_slices.py`)",
        total, load_start,
        "Real labelled nano-CT slices, each a (1, Y, X) volume; the shipped weights, float32 on the CPU (torch "
        f"threads {torch.get_num_threads()}). 'IoU' = mean per-phase IoU against the manual labels (remapped as in "
        "`bench/accuracy_real.py`); 's' = seconds. 'edge (before)' = `segment_volume` up to session 33 (the slice "
        "first in an 8-deep stack of itself, tiles of 96), reproduced in this script; 'middle (now)' = "
        "`segment_volume` (the slice at index 4 of 8, wide tiles); 'predict_slice' = the whole slice stacked 8 deep, "
        "its middle slice. The network was trained on A and D: only B is unseen.",
        {"Mean per acquisition": means, "Per slice": rows}), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
