"""Online (one-pass) SGD on the first layer: each sample, or minibatch of B samples, is used
for one step (``repeats`` consecutive steps with ``repeats`` > 1) and never again.

The model f(x) = c·Σ_j a_j·σ(w_j·x), second layer fixed: a single neuron σ(w·x) (width 1,
the setting of the theory), a committee Σ_k σ(w_k·x), or the two-layer network with the
model options of ``replearn.network``. The steps (``learners.online_updates``):

    w_j ← w_j − η·G_j                                   (spherical=False)
    w_j ← (w_j − η·G_j^⊥)/‖w_j − η·G_j^⊥‖                  (spherical=True, Ben Arous et al.)

with G the gradient of the batch loss — square (1/B)Σ(f − y)² or correlation −(1/B)Σ y·f —
or of its smoothed version at radius λ (``smoothing``; Damian, Nichani, Ge & Lee 2023).

**Step sizes** (``lr="auto"``: η = ``lr_scale``·η(d, k, λ), k = ``information_exponent``):

    η = 1/d (k = 1),  1/(d·max(1, log d)) (k = 2),  d^{−k/2} (k ≥ 3)   (λ = 0)
    η = d^{−k/2}·λ^{2k−2}  (k ≥ 3, λ > 0; as for λ = 0 when k ≤ 2)

The λ = 0 schedule is Ben Arous, Gheissari & Jagannath (2021, JMLR 22(106), Theorem 1.3 and
its discussion: step δ/N with δ of order 1, 1/log N, N^{−(k−2)/2}), and it gives their sample
complexities d, d·log d, d^{k−1}. Why, in one line: from w·u ≈ d^{−1/2} the drift of
m = w·u is η·m^{k−1} while the martingale part grows as η·√t; the drift wins (and the
normalisation's −η²·d·m/2 stays below it) when η ≤ d^{−k/2}, and escaping then takes
t ≈ 1/(η·m₀^{k−2}) = d^{k−1}. With smoothing the drift at m ≈ d^{−1/2} becomes
η·m·(λ²/d)^{(k−2)/2}/λ^k, which with η = d^{−k/2}·λ^{2k−2} needs t ≈ d^{k−1}·λ^{−2k+4}
steps: d^{k/2} at λ = d^{1/4}, the rate of Damian et al. (2023, Theorem 1, up to logs).

**Repeats** (``repeats=2``): each batch is used for two consecutive steps. With B = 1 this is
the two-step variant of Arnaboldi, Dandi, Krzakala, Loureiro, Pesce & Stephan (2024, "Repetita
iuvant"; their code's "proxy_sam": ``GradientDescent(resample_every=2)``); with a minibatch it
is the batch reuse of Lee, Oko, Suzuki & Wu (2024), who use each minibatch in two consecutive
steps. (One parameter, since it is one mechanism: the second step's gradient sees the first
step's label-dependent move, a label transform in disguise.)

**Look-ahead** (``lookahead_lr=ρ``): the algorithm of Arnaboldi et al.'s figures, each sample
used twice — once for a look-ahead point, once for the step taken from w:

    w̃ = w − ρ·G(w),    w ← w − η·G(w̃)            (then the sphere, if spherical)

(arn4/largebatch-ss, giant_learning/gradient_descent.py, ``DisplacedSGD``: the displaced
gradient, one look-ahead per sample; the IdePHICS/Repetita-Iuvant figures run it as
"true_sam"). The look-ahead moves w·x by ρ·‖x‖²·∂ℓ/∂f ≈ ρ·d·(f − y), so ρ ∝ 1/d makes the
second gradient an O(1) non-linear function of y — the label transform that reaches the
generative exponent (their ρ = 0.1·p/d, η = 0.01·p/d for the ½-square loss; ours has no ½:
halve both). ``lr`` and ``lookahead_lr`` may be formulas in d (``replearn.formula``), e.g.
``"0.005/d"``.

**Replicas.** ``replicas`` = R independent runs go through the same tensor program: W is
(R, m, d), every step is a handful of batched products, the Gaussian samples of ``chunk_size``
samples per replica are drawn at once, and nothing leaves the device during the pass.
Replica r is the run with ``seed + r`` on the stream with seed ``stream.seed + r`` (on arrays,
every replica sees the same rows), so a batch of replicas gives, to rounding, the
trajectories of the same seeds run one by one — and since a stream's sample i does not depend
on how many are drawn at once, neither does the trajectory depend on ``chunk_size``.

**Weak recovery** is the event max_j |overlap(w_j)| ≥ ``threshold`` (overlap = u·w/‖w‖ for one
direction u, ‖U w‖/‖w‖ for r > 1), measured after every step: ``recovery_samples_`` holds,
per replica, the number of samples used when it first happened — ``inf`` (censored) when it
did not happen within the n samples of the fit.
"""

from __future__ import annotations

