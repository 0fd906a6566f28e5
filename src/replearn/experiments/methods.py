"""Method registry: a grid cell's config → learner construction, fit_stream, scores.

Every entry maps a name used in specs (``methods[i].name``) to

- a pydantic model of its hyper-parameters (each a scalar; a spec may give a list of
  values for any of them, which the runner sweeps), and
- a function ``run(config) -> metrics`` that is a pure function of the run's config:
  the data, the initialisation and the test set all derive from ``config["seed"]``.

Each hyper-parameter is checked by the learner's own check (``BaseLearner.parameter_check``,
the ``replearn.validation`` callables the learner's ``fit`` runs), so a spec and an
estimator accept the same values with the same message. Add a method with
:func:`register_method`.

``synthetic`` is not a learner: it sleeps, fails on request and returns a deterministic
risk ``min(1, scale·d^exponent/n)·c_seed`` computed from the data stream. The engine's
tests (and anyone checking a cluster set-up) use it so that they do not depend on the
learners' speed.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, create_model, model_serializer

from replearn.experiments.target_kinds import build_target, build_transfer_target
from replearn.learners.full_training import FullTraining
from replearn.learners.giant_step import GiantStepNetwork
from replearn.learners.kernel_ridge import KernelRidge
from replearn.learners.ntk import NTKRegression
from replearn.learners.one_step import OneStepNetwork
from replearn.learners.online_sgd import OnlineSGD
from replearn.learners.random_features import RandomFeatures
from replearn.validation import boolean, number, optional

__all__ = [
    "METHODS",
    "MethodInfo",
    "register_method",
    "register_learner",
    "learner_params",
    "build_learner",
    "build_target",
    "build_transfer_target",
    "derive_seed",
]


def checked_by(learner, name: str, allow_none: bool = False):
    """A pydantic field type checked by ``learner``'s own check of parameter ``name``
    (None allowed, meaning "the learner's default", when ``allow_none``)."""
    check = learner.parameter_check(name)
    return Annotated[Any, AfterValidator(optional(check) if allow_none else check)]


Bool = Annotated[Any, AfterValidator(boolean)]


def _same(value: Any, default: Any) -> bool:
    """``value == default`` without True == 1 (a bool equals only a bool)."""
    if isinstance(value, bool) != isinstance(default, bool):
        return False
    try:
        return bool(value == default)
    except Exception:  # an array-like default: never "the same"
        return False


class Params(BaseModel):
    """Base of the hyper-parameter models: unknown names are errors.

    ``omitted_at`` maps options added after results were stored to their default: at that
    value they are left out of ``model_dump()`` (so of the run config, so of its run id), and
    the runs of existing specs keep their ids; another value enters the run id.
    ``none_means_default`` lists fields whose None stands for the learner's own default (the
    runner leaves them out of the constructor call). ``pinned`` maps options added after
    results were stored whose learner default differs from the stored behaviour to the
    stored one: a spec's default, left out of the run config and passed to the learner.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    omitted_at: ClassVar[dict[str, Any]] = {}
    pinned: ClassVar[dict[str, Any]] = {}
    none_means_default: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _leave_out_new_defaults(self, handler):
        data = handler(self)
        for name, default in self.omitted_at.items():
            if name in data and _same(data[name], default):
                del data[name]
        return data


# parameters a run takes from its config (``config["seed"]``, ``["dtype"]``, ``["device"]``),
# never from a method's hyper-parameters
RUN_CONTEXT = ("seed", "dtype", "device")


