"""The report's figures (matplotlib, Agg): Fig. 1 and Fig. 2 forms, n*(d) and search curves.

Input is a list of run records — flat dicts with at least ``method`` (a label), ``d``, ``n``,
``seed`` and ``risk``; optional ``width``, ``N`` (transfer samples). The risk figures follow
the paper: excess L2 risk against log_d(n), mean ± sd band over seeds
(:func:`replearn.experiments.analysis.aggregate`), dashed reference lines at 1 (zero
predictor) and at the best degree-≤k predictor's risk (from the target's exact degree
energy), with theory overlays from ``replearn.theory``: the d²κ²r threshold (Theorem 1)
and the kernel staircase.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from replearn import theory  # noqa: E402
from replearn.experiments.analysis import aggregate, log_d  # noqa: E402
from replearn.experiments.report.files import atomic_write_bytes  # noqa: E402
from replearn.targets import MultiIndexTarget  # noqa: E402

__all__ = [
    "COLORS",
    "LABELS",
    "method_label",
    "figure_risk_vs_n",
    "figure_transfer",
    "figure_scaling",
    "figure_scaling_curves",
    "save_figure",
]

COLORS = {"one_step": "#1f77b4", "random_features": "#d62728", "ntk": "#2ca02c",
          "kernel_ridge": "#9467bd", "full_training": "#ff7f0e", "giant_step": "#e377c2"}  # fmt: skip
# theory and reference lines are grey/black (dashed, dotted, dash-dot), never a method's hue:
# a method is a coloured line with a band of its own colour, a prediction is a grey line
THEORY_COLOR = "#3b3b3b"
LABELS = {"one_step": "Algorithm 1 (one step)", "random_features": "random features",
          "ntk": "NTK (linearised network)", "kernel_ridge": "kernel ridge (infinite width)",
          "full_training": "full training (GD on both layers)",
          "giant_step": "giant steps (GiantStepNetwork)"}  # fmt: skip


def _method_order(method: str) -> tuple[int, str]:
    """Algorithm 1 first, then the baselines in a fixed order, then anything else by name."""
    base = method.split("[")[0]
    order = list(LABELS)
    return (order.index(base) if base in order else len(order), method)


def method_label(method: str) -> str:
    """A legend entry: the method's name, then the hyper-parameters that vary (k=v, …)."""
    base = method.split("[")[0]
    options = method[len(base) :].strip("[]") if "[" in method else ""
    return LABELS.get(base, base) + (f", {options}" if options else "")


def _color(method: str, index: int) -> str:
    return COLORS.get(method.split("[")[0], f"C{index % 10}")


def _drawable(target: MultiIndexTarget | None) -> bool:
    """A target whose theory lines can be drawn: E f*² > 0 and finite (risks are divided by
    it; a target such as z1 − z1 with ``normalize: false`` has E f*² = 0)."""
    if target is None:
        return False
    norm2 = target.norm2()
    return math.isfinite(norm2) and norm2 > 0


_SPARE = ("#17becf", "#8c564b", "#bcbd22", "#393b79", "#637939", "#843c39", "#7b4173")


def _colors(methods: Sequence[str]) -> dict[str, str]:
    """One colour per line: a method's own (COLORS) for its first variant, spare hues (none
    of them a method's or the theory's) for further variants and for unknown methods."""
    taken, out, spare = set(), {}, iter(_SPARE * 4)
    for method in methods:
        color = COLORS.get(method.split("[")[0])
        out[method] = color if color is not None and color not in taken else next(spare)
        taken.add(out[method])
    return out


def _reference_lines(ax, target: MultiIndexTarget | None) -> None:
    ax.axhline(1.0, color=THEORY_COLOR, linestyle="--", linewidth=1, label="zero predictor")
    if target is None:
        return
    if not _drawable(target):
        ax.text(0.02, 0.02, "E f*² = 0: no theory lines (risks relative to E f*²)",
                transform=ax.transAxes, fontsize=7, color="dimgray")  # fmt: skip
        return
    norm2 = target.norm2()
    degrees = sorted(target.degree_energy())
    shown = set()
    for k in range(0, target.degree_cutoff):
        risk = theory.best_degree_risk(target, k) / norm2
        if 0 < risk < 1 and round(risk, 6) not in shown and k >= min(degrees):
            shown.add(round(risk, 6))
            ax.axhline(risk, color=THEORY_COLOR, alpha=0.55, linestyle="--", linewidth=1,
                       label=f"best degree-≤{k} predictor ({risk:.2g})")  # fmt: skip


