"""The NTK's Gram pass two ways: FᵀF of the materialised tangent features, and ``TangentGram``.

.venv/bin/python benchmarks/bench_tangent_gram.py            # Fig. 1's NTK (h = 500, d = 10) and others
.venv/bin/python benchmarks/bench_tangent_gram.py --quick

For each (h distinct neurons, d), both passes run over the same float32 chunks of Gaussian X
(zero biases, random signs): (a) as ``NTKRegression`` did before ``TangentGram``: the features
F = √2·[ReLU(u), a·g⊗x, a·g] of 8·⌊2¹⁹/p⌋-row chunks into ``GramAccumulator`` (row buffer,
upper block triangle), (b) ``TangentGram`` on chunks of ⌊2²⁴/h⌋ rows. Prints the seconds per
10⁴ samples, the ratio, and the largest difference of the two Gram matrices relative to
max |G| (float32 products, float64 sums: differences of order 10⁻⁶ are rounding). Median of
``--repeats``, ``--threads`` torch threads (experiments run with 1).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from replearn.learners.tangent_gram import TangentGram
from replearn.linalg.dense import block_rows
from replearn.linalg.ridge import GramAccumulator

SHAPES = [(500, 10), (256, 10), (256, 30), (128, 30), (64, 62)]


def features(X, W, b, a):
    pre = torch.addmm(b, X, W.T)
    gate = (pre >= 0).to(X.dtype) * a
    weight_part = (gate[:, :, None] * X[:, None, :]).reshape(X.shape[0], -1)
    return torch.cat([pre.relu_(), weight_part, gate], dim=1).mul_(math.sqrt(2.0))


def materialised_pass(X, r, W, b, a):
    p = W.shape[0] * (W.shape[1] + 2)
    rows = block_rows(p, torch.device("cpu"), cap=32_768) * 8
    acc = GramAccumulator(p)
    for start in range(0, X.shape[0], rows):
        acc.add(features(X[start : start + rows], W, b, a), r[start : start + rows])
    return acc.moments()


def structured_pass(X, r, W, b, a):
    rows = max(1, 2**24 // W.shape[0])
    acc = TangentGram(W, b, a)
    for start in range(0, X.shape[0], rows):
        acc.add(X[start : start + rows], r[start : start + rows])
    return acc.moments()


def timed(repeats, fn, *args):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40_000, help="samples per pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--shapes", nargs="+", default=None, help="h:d pairs, e.g. 500:10")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shapes = [(64, 10), (16, 6)] if args.quick else SHAPES
    if args.shapes:
        shapes = [tuple(int(v) for v in shape.split(":")) for shape in args.shapes]
    n = 2_000 if args.quick else args.n
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), n = {n} per pass")
    print(
        "| h | d | p | FᵀF of F (s / 10⁴ samples) | TangentGram (s / 10⁴) | ratio | max |ΔG|/max|G| |"
    )
    print("|---|---|---|---|---|---|---|")
    for h, d in shapes:
        g = torch.Generator().manual_seed(0)
        W = torch.randn(h, d, generator=g) / math.sqrt(d)
        b = torch.zeros(h)
        a = torch.where(torch.rand(h, generator=g) < 0.5, -1.0, 1.0)
        X = torch.randn(n, d, generator=g)
        r = torch.randn(n, generator=g)
        t_old, (g_old, c_old, _) = timed(args.repeats, materialised_pass, X, r, W, b, a)
        t_new, (g_new, c_new, _) = timed(args.repeats, structured_pass, X, r, W, b, a)
        diff = float((g_new - g_old).abs().max() / g_old.abs().max())
        scale = 1e4 / n
        print(
            f"| {h} | {d} | {h * (d + 2)} | {t_old * scale:.3f} | {t_new * scale:.3f} | "
            f"{t_old / t_new:.2f}× | {diff:.1e} |"
        )


if __name__ == "__main__":
    main()
