"""Algorithm 1 of Damian, Lee & Soltanolkotabi (COLT 2022): one large gradient step on the
first layer, then a ridge-regression head on the frozen random-bias features.

    1. α = mean_i y_i,  β = mean_i y_i·x_i,  y_i ← y_i − α − β·x_i           (preprocess)
    2. W¹ = −η₁·∇_W L(θ⁰)  (weight decay λ₁ = 1/η₁ cancels W⁰); since f ≡ 0 at init,
       w_j¹ = 2·η₁·a_j · mean_i( y_i·x_i·1[w_j⁰·x_i ≥ 0] )                    (one step)
    3. b_j ~ N(0, 1)                                                          (new biases)
    4. a = argmin (1/n)Σ_i (aᵀReLU(W¹x_i + b) − y_i)² + (λ/2)‖a‖²               (head)
       (closed-form ridge, or T steps of GD with step η and weight decay λ)
    5. x ↦ α + β·x + aᵀReLU(W¹x + b)                                          (predictor)

With ``label_transform`` T, step 2 runs on the transformed labels
s_i = (T(y_i) − m_T − β_T·x_i)/σ_s (``replearn.label_transforms``); α, β and the head stay on
the raw y (T = None is the paper's step, unchanged to the bit).

Every step is a sum over samples, computed chunk by chunk; memory is O(m·d + m²).
Partners j and j + m/2 share w_j⁰ and have opposite a_j, so w_{j+m/2}¹ = −w_j¹ and the
step needs only the m/2 distinct neurons.

The field's models (``replearn.learners.first_layer``): f(x) = c·Σ_j a_j·σ(w_j·x + b_j) with
any activation σ, output scale c, first and second layers and biases. Step 2 is then the
true gradient step

    W¹ = W⁰ − η₁·(∇_W L(θ⁰) + λ₁·W⁰),   ∇_{w_j} L = (2c/n)·a_j·Σ_i (f⁰(x_i) − s_i)·σ′(w_j⁰·x_i + b_j)·x_i

(f⁰ ≢ 0 unless the second layer is the paper's symmetric pairs), with λ₁ = 1/η₁ by default
(``weight_decay="paper"``: W¹ = −η₁∇L, W⁰ forgotten except through the gradient's
activation pattern) or a given λ₁ ≥ 0 (0: W¹ = W⁰ − η₁∇L, the step of Dandi et al. 2023 and
Cui et al. 2024, which keeps the random bulk W⁰). The head's features are c·σ(W¹x + b), so
``a_`` is the second layer of the same network. ReLU, c = 1, the paper's pairs and b = 0 at
the step keep the exact m/2-row pass above (bit for bit).
"""

from __future__ import annotations

import copy
import math

import torch

from replearn import progress
from replearn.formula import evaluate_formula
from replearn.label_transforms import (
    label_transform_spec,
    resolve_label_transform,
    step_label_moments,
    step_labels,
)
from replearn.learners.base import BaseLearner, TransferMixin
from replearn.learners.first_layer import (
    MODEL_PARAMETER_CHECKS,
    NetworkModel,
    first_layer_gradient_sum,
    gradient_step,
    model_width,
)
from replearn.learners.ridge_head import RidgeHead, fit_ridge_head
from replearn.network import TwoLayerNetwork, feature_map, scratch
from replearn.validation import (
    boolean,
    check_ridge_lambda,
    choice,
    count_within,
    device_name,
    dtype_name,
    integer_at_least,
    number,
    ridge_lambda,
    seed,
)

__all__ = ["OneStepNetwork", "first_layer_step_sum", "step_label_function"]


def step_label_function(learner, source, n: int, start: int, transform, alpha, beta):
    """The step's labels s(X, y) on samples start…start+n−1, for chunks already in the
    learner's dtype and device.

    T = identity: s = y − α − β·x (the paper's). Otherwise s = (T(y) − m_T − β_T·x)/σ_s with
    the constants from one or two streamed passes (``step_label_moments``).
    """
    if transform.is_identity:
        return lambda X, y: y - alpha - X @ beta

    def chunks():
        return source.chunks(n, learner.chunk_size, start=start)

    moments = step_label_moments(chunks, transform)
    moments.t_beta = moments.t_beta.to(learner._device)
    return lambda X, y: step_labels(X, y, moments)


