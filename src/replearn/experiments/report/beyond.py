"""The report's per-step figures for runs that carry a giant-step ``history``.

A ``giant_step`` run stores, per step t = 1…T, small summaries (``methods.step_history``):
the alignment ‖Π* W^t‖²_F/‖W^t‖²_F, per direction u_k the mean over neurons of
cos²(w_j^t, u_k), and the cosines of at most 256 neurons with u₁ and u₂. Two figures:

- ``figure_step_scatter``: cos(w_j, u₁) against cos(w_j, u₂), one colour per step (the
  form of the GiantStep notebooks of Dandi et al.): a staircase shows the cloud leaving the
  u₁ axis at the step that picks up u₂;
- ``figure_alignment_vs_step``: mean over seeds of the alignment after each step, one line
  per n (top row), and mean_j cos²(w_j, u_k) per direction at the largest n (bottom row);
  1/d is what random neurons give.

Records are flat run rows (``store.flat_rows``) with ``method`` (a label), ``n``, ``seed``,
``d`` and ``history``; rows without ``history`` are ignored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from replearn.experiments.analysis import log_d
from replearn.experiments.report.figures import plt, save_figure

__all__ = [
    "history_records",
    "figure_step_scatter",
    "figure_alignment_vs_step",
    "history_figures",
]


def history_records(records: Sequence[Mapping]) -> list[Mapping]:
    """The records that carry a non-empty per-step ``history``."""
    return [r for r in records if r.get("history")]


def _mean_by_step(records: Sequence[Mapping], value) -> tuple[list[int], list[float]]:
    """Steps and the mean over records (seeds) of ``value(step_entry)`` at each step."""
    by_step: dict[int, list[float]] = defaultdict(list)
    for record in records:
        for entry in record["history"]:
            by_step[int(entry["step"])].append(float(value(entry)))
    steps = sorted(by_step)
    return steps, [float(np.mean(by_step[t])) for t in steps]


def figure_step_scatter(history: Sequence[Mapping], title: str = ""):
    """cos(w_j, u₁) vs cos(w_j, u₂) of the stored neurons, one colour per step."""
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    for entry in history:
        cosines = np.asarray(entry["cosines"], dtype=float)
        ax.scatter(
            cosines[:, 0], cosines[:, 1], s=8, alpha=0.6, color=f"C{(entry['step'] - 1) % 10}",
            label=f"step {entry['step']} (alignment {entry['alignment']:.2f})",
        )  # fmt: skip
    ax.axhline(0.0, color="0.7", lw=0.6)
    ax.axvline(0.0, color="0.7", lw=0.6)
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_aspect("equal")
    ax.set_xlabel(r"cos($w_j$, $u_1$)")
    ax.set_ylabel(r"cos($w_j$, $u_2$)")
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(1.02, 0.0))
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def figure_alignment_vs_step(records: Sequence[Mapping], d: int, title: str = ""):
    """Top: mean alignment after each step, one line per n, one panel per method label.
    Bottom: mean_j cos²(w_j, u_k) per direction at the largest n (dotted: 1/d)."""
    records = history_records(records)
    labels = sorted({r["method"] for r in records})
    fig, axes = plt.subplots(
        2, len(labels), figsize=(4.2 * len(labels), 6.4), squeeze=False, sharey="row"
    )
    for column, label in enumerate(labels):
        of_label = [r for r in records if r["method"] == label]
        ns = sorted({r["n"] for r in of_label})
        top, bottom = axes[0][column], axes[1][column]
        for i, n in enumerate(ns):
            steps, means = _mean_by_step(
                [r for r in of_label if r["n"] == n], lambda e: e["alignment"]
            )
            top.plot(steps, means, "o-", color=plt.cm.viridis(i / max(len(ns) - 1, 1)),
                     label=f"n = d^{log_d(n, d):.2f}")  # fmt: skip
        at_largest = [r for r in of_label if r["n"] == ns[-1]]
        r_shown = len(at_largest[0]["history"][0]["direction_cos2"])
        for k in range(r_shown):
            steps, means = _mean_by_step(at_largest, lambda e, k=k: e["direction_cos2"][k])
            bottom.plot(steps, means, "s-", color=f"C{k}", label=f"$u_{{{k + 1}}}$")
        bottom.axhline(1.0 / d, color="0.5", ls=":", lw=1, label="1/d (random)")
        top.set_title(f"{label}", fontsize=9)
        top.set_ylim(-0.02, 1.02)
        bottom.set_ylim(-0.02, 1.02)
        top.set_ylabel("alignment ‖Π*W‖²/‖W‖²")
        bottom.set_ylabel(r"mean$_j$ cos²($w_j$, $u_k$), largest n")
        bottom.set_xlabel("step t")
        for ax in (top, bottom):
            ax.set_xticks(sorted({e["step"] for r in of_label for e in r["history"]}))
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def history_figures(records: Sequence[Mapping], d: int, out_dir: Path, stem: str) -> list[dict]:
    """The per-step figures of the records at one d (none if no record has a history):
    ``{stem}-steps`` (alignment vs step) and, when the target has r ≥ 2 directions, one
    ``{stem}-scatter-k`` per method label (its first seed at its largest n)."""
    records = history_records(records)
    if not records:
        return []
    written = [save_figure(figure_alignment_vs_step(records, d, title=f"{stem}: per step"),
                           out_dir, f"{stem}-steps")]  # fmt: skip
    for k, label in enumerate(sorted({r["method"] for r in records})):
        of_label = [r for r in records if r["method"] == label]
        largest = max(r["n"] for r in of_label)
        first = min((r for r in of_label if r["n"] == largest), key=lambda r: r["seed"])
        if len(first["history"][0]["cosines"][0]) < 2:
            continue
        title = f"{label}, d = {d}, n = d^{log_d(largest, d):.2f}, seed {first['seed']}"
        fig = figure_step_scatter(first["history"], title=title)
        written.append(save_figure(fig, out_dir, f"{stem}-scatter-{k}"))
    return written
