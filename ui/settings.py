"""Settings read from the environment (no streamlit import).

``DETACH_WORKSPACE``  workspace folder (default ``./workspace``)
``DETACH_DATA``       server-side data folder for the file browser (default ``./data``)
``DETACH_DEMO_SIZE``  edge length in voxels of the demo electrodes added on first start (default 160)
``DETACH_DEMOS``      ``0`` skips adding and analysing the demo electrodes on first start
"""

from __future__ import annotations

import os
from pathlib import Path

from core.synth import DEMO_ELECTRODES

DEFAULT_DEMO_SIZE = 160


def workspace_root() -> Path:
    return Path(os.environ.get("DETACH_WORKSPACE") or "workspace").expanduser().resolve()


def data_dir() -> Path:
    return Path(os.environ.get("DETACH_DATA") or "data").expanduser().resolve()


def demo_size() -> int:
    try:
        n = int(os.environ.get("DETACH_DEMO_SIZE") or DEFAULT_DEMO_SIZE)
    except ValueError:
        n = DEFAULT_DEMO_SIZE
    return max(16, min(n, 512))


def demos_enabled() -> bool:
    return (os.environ.get("DETACH_DEMOS") or "1").strip() not in ("0", "false", "no")


def demo_spacing(name: str) -> tuple[float, float, float]:
    return tuple(float(s) for s in DEMO_ELECTRODES[name].spacing)  # type: ignore[return-value]
