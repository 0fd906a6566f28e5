"""Wall time of single Fig. 1 runs (seed 0, width 1000) — where a configs/paper-fig1.yaml run spends its time.

    .venv/bin/python scripts/time_fig1_cells.py

Each run is executed exactly as the engine does (``execute_run``, one torch thread).
"""

from __future__ import annotations

import time

from replearn.experiments.executors import execute_run
from replearn.experiments.grid import expand_grid
from replearn.experiments.spec import load_spec


def main(methods=("ntk", "one_step", "random_features"), width=1000, ns=(3162, 10_000, 100_000)):
    cells = expand_grid(load_spec("configs/paper-fig1.yaml"))
    print("| method | width | n | wall time | risk |\n|---|---|---|---|---|")
    for method in methods:
        for n in ns:
            (config,) = [
                c for c in cells
                if c["method"] == method and c["params"]["width"] == width and c["n"] == n and c["seed"] == 0
            ]  # fmt: skip
            start = time.perf_counter()
            result = execute_run(config, threads=1)
            elapsed = time.perf_counter() - start
            risk = result.get("metrics", {}).get("risk")
            print(f"| {method} | {width} | {n} | {elapsed:.1f} s | {risk:.3f} |", flush=True)


if __name__ == "__main__":
    main()
