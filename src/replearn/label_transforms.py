"""Label transforms T for Algorithm 1's first step: the step runs on T(y), the head on y.

Built-in transforms (``resolve_label_transform(spec)``)::

    None, "identity"   T(y) = y                         (the paper)
    "square"           T(y) = y² − E[y²]
    "abs"              T(y) = |y|
    "sign"             T(y) = sign(y)                    (sign(0) = 0)
    "hermite:k"        T(y) = He_k((y − μ)/σ),  k ≥ 1,  μ = E[y], σ² = Var(y)
    callable           T(y) = fn(y), fn a torch function of a 1-D label tensor

E[y²], μ and σ are *empirical* label statistics of the step's samples (``LabelStatistics``,
one streamed pass over the labels, accumulated in float64); ``replearn.theory`` uses the
population values (E[y] = E[f*], Var y = Var f* + ς²), which they converge to at rate 1/√n.
When T is called on a tensor without statistics it uses that tensor's own statistics — right
for a whole in-memory data set, wrong for one chunk of a stream (pass the statistics then).

Where T enters Algorithm 1. With t_i = T(y_i), the step's labels are

    s_i = (t_i − m_T − β_T·x_i) / σ_s,   m_T = mean_i t_i,  β_T = mean_i t_i·x_i,
    σ_s² = mean_i (t_i − m_T − β_T·x_i)²                       (empirical, exact)

and w_j¹ = 2·η₁·a_j·mean_i(s_i·x_i·1[w_j⁰·x_i ≥ 0]) as before; α = mean y, β = mean y·x and
the head are fitted on the raw y. Why this order:

- T acts on the raw labels y, not on y − α − β·x: the transform must see the function of the
  latent variables that y is (y = g(Ux) + ε); subtracting β·x first would mix every
  coordinate of x into the argument of T and destroy the multi-index structure that T is
  meant to exploit (e.g. (y − β·x)² has a Hessian along ββᵀ).
- The degree-0 and degree-1 parts of T(y) are then removed for the same reason the paper
  removes α, β from y: the ReLU step's population gradient is E[s·x·1[w·x ≥ 0]], whose
  leading term is −2a_j·E[∇² E[s|x]]·w_j/√(2π) only when s has no linear part (a linear part
  adds a rank-one term along β_T that is not in the Hessian); the constant part adds
  m_T·E[x·1[w·x ≥ 0]] = m_T·w/(√(2π)‖w‖), a multiple of w⁰ that says nothing about S*.
- Scaling to unit mean square makes s a unit-scale label for every T, so η₁ = √d keeps its
  meaning (pre-activations of the same order as for the paper's unit-variance targets):
  T(y) has another scale than y (y² or He_k grow like y^k, sign is bounded).

So the step follows H_T/σ_s with H_T = E[∇²_x E[T(y)|x]] (``replearn.theory``).
For T = None nothing changes: the step labels are the paper's y − α − β·x, not rescaled.

Streaming, in the learner's passes (``StepLabelMoments``)::

    pass 1: label statistics Σ1, Σy, Σy² (plus Σt, Σt², Σt·x, Σx, Σx·xᵀ in the same pass
            when T needs no statistics: identity, abs, sign, callables)
    pass 1b (square, hermite:k only, since their shape depends on E y², μ, σ):
            Σt, Σt², Σt·x, Σx, Σx·xᵀ with T bound to the pass-1 statistics
    step pass: s = step_labels(X, y, moments) chunk by chunk.

``step_label_moments(chunks, transform)`` runs these passes on any re-iterable (X, y) chunks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

import torch

from replearn import limits
from replearn.hermite import he
from replearn.limits import excerpt

__all__ = [
    "LabelStatistics",
    "LabelTransform",
    "StepLabelMoments",
    "resolve_label_transform",
    "step_label_moments",
    "step_labels",
    "BUILT_IN_TRANSFORMS",
    "label_transform_spec",
]

BUILT_IN_TRANSFORMS = ("identity", "square", "abs", "sign", "hermite:k")
_HERMITE = re.compile(r"^hermite:(.*)$")


@dataclass(frozen=True)
class LabelStatistics:
    """Label mean μ and standard deviation σ (σ > 0), empirical or population.

    Parameters
    ----------
    mean : float
        μ.
    std : float
        σ.

    Examples
    --------
    >>> import torch
    >>> statistics = LabelStatistics.of(torch.tensor([1.0, 3.0]))   # 1/n variance
    >>> statistics, statistics.second_moment
    (LabelStatistics(mean=2.0, std=1.0), 5.0)
    """

    mean: float
    std: float

    @property
    def second_moment(self) -> float:
        """E[y²] = σ² + μ²."""
        return self.std**2 + self.mean**2

    @classmethod
    def of(cls, y: torch.Tensor) -> LabelStatistics:
        """The (biased, 1/n) empirical statistics of a label tensor, in float64."""
        y = y.to(torch.float64)
        mean = float(y.mean())
        return cls(mean, float((y - mean).pow(2).mean().sqrt()))

    @classmethod
    def from_sums(cls, count: int, total: float, total_square: float) -> LabelStatistics:
        """From Σ1, Σy, Σy² (float64): μ = Σy/n, σ² = Σy²/n − μ² (clipped at 0)."""
        mean = total / count
        return cls(mean, math.sqrt(max(total_square / count - mean * mean, 0.0)))


class LabelTransform:
    """A label transform T: ``T(y, statistics=None)`` on a 1-D tensor, output checked.

    Made by :func:`resolve_label_transform`; the constructor is for new built-ins.

    Parameters
    ----------
    name : str
        The spec it is made from.
    function : callable
        ``function(y, statistics)`` → T(y), a tensor of y's shape.
    needs_statistics : bool
        T's shape depends on label statistics (they default to y's own).
    polynomial_degree : int, optional
        q when T is a polynomial of degree q (the theory then integrates exactly).
    breakpoints : tuple of float
        The y where T is not smooth.
    gaussian_smoothed : callable, optional
        ``(g, ς) → (E_ε T(g + ε), E_ε T(g + ε)²)`` for ε ~ N(0, ς²), in closed form.

    Attributes
    ----------
    name : str
        The spec it was made from ("square", "hermite:3", the callable's name).
    needs_statistics : bool
        T's shape depends on label statistics (square, hermite:k).
    polynomial_degree : int or None
        q when T is a polynomial of degree q in y, else None.
    breakpoints : tuple of float
        The y where T is not smooth (abs, sign: (0.0,)), for exact quadrature.

    Examples
    --------
    >>> import torch
    >>> square = resolve_label_transform("square")
    >>> square.needs_statistics, square.polynomial_degree
    (True, 2)
    >>> square(torch.tensor([-1.0, 0.0, 2.0]), LabelStatistics(mean=0.0, std=1.0))  # y² − E y²
    tensor([ 0., -1.,  3.])
    """

    def __init__(
        self,
        name: str,
        function: Callable[[torch.Tensor, LabelStatistics | None], torch.Tensor],
        needs_statistics: bool = False,
        polynomial_degree: int | None = None,
        breakpoints: tuple[float, ...] = (),
        gaussian_smoothed: Callable | None = None,
    ):
        self.name = name
        self._function = function
        self.needs_statistics = needs_statistics
        self.polynomial_degree = polynomial_degree
        self.breakpoints = breakpoints
        self._gaussian_smoothed = gaussian_smoothed

    @property
    def is_identity(self) -> bool:
        return self.name == "identity"

    def __call__(self, y: torch.Tensor, statistics: LabelStatistics | None = None) -> torch.Tensor:
        """T(y) for a 1-D label tensor; statistics default to y's own (in-memory use)."""
        if not isinstance(y, torch.Tensor) or y.ndim != 1:
            raise ValueError(
                f"label_transform {self.name!r} takes a 1-D label tensor, got "
                f"{type(y).__name__}{tuple(y.shape) if isinstance(y, torch.Tensor) else ''}"
            )
        if self.needs_statistics and statistics is None:
            statistics = LabelStatistics.of(y)
        t = self._function(y, statistics)
        return check_transformed(self.name, y, t)

    def gaussian_smoothed(self, g: torch.Tensor, noise_std: float):
        """(E_ε T(g + ε), E_ε T(g + ε)²) for ε ~ N(0, ς²), ς > 0, in closed form; None if T
        has none (used by ``replearn.theory``: it makes E[T(y)|x] smooth in x)."""
        if self._gaussian_smoothed is None:
            return None
        return self._gaussian_smoothed(g, noise_std)

    def __repr__(self) -> str:
        return f"LabelTransform({self.name!r})"


def check_transformed(name: str, y: torch.Tensor, t) -> torch.Tensor:
    """T(y) must be a floating tensor of y's shape with finite values (one-line errors)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(
            f"label_transform {name!r} must return a torch.Tensor, got {type(t).__name__}"
        )
    if t.shape != y.shape:
        raise ValueError(
            f"label_transform {name!r} must return shape {tuple(y.shape)} (one value per "
            f"label), got {tuple(t.shape)}"
        )
    if not t.is_floating_point():
        raise TypeError(f"label_transform {name!r} must return a floating tensor, got {t.dtype}")
    if t.requires_grad:
        raise TypeError(
            f"label_transform {name!r} returned a tensor that requires grad (it uses a tensor "
            "with requires_grad=True); return labels without a graph: compute them under "
            "torch.no_grad() or .detach() the result"
        )
    if not torch.isfinite(t).all():
        bad = int((~torch.isfinite(t)).sum())
        raise ValueError(f"label_transform {name!r} returned {bad} non-finite values (NaN or inf)")
    return t


# -- the built-in transforms -------------------------------------------------------------------
def _identity(y, statistics):
    return y


def _square(y, statistics):
    center = statistics.second_moment if statistics is not None else float(y.pow(2).mean())
    return y * y - center


def _abs(y, statistics):
    return y.abs()


def _sign(y, statistics):
    return torch.sign(y)


def _abs_smoothed(g: torch.Tensor, s: float) -> tuple[torch.Tensor, torch.Tensor]:
    """E|g + ε| = s·√(2/π)·exp(−g²/2s²) + g·erf(g/(s√2)) and E|g + ε|² = g² + s², ε ~ N(0, s²)."""
    mean = s * math.sqrt(2 / math.pi) * torch.exp(-(g * g) / (2 * s * s)) + g * torch.erf(
        g / (s * math.sqrt(2))
    )
    return mean, g * g + s * s


def _sign_smoothed(g: torch.Tensor, s: float) -> tuple[torch.Tensor, torch.Tensor]:
    """E sign(g + ε) = erf(g/(s√2)) and E sign(g + ε)² = 1, ε ~ N(0, s²)."""
    return torch.erf(g / (s * math.sqrt(2))), torch.ones_like(g)


def _hermite(k: int, y, statistics):
    std = statistics.std if statistics.std > 0 else 1.0
    return he(k, (y - statistics.mean) / std)


def _user(function: Callable, y, statistics):
    """A user's T sees a copy of the labels: a T that works in place (``t.abs_()``,
    ``t.add_(1)``) must not change the labels the head is fitted on, nor the caller's y."""
    return function(y.detach().clone())


