"""OpenMP wait policy on shared cores: what OMP_WAIT_POLICY=PASSIVE costs idle and gains shared.

For each policy (libgomp's default, i.e. the variable unset, and PASSIVE) and each load (idle
machine; a competing torch process with the default policy running small parallel ops in a
loop, as a second test suite or experiment would), in fresh processes:
  * a 400×400 float64 ``torch.linalg.eigh``, median of 5 (in one process);
  * a test-suite subset (``pytest -q tests/test_data.py``) wall time.
Each cell is repeated ``--repeats`` times and the median printed. A run that exceeds
``--limit`` seconds is stopped and reported as "> limit".

    python benchmarks/bench_shared_cores.py              # ≈ 5–10 min on 2 cores
    python benchmarks/bench_shared_cores.py --repeats 1 --tests tests/test_hermite.py  # quick
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

EIGH = """
import time, torch
A = torch.randn(400, 400, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
A = A + A.T
torch.linalg.eigh(A)
times = []
for _ in range(5):
    start = time.perf_counter(); torch.linalg.eigh(A); times.append(time.perf_counter() - start)
print(sorted(times)[2])
"""

COMPETITOR = """
import torch
A = torch.randn(256, 256)
S = A @ A.T
while True:  # small parallel regions back to back: many OpenMP barriers, as tests have
    for _ in range(20):
        A = torch.tanh(A @ A.T / 256)
    torch.linalg.eigh(S.double())
"""


def environment(policy: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    return env


def timed(command: list[str], policy: str | None, limit: float) -> float:
    """Wall seconds of a child process (math.inf past the limit); eigh prints its own time."""
    start = time.perf_counter()
    try:
        result = subprocess.run(
            command, env=environment(policy), capture_output=True, text=True, timeout=limit
        )
    except subprocess.TimeoutExpired:
        return float("inf")
    if result.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{result.stdout}\n{result.stderr}")
    if command[1] == "-c":
        return float(result.stdout.split()[-1])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=float, default=120.0)
    parser.add_argument("--tests", default="tests/test_data.py")
    args = parser.parse_args()
    # -o addopts= drops pyproject's `-p replearn._threads`, so "default" really is unset
    suite = [sys.executable, "-m", "pytest", "-q", "-x", "-o", "addopts=", args.tests]
    eigh = [sys.executable, "-c", EIGH]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; median of {args.repeats}")
    print("| load | policy | eigh 400×400 (median of 5) | " + f"pytest {args.tests} |")
    print("|---|---|---|---|")
    for load in ("idle", "competing torch process"):
        competitor = None
        if load != "idle":
            competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR], env=environment(None))
            time.sleep(3)
        try:
            for policy in (None, "PASSIVE"):
                eigh_s = statistics.median(
                    timed(eigh, policy, args.limit) for _ in range(args.repeats)
                )
                suite_s = statistics.median(
                    timed(suite, policy, args.limit) for _ in range(args.repeats)
                )
                name = policy or "default (unset)"
                print(f"| {load} | {name} | {eigh_s * 1e3:.1f} ms | {suite_s:.1f} s |", flush=True)
        finally:
            if competitor is not None:
                competitor.kill()
                competitor.wait()


if __name__ == "__main__":
    main()
