"""The NTK's λ-path by Lanczos (``linalg.krylov``) vs one float64 eigh, on Fig. 1 cells (configs/paper-fig1.yaml).

.venv/bin/python benchmarks/bench_lambda_search.py                       # width 1000, n = d⁴, d⁵, seed 0
.venv/bin/python benchmarks/bench_lambda_search.py --ns 10000 --seeds 0 1 2

Each cell is run twice exactly as the engine runs it (``execute_run``, one torch thread):
with ``NTKRegression.lambda_search_min_features`` set above p (the eigh path) and at its
default (Lanczos). Printed: the chosen λ (equal λ = the same grid point),
the excess risk, wall time and this process's CPU time (a shared machine inflates the first).
"""

from __future__ import annotations

import argparse
import math
import time

from replearn.experiments.executors import execute_run
from replearn.experiments.grid import expand_grid
from replearn.experiments.spec import load_spec
from replearn.learners.ntk import NTKRegression


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--ns", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--spec", default="configs/paper-fig1.yaml")
    args = parser.parse_args()
    cells = expand_grid(load_spec(args.spec))
    default = NTKRegression.lambda_search_min_features
    print("| n | seed | path | λ | risk | wall time | CPU time |\n|---|---|---|---|---|---|---|")
    worst = 0.0
    for n in args.ns:
        for seed in args.seeds:
            (config,) = [
                c for c in cells
                if c["method"] == "ntk" and c["params"]["width"] == args.width and c["n"] == n
                and c["seed"] == seed
            ]  # fmt: skip
            risks = {}
            for name, threshold in (("eigh", 10**12), ("krylov", default)):
                NTKRegression.lambda_search_min_features = threshold
                cpu = time.process_time()
                result = execute_run(config, threads=1)
                cpu = time.process_time() - cpu
                if result["status"] != "done":
                    raise RuntimeError(result["error"])
                metrics = result["metrics"]
                lam = metrics.get("ridge_lambda", math.nan)
                risks[name] = metrics["risk"]
                print(
                    f"| {n} | {seed} | {name} | {lam:.6g} | {metrics['risk']:.5f} "
                    f"| {result['wall_time']:.1f} s | {cpu:.1f} s |",
                    flush=True,
                )
            NTKRegression.lambda_search_min_features = default
            worst = max(worst, abs(risks["krylov"] / risks["eigh"] - 1))
    print(f"\nlargest relative risk difference, Lanczos vs eigh: {worst:.2e}")


if __name__ == "__main__":
    main()
