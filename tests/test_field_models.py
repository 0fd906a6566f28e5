"""The field's models in the first-layer-step learners (OneStepNetwork, GiantStepNetwork,
RandomFeatures): for every activation × output scale × initialisation the first-layer step
equals autograd's on the same network (float64), fresh and chunked, with and without
preprocessing and with a label transform; the head solves its ridge problem on c·σ(Wx + b);
predictions, transfer, width rules and one-line errors."""

import itertools
import math

import pytest
import torch
from sklearn.base import clone

import replearn as rl
from replearn.activations import resolve_activation
from replearn.learners.giant_step import GiantStepNetwork
from replearn.learners.one_step import OneStepNetwork
from replearn.learners.random_features import RandomFeatures
from replearn.network import normal_biases

F64 = torch.float64
D, WIDTH, N = 5, 6, 50

# σ as autograd sees it (plain torch functions): the learners use σ′ from activations.py
# (or the user's σ′), so agreement checks the derivative too
ACTIVATIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "erf": torch.erf,
    "quadratic": lambda z: z * z,
    "softplus": torch.nn.functional.softplus,  # given as a user's (σ, σ′) pair
}
SCALES = [1.0, "1/sqrt(m)", "1/m"]


def _activation_parameter(name):
    if name == "softplus":
        return (torch.nn.functional.softplus, torch.sigmoid)
    return name


def _scale(value, width):
    return {"1/sqrt(m)": 1 / math.sqrt(width), "1/m": 1 / width}.get(value, value)


def _given_W():
    return torch.linspace(-1.0, 1.0, WIDTH * D, dtype=F64).reshape(WIDTH, D).sin()


DIRECTIONS = torch.eye(D, dtype=F64)[:2]
# (first_layer, second_layer, biases): the paper's (paired, b = 0 at the step), and models
# without partners or with biases during the step, given arrays included
INITS = {
    "paper": ("gaussian", "paper", "paper"),
    "paper_normal_biases": ("unit_rows", "paper", "normal"),
    "unit_rows_signs": ("unit_rows", "signs", "none"),
    "orthogonal_gaussian": ("orthogonal", "gaussian", "paper"),
    "given_constant": ("given", "constant", "normal"),
    "given_given": ("given", "given", "none"),
}


def _init_kwargs(name):
    first, second, biases = INITS[name]
    return dict(
        first_layer=_given_W() if first == "given" else first,
        second_layer=torch.linspace(-1.0, 1.0, WIDTH, dtype=F64) if second == "given" else second,
        directions=DIRECTIONS,
        biases=biases,
    )


def _data(n=N, seed=0):
    target = rl.MultiIndexTarget.from_expression("He2(z1) + z1*z2", d=D, seed=3)
    return rl.sample(target, n=n, noise=0.3, seed=seed, dtype=F64)


def _step_labels(X, y, preprocess, transform):
    """s of one batch, written out independently: y − α − β·x, y, or the unit-scale
    (t − m_t − β_t·x)/σ_s of t = y² − mean y²."""
    n = X.shape[0]
    if transform == "square":
        t = y * y - (y * y).mean()
        r = t - t.mean() - X @ (t @ X / n)
        return r / r.pow(2).mean().sqrt()
    return y - y.mean() - X @ (y @ X / n) if preprocess else y


def _autograd_step(W, b, a, sigma, c, X, s, eta, decay):
    """W − η(∇L + λW), L = (1/n)Σ(c·aᵀσ(Wx + b) − s)²; decay None: −η∇L (λ = 1/η)."""
    leaf = W.clone().requires_grad_(True)
    loss = ((c * (sigma(X @ leaf.T + b) @ a) - s) ** 2).mean()
    (gradient,) = torch.autograd.grad(loss, leaf)
    return -eta * gradient if decay is None else W - eta * (gradient + decay * W)


def _relative(a, b):
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


