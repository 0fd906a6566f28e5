"""Random-features ridge regression: Algorithm 1 with the first layer left at its init.

    x ↦ α + β·x + aᵀReLU(W⁰x + b),   W⁰ from the symmetric init, b ~ N(0, 1) as Algorithm 1's
    new biases,  a = argmin (1/n)Σ_i (aᵀReLU(W⁰x_i + b) − r_i)² + (λ/2)‖a‖²,  r = y − α − β·x.

As m → ∞ the kernel (1/m)ΦΦᵀ tends to ``kernels.rf_kernel``.
"""

from __future__ import annotations

import copy

import torch

from replearn.learners.base import BaseLearner, TransferMixin
from replearn.learners.ridge_head import check_interpolation, fit_ridge_head
from replearn.network import ReluFeatureMap, TwoLayerReLU, normal_biases, symmetric_init
from replearn.validation import (
    boolean,
    check_ridge_lambda,
    device_name,
    dtype_name,
    even_width,
    integer_at_least,
    ridge_lambda,
    seed,
)

__all__ = ["RandomFeatures"]


class RandomFeatures(TransferMixin, BaseLearner):
    """Random-features ridge regression: Algorithm 1 with the first layer left at its init.

    Features ReLU(W⁰x + b): W⁰ from ``network.symmetric_init(width, d, seed)`` (rows
    w ~ N(0, I_d/d), equal in partner pairs j, j + m/2) and b ~ N(0, 1) drawn exactly as
    Algorithm 1's new biases (``network.normal_biases``), so the two models differ only by
    the step W⁰ → W¹. The head a is fitted by ridge with λ on a holdout (GCV without one),
    after the same α + β·x preprocessing. Streamed: memory O(m·d + m²) whatever n is.
    ``transfer``/``transfer_stream`` refit α, β, a on a new task with the same features.

    Parameters
    ----------
    width : int
        m, even.
    ridge_lambda : float or "auto"
    preprocess : bool
        Subtract α + β·x from the labels first (as Algorithm 1).
    dtype, device, chunk_size, seed
        As ``OneStepNetwork``.

    Attributes
    ----------
    W_ : tensor (m, d)
        W⁰, the frozen first layer.
    b_ : tensor (m,)
        The frozen biases.
    a_ : tensor (m,)
        The head.
    alpha_, beta_ : tensor (), tensor (d,)
    network_ : TwoLayerReLU
    ridge_lambda_, lambda_path_, lambda_criterion_, lambda_criterion_name_
    n_features_in_, n_samples_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((500, 4))
    >>> y = 1.0 + X[:, 0] + np.maximum(X[:, 1], 0.0)
    >>> model = RandomFeatures(width=50, seed=0).fit(X, y)
    >>> type(model.predict(X[:3])).__name__   # numpy in, numpy out
    'ndarray'
    >>> model.score(X, y) > 0.95
    True
    """

    _parameter_checks = {
        "width": even_width,
        "ridge_lambda": ridge_lambda,
        "preprocess": boolean,
        "dtype": dtype_name,
        "device": device_name,
        "chunk_size": integer_at_least(1),
        "seed": seed,
    }

    def __init__(
        self,
        width: int = 100,
        ridge_lambda: float | str = "auto",
        preprocess: bool = True,
        dtype: torch.dtype | str = "float32",
        device: str | torch.device = "cpu",
        chunk_size: int = 32_768,
        seed: int = 0,
    ):
        self.width = width
        self.ridge_lambda = ridge_lambda
        self.preprocess = preprocess
        self.dtype = dtype
        self.device = device
        self.chunk_size = chunk_size
        self.seed = seed

    def initial_layer(self, d: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(W⁰, b): the frozen first layer for input dimension d (a pure function of the seed)."""
        self._check_params()
        init = symmetric_init(self.width, d, self.seed, self._dtype, self._device)
        return init.W, normal_biases(self.width, self.seed, self._dtype, self._device)

    def _fit(self, source, n: int, holdout, n_holdout: int) -> RandomFeatures:
        check_interpolation(check_ridge_lambda(self.ridge_lambda), n, self.width, "features")
        self.W_, self.b_ = self.initial_layer(source.d)
        self._fit_head(source, n, holdout, n_holdout)
        self.n_samples_ = n
        return self

    def _transferred(self, source, n: int, holdout, n_holdout: int) -> RandomFeatures:
        d = self.W_.shape[1]
        if source.d != d:
            raise ValueError(f"transfer data must have d={d} columns, got {source.d}")
        check_interpolation(check_ridge_lambda(self.ridge_lambda), n, self.width, "features")
        new = copy.copy(self)
        new._fit_head(source, n, holdout, n_holdout)
        new.n_transfer_samples_ = n
        return new

    def _fit_head(self, source, n: int, holdout, n_holdout: int) -> None:
        W, b = self.W_, self.b_
        alpha, beta = self._linear_part(source, n)

        features = ReluFeatureMap(W, b)
        head, _ = fit_ridge_head(
            features, self.width, source, n, 0, alpha, beta,
            check_ridge_lambda(self.ridge_lambda), self.chunk_size, self._dtype, self._device,
            holdout, n_holdout,
        )  # fmt: skip
        self.alpha_, self.beta_ = alpha, beta
        self.a_ = head.coefficients.to(self._dtype)
        self._store_lambda(head)
        self.network_ = TwoLayerReLU(W, b, self.a_)

    def _predict_chunk(self, X: torch.Tensor) -> torch.Tensor:
        """α + β·x + aᵀReLU(W⁰x + b)."""
        return self._linear(X) + self.network_(X, self.chunk_size)
