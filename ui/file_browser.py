"""Picking a volume on the server: a folder browser that never leaves its root, and the reading options a file needs.

Confinement (:mod:`ui.confine`): links pointing outside the data folder and broken links are listed marked and
refused without being opened; FIFOs, sockets and devices are not listed; a folder read as one volume is walked
first.  The chosen volume is returned by its resolved path, so a link changed later cannot redirect a sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from . import cache, state
from .confine import BROKEN, DIR, OUTSIDE, READ_SUFFIXES, VOLUME_SUFFIXES, confine, entries, inside, refuse_outside
from .messages import one_sentence
from .render import AXES

__all__ = ["READ_SUFFIXES", "VOLUME_SUFFIXES", "Pick", "confine", "file_browser", "path_token", "read_options"]

@dataclass(frozen=True)
class Pick:
    """A file or folder chosen in the browser.

    Attributes
    ----------
    path : Path
        Its resolved path, inside the resolved data folder (read this, store this).
    name : str
        The stem of the entry the user picked (a link's own name), the default sample name.
    """

    path: Path
    name: str


def file_browser(root) -> Pick | None:
    """Browse folders under ``root`` (never above it); returns the chosen file or folder, or None.

    The choice is confined (:func:`confine`): a link pointing outside ``root`` is refused with one sentence.
    """
    root = Path(root)
    if not root.is_dir():
        st.info("The server data folder does not exist. Put volumes there or set `DETACH_DATA` to a folder "
                "on the server.")
        return None
    root_real = root.resolve()
    rel = st.session_state.get(state.BROWSE_DIR, "")
    here = (root / rel).resolve()
    if not here.is_dir() or not inside(root_real, here):
        here, rel = root_real, ""
        st.session_state[state.BROWSE_DIR] = ""
    st.caption(f"Folder: `{rel}` in the data folder" if rel else "Folder: the top of the data folder")
    try:
        listed = entries(root_real, here)
    except OSError as exc:
        st.error(f"Cannot list {rel or 'the data folder'}: {exc.strerror or type(exc).__name__}.")
        return None

    def go_up():
        parent = Path(st.session_state.get(state.BROWSE_DIR, "")).parent
        st.session_state[state.BROWSE_DIR] = "" if str(parent) == "." else str(parent)

    if rel:
        st.button("Parent folder", key=state.BROWSE_UP, on_click=go_up, icon=":material/arrow_upward:")
    if not listed:
        st.info("No volume file or folder here.")
        return None
    by_name = {e.name: e for e in listed}
    choice = st.selectbox("File or folder", list(by_name), key=state.k(state.ADD_FILE, rel or "root"),
                          format_func=lambda n: by_name[n].label if n in by_name else n)
    entry = by_name.get(choice)
    if entry is None:
        return None
    shown = str(Path(rel) / choice) if rel else choice
    if entry.kind == OUTSIDE:
        st.error(str(refuse_outside(shown)))
        return None
    if entry.kind == BROKEN:
        st.error(f"{shown} is a broken link or no longer exists.")
        return None
    is_dir = entry.kind == DIR
    if is_dir:
        def open_dir():
            st.session_state[state.BROWSE_DIR] = shown

        c1, c2 = st.columns(2)
        c1.button("Open folder", key=state.BROWSE_OPEN, on_click=open_dir)
        if _is_zarr_store(here / choice):  # one volume, not a folder to browse
            c2.caption("A Zarr store: read as one volume.")
        elif not c2.toggle("Read this folder as one volume (slices / zarr)", key=state.k(state.ADD_FILE, "dir", rel)):
            return None
    try:
        real = confine(root_real, here / choice)
    except (ValueError, OSError) as exc:
        st.error(one_sentence(exc, alone=True))
        return None
    return Pick(real, sample_name(choice))


def _is_zarr_store(path: Path) -> bool:
    """Whether a listed folder is a Zarr store (by its name or its metadata files; nothing is read)."""
    from core.io import detect_format

    try:
        return detect_format(path) == "zarr"
    except (ValueError, OSError):  # a folder of neither slices nor zarr
        return False


def sample_name(path) -> str:
    """The name a new sample is offered: the file or folder name without its suffix, nor ``.ome``
    (``scan.ome.zarr``, ``scan.ome.tif`` -> ``scan``), nor the format before a compression's suffix
    (``seg.nii.gz``, ``stack.mrc.bz2`` -> ``seg``, ``stack``)."""
    from core.io import COMPRESSED_ENDINGS

    name = Path(path).name
    if name.lower().endswith(COMPRESSED_ENDINGS):  # the compression's suffix first, then the format's below
        name = Path(name).stem
    stem = Path(name).stem
    return stem[:-4] if stem.lower().endswith(".ome") and len(stem) > 4 else stem


def path_token(path) -> str:
    """A short stable token of a path, for widget keys that belong to one file."""
    import hashlib

    return hashlib.blake2b(str(path).encode(), digest_size=5).hexdigest()


def read_options(path, kind: str) -> dict:
    """Extra reading options a file needs: an HDF5/zarr dataset or Amira data item, or raw shape/dtype; returns
    load_volume kwargs.

    ``kind`` (``"file"`` / ``"upload"``) specialises the widget keys (:data:`ui.state.READ_DATASET` ...).

    Raises
    ------
    ValueError
        One sentence (server paths relative) when the file's format or datasets cannot be told.
    """
    from core.io import detect_format

    try:
        fmt = detect_format(path)
    except (ValueError, OSError) as exc:
        raise ValueError(one_sentence(exc)) from None
    opts: dict = {}
    if fmt == "amira":
        try:
            items = cache.datasets(str(path), path.stat().st_mtime)
        except Exception as exc:  # noqa: BLE001 - an untrusted file: any reader failure is a refusal
            raise ValueError(one_sentence(exc)) from None
        if len(items) > 1:  # the one read by default (Labels where there is one) first
            shown = {a[0]: f"{a[0]}  ({a[2]})" for a in items}
            opts["dataset"] = st.selectbox("Data item", list(shown), key=state.k(state.READ_DATASET, kind),
                                           format_func=shown.get,
                                           help="The file holds several data items on its lattice (a label field "
                                                "and its probabilities, a scan and its labels...): the one to read.")
    elif fmt in ("hdf5", "zarr"):
        try:
            arrays = cache.datasets(str(path), path.stat().st_mtime)
        except Exception as exc:  # noqa: BLE001 - an untrusted file: any reader failure is a refusal
            raise ValueError(one_sentence(exc)) from None
        # the largest first: tomography files also hold small dark and flat fields, and the first by name
        # (/exchange/dark before /exchange/data) was offered before
        # (2D and 3D first: a 4D dataset, which cannot be read as a volume, was offered before a readable 2D one)
        big = sorted((a for a in arrays if len(a[1]) >= 2),
                     key=lambda a: (len(a[1]) > 3, -math.prod(a[1]), a[0]))
        if len(big) > 1:
            shown = {a[0]: f"{a[0]}  ({'×'.join(map(str, a[1]))}, {a[2]})" for a in big}
            opts["dataset"] = st.selectbox("Dataset", list(shown), key=state.k(state.READ_DATASET, kind),
                                           format_func=shown.get,
                                           help="Every array of two or more dimensions in the file, the largest "
                                                "first (dark and flat fields are usually small).")
    elif fmt == "raw":
        from core.io.rawheader import header_beside, layout_from_name

        try:
            layout = header_beside(path)
        except (ValueError, OSError) as exc:
            raise ValueError(one_sentence(exc)) from None
        if layout is not None:
            order = "little-endian" if layout.byte_order == "<" else "big-endian"
            st.caption(f"Raw binary laid out as its header {layout.header.name} ({layout.kind}) states: "
                       f"{'×'.join(map(str, layout.shape))} voxels (z×y×x), {layout.dtype}, {order}"
                       + (f", {layout.offset:,} header bytes" if layout.offset else "") + ".")
            return opts
        named = layout_from_name(path)
        if named is not None and st.session_state.get(state.k(state.READ_RAW_NAMED, kind)) != str(path):
            # the layout its name writes, once per file (what the user types after that is theirs)
            st.session_state[state.k(state.READ_RAW_NAMED, kind)] = str(path)
            for a, n in zip(AXES, named.shape):
                st.session_state[state.k(state.READ_RAW_SIZE, kind, a)] = int(n)
            st.session_state[state.k(state.READ_RAW_DTYPE, kind)] = named.dtype
            st.session_state[state.k(state.READ_RAW_ORDER, kind)] = named.byte_order
            st.session_state[state.k(state.READ_RAW_OFFSET, kind)] = 0
        if named is not None:
            st.caption(f"Raw binary: layout proposed from its name, {named.describe()}; it fills the file exactly. "
                       "A name cannot tell x from z: check the slices (or put its header beside it: an ESRF "
                       ".vol.info, a MetaImage .mhd or a VGStudio / Nikon .vgi is read).")
        else:
            st.caption("Raw binary: give its layout (or put its header beside it: an ESRF .vol.info, a MetaImage "
                       ".mhd or a VGStudio / Nikon .vgi is read).")
        c = st.columns(6)
        for a in AXES:  # first values as keys (the name's layout above sets them through the same keys)
            state.init(state.k(state.READ_RAW_SIZE, kind, a), 64)
        state.init(state.k(state.READ_RAW_DTYPE, kind), "uint16")
        state.init(state.k(state.READ_RAW_OFFSET, kind), 0)
        shape = [c[i].number_input(f"size {a} (voxels)", 1, 100_000, key=state.k(state.READ_RAW_SIZE, kind, a))
                 for i, a in enumerate(AXES)]
        dtype = c[3].selectbox("dtype", RAW_DTYPES, key=state.k(state.READ_RAW_DTYPE, kind))
        # (QA: a big-endian float file, ImageJ's "Save as Raw" default, was read byte-swapped: values up to 1e38)
        order = c[4].selectbox("byte order", tuple(RAW_BYTE_ORDERS), key=state.k(state.READ_RAW_ORDER, kind),
                               format_func=RAW_BYTE_ORDERS.get, disabled=np.dtype(dtype).itemsize == 1,
                               help="Little-endian: most software on PCs. Big-endian: ImageJ / Fiji's File > Save "
                                    "As > Raw Data, and older Unix workstations. Wrong, the grey values come out "
                                    "as noise with huge values.")
        offset = c[5].number_input("header (bytes)", 0, 10**9, key=state.k(state.READ_RAW_OFFSET, kind))
        opts.update(shape=[int(n) for n in shape], dtype=dtype, offset=int(offset))
        if np.dtype(dtype).itemsize > 1 and order != "<":
            opts["byte_order"] = order
    return opts


#: The voxel types a raw file can be read as (the Samples page's choice).
RAW_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")
#: Byte orders of a raw file's multi-byte values (``byte_order`` of :func:`core.io.load_volume`).
RAW_BYTE_ORDERS = {"<": "little-endian", ">": "big-endian"}
