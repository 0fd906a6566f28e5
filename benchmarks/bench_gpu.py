"""Algorithm 1 streamed end to end against the device's fp32 GEMM rate; largest n per minute.

For each (d, n): a fresh ``DataStream`` on the device (so sampling is included: the first pass
draws, later passes read the kept blocks or draw again past the budget), then
``OneStepNetwork(width=m, device=…).fit_stream(stream, n, n_holdout)`` timed end to end. The flops
are counted as benchmarks/bench_one_step.py counts them (2·rows·inner·cols per matrix product of
the algorithm as written) and divided by the time; the GEMM rate is the best fp32 FᵀF of a
32 768 × m matrix on the same device, measured right before and right after each fit. The
column "performed" counts the flops actually done: the Gram pass forms only the upper block
triangle of FᵀF (62.5 % of it at m = 1024), so "as written" can exceed 100 %. "n per minute"
extrapolates the measured samples/s linearly (every pass is linear in n; the fixed holdout cost
is included, so it is a lower bound).

    python benchmarks/bench_gpu.py --device cuda               # d = 64 (n = 2²⁰), 512, 2048 (n = 2¹⁸)
    python benchmarks/bench_gpu.py --device cuda --sampler torch   # samples drawn on the GPU
    python benchmarks/bench_gpu.py --device cpu --quick        # smoke run, seconds
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

import replearn as rl
from replearn.linalg.ridge import GramAccumulator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_one_step import algorithm_flops, gemm_rate, sync  # noqa: E402

FULL_CASES = ((64, 2**20), (512, 2**18), (2048, 2**18))
QUICK_CASES = ((16, 2**13), (64, 2**12))


def run_case(d: int, n: int, args, device: torch.device, rate: float) -> dict:
    target = rl.MultiIndexTarget.random(d=d, r=2, degree=4, seed=0)
    options = dict(noise=1.0, seed=0, device=device, sampler=args.sampler)
    if args.cache_bytes is not None:
        options["cache_bytes"] = args.cache_bytes
    # warm-up on another seed (kernels, allocator), then the timed fit on a fresh stream
    warm = rl.DataStream(target, **{**options, "seed": 1})
    rl.OneStepNetwork(width=args.width, device=device).fit_stream(warm, 8192, 2048)
    stream = rl.DataStream(target, **options)
    sync(device)
    start = time.perf_counter()
    model = rl.OneStepNetwork(width=args.width, device=device).fit_stream(stream, n, args.n_holdout)
    sync(device)
    seconds = time.perf_counter() - start
    flops = algorithm_flops(n, args.n_holdout, d, args.width, len(model.lambda_path_))
    # GramAccumulator forms only the upper block triangle of FᵀF: the flops it performs
    blocks = GramAccumulator(args.width)._blocks
    share = sum((hi - lo) * (args.width - lo) for lo, hi in blocks) / args.width**2
    performed = flops - 2 * n * args.width**2 * (1 - share)
    return dict(
        d=d, n=n, seconds=seconds, flops=flops, ratio=flops / seconds / rate,
        performed_ratio=performed / seconds / rate, n_per_minute=60 * n / seconds,
        cached=stream.cache_nbytes,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", default=default_device)
    parser.add_argument("--sampler", choices=("numpy", "torch"), default="numpy")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--n-holdout", type=int, default=2**16)
    parser.add_argument("--cache-bytes", type=int, default=None, help="stream budget")
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--d", type=int, nargs="+", default=None, help="only these d")
    args = parser.parse_args()
    cases = QUICK_CASES if args.quick else FULL_CASES
    if args.d:
        cases = [case for case in cases if case[0] in args.d]
    if args.quick:
        args.width, args.n_holdout = 128, 2**11
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device {device} ({name}), torch {torch.__version__}, sampler {args.sampler}, "
          f"width {args.width}, holdout {args.n_holdout}, threads {torch.get_num_threads()}")  # fmt: skip
    print(
        "(the fp32 GEMM rate, FᵀF of 32768×width: the best of a measurement before and one after each fit)\n"
    )
    print("| d | n | GEMM rate (GFLOP/s) | fit_stream (s) | GFLOP/s | / GEMM rate "
          "| performed / GEMM rate | n per minute | kept (MiB) |\n"
          "|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    for d, n in cases:
        # the best of a measurement before and one after the fit (a shared or throttling
        # machine moves a few-second GEMM sample; the better one is the rate to reach)
        before = gemm_rate(device, rows=32_768, width=args.width)
        r = run_case(d, n, args, device, before)
        rate = max(before, gemm_rate(device, rows=32_768, width=args.width))
        ratio, performed = r["flops"] / r["seconds"] / rate, r["performed_ratio"] * before / rate
        print(f"| {d} | {n} | {rate / 1e9:.1f} | {r['seconds']:.2f} | "
              f"{r['flops'] / r['seconds'] / 1e9:.1f} | {ratio:.0%} | {performed:.0%} | "
              f"{r['n_per_minute']:.3g} | {r['cached'] / 2**20:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
