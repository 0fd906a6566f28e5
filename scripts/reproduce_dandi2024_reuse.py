"""Reproduce Dandi, Troiani, Arnaboldi, Pesce, Zdeborová & Krzakala 2024 (batch reuse):
full-batch GD of a two-neuron ReLU student on one reused batch of N = 3D samples, and the same
with a fresh batch at every step.

Source: IdePHICS/benefit-reusing-batch, simulation.py (``committee``, ``set_weight``,
``grad_w``) and result.ipynb cell 0; published numbers: data/simulations_A3_p2_k2_D5000_T7_
sym=offline_learn_lambda0.0_lr0.2_onlineFalse.npz (32 repetitions) and data/DMFT_A3_T7_...npz.

Their settings: teacher tanh(h₁ + He₃(h₂)), h = θ·x with θ orthonormal; student
f = Σ_k a_k ReLU(w_k·x/√D), a = (1, −1)/√2 fixed, W⁰ orthonormal rows of norm √D orthogonal to
θ (m⁰ = 0); loss Σ_i ½(y_i − f(x_i))² (a sum), lr 0.2, no weight decay, no preprocessing;
records m(t) = W·W*ᵀ/D and Σ½(y − f)²/N on N test points before each step, t = 0…6.

replearn: ``GiantStepNetwork(width=2, step_size=lr·N/(2D) = 0.3, weight_decay=0,
batch="reuse", preprocess=False, first_layer="orthogonal", directions=θ, second_layer=a,
biases="none", head="none")`` (unit rows: ours w/√D; our loss (1/N)Σ(f − y)² is 2/N times
theirs, so η = lr·N/(2D)); m(t) = ``direction_overlaps``, their error = ``network_risk``/2.
θ = (e₁, e₂) (the Gaussian data are rotation invariant). 6 steps give t = 0…6 (their 7th
step is never measured).

    PYTHONPATH=src python scripts/reproduce_dandi2024_reuse.py --D 500 --seeds 8 --fresh
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from replearn.hermite import he
from replearn.learners.giant_step import GiantStepNetwork

PUBLISHED = {  # sim: mean over 32 repetitions of m(t) for neuron 1 (a = +1/√2), D = 5000
    "m1": [0.0, 0.0757, 0.1238, 0.1562, 0.1800, 0.1989, 0.2147],
    "m2": [0.0, -0.0626, -0.1018, -0.1276, -0.1461, -0.1604, -0.1722],
    "error": [0.4917, 0.4202, 0.3859, 0.3683, 0.3587, 0.3534, 0.3504],
    "error_sd": [0.0035, 0.0031, 0.0030, 0.0031, 0.0030, 0.0030, 0.0030],
    "dmft_m1": [0.0, 0.0758, 0.1238, 0.1554, 0.1786, 0.1982, 0.2162],
    "dmft_m2": [0.0, -0.0632, -0.1027, -0.1276, -0.1449, -0.1588, -0.1714],
}
LR, ALPHA, T = 0.2, 3, 7


def teacher(X: torch.Tensor) -> torch.Tensor:
    """tanh(h₁ + He₃(h₂)) with θ = (e₁, e₂)."""
    return torch.tanh(X[:, 0] + he(3, X[:, 1]))


def run_one(D: int, seed: int, batch: str, dtype=torch.float64) -> dict:
    """m(t) (2 × 2 per t) and their error Σ½(y − f)²/N per t = 0…T−1, one repetition."""
    N = ALPHA * D
    # the data's stream must not be the network's: W⁰ is drawn from manual_seed(seed)
    # (``network.initial_network``), the same stream would make W⁰ ∝ the first rows of X
    g = torch.Generator().manual_seed(100_000 + seed)
    steps = T - 1
    rows = N * steps if batch == "fresh" else N
    X = torch.randn(rows, D, generator=g, dtype=dtype)
    X_test = torch.randn(N, D, generator=g, dtype=dtype)
    U = torch.eye(D, dtype=torch.float64)[:2]
    a = torch.tensor([1.0, -1.0], dtype=torch.float64) / math.sqrt(2)
    net = GiantStepNetwork(
        width=2, steps=steps, step_size=LR * N / (2 * D), weight_decay=0.0, batch=batch,
        preprocess=False, first_layer="orthogonal", directions=U, second_layer=a,
        biases="none", head="none", diagnostics_target=U,
        diagnostics_data=(X_test, teacher(X_test)), dtype=dtype, seed=seed,
    )  # fmt: skip
    net.fit(X, teacher(X))
    records = [net.initial_diagnostics_] + net.history_
    return {
        "m": np.array([r["direction_overlaps"].numpy() for r in records]),  # (T, K, k)
        "error": np.array([r["network_risk"] / 2 for r in records]),
    }


def summary(D: int, seeds: list[int], batch: str) -> dict:
    runs = [run_one(D, s, batch) for s in seeds]
    m = np.stack([r["m"] for r in runs])
    e = np.stack([r["error"] for r in runs])
    return {
        "m1_mean": m[:, :, 0, 0].mean(0).tolist(), "m1_sd": m[:, :, 0, 0].std(0).tolist(),
        "m2_mean": m[:, :, 0, 1].mean(0).tolist(), "m2_sd": m[:, :, 0, 1].std(0).tolist(),
        "error_mean": e.mean(0).tolist(), "error_sd": e.std(0).tolist(),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--D", type=int, default=5000)
    parser.add_argument("--seeds", type=int, default=32)
    parser.add_argument("--fresh", action="store_true", help="also fresh batches")
    parser.add_argument("--out", default=None, help="write the results as JSON")
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    started = time.time()
    results = {"D": args.D, "N": ALPHA * args.D, "seeds": args.seeds}
    results["reuse"] = summary(args.D, seeds, "reuse")
    if args.fresh:
        results["fresh"] = summary(args.D, seeds, "fresh")
    results["wall_s"] = round(time.time() - started, 1)
    print(f"D = {args.D}, N = 3D, {args.seeds} seeds, wall {results['wall_s']} s")
    print(" t | published m11 m12 err | replearn reuse m11 m12 err (± sd)" +
          (" | fresh m11 m12 err" if args.fresh else ""))  # fmt: skip
    for t in range(T):
        r = results["reuse"]
        line = (
            f" {t} | {PUBLISHED['m1'][t]:.4f} {PUBLISHED['m2'][t]:+.4f} {PUBLISHED['error'][t]:.4f}"
            f" | {r['m1_mean'][t]:.4f}±{r['m1_sd'][t]:.4f} {r['m2_mean'][t]:+.4f}±{r['m2_sd'][t]:.4f}"
            f" {r['error_mean'][t]:.4f}±{r['error_sd'][t]:.4f}"
        )
        if args.fresh:
            f = results["fresh"]
            line += f" | {f['m1_mean'][t]:.4f} {f['m2_mean'][t]:+.4f} {f['error_mean'][t]:.4f}"
        print(line)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
