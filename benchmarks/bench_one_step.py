"""Speed and memory of Algorithm 1 (OneStepNetwork) — a benchmark, not a test.

    python benchmarks/bench_one_step.py                      # CPU, the issue's sizes
    python benchmarks/bench_one_step.py --device cuda        # same table on a GPU
    python benchmarks/bench_one_step.py --quick              # small sizes, a smoke run

Prints a Markdown table:
1. the machine's fp32 matrix-multiply rate, measured here (best of several GEMMs shaped
   like the algorithm's largest product, the m×m Gram FᵀF of a chunk);
2. the whole ``OneStepNetwork.fit`` (float32, ridge head, λ chosen on a holdout) at
   d = 64, m = 1024, n = 2²⁰ on materialised arrays, and its rate counting
   2·rows·inner·cols per matrix product of the algorithm as written;
3. a straightforward float64 reference of the kind published research code uses
   (materialised X, an nn.Module, loss.backward(), features materialised, torch.linalg.solve
   per λ) computing the same model, and the speed-up;
4. peak resident memory of ``fit_stream`` at n = 10⁷ (in a fresh process).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import subprocess
import sys
import time

import torch

import replearn as rl
from replearn.learners.one_step import OneStepNetwork
from replearn.network import symmetric_init


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def gemm_rate(device: torch.device, rows: int, width: int, repeats: int = 5) -> float:
    """Best fp32 rate (flop/s) of FᵀF for F of shape (rows, width)."""
    F = torch.randn(rows, width, device=device)
    best = math.inf
    for _ in range(repeats + 1):
        sync(device)
        start = time.perf_counter()
        _ = F.T @ F
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * rows * width * width / best


def algorithm_flops(n: int, n_holdout: int, d: int, m: int, n_lambdas: int = 49) -> float:
    """2·rows·inner·cols summed over the matrix products of OneStepNetwork.fit as written."""
    half = m // 2
    linear = 2 * n * d  # β = yᵀX
    step = 2 * n * d  # X·β
    step += 2 * n * d * half + 2 * n * half * d  # X W⁰ᵀ and (y·1[·])ᵀ X over m/2 neurons
    head = 2 * n * d + 2 * n * d * m + 2 * n * m * m + 2 * n * m  # Xβ, XW¹ᵀ, FᵀF, Fᵀy
    # Xβ, XW¹ᵀ, and the predictions F·A of all L values of λ (A: m×L, float64)
    holdout = 2 * n_holdout * d + 2 * n_holdout * d * m + 2 * n_holdout * m * n_lambdas
    return linear + step + head + holdout


class ReferenceNetwork(torch.nn.Module):
    """f(x) = Σ a_j ReLU(w_j·x + b_j) as an nn.Module (the published-code style)."""

    def __init__(self, W, b, a):
        super().__init__()
        self.W = torch.nn.Parameter(W.clone())
        self.b = torch.nn.Parameter(b.clone())
        self.a = torch.nn.Parameter(a.clone())

    def forward(self, X):
        return torch.relu(X @ self.W.T + self.b) @ self.a


REFERENCE_SLICE = 2**18


def reference_fit(X, y, Xh, yh, width, seed, lambdas):
    """Algorithm 1 the straightforward way, float64, everything materialised."""
    X, y, Xh, yh = X.double(), y.double(), Xh.double(), yh.double()
    n, d = X.shape
    alpha, beta = y.mean(), y @ X / n
    residual = y - alpha - X @ beta
    init = symmetric_init(width, d, seed, torch.float64, X.device)
    net = ReferenceNetwork(init.W, init.b, init.a)
    eta1 = math.sqrt(d)
    net.zero_grad()
    # Full-batch gradient, accumulated over slices: one float64 autograd graph over all of X
    # holds three n×m tensors (≈26 GB at n = 2²⁰, m = 1024), more than this 24 GB machine.
    for rows in torch.split(torch.arange(n, device=X.device), REFERENCE_SLICE):
        loss = ((net(X[rows]) - residual[rows]) ** 2).sum() / n
        loss.backward()
    W1 = -eta1 * net.W.grad  # weight decay 1/η₁ cancels W⁰
    generator = torch.Generator().manual_seed(seed + 1_000_003)
    b = torch.randn(width, generator=generator, dtype=torch.float64).to(X.device)
    with torch.no_grad():
        F = torch.relu(X @ W1.T + b)
        Fh = torch.relu(Xh @ W1.T + b)
        residual_h = yh - alpha - Xh @ beta
        G, c = F.T @ F / n, F.T @ residual / n
        best = (math.inf, None, None)
        for lam in lambdas:
            a = torch.linalg.solve(
                G + lam / 2 * torch.eye(width, dtype=G.dtype, device=G.device), c
            )
            mse = float(((Fh @ a - residual_h) ** 2).mean())
            best = min(best, (mse, lam, a), key=lambda t: t[0])
    return W1, best[2], best[1]


def peak_memory_child(n: int, d: int, m: int, device: str) -> None:
    target = rl.MultiIndexTarget.random(d=d, r=2, degree=4, seed=0)
    stream = rl.DataStream(target, noise=1.0, seed=0, device=device)
    start = time.perf_counter()
    OneStepNetwork(width=m, seed=0, device=device).fit_stream(stream, n, n_holdout=100_000)
    elapsed = time.perf_counter() - start
    print(json.dumps({"seconds": elapsed, "peak_rss_gib": peak_rss_kib() / 2**20}))


def peak_rss_kib() -> int:
    """This process's peak resident memory: VmHWM (Linux), else ru_maxrss.

    ru_maxrss survives fork + exec, so a child started by a parent that once held the
    float64 reference's 17 GB would report the parent's peak; VmHWM belongs to the
    address space and starts afresh at exec.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--n", type=int, default=2**20)
    parser.add_argument("--n-holdout", type=int, default=2**16)
    parser.add_argument(
        "--peak-n", type=int, default=10**7, help="n of the peak-memory run (0 skips it)"
    )
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--child-peak", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.n, args.n_holdout, args.width, args.peak_n = 2**14, 2**12, 128, 10**5
    if args.child_peak:
        peak_memory_child(args.n, args.d, args.width, args.device)
        return
    device = torch.device(args.device)
    d, m, n = args.d, args.width, args.n
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"device {device}, threads {torch.get_num_threads()}"
    )

    rate = gemm_rate(device, rows=32_768, width=m)
    target = rl.MultiIndexTarget.random(d=d, r=2, degree=4, seed=0)
    X, y = rl.sample(target, n, noise=1.0, seed=0, device=device)
    Xh, yh = rl.sample(target, args.n_holdout, noise=1.0, seed=0, split="holdout", device=device)

    model = OneStepNetwork(width=m, seed=0, device=device)
    model.fit(X[:4096], y[:4096], Xh[:1024], yh[:1024])  # warm-up
    times = []
    for _ in range(3):
        sync(device)
        start = time.perf_counter()
        model.fit(X, y, Xh, yh)
        sync(device)
        times.append(time.perf_counter() - start)
    fit_seconds = min(times)
    flops = algorithm_flops(n, args.n_holdout, d, m, n_lambdas=len(model.lambda_path_))
    rows = [
        (f"fp32 GEMM rate (FᵀF, 32768×{m})", f"{rate / 1e9:.1f} GFLOP/s"),
        (
            f"OneStepNetwork.fit, d={d}, m={m}, n={n}, holdout {args.n_holdout}",
            f"{fit_seconds:.2f} s (best of 3)",
        ),
        ("algorithm's matmul flops", f"{flops / 1e12:.3f} TFLOP"),
        (
            "fit rate / GEMM rate",
            f"{flops / fit_seconds / 1e9:.1f} GFLOP/s = {flops / fit_seconds / rate:.0%}",
        ),
    ]
    if not args.skip_reference:
        lambdas = model.lambda_path_.tolist()
        sync(device)
        start = time.perf_counter()
        W_ref, a_ref, lambda_ref = reference_fit(X, y, Xh, yh, m, 0, lambdas)
        sync(device)
        ref_seconds = time.perf_counter() - start
        w_err = float(torch.linalg.norm(W_ref - model.W_.double()) / torch.linalg.norm(W_ref))
        p_ref = torch.relu(Xh[:8192].double() @ W_ref.T + model.b_.double()) @ a_ref
        p_ours = (
            model.predict(Xh[:8192]).double()
            - model.alpha_.double()
            - Xh[:8192].double() @ model.beta_.double()
        )
        p_err = float(torch.linalg.norm(p_ref - p_ours) / torch.linalg.norm(p_ref))
        # what the difference costs: holdout MSE of the two heads against the preprocessed labels
        r_h = yh[:8192].double() - model.alpha_.double() - Xh[:8192].double() @ model.beta_.double()
        mse_ref, mse_ours = float(((p_ref - r_h) ** 2).mean()), float(((p_ours - r_h) ** 2).mean())
        rows += [
            ("float64 reference (nn.Module, backward, solve per λ)", f"{ref_seconds:.2f} s"),
            ("speed-up over reference", f"{ref_seconds / fit_seconds:.2f}×"),
            (
                "relative difference W¹ / head predictions (fp32 vs fp64)",
                f"{w_err:.1e} / {p_err:.1e}",
            ),
            ("λ chosen, ours / reference", f"{model.ridge_lambda_:.3g} / {lambda_ref:.3g}"),
            ("holdout MSE on 8192 samples, ours / reference", f"{mse_ours:.5f} / {mse_ref:.5f}"),
        ]
    del X, y, Xh, yh
    if args.peak_n:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child-peak",
                "--n",
                str(args.peak_n),
                "--d",
                str(d),
                "--width",
                str(m),
                "--device",
                args.device,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        peak = json.loads(out.stdout.strip().splitlines()[-1])
        rows += [
            (
                f"fit_stream n={args.peak_n:.0e} (streamed data, holdout 1e5)",
                f"{peak['seconds']:.1f} s",
            ),
            ("peak resident memory of that process", f"{peak['peak_rss_gib']:.2f} GiB"),
        ]
    print("\n| quantity | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
