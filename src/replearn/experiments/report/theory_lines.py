r"""Which theory line each report figure draws, when, and its values (the one owner of the rules).

Every figure of a report, and the prediction it carries:

=============================== ==================================================================
figure (module)                 theory line (dashed or dotted, grey, labelled with its source)
=============================== ==================================================================
risk vs log_d n                 always: the zero predictor (E f*²); for a target with E f*² > 0:
(``figures.figure_risk_vs_n``)  the best degree-≤k predictors' risks, Theorem 1's n = d²κ²r and
                                the kernel staircase (Damian, Lee & Soltanolkotabi 2022).
                                Per method line, when its runs are one step in the proportional
                                setting (:func:`one_step_settings`): the asymptotic test error of
                                Cui et al. 2024 at the run's d (finite d) and at d → ∞
                                (:func:`one_step_overlay`).
transfer (Fig. 2 form)          the zero predictor; and when the transfer target is the pretraining
(``figures.figure_transfer``)   target, a ``one_step`` run in Cui et al.'s model (any ``data``: the
                                head is refitted on N fresh samples) gets the one-step asymptotics
                                at α₀ = n_step/d, α = N/d over each line (:func:`transfer_overlay`).
alignment vs log_d n            single-index targets: n = α_c·d, the weak-recovery threshold, and
(``figure_alignment_vs_n``)     the optimal spectral estimator's threshold where it differs
                                (:func:`recovery_lines`).
overlap m(t) of online SGD      ``online_sgd`` runs that carry an ``overlap_trace`` and satisfy
(``figure_overlap_trajectory``) :func:`online_ode_settings`: the ODE of Ben Arous, Gheissari &
                                Jagannath 2021 (``theory.online_ode``) at the run's d, step size,
                                batch, loss, link and noise, averaged over the runs' starting
                                overlaps (:func:`online_ode_overlay`); and n = α_c·d.
n*(d) (``figure_scaling``)      the theory's exponent per method as a slope guide (scaling.py).
search curves                   the risk threshold ε only (a setting, not a prediction).
per-step figures (beyond.py)    1/d, the alignment of random neurons.
=============================== ==================================================================

**The one-step asymptotics apply** (:func:`one_step_settings`) to a ``one_step`` run with
``data: resample`` — the step on samples 0…⌊n/2⌋−1, the ridge head on the other n − ⌊n/2⌋,
fresh as the theory assumes (α₀ = ⌊n/2⌋/d, α = (n − ⌊n/2⌋)/d) — in the model of Cui et al.:
``output_scale: 1/sqrt(m)``, ``second_layer: constant``, ``first_layer: unit_rows``,
``biases: none``, ``weight_decay: 0``, ``preprocess: false``, no label transform, a ridge head
with a fixed λ, a fixed η₁ (a number, or ``sqrt_d``: η₁ = √d), a single-index target and a
centred student (E σ(z) = 0 and E[zσ′(z)] = 0: tanh, erf, …, the students the equivalence is
checked for). The translation:
replearn's loss (1/n)Σ(f − y)² is twice theirs, so η̃ = 2η₁/p; replearn's ridge
(1/n)‖Φa − y‖² + (λ'/2)‖a‖² is theirs ‖Φa − y‖² + λ‖a‖² with λ = λ'·n_head/2; ψ = p/d. The
teacher is the run's target g (as built: normalised or not), the noise its ``noise`` (the
theory uses only its variance, so Rademacher and Gaussian noise give one line). Runs that head
on the step's own samples (``data: same``, ``giant_step``) are outside the theory (its head
data are independent of W¹): no line, and the caption says so.

**The online ODE applies** (:func:`online_ode_settings`) to a single neuron (``width: 1``)
on the sphere (``spherical: true``) with f = σ(w·x) (effective output scale 1, ``second_layer:
constant``), no smoothing, one step per batch (``repeats: 1``), and a single-index target.

A line that cannot be computed — a fixed point that does not converge, a finite-d spectrum
too large to diagonalise here (p > :data:`FINITE_D_MAX_WIDTH`), an ODE that fails — is left
out with its reason; a figure never fails for its theory.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from replearn.experiments.methods import METHODS
from replearn.network import resolve_output_scale
from replearn.targets import MultiIndexTarget

__all__ = [
    "TheoryLine",
    "Overlay",
    "FINITE_D_MAX_WIDTH",
    "ODE_MAX_STARTS",
    "full_params",
    "one_step_settings",
    "one_step_prediction",
    "one_step_overlay",
    "transfer_overlay",
    "recovery_thresholds",
    "recovery_lines",
    "online_ode_settings",
    "ode_mean_overlap",
    "online_ode_overlay",
]

FINITE_D_MAX_WIDTH = 2048
"""The finite-d one-step line diagonalises the p × p Gram matrix of W⁰ once per n: above this
width it is left out (d → ∞ is drawn)."""
CURVE_POINTS = 6
"""Points of the d → ∞ one-step curve between the smallest and the largest n (log-spaced),
besides the runs' own n."""
ODE_MAX_STARTS = 12
"""The online ODE is integrated from at most this many starting overlaps (the quantiles of
the runs' m(0); the ODE's flow keeps the order of its starts, so the mean over the quantiles'
solutions is the mean over the runs' to the resolution of the quantiles)."""
CENTRED_TOL = 1e-8

