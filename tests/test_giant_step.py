"""GiantStepNetwork: steps = autograd's full-batch GD with a fixed second layer
(``later_steps="gradient"``; fresh and reused batches, chunked or not, with and without the
paired m/2 pass), residual steps = Algorithm 1's step on the refitted predictor's residual
(``later_steps="residual"``, the default), steps=1 is OneStepNetwork bit for bit, history_
diagnostics, one-line errors, a staircase target whose second direction two steps find and
one step misses, and default T = 2 against T = 1 on the targets of docs/beyond.md."""

import math
import pickle

import pytest
import torch

import replearn as rl
from replearn.learners.giant_step import GiantStepNetwork
from replearn.learners.sources import materialise
from replearn.metrics import direction_cosines, subspace_alignment
from replearn.network import symmetric_init
from replearn.targets import MultiIndexTarget


def _labels(X, y, spec):
    """The step's labels of one batch (identity: y − α − β·x; square: the unit-scale
    (t − m_T − β_T·x)/σ_s of t = y² − mean y²), written out independently."""
    n = X.shape[0]
    if spec is None:
        return y - y.mean() - X @ (y @ X / n)
    t = y * y - (y * y).mean()
    r = t - t.mean() - X @ (t @ X / n)
    return r / r.pow(2).mean().sqrt()


def _autograd_steps(X, y, width, seed, etas, decays, batch, scale, transforms):
    """W^t = W^{t−1} − η_t(∇L_t(W^{t−1}) + λ_t W^{t−1}), L_t = (1/n)Σ(c·aᵀReLU(W x) − s)²."""
    steps = len(etas)
    n = X.shape[0] // steps if batch == "fresh" else X.shape[0]
    init = symmetric_init(width, X.shape[1], seed, torch.float64)
    W, norms = init.W.clone(), []
    for t in range(steps):
        rows = slice(t * n, (t + 1) * n) if batch == "fresh" else slice(0, n)
        Xb, yb = X[rows], y[rows]
        s = _labels(Xb, yb, transforms[t])
        leaf = W.clone().requires_grad_(True)
        loss = ((scale * (torch.relu(Xb @ leaf.T) @ init.a) - s) ** 2).mean()
        (gradient,) = torch.autograd.grad(loss, leaf)
        new = W - etas[t] * (gradient + decays[t] * W)
        norms.append(float(torch.linalg.norm(new - W)))
        W = new
    return W, norms


CASES = {
    # (weight_decay, output_scale, label transforms): "paper" uses the paired pass at step 2
    "paper": ("paper", 1.0, [None, None, None]),
    "free_from_step_1": (0.05, 1.0, [None, None, None]),
    "mean_field_square": ("paper", "1/m", [None, "square", None]),
}


@pytest.mark.parametrize("chunk_size", [32_768, 53])
@pytest.mark.parametrize("batch", ["fresh", "reuse"])
@pytest.mark.parametrize("case", list(CASES))
def test_steps_are_autograd_full_batch_gd(case, batch, chunk_size):
    """float64: only summation orders differ (≈ n·ε ≈ 1e-13 relative per step, amplified by
    at most the few steps' Lipschitz factors), so 1e-10 catches any wrong sign, factor,
    mask or partner relation (e.g. assuming w_{j+m/2} = −w_j after step 2)."""
    decay, scale, transforms = CASES[case]
    d, width, seed, steps = 5, 12, 4, 3
    etas = [1.5, 0.4, 0.3] if scale == 1.0 else [60.0, 20.0, 20.0]
    target = rl.paper_target(d, seed=2)
    X, y = rl.sample(target, n=3 * 211, noise=0.5, seed=1, dtype=torch.float64)
    net = GiantStepNetwork(
        width=width, steps=steps, step_size=etas, weight_decay=decay, batch=batch,
        output_scale=scale, label_transform=transforms, later_steps="gradient", dtype="float64",
        chunk_size=chunk_size, seed=seed,
    ).fit(X, y)  # fmt: skip
    c = 1.0 / width if scale == "1/m" else scale
    decays = [1 / etas[0], 0.0, 0.0] if decay == "paper" else [decay] * steps
    expected, norms = _autograd_steps(X, y, width, seed, etas, decays, batch, c, transforms)
    assert float(torch.linalg.norm(net.W_ - expected) / torch.linalg.norm(expected)) < 1e-10
    for entry, norm in zip(net.history_, norms, strict=True):
        assert math.isclose(entry["step_norm"], norm, rel_tol=1e-9)
    assert [e["paired_pass"] for e in net.history_] == (
        [True, True, False] if decay == "paper" else [True, False, False]
    )


