"""Time of each GiantStepNetwork step pass against Algorithm 1's step pass — a benchmark, not a
test.

    python benchmarks/bench_giant_step.py            # d = 64, m = 1024, n = 2²⁰ (the issue's)
    python benchmarks/bench_giant_step.py --quick    # n = 2¹⁶, a smoke run

Data: n samples of the paper's target (d = 64, noise 1) materialised once as float32 arrays,
every step on the same batch (``batch="reuse"``), so each pass reads the same rows and only
the computation differs. Timed, best of ``--repeats``:

- Algorithm 1's step pass: ``first_layer_step_sum`` over the m/2 distinct neurons, labels
  y − α − β·x (what ``OneStepNetwork.fit`` runs for its step);
- each step pass of ``GiantStepNetwork(steps=3)`` (paper's defaults: step 1 with λ₁ = 1/η₁,
  then η = 0.05, λ = 0): step 1 is the same m/2-row pass on f ≡ 0; step 2 the paired m/2-row
  pass (w_{j+m/2} = −w_j, f = Σ a_j w_j·x); step 3 the general pass over all m rows
  (partners are unrelated after step 2), whose matrix products are twice Algorithm 1's.

The α/β pass (the same in both) and the ridge head (the same code) are not timed. Prints a
Markdown table with seconds and the ratio to Algorithm 1's step pass.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

import replearn as rl
from replearn.learners import giant_step
from replearn.learners.giant_step import GiantStepNetwork
from replearn.learners.one_step import first_layer_step_sum
from replearn.learners.sources import ArraySource, linear_moments
from replearn.network import symmetric_init


class Timed:
    """Wraps a function and records the wall time of each call."""

    def __init__(self, function):
        self.function, self.seconds = function, []

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        out = self.function(*args, **kwargs)
        self.seconds.append(time.perf_counter() - start)
        return out


def skip_head(*args, **kwargs) -> None:
    """Stands in for the ridge head (an m×m Gram pass that would dominate the run)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 2^16 instead of 2^20")
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=32_768)
    args = parser.parse_args()
    n = 2**16 if args.quick else 2**20
    d, width, chunk = args.d, args.width, args.chunk_size
    target = rl.paper_target(d, seed=0)
    stream = rl.DataStream(target, noise=1.0, seed=0)
    X = torch.cat([c[0] for c in stream.chunks(n, chunk)])
    y = torch.cat([c[1] for c in stream.chunks(n, chunk)])
    source = ArraySource(X, y)
    cpu = torch.device("cpu")

    # Algorithm 1's step pass
    init = symmetric_init(width, d, 0)
    alpha, beta = linear_moments(source, n, 0, chunk, torch.float32, cpu)

    def labels(Xc, yc):
        return yc - alpha - Xc @ beta

    # interleaved (Algorithm 1's pass, then the giant steps' passes timed inside fit) so that
    # a shared machine's load drifts over both alike
    algorithm_1, per_step = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        first_layer_step_sum(source, n, 0, init.W[: width // 2], labels, chunk, torch.float32, cpu)
        algorithm_1.append(time.perf_counter() - start)
        model = GiantStepNetwork(
            width=width, steps=3, step_size=[d**0.5, 0.05, 0.05], batch="reuse",
            ridge_lambda=1e-3, chunk_size=chunk,
        )  # fmt: skip
        step_1 = Timed(first_layer_step_sum)
        later = Timed(model._gradient_sum)  # the bound method, on this instance only
        giant_step.first_layer_step_sum = step_1
        model._gradient_sum = later
        model._fit_head = skip_head  # not timed here: the same code as OneStepNetwork's head
        try:
            model.fit(X, y)
        finally:
            giant_step.first_layer_step_sum = step_1.function
        per_step.append(step_1.seconds + later.seconds)
        paired = [entry["paired_pass"] for entry in model.history_]
        del model
    best_1 = min(algorithm_1)
    best = [min(run[t] for run in per_step) for t in range(3)]
    kinds = [
        "1 (f ≡ 0, m/2 rows)",
        "2 (paired: m/2 rows)" if paired[1] else "2 (all m rows)",
        "3 (all m rows)",
    ]
    print(
        f"d = {d}, m = {width}, n = {n}, float32, chunk {chunk}, best of {args.repeats}; "
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    )
    print()
    print("| pass | seconds | / Algorithm 1's step pass |")
    print("|---|---|---|")
    print(f"| Algorithm 1's step pass (OneStepNetwork) | {best_1:.2f} | 1.00 |")
    for kind, seconds in zip(kinds, best, strict=True):
        print(f"| GiantStepNetwork step {kind} | {seconds:.2f} | {seconds / best_1:.2f} |")


if __name__ == "__main__":
    main()
