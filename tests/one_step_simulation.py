"""One giant step then a ridge head, materialised in numpy — the steps of Cui et al.'s
simulation notebook (SPOC-group/OneStepGD_asymptotics, Simulations.ipynb), written for the
tests independently of replearn.theory (which it checks); and the fixed point in the form of
their theory notebook, with the projections of the spike and teacher directions on the bulk's
eigenvectors given explicitly (``fixed_point``)."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

ACTIVATIONS = {
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "relu": (lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float)),
    "erf": (erf, lambda x: 2.0 / math.sqrt(math.pi) * np.exp(-(x**2))),
    "sigmoid": (lambda x: 1.0 / (1.0 + np.exp(-x)), lambda x: 0.25 / np.cosh(x / 2.0) ** 2),
}


def simulate_one_step(d, width, alpha0, eta, ridge_lambda, alphas, seed, student="tanh",
                      link=np.tanh, noise=0.0, n_test=5000):  # fmt: skip
    """Test errors E[(f(x) − g(x₁))²] (on n_test fresh samples) after one step, one per α.

    f(x) = σ(Wx)ᵀa/√p, a = 1/√p, W⁰ rows of unit norm; W¹ = W⁰ + η̃·p·G with G minus the
    gradient of ½·mean (y − f)² on n₀ = α₀·d samples; head a = (FᵀF + λI)⁻¹Fᵀy on
    F = σ(XW¹ᵀ)/√p from α·d fresh samples; y = g(x₁) + ς·N(0, 1).
    """
    sigma, dsigma = ACTIVATIONS[student]
    rng = np.random.default_rng(seed)
    p = width
    W0 = rng.standard_normal((p, d))
    W0 /= np.linalg.norm(W0, axis=1, keepdims=True)
    n0 = int(alpha0 * d)
    X0 = rng.standard_normal((n0, d))
    y0 = link(X0[:, 0]) + noise * rng.standard_normal(n0)
    pre = X0 @ W0.T
    f0 = sigma(pre).sum(axis=1) / p  # σ(Wx)ᵀa/√p with a = 1/√p
    # G_j = −∂/∂w_j ½·mean (y − f)² = mean (y − f)·(a_j/√p)·σ′(w_j·x)·x = mean (y − f)σ′x / p
    G = ((y0 - f0)[:, None] * dsigma(pre)).T @ X0 / (n0 * p)
    W1 = W0 + eta * p * G
    X_test = rng.standard_normal((n_test, d))
    F_test = sigma(X_test @ W1.T) / np.sqrt(p)
    y_test = link(X_test[:, 0])
    errors = []
    for alpha in alphas:
        n = int(alpha * d)
        X = rng.standard_normal((n, d))
        y = link(X[:, 0]) + noise * rng.standard_normal(n)
        F = sigma(X @ W1.T) / np.sqrt(p)
        a = np.linalg.solve(F.T @ F + ridge_lambda * np.eye(p), F.T @ y)
        errors.append(float(np.mean((F_test @ a - y_test) ** 2)))
    return np.array(errors)


def fixed_point(cond, D, F, H, X, alpha_p, ridge_lambda, damping=0.9, tol=1e-10):
    """The fixed point of replearn.theory.one_step_asymptotics (its module docstring) with the
    projections given explicitly, as in Cui et al.'s theory notebook: D the eigenvalues of
    Ω = WΠWᵀ, F = p(UᵀWv)², H = p(UᵀWζ)², X = p(UᵀWv)(UᵀWζ) (the cross term, 0 on average
    for directions independent of W); cond the κ-grid (replearn's _Conditional); α_p = n/p.
    Returns the clean test error."""
    o = dict(q1=0.1, q2=0.1, V1=1.0, V2=1.0, theta=0.0, psi=0.0, m=0.0)
    E, mu0, mu1, kappa = cond.expect, cond.mu0, cond.mu1, cond.kappa
    for _ in range(100_000):
        c = mu0 * o["m"] + mu1 * kappa * o["theta"]
        V = mu1**2 * o["V1"] + cond.mu2sq * o["V2"]
        err = (cond.g2 + cond.noise2 - 2 * c * cond.h - 2 * mu1 * o["psi"] * cond.h1 + c**2
               + mu1**2 * o["q1"] + cond.mu2sq * o["q2"])  # fmt: skip
        q1h, q2h = (alpha_p * E(m2 * err / (1 + V) ** 2) for m2 in (mu1**2, cond.mu2sq))
        V1h, V2h = (alpha_p * E(m2 / (1 + V)) for m2 in (mu1**2, cond.mu2sq))
        th = alpha_p * E(kappa * mu1 * (cond.h - c) / (1 + V))
        ph = alpha_p * E(mu1 * cond.h1 / (1 + V))
        m = E(mu0 * (cond.h - mu1 * kappa * o["theta"]) / (1 + V)) / E(mu0**2 / (1 + V))
        S = ridge_lambda + V1h * D + V2h
        N = q1h * D + q2h + th**2 * F + ph**2 * H + 2 * th * ph * X
        new = dict(q1=np.mean(D * N / S**2), q2=np.mean(N / S**2), V1=np.mean(D / S),
                   V2=np.mean(1 / S), theta=th * np.mean(F / S) + ph * np.mean(X / S),
                   psi=ph * np.mean(H / S) + th * np.mean(X / S), m=m)  # fmt: skip
        change = max(abs(new[k] - o[k]) / (1 + abs(o[k])) for k in o)
        o = {k: damping * o[k] + (1 - damping) * new[k] for k in o}
        if change < tol:
            break
    c = mu0 * o["m"] + mu1 * kappa * o["theta"]
    return E(cond.g2 - 2 * c * cond.h - 2 * mu1 * o["psi"] * cond.h1 + c**2
             + mu1**2 * o["q1"] + cond.mu2sq * o["q2"])  # fmt: skip


def step_bulk(d, p, alpha0, eta, seed, student="tanh", link=np.tanh, noise=0.0):
    """(D, F, H, X) of the bulk of the step drawn by simulate_one_step(..., seed): W¹ = B + 1uᵀ
    with u = η̃μ₁·mean (yᵢ − f₀(xᵢ))xᵢ (the step's part common to all neurons), v = u/‖u‖,
    ζ ∝ (I − vvᵀ)e₁; D the eigenvalues of Ω = BΠBᵀ, U its eigenvectors, F = p(UᵀBv)²,
    H = p(UᵀBζ)², X = p(UᵀBv)(UᵀBζ) — the explicit form of fixed_point's projections."""
    sigma, dsigma = ACTIVATIONS[student]
    rng = np.random.default_rng(seed)  # the draws of simulate_one_step, in its order
    W0 = rng.standard_normal((p, d))
    W0 /= np.linalg.norm(W0, axis=1, keepdims=True)
    n0 = int(alpha0 * d)
    X0 = rng.standard_normal((n0, d))
    y0 = link(X0[:, 0]) + noise * rng.standard_normal(n0)
    pre = X0 @ W0.T
    residual = y0 - sigma(pre).sum(axis=1) / p
    W1 = W0 + eta * (residual[:, None] * dsigma(pre)).T @ X0 / n0
    z, w = np.polynomial.hermite_e.hermegauss(101)
    mu1 = float(w @ (z * sigma(z))) / math.sqrt(2 * math.pi)
    u = eta * mu1 * (residual @ X0) / n0
    v = u / np.linalg.norm(u)
    B = W1 - u[None, :]
    zeta = np.eye(d)[0] - v[0] * v
    zeta /= np.linalg.norm(zeta)
    D, U = np.linalg.eigh((B - np.outer(B @ v, v)) @ (B - np.outer(B @ v, v)).T)
    Fv, Hv = U.T @ (B @ v), U.T @ (B @ zeta)
    return np.clip(D, 0.0, None), p * Fv**2, p * Hv**2, p * Fv * Hv
