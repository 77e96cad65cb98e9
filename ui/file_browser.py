"""Picking a volume on the server: a folder browser that never leaves its root, and the reading options a file needs."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from . import cache, state
from .messages import one_sentence
from .render import AXES

VOLUME_SUFFIXES = (".tif", ".tiff", ".npy", ".h5", ".hdf5", ".hdf", ".nxs", ".raw", ".bin", ".vol", ".png")


def _inside(root, path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def file_browser(root) -> Path | None:
    """Browse folders under ``root`` (never above it); returns the chosen file or folder, or None."""
    root = Path(root)
    if not root.is_dir():
        st.info(f"The data folder `{root}` does not exist. Put volumes there or set `DETACH_DATA` to a folder "
                "on the server.")
        return None
    rel = st.session_state.get(state.BROWSE_DIR, "")
    here = (root / rel).resolve()
    if not here.is_dir() or not _inside(root, here):
        here, rel = root.resolve(), ""
        st.session_state[state.BROWSE_DIR] = ""
    st.caption(f"Folder: `{here}`")
    entries = []
    try:
        for p in sorted(here.iterdir(), key=lambda p: (not p.is_dir(), p.name.lower())):
            if p.name.startswith("."):
                continue
            if p.is_dir() or p.suffix.lower() in VOLUME_SUFFIXES or p.name.lower().endswith(".ome.tif"):
                entries.append(p)
    except OSError as exc:
        st.error(f"Cannot list `{here}`: {one_sentence(exc)}")
        return None

    def label(p):
        if p.is_dir():
            return f"{p.name}/  (folder)"
        return f"{p.name}  ({p.stat().st_size / 1e6:.1f} MB)"

    def go_up():
        parent = Path(st.session_state.get(state.BROWSE_DIR, "")).parent
        st.session_state[state.BROWSE_DIR] = "" if str(parent) == "." else str(parent)

    if rel:
        st.button("Parent folder", key=state.BROWSE_UP, on_click=go_up, icon=":material/arrow_upward:")
    if not entries:
        st.info("No volume file or folder here.")
        return None
    names = [p.name for p in entries]
    choice = st.selectbox("File or folder", names, key=state.k(state.ADD_FILE, rel or "root"),
                          format_func=lambda n: label(here / n))
    chosen = here / choice
    if chosen.is_dir():
        def open_dir():
            st.session_state[state.BROWSE_DIR] = str(Path(rel) / choice) if rel else choice

        c1, c2 = st.columns(2)
        c1.button("Open folder", key=state.BROWSE_OPEN, on_click=open_dir)
        if not c2.toggle("Read this folder as one volume (slices / zarr)", key=state.k(state.ADD_FILE, "dir", rel)):
            return None
    return chosen


def path_token(path) -> str:
    """A short stable token of a path, for widget keys that belong to one file."""
    import hashlib

    return hashlib.blake2b(str(path).encode(), digest_size=5).hexdigest()


def read_options(path, kind: str) -> dict:
    """Extra reading options a file needs: an HDF5/zarr dataset, or raw shape/dtype; returns load_volume kwargs.

    ``kind`` (``"file"`` / ``"upload"``) specialises the widget keys (:data:`ui.state.READ_DATASET` ...).
    """
    from core.io import detect_format

    try:
        fmt = detect_format(path)
    except (ValueError, OSError) as exc:
        st.error(one_sentence(exc))
        return {}
    opts: dict = {}
    if fmt in ("hdf5", "zarr"):
        try:
            arrays = cache.datasets(str(path), path.stat().st_mtime)
        except (OSError, ValueError, TypeError) as exc:
            st.error(one_sentence(exc))
            return {}
        big = [a for a in arrays if len(a[1]) >= 2]
        if len(big) > 1:
            opts["dataset"] = st.selectbox("Dataset", [a[0] for a in big], key=state.k(state.READ_DATASET, kind),
                                           format_func=lambda n: f"{n} {dict((a[0], a[1]) for a in big)[n]}")
    elif fmt == "raw":
        st.caption("Raw binary: give its layout.")
        c = st.columns(5)
        shape = [c[i].number_input(f"size {a} (voxels)", 1, 100_000, 64, key=state.k(state.READ_RAW_SIZE, kind, a))
                 for i, a in enumerate(AXES)]
        dtype = c[3].selectbox("dtype", ("uint8", "uint16", "int16", "float32"), index=1,
                               key=state.k(state.READ_RAW_DTYPE, kind))
        offset = c[4].number_input("header (bytes)", 0, 10**9, 0, key=state.k(state.READ_RAW_OFFSET, kind))
        opts.update(shape=[int(n) for n in shape], dtype=dtype, offset=int(offset))
    return opts
