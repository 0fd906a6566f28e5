"""The report's figures (matplotlib, Agg): Fig. 1 and Fig. 2 forms, alignment vs n, online
SGD's overlap m(t), n*(d) and search curves.

Input is a list of run records — flat dicts with at least ``method`` (a label), ``d``, ``n``,
``seed`` and ``risk``; optional ``width``, ``N`` (transfer samples). The risk figures follow
the paper: excess L2 risk E[(f − f*)²] against log_d(n), mean ± sd band over seeds
(:func:`replearn.experiments.analysis.aggregate`), dashed reference lines at E f*² (the zero
predictor; 1 for a normalised target) and at the best degree-≤k predictor's risk (from the
target's exact degree energy), with theory overlays from ``replearn.theory``: the d²κ²r
threshold (Theorem 1), the kernel staircase and, for one-step runs in the proportional
setting, the asymptotic test error of Cui et al. 2024. Which theory line each figure draws,
and when, is ruled by :mod:`replearn.experiments.report.theory_lines` (its docstring lists
every figure). Theory lines are grey and carry ``gid="theory"``; data lines have markers.
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
from replearn.experiments.report.theory_lines import (  # noqa: E402
    Overlay,
    TheoryLine,
    one_step_overlay,
    online_ode_overlay,
    recovery_lines,
)
from replearn.targets import MultiIndexTarget  # noqa: E402

__all__ = [
    "COLORS",
    "LABELS",
    "method_label",
    "risk_overlays",
    "figure_risk_vs_n",
    "figure_alignment_vs_n",
    "trajectory_records",
    "figure_overlap_trajectory",
    "trajectory_overlays",
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


def _risk_scale(target: MultiIndexTarget | None) -> float:
    """E f*² in the units of the plotted risk E[(f − f*)²]: 1 for a normalised target (and
    where E f*² cannot be drawn), so relative theory risks × this are absolute ones."""
    if not _drawable(target):
        return 1.0
    norm2 = target.norm2()
    return 1.0 if math.isclose(norm2, 1.0, rel_tol=1e-9) else norm2


def _reference_lines(ax, target: MultiIndexTarget | None) -> None:
    scale = _risk_scale(target)
    ax.axhline(scale, color=THEORY_COLOR, linestyle="--", linewidth=1, label="zero predictor",
               gid="theory")  # fmt: skip
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
        risk = theory.best_degree_risk(target, k) / norm2 * scale
        if 0 < risk < scale and round(risk, 6) not in shown and k >= min(degrees):
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
        ys += [risk / target.norm2() * _risk_scale(target)] * 2
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


def _panels(records: Sequence[Mapping], panel_key: str | None) -> list:
    if not panel_key:
        return [None]
    return sorted({r.get(panel_key) for r in records}, key=lambda v: (v is None, v))


def _in_panel(records: Sequence[Mapping], panel_key: str | None, panel) -> list[Mapping]:
    return [r for r in records if panel_key is None or r.get(panel_key) == panel]


def risk_overlays(
    records: Sequence[Mapping],
    target: MultiIndexTarget | None = None,
    panel_key: str | None = "width",
) -> dict[tuple, Overlay]:
    """The one-step theory of each method line of :func:`figure_risk_vs_n` (one d):
    {(panel, method label): Overlay} (``theory_lines.one_step_overlay``; lines whose method
    has no one-step theory are left out).

    Parameters
    ----------
    records : sequence of mapping
        Run rows of one d (``method`` a label such as ``one_step[eta1=8.0]``, ``param_*``).
    target : MultiIndexTarget or None
    panel_key : str or None
        As in :func:`figure_risk_vs_n`.

    Returns
    -------
    dict

    Examples
    --------
    >>> risk_overlays([{"method": "ntk", "d": 4, "n": 16, "risk": 1.0}], None, None)
    {}
    """
    out = {}
    for panel in _panels(records, panel_key):
        subset = _in_panel(records, panel_key, panel)
        for label in sorted({r["method"] for r in subset}, key=_method_order):
            base = label.split("[")[0]
            if base not in ("one_step", "giant_step"):
                continue
            of_label = [r for r in subset if r["method"] == label]
            out[(panel, label)] = one_step_overlay(base, of_label, target, method_label(label))
    return out


def _draw(ax, line: TheoryLine, **style) -> None:
    """A theory line (grey, ``gid="theory"``): a curve or a vertical line."""
    kwargs = dict(color=THEORY_COLOR, linestyle=line.style, linewidth=1.3, label=line.label,
                  gid="theory", **style)  # fmt: skip
    if line.kind == "vline":
        ax.axvline(line.x[0], **kwargs)
    else:
        ax.plot(line.x, line.y, **kwargs)


def figure_risk_vs_n(
    records: Sequence[Mapping],
    target: MultiIndexTarget | None = None,
    title: str = "",
    panel_key: str | None = "width",
    overlays: Mapping[tuple, Overlay] | None = None,
):
    """Fig. 1 form: one panel per ``panel_key`` value (e.g. width), risk vs log_d(n).

    ``overlays``: :func:`risk_overlays` of the records (computed when None): the one-step
    asymptotic curves drawn over their method lines."""
    panels = _panels(records, panel_key)
    if overlays is None:
        overlays = risk_overlays(records, target, panel_key)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False, sharey=True
    )
    for ax, panel in zip(axes[0], panels):
        subset = _in_panel(records, panel_key, panel)
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
        for method in methods:
            for theory_line in overlays.get((panel, method), Overlay()).lines:
                _draw(ax, theory_line)
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


def figure_alignment_vs_n(
    records: Sequence[Mapping],
    target: MultiIndexTarget | None,
    d: int,
    title: str = "",
    overlay: Overlay | None = None,
):
    """Subspace alignment ‖Π*W‖²_F/‖W‖²_F vs log_d(n), mean ± sd over seeds per method line,
    with n = α_c·d (weak recovery; ``theory_lines.recovery_lines``) for a single-index target.

    Parameters
    ----------
    records : sequence of mapping
        Run rows of one d with ``alignment`` (rows without it are left out).
    target : MultiIndexTarget or None
    d : int
    title : str
    overlay : Overlay, optional
        The threshold lines (computed from the target and the records' noise when None).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = figure_alignment_vs_n([{"method": "one_step", "d": 4, "n": 16, "seed": 0,
    ...                               "alignment": 0.5}], None, 4)
    >>> [line.get_gid() for line in fig.axes[0].get_lines()]
    [None, 'theory']
    """
    rows_in = [dict(r, risk=r["alignment"]) for r in records if r.get("alignment") is not None]
    if overlay is None:
        first = rows_in[0] if rows_in else {}
        overlay = recovery_lines(target, float(first.get("noise") or 0.0),
                                 first.get("noise_kind") or "rademacher", d)  # fmt: skip
    rows = aggregate(rows_in, by=["method", "n"])
    methods = sorted({row["method"] for row in rows}, key=_method_order)
    colors = _colors(methods)
    fig, ax = plt.subplots(figsize=(6.2, 4.4))
    for method in methods:
        line = [row for row in rows if row["method"] == method]
        xs = [log_d(row["n"], d) for row in line]
        means = [row["mean"] for row in line]
        ax.plot(xs, means, marker="o", markersize=3.5, color=colors[method],
                label=method_label(method))  # fmt: skip
        sds = [row["sd"] for row in line]
        ax.fill_between(xs, [m - s for m, s in zip(means, sds)], [m + s for m, s in zip(means, sds)],
                        color=colors[method], alpha=0.2, linewidth=0)  # fmt: skip
    r = target.r if target is not None else 1
    ax.axhline(r / d, color="0.5", linestyle=":", linewidth=1, label=f"{r}/d (random W)",
               gid="theory")  # fmt: skip
    for theory_line in overlay.lines:
        _draw(ax, theory_line)
    ax.set_xlabel("log_d(n)")
    ax.set_ylabel("alignment ‖Π*W‖²_F / ‖W‖²_F")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def trajectory_records(records: Sequence[Mapping]) -> dict[str, list[Mapping]]:
    """{method label: its runs at the label's largest n} of the rows that carry an
    ``overlap_trace`` (online SGD; a longer run's trace extends a shorter one's).

    Parameters
    ----------
    records : sequence of mapping
        Run rows.

    Returns
    -------
    dict of str to list

    Examples
    --------
    >>> rows = [{"method": "online_sgd", "n": n, "overlap_trace": {"samples": [0]}}
    ...         for n in (10, 20)] + [{"method": "one_step", "n": 5}]
    >>> {k: [r["n"] for r in v] for k, v in trajectory_records(rows).items()}
    {'online_sgd': [20]}
    """
    out = {}
    traced = [r for r in records if r.get("overlap_trace")]
    for label in sorted({r["method"] for r in traced}, key=_method_order):
        of_label = [r for r in traced if r["method"] == label]
        largest = max(r["n"] for r in of_label)
        out[label] = [r for r in of_label if r["n"] == largest]
    return out


def _trace_mean(records: Sequence[Mapping]) -> tuple[list[float], list[float], list[float]]:
    """Samples, mean and sd over every replica of every run of abs(m(t))."""
    samples = records[0]["overlap_trace"]["samples"]
    values = [[abs(v) for v in row] for r in records for row in r["overlap_trace"]["overlap"]
              if r["overlap_trace"]["samples"] == samples]  # fmt: skip
    columns = list(zip(*values))
    means = [float(sum(c) / len(c)) for c in columns]
    sds = [
        math.sqrt(sum((v - m) ** 2 for v in c) / (len(c) - 1)) if len(c) > 1 else 0.0
        for c, m in zip(columns, means)
    ]
    return [float(s) for s in samples], means, sds


def figure_overlap_trajectory(
    records: Sequence[Mapping],
    target: MultiIndexTarget | None,
    d: int,
    title: str = "",
    overlays: Mapping[str, Overlay] | None = None,
):
    """Online SGD's overlap abs(m(t)) vs samples (log axis), one panel per method label: the mean
    over replicas and seeds ± sd, the ODE of Ben Arous et al. over it, the run's recovery
    threshold and n = α_c·d.

    Parameters
    ----------
    records : sequence of mapping
        Run rows of one d; those with ``overlap_trace`` are drawn (:func:`trajectory_records`).
    target : MultiIndexTarget or None
    d : int
    title : str
    overlays : mapping of str to Overlay, optional
        Per method label: the ODE (``theory_lines.online_ode_overlay``) and the recovery
        thresholds; computed when None.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> rows = [{"method": "x", "d": 4, "n": 8, "seed": 0, "noise": 0.0,
    ...          "overlap_trace": {"samples": [0, 1, 8], "overlap": [[0.1, 0.2, 0.9]]}}]
    >>> fig = figure_overlap_trajectory(rows, None, 4)
    >>> [float(y) for y in fig.axes[0].get_lines()[0].get_ydata()]
    [0.1, 0.2, 0.9]
    """
    groups = trajectory_records(records)
    if overlays is None:
        overlays = trajectory_overlays(groups, target, d)
    labels = list(groups)
    fig, axes = plt.subplots(1, max(len(labels), 1), figsize=(5.4 * max(len(labels), 1), 4.2),
                             squeeze=False)  # fmt: skip
    colors = _colors(labels)
    for ax, label in zip(axes[0], labels):
        of_label = groups[label]
        samples, means, sds = _trace_mean(of_label)
        xs = [max(s, 0.5) for s in samples]  # the start (0 samples) drawn at ½ on the log axis
        ax.plot(xs, means, marker="o", markersize=2.5, color=colors[label],
                label=f"{method_label(label)}: mean |m(t)| ({sum(len(r['overlap_trace']['overlap']) for r in of_label)} runs)")  # fmt: skip
        ax.fill_between(xs, [m - s for m, s in zip(means, sds)], [m + s for m, s in zip(means, sds)],
                        color=colors[label], alpha=0.2, linewidth=0)  # fmt: skip
        for theory_line in overlays.get(label, Overlay()).lines:
            if theory_line.kind == "curve":
                theory_line = TheoryLine(tuple(max(x, 0.5) for x in theory_line.x),
                                         theory_line.y, theory_line.label, "curve", theory_line.style)  # fmt: skip
            _draw(ax, theory_line)
        threshold = of_label[0].get("param_threshold")
        if threshold is not None:
            ax.axhline(threshold, color="0.6", linestyle=":", linewidth=1,
                       label=f"recovery threshold {threshold:g} (the run's)")  # fmt: skip
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("samples t (log scale; t = 0 drawn at ½)")
        ax.set_title(f"{label}, n = d^{log_d(of_label[0]['n'], d):.2f}", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="upper left")
    axes[0][0].set_ylabel("overlap |m(t)| = |u·w|")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def trajectory_overlays(
    groups: Mapping[str, Sequence[Mapping]],
    target: MultiIndexTarget | None,
    d: int,
    thresholds: Mapping | None = None,
) -> dict[str, Overlay]:
    """Per method label of :func:`trajectory_records`: the online ODE and n = α_c·d (x in
    samples), with the notes of what is left out.

    Parameters
    ----------
    groups : mapping of str to sequence of mapping
        :func:`trajectory_records`.
    target : MultiIndexTarget or None
    d : int
    thresholds : mapping, optional
        ``theory_lines.recovery_thresholds`` of the target and the runs' noise, if known.

    Returns
    -------
    dict of str to Overlay

    Examples
    --------
    >>> trajectory_overlays({}, None, 4)
    {}
    """
    out = {}
    for label, rows in groups.items():
        ode = online_ode_overlay(rows, target, method_label(label))
        first = rows[0]
        recovery = recovery_lines(target, float(first.get("noise") or 0.0),
                                  first.get("noise_kind") or "rademacher", d, log_x=False,
                                  thresholds=thresholds)  # fmt: skip
        out[label] = Overlay(ode.lines + recovery.lines, ode.notes + recovery.notes)
    return out


def _half_grid(value: float, d: int) -> float:
    """log_d(value) to the nearest 0.5 (the grids are d^k for half-integer k, rounded to integers)."""
    return round(2 * log_d(value, d)) / 2


def figure_transfer(
    records: Sequence[Mapping],
    d: int,
    title: str = "",
    theory: Mapping[tuple, Sequence[TheoryLine]] | None = None,
):
    """Fig. 2 form: risk vs log_d(n) (pretraining) for each N, and risk vs log_d(N) for each n.

    ``theory``: ``theory_lines.transfer_overlay``'s lines ({("n", N): lines over log_d n,
    ("N", n): lines over log_d N}), drawn in the colour of their data line (dashed: d → ∞,
    dash-dot: the run's d; the legend names each style once)."""
    theory = theory or {}
    legend_named: set[str] = set()
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
            for theory_line in theory.get((x_key, value), ()):
                shown = theory_line.label not in legend_named
                legend_named.add(theory_line.label)
                ax.plot(theory_line.x, theory_line.y, color=color, linestyle=theory_line.style,
                        linewidth=1.2, gid="theory",
                        label=theory_line.label if shown else f"_{theory_line.label}")  # fmt: skip
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
