"""The deterministic dynamics of the overlap m = u·w of spherical online SGD for one neuron on
a single-index target y = g(u·x) + ε (Ben Arous, Gheissari & Jagannath 2021).

One step with a batch of B samples, step η, the Riemannian gradient h (h ⊥ w) of minus the loss
and the projection back to the sphere moves m to (m + η·h·u)/√(1 + η²‖h‖²), so to second order
in η the expected change per step is

    E Δm = η·E[h·u] − (η²/2)·m·E‖h‖²                                  (drift + step-size correction)

The drift is a sum over Hermite coefficients: with σ = Σ_k c_k He_k and g = Σ_k g_k He_k,
E[y·σ(w·x)] = φ(m) = Σ_k k!·c_k·g_k·m^k on the sphere, whose Riemannian gradient has
u-component (1 − m²)·φ′(m), so

    correlation loss −y·σ(w·x):    E[h·u] = (1 − m²)·Σ_k k·k!·c_k·g_k·m^{k−1}
    square loss (σ(w·x) − y)²:     E[h·u] = 2·(1 − m²)·Σ_k k·k!·c_k·g_k·m^{k−1}

(the square loss's extra term E[σσ′(a)·(u·x − a·m)] vanishes: u·x − a·m is independent of a).
The correction needs the second moment of the batch gradient,
E‖h‖² = ‖E h‖² + (E‖h₁‖² − ‖E h‖²)/B with ‖E h‖² = (1 − m²)·(E[h·u])²/(1 − m²)² … written
out: the population gradient is E[h·u]/(1 − m²)·(u − m·w), of squared norm (E[h·u])²/(1 − m²);
and for one sample h₁ = ψ(a, y)·(x − a·w) with ψ = y·σ′(a) (correlation) or
−2(σ(a) − y)·σ′(a) (square), so with (a, ξ) independent N(0, 1), u·x = m·a + √(1 − m²)·ξ and
‖x − a·w‖² = ξ² + χ²_{d−2}:

    E‖h₁‖² = (d − 2)·E[ψ²] + E[ψ²·ξ²]

computed by Gauss–Hermite quadrature in (a, ξ) (exact for polynomial σ and g; the label noise
enters through E ε² = noise²). The ODE in the number of samples t = B·steps is
dm/dt = E Δm / B, integrated with scipy's solve_ivp. ``corrections=False`` keeps the drift
only (the gradient-flow limit η → 0 at fixed η·t).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from replearn.activations import Activation, resolve_activation
from replearn.targets import MultiIndexTarget

__all__ = ["OverlapCurve", "online_overlap_ode", "link_coefficients"]

QUADRATURE_NODES = 80
"""Gauss–Hermite nodes per dimension for E[ψ²] and E[ψ²ξ²]."""


@dataclass(frozen=True)
class OverlapCurve:
    """m(t) of the online-SGD ODE on a grid of sample counts.

    Parameters
    ----------
    samples : numpy.ndarray (T,)
        t, samples used.
    overlap : numpy.ndarray (T,)
        m(t) = u·w.

    Examples
    --------
    >>> import numpy as np
    >>> OverlapCurve(np.array([0.0, 10.0]), np.array([0.1, 0.2])).overlap.tolist()
    [0.1, 0.2]
    """

    samples: np.ndarray
    overlap: np.ndarray


def link_coefficients(target: MultiIndexTarget) -> np.ndarray:
    """g_0 … g_p with g = Σ_k g_k He_k, of a single-index target (r = 1); for a
    non-polynomial link, its exact coefficients up to the target's ``degree_cutoff``.

    Examples
    --------
    >>> import replearn as rl
    >>> t = rl.MultiIndexTarget.from_expression("He2(z1)/sqrt(2)", d=8, seed=0)
    >>> [round(float(c), 6) for c in link_coefficients(t)]
    [0.0, 0.0, 0.707107]
    """
    if target.r != 1:
        raise ValueError(
            f"the online-SGD ODE is for single-index targets (r = 1), got r = {target.r}"
        )
    out = np.zeros(target.degree_cutoff + 1)
    for (k,), c in target.terms.items():
        out[k] += c
    return out


def _drift_sum(m: float, c: np.ndarray, g: np.ndarray) -> float:
    """φ′(m) = Σ_k k·k!·c_k·g_k·m^{k−1}."""
    return sum(
        k * math.factorial(k) * c[k] * g[k] * m ** (k - 1) for k in range(1, min(len(c), len(g)))
    )


def online_overlap_ode(
    target: MultiIndexTarget,
    lr: float,
    n: int,
    m0: float,
    activation: str | Activation = "relu",
    loss: str = "correlation",
    batch_size: int = 1,
    noise: float = 0.0,
    points: int = 257,
    corrections: bool = True,
    samples=None,
) -> OverlapCurve:
    """Integrate dm/dt of spherical online SGD (one neuron f = σ(w·x)) from m(0) = m0.

    Parameters
    ----------
    target : MultiIndexTarget
        A single-index target g(u·x) (its Hermite coefficients g_k).
    lr : float
        η of the simulation (``OnlineSGD.lr_``).
    n : int
        Samples to integrate over.
    m0 : float
        The starting overlap.
    activation : str or Activation
        σ of the student.
    loss : {"correlation", "square"}
    batch_size : int
        B.
    noise : float
        Standard deviation of the label noise.
    points : int
        Grid points in [0, n].
    corrections : bool
        Include the −(η²/2)·m·E‖h‖² term of the projection.
    samples : sequence of float, optional
        Sample counts at which to report m(t), increasing, within [0, n] (default: ``points``
        evenly spaced in [0, n]).

    Returns
    -------
    OverlapCurve

    Examples
    --------
    >>> import replearn as rl
    >>> t = rl.MultiIndexTarget.from_expression("He2(z1)/sqrt(2)", d=256, seed=0)
    >>> curve = online_overlap_ode(t, lr=0.004, n=20_000, m0=0.1, points=3)
    >>> curve.samples.tolist(), [round(float(m), 3) for m in curve.overlap]
    ([0.0, 10000.0, 20000.0], [0.1, 0.738, 0.738])
    """
    from scipy.integrate import solve_ivp

    sigma = resolve_activation(activation)
    g = link_coefficients(target)
    c = np.asarray(sigma.hermite_coefficients(len(g) - 1), dtype=float)
    factor = 2.0 if loss == "square" else 1.0
    d = target.d
    nodes, weights = np.polynomial.hermite_e.hermegauss(QUADRATURE_NODES)
    weights = weights / math.sqrt(2.0 * math.pi)
    a_grid, xi_grid = np.meshgrid(nodes, nodes, indexing="ij")
    weight_grid = np.outer(weights, weights)
    a_t = torch.from_numpy(a_grid)
    sigma_a = sigma(a_t).numpy()
    slope_a = sigma.derivative(a_t).numpy()
    g_values = np.polynomial.hermite_e.hermeval

    def second_moments(m: float) -> tuple[float, float]:
        """E[ψ²], E[ψ²ξ²] with the noise averaged in (E ε = 0, E ε² = noise²)."""
        z = m * a_grid + math.sqrt(max(1.0 - m * m, 0.0)) * xi_grid
        clean = g_values(z, g)
        if loss == "correlation":
            psi2 = (clean**2 + noise**2) * slope_a**2
        else:
            psi2 = 4.0 * ((sigma_a - clean) ** 2 + noise**2) * slope_a**2
        return float((weight_grid * psi2).sum()), float((weight_grid * psi2 * xi_grid**2).sum())

    def rate(_t, state):
        m = float(np.clip(state[0], -1.0, 1.0))
        along = factor * (1.0 - m * m) * _drift_sum(m, c, g)  # E[h·u]
        change = lr * along
        if corrections:
            psi2, psi2_xi2 = second_moments(m)
            single = (d - 2) * psi2 + psi2_xi2
            mean_sq = along * along / (1.0 - m * m) if m * m < 1.0 else 0.0
            second = mean_sq + (single - mean_sq) / batch_size
            change -= 0.5 * lr * lr * m * second
        return [change / batch_size]

    if samples is None:
        grid = np.linspace(0.0, float(n), points)
    else:
        grid = np.asarray(samples, dtype=float)
        if (
            grid.ndim != 1
            or grid.size == 0
            or np.any(np.diff(grid) < 0)
            or grid[0] < 0
            or grid[-1] > n
        ):
            raise ValueError(f"samples must be increasing sample counts within [0, n = {n}]")
    solution = solve_ivp(rate, (0.0, float(n)), [float(m0)], t_eval=grid, rtol=1e-8, atol=1e-10)
    if not solution.success:
        raise RuntimeError(f"the overlap ODE did not integrate: {solution.message}")
    return OverlapCurve(grid, solution.y[0])
