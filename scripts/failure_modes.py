"""Failure modes of Algorithm 1 (issue 7, item 5), shown not hidden: docs/results.md,
section "Failure modes".

Three single-step experiments on the same grid n = d^1.5 … d^3 (d = 16, 32, 64), width 256,
Rademacher label noise of variance 1, 3 seeds each, through the experiment engine
(``kind: grid`` specs, results in a SQLite store, so re-running resumes):

- ``failure-paper``: the paper's target He₂(u·x)/2 + He₄(u·x)/(4√3): H = u uᵀ/… has rank
  1, κ = 1 — the control that succeeds at n ≈ d².
- ``failure-degenerate``: g = He₃(z)/√6, single index: H = E[∇²f*] = 0. Worse than a
  missing leading term: for any odd f* without linear part the population first step is
  exactly zero. (x ↦ −x flips He₃, x and 1[w·x ≥ 0] ↦ 1 − 1[w·x ≥ 0], so
  E[f*·x·1[w·x ≥ 0]] = E[f*·x] − E[f*·x·1[w·x ≥ 0]] and E[f*·x] = 0.) W¹ is sampling
  noise at every n, with covariance ∝ E[y²·x·xᵀ·1[w·x ≥ 0]] ≈ ½·(E[y²z²]·uuᵀ +
  E[y²]·(I − uuᵀ)); with noise variance 1, E[y²z²] = 7 + 1 and E[y²] = 2, so the
  alignment stays at 4/(d + 3) (0.21, 0.11, 0.06 at d = 16, 32, 64) whatever n is.
- ``failure-rank3``: MultiIndexTarget.random(r = 3, degree 4, κ = 3): non-degenerate but
  r = 3 and κ = 3 — Theorem 1 asks for n ≳ d²κ²r = 27·d², and width ≳ r^p = 81.

    nice -n 10 .venv/bin/python scripts/failure_modes.py [--db results/failure-modes.sqlite]

prints the Markdown table and writes docs/figures/failure-modes.png.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from replearn.experiments.api import run_experiment  # noqa: E402
from replearn.experiments.spec import parse_spec  # noqa: E402
from replearn.experiments.store import Store, flat_rows  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COMMON = """
noise: 1.0
noise_kind: rademacher
methods:
  - {name: one_step, width: 256}
d: [16, 32, 64]
n: ["d^1.5", "d^1.75", "d^2", "d^2.25", "d^2.5", "d^2.75", "d^3"]
seeds: 3
n_holdout: 20000
n_test: 20000
"""
TARGETS = {
    "failure-paper": (
        "paper target He2/2 + He4/(4√3), r = 1, κ = 1 (control)",
        "{kind: paper, seed: run}",
    ),
    "failure-degenerate": (
        "He3(z)/√6, single index: degenerate H = 0",
        "{kind: expression, expr: 'He3(z1)', normalize: true, seed: run}",
    ),
    "failure-rank3": (
        "random r = 3, degree 4, κ = 3: d²κ²r = 27·d²",
        "{kind: random, r: 3, degree: 4, kappa: 3.0, seed: run}",
    ),
}


def spec_text(name: str) -> str:
    description, target = TARGETS[name]
    return f"name: {name}\ndescription: {json.dumps(description)}\ntarget: {target}\n" + COMMON


def mean_sd(values):
    values = [v for v in values if v is not None]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def collect(db: Path) -> dict[str, list[dict]]:
    """{experiment: [{d, n, ratio, risk, risk_sd, alignment, alignment_sd}]}."""
    out = {}
    with Store(db) as store:
        for name in TARGETS:
            rows = [r for r in flat_rows(store.runs(name)) if r["status"] == "done"]
            cells = {}
            for row in rows:
                cells.setdefault((row["d"], row["n"]), []).append(row)
            table = []
            for (d, n), members in sorted(cells.items()):
                risk, risk_sd = mean_sd([m.get("risk") for m in members])
                align, align_sd = mean_sd([m.get("alignment") for m in members])
                table.append(
                    dict(d=d, n=n, ratio=n / d**2, risk=risk, risk_sd=risk_sd,
                         alignment=align, alignment_sd=align_sd, seeds=len(members))
                )  # fmt: skip
            out[name] = table
    return out


def figure(results: dict[str, list[dict]], path: Path) -> None:
    names = list(TARGETS)
    fig, axes = plt.subplots(2, len(names), figsize=(4.0 * len(names), 6.4), sharex=True)
    cmap = plt.get_cmap("viridis")
    for column, name in enumerate(names):
        table = results[name]
        ds = sorted({row["d"] for row in table})
        for i, d in enumerate(ds):
            line = [row for row in table if row["d"] == d]
            color = cmap(i / max(len(ds) - 1, 1))
            xs = [row["ratio"] for row in line]
            for ax, key in zip(axes[:, column], ("alignment", "risk")):
                means = [row[key] for row in line]
                sds = [row[f"{key}_sd"] for row in line]
                ax.errorbar(xs, means, yerr=sds, marker="o", markersize=3, capsize=2,
                            color=color, label=f"d = {d}")  # fmt: skip
        axes[0, column].set_title(TARGETS[name][0], fontsize=8.5)
        axes[0, column].set_ylim(0, 1.02)
        axes[1, column].axhline(1.0, color="black", linestyle="--", linewidth=1)
        axes[1, column].set_ylim(0, 1.3)
        for ax in axes[:, column]:
            ax.set_xscale("log")
            ax.grid(alpha=0.3, which="both")
        axes[1, column].set_xlabel("n / d²")
    axes[0, 0].set_ylabel("subspace alignment ‖Π*W‖²/‖W‖²")
    axes[1, 0].set_ylabel("excess risk E[(f − f*)²]")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(
        "Algorithm 1 (width 256, noise variance 1, 3 seeds): where one step fails", fontsize=10
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(results: dict[str, list[dict]]) -> str:
    lines = []
    for name, table in results.items():
        lines += [
            f"\n{name}: {TARGETS[name][0]}\n",
            "| d | n | n/d² | excess risk (mean ± sd) | alignment (mean ± sd) |",
            "|---|---|---|---|---|",
        ]
        for row in table:
            lines.append(
                f"| {row['d']} | {row['n']} | {row['ratio']:.3g} | {row['risk']:.3f} ± "
                f"{row['risk_sd']:.3f} | {row['alignment']:.3f} ± {row['alignment_sd']:.3f} |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=REPO / "results" / "failure-modes.sqlite")
    parser.add_argument(
        "--figure", type=Path, default=REPO / "docs" / "figures" / "failure-modes.png"
    )
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    for name in TARGETS:
        summary = run_experiment(
            parse_spec(spec_text(name)), db=args.db, executor="process", workers=args.workers,
            quiet=True,
        )  # fmt: skip
        print(summary, file=sys.stderr)
    results = collect(args.db)
    figure(results, args.figure)
    print(markdown(results))
    print(f"\n(wall time {time.perf_counter() - start:.0f} s; figure {args.figure})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
