"""Infinite-width kernels of the two-layer ReLU network f(x) = Σ_j a_j·ReLU(w_j·x + b_j), in
closed form (arc-cosine kernels of degree 0 and 1 with a bias).

Neuron j draws w ~ N(0, I_d/d), b ~ N(0, σ_b²), a = ±1. For two inputs x, x' the
pre-activations u = w·x + b and v = w·x' + b are a centred Gaussian pair with

    Var u = ‖x‖²/d + σ_b² =: s₁²,   Var v = ‖x'‖²/d + σ_b² =: s₂²,   Cov(u, v) = x·x'/d + σ_b² =: c,

so, with cos θ = c/(s₁s₂), θ ∈ [0, π] (Cho & Saul 2009; Sheppard's formula for degree 0):

    k₁(x, x') = E[ReLU(u)·ReLU(v)]     = s₁s₂·(sin θ + (π − θ)·cos θ) / (2π)
    k₀(x, x') = E[1[u ≥ 0]·1[v ≥ 0]]   = (π − θ) / (2π)

Random features (head only, first layer frozen): features ReLU(w_j·x + b_j), so

    K_rf(x, x')  = lim (1/m)·Σ_j ReLU(u_j)ReLU(v_j) = k₁(x, x')                (σ_b² = 1)

Linearised network (NTK) at the symmetric initialisation: features ∂f/∂(a_j, w_j, b_j) =
(ReLU(u_j), a_j·1[u_j ≥ 0]·x, a_j·1[u_j ≥ 0]) and a_j² = 1, so

    K_ntk(x, x') = lim (1/m)·Σ_j [ReLU(u_j)ReLU(v_j) + 1[u_j ≥ 0]1[v_j ≥ 0]·(x·x' + 1)]
                 = k₁(x, x') + k₀(x, x')·(x·x' + 1)                         (σ_b² = 0 in the paper)

Both are the per-neuron mean (the NTK parametrisation f = Σ_j/√m); the finite-width kernel
Σ_j of the unscaled network is m times larger, which ridge absorbs into λ.

Every function takes X1 (n1, d) and X2 (n2, d) and returns (n1, n2) in their dtype/device.
"""

from __future__ import annotations

import math

import torch

__all__ = ["rf_kernel", "ntk_kernel", "rf_kernel_diagonal", "ntk_kernel_diagonal", "KERNELS"]

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


def rf_kernel(X1: torch.Tensor, X2: torch.Tensor, bias_variance: float = 1.0) -> torch.Tensor:
    """K_rf(x, x') = E[ReLU(w·x + b)·ReLU(w·x' + b)], w ~ N(0, I/d), b ~ N(0, σ_b²): (n1, n2)."""
    k1, _, _ = _arccos_parts(X1, X2, float(bias_variance), need_k0=False)
    return k1


def ntk_kernel(X1: torch.Tensor, X2: torch.Tensor, bias_variance: float = 0.0) -> torch.Tensor:
    """K_ntk(x, x') = k₁(x, x') + k₀(x, x')·(x·x' + 1), the linearised network's kernel: (n1, n2)."""
    k1, k0, inner = _arccos_parts(X1, X2, float(bias_variance), need_k0=True)
    return k1.addcmul_(k0, inner.add_(1.0))


def rf_kernel_diagonal(X: torch.Tensor, bias_variance: float = 1.0) -> torch.Tensor:
    """K_rf(x, x) = s²/2, s² = ‖x‖²/d + σ_b²: shape (n,)."""
    return (X.pow(2).sum(1) / X.shape[1] + bias_variance) / 2


def ntk_kernel_diagonal(X: torch.Tensor, bias_variance: float = 0.0) -> torch.Tensor:
    """K_ntk(x, x) = s²/2 + (‖x‖² + 1)/2: shape (n,)."""
    norm2 = X.pow(2).sum(1)
    return (norm2 / X.shape[1] + bias_variance) / 2 + (norm2 + 1.0) / 2


# name → (kernel, its diagonal); the diagonal gives tr(K) without building K
KERNELS = {
    "rf": (rf_kernel, rf_kernel_diagonal),
    "ntk": (ntk_kernel, ntk_kernel_diagonal),
}
