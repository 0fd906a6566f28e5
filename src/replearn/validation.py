"""Every check a value passes at replearn's boundary, in one place.

Each value check is a callable ``check(value) -> normalised value`` that raises ``ValueError``
with "must be …, got …". The learners name them in their ``_parameter_constraints`` and
prefix the parameter's name (``width must be an even integer ≥ 2, got 3``); the experiment
specs' pydantic models use the same callables and prefix the field's path
(``methods: one_step.width: must be …``), so one rule has one wording wherever it is enforced.

The ``check_*`` functions take the name themselves and raise the whole one-line message:
counts, dtypes, devices, λ, widths and the (X, y) arrays a learner is given.

>>> integer_at_least(1)(3)
3
>>> check_count("n", 0)
Traceback (most recent call last):
...
ValueError: n must be an integer ≥ 1, got 0
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "is_int",
    "is_number",
    "even_width",
    "integer_at_least",
    "number",
    "interval",
    "choice",
    "boolean",
    "optional",
    "ridge_lambda",
    "seed",
    "dtype_name",
    "device_name",
    "named",
    "check_count",
    "check_width",
    "check_ridge_lambda",
    "resolve_dtype",
    "check_arrays",
]


def is_int(value: Any) -> bool:
    """An int (Python or numpy) that is not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float (Python or numpy) that is not a bool."""
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def even_width(value: Any) -> int:
    """Width m: neurons come in ± pairs, so an even integer ≥ 2."""
    if not is_int(value) or value < 2 or value % 2:
        raise ValueError(f"must be an even integer ≥ 2, got {value!r}")
    return int(value)


def integer_at_least(minimum: int) -> Callable[[Any], int]:
    """Check: an integer ≥ minimum."""

    def check(value: Any) -> int:
        if not is_int(value) or value < minimum:
            raise ValueError(f"must be an integer ≥ {minimum}, got {value!r}")
        return int(value)

    return check


def number(minimum: float = 0.0, strict: bool = False, words: tuple[str, ...] = ()):
    """Check: a finite number ≥ minimum (> minimum if strict), or one of ``words``."""
    bound = f"> {minimum:g}" if strict else f"≥ {minimum:g}"
    allowed = f"a number {bound}" + "".join(f" or {w!r}" for w in words)

    def check(value: Any):
        if isinstance(value, str) and value in words:
            return value
        if not is_number(value) or value < minimum or (strict and value == minimum):
            raise ValueError(f"must be {allowed}, got {value!r}")
        return float(value)

    return check


def interval(low: float, high: float, closed_low: bool = True, closed_high: bool = False):
    """Check: a finite number in the interval [low, high) (brackets as ``closed_*`` say)."""
    shown = f"{'[' if closed_low else '('}{low:g}, {high:g}{']' if closed_high else ')'}"

    def check(value: Any) -> float:
        ok = is_number(value) and (value >= low if closed_low else value > low)
        if not (ok and (value <= high if closed_high else value < high)):
            raise ValueError(f"must be a number in {shown}, got {value!r}")
        return float(value)

    return check


def choice(*words: str):
    """Check: one of ``words``."""

    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in words:
            raise ValueError(f"must be one of {', '.join(map(repr, words))}, got {value!r}")
        return value

    return check


def boolean(value: Any) -> bool:
    """A real bool (not 0/1, not 'yes')."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"must be true or false, got {value!r}")
    return bool(value)


def optional(check):
    """``check`` that lets None through."""

    def wrapped(value: Any):
        return None if value is None else check(value)

    return wrapped


ridge_lambda = number(0.0, words=("auto",))
"""λ ≥ 0, or 'auto' (chosen on a holdout, or by GCV without one)."""

seed = integer_at_least(0)
"""A seed: an integer ≥ 0."""


def dtype_name(value: Any):
    """float32 or float64, as a name ('float32') or a torch dtype; returns the torch dtype."""
    import torch

    allowed = {"float32": torch.float32, "float64": torch.float64}
    if isinstance(value, str) and value in allowed:
        return allowed[value]
    if value in allowed.values():
        return value
    raise ValueError(f"must be 'float32' or 'float64' (or the torch dtype), got {value!r}")


def device_name(value: Any):
    """A torch device or its name ('cpu', 'cuda', 'cuda:1'); returns the torch.device."""
    import torch

    try:
        return torch.device(value)
    except (TypeError, RuntimeError, ValueError):
        raise ValueError(f"must be a torch device such as 'cpu' or 'cuda', got {value!r}") from None


def named(name: str, check: Callable[[Any], Any], value: Any):
    """``check(value)``, its error message prefixed with the parameter's name."""
    try:
        return check(value)
    except ValueError as error:
        raise ValueError(f"{name} {error}") from None


def check_count(name: str, value: Any, minimum: int = 1) -> int:
    """An integer ≥ minimum (a number of samples, steps, rows …)."""
    return named(name, integer_at_least(minimum), value)


def check_width(value: Any, name: str = "width") -> int:
    """Width m: an even integer ≥ 2 (neurons come in ± pairs)."""
    return named(name, even_width, value)


def check_ridge_lambda(value: Any) -> float | str:
    """A fixed λ ≥ 0 (as a float) or 'auto'."""
    return named("ridge_lambda", ridge_lambda, value)


def resolve_dtype(value: Any):
    """The torch dtype of 'float32' / 'float64' / torch.float32 / torch.float64."""
    return named("dtype", dtype_name, value)


def check_arrays(X, y, d: int | None = None, names: tuple[str, str] = ("X", "y")):
    """Tensors (X, y) of shapes (n, d) and (n,), finite, n ≥ 1: one-line ValueError if not."""
    import torch

    x_name, y_name = names
    X = torch.as_tensor(X)
    if y is None:
        raise ValueError(f"{y_name} is required: this learner is a regressor (y must not be None)")
    y = torch.as_tensor(y)
    if X.ndim != 2:
        raise ValueError(f"{x_name} must be 2-D (n, d), got shape {tuple(X.shape)}")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"{y_name} must be 1-D with {X.shape[0]} entries, got shape {tuple(y.shape)}"
        )
    if X.shape[0] < 1:
        raise ValueError(f"{x_name} must have at least one row")
    if d is not None and X.shape[1] != d:
        raise ValueError(f"{x_name} has {X.shape[1]} features, but the model expects {d}")
    if not (torch.isfinite(X).all() and torch.isfinite(y).all()):
        raise ValueError(f"{x_name} and {y_name} must be finite (found NaN or inf)")
    return X, y
