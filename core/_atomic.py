"""Atomic file writes: a temporary file beside the destination, moved into place only when complete.

Readers never see a half-written file, and a write that fails (or a process that dies) leaves any
earlier file untouched.  Every writer of the core goes through :func:`atomic_path`.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np

__all__ = ["PARTIAL_RE", "atomic_path", "remove_stale_partials", "write_bytes", "write_npy", "write_npz",
           "write_parquet", "write_text"]

#: Names of the temporary files :func:`atomic_path` makes: ``.<name>.<8 random characters>.partial``
#: (the random part is :func:`tempfile.mkstemp`'s).  Group 1 is the destination's name.
PARTIAL_RE = re.compile(r"\.(.+)\.[a-z0-9_]{8}\.partial")


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, *, mode: int | None = None, mkdir: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; move it onto ``dest`` only if the block succeeds.

    Parameters
    ----------
    dest : path
        Final file.  Its folder must exist unless ``mkdir``.
    mode : int, optional
        Permission bits given to the file before it is moved (default: those of
        :func:`tempfile.mkstemp`, owner read/write).
    mkdir : bool
        Create the folder of ``dest`` first.
    """
    dest = Path(dest)
    if mkdir:
        dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp_path, mode)
        os.replace(tmp_path, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def write_bytes(dest: Path, data: bytes) -> None:
    """Write bytes atomically (the folder is created if missing)."""
    with atomic_path(dest, mkdir=True) as tmp:
        tmp.write_bytes(data)


def write_text(dest: Path, text: str) -> None:
    """Write UTF-8 text atomically (the folder must exist)."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_npz(dest: Path, array: np.ndarray, name: str) -> None:
    """Write one array as a compressed ``.npz`` atomically (the folder is created if missing)."""
    with atomic_path(dest, mkdir=True) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **{name: array})


def write_npy(dest: Path, array: np.ndarray) -> None:
    """Write one array as ``.npy`` atomically (memory-mappable; the folder is created if missing)."""
    with atomic_path(dest, mkdir=True) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)


def write_parquet(dest: Path, table) -> None:
    """Write a :class:`pandas.DataFrame` as Parquet atomically (the folder is created if missing)."""
    with atomic_path(dest, mkdir=True) as tmp:
        table.to_parquet(tmp, index=False)


def remove_stale_partials(folder: str | os.PathLike, *, dest: str | None = None,
                          min_age_s: float = 0.0) -> list[Path]:
    """Remove the temporary files :func:`atomic_path` left in ``folder`` (a process killed mid-write).

    Only plain files whose names match :data:`PARTIAL_RE` are removed; nothing
    else is touched.

    Parameters
    ----------
    folder : path
    dest : str, optional
        Only the temporary files of this destination name.
    min_age_s : float
        Only files not modified for this many seconds (a write in progress in
        another process is younger).

    Returns
    -------
    removed : list of Path
    """
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    now = time.time()
    for p in entries:
        m = PARTIAL_RE.fullmatch(p.name)
        if m is None or (dest is not None and m.group(1) != dest):
            continue
        with contextlib.suppress(OSError):
            if p.is_symlink() or not p.is_file() or now - p.stat().st_mtime < min_age_s:
                continue
            p.unlink()
            removed.append(p)
    return removed
