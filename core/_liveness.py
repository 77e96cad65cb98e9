"""Is the process that owns a ``running`` analysis still alive?  (Linux ``/proc``; conservative elsewhere.)"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

__all__ = ["own_start", "process_start_time", "run_is_orphaned"]



def _boot_time() -> float | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime"):
                return float(line.split()[1])
    return None


def process_start_time(pid: int) -> float | None:
    """Start time (seconds since the epoch) of process ``pid``; None if it is gone or unknown."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
    except (OSError, ValueError):
        return None
    boot = _boot_time()
    if boot is None:
        return None
    with contextlib.suppress(ValueError, IndexError):
        # field 22 (starttime, clock ticks since boot) counted after the ')' closing the command name
        fields = stat[stat.rindex(")") + 2:].split()
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return None


def _pid_alive(pid: int) -> bool:
    """Process ``pid`` exists and has not ended: a zombie (ended, not yet reaped by its parent or by PID 1) is dead.

    A killed server's worker stays a zombie for a moment (about a second here) until PID 1 reaps it, and for good
    where its parent is alive and never waits for it: counted alive, its ``running`` analysis was left so.
    """
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return not _is_zombie(int(pid))


def _is_zombie(pid: int) -> bool:
    """``/proc/PID/stat`` says Z (zombie) or X (dead); False where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return False
    state = stat[stat.rindex(")") + 2:].split(maxsplit=1)[:1] if ")" in stat else []
    return bool(state) and state[0] in ("Z", "X")


_IMPORT_TIME = time.time()


def own_start() -> float:
    start = process_start_time(os.getpid())
    return start if start is not None else _IMPORT_TIME


def run_is_orphaned(owner_pid: int | None, created_at: float, own_pid: int, own_start: float) -> bool:
    """A ``running`` row whose process is gone (or is a later process with the same id)."""
    if owner_pid is None:
        return True
    if owner_pid == own_pid:
        return created_at < own_start - 1.0
    if not _pid_alive(owner_pid):
        return True
    start = process_start_time(owner_pid)
    return start is not None and created_at < start - 1.0
