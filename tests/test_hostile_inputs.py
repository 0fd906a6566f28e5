"""Issue 25, the third round of hostile input: one regression test per finding.

Each case gives one clear line (exit 2 from the CLI, a ValueError/LimitError from the API) or
the right result, before any work and within a few hundred MB: sizes are refused from the
arguments (limits lowered or raised with ``limits.raised`` where the default would let them
through), never by running into them.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import tracemalloc
from pathlib import Path

import pytest
import torch

import replearn as rl
from replearn import limits
from replearn.cli import main
from replearn.experiments import run_experiment
from replearn.experiments.api import write_report
from replearn.experiments.paths import same_file
from replearn.experiments.spec import SpecError, load_spec, parse_spec
from replearn.experiments.store import Store, StoreError
from replearn.label_transforms import resolve_label_transform
from test_store_faults import fingerprint, listing

SPEC = """
name: NAME
target: TARGET
methods: [{name: synthetic}]
d: D
n: [16, 64]
seeds: 2
n_holdout: 0
n_test: 10
"""


def spec_text(name="g", target="{kind: paper}", d="[4]") -> str:
    return SPEC.replace("NAME", name).replace("TARGET", target).replace("D", d)


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_info:
        code = exit_info.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line(code: int, err: str, *fragments: str) -> None:
    assert code == 2, (code, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


@pytest.fixture
def store(tmp_path) -> Path:
    """A store with one done grid experiment, in tmp_path/data/v.sqlite."""
    db = tmp_path / "data" / "v.sqlite"
    run_experiment(parse_spec(spec_text()), db=db, quiet=True)
    return db


# -- 1: no output overwrites an input ----------------------------------------------------------
def _aliases(store: Path, tmp_path: Path) -> dict[str, Path]:
    """The store named directly, through a symlink, a relative path with .., a hard link."""
    (tmp_path / "links").mkdir(exist_ok=True)
    symlink = tmp_path / "links" / "link.sqlite"
    symlink.symlink_to(store)
    hard = tmp_path / "links" / "hard.sqlite"
    os.link(store, hard)
    relative = Path(os.path.relpath(store.parent / ".." / "data" / store.name))
    return {"direct": store, "symlink": symlink, "relative": relative, "hardlink": hard}


@pytest.mark.parametrize("form", ["direct", "symlink", "relative", "hardlink"])
def test_no_command_writes_over_the_store(store, tmp_path, capsys, monkeypatch, form):
    monkeypatch.chdir(tmp_path / "data")
    target = _aliases(store, tmp_path)[form]
    spec = tmp_path / "s.yaml"
    spec.write_text(spec_text(), encoding="utf-8")
    before = fingerprint(store)
    sidecar = Path(str(target) + "-wal")  # the database's WAL counts as the database
    cases = [
        ["results", "--db", store, "--out", target],
        ["results", "--db", store, "--format", "json", "--out", target],
        ["results", "--db", target, "--out", store],
        ["results", "--db", store, "--out", store.parent / (store.name + "-wal")],
        ["report", "--db", store, "--out", target],
        ["demo", "--spec", spec, "--db", store, "--out", target],
        ["run", target, "--db", store],  # a spec path that is the store: --db would be it
    ]
    if form == "direct":
        cases.append(["results", "--db", store, "--out", sidecar])
    for argv in cases:
        code, _, err = run_cli(capsys, argv)
        assert code == 2, (argv, err)
        assert err.count("\n") == 1, err
        assert fingerprint(store) == before, argv
    with Store(store, readonly=True) as opened:
        assert opened.counts()["g"]["done"] == 4


def test_spec_is_never_the_store(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(spec_text(), encoding="utf-8")
    text = spec.read_text()
    for argv in (["run", spec, "--db", spec], ["demo", "--spec", spec, "--db", spec]):
        code, _, err = run_cli(capsys, argv)
        assert_one_line(code, err, "is the spec")
    assert spec.read_text() == text


def test_a_report_folder_holding_the_store_under_a_report_name_is_refused(store, capsys):
    html = store.parent / "index.html"
    os.replace(store, html)
    before = fingerprint(html)
    code, _, err = run_cli(capsys, ["report", "--db", html, "--out", store.parent])
    assert_one_line(code, err, "holds the results database")
    assert fingerprint(html) == before
    with pytest.raises(ValueError, match="holds the results database"):
        write_report(html, store.parent)


def test_same_file_follows_symlinks_relative_paths_and_hard_links(store, tmp_path):
    for alias in _aliases(store, tmp_path).values():
        assert same_file(alias, store)
    assert not same_file(store, store.parent / "other.sqlite")


# -- 2: streams are lazy; sizes checked before work ------------------------------------------
def test_chunks_of_one_sample_over_the_largest_n_start_at_once():
    stream = rl.DataStream(rl.paper_target(d=4), noise=1.0, seed=0)
    tracemalloc.start()
    try:
        chunks = stream.chunks(n=limits.get("n"), chunk_size=1)  # 10^10 chunks: no list
        X, y = next(chunks)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert X.shape == (1, 4) and peak < 50 * 2**20  # one block drawn, not 10^10 bounds
    expected = stream.get(0, 3)[1]
    assert torch.equal(torch.cat([y, next(chunks)[1], next(chunks)[1]]), expected)


def test_sample_get_and_excess_risk_refuse_sizes_before_work():
    target = rl.paper_target(d=4)
    with pytest.raises(limits.LimitError, match="limit n "):
        rl.sample(target, n=10**12)
    stream = rl.DataStream(target, seed=0)
    with pytest.raises(limits.LimitError, match=r"get\(0, 10000000000\).*needs .* GB"):
        stream.get(0, 10**10)
    with limits.raised(memory_bytes=10**6):
        with pytest.raises(limits.LimitError, match="give a smaller chunk_size"):
            stream.chunks(n=10**6, chunk_size=10**6)
    model = rl.OneStepNetwork(width=4).fit(*rl.sample(target, n=64, seed=0))
    with pytest.raises(limits.LimitError, match="n_test"):
        rl.excess_risk(model, target, n_test=10**12)  # streamed, but time must be bounded
    with limits.raised(n=100):
        with pytest.raises(limits.LimitError, match="n_test"):
            rl.excess_risk(model, target, n_test=101)


# -- 4: every user-controlled count bounded -------------------------------------------------
def test_counts_are_bounded_by_the_steps_limit():
    X, y = rl.sample(rl.paper_target(d=4), n=64, seed=0)
    cases = [
        (
            rl.GiantStepNetwork(width=4, steps=10**9),
            "steps = 1,000,000,000 exceeds the limit steps",
        ),
        (rl.GiantStepNetwork(width=4, head="gd", head_steps=10**12), "head_steps ="),
        (rl.OneStepNetwork(width=4, head="gd", head_steps=10**12), "head_steps ="),
        (rl.FullTraining(width=4, n_steps=10**12, patience=None), "n_steps ="),
        (rl.FullTraining(width=4, epochs=10**12, patience=None), "epochs ="),
        (rl.KernelRidge(max_iter=10**12), "max_iter ="),
    ]
    for model, message in cases:
        with pytest.raises(ValueError, match=message) as error:
            model.fit(X, y)
        assert "REPLEARN_MAX_STEPS" in str(error.value)
    with limits.raised(steps=10):  # epochs × minibatches, before a pass over the data
        with pytest.raises(limits.LimitError, match="epochs × .* minibatches"):
            rl.FullTraining(width=4, epochs=3, batch_size=8, patience=None).fit(X, y)


def test_giant_steps_times_n_is_bounded_by_the_n_limit():
    stream = rl.DataStream(rl.paper_target(d=4), noise=1.0, seed=0)
    with limits.raised(n=1000):
        with pytest.raises(limits.LimitError, match=r"n·steps = 600·2"):
            rl.GiantStepNetwork(width=4, steps=2).fit_stream(stream, n=600, n_holdout=0)


def test_hermite_degree_is_bounded():
    with pytest.raises(limits.LimitError, match="transform_degree = 30"):
        resolve_label_transform("hermite:1000000000")
    with pytest.raises(limits.LimitError, match="transform_degree"):
        resolve_label_transform("hermite:" + "9" * 5000)  # no int() of 5000 digits
    with limits.raised(transform_degree=40):
        assert resolve_label_transform("hermite:35").polynomial_degree == 35


def test_a_spec_with_huge_counts_is_refused_in_one_line():
    text = spec_text().replace(
        "{name: synthetic}", "{name: giant_step, width: 4, head_steps: 1e12}"
    )
    with pytest.raises(SpecError, match="head_steps"):
        parse_spec(text)


# -- 5: spec files size-checked before reading -----------------------------------------------
def test_spec_files_are_checked_before_they_are_read(tmp_path, capsys):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # opening it would block: refused from its stat
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * 2000)
    for path, fragment in (
        ("/dev/zero", "not a regular file"),
        (fifo, "not a regular file"),
        (tmp_path, "is a directory"),
    ):
        code, _, err = run_cli(capsys, ["run", path, "--dry-run"])
        assert_one_line(code, err, fragment)
    code, _, err = run_cli(capsys, ["--raise-limit", "yaml_bytes=1000", "run", big, "--dry-run"])
    assert_one_line(code, err, "2,000 bytes exceed the limit yaml_bytes = 1,000")
    with limits.raised(yaml_bytes=10**6):
        with pytest.raises(SpecError, match="not a regular file"):
            load_spec("/dev/zero")


# -- 6, 14: label transforms never see the caller's labels ----------------------------------
def test_an_in_place_transform_changes_neither_the_head_nor_the_callers_labels():
    target = rl.paper_target(d=6)
    X, y = rl.sample(target, n=2000, noise=1.0, seed=0)
    kept = y.clone()
    in_place = rl.OneStepNetwork(width=20, seed=0, label_transform=lambda t: t.abs_()).fit(X, y)
    assert torch.equal(y, kept)
    plain = rl.OneStepNetwork(width=20, seed=0, label_transform=lambda t: t.abs()).fit(X, y)
    assert torch.equal(in_place.predict(X), plain.predict(X))
    shifted = rl.OneStepNetwork(width=20, seed=0, label_transform=lambda t: t.add_(100)).fit(X, y)
    assert torch.equal(y, kept)
    assert float(shifted.predict(X).abs().mean()) < 10  # the head fits y, not y + 100


def test_a_transform_returning_a_graph_is_one_line():
    weight = torch.ones(1, requires_grad=True)
    with pytest.raises(TypeError, match="requires grad"):
        resolve_label_transform(lambda t: t * weight)


# -- 7, 8: the report draws every store shape the engine writes ------------------------------
SCALING = """
name: never
kind: scaling
target: {kind: paper}
methods:
  - {name: synthetic, exponent: 2.0, scale: 100.0}
