"""Kernel baselines: closed-form kernels vs Monte Carlo, KernelRidge vs scikit-learn, Falkon vs
exact, NTK primal vs dual, random features vs Algorithm 1, streaming, bad input."""

import math

import numpy as np
import pytest
import torch
from sklearn.kernel_ridge import KernelRidge as SklearnKernelRidge

import replearn as rl
from replearn.kernels import (
    ntk_kernel,
    ntk_kernel_diagonal,
    rf_kernel,
    rf_kernel_diagonal,
)
from replearn.learners import kernel_ridge as kernel_ridge_module
from replearn.learners import ntk as ntk_module
from replearn.learners import random_features as random_features_module
from replearn.learners.kernel_ridge import KernelRidge
from replearn.learners.ntk import NTKRegression
from replearn.learners.one_step import OneStepNetwork
from replearn.learners.random_features import RandomFeatures
from replearn.learners.tangent_gram import TangentGram
from replearn.network import relu_features, symmetric_init

F64 = torch.float64


ACTIVATIONS = ["relu", "tanh", "erf", "sigmoid", "abs", "quadratic", "linear", "hermite:3"]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_kernels_of_each_activation_match_monte_carlo(activation):
    """K_rf (σ_b² = 1) and K_ntk (σ_b² = 0 and 1) of each σ against the width-10⁵ average of
    independent neurons w ~ N(0, I/d), b ~ N(0, σ_b²), for every pair of the 9 points.

    Per neuron the finite kernel is v(x, x') = σ(u)σ(v) [+ σ′(u)σ′(v)(x·x' + 1)], i.i.d. over
    neurons with mean K(x, x'); the width average has standard error sd(v)/√m (sd from the
    same sample). We allow 4.5 standard errors: under the normal approximation a correct
    kernel fails one of the 3 × 45 checks per σ with probability ≤ 135 × 6.8·10⁻⁶ ≈ 0.1 %;
    the seeds are fixed, so the test is deterministic. The diagonal functions must equal the
    kernels' diagonals (both exact: 1e-9 covers the Mehler truncation bound 1e-10)."""
    d, width = 10, 100_000
    X = _mc_points(d)
    sigma = rl.activations.resolve_activation(activation)
    g = torch.Generator().manual_seed(17)
    W = torch.randn(width, d, generator=g, dtype=F64) / math.sqrt(d)
    b = torch.randn(width, generator=g, dtype=F64)
    upper = torch.triu_indices(9, 9)
    for kind, variance in (("rf", 1.0), ("ntk", 0.0), ("ntk", 1.0)):
        pre = X @ W.T + math.sqrt(variance) * b  # (9, m)
        value, slope = sigma(pre), sigma.derivative(pre)
        units = value[:, None] * value[None, :]
        if kind == "ntk":
            units += slope[:, None] * slope[None, :] * (X @ X.T + 1.0)[:, :, None]
        kernel, diagonal = (
            (rf_kernel, rf_kernel_diagonal) if kind == "rf" else (ntk_kernel, ntk_kernel_diagonal)
        )
        closed = kernel(X, X, variance, activation=activation)
        mean, stderr = units.mean(2), units.std(2) / math.sqrt(width)
        deviation = (mean - closed).abs()[upper[0], upper[1]]
        allowed = 4.5 * stderr[upper[0], upper[1]] + 1e-12
        assert (deviation <= allowed).all(), (kind, variance, (deviation / allowed).max())
        torch.testing.assert_close(
            closed.diagonal(), diagonal(X, variance, activation=activation), rtol=1e-7, atol=1e-9
        )


def _custom(name):
    """The same σ as a user's pair: no closed form, so the Mehler series with quadrature."""
    sigma = rl.activations.resolve_activation(name)
    return rl.activations.Activation.custom(sigma.function, sigma.derivative, "mine")


@pytest.mark.parametrize("activation", ["erf", "linear", "quadratic", "hermite:3"])
def test_the_quadrature_path_agrees_with_the_closed_forms(activation):
    """σ's closed form (erf; Mehler's exact finite sum for polynomials) and the general path
    (the series with trapezoidal-rule coefficients, the pair rule near ρ = ±1) compute the
    same expectations: they agree to 1e-9 relative (the truncation bound is 1e-10 of
    √(E σ(u)² E σ(v)²); the quadratures are at rounding level, see the next test)."""
    X = _mc_points(6)
    for kernel, variance in ((rf_kernel, 1.0), (ntk_kernel, 0.0)):
        exact = kernel(X, X, variance, activation=activation)
        general = kernel(X, X, variance, activation=_custom(activation))
        torch.testing.assert_close(general, exact, rtol=1e-9, atol=1e-9 * float(exact.abs().max()))


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_the_quadratures_have_converged(monkeypatch, activation):
    """Convergence checks of the general path's three approximations, for σ without a closed
    form at s = √(‖x‖²/d + σ_b²) up to ≈ 2.3 (the points include 2x):

    - the trapezoidal rule for ĉ_k(s): step 0.05 → 0.025 and range 30 → 40 change K by < 1e-12;
    - the Mehler truncation after K = 128 terms against the pair rule everywhere (tolerance
      −1: every entry by quadrature over (z₁, z₂)): < 1e-9 relative (bound 1e-10, plus the
      pair rule's own error);
    - the pair rule: step 0.1 → 0.07 changes it by < 1e-10.
    """
    from replearn import kernels

    X = torch.cat([_mc_points(6), 2 * _mc_points(6)[:2]])
    sigma = _custom(activation)
    base = rf_kernel(X, X, 1.0, activation=sigma)
    scale = float(base.abs().max())
    monkeypatch.setattr(kernels, "QUADRATURE_STEP", 0.025)
    monkeypatch.setattr(kernels, "QUADRATURE_RANGE", 40.0)
    finer = rf_kernel(X, X, 1.0, activation=sigma)
    torch.testing.assert_close(finer, base, rtol=0, atol=1e-12 * scale)
    monkeypatch.undo()
    monkeypatch.setattr(kernels, "MEHLER_TOLERANCE", -1.0)
    by_pairs = rf_kernel(X, X, 1.0, activation=sigma)
    torch.testing.assert_close(by_pairs, base, rtol=0, atol=1e-9 * scale)
    monkeypatch.setattr(kernels, "PAIR_STEP", 0.07)
    torch.testing.assert_close(
        rf_kernel(X, X, 1.0, activation=sigma), by_pairs, rtol=0, atol=1e-10 * scale
    )


