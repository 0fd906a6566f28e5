r"""The field's predictions for one single-index target and settings, as plain numbers (what
``replearn theory`` prints after the paper's summary, and what the report's figures draw):

- the one-step asymptotic test errors (Cui et al. 2024; :func:`one_step_asymptotics`) at the
  settings' α, at the target's d (finite-d spectrum) and at d → ∞;
- the weak-recovery threshold α_c and the optimal spectral estimator's threshold
  (``theory.weak_recovery``);
- the information and generative exponents and the ladder's sample-complexity exponents
  (``theory.sample_complexity.ladder_exponents``);
- the online-SGD ODE's overlap m(t) at a few sample counts (``theory.online_ode``).

The teacher is the target's own link g (as built: normalised unless the target says
``normalize: false``), the same function the report's overlays use.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from replearn.activations import resolve_activation
from replearn.targets import MultiIndexTarget
from replearn.theory.scalar_functions import student_functions

__all__ = ["field_summary", "format_field_summary", "ODE_POINTS"]

ODE_POINTS = 6
"""Sample counts at which m(t) is printed: 0 and 5 log-spaced ones up to the budget."""


def _teacher(target: MultiIndexTarget):
    def g(z):
        z = np.array(z, dtype=np.float64)
        return target.latent_function(torch.from_numpy(z.reshape(-1, 1))).numpy().reshape(z.shape)

    return g


def _guard(function, *args, **kwargs):
    """(value, None) or (None, the one-line reason it could not be computed)."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = function(*args, **kwargs)
        note = " ".join(str(caught[0].message).split()) if caught else None
        return value, note
    except (ValueError, ArithmeticError, RuntimeError) as err:
        return None, " ".join(str(err).split())


def _check_settings(**values) -> None:
    """Every setting checked before any work: one ValueError naming the first bad one."""
    rules = {
        "noise": (0.0, False), "alpha0": (0.0, False), "eta": (0.0, False),
        "ridge_lambda": (0.0, True), "width_ratio": (0.0, True), "lr": (0.0, True),
        "samples": (1.0, False),
    }  # fmt: skip
    for name, value in values.items():
        if value is None:
            continue
        if name == "m0":
            if not (isinstance(value, int | float) and -1.0 <= value <= 1.0):
                raise ValueError(f"m0 must be an overlap in [-1, 1], got {value!r}")
            continue
        low, strict = rules[name]
        ok = isinstance(value, int | float) and math.isfinite(value)
        if not ok or value < low or (strict and value == low):
            bound = f"> {low:g}" if strict else f">= {low:g}"
            raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


