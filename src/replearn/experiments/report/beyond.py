"""The report's per-step figures and tables for runs that carry a giant-step ``history``.

A ``giant_step`` run stores, per step t = 1…T, small summaries (``methods.step_summary``):
the alignment ‖Π* W^t‖²_F/‖W^t‖²_F, per direction u_k the mean over neurons of
cos²(w_j^t, u_k), and blocks of at most 256 neurons × 2 directions: the cosines of W^t's rows
(``cosines``), of the step's rows W^t − W^{t−1} (``step_cosines``) and the overlaps W^t·u_k
(``overlaps``); with ``head: none`` also the network's test MSE (``network_risk``), and the
same measurements of W⁰ as ``initial`` (step 0). The figures:

- ``figure_step_scatter``: cos(w_j, u₁) against cos(w_j, u₂), one colour per step (the
  form of the GiantStep notebooks of Dandi et al.): a staircase shows the cloud leaving the
  u₁ axis at the step that picks up u₂;
- ``figure_alignment_vs_step``: mean over seeds of the alignment after each step, one line
  per n (top row), and mean_j cos²(w_j, u_k) per direction at the largest n (bottom row);
  1/d is what random neurons give;
- ``figure_step_cosines``: Dandi et al. 2023's multiple_steps figure, per step t the points
  (cos(G_i, u₁), cos(G_i, u₂)) of the step's rows G_i of the first 40 neurons, with the line
  of slope μ₁(u₂)/μ₁(u₁) (``replearn.theory.first_step_slope``) that the first step follows;
- ``figure_step_trajectories``: Dandi et al. 2024's curves, the overlaps |w_j^t·u_k| of the
  first two neurons and the network's test MSE against t, mean ± sd over seeds per method,
  with the published numbers of the spec's ``published.per_step`` as points
  (``published_steps``: a quantity tagged ``"overlap[0,0] (DMFT)"`` is a second published
  curve; the block's ``scale`` converts the published risks).

``step_values`` turns the histories into one row per (run, step, quantity) and
``step_table`` aggregates them over seeds with ``analysis.aggregate`` — the numbers the
trajectory figure draws and the report's per-step table prints, beside the published ones.

Records are flat run rows (``store.flat_rows``) with ``method`` (a label), ``n``, ``seed``,
``d`` and ``history``; rows without ``history`` are ignored.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from replearn.experiments.analysis import aggregate, log_d
from replearn.experiments.report.figures import plt, save_figure

__all__ = [
    "history_records",
    "figure_step_scatter",
    "figure_alignment_vs_step",
    "figure_step_cosines",
    "figure_step_trajectories",
    "step_values",
    "step_table",
    "published_steps",
    "slope_through_zero",
    "history_figures",
    "PLOTTED_NEURONS",
    "TRAJECTORY_NEURONS",
]

PLOTTED_NEURONS = 40
"""Neurons in the step-cosine figure and its numbers: the notebook's 2·``num_neur_plus``."""
TRAJECTORY_NEURONS = 2
"""Neurons whose overlaps the trajectory figure draws (Dandi et al. 2024's K = 2)."""
NOTEBOOK_COLOURS = ("darkgreen", "lime", "olive", "brown", "lightcoral", "darkgrey")
"""The colours of steps 1…6 in the multiple_steps notebook (cells 13 and 20)."""


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


def slope_through_zero(points) -> float:
    """Least-squares slope through 0 of the points (x_i, y_i): Σ x_i·y_i / Σ x_i².

    Examples
    --------
    >>> slope_through_zero([[1.0, 0.25], [-0.5, -0.125]])
    0.25
    """
    points = np.asarray(points, dtype=float)
    x, y = points[:, 0], points[:, 1]
    return float(x @ y / (x @ x))


def _entries(record: Mapping) -> list[Mapping]:
    """The run's measurements in step order: ``initial`` (step 0) when stored, then history."""
    initial = record.get("initial")
    return ([initial] if isinstance(initial, Mapping) else []) + list(record["history"])


