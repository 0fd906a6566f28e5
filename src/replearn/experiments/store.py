"""SQLite results store: one row per run, atomic writes, safe claiming by many processes.

Tables::

    runs(run_id PK, config, method, d, n, seed, status, metrics, error, wall_time,
         peak_rss_mb, peak_gpu_mb, host, versions, attempts, claim_*, lease_expires,
         created_at, started_at, finished_at)
    experiments(name PK, spec, created_at, updated_at)
    experiment_runs(experiment, run_id, position)      -- which runs make up an experiment

A run's id is a hash of its canonical config and ALGORITHM_VERSION, so a cell shared by
two experiments runs once and both see it. Status goes pending → running → done | failed.

Claiming: a driver takes a run with one ``BEGIN IMMEDIATE`` transaction that flips it
from 'pending' to 'running' and stamps a claim token, its host and pid, and a lease; no
two drivers can flip the same row. A 'running' row is stale — claimable again — when its
lease has expired (drivers renew leases while they work) or when its driver ran on this
host and that process is gone (killed). Results are written with one UPDATE guarded by
the claim token. The database is in WAL mode with a busy timeout, so readers never block
writers and concurrent drivers wait rather than fail.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from replearn.experiments.analysis import log_d
from replearn.experiments.target_kinds import target_label
from replearn.limits import excerpt

__all__ = [
    "Store",
    "StoreError",
    "DEFAULT_DB",
    "STATUSES",
    "canonical_json",
    "process_start_time",
]

DEFAULT_DB = Path("results") / "replearn.sqlite"
STATUSES = ("pending", "running", "done", "failed")
SCHEMA_VERSION = "1"
DEFAULT_LEASE_SECONDS = 600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    method TEXT NOT NULL,
    d INTEGER NOT NULL,
    n INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'done', 'failed')),
    metrics TEXT,
    error TEXT,
    wall_time REAL,
    peak_rss_mb REAL,
    peak_gpu_mb REAL,
    host TEXT,
    versions TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    claim_token TEXT,
    claim_host TEXT,
    claim_pid INTEGER,
    claim_pid_started REAL,
    lease_expires REAL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
CREATE INDEX IF NOT EXISTS runs_claim ON runs (claim_token);
CREATE TABLE IF NOT EXISTS experiments (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS experiment_runs (
    experiment TEXT NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    position INTEGER NOT NULL,
    PRIMARY KEY (experiment, run_id)
);
CREATE INDEX IF NOT EXISTS experiment_runs_order ON experiment_runs (experiment, position);
"""


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces: the same config always gives the same text (and hash)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (to tell a live driver from a reused pid); None if unknown."""
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except ImportError:
        pass
    except Exception:
        return None
    try:  # Linux without psutil: field 22 of /proc/<pid>/stat, in clock ticks since boot
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return float(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int, started: float | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:  # a zombie (killed, not yet reaped) still answers kill(pid, 0)
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except (OSError, IndexError):
        pass
    if started is None:
        return True
    now_started = process_start_time(pid)
    return now_started is None or abs(now_started - started) < 1.0


class StoreError(ValueError):
    """A results database that cannot be used as asked, as one line naming the path."""


_WRITE_NEEDED = (
    "`replearn run` needs write access to the file and its directory "
    "(status, results and report read it read-only)"
)


def _wal_path(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def _file_stamp(path: Path) -> tuple:
    """What changes when anybody writes the database: inode, size and mtime of the file and
    of its -wal, and whether a -shm exists (a connected writer)."""

    def stamp(file: Path) -> tuple | None:
        try:
            stat = file.stat()
        except OSError:
            return None
        return (stat.st_ino, stat.st_size, stat.st_mtime_ns)

    return (stamp(path), stamp(_wal_path(path)), _shm_path(path).exists())


def _quiescent(path: Path) -> bool:
    """No writer connected and nothing uncheckpointed: no -wal file, or an empty one.

    A connected writer in WAL mode holds a -wal and a -shm file; a -wal with frames but no
    -shm is what a crashed writer leaves (read through mode=ro, which recovers it)."""
    wal = _wal_path(path)
    try:
        return not wal.exists() or (wal.stat().st_size == 0 and not _shm_path(path).exists())
    except OSError:
        return False


def _shm_path(path: Path) -> Path:
    return path.with_name(path.name + "-shm")


def _writer_files(path: Path) -> bool:
    """A -wal or rollback -journal exists: a writer may be between writes of the file."""
    return _wal_path(path).exists() or path.with_name(path.name + "-journal").exists()


def _inspect(path: Path, readonly: bool) -> bool:
    """Check the path before SQLite opens it; True if it holds data, False if new or empty.

    One :class:`StoreError` line for: a directory, a path under a regular file, a missing
    or empty file opened read-only, an unreadable file. Only ``stat`` and ``access`` are
    used, never ``open``: closing any descriptor of the database file would drop the POSIX
    locks that SQLite connections of this process hold on it (see :func:`_check_pages`
    for the damage checks, done through SQLite).
    """
    if str(path) == ":memory:":  # SQLite's in-memory database: every result lost at exit
        raise StoreError(
            ":memory: is an in-memory SQLite database: results would vanish when the command "
            f"ends and other workers could not see them; give a file path such as {DEFAULT_DB}"
        )
    if path.is_dir():
        raise StoreError(
            f"{path}: is a directory, not a results database; "
            f"give a file path such as {path / DEFAULT_DB.name}"
        )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise StoreError(f"{path}: {parent} is a file, not a directory")
            break
    if not path.exists():
        if readonly:
            raise StoreError(f"{path}: no such results database (`replearn run` creates it)")
        return False
    if not path.is_file():
        raise StoreError(f"{path}: not a regular file, cannot be a results database")
    if not os.access(path, os.R_OK):
        raise StoreError(f"{path}: cannot read the results database (permission denied)")
    if path.stat().st_size == 0:
        if readonly:
            raise StoreError(
                f"{path}: is an empty file, not a results database (nothing was run into it)"
            )
        return False  # SQLite makes a new database of an empty file; `run` may start one
    return True


def _check_pages(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a database file shorter than its pages: page_count · page_size > file size.

    Checked only while no writer is between writes (no -wal or -journal before and after),
    and again after a short wait before refusing: a checkpoint writes page 1, which holds
    the new size, before it extends the file.
    """
    for attempt in range(4):
        if attempt:
            time.sleep(0.05 * attempt)
        writer_seen = _writer_files(path)
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        size = path.stat().st_size
        if writer_seen or _writer_files(path) or pages * page_size <= size:
            return
    raise StoreError(
        f"{path}: truncated: its header says {pages * page_size:,} bytes, the file has "
        f"{size:,}; restore it from a copy"
    )


