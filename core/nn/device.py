"""Where the network runs: the torch device and the number of CPU threads (training and inference)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch


def resolve_device(device="auto") -> torch.device:
    """``"auto"`` → CUDA when available, else the CPU; other values checked and returned as a device.

    Raises
    ------
    ValueError
        Not a CPU or CUDA device, or CUDA requested on a machine without it.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device, got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but CUDA is not available on this machine")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be a CPU or CUDA device, got {device!r}")
    return dev


def available_cpus() -> int:
    """Number of CPU cores this process may use (the default number of torch threads).

    The CPU affinity mask (``os.sched_getaffinity``), further limited by a
    cgroup v2 CPU quota (``/sys/fs/cgroup/cpu.max``) where one is set, as in
    containers; ``os.cpu_count()`` where affinity is unknown.  At least 1.
    """
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, n)
