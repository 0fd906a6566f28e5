"""Tests for the whitelist target-expression parser replearn.expression."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.polynomial import hermite_e

from replearn import limits
from replearn.expression import MAX_DEGREE, _Interpreter, latent_dimension, parse_polynomial
from replearn.limits import LimitError


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


# -- bounded work: decided before it is done ---------------------------------------------------
HEADLINE = "(1+z1+z2+z3+z4+z5)**15*(1+z1+z2+z3+z4+z5)**15"


@pytest.fixture
def largest_product(monkeypatch):
    """Record the size of every product the interpreter forms (arrays reaching combine)."""
    sizes = [0]
    original = _Interpreter.combine

    def recording(self, keys, values, variables):
        sizes.append(len(keys))
        return original(self, keys, values, variables)

    monkeypatch.setattr(_Interpreter, "combine", recording)
    return sizes


def test_headline_product_is_refused_before_it_is_formed(largest_product):
    with pytest.raises(LimitError) as info:
        parse_polynomial(HEADLINE, 5)
    message = str(info.value)
    # each factor has C(5 + 15, 5) = 15 504 terms, the product at most C(5 + 30, 5) = 324 632
    assert "a product of 15,504 and 15,504 terms has up to 324,632 terms" in message
    assert "more than the limit expression_terms = 20,000" in message
    assert "max_terms" in message and "REPLEARN_MAX_EXPRESSION_TERMS" in message
    assert "\n" not in message
    # the largest product formed is one step of the powers: C(5+14, 5)·6 = 69 768 pairs,
    # never the 15 504² = 2.4·10⁸ pairs of the refused product
    assert max(largest_product) == 11_628 * 6


def test_work_limit_refuses_a_product_whose_result_would_fit(largest_product):
    # (1+z1+z2+z3)^15 has C(18, 3) = 816 terms; its square 816² = 665 856 pairs
    square = "(1+z1+z2+z3)**15*(1+z1+z2+z3)**15"
    with pytest.raises(LimitError, match=r"needs 665,856 exceeds the limit expression_work"):
        parse_polynomial(square, 3, max_work=600_000)
    assert max(largest_product) <= 600_000
    poly = parse_polynomial(square, 3)  # the default work limit 10⁶ admits it
    assert len(poly) == math.comb(33, 3)  # every monomial of degree ≤ 30 in 3 variables


def test_a_power_is_bounded_before_its_first_multiplication(largest_product):
    with pytest.raises(LimitError, match=r"a power \(6 terms\)\^15 has up to 15,504 terms"):
        parse_polynomial("(1+z1+z2+z3+z4+z5)**15", 5, max_terms=15_000)
    assert max(largest_product) <= 6  # only the sum 1 + z1 + … + z5 was formed, no product
    with pytest.raises(LimitError, match=r"He30 of 5 terms has up to 46,376 terms"):
        parse_polynomial("He30(z1+z2+z3+z4+z5)", 5)


def test_within_limits_is_exact():
    poly = parse_polynomial("(1+z1+z2+z3+z4+z5)**15", 5)
    assert len(poly) == math.comb(20, 5)
    # multinomial coefficient of z1^3 z2^4 z5^2 (and 1^6): 15!/(3!·4!·2!·6!)
    expected = math.factorial(15) // (6 * 24 * 2 * 720)
    assert poly[(3, 4, 0, 0, 2)] == expected


def test_limits_are_raised_by_parameter_context_or_environment(monkeypatch):
    expr = "(1+z1+z2)**12"  # C(14, 2) = 91 terms
    with pytest.raises(LimitError, match=r"up to 91 terms, more than the limit"):
        parse_polynomial(expr, 2, max_terms=90)
    assert len(parse_polynomial(expr, 2, max_terms=91)) == 91
    with limits.raised(expression_terms=90):
        with pytest.raises(LimitError):
            parse_polynomial(expr, 2)
        assert len(parse_polynomial(expr, 2, max_terms=91)) == 91  # a parameter wins
    monkeypatch.setenv("REPLEARN_MAX_EXPRESSION_DEGREE", "11")
    with pytest.raises(LimitError, match=r"exceeds the limit expression_degree = 11"):
        parse_polynomial(expr, 2)
    with limits.raised(expression_degree=12):  # the context manager wins over the environment
        assert len(parse_polynomial(expr, 2)) == 91


def test_long_sums_and_products_are_one_level_deep():
    expr = " + ".join(["z1"] * 1200)  # 6 000 characters, a left-deep chain of 1 199 additions
    assert parse_polynomial(expr, 1, max_length=10_000) == {(1,): 1200.0}
    product = " * ".join(["z1"] * 30)
    assert parse_polynomial(product, 1) == {(30,): 1.0}


def test_nesting_depth_limit():
    nested = "(" * 120 + "z1" + ")" * 120  # parentheses alone add no AST level
    assert parse_polynomial(nested, 1) == {(1,): 1.0}
    deep = "-" * 150 + "z1"  # 150 unary minus nodes and the name: 151 levels
    with pytest.raises(LimitError, match=r"nested 151 levels deep, more than the limit"):
        parse_polynomial(deep, 1)
    assert parse_polynomial(deep, 1, max_depth=151) == {(1,): 1.0}
    hermite = "He1(" * 101 + "z1" + ")" * 101
    with pytest.raises(LimitError, match=r"expression_depth = 100"):
        parse_polynomial(hermite, 1)


@pytest.mark.parametrize(
    "expr",
    ["ｚ1", "ｚ2*z1", "z1²", "z1 ＋ 1", "z1\u00a0+ 1", "He２(z1)", "z1 * 2 + ｚ1"],
)
def test_non_ascii_is_refused_the_same_way(expr):
    with pytest.raises(ValueError, match=r"non-ASCII character .* \(U\+[0-9A-F]{4}\) at position"):
        parse_polynomial(expr, 2)
    with pytest.raises(ValueError, match=r"non-ASCII character"):
        latent_dimension(expr)  # never half-read as z1 (the reason for refusing)


def test_latent_dimension_limit():
    with pytest.raises(LimitError, match=r"latent dimension z101 = 101 exceeds the limit"):
        parse_polynomial("z101", 5)
    with pytest.raises(LimitError, match=r"r = 1,000 exceeds the limit latent_dimension"):
        parse_polynomial("z1", 1000)
    with pytest.raises(LimitError, match=r"absurd index"):
        latent_dimension("z" + "9" * 5000)
    assert parse_polynomial("z101", 101, max_latent_dimension=101) == {(0,) * 100 + (1,): 1.0}


def test_many_variables_use_exact_integer_keys():
    # 40 variables: 31^41 does not fit in int64, the keys are Python integers
    expr = "z40*z1**2 - 2*z40 + He3(z17)*z39"
    poly = parse_polynomial(expr, 40)
    z = np.random.default_rng(1).normal(size=(20, 40))
    expected = z[:, 39] * z[:, 0] ** 2 - 2 * z[:, 39] + He(3, z[:, 16]) * z[:, 38]
    np.testing.assert_allclose(evaluate(poly, z), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("expr", "pattern"),
    [
        ("He" + "9" * 40 + "(z1)", r"Hermite degree 999999999999… exceeds the limit"),
        ("1" * 400 + " * z1", r"a number is too large for a float"),
        ("1" * 5000, r"not a valid expression \(SyntaxError: 'Exceeds the limit"),
        ("z1 ** 1e300", r"degree 1·1e\+300 of a power exceeds the limit expression_degree"),
    ],
)
def test_absurd_numbers_are_one_line(expr, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        parse_polynomial(expr, 1)
    assert "\n" not in str(info.value)


def test_error_messages_quote_a_short_excerpt():
    expr = "z1 + " * 900 + "sin(z1)"
    with pytest.raises(ValueError, match=r"unknown function 'sin'") as info:
        parse_polynomial(expr, 1)
    message = str(info.value)
    assert f"{expr[:80]!r}…" in message and len(message) < 200


def test_hermite_of_zero_and_degree_zero():
    # found by tests/test_fuzz_expression.py: He0 of the zero polynomial (no terms)
    assert parse_polynomial("He0(0)", 1) == {(0,): 1.0}
    assert parse_polynomial("He2(0) + (z1 - z1)**0", 1) == {}
