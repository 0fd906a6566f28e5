"""Metrics: excess risk E[(f − f*)²] on a fresh streamed test set, subspace alignment and
principal angles between a learned first layer and the target's principal subspace."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from replearn.data import DataStream
from replearn.targets import MultiIndexTarget

__all__ = ["RiskEstimate", "excess_risk", "subspace_alignment", "principal_angles"]


class RiskEstimate(NamedTuple):
    """Monte-Carlo estimate of E[(f(x) − f*(x))²] with its standard error."""

    risk: float
    stderr: float
    n_test: int

    def __float__(self) -> float:
        return self.risk


def excess_risk(
    model,
    target: MultiIndexTarget,
    n_test: int = 100_000,
    seed: int = 1,
    chunk_size: int = 32_768,
    device: str | torch.device | None = None,
) -> RiskEstimate:
    """E_x[(f(x) − f*(x))²] on n_test fresh samples of the 'test' split of ``seed``.

    Standard error = std of the squared errors / √n_test. Sums are kept in float64.
    """
    if isinstance(n_test, bool) or not isinstance(n_test, int) or n_test < 2:
        raise ValueError(f"n_test must be an integer >= 2, got {n_test!r}")
    if device is None:
        device = getattr(model, "_device", None) or getattr(model, "device", "cpu")
    stream = DataStream(target, noise=0.0, seed=seed, split="test", dtype=torch.float64,
                        device=device)  # fmt: skip
    total = total_sq = 0.0
    for X, _, f_star in stream.chunks(n_test, chunk_size, clean=True):
        error2 = (torch.as_tensor(model.predict(X)).to(torch.float64) - f_star) ** 2
        total += float(error2.sum())
        total_sq += float((error2 * error2).sum())
    mean = total / n_test
    variance = max(total_sq / n_test - mean * mean, 0.0) * n_test / (n_test - 1)
    return RiskEstimate(mean, math.sqrt(variance / n_test), n_test)


def _orthonormal_rows(U: torch.Tensor) -> torch.Tensor:
    q, _ = torch.linalg.qr(U.T)
    return q.T


def subspace_alignment(W, U) -> float:
    """‖Π* Wᵀ‖²_F / ‖W‖²_F: the share of the first layer's energy inside span(U).

    W is (m, d) (neurons as rows); U is (r, d). 1 when every w_j lies in the subspace.
    """
    W = torch.as_tensor(W).to(torch.float64).cpu()
    U = _orthonormal_rows(torch.as_tensor(U).to(torch.float64).cpu())
    total = float((W * W).sum())
    if total == 0.0:
        return 0.0
    return float(((W @ U.T) ** 2).sum()) / total


def principal_angles(W, U, rank: int | None = None) -> torch.Tensor:
    """Principal angles (radians, ascending) between span(U) and the top-r row space of W.

    The row space of W is summarised by its top ``rank`` (default r) right singular vectors;
    cos θ_i are the singular values of V_Wᵀ·U_orthᵀ.
    """
    W = torch.as_tensor(W).to(torch.float64).cpu()
    U = _orthonormal_rows(torch.as_tensor(U).to(torch.float64).cpu())
    rank = U.shape[0] if rank is None else rank
    _, _, Vh = torch.linalg.svd(W, full_matrices=False)
    cosines = torch.linalg.svdvals(Vh[:rank] @ U.T).clamp(-1.0, 1.0)
    return torch.sort(torch.arccos(cosines)).values