def _damaged(path: Path, err: sqlite3.DatabaseError) -> StoreError:
    text = " ".join(str(err).split())
    if "readonly" in text or "read-only" in text:
        return StoreError(f"{path}: cannot write the results database ({text}): {_WRITE_NEEDED}")
    if "file is not a database" in text:
        return StoreError(
            f"{path}: not an SQLite database (garbage or a damaged header); "
            "is this the results file?"
        )
    if "malformed" in text:
        try:
            size = f"; the file has {path.stat().st_size:,} bytes"
        except OSError:
            size = ""
        return StoreError(
            f"{path}: the results database is damaged or truncated (SQLite: {text}{size}); "
            "restore it from a copy"
        )
    return StoreError(f"{path}: the results database cannot be read ({text}); is it damaged?")


def _check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a store whose ``meta.schema_version`` is not one this replearn reads.

    A newer schema may have columns, tables or meanings this version does not know; writing
    to it (or reading it as if it were ours) could corrupt it or mislead. A store without a
    ``meta`` table or without the key is new (or pre-dates versioning): left to the caller.
    """
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.OperationalError as err:
        if "no such table" in str(err):
            return
        raise
    if row is None:
        return
    version = row[0]
    try:
        number = int(str(version))
    except ValueError:
        number = None
    if number is None or number < 1:
        raise StoreError(
            f"{path}: unknown store schema version {excerpt(version)} (this replearn reads "
            f"schema {SCHEMA_VERSION}); is it a replearn results database?"
        )
    if number > int(SCHEMA_VERSION):
        raise StoreError(
            f"{path}: written by a newer replearn (store schema {number}; this version reads "
            f"schema {SCHEMA_VERSION} and would corrupt it); upgrade replearn to use this store"
        )


def _is_full(err: sqlite3.OperationalError) -> bool:
    return "disk is full" in str(err) or "database or disk is full" in str(err)


def _full(path: Path, err: sqlite3.OperationalError) -> StoreError:
    """SQLITE_FULL as one line naming the database and where space ran out."""
    folder = path.resolve().parent
    try:
        import shutil

        free = f"; {shutil.disk_usage(folder).free:,} bytes free there"
    except OSError:
        free = ""
    return StoreError(
        f"{path}: cannot write the results database: the disk holding {folder} is full (or "
        f"the database reached its size limit){free}; free space and run again — finished "
        "runs are kept"
    )


_INT64 = (-(2**63), 2**63 - 1)


def _check_columns(run_id: str, config: dict) -> None:
    """d, n and seed are SQLite INTEGER columns: Python ints within int64, else one line."""
    for key in ("d", "n", "seed"):
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"run {run_id}: {key} must be an integer, got {excerpt(value)}")
        if not _INT64[0] <= value <= _INT64[1]:
            raise ValueError(
                f"run {run_id}: {key} = {excerpt(value)} does not fit a 64-bit integer "
                f"(the store's {key} column); allowed: |{key}| < 2^63"
            )


class Store:
    """The results database. Not thread-safe: use one Store per thread or process.

    ``Store(path)`` opens (or creates) it for writing. ``Store(path, readonly=True)`` —
    or :meth:`open_readonly` — reads it without writing anything: the file and its
    directory may be read-only, and no -wal/-shm file is left behind. A quiescent database
    (no -wal file: no writer connected) is opened with SQLite's ``mode=ro&immutable=1``;
    every read checks that the file did not change meanwhile (inode, size, mtime, no -wal)
    and otherwise reads again through ``mode=ro``, which follows a live writer's WAL.

    Parameters
    ----------
    path : str or pathlib.Path
        The SQLite file (default ``results/replearn.sqlite``).
    lease_seconds : float
        How long a claimed run stays claimed without a heartbeat before it counts as stale.
    readonly : bool
        Read without writing anything.

    Examples
    --------
    Run a small grid of the engine's deterministic ``synthetic`` method, then read the store:

    >>> import tempfile
    >>> from replearn.experiments import parse_spec, run_experiment
    >>> spec = parse_spec("name: doc\\ntarget: {kind: paper}\\nmethods: [{name: synthetic}]\\n"
    ...                   "d: [4]\\nn: [16, 64]\\nseeds: 2\\nn_holdout: 0\\nn_test: 10\\n")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = run_experiment(spec, db=f"{tmp}/runs.sqlite", quiet=True)
    ...     with Store(f"{tmp}/runs.sqlite", readonly=True) as store:
    ...         counts = store.counts("doc")["doc"]
    ...         runs = store.runs("doc")
    >>> counts["done"], counts["total"]
    (4, 4)
    >>> [(run["n"], run["seed"], run["status"]) for run in runs]
    [(16, 0, 'done'), (16, 1, 'done'), (64, 0, 'done'), (64, 1, 'done')]
    >>> sorted(runs[0]["metrics"])
    ['risk', 'stderr']
    """

    def __init__(
        self,
        path: str | Path = DEFAULT_DB,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        readonly: bool = False,
    ):
        self.path = Path(path)
        self.lease_seconds = float(lease_seconds)
        self.readonly = bool(readonly)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._pid_started = process_start_time(self.pid)
        self._stamp: tuple | None = None
        exists = _inspect(self.path, self.readonly)
        if self.readonly:
            self._open_readonly(immutable=_quiescent(self.path))
            return
        if not exists and self.path.parent and not self.path.parent.exists():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise StoreError(
                    f"{self.path}: cannot create its directory ({err.strerror}): {_WRITE_NEEDED}"
                ) from None
        try:
            self._open_writable(exists)
        except StoreError:
            self._conn.close()
            raise
        except sqlite3.DatabaseError as err:
            if getattr(self, "_conn", None) is not None:
                self._conn.close()
            if "unable to open" in str(err):
                raise StoreError(
                    f"{self.path}: cannot open the results database for writing: {_WRITE_NEEDED}"
                ) from None
            raise _damaged(self.path, err) from None

    @classmethod
    def open_readonly(cls, path: str | Path = DEFAULT_DB) -> Store:
        """``Store(path, readonly=True)``: read a store nobody may write to, leave nothing."""
        return cls(path, readonly=True)

    def _open_writable(self, exists: bool) -> None:
        self._conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA busy_timeout = 60000")
        if exists:
            _check_pages(self._conn, self.path)
            _check_schema(self._conn, self.path)  # before anything is written to it
        self._enable_wal()
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("PRAGMA foreign_keys = ON")
        with self._transaction() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (SCHEMA_VERSION,),
            )

    def _open_readonly(self, immutable: bool) -> None:
        """Connect with ``mode=ro`` (and ``immutable=1`` when no writer is connected)."""
        location = urllib.parse.quote(str(self.path.resolve()))
        uri = f"file:{location}?mode=ro" + ("&immutable=1" if immutable else "")
        self._stamp = _file_stamp(self.path) if immutable else None
        try:
            self._conn = sqlite3.connect(uri, uri=True, timeout=60.0, isolation_level=None)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA busy_timeout = 60000")
            _check_pages(self._conn, self.path)
            tables = {row[0] for row in self._conn.execute("SELECT name FROM sqlite_master")}
        except StoreError:
            self._conn.close()
            raise
        except sqlite3.DatabaseError as err:
            self._conn.close()
            if not immutable and "unable to open" in str(err):
                raise StoreError(
                    f"{self.path}: has a -wal file but its -shm cannot be created here (a "
                    "writer is running or crashed, and the directory is read-only): read it "
                    "where it is writable, or open it once for writing to checkpoint it"
                ) from None
            raise _damaged(self.path, err) from None
        missing = {"meta", "runs", "experiments", "experiment_runs"} - tables
        if missing:
            self._conn.close()
            raise StoreError(
                f"{self.path}: an SQLite database but not a replearn results database "
                f"(no table {', '.join(sorted(missing))})"
            )
        try:
            _check_schema(self._conn, self.path)
        except StoreError:
            self._conn.close()
            raise

    def _read(self, query: str, args: Iterable = ()) -> list[sqlite3.Row]:
        """Run a read query; on an immutable snapshot, again through mode=ro if it changed."""
        args = tuple(args)
        try:
            rows = self._conn.execute(query, args).fetchall()
            if self._stamp is None or _file_stamp(self.path) == self._stamp:
                return rows
            self._conn.close()  # a writer appeared: follow it through its WAL
            self._open_readonly(immutable=False)
            return self._conn.execute(query, args).fetchall()
        except sqlite3.DatabaseError as err:
            raise _damaged(self.path, err) from None

    # -- plumbing ---------------------------------------------------------------------------
    def _enable_wal(self, patience: float = 60.0) -> None:
        """PRAGMA journal_mode = WAL, retried: switching needs an exclusive lock, and SQLite
        answers "database is locked" at once (without the busy handler) while another
        process is opening a new database at the same moment."""
        deadline = time.monotonic() + patience
        delay = 0.01
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) and "busy" not in str(err):
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE takes the write lock up front."""
        if self.readonly:
            raise StoreError(f"{self.path}: opened read-only: {_WRITE_NEEDED}")
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            if "readonly" in str(err) or "read-only" in str(err):
                raise _damaged(self.path, err) from None
            raise
        try:
            yield self._conn
        except BaseException as err:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.OperationalError:  # SQLite rolled back itself (e.g. disk full)
                pass
            if isinstance(err, sqlite3.OperationalError) and "readonly" in str(err):
                raise _damaged(self.path, err) from None
            if isinstance(err, sqlite3.OperationalError) and _is_full(err):
                raise _full(self.path, err) from None
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.OperationalError as err:
            if "readonly" in str(err) or "read-only" in str(err):
                raise _damaged(self.path, err) from None
            if _is_full(err):
                try:
                    self._conn.execute("ROLLBACK")
                except sqlite3.OperationalError:
                    pass
                raise _full(self.path, err) from None
            raise

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- experiments -----------------------------------------------------------------------
    def register_experiment(
        self, name: str, spec_json: str, runs: Iterable[tuple[str, dict]], replace: bool = True
    ) -> int:
        """Record an experiment and its runs (run_id, config) in grid order; one transaction.

        New runs are inserted as 'pending'; runs already in the store (from this or another
        experiment) are reused as they are. With ``replace`` the experiment's membership
        becomes exactly ``runs``; otherwise they are appended. Returns the number of runs.
        """
        now = time.time()
        runs = list(runs)
        for run_id, config in runs:
            _check_columns(run_id, config)
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO experiments (name, spec, created_at, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET spec = excluded.spec,"
                " updated_at = excluded.updated_at",
                (name, spec_json, now, now),
            )
            conn.executemany(
                "INSERT OR IGNORE INTO runs (run_id, config, method, d, n, seed, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id,
                        canonical_json(config),
                        config["method"],
                        config["d"],
                        config["n"],
                        config["seed"],
                        now,
                    )
                    for run_id, config in runs
                ],
            )
            if replace:
                conn.execute("DELETE FROM experiment_runs WHERE experiment = ?", (name,))
                start = 0
            else:
                row = conn.execute(
                    "SELECT COALESCE(MAX(position) + 1, 0) FROM experiment_runs"
                    " WHERE experiment = ?",
                    (name,),
                ).fetchone()
                start = row[0]
            conn.executemany(
                "INSERT OR IGNORE INTO experiment_runs (experiment, run_id, position)"
                " VALUES (?, ?, ?)",
                [(name, run_id, start + i) for i, (run_id, _) in enumerate(runs)],
            )
        return len(runs)

    def experiments(self) -> list[str]:
        return [r[0] for r in self._read("SELECT name FROM experiments ORDER BY name")]

    def experiment_spec(self, name: str) -> dict | None:
        rows = self._read("SELECT spec FROM experiments WHERE name = ?", (name,))
        return json.loads(rows[0][0]) if rows else None

    def reset_failed(self, experiment: str) -> int:
        """Failed runs of the experiment back to 'pending' (for --retry-failed)."""
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE runs SET status = 'pending', error = NULL, metrics = NULL"
                " WHERE status = 'failed' AND run_id IN"
                " (SELECT run_id FROM experiment_runs WHERE experiment = ?)",
                (experiment,),
            )
            return cursor.rowcount

    # -- claiming and finishing -------------------------------------------------------------
    def _stale(self, row: sqlite3.Row, now: float) -> bool:
        if row["lease_expires"] is not None and row["lease_expires"] < now:
            return True
        if row["claim_host"] == self.host and row["claim_pid"] is not None:
            if row["claim_pid"] == self.pid:
                return False  # another runner in this very process holds it
            return not _alive(row["claim_pid"], row["claim_pid_started"])
        return False

    def claim_next(self, experiment: str, token: str) -> tuple[str, dict] | None:
        """Atomically take the experiment's next runnable run: (run_id, config), or None.

        Runnable: 'pending', or 'running' but stale (lease expired, or its driver on this
        host is dead). The claim stamps ``token``, this host and pid, and a lease.
        """
        now = time.time()
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT r.run_id, r.config FROM experiment_runs e JOIN runs r USING (run_id)"
                " WHERE e.experiment = ? AND r.status = 'pending' ORDER BY e.position LIMIT 1",
                (experiment,),
            ).fetchone()
            if row is None:
                candidates = conn.execute(
                    "SELECT r.run_id, r.config, r.lease_expires, r.claim_host, r.claim_pid,"
                    " r.claim_pid_started FROM experiment_runs e JOIN runs r USING (run_id)"
                    " WHERE e.experiment = ? AND r.status = 'running' AND"
                    " (r.claim_token IS NULL OR r.claim_token != ?) ORDER BY e.position",
                    (experiment, token),
                ).fetchall()
                row = next((c for c in candidates if self._stale(c, now)), None)
            if row is None:
                return None
            conn.execute(
                "UPDATE runs SET status = 'running', claim_token = ?, claim_host = ?,"
                " claim_pid = ?, claim_pid_started = ?, lease_expires = ?, started_at = ?,"
                " attempts = attempts + 1 WHERE run_id = ?",
                (
                    token,
                    self.host,
                    self.pid,
                    self._pid_started,
                    now + self.lease_seconds,
                    now,
                    row["run_id"],
                ),
            )
        return row["run_id"], json.loads(row["config"])

    def renew(self, token: str) -> int:
        """Extend the leases of every run this token holds; returns how many."""
        with self._transaction() as conn:
            return conn.execute(
                "UPDATE runs SET lease_expires = ? WHERE claim_token = ? AND status = 'running'",
                (time.time() + self.lease_seconds, token),
            ).rowcount

    def finish(self, run_id: str, token: str, result: dict) -> bool:
        """Write a run's outcome in one UPDATE; False if the claim was lost meanwhile."""
        status = result["status"]
        if status not in ("done", "failed"):
            raise ValueError(f"status must be 'done' or 'failed', got {status!r}")
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE runs SET status = ?, metrics = ?, error = ?, wall_time = ?,"
                " peak_rss_mb = ?, peak_gpu_mb = ?, host = ?, versions = ?, finished_at = ?,"
                " lease_expires = NULL WHERE run_id = ? AND claim_token = ?"
                " AND status = 'running'",
                (
                    status,
                    None if result.get("metrics") is None else canonical_json(result["metrics"]),
                    result.get("error"),
                    result.get("wall_time"),
                    result.get("peak_rss_mb"),
                    result.get("peak_gpu_mb"),
                    result.get("host"),
                    canonical_json(result.get("versions") or {}),
                    time.time(),
                    run_id,
                    token,
                ),
            )
            return cursor.rowcount == 1

    def release(self, token: str) -> int:
        """Unfinished runs this token holds back to 'pending' (clean interruption)."""
        with self._transaction() as conn:
            return conn.execute(
                "UPDATE runs SET status = 'pending', claim_token = NULL, lease_expires = NULL,"
                " attempts = MAX(attempts - 1, 0) WHERE claim_token = ? AND status = 'running'",
                (token,),
            ).rowcount

    # -- reading ------------------------------------------------------------------------------
    def counts(self, experiment: str | None = None) -> dict[str, dict[str, int]]:
        """{experiment: {total, done, failed, running, stale, pending}}."""
        names = [experiment] if experiment else self.experiments()
        now = time.time()
        out: dict[str, dict[str, int]] = {}
        for name in names:
            counts = dict.fromkeys(("total", "done", "failed", "running", "stale", "pending"), 0)
            for row in self._read(
                "SELECT r.status, r.lease_expires, r.claim_host, r.claim_pid,"
                " r.claim_pid_started FROM experiment_runs e JOIN runs r USING (run_id)"
                " WHERE e.experiment = ?",
                (name,),
            ):
                status = row["status"]
                if status == "running" and self._stale(row, now):
                    status = "stale"
                counts[status] += 1
                counts["total"] += 1
            out[name] = counts
        return out

    def runs(self, experiment: str | None = None, status: str | None = None) -> list[dict]:
        """Run rows as dicts (config, metrics, versions parsed), with their experiment."""
        query = (
            "SELECT e.experiment, e.position, r.* FROM experiment_runs e JOIN runs r USING (run_id)"
        )
        clauses, args = [], []
        if experiment:
            clauses.append("e.experiment = ?")
            args.append(experiment)
        if status:
            clauses.append("r.status = ?")
            args.append(status)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += " ORDER BY e.experiment, e.position"
        rows = []
        for row in self._read(query, args):
            item = dict(row)
            for key in ("config", "metrics", "versions"):
                item[key] = json.loads(item[key]) if item[key] else None
            rows.append(item)
        return rows


