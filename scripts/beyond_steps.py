"""Tables of docs/beyond.md that are not grid specs: per-step staircase and Dandi et al.'s single step.

    python scripts/beyond_steps.py staircase [--d 32] [--seeds 2]
    python scripts/beyond_steps.py reuse [--d 32] [--seeds 2]
    python scripts/beyond_steps.py dandi [--d 512] [--width 1024]

staircase: f* ∝ He2(z1) + He3(z1)·z2 (E f*² = 1) (H = E[∇²f*] sees z1 only). GiantStepNetwork with
output scale 1/m, T = 1…4 steps of n = 16·d² samples each, η₁ = m·√(n/d) (Dandi et al.'s
schedule, ``--first dandi``) or m·√d (Algorithm 1's step, ``--first paper``) and
η_t = later·m for t ≥ 2 (``--later``, default 16), fresh vs reused batches; per step: mean_j cos²(w_j, u_k) for k = 1, 2 (1/d for random neurons) and the
alignment; the excess risk of the T-step model (head refitted after step T). Both tables use
``later_steps="gradient"`` (the network's own gradient, the rule of these measurements;
scripts/later_steps.py measures the default residual steps).

reuse: two steps on He3(u·x)/√6 at d = 32, n = 16·d², output scale 1/m, η₁ = m·√(n/d) and
η₂ = 4, 16, 64 times m, on the same batch and on a fresh one.

dandi: the single-step experiment of Dandi et al. (2023, notebook single_step): d = 512,
width 1024, n = d^1.3, d^1.65, d²; target the paper's He2(u·x)/2 + He4(u·x)/(4√3).
"their variant" = GiantStepNetwork(steps=1, output_scale="1/m", step_size="dandi",
weight_decay=0 (W⁰ kept), preprocess=False) vs OneStepNetwork (Algorithm 1), same seed.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

import replearn as rl
from replearn.learners.giant_step import GiantStepNetwork
from replearn.metrics import excess_risk, subspace_alignment


def staircase(d: int, seeds: int, width: int, first: str, later: float, figures=None) -> None:
    n = 16 * d * d
    print(
        f"staircase He2(z1) + He3(z1)*z2 (normalised to E f*² = 1), d = {d}, width {width}, n = 16 d^2 = {n} per step"
    )
    print("T | batch | seed | risk | per step t: (alignment, cos2 u1, cos2 u2)")
    for seed in range(seeds):
        target = rl.MultiIndexTarget.from_expression("He2(z1) + He3(z1)*z2", d, seed=seed)
        for batch in ("fresh", "reuse"):
            for steps in (1, 2, 3, 4):
                eta_1 = math.sqrt(n / d if first == "dandi" else d) * width
                eta = [eta_1] + [later * width] * (steps - 1)
                model = GiantStepNetwork(
                    width=width,
                    steps=steps,
                    batch=batch,
                    output_scale="1/m",
                    step_size=eta,
                    later_steps="gradient",  # the network's own gradient (Dandi et al.'s)
                    diagnostics_target=target,
                    seed=seed,
                )
                model.fit_stream(
                    rl.DataStream(target, noise=1.0, seed=1000 + seed), n=n, n_holdout=10_000
                )
                risk = float(excess_risk(model, target, n_test=10_000, seed=seed).risk)
                per_step = [
                    (
                        round(h["alignment"], 3),
                        *[round(float(c), 3) for c in h["direction_cosines"].pow(2).mean(0)],
                    )
                    for h in model.history_
                ]
                print(f"{steps} | {batch} | {seed} | {risk:.3f} | {per_step}", flush=True)
                if figures is not None and seed == 0 and steps == 4:
                    from replearn.experiments.methods import step_history
                    from replearn.experiments.report.beyond import figure_step_scatter
                    from replearn.experiments.report.figures import save_figure

                    title = f"staircase, d = {d}, n = 16·d² per step, {batch} batches, seed 0"
                    fig = figure_step_scatter(step_history(model.history_), title=title)
                    save_figure(fig, Path(figures), f"beyond-staircase-{batch}")


def reuse(d: int, seeds: int, width: int) -> None:
    """Two steps on He3(u·x)/√6, n = 16·d², output scale 1/m, η₁ = m·√(n/d), η₂ = k·m."""
    n = 16 * d * d
    print(f"two steps on He3(z1)/sqrt(6), d = {d}, width {width}, n = 16 d^2 = {n}")
    print("eta_2/m | batch | seed | risk | per step t: (alignment, weight norm)")
    for seed in range(seeds):
        target = rl.MultiIndexTarget.from_expression("He3(z1)/sqrt(6)", d, seed=seed)
        for later in (4.0, 16.0, 64.0):
            for batch in ("reuse", "fresh"):
                model = GiantStepNetwork(
                    width=width,
                    steps=2,
                    batch=batch,
                    output_scale="1/m",
                    step_size=[math.sqrt(n / d) * width, later * width],
                    later_steps="gradient",  # reuse acts through the network's own gradient
                    diagnostics_target=target,
                    seed=seed,
                )
                model.fit_stream(
                    rl.DataStream(target, noise=1.0, seed=1000 + seed), n=n, n_holdout=10_000
                )
                risk = float(excess_risk(model, target, n_test=10_000, seed=seed).risk)
                per_step = [
                    (round(h["alignment"], 3), round(h["weight_norm"], 1)) for h in model.history_
                ]
                print(f"{later:g} | {batch} | {seed} | {risk:.3f} | {per_step}", flush=True)


def dandi(d: int, width: int, seeds: int) -> None:
    print(f"single step, paper target, d = {d}, width {width}")
    print("log_d n | n | seed | Algorithm 1 risk, alignment | Dandi variant risk, alignment | s")
    for seed in range(seeds):
        target = rl.paper_target(d, seed)
        for exponent in (1.3, 1.65, 2.0):
            n = round(d**exponent)
            start = time.time()
            out = []
            for model in (
                rl.OneStepNetwork(width=width, seed=seed),
                GiantStepNetwork(
                    width=width,
                    steps=1,
                    output_scale="1/m",
                    step_size="dandi",
                    weight_decay=0.0,
                    preprocess=False,
                    seed=seed,
                ),
            ):
                model.fit_stream(
                    rl.DataStream(target, noise=1.0, seed=1000 + seed), n=n, n_holdout=10_000
                )
                risk = float(excess_risk(model, target, n_test=10_000, seed=seed).risk)
                out.append(f"{risk:.3f}, {subspace_alignment(model.W_, target.U):.3f}")
            print(
                f"{exponent} | {n} | {seed} | {out[0]} | {out[1]} | {time.time() - start:.0f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", choices=("staircase", "reuse", "dandi"))
    parser.add_argument("--d", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument(
        "--first",
        choices=("dandi", "paper"),
        default="dandi",
        help="staircase η₁: m·√(n/d) (dandi) or m·√d (Algorithm 1's step)",
    )
    parser.add_argument("--figures", default=None, help="staircase: write the T = 4 scatter here")
    parser.add_argument("--later", type=float, default=16.0, help="staircase η_t/m for t ≥ 2")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.table == "staircase":
        staircase(args.d or 32, args.seeds, args.width or 256, args.first, args.later, args.figures)
    elif args.table == "reuse":
        reuse(args.d or 32, args.seeds, args.width or 256)
    else:
        dandi(args.d or 512, args.width or 1024, args.seeds)


if __name__ == "__main__":
    main()
