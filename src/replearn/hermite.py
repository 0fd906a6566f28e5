"""Probabilists' Hermite polynomials He_k and the tools built on them.

He_0 = 1, He_1 = z, He_{k+1}(z) = z·He_k(z) − k·He_{k−1}(z).
Orthogonality under z ~ N(0, 1): E[He_j(z)·He_k(z)] = k!·δ_jk.
Normalised: h_k = He_k/√k!, so E[h_j h_k] = δ_jk.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction

import numpy as np
import torch

__all__ = [
    "he",
    "he_all",
    "h",
    "he_at_zero",
    "monomial_to_hermite",
    "hermite_to_monomial",
    "hermite_coefficients",
    "relu_hermite_coefficients",
    "step_hermite_coefficients",
]


def _check_degree(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise ValueError(f"Hermite degree must be an integer >= 0, got {k!r}")
    return int(k)


def he_all(max_degree: int, z: torch.Tensor) -> torch.Tensor:
    """He_0(z), …, He_K(z) by the three-term recurrence; shape z.shape + (K+1,).

    Parameters
    ----------
    max_degree : int
        K ≥ 0.
    z : torch.Tensor
        Points, any shape.

    Returns
    -------
    torch.Tensor
        ``out[..., k] = He_k(z)``.

    Examples
    --------
    >>> he_all(3, torch.tensor([2.0]))        # 1, z, z² − 1, z³ − 3z at z = 2
    tensor([[1., 2., 3., 2.]])
    """
    max_degree = _check_degree(max_degree)
    values = [torch.ones_like(z)]
    if max_degree >= 1:
        values.append(z.clone())
    for k in range(1, max_degree):
        values.append(z * values[k] - k * values[k - 1])
    return torch.stack(values, dim=-1)


def he(k: int, z: torch.Tensor) -> torch.Tensor:
    """He_k(z) elementwise, any shape and floating dtype.

    He_0 = 1, He_1 = z, He_{k+1}(z) = z·He_k(z) − k·He_{k−1}(z).

    Parameters
    ----------
    k : int
        Degree, ≥ 0.
    z : torch.Tensor
        Points, any shape.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as z.

    Examples
    --------
    >>> import torch
    >>> he(3, torch.tensor([1.0, 2.0, 3.0]))           # z³ − 3z
    tensor([-2.,  2., 18.])

    Orthogonality E[He_j·He_3] = 3!·δ_j3, by 10-node Gauss–Hermite quadrature (exact here):

    >>> import math, numpy as np
    >>> nodes, weights = np.polynomial.hermite_e.hermegauss(10)
    >>> z, w = torch.from_numpy(nodes), torch.from_numpy(weights) / math.sqrt(2 * math.pi)
    >>> moments = [float((w * he(j, z) * he(3, z)).sum()) for j in range(5)]
    >>> round(moments[3], 9), max(abs(moments[j]) for j in (0, 1, 2, 4)) < 1e-12
    (6.0, True)
    """
    k = _check_degree(k)
    prev, cur = torch.ones_like(z), z
    if k == 0:
        return prev
    for j in range(1, k):
        prev, cur = cur, z * cur - j * prev
    return cur


def h(k: int, z: torch.Tensor) -> torch.Tensor:
    """Normalised h_k(z) = He_k(z)/√k!, so E[h_k(z)²] = 1 for z ~ N(0, 1).

    Parameters
    ----------
    k : int
        Degree, ≥ 0.
    z : torch.Tensor
        Points, any shape.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as z.

    Examples
    --------
    >>> h(2, torch.tensor([1.0, 0.0]))         # (z² − 1)/√2
    tensor([ 0.0000, -0.7071])
    """
    return he(k, z) / math.sqrt(math.factorial(_check_degree(k)))


def he_at_zero(k: int) -> int:
    """He_k(0) = (−1)^{k/2}·(k−1)!! for even k, 0 for odd k."""
    k = _check_degree(k)
    if k % 2:
        return 0
    double_factorial = math.prod(range(k - 1, 0, -2)) if k else 1
    return (-1) ** (k // 2) * double_factorial


def _as_exact(c: float | int | Fraction) -> Fraction | float:
    if isinstance(c, Fraction | int) and not isinstance(c, bool):
        return Fraction(c)
    return float(c)


def monomial_to_hermite(coefficients: Sequence[float | int | Fraction]) -> list:
    """Coefficients of Σ_n m_n z^n in the He basis (exact for int/Fraction input).

    z^n = Σ_j n!/(j!·2^j·(n−2j)!) · He_{n−2j}(z).
    """
    coefficients = [_as_exact(c) for c in coefficients]
    out: list = [Fraction(0)] * len(coefficients)
    for n, m_n in enumerate(coefficients):
        if m_n == 0:
            continue
        for j in range(n // 2 + 1):
            weight = math.factorial(n) // (math.factorial(j) * 2**j * math.factorial(n - 2 * j))
            out[n - 2 * j] = out[n - 2 * j] + m_n * weight
    return out


def hermite_to_monomial(coefficients: Sequence[float | int | Fraction]) -> list:
    """Coefficients of Σ_n c_n He_n(z) in the monomial basis (exact for int/Fraction input).

    He_n(z) = Σ_j (−1)^j n!/(j!·2^j·(n−2j)!) · z^{n−2j}.
    """
    coefficients = [_as_exact(c) for c in coefficients]
    out: list = [Fraction(0)] * len(coefficients)
    for n, c_n in enumerate(coefficients):
        if c_n == 0:
            continue
        for j in range(n // 2 + 1):
            weight = math.factorial(n) // (math.factorial(j) * 2**j * math.factorial(n - 2 * j))
            out[n - 2 * j] = out[n - 2 * j] + c_n * (-1) ** j * weight
    return out


def hermite_coefficients(
    fn: Callable[[np.ndarray], np.ndarray], max_degree: int, n_points: int = 200
) -> np.ndarray:
    """c_k with fn ≈ Σ_k c_k He_k, by Gauss–Hermite quadrature: c_k = E[fn(z)·He_k(z)]/k!.

    Exact for polynomials of degree < 2·n_points − max_degree; for functions with a kink
    (ReLU) the error decays slowly in n_points — use ``relu_hermite_coefficients``.

    Parameters
    ----------
    fn : callable
        numpy array → numpy array, elementwise.
    max_degree : int
        The last k, ≥ 0.
    n_points : int
        Gauss–Hermite nodes, ≥ 1.

    Returns
    -------
    numpy.ndarray
        (max_degree + 1,), c_0 … c_K.

    Examples
    --------
    >>> coefficients = hermite_coefficients(lambda z: z**3, 3)   # z³ = He_3 + 3·He_1
    >>> [round(float(c), 9) + 0.0 for c in coefficients]
    [0.0, 3.0, 0.0, 1.0]
    """
    max_degree = _check_degree(max_degree)
    if n_points < 1:
        raise ValueError(f"n_points must be >= 1, got {n_points}")
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_points)
    weights = weights / math.sqrt(2 * math.pi)  # weights of E over N(0, 1)
    values = np.asarray(fn(nodes), dtype=np.float64)
    table = he_all(max_degree, torch.from_numpy(nodes)).numpy()  # (n_points, K+1)
    factorials = np.array([math.factorial(k) for k in range(max_degree + 1)], dtype=np.float64)
    return (weights * values) @ table / factorials


def relu_hermite_coefficients(max_degree: int) -> np.ndarray:
    """Exact c_k of ReLU(z) = Σ_k c_k He_k(z).

    E[ReLU·He_0] = 1/√(2π), E[ReLU·He_1] = 1/2, and for k ≥ 2 Gaussian integration by
    parts (E[f·He_k] = E[f^(k)], ReLU'' = δ) gives E[ReLU·He_k] = He_{k−2}(0)/√(2π).
    """
    max_degree = _check_degree(max_degree)
    inner = [1 / math.sqrt(2 * math.pi), 0.5]
    inner += [he_at_zero(k - 2) / math.sqrt(2 * math.pi) for k in range(2, max_degree + 1)]
    return np.array([inner[k] / math.factorial(k) for k in range(max_degree + 1)], dtype=np.float64)


def step_hermite_coefficients(max_degree: int) -> np.ndarray:
    """Exact c_k of ReLU'(z) = 1[z ≥ 0] = Σ_k c_k He_k(z).

    E[1[z≥0]] = 1/2 and, for k ≥ 1, E[1[z≥0]·He_k] = He_{k−1}(0)/√(2π).
    """
    max_degree = _check_degree(max_degree)
    inner = [0.5] + [he_at_zero(k - 1) / math.sqrt(2 * math.pi) for k in range(1, max_degree + 1)]
    return np.array([inner[k] / math.factorial(k) for k in range(max_degree + 1)], dtype=np.float64)