def learner_params(
    learner,
    legacy: dict[str, Any] | tuple[str, ...] = (),
    none_means_default: tuple[str, ...] = (),
    pinned: dict[str, Any] | None = None,
) -> type[Params]:
    """A method's hyper-parameter model generated from its learner class.

    Every ``__init__`` parameter of ``learner`` becomes a field, with the learner's default
    and its ``_parameter_checks`` check (so a spec and an estimator accept the same values
    with the same words), except the run's context (:data:`RUN_CONTEXT`) and the parameters
    the learner declares ``_not_in_specs`` (Python objects a YAML spec cannot express).

    Parameters
    ----------
    learner : type
        A :class:`~replearn.learners.base.BaseLearner` subclass.
    legacy : dict or tuple of str
        The fields the method had when results were first stored, in their sweep order,
        each with the default it had then (a tuple of names: the learner's defaults): they
        are always in the run config (so in its run id), and a spec that leaves one out
        gets that stored default even if the learner's default has moved since (so the run
        keeps its id and its numbers). Every other field — a parameter added to the learner
        later — is left out of the config at the learner's default
        (:attr:`Params.omitted_at`), so adding a parameter never changes the run id of an
        existing run; a value other than the default enters the run id. Written once per
        method; never add a name to it.
    none_means_default : tuple of str
        Legacy fields whose spec default is None, meaning "the learner's default" (stored
        as None in the run config; left out of the constructor call).
    pinned : dict, optional
        Parameters added after results were stored, each with the value that reproduces
        them, where the learner's own default differs: the spec's default is that value,
        left out of the run config at it (so stored run ids stay) and passed to the learner
        (so their numbers stay); another value enters the run id.

    Returns
    -------
    type
        A :class:`Params` model: legacy fields first (in that order), then the others in
        the order of the learner's signature.

    Examples
    --------
    >>> from replearn.learners.random_features import RandomFeatures
    >>> P = learner_params(RandomFeatures, legacy=("width", "ridge_lambda", "chunk_size"))
    >>> list(P.model_fields)[:5]
    ['width', 'ridge_lambda', 'chunk_size', 'preprocess', 'activation']
    >>> P().model_dump()             # the others at their defaults: not in the run config
    {'width': 100, 'ridge_lambda': 'auto', 'chunk_size': 32768}
    >>> P(preprocess=False).model_dump()["preprocess"]
    False
    """
    signature = inspect.signature(learner.__init__).parameters
    if not isinstance(legacy, dict):
        legacy = {n: signature[n].default if n in signature else None for n in legacy}
    excluded = set(RUN_CONTEXT) | set(learner._not_in_specs)
    names = [n for n in signature if n != "self" and n not in excluded]
    pinned = dict(pinned or {})
    unknown = [n for n in (*legacy, *none_means_default, *pinned) if n not in names]
    if unknown or not set(none_means_default) <= set(legacy) or set(pinned) & set(legacy):
        raise TypeError(
            f"{learner.__name__}: legacy fields {unknown or list(none_means_default)} are not "
            "settable parameters (or a none_means_default field is not legacy, or a pinned "
            "one is)"
        )
    fields: dict[str, Any] = {}
    for name in (*legacy, *[n for n in names if n not in legacy]):
        if name in none_means_default:
            fields[name] = (checked_by(learner, name, allow_none=True), None)
        else:
            default = legacy[name] if name in legacy else signature[name].default
            fields[name] = (checked_by(learner, name), pinned.get(name, default))
    model = create_model(f"{learner.__name__}Params", __base__=Params, **fields)
    model.omitted_at = {n: pinned.get(n, signature[n].default) for n in names if n not in legacy}
    model.pinned = pinned
    model.none_means_default = frozenset(none_means_default)
    model.__doc__ = (
        f"Hyper-parameters of {learner.__name__} in a spec (generated from the learner)."
    )
    return model


