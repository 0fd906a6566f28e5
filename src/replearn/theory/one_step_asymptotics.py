r"""The test error after one giant step in the proportional regime (Cui et al. 2024, Ba et al. 2022).

The model (the conventions of Cui et al.'s simulation notebook, SPOC-group/OneStepGD_asymptotics):
x ~ N(0, I_d), y = g(θ·x) + ε (θ a unit vector, g the teacher link as written, ε of variance
ς²); a network f(x) = σ(Wx)ᵀa/√p with a = 1/√p for every neuron and the rows of W⁰ of unit
norm; one step W¹ = W⁰ + η̃·p·G on n₀ = α₀·d samples, G = −∇_W of ½·mean (y − f)²; then a
ridge head a = (FᵀF + λI)⁻¹Fᵀy on F = σ(XW¹ᵀ)/√p from n = α·d fresh samples; p = ψ·d.

**The equivalent spiked random-features model** (Cui et al. 2024, Result 3.1–3.3; the spike
of Ba et al. 2022). With the Hermite numbers of student and teacher

    μ₁ = E[zσ(z)],  ȟ² = E[(σ′(z) − μ₁)²],  c₀ = E[σ(z)] (the network's output at W⁰),
    μ₁* = E[z g(z)],  μ₂* = E[(g(z) − c₀)²] + ς²,  m* = E[g(z)] − c₀,  τ = E[zσ′(z)],

the step is (1/n₀)Σ(y − c₀)σ′(w_j·x)x per neuron: its μ₁-part is the same vector for every
neuron — a rank-one spike r·v along v ∝ Σ(y − c₀)x, whose overlap with θ is γ — and the rest
is a bulk of independent rows:

    W¹ ≃ c_W·W̄ + r·1vᵀ,   r = η̃·μ₁·√(μ₁*² + μ₂*/α₀),   γ = μ₁*/√(μ₁*² + μ₂*/α₀),
    c_W² = (1 + η̃·m*·τ)² + η̃²·μ₂*·ȟ²/α₀,

W̄ with unit rows (the bulk W⁰, rescaled; Cui et al. write c_W² = 1 + η̃²μ₂*ȟ²/α₀ for a
centred problem, m*τ = 0 — tanh students and odd links — which is their setting).
Conditionally on the spike coordinate κ = v·x ~ N(0, 1) the features are Gaussian-equivalent
(the conditional Gaussian equivalence of Cui et al.):

    σ(W¹x) ≃ μ₀(κ)·1 + μ₁(κ)·W x + μ₂(κ)·ξ,   ξ ~ N(0, I_p),
    μ₀(κ) = E σ(rκ + c_W z),  μ₁(κ) = E σ′(rκ + c_W z),  μ₂(κ)² = E σ² − μ₀² − c_W²μ₁²,

and the teacher is y = g(γκ + ρs) + ε with s ⊥ κ, ρ = √(1 − γ²).

**The fixed point** in the overlaps of the readout a (q₁ = aᵀΩa/p, q₂ = aᵀa/p, m = aᵀ1/√p,
θ = aᵀw/√p with w = Wv, ψ_a = aᵀWζ/√p, ζ the teacher's part orthogonal to v; Ω = WΠWᵀ the
features' conditional Gram matrix, Π = I − vvᵀ; D the eigenvalues of WWᵀ, ⟨·⟩ their mean —
Ω has the same ⟨·⟩ up to O(1/p)), at α_p = n/p:

    V(κ) = μ₁²V₁ + μ₂²V₂,   c(κ) = μ₀m + μ₁κθ,
    e(κ) = E[y² | κ] − 2c·h − 2μ₁ψ_a·h₁ + c² + μ₁²q₁ + μ₂²q₂,   h = E[g | κ], h₁ = E[s g | κ]
    q̂₁ = α_p E[μ₁² e/(1 + V)²],   q̂₂ = α_p E[μ₂² e/(1 + V)²]
    V̂₁ = α_p E[μ₁²/(1 + V)],      V̂₂ = α_p E[μ₂²/(1 + V)]
    θ̂ = α_p E[κμ₁(h − c)/(1 + V)],  ψ̂ = α_p E[μ₁h₁/(1 + V)]
    m = E[μ₀(h − μ₁κθ)/(1 + V)] / E[μ₀²/(1 + V)]            (the all-ones direction: unpenalised)
    S = λ + V̂₁D + V̂₂,   N = q̂₁D + q̂₂ + ψ̂²(p/d)D
    V₁ = ⟨D/S⟩, V₂ = ⟨1/S⟩, ψ_a = ψ̂(p/d)⟨D/S⟩,
    q₁ = ⟨DN/S²⟩ + θ̂²·wᵀS⁻¹ΩS⁻¹w,  q₂ = ⟨N/S²⟩ + θ̂²·wᵀS⁻²w,  θ = θ̂·wᵀS⁻¹w

with S = S(Ω) in the quadratic forms of w. ζ is a generic direction for Ω (its squared
projections on Ω's eigenvectors are (p/d)·D, as in Cui et al.'s notebook), but w = Wv is not:
Ω = WWᵀ − wwᵀ has v projected out, so w sits partly in Ω's small eigenvalues (half of it in Ω's
null space when p > d). By Sherman–Morrison, with A = λ + V̂₂ + V̂₁WWᵀ (for which w is generic:
wᵀg(WWᵀ)w → (p/d)⟨D·g(D)⟩),

    x = (p/d)⟨D/S⟩,  x₂ = (p/d)⟨D/S²⟩,  y₂ = (p/d)⟨D²/S²⟩,
    wᵀS⁻¹w = x/(1 − V̂₁x),  wᵀS⁻²w = x₂/(1 − V̂₁x)²,  wᵀS⁻¹ΩS⁻¹w = (y₂ − x²)/(1 − V̂₁x)².

(Cui et al.'s notebook computes these projections numerically on the eigenvectors of WΠWᵀ;
taking w generic instead, θ = θ̂(p/d)⟨D/S⟩, put relu and sigmoid students 5–31 % off the
simulation at d = 1000, and moves tanh settings by < 0.1 %.) θ̂ = A_θ − θB_θ is linear in θ (A_θ = α_p E[κμ₁(h − μ₀m)/(1 + V)],
B_θ = α_p E[κ²μ₁²/(1 + V)]); each iteration solves θ = θ̂·x/(1 − V̂₁x) for θ,
θ = A_θx/(1 − V̂₁x + B_θx), which stays stable where 1 − V̂₁x is small.

(E over κ ~ N(0, 1), by Gauss–Hermite quadrature, as every Gaussian expectation here). The
test error E[(f(x) − g(θ·x))²] is E_κ[e(κ)] with E[g² | κ] in place of E[y² | κ]; the
training error is E_κ[e(κ)/(1 + V)²]. The mean ⟨·⟩ is over the eigenvalues of c_W²·W⁰W⁰ᵀ for
a W⁰ drawn with ``seed`` (finite d), or over c_W² times the Marchenko–Pastur law of ratio ψ
(d → ∞; an atom 1 − 1/ψ at 0 when ψ > 1). With ``bulk="step"`` (finite d) the bulk is instead
that of one drawn step, W¹ minus its common part, with the measured projections of v and ζ on
the eigenvectors of its Ω (and their cross term): the step's bulk is correlated with v and ζ,
which the rescaled bulk leaves out (6–8 % at p = 2d, d = 1000; docs/theory.md).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from replearn.theory.scalar_functions import gauss_hermite, link_function, student_functions

__all__ = ["OneStepAsymptotics", "one_step_asymptotics", "bulk_spectrum", "spike_constants"]

_OVERLAPS = ("q1", "q2", "V1", "V2", "theta", "psi", "m")


@dataclass(frozen=True)
class OneStepAsymptotics:
    """The prediction of :func:`one_step_asymptotics`, one entry per α (in the order given).

    Parameters
    ----------
    alpha : ndarray
        n/d of the ridge head.
    test_error : ndarray
        E[(f(x) − g(θ·x))²] on clean labels (add ς² for the error on noisy labels).
    training_error : ndarray
        (1/n)Σ(yᵢ − f(xᵢ))² on the head's own (noisy) samples.
    overlaps : dict of str to ndarray
        q1, q2, V1, V2, theta, psi, m at the fixed point (see the module docstring).
    iterations : ndarray of int
        Iterations of the damped fixed point.
    gamma : float
        Overlap of the spike with the teacher direction.
    spike : float
        Strength r of the spike.
    bulk_scale : float
        c_W, the norm of the bulk's rows.
    d : int or None
        The dimension of the finite-d spectrum, None for d → ∞.

    Examples
    --------
    >>> result = one_step_asymptotics(d=None, alpha=[1.0])
    >>> result.test_error.shape, sorted(result.overlaps)
    ((1,), ['V1', 'V2', 'm', 'psi', 'q1', 'q2', 'theta'])
    """

    alpha: np.ndarray
    test_error: np.ndarray
    training_error: np.ndarray
    overlaps: dict[str, np.ndarray] = field(repr=False)
    iterations: np.ndarray = field(repr=False)
    gamma: float
    spike: float
    bulk_scale: float
    d: int | None


def _check_positive(name: str, value, strict: bool = True) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.floating | np.integer)
        or not math.isfinite(value)
        or value < 0
        or (strict and value == 0)
    ):
        bound = "> 0" if strict else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def spike_constants(student="tanh", teacher="tanh(z1)", alpha0=0.5, eta=1.0, noise=0.0,
                    n_nodes: int = 201) -> dict[str, float]:  # fmt: skip
    """The spike r, its alignment γ and the bulk scale c_W after one step (module docstring).

    Parameters
    ----------
    student : str or callable
        σ.
    teacher : str or callable
        The link g (an expression in z1, used as written).
    alpha0 : float
        n₀/d of the step (0: no step, r = γ = 0, c_W = 1).
    eta : float
        η̃ (the step is η̃·p·G).
    noise : float
        Standard deviation ς of the label noise.
    n_nodes : int
        Gauss–Hermite nodes.

    Returns
    -------
    dict
        ``spike`` (r), ``gamma`` (γ), ``bulk_scale`` (c_W) and the Hermite numbers they use
        (``mu1``, ``hcheck2``, ``c0``, ``mu1_star``, ``mu2_star``, ``m_star``, ``tau``).

    Examples
    --------
    >>> c = spike_constants("tanh", "tanh(z1)", alpha0=0.5, eta=1.0)
    >>> round(c["gamma"], 3), round(c["spike"], 3), round(c["bulk_scale"], 3)
    (0.563, 0.651, 1.038)
    """
    sigma, dsigma = student_functions(student)
    g = link_function(teacher)
    z, w = gauss_hermite(n_nodes)
    mu1 = float(w @ (z * sigma(z)))
    hcheck2 = float(w @ (dsigma(z) - mu1) ** 2)
    c0 = float(w @ sigma(z))
    tau = float(w @ (z * dsigma(z)))
    gz = np.asarray(g(z), dtype=float)
    mu1_star = float(w @ (z * gz))
    mu2_star = float(w @ (gz - c0) ** 2) + noise**2
    m_star = float(w @ gz) - c0
    if alpha0 == 0:
        spike, gamma, bulk = 0.0, 0.0, 1.0
    else:
        norm = math.sqrt(mu1_star**2 + mu2_star / alpha0)
        spike = eta * mu1 * norm
        gamma = mu1_star / norm if norm > 0 else 0.0
        bulk = math.sqrt((1.0 + eta * m_star * tau) ** 2 + eta**2 * mu2_star * hcheck2 / alpha0)
    return dict(spike=spike, gamma=gamma, bulk_scale=bulk, mu1=mu1, hcheck2=hcheck2, c0=c0,
                mu1_star=mu1_star, mu2_star=mu2_star, m_star=m_star, tau=tau)  # fmt: skip


@functools.lru_cache(maxsize=8)
def _gauss_legendre(n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights on [−1, 1], computed once per size (≈ 0.1 s at 400)."""
    nodes, weights = np.polynomial.legendre.leggauss(n_nodes)
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return nodes, weights


