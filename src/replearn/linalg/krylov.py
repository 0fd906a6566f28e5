"""Every ridge solution of a λ grid from one Krylov space: Lanczos on G, started at c.

For every shift μ = λ/2 the ridge solution a(μ) = (G + μI)⁻¹c lies in the Krylov space
K_k = span{c, Gc, …, G^{k−1}c}, which does not depend on μ. Lanczos builds an orthonormal basis
Q_k of K_k and the tridiagonal T_k = Q_kᵀ G Q_k from k products G·q; for every μ at once the
Galerkin solution and its residual are

    a_k(μ) = Q_k y_k(μ),   y_k(μ) = ‖c‖·(T_k + μI)⁻¹ e₁,
    ‖(G + μI) a_k(μ) − c‖ = β_k·|e_kᵀ y_k(μ)|          (β_k: the next off-diagonal of T).

Because G ⪰ 0, ‖(G + μI)⁻¹‖ ≤ 1/μ, so the relative error of a_k(μ) is at most
β_k·|e_kᵀ y_k(μ)| / (μ·‖y_k(μ)‖): a shift counts as converged when that bound is ≤ ``tol``.
Large μ (well conditioned) converge first, after a few dozen products; the smallest λ of the
grid need hundreds. Each step costs one p×p matrix-vector product (memory-bound, 2p² flops)
and a full reorthogonalisation against Q_k (4kp flops; it keeps Q_k orthonormal in floating
point, so the residual formula holds). For the NTK's p = 6 000 features at width 1000 the
solutions the holdout needs come from ≈ 160 products — against a p³/3-flop Cholesky
factorisation per λ or a full eigendecomposition (``RidgePath``).
"""

from __future__ import annotations

import torch

from replearn import progress

__all__ = ["KrylovRidgePath"]


