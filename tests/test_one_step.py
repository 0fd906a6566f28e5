"""Algorithm 1: exactness against autograd and linear algebra, streaming invariance, learning."""

import math

import pytest
import torch

import replearn as rl
from replearn.learners.one_step import OneStepNetwork
from replearn.network import relu_features, symmetric_init

F64 = torch.float64


@pytest.fixture(scope="module")
def small_problem():
    target = rl.MultiIndexTarget.random(d=8, r=2, degree=4, seed=3)
    stream = rl.DataStream(target, noise=0.5, seed=7, dtype=F64)
    X, y = stream.get(0, 3000)
    return target, stream, X, y


def test_network_is_zero_at_initialisation():
    net = symmetric_init(width=64, d=12, seed=5, dtype=F64)
    # pairs share (w, b) and have opposite a, whatever b is
    net.b = torch.randn(32, dtype=F64).repeat(2)
    X = torch.randn(500, 12, dtype=F64)
    # exactly zero in exact arithmetic; BLAS summation order leaves float64 rounding only
    assert net(X).abs().max() < 1e-12
    assert torch.equal(net.W[:32], net.W[32:]) and torch.equal(net.a[:32], -net.a[32:])
    assert set(net.a.tolist()) <= {-1.0, 1.0}


def test_closed_form_step_equals_autograd(small_problem):
    """W¹ = −η₁ ∇_W L(θ⁰), L = (1/n)Σ(f(x_i) − (y_i − α − β·x_i))², to 1e-10 relative."""
    _, _, X, y = small_problem
    eta1 = 2.5
    net = OneStepNetwork(width=40, eta1=eta1, ridge_lambda=1e-3, dtype=F64, seed=11).fit(X, y)
    init = symmetric_init(40, X.shape[1], seed=11, dtype=F64)
    residual = y - y.mean() - X @ (y @ X / len(y))
    W = init.W.clone().requires_grad_(True)
    f = torch.relu(X @ W.T + init.b) @ init.a
    loss = ((f - residual) ** 2).mean()
    (grad,) = torch.autograd.grad(loss, W)
    expected = -eta1 * grad
    assert torch.linalg.norm(net.W_ - expected) <= 1e-10 * torch.linalg.norm(expected)


def test_ridge_head_solves_the_normal_equations(small_problem):
    """(FᵀF/n + (λ/2)I)·a = Fᵀr/n, r the preprocessed labels."""
    _, _, X, y = small_problem
    lam = 1e-3
    net = OneStepNetwork(width=40, ridge_lambda=lam, dtype=F64, seed=2).fit(X, y)
    F = relu_features(X, net.W_, net.b_)
    r = y - net.alpha_ - X @ net.beta_
    n = len(y)
    system = F.T @ F / n + lam / 2 * torch.eye(40, dtype=F64)
    expected = torch.linalg.solve(system, F.T @ r / n)
    # two backward-stable solvers agree to ~cond·eps (forward error bound); allow 100×
    tolerance = 100 * torch.linalg.cond(system).item() * torch.finfo(F64).eps
    assert torch.linalg.norm(net.a_ - expected) <= tolerance * torch.linalg.norm(expected)
    residual = torch.linalg.norm(system @ net.a_ - F.T @ r / n)
    assert residual <= 1e-10 * torch.linalg.norm(F.T @ r / n)
    torch.testing.assert_close(net.predict(X), net.alpha_ + X @ net.beta_ + F @ net.a_)


def test_gd_head_converges_to_ridge(small_problem):
    _, _, X, y = small_problem
    lam = 1e-2
    ridge = OneStepNetwork(width=20, ridge_lambda=lam, dtype=F64, seed=4).fit(X, y)
    gd = OneStepNetwork(width=20, ridge_lambda=lam, head="gd", head_steps=20_000, dtype=F64, seed=4)
    gd.fit(X, y)
    torch.testing.assert_close(gd.W_, ridge.W_)
    assert torch.linalg.norm(gd.a_ - ridge.a_) <= 1e-6 * torch.linalg.norm(ridge.a_)
    few = OneStepNetwork(width=20, ridge_lambda=lam, head="gd", head_steps=5, dtype=F64, seed=4)
    assert torch.linalg.norm(few.fit(X, y).a_ - ridge.a_) > 1e-3 * torch.linalg.norm(ridge.a_)