def field_summary(
    target: MultiIndexTarget,
    student: str = "tanh",
    alpha0: float = 0.5,
    eta: float = 1.0,
    ridge_lambda: float = 0.01,
    alpha=(0.5, 1.5, 3.0),
    width_ratio: float = 1.0,
    noise: float = 0.0,
    noise_kind: str = "rademacher",
    finite_d: bool = True,
    online_activation: str = "relu",
    lr: float | None = None,
    m0: float | None = None,
    samples: int | None = None,
    seed: int = 0,
) -> dict:
    """The field's predictions for a single-index target (module docstring).

    Parameters
    ----------
    target : MultiIndexTarget
        Single-index (r = 1).
    student, alpha0, eta, ridge_lambda, alpha, width_ratio : see ``one_step_asymptotics``
    noise : float
        Label noise standard deviation (all predictions).
    noise_kind : {"rademacher", "gaussian"}
        Its law (the thresholds; the one-step theory and the ODE use only its variance).
    finite_d : bool
        Also the one-step prediction at the target's d (W⁰ drawn with ``seed``).
    online_activation : str
        σ of the online neuron.
    lr : float, optional
        Online step size (``replearn theory`` passes ``OnlineSGD``'s "auto", η(d, k) at the
        information exponent k); None: no ODE (the theory layer does not import the learners).
    m0 : float, optional
        The ODE's starting overlap (default d^{−1/2}, a random start's).
    samples : int, optional
        The ODE's budget (default 20·d^e at the online exponent e, d·log d for k = 2).
    seed : int

    Returns
    -------
    dict
        ``one_step`` ({"alpha", "test_error_d", "test_error_infinite", notes}),
        ``thresholds`` ({"weak_recovery", "spectral"}), ``exponents`` ({"information",
        "generative"}), ``ladder`` (``ladder_exponents``), ``ode`` ({"lr", "m0",
        "samples", "overlap"} or a note).

    Examples
    --------
    >>> import replearn as rl
    >>> t = rl.MultiIndexTarget.from_expression("z1**2", d=100, seed=0, normalize=False)
    >>> info = field_summary(t, alpha=[1.0], finite_d=False)
    >>> round(info["thresholds"]["weak_recovery"], 12), info["exponents"]["information"]
    (0.5, 2)
    """
    from replearn.theory.exponents import generative_exponent, information_exponent
    from replearn.theory.one_step_asymptotics import one_step_asymptotics
    from replearn.theory.online_ode import online_overlap_ode
    from replearn.theory.sample_complexity import ladder_exponents
    from replearn.theory.weak_recovery import spectral_threshold, weak_recovery_threshold

    if target.r != 1:
        raise ValueError(
            f"the field's predictions are for single-index targets (r = 1), got r = {target.r}"
        )
    _check_settings(noise=noise, alpha0=alpha0, eta=eta, ridge_lambda=ridge_lambda,
                    width_ratio=width_ratio, lr=lr, m0=m0, samples=samples)  # fmt: skip
    student_functions(student)  # "student …" errors before any work
    try:
        resolve_activation(online_activation)
    except ValueError as err:
        raise ValueError(f"online_activation {err}") from None
    d = target.d
    alphas = [float(a) for a in np.atleast_1d(alpha)]
    g = _teacher(target)
    settings = dict(student=student, teacher=g, alpha0=alpha0, eta=eta, ridge_lambda=ridge_lambda,
                    alpha=alphas, width_ratio=width_ratio, noise=noise, seed=seed)  # fmt: skip
    one_step = {"alpha": alphas, "notes": []}
    for key, dim in (("test_error_infinite", None), ("test_error_d", d if finite_d else None)):
        if key == "test_error_d" and not finite_d:
            one_step[key] = None
            continue
        result, note = _guard(one_step_asymptotics, d=dim, **settings)
        one_step[key] = None if result is None else [float(e) for e in result.test_error]
        if note and note not in one_step["notes"]:
            one_step["notes"].append(note)
    weak, weak_note = _guard(weak_recovery_threshold, target, noise=noise, noise_kind=noise_kind)
    spectral, spectral_note = _guard(spectral_threshold, target, "optimal", noise=noise,
                                     noise_kind=noise_kind)  # fmt: skip
    information = generative = None
    try:
        information = information_exponent(target)
    except ValueError:
        pass
    try:
        generative = generative_exponent(target)
    except ValueError:
        pass
    ladder = ladder_exponents(target, exponents=(information, generative))
    k = information or 2
    m0 = float(d**-0.5 if m0 is None else m0)
    if samples is None:
        exponent = ladder["online_sgd"]["exponent"] or 1.0
        samples = int(math.ceil(20 * d**exponent * (max(1.0, math.log(d)) if k == 2 else 1.0)))
    times = [0] + [int(round(v)) for v in np.geomspace(1, samples, ODE_POINTS - 1)]
    times = sorted(set(times))
    if lr is None:
        curve, ode_note = None, "no step size given (lr)"
    else:
        lr = float(lr)
        curve, ode_note = _guard(online_overlap_ode, target, lr=lr, n=samples, m0=m0,
                                 activation=online_activation, noise=noise, samples=times)  # fmt: skip
    ode = dict(lr=lr, m0=m0, samples=times, activation=online_activation,
               overlap=None if curve is None else [float(m) for m in curve.overlap], note=ode_note)  # fmt: skip
    return dict(
        one_step=one_step,
        settings=dict(student=student, alpha0=alpha0, eta=eta, ridge_lambda=ridge_lambda,
                      width_ratio=width_ratio, noise=noise, noise_kind=noise_kind, d=d),
        thresholds=dict(weak_recovery=weak, spectral=spectral,
                        notes=[n for n in (weak_note, spectral_note) if n]),
        exponents=dict(information=information, generative=generative),
        ladder=ladder,
        ode=ode,
    )  # fmt: skip


def _number(value) -> str:
    return "—" if value is None else f"{value:.4g}"


def format_field_summary(info: dict) -> str:
    """The lines ``replearn theory`` prints for :func:`field_summary`.

    Parameters
    ----------
    info : dict
        :func:`field_summary`'s result.

    Returns
    -------
    str

    Examples
    --------
    >>> import replearn as rl
    >>> t = rl.MultiIndexTarget.from_expression("z1**2", d=100, seed=0, normalize=False)
    >>> text = format_field_summary(field_summary(t, alpha=[1.0], finite_d=False))
    >>> [line for line in text.splitlines() if line.startswith("weak recovery")]
    ['weak recovery     alpha_c = 0.5 (n = 50; spectral T*: alpha = 0.5)']
    """
    s = info["settings"]
    o = info["one_step"]
    lines = [
        f"one step (Cui et al. 2024): student {s['student']}, alpha0 {s['alpha0']:g}, eta {s['eta']:g}, "
        f"lambda {s['ridge_lambda']:g}, p/d {s['width_ratio']:g}, noise {s['noise']:g}",
        "  alpha           " + "  ".join(f"{a:>9.4g}" for a in o["alpha"]),
    ]
    for key, name in (("test_error_d", f"d = {s['d']}"), ("test_error_infinite", "d -> inf")):
        if o.get(key) is not None:
            lines.append(f"  {name:<15} " + "  ".join(f"{e:>9.4g}" for e in o[key]))
    lines += [f"  note: {note}" for note in o["notes"]]
    t = info["thresholds"]
    n_c = None if t["weak_recovery"] is None else t["weak_recovery"] * s["d"]
    lines.append(
        f"weak recovery     alpha_c = {_number(t['weak_recovery'])} (n = {_number(n_c)}; "
        f"spectral T*: alpha = {_number(t['spectral'])})"
    )
    lines += [f"  note: {note}" for note in t["notes"]]
    lines.append("ladder (n ~ d^e)  " + "; ".join(
        f"{name} {_number(row['exponent'])}" for name, row in info["ladder"].items()))  # fmt: skip
    ode = info["ode"]
    head = f"online ODE        {ode['activation']} neuron, lr {_number(ode['lr'])}, m(0) {ode['m0']:.4g}"
    if ode["overlap"] is None:
        lines.append(f"{head}: not computed ({ode['note']})")
    else:
        lines.append(head + ": " + ", ".join(
            f"m({t:g}) = {m:.3f}" for t, m in zip(ode["samples"], ode["overlap"])))  # fmt: skip
    return "\n".join(lines)