class KrylovRidgePath:
    """a(λ) = (G + (λ/2)·I)⁻¹c for a grid of λ from one Lanczos run (float64).

    Parameters
    ----------
    gram : torch.Tensor
        G (p, p), symmetric positive semi-definite.
    cross : torch.Tensor
        c (p,).
    tol : float
        Bound on the relative error of a(λ) for λ to count as converged.
    max_steps : int, optional
        Most Lanczos steps (default p: the Krylov space is then all of it).

    Examples
    --------
    >>> import torch
    >>> from replearn.linalg.krylov import KrylovRidgePath
    >>> A = torch.randn(200, 50, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> G, c = A.T @ A / 200, A.T @ torch.ones(200, dtype=torch.float64) / 200
    >>> path = KrylovRidgePath(G, c)
    >>> path.extend(20)
    >>> lambdas = torch.tensor([1e-3, 1.0], dtype=torch.float64)
    >>> coefficients, converged = path.solutions(lambdas)
    >>> converged.tolist()                        # λ = 1 converges in 20 steps, λ = 1e-3 not yet
    [False, True]
    >>> exact = torch.linalg.solve(G + 0.5 * torch.eye(50, dtype=torch.float64), c)
    >>> bool(torch.allclose(coefficients[1], exact, rtol=1e-8, atol=0))
    True
    """

    def __init__(
        self,
        gram: torch.Tensor,
        cross: torch.Tensor,
        tol: float = 1e-8,
        max_steps: int | None = None,
    ):
        self.gram = gram.to(torch.float64)
        cross = cross.to(torch.float64)
        p = self.gram.shape[0]
        self.tol = tol
        self.max_steps = p if max_steps is None else min(int(max_steps), p)
        self.cross_norm = float(cross.norm())
        # rows are written before they are read: empty, so untouched rows cost no memory traffic
        self.basis = torch.empty(self.max_steps + 1, p, dtype=torch.float64, device=gram.device)
        self.diagonal: list[float] = []  # α_j of T
        self.off_diagonal: list[float] = []  # β_j of T
        self.exhausted = self.cross_norm == 0.0  # K_k is invariant (or c = 0): exact solutions
        if not self.exhausted:
            self.basis[0] = cross / self.cross_norm

    @property
    def steps(self) -> int:
        return len(self.diagonal)

    @property
    def done(self) -> bool:
        """No more steps possible: the space is invariant under G, or max_steps reached."""
        return self.exhausted or self.steps >= self.max_steps

    def extend(self, steps: int) -> None:
        """Run up to ``steps`` more Lanczos steps (fewer if the space becomes invariant)."""
        scale = float(self.gram.diagonal().abs().max()) if self.gram.numel() else 0.0
        for _ in progress.steps(range(steps), "Lanczos", unit="step"):
            if self.done:
                return
            j = self.steps
            q = self.basis[j]
            w = self.gram @ q
            alpha = float(w @ q)
            w -= alpha * q
            if j > 0:
                w -= self.off_diagonal[-1] * self.basis[j - 1]
            previous = self.basis[: j + 1]
            norm = float(w.norm())
            w -= previous.T @ (previous @ w)  # full reorthogonalisation
            beta = float(w.norm())
            if beta < 0.7 * norm:  # much cancelled: once more (Daniel–Gragg–Kaufman–Stewart)
                w -= previous.T @ (previous @ w)
                beta = float(w.norm())
            self.diagonal.append(alpha)
            self.off_diagonal.append(beta)
            if beta <= 1e-14 * max(scale, 1e-300):  # invariant subspace: solutions exact
                self.exhausted = True
                return
            self.basis[j + 1] = w / beta

    def solutions(self, lambdas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a(λ) for each λ (L, p) float64, converged (L,) bool) from the steps run so far."""
        lambdas = torch.as_tensor(lambdas, dtype=torch.float64, device=self.gram.device)
        p, k = self.gram.shape[0], self.steps
        if k == 0:
            zeros = torch.zeros(len(lambdas), p, dtype=torch.float64, device=self.gram.device)
            return zeros, torch.full((len(lambdas),), self.exhausted, dtype=torch.bool)
        device = self.gram.device
        T = torch.diag(torch.tensor(self.diagonal, dtype=torch.float64, device=device))
        if k > 1:
            beta = torch.tensor(self.off_diagonal[:-1], dtype=torch.float64, device=device)
            T += torch.diag(beta, 1) + torch.diag(beta, -1)
        ritz_values, ritz_vectors = torch.linalg.eigh(T)
        mus = lambdas / 2
        # y(μ) = ‖c‖·V diag(1/(θ + μ)) Vᵀe₁ for every μ: (k, L)
        y = ritz_vectors @ (
            (self.cross_norm * ritz_vectors[0, :])[:, None] / (ritz_values[:, None] + mus[None, :])
        )
        residual = 0.0 if self.exhausted else self.off_diagonal[-1] * y[-1, :].abs()
        bound = residual / (mus * y.norm(dim=0))
        converged = (mus > 0) & torch.isfinite(y).all(0) & (bound <= self.tol)
        coefficients = (self.basis[:k].T @ y).T.contiguous()
        return coefficients, converged.cpu()


def select_on_holdout(
    path: KrylovRidgePath,
    lambdas: torch.Tensor,
    score,
    margin: int = 6,
    first_steps: int = 40,
) -> tuple[int, torch.Tensor] | None:
    """(index of the best λ, criterion per λ: NaN where not scored), or None if undecided.

    Runs Lanczos in rounds of growing length (``first_steps``, then 1.5 times the steps so
    far, so a round overshoots the steps needed by at most half). After each round the
    λ newly converged are scored together (``score(coefficients)`` → criterion (L',), one
    holdout pass). It stops once the best scored λ has its upper neighbour and the ``margin``
    λ below it scored (all worse: with 4 grid points per decade, 6 span a factor of 30 in λ),
    or when every λ is scored. Large λ converge first, so the scored points are the top of
    the grid down to the current convergence front. None: the Krylov space was exhausted
    (``max_steps``) before a λ next to the best converged — the caller falls back to an
    eigendecomposition.
    """
    n_points = len(lambdas)
    criterion = torch.full((n_points,), float("nan"), dtype=torch.float64)
    scored = torch.zeros(n_points, dtype=torch.bool)
    steps = first_steps
    while True:
        path.extend(max(0, steps - path.steps))
        coefficients, converged = path.solutions(lambdas)
        new = converged & ~scored
        if bool(new.any()):
            values = torch.as_tensor(score(coefficients[new.to(coefficients.device)]))
            criterion[new] = values.to(torch.float64).cpu()
            scored |= new
        if bool(scored.all()):
            break
        if bool(scored.any()):
            best = int(torch.argmin(torch.nan_to_num(criterion, nan=float("inf"))))
            upper_ok = best == n_points - 1 or bool(scored[best + 1])
            if upper_ok and bool(scored[max(0, best - margin) : best].all()):
                break
        if path.done:
            return None
        steps = max(steps + 1, (3 * steps) // 2)
    best = int(torch.argmin(torch.nan_to_num(criterion, nan=float("inf"))))
    if best > 0 and not bool(scored[best - 1]):
        return None
    return best, criterion
