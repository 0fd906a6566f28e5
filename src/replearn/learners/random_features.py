"""Random-features ridge regression: Algorithm 1 with the first layer left at its init.

    x ↦ α + β·x + aᵀReLU(W⁰x + b),   W⁰ from the symmetric init, b ~ N(0, 1) as Algorithm 1's
    new biases,  a = argmin (1/n)Σ_i (aᵀReLU(W⁰x_i + b) − r_i)² + (λ/2)‖a‖²,  r = y − α − β·x.

As m → ∞ the kernel (1/m)ΦΦᵀ tends to ``kernels.rf_kernel``. The field's models
(``replearn.learners.first_layer``) change the features to c·σ(W⁰x + b): any activation σ,
output scale c, first layer W⁰ (and second layer, which decides W⁰'s pairing: the paper's
pairs share rows), and biases (N(0, 1), or 0 with ``biases="none"``).
"""

from __future__ import annotations

import copy

import torch

from replearn.learners.base import BaseLearner, TransferMixin
from replearn.learners.first_layer import MODEL_PARAMETER_CHECKS, NetworkModel, model_width
from replearn.learners.ridge_head import check_interpolation, fit_ridge_head
from replearn.network import TwoLayerNetwork, feature_map
from replearn.validation import (
    boolean,
    check_ridge_lambda,
    device_name,
    dtype_name,
    integer_at_least,
    ridge_lambda,
    seed,
)

__all__ = ["RandomFeatures"]


class RandomFeatures(NetworkModel, TransferMixin, BaseLearner):
    """Random-features ridge regression: Algorithm 1 with the first layer left at its init.

    Features ReLU(W⁰x + b): W⁰ from ``network.symmetric_init(width, d, seed)`` (rows
    w ~ N(0, I_d/d), equal in partner pairs j, j + m/2) and b ~ N(0, 1) drawn exactly as
    Algorithm 1's new biases (``network.normal_biases``), so the two models differ only by
    the step W⁰ → W¹. The head a is fitted by ridge with λ on a holdout (GCV without one),
    after the same α + β·x preprocessing. Streamed: memory O(m·d + m²) whatever n is.
    ``transfer``/``transfer_stream`` refit α, β, a on a new task with the same features.
    With the model parameters the features are φ(x) = c·σ(W⁰x + b) (W⁰ from
    ``network.initial_network``), exactly OneStepNetwork's head features with W¹ = W⁰.

    Parameters
    ----------
    width : int
        m: even with ``second_layer="paper"``, else any m ≥ 1.
    ridge_lambda : float or "auto"
        λ of (1/n)‖Φa − r‖² + (λ/2)‖a‖² (see ``OneStepNetwork`` for Cui et al.'s λ).
    preprocess : bool
        Subtract α + β·x from the labels first (as Algorithm 1).
    activation, output_scale, first_layer, second_layer, directions
        The model, as ``OneStepNetwork`` (the second layer is refitted; it decides only
        whether W⁰'s rows come in equal pairs, "paper", or are all independent).
    biases : {"paper", "none", "normal"}
        b ~ N(0, 1) ("paper" and "normal": Algorithm 1's new biases, independent for every
        neuron) or b = 0 ("none").
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
    network_ : TwoLayerNetwork
        x ↦ c·aᵀσ(W⁰x + b).
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

    _not_in_specs = frozenset({"directions"})  # the engine passes the run's target U

    _parameter_checks = {
        "width": model_width,
        "ridge_lambda": ridge_lambda,
        "preprocess": boolean,
        **MODEL_PARAMETER_CHECKS,
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
        activation="relu",
        output_scale: float | str = 1.0,
        first_layer="gaussian",
        second_layer="paper",
        directions=None,
        biases: str = "paper",
        dtype: torch.dtype | str = "float32",
        device: str | torch.device = "cpu",
        chunk_size: int = 32_768,
        seed: int = 0,
    ):
        self.width = width
        self.ridge_lambda = ridge_lambda
        self.preprocess = preprocess
        self.activation = activation
        self.output_scale = output_scale
        self.first_layer = first_layer
        self.second_layer = second_layer
        self.directions = directions
        self.biases = biases
        self.dtype = dtype
        self.device = device
        self.chunk_size = chunk_size
        self.seed = seed

    def _check_combination(self, values) -> None:
        self._check_width_rule(values)

    def initial_layer(self, d: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(W⁰, b): the frozen first layer for input dimension d (a pure function of the seed).

        Parameters
        ----------
        d : int
            Input dimension.

        Returns
        -------
        (torch.Tensor, torch.Tensor)
            W⁰ (m, d) and b (m,), in the model's dtype and device.
        """
        self._check_params()
        independent = self._zero_biases() if self.biases == "none" else self._normal_biases()
        return self._initial_network(d).W, independent

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

        activation, scale = self._activation(), self._scale()
        features = feature_map(W, b, activation, scale)
        head, _ = fit_ridge_head(
            features, self.width, source, n, 0, alpha, beta,
            check_ridge_lambda(self.ridge_lambda), self.chunk_size, self._dtype, self._device,
            holdout, n_holdout,
        )  # fmt: skip
        self.alpha_, self.beta_ = alpha, beta
        self.a_ = head.coefficients.to(self._dtype)
        self._store_lambda(head)
        self.network_ = TwoLayerNetwork(W, b, self.a_, activation, scale)

    def _predict_chunk(self, X: torch.Tensor) -> torch.Tensor:
        """α + β·x + c·aᵀσ(W⁰x + b)."""
        return self._linear(X) + self.network_(X, self.chunk_size)
