"""The shipped reproduction specs (configs/reproduce/) at reduced size — the same spec with
smaller d and width at the published ratios, fewer seeds — run through the engine (``run
experiment``, the store) against the peer procedures of ``tests/peers.py`` on independent
seeds (numpy's generators there, the engine's streams here).

Tolerance, as in tests/test_reproductions.py: the two means over k seeds of a quantity with
per-seed sds s_r (engine) and s_p (peer) differ by a normal variable of sd √(s_r²/k + s_p²/k)
when both estimate the same expectation; the checks allow Z = 4 of it (two-sided tail
6·10⁻⁵ per quantity, 6 quantities: a false failure has probability < 4·10⁻⁴; the seeds are
fixed, so the outcome is deterministic). Each test also compares the step's size
‖W¹ − W⁰‖_F/√p (``history[0].step_norm``), which a factor 2 in η (the ½ of the loss) moves
far outside the bound.
"""

import math

import numpy as np
import pytest

from peers import cui2024_one_step_ridge, dandi2023_single_step, relu
from replearn.experiments import run_experiment
from replearn.experiments.catalog import shipped_configs
from replearn.experiments.frames import run_rows
from replearn.experiments.spec import validate_spec
from replearn.experiments.yaml_strict import load_yaml

Z = 4.0


def _reduced(name: str, **changes) -> dict:
    data = load_yaml(shipped_configs()[name].read_text())
    data.update(changes)
    return data


def _engine(data: dict, tmp_path) -> dict:
    """{n: array (seeds, 2) of (risk, ‖W¹ − W⁰‖_F/√p)} from the engine's runs of the spec."""
    spec = validate_spec(data)
    db = tmp_path / "r.sqlite"
    run_experiment(spec, db=db, quiet=True)
    rows = run_rows(db, spec.name, "done")
    assert len(rows) == len(spec.seeds) * len(spec.n)
    out: dict = {}
    for row in sorted(rows, key=lambda r: r["seed"]):
        p = row["param_width"]
        out.setdefault(row["n"], []).append(
            (row["risk"], row["history"][0]["step_norm"] / math.sqrt(p))
        )
    return {n: np.array(v) for n, v in out.items()}


def _agree(ours, theirs, what):
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    gap = np.abs(ours.mean(0) - theirs.mean(0))
    bound = Z * np.sqrt(ours.var(0, ddof=1) / len(ours) + theirs.var(0, ddof=1) / len(theirs))
    assert (gap <= bound).all(), f"{what}: gap {gap} > bound {bound}"


def _g(z):
    return (z**4 - 6 * z**2 + 3) / 24 + (z**2 - 1) / 2 + z


@pytest.mark.slow
def test_dandi2023_single_step_spec_reduced_matches_the_notebook(tmp_path):
    """reproduce/dandi2023-single-step at d = 32, p = 2d, n = int(d^1.65), 8 seeds: the test
    MSE of replearn's predictor (the training α, β added back, as the engine scores it) and
    the step's size, against the notebook's procedure scored the same way."""
    d, p, k, n_test = 32, 64, 8, 2000
    n = int(d**1.65)
    data = _reduced(
        "reproduce/dandi2023-single-step", d=[d], n=[n], seeds=k, n_test=n_test, dtype="float64"
    )
    data["methods"] = [dict(data["methods"][0], width=p)]  # the giant step only
    ours = _engine(data, tmp_path)[n]
    theirs = []
    for s in range(k):
        rng = np.random.default_rng(2000 + s)
        theta = np.linalg.qr(rng.standard_normal((d, 2)))[0].T
        label = lambda Z, theta=theta: (_g(Z @ theta[0]) + _g(Z @ theta[1])) / 2  # noqa: E731
        Zs, Z_test = rng.standard_normal((n, d)), rng.standard_normal((n_test, d))
        W0 = rng.standard_normal((p, d)) / math.sqrt(d)
        a0 = rng.standard_normal(p) / math.sqrt(p)
        Y, Y_test = label(Zs), label(Z_test)
        out = dandi2023_single_step(Zs, Y, Z_test, Y_test, W0, a0, 10 * math.sqrt(n * p), 1.0)
        A, B = Y.mean(), (Y[:, None] * Zs).mean(0)  # the training α, β, as replearn predicts
        prediction = A + Z_test @ B + relu(Z_test @ out["W1"].T) @ out["ridge"] / math.sqrt(p)
        step = np.linalg.norm(out["W1"] - W0) / math.sqrt(p)
        theirs.append((float(np.mean((prediction - Y_test) ** 2)), step))
    _agree(ours, theirs, "test MSE, ‖W¹ − W⁰‖/√p")


@pytest.mark.slow
def test_cui2024_spec_reduced_matches_the_notebook(tmp_path):
    """reproduce/cui2024 at d = p = 60, α0 = 0.5 (step_samples "0.5*d"), α ∈ {0.6, 2},
    8 seeds: the ridge's test MSE at each α and the step's size."""
    d, alphas, k, n_test, lam = 60, (0.6, 2.0), 8, 1000, 0.01
    ns = [int(alpha * d) for alpha in alphas]
    data = _reduced("reproduce/cui2024", d=[d], n=ns, seeds=k, n_test=n_test, dtype="float64")
    data["methods"] = [dict(data["methods"][0], width=d)]
    engine = _engine(data, tmp_path)
    ours = np.column_stack([engine[n][:, 0] for n in ns] + [engine[ns[0]][:, 1]])
    # the step is the seed's, shared by its α: the same size in both runs of a seed
    assert np.array_equal(engine[ns[0]][:, 1], engine[ns[1]][:, 1])
    theirs = []
    for s in range(k):
        rng = np.random.default_rng(3000 + s)
        W0 = rng.standard_normal((d, d))
        W0 /= np.linalg.norm(W0, axis=1, keepdims=True)

        def draw(n, rng=rng):
            Zs = rng.standard_normal((n, d))
            return Zs, np.tanh(Zs[:, 0])

        Z0, Y0 = draw(d // 2)
        sets = [(*draw(n), *draw(n_test)) for n in ns]
        out = cui2024_one_step_ridge(Z0, Y0, W0, np.ones(d) / math.sqrt(d), 1.0, sets, lam)
        theirs.append(out["test_errors"] + [np.linalg.norm(out["W1"] - W0) / math.sqrt(d)])
    _agree(ours, theirs, "test MSE at α = 0.6, 2; ‖W¹ − W⁰‖/√p")