CASES = list(itertools.product(ACTIVATIONS, SCALES, INITS))
# fresh / chunked, preprocessing and the label transform cycle over the product
LABELS = [(True, None), (False, None), (True, "square")]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_one_step_is_autograd_on_every_model(case):
    """float64: only summation orders differ (≈ n·ε relative), so 1e-10 catches any wrong
    factor (c, 2, a_j), derivative, bias or mask."""
    activation, scale, init = CASES[case]
    preprocess, transform = LABELS[case % len(LABELS)]
    chunk_size = 17 if case % 2 else 4096
    decay = [None, 0.0, 0.3][case % 3]  # λ₁ = 1/η₁ ("paper"), plain GD, another decay
    X, y = _data()
    eta = 0.7
    model = OneStepNetwork(
        width=WIDTH, eta1=eta, ridge_lambda=0.1, preprocess=preprocess,
        label_transform=transform, activation=_activation_parameter(activation),
        output_scale=scale, weight_decay="paper" if decay is None else decay,
        dtype="float64", chunk_size=chunk_size, seed=2, **_init_kwargs(init),
    ).fit(X, y)  # fmt: skip
    theta = model.initial_network_
    c = _scale(scale, WIDTH)
    assert theta.output_scale == c
    expected_b = torch.zeros(WIDTH, dtype=F64)
    if INITS[init][2] == "normal":  # N(0, 1), shared by partners with the paper's pairs
        expected_b = normal_biases(WIDTH, 2, F64)
        if INITS[init][1] == "paper":
            expected_b = torch.cat([expected_b[: WIDTH // 2]] * 2)
    assert torch.equal(theta.b, expected_b)
    if INITS[init][1] == "paper":  # f⁰ ≡ 0 whatever the biases
        assert float(theta(X).abs().max()) < 1e-12
    s = _step_labels(X, y, preprocess, transform)
    W1 = _autograd_step(theta.W, theta.b, theta.a, ACTIVATIONS[activation], c, X, s, eta, decay)
    assert _relative(model.W_, W1) < 1e-10


@pytest.mark.parametrize("case", range(len(CASES)))
def test_giant_steps_are_autograd_on_every_model(case):
    """Three steps with weight decays 0, 0.1, 0 (W⁰ kept: plain GD from θ⁰ on the first
    layer, ``later_steps="gradient"``), fresh or reused batches; tolerance as above."""
    activation, scale, init = CASES[case]
    preprocess, transform = LABELS[case % len(LABELS)]
    batch = "reuse" if case % 2 else "fresh"
    chunk_size = 13 if case % 3 else 4096
    steps, etas = 3, [0.6, 0.3, 0.2]
    decays = [0.0, 0.1, 0.0]
    X, y = _data(3 * N)
    model = GiantStepNetwork(
        width=WIDTH, steps=steps, step_size=etas, weight_decay=decays, batch=batch,
        preprocess=preprocess, label_transform=transform, ridge_lambda=0.1,
        activation=_activation_parameter(activation), output_scale=scale, dtype="float64",
        later_steps="gradient", chunk_size=chunk_size, seed=1, **_init_kwargs(init),
    ).fit(X, y)  # fmt: skip
    theta = model.initial_network_
    c = _scale(scale, WIDTH)
    n = N if batch == "fresh" else 3 * N
    W = theta.W.clone()
    for t in range(steps):
        rows = slice(t * n, (t + 1) * n) if batch == "fresh" else slice(0, n)
        s = _step_labels(X[rows], y[rows], preprocess, transform)
        sigma = ACTIVATIONS[activation]
        W = _autograd_step(W, theta.b, theta.a, sigma, c, X[rows], s, etas[t], decays[t])
        assert model.history_[t]["eta"] == etas[t]
    assert _relative(model.W_, W) < 1e-10


@pytest.mark.parametrize("init", ["unit_rows_signs", "given_constant", "paper_normal_biases"])
def test_one_giant_step_is_one_step_bit_for_bit_on_other_models(init):
    X, y = _data(200)
    kwargs = dict(width=WIDTH, activation="tanh", output_scale="1/sqrt(m)", ridge_lambda=0.1,
                  seed=3, **_init_kwargs(init))  # fmt: skip
    one = OneStepNetwork(eta1=2.0, weight_decay=0.0, **kwargs).fit(X, y)
    giant = GiantStepNetwork(step_size=2.0, weight_decay=0.0, **kwargs).fit(X, y)
    for name in ("W_", "b_", "a_", "alpha_", "beta_"):
        assert torch.equal(getattr(one, name), getattr(giant, name)), name


def _features(model, X):
    c = model.network_.output_scale
    return c * model.network_.activation(X @ model.W_.T + model.b_)


@pytest.mark.parametrize(
    "learner, init, activation, scale",
    [
        (OneStepNetwork, "unit_rows_signs", "tanh", "1/sqrt(m)"),
        (OneStepNetwork, "paper_normal_biases", "quadratic", 1.0),
        (GiantStepNetwork, "orthogonal_gaussian", "erf", "1/m"),
        (RandomFeatures, "given_constant", "tanh", "1/sqrt(m)"),
        (RandomFeatures, "unit_rows_signs", "relu", 0.5),
    ],
)
def test_head_solves_ridge_on_scaled_features_and_predicts_with_them(
    learner, init, activation, scale
):
    """a = argmin (1/n)‖Φa − r‖² + (λ/2)‖a‖², Φ = c·σ(WX + b): (ΦᵀΦ/n + λ/2)a = Φᵀr/n;
    prediction α + β·x + c·aᵀσ(Wx + b); transfer keeps W, b and refits on the new task."""
    X, y = _data(300)
    lam = 0.05
    model = learner(
        width=WIDTH, ridge_lambda=lam, activation=activation, output_scale=scale,
        dtype="float64", seed=4, **_init_kwargs(init),
    ).fit(X, y)  # fmt: skip
    Phi = _features(model, X)
    assert model.network_.output_scale == _scale(scale, WIDTH)
    r = y - model.alpha_ - X @ model.beta_
    n = X.shape[0]
    lhs = (Phi.T @ Phi / n + lam / 2 * torch.eye(WIDTH, dtype=F64)) @ model.a_
    torch.testing.assert_close(lhs, Phi.T @ r / n, rtol=1e-9, atol=1e-11)
    by_hand = model.alpha_ + X @ model.beta_ + Phi @ model.a_
    torch.testing.assert_close(model.predict(X), by_hand, rtol=1e-12, atol=1e-12)
    expected_b = torch.zeros(WIDTH, dtype=F64) if INITS[init][2] == "none" else None
    if expected_b is not None:
        assert torch.equal(model.b_, expected_b)
    X2, y2 = _data(200, seed=5)
    moved = model.transfer(X2, -y2)
    assert torch.equal(moved.W_, model.W_) and torch.equal(moved.b_, model.b_)
    Phi2 = _features(moved, X2)
    r2 = -y2 - moved.alpha_ - X2 @ moved.beta_
    lhs = (Phi2.T @ Phi2 / 200 + lam / 2 * torch.eye(WIDTH, dtype=F64)) @ moved.a_
    torch.testing.assert_close(lhs, Phi2.T @ r2 / 200, rtol=1e-9, atol=1e-11)


def test_random_features_use_the_initial_first_layer_of_the_model():
    X, y = _data(100)
    kwargs = dict(width=7, first_layer="unit_rows", second_layer="signs", seed=2)
    rf = RandomFeatures(activation="tanh", biases="none", dtype="float64", **kwargs).fit(X, y)
    one = OneStepNetwork(activation="tanh", dtype="float64", **kwargs).fit(X, y)
    torch.testing.assert_close(rf.W_.norm(dim=1), torch.ones(7, dtype=F64))
    assert torch.equal(rf.W_, one.initial_network_.W)
    assert torch.equal(rf.b_, torch.zeros(7, dtype=F64))


def test_given_arrays_are_used_as_given_and_never_modified():
    X, y = _data()
    W0, a0 = _given_W(), torch.linspace(-1.0, 1.0, WIDTH, dtype=F64)
    W_copy, a_copy = W0.clone(), a0.clone()
    model = GiantStepNetwork(
        width=WIDTH, steps=2, step_size=0.5, weight_decay=0.0, preprocess=False,
        batch="reuse", first_layer=W0, second_layer=a0, biases="none", dtype="float64",
    ).fit(X, y)  # fmt: skip
    assert torch.equal(W0, W_copy) and torch.equal(a0, a_copy)
    assert torch.equal(model.initial_network_.W, W0) and torch.equal(model.initial_network_.a, a0)
    assert not torch.equal(model.W_, W0)
    assert clone(model).get_params()["first_layer"] is not W0  # clone copies the array


def test_dandi_2024_two_neurons_without_partners():
    """Width 2, a = (1, −1)/√2 given, rows orthogonal to the teacher's directions."""
    target = rl.MultiIndexTarget.from_expression("z1 + He3(z2)", d=8, seed=0)
    X, y = rl.sample(target, n=64, noise=0.0, seed=0, dtype=F64)
    a = torch.tensor([1.0, -1.0], dtype=F64) / math.sqrt(2)
    model = GiantStepNetwork(
        width=2, steps=2, step_size=0.5, weight_decay=0.0, batch="reuse", preprocess=False,
        second_layer=a, first_layer="orthogonal", directions=target, biases="none",
        output_scale=1.0, ridge_lambda=0.1, dtype="float64",
    ).fit(X, y)  # fmt: skip
    W0 = model.initial_network_.W
    assert float((W0 @ target.U.T.to(F64)).abs().max()) < 1e-12
    assert model.W_.shape == (2, 8) and model.network_.width == 2


@pytest.mark.parametrize("learner", [OneStepNetwork, GiantStepNetwork, RandomFeatures])
def test_width_rules(learner):
    X, y = _data()
    with pytest.raises(ValueError, match=r"^width must be an even integer ≥ 2, got 5$"):
        learner(width=5).fit(X, y)
    with pytest.raises(ValueError, match="width must be an integer ≥ 1 .* got 0"):
        learner(width=0, second_layer="signs").fit(X, y)
    for width in (1, 3):
        model = learner(width=width, second_layer="signs", ridge_lambda=0.1).fit(X, y)
        assert model.W_.shape == (width, D)


@pytest.mark.parametrize("learner", [OneStepNetwork, GiantStepNetwork, RandomFeatures])
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(activation="softmax"), "activation must be one of 'relu'"),
        (dict(activation=(torch.tanh,)), "activation must be one of"),
        (dict(output_scale="1/d"), r"output_scale must be a number > 0, '1/sqrt\(m\)' or '1/m'"),
        (dict(output_scale=-1.0), "output_scale must be a number > 0"),
        (dict(first_layer="xavier"), "first_layer must be one of 'gaussian', 'unit_rows'"),
        (dict(first_layer=torch.ones(3, D), second_layer="signs"), r"must have shape \(4, 5\)"),
        (dict(first_layer=[[float("nan")] * D] * 4), "first_layer must be finite"),
        (dict(second_layer="ones"), "second_layer must be one of 'paper', 'signs'"),
        (dict(second_layer=torch.ones(3), first_layer="gaussian"), r"must have shape \(4,\)"),
        (dict(first_layer=torch.ones(4, D + 1), second_layer="signs"), "must have shape"),
        (dict(first_layer="orthogonal"), "first_layer='orthogonal' needs the target's directions"),
        (
            dict(first_layer="orthogonal", directions=torch.ones(1, 3)),
            "directions has rows of dimension 3, the data d = 5",
        ),
        (dict(directions="u"), "directions must be None, a target with directions U"),
        (dict(biases="zero"), "biases must be one of 'paper', 'none', 'normal'"),
    ],
)
def test_bad_model_values_are_one_line_errors(learner, kwargs, match):
    X, y = _data()
    with pytest.raises(ValueError, match=match) as error:
        learner(width=4, **kwargs).fit(X, y)
    assert "\n" not in str(error.value)


