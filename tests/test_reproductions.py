"""The reproductions' reduced configurations (scripts/reproduce_*.py, docs/reproductions.md)
against the peer procedures of ``tests/peers.py`` on independent seeds: replearn's runs draw
their data and initialisations with torch generators, the peers' with numpy's, so the two
means are independent estimates of the same expectation.

Tolerance. For a quantity with per-seed values of sd s_r (replearn, k seeds) and s_p (peer,
k seeds), the difference of the two means has sd √((s_r² + s_p²)/k) when both estimate the
same expectation; the checks allow Z = 4 of it (two-sided normal tail 6·10⁻⁵ per quantity;
43 quantities below, so a false failure has probability < 3·10⁻³, and the seeds are
fixed: the outcome is deterministic). The sds are the runs' own sample sds, so the bound
adapts to the seed spread at each size. Power: with replearn's η twice the mapped value (the
½ of the loss forgotten) every test below fails; the test errors and cosines alone miss it
at these sizes, so each test also compares the step's relative size ‖ΔW‖/‖W‖.
"""

import math

import numpy as np
import pytest
import torch

from peers import (
    cui2024_one_step_ridge,
    dandi2023_single_step,
    dandi2023_steps,
    dandi2024_batch_reuse,
)
from replearn.hermite import he
from replearn.learners.giant_step import GiantStepNetwork

F64 = torch.float64
Z = 4.0


def _agree(ours, theirs, what):
    """Means over seeds (axis 0) agree within Z combined standard errors, entry by entry."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    k_r, k_p = ours.shape[0], theirs.shape[0]
    gap = np.abs(ours.mean(0) - theirs.mean(0))
    bound = Z * np.sqrt(ours.var(0, ddof=1) / k_r + theirs.var(0, ddof=1) / k_p)
    assert (gap <= bound).all(), f"{what}: gap {gap} > bound {bound}"


def _relative_step(W1, W0) -> float:
    """‖W¹ − W⁰‖_F/‖W⁰‖_F: the step's scale (the test errors and cosines can miss a factor
    in η, this cannot)."""
    W1, W0 = np.asarray(W1, dtype=np.float64), np.asarray(W0, dtype=np.float64)
    return float(np.linalg.norm(W1 - W0) / np.linalg.norm(W0))


def _orthonormal_rows(rng, r, d):
    return np.linalg.qr(rng.standard_normal((d, r)))[0].T


# -- Dandi et al. 2024, batch reuse --------------------------------------------------------
def _reuse_replearn(D, seed, steps):
    N = 3 * D
    g = torch.Generator().manual_seed(100_000 + seed)  # not the network's stream
    X, X_test = torch.randn(N, D, generator=g, dtype=F64), torch.randn(N, D, generator=g, dtype=F64)

    def teacher(X):
        return torch.tanh(X[:, 0] + he(3, X[:, 1]))

    U = torch.eye(D, dtype=F64)[:2]
    net = GiantStepNetwork(
        width=2, steps=steps, step_size=0.2 * N / (2 * D), weight_decay=0.0, batch="reuse",
        preprocess=False, first_layer="orthogonal", directions=U,
        second_layer=torch.tensor([1.0, -1.0], dtype=F64) / math.sqrt(2), biases="none",
        head="none", diagnostics_target=U, diagnostics_data=(X_test, teacher(X_test)),
        dtype="float64", seed=seed,
    ).fit(X, teacher(X))  # fmt: skip
    records = [net.initial_diagnostics_] + net.history_
    m = np.array([r["direction_overlaps"][0].numpy() for r in records])  # neuron 1 (a > 0)
    return np.column_stack([m, [r["network_risk"] / 2 for r in records]])


def _reuse_peer(D, seed, steps):
    """simulation.py's ``committee``: random teacher frame, W⁰ ⟂ teacher (rows of norm √D)."""
    N, rng = 3 * D, np.random.default_rng(1000 + seed)
    frame = _orthonormal_rows(rng, 4, D) * math.sqrt(D)
    theta, W0 = frame[:2], frame[2:]
    X, X_test = rng.standard_normal((N, D)), rng.standard_normal((N, D))

    def teacher(X):
        h1, h2 = X @ theta[0] / math.sqrt(D), X @ theta[1] / math.sqrt(D)
        return np.tanh(h1 + h2**3 - 3 * h2)

    a = np.array([1.0, -1.0]) / math.sqrt(2)
    out = dandi2024_batch_reuse(
        X, teacher(X), X_test, teacher(X_test), W0, a, theta, 0.2, steps + 1
    )
    return np.column_stack([out["overlaps"][:, 0], out["test_errors"]])