def _pair(**kwargs):
    return rl.OneStepNetwork(**kwargs), GiantStepNetwork(**kwargs)


@pytest.mark.parametrize("label_transform", [None, "square"])
def test_one_step_is_algorithm_1_bit_for_bit(label_transform):
    target = rl.paper_target(8, seed=0)
    X, y = rl.sample(target, n=1500, noise=1.0, seed=0)
    Xh, yh = rl.sample(target, n=500, noise=1.0, seed=1)
    stream = rl.DataStream(target, noise=1.0, seed=3)
    kwargs = dict(width=20, seed=5, chunk_size=400, label_transform=label_transform)
    for fit in (lambda m: m.fit(X, y, Xh, yh), lambda m: m.fit_stream(stream, 1200, 300)):
        one, giant = (fit(model) for model in _pair(**kwargs))
        for name in ("W_", "b_", "a_", "alpha_", "beta_"):
            assert torch.equal(getattr(one, name), getattr(giant, name)), name
        assert torch.equal(one.predict(X), giant.predict(X))
        assert one.ridge_lambda_ == giant.ridge_lambda_


def test_fresh_fit_on_arrays_equals_fit_stream_on_the_same_samples():
    """fit(X, y) splits the rows into T parts; fit_stream takes t·n…(t+1)·n − 1."""
    target = rl.paper_target(6, seed=1)
    stream = rl.DataStream(target, noise=0.5, seed=7, dtype=torch.float64)
    X, y = materialise(stream, 3 * 300, 300, "cpu")
    kwargs = dict(width=10, steps=3, step_size=[2.0, 0.3, 0.3], dtype="float64", chunk_size=300)
    a = GiantStepNetwork(**kwargs).fit(X, y)
    b = GiantStepNetwork(**kwargs).fit_stream(stream, 300, n_holdout=0)
    torch.testing.assert_close(a.W_, b.W_, rtol=1e-12, atol=1e-12)
    assert [e["batch_start"] for e in b.history_] == [0, 300, 600]
    # the head uses the last step's batch: its α is that batch's mean label
    torch.testing.assert_close(b.alpha_, y[600:].mean(), rtol=1e-12, atol=1e-12)
    assert b.n_samples_ == 900