@pytest.fixture(scope="module")
def problem():
    target = rl.paper_target(8)
    stream = rl.DataStream(target, noise=0.5, seed=3, dtype=F64)
    X, y = stream.get(0, 600)
    Xh, yh = stream.split("holdout").get(0, 800)
    Xt, _ = stream.split("test").get(0, 300)
    return target, stream, X, y, Xh, yh, Xt


def _relative(a, b) -> float:
    a, b = torch.as_tensor(a, dtype=F64), torch.as_tensor(b, dtype=F64)
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


# -- closed-form kernels ------------------------------------------------------------------
def _mc_points(d: int) -> torch.Tensor:
    """Gaussian points plus the awkward pairs: x' = x (θ = 0), x' = −x (θ = π), a short x."""
    g = torch.Generator().manual_seed(11)
    X = torch.randn(6, d, generator=g, dtype=F64)
    return torch.cat([X, X[:1], -X[1:2], 0.1 * X[2:3]])


@pytest.mark.parametrize("kind", ["rf", "ntk-zero-bias", "ntk-normal-bias"])
def test_closed_form_kernels_match_monte_carlo_at_width_1e5(kind):
    """The estimators' own finite-width kernels, averaged over width m = 10⁵, against the
    closed forms, for every pair of 9 points.

    Standard error: partners j, j + m/2 share w_j, so the m/2 pairs are the i.i.d. units.
    Per unit the finite kernel is v_p(x, x') = [φ_p(x)φ_p(x') + φ_{p'}(x)φ_{p'}(x')]/2 (RF:
    the partners' biases differ; NTK: the partners' terms are identical), E v_p = K(x, x'),
    and the width average is the mean of m/2 i.i.d. v_p, whose standard error is
    sd(v_p)/√(m/2) (sd estimated from the same units). We allow 4 standard errors: under the
    normal approximation a correct kernel fails one of the 3 × 45 checks with probability
    ≤ 135 × 6.3·10⁻⁵ ≈ 1 % — and the seed is fixed, so the test is deterministic.
    """
    d, width = 10, 100_000
    half = width // 2
    X = _mc_points(d)
    if kind == "rf":
        W, b = RandomFeatures(width=width, seed=5, dtype=F64).initial_layer(d)
        F = relu_features(X, W, b)  # (9, m)
        units = (F[:, None, :half] * F[None, :, :half] + F[:, None, half:] * F[None, :, half:]) / 2
        closed = rf_kernel(X, X)
        closed.diagonal().copy_(rf_kernel_diagonal(X))
    else:
        bias = "zero" if kind == "ntk-zero-bias" else "normal"
        net = NTKRegression(width=width, bias=bias, seed=5, dtype=F64).initial_network(d)
        assert torch.equal(net.W[:half], net.W[half:]) and torch.equal(net.b[:half], net.b[half:])
        pre = X @ net.W[:half].T + net.b[:half]  # (9, m/2) distinct neurons
        relu, gate = pre.relu(), (pre >= 0).to(F64)
        # a_j² = 1: ReLU(u)ReLU(u') + 1[u ≥ 0]1[u' ≥ 0](x·x' + 1)
        units = (
            relu[:, None] * relu[None, :]
            + gate[:, None] * gate[None, :] * (X @ X.T + 1.0)[:, :, None]
        )
        variance = 0.0 if bias == "zero" else 1.0
        closed = ntk_kernel(X, X, bias_variance=variance)
        closed.diagonal().copy_(ntk_kernel_diagonal(X, bias_variance=variance))
    mean = units.mean(2)
    stderr = units.std(2) / math.sqrt(half)
    upper = torch.triu_indices(9, 9)
    deviation = (mean - closed).abs()[upper[0], upper[1]]
    allowed = 4 * stderr[upper[0], upper[1]] + 1e-12
    assert (deviation <= allowed).all(), (deviation / stderr[upper[0], upper[1]]).max()
    # the diagonal formula agrees with the arccos formula at θ = 0 (arccos loses half the
    # digits there: |Δθ| ≈ √(2ε) ≈ 2e-8)
    blocked = (ntk_kernel if kind != "rf" else rf_kernel)(
        X, X, *(() if kind == "rf" else (variance,))
    )
    torch.testing.assert_close(blocked.diagonal(), closed.diagonal(), rtol=1e-7, atol=0)


