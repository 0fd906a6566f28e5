"""The report section of a grid experiment: its risk (or transfer) figures and tables.

Rows come from the store (:func:`replearn.experiments.frames.run_rows` of the done runs, the
rows of ``rl.results``);
figures and tables aggregate them over seeds with the same
:func:`replearn.experiments.analysis.aggregate`, so the plotted means are the tabulated ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from replearn.experiments.frames import run_rows
from replearn.experiments.report.beyond import history_figures, step_table
from replearn.experiments.report.explain import risk_caption, transfer_caption
from replearn.experiments.report.figures import (
    figure_alignment_vs_n,
    figure_overlap_trajectory,
    figure_risk_vs_n,
    figure_transfer,
    risk_overlays,
    save_figure,
    trajectory_overlays,
    trajectory_records,
)
from replearn.experiments.report.tables import table_rows, write_tables
from replearn.experiments.report.theory_lines import (
    Overlay,
    recovery_lines,
    recovery_thresholds,
    transfer_overlay,
)
from replearn.experiments.store import Store
from replearn.experiments.target_kinds import build_target, build_transfer_target

__all__ = ["grid_section", "QUALIFIER"]

# Per-cell parts of a file name (d, width) follow this character, which an experiment name
# cannot contain: experiment "g" at d = 4 writes g-risk@d4 and g@d4-steps, experiment "g-d4"
# writes g-d4-risk and g-d4-steps — never the same file.
QUALIFIER = "@"


def _varying_params(rows: Sequence[Mapping], method: str, skip: Sequence[str]) -> list[str]:
    keys = {k for r in rows if r["method"] == method for k in r if k.startswith("param_")}
    return sorted(
        k
        for k in keys
        if k not in skip and len({repr(r.get(k)) for r in rows if r["method"] == method}) > 1
    )


def _labelled(rows: Sequence[Mapping], panel_key: str | None) -> list[dict]:
    """Rows with ``method`` extended by the hyper-parameters that vary within a method."""
    out = []
    for method in sorted({r["method"] for r in rows}):
        varying = _varying_params(rows, method, skip=[f"param_{panel_key}"] if panel_key else [])
        for r in rows:
            if r["method"] != method:
                continue
            label = method
            if varying:
                label += "[" + ", ".join(f"{k[6:]}={r.get(k)}" for k in varying) + "]"
            row = dict(r, method=label)
            if panel_key:
                row[panel_key] = r.get(f"param_{panel_key}")
            out.append(row)
    return out


def grid_section(store: Store, name: str, out_dir: Path) -> dict:
    """Figures and tables of experiment ``name`` under ``out_dir``, as a section for
    :func:`~replearn.experiments.report.page.write_html` (title, text, figures, tables, links).
    """
    raw = store.runs(name)
    done_raw = [r for r in raw if r["status"] == "done"]
    rows = [r for r in run_rows(store, name, "done") if r.get("risk") is not None]
    failed = sum(r["status"] == "failed" for r in raw)
    pending = len(raw) - len(done_raw) - failed
    spec = store.experiment_spec(name) or {}
    section = {
        "title": f"{name}: {spec.get('description', '')}".rstrip(": "),
        "figures": [],
        "tables": [],
        "links": [],
        "captions": {},
    }
    section["text"] = (
        f"{len(done_raw)} runs done, {failed} failed, {pending} pending. "
        f"Target: {rows[0]['target'] if rows else '?'}; noise {spec.get('noise')}; "
        f"λ tuned on {spec.get('n_holdout')} holdout samples; risk on {spec.get('n_test')} test samples."
    )
    if not rows:
        return section
    first_config = {r["run_id"]: r["config"] for r in done_raw}
    for d in sorted({r["d"] for r in rows}):
        at_d = [r for r in rows if r["d"] == d]
        target = build_target(first_config[at_d[0]["run_id"]]["target"], d)
        suffix = f"{QUALIFIER}d{d}" if len({r["d"] for r in rows}) > 1 else ""
        if any(r.get("N") is not None for r in at_d):
            transfer_rows = [r for r in at_d if r.get("N") is not None]
            for method in sorted({r["method"] for r in transfer_rows}):
                of_method = [r for r in transfer_rows if r["method"] == method]
                widths = sorted({r.get("param_width") for r in of_method}, key=str)
                for width in widths:  # one figure per width: Fig. 2 is one network
                    subset = [r for r in of_method if r.get("param_width") == width]
                    stem = f"{name}-transfer-{method}"
                    stem += f"{QUALIFIER}w{width}" if len(widths) > 1 else ""
                    stem += suffix
                    config = first_config[subset[0]["run_id"]]
                    lines, notes = transfer_overlay(
                        config,
                        subset,
                        target,
                        build_transfer_target(config["transfer"]["target"], target),
                    )
                    fig = figure_transfer(
                        subset, d, title=f"{name}: transfer, {method}, width {width}, d = {d}",
                        theory=lines,
                    )  # fmt: skip
                    paths = save_figure(fig, out_dir, stem)
                    section["figures"].append(paths["png"])
                    section["captions"][paths["png"].name] = transfer_caption(
                        spec, subset, d
                    ) + _transfer_theory_sentence(method, lines, notes)
                    section["links"].append(paths["pdf"].name)
                    table = table_rows(subset, by=["n", "N"])
                    section["tables"].append(table)
                    section["links"] += [
                        p.name for p in write_tables(table, out_dir, stem).values()
                    ]
            continue
        widths = {r.get("param_width") for r in at_d}
        panel_key = "width" if len(widths) > 1 else None
        labelled = _labelled(at_d, panel_key)
        title = f"{name}: d = {d}" + (
            f", width {widths.pop()}" if panel_key is None and widths != {None} else ""
        )
        overlays = risk_overlays(labelled, target, panel_key)
        fig = figure_risk_vs_n(labelled, target, title=title, panel_key=panel_key,
                               overlays=overlays)  # fmt: skip
        paths = save_figure(fig, out_dir, f"{name}-risk{suffix}")
        section["figures"].append(paths["png"])
        section["captions"][paths["png"].name] = risk_caption(spec, target, labelled, d) + (
            _theory_notes({key[1]: overlay for key, overlay in overlays.items()})
        )
        section["links"].append(paths["pdf"].name)
        by = ["method"] + ([panel_key] if panel_key else []) + ["d", "n"]
        table = table_rows(labelled, by=by)
        section["tables"].append(table)
        section["links"] += [
            p.name for p in write_tables(table, out_dir, f"{name}-risk{suffix}").values()
        ]
        published = spec.get("published")
        written = history_figures(  # giant steps
            labelled, d, out_dir, f"{name}{suffix}", target=target, published=published
        )
        for paths in written:
            section["figures"].append(paths["png"])
            section["links"].append(paths["pdf"].name)
        if any(p["png"].stem.endswith("-trajectories") or "-step-cosines-" in p["png"].stem
               for p in written):  # fmt: skip
            table = step_table(labelled, published)
            section["tables"].append(table)
            section["links"] += [
                p.name for p in write_tables(table, out_dir, f"{name}-per-step{suffix}").values()
            ]
        _theory_figures(section, labelled, target, d, out_dir, f"{name}{suffix}", name)
    return section


def _transfer_theory_sentence(method: str, lines: Mapping, notes: Sequence[str]) -> str:
    """The transfer caption's sentence on the one-step theory (drawn, or why not)."""
    drawn = (
        " Dashed (d → ∞) and dash-dot (the run's d), in each line's colour: the one-step "
        "asymptotics of Cui et al. 2024, the head refitted on N fresh samples of the same target."
        if lines
        else ""
    )
    relevant = method in ("one_step", "giant_step")
    return drawn + (_theory_notes({method: Overlay(notes=list(notes))}) if relevant else "")


