"""RunOptions: the options that travel from ``replearn run`` to the executors, as one object."""

from __future__ import annotations

import pytest

from replearn.cli import main
from replearn.experiments import api
from replearn.experiments.executors import RunOptions
from replearn.experiments.spec import parse_spec

SPEC = """
name: opts
target: {kind: paper}
methods: [{name: synthetic}]
d: [4]
n: [16, 64]
seeds: 2
n_holdout: 0
n_test: 10
"""


def test_fields_and_defaults():
    options = RunOptions()
    assert (options.executor, options.workers, options.threads, options.quiet) == (
        "serial", None, None, False
    )  # fmt: skip
    changed = options.with_(workers=3, quiet=True)
    assert (changed.workers, changed.quiet, options.workers) == (3, True, None)
    assert RunOptions.of(None, db="x.sqlite").db == "x.sqlite"
    assert RunOptions.of(changed, threads=2) == changed.with_(threads=2)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"executor": "gpu"}, "executor must be one of serial, process, ray, got 'gpu'"),
        ({"workers": 0}, "workers must be ≥ 1, got 0"),
        ({"threads": 1.5}, "threads must be ≥ 1, got 1.5"),
        ({"workers": True}, "workers must be ≥ 1, got True"),
        ({"lease_seconds": 0}, "lease_seconds must be > 0, got 0"),
    ],
)
def test_bad_options_are_one_line(fields, message):
    with pytest.raises(ValueError, match=message):
        RunOptions(**fields)


def test_run_experiment_takes_the_object_or_its_fields(tmp_path):
    spec = parse_spec(SPEC)
    first = api.run_experiment(spec, RunOptions(db=tmp_path / "a.sqlite", quiet=True))
    again = api.run_experiment(spec, db=tmp_path / "a.sqlite", quiet=True)
    assert (first.executed, again.executed, first.ok) == (4, 0, True)
    # fields given next to an object change it
    other = api.run_experiment(spec, RunOptions(db=tmp_path / "a.sqlite"), db=tmp_path / "b.sqlite",
                               quiet=True)  # fmt: skip
    assert other.executed == 4 and other.db == str(tmp_path / "b.sqlite")


def test_the_cli_passes_one_object(tmp_path, monkeypatch):
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    seen, real_run = [], api.run_experiment

    def fake_run(spec, options=None, **fields):
        seen.append((options, fields))
        return real_run(spec, options.with_(executor="serial"))

    monkeypatch.setattr(api, "run_experiment", fake_run)
    db = tmp_path / "r.sqlite"
    argv = ["run", str(spec), "--db", str(db), "--workers", "2", "--threads", "1", "--quiet"]
    assert main(argv) == 0
    ((options, fields),) = seen
    assert fields == {}
    assert options == RunOptions(db=db, executor="process", workers=2, threads=1,
                                 retry_failed=options.retry_failed, quiet=True)  # fmt: skip


def test_the_cli_offers_every_executor():
    """An executor is one entry of ``EXECUTORS``; the CLI's --executor choices list them."""
    import argparse

    from replearn.cli import build_parser
    from replearn.experiments.executors import EXECUTORS

    run = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ).choices["run"]
    executor = next(a for a in run._actions if a.dest == "executor")
    assert tuple(executor.choices) == tuple(EXECUTORS)
