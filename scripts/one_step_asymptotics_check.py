"""One giant step in the proportional regime: rl.theory.one_step_asymptotics against simulation.

    PYTHONPATH=src python scripts/one_step_asymptotics_check.py [--seeds 3] [--quick]

Prints, as Markdown (recorded in docs/theory.md):

1. for each setting, at d = p/ψ = 1000, the theory (d → ∞ and the finite-d spectrum of
   seed 0) beside the mean ± sd of the simulated test error over the seeds, and their
   relative difference;
2. the d → ∞ theory against the finite-d theory at d = 250, 1000, 4000 (Cui et al.'s
   notebook setting);

and draws docs/figures/theory_one_step.png: the d → ∞ curve over simulations at d = 250 and
d = 1000 (mean ± sd over the seeds). The simulation is tests/one_step_simulation.py (numpy,
the steps of Cui et al.'s notebook). Takes several minutes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from one_step_simulation import simulate_one_step  # noqa: E402
from replearn.theory import one_step_asymptotics  # noqa: E402

ALPHAS = [0.5, 1.5, 3.0]
BASE = dict(student="tanh", teacher="tanh(z1)", link=np.tanh, alpha0=0.5, eta=1.0,
            ridge_lambda=0.01, width_ratio=1.0, noise=0.0)  # fmt: skip
SETTINGS = {
    "Cui et al.'s notebook (tanh, tanh(z1), α₀ = 0.5, η̃ = 1, λ = 0.01)": BASE,
    "p = 2d": {**BASE, "width_ratio": 2.0},
    "α₀ = 1, η̃ = 2, λ = 0.1": {**BASE, "alpha0": 1.0, "eta": 2.0, "ridge_lambda": 0.1},
    "noise ς = 0.5 (Gaussian)": {**BASE, "noise": 0.5},
    "erf student, z1 + He2(z1)/2, α₀ = 2": {
        **BASE, "student": "erf", "teacher": "z1 + He2(z1)/2",
        "link": lambda z: z + (z * z - 1) / 2, "alpha0": 2.0,
    },
    "relu student, tanh(z1), α₀ = 2": {**BASE, "student": "relu", "alpha0": 2.0},
    "sigmoid student, tanh(z1), α₀ = 1, η̃ = 4": {
        **BASE, "student": "sigmoid", "alpha0": 1.0, "eta": 4.0,
    },
}  # fmt: skip


def theory(settings, alphas, d):
    return one_step_asymptotics(
        student=settings["student"], teacher=settings["teacher"], alpha0=settings["alpha0"],
        eta=settings["eta"], ridge_lambda=settings["ridge_lambda"], alpha=alphas,
        width_ratio=settings["width_ratio"], noise=settings["noise"], d=d, seed=0,
    ).test_error  # fmt: skip


def simulate(settings, alphas, d, seeds):
    runs = [
        simulate_one_step(d, int(settings["width_ratio"] * d), settings["alpha0"], settings["eta"],
                          settings["ridge_lambda"], alphas, seed, student=settings["student"],
                          link=settings["link"], noise=settings["noise"])
        for seed in seeds
    ]  # fmt: skip
    runs = np.array(runs)
    return runs.mean(axis=0), runs.std(axis=0, ddof=1)


def comparison_table(seeds, d):
    print(f"\n| setting | α | theory d → ∞ | theory d = {d} | simulation d = {d} "
          f"({len(seeds)} seeds) | difference |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name, settings in SETTINGS.items():
        limit, finite = theory(settings, ALPHAS, None), theory(settings, ALPHAS, d)
        mean, sd = simulate(settings, ALPHAS, d, seeds)
        for k, alpha in enumerate(ALPHAS):
            print(f"| {name if k == 0 else ''} | {alpha:g} | {limit[k]:.4f} | {finite[k]:.4f} | "
                  f"{mean[k]:.4f} ± {sd[k]:.4f} | {100 * (mean[k] / finite[k] - 1):+.1f} % |",
                  flush=True)  # fmt: skip


def convergence_table(sizes):
    limit = theory(BASE, ALPHAS, None)
    print("\n| d | " + " | ".join(f"α = {a:g}" for a in ALPHAS) + " |")
    print("|---|" + "---|" * len(ALPHAS))
    print("| ∞ | " + " | ".join(f"{v:.5f}" for v in limit) + " |")
    for d in sizes:
        finite = theory(BASE, ALPHAS, d)
        cells = [
            f"{v:.5f} ({100 * (v / l - 1):+.2f} %)" for v, l in zip(finite, limit, strict=True)
        ]
        print(f"| {d} | " + " | ".join(cells) + " |", flush=True)


def figure(seeds, sizes, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0.2, 3.0, 60)
    points = np.array([0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    ax.plot(grid, theory(BASE, grid, None), "k--", label="theory, d → ∞ (Cui et al. 2024)")
    for d, marker in zip(sizes, "os", strict=False):
        mean, sd = simulate(BASE, points, d, seeds)
        ax.errorbar(points, mean, sd, fmt=marker, capsize=3, label=f"simulation, d = p = {d}")
    ax.set_xlabel("α = n/d (head samples)")
    ax.set_ylabel("test error E[(f − f*)²]")
    ax.set_title("tanh student, f* = tanh(z₁); α₀ = 0.5, η̃ = 1, λ = 0.01", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"\nwrote {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="d = 250 only, no figure")
    parser.add_argument("--figure-only", action="store_true", help="only the figure")
    args = parser.parse_args()
    seeds = range(args.seeds)
    if args.quick:
        comparison_table(seeds, 250)
        return
    if not args.figure_only:
        comparison_table(seeds, 1000)
        convergence_table([250, 1000, 4000])
    figure(seeds, [250, 1000], ROOT / "docs" / "figures" / "theory_one_step.png")


if __name__ == "__main__":
    main()
