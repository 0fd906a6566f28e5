"""Store faults, injected: read-only files and directories, damaged, empty, misplaced paths.

Tests run as root, for whom chmod does not stop a write. So every read-only test checks the
read-only *open mode* itself: no -wal/-shm file appears, the database's bytes and mtime
stay the same. Where ``chattr +i`` works (ext4 and most Linux file systems, as root) it
makes a file or directory unwritable even for root, and the tests use it too.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import stat
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from replearn.experiments.store import Store, StoreError


def config(seed: int) -> dict:
    return {
        "method": "synthetic",
        "params": {"width": 10},
        "target": {"kind": "paper", "seed": 0},
        "d": 10,
        "n": 100,
        "seed": seed,
        "noise": 1.0,
        "noise_kind": "rademacher",
        "n_holdout": 10,
        "n_test": 10,
        "dtype": "float32",
        "device": "cpu",
        "metrics": ["excess_risk"],
    }


def fill(path: Path) -> None:
    """Two experiments sharing runs: done, failed, running (this pid, so not stale), pending."""
    with Store(path) as store:
        store.register_experiment("e", '{"name": "e"}', [(f"r{i}", config(i)) for i in range(4)])
        store.register_experiment("f", '{"name": "f"}', [(f"r{i}", config(i)) for i in (0, 5)])
        for risk, status in ((0.25, "done"), (None, "failed")):
            run_id, _ = store.claim_next("e", "token")
            store.finish(
                run_id,
                "token",
                {
                    "status": status,
                    "metrics": {"risk": risk} if risk is not None else None,
                    "error": None if risk is not None else "Traceback…\nValueError: boom",
                    "wall_time": 0.5,
                    "versions": {"torch": "x"},
                },
            )
        store.claim_next("e", "token")


def snapshot(store: Store) -> tuple:
    return (
        store.experiments(),
        store.experiment_spec("e"),
        store.experiment_spec("nope"),
        store.counts(),
        store.runs(),
        store.runs("e", status="done"),
    )


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.fixture
def db(tmp_path) -> Path:
    path = tmp_path / "store" / "results.sqlite"
    fill(path)
    assert listing(path.parent) == ["results.sqlite"]  # the last writer cleaned up its WAL
    return path


@contextmanager
def immutable(*paths: Path):
    """chattr +i (unwritable even for root) for the block, or skip where it is unsupported."""
    done = []
    try:
        for path in paths:
            if shutil.which("chattr") is None:
                pytest.skip("chattr is not available")
            result = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
            if result.returncode:
                pytest.skip(f"chattr +i is not supported here: {result.stderr.decode().strip()}")
            done.append(path)
        yield
    finally:
        for path in done:
            subprocess.run(["chattr", "-i", str(path)], check=True)


# -- read-only: the same results, nothing written -------------------------------------------------
def test_readonly_reads_equal_writable_reads_and_leave_nothing(db):
    with Store(db) as writable:
        expected = snapshot(writable)
    before = fingerprint(db)
    with Store(db, readonly=True) as readonly:
        assert snapshot(readonly) == expected
        assert listing(db.parent) == ["results.sqlite"]
    assert listing(db.parent) == ["results.sqlite"]
    assert fingerprint(db) == before
    assert expected[3]["e"] == {
        "total": 4,
        "done": 1,
        "failed": 1,
        "running": 1,
        "stale": 0,
        "pending": 1,
    }


def test_readonly_file_and_directory_by_mode(db):
    with Store(db) as writable:
        expected = snapshot(writable)
    before = fingerprint(db)
    db.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    db.parent.chmod(0o555)
    try:
        with Store.open_readonly(db) as readonly:
            assert snapshot(readonly) == expected
    finally:
        db.parent.chmod(0o755)
        db.chmod(0o644)
    assert listing(db.parent) == ["results.sqlite"]
    assert fingerprint(db) == before


def test_readonly_file_and_directory_unwritable_even_for_root(db):
    with Store(db) as writable:
        expected = snapshot(writable)
    with immutable(db, db.parent):
        with pytest.raises(OSError):  # the directory really is unwritable
            (db.parent / "probe").touch()
        with Store(db, readonly=True) as readonly:
            assert snapshot(readonly) == expected
    assert listing(db.parent) == ["results.sqlite"]


def test_writable_open_of_an_unwritable_store_says_run_needs_write_access(db):
    with immutable(db, db.parent):
        with pytest.raises(StoreError, match=r"`replearn run` needs write access") as err:
            Store(db).register_experiment("g", "{}", [("r9", config(9))])
    one_line(err)
    assert listing(db.parent) == ["results.sqlite"]


def test_a_readonly_store_refuses_writes(db):
    before = fingerprint(db)
    with Store(db, readonly=True) as store:
        with pytest.raises(StoreError, match=r"opened read-only: `replearn run` needs write"):
            store.register_experiment("g", "{}", [("r9", config(9))])
        with pytest.raises(StoreError, match=r"opened read-only"):
            store.claim_next("e", "other")
    assert fingerprint(db) == before


def test_readonly_follows_a_live_writer(db):
    """A writer connected (its -wal exists): read through mode=ro, see uncheckpointed rows."""
    with Store(db) as writer:
        writer.register_experiment("live", "{}", [("r7", config(7))])
        assert (db.parent / "results.sqlite-wal").exists()
        with Store(db, readonly=True) as reader:
            assert "live" in reader.experiments()
            assert reader.runs("live")[0]["run_id"] == "r7"


def test_readonly_snapshot_notices_a_writer_that_came_later(db):
    with Store(db, readonly=True) as reader:
        assert "late" not in reader.experiments()  # immutable snapshot (no -wal at open)
        with Store(db) as writer:
            writer.register_experiment("late", "{}", [("r8", config(8))])
            # the snapshot's file changed: the reader reads again through mode=ro
            assert "late" in reader.experiments()
            assert [r["run_id"] for r in reader.runs("late")] == ["r8"]


# -- damaged and misplaced databases: one line each --------------------------------------------
@pytest.mark.parametrize("readonly", [True, False])
def test_truncated_database(db, readonly):
    data = db.read_bytes()
    assert len(data) >= 4 * 4096  # several pages, so that half of it loses whole pages
    db.write_bytes(data[: len(data) // 2])
    # SQLite notices the missing pages itself, or _check_pages does (page_count·page_size)
    truncated = r"damaged or truncated \(SQLite: .*the file has|truncated: its header says"
    with pytest.raises(StoreError, match=truncated) as e:
        Store(db, readonly=readonly)
    one_line(e)
    assert listing(db.parent) == ["results.sqlite"]


@pytest.mark.parametrize("readonly", [True, False])
def test_garbage_file(tmp_path, readonly):
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(bytes(range(256)) * 64)
    before = fingerprint(path)
    with pytest.raises(StoreError, match=r"not an SQLite database \(garbage") as err:
        Store(path, readonly=readonly)
    one_line(err)
    assert fingerprint(path) == before and listing(tmp_path) == ["garbage.sqlite"]


@pytest.mark.parametrize("readonly", [True, False])
def test_garbage_pages_behind_a_valid_header(db, readonly):
    data = bytearray(db.read_bytes())
    data[100:] = bytes((7 * i + 3) % 256 for i in range(len(data) - 100))
    db.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"results.sqlite: ") as err:
        with Store(db, readonly=readonly) as store:
            store.runs()
    one_line(err)


def test_empty_file_is_not_a_new_database_when_read(tmp_path):
    path = tmp_path / "empty.sqlite"
    path.touch()
    with pytest.raises(StoreError, match=r"is an empty file, not a results database") as err:
        Store(path, readonly=True)
    one_line(err)
    assert path.stat().st_size == 0 and listing(tmp_path) == ["empty.sqlite"]


def test_empty_file_may_become_a_database_for_run(tmp_path):
    path = tmp_path / "empty.sqlite"
    path.touch()
    with Store(path) as store:
        assert store.experiments() == []
    assert path.stat().st_size > 0


def test_missing_file_is_not_created_when_read(tmp_path):
    with pytest.raises(StoreError, match=r"no such results database") as err:
        Store(tmp_path / "sub" / "none.sqlite", readonly=True)
    one_line(err)
    assert listing(tmp_path) == []


@pytest.mark.parametrize("readonly", [True, False])
def test_directory_as_path(tmp_path, readonly):
    with pytest.raises(StoreError, match=r"is a directory, not a results database") as err:
        Store(tmp_path, readonly=readonly)
    one_line(err)
    assert listing(tmp_path) == []


@pytest.mark.parametrize("readonly", [True, False])
def test_path_under_a_regular_file(tmp_path, readonly):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match=r"file is a file, not a directory") as err:
        Store(tmp_path / "file" / "sub" / "results.sqlite", readonly=readonly)
    one_line(err)
    assert (tmp_path / "file").read_text() == "x"


@pytest.mark.parametrize("readonly", [True, False])
def test_unreadable_file(db, monkeypatch, readonly):
    # root reads a chmod-000 file anyway: answer os.access as for an ordinary user
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if Path(p) == db else real_access(p, mode)
    )
    with pytest.raises(StoreError, match=r"cannot read the results database \(permission") as e:
        Store(db, readonly=readonly)
    one_line(e)


def test_the_database_file_is_never_opened_outside_sqlite(db, monkeypatch):
    """Closing any descriptor of the file drops the POSIX locks SQLite holds in this process
    (a driver's commits then stayed invisible to other processes until it closed)."""
    real_open = open

    def guarded_open(file, *args, **kwargs):
        assert not str(file).startswith(str(db)), f"Store opened {file} itself"
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", guarded_open)
    monkeypatch.setattr(os, "open", lambda *a, **k: pytest.fail("os.open of the database"))
    with Store(db) as writer, Store(db) as second, Store(db, readonly=True) as reader:
        writer.register_experiment("g", "{}", [("r9", config(9))])
        assert "g" in second.experiments() and "g" in reader.experiments()


def test_a_second_store_in_the_same_process_keeps_the_first_ones_commits_visible(db):
    """What a driver and its heartbeat thread do, while other processes read the store.

    Had the second Store dropped the driver's locks, a reader process closing its
    connection would count itself the last one, checkpoint and delete the WAL the driver
    still writes to: the driver's later commits would stay invisible until it closed.
    """
    import sys

    reader = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "print(c.execute(\"SELECT status FROM runs WHERE run_id = 'r3'\").fetchone()[0]); "
        "c.close()"
    )

    def status_seen_elsewhere() -> str:
        command = [sys.executable, "-c", reader, str(db)]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()

    with Store(db) as driver:
        with Store(db) as heartbeat:
            heartbeat.renew("nobody")
        assert status_seen_elsewhere() == "pending"
        run_id, _ = driver.claim_next("e", "t2")
        assert run_id == "r3"
        driver.finish(run_id, "t2", {"status": "done", "metrics": {"risk": 0.5}})
        assert status_seen_elsewhere() == "done"