import contextlib
import copy
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from replearn import data
from replearn.activations import activation_spec, resolve_activation
from replearn.data import DataStream
from replearn.formula import evaluate_formula, formula_or
from replearn.learners.base import BaseLearner, TransferMixin
from replearn.learners.online_updates import (
    SmoothedPolynomial,
    batch_gram,
    factored_step,
    monte_carlo_smoothed_weights,
    online_weights,
    overlaps,
    polynomial_of,
    smoothed_weights,
    sphere_coordinates,
)
from replearn.learners.ridge_head import fit_ridge_head
from replearn.network import (
    TwoLayerNetwork,
    first_layer_spec,
    initial_network,
    normal_biases,
    output_scale_spec,
    resolve_output_scale,
    second_layer_spec,
)
from replearn.validation import (
    boolean,
    check_ridge_lambda,
    choice,
    device_name,
    dtype_name,
    integer_at_least,
    interval,
    number,
    optional,
    ridge_lambda,
    seed,
)

__all__ = ["OnlineSGD", "online_lr", "trace_steps", "RECOVERY_CENSORED", "TRACE_POINTS"]

RECOVERY_CENSORED = math.inf
"""``recovery_samples_`` of a replica that did not recover within the fit's n samples."""
SMOOTHING_SEED_TAG = 0x5EED_5A17
"""Monte Carlo smoothing draws of replica r: numpy generators seeded by (seed + r, this tag,
step block), so they depend neither on chunk_size nor on the number of replicas."""
SMOOTHING_STEP_BLOCK = 1024
"""Steps per Monte Carlo smoothing generator."""
INIT_SEED_TAG = 0x0_1A17
"""W⁰ of replica r comes from the seed SeedSequence(seed + r, this tag): never the stream of a
target drawn with the same integer seed (``initial_network(seed=s)`` and a target's U from
seed s would start at overlap 1)."""
RECORDED_POINTS = 256
"""Overlap records per fit with ``record_every="auto"`` (plus the start)."""
TRACE_POINTS = 48
"""Log-spaced steps of ``overlap_trace_`` (at most; plus the start): the trajectory m(t)
that reports draw over the online ODE."""


def trace_steps(steps: int, points: int = TRACE_POINTS) -> np.ndarray:
    """Steps 1 ≤ s ≤ ``steps`` of the log-spaced trace: ``points`` values of a geometric grid
    from 1 to ``steps``, rounded, duplicates dropped (the last step always included).

    Parameters
    ----------
    steps : int
        Steps of the pass.
    points : int
        Points of the geometric grid.

    Returns
    -------
    numpy.ndarray of int64

    Examples
    --------
    >>> trace_steps(1000, 4).tolist()
    [1, 10, 100, 1000]
    >>> trace_steps(3, 8).tolist()
    [1, 2, 3]
    """
    if steps < 1:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.round(np.geomspace(1, steps, points)).astype(np.int64))


def online_lr(d: int, information_exponent: int, smoothing: float = 0.0) -> float:
    """η(d, k, λ) of the module docstring (Ben Arous et al. 2021; Damian et al. 2023).

    Parameters
    ----------
    d : int
        Input dimension (≥ 2).
    information_exponent : int
        k ≥ 1.
    smoothing : float
        λ ≥ 0.

    Returns
    -------
    float

    Examples
    --------
    >>> online_lr(100, 1), round(online_lr(100, 2), 6), online_lr(100, 4)
    (0.01, 0.002171, 0.0001)
    >>> online_lr(10_000, 3, smoothing=10.0)   # d^{-3/2}·λ^4 = 1e-6·1e4
    0.01
    """
    k = information_exponent
    if k == 1:
        return 1.0 / d
    if k == 2:
        return 1.0 / (d * max(1.0, math.log(d)))  # (log d floored at 1: d ≤ 2 keeps η ≤ 1/d)
    return d ** (-k / 2) * (smoothing ** (2 * k - 2) if smoothing > 0 else 1.0)


def _smoothing_spec(value):
    """λ ≥ 0 (0: no smoothing) or "d^1/4" (λ = d^{1/4}, Damian et al.'s choice)."""
    return number(0.0, words=("d^1/4",))(value)


def _step_size(value, allowed: str):
    """A number > 0 or a formula in d; one ValueError line saying ``allowed`` otherwise."""

    def positive(x):
        try:
            return number(0.0, True)(x)
        except ValueError:
            raise ValueError(f"must be {allowed}, got {x!r}") from None

    return formula_or(value, positive, allowed, ("d",))


def _lr_spec(value):
    """η: "auto", a number > 0 or a formula in d (``replearn.formula``)."""
    if isinstance(value, str) and value == "auto":
        return value
    return _step_size(value, "'auto', a number > 0 or a formula in d such as '0.5/d'")


def _lookahead_lr_spec(value):
    """ρ: None, a number > 0 or a formula in d."""
    if value is None:
        return None
    return _step_size(value, "None, a number > 0 or a formula in d such as '0.05/d'")