@pytest.mark.parametrize("data", ["same", "resample"])
def test_chunk_size_and_fit_vs_fit_stream_agree(small_problem, data):
    _, stream, X, y = small_problem
    n, n_holdout = len(y), 2000
    Xh, yh = stream.split("holdout").get(0, n_holdout)
    fits = [
        OneStepNetwork(width=32, chunk_size=c, dtype=F64, seed=1, data=data).fit_stream(
            stream, n, n_holdout=n_holdout
        )
        for c in (1000, 65_536)
    ]
    fits.append(OneStepNetwork(width=32, dtype=F64, seed=1, data=data).fit(X, y, Xh, yh))
    reference = fits[0]
    for other in fits[1:]:
        for name in ("W_", "b_", "alpha_", "beta_"):
            torch.testing.assert_close(
                getattr(other, name), getattr(reference, name), rtol=1e-11, atol=1e-13
            )
        # the head solves an ill-conditioned system (λ chosen tiny, near-dead neurons), which
        # amplifies summation-order rounding (~1e-16) by its condition number (≲ 1e7 here)
        assert torch.linalg.norm(other.a_ - reference.a_) <= 1e-8 * torch.linalg.norm(reference.a_)
        assert other.ridge_lambda_ == pytest.approx(reference.ridge_lambda_, rel=1e-12)
        torch.testing.assert_close(other.predict(X), reference.predict(X), rtol=1e-9, atol=1e-10)


def test_same_seed_same_model_and_device_parameter(small_problem):
    _, stream, *_ = small_problem
    one = OneStepNetwork(width=16, seed=9, device="cpu").fit_stream(stream, 2000, n_holdout=500)
    two = OneStepNetwork(width=16, seed=9, device=torch.device("cpu")).fit_stream(
        stream, 2000, n_holdout=500
    )
    assert torch.equal(one.W_, two.W_) and torch.equal(one.a_, two.a_)
    assert one.W_.dtype == torch.float32


def test_zero_gradient_neurons_do_not_produce_nan():
    """y ≡ 0 makes every step gradient exactly 0: W¹ = 0, features ReLU(b) are constant."""
    X = torch.randn(500, 5, dtype=F64)
    zeros = torch.zeros(500, dtype=F64)
    for eta1 in ("sqrt_d", "normalize", 3.0):
        for ridge_lambda in ("auto", 1e-3):
            net = OneStepNetwork(width=10, eta1=eta1, ridge_lambda=ridge_lambda, dtype=F64)
            net.fit(X, zeros)
            assert torch.equal(net.W_, torch.zeros_like(net.W_))
            assert torch.isfinite(net.a_).all()
            assert torch.equal(net.predict(X), zeros)


def test_transfer_keeps_first_layer_and_refits_head(small_problem):
    target, stream, X, y = small_problem
    net = OneStepNetwork(width=32, dtype=F64, seed=0).fit_stream(stream, 3000, n_holdout=1000)
    new_task = rl.MultiIndexTarget.from_expression("He3(z1)", d=8, U=target.U[:1])
    new_stream = rl.DataStream(new_task, noise=0.5, seed=3, dtype=F64)
    moved = net.transfer_stream(new_stream, 2000, n_holdout=1000)
    assert torch.equal(moved.W_, net.W_) and torch.equal(moved.b_, net.b_)
    assert not torch.equal(moved.a_, net.a_)
    assert net.n_samples_ == 3000 and not hasattr(net, "n_transfer_samples_")  # original untouched
    X2, y2 = new_stream.get(0, 2000)
    Xh, yh = new_stream.split("holdout").get(0, 1000)
    again = net.transfer(X2, y2, Xh, yh)
    torch.testing.assert_close(again.a_, moved.a_, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 7}, "even integer ≥ 2"),
        ({"width": 0}, "even integer ≥ 2"),
        ({"eta1": -1.0}, "eta1 must be"),
        ({"eta1": "big"}, "eta1 must be"),
        ({"head": "lbfgs"}, "head must be one of"),
        ({"ridge_lambda": -0.1}, "ridge_lambda must be"),
        ({"data": "fresh"}, "data must be one of"),
        ({"dtype": "float16"}, "dtype must be"),
        ({"chunk_size": 0}, "chunk_size must be"),
    ],
)
def test_bad_hyper_parameters_fail_before_work(kwargs, message):
    X, y = torch.randn(10, 3), torch.randn(10)
    with pytest.raises(ValueError, match=message):
        OneStepNetwork(**kwargs).fit(X, y)


