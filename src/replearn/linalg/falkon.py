"""Falkon: Nyström centres + preconditioned conjugate gradient (Rudi, Carratino, Rosasco 2017),
for every λ of a path at once, in the ridge convention of ``linalg.ridge``."""

from __future__ import annotations

from typing import NamedTuple

import torch

from replearn import progress
from replearn.linalg.dense import block_rows

__all__ = ["FalkonResult", "falkon", "jittered_cholesky"]


class FalkonResult(NamedTuple):
    coefficients: torch.Tensor  # (M, L): c for each λ
    n_iter: int
    converged: torch.Tensor  # (L,) bool
    residuals: torch.Tensor  # (L,) final relative residuals of the preconditioned systems


def falkon(
    kernel, X, r, centres, lambdas, dtype, tol: float, max_iter: int, centres_diagonal=None
) -> FalkonResult:
    """Nyström kernel ridge for every λ at once, by preconditioned CG.

    Problem (our convention): min_c (1/n)‖K_nM c − r‖² + (λ/2)·cᵀK_MM c, i.e.
        H c = K_nMᵀr/n,   H = K_nMᵀK_nM/n + (λ/2)·K_MM.
    Preconditioner: K_nMᵀK_nM/n ≈ K_MM²/M (uniform centres), so with K_MM = LLᵀ,
        H ≈ L·(LᵀL/M + (λ/2)I)·Lᵀ = L·A·Aᵀ·Lᵀ,   and we solve Bᵀ H B β = Bᵀ K_nMᵀr/n,
    B = L⁻ᵀA⁻ᵀ, c = Bβ. With LᵀL/M = V·diag(e)·Vᵀ, A = V·diag(e + λ/2)^½ serves every λ with
    one M×M eigendecomposition, so all λ of the path run together and share each pass over the
    kernel blocks K_nM (streamed, never stored: memory O(rows·M + M·L + M²)); a λ whose
    system has converged (relative residual ≤ tol) drops out of the products.
    """
    n, M = X.shape[0], centres.shape[0]
    device = X.device
    K_MM = kernel(centres, centres).double()
    if centres_diagonal is not None:
        K_MM.diagonal().copy_(centres_diagonal)
    L = jittered_cholesky(K_MM)
    e, V = torch.linalg.eigh(L.T @ L / M)
    D = e.clamp_min(0.0)[:, None] + lambdas[None, :] / 2  # (M, L): diag(e + λ/2) per λ
    D_isqrt = D.rsqrt()
    centres_k = centres.to(dtype)
    X_k = X.to(dtype)
    rows = block_rows(M, device)

    def knm_t_knm(u: torch.Tensor) -> torch.Tensor:
        """K_nMᵀ(K_nM u)/n for u (M, L), streaming K_nM in row blocks."""
        out = torch.zeros_like(u)
        u_k = u.to(dtype)
        for start in range(0, n, rows):
            block = kernel(X_k[start : start + rows], centres_k)
            out += (block.T @ (block @ u_k)).double()
        return out / n

    def solve_L(v, transpose=False):
        return torch.linalg.solve_triangular(L.T if transpose else L, v, upper=transpose)

    def apply_B(beta, cols):  # B β = L⁻ᵀ V D^{-½} β, for the λ of columns cols
        return solve_L(V @ (D_isqrt[:, cols] * beta), transpose=True)

    def apply_Bt(v, cols):  # Bᵀ v = D^{-½} Vᵀ L⁻¹ v
        return D_isqrt[:, cols] * (V.T @ solve_L(v))

    def operator(beta, cols):  # Bᵀ H B β = Bᵀ K_nMᵀK_nM B β/n + (λ/2) D⁻¹ β
        shift = (lambdas[cols][None, :] / 2) / D[:, cols]
        return apply_Bt(knm_t_knm(apply_B(beta, cols)), cols) + shift * beta

    # right-hand side Bᵀ K_nMᵀ r / n
    knm_r = torch.zeros(M, dtype=torch.float64, device=device)
    for start in range(0, n, rows):
        block = kernel(X_k[start : start + rows], centres_k)
        knm_r += (block.T @ r[start : start + rows].to(dtype)).double()
    every = torch.arange(lambdas.shape[0], device=device)
    rhs = apply_Bt((knm_r / n)[:, None].expand(M, lambdas.shape[0]), every)

    # conjugate gradient, one independent system per column (per λ)
    tiny = torch.finfo(torch.float64).tiny
    beta = torch.zeros_like(rhs)
    residual = rhs.clone()
    direction = residual.clone()
    rho = (residual * residual).sum(0)
    rhs_norm = rhs.norm(dim=0).clamp_min(tiny)
    converged = rho.sqrt() <= tol * rhs_norm
    n_iter = 0
    for _ in progress.steps(range(max_iter), "Falkon conjugate gradients", unit="iter"):
        if bool(converged.all()):
            break
        n_iter += 1
        cols = (~converged).nonzero()[:, 0]
        d = direction[:, cols]
        Ad = operator(d, cols)
        step = rho[cols] / (d * Ad).sum(0).clamp_min(tiny)
        beta[:, cols] += step * d
        residual[:, cols] -= step * Ad
        rho_new = (residual[:, cols] ** 2).sum(0)
        direction[:, cols] = residual[:, cols] + (rho_new / rho[cols].clamp_min(tiny)) * d
        rho[cols] = rho_new
        converged[cols] = rho_new.sqrt() <= tol * rhs_norm[cols]
    relative = residual.norm(dim=0) / rhs_norm
    return FalkonResult(apply_B(beta, every), n_iter, converged, relative)


def jittered_cholesky(K_MM: torch.Tensor) -> torch.Tensor:
    """Cholesky of K_MM + εI, ε = M·ε₆₄·mean diag, grown ×100 until it succeeds (as Falkon)."""
    M = K_MM.shape[0]
    scale = float(K_MM.diagonal().mean().clamp_min(torch.finfo(torch.float64).tiny))
    jitter = M * torch.finfo(torch.float64).eps * scale
    eye = torch.eye(M, dtype=K_MM.dtype, device=K_MM.device)
    for _ in range(8):
        L, info = torch.linalg.cholesky_ex(K_MM + jitter * eye)
        if int(info) == 0:
            return L
        jitter *= 100
    raise ValueError("the centres' kernel matrix K_MM is not positive semi-definite")
