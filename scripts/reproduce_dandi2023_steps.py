"""Reproduce Dandi, Krzakala, Loureiro, Pesce & Stephan 2023, several fresh-batch giant steps:
the cosines of each neuron's gradient with the two teacher directions (the notebook's scatter)
and the predicted slope μ₁(σ₂*)/μ₁(σ₁*).

Source: lucpoisson/GiantStep, multiple_steps/multiple_steps.ipynb (cell 3: ``gd_step`` and
the network, cell 6: settings, cells 9 and 16: the two examples and their plots).

Their settings: n = d = 4096, p = 1024, η = 2p, 6 steps, a fresh batch of n samples at each
step, no preprocessing, no noise; y = (σ₁*(θ₁·x) + σ₂*(θ₂·x))/2 with (example 1)
σ₁* = 4z + z², σ₂* = z (the gradient stays on θ₁'s spike) and (example 2) σ₁* = z + z²,
σ₂* = z − z² (it escapes towards θ₂); W⁰ ~ N(0, I/d); a⁰ "hypercube": 20 × +1, 20 × −1, the
rest random signs, all /√p; f = ReLU(ZWᵀ)a/√p, W_{t+1} = W_t + η·G_tᵀ (G_t minus the gradient
of the ½-mean loss); plotted: cos(G_i, θ₁) against cos(G_i, θ₂) for the first 40 neurons.

replearn: ``GiantStepNetwork(width=p, steps=6, step_size=η/2 = p, weight_decay=0.0,
batch="fresh", preprocess=False, output_scale="1/sqrt(m)", first_layer=W⁰, second_layer=a⁰,
biases="none", diagnostics_target=θ, head="none")``; the step rows' cosines
``history_[t]["step_cosines"]`` are cos(−η·∇, θ) = cos(G_i, θ) (exact against the notebook's
steps, tests/test_reproduce_peers.py). Printed per step: the least-squares slope through 0 of
cos(G_i, θ₂) on cos(G_i, θ₁) over the 40 plotted neurons, against the predicted slope
(μ₁(4z + z²) = 4, μ₁(z) = 1: 1/4; μ₁(z + z²) = μ₁(z − z²) = 1: 1).

    PYTHONPATH=src python scripts/reproduce_dandi2023_steps.py --d 1024 --seeds 2 --figure out.png
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from replearn.learners.giant_step import GiantStepNetwork

EXAMPLES = {
    1: (lambda z: 4 * z + z**2, lambda z: z, 1 / 4),
    2: (lambda z: z + z**2, lambda z: z - z**2, 1.0),
}
STEPS, PLOTTED = 6, 40


def hypercube_a0(p: int, gen: torch.Generator) -> torch.Tensor:
    signs = torch.where(torch.randn(p, generator=gen, dtype=torch.float64) > 0, 1.0, -1.0)
    signs[:20], signs[20:40] = 1.0, -1.0
    return signs / math.sqrt(p)


def run_one(example: int, d: int, p: int, seed: int, dtype) -> np.ndarray:
    """Step cosines (T, p, 2) of one run."""
    s1, s2, _ = EXAMPLES[example]
    gen = torch.Generator().manual_seed(seed)
    theta = torch.linalg.qr(torch.randn(d, 2, generator=gen, dtype=torch.float64))[0].T
    W0 = torch.randn(p, d, generator=gen, dtype=torch.float64) / math.sqrt(d)
    a0 = hypercube_a0(p, gen)
    n = d
    X = torch.randn(STEPS * n, d, generator=gen, dtype=torch.float64)
    y = (s1(X @ theta[0]) + s2(X @ theta[1])) / 2
    net = GiantStepNetwork(
        width=p, steps=STEPS, step_size=p, weight_decay=0.0, batch="fresh", preprocess=False,
        output_scale="1/sqrt(m)", first_layer=W0, second_layer=a0, biases="none",
        diagnostics_target=theta, head="none", dtype=dtype,
    ).fit(X.to(dtype), y.to(dtype))  # fmt: skip
    return np.stack([h["step_cosines"].numpy() for h in net.history_])


def slope(cosines: np.ndarray) -> float:
    """Least-squares slope through 0 of cos(G, θ₂) on cos(G, θ₁)."""
    x, y = cosines[:, 0], cosines[:, 1]
    return float(x @ y / (x @ x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=4096)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--figure", default=None, help="save the scatter (seed 0) here")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    d, p = args.d, args.d // 4
    dtype = getattr(torch, args.dtype)
    results = {"d": d, "n": d, "p": p, "seeds": args.seeds, "examples": {}}
    scatters = {}
    for example in EXAMPLES:
        started = time.time()
        runs = [run_one(example, d, p, seed, dtype) for seed in range(args.seeds)]
        scatters[example] = runs[0][:, :PLOTTED]
        slopes = np.array([[slope(r[t, :PLOTTED]) for t in range(STEPS)] for r in runs])
        cos1 = np.array([[np.abs(r[t, :PLOTTED, 0]).mean() for t in range(STEPS)] for r in runs])
        cos2 = np.array([[np.abs(r[t, :PLOTTED, 1]).mean() for t in range(STEPS)] for r in runs])
        results["examples"][example] = {
            "predicted_slope": EXAMPLES[example][2],
            "slope_mean": slopes.mean(0).tolist(), "slope_sd": slopes.std(0).tolist(),
            "abs_cos1_mean": cos1.mean(0).tolist(), "abs_cos2_mean": cos2.mean(0).tolist(),
            "wall_s": round(time.time() - started, 1),
        }  # fmt: skip
        r = results["examples"][example]
        print(f"example {example} (d = n = {d}, p = {p}, {args.seeds} seeds, {r['wall_s']} s): "
              f"predicted slope {r['predicted_slope']:.3f}")  # fmt: skip
        for t in range(STEPS):
            print(f"  step {t + 1}: slope {r['slope_mean'][t]:+.3f} ± {r['slope_sd'][t]:.3f}  "
                  f"mean |cos θ₁| {r['abs_cos1_mean'][t]:.3f}  mean |cos θ₂| "
                  f"{r['abs_cos2_mean'][t]:.3f}")  # fmt: skip
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, STEPS, figsize=(3 * STEPS, 6), sharex=True, sharey=True)
        for row, example in enumerate(EXAMPLES):
            for t in range(STEPS):
                ax = axes[row, t]
                c = scatters[example][t]
                ax.scatter(c[:, 0], c[:, 1], s=8)
                line = np.linspace(-1, 1, 3)
                ax.plot(line, EXAMPLES[example][2] * line, "k--", lw=0.8)
                ax.set_xlim(-1, 1), ax.set_ylim(-1, 1)
                ax.set_title(f"example {example}, step {t + 1}", fontsize=9)
        for ax in axes[-1]:
            ax.set_xlabel("cos(G_i, θ₁)")
        for ax in axes[:, 0]:
            ax.set_ylabel("cos(G_i, θ₂)")
        fig.tight_layout()
        fig.savefig(args.figure, dpi=90)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