def test_ntk_finite_kernel_is_the_jacobian_gram_and_predictions_are_linearised(problem):
    """Φ = ∂f/∂(a, W, b) at θ⁰ by autograd (all m(d + 2) columns): ΦΦᵀ equals the fitted
    features' Gram and the dual-form kernel, and predictions are f(θ⁰) + Φ·(θ − θ⁰)."""
    _, _, X, y, *_ = problem
    X, y = X[:40], y[:40]
    model = NTKRegression(width=12, bias="normal", ridge_lambda=1e-2, dtype=F64, seed=2)
    model.fit(X, y)
    net = model.network0_
    params = [net.a.clone().requires_grad_(True), net.W.clone().requires_grad_(True),
              net.b.clone().requires_grad_(True)]  # fmt: skip
    rows = []
    for x in X:
        a, W, b = params
        f = torch.relu(W @ x + b) @ a
        grads = torch.autograd.grad(f, params)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    jacobian = torch.stack(rows)  # (n, m(d + 2))
    assert jacobian.shape[1] == 12 * (X.shape[1] + 2)
    gram = jacobian @ jacobian.T
    torch.testing.assert_close(
        model._features(X) @ model._features(X).T, gram, rtol=1e-12, atol=1e-12
    )
    torch.testing.assert_close(model._kernel(X, X), gram, rtol=1e-12, atol=1e-12)
    displacement = torch.cat([model.delta_a_, model.delta_W_.reshape(-1), model.delta_b_])
    linearised = model.alpha_ + X @ model.beta_ + jacobian @ displacement
    torch.testing.assert_close(model.predict(X), linearised, rtol=1e-10, atol=1e-12)


NTK_INITIALISATIONS = [  # (first layer, second layer, bias): every option at least once
    ("gaussian", "paper", "zero"),
    ("gaussian", "paper", "none"),
    ("unit_rows", "signs", "normal"),
    ("orthogonal", "gaussian", "zero"),
    ("given", "constant", "none"),
    ("given", "given", "normal"),
]


def _ntk_model(activation, output_scale, init, d, g, **kwargs):
    first, second, bias = init
    width = 12 if second == "paper" else 7
    return NTKRegression(
        width=width, activation=activation, output_scale=output_scale, bias=bias,
        first_layer=torch.randn(width, d, generator=g, dtype=F64) if first == "given" else first,
        second_layer=torch.randn(width, generator=g, dtype=F64) if second == "given" else second,
        directions=torch.eye(d, dtype=F64)[:1] if first == "orthogonal" else None,
        dtype=F64, seed=2, **kwargs,
    )  # fmt: skip


@pytest.mark.parametrize("init", NTK_INITIALISATIONS, ids=lambda i: "-".join(i))
@pytest.mark.parametrize("output_scale", [1.0, "1/sqrt(m)", "1/m"], ids=str)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_ntk_tangent_features_are_autograds_for_every_network(
    problem, activation, output_scale, init
):
    """For every σ × c × initialisation: J = ∂f/∂(a, W, b) at θ⁰ by autograd of the network
    written here, f = c·σ(Wx + b)·a (all m(d + 2) columns; no bias columns for bias="none"),
    has JJᵀ equal to the fitted features' Gram and to the dual form's kernel, and the
    predictions are α + β·x + f(x; θ⁰) + J·(θ − θ⁰) (float64, to rounding)."""
    _, _, X, y, *_ = problem
    X, y = X[:40], y[:40]
    g = torch.Generator().manual_seed(5)
    model = _ntk_model(activation, output_scale, init, X.shape[1], g, ridge_lambda=1e-2)
    model.fit(X, y)
    net = model.network0_
    sigma, c = rl.activations.resolve_activation(activation), net.output_scale
    with_bias = model.bias != "none"
    a0, W0, b0 = (t.clone().requires_grad_(True) for t in (net.a, net.W, net.b))
    params = [a0, W0, b0] if with_bias else [a0, W0]
    rows = []
    for x in X:
        f = c * (sigma.function(W0 @ x + b0) @ a0)
        rows.append(torch.cat([grad.reshape(-1) for grad in torch.autograd.grad(f, params)]))
    jacobian = torch.stack(rows)
    gram = jacobian @ jacobian.T
    scale = float(gram.abs().max())
    features = model._features(X)
    assert features.shape[1] == model.n_features(X.shape[1])
    torch.testing.assert_close(features @ features.T, gram, rtol=1e-10, atol=1e-12 * scale)
    torch.testing.assert_close(model._kernel(X, X), gram, rtol=1e-10, atol=1e-12 * scale)
    displacement = [model.delta_a_, model.delta_W_.reshape(-1)] + (
        [model.delta_b_] if with_bias else []
    )
    if not with_bias:
        assert not model.delta_b_.any()
    f0 = c * (sigma.function(X @ net.W.T + net.b) @ net.a)
    linearised = model.alpha_ + X @ model.beta_ + f0 + jacobian @ torch.cat(displacement)
    torch.testing.assert_close(model.predict(X), linearised, rtol=1e-9, atol=1e-9)
    if init[1] == "paper":
        assert f0.abs().max() < 1e-12  # the symmetric pairs: f(·; θ⁰) ≡ 0


