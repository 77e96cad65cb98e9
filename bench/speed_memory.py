"""Speed and peak memory: core.pipeline.run vs PoreSpy vs scikit-image.

Tools (each run in a fresh Python subprocess so that its peak memory is its own):

* ``ours``        core.pipeline.run(greyscale, spacing) end to end: phase segmentation,
                  particle separation and the full per-particle table.
* ``ours-phases`` core.pipeline.run(phases, spacing, presegmented=True) on the phases that
                  ``ours`` produced: separation + table only, the same job as the baselines.
* ``skimage``     on the NMC mask of those phases: scipy.ndimage.distance_transform_edt,
                  skimage.feature.peak_local_max (min_distance 5 voxels = 2 µm, our
                  ``min_distance_um``), skimage.segmentation.watershed,
                  skimage.measure.regionprops_table (label, area, centroid, bbox,
                  equivalent_diameter_area).
* ``porespy``     on the NMC mask: porespy.filters.snow_partitioning (defaults) and
                  porespy.metrics.regionprops_3D, then per region volume, centroid and
                  surface_area (PoreSpy's blurred marching cubes; regionprops_3D is lazy, so
                  the properties are read to make it do the work), sphericity from those.

The baselines get the phases our pipeline produced and do particle separation and
measurement only; ``ours`` also segments the greyscale, which favours the baselines.
They also measure less than our table (no interface areas, detachment, cracks, depth).

Input: one synthetic electrode, make_electrode(ElectrodeParams(shape=(N, N, N)), rng=7),
generated in its own subprocess and saved as .npy in a temporary folder; every tool
loads it memory-mapped (np.load(mmap_mode='r')).  For N > 256 (default ``--gen auto``)
the N/2 electrode is mirror-tiled 2x2x2 (each copy reflected, so the structure is
continuous across the seams) instead of generating N^3 directly.

Measured in the child: wall time of the tool call (after imports, a warm-up on a
48^3 electrode so numba compilation is not timed, and loading the input), peak RSS
of the measured call (the peak mark is reset via /proc/self/clear_refs after the
warm-up; read as VmHWM, which equals getrusage ru_maxrss except that ru_maxrss also
carries the spawning parent's RSS across exec), RSS right after memory-mapping the
input (baseline), and bytes/voxel = (peak - baseline) / N^3.  Input pages the tool reads through the memory
map count in its RSS (2 B/voxel for the uint16 greyscale, 1 B/voxel for the phases).

Usage:  python bench/speed_memory.py [--quick] [--sizes 256 512] [--tools ...] [--baseline-sizes 256] [--timeout 1500]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)

TOOLS = ("ours", "ours-phases", "skimage", "porespy")
SPACING = (0.4, 0.4, 0.4)  # ElectrodeParams default
#: ``--input packing``: the sphere packing of issue 15's table (``core.synth.make_sphere_packing``, median radius 7
#: voxels of 1 µm, log-normal σ 0.35 clipped to 4-15, Gaussian blur 1.0 voxel, noise 0.09 of the pore-NMC contrast),
#: on which the default analysis measures the blur, refines the phases and seeds on the deconvolved mask: the slow
#: path, which the demo electrode (blur 0.75 voxel) does not take.
PACKING = {"radius_median_um": 7.0, "radius_min_um": 4.0, "radius_max_um": 15.0, "blur_voxels": 1.0,
           "noise_contrast": 0.09}
PACKING_SPACING = (1.0, 1.0, 1.0)


def _spacing(kind: str) -> tuple[float, float, float]:
    return PACKING_SPACING if kind == "packing" else SPACING


def _make(kind: str, n: int):
    """The input of ``--input kind`` at n³ voxels (a ``core.synth`` electrode: greyscale, phases, labels, table)."""
    from dataclasses import replace

    from core.synth import ElectrodeParams, PackingParams, make_electrode, make_sphere_packing

    if kind == "packing":
        return make_sphere_packing(PackingParams(shape=(n, n, n), **PACKING), rng=SEED)
    return make_electrode(replace(ElectrodeParams(), shape=(n, n, n)), rng=SEED)
SEED = 7
TARGET_BPV = 8.0
TARGET_SPEEDUP = 8.0  # issue 15: whole process at 256^3 at least 8x faster than the PoreSpy pipeline
TARGET_512_S = 25.0  # issue 15: 512^3 end to end within 25 s on the 2-core machine
TARGET_SPEEDUP_512 = 15.0  # issue 15: and at least 15x PoreSpy's time in the same run
BUSY_LOAD = 2.5  # a 1-minute load average above this as a tool starts: other work shares the 2 cores


# --------------------------------------------------------------------------- child side

def _maxrss() -> int:
    """Peak RSS of this process (bytes): VmHWM where /proc exists, else ru_maxrss.

    Linux's ``ru_maxrss`` of a freshly exec'd child is at least the RSS its
    *parent* had when it spawned the child (the kernel carries the old memory
    map's high-water mark across exec), and resetting the mark does not clear
    that part; VmHWM is the child's own memory map only.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return _ru_maxrss()


def _ru_maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (ru_maxrss / VmHWM) of this process; False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


class Progress:
    """Writes partial timings to a JSON file, so that a killed run still tells how far it got.

    With ``sample=True`` a thread also samples the RSS every 10 ms and keeps the
    maximum per stage (the stage is the last ``stage=`` given), to tell which step
    sets the peak.
    """

    def __init__(self, path: Path, sample: bool = False):
        self.path, self.t0, self.data = path, time.perf_counter(), {}
        self.stage = "start"
        self.stage_peak: dict[str, int] = {}
        self._stop = None
        if sample:
            import threading

            import psutil

            proc = psutil.Process()
            self._stop = threading.Event()

            def loop():
                while not self._stop.wait(0.01):
                    rss = proc.memory_info().rss
                    st = self.stage
                    if rss > self.stage_peak.get(st, 0):
                        self.stage_peak[st] = rss

            self._thread = threading.Thread(target=loop, daemon=True)
            self._thread.start()

    def __call__(self, **kv):
        if "stage" in kv:
            self.stage = str(kv["stage"])
        self.data.update(kv, elapsed_s=time.perf_counter() - self.t0)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        os.replace(tmp, self.path)

    def stop(self) -> dict[str, int]:
        if self._stop is not None:
            self._stop.set()
            self._thread.join()
        return dict(self.stage_peak)


class CpuSteps:
    """CPU time (``time.process_time``: every thread of the process) per pipeline step, from the progress reports.

    The time between two reports goes to the step that made the first (the
    pipeline reports a sub-step as it starts it): phases below 0.35 of the
    overall fraction, particles below 0.85, metrics from there.  Less sensitive
    to other work on the machine than the wall time (waiting for a core is not
    counted; waiting for memory is).  Also per stage message (digits as #).
    """

    def __init__(self, prog):
        self.prog, self.t, self.key, self.msg = prog, time.process_time(), "phases", "start"
        self.steps: dict[str, float] = {}
        self.stages: dict[str, float] = {}

    def _close(self):
        now = time.process_time()
        self.steps[self.key] = self.steps.get(self.key, 0.0) + now - self.t
        self.stages[self.msg] = self.stages.get(self.msg, 0.0) + now - self.t
        self.t = now

    def __call__(self, f, m):
        import re

        self._close()
        self.key = "phases" if f < 0.35 else ("particles" if f < 0.85 else "metrics")
        self.msg = re.sub(r"\d+", "#", str(m))
        self.prog(stage=m, fraction=round(f, 3))

    def result(self) -> dict:
        self._close()
        return {"cpu_steps_s": self.steps, "cpu_total_s": sum(self.steps.values()), "cpu_stages_s": self.stages}


def tool_ours(grey, sp, prog, save):
    from core.pipeline import run

    cpu = CpuSteps(prog)
    r = run(grey, spacing=sp, progress=cpu)
    info = cpu.result()
    if save:
        save("phases", r.phases)
        save("labels", r.labels)
    return {"n_regions": int(r.labels.max()), "steps_s": r.provenance["timings_s"], **info}


def tool_ours_phases(phases, sp, prog, save):
    from core.pipeline import run

    cpu = CpuSteps(prog)
    r = run(phases, spacing=sp, presegmented=True, progress=cpu)
    info = cpu.result()
    if save:
        save("labels", r.labels)
    return {"n_regions": int(r.labels.max()), "steps_s": r.provenance["timings_s"], **info}


def tool_skimage(phases, sp, prog, save):
    from scipy import ndimage as ndi
    from skimage.feature import peak_local_max
    from skimage.measure import regionprops_table
    from skimage.segmentation import watershed

    steps = {}
    prog(stage="distance_transform_edt")
    t = time.perf_counter()
    nmc = np.asarray(phases) == 2
    dt = ndi.distance_transform_edt(nmc, sampling=sp)
    steps["edt_s"] = time.perf_counter() - t
    prog(stage="peak_local_max", steps_s=steps)
    t = time.perf_counter()
    min_dist = max(1, int(round(2.0 / min(sp))))
    coords = peak_local_max(dt, min_distance=min_dist, threshold_abs=1e-9, exclude_border=False)
    markers = np.zeros(nmc.shape, np.int32)
    markers[tuple(coords.T)] = np.arange(1, len(coords) + 1, dtype=np.int32)
    steps["peaks_s"] = time.perf_counter() - t
    prog(stage="watershed", steps_s=steps)
    t = time.perf_counter()
    labels = watershed(-dt, markers, mask=nmc)
    del markers, dt
    steps["watershed_s"] = time.perf_counter() - t
    prog(stage="regionprops_table", steps_s=steps)
    t = time.perf_counter()
    props = regionprops_table(labels, properties=("label", "area", "centroid", "bbox", "equivalent_diameter_area"),
                              spacing=sp)
    steps["regionprops_s"] = time.perf_counter() - t
    if save:
        save("labels", labels)
    return {"n_regions": int(len(props["label"])), "n_markers": int(len(coords)), "steps_s": steps}


def tool_porespy(phases, sp, prog, save):
    import porespy as ps

    steps = {}
    prog(stage="snow_partitioning")
    t = time.perf_counter()
    nmc = np.asarray(phases) == 2
    snow = ps.filters.snow_partitioning(nmc)
    regions = snow.regions * nmc
    del snow
    steps["snow_s"] = time.perf_counter() - t
    prog(stage="regionprops_3D", steps_s=steps)
    t = time.perf_counter()
    props = ps.metrics.regionprops_3D(regions)
    n = len(props)
    rows = []
    for i, p in enumerate(props):
        vol = p.volume
        sa = p.surface_area
        rows.append((p.label, vol, *p.centroid, sa, (36 * np.pi * vol**2) ** (1 / 3) / sa if sa else np.nan))
        if i % 50 == 0:
            prog(stage="regionprops_3D", regions_done=i + 1, regions_total=n,
                 steps_s={**steps, "regionprops_s": time.perf_counter() - t})
    steps["regionprops_s"] = time.perf_counter() - t
    if save:
        save("labels", regions)
    return {"n_regions": n, "steps_s": steps}


TOOL_FUNCS = {"ours": tool_ours, "ours-phases": tool_ours_phases, "skimage": tool_skimage, "porespy": tool_porespy}


def child_tool(args) -> int:
    """Run one tool on the input, measure it, then let it save its outputs (phases / labels)."""
    work = Path(args.work)
    tool = args.child_tool
    func = TOOL_FUNCS[tool]
    # memory-mapped read-only as the measured input is, so that numba compiles (or loads from its cache) the same
    # signatures (a read-only array is another type) before the timing, not during it
    warm_in = np.load(work / ("warm_grey.npy" if tool == "ours" else "warm_phases.npy"), mmap_mode="r")
    func(warm_in, _spacing(args.input), lambda **kv: None, None)
    del warm_in
    gc.collect()
    rss_ready = _rss()
    maxrss_ready = _maxrss()
    inp = np.load(work / (f"grey_{args.n}.npy" if tool == "ours" else f"phases_{args.n}.npy"), mmap_mode="r")
    # imports, numba loading and the warm-up may have peaked above what the run will need: reset the mark
    prog = Progress(work / f"progress_{tool}_{args.n}.json", sample=True)
    peak_reset = _reset_peak()
    baseline = _rss()
    prog(stage="start", baseline_rss=baseline)
    timing = {}

    def save(name, arr):
        # the clock and the peak are read before the first save
        if "wall_s" not in timing:
            timing["wall_s"] = time.perf_counter() - t0
            timing["peak_rss"] = _maxrss()
            timing["ru_maxrss"] = _ru_maxrss()
            prog.stage = "saving outputs (not measured)"
            (work / f"result_{tool}_{args.n}.json").write_text(json.dumps(  # provisional, in case saving is killed
                {"tool": tool, "n": args.n, **timing, "baseline_rss": baseline, "peak_reset": peak_reset,
                 "maxrss_before_input": maxrss_ready, "input_dtype": str(inp.dtype)}))
        target = work / (f"phases_{args.n}.npy" if (tool == "ours" and name == "phases") else
                         f"{name}_{tool}_{args.n}.npy")
        np.save(target, np.asarray(arr))

    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    info = func(inp, _spacing(args.input), prog, save)
    timing["load_1min"] = [load_before, os.getloadavg()[0]]
    if "wall_s" not in timing:
        timing["wall_s"] = time.perf_counter() - t0
        timing["peak_rss"] = _maxrss()
        timing["ru_maxrss"] = _ru_maxrss()
    timing["stage_peak_rss"] = prog.stop()
    out = {"tool": tool, "n": args.n, **timing, "baseline_rss": baseline, "rss_ready": rss_ready,
           "peak_reset": peak_reset,
           "maxrss_before_input": maxrss_ready, "input_dtype": str(inp.dtype), **info}
    (work / f"result_{tool}_{args.n}.json").write_text(json.dumps(out))
    prog(stage="done", wall_s=timing["wall_s"])
    return 0


def child_gen(args) -> int:
    work = Path(args.work)
    t0 = time.perf_counter()
    warm = _make(args.input, 48)
    np.save(work / "warm_grey.npy", warm.greyscale)
    np.save(work / "warm_phases.npy", warm.phases)
    del warm
    n = args.n
    how = args.gen
    if how == "auto":
        how = "direct" if n <= 256 else "mirror"
    if how == "direct":
        e = _make(args.input, n)
        np.save(work / f"grey_{n}.npy", e.greyscale)
        np.save(work / f"truth_{n}.npy", e.labels)
        info = {"gen": "direct", "n_true": int(len(e.table))}
    else:
        if n % 2:
            raise ValueError("--gen mirror needs an even size")
        h = n // 2
        e = _make(args.input, h)
        g = e.greyscale
        for ax in range(3):
            g = np.concatenate([g, np.flip(g, axis=ax)], axis=ax)
        np.save(work / f"grey_{n}.npy", np.ascontiguousarray(g))
        info = {"gen": f"mirror-tiled 2x2x2 from {h}^3", "n_true": None}
    info.update(gen_s=time.perf_counter() - t0, gen_peak_rss=_maxrss())
    (work / f"gen_{n}.json").write_text(json.dumps(info))
    return 0


# --------------------------------------------------------------------------- parent side

def _child(argv: list[str], timeout: float, env=None) -> tuple[str, float]:
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, str(Path(__file__).resolve()), *argv], timeout=timeout,
                           capture_output=True, text=True, env=env)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - t0
    if p.returncode != 0:
        tail = (p.stderr or p.stdout)[-3000:]
        return f"failed (exit {p.returncode}): {tail}", time.perf_counter() - t0
    return "ok", time.perf_counter() - t0


