"""Every check a value passes at replearn's boundary, in one place.

Each check is a callable ``check(value) -> normalised value`` that raises ``ValueError`` with
"must be …, got …"; the estimators prefix the parameter's name, the experiment specs' pydantic
models the field's path (``methods: one_step.width: must be …``), so one rule has one wording
wherever it is enforced.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = [
    "is_int",
    "is_number",
    "even_width",
    "integer_at_least",
    "number",
    "choice",
    "boolean",
    "optional",
]


def is_int(value: Any) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def even_width(value: Any) -> int:
    """Width m: neurons come in ± pairs, so an even integer ≥ 2."""
    if not is_int(value) or value < 2 or value % 2:
        raise ValueError(f"must be an even integer ≥ 2, got {value!r}")
    return value


def integer_at_least(minimum: int) -> Callable[[Any], int]:
    """Check: an integer ≥ minimum."""

    def check(value: Any) -> int:
        if not is_int(value) or value < minimum:
            raise ValueError(f"must be an integer ≥ {minimum}, got {value!r}")
        return value

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


def choice(*words: str):
    """Check: one of ``words``."""

    def check(value: Any) -> str:
        if value not in words:
            raise ValueError(f"must be one of {', '.join(map(repr, words))}, got {value!r}")
        return value

    return check


def boolean(value: Any) -> bool:
    """A real bool (not 0/1, not 'yes')."""
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def optional(check):
    """``check`` that lets None through."""

    def wrapped(value: Any):
        return None if value is None else check(value)

    return wrapped