ONE_STEP_SOURCE = "Cui et al. 2024"
RECOVERY_SOURCE = "Mondelli & Montanari 2018"
SPECTRAL_SOURCE = "Lu & Li 2017; Luo et al. 2019"
ODE_SOURCE = "Ben Arous et al. 2021"


@dataclass(frozen=True)
class TheoryLine:
    """One drawn prediction: a curve (``x``, ``y``) or a vertical line at ``x[0]``.

    Parameters
    ----------
    x, y : tuple of float
        In the figure's units (log_d n for the risk and alignment figures, samples for the
        online trajectory); ``y`` is empty for a vertical line.
    label : str
        Legend entry (names the source).
    kind : {"curve", "vline"}
    style : str
        matplotlib line style.

    Examples
    --------
    >>> TheoryLine((1.5,), (), "α_c·d", "vline", ":").kind
    'vline'
    """

    x: tuple[float, ...]
    y: tuple[float, ...]
    label: str
    kind: str = "curve"
    style: str = "--"


@dataclass(frozen=True)
class Overlay:
    """The theory lines of one figure panel or method, and why any line is not drawn.

    Parameters
    ----------
    lines : list of TheoryLine
    notes : list of str
        One sentence per prediction left out (for the caption).

    Examples
    --------
    >>> Overlay([], ["no theory"]).notes
    ['no theory']
    """

    lines: list[TheoryLine] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def full_params(method: str, record: Mapping) -> dict | None:
    """Every hyper-parameter of a run (its ``param_*`` columns, the learner's defaults for the
    rest), or None for a method that is not registered.

    Parameters
    ----------
    method : str
        The spec method's name.
    record : mapping
        A run row with ``param_*`` columns.

    Returns
    -------
    dict or None

    Examples
    --------
    >>> full_params("one_step", {"param_width": 8})["data"]
    'same'
    """
    info = METHODS.get(method)
    if info is None or info.learner is None:
        return None
    given = {k[6:]: v for k, v in record.items() if k.startswith("param_")}
    try:
        given = info.params.model_validate(given).model_dump()
    except ValueError:
        return None
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(info.learner).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    return {**defaults, **given}


def _teacher(target: MultiIndexTarget):
    """g of a single-index target as a vectorised numpy function (the theory's teacher)."""

    def g(z):
        z = np.array(z, dtype=np.float64)
        Z = torch.from_numpy(z.reshape(-1, 1))
        return target.latent_function(Z).numpy().reshape(z.shape)

    return g


