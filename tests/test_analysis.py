"""The sample-complexity finder and the exponent fit, on synthetic risk curves."""

import doctest
import importlib
import math

import numpy as np
import pytest

from replearn.experiments.analysis import (
    LogGrid,
    aggregate,
    bootstrap_exponent,
    crossing,
    find_threshold,
    fit_exponent,
)


def _curve(n_true):
    """A decreasing synthetic risk: ε = 0.1 is crossed exactly at n_true."""
    return lambda n: 0.1 * (n_true / n) ** 0.5


@pytest.mark.parametrize("n_true", [1.0, 37.0, 1000.0, 5e4, 2.9e5])
@pytest.mark.parametrize("start", [None, 10, 10**5])
def test_finder_recovers_threshold_to_one_grid_step(n_true, start):
    grid = LogGrid(1, 10**6, steps_per_octave=4)
    calls = []

    def risk(n):
        calls.append(n)
        return _curve(n_true)(n)

    result = find_threshold(risk, 0.1, grid, start=start)
    expected = min(n for n in grid.values if _curve(n_true)(n) <= 0.1)
    assert result.n_star == expected
    assert len(calls) == len(set(calls))  # never the same n twice
    assert len(calls) <= 2 * math.ceil(math.log2(len(grid.values))) + 2  # O(log K), not K


def test_finder_reports_not_reached():
    grid = LogGrid(10, 1000)
    result = find_threshold(lambda n: 1.0, 0.1, grid)
    assert not result.reached and result.n_star is None
    assert max(result.evaluated) == grid.values[-1]


def test_finder_reuses_stored_runs():
    grid = LogGrid(1, 10**5, steps_per_octave=2)
    first = find_threshold(_curve(3000.0), 0.1, grid, start=100)
    calls = []

    def risk(n):
        calls.append(n)
        return _curve(3000.0)(n)

    again = find_threshold(risk, 0.1, grid, start=100, known=first.evaluated)
    assert again.n_star == first.n_star and calls == []


def test_crossing_interpolates_in_log_n():
    assert crossing({10: 0.4, 1000: 0.0}, 0.2) == pytest.approx(100.0)
    assert crossing({10: 0.05}, 0.1) == 10.0
    assert crossing({10: 0.5, 100: 0.3}, 0.1) is None


def test_exponent_fit_and_bootstrap_ci():
    ds = [8, 16, 32, 64]
    slope, intercept = fit_exponent(ds, [3 * d**2 for d in ds])
    assert slope == pytest.approx(2.0) and math.exp(intercept) == pytest.approx(3.0)
    rng = np.random.default_rng(0)
    risks = {}
    for d in ds:
        grid = [int(round(d**2 * 2 ** (k / 2))) for k in range(-6, 8)]
        risks[d] = {
            n: list(0.1 * (4 * d**2 / n) ** 0.5 * (1 + 0.05 * rng.standard_normal(5))) for n in grid
        }
    fit = bootstrap_exponent(risks, 0.1, n_boot=300)
    low, high = fit["ci"]
    assert low < 2.0 < high and high - low < 0.3
    assert fit["slope"] == pytest.approx(2.0, abs=0.1)


def test_aggregate_mean_sd():
    rows = aggregate(
        [
            {"m": "a", "n": 1, "risk": 1.0},
            {"m": "a", "n": 1, "risk": 3.0},
            {"m": "b", "n": 1, "risk": None},
        ],
        by=["m", "n"],
    )
    assert rows == [
        {"m": "a", "n": 1, "mean": 2.0, "sd": math.sqrt(2.0), "min": 1.0, "max": 3.0, "count": 2}
    ]


@pytest.mark.parametrize(
    "module",
    [
        "replearn.experiments.analysis",
        "replearn.experiments.grid",
        "replearn.experiments.spec",
        "replearn.experiments.api",
    ],
)
def test_engine_docstring_examples(module, tmp_path, monkeypatch):
    """The ``Examples`` sections of the public engine functions run and give what they show."""
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
