"""The field's published procedures, re-implemented independently in float64 numpy with every
array materialised, step by step as the public code does them (read, not copied):

- Dandi, Krzakala, Loureiro, Pesce & Stephan 2023, one giant step then ridge
  (lucpoisson/GiantStep, single_step/single_step.ipynb, cells 3, 6 and 9);
- the same paper's several fresh-batch steps (multiple_steps/multiple_steps.ipynb, cell 3);
- Dandi, Troiani, Arnaboldi, Pesce, Zdeborová & Krzakala 2024, full-batch GD on a reused batch
  or on a fresh batch per step (IdePHICS/benefit-reusing-batch, simulation.py: ``committee``
  with online=False / True, ``grad_w``);
- Cui, Pesce, Dandi, Krzakala, Lu, Zdeborová & Loureiro 2024, one giant step then ridge on
  fresh samples (SPOC-group/OneStepGD_asymptotics, Simulations.ipynb, cells 9, 11, 12).

Each function takes its data and initialisation as arguments, so a test can give replearn and
the peer the same numbers and compare the results to rounding, and draws nothing itself.
Their parametrisations are kept (f = σ(XWᵀ)a/√p; W rows of norm √D with h = w·x/√D; summed
losses); the tests map them to replearn's (f = c·Σ a_j σ(w_j·x), loss (1/n)Σ(f − y)²).
"""

from __future__ import annotations

import numpy as np


def relu(t: np.ndarray) -> np.ndarray:
    return np.maximum(t, 0.0)


def relu_prime(t: np.ndarray) -> np.ndarray:
    """Their ReLU′: 1[t > 0] (single_step.ipynb, multiple_steps.ipynb)."""
    return (t > 0).astype(np.float64)


def giant_step_gradient(Z, Y, W, a, sigma=relu, sigma_prime=relu_prime) -> np.ndarray:
    """G = (1/n)·Zᵀ[(1/√p)·(Y − f(Z))·aᵀ ⊙ σ′(ZWᵀ)], f(Z) = σ(ZWᵀ)a/√p: minus the gradient of
    the ½-mean squared loss in W, as a (d, p) matrix (their ``G``; the update is W + η·Gᵀ)."""
    n, p = Z.shape[0], W.shape[0]
    pre = Z @ W.T
    f = sigma(pre) @ a / np.sqrt(p)
    return Z.T @ ((1 / np.sqrt(p)) * np.outer(Y - f, a) * sigma_prime(pre)) / n


