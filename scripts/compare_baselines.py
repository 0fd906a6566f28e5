"""Separation table and FullTraining vs Algorithm 1 at equal n (3 seeds), for docs/results.md.

.venv/bin/python scripts/compare_baselines.py 100,1000,10000 [method names, comma-separated]
"""

import statistics
import sys
import time

import replearn as rl
from replearn.learners.full_training import FullTraining
from replearn.learners.ntk import NTKRegression
from replearn.learners.one_step import OneStepNetwork
from replearn.learners.random_features import RandomFeatures

target = rl.paper_target(10)
makers = {
    "random features": lambda s: RandomFeatures(width=100, seed=s),
    "NTK (linearised)": lambda s: NTKRegression(width=100, seed=s),
    "Algorithm 1": lambda s: OneStepNetwork(width=100, seed=s),
    "full training (Adam)": lambda s: FullTraining(width=100, seed=s),
}
ns = [int(x) for x in sys.argv[1].split(",")]
names = sys.argv[2].split(",") if len(sys.argv) > 2 else list(makers)
for name in names:
    for n in ns:
        risks, times, extra = [], [], []
        for seed in range(3):
            stream = rl.DataStream(target, noise=1.0, seed=seed)
            model = makers[name](seed)
            t0 = time.perf_counter()
            model.fit_stream(
                stream, n, n_holdout=100_000 if not name.startswith("full") else 10_000
            )
            times.append(time.perf_counter() - t0)
            risks.append(rl.excess_risk(model, target, n_test=100_000, seed=100 + seed).risk)
            if hasattr(model, "n_steps_"):
                extra.append(model.n_steps_)
        print(
            f"| {name} | {n:.0e} | {statistics.mean(risks):.3f} ± {statistics.stdev(risks):.3f} | {statistics.mean(times):.2f} s |"
            + (f" {statistics.mean(extra):.0f} steps |" if extra else ""),
            flush=True,
        )
