"""SQLite connections shared by the workspace catalogue and the job table (several processes at once)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from typing import Iterator

__all__ = ["connect", "transaction"]


def connect(path: str | os.PathLike, *, foreign_keys: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode with rows by name, WAL journal and a 30 s wait on locks."""
    con = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    con.row_factory = sqlite3.Row
    if foreign_keys:
        con.execute("PRAGMA foreign_keys = ON")
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    return con


@contextlib.contextmanager
def transaction(path: str | os.PathLike, *, foreign_keys: bool = False) -> Iterator[sqlite3.Connection]:
    """One ``BEGIN IMMEDIATE`` transaction: committed if the block succeeds, rolled back otherwise."""
    con = connect(path, foreign_keys=foreign_keys)
    try:
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    finally:
        con.close()
