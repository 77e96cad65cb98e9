"""A saved workspace: a folder with a SQLite catalogue of samples and analyses.

Layout of a workspace folder::

    catalogue.sqlite           tables ``samples``, ``analyses``, ``meta``
    analyses/<id>/phases.npz   phase codes (0 pore, 1 CBD, 2 NMC), compressed
    analyses/<id>/labels.npz   particle labels, compressed
    analyses/<id>/particles.parquet
    uploads/<token>/<name>     files uploaded through the dashboard
    cache/demo-*.npy           regenerable files (demo greyscale volumes)

Crash safety
------------
Every artefact is written to a temporary file in its final folder and moved
into place with :func:`os.replace`; every change to the catalogue is one
transaction.  An analysis is a new row (status ``running``) and a new folder:
a run that fails or is killed never touches earlier results.  A run that
raises is marked ``failed`` with its error; a run whose process died is found
on the next :class:`Workspace` open (``running`` rows whose owner process is
gone, or started before it) and marked ``failed`` then.

Nothing here imports streamlit; every method opens its own short-lived SQLite
connection, so one :class:`Workspace` can be shared between threads.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import numpy as np
import pandas as pd

from ._validate import check_choice, normalize_spacing

Status = Literal["running", "done", "failed"]
STATUSES: tuple[str, ...] = ("running", "done", "failed")
SIDES: tuple[str, ...] = ("auto", "start", "end")
DEMO_PREFIX = "demo:"
SCHEMA_VERSION = 1
UPLOAD_GRACE_S = 24 * 3600.0  # an upload not added as a sample is removed after this

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS samples (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL,
    group_label    TEXT NOT NULL DEFAULT '',
    source         TEXT NOT NULL,
    source_options TEXT NOT NULL DEFAULT '{}',
    spacing_z_um   REAL NOT NULL,
    spacing_y_um   REAL NOT NULL,
    spacing_x_um   REAL NOT NULL,
    axis           INTEGER NOT NULL DEFAULT 0 CHECK (axis IN (0, 1, 2)),
    separator_side TEXT NOT NULL DEFAULT 'auto' CHECK (separator_side IN ('auto', 'start', 'end')),
    created_at     REAL NOT NULL,
    updated_at     REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS analyses (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    sample_id     INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
    params        TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    error         TEXT,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    owner_pid     INTEGER,
    provenance    TEXT NOT NULL DEFAULT '{}',
    phases_path   TEXT,
    labels_path   TEXT,
    table_path    TEXT,
    n_particles   INTEGER
);
CREATE INDEX IF NOT EXISTS analyses_sample ON analyses(sample_id, status);
"""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Sample:
    """One row of ``samples``.

    Attributes
    ----------
    source : str
        A file or folder path, or ``"demo:NAME"`` for a synthetic demo electrode.
    source_options : dict
        How to read the source (e.g. ``{"shape": [160, 160, 160], "seed": 0}``
        for a demo, ``{"read": {"dataset": "/data"}}`` for HDF5), and
        ``"downsample"``: a block-mean factor applied after reading (see
        :attr:`downsample`).
    spacing : (3,) float, µm
        Voxel size (z, y, x) of the volume as analysed, i.e. after
        downsampling (the file's voxel size times :attr:`downsample`).
    axis : {0, 1, 2}
        Electrode thickness axis.
    separator_side : {"auto", "start", "end"}
    created_at, updated_at : float
        Seconds since the epoch.
    """

    id: int
    name: str
    group_label: str
    source: str
    source_options: dict
    spacing: tuple[float, float, float]
    axis: int
    separator_side: str
    created_at: float
    updated_at: float

    @property
    def is_demo(self) -> bool:
        """True for a synthetic demo electrode."""
        return self.source.startswith(DEMO_PREFIX)

    @property
    def demo_name(self) -> str | None:
        return self.source[len(DEMO_PREFIX):] if self.is_demo else None

    @property
    def downsample(self) -> int:
        """Block-mean downsampling factor applied when the volume is loaded (1 = none)."""
        return int(self.source_options.get("downsample", 1))


