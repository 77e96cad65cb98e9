"""Messages to the user: a one-shot flash that survives ``st.rerun``, an exception as one sentence, and
server paths shown relative to the data folder and the workspace (never as absolute server paths)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import streamlit as st

from . import settings, state

# an absolute path in a message: starts with "/" after a non-word character, runs until a quote, space or
# bracket (paths with spaces are cut at the space: the tail is still no server path)
_ABS_PATH = re.compile(r"(?<![\w.~/])/(?:[^\s'\"`,;()\[\]{}<>]+)")


# a bytes literal, with the "header=" before it: b'root:x:0:0'
_BYTES = re.compile(r"""[:,]?\s*(?:header\s*=\s*)?\bb(['"]).*?(?<!\\)\1""")
# the end of a sentence followed by another one ("... data. If you trust ..."); "e.g. 'x'" or "scan.tif" are no end
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)\]'\"])[.!?]\s+(?=[A-Z])")


def flash(kind: str, text: str) -> None:
    """Queue a message for the next run (survives ``st.rerun``)."""
    st.session_state[state.FLASH] = (kind, text)


def show_flash() -> None:
    msg = st.session_state.pop(state.FLASH, None)
    if msg:
        getattr(st, msg[0], st.info)(msg[1])


def _forms(root: Path) -> list[str]:
    """The spellings of a folder a message may hold (as given and resolved), without a trailing slash."""
    out = {os.fspath(root).rstrip("/")}
    try:
        out.add(os.fspath(root.resolve()).rstrip("/"))
    except (OSError, RuntimeError):
        pass
    return [s for s in out if s]


def _uploaded_name(rel: str) -> str:
    """``uploads/<token>/<name>`` -> ``<name>`` (the token is the workspace's business)."""
    parts = rel.split("/")
    return "/".join(parts[2:]) if len(parts) >= 3 and parts[0] == "uploads" else rel


def display_path(path) -> str:
    """How a server path is shown: relative to the data folder or the workspace, otherwise its name only.

    >>> display_path(settings.data_dir() / "sub" / "scan.tif")
    'sub/scan.tif'
    """
    return relative_paths(os.fspath(path))


def relative_paths(text: str) -> str:
    """``text`` with every absolute server path made relative: to the data folder (``sub/scan.tif``), to the
    workspace (``analyses/3/run.json``; an uploaded file by its name), anything else by its last part."""
    roots = [(f, "data") for f in _forms(settings.data_dir())]
    roots += [(f, "ws") for f in _forms(settings.workspace_root())]
    # longest first: a workspace inside the data folder (or the reverse) wins by its longer prefix
    for prefix, kind in sorted(roots, key=lambda r: -len(r[0])):
        def sub(m: re.Match, kind=kind) -> str:
            rel = m.group(1).lstrip("/")
            if not rel:
                return "the data folder" if kind == "data" else "the workspace"
            return _uploaded_name(rel) if kind == "ws" else rel

        text = re.sub(re.escape(prefix) + r"((?:/[^\s'\"`,;()\[\]{}<>]*)?)(?![^\s'\"`,;()\[\]{}<>])", sub, text)
    return _ABS_PATH.sub(_last_part, text)


def _last_part(m: re.Match) -> str:
    whole = m.group(0)
    path = whole.rstrip(".:")  # a sentence's full stop or a colon after the path is not part of it
    return (Path(path).name or path) + whole[len(path):]


def one_sentence(exc: BaseException) -> str:
    """An exception as the one sentence shown to users (server paths relative, see :func:`relative_paths`)."""
    msg = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, KeyError):
        msg = f"missing key {msg}"
    msg = _BYTES.sub("", msg)  # a file's first bytes (a reader quoting its header) are never shown
    msg = _SENTENCE_END.split(relative_paths(msg), maxsplit=1)[0]  # a library's advice after it is dropped
    return msg.rstrip(" .") + "."
