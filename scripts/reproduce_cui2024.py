"""Reproduce Cui, Pesce, Dandi, Krzakala, Lu, Zdeborová & Loureiro 2024: one giant step on
n₀ = α₀·d samples, then ridge on n = α·d fresh samples.

Source: SPOC-group/OneStepGD_asymptotics, Simulations.ipynb (cell 3: activations and network,
cell 5: settings, cell 7: initialisation, cell 9: the step, cells 11–12: ridge and the loop;
cell 12's printed test errors are the published numbers).

Their settings: d = p = 2000, n_test = 5000, α₀ = 0.5 (n₀ = 1000), η̃ = 1, λ = 0.01,
α ∈ linspace(0.2, 3, 7), 3 seeds; y = tanh(x₁), no noise; tanh student
f = aᵀtanh(Wx)/√p with a = 1/√p (all equal), W⁰ Gaussian rows normalised to 1
(``np.random.seed(58)``); the step W¹ = W⁰ + η̃·p·G with G minus the gradient of the ½-mean
loss, taken once (the step's data drawn once, after W⁰); for each α and seed a fresh training
set, ridge min ‖y − Xw/√p‖² + λ‖w‖² on X = tanh(Z W¹ᵀ) (no preprocessing, no intercept),
test error mean (X_test·w/√p − y_test)².

replearn: ``GiantStepNetwork(width=p, steps=1, step_size=η̃·p/2, weight_decay=0.0,
preprocess=False, activation="tanh", output_scale="1/sqrt(m)", first_layer="unit_rows",
second_layer="constant", biases="none", ridge_lambda=2λ/n)`` fitted on the n₀ step samples,
then ``transfer(X, y)`` on each fresh training set (our loss (1/n)Σ(f − y)² is twice theirs:
η = η̃·p/2; our ridge (1/n)‖Φa − r‖² + (λ'/2)‖a‖² on Φ = tanh(W¹x)/√p: λ' = 2λ/n).
W⁰ and the step's data are drawn once per step seed (theirs: once); the spread is over the
ridge data, as theirs.

    PYTHONPATH=src python scripts/reproduce_cui2024.py --d 500 --seeds 3
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from replearn.learners.giant_step import GiantStepNetwork

ALPHAS = np.linspace(0.2, 3, 7)
# cell 12's printed test errors, 3 seeds per α (d = p = 2000)
PUBLISHED_RUNS = [
    (0.2990775949993957, 0.2898524418194445, 0.29418381263621085),
    (0.3218365759752591, 0.31863128816064645, 0.3151598647331156),
    (0.26713115046865477, 0.2885155886165104, 0.27541431235674196),
    (0.19540339213297506, 0.21767984115339958, 0.20400605095996252),
    (0.16899557812018212, 0.17510121804693074, 0.1724069785141186),
    (0.15161510868072295, 0.1566964898890306, 0.15631225980360028),
    (0.1426574683324664, 0.14221553063145795, 0.1485439373561868),
]
ALPHA0, ETA_TILDE, LAMBDA, N_TEST = 0.5, 1.0, 0.01, 5000


def data(n: int, d: int, gen: torch.Generator, dtype):
    X = torch.randn(n, d, generator=gen, dtype=torch.float64)
    return X.to(dtype), torch.tanh(X[:, 0]).to(dtype)


def run(d: int, seeds: int, step_seed: int, dtype) -> dict:
    p = d
    gen = torch.Generator().manual_seed(100_000 + step_seed)
    X0, y0 = data(int(ALPHA0 * d), d, gen, dtype)
    net = GiantStepNetwork(
        width=p, steps=1, step_size=ETA_TILDE * p / 2, weight_decay=0.0, preprocess=False,
        activation="tanh", output_scale="1/sqrt(m)", first_layer="unit_rows",
        second_layer="constant", biases="none", ridge_lambda=1.0, dtype=dtype, seed=step_seed,
    ).fit(X0, y0)  # fmt: skip
    rows = []
    for alpha in ALPHAS:
        n = int(alpha * d)
        errors = []
        for seed in range(seeds):
            g = torch.Generator().manual_seed(200_000 + 45 * seed)
            X, y = data(n, d, g, dtype)
            X_test, y_test = data(N_TEST, d, g, dtype)
            model = net.set_params(ridge_lambda=2 * LAMBDA / n).transfer(X, y)
            errors.append(float(((model.predict(X_test) - y_test).double() ** 2).mean()))
        rows.append({"alpha": float(alpha), "n": n, "errors": errors})
    return {"rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--step-seeds", type=int, default=1, help="independent W⁰ and step data")
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    started = time.time()
    dtype = getattr(torch, args.dtype)
    runs = [run(args.d, args.seeds, s, dtype) for s in range(args.step_seeds)]
    wall = round(time.time() - started, 1)
    print(f"d = p = {args.d}, {args.seeds} ridge seeds × {args.step_seeds} step seeds, {wall} s")
    table = []
    for i, alpha in enumerate(ALPHAS):
        ours = np.array([e for r in runs for e in r["rows"][i]["errors"]])
        pub = np.array(PUBLISHED_RUNS[i])
        per_step = [float(np.mean(r["rows"][i]["errors"])) for r in runs]
        table.append({"alpha": float(alpha), "published": (pub.mean(), pub.std()),
                      "replearn": (ours.mean(), ours.std()),
                      "per_step_seed_means": per_step})  # fmt: skip
        print(f"α = {alpha:.3f}: published {pub.mean():.4f} ± {pub.std():.4f}   "
              f"replearn {ours.mean():.4f} ± {ours.std():.4f}   per step seed "
              + " ".join(f"{m:.4f}" for m in per_step))  # fmt: skip
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"d": args.d, "wall_s": wall, "table": table}, fh, indent=1)


if __name__ == "__main__":
    main()