def first_layer_step_sum(
    source, n: int, start: int, W_half: torch.Tensor, labels, chunk_size: int, dtype, device
) -> torch.Tensor:
    """Σ_i s_i·1[w_j·x_i ≥ 0]·x_i over samples start…start+n−1 for each row w_j of W_half
    (float64 sums of per-chunk products in ``dtype``): shape (len(W_half), d)."""
    total = torch.zeros(W_half.shape, dtype=torch.float64, device=device)
    buffer = None
    for X, y, *_ in progress.labelled("first-layer step", source.chunks(n, chunk_size, start)):
        X = X.to(device=device, dtype=dtype)
        s = labels(X, y.to(device=device, dtype=dtype))
        # s_i·1[w_j·x_i ≥ 0], shape (c, m/2), written in place into the pre-activations, one
        # buffer for the pass (a fresh (c, m/2) tensor per chunk is a page-faulted allocation)
        buffer = scratch(buffer, X.shape[0], W_half.shape[0], X)
        weighted = torch.mm(X, W_half.T, out=buffer).ge_(0).mul_(s[:, None])
        total += (weighted.T @ X).to(torch.float64)
    return total


class FrozenFirstLayerHead(NetworkModel, TransferMixin):
    """Steps 3–5 shared by the first-layer-step learners (``OneStepNetwork``,
    ``GiantStepNetwork``): given ``W_`` and ``b_``, the ridge (or GD) head on the features
    φ(x) = c·σ(W x + b), the predictor α + β·x + c·aᵀσ(W x + b), and ``transfer``.

    The head's features carry the output scale c, so ``a_`` is the second layer of the same
    network f = c·aᵀσ(Wx + b) that took the step(s) (for the paper, c = 1 and σ = ReLU:
    ReLU(W x + b), unchanged). Ridge: a = argmin (1/n)‖Φa − r‖² + (λ/2)‖a‖².

    Needs the parameters ``head``, ``ridge_lambda``, ``head_steps``, ``head_lr``,
    ``chunk_size``, the model's (``NetworkModel``) and BaseLearner's
    ``_linear_part``/``_store_lambda``.
    """

    def _predict_chunk(self, X: torch.Tensor) -> torch.Tensor:
        """α + β·x + c·aᵀσ(W x + b)."""
        return self._linear(X) + self.network_(X, self.chunk_size)

    def _fit_head(self, source, n, start, alpha, beta, holdout, n_holdout) -> None:
        ridge_lambda = self._head_ridge_lambda(n)

        activation, scale = self._activation(), self._scale()
        features = feature_map(self.W_, self.b_, activation, scale)
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
        self._store_lambda(head)
        self.network_ = TwoLayerNetwork(self.W_, self.b_, self.a_, activation, scale)

    def _head_ridge_lambda(self, n: int) -> float | str:
        """λ of the head on n samples: 'auto', a number, or (where the learner's check allows
        one: ``GiantStepNetwork``) a formula in n, d, m evaluated here (``replearn.formula``)."""
        value = self.ridge_lambda
        if isinstance(value, str) and value != "auto":
            d = self.W_.shape[1]
            lam = evaluate_formula(value, {"n": n, "d": d, "m": self.width})
            if not lam >= 0:
                raise ValueError(
                    f"ridge_lambda = {value!r} gives λ = {lam:g} at n = {n}, d = {d}, "
                    f"m = {self.width}; must be ≥ 0"
                )
            return lam
        return check_ridge_lambda(value)

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

    def _transferred(self, source, n, holdout, n_holdout):
        new = copy.copy(self)
        d = self.W_.shape[1]
        if source.d != d:
            raise ValueError(f"transfer data must have d={d} columns, got {source.d}")
        alpha, beta = new._linear_part(source, n, start=0)
        new._fit_head(source, n, 0, alpha, beta, holdout, n_holdout)
        new.n_transfer_samples_ = n
        return new


