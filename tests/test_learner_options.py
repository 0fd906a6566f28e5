"""Every public option and mode of the learners does what it says: each expectation is derived
by hand (an oracle computed here from the definitions), so an option that were ignored or
implemented in a plausible wrong way fails."""

import doctest
import math

import numpy as np
import pytest
import torch

import replearn as rl
from replearn.kernels import rf_kernel, rf_kernel_diagonal
from replearn.learners import full_training, kernel_ridge, ntk, one_step, random_features
from replearn.learners.full_training import FullTraining
from replearn.learners.kernel_ridge import KernelRidge
from replearn.learners.ntk import NTKRegression
from replearn.learners.one_step import OneStepNetwork
from replearn.learners.random_features import RandomFeatures
from replearn.network import normal_biases, symmetric_init

F64 = torch.float64


def _residual(X, y, preprocess=True):
    """r = y − α − β·x with α = mean y, β = mean y·x (Algorithm 1, step 1), or y itself."""
    if not preprocess:
        return y
    return y - y.mean() - X @ (y @ X / len(y))


def _hand_step(X, r, width, seed, eta1):
    """w_j¹ = 2·η₁·a_j·mean_i(r_i·x_i·1[w_j⁰·x_i ≥ 0]) for all m neurons (no pair shortcut)."""
    init = symmetric_init(width, X.shape[1], seed, dtype=F64)
    gate = (X @ init.W.T >= 0).to(F64)  # (n, m)
    return 2.0 * eta1 * init.a[:, None] * ((gate * r[:, None]).T @ X) / len(r)


# -- OneStepNetwork -----------------------------------------------------------------------------
@pytest.mark.parametrize("preprocess", [True, False])
def test_step_and_head_follow_algorithm_one_with_and_without_preprocessing(affine_data, preprocess):
    """W¹ against the formula on r (or on raw y when preprocess=False), and the head against
    the normal equations (FᵀF/n + λ/2·I)a = Fᵀr/n: float64, a few roundings per sum, so 1e-10."""
    X, y = affine_data[0][:500], affine_data[1][:500]
    ridge_lambda = 1e-3
    net = OneStepNetwork(
        width=16, eta1=1.0, ridge_lambda=ridge_lambda, preprocess=preprocess, dtype=F64, seed=4
    ).fit(X, y)
    r = _residual(X, y, preprocess)
    torch.testing.assert_close(net.W_, _hand_step(X, r, 16, 4, 1.0), rtol=1e-10, atol=1e-12)
    F = torch.relu(X @ net.W_.T + net.b_)
    a = torch.linalg.solve(
        F.T @ F / 500 + ridge_lambda / 2 * torch.eye(16, dtype=F64), F.T @ r / 500
    )
    torch.testing.assert_close(net.a_, a, rtol=1e-8, atol=1e-10)
    if preprocess:
        torch.testing.assert_close(net.alpha_, y.mean(), rtol=1e-12, atol=0)
        torch.testing.assert_close(net.beta_, y @ X / 500, rtol=1e-12, atol=1e-14)
    else:
        assert float(net.alpha_) == 0.0 and float(net.beta_.abs().max()) == 0.0


def test_resample_steps_on_the_first_half_and_fits_the_head_on_the_second(affine_data):
    X, y = affine_data[0][:600], affine_data[1][:600]
    make = lambda: OneStepNetwork(width=16, data="resample", dtype=F64, seed=1)  # noqa: E731
    net = make().fit(X, y)
    # the step sees samples 0…299 only: the data="same" step on them alone is the same W¹
    first_half_only = OneStepNetwork(width=16, dtype=F64, seed=1).fit(X[:300], y[:300])
    assert torch.equal(net.W_, first_half_only.W_)
    # altering the second half leaves W¹ unchanged and changes the head …
    X2, y2 = X.clone(), y.clone()
    X2[300:], y2[300:] = -X2[300:].flip(1), 3.0 * y2[300:] + 1.0
    altered = make().fit(X2, y2)
    assert torch.equal(altered.W_, net.W_)
    assert not torch.allclose(altered.a_, net.a_)
    # … and α, β are those of the head's half (refitted there)
    torch.testing.assert_close(net.alpha_, y[300:].mean(), rtol=1e-12, atol=0)
    torch.testing.assert_close(net.beta_, y[300:] @ X[300:] / 300, rtol=1e-12, atol=1e-14)
    # altering the first half changes W¹
    y3 = y.clone()
    y3[:300] = -y3[:300]
    assert not torch.allclose(make().fit(X, y3).W_, net.W_)


