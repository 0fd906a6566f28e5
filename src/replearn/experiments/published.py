"""A spec's ``published:`` block: the numbers a paper published for the same experiment.

Spec-level metadata, read by the report ("Published vs replearn"); it never enters a run's
config, so it never changes a run id::

    published:
      source: "lucpoisson/GiantStep, single_step/single_step.ipynb, cell 9 (printed test errors)"
      metric: excess_risk    # the replearn metric the values compare with
      scale: 1.0             # replearn's value = scale × published value (2 for a ½-MSE)
      seeds: 10              # the published seed count (a row's own ``seeds`` overrides it)
      note: "their λ = 1 unnormalised = replearn's 2/n"          # optional
      values:                # the final metric, one row per grid point
        - {n: 3326, mean: 0.3360, sd: 0.0063}
      per_step:              # optional per-step quantities (step 0 = before any step)
        - {step: 1, quantity: "overlap[0,0]", mean: 0.0757, sd: 0.002}

A row names its grid point by any of the grid's keys — ``d``, ``n``, ``N``, ``noise``,
``method`` (a method name of the spec) and the hyper-parameters the spec's methods sweep
(``width``, ``steps``, …); a key the row leaves out matches every value. ``mean`` is
required, ``sd`` (≥ 0) and ``seeds`` (≥ 1) are optional. Every problem is one line under
its field path (``published.values[2].sd: must be a number ≥ 0, got -1``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from replearn.limits import excerpt
from replearn.validation import is_int, is_number

__all__ = ["PublishedSpec", "PUBLISHED_METRICS", "GRID_KEYS", "published_problems", "row_point"]

# the replearn metrics a published number can be compared with (the run's stored metrics)
PUBLISHED_METRICS = ("excess_risk", "alignment")
# keys of the grid every spec has; a method's hyper-parameters are allowed besides
GRID_KEYS = ("d", "n", "N", "noise", "method")
VALUE_FIELDS = ("mean", "sd", "seeds")
STEP_FIELDS = ("step", "quantity")


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string, got {excerpt(value)}")
    return value


def _finite(value: Any) -> float:
    if not is_number(value) or not math.isfinite(float(value)):
        raise ValueError(f"must be a finite number, got {excerpt(value)}")
    return float(value)


def _positive(value: Any) -> float:
    if not is_number(value) or not (math.isfinite(float(value)) and float(value) > 0):
        raise ValueError(f"must be a finite number > 0, got {excerpt(value)}")
    return float(value)


def _count(value: Any) -> int:
    if not is_int(value) or value < 1:
        raise ValueError(f"must be an integer ≥ 1, got {excerpt(value)}")
    return int(value)


def _metric(value: Any) -> str:
    if value not in PUBLISHED_METRICS:
        raise ValueError(f"must be one of {', '.join(PUBLISHED_METRICS)}, got {excerpt(value)}")
    return value


def _rows(value: Any) -> list:
    """A list (its rows are checked by :func:`published_problems`, with their paths)."""
    if not isinstance(value, list):
        raise ValueError(f"must be a list of mappings with mean (and sd), got {excerpt(value)}")
    return [dict(row) if isinstance(row, dict) else row for row in value]


def _row_problem(row: Any, kind: str) -> str | None:
    """The first problem of one row's own fields (not its grid keys), as ``field: what``
    (``: what`` for the row itself), or None."""
    if not isinstance(row, dict):
        return f": must be a mapping with mean (and sd), got {excerpt(row)}"
    required = ("mean",) + (STEP_FIELDS if kind == "per_step" else ())
    missing = [key for key in required if key not in row]
    if missing:
        return f".{missing[0]}: required field is missing"
    checks = {"mean": _finite, "seeds": _count, "quantity": _text}
    for key, check in checks.items():
        if key in row:
            try:
                check(row[key])
            except ValueError as err:
                return f".{key}: {err}"
    sd = row.get("sd", 0.0)
    if not (is_number(sd) and math.isfinite(sd) and sd >= 0):
        return f".sd: must be a finite number ≥ 0, got {excerpt(sd)}"
    step = row.get("step", 0)
    if not (is_int(step) and step >= 0):
        return f".step: must be an integer ≥ 0 (0: before any step), got {excerpt(step)}"
    if kind == "values" and "step" in row:
        return ".step: per-step rows go under published.per_step"
    return None


class PublishedSpec(BaseModel):
    """The ``published:`` block of a spec (see the module docstring).

    Parameters
    ----------
    source : str
        Where the numbers come from: repository, file, cell or figure.
    metric : {"excess_risk", "alignment"}
        The replearn metric ``values`` compare with.
    scale : float
        replearn's value = ``scale`` × published value (2 for a published ½-MSE).
    seeds : int, optional
        How many seeds the published sds are over (a row's ``seeds`` overrides it).
    note : str, optional
        The parametrisation map, or anything a reader needs to compare.
    values : list of mapping
        One row per grid point: grid keys, ``mean``, optional ``sd`` and ``seeds``.
    per_step : list of mapping
        Rows with ``step``, ``quantity``, ``mean``, optional ``sd``, ``seeds`` and grid keys.

    Examples
    --------
    >>> block = PublishedSpec.model_validate(
    ...     {"source": "notebook, cell 9", "values": [{"n": 100, "mean": 0.3, "sd": 0.01}]})
    >>> block.metric, block.scale, block.values[0]["mean"]
    ('excess_risk', 1.0, 0.3)
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    source: Annotated[Any, AfterValidator(_text)]
    metric: Annotated[Any, AfterValidator(_metric)] = "excess_risk"
    scale: Annotated[Any, AfterValidator(_positive)] = 1.0
    seeds: Annotated[Any, AfterValidator(lambda v: v if v is None else _count(v))] = None
    note: Annotated[Any, AfterValidator(lambda v: v if v is None else _text(v))] = None
    values: Annotated[Any, AfterValidator(_rows)] = Field(default_factory=list)
    per_step: Annotated[Any, AfterValidator(_rows)] = Field(default_factory=list)


def row_point(row: Mapping) -> dict:
    """The grid keys of a published row (everything but mean, sd, seeds, step, quantity)."""
    return {k: v for k, v in row.items() if k not in VALUE_FIELDS + STEP_FIELDS}


def published_problems(block: PublishedSpec, methods: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every problem of the block's rows, one line each under its path: a row's own fields
    (``mean`` required and finite, ``sd`` ≥ 0, ``seeds`` ≥ 1, per-step ``step`` ≥ 0 and
    ``quantity``), and each grid key the spec's grid does not have.

    ``methods``: the spec's method entries (``name`` and hyper-parameters); their names and
    hyper-parameter names are the keys allowed besides :data:`GRID_KEYS`.

    Examples
    --------
    >>> block = PublishedSpec.model_validate(
    ...     {"source": "x", "values": [{"n": 10, "mean": 0.3, "sd": -1}, {"alpha": 1, "mean": 0}]})
    >>> for line in published_problems(block, [{"name": "one_step", "width": 10}]):
    ...     print(line)
    published.values[0].sd: must be a finite number ≥ 0, got -1
    published.values[1].alpha: not a grid key of this spec; allowed: d, n, N, noise, method, width
    """
    methods = list(methods)
    names = {m["name"] for m in methods}
    params = {key for m in methods for key in m if key != "name"}
    allowed = ", ".join([*GRID_KEYS, *sorted(params)])
    problems = []
    for field in ("values", "per_step"):
        for i, row in enumerate(getattr(block, field)):
            problem = _row_problem(row, field)
            if problem is not None:
                problems.append(f"published.{field}[{i}]{problem}")
                continue
            for key, value in row_point(row).items():
                where = f"published.{field}[{i}].{key}"
                if key not in GRID_KEYS and key not in params:
                    problems.append(f"{where}: not a grid key of this spec; allowed: {allowed}")
                elif key == "method" and value not in names:
                    problems.append(
                        f"{where}: not a method of this spec; methods: {', '.join(sorted(names))}"
                    )
    return problems
