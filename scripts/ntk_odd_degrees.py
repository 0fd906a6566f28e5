"""Why the NTK at b⁰ = 0 misses ε = 0.2 on the scaling target: docs/results.md, section
"Scaling exponents".

With b = 0, ReLU(w·x) = (w·x + |w·x|)/2 and x·1[w·x ≥ 0] hold only degree 1 and even
degrees, so odd degrees ≥ 3 come only from the m/2 bias-gradient features 1[w_j·x ≥ 0].
This fits the linearised network with b = 0 (the paper's initialisation) and with
b ~ N(0, 1) on the r = 2, degree-4, κ = 2 target of configs/scaling.yaml (d = 4, width 128,
n = 2·10⁵, noise variance 1) and prints the risk and the share of each degree of f* learned.

    nice -n 10 .venv/bin/python scripts/ntk_odd_degrees.py
"""

from __future__ import annotations

import time

import torch

import replearn as rl
from replearn.learners.ntk import NTKRegression
from replearn.metrics import captured_degree_components


def main() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    target = rl.MultiIndexTarget.random(d=4, r=2, degree=4, seed=0, kappa=2.0)
    print(f"{target.describe()}\n")
    print("| NTK biases at init | excess risk | captured degree 2 / 3 / 4 |\n|---|---|---|")
    for bias in ("zero", "normal"):
        stream = rl.DataStream(target, noise=1.0, seed=0)
        net = NTKRegression(width=128, bias=bias, seed=0).fit_stream(
            stream, 200_000, n_holdout=20_000
        )
        risk = rl.excess_risk(net, target, n_test=20_000, seed=0).risk
        captured = captured_degree_components(net, target, n_test=50_000)
        shares = " / ".join(f"{captured[k]:.2f}" for k in sorted(captured))
        label = "b = 0" if bias == "zero" else "b ~ N(0, 1)"
        print(f"| {label} | {risk:.3f} | {shares} |")
    print(f"\n(wall time {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