def _f1(truth_path: Path, labels_path: Path) -> float | None:
    if not (truth_path.exists() and labels_path.exists()):
        return None
    from core.evaluate import instance_scores

    t = np.load(truth_path, mmap_mode="r")
    p = np.load(labels_path, mmap_mode="r")
    sc = instance_scores(np.asarray(t), np.asarray(p), thresholds=(0.5,))
    return float(sc["f1"].iloc[0])


def _cpu_stage_lines(results) -> list[str]:
    """The CPU seconds per progress message of each ours run, as lines (none when not recorded)."""
    lines = []
    for r in results:
        st = r.get("cpu_stages_s")
        if st:
            lines.append(f"- CPU s per stage, {r['n']}^3 {r['tool']}: " +
                         "; ".join(f"{k} {v:.1f}" for k, v in st.items() if v >= 0.05))
    return lines + ([""] if lines else [])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_common_args(ap)
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="cube sizes N (default 256 512; --quick: 96)")
    ap.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    ap.add_argument("--baseline-sizes", type=int, nargs="+", default=None,
                    help="run skimage/porespy only at these sizes (default: every size)")
    ap.add_argument("--timeout", type=float, default=1500.0, help="seconds per tool run (default 1500)")
    ap.add_argument("--gen", choices=("auto", "direct", "mirror"), default="auto",
                    help="input generation: direct N^3, or mirror-tiling of an (N/2)^3 electrode "
                         "(auto: direct up to 256, mirror above)")
    ap.add_argument("--input", choices=("electrode", "packing"), default="electrode",
                    help="electrode: the demo generator's electrode (blur 0.75 voxel, 0.4 µm voxels); packing: issue "
                         "15's sphere packing (blur 1.0, noise 0.09, radius 7 voxels of 1 µm: the blurred-scan path)")
    ap.add_argument("--workdir", default=None, help="folder for the temporary .npy inputs (default: a new temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--section", default=None, help="RESULTS.md section name (default speed_memory[_quick])")
    # child mode (internal)
    ap.add_argument("--child-gen", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child-tool", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--work", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_gen:
        return child_gen(args)
    if args.child_tool:
        return child_tool(args)

    sizes = args.sizes or ([96] if args.quick else [256, 512])
    tools = [t for t in TOOLS if t in args.tools]
    if any(t != "ours" for t in tools) and "ours" not in tools:
        print("note: the baselines need the phases from 'ours'; adding it")
        tools = ["ours"] + tools
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_speed_"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"temporary inputs in {work}")
    t_start = time.perf_counter()
    results, gens = [], {}
    try:
        for n in sizes:
            status, dt = _child(["--child-gen", "--n", str(n), "--work", str(work), "--gen", args.gen,
                                 "--input", args.input],
                                timeout=max(args.timeout, 3600))
            if status != "ok":
                print(f"N={n}: input generation {status}")
                gens[n] = {"gen": f"generation {status.splitlines()[0]}"}
                continue
            gens[n] = json.loads((work / f"gen_{n}.json").read_text())
            print(f"N={n}: input {gens[n]['gen']} in {gens[n]['gen_s']:.0f} s", flush=True)
            for tool in tools:
                if tool in ("skimage", "porespy") and args.baseline_sizes and n not in args.baseline_sizes:
                    continue
                if tool != "ours" and not (work / f"phases_{n}.npy").exists():
                    results.append({"n": n, "tool": tool, "status": "skipped (no phases from ours)"})
                    continue
                prog_path = work / f"progress_{tool}_{n}.json"
                prog_path.unlink(missing_ok=True)
                status, elapsed = _child(["--child-tool", tool, "--n", str(n), "--work", str(work),
                                          "--input", args.input],
                                         timeout=args.timeout)
                row = {"n": n, "tool": tool, "status": status.splitlines()[0] if status else status,
                       "elapsed_s": elapsed}
                res_path = work / f"result_{tool}_{n}.json"
                if res_path.exists():  # measured (a timeout here hit only the saving of outputs)
                    row.update(json.loads(res_path.read_text()))
                    if status != "ok":
                        row["status"] = f"measured, then {row['status']} while saving outputs"
                else:
                    if status != "ok":
                        print(status)
                    if prog_path.exists():
                        row["partial"] = json.loads(prog_path.read_text())
                results.append(row)
                msg = (f"{row['wall_s']:.1f} s, peak {row['peak_rss'] / 2**20:.0f} MiB"
                       if "wall_s" in row else row["status"])
                print(f"  N={n} {tool}: {msg}", flush=True)
            # accuracy check after all tools ran, so that the parent stays small while they run
            for row in results:
                if row["n"] == n:
                    row["f1"] = _f1(work / f"truth_{n}.npy", work / f"labels_{row['tool']}_{n}.npy")
            for f in work.glob(f"*_{n}.npy"):
                f.unlink()
    finally:
        if not args.keep and not args.workdir:
            for f in work.iterdir():
                f.unlink()
            work.rmdir()
    total = time.perf_counter() - t_start

    # ---------------------------------------------------------------- report
    MiB = 2**20
    rows = []
    # each tool uses at most the two cores: a 1-minute load above 2.5 as a child starts means other work ran too
    busy = any(r.get("load_1min", [0.0, 0.0])[0] > BUSY_LOAD for r in results)
    for r in results:
        n = r["n"]
        vox = n**3
        row = {"N": f"{n}^3", "tool": r["tool"]}
        if "wall_s" in r:
            row.update({
                "wall s": r["wall_s"],
                "peak RSS MiB": r["peak_rss"] / MiB,
                "baseline RSS MiB": r["baseline_rss"] / MiB,
                "peak−baseline MiB": (r["peak_rss"] - r["baseline_rss"]) / MiB,
                "B/voxel": (r["peak_rss"] - r["baseline_rss"]) / vox,
                "input": r["input_dtype"],
                "particles": r.get("n_regions"),
                "F1@0.5 vs truth": r.get("f1"),
                "steps (s)": ", ".join(f"{k.removesuffix('_s')} {v:.1f}" for k, v in r.get("steps_s", {}).items()),
                "load (1 min) before, after": ("{:.1f}, {:.1f}".format(*r["load_1min"]) if "load_1min" in r
                                               else None),
                "CPU s (steps)": (f"{r['cpu_total_s']:.1f} (" + ", ".join(f"{k} {v:.1f}" for k, v in
                                  r["cpu_steps_s"].items()) + ")") if "cpu_total_s" in r else None,
            })
            sp_ = {k: v for k, v in r.get("stage_peak_rss", {}).items() if not k.startswith("saving")}
            if sp_:
                st, v = max(sp_.items(), key=lambda kv: kv[1])
                row["peak stage (sampled)"] = f"{st} (+{(v - r['baseline_rss']) / MiB:.0f} MiB)"
            if not r.get("peak_reset") and r["peak_rss"] <= r["maxrss_before_input"]:
                row["steps (s)"] += " [peak reached before the input was loaded: B/voxel is a lower bound]"
        else:
            p = r.get("partial", {})
            desc = r["status"]
            if r["status"] == "timeout":
                ran = p.get("elapsed_s")
                desc = f"TIMEOUT: killed after {r['elapsed_s']:.0f} s"
                if ran is not None:
                    desc += f", {ran:.0f} s of it in the measured call"
                if p:
                    parts = [f"last stage {p.get('stage')!r}"]
                    if "regions_done" in p:
                        parts.append(f"{p['regions_done']}/{p['regions_total']} regions measured")
                    parts += [f"{k.removesuffix('_s')} {v:.0f} s" for k, v in p.get("steps_s", {}).items()]
                    desc += " (" + ", ".join(parts) + ")"
            row.update({"wall s": desc})
        rows.append(row)

    ratio_lines = []
    for n in sizes:
        by = {r["tool"]: r for r in results if r["n"] == n}
        ours = by.get("ours")
        if not ours or "wall_s" not in ours:
            continue
        bpv = (ours["peak_rss"] - ours["baseline_rss"]) / n**3
        ratio_lines.append(f"- **{n}^3** (input: {gens[n]['gen']}): ours {ours['wall_s']:.1f} s end to end, "
                           f"peak {bpv:.2f} B/voxel above baseline ({'meets' if bpv <= TARGET_BPV else 'MISSES'} "
                           f"≤ {TARGET_BPV:g} B/voxel; absolute peak {ours['peak_rss'] / MiB:.0f} MiB = "
                           f"{ours['peak_rss'] / n**3:.1f} B/voxel)" +
                           (f"; target ≤ {TARGET_512_S:g} s at 512^3: "
                            f"{'met' if ours['wall_s'] <= TARGET_512_S else 'NOT met'}." if n == 512 else "."))
        for tool, name in (("porespy", "PoreSpy"), ("skimage", "scikit-image")):
            b = by.get(tool)
            if not b:
                continue
            if "wall_s" in b:
                sp = b["wall_s"] / ours["wall_s"]
                line = f"  - {name} time / ours = {sp:.2f}"
                op = by.get("ours-phases")
                if op and "wall_s" in op:
                    line += f" (vs ours on the same phases: {b['wall_s'] / op['wall_s']:.2f})"
                if tool == "porespy":
                    want = TARGET_SPEEDUP_512 if n == 512 else TARGET_SPEEDUP
                    line += f" — target ≥ {want:g}× faster than PoreSpy: {'met' if sp >= want else 'NOT met'}"
                line += (f"; {name} peak {(b['peak_rss'] - b['baseline_rss']) / n**3:.2f} B/voxel above baseline.")
            else:
                ran = b.get("partial", {}).get("elapsed_s")
                if b["status"] == "timeout" and ran is not None:
                    line = (f"  - {name}: timeout, killed {ran:.0f} s into the measured call, so its time / ours "
                            f"> {ran / ours['wall_s']:.1f}")
                else:
                    line = f"  - {name}: {b['status']}"
            ratio_lines.append(line)

    lines = [f"## Speed and peak memory (`bench/speed_memory.py`){' — QUICK smoke run' if args.quick else ''}", "",
             *C.env_lines(), f"- script wall time: {total:.0f} s",
             ("- **indicative only**: other work was running on this 2-core machine at the same time"
              if busy else "- nothing else ran on the machine during this run (load averages in the table)")
             if not args.quick else "- smoke run: numbers are not meaningful at this size", "",
             (f"Input: `make_electrode(ElectrodeParams(shape=(N, N, N)), rng={SEED})` greyscale (uint16, spacing "
              f"{SPACING} µm); " if args.input == "electrode" else
              f"Input: `make_sphere_packing(PackingParams(shape=(N, N, N), {', '.join(f'{k}={v}' for k, v in PACKING.items())}), "
              f"rng={SEED})` greyscale (issue 15's table: uint16, spacing {PACKING_SPACING} µm; the default analysis "
              f"refines the phases and seeds on the deconvolved mask); ") + "; ".join(f"{n}^3: {g['gen']}" + (f", {g['n_true']} true particles" if g.get("n_true") else "")
                                          for n, g in gens.items()) + ". "
             "Each tool runs in a fresh subprocess (imports and a warm-up on a 48^3 electrode first, so numba "
             "compilation is not timed), loads its input memory-mapped, and is timed around the tool call only. "
             "**ours** = `core.pipeline.run` on the greyscale (segmentation + separation + full particle table); "
             "**ours-phases** = the same on the phases ours produced (`presegmented=True`); **skimage** and "
             "**porespy** get those same phases (NMC mask) and do particle separation + measurement only — "
             "our end-to-end time includes segmentation and theirs does not, which favours them; they also "
             "measure less (skimage: label, area, centroid, bbox, equivalent diameter; PoreSpy: volume, centroid, "
             "marching-cubes surface area, sphericity; no interface areas / detachment / cracks).",
             "",
             "Memory: peak RSS = the child's high-water mark VmHWM (what `ru_maxrss` reports, minus the part "
             "Linux's `ru_maxrss` inherits from the spawning parent across exec), reset (`/proc/self/clear_refs` "
             "= 5) after imports, warm-up and memory-mapping the input, so that it is the peak of the measured "
             "call (numba/LLVM loading and the warm-up can peak higher than a small run); baseline = RSS at that "
             "moment (interpreter + libraries + warm-up leftovers); B/voxel = (peak − baseline) / N³. Input pages read "
             "through the memory map count in the peak (2 B/voxel for the uint16 greyscale of ours, 1 B/voxel for "
             "the uint8 phases of the others). F1@0.5 vs truth = instance F1 against the generator's particle "
             "labels (direct generation only), i.e. segmentation + separation accuracy of each pipeline. "
             "'peak stage' = the step during which a 10 ms RSS sampler saw the highest RSS (above baseline).",
             "", C.md_table(rows, ["N", "tool", "wall s", "peak RSS MiB", "baseline RSS MiB", "peak−baseline MiB",
                                   "B/voxel", "input", "particles", "F1@0.5 vs truth", "steps (s)", "CPU s (steps)", "load (1 min) before, after",
                                   "peak stage (sampled)"], digits=2),
             "CPU s = `time.process_time()` of the tool's process over the call (every thread), split between "
             "the pipeline's steps at its progress reports (phases below 0.35 of the overall fraction, particles "
             "below 0.85, metrics after): unlike the wall time it does not count waiting for a core, so it says "
             "more when other work shares the machine; on 2 free cores the wall time can be up to half of it "
             "where a step runs on both (edt) and is about it elsewhere.", "",
             *_cpu_stage_lines(results),
             f"Ratios and targets (≤ {TARGET_BPV:g} B/voxel; ≥ {TARGET_SPEEDUP:g}× faster than PoreSpy, "
             f"≥ {TARGET_SPEEDUP_512:g}× at 512^3; 512^3 ≤ "
             f"{TARGET_512_S:g} s):", "", *ratio_lines]
    C.publish("speed_memory", lines, args, section=args.section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
