"""One giant step then a ridge head, materialised in numpy — the steps of Cui et al.'s
simulation notebook (SPOC-group/OneStepGD_asymptotics, Simulations.ipynb), written for the
tests independently of replearn.theory (which it checks)."""

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