@dataclass(frozen=True)
class Analysis:
    """One row of ``analyses``.

    Attributes
    ----------
    params : dict
        :meth:`core.pipeline.AnalysisParams.to_dict` as requested.
    status : {"running", "done", "failed"}
    error : str or None
        One sentence for a failed run.
    provenance : dict
        From :func:`core.pipeline.run` plus ``resolved_params`` (thresholds filled in)
        and, for runs through :meth:`Workspace.run_analysis`, ``input``: the
        sample's ``source`` and ``source_options`` at run time (what
        :func:`core.recipe.entry_from_workspace` replays; older rows lack it).
    phases_path, labels_path, table_path : str or None
        Artefact paths relative to the workspace folder (set when done).
    """

    id: int
    sample_id: int
    params: dict
    status: str
    error: str | None
    created_at: float
    updated_at: float
    owner_pid: int | None
    provenance: dict
    phases_path: str | None
    labels_path: str | None
    table_path: str | None
    n_particles: int | None

    @property
    def resolved_params(self) -> dict:
        """Parameters as resolved by the run (falls back to the requested ones)."""
        return self.provenance.get("resolved_params", self.params)


# --------------------------------------------------------------------------- process liveness


def _boot_time() -> float | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime"):
                return float(line.split()[1])
    return None


