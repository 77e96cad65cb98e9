"""Settings read from the environment (no streamlit import).

``DETACH_WORKSPACE``  workspace folder (default ``./workspace``)
``DETACH_DATA``       server-side data folder for the file browser (default ``./data``)
``DETACH_DEMO_SIZE``  edge length in voxels of the demo electrodes added on first start (default 160)
``DETACH_DEMOS``      ``0`` skips adding and analysing the demo electrodes on first start
``DETACH_SCHEDULER``  address of a running Dask scheduler for the background jobs (its workers must see the
                      workspace at the same path); default: a local cluster started with the server
``DETACH_WORKERS``    worker processes of that local cluster (default: the CPU cores, at most 4)
``DETACH_JOBS``       ``inline`` runs jobs inside the page's own script run instead (tests; no cluster)
``DETACH_CHUNK_SIZE`` chunk edge in voxels of the analyses that run on the chunked engine (default 128, as the
                      command line): a sample whose whole-volume analysis would not fit the memory available
                      (``DETACH_MEMORY_BUDGET`` lowers it, :mod:`core.memory`) runs chunk by chunk on the jobs'
                      cluster, and its phases and labels are stored as Zarr
``DETACH_CHUNKED``    ``always`` runs every analysis the chunked engine can run on it, whatever the sample's
                      size (as ``--chunk-size`` does on the command line; to try the chunked path on a small
                      sample); default ``auto``: only where the memory-budget rule says so
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


def scheduler_address() -> str | None:
    return (os.environ.get("DETACH_SCHEDULER") or "").strip() or None


def local_workers() -> int:
    try:
        n = int(os.environ.get("DETACH_WORKERS") or 0)
    except ValueError:
        n = 0
    return n if n >= 1 else max(1, min(os.cpu_count() or 1, 4))


def chunk_size() -> int:
    """``DETACH_CHUNK_SIZE`` (8..4096; the command line's 128 when unset or unreadable)."""
    from core.chunked import DEFAULT_CHUNK

    try:
        n = int(os.environ.get("DETACH_CHUNK_SIZE") or DEFAULT_CHUNK)
    except ValueError:
        n = DEFAULT_CHUNK
    return max(8, min(n, 4096))


def chunked_always() -> bool:
    """``DETACH_CHUNKED=always``: every analysis the chunked engine runs goes to it."""
    return (os.environ.get("DETACH_CHUNKED") or "").strip().lower() == "always"


def jobs_inline() -> bool:
    return (os.environ.get("DETACH_JOBS") or "").strip().lower() == "inline"


def demo_spacing(name: str) -> tuple[float, float, float]:
    return tuple(float(s) for s in DEMO_ELECTRODES[name].spacing)  # type: ignore[return-value]


#: Seconds to generate and to analyse one 160³ demo electrode on this project's 2-core machine (measured
#: 2026-12-02 with core.synth.demo_electrode + core.pipeline.run: generation 3.2-4.6 s, analysis 4.3-4.6 s,
#: with other work running); both grow about with the number of voxels.
DEMO_SECONDS_160 = (4.0, 4.5)


def demo_time_text(size: int) -> str:
    """How long one demo electrode of ``size``³ voxels takes, in the words both the first start and the add form use."""
    scale = (int(size) / 160) ** 3
    gen, ana = (max(1, round(t * scale)) for t in DEMO_SECONDS_160)
    return f"about {gen} s to generate and {ana} s to analyse on 2 cores"
