"""Later giant steps: which second step helps, measured against one step.

Every row is ``GiantStepNetwork`` (fresh batches of n = 16·d² samples per step, no label
noise, the head's λ on 2048 holdout samples) at its defaults except the setting named:

- ``T = 1``: Algorithm 1 (steps=1);
- ``T = 2``, ``T = 3``: the defaults — later steps on the residual of the refitted predictor
  through the head's features (``later_steps="residual"``), η_t = √d/t ("harmonic");
- ``T = 2, reused batch``: both steps and the heads on one batch of n samples
  (``batch="reuse"``: half the samples of fresh T = 2, as many as T = 1);
- ``residual, eta_t = sqrt d``: the same step at a constant η_t = √d (``step_size="sqrt_d"``);
- ``residual, eta_2 = sqrt d/4``: the same step at η₂ = √d/4;
- ``residual, no biases``: ``biases="none"`` (b = 0 in the step's mask and in the head);
- ``residual, b = 0 in the step``: the default step 2 written out here with b = 0 in its mask
  σ′(w_j·x) and the head's N(0, 1) biases kept for the head (no learner option does this);
- ``gradient, stable``: the network's own gradient with the fixed second layer
  (``later_steps="gradient"``) at the curvature's η₂ = 1/(c²·Σa_j²) = 1/m (the previous
  default);
- ``gradient, sqrt_d``: the same at η₂ = √d (the paper's scale; the original default).

First, per target, what the "gradient" rule's step 2 sees: the test MSE of the network
itself after step 1, α + β·x + c·aᵀReLU(W¹x) with its fixed second layer ±1 (``network_risk``;
E f*² = 1, so a network that had learned nothing would score 1). Then, per target and setting, the mean ± sd over the seeds of the excess risk and the mean
cos²(W, u_k) = ‖W u_k‖²/‖W‖²_F (random: 1/d).

    PYTHONPATH=src python scripts/later_steps.py [--d 32] [--width 128] [--seeds 4]
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics

import torch

import replearn as rl

TARGETS = {
    "staircase": "He2(z1) + He3(z1)*z2",
    "even coupling": "He2(z1) + He2(z1)*z2",
    "paper": "He2(z1)/2 + He4(z1)/(4*sqrt(3))",
    "He3": "He3(z1)/sqrt(6)",
    "z1z2z3": "z1*z2*z3",
}


def settings(d: int) -> dict[str, dict]:
    return {
        "T = 1": dict(steps=1),
        "T = 2": dict(steps=2),
        "T = 3": dict(steps=3),
        "T = 2, reused batch": dict(steps=2, batch="reuse"),
        "residual, eta_t = sqrt d": dict(steps=2, step_size="sqrt_d"),
        "residual, eta_2 = sqrt d/4": dict(steps=2, step_size=[math.sqrt(d), math.sqrt(d) / 4]),
        "residual, no biases": dict(steps=2, biases="none"),
        "gradient, stable": dict(steps=2, later_steps="gradient", step_size="stable"),
        "gradient, sqrt_d": dict(steps=2, later_steps="gradient", step_size="sqrt_d"),
    }


def _zero_bias_step(target, seed: int, d: int, width: int):
    """T = 2 with the default residual step, except b = 0 in the step's mask: W² = W¹ +
    2η₂·a_j·mean(s·1[w_j¹·x ≥ 0]·x), s the residual of the T = 1 model on batch 2 minus its
    mean and linear part, η₂ = √d/2; then the head (N(0, 1) biases) on batch 2."""
    n = 16 * d * d
    stream = rl.DataStream(target, noise=0.0, seed=seed)
    one = rl.GiantStepNetwork(width=width, steps=1, seed=seed).fit_stream(stream, n, 2048)
    X, y = (v.to(torch.float64) for v in next(iter(stream.chunks(n, n, start=n)))[:2])
    r = y - one.predict(X.to(one.W_.dtype)).to(torch.float64)
    s = r - r.mean() - X @ (r @ X / n)
    W1, a = one.W_.to(torch.float64), one.initial_network_.a.to(torch.float64)
    mask = (X @ W1.T >= 0).to(torch.float64)
    W2 = W1 + 2 * (math.sqrt(d) / 2) * a[:, None] * ((mask * s[:, None]).T @ X) / n
    two = copy.copy(one)
    two.W_ = W2.to(one.W_.dtype)
    alpha, beta = (v.to(one.W_.dtype) for v in (y.mean(), y @ X / n))
    two._fit_head(stream, n, n, alpha, beta, stream.split("holdout"), 2048)  # batch 2's head
    risk = float(rl.excess_risk(two, target, n_test=10_000, seed=1).risk)
    return risk, _cos2(two.W_, target.U.to(torch.float64))


def _network_risk(target, seed: int, d: int, width: int) -> float:
    """Test MSE of the network itself (fixed second layer, no head) after Algorithm 1's step."""
    test = rl.sample(target, n=10_000, noise=0.0, seed=1)
    net = rl.GiantStepNetwork(width=width, steps=1, diagnostics_data=test, seed=seed)
    net.fit_stream(rl.DataStream(target, noise=0.0, seed=seed), n=16 * d * d, n_holdout=2048)
    return net.history_[0]["network_risk"]


def _cos2(W: torch.Tensor, U: torch.Tensor) -> list[float]:
    W = W.to(torch.float64)
    return [float(v) for v in (W @ U.T).pow(2).sum(0) / W.pow(2).sum()]


def _fit(target, seed: int, d: int, width: int, kwargs: dict) -> tuple[float, list[float]]:
    net = rl.GiantStepNetwork(width=width, seed=seed, **kwargs)
    net.fit_stream(rl.DataStream(target, noise=0.0, seed=seed), n=16 * d * d, n_holdout=2048)
    risk = float(rl.excess_risk(net, target, n_test=10_000, seed=1).risk)
    return risk, _cos2(net.W_, target.U.to(torch.float64))


def _summary(rows) -> str:
    risks = [r for r, _ in rows]
    cos = list(zip(*[c for _, c in rows], strict=True))
    sd = statistics.stdev(risks) if len(risks) > 1 else 0.0
    parts = [f"risk {statistics.mean(risks):.3f} ± {sd:.3f}"]
    parts += [f"cos² u{k + 1} {statistics.mean(v):.3f}" for k, v in enumerate(cos[:2])]
    return " | ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=32)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--targets", nargs="*", default=list(TARGETS), choices=list(TARGETS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    d, width = args.d, args.width
    print(f"d = {d}, width {width}, n = 16 d^2 = {16 * d * d} per step, {args.seeds} seeds")
    for name in args.targets:
        target = rl.MultiIndexTarget.from_expression(TARGETS[name], d=d, seed=0)
        risks = [_network_risk(target, seed, d, width) for seed in range(args.seeds)]
        print(f"{name} | network itself after step 1: test MSE {statistics.mean(risks):.3g}")
        for label, kwargs in settings(d).items():
            rows = [_fit(target, seed, d, width, kwargs) for seed in range(args.seeds)]
            print(f"{name} | {label:<29}| {_summary(rows)}", flush=True)
        rows = [_zero_bias_step(target, seed, d, width) for seed in range(args.seeds)]
        print(f"{name} | {'residual, b = 0 in the step':<29}| {_summary(rows)}", flush=True)


if __name__ == "__main__":
    main()
