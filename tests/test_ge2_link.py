"""The exponent ladder's GE2 link: information exponent 3, generative exponent 2.

g(z) = (v/2)·sign(z)·(1 + 2·sign(z² − s²) − sign(z² − r²)) ∈ {−v, 0, v} (derivation in
scripts/ge2_link.py). Its expression is owned by the specs configs/exponent-ladder/ge2-*.yaml;
these tests read it from there, check that its printed constants solve the defining equations,
and that replearn's quadrature and exponent code find k = 3, k* = 2 — and that they would not
if the construction were broken (a moved threshold, no dead zone).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml

import replearn as rl
from replearn import theory
from replearn.theory.exponents import (
    conditional_hermite_energy,
    generative_exponent,
    information_exponent,
)

SPECS = sorted((Path(rl.__file__).parent / "configs" / "exponent-ladder").glob("ge2-*.yaml"))
NUMBER = r"([0-9.]+(?:e-?[0-9]+)?)"
FORM = rf"{NUMBER}\*sign\(z1\)\*\(1 \+ 2\*sign\(z1\^2 - {NUMBER}\) - sign\(z1\^2 - {NUMBER}\)\)"


def _expr() -> str:
    exprs = {yaml.safe_load(path.read_text(encoding="utf-8"))["target"]["expr"] for path in SPECS}
    assert len(SPECS) >= 3 and len(exprs) == 1, "every ge2-* spec names the same link"
    return exprs.pop()


EXPR = _expr()
HALF_V, S2, R2 = (float(x) for x in re.fullmatch(FORM, EXPR).groups())


def phi(z: float) -> float:
    return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def upper_tail(z: float) -> float:  # P(Z > z)
    return math.erfc(z / math.sqrt(2)) / 2


def target(expr: str = EXPR):
    return rl.MultiIndexTarget.from_expression(expr, d=6, seed=0)


def test_the_constants_solve_the_defining_equations():
    # the constants are printed with 17 significant digits: each equation holds to a few ulps
    # of its terms (~0.3), far below the 1e-12 of any effect the tests below look for
    r, s, v = math.sqrt(R2), math.sqrt(S2), 2 * HALF_V
    assert abs(phi(s) - phi(r) / 2) < 1e-15  # (1): E[z·1_A] = φ(r) − 2φ(s) = 0
    assert abs(S2 - R2 - 2 * math.log(2)) < 1e-15  # (1) as s² = r² + 2 ln 2
    assert abs(2 * r * upper_tail(r) - phi(r)) < 1e-15  # (2): r maximises c₃
    assert abs(2 * v * v * upper_tail(r) - 1) < 1e-15  # E g² = 1


def test_moments_and_hermite_coefficients():
    # quadrature: Gauss–Legendre between the link's jumps; its estimated error is ~1e-14
    f = target()
    assert f.quadrature["converged"]
    assert abs(f.mean()) < 1e-12 and abs(f.norm2() - 1) < 1e-12
    r, v = math.sqrt(R2), 2 * HALF_V
    # c_α = E[g He_α]/α!: E[g He₃] = 4 ln 2·v·φ(r) (closed form, scripts/ge2_link.py)
    assert f.terms[(3,)] == pytest.approx(4 * math.log(2) * v * phi(r) / 6, abs=1e-12)
    assert f.terms[(3,)] * math.sqrt(6) > 0.5  # He₃ carries 26 % of E g²
    # He₁ and He₂ (and every even degree) within their quadrature error of 0: not stored
    assert (1,) not in f.terms and (2,) not in f.terms
    assert all(alpha[0] % 2 == 1 for alpha in f.terms)
    assert information_exponent(f) == 3


def test_generative_exponent_is_two():
    f = target()
    info = conditional_hermite_energy(f, 3)
    assert info["nonzero"] == {1: False, 2: True, 3: True}
    assert generative_exponent(f) == 2
    # y takes three values and the bins are the three levels: ρ₂ is exact,
    # ρ₂ = ½ Σ_levels E[He₂ 1_level]²/P(level) with E[He₂ 1_A] = rφ(r) = E[He₂ 1_{−A}],
    # E[He₂ 1_B] = −2rφ(r), P(A) = P(−A) = P(z > r)
    r = math.sqrt(R2)
    rho2 = 2 * (r * phi(r)) ** 2 / upper_tail(r) + (2 * r * phi(r)) ** 2 / (1 - 2 * upper_tail(r))
    assert info["energy"][2] == pytest.approx(rho2 / 2, rel=1e-9)


def test_one_step_sees_the_square_transform_only():
    f = target()
    u = f.U[0]
    assert float(f.hessian().abs().max()) < 1e-12  # H = E[g He₂]·uuᵀ = 0: g is odd
    H_T = theory.transformed_hessian(f, "square", noise=0.0, noise_kind="gaussian")
    # y² = v²·1{|z| > r}: E[y² He₂] = 2v²rφ(r) along uuᵀ
    expected = 2 * (2 * HALF_V) ** 2 * math.sqrt(R2) * phi(math.sqrt(R2))
    assert float(u @ H_T @ u) == pytest.approx(expected, rel=1e-9)


def test_a_moved_threshold_gives_exponent_one():
    # s² a little off (1): E[z·1_A] ≠ 0, so y correlates with z itself
    moved = EXPR.replace(repr(S2), repr(S2 + 0.01))
    assert moved != EXPR
    f = target(moved)
    assert information_exponent(f) == 1 and generative_exponent(f) == 1


def test_without_the_dead_zone_the_generative_exponent_is_three():
    # r = 0, s² = 2 ln 2, v = 1: y = sign(z)·sign(z² − s²) = ±1 on A, −A (mirror images,
    # so E[He₂ 1_A] = E[He₂ 1_{−A}] = E[He₂]/2 = 0): y carries nothing about He₂ either.
    # (Written without sign(z1^2): replearn evaluates z1^2 in the Hermite basis, He2(z1) + 1,
    # which rounds to 0 for |z1| < 1e-8, so sign(z1^2) is 0 there — a He2 coefficient of 7e-10
    # that the fine-minus-coarse error estimate does not see.)
    no_zone = f"sign(z1)*sign(z1^2 - {2 * math.log(2)!r})"
    f = target(no_zone)
    assert information_exponent(f) == 3 and generative_exponent(f) == 3
