"""FᵀF of one chunk: the full product vs the upper block triangle ``GramAccumulator`` forms.

.venv/bin/python benchmarks/bench_gram.py                 # 32768 × 6000 (NTK, width 1000, d = 10), 1 thread
.venv/bin/python benchmarks/bench_gram.py --rows 8192 --width 2048 --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch

from replearn.linalg.ridge import GramAccumulator


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=32_768)
    parser.add_argument("--width", type=int, default=6_000)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (experiments run with 1)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    F = torch.randn(args.rows, args.width, generator=torch.Generator().manual_seed(0))
    y = torch.randn(args.rows, generator=torch.Generator().manual_seed(1))
    default = GramAccumulator.block_columns
    print(
        f"| FᵀF of a {args.rows}×{args.width} float32 chunk, {args.threads} thread(s) | blocks | seconds |"
    )
    print("|---|---|---|")
    results = {}
    for name, block_columns in (
        ("full product", 10**9),
        ("upper block triangle (default)", default),
    ):
        GramAccumulator.block_columns = block_columns
        acc = GramAccumulator(args.width)
        start = time.perf_counter()
        acc.add(F, y)
        seconds = time.perf_counter() - start
        results[name] = acc.moments()[0]
        print(f"| {name} | {len(acc._blocks)} | {seconds:.2f} |")
    GramAccumulator.block_columns = default
    full, blocked = results.values()
    print(
        f"\nmax |difference| / max |G|: {float((full - blocked).abs().max() / full.abs().max()):.1e}"
    )


if __name__ == "__main__":
    main()
