"""Tests for replearn.targets: exact moments, paper targets, parsing, random targets, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numpy.polynomial import hermite_e

from replearn.limits import LimitError
from replearn.targets import (
    MultiIndexTarget,
    _multi_indices,
    haar_orthonormal_rows,
    monomials_to_hermite,
    paper_target,
    paper_transfer_target,
)

# statistical tests compare an exact value with a Monte-Carlo mean m̂ = (1/n) Σ_i s_i; its
# standard error is SE = std(s)/√n (CLT), and |m̂ − exact| ≤ Z·SE fails with probability
# ≈ 2·(1 − Φ(Z)) = 6.3e-5 for Z = 4. The seeds are fixed, so the tests are deterministic.
Z = 4.0


def gaussian(n: int, d: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=generator, dtype=torch.float64)


def He(k: int, t: np.ndarray) -> np.ndarray:
    e = np.zeros(k + 1)
    e[k] = 1.0
    return hermite_e.hermeval(t, e)


def hermite_sum(terms: dict, z: np.ndarray) -> np.ndarray:
    """Σ_α c_α Π_i He_{α_i}(z_i) with numpy, independent of MultiIndexTarget.__call__."""
    out = np.zeros(z.shape[0])
    for alpha, c in terms.items():
        term = np.full(z.shape[0], c)
        for i, a in enumerate(alpha):
            term = term * He(a, z[:, i])
        out += term
    return out


def assert_within_standard_errors(samples: np.ndarray, exact: float, what: str) -> None:
    samples = np.asarray(samples, dtype=np.float64)
    estimate = samples.mean()
    standard_error = samples.std(ddof=1) / math.sqrt(samples.size)
    assert abs(estimate - exact) <= Z * standard_error + 1e-12, (
        f"{what}: Monte-Carlo {estimate:.6g} vs exact {exact:.6g}, SE {standard_error:.3g}"
    )


# -- paper targets ----------------------------------------------------------------------------


def test_paper_target_exact_quantities():
    t = paper_target(10)
    u = t.U[0]
    assert t.U.shape == (1, 10) and t.d == 10 and t.r == 1 and t.degree == 4
    assert set(t.terms) == {(2,), (4,)}  # no round-off residue in other degrees
    assert t.terms[(2,)] == pytest.approx(0.5, rel=1e-14)
    assert t.terms[(4,)] == pytest.approx(1 / (4 * math.sqrt(3)), rel=1e-14)
    energy = t.degree_energy()
    assert set(energy) == {2, 4}
    assert energy[2] == pytest.approx(0.5, rel=1e-12)
    assert energy[4] == pytest.approx(0.5, rel=1e-12)
    assert t.norm2() == pytest.approx(1.0, rel=1e-12)
    assert t.mean() == 0.0
    torch.testing.assert_close(t.hessian(), torch.outer(u, u), rtol=0, atol=1e-12)
    assert t.kappa == pytest.approx(1.0, rel=1e-12)
    assert t.hessian_rank() == 1
    assert float(u @ u) == pytest.approx(1.0, abs=1e-14)
    # the best quadratic predictor leaves half of the energy (the paper's 0.5 line)
    assert t.energy_above(2) == pytest.approx(0.5, rel=1e-12)
    assert t.energy_above(4) == 0.0


def test_paper_target_direction_depends_on_seed_only():
    assert torch.equal(paper_target(10, seed=3).U, paper_target(10, seed=3).U)
    assert not torch.equal(paper_target(10, seed=3).U, paper_target(10, seed=4).U)
    assert paper_target(25, seed=1).U.shape == (1, 25)


@pytest.mark.parametrize(("d", "seed"), [(10, 0), (10, 7), (32, 2)])
def test_paper_transfer_target(d, seed):
    pretrain = paper_target(d, seed)
    transfer = paper_transfer_target(d, seed)
    assert torch.equal(transfer.U, pretrain.U)
    assert transfer.norm2() == pytest.approx(1.0, rel=1e-12)
    assert set(transfer.terms) == {(3,)}
    assert transfer.terms[(3,)] == pytest.approx(1 / math.sqrt(6), rel=1e-14)
    assert transfer.degree_energy() == pytest.approx({3: 1.0})
    # degenerate: He3 has no quadratic part, so H = 0 and the one-step method is blind
    assert torch.count_nonzero(transfer.hessian()) == 0
    assert transfer.kappa == math.inf
    assert transfer.hessian_rank() == 0


def test_paper_transfer_target_with_given_direction():
    u = torch.zeros(6, dtype=torch.float64)
    u[2] = 1.0
    t = paper_transfer_target(6, u=u)
    assert torch.equal(t.U, u.reshape(1, -1))
    X = gaussian(100, 6, seed=0)
    torch.testing.assert_close(t(X), (X[:, 2] ** 3 - 3 * X[:, 2]) / math.sqrt(6))


def test_evaluation_matches_numpy_and_float32():
    t = MultiIndexTarget.random(d=7, r=3, degree=4, seed=5)
    X = gaussian(500, 7, seed=1)
    expected = hermite_sum(t.terms, (X @ t.U.T).numpy())
    np.testing.assert_allclose(t(X).numpy(), expected, rtol=1e-10, atol=1e-10)
    value32 = t(X.float())
    assert value32.dtype == torch.float32
    np.testing.assert_allclose(value32.double().numpy(), expected, rtol=1e-4, atol=1e-4)


# -- from_expression ----------------------------------------------------------------------------

EXPRESSIONS = [
    ("He2(z1)/2 + He4(z1)/(4*sqrt(3))", 1, lambda z1: He(2, z1) / 2 + He(4, z1) / (4 * 3**0.5)),
    ("z1*z2 - 0.5*z3**3 + 2", 3, lambda z1, z2, z3: z1 * z2 - 0.5 * z3**3 + 2),
    ("z1^2 + 3*z2^2 - pi", 2, lambda z1, z2: z1**2 + 3 * z2**2 - math.pi),
    (
        "He3((z1 - z2)/sqrt(2)) + (z1 + 1)**2 / 3",
        2,
        lambda a, b: He(3, (a - b) / 2**0.5) + (a + 1) ** 2 / 3,
    ),
    ("-z2", 2, lambda z1, z2: -z2),
]


@pytest.mark.parametrize(("expr", "r", "fn"), EXPRESSIONS, ids=[e[0] for e in EXPRESSIONS])
def test_from_expression_evaluates_the_expression(expr, r, fn):
    t = MultiIndexTarget.from_expression(expr, d=9, seed=4, normalize=False)
    assert t.r == r and t.d == 9 and t.name == expr
    torch.testing.assert_close(t.U, haar_orthonormal_rows(r, 9, seed=4))
    X = gaussian(300, 9, seed=2)
    z = (X @ t.U.T).numpy()
    np.testing.assert_allclose(t(X).numpy(), fn(*z.T), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("expr", "r", "fn"), EXPRESSIONS, ids=[e[0] for e in EXPRESSIONS])
def test_from_expression_normalize(expr, r, fn):
    raw = MultiIndexTarget.from_expression(expr, d=9, seed=4, normalize=False)
    t = MultiIndexTarget.from_expression(expr, d=9, seed=4)  # normalize=True is the default
    assert t.mean() == 0.0
    assert all(sum(alpha) > 0 for alpha in t.terms)
    assert t.norm2() == pytest.approx(1.0, rel=1e-12)
    # t = (raw − E raw)/√Var(raw)
    variance = raw.norm2() - raw.mean() ** 2
    X = gaussian(200, 9, seed=3)
    torch.testing.assert_close(t(X) * math.sqrt(variance), raw(X) - raw.mean())


def test_from_expression_terms_in_hermite_basis():
    t = MultiIndexTarget.from_expression("z1**2 * z2 + 1", d=4, normalize=False)
    # z1²·z2 = (He2(z1) + 1)·He1(z2)
    assert t.terms == pytest.approx({(2, 1): 1.0, (0, 1): 1.0, (0, 0): 1.0})
    assert t.mean() == 1.0
    assert t.norm2() == pytest.approx(1 * 2 + 1 + 1)


def test_from_expression_latent_dimension_and_U():
    assert MultiIndexTarget.from_expression("z2", d=5).r == 2
    assert MultiIndexTarget.from_expression("z1", d=5, r=3).r == 3
    assert MultiIndexTarget.from_expression("z1", d=5, r=3).terms == {(1, 0, 0): 1.0}
    U = haar_orthonormal_rows(2, 5, seed=9)
    t = MultiIndexTarget.from_expression("z1*z2", d=5, U=U)
    assert torch.equal(t.U, U)
    assert t.terms == pytest.approx({(1, 1): 1.0})


def test_from_expression_huge_but_finite_coefficients_normalise():
    t = MultiIndexTarget.from_expression("1e200*z1 + 1e200", d=3)
    assert t.terms == pytest.approx({(1,): 1.0})


# -- project, normalized ----------------------------------------------------------------------


def test_project():
    t = paper_target(10)
    low = t.project(2)
    assert low.terms == {(2,): t.terms[(2,)]}
    assert torch.equal(low.U, t.U)
    assert low.norm2() == pytest.approx(0.5)
    assert low.degree == 2
    torch.testing.assert_close(low.hessian(), t.hessian())  # H only sees degree 2
    assert t.project(3).terms == low.terms
    assert t.project(4).terms == t.terms
    assert t.project(100).terms == t.terms
    assert t.project(1).terms == {} and t.project(1).norm2() == 0.0
    assert t.project(1).degree_energy() == {}

    random = MultiIndexTarget.random(d=6, r=2, degree=5, seed=1)
    for k in range(7):
        # orthogonality: E[f²] = E[(P_≤k f)²] + energy above k
        expected = random.norm2() - random.energy_above(k)
        assert random.project(k).norm2() == pytest.approx(expected, abs=1e-12)


def test_normalized_of_constant_fails():
    t = MultiIndexTarget.from_expression("3 + 0*z1", d=2, normalize=False)
    with pytest.raises(ValueError, match=r"target is constant: cannot normalise"):
        t.normalized()
    with pytest.raises(ValueError, match=r"target is constant"):
        MultiIndexTarget.from_expression("2*pi", d=2)


# -- random targets ----------------------------------------------------------------------------

RANDOM_CASES = [
    # d, r, degree, kappa (None: the equal-eigenvalue default), expected kappa
    (5, 1, 2, None, 1 / math.sqrt(2)),
    (5, 1, 3, None, 1.0),
    (5, 1, 4, 2.0, 2.0),
    (10, 2, 2, None, math.sqrt(2)),
    (10, 2, 4, None, 2.0),
    (10, 3, 3, 5.0, 5.0),
    (8, 3, 5, 3.0, 3.0),  # the smallest κ allowed: r/√(2·1/2)
    (20, 4, 4, 10.0, 10.0),
    (6, 6, 3, 50.0, 50.0),
]


@pytest.mark.parametrize(("d", "r", "degree", "kappa", "expected_kappa"), RANDOM_CASES)
def test_random_target_structure(d, r, degree, kappa, expected_kappa):
    t = MultiIndexTarget.random(d=d, r=r, degree=degree, seed=11, kappa=kappa)
    assert (t.d, t.r, t.degree) == (d, r, degree)
    torch.testing.assert_close(t.U @ t.U.T, torch.eye(r, dtype=torch.float64))
    assert t.norm2() == pytest.approx(1.0, rel=1e-12)
    assert t.mean() == 0.0
    assert all(sum(alpha) >= 2 for alpha in t.terms)  # no constant, no linear part
    assert set(t.degree_energy()) == set(range(2, degree + 1))

    H = t.hessian()
    assert H.shape == (d, d)
    torch.testing.assert_close(H, H.T)
    assert int(torch.linalg.matrix_rank(H)) == r
    assert t.hessian_rank() == r
    # H lives on the principal subspace: H·(I − UᵀU) = 0
    projector = torch.eye(d, dtype=torch.float64) - t.U.T @ t.U
    assert (H @ projector).abs().max() < 1e-12
    # κ = ‖H†‖·√r from H itself, independently of the latent formula
    nonzero = torch.linalg.eigvalsh(H).abs().sort(descending=True).values[:r]
    assert math.sqrt(r) / nonzero.min().item() == pytest.approx(expected_kappa, rel=1e-9)
    assert t.kappa == pytest.approx(expected_kappa, rel=1e-9)
    assert t.kappa == pytest.approx(float(torch.linalg.norm(torch.linalg.pinv(H), 2)) * r**0.5)


def test_random_target_is_a_function_of_its_arguments():
    a = MultiIndexTarget.random(d=10, r=2, degree=4, seed=3, kappa=4.0)
    b = MultiIndexTarget.random(d=10, r=2, degree=4, seed=3, kappa=4.0)
    c = MultiIndexTarget.random(d=10, r=2, degree=4, seed=4, kappa=4.0)
    assert torch.equal(a.U, b.U) and a.terms == b.terms
    assert not torch.equal(a.U, c.U) and a.terms != c.terms


def test_random_target_hessian_energy():
    t = MultiIndexTarget.random(d=10, r=3, degree=4, seed=0, hessian_energy=0.8)
    assert t.degree_energy()[2] == pytest.approx(0.8)
    assert t.degree_energy()[3] == pytest.approx(0.1)
    assert t.degree_energy()[4] == pytest.approx(0.1)
    # equal eigenvalues: κ = r/√(2·0.8)
    assert t.kappa == pytest.approx(3 / math.sqrt(1.6))


# -- Monte-Carlo checks of the exact moments ------------------------------------------------


def test_norm2_matches_monte_carlo():
    # E[f*²] exact vs the mean of f*(x)² over n = 10⁶ Gaussian samples; SE = std(f*²)/√n
    t = MultiIndexTarget.random(d=8, r=2, degree=4, seed=3, kappa=3.0)
    squares = np.concatenate(
        [(t(gaussian(250_000, 8, seed=100 + i)) ** 2).numpy() for i in range(4)]
    )
    assert squares.size == 1_000_000
    assert_within_standard_errors(squares, t.norm2(), "E[f*²]")


def test_mean_norm_and_degree_energy_match_monte_carlo():
    # a target with a constant and several degrees, checked against the raw expression in
    # numpy (not MultiIndexTarget.__call__): E[g] = c_0, E[g²] = Σ c_α²α!, and the degree-k
    # energy E[g·P_k g] = Σ_{|α|=k} c_α²α!, with P_k g = Σ_{|α|=k} c_α He_α (orthogonality).
    expr = "1 + z1*z2 + He3(z1)/3 + z2**4/10"
    t = MultiIndexTarget.from_expression(expr, d=6, seed=2, normalize=False)
    # by hand: z2⁴ = He4 + 6He2 + 3, so c_0 = 1.3, energy {0: 1.69, 2: 1 + 2·0.36, 3: 6/9, 4: 0.24}
    assert t.mean() == pytest.approx(1.3)
    exact_energy = {0: 1.69, 2: 1.72, 3: 2 / 3, 4: 0.24}
    assert t.degree_energy(normalized=False) == pytest.approx(exact_energy)
    assert t.norm2() == pytest.approx(sum(exact_energy.values()))

    z = (gaussian(1_000_000, 6, seed=7) @ t.U.T).numpy()
    g = 1 + z[:, 0] * z[:, 1] + He(3, z[:, 0]) / 3 + z[:, 1] ** 4 / 10
    assert_within_standard_errors(g, t.mean(), "E[f*]")
    assert_within_standard_errors(g**2, t.norm2(), "E[f*²]")
    for k, energy in t.degree_energy(normalized=False).items():
        part = hermite_sum({a: c for a, c in t.terms.items() if sum(a) == k}, z)
        assert_within_standard_errors(g * part, energy, f"degree-{k} energy")
    normalized = t.degree_energy()
    assert sum(normalized.values()) == pytest.approx(1.0)
    assert normalized[3] == pytest.approx((2 / 3) / t.norm2())


def per_sample_hessians(t: MultiIndexTarget, X: torch.Tensor) -> torch.Tensor:
    """∇²f*(x_i) for every row, by autograd (torch.func): shape (n, d, d)."""

    def f_single(x: torch.Tensor) -> torch.Tensor:
        return t(x.unsqueeze(0))[0]

    return torch.func.vmap(torch.func.hessian(f_single))(X)


def test_per_sample_hessian_is_correct_on_a_known_target():
    # f = He2(u·x)/2 + He4(u·x)/(4√3): ∇²f = (1 + (3z² − 3)/√3)·uuᵀ with z = u·x
    t = paper_target(5, seed=1)
    u = t.U[0]
    X = gaussian(20, 5, seed=0)
    z = X @ u
    expected = (1 + (3 * z**2 - 3) / math.sqrt(3))[:, None, None] * torch.outer(u, u)
    torch.testing.assert_close(per_sample_hessians(t, X), expected)


def test_hessian_matches_monte_carlo_of_autograd_hessians():
    # E[∇²f*] exact (Stein: Uᵀ A U) vs the mean of per-sample autograd Hessians over
    # n = 2·10⁵ samples, entry by entry within 4 standard errors, SE_jk = std(∇²f_jk)/√n.
    # Bonferroni: the d(d+1)/2 = 21 distinct entries all pass with probability
    # ≥ 1 − 21·6.3e-5 ≈ 0.9987 (the seed is fixed, so the outcome is deterministic).
    d = 6
    t = MultiIndexTarget.random(d=d, r=2, degree=4, seed=1, kappa=3.0)
    hessians = torch.cat(
        [per_sample_hessians(t, gaussian(50_000, d, seed=200 + i)) for i in range(4)]
    )
    n = hessians.shape[0]
    assert n == 200_000
    estimate = hessians.mean(dim=0)
    standard_error = hessians.std(dim=0) / math.sqrt(n)
    exact = t.hessian()
    assert (standard_error > 0).any()
    excess = (estimate - exact).abs() - (Z * standard_error + 1e-12)
    assert (excess <= 0).all(), f"max |MC − H| − 4·SE = {excess.max().item():.3g}"
    # and the estimate is informative: H is resolved well beyond the noise
    assert exact.abs().max() > 20 * standard_error.max()


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (dict(d=3, r=4, degree=3), r"r must be <= d, got r=4 > d=3"),
        (dict(d=3, r=0, degree=3), r"r must be >= 1, got 0"),
        (dict(d=3, r=-2, degree=3), r"r must be >= 1, got -2"),
        (dict(d=3.5, r=1, degree=3), r"d must be an integer, got 3.5"),
        (dict(d=3, r=True, degree=3), r"r must be an integer, got True"),
        (dict(d=3, r=1, degree=-1), r"degree must be an integer >= 0, got -1"),
        (dict(d=3, r=1, degree=2.0), r"degree must be an integer >= 0, got 2.0"),
        (dict(d=3, r=1, degree=1), r"degree must be >= 2 for a rank-r Hessian, got 1"),
        (dict(d=5, r=3, degree=3, kappa=2.0), r"kappa must be >= r/sqrt\(2\*hessian_energy\)"),
        (dict(d=5, r=3, degree=3, kappa=-1.0), r"kappa must be a positive finite number"),
        (dict(d=5, r=3, degree=3, kappa=math.inf), r"kappa must be a positive finite number"),
        (dict(d=5, r=3, degree=3, kappa=math.nan), r"kappa must be a positive finite number"),
        (dict(d=5, r=1, degree=3, kappa=0.5), r"kappa must be >= 1/sqrt\(2\) for r = 1"),
        (dict(d=5, r=1, degree=2, kappa=3.0), r"degree 2 with r = 1 has kappa = 1/sqrt\(2\)"),
        (dict(d=5, r=2, degree=3, hessian_energy=0.0), r"hessian_energy must be in \(0, 1\]"),
        (dict(d=5, r=2, degree=3, hessian_energy=1.5), r"hessian_energy must be in \(0, 1\]"),
    ],
)
def test_random_bad_input(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        MultiIndexTarget.random(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (dict(expr="z1", d=2, r=3), r"r must be <= d, got r=3 > d=2"),
        (dict(expr="z1*z2*z3", d=2), r"r must be <= d, got r=3 > d=2"),
        (dict(expr="z1", d=2, r=0), r"r must be >= 1, got 0"),
        (dict(expr="z3", d=5, r=2), r"expression uses z3 but r=2"),
        (dict(expr="__import__('os')", d=3), r"unknown function '__import__'"),
        (dict(expr="z1.real", d=3), r"Attribute is not allowed"),
        (dict(expr="z1**1000", d=3), r"exceeds the limit expression_degree = 30"),
        (dict(expr="(z1+1)**99", d=3), r"exceeds the limit expression_degree = 30"),
        (dict(expr="lambda: z1", d=3), r"Lambda is not allowed"),
        (dict(expr="[z1]", d=3), r"List is not allowed"),
        (dict(expr="He2(z1, k=2)", d=3), r"only He<k>\(…\) and sqrt\(…\) with one argument"),
        (dict(expr="z2 / z1", d=3), r"a divisor must be a constant"),
        (dict(expr="tanhh(z1)", d=3), r"unknown function 'tanhh'"),
        (dict(expr="tanh(z1)/z1", d=3), r"a divisor must be a constant"),
        (dict(expr="exp(z1^2)", d=3), r"exp needs an argument bounded above"),
        (dict(expr="1e400*z1", d=3), r"non-finite number inf"),
        (dict(expr="1e300*1e300*z1 + z1**2", d=3), r"overflows to a non-finite value"),
        (dict(expr="1e308*z1**4", d=3), r"coefficient of \(0,\) is not finite: inf"),
        (dict(expr="", d=3), r"target expression must be a non-empty string"),
    ],
)
def test_from_expression_bad_input(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        MultiIndexTarget.from_expression(**kwargs)


def test_bad_U():
    with pytest.raises(ValueError, match=r"U must have orthonormal rows \(U Uᵀ = I\)"):
        MultiIndexTarget([[1.0, 1.0, 0.0]], {(2,): 1.0})
    with pytest.raises(ValueError, match=r"U must have orthonormal rows"):
        MultiIndexTarget([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], {(2, 0): 1.0})
    with pytest.raises(ValueError, match=r"U must have orthonormal rows"):
        MultiIndexTarget.from_expression("z1", d=3, U=[[0.5, 0.5, 0.5]])
    with pytest.raises(ValueError, match=r"U must have d=10 columns, got shape \(1, 5\)"):
        MultiIndexTarget.from_expression("z1", d=10, U=haar_orthonormal_rows(1, 5, seed=0))
    with pytest.raises(ValueError, match=r"U must be a 2-D \(r, d\) array, got shape \(3,\)"):
        MultiIndexTarget([1.0, 0.0, 0.0], {(2,): 1.0})
    with pytest.raises(ValueError, match=r"U must be finite"):
        MultiIndexTarget([[math.nan, 0.0]], {(2,): 1.0})
    with pytest.raises(ValueError, match=r"r must be <= d, got r=2 > d=1"):
        MultiIndexTarget([[1.0], [0.0]], {(2, 0): 1.0})


def test_bad_terms():
    U = haar_orthonormal_rows(2, 4, seed=0)
    with pytest.raises(ValueError, match=r"coefficient of \(2,\) is not finite: nan"):
        MultiIndexTarget(U[:1], {(2,): float("nan")})
    with pytest.raises(ValueError, match=r"coefficient of \(1, 1\) is not finite: inf"):
        MultiIndexTarget(U, {(1, 1): float("inf")})
    with pytest.raises(ValueError, match=r"multi-index \(2,\) must have 2 entries, each >= 0"):
        MultiIndexTarget(U, {(2,): 1.0})
    with pytest.raises(ValueError, match=r"multi-index \(2, -1\) must have 2 entries, each >= 0"):
        MultiIndexTarget(U, {(2, -1): 1.0})


def test_bad_evaluation_shape():
    t = paper_target(10)
    with pytest.raises(ValueError, match=r"X must have shape \(n, 10\), got \(5, 9\)"):
        t(torch.zeros(5, 9))
    with pytest.raises(ValueError, match=r"X must have shape \(n, 10\), got \(10,\)"):
        t(torch.zeros(10))


def test_describe_and_repr():
    t = paper_target(10)
    assert "kappa=1" in t.describe() and "rank(H)=1" in t.describe()
    assert repr(t) == "MultiIndexTarget(d=10, r=1, degree=4, name='paper: He2/2 + He4/(4√3)')"


def test_haar_orthonormal_rows():
    U = haar_orthonormal_rows(3, 7, seed=5)
    assert U.shape == (3, 7) and U.dtype == torch.float64
    torch.testing.assert_close(U @ U.T, torch.eye(3, dtype=torch.float64))
    assert torch.equal(U, haar_orthonormal_rows(3, 7, seed=5))
    assert not torch.equal(U, haar_orthonormal_rows(3, 7, seed=6))


# -- bounded work -------------------------------------------------------------------------------
def _hermite_reference(polynomial: dict, r: int) -> dict:
    """The former conversion: every monomial expanded as a product over its variables."""
    import itertools

    from replearn.hermite import monomial_to_hermite

    terms: dict = {}
    for exponents, coefficient in polynomial.items():
        factors = []
        for a in exponents:
            hermite = monomial_to_hermite([0] * a + [1])
            factors.append([(k, float(w)) for k, w in enumerate(hermite) if w != 0])
        for combo in itertools.product(*factors):
            alpha = tuple(k for k, _ in combo)
            terms[alpha] = terms.get(alpha, 0.0) + coefficient * math.prod(w for _, w in combo)
    return terms


def test_monomials_to_hermite_matches_the_product_expansion():
    rng = np.random.default_rng(3)
    polynomial = {
        tuple(int(e) for e in rng.integers(0, 7, size=3)): float(rng.normal()) for _ in range(40)
    }
    got = monomials_to_hermite(polynomial, 3)
    expected = _hermite_reference(polynomial, 3)
    assert set(got) == set(expected)
    # each coefficient is a sum of ≤ 40 products of exact small integers and one float:
    # relative rounding error ≤ 40·2⁻⁵² ≈ 10⁻¹⁴ of the largest summand (|c|·He weights ≤ 10⁴)
    for alpha, value in expected.items():
        assert got[alpha] == pytest.approx(value, rel=1e-12, abs=1e-10)


def test_monomials_to_hermite_is_bounded_before_each_stage():
    # z1^6 z2^6 z3^6 z4^6: 4⁴ = 256 Hermite terms; after z1 and z2 the stages hold 4 and 16
    monomial = {(6, 6, 6, 6): 1.0}
    assert len(monomials_to_hermite(monomial, 4)) == 256
    with pytest.raises(LimitError, match=r"at most 256 terms, more than the limit"):
        monomials_to_hermite(monomial, 4, max_terms=255)


def test_headline_expression_is_refused_by_from_expression():
    expr = "(1+z1+z2+z3+z4+z5)**15*(1+z1+z2+z3+z4+z5)**15"
    with pytest.raises(LimitError, match=r"up to 324,632 terms, more than the limit"):
        MultiIndexTarget.from_expression(expr, d=10)


def test_from_expression_limits_are_raisable():
    expr = "(1+z1+z2)**12"  # 91 monomials, and 91 Hermite terms
    with pytest.raises(LimitError):
        MultiIndexTarget.from_expression(expr, d=5, max_terms=90)
    raw = MultiIndexTarget.from_expression(expr, d=5, normalize=False, max_terms=91)
    assert len(raw.terms) == 91
    with pytest.raises(LimitError, match=r"expression_degree = 11"):
        MultiIndexTarget.from_expression(expr, d=5, max_degree=11)


@pytest.mark.parametrize("expr", ["ｚ1", "ｚ2*z1"])
def test_from_expression_refuses_non_ascii_before_guessing_r(expr):
    # formerly "ｚ1" read as z1 while "ｚ2*z1" failed with "z2 exceeds the latent dimension r=1"
    with pytest.raises(ValueError, match=r"non-ASCII character 'ｚ' \(U\+FF5A\) at position 0"):
        MultiIndexTarget.from_expression(expr, d=5)


def test_input_dimension_limit_is_checked_before_U_is_drawn():
    with pytest.raises(LimitError, match=r"input dimension d: 1,000,000,000 exceeds the limit d"):
        MultiIndexTarget.from_expression("z1", d=10**9)
    with pytest.raises(LimitError, match=r"exceeds the limit d = 1,000,000"):
        MultiIndexTarget.random(d=10**9, r=2, degree=3)


def test_random_targets_count_their_terms_before_enumerating():
    # r = 30, degree 4: C(32, 3) + C(33, 4) = 4 960 + 40 920 terms (the former enumeration
    # walked all 5³⁰ ≈ 9·10²⁰ tuples of range(5)^30)
    with pytest.raises(LimitError, match=r"terms: 45,880 exceeds the limit expression_terms"):
        MultiIndexTarget.random(d=40, r=30, degree=4)
    target = MultiIndexTarget.random(d=25, r=20, degree=4, seed=1)
    assert len(target.terms) == 20 + math.comb(22, 3) + math.comb(23, 4)
    assert target.norm2() == pytest.approx(1.0, rel=1e-12)


def test_multi_indices_in_the_former_order():
    import itertools

    for r, k in [(1, 3), (2, 3), (3, 4), (4, 2)]:
        former = [a for a in itertools.product(range(k + 1), repeat=r) if sum(a) == k]
        assert _multi_indices(r, k) == former


def test_U_is_checked_against_the_memory_before_it_is_drawn():
    from replearn import limits

    # U for r = 3, d = 1000: three 1000 × 3 float64 matrices = 72 kB
    with limits.raised(memory_bytes=72_000):
        assert haar_orthonormal_rows(3, 1000, seed=0).shape == (3, 1000)
    with limits.raised(memory_bytes=71_999):
        with pytest.raises(LimitError, match=r"U \(3×1000 float64\) and its QR .* needs 72.0 kB"):
            MultiIndexTarget.from_expression("z1*z2*z3", d=1000)
