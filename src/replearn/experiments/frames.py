"""Results as data: the runs of a results store as a pandas DataFrame (``rl.results``).

One row per run, in each experiment's grid order::

    import replearn as rl
    runs = rl.results("results/replearn.sqlite", experiment="demo")
    done = runs[runs.status == "done"]
    done.groupby(["method", "n"]).risk.agg(["mean", "std"])

Columns (:func:`run_rows`, the same rows ``replearn results`` and the report's tables use):

- the run: ``experiment``, ``run_id``, ``status``, ``method``, ``target``, ``d``, ``n``,
  ``log_d_n`` (= log n / log d), ``N`` (transfer samples), ``seed``, ``noise``,
  ``noise_kind``, ``dtype``, ``device``, ``n_holdout``, ``n_test``;
- every hyper-parameter of the method as a column ``param_<name>`` (missing where a method
  has no such parameter);
- the metrics: ``risk`` (excess L2 risk), ``risk_stderr``, ``alignment``, the chosen λ, …;
  multi-step learners (``giant_step``) also have ``history``, a nested column: a list with
  one dict per step (see :func:`step_table` for one row per step);
- ``wall_time``, ``peak_rss_mb``, ``peak_gpu_mb``, ``host``, ``attempts``, ``finished_at``
  and ``error`` (the last line of a failed run's error).

Integer columns with missing values use pandas' nullable ``Int64``; failed runs have a
missing ``risk``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from replearn.experiments.store import DEFAULT_DB, STATUSES, Store, columns_of, flat_rows
from replearn.limits import excerpt

if TYPE_CHECKING:  # pandas is imported by the functions that need it
    import pandas as pd

__all__ = ["run_rows", "results", "step_table"]


def run_rows(
    db: str | Path | Store = DEFAULT_DB,
    experiment: str | Sequence[str] | None = None,
    status: str | None = None,
) -> list[dict]:
    """The store's runs as flat dicts, one per run (the rows of :func:`results`).

    Parameters
    ----------
    db : str, pathlib.Path or Store
        A results database (opened read-only) or an open :class:`Store`.
    experiment : str or sequence of str, optional
        Only these experiments (default: all).
    status : {"pending", "running", "done", "failed"}, optional
        Only runs with this status.

    Returns
    -------
    list of dict
        See the module docstring for the keys.

    Examples
    --------
    >>> import tempfile
    >>> from replearn.experiments import parse_spec, run_experiment
    >>> spec = parse_spec("name: doc\\ntarget: {kind: paper}\\nmethods: [{name: synthetic}]\\n"
    ...                   "d: [4]\\nn: [16, 64]\\nseeds: 1\\nn_holdout: 0\\nn_test: 10\\n")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = run_experiment(spec, db=f"{tmp}/r.sqlite", quiet=True)
    ...     rows = run_rows(f"{tmp}/r.sqlite", "doc")
    >>> [(row["n"], row["status"]) for row in rows]
    [(16, 'done'), (64, 'done')]
    """
    if status is not None and status not in STATUSES:
        raise ValueError(f"status: must be one of {', '.join(STATUSES)}, got {excerpt(status)}")
    if isinstance(db, Store):
        return _rows(db, experiment, status)
    with Store(db, readonly=True) as store:
        return _rows(store, experiment, status)


def _rows(store: Store, experiment, status) -> list[dict]:
    names = [experiment] if isinstance(experiment, str) else experiment
    if names is None:
        return flat_rows(store.runs(None, status))
    known = store.experiments()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(
            f"{store.path}: no experiment {', '.join(map(excerpt, unknown))}; "
            f"known: {', '.join(known) or 'none'}"
        )
    return [row for name in names for row in flat_rows(store.runs(name, status))]


def _column(values: list):
    """A column's values as a pandas Series: integers with gaps as nullable Int64, numbers
    as float64 (missing → NaN), everything else (text, nested lists) as it is."""
    import pandas as pd

    present = [v for v in values if v is not None]
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pd.Series(values, dtype="Int64" if len(present) < len(values) else "int64")
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pd.Series([math.nan if v is None else float(v) for v in values], dtype="float64")
    return pd.Series(values, dtype=object).infer_objects()


def results(
    db: str | Path | Store = DEFAULT_DB,
    experiment: str | Sequence[str] | None = None,
    status: str | None = None,
) -> pd.DataFrame:
    """The runs of a results store as a pandas DataFrame: one row per run, every
    hyper-parameter a column.

    The store is opened read-only. The numbers are the store's own (nothing is averaged or
    rounded); ``replearn results`` exports the same rows as CSV, JSON or Parquet and the
    report's tables aggregate them.

    Parameters
    ----------
    db : str, pathlib.Path or Store
        A results database, e.g. ``results/replearn.sqlite`` (what ``replearn run`` writes).
    experiment : str or sequence of str, optional
        Only these experiments (default: all).
    status : {"pending", "running", "done", "failed"}, optional
        Only runs with this status (default: every run, with a ``status`` column).

    Returns
    -------
    pandas.DataFrame
        Columns as listed in :mod:`replearn.experiments.frames`; the ``history`` column of
        multi-step learners is nested (:func:`step_table` unnests it).

    Examples
    --------
    >>> import tempfile
    >>> import replearn as rl
    >>> from replearn.experiments import parse_spec, run_experiment
    >>> spec = parse_spec("name: doc\\ntarget: {kind: paper}\\nmethods: [{name: synthetic}]\\n"
    ...                   "d: [4]\\nn: [16, 64]\\nseeds: 2\\nn_holdout: 0\\nn_test: 10\\n")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = run_experiment(spec, db=f"{tmp}/r.sqlite", quiet=True)
    ...     runs = rl.results(f"{tmp}/r.sqlite", experiment="doc")
    >>> runs[["method", "d", "n", "seed", "status"]]
          method  d   n  seed status
    0  synthetic  4  16     0   done
    1  synthetic  4  16     1   done
    2  synthetic  4  64     0   done
    3  synthetic  4  64     1   done
    >>> runs.groupby("n").risk.count().to_dict()
    {16: 2, 64: 2}
    """
    import pandas as pd

    rows = run_rows(db, experiment, status)
    columns = columns_of(rows) if rows else list(_EMPTY_COLUMNS)
    return pd.DataFrame({c: _column([row.get(c) for row in rows]) for c in columns})


_EMPTY_COLUMNS = ("experiment", "run_id", "status", "method", "d", "n", "seed", "risk")


def step_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, step) from the nested ``history`` column of :func:`results`.

    Each row has the run's ``experiment``, ``run_id``, ``method``, ``d``, ``n``, ``seed``
    and ``param_*`` columns, then the step's ``step``, ``eta``, ``step_norm``,
    ``weight_norm``, ``alignment``, ``direction_cos2`` (a list, one value per direction)
    and ``degree_share_<k>`` (the step residual's Hermite degree shares), and
    ``network_risk`` where the run stored it; the per-neuron blocks (``cosines``,
    ``step_cosines``, ``overlaps``) stay in the run's history. Runs without a history
    (one-step learners) give no rows.

    Parameters
    ----------
    runs : pandas.DataFrame
        A frame from :func:`results`.

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> import pandas as pd
    >>> runs = pd.DataFrame({"run_id": ["a"], "method": ["giant_step"], "n": [100],
    ...     "history": [[{"step": 1, "eta": 2.0, "alignment": 0.5, "degree_shares": {"2": 0.9}},
    ...                  {"step": 2, "eta": 2.0, "alignment": 0.8, "degree_shares": {"2": 0.7}}]]})
    >>> step_table(runs)[["run_id", "step", "alignment", "degree_share_2"]]
      run_id  step  alignment  degree_share_2
    0      a     1        0.5             0.9
    1      a     2        0.8             0.7
    """
    import pandas as pd

    keep = [c for c in runs.columns if c in _RUN_KEYS or str(c).startswith("param_")]
    rows = []
    if "history" in runs.columns:
        for _, run in runs.iterrows():
            history = run["history"]
            if not isinstance(history, list):
                continue
            for entry in history:
                row = {c: run[c] for c in keep}
                for key, value in entry.items():
                    if key == "degree_shares":
                        row.update({f"degree_share_{k}": v for k, v in value.items()})
                    elif key not in _BLOCKS:  # the per-neuron blocks stay in the history
                        row[key] = value
                rows.append(row)
    return pd.DataFrame(rows)


_BLOCKS = ("cosines", "step_cosines", "overlaps")  # (≤ 256, ≤ 2) per-neuron blocks of a step
_RUN_KEYS = ("experiment", "run_id", "method", "target", "d", "n", "N", "seed", "noise")
