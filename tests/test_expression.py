"""Tests for the whitelist target-expression parser replearn.expression."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.polynomial import hermite_e

from replearn.expression import MAX_DEGREE, latent_dimension, parse_polynomial


def evaluate(poly: dict[tuple[int, ...], float], z: np.ndarray) -> np.ndarray:
    """Σ c·Π z_i^{e_i} at the rows of z (n, r)."""
    out = np.zeros(z.shape[0])
    for exponents, coefficient in poly.items():
        out += coefficient * np.prod(z ** np.array(exponents), axis=1)
    return out


def He(k: int, t: np.ndarray) -> np.ndarray:
    e = np.zeros(k + 1)
    e[k] = 1.0
    return hermite_e.hermeval(t, e)


# expression, r, the same function written in numpy
GRAMMAR = [
    ("z1", 1, lambda z1: z1),
    ("3", 1, lambda z1: 3 + 0 * z1),
    ("-2.5e-1 * z1 + +z1", 1, lambda z1: 0.75 * z1),
    ("z1**3 - z1^2", 1, lambda z1: z1**3 - z1**2),
    ("(z1 + 1)**4 / 8", 1, lambda z1: (z1 + 1) ** 4 / 8),
    ("2**3 * z1 + 2^0.0", 1, lambda z1: 8 * z1 + 1),
    ("He2(z1)/2 + He4(z1)/(4*sqrt(3))", 1, lambda z1: He(2, z1) / 2 + He(4, z1) / (4 * 3**0.5)),
    ("He0(z1) + He1(z1) + He7(z1)", 1, lambda z1: 1 + z1 + He(7, z1)),
    ("pi * z1 / sqrt(pi)", 1, lambda z1: math.sqrt(math.pi) * z1),
    ("z1*z2 - 0.5*z3**3 + 2", 3, lambda z1, z2, z3: z1 * z2 - 0.5 * z3**3 + 2),
    ("He3((z1 + z2)/sqrt(2))", 2, lambda z1, z2: He(3, (z1 + z2) / 2**0.5)),
    ("He2(z1*z2) - He2(z2)**2", 2, lambda z1, z2: He(2, z1 * z2) - He(2, z2) ** 2),
    ("z2", 3, lambda z1, z2, z3: z2),
    ("-(z1 - z2)^2 / 4", 2, lambda z1, z2: -((z1 - z2) ** 2) / 4),
    ("z1**30", 1, lambda z1: z1**30),
]


@pytest.mark.parametrize(("expr", "r", "fn"), GRAMMAR, ids=[g[0] for g in GRAMMAR])
def test_grammar_evaluates_like_numpy(expr, r, fn):
    poly = parse_polynomial(expr, r)
    assert all(len(k) == r for k in poly)
    assert all(v != 0.0 and math.isfinite(v) for v in poly.values())
    z = np.random.default_rng(0).uniform(-1.5, 1.5, size=(50, r))
    expected = fn(*z.T)
    np.testing.assert_allclose(evaluate(poly, z), expected, rtol=1e-10, atol=1e-10)


def test_caret_is_a_power_with_the_precedence_of_double_star():
    # Python's "^" is XOR and binds looser than + and -: "z1^2 + 3" must not be z1^(2+3)
    assert parse_polynomial("z1^2 + 3", 1) == {(2,): 1.0, (0,): 3.0}
    assert parse_polynomial("-z1^2", 1) == {(2,): -1.0}
    assert parse_polynomial("2*z1^3/4", 1) == {(3,): 0.5}
    assert parse_polynomial("2^3^2", 1) == parse_polynomial("2**9", 1) == {(0,): 512.0}


def test_exact_monomials():
    assert parse_polynomial("z1**2", 1) == {(2,): 1.0}
    assert parse_polynomial("He2(z1)", 1) == {(2,): 1.0, (0,): -1.0}
    assert parse_polynomial("z1*z2 + z2*z1", 2) == {(1, 1): 2.0}
    assert parse_polynomial("z1 - z1", 1) == {}  # zero coefficients are dropped
    assert parse_polynomial("  z1  ", 3) == {(1, 0, 0): 1.0}


def test_latent_dimension():
    assert latent_dimension("He2(z1)/2") == 1
    assert latent_dimension("z2 * z11 + z3") == 11
    assert latent_dimension("3 + pi") == 0
    assert latent_dimension("He4(z1) + z10") == 10


# (expression, r, pattern the ValueError message must match)
BAD = [
    ("__import__('os')", 1, r"unknown function '__import__'"),
    ("__import__('os').system('true')", 1, r"Attribute is not allowed|only He<k>"),
    ("z1.real", 1, r"Attribute is not allowed"),
    ("z1**1000", 1, r"exceeds the limit expression_degree = 30"),
    ("(z1+1)**99", 1, r"exceeds the limit expression_degree = 30"),
    ("z1**31", 1, r"exceeds the limit expression_degree = 30"),
    ("He31(z1)", 1, r"exceeds the limit expression_degree = 30"),
    ("He9999999999(z1)", 1, r"exceeds the limit expression_degree = 30"),
    ("He8(z1**4)", 1, r"exceeds the limit expression_degree = 30"),
    ("z1**16 * z1**16", 1, r"exceeds the limit expression_degree = 30"),
    ("2**1001", 1, r"power 1001 too large"),
    ("z1 * 10**400", 1, r"power 400 overflows"),
    ("lambda: 0", 1, r"Lambda is not allowed"),
    ("[z1, z1]", 1, r"List is not allowed"),
    ("(z1, z1)", 1, r"Tuple is not allowed"),
    ("{1: z1}", 1, r"Dict is not allowed"),
    ("z1 if z1 else 0", 1, r"IfExp is not allowed"),
    ("z1 < 1", 1, r"Compare is not allowed"),
    ("He2(z1, k=1)", 1, r"only He<k>\(…\) and sqrt\(…\) with one argument"),
    ("He2(x=z1)", 1, r"only He<k>\(…\) and sqrt\(…\) with one argument"),
    ("He2(z1, z1)", 1, r"only He<k>\(…\) and sqrt\(…\) with one argument"),
    ("He2()", 1, r"only He<k>\(…\) and sqrt\(…\) with one argument"),
    ("z1 / z1", 1, r"a divisor must be a constant"),
    ("1 / (z1 + 1)", 1, r"a divisor must be a constant"),
    ("z1 / 0", 1, r"division by zero"),
    ("z1 / (2 - 2)", 1, r"division by zero"),
    ("sin(z1)", 1, r"unknown function 'sin' \(allowed: He<k>, sqrt\)"),
    ("exp(z1)", 1, r"unknown function 'exp'"),
    ("sqrt(z1)", 1, r"the argument of sqrt must be a constant"),
    ("sqrt(-1)", 1, r"sqrt of a negative number"),
    ("z3", 2, r"variable z3 exceeds the latent dimension r=2"),
    ("z1 + z3", 2, r"variable z3 exceeds the latent dimension r=2"),
    ("x1", 2, r"unknown name 'x1' \(allowed: z1…z2, pi\)"),
    ("z0", 2, r"unknown name 'z0'"),
    ("e", 1, r"unknown name 'e'"),
    ("1e400 * z1", 1, r"non-finite number inf"),
    ("1e300 * 1e300 * z1", 1, r"overflows to a non-finite value"),
    ("1e300 * 1e300 * z1 + z1**2", 1, r"overflows to a non-finite value"),
    ("z1 / (1e300 * 1e300)", 1, r"overflows to a non-finite value"),
    ("z1 ** (1e300 * 1e300)", 1, r"overflows to a non-finite value"),
    ("He3(1e200 * z1)", 1, r"overflows to a non-finite value"),
    ("z1 ** -1", 1, r"powers must be integers >= 0, got -1"),
    ("z1 ** 0.5", 1, r"powers must be integers >= 0, got 0.5"),
    ("z1 ** z1", 1, r"an exponent must be a constant"),
    ("z1 % 2", 1, r"operator Mod is not allowed"),
    ("z1 // 2", 1, r"operator FloorDiv is not allowed"),
    ("z1 @ z1", 1, r"operator MatMult is not allowed"),
    ("~z1", 1, r"UnaryOp is not allowed"),
    ("not z1", 1, r"UnaryOp is not allowed"),
    ("'z1'", 1, r"unsupported literal 'z1'"),
    ("True * z1", 1, r"unsupported literal True"),
    ("1j * z1", 1, r"unsupported literal 1j"),
    ("z1 +", 1, r"not a valid expression \(SyntaxError"),
    ("z1 = 1", 1, r"not a valid expression \(SyntaxError"),
    ("import os", 1, r"not a valid expression \(SyntaxError"),
    ("(" * 1000 + "z1" + ")" * 1000, 1, r"not a valid expression|nested too deeply"),
    ("-" * 100_000 + "z1", 1, r"characters exceed the limit expression_length = 5,000"),
    ("z1 +" * 2000 + " z1", 1, r"characters exceed the limit expression_length = 5,000"),
]


@pytest.mark.parametrize(("expr", "r", "pattern"), BAD, ids=[b[0][:40] for b in BAD])
def test_bad_expressions_are_value_errors(expr, r, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        parse_polynomial(expr, r)
    assert "\n" not in str(info.value).strip()  # one line


@pytest.mark.parametrize("expr", ["", "   ", None, 42])
def test_empty_or_non_string(expr):
    with pytest.raises(ValueError, match=r"target expression must be a non-empty string"):
        parse_polynomial(expr, 1)


def test_deep_nesting_is_a_value_error():
    # the interpreter recursion must not escape as RecursionError
    expr = "-" * 4_000 + "z1"
    with pytest.raises(ValueError, match=r"bad target expression"):
        parse_polynomial(expr, 1)


def test_nothing_is_executed(tmp_path, monkeypatch):
    marker = tmp_path / "executed"
    monkeypatch.chdir(tmp_path)
    for expr in [
        f"__import__('pathlib').Path('{marker.name}').touch()",
        f"open('{marker.name}', 'w')",
        "(lambda: open('executed', 'w'))()",
    ]:
        with pytest.raises(ValueError, match=r"bad target expression"):
            parse_polynomial(expr, 1)
    assert not marker.exists()


def test_maximum_degree_is_accepted():
    poly = parse_polynomial(f"He{MAX_DEGREE}(z1)", 1)
    assert max(sum(k) for k in poly) == MAX_DEGREE
    assert poly[(MAX_DEGREE,)] == 1.0
