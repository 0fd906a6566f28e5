"""The report section of a scaling experiment on the weak-recovery event (``event: recovery``).

n*(d) is the median number of samples after which the overlap max_j |w_j·u| first reached the
threshold, over every replica of every seed (censored replicas count as later than all the
observed ones; ``experiments.scaling``); the exponent is the slope of log n* on log d with a
95 % bootstrap interval over the replicas.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from replearn.experiments.report.figures import figure_scaling, save_figure
from replearn.experiments.report.files import atomic_write_bytes
from replearn.experiments.scaling import recovery_fits

__all__ = ["recovery_section"]


def recovery_section(spec, rows: list, counts: dict, out_dir: str | Path) -> dict:
    """Fits, figure and tables of an ``event: recovery`` scaling experiment.

    Writes ``<name>-recovery.png/.pdf`` (log n* vs log d, fitted lines, theory slopes as
    guides) and ``<name>-recovery.json`` (every number) under ``out_dir``.

    Parameters
    ----------
    spec : ExperimentSpec
        The experiment's validated spec (``scaling.event == "recovery"``).
    rows : list of mapping
        Its runs (``Store.runs``).
    counts : dict
        Its run counts by status (``Store.counts``).
    out_dir : str or pathlib.Path
        Where the files go (created).

    Returns
    -------
    dict
        {"title", "text", "captions", "figures": [png paths], "tables": [fit rows, per-d
        rows], "links": [file names]}.

    Examples
    --------
    >>> import tempfile
    >>> from replearn.experiments.spec import parse_spec
    >>> spec = parse_spec('''
    ... name: r
    ... kind: scaling
    ... target: {kind: expression, expr: "He2(z1)/sqrt(2)"}
    ... methods: [{name: online_sgd}]
    ... d: [8, 16]
    ... scaling: {threshold: 0.5, n_stop: "d^2", event: recovery}
    ... ''')
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     section = recovery_section(spec, [], {"done": 0, "failed": 0, "total": 0}, tmp)
    >>> section["tables"][0]
    []
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = spec.name
    result = recovery_fits(spec, rows)
    fits, tau = result["fits"], result["epsilon"]
    figures, links, captions = [], [], {}
    if fits:
        by_slope: dict[float, list[str]] = {}  # one guide per theory slope
        for label, slope in result["theory"].items():
            if math.isfinite(slope):
                by_slope.setdefault(slope, []).append(label)
        guides = {f"theory for {', '.join(labels)}": s for s, labels in by_slope.items()}
        fig = figure_scaling(fits, title=f"{name}: samples to |w·u| ≥ {tau:g}", guides=guides)
        fig.axes[0].set_ylabel(f"n*(d): median samples to overlap ≥ {tau:g}")
        paths = save_figure(fig, out_dir, name + "-recovery")
        figures.append(paths["png"])
        links.append(paths["pdf"].name)
    json_path = out_dir / f"{name}-recovery.json"
    atomic_write_bytes(json_path, (json.dumps(_jsonable(result), indent=1) + "\n").encode())
    links.append(json_path.name)
    fit_rows = []
    for label, fit in fits.items():
        slope, ci, theory_slope = fit["slope"], fit["ci"], fit["theory_slope"]
        fit_rows.append(
            {
                "method": label,
                "slope": slope,
                "ci_low": None if ci is None else ci[0],
                "ci_high": None if ci is None else ci[1],
                "theory_slope": theory_slope,
                "theory_in_ci": None
                if ci is None or theory_slope is None
                else bool(ci[0] <= theory_slope <= ci[1]),
                "d_fitted": " ".join(str(d) for d, n in fit["n_star"].items() if n),
                "d_censored": " ".join(str(d) for d, n in fit["n_star"].items() if n is None),
                "slope_lower_bound": fit["slope_lower_bound"],
                "dropped_draws": fit["dropped_draws"],
            }
        )
    text = (
        f"Weak recovery: per replica, the samples until max_j |w_j·u| ≥ {tau:g} (censored at "
        f"the budget n_stop(d)); n*(d) = the median over {len(spec.seeds)} seeds × replicas, "
        "censored times counted as later than every observed one; slope: least squares of "
        "log n* on log d, 95 % bootstrap interval (times resampled per d). "
        f"{counts['done']} runs done, {counts['failed']} failed, "
        f"{counts['total'] - counts['done'] - counts['failed']} unfinished."
    )
    if figures:
        measured = "; ".join(
            f"{row['method']}: slope {row['slope']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}]"
            if row["slope"] is not None and row["ci_low"] is not None
            else f"{row['method']}: no slope (the median was reached at fewer than two d)"
            for row in fit_rows
        )
        captions[figures[0].name] = (
            f"Median number of samples n*(d) until the overlap reached {tau:g}, against d on "
            "log-log axes, with the fitted line log n* = slope·log d + c; dotted grey: the "
            f"theory's slopes (online SGD d^(k−1), smoothed d^(k/2), repeats: k → k*).\n"
            f"Measured (95 % bootstrap interval): {measured}."
        )
    return {
        "title": f"{name}: weak-recovery exponents",
        "text": text,
        "captions": captions,
        "figures": figures,
        "tables": [fit_rows, result["evaluated"]],
        "links": links,
    }


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
