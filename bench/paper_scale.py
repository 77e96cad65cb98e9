"""Paper-size scans on the chunked engine (issue 12): same answer, bounded memory, parallel speed-up.

Each run is ``python -m core analyze`` in a child process (``nice -n 10``), timed
from outside, with the anonymous memory (``RssAnon`` of ``/proc/PID/status``)
of the whole process tree (the CLI, the Dask scheduler and nanny/worker
processes) summed and sampled every 0.25 s; the peak of that sum is reported.
The load average of the machine (shared by other jobs) is read before and
after each run.

Parts (``--parts``):

``same``
    an N³ synthetic electrode (``--same-size``, default 256) analysed whole
    and with ``--chunk-size C --workers 2`` (``--same-chunk``, default 96):
    identical phases (voxel for voxel; NMC volume and summed NMC–CBD face
    area from the phase volumes), particle counts, F1@0.5 of one labelling
    against the other (:func:`core.evaluate.instance_scores`).
``memory``
    an M³ uint16 volume (``--mem-size``, default 768) tiled by mirroring the
    N³ electrode, analysed with ``--chunk-size 128 --workers 2``: wall time,
    peak anonymous memory of the tree.
``speedup``
    the chunked path at ``--speed-size`` (default 256) with 1 and 2 workers.
``seed``
    a synthetic electrode of the seed study's size and voxel (1324 × 1985 × 492
    at 0.1 µm, particles ~10 µm, :func:`make_seed`) with ``--seed-chunk`` and
    ``--seed-workers``: wall time, peak anonymous memory of the tree.

``--prepare`` writes the input volumes of the parts and stops (so a timed
session spends its time on the runs).

Writes the section ``paper_scale`` of RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from _common import REPO_ROOT, add_common_args, env_lines, md_table, publish

SEED = 12


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree_anon(root: int) -> dict[int, int]:
    """``RssAnon`` (bytes) of ``root`` and each of its descendants, by process id."""
    kids = _children()
    todo, out = [root], {}
    while todo:
        pid = todo.pop()
        todo.extend(kids.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("RssAnon:"):
                    out[pid] = int(line.split()[1]) * 1024
                    break
        except OSError:
            pass
    return out


def tree_anon_bytes(root: int) -> int:
    """Sum of ``RssAnon`` over ``root`` and all its descendants."""
    return sum(tree_anon(root).values())


def load_avg() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def run_cli(args: list[str], timeout: float) -> dict:
    """``nice -n 10 python -m core ARGS``: wall time, peak tree RssAnon, exit status, load before/after."""
    import resource

    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    before = load_avg()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.Popen(["nice", "-n", "10", sys.executable, "-m", "core", *args], cwd=REPO_ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak, at_peak = [0], [[]]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            per = tree_anon(p.pid)
            if sum(per.values()) > peak[0]:
                peak[0] = sum(per.values())
                at_peak[0] = sorted(per.values(), reverse=True)
            stop.wait(0.25)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        out, _ = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        for pid in [p.pid]:
            os.kill(pid, 15)
        out, _ = p.communicate()
        rc = "timeout"
    stop.set()
    th.join()
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the tree's CPU time: its processes are reaped by their parents
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    kills = out.count("still alive")  # a worker the nanny had to kill at shutdown (seconds of wall time)
    print(f"  rc={rc} wall={wall:.1f}s cpu={cpu:.1f}s peak_anon={peak[0] / 2**30:.2f} GiB load {before} -> {load_avg()}"
          + (f" ({kills} worker(s) killed at shutdown)" if kills else ""), flush=True)
    if rc != 0:
        print(out[-3000:])
    by_process = " + ".join(f"{b / 2**20:.0f}" for b in at_peak[0])
    print(f"  at the peak, MiB by process: {by_process}", flush=True)
    return {"rc": rc, "wall_s": wall, "cpu_s": cpu, "peak_anon_gib": peak[0] / 2**30, "by_process_mib": by_process, "load_before": before,
            "load_after": load_avg(), "log": out}


def make_grey(n: int, work: Path) -> Path:
    from dataclasses import replace

    from core.synth import ElectrodeParams, make_electrode

    path = work / f"grey_{n}.npy"
    if not path.exists():
        e = make_electrode(replace(ElectrodeParams(), shape=(n, n, n)), rng=SEED)
        np.save(path, e.greyscale)
        (work / f"spacing_{n}.json").write_text(json.dumps(list(e.spacing)))
    return path


def mirror_tile(src: Path, m: int, work: Path) -> Path:
    """An m³ volume of ``src`` (n³) mirrored along each axis as often as needed, written slab by slab."""
    path = work / f"tiled_{m}.npy"
    if path.exists():
        return path
    g = np.load(src, mmap_mode="r")
    n = g.shape[0]
    idx = np.array([(i % (2 * n)) if (i % (2 * n)) < n else 2 * n - 1 - (i % (2 * n)) for i in range(m)])
    out = np.lib.format.open_memmap(path, mode="w+", dtype=g.dtype, shape=(m, m, m))
    yx = np.ix_(idx, idx)
    for z in range(m):
        out[z] = g[idx[z]][yx]
    out.flush()
    del out
    return path


SEED_SHAPE = (1324, 1985, 492)  # the seed study's main volume (z, y, x) at 0.1 µm
SEED_SPACING = 0.1
SEED_UPSAMPLE = 4


def make_seed(work: Path, shape=SEED_SHAPE) -> Path:
    """A synthetic electrode of the seed study's size: particles ~10 µm (~100 voxels) across at 0.1 µm, uint16.

    Generated at 0.4 µm (``shape / 4``, median particle radius 5 µm) and
    upsampled 4× by linear interpolation (``scipy.ndimage.zoom`` with
    ``grid_mode``), slab by slab along z (one coarse slice of overlap each side,
    so the slabs join seamlessly), written to a ``.npy`` memmap: never held
    whole.  The noise is smoother than a real scan's at 0.1 µm (it is the
    0.4 µm noise, interpolated).
    """
    from dataclasses import replace

    from scipy import ndimage as ndi

    from core.synth import ElectrodeParams, make_electrode

    path = work / f"seed_{'x'.join(map(str, shape))}.npy"
    if path.exists():
        return path
    f = SEED_UPSAMPLE
    coarse_shape = tuple(-(-n // f) for n in shape)
    e = make_electrode(replace(ElectrodeParams(), shape=coarse_shape, spacing=(SEED_SPACING * f,) * 3,
                               radius_median_um=5.0, radius_min_um=2.4, radius_max_um=10.0), rng=SEED)
    g = np.asarray(e.greyscale, np.float32)
    del e
    out = np.lib.format.open_memmap(work / "seed.tmp.npy", mode="w+", dtype=np.uint16, shape=shape)
    k = 8  # coarse slices a slab
    for z0 in range(0, coarse_shape[0], k):
        a, b = max(0, z0 - 1), min(coarse_shape[0], z0 + k + 1)
        fine = ndi.zoom(g[a:b], f, order=1, mode="nearest", grid_mode=True)
        lo = (z0 - a) * f
        n = min(k * f, shape[0] - z0 * f)
        out[z0 * f: z0 * f + n] = np.clip(np.rint(fine[lo: lo + n, : shape[1], : shape[2]]), 0, 65535)
    out.flush()
    del out
    (work / "seed.tmp.npy").rename(path)
    return path


def part_seed(work: Path, workers: int, chunk: int, timeout: float, max_diameter: float | None,
              shape=SEED_SHAPE, coarsen: str | None = None) -> list[str]:
    seed = make_seed(work, shape)
    z, y, x = shape
    print(f"seed: {z}x{y}x{x} at {SEED_SPACING} µm, chunks of {chunk}, {workers} workers"
          + (f", --coarsen {coarsen}" if coarsen else ""), flush=True)
    extra = ["--max-diameter", str(max_diameter)] if max_diameter else []
    extra += ["--coarsen", coarsen] if coarsen else []
    r = run_cli(["analyze", str(seed), "--out", str(work / "seed_out"), "--overwrite", "-q", "--chunk-size",
                 str(chunk), "--workers", str(workers), "--spacing", *[str(SEED_SPACING)] * 3, *extra], timeout)
    row = {"volume": f"{z}×{y}×{x} uint16 ({z * y * x / 1e9:.2f} G voxels, {SEED_SPACING} µm)", "exit": str(r["rc"]),
           "wall (s)": r["wall_s"], "CPU of the tree (s)": r["cpu_s"], "peak anon of the tree (GiB)": r["peak_anon_gib"],
           "load before → after": f"{r['load_before']} → {r['load_after']}"}
    row.update(_run_facts(work / "seed_out", r))
    row["at the peak (MiB by process)"] = r["by_process_mib"]
    if r["rc"] == 0:  # what the 2048³ estimate on paper (part 'paper') scales from
        (work / "seed_measured.json").write_text(json.dumps(
            {"shape": list(shape), "workers": workers, "chunk": chunk, "wall_s": r["wall_s"], "cpu_s": r["cpu_s"],
             "peak_anon_gib": r["peak_anon_gib"], "by_process_mib": r["by_process_mib"],
             "load": f"{r['load_before']} → {r['load_after']}",
             "timings_s": json.loads((work / "seed_out" / "run.json").read_text())["provenance"]["timings_s"],
             "stores_bytes": {name: sum(f.stat().st_size for f in (work / "seed_out" / name).rglob("*") if f.is_file())
                              for name in ("phases.zarr", "labels.zarr")}}, indent=1))
    given = (f" --max-diameter {max_diameter}" if max_diameter else "") + (f" --coarsen {coarsen}" if coarsen else "")
    return [f"### Seed size: {z}×{y}×{x} at {SEED_SPACING} µm with --chunk-size {chunk} --workers {workers}{given}", "",
            md_table([row]), "(acceptance: ≤ 8 min and ≤ 2 GiB anonymous memory; a run that timed out shows the peak "
            "up to when it was stopped)", ""]


def part_paper(work: Path, side: int = 2048, nodes: int = 16, cores: int = 2) -> list[str]:
    """A ``side``³ volume at the seed study's voxel and particle size on ``nodes`` × ``cores``, on paper.

    Scaled from the last seed-size run of this work folder (``seed_measured.json``, written by part
    'seed'): every step of the chunked engine is a map over chunks or a reduction of per-chunk results, so
    its CPU time grows with the voxels (the particles and the halos per chunk stay the same), and a cluster
    divides it among its cores.  Two estimates: *ideal* = the measured CPU of the whole process tree × the
    voxel ratio / (nodes × cores); *as measured* = the measured wall time × 2 workers × the voxel ratio /
    (nodes × cores), i.e. with this machine's idle share and overheads kept.  Not measured: storage and network
    throughput (each worker reads its windows from shared storage), the scheduler's cost for
    ~(side/chunk)³ tasks per step, and the coarse separation, which at 2048³ (512³ coarse voxels, over the
    48 M-voxel limit) runs chunked instead of whole.
    """
    f = work / "seed_measured.json"
    if not f.exists():
        return ["### On paper: not estimated (no seed-size run in this work folder; run part 'seed' first)", ""]
    m = json.loads(f.read_text())
    z, y, x = m["shape"]
    ratio = side ** 3 / (z * y * x)
    slots = nodes * cores
    ideal = m["cpu_s"] * ratio / slots
    as_measured = m["wall_s"] * m["workers"] * ratio / slots
    steps = ", ".join(f"{k[:-2]} {v * m['workers'] * ratio / slots:.0f}" for k, v in m["timings_s"].items())
    stores = {k: v * ratio / 1e9 for k, v in m["stores_bytes"].items()}
    row = {"volume": f"{side}³ uint16 ({side ** 3 / 1e9:.2f} G voxels, {SEED_SPACING} µm, {ratio:.2f}× the seed size)",
           "cluster": f"{nodes} nodes × {cores} workers", "ideal (s)": round(ideal),
           "as measured here (s)": round(as_measured), "steps as measured (s)": steps,
           "memory per node": f"as here (MiB by process at the peak: {m['by_process_mib']}; chunks of {m['chunk']}: "
                              "bounded by the chunk, not the volume)",
           "Zarr outputs (GB, compressed)": ", ".join(f"{k} {v:.2f}" for k, v in stores.items())}
    return [f"### On paper: {side}³ on a {nodes}-node cluster, scaled from the seed-size run above", "",
            f"Scaled from the seed-size run (wall {m['wall_s']:.0f} s, CPU of the tree {m['cpu_s']:.0f} s, "
            f"{m['workers']} workers, load {m['load']}). " + " ".join(
                line.strip() for line in part_paper.__doc__.split(chr(10) + chr(10))[1].splitlines()),
            "", md_table([row]), "",
            "The input alone is {:.1f} GB of uint16; at 1 GB/s of shared storage per node reading it takes "
            "{:.0f} s spread over the nodes (an assumption, not a measurement).".format(
                side ** 3 * 2 / 1e9, side ** 3 * 2 / 1e9 / nodes), ""]


def _run_facts(out: Path, r: dict) -> dict:
    """Steps, particle count and chunking of a completed run (from its ``run.json``)."""
    if r["rc"] != 0:
        return {}
    import pandas as pd

    prov = json.loads((out / "run.json").read_text())["provenance"]
    ch = prov["chunking"]
    f = prov.get("coarsen", 1)
    table = pd.read_csv(out / "particles.csv", usecols=["equiv_diameter_um", "extent_z_um", "extent_y_um",
                                                        "extent_x_um"])
    extent = float(table[["extent_z_um", "extent_y_um", "extent_x_um"]].max(axis=1).max()) if len(table) else 0.0
    facts = {"steps (s)": ", ".join(f"{k[:-2]} {v:.0f}" for k, v in prov["timings_s"].items()),
             "particles": prov["n_particles"]}
    if f > 1:
        facts["separation grid"] = (f"{f}× coarser ({'×'.join(map(str, prov['coarse_shape']))}), separated "
                                    f"{prov['coarse_separation']}; {prov['coarse_unlabelled_voxels']} NMC voxels "
                                    "left unlabelled")
    return {**facts,
            "halo (voxels)": f"{ch['halo']}{' coarse' if f > 1 else ''} (for particles up to "
                             f"{ch.get('max_diameter_um', float('nan')):.1f} µm; "
                             + (f"{ch['widened']} chunks labelled again with {ch['wide_halo']}; "
                                if ch.get("widened") else "")
                             + f"{ch.get('beyond_halo', 0)} chunk labels beyond it)",
            "largest particle in the table (µm)": f"equivalent diameter {table['equiv_diameter_um'].max():.1f}, "
                                                  f"extent {extent:.1f}"}


def _spacing_args(work: Path, n: int) -> list[str]:
    sp = json.loads((work / f"spacing_{n}.json").read_text())
    return ["--spacing", *[str(s) for s in sp]]


def part_same(work: Path, n: int, chunk: int, timeout: float) -> list[str]:
    import dask.array as da

    from core.evaluate import instance_scores
    from core.io import load_volume

    grey = make_grey(n, work)
    sp = _spacing_args(work, n)
    print(f"same: {n}^3 whole", flush=True)
    w = run_cli(["analyze", str(grey), "--out", str(work / f"whole_{n}"), "--overwrite", "-q", *sp], timeout)
    print(f"same: {n}^3 chunks of {chunk} on 2 workers", flush=True)
    c = run_cli(["analyze", str(grey), "--out", str(work / f"chunk_{n}"), "--overwrite", "-q", "--chunk-size",
                 str(chunk), "--workers", "2", *sp], timeout)
    if w["rc"] != 0 or c["rc"] != 0:
        return [f"`same` did not complete (whole rc {w['rc']}, chunked rc {c['rc']})."]
    pw = load_volume(work / f"whole_{n}" / "phases.tif").data
    lw = load_volume(work / f"whole_{n}" / "labels.tif").data
    pc = np.asarray(da.from_zarr(str(work / f"chunk_{n}" / "phases.zarr" / "0")))
    lc = np.asarray(da.from_zarr(str(work / f"chunk_{n}" / "labels.zarr" / "0")))
    s = [float(v) for v in json.loads((work / f"spacing_{n}.json").read_text())]
    face = (s[1] * s[2], s[0] * s[2], s[0] * s[1])

    def nmc_cbd(ph):
        tot = 0.0
        for ax in range(3):
            a = np.take(ph, range(ph.shape[ax] - 1), axis=ax)
            b = np.take(ph, range(1, ph.shape[ax]), axis=ax)
            tot += face[ax] * int((((a == 2) & (b == 1)) | ((a == 1) & (b == 2))).sum())
        return tot

    vol_w, vol_c = float((pw == 2).sum()) * s[0] * s[1] * s[2], float((pc == 2).sum()) * s[0] * s[1] * s[2]
    a_w, a_c = nmc_cbd(pw), nmc_cbd(pc)
    nw, nc = len(np.unique(lw)) - 1, len(np.unique(lc)) - 1
    f1 = float(instance_scores(lw, lc, thresholds=[0.5])["f1"].iloc[0])
    rows = [
        {"engine": "whole", "wall (s)": w["wall_s"], "peak anon (GiB)": w["peak_anon_gib"], "particles": nw,
         "NMC volume (µm³)": vol_w, "NMC–CBD area (µm²)": a_w, "load before → after": f"{w['load_before']} → {w['load_after']}"},
        {"engine": f"chunked {chunk}³, 2 workers", "wall (s)": c["wall_s"], "peak anon (GiB)": c["peak_anon_gib"],
         "particles": nc, "NMC volume (µm³)": vol_c, "NMC–CBD area (µm²)": a_c,
         "load before → after": f"{c['load_before']} → {c['load_after']}"},
    ]
    return [
        f"### Same answer: {n}³ whole against {chunk}³ chunks on 2 workers",
        "",
        md_table(rows),
        f"- phases identical voxel for voxel: **{bool(np.array_equal(pw, pc))}**; NMC volume relative difference "
        f"{abs(vol_w - vol_c) / vol_w:.1e}, NMC–CBD area {abs(a_w - a_c) / a_w:.1e} (acceptance 1e-9)",
        f"- particles {nw} whole, {nc} chunked: {100 * abs(nc - nw) / nw:.2f} % apart (acceptance ≤ 0.5 %); "
        f"F1@0.5 of the chunked labels against the whole-volume ones **{f1:.4f}** (acceptance ≥ 0.995)",
        "",
    ]


def part_memory(work: Path, n: int, m: int, timeout: float) -> list[str]:
    grey = make_grey(n, work)
    big = mirror_tile(grey, m, work)
    print(f"memory: {m}^3 uint16, chunks of 128, 2 workers", flush=True)
    r = run_cli(["analyze", str(big), "--out", str(work / f"mem_{m}"), "--overwrite", "-q", "--chunk-size", "128",
                 "--workers", "2", *_spacing_args(work, n)], timeout)
    row = {"volume": f"{m}³ uint16 ({m ** 3 / 1e6:.0f} M voxels)", "exit": str(r["rc"]), "wall (s)": r["wall_s"],
           "CPU of the tree (s)": r["cpu_s"],
           "peak anon of the tree (GiB)": r["peak_anon_gib"], "load before → after": f"{r['load_before']} → {r['load_after']}"}
    row.update(_run_facts(work / f"mem_{m}", r))
    row["at the peak (MiB by process)"] = r["by_process_mib"]
    lines = [f"### Memory: {m}³ with --chunk-size 128 --workers 2", "", md_table([row]),
             "(a run that timed out shows the peak up to when it was stopped)", ""]
    if r["rc"] == 0:
        from core.memory import chunked_peak_bytes

        halo = json.loads((work / f"mem_{m}" / "run.json").read_text())["provenance"]["chunking"]["halo"]
        budget = chunked_peak_bytes(128, halo, 2, 2)
        lines += [f"- budget formula (`core.memory.chunked_peak_bytes`): (workers + 2) × 300 MiB + workers × "
                  f"max(14 B × (c + 68)³, 12 B × (c + 2 halo)³) = 4 × 300 MiB + 2 × max(14 × 196³, 12 × "
                  f"{128 + 2 * halo}³) B = **{budget / 2**30:.2f} GiB** for c = 128, halo = {halo}, 2 workers "
                  f"(measured peak {r['peak_anon_gib']:.2f} GiB; acceptance ≤ 1.5 GiB)", ""]
    return lines


def part_speedup(work: Path, n: int, chunk: int, timeout: float) -> list[str]:
    grey = make_grey(n, work)
    rows = []
    for k in (1, 2):
        print(f"speedup: {n}^3 chunks of {chunk}, {k} worker(s)", flush=True)
        r = run_cli(["analyze", str(grey), "--out", str(work / f"speed_{n}_{k}"), "--overwrite", "-q",
                     "--chunk-size", str(chunk), "--workers", str(k), *_spacing_args(work, n)], timeout)
        rows.append({"workers": k, "exit": str(r["rc"]), "wall (s)": r["wall_s"], "CPU of the tree (s)": r["cpu_s"],
                     "peak anon (GiB)": r["peak_anon_gib"], "load before → after": f"{r['load_before']} → {r['load_after']}",
                     **_run_facts(work / f"speed_{n}_{k}", r)})
    lines = [f"### Parallel: {n}³, chunks of {chunk}, 1 and 2 workers", "", md_table(rows)]
    if all(r["exit"] == "0" for r in rows):
        lines.append(f"- speed-up 2 workers over 1: **{rows[0]['wall (s)'] / rows[1]['wall (s)']:.2f}×** "
                     "(acceptance ≥ 1.6× on an idle 2-core machine; see the load averages)")
    return lines + [""]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap)
    ap.add_argument("--parts", nargs="+", default=["same", "speedup", "memory"],
                    choices=("same", "memory", "speedup", "seed", "paper"))
    ap.add_argument("--seed-chunk", type=int, default=128)
    ap.add_argument("--seed-workers", type=int, default=2)
    ap.add_argument("--seed-max-diameter", type=float, default=None, help="µm (default: the estimate from the data)")
    ap.add_argument("--seed-timeout", type=float, default=None, help="seconds for the seed-size run (default --timeout)")
    ap.add_argument("--seed-coarsen", choices=("auto", "1", "2", "3", "4"), default=None,
                    help="analyze --coarsen for the seed-size run (default: not given, full resolution)")
    ap.add_argument("--keep-other-parts", action="store_true",
                    help="replace only the subsections of the parts run in the existing paper_scale section of "
                         "the results file (each then carries its own date, command and core source); the other "
                         "parts' rows are kept as they were")
    ap.add_argument("--seed-until", type=float, default=None,
                    help="a Unix time the seed-size run must end by (its timeout shortened to fit)")
    ap.add_argument("--prepare", action="store_true", help="only write the input volumes of the parts, then stop")
    ap.add_argument("--same-size", type=int, default=256)
    ap.add_argument("--same-chunk", type=int, default=96)
    ap.add_argument("--mem-size", type=int, default=768)
    ap.add_argument("--speed-size", type=int, default=256)
    ap.add_argument("--speed-chunk", type=int, default=96)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    ap.add_argument("--mem-timeout", type=float, default=None, help="seconds for the memory run (default --timeout)")
    ap.add_argument("--work", default=None, help="work folder (kept; default a new temporary one)")
    args = ap.parse_args(argv)
    if args.quick:
        args.same_size, args.same_chunk, args.mem_size, args.speed_size, args.speed_chunk = 64, 24, 96, 64, 32
        args.seed_chunk = 32
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="paper_scale-"))
    work.mkdir(parents=True, exist_ok=True)
    lines = ["## paper_scale: the chunked engine (issue 12)", "", *env_lines(),
             f"- load average (1/5/15 min) at the start: {load_avg()} (the machine is shared: read every number "
             "with the load beside it)", ""]
    if args.prepare:
        for part in args.parts:
            if part == "memory":
                mirror_tile(make_grey(args.same_size, work), args.mem_size, work)
            elif part == "seed":
                make_seed(work, (64, 96, 32) if args.quick else SEED_SHAPE)
            else:
                make_grey(args.same_size if part == "same" else args.speed_size, work)
        return 0
    tail = ["Anonymous memory: `RssAnon` summed over the CLI process and every descendant (Dask scheduler "
            "process is in the CLI process; nanny and worker processes are children), sampled every 0.25 s. CPU of the tree: user + system time of the CLI process and "
            "every descendant (`getrusage(RUSAGE_CHILDREN)` around the run)."]
    if args.keep_other_parts:
        head_len = len(lines)
    for part in args.parts:
        if part != args.parts[0]:  # the section so far, written after each part (a later part may run out of time)
            _publish(lines, tail, args, head_len if args.keep_other_parts else None)
        if part == "seed":
            seed_timeout = args.seed_timeout or args.timeout
            if args.seed_until is not None:
                seed_timeout = min(seed_timeout, args.seed_until - time.time())
            if seed_timeout < 60:
                lines += ["### Seed size: not run (no time left before --seed-until)", ""]
                continue
            lines += part_seed(work, args.seed_workers, args.seed_chunk, seed_timeout,
                               args.seed_max_diameter, (64, 96, 32) if args.quick else SEED_SHAPE,
                               coarsen=args.seed_coarsen)
        elif part == "paper":
            lines += part_paper(work)
        elif part == "same":
            lines += part_same(work, args.same_size, args.same_chunk, args.timeout)
        elif part == "speedup":
            lines += part_speedup(work, args.speed_size, args.speed_chunk, args.timeout)
        else:
            lines += part_memory(work, args.same_size, args.mem_size, args.mem_timeout or args.timeout)
    _publish(lines, tail, args, head_len if args.keep_other_parts else None)
    return 0


#: The subsection titles of the parts, as they begin.
_PART_TITLES = {"same": "### Same answer", "speedup": "### Parallel", "memory": "### Memory", "seed": "### Seed size", "paper": "### On paper"}


def _publish(lines: list[str], tail: list[str], args, head_len: int | None) -> None:
    """Write the section; with ``head_len`` (``--keep-other-parts``) splice the parts run into the existing one.

    Each new subsection gets the environment lines (date, command, core source, load) of this run under its title.
    """
    if head_len is None:
        publish("paper_scale", lines + tail, args)
        return
    import re

    from _common import results_path

    path = results_path(args)
    old = path.read_text() if path is not None and path.exists() else ""
    name = "paper_scale" + ("_quick" if args.quick else "")
    m = re.search(f"<!-- BEGIN {name} -->\\n(.*?)<!-- END {name} -->", old, re.S)
    if m is None:  # nothing to keep
        publish("paper_scale", lines + tail, args)
        return
    body = m.group(1).rstrip("\n").split("\n")
    head, new = lines[:head_len], lines[head_len:]
    stamp = [x for x in head if x.startswith("- ")]
    for title in _PART_TITLES.values():
        starts = [i for i, x in enumerate(new) if x.startswith(title)]
        if not starts:
            continue
        i = starts[0]
        j = next((k for k in range(i + 1, len(new)) if new[k].startswith("### ")), len(new))
        block = [new[i], "", *stamp, *new[i + 1: j]]
        a = next((k for k, x in enumerate(body) if x.startswith(title)), None)
        if a is None:
            end = next(k for k, x in enumerate(body) if x.startswith("Anonymous memory:")) if any(
                x.startswith("Anonymous memory:") for x in body) else len(body)
            body[end:end] = block
        else:
            b = next((k for k in range(a + 1, len(body)) if body[k].startswith("### ")
                      or body[k].startswith("Anonymous memory:")), len(body))
            body[a:b] = block
    publish("paper_scale", body, args)


if __name__ == "__main__":
    sys.exit(main())
