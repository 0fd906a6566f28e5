"""Full training of both layers by minibatch SGD or Adam with autograd — the practitioner's
baseline for Algorithm 1.

    f(x) = s·Σ_j a_j·ReLU(w_j·x + b_j),   s = 1 ("standard", the paper's network)
                                          s = 1/m ("mean-field")
    θ⁰ = the symmetric initialisation (f ≡ 0), all of a, W, b trained on
    L(θ) = mean over a minibatch of (f(x_i) − r_i)²,   r_i = y_i − α − β·x_i   (as Algorithm 1)

Minibatches: each epoch walks the samples 0…n−1 of the source in chunks of ``chunk_size``
and cuts every chunk, shuffled by a generator seeded with (seed, epoch, chunk), into batches
of ``batch_size``; with n ≤ chunk_size that is a full reshuffle per epoch. The same samples
give the same batches whether they come from arrays (``fit``) or a ``DataStream``
(``fit_stream``, regenerated each epoch: memory O(chunk_size·d) for the training data).

Early stopping: the holdout loss is evaluated at the initialisation and every ``eval_every``
steps (default: once an epoch); training stops after ``patience`` evaluations without
improvement and the parameters with the best holdout loss (possibly the initialisation,
f ≡ 0, when training never helps) are restored.

Learning rates. One SGD step moves a pre-activation w_j·x by O(lr·‖x‖²) = O(lr·d) per unit
of output gradient. Standard parametrisation: the m neurons add up (no 1/m), so SGD needs
lr ∝ 1/(m·d); lr="auto" is 20/(m·d). Mean-field: every gradient carries the factor 1/m,
so SGD steps are taken with lr·m (the mean-field time scale: each neuron moves O(lr) per step
whatever m is); lr="auto" is 0.5/d. Adam divides by the gradient's scale and uses lr as
given in both (auto 10⁻²). The "auto" constants were tuned on paper_target(d = 10), m = 100,
n = 10⁴ (larger ones diverge on some seeds). A step whose loss is not finite stops training
(``diverged_``) and the best parameters so far are kept. ``weight_decay`` is added to the
gradient (torch's convention: ∇L + weight_decay·θ) in both parametrisations.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from replearn.data import DataStream
from replearn.learners.base import (
    ArraySource,
    check_arrays,
    check_count,
    linear_moments,
    resolve_dtype,
)
from replearn.network import TwoLayerReLU, check_width, symmetric_init

__all__ = ["FullTraining"]

OPTIMIZERS = ("sgd", "adam")
PARAMETRIZATIONS = ("standard", "mean-field")


def _positive(name: str, value, allow_zero: bool = False) -> float:
    ok = isinstance(value, int | float | np.floating) and not isinstance(value, bool)
    if ok and math.isfinite(value) and (value >= 0 if allow_zero else value > 0):
        return float(value)
    bound = ">= 0" if allow_zero else "> 0"
    raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


class FullTraining:
    """Both layers trained by autograd from the symmetric initialisation; sklearn-shaped.

    Parameters
    ----------
    width : m, even (the symmetric initialisation pairs neurons).
    optimizer : "sgd" (with optional ``momentum``) or "adam".
    lr : step size, or "auto" (see the module docstring for the scaling with m).
    epochs : passes over the n training samples; ``n_steps`` (if given) instead fixes the
        number of minibatch steps (epochs repeat as needed).
    batch_size : minibatch size.
    weight_decay : λ ≥ 0 added to the gradient (∇L + λθ).
    parametrization : "standard" (f = Σ_j …) or "mean-field" (f = (1/m)Σ_j …).
    patience : evaluations without a holdout improvement before stopping; None never stops
        early. Needs a holdout (``X_holdout``/``y_holdout``, or ``fit_stream``).
    eval_every : steps between holdout evaluations (None: once per epoch).
    preprocess : fit r = y − α − β·x, as Algorithm 1 (so the comparison is like for like).

    Fitted: W_, b_, a_ (trained parameters), network_ (f as a TwoLayerReLU, the 1/m of
    mean-field folded into its a), alpha_, beta_, history_ (step, epoch, train_loss — mean
    minibatch loss since the previous evaluation; at step 0, the loss of f ≡ 0 on the first
    chunk —, holdout_loss), best_step_, n_steps_,
    n_epochs_, stopped_early_, diverged_, lr_ (the lr used, "auto" resolved).
    """

    def __init__(
        self,
        width: int = 100,
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
        dtype: torch.dtype | str = torch.float32,
        device: str | torch.device = "cpu",
        chunk_size: int = 65_536,
        seed: int = 0,
    ):
        self.width = width
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

    # -- validation -----------------------------------------------------------------------
    def _validate(self) -> None:
        check_width(self.width)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.parametrization not in PARAMETRIZATIONS:
            raise ValueError(
                f"parametrization must be one of {PARAMETRIZATIONS}, got {self.parametrization!r}"
            )
        if self.lr != "auto":
            _positive("lr", self.lr)
        check_count("epochs", self.epochs)
        if self.n_steps is not None:
            check_count("n_steps", self.n_steps)
        check_count("batch_size", self.batch_size)
        _positive("weight_decay", self.weight_decay, allow_zero=True)
        momentum = _positive("momentum", self.momentum, allow_zero=True)
        if momentum >= 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if momentum > 0 and self.optimizer != "sgd":
            raise ValueError("momentum applies to optimizer='sgd' only")
        if self.patience is not None:
            check_count("patience", self.patience)
        if self.eval_every is not None:
            check_count("eval_every", self.eval_every)
        check_count("chunk_size", self.chunk_size)
        check_count("seed", self.seed, minimum=0)
        self._dtype = resolve_dtype(self.dtype)
        self._device = torch.device(self.device)

    # -- public API -------------------------------------------------------------------------
    def fit(self, X, y, X_holdout=None, y_holdout=None) -> FullTraining:
        """Train on in-memory data; early stopping on (X_holdout, y_holdout) when given."""
        self._validate()
        source = ArraySource(*check_arrays(X, y))
        holdout = None
        if X_holdout is not None or y_holdout is not None:
            if X_holdout is None or y_holdout is None:
                raise ValueError("give both X_holdout and y_holdout, or neither")
            holdout = check_arrays(X_holdout, y_holdout, d=source.d)
        return self._fit(source, len(source), holdout)

    def fit_stream(self, stream: DataStream, n: int, n_holdout: int = 100_000) -> FullTraining:
        """Train on samples 0…n−1 of a stream (regenerated each epoch); early stopping on
        n_holdout samples of its 'holdout' split (kept in memory: n_holdout × d)."""
        self._validate()
        if not isinstance(stream, DataStream):
            raise ValueError(f"stream must be a DataStream, got {type(stream).__name__}")
        n = check_count("n", n)
        n_holdout = check_count("n_holdout", n_holdout, minimum=0)
        holdout = stream.split("holdout").get(0, n_holdout) if n_holdout else None
        return self._fit(stream, n, holdout)

    def predict(self, X) -> torch.Tensor:
        """α + β·x + f(x), chunked; a tensor in the model's dtype/device."""
        if not hasattr(self, "network_"):
            raise ValueError("this FullTraining is not fitted yet: call fit or fit_stream first")
        X = torch.as_tensor(X)
        d = self.W_.shape[1]
        if X.ndim != 2 or X.shape[1] != d:
            raise ValueError(f"X must have shape (n, {d}), got {tuple(X.shape)}")
        X = X.to(device=self._device, dtype=self._dtype)
        with torch.no_grad():
            out = [
                self.alpha_ + chunk @ self.beta_ + self.network_(chunk)
                for chunk in X.split(self.chunk_size)
            ]
        return torch.cat(out) if out else X.new_zeros(0)

    # -- training -----------------------------------------------------------------------------
    def _resolved_lr(self, d: int) -> float:
        """lr="auto": Adam 10⁻²; SGD 20/(m·d) (standard) or 0.5/d (mean-field)."""
        if self.lr != "auto":
            return float(self.lr)
        if self.optimizer == "adam":
            return 1e-2
        return 20.0 / (self.width * d) if self.parametrization == "standard" else 0.5 / d

    def _fit(self, source, n: int, holdout) -> FullTraining:
        d = source.d
        dtype, device = self._dtype, self._device
        if self.preprocess:
            alpha, beta = linear_moments(source, n, 0, self.chunk_size, dtype, device)
        else:
            alpha = torch.zeros((), dtype=dtype, device=device)
            beta = torch.zeros(d, dtype=dtype, device=device)
        init = symmetric_init(self.width, d, self.seed, dtype, device)
        params = [t.clone().requires_grad_(True) for t in (init.W, init.b, init.a)]
        W, b, a = params
        scale = 1.0 / self.width if self.parametrization == "mean-field" else 1.0
        lr = self._resolved_lr(d)
        if self.optimizer == "sgd":
            step_lr = lr * self.width if self.parametrization == "mean-field" else lr
            opt = torch.optim.SGD(
                params, lr=step_lr, momentum=self.momentum, weight_decay=self.weight_decay
            )
        else:
            opt = torch.optim.Adam(params, lr=lr, weight_decay=self.weight_decay)

        def model(X: torch.Tensor) -> torch.Tensor:
            return (torch.relu(torch.addmm(b, X, W.T)) @ a) * scale

        if holdout is not None:
            Xh = holdout[0].to(device=device, dtype=dtype)
            rh = holdout[1].to(device=device, dtype=dtype) - alpha - Xh @ beta

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
        if holdout is not None:  # step 0: the initialisation f ≡ 0 is a candidate too
            X0, y0, *_ = next(iter(source.chunks(n, self.chunk_size)))
            X0 = X0.to(device=device, dtype=dtype)
            r0 = y0.to(device=device, dtype=dtype) - alpha - X0 @ beta
            history["step"].append(0)
            history["epoch"].append(0)
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
                best = (math.inf, [init.W, init.b, init.a], 0)
        if best[1] is not None:  # restore the parameters with the best holdout loss
            with torch.no_grad():
                for p, saved in zip(params, best[1]):
                    p.copy_(saved)
        self.alpha_, self.beta_ = alpha, beta
        self.W_, self.b_, self.a_ = (p.detach() for p in params)
        self.network_ = TwoLayerReLU(self.W_, self.b_, self.a_ * scale)
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

    # -- sklearn plumbing -----------------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict:
        return {k: getattr(self, k) for k in _PARAMS}

    def set_params(self, **params) -> FullTraining:
        for key, value in params.items():
            if key not in _PARAMS:
                raise ValueError(f"unknown parameter {key!r}; allowed: {', '.join(_PARAMS)}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{k}={getattr(self, k)!r}" for k in ("width", "optimizer", "lr", "parametrization")
        )
        return f"FullTraining({shown})"


_PARAMS = (
    "width", "optimizer", "lr", "epochs", "n_steps", "batch_size", "weight_decay", "momentum",
    "parametrization", "patience", "eval_every", "preprocess", "dtype", "device", "chunk_size",
    "seed",
)  # fmt: skip