def _centred(student) -> tuple[bool, str]:
    from replearn.theory.one_step_asymptotics import spike_constants

    try:
        constants = spike_constants(student, "z1", alpha0=0.0)
    except (ValueError, TypeError) as err:
        return False, f"its activation is not a theory student ({err})"
    if abs(constants["c0"]) > CENTRED_TOL or abs(constants["tau"]) > CENTRED_TOL:
        return False, (
            f"its activation {student!r} is not centred (E σ = {constants['c0']:.3g}, "
            f"E[zσ′] = {constants['tau']:.3g}; the equivalence is checked for centred students)"
        )
    return True, ""


def one_step_settings(method: str, params: Mapping | None, target: MultiIndexTarget | None,
                      d: int, fresh_head: bool = False) -> dict | str:  # fmt: skip
    """The arguments of ``theory.one_step_asymptotics`` for a run's method and parameters, or
    the reason (one sentence) that the theory does not apply (module docstring).

    Parameters
    ----------
    method : str
        The spec method's name.
    params : mapping or None
        Its full parameters (:func:`full_params`).
    target : MultiIndexTarget or None
    d : int
    fresh_head : bool
        The head is refitted on fresh samples anyway (a transfer to the same target): any
        ``data``.

    Returns
    -------
    dict or str
        ``student``, ``teacher``, ``eta``, ``width_ratio``, ``width``, ``ridge`` (λ' of the
        run), or the reason.

    Examples
    --------
    >>> import replearn as rl
    >>> t = rl.MultiIndexTarget.from_expression("tanh(z1)", d=16, seed=0, normalize=False)
    >>> one_step_settings("one_step", full_params("one_step", {"param_width": 16}), t, 16)
    'the head is fitted on the step’s own samples (data: same); the theory’s head has fresh samples (data: resample)'
    """
    if method == "giant_step":
        return "a giant-step head is fitted on the last step’s own samples; the theory’s head has fresh samples"
    if method != "one_step" or params is None:
        return "no one-step theory for this method"
    if params["data"] != "resample" and not fresh_head:
        return (
            "the head is fitted on the step’s own samples (data: same); the theory’s head has "
            "fresh samples (data: resample)"
        )
    width = params["width"]
    wanted = {
        "second_layer": "constant",
        "first_layer": "unit_rows",
        "biases": "none",
        "preprocess": False,
        "label_transform": None,
        "head": "ridge",
    }
    for key, value in wanted.items():
        if params.get(key) != value:
            return f"{key} is {params.get(key)!r}; the theory’s model has {value!r} (Cui et al.)"
    if params["weight_decay"] != 0.0:
        return f"weight_decay is {params['weight_decay']!r}; the theory keeps W⁰ (weight_decay: 0)"
    if not math.isclose(resolve_output_scale(params["output_scale"], width), 1 / math.sqrt(width)):
        return f"output_scale is {params['output_scale']!r}; the theory’s is 1/sqrt(m)"
    eta1 = math.sqrt(d) if params["eta1"] == "sqrt_d" else params["eta1"]
    if not isinstance(eta1, int | float):
        return f"eta1 is {params['eta1']!r}; the theory needs a fixed step η₁ = η̃·p/2"
    if not isinstance(params["ridge_lambda"], int | float):
        return f"ridge_lambda is {params['ridge_lambda']!r}; the theory needs a fixed λ"
    if target is None or target.r != 1:
        return "the target is not single-index (the theory’s teacher is g(θ·x))"
    if not isinstance(params["activation"], str):
        return "the activation is not a named one"
    ok, why = _centred(params["activation"])
    if not ok:
        return why
    return dict(student=params["activation"], teacher=_teacher(target),
                eta=2.0 * float(eta1) / width, width_ratio=width / d, width=width,
                ridge=float(params["ridge_lambda"]))  # fmt: skip