d: [4, 8]
seeds: 2
n_holdout: 0
n_test: 20
scaling: {threshold: 0.001, n_start: 1, n_stop: "d^2", log_step: 0.5}
"""


def test_report_draws_zero_energy_targets_and_thresholds_never_reached(tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    zero = spec_text("zero", '{kind: expression, expr: "z1 - z1 + 0*z2", normalize: false}')
    run_experiment(parse_spec(zero), db=db, quiet=True)
    run_experiment(parse_spec(SCALING), db=db, quiet=True)
    code, out, err = run_cli(capsys, ["report", "--db", db, "--out", tmp_path / "report"])
    assert code == 0, err
    names = set(listing(tmp_path / "report"))
    assert {"zero-risk.png", "never-scaling.png", "index.html"} <= names
    assert "could not be drawn" not in (tmp_path / "report" / "index.html").read_text()


def test_one_failing_experiment_does_not_stop_the_others(tmp_path, capsys, monkeypatch):
    from replearn.experiments import api

    db = tmp_path / "r.sqlite"
    for name in ("a", "b"):
        run_experiment(parse_spec(spec_text(name)), db=db, quiet=True)
    real = api.grid_section

    def broken(store, name, out):
        if name == "a":
            raise ZeroDivisionError("division by zero")
        return real(store, name, out)

    monkeypatch.setattr(api, "grid_section", broken)
    code, out, err = run_cli(capsys, ["report", "--db", db, "--out", tmp_path / "report"])
    assert code == 1 and "could not draw a: ZeroDivisionError" in err
    page = (tmp_path / "report" / "index.html").read_text()
    assert "could not be drawn: ZeroDivisionError" in page
    assert "b-risk.png" in listing(tmp_path / "report")


def report_files(db: Path, out: Path, names: list[str]) -> set[str]:
    write_report(db, out, names)
    return set(listing(out)) - {"index.html"}


def test_report_file_names_of_different_experiments_never_collide(tmp_path):
    db = tmp_path / "r.sqlite"
    run_experiment(parse_spec(spec_text("g", d="[4, 6]")), db=db, quiet=True)
    run_experiment(parse_spec(spec_text("g-d4", d="[4]")), db=db, quiet=True)
    run_experiment(parse_spec(spec_text("g-risk", d="[4, 6]")), db=db, quiet=True)
    alone = [report_files(db, tmp_path / name, [name]) for name in ("g", "g-d4", "g-risk")]
    together = report_files(db, tmp_path / "all", ["g", "g-d4", "g-risk"])
    assert sum(map(len, alone)) == len(together) == len(set().union(*alone))


# -- 9, 10: the store's schema version; no in-memory store -----------------------------------
def test_a_newer_schema_is_refused_before_anything_is_written(store, capsys):
    with sqlite3.connect(store) as conn:
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    before = fingerprint(store)
    for readonly in (True, False):
        with pytest.raises(StoreError, match="newer replearn .*schema 2"):
            Store(store, readonly=readonly)
    assert fingerprint(store) == before
    with sqlite3.connect(store) as conn:
        conn.execute("UPDATE meta SET value = 'x1' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="unknown store schema version 'x1'"):
        Store(store, readonly=True)


def test_in_memory_databases_are_refused(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(spec_text(), encoding="utf-8")
    for argv in (
        ["run", spec, "--db", ":memory:", "--executor", "serial"],
        ["status", "--db", ":memory:"],
        ["results", "--db", ":memory:"],
        ["report", "--db", ":memory:", "--out", tmp_path / "r"],
    ):
        code, _, err = run_cli(capsys, argv)
        assert_one_line(code, err, "in-memory")
    assert listing(tmp_path) == ["s.yaml"]


# -- 11: workers capped by cores, runs and memory ---------------------------------------------
def test_workers_are_capped_by_cores_runs_and_memory():
    from replearn.experiments.executors import WORKER_BASE_BYTES, cap_workers
    from replearn.experiments.grid import expand_grid

    configs = expand_grid(parse_spec(spec_text().replace("seeds: 2", "seeds: 4")))  # 8 runs
    workers, why = cap_workers(1000, configs)
    assert workers <= min(8, len(os.sched_getaffinity(0))) and "capped at" in why
    with limits.raised(memory_bytes=2 * WORKER_BASE_BYTES + 1):
        workers, why = cap_workers(8, configs)
    assert workers == min(2, len(os.sched_getaffinity(0)))
    big = [dict(c, method="one_step", params={"width": 2000}) for c in configs]
    with limits.raised(memory_bytes=20 * WORKER_BASE_BYTES):
        workers, why = cap_workers(8, big)  # each needs ~3 × 2000² × 8 B ≈ 96 MB more
    assert workers <= 16 and cap_workers(None, configs)[1] is None


# -- 12: demo --out checked before work --------------------------------------------------------
def test_demo_refuses_an_unusable_out_before_running(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(spec_text(), encoding="utf-8")
    existing = tmp_path / "file.txt"
    existing.write_text("keep")
    db = tmp_path / "never.sqlite"
    code, _, err = run_cli(capsys, ["demo", "--spec", spec, "--db", db, "--out", existing])
    assert_one_line(code, err, "not a directory")
    assert not db.exists() and existing.read_text() == "keep"


# -- 13: YAML base-60 numbers and non-integral seeds -------------------------------------------
def test_sexagesimal_numbers_are_text_not_ninety():
    with pytest.raises(SpecError, match=r"d\[0\]: must be an integer ≥ 1, got '1:30'"):
        parse_spec(spec_text(d="[1:30]"))


@pytest.mark.parametrize(
    "call",
    [
        lambda: rl.paper_target(d=4, seed=1.5),
        lambda: rl.MultiIndexTarget.random(d=4, r=2, degree=2, seed=1.5),
        lambda: rl.sample(rl.paper_target(d=4), n=4, seed=1.5),
        lambda: rl.OneStepNetwork(width=4, seed=1.5).fit(torch.ones(4, 2), torch.ones(4)),
    ],
)
def test_non_integral_seeds_are_refused(call):
    with pytest.raises(ValueError, match="seed must be an integer"):
        call()


# -- 14: messages name the right cause -----------------------------------------------------------
def test_overflow_messages_name_their_cause():
    target = rl.paper_target(d=6)
    X, y = rl.sample(target, n=1000, noise=1.0, seed=0)
    with pytest.raises(ValueError, match="the cause is the first layer") as error:
        rl.OneStepNetwork(width=10, eta1=1e30).fit(X, y)
    assert "eta1" in str(error.value)
    noisy = rl.DataStream(target, noise=1e300, seed=0, dtype=torch.float64)
    with pytest.raises(ValueError, match="the cause is the labels"):
        rl.OneStepNetwork(width=10, dtype="float64").fit_stream(noisy, n=1000, n_holdout=0)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        rl.KernelRidge(kernel=lambda A, B: -(A @ B.T)).fit(X[:300], y[:300])


def test_quadrature_size_error_names_no_missing_option_on_the_cli(capsys):
    from replearn import theory

    big = theory.QuadratureSizeError(11_019_960_576, "18 nodes per coordinate, 18^8", 8)
    assert "n_nodes" in str(big) and "n_nodes" not in big.cause
    argv = ["theory", "--target", "z1+z2+z3+z4+z5+z6+z7+z8", "--label-transform", "hermite:8"]
    code, _, err = run_cli(capsys, argv)
    assert_one_line(code, err, "10^8) needs 100,000,000 points, more than the 20,000,000")
    assert "n_nodes" not in err


def test_a_full_disk_names_the_database(tmp_path):
    with Store(tmp_path / "x.sqlite") as store:
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLITE_FULL on growth
        runs = [(f"r{i}", {"method": "m", "d": 1, "n": 1, "seed": 0, "pad": "x" * 4000})
                for i in range(20)]  # fmt: skip
        with pytest.raises(StoreError, match=r"x\.sqlite: cannot write .* disk .* is full"):
            store.register_experiment("e", "{}", runs)


def test_a_failed_report_write_names_the_file(tmp_path, monkeypatch):
    from replearn.experiments.report import files

    monkeypatch.setattr(files.os, "fdopen", lambda fd, mode: _Full(fd))
    with pytest.raises(OSError) as error:
        files.atomic_write_bytes(tmp_path / "fig.png", b"x")
    assert error.value.filename == str(tmp_path / "fig.png") and error.value.errno == 28
    assert listing(tmp_path) == []


class _Full:
    def __init__(self, fd):
        self.fd = fd

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        os.close(self.fd)

    def write(self, data):
        raise OSError(28, "No space left on device")


def test_results_json_is_strict_json(store, capsys):
    with Store(store) as opened:
        opened.register_experiment("nan", "{}", [("rn", {"method": "m", "d": 4, "n": 8, "seed": 0,
                                                         "target": {"kind": "paper"}, "noise": 1.0,
                                                         "noise_kind": "rademacher", "dtype": "float32",
                                                         "device": "cpu", "n_holdout": 0, "n_test": 2,
                                                         "params": {}})])  # fmt: skip
        run_id, _ = opened.claim_next("nan", "t")
        opened.finish(run_id, "t", {"status": "done", "metrics": {"risk": math.inf, "x": math.nan}})
    code, out, err = run_cli(capsys, ["results", "--db", store, "--format", "json"])
    assert code == 0, err

    def refuse(name):
        raise AssertionError(f"bare {name} in JSON output")

    rows = json.loads(out, parse_constant=refuse)
    nan_row = next(r for r in rows if r["experiment"] == "nan")
    assert nan_row["risk"] is None and nan_row["x"] is None


@pytest.mark.slow
def test_killing_one_worker_does_not_mark_another_workers_run_as_died(tmp_path):
    # A dead worker breaks the whole process pool: every run in flight used to be marked
    # "worker pool broke". Now each of them runs again alone; runs whose own worker lives
    # finish done (here all: the killed run is retried alone and succeeds).
    import signal
    import subprocess
    import sys
    import time

    import psutil

    spec = tmp_path / "k.yaml"
    spec.write_text(spec_text("k").replace("{name: synthetic}", "{name: synthetic, sleep: 3.0}"))
    db = tmp_path / "k.sqlite"
    driver = subprocess.Popen(
        [sys.executable, "-m", "replearn.cli", "run", str(spec), "--db", str(db),
         "--executor", "process", "--workers", "2", "--quiet"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        workers = []
        while time.monotonic() < deadline and len(workers) < 2:
            workers = [
                child
                for child in psutil.Process(driver.pid).children(recursive=True)
                if "resource_tracker" not in " ".join(child.cmdline())
            ]
            time.sleep(0.2)
        assert len(workers) >= 2, "the pool did not start"
        with Store(db, readonly=True) as store:  # both runs claimed before the kill
            while time.monotonic() < deadline and store.counts()["k"]["running"] < 2:
                time.sleep(0.2)
        os.kill(workers[0].pid, signal.SIGKILL)
        _, err = driver.communicate(timeout=300)
    finally:
        driver.kill()
    assert driver.returncode == 0, err
    with Store(db, readonly=True) as store:
        assert store.counts()["k"]["done"] == 4
        assert all(run["error"] is None for run in store.runs("k"))


def test_a_run_whose_own_worker_dies_again_is_marked_died():
    # _run_alone is the second try after a pool broke: a worker that dies there too
    # (here at start-up) is the run's own, so that run — and only it — is "died"
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from replearn.experiments.executors import _run_alone

    def dying_pool(size: int = 1) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(size, mp_context=context, initializer=os._exit, initargs=(1,))

    result = _run_alone(dying_pool, {"method": "synthetic"}, 1)
    assert result["status"] == "failed" and "worker process died" in result["error"]
