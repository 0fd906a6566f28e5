"""Infinite-width kernels of the two-layer network f(x) = Σ_j a_j·σ(w_j·x + b_j), for each
activation σ: closed forms where they exist, a Mehler series otherwise.

Neuron j draws w ~ N(0, I_d/d), b ~ N(0, σ_b²), a = ±1. For two inputs x, x' the
pre-activations u = w·x + b and v = w·x' + b are a centred Gaussian pair with

    Var u = ‖x‖²/d + σ_b² =: s₁²,   Var v = ‖x'‖²/d + σ_b² =: s₂²,   Cov(u, v) = x·x'/d + σ_b² =: c,

correlation ρ = cos θ = c/(s₁s₂), θ ∈ [0, π]. Random features (head only, first layer frozen:
features σ(w_j·x + b_j)) and the linearised network (NTK: features ∂f/∂(a_j, w_j, b_j) =
(σ(u_j), a_j·σ′(u_j)·x, a_j·σ′(u_j)), a_j² = 1) have the per-neuron mean kernels

    K_rf(x, x')  = lim (1/m)·Σ_j σ(u_j)σ(v_j)                 = E[σ(u)σ(v)]             (σ_b² = 1)
    K_ntk(x, x') = lim (1/m)·Σ_j [σ(u_j)σ(v_j) + σ′(u_j)σ′(v_j)·(x·x' + 1)]
                 = E[σ(u)σ(v)] + E[σ′(u)σ′(v)]·(x·x' + 1)                             (σ_b² = 0)

(the NTK parametrisation f = Σ_j/√m; the finite-width kernel Σ_j of the unscaled network is m
times larger, and an output scale c multiplies it by c²: ridge absorbs both into λ).

Closed forms of the pair moment E[g(u)g(v)] (``pair_moments``):

    relu   E[ReLU(u)ReLU(v)]  = s₁s₂·(sin θ + (π − θ)·cos θ)/(2π)   (arc-cosine, Cho & Saul 2009)
           E[1[u≥0]1[v≥0]]    = (π − θ)/(2π)                         (Sheppard)
    erf    E[erf(u)erf(v)]    = (2/π)·arcsin(2c/√((1 + 2s₁²)(1 + 2s₂²)))          (Williams 1997)
           E[erf′(u)erf′(v)]  = (4/π)/√((1 + 2s₁²)(1 + 2s₂²) − 4c²)   (erf′ = 2/√π·e^{−z²}: a
                                                                       Gaussian integral)
    abs    E[|u||v|]          = s₁s₂·(2 sin θ + (π − 2θ)·cos θ)/π     (|z| = ReLU(z) + ReLU(−z))
           E[sign u sign v]   = 1 − 2θ/π
    polynomial σ (linear, quadratic, hermite:k) — Mehler's formula E[h_j(u/s₁)h_k(v/s₂)] = ρ^k·δ_jk
           (h_k = He_k/√k!) with the exact Hermite coefficients of z ↦ σ(s·z),
           He_k(s·z) = Σ_i s^{k−2i}(s² − 1)^i·k!/((k − 2i)!·i!·2^i)·He_{k−2i}(z):
           E[σ(u)σ(v)] = Σ_k ĉ_k(s₁)ĉ_k(s₂)·ρ^k,  ĉ_k(s) = E[σ(s·z)·h_k(z)], a finite sum.

Every other σ (tanh, sigmoid, a user's pair) takes the same Mehler series, truncated after
``MEHLER_TERMS`` terms, with ĉ_k(s) by ``QUADRATURE_NODES``-point Gauss–Hermite quadrature for
each input's s. The truncation error of an entry is at most |ρ|^{K+1}·√(t(s₁)t(s₂)) (Cauchy–
Schwarz), t(s) = E[σ(s·z)²] − Σ_{k≤K} ĉ_k(s)² the energy left above K (computed by the same
quadrature); entries where that bound exceeds ``MEHLER_TOLERANCE``·√(E σ(u)² E σ(v)²) — near
ρ = ±1, i.e. x' ∥ x — are computed instead by tensor Gauss–Hermite quadrature over the pair,
``PAIR_NODES``² nodes (u = s₁z₁, v = s₂(ρz₁ + √(1 − ρ²)z₂)). Why the series and not the
quadrature everywhere: the series costs ≈ 2K flops per entry (K = 128) against 2·64² σ
evaluations. Measured (tests/test_kernels.py): for tanh at s ≤ 1.5 the tail t is below 1e-10
at K = 128, the coefficients change by < 1e-12 from 200 to 300 nodes, and the pair quadrature
changes by < 1e-10 from 64 to 96 nodes per axis.

Every function takes X1 (n1, d) and X2 (n2, d) and returns (n1, n2) in their dtype/device;
ReLU's kernels are computed in that dtype (the code of the paper's experiments, unchanged),
every other σ's in float64, then cast.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from replearn.activations import ACTIVATIONS, Activation, resolve_activation

__all__ = [
    "rf_kernel",
    "ntk_kernel",
    "rf_kernel_diagonal",
    "ntk_kernel_diagonal",
    "KERNELS",
    "PairMoments",
    "pair_moments",
]

MEHLER_TERMS = 128
"""K: the Mehler series of a σ without a closed form stops after ρ^K."""
QUADRATURE_RANGE, QUADRATURE_STEP = 30.0, 0.05
"""Trapezoidal rule on [−30, 30], step 0.05 (1201 nodes) for ĉ_k(s) = E[σ(s·z)·h_k(z)] and
E[σ(s·z)²] (the range covers h_128's oscillations, |z| ≲ 2√128 ≈ 23)."""
MEHLER_TOLERANCE = 1e-10
"""Largest truncation bound of an entry, relative to √(E σ(u)² E σ(v)²), left to the series."""
PAIR_RANGE, PAIR_STEP = 9.0, 0.1
"""Tensor trapezoidal rule on [−9, 9]², step 0.1 (181² nodes), for the entries the series
leaves (φ(9) ≈ 1e-18)."""

_TWO_PI = 2.0 * math.pi


def _arccos_parts(
    X1: torch.Tensor, X2: torch.Tensor, bias_variance: float, need_k0: bool
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """(k₁, k₀ or None, X1 X2ᵀ) for one block.

    Written in place (four (n1, n2) buffers at most): these kernels are memory-bound, and
    every fresh (n1, n2) temporary costs as much as the arithmetic.
    """
    if X1.ndim != 2 or X2.ndim != 2 or X1.shape[1] != X2.shape[1]:
        raise ValueError(
            f"X1 and X2 must be (n1, d) and (n2, d), got {tuple(X1.shape)} and {tuple(X2.shape)}"
        )
    d = X1.shape[1]
    inner = X1 @ X2.T  # x·x'
    s1 = X1.pow(2).sum(1).div_(d).add_(bias_variance).sqrt_()  # s₁ = √(‖x‖²/d + σ_b²)
    s2 = X2.pow(2).sum(1).div_(d).add_(bias_variance).sqrt_()
    # a zero-variance pre-activation (x = 0 and σ_b = 0) is measure-zero under Gaussian
    # inputs; clamping s₁s₂ gives it cos θ = 0
    tiny = torch.finfo(X1.dtype).tiny
    cosine = torch.mul(inner, 1.0 / d).add_(bias_variance)  # c = x·x'/d + σ_b²
    cosine.mul_(s1.clamp_min(tiny).reciprocal()[:, None])
    cosine.mul_(s2.clamp_min(tiny).reciprocal()[None, :]).clamp_(-1.0, 1.0)  # cos θ
    angle = torch.arccos(cosine).neg_().add_(math.pi)  # π − θ
    k1 = torch.mul(cosine, cosine).neg_().add_(1.0).clamp_min_(0.0).sqrt_()  # sin θ
    k1.addcmul_(angle, cosine)  # sin θ + (π − θ) cos θ
    del cosine
    k1.mul_((s1 / _TWO_PI)[:, None]).mul_(s2[None, :])  # · s₁s₂/(2π)
    k0 = angle.div_(_TWO_PI) if need_k0 else None  # (π − θ)/(2π)
    return k1, k0, inner


Moment = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
Diagonal = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class PairMoments:
    """E[g(u)g(v)] for g = σ and g = σ′ over the centred Gaussian pair, and their diagonals.

    Each ``function``/``derivative`` takes s₁ (n1,), s₂ (n2,) and c (n1, n2) in float64 and
    returns (n1, n2); each diagonal takes s (n,) and returns E[g(s·z)²], (n,).

    Parameters
    ----------
    function, derivative : callable
        (s₁, s₂, c) ↦ E[σ(u)σ(v)] and E[σ′(u)σ′(v)].
    function_diagonal, derivative_diagonal : callable
        s ↦ E[σ(s·z)²] and E[σ′(s·z)²].
    method : str
        How they are computed ("closed form", "Mehler (exact)", "Mehler + quadrature").

    Examples
    --------
    >>> import math, torch
    >>> moments = pair_moments("erf")
    >>> s = torch.tensor([1.0], dtype=torch.float64)
    >>> value = moments.function(s, s, torch.ones(1, 1, dtype=torch.float64))   # u = v ~ N(0, 1)
    >>> moments.method, round(float(value), 6), round(2 / math.pi * math.asin(2 / 3), 6)
    ('closed form', 0.464559, 0.464559)
    """

    function: Moment
    derivative: Moment
    function_diagonal: Diagonal
    derivative_diagonal: Diagonal
    method: str


def _angle(s1: torch.Tensor, s2: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """θ = arccos(c/(s₁s₂)) ∈ [0, π] (cos θ = 0 where a variance is 0: measure zero)."""
    tiny = torch.finfo(cov.dtype).tiny
    cosine = cov / (s1.clamp_min(tiny)[:, None] * s2.clamp_min(tiny)[None, :])
    return torch.arccos(cosine.clamp(-1.0, 1.0))


def _relu_moment(s1, s2, cov):
    theta = _angle(s1, s2, cov)
    return (
        s1[:, None]
        * s2[None, :]
        * (torch.sin(theta) + (math.pi - theta) * torch.cos(theta))
        / _TWO_PI
    )


def _step_moment(s1, s2, cov):
    return (math.pi - _angle(s1, s2, cov)) / _TWO_PI


def _abs_moment(s1, s2, cov):
    theta = _angle(s1, s2, cov)
    shape = 2 * torch.sin(theta) + (math.pi - 2 * theta) * torch.cos(theta)
    return s1[:, None] * s2[None, :] * shape / math.pi


def _sign_moment(s1, s2, cov):
    return 1 - 2 * _angle(s1, s2, cov) / math.pi


def _erf_moment(s1, s2, cov):
    scale = torch.sqrt((1 + 2 * s1**2)[:, None] * (1 + 2 * s2**2)[None, :])
    return (2 / math.pi) * torch.arcsin((2 * cov / scale).clamp(-1.0, 1.0))


def _erf_derivative_moment(s1, s2, cov):
    determinant = (1 + 2 * s1**2)[:, None] * (1 + 2 * s2**2)[None, :] - 4 * cov**2
    return (4 / math.pi) / torch.sqrt(determinant)


_CLOSED_FORMS: dict[str, PairMoments] = {
    "relu": PairMoments(
        _relu_moment, _step_moment, lambda s: s**2 / 2, lambda s: torch.full_like(s, 0.5),
        "closed form",
    ),
    "erf": PairMoments(
        _erf_moment,
        _erf_derivative_moment,
        lambda s: (2 / math.pi) * torch.arcsin(2 * s**2 / (1 + 2 * s**2)),
        lambda s: (4 / math.pi) / torch.sqrt(1 + 4 * s**2),
        "closed form",
    ),
    "abs": PairMoments(
        _abs_moment, _sign_moment, lambda s: s**2, torch.ones_like, "closed form"
    ),
}  # fmt: skip


def _correlation(s1, s2, cov) -> torch.Tensor:
    """ρ = c/(s₁s₂) in [−1, 1]; 0 where a variance is 0 (then only ĉ_0 is non-zero)."""
    product = s1[:, None] * s2[None, :]
    return torch.where(
        product > 0, cov / product.clamp_min(torch.finfo(cov.dtype).tiny), 0.0
    ).clamp(-1.0, 1.0)


def _mehler_sum(C1: torch.Tensor, C2: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """Σ_k C1[:, k]·C2[:, k]·ρ^k by Horner's rule: (n1, n2)."""
    K = C1.shape[1] - 1
    out = torch.outer(C1[:, K], C2[:, K])
    for k in range(K - 1, -1, -1):
        out.mul_(rho).addr_(C1[:, k], C2[:, k])
    return out


def _scaled_hermite_coefficients(coefficients: np.ndarray, s: torch.Tensor) -> torch.Tensor:
    """ĉ_j(s) = √j!·c_j(s) of σ(s·z) = Σ_j c_j(s)He_j(z) for σ = Σ_k c_k He_k (finite): (n, P+1).

    He_k(s·z) = Σ_i s^{k−2i}(s² − 1)^i·k!/((k − 2i)!·i!·2^i)·He_{k−2i}(z) (exact)."""
    degree = len(coefficients) - 1
    out = torch.zeros(s.shape[0], degree + 1, dtype=torch.float64, device=s.device)
    for k, c_k in enumerate(coefficients):
        if c_k == 0:
            continue
        for i in range(k // 2 + 1):
            j = k - 2 * i
            weight = math.factorial(k) / (math.factorial(j) * math.factorial(i) * 2**i)
            out[:, j] += float(c_k) * weight * s**j * (s**2 - 1) ** i
    factorials = torch.tensor(
        [math.sqrt(math.factorial(j)) for j in range(degree + 1)], dtype=torch.float64
    )
    return out * factorials.to(s.device)


def _polynomial_moments(coefficients: np.ndarray) -> PairMoments:
    """Exact finite Mehler sums for σ = Σ_k c_k He_k (and σ′ = Σ_k k·c_k He_{k−1})."""
    derivative = np.array([k * c for k, c in enumerate(coefficients)][1:] or [0.0])

    def moment(coefficients):
        def pair(s1, s2, cov):
            C1 = _scaled_hermite_coefficients(coefficients, s1)
            C2 = _scaled_hermite_coefficients(coefficients, s2)
            return _mehler_sum(C1, C2, _correlation(s1, s2, cov))

        def diagonal(s):
            return _scaled_hermite_coefficients(coefficients, s).pow(2).sum(1)

        return pair, diagonal

    (function, function_diagonal), (derivative_fn, derivative_diagonal) = (
        moment(coefficients),
        moment(derivative),
    )
    return PairMoments(
        function, derivative_fn, function_diagonal, derivative_diagonal, "Mehler (exact)"
    )


def _trapezoid_rule(half_range: float, step: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes z = −L, −L + h, …, L and weights h·φ(z) of E over N(0, 1), float64.

    For an integrand g(z)φ(z) analytic in the strip |Im z| < τ the trapezoidal rule's error
    falls like exp(−2πτ/h) (Trefethen & Weideman 2014), and φ(L) cuts the range: σ(s·z) with
    poles at distance τ = π/(2s) (tanh) is integrated far better than by Gauss–Hermite nodes,
    whose error at s = 3 is 1e-4 with 200 of them."""
    z = torch.arange(-half_range, half_range + step / 2, step, dtype=torch.float64)
    return z, step * torch.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def _normalised_hermite_table(z: torch.Tensor, max_degree: int) -> torch.Tensor:
    """h_k(z) = He_k(z)/√k! for k = 0…K by h_{k+1} = (z·h_k − √k·h_{k−1})/√(k+1): (Q, K+1)."""
    table = torch.empty(z.shape[0], max_degree + 1, dtype=torch.float64)
    table[:, 0] = 1.0
    if max_degree >= 1:
        table[:, 1] = z
    for k in range(1, max_degree):
        table[:, k + 1] = (z * table[:, k] - math.sqrt(k) * table[:, k - 1]) / math.sqrt(k + 1)
    return table


class _QuadratureMoment:
    """E[g(u)g(v)] for a smooth g by the Mehler series with quadrature coefficients; entries
    whose truncation bound is too large by quadrature over the pair (module docstring)."""

    def __init__(self, g: Callable[[torch.Tensor], torch.Tensor]):
        self.g = g
        self.z, self.w = _trapezoid_rule(QUADRATURE_RANGE, QUADRATURE_STEP)
        self.table = self.w[:, None] * _normalised_hermite_table(self.z, MEHLER_TERMS)
        z, w = _trapezoid_rule(PAIR_RANGE, PAIR_STEP)
        self.pair_z1, self.pair_z2 = (t.reshape(-1) for t in torch.meshgrid(z, z, indexing="ij"))
        self.pair_w = torch.outer(w, w).reshape(-1)

    def _g(self, t: torch.Tensor) -> torch.Tensor:
        return self.g(t).to(torch.float64)

    def coefficients(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(ĉ_0…ĉ_K of g(s·z), E[g(s·z)²]) for each s: (n, K+1), (n,)."""
        values = self._g(s[:, None] * self.z.to(s.device)[None, :])  # (n, Q)
        return values @ self.table.to(s.device), values.pow(2) @ self.w.to(s.device)

    def diagonal(self, s: torch.Tensor) -> torch.Tensor:
        return self.coefficients(s)[1]

    def __call__(self, s1, s2, cov) -> torch.Tensor:
        C1, energy1 = self.coefficients(s1)
        C2, energy2 = self.coefficients(s2)
        rho = _correlation(s1, s2, cov)
        out = _mehler_sum(C1, C2, rho)
        tail1 = (energy1 - C1.pow(2).sum(1)).clamp_min(0.0)
        tail2 = (energy2 - C2.pow(2).sum(1)).clamp_min(0.0)
        bound = rho.abs().pow(MEHLER_TERMS + 1) * torch.sqrt(torch.outer(tail1, tail2))
        scale = torch.sqrt(torch.outer(energy1, energy2))
        rows, cols = torch.nonzero(bound > MEHLER_TOLERANCE * scale, as_tuple=True)
        for start in range(0, rows.shape[0], 256):
            i, j = rows[start : start + 256], cols[start : start + 256]
            out[i, j] = self._pair(s1[i], s2[j], rho[i, j])
        return out

    def _pair(self, s1, s2, rho) -> torch.Tensor:
        """E[g(s₁z₁)·g(s₂(ρz₁ + √(1 − ρ²)z₂))] for e entries: (e,). Where 1 − |ρ| < 1e-11
        the pair is v = ±(s₂/s₁)·u up to O(1 − ρ²) (the first-order term has mean 0): one
        axis; elsewhere the tensor rule over (z₁, z₂)."""
        out = torch.empty_like(rho)
        aligned = (1 - rho.abs()) < 1e-11
        if aligned.any():
            z, w = self.z.to(s1.device), self.w.to(s1.device)
            a, b = s1[aligned], s2[aligned] * torch.sign(rho[aligned])
            out[aligned] = (self._g(a[:, None] * z) * self._g(b[:, None] * z)) @ w
        if (~aligned).any():
            s1, s2, rho = s1[~aligned], s2[~aligned], rho[~aligned]
            z1, z2, w = (t.to(s1.device) for t in (self.pair_z1, self.pair_z2, self.pair_w))
            u = s1[:, None] * z1
            v = s2[:, None] * (rho[:, None] * z1 + torch.sqrt(1 - rho**2)[:, None] * z2)
            out[~aligned] = (self._g(u) * self._g(v)) @ w
        return out


def _polynomial_coefficients(activation: Activation) -> np.ndarray | None:
    """σ's exact Hermite coefficients c_0…c_P when σ is a named polynomial, else None."""
    if activation.name == "linear":
        return activation.hermite_coefficients(1)
    if activation.name == "quadratic":
        return activation.hermite_coefficients(2)
    if activation.name.startswith("hermite:") and activation.exact_coefficients is not None:
        return activation.hermite_coefficients(int(activation.name.removeprefix("hermite:")))
    return None


_MOMENTS_CACHE: dict[str, PairMoments] = {}


def _same_callable(f, g) -> bool:
    """f is g, or equal partial applications (a pickled and unpickled Activation's)."""
    if isinstance(f, functools.partial) and isinstance(g, functools.partial):
        return f.func is g.func and f.args == g.args and f.keywords == g.keywords
    return f is g


def _is_builtin(activation: Activation) -> bool:
    """Whether σ is a named activation's own (σ, σ′): only then are its name's closed forms
    used (a user's pair may reuse a name)."""
    name = activation.name
    if name in ACTIVATIONS:
        builtin = ACTIVATIONS[name]
    elif name.startswith("hermite:"):
        try:
            builtin = resolve_activation(name)
        except ValueError:
            return False
    else:
        return False
    return _same_callable(activation.function, builtin.function) and _same_callable(
        activation.derivative, builtin.derivative
    )


def pair_moments(activation) -> PairMoments:
    """How E[σ(u)σ(v)] and E[σ′(u)σ′(v)] are computed for an activation (module docstring).

    Parameters
    ----------
    activation : str, Activation or (σ, σ′)
        As a learner's ``activation=`` (``activations.resolve_activation``).

    Returns
    -------
    PairMoments

    Examples
    --------
    >>> [pair_moments(name).method for name in ("relu", "quadratic", "tanh")]
    ['closed form', 'Mehler (exact)', 'Mehler + quadrature']
    """
    activation = resolve_activation(activation)
    named = _is_builtin(activation)
    if named and activation.name in _MOMENTS_CACHE:
        return _MOMENTS_CACHE[activation.name]
    if named and activation.name in _CLOSED_FORMS:
        moments = _CLOSED_FORMS[activation.name]
    elif named and (coefficients := _polynomial_coefficients(activation)) is not None:
        moments = _polynomial_moments(coefficients)
    else:
        function = _QuadratureMoment(activation.function)
        derivative = _QuadratureMoment(activation.derivative)
        moments = PairMoments(
            function, derivative, function.diagonal, derivative.diagonal, "Mehler + quadrature"
        )
    if named:
        _MOMENTS_CACHE[activation.name] = moments
    return moments


def _pair_statistics(X1, X2, bias_variance: float):
    """(s₁, s₂, c, x·x') in float64: the pre-activation pair's standard deviations and
    covariance, and the inner products."""
    if X1.ndim != 2 or X2.ndim != 2 or X1.shape[1] != X2.shape[1]:
        raise ValueError(
            f"X1 and X2 must be (n1, d) and (n2, d), got {tuple(X1.shape)} and {tuple(X2.shape)}"
        )
    X1, X2 = X1.to(torch.float64), X2.to(torch.float64)
    d = X1.shape[1]
    inner = X1 @ X2.T
    s1 = torch.sqrt(X1.pow(2).sum(1) / d + bias_variance)
    s2 = torch.sqrt(X2.pow(2).sum(1) / d + bias_variance)
    return s1, s2, inner / d + bias_variance, inner


def rf_kernel(
    X1: torch.Tensor, X2: torch.Tensor, bias_variance: float = 1.0, activation="relu"
) -> torch.Tensor:
    """K_rf(x, x') = E[σ(w·x + b)·σ(w·x' + b)], w ~ N(0, I/d), b ~ N(0, σ_b²): (n1, n2).

    Parameters
    ----------
    X1, X2 : torch.Tensor
        (n1, d) and (n2, d).
    bias_variance : float
        σ_b² (1: the biases of ``RandomFeatures``).
    activation : str, Activation or (σ, σ′)
        σ (default ReLU: the arc-cosine kernel k₁).

    Returns
    -------
    torch.Tensor
        (n1, n2) in X1's dtype.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    >>> float(rf_kernel(x, x, bias_variance=0.0, activation="linear"))   # E[u²] = ‖x‖²/d
    0.5
    """
    activation = resolve_activation(activation)
    if activation.is_relu:
        k1, _, _ = _arccos_parts(X1, X2, float(bias_variance), need_k0=False)
        return k1
    s1, s2, cov, _ = _pair_statistics(X1, X2, float(bias_variance))
    return pair_moments(activation).function(s1, s2, cov).to(X1.dtype)


def ntk_kernel(
    X1: torch.Tensor, X2: torch.Tensor, bias_variance: float = 0.0, activation="relu"
) -> torch.Tensor:
    """K_ntk(x, x') = E[σ(u)σ(v)] + E[σ′(u)σ′(v)]·(x·x' + 1), the linearised network's kernel.

    Parameters
    ----------
    X1, X2 : torch.Tensor
        (n1, d) and (n2, d).
    bias_variance : float
        σ_b² of b⁰ (0: the paper's initialisation).
    activation : str, Activation or (σ, σ′)
        σ (default ReLU: k₁ + k₀·(x·x' + 1)).

    Returns
    -------
    torch.Tensor
        (n1, n2) in X1's dtype.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    >>> float(ntk_kernel(x, x, activation="linear"))   # ‖x‖²/d + (‖x‖² + 1)
    2.5
    """
    activation = resolve_activation(activation)
    if activation.is_relu:
        k1, k0, inner = _arccos_parts(X1, X2, float(bias_variance), need_k0=True)
        return k1.addcmul_(k0, inner.add_(1.0))
    s1, s2, cov, inner = _pair_statistics(X1, X2, float(bias_variance))
    moments = pair_moments(activation)
    out = moments.function(s1, s2, cov) + moments.derivative(s1, s2, cov) * (inner + 1.0)
    return out.to(X1.dtype)


def _variance(X: torch.Tensor, bias_variance: float) -> torch.Tensor:
    return X.to(torch.float64).pow(2).sum(1) / X.shape[1] + bias_variance


def rf_kernel_diagonal(
    X: torch.Tensor, bias_variance: float = 1.0, activation="relu"
) -> torch.Tensor:
    """K_rf(x, x) = E[σ(s·z)²], s² = ‖x‖²/d + σ_b² (ReLU: s²/2): shape (n,).

    Parameters
    ----------
    X : torch.Tensor
        (n, d).
    bias_variance : float
        σ_b².
    activation : str, Activation or (σ, σ′)
        σ.

    Returns
    -------
    torch.Tensor
        (n,) in X's dtype.
    """
    activation = resolve_activation(activation)
    if activation.is_relu:
        return (X.pow(2).sum(1) / X.shape[1] + bias_variance) / 2
    s = _variance(X, float(bias_variance)).sqrt()
    return pair_moments(activation).function_diagonal(s).to(X.dtype)


def ntk_kernel_diagonal(
    X: torch.Tensor, bias_variance: float = 0.0, activation="relu"
) -> torch.Tensor:
    """K_ntk(x, x) = E[σ(s·z)²] + E[σ′(s·z)²]·(‖x‖² + 1) (ReLU: s²/2 + (‖x‖² + 1)/2): (n,).

    Parameters
    ----------
    X : torch.Tensor
        (n, d).
    bias_variance : float
        σ_b².
    activation : str, Activation or (σ, σ′)
        σ.

    Returns
    -------
    torch.Tensor
        (n,) in X's dtype.
    """
    activation = resolve_activation(activation)
    if activation.is_relu:
        norm2 = X.pow(2).sum(1)
        return (norm2 / X.shape[1] + bias_variance) / 2 + (norm2 + 1.0) / 2
    s = _variance(X, float(bias_variance)).sqrt()
    moments = pair_moments(activation)
    norm2 = X.to(torch.float64).pow(2).sum(1)
    out = moments.function_diagonal(s) + moments.derivative_diagonal(s) * (norm2 + 1.0)
    return out.to(X.dtype)


# name → (kernel, its diagonal); the diagonal gives tr(K) without building K
KERNELS = {
    "rf": (rf_kernel, rf_kernel_diagonal),
    "ntk": (ntk_kernel, ntk_kernel_diagonal),
}