@pytest.mark.parametrize(
    ("activation", "init"),
    [("tanh", ("gaussian", "paper", "zero")), ("erf", ("unit_rows", "signs", "normal")),
     ("quadratic", ("given", "given", "none"))],
)  # fmt: skip
def test_ntk_primal_and_dual_agree_for_other_networks(problem, activation, init):
    """The same ridge problem solved on the features (primal) and on the finite kernel (dual):
    with λ = 'auto' both choose the same λ, and their predictions agree to 10·cond·ε₆₄ relative
    — two backward-stable float64 solves of G + (λ/2)I, cond = its condition number (1e-2:
    cond ≈ 1e4; the chosen λ can be 1e-8: cond ≈ 1e10)."""
    _, _, X, y, Xh, yh, Xt = problem
    X, y = X[:150], y[:150]
    for lam in (1e-2, "auto"):
        fits = [
            _ntk_model(activation, "1/sqrt(m)", init, X.shape[1], torch.Generator().manual_seed(5),
                       form=form, ridge_lambda=lam).fit(X, y, Xh[:200], yh[:200])
            for form in ("primal", "dual")
        ]  # fmt: skip
        assert fits[0].ridge_lambda_ == pytest.approx(fits[1].ridge_lambda_)
        features = fits[0]._features(X)
        eigenvalues = torch.linalg.eigvalsh(features.T @ features / len(X))
        half_lambda = float(fits[0].ridge_lambda_) / 2
        cond = float(eigenvalues.max() + half_lambda) / float(
            eigenvalues.min().clamp_min(0) + half_lambda
        )
        tolerance = max(1e-12, 10 * cond * torch.finfo(F64).eps)
        assert _relative(fits[1].predict(Xt), fits[0].predict(Xt)) <= tolerance


@pytest.mark.parametrize("init", [("gaussian", "signs", "zero"), ("gaussian", "paper", "normal")])
def test_ntk_structured_relu_path_for_other_scales_and_inits(problem, monkeypatch, init):
    """ReLU with another output scale or without the pairs keeps the structured Gram and
    predictor (``TangentGram``/``TangentPredictor`` with its feature scale): forced on at
    small width, the fit equals the explicit-features fit (1e-8 relative: the two sum the
    same products in another order)."""
    _, _, X, y, Xh, yh, Xt = problem
    fits = []
    # the structured Gram serves the wide primal form's λ search (p ≥ this): force it too
    monkeypatch.setattr(NTKRegression, "lambda_search_min_features", 1)
    for min_neurons in (10**9, 1):
        monkeypatch.setattr(TangentGram, "min_neurons", min_neurons)
        model = _ntk_model("relu", "1/sqrt(m)", init, X.shape[1], torch.Generator().manual_seed(5),
                           form="primal", ridge_lambda="auto")  # fmt: skip
        fits.append(model.fit(X, y, Xh, yh))
        assert model._structured() == (min_neurons == 1)
    assert fits[0].ridge_lambda_ == fits[1].ridge_lambda_
    assert _relative(fits[1].predict(Xt), fits[0].predict(Xt)) <= 1e-8


