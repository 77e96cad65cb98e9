"""Confinement of the dashboard's file access to the data folder (no streamlit import).

Every path is resolved (symlinks included) before it is listed or read.  Links that stay inside the data folder
work; a link pointing outside it, a broken link and a link loop are refused without being opened; FIFOs,
sockets and devices are refused (opening a FIFO would hang the server).  A folder read as one volume (slices,
a zarr store) is walked first and refused if anything in it points outside.  Messages name paths relative to
the data folder.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

VOLUME_SUFFIXES = (".tif", ".tiff", ".npy", ".h5", ".hdf5", ".hdf", ".nxs", ".raw", ".bin", ".vol", ".png")
MAX_FOLDER_ENTRIES = 200_000  # a folder read as one volume is walked entry by entry before it is read

# kinds of a listed entry
DIR, FILE, OUTSIDE, BROKEN = "dir", "file", "outside", "broken"


def _is_volume_name(name: str) -> bool:
    low = name.lower()
    return low.endswith(VOLUME_SUFFIXES) or low.endswith(".ome.tif")


def inside(root_real: Path, real: Path) -> bool:
    return real == root_real or root_real in real.parents


def _shown(root_real: Path, path: Path, root: Path | None = None) -> str:
    """``path`` as shown to the user: relative to the data folder (lexically), never absolute."""
    for r in (root_real, root):
        if r is not None:
            try:
                return str(path.relative_to(r)) if path != r else "the data folder"
            except ValueError:
                pass
    return path.name  # never an absolute server path


def refuse_outside(shown: str) -> ValueError:
    return ValueError(f"{shown} is a link pointing outside the data folder, so the dashboard does not read it.")


def _real(root_real: Path, path: Path, shown: str) -> Path:
    """``path`` resolved (symlinks included), required inside ``root_real``; ValueError (one sentence) if not."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise ValueError(f"{shown} is a broken link or no longer exists.") from None
    if not inside(root_real, real):
        raise refuse_outside(shown)
    return real


def _check_tree(root_real: Path, top: Path, shown: str) -> None:
    """Walk the folder ``top`` (resolved) as a reader would, following links that stay inside ``root_real``.

    Raises ValueError (one sentence) at the first entry that points outside, is a broken link, is not a regular
    file or folder, or when the folder holds more than :data:`MAX_FOLDER_ENTRIES` entries.
    """
    seen, todo, n = {top}, [top], 0
    while todo:
        folder = todo.pop()
        try:
            names = sorted(os.listdir(folder))
        except OSError as exc:
            raise ValueError(f"Cannot list {_shown(root_real, folder)}: {exc.strerror or type(exc).__name__}.") from None
        for name in names:
            n += 1
            if n > MAX_FOLDER_ENTRIES:
                raise ValueError(f"{shown} holds more than {MAX_FOLDER_ENTRIES:,} files and folders, too many to "
                                 "check before reading it.")
            inner = _shown(root_real, folder / name)
            where = inner if inner.startswith(shown + "/") else f"{inner} (in {shown})"
            real = _real(root_real, folder / name, where)
            mode = real.stat().st_mode
            if stat.S_ISDIR(mode):
                if real not in seen:
                    seen.add(real)
                    todo.append(real)
            elif not stat.S_ISREG(mode):
                raise ValueError(f"{where} is not a regular file (a FIFO, socket or device), so the "
                                 "dashboard does not read it.")


def confine(root, path, *, tree: bool = True) -> Path:
    """The resolved path of ``path``, checked to lie inside the resolved ``root`` (the data folder).

    Parameters
    ----------
    root : path-like
        The data folder.
    path : path-like
        A file or folder under ``root`` (possibly a link).
    tree : bool
        For a folder, also walk everything in it (:func:`_check_tree`): do it before reading the folder.

    Raises
    ------
    ValueError
        One sentence naming ``path`` relative to the data folder: it points outside, is a broken link, is not
        a regular file or folder, or (with ``tree``) something inside the folder is one of these.  Nothing is
        opened for reading.
    """
    root_real = Path(root).resolve(strict=True)
    path = Path(path)
    shown = _shown(root_real, path, Path(root))
    real = _real(root_real, path, shown)
    mode = real.stat().st_mode
    if stat.S_ISDIR(mode):
        if tree:
            _check_tree(root_real, real, shown)
    elif not stat.S_ISREG(mode):
        raise ValueError(f"{shown} is not a regular file (a FIFO, socket or device), so the dashboard does not "
                         "read it.")
    return real


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str
    size: int = 0

    @property
    def label(self) -> str:
        return {DIR: f"{self.name}/  (folder)", FILE: f"{self.name}  ({self.size / 1e6:.1f} MB)",
                OUTSIDE: f"{self.name}  (link outside the data folder: not readable)",
                BROKEN: f"{self.name}  (broken link)"}[self.kind]


def entries(root_real: Path, here: Path) -> list[Entry]:
    """What the browser lists in ``here``: folders, volume files, and marked links that cannot be read.

    Hidden entries, FIFOs, sockets, devices and files of other types are left out; nothing is opened.
    """
    out = []
    for p in here.iterdir():
        if p.name.startswith("."):
            continue
        try:
            real = p.resolve(strict=True)
        except (OSError, RuntimeError):
            if p.is_symlink() and _is_volume_name(p.name):
                out.append(Entry(p.name, BROKEN))
            continue
        if not inside(root_real, real):
            try:
                is_dir = stat.S_ISDIR(os.stat(p).st_mode)  # the target's type only, never its content
            except OSError:
                is_dir = False
            if is_dir or _is_volume_name(p.name):
                out.append(Entry(p.name, OUTSIDE))
            continue
        try:
            st_ = real.stat()
        except OSError:
            continue
        if stat.S_ISDIR(st_.st_mode):
            out.append(Entry(p.name, DIR))
        elif stat.S_ISREG(st_.st_mode) and _is_volume_name(p.name):
            out.append(Entry(p.name, FILE, st_.st_size))
    return sorted(out, key=lambda e: (e.kind != DIR, e.name.lower()))
