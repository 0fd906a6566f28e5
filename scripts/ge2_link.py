"""The exponent ladder's link with generative exponent k* = 2 and information exponent k = 3.

    python scripts/ge2_link.py

prints the link's constants, its target expression (the one in
``configs/exponent-ladder/ge2-*.yaml``) and its Hermite coefficients and exponents as
replearn computes them.

The construction (docs/ladder.md, "A link with k* = 2 < k = 3"). z ~ N(0, 1), φ its density,
Φ̄(r) = P(z > r). For 0 < r < s let

    A = (−∞, −s] ∪ (r, s],     −A = [−s, −r) ∪ [s, ∞),     B = [−r, r],

a partition of the line, and the odd three-valued link ("sign(He₃) with a dead zone")

    g(z) = v·(1_{−A}(z) − 1_A(z))
         = (v/2)·sign(z)·(1 + 2·sign(z² − s²) − sign(z² − r²)),

0 on B, −v on A, +v on −A: for z > 0, 0 on [0, r], −v on (r, s), +v beyond s — the sign
pattern of He₃ = z³ − 3z (negative on (0, √3), positive beyond), with a dead zone [−r, r]
and the cut moved from √3 to s.

- k* ≥ 2. Since ∫_a^b zφ = φ(a) − φ(b), E[z·1_A] = −φ(s) + φ(r) − φ(s), which is 0 when

      φ(s) = φ(r)/2,   i.e.   s² = r² + 2 ln 2.                                      (1)

  Then E[z ∣ y] = 0 at y = v (the set A), at y = −v (−A, by symmetry) and at y = 0 (B is
  symmetric): no label transform correlates with He₁, so k* ≥ 2.
- k* = 2. ∫_a^b He₂ φ = aφ(a) − bφ(b), so E[He₂·1_B] = −2rφ(r) ≠ 0 for r > 0: the level
  y = 0 has E[He₂ ∣ y = 0] < 0, so E[He₂ ∣ y] is not constant (T(y) = y² sees it:
  y² = v²·1{|z| > r} and E[y² He₂] = 2v²rφ(r) > 0; the one-step transformed Hessian
  H_T ≠ 0). At r = 0 the link is ±v with A and −A mirror images: then E[He₂ ∣ y] ≡ 0.
- k = 3. E[g] = 0 and E[g·He_j] = 0 for every even j (g is odd); E[g·He₁] = −2v·E[z·1_A] = 0
  by (1); and ∫_A He₃ φ = −(s² − 1)φ(s) + (r² − 1)φ(r) − (s² − 1)φ(s) = (r² − s²)φ(r) by
  (1), so E[g·He₃] = 2v·(r² − s²)φ(r) = −4 ln 2·v·φ(r) ≠ 0.
- Normalised. P(A) = Φ(−s) + Φ(s) − Φ(r) = Φ̄(r), so E g² = 2v²Φ̄(r) = 1 at
  v = 1/√(2Φ̄(r)).
- The choice of r. The coefficient of g on the unit-norm He₃/√6 (its square is He₃'s share
  of E g² = 1) is c₃ = E[g He₃]/√6 = 4 ln 2·φ(r)/√(12·Φ̄(r)) (v = 1/√(2Φ̄(r))). We take the r that makes |c₃|
  largest (online SGD's drift on the matched He₃ student is ∝ c₃): d/dr log(φ/√Φ̄) = 0,

      2r·Φ̄(r) = φ(r),                                                              (2)

  solved by ``scipy.optimize.brentq`` on [0.1, 2] (the left side minus the right changes
  sign there), r ≈ 0.612, s ≈ 1.327, c₃ ≈ 0.509 (He₃ carries 26 % of E g²; c₃ > 0 as
  for He₃/√6).
"""

from __future__ import annotations

import math

from scipy.optimize import brentq
from scipy.stats import norm


def constants() -> dict:
    """r (root of (2)), s (from (1)), v, and the closed-form moments of the link g."""
    r = brentq(lambda x: 2 * x * norm.sf(x) - norm.pdf(x), 0.1, 2.0, xtol=1e-16, rtol=1e-15)
    s = math.sqrt(r * r + 2 * math.log(2))
    v = 1 / math.sqrt(2 * norm.sf(r))
    return {
        "r": r,
        "s": s,
        "r2": r * r,
        "s2": s * s,
        "v": v,
        "v/2": v / 2,
        # E[g He₃]/√6, E[y² He₂] (T = square), P(y = 0)
        "c3": 4 * math.log(2) * v * norm.pdf(r) / math.sqrt(6),
        "E[y^2 He2]": 2 * v * v * r * norm.pdf(r),
        "P(y=0)": 1 - 2 * norm.sf(r),
    }


def expression(c: dict | None = None) -> str:
    """The spec's target expression: g(z1), its constants with 17 significant digits."""
    c = c or constants()
    return (
        f"{c['v/2']:.17g}*sign(z1)*(1 + 2*sign(z1^2 - {c['s2']:.17g})"
        f" - sign(z1^2 - {c['r2']:.17g}))"
    )


def main() -> None:
    import replearn as rl
    from replearn.theory.exponents import conditional_hermite_energy

    c = constants()
    for name, value in c.items():
        print(f"{name:>12} = {value:.17g}")
    expr = expression(c)
    print(f"\nexpr: {expr}\n")
    target = rl.MultiIndexTarget.from_expression(expr, d=8)
    print("E y =", target.mean(), " E y^2 =", target.norm2())
    print("quadrature:", target.quadrature)
    for alpha, coefficient in sorted(target.terms.items()):
        print(f"c_{alpha[0]} = {coefficient:.6g}  (E[y He_k]/sqrt(k!) = "
              f"{coefficient * math.sqrt(math.factorial(alpha[0])):.6g})")  # fmt: skip
    print("information exponent:", rl.information_exponent(target))
    print("generative exponent:", rl.generative_exponent(target))
    energy = conditional_hermite_energy(target, 4)
    print("rho_k = E[E[He_k|y]^2]/k!:", {k: f"{e:.4g}" for k, e in energy["energy"].items()})


if __name__ == "__main__":
    main()
