"""Information and generative exponents, and the leap structure, on links known by hand."""

from __future__ import annotations

import math

import pytest
import scipy.optimize

import replearn as rl
from replearn.theory.exponents import (
    conditional_hermite_energy,
    generative_exponent,
    information_exponent,
    leap_complexity,
    leap_structure,
)


def target(expr: str, **kwargs):
    return rl.MultiIndexTarget.from_expression(expr, d=6, seed=0, **kwargs)


# -- the "exponent 4" link (Damian, Pillaud-Vivien, Lee & Bruna 2024 build such links) -------
#
# y = 1{a < |z| < b}. A set symmetric in z has E[He_k(z) 1_A] = 0 for every odd k. And
# ∫_a^b He_2 φ = [−He_1 φ]_a^b = aφ(a) − bφ(b), so with aφ(a) = bφ(b) (a < 1 < b: zφ(z) rises
# then falls) E[He_2 1_A] = 0, and the same holds for the complement (E He_2 = 0). So y, which
# takes two values, carries nothing about He_1, He_2, He_3: k* = 4 (E[He_4 1_A] =
# He_3(a)φ(a) − He_3(b)φ(b) ≠ 0 for a = 1/2).
A_LOW = 0.5
A_HIGH = scipy.optimize.brentq(
    lambda z: z * math.exp(-z * z / 2) - A_LOW * math.exp(-(A_LOW**2) / 2), 1.0, 5.0, xtol=1e-15
)
EXPONENT_FOUR = f"(1 - sign((z1^2 - {A_LOW}^2)*(z1^2 - {A_HIGH!r}^2)))/2"


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_information_exponent_of_hermite_polynomials(k):
    assert information_exponent(target(f"He{k}(z1)")) == k
    assert information_exponent(target(f"He{k}(z1) + He{k + 2}(z1)")) == k


@pytest.mark.parametrize(
    ("expr", "expected"),
    [("tanh(z1)", 1), ("sign(z1)", 1), ("z1^2", 2), ("abs(z1)", 2), ("relu(z1)", 1),
     ("cos(z1)", 2), ("He2(z1) + He3(z1)*z2", 2), (EXPONENT_FOUR, 4)],
)  # fmt: skip
def test_information_exponent_of_links(expr, expected):
    assert information_exponent(target(expr)) == expected


def test_constant_target_has_no_exponent():
    t = rl.MultiIndexTarget.from_expression("z1 - z1 + 2", d=3, normalize=False)
    with pytest.raises(ValueError, match="is constant"):
        information_exponent(t)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("He1(z1)", 1),
        ("He2(z1)", 2),
        # He₃: information exponent 3 but generative exponent 1, not 2: y² exposes degree 2
        # (ρ_2 > 0 below), yet y itself tells the sign of z on {|y| > 2}:
        # He₃(z) − 2 = (z − 2)(z + 1)², so {y > 2} = {z > 2} and E[z·1{y > 2}] = φ(2) > 0.
        ("He3(z1)", 1),
        ("He4(z1)", 2),  # even: every odd ζ_k vanishes by symmetry
        ("z1^2", 2),
        ("sign(z1)", 1),
        ("tanh(z1)", 1),
        ("abs(z1)", 2),
        (EXPONENT_FOUR, 4),
    ],
)
def test_generative_exponent_noiseless(expr, expected):
    t = target(expr)
    assert generative_exponent(t) == expected <= information_exponent(t)  # T(y) = y: k* ≤ k


def test_he3_square_transform_sees_degree_two():
    info = conditional_hermite_energy(target("He3(z1)"), max_degree=3)
    assert info["nonzero"] == {1: True, 2: True, 3: True}
    # E[He_1 1{y > 2}] = φ(2): a lower bound of E_y[ζ_1²] is φ(2)²/P(z > 2)
    assert info["energy"][1] >= math.exp(-4) / (2 * math.pi) / (0.5 * math.erfc(2 / math.sqrt(2)))


def test_sign_value_is_exact():
    # E[z | sign z] = ±√(2/π): ρ_1 = 2/π exactly (two atoms, closed form at z = 0)
    info = conditional_hermite_energy(target("sign(z1)"), max_degree=2)
    assert info["energy"][1] == pytest.approx(2 / math.pi, abs=1e-14)
    assert info["energy"][2] <= info["tolerance"][2]


@pytest.mark.parametrize("noise_kind", ["gaussian", "rademacher"])
@pytest.mark.parametrize(("expr", "expected"), [("z1^2", 2), ("sign(z1)", 1), (EXPONENT_FOUR, 4)])
def test_generative_exponent_with_noise(expr, expected, noise_kind):
    # independent noise cannot create information: E[He_k|y] = E[E[He_k|g]|y]
    assert generative_exponent(target(expr), noise=0.5, noise_kind=noise_kind) == expected


def test_zero_tolerance_separates_exact_zeros_from_small_values():
    # EXPONENT_FOUR's b is a float: ζ_2 is off zero by ~1e-16, far below the tolerance …
    info = conditional_hermite_energy(target(EXPONENT_FOUR), max_degree=4)
    assert 0 <= info["energy"][2] <= info["tolerance"][2] < 1e-18
    # … while moving b by 1e-4 makes E[He_2 1_A] ≈ 1e-4·(bφ(b))' ≠ 0, and that is seen
    moved = EXPONENT_FOUR.replace(repr(A_HIGH), repr(A_HIGH + 1e-4))
    info = conditional_hermite_energy(target(moved), max_degree=4)
    assert info["energy"][2] > 1e3 * info["tolerance"][2]
    assert generative_exponent(target(moved)) == 2


def test_generative_exponent_needs_a_single_index():
    with pytest.raises(ValueError, match=r"single-index targets \(r = 1\), got r=2"):
        generative_exponent(target("z1*z2"))


def test_top_level_names():
    assert rl.information_exponent is information_exponent
    assert rl.generative_exponent is generative_exponent
    assert rl.theory.information_exponent is information_exponent
    assert isinstance(rl.generative_exponent(target("He4(z1)")), int)


# -- leaps -----------------------------------------------------------------------------------


def test_leap_structure_of_a_staircase():
    t = target("He2(z1) + He3(z1)*z2")
    assert leap_structure(t, leap=2)["steps"] == [[0], [1]]
    assert leap_structure(t, leap=1) == {
        "leap": 1, "steps": [], "unreached": [0, 1], "leap_complexity": 2,
    }  # fmt: skip
    assert leap_complexity(t) == 2


def test_leap_structure_of_he3():
    info = leap_structure(target("He3(z1)"), leap=2)
    assert info["steps"] == [] and info["unreached"] == [0] and info["leap_complexity"] == 3
    assert leap_structure(target("He3(z1)"), leap=3)["steps"] == [[0]]


def test_leap_one_staircase_and_summary_lines():
    t = target("z1 + z1*z2 + z1*z2*z3")
    assert leap_structure(t, leap=1)["steps"] == [[0], [1], [2]] and leap_complexity(t) == 1
    text = rl.theory.format_summary(rl.theory.summary(target("He2(z1) + He3(z1)*z2")))
    assert "leaps of <= 2      step 1: {z1}, step 2: {z2}" in text
    assert "exponents         information 2" in text
    text = rl.theory.format_summary(rl.theory.summary(target("sign(z1)")))
    assert "generative 1 (noiseless)" in text and "degree_cutoff" not in text
