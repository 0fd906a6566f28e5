"""Weak recovery by the optimal spectral estimator: SpectralEstimator against Lu & Li's overlap.

    PYTHONPATH=src python scripts/weak_recovery_check.py [--seeds 2]
    PYTHONPATH=src python scripts/weak_recovery_check.py --links "sign(abs(z1)-1)" "cos(2*z1)" \
        --ratios 0.7 1 1.3 2 --sizes 2000 --seeds 3 --no-figure
    PYTHONPATH=src python scripts/weak_recovery_check.py --scan --links "z1**2" "relu(z1)" \
        --ratios 1.3 2

By default, for two links (phase retrieval z1**2, α_c = 1/2; relu(z1), α_c = 1) prints, as Markdown
(recorded in docs/theory.md), the overlap |ŵ·u| of ``rl.SpectralEstimator`` (T*(y) =
1 − 1/E[z² | y]) at d = 500 and d = 2000 (mean ± sd over the seeds) beside the d → ∞
prediction ``rl.theory.spectral_overlap``, at α/α_c = 0.5 … 3, and draws
docs/figures/theory_weak_recovery.png. Takes several minutes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import brentq

import replearn as rl
from replearn.theory import optimal_spectral_transform, spectral_overlap, weak_recovery_threshold

ROOT = Path(__file__).resolve().parents[1]
LINKS = {
    "z1**2": lambda z: z**2,
    "relu(z1)": lambda z: np.maximum(z, 0.0),
    "sign(abs(z1)-1)": lambda z: np.sign(np.abs(z) - 1.0),
    "cos(2*z1)": lambda z: np.cos(2 * z),
}
FIGURE_LINKS = ("z1**2", "relu(z1)")
RATIOS = [0.5, 0.7, 1.0, 1.3, 1.6, 2.0, 3.0]


def overlap(values, link, d, alpha, seed):
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    X = rng.standard_normal((int(alpha * d), d))
    est = rl.SpectralEstimator(link=link).fit(torch.from_numpy(X), torch.from_numpy(values(X @ u)))
    return abs(float(est.W_[0].double() @ torch.from_numpy(u)))


def transform_scan(links, ratios, offsets=(0.0, 0.1, 0.3, 1.0, 3.0)):
    """The d → ∞ overlap of T_c(y) = (e − 1)/(e + c), e = E[z² | y] = 1/(1 − T*(y)), per c:
    c = 0 is T*; every c > 0 is bounded above by 1, as Lu & Li need."""
    print("\n| link | α/α_c | " + " | ".join(f"c = {c:g}" for c in offsets) + " |")
    print("|---|---|" + "---|" * len(offsets))
    for link in links:
        threshold = weak_recovery_threshold(link)
        optimal = optimal_spectral_transform(link)
        for ratio in ratios:
            cells = []
            for c in offsets:

                def transform(y, c=c, optimal=optimal):
                    e = 1.0 / np.maximum(1.0 - optimal(y), 1e-300)
                    return (e - 1.0) / (e + c)

                value = spectral_overlap(link, ratio * threshold, transform=transform)[0]
                cells.append(f"{value:.3f}")
            print(f"| {link} | {ratio:g} | " + " | ".join(cells) + " |", flush=True)
    for link in links:
        threshold = weak_recovery_threshold(link)
        crossing = brentq(lambda r, link=link, t=threshold: spectral_overlap(link, r * t)[0] - 0.3,
                          1.0 + 1e-6, 10.0, xtol=1e-4)  # fmt: skip
        print(f"{link}: the T* overlap reaches 0.3 at α/α_c = {crossing:.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--links", nargs="+", choices=list(LINKS), default=list(FIGURE_LINKS))
    parser.add_argument("--ratios", nargs="+", type=float, default=RATIOS, help="α/α_c")
    parser.add_argument("--sizes", nargs="+", type=int, default=[500, 2000], help="d")
    parser.add_argument("--no-figure", action="store_true")
    parser.add_argument(
        "--scan",
        action="store_true",
        help="only the d → ∞ overlap of T_c = (e − 1)/(e + c), e = E[z²|y]",
    )
    args = parser.parse_args()
    if args.scan:
        transform_scan(args.links, args.ratios)
        return
    sizes, ratios = args.sizes, args.ratios
    results = {}
    print("\n| link | α_c | α/α_c | theory d → ∞ | " + " | ".join(f"d = {d}" for d in sizes) + " |")
    print("|---|---|---|---|" + "---|" * len(sizes))
    for link in args.links:
        values = LINKS[link]
        threshold = weak_recovery_threshold(link)
        predicted = spectral_overlap(link, [r * threshold for r in ratios])
        for k, ratio in enumerate(ratios):
            cells = []
            for d in sizes:
                runs = [overlap(values, link, d, ratio * threshold, s) for s in range(args.seeds)]
                results[link, d, ratio] = (np.mean(runs), np.std(runs))
                cells.append(f"{np.mean(runs):.3f} ± {np.std(runs):.3f}")
            head = f"| {link} | {threshold:g} |" if k == 0 else "| | |"
            print(
                f"{head} {ratio:g} | {predicted[k]:.3f} | " + " | ".join(cells) + " |", flush=True
            )
    if args.no_figure or set(FIGURE_LINKS) - set(args.links) or ratios != RATIOS:
        return

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6), sharey=True)
    grid = np.linspace(0.3, 3.0, 200)
    for ax, link in zip(axes, FIGURE_LINKS, strict=True):
        threshold = weak_recovery_threshold(link)
        ax.plot(grid, spectral_overlap(link, grid * threshold), "k--", label="Lu & Li, d → ∞")
        ax.axvline(1.0, color="gray", lw=0.8, label="α_c = 1/E[(E[z²|y] − 1)²]")
        for d, marker in zip(sizes, "os", strict=True):
            mean = [results[link, d, r][0] for r in RATIOS]
            sd = [results[link, d, r][1] for r in RATIOS]
            ax.errorbar(
                RATIOS, mean, sd, fmt=marker, capsize=3, label=f"SpectralEstimator, d = {d}"
            )
        ax.set_title(f"y = {link} (α_c = {threshold:g})")
        ax.set_xlabel("α/α_c")
    axes[0].set_ylabel("overlap |ŵ·u|")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path = ROOT / "docs" / "figures" / "theory_weak_recovery.png"
    fig.savefig(path, dpi=120)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