def test_dandi2024_batch_reuse_reduced_matches_the_simulation():
    """D = 100 (theirs 5000), N = 3D, m(t) with both teacher directions and the test error
    Σ½(y − f)²/N at t = 0…6, 10 seeds each."""
    D, steps, k = 100, 6, 10
    ours = np.stack([_reuse_replearn(D, s, steps) for s in range(k)])
    theirs = np.stack([_reuse_peer(D, s, steps) for s in range(k)])
    _agree(ours[:, 1:], theirs[:, 1:], "m₁₁, m₁₂, error at t = 1…6")
    assert (ours[:, -1, 0] > ours[:, 1, 0]).all()  # the overlap grows with the steps


# -- Dandi et al. 2023, one giant step then ridge -------------------------------------------
def _g(z):
    return (z**4 - 6 * z**2 + 3) / 24 + (z**2 - 1) / 2 + z


def _single_step_draw(rng, d, p, n, n_test):
    theta = _orthonormal_rows(rng, 2, d)
    Z, Z_test = rng.standard_normal((n, d)), rng.standard_normal((n_test, d))
    W0 = rng.standard_normal((p, d)) / math.sqrt(d)
    a0 = rng.standard_normal(p) / math.sqrt(p)
    label = lambda Z: (_g(Z @ theta[0]) + _g(Z @ theta[1])) / 2  # noqa: E731
    return Z, label(Z), Z_test, label(Z_test), W0, a0


def _single_step_replearn(d, p, n, n_test, seed):
    """replearn's fitted network, scored as the notebook scores (test set's own A, B)."""
    g = torch.Generator().manual_seed(seed)
    theta = torch.linalg.qr(torch.randn(d, 2, generator=g, dtype=F64))[0].T
    Z, Z_test = (
        torch.randn(n, d, generator=g, dtype=F64),
        torch.randn(n_test, d, generator=g, dtype=F64),
    )
    W0 = torch.randn(p, d, generator=g, dtype=F64) / math.sqrt(d)
    a0 = torch.randn(p, generator=g, dtype=F64) / math.sqrt(p)
    label = lambda Z: (_g(Z @ theta[0]) + _g(Z @ theta[1])) / 2  # noqa: E731
    y, y_test = label(Z), label(Z_test)
    eta_D = 10 * math.sqrt(n * p)
    net = GiantStepNetwork(
        width=p, steps=1, step_size=eta_D / 2, weight_decay=0.0, output_scale="1/sqrt(m)",
        first_layer=W0, second_layer=a0, biases="none", ridge_lambda=2.0 / n, dtype="float64",
    ).fit(Z, y)  # fmt: skip
    network_part = net.predict(Z_test) - net.alpha_ - Z_test @ net.beta_
    A_t, B_t = y_test.mean(), (y_test[:, None] * Z_test).mean(0)
    error = float(((A_t + Z_test @ B_t + network_part - y_test) ** 2).mean())
    return error, _relative_step(net.W_, W0)


@pytest.mark.parametrize("ell", [1.65, 2.0])
def test_dandi2023_single_step_reduced_matches_the_notebook(ell):
    """d = 32, p = 2d (theirs 512, 1024), n = d^ℓ, 8 seeds each: the test error (scored as
    the notebook does) and the step's relative size."""
    d, p, n_test, k = 32, 64, 2000, 8
    n = int(d**ell)
    ours = [_single_step_replearn(d, p, n, n_test, s) for s in range(k)]
    theirs = []
    for s in range(k):
        Z, Y, Z_t, Y_t, W0, a0 = _single_step_draw(np.random.default_rng(1000 + s), d, p, n, n_test)
        out = dandi2023_single_step(Z, Y, Z_t, Y_t, W0, a0, 10 * math.sqrt(n * p), 1.0)
        theirs.append((out["test_error"], _relative_step(out["W1"], W0)))
    _agree(np.array(ours), np.array(theirs), f"test error, step size at ℓ = {ell}")


# -- Dandi et al. 2023, several fresh-batch steps --------------------------------------------
EXAMPLE2 = (lambda z: z + z**2, lambda z: z - z**2)


def _hypercube(signs, p):
    signs = signs.copy()
    signs[:20], signs[20:40] = 1.0, -1.0
    return signs / math.sqrt(p)


def _abs_cosines(cosines):
    """Per step, mean |cos(G_i, θ₁)| and |cos(G_i, θ₂)| over the 40 plotted neurons."""
    return np.abs(cosines[:, :40]).mean(axis=1).reshape(-1)


