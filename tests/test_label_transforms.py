"""Label transforms and the streamed step labels s = (T(y) − m_T − β_T·x)/σ_s."""

import math

import pytest
import torch

import replearn as rl
from replearn.hermite import he
from replearn.label_transforms import (
    LabelStatistics,
    StepLabelMoments,
    resolve_label_transform,
    step_label_moments,
    step_labels,
)

BUILT_INS = [None, "square", "abs", "sign", "hermite:1", "hermite:3"]


def _data(n=3000, seed=0):
    target = rl.MultiIndexTarget.from_expression("He3(z1)/sqrt(6) + z2", d=6)
    return rl.sample(target, n=n, noise=0.5, seed=seed, dtype=torch.float64)


def test_built_in_values_on_a_known_tensor():
    y = torch.tensor([-2.0, -0.5, 0.0, 1.0, 3.0], dtype=torch.float64)
    mean, std = float(y.mean()), float(y.std(unbiased=False))
    expected = {
        None: y,
        "identity": y,
        "square": y * y - (y * y).mean(),
        "abs": y.abs(),
        "sign": torch.tensor([-1.0, -1.0, 0.0, 1.0, 1.0], dtype=torch.float64),
        "hermite:2": ((y - mean) / std) ** 2 - 1,
        "hermite:3": ((y - mean) / std) ** 3 - 3 * (y - mean) / std,
    }
    for spec, values in expected.items():
        torch.testing.assert_close(resolve_label_transform(spec)(y), values, rtol=1e-14, atol=1e-14)
    # given statistics win over the tensor's own (a chunk of a stream must not use its own)
    given = LabelStatistics(mean=1.0, std=2.0)
    torch.testing.assert_close(
        resolve_label_transform("hermite:4")(y, given), he(4, (y - 1.0) / 2.0)
    )
    torch.testing.assert_close(resolve_label_transform("square")(y, given), y * y - 5.0)


def test_callable_is_applied_and_named():
    transform = resolve_label_transform(torch.tanh)
    y = torch.linspace(-2, 2, 9, dtype=torch.float64)
    torch.testing.assert_close(transform(y), torch.tanh(y))
    assert transform.name == "tanh"


@pytest.mark.parametrize(
    "spec, error, match",
    [
        ("cube", ValueError, "label_transform must be None, one of"),
        ("hermite:0", ValueError, "integer k >= 1"),
        ("hermite:-2", ValueError, "integer k >= 1"),
        ("hermite:2.5", ValueError, "integer k >= 1"),
        ("hermite:", ValueError, "integer k >= 1"),
        (3, TypeError, "got int"),
        (lambda y: y[:-1], ValueError, "'<lambda>' must return shape"),
        (lambda y: torch.log(y), ValueError, "'<lambda>' returned .* non-finite"),
        (lambda y: y.tolist(), TypeError, "'<lambda>' must return a torch.Tensor"),
        (lambda y: (y > 0).long(), TypeError, "'<lambda>' must return a floating tensor"),
    ],
)
def test_bad_transforms_fail_with_one_line(spec, error, match):
    with pytest.raises(error, match=match) as info:
        resolve_label_transform(spec)
    assert "\n" not in str(info.value)


