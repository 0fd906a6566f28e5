"""Algorithm 1 of Damian, Lee & Soltanolkotabi (COLT 2022): one large gradient step on the
first layer, then a ridge-regression head on the frozen random-bias features.

    1. α = mean_i y_i,  β = mean_i y_i·x_i,  y_i ← y_i − α − β·x_i           (preprocess)
    2. W¹ = −η₁·∇_W L(θ⁰)  (weight decay λ₁ = 1/η₁ cancels W⁰); since f ≡ 0 at init,
       w_j¹ = 2·η₁·a_j · mean_i( y_i·x_i·1[w_j⁰·x_i ≥ 0] )                    (one step)
    3. b_j ~ N(0, 1)                                                          (new biases)
    4. a = argmin (1/n)Σ_i (aᵀReLU(W¹x_i + b) − y_i)² + (λ/2)‖a‖²              (head)
       (closed-form ridge, or T steps of GD with step η and weight decay λ)
    5. x ↦ α + β·x + aᵀReLU(W¹x + b)                                          (predictor)

Every step is a sum over samples, computed chunk by chunk; memory is O(m·d + m²).
Partners j and j + m/2 share w_j⁰ and have opposite a_j, so w_{j+m/2}¹ = −w_j¹ and the
step needs only the m/2 distinct neurons.
"""

from __future__ import annotations

import copy
import math

import torch

from replearn.data import DataStream
from replearn.learners.base import (
    ArraySource,
    RidgeHead,
    check_arrays,
    check_count,
    fit_ridge_head,
    linear_moments,
    resolve_dtype,
)
from replearn.network import TwoLayerReLU, check_width, relu_features, symmetric_init
from replearn.ridge import check_ridge_lambda

__all__ = ["OneStepNetwork"]

HEADS = ("ridge", "gd")
DATA_MODES = ("same", "resample")


