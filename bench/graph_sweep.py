"""Speed of the contact graph (isolated particles) and of the segmentation-uncertainty sweep.

1. ``core.connectivity.contact_graph`` on the analysed demo electrodes (160³
   by default) and on a 3 x 3 x 3 tiling of one of them (480³, 111 M voxels;
   particle labels made distinct per tile): wall time after a warm-up call on
   a small volume (numba compilation excluded), and the peak of the numpy
   allocations during the call (``tracemalloc``; the numba kernel's per-pair
   dictionaries and cc3d's internal buffers are not counted).
2. ``core.uncertainty.sweep`` with default ``SweepParams`` on the same demos:
   wall time when the stored baseline is passed in (what the dashboard does:
   4 full analyses + 2 separation-only runs) and for a sweep from scratch
   (baseline included); the medians and their spread, set beside the TRUE
   median detachment of the generator (``e.table``): the sweep's range is an
   error bar of the segmentation choices only, not of the total error.

Usage:  python bench/graph_sweep.py [--quick] [--size N]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)

SEEDS = {"pristine": 0, "cycled-1C": 1, "cycled-5C": 2}


def tiled(labels: np.ndarray, phases: np.ndarray, reps: int) -> tuple[np.ndarray, np.ndarray]:
    n = labels.shape
    m = int(labels.max())
    lab = np.empty(tuple(s * reps for s in n), np.int32)
    ph = np.empty(lab.shape, np.uint8)
    k = 0
    for a in range(reps):
        for b in range(reps):
            for c in range(reps):
                sl = (slice(a * n[0], (a + 1) * n[0]), slice(b * n[1], (b + 1) * n[1]), slice(c * n[2], (c + 1) * n[2]))
                lab[sl] = np.where(labels > 0, labels + k * m, 0)
                ph[sl] = phases
                k += 1
    return lab, ph


def timed_graph(labels, phases, spacing):
    from core.connectivity import contact_graph

    tracemalloc.start()
    t = time.perf_counter()
    g = contact_graph(labels, phases, spacing)
    dt = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return g, dt, peak


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_common_args(ap)
    ap.add_argument("--size", type=int, default=None, help="demo edge length in voxels (default 160; 48 with --quick)")
    args = ap.parse_args(argv)
    size = args.size or (48 if args.quick else 160)
    reps = 2 if args.quick else 3
    t_all = time.perf_counter()

    from core.connectivity import contact_graph
    from core.pipeline import AnalysisParams, run
    from core.synth import demo_electrode
    from core.uncertainty import sweep

    # warm-up (numba compilation) on a small volume
    w = demo_electrode("pristine", rng=0, shape=(40, 40, 40))
    wr = run(w.greyscale, AnalysisParams(separator_side="start"), spacing=w.spacing)
    contact_graph(wr.labels, wr.phases, w.spacing)

    graph_rows, sweep_rows = [], []
    big = None
    for name, seed in SEEDS.items():
        e = demo_electrode(name, rng=seed, shape=(size,) * 3)
        r = run(e.greyscale, AnalysisParams(separator_side="start"), spacing=e.spacing)
        g, dt, peak = timed_graph(r.labels, r.phases, e.spacing)
        s = g.summary
        graph_rows.append({"volume": f"{name} {size}³", "voxels (M)": r.labels.size / 1e6, "particles": s.n_particles,
                           "CBD clusters": s.n_cbd_clusters, "isolated": s.n_isolated,
                           "share isolated": s.share_isolated, "CBD volume connected": s.share_cbd_connected,
                           "time (s)": dt, "numpy peak (MB)": peak / 1e6})
        if big is None:
            big = (name, r.labels, r.phases, e.spacing)

        t = time.perf_counter()
        reused = sweep(e.greyscale, r.params, spacing=e.spacing, baseline_phases=r.phases, baseline_table=r.table)
        t_reused = time.perf_counter() - t
        t = time.perf_counter()
        scratch = sweep(e.greyscale, AnalysisParams(separator_side="start"), spacing=e.spacing)
        t_scratch = time.perf_counter() - t
        assert scratch.rows == reused.rows, "a sweep from scratch should equal one from the stored baseline"
        sp = reused.spread
        true_med = float(np.nanmedian(e.table["detachment"].to_numpy(float)))
        sweep_rows.append({
            "electrode": name, "n particles": reused.baseline.n_particles,
            "median (as analysed)": reused.baseline.median_detachment, "lowest": sp.median_min,
            "highest": sp.median_max, "max abs Δ thresholds": sp.max_deviation_thresholds,
            "max abs Δ separation": sp.max_deviation_separation, "true median": true_med,
            "true inside range": bool(sp.median_min <= true_med <= sp.median_max),
            "threshold step (grey)": reused.threshold_step, "sweep s (baseline reused)": t_reused,
            "sweep s (from scratch)": t_scratch,
        })

    name, lab, ph, spacing = big
    lab_t, ph_t = tiled(lab, ph, reps)
    del lab, ph
    g, dt, peak = timed_graph(lab_t, ph_t, spacing)
    s = g.summary
    graph_rows.append({"volume": f"{name} tiled {reps}³ ({lab_t.shape[0]}³)", "voxels (M)": lab_t.size / 1e6,
                       "particles": s.n_particles, "CBD clusters": s.n_cbd_clusters, "isolated": s.n_isolated,
                       "share isolated": s.share_isolated, "CBD volume connected": s.share_cbd_connected,
                       "time (s)": dt, "numpy peak (MB)": peak / 1e6})
    total = time.perf_counter() - t_all

    C.publish("graph_sweep", [
        "## Contact graph and segmentation sweep (`bench/graph_sweep.py`)", "",
        *C.env_lines(), f"- script wall time: {total:.0f} s", "",
        f"Demo electrodes at {size}³ (seeds {list(SEEDS.values())}), analysed with default `AnalysisParams` "
        "(separator at the start of z). Other work shared the 2 cores: times are indicative.", "",
        "### `contact_graph`", "",
        "The tiled volume stacks copies of one electrode along the thickness too, so the upper copies, cut off "
        "from the collector by the next copy's separator side, are isolated: it measures speed and memory, not "
        "science. `numpy peak` = tracemalloc peak of the numpy allocations during the call (inputs excluded).", "",
        C.md_table(graph_rows),
        "### `sweep` (default steps: thresholds ± 2 % of the NMC − pore contrast, h ± 50 %)", "",
        "`true median` = median detachment of the generator's true particle table. The sweep's range covers "
        "the segmentation choices only (not the bias of the segmentation model itself).", "",
        C.md_table(sweep_rows),
    ], args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
