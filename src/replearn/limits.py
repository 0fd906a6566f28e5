"""Every limit replearn puts on the size of the work it accepts, in one place.

A limit exists so that a short input cannot make replearn work or allocate without bound:
the size of the work is computed from the input *before* it is done, compared with the
limit, and refused with one line that gives the computed size, the limit, and how to raise
it. A limit is never raised silently; three deliberate ways raise it, the first that
applies wins:

1. a function parameter where the function offers one (``parse_polynomial(max_terms=…)``,
   ``MultiIndexTarget.from_expression(max_terms=…)``, ``load_yaml(max_alias_nodes=…)``);
2. the context manager :func:`raised` — ``with limits.raised(expression_terms=10**5): …``;
3. the environment variable ``REPLEARN_MAX_<NAME>`` (upper-case name), e.g.
   ``REPLEARN_MAX_EXPRESSION_TERMS=100000``.

Otherwise the default below holds. :func:`get` reads the limit in force, :func:`check`
compares a computed size with it. The memory check :func:`check_memory` compares the bytes
a computation needs with the memory of the machine (RAM on the CPU, the device's total
memory on CUDA); the ``memory_bytes`` limit, when set, replaces the measured amount.

The ``*_bytes`` helpers at the end are the building blocks of the learners' memory
estimates (pure functions of sizes). Each learner owns its estimate
(``BaseLearner._fit_memory_bytes``); the engine's pre-run check asks the learner.
"""

from __future__ import annotations

import contextvars
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = [
    "LIMITS",
    "Limit",
    "LimitError",
    "available_memory_bytes",
    "check",
    "check_memory",
    "dense_kernel_bytes",
    "falkon_bytes",
    "excerpt",
    "format_bytes",
    "get",
    "grid_cells",
    "item_bytes",
    "raised",
    "ridge_head_bytes",
]

EXCERPT_CHARS = 80


class LimitError(ValueError):
    """A computed size exceeds a limit (one line: the size, the limit, how to raise it)."""


@dataclass(frozen=True)
class Limit:
    """One limit: its name, default, what it bounds and where a caller raises it."""

    name: str
    default: int | None
    bounds: str
    parameter: str = ""

    @property
    def env(self) -> str:
        return f"REPLEARN_MAX_{self.name.upper()}"

    def how_to_raise(self) -> str:
        ways = [f"limits.raised({self.name}=…)", f"{self.env}=…"]
        if self.parameter:
            ways.insert(0, self.parameter)
        return "raise it with " + " or ".join(ways)


_LIMITS = (
    # -- expressions (replearn.expression, replearn.targets) --------------------------------------
    Limit(
        "expression_length",
        5_000,
        "characters of a target expression",
        "parse_polynomial(max_length=…)",
    ),
    Limit(
        "expression_depth",
        100,
        "nesting depth of a target expression (parentheses, calls, powers; a long sum or "
        "product of terms counts as one level)",
        "parse_polynomial(max_depth=…)",
    ),
    Limit(
        "expression_degree",
        30,
        "polynomial degree of a target expression and of every sub-expression",
        "parse_polynomial(max_degree=…)",
    ),
    Limit(
        "expression_terms",
        20_000,
        "terms of an expanded polynomial (monomial or Hermite basis), bounded before each "
        "product is formed by min(terms(p)·terms(q), C(r + degree, r))",
        "parse_polynomial(max_terms=…)",
    ),
    Limit(
        "expression_work",
        1_000_000,
        "coefficient multiplications of one product of two expanded polynomials, "
        "terms(p)·terms(q), checked before multiplying",
        "parse_polynomial(max_work=…)",
    ),
    Limit(
        "latent_dimension",
        100,
        "latent dimension r of a target (the largest i in z1…zi)",
        "parse_polynomial(max_latent_dimension=…)",
    ),
    # -- YAML specs (replearn.experiments.yaml_strict) --------------------------------------------
    Limit("yaml_bytes", 1_000_000, "characters of a YAML spec", "load_yaml(max_bytes=…)"),
    Limit(
        "yaml_depth",
        64,
        "nesting depth of mappings and lists in a YAML spec",
        "load_yaml(max_depth=…)",
    ),
    Limit(
        "yaml_alias_nodes",
        10_000,
        "YAML nodes produced through aliases (*name), counted with the size of what each "
        "alias repeats",
        "load_yaml(max_alias_nodes=…)",
    ),
    # -- experiment grids and sizes (the engine and the CLI call check(…) with these) -------------
    Limit("grid_cells", 100_000, "runs in one experiment grid (product of the sweep sizes)"),
    Limit("seeds", 10_000, "seeds of one experiment (a count or a list)"),
    Limit("d", 1_000_000, "input dimension d"),
    Limit("width", 1_000_000, "network width m"),
    Limit("n", 10**10, "sample size n (training, holdout, test, transfer N)"),
    Limit(
        "steps",
        10**7,
        "iterations of one fit: giant steps, head GD steps (head_steps), full training's "
        "optimizer steps (n_steps, or epochs × minibatches per epoch) and epochs, Falkon's "
        "max_iter",
    ),
    Limit(
        "transform_degree",
        30,
        "degree k of the label transform 'hermite:k' (He_k is a k-term recurrence per label)",
    ),
    # -- memory -------------------------------------------------------------------------------------
    Limit(
        "memory_bytes",
        None,
        "bytes a computation may need; unset: the memory this machine reports (RAM available "
        "on the CPU, total memory of a CUDA device)",
    ),
)
LIMITS: dict[str, Limit] = {limit.name: limit for limit in _LIMITS}