def step_values(records: Sequence[Mapping]) -> list[dict]:
    """One row per (run, step, quantity): ``method``, ``d``, ``n``, ``N``, ``noise``,
    ``seed``, ``step``, ``quantity``, ``value``, and the run's ``param_*`` columns.

    Quantities, where the run stored what they need:

    - ``overlap[j,k]``: w_j^t·u_k (signed; Dandi et al. 2024's m(t)), j < 2, k < 2;
    - ``network_risk``: the network's test MSE, mean (f − y)² (no ½);
    - ``slope``: ``slope_through_zero`` of the step-cosine points of the first 40 neurons
      (networks of more than two neurons);
    - ``abs_step_cos[k]``: mean over those neurons of |cos(G_i, u_k)|.
    """
    rows = []
    for record in history_records(records):
        params = {k: v for k, v in record.items() if str(k).startswith("param_")}
        for entry in _entries(record):
            values: dict[str, float] = {}
            overlaps = entry.get("overlaps")
            if overlaps:
                for j, row in enumerate(overlaps[:TRAJECTORY_NEURONS]):
                    values.update({f"overlap[{j},{k}]": float(v) for k, v in enumerate(row)})
            if entry.get("network_risk") is not None:
                values["network_risk"] = float(entry["network_risk"])
            cosines = entry.get("step_cosines")
            if cosines and len(cosines) > TRAJECTORY_NEURONS and len(cosines[0]) >= 2:
                block = np.asarray(cosines, dtype=float)[:PLOTTED_NEURONS]
                values["slope"] = slope_through_zero(block)
                for k in range(2):
                    values[f"abs_step_cos[{k}]"] = float(np.abs(block[:, k]).mean())
            for quantity, value in values.items():
                rows.append(dict(params, method=record["method"], d=record.get("d"),
                                 n=record.get("n"), N=record.get("N"), noise=record.get("noise"),
                                 seed=record.get("seed"), step=int(entry["step"]),
                                 quantity=quantity, value=value))  # fmt: skip
    return rows


RISK_QUANTITIES = ("network_risk",)
"""Step quantities that are risks: a published block's ``scale`` (its risk convention, e.g.
2 for a published ½-MSE, when its ``metric`` is excess_risk) applies to them too."""
_TAGGED = re.compile(r"^(?P<quantity>.*?)\s*\((?P<tag>[^()]+)\)$")


def published_steps(published: Mapping | None) -> list[dict]:
    """The ``published.per_step`` rows in replearn's units, for the step figures and table.

    Each: ``step``, ``quantity`` (a :func:`step_values` quantity), ``label`` ("published",
    or "published <tag>" for a quantity written ``"overlap[0,0] (DMFT)"``: a second published
    curve, e.g. a theory's, beside the simulation), ``mean`` and ``sd`` (None when not given)
    times the block's ``scale`` for the risks of ``RISK_QUANTITIES`` (when the block's
    ``metric`` is excess_risk: the scale is the paper's risk convention), and ``point``: the
    row's grid keys (``experiments.published.row_point``).

    Parameters
    ----------
    published : mapping or None
        A spec's ``published`` block (as stored: plain mappings).

    Returns
    -------
    list of dict

    Examples
    --------
    >>> block = {"metric": "excess_risk", "scale": 2.0, "per_step": [
    ...     {"step": 1, "quantity": "network_risk", "mean": 0.42, "sd": 0.003, "batch": "reuse"},
    ...     {"step": 1, "quantity": "overlap[0,0] (DMFT)", "mean": 0.0758}]}
    >>> for row in published_steps(block):
    ...     print(row)
    {'step': 1, 'quantity': 'network_risk', 'label': 'published', 'mean': 0.84, 'sd': 0.006, 'point': {'batch': 'reuse'}}
    {'step': 1, 'quantity': 'overlap[0,0]', 'label': 'published DMFT', 'mean': 0.0758, 'sd': None, 'point': {}}
    """
    from replearn.experiments.published import row_point

    block = published or {}
    risk_scale = float(block.get("scale") or 1.0)
    if block.get("metric", "excess_risk") != "excess_risk":
        risk_scale = 1.0
    out = []
    for row in block.get("per_step") or []:
        quantity, label = row["quantity"], "published"
        tagged = _TAGGED.match(quantity)
        if tagged:
            quantity, label = tagged["quantity"], f"published {tagged['tag']}"
        scale = risk_scale if quantity in RISK_QUANTITIES else 1.0
        sd = row.get("sd")
        out.append({"step": int(row["step"]), "quantity": quantity, "label": label,
                    "mean": scale * float(row["mean"]),
                    "sd": None if sd is None else scale * float(sd), "point": row_point(row)})  # fmt: skip
    return out