# -- results as tables -----------------------------------------------------------------------
RUN_COLUMNS = (
    "experiment", "run_id", "status", "method", "target", "d", "n", "log_d_n", "N", "seed",
    "noise", "noise_kind", "dtype", "device", "n_holdout", "n_test",
)  # fmt: skip
TAIL_COLUMNS = ("wall_time", "peak_rss_mb", "peak_gpu_mb", "host", "attempts", "finished_at")


def flat_rows(rows: list[dict] | Store) -> list[dict]:
    """One flat dict per run: run columns, ``param_*`` hyper-parameters, metrics, timing.

    ``rows`` are ``Store.runs(...)``, or a Store (all its runs). ``N`` is the transfer sample
    size (None without transfer); ``log_d_n`` = log n / log d. Failed runs keep the last line
    of their error in ``error``. As a pandas DataFrame: ``rl.results``.
    """
    if isinstance(rows, Store):
        rows = rows.runs()
    out = []
    for row in rows:
        config = row["config"]
        transfer = config.get("transfer") or {}
        flat = {
            "experiment": row["experiment"],
            "run_id": row["run_id"],
            "status": row["status"],
            "method": config["method"],
            "target": target_label(config["target"]),
            "d": config["d"],
            "n": config["n"],
            "log_d_n": round(log_d(config["n"], config["d"]), 6) if config["d"] > 1 else None,
            "N": transfer.get("N"),
            "seed": config["seed"],
            "noise": config["noise"],
            "noise_kind": config["noise_kind"],
            "dtype": config["dtype"],
            "device": config["device"],
            "n_holdout": config["n_holdout"],
            "n_test": config["n_test"],
        }
        flat.update({f"param_{k}": v for k, v in config["params"].items()})
        flat.update(row["metrics"] or {})
        flat.update({k: row.get(k) for k in TAIL_COLUMNS})
        error = (row.get("error") or "").strip().splitlines()
        flat["error"] = error[-1] if error else None
        out.append(flat)
    return out


def columns_of(rows: list[dict]) -> list[str]:
    """Union of the rows' keys, run columns first, params, metrics, then timing."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    params = [c for c in seen if c.startswith("param_")]
    rest = [c for c in seen if c not in RUN_COLUMNS and c not in params]
    tail = [c for c in rest if c in TAIL_COLUMNS or c == "error"]
    metrics = [c for c in rest if c not in tail]
    return [c for c in RUN_COLUMNS if c in seen] + params + metrics + tail
