"""A saved workspace: a folder with a SQLite catalogue of samples and analyses.

Layout of a workspace folder::

    catalogue.sqlite           tables ``samples``, ``sample_attributes``, ``analyses``, ``meta``
    analyses/<id>/phases.npz   phase codes (0 pore, 1 CBD, 2 NMC), compressed
    analyses/<id>/labels.npz   particle labels, compressed
    analyses/<id>/phases.zarr  the same two as Zarr v3 OME-Zarr stores (array ``0``) for an analysis run on the
    analyses/<id>/labels.zarr  chunked engine (:meth:`Workspace.finish_chunked_analysis`), read lazily
    analyses/<id>/particles.parquet
    analyses/<id>/sweep-<key>.json   segmentation sweeps (:meth:`Workspace.save_sweep`)
    samples/<id>/scribbles.npz       the phases painted on the sample's slices (:meth:`Workspace.save_scribbles`)
    samples/<id>/training/<digest>/  training pairs of a classifier analysis (:meth:`Workspace.save_training`)
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
gone, or started before it) and marked ``failed`` then; its folder and the
temporary ``.NAME.XXXXXXXX.partial`` files of killed writes are removed.

Reading the volumes of an analysis
----------------------------------
:meth:`Workspace.open_phases` / :meth:`Workspace.open_labels` give an array
that numpy-style indexing reads (one slice, one crop): the whole array of an
``.npz`` analysis, or the Zarr array of a chunked one, of which only the
chunks an index touches are read.  :meth:`Workspace.load_phases` /
:meth:`Workspace.load_labels` give the whole volume as an ndarray and refuse
(``ValueError``, one sentence) an analysis stored as Zarr: its volumes are
meant never to be in memory whole (:meth:`Workspace.is_chunked`).

The records (:class:`Sample`, :class:`Analysis`) live in :mod:`core.records`;
running an analysis is :func:`core.runner.run_analysis`.  Nothing here imports
streamlit; every method opens its own short-lived SQLite connection, so one
:class:`Workspace` can be shared between threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ._atomic import remove_stale_partials, write_bytes, write_npy, write_npz, write_parquet  # noqa: F401  (write_npy re-exported)
from ._json import json_default
from . import _sqlite
from ._liveness import own_start as _process_own_start
from ._liveness import process_start_time, run_is_orphaned
from ._validate import check_choice, normalize_spacing
from .inputs import DEMO_PREFIX, DemoInput, FileInput, InputSpec, input_from_source, input_source, open_input
from .records import Analysis, Attribute, Sample, check_attributes, row_options

if TYPE_CHECKING:
    from .pipeline import AnalysisParams
    from .uncertainty import SweepParams, SweepResult

Status = Literal["running", "done", "failed"]
STATUSES: tuple[str, ...] = ("running", "done", "failed")
SIDES: tuple[str, ...] = ("auto", "start", "end")
SCHEMA_VERSION = 1
NOTE_MAX = 500  # characters of an analysis's note
#: Columns added after a workspace's tables were first created: ``(table, column, definition)``, added on open.
_ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (("analyses", "note", "TEXT NOT NULL DEFAULT ''"),)
UPLOAD_GRACE_S = 24 * 3600.0  # an upload not added as a sample is removed after this
PARTIAL_GRACE_S = 600.0  # a temporary file of an atomic write (not of a failed run) untouched this long is stale

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
CREATE TABLE IF NOT EXISTS sample_attributes (
    sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    name      TEXT NOT NULL,
    value     REAL NOT NULL,
    unit      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (sample_id, name)
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
    n_particles   INTEGER,
    note          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS analyses_sample ON analyses(sample_id, status);
"""


def _json(obj: Any) -> str:
    return json.dumps(obj, default=json_default, sort_keys=True)


# --------------------------------------------------------------------------- the workspace


