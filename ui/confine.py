"""Confinement of the dashboard's file access to the data folder (no streamlit import).

Paths shown to users (:func:`display_path`, :func:`relative_paths`) are relative to the data folder or the
workspace, never absolute server paths.

Every path is resolved (symlinks included) before it is listed or read.  Links that stay inside the data folder
work; a link pointing outside it, a broken link and a link loop are refused without being opened; FIFOs,
sockets and devices are refused (opening a FIFO would hang the server).  A folder read as one volume (slices,
a zarr store) is walked first and refused if anything in it points outside.  Messages name paths relative to
the data folder.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from core.io._common import VOLUME_FILE_ENDINGS, _suffixless_dicom

from . import settings

# every ending a reader reads, from the readers' own list (QA: .st, .mrcs and .mrc.bz2 were read by the command line
# but not offered here)
READ_SUFFIXES = VOLUME_FILE_ENDINGS
# listed and accepted too, so that picking one says why it is not a volume (core.io.detect_format's sentence)
EXPLAINED_SUFFIXES = (".txrm", ".xrm")
VOLUME_SUFFIXES = READ_SUFFIXES + EXPLAINED_SUFFIXES
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs")
MAX_FOLDER_ENTRIES = 200_000  # a folder read as one volume is walked entry by entry before it is read

# kinds of a listed entry
DIR, FILE, OUTSIDE, BROKEN = "dir", "file", "outside", "broken"


def _is_volume_name(name: str) -> bool:
    low = name.lower()
    return low.endswith(VOLUME_SUFFIXES) or low.endswith(".ome.tif")


def _is_volume_file(path: Path) -> bool:
    """A file the readers read: by its name, else (no suffix a reader knows) a DICOM file saved without ``.dcm``
    (its first 132 bytes; QA: a suffix-less multi-frame DICOM read by the command line was not listed)."""
    return _is_volume_name(path.name) or _suffixless_dicom(path)


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
    return ValueError(f"{shown} is a link pointing outside the data folder, so the dashboard does not read it: copy "
                      "the data into the data folder, or start the dashboard with DETACH_DATA set to the folder "
                      "holding it.")


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

    def where(path: Path) -> str:
        inner = _shown(root_real, path)
        return inner if inner.startswith(shown + "/") else f"{inner} (in {shown})"

    def not_regular(path: Path) -> ValueError:
        return ValueError(f"{where(path)} is not a regular file (a FIFO, socket or device), so the dashboard does "
                          "not read it.")

    while todo:
        folder = todo.pop()  # a resolved folder: an entry in it that is no link is resolved too
        try:
            with os.scandir(folder) as it:
                listed = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            raise ValueError(f"Cannot list {_shown(root_real, folder)}: {exc.strerror or type(exc).__name__}.") from None
        for e in listed:
            n += 1
            if n > MAX_FOLDER_ENTRIES:
                raise ValueError(f"{shown} holds more than {MAX_FOLDER_ENTRIES:,} files and folders, too many to "
                                 "check before reading it.")
            path = folder / e.name
            if e.is_symlink():
                real = _real(root_real, path, where(path))
                mode = real.stat().st_mode
                is_dir, is_file = stat.S_ISDIR(mode), stat.S_ISREG(mode)
            else:  # the type from the folder listing: no stat per file
                real, is_dir, is_file = path, e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False)
            if is_dir:
                if real not in seen:
                    seen.add(real)
                    todo.append(real)
            elif not is_file:
                raise not_regular(path)
            elif real.suffix.lower() in (".tif", ".tiff"):
                _check_ome_tiff(root_real, real, where(path), "the data folder")


def _check_reference(root_real: Path, real: Path, shown: str, target, what: str, area: str) -> None:
    """Refuse ``real`` when a file it names (``target``, relative to its folder) lies outside ``root_real``."""
    if target in ("", ".", b"", b"."):
        return  # the same file
    p = Path(os.fsdecode(target))
    p = (p if p.is_absolute() else real.parent / p).resolve()
    if not inside(root_real, p):
        raise ValueError(f"{shown} holds {what} pointing to a file outside {area}, so the dashboard does not read "
                         "it.")


def _check_ome_tiff(root_real: Path, real: Path, shown: str, area: str) -> None:
    """Refuse an OME-TIFF whose metadata makes the reader open other files (``UUID FileName=``) outside
    ``root_real``; only its first page's description is read."""
    try:
        import tifffile

        with tifffile.TiffFile(real) as tif:
            desc = tif.pages.first.description if tif.is_ome else ""
    except Exception:  # noqa: BLE001 - not a readable TIFF: the reader refuses it with its own sentence
        return
    for target in re.findall(r"""FileName\s*=\s*["']([^"']*)["']""", desc or ""):
        _check_reference(root_real, real, shown, target, "OME metadata", area)


