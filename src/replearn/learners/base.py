"""What every streamed, ridge-headed learner shares: data sources, the linear preprocessing
α = mean y, β = mean y·x, and a ridge head fitted on frozen features with λ chosen on a holdout.

A *source* is anything with ``chunks(n, chunk_size, start=0)`` yielding (X, y): a
``DataStream`` (regenerated on every pass, O(chunk) memory) or an ``ArraySource`` wrapping
tensors already in memory. Both give the same numbers for the same samples, so ``fit(X, y)``
and ``fit_stream(stream, n)`` agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from replearn.data import DataStream
from replearn.ridge import GramAccumulator, HoldoutErrors, RidgePath, default_lambda_grid

__all__ = [
    "ArraySource",
    "check_arrays",
    "check_count",
    "resolve_dtype",
    "linear_moments",
    "RidgeHead",
    "fit_ridge_head",
]


def check_count(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def resolve_dtype(dtype) -> torch.dtype:
    allowed = {"float32": torch.float32, "float64": torch.float64}
    if isinstance(dtype, str):
        if dtype not in allowed:
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        return allowed[dtype]
    if dtype not in allowed.values():
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    return dtype


def check_arrays(X, y, d: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate (X, y) at the boundary: shapes (n, d) and (n,), finite, n ≥ 1."""
    X = torch.as_tensor(X)
    y = torch.as_tensor(y)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n, d), got shape {tuple(X.shape)}")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must be 1-D with {X.shape[0]} entries, got shape {tuple(y.shape)}")
    if X.shape[0] < 1:
        raise ValueError("X must have at least one row")
    if d is not None and X.shape[1] != d:
        raise ValueError(f"X must have {d} columns, got {X.shape[1]}")
    if not (torch.isfinite(X).all() and torch.isfinite(y).all()):
        raise ValueError("X and y must be finite (found NaN or inf)")
    return X, y


class ArraySource:
    """In-memory (X, y) with the same ``chunks`` interface as a DataStream."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor):
        self.X, self.y = check_arrays(X, y)

    @property
    def d(self) -> int:
        return self.X.shape[1]

    def __len__(self) -> int:
        return self.X.shape[0]

    def chunks(self, n: int, chunk_size: int, start: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
        if start + n > len(self):
            raise ValueError(f"asked for samples {start}…{start + n - 1} of only {len(self)}")
        for begin in range(start, start + n, chunk_size):
            stop = min(begin + chunk_size, start + n)
            yield self.X[begin:stop], self.y[begin:stop]


Source = DataStream | ArraySource


def _to(X: torch.Tensor, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return X.to(device=device, dtype=dtype, non_blocking=True)


def linear_moments(
    source: Source, n: int, start: int, chunk_size: int, dtype, device
) -> tuple[torch.Tensor, torch.Tensor]:
    """α = (1/n)Σ y_i and β = (1/n)Σ y_i·x_i, accumulated in float64."""
    alpha_sum = torch.zeros((), dtype=torch.float64, device=device)
    beta_sum = None
    for X, y, *_ in source.chunks(n, chunk_size, start=start):
        X, y = _to(X, dtype, device), _to(y, dtype, device)
        alpha_sum += y.sum(dtype=torch.float64)
        contribution = (y @ X).to(torch.float64)
        beta_sum = contribution if beta_sum is None else beta_sum + contribution
    return (alpha_sum / n).to(dtype), (beta_sum / n).to(dtype)


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
    for X, r in preprocessed_chunks(source, n, start, alpha, beta, chunk_size, dtype, device):
        acc.add(features(X), r)
    return acc


def preprocessed_chunks(source, n, start, alpha, beta, chunk_size, dtype, device):
    """(X, r) chunks of samples start…start+n−1 on ``device``, r = y − α − β·x (y if α is None)."""
    for X, y, *_ in source.chunks(n, chunk_size, start=start):
        X, y = _to(X, dtype, device), _to(y, dtype, device)
        yield X, (y if alpha is None else y - alpha - X @ beta)


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
    path = RidgePath.from_accumulator(train)
    if ridge_lambda != "auto":
        return RidgeHead(path.solve(ridge_lambda), float(ridge_lambda)), path
    errors = None
    if holdout is not None and n_holdout > 0:
        lambdas = default_lambda_grid(path.gram) if lambdas is None else lambdas
        errors = HoldoutErrors(path.coefficients(lambdas))
        for X, r in preprocessed_chunks(
            holdout, n_holdout, 0, alpha, beta, chunk_size, dtype, device
        ):
            errors.add(features(X), r)
    best, grid, criterion = path.select(lambdas, errors)
    name = "holdout_mse" if errors is not None else "gcv"
    return RidgeHead(path.solve(best), best, grid, criterion, name), path
