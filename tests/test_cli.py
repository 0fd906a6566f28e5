"""The ``replearn`` command: bad specs write nothing, kill -9 and resume, concurrent runs."""

import csv
import io
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from replearn.cli import main
from replearn.experiments.api import run_experiment
from replearn.experiments.grid import expand_grid, run_id
from replearn.experiments.spec import parse_spec
from replearn.experiments.store import Store
from test_spec import MALFORMED

SLEEPY = """
name: sleepy
target: {kind: paper}
methods:
  - {name: synthetic, sleep: SLEEP}
d: [4]
n: [4, 16, 64]
seeds: SEEDS
n_holdout: 0
n_test: 100
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def sleepy(sleep: float, seeds: int) -> str:
    return SLEEPY.replace("SLEEP", str(sleep)).replace("SEEDS", str(seeds))


def replearn(*args: str, cwd: Path, **kwargs) -> subprocess.Popen:
    """The real command in a fresh interpreter (``python -m replearn.cli``)."""
    return subprocess.Popen(
        [sys.executable, "-m", "replearn.cli", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def rows(db: Path) -> list[dict]:
    with Store(db) as store:
        return store.runs()


def row_count(db: Path) -> int:
    connection = sqlite3.connect(db)
    try:
        return connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    finally:
        connection.close()


# -- malformed specs: exit 2, one line, nothing written -----------------------------------------
@pytest.mark.parametrize("case, text, message", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_bad_spec_exits_2_with_one_line_and_writes_nothing(case, text, message, tmp_path, capsys):
    spec = write(tmp_path / "bad.yaml", text)
    fresh = tmp_path / "fresh" / "db.sqlite"
    assert main(["run", str(spec), "--db", str(fresh)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not fresh.exists() and not fresh.parent.exists()
    # a database that already holds an experiment is left as it was
    used = tmp_path / "used.sqlite"
    run_experiment(parse_spec(sleepy(0, 1)), db=used, quiet=True)
    before = row_count(used)
    assert main(["run", str(spec), "--db", str(used), "--quiet"]) == 2
    assert row_count(used) == before


def test_bad_spec_through_the_real_entry_point(tmp_path):
    spec = write(tmp_path / "tag.yaml", MALFORMED[-1][1])
    process = replearn("run", str(spec), cwd=tmp_path)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert err.strip().count("\n") == 0 and "is not allowed" in err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    "command", [[], ["run"], ["status"], ["results"], ["report"], ["demo"], ["theory"]]
)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: replearn" in capsys.readouterr().out


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "x.yaml", "--executor", "gpu"])
    assert exit_info.value.code == 2


# -- SIGKILL part-way, then resume ------------------------------------------------------------
def test_sigkill_then_rerun_gives_every_cell_once_with_the_same_numbers(tmp_path):
    spec = write(tmp_path / "sleepy.yaml", sleepy(0.2, 4))  # 12 runs of 0.2 s
    db = tmp_path / "killed.sqlite"
    process = replearn("run", str(spec), "--db", str(db), "--quiet", cwd=tmp_path)
    deadline = time.monotonic() + 60
    done_before_kill = []
    while time.monotonic() < deadline:
        if db.exists():
            try:
                done_before_kill = [r for r in rows(db) if r["status"] == "done"]
            except sqlite3.OperationalError:  # schema not created yet
                pass
        if len(done_before_kill) >= 3:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate(
        timeout=30
    )  # returns once every holder of the pipes (pool workers too) exited
    assert process.returncode == -signal.SIGKILL
    killed = rows(db)
    assert 3 <= sum(r["status"] == "done" for r in killed) < len(killed) == 12

    rerun = replearn("run", str(spec), "--db", str(db), "--quiet", cwd=tmp_path)
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    resumed = rows(db)
    assert len(resumed) == len({r["run_id"] for r in resumed}) == 12
    assert all(r["status"] == "done" for r in resumed)
    # cells finished before the kill were not run again
    finished = {r["run_id"] for r in done_before_kill}
    assert all(r["attempts"] == 1 for r in resumed if r["run_id"] in finished)
    assert all(r["attempts"] <= 2 for r in resumed)

    fresh = tmp_path / "fresh.sqlite"
    assert run_experiment(parse_spec(spec.read_text()), db=fresh, quiet=True).ok
    as_metrics = lambda runs: {r["run_id"]: r["metrics"] for r in runs}  # noqa: E731
    assert as_metrics(resumed) == as_metrics(rows(fresh))


def test_two_processes_on_one_database_share_the_grid(tmp_path):
    spec = write(tmp_path / "sleepy.yaml", sleepy(0.15, 8))  # 24 runs
    db = tmp_path / "shared.sqlite"
    processes = [
        replearn("run", str(spec), "--db", str(db), "--quiet", cwd=tmp_path) for _ in range(2)
    ]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    runs = rows(db)
    expected = {run_id(c) for c in expand_grid(parse_spec(spec.read_text()))}
    assert {r["run_id"] for r in runs} == expected and len(runs) == 24
    assert all(r["status"] == "done" and r["attempts"] == 1 for r in runs)
    assert {r["claim_pid"] for r in runs} == {p.pid for p in processes}  # both did work


# -- status, results, report, theory, demo ------------------------------------------------------
@pytest.fixture
def finished_db(tmp_path):
    db = tmp_path / "done.sqlite"
    text = sleepy(0, 2).replace(
        "{name: synthetic, sleep: 0}", "{name: synthetic, fail: [false, true]}"
    )
    run_experiment(parse_spec(text), db=db, quiet=True)
    return db


def test_status(finished_db, capsys):
    assert main(["status", "--db", str(finished_db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["experiment", "total", "done", "failed", "running", "stale",
                                "pending"]  # fmt: skip
    assert lines[1].split() == ["sleepy", "12", "6", "6", "0", "0", "0"]
    assert main(["status", "--db", str(finished_db), "--experiment", "nope"]) == 2
    assert "no experiment 'nope'" in capsys.readouterr().err
    assert main(["status", "--db", str(finished_db.parent / "missing.sqlite")]) == 2


def test_results_csv_and_json(finished_db, capsys, tmp_path):
    assert main(["results", "--db", str(finished_db), "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(table) == 12 and {"run_id", "risk", "param_fail", "error"} <= set(table[0])
    out = tmp_path / "r.json"
    args = ["results", "--db", str(finished_db), "--format", "json", "--status", "failed"]
    assert main([*args, "--out", str(out)]) == 0
    failed = json.loads(out.read_text())
    assert len(failed) == 6 and all("asked to fail" in r["error"] for r in failed)


def test_results_parquet(finished_db, tmp_path, capsys):
    out = tmp_path / "r.parquet"
    code = main(["results", "--db", str(finished_db), "--format", "parquet", "--out", str(out)])
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        assert code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "needs pyarrow" in err
    else:
        assert code == 0 and parquet.read_table(out).num_rows == 12


def test_report_writes_tables_and_prints_the_path(finished_db, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", "--db", str(finished_db), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("report: ")
    path = Path(printed.removeprefix("report: "))
    assert path == out / "index.html" and path.is_file()
    # the failed half of the grid is counted, not plotted (structure: tests/test_report.py)
    assert "6 runs done, 6 failed, 0 pending" in path.read_text()


def test_demo_with_a_small_spec(tmp_path, capsys):
    spec = write(tmp_path / "mini.yaml", sleepy(0, 1))
    db, out = tmp_path / "demo.sqlite", tmp_path / "demo-report"
    args = ["demo", "--spec", str(spec), "--db", str(db), "--out", str(out), "--executor", "serial"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"report: {out}" in printed and row_count(db) == 3


def test_theory_of_the_paper_target(capsys):
    assert main(["theory", "--target", "paper", "--d", "10"]) == 0
    text = capsys.readouterr().out
    assert "He2/2 + He4/(4√3)" in text and "0.5" in text  # the plateau of Fig. 1
    assert main(["theory", "--target", "{kind: random, r: 2, degree: 4}", "--d", "8"]) == 0
    assert "random(r=2, degree=4" in capsys.readouterr().out
    assert main(["theory", "--target", "He3(z1)/sqrt(6)"]) == 0
    assert "degenerate" in capsys.readouterr().out
    assert main(["theory", "--target", "{kind: random, r: 20, degree: 3}"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    # a bad field is named with its path
    assert main(["theory", "--target", "{kind: paper, sede: 1}"]) == 2
    assert "--target.sede: unknown field" in capsys.readouterr().err


def test_interrupted_run_exits_130(tmp_path):
    spec = write(tmp_path / "sleepy.yaml", sleepy(0.2, 10))
    db = tmp_path / "term.sqlite"
    process = replearn("run", str(spec), "--db", str(db), "--quiet", cwd=tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if db.exists() and any(r["status"] == "done" for r in rows(db)):
                break
        except sqlite3.OperationalError:
            pass
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130 and "re-run to resume" in err
    assert not any(r["status"] == "running" for r in rows(db))  # claims released


def test_run_exit_status_reflects_failures(tmp_path, capsys):
    text = sleepy(0, 1).replace("sleep: 0", "fail: true")
    spec = write(tmp_path / "failing.yaml", text)
    assert main(["run", str(spec), "--db", str(tmp_path / "x.sqlite"), "--quiet"]) == 1
    assert "3 runs failed" in capsys.readouterr().err
    assert main(["run", str(spec), "--dry-run"]) == 0
    assert "3 runs (synthetic: 3); nothing run" in capsys.readouterr().out
    assert not (tmp_path / "results").exists()
