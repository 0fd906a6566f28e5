"""SQLite store: registration, exclusive claims, stale claims, atomic results, tables."""

import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from replearn.experiments.analysis import aggregate
from replearn.experiments.store import Store, columns_of, flat_rows


def config(seed: int, n: int = 100, method: str = "synthetic") -> dict:
    return {
        "method": method,
        "params": {"width": 10},
        "target": {"kind": "paper", "seed": 0},
        "d": 10,
        "n": n,
        "seed": seed,
        "noise": 1.0,
        "noise_kind": "rademacher",
        "n_holdout": 10,
        "n_test": 10,
        "dtype": "float32",
        "device": "cpu",
        "metrics": ["excess_risk"],
    }


def result(risk: float, status: str = "done") -> dict:
    return {
        "status": status,
        "metrics": {"risk": risk, "stderr": 0.1} if status == "done" else None,
        "error": None if status == "done" else "Traceback…\nRuntimeError: boom",
        "wall_time": 0.5,
        "peak_rss_mb": 100.0,
        "host": "here",
        "versions": {"torch": "x"},
    }


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "sub" / "results.sqlite") as store:
        store.register_experiment("e", "{}", [(f"r{i}", config(i)) for i in range(4)])
        yield store


def test_wal_mode_schema_and_idempotent_registration(store):
    mode = store._conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    store.register_experiment("e", "{}", [(f"r{i}", config(i)) for i in range(4)])
    store.register_experiment("other", "{}", [("r0", config(0)), ("r9", config(9))])
    assert store.counts()["e"] == dict(total=4, done=0, failed=0, running=0, stale=0, pending=4)
    assert store.counts("other")["other"]["total"] == 2
    assert len(store.runs()) == 6  # r0 shared: one run row, two memberships
    assert store._conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 5
    # replace=True makes the membership exactly the new grid; append adds to it
    store.register_experiment("e", "{}", [("r0", config(0))])
    assert store.counts("e")["e"]["total"] == 1
    store.register_experiment("e", "{}", [("r1", config(1))], replace=False)
    assert [r["run_id"] for r in store.runs("e")] == ["r0", "r1"]


def test_claims_are_exclusive_and_in_grid_order(store):
    taken = [store.claim_next("e", "A"), store.claim_next("e", "B")]
    assert [t[0] for t in taken] == ["r0", "r1"]
    assert taken[0][1] == config(0)
    assert not store.finish("r0", "B", result(0.5))  # B does not hold r0
    assert store.finish("r0", "A", result(0.5))
    assert not store.finish("r0", "A", result(0.7))  # written once
    row = store.runs("e")[0]
    assert row["status"] == "done" and row["metrics"] == {"risk": 0.5, "stderr": 0.1}
    assert row["attempts"] == 1 and row["wall_time"] == 0.5 and row["host"] == "here"
    with pytest.raises(ValueError, match="status must be"):
        store.finish("r1", "B", {**result(0.1), "status": "running"})


def test_threads_racing_for_claims_never_share_a_run(tmp_path):
    path = tmp_path / "race.sqlite"
    with Store(path) as setup:
        setup.register_experiment("e", "{}", [(f"r{i}", config(i)) for i in range(60)])
    claimed: dict[str, list[str]] = {}

    def worker(token: str) -> None:
        with Store(path) as mine:
            while (claim := mine.claim_next("e", token)) is not None:
                claimed.setdefault(token, []).append(claim[0])
                mine.finish(claim[0], token, result(1.0))

    threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [rid for ids in claimed.values() for rid in ids]
    assert sorted(everything) == sorted(f"r{i}" for i in range(60))
    with Store(path) as check:
        assert check.counts("e")["e"]["done"] == 60


def test_claims_of_a_dead_process_are_taken_again(store):
    store.claim_next("e", "A")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store._conn.execute("UPDATE runs SET claim_pid = ? WHERE run_id = 'r0'", (dead.pid,))
    for i in (1, 2, 3):  # pending runs come first
        assert store.claim_next("e", "B")[0] == f"r{i}"
    assert store.counts("e")["e"]["stale"] == 1
    assert store.claim_next("e", "B")[0] == "r0"
    assert store.runs("e")[0]["attempts"] == 2
    assert store.claim_next("e", "B") is None