def test_history_diagnostics_are_the_metrics_of_each_step():
    target = MultiIndexTarget.from_expression("He2(z1) + z1*z2", d=8, seed=0)
    X, y = rl.sample(target, n=1200, noise=0.2, seed=0, dtype=torch.float64)
    net = GiantStepNetwork(
        width=16, steps=2, step_size="dandi", output_scale="1/m", diagnostics_target=target,
        degree_shares=True, dtype="float64",
    ).fit(X, y)  # fmt: skip
    last = net.history_[-1]
    assert last["alignment"] == pytest.approx(subspace_alignment(net.W_, target.U), rel=1e-12)
    assert torch.equal(last["direction_cosines"], direction_cosines(net.W_, target.U))
    assert last["direction_cosines"].shape == (16, 2)
    assert net.step_sizes_ == [math.sqrt(600 / 8) * 16] * 2  # √(n/d)/c, c = 1/m
    # step 1's residual is −s, s = y − α − β·x: shares of its empirical Hermite energy
    shares = net.history_[0]["residual_degree_shares"]
    n = 600
    Xb, yb = X[:n], y[:n]
    s = yb - yb.mean() - Xb @ (yb @ Xb / n)
    second = (Xb * s[:, None]).T @ Xb / n - s.mean() * torch.eye(8, dtype=torch.float64)
    energy = s.pow(2).mean()
    assert shares[0] == pytest.approx(float(s.mean() ** 2 / energy), rel=1e-9)
    assert shares[1] == pytest.approx(float((s @ Xb / n).pow(2).sum() / energy), rel=1e-9)
    assert shares[2] == pytest.approx(float(second.pow(2).sum() / 2 / energy), rel=1e-9)
    assert shares["higher"] == pytest.approx(1 - shares[0] - shares[1] - shares[2])
    restored = pickle.loads(pickle.dumps(net.history_))
    assert torch.equal(restored[1]["direction_cosines"], last["direction_cosines"])
    # without a diagnostics target only the cheap entries are recorded; the O(n·d²) degree
    # shares only with degree_shares=True
    plain = GiantStepNetwork(width=16, steps=2, dtype="float64").fit(X, y)
    assert "alignment" not in plain.history_[0] and plain.history_[1]["step_norm"] > 0
    cheap = GiantStepNetwork(width=16, steps=2, diagnostics_target=target, dtype="float64")
    cheap.fit(X, y)
    assert "residual_degree_shares" not in cheap.history_[0]


def test_direction_cosines_definition_and_errors():
    W = torch.tensor([[3.0, 4.0], [0.0, 0.0], [-1.0, 0.0]])
    U = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    expected = torch.tensor([[0.6, 0.8], [0.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(direction_cosines(W, U), expected)
    with pytest.raises(ValueError, match="must share d"):
        direction_cosines(W, torch.ones(1, 3))
    with pytest.raises(ValueError, match="no zero rows"):
        direction_cosines(W, torch.zeros(1, 2))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(steps=0), "steps must be an integer ≥ 1"),
        (dict(steps=2, step_size=[1.0]), "step_size has 1 entries but steps = 2"),
        (dict(step_size=[1.0, -2.0], steps=2), "step_size must be a number > 0"),
        (
            dict(step_size="big"),
            "step_size must be a number > 0, 'harmonic', 'sqrt_d', 'dandi', 'stable'",
        ),
        (dict(later_steps="head"), "later_steps must be one of 'residual', 'gradient'"),
        (dict(steps=2, label_transform=[None, "square"]), "with later_steps='residual'"),
        (dict(degree_shares=1), "degree_shares must be"),
        (dict(weight_decay=[-1.0]), "weight_decay must be a number ≥ 0, 'paper'"),
        (dict(steps=2, label_transform=["square", "cube"]), "label_transform must be None"),
        (dict(steps=2, label_transform=["square"]), "label_transform has 1 entries"),
        (dict(output_scale=0.0), r"output_scale must be a number > 0, '1/sqrt\(m\)' or '1/m'"),
        (dict(batch="new"), "batch must be one of 'fresh', 'reuse'"),
        (
            dict(diagnostics_target="u"),
            "diagnostics_target must be None, a target with directions U",
        ),
        (dict(diagnostics_target=torch.ones(1, 3)), "directions of dimension 3, the data d = 4"),
        (dict(steps=30), "needs at least 30 rows"),
    ],
)
def test_bad_parameters_are_one_line_value_errors(kwargs, match):
    X, y = rl.sample(rl.paper_target(4, seed=0), n=20, seed=0)
    with pytest.raises(ValueError, match=match) as error:
        GiantStepNetwork(width=4, **kwargs).fit(X, y)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("batch", ["fresh", "reuse"])
