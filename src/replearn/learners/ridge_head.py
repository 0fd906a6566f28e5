"""A ridge head on frozen features, with λ chosen on a holdout (or by GCV): the last step of
Algorithm 1, random features and the NTK's primal form.

One pass over the training source accumulates G = FᵀF/n, c = Fᵀr/n (r the preprocessed
labels); one eigendecomposition gives a(λ) for every λ (``linalg.ridge.RidgePath``); one pass
over the holdout scores the whole λ-path at once.
"""

from __future__ import annotations

import math
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
    if not (bool(torch.isfinite(train.gram.sum())) and bool(torch.isfinite(train.cross.sum()))):
        probe = next(
            preprocessed_chunks(source, min(n, 1024), start, alpha, beta, 1024, dtype, device)
        )
        check_finite_moments(train.gram, train.cross, dtype, overflow_cause(features, *probe))
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


def overflow_cause(features, X: torch.Tensor, r: torch.Tensor) -> str:
    """Which input made FᵀF or Fᵀr overflow, from the first samples: X itself, the labels
    r = y − α − β·x, or (X and y of ordinary size) the first layer the features use."""
    x_max = float(X.abs().amax()) if X.numel() else 0.0
    r_max = float(r.abs().amax()) if r.numel() else 0.0
    with torch.no_grad():
        f_max = float(features(X).abs().amax())
    shown = {v: f"{v:.3g}" if math.isfinite(v) else "∞ (overflow)" for v in (x_max, r_max, f_max)}
    if not math.isfinite(x_max) or x_max > MODERATE:
        return f"the inputs: |X| up to {shown[x_max]}; rescale X"
    if not math.isfinite(r_max) or r_max > MODERATE:
        return (
            f"the labels: |y − α − β·x| up to {shown[r_max]} (label noise or a target far from "
            "unit scale; a first step proportional to y makes the weights as large); rescale y"
        )
    return (
        f"the first layer: features up to {shown[f_max]} from |X| ≤ {shown[x_max]} — its weights are "
        "too large (a step size such as eta1 or step_size far above its scale); lower it"
    )


MODERATE = 1e6  # |x| or |y| above this is not an ordinary N(0, 1)-scale input


def check_finite_moments(
    gram: torch.Tensor, cross: torch.Tensor, dtype: torch.dtype, cause: str | None = None
) -> None:
    """FᵀF and Fᵀr finite, else one line naming the cause: a feature chunk or its products
    overflowed the model's dtype — not a singular Gram matrix or a λ problem. ``cause``
    (:func:`overflow_cause`) says which input was too large: X, y or the first layer."""
    # one reduction each: a sum is finite iff every entry is (an inf or NaN propagates; finite
    # entries of a Gram matrix are far below the 1e308 a sum would need to overflow)
    if not (bool(torch.isfinite(gram.sum())) and bool(torch.isfinite(cross.sum()))):
        short = str(dtype).removeprefix("torch.")
        wider = "" if dtype == torch.float64 else " (or use dtype='float64')"
        what = "FᵀF" if not bool(torch.isfinite(gram.sum())) else "Fᵀy"
        raise ValueError(
            f"the ridge head's {what} overflowed {short}; the cause is "
            f"{cause or 'the inputs X, the labels y or the first layer (too large)'}{wider}"
        )


def check_interpolation(ridge_lambda, n: int, n_features: int, what: str) -> None:
    """λ = 0 needs at least as many samples as features (else the Gram matrix is singular)."""
    if ridge_lambda == 0.0 and n < n_features:
        raise ValueError(
            f"ridge_lambda = 0 needs n >= the number of features ({n_features} {what}), got "
            f"n = {n}: use ridge_lambda > 0 or 'auto'"
        )
