"""replearn's GiantStepNetwork against the field's published procedures (``tests/peers.py``),
given the same data and the same initialisation, in float64: W after every step, the ridge
weights and the predictions agree to rounding.

The parametrisations map as follows (``/work``'s notes, the peers' docstrings):

- Dandi et al. 2023 (one and several steps): f = σ(XWᵀ)a/√p, update W + η_D·Gᵀ with G minus
  the gradient of the ½-mean loss. Ours: f = c·aᵀσ(Wx), c = 1/√p (``output_scale="1/sqrt(m)"``),
  loss (1/n)Σ(f − s)² (twice theirs), so η = η_D/2; no weight decay (W⁰ kept), no biases.
  Their ridge min ‖y − Xw/√p‖² + λ_D‖w‖² is ours (1/n)‖Φa − r‖² + (λ/2)‖a‖² with
  λ = 2λ_D/n.
- Cui et al. 2024: the same network with σ = tanh, a = 1/√p, unit rows, W¹ = W⁰ + η̃·p·G:
  η = η̃·p/2, λ = 2λ_C/n; the ridge on fresh samples is ``transfer``.
- Dandi et al. 2024: f = Σ_k a_k ReLU(w_k·x/√D) with rows of norm √D and the summed loss
  Σ½(y − f)², lr. Ours: unit rows w/√D, c = 1, so Δ(w/√D) = lr·Σ r a σ′ x/D and
  η = lr·N/(2D); overlaps m = W W*ᵀ/D are ours (w/√D)·θ.

What replearn does not do as they do: the single-step notebook predicts the test labels with
the test set's own A_test = mean y_test, B_test = mean y_test·x (the test labels enter their
prediction); replearn's predictor uses the training batch's α, β. The tests compare the
predictions with the training α, β exactly and bound the test-error difference separately.
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
    relu,
)
from replearn.learners.giant_step import GiantStepNetwork

F64 = torch.float64
TOL = 1e-10  # float64: only summation orders differ (≈ n·ε ≈ 1e-13 relative)


def _relative(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _g(z):
    """g = He₁ + He₂/2 + He₄/24 (single_step.ipynb cell 3, not normalised)."""
    return (z**4 - 6 * z**2 + 3) / 24 + (z**2 - 1) / 2 + z


def _single_step_problem(d=12, p=16, n=300, n_test=500, seed=0):
    rng = np.random.default_rng(seed)
    theta = np.linalg.qr(rng.standard_normal((d, 2)))[0].T  # θ₁ ⟂ θ₂, unit
    Z, Z_test = rng.standard_normal((n, d)), rng.standard_normal((n_test, d))

    def label(Z):
        return (_g(Z @ theta[0]) + _g(Z @ theta[1])) / 2

    W0 = rng.standard_normal((p, d)) / math.sqrt(d)
    a0 = rng.standard_normal(p) / math.sqrt(p)
    return Z, label(Z), Z_test, label(Z_test), W0, a0


def _dandi2023_learner(W0, a0, eta_D, steps=1, preprocess=True, ridge_lambda=1e-3):
    return GiantStepNetwork(
        width=W0.shape[0], steps=steps, step_size=eta_D / 2, weight_decay=0.0,
        preprocess=preprocess, output_scale="1/sqrt(m)", first_layer=torch.from_numpy(W0),
        second_layer=torch.from_numpy(a0), biases="none", ridge_lambda=ridge_lambda,
        later_steps="gradient", dtype="float64", chunk_size=97,
    )  # fmt: skip


def test_dandi2023_single_step_matches_the_notebook():
    """W¹, the ridge weights and the predictions (training α, β) agree to rounding; the
    notebook's test error (test α, β) differs from ours by the α/β estimation gap only."""
    Z, Y, Z_test, Y_test, W0, a0 = _single_step_problem()
    n, p = Z.shape[0], W0.shape[0]
    eta_D, lam_D = 10 * math.sqrt(n * p), 1.0  # cell 6: η = 10·√n·√p, λ = 1
    peer = dandi2023_single_step(Z, Y, Z_test, Y_test, W0, a0, eta_D, lam_D)
    net = _dandi2023_learner(W0, a0, eta_D, ridge_lambda=2 * lam_D / n)
    net.fit(torch.from_numpy(Z), torch.from_numpy(Y))
    assert _relative(net.W_.numpy(), peer["W1"]) < TOL
    assert _relative(net.a_.numpy(), peer["ridge"]) < TOL
    # the peer's predictor with the training A, B: ours exactly
    A, B = Y.mean(), (Y[:, None] * Z).mean(axis=0)
    ours = net.predict(torch.from_numpy(Z_test)).numpy()
    theirs = A + Z_test @ B + relu(Z_test @ peer["W1"].T) @ peer["ridge"] / math.sqrt(p)
    assert _relative(ours, theirs) < TOL
    # their test error with the test set's A_test, B_test: the shift Δ = (A_test − A) +
    # x·(B_test − B) has E Δ² = (A_test − A)² + ‖B_test − B‖², which bounds the gap
    # |√err_ours − √err_theirs| ≤ √(mean Δ²) (triangle inequality in L²(test))
    A_t, B_t = Y_test.mean(), (Y_test[:, None] * Z_test).mean(axis=0)
    shift = np.sqrt(np.mean(((A_t - A) + Z_test @ (B_t - B)) ** 2))
    err_ours = float(np.mean((ours - Y_test) ** 2))
    assert abs(math.sqrt(err_ours) - math.sqrt(peer["test_error"])) <= shift * (1 + 1e-9)


