"""rl.results: the store's runs as a DataFrame, with the store's own numbers."""

from __future__ import annotations

import json
import math
import sqlite3

import pytest

import replearn as rl
from replearn.cli import main
from replearn.experiments.api import run_experiment
from replearn.experiments.frames import run_rows, step_table
from replearn.experiments.spec import parse_spec

pd = pytest.importorskip("pandas")

SPEC = """
name: frames
target: {kind: paper}
methods:
  - {name: synthetic, fail: [false, true]}
  - {name: giant_step, width: 8, steps: 2, batch: reuse, output_scale: 1/m, step_size: dandi}
d: [6]
n: [40, 80]
seeds: 2
n_holdout: 0
n_test: 50
"""


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("frames") / "r.sqlite"
    run_experiment(parse_spec(SPEC), db=path, quiet=True)
    return path


def test_one_row_per_run_with_the_stores_numbers(db):
    frame = rl.results(db)
    with sqlite3.connect(db) as conn:
        stored = {
            run_id: (status, json.loads(metrics) if metrics else None, json.loads(config))
            for run_id, status, metrics, config in conn.execute(
                "SELECT run_id, status, metrics, config FROM runs"
            )
        }
    assert len(frame) == len(stored) == 2 * 2 * (2 + 1)  # n × seeds × (2 synthetic + 1 giant)
    assert set(frame.run_id) == set(stored)
    for _, row in frame.iterrows():
        status, metrics, config = stored[row.run_id]
        assert row.status == status and row.n == config["n"] and row.seed == config["seed"]
        for name, value in config["params"].items():  # every hyper-parameter a column
            assert row[f"param_{name}"] == value
        if status == "done":
            assert row.risk == metrics["risk"]  # the same float, not a rounded copy
        else:
            assert math.isnan(row.risk) and "asked to fail" in row.error
    assert frame.n.dtype == "int64" and frame.risk.dtype == "float64"


def test_filters_and_one_line_errors(db):
    assert (rl.results(db, status="failed").status == "failed").all()
    assert len(rl.results(db, experiment="frames")) == len(rl.results(db))
    with pytest.raises(ValueError, match="no experiment 'nope'; known: frames"):
        rl.results(db, experiment="nope")
    with pytest.raises(ValueError, match="status: must be one of"):
        rl.results(db, status="finished")
    with pytest.raises(ValueError, match="no such"):
        rl.results(db.parent / "missing.sqlite")


def test_history_nested_and_as_a_step_table(db):
    frame = rl.results(db, status="done")
    giant = frame[frame.method == "giant_step"]
    assert all(isinstance(h, list) and len(h) == 2 for h in giant.history)
    steps = step_table(frame)
    assert len(steps) == 2 * len(giant) and set(steps.step) == {1, 2}
    first = giant.iloc[0]
    rows = steps[steps.run_id == first.run_id].sort_values("step")
    assert list(rows.alignment) == [entry["alignment"] for entry in first.history]


def test_report_and_export_share_the_rows(db, capsys):
    assert main(["results", "--db", str(db), "--format", "json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported == json.loads(json.dumps(run_rows(db), default=str))


def test_parquet_export_is_the_frame(db, tmp_path, capsys):
    out = tmp_path / "runs.parquet"
    code = main(["results", "--db", str(db), "--format", "parquet", "--out", str(out)])
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        assert code == 2 and "replearn[parquet]" in capsys.readouterr().err
        pytest.skip("pyarrow is not installed (pip install 'replearn[parquet]')")
    assert code == 0
    back, frame = pd.read_parquet(out), rl.results(db)
    assert list(back.columns) == list(frame.columns)
    assert back.risk.equals(frame.risk) and list(back.run_id) == list(frame.run_id)
    history = back.history[frame.method == "giant_step"].map(json.loads)
    assert list(history) == list(frame.history[frame.method == "giant_step"])


def test_flat_rows_takes_a_store(db):
    from replearn.experiments import Store, flat_rows

    with Store(db, readonly=True) as store:
        assert flat_rows(store) == run_rows(db)
