"""Where the one-step theory and the simulation part at p = 2d: the step's bulk, measured.

    PYTHONPATH=src python scripts/one_step_bulk_diagnostic.py [--d 1000] [--width-ratio 2]
        [--seeds 3]

Cui et al.'s equivalent model replaces the trained layer W¹ by a rank-one spike r·1vᵀ plus a
bulk c_W·W⁰ that is independent of the spike direction v and of the teacher's part ζ
orthogonal to it. The fixed point then needs only the bulk's spectrum: the squared projections
of √p·Bv and √p·Bζ on the eigenvectors of Ω = BΠBᵀ (Π = I − vvᵀ) are those of generic
directions. This script draws the step exactly as tests/one_step_simulation.py does (same
seed, same draws), splits W¹ = B + 1uᵀ with u = η̃μ₁·mean (yᵢ − f₀(xᵢ))xᵢ (the part of the
step common to all neurons; v = u/‖u‖), and solves the fixed point of the module docstring of
replearn.theory.one_step_asymptotics with the *measured* eigenvalues D of Ω and the measured
projections F = p(Uᵀ Bv)², H = p(Uᵀ Bζ)², X = p(Uᵀ Bv)(Uᵀ Bζ) (U the eigenvectors), beside
the theory's spike r, γ, c_W. Printed per seed, as Markdown (recorded in docs/theory.md):
the simulated test error, the theory (d → ∞), the theory on the measured bulk, and the mass
of H relative to the generic (p/d)·D; then the mean of ``one_step_asymptotics(...,
bulk="step")`` over as many independent steps (seeds 100, 101, …). Takes a few minutes at
d = 1000.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from one_step_simulation import fixed_point, simulate_one_step, step_bulk  # noqa: E402
from replearn.theory import one_step_asymptotics  # noqa: E402
from replearn.theory.one_step_asymptotics import _Conditional, spike_constants  # noqa: E402
from replearn.theory.scalar_functions import link_function  # noqa: E402

ALPHAS = [0.5, 1.5, 3.0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=1000)
    parser.add_argument("--width-ratio", type=float, default=2.0)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    d, ratio = args.d, args.width_ratio
    p = int(ratio * d)
    alpha0, eta, lam = 0.5, 1.0, 0.01  # Cui et al.'s notebook: tanh student, teacher tanh
    theory = one_step_asymptotics(alpha=ALPHAS, width_ratio=ratio, d=None).test_error
    k = spike_constants("tanh", "tanh(z1)", alpha0, eta)
    cond = _Conditional(np.tanh, link_function("tanh(z1)"), k["spike"], k["bulk_scale"],
                        k["gamma"], 0.0, 121)  # fmt: skip
    print(f"\np = {ratio:g}·d, d = {d}; tanh student, teacher tanh(z1), α₀ = 0.5, η̃ = 1, "
          "λ = 0.01\n")  # fmt: skip
    print("| seed | α | simulation | theory (d → ∞) | theory on the measured bulk | "
          "H / ((p/d)·D), mass |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    rows = []
    for seed in range(args.seeds):
        sim = simulate_one_step(d, p, alpha0, eta, lam, ALPHAS, seed)
        D, F, H, X = step_bulk(d, p, alpha0, eta, seed)
        on_bulk = [fixed_point(cond, D, F, H, X, a * d / p, lam) for a in ALPHAS]
        mass = H.sum() / (ratio * D.sum())
        rows.append((sim, on_bulk))
        for i, a in enumerate(ALPHAS):
            print(f"| {seed if i == 0 else ''} | {a:g} | {sim[i]:.4f} | {theory[i]:.4f} | "
                  f"{on_bulk[i]:.4f} | {f'{mass:.3f}' if i == 0 else ''} |", flush=True)  # fmt: skip
    sim = np.mean([r[0] for r in rows], axis=0)
    on_bulk = np.mean([r[1] for r in rows], axis=0)
    independent = np.mean([
        one_step_asymptotics(alpha=ALPHAS, width_ratio=ratio, d=d, seed=100 + s, bulk="step").test_error
        for s in range(args.seeds)
    ], axis=0)  # fmt: skip
    for i, a in enumerate(ALPHAS):
        print(f"| mean | {a:g} | {sim[i]:.4f} | {theory[i]:.4f} ({100 * (sim[i] / theory[i] - 1):+.1f} %) "
              f"| {on_bulk[i]:.4f} ({100 * (sim[i] / on_bulk[i] - 1):+.1f} %) | |")  # fmt: skip
    print("\nbulk=\"step\" on independent steps (seeds 100 …): " + ", ".join(
        f"α = {a:g}: {v:.4f} (simulation {100 * (s / v - 1):+.1f} %)"
        for a, v, s in zip(ALPHAS, independent, sim, strict=True)))  # fmt: skip


if __name__ == "__main__":
    main()
