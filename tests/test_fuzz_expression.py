"""Property-based fuzzing of the target-expression parser (hypothesis).

Three generators:

- valid expressions built together with a numpy function that evaluates the same thing
  directly: the parsed polynomial must equal it at random points, or the parser must refuse
  with a one-line limit error;
- hostile token soup (names, numbers, operators, Unicode look-alikes, Python syntax): a
  polynomial or a one-line ValueError, nothing else;
- products and powers of wide sums: refused or computed, and in either case no product of
  more than ``max_work`` coefficient pairs is ever formed (the bound is decided first).

Time is bounded by bounding the work (small limits passed to the parser, checked by
recording every product formed) and by hypothesis' per-example deadline, not by a timing
assertion. Examples are derandomised so CI sees the same cases every run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.polynomial import hermite_e

from replearn.expression import _Interpreter, parse_polynomial
from replearn.limits import LimitError

R = 3
LIMITS = dict(max_degree=12, max_terms=2_000, max_work=50_000)
FUZZ = settings(
    max_examples=300,
    deadline=timedelta(seconds=5),
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@dataclass(frozen=True, repr=False)
class Node:
    """An expression, its direct evaluation, and a bound on |every intermediate value|."""

    text: str
    value: object  # z (n, R) -> (n,)
    magnitude: object  # z -> (n,) ≥ |value| and ≥ the magnitude of every sub-expression

    def __repr__(self) -> str:
        return f"Node({self.text!r})"


def He(k: int, t: np.ndarray) -> np.ndarray:
    coefficients = np.zeros(k + 1)
    coefficients[k] = 1.0
    return hermite_e.hermeval(t, coefficients)


def he_abs_coefficients(k: int) -> np.ndarray:
    """|coefficients| of He_k in the monomial basis: Σ|c_n||t|^n bounds |He_k(t)|."""
    basis = np.zeros(k + 1)
    basis[k] = 1.0
    return np.abs(hermite_e.herme2poly(basis))


def constant(c: float) -> Node:
    return Node(repr(c), lambda z: np.full(z.shape[0], c), lambda z: np.full(z.shape[0], abs(c)))


def variable(i: int) -> Node:
    return Node(f"z{i + 1}", lambda z: z[:, i], lambda z: np.abs(z[:, i]))


leaves = st.one_of(
    st.sampled_from([0.0, 1.0, 2.0, 3.0, 0.5, 1.25, 7.0]).map(constant),
    st.integers(0, R - 1).map(variable),
)


def combine(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    def add(a: Node, b: Node) -> Node:
        return Node(
            f"({a.text} + {b.text})",
            lambda z: a.value(z) + b.value(z),
            lambda z: a.magnitude(z) + b.magnitude(z),
        )

    def sub(a: Node, b: Node) -> Node:
        return Node(
            f"({a.text} - {b.text})",
            lambda z: a.value(z) - b.value(z),
            lambda z: a.magnitude(z) + b.magnitude(z),
        )

    def mul(a: Node, b: Node) -> Node:
        return Node(
            f"({a.text} * {b.text})",
            lambda z: a.value(z) * b.value(z),
            lambda z: np.maximum(a.magnitude(z) * b.magnitude(z), a.magnitude(z) + b.magnitude(z)),
        )

    def div(a: Node, c: float) -> Node:
        return Node(
            f"({a.text} / {c!r})",
            lambda z: a.value(z) / c,
            lambda z: a.magnitude(z) * max(1.0, 1.0 / abs(c)),
        )

    def power(a: Node, k: int, caret: bool) -> Node:
        op = "^" if caret else "**"
        return Node(
            f"({a.text}){op}{k}",
            lambda z: a.value(z) ** k,
            lambda z: np.maximum(a.magnitude(z), 1.0) ** max(k, 1),
        )

    def hermite(a: Node, k: int) -> Node:
        weights = he_abs_coefficients(k)
        return Node(
            f"He{k}({a.text})",
            lambda z: He(k, a.value(z)),
            lambda z: (
                sum(w * np.maximum(a.magnitude(z), 1.0) ** n for n, w in enumerate(weights))
                + a.magnitude(z)
            ),
        )

    def negate(a: Node) -> Node:
        return Node(f"-{a.text}", lambda z: -a.value(z), a.magnitude)

    return st.one_of(
        st.builds(add, children, children),
        st.builds(sub, children, children),
        st.builds(mul, children, children),
        st.builds(div, children, st.sampled_from([2.0, 0.5, 3.0, -4.0])),
        st.builds(power, children, st.integers(0, 4), st.booleans()),
        st.builds(hermite, children, st.integers(0, 4)),
        st.builds(negate, children),
    )


expressions = st.recursive(leaves, combine, max_leaves=12)


@pytest.fixture
def products(monkeypatch):
    """Sizes of every array of coefficient pairs the interpreter forms."""
    sizes = [0]
    original = _Interpreter.combine

    def recording(self, keys, values, variables):
        sizes.append(len(keys))
        return original(self, keys, values, variables)

    monkeypatch.setattr(_Interpreter, "combine", recording)
    return sizes


def evaluate(poly: dict[tuple[int, ...], float], z: np.ndarray) -> np.ndarray:
    out = np.zeros(z.shape[0])
    for exponents, coefficient in poly.items():
        out += coefficient * np.prod(z ** np.array(exponents), axis=1)
    return out


def assert_limit_error(err: ValueError) -> None:
    message = str(err)
    assert "\n" not in message and len(message) < 500
    assert isinstance(err, LimitError), message
    assert "limit expression_" in message and "raise it with" in message


@FUZZ
@given(node=expressions, seed=st.integers(0, 2**16))
def test_valid_expressions_equal_direct_evaluation_or_are_refused(node, seed, products):
    del products[1:]
    try:
        poly = parse_polynomial(node.text, R, **LIMITS)
    except ValueError as err:
        assert_limit_error(err)
        assert max(products) <= LIMITS["max_work"]
        return
    assert max(products) <= max(LIMITS["max_work"], 2 * LIMITS["max_terms"])
    assert len(poly) <= LIMITS["max_terms"]
    assert all(sum(k) <= LIMITS["max_degree"] for k in poly)
    z = np.random.default_rng(seed).uniform(-1.5, 1.5, size=(16, R))
    # Both sides round each operation with relative error ≤ 2⁻⁵³ of the magnitudes involved;
    # with ≤ 12 leaves, degree ≤ 12 and ≤ 2 000 terms, fewer than 10⁵ roundings touch any
    # value, each bounded by `magnitude` (|every intermediate|): error ≤ 10⁵·1.1·10⁻¹⁶·M.
    tolerance = 1e-10 * (1.0 + node.magnitude(z))
    np.testing.assert_array_less(np.abs(evaluate(poly, z) - node.value(z)), tolerance)


TOKENS = [
    "z1", "z2", "z3", "z0", "z4", "z99999999999", "He2", "He3", "He31", "He999999999999",
    "sqrt", "pi", "x", "e", "exp", "lambda", "__import__", "1", "2.5", "0", "1e308",
    "1e-320", "10", "(", ")", "(", ")", "+", "-", "*", "/", "**", "^", ",", ".", ":", "[",
    "]", "'", "=", "%", "//", "@", "~", " ", "ｚ1", "²", "＋", "\u00a0", "\n", "#",
]  # fmt: skip


@FUZZ
@given(tokens=st.lists(st.sampled_from(TOKENS), min_size=0, max_size=40))
def test_hostile_text_gives_a_polynomial_or_one_line(tokens, products):
    del products[1:]
    text = "".join(tokens)
    try:
        poly = parse_polynomial(text, R, **LIMITS)
    except ValueError as err:
        message = str(err)
        assert "\n" not in message.strip() and len(message) < 500, message
        assert max(products) <= LIMITS["max_work"]
        return
    assert isinstance(poly, dict) and len(poly) <= LIMITS["max_terms"]
    assert all(math.isfinite(v) and v != 0.0 for v in poly.values())


wide_sums = st.lists(st.integers(1, R), min_size=1, max_size=R, unique=True).map(
    lambda used: "(1 + " + " + ".join(f"z{i}" for i in used) + ")"
)


@FUZZ
@given(
    factors=st.lists(
        st.tuples(wide_sums, st.integers(1, 30), st.sampled_from(["**", "^", "He"])),
        min_size=1,
        max_size=3,
    )
)
def test_products_of_powers_are_bounded_before_they_are_formed(factors, products):
    del products[1:]
    parts = [f"He{k}{s}" if op == "He" else f"{s}{op}{k}" for s, k, op in factors]
    text = " * ".join(parts)
    try:
        poly = parse_polynomial(text, R, **LIMITS)
    except ValueError as err:
        assert_limit_error(err)
    else:
        assert len(poly) <= LIMITS["max_terms"]
        assert all(sum(k) <= LIMITS["max_degree"] for k in poly)
    # whatever the outcome, no product larger than the work limit was formed
    assert max(products) <= LIMITS["max_work"]