def test_expired_leases_are_taken_again_and_renewed_ones_are_not(tmp_path):
    path = tmp_path / "lease.sqlite"
    with Store(path, lease_seconds=600) as a, Store(path, lease_seconds=600) as b:
        a.register_experiment("e", "{}", [("r0", config(0))])
        a.claim_next("e", "A")
        # a driver on another host: no pid check possible, only the lease counts
        a._conn.execute("UPDATE runs SET claim_host = 'elsewhere'")
        assert b.claim_next("e", "B") is None
        expire = "UPDATE runs SET lease_expires = ?"
        a._conn.execute(expire, (time.time() - 1,))
        assert a.renew("A") == 1  # the heartbeat renews: not stale any more
        assert b.claim_next("e", "B") is None
        a._conn.execute(expire, (time.time() - 1,))  # the heartbeat stopped
        assert b.claim_next("e", "B")[0] == "r0"
        assert not a.finish("r0", "A", result(0.3))  # A lost the claim
        assert b.finish("r0", "B", result(0.3))
        assert b.runs("e")[0]["attempts"] == 2


def test_release_and_reset_failed(store):
    store.claim_next("e", "A")
    store.claim_next("e", "A")
    assert store.release("A") == 2
    assert store.counts("e")["e"]["pending"] == 4
    rid, _ = store.claim_next("e", "A")
    store.finish(rid, "A", result(0.0, status="failed"))
    assert store.counts("e")["e"]["failed"] == 1
    assert store.reset_failed("e") == 1
    assert store.counts("e")["e"] == dict(total=4, done=0, failed=0, running=0, stale=0, pending=4)


def test_a_result_is_written_in_one_transaction(store, monkeypatch):
    rid, _ = store.claim_next("e", "A")
    bad = result(0.5)
    bad["metrics"] = {"risk": object()}  # not JSON: fails before anything is written
    with pytest.raises(TypeError):
        store.finish(rid, "A", bad)
    row = store.runs("e")[0]
    assert row["status"] == "running" and row["metrics"] is None
    assert not store._conn.in_transaction


def test_busy_database_waits_instead_of_failing(tmp_path):
    path = tmp_path / "busy.sqlite"
    with Store(path) as a:
        a.register_experiment("e", "{}", [("r0", config(0))])
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(0.5, lambda: blocker.execute("COMMIT"))
    timer.start()
    with Store(path) as b:
        assert b.claim_next("e", "B")[0] == "r0"  # waited for the lock
    timer.join()
    blocker.close()


def test_flat_rows_and_aggregate(store):
    for risk in [0.2, 0.4, 0.6]:
        rid, _ = store.claim_next("e", "A")
        store.finish(rid, "A", result(risk))
    rid, _ = store.claim_next("e", "A")
    store.finish(rid, "A", result(0.0, status="failed"))
    flat = flat_rows(store.runs("e"))
    assert flat[0]["param_width"] == 10 and flat[0]["risk"] == 0.2 and flat[0]["log_d_n"] == 2.0
    assert flat[3]["error"] == "RuntimeError: boom"
    columns = columns_of(flat)
    assert columns[:4] == ["experiment", "run_id", "status", "method"]
    assert columns.index("param_width") < columns.index("risk") < columns.index("wall_time")
    # the one aggregation over seeds: the failed run (no risk) is left out, sd with ddof 1
    (cell,) = aggregate(flat, by=["method", "d", "n"])
    assert cell["count"] == 3 and cell["min"] == 0.2 and cell["max"] == 0.6
    assert cell["mean"] == pytest.approx(0.4) and cell["sd"] == pytest.approx(0.2)


def _open_store_at_once(paths, barrier, results):
    outcome = ("ok", [])
    for path in paths:
        barrier.wait()
        try:
            with Store(path) as store:
                store.experiments()
        except Exception as err:  # reported to the parent, which fails the test
            outcome = ("error", repr(err))
    results.put(outcome)


def test_processes_opening_a_new_database_at_once_all_succeed(tmp_path):
    # switching a new database to WAL needs an exclusive lock, which SQLite refuses at once
    # (no busy handler) while another process is doing the same: Store retries it
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    n_processes = 6
    barrier, results = context.Barrier(n_processes), context.Queue()
    paths = [tmp_path / f"new{i}.sqlite" for i in range(20)]  # 20 races, not one
    processes = [
        context.Process(target=_open_store_at_once, args=(paths, barrier, results))
        for _ in range(n_processes)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert outcomes == [("ok", [])] * n_processes
