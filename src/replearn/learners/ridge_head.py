"""A ridge head on frozen features, with λ chosen on a holdout (or by GCV): the last step of
Algorithm 1, random features and the NTK's primal form.

One pass over the training source accumulates G = FᵀF/n, c = Fᵀr/n (r the preprocessed
labels); one eigendecomposition gives a(λ) for every λ (``linalg.ridge.RidgePath``); one pass
over the holdout scores the whole λ-path at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from replearn import progress
from replearn.learners.sources import Source, preprocessed_chunks
from replearn.linalg.ridge import GramAccumulator, HoldoutErrors, RidgePath, default_lambda_grid

__all__ = [
    "RidgeHead",
    "accumulate_gram",
    "fit_ridge_head",
    "check_finite_moments",
    "check_interpolation",
]


@dataclass
class RidgeHead:
    """A fitted head: coefficients a, the λ used, and the λ-path criterion (if λ was chosen)."""

    coefficients: torch.Tensor
    ridge_lambda: float
    lambda_path: torch.Tensor | None = None
    lambda_criterion: torch.Tensor | None = None
    criterion_name: str | None = None


def accumulate_gram(
    features: Callable[[torch.Tensor], torch.Tensor],
    n_features: int,
    source: Source,
    n: int,
    start: int,
    alpha: torch.Tensor | None,
    beta: torch.Tensor | None,
    chunk_size: int,
    dtype: torch.dtype,
    device: torch.device,
) -> GramAccumulator:
    """FᵀF, Fᵀr, rᵀr over the source, r = y − α − β·x the preprocessed label."""
    acc = GramAccumulator(n_features, device=device)
    chunks = preprocessed_chunks(source, n, start, alpha, beta, chunk_size, dtype, device)
    for X, r in progress.labelled("Gram pass", chunks):
        acc.add(features(X), r)
    return acc


def fit_ridge_head(
    features: Callable[[torch.Tensor], torch.Tensor],
    n_features: int,
    source: Source,
    n: int,
    start: int,
    alpha: torch.Tensor | None,
    beta: torch.Tensor | None,
    ridge_lambda: float | str,
    chunk_size: int,
    dtype: torch.dtype,
    device: torch.device,
    holdout: Source | None = None,
    n_holdout: int = 0,
    lambdas: torch.Tensor | None = None,
) -> tuple[RidgeHead, RidgePath]:
    """Ridge head on frozen features: one pass for the Gram matrix, one for the holdout.

    The holdout pass predicts with a(λ) for the whole λ-path at once (``HoldoutErrors``),
    which costs 2·n_h·m·L flops instead of the 2·n_h·m² of the holdout's Gram matrix.

    ``ridge_lambda='auto'``: λ minimises the holdout MSE over the λ-path (GCV if no holdout).
    """
    train = accumulate_gram(
        features, n_features, source, n, start, alpha, beta, chunk_size, dtype, device
    )
    check_finite_moments(train.gram, train.cross, dtype)
    path = RidgePath.from_accumulator(train)
    if ridge_lambda != "auto":
        return RidgeHead(path.solve(ridge_lambda), float(ridge_lambda)), path
    errors = None
    if holdout is not None and n_holdout > 0:
        lambdas = default_lambda_grid(path.gram) if lambdas is None else lambdas
        errors = HoldoutErrors(path.coefficients(lambdas))
        rows = HoldoutErrors.slice_rows  # features of a slice stay in cache until consumed
        chunks = preprocessed_chunks(holdout, n_holdout, 0, alpha, beta, chunk_size, dtype, device)
        for X, r in progress.labelled("holdout pass", chunks):
            for start in range(0, X.shape[0], rows):
                errors.add(features(X[start : start + rows]), r[start : start + rows])
    best, grid, criterion = path.select(lambdas, errors)
    name = "holdout_mse" if errors is not None else "gcv"
    return RidgeHead(path.solve(best), best, grid, criterion, name), path


def check_finite_moments(gram: torch.Tensor, cross: torch.Tensor, dtype: torch.dtype) -> None:
    """FᵀF and Fᵀr finite, else one line naming the cause: a feature chunk or its products
    overflowed the model's dtype (inputs finite but too large, e.g. |x| ≈ 1e30 in float32,
    whose squares exceed 3.4e38) — not a singular Gram matrix or a λ problem."""
    # one reduction each: a sum is finite iff every entry is (an inf or NaN propagates; finite
    # entries of a Gram matrix are far below the 1e308 a sum would need to overflow)
    if not (bool(torch.isfinite(gram.sum())) and bool(torch.isfinite(cross.sum()))):
        short = str(dtype).removeprefix("torch.")
        wider = "" if dtype == torch.float64 else ", or use dtype='float64'"
        raise ValueError(
            f"the features' Gram matrix FᵀF overflowed {short} (inputs too large for the "
            f"model's dtype): rescale X and y{wider}"
        )


def check_interpolation(ridge_lambda, n: int, n_features: int, what: str) -> None:
    """λ = 0 needs at least as many samples as features (else the Gram matrix is singular)."""
    if ridge_lambda == 0.0 and n < n_features:
        raise ValueError(
            f"ridge_lambda = 0 needs n >= the number of features ({n_features} {what}), got "
            f"n = {n}: use ridge_lambda > 0 or 'auto'"
        )
