"""Later giant steps: what the curvature allows, and what the biases let a step see.

Two giant steps (``GiantStepNetwork``, fresh batches of n = 16·d² samples, width 256, d = 16)
with step 1 = Algorithm 1's (η₁ = √d/c, weight decay 1/η₁) and step 2 of size
η₂ = κ/(c²m) (κ in units of the curvature bound, weight decay 0), at the paper's output scale
c = 1 and at the mean-field c = 1/m, with zero biases during the steps ("paper") or N(0, 1)
biases during both steps ("normal"). κ = 1e-6 moves nothing: its row is T = 1's features
with the head on step 2's batch (the noise floor of the comparison). Prints, per setting,
the mean ± sd over seeds of the excess risk and of cos²(W, u_k) = ‖W u_k‖²/‖W‖_F² (random:
1/d = 0.0625), and T = 1's.

    PYTHONPATH=src python scripts/later_steps.py [--seeds 4] [--d 16] [--width 256]
"""

from __future__ import annotations

import argparse
import math
import statistics

import torch

import replearn as rl

TARGETS = {
    "staircase": "He2(z1) + He3(z1)*z2",
    "even coupling": "He2(z1) + He2(z1)*z2",
    "paper": "He2(z1)/2 + He4(z1)/(4*sqrt(3))",
}
KAPPAS = (1e-6, 1.0, 4.0, 16.0)


def _cos2(W: torch.Tensor, U: torch.Tensor) -> list[float]:
    W = W.to(torch.float64)
    return [float(v) for v in (W @ U.T).pow(2).sum(0) / W.pow(2).sum()]


def _fit(target, seed, d, width, n, steps, scale, biases, kappa):
    c = 1.0 if scale == 1.0 else 1.0 / width
    etas = [math.sqrt(d) / c] + [kappa / (c * c * width)] * (steps - 1)
    net = rl.GiantStepNetwork(
        width=width, steps=steps, step_size=etas, output_scale=scale, biases=biases,
        dtype="float64", seed=seed,
    )  # fmt: skip
    stream = rl.DataStream(target, noise=0.0, seed=seed)
    net.fit_stream(stream, n=n, n_holdout=4096)
    risk = float(rl.excess_risk(net, target, n_test=20_000, seed=1).risk)
    return risk, _cos2(net.W_, target.U.to(torch.float64))


def _summary(rows) -> str:
    risks = [r for r, _ in rows]
    cos = list(zip(*[c for _, c in rows], strict=True))
    sd = statistics.stdev(risks) if len(risks) > 1 else 0.0
    parts = [f"risk {statistics.mean(risks):.3f} ± {sd:.3f}"]
    parts += [f"cos² u{k + 1} {statistics.mean(v):.3f}" for k, v in enumerate(cos)]
    return " | ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--width", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(1)
    d, width, n = args.d, args.width, 16 * args.d**2
    seeds = range(args.seeds)
    print(f"d = {d}, width {width}, n = 16 d^2 = {n} per step, {args.seeds} seeds")
    for name, expression in TARGETS.items():
        target = rl.MultiIndexTarget.from_expression(expression, d=d, seed=0)
        for scale in (1.0, "1/m"):
            for biases in ("paper", "normal"):
                head = f"{name} ({expression}) | c = {scale} | biases {biases}"
                one = [_fit(target, s, d, width, n, 1, scale, biases, 0.0) for s in seeds]
                print(f"{head} | T = 1            | {_summary(one)}", flush=True)
                for kappa in KAPPAS:
                    two = [_fit(target, s, d, width, n, 2, scale, biases, kappa) for s in seeds]
                    print(f"{head} | T = 2, κ = {kappa:<5g}| {_summary(two)}", flush=True)


if __name__ == "__main__":
    main()
