"""Dense kernel solves in the ridge convention c = (K + μI)⁻¹r, μ = n·λ/2.

- ``kernel_matrix``: K = k(X, X) built in row blocks of its upper triangle, straight into the
  column-major lower triangle LAPACK factors in place.
- ``exact_solve``: Cholesky of K + μI (float64, or float32 plus iterative refinement to the
  float64 solution).
- ``EigenPath``: one eigendecomposition K = Q·diag(s)·Qᵀ gives c(μ) and GCV(μ) for a whole path.
- ``cholesky_coefficients``: the primal ridge solution (G + λ/2·I)⁻¹c at a few λ, by Cholesky.
- ``block_rows``: how many rows of a kernel block fit the device's cache-friendly block size.
"""

from __future__ import annotations

import math
import os

import torch

from replearn import progress

__all__ = [
    "block_entries",
    "block_rows",
    "memory_bytes",
    "kernel_matrix",
    "upper_block",
    "symmetric_matvec",
    "cholesky_in_place",
    "cholesky_solve",
    "exact_solve",
    "refine",
    "cholesky_coefficients",
    "EigenPath",
]


def block_entries(device: torch.device) -> int:
    """Entries of one kernel block: a few MB on a CPU (memory-bound ops stay in cache)."""
    return 2**24 if device.type == "cuda" else 2**19