def test_eta1_scales(affine_data):
    """W¹ is linear in η₁: "sqrt_d" ⇒ √d·W¹(η₁ = 1), a number c ⇒ c·W¹(η₁ = 1) (one rounding
    each side: 1e-14); "normalize" ⇒ sqrt(mean_j ‖w_j¹‖²) = 1."""
    X, y = affine_data[0][:500], affine_data[1][:500]
    d = X.shape[1]
    fit = lambda eta1: OneStepNetwork(width=16, eta1=eta1, dtype=F64, seed=2).fit(X, y)  # noqa: E731
    unit = fit(1.0)
    sqrt_d = fit("sqrt_d")
    assert sqrt_d.eta1_ == math.sqrt(d)
    torch.testing.assert_close(sqrt_d.W_, math.sqrt(d) * unit.W_, rtol=1e-14, atol=0)
    torch.testing.assert_close(fit(2.5).W_, 2.5 * unit.W_, rtol=1e-14, atol=0)
    normalized = fit("normalize")
    rms = float(normalized.W_.pow(2).sum(1).mean().sqrt())
    assert rms == pytest.approx(1.0, rel=1e-12)
    assert normalized.eta1_ == pytest.approx(1.0 / float(unit.W_.pow(2).sum(1).mean().sqrt()))


def test_gd_head_with_zero_steps_is_zero_and_with_many_converges_at_the_predicted_rate(
    affine_data,
):
    """GD from a = 0 with step η = 1/(2·s_max + λ) on J(a) = (1/n)‖Fa − r‖² + (λ/2)‖a‖²:
    the error contracts by at most (1 − η·(2·s_min + λ)) per step, so after T steps
    ‖a_T − a*‖ ≤ (1 − η·λ)^T·‖a*‖."""
    X, y = affine_data[0][:500], affine_data[1][:500]
    ridge_lambda, steps = 0.05, 300
    make = lambda **kw: OneStepNetwork(  # noqa: E731
        width=16, ridge_lambda=ridge_lambda, dtype=F64, seed=5, **kw
    ).fit(X, y)
    ridge = make()
    assert float(make(head="gd", head_steps=0).a_.abs().max()) == 0.0
    gd = make(head="gd", head_steps=steps)
    F = torch.relu(X @ ridge.W_.T + ridge.b_)
    s_max = float(torch.linalg.eigvalsh(F.T @ F / 500).max())
    eta = 1.0 / (2.0 * s_max + ridge_lambda)
    bound = (1.0 - eta * ridge_lambda) ** steps * float(ridge.a_.norm())
    error = float((gd.a_ - ridge.a_).norm())
    assert error <= bound * (1 + 1e-9)
    assert error < 0.5 * float(ridge.a_.norm())  # it did move towards a*


# -- λ by GCV without a holdout ---------------------------------------------------------------
def _gcv_by_hand(F, r, lambdas):
    """GCV(λ) = mean (F a(λ) − r)² / (1 − df(λ)/n)², a(λ) = (G + λ/2·I)⁻¹Fᵀr/n,
    df(λ) = tr(G(G + λ/2·I)⁻¹), G = FᵀF/n — straight from the definitions."""
    n, m = F.shape
    G, c = F.T @ F / n, F.T @ r / n
    values = []
    for lam in lambdas.tolist():
        H = G + lam / 2 * torch.eye(m, dtype=F64)
        a = torch.linalg.solve(H, c)
        df = float(torch.trace(torch.linalg.solve(H, G)))
        values.append(float(((F @ a - r) ** 2).mean()) / (1 - df / n) ** 2)
    return torch.tensor(values, dtype=F64)


def test_gcv_without_holdout_matches_a_direct_computation(affine_data):
    X, y = affine_data[0][:400], affine_data[1][:400]
    model = RandomFeatures(width=20, dtype=F64, seed=3).fit(X, y)
    r = _residual(X, y)
    F = torch.relu(X @ model.W_.T + model.b_)
    grid = float(torch.trace(F.T @ F / 400)) * torch.logspace(-10, 2, 49, dtype=F64)
    assert model.lambda_criterion_name_ == "gcv"
    torch.testing.assert_close(model.lambda_path_, grid, rtol=1e-12, atol=0)
    # the smallest λ are nearly unregularised: cond(H) ≤ s_max/s_min (n = 400 ≫ m = 20), so
    # the two computations agree to ~1e-10 relative
    gcv = _gcv_by_hand(F, r, grid)
    torch.testing.assert_close(model.lambda_criterion_, gcv, rtol=1e-7, atol=0)
    assert model.ridge_lambda_ == float(grid[int(torch.argmin(gcv))])