def resolve_label_transform(spec) -> LabelTransform:
    """None / "identity" / "square" / "abs" / "sign" / "hermite:k" / callable → LabelTransform.

    A callable is checked now on a probe tensor (and at every call): it must return a
    floating tensor of the input's shape with finite values.

    Parameters
    ----------
    spec : None, str, callable or LabelTransform
        None or ``"identity"`` (T(y) = y), ``"square"`` (y² − E[y²]), ``"abs"``, ``"sign"``,
        ``"hermite:k"`` (He_k((y − μ)/σ), k ≥ 1), a torch function of a 1-D label tensor,
        or a ``LabelTransform`` (returned as it is).

    Returns
    -------
    LabelTransform

    Raises
    ------
    ValueError
        An unknown name, or a callable whose output is not a finite tensor of y's shape.
    TypeError
        Anything else.

    Examples
    --------
    >>> import torch
    >>> resolve_label_transform(None), resolve_label_transform("hermite:3")
    (LabelTransform('identity'), LabelTransform('hermite:3'))
    >>> resolve_label_transform(torch.tanh)
    LabelTransform('tanh')
    >>> resolve_label_transform("cube")
    Traceback (most recent call last):
    ...
    ValueError: label_transform must be None, one of ('identity', 'square', 'abs', 'sign', 'hermite:k') or a callable, got 'cube'
    """
    if isinstance(spec, LabelTransform):
        return spec
    if spec is None or spec == "identity":
        return LabelTransform("identity", _identity, polynomial_degree=1)
    if isinstance(spec, str):
        if spec == "square":
            return LabelTransform("square", _square, needs_statistics=True, polynomial_degree=2)
        if spec == "abs":
            return LabelTransform("abs", _abs, breakpoints=(0.0,), gaussian_smoothed=_abs_smoothed)
        if spec == "sign":
            return LabelTransform(
                "sign", _sign, breakpoints=(0.0,), gaussian_smoothed=_sign_smoothed
            )
        match = _HERMITE.match(spec)
        if match:
            k = match.group(1)
            if not (k.isascii() and k.isdigit()) or int(k[:12]) < 1:
                raise ValueError(
                    f"label_transform 'hermite:k' needs an integer k >= 1, got {excerpt(spec)}"
                )
            bound = limits.get("transform_degree")
            if len(k) > 12 or int(k) > bound:  # He_k is a k-term recurrence on every label
                raise limits.LimitError(
                    f"label_transform 'hermite:k': k = {excerpt(k, 20)} exceeds the limit "
                    f"transform_degree = {bound}; "
                    + limits.LIMITS["transform_degree"].how_to_raise()
                )
            k = int(k)
            return LabelTransform(
                f"hermite:{k}", partial(_hermite, k), needs_statistics=True, polynomial_degree=k
            )
        raise ValueError(
            f"label_transform must be None, one of {BUILT_IN_TRANSFORMS} or a callable, got {spec!r}"
        )
    if callable(spec):
        name = getattr(spec, "__name__", type(spec).__name__)
        transform = LabelTransform(name, partial(_user, spec))  # partial: picklable
        transform(torch.linspace(-3.0, 3.0, 13, dtype=torch.float64))  # fail now, not mid-fit
        return transform
    raise TypeError(
        f"label_transform must be None, a string {BUILT_IN_TRANSFORMS} or a callable, "
        f"got {type(spec).__name__}"
    )


