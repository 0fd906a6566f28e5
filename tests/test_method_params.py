"""Method hyper-parameters generated from the learners (one owner for each fact).

A method's fields, defaults and checks come from its learner's ``__init__`` and
``_parameter_checks``; the legacy fields (those that existed when results were stored) stay
in every run config, and any other parameter enters a run config — and so its run id — only
at a value other than the learner's default.
"""

from __future__ import annotations

import inspect

import pytest
from pydantic import ValidationError

from replearn.experiments.grid import expand_grid, run_id
from replearn.experiments.methods import (
    METHODS,
    RUN_CONTEXT,
    Params,
    _construct,
    learner_params,
)
from replearn.experiments.spec import SpecError, parse_spec
from replearn.learners.base import BaseLearner
from replearn.learners.full_training import FullTraining
from replearn.learners.giant_step import GiantStepNetwork
from replearn.learners.kernel_ridge import KernelRidge
from replearn.learners.ntk import NTKRegression
from replearn.learners.one_step import OneStepNetwork
from replearn.learners.random_features import RandomFeatures
from replearn.validation import boolean, even_width, integer_at_least

LEARNERS = {
    "one_step": OneStepNetwork,
    "giant_step": GiantStepNetwork,
    "random_features": RandomFeatures,
    "ntk": NTKRegression,
    "kernel_ridge": KernelRidge,
    "full_training": FullTraining,
}

# The run configs' params of a method given no hyper-parameter, as stored since the first
# results: pinned here because each is part of the run id of every stored run at defaults.
STORED_DEFAULTS = {
    "one_step": {"width": 100, "eta1": "sqrt_d", "head": "ridge", "ridge_lambda": "auto",
                 "head_steps": 1000, "head_lr": "auto", "data": "same", "preprocess": True,
                 "chunk_size": 32_768},
    "giant_step": {"width": 100, "steps": 1, "step_size": "sqrt_d", "weight_decay": "paper",
                   "batch": "fresh", "output_scale": 1.0, "label_transform": None,
                   "preprocess": True, "head": "ridge", "ridge_lambda": "auto",
                   "head_steps": 1000, "head_lr": "auto", "chunk_size": 32_768},
    "random_features": {"width": 100, "ridge_lambda": "auto", "chunk_size": 32_768},
    "ntk": {"width": 100, "ridge_lambda": "auto", "chunk_size": 32_768, "bias": "zero",
            "form": "auto"},
    "kernel_ridge": {"kernel": "ntk", "ridge_lambda": "auto", "solver": "auto"},
    "full_training": {"width": 100, "optimizer": None, "lr": None, "epochs": None,
                      "batch_size": None, "weight_decay": None},
}  # fmt: skip


# Parameters added after results were stored whose learner default is not the stored
# behaviour: a spec's default (left out of the run config at it) and the learner's argument.
PINNED = {"giant_step": {"later_steps": "gradient"}}


@pytest.mark.parametrize("method", sorted(LEARNERS))
def test_fields_are_the_learners_parameters(method):
    learner, params = LEARNERS[method], METHODS[method].params
    signature = inspect.signature(learner.__init__).parameters
    expected = set(signature) - {"self", *RUN_CONTEXT, *learner._not_in_specs}
    assert set(params.model_fields) == expected
    for name, field in params.model_fields.items():
        if name in STORED_DEFAULTS[method]:  # legacy: the default stored with the results
            assert field.default == STORED_DEFAULTS[method][name], name
        elif name in PINNED.get(method, {}):  # added later, its stored behaviour pinned
            assert field.default == params.omitted_at[name] == PINNED[method][name], name
            assert params.pinned[name] == PINNED[method][name]
        else:  # every other field: the learner's default
            assert field.default == signature[name].default, name
            assert params.omitted_at[name] == signature[name].default


def test_a_moved_learner_default_does_not_move_a_legacy_field():
    # GiantStepNetwork's step_size default is "harmonic" now; specs that leave step_size out
    # keep running (and hashing) the stored "sqrt_d"
    from replearn.experiments.methods import build_learner

    params = METHODS["giant_step"].params().model_dump()
    assert params["step_size"] == "sqrt_d"
    config = {"method": "giant_step", "params": params, "seed": 0, "dtype": "float32",
              "device": "cpu"}  # fmt: skip
    assert build_learner(config).step_size == "sqrt_d"
    # later_steps (added later, default "residual") is left out and pinned to "gradient"
    assert "later_steps" not in params
    assert build_learner(config).later_steps == "gradient"
    residual = METHODS["giant_step"].params(later_steps="residual").model_dump()
    assert residual["later_steps"] == "residual"
    assert build_learner(dict(config, params=residual)).later_steps == "residual"