def test_two_steps_find_the_staircase_direction_one_step_misses(batch):
    """f* = (He₂(z₁) + He₃(z₁)·z₂)/√8 (unit norm), d = 16, n = 16·d² per step, width 200,
    Dandi et al.'s network (c = 1/m, η = m·√(n/d)).
    Step 1 follows H = E[∇²f*] ∝ u₁u₁ᵀ: w_j¹ ≈ ±|.|u₁ + noise, so its cosine with u₂ is the
    noise's, below the random level E|cos| = Γ(8)/(√π·Γ(8.5)) ≈ 0.20 of a uniform direction in
    d = 16 (the u₁ part adds to the norm). Step 2: with w ∝ u₁ the mask 1[w·x ≥ 0] is a
    function of z₁ and E[He₃(z₁)z₂·1[±z₁ ≥ 0]·z₂] = ∓1/√(2π) ≠ 0: a first-order move along u₂
    (the staircase), with the same size 2ηc/√(2π)/√8 as step 1's along u₁.
    The mean |cos(w_j, u₂)| over the 100 distinct neurons has sd ≈ 0.15/√100 = 0.015: measured
    0.16 after one step, 0.38–0.39 after two; the thresholds 0.25 and 0.30 are > 5 sd from both
    and the overall alignment must not drop."""
    d = 16
    target = MultiIndexTarget.from_expression("He2(z1) + He3(z1)*z2", d=d, seed=0)
    stream = rl.DataStream(target, noise=0.0, seed=0)
    kwargs = dict(width=200, step_size="dandi", output_scale="1/m", batch=batch,
                  later_steps="gradient", diagnostics_target=target, seed=0)  # fmt: skip
    net = GiantStepNetwork(steps=2, **kwargs).fit_stream(stream, 16 * d * d, n_holdout=0)
    one, two = net.history_
    cos_one, cos_two = (
        one["direction_cosines"].abs().mean(0),
        two["direction_cosines"].abs().mean(0),
    )
    assert cos_one[1] < 0.25 < 0.30 < cos_two[1]
    assert two["alignment"] > one["alignment"]


def test_a_diverging_step_is_a_one_line_error():
    """η = 1e300: W¹ ≈ 1e300 is still finite, f(x) at step 2 overflows to inf."""
    X, y = rl.sample(rl.paper_target(4, seed=0), n=60, seed=0, dtype=torch.float64)
    model = GiantStepNetwork(
        width=4, steps=2, step_size=1e300, later_steps="gradient", dtype="float64"
    )
    with pytest.raises(ValueError, match="diverged at step 2") as error:
        model.fit(X, y)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("batch", ["fresh", "reuse"])
def test_residual_step_is_algorithm_1_on_the_refitted_predictors_residual(batch):
    """Step 2 of the default (``later_steps="residual"``), written out independently: ŷ the
    T = 1 model on step 1's batch (the same W¹, biases and ridge head), on step 2's batch
    r = y − ŷ(x), s = r − mean r − (mean r·x)·x, and
    W² = W¹ + 2η₂·c·a_j·mean(s·1[w_j¹·x + b_j > 0]·x) with b the head's N(0, 1) biases and
    η₂ = √d/2 ("harmonic"). float64, so only summation orders differ: 1e-10."""
    d, width, seed, n = 6, 10, 3, 400
    target = rl.paper_target(d, seed=1)
    X, y = rl.sample(target, n=2 * n, noise=0.5, seed=2, dtype=torch.float64)
    net = GiantStepNetwork(width=width, steps=2, batch=batch, dtype="float64", seed=seed)
    net.fit(X, y)
    rows = slice(0, n) if batch == "fresh" else slice(0, 2 * n)
    one = GiantStepNetwork(width=width, steps=1, dtype="float64", seed=seed).fit(X[rows], y[rows])
    X2, y2 = (X[n:], y[n:]) if batch == "fresh" else (X, y)
    r = y2 - one.predict(X2)
    s = r - r.mean() - X2 @ (r @ X2 / X2.shape[0])
    mask = (X2 @ one.W_.T + one.b_ > 0).to(torch.float64)
    a = one.initial_network_.a
    expected = one.W_ + 2 * (math.sqrt(d) / 2) * a[:, None] * ((mask * s[:, None]).T @ X2) / len(s)
    assert net.step_sizes_ == [math.sqrt(d), math.sqrt(d) / 2]
    assert float(torch.linalg.norm(net.W_ - expected) / torch.linalg.norm(expected)) < 1e-10
    assert torch.equal(net.b_, one.b_)


