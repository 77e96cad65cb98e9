"""The 3D U-Net (core.nn, shipped weights) next to the classic method, in one table.

* real nano-CT, held-out acquisition (core.nn.data.HOLDOUT, never used in training): per-phase IoU of
  each slice against its manual labels, mean over the slices; classic = automatic multi-Otsu thresholds
  with partial-volume correction (core.phases.segment_detailed, default SegmentParams); model = the slice
  seen as a stack of identical slices (core.nn.infer.predict_slice, as in training);
* synthetic demo electrodes (core.synth.DEMO_ELECTRODES, 160³ at 0.4 µm), seeds 100, 101, 102 (the
  training pool draws its electrodes from its own seeded stream with randomised parameters, never
  these): instance F1 at IoU 0.5, AP over IoU 0.5:0.95, phase IoU, median |detachment error| over
  particles matched at IoU > 0.5; classic = core.pipeline.run default, model =
  AnalysisParams(method="model", particles="model"), hybrid = AnalysisParams(method="threshold",
  particles="model") (phases by thresholds, particles by the network's cue);
* speed: Mvoxel/s of the whole analysis of each 160³ electrode (after a warm-up), and of the network's
  tiled inference alone (core.nn.infer.segment_volume), on this machine's CPU cores.

Usage:  python bench/accuracy_model.py [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)
from core.evaluate import detachment_errors, instance_scores, match_instances, phase_iou
from core.nn import data as nndata
from core.nn import infer
from core.phases import SegmentParams, segment_detailed
from core.pipeline import AnalysisParams, run
from core.synth import DEMO_ELECTRODES, demo_electrode

PHASES = ("pore", "cbd", "nmc")
MODEL = AnalysisParams(method="model", particles="model")
HYBRID = AnalysisParams(method="threshold", particles="model")  # thresholded phases, the network's particles
METHODS = (("classic", AnalysisParams()), ("model", MODEL), ("hybrid", HYBRID))


def real_rows(quick: bool) -> list[dict]:
    if not nndata.REAL_DIR.is_dir():
        print(f"  real slices not found at {nndata.REAL_DIR}: skipped")
        return []
    import tifffile

    ids = nndata.ACQUISITIONS[nndata.HOLDOUT][: 1 if quick else None]
    model = infer.load_model()
    rows = []
    for method in ("classic", "model"):
        per = []
        for n in ids:
            grey = tifffile.imread(nndata.REAL_DIR / f"raw_{n}.tif").astype(np.float32)
            truth = nndata.REAL_PHASE_MAP[tifffile.imread(nndata.REAL_DIR / f"raw_{n}_label.tif")]
            if method == "classic":
                pred = segment_detailed(grey[None], SegmentParams()).phases[0]
            else:
                x = nndata.normalize(grey, *nndata.robust_range(grey))
                pred = infer.predict_slice(model, x)[:3].argmax(0).astype(np.uint8)
            per.append(phase_iou(truth[None], pred[None]))
        iou = {p: float(np.nanmean([d[p] for d in per])) for p in PHASES}
        rows.append({"method": method, "data": f"real nano-CT, held-out acquisition {nndata.HOLDOUT} "
                                               f"({len(ids)} slices)",
                     **{f"IoU {p}": iou[p] for p in PHASES}, "mean IoU": float(np.mean(list(iou.values())))})
    return rows


def synthetic_rows(seeds, shape) -> list[dict]:
    w = demo_electrode("pristine", rng=0, shape=(40, 40, 40))
    run(w.greyscale, spacing=w.spacing)
    run(w.greyscale, MODEL, spacing=w.spacing)
    rows = []
    for name in DEMO_ELECTRODES:
        acc = {m: [] for m, _ in METHODS}
        for seed in seeds:
            e = demo_electrode(name, rng=seed, shape=shape)
            for method, params in METHODS:
                t0 = time.perf_counter()
                r = run(e.greyscale, params, spacing=e.spacing)
                dt = time.perf_counter() - t0
                sc = instance_scores(e.labels, r.labels)
                err = detachment_errors(e.table, r.table, match_instances(e.labels, r.labels), min_iou=0.5)
                err = err["error"].dropna().to_numpy()
                iou = phase_iou(e.phases, r.phases)
                acc[method].append({
                    "F1@0.5": float(sc.loc[np.isclose(sc["threshold"], 0.5), "f1"].iloc[0]),
                    "AP@.5:.95": float(sc["ap"].mean()),
                    **{f"IoU {p}": iou[p] for p in PHASES},
                    "med abs det err": float(np.median(np.abs(err))) if err.size else float("nan"),
                    "med det err (bias)": float(np.median(err)) if err.size else float("nan"),
                    "Mvox/s": e.greyscale.size / dt / 1e6,
                })
                print(f"  {name} seed {seed} {method}: F1 {acc[method][-1]['F1@0.5']:.3f} "
                      f"AP {acc[method][-1]['AP@.5:.95']:.3f} det err {acc[method][-1]['med abs det err']:.3f} "
                      f"({dt:.1f} s)", flush=True)
        for method, rs in acc.items():
            rows.append({"method": method, "data": f"synthetic {name}, seeds {list(seeds)}",
                         **{k: float(np.mean([r[k] for r in rs])) for k in rs[0]}})
    return rows


def inference_speed(shape, repeats: int = 3) -> dict[str, float]:
    """Median Mvoxel/s of ``segment_volume`` on a random volume, per precision (runs interleaved)."""
    from core.nn.params import ModelParams

    rng = np.random.default_rng(0)
    vol = rng.random(shape, dtype=np.float32)
    precisions = ["float32"] + (["bfloat16"] if infer.native_bfloat16("cpu") else [])
    times: dict[str, list[float]] = {p: [] for p in precisions}
    for p in precisions:
        infer.segment_volume(vol[:16, :64, :64], ModelParams(precision=p), device="cpu")
    for _ in range(repeats):
        for p in precisions:
            t0 = time.perf_counter()
            infer.segment_volume(vol, ModelParams(precision=p), device="cpu")
            times[p].append(time.perf_counter() - t0)
    return {p: vol.size / float(np.median(t)) / 1e6 for p, t in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_common_args(ap)
    args = ap.parse_args(argv)
    seeds = [100] if args.quick else [100, 101, 102]
    shape = (64, 64, 64) if args.quick else None
    t_start = time.perf_counter()
    real = real_rows(args.quick)
    synth_rows = synthetic_rows(seeds, shape)
    speed_shape = (64, 128, 128) if args.quick else (128, 256, 256)
    mvox = inference_speed(speed_shape, repeats=1 if args.quick else 3)
    auto = infer.resolve_precision("auto", "cpu")
    total = time.perf_counter() - t_start
    meta = infer.load_model().meta
    cols = ["method", "data", "IoU pore", "IoU cbd", "IoU nmc", "mean IoU"]
    scols = ["method", "data", "F1@0.5", "AP@.5:.95", "IoU pore", "IoU cbd", "IoU nmc", "med abs det err",
             "med det err (bias)", "Mvox/s"]
    lines = [f"## The 3D U-Net next to the classic method (`bench/accuracy_model.py`)"
             f"{' — QUICK smoke run' if args.quick else ''}", "", *C.env_lines(),
             f"- script wall time: {total:.0f} s",
             f"- weights: `core/nn/weights/unet3d.pt` (sha256 {infer.weights_digest(infer.DEFAULT_WEIGHTS)[:12]}…), "
             f"{meta.get('parameters')} parameters, trained {meta.get('train_config', {}).get('steps')} steps, "
             f"seed {meta.get('train_config', {}).get('seed')}", ""]
    if real:
        lines += ["### Real nano-CT, held-out acquisition (per-phase IoU, mean over slices)", "",
                  C.md_table(real, cols)]
    lines += ["### Synthetic demo electrodes (mean over seeds)", "", C.md_table(synth_rows, scols),
              "Mvox/s = voxels / wall time of the whole analysis (phases, particles, table) on this machine.", "",
              f"The model rows use `ModelParams()` defaults: precision \"auto\", which on this CPU resolved to "
              f"**{auto}** (bfloat16 where the processor has native bfloat16 arithmetic, else float32).", "",
              "Network inference alone (`core.nn.infer.segment_volume`: tiled, tile 96, overlap 16, blending, "
              f"argmax; {speed_shape} random volume; median of {1 if args.quick else 3} runs, precisions "
              "interleaved), target ≥ 1 Mvoxel/s on 2 cores:", "",
              *[f"- {p}: **{v:.2f} Mvoxel/s**" for p, v in mvox.items()], ""]
    C.publish("accuracy_model", lines, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