def _theory_notes(overlays: Mapping) -> str:
    """The caption's sentence on the theory lines left out, per method label."""
    notes = [f"{label}: {note}" for label, overlay in overlays.items() for note in overlay.notes]
    return (" Theory lines left out — " + "; ".join(notes) + ".") if notes else ""


def _theory_figures(section: dict, rows: Sequence[Mapping], target, d: int, out_dir: Path,
                    stem: str, name: str) -> None:  # fmt: skip
    """The alignment-vs-n figure (single-index targets, runs with an alignment) and online
    SGD's overlap trajectory (runs with an ``overlap_trace``), each with its theory lines."""
    with_alignment = [r for r in rows if r.get("alignment") is not None]
    groups = trajectory_records(rows)
    thresholds = None
    if (with_alignment or groups) and target is not None and target.r == 1:
        first = rows[0]  # one experiment: one noise for every run
        noise, kind = float(first.get("noise") or 0.0), first.get("noise_kind") or "rademacher"
        thresholds = recovery_thresholds(target, noise, kind)
    if with_alignment and thresholds is not None:
        overlay = recovery_lines(target, noise, kind, d, thresholds=thresholds)
        fig = figure_alignment_vs_n(with_alignment, target, d, title=f"{name}: alignment, d = {d}",
                                    overlay=overlay)  # fmt: skip
        paths = save_figure(fig, out_dir, f"{stem}-alignment")
        section["figures"].append(paths["png"])
        section["captions"][paths["png"].name] = (
            "Alignment ‖Π*W‖²_F/‖W‖²_F of the first layer with the target direction, mean ± sd "
            "over seeds; dotted: n = α_c·d, below which no estimator recovers the direction "
            "as d → ∞ (α_c = 1/E_y[(E[z²|y] − 1)²], replearn.theory.weak_recovery)."
            + _theory_notes({"thresholds": overlay})
        )
        section["links"].append(paths["pdf"].name)
    if groups:
        overlays = trajectory_overlays(groups, target, d, thresholds)
        fig = figure_overlap_trajectory(rows, target, d, title=f"{name}: online SGD, d = {d}",
                                        overlays=overlays)  # fmt: skip
        paths = save_figure(fig, out_dir, f"{stem}-trajectory")
        section["figures"].append(paths["png"])
        section["captions"][paths["png"].name] = (
            "Online SGD: |m(t)| = |u·w| after t samples (log-spaced records), mean ± sd over "
            "replicas and seeds at the largest n; dashed: the overlap ODE of Ben Arous, "
            "Gheissari & Jagannath 2021 (replearn.theory.online_ode) at the run's d, step size, "
            "batch, loss, link and noise, averaged over the runs' starting overlaps."
            + _theory_notes(overlays)
        )
        section["links"].append(paths["pdf"].name)
