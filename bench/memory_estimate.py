"""Peak memory of core.pipeline.run, measured, against core.memory.estimate_peak_bytes.

For each method (threshold, model, hybrid = threshold phases + the network's particle cue, presegmented, model
with 32-voxel tiles, where the particles-from-cue step rather than the network sets the peak, and deconvolved =
threshold with the phases refined and the particles seeded on the deconvolved mask, the path a blurred scan takes) and
cube size N, a fresh Python subprocess imports core (and torch for the network), runs a warm-up analysis on a
48^3 electrode (numba compilation, model loading), memory-maps the N^3 input (uint16 greyscale of
``make_electrode(ElectrodeParams(shape=(N, N, N)), rng=7)``, or the phases of the threshold run for
presegmented), resets the peak mark (/proc/self/clear_refs = 5), and runs ``core.pipeline.run``.

Measured: peak RSS above the RSS just before the call (VmHWM - VmRSS), what the estimate predicts for the same
call (``estimate_peak_bytes`` is the memory a run adds to the process that calls it, input pages read through
the memory map included) and their ratio.  Also the growth of the address space (VmPeak - VmSize before the
call), which is what an ``ulimit -v`` limit sees.

Usage: python bench/memory_estimate.py [--quick] [--sizes 64 128 192 256] [--methods ...]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)

METHODS = ("threshold", "presegmented", "model", "hybrid", "model-tile32", "deconvolved")
SPACING = (0.4, 0.4, 0.4)
SEED = 7


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def _params(method: str):
    from core.pipeline import AnalysisParams

    if method == "model":
        return AnalysisParams(method="model", particles="model")
    if method == "model-tile32":  # a thin slab: the particles-from-cue step sets the peak
        from core.nn.params import ModelParams

        return AnalysisParams(method="model", particles="model", model=ModelParams(tile=32, overlap=8))
    if method == "hybrid":
        return AnalysisParams(method="threshold", particles="model")
    if method == "deconvolved":  # the blurred scan's path: phases refined, particles seeded on the deconvolved mask
        return AnalysisParams(refine="on", seeding="deconvolved")
    return AnalysisParams()


def child(args) -> int:
    from core.memory import estimate_peak_bytes
    from core.pipeline import run
    from core.synth import ElectrodeParams, make_electrode

    work = Path(args.work)
    pre = args.method == "presegmented"
    warm = make_electrode(ElectrodeParams(shape=(48, 48, 48)), rng=SEED)
    run(warm.phases if pre else warm.greyscale, _params(args.method), spacing=SPACING, presegmented=pre)
    del warm
    gc.collect()
    inp = np.load(work / (f"phases_{args.n}.npy" if pre else f"grey_{args.n}.npy"), mmap_mode="r")
    params = _params(args.method)
    est = estimate_peak_bytes(inp.shape, inp.dtype, params, presegmented=pre)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    rss0, vm0 = _status("VmRSS"), _status("VmSize")
    t0 = time.perf_counter()
    r = run(inp, params, spacing=SPACING, presegmented=pre)
    wall = time.perf_counter() - t0
    out = {"method": args.method, "n": args.n, "dtype": str(inp.dtype), "wall_s": wall,
           "peak_above": _status("VmHWM") - rss0, "vm_above": _status("VmPeak") - vm0, "estimate": est,
           "rss0": rss0, "particles": int(len(r.table))}
    if args.method == "threshold":
        np.save(work / f"phases_{args.n}.npy", r.phases)
    (work / f"res_{args.method}_{args.n}.json").write_text(json.dumps(out))
    return 0


def child_gen(args) -> int:
    from dataclasses import replace

    from core.synth import ElectrodeParams, make_electrode

    e = make_electrode(replace(ElectrodeParams(), shape=(args.n,) * 3), rng=SEED)
    np.save(Path(args.work) / f"grey_{args.n}.npy", e.greyscale)
    return 0


def _sub(argv, timeout):
    p = subprocess.run([sys.executable, str(Path(__file__).resolve()), *argv], capture_output=True, text=True,
                       timeout=timeout)
    if p.returncode:
        raise RuntimeError(p.stderr[-2000:])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_common_args(ap)
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--model-max", type=int, default=256, help="largest N for the network methods")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-gen", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--method", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--work", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_gen:
        return child_gen(args)
    if args.child:
        return child(args)
    sizes = args.sizes or ([64] if args.quick else [64, 128, 192, 256])
    methods = [m for m in METHODS if m in args.methods]
    if "presegmented" in methods and "threshold" not in methods:
        methods.insert(0, "threshold")
    t_start = time.perf_counter()
    load0 = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_mem_") as work:
        for n in sizes:
            _sub(["--child-gen", "--n", str(n), "--work", work], 1800)
            for m in methods:
                if m.startswith(("model", "hybrid")) and n > args.model_max:
                    continue
                try:
                    _sub(["--child", "1", "--method", m, "--n", str(n), "--work", work], 1800)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    print(f"{m} {n}: failed {exc}", flush=True)
                    continue
                r = json.loads((Path(work) / f"res_{m}_{n}.json").read_text())
                row = {"method": m, "N": f"{n}^3", "wall s": r["wall_s"],
                       "measured MiB": r["peak_above"] / 2**20, "estimate MiB": r["estimate"] / 2**20,
                       "estimate / measured": r["estimate"] / max(r["peak_above"], 1),
                       "measured B/voxel": r["peak_above"] / n**3,
                       "address space MiB": r["vm_above"] / 2**20, "particles": r["particles"]}
                rows.append(row)
                print(json.dumps(row), flush=True)
    ratios = [r["estimate / measured"] for r in rows]
    lines = ["## Peak memory of an analysis, measured against the estimate (`bench/memory_estimate.py`)", "",
             *C.env_lines(), f"- script wall time: {time.perf_counter() - t_start:.0f} s",
             f"- load average at the start / end: {load0:.1f} / {os.getloadavg()[0]:.1f} (1 min) on "
             f"{os.cpu_count()} cores (peak memory does not depend on it; the wall times do)", "",
             "Input: `make_electrode(ElectrodeParams(shape=(N, N, N)), rng=7)` greyscale (uint16, 0.4 µm), "
             "memory-mapped; presegmented = the phases of the threshold run (uint8); deconvolved = "
             "`AnalysisParams(refine=\"on\", seeding=\"deconvolved\")` (the blurred scan's path). Each run in a fresh "
             "subprocess after a 48^3 warm-up of the same method. measured = VmHWM − VmRSS around "
             "`core.pipeline.run` (peak mark reset just before); estimate = `core.memory.estimate_peak_bytes` "
             "for the same shape, dtype and parameters; address space = VmPeak − VmSize (what `ulimit -v` sees; "
             "VmPeak cannot be reset, so a small run can show 0).", "",
             C.md_table(rows, digits=2)]
    if ratios:
        lines.append(f"Estimate / measured: min {min(ratios):.2f}, max {max(ratios):.2f} over {len(ratios)} runs "
                     "(> 1: the estimate is above the measured peak).")
    C.publish("memory_estimate", lines, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
