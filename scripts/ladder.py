"""The exponent ladder's table and figure from the store: every ``ladder-*`` experiment's
n*(d) fits (risk or weak-recovery event, ``experiments.scaling.scaling_fits``) side by side.

    python scripts/ladder.py results/ladder.sqlite [more.sqlite …] --out docs/figures/ladder.png

An experiment stored in several of the stores is read from the first one given.

Prints one Markdown table — per target × method: measured exponent [95 % CI], the theory's,
the d fitted, n*(d) — and draws one figure (a panel per target: n*(d) against d on log-log
axes, the fitted lines, the theory's slopes dotted through the first point).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from replearn import theory  # noqa: E402
from replearn.experiments.scaling import plan_searches, scaling_fits  # noqa: E402
from replearn.experiments.spec import validate_spec  # noqa: E402
from replearn.experiments.store import Store  # noqa: E402
from replearn.experiments.target_kinds import build_target  # noqa: E402


def ladder_fits(dbs: list[str]) -> list[dict]:
    """One row per (experiment, method label) of every ladder-* experiment in the stores; an
    experiment in several stores is read from the first that has it (give the newest first)."""
    out, seen = [], {}
    for db in dbs:
        with Store(db, readonly=True) as store:
            for name in store.experiments():
                if not name.startswith("ladder-"):
                    continue
                if name in seen:
                    print(f"# {name}: read from {seen[name]}, not from {db}", file=sys.stderr)
                    continue
                seen[name] = db
                spec = validate_spec(store.experiment_spec(name))
                result = scaling_fits(spec, store.runs(name))
                target = re.sub(r"\(z1\)/sqrt\(\d+\)", "", spec.target.expr)
                target = re.sub(r"^(He\d)\(z1\)$", r"\1 (not normalised)", target)
                if not re.fullmatch(r"He\d+( \(not normalised\))?", target):
                    target = name.split("-")[1].upper()  # a link: ladder-ge2-online → GE2
                variant = name.split("-", 2)[-1]  # ladder-he4-smoothed-lr → smoothed-lr
                transforms = {  # label → the one step's label transform (None: y itself)
                    s.label: dict(s.params).get("label_transform")
                    for s in plan_searches(spec)
                    if s.method == "one_step"
                }
                for label, fit in result["fits"].items():
                    transform = transforms.get(label)
                    # one_step[label_transform=square] → one_step (said below as T(y) = …)
                    label = re.sub(r"\[label_transform=[^],]*\]$", "", label)
                    if transform is not None:  # the engine's theory is H's, not H_T's
                        fit = dict(fit, theory_slope=_transformed_one_step(spec, transform))
                        label = f"{label}, T(y) = {transform}"
                    # ladder-he3-risk, ladder-he3-risk-ntk: the label says it all
                    if variant not in ("online", "risk") and not variant.startswith("risk-"):
                        label = f"{label} ({variant})"
                    out.append(
                        {
                            "target": target,
                            "experiment": name,
                            "event": spec.scaling.event,
                            "threshold": spec.scaling.threshold,
                            "method": label,
                            "fit": fit,
                        }
                    )
    return sorted(out, key=lambda r: (r["target"], r["event"], r["method"]))


def _transformed_one_step(spec, transform) -> float:
    """One step on T(y): n ≈ d² when H_T = E[∇²E[T(y)|x]] ≠ 0 (``theory.transformed_hessian``),
    never otherwise."""
    d = max(spec.d)
    target = build_target({**spec.target.model_dump(), "seed": 0}, d)
    H = theory.transformed_hessian(target, transform, spec.noise[0], spec.noise_kind)
    return 2.0 if float(H.abs().max()) > 1e-8 else math.inf


def _number(x, digits=2):
    return (
        "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"
    )


def table(rows: list[dict]) -> str:
    lines = [
        "| target | method | event | measured exponent [95 % CI] | theory | d fitted | n*(d) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        fit = row["fit"]
        ci = fit.get("ci")
        measured = (
            f"{fit['slope']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"
            if fit.get("slope") is not None and ci is not None
            else "no slope"
        )
        if fit.get("slope_lower_bound") is not None:
            measured += f"; > {fit['slope_lower_bound']:.2f} (missed at larger d)"
        stars = ", ".join(
            f"{d}: {'—' if n is None else f'{n:.3g}'}" for d, n in sorted(fit["n_star"].items())
        )
        fitted = " ".join(str(d) for d, n in sorted(fit["n_star"].items()) if n)
        event = f"{row['event']} {row['threshold']:g}"
        lines.append(
            f"| {row['target']} | {row['method']} | {event} | {measured} | "
            f"{_number(fit.get('theory_slope'), 1)} | {fitted} | {stars} |"
        )
    return "\n".join(lines)


def figure(rows: list[dict], path: Path) -> None:
    targets = list(dict.fromkeys(r["target"] for r in rows))
    columns = min(3, len(targets))
    grid = (math.ceil(len(targets) / columns), columns)
    fig, axes = plt.subplots(*grid, figsize=(6.2 * columns, 5.4 * grid[0]), squeeze=False)
    for ax in axes.flat[len(targets) :]:
        ax.axis("off")
    for ax, target in zip(axes.flat, targets):
        for i, row in enumerate(r for r in rows if r["target"] == target):
            fit, color = row["fit"], f"C{i % 10}"
            points = [(d, n) for d, n in sorted(fit["n_star"].items()) if n]
            if not points:
                continue
            ds = [p[0] for p in points]
            name = f"{row['method']} ({row['event']})"
            alone = None if fit.get("slope") is not None else f"{name}: n* at d = {ds} only"
            ax.plot(ds, [p[1] for p in points], "o", color=color, label=alone)
            if fit.get("slope") is not None:
                low, high = fit["ci"]
                line = [math.exp(fit["intercept"]) * d ** fit["slope"] for d in ds]
                ax.plot(ds, line, color=color,
                        label=f"{name}: {fit['slope']:.2f} [{low:.2f}, {high:.2f}]")  # fmt: skip
            theory = fit.get("theory_slope")
            if theory is not None and math.isfinite(theory):
                d0, n0 = points[0]
                ax.plot([d0, ds[-1]], [n0 * (d / d0) ** theory for d in (d0, ds[-1])],
                        color=color, linestyle=":", linewidth=1)  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("d")
        ax.set_ylabel("n*(d)")
        ax.set_title(f"{target}\nmeasured slope [95 % CI]; dotted: theory", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", nargs="+")
    parser.add_argument("--out", type=Path, default=None, help="the figure (PNG)")
    args = parser.parse_args()
    rows = ladder_fits(args.db)
    print(table(rows))
    if args.out is not None:
        figure(rows, args.out)


if __name__ == "__main__":
    main()