def _theory_overlays(ax, target: MultiIndexTarget | None, x_max: float) -> None:
    if not _drawable(target):
        return
    threshold = theory.one_step_threshold(target)
    if math.isfinite(threshold):
        x = log_d(threshold, target.d)
        ax.axvline(x, color=THEORY_COLOR, linestyle=":", linewidth=1.4,
                   label=f"Theorem 1: n = d²κ²r (log_d n = {x:.2g})")  # fmt: skip
    xs, ys = [], []
    for start, stop, risk in theory.kernel_staircase(target, max_log_d_n=max(x_max, 1.0)):
        xs += [start, stop]
        ys += [risk / target.norm2()] * 2
    ax.plot(xs, ys, color=THEORY_COLOR, alpha=0.25, linewidth=5, solid_capstyle="butt",
            zorder=0, label="kernel staircase (theory)")  # fmt: skip


Y_CLIP = 1.6


def _band(means: Sequence[float], sds: Sequence[float]) -> tuple[list[float], list[float]]:
    """mean ± sd, left out (NaN) where the mean is above the clipped axis."""
    low = [m - s if m <= Y_CLIP else math.nan for m, s in zip(means, sds)]
    high = [m + s if m <= Y_CLIP else math.nan for m, s in zip(means, sds)]
    return low, high


def _clip(ax, means: Sequence[float]) -> None:
    """y from 0 to at most Y_CLIP (the zero predictor is at 1); says so when points are cut."""
    top = max(means, default=1.0)
    if top > Y_CLIP:
        ax.set_ylim(0, Y_CLIP)
        ax.text(0.98, 0.98, f"y clipped at {Y_CLIP}\n(max mean {top:.3g}; see table)", transform=ax.transAxes,
                fontsize=7, va="top", ha="right", color="dimgray",
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.5})  # fmt: skip
    else:
        ax.set_ylim(0, max(1.1, top * 1.05))


def figure_risk_vs_n(
    records: Sequence[Mapping],
    target: MultiIndexTarget | None = None,
    title: str = "",
    panel_key: str | None = "width",
):
    """Fig. 1 form: one panel per ``panel_key`` value (e.g. width), risk vs log_d(n)."""
    panels = (
        sorted({r.get(panel_key) for r in records}, key=lambda v: (v is None, v))
        if panel_key
        else [None]
    )
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False, sharey=True
    )
    for ax, panel in zip(axes[0], panels):
        subset = [r for r in records if panel_key is None or r.get(panel_key) == panel]
        rows = aggregate(subset, by=["method", "d", "n"])
        methods = sorted({row["method"] for row in rows}, key=_method_order)
        x_max = 0.0
        colors = _colors(methods)
        for method in methods:
            line = [row for row in rows if row["method"] == method]
            d = line[0]["d"]
            xs = [log_d(row["n"], d) for row in line]
            x_max = max(x_max, *xs)
            means = [row["mean"] for row in line]
            sds = [row["sd"] for row in line]
            color = colors[method]
            ax.plot(xs, means, marker="o", markersize=3.5, color=color, label=method_label(method))
            low, high = _band(means, sds)
            ax.fill_between(xs, low, high,
                            color=color, alpha=0.2, linewidth=0)  # fmt: skip
        _reference_lines(ax, target)
        _theory_overlays(ax, target, x_max)
        ax.set_xlabel("log_d(n)")
        _clip(ax, [row["mean"] for row in rows])
        if panel_key and panel is not None:
            ax.set_title(f"{panel_key} = {panel}")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("excess L2 risk E[(f − f*)²]")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.01))  # fmt: skip
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06 + 0.035 * math.ceil(len(labels) / 3), 1, 1))
    return fig


def _half_grid(value: float, d: int) -> float:
    """log_d(value) to the nearest 0.5 (the grids are d^k for half-integer k, rounded to integers)."""
    return round(2 * log_d(value, d)) / 2


