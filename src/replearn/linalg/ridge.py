"""Ridge regression from streamed sufficient statistics, over a whole λ-path at once.

Convention (the paper's weight decay): the head a minimises

    J(a) = (1/n)·‖F a − y‖² + (λ/2)·‖a‖²,

whose gradient ∇J = (2/n)·Fᵀ(F a − y) + λ·a is "gradient plus weight decay λ", so T steps
of GD with weight decay λ converge to the same a. With G = FᵀF/n and c = Fᵀy/n:

    a(λ) = (G + (λ/2)·I)⁻¹ c = Q·diag(1/(s + λ/2))·Qᵀc,      G = Q·diag(s)·Qᵀ,

so one eigendecomposition of G serves every λ. The holdout MSE of the whole path,

    holdout MSE(λ) = (1/n_h)·Σ_i (F_h,i·a(λ) − y_h,i)²,

is accumulated over holdout chunks as predictions for all L values of λ at once
(``HoldoutErrors``: 2·n_h·m·L flops, against 2·n_h·m² for the holdout's own Gram matrix — 20×
fewer at m = 1000, L = 49, and 120× fewer for the NTK's m = 6000 features). The moment form
y_hᵀy_h/n_h − 2·a(λ)ᵀc_h + a(λ)ᵀG_h a(λ) from a holdout ``GramAccumulator`` is also accepted.

Without a holdout, λ is chosen by generalised cross-validation:
GCV(λ) = train MSE(λ) / (1 − df(λ)/n)², df(λ) = Σ s_i/(s_i + λ/2).
Everything is O(m²) memory whatever n is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

__all__ = [
    "GramAccumulator",
    "HoldoutErrors",
    "RidgePath",
    "default_lambda_grid",
    "lambda_grid_from_trace",
    "argmin_criterion",
]


class GramAccumulator:
    """Running FᵀF, Fᵀy, yᵀy and n over chunks; the sums are kept in float64.

    Each product is formed in the features' own dtype (fast fp32 GEMM when the features are
    fp32) and added into float64 accumulators. Two things keep that at the GEMM rate:

    - **Row buffer.** Adding a p×p product into float64 costs about 3p² memory passes
      (cast, add) whatever the number of rows r it sums, against 2·r·p² flops for the GEMM:
      for the NTK's 696-row chunks of 6 000 features that is a third of the pass. For wide F
      (more than ``buffer_min_columns`` columns, where learners use short chunks to bound
      the features' memory), chunks of fewer than ``buffer_rows`` rows (at most
      ``buffer_entries`` entries) are copied into a row buffer and multiplied once it is
      full, so every product sums at least that many rows. Narrower F, and chunks at least
      that tall, are multiplied as they come; buffered chunks sum in a different order
      (last bits).
    - **Upper block triangle.** FᵀF is symmetric, so for F of more than ``block_columns``
      columns only its upper block triangle is formed — k column blocks of about
      ``block_columns``, one GEMM F_iᵀ·F[:, i:] per block row, k(k+1)/(2k²) of the full
      product's flops (62.5 % for Algorithm 1's 1 024 features, 52 % for 6 000) — and
      ``moments`` mirrors it. Every entry is still one dot product over the chunk's rows, so
      the result is the full product's, bit for bit (MKL; tests/test_ridge_metrics.py);
      measured 0.44 → 0.32 s per 32 768 × 1 024 chunk (docs/performance.md).
    """

    block_columns = 256
    buffer_min_columns = 1536
    buffer_rows = 4096
    buffer_entries = 2**25

    def __init__(self, n_features: int, device: str | torch.device = "cpu"):
        self.gram = torch.zeros(n_features, n_features, dtype=torch.float64, device=device)
        self.cross = torch.zeros(n_features, dtype=torch.float64, device=device)
        self.yy = 0.0
        self.n = 0
        n_blocks = max(1, math.ceil(n_features / self.block_columns))
        edges = [round(i * n_features / n_blocks) for i in range(n_blocks + 1)]
        self._blocks = list(zip(edges[:-1], edges[1:]))
        wide = n_features > self.buffer_min_columns
        self._buffer_capacity = (
            max(1, min(self.buffer_rows, self.buffer_entries // n_features)) if wide else 1
        )
        self._buffer: tuple[torch.Tensor, torch.Tensor] | None = None
        self._buffered = 0

    def add(self, F: torch.Tensor, y: torch.Tensor) -> None:
        rows = F.shape[0]
        if rows >= self._buffer_capacity:
            self._flush()
            self._add_product(F, y)
            return
        if self._buffer is None or self._buffer[0].dtype != F.dtype:
            self._flush()
            self._buffer = (
                F.new_empty(self._buffer_capacity, F.shape[1]),
                y.new_empty(self._buffer_capacity),
            )
        if self._buffered + rows > self._buffer_capacity:
            self._flush()
        self._buffer[0][self._buffered : self._buffered + rows] = F
        self._buffer[1][self._buffered : self._buffered + rows] = y
        self._buffered += rows

    def _flush(self) -> None:
        if self._buffered:
            rows, self._buffered = self._buffered, 0
            self._add_product(self._buffer[0][:rows], self._buffer[1][:rows])

    def _add_product(self, F: torch.Tensor, y: torch.Tensor) -> None:
        if len(self._blocks) == 1:
            self.gram += (F.T @ F).to(torch.float64)
        else:
            for lo, hi in self._blocks:
                self.gram[lo:hi, lo:] += (F[:, lo:hi].T @ F[:, lo:]).to(torch.float64)
        self.cross += (F.T @ y).to(torch.float64)
        self.yy += float((y.to(torch.float64) ** 2).sum())
        self.n += F.shape[0]

    def moments(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        """(G, c, yᵀy/n) = (FᵀF/n, Fᵀy/n, mean y²)."""
        self._flush()
        self._buffer = None
        if self.n == 0:
            raise ValueError("no samples were accumulated")
        gram = self.gram
        if len(self._blocks) > 1:  # the upper triangle, mirrored (exactly symmetric)
            gram = torch.triu(gram) + torch.triu(gram, 1).T
        return gram / self.n, self.cross / self.n, self.yy / self.n


class HoldoutErrors:
    """Σ_i (F_i·a_l − y_i)² for every row a_l of ``coefficients`` (L, m), over chunks (float64).

    Predictions are formed in float64 in slices of ``slice_rows`` rows, so memory is
    O(slice_rows·(m + L)) beyond the chunk itself.
    """

    slice_rows = (
        1024  # a float64 slice of 1 024 × 1 000 (8 MB) stays in cache: 1.5× the rate of 4 096
    )

    def __init__(self, coefficients: torch.Tensor):
        self.coefficients_t = coefficients.to(torch.float64).T.contiguous()  # (m, L)
        self.sse = torch.zeros(
            coefficients.shape[0], dtype=torch.float64, device=coefficients.device
        )
        self.n = 0

    def add(self, F: torch.Tensor, y: torch.Tensor) -> None:
        for F_slice, y_slice in zip(F.split(self.slice_rows), y.split(self.slice_rows)):
            predictions = F_slice.to(torch.float64) @ self.coefficients_t  # (rows, L)
            self.sse += (predictions - y_slice.to(torch.float64)[:, None]).pow(2).sum(0)
        self.n += F.shape[0]

    def add_predictions(self, predictions: torch.Tensor, y: torch.Tensor) -> None:
        """Add rows whose predictions F·a_l (rows, L) were formed elsewhere (float64)."""
        self.sse += (predictions.to(torch.float64) - y.to(torch.float64)[:, None]).pow(2).sum(0)
        self.n += predictions.shape[0]

    def mse(self) -> torch.Tensor:
        if self.n == 0:
            raise ValueError("no holdout samples were accumulated")
        return self.sse / self.n


# below it 10⁻¹⁰·tr(G)/2 is subnormal or 0 and 1/(0 + λ/2) overflows to ∞
_SMALLEST_TRACE = 1e-280


def default_lambda_grid(gram: torch.Tensor, n_lambdas: int = 49) -> torch.Tensor:
    """λ from 10⁻¹⁰·tr(G) to 10²·tr(G), log-spaced (float64).

    The top (λ/2 ≥ 50·s_max) shrinks the head to ≈ 0, so with very few samples the holdout
    can choose the zero head; the bottom is ≈ unregularised for any width ≤ 10⁶.
    A Gram matrix of zero (or underflowing) trace — every feature dead — has nothing to
    scale by: the path is then taken at tr(G) = 1 (every a(λ) is 0 there), since 10⁻¹⁰·tr(G)
    would be a subnormal λ whose 1/(s + λ/2) overflows.
    """
    trace = float(torch.trace(gram))
    scale = trace if trace > _SMALLEST_TRACE else 1.0
    return scale * torch.logspace(-10, 2, n_lambdas, dtype=torch.float64)


def lambda_grid_from_trace(gram_trace: float, n_features: int, device=None) -> torch.Tensor:
    """``default_lambda_grid`` for a Gram matrix G known only through tr(G) and its size.

    The dual forms never build G = ΦᵀΦ/n, but tr(G) = tr(K)/n, so a stand-in with the same
    trace and size (a broadcast view, no memory) gives exactly the primal form's λ-path.
    """
    value = float(gram_trace) / n_features
    stand_in = torch.full((1, 1), value, dtype=torch.float64).expand(n_features, n_features)
    return default_lambda_grid(stand_in).to(device)


def argmin_criterion(criterion: torch.Tensor) -> int:
    """Index of the smallest criterion, NaN counting as +∞ (the rule of ``RidgePath.select``)."""
    return int(torch.argmin(torch.nan_to_num(criterion, nan=math.inf)))


@dataclass
class RidgePath:
    """All ridge solutions a(λ) from one eigendecomposition of G = FᵀF/n."""

    gram: torch.Tensor  # G (m, m), float64
    cross: torch.Tensor  # c (m,), float64
    mean_y2: float  # yᵀy/n
    n: int
    eigenvalues: torch.Tensor = field(init=False)
    eigenvectors: torch.Tensor = field(init=False)
    rotated_cross: torch.Tensor = field(init=False)

    def __post_init__(self):
        s, Q = torch.linalg.eigh(self.gram)
        # c = Fᵀy/n lies in range(G) exactly, so its components along G's numerical null space
        # (dead or duplicated features) are rounding noise: set them to 0 (pseudo-inverse).
        null = s <= s.abs().max() * s.shape[0] * torch.finfo(s.dtype).eps
        self.eigenvalues = s.clamp_min(0.0).masked_fill(null, 0.0)
        self.eigenvectors = Q
        self.rotated_cross = (Q.T @ self.cross).masked_fill(null, 0.0)

    @classmethod
    def from_accumulator(cls, acc: GramAccumulator) -> RidgePath:
        gram, cross, mean_y2 = acc.moments()
        return cls(gram, cross, mean_y2, acc.n)

    def coefficients(self, lambdas: torch.Tensor) -> torch.Tensor:
        """a(λ) for each λ: shape (len(λ), m)."""
        lambdas = torch.as_tensor(lambdas, dtype=torch.float64, device=self.gram.device)
        shrink = 1.0 / (self.eigenvalues[None, :] + lambdas[:, None] / 2)  # (L, m)
        if not torch.isfinite(shrink).all():
            raise ValueError(
                "ridge_lambda = 0 with a singular Gram matrix (fewer samples than features, "
                "or constant features): use ridge_lambda > 0 or 'auto'"
            )
        return (shrink * self.rotated_cross[None, :]) @ self.eigenvectors.T

    def solve(self, ridge_lambda: float) -> torch.Tensor:
        """a(λ) = (G + (λ/2) I)⁻¹ c, shape (m,)."""
        return self.coefficients(torch.tensor([float(ridge_lambda)], dtype=torch.float64))[0]

    def train_mse(self, coefficients: torch.Tensor) -> torch.Tensor:
        """(1/n)‖F a − y‖² for each row a: yᵀy/n − 2aᵀc + aᵀGa."""
        return _quadratic_risk(coefficients, self.gram, self.cross, self.mean_y2)

    def gcv(self, lambdas: torch.Tensor) -> torch.Tensor:
        """GCV(λ) = train MSE(λ)/(1 − df(λ)/n)², df(λ) = Σ s/(s + λ/2)."""
        lambdas = torch.as_tensor(lambdas, dtype=torch.float64, device=self.gram.device)
        dof = (self.eigenvalues[None, :] / (self.eigenvalues[None, :] + lambdas[:, None] / 2)).sum(
            1
        )
        residual = self.train_mse(self.coefficients(lambdas))
        return residual / (1.0 - dof / self.n).clamp_min(1e-12) ** 2

    def select(
        self,
        lambdas: torch.Tensor | None = None,
        holdout: GramAccumulator | HoldoutErrors | None = None,
    ) -> tuple[float, torch.Tensor, torch.Tensor]:
        """(best λ, λ grid, criterion per λ): holdout MSE if a holdout is given, else GCV.

        A ``HoldoutErrors`` must have been built from ``self.coefficients(lambdas)``.
        """
        lambdas = default_lambda_grid(self.gram) if lambdas is None else lambdas
        lambdas = torch.as_tensor(lambdas, dtype=torch.float64, device=self.gram.device)
        if isinstance(holdout, HoldoutErrors):
            if holdout.sse.shape[0] != lambdas.shape[0]:
                raise ValueError(
                    f"holdout errors for {holdout.sse.shape[0]} values of λ, grid has {lambdas.shape[0]}"
                )
            criterion = holdout.mse()
        elif holdout is not None:
            gram_h, cross_h, mean_y2_h = holdout.moments()
            criterion = _quadratic_risk(self.coefficients(lambdas), gram_h, cross_h, mean_y2_h)
        else:
            criterion = self.gcv(lambdas)
        best = argmin_criterion(criterion)
        return float(lambdas[best]), lambdas, criterion


def _quadratic_risk(coefficients, gram, cross, mean_y2) -> torch.Tensor:
    """mean (F a − y)² from moments, for each row a of coefficients (L, m)."""
    quadratic = ((coefficients @ gram) * coefficients).sum(1)
    return (mean_y2 - 2 * coefficients @ cross + quadratic).clamp_min(0.0)
