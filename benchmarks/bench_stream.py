"""Where a streamed fit's sampling time goes, and what kept blocks, overlap and float32 save.

1. Drawing rate of one block (4096 samples) per sampler: numpy float64 (the default), numpy
   float32 (``sample_dtype="float32"``), torch on the CPU (``sampler="torch"``), in M numbers/s.
2. ``OneStepNetwork(width=m).fit_stream(stream, n, n_holdout)`` end to end, with the stream
   (a) keeping every block (the default budget), (b) drawing every pass again with the next
   chunk drawn in DRAW_THREADS background threads (``cache_bytes=0``), (c) the same with one
   thread, (d) without the threads (``replearn.data.PREFETCH = False``), (e) like (b) with
   ``sample_dtype="float32"``.
   Each the median of ``--repeats`` runs.
3. ``--forms``: the two forms a kept block could take, per pass over n samples in float32:
   the stream's native float64 X and ε (each later pass casts X to float32 and evaluates f*
   again) against X, f*(X), y already in float32 (what the stream keeps: each later pass only
   copies). Both give the same bits; printed are seconds per pass and bytes kept.

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
    "drawn each pass, overlapped, 1 draw thread": dict(cache_bytes=0, draw_threads=1),
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
    threads, data.DRAW_THREADS = data.DRAW_THREADS, options.pop("draw_threads", data.DRAW_THREADS)
    target = rl.MultiIndexTarget.random(d=d, r=2, degree=4, seed=0)
    stream = rl.DataStream(target, noise=1.0, seed=0, **options)
    start = time.perf_counter()
    rl.OneStepNetwork(width=width).fit_stream(stream, n, n_holdout)
    seconds = time.perf_counter() - start
    data.PREFETCH, data.DRAW_THREADS = True, threads
    return seconds


def kept_forms(d: int, n: int, repeats: int) -> None:
    target = rl.MultiIndexTarget.random(d=d, r=2, degree=4, seed=0)
    stream = rl.DataStream(target, noise=1.0, seed=0, cache_bytes=0)
    blocks = range(n // data.BLOCK_SIZE)
    native = [stream._block(b) for b in blocks]  # float64 X, ε
    kept = [stream._materialised(b, {b: native[b]}) for b in blocks]  # float32 X, f*, y

    def from_native():
        out = []
        for X64, epsilon in native:
            X = X64.to(torch.float32)
            f_star = target(X)
            out.append((X, f_star + epsilon.to(torch.float32)))
        return torch.cat([x for x, _ in out]), torch.cat([y for _, y in out])

    def from_kept():
        return torch.cat([X for X, _, _ in kept]), torch.cat([y for _, _, y in kept])

    a, b = from_native(), from_kept()
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    for name, fn, nbytes in (
        (
            "native float64 (cast + f* each pass)",
            from_native,
            sum(x.nbytes + e.nbytes for x, e in native),
        ),
        (
            "consumer float32 (copy each pass)",
            from_kept,
            sum(t.nbytes for blk in kept for t in blk),
        ),
    ):
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            seconds.append(time.perf_counter() - start)
        print(
            f"| {d} | {n} | {name} | {statistics.median(seconds):.3f} s | {nbytes / 2**20:.0f} MiB |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--forms", action="store_true", help="only part 3")
    parser.add_argument("--shrink", type=int, default=0, help="divide each n by 2**shrink")
    args = parser.parse_args()
    if args.forms:
        print("| d | n | kept form | one pass | kept |\n|---|---|---|---|---|")
        for d, n in ((64, 2**18), (512, 2**16)):
            kept_forms(d, n, args.repeats)
        return
    cases = [(64, 2 ** (20 - args.shrink)), (512, 2 ** (18 - args.shrink))]
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
