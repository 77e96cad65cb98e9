"""Messages to the user: a one-shot flash that survives ``st.rerun``, an exception as one sentence, and
server paths shown relative to the data folder and the workspace (never as absolute server paths)."""

from __future__ import annotations

import re
import time

import streamlit as st

from . import state
from .confine import display_path, relative_paths

__all__ = ["display_path", "drop_flash", "flash", "one_sentence", "read_or_stop", "relative_paths", "show_flash"]

# a bytes literal, with the "header=" before it: b'root:x:0:0'
_BYTES = re.compile(r"""[:,]?\s*(?:header\s*=\s*)?\bb(['"]).*?(?<!\\)\1""")
# the end of a sentence followed by another one ("... data. If you trust ..."); "e.g. 'x'" or "scan.tif" are no end
_PLAIN_WORD = re.compile(r"[a-z]+(?=[\s,;:]|$)")
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)\]'\"])[.!?]\s+(?=[A-Z])")


#: Seconds a flashed message stays shown through further reruns (a component that reports its value when it is
#: drawn, as the brush canvas does, reruns the page at once: a one-run message was gone before it could be read).
FLASH_KEEP_S = 10.0


def flash(kind: str, text: str) -> None:
    """Queue a message for the next run (survives ``st.rerun``).

    Messages queued before the next run are all shown, in order (a page's own message is not replaced by the
    jobs panel's "done" of the same moment); the same message queued twice is shown once.  Each is shown on
    every run for :data:`FLASH_KEEP_S` seconds after it was queued, and at least once.
    """
    queued = st.session_state.setdefault(state.FLASH, [])
    if not any((k, t) == (kind, text) for k, t, _ in queued):
        queued.append((kind, text, time.monotonic()))


def drop_flash(prefixes: tuple[str, ...]) -> None:
    """Drop the queued messages whose text starts with one of ``prefixes`` (a message that a newer one replaces,
    as a job's "queued" by its "done")."""
    queued = st.session_state.get(state.FLASH)
    if queued:
        st.session_state[state.FLASH] = [m for m in queued if not m[1].startswith(prefixes)]


def show_flash() -> None:
    """The queued messages, one box per kind (success, info, ...: in the order each kind first came), a line a
    message: jobs that end one after the other add lines, not boxes."""
    queued = st.session_state.pop(state.FLASH, None) or []
    kinds: dict[str, list[str]] = {}
    for kind, text, _ in queued:
        kinds.setdefault(kind, []).append(text)
    for kind, texts in kinds.items():
        getattr(st, kind, st.info)("  \n".join(texts))
    now = time.monotonic()
    kept = [m for m in queued if now - m[2] < FLASH_KEEP_S]
    if kept:
        st.session_state[state.FLASH] = kept


def one_sentence(exc: BaseException, *, alone: bool = False) -> str:
    """An exception as the one sentence shown to users (server paths relative, see :func:`relative_paths`).

    ``alone``: the sentence is shown on its own (not after "... failed: "), so its first letter is put in upper case
    where its first word is a plain lower-case word (exceptions are raised in lower case, as Python's own; QA walk 7
    read "a sample needs a non-empty name"); a first word that is a name (``sigma_um``, ``scan.tif``) keeps its case.
    """
    msg = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, KeyError):
        msg = f"missing key {msg}"
    msg = _BYTES.sub("", msg)  # a file's first bytes (a reader quoting its header) are never shown
    msg = _SENTENCE_END.split(relative_paths(msg), maxsplit=1)[0]  # a library's advice after it is dropped
    msg = msg.rstrip(" .") + "."
    return msg[:1].upper() + msg[1:] if alone and _PLAIN_WORD.match(msg) else msg


def read_or_stop(read, *args):
    """``read(*args)`` (a cached slice of a sample), or one sentence and the page stopped where the file's voxels
    there cannot be read: a big sample is read lazily, box by box (:class:`core.chunked.LazyArray`), so a corrupt
    compressed chunk shows only when a slice in it is first read."""
    from core.io import InputFileError

    try:
        return read(*args)
    except InputFileError as exc:
        st.error(one_sentence(exc, alone=True))
        st.stop()