def test_kernel_ridge_gcv_without_holdout_matches_the_dual_definition(affine_data):
    """Dual form: c(μ) = (K + μI)⁻¹r, μ = nλ/2, GCV = mean (Kc − r)²/(1 − tr(K(K + μI)⁻¹)/n)²."""
    X, y = affine_data[0][:200], affine_data[1][:200]
    model = KernelRidge(kernel="rf", dtype=F64).fit(X, y)
    n = 200
    r = _residual(X, y)
    K = rf_kernel(X, X)
    K.diagonal().copy_(rf_kernel_diagonal(X))
    grid = float(torch.trace(K)) / n * torch.logspace(-10, 2, 49, dtype=F64)
    gcv = []
    for lam in grid.tolist():
        A = K + n * lam / 2 * torch.eye(n, dtype=F64)
        c = torch.linalg.solve(A, r)
        df = float(torch.trace(torch.linalg.solve(A, K)))
        gcv.append(float(((K @ c - r) ** 2).mean()) / (1 - df / n) ** 2)
    gcv = torch.tensor(gcv, dtype=F64)
    best = int(torch.argmin(gcv[10:])) + 10  # λ ≥ 1e-7.5·tr: away from K's rounding level
    assert model.lambda_criterion_name_ == "gcv"
    torch.testing.assert_close(model.lambda_criterion_[10:], gcv[10:], rtol=1e-6, atol=0)
    assert model.ridge_lambda_ == pytest.approx(float(grid[best]), rel=1e-12)


# -- FullTraining ----------------------------------------------------------------------------------
def _manual_sgd(X, r, width, seed, lr, steps_batches, momentum, weight_decay, mean_field):
    """torch.optim.SGD's rule written out: g = ∇L + wd·θ, v ← μ·v + g (v₁ = g), θ ← θ − η·v,
    η = lr·m in mean-field (whose f carries 1/m), lr otherwise."""
    init = symmetric_init(width, X.shape[1], seed, dtype=F64)
    params = [t.clone().requires_grad_(True) for t in (init.W, init.b, init.a)]
    scale = 1.0 / width if mean_field else 1.0
    eta = lr * width if mean_field else lr
    velocity = None
    for batch in steps_batches:
        W, b, a = params
        loss = (((torch.relu(X[batch] @ W.T + b) @ a) * scale - r[batch]) ** 2).mean()
        grads = torch.autograd.grad(loss, params)
        grads = [g + weight_decay * p.detach() for g, p in zip(grads, params)]
        velocity = (
            grads if velocity is None else [momentum * v + g for v, g in zip(velocity, grads)]
        )
        params = [(p.detach() - eta * v).requires_grad_(True) for p, v in zip(params, velocity)]
    return [p.detach() for p in params]


@pytest.mark.parametrize(
    ("momentum", "weight_decay", "parametrization"),
    [(0.9, 0.0, "standard"), (0.0, 0.05, "standard"), (0.5, 0.01, "mean-field")],
)
def test_sgd_momentum_weight_decay_and_mean_field_follow_the_update_rule(
    affine_data, momentum, weight_decay, parametrization
):
    """Three full-batch steps against the rule written out (float64; the batch's row order
    only changes rounding: 1e-10)."""
    X, y = affine_data[0][:128], affine_data[1][:128]
    model = FullTraining(
        width=8, optimizer="sgd", lr=0.01, n_steps=3, batch_size=128, momentum=momentum,
        weight_decay=weight_decay, parametrization=parametrization, patience=None,
        dtype=F64, seed=3,
    ).fit(X, y)  # fmt: skip
    batches = [torch.arange(128)] * 3
    expected = _manual_sgd(
        X, _residual(X, y), 8, 3, 0.01, batches, momentum, weight_decay,
        parametrization == "mean-field",
    )  # fmt: skip
    for fitted, hand in zip((model.W_, model.b_, model.a_), expected):
        torch.testing.assert_close(fitted, hand, rtol=1e-10, atol=1e-12)


def test_minibatches_are_reshuffled_every_epoch_from_the_seeded_generator(affine_data):
    """n = 40, batches of 10, 2 epochs: epoch e's order is randperm(40) from a generator seeded
    by SeedSequence([seed, e, chunk]) — the documented recipe; ignoring it, or reusing one
    order for every epoch, gives other parameters."""
    X, y = affine_data[0][:40], affine_data[1][:40]
    seed = 6
    model = FullTraining(
        width=8, optimizer="sgd", lr=0.01, n_steps=8, batch_size=10, patience=None,
        dtype=F64, seed=seed,
    ).fit(X, y)  # fmt: skip

    def order(epoch):
        state = np.random.SeedSequence([seed, epoch, 0]).generate_state(1)
        return torch.randperm(40, generator=torch.Generator().manual_seed(int(state[0])))

    batches = list(order(0).split(10)) + list(order(1).split(10))
    assert not torch.equal(order(0), order(1))
    expected = _manual_sgd(X, _residual(X, y), 8, seed, 0.01, batches, 0.0, 0.0, False)
    for fitted, hand in zip((model.W_, model.b_, model.a_), expected):
        torch.testing.assert_close(fitted, hand, rtol=1e-10, atol=1e-12)
    unshuffled = [torch.arange(40)[i : i + 10] for i in range(0, 40, 10)] * 2
    other = _manual_sgd(X, _residual(X, y), 8, seed, 0.01, unshuffled, 0.0, 0.0, False)
    assert not torch.allclose(model.W_, other[0], rtol=1e-10, atol=1e-12)