def one_step_prediction(
    settings: Mapping, n: int, d: int | None, d_run: int, noise: float
) -> float:
    """The theory's test error for ``n`` samples of a one-step run (``data: resample``) whose
    :func:`one_step_settings` are ``settings``: α₀ = ⌊n/2⌋/d, α = (n − ⌊n/2⌋)/d, λ = λ'·α·d/2.

    Parameters
    ----------
    settings : mapping
        :func:`one_step_settings` of the run.
    n : int
        The run's samples (step and head together).
    d : int or None
        The dimension of the finite-d theory, None for d → ∞.
    d_run : int
        The run's d (α₀ and α are per this d).
    noise : float
        The run's label noise (standard deviation).

    Returns
    -------
    float

    Examples
    --------
    >>> import replearn as rl
    >>> t = rl.MultiIndexTarget.from_expression("tanh(z1)", d=16, seed=0, normalize=False)
    >>> p = full_params("one_step", {"param_width": 16, "param_data": "resample",
    ...     "param_activation": "tanh", "param_output_scale": "1/sqrt(m)",
    ...     "param_second_layer": "constant", "param_first_layer": "unit_rows",
    ...     "param_biases": "none", "param_weight_decay": 0.0, "param_preprocess": False,
    ...     "param_eta1": 8.0, "param_ridge_lambda": 0.001})
    >>> s = one_step_settings("one_step", p, t, 16)
    >>> 0 < one_step_prediction(s, 64, None, 16, 0.0) < t.norm2()
    True
    """
    from replearn.theory.one_step_asymptotics import one_step_asymptotics

    n_step = n // 2
    n_head = n - n_step
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-centred students are refused before
        result = one_step_asymptotics(
            student=settings["student"], teacher=settings["teacher"], alpha0=n_step / d_run,
            eta=settings["eta"], ridge_lambda=settings["ridge"] * n_head / 2.0,
            alpha=[n_head / d_run], width_ratio=settings["width_ratio"], noise=noise, d=d, seed=0,
        )  # fmt: skip
    return float(result.test_error[0])


def _log_d(n: float, d: int) -> float:
    return math.log(n) / math.log(d)


def one_step_overlay(method: str, records: Sequence[Mapping], target: MultiIndexTarget | None,
                     label: str = "") -> Overlay:  # fmt: skip
    """The one-step asymptotic curves over a method line's runs (one d), or the reason none.

    Finite d: at each of the runs' n (the run's d, W⁰ drawn with seed 0). d → ∞: at the runs'
    n and :data:`CURVE_POINTS` log-spaced n between them. x is log_d n, y the test error
    E[(f − f*)²] (the report's risk, not divided by E f*²).

    Parameters
    ----------
    method : str
        The spec method's name.
    records : sequence of mapping
        The line's run rows (``d``, ``n``, ``noise``, ``param_*``), one d.
    target : MultiIndexTarget or None
    label : str
        The method line's legend label (prefix of the theory lines' labels).

    Returns
    -------
    Overlay

    Examples
    --------
    >>> one_step_overlay("giant_step", [{"d": 8, "n": 16, "noise": 0.0}], None).notes
    ['a giant-step head is fitted on the last step’s own samples; the theory’s head has fresh samples']
    """
    if not records:
        return Overlay()
    d = records[0]["d"]
    settings = one_step_settings(method, full_params(method, records[0]), target, d)
    if isinstance(settings, str):
        return Overlay(notes=[settings] if method in ("one_step", "giant_step") else [])
    noise = float(records[0].get("noise") or 0.0)
    ns = sorted({int(r["n"]) for r in records if int(r["n"]) >= 2})
    if not ns:
        return Overlay(notes=["no run has n ≥ 2 (the theory splits n between step and head)"])
    prefix = f"{label}: " if label else ""
    lines, notes = [], []
    grid = sorted(set(ns) | {int(round(v)) for v in np.geomspace(ns[0], ns[-1], CURVE_POINTS)})
    for name, dim, points, style in (
        (f"d → ∞ ({ONE_STEP_SOURCE})", None, grid, "--"),
        (f"d = {d} ({ONE_STEP_SOURCE}, finite-d spectrum)", d, ns, "-."),
    ):
        if dim is not None and settings["width"] > FINITE_D_MAX_WIDTH:
            notes.append(
                f"finite-d theory left out: width {settings['width']} > {FINITE_D_MAX_WIDTH} "
                "(one p × p eigendecomposition per n)"
            )
            continue
        try:
            ys = [one_step_prediction(settings, n, dim, d, noise) for n in points]
        except (ValueError, ArithmeticError, RuntimeError) as err:
            notes.append(f"{name} left out: {' '.join(str(err).split())}")
            continue
        lines.append(TheoryLine(tuple(_log_d(n, d) for n in points), tuple(ys),
                                f"{prefix}one-step theory, {name}", "curve", style))  # fmt: skip
    return Overlay(lines, notes)