# The fields each learner's method had when results were first stored, with the defaults they
# had then (see learner_params): they stay in every run config with these values when a spec
# leaves them out, so the run ids and numbers of stored results never change — even where a
# learner's own default has moved since (GiantStepNetwork's step_size: "harmonic" now). Any
# learner parameter not listed here enters a run config only at a value other than its
# default. Written once; never add to them.
OneStepParams = learner_params(
    OneStepNetwork,
    legacy={"width": 100, "eta1": "sqrt_d", "head": "ridge", "ridge_lambda": "auto",
            "head_steps": 1000, "head_lr": "auto", "data": "same", "preprocess": True,
            "chunk_size": 32_768},
)  # fmt: skip
GiantStepParams = learner_params(
    GiantStepNetwork,
    legacy={"width": 100, "steps": 1, "step_size": "sqrt_d", "weight_decay": "paper",
            "batch": "fresh", "output_scale": 1.0, "label_transform": None, "preprocess": True,
            "head": "ridge", "ridge_lambda": "auto", "head_steps": 1000, "head_lr": "auto",
            "chunk_size": 32_768},
    # the learner's later steps are residual steps now; stored runs took the network's gradient
    pinned={"later_steps": "gradient"},
)  # fmt: skip
GiantStepParams.__doc__ += """

A per-step list is one value, so a spec sweeps lists of lists: ``step_size: [[2.0, 8.0]]`` is
one run with η₁ = 2, η₂ = 8; ``batch: [fresh, reuse]`` is two runs. (A list whose length is
not ``steps`` fails the run with the learner's message.)"""
RandomFeaturesParams = learner_params(
    RandomFeatures, legacy={"width": 100, "ridge_lambda": "auto", "chunk_size": 32_768}
)
NTKParams = learner_params(
    NTKRegression,
    legacy={"width": 100, "ridge_lambda": "auto", "chunk_size": 32_768, "bias": "zero",
            "form": "auto"},
)  # fmt: skip
KernelRidgeParams = learner_params(
    KernelRidge, legacy={"kernel": "ntk", "ridge_lambda": "auto", "solver": "auto"}
)
FullTrainingParams = learner_params(
    FullTraining,
    legacy={"width": 100, "optimizer": None, "lr": None, "epochs": None, "batch_size": None,
            "weight_decay": None},
    none_means_default=("optimizer", "lr", "epochs", "batch_size", "weight_decay"),
)  # fmt: skip


class SyntheticParams(Params):
    """risk = min(1, scale·d^exponent/n) · (1 + 0.1·tanh(mean of 64 labels)); sleeps first."""

    exponent: Annotated[Any, AfterValidator(number(0.0))] = 2.0
    scale: Annotated[Any, AfterValidator(number(0.0, True))] = 1.0
    sleep: Annotated[Any, AfterValidator(number(0.0))] = 0.0
    fail: Bool = False
    fail_if_env: Annotated[Any, AfterValidator(optional(lambda v: _text(v)))] = None