@pytest.mark.parametrize("activation", ["tanh", "erf", "quadratic"])
def test_wide_ntk_gram_tends_to_the_kernel_of_its_activation(activation):
    """The finite-width kernel of NTKRegression (paired, c = 1, b⁰ = 0) over m = 4·10⁴
    neurons, divided by m, against ``ntk_kernel`` of the same σ (σ_b² = 0).

    K_m = Σ_{j<m/2} v_j with v_j = 2·[σ(u_j)σ(u'_j) + σ′(u_j)σ′(u'_j)(x·x' + 1)] (a_j² = 1) over
    the m/2 i.i.d. pairs, so K_m/m = mean_j(v_j/2), E = K_ntk; its standard error is
    sd(v_j/2)/√(m/2). 4.5 standard errors for 45 entries: a correct kernel fails with
    probability ≤ 45 × 6.8·10⁻⁶ (normal approximation); fixed seed."""
    d, width = 10, 40_000
    X = _mc_points(d)
    model = NTKRegression(width=width, activation=activation, dtype=F64, seed=7)
    model.network0_ = model.initial_network(d)
    W, b, a = model._units()
    sigma = model.network0_.activation
    pre = X @ W.T + b
    value, slope = sigma(pre), sigma.derivative(pre) * a
    units = (
        value[:, None] * value[None, :]
        + slope[:, None] * slope[None, :] * (X @ X.T + 1.0)[:, :, None]
    )
    finite = model._kernel(X, X) / width
    torch.testing.assert_close(finite, units.mean(2), rtol=1e-10, atol=1e-10)
    limit = ntk_kernel(X, X, 0.0, activation=activation)
    stderr = units.std(2) / math.sqrt(width // 2)
    upper = torch.triu_indices(9, 9)
    deviation = (finite - limit).abs()[upper[0], upper[1]]
    assert (deviation <= 4.5 * stderr[upper[0], upper[1]] + 1e-12).all()


# -- KernelRidge vs scikit-learn ----------------------------------------------------------
@pytest.mark.parametrize("dtype", [F64, torch.float32])
def test_kernel_ridge_matches_sklearn_precomputed(problem, dtype):
    """Same kernel matrix, λ ↔ alpha = n·λ/2 (sklearn minimises ‖y − Kc‖² + alpha·cᵀKc, we
    minimise (1/n)‖y − Kc‖² + (λ/2)·cᵀKc): dual coefficients to 1e-8 relative.

    Both are backward-stable Cholesky solves (ours in float64 directly, or float32 refined to
    the float64 solution), so they differ by ≲ cond(K + μI)·ε₆₄ ≈ 10⁴·10⁻¹⁶; 1e-8 leaves
    room for the float32 path's stopping rule (‖res‖ ≤ ‖c‖‖A‖ε√n).
    """
    _, _, X, y, _, _, Xt = problem
    n, lam = X.shape[0], 3e-3
    model = KernelRidge(kernel="ntk", ridge_lambda=lam, solver="exact", dtype=dtype).fit(X, y)
    assert model.factorization_ == ("float64" if dtype == F64 else "float32+refinement")
    r = (y - model.alpha_.double() - X @ model.beta_.double()).numpy()
    K = ntk_kernel(X, X)
    K.diagonal().copy_(ntk_kernel_diagonal(X))  # replearn's exact k(x, x) on the diagonal
    reference = SklearnKernelRidge(alpha=n * lam / 2, kernel="precomputed").fit(K.numpy(), r)
    assert _relative(model.dual_coef_, reference.dual_coef_) <= 1e-8
    expected = (
        model.alpha_.double()
        + Xt @ model.beta_.double()
        + ntk_kernel(Xt, X) @ torch.from_numpy(reference.dual_coef_)
    )
    tolerance = 1e-8 if dtype == F64 else 1e-5  # float32 kernel blocks in predict
    assert _relative(model.predict(Xt), expected) <= tolerance


@pytest.mark.parametrize(
    ("kernel", "activation"), [("ntk", "tanh"), ("rf", "erf"), ("ntk", "quadratic")]
)
def test_kernel_ridge_takes_the_students_activation(problem, kernel, activation):
    """KernelRidge(activation=σ) is kernel ridge with σ's kernel (``kernels``): the same dual
    coefficients as scikit-learn's on that matrix, to 1e-8 relative (as above)."""
    _, _, X, y, _, _, Xt = problem
    X, y, n, lam = X[:200], y[:200], 200, 3e-3
    model = KernelRidge(kernel=kernel, activation=activation, ridge_lambda=lam, dtype=F64)
    model.fit(X, y)
    r = (y - model.alpha_.double() - X @ model.beta_.double()).numpy()
    function, diagonal = (
        (ntk_kernel, ntk_kernel_diagonal) if kernel == "ntk" else (rf_kernel, rf_kernel_diagonal)
    )
    K = function(X, X, activation=activation)
    K.diagonal().copy_(diagonal(X, activation=activation))
    reference = SklearnKernelRidge(alpha=n * lam / 2, kernel="precomputed").fit(K.numpy(), r)
    assert _relative(model.dual_coef_, reference.dual_coef_) <= 1e-8
    relu = KernelRidge(kernel=kernel, ridge_lambda=lam, dtype=F64).fit(X, y)
    assert _relative(model.predict(Xt), relu.predict(Xt)) > 1e-3  # σ changes the kernel
    with pytest.raises(ValueError, match="activation applies to kernel='ntk' or 'rf'"):
        KernelRidge(kernel=lambda A, B: A @ B.T, activation="tanh").fit(X, y)


def test_lambda_path_solution_matches_sklearn_at_the_chosen_lambda(problem):
    """λ = 'auto': the eigendecomposition path's coefficients at the chosen λ are the
    Cholesky solution there, and the chosen λ minimises the holdout curve kept on the model."""
    _, _, X, y, Xh, yh, _ = problem
    model = KernelRidge(kernel="rf", solver="exact", dtype=F64).fit(X, y, Xh, yh)
    assert model.lambda_criterion_name_ == "holdout_mse"
    assert model.lambda_criterion_.shape == model.lambda_path_.shape
    best = int(torch.argmin(model.lambda_criterion_))
    assert model.ridge_lambda_ == float(model.lambda_path_[best])
    assert 0 < best < len(model.lambda_path_) - 1  # an interior optimum on this problem
    r = (y - model.alpha_.double() - X @ model.beta_.double()).numpy()
    K = rf_kernel(X, X)
    K.diagonal().copy_(rf_kernel_diagonal(X))
    n = X.shape[0]
    reference = SklearnKernelRidge(alpha=n * model.ridge_lambda_ / 2, kernel="precomputed")
    reference.fit(K.numpy(), r)
    assert _relative(model.dual_coef_, reference.dual_coef_) <= 1e-8
    # the holdout curve is the holdout MSE of each λ's predictor
    refit = KernelRidge(kernel="rf", ridge_lambda=float(model.lambda_path_[3]), dtype=F64)
    refit.fit(X, y)
    assert float(((refit.predict(Xh) - yh) ** 2).mean()) == pytest.approx(
        float(model.lambda_criterion_[3]), rel=1e-8
    )
    gcv = KernelRidge(kernel="rf", solver="exact", dtype=F64).fit(X, y)
    assert gcv.lambda_criterion_name_ == "gcv" and math.isfinite(gcv.ridge_lambda_)


def test_float32_factorisation_falls_back_to_float64_when_it_cannot_refine(problem):
    """A rank-d linear kernel with μ ≪ ε₃₂‖K‖: float32 Cholesky breaks down, float64 solves it."""
    _, _, X, y, *_ = problem
    n, mu = X.shape[0], 1e-6
    linear = KernelRidge(kernel=lambda A, B: A @ B.T, ridge_lambda=2 * mu / n, solver="exact")
    linear.fit(X, y)
    assert linear.factorization_ == "float64"
    r = (y - linear.alpha_.double() - X @ linear.beta_.double()).numpy()
    K = (X @ X.T).numpy()
    reference = SklearnKernelRidge(alpha=mu, kernel="precomputed").fit(K, r)
    # cond(K + μI) ≈ ‖K‖/μ ≈ 5·10⁹: both solutions agree to cond·ε ≈ 1e-6
    assert _relative(linear.dual_coef_, reference.dual_coef_) <= 1e-4


def test_linear_kernel_ridge_is_primal_ridge_with_the_same_lambda(problem):
    """k(x, x') = x·x' gives the predictor of min (1/n)‖Xw − r‖² + (λ/2)‖w‖²: the λ convention."""
    _, _, X, y, _, _, Xt = problem
    n, lam = X.shape[0], 0.05
    model = KernelRidge(kernel=lambda A, B: A @ B.T, ridge_lambda=lam, dtype=F64).fit(X, y)
    r = y - model.alpha_ - X @ model.beta_
    w = torch.linalg.solve(X.T @ X / n + lam / 2 * torch.eye(X.shape[1], dtype=F64), X.T @ r / n)
    torch.testing.assert_close(model.predict(Xt), model.alpha_ + Xt @ model.beta_ + Xt @ w)


# -- Falkon --------------------------------------------------------------------------------
def test_falkon_with_every_point_as_a_centre_is_the_exact_solution(problem):
    """M = n: the Nyström problem is kernel ridge itself, and the Falkon preconditioner is
    exact (K_nMᵀK_nM/n = K²/M), so CG converges in a few steps to the exact solution."""
    _, _, X, y, _, _, Xt = problem
    exact = KernelRidge(ridge_lambda=1e-3, solver="exact", dtype=F64).fit(X, y)
    falkon = KernelRidge(
        ridge_lambda=1e-3, solver="falkon", n_centers=X.shape[0], tol=1e-12, dtype=F64
    ).fit(X, y)
    assert falkon.solver_ == "falkon" and bool(falkon.converged_.all()) and falkon.n_iter_ <= 5
    assert torch.equal(falkon.X_fit_, X)  # all centres, in order
    assert _relative(falkon.predict(Xt), exact.predict(Xt)) <= 1e-8


@pytest.mark.slow
def test_falkon_test_risk_is_close_to_exact():
    """n = 4000, d = 8, noise variance 1, both with λ on the same holdout: the excess risks
    (on a common 10⁵ test set, so the comparison has no test-set noise of its own) agree
    within 3 %. Measured: 0.540 (exact) and 0.544 (Falkon, M = 16√n = 1024): +0.8 %."""
    target = rl.paper_target(8)
    stream = rl.DataStream(target, noise=1.0, seed=0, dtype=F64)
    X, y = stream.get(0, 4000)
    Xh, yh = stream.split("holdout").get(0, 4000)
    exact = KernelRidge(solver="exact").fit(X, y, Xh, yh)
    falkon = KernelRidge(solver="falkon", n_centers=1024).fit(X, y, Xh, yh)
    risk_exact = rl.excess_risk(exact, target, n_test=100_000, seed=4).risk
    risk_falkon = rl.excess_risk(falkon, target, n_test=100_000, seed=4).risk
    assert abs(risk_falkon - risk_exact) <= 0.03 * risk_exact


# -- NTK primal vs dual --------------------------------------------------------------------
@pytest.mark.parametrize("ridge_lambda", [1e-4, 0.3, "auto"])
def test_ntk_primal_and_dual_forms_give_the_same_predictions(problem, ridge_lambda):
    """p = (m/2)(d + 2) = 100 features, n = 300: both forms solve the same ridge problem
    (predictions depend on the features only through K = ΦΦᵀ). With λ = 'auto' both see the
    same λ-path and holdout, so they choose the same λ."""
    _, _, X, y, Xh, yh, Xt = problem
    X, y = X[:300], y[:300]
    fits = {
        form: NTKRegression(width=20, form=form, ridge_lambda=ridge_lambda, dtype=F64, seed=4).fit(
            X, y, Xh, yh
        )
        for form in ("primal", "dual")
    }
    primal, dual = fits["primal"], fits["dual"]
    assert primal.form_ == "primal" and dual.form_ == "dual"
    assert primal.ridge_lambda_ == pytest.approx(dual.ridge_lambda_, rel=1e-12)
    # two backward-stable solves of a system with cond ≲ 1e6 (smallest λ): 1e-8 relative
    assert _relative(dual.predict(Xt), primal.predict(Xt)) <= 1e-8
    assert _relative(dual.delta_W_, primal.delta_W_) <= 1e-6
    if ridge_lambda == "auto":  # the smallest λ's solves are the worst conditioned (≈ 1e9)
        torch.testing.assert_close(
            dual.lambda_criterion_, primal.lambda_criterion_, rtol=1e-6, atol=0
        )


def test_ntk_form_auto_picks_the_smaller_system(problem):
    _, _, X, y, *_ = problem
    assert NTKRegression(width=20, ridge_lambda=0.1).fit(X, y).form_ == "primal"  # 100 ≤ 600
    assert NTKRegression(width=200, ridge_lambda=0.1).fit(X, y).form_ == "dual"  # 1000 > 600


# -- random features -------------------------------------------------------------------------
def test_random_features_are_algorithm_one_without_the_step(problem):
    """Same W⁰ as the symmetric init, same biases as OneStepNetwork's step 3, and the head
    solves the ridge normal equations on the preprocessed labels."""
    _, _, X, y, *_ = problem
    lam = 1e-3
    rf = RandomFeatures(width=40, ridge_lambda=lam, dtype=F64, seed=6).fit(X, y)
    one_step = OneStepNetwork(width=40, ridge_lambda=lam, dtype=F64, seed=6).fit(X, y)
    assert torch.equal(rf.W_, symmetric_init(40, X.shape[1], seed=6, dtype=F64).W)
    assert torch.equal(rf.b_, one_step.b_)
    torch.testing.assert_close(rf.alpha_, one_step.alpha_)
    F = relu_features(X, rf.W_, rf.b_)
    r = y - rf.alpha_ - X @ rf.beta_
    n = X.shape[0]
    system = F.T @ F / n + lam / 2 * torch.eye(40, dtype=F64)
    residual = torch.linalg.norm(system @ rf.a_ - F.T @ r / n)
    assert residual <= 1e-10 * torch.linalg.norm(F.T @ r / n)
    torch.testing.assert_close(rf.predict(X), rf.alpha_ + X @ rf.beta_ + F @ rf.a_)


def test_random_features_transfer_refits_the_head_only(problem):
    """Same features, new α, β, a; for random features that is a fresh fit with the same seed."""
    target, stream, X, y, *_ = problem
    model = RandomFeatures(width=32, dtype=F64, seed=2).fit_stream(stream, 600, n_holdout=500)
    new_task = rl.paper_transfer_target(8, u=target.U)
    new_stream = rl.DataStream(new_task, noise=0.5, seed=4, dtype=F64)
    moved = model.transfer_stream(new_stream, 400, n_holdout=500)
    assert torch.equal(moved.W_, model.W_) and torch.equal(moved.b_, model.b_)
    assert not torch.equal(moved.a_, model.a_) and not hasattr(model, "n_transfer_samples_")
    fresh = RandomFeatures(width=32, dtype=F64, seed=2).fit_stream(new_stream, 400, n_holdout=500)
    torch.testing.assert_close(moved.predict(X), fresh.predict(X), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="expects 8"):
        model.transfer(torch.randn(50, 3, dtype=F64), torch.randn(50, dtype=F64))


# -- streaming ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomFeatures(width=32, dtype=F64, seed=1),
        lambda: NTKRegression(width=16, form="primal", dtype=F64, seed=1),
        lambda: NTKRegression(width=16, form="dual", dtype=F64, seed=1),
        lambda: KernelRidge(kernel="ntk", solver="exact", dtype=F64, seed=1),
    ],
    ids=["random-features", "ntk-primal", "ntk-dual", "kernel-ridge"],
)
def test_fit_and_fit_stream_agree(problem, make):
    _, stream, X, y, *_ = problem
    n, n_holdout = 500, 700
    Xh, yh = stream.split("holdout").get(0, n_holdout)
    small_chunks = make().set_params(chunk_size=128).fit_stream(stream, n, n_holdout=n_holdout)
    arrays = make().fit(X[:n], y[:n], Xh, yh)
    assert small_chunks.ridge_lambda_ == pytest.approx(arrays.ridge_lambda_, rel=1e-10)
    Xt = X[n:]
    # chunking changes only the summation order; the head's ill-conditioning (tiny λ) can
    # amplify that ~1e-16 to ~1e-9
    torch.testing.assert_close(small_chunks.predict(Xt), arrays.predict(Xt), rtol=1e-7, atol=1e-8)


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: RandomFeatures(width=7), "even integer ≥ 2"),
        (lambda: RandomFeatures(width=0), "even integer ≥ 2"),
        (lambda: RandomFeatures(ridge_lambda=-1.0), "ridge_lambda must be"),
        (lambda: RandomFeatures(dtype="float16"), "dtype must be"),
        (lambda: NTKRegression(width=5), "even integer ≥ 2"),
        (lambda: NTKRegression(bias="uniform"), "bias must be one of"),
        (lambda: NTKRegression(activation="softmax"), "activation must be one of"),
        (lambda: NTKRegression(output_scale=0), "output_scale must be"),
        (lambda: NTKRegression(first_layer="orthogonal"), "needs directions"),
        (lambda: NTKRegression(second_layer="ones"), "second_layer must be one of"),
        (lambda: NTKRegression(width=5, second_layer=torch.ones(4)), "5 entries"),
        (lambda: NTKRegression(directions=[[math.nan, 0.0, 0.0]]), "directions have non-finite"),
        (lambda: KernelRidge(activation="hermite:99"), "activation must be 'hermite:k'"),
        (lambda: NTKRegression(form="kernel"), "form must be one of"),
        (lambda: NTKRegression(ridge_lambda=-0.5), "ridge_lambda must be"),
        (lambda: KernelRidge(kernel="rbf"), "kernel must be one of"),
        (lambda: KernelRidge(solver="cg"), "solver must be one of"),
        (lambda: KernelRidge(ridge_lambda=-1e-3), "ridge_lambda must be"),
        (lambda: KernelRidge(ridge_lambda=0.0), "ridge_lambda = 0"),
        (lambda: KernelRidge(n_centers=0), "n_centers must be"),
        (lambda: KernelRidge(tol=2.0), "tol must be"),
        (lambda: KernelRidge(kernel=lambda A, B: A @ B.T[:, :1]), r"must return shape \(n1, n2\)"),
        (lambda: KernelRidge(kernel=lambda A, B: (A @ B.T) * math.nan), "non-finite"),
        (lambda: KernelRidge(kernel=lambda A, B: "not a tensor"), "must return a tensor"),
        (lambda: RandomFeatures(width=40, ridge_lambda=0.0), "ridge_lambda = 0 needs n >= "),
        (lambda: NTKRegression(width=20, ridge_lambda=0.0), "ridge_lambda = 0 needs n >= "),
        (lambda: KernelRidge(solver="falkon"), "chooses λ on a holdout"),
    ],
)
def test_bad_input_fails_with_one_line_before_any_work(monkeypatch, make, message):
    """n = 30 samples, d = 3 (40 random features, (20/2)·(3 + 2) = 50 tangent features): every case must fail
    before a kernel matrix, a Gram matrix or a Falkon solve is started."""

    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the input was validated")

    for module, names in (
        (kernel_ridge_module, ("kernel_matrix", "exact_solve", "falkon")),
        (ntk_module, ("kernel_matrix", "exact_solve", "fit_ridge_head")),
        (random_features_module, ("fit_ridge_head",)),
    ):
        for name in names:
            monkeypatch.setattr(module, name, forbidden)
    X, y = torch.randn(30, 3, dtype=F64), torch.randn(30, dtype=F64)
    with pytest.raises(ValueError, match=message) as error:
        make().fit(X, y)
    assert "\n" not in str(error.value)