def block_rows(n_cols: int, device: torch.device, cap: int | None = None) -> int:
    rows = max(1, block_entries(device) // max(n_cols, 1))
    return min(rows, cap) if cap else rows


def memory_bytes(device: torch.device) -> int:
    """Total memory of the device (not the free memory, so the choice is reproducible)."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def kernel_matrix(kernel, X: torch.Tensor, dtype, device, diagonal=None) -> torch.Tensor:
    """K = k(X, X) as an (n, n) column-major tensor in ``dtype`` whose lower triangle is set.

    Built in row blocks of the upper triangle of a row-major buffer, whose transpose view is
    the column-major lower triangle that LAPACK factors in place (no copy); the strict upper
    triangle of the view is left unset (Cholesky and eigh(UPLO='L') read the lower one only).
    Blocks are evaluated in X's dtype. ``diagonal``, when given, replaces K_ii (the closed
    forms' exact k(x, x): arccos loses half the digits at θ ≈ 0).
    """
    n = X.shape[0]
    buffer = torch.empty(n, n, dtype=dtype, device=device)
    rows = block_rows(n, device)
    for start in progress.steps(range(0, n, rows), "kernel matrix", unit="block"):
        stop = min(start + rows, n)
        block = upper_block(kernel, X, start, stop, diagonal)
        if not bool(torch.isfinite(block).all()):
            short = str(block.dtype).removeprefix("torch.")
            raise ValueError(
                f"the kernel matrix has non-finite entries: k(x, x') overflowed {short} "
                "(inputs too large); rescale X"
            )
        buffer[start:stop, start:] = block
    return buffer.mT


def upper_block(kernel, X, start, stop, diagonal):
    """k(X[start:stop], X[start:]): rows start…stop−1 of K from the diagonal rightwards."""
    block = kernel(X[start:stop], X[start:])
    if diagonal is not None:
        block[:, : stop - start].diagonal().copy_(diagonal[start:stop])
    return block


def symmetric_matvec(kernel, X, v, diagonal=None, row_abs_sums: bool = False):
    """K v from freshly evaluated upper row-blocks (each used as itself and transposed).

    With ``row_abs_sums`` also returns Σ_j |K_ij| for each i (for ‖K‖_∞).
    """
    n = X.shape[0]
    out = torch.zeros_like(v)
    sums = torch.zeros(n, dtype=torch.float64, device=X.device) if row_abs_sums else None
    rows = block_rows(n, X.device)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        block = upper_block(kernel, X, start, stop, diagonal).to(v.dtype)
        width = stop - start
        out[start:stop] += block @ v[start:]
        out[stop:] += block[:, width:].T @ v[start:stop]
        if row_abs_sums:
            block.abs_()
            sums[start:stop] += block.sum(1)
            sums[stop:] += block[:, width:].sum(0)
    return (out, sums) if row_abs_sums else out


def cholesky_in_place(A: torch.Tensor) -> int:
    """Lower Cholesky factor of a column-major A, written over A; 0 or LAPACK's info."""
    info = torch.empty((), dtype=torch.int32, device=A.device)
    with progress.working(f"Cholesky factorisation (n = {A.shape[0]})"):
        torch.linalg.cholesky_ex(A, out=(A, info))
    return int(info)


def cholesky_solve(L: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(LLᵀ)⁻¹b by two triangular solves (torch.cholesky_solve copies L: 20× slower here)."""
    z = torch.linalg.solve_triangular(L, b[:, None].to(L.dtype), upper=False)
    return torch.linalg.solve_triangular(L.mT, z, upper=True)[:, 0]


def cholesky_coefficients(
    gram: torch.Tensor, cross: torch.Tensor, lambdas: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """a(λ) = (G + (λ/2)·I)⁻¹ c for each λ by Cholesky (float64): ((L, p), ok (L,) bool).

    A λ whose G + (λ/2)·I is not numerically positive definite (G rounded to slightly
    negative eigenvalues, λ tiny) gets ok = False and a zero row.
    """
    gram = gram.to(torch.float64)
    cross = cross.to(torch.float64)
    coefficients = torch.zeros(len(lambdas), gram.shape[0], dtype=torch.float64, device=gram.device)
    ok = torch.zeros(len(lambdas), dtype=torch.bool)
    for row, ridge_lambda in enumerate(lambdas.tolist()):
        if not ridge_lambda > 0:
            continue
        shifted = gram.clone()  # symmetric, so its transpose view is the column-major copy
        shifted.diagonal().add_(ridge_lambda / 2)
        factor = shifted.mT
        if cholesky_in_place(factor) != 0:
            continue
        solution = cholesky_solve(factor, cross)
        if bool(torch.isfinite(solution).all()):
            coefficients[row] = solution
            ok[row] = True
    return coefficients, ok


def exact_solve(kernel, X, r, mu: float, factor_dtype, device, diagonal=None, max_refine=30):
    """c = (K + μI)⁻¹r in float64. Returns (c, information dict).

    float64: K is built in float64, factored in place by Cholesky and solved by two
    triangular solves. float32 (LAPACK's dsposv scheme): K is evaluated and factored in
    float32, and the float64 system is solved by iterative refinement,
    c ← c + L⁻ᵀL⁻¹(r − (K + μI)c), the residual from kernel blocks re-evaluated in float64,
    until ‖res‖_∞ ≤ ‖c‖_∞·‖K + μI‖_∞·ε₆₄·√n; if the float32 factorisation fails or the
    refinement stalls (cond(K + μI)·ε₃₂ not small), it falls back to float64.
    Memory: one n×n matrix in the factorisation's dtype, plus kernel blocks.
    """
    if factor_dtype == torch.float32:
        # the float32 factor only preconditions the refinement, so its matrix is evaluated in
        # float32 too (about twice as fast); the residuals use float64 kernel blocks
        A = kernel_matrix(kernel, X.float(), torch.float32, device, diagonal)
        A.diagonal().add_(mu)
        if cholesky_in_place(A) == 0:
            solution, steps = refine(kernel, X, r, mu, A, diagonal, max_refine)
            if solution is not None:
                return solution, {"factorization": "float32+refinement", "refinement_steps": steps}
        del A
    A = kernel_matrix(kernel, X, torch.float64, device, diagonal)
    A.diagonal().add_(mu)
    info = cholesky_in_place(A)
    if info != 0:
        raise ValueError(
            f"K + (nλ/2)·I is not positive definite (Cholesky failed at column {info}): "
            "the kernel is not positive semi-definite, or λ is too small; use a larger λ"
        )
    return cholesky_solve(A, r), {"factorization": "float64", "refinement_steps": 0}


def refine(kernel, X, r, mu, L32, diagonal, max_refine):
    """Iterative refinement of (K + μI)c = r on a float32 Cholesky factor; (c, steps) or
    (None, steps) when it stalls. Stopping rule of LAPACK's dsposv:
    ‖res‖_∞ ≤ ‖c‖_∞·‖K + μI‖_∞·ε₆₄·√n."""
    n = X.shape[0]
    solution = cholesky_solve(L32, r).double()
    threshold = math.sqrt(n) * torch.finfo(torch.float64).eps
    previous, norm = math.inf, None
    for step in range(max_refine + 1):
        if norm is None:
            product, sums = symmetric_matvec(kernel, X, solution, diagonal, row_abs_sums=True)
            norm = float(sums.max()) + mu
        else:
            product = symmetric_matvec(kernel, X, solution, diagonal)
        residual = r - mu * solution - product
        size = float(residual.abs().max())
        if size <= float(solution.abs().max()) * norm * threshold:
            return solution, step
        if size >= previous:  # stalled: cond(K + μI)·ε₃₂ is not small
            return None, step
        previous = size
        solution += cholesky_solve(L32, residual).double()
    return None, max_refine


INDEFINITE_TOLERANCE = 1e-3  # eigenvalue < −tolerance·max|s|: an indefinite kernel, refused


class EigenPath:
    """All c(μ) = (K + μI)⁻¹r from one eigendecomposition K = Q·diag(s)·Qᵀ (float64)."""

    def __init__(self, K: torch.Tensor, r: torch.Tensor):
        with progress.working(f"eigendecomposition (n = {K.shape[0]})"):
            s, Q = torch.linalg.eigh(K, UPLO="L")
        largest = float(s.abs().max()) if s.numel() else 0.0
        if s.numel() and float(s.min()) < -INDEFINITE_TOLERANCE * largest:
            # rounding moves a PSD kernel's eigenvalues by ~ n·ε·‖K‖, far below 10⁻³·‖K‖;
            # clamping a truly negative spectrum to 0 would let GCV pick μ ≈ 0 and predict ∞
            raise ValueError(
                f"the kernel matrix is not positive semi-definite: eigenvalue "
                f"{float(s.min()):.3g} against a largest |eigenvalue| of {largest:.3g}; a "
                "kernel must satisfy Σ c_i c_j k(x_i, x_j) ≥ 0 — check the kernel function"
            )
        # as RidgePath: eigenvalues at rounding level are exact zeros of a PSD kernel
        null = s <= s.abs().max() * s.shape[0] * torch.finfo(s.dtype).eps
        self.s = s.clamp_min(0.0).masked_fill(null, 0.0)
        self.Q = Q
        self.z = Q.T @ r
        self.n = K.shape[0]

    def stable(self, mus: torch.Tensor, dtype: torch.dtype, tolerance: float = 1e-2):
        """Which μ give coefficients whose predictions mean something in ``dtype``.

        Predictions f = k(·, X)·c are formed from kernel blocks in the model's dtype, with
        rounding δK, ‖δK‖₂ ≈ ε·‖K‖₂ (ε = the dtype's machine epsilon). With c = (K + μI)⁻¹r,
        ‖c‖ ≤ ‖r‖/μ, so ‖δf‖ ≤ ‖δK‖·‖c‖ ≤ ε·s_max·‖r‖/μ: the rounding moves the predictions
        by at most ``tolerance``·‖r‖ when μ ≥ ε·s_max/tolerance. Below that a λ is
        numerically meaningless in ``dtype``, whatever a float64 criterion (GCV) says:
        float32 at d = 1 picked μ ≈ 10⁻⁷ with ε₃₂·s_max ≈ 10⁻⁴ and predicted ~10⁴.
        Returns a boolean mask over ``mus``.
        """
        epsilon = torch.finfo(dtype).eps
        return mus >= epsilon * float(self.s.max()) / tolerance

    def coefficients(self, mus: torch.Tensor) -> torch.Tensor:
        """c(μ) for each μ: (n, L)."""
        return self.Q @ (self.z[:, None] / (self.s[:, None] + mus[None, :]))

    def gcv(self, mus: torch.Tensor) -> torch.Tensor:
        """GCV(λ) = train MSE/(1 − df/n)², df = Σ s/(s + μ): the dual form of RidgePath.gcv."""
        shrink = mus[None, :] / (self.s[:, None] + mus[None, :])  # residual = Q·shrink·z
        residual = ((shrink * self.z[:, None]) ** 2).sum(0) / self.n
        dof = (1.0 - shrink).sum(0)
        return residual / (1.0 - dof / self.n).clamp_min(1e-12) ** 2
