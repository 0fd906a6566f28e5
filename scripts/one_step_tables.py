"""Tables for docs/results.md, section "Algorithm 1": learning the paper target and the d² law.

.venv/bin/python scripts/one_step_tables.py
"""

from __future__ import annotations

import statistics
import time

import replearn as rl


def mean_sd(values):
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def paper_target_table(seeds=range(3)):
    target = rl.paper_target(10)
    print(
        "Paper target, d = 10, width 100, noise variance 1, λ on a 10⁵ holdout, risk on 10⁵ test samples"
    )
    print(
        "\n| n | excess risk (mean ± sd, 3 seeds) | subspace alignment | chosen λ (seed 0) |\n|---|---|---|---|"
    )
    for n in (10**2, 10**3, 10**4, 10**5):
        risks, aligns, lam = [], [], None
        for seed in seeds:
            stream = rl.DataStream(target, noise=1.0, seed=seed)
            net = rl.OneStepNetwork(width=100, seed=seed).fit_stream(stream, n, n_holdout=100_000)
            risks.append(rl.excess_risk(net, target, n_test=100_000, seed=1000 + seed).risk)
            aligns.append(rl.subspace_alignment(net.W_, target.U))
            lam = net.ridge_lambda_ if lam is None else lam
        r, rs = mean_sd(risks)
        a, as_ = mean_sd(aligns)
        print(f"| {n:.0e} | {r:.3f} ± {rs:.3f} | {a:.3f} ± {as_:.3f} | {lam:.2e} |")


def d_squared_table(seeds=range(3)):
    print(
        "\nRandom rank-2 degree-4 targets (κ = r/√(2·0.5) = 2), width 256, noise variance 1, n = c·d²"
    )
    print(
        "\n| n/d² | d | n | excess risk (mean ± sd, 3 seeds) | subspace alignment |\n|---|---|---|---|---|"
    )
    for ratio in (1, 4, 16):
        for d in (16, 32, 64):
            risks, aligns = [], []
            for seed in seeds:
                target = rl.MultiIndexTarget.random(d=d, r=2, degree=4, seed=seed)
                stream = rl.DataStream(target, noise=1.0, seed=seed)
                net = rl.OneStepNetwork(width=256, seed=seed).fit_stream(
                    stream, ratio * d * d, n_holdout=50_000
                )
                risks.append(rl.excess_risk(net, target, n_test=50_000, seed=1000 + seed).risk)
                aligns.append(rl.subspace_alignment(net.W_, target.U))
            r, rs = mean_sd(risks)
            a, as_ = mean_sd(aligns)
            print(f"| {ratio} | {d} | {ratio * d * d} | {r:.3f} ± {rs:.3f} | {a:.3f} ± {as_:.3f} |")


def eta1_table(seeds=range(3)):
    import math

    print("\nStep size η₁: paper target, d = 10, width 100, noise variance 1, 3 seeds")
    print(
        "\n| η₁ | n | RMS ‖w_j¹‖ (= RMS std of w_j¹·x) | excess risk (mean ± sd) |\n|---|---|---|---|"
    )
    target = rl.paper_target(10)
    root_d = math.sqrt(10)
    for n in (10**3, 10**4):
        for label, eta1 in [
            ("0.1·√d", 0.1 * root_d),
            ("0.3·√d", 0.3 * root_d),
            ("√d (default)", "sqrt_d"),
            ("3·√d", 3 * root_d),
            ("10·√d", 10 * root_d),
            ("normalize", "normalize"),
        ]:
            risks, norms = [], []
            for seed in seeds:
                stream = rl.DataStream(target, noise=1.0, seed=seed)
                net = rl.OneStepNetwork(width=100, eta1=eta1, seed=seed).fit_stream(
                    stream, n, n_holdout=100_000
                )
                risks.append(rl.excess_risk(net, target, n_test=100_000, seed=1000 + seed).risk)
                norms.append(float(net.W_.pow(2).sum(1).mean().sqrt()))
            r, rs = mean_sd(risks)
            print(f"| {label} | {n:.0e} | {statistics.mean(norms):.3f} | {r:.3f} ± {rs:.3f} |")


if __name__ == "__main__":
    start = time.perf_counter()
    paper_target_table()
    d_squared_table()
    eta1_table()
    print(f"\n(wall time {time.perf_counter() - start:.0f} s)")
