"""Time of each step of a demo electrode's generation (``core.synth.demo_electrode``), per demo, at 320³.

The dashboard's first start generates the three demos (at its demo size) before it analyses them, and the
browser jobs test analyses a 320³ demo three times: generation is most of those analyses' time. Each step's
wall time is read from the generator's own progress reports (the time until the next report), one run per
demo (seed 0), after one untimed 64³ run (imports). The step names are the generator's.

Usage:  python bench/demo_generation.py [--quick] [--size 320]
"""

from __future__ import annotations

import argparse
import os
import time

import _common as C  # noqa: E402  (sets sys.path)


def _steps(name: str, size: int, seed: int) -> tuple[dict[str, float], int]:
    from core.synth import demo_electrode

    times: dict[str, float] = {}
    last = [time.perf_counter(), None]

    def progress(fraction: float, message: str) -> None:
        now = time.perf_counter()
        if last[1] is not None:
            times[last[1]] = times.get(last[1], 0.0) + now - last[0]
        step = message.split(": ", 1)[-1]
        last[0], last[1] = now, ("drawing the particles" if step.startswith("drawing") else step)

    e = demo_electrode(name, rng=seed, shape=(size,) * 3, progress=progress)
    return times, int(e.labels.max())


def main(argv=None) -> int:
    from core.synth import DEMO_ELECTRODES, demo_electrode

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=320, help="voxels per edge (default 320)")
    ap.add_argument("--section", default=None, help="RESULTS.md section name (default demo_generation)")
    C.add_common_args(ap)
    args = ap.parse_args(argv)
    size = 64 if args.quick else args.size
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    demo_electrode("pristine", rng=0, shape=(64,) * 3)  # warm-up
    rows = []
    for name in DEMO_ELECTRODES:
        times, n = _steps(name, size, 0)
        row = {"demo": name, "particles": n, **{k: v for k, v in times.items() if k != "done"},
               "total s": sum(v for k, v in times.items() if k != "done")}
        rows.append(row)
        C.print_row(row)
    total = time.perf_counter() - t0
    description = (f"`core.synth.demo_electrode(name, rng=0, shape=({size},) * 3)`; seconds per step (wall), "
                   "from the generator's progress reports. When other work shares the machine's 2 cores (see the "
                   "load average) the times are upper bounds.")
    lines = C.section_lines(f"Demo electrode generation at {size}³ (`bench/demo_generation.py`)"
                            f"{' — QUICK smoke run' if args.quick else ''}", total, load0, description,
                            {"Seconds per step": rows})
    C.publish("demo_generation", lines, args, section=args.section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
