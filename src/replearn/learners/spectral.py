"""``SpectralEstimator``: the top eigenvector of (1/n)Σ T(yᵢ)(xᵢxᵢᵀ − I) — a single-index direction.

    D = (1/n) Σᵢ T(yᵢ)·(xᵢxᵢᵀ − I),     ŵ = the unit eigenvector of D's largest eigenvalue

accumulated chunk by chunk (one d × d float64 matrix, whatever n), then one ``eigh``. With
the optimal transform T*(y) = 1 − 1/E[z² | y] (Luo, Alghamdi & Lu 2019) ŵ correlates with
the direction u as soon as n/d exceeds the weak-recovery threshold α_c = 1/E[(E[z² | y] − 1)²]
(Mondelli & Montanari 2018); ``replearn.theory.spectral_overlap`` predicts |ŵ·u| above it
(Lu & Li 2017). Subtracting the identity (times mean T) shifts every eigenvalue alike, so ŵ
is the top eigenvector of (1/n)ΣT(yᵢ)xᵢxᵢᵀ too; the shift centres the bulk of D at 0.

The estimate is a direction, not a regression function: ``W_`` holds ŵ as its one row (sign
chosen so that its largest entry in absolute value is positive); ``predict`` is refused.
"""

from __future__ import annotations

import numpy as np
import torch

from replearn.learners.base import BaseLearner
from replearn.theory.scalar_functions import link_function
from replearn.theory.weak_recovery import NOISE_KINDS, optimal_spectral_transform
from replearn.validation import choice, device_name, dtype_name, integer_at_least, number

__all__ = ["SpectralEstimator"]


def link_expression(value):
    """Check: a single-index link expression in z1 (see ``replearn.theory.weak_recovery``)."""
    if not isinstance(value, str):
        raise ValueError(f"must be a link expression in z1 such as 'z1**2', got {value!r}")
    link_function(value)  # one-line ValueError naming what is not allowed
    return value


class SpectralEstimator(BaseLearner):
    """Top eigenvector of (1/n)Σ T(yᵢ)(xᵢxᵢᵀ − I) with the optimal transform T*(y) = 1 − 1/E[z² | y].

    Parameters
    ----------
    link : str
        The single-index link g of y = g(u·x) + ε (an expression in z1, e.g. ``"z1**2"``):
        T* needs E[z² | y], a property of the link and the noise.
    noise : float
        Standard deviation ς of the label noise (as in ``rl.sample`` and ``DataStream``).
    noise_kind : {"rademacher", "gaussian"}
        Its law.
    transform : {"optimal"}
        T*(y) = 1 − 1/E[z² | y] (the only transform offered).
    dtype : {"float64", "float32"}
        Of the chunks; the d × d sum is float64 either way.
    device : str
        Where the sum is accumulated.
    chunk_size : int
        Samples per chunk.

    Attributes
    ----------
    W_ : torch.Tensor, shape (1, d)
        ŵ, of unit norm.
    eigenvalue_ : float
        The largest eigenvalue of D.
    spectral_gap_ : float
        Its distance to the second largest.
    n_samples_ : int
        n.

    Examples
    --------
    Noiseless phase retrieval (α_c = 1/2) at n = 2d:

    >>> import replearn as rl
    >>> target = rl.MultiIndexTarget.from_expression("z1**2", d=200, seed=0, normalize=False)
    >>> X, y = rl.sample(target, n=400, noise=0.0, seed=0)
    >>> est = SpectralEstimator(link="z1**2").fit(X, y)
    >>> overlap = abs(float(est.W_[0] @ target.U[0].to(est.W_.dtype)))
    >>> overlap > 0.6, round(float(rl.theory.spectral_overlap("z1**2", 2.0)[0]), 2)
    (True, 0.8)
    """

    _parameter_checks = {
        "link": link_expression,
        "noise": number(0.0),
        "noise_kind": choice(*NOISE_KINDS),
        "transform": choice("optimal"),
        "dtype": dtype_name,
        "device": device_name,
        "chunk_size": integer_at_least(1),
    }

    def __init__(
        self,
        link: str = "z1**2",
        noise: float = 0.0,
        noise_kind: str = "rademacher",
        transform: str = "optimal",
        dtype: str = "float64",
        device: str = "cpu",
        chunk_size: int = 4096,
    ):
        self.link = link
        self.noise = noise
        self.noise_kind = noise_kind
        self.transform = transform
        self.dtype = dtype
        self.device = device
        self.chunk_size = chunk_size

    def _fit_memory_bytes(self, n: int, d: int, n_holdout: int = 0):
        rows = min(self.chunk_size, n)
        return (
            3 * 8 * d * d + 16 * rows * d,
            f"SpectralEstimator at d = {d} (the {d:,}×{d:,} float64 sum and its eigenvectors)",
        )

    def _fit(self, source, n: int, holdout, n_holdout: int):
        transform = optimal_spectral_transform(self.link, float(self.noise), self.noise_kind)
        d = source.d
        total = torch.zeros((d, d), dtype=torch.float64, device=self._device)
        transform_sum = 0.0
        for X, y in source.chunks(n, self.chunk_size):
            X = X.to(device=self._device, dtype=torch.float64)
            t = torch.as_tensor(transform(y.detach().cpu().numpy().astype(np.float64)))
            t = t.to(device=self._device, dtype=torch.float64)
            total += (X * t[:, None]).T @ X  # Σ T(yᵢ) xᵢxᵢᵀ
            transform_sum += float(t.sum())
        matrix = total / n
        matrix.diagonal().sub_(transform_sum / n)  # − mean(T)·I
        eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
        w = eigenvectors[:, -1]
        w = w * torch.sign(w[torch.argmax(w.abs())])
        self.W_ = w[None, :].to(self._dtype)
        self.eigenvalue_ = float(eigenvalues[-1])
        self.spectral_gap_ = float(eigenvalues[-1] - eigenvalues[-2]) if d > 1 else float("inf")
        self.n_samples_ = n
        return self

    def predict(self, X):
        """Refused: the estimate is a direction (``W_``), not a regression function.

        Parameters
        ----------
        X : array_like
            Ignored.

        Returns
        -------
        None
            Never returns; raises ValueError.

        Examples
        --------
        >>> SpectralEstimator().predict([[0.0]])
        Traceback (most recent call last):
        ...
        ValueError: SpectralEstimator estimates a direction (W_), not a regression function: use X @ W_[0] for the estimated index
        """
        raise ValueError(
            "SpectralEstimator estimates a direction (W_), not a regression function: "
            "use X @ W_[0] for the estimated index"
        )
