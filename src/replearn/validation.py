"""Every check a value passes at replearn's boundary, in one place.

Each value check is a callable ``check(value) -> normalised value`` that raises ``ValueError``
with "must be …, got …". The learners name them in their ``_parameter_constraints`` and
prefix the parameter's name (``width must be an even integer ≥ 2, got 3``); the experiment
specs' pydantic models use the same callables and prefix the field's path
(``methods: one_step.width: must be …``), so one rule has one wording wherever it is enforced.

The ``check_*`` functions take the name themselves and raise the whole one-line message:
counts, dtypes, devices, λ, widths and the (X, y) arrays a learner is given. Arrays are
checked in the dtype the model computes in (:func:`check_finite_in`: 1e300 is a float64
but overflows float32), must be real (:func:`real_tensor`: complex is refused, not cast) and
have n ≥ 1 rows and d ≥ 1 columns; a device's name is checked by :func:`device_name` and its
presence on this machine by :func:`check_device_available` (when a fit starts).

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

from replearn import limits

__all__ = [
    "is_int",
    "is_number",
    "even_width",
    "network_width",
    "integer_at_least",
    "count_within",
    "number",
    "interval",
    "choice",
    "boolean",
    "optional",
    "ridge_lambda",
    "seed",
    "dtype_name",
    "device_name",
    "check_device_available",
    "check_finite_in",
    "real_tensor",
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


def network_width(value: Any) -> int:
    """Width m of a network whose initialisation may be unpaired: an integer ≥ 1 (a learner
    asks for an even one where its second layer is the paper's symmetric pairs)."""
    if not is_int(value) or value < 1:
        raise ValueError(
            f"must be an integer ≥ 1 (an even integer ≥ 2 for second_layer='paper'), got {value!r}"
        )
    return int(value)


def integer_at_least(minimum: int) -> Callable[[Any], int]:
    """Check: an integer ≥ minimum."""

    def check(value: Any) -> int:
        if not is_int(value) or value < minimum:
            raise ValueError(f"must be an integer ≥ {minimum}, got {value!r}")
        return int(value)

    return check


def count_within(limit: str, minimum: int = 1) -> Callable[[Any], int]:
    """Check: an integer ≥ minimum that does not exceed the limit ``limit`` of
    :mod:`replearn.limits` (read when the check runs, so ``limits.raised`` applies).

    >>> count_within("steps", 0)(10**12)
    Traceback (most recent call last):
    ...
    replearn.limits.LimitError: = 1,000,000,000,000 exceeds the limit steps = 10,000,000; raise it with limits.raised(steps=…) or REPLEARN_MAX_STEPS=…
    """
    base = integer_at_least(minimum)

    def check(value: Any) -> int:
        value = base(value)
        bound = limits.get(limit)
        if bound is not None and value > bound:
            raise limits.LimitError(
                f"= {value:,} exceeds the limit {limit} = {bound:,}; "
                + limits.LIMITS[limit].how_to_raise()
            )
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

SEED_MAX = 2**63 - 1
"""The largest seed: torch's generators and the results store hold a signed 64-bit integer."""


def seed(value: Any) -> int:
    """A seed: an integer in [0, 2⁶³ − 1]."""
    if not is_int(value) or not 0 <= value <= SEED_MAX:
        raise ValueError(f"must be an integer in [0, 2^63 − 1], got {_short(value)}")
    return int(value)


def _short(value: Any, chars: int = 80) -> str:
    """repr cut to ``chars`` characters (error messages stay one short line)."""
    text = repr(value)
    return text if len(text) <= chars else text[:chars] + "…"


def dtype_name(value: Any):
    """float32 or float64, as a name ('float32') or a torch dtype; returns the torch dtype."""
    import torch

    allowed = {"float32": torch.float32, "float64": torch.float64}
    if isinstance(value, str) and value in allowed:
        return allowed[value]
    if value in allowed.values():
        return value
    raise ValueError(f"must be 'float32' or 'float64' (or the torch dtype), got {value!r}")


DEVICE_TYPES = ("cpu", "cuda", "mps")
"""Device types a learner runs on (as the experiment specs' ``device`` field)."""


def device_name(value: Any):
    """A torch device or its name ('cpu', 'cuda', 'cuda:1', 'mps'); returns the torch.device.

    Only the name is checked here (specs are validated on machines without the device);
    :func:`check_device_available` checks that this machine has it, when a fit starts.
    """
    import torch

    allowed = "'cpu', 'cuda', 'cuda:<index>' or 'mps' (or the torch.device)"
    try:
        device = value if isinstance(value, torch.device) else None
        if device is None and isinstance(value, str):
            device = torch.device(value)
    except (TypeError, RuntimeError, ValueError):
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise ValueError(f"must be {allowed}, got {_short(value)}")
    return device


def check_device_available(device) -> None:
    """One line when this machine lacks ``device`` (instead of torch's AssertionError)."""
    import torch

    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {str(device)!r}: CUDA is not available on this machine "
                "(torch.cuda.is_available() is False); use device='cpu'"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(
                f"device {str(device)!r} does not exist: this machine has {count} CUDA "
                f"device(s), cuda:0 … cuda:{count - 1}"
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            f"device {str(device)!r}: MPS is not available on this machine; use device='cpu'"
        )


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


def real_tensor(value, name: str):
    """``value`` as a real (float, int or bool) tensor, else one-line TypeError."""
    import torch

    if value is None:
        raise TypeError(f"{name} must be an array of numbers, got None")
    try:
        tensor = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TypeError(
            f"{name} must be an array of real numbers, got {type(value).__name__} ({first})"
        ) from None
    if tensor.is_complex():
        raise ValueError(f"Complex data not supported: {name} has dtype {tensor.dtype}")
    return tensor


def check_finite_in(dtype, name: str, tensor) -> None:
    """Every entry finite in ``dtype`` (the model's): NaN/inf, or beyond ±finfo(dtype).max —
    finite in float64 but ∞ once cast to float32 (x = 1e300) — is one ValueError."""
    import torch

    if tensor.numel() == 0 or not tensor.is_floating_point():
        return  # integers and booleans are finite, and |int64| < 9.3e18 fits every float
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    low, high = torch.aminmax(tensor.detach())  # no |X| copy
    largest = max(-float(low), float(high))
    bound = torch.finfo(dtype).max
    if largest > bound:
        short = str(dtype).removeprefix("torch.")
        raise ValueError(
            f"{name} has values up to {largest:.3g} in magnitude, beyond the largest {short} "
            f"({bound:.3g}): they overflow the model's dtype; rescale {name} or use "
            "dtype='float64'"
        )


def check_arrays(X, y, d: int | None = None, names: tuple[str, str] = ("X", "y"), dtype=None):
    """Tensors (X, y) of shapes (n, d) and (n,), real, n ≥ 1, d ≥ 1, finite — in ``dtype``
    when given (the model's: a float64 1e300 overflows float32): one-line error if not."""
    x_name, y_name = names
    X = real_tensor(X, x_name)
    if y is None:
        raise ValueError(f"{y_name} is required: this learner is a regressor (y must not be None)")
    y = real_tensor(y, y_name)
    if X.ndim != 2:
        raise ValueError(f"{x_name} must be 2-D (n, d), got shape {tuple(X.shape)}")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"{y_name} must be 1-D with {X.shape[0]} entries, got shape {tuple(y.shape)}"
        )
    if X.shape[0] < 1:
        raise ValueError(f"{x_name} must have at least one row")
    if X.shape[1] < 1:
        raise ValueError(
            f"{x_name} must have at least one column (feature), got shape {tuple(X.shape)}"
        )
    if d is not None and X.shape[1] != d:
        raise ValueError(f"{x_name} has {X.shape[1]} features, but the model expects {d}")
    import torch

    for name, tensor in ((x_name, X), (y_name, y)):
        check_finite_in(dtype if dtype is not None else torch.float64, name, tensor)
    return X, y