def test_mean_field_prediction_carries_the_one_over_m(affine_data):
    X, y = affine_data[0][:200], affine_data[1][:200]
    model = FullTraining(
        width=8, parametrization="mean-field", epochs=2, patience=None, dtype=F64
    ).fit(X, y)
    hidden = torch.relu(X @ model.W_.T + model.b_) @ model.a_
    expected = model.alpha_ + X @ model.beta_ + hidden / 8
    torch.testing.assert_close(model.predict(X), expected, rtol=1e-12, atol=1e-12)
    assert float((hidden / 8 - hidden).abs().max()) > 1e-3  # the 1/m is visible


# -- NTKRegression ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bias", ["zero", "normal"])
def test_ntk_bias_and_predictions_are_the_linearisation_at_that_init(affine_data, bias):
    """bias="zero": b⁰ = 0; "normal": b⁰_j = b⁰_{j+m/2} = normal_biases(m/2, seed)_j. Predictions
    are α + β·x + the directional derivative of f at θ⁰ along (δW, δb, δa) (torch.func.jvp)."""
    X, y = affine_data[0][:300], affine_data[1][:300]
    model = NTKRegression(width=6, bias=bias, ridge_lambda=1e-2, dtype=F64, seed=2).fit(X, y)
    b0 = model.network0_.b
    if bias == "zero":
        assert float(b0.abs().max()) == 0.0
    else:
        half = normal_biases(3, 2, dtype=F64)
        assert torch.equal(b0, torch.cat([half, half]))
    net0 = model.network0_

    def f(W, b, a):
        return torch.relu(X @ W.T + b) @ a

    _, derivative = torch.func.jvp(
        f, (net0.W, net0.b, net0.a), (model.delta_W_, model.delta_b_, model.delta_a_)
    )
    expected = model.alpha_ + X @ model.beta_ + derivative
    torch.testing.assert_close(model.predict(X), expected, rtol=1e-10, atol=1e-10)


def test_ntk_bias_changes_the_model(affine_data):
    X, y = affine_data[0][:300], affine_data[1][:300]
    zero = NTKRegression(width=6, bias="zero", ridge_lambda=1e-2, dtype=F64).fit(X, y)
    normal = NTKRegression(width=6, bias="normal", ridge_lambda=1e-2, dtype=F64).fit(X, y)
    assert not torch.allclose(zero.predict(X), normal.predict(X))


# -- learning: targets with a mean and a linear part ---------------------------------------------
# Excess risks on 2·10⁴ test samples (seed 1) measured with these exact settings, with and
# without preprocessing (one-off script): one step 0.072 vs 0.177, random features 0.848 vs
# 1.293, NTK 1.554 vs 2.034 (Var f* = 4.25). Each bound sits between the two, so a learner that
# skipped the α/β step fails.
LEARNING = [
    ("one_step", lambda p: OneStepNetwork(width=40, preprocess=p, dtype=F64), 0.12),
    ("random_features", lambda p: RandomFeatures(width=40, preprocess=p, dtype=F64), 1.05),
    ("ntk", lambda p: NTKRegression(width=10, preprocess=p, dtype=F64), 1.8),
]


@pytest.mark.parametrize(("name", "make", "bound"), LEARNING, ids=[c[0] for c in LEARNING])
def test_learning_a_target_with_a_mean_and_a_linear_part_needs_the_alpha_beta_step(
    affine_target, affine_data, name, make, bound
):
    X, y, X_holdout, y_holdout = affine_data
    with_step = make(True).fit(X, y, X_holdout, y_holdout)
    without = make(False).fit(X, y, X_holdout, y_holdout)
    risk = rl.excess_risk(with_step, affine_target, n_test=20_000, seed=1).risk
    risk_without = rl.excess_risk(without, affine_target, n_test=20_000, seed=1).risk
    assert risk < bound < risk_without


# -- the docstrings' Examples run --------------------------------------------------------------------
@pytest.mark.parametrize("module", [one_step, random_features, ntk, kernel_ridge, full_training])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# -- layout --------------------------------------------------------------------------------------
def test_linalg_imports_no_learner_and_no_data():
    """linalg sits below the learners: importing it must not pull them (or the data) in."""
    import subprocess
    import sys

    code = (
        "import sys, replearn.linalg.ridge, replearn.linalg.dense, replearn.linalg.falkon;"
        "print(sorted(m for m in sys.modules if m.startswith('replearn.')"
        " and not m.startswith('replearn.linalg')"
        " and m not in ('replearn._threads', 'replearn.progress')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