def _hypercube_a0(p):
    """multiple_steps.ipynb's 'hypercube' a⁰: 20 × +1, 20 × −1, then random signs, all /√p."""
    signs = np.where(np.random.default_rng(5).standard_normal(p) > 0, 1.0, -1.0)
    signs[:20], signs[20:40] = 1.0, -1.0
    return signs / math.sqrt(p)


@pytest.mark.parametrize("example", [1, 2])
def test_dandi2023_several_fresh_steps_match_the_notebook(example):
    """Every step's W and the cosines of its gradient rows G_i with θ₁, θ₂ (the notebook's
    scatter) agree to rounding."""
    d, p, n, T = 16, 48, 64, 4  # n = d as there (smaller), η = 2p
    rng = np.random.default_rng(example)
    theta = np.linalg.qr(rng.standard_normal((d, 2)))[0].T
    s1, s2 = {1: (lambda z: 4 * z + z**2, lambda z: z),
              2: (lambda z: z + z**2, lambda z: z - z**2)}[example]  # fmt: skip
    Zs = rng.standard_normal((T * n, d))
    Ys = (s1(Zs @ theta[0]) + s2(Zs @ theta[1])) / 2
    W0, a0, eta_D = rng.standard_normal((p, d)) / math.sqrt(d), _hypercube_a0(p), 2.0 * p
    batches = [(Zs[t * n : (t + 1) * n], Ys[t * n : (t + 1) * n]) for t in range(T)]
    peer = dandi2023_steps(batches, W0, a0, eta_D)
    U = torch.from_numpy(theta)
    for t in range(1, T + 1):  # W after t steps: the same stream's first t batches
        net = _dandi2023_learner(W0, a0, eta_D, steps=t, preprocess=False)
        net.set_params(diagnostics_target=U).fit(
            torch.from_numpy(Zs[: t * n]), torch.from_numpy(Ys[: t * n])
        )
        assert _relative(net.W_.numpy(), peer[t - 1]["W"]) < TOL
        G = peer[t - 1]["gradient"]  # rows G_i: their cos(G_i, θ_k), the notebook's scatter
        cos = G @ theta.T / np.linalg.norm(G, axis=1)[:, None]
        assert np.abs(net.history_[t - 1]["step_cosines"].numpy() - cos).max() < TOL