def _positive_formula(name: str, text: str, d: int) -> float:
    """A step-size formula evaluated at d; one ValueError line unless it is > 0."""
    value = evaluate_formula(text, {"d": d})
    if value <= 0:
        raise ValueError(f"{name} = {text!r} must be > 0, got {value:g} at d={d}")
    return value


def _record_every_spec(value):
    """ "auto" or an integer ≥ 1 (steps between recorded overlaps)."""
    if isinstance(value, str) and value == "auto":
        return value
    try:
        return integer_at_least(1)(value)
    except ValueError:
        raise ValueError(f"must be 'auto' or an integer ≥ 1, got {value!r}") from None


def _directions_spec(value):
    """None (the stream's target's U) or an (r, d) array of directions."""
    if value is None:
        return None
    array = torch.as_tensor(value, dtype=torch.float64)
    if array.ndim != 2 or array.shape[0] < 1 or not bool(torch.isfinite(array).all()):
        raise ValueError("must be None or a finite (r, d) array of target directions")
    return value


class OnlineSGD(TransferMixin, BaseLearner):
    """One-pass SGD on the first layer of f(x) = c·Σ_j a_j σ(w_j·x), for R replicas at once.

    Parameters
    ----------
    width : int
        m ≥ 1 neurons (1: a single neuron, the theory's setting; K: a committee).
    activation : str, Activation or (σ, σ′)
        σ (``replearn.activations``); default ReLU.
    output_scale : float or {"1/sqrt(m)", "1/m"}
        c.
    first_layer : {"unit_rows", "gaussian", "orthogonal"} or array (m, d)
        W⁰ (``replearn.network.initial_network``); with ``spherical`` rows are normalised.
    second_layer : {"constant", "signs", "gaussian", "paper"} or array (m,)
        a, fixed during the pass ("constant": 1/√m, so 1 for a single neuron).
    directions : None or array (r, d)
        The target directions U for the overlaps (and ``first_layer="orthogonal"``,
        ``init_overlap``); None: the stream's ``target.U`` (none on arrays: no overlaps).
    loss : {"correlation", "square"}
        −(1/B)Σ y·f or (1/B)Σ (f − y)².
    spherical : bool
        Project each row back to the unit sphere after every step (Ben Arous et al. 2021).
    batch_size : int
        B ≥ 1 samples per step.
    repeats : int
        Consecutive steps on each batch (2: Repetita iuvant / Lee et al.'s batch reuse).
    lookahead_lr : None, float or str
        ρ > 0 of the look-ahead step (module docstring; Arnaboldi et al. 2024's algorithm),
        a number or a formula in d such as ``"0.05/d"``; None (default): no look-ahead. Needs
        ``batch_size=1``, ``repeats=1`` and no smoothing.
    lr : float, str or "auto"
        η > 0, a formula in d such as ``"0.005/d"`` (``replearn.formula``), or "auto":
        ``lr_scale``·``online_lr(d, information_exponent, λ)``.
    lr_scale : float
        Constant in front of the "auto" schedule.
    information_exponent : int
        k of the "auto" schedule.
    smoothing : float or "d^1/4"
        λ ≥ 0 (0: none); needs ``spherical``.
    smoothing_method : {"auto", "closed_form", "monte_carlo"}
        "auto": the closed form for a polynomial σ, Monte Carlo otherwise.
    smoothing_samples : int
        Draws per (sample, neuron) of the Monte Carlo smoothing.
    init_overlap : None or float in [0, 1]
        None: random rows (overlap ≈ d^{−1/2}); else each row starts at u·w = init_overlap
        (u = the first direction), the rest uniform on u^⊥.
    threshold : float in (0, 1]
        Weak recovery: max_j of the absolute overlap ≥ threshold.
    record_every : int or "auto"
        Steps between recorded overlaps ("auto": about 256 records per fit).
    stop_at_recovery : bool
        End the pass at the end of the first chunk after which every replica has recovered
        (the recovery times are the same; W and the predictor then saw fewer samples:
        ``n_used_``).
    replicas : int
        R independent runs in one batched program (replica r: seed + r, stream seed + r).
    head : {"none", "ridge"}
        "none": predict with the trained network itself; "ridge": new biases b ~ N(0, 1),
        then the ridge head on σ(W x + b) as in Algorithm 1 (replica 0's W, the fit's n
        samples, λ on the holdout).
    ridge_lambda : float or "auto"
        λ of the ridge head.
    preprocess : bool
        Subtract α + β·x before the ridge head (the head only; the online pass sees raw y).
    dtype : {"float32", "float64"}
    device : str or torch.device
    chunk_size : int
        Samples per replica drawn at once (memory R·chunk_size·d); keep it a multiple of the
        stream's 4096-sample block (a smaller chunk draws a block again for each piece).
    seed : int
        Seeds W⁰, a, the head's biases and Monte Carlo draws (replica r: seed + r).

    Attributes
    ----------
    W_ : tensor (m, d)
        The learned first layer of replica 0, one row per neuron.
    replica_W_ : tensor (R, m, d)
        Every replica's.
    initial_W_ : tensor (R, m, d)
        W⁰ of every replica.
    a_ : tensor (m,)
        The second layer (the fixed one, or the ridge head's).
    b_ : tensor (m,)
        Biases (0, or the head's new N(0, 1) biases).
    lr_ : float
        The η used.
    lookahead_lr_ : float or None
        The ρ used (None: no look-ahead).
    smoothing_ : float
        The λ used; ``smoothing_method_`` "closed_form", "monte_carlo" or None.
    recovery_samples_ : numpy.ndarray (R,)
        Samples used when the largest absolute overlap first reached ``threshold``; ``inf`` if never
        (censored at n). Absent without directions.
    recovered_ : numpy.ndarray of bool (R,)
    overlap_path_ : tensor (R, T, m)
        Overlaps of every neuron at ``path_samples_`` (signed for r = 1).
    path_samples_ : numpy.ndarray (T,)
        Samples used at each record (0: the start).
    overlap_trace_ : numpy.ndarray (R, S)
        Per replica, the overlap of its neuron with the largest absolute overlap (signed for
        r = 1) at ``trace_samples_``: the start and ≤ 48 log-spaced steps (``trace_steps``).
    trace_samples_ : numpy.ndarray (S,)
        Samples used at each trace point (0: the start).
    network_ : TwoLayerNetwork
        The predictor's network (replica 0).
    n_used_ : int
        Samples the pass used (n rounded down to whole batches, or fewer with
        ``stop_at_recovery``).
    n_features_in_, n_samples_ : int

    Examples
    --------
    >>> import torch, replearn as rl
    >>> target = rl.MultiIndexTarget.from_expression("He2(z1)/sqrt(2)", d=32, seed=0)
    >>> stream = rl.DataStream(target, seed=0)
    >>> model = rl.OnlineSGD(replicas=4, seed=0).fit_stream(stream, n=4_000)
    >>> model.W_.shape, model.replica_W_.shape
    (torch.Size([1, 32]), torch.Size([4, 1, 32]))
    >>> model.recovered_.tolist(), model.recovery_samples_.tolist()
    ([True, True, True, True], [209.0, 690.0, 236.0, 612.0])

    """

    _not_in_specs = frozenset({"directions"})  # the engine passes the run's target U
    reports_recovery = True  # recovery_samples_: a spec may use scaling.event "recovery"

    _parameter_checks = {
        "width": integer_at_least(1),
        "activation": activation_spec,
        "output_scale": output_scale_spec,
        "first_layer": first_layer_spec,
        "second_layer": second_layer_spec,
        "directions": _directions_spec,
        "loss": choice("correlation", "square"),
        "spherical": boolean,
        "batch_size": integer_at_least(1),
        "repeats": integer_at_least(1),
        "lookahead_lr": _lookahead_lr_spec,
        "lr": _lr_spec,
        "lr_scale": number(0.0, True),
        "information_exponent": integer_at_least(1),
        "smoothing": _smoothing_spec,
        "smoothing_method": choice("auto", "closed_form", "monte_carlo"),
        "smoothing_samples": integer_at_least(1),
        "init_overlap": optional(interval(0.0, 1.0, closed_high=True)),
        "threshold": interval(0.0, 1.0, closed_low=False, closed_high=True),
        "record_every": _record_every_spec,
        "stop_at_recovery": boolean,
        "replicas": integer_at_least(1),
        "head": choice("none", "ridge"),
        "ridge_lambda": ridge_lambda,
        "preprocess": boolean,
        "dtype": dtype_name,
        "device": device_name,
        "chunk_size": integer_at_least(1),
        "seed": seed,
    }

    def __init__(
        self,
        width: int = 1,
        activation="relu",
        output_scale=1.0,
        first_layer="unit_rows",
        second_layer="constant",
        directions=None,
        loss: str = "correlation",
        spherical: bool = True,
        batch_size: int = 1,
        repeats: int = 1,
        lookahead_lr: float | str | None = None,
        lr: float | str = "auto",
        lr_scale: float = 1.0,
        information_exponent: int = 2,
        smoothing: float | str = 0.0,
        smoothing_method: str = "auto",
        smoothing_samples: int = 16,
        init_overlap: float | None = None,
        threshold: float = 0.5,
        record_every: int | str = "auto",
        stop_at_recovery: bool = False,
        replicas: int = 1,
        head: str = "none",
        ridge_lambda: float | str = "auto",
        preprocess: bool = True,
        dtype: torch.dtype | str = "float32",
        device: str | torch.device = "cpu",
        chunk_size: int = 4096,
        seed: int = 0,
    ):
        self.width = width
        self.activation = activation
        self.output_scale = output_scale
        self.first_layer = first_layer
        self.second_layer = second_layer
        self.directions = directions
        self.loss = loss
        self.spherical = spherical
        self.batch_size = batch_size
        self.repeats = repeats
        self.lookahead_lr = lookahead_lr
        self.lr = lr
        self.lr_scale = lr_scale
        self.information_exponent = information_exponent
        self.smoothing = smoothing
        self.smoothing_method = smoothing_method
        self.smoothing_samples = smoothing_samples
        self.init_overlap = init_overlap
        self.threshold = threshold
        self.record_every = record_every
        self.stop_at_recovery = stop_at_recovery
        self.replicas = replicas
        self.head = head
        self.ridge_lambda = ridge_lambda
        self.preprocess = preprocess
        self.dtype = dtype
        self.device = device
        self.chunk_size = chunk_size
        self.seed = seed

    def _check_combination(self, values) -> None:
        if values["lookahead_lr"] is not None:
            for name, needed in (("batch_size", 1), ("repeats", 1), ("smoothing", 0.0)):
                if values[name] != needed:
                    raise ValueError(
                        f"lookahead_lr needs {name}={needed:g} (one look-ahead per sample, "
                        f"Arnaboldi et al.'s algorithm), got {values[name]!r}"
                    )
        if values["smoothing"] != 0.0 and not values["spherical"]:
            raise ValueError("smoothing needs spherical=True (w′ lives on the sphere around w)")
        if values["smoothing_method"] == "closed_form" and values["smoothing"] != 0.0:
            if polynomial_of(resolve_activation(values["activation"])) is None:
                raise ValueError(
                    "smoothing_method='closed_form' needs a polynomial activation ('linear', "
                    "'quadratic', 'hermite:k'): use 'monte_carlo' or 'auto'"
                )

    # -- the pass ----------------------------------------------------------------------------
    def _directions(self, source) -> torch.Tensor | None:
        if self.directions is not None:
            U = torch.as_tensor(self.directions, dtype=torch.float64)
        elif isinstance(source, DataStream):
            U = source.target.U
        else:
            return None
        if U.shape[1] != source.d:
            raise ValueError(f"directions must have d = {source.d} columns, got {U.shape[1]}")
        return U / U.norm(dim=1, keepdim=True)

    def _initial(self, d: int, U, activation, c: float):
        """(W⁰ (R, m, d), a (m,)) of the R replicas, W⁰ of replica r from seed + r."""
        rows, a = [], None
        for r in range(self.replicas):
            net = initial_network(
                self.width, d, _derived_seed(self.seed + r, INIT_SEED_TAG), self.first_layer, self.second_layer,
                activation, c, U, torch.float64, "cpu",
            )  # fmt: skip
            W = net.W
            if self.init_overlap is not None:
                if U is None:
                    raise ValueError("init_overlap needs directions (or a stream's target)")
                u = U[0]
                rest = W - (W @ u)[:, None] * u
                rest = rest / rest.norm(dim=1, keepdim=True)
                m0 = float(self.init_overlap)
                W = m0 * u + math.sqrt(1.0 - m0 * m0) * rest
            if self.spherical:
                W = W / W.norm(dim=1, keepdim=True)
            rows.append(W)
            a = net.a if a is None else a
        return torch.stack(rows), a

    def _replica_chunks(self, source, n: int, rows: int):
        """(X (R, k, d), y (R, k)) of samples start…start+k−1, k ≤ rows, for every replica.

        From a stream: replica r's samples come from the stream with seed ``stream.seed + r``;
        when the stream draws on the CPU (numpy's sampler, or torch's on a CPU stream) the next
        chunk's replicas are drawn in ``data.DRAW_THREADS`` background threads while the current
        chunk is used (numpy and torch release the GIL; each replica's blocks come from their
        own generators, so the threads change no number).
        """
        if not isinstance(source, DataStream):
            for X, y in source.chunks(n, rows):
                X = X.to(self._device, self._dtype)
                y = y.to(self._device, self._dtype)
                yield X.expand(self.replicas, *X.shape), y.expand(self.replicas, *y.shape)
            return
        streams = [source] + [
            source.with_(seed=source.seed + r, cache_bytes=0) for r in range(1, self.replicas)
        ]
        bounds = [(start, min(start + rows, n)) for start in range(0, n, rows)]
        threads = data.DRAW_THREADS if data.PREFETCH and data.drawn_on_cpu(source) else 0
        # two buffers (R, rows, d): replica r's samples are written into row r of one while the
        # other is in use, so no chunk is copied again to stack the replicas
        options = dict(dtype=source.dtype, device=source.device)
        buffers = [
            (torch.empty(self.replicas, min(rows, n), source.d, **options),
             torch.empty(self.replicas, min(rows, n), **options))
            for _ in range(2 if threads > 1 else 1)
        ]  # fmt: skip

        def fill(index: int, r: int):
            start, stop = bounds[index]
            X, y = buffers[index % len(buffers)]
            return streams[r].get(start, stop, out=(X[r, : stop - start], y[r, : stop - start]))

        def chunk(index: int):
            start, stop = bounds[index]
            X, y = buffers[index % len(buffers)]
            X, y = X[:, : stop - start], y[:, : stop - start]
            return X.to(self._device, self._dtype), y.to(self._device, self._dtype)

        if threads <= 1:
            for index in range(len(bounds)):
                for r in range(self.replicas):
                    fill(index, r)
                yield chunk(index)
            return
        with ThreadPoolExecutor(threads, thread_name_prefix="replearn-online") as pool:

            def submit(index: int):
                return [pool.submit(fill, index, r) for r in range(self.replicas)]

            pending = submit(0)
            for index in range(len(bounds)):
                for future in pending:
                    future.result()
                if index + 1 < len(bounds):
                    pending = submit(index + 1)  # into the other buffer
                yield chunk(index)

    def _fit(self, source, n: int, holdout, n_holdout: int):
        d, B = source.d, self.batch_size
        if n < B:
            raise ValueError(f"n must be at least batch_size = {B}, got {n}")
        activation = resolve_activation(self.activation)
        c = resolve_output_scale(self.output_scale, self.width)
        smoothing = d**0.25 if self.smoothing == "d^1/4" else float(self.smoothing)
        if smoothing and d < 3:
            raise ValueError("smoothing needs d ≥ 3 (z lives on the unit sphere of w^⊥)")
        U = self._directions(source)
        W, a = self._initial(d, U, activation, c)
        W = W.to(self._device, self._dtype)
        self.initial_W_ = W
        a = a.to(self._device, self._dtype)
        U_device = U.to(self._device, self._dtype) if U is not None else None
        lr = self.lr
        if lr == "auto":
            lr = self.lr_scale * online_lr(d, self.information_exponent, smoothing)
        elif isinstance(lr, str):
            lr = _positive_formula("lr", lr, d)
        lookahead = self.lookahead_lr
        if isinstance(lookahead, str):
            lookahead = _positive_formula("lookahead_lr", lookahead, d)
        gradient = self._gradient_function(activation, c, smoothing, d)
        steps = n // B
        record_every = (
            max(1, steps // RECORDED_POINTS) if self.record_every == "auto" else self.record_every
        )
        R = self.replicas
        recovery = torch.full((R,), math.inf, dtype=torch.float64, device=self._device)
        path, path_steps = [], [0]
        traced_steps = torch.from_numpy(trace_steps(steps))
        trace, trace_at = [], [0]
        if U_device is not None:
            path.append(overlaps(W, U_device))
            trace.append(_largest(path[0][None]))
            recovery = self._update_recovery(recovery, path[0][None], 0, B)  # the start
        rows = max(B, (self.chunk_size // B) * B)
        step = 0
        with _one_thread_on_cpu(self._device):  # small ops: fork/join costs more than it saves
            for X, y in self._replica_chunks(source, steps * B, rows):
                k = X.shape[1] // B
                X, y = X.reshape(R, k, B, d), y.reshape(R, k, B)
                tracked = U_device is not None
                W, projected, norms = self._chunk_steps(
                    W, X, y, a, gradient, lr, lookahead, step, U_device
                )
                if tracked:
                    current = projected if norms is None else projected / norms
                    current = current[..., 0] if U_device.shape[0] == 1 else current.norm(dim=-1)
                    recovery = self._update_recovery(recovery, current, (step + 1) * B, B)
                    done = torch.arange(step + 1, step + k + 1)
                    kept = ((done % record_every == 0) | (done == steps)).nonzero()[:, 0]
                    path.extend(current[kept].unbind(0))
                    path_steps.extend((done[kept]).tolist())
                    traced = torch.isin(done, traced_steps).nonzero()[:, 0]
                    if traced.numel():
                        trace.append(_largest(current[traced.to(current.device)]))
                        trace_at.extend(done[traced].tolist())
                if self.spherical:  # the steps keep ‖w‖ = 1 to rounding; reset it exactly
                    W = W / torch.linalg.vector_norm(W, dim=-1, keepdim=True)
                step += k
                if self.stop_at_recovery and tracked and bool(recovery.isfinite().all()):
                    break
        self.n_used_ = step * B
        self.lr_ = float(lr)
        self.lookahead_lr_ = None if lookahead is None else float(lookahead)
        self.smoothing_ = smoothing
        self.replica_W_ = W
        self.W_ = W[0].clone()
        if U_device is not None:
            self.recovery_samples_ = recovery.cpu().numpy()
            self.recovered_ = np.isfinite(self.recovery_samples_)
            self.overlap_path_ = torch.stack(path, dim=1)
            self.path_samples_ = np.asarray(path_steps, dtype=np.int64) * B
            self.overlap_trace_ = torch.cat(trace).T.double().cpu().numpy()
            self.trace_samples_ = np.asarray(trace_at, dtype=np.int64) * B
        self._fit_predictor(source, self.n_used_, a, c, activation, holdout, n_holdout)
        self.n_samples_ = n
        return self

    def _fit_memory_bytes(self, n: int, d: int, n_holdout: int = 0) -> tuple[int, str]:
        """The pass's chunks: two (R, rows, d + 1) buffers of samples (one filled while the other
        is used), the batches' Gram matrices (R·rows·B), the blocks the drawing threads hold
        (a float64 draw and its (X, f*, y) per thread), the overlap buffer, a few copies of W
        (R·m·d), Monte Carlo smoothing's draws, and the ridge head when there is one."""
        R, B, m = self.replicas, self.batch_size, self.width
        item = torch.empty((), dtype=self._dtype).element_size()
        rows = min(max(B, (self.chunk_size // B) * B), max(n, B))
        total = 2 * R * rows * (d + 1) * item  # the two chunk buffers (X and y)
        total += R * rows * B * item  # K = X·Xᵀ per batch
        total += data.DRAW_THREADS * data.BLOCK_SIZE * (d * 8 + (d + 2) * item)
        total += R * rows * m * item + 8 * R * m * d * item  # overlaps; W and its updates
        if self.smoothing != 0.0:  # Monte Carlo draws: numpy float64 and their copy
            total += SMOOTHING_STEP_BLOCK * self.smoothing_samples * R * B * m * (8 + item)
        what = (
            f"OnlineSGD with {R:,} replicas of width {m:,} at d = {d}: chunks of {rows:,} "
            "samples per replica, two at once"
        )
        if self.head == "ridge":
            head = super()._fit_memory_bytes(n, d, n_holdout)
            total += head[0]
            what += f", and {head[1]}"
        return total, what

    def _chunk_steps(self, W, X, y, a, gradient, lr: float, lookahead, step: int, U):
        """The steps on one chunk, X (R, k, B, d), y (R, k, B), from step ``step`` on
        (``lookahead``: ρ of the look-ahead step, or None).

        Returns W after them and, when U is given, the projections U·w_j after every step
        (k, R, m, r), one product per step into a buffer (overlaps, crossings and records
        are taken from it after the chunk), and for free rows their norms (k, R, m, 1).
        """
        k = X.shape[1]
        projected = norms = None
        if U is not None:
            projected = W.new_empty(k, X.shape[0], self.width, U.shape[0])
            norms = None if self.spherical else W.new_empty(k, X.shape[0], self.width, 1)
        gram = batch_gram(X) if self.spherical else None  # K = X·Xᵀ of every batch
        for i in range(k):
            Xb, yb = X[:, i], y[:, i]
            Kb = gram[:, i] if gram is not None else None
            for repeat in range(self.repeats):
                draw = (step + i) * self.repeats + repeat  # fresh smoothing draws every step
                weights, pre = gradient(W, a, Xb, yb, draw)
                if lookahead is not None:  # the gradient at w̃ = w − ρ·G(w), same sample
                    ahead = factored_step(W, Xb, weights, pre, lookahead, False)
                    weights, _ = gradient(ahead, a, Xb, yb, draw)  # κ̃; the step uses A = X·w
                W = factored_step(W, Xb, weights, pre, lr, self.spherical, Kb)
            if projected is not None:
                torch.matmul(W, U.T, out=projected[i])
                if norms is not None:
                    torch.linalg.vector_norm(W, dim=-1, keepdim=True, out=norms[i])
        return W, projected, norms

    def _update_recovery(self, recovery, current, first_samples: int, batch_size: int):
        """First sample count at which max_j |overlap_j| ≥ threshold, per replica: ``current``
        (k, R, m) holds the overlaps after first_samples, first_samples + B, … samples."""
        reached = current.abs().amax(dim=-1) >= self.threshold  # (k, R)
        first = reached.to(torch.int8).argmax(dim=0)  # the first record that reached it
        samples = (first_samples + first * batch_size).to(recovery.dtype)
        return torch.where(reached.any(dim=0) & recovery.isinf(), samples, recovery)

    def _gradient_function(self, activation, c: float, smoothing: float, d: int):
        """(W, a, X, y, step) ↦ the step's factored gradient (κ, A) (``online_updates``), for the
        chosen loss and smoothing."""
        loss = self.loss
        self.smoothing_method_ = None
        if smoothing == 0.0:
            return lambda W, a, X, y, step: online_weights(W, a, c, activation, X, y, loss)
        monomial = polynomial_of(activation)
        method = self.smoothing_method
        if method == "auto":
            method = "closed_form" if monomial is not None else "monte_carlo"
        self.smoothing_method_ = method
        if method == "closed_form":
            sigma = SmoothedPolynomial.build(monomial, smoothing, d)
            squared = None
            if loss == "square":
                squared = SmoothedPolynomial.build(
                    list(np.convolve(monomial, monomial)), smoothing, d
                )
            return lambda W, a, X, y, step: smoothed_weights(W, a, c, sigma, squared, X, y, loss)
        draws = _SphereDraws(
            self.seed, self.replicas, self.smoothing_samples, self.width, d,
            self._device, self._dtype,
        )  # fmt: skip

        def monte_carlo(W, a, X, y, step):
            t = draws.at(step, X.shape[1])
            return monte_carlo_smoothed_weights(W, a, c, activation, smoothing, t, X, y, loss)

        return monte_carlo

    # -- the predictor -----------------------------------------------------------------------
    def _fit_predictor(self, source, n, a, c, activation, holdout, n_holdout) -> None:
        zero_b = torch.zeros(self.width, dtype=self._dtype, device=self._device)
        if self.head == "none":
            self.alpha_ = torch.zeros((), dtype=self._dtype, device=self._device)
            self.beta_ = torch.zeros(source.d, dtype=self._dtype, device=self._device)
            self.a_, self.b_ = a, zero_b
            self.network_ = TwoLayerNetwork(self.W_, zero_b, a, activation, c)
            return
        self.b_ = normal_biases(self.width, self.seed, self._dtype, self._device)
        self._fit_head(source, n, holdout, n_holdout)

    def _fit_head(self, source, n, holdout, n_holdout) -> None:
        """Algorithm 1's steps 3–5 on the learned W: the ridge head on σ(W x + b)."""
        activation = resolve_activation(self.activation)
        alpha, beta = self._linear_part(source, n)
        network = TwoLayerNetwork(self.W_, self.b_, torch.zeros_like(self.b_), activation, 1.0)
        head, _ = fit_ridge_head(
            network.features, self.width, source, n, 0, alpha, beta,
            check_ridge_lambda(self.ridge_lambda), 4096, self._dtype, self._device,
            holdout, n_holdout,
        )  # fmt: skip
        self.alpha_, self.beta_ = alpha, beta
        self.a_ = head.coefficients.to(self._dtype)
        self._store_lambda(head)
        self.network_ = TwoLayerNetwork(self.W_, self.b_, self.a_, activation, 1.0)

    def _predict_rows(self) -> int:
        return 4096

    def _predict_chunk(self, X: torch.Tensor) -> torch.Tensor:
        """α + β·x + c·Σ_j a_j σ(w_j·x + b_j)."""
        return self._linear(X) + self.network_(X)

    def _transferred(self, source, n, holdout, n_holdout):
        if self.head != "ridge":
            raise ValueError("transfer refits the ridge head: fit with head='ridge'")
        if source.d != self.W_.shape[1]:
            raise ValueError(
                f"transfer data must have d={self.W_.shape[1]} columns, got {source.d}"
            )
        new = copy.copy(self)
        new._fit_head(source, n, holdout, n_holdout)
        new.n_transfer_samples_ = n
        return new


@contextlib.contextmanager
def _one_thread_on_cpu(device: torch.device):
    """The pass on one torch thread on the CPU, the previous count restored after.

    A step's ops touch R·m·d numbers (64·1·1024 in the benchmark): OpenMP's fork/join and the
    wake-ups of its sleeping threads cost more than splitting saves, and the threads that draw
    the next chunk need the other cores (docs/performance.md). It also makes the trajectory
    independent of the machine's thread count. (torch's thread count is per process: other
    threads' torch ops run on one thread meanwhile.)
    """
    if device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _largest(current: torch.Tensor) -> torch.Tensor:
    """(k, R) from overlaps (k, R, m): each replica's neuron of largest absolute overlap."""
    index = current.abs().argmax(dim=-1, keepdim=True)
    return current.gather(-1, index)[..., 0]


def _derived_seed(seed: int, tag: int) -> int:
    """A 63-bit seed from SeedSequence(seed, tag)."""
    words = np.random.SeedSequence([int(seed), tag]).generate_state(2, np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


class _SphereDraws:
    """The Monte Carlo smoothing's sphere coordinates t, (S, R, B, m) per step, drawn per
    block of SMOOTHING_STEP_BLOCK steps from numpy generators seeded by (seed + r, tag, block)."""

    def __init__(self, seed, replicas, samples, width, d, device="cpu", dtype=torch.float64):
        self.seed, self.replicas, self.samples, self.width, self.d = (
            seed, replicas, samples, width, d,
        )  # fmt: skip
        self.device, self.dtype = device, dtype
        self._block, self._values = -1, None

    def at(self, step: int, batch: int) -> torch.Tensor:
        block = step // SMOOTHING_STEP_BLOCK
        if block != self._block:
            shape = (SMOOTHING_STEP_BLOCK, self.samples, batch, self.width)
            per_replica = [
                sphere_coordinates(
                    np.random.default_rng([self.seed + r, SMOOTHING_SEED_TAG, block]), shape, self.d
                )
                for r in range(self.replicas)
            ]
            # (block steps, S, R, B, m)
            values = torch.from_numpy(np.stack(per_replica, axis=2))
            self._values = values.to(self.device, self.dtype)  # one copy per block
            self._block = block
        return self._values[step - block * SMOOTHING_STEP_BLOCK]
