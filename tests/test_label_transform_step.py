"""OneStepNetwork(label_transform=…): the step is the gradient of the loss on the transformed
labels, α, β and the head stay on the raw labels, None is the paper's step, errors are one line,
and "square" finds u for He₃(u·x) where the plain step does not."""

import math
import pickle

import pytest
import torch
from sklearn.base import clone

import replearn as rl
from replearn.metrics import subspace_alignment
from replearn.network import symmetric_init


def _tanh(y):
    return torch.tanh(y)


def _transformed(y: torch.Tensor, spec) -> torch.Tensor:
    """T(y) written out here, independently of replearn.label_transforms."""
    if spec == "square":
        return y * y - (y * y).mean()
    if spec == "abs":
        return y.abs()
    if spec == "sign":
        return torch.sign(y)
    if spec == "hermite:3":
        z = (y - y.mean()) / (y - y.mean()).pow(2).mean().sqrt()
        return z**3 - 3 * z
    return torch.tanh(y)


def _step_labels(X, y, spec):
    """s = (t − m_T − β_T·x)/σ_s (identity: the paper's y − α − β·x, not rescaled)."""
    n = X.shape[0]
    if spec is None:
        return y - y.mean() - X @ (y @ X / n)
    t = _transformed(y, spec)
    r = t - t.mean() - X @ (t @ X / n)
    return r / r.pow(2).mean().sqrt()


def _autograd_first_layer(X, s, width, seed, eta):
    """W¹ = W⁰ − η(∇_W L(W⁰) + W⁰/η), L = (1/n)Σ(aᵀReLU(W x_i) − s_i)², by autograd."""
    init = symmetric_init(width, X.shape[1], seed, torch.float64)
    W = init.W.clone().requires_grad_(True)
    loss = ((torch.relu(X @ W.T) @ init.a - s) ** 2).mean()
    (gradient,) = torch.autograd.grad(loss, W)
    return init.W - eta * (gradient + init.W / eta)


@pytest.mark.parametrize("chunk_size", [32_768, 97])
@pytest.mark.parametrize("spec", [None, "square", "abs", "sign", "hermite:3", _tanh])
def test_transformed_step_is_the_gradient_on_transformed_labels(spec, chunk_size):
    """float64 everywhere: the only differences are summation orders, O(n·ε) ≈ 1e-13
    relative, so 1e-10 catches any wrong constant (a missing σ_s, β_T or centring)."""
    d, width, seed = 6, 10, 3
    target = rl.paper_target(d, seed=1)
    X, y = rl.sample(target, n=500, noise=0.5, seed=0, dtype=torch.float64)
    net = rl.OneStepNetwork(
        width=width, label_transform=spec, dtype="float64", chunk_size=chunk_size, seed=seed
    ).fit(X, y)
    expected = _autograd_first_layer(X, _step_labels(X, y, spec), width, seed, math.sqrt(d))
    error = torch.linalg.norm(net.W_ - expected) / torch.linalg.norm(expected)
    assert error < 1e-10
    # α, β are the raw labels' (the head's preprocessing), whatever T is
    torch.testing.assert_close(net.alpha_, y.mean(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(net.beta_, y @ X / len(y), rtol=1e-12, atol=1e-12)


def test_none_and_identity_are_the_default_step_bit_for_bit():
    target = rl.paper_target(8, seed=0)
    X, y = rl.sample(target, n=800, noise=1.0, seed=0)
    default = rl.OneStepNetwork(width=20, seed=2).fit(X, y)
    for spec in (None, "identity"):
        net = rl.OneStepNetwork(width=20, seed=2, label_transform=spec).fit(X, y)
        assert torch.equal(net.W_, default.W_) and torch.equal(net.a_, default.a_)
    # and a transform does change the step (so the comparison above can fail)
    square = rl.OneStepNetwork(width=20, seed=2, label_transform="square").fit(X, y)
    assert not torch.equal(square.W_, default.W_)


def test_fit_and_fit_stream_agree_with_a_transform():
    target = rl.paper_transfer_target(8, seed=0)
    stream = rl.DataStream(target, noise=1.0, seed=4, dtype=torch.float64)
    X, y = next(iter(stream.chunks(900, 900)))[:2]
    kwargs = dict(width=12, label_transform="hermite:2", dtype="float64", chunk_size=250)
    a = rl.OneStepNetwork(**kwargs).fit(X, y)
    b = rl.OneStepNetwork(**kwargs).fit_stream(stream, 900, n_holdout=0)
    torch.testing.assert_close(a.W_, b.W_, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("cube", "label_transform must be None, one of"),
        ("hermite:0", "label_transform 'hermite:k' needs an integer k >= 1"),
        (3, "label_transform must be None, a string"),
        (lambda y: y[:-1], "must return shape"),
        (lambda y: torch.log(y), "non-finite"),
    ],
)
def test_bad_transforms_are_one_line_value_errors(spec, match):
    X, y = rl.sample(rl.paper_target(4, seed=0), n=50, seed=0)
    with pytest.raises(ValueError, match=match) as error:
        rl.OneStepNetwork(width=4, label_transform=spec).fit(X, y)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError):  # the same check as the experiment specs use
        rl.OneStepNetwork.parameter_check("label_transform")(spec)