class OneStepNetwork(FrozenFirstLayerHead, BaseLearner):
    """Algorithm 1 as a scikit-learn estimator, on the paper's network or the field's models.

    Parameters
    ----------
    width : int
        m: even with ``second_layer="paper"`` (neurons come in ± pairs), else any m ≥ 1.
    eta1 : float or {"sqrt_d", "normalize"}
        First-step size η₁: a number > 0, ``"sqrt_d"`` (the paper's scale η₁ = √d) or
        ``"normalize"`` (η₁ = 1/RMS_j‖∇_{w_j}L‖, so that the step moves each neuron by 1 in
        root mean square; for the paper's step, where W¹ = −η₁∇L, the root-mean-square
        ‖w_j¹‖ is 1, making the pre-activations w_j¹·x comparable to the N(0, 1) biases
        whatever n and noise are).
    head : {"ridge", "gd"}
        ``"ridge"`` (closed form) or ``"gd"`` (``head_steps`` GD steps of size ``head_lr``
        on J(a) = (1/n)‖Φa − r‖² + (λ/2)‖a‖², from a = 0).
    ridge_lambda : float or "auto"
        λ ≥ 0 of J(a), or ``"auto"`` (holdout MSE over a λ-path; GCV without a holdout).
        Φ = c·σ(W¹X + b) carries the output scale. Cui et al. 2024 minimise
        Σ_i (y_i − aᵀφ_i)² + λ_C‖a‖² (a sum, no ½) on the same φ = σ(W¹x)/√p (our c = 1/√m),
        whose minimiser is ours with λ = 2λ_C/n.
    head_steps : int
        T ≥ 0, the GD steps of ``head="gd"``.
    head_lr : float or "auto"
        GD step of ``head="gd"``; "auto" = 1/(2·s_max + λ), s_max the top eigenvalue of ΦᵀΦ/n.
    data : {"same", "resample"}
        ``"same"`` (one data set for every step, as in the paper's experiments) or
        ``"resample"`` (samples 0…⌊n/2⌋−1 for α, β and the step, the rest for α, β and the
        head, as analysed in the paper's Theorem 3).
    preprocess : bool
        Subtract α + β·x from the labels (step 1) — the paper always does.
    label_transform : None, "identity", "square", "abs", "sign", "hermite:k" or callable
        T applied to the raw labels of the first step only (``replearn.label_transforms``):
        the step's labels become s = (T(y) − m_T − β_T·x)/σ_s (unit mean square, so the
        default η₁ keeps its scale); α, β and the head are fitted on the raw y. None (the
        default) is the paper's step, bit for bit.
    activation : str, Activation or (σ, σ′)
        σ of the network: ``"relu"`` (the paper's), ``"tanh"``, ``"erf"``, ``"sigmoid"``,
        ``"abs"``, ``"quadratic"``, ``"linear"``, ``"hermite:k"`` or a user's pair
        (``replearn.activations``).
    output_scale : float, "1/sqrt(m)" or "1/m"
        c in f(x) = c·Σ_j a_j σ(w_j·x + b_j): 1 (the paper's), 1/√m, 1/m or a number > 0.
        It scales the step's gradient and the head's features.
    first_layer : {"gaussian", "unit_rows", "orthogonal"} or array (m, d)
        W⁰: rows N(0, I_d/d) (the paper's), the same scaled to unit norm, N(0, I_d/d) rows
        with their part in span(``directions``) removed, or a given matrix (copied).
    second_layer : {"paper", "signs", "gaussian", "constant"} or array (m,)
        a (fixed during the step): ±1 in symmetric pairs (the paper's, f⁰ ≡ 0), independent
        ±1/√m, N(0, 1/m), 1/√m for every neuron, or a given vector (copied).
    directions : None, MultiIndexTarget or array (r, d)
        The target's directions, needed by ``first_layer="orthogonal"`` only.
    biases : {"paper", "none", "normal"}
        "paper": b = 0 during the step, then b ~ N(0, 1) for the head (Algorithm 1's step 3);
        "none": b = 0 in the step and the head (Cui et al. 2024); "normal": b ~ N(0, 1)
        from the start, the same during the step and for the head (partners j, j + m/2 of
        the paper's pairs share b_j, so f⁰ ≡ 0 still).
    weight_decay : "paper" or float
        λ₁ of the step W¹ = W⁰ − η₁(∇L + λ₁W⁰): "paper" is λ₁ = 1/η₁ (W¹ = −η₁∇L), or a
        number ≥ 0 (0: plain gradient descent from W⁰).
    dtype : {"float32", "float64"} or torch dtype
        Precision of features and per-chunk products (sums are float64 either way).
    device : str or torch.device
    chunk_size : int
        Samples per chunk: memory O(chunk_size·(d + m)) whatever n is.
    seed : int
        Seeds W⁰, a (``network.initial_network``) and the N(0, 1) biases
        (``network.normal_biases``).

    Attributes
    ----------
    W_ : tensor (m, d)
        W¹, the first layer after the step (the paper's: rows j and j + m/2 opposite).
    b_ : tensor (m,)
        The head's biases (``biases``).
    a_ : tensor (m,)
        The head: f(x) = α + β·x + c·aᵀσ(W¹x + b).
    alpha_, beta_ : tensor (), tensor (d,)
        The linear part α, β (of the head's data).
    eta1_ : float
        The η₁ used ("sqrt_d" and "normalize" resolved).
    initial_network_ : TwoLayerNetwork
        θ⁰ = (W⁰, b, a, σ, c), b the biases of the step.
    network_ : TwoLayerNetwork
        (``W_``, ``b_``, ``a_``, σ, c): x ↦ c·aᵀσ(W¹x + b).
    ridge_lambda_, lambda_path_, lambda_criterion_, lambda_criterion_name_
        The λ used; the path and its criterion ("holdout_mse" or "gcv") when λ was chosen.
    n_features_in_, n_samples_ : int
        d and n of the fit; ``transfer`` adds ``n_transfer_samples_``.

    Examples
    --------
    >>> import replearn as rl
    >>> target = rl.paper_target(d=8, seed=0)
    >>> X, y = rl.sample(target, n=2000, noise=0.5, seed=0)
    >>> net = rl.OneStepNetwork(width=40, seed=0).fit(X, y)
    >>> net.W_.shape, net.a_.shape
    (torch.Size([40, 8]), torch.Size([40]))
    >>> bool(torch.equal(net.W_[:20], -net.W_[20:]))  # partners move oppositely
    True
    >>> X_test, y_test = rl.sample(target, n=2000, noise=0.0, seed=1)
    >>> net.score(X_test, y_test) > 0.3
    True

    The same step on a tanh network with Dandi et al. 2023's parametrisation (c = 1/√m,
    a ~ N(0, 1/m), W⁰ kept), width 5:

    >>> net = rl.OneStepNetwork(width=5, activation="tanh", output_scale="1/sqrt(m)",
    ...                         second_layer="gaussian", weight_decay=0.0, eta1=8.0,
    ...                         seed=0).fit(X, y)
    >>> net.W_.shape, round(float(net.network_.output_scale), 4)
    (torch.Size([5, 8]), 0.4472)
    """

    _not_in_specs = frozenset({"directions"})  # the engine passes the run's target U

    _parameter_checks = {
        "width": model_width,
        "eta1": number(0.0, True, ("sqrt_d", "normalize")),
        "head": choice("ridge", "gd"),
        "ridge_lambda": ridge_lambda,
        "head_steps": count_within("steps", 0),
        "head_lr": number(0.0, True, ("auto",)),
        "data": choice("same", "resample"),
        "preprocess": boolean,
        "label_transform": label_transform_spec,
        **MODEL_PARAMETER_CHECKS,
        "weight_decay": number(0.0, False, ("paper",)),
        "dtype": dtype_name,
        "device": device_name,
        "chunk_size": integer_at_least(1),
        "seed": seed,
    }

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
        label_transform=None,
        activation="relu",
        output_scale: float | str = 1.0,
        first_layer="gaussian",
        second_layer="paper",
        directions=None,
        biases: str = "paper",
        weight_decay: float | str = "paper",
        dtype: torch.dtype | str = "float32",
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
        self.label_transform = label_transform
        self.activation = activation
        self.output_scale = output_scale
        self.first_layer = first_layer
        self.second_layer = second_layer
        self.directions = directions
        self.biases = biases
        self.weight_decay = weight_decay
        self.dtype = dtype
        self.device = device
        self.chunk_size = chunk_size
        self.seed = seed

    def _check_combination(self, values) -> None:
        self._check_width_rule(values)

    # -- Algorithm 1 ------------------------------------------------------------------------
    def _fit(self, source, n: int, holdout, n_holdout: int) -> OneStepNetwork:
        d = source.d
        if self.data == "resample" and n < 2:
            raise ValueError("data='resample' needs n >= 2 (half for the step, half for the head)")
        n_step = n // 2 if self.data == "resample" else n
        # step 2's initial network; step 3's biases come from the same seeded generator
        init = self._initial_network(d)
        self.initial_network_ = init
        # 1. preprocess on the step's data
        alpha, beta = self._linear_part(source, n_step, start=0)
        # 2. one gradient step on the first layer
        transform = resolve_label_transform(self.label_transform)
        labels = step_label_function(self, source, n_step, 0, transform, alpha, beta)
        if self._paper_step() and self.weight_decay == "paper":
            W1, eta1 = self._paper_first_step(source, n_step, init, labels, d)
        else:
            W1, eta1 = self._gradient_first_step(source, n_step, init, labels, d)
        # 3. the head's biases (Algorithm 1: re-initialised, b ~ N(0, 1))
        self.eta1_ = eta1
        self.W_, self.b_ = W1, self._head_biases()
        # 4. the head (on fresh data for data='resample', refitting α, β there)
        head_start, n_head = (n_step, n - n_step) if self.data == "resample" else (0, n)
        if self.data == "resample":
            alpha, beta = self._linear_part(source, n_head, start=head_start)
        self._fit_head(source, n_head, head_start, alpha, beta, holdout, n_holdout)
        self.n_samples_ = n
        return self

    def _paper_first_step(self, source, n: int, init, labels, d: int):
        """W¹ = −η₁∇L(θ⁰) with f⁰ ≡ 0: w_j¹ = 2η₁c·a_j·mean(s·1[w_j⁰·x ≥ 0]·x) for the m/2
        distinct rows, w_{j+m/2}¹ = −w_j¹."""
        half = self.width // 2
        scale = self._scale()
        step_sum = first_layer_step_sum(
            source, n, 0, init.W[:half], labels, self.chunk_size, self._dtype, self._device
        )  # Σ s x 1[w⁰x ≥ 0]
        eta1 = self._eta1(d, scale * (step_sum / n))
        W_half = 2.0 * eta1 * scale * init.a[:half, None] * (step_sum / n)
        return torch.cat([W_half, -W_half]).to(self._dtype), eta1

    def _gradient_first_step(self, source, n: int, init, labels, d: int):
        """W¹ = W⁰ − η₁(∇L(θ⁰) + λ₁W⁰), the true gradient of any model (float64)."""
        gradient_sum = first_layer_gradient_sum(
            source, n, 0, init, labels, self.chunk_size, self._dtype, self._device
        )
        a = init.a.to(torch.float64)
        gradient = (2.0 * init.output_scale / n) * a[:, None] * gradient_sum
        eta1 = self._eta1(d, gradient / 2.0)
        W0 = init.W.to(torch.float64)
        if self.weight_decay == "paper":
            W1 = gradient_step(W0, gradient, eta1, 1.0 / eta1, cancels=True)
        else:
            decay = float(self.weight_decay)
            W1 = gradient_step(W0, gradient, eta1, decay, cancels=eta1 * decay == 1.0)
        if not bool(torch.isfinite(W1).all()):
            raise ValueError(
                f"the first step overflowed (non-finite weights with η₁ = {eta1:g}): use a "
                "smaller eta1"
            )
        return W1.to(self._dtype), eta1

    def _eta1(self, d: int, half_gradient: torch.Tensor) -> float:
        """η₁; ``half_gradient`` is ∇L/2 row by row (up to the signs of a) for "normalize"."""
        if self.eta1 == "sqrt_d":
            return math.sqrt(d)
        if self.eta1 == "normalize":
            rms = float(half_gradient.pow(2).sum(1).mean().sqrt()) * 2.0
            return 1.0 / rms if rms > 0 else 1.0
        return float(self.eta1)