def figure_transfer(records: Sequence[Mapping], d: int, title: str = ""):
    """Fig. 2 form: risk vs log_d(n) (pretraining) for each N, and risk vs log_d(N) for each n."""
    rows = aggregate(records, by=["n", "N"])
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.6), sharey=True)
    for ax, (x_key, line_key) in zip(axes, [("n", "N"), ("N", "n")]):
        values = sorted({row[line_key] for row in rows})
        cmap = plt.get_cmap("viridis")
        for i, value in enumerate(values):
            line = sorted(
                (row for row in rows if row[line_key] == value), key=lambda row: row[x_key]
            )
            xs = [log_d(row[x_key], d) for row in line]
            means = [row["mean"] for row in line]
            sds = [row["sd"] for row in line]
            color = cmap(i / max(len(values) - 1, 1))
            ax.plot(xs, means, marker="o", markersize=3.5, color=color,
                    label=f"{line_key} = {value} (d^{_half_grid(value, d):g})")  # fmt: skip
            low, high = _band(means, sds)
            ax.fill_between(xs, low, high,
                            color=color, alpha=0.15, linewidth=0)  # fmt: skip
        ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="zero predictor")
        ax.set_xlabel(
            "log_d(n)  (pretraining samples)" if x_key == "n" else "log_d(N)  (downstream samples)"
        )
        _clip(ax, [row["mean"] for row in rows])
        ax.grid(alpha=0.3)
        # below the panel: inside, it would sit on the curves that fall through the middle
        ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    axes[0].set_ylabel("downstream excess L2 risk")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def figure_scaling(
    fits: Mapping[str, Mapping], title: str = "", guides: Mapping[str, float] | None = None
):
    """log n*(d) vs log d per method with the fitted line and theory slopes as guides.

    ``fits[method]`` has ``n_star`` {d: n* or None}, ``slope``, ``intercept``, ``ci``.
    """
    fig, ax = plt.subplots(figsize=(6, 4.5))
    all_d = sorted({d for fit in fits.values() for d in fit["n_star"]})
    for i, (method, fit) in enumerate(sorted(fits.items())):
        color = _color(method, i)
        points = [(d, n) for d, n in sorted(fit["n_star"].items()) if n is not None]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], "o", color=color)
        if fit.get("slope") is not None:
            low, high = fit["ci"]
            ds = [min(all_d), max(all_d)]
            ax.plot(ds, [math.exp(fit["intercept"]) * d ** fit["slope"] for d in ds], color=color,
                    label=f"{method_label(method)}: slope {fit['slope']:.2f} [{low:.2f}, {high:.2f}]")  # fmt: skip
        elif points or fit["n_star"]:
            reached = ", ".join(str(p[0]) for p in points)
            note = (
                f"threshold reached only at d = {reached}"
                if points
                else "threshold reached at no d"
            )
            ax.plot([], [], "o", color=color, label=f"{method_label(method)}: {note}")
    if guides and all_d:
        anchor_d = min(all_d)
        anchor_n = min(
            (n for fit in fits.values() for n in fit["n_star"].values() if n), default=anchor_d**2
        )
        for name, slope in guides.items():
            ds = [min(all_d), max(all_d)]
            ax.plot(ds, [anchor_n * (d / anchor_d) ** slope for d in ds], color="gray", linestyle=":",
                    label=f"theory guide: {name} (slope {slope:g})")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    if not any(n for fit in fits.values() for n in fit["n_star"].values() if n):
        # nothing positive on the log axes: fix their range, say why they are empty
        low, high = (min(all_d), max(all_d)) if all_d else (1, 10)
        ax.set_xlim(low / 1.5, high * 1.5)
        ax.set_ylim(1, max(10.0, float(high) ** 2))
        ax.text(0.5, 0.5, "the risk threshold was reached at no d:\nno n*(d) to draw",
                transform=ax.transAxes, ha="center", va="center", color="dimgray")  # fmt: skip
    ax.set_xlabel("d")
    ax.set_ylabel("n*(d): samples to reach the risk threshold")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def figure_scaling_curves(table: Sequence[Mapping], epsilon: float, title: str = ""):
    """Mean risk vs n/d² per method (one panel each), a line per d, ε dashed."""
    labels = list(dict.fromkeys(row["method"] for row in table))
    fig, axes = plt.subplots(
        1, max(len(labels), 1), figsize=(4.2 * max(len(labels), 1), 3.6), squeeze=False
    )
    ds = sorted({row["d"] for row in table})
    cmap = plt.get_cmap("viridis")
    for ax, label in zip(axes[0], labels):
        for i, d in enumerate(ds):
            line = sorted(
                (r for r in table if r["method"] == label and r["d"] == d), key=lambda r: r["n"]
            )
            line = [r for r in line if math.isfinite(r["risk_mean"])]
            if not line:
                continue
            ax.plot(
                [r["n/d^2"] for r in line],
                [r["risk_mean"] for r in line],
                marker="o",
                markersize=3,
                color=cmap(i / max(len(ds) - 1, 1)),
                label=f"d = {d}",
            )
        ax.axhline(epsilon, color="black", linestyle="--", linewidth=1, label=f"ε = {epsilon:g}")
        ax.set_xscale("log")
        ax.set_xlabel("n / d²")
        ax.set_title(label, fontsize=9)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("mean excess risk (evaluated n)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def save_figure(fig, out_dir: Path, stem: str) -> dict[str, Path]:
    """Write ``stem.png`` (150 dpi) and ``stem.pdf``; return their paths."""
    paths = {}
    for fmt, kwargs in (("png", {"dpi": 150}), ("pdf", {})):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, bbox_inches="tight", **kwargs)
        paths[fmt] = out_dir / f"{stem}.{fmt}"
        atomic_write_bytes(paths[fmt], buffer.getvalue())
    plt.close(fig)
    return paths