def test_dandi2024_batch_reuse_matches_the_simulation():
    """Full-batch GD on one reused batch: overlaps m(t) and the test error Σ½(y − f)²/N at
    every t, and the final W, agree to rounding (their rows of norm √D are ours × √D)."""
    D, K, T = 24, 2, 7
    N = 3 * D
    rng = np.random.default_rng(7)
    teacher_rows = np.linalg.qr(rng.standard_normal((D, 2 + K)))[0].T  # orthonormal
    theta, W0_unit = teacher_rows[:2], teacher_rows[2:]  # W⁰ ⟂ teacher, unit rows

    def label(X):
        h1, h2 = X @ theta[0], X @ theta[1]
        return np.tanh(h1 + h2**3 - 3 * h2)  # tanh(h₁ + He₃(h₂))

    X, X_test = rng.standard_normal((N, D)), rng.standard_normal((N, D))
    y, y_test = label(X), label(X_test)
    a = np.array([1.0, -1.0]) / math.sqrt(2)
    lr = 0.2
    peer = dandi2024_batch_reuse(
        X, y, X_test, y_test, W0_unit * math.sqrt(D), a, theta * math.sqrt(D), lr, T
    )
    net = GiantStepNetwork(
        width=K, steps=T, step_size=lr * N / (2 * D), weight_decay=0.0, batch="reuse",
        preprocess=False, first_layer=torch.from_numpy(W0_unit), second_layer=torch.from_numpy(a),
        biases="none", diagnostics_target=torch.from_numpy(theta),
        diagnostics_data=(torch.from_numpy(X_test), torch.from_numpy(y_test)),
        head="none", dtype="float64",
    )  # fmt: skip
    net.fit(torch.from_numpy(X), torch.from_numpy(y))
    # their record t is before step t + 1: t = 0 is W⁰, t ≥ 1 is our history entry t
    start = net.initial_diagnostics_
    assert np.abs(start["direction_overlaps"].numpy() - peer["overlaps"][0]).max() < 1e-14  # ≈ 0
    assert abs(start["network_risk"] / 2 - peer["test_errors"][0]) < TOL * peer["test_errors"][0]
    for t in range(1, T):
        entry = net.history_[t - 1]
        assert _relative(entry["direction_overlaps"].numpy(), peer["overlaps"][t]) < TOL
        # ours: mean (f − y)², theirs mean ½(y − f)²
        assert (
            abs(entry["network_risk"] / 2 - peer["test_errors"][t]) < TOL * peer["test_errors"][t]
        )
    assert _relative(net.W_.numpy() * math.sqrt(D), peer["W"]) < TOL
    # head="none": the predictor is the trained network itself, a fixed
    student = relu(X_test @ peer["W"].T / math.sqrt(D)) @ a
    assert _relative(net.predict(torch.from_numpy(X_test)).numpy(), student) < TOL


@pytest.mark.parametrize(
    "value",
    [
        (np.zeros((4, 3)),),
        (np.zeros((4, 3)), np.zeros(5)),
        (np.zeros(4), np.zeros(4)),
        (np.full((4, 3), np.nan), np.zeros(4)),
        "data",
    ],
)
def test_diagnostics_data_errors_are_one_line(value):
    with pytest.raises(ValueError, match="diagnostics_data.*pair \\(X, y\\)"):
        GiantStepNetwork(diagnostics_data=value).fit(torch.zeros(8, 3), torch.zeros(8))


def test_head_none_has_no_transfer():
    X, y = torch.randn(16, 3, dtype=F64), torch.randn(16, dtype=F64)
    net = GiantStepNetwork(width=4, head="none", dtype="float64").fit(X, y)
    assert net.ridge_lambda_ is None and torch.equal(net.a_, net.initial_network_.a)
    with pytest.raises(ValueError, match="head='none'"):
        net.transfer(X, y)


def test_cui2024_one_step_then_ridge_matches_the_notebook():
    """W¹ and the test errors of the ridge on fresh samples (``transfer``) agree to rounding."""
    d = p = 20
    rng = np.random.default_rng(11)
    W0 = rng.standard_normal((p, d))
    W0 /= np.linalg.norm(W0, axis=1, keepdims=True)  # cell 7: rows normalised
    a0 = np.ones(p) / math.sqrt(p)

    def draw(n):
        Z = rng.standard_normal((n, d))
        return Z, np.tanh(Z[:, 0])

    Z0, Y0 = draw(d // 2)  # α₀ = 0.5
    sets = [(*draw(n), *draw(200)) for n in (8, 40)]  # α = 0.4 and 2
    eta_tilde, lam_C = 1.0, 0.01
    peer = cui2024_one_step_ridge(Z0, Y0, W0, a0, eta_tilde, sets, lam_C)
    net = GiantStepNetwork(
        width=p, steps=1, step_size=eta_tilde * p / 2, weight_decay=0.0, preprocess=False,
        activation="tanh", output_scale="1/sqrt(m)", first_layer=torch.from_numpy(W0),
        second_layer="constant", biases="none", ridge_lambda=1.0, dtype="float64",
    ).fit(torch.from_numpy(Z0), torch.from_numpy(Y0))  # fmt: skip
    assert _relative(net.W_.numpy(), peer["W1"]) < TOL
    for (Z, Y, Z_test, Y_test), theirs in zip(sets, peer["test_errors"], strict=True):
        model = net.set_params(ridge_lambda=2 * lam_C / len(Y))
        model = model.transfer(torch.from_numpy(Z), torch.from_numpy(Y))
        ours = float(((model.predict(torch.from_numpy(Z_test)).numpy() - Y_test) ** 2).mean())
        assert abs(ours - theirs) < TOL * theirs
