"""The single-step experiment of Dandi et al. (2023), both ways, in one process.

Problem (their notebook single_step/single_step.ipynb, one of its three sample sizes): d = 512,
width p = 1024, n = d² = 262 144 training samples, 10⁵ test points, noise 0, target
f*(z) = (h(θ₁·z) + h(θ₂·z))/2 with h = He₄/24 + He₂/2 + He₁ and θ₁ ⊥ θ₂ unit vectors.

1. **Their approach**, re-implemented in float64 numpy with everything materialised: draw Z, Y;
   subtract A = mean(Y) and B = mean(Y·z) from the labels; one giant step on the first layer
   with the second layer a₀ fixed, G = (1/n) Zᵀ[(1/√p)(Y − A − ZB − f₀(Z)) a₀ᵀ ⊙ σ'(ZW₀ᵀ)],
   W = W₀ + η Gᵀ with η = 10·√n·√p; features X = ReLU(ZWᵀ); ridge on X/√p with λ = 1 through
   inv(XᵀX/p + λI) @ (Xᵀ/√p) @ y (their evaluation order); the test set is preprocessed with its
   own A, B as in the notebook. One seed (their notebook averages 10).
2. **replearn with defaults**: ``OneStepNetwork(width=1024).fit_stream(stream, n)`` (float32,
   streamed, λ chosen on 10⁵ holdout samples) and ``rl.excess_risk(net, target)`` (10⁵ test
   samples).

Prints the wall time of each (sampling included), the ratio and both excess risks.

    python benchmarks/bench_dandi.py                 # ≈ 1–2 min on 2 cores, ≈ 9 GB peak
    python benchmarks/bench_dandi.py --d 64 --n 4096 --n-test 4096   # smoke run
    python benchmarks/bench_dandi.py --skip-theirs --profile          # where replearn's time goes
    python benchmarks/bench_dandi.py --skip-theirs --cache-bytes 0    # every pass draws again
    python benchmarks/bench_dandi.py --sampler torch                  # torch's sampler for training
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import pstats
import time

import numpy as np
import torch

import replearn as rl
from replearn.data import set_cache_bytes

# h = He₄/24 + He₂/2 + He₁ in the probabilists' Hermite basis replearn's targets use
H_COEFFICIENTS = {4: 1 / 24, 2: 1 / 2, 1: 1.0}


def h_numpy(t: np.ndarray) -> np.ndarray:
    return (t**4 - 6 * t**2 + 3) / 24 + (t**2 - 1) / 2 + t


def make_target(d: int, seed: int) -> tuple[rl.MultiIndexTarget, np.ndarray]:
    """f*(x) = (h(θ₁·x) + h(θ₂·x))/2 as a MultiIndexTarget, and Θ = (θ₁, θ₂) as numpy rows."""
    theta = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, 2)))[0].T
    terms = {}
    for k, c in H_COEFFICIENTS.items():
        terms[(k, 0)] = c / 2
        terms[(0, k)] = c / 2
    return rl.MultiIndexTarget(torch.from_numpy(theta.copy()), terms), theta


def theirs(d: int, width: int, n: int, n_test: int, theta: np.ndarray, seed: int) -> float:
    """Their single step + ridge, float64 numpy, materialised; returns the test excess risk."""
    rng = np.random.default_rng(seed)
    p = width

    def f_star(Z):
        return (h_numpy(Z @ theta[0]) + h_numpy(Z @ theta[1])) / 2

    def relu(x):
        return np.maximum(x, 0)

    Z, Z_test = rng.standard_normal((n, d)), rng.standard_normal((n_test, d))
    Y, Y_test = f_star(Z), f_star(Z_test)  # noise 0, as in their notebook
    W0 = rng.standard_normal((p, d)) / np.sqrt(d)
    a0 = rng.standard_normal(p) / np.sqrt(p)
    eta = 10 * np.sqrt(n) * np.sqrt(p)
    A, A_test = Y.mean(), Y_test.mean()
    B, B_test = (Y[:, None] * Z).mean(0), (Y_test[:, None] * Z_test).mean(0)
    Y_pre, Y_test_pre = Y - A - Z @ B, Y_test - A_test - Z_test @ B_test
    f0 = relu(Z @ W0.T) @ a0 / np.sqrt(p)
    G = Z.T @ (np.outer(Y_pre - f0, a0) / np.sqrt(p) * (Z @ W0.T > 0)) / n
    W = W0 + eta * G.T
    X, X_test = relu(Z @ W.T), relu(Z_test @ W.T)
    Xs = X / np.sqrt(p)
    w = np.linalg.inv(Xs.T @ Xs + 1.0 * np.identity(p)) @ Xs.T @ Y_pre
    prediction = A_test + Z_test @ B_test + X_test @ w / np.sqrt(p)
    del Y_test_pre
    return float(np.mean((prediction - f_star(Z_test)) ** 2))


def ours(
    target, n: int, n_test: int, width: int, sampler: str = "numpy"
) -> tuple[float, rl.OneStepNetwork]:
    stream = rl.DataStream(target, noise=0.0, seed=0, sampler=sampler)
    net = rl.OneStepNetwork(width=width).fit_stream(stream, n)
    return rl.excess_risk(net, target, n_test=n_test).risk, net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--n", type=int, default=None, help="default d²")
    parser.add_argument("--n-test", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-theirs", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile replearn's run")
    parser.add_argument("--cache-bytes", type=int, default=None, help="replearn's stream budget")
    parser.add_argument(
        "--sampler", choices=["numpy", "torch"], default="numpy",
        help="the training stream's sampler (holdout included; the test set is numpy's)",
    )  # fmt: skip
    args = parser.parse_args()
    n = args.n or args.d**2
    target, theta = make_target(args.d, args.seed)
    # the target object and the numpy formula are the same function (checked on a few points)
    probe = np.random.default_rng(1).standard_normal((16, args.d))
    reference = (h_numpy(probe @ theta[0]) + h_numpy(probe @ theta[1])) / 2
    assert np.allclose(target(torch.from_numpy(probe)).numpy(), reference, rtol=1e-10, atol=1e-10)
    if args.cache_bytes is not None:
        set_cache_bytes(args.cache_bytes)
    print(f"d = {args.d}, width = {args.width}, n = {n}, n_test = {args.n_test}, noise 0; "
          f"sampler {args.sampler}; torch {torch.__version__}, {torch.get_num_threads()} threads")  # fmt: skip

    # warm-up (thread pools, allocator, first-call costs), as for every timed library call in
    # benchmarks/: one small fit on another seed; their numpy code is timed after ours, warm too
    ours(make_target(args.d, args.seed + 1)[0], 4096, 4096, args.width, args.sampler)
    profiler = cProfile.Profile() if args.profile else None
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    risk_ours, net = ours(target, n, args.n_test, args.width, args.sampler)
    if profiler:
        profiler.disable()
    time_ours = time.perf_counter() - start
    print(f"replearn fit_stream + excess_risk: {time_ours:.1f} s, excess risk {risk_ours:.4f} "
          f"(λ = {net.ridge_lambda_:.3g})")  # fmt: skip
    if profiler:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(18)
        print(text.getvalue())
    if args.skip_theirs:
        return
    start = time.perf_counter()
    risk_theirs = theirs(args.d, args.width, n, args.n_test, theta, args.seed)
    time_theirs = time.perf_counter() - start
    print(f"their approach (float64 numpy, materialised): {time_theirs:.1f} s, "
          f"excess risk {risk_theirs:.4f}")  # fmt: skip
    ratio = time_theirs / time_ours
    print(f"speed-up {ratio:.2f}× (issue: ≥ 4×); risk ours/theirs {risk_ours / risk_theirs:.3f}")
    assert math.isfinite(ratio)


if __name__ == "__main__":
    main()