@pytest.mark.parametrize("method", sorted(LEARNERS))
def test_default_dump_is_the_stored_one(method):
    dumped = METHODS[method].params().model_dump()
    assert dumped == STORED_DEFAULTS[method]
    # the same types too (1.0 and 1 hash differently in a run id)
    assert [type(v) for v in dumped.values()] == [type(v) for v in STORED_DEFAULTS[method].values()]


def test_giant_step_output_scale_keeps_its_dumped_form():
    params = METHODS["giant_step"].params
    assert params().model_dump()["output_scale"] == 1.0
    assert isinstance(params().model_dump()["output_scale"], float)
    assert params(output_scale=1).model_dump()["output_scale"] == 1.0  # checked to a float
    assert params(output_scale="1/m").model_dump()["output_scale"] == "1/m"


def test_a_learner_check_is_the_fields_check():
    with pytest.raises(ValidationError, match="must be one of 'auto', 'primal', 'dual'"):
        METHODS["ntk"].params(form="magic")
    with pytest.raises(ValidationError, match="must be one of"):
        METHODS["kernel_ridge"].params(solver="magic")
    with pytest.raises(ValidationError, match="Extra inputs"):
        METHODS["giant_step"].params(diagnostics_target=None)  # declared not in specs


class _Toy(BaseLearner):
    _parameter_checks = {"width": even_width, "steps": integer_at_least(1),
                         "smooth": boolean, "seed": integer_at_least(0)}  # fmt: skip

    def __init__(self, width=4, steps=1, smooth=False, seed=0):
        self.width, self.steps, self.smooth, self.seed = width, steps, smooth, seed


def test_a_new_parameter_enters_the_run_config_only_off_its_default():
    before = learner_params(_Toy, legacy=("width",))
    assert list(before.model_fields) == ["width", "steps", "smooth"]  # seed: run context
    assert before().model_dump() == {"width": 4}
    assert before(steps=1, smooth=False).model_dump() == {"width": 4}
    assert before(steps=2).model_dump() == {"width": 4, "steps": 2}
    assert before(smooth=True).model_dump() == {"width": 4, "smooth": True}
    # a run id at defaults is the one it was before the parameters existed
    config = {"method": "toy", "params": before().model_dump()}
    assert run_id(config) == run_id({"method": "toy", "params": {"width": 4}})


def test_legacy_fields_must_be_parameters():
    with pytest.raises(TypeError, match="legacy fields"):
        learner_params(_Toy, legacy=("width", "no_such"))
    with pytest.raises(TypeError, match="legacy fields"):
        learner_params(_Toy, legacy=("width",), none_means_default=("steps",))


def test_not_in_specs_must_name_parameters():
    with pytest.raises(TypeError, match="_not_in_specs names no parameter"):

        class _Bad(BaseLearner):
            _parameter_checks = {"width": even_width}
            _not_in_specs = frozenset({"target"})

            def __init__(self, width=4):
                self.width = width


def test_params_base_leaves_out_values_at_omitted_at():
    class P(Params):
        a: int = 1
        b: bool = False
        omitted_at = {"b": False}

    assert P().model_dump() == {"a": 1}
    assert P(b=True).model_dump() == {"a": 1, "b": True}


def _config(method: str, params: dict) -> dict:
    return {"method": method, "params": params, "seed": 3, "dtype": "float64", "device": "cpu"}


def test_full_training_none_means_the_learners_default():
    params = METHODS["full_training"].params().model_dump()
    model = _construct(FullTraining, params, _config("full_training", params))
    assert (model.optimizer, model.lr, model.epochs) == ("adam", "auto", 200)
    assert (model.seed, model.patience) == (3, 20)
    # a new field's None is a value of its own (never stop early), not "the default"
    params = METHODS["full_training"].params(patience=None, optimizer="sgd").model_dump()
    assert params["patience"] is None and params["optimizer"] == "sgd"
    model = _construct(FullTraining, params, _config("full_training", params))
    assert model.patience is None and model.optimizer == "sgd"


def test_specs_set_the_new_parameters_and_their_ids_follow():
    text = (
        "name: x\ntarget: {kind: paper}\nmethods: [{name: random_features, width: 10, "
        "preprocess: %s}]\nd: [4]\nn: [16]\n"
    )
    at_default = expand_grid(parse_spec(text % "true"))[0]
    plain = expand_grid(parse_spec(text.replace(", preprocess: %s", "")))[0]
    changed = expand_grid(parse_spec(text % "false"))[0]
    assert at_default == plain and "preprocess" not in plain["params"]
    assert changed["params"]["preprocess"] is False
    assert run_id(changed) != run_id(plain)
    with pytest.raises(SpecError, match=r"methods\[0\].preprocess: must be true or false"):
        parse_spec(text % "1")