def _at_point(record: Mapping, point: Mapping) -> bool:
    """Whether a run (a flat row, ``method`` possibly labelled ``name[param=…]``) is at a
    published row's grid point: ``method`` by name, d/n/N/noise as they are, any other key
    a hyper-parameter (``param_<key>``)."""
    for key, value in point.items():
        if key == "method":
            label = str(record.get("method"))
            if label != value and not label.startswith(f"{value}["):
                return False
        elif key in ("d", "n", "N", "noise"):
            if record.get(key) != value:
                return False
        elif record.get(f"param_{key}") != value:
            return False
    return True


def step_table(records: Sequence[Mapping], published: Mapping | None = None) -> list[dict]:
    """Mean ± sd over seeds (``analysis.aggregate``) of every :func:`step_values` quantity,
    per method, d, n and step, with the published numbers (:func:`published_steps`, in
    replearn's units, at the rows' grid points) beside them: one column per published label,
    "mean ± sd" or "mean"."""
    values = step_values(records)
    by = ["method", "d", "n", "quantity", "step"]
    published_rows = published_steps(published)
    table = []
    for row in aggregate(values, by=by, value="value"):
        example = next(v for v in values if all(v[k] == row[k] for k in by))
        out = {**{k: row[k] for k in by}, "mean": row["mean"], "sd": row["sd"],
               "seeds": row["count"]}  # fmt: skip
        for point in published_rows:
            if (point["step"], point["quantity"]) != (row["step"], row["quantity"]):
                continue
            if not _at_point(example, point["point"]):
                continue
            text = f"{point['mean']:.4f}"
            if point["sd"] is not None:
                text += f" ± {point['sd']:.4f}"
            out[point["label"]] = text
        table.append(out)
    labels = sorted({k for r in table for k in r if k.startswith("published")})
    return [{**r, **{k: r.get(k, "") for k in labels}} for r in table]


