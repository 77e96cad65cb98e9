"""Shared helpers of the benchmark scripts: environment header, markdown tables, RESULTS.md sections."""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "RESULTS.md"

#: Where the ``core`` package is imported from: the repository (default) or, with the environment
#: variable BENCH_CORE_ROOT, another folder holding ``core/`` (e.g. a ``git archive`` snapshot of a
#: commit, so that a benchmark is not disturbed by uncommitted edits in the working tree).
CORE_ROOT = Path(os.environ.get("BENCH_CORE_ROOT") or REPO_ROOT).resolve()
for _p in (REPO_ROOT, CORE_ROOT):  # CORE_ROOT ends up first
    if str(_p) in sys.path:
        sys.path.remove(str(_p))
    sys.path.insert(0, str(_p))

PACKAGES = (
    "numpy", "scipy", "scikit-image", "pandas", "numba", "edt", "connected-components-3d", "tifffile",
    "porespy", "psutil",
)

RESULTS_HEADER = """# Benchmark results

Written by the scripts in this folder (see README.md); each script replaces its own section.
Numbers are from the machine named at the top of each section.
"""


def cpu_model() -> str:
    """``lscpu`` model name (falls back to /proc/cpuinfo, then platform)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return None


def package_versions(names=PACKAGES) -> dict[str, str]:
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


def _git(*args) -> str:
    return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, timeout=30,
                          check=True).stdout.decode()


def _core_files(root: Path) -> list[Path]:
    """Every ``.py`` source of the ``core`` package under ``root``, its subpackages included, in a fixed order."""
    return sorted(f for f in (root / "core").rglob("*.py") if "__pycache__" not in f.parts)


def core_hash(root: Path = CORE_ROOT) -> str:
    """Short digest of the ``core/**/*.py`` sources under ``root`` (named by their path inside ``core``)."""
    h = hashlib.blake2b(digest_size=6)
    for f in _core_files(root):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _matching_commit(root: Path = CORE_ROOT, depth: int = 50) -> str | None:
    """The most recent of the last ``depth`` commits whose ``core/**/*.py`` equal the sources under ``root``."""
    try:
        files = _core_files(root)
        blobs = _git("hash-object", *[str(f) for f in files]).split()
        mine = {f.relative_to(root).as_posix(): b for f, b in zip(files, blobs)}
        for rev in _git("rev-list", "-n", str(depth), "HEAD").split():
            tree = {}
            for line in _git("ls-tree", "-r", rev, "core/").splitlines():
                meta, path = line.split("\t", 1)
                if path.endswith(".py"):
                    tree[path] = meta.split()[2]
            if tree == mine:
                return rev[:7]
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        pass
    return None


def core_source() -> str:
    """Which ``core`` the numbers are for: the commit whose sources it equals, or 'uncommitted edits'."""
    try:
        head = _git("rev-parse", "--short", "HEAD").strip()
    except (OSError, subprocess.SubprocessError):
        head = "unknown"
    where = "the repository working tree" if CORE_ROOT == REPO_ROOT else f"{CORE_ROOT} (BENCH_CORE_ROOT)"
    match = _matching_commit()
    if match == head:
        state = f"identical to HEAD {head}"
    elif match:
        state = f"identical to commit {match} (HEAD is {head})"
    else:
        state = f"uncommitted edits on top of HEAD {head}"
    return f"core/ from {where}, sources {state} (core/**/*.py digest {core_hash()})"


def env_lines() -> list[str]:
    """Markdown bullet lines describing the machine and software."""
    import core

    mem = mem_total_gb()
    vers = package_versions()
    return [
        f"- date: {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores"
        + (f", {mem:.1f} GiB RAM" if mem else "") + ", no GPU used",
        f"- Python {platform.python_version()} ({platform.system()} {platform.release()}); core {core.__version__}; "
        + core_source(),
        "- packages: " + ", ".join(f"{k} {v}" for k, v in vers.items()),
        f"- command: `python {' '.join([Path(sys.argv[0]).name] + sys.argv[1:])}`",
    ]


def time_calls(fn, calls: int, warmup: int = 0, *, cpu: str = "thread"):
    """Wall and CPU seconds of ``calls`` calls of ``fn`` after ``warmup`` untimed ones: two (calls,) arrays.

    ``cpu``: ``"thread"`` (``time.thread_time``, the calling thread: single-threaded kernels) or
    ``"process"`` (``time.process_time``, every thread of the process: multi-threaded learners).
    """
    import numpy as np
    import time

    clock = {"thread": time.thread_time, "process": time.process_time}[cpu]
    for _ in range(warmup):
        fn()
    wall, used = np.empty(calls), np.empty(calls)
    for i in range(calls):
        t0, c0 = time.perf_counter(), clock()
        fn()
        wall[i], used[i] = time.perf_counter() - t0, clock() - c0
    return wall, used


def load_line(load_start: tuple[float, float, float]) -> str:
    """A bullet line with the 1-minute load average at the start (``os.getloadavg()`` then) and now."""
    now = os.getloadavg()
    return (f"- load average at the start / end: {load_start[0]:.1f} / {now[0]:.1f} (1 min) on {os.cpu_count()} "
            "cores")


def fmt(v, digits: int = 3) -> str:
    """Format one table cell."""
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isnan(f):
        return "n/a"
    if abs(f) >= 1000:
        return f"{f:,.0f}"
    return f"{f:.{digits}f}"


def grouped(rows: list[dict], by: tuple[str, ...]):
    """Yield ``(values, rows)`` per distinct values of the ``by`` columns of ``rows``, in first-seen order:
    ``values`` a dict of those columns (the start of a summary row), ``rows`` the rows that have them."""
    for key in dict.fromkeys(tuple(r[b] for b in by) for r in rows):
        yield dict(zip(by, key)), [r for r in rows if tuple(r[b] for b in by) == key]


def means(rows: list[dict], keys) -> dict:
    """The mean of each of ``keys`` over ``rows`` (float)."""
    import numpy as np

    return {k: float(np.mean([r[k] for r in rows])) for k in keys}


def group_means(rows: list[dict], by: tuple[str, ...], count: str = "n") -> list[dict]:
    """One summary row per group of :func:`grouped`: the ``by`` columns, ``count`` (the rows in the group) and the
    mean of every other numeric column of the rows."""
    keys = [k for k, v in rows[0].items() if k not in by and isinstance(v, (int, float)) and not isinstance(v, bool)]
    out = []
    for m, sub in grouped(rows, by):
        m[count] = len(sub)
        m.update(means(sub, keys))
        out.append(m)
    return out


def md_table(rows: list[dict], columns: list[str] | None = None, digits: int = 3) -> str:
    """Markdown table from a list of dicts (keys = column headers)."""
    if not rows:
        return "(no rows)\n"
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(c), digits) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def print_row(row: dict) -> None:
    """Print one row as the last line of its Markdown table (progress while a bench runs)."""
    print(md_table([row]).splitlines()[-1], flush=True)


def write_section(name: str, body: str, path: Path | None = RESULTS) -> None:
    """Replace (or append) the section ``name`` of RESULTS.md with ``body``."""
    if path is None:
        return
    path = Path(path)
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}\n"
    text = path.read_text() if path.exists() else RESULTS_HEADER
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip() + "\n\n" + block
    path.write_text(text)
    print(f"\n[wrote section '{name}' of {path}]")


def publish(name: str, lines: list[str], args, *, section: str | None = None) -> None:
    """Print the section and write it to RESULTS.md (see :func:`results_path`).

    The section is ``section`` when given, else ``name`` with ``_quick`` appended for ``--quick`` runs.
    """
    body = "\n".join(lines)
    print()
    print(body)
    write_section(section or (name + ("_quick" if getattr(args, "quick", False) else "")), body, results_path(args))


def section_lines(title: str, total: float, load_start: tuple[float, float, float], description: str,
                  tables: dict[str, list[dict]]) -> list[str]:
    """The lines of a results section in the usual order: ``## title``, the machine, the script's wall time and the
    load, the description, then each table under its ``### heading`` (for :func:`publish`)."""
    lines = [f"## {title}", "", *env_lines(), f"- script wall time: {total:.0f} s", load_line(load_start), "",
             description, ""]
    for i, (heading, rows) in enumerate(tables.items()):
        lines += [f"### {heading}", "", md_table(rows)] + ([""] if i < len(tables) - 1 else [])
    return lines


def results_path(args) -> Path | None:
    """Where to write: --results PATH, else RESULTS.md for full runs, nothing for --quick runs."""
    if getattr(args, "no_write", False):
        return None
    if getattr(args, "results", None):
        return Path(args.results)
    return None if getattr(args, "quick", False) else RESULTS


def add_common_args(parser) -> None:
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (does not touch RESULTS.md)")
    parser.add_argument("--results", default=None,
                        help="markdown file whose section to replace (default bench/RESULTS.md; "
                             "--quick runs write nowhere unless this is given)")
    parser.add_argument("--no-write", action="store_true", help="print only, write no results file")
