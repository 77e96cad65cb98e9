"""The reader registry: format name -> :class:`Reader`.

Each format module registers its reader with :func:`register`; :func:`core.io.load_volume`
looks the format up in :data:`READERS` and calls it.  Every reader takes the path and a
:class:`~core.io._common.ReadOptions` and returns a :class:`~core.io._common.Loaded`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ._common import Loaded, ReadOptions

__all__ = ["READERS", "Reader", "register"]


@dataclass(frozen=True)
class Reader:
    """A registered format.

    Attributes
    ----------
    name : str
        One of :data:`core.io.FORMATS`.
    read : callable(path, ReadOptions) -> Loaded
    target : {"file", "folder", "any"}
        What the path must be.
    options : frozenset of str
        The :class:`ReadOptions` fields besides ``mmap`` the reader accepts.
    """

    name: str
    read: Callable[[Path, ReadOptions], Loaded]
    target: Literal["file", "folder", "any"] = "file"
    options: frozenset[str] = frozenset()


#: Registered readers by format name.
READERS: dict[str, Reader] = {}


def register(name: str, *, target: Literal["file", "folder", "any"] = "file", options: tuple[str, ...] = ()):
    """Decorator registering ``read(path, options) -> Loaded`` as the reader of format ``name``."""

    def deco(read: Callable[[Path, ReadOptions], Loaded]):
        READERS[name] = Reader(name, read, target, frozenset(options))
        return read

    return deco
