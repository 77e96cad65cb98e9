"""Speed of tiled 3D-network inference (``core.nn.tiling.segment_tiled``), by default on the CPU.

Model: ``core.nn.model.UNet3D`` with its default ``ModelConfig`` when that module exists, else
a stand-in 3D U-Net defined here (16 base channels, 3 levels = 2 poolings, two 3x3x3 conv +
GroupNorm + SiLU per level, transposed-conv upsampling, 5 output channels); ``--model standin``
forces the stand-in.  Weights are random (seeded): speed does not depend on them.  The output
says which model was measured and its parameter count.

Input: a random uint16 volume N^3 per size (default 128 and 256), normalised with
``robust_range``.  Per (N, tile): one untimed warm-up call of the network on one tile, then
``--repeats`` timed calls of the whole path ``segment_tiled(model, volume, channels_out=C,
class_channels=(0, 1, 2), extra_channel=3, intensity_range=(lo, hi), tile=T, overlap=O)``:
reading, normalisation, network, blending, argmax to uint8 and one float16 channel.

Reported per row: median wall time, Mvoxel/s = N^3 / wall, number of tiles, tile overhead
(voxels run through the network / N^3), the network alone (Mvoxel/s of a bare forward pass on
one T^3 tile, median of 3, i.e. the speed with no overlap and no blending), and peak RSS of the
call above the RSS before it (VmHWM after resetting the mark via /proc/self/clear_refs).
Issue #4 target: >= 1 Mvoxel/s on 2 cores.

Second table, bfloat16 against float32 with the SHIPPED weights (``core.nn.infer.segment_volume``, default
``ModelParams`` but for ``precision``) on ``demo_electrode("cycled-5C", rng=100)`` at ``--agreement-size``
(default 160, the demo size): share of phase voxels whose class differs, per-phase IoU of the bfloat16
phases against the float32 ones, the largest difference of the instance cue, and both wall times.
Skipped (with a line saying so) where ``--agreement-size 0``.

Usage:  python bench/nn_inference_speed.py [--quick] [--sizes 128 256] [--tiles 64 96] [--overlap 16]
        [--batch 1] [--threads N] [--device cpu|auto|cuda] [--model auto|standin] [--repeats 1]
        [--agreement-size 160]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)
from speed_memory import _maxrss, _reset_peak

SEED = 7
TARGET_MVOX_S = 1.0


def _standin_unet(channels_out: int = 5, base: int = 16, levels: int = 3):
    """Stand-in 3D U-Net (see the module docstring); its ``multiple`` is ``2 ** (levels - 1)``."""
    import torch
    from torch import nn

    def block(cin, cout):
        return nn.Sequential(nn.Conv3d(cin, cout, 3, padding=1, bias=False), nn.GroupNorm(4, cout), nn.SiLU(),
                             nn.Conv3d(cout, cout, 3, padding=1, bias=False), nn.GroupNorm(4, cout), nn.SiLU())

    class StandInUNet(nn.Module):
        def __init__(self):
            super().__init__()
            ch = [base * 2**i for i in range(levels)]
            self.multiple = 2 ** (levels - 1)
            self.down = nn.ModuleList(block(a, b) for a, b in zip([1] + ch[:-1], ch))
            self.up = nn.ModuleList(nn.ConvTranspose3d(hi, lo, 2, stride=2) for lo, hi in zip(ch[-2::-1], ch[:0:-1]))
            self.dec = nn.ModuleList(block(2 * lo, lo) for lo in ch[-2::-1])
            self.head = nn.Conv3d(ch[0], channels_out, 1)
            self.pool = nn.MaxPool3d(2)

        def forward(self, x):
            skips = []
            for i, b in enumerate(self.down):
                x = b(x if i == 0 else self.pool(x))
                skips.append(x)
            x = skips.pop()
            for up, dec in zip(self.up, self.dec):
                x = dec(torch.cat([up(x), skips.pop()], 1))
            return self.head(x)

    return StandInUNet()


def _model(which: str):
    """(model, multiple, description)."""
    import torch

    torch.manual_seed(SEED)
    if which == "auto":
        try:
            from core.nn.model import ModelConfig, UNet3D
        except ImportError:
            pass
        else:
            cfg = ModelConfig()
            m = UNet3D(cfg)
            return m, int(getattr(m, "multiple", 8)), f"core.nn.model.UNet3D({cfg}), random weights"
    m = _standin_unet()
    return m, m.multiple, ("STAND-IN 3D U-Net defined in bench/nn_inference_speed.py (core.nn.model not used"
                           + (": not present" if which == "auto" else ": --model standin") + "), 16 base channels, "
                           "3 levels, GroupNorm + SiLU, 5 outputs, random weights")


def _loadavg() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _network_alone(model, tile: int, device, repeats: int = 3) -> float:
    """Mvoxel/s of a bare forward pass on one tile^3 (after one warm-up)."""
    import torch

    x = torch.randn(1, 1, tile, tile, tile, device=device)
    ts = []
    with torch.inference_mode():
        for i in range(repeats + 1):
            t0 = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i:
                ts.append(time.perf_counter() - t0)
    return tile**3 / float(np.median(ts)) / 1e6


def _precision_agreement(size: int) -> tuple[list[str], dict | None]:
    """bfloat16 against float32 with the shipped weights on one demo electrode (CPU)."""
    from core.evaluate import phase_iou
    from core.nn import infer
    from core.nn.params import ModelParams
    from core.synth import demo_electrode

    e = demo_electrode("cycled-5C", rng=100, shape=(size, size, size))
    native = infer.native_bfloat16("cpu")
    out = {}
    for p in ("float32", "bfloat16"):
        infer.segment_volume(e.greyscale[:16, :64, :64], ModelParams(precision=p), device="cpu")  # warm-up
        t0 = time.perf_counter()
        out[p] = (infer.segment_volume(e.greyscale, ModelParams(precision=p), device="cpu"),
                  time.perf_counter() - t0)
    (f32, t32), (b16, t16) = out["float32"], out["bfloat16"]
    iou = phase_iou(f32.phases, b16.phases)
    cue = np.abs(f32.cue.astype(np.float32) - b16.cue.astype(np.float32))
    row = {"volume": f"cycled-5C seed 100, {size}³", "native bfloat16": native,
           "phase voxels differing %": 100 * float(np.mean(f32.phases != b16.phases)),
           "IoU pore": iou["pore"], "IoU CBD": iou["cbd"], "IoU NMC": iou["nmc"],
           "cue max abs diff": float(cue.max()), "cue mean abs diff": float(cue.mean()),
           "float32 s": t32, "bfloat16 s": t16}
    print(f"  bfloat16 vs float32 at {size}³: {row['phase voxels differing %']:.3f} % of phase voxels differ",
          flush=True)
    return ["### bfloat16 against float32 (shipped weights)", "",
            "`core.nn.infer.segment_volume(e.greyscale, ModelParams(precision=p), device=\"cpu\")` for p = float32 "
            "and bfloat16 (the shipped `unet3d.pt`, tile 96, overlap 16) on `demo_electrode(\"cycled-5C\", "
            f"rng=100, shape={(size,) * 3})`; IoU = per-phase IoU of the bfloat16 phases against the float32 "
            "ones; cue = the instance cue (float16 channel). 'native bfloat16' = the CPU has bfloat16 arithmetic "
            "(what `precision=\"auto\"` needs to pick bfloat16); without it bfloat16 is emulated and slow.", "",
            C.md_table([row], digits=4)], row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_common_args(ap)
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="cube sizes N (default 128 256; --quick: 48)")
    ap.add_argument("--tiles", type=int, nargs="+", default=None, help="tile sizes (default 64 96; --quick: 32)")
    ap.add_argument("--overlap", type=int, default=16, help="overlap in voxels (default 16; --quick: 8)")
    ap.add_argument("--batch", type=int, default=1, help="tiles per network call (default 1)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: the available cores)")
    ap.add_argument("--device", default="cpu", help="cpu (default), auto or cuda")
    ap.add_argument("--model", choices=("auto", "standin"), default="auto")
    ap.add_argument("--repeats", type=int, default=1, help="timed calls per row (default 1)")
    ap.add_argument("--section", default=None, help="RESULTS.md section name (default nn_inference_speed[_quick])")
    ap.add_argument("--agreement-size", type=int, default=None,
                    help="demo electrode size for bfloat16 vs float32 with the shipped weights (default 160; "
                         "--quick: 48; 0 skips)")
    args = ap.parse_args(argv)

    import torch

    from core.nn.device import resolve_device as _resolve_device
    from core.nn.tiling import available_cpus, plan_tiles, robust_range, segment_tiled

    t_start = time.perf_counter()
    load_start = _loadavg()
    sizes = args.sizes or ([48] if args.quick else [128, 256])
    tiles = args.tiles or ([32] if args.quick else [64, 96])
    overlap = 8 if args.quick and args.overlap == 16 else args.overlap
    device = _resolve_device(args.device)
    threads = args.threads or available_cpus()
    model, multiple, desc = _model(args.model)
    model.eval().to(device)
    channels = int(model(torch.zeros(1, 1, 2 * multiple, 2 * multiple, 2 * multiple, device=device)).shape[1])
    print(f"model: {desc}; {_n_params(model):,} parameters; {channels} output channels; multiple {multiple}; "
          f"device {device}; torch threads {threads}", flush=True)
    torch.set_num_threads(threads)

    rows = []
    for n in sizes:
        vol = np.random.default_rng(SEED).integers(0, 65535, size=(n, n, n), dtype=np.uint16)
        lo, hi = robust_range(vol)
        for t in tiles:
            plan = plan_tiles(vol.shape, tile=t, overlap=overlap, multiple=multiple)
            net = _network_alone(model, plan.tile[0], device)
            ts, peak = [], 0
            for _ in range(args.repeats):
                base = _maxrss() if _reset_peak() else None
                t0 = time.perf_counter()
                res = segment_tiled(model, vol, channels_out=channels, class_channels=(0, 1, 2),
                                    extra_channel=3 if channels > 3 else None, intensity_range=(lo, hi), tile=t,
                                    overlap=overlap, multiple=multiple, device=device, batch_size=args.batch,
                                    num_threads=threads)
                ts.append(time.perf_counter() - t0)
                if base is not None:
                    peak = max(peak, _maxrss() - base)
                del res
            wall = float(np.median(ts))
            run_vox = plan.n_tiles * int(np.prod(plan.tile))
            row = {"N": n, "tile": t, "overlap": overlap, "tiles": plan.n_tiles,
                   "tile overhead ×": run_vox / n**3, "wall s": wall, "Mvoxel/s": n**3 / wall / 1e6,
                   "network alone Mvoxel/s": net,
                   f"≥ {TARGET_MVOX_S:g} Mvoxel/s": n**3 / wall / 1e6 >= TARGET_MVOX_S,
                   "peak RSS above start MiB": peak / 2**20 if peak else None}
            rows.append(row)
            print(f"  N={n} tile={t}: {row['wall s']:.1f} s, {row['Mvoxel/s']:.3f} Mvoxel/s "
                  f"({plan.n_tiles} tiles, overhead {row['tile overhead ×']:.2f}×, network alone {net:.3f} Mvoxel/s)",
                  flush=True)
    agree_size = args.agreement_size if args.agreement_size is not None else (48 if args.quick else 160)
    agree_lines = (_precision_agreement(agree_size)[0] if agree_size
                   else ["### bfloat16 against float32 (shipped weights)", "", "Skipped (`--agreement-size 0`)."])
    total = time.perf_counter() - t_start
    load_end = _loadavg()

    lines = [
        f"## Tiled network inference speed (`bench/nn_inference_speed.py`){' — QUICK smoke run' if args.quick else ''}",
        "", *C.env_lines(), f"- script wall time: {total:.0f} s",
        f"- 1-minute load average at start / end: {load_start:.1f} / {load_end:.1f} on {os.cpu_count()} cores"
        + (" — **indicative only**: other work was running" if max(load_start, load_end) > 0.5 + threads else ""),
        "",
        f"Model: {desc}; {_n_params(model):,} parameters; device {device}; torch threads {threads}. Input: random "
        f"uint16 N³ (seed {SEED}), normalised with `robust_range`. Timed: `segment_tiled` end to end (read, "
        f"normalise, network, blend, argmax to uint8 + one float16 channel), batch size {args.batch}, median of "
        f"{args.repeats} call(s). 'network alone' = one bare forward pass on one tile (no overlap, no blending); "
        f"'tile overhead' = voxels run through the network / N³.", "",
        C.md_table(rows, digits=3),
        *agree_lines,
    ]
    C.publish("nn_inference_speed", lines, args, section=args.section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