def recovery_thresholds(target: MultiIndexTarget | None, noise: float, noise_kind: str) -> dict:
    """α_c (weak recovery), the optimal spectral threshold and whether the link is linearly
    visible (information exponent 1), or ``note`` when they cannot be drawn.

    Parameters
    ----------
    target : MultiIndexTarget or None
    noise : float
        Label noise (standard deviation).
    noise_kind : {"rademacher", "gaussian"}

    Returns
    -------
    dict
        ``alpha_c``, ``spectral``, ``linear`` and ``note`` (None when all were computed).

    Examples
    --------
    >>> import replearn as rl
    >>> t = rl.MultiIndexTarget.from_expression("z1**2", d=100, seed=0, normalize=False)
    >>> info = recovery_thresholds(t, 0.0, "rademacher")
    >>> round(info["alpha_c"], 9), info["linear"], info["note"]
    (0.5, False, None)
    """
    from replearn.theory.exponents import information_exponent
    from replearn.theory.weak_recovery import spectral_threshold, weak_recovery_threshold

    empty = dict(alpha_c=None, spectral=None, linear=False)
    if target is None or target.r != 1:
        return dict(empty, note="no weak-recovery threshold: the target is not single-index")
    try:
        alpha_c = weak_recovery_threshold(target, noise=noise, noise_kind=noise_kind)
        spectral = spectral_threshold(target, "optimal", noise=noise, noise_kind=noise_kind)
    except (ValueError, ArithmeticError, RuntimeError) as err:
        return dict(empty, note=f"weak-recovery threshold left out: {' '.join(str(err).split())}")
    try:
        linear = information_exponent(target) == 1
    except ValueError:
        linear = False
    return dict(alpha_c=alpha_c, spectral=spectral, linear=linear, note=None)


def recovery_lines(target: MultiIndexTarget | None, noise: float, noise_kind: str, d: int,
                   log_x: bool = True, thresholds: Mapping | None = None) -> Overlay:  # fmt: skip
    """n = α_c·d (weak recovery) and the optimal spectral threshold, as vertical lines.

    Drawn for single-index targets; the spectral line only where it differs from α_c by more
    than 0.5 % (for T* they agree: α_c is its threshold).

    Parameters
    ----------
    target : MultiIndexTarget or None
    noise : float
        Label noise (standard deviation).
    noise_kind : {"rademacher", "gaussian"}
    d : int
    log_x : bool
        x as log_d n (the alignment figure) or as n (the online trajectory).
    thresholds : mapping, optional
        :func:`recovery_thresholds` of the target and noise, if already computed.

    Returns
    -------
    Overlay

    Examples
    --------
    >>> import replearn as rl
    >>> t = rl.MultiIndexTarget.from_expression("z1**2", d=100, seed=0, normalize=False)
    >>> line = recovery_lines(t, 0.0, "rademacher", 100, log_x=False).lines[0]
    >>> round(line.x[0], 6)
    50.0
    """
    info = thresholds if thresholds is not None else recovery_thresholds(target, noise, noise_kind)
    if info["note"]:
        return Overlay(notes=[info["note"]])
    alpha_c, alpha_s = info["alpha_c"], info["spectral"]

    def x_of(alpha: float) -> float:
        return _log_d(alpha * d, d) if log_x else alpha * d

    lines, notes = [], []
    if not math.isfinite(alpha_c):
        notes.append("no weak-recovery threshold: E[z²|y] = 1 for every y (α_c = ∞)")
    elif alpha_c * d <= 1:
        notes.append(f"weak-recovery threshold n = α_c·d = {alpha_c * d:.3g} ≤ 1: no line")
    else:
        what = "spectral threshold (Σyx recovers at any n)" if info["linear"] else "weak recovery"
        lines.append(TheoryLine((x_of(alpha_c),), (), f"{what}: n = α_c·d, α_c = {alpha_c:.3g} "
                                f"({RECOVERY_SOURCE})", "vline", ":"))  # fmt: skip
    if (
        math.isfinite(alpha_s)
        and alpha_s * d > 1
        and not (math.isfinite(alpha_c) and math.isclose(alpha_s, alpha_c, rel_tol=5e-3))
    ):
        lines.append(TheoryLine((x_of(alpha_s),), (), f"optimal spectral estimator: α = "
                                f"{alpha_s:.3g} ({SPECTRAL_SOURCE})", "vline", "-."))  # fmt: skip
    return Overlay(lines, notes)