_RAISED: contextvars.ContextVar[tuple[tuple[str, int], ...]] = contextvars.ContextVar(
    "replearn_raised_limits", default=()
)


def _known(name: str) -> Limit:
    if name not in LIMITS:
        raise ValueError(f"unknown limit {name!r}; known: {', '.join(LIMITS)}")
    return LIMITS[name]


def _positive_int(name: str, value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"limit {name} ({where}) must be an integer ≥ 1, got {excerpt(value)}")
    return value


def get(name: str) -> int | None:
    """The limit in force: :func:`raised` context, else ``REPLEARN_MAX_<NAME>``, else default."""
    limit = _known(name)
    overrides = dict(_RAISED.get())
    if name in overrides:
        return overrides[name]
    text = os.environ.get(limit.env)
    if text is not None and text.strip():
        try:
            value = int(text.strip().replace("_", ""))
        except ValueError:
            raise ValueError(
                f"environment variable {limit.env} must be an integer ≥ 1, got {excerpt(text)}"
            ) from None
        return _positive_int(name, value, limit.env)
    return limit.default


def resolve(name: str, value: int | None) -> int | None:
    """A function parameter if given (validated), else :func:`get`."""
    if value is None:
        return get(name)
    return _positive_int(name, value, "parameter")


@contextmanager
def raised(**values: int) -> Iterator[None]:
    """Change limits inside a ``with`` block: ``with raised(expression_terms=10**5): …``.

    Despite its name it sets the value given (a test may lower a limit); it is scoped to
    the block and to the current thread or task (a :mod:`contextvars` variable).
    """
    for name, value in values.items():
        _known(name)
        _positive_int(name, value, "limits.raised")
    token = _RAISED.set(tuple({**dict(_RAISED.get()), **values}.items()))
    try:
        yield
    finally:
        _RAISED.reset(token)


def check(name: str, size: int | float, what: str, limit: int | None = None) -> None:
    """Raise :class:`LimitError` when ``size`` (computed before the work) exceeds the limit.

    ``what`` says what was counted, e.g. ``"the grid (3 methods × 2 d × 10 n × 10 seeds)"``;
    ``limit`` overrides :func:`get` (a function parameter).
    """
    bound = resolve(name, limit)
    if bound is not None and size > bound:
        raise LimitError(
            f"{what}: {_count(size)} exceeds the limit {name} = {bound:,}; "
            f"{_known(name).how_to_raise()}"
        )


def _count(size: int | float) -> str:
    if isinstance(size, int) and size >= 10**15:
        return f"about 10^{math.log10(size):.1f}"
    return f"{size:,}" if isinstance(size, int) else f"{size:.4g}"


def excerpt(value: object, chars: int = EXCERPT_CHARS) -> str:
    """``repr`` of a value cut to ``chars`` characters plus "…", for error messages."""
    if isinstance(value, str):
        shown = value if len(value) <= chars else value[:chars]
        text = repr(shown)
        return text if len(value) <= chars else text + "…"
    text = _bounded_repr(value, chars + 1)
    return text if len(text) <= chars else text[:chars] + "…"


def _bounded_repr(value: object, chars: int) -> str:
    """repr of nested lists/dicts that stops after ``chars`` characters (no full expansion)."""
    import reprlib

    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxdict, short.maxstring, short.maxother = (
        4,
        chars,
        chars,
        chars,
        chars,
    )
    return short.repr(value)[: chars + 1]


def grid_cells(sizes: dict[str, int]) -> int:
    """Cells of a grid given each sweep's size, as a product — without expanding the grid."""
    cells = 1
    for name, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"grid size of {name} must be an integer ≥ 0, got {excerpt(size)}")
        cells *= size
    return cells