def test_sqlite_database_of_something_else(tmp_path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.close()
    with pytest.raises(StoreError, match=r"not a replearn results database \(no table") as err:
        Store(path, readonly=True)
    one_line(err)


def test_readonly_open_does_not_depend_on_the_current_directory(db, monkeypatch):
    monkeypatch.chdir(db.parent)
    with Store(Path(db.name), readonly=True) as store:
        assert store.experiments() == ["e", "f"]
    assert os.listdir(db.parent) == ["results.sqlite"]


def test_an_empty_leftover_wal_is_read_as_a_snapshot(db):
    (db.parent / "results.sqlite-wal").touch()  # what a writer leaves after a clean reset
    with Store(db) as writable:
        expected = snapshot(writable)
    (db.parent / "results.sqlite-wal").touch()
    before = fingerprint(db)
    with Store(db, readonly=True) as readonly:
        assert snapshot(readonly) == expected
    assert listing(db.parent) == ["results.sqlite", "results.sqlite-wal"]
    assert fingerprint(db) == before


def crashed_copy(db: Path, target: Path) -> None:
    """The database and the -wal of a writer that died before checkpointing (no -shm)."""
    target.mkdir()
    with Store(db) as writer:
        writer.register_experiment("uncheckpointed", "{}", [("r6", config(6))])
        for suffix in ("", "-wal"):
            shutil.copyfile(f"{db}{suffix}", target / f"results.sqlite{suffix}")


def test_a_crashed_writers_wal_is_read(db, tmp_path):
    copy = tmp_path / "crashed"
    crashed_copy(db, copy)
    with Store(copy / "results.sqlite", readonly=True) as readonly:
        assert "uncheckpointed" in readonly.experiments()


def test_a_crashed_writers_wal_in_an_unwritable_directory_is_one_line(db, tmp_path):
    copy = tmp_path / "crashed"
    crashed_copy(db, copy)
    with immutable(copy):
        # SQLite cannot read a WAL with frames without a -shm it may create
        with pytest.raises(StoreError, match=r"has a -wal file but its -shm cannot be") as err:
            Store(copy / "results.sqlite", readonly=True)
    one_line(err)
    assert listing(copy) == ["results.sqlite", "results.sqlite-wal"]


def test_snapshot_notices_commits_that_only_reached_the_wal(db):
    (db.parent / "results.sqlite-wal").touch()
    with Store(db, readonly=True) as reader:
        assert "walonly" not in reader.experiments()
        with Store(db) as writer:
            writer.register_experiment("walonly", "{}", [("r5", config(5))])
            assert "walonly" in reader.experiments()


@pytest.mark.parametrize(
    ("key", "value", "pattern"),
    [
        ("seed", 2**63, r"seed = 9223372036854775808 does not fit a 64-bit integer"),
        ("n", 10**400, r"n = 1000000000.*\.\.\..*0 does not fit a 64-bit integer"),
        ("d", "10", r"d must be an integer, got '10'"),
    ],
    ids=["seed", "n", "d"],
)
def test_values_sqlite_cannot_hold_are_one_line_and_write_nothing(tmp_path, key, value, pattern):
    path = tmp_path / "results.sqlite"
    with Store(path) as store:
        bad = {**config(1), key: value}
        with pytest.raises(ValueError, match=pattern) as err:
            store.register_experiment("e", "{}", [("r0", config(0)), ("r1", bad)])
        assert len(one_line(err)) < 200
        assert store.experiments() == [] and store.runs() == []
