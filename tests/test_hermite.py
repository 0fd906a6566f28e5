"""Tests for replearn.hermite against numpy.polynomial.hermite_e and exact arithmetic."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import scipy.integrate
import torch
from numpy.polynomial import hermite_e as H

from replearn import hermite
from replearn.hermite import (
    h,
    he,
    he_all,
    he_at_zero,
    hermite_coefficients,
    hermite_to_monomial,
    monomial_to_hermite,
    relu_hermite_coefficients,
    step_hermite_coefficients,
)

MAX_DEGREE = 20
SHAPES = [(), (7,), (3, 5), (2, 3, 4)]


def unit(k: int) -> np.ndarray:
    """Coefficient vector of He_k in the He basis."""
    e = np.zeros(k + 1)
    e[k] = 1.0
    return e


def reference(k: int, z: np.ndarray) -> np.ndarray:
    """He_k(z) by numpy in float64."""
    return H.hermeval(z, unit(k))


def absolute_bound(k: int, z: np.ndarray) -> np.ndarray:
    """Σ_n |m_n|·|z|^n with m the monomial coefficients of He_k.

    The round-off of any way of evaluating He_k(z) is at most a small multiple of
    eps·k·(this bound): it is the size of the terms that cancel, so it is the natural scale
    of the absolute error (He_k itself can be ~0 near its roots).
    """
    monomial = np.abs(H.herme2poly(unit(k)))
    return np.polynomial.polynomial.polyval(np.abs(z), monomial)


def random_z(shape, dtype, seed=0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (3.0 * torch.randn(shape, generator=generator, dtype=torch.float64)).to(dtype)


# relative tolerance, in units of absolute_bound: ~k·eps with a safety margin
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-13}


# -- he, he_all, h against numpy ----------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_he_matches_hermeval(dtype, shape):
    z = random_z(shape, dtype)
    z64 = z.double().numpy()  # the exact value of the (possibly float32) input
    for k in range(MAX_DEGREE + 1):
        value = he(k, z)
        assert value.shape == z.shape
        assert value.dtype == dtype
        error = np.abs(value.double().numpy() - reference(k, z64))
        assert np.all(error <= TOLERANCE[dtype] * absolute_bound(k, z64) + 1e-300), k


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_he_all_matches_hermeval(dtype, shape):
    z = random_z(shape, dtype, seed=1)
    z64 = z.double().numpy()
    table = he_all(MAX_DEGREE, z)
    assert table.shape == (*z.shape, MAX_DEGREE + 1)
    assert table.dtype == dtype
    for k in range(MAX_DEGREE + 1):
        error = np.abs(table[..., k].double().numpy() - reference(k, z64))
        assert np.all(error <= TOLERANCE[dtype] * absolute_bound(k, z64) + 1e-300), k
        # he_all and he use the same recurrence: identical numbers
        assert torch.equal(table[..., k], he(k, z))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_h_is_he_over_sqrt_factorial(dtype):
    z = random_z((4, 6), dtype, seed=2)
    z64 = z.double().numpy()
    for k in range(MAX_DEGREE + 1):
        expected = reference(k, z64) / math.sqrt(math.factorial(k))
        bound = absolute_bound(k, z64) / math.sqrt(math.factorial(k))
        error = np.abs(h(k, z).double().numpy() - expected)
        assert h(k, z).dtype == dtype
        assert np.all(error <= TOLERANCE[dtype] * bound + 1e-300), k


def test_he_all_degree_zero_and_one():
    z = torch.tensor([[-1.5, 0.0], [2.0, 3.0]], dtype=torch.float64)
    assert torch.equal(he_all(0, z), torch.ones(2, 2, 1, dtype=torch.float64))
    assert torch.equal(he_all(1, z), torch.stack([torch.ones_like(z), z], dim=-1))


def test_he_accepts_numpy_integer_degree():
    z = torch.linspace(-2, 2, 9, dtype=torch.float64)
    assert torch.equal(he(np.int64(3), z), he(3, z))


def test_he_at_zero_matches_hermeval():
    for k in range(MAX_DEGREE + 1):
        value = he_at_zero(k)
        assert isinstance(value, int)
        assert value == H.hermeval(0.0, unit(k))


def test_he_is_differentiable():
    # d/dz He_k = k·He_{k−1}
    z = torch.linspace(-3, 3, 13, dtype=torch.float64, requires_grad=True)
    for k in range(1, 8):
        (grad,) = torch.autograd.grad(he(k, z).sum(), z)
        torch.testing.assert_close(grad, k * he(k - 1, z.detach()), rtol=1e-12, atol=1e-10)


# -- orthogonality --------------------------------------------------------------------------


def test_orthogonality_by_gauss_hermite_quadrature():
    # E[He_j He_k] = k!·δ_jk for j, k ≤ 15. The product has degree ≤ 30, and an n-point
    # Gauss–Hermite rule is exact for degree ≤ 2n − 1, so n = 16 is exact up to round-off.
    max_degree = 15
    nodes, weights = H.hermegauss(16)
    weights = weights / math.sqrt(2 * math.pi)  # weights of E over N(0, 1)
    table = he_all(max_degree, torch.from_numpy(nodes)).numpy()  # (16, 16)
    gram = table.T @ (weights[:, None] * table)
    factorials = np.array([math.factorial(k) for k in range(max_degree + 1)], dtype=np.float64)
    # relative to √(j!·k!), the scale of each entry (Cauchy–Schwarz)
    relative = (gram - np.diag(factorials)) / np.sqrt(np.outer(factorials, factorials))
    assert np.abs(relative).max() < 1e-10

    # normalised h_k: identity
    normalized = table / np.sqrt(factorials)
    gram_h = normalized.T @ (weights[:, None] * normalized)
    np.testing.assert_allclose(gram_h, np.eye(max_degree + 1), atol=1e-10)


def test_orthogonality_exact_in_integers():
    # Exactly, with Gaussian moments E[z^n] = (n−1)!! (n even), 0 (n odd), and the integer
    # monomial coefficients of He_k from hermite_to_monomial.
    def moment(n: int) -> int:
        return 0 if n % 2 else math.prod(range(n - 1, 0, -2))

    max_degree = 15
    monomials = [hermite_to_monomial([0] * k + [1]) for k in range(max_degree + 1)]
    for j in range(max_degree + 1):
        for k in range(max_degree + 1):
            inner = sum(
                a * b * moment(p + q)
                for p, a in enumerate(monomials[j])
                for q, b in enumerate(monomials[k])
            )
            assert inner == (math.factorial(k) if j == k else 0), (j, k)


# -- basis changes --------------------------------------------------------------------------


def test_basis_changes_match_numpy_on_unit_vectors():
    for k in range(MAX_DEGREE + 1):
        e = [0] * k + [1]
        to_monomial = hermite_to_monomial(e)
        to_hermite = monomial_to_hermite(e)
        assert all(isinstance(c, Fraction) for c in to_monomial + to_hermite)
        assert all(c.denominator == 1 for c in to_monomial + to_hermite)  # integers
        # numpy's float results are integers well below 2^53 here: exact comparison
        assert [float(c) for c in to_monomial] == list(H.herme2poly(unit(k)))
        assert [float(c) for c in to_hermite] == list(H.poly2herme(unit(k)))


def random_fractions(rng: np.random.Generator, size: int) -> list[Fraction]:
    return [
        Fraction(int(rng.integers(-50, 51)), int(rng.integers(1, 20)))
        if rng.random() < 0.8
        else Fraction(0)
        for _ in range(size)
    ]


@pytest.mark.parametrize("seed", range(5))
def test_basis_changes_are_exact_inverses(seed):
    rng = np.random.default_rng(seed)
    for size in (1, 2, 5, 11, MAX_DEGREE + 1):
        coefficients = random_fractions(rng, size)
        back = hermite_to_monomial(monomial_to_hermite(coefficients))
        assert back == coefficients
        forth = monomial_to_hermite(hermite_to_monomial(coefficients))
        assert forth == coefficients
        assert len(back) == len(forth) == size
        # numpy agrees in floating point
        # numpy agrees in floating point (it trims trailing zeros: pad back)
        as_float = np.array([float(c) for c in coefficients])
        for ours, numpy_version in (
            (hermite_to_monomial(coefficients), H.herme2poly(as_float)),
            (monomial_to_hermite(coefficients), H.poly2herme(as_float)),
        ):
            padded = np.zeros(size)
            padded[: len(numpy_version)] = numpy_version
            np.testing.assert_allclose([float(c) for c in ours], padded, rtol=1e-12, atol=1e-6)


def test_basis_changes_with_int_input_are_exact():
    # z^4 = He_4 + 6·He_2 + 3·He_0 ; He_4 = z^4 − 6z^2 + 3
    assert monomial_to_hermite([0, 0, 0, 0, 1]) == [3, 0, 6, 0, 1]
    assert hermite_to_monomial([0, 0, 0, 0, 1]) == [3, 0, -6, 0, 1]
    assert hermite_to_monomial([]) == []


def test_basis_changes_with_float_input():
    coefficients = [0.5, -1.25, 2.0, 0.0, 0.1]
    np.testing.assert_allclose(
        np.array(monomial_to_hermite(coefficients), dtype=float),
        H.poly2herme(coefficients),
        rtol=1e-14,
    )
    np.testing.assert_allclose(
        np.array(hermite_to_monomial(coefficients), dtype=float),
        H.herme2poly(coefficients),
        rtol=1e-14,
    )


# -- Hermite coefficients of functions ----------------------------------------------------


def test_hermite_coefficients_of_a_polynomial_are_exact():
    rng = np.random.default_rng(0)
    true = rng.standard_normal(11)  # degree 10 in the He basis
    recovered = hermite_coefficients(lambda z: H.hermeval(z, true), max_degree=14, n_points=30)
    assert recovered.shape == (15,)
    expected = np.concatenate([true, np.zeros(4)])
    np.testing.assert_allclose(recovered, expected, rtol=1e-10, atol=1e-12)


def test_hermite_coefficients_of_a_monomial():
    # z^6 = 15 He_0 + 45 He_2 + 15 He_4 + He_6
    recovered = hermite_coefficients(lambda z: z**6, max_degree=6, n_points=10)
    np.testing.assert_allclose(recovered, [15, 0, 45, 0, 15, 0, 1], rtol=1e-12, atol=1e-11)


def gaussian_quad(fn, scale: float) -> float:
    """∫_0^∞ fn(z)·φ(z) dz by adaptive quadrature, to ~1e-12 relative to ``scale``.

    φ(40) ≈ 1e-348 underflows to 0, so [0, 40] is the half line. ``scale`` is the size of
    the integrand's values, √(k!)·O(1) for He_k, which sets the achievable absolute accuracy.
    """
    density = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    value, error = scipy.integrate.quad(
        lambda z: fn(z) * density(z), 0.0, 40.0, epsabs=1e-13 * scale, epsrel=1e-12, limit=500
    )
    assert error < 1e-12 * scale
    return value


CLOSED_FORM_DEGREE = 12


def test_relu_closed_form_matches_quad():
    coefficients = relu_hermite_coefficients(CLOSED_FORM_DEGREE)
    assert coefficients.shape == (CLOSED_FORM_DEGREE + 1,)
    for k in range(CLOSED_FORM_DEGREE + 1):
        # E[ReLU(z)·He_k(z)] = ∫_0^∞ z·He_k(z)·φ(z) dz ; c_k = that / k!
        scale = math.sqrt(math.factorial(k + 1))
        inner = gaussian_quad(lambda z, k=k: z * H.hermeval(z, unit(k)), scale)
        assert coefficients[k] * math.factorial(k) == pytest.approx(inner, abs=1e-11 * scale)


def test_step_closed_form_matches_quad():
    coefficients = step_hermite_coefficients(CLOSED_FORM_DEGREE)
    assert coefficients.shape == (CLOSED_FORM_DEGREE + 1,)
    for k in range(CLOSED_FORM_DEGREE + 1):
        # E[1[z ≥ 0]·He_k(z)] = ∫_0^∞ He_k(z)·φ(z) dz
        scale = math.sqrt(math.factorial(k))
        inner = gaussian_quad(lambda z, k=k: H.hermeval(z, unit(k)), scale)
        assert coefficients[k] * math.factorial(k) == pytest.approx(inner, abs=1e-11 * scale)


def test_closed_forms_known_values():
    relu = relu_hermite_coefficients(4)
    np.testing.assert_allclose(
        relu,
        [
            1 / math.sqrt(2 * math.pi),
            0.5,
            1 / (2 * math.sqrt(2 * math.pi)),
            0,
            -1 / 24 / math.sqrt(2 * math.pi),
        ],
    )
    step = step_hermite_coefficients(3)
    np.testing.assert_allclose(
        step, [0.5, 1 / math.sqrt(2 * math.pi), 0, -1 / 6 / math.sqrt(2 * math.pi)]
    )
    # Parseval: Σ c_k²·k! = E[ReLU²] = 1/2 (the tail decays like k^{-5/2}, so slowly)
    relu = relu_hermite_coefficients(60)
    factorials = np.array([float(math.factorial(k)) for k in range(61)])
    assert np.sum(relu**2 * factorials) == pytest.approx(0.5, abs=2e-3)
    assert np.sum(relu**2 * factorials) < 0.5


@pytest.mark.parametrize(
    ("fn", "closed_form"),
    [
        (lambda z: np.maximum(z, 0.0), relu_hermite_coefficients),
        (lambda z: (z >= 0).astype(np.float64), step_hermite_coefficients),
    ],
    ids=["relu", "step"],
)
def test_quadrature_converges_to_closed_forms(fn, closed_form):
    max_degree = 10
    exact = closed_form(max_degree)
    errors = [
        np.abs(hermite_coefficients(fn, max_degree, n_points=n) - exact).max()
        for n in (24, 50, 100, 200)  # even n: no node at the kink z = 0
    ]
    # a kink converges slowly (error ~ 1/n) but steadily; numpy's hermegauss overflows
    # beyond a few hundred nodes, so 200 is the finest rule used
    assert all(later < earlier for earlier, later in zip(errors, errors[1:])), errors
    assert errors[-1] < errors[1] / 3
    assert errors[-1] < 1.5e-3


# -- bad input ------------------------------------------------------------------------------

BAD_DEGREES = [-1, 1.5, 2.0, "3", True, None]


@pytest.mark.parametrize("k", BAD_DEGREES)
@pytest.mark.parametrize(
    "call",
    [
        lambda k: he(k, torch.zeros(3)),
        lambda k: he_all(k, torch.zeros(3)),
        lambda k: h(k, torch.zeros(3)),
        lambda k: he_at_zero(k),
        lambda k: hermite_coefficients(np.sin, k),
        lambda k: relu_hermite_coefficients(k),
        lambda k: step_hermite_coefficients(k),
    ],
    ids=["he", "he_all", "h", "he_at_zero", "hermite_coefficients", "relu", "step"],
)
def test_bad_degree_is_a_value_error(call, k):
    with pytest.raises(ValueError, match=r"Hermite degree must be an integer >= 0"):
        call(k)


def test_bad_number_of_quadrature_points():
    with pytest.raises(ValueError, match=r"n_points must be >= 1, got 0"):
        hermite_coefficients(np.sin, 3, n_points=0)


def test_module_exports():
    for name in hermite.__all__:
        assert callable(getattr(hermite, name))