def label_transform_spec(value):
    """A learner's parameter check: ``value`` must resolve (``resolve_label_transform``).

    Returns ``value`` itself (a name, None or the callable, so parameters stay plain) and
    raises one-line ``ValueError`` "must be …, got …" (the learner prefixes the name).
    """
    try:
        resolve_label_transform(value)
    except (ValueError, TypeError) as error:
        raise ValueError(str(error).removeprefix("label_transform ")) from None
    return value


# -- the step's labels, streamed -----------------------------------------------------------------
@dataclass
class StepLabelMoments:
    """Float64 sums that define the step labels s = (t − m_T − β_T·x)/σ_s, t = T(y).

    Accumulate with ``add_labels`` (statistics of y) and ``add_transformed`` (moments of t,
    with T bound to ``statistics`` when it needs them), then ``finish()``.
    """

    transform: LabelTransform
    label_count: int = 0
    label_sum: float = 0.0
    label_square_sum: float = 0.0
    count: int = 0
    t_sum: float = 0.0
    t_square_sum: float = 0.0
    t_x_sum: torch.Tensor | None = None  # Σ t_i·x_i, (d,)
    x_sum: torch.Tensor | None = None  # Σ x_i, (d,)
    x_gram: torch.Tensor | None = None  # Σ x_i x_iᵀ, (d, d)
    statistics: LabelStatistics | None = None
    # after finish(): the step-label constants
    t_mean: float = field(default=math.nan)
    t_beta: torch.Tensor | None = None
    step_std: float = field(default=math.nan)

    def add_labels(self, y: torch.Tensor) -> None:
        """Σ1, Σy, Σy² of one chunk of raw labels."""
        y = y.to(torch.float64)
        self.label_count += y.shape[0]
        self.label_sum += float(y.sum())
        self.label_square_sum += float((y * y).sum())

    def label_statistics(self) -> LabelStatistics:
        """The empirical μ, σ of the labels added so far (fixes ``statistics``)."""
        if self.label_count == 0:
            raise ValueError("no labels accumulated: call add_labels first")
        self.statistics = LabelStatistics.from_sums(
            self.label_count, self.label_sum, self.label_square_sum
        )
        return self.statistics

    def add_transformed(self, X: torch.Tensor, y: torch.Tensor) -> None:
        """Σt, Σt², Σt·x, Σx, Σx·xᵀ of one chunk, t = T(y) (bound to ``statistics``)."""
        if self.transform.needs_statistics and self.statistics is None:
            raise ValueError(
                f"label_transform {self.transform.name!r} needs the label statistics first "
                "(add_labels over all samples, then label_statistics())"
            )
        X64 = X.to(torch.float64)
        t = self.transform(y, self.statistics).to(torch.float64)
        if self.t_x_sum is None:
            d = X.shape[1]
            self.t_x_sum = X64.new_zeros(d)
            self.x_sum = X64.new_zeros(d)
            self.x_gram = X64.new_zeros(d, d)
        self.count += t.shape[0]
        self.t_sum += float(t.sum())
        self.t_square_sum += float((t * t).sum())
        self.t_x_sum += t @ X64
        self.x_sum += X64.sum(0)
        self.x_gram += X64.T @ X64

    def finish(self) -> StepLabelMoments:
        """m_T = Σt/n, β_T = Σt·x/n and the exact empirical variance σ_s² of t − m_T − β_T·x:

        σ_s² = mean t² − m_T² − 2‖β_T‖² + 2·m_T·β_T·x̄ + β_Tᵀ (Σx·xᵀ/n) β_T.
        """
        if self.count == 0:
            raise ValueError("no transformed labels accumulated: call add_transformed first")
        n = self.count
        self.t_mean = self.t_sum / n
        beta = self.t_x_sum / n
        variance = (
            self.t_square_sum / n
            - self.t_mean**2
            - 2 * float(beta @ beta)
            + 2 * self.t_mean * float(beta @ self.x_sum) / n
            + float(beta @ (self.x_gram @ beta)) / n
        )
        t_variance = self.t_square_sum / n - self.t_mean**2
        if not (t_variance > 1e-12 * self.t_square_sum / n and variance > 0):
            raise ValueError(
                f"label_transform {self.transform.name!r}: T(y) is constant on these samples "
                "(the step would have no labels)"
            )
        self.t_beta = beta
        self.step_std = math.sqrt(variance)
        return self


