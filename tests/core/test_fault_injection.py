"""Fault injection: CLI and workspace runs killed (SIGKILL) at random points.

After every kill: no partial output is visible at the target (it is absent, the
complete earlier result, or the complete new one), results made before the
trial are byte-identical, a rerun removes the stale partials, and a workspace
catalogue passes ``PRAGMA integrity_check`` with the killed analysis marked
failed on reopen.  Seeded; 21 trials on 32³ volumes (about a minute).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import cli

REPO = Path(__file__).resolve().parents[2]
SEED = 20261202
ANALYZE_FILES = ["labels.tif", "particles.csv", "particles.parquet", "phases.tif", "run.json"]
RUN_FILES = ["greyscale", "greyscale/particles.csv", "greyscale/particles.parquet", "greyscale/provenance.json",
             "greyscale/recipe.json", "recipe.json"]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def _tree(d: Path) -> dict[str, bytes]:
    """Every file under ``d`` (hidden ones too) with its bytes."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _files(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def _kill_after(argv: list[str], delay: float) -> int:
    """Start ``argv``, SIGKILL it after ``delay`` s (unless it ended); returns its exit status (-9 when killed)."""
    proc = subprocess.Popen(argv, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    return proc.wait(timeout=60)


def _duration(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=REPO, env=_env(), check=True, capture_output=True, timeout=300)
    return time.perf_counter() - t0


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("fault-inputs")
    assert cli.main(["demo", "--out", str(d / "demo"), "--size", "32", "--names", "pristine", "-q"]) == 0
    grey = d / "demo" / "pristine" / "greyscale.tif"
    assert cli.main(["analyze", str(grey), "--out", str(d / "ref"), "--recipe", str(d / "recipe.json"), "-q"]) == 0
    assert cli.main(["run", str(d / "recipe.json"), "--out", str(d / "ref-run"), "-q"]) == 0
    return d


def _complete(target: Path, kind: str, inputs: Path) -> bool:
    """``target`` holds a whole result of ``kind`` (the particle table the reference run gives)."""
    if kind == "run":
        return (_files(target) == RUN_FILES and (target / "greyscale" / "particles.csv").read_bytes()
                == (inputs / "ref-run" / "greyscale" / "particles.csv").read_bytes())
    return _files(target) == ANALYZE_FILES and (target / "particles.csv").read_bytes() == (
        inputs / "ref" / "particles.csv").read_bytes()


def _leftovers(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}.partial"))


def test_killed_cli_runs_leave_no_partial_output(inputs, tmp_path):
    rng = random.Random(SEED)
    grey = inputs / "demo" / "pristine" / "greyscale.tif"
    recipe = inputs / "recipe.json"

    def argv(kind: str, out: Path) -> list[str]:
        if kind == "run":
            return [sys.executable, "-m", "core", "run", str(recipe), "--out", str(out), "--overwrite", "-q"]
        return [sys.executable, "-m", "core", "analyze", str(grey), "--out", str(out), "--overwrite", "-q"]

    durations = {k: _duration(argv(k, tmp_path / f"measure-{k}")) for k in ("analyze", "run")}
    keep = tmp_path / "keep"  # an earlier result no trial targets
    assert cli.main(["analyze", str(grey), "--out", str(keep), "-q"]) == 0
    keep_bytes = _tree(keep)
    work = tmp_path / "work"
    work.mkdir()
    trials = [("analyze", "new")] * 4 + [("analyze", "overwrite")] * 5 + [("run", "overwrite")] * 5
    rng.shuffle(trials)
    killed = 0
    for i, (kind, mode) in enumerate(trials):
        target = work / f"{kind}-{mode}"
        if mode == "new" and target.exists():
            import shutil

            shutil.rmtree(target)
        if mode == "overwrite" and not target.exists():
            assert cli.main(argv(kind, target)[3:]) == 0  # the earlier result
        earlier = _tree(target) if target.exists() else None
        delay = rng.uniform(0.05, 1.1 * durations[kind])
        rc = _kill_after(argv(kind, target), delay)
        killed += rc == -signal.SIGKILL
        where = f"trial {i} ({kind} {mode}, killed after {delay:.2f} s of {durations[kind]:.2f}, rc {rc})"
        # nothing partial visible: absent, the earlier result byte for byte, or the complete new one
        if target.exists():
            assert _tree(target) == earlier or _complete(target, kind, inputs), where
        else:
            assert earlier is None, where
        assert _tree(keep) == keep_bytes, where
        # the rerun removes what the killed run left beside the target, and completes
        assert cli.main(argv(kind, target)[3:]) == 0, where
        assert _leftovers(work, target.name) == [], where
        assert _complete(target, kind, inputs), where
    assert killed >= len(trials) // 2, f"only {killed} of {len(trials)} runs were killed before they ended"
    assert sorted(p.name for p in work.iterdir()) == sorted({f"{k}-{m}" for k, m in trials})


_WORKSPACE_RUN = """
import sys
from core.runner import run_analysis
from core.workspace import Workspace
ws = Workspace(sys.argv[1])
run_analysis(ws, int(sys.argv[2]))
"""


def _partials(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.partial"))


def test_killed_workspace_analyses_are_marked_failed_and_leave_nothing(inputs, tmp_path):
    from core.runner import run_analysis
    from core.workspace import Workspace

    rng = random.Random(SEED + 1)
    root = tmp_path / "ws"
    ws = Workspace(root)
    s = ws.add_sample("pristine", str(inputs / "demo" / "pristine" / "greyscale.tif"), spacing=0.4)
    done = run_analysis(ws, s.id)
    done_dir = ws.analysis_dir(done.id)
    done_bytes = _tree(done_dir)
    argv = [sys.executable, "-c", _WORKSPACE_RUN, str(root), str(s.id)]
    duration = _duration(argv)
    killed = 0
    for i in range(7):
        last = max(a.id for a in ws.list_analyses())
        delay = rng.uniform(0.05, 1.1 * duration)
        rc = _kill_after(argv, delay)
        killed += rc == -signal.SIGKILL
        where = f"trial {i} (killed after {delay:.2f} s of {duration:.2f}, rc {rc})"
        reopened = Workspace(root)  # recovery runs on open
        con = sqlite3.connect(reopened.db_path)
        try:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok", where
        finally:
            con.close()
        for a in reopened.list_analyses():
            if a.id > last:  # the trial's analysis: finished, or failed as interrupted
                assert a.status in ("done", "failed"), where
                if a.status == "failed":
                    assert "interrupted" in a.error, where
                    assert not reopened.analysis_dir(a.id).exists(), where
                else:
                    assert reopened.load_table(a).equals(reopened.load_table(done)), where
        assert _partials(root) == [], where
        assert _tree(done_dir) == done_bytes, where
        assert reopened.get_analysis(done.id).status == "done", where
        assert reopened.latest_analysis(s.id) is not None, where
    assert killed >= 3, f"only {killed} of 7 analyses were killed before they ended"


# Deterministic kills at the commit's own steps (a random delay rarely lands in them).
_KILL_AT = """
import os, signal, sys
import core.cli
import core.outputs as c

def die(*a, **k):
    os.kill(os.getpid(), signal.SIGKILL)

point = sys.argv[1]
if point == "before-commit":
    c._commit = die
elif point == "after-swap":  # the new folder is in place, the earlier one not yet deleted
    real = c.shutil.rmtree
    c.shutil.rmtree = lambda p, *a, **k: die() if ".partial-" in str(p) and c.os.path.lexists(c.Path(p)) else real(p, *a, **k)
elif point == "between-renames":  # no renameat2: the earlier folder set aside, the new one not yet in
    c._exchange = lambda a, b: False
    real_rename, calls = c.os.rename, []
    def rename(a, b):
        calls.append(a)
        if len(calls) == 2:
            die()
        real_rename(a, b)
    c.os.rename = rename
sys.exit(core.cli.main(sys.argv[2:]))
"""


@pytest.mark.parametrize("point", ["before-commit", "after-swap", "between-renames"])
def test_kill_at_each_step_of_the_commit(inputs, tmp_path, point):
    grey = inputs / "demo" / "pristine" / "greyscale.tif"
    target = tmp_path / "out"
    assert cli.main(["segment", str(grey), "--out", str(target), "-q"]) == 0  # the earlier result
    earlier = _tree(target)
    args = ["analyze", str(grey), "--out", str(target), "--overwrite", "-q"]
    proc = subprocess.run([sys.executable, "-c", _KILL_AT, point, *args], cwd=REPO, env=_env(), timeout=300)
    assert proc.returncode == -signal.SIGKILL
    if point == "between-renames":
        assert not target.exists()  # the only moment the target is missing; the next run puts it back
    elif point == "after-swap":
        assert _complete(target, "analyze", inputs)
    else:
        assert _tree(target) == earlier
    assert _leftovers(tmp_path, "out") != []  # the killed run left its hidden folder
    # the next run: the earlier folder (or the new complete one) is in place again and the leftovers go
    rc = cli.main(["segment", str(grey), "--out", str(target), "-q"])
    assert rc == 2  # refused: the folder holds results, and nothing changed
    assert _tree(target) == earlier or _complete(target, "analyze", inputs)
    assert _leftovers(tmp_path, "out") == []
    assert cli.main(["segment", str(grey), "--out", str(target), "--overwrite", "-q"]) == 0
    assert _tree(target) == earlier and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
