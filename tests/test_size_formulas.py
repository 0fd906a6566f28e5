"""Learner parameters written as formulas of the run's sizes (``replearn.formula``), and
Cui et al.'s protocol (``step_samples``: the step on its own n₀ samples, the head on fresh
ones): each equals the fit with the numbers written out, bit for bit."""

import math

import pytest
import torch

import replearn as rl
from replearn.experiments.spec import SpecError, parse_spec
from replearn.formula import check_formula, evaluate_formula

F64 = torch.float64


def _data(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=F64)
    return X, torch.tanh(X[:, 0]) + 0.5 * (X[:, 1] ** 2 - 1)


def _dandi(**kw):
    kw = {"steps": 1, **kw}
    return rl.GiantStepNetwork(
        width=16, weight_decay=0.0, output_scale="1/sqrt(m)", second_layer="gaussian",
        biases="none", dtype="float64", seed=3, **kw,
    )  # fmt: skip


def test_formula_step_size_and_lambda_equal_the_numbers():
    d, n, m = 8, 200, 16
    X, y = _data(n, d, 0)
    by_formula = _dandi(step_size="5*sqrt(n*m)", ridge_lambda="2/n").fit(X, y)
    by_number = _dandi(step_size=5 * math.sqrt(n * m), ridge_lambda=2 / n).fit(X, y)
    assert by_formula.step_sizes_ == [5 * math.sqrt(n * m)]
    assert by_formula.ridge_lambda_ == 2 / n
    assert torch.equal(by_formula.W_, by_number.W_) and torch.equal(by_formula.a_, by_number.a_)
    assert torch.equal(by_formula.predict(X), by_number.predict(X))
    # transfer: λ is evaluated at the new data's n
    X2, y2 = _data(50, d, 1)
    assert by_formula.transfer(X2, y2).ridge_lambda_ == 2 / 50


def test_formula_per_step_list_and_batch_size():
    X, y = _data(300, 8, 0)
    net = _dandi(steps=3, step_size=["sqrt(n)", 2.0, "n/10"], ridge_lambda=1e-3).fit(X, y)
    assert net.step_sizes_ == [math.sqrt(100), 2.0, 10.0]  # fresh batches of n = 300/3


def test_fresh_head_equals_the_hand_split_fit():
    d, n0, n = 8, 40, 120
    X, y = _data(n0 + n, d, 0)
    cui = dict(width=16, steps=1, step_size=4.0, weight_decay=0.0, preprocess=False,
               activation="tanh", output_scale="1/sqrt(m)", first_layer="unit_rows",
               second_layer="constant", biases="none", ridge_lambda="0.02/n",
               dtype="float64", seed=1)  # fmt: skip
    split = rl.GiantStepNetwork(step_samples="5*d", **cui).fit(X, y)
    by_hand = rl.GiantStepNetwork(**cui).fit(X[:n0], y[:n0]).transfer(X[n0:], y[n0:])
    assert torch.equal(split.W_, by_hand.W_) and torch.equal(split.a_, by_hand.a_)
    assert split.ridge_lambda_ == 0.02 / n == by_hand.ridge_lambda_
    assert torch.equal(split.predict(X), by_hand.predict(X))
    assert split.n_samples_ == n0 + n
    # the stream gives the same split: steps on samples 0…n0−1, head on n0…n0+n−1
    source = rl.DataStream(rl.paper_target(d=d, seed=0), noise=0.0, seed=5, dtype=F64)
    Xs, ys = source.get(0, n0 + n)
    streamed = rl.GiantStepNetwork(step_samples=n0, **cui).fit_stream(source, n=n, n_holdout=0)
    assert torch.allclose(streamed.a_, rl.GiantStepNetwork(step_samples=n0, **cui).fit(Xs, ys).a_)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"step_size": "5*sqrt(n*p)"}, "step_size must be a number > 0, 'sqrt_d', 'dandi'"),
        ({"step_size": "-n"}, "step_size = '-n' gives η = -200"),
        ({"ridge_lambda": "2/p"}, "ridge_lambda must be 'auto', a number ≥ 0 or a formula"),
        ({"step_samples": "n/2"}, "step_samples must be None, an integer ≥ 1 or a formula in d, m"),
        ({"step_samples": 300}, "step_samples = 300 uses 300 rows for the steps"),
    ],
)  # fmt: skip
def test_formula_errors_are_one_line(params, message):
    X, y = _data(200, 8, 0)
    with pytest.raises(ValueError) as info:
        _dandi(**{"step_size": 1.0, **params}).fit(X, y)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_formulas_in_a_spec_and_unknown_names():
    spec = parse_spec(
        "name: f\ntarget: {kind: paper}\nd: [8]\nn: [64]\n"
        "methods: [{name: giant_step, width: 8, step_size: '5*sqrt(n*m)', ridge_lambda: '2/n',"
        " step_samples: '0.5*d'}]\n"
    )
    assert spec.methods[0].params["step_size"] == "5*sqrt(n*m)"
    with pytest.raises(SpecError, match=r"methods\[0\].step_size: must be .*unknown name p"):
        parse_spec(
            "name: f\ntarget: {kind: paper}\nd: [8]\nn: [64]\n"
            "methods: [{name: giant_step, width: 8, step_size: '5*sqrt(n*p)'}]\n"
        )
    assert check_formula("sqrt(n) ^ 2", ("n",)) == "sqrt(n) ^ 2"
    assert evaluate_formula("2^3", {}) == 8.0
    for bad in ("__import__('os')", "n.real", "[n]", "n if d else m", "sqrt(n, 2)", "True"):
        with pytest.raises(ValueError):
            evaluate_formula(bad, {"n": 1, "d": 1, "m": 1})