def _content_folder(folder: Path, write) -> Path:
    """A classifier folder named by its content: ``folder`` as it is where it is complete, else written by
    ``write(tmp)`` into a hidden folder beside it and moved into place in one step (a crash leaves no half folder
    under the name; another run that wrote it meanwhile wrote the same content)."""
    from .classify import META_FILE, PAIRS_FILE

    if (folder / META_FILE).is_file() and (folder / PAIRS_FILE).is_file():
        return folder
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    write(tmp)
    try:
        os.replace(tmp, folder)
    except OSError:  # written meanwhile by another run: the same content
        shutil.rmtree(tmp, ignore_errors=True)
        if not (folder / PAIRS_FILE).is_file():
            raise
    return folder


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
    artefact folders that no catalogue row refers to or whose analysis
    failed, and the temporary files (``.NAME.XXXXXXXX.partial``) of writes
    killed midway.
    """

    DB_NAME = "catalogue.sqlite"

    def __init__(self, root: str | os.PathLike = "workspace", *, own_start: float | None = None):
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / self.DB_NAME
        self._own_start = _process_own_start() if own_start is None else float(own_start)
        con = self._connect()
        try:
            con.executescript(_SCHEMA)  # idempotent; executescript manages its own transaction
        finally:
            con.close()
        self._add_missing_columns()
        with self._tx() as con:
            con.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        self.recover()

    def __repr__(self) -> str:
        return f"Workspace({os.fspath(self.root)!r})"

    # ---------------------------------------------------------------- connections

    def _connect(self) -> sqlite3.Connection:
        return _sqlite.connect(self.db_path, foreign_keys=True)

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """One transaction: committed if the block succeeds, rolled back otherwise."""
        return _sqlite.transaction(self.db_path, foreign_keys=True)

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        con = self._connect()
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def _add_missing_columns(self) -> None:
        """Add the columns of :data:`_ADDED_COLUMNS` a workspace made by an older version lacks (``ALTER TABLE``;
        the rows it holds get the column's default), so that older workspaces open and keep working."""
        for table, column, definition in _ADDED_COLUMNS:
            if column in {r["name"] for r in self._query(f"PRAGMA table_info({table})")}:
                continue
            try:
                with self._tx() as con:
                    con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            except sqlite3.OperationalError:  # another process added it meanwhile
                if column not in {r["name"] for r in self._query(f"PRAGMA table_info({table})")}:
                    raise

    # ---------------------------------------------------------------- recovery

    def recover(self) -> list[int]:
        """Mark orphaned ``running`` analyses failed; drop the artefact folders of failed or unknown analyses
        and the temporary files of killed writes (only names :func:`core._atomic.atomic_path` makes).

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
                if run_is_orphaned(r["owner_pid"], r["created_at"], own_pid, self._own_start):
                    con.execute(
                        "UPDATE analyses SET status = 'failed', error = ?, updated_at = ? WHERE id = ?",
                        ("The run was interrupted (its process stopped before it finished).", now, r["id"]),
                    )
                    marked.append(int(r["id"]))
            status = {int(r["id"]): r["status"] for r in con.execute("SELECT id, status FROM analyses").fetchall()}
        folder = self.root / "analyses"
        if folder.is_dir():
            for d in folder.iterdir():
                if not (d.is_dir() and d.name.isdigit()):
                    continue
                state = status.get(int(d.name))
                if state is None or state == "failed":  # no row, or a run that failed or was killed: no results
                    shutil.rmtree(d, ignore_errors=True)
                elif state == "done":  # a killed sweep write (a running analysis's files are its own)
                    remove_stale_partials(d, min_age_s=PARTIAL_GRACE_S)
        # temporary files of atomic writes killed midway (younger ones may be a write in progress elsewhere)
        for d in (self.root / "cache", *((self.root / "uploads").glob("*/"))):
            remove_stale_partials(d, min_age_s=PARTIAL_GRACE_S)
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
    def _sample(r: sqlite3.Row, attributes: tuple[Attribute, ...] = ()) -> Sample:
        # the storage edge: the row's source and options become the input spec
        options = json.loads(r["source_options"] or "{}")
        spec = input_from_source(r["source"], options)
        shape = spec.shape if isinstance(spec, DemoInput) else options.get("shape")
        return Sample(
            id=int(r["id"]), name=r["name"], group_label=r["group_label"], input=spec,
            spacing=(float(r["spacing_z_um"]), float(r["spacing_y_um"]), float(r["spacing_x_um"])),
            axis=int(r["axis"]), separator_side=r["separator_side"], created_at=float(r["created_at"]),
            updated_at=float(r["updated_at"]), shape=tuple(int(n) for n in shape) if shape else None,
            attributes=attributes,
        )

    def _attributes(self, sample_id: int | None = None) -> dict[int, tuple[Attribute, ...]]:
        """``{sample id: its attributes in order}`` (of one sample, or of all)."""
        sql, args = "SELECT * FROM sample_attributes", ()
        if sample_id is not None:
            sql, args = sql + " WHERE sample_id = ?", (int(sample_id),)
        out: dict[int, list[Attribute]] = {}
        for r in self._query(sql + " ORDER BY sample_id, position", args):
            out.setdefault(int(r["sample_id"]), []).append(Attribute(r["name"], float(r["value"]), r["unit"]))
        return {k: tuple(v) for k, v in out.items()}

    def set_attributes(self, sample_id: int, attributes) -> Sample:
        """Replace a sample's attributes (a sequence of :class:`~core.records.Attribute`; empty removes all).

        Raises
        ------
        KeyError
            No such sample.
        TypeError, ValueError
            Not Attribute records, or a name given twice.
        """
        attrs = check_attributes(attributes)
        self.get_sample(sample_id)
        with self._tx() as con:
            con.execute("DELETE FROM sample_attributes WHERE sample_id = ?", (int(sample_id),))
            con.executemany(
                "INSERT INTO sample_attributes(sample_id, position, name, value, unit) VALUES (?,?,?,?,?)",
                [(int(sample_id), i, a.name, a.value, a.unit) for i, a in enumerate(attrs)])
            con.execute("UPDATE samples SET updated_at = ? WHERE id = ?", (time.time(), int(sample_id)))
        return self.get_sample(sample_id)

    def attribute_units(self) -> dict[str, tuple[str, ...]]:
        """Every attribute name used in the workspace with the units it is given in (more than one: a mix-up)."""
        out: dict[str, list[str]] = {}
        for r in self._query("SELECT name, unit FROM sample_attributes ORDER BY sample_id, position"):
            units = out.setdefault(r["name"], [])
            if r["unit"] not in units:
                units.append(r["unit"])
        return {k: tuple(v) for k, v in out.items()}

    @staticmethod
    def _input(source: str | os.PathLike | InputSpec, source_options: dict | None) -> InputSpec:
        """An input spec, from a spec or from a ``source`` and its options dict."""
        if isinstance(source, (str, os.PathLike)):
            if source_options is not None and not isinstance(source_options, dict):
                raise TypeError(f"source_options must be a dict, got {type(source_options).__name__}")
            return input_from_source(os.fspath(source), source_options)
        if source_options is not None:
            raise TypeError("source_options only apply to a source given as text, not to an input spec")
        if not isinstance(source, (FileInput, DemoInput)):
            raise TypeError(f"a sample's input must be a path, 'demo:NAME' or an input spec, "
                            f"got {type(source).__name__}")
        return source

    @staticmethod
    def _check_sample_fields(name, axis, separator_side):
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a sample needs a non-empty name")
        check_choice(axis, "axis", (0, 1, 2))
        check_choice(separator_side, "separator_side", SIDES)

    def add_sample(
        self, name: str, source: str | os.PathLike | InputSpec, *, spacing=None, group_label: str = "",
        axis: int = 0, separator_side: str = "auto", source_options: dict | None = None, shape=None,
        attributes=(),
    ) -> Sample:
        """Add a sample to the catalogue.

        Parameters
        ----------
        name : str
        source : FileInput or DemoInput, or str
            The input spec; or a file or folder path, or ``"demo:NAME"``, with
            its options in ``source_options``.
        spacing : float or (3,) float, µm
            Voxel size as analysed (after the input's downsampling).
        group_label : str
            Free text used to group electrodes (e.g. "cycled").
        axis : {0, 1, 2}
        separator_side : {"auto", "start", "end"}
        source_options : dict, optional
            Only with a text ``source``: how to read it, as
            :func:`core.inputs.source_options` writes it (a ``"shape"`` beside
            ``"read"`` is taken as ``shape``).
        shape : (3,) int, optional
            A file's shape as read (informative, see :attr:`Sample.shape`).
        attributes : sequence of Attribute, optional
            Numeric properties with units (see :meth:`set_attributes`).
        """
        self._check_sample_fields(name, axis, separator_side)
        attributes = check_attributes(attributes)
        spec = self._input(source, source_options)
        if shape is None and not isinstance(spec, DemoInput):
            shape = (source_options or {}).get("shape")
        sp = normalize_spacing(spacing)
        now = time.time()
        with self._tx() as con:
            cur = con.execute(
                "INSERT INTO samples(name, group_label, source, source_options, spacing_z_um, spacing_y_um, "
                "spacing_x_um, axis, separator_side, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (name.strip(), group_label or "", input_source(spec), _json(row_options(spec, shape)), *sp, int(axis),
                 separator_side, now, now),
            )
            sid = int(cur.lastrowid)
            con.executemany(
                "INSERT INTO sample_attributes(sample_id, position, name, value, unit) VALUES (?,?,?,?,?)",
                [(sid, i, a.name, a.value, a.unit) for i, a in enumerate(attributes)])
        return self.get_sample(sid)

    def add_downsampled_copy(self, sample_id: int, factor: int) -> Sample:
        """A new sample reading the same source ``factor`` times coarser (block means).

        The copy keeps the group, axis and separator side; its voxel size is the
        original's times ``factor`` and its input's ``downsample`` the product of
        both factors.  Its name says the total factor.

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
        return self.add_sample(f"{base} (downsampled by {total})", replace(s.input, downsample=total),
                               spacing=tuple(v * factor for v in s.spacing), group_label=s.group_label,
                               axis=s.axis, separator_side=s.separator_side, shape=s.shape,
                               attributes=s.attributes)

    def get_sample(self, sample_id: int) -> Sample:
        """The sample with this id; ``KeyError`` if there is none."""
        rows = self._query("SELECT * FROM samples WHERE id = ?", (int(sample_id),))
        if not rows:
            raise KeyError(f"no sample with id {sample_id}")
        return self._sample(rows[0], self._attributes(sample_id).get(int(sample_id), ()))

    def list_samples(self) -> list[Sample]:
        """All samples, oldest first."""
        attrs = self._attributes()
        return [self._sample(r, attrs.get(int(r["id"]), ())) for r in self._query("SELECT * FROM samples ORDER BY id")]

    def update_sample(self, sample_id: int, **changes) -> Sample:
        """Change ``name``, ``group_label``, ``spacing``, ``axis``, ``separator_side``, ``input``
        (an input spec) or ``source_options`` (the options dict of the same source)."""
        s = self.get_sample(sample_id)
        allowed = {"name", "group_label", "spacing", "axis", "separator_side", "input", "source_options"}
        bad = set(changes) - allowed
        if bad:
            raise ValueError(f"cannot change sample field(s) {sorted(bad)}; changeable: {sorted(allowed)}")
        name = changes.get("name", s.name)
        axis = changes.get("axis", s.axis)
        side = changes.get("separator_side", s.separator_side)
        self._check_sample_fields(name, axis, side)
        spec, shape = s.input, s.shape
        if "input" in changes:
            spec = self._input(changes["input"], None)
        if "source_options" in changes:
            spec = self._input(s.source, changes["source_options"])
            shape = changes["source_options"].get("shape", shape)
        sp = normalize_spacing(changes.get("spacing", s.spacing))
        with self._tx() as con:
            con.execute(
                "UPDATE samples SET name = ?, group_label = ?, spacing_z_um = ?, spacing_y_um = ?, spacing_x_um = ?, "
                "axis = ?, separator_side = ?, source = ?, source_options = ?, updated_at = ? WHERE id = ?",
                (name.strip(), changes.get("group_label", s.group_label) or "", *sp, int(axis), side,
                 input_source(spec), _json(row_options(spec, shape)), time.time(), int(sample_id)),
            )
        return self.get_sample(sample_id)

    def delete_sample(self, sample_id: int) -> None:
        """Remove a sample, its analyses (rows and artefact folders) and its uploaded file."""
        sample = self.get_sample(sample_id)
        with self._tx() as con:
            ids = [int(r["id"]) for r in con.execute("SELECT id FROM analyses WHERE sample_id = ?", (int(sample_id),))]
            con.execute("DELETE FROM analyses WHERE sample_id = ?", (int(sample_id),))
            con.execute("DELETE FROM sample_attributes WHERE sample_id = ?", (int(sample_id),))
            con.execute("DELETE FROM samples WHERE id = ?", (int(sample_id),))
        # files after the commit: a crash in between leaves orphans that recover() removes
        for aid in ids:
            shutil.rmtree(self.analysis_dir(aid), ignore_errors=True)
        shutil.rmtree(self.sample_dir(sample_id), ignore_errors=True)
        upload = self._upload_folder_of(sample.source)
        if upload is not None:
            shutil.rmtree(upload, ignore_errors=True)

    # ---------------------------------------------------------------- folders

    def analysis_dir(self, analysis_id: int) -> Path:
        return self.root / "analyses" / str(int(analysis_id))

    def sample_dir(self, sample_id: int) -> Path:
        """``samples/<id>``: what the workspace keeps for one sample (its scribbles and training pairs)."""
        return self.root / "samples" / str(int(sample_id))

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
        """The volume a sample's analysis reads: :func:`core.inputs.open_input` of its input, a demo
        kept under ``cache/`` (memory-mapped).  Treat it as read-only."""
        s = sample if isinstance(sample, Sample) else self.get_sample(sample)
        return open_input(s.input, cache_dir=self.cache_dir()).volume

    # ---------------------------------------------------------------- analyses

    def _classifier_in(self, d: dict, *, stored: bool) -> dict:
        """Parameters with their classifier folder relative to the workspace (``stored``, for the catalogue) or
        absolute again (read back): a workspace moved as a whole keeps its classifier analyses replayable."""
        if not isinstance(d, dict) or not isinstance(d.get("classifier"), str):
            return d
        folder = Path(d["classifier"])
        if stored:
            try:
                folder = folder.resolve().relative_to(self.root)
            except (ValueError, OSError):
                return d
        elif folder.is_absolute():
            return d
        else:
            folder = self.root / folder
        return {**d, "classifier": os.fspath(folder)}

    def _analysis(self, r: sqlite3.Row) -> Analysis:
        # the storage edge: parameters are parsed once here (strictly, as AnalysisParams.from_dict does)
        from .pipeline import AnalysisParams

        provenance = self._classifier_in(json.loads(r["provenance"] or "{}"), stored=False)
        try:
            requested = AnalysisParams.from_dict(self._classifier_in(json.loads(r["params"]), stored=False))
            resolved = (AnalysisParams.from_dict(self._classifier_in(provenance["resolved_params"], stored=False))
                        if "resolved_params" in provenance else requested)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"analysis {r['id']} holds parameters this version cannot read: {exc}") from None
        return Analysis(
            id=int(r["id"]), sample_id=int(r["sample_id"]), requested=requested, resolved=resolved,
            status=r["status"], error=r["error"], created_at=float(r["created_at"]),
            updated_at=float(r["updated_at"]), owner_pid=r["owner_pid"], provenance=provenance,
            phases_path=r["phases_path"], labels_path=r["labels_path"], table_path=r["table_path"],
            n_particles=r["n_particles"], note=r["note"] or "",
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

    def set_analysis_note(self, analysis_id: int, note: str) -> Analysis:
        """Give an analysis a note (free text, at most :data:`NOTE_MAX` characters, stripped; ``""`` removes it).

        The note does not change the analysis's ``updated_at`` (the time its run finished).

        Raises
        ------
        KeyError
            No analysis with this id.
        TypeError
            ``note`` is not text.
        ValueError
            ``note`` is longer than :data:`NOTE_MAX` characters.
        """
        if not isinstance(note, str):
            raise TypeError(f"an analysis note must be text, got {type(note).__name__}")
        note = note.strip()
        if len(note) > NOTE_MAX:
            raise ValueError(f"an analysis note holds at most {NOTE_MAX} characters, got {len(note)}")
        with self._tx() as con:
            if con.execute("UPDATE analyses SET note = ? WHERE id = ?", (note, int(analysis_id))).rowcount == 0:
                raise KeyError(f"no analysis with id {analysis_id}")
        return self.get_analysis(analysis_id)

    def delete_analysis(self, analysis_id: int) -> Analysis:
        """Remove one finished or failed analysis: its catalogue row and its folder (phases, labels, table, sweeps).

        Returns
        -------
        Analysis
            The record as it was before the deletion.

        Raises
        ------
        KeyError
            No analysis with this id.
        ValueError
            The analysis is still running (its run writes into its folder).

        Notes
        -----
        An analysis that reused this one's phases (a re-separation) keeps its own results; only its recipe,
        which replays from the greyscale of this one, can no longer be exported
        (:func:`core.recipe.root_analysis` says so).
        """
        a = self.get_analysis(analysis_id)
        if a.status == "running":
            raise ValueError(f"analysis {a.id} is still running; delete it once it has finished or failed")
        with self._tx() as con:
            if con.execute("DELETE FROM analyses WHERE id = ? AND status != 'running'", (a.id,)).rowcount == 0:
                raise KeyError(f"no analysis with id {analysis_id}")  # deleted meanwhile by another session
        # files after the commit: a crash in between leaves an orphan folder that recover() removes
        shutil.rmtree(self.analysis_dir(a.id), ignore_errors=True)
        return a

    def begin_analysis(self, sample_id: int, params: "AnalysisParams | dict") -> int:
        """Insert a ``running`` analysis row owned by this process; returns its id."""
        if not isinstance(params, dict):
            params = params.to_dict()
        params = self._classifier_in(params, stored=True)
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
        failed (see :func:`core.runner.run_analysis`).
        """
        d = self.analysis_dir(analysis_id)
        d.mkdir(parents=True, exist_ok=True)
        write_npz(d / "phases.npz", result.phases, "phases")
        write_npz(d / "labels.npz", result.labels, "labels")
        return self._record_done(analysis_id, result, extra_provenance, "phases.npz", "labels.npz")

    def finish_chunked_analysis(self, analysis_id: int, result, *,
                                extra_provenance: dict | None = None) -> Analysis:
        """Record a :class:`core.chunked.analysis.ChunkedAnalysis` run into this analysis's folder; mark it done.

        :func:`core.chunked.analysis.analyze_chunked` was given
        ``out=self.analysis_dir(analysis_id)``: ``phases.zarr`` and
        ``labels.zarr`` are there already (written chunk by chunk, never whole).
        This writes the table atomically and points the row at the two stores.

        Raises
        ------
        ValueError
            A store is missing (the run did not write it).
        """
        d = self.analysis_dir(analysis_id)
        for name in ("phases.zarr", "labels.zarr"):
            if not (d / name / "0" / "zarr.json").is_file():
                raise ValueError(f"analysis {analysis_id} has no {name} in {d}: the chunked run did not write it")
        return self._record_done(analysis_id, result, extra_provenance, "phases.zarr", "labels.zarr")

    def _record_done(self, analysis_id: int, result, extra_provenance: dict | None, phases_name: str,
                     labels_name: str) -> Analysis:
        """Write the table of ``result`` into the analysis's folder and mark the row done, pointing at the
        phases and labels already there (``phases_name``, ``labels_name``)."""
        d = self.analysis_dir(analysis_id)
        write_parquet(d / "particles.parquet", result.table)
        prov = dict(result.provenance)
        prov["resolved_params"] = self._classifier_in(result.params.to_dict(), stored=True)
        prov["table_attrs"] = dict(result.table.attrs)
        if extra_provenance:
            prov.update(extra_provenance)
        prov = self._classifier_in(prov, stored=True)  # the classifier folder the run recorded
        rel = lambda name: os.fspath((d / name).relative_to(self.root))  # noqa: E731
        with self._tx() as con:
            con.execute(
                "UPDATE analyses SET status = 'done', error = NULL, updated_at = ?, provenance = ?, phases_path = ?, "
                "labels_path = ?, table_path = ?, n_particles = ? WHERE id = ?",
                (time.time(), _json(prov), rel(phases_name), rel(labels_name), rel("particles.parquet"),
                 int(len(result.table)), int(analysis_id)),
            )
        return self.get_analysis(analysis_id)

    # ---------------------------------------------------------------- artefacts

    def _artefact(self, analysis: Analysis | int, attr: str) -> Path:
        a = analysis if isinstance(analysis, Analysis) else self.get_analysis(analysis)
        rel = getattr(a, attr)
        if a.status != "done" or rel is None:
            raise ValueError(f"analysis {a.id} is {a.status}, it has no stored results")
        return self.root / rel

    @staticmethod
    def is_chunked(analysis: Analysis) -> bool:
        """Whether a finished analysis's phases and labels are Zarr stores (a run on the chunked engine)."""
        return str(analysis.phases_path or "").endswith(".zarr")

    def _whole(self, analysis: Analysis | int, attr: str, key: str) -> np.ndarray:
        a = analysis if isinstance(analysis, Analysis) else self.get_analysis(analysis)
        path = self._artefact(a, attr)
        if path.suffix == ".zarr":
            raise ValueError(f"analysis {a.id} ran chunk by chunk and its {key} are stored as Zarr, which is not "
                             f"read whole (open_{key} reads one slice or crop at a time)")
        with np.load(path) as f:
            return f[key]

    def _lazy(self, analysis: Analysis | int, attr: str, key: str):
        a = analysis if isinstance(analysis, Analysis) else self.get_analysis(analysis)
        path = self._artefact(a, attr)
        if path.suffix != ".zarr":
            return self._whole(a, attr, key)
        import zarr

        return zarr.open_array(os.fspath(path / "0"), mode="r")

    def load_phases(self, analysis: Analysis | int) -> np.ndarray:
        """(Z, Y, X) uint8 phase codes of a finished analysis, whole.

        Raises ``ValueError`` for an analysis stored as Zarr (:meth:`is_chunked`): use :meth:`open_phases`.
        """
        return self._whole(analysis, "phases_path", "phases")

    def load_labels(self, analysis: Analysis | int) -> np.ndarray:
        """(Z, Y, X) particle labels, whole: uint16, or int32 (older analyses, or a flood that needed more than 65534 labels at once).

        Raises ``ValueError`` for an analysis stored as Zarr (:meth:`is_chunked`): use :meth:`open_labels`.
        """
        return self._whole(analysis, "labels_path", "labels")

    def open_phases(self, analysis: Analysis | int):
        """(Z, Y, X) uint8 phase codes to index lazily: the array of an ``.npz`` analysis (read whole once),
        or the read-only ``zarr.Array`` of a chunked one (an index reads only the chunks it touches)."""
        return self._lazy(analysis, "phases_path", "phases")

    def open_labels(self, analysis: Analysis | int):
        """(Z, Y, X) particle labels to index lazily (as :meth:`open_phases`); a chunked run's are int32."""
        return self._lazy(analysis, "labels_path", "labels")

    def load_table(self, analysis: Analysis | int) -> pd.DataFrame:
        """The per-particle table of a finished analysis."""
        return pd.read_parquet(self._artefact(analysis, "table_path"))

    # ---------------------------------------------------------------- scribbles

    def _scribbles_file(self, sample_id: int, shape=None) -> Path:
        """``scribbles.npz`` (the strokes in use), or, for a ``shape``, the file of strokes kept aside that were
        painted on the sample's volume read at that shape (before its crop or its slices' alignment changed)."""
        name = "scribbles.npz" if shape is None else f"scribbles-{'x'.join(str(int(n)) for n in shape)}.npz"
        return self.sample_dir(sample_id) / name

    def save_scribbles(self, sample_id: int, scribbles) -> Path:
        """Keep the phases painted on a sample (a :class:`core.scribbles.Scribbles`), atomically; returns the file.

        Nothing painted removes the file.  Strokes kept before for a volume of another shape (the sample's volume
        read before its crop or its slices' alignment changed) are not overwritten: they are kept aside by their
        shape (:meth:`load_scribbles` gives them back where the volume is read at that shape again), and strokes
        kept aside for this shape are replaced by these.
        """
        from .scribbles import Scribbles, load_scribbles, save_scribbles

        if not isinstance(scribbles, Scribbles):
            raise TypeError(f"scribbles must be Scribbles, got {type(scribbles).__name__}")
        self.get_sample(sample_id)
        path = self._scribbles_file(sample_id)
        if path.is_file():
            try:
                before = load_scribbles(path)
            except ValueError:  # damaged: the page said so; these replace it
                before = None
            if before is not None and before.shape != scribbles.shape and before.slices:
                os.replace(path, self._scribbles_file(sample_id, before.shape))
        self._scribbles_file(sample_id, scribbles.shape).unlink(missing_ok=True)
        if not scribbles.slices:
            path.unlink(missing_ok=True)
            return path
        return save_scribbles(path, scribbles)

    def scribbles_saved_at(self, sample_id: int) -> float | None:
        """When the strokes in use of a sample were last saved (seconds since the epoch); None when none are kept."""
        try:
            return self._scribbles_file(sample_id).stat().st_mtime
        except OSError:
            return None

    def load_scribbles(self, sample_id: int, shape=None):
        """The :class:`core.scribbles.Scribbles` kept for a sample, or None when nothing is painted.

        With ``shape`` (the volume as read now), the strokes painted on a volume of that shape: those in use, else
        those kept aside for it (:meth:`save_scribbles`), else None.

        Raises ``ValueError`` when the file cannot be read.
        """
        from .scribbles import load_scribbles

        path = self._scribbles_file(sample_id)
        found = load_scribbles(path) if path.is_file() else None
        if shape is None or (found is not None and found.shape == tuple(int(n) for n in shape)):
            return found
        aside = self._scribbles_file(sample_id, shape)
        return load_scribbles(aside) if aside.is_file() else None

    def save_training(self, sample_id: int, volume: np.ndarray, scribbles, params=None) -> Path:
        """The training pairs of ``scribbles`` on a sample's ``volume``, kept as a classifier folder.

        The folder (:func:`core.classify.save_training`: the painted slices,
        their scribbles, the voxel sizes and the classifier parameters) is
        ``samples/<id>/training/<digest>``, named by its content: the same
        scribbles give the same folder, written once and never changed, so
        every analysis that used it (``AnalysisParams.classifier``) and every
        recipe of one replays from the same bytes.  The catalogue records a
        classifier folder inside the workspace relative to it (read back
        absolute), so a workspace moved as a whole still replays.

        Parameters
        ----------
        sample_id : int
        volume : (Z, Y, X) ndarray
            The sample's volume as analysed (only the painted slices are read).
        scribbles : core.scribbles.Scribbles
        params : core.classify.ClassifierParams, optional

        Returns
        -------
        Path
            The folder, for ``AnalysisParams(method="classifier", classifier=str(folder))``.
        """
        from .classify import _FORMAT_VERSION, ClassifierParams, save_training, volume_range
        from .scribbles import classifier_pairs

        s = self.get_sample(sample_id)
        params = params or ClassifierParams()
        images, labels, spacings = classifier_pairs(volume, scribbles, s.spacing)
        reference = volume_range(volume)  # a narrow painted slice is scaled by it (core.classify.slice_range)
        h = hashlib.blake2b(digest_size=12)
        h.update(json.dumps(params.to_dict(), sort_keys=True).encode())
        # the format and the reference too: a folder of an older format (each slice scaled by its own range) is
        # not reused for the same strokes
        h.update(f"v{_FORMAT_VERSION} {reference[0]!r} {reference[1]!r}".encode())
        for im, lab, sp in zip(images, labels, spacings):
            h.update(f"{im.dtype}{im.shape}{tuple(float(v) for v in sp)}".encode())
            h.update(np.ascontiguousarray(im).tobytes())
            h.update(np.ascontiguousarray(lab).tobytes())
        folder = self.sample_dir(sample_id) / "training" / h.hexdigest()
        return _content_folder(folder, lambda tmp: save_training(tmp, images, labels, spacings, params,
                                                                 references=[reference] * len(images)))

    def share_training(self, folder, sample_id: int) -> Path:
        """A copy of a classifier folder (:meth:`save_training`'s, of another sample) kept with ``sample_id``.

        So that one set of brush strokes classifies several samples alike (the scans of one study, one
        instrument), each sample analysed with them holds its own copy, under the same content name
        (``samples/<id>/training/<name>``): deleting the sample that was painted, and its folder with it,
        leaves the others' analyses and recipes able to replay.  Written once (atomically), never changed.

        Parameters
        ----------
        folder : str or Path
            A classifier folder (its ``classifier.json`` and ``pairs.npz``).
        sample_id : int
            The sample that will be analysed with it.

        Returns
        -------
        Path
            The copy, for ``AnalysisParams(method="classifier", classifier=str(copy))``; ``folder`` itself
            where it is already that sample's.

        Raises
        ------
        KeyError
            No such sample.
        ValueError
            ``folder`` is not a classifier folder, or the sample keeps another of its name.
        """
        import filecmp

        from .classify import META_FILE, PAIRS_FILE

        self.get_sample(sample_id)  # KeyError for an unknown sample
        src = Path(folder).expanduser().resolve()
        if not ((src / META_FILE).is_file() and (src / PAIRS_FILE).is_file()):
            raise ValueError(f"{src} is not a classifier folder (it needs {META_FILE} and {PAIRS_FILE})")
        dest = (self.sample_dir(sample_id) / "training" / src.name).resolve()
        if dest == src:
            return dest
        if dest.is_dir() and not all((dest / n).is_file() and filecmp.cmp(src / n, dest / n, shallow=False)
                                     for n in (META_FILE, PAIRS_FILE)):
            raise ValueError(f"sample {sample_id} already keeps another classifier folder named {src.name!r}")

        def copy(tmp: Path) -> None:
            tmp.mkdir()
            for name in (META_FILE, PAIRS_FILE):
                shutil.copy2(src / name, tmp / name)

        return _content_folder(dest, copy)

    # ---------------------------------------------------------------- sweeps

    def sweep_path(self, analysis_id: int, options: "SweepParams") -> Path:
        """Where the segmentation sweep (:func:`core.uncertainty.sweep`) of an analysis with these options is kept."""
        d = asdict(options)
        d["variants"] = list(options.variants)
        key = hashlib.blake2b(json.dumps(d, sort_keys=True).encode(), digest_size=8).hexdigest()
        return self.analysis_dir(analysis_id) / f"sweep-{key}.json"

    def save_sweep(self, analysis_id: int, options: "SweepParams", result: "SweepResult") -> Path:
        """Keep a sweep of an analysis beside its artefacts (atomically); returns the file."""
        path = self.sweep_path(analysis_id, options)
        write_bytes(path, json.dumps(result.to_dict()).encode())
        return path

    def load_sweep(self, analysis_id: int, options: "SweepParams") -> "SweepResult | None":
        """The kept sweep of an analysis with these options, or None when there is none (or it cannot be read)."""
        from .uncertainty import SweepResult

        try:
            return SweepResult.from_dict(json.loads(self.sweep_path(analysis_id, options).read_text()))
        except (OSError, ValueError, TypeError):
            return None


__all__ = [
    "Analysis", "DEMO_PREFIX", "NOTE_MAX", "Sample", "Workspace", "process_start_time", "write_bytes", "write_npy",
    "write_npz", "write_parquet",
]
