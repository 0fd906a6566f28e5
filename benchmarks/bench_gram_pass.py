"""Gram pass FᵀF over a stream of chunks, against the plain fp32 GEMM of the same chunks.

.venv/bin/python benchmarks/bench_gram_pass.py              # the shapes of the table in docs/performance.md
.venv/bin/python benchmarks/bench_gram_pass.py --quick

For each (m features, r rows per chunk) — r as the learners chunk: 32 768 rows for Algorithm 1
and random features, 8·⌊2¹⁹/p⌋ for the NTK's p tangent features — it times, on the same
float32 chunks, (a) the bare GEMM FᵀF per chunk (the rate to reach), (b) ``GramAccumulator``
with its row buffer off (each chunk's product cast to float64 and added: the earlier
behaviour) and (c) as shipped. Rates count 2·r·m² flops per chunk (the full product), so the
upper-block-triangle split of wide F can exceed 100 %. Median of ``--repeats``, one process,
``--threads`` torch threads (experiments run with 1).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from replearn.linalg.ridge import GramAccumulator

SHAPES = [(100, 32_768), (1024, 32_768), (2048, 32_768), (8192, 4096), (6000, 696), (2048, 2048)]


def _time(repeats: int, fn, *args) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _gemm(F, n_chunks):
    for _ in range(n_chunks):
        F.T @ F


def _accumulate(F, y, n_chunks, buffer_rows):
    GramAccumulator.buffer_rows = buffer_rows
    acc = GramAccumulator(F.shape[1])
    for _ in range(n_chunks):
        acc.add(F, y)
    acc.moments()


def _parts(m: int, rows: int, repeats: int) -> None:
    """Per chunk of ``rows`` rows: the GEMMs of the upper block triangle vs their float64 cast-add."""
    F = torch.randn(rows, m, generator=torch.Generator().manual_seed(0))
    acc = GramAccumulator(m)
    print(f"\none {rows}×{m} float32 chunk, {len(acc._blocks)} column blocks:")
    for _ in range(repeats):
        start = time.perf_counter()
        products = [F[:, lo:hi].T @ F[:, lo:] for lo, hi in acc._blocks]
        middle = time.perf_counter()
        for (lo, hi), product in zip(acc._blocks, products):
            acc.gram[lo:hi, lo:] += product.to(torch.float64)
        end = time.perf_counter()
        share = (end - middle) / (end - start)
        print(f"GEMMs {middle - start:.3f} s, float64 cast-add {end - middle:.3f} s ({share:.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows-total", type=int, default=2**16, help="rows per pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small shapes (smoke run)")
    parser.add_argument("--shapes", nargs="+", default=None, help="m:rows pairs, e.g. 6000:696")
    parser.add_argument(
        "--parts", action="store_true", help="per shape, also split one chunk's time"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shapes = [(64, 4096), (2048, 256)] if args.quick else SHAPES
    if args.shapes:
        shapes = [tuple(int(v) for v in shape.split(":")) for shape in args.shapes]
    total = 4096 if args.quick else args.rows_total
    print(f"{args.threads} torch thread(s), {total} rows per pass, median of {args.repeats}\n")
    print(
        "| m | rows per chunk | GEMM FᵀF (GFLOP/s) | accumulate, no buffer | accumulate (shipped) |"
    )
    print("|---|---|---|---|---|")
    default_rows = GramAccumulator.buffer_rows
    for m, rows in shapes:
        g = torch.Generator().manual_seed(0)
        F = torch.randn(rows, m, generator=g)
        y = torch.randn(rows, generator=g)
        n_chunks = max(1, total // rows)
        flops = 2 * rows * m * m * n_chunks
        rate = flops / _time(args.repeats, _gemm, F, n_chunks) / 1e9
        old = flops / _time(args.repeats, _accumulate, F, y, n_chunks, 1) / 1e9
        new = flops / _time(args.repeats, _accumulate, F, y, n_chunks, default_rows) / 1e9
        GramAccumulator.buffer_rows = default_rows
        print(
            f"| {m} | {rows} | {rate:.1f} | {old:.1f} ({old / rate:.0%}) | {new:.1f} ({new / rate:.0%}) |",
            flush=True,
        )
        if args.parts:
            _parts(m, rows, args.repeats)


if __name__ == "__main__":
    main()