def bulk_spectrum(width_ratio: float, d: int | None = None, seed: int = 0,
                  n_nodes: int = 400) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(eigenvalues, weights) of W⁰W⁰ᵀ (p × p, rows of W⁰ of unit norm), weights summing to 1.

    Finite d: the p = round(ψ·d) eigenvalues of one W⁰ drawn with ``seed``, each of weight 1/p.
    d = None: the Marchenko–Pastur law of ratio ψ = p/d, edges (1 ∓ √ψ)², density
    √((b − x)(x − a))/(2πψx), by Gauss–Legendre in t with x = 1 + ψ − 2√ψ·cos t (the integrand
    is smooth in t even when a = 0), plus an atom 1 − 1/ψ at 0 when ψ > 1.

    Parameters
    ----------
    width_ratio : float
        ψ = p/d.
    d : int or None
        Input dimension, or None for d → ∞.
    seed : int
        Seed of W⁰ (finite d).
    n_nodes : int
        Nodes of the Marchenko–Pastur quadrature.

    Returns
    -------
    tuple of ndarray

    Examples
    --------
    >>> x, w = bulk_spectrum(1.0)                    # MP law: mean 1, second moment 1 + ψ
    >>> round(float(w @ x), 8), round(float(w @ x**2), 8)
    (1.0, 2.0)
    >>> x, w = bulk_spectrum(1.0, d=200, seed=0)     # unit rows: mean exactly 1
    >>> round(float(w @ x), 10)
    1.0
    """
    psi = width_ratio
    if d is None:
        t, weights = _gauss_legendre(n_nodes)
        t = (t + 1.0) * math.pi / 2.0
        weights = weights * math.pi / 2.0
        h = 2.0 * math.sqrt(psi)
        x = 1.0 + psi - h * np.cos(t)
        density = h**2 * np.sin(t) ** 2 / (2.0 * math.pi * psi * x)
        weights = weights * density
        if psi > 1:
            return np.append(x, 0.0), np.append(weights, 1.0 - 1.0 / psi)
        return x, weights
    p = max(1, round(psi * d))
    rng = np.random.default_rng(seed)
    W0 = rng.standard_normal((p, d))
    W0 /= np.linalg.norm(W0, axis=1, keepdims=True)
    small = W0 @ W0.T if p <= d else W0.T @ W0
    eigenvalues = np.clip(np.linalg.eigvalsh(small), 0.0, None)
    if p > d:
        eigenvalues = np.concatenate([eigenvalues, np.zeros(p - d)])
    return eigenvalues, np.full(p, 1.0 / p)


def _drawn_step_bulk(student, teacher, alpha0, eta, noise, width_ratio, d, seed):
    """(D, F, H, X) of the bulk of one drawn step (``bulk="step"``, finite d).

    Draws, with ``seed`` and in this order, W⁰ (p × d, unit rows), the step's n₀ = α₀·d inputs
    and, if ς > 0, their label noise (the order of tests/one_step_simulation.py); takes the
    step W¹ = W⁰ + η̃·mean (yᵢ − f₀(xᵢ))σ′(W⁰xᵢ)xᵢᵀ, its common part u = η̃μ₁·mean (yᵢ − f₀)xᵢ
    (v = u/‖u‖) and the bulk B = W¹ − 1uᵀ; the teacher direction is e₁, ζ ∝ Πe₁. Returns the
    eigenvalues D of Ω = BΠBᵀ and F = p(UᵀBv)², H = p(UᵀBζ)², X = p(UᵀBv)(UᵀBζ)."""
    sigma, dsigma = student_functions(student)
    g = link_function(teacher)
    p, n0 = max(1, round(width_ratio * d)), int(alpha0 * d)
    if n0 < 1:
        raise ValueError(f'bulk="step" needs alpha0 * d >= 1 step samples, got {alpha0 * d:g}')
    rng = np.random.default_rng(seed)
    W0 = rng.standard_normal((p, d))
    W0 /= np.linalg.norm(W0, axis=1, keepdims=True)
    X0 = rng.standard_normal((n0, d))
    y0 = np.asarray(g(X0[:, 0]), dtype=float)
    if noise > 0:
        y0 = y0 + noise * rng.standard_normal(n0)
    pre = X0 @ W0.T
    residual = y0 - sigma(pre).sum(axis=1) / p
    z, w = gauss_hermite(201)
    u = eta * float(w @ (z * sigma(z))) * (residual @ X0) / n0
    B = W0 + eta * (residual[:, None] * dsigma(pre)).T @ X0 / n0 - u[None, :]
    v = u / np.linalg.norm(u)
    zeta = -v[0] * v
    zeta[0] += 1.0
    zeta /= np.linalg.norm(zeta)
    projected = B - np.outer(B @ v, v)
    D, U = np.linalg.eigh(projected @ projected.T)
    spike, teacher_part = U.T @ (B @ v), U.T @ (B @ zeta)
    return (np.clip(D, 0.0, None), p * spike**2, p * teacher_part**2, p * spike * teacher_part)


class _Conditional:
    """The κ-grid of the equivalent model: μ₀, μ₁, μ₂ of the student and h, h₁, E[g²|κ]."""

    def __init__(self, sigma, g, spike, bulk, gamma, noise, n_nodes):
        kappa, weight = gauss_hermite(n_nodes)
        z, wz = gauss_hermite(n_nodes)
        pre = spike * kappa[:, None] + bulk * z[None, :]
        values = sigma(pre)
        self.kappa, self.weight = kappa, weight
        self.mu0 = values @ wz
        self.mu1 = (values * z) @ wz / bulk
        self.mu2sq = np.clip((values**2) @ wz - self.mu0**2 - bulk**2 * self.mu1**2, 0.0, None)
        rho = math.sqrt(max(0.0, 1.0 - gamma**2))
        labels = np.asarray(g(gamma * kappa[:, None] + rho * z[None, :]), dtype=float)
        self.h = labels @ wz
        self.h1 = (labels * z) @ wz
        self.g2 = (labels**2) @ wz
        self.noise2 = noise**2

    def expect(self, values: np.ndarray) -> float:
        return float(self.weight @ values)


def _errors(cond: _Conditional, o: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """(e(κ) on noisy labels, V(κ))."""
    mu1sq = cond.mu1**2
    c = cond.mu0 * o["m"] + cond.mu1 * cond.kappa * o["theta"]
    error = (cond.g2 + cond.noise2 - 2.0 * c * cond.h - 2.0 * cond.mu1 * o["psi"] * cond.h1
             + c**2 + mu1sq * o["q1"] + cond.mu2sq * o["q2"])  # fmt: skip
    return error, mu1sq * o["V1"] + cond.mu2sq * o["V2"]


def _step(cond: _Conditional, D: np.ndarray, wD: np.ndarray, o: dict[str, float],
          alpha_p: float, ratio: float, ridge_lambda: float,
          projections=None) -> dict[str, float]:  # fmt: skip
    """One pass of the fixed-point map (module docstring), overlaps → overlaps.

    ``projections`` None: D is the spectrum of WWᵀ, ζ generic and w = Wv by Sherman–Morrison.
    Else (F, H, X) on the eigenvectors of Ω itself (D its spectrum): F = p(Uᵀw)²,
    H = p(UᵀWζ)², X = p(Uᵀw)(UᵀWζ), as in Cui et al.'s theory notebook plus the cross term."""
    error, V = _errors(cond, o)
    mu1, mu1sq, mu2sq, kappa = cond.mu1, cond.mu1**2, cond.mu2sq, cond.kappa
    q1_hat = alpha_p * cond.expect(mu1sq * error / (1.0 + V) ** 2)
    q2_hat = alpha_p * cond.expect(mu2sq * error / (1.0 + V) ** 2)
    V1_hat = alpha_p * cond.expect(mu1sq / (1.0 + V))
    V2_hat = alpha_p * cond.expect(mu2sq / (1.0 + V))
    # θ̂ = A − θ·B is linear in θ; θ = θ̂·T₀ is solved for θ exactly (below), which keeps the
    # iteration stable where T₀ = x/(1 − V̂₁x) is large
    theta_A = alpha_p * cond.expect(kappa * mu1 * (cond.h - cond.mu0 * o["m"]) / (1.0 + V))
    theta_B = alpha_p * cond.expect(kappa**2 * mu1sq / (1.0 + V))
    psi_hat = alpha_p * cond.expect(mu1 * cond.h1 / (1.0 + V))
    denominator = cond.expect(cond.mu0**2 / (1.0 + V))
    m = (
        cond.expect(cond.mu0 * (cond.h - mu1 * kappa * o["theta"]) / (1.0 + V)) / denominator
        if denominator > 1e-300
        else 0.0
    )
    S = ridge_lambda + V1_hat * D + V2_hat
    D_over_S = float(wD @ (D / S))
    if projections is not None:
        F, H, X = projections
        F_S, H_S, X_S = float(wD @ (F / S)), float(wD @ (H / S)), float(wD @ (X / S))
        theta = (theta_A * F_S + psi_hat * X_S) / (1.0 + theta_B * F_S)  # θ = θ̂F_S + ψ̂X_S
        theta_hat = theta_A - theta_B * theta
        N = q1_hat * D + q2_hat + theta_hat**2 * F + psi_hat**2 * H + 2 * theta_hat * psi_hat * X
        return dict(q1=float(wD @ (D * N / S**2)), q2=float(wD @ (N / S**2)), V1=D_over_S,
                    V2=float(wD @ (1.0 / S)), theta=theta, psi=psi_hat * H_S + theta_hat * X_S,
                    m=m)  # fmt: skip
    N = q1_hat * D + q2_hat + psi_hat**2 * ratio * D
    # the spike's column w = Wv against Ω = WΠWᵀ = WWᵀ − wwᵀ (Sherman–Morrison, module docstring)
    x = ratio * D_over_S
    x2 = ratio * float(wD @ (D / S**2))
    y2 = ratio * float(wD @ (D**2 / S**2))
    spike_over_shrink = theta_A / (1.0 - V1_hat * x + theta_B * x)  # θ̂/(1 − V̂₁x)
    return dict(
        q1=float(wD @ (D * N / S**2)) + spike_over_shrink**2 * (y2 - x**2),
        q2=float(wD @ (N / S**2)) + spike_over_shrink**2 * x2,
        V1=D_over_S,
        V2=float(wD @ (1.0 / S)),
        theta=spike_over_shrink * x,
        psi=psi_hat * ratio * D_over_S,
        m=m,
    )