def online_ode_settings(params: Mapping | None, target: MultiIndexTarget | None) -> dict | str:
    """The ODE's arguments for an ``online_sgd`` run, or the reason it does not apply.

    Parameters
    ----------
    params : mapping or None
        The run's full parameters (:func:`full_params`).
    target : MultiIndexTarget or None

    Returns
    -------
    dict or str
        ``activation``, ``loss``, ``batch_size``, or the reason.

    Examples
    --------
    >>> online_ode_settings(full_params("online_sgd", {"param_width": 2}), None)
    'width is 2; the ODE is for one neuron (width: 1)'
    """
    if params is None:
        return "no ODE for this method"
    if params["width"] != 1:
        return f"width is {params['width']}; the ODE is for one neuron (width: 1)"
    if not params["spherical"]:
        return "spherical is false; the ODE is for spherical online SGD"
    if params["smoothing"] != 0.0:
        return "the loss is smoothed; the ODE is for the plain loss"
    if params["repeats"] != 1:
        return f"repeats is {params['repeats']}; the ODE has one step per batch"
    if params["second_layer"] != "constant" or not math.isclose(
        resolve_output_scale(params["output_scale"], 1), 1.0
    ):
        return "the neuron’s output is not σ(w·x) (second_layer: constant, output_scale 1)"
    if target is None or target.r != 1:
        return "the target is not single-index"
    return dict(activation=params["activation"], loss=params["loss"],
                batch_size=params["batch_size"])  # fmt: skip


def _starts(m0: np.ndarray) -> np.ndarray:
    """At most ODE_MAX_STARTS starting overlaps standing for the runs' m(0): all of them, or
    their quantiles at the midpoints (k + ½)/K."""
    m0 = np.sort(np.asarray(m0, dtype=float))
    unique = np.unique(m0)
    if unique.size <= ODE_MAX_STARTS:
        return m0
    return np.quantile(m0, (np.arange(ODE_MAX_STARTS) + 0.5) / ODE_MAX_STARTS)


