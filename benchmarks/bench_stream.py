"""Where a streamed fit's sampling time goes, and what kept blocks, overlap and float32 save.

1. Drawing rate of one block (4096 samples) per sampler: numpy float64 (the default), numpy
   float32 (``sample_dtype="float32"``), torch on the CPU (``sampler="torch"``), in M numbers/s.
2. ``OneStepNetwork(width=m).fit_stream(stream, n, n_holdout)`` end to end, with the stream
   (a) keeping every block (the default budget), (b) drawing every pass again with the next
   chunk drawn in a background thread (``cache_bytes=0``), (c) the same without the thread
   (``replearn.data.PREFETCH = False``), (d) like (b) with ``sample_dtype="float32"``.
   Each the median of ``--repeats`` runs.

    python benchmarks/bench_stream.py            # d = 64 (n = 2²⁰) and d = 512 (n = 2¹⁸), m = 1024
    python benchmarks/bench_stream.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import replearn as rl
import replearn.data as data

MODES = {
    "kept (default budget)": dict(),
    "drawn each pass, overlapped": dict(cache_bytes=0),
    "drawn each pass, no overlap": dict(cache_bytes=0, prefetch=False),
    "drawn each pass, overlapped, float32 draws": dict(cache_bytes=0, sample_dtype="float32"),
}


def draw_rate(d: int, options: dict, blocks: int = 16) -> float:
    target = rl.MultiIndexTarget.random(d=d, r=2, degree=4, seed=0)
    stream = rl.DataStream(target, noise=1.0, seed=0, cache_bytes=0, **options)
    stream._block(0)
    start = time.perf_counter()
    for block in range(blocks):
        stream._block(block)
    return blocks * data.BLOCK_SIZE * d / (time.perf_counter() - start)


def fit_time(d: int, n: int, width: int, n_holdout: int, options: dict) -> float:
    options = dict(options)
    data.PREFETCH = options.pop("prefetch", True)
    target = rl.MultiIndexTarget.random(d=d, r=2, degree=4, seed=0)
    stream = rl.DataStream(target, noise=1.0, seed=0, **options)
    start = time.perf_counter()
    rl.OneStepNetwork(width=width).fit_stream(stream, n, n_holdout)
    seconds = time.perf_counter() - start
    data.PREFETCH = True
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    cases = [(64, 2**20), (512, 2**18)]
    width, n_holdout = 1024, 2**16
    if args.quick:
        cases, width, n_holdout, args.repeats = [(16, 2**13)], 64, 2**11, 1
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"width {width}, holdout {n_holdout}; median of {args.repeats}")  # fmt: skip
    print("\n| d | numpy float64 | numpy float32 | torch (CPU) |  (M numbers/s, one block)")
    print("|---|---|---|---|")
    for d, _ in cases:
        rates = [
            statistics.median(draw_rate(d, options) for _ in range(args.repeats))
            for options in (dict(), dict(sample_dtype="float32"), dict(sampler="torch"))
        ]
        print(f"| {d} | " + " | ".join(f"{r / 1e6:.0f}" for r in rates) + " |")
    print("\n| d | n | " + " | ".join(MODES) + " |")
    print("|---|---|" + "---|" * len(MODES))
    for d, n in cases:
        times = [
            statistics.median(
                fit_time(d, n, width, n_holdout, options) for _ in range(args.repeats)
            )
            for options in MODES.values()
        ]
        print(f"| {d} | {n} | " + " | ".join(f"{t:.2f} s" for t in times) + " |", flush=True)


if __name__ == "__main__":
    main()