def test_transform_failing_on_the_data_only_is_one_line():
    """A callable that passes the probe (labels in [−3, 3]) but not the data's labels."""

    def clipped_log(y):
        return torch.where(y.abs() < 3.5, y, torch.log(-y.abs()))

    X = torch.randn(40, 3, dtype=torch.float64)
    y = torch.linspace(-5, 5, 40, dtype=torch.float64)
    with pytest.raises(ValueError, match="non-finite") as error:
        rl.OneStepNetwork(width=4, label_transform=clipped_log).fit(X, y)
    assert "\n" not in str(error.value)


def test_clone_and_pickle_keep_a_callable_transform():
    net = rl.OneStepNetwork(width=6, label_transform=_tanh)
    assert clone(net).get_params()["label_transform"] is _tanh
    X, y = rl.sample(rl.paper_target(4, seed=0), n=200, seed=0)
    fitted = pickle.loads(pickle.dumps(net.fit(X, y)))
    assert torch.equal(fitted.predict(X), net.predict(X))


@pytest.mark.parametrize("seed", [0, 1])
def test_square_learner_finds_u_for_he3_where_the_plain_learner_does_not(seed):
    """Through OneStepNetwork: y = He₃(u·x)/√6 + ε (Rademacher, ς = 1), d = 16, n = 32·d²,
    width 128 (64 distinct neurons; their rows are 2η₁a_j·G_j, so the subspace alignment of
    W¹ is the energy-weighted alignment of the step directions G_j).
    Population step of a neuron: E[s·x·1[w·x ≥ 0]] ≈ (A_T/σ_s)(u·ŵ)u/√(2π) + higher terms.
    square: A_T = 6, σ_s = 1.633·6 = 9.8 ⇒ coefficient 0.245·(u·ŵ), E(u·ŵ)² = 1/d: signal
    energy 0.06/d = 3.8e-3 per row against the sampling noise E[s²·1[·]]·d/n = 0.5/(32d) =
    9.8e-4 ⇒ alignment ≈ 3.8/(3.8 + 0.98) ≈ 0.8.
    plain: H = 0; only the degree-3 term (∝ (u·ŵ)²u, energy ≈ 6e-4) against noise
    2·0.5/(32d) = 2e-3 ⇒ ≈ 0.25 (the noise of s = y − α − β·x is twice as large: E s² = 2).
    Over 64 rows the alignment fluctuates by ≈ 0.05–0.08: thresholds 0.6 and 0.45 sit > 2.5 sd
    from both predictions. The head then turns the square step into a lower risk."""
    d = 16
    target = rl.paper_transfer_target(d, seed=0)
    X, y = rl.sample(target, n=32 * d * d, noise=1.0, seed=seed, dtype=torch.float64)
    kwargs = dict(width=128, dtype="float64", seed=seed, ridge_lambda=1e-3)
    square = rl.OneStepNetwork(label_transform="square", **kwargs).fit(X, y)
    plain = rl.OneStepNetwork(**kwargs).fit(X, y)
    assert subspace_alignment(square.W_, target.U) > 0.6
    assert subspace_alignment(plain.W_, target.U) < 0.45