def ode_mean_overlap(settings: Mapping, target: MultiIndexTarget, lr: float, m0, samples,
                     noise: float) -> np.ndarray:  # fmt: skip
    """mean over starts of abs(m(t)) of the online ODE, at ``samples`` (:func:`_starts` of m0).

    Parameters
    ----------
    settings : mapping
        :func:`online_ode_settings` of the run.
    target : MultiIndexTarget
    lr : float
        The run's step size (its ``lr`` metric).
    m0 : sequence of float
        The runs' starting overlaps (signed).
    samples : sequence of int
        Where to evaluate (increasing, from 0).
    noise : float

    Returns
    -------
    ndarray

    Examples
    --------
    >>> import replearn as rl
    >>> t = rl.MultiIndexTarget.from_expression("He2(z1)/sqrt(2)", d=64, seed=0)
    >>> s = {"activation": "relu", "loss": "correlation", "batch_size": 1}
    >>> m = ode_mean_overlap(s, t, 0.004, [0.1, -0.1], [0, 5000], 0.0)
    >>> bool(m[0] == 0.1 and m[1] > 0.5)
    True
    """
    from replearn.theory.online_ode import online_overlap_ode

    samples = np.asarray(samples, dtype=float)
    total = np.zeros(samples.size)
    starts = _starts(m0)
    solved: dict[float, np.ndarray] = {}
    for start in starts:
        if start not in solved:
            curve = online_overlap_ode(
                target, lr=lr, n=int(samples[-1]), m0=float(start), samples=samples,
                activation=settings["activation"], loss=settings["loss"],
                batch_size=settings["batch_size"], noise=noise,
            )  # fmt: skip
            solved[start] = np.abs(curve.overlap)
        total += solved[start]
    return total / len(starts)


def online_ode_overlay(records: Sequence[Mapping], target: MultiIndexTarget | None,
                       label: str = "") -> Overlay:  # fmt: skip
    """The ODE's mean abs(m(t)) over one method line's online-SGD runs (their traces at one n).

    Parameters
    ----------
    records : sequence of mapping
        Run rows with ``overlap_trace`` ({"samples": [...], "overlap": [[per replica]]}), ``lr``,
        ``noise`` and ``param_*``; one d and one n.
    target : MultiIndexTarget or None
    label : str
        Prefix of the line's label.

    Returns
    -------
    Overlay
        One curve: x the trace's sample counts, y the ODE's mean abs(m).

    Examples
    --------
    >>> online_ode_overlay([], None).lines
    []
    """
    records = [r for r in records if r.get("overlap_trace")]
    if not records:
        return Overlay()
    settings = online_ode_settings(full_params("online_sgd", records[0]), target)
    if isinstance(settings, str):
        return Overlay(notes=[f"no online ODE: {settings}"])
    samples = records[0]["overlap_trace"]["samples"]
    m0 = [row[0] for r in records for row in r["overlap_trace"]["overlap"]]
    lr = float(records[0]["lr"])
    noise = float(records[0].get("noise") or 0.0)
    try:
        ys = ode_mean_overlap(settings, target, lr, m0, samples, noise)
    except (ValueError, ArithmeticError, RuntimeError) as err:
        return Overlay(notes=[f"online ODE left out: {' '.join(str(err).split())}"])
    if not np.all(np.isfinite(ys)):
        return Overlay(notes=["online ODE left out: its solution is not finite"])
    prefix = f"{label}: " if label else ""
    return Overlay([TheoryLine(tuple(float(s) for s in samples), tuple(float(v) for v in ys),
                               f"{prefix}ODE mean |m(t)| ({ODE_SOURCE})")])  # fmt: skip


def _same_link(first: MultiIndexTarget, second: MultiIndexTarget) -> bool:
    """Whether two single-index targets are one function: the same direction and the same g
    at 201 points of [−8, 8] (to 1e-12)."""
    if first.r != 1 or second.r != 1 or not torch.allclose(first.U, second.U, atol=1e-12):
        return False
    z = np.linspace(-8.0, 8.0, 201)
    return bool(np.allclose(_teacher(first)(z), _teacher(second)(z), rtol=1e-12, atol=1e-12))


