"""λ on a grid without an eigendecomposition: Cholesky solves in a coarse-to-fine search.

The ridge head a(λ) = (G + (λ/2)·I)⁻¹ c (``linalg.ridge``) at one λ costs one Cholesky
factorisation of G + (λ/2)·I — p³/3 flops, all BLAS-3 — where ``RidgePath`` pays for a full
float64 eigendecomposition (a tridiagonal reduction that is half memory-bound BLAS-2, plus
the eigenvectors): for the NTK's p = 6 000 tangent features at width 1000, one eigh is the
time of about 30 Cholesky factorisations on one core. A holdout criterion over an L-point
grid (L = 49 by default) rarely needs every point: ``search_grid`` scores

1. a coarse scan, every ``coarse_stride``-th point and the last one,
2. then, around the best point so far, the points at distance s = 6, 3, 2, 1 on each side,
   repeating each s until the best point stays put,

so it ends on a grid point whose two neighbours were scored and are no better (a local
minimum on the grid, the global one among the scored points), after about 5 + 2·4 = 13
scores, in about 5 batches — one holdout pass per batch. On a criterion that is unimodal
over the grid, or whose minimum lies within ``coarse_stride`` points of the best coarse
point's basin, it picks the same grid point as scoring the whole grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from replearn.linalg.dense import cholesky_in_place, cholesky_solve

__all__ = ["cholesky_coefficients", "search_grid"]


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


def search_grid(
    score: Callable[[list[int]], torch.Tensor],
    n_points: int,
    coarse_stride: int = 12,
    strides: Sequence[int] = (6, 3, 2, 1),
) -> tuple[int, torch.Tensor]:
    """(index of the smallest score found, score per grid point: NaN where not scored).

    ``score(indices)`` returns the criterion (float64, NaN/+∞ = unusable) of the grid points
    ``indices``; it is called once per batch, with new points only. Ties go to the smaller
    index, NaN counts as +∞ (the rule of ``ridge.argmin_criterion``).
    """
    if n_points < 1:
        raise ValueError(f"n_points must be >= 1, got {n_points}")
    criterion = torch.full((n_points,), math.nan, dtype=torch.float64)
    scored = torch.zeros(n_points, dtype=torch.bool)

    def evaluate(indices) -> None:
        new = sorted({i for i in indices if 0 <= i < n_points and not scored[i]})
        if new:
            values = torch.as_tensor(score(new), dtype=torch.float64).cpu()
            criterion[new] = values
            scored[new] = True

    def best() -> int:
        return int(torch.argmin(torch.nan_to_num(criterion, nan=math.inf)))

    evaluate(list(range(0, n_points, coarse_stride)) + [n_points - 1])
    for stride in strides:
        while True:
            centre = best()
            evaluate([centre - stride, centre + stride])
            if best() == centre:
                break
    return best(), criterion