def ridge_unnormalised(X: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """argmin ‖y − Xw‖² + λ‖w‖² (their ``ridge_estimator``: primal or dual form by shape)."""
    m, n = X.shape
    if m >= n:
        return np.linalg.solve(X.T @ X + lam * np.eye(n), X.T @ y)
    return X.T @ np.linalg.solve(X @ X.T + lam * np.eye(m), y)


def dandi2023_single_step(Z, Y, Z_test, Y_test, W0, a0, eta, lam) -> dict:
    """One giant step on preprocessed labels, then ridge on σ(ZW¹ᵀ)/√p (single_step.ipynb).

    Returns W1, the ridge weights and the test error mean((ŷ − y)²), where ŷ adds back the
    linear part; the test labels are preprocessed with the test set's own A, B, as there.
    """
    p = W0.shape[0]
    A, B = Y.mean(), (Y[:, None] * Z).mean(axis=0)
    A_test, B_test = Y_test.mean(), (Y_test[:, None] * Z_test).mean(axis=0)
    Y_use = Y - A - Z @ B
    Y_test_use = Y_test - A_test - Z_test @ B_test
    W1 = W0 + eta * giant_step_gradient(Z, Y_use, W0, a0).T
    X, X_test = relu(Z @ W1.T), relu(Z_test @ W1.T)
    w = ridge_unnormalised(X / np.sqrt(p), Y_use, lam)
    prediction = A_test + Z_test @ B_test + X_test @ w / np.sqrt(p)
    del Y_test_use  # their notebook computes it for the ridge's test loss only
    return {"W1": W1, "ridge": w, "test_error": float(np.mean((prediction - Y_test) ** 2))}


def dandi2023_steps(batches, W0, a0, eta) -> list[dict]:
    """T fresh-batch steps W_{t+1} = W_t + η·G_tᵀ, second layer fixed, no preprocessing
    (multiple_steps.ipynb ``gd_step``); per step the gradient rows G_i and the new W."""
    W, out = W0, []
    for Z, Y in batches:
        G = giant_step_gradient(Z, Y, W, a0).T  # (p, d)
        W = W + eta * G
        out.append({"gradient": G, "W": W})
    return out


def dandi2024_committee(batches, X_test, y_test, W0, a, teacher, lr) -> dict:
    """Full-batch GD, one step per training batch (simulation.py ``committee``): the same
    batch every step (online=False) or a fresh one per step (online=True).

    Student f(x) = Σ_k a_k ReLU(w_k·x/√D) with W rows of norm √D; loss Σ_i ½(y_i − f(x_i))²
    (a sum); σ′ = heaviside(h, 1); W ← W − lr·∇. Before each step: the overlaps
    m = W·W*ᵀ/D and the test error Σ ½(y − f)²/N. ``teacher`` is W* (rows of norm √D).
    """
    D = X_test.shape[1]
    W = W0.copy()
    overlaps, errors = [], []

    def student(W, X):
        return relu(W @ X.T / np.sqrt(D)).T @ a

    for X, y in batches:
        overlaps.append(W @ teacher.T / D)
        errors.append(float(np.sum((y_test - student(W, X_test)) ** 2 / 2) / X_test.shape[0]))
        h = W @ X.T / np.sqrt(D)  # (K, N)
        displacement = y - relu(h).T @ a  # (N,)
        gradient = -(displacement[None, :] * a[:, None] * np.heaviside(h, 1)) @ X / np.sqrt(D)
        W = W - lr * gradient
    return {"overlaps": np.array(overlaps), "test_errors": np.array(errors), "W": W}


def dandi2024_batch_reuse(X, y, X_test, y_test, W0, a, teacher, lr, steps) -> dict:
    """``committee`` with online=False: ``steps`` steps on the one batch (X, y)."""
    return dandi2024_committee([(X, y)] * steps, X_test, y_test, W0, a, teacher, lr)


def cui2024_one_step_ridge(Z0, Y0, W0, a0, eta_tilde, ridge_sets, lam) -> dict:
    """One giant step on (Z0, Y0), then ridge on each fresh training set (SPOC-group/
    OneStepGD_asymptotics, Simulations.ipynb cells 3, 9, 11 and 12).

    Student f = tanh(ZWᵀ)a/√p; G = (1/n)·Zᵀ[(1/√p)·(Y − f(Z))·aᵀ ⊙ tanh′(ZWᵀ)];
    W¹ = W⁰ + η̃·p·G (their η = η̃·√p times √p); for each (Z, Y, Z_test, Y_test) in
    ``ridge_sets``: w = argmin ‖Y − Xw/√p‖² + λ‖w‖² on X = tanh(ZW¹ᵀ), test error
    mean (X_test·w/√p − Y_test)² (no preprocessing, no intercept).
    """
    p = W0.shape[0]
    G = giant_step_gradient(
        Z0, Y0, W0, a0, sigma=np.tanh, sigma_prime=lambda t: 1 - np.tanh(t) ** 2
    )
    W1 = W0 + eta_tilde * p * G.T
    errors = []
    for Z, Y, Z_test, Y_test in ridge_sets:
        w = ridge_unnormalised(np.tanh(Z @ W1.T) / np.sqrt(p), Y, lam)
        errors.append(float(np.mean((np.tanh(Z_test @ W1.T) @ w / np.sqrt(p) - Y_test) ** 2)))
    return {"W1": W1, "test_errors": errors}