def transfer_overlay(config: Mapping, records: Sequence[Mapping], pretrain: MultiIndexTarget,
                     transfer: MultiIndexTarget) -> tuple[dict[tuple, list[TheoryLine]], list[str]]:  # fmt: skip
    """The one-step theory of a transfer experiment whose new target is the pretraining target
    itself: the step on the pretraining samples, the head refitted on N fresh ones — Cui et
    al.'s experiment, α₀ = n_step/d (n, or ⌊n/2⌋ with ``data: resample``), α = N/d,
    λ = λ'·N/2.

    Parameters
    ----------
    config : mapping
        One run config of the figure (``method``, ``params``, ``noise``, ``transfer``).
    records : sequence of mapping
        The figure's runs (``n``, ``N``), one method, one width, one d.
    pretrain, transfer : MultiIndexTarget
        The pretraining and the transfer targets.

    Returns
    -------
    tuple
        ({("n", N): [lines over log_d n], ("N", n): [lines over log_d N]}, notes); each list
        holds the d → ∞ line and, for p ≤ FINITE_D_MAX_WIDTH, the finite-d one.

    Examples
    --------
    >>> import replearn as rl
    >>> t = rl.MultiIndexTarget.from_expression("tanh(z1)", d=8, seed=0, normalize=False)
    >>> config = {"method": "random_features", "params": {}, "noise": 0.0,
    ...           "transfer": {"noise": 0.0}}
    >>> transfer_overlay(config, [], t, t)
    ({}, ['no one-step theory for this method'])
    """
    method = config["method"]
    d = pretrain.d
    params = full_params(method, {f"param_{k}": v for k, v in config["params"].items()})
    settings = one_step_settings(method, params, pretrain, d, fresh_head=True)
    if isinstance(settings, str):
        return {}, [settings]
    if not _same_link(pretrain, transfer):
        return {}, ["the transfer target is not the pretraining target (the theory refits the "
                    "head on the same task)"]  # fmt: skip
    noise = float(config.get("noise") or 0.0)
    transfer_noise = (config.get("transfer") or {}).get("noise")
    transfer_noise = noise if transfer_noise is None else float(transfer_noise)
    if transfer_noise != noise:
        return {}, [f"the transfer noise {transfer_noise:g} differs from the pretraining noise "
                    f"{noise:g} (the theory has one noise)"]  # fmt: skip
    from replearn.theory.one_step_asymptotics import one_step_asymptotics

    cells = sorted({(int(r["n"]), int(r["N"])) for r in records})
    dims = [None] + ([d] if settings["width"] <= FINITE_D_MAX_WIDTH else [])
    notes = [] if len(dims) == 2 else [
        f"finite-d theory left out: width {settings['width']} > {FINITE_D_MAX_WIDTH}"]  # fmt: skip
    values: dict[tuple, float] = {}
    for dim in dims:
        for n, N in cells:
            n_step = n // 2 if params["data"] == "resample" else n
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    values[(n, N, dim)] = float(one_step_asymptotics(
                        student=settings["student"], teacher=settings["teacher"],
                        alpha0=n_step / d, eta=settings["eta"],
                        ridge_lambda=settings["ridge"] * N / 2.0, alpha=[N / d],
                        width_ratio=settings["width_ratio"], noise=noise, d=dim, seed=0,
                    ).test_error[0])  # fmt: skip
            except (ValueError, ArithmeticError, RuntimeError) as err:
                notes.append(f"no theory at n = {n}, N = {N}: {' '.join(str(err).split())}")
    lines: dict[tuple, list[TheoryLine]] = {}
    for x_key, line_key in (("n", "N"), ("N", "n")):
        for value in sorted({cell[1 if line_key == "N" else 0] for cell in cells}):
            at = [c for c in cells if c[1 if line_key == "N" else 0] == value]
            for dim, style in zip(dims, ("--", "-.")):
                points = [c for c in at if (c[0], c[1], dim) in values]
                if not points:
                    continue
                name = "d → ∞" if dim is None else f"d = {d}"
                xs = tuple(_log_d(c[0] if x_key == "n" else c[1], d) for c in points)
                ys = tuple(values[(c[0], c[1], dim)] for c in points)
                lines.setdefault((x_key, value), []).append(TheoryLine(
                    xs, ys, f"one-step theory, {name} ({ONE_STEP_SOURCE})", "curve", style))  # fmt: skip
    return lines, notes