def test_callable_checked_at_every_call():
    transform = resolve_label_transform(lambda y: 1.0 / (y - 7.0))  # finite on the probe
    with pytest.raises(ValueError, match="non-finite"):
        transform(torch.tensor([7.0, 1.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="1-D label tensor"):
        transform(torch.ones(2, 2, dtype=torch.float64))


@pytest.mark.parametrize("spec", BUILT_INS + [torch.tanh])
def test_step_labels_streamed_equal_the_definition_on_the_whole_set(spec):
    """Chunked passes give the same s as the definition applied to all n samples at once:
    t = T(y) with the whole set's statistics, m_T = mean t, β_T = mean t·x,
    s = (t − m_T − β_T·x)/√mean((t − m_T − β_T·x)²). float64 sums in a different order differ
    by a few ulps of the largest partial sums: 1e-10 relative is ample."""
    X, y = _data()
    n = X.shape[0]
    transform = resolve_label_transform(spec)
    t = transform(y)  # whole-set statistics
    residual = t - t.mean() - X @ (t @ X / n)
    expected = residual / residual.pow(2).mean().sqrt()
    moments = step_label_moments(
        lambda: ((X[i : i + 700], y[i : i + 700]) for i in range(0, n, 700)), transform
    )
    streamed = torch.cat(
        [step_labels(X[i : i + 999], y[i : i + 999], moments) for i in range(0, n, 999)]
    )
    torch.testing.assert_close(streamed, expected, rtol=1e-10, atol=1e-10)
    assert float(streamed.pow(2).mean()) == pytest.approx(1.0, abs=1e-12)


def test_step_labels_keep_the_dtype_of_X():
    X, y = _data(n=500)
    moments = step_label_moments(lambda: [(X, y)], "square")
    assert step_labels(X.float(), y.float(), moments).dtype == torch.float32


def test_moments_errors_are_one_line():
    X, y = _data(n=200)
    moments = StepLabelMoments(resolve_label_transform("hermite:3"))
    with pytest.raises(ValueError, match="needs the label statistics first"):
        moments.add_transformed(X, y)
    with pytest.raises(ValueError, match="needs finished moments"):
        step_labels(X, y, moments)
    constant = resolve_label_transform(lambda y: torch.ones_like(y))
    with pytest.raises(ValueError, match="T\\(y\\) is constant"):
        step_label_moments(lambda: [(X, y)], constant)


def test_statistics_from_sums_match_the_tensor():
    y = torch.randn(1000, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3 + 2
    direct = LabelStatistics.of(y)
    summed = LabelStatistics.from_sums(1000, float(y.sum()), float((y * y).sum()))
    assert summed.mean == pytest.approx(direct.mean, rel=1e-12)
    assert summed.std == pytest.approx(direct.std, rel=1e-10)
    assert direct.second_moment == pytest.approx(float((y * y).mean()), rel=1e-12)


def test_gaussian_smoothed_closed_forms():
    """E|g + ε| and E sign(g + ε), ε ~ N(0, ς²), against a midpoint rule over ε/ς ∈ [−10, 10]
    with 200 000 cells (h = 1e-4): where the integrand jumps or kinks the cell holding the
    jump is off by at most h·max φ ≈ 4e-5 and elsewhere the error is O(h²); the tails beyond
    10 carry < 1e-22. So 1e-4 is a safe bound, and the closed forms are exact."""
    cells = 200_000
    z = -10.0 + (torch.arange(cells, dtype=torch.float64) + 0.5) * (20.0 / cells)
    weights = torch.exp(-z * z / 2) / math.sqrt(2 * math.pi) * (20.0 / cells)
    g = torch.tensor([-1.3, 0.0, 0.4, 2.0], dtype=torch.float64)
    for spec, fn in (("abs", torch.abs), ("sign", torch.sign)):
        transform = resolve_label_transform(spec)
        mean, square = transform.gaussian_smoothed(g, 0.7)
        values = fn(g[:, None] + 0.7 * z[None, :])
        torch.testing.assert_close(mean, values @ weights, atol=1e-4, rtol=0)
        torch.testing.assert_close(square, values.pow(2) @ weights, atol=1e-4, rtol=0)
    assert resolve_label_transform("square").gaussian_smoothed(g, 1.0) is None


def test_built_in_transforms_survive_pickling():
    """Learners are sent to worker processes: a resolved transform must pickle."""
    import pickle

    y = torch.linspace(-2, 2, 7, dtype=torch.float64)
    for spec in BUILT_INS + ["hermite:4", torch.tanh]:
        transform = resolve_label_transform(spec)
        clone = pickle.loads(pickle.dumps(transform))
        assert clone.name == transform.name
        torch.testing.assert_close(clone(y), transform(y))


def _step_direction(X, y, transform, W0):
    """G = mean_i s_i·x_i·1[W0 x_i ≥ 0]: each row is a neuron's step up to the factor 2η₁a_j."""
    n = X.shape[0]
    if transform is None:  # the paper's labels y − α − β·x
        s = y - y.mean() - X @ (y @ X / n)
    else:
        s = step_labels(X, y, step_label_moments(lambda: [(X, y)], transform))
    return torch.where(X @ W0.T >= 0, s[:, None], 0.0).T @ X / n


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_square_step_finds_u_for_he3_where_the_plain_step_does_not(seed):
    """y = He₃(u·x)/√6 + ε (Rademacher, ς = 1), d = 16, n = 32·d², 64 unit neurons w.
    Population step of a row: E[s·x·1[w·x ≥ 0]] ≈ (A_T/σ_s)(u·w)u/√(2π) + higher-order terms.
    square: A_T = 6, σ_s = κ_s·A_T = 1.633·6 = 9.8 (theory report) ⇒ coefficient 0.245·(u·w),
    E(u·w)² = 1/d: signal energy 0.06/d = 3.8e-3 per row against sampling noise
    E[s²·1[·]]·d/n = 0.5/(32d) = 9.8e-4 ⇒ alignment ≈ 3.8/(3.8 + 0.98) ≈ 0.8.
    plain: H = 0; what aligns is the degree-3 term (∝ (u·w)²u, energy ≈ 6e-4) against noise
    2·0.5/(32d) = 2e-3 ⇒ ≈ 0.25. sign of an odd target: A_T = 0 and the odd terms give ≈ 0.1.
    Averages over 64 rows fluctuate by ≈ 0.05–0.08; thresholds 0.6 / 0.45 / 0.25 sit > 2.5 sd
    from the predictions (measured: square 0.84–0.89, plain 0.12–0.28, sign 0.04–0.10)."""
    d = 16
    target = rl.paper_transfer_target(d, seed=0)
    u = target.U[0]
    X, y = rl.sample(target, n=32 * d * d, noise=1.0, seed=seed, dtype=torch.float64)
    W0 = torch.randn(64, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    W0 = W0 / W0.norm(dim=1, keepdim=True)

    def alignment(transform):
        G = _step_direction(X, y, transform, W0)
        return float((G @ u).pow(2).sum() / G.pow(2).sum())

    assert alignment("square") > 0.6
    assert alignment(None) < 0.45
    assert alignment("sign") < 0.25
