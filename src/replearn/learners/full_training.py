"""Full training of both layers by minibatch SGD or Adam with autograd — the practitioner's
baseline for Algorithm 1.

    f(x) = s·c·Σ_j a_j·σ(w_j·x + b_j),   s = 1 ("standard"; with c = 1, σ = ReLU the paper's)
                                         s = 1/m ("mean-field")
    θ⁰ = the paper's symmetric initialisation (f ≡ 0) by default, or any of the field's
         (``network.initial_network``: ``first_layer``, ``second_layer``, output scale c,
         activation σ; biases b⁰ = 0, b⁰ ~ N(0, 1), or none at all),
    all of a, W, b trained on
    L(θ) = mean over a minibatch of (f(x_i) − r_i)²,   r_i = y_i − α − β·x_i   (as Algorithm 1)

The gradient autograd takes is, with e_i = f(x_i) − r_i, u_ij = w_j·x_i + b_j and B the batch,

    ∂L/∂a_j = (2/|B|)·Σ_i e_i·s·c·σ(u_ij)
    ∂L/∂w_j = (2/|B|)·Σ_i e_i·s·c·a_j·σ′(u_ij)·x_i,   ∂L/∂b_j = (2/|B|)·Σ_i e_i·s·c·a_j·σ′(u_ij)

(tests/test_full_training.py checks it against this formula written out by hand).

Minibatches: each epoch walks the samples 0…n−1 of the source in chunks of ``chunk_size``
and cuts every chunk, shuffled by a generator seeded with (seed, epoch, chunk), into batches
of ``batch_size``; with n ≤ chunk_size that is a full reshuffle per epoch. The same samples
give the same batches whether they come from arrays (``fit``) or a ``DataStream``
(``fit_stream``, regenerated each epoch: memory O(chunk_size·d) for the training data).

Early stopping: the holdout loss is evaluated at the initialisation and every ``eval_every``
steps (default: once an epoch); training stops after ``patience`` evaluations without
improvement and the parameters with the best holdout loss (possibly the initialisation,
f ≡ 0 for the paper's pairs, when training never helps) are restored.

Learning rates. One SGD step moves a pre-activation w_j·x by O(lr·‖x‖²) = O(lr·d) per unit
of output gradient. Standard parametrisation: the m neurons add up (no 1/m), so SGD needs
lr ∝ 1/(m·d); lr="auto" is 20/(m·d). Mean-field: every gradient carries the factor 1/m,
so SGD steps are taken with lr·m (the mean-field time scale: each neuron moves O(lr) per step
whatever m is); lr="auto" is 0.5/d. Adam divides by the gradient's scale and uses lr as
given in both (auto 10⁻²). The "auto" constants were tuned on paper_target(d = 10), m = 100,
n = 10⁴ (larger ones diverge on some seeds). A step whose loss is not finite stops training
(``diverged_``) and the best parameters so far are kept. ``weight_decay`` is added to the
gradient (torch's convention: ∇L + weight_decay·θ) in both parametrisations. SGD's "auto"
was tuned on the paper's network (c = 1, ±1 pairs); with another output scale or second layer
give lr (Adam's "auto" is scale-free).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from replearn import limits
from replearn.activations import activation_spec, resolve_activation
from replearn.data import DataStream
from replearn.learners.base import BaseLearner
from replearn.learners.sources import ArraySource
from replearn.network import (
    TwoLayerNetwork,
    TwoLayerReLU,
    check_network_options,
    directions_spec,
    first_layer_spec,
    initial_network,
    normal_biases,
    output_scale_spec,
    resolve_directions,
    resolve_output_scale,
    second_layer_spec,
)
from replearn.validation import (
    boolean,
    choice,
    count_within,
    device_name,
    dtype_name,
    integer_at_least,
    interval,
    network_width,
    number,
    optional,
    seed,
)

__all__ = ["FullTraining"]


class FullTraining(BaseLearner):
    """Both layers trained by autograd from the paper's (or a given) initialisation; sklearn-shaped.

    Parameters
    ----------
    width : int
        m ≥ 1; even for ``second_layer="paper"`` (the symmetric initialisation pairs neurons).
    activation : str, Activation or (σ, σ′)
        σ (``replearn.activations``): "relu" (default), "tanh", "erf", "sigmoid", "abs",
        "quadratic", "linear", "hermite:k" or a user's pair.
    output_scale : float or {"1/sqrt(m)", "1/m"}
        c in f = c·Σ_j a_j σ(w_j·x + b_j) (1: the paper's). With
        ``parametrization="mean-field"`` (which is c = 1/m) leave it at 1.
    first_layer : {"gaussian", "unit_rows", "orthogonal"} or array (m, d)
        W⁰ (``network.initial_network``); "orthogonal" needs ``directions``.
    second_layer : {"paper", "signs", "gaussian", "constant"} or array (m,)
        a⁰; "paper" is ±1 in symmetric pairs (f⁰ ≡ 0).
    bias : {"zero", "normal", "none"}
        b⁰ = 0 (the paper's, trained), b⁰ ~ N(0, 1) (trained; ``network.normal_biases``,
        shared by partners under "paper"), or no biases (b ≡ 0, not a parameter).
    directions : MultiIndexTarget, array (r, d) or None
        The target's directions U, for ``first_layer="orthogonal"`` (rows of W⁰ ⟂ span U).
    optimizer : {"sgd", "adam"}
        "sgd" (with optional ``momentum``) or "adam".
    lr : float or "auto"
        Step size, or "auto" (see the module docstring for the scaling with m).
    epochs : int
        Passes over the n training samples; ``n_steps`` (if given) instead fixes the number
        of minibatch steps (epochs repeat as needed).
    n_steps : int or None
    batch_size : int
    weight_decay : float
        λ ≥ 0 added to the gradient (∇L + λθ).
    momentum : float in [0, 1)
        SGD's heavy ball v ← μ·v + g (optimizer="sgd" only).
    parametrization : {"standard", "mean-field"}
        f = Σ_j … or f = (1/m)Σ_j ….
    patience : int or None
        Evaluations without a holdout improvement before stopping; None never stops early.
        Needs a holdout (``X_holdout``/``y_holdout``, or ``fit_stream``).
    eval_every : int or None
        Steps between holdout evaluations (None: once per epoch).
    preprocess : bool
        Fit r = y − α − β·x, as Algorithm 1 (so the comparison is like for like).
    dtype, device, chunk_size, seed
        As ``OneStepNetwork``; ``seed`` also seeds the minibatch shuffles.

    Attributes
    ----------
    W_, b_, a_ : tensors (m, d), (m,), (m,)
        The trained parameters (``a_`` without the mean-field 1/m or c; ``b_`` zeros for
        ``bias="none"``).
    network_ : TwoLayerNetwork
        f with σ and c, the 1/m of mean-field folded into its a.
    output_scale_ : float
        c ("1/sqrt(m)", "1/m" resolved).
    alpha_, beta_ : tensor (), tensor (d,)
    history_ : dict of lists
        step, epoch, train_loss (mean minibatch loss since the previous evaluation; at step
        0, the loss of f⁰ on the first chunk — f⁰ ≡ 0 for the symmetric pairs) and
        holdout_loss.
    best_step_, n_steps_, n_epochs_ : int
    stopped_early_, diverged_ : bool
    lr_ : float
        The lr used ("auto" resolved).
    n_features_in_, n_samples_ : int

    Examples
    --------
    >>> import torch
    >>> X = torch.randn(256, 3, generator=torch.Generator().manual_seed(0))
    >>> y = 1.0 + X[:, 0] + X[:, 1].relu()
    >>> model = FullTraining(width=16, epochs=5, patience=None).fit(X, y)
    >>> model.n_steps_, model.W_.shape   # 5 epochs × ⌈256/64⌉ minibatches
    (20, torch.Size([16, 3]))
    >>> model.score(X, y) > 0.8
    True
    """

    _parameter_checks = {
        "width": network_width,
        "activation": activation_spec,
        "output_scale": output_scale_spec,
        "first_layer": first_layer_spec,
        "second_layer": second_layer_spec,
        "bias": choice("zero", "normal", "none"),
        "directions": directions_spec,
        "optimizer": choice("sgd", "adam"),
        "lr": number(0.0, True, ("auto",)),
        "epochs": count_within("steps", 1),
        "n_steps": optional(count_within("steps", 1)),
        "batch_size": integer_at_least(1),
        "weight_decay": number(0.0),
        "momentum": interval(0.0, 1.0),
        "parametrization": choice("standard", "mean-field"),
        "patience": optional(integer_at_least(1)),
        "eval_every": optional(integer_at_least(1)),
        "preprocess": boolean,
        "dtype": dtype_name,
        "device": device_name,
        "chunk_size": integer_at_least(1),
        "seed": seed,
    }
    # a target or an array: YAML cannot give it (the engine may pass the target's U)
    _not_in_specs = frozenset({"directions"})

    def __init__(
        self,
        width: int = 100,
        activation="relu",
        output_scale: float | str = 1.0,
        first_layer="gaussian",
        second_layer="paper",
        bias: str = "zero",
        directions=None,
        optimizer: str = "adam",
        lr: float | str = "auto",
        epochs: int = 200,
        n_steps: int | None = None,
        batch_size: int = 64,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        parametrization: str = "standard",
        patience: int | None = 20,
        eval_every: int | None = None,
        preprocess: bool = True,
        dtype: torch.dtype | str = "float32",
        device: str | torch.device = "cpu",
        chunk_size: int = 65_536,
        seed: int = 0,
    ):
        self.width = width
        self.activation = activation
        self.output_scale = output_scale
        self.first_layer = first_layer
        self.second_layer = second_layer
        self.bias = bias
        self.directions = directions
        self.optimizer = optimizer
        self.lr = lr
        self.epochs = epochs
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.parametrization = parametrization
        self.patience = patience
        self.eval_every = eval_every
        self.preprocess = preprocess
        self.dtype = dtype
        self.device = device
        self.chunk_size = chunk_size
        self.seed = seed

    def _check_combination(self, values) -> None:
        if values["momentum"] > 0 and values["optimizer"] != "sgd":
            raise ValueError("momentum applies to optimizer='sgd' only")
        check_network_options(values["width"], self.first_layer, self.second_layer, self.directions)
        paired = isinstance(self.second_layer, str) and self.second_layer == "paper"
        if values["parametrization"] == "mean-field" and values["output_scale"] != 1.0:
            raise ValueError(
                "parametrization='mean-field' is the output scale 1/m (with SGD steps lr·m): "
                "leave output_scale at 1, or use parametrization='standard' with output_scale"
            )
        if (
            values["optimizer"] == "sgd"
            and values["lr"] == "auto"
            and not (values["output_scale"] == 1.0 and paired)
        ):
            raise ValueError(
                "lr='auto' with optimizer='sgd' is tuned for the paper's network (output_scale "
                "1, second_layer 'paper'): give lr, or use optimizer='adam'"
            )

    # -- public API -------------------------------------------------------------------------
    def fit(self, X, y, X_holdout=None, y_holdout=None) -> FullTraining:
        """Train on in-memory data; early stopping on (X_holdout, y_holdout) when given.

        Parameters
        ----------
        X : tensor or array_like, shape (n, d)
            Inputs; a tensor is used as it is, anything else goes through scikit-learn's
            ``validate_data`` (then ``predict`` returns numpy).
        y : tensor or array_like, shape (n,)
            Labels.
        X_holdout, y_holdout : tensor or array_like, optional
            Both or neither: early stopping (``patience``) watches the loss on them.

        Returns
        -------
        FullTraining
            self, fitted.
        """
        self._check_params()
        source = self._training_data(X, y)
        holdout, _ = self._holdout_data(X_holdout, y_holdout)
        return self._fit(source, len(source), holdout)

    def fit_stream(
        self, stream: DataStream, n: int, n_holdout: int = 100_000, *, cache_bytes=None
    ) -> FullTraining:
        """Train on samples 0…n−1 of a stream (kept within its memory budget, else drawn again
        each epoch); early stopping on n_holdout samples of its 'holdout' split (kept in
        memory: n_holdout × d).

        Parameters
        ----------
        stream : DataStream
            Samples 0…n−1 of it (never more than the budget and a chunk in memory).
        n : int
            Number of samples, ≥ 1.
        n_holdout : int
            Samples of ``stream.split("holdout")``, ≥ 0: early stopping watches the loss on
            them (kept in memory: n_holdout × d).
        cache_bytes : int, optional
            This fit's budget for drawn samples kept between epochs (0: draw every epoch
            again); None: the stream's own. Results are the same whatever the budget.

        Returns
        -------
        FullTraining
            self, fitted.
        """
        self._check_params()
        stream, n, n_holdout = self._stream_args(stream, n, n_holdout, cache_bytes)
        self._reset_features(stream.d)
        holdout = ArraySource(*stream.split("holdout").get(0, n_holdout)) if n_holdout else None
        return self._fit(stream, n, holdout)

    def _predict_chunk(self, X: torch.Tensor) -> torch.Tensor:
        """α + β·x + f(x)."""
        return self._linear(X) + self.network_(X)

    def _fit_memory_bytes(self, n: int, d: int, n_holdout: int = 0) -> tuple[int, str]:
        """(bytes, what) of the fit's dominant allocations.

        The parameters m(d + 2) six times (themselves, θ⁰, their gradient, Adam's two moments
        and the best copy); two training chunks (the first one is kept for the step-0 loss)
        as drawn (float64) and cast (model dtype), chunk × d each; the holdout kept in memory
        (float64 as drawn, and in the model dtype); and the holdout loss's pre-activations
        and ReLU on a chunk of holdout rows (two min(chunk, n_holdout) × m arrays); and a
        minibatch's pre-activations, activations and their gradient (three batch_size × m
        arrays: what a wide network at small d spends most on).
        """
        item = limits.item_bytes(self._dtype)
        chunk = min(self.chunk_size, n)
        holdout_rows = min(self.chunk_size, n_holdout)
        needed = (
            6 * self.width * (d + 2) * item
            + 2 * chunk * d * (8 + item)
            + n_holdout * (d + 1) * (8 + item)
            + 2 * holdout_rows * self.width * item
            + 3 * min(self.batch_size, n) * self.width * item
        )
        what = (
            f"FullTraining with width {self.width} at d = {d}, n = {n:,} (parameters, Adam "
            f"moments, chunks of {chunk:,} samples and the holdout)"
        )
        return needed, what

    # -- training -----------------------------------------------------------------------------
    def _resolved_lr(self, d: int) -> float:
        """lr="auto": Adam 10⁻²; SGD 20/(m·d) (standard) or 0.5/d (mean-field)."""
        if self.lr != "auto":
            return float(self.lr)
        if self.optimizer == "adam":
            return 1e-2
        return 20.0 / (self.width * d) if self.parametrization == "standard" else 0.5 / d

    def initial_network(self, d: int) -> TwoLayerNetwork:
        """θ⁰ for input dimension d: ``network.initial_network`` with this learner's options
        (the paper's ``symmetric_init`` by default, bit for bit) and its biases."""
        self._check_params()
        activation = resolve_activation(self.activation)
        c = resolve_output_scale(self.output_scale, self.width)
        init = initial_network(
            self.width, d, self.seed, self.first_layer, self.second_layer, activation, c,
            resolve_directions(self.directions), self._dtype, self._device,
        )  # fmt: skip
        if self.bias == "normal":
            paired = isinstance(self.second_layer, str) and self.second_layer == "paper"
            count = self.width // 2 if paired else self.width
            b = normal_biases(count, self.seed, self._dtype, self._device)
            init.b = torch.cat([b, b]) if paired else b
        return init

    def _fit(self, source, n: int, holdout) -> FullTraining:
        if self.n_steps is None:  # epochs × minibatches, bounded before any pass over the data
            full, rest = divmod(n, self.chunk_size)
            per_epoch = full * -(-self.chunk_size // self.batch_size) + -(-rest // self.batch_size)
            limits.check(
                "steps",
                self.epochs * per_epoch,
                f"{self.epochs} epochs × {per_epoch:,} minibatches",
            )
        d = source.d
        dtype, device = self._dtype, self._device
        alpha, beta = self._linear_part(source, n)
        init = self.initial_network(d)
        activation, c = init.activation, init.output_scale
        trained = (init.W, init.a) if self.bias == "none" else (init.W, init.b, init.a)
        params = [t.clone().requires_grad_(True) for t in trained]
        if self.bias == "none":
            (W, a), b = params, None
        else:
            W, b, a = params
        mean_field = 1.0 / self.width if self.parametrization == "mean-field" else 1.0
        scale = mean_field * c  # s·c
        lr = self._resolved_lr(d)
        if self.optimizer == "sgd":
            step_lr = lr * self.width if self.parametrization == "mean-field" else lr
            opt = torch.optim.SGD(
                params, lr=step_lr, momentum=self.momentum, weight_decay=self.weight_decay
            )
        else:
            opt = torch.optim.Adam(params, lr=lr, weight_decay=self.weight_decay)

        def model(X: torch.Tensor) -> torch.Tensor:  # s·c·σ(X Wᵀ + b)·a
            pre = X @ W.T if b is None else torch.addmm(b, X, W.T)
            features = torch.relu(pre) if activation.is_relu else activation(pre)
            return (features @ a) * scale

        if holdout is not None:
            Xh = holdout.X.to(device=device, dtype=dtype)
            rh = holdout.y.to(device=device, dtype=dtype) - alpha - Xh @ beta

        def holdout_loss() -> float:
            with torch.no_grad():
                total = sum(
                    float(((model(x) - r) ** 2).sum(dtype=torch.float64))
                    for x, r in zip(Xh.split(self.chunk_size), rh.split(self.chunk_size))
                )
            return total / Xh.shape[0]

        steps_per_epoch = sum(
            math.ceil(min(self.chunk_size, n - start) / self.batch_size)
            for start in range(0, n, self.chunk_size)
        )
        total_steps = self.n_steps if self.n_steps is not None else self.epochs * steps_per_epoch
        eval_every = self.eval_every or steps_per_epoch
        history = {"step": [], "epoch": [], "train_loss": [], "holdout_loss": []}
        best = (math.inf, None, 0)  # (holdout loss, parameters, step)
        wait, step, epoch, stopped, diverged = 0, 0, 0, False, False
        running, running_count = 0.0, 0
        if holdout is not None:  # step 0: the initialisation θ⁰ is a candidate too
            X0, y0, *_ = next(iter(source.chunks(n, self.chunk_size)))
            X0 = X0.to(device=device, dtype=dtype)
            r0 = y0.to(device=device, dtype=dtype) - alpha - X0 @ beta
            history["step"].append(0)
            history["epoch"].append(0)
            if not (isinstance(self.second_layer, str) and self.second_layer == "paper"):
                with torch.no_grad():  # f⁰ ≠ 0 without the symmetric pairs
                    r0 = r0 - model(X0)
            history["train_loss"].append(float((r0.double() ** 2).mean()))
            history["holdout_loss"].append(holdout_loss())
            best = (history["holdout_loss"][0], [p.detach().clone() for p in params], 0)
        while step < total_steps and not stopped:
            for chunk_index, (X, y, *_) in enumerate(source.chunks(n, self.chunk_size)):
                X = X.to(device=device, dtype=dtype)
                r = y.to(device=device, dtype=dtype) - alpha - X @ beta
                order = torch.randperm(X.shape[0], generator=self._generator(epoch, chunk_index))
                for batch in order.to(device).split(self.batch_size):
                    loss = ((model(X[batch]) - r[batch]) ** 2).mean()
                    if not torch.isfinite(loss):
                        diverged = stopped = True
                        break
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    step += 1
                    running += float(loss.detach())
                    running_count += 1
                    if step % eval_every == 0 or step == total_steps:
                        history["step"].append(step)
                        history["epoch"].append(epoch + 1)
                        history["train_loss"].append(running / running_count)
                        running, running_count = 0.0, 0
                        if holdout is not None:
                            value = holdout_loss()
                            history["holdout_loss"].append(value)
                            if value < best[0]:
                                best = (value, [p.detach().clone() for p in params], step)
                                wait = 0
                            else:
                                wait += 1
                                stopped = self.patience is not None and wait >= self.patience
                    if step >= total_steps or stopped:
                        break
                if step >= total_steps or stopped:
                    break
            epoch += 1
        if diverged:
            warnings.warn(
                f"FullTraining diverged at step {step + 1} (loss not finite); keeping the best "
                "parameters so far (the initialisation if none was evaluated): lower lr",
                RuntimeWarning,
                stacklevel=3,
            )
            if best[1] is None:
                best = (math.inf, list(trained), 0)
        if best[1] is not None:  # restore the parameters with the best holdout loss
            with torch.no_grad():
                for p, saved in zip(params, best[1]):
                    p.copy_(saved)
        self.alpha_, self.beta_ = alpha, beta
        if b is None:
            (self.W_, self.a_), self.b_ = (p.detach() for p in params), init.b
        else:
            self.W_, self.b_, self.a_ = (p.detach() for p in params)
        if init.is_paper_relu:
            self.network_ = TwoLayerReLU(self.W_, self.b_, self.a_ * mean_field)
        else:
            self.network_ = TwoLayerNetwork(self.W_, self.b_, self.a_ * mean_field, activation, c)
        self.output_scale_ = c
        self.history_ = history
        self.best_step_ = best[2] if best[1] is not None else step
        self.n_steps_ = step
        self.n_epochs_ = epoch
        self.stopped_early_ = stopped and not diverged
        self.diverged_ = diverged
        self.lr_ = lr
        self.n_samples_ = n
        return self

    def _generator(self, epoch: int, chunk_index: int) -> torch.Generator:
        state = np.random.SeedSequence([int(self.seed), epoch, chunk_index]).generate_state(1)
        return torch.Generator().manual_seed(int(state[0]))