def test_bad_data_fails_with_one_line():
    net = OneStepNetwork(width=4)
    with pytest.raises(ValueError, match="y must be 1-D"):
        net.fit(torch.randn(10, 3), torch.randn(9))
    with pytest.raises(ValueError, match="finite"):
        net.fit(torch.full((10, 3), math.nan), torch.randn(10))
    with pytest.raises(ValueError, match="not fitted"):
        net.predict(torch.randn(2, 3))
    with pytest.raises(ValueError, match="ridge_lambda = 0 with a singular"):
        OneStepNetwork(width=40, ridge_lambda=0.0).fit(torch.randn(10, 3), torch.randn(10))


@pytest.mark.slow
def test_learns_the_paper_target_below_the_quadratic_plateau():
    """paper_target(10), width 100, noise variance 1: risk(10⁴) ≪ 0.5 and risk(10⁵) < risk(10⁴).

    Measured means are ≈ 0.07 (n = 10⁴) and ≈ 0.02 (n = 10⁵); the test-set standard error
    of each risk is ≤ 0.02 with n_test = 5·10⁴. Thresholds 0.25 and "strictly smaller" are
    > 8 standard errors away from the measured values.
    """
    target = rl.paper_target(10)
    risks = {}
    for n in (10_000, 100_000):
        values = []
        for seed in range(3):
            stream = rl.DataStream(target, noise=1.0, seed=seed)
            net = OneStepNetwork(width=100, seed=seed).fit_stream(stream, n, n_holdout=20_000)
            values.append(rl.excess_risk(net, target, n_test=50_000, seed=100 + seed).risk)
        risks[n] = sum(values) / 3
    assert risks[10_000] < 0.25
    assert risks[100_000] < risks[10_000]


@pytest.mark.slow
def test_d_squared_law_and_alignment():
    """Random rank-2 degree-4 targets: at n = 16·d² the risk is about the same for d = 16
    and d = 64 (measured 0.21 and 0.17, 2 seeds), and subspace alignment grows with n/d².
    Tolerance: a factor 2 between the d's (risk at n/d² = 1 is ≈ 0.7–1.0, so a method
    that needed n ∝ d^p with p > 2 would fail by far more)."""
    results = {}
    for d in (16, 64):
        for ratio in (1, 16):
            risk = align = 0.0
            for seed in range(2):
                target = rl.MultiIndexTarget.random(d=d, r=2, degree=4, seed=seed)
                stream = rl.DataStream(target, noise=1.0, seed=seed)
                net = OneStepNetwork(width=256, seed=seed).fit_stream(stream, ratio * d * d, 20_000)
                risk += rl.excess_risk(net, target, n_test=20_000, seed=50).risk / 2
                align += rl.subspace_alignment(net.W_, target.U) / 2
            results[d, ratio] = risk, align
    assert (
        results[64, 16][0] < 2 * results[16, 16][0] and results[16, 16][0] < 2 * results[64, 16][0]
    )
    for d in (16, 64):
        assert results[d, 16][1] > results[d, 1][1] + 0.3
        assert results[d, 16][0] < 0.5 * results[d, 1][0]
