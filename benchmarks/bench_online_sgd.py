"""Online SGD: samples processed per second, against the rate of drawing the Gaussians and
against a plain per-sample PyTorch loop.

For each d (default 256, 1024, 4096), on one device:

1. **draw**: the stream's drawing rate (the practical limit: every sample needs d fresh
   normals) — one 4096-sample block of ``DataStream`` per call, for the stream's sampler
   (numpy PCG64 on the CPU by default; ``--sampler torch`` draws on the device), as samples/s
   of one thread (OnlineSGD draws its replicas' next chunk in ``data.DRAW_THREADS`` threads
   when the stream draws on the CPU — numpy's sampler, or torch's on a CPU stream — so it can
   exceed this column on a machine with idle cores).
2. **OnlineSGD**: ``OnlineSGD(replicas=R, batch_size=B).fit_stream(stream, n)`` end to end
   (drawing included), R·n samples / seconds. Defaults: one ReLU neuron, spherical,
   correlation loss, B = 1 (every sample its own step), R = ``--replicas``; ``--n`` should be
   a multiple of 4096 (a stream draws whole 4096-sample blocks).
3. **per-sample loop**: the way the public scripts run it — one replica, for each sample a
   fresh ``torch.randn(d)``, the loss, ``backward()``, the step and the projection in Python —
   samples / seconds.

Printed: the three rates and the ratios OnlineSGD/draw and OnlineSGD/loop (the issue's goals:
within 2× of the drawing rate, ≥ 20× the loop at d = 1024). Each time is the median of
``--repeats`` runs after one warm-up.

    python benchmarks/bench_online_sgd.py                       # d = 256, 1024, 4096 on the CPU
    python benchmarks/bench_online_sgd.py --device cuda --sampler torch --replicas 256
    python benchmarks/bench_online_sgd.py --quick               # smoke run (tiny sizes)
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import replearn as rl
import replearn.data as data


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_seconds(run, repeats: int, device: torch.device) -> float:
    run()  # warm-up (allocations, kernels, lazy imports)
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        run()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _target(d: int):
    return rl.MultiIndexTarget.from_expression("He2(z1)/sqrt(2)", d=d, seed=0)


def draw_rate(d: int, sampler: str, device, dtype, repeats: int, blocks: int) -> float:
    """Samples/s of drawing (X, ε) blocks of the stream (each d normals and one noise draw)."""
    stream = rl.DataStream(
        _target(d), noise=0.5, seed=0, cache_bytes=0, sampler=sampler, device=device, dtype=dtype
    )

    def run():
        for block in range(blocks):
            stream._block(block)

    return blocks * data.BLOCK_SIZE / _median_seconds(run, repeats, torch.device(device))


def online_rate(d, n, replicas, batch_size, sampler, device, dtype, repeats) -> float:
    """Samples/s of OnlineSGD.fit_stream over R replicas (drawing included)."""
    stream = rl.DataStream(
        _target(d), noise=0.5, seed=0, cache_bytes=0, sampler=sampler, device=device, dtype=dtype
    )
    model = rl.OnlineSGD(
        replicas=replicas, batch_size=batch_size, device=device,
        dtype=str(dtype).removeprefix("torch."), seed=0,
    )  # fmt: skip

    def run():
        model.fit_stream(stream, n, n_holdout=0)

    return replicas * n / _median_seconds(run, repeats, torch.device(device))


def loop_rate(d: int, n: int, device, dtype, repeats: int) -> float:
    """Samples/s of a plain per-sample autograd loop (one replica, Python per sample)."""
    device = torch.device(device)
    u = _target(d).U[0].to(device=device, dtype=dtype)
    lr = 1.0 / d

    def run():
        generator = torch.Generator(device=device).manual_seed(0)
        w = torch.randn(d, generator=generator, device=device, dtype=dtype)
        w = (w / w.norm()).requires_grad_(True)
        for _ in range(n):
            x = torch.randn(d, generator=generator, device=device, dtype=dtype)
            z = x @ u
            y = (z * z - 1) / 2**0.5
            loss = -y * torch.relu(w @ x)
            loss.backward()
            with torch.no_grad():
                g = w.grad - (w.grad @ w) * w
                w -= lr * g
                w /= w.norm()
            w.grad = None

    return n / _median_seconds(run, repeats, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--n", type=int, default=16_384, help="samples per replica (× 4096)")
    parser.add_argument("--loop-n", type=int, default=4096, help="samples of the per-sample loop")
    parser.add_argument("--replicas", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--sampler", choices=data.SAMPLERS, default="numpy")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check that it runs")
    args = parser.parse_args()
    if args.quick:
        args.d, args.n, args.loop_n, args.replicas, args.repeats = [16, 32], 256, 64, 4, 1
    dtype = getattr(torch, args.dtype)
    blocks = 2 if args.quick else 8
    print(
        f"device {args.device}, sampler {args.sampler}, {args.dtype}, R = {args.replicas}, "
        f"B = {args.batch_size}, n = {args.n} per replica, torch threads {torch.get_num_threads()}"
    )
    print(
        f"{'d':>6} {'draw/s':>12} {'OnlineSGD/s':>12} {'loop/s':>10} {'vs draw':>8} {'vs loop':>8}"
    )
    for d in args.d:
        drawn = draw_rate(d, args.sampler, args.device, dtype, args.repeats, blocks)
        online = online_rate(
            d, args.n, args.replicas, args.batch_size, args.sampler, args.device, dtype,
            args.repeats,
        )  # fmt: skip
        loop = loop_rate(d, args.loop_n, args.device, dtype, args.repeats)
        print(
            f"{d:>6} {drawn:>12,.0f} {online:>12,.0f} {loop:>10,.0f} "
            f"{online / drawn:>8.2f} {online / loop:>8.1f}"
        )


if __name__ == "__main__":
    main()
