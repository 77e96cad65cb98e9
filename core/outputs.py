"""Output folders of the command line: checked before any work, staged beside the target, swapped in whole.

A run writes into a hidden folder ``.NAME.partial-<pid>-XXXXXXXX`` beside ``--out`` and moves it into place
only when complete (one ``renameat2`` exchange where the system has it, else two renames), so a killed run
never leaves a partial result where a complete one is expected, and ``--overwrite`` replaces a folder of
earlier results whole.  :func:`remove_stale_staging` removes what a killed run left (only the names this
module makes).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from ._atomic import remove_stale_partials


class OutputError(ValueError):
    """An output folder or file that cannot be used, in one sentence."""


#: Folders no result belongs in (pseudo file systems).
_SYSTEM_ROOTS = ("/proc", "/sys", "/dev")
#: Names this tool writes into an output folder (``--overwrite`` replaces only folders made of these).
_OWN_FILES = frozenset({
    "particles.csv", "particles.parquet", "phases.tif", "labels.tif", "run.json", "recipe.json", "provenance.json",
    "greyscale.tif", "true_phases.tif", "true_labels.tif", "true_particles.csv",
    "classifier.json", "pairs.npz",
    "summary.csv", "tests.csv", "comparison.json", "report.html",  # a comparison's (core.comparison)
})
#: A comparison's trend table, named by its attribute (``trend-C-rate.csv``; :func:`core.recipe.folder_name`).
_TREND_FILE = re.compile(r"trend-[A-Za-z0-9._-]+\.csv")


def _own_file(name: str) -> bool:
    """A file name this tool writes into an output folder."""
    return name in _OWN_FILES or _TREND_FILE.fullmatch(name) is not None


def _under_system_root(path: Path) -> str | None:
    real = os.path.realpath(path)
    for root in _SYSTEM_ROOTS:
        if real == root or real.startswith(root + os.sep):
            return root
    return None


def _staging_re(name: str) -> re.Pattern:
    """Names of the hidden folders :func:`_prepare_out` makes beside ``name`` (``.old``: the earlier folder set aside)."""
    return re.compile(rf"\.{re.escape(name)}\.partial-(?:(\d+)-)?[a-z0-9_]{{8}}(\.old)?")


def _in_use(pid: str | None, folder: Path) -> bool:
    """The staging folder belongs to a live run (its process is alive and older than the folder)."""
    from ._liveness import _pid_alive, process_start_time

    if pid is None or int(pid) == os.getpid() or not _pid_alive(int(pid)):
        return False
    start = process_start_time(int(pid))
    with contextlib.suppress(OSError):
        if start is not None and start > folder.lstat().st_mtime + 1.0:
            return False  # a later process that reuses the id
    return True


def remove_stale_staging(out: Path) -> list[Path]:
    """Remove the hidden ``.NAME.partial-*`` folders killed runs left beside ``out``; returns them.

    A folder of a run still alive is kept.  An earlier ``out`` set aside
    (``.old``) by a run killed between its two renames is put back when
    ``out`` is missing.  Nothing else is touched.
    """
    out = Path(os.path.abspath(out))
    pattern = _staging_re(out.name)
    removed = []
    try:
        entries = sorted(out.parent.iterdir())
    except OSError:
        return removed
    for p in entries:
        m = pattern.fullmatch(p.name)
        if m is None or p.is_symlink() or not p.is_dir() or _in_use(m.group(1), p):
            continue
        if m.group(2) and not os.path.lexists(out):
            with contextlib.suppress(OSError):
                os.rename(p, out)
                continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


#: The Zarr stores the chunked engine writes into an output folder (``core.chunked.write_zarr``).
_OWN_STORES = frozenset({"phases.zarr", "labels.zarr"})
#: The folder ``run`` copies a recipe archive's training pairs into (``recipe-training/<analysis>/``: a classifier
#: folder each, :data:`_OWN_FILES` only).
TRAINING_FOLDER = "recipe-training"


def _foreign_in_store(store: Path) -> str | None:
    """The first entry of one of :data:`_OWN_STORES` that a Zarr v3 store does not hold, or None.

    A store holds ``zarr.json`` files, folders named ``0`` and ``c`` and
    chunk-index folders and files (digits), nothing linked.
    """
    for root, dirs, files in os.walk(store):
        for name in dirs + files:
            q = Path(root) / name
            if q.is_symlink() or not (name == "zarr.json" and name in files or name.isdigit()
                                      or name in ("0", "c") and name in dirs):
                return os.path.relpath(q, store.parent)
    return None


def _foreign_entry(folder: Path) -> str | None:
    """The first entry of ``folder`` (two levels deep, Zarr stores whole) that this tool does not write, or None."""
    for p in sorted(folder.iterdir()):
        if p.is_symlink():
            return p.name
        if p.is_dir() and p.name in _OWN_STORES:
            found = _foreign_in_store(p)
            if found is not None:
                return found
        elif p.is_dir() and p.name == TRAINING_FOLDER:  # (QA: run --overwrite refused its own output of a ZIP)
            for q in sorted(p.iterdir()):
                if q.is_symlink() or not q.is_dir():
                    return f"{p.name}/{q.name}"
                for r in sorted(q.iterdir()):
                    if r.is_symlink() or not r.is_file() or not _own_file(r.name):
                        return f"{p.name}/{q.name}/{r.name}"
        elif p.is_dir():
            for q in sorted(p.iterdir()):
                if q.is_symlink() or not q.is_file() or not _own_file(q.name):
                    return f"{p.name}/{q.name}"
        elif not (p.is_file() and (_own_file(p.name) or p.suffix == ".json")):
            return p.name
    return None


def check_out(out, *, overwrite: bool, reads=()) -> Path:
    """Check ``--out`` before any work and remove stale staging folders beside it; returns it absolute.

    Parameters
    ----------
    out : path
        The ``--out`` folder.
    overwrite : bool
        Replace a folder that already holds files.
    reads : iterable of path
        Files the command reads; ``out`` may not hold any of them when it is replaced.

    Raises
    ------
    OutputError
        ``out`` is a file, a link, a system folder, not writable, or holds
        earlier results without ``overwrite``.
    """
    given = Path(out).expanduser()
    target = Path(os.path.abspath(given))
    root = _under_system_root(target)
    if root is not None:
        raise OutputError(f"--out {given} is inside {root}, a system folder; write the results to an ordinary folder")
    if not target.name or target == target.parent:
        raise OutputError(f"--out {given} is not a folder this tool can write into; name a new folder")
    if target.is_symlink():
        raise OutputError(f"--out {given} is a symbolic link; name the folder itself")
    parent = target.parent
    if not parent.is_dir():
        if parent.exists():
            raise OutputError(f"the parent of --out {given} is a file, not a folder")
        raise OutputError(f"the parent folder of --out does not exist: {parent}")
    if target.exists() and not target.is_dir():
        raise OutputError(f"--out {given} exists and is not a folder")
    remove_stale_staging(target)
    if target.is_dir() and any(target.iterdir()):
        foreign = _foreign_entry(target)
        if foreign is not None:  # (QA: told to pass --overwrite, which then refused: said first)
            raise OutputError(f"--out {given} holds {foreign!r}, which this tool did not write; choose another (new or "
                              "empty) folder: --overwrite only replaces a folder of its own results")
        if not overwrite:
            raise OutputError(f"--out {given} already holds files (earlier results); choose another folder, or pass "
                           "--overwrite to replace the whole folder")
        real = os.path.realpath(target)
        cwd = os.getcwd()
        if cwd == real or cwd.startswith(real + os.sep):
            raise OutputError(f"--out {given} is the current folder (or holds it); --overwrite replaces only another "
                           "folder")
        for f in reads:
            found = os.path.realpath(Path(f).expanduser()) if f is not None else ""
            if found == real or found.startswith(real + os.sep):
                raise OutputError(f"--out {given} holds {Path(f).name}, which this command reads; write the results to "
                               "another folder")
    return target


def _prepare_out(out, *, overwrite: bool, reads=()) -> Path:
    """:func:`_check_out`, then make the empty staging folder ``.NAME.partial-<pid>-XXXXXXXX`` beside ``out``."""
    target = check_out(out, overwrite=overwrite, reads=reads)
    given = Path(out).expanduser()
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=target.parent))
    except OSError as exc:
        raise OutputError(f"--out {given} cannot be written: {exc.strerror or exc}") from None
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would make the results private
    return tmp


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), os.fspath(b))


def _commit(tmp: Path, out: Path) -> None:
    """Put the staging folder ``tmp`` in the place of ``out``, replacing an earlier ``out`` whole."""
    out = Path(os.path.abspath(Path(out).expanduser()))
    if not os.path.lexists(out):
        os.rename(tmp, out)
        return
    if _exchange(tmp, out):  # one step: a reader (or a kill) sees the old folder or the new one
        shutil.rmtree(tmp, ignore_errors=True)
        return
    aside = tmp.with_name(tmp.name + ".old")  # put back by remove_stale_staging if killed in between
    os.rename(out, aside)
    os.rename(tmp, out)
    shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def staged_output(out: Path, *, overwrite: bool = False, reads=()):
    """Yield an empty staging folder; on success it replaces ``out`` whole, on failure it is removed.

    ``out`` is checked first (:func:`_prepare_out`), before the caller reads
    or analyses anything inside the block.
    """
    tmp = _prepare_out(out, overwrite=overwrite, reads=reads)
    try:
        yield tmp
        _commit(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_recipe_path(recipe, out) -> None:
    """``--recipe`` names a file that can be written: not a folder, its folder exists and is writable."""
    given = Path(recipe).expanduser()
    target = Path(os.path.abspath(given))
    root = _under_system_root(target)
    if root is not None:
        raise OutputError(f"--recipe {given} is inside {root}, a system folder; write the recipe to an ordinary folder")
    if target.is_dir():
        raise OutputError(f"--recipe {given} is a folder; give a file name such as {given / 'recipe.json'}")
    if target == Path(os.path.abspath(Path(out).expanduser())):
        raise OutputError("--recipe and --out name the same path; the recipe is a file beside the output folder")
    if not target.parent.is_dir():
        raise OutputError(f"the folder of --recipe does not exist: {target.parent}")
    remove_stale_partials(target.parent, dest=target.name)
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"--recipe {given} cannot be written: {exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(probe)