def test_bad_data_and_unfitted_models():
    X, y = torch.randn(30, 3), torch.randn(30)
    for model in (RandomFeatures(width=4), NTKRegression(width=4), KernelRidge()):
        with pytest.raises(ValueError, match="not fitted"):
            model.predict(X)
        with pytest.raises(ValueError, match="y must be 1-D"):
            model.fit(X, y[:-1])
        with pytest.raises(ValueError, match="finite"):
            model.fit(torch.full((30, 3), math.nan), y)
        with pytest.raises(ValueError, match="X_holdout and y_holdout"):
            model.fit(X, y, X_holdout=X)
    fitted = KernelRidge(ridge_lambda=0.1).fit(X, y)
    with pytest.raises(ValueError, match="expecting 3 features"):
        fitted.predict(torch.randn(5, 4))
    with pytest.raises(ValueError, match="Invalid parameter"):
        KernelRidge().set_params(alpha=1.0)


def test_solver_auto_uses_exact_when_it_fits(problem):
    _, _, X, y, *_ = problem
    assert KernelRidge(ridge_lambda=0.1).fit(X, y).solver_ == "exact"
    huge = KernelRidge(ridge_lambda=0.1)
    huge._check_params()
    assert huge._resolve_solver(10**7) == "falkon"


# -- the separation ------------------------------------------------------------------------------
def test_kernels_stall_at_the_quadratic_plateau_where_algorithm_one_does_not():
    """paper_target(10), noise variance 1, width 100, n = 10⁴, λ on 2·10⁴ holdout samples:
    random features and the NTK stay at or above ≈ 0.5 (the best quadratic predictor's
    risk; a kernel needs n ≈ d⁴ for the degree-4 part) while Algorithm 1 goes well below.
    Measured (seed 0): RF 0.82, NTK 0.72 (test-set standard errors 0.065: f*'s He₄ part
    makes the squared errors heavy-tailed), Algorithm 1 0.07 (SE 0.01); the thresholds 0.45
    and 0.25 are more than 4 and 15 standard errors away."""
    target = rl.paper_target(10)
    stream = rl.DataStream(target, noise=1.0, seed=0)
    risks = {}
    for name, model in (
        ("rf", RandomFeatures(width=100)),
        ("ntk", NTKRegression(width=100)),
        ("one_step", OneStepNetwork(width=100)),
    ):
        model.fit_stream(stream, 10_000, n_holdout=20_000)
        risks[name] = rl.excess_risk(model, target, n_test=100_000, seed=9).risk
    assert risks["rf"] >= 0.45 and risks["ntk"] >= 0.45, risks
    assert risks["one_step"] <= 0.25, risks
    assert np.isfinite(list(risks.values())).all()
