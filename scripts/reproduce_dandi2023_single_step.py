"""Reproduce Dandi, Krzakala, Loureiro, Pesce & Stephan 2023, one giant step then ridge.

Source: lucpoisson/GiantStep, single_step/single_step.ipynb (cell 3: target and network,
cell 6: settings, cell 9: the loop and its printed test errors).

Their settings: d = 512, p = 1024, n = d^ℓ for ℓ = 1.3, 1.65, 2 (``np.logspace(1.3, 2, 3,
base=d)``: 3326, 29532, 262144), no noise, 10 seeds, n_test = 10⁵; target
y = (g(θ₁·x) + g(θ₂·x))/2, g = He₁ + He₂/2 + He₄/24 (not normalised), θ₁ ⟂ θ₂ unit; W⁰ ~ N(0,
I/d) (p × d) and a⁰ ~ N(0, 1/p) drawn once, outside the seed loop; f = σ(ZWᵀ)a/√p, ReLU, no
biases; labels preprocessed y − A − Z·B (A = mean y, B = mean y·z); W¹ = W⁰ + η·Gᵀ with G
minus the gradient of the ½-mean loss, η = 10·√(n·p); ridge min ‖y − Xw/√p‖² + λ‖w‖², λ = 1,
on X = ReLU(Z W¹ᵀ); test error mean (A_test + Z_test·B_test + X_test·w/√p − y_test)² with the
TEST set's own A_test, B_test.

replearn: ``GiantStepNetwork(width=p, steps=1, step_size=η/2, weight_decay=0.0,
preprocess=True, output_scale="1/sqrt(m)", first_layer=W⁰, second_layer=a⁰, biases="none",
ridge_lambda=2λ/n)`` (our loss (1/n)Σ(f − s)² is twice theirs: η/2; our ridge
(1/n)‖Φa − r‖² + (λ'/2)‖a‖²: λ' = 2λ/n), exact to rounding against the notebook's steps
(tests/test_reproduce_peers.py). Two test errors: replearn's predictor (the training α, β) and
the notebook's score (the same fitted network with the test set's α, β). Beside it Algorithm 1
(``OneStepNetwork(width=p)``, the paper's defaults, λ by GCV) on the same data.

    PYTHONPATH=src python scripts/reproduce_dandi2023_single_step.py --d 128 --seeds 5
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from replearn.learners.giant_step import GiantStepNetwork
from replearn.learners.one_step import OneStepNetwork

PUBLISHED = {1.3: (0.3360, 0.0063), 1.65: (0.2068, 0.0059), 2.0: (0.0774, 0.0021)}
EXPONENTS = (1.3, 1.65, 2.0)


def g(z: torch.Tensor) -> torch.Tensor:
    """He₄/24 + He₂/2 + He₁ (cell 3)."""
    return (z**4 - 6 * z**2 + 3) / 24 + (z**2 - 1) / 2 + z


def initialisation(d: int, p: int, seed: int = 1234):
    """θ (2, d) orthonormal, W⁰ ~ N(0, I/d) (p, d), a⁰ ~ N(0, 1/p): drawn once, as there."""
    gen = torch.Generator().manual_seed(seed)
    theta = torch.linalg.qr(torch.randn(d, 2, generator=gen, dtype=torch.float64))[0].T
    W0 = torch.randn(p, d, generator=gen, dtype=torch.float64) / math.sqrt(d)
    a0 = torch.randn(p, generator=gen, dtype=torch.float64) / math.sqrt(p)
    return theta, W0, a0


def data(n: int, theta: torch.Tensor, gen: torch.Generator, dtype):
    Z = torch.randn(n, theta.shape[1], generator=gen, dtype=torch.float64)
    y = (g(Z @ theta[0]) + g(Z @ theta[1])) / 2
    return Z.to(dtype), y.to(dtype)


def run_one(d, p, n, n_test, seed, init, dtype, algorithm1=True) -> dict:
    theta, W0, a0 = init
    gen = torch.Generator().manual_seed(10_000 + seed)
    Z, y = data(n, theta, gen, dtype)
    Z_test, y_test = data(n_test, theta, gen, dtype)
    eta_D, lam_D = 10 * math.sqrt(n * p), 1.0
    net = GiantStepNetwork(
        width=p, steps=1, step_size=eta_D / 2, weight_decay=0.0, preprocess=True,
        output_scale="1/sqrt(m)", first_layer=W0, second_layer=a0, biases="none",
        ridge_lambda=2 * lam_D / n, dtype=dtype,
    ).fit(Z, y)  # fmt: skip
    prediction = net.predict(Z_test).to(torch.float64)
    Z64, y64 = Z_test.to(torch.float64), y_test.to(torch.float64)
    ours = float(((prediction - y64) ** 2).mean())
    # the notebook's score: the same network part with the test set's own A_test, B_test
    network_part = prediction - net.alpha_.double() - Z64 @ net.beta_.double()
    A_t, B_t = y64.mean(), (y64[:, None] * Z64).mean(0)
    notebook = float(((A_t + Z64 @ B_t + network_part - y64) ** 2).mean())
    out = {"replearn": ours, "notebook_score": notebook}
    if algorithm1:
        alg1 = OneStepNetwork(width=p, dtype=dtype, seed=seed).fit(Z, y)
        out["algorithm1"] = float(((alg1.predict(Z_test).double() - y64) ** 2).mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first…first+seeds−1")
    parser.add_argument("--n-test", type=int, default=100_000)
    parser.add_argument("--exponents", type=float, nargs="+", default=list(EXPONENTS))
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--no-algorithm1", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    d, p = args.d, 2 * args.d
    init = initialisation(d, p)
    dtype = getattr(torch, args.dtype)
    results = {"d": d, "p": p, "seeds": args.seeds, "n_test": args.n_test, "rows": []}
    for ell in args.exponents:
        started = time.time()
        n = int(d**ell)  # np.logspace(1.3, 2, 3, base=d), cast to int as there
        runs = [
            run_one(d, p, n, args.n_test, s, init, dtype, not args.no_algorithm1)
            for s in range(args.first_seed, args.first_seed + args.seeds)
        ]
        row = {"ell": ell, "n": n, "wall_s": round(time.time() - started, 1)}
        row["per_seed"] = {k: [r[k] for r in runs] for k in runs[0]}
        for key in runs[0]:
            values = np.array([r[key] for r in runs])
            row[key] = (float(values.mean()), float(values.std()))
        results["rows"].append(row)
        pub = PUBLISHED.get(ell)
        pub_text = f"{pub[0]:.4f} ± {pub[1]:.4f}" if pub and d == 512 else "—"
        cells = "  ".join(f"{k} {v[0]:.4f} ± {v[1]:.4f}" for k, v in row.items() if
                          isinstance(v, tuple))  # fmt: skip
        print(f"ℓ = {ell}, n = {n}: published {pub_text}  {cells}  ({row['wall_s']} s)")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