def _check_hdf5(root_real: Path, real: Path, shown: str, area: str) -> None:
    """Refuse an HDF5 file (inside the data folder) that makes the reader open files outside it: external links,
    virtual datasets and external raw storage naming such files.  A file h5py cannot open is left to the reader."""
    try:
        import h5py
    except ImportError:  # pragma: no cover - the readers need it anyway
        return

    def check(target: str, what: str) -> None:
        _check_reference(root_real, real, shown, target, what, area)

    try:
        f = h5py.File(real, "r")
    except (OSError, ValueError):
        return
    with f:
        seen, todo = set(), [f]
        while todo:
            group = todo.pop()
            for name in group:
                link = group.get(name, getlink=True)
                if isinstance(link, h5py.ExternalLink):
                    check(link.filename, "an external link")
                    continue
                if isinstance(link, h5py.SoftLink):
                    continue
                obj = group.get(name)
                if obj is None or hash(obj.id) in seen:
                    continue
                seen.add(hash(obj.id))
                if isinstance(obj, h5py.Group):
                    todo.append(obj)
                elif isinstance(obj, h5py.Dataset):
                    if obj.is_virtual:
                        for vs in obj.virtual_sources():
                            check(vs.file_name, "a virtual dataset")
                    for ext in obj.external or ():
                        check(ext[0], "external storage")


def confine(root, path, *, tree: bool = True, area: str = "the data folder") -> Path:
    """The resolved path of ``path``, checked to lie inside the resolved ``root`` (the data folder).

    Parameters
    ----------
    root : path-like
        The data folder.
    path : path-like
        A file or folder under ``root`` (possibly a link).
    tree : bool
        For a folder, also walk everything in it (:func:`_check_tree`): do it before reading the folder.
    area : str
        How ``root`` is named in the refusal of an HDF5 or OME-TIFF file naming files outside it.

    Raises
    ------
    ValueError
        One sentence naming ``path`` relative to the data folder: it points outside, is a broken link, is not
        a regular file or folder, or (with ``tree``) something inside the folder is one of these; or an HDF5
        file or OME-TIFF names a file outside.  Nothing outside ``root`` is opened; of a file inside, only the
        links and metadata that name other files are read.
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
    elif real.suffix.lower() in HDF5_SUFFIXES:
        _check_hdf5(root_real, real, shown, area)
    elif real.suffix.lower() in (".tif", ".tiff"):
        _check_ome_tiff(root_real, real, shown, area)
    return real


def file_size_text(n: int) -> str:
    """``"1.8 MB"``, ``"12 kB"``, ``"400 bytes"``: a file's size as the file list shows it (small files showed as
    "0.0 MB")."""
    n = int(n)
    if n >= 100_000:
        return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"
    return f"{n / 1e3:.0f} kB" if n >= 1000 else f"{n} bytes"


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str
    size: int = 0

    @property
    def label(self) -> str:
        return {DIR: f"{self.name}/  (folder)", FILE: f"{self.name}  ({file_size_text(self.size)})",
                OUTSIDE: f"{self.name}  (link outside the data folder: not readable)",
                BROKEN: f"{self.name}  (broken link)"}[self.kind]


def entries(root_real: Path, here: Path) -> list[Entry]:
    """What the browser lists in ``here``: folders, volume files, and marked links that cannot be read.

    Hidden entries, FIFOs, sockets, devices and files of other types are left out; nothing is opened but the first
    132 bytes of a regular file with no suffix a reader knows (a DICOM file saved without ``.dcm``).
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
        elif stat.S_ISREG(st_.st_mode) and _is_volume_file(real):
            out.append(Entry(p.name, FILE, st_.st_size))
    return sorted(out, key=lambda e: (e.kind != DIR, e.name.lower()))


# --------------------------------------------------------------------------- paths shown to users

# an absolute path in a message: starts with "/" after a non-word character (not "://" of a URL), runs until a quote, space or
# bracket (paths with spaces are cut at the space: the tail is still no server path)
_ABS_PATH = re.compile(r"(?<![\w.~/:])/(?:[^\s'\"`,;()\[\]{}<>]+)")


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
