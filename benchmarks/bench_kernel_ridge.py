"""Kernel ridge regression: speed, accuracy and memory — a benchmark, not a test.

    python benchmarks/bench_kernel_ridge.py             # the issue's sizes (about 25 min on 2 cores)
    python benchmarks/bench_kernel_ridge.py --quick     # small sizes, a smoke run
    python benchmarks/bench_kernel_ridge.py --skip-exact-auto   # without the n³ eigendecomposition

Data: paper_target(d = 10), noise variance 1, seed 0; NTK kernel (``kernels.ntk_kernel``).
Every measurement runs in a fresh child process (so its peak resident memory, ru_maxrss, is its
own) and prints one JSON line; the parent prints a Markdown table.

(a) Exact KernelRidge vs scikit-learn at n = 20 000, one fixed λ (sklearn alpha = n·λ/2):
    - ours, timed: ``KernelRidge(kernel="ntk", ridge_lambda=λ, solver="exact").fit(X, y)`` —
      the whole fit: α/β preprocessing, building the kernel matrix in blocks, the Cholesky
      factorisation (float32, refined to the float64 solution: the default dtype) and the
      solve; and the same with ``dtype=float64`` (Cholesky in float64).
    - scikit-learn, timed: ``KernelRidge(alpha=n·λ/2, kernel="precomputed").fit(K, r)`` only,
      given the float64 kernel matrix K (built by us, not timed) and the preprocessed labels r.
    - agreement: ‖c_ours − c_sklearn‖/‖c_sklearn‖ of the dual coefficients.
(b) Falkon vs exact test risk at n = 20 000, both with λ = "auto" on the same 2·10⁴ holdout
    samples (exact: one float64 eigendecomposition; Falkon: M = n_centers, all λ in one
    preconditioned CG), excess risk on the same 10⁵ test samples; then Falkon alone at
    n = 200 000 (holdout 2·10⁴): time, peak memory, CG iterations, risk.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

import torch

import replearn as rl
from replearn.kernels import ntk_kernel, ntk_kernel_diagonal
from replearn.learners.kernel_ridge import KernelRidge

D = 10
N_TEST = 100_000


def data(n: int, n_holdout: int):
    target = rl.paper_target(D)
    stream = rl.DataStream(target, noise=1.0, seed=0, dtype=torch.float64)
    X, y = stream.get(0, n)
    Xh, yh = stream.split("holdout").get(0, n_holdout) if n_holdout else (None, None)
    return target, X, y, Xh, yh


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def child(args) -> dict:
    target, X, y, Xh, yh = data(args.n, args.n_holdout)
    result = {"mode": args.child, "n": args.n}
    if args.child == "sklearn":
        from sklearn.kernel_ridge import KernelRidge as SklearnKernelRidge

        # the same preprocessing and the same kernel matrix as ours (exact diagonal k(x, x))
        beta = y @ X / len(y)
        r = (y - y.mean() - X @ beta).numpy()
        K = torch.empty(args.n, args.n, dtype=torch.float64)
        for start in range(0, args.n, 1024):
            K[start : start + 1024] = ntk_kernel(X[start : start + 1024], X)
        K.diagonal().copy_(ntk_kernel_diagonal(X))
        K = K.numpy()
        start = time.perf_counter()
        model = SklearnKernelRidge(alpha=args.n * args.ridge_lambda / 2, kernel="precomputed")
        model.fit(K, r)
        result["seconds"] = time.perf_counter() - start
        if args.coef_path:
            torch.save(torch.from_numpy(model.dual_coef_), args.coef_path)
    else:
        kwargs = {
            "kernel": "ntk",
            "dtype": torch.float64 if args.child == "exact64" else torch.float32,
        }
        if args.child in ("exact", "exact64"):
            kwargs.update(ridge_lambda=args.ridge_lambda, solver="exact")
        elif args.child == "exact-auto":
            kwargs.update(solver="exact")
        else:
            kwargs.update(solver="falkon", n_centers=args.n_centers)
        model = KernelRidge(**kwargs)
        start = time.perf_counter()
        model.fit(X, y, Xh, yh)
        result["seconds"] = time.perf_counter() - start
        result["peak_rss_gib"] = peak_rss_gib()  # of the fit (the risk below streams the test set)
        result["ridge_lambda"] = model.ridge_lambda_
        result["factorization"] = getattr(model, "factorization_", None)
        result["refinement_steps"] = getattr(model, "refinement_steps_", None)
        result["n_iter"] = getattr(model, "n_iter_", None)
        result["centres"] = model.X_fit_.shape[0]
        if args.coef_path:
            torch.save(model.dual_coef_.cpu(), args.coef_path)
        if args.risk:
            result["risk"] = rl.excess_risk(model, target, n_test=N_TEST, seed=7).risk
    result.setdefault("peak_rss_gib", peak_rss_gib())
    return result


def run_child(mode: str, n: int, **options) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--n", str(n)]
    for key, value in options.items():
        if value is True:
            command.append(f"--{key.replace('_', '-')}")
        elif value is not None and value is not False:
            command += [f"--{key.replace('_', '-')}", str(value)]
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"child {mode} failed:\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"  {result}", file=sys.stderr, flush=True)
    return result


def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(
            line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line
        )
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"{model}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-exact", type=int, default=20_000)
    parser.add_argument("--n-large", type=int, default=200_000)
    parser.add_argument("--n-holdout", type=int, default=20_000)
    parser.add_argument(
        "--ridge-lambda", type=float, default=None, help="λ of (a); default: Falkon's choice in (b)"
    )
    parser.add_argument("--n-centers", default="auto")
    parser.add_argument("--skip-exact-auto", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--coef-path", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--risk", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.n_centers != "auto":
            args.n_centers = int(args.n_centers)
        print(json.dumps(child(args)))
        return
    if args.quick:
        args.n_exact, args.n_large, args.n_holdout = 3000, 20_000, 3000
    print(f"machine: {machine()}", file=sys.stderr)
    n = args.n_exact
    common = {"n_holdout": args.n_holdout, "n_centers": args.n_centers}
    falkon = run_child("falkon", n, risk=True, **common)
    lam = args.ridge_lambda if args.ridge_lambda is not None else falkon["ridge_lambda"]
    coef = "/tmp/bench_kernel_ridge_%s.pt"
    ours = run_child("exact", n, ridge_lambda=lam, n_holdout=0, coef_path=coef % "ours", risk=True)
    ours64 = run_child("exact64", n, ridge_lambda=lam, n_holdout=0, coef_path=coef % "ours64")
    sklearn = run_child("sklearn", n, ridge_lambda=lam, n_holdout=0, coef_path=coef % "sklearn")
    reference = torch.load(coef % "sklearn")
    agree = {
        key: float(
            torch.linalg.norm(torch.load(coef % key) - reference) / torch.linalg.norm(reference)
        )
        for key in ("ours", "ours64")
    }
    exact_auto = None if args.skip_exact_auto else run_child("exact-auto", n, risk=True, **common)
    large = run_child("falkon", args.n_large, risk=True, **common)

    rows = [
        (f"(a) n = {n}, λ = {lam:.3g} (sklearn alpha = {n * lam / 2:.3g})", ""),
        (
            "ours, exact, float32 Cholesky + float64 refinement (whole fit)",
            f"{ours['seconds']:.1f} s, peak {ours['peak_rss_gib']:.2f} GiB, {ours['refinement_steps']} refinement steps, rel. diff {agree['ours']:.1e}",
        ),
        (
            "ours, exact, float64 Cholesky (whole fit)",
            f"{ours64['seconds']:.1f} s, peak {ours64['peak_rss_gib']:.2f} GiB, rel. diff {agree['ours64']:.1e}",
        ),
        (
            "sklearn KernelRidge(kernel='precomputed').fit(K, r)",
            f"{sklearn['seconds']:.1f} s, peak {sklearn['peak_rss_gib']:.2f} GiB",
        ),
        (
            "speed-up over sklearn (float32+refinement / float64)",
            f"{sklearn['seconds'] / ours['seconds']:.2f}× / {sklearn['seconds'] / ours64['seconds']:.2f}×",
        ),
        (
            f"(b) n = {n}, λ = 'auto' on {args.n_holdout} holdout samples, risk on {N_TEST} test samples",
            "",
        ),
        ("exact at (a)'s λ: excess risk", f"{ours['risk']:.4f}"),
    ]
    if exact_auto:
        rows.append(
            (
                "exact, λ = 'auto' (one float64 eigendecomposition)",
                f"risk {exact_auto['risk']:.4f}, λ = {exact_auto['ridge_lambda']:.3g}, {exact_auto['seconds']:.0f} s, peak {exact_auto['peak_rss_gib']:.2f} GiB",
            )
        )
    rows.append(
        (
            f"Falkon, λ = 'auto', M = {falkon['centres']}",
            f"risk {falkon['risk']:.4f}, λ = {falkon['ridge_lambda']:.3g}, {falkon['seconds']:.1f} s, {falkon['n_iter']} CG iterations, peak {falkon['peak_rss_gib']:.2f} GiB",
        )
    )
    if exact_auto:
        rows.append(
            ("Falkon risk / exact risk − 1", f"{falkon['risk'] / exact_auto['risk'] - 1:+.2%}")
        )
    rows.append(
        (
            f"Falkon, n = {args.n_large}, λ = 'auto', M = {large['centres']}",
            f"risk {large['risk']:.4f}, λ = {large['ridge_lambda']:.3g}, {large['seconds']:.0f} s, {large['n_iter']} CG iterations, peak {large['peak_rss_gib']:.2f} GiB",
        )
    )
    print("\n| quantity | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