def test_dandi2023_several_steps_reduced_match_the_notebook():
    """Example 2 (σ₁* = z + z², σ₂* = z − z²), d = n = 160, p = 40, η = 2p, 6 steps, 6 seeds
    each: the mean |cosines| of the plotted neurons' gradient rows with θ₁ and θ₂ per step,
    and the steps' relative sizes."""
    d, p, T, k = 160, 40, 6, 6
    ours, theirs = [], []
    for s in range(k):
        g = torch.Generator().manual_seed(s)
        theta = torch.linalg.qr(torch.randn(d, 2, generator=g, dtype=F64))[0].T
        W0 = torch.randn(p, d, generator=g, dtype=F64) / math.sqrt(d)
        a0 = torch.from_numpy(
            _hypercube(np.sign(torch.randn(p, generator=g, dtype=F64).numpy()), p)
        )
        X = torch.randn(T * d, d, generator=g, dtype=F64)
        y = (EXAMPLE2[0](X @ theta[0]) + EXAMPLE2[1](X @ theta[1])) / 2
        net = GiantStepNetwork(
            width=p, steps=T, step_size=float(p), weight_decay=0.0, preprocess=False,
            output_scale="1/sqrt(m)", first_layer=W0, second_layer=a0, biases="none",
            diagnostics_target=theta, head="none", dtype="float64",
        ).fit(X, y)  # fmt: skip
        cosines = _abs_cosines(np.stack([h["step_cosines"].numpy() for h in net.history_]))
        sizes = [h["step_norm"] / h["weight_norm"] for h in net.history_]  # ‖ΔW‖/‖W^t‖
        ours.append(np.concatenate([cosines, sizes]))

        rng = np.random.default_rng(1000 + s)
        theta = _orthonormal_rows(rng, 2, d)
        W0 = rng.standard_normal((p, d)) / math.sqrt(d)
        a0 = _hypercube(np.sign(rng.standard_normal(p)), p)
        batches = []
        for _ in range(T):
            Zb = rng.standard_normal((d, d))
            batches.append((Zb, (EXAMPLE2[0](Zb @ theta[0]) + EXAMPLE2[1](Zb @ theta[1])) / 2))
        steps = dandi2023_steps(batches, W0, a0, 2.0 * p)
        cos = [
            s["gradient"] @ theta.T / np.linalg.norm(s["gradient"], axis=1)[:, None] for s in steps
        ]
        Ws = [W0] + [s["W"] for s in steps]
        sizes = [_relative_step(Ws[t + 1], Ws[t]) * np.linalg.norm(Ws[t]) / np.linalg.norm(Ws[t + 1])
                 for t in range(T)]  # fmt: skip
        theirs.append(np.concatenate([_abs_cosines(np.stack(cos)), sizes]))
    _agree(np.array(ours), np.array(theirs), "mean |cos θ₁|, |cos θ₂|, ‖ΔW‖/‖W‖ per step")


# -- Cui et al. 2024, one step then ridge on fresh samples ----------------------------------
def test_cui2024_reduced_matches_the_notebook():
    """d = p = 60 (theirs 2000), α₀ = 0.5, η̃ = 1, λ = 0.01, α ∈ {0.6, 2}, 8 seeds each (W⁰ and
    the step's data drawn per seed on both sides): the ridge's test error, the step's size."""
    d, alphas, n_test, k, lam = 60, (0.6, 2.0), 1000, 8, 0.01
    ours, theirs = [], []
    for s in range(k):
        g = torch.Generator().manual_seed(100_000 + s)  # not the network's stream (seed s)

        def draw(n, g=g):
            X = torch.randn(n, d, generator=g, dtype=F64)
            return X, torch.tanh(X[:, 0])

        net = GiantStepNetwork(
            width=d, steps=1, step_size=d / 2, weight_decay=0.0, preprocess=False,
            activation="tanh", output_scale="1/sqrt(m)", first_layer="unit_rows",
            second_layer="constant", biases="none", ridge_lambda=1.0, dtype="float64", seed=s,
        ).fit(*draw(d // 2))  # fmt: skip
        row = []
        for alpha in alphas:
            n = int(alpha * d)
            X, y = draw(n)
            X_test, y_test = draw(n_test)
            model = net.set_params(ridge_lambda=2 * lam / n).transfer(X, y)
            row.append(float(((model.predict(X_test) - y_test) ** 2).mean()))
        ours.append(row + [_relative_step(net.W_, net.initial_network_.W)])

        rng = np.random.default_rng(1000 + s)
        W0 = rng.standard_normal((d, d))
        W0 /= np.linalg.norm(W0, axis=1, keepdims=True)

        def draw_np(n, rng=rng):
            Zs = rng.standard_normal((n, d))
            return Zs, np.tanh(Zs[:, 0])

        Z0, Y0 = draw_np(d // 2)
        sets = [(*draw_np(int(alpha * d)), *draw_np(n_test)) for alpha in alphas]
        out = cui2024_one_step_ridge(Z0, Y0, W0, np.ones(d) / math.sqrt(d), 1.0, sets, lam)
        theirs.append(out["test_errors"] + [_relative_step(out["W1"], W0)])
    _agree(np.array(ours), np.array(theirs), "test error at α = 0.6, 2; the step's size")