@pytest.mark.slow
def test_default_two_steps_are_never_worse_than_one_and_better_on_a_staircase():
    """Default settings, T = 2 against T = 1, on the targets of docs/beyond.md: the staircase
    He₂(z₁) + He₃(z₁)·z₂, the even coupling He₂(z₁) + He₂(z₁)·z₂, the paper's
    He₂(z₁)/2 + He₄(z₁)/(4√3), He₃(z₁)/√6 and z₁z₂z₃ (each with E f*² = 1), d = 32, width 128,
    n = 16·d² per step (fresh batches), no label noise, k = 4 seeds (≈ 20 s).

    Tolerance. Per seed the two risks differ even when step 2 changes nothing (T = 2's head
    is fitted on another batch): the seed spread σ̂ is the sd of the k T = 1 risks, and a
    difference of two k-seed means has standard error SE = σ̂·√(2/k). "Never worse by more
    than the seed spread": mean(T = 2) ≤ mean(T = 1) + 2·SE on every target (a step that
    changes nothing fails it with probability ≈ 2 %). "Better on the staircase":
    mean(T = 2) ≤ mean(T = 1) − 2·SE. The check can fail: the old network-gradient step with
    η₂ = √d (``later_steps="gradient", step_size="sqrt_d"``) undoes step 1 and lies above
    the bound. Measured means T = 1 → T = 2 (bound ±2·SE): staircase 0.590 → 0.428 (±0.040),
    even coupling 0.316 → 0.137, paper 0.130 → 0.106, He₃ 0.623 → 0.464, z₁z₂z₃ 0.889 → 0.784;
    the old step on the staircase 0.712 > 0.630 (``scripts/later_steps.py`` prints the same
    numbers)."""
    d, width, seeds = 32, 128, range(4)
    n = 16 * d * d
    expressions = ["He2(z1) + He3(z1)*z2", "He2(z1) + He2(z1)*z2",
                   "He2(z1)/2 + He4(z1)/(4*sqrt(3))", "He3(z1)/sqrt(6)", "z1*z2*z3"]  # fmt: skip

    def risk(target, steps, seed, **kwargs):
        net = GiantStepNetwork(width=width, steps=steps, seed=seed, **kwargs)
        net.fit_stream(rl.DataStream(target, noise=0.0, seed=seed), n=n, n_holdout=2048)
        return float(rl.excess_risk(net, target, n_test=10_000, seed=1).risk)

    def mean(values):
        return sum(values) / len(values)

    k = len(seeds)
    for expression in expressions:
        target = MultiIndexTarget.from_expression(expression, d=d, seed=0)
        one = [risk(target, 1, seed) for seed in seeds]
        two = [risk(target, 2, seed) for seed in seeds]
        spread = math.sqrt(sum((r - mean(one)) ** 2 for r in one) / (k - 1))
        margin = 2 * spread * math.sqrt(2 / k)
        assert mean(two) <= mean(one) + margin, (expression, one, two)
        if expression == expressions[0]:
            assert mean(two) <= mean(one) - margin, (expression, one, two)
            old = [risk(target, 2, s, later_steps="gradient", step_size="sqrt_d") for s in seeds]
            assert mean(old) > mean(one) + margin, (expression, one, old)
