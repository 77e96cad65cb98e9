"""Messages to the user: a one-shot flash that survives ``st.rerun``, and an exception as one sentence."""

from __future__ import annotations

import streamlit as st

from . import state


def flash(kind: str, text: str) -> None:
    """Queue a message for the next run (survives ``st.rerun``)."""
    st.session_state[state.FLASH] = (kind, text)


def show_flash() -> None:
    msg = st.session_state.pop(state.FLASH, None)
    if msg:
        getattr(st, msg[0], st.info)(msg[1])


def one_sentence(exc: BaseException) -> str:
    """An exception as the one sentence shown to users."""
    msg = str(exc).strip().replace("\n", " ") or type(exc).__name__
    if isinstance(exc, KeyError):
        msg = f"missing key {msg}"
    return msg.rstrip(".") + "."