def _solve(cond, D, wD, alpha_p, ratio, ridge_lambda, start, damping, tol, max_iter, alpha,
           projections=None):  # fmt: skip
    o = dict(start)
    change = math.inf
    for iteration in range(1, max_iter + 1):
        new = _step(cond, D, wD, o, alpha_p, ratio, ridge_lambda, projections)
        change = max(abs(new[k] - o[k]) / (1.0 + abs(o[k])) for k in _OVERLAPS)
        if not math.isfinite(change):
            break
        o = {k: damping * o[k] + (1.0 - damping) * new[k] for k in _OVERLAPS}
        if change < tol:
            return o, iteration
    raise ValueError(
        f"one_step_asymptotics: the fixed point did not converge at alpha={alpha:g} in "
        f"{iteration} iterations (last relative change {change:.3g} > tol={tol:g}); "
        f"raise damping (now {damping:g}) or max_iter"
    )


def one_step_asymptotics(
    student="tanh",
    teacher="tanh(z1)",
    alpha0: float = 0.5,
    eta: float = 1.0,
    ridge_lambda: float = 0.01,
    alpha=(0.5, 1.5, 3.0),
    width_ratio: float = 1.0,
    noise: float = 0.0,
    d: int | None = 1000,
    seed: int = 0,
    *,
    bulk: str = "rescaled",
    damping: float = 0.5,
    tol: float = 1e-9,
    max_iter: int = 20_000,
    n_nodes: int = 121,
) -> OneStepAsymptotics:
    """Predicted test error of a ridge head on σ(W¹x) after one giant step (Cui et al. 2024).

    The fixed point of the equivalent spiked random-features model (module docstring),
    solved by a damped iteration o ← damping·o + (1 − damping)·map(o) until the largest
    relative change of the overlaps is below ``tol``; warm-started from the previous α
    (in increasing α). A fixed point that does not converge is one ``ValueError``.

    Parameters
    ----------
    student : str or callable
        σ: one of tanh, relu, erf, sigmoid, abs, quadratic (x²), linear, or a vectorised
        callable (σ′ by central differences).
    teacher : str or callable
        The single-index link g of y = g(θ·x) + ε, an expression in z1 (numbers, ``+ - * / **``,
        tanh, sin, cos, exp, abs, sign, erf, relu, sigmoid, sqrt, He<k>) used as written
        (not normalised), or a vectorised callable.
    alpha0 : float
        n₀/d, the samples of the step (≥ 0; 0 is the random-features model at W⁰).
    eta : float
        η̃: W¹ = W⁰ + η̃·p·G.
    ridge_lambda : float
        λ of the head a = (FᵀF + λI)⁻¹Fᵀy, F = σ(XW¹ᵀ)/√p (a sum over samples, as in the
        notebook; replearn's learners use (1/n)‖Fa − y‖² + (λ/2)‖a‖², i.e. their λ is 2λ/n).
    alpha : float or sequence of float
        n/d of the head, one prediction each (> 0).
    width_ratio : float
        ψ = p/d.
    noise : float
        Standard deviation ς of the label noise (replearn's ``noise``, as in ``rl.sample``);
        it enters the step (μ₂*) and the head's training labels, not the test error.
    d : int or None
        Input dimension of the finite-d prediction (the empirical spectrum of a W⁰ drawn
        with ``seed``), or None for d → ∞ (Marchenko–Pastur).
    seed : int
        Seed of W⁰ (finite d only; with ``bulk="step"`` also of the step's data).
    bulk : {"rescaled", "step"}
        "rescaled": Cui et al.'s bulk c_W·W⁰, independent of the spike direction v and of
        the teacher's part ζ ⊥ v (their projections on the bulk are those of generic
        directions; d → ∞ allowed). "step" (finite d): the bulk of one step drawn with
        ``seed`` — W¹ minus its common part — with its measured spectrum and projections of
        v and ζ (``_drawn_step_bulk``), beside the theory's r, γ, c_W. The step's bulk is
        correlated with v and ζ (they are built from the same n₀ samples), which the
        rescaled bulk leaves out; it matters for p > d (docs/theory.md). Use a seed other
        than a simulation's to compare with it (the same seed draws the same step).
    damping, tol, max_iter : float, float, int
        The damped iteration: weight of the old overlaps in [0, 1), relative tolerance,
        largest number of iterations per α.
    n_nodes : int
        Gauss–Hermite nodes of each Gaussian expectation.

    Returns
    -------
    OneStepAsymptotics
        ``test_error`` (one per α), ``training_error``, the overlaps, ``gamma``, ``spike``,
        ``bulk_scale``, ``iterations``.

    Examples
    --------
    The setting of Cui et al.'s notebook (tanh student, teacher tanh, α₀ = 0.5, η̃ = 1,
    λ = 0.01), d → ∞:

    >>> result = one_step_asymptotics(d=None, alpha=[0.5, 3.0])
    >>> [round(float(e), 3) for e in result.test_error]
    [0.299, 0.141]
    >>> round(result.gamma, 3)
    0.563
    """
    alpha0 = _check_positive("alpha0", alpha0, strict=False)
    eta = _check_positive("eta", eta, strict=False)
    ridge_lambda = _check_positive("ridge_lambda", ridge_lambda)
    width_ratio = _check_positive("width_ratio", width_ratio)
    noise = _check_positive("noise", noise, strict=False)
    alphas = np.atleast_1d(np.asarray(alpha, dtype=float))
    if alphas.ndim != 1 or alphas.size == 0 or not np.all(np.isfinite(alphas) & (alphas > 0)):
        raise ValueError(f"alpha must be one or more finite numbers > 0, got {alpha!r}")
    if d is not None and (isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 2):
        raise ValueError(f"d must be an integer >= 2 or None (d -> infinity), got {d!r}")
    if not 0.0 <= damping < 1.0:
        raise ValueError(f"damping must be in [0, 1), got {damping!r}")
    sigma, _ = student_functions(student)
    g = link_function(teacher)
    constants = spike_constants(student, g, alpha0, eta, noise)
    if bulk not in ("rescaled", "step"):
        raise ValueError(f"bulk must be 'rescaled' or 'step', got {bulk!r}")
    projections = None
    if bulk == "step":
        if d is None:
            raise ValueError('bulk="step" needs a finite d (it draws one step), got d=None')
        D, *projections = _drawn_step_bulk(student, g, alpha0, eta, noise, width_ratio, int(d),
                                           seed)  # fmt: skip
        wD = np.full(D.size, 1.0 / D.size)
    else:
        D, wD = bulk_spectrum(width_ratio, None if d is None else int(d), seed)
        D = constants["bulk_scale"] ** 2 * D
    cond = _Conditional(sigma, g, constants["spike"], constants["bulk_scale"],
                        constants["gamma"], noise, n_nodes)  # fmt: skip
    start = dict(q1=0.1, q2=0.1, V1=1.0, V2=1.0, theta=0.0, psi=0.0, m=0.0)
    order = np.argsort(alphas, kind="stable")
    overlaps = {k: np.empty(alphas.size) for k in _OVERLAPS}
    test, train, iterations = (np.empty(alphas.size), np.empty(alphas.size),
                               np.empty(alphas.size, dtype=int))  # fmt: skip
    for index in order:
        a = float(alphas[index])
        o, iterations[index] = _solve(cond, D, wD, a / width_ratio, width_ratio, ridge_lambda,
                                      start, damping, tol, max_iter, a, projections)  # fmt: skip
        start = o
        error, V = _errors(cond, o)
        test[index] = cond.expect(error) - cond.noise2
        train[index] = cond.expect(error / (1.0 + V) ** 2)
        for k in _OVERLAPS:
            overlaps[k][index] = o[k]
    return OneStepAsymptotics(
        alpha=alphas, test_error=test, training_error=train, overlaps=overlaps,
        iterations=iterations, gamma=constants["gamma"], spike=constants["spike"],
        bulk_scale=constants["bulk_scale"], d=None if d is None else int(d),
    )  # fmt: skip