class OneStepNetwork:
    """Algorithm 1 as a scikit-learn-style estimator.

    Parameters
    ----------
    width : m, even (neurons come in ± pairs).
    eta1 : first-step size η₁: a number, ``"sqrt_d"`` (the paper's scale η₁ = √d) or
        ``"normalize"`` (η₁ chosen so that the root-mean-square ‖w_j¹‖ is 1, making the
        pre-activations w_j¹·x comparable to the N(0, 1) biases whatever n and noise are).
    head : ``"ridge"`` (closed form) or ``"gd"`` (``head_steps`` GD steps, step ``head_lr``).
    ridge_lambda : λ ≥ 0, or ``"auto"`` (holdout MSE over a λ-path; GCV without holdout).
    data : ``"same"`` (one data set for every step, as in the paper's experiments) or
        ``"resample"`` (first half of the samples for the step, second half for the head,
        as analysed in the paper's Theorem 3).
    preprocess : subtract α + β·x from the labels (step 1) — the paper always does.
    """

    def __init__(
        self,
        width: int = 100,
        eta1: float | str = "sqrt_d",
        head: str = "ridge",
        ridge_lambda: float | str = "auto",
        head_steps: int = 1000,
        head_lr: float | str = "auto",
        data: str = "same",
        preprocess: bool = True,
        dtype: torch.dtype | str = torch.float32,
        device: str | torch.device = "cpu",
        chunk_size: int = 32_768,
        seed: int = 0,
    ):
        self.width = width
        self.eta1 = eta1
        self.head = head
        self.ridge_lambda = ridge_lambda
        self.head_steps = head_steps
        self.head_lr = head_lr
        self.data = data
        self.preprocess = preprocess
        self.dtype = dtype
        self.device = device
        self.chunk_size = chunk_size
        self.seed = seed

    # -- validation -----------------------------------------------------------------------
    def _validate(self) -> None:
        check_width(self.width)
        if isinstance(self.eta1, str):
            if self.eta1 not in ("sqrt_d", "normalize"):
                raise ValueError(f"eta1 must be > 0, 'sqrt_d' or 'normalize', got {self.eta1!r}")
        elif not (
            isinstance(self.eta1, int | float) and math.isfinite(self.eta1) and self.eta1 > 0
        ):
            raise ValueError(f"eta1 must be > 0, 'sqrt_d' or 'normalize', got {self.eta1!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        check_ridge_lambda(self.ridge_lambda)
        check_count("head_steps", self.head_steps, minimum=0)
        if self.head_lr != "auto" and not (
            isinstance(self.head_lr, int | float) and self.head_lr > 0
        ):
            raise ValueError(f"head_lr must be > 0 or 'auto', got {self.head_lr!r}")
        if self.data not in DATA_MODES:
            raise ValueError(f"data must be one of {DATA_MODES}, got {self.data!r}")
        check_count("chunk_size", self.chunk_size)
        check_count("seed", self.seed, minimum=0)
        self._dtype = resolve_dtype(self.dtype)
        self._device = torch.device(self.device)

    # -- public API -------------------------------------------------------------------------
    def fit(self, X, y, X_holdout=None, y_holdout=None) -> OneStepNetwork:
        """Algorithm 1 on in-memory data; λ chosen on (X_holdout, y_holdout) when given."""
        self._validate()
        source = ArraySource(*check_arrays(X, y))
        holdout = None
        if X_holdout is not None:
            holdout = ArraySource(*check_arrays(X_holdout, y_holdout, d=source.d))
        return self._fit(source, len(source), holdout, len(holdout) if holdout else 0)

    def fit_stream(self, stream: DataStream, n: int, n_holdout: int = 100_000) -> OneStepNetwork:
        """Algorithm 1 on samples 0…n−1 of a regenerated stream; holdout from its 'holdout' split."""
        self._validate()
        if not isinstance(stream, DataStream):
            raise ValueError(f"stream must be a DataStream, got {type(stream).__name__}")
        n = check_count("n", n)
        n_holdout = check_count("n_holdout", n_holdout, minimum=0)
        return self._fit(stream, n, stream.split("holdout"), n_holdout)

    def predict(self, X) -> torch.Tensor:
        """α + β·x + aᵀReLU(W¹x + b), chunked; returns a tensor in the model's dtype/device."""
        self._check_fitted()
        X = torch.as_tensor(X)
        if X.ndim != 2 or X.shape[1] != self.W_.shape[1]:
            raise ValueError(f"X must have shape (n, {self.W_.shape[1]}), got {tuple(X.shape)}")
        X = X.to(device=self._device, dtype=self._dtype)
        out = []
        for start in range(0, X.shape[0], self.chunk_size):
            chunk = X[start : start + self.chunk_size]
            out.append(self.alpha_ + chunk @ self.beta_ + self.network_(chunk, self.chunk_size))
        return torch.cat(out) if out else X.new_zeros(0)

    def transfer(self, X, y, X_holdout=None, y_holdout=None) -> OneStepNetwork:
        """A copy with W¹, b kept and α, β, a refitted on a new task (the paper's Theorem 3)."""
        self._check_fitted()
        source = ArraySource(*check_arrays(X, y, d=self.W_.shape[1]))
        holdout = None
        if X_holdout is not None:
            holdout = ArraySource(*check_arrays(X_holdout, y_holdout, d=source.d))
        return self._transferred(source, len(source), holdout, len(holdout) if holdout else 0)

    def transfer_stream(
        self, stream: DataStream, n: int, n_holdout: int = 100_000
    ) -> OneStepNetwork:
        """``transfer`` on samples 0…n−1 of a stream (holdout from its 'holdout' split)."""
        self._check_fitted()
        n = check_count("n", n)
        n_holdout = check_count("n_holdout", n_holdout, minimum=0)
        return self._transferred(stream, n, stream.split("holdout"), n_holdout)

    # -- Algorithm 1 ------------------------------------------------------------------------
    def _fit(self, source, n: int, holdout, n_holdout: int) -> OneStepNetwork:
        d = source.d
        if self.data == "resample" and n < 2:
            raise ValueError("data='resample' needs n >= 2 (half for the step, half for the head)")
        n_step = n // 2 if self.data == "resample" else n
        # step 2's initial network; step 3's biases come from the same seeded generator
        init = symmetric_init(self.width, d, self.seed, self._dtype, self._device)
        self.initial_network_ = init
        # 1. preprocess on the step's data
        alpha, beta = self._linear_part(source, n_step, start=0, d=d)
        # 2. one gradient step with weight decay 1/η₁: W¹ = −η₁ ∇_W L(θ⁰)
        half = self.width // 2
        step_sum = self._step_sum(source, n_step, init.W[:half], alpha, beta)  # Σ y x 1[w⁰x ≥ 0]
        eta1 = self._eta1(d, init.a[:half], step_sum / n_step)
        W_half = 2.0 * eta1 * init.a[:half, None] * (step_sum / n_step)
        W1 = torch.cat([W_half, -W_half]).to(self._dtype)
        # 3. re-initialise the biases b ~ N(0, 1)
        generator = torch.Generator().manual_seed(self.seed + 1_000_003)
        b = torch.randn(self.width, generator=generator, dtype=torch.float64)
        b = b.to(device=self._device, dtype=self._dtype)
        self.eta1_ = eta1
        self.W_, self.b_ = W1, b
        # 4. the head (on fresh data for data='resample', refitting α, β there)
        head_start, n_head = (n_step, n - n_step) if self.data == "resample" else (0, n)
        if self.data == "resample":
            alpha, beta = self._linear_part(source, n_head, start=head_start, d=d)
        self._fit_head(source, n_head, head_start, alpha, beta, holdout, n_holdout)
        self.n_samples_ = n
        return self

    def _linear_part(self, source, n: int, start: int, d: int):
        if not self.preprocess:
            zero = torch.zeros((), dtype=self._dtype, device=self._device)
            return zero, torch.zeros(d, dtype=self._dtype, device=self._device)
        return linear_moments(source, n, start, self.chunk_size, self._dtype, self._device)

    def _step_sum(self, source, n: int, W0: torch.Tensor, alpha, beta) -> torch.Tensor:
        """Σ_i (y_i − α − β·x_i)·1[w_j⁰·x_i ≥ 0]·x_i for each distinct neuron j: (m/2, d)."""
        total = torch.zeros(W0.shape, dtype=torch.float64, device=self._device)
        for X, y, *_ in source.chunks(n, self.chunk_size, start=0):
            X = X.to(device=self._device, dtype=self._dtype)
            y = y.to(device=self._device, dtype=self._dtype) - alpha - X @ beta
            # y_i·1[w_j⁰·x_i ≥ 0], shape (c, m/2)
            weighted = torch.where(X @ W0.T >= 0, y[:, None], 0.0)
            total += (weighted.T @ X).to(torch.float64)
        return total

    def _eta1(self, d: int, a_half: torch.Tensor, mean_step: torch.Tensor) -> float:
        if self.eta1 == "sqrt_d":
            return math.sqrt(d)
        if self.eta1 == "normalize":
            rms = float(mean_step.pow(2).sum(1).mean().sqrt()) * 2.0
            return 1.0 / rms if rms > 0 else 1.0
        return float(self.eta1)

    def _fit_head(self, source, n, start, alpha, beta, holdout, n_holdout) -> None:
        ridge_lambda = check_ridge_lambda(self.ridge_lambda)

        def features(X: torch.Tensor) -> torch.Tensor:
            return relu_features(X, self.W_, self.b_)

        head, path = fit_ridge_head(
            features, self.width, source, n, start, alpha, beta, ridge_lambda,
            self.chunk_size, self._dtype, self._device, holdout, n_holdout,
        )  # fmt: skip
        if self.head == "gd":
            head = RidgeHead(
                self._gd_head(path, head.ridge_lambda), head.ridge_lambda,
                head.lambda_path, head.lambda_criterion, head.criterion_name,
            )  # fmt: skip
        self.alpha_, self.beta_ = alpha, beta
        self.a_ = head.coefficients.to(self._dtype)
        self.ridge_lambda_ = head.ridge_lambda
        self.lambda_path_ = head.lambda_path
        self.lambda_criterion_ = head.lambda_criterion
        self.lambda_criterion_name_ = head.criterion_name
        self.network_ = TwoLayerReLU(self.W_, self.b_, self.a_)

    def _gd_head(self, path, ridge_lambda: float) -> torch.Tensor:
        """T steps of a ← a − η·[∇_a L + λ·a], ∇_a L = 2(G a − c), from a = 0 (float64).

        Run on the accumulated moments G = FᵀF/n, c = Fᵀy/n, which is exactly full-batch GD.
        Default step η = 1/(2·s_max + λ), the inverse smoothness of the objective.
        """
        gram, cross = path.gram, path.cross
        lr = self.head_lr
        if lr == "auto":
            lr = 1.0 / (2.0 * float(path.eigenvalues.max()) + ridge_lambda)
        a = torch.zeros_like(cross)
        for _ in range(self.head_steps):
            a = a - lr * (2.0 * (gram @ a - cross) + ridge_lambda * a)
        return a

    def _transferred(self, source, n, holdout, n_holdout) -> OneStepNetwork:
        new = copy.copy(self)
        d = self.W_.shape[1]
        if source.d != d:
            raise ValueError(f"transfer data must have d={d} columns, got {source.d}")
        alpha, beta = new._linear_part(source, n, start=0, d=d)
        new._fit_head(source, n, 0, alpha, beta, holdout, n_holdout)
        new.n_transfer_samples_ = n
        return new

    def _check_fitted(self) -> None:
        if not hasattr(self, "W_"):
            raise ValueError("this OneStepNetwork is not fitted yet: call fit or fit_stream first")

    def get_params(self, deep: bool = True) -> dict:
        return {k: getattr(self, k) for k in _PARAMS}

    def set_params(self, **params) -> OneStepNetwork:
        for key, value in params.items():
            if key not in _PARAMS:
                raise ValueError(f"unknown parameter {key!r}; allowed: {', '.join(_PARAMS)}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={getattr(self, k)!r}" for k in ("width", "eta1", "head", "seed"))
        return f"OneStepNetwork({shown})"


_PARAMS = (
    "width", "eta1", "head", "ridge_lambda", "head_steps", "head_lr", "data", "preprocess",
    "dtype", "device", "chunk_size", "seed",
)  # fmt: skip