# -- memory -------------------------------------------------------------------------------------
def format_bytes(n_bytes: float) -> str:
    """Bytes in decimal units: 8.0e10 → '80.0 GB'."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{int(n_bytes)} B"


def available_memory_bytes(device: str = "cpu") -> tuple[int, str]:
    """(bytes, how measured) that a computation on ``device`` may use.

    CUDA: the device's total memory (``torch.cuda.get_device_properties``). CPU: the RAM
    available now (``psutil.virtual_memory().available``; without psutil, ``MemAvailable``
    of /proc/meminfo, else ``os.sysconf`` physical pages). The ``memory_bytes`` limit, when
    set, replaces the measurement.
    """
    override = get("memory_bytes")
    if override is not None:
        return override, "the memory_bytes limit"
    device = str(device)
    if device.startswith("cuda"):
        import torch

        index = torch.device(device).index
        index = torch.cuda.current_device() if index is None else index
        total = torch.cuda.get_device_properties(index).total_memory
        return int(total), f"the memory of {device}"
    try:
        import psutil

        return int(psutil.virtual_memory().available), "the memory available on this machine"
    except ImportError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    kilobytes = int(line.split()[1])
                    return kilobytes * 1024, "the memory available on this machine"
    except (OSError, ValueError, IndexError):
        pass
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return int(pages), "the memory of this machine"


def check_memory(bytes_needed: float, what: str, device: str = "cpu") -> None:
    """Raise :class:`LimitError` when ``bytes_needed`` exceeds the memory of ``device``.

    ``what`` names the allocation, e.g. ``"width 100000 at d = 10: the 100000×100000
    float64 Gram matrix"``; the message reads "…needs 80.0 GB, more than the 23.4 GB …".
    """
    if not math.isfinite(bytes_needed) or bytes_needed < 0:
        raise ValueError(f"bytes_needed must be a finite number ≥ 0, got {bytes_needed!r}")
    available, source = available_memory_bytes(device)
    if bytes_needed > available:
        raise LimitError(
            f"{what} needs {format_bytes(bytes_needed)}, more than the "
            f"{format_bytes(available)} of {source}; reduce the size, or "
            f"{LIMITS['memory_bytes'].how_to_raise()} (bytes) if you know it fits"
        )


_ITEM_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}


def _item_bytes(dtype: object) -> int:
    name = str(dtype).removeprefix("torch.")
    if name not in _ITEM_BYTES:
        raise ValueError(f"dtype must be one of {', '.join(_ITEM_BYTES)}, got {excerpt(dtype)}")
    return _ITEM_BYTES[name]


def item_bytes(dtype: object) -> int:
    """Bytes of one element of ``dtype`` (a torch dtype or its name): 2, 4 or 8.

    Examples
    --------
    >>> item_bytes("float32"), item_bytes("torch.float64")
    (4, 8)
    """
    return _item_bytes(dtype)


def ridge_head_bytes(n_features: int, d: int, chunk_size: int, dtype: object = "float32") -> int:
    """Bytes of a streamed ridge head on p = ``n_features`` features.

    A chunk of features (chunk_size × p, model dtype) and its input (chunk_size × d,
    float64), plus five p × p float64 matrices: the Gram matrix G = FᵀF/n, the holdout
    moments F_hᵀF_h, and G's eigendecomposition — its eigenvectors and the 2p² workspace of
    LAPACK's divide-and-conquer ``syevd`` (the λ-path; measured peaks in
    tests/test_memory_estimates.py).
    """
    item = _item_bytes(dtype)
    return chunk_size * n_features * item + chunk_size * d * 8 + 5 * n_features**2 * 8


def dense_kernel_bytes(n_samples: int, d: int) -> int:
    """Bytes of exact kernel ridge on n samples: the n × n float64 kernel matrix and its
    eigendecomposition for the λ-path (eigenvectors and ``syevd``'s 2n² workspace: four
    n × n in all; a fixed λ's Cholesky needs less), plus the data (n × d float64)."""
    return 4 * n_samples**2 * 8 + n_samples * d * 8


def falkon_bytes(n_samples: int, n_centers: int, d: int, n_lambdas: int = 49) -> int:
    """Bytes of Falkon on n samples with M centres: the data (n × d float64) and residuals,
    seven M × M float64 matrices (the most alive at once while the preconditioner is set up:
    K_MM, its jittered copy, L, LᵀL/M, and the eigenvectors and ``syevd``'s 2M² workspace
    of its eigendecomposition), the CG state for every λ (five M × L) and a kernel block
    (2¹⁹ entries or one row of M)."""
    return (
        n_samples * (d + 2) * 8
        + 7 * n_centers**2 * 8
        + 5 * n_centers * n_lambdas * 8
        + max(2**19, n_centers) * 8
    )
