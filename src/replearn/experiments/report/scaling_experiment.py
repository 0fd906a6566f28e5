"""The report section of a scaling experiment: n*(d) fits, figures and tables."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

from replearn.experiments.analysis import log_d
from replearn.experiments.report.figures import (
    figure_scaling,
    figure_scaling_curves,
    save_figure,
)
from replearn.experiments.report.files import atomic_write_bytes
from replearn.experiments.report.recovery_experiment import recovery_section
from replearn.experiments.scaling import scaling_fits
from replearn.experiments.spec import ExperimentSpec, validate_spec
from replearn.experiments.store import Store

__all__ = ["scaling_section"]


def _spec_from_store(store: Store, experiment: str) -> ExperimentSpec:
    data = store.experiment_spec(experiment)
    if data is None:
        raise ValueError(f"no experiment {experiment!r} in {store.path}")
    return validate_spec(data)


def scaling_section(db: str | Path, experiment: str, out_dir: str | Path) -> dict:
    """The report section of a scaling experiment: fits, figures and tables.

    Writes ``<experiment>-scaling.png/.pdf`` (log n* vs log d, fitted lines, theory
    slopes as guides), ``<experiment>-scaling-curves.png/.pdf`` (risk vs n/d² at the
    evaluated n) and ``<experiment>-scaling.json`` (every number) under ``out_dir``.
    Returns {"title", "text", "figures": [png paths], "tables": [rows…], "links": [names]}.
    An ``event: recovery`` experiment gets :func:`recovery_section` instead.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with Store(db, readonly=True) as store:
        spec = _spec_from_store(store, experiment)
        rows = store.runs(experiment)
        counts = store.counts(experiment)[experiment]
    if spec.scaling.event == "recovery":
        return recovery_section(spec, rows, counts, out_dir)
    result = scaling_fits(spec, rows)
    epsilon = result["epsilon"]
    fits = result["fits"]
    guides = {}
    for method, slope in result["theory"].items():
        if math.isfinite(slope):
            name = "Algorithm 1 (d²)" if method in ("one_step", "full_training") else "kernels"
            guides.setdefault(f"{name}", slope)
    title = f"{experiment}: n*(d) for mean excess risk ≤ {epsilon:g}"
    figures, links = [], []
    if fits:
        paths = save_figure(
            figure_scaling(fits, title=title, guides=guides), out_dir, experiment + "-scaling"
        )
        figures.append(paths["png"])
        links.append(paths["pdf"].name)
    if result["evaluated"]:
        fig = figure_scaling_curves(
            result["evaluated"], epsilon, title=f"{experiment}: evaluated n"
        )
        paths = save_figure(fig, out_dir, experiment + "-scaling-curves")
        figures.append(paths["png"])
        links.append(paths["pdf"].name)
    json_path = out_dir / f"{experiment}-scaling.json"
    atomic_write_bytes(json_path, (json.dumps(_jsonable(result), indent=1) + "\n").encode())
    links.append(json_path.name)
    fit_rows, star_rows = [], []
    for label, fit in fits.items():
        slope, ci, theory_slope = fit["slope"], fit["ci"], fit["theory_slope"]
        reached = [d for d, n in fit["n_star"].items() if n is not None]
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
                "d_reached": " ".join(map(str, reached)),
                "d_not_reached": " ".join(
                    str(d) for d in fit["searched"] if fit["n_star"].get(d) is None
                ),
                "slope_lower_bound": fit["slope_lower_bound"],
                "dropped_draws": fit["dropped_draws"],
            }
        )
        for d, n in fit["n_star"].items():
            star_rows.append(
                {
                    "method": label,
                    "d": d,
                    "n_star": n,
                    "n_star/d^2": None if n is None else n / d**2,
                    "log_d n_star": None if n is None or d < 2 else log_d(n, d),
                    "grid_n_star": fit["grid_n_star"].get(d),
                    "largest_n": fit["n_max"][d],
                    "theory_start": fit["theory_start"][d],
                    "search_done": d in fit["searched"],
                }
            )
    text = (
        f"Adaptive search for n*(d) = smallest n with mean excess risk ≤ ε = {epsilon:g} over "
        f"{len(spec.seeds)} seeds; {counts['done']} runs done, {counts['failed']} failed, "
        f"{counts['total'] - counts['done'] - counts['failed']} unfinished. n* is the "
        "log-linear ε-crossing between evaluated n; slope: least squares of log n* on log d, "
        "95 % bootstrap interval over seeds. Theory slopes: "
        + ", ".join(f"{k} {v:g}" for k, v in result["theory"].items())
        + "."
    )
    captions = {}
    description = spec.description or experiment
    if fits and figures:
        measured = "; ".join(
            f"{label}: slope {fit['slope']:.2f} [{fit['ci'][0]:.2f}, {fit['ci'][1]:.2f}]"
            if fit["slope"] is not None and fit["ci"] is not None
            else f"{label}: no slope (the threshold was not reached at two or more d)"
            for label, fit in fits.items()
        )
        captions[figures[0].name] = (
            f"{description[0].upper()}{description[1:]}: for each method, the number of "
            f"samples n*(d) it needs to reach mean excess risk ≤ {epsilon:g}, against d on "
            "log-log axes, with the fitted line log n* = slope·log d + c.\n"
            "Theory expects slope 2 for Algorithm 1 (n ≈ d²κ²r) and p, the target's degree, "
            "for kernels (n ≈ d^p); the dotted grey lines have the theory's slopes.\n"
            f"Measured (95 % bootstrap interval over seeds): {measured}."
        )
    if len(figures) > 1:
        captions[figures[1].name] = (
            "The searches' evaluated points: mean risk against n/d² for each d; where the "
            f"curves of several d cross ε = {epsilon:g} at the same n/d², n* grows like d²."
        )
    return {
        "title": f"{experiment}: sample-complexity exponents",
        "text": text,
        "captions": captions,
        "figures": figures,
        "tables": [fit_rows, star_rows, result["evaluated"]],
        "links": links,
    }


def _jsonable(value):
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