def test_a_given_first_layer_needs_unpaired_second_layer():
    X, y = _data()
    with pytest.raises(ValueError, match="second_layer='paper' pairs neurons") as error:
        OneStepNetwork(width=WIDTH, first_layer=_given_W()).fit(X, y)
    assert "\n" not in str(error.value)


def test_one_step_weight_decay_and_normalize():
    """weight_decay is λ₁ ≥ 0 or 'paper'; eta1='normalize' moves neurons by 1 in RMS."""
    X, y = _data(200)
    with pytest.raises(ValueError, match="weight_decay must be a number ≥ 0 or 'paper'"):
        OneStepNetwork(width=4, weight_decay=-1.0).fit(X, y)
    model = OneStepNetwork(
        width=WIDTH, eta1="normalize", second_layer="gaussian", weight_decay=0.0,
        activation="tanh", dtype="float64", seed=1,
    ).fit(X, y)  # fmt: skip
    move = model.W_ - model.initial_network_.W
    assert math.isclose(float(move.pow(2).sum(1).mean().sqrt()), 1.0, rel_tol=1e-12)


def test_activation_feature_maps_reuse_their_buffer_and_match_sigma():
    from replearn.network import ActivationFeatureMap, feature_map

    W, b = torch.randn(4, 3, dtype=F64), torch.randn(4, dtype=F64)
    X = torch.randn(10, 3, dtype=F64)
    for name in ("tanh", "erf", "sigmoid", "abs", "quadratic", "linear", "hermite:3"):
        sigma = resolve_activation(name)
        features = feature_map(W, b, sigma, 0.5)
        assert isinstance(features, ActivationFeatureMap)
        first = features(X)
        torch.testing.assert_close(first, 0.5 * sigma(X @ W.T + b), rtol=1e-14, atol=1e-14)
        again = features(X[:6])
        assert again.data_ptr() == first.data_ptr()  # one buffer for the pass


@pytest.mark.parametrize("activation", ["tanh", "hermite:3", "relu"])
def test_fitted_models_of_every_activation_pickle(activation):
    """Named activations pickle as their names (their σ, σ′ are lambdas or closures)."""
    import pickle

    X, y = _data(100)
    model = OneStepNetwork(
        width=3, activation=activation, second_layer="signs", output_scale="1/sqrt(m)",
        ridge_lambda=0.1, dtype="float64",
    ).fit(X, y)  # fmt: skip
    again = pickle.loads(pickle.dumps(model))
    assert again.network_.activation.name == activation
    assert torch.equal(again.predict(X), model.predict(X))
