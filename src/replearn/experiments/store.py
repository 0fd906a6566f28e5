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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from replearn.experiments.analysis import log_d

__all__ = ["Store", "DEFAULT_DB", "STATUSES", "canonical_json", "process_start_time"]

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


class Store:
    """The results database. Not thread-safe: use one Store per thread or process."""

    def __init__(self, path: str | Path = DEFAULT_DB, lease_seconds: float = DEFAULT_LEASE_SECONDS):
        self.path = Path(path)
        self.lease_seconds = float(lease_seconds)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._pid_started = process_start_time(self.pid)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA busy_timeout = 60000")
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
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

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
        return [r[0] for r in self._conn.execute("SELECT name FROM experiments ORDER BY name")]

    def experiment_spec(self, name: str) -> dict | None:
        row = self._conn.execute("SELECT spec FROM experiments WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

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
            for row in self._conn.execute(
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
        for row in self._conn.execute(query, args):
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


def _target_label(target: dict) -> str:
    if target["kind"] == "expression":
        return f"expression:{target['expr']}"
    if target["kind"] == "random":
        extra = f",kappa={target['kappa']}" if target.get("kappa") is not None else ""
        return f"random(r={target['r']},degree={target['degree']}{extra})"
    return target["kind"]


def flat_rows(rows: list[dict]) -> list[dict]:
    """One flat dict per run: run columns, ``param_*`` hyper-parameters, metrics, timing.

    ``N`` is the transfer sample size (None without transfer); ``log_d_n`` = log n / log d.
    Failed runs keep the last line of their error in ``error``.
    """
    out = []
    for row in rows:
        config = row["config"]
        transfer = config.get("transfer") or {}
        flat = {
            "experiment": row["experiment"],
            "run_id": row["run_id"],
            "status": row["status"],
            "method": config["method"],
            "target": _target_label(config["target"]),
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
