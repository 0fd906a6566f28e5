"""Progress bars: one setting, off in tests and logs by default, labelled passes, no nesting,
and the same numbers with or without bars."""

from __future__ import annotations

import pytest
import torch

import replearn as rl
from replearn import progress


@pytest.fixture(autouse=True)
def reset_setting():
    yield
    progress._global[0] = None


def test_auto_is_off_under_pytest_and_without_a_terminal(monkeypatch, capsys):
    monkeypatch.delenv(progress.ENV, raising=False)
    assert progress.enabled() is False  # PYTEST_CURRENT_TEST is set, stderr is captured
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    monkeypatch.delenv("CI", raising=False)
    assert progress.enabled() is False  # capsys: standard error is not a terminal


@pytest.mark.parametrize(
    "value, expected", [("1", True), ("on", True), ("0", False), ("off", False)]
)
def test_environment_variable(value, expected, monkeypatch):
    monkeypatch.setenv(progress.ENV, value)
    assert progress.enabled() is expected


def test_set_progress_wins_over_the_environment_and_bad_values_are_one_line(monkeypatch):
    monkeypatch.setenv(progress.ENV, "1")
    rl.set_progress(False)
    assert progress.enabled() is False
    with progress.progress_setting(True):
        assert progress.enabled() is True
    assert progress.enabled() is False
    with pytest.raises(ValueError, match=r"^set_progress: must be True, False or 'auto'"):
        rl.set_progress("sometimes")
    progress._global[0] = None  # not set: the environment decides
    monkeypatch.setenv(progress.ENV, "loud")
    with pytest.raises(ValueError, match=r"^REPLEARN_PROGRESS: must be True, False or 'auto'"):
        progress.enabled()


def _fit(n=6000):
    target = rl.paper_target(d=6, seed=0)
    stream = rl.DataStream(target, noise=1.0, seed=0)
    model = rl.OneStepNetwork(width=16, seed=0, chunk_size=1000)
    return model.fit_stream(stream, n=n, n_holdout=2000), target


def test_bars_name_the_learner_and_the_pass_and_change_no_number(capsys):
    rl.set_progress(False)
    quiet, target = _fit()
    assert capsys.readouterr().err == ""
    rl.set_progress(True)
    shown, _ = _fit()
    err = capsys.readouterr().err
    for label in ("OneStepNetwork › α, β pass", "OneStepNetwork › first-layer step",
                  "OneStepNetwork › Gram pass", "OneStepNetwork › holdout pass"):  # fmt: skip
        assert label in err
    assert "/6.00k" in err and "sample/s" in err  # the pass's total and its rate
    X = torch.randn(50, 6, dtype=torch.float64)
    assert torch.equal(quiet.predict(X), shown.predict(X))


def test_bars_do_not_nest(capsys):
    rl.set_progress(True)
    with progress.bar(3, "outer") as outer:
        assert list(progress.steps(range(4), "inner")) == [0, 1, 2, 3]
        outer.update(3)
    err = capsys.readouterr().err
    assert "outer" in err and "inner" not in err
    assert list(progress.steps(range(2), "after")) == [0, 1]  # the outer bar is gone
    assert "after" in capsys.readouterr().err


def test_the_engine_runs_show_no_inner_bars(capsys):
    from replearn.experiments import expand_grid, parse_spec
    from replearn.experiments.executors import execute_run

    spec = parse_spec("name: p\ntarget: {kind: paper}\nmethods: [{name: one_step, width: 8}]\n"
                      "d: [4]\nn: [400]\nn_holdout: 100\nn_test: 100\n")  # fmt: skip
    rl.set_progress(True)
    assert execute_run(expand_grid(spec)[0])["status"] == "done"
    assert "pass" not in capsys.readouterr().err


def test_one_long_call_shows_its_elapsed_time(capsys):
    import time

    rl.set_progress(True)
    with progress.stage("KernelRidge"), progress.working("eigendecomposition (n = 9)"):
        time.sleep(1.6)  # the line refreshes every 0.5 s
    err = capsys.readouterr().err
    assert "KernelRidge › eigendecomposition (n = 9): 00:01" in err
    rl.set_progress(False)
    with progress.working("silent"):
        pass
    assert capsys.readouterr().err == ""