def process_start_time(pid: int) -> float | None:
    """Start time (seconds since the epoch) of process ``pid``; None if it is gone or unknown."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
    except (OSError, ValueError):
        return None
    boot = _boot_time()
    if boot is None:
        return None
    with contextlib.suppress(ValueError, IndexError):
        # field 22 (starttime, clock ticks since boot) counted after the ')' closing the command name
        fields = stat[stat.rindex(")") + 2:].split()
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


_IMPORT_TIME = time.time()


def _own_start() -> float:
    start = process_start_time(os.getpid())
    return start if start is not None else _IMPORT_TIME


def _run_is_orphaned(owner_pid: int | None, created_at: float, own_pid: int, own_start: float) -> bool:
    """A ``running`` row whose process is gone (or is a later process with the same id)."""
    if owner_pid is None:
        return True
    if owner_pid == own_pid:
        return created_at < own_start - 1.0
    if not _pid_alive(owner_pid):
        return True
    start = process_start_time(owner_pid)
    return start is not None and created_at < start - 1.0


# --------------------------------------------------------------------------- atomic writers


@contextlib.contextmanager
def _atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; move it onto ``dest`` only if the block succeeds."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def write_npz(dest: Path, array: np.ndarray, name: str) -> None:
    """Write one array as a compressed ``.npz`` atomically."""
    with _atomic_path(dest) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **{name: array})


def write_parquet(dest: Path, table: pd.DataFrame) -> None:
    """Write a table as Parquet atomically."""
    with _atomic_path(dest) as tmp:
        table.to_parquet(tmp, index=False)


def write_bytes(dest: Path, data: bytes) -> None:
    """Write bytes atomically."""
    with _atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def write_npy(dest: Path, array: np.ndarray) -> None:
    """Write one array as ``.npy`` atomically (memory-mappable)."""
    with _atomic_path(dest) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)


def _json(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, sort_keys=True)


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return os.fspath(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _one_sentence(exc: BaseException) -> str:
    if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit, a UI framework stopping the run
        return f"The run was interrupted ({type(exc).__name__})."
    msg = str(exc).strip().replace("\n", " ") or type(exc).__name__
    if isinstance(exc, KeyError):
        msg = f"missing key {msg}"
    return msg.rstrip(".") + "."


# --------------------------------------------------------------------------- the workspace


class Workspace:
    """A workspace folder with its SQLite catalogue.

    Parameters
    ----------
    root : path
        Folder; created if missing.
    own_start : float, optional
        Start time of this process (seconds since the epoch); ``running``
        analyses of this process created before it are stale.  Default: read
        from ``/proc`` (or the import time of this module).

    Notes
    -----
    Opening marks orphaned ``running`` analyses as ``failed`` and removes
    artefact folders that no catalogue row refers to.
    """

    DB_NAME = "catalogue.sqlite"

    def __init__(self, root: str | os.PathLike = "workspace", *, own_start: float | None = None):
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / self.DB_NAME
        self._own_start = _own_start() if own_start is None else float(own_start)
        con = self._connect()
        try:
            con.executescript(_SCHEMA)  # idempotent; executescript manages its own transaction
        finally:
            con.close()
        with self._tx() as con:
            con.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        self.recover()

    def __repr__(self) -> str:
        return f"Workspace({os.fspath(self.root)!r})"

    # ---------------------------------------------------------------- connections

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA foreign_keys = ON")
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")
        return con

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction: committed if the block succeeds, rolled back otherwise."""
        con = self._connect()
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

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        con = self._connect()
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    # ---------------------------------------------------------------- recovery

    def recover(self) -> list[int]:
        """Mark orphaned ``running`` analyses failed and drop unreferenced artefact folders.

        Returns
        -------
        ids : list of int
            Analyses marked failed.
        """
        own_pid = os.getpid()
        now = time.time()
        marked = []
        with self._tx() as con:
            rows = con.execute("SELECT id, owner_pid, created_at FROM analyses WHERE status = 'running'").fetchall()
            for r in rows:
                if _run_is_orphaned(r["owner_pid"], r["created_at"], own_pid, self._own_start):
                    con.execute(
                        "UPDATE analyses SET status = 'failed', error = ?, updated_at = ? WHERE id = ?",
                        ("The run was interrupted (its process stopped before it finished).", now, r["id"]),
                    )
                    marked.append(int(r["id"]))
            known = {int(r["id"]) for r in con.execute("SELECT id FROM analyses").fetchall()}
        folder = self.root / "analyses"
        if folder.is_dir():
            for d in folder.iterdir():
                if d.is_dir() and d.name.isdigit() and int(d.name) not in known:
                    shutil.rmtree(d, ignore_errors=True)
        # uploads never added as a sample, left for over a day
        uploads = self.root / "uploads"
        if uploads.is_dir():
            used = {self._upload_folder_of(s.source) for s in self.list_samples()}
            for d in uploads.iterdir():
                if d.is_dir() and d not in used and now - d.stat().st_mtime > UPLOAD_GRACE_S:
                    shutil.rmtree(d, ignore_errors=True)
        return marked

    # ---------------------------------------------------------------- meta

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else default

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as con:
            con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, str(value)))

    # ---------------------------------------------------------------- samples

    @staticmethod
    def _sample(r: sqlite3.Row) -> Sample:
        return Sample(
            id=int(r["id"]), name=r["name"], group_label=r["group_label"], source=r["source"],
            source_options=json.loads(r["source_options"] or "{}"),
            spacing=(float(r["spacing_z_um"]), float(r["spacing_y_um"]), float(r["spacing_x_um"])),
            axis=int(r["axis"]), separator_side=r["separator_side"], created_at=float(r["created_at"]),
            updated_at=float(r["updated_at"]),
        )

    @staticmethod
    def _check_source_options(options) -> dict:
        if not isinstance(options, dict):
            raise TypeError(f"source_options must be a dict, got {type(options).__name__}")
        if "downsample" in options:
            from .io.downsampling import check_downsample

            options = {**options, "downsample": check_downsample(options["downsample"])}
            if options["downsample"] > 1 and options.get("phase_map") is not None:
                raise ValueError("a pre-segmented phase volume cannot be downsampled")
        return options

    @staticmethod
    def _check_sample_fields(name, axis, separator_side):
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a sample needs a non-empty name")
        check_choice(axis, "axis", (0, 1, 2))
        check_choice(separator_side, "separator_side", SIDES)

    def add_sample(
        self, name: str, source: str, *, spacing=None, group_label: str = "", axis: int = 0,
        separator_side: str = "auto", source_options: dict | None = None,
    ) -> Sample:
        """Add a sample to the catalogue.

        Parameters
        ----------
        name : str
        source : str
            File or folder path, or ``"demo:NAME"``.
        spacing : float or (3,) float, µm
        group_label : str
            Free text used to group electrodes (e.g. "cycled").
        axis : {0, 1, 2}
        separator_side : {"auto", "start", "end"}
        source_options : dict
            JSON-ready reading options; ``"downsample"`` (1 to
            :data:`core.io.downsampling.MAX_DOWNSAMPLE`) block-averages the volume on
            loading, and ``spacing`` is then the downsampled voxel size.
        """
        self._check_sample_fields(name, axis, separator_side)
        source_options = self._check_source_options(source_options or {})
        sp = normalize_spacing(spacing)
        now = time.time()
        with self._tx() as con:
            cur = con.execute(
                "INSERT INTO samples(name, group_label, source, source_options, spacing_z_um, spacing_y_um, "
                "spacing_x_um, axis, separator_side, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (name.strip(), group_label or "", str(source), _json(source_options or {}), *sp, int(axis),
                 separator_side, now, now),
            )
            sid = int(cur.lastrowid)
        return self.get_sample(sid)

    def add_downsampled_copy(self, sample_id: int, factor: int) -> Sample:
        """A new sample reading the same source ``factor`` times coarser (block means).

        The copy keeps the group, axis and separator side; its voxel size is the
        original's times ``factor`` and its ``source_options["downsample"]`` the
        product of both factors.  Its name says the total factor.

        Raises
        ------
        ValueError
            ``factor`` below 2, or a total factor above :data:`core.io.downsampling.MAX_DOWNSAMPLE`.
        """
        from .io.downsampling import MAX_DOWNSAMPLE, check_downsample

        s = self.get_sample(sample_id)
        factor = check_downsample(factor)
        if factor < 2:
            raise ValueError(f"a downsampled copy needs a factor of 2 or more, got {factor}")
        total = s.downsample * factor
        if total > MAX_DOWNSAMPLE:
            raise ValueError(f"'{s.name}' is already downsampled by {s.downsample}; another {factor} would make "
                             f"{total}, above the largest factor {MAX_DOWNSAMPLE}")
        base = s.name.split(" (downsampled by ")[0] if s.downsample > 1 else s.name
        return self.add_sample(f"{base} (downsampled by {total})", s.source,
                               spacing=tuple(v * factor for v in s.spacing), group_label=s.group_label,
                               axis=s.axis, separator_side=s.separator_side,
                               source_options={**s.source_options, "downsample": total})

    def get_sample(self, sample_id: int) -> Sample:
        """The sample with this id; ``KeyError`` if there is none."""
        rows = self._query("SELECT * FROM samples WHERE id = ?", (int(sample_id),))
        if not rows:
            raise KeyError(f"no sample with id {sample_id}")
        return self._sample(rows[0])

    def list_samples(self) -> list[Sample]:
        """All samples, oldest first."""
        return [self._sample(r) for r in self._query("SELECT * FROM samples ORDER BY id")]

    def update_sample(self, sample_id: int, **changes) -> Sample:
        """Change ``name``, ``group_label``, ``spacing``, ``axis``, ``separator_side`` or ``source_options``."""
        s = self.get_sample(sample_id)
        allowed = {"name", "group_label", "spacing", "axis", "separator_side", "source_options"}
        bad = set(changes) - allowed
        if bad:
            raise ValueError(f"cannot change sample field(s) {sorted(bad)}; changeable: {sorted(allowed)}")
        name = changes.get("name", s.name)
        axis = changes.get("axis", s.axis)
        side = changes.get("separator_side", s.separator_side)
        self._check_sample_fields(name, axis, side)
        if "source_options" in changes:
            changes["source_options"] = self._check_source_options(changes["source_options"])
        sp = normalize_spacing(changes.get("spacing", s.spacing))
        with self._tx() as con:
            con.execute(
                "UPDATE samples SET name = ?, group_label = ?, spacing_z_um = ?, spacing_y_um = ?, spacing_x_um = ?, "
                "axis = ?, separator_side = ?, source_options = ?, updated_at = ? WHERE id = ?",
                (name.strip(), changes.get("group_label", s.group_label) or "", *sp, int(axis), side,
                 _json(changes.get("source_options", s.source_options)), time.time(), int(sample_id)),
            )
        return self.get_sample(sample_id)

    def delete_sample(self, sample_id: int) -> None:
        """Remove a sample, its analyses (rows and artefact folders) and its uploaded file."""
        sample = self.get_sample(sample_id)
        with self._tx() as con:
            ids = [int(r["id"]) for r in con.execute("SELECT id FROM analyses WHERE sample_id = ?", (int(sample_id),))]
            con.execute("DELETE FROM analyses WHERE sample_id = ?", (int(sample_id),))
            con.execute("DELETE FROM samples WHERE id = ?", (int(sample_id),))
        # files after the commit: a crash in between leaves orphans that recover() removes
        for aid in ids:
            shutil.rmtree(self.analysis_dir(aid), ignore_errors=True)
        upload = self._upload_folder_of(sample.source)
        if upload is not None:
            shutil.rmtree(upload, ignore_errors=True)

    # ---------------------------------------------------------------- folders

    def analysis_dir(self, analysis_id: int) -> Path:
        return self.root / "analyses" / str(int(analysis_id))

    def cache_dir(self) -> Path:
        d = self.root / "cache"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def save_upload(self, filename: str, data: bytes) -> Path:
        """Store an uploaded file as ``uploads/<token>/<name>`` (atomically) and return its path.

        Use the path as a sample's ``source``; :meth:`delete_sample` removes the
        folder with the sample.
        """
        import uuid

        safe = Path(str(filename).replace("\\", "/")).name.strip() or "upload.bin"
        dest = self.root / "uploads" / uuid.uuid4().hex / safe
        write_bytes(dest, data)
        return dest

    def _upload_folder_of(self, source: str) -> Path | None:
        """The ``uploads/<token>`` folder holding ``source``, if it is an uploaded file."""
        with contextlib.suppress(ValueError, OSError):
            rel = Path(source).resolve().relative_to(self.root / "uploads")
            if len(rel.parts) >= 2:
                return self.root / "uploads" / rel.parts[0]
        return None

    # ---------------------------------------------------------------- volumes

    def load_volume(self, sample: Sample | int) -> np.ndarray:
        """The greyscale volume of a sample, (Z, Y, X).

        A demo electrode (``source = "demo:NAME"``, ``source_options`` with
        ``shape`` and ``seed``) is generated once with
        :func:`core.synth.demo_electrode` and kept as a memory-mapped ``.npy``
        under ``cache/``; a file is read with :func:`core.io.load_volume`
        (memory-mapped where the format allows) with the keyword arguments in
        ``source_options["read"]``.  With ``source_options["downsample"]`` above 1
        the volume is then block-averaged by :func:`core.phases.downsample`
        (an in-memory float32 array).  The array must be treated as read-only.

        Raises
        ------
        FileNotFoundError, ValueError, TypeError
            From :func:`core.io.load_volume` for a missing or unreadable file.
        """
        s = sample if isinstance(sample, Sample) else self.get_sample(sample)
        if s.is_demo:
            shape = s.source_options.get("shape")
            volume = self.demo_volume(s.demo_name, shape=tuple(shape) if shape else None,
                                      seed=int(s.source_options.get("seed", 0)))
        else:
            from .io import load_volume

            volume = load_volume(s.source, **dict(s.source_options.get("read", {}))).data
        if s.downsample > 1:
            from .io.downsampling import downsample

            volume = downsample(volume, s.downsample)[0]
        return volume

    def demo_volume(self, name: str, *, shape: tuple[int, int, int] | None = None, seed: int = 0) -> np.ndarray:
        """Greyscale of a demo electrode, generated on first use and cached as ``.npy`` (memory-mapped)."""
        from .synth import DEMO_ELECTRODES, demo_electrode

        if name not in DEMO_ELECTRODES:
            raise ValueError(f"unknown demo electrode {name!r}; choose one of {list(DEMO_ELECTRODES)}")
        shp = tuple(int(n) for n in (shape or DEMO_ELECTRODES[name].shape))
        path = self.cache_dir() / f"demo-{name}-{'x'.join(map(str, shp))}-seed{int(seed)}.npy"
        if not path.exists():
            write_npy(path, demo_electrode(name, rng=int(seed), shape=shp).greyscale)
        return np.load(path, mmap_mode="r")

    # ---------------------------------------------------------------- analyses

    @staticmethod
    def _analysis(r: sqlite3.Row) -> Analysis:
        return Analysis(
            id=int(r["id"]), sample_id=int(r["sample_id"]), params=json.loads(r["params"]), status=r["status"],
            error=r["error"], created_at=float(r["created_at"]), updated_at=float(r["updated_at"]),
            owner_pid=r["owner_pid"], provenance=json.loads(r["provenance"] or "{}"),
            phases_path=r["phases_path"], labels_path=r["labels_path"], table_path=r["table_path"],
            n_particles=r["n_particles"],
        )

    def get_analysis(self, analysis_id: int) -> Analysis:
        rows = self._query("SELECT * FROM analyses WHERE id = ?", (int(analysis_id),))
        if not rows:
            raise KeyError(f"no analysis with id {analysis_id}")
        return self._analysis(rows[0])

    def list_analyses(self, sample_id: int | None = None, *, status: str | None = None) -> list[Analysis]:
        """Analyses (newest first), optionally of one sample and/or one status."""
        sql, args = "SELECT * FROM analyses WHERE 1 = 1", []
        if sample_id is not None:
            sql += " AND sample_id = ?"
            args.append(int(sample_id))
        if status is not None:
            check_choice(status, "status", STATUSES)
            sql += " AND status = ?"
            args.append(status)
        return [self._analysis(r) for r in self._query(sql + " ORDER BY id DESC", tuple(args))]

    def latest_analysis(self, sample_id: int, *, status: str | None = "done") -> Analysis | None:
        """The newest analysis of a sample (by default the newest finished one), or None."""
        found = self.list_analyses(sample_id, status=status)
        return found[0] if found else None

    def begin_analysis(self, sample_id: int, params: dict) -> int:
        """Insert a ``running`` analysis row owned by this process; returns its id."""
        self.get_sample(sample_id)
        now = time.time()
        with self._tx() as con:
            cur = con.execute(
                "INSERT INTO analyses(sample_id, params, status, created_at, updated_at, owner_pid) "
                "VALUES (?, ?, 'running', ?, ?, ?)",
                (int(sample_id), _json(params), now, now, os.getpid()),
            )
            return int(cur.lastrowid)

    def fail_analysis(self, analysis_id: int, error: str) -> None:
        """Mark an analysis failed with a one-sentence error and remove its partial artefacts."""
        with self._tx() as con:
            con.execute(
                "UPDATE analyses SET status = 'failed', error = ?, updated_at = ? WHERE id = ?",
                (str(error), time.time(), int(analysis_id)),
            )
        shutil.rmtree(self.analysis_dir(analysis_id), ignore_errors=True)

    def finish_analysis(self, analysis_id: int, result, *, extra_provenance: dict | None = None) -> Analysis:
        """Write a :class:`core.pipeline.AnalysisResult`'s artefacts atomically, then mark the row done.

        If any write fails the exception propagates; the caller marks the run
        failed (see :meth:`run_analysis`).
        """
        d = self.analysis_dir(analysis_id)
        d.mkdir(parents=True, exist_ok=True)
        write_npz(d / "phases.npz", result.phases, "phases")
        write_npz(d / "labels.npz", result.labels, "labels")
        write_parquet(d / "particles.parquet", result.table)
        prov = dict(result.provenance)
        prov["resolved_params"] = result.params.to_dict()
        prov["table_attrs"] = dict(result.table.attrs)
        if extra_provenance:
            prov.update(extra_provenance)
        rel = lambda name: os.fspath((d / name).relative_to(self.root))  # noqa: E731
        with self._tx() as con:
            con.execute(
                "UPDATE analyses SET status = 'done', error = NULL, updated_at = ?, provenance = ?, phases_path = ?, "
                "labels_path = ?, table_path = ?, n_particles = ? WHERE id = ?",
                (time.time(), _json(prov), rel("phases.npz"), rel("labels.npz"), rel("particles.parquet"),
                 int(len(result.table)), int(analysis_id)),
            )
        return self.get_analysis(analysis_id)

    def run_analysis(
        self, sample_id: int, volume: np.ndarray, params=None, *, presegmented: bool = False,
        progress: Callable[[float, str], None] | None = None, extra_provenance: dict | None = None,
    ) -> Analysis:
        """Run :func:`core.pipeline.run` on a sample's volume and store the result.

        The sample's spacing, thickness axis and separator side override those
        in ``params``.  On any error the analysis is marked failed (with the
        error as one sentence), its partial files are removed and the error is
        re-raised; earlier analyses are untouched.

        Parameters
        ----------
        sample_id : int
        volume : (Z, Y, X) ndarray
            Greyscale, or phase codes when ``presegmented``.
        params : core.pipeline.AnalysisParams, optional
        presegmented : bool
        progress : callable(fraction, message), optional
        extra_provenance : dict, optional
            Merged into the stored provenance (e.g. the analysis the phases came from).

        Returns
        -------
        Analysis
            The finished row.
        """
        from dataclasses import replace

        from .pipeline import AnalysisParams, run

        sample = self.get_sample(sample_id)
        params = params or AnalysisParams()
        params = replace(params, axis=sample.axis, separator_side=sample.separator_side)
        aid = self.begin_analysis(sample_id, params.to_dict())
        # what was read, as it was at run time (the sample's options may change later): enough to replay
        snapshot = {"input": {"source": sample.source, "source_options": sample.source_options}}
        try:
            result = run(volume, params, spacing=sample.spacing, presegmented=presegmented, progress=progress,
                         downsampled=sample.downsample)
            return self.finish_analysis(aid, result, extra_provenance={**snapshot, **(extra_provenance or {})})
        except BaseException as exc:
            self.fail_analysis(aid, _one_sentence(exc))
            raise

    def delete_analysis(self, analysis_id: int) -> None:
        """Remove one analysis row and its files."""
        with self._tx() as con:
            con.execute("DELETE FROM analyses WHERE id = ?", (int(analysis_id),))
        shutil.rmtree(self.analysis_dir(analysis_id), ignore_errors=True)

    # ---------------------------------------------------------------- artefacts

    def _artefact(self, analysis: Analysis | int, attr: str) -> Path:
        a = analysis if isinstance(analysis, Analysis) else self.get_analysis(analysis)
        rel = getattr(a, attr)
        if a.status != "done" or rel is None:
            raise ValueError(f"analysis {a.id} is {a.status}, it has no stored results")
        return self.root / rel

    def load_phases(self, analysis: Analysis | int) -> np.ndarray:
        """(Z, Y, X) uint8 phase codes of a finished analysis."""
        with np.load(self._artefact(analysis, "phases_path")) as f:
            return f["phases"]

    def load_labels(self, analysis: Analysis | int) -> np.ndarray:
        """(Z, Y, X) particle labels: uint16, or int32 (older analyses, or a flood that needed more than 65534 labels at once)."""
        with np.load(self._artefact(analysis, "labels_path")) as f:
            return f["labels"]

    def load_table(self, analysis: Analysis | int) -> pd.DataFrame:
        """The per-particle table of a finished analysis."""
        return pd.read_parquet(self._artefact(analysis, "table_path"))


def default_root() -> Path:
    """``$DETACH_WORKSPACE`` or ``./workspace``."""
    return Path(os.environ.get("DETACH_WORKSPACE") or "workspace")


__all__ = [
    "Analysis", "Sample", "Workspace", "default_root", "process_start_time", "write_npz", "write_parquet",
    "write_npy", "write_bytes",
]
