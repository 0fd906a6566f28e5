"""OnlineSGD: its steps against autograd's, smoothing against its definition, replicas against
single runs, weak recovery, and the default learning He₂ within 50·d·log d samples."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

import replearn as rl
from replearn.activations import resolve_activation
from replearn.learners.online_sgd import online_lr
from replearn.learners.online_updates import (
    SmoothedPolynomial,
    monte_carlo_smoothed_gradient,
    polynomial_of,
    smoothed_gradient,
    sphere_coordinates,
)

F64 = torch.float64


def _data(n: int, d: int, seed: int = 0):
    target = rl.MultiIndexTarget.from_expression("He2(z1)/sqrt(2) + He3(z1)/sqrt(6)", d=d, seed=7)
    X, y = rl.sample(target, n=n, noise=0.1, seed=seed)
    return target, X.to(F64), y.to(F64)


# -- references built on autograd -------------------------------------------------------------
def _model_output(W, a, c, activation, X):
    """f(x) = c·Σ_j a_j σ(w_j·x) for one replica: W (m, d), X (B, d)."""
    return c * (activation(X @ W.T) @ a)


def _plain_loss(W, a, c, activation, X, y, loss):
    f = _model_output(W, a, c, activation, X)
    return ((f - y) ** 2).mean() if loss == "square" else -(y * f).mean()


def _smoothed_loss(W, a, c, S_sigma, S_squared, X, y, loss):
    """ℓ_λ through SmoothedPolynomial.value, with a = W x and q = ‖x‖² − a² as functions of W."""
    pre = X @ W.T
    q = (X * X).sum(1, keepdim=True) - pre**2
    smooth = S_sigma.value(pre, q)
    if loss == "correlation":
        return -(y * (c * (smooth @ a))).mean()
    residual = c * (smooth @ a) - y
    variance = (c * c * a * a) * (S_squared.value(pre, q) - smooth**2)
    return (residual**2 + variance.sum(1)).mean()


def _monte_carlo_loss(W, a, c, activation, lam, t, X, y, loss):
    """The reparametrised MC loss: u = (a + λ√q·t)/√(1 + λ²) with t (S, B, m) held fixed."""
    pre = X @ W.T
    root_q = ((X * X).sum(1, keepdim=True) - pre**2).sqrt()
    u = (pre + lam * root_q * t) / math.sqrt(1 + lam**2)
    f = c * (activation(u) @ a)  # (S, B)
    if loss == "correlation":
        return -(y * f).mean()
    return ((f - y) ** 2).mean()


def _step(W, loss_fn, lr, spherical):
    W = W.detach().clone().requires_grad_(True)
    (G,) = torch.autograd.grad(loss_fn(W), W)
    W = W.detach()
    if not spherical:
        return W - lr * G
    tangent = G - (G * W).sum(1, keepdim=True) * W
    moved = W - lr * tangent
    return moved / moved.norm(dim=1, keepdim=True)


def _reference_run(model, X, y, loss_of_W):
    """Replica 0 of ``model`` again, every step by autograd."""
    W = model.initial_W_[0].clone()
    B = model.batch_size
    for i in range(model.n_used_ // B):
        Xb, yb = X[i * B : (i + 1) * B], y[i * B : (i + 1) * B]
        for repeat in range(model.repeats):
            draw = i * model.repeats + repeat
            W = _step(
                W, functools.partial(loss_of_W, Xb=Xb, yb=yb, draw=draw), model.lr_, model.spherical
            )
    return W


# -- the steps equal autograd's ----------------------------------------------------------------
@pytest.mark.parametrize("loss", ["square", "correlation"])
@pytest.mark.parametrize("spherical", [True, False])
@pytest.mark.parametrize("repeats", [1, 2])
@pytest.mark.parametrize("width, batch_size, activation", [(1, 1, "relu"), (3, 4, "tanh")])
def test_steps_equal_autograd(loss, spherical, repeats, width, batch_size, activation):
    _, X, y = _data(n=48, d=6)
    model = rl.OnlineSGD(
        width=width, activation=activation, loss=loss, spherical=spherical, repeats=repeats,
        batch_size=batch_size, lr=0.05, second_layer="gaussian", dtype="float64", seed=3,
    ).fit(X, y)  # fmt: skip
    sigma, a = resolve_activation(activation), model.a_
    c = 1.0

    def loss_of_W(W, Xb, yb, draw):
        return _plain_loss(W, a, c, sigma, Xb, yb, loss)

    expected = _reference_run(model, X, y, loss_of_W)
    assert model.n_used_ == 48
    torch.testing.assert_close(model.W_, expected, rtol=0, atol=1e-10)
    assert not torch.equal(model.W_, model.initial_W_[0])  # it moved


@pytest.mark.parametrize("loss", ["square", "correlation"])
@pytest.mark.parametrize("repeats", [1, 2])
def test_closed_form_smoothing_equals_autograd(loss, repeats):
    _, X, y = _data(n=24, d=6)
    lam = 1.3
    model = rl.OnlineSGD(
        width=2, activation="hermite:3", loss=loss, smoothing=lam, repeats=repeats, batch_size=3,
        lr=0.02, second_layer="signs", dtype="float64", seed=1,
    ).fit(X, y)  # fmt: skip
    assert model.smoothing_method_ == "closed_form"
    monomial = polynomial_of(resolve_activation("hermite:3"))
    S_sigma = SmoothedPolynomial.build(monomial, lam, 6)
    S_squared = SmoothedPolynomial.build(list(np.convolve(monomial, monomial)), lam, 6)

    def loss_of_W(W, Xb, yb, draw):
        return _smoothed_loss(W, model.a_, 1.0, S_sigma, S_squared, Xb, yb, loss)

    torch.testing.assert_close(model.W_, _reference_run(model, X, y, loss_of_W), rtol=0, atol=1e-10)


@pytest.mark.parametrize("loss", ["square", "correlation"])
@pytest.mark.parametrize("repeats", [1, 2])
def test_monte_carlo_smoothing_equals_autograd_on_its_draws(loss, repeats):
    from replearn.learners.online_sgd import _SphereDraws

    _, X, y = _data(n=16, d=5)
    lam = 0.8
    model = rl.OnlineSGD(
        width=2, activation="tanh", loss=loss, smoothing=lam, repeats=repeats, batch_size=2,
        smoothing_samples=3, lr=0.05, dtype="float64", seed=4,
    ).fit(X, y)  # fmt: skip
    assert model.smoothing_method_ == "monte_carlo"
    draws = _SphereDraws(4, 1, 3, 2, 5)
    sigma = resolve_activation("tanh")

    def loss_of_W(W, Xb, yb, draw):
        t = draws.at(draw, 2)[:, 0]  # (S, B, m) of replica 0
        return _monte_carlo_loss(W, model.a_, 1.0, sigma, lam, t, Xb, yb, loss)

    torch.testing.assert_close(model.W_, _reference_run(model, X, y, loss_of_W), rtol=0, atol=1e-10)


# -- smoothing against its definition ----------------------------------------------------------
def _unit_rows(generator, m, d):
    W = torch.randn(m, d, generator=generator, dtype=F64)
    return W / W.norm(dim=1, keepdim=True)


def test_smoothed_polynomial_is_the_average_over_the_sphere_around_w():
    """S[P](w·x) against the plain average of P(w′·x), w′ = (w + λz)/√(1 + λ²) with z drawn
    uniformly on the unit sphere of w^⊥ in R^d (not through t): within 4 standard errors."""
    d, lam, draws = 7, 1.5, 200_000
    generator = torch.Generator().manual_seed(0)
    w = _unit_rows(generator, 1, d)[0]
    x = torch.randn(d, generator=generator, dtype=F64)
    g = torch.randn(draws, d, generator=generator, dtype=F64)
    z = g - (g @ w)[:, None] * w
    z = z / z.norm(dim=1, keepdim=True)
    u = ((w + lam * z) @ x) / math.sqrt(1 + lam**2)
    monomial = polynomial_of(resolve_activation("hermite:3"))
    values = sum(c * u**p for p, c in enumerate(monomial))
    a = (w @ x).reshape(1)
    S = SmoothedPolynomial.build(monomial, lam, d)
    exact = float(S.value(a, x @ x - a**2))
    stderr = float(values.std()) / math.sqrt(draws)
    assert abs(float(values.mean()) - exact) < 4 * stderr


@pytest.mark.parametrize("loss", ["square", "correlation"])
def test_monte_carlo_gradient_is_unbiased_for_the_closed_form(loss):
    """Mean of K independent MC gradients vs the closed form, entry by entry within 4.5 standard
    errors of the mean (K = 4000 draws: the CLT makes each entry's mean Gaussian; 4.5σ over the
    2·5 entries tested keeps the false-alarm rate below 1e-4)."""
    d, lam, m, B, K = 5, 1.2, 2, 3, 4000
    generator = torch.Generator().manual_seed(1)
    W = _unit_rows(generator, m, d)[None]
    X = torch.randn(1, B, d, generator=generator, dtype=F64)
    y = torch.randn(1, B, generator=generator, dtype=F64)
    a = torch.tensor([0.7, -1.1], dtype=F64)
    activation = resolve_activation("hermite:3")
    monomial = polynomial_of(activation)
    S = SmoothedPolynomial.build(monomial, lam, d)
    S2 = SmoothedPolynomial.build(list(np.convolve(monomial, monomial)), lam, d)
    exact = smoothed_gradient(W, a, 1.0, S, S2, X, y, loss)
    rng = np.random.default_rng(2)
    t = torch.from_numpy(sphere_coordinates(rng, (K, 1, B, m), d))[:, None]  # (K, 1, 1, B, m)
    samples = torch.stack(
        [
            monte_carlo_smoothed_gradient(W, a, 1.0, activation, lam, t[k], X, y, loss)
            for k in range(K)
        ]
    )
    mean, stderr = samples.mean(0), samples.std(0) / math.sqrt(K)
    assert bool(((mean - exact).abs() <= 4.5 * stderr + 1e-12).all())


# -- replicas, chunks, recovery ----------------------------------------------------------------
def test_replicas_in_one_batch_equal_single_runs_and_chunks_do_not_matter():
    target = rl.MultiIndexTarget.from_expression("He2(z1)/sqrt(2)", d=16, seed=0)
    stream = rl.DataStream(target, noise=0.2, seed=10, dtype=F64)
    options = dict(lr=0.05, batch_size=2, dtype="float64", threshold=0.6)
    batched = rl.OnlineSGD(replicas=3, seed=5, chunk_size=64, **options).fit_stream(stream, 600, 0)
    for r in range(3):
        single = rl.OnlineSGD(seed=5 + r, chunk_size=4096, **options).fit_stream(
            stream.with_(seed=10 + r), 600, 0
        )
        torch.testing.assert_close(batched.replica_W_[r], single.W_, rtol=0, atol=1e-12)
        assert batched.recovery_samples_[r] == single.recovery_samples_[0]
        torch.testing.assert_close(
            batched.overlap_path_[r], single.overlap_path_[0], rtol=0, atol=1e-12
        )


def test_recovery_is_censored_when_the_budget_is_too_small():
    target = rl.MultiIndexTarget.from_expression("He3(z1)/sqrt(6)", d=64, seed=0)
    stream = rl.DataStream(target, seed=0)
    model = rl.OnlineSGD(replicas=3, seed=0).fit_stream(stream, n=50, n_holdout=0)
    assert model.recovery_samples_.tolist() == [math.inf] * 3
    assert not model.recovered_.any()
    assert model.path_samples_[0] == 0 and model.path_samples_[-1] == 50
    assert model.overlap_path_.shape == (3, len(model.path_samples_), 1)


def test_init_overlap_starts_there():
    target = rl.MultiIndexTarget.from_expression("He2(z1)/sqrt(2)", d=32, seed=0)
    stream = rl.DataStream(target, seed=0)
    model = rl.OnlineSGD(width=3, init_overlap=0.3, replicas=2, seed=0).fit_stream(stream, 10, 0)
    torch.testing.assert_close(
        model.overlap_path_[:, 0].double(), torch.full((2, 3), 0.3, dtype=F64), rtol=0, atol=1e-6
    )


def test_step_size_schedule():
    assert online_lr(400, 1) == 1 / 400
    assert online_lr(400, 2) == 1 / (400 * math.log(400))
    assert online_lr(400, 3) == 400**-1.5
    assert math.isclose(online_lr(400, 4, smoothing=400**0.25), 400**-2 * 400 ** (6 / 4))


def test_errors_are_one_line():
    X, y = torch.randn(10, 4), torch.randn(10)
    with pytest.raises(ValueError, match="smoothing needs spherical=True"):
        rl.OnlineSGD(smoothing=1.0, spherical=False).fit(X, y)
    with pytest.raises(ValueError, match="closed_form.*polynomial"):
        rl.OnlineSGD(smoothing=1.0, smoothing_method="closed_form").fit(X, y)
    with pytest.raises(ValueError, match="loss must be one of"):
        rl.OnlineSGD(loss="hinge").fit(X, y)
    with pytest.raises(ValueError, match="init_overlap needs directions"):
        rl.OnlineSGD(init_overlap=0.5).fit(X, y)


def test_ridge_head_predicts_and_transfers():
    target = rl.MultiIndexTarget.from_expression("He2(z1)/sqrt(2)", d=16, seed=0)
    stream = rl.DataStream(target, seed=0)
    model = rl.OnlineSGD(width=20, head="ridge", seed=0).fit_stream(stream, 4000, 2000)
    X_test, y_test = rl.sample(target, n=4000, seed=9)
    assert model.score(X_test, y_test) > 0.5  # He₂ along a learned direction: mostly explained
    new = model.transfer_stream(stream, 2000, 1000)
    assert new.n_transfer_samples_ == 2000 and torch.equal(new.W_, model.W_)


@pytest.mark.slow
def test_default_learns_he2_at_d256_within_50_d_log_d():
    """The default (one ReLU neuron, spherical, correlation loss, η = 1/(d log d)) reaches
    |w·u| ≥ 0.5 on He₂(u·x)/√2 at d = 256 within 50·d·log d samples, on every one of 4
    replicas (fixed seeds)."""
    d = 256
    target = rl.MultiIndexTarget.from_expression("He2(z1)/sqrt(2)", d=d, seed=0)
    budget = int(50 * d * math.log(d))
    model = rl.OnlineSGD(replicas=4, stop_at_recovery=True, seed=0).fit_stream(
        rl.DataStream(target, seed=0), n=budget, n_holdout=0
    )
    assert model.recovered_.all(), model.recovery_samples_
    assert (model.recovery_samples_ <= budget).all()


# -- the overlap ODE ---------------------------------------------------------------------------
def _ode_against_simulation(d, replicas, n, record_every, batch_size=1, lr_times_d=1.0):
    from replearn.theory import online_overlap_ode

    target = rl.MultiIndexTarget.from_expression("He2(z1)/sqrt(2)", d=d, seed=0)
    stream = rl.DataStream(target, noise=0.3, noise_kind="gaussian", seed=0, dtype=F64)
    # η = 1/d: drift 0.56·η·m against a projection loss ≈ 0.3·η·m, a fixed point below 1
    lr = lr_times_d / d
    model = rl.OnlineSGD(
        replicas=replicas, init_overlap=0.3, lr=lr, batch_size=batch_size, dtype="float64",
        record_every=record_every, seed=0,
    ).fit_stream(stream, n=n, n_holdout=0)  # fmt: skip
    path = model.overlap_path_[:, :, 0].numpy()
    mean, spread = path.mean(0), path.std(0, ddof=1)
    options = dict(
        lr=lr, n=n, m0=0.3, noise=0.3, batch_size=batch_size, points=len(model.path_samples_)
    )
    with_corrections = online_overlap_ode(target, **options).overlap
    drift_only = online_overlap_ode(target, corrections=False, **options).overlap
    return mean, spread, with_corrections, drift_only


@pytest.mark.parametrize("batch_size, lr_times_d", [(1, 1.0), (8, 6.0)])
def test_overlap_ode_matches_the_mean_simulated_overlap(batch_size, lr_times_d):
    """m(t) of the ODE within the replicas' spread (one sd) of their mean at every record; the
    drift alone (no step-size correction) is not — the correction is what sets the plateau
    (with B = 8 it is the batch's variance, (E‖h₁‖² − ‖E h‖²)/B, that does)."""
    mean, spread, ode, drift_only = _ode_against_simulation(
        256, 16, 4000 * batch_size // 2 if batch_size > 1 else 4000, 250, batch_size, lr_times_d
    )
    assert np.all(np.abs(mean - ode) <= spread + 1e-9)
    assert np.abs(mean - drift_only)[-1] > 3 * spread[-1]


@pytest.mark.slow
def test_overlap_ode_matches_the_mean_simulated_overlap_at_d1024():
    mean, spread, ode, _ = _ode_against_simulation(1024, 32, 20_000, 1000)
    assert np.all(np.abs(mean - ode) <= spread + 1e-9)


def test_recovery_time_is_the_first_recorded_crossing():
    """With every step recorded, recovery_samples_ is the first record with |u·w| ≥ threshold
    (chunks of 96 samples: crossings inside and across chunk boundaries)."""
    target = rl.MultiIndexTarget.from_expression("He2(z1)/sqrt(2)", d=16, seed=0)
    stream = rl.DataStream(target, seed=3)
    model = rl.OnlineSGD(replicas=6, record_every=1, chunk_size=96, batch_size=2, seed=1)
    model.fit_stream(stream, 2000, 0)
    for r in range(6):
        crossed = np.nonzero(model.overlap_path_[r, :, 0].abs().numpy() >= 0.5)[0]
        expected = model.path_samples_[crossed[0]] if len(crossed) else math.inf
        assert model.recovery_samples_[r] == expected
    assert model.recovered_.sum() >= 3  # most replicas cross within 2000 samples at d = 16


@pytest.mark.slow
def test_smoothed_online_sgd_on_he3_scales_as_d_to_the_1_5():
    """Smoothed online SGD (λ = d^{1/4}, closed form, η = 0.2·d^{−3/2}·λ⁴) on He₃(u·x)/√6 with
    σ = He₃: the median recovery time over 16 replicas at d = 64, 128, 256 grows as d^s with
    the bootstrap CI of s containing Damian et al.'s k/2 = 1.5 (fixed seeds; measured
    s = 1.50 [1.24, 1.90] — without smoothing the same runs give ≈ 2, Ben Arous et al.'s
    k − 1, at 15× the samples at d = 256)."""
    from replearn.experiments.analysis import recovery_exponent

    times = {}
    for d in (64, 128, 256):
        target = rl.MultiIndexTarget.from_expression("He3(z1)/sqrt(6)", d=d, seed=0)
        model = rl.OnlineSGD(
            activation="hermite:3", information_exponent=3, smoothing="d^1/4", lr_scale=0.2,
            replicas=16, stop_at_recovery=True, seed=0,
        ).fit_stream(rl.DataStream(target, seed=0), n=int(50 * d**1.5 * math.log(d) ** 2), n_holdout=0)  # fmt: skip
        assert model.smoothing_method_ == "closed_form" and model.recovered_.all()
        times[d] = model.recovery_samples_.tolist()
    fit = recovery_exponent(times, n_boot=1000)
    low, high = fit["ci"]
    assert low <= 1.5 <= high