def figure_step_cosines(
    history: Sequence[Mapping],
    slope: float | None = None,
    d: int | None = None,
    neurons: int = PLOTTED_NEURONS,
    title: str = "",
):
    """Per step t, cos(G_i, u₁) against cos(G_i, u₂) of the step's rows G_i = w_i^t − w_i^{t−1}
    of the first ``neurons`` neurons (one panel a step, the notebook's colours), with the
    line of slope ``slope`` (μ₁(u₂)/μ₁(u₁)), the unit circle and, given d, the circle of
    radius 2/√d (what random directions give), as Dandi et al. 2023's notebook draws them."""
    entries = [e for e in history if e.get("step_cosines")]
    fig, axes = plt.subplots(1, len(entries), figsize=(2.7 * len(entries), 3.1),
                             squeeze=False, sharex=True, sharey=True)  # fmt: skip
    line = np.linspace(-1.0, 1.0, 10)
    for ax, entry in zip(axes[0], entries, strict=True):
        points = np.asarray(entry["step_cosines"], dtype=float)[:neurons]
        colour = NOTEBOOK_COLOURS[(entry["step"] - 1) % len(NOTEBOOK_COLOURS)]
        ax.scatter(points[:, 0], points[:, 1], s=14, color=colour, label=f"T = {entry['step']}")
        if slope is not None:
            ax.plot(line, slope * line, color="black", lw=0.8,
                    label=rf"slope $\mu_1(u_2)/\mu_1(u_1)$ = {slope:.3g}")  # fmt: skip
        ax.add_patch(plt.Circle((0.0, 0.0), 1.0, color="black", fill=False, lw=0.6))
        if d:
            ax.add_patch(plt.Circle((0.0, 0.0), 2.0 / np.sqrt(d), color="blue", fill=False, lw=0.6))
        ax.set_xlim(-1.0, 1.0)
        ax.set_ylim(-1.0, 1.0)
        ax.set_aspect("equal")
        ax.set_title(f"step {entry['step']}", fontsize=9)
        ax.set_xlabel(r"cos($G_i$, $u_1$)")
    axes[0][0].set_ylabel(r"cos($G_i$, $u_2$)")
    axes[0][0].legend(fontsize=6, loc="upper left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def figure_step_trajectories(
    records: Sequence[Mapping], published: Mapping | None = None, title: str = ""
):
    """Against the step t = 0…T: |w_j^t·u_k| for the first two neurons, one panel per
    direction u_k, and the network's test MSE (last panel), mean ± sd over seeds per method
    (the rows of :func:`step_table`); the published rows (:func:`published_steps`, in
    replearn's units) as black points: circles with their sd, tagged rows (e.g. a DMFT
    theory's) as crosses."""
    table = step_table(records)
    labels = sorted({r["method"] for r in table})
    directions = sorted(
        {int(r["quantity"][-2]) for r in table if r["quantity"].startswith("overlap")}
    )
    panels = [f"overlap[{{j}},{k}]" for k in directions]
    if any(r["quantity"] == "network_risk" for r in table):
        panels.append("network_risk")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        neurons = range(TRAJECTORY_NEURONS) if "{j}" in panel else [None]
        for i, label in enumerate(labels):
            for j in neurons:
                quantity = panel.format(j=j)
                rows = sorted((r for r in table if r["method"] == label and r["quantity"] == quantity),
                              key=lambda r: r["step"])  # fmt: skip
                if not rows:
                    continue
                steps = [r["step"] for r in rows]
                mean = np.abs([r["mean"] for r in rows])
                sd = np.array([r["sd"] for r in rows])
                name = label if j is None else f"{label}, neuron {j + 1}"
                ax.plot(steps, mean, "o-" if not j else "s--", ms=3, color=f"C{i}", label=name)
                ax.fill_between(steps, mean - sd, mean + sd, color=f"C{i}", alpha=0.2, lw=0)
        for point in published_steps(published):
            if not any(point["quantity"] == panel.format(j=j) for j in range(TRAJECTORY_NEURONS)):
                continue
            simulation = point["label"] == "published"
            ax.errorbar(point["step"], abs(point["mean"]), yerr=point["sd"],
                        fmt="o" if simulation else "x", mfc="none", color="black", ms=6, lw=0.8,
                        label=point["label"])  # fmt: skip
        handles, names = ax.get_legend_handles_labels()
        unique = dict(zip(names, handles, strict=True))
        ax.legend(unique.values(), unique.keys(), fontsize=6)
        ax.set_xlabel("step t")
        if panel == "network_risk":
            ax.set_ylabel("network test MSE, mean (f − y)²")
        else:
            k = int(panel[-2])
            ax.set_ylabel(rf"overlap |$w_j^t \cdot u_{{{k + 1}}}$|")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def history_figures(
    records: Sequence[Mapping],
    d: int,
    out_dir: Path,
    stem: str,
    target=None,
    published: Mapping | None = None,
) -> list[dict]:
    """The per-step figures of the records at one d (none if no record has a history):
    ``{stem}-steps`` (alignment vs step); when the target has r ≥ 2 directions, one
    ``{stem}-scatter-k`` per method label (its first seed at its largest n) and, when the runs
    stored the step's cosines, one ``{stem}-step-cosines-k`` (the same run; the slope line
    from ``target``); when they stored the network's risk (``head: none``: the network is
    the predictor), ``{stem}-trajectories`` (all runs, with ``published.per_step``)."""
    from replearn.theory import first_step_slope

    records = history_records(records)
    if not records:
        return []
    written = [save_figure(figure_alignment_vs_step(records, d, title=f"{stem}: per step"),
                           out_dir, f"{stem}-steps")]  # fmt: skip
    slope = None
    if target is not None and target.r >= 2:
        try:
            slope = first_step_slope(target)
        except ValueError:  # μ₁(u₁) = 0: no line to draw
            slope = None
    for k, label in enumerate(sorted({r["method"] for r in records})):
        of_label = [r for r in records if r["method"] == label]
        largest = max(r["n"] for r in of_label)
        first = min((r for r in of_label if r["n"] == largest), key=lambda r: r["seed"])
        if len(first["history"][0]["cosines"][0]) < 2:
            continue
        title = f"{label}, d = {d}, n = d^{log_d(largest, d):.2f}, seed {first['seed']}"
        fig = figure_step_scatter(first["history"], title=title)
        written.append(save_figure(fig, out_dir, f"{stem}-scatter-{k}"))
        # the notebook's figure needs neurons: a two-neuron network's steps are its overlaps
        if len(first["history"][0].get("step_cosines") or []) > TRAJECTORY_NEURONS:
            fig = figure_step_cosines(first["history"], slope=slope, d=d,
                                      title=f"{title}: step rows G_i, first {PLOTTED_NEURONS} neurons")  # fmt: skip
            written.append(save_figure(fig, out_dir, f"{stem}-step-cosines-{k}"))
    if any(q["quantity"] == "network_risk" for q in step_values(records)):  # head: none
        fig = figure_step_trajectories(records, published, title=f"{stem}: per step, d = {d}")
        written.append(save_figure(fig, out_dir, f"{stem}-trajectories"))
    return written