def _text(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError(f"must be an environment variable name, got {value!r}")
    return value


# -- the registry ------------------------------------------------------------------------------
@dataclass(frozen=True)
class MethodInfo:
    """One registered method: its hyper-parameters and the function that runs a cell."""

    name: str
    params: type[Params]
    run: Callable[[dict], dict]
    supports_transfer: bool = False
    description: str = ""
    learner: type | None = None


METHODS: dict[str, MethodInfo] = {}


def register_method(
    name: str,
    params: type[Params],
    supports_transfer: bool = False,
    description: str = "",
    learner: type | None = None,
):
    """Decorator: ``@register_method("mine", MyParams)`` on ``def run(config) -> dict``.

    Parameters
    ----------
    name : str
        The name specs use (``methods: [{name: mine}]``); an existing name is replaced.
    params : type
        A ``Params`` (pydantic) model of the hyper-parameters: unknown names are errors.
    supports_transfer : bool
        Whether ``run`` handles ``config["transfer"]`` (a spec's ``transfer`` block).
    description : str
        One line that says what it runs.
    learner : type, optional
        The learner class a run fits, built from the run's params (:func:`build_learner`):
        the engine asks it for its memory estimate before the run.

    Returns
    -------
    callable
        The decorator; it returns ``run`` unchanged.

    Examples
    --------
    >>> from replearn.experiments.methods import METHODS, Params
    >>> class ConstantParams(Params):
    ...     value: float = 1.0
    >>> @register_method("constant", ConstantParams, description="risk = value")
    ... def run_constant(config):
    ...     return {"risk": config["params"]["value"]}
    >>> METHODS["constant"].run({"params": {"value": 0.5}})
    {'risk': 0.5}
    >>> del METHODS["constant"]
    """

    def decorate(run: Callable[[dict], dict]) -> Callable[[dict], dict]:
        METHODS[name] = MethodInfo(name, params, run, supports_transfer, description, learner)
        return run

    return decorate


# -- targets and streams from a run config -------------------------------------------------
def derive_seed(seed: int, purpose: str) -> int:
    """A seed for an independent stream (e.g. the transfer task's data) from the run's seed."""
    digest = hashlib.sha256(f"{int(seed)}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


def _dtype(config: dict):
    import torch

    return {"float32": torch.float32, "float64": torch.float64}[config["dtype"]]


def _stream(target, config: dict, seed: int, noise: float):
    from replearn.data import DataStream

    return DataStream(
        target,
        noise=noise,
        seed=seed,
        noise_kind=config["noise_kind"],
        split="train",
        dtype=_dtype(config),
        device=config["device"],
    )


def _scalar(value: Any) -> Any:
    """JSON-friendly: tensors and numpy scalars to Python numbers."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return value.item()
    return value


# -- learners --------------------------------------------------------------------------------
def _construct(cls, params: dict, config: dict):
    """``cls(**params)`` with the run's seed, dtype and device; a None of a
    ``none_means_default`` field is left out (the learner's default), a ``pinned`` field the
    config leaves out gets its pinned value."""
    method = METHODS.get(config.get("method"))
    defaults = method.params.none_means_default if method is not None else frozenset()
    pinned = method.params.pinned if method is not None else {}
    kwargs = {k: v for k, v in {**pinned, **params}.items() if not (v is None and k in defaults)}
    context = {"seed": config["seed"], "dtype": _dtype(config), "device": config["device"]}
    accepted = inspect.signature(cls).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    kwargs.update({k: v for k, v in context.items() if takes_any or k in accepted})
    return cls(**kwargs)


def build_learner(config: dict):
    """The unfitted learner of a run config (its method's ``learner`` built from the run's
    params, seed, dtype and device), or None for a method without one.

    Parameters
    ----------
    config : dict
        A run config (``grid.cell_config``).

    Returns
    -------
    BaseLearner or None

    Examples
    --------
    >>> config = {"method": "ntk", "params": {"width": 10, "form": "dual"}, "seed": 1,
    ...           "dtype": "float64", "device": "cpu"}
    >>> build_learner(config)
    NTKRegression(dtype=torch.float64, form='dual', seed=1, width=10)
    """
    method = METHODS.get(config.get("method"))
    if method is None or method.learner is None:
        return None
    return _construct(method.learner, config.get("params") or {}, config)


# the last few fitted pretraining models of this process: transfer cells that differ only
# in N share the pretraining (a pure function of the rest of the config)
_PRETRAINED: OrderedDict[str, tuple[Any, dict]] = OrderedDict()
_PRETRAINED_SIZE = 2


def _fit(cls, config: dict, extra: dict | None = None):
    """(fitted model, pretraining metrics) for the cell; cached per process for transfer.
    ``extra``: constructor arguments that are not hyper-parameters (derived from the config;
    the values "target" and "test" stand for the run's target and its test sample)."""
    key = json.dumps({k: v for k, v in config.items() if k != "transfer"}, sort_keys=True)
    if key in _PRETRAINED:
        _PRETRAINED.move_to_end(key)
        return _PRETRAINED[key]
    from replearn.metrics import excess_risk, subspace_alignment

    target = build_target(config["target"], config["d"])
    stream = _stream(target, config, config["seed"], config["noise"])
    named = {"target": lambda: target, "test": lambda: _test_sample(target, config)}
    extra = {k: (named[v]() if v in named else v) for k, v in (extra or {}).items()}
    if "directions" in inspect.signature(cls).parameters:  # first_layer="orthogonal", overlaps
        extra.setdefault("directions", target.U)
    model = _construct(cls, {**config["params"], **extra}, config)
    model = model.fit_stream(stream, n=config["n"], n_holdout=config["n_holdout"])
    metrics: dict[str, Any] = {}
    if "excess_risk" in config["metrics"]:
        estimate = excess_risk(model, target, n_test=config["n_test"], seed=config["seed"])
        metrics.update(risk=float(estimate.risk), stderr=float(estimate.stderr))
    if "alignment" in config["metrics"] and getattr(model, "W_", None) is not None:
        metrics["alignment"] = float(subspace_alignment(model.W_, target.U))
    for attribute, key_name in (("ridge_lambda_", "ridge_lambda"), ("eta1_", "eta1")):
        value = _scalar(getattr(model, attribute, None))
        if isinstance(value, int | float):
            metrics[key_name] = float(value)
    if config.get("transfer"):
        _PRETRAINED[key] = (model, metrics)
        while len(_PRETRAINED) > _PRETRAINED_SIZE:
            _PRETRAINED.popitem(last=False)
    return model, metrics


def _learner(cls) -> Callable[[dict], dict]:
    def run(config: dict) -> dict:
        model, metrics = _fit(cls, config)
        transfer = config.get("transfer")
        if not transfer:
            return dict(metrics)
        from replearn.metrics import excess_risk

        pretrain_target = build_target(config["target"], config["d"])
        target = build_transfer_target(transfer["target"], pretrain_target)
        stream = _stream(target, config, derive_seed(config["seed"], "transfer"), transfer["noise"])
        refit = model.transfer_stream(stream, transfer["N"], n_holdout=transfer["n_holdout"])
        estimate = excess_risk(refit, target, n_test=config["n_test"], seed=config["seed"])
        out = {f"pretrain_{k}": v for k, v in metrics.items()}
        out.update(risk=float(estimate.risk), stderr=float(estimate.stderr))
        value = _scalar(getattr(refit, "ridge_lambda_", None))
        if isinstance(value, int | float):
            out["ridge_lambda"] = float(value)
        if "alignment" in metrics:
            out["alignment"] = metrics["alignment"]
        return out

    run.__name__ = f"run_{cls.__name__}"
    return run


register_method(
    "one_step",
    OneStepParams,
    supports_transfer=True,
    description="Algorithm 1: one gradient step on W, then a ridge head (OneStepNetwork)",
    learner=OneStepNetwork,
)(_learner(OneStepNetwork))


def register_learner(
    name: str,
    learner,
    *,
    legacy: dict[str, Any] | tuple[str, ...] = (),
    none_means_default: tuple[str, ...] = (),
    supports_transfer: bool = False,
    description: str = "",
) -> type[Params]:
    """Make a learner class a spec method — the one place a new learner is added.

    Its hyper-parameters are generated from the learner (:func:`learner_params`: names,
    defaults and checks of ``__init__`` and ``_parameter_checks``, less the run's seed,
    dtype and device and the learner's ``_not_in_specs``); a run builds it from the run's
    params, fits it with ``fit_stream`` on samples 0…n−1 of the run's stream, and records the
    excess risk on ``n_test`` fresh samples (and the alignment of ``W_`` when the learner has
    one, λ as ``ridge_lambda`` when it sets ``ridge_lambda_``); the engine asks it for its
    memory estimate before the run.

    Parameters
    ----------
    name : str
        The name specs use (``methods: [{name: …}]``).
    learner : type
        A :class:`~replearn.learners.base.BaseLearner` subclass.
    legacy, none_means_default : tuple of str
        As :func:`learner_params` (a new learner has no legacy fields: every parameter
        enters a run config only off its default).
    supports_transfer : bool
        Whether the learner has ``transfer_stream`` (a spec's ``transfer`` block).
    description : str
        One line.

    Returns
    -------
    type
        The generated :class:`Params` model.

    Examples
    --------
    >>> params = register_learner("rf_again", RandomFeatures, description="random features")
    >>> METHODS["rf_again"].learner is RandomFeatures, params(width=8).model_dump()
    (True, {'width': 8})
    >>> del METHODS["rf_again"]
    """
    params = learner_params(learner, legacy, none_means_default)
    register_method(name, params, supports_transfer, description, learner)(_learner(learner))
    return params


# per-step history kept in a giant-step run's metrics: summaries of every step, and the
# cosines cos(w_j, u_k) of the first SCATTER_NEURONS neurons with the first SCATTER_DIRECTIONS
# directions (the scatter figure), rounded to SCATTER_DIGITS: at most 256·2·T numbers a run
# per block (``cosines``, ``step_cosines``, ``overlaps``)
SCATTER_NEURONS = 256
SCATTER_DIRECTIONS = 2
SCATTER_DIGITS = 4


def _block(matrix) -> list[list[float]]:
    """The (≤ 256, ≤ 2) top-left block of an (m, r) tensor, rounded to 4 digits."""
    block = matrix[:SCATTER_NEURONS, :SCATTER_DIRECTIONS]
    return [[round(float(c), SCATTER_DIGITS) for c in row] for row in block]


def step_summary(entry: dict) -> dict:
    """JSON summary of one ``GiantStepNetwork.history_`` entry, or of its
    ``initial_diagnostics_`` (step 0: no step, so no ``step_cosines`` or shares).

    Keys present when the learner measured them: ``step``, ``eta``, ``step_norm``,
    ``weight_norm``, ``alignment`` (share of ‖W^t‖²_F in span U), ``direction_cos2`` (per
    direction u_k: mean_j cos²(w_j, u_k); 1/d for random neurons, 1 when every neuron is
    ±u_k), ``degree_shares`` of the step's residual ({"0", "1", "2", "higher"}),
    ``network_risk`` (the network's own test MSE after the step, no ½) and three (≤ 256, ≤ 2)
    blocks of neurons 0, 1, … (one half of the ± pairs first), rounded to 4 digits:
    ``cosines`` cos(w_j^t, u_k), ``step_cosines`` cos(w_j^t − w_j^{t−1}, u_k) (Dandi et al.
    2023's cos(G_i, θ_k)) and ``overlaps`` w_j^t·u_k (Dandi et al. 2024's m(t)).
    """
    out: dict = {"step": int(entry.get("step", 0))}
    for key in ("eta", "step_norm", "weight_norm", "alignment", "network_risk"):
        if key in entry:
            out[key] = float(entry[key])
    if "direction_cosines" in entry:
        cosines = entry["direction_cosines"]  # (m, r) float64
        out["direction_cos2"] = cosines.pow(2).mean(dim=0).tolist()
        out["cosines"] = _block(cosines)
    if "step" in entry:
        shares = entry.get("residual_degree_shares") or {}
        out["degree_shares"] = {str(k): float(v) for k, v in shares.items()}
    for key, name in (("step_cosines", "step_cosines"), ("direction_overlaps", "overlaps")):
        if key in entry:
            out[name] = _block(entry[key])
    return out


def step_history(history: list[dict]) -> list[dict]:
    """JSON summary of ``GiantStepNetwork.history_`` (fitted with a ``diagnostics_target``):
    one :func:`step_summary` per step t = 1…T."""
    return [step_summary(entry) for entry in history]


def _test_sample(target, config: dict):
    """The run's test sample (X, f*(X)) in float64: the n_test samples ``excess_risk`` scores
    the run on (the noiseless 'test' split of the run's seed)."""
    import torch

    from replearn.data import DataStream

    stream = DataStream(target, noise=0.0, seed=config["seed"], split="test",
                        dtype=torch.float64, cache_bytes=0)  # fmt: skip
    parts = list(stream.chunks(config["n_test"], config["n_test"], clean=True))
    return torch.cat([X for X, *_ in parts]), torch.cat([f for *_, f in parts])


def run_giant_step(config: dict) -> dict:
    """GiantStepNetwork on the cell; metrics as every learner plus ``history`` (step_history)
    and ``initial`` (the same measurements of W⁰, :func:`step_summary`).

    With ``head: none`` the predictor is the network itself, so its test risk after every
    step is measured too (``network_risk``, on the run's n_test test samples: the last step's
    is the run's ``risk``); with a head the predictor exists only after the last step."""
    extra = {"diagnostics_target": "target"}
    if config["params"].get("head") == "none":
        extra["diagnostics_data"] = "test"
    model, metrics = _fit(GiantStepNetwork, config, extra=extra)
    history = step_history(model.history_)
    initial = model.initial_diagnostics_
    return dict(metrics, history=history, initial=step_summary(initial) if initial else None)


register_method(
    "giant_step",
    GiantStepParams,
    description="T giant first-layer steps, second layer fixed (Dandi et al. 2023), then the "
    "ridge head (GiantStepNetwork)",
    learner=GiantStepNetwork,
)(run_giant_step)
register_method(
    "random_features",
    RandomFeaturesParams,
    supports_transfer=True,
    description="random features: first layer frozen at init, ridge head",
    learner=RandomFeatures,
)(_learner(RandomFeatures))
register_method(
    "ntk",
    NTKParams,
    description="linearised NTK of the same network, ridge on its features",
    learner=NTKRegression,
)(_learner(NTKRegression))
register_method(
    "kernel_ridge",
    KernelRidgeParams,
    description="exact kernel ridge regression (materialises the data set)",
    learner=KernelRidge,
)(_learner(KernelRidge))
register_method(
    "full_training",
    FullTrainingParams,
    description="both layers trained by (S)GD/Adam with autograd",
    learner=FullTraining,
)(_learner(FullTraining))


TRACE_DIGITS = 5


def overlap_trace(model) -> dict | None:
    """JSON of ``OnlineSGD.overlap_trace_``: ``samples`` (the log-spaced sample counts, 0 first)
    and ``overlap`` (one list per replica, the largest-|·| neuron's overlap, 5 digits); None
    without directions."""
    trace = getattr(model, "overlap_trace_", None)
    if trace is None:
        return None
    return {
        "samples": [int(s) for s in model.trace_samples_],
        "overlap": [[round(float(v), TRACE_DIGITS) for v in row] for row in trace],
    }


def run_online_sgd(config: dict) -> dict:
    """OnlineSGD on the cell; metrics as every learner plus, per replica, the samples it took
    to reach weak recovery (``recovery_samples``: None when censored at n), the step size and
    the overlap trajectory at log-spaced sample counts (``overlap_trace``, :func:`overlap_trace`;
    a metric, so no run id changes)."""
    model, metrics = _fit(OnlineSGD, config)
    times = [None if math.isinf(t) else int(t) for t in getattr(model, "recovery_samples_", [])]
    out = dict(metrics, recovery_samples=times, lr=float(model.lr_))
    trace = overlap_trace(model)
    if trace is not None:
        out["overlap_trace"] = trace
    return out


register_method(
    "online_sgd",
    learner_params(OnlineSGD),
    description="one-pass (online) SGD on the first layer, replicas batched (OnlineSGD)",
    learner=OnlineSGD,
)(run_online_sgd)


@register_method(
    "synthetic",
    SyntheticParams,
    supports_transfer=True,
    description="engine check: deterministic risk min(1, scale·d^exponent/n)·c_seed, no learning",
)
def run_synthetic(config: dict) -> dict:
    params = config["params"]
    if params["sleep"]:
        time.sleep(params["sleep"])
    if params["fail"]:
        raise RuntimeError("synthetic method asked to fail (fail: true)")
    if params["fail_if_env"] and os.environ.get(params["fail_if_env"]):
        raise RuntimeError(f"synthetic method asked to fail (${params['fail_if_env']} is set)")
    target = build_target(config["target"], config["d"])
    _, y = _stream(target, config, config["seed"], config["noise"]).get(0, 64)
    factor = 1.0 + 0.1 * math.tanh(float(y.double().mean()))
    n = config["transfer"]["N"] if config.get("transfer") else config["n"]
    risk = min(1.0, params["scale"] * config["d"] ** params["exponent"] / n) * factor
    return {"risk": risk, "stderr": 0.01 * risk}
