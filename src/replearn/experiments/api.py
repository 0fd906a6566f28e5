"""The experiment engine's entry points: load a spec, run it, count its runs, report on it.

This is the one place that tells the two kinds of spec apart: a ``kind: grid`` spec is
expanded (:func:`~replearn.experiments.grid.expand_grid`), registered in the store and
run (:func:`~replearn.experiments.executors.run_pending`); a ``kind: scaling`` spec goes to
the adaptive n*(d) search (:func:`~replearn.experiments.scaling.run_scaling`). The layers
below never branch on ``spec.kind``.

    from replearn.experiments import load_spec, run_experiment
    spec = load_spec("configs/demo.yaml")
    summary = run_experiment(spec, RunOptions(db="results/replearn.sqlite", executor="process"))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from replearn.experiments.executors import RunOptions, RunSummary, check_executor, run_pending
from replearn.experiments.frames import run_rows
from replearn.experiments.grid import expand_grid, run_id
from replearn.experiments.paths import check_report_dir
from replearn.experiments.report import grid_section, scaling_section, write_html
from replearn.experiments.report.explain import provenance, reproduce_commands
from replearn.experiments.report.published_table import published_rows, published_section
from replearn.experiments.scaling import plan_searches, run_scaling
from replearn.experiments.spec import ExperimentSpec, load_spec
from replearn.experiments.store import Store
from replearn.limits import excerpt

__all__ = [
    "RunOptions",
    "load_spec",
    "run_experiment",
    "estimate_cells",
    "write_report",
    "check_output_dir",
]


def run_experiment(
    spec: ExperimentSpec, options: RunOptions | None = None, **fields: Any
) -> RunSummary:
    """Run whatever of the spec is not finished yet in the store ``db``; returns a summary.

    Grid: every run config is registered, then the unfinished ones run on the executor
    (``serial``, ``process`` or ``ray``). Scaling: the n*(d) searches register the cells
    they need round by round (the summary is a ``ScalingSummary`` with the fits).

    Parameters
    ----------
    spec : ExperimentSpec
        From :func:`load_spec` or :func:`parse_spec`.
    options : RunOptions, optional
        How the runs execute: ``db``, ``executor``, ``workers``, ``threads``, ``address``,
        ``retry_failed``, ``quiet``, ``lease_seconds``
        (:class:`~replearn.experiments.executors.RunOptions`; default ``RunOptions()``).
    **fields
        Fields of ``RunOptions`` given directly (``db=…``, ``quiet=True``), changing
        ``options``.

    Returns
    -------
    RunSummary
        Runs executed and failed by this call, the experiment's counts at the end; ``ok``
        when every run is done.

    Examples
    --------
    >>> import tempfile
    >>> from replearn.experiments.spec import parse_spec
    >>> spec = parse_spec('''
    ... name: doc
    ... target: {kind: paper}
    ... methods: [{name: synthetic}]
    ... d: [4]
    ... n: [16, 64]
    ... seeds: 2
    ... n_holdout: 0
    ... n_test: 10
    ... ''')
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     first = run_experiment(spec, db=f"{tmp}/r.sqlite", quiet=True)
    ...     again = run_experiment(spec, db=f"{tmp}/r.sqlite", quiet=True)
    >>> first.ok, first.executed, again.executed  # the second call resumes: nothing left
    (True, 4, 0)
    """
    options = RunOptions.of(options, **fields)
    check_executor(options.executor)
    if spec.kind == "scaling":
        return run_scaling(spec, options)
    configs = expand_grid(spec)
    with Store(options.db, options.lease_seconds) as store:
        store.register_experiment(spec.name, spec.to_json(), [(run_id(c), c) for c in configs])
    return run_pending(spec.name, options)


def estimate_cells(spec: ExperimentSpec) -> dict[str, int]:
    """{method: number of runs} without touching a database (for ``run --dry-run``).

    For a ``kind: scaling`` spec: the most runs its searches can take (every grid n; one n
    per seed with ``event: recovery``).
    """
    counts: dict[str, int] = {}
    if spec.kind == "scaling":
        for search in plan_searches(spec):
            points = 1 if spec.scaling.event == "recovery" else len(search.grid.values)
            runs = points * len(spec.seeds)
            counts[search.method] = counts.get(search.method, 0) + runs
        return counts
    for config in expand_grid(spec):
        counts[config["method"]] = counts.get(config["method"], 0) + 1
    return counts


def write_report(
    db: str | Path,
    out: str | Path,
    experiments: Sequence[str] | None = None,
    failures: list[str] | None = None,
    published: list[str] | None = None,
) -> Path:
    """Figures (PNG, PDF), tables (CSV, Markdown, LaTeX) and ``index.html`` for the
    experiments in the store (all by default); returns the path of ``index.html``.

    The store is opened read-only (it may be a file or directory nobody may write to);
    the experiments and ``out`` are checked before anything is written, so a bad name or
    an unusable ``out`` leaves nothing behind. Files get the user's normal mode
    (``0o666 & ~umask``).

    Parameters
    ----------
    db : str or pathlib.Path
        The results store.
    out : str or pathlib.Path
        The report's folder (created).
    experiments : sequence of str, optional
        Names of experiments in the store; default all.
    failures : list, optional
        Receives one line per experiment whose section could not be drawn. Such an
        experiment does not stop the others: its section on the page says what went wrong.
    published : list, optional
        Receives the Markdown text of the "Published vs replearn" tables (the experiments
        whose spec has a ``published:`` block; ``report.published_table``), if any.

    Returns
    -------
    pathlib.Path
        ``out/index.html``.
    """
    db, out = Path(db), Path(out)
    check_report_dir(out, db)  # never write over the store, whatever the paths look like
    sections, run_versions = [], []
    with Store(db, readonly=True) as store:
        known = store.experiments()
        names = list(dict.fromkeys(experiments)) if experiments else known
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(
                f"{db}: no experiment {', '.join(map(excerpt, unknown))}; "
                f"known: {', '.join(known) or 'none'}"
            )
        check_output_dir(out)
        out.mkdir(parents=True, exist_ok=True)
        for name in names:
            try:
                run_versions += [r["versions"] for r in store.runs(name, "done")]
                spec = store.experiment_spec(name) or {}
                if spec.get("kind") == "scaling":
                    sections.append(scaling_section(db, name, out))
                else:
                    sections.append(grid_section(store, name, out))
            except Exception as err:  # one experiment must not cost the others their report
                problem = " ".join(f"{type(err).__name__}: {err}".split())[:300]
                if failures is not None:
                    failures.append(f"{name}: {problem}")
                sections.append(
                    {"title": name, "text": f"This experiment could not be drawn: {problem}"}
                )
        compared = []  # (name, published block, rows) of the specs with a published block
        for name in names:
            block = (store.experiment_spec(name) or {}).get("published")
            rows = published_rows(block, run_rows(store, name, "done")) if block else []
            if rows:  # a block with per_step rows only is drawn by the experiment's section
                compared.append((name, block, rows))
        if compared:
            section, markdown = published_section(compared, out)
            sections.append(section)
            if published is not None:
                published.append(markdown)
    meta = dict(provenance(run_versions), commands=reproduce_commands(str(db), names, str(out)))
    return write_html(sections, out / "index.html", title="replearn report", meta=meta)


def check_output_dir(out: Path) -> None:
    """Raise one ValueError line unless ``out`` is, or can be made, a writable directory."""
    out = Path(out)
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise ValueError(
                f"{out}: exists and is not a directory; give a directory for the report"
            )
        if not os.access(out, os.W_OK | os.X_OK):
            raise ValueError(f"{out}: cannot write into this directory (permission denied)")
        return
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{out}: {parent} is a file, not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ValueError(f"{out}: cannot create it, {parent} is not writable")
            return