def step_labels(X: torch.Tensor, y: torch.Tensor, moments: StepLabelMoments) -> torch.Tensor:
    """s = (T(y) − m_T − β_T·x)/σ_s for one chunk, in X's dtype (moments from ``finish``).

    Parameters
    ----------
    X : torch.Tensor, shape (n, d)
        The chunk's inputs.
    y : torch.Tensor, shape (n,)
        Its raw labels.
    moments : StepLabelMoments
        Finished (:func:`step_label_moments`), over all the step's samples.

    Returns
    -------
    torch.Tensor
        (n,): the labels the first step averages.
    """
    if moments.t_beta is None:
        raise ValueError("step_labels needs finished moments (StepLabelMoments.finish())")
    t = moments.transform(y, moments.statistics).to(torch.float64)
    s = (t - moments.t_mean - X.to(torch.float64) @ moments.t_beta) / moments.step_std
    return s.to(X.dtype)


def step_label_moments(
    chunks: Callable[[], Iterable[tuple[torch.Tensor, ...]]], transform
) -> StepLabelMoments:
    """All the step-label constants from a re-iterable chunk source, in one or two passes.

    ``chunks()`` must yield (X, y, …) chunks of the step's samples, the same ones each time
    (e.g. ``lambda: stream.chunks(n, chunk_size)``). One pass when T needs no label
    statistics, two otherwise (statistics, then moments of T(y)).

    Parameters
    ----------
    chunks : callable
        No arguments → an iterable of (X, y, …) chunks; called once or twice.
    transform : str, callable, LabelTransform or None
        T, as :func:`resolve_label_transform` accepts.

    Returns
    -------
    StepLabelMoments
        Finished: ``statistics``, ``t_mean`` (m_T), ``t_beta`` (β_T), ``step_std`` (σ_s).

    Examples
    --------
    The step labels of a streamed data set have mean square 1 over the step's samples:

    >>> import replearn as rl
    >>> stream = rl.DataStream(rl.paper_transfer_target(d=5), noise=0.5, seed=0)
    >>> moments = step_label_moments(lambda: stream.chunks(4096, chunk_size=1024), "square")
    >>> X, y = stream.get(0, 4096)
    >>> s = step_labels(X, y, moments)
    >>> s.shape, round(float((s.double() ** 2).mean()), 4)
    (torch.Size([4096]), 1.0)
    """
    transform = resolve_label_transform(transform)
    moments = StepLabelMoments(transform)
    if transform.needs_statistics:
        for _X, y, *_ in chunks():
            moments.add_labels(y)
        moments.label_statistics()
        for X, y, *_ in chunks():
            moments.add_transformed(X, y)
    else:
        for X, y, *_ in chunks():
            moments.add_labels(y)
            moments.add_transformed(X, y)
        moments.label_statistics()
    return moments.finish()
