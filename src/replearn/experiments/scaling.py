"""Sample-complexity exponents: n*(d) by adaptive search, then log n* = s·log d + c.

A spec of ``kind: scaling`` names a target family, methods, dimensions d and a risk
threshold ε. For each search — a method (× hyper-parameter combination × noise level) at
one d — n*(d) is the smallest n on a log grid at which the mean excess risk over the
spec's seeds is ≤ ε, found by :func:`replearn.experiments.analysis.find_threshold`
(bracket, then bisect in log n) instead of a brute-force grid.

The grid of a search is a :class:`~replearn.experiments.analysis.LogGrid` over
[n_start, n_stop] (resolved at that d). ``log_step`` is in log_d(n) units, i.e. a factor
d^log_step between grid points, which is log_step·log₂d octaves: the grid takes
``steps_per_octave = ceil(1/(log_step·log₂d))`` so it is never coarser than asked.

The searches run side by side, in rounds. Every round replays each unfinished search
against the risks already in the store; a search that needs a risk it does not have
stops at that n (the search is deterministic given the risks, so replaying it is the same
as running it straight through). The runs of every (search, n) asked for in the round —
all seeds — are registered in the store (``Store.register_experiment(…, replace=False)``)
and executed together by :func:`replearn.experiments.executors.run_pending`, so the executor
has (searches × seeds) runs to spread over its workers. Runs already in the store, from
this experiment or any other, are reused: a re-run resumes with no new work.

The search starts at the theory's guess: d²κ²r (Theorem 1) for Algorithm 1 and the first
d^k whose staircase risk is ≤ ε for the kernels (``replearn.theory``).

The exponent is :func:`~replearn.experiments.analysis.bootstrap_exponent` over seeds: the
ε-crossing of the mean risk curve (log-linear interpolation between the evaluated n
around it) at each d, the least-squares slope of log n* on log d, and a percentile
bootstrap interval (seeds resampled per d).

**The recovery event** (``scaling.event: recovery``). For a learner that reports weak
recovery (class attribute ``reports_recovery``: ``OnlineSGD``), the event is measured
directly, so there is no search: each search is one run per seed of n_stop(d) samples (the
budget; ``n_start`` and ``log_step`` are not used), with the learner's ``threshold`` set to
``scaling.threshold`` τ. The run records, per replica, t = the samples after which
max_j |overlap(w_j)| ≥ τ first held, or ∞ (censored) if it never did within the budget.
With T(d) all the times at d (seeds × replicas),

    n*(d) = the median of T(d), censored times counted as later than every observed one

(the inverse empirical CDF, :func:`~replearn.experiments.analysis.recovery_quantile`:
exact under censoring as long as fewer than half the runs are censored; else n*(d) is "not
reached" and, as for the risk event, a d reached below a missed one gives a lower bound on
the slope). The exponent is the least-squares slope of log n* on log d with a percentile
bootstrap interval (times resampled per d; draws in which some d's median falls among the
censored are dropped and counted), :func:`~replearn.experiments.analysis.recovery_exponent`.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from replearn import theory
from replearn.experiments.analysis import (
    LogGrid,
    bootstrap_exponent,
    find_threshold,
    log_d,
    recovery_exponent,
)
from replearn.experiments.executors import RunOptions, RunSummary, run_pending
from replearn.experiments.grid import cell_config, method_params, run_id
from replearn.experiments.methods import METHODS
from replearn.experiments.spec import ExperimentSpec, resolve_n
from replearn.experiments.store import Store
from replearn.experiments.target_kinds import build_target
from replearn.theory.exponents import generative_exponent, information_exponent

__all__ = [
    "Search",
    "ScalingSummary",
    "search_grid",
    "plan_searches",
    "run_scaling",
    "scaling_fits",
    "recovery_cells",
    "recovery_times",
    "recovery_fits",
    "fit_lines",
    "KERNEL_METHODS",
]

KERNEL_METHODS = ("random_features", "ntk", "kernel_ridge")


# -- the searches of a spec ------------------------------------------------------------------
@dataclass(frozen=True)
class Search:
    """One n*(d) search: a method with fixed hyper-parameters and noise, at one d."""

    label: str  # the method, plus the swept values that distinguish it ("ntk[width=64]")
    method: str
    params: tuple  # sorted (name, value) pairs of the validated hyper-parameters
    noise: float
    d: int
    grid: LogGrid
    start: int | None  # the theory's guess for n*, on the grid's range (None: grid start)

    @property
    def key(self) -> tuple:
        return (self.label, self.d)

    def config(self, spec: ExperimentSpec, n: int, seed: int) -> dict:
        return cell_config(spec, self.method, dict(self.params), self.d, n, self.noise, seed)


def search_grid(spec: ExperimentSpec, d: int) -> LogGrid:
    """The LogGrid of the searches at d: [n_start, n_stop] with the spec's log_step (in
    log_d units) as ``steps_per_octave = ceil(1/(log_step·log₂ d))`` (at least 1)."""
    scaling = spec.scaling
    n_min, n_max = resolve_n(scaling.n_start, d), resolve_n(scaling.n_stop, d)
    octaves = scaling.log_step * math.log2(d) if d > 1 else 1.0
    steps = max(1, math.ceil(1.0 / octaves - 1e-9))
    return LogGrid(n_min, max(n_max, n_min), steps)


def _theory_start(method: str, target, epsilon: float) -> float | None:
    if method in ("one_step", "full_training"):
        guess = theory.one_step_threshold(target)
    elif method in KERNEL_METHODS:
        guess = theory.kernel_threshold(target, epsilon)
    else:
        return None
    return guess if math.isfinite(guess) else math.inf


def plan_searches(spec: ExperimentSpec) -> list[Search]:
    """Every search of a scaling spec, in spec order (method, combination, noise, d).

    A search's label is the method name plus the hyper-parameters (and noise) that take
    more than one value among that method's searches, e.g. ``random_features[width=64]``.
    With ``event: recovery`` each combination's ``threshold`` is ``scaling.threshold``.
    """
    if spec.kind != "scaling" or spec.scaling is None:
        raise ValueError(f"{spec.name}: not a scaling spec (kind {spec.kind!r})")
    recovery = spec.scaling.event == "recovery"
    combos = []  # (method name, validated params, noise)
    for method in spec.methods:
        for params in method_params(method):
            if recovery:  # validated again: left out of the run config at the default
                params = METHODS[method.name].params.model_validate(
                    {**params, "threshold": spec.scaling.threshold}
                )
                params = params.model_dump()
            for noise in spec.noise:
                combos.append((method.name, params, float(noise)))
    labels = []
    for name, params, noise in combos:
        same = [(p, z) for m, p, z in combos if m == name]
        keys = dict.fromkeys(k for p, _ in same for k in p)  # options left out at None
        varying = [k for k in keys if len({repr(p.get(k)) for p, _ in same}) > 1]
        extra = [f"{k}={params.get(k)}" for k in varying]
        if len({z for _, z in same}) > 1:
            extra.append(f"noise={noise:g}")
        labels.append(name + ("[" + ", ".join(extra) + "]" if extra else ""))
    epsilon = spec.scaling.threshold
    seed = spec.target.seed if spec.target.seed != "run" else spec.seeds[0]
    targets = {d: build_target({**spec.target.model_dump(), "seed": seed}, d) for d in spec.d}
    restricted = spec.scaling.d_by_method or {}
    searches, seen = [], set()
    for label, (name, params, noise) in zip(labels, combos):
        if (label, noise) in seen:  # the same method and settings listed twice
            continue
        seen.add((label, noise))
        for d in [d for d in spec.d if d in restricted.get(name, spec.d)]:
            grid = search_grid(spec, d)
            values = grid.values
            guess = _theory_start(name, targets[d], epsilon)
            start = None if guess is None else int(min(max(guess, values[0]), values[-1]))
            params_key = tuple(sorted(params.items()))
            searches.append(Search(label, name, params_key, noise, d, grid, start))
    return searches


def _cells(spec: ExperimentSpec, searches: Sequence[Search]) -> dict[str, tuple[Search, int, int]]:
    """run_id → (search, n, seed) for every grid cell any search could ask for."""
    table = {}
    for search in searches:
        for n in search.grid.values:
            for seed in spec.seeds:
                table.setdefault(run_id(search.config(spec, n, seed)), (search, n, seed))
    return table


# -- measurements from the store -------------------------------------------------------------
@dataclass
class _Measured:
    """Per search: {n: {seed: risk, or None for a failed run}} of the finished runs."""

    risks: dict[tuple, dict[int, dict[int, float | None]]] = field(default_factory=dict)
    alignment: dict[tuple, dict[int, dict[int, float]]] = field(default_factory=dict)

    def add(self, search: Search, n: int, seed: int, row: Mapping) -> None:
        metrics = row.get("metrics") or {}
        risk = metrics.get("risk") if row["status"] == "done" else None
        if risk is not None and not math.isfinite(risk):
            risk = None
        self.risks.setdefault(search.key, {}).setdefault(n, {})[seed] = risk
        if metrics.get("alignment") is not None:
            self.alignment.setdefault(search.key, {}).setdefault(n, {})[seed] = float(
                metrics["alignment"]
            )

    def complete(self, search: Search, seeds: Sequence[int]) -> dict[int, dict[int, float | None]]:
        """{n: {seed: risk}} at the n where every seed has finished (done or failed)."""
        at = self.risks.get(search.key, {})
        return {n: values for n, values in at.items() if all(s in values for s in seeds)}

    def mean_risks(self, search: Search, seeds: Sequence[int]) -> dict[int, float]:
        """Mean risk over the seeds that are done; ∞ where every seed failed."""
        out = {}
        for n, values in self.complete(search, seeds).items():
            done = [values[s] for s in seeds if values[s] is not None]
            out[n] = sum(done) / len(done) if done else math.inf
        return out


def _measure(rows: Sequence[Mapping], cells: Mapping[str, tuple]) -> _Measured:
    measured = _Measured()
    for row in rows:
        if row["status"] in ("done", "failed") and row["run_id"] in cells:
            search, n, seed = cells[row["run_id"]]
            measured.add(search, n, seed, row)
    return measured


class _NeedRisk(Exception):
    def __init__(self, n: int):
        self.n = n


def _replay(search: Search, epsilon: float, known: Mapping[int, float]):
    """The search's result if the known risks suffice, else the n it needs next.

    Once n* is found, the grid point above it is measured too (if there is one): with
    points on both sides of the crossing, a bootstrap draw of the seeds rarely loses it.
    """

    def ask(n: int) -> float:
        raise _NeedRisk(n)

    try:
        result = find_threshold(ask, epsilon, search.grid, start=search.start, known=known)
    except _NeedRisk as need:
        return need.n
    if result.n_star is not None:
        values = search.grid.values
        above = values.index(result.n_star) + 1
        if above < len(values) and values[above] not in known:
            return values[above]
        if above < len(values):
            result.evaluated.setdefault(values[above], known[values[above]])
    return result


# -- running ---------------------------------------------------------------------------------
@dataclass
class ScalingSummary(RunSummary):
    """A RunSummary plus the searches' outcome: ``scaling`` is :func:`scaling_fits`'s dict."""

    scaling: dict = field(default_factory=dict)
    rounds: int = 0

    def __str__(self) -> str:
        lines = [super().__str__() + f"; {self.rounds} search rounds"]
        lines += fit_lines(self.scaling)
        return "\n".join(lines)


def fit_lines(result: Mapping) -> list[str]:
    lines = []
    for label, fit in result.get("fits", {}).items():
        stars = ", ".join(
            f"d={d}: " + ("not reached" if n is None else f"{n:.4g}")
            for d, n in sorted(fit["n_star"].items())
        )
        if fit.get("slope") is not None:
            low, high = fit["ci"]
            slope = f"slope {fit['slope']:.2f} [{low:.2f}, {high:.2f}]"
        else:
            slope = "no slope (ε reached at fewer than two d)"
        if fit.get("slope_lower_bound") is not None:
            slope += f"; slope > {fit['slope_lower_bound']:.2f} (ε missed at larger d)"
        lines.append(f"  {label}: n* {stars}; {slope}")
    return lines


def run_scaling(
    spec: ExperimentSpec,
    options: RunOptions | None = None,
    *,
    max_rounds: int = 200,
    poll_seconds: float = 2.0,
    n_boot: int = 2000,
    **fields,
) -> ScalingSummary:
    """Find n*(d) for every search of a ``kind: scaling`` spec, then fit the exponents.

    Each round registers the runs the searches need next (all seeds of one n per
    search) and executes them with ``run_pending`` (``options``: a
    :class:`~replearn.experiments.executors.RunOptions`, ``fields`` changing some of its
    fields); finished runs already in the store are reused. Returns a
    :class:`ScalingSummary` (``.scaling``: n*, slopes, CIs, with ``n_boot`` bootstrap
    draws).
    """
    options = RunOptions.of(options, **fields)
    if spec.scaling.event == "recovery":
        return _run_recovery(spec, options, n_boot)
    db, quiet, lease_seconds = Path(options.db), options.quiet, options.lease_seconds
    start_time = time.perf_counter()
    epsilon = spec.scaling.threshold
    searches = plan_searches(spec)
    cells = _cells(spec, searches)
    seeds = list(spec.seeds)
    with Store(db, lease_seconds) as store:
        # membership: this spec's cells already in the store (from any experiment)
        reusable = [
            (row["run_id"], row["config"])
            for row in {r["run_id"]: r for r in store.runs()}.values()
            if row["run_id"] in cells and row["status"] in ("done", "failed")
        ]
        store.register_experiment(spec.name, spec.to_json(), reusable, replace=True)
        if options.retry_failed:
            store.reset_failed(spec.name)
    executed = failed_now = rounds = 0
    results: dict[tuple, object] = {}
    while True:
        with Store(db, lease_seconds) as store:
            measured = _measure(store.runs(spec.name), cells)
        needed = []
        for search in searches:
            outcome = _replay(search, epsilon, measured.mean_risks(search, seeds))
            if isinstance(outcome, int):
                needed.append((search, outcome))
            else:
                results[search.key] = outcome
        if not needed:
            break
        rounds += 1
        if rounds > max_rounds:
            raise RuntimeError(f"{spec.name}: the searches did not finish in {max_rounds} rounds")
        if not quiet:
            asked = ", ".join(f"{s.label} d={s.d} n={n}" for s, n in needed)
            print(f"{spec.name}: round {rounds}: {asked}", file=sys.stderr, flush=True)
        new = [(run_id(c), c) for s, n in needed for c in (s.config(spec, n, k) for k in seeds)]
        with Store(db, lease_seconds) as store:
            store.register_experiment(spec.name, spec.to_json(), new, replace=False)
        summary = run_pending(spec.name, options.with_(retry_failed=False))
        executed += summary.executed
        failed_now += summary.failed_now
        if summary.executed == 0 and summary.counts["running"] + summary.counts["stale"]:
            time.sleep(poll_seconds)  # another driver is running cells this search needs
    with Store(db, lease_seconds) as store:
        rows = store.runs(spec.name)
        counts = store.counts(spec.name)[spec.name]
    fit = scaling_fits(spec, rows, n_boot=n_boot)
    return ScalingSummary(
        spec.name,
        str(db),
        counts,
        executed,
        failed_now,
        time.perf_counter() - start_time,
        scaling=fit,
        rounds=rounds,
    )


def recovery_cells(spec: ExperimentSpec, searches: Sequence[Search] | None = None) -> dict:
    """run_id → (search, n, seed) of an ``event: recovery`` spec: one run per search and
    seed, of n = n_stop(d) samples (the search grid's last point: the budget)."""
    searches = plan_searches(spec) if searches is None else searches
    table = {}
    for search in searches:
        n = search.grid.values[-1]
        for seed in spec.seeds:
            table.setdefault(run_id(search.config(spec, n, seed)), (search, n, seed))
    return table


def _run_recovery(spec: ExperimentSpec, options: RunOptions, n_boot: int) -> ScalingSummary:
    """``event: recovery``: register the runs of :func:`recovery_cells` (stored ones are
    reused), run them in one round, fit (:func:`scaling_fits`)."""
    db, lease_seconds = Path(options.db), options.lease_seconds
    start_time = time.perf_counter()
    cells = recovery_cells(spec)
    configs = [(rid, search.config(spec, n, seed)) for rid, (search, n, seed) in cells.items()]
    with Store(db, lease_seconds) as store:
        store.register_experiment(spec.name, spec.to_json(), configs, replace=True)
        if options.retry_failed:
            store.reset_failed(spec.name)
    summary = run_pending(spec.name, options.with_(retry_failed=False))
    with Store(db, lease_seconds) as store:
        rows = store.runs(spec.name)
        counts = store.counts(spec.name)[spec.name]
    return ScalingSummary(
        spec.name, str(db), counts, summary.executed, summary.failed_now,
        time.perf_counter() - start_time, scaling=scaling_fits(spec, rows, n_boot=n_boot),
        rounds=1,
    )  # fmt: skip


# -- analysis --------------------------------------------------------------------------------
def scaling_fits(spec: ExperimentSpec, rows: Sequence[Mapping], n_boot: int = 2000) -> dict:
    """n*(d) and the exponent fit per method label, from the experiment's run rows.

    Returns ``{"epsilon", "fits": {label: {...}}, "searches": [...]}``. Each fit has
    ``n_star`` {d: interpolated ε-crossing or None}, ``grid_n_star`` {d: the search's
    grid n* or None}, ``slope``, ``intercept``, ``ci`` (95 % bootstrap over seeds),
    ``dropped_draws``, ``theory_slope`` and ``searched`` (d where the search finished).
    With ``event: recovery`` it is :func:`recovery_fits` (``"event": "recovery"``).
    """
    if spec.scaling.event == "recovery":
        return recovery_fits(spec, rows, n_boot=n_boot)
    epsilon = spec.scaling.threshold
    searches = plan_searches(spec)
    cells = _cells(spec, searches)
    measured = _measure(rows, cells)
    seeds = list(spec.seeds)
    by_label: dict[str, list[Search]] = {}
    for search in searches:
        by_label.setdefault(search.label, []).append(search)
    fits, table = {}, []
    for label, group in by_label.items():
        risks, grid_star, searched = {}, {}, []
        for search in group:
            complete = measured.complete(search, seeds)
            outcome = _replay(search, epsilon, measured.mean_risks(search, seeds))
            finished = not isinstance(outcome, int)
            if finished:
                searched.append(search.d)
                grid_star[search.d] = outcome.n_star
            # the bootstrap needs every seed's risk at each n: drop n with failed runs
            risks[search.d] = {
                n: [values[s] for s in seeds]
                for n, values in complete.items()
                if all(values[s] is not None for s in seeds)
            }
            means = measured.mean_risks(search, seeds)
            alignment = measured.alignment.get(search.key, {})
            for n in sorted(complete):
                aligned = [alignment.get(n, {}).get(s) for s in seeds]
                aligned = [a for a in aligned if a is not None]
                table.append(
                    {
                        "method": label,
                        "d": search.d,
                        "n": n,
                        "n/d^2": n / search.d**2,
                        "log_d n": log_d(n, search.d) if search.d > 1 else None,
                        "risk_mean": means[n],
                        "risk_sd": _sd([complete[n][s] for s in seeds]),
                        "alignment_mean": sum(aligned) / len(aligned) if aligned else None,
                        "failed": sum(complete[n][s] is None for s in seeds),
                    }
                )
        usable = {d: r for d, r in risks.items() if r}
        fit = bootstrap_exponent(usable, epsilon, n_boot=n_boot) if usable else {}
        n_star = {d: (fit.get("n_star") or {}).get(d) for d in sorted(risks)}
        n_max = {s.d: s.grid.values[-1] for s in group}
        # ε missed at d_f within n_max(d_f) but reached at d_r < d_f: under n* ∝ d^s,
        # s > log(n_max(d_f)/n*(d_r)) / log(d_f/d_r)
        bounds = [
            math.log(n_max[d_f] / n_star[d_r]) / math.log(d_f / d_r)
            for d_f in searched
            if n_star.get(d_f) is None
            for d_r in n_star
            if d_r < d_f and n_star[d_r] is not None
        ]
        fits[label] = {
            "method": group[0].method,
            "n_star": n_star,
            "grid_n_star": {d: grid_star.get(d) for d in sorted(risks)},
            "slope": fit.get("slope"),
            "intercept": fit.get("intercept"),
            "ci": fit.get("ci"),
            "dropped_draws": fit.get("dropped_draws", 0),
            "n_boot": n_boot,
            "theory_slope": None,
            "slope_lower_bound": max(bounds) if bounds else None,
            "searched": sorted(searched),
            "n_max": n_max,
            "theory_start": {s.d: s.start for s in group},
        }
    theory = _theory_slopes(spec)
    for fit in fits.values():
        fit["theory_slope"] = theory.get(fit["method"])
    return {"epsilon": epsilon, "fits": fits, "evaluated": table, "theory": theory}


def recovery_times(
    spec: ExperimentSpec, rows: Sequence[Mapping]
) -> dict[str, dict[int, list[float]]]:
    """{label: {d: recovery times}} from the runs' ``metrics["recovery_samples"]``.

    A run's metric is a list (one entry per replica of an ``OnlineSGD`` fit; None or ∞ where
    the replica had not recovered within the run's n, i.e. censored at n). Per search and
    seed, the run with the largest n is used (a longer budget censors less); failed runs
    and runs without the metric are left out.
    """
    searches = plan_searches(spec)
    cells = _cells(spec, searches)
    best: dict[tuple, tuple[int, list]] = {}  # (label, d, seed) → (n, times)
    for row in rows:
        if row["status"] != "done" or row["run_id"] not in cells:
            continue
        recovered = (row.get("metrics") or {}).get("recovery_samples")
        if recovered is None:
            continue
        search, n, seed = cells[row["run_id"]]
        key = (search.label, search.d, seed)
        if key not in best or n > best[key][0]:
            values = recovered if isinstance(recovered, list | tuple) else [recovered]
            best[key] = (n, [math.inf if v is None else float(v) for v in values])
    out: dict[str, dict[int, list[float]]] = {}
    for (label, d, _seed), (_n, values) in sorted(best.items()):
        out.setdefault(label, {}).setdefault(d, []).extend(values)
    return out


def recovery_fits(
    spec: ExperimentSpec, rows: Sequence[Mapping], quantile: float = 0.5, n_boot: int = 2000
) -> dict:
    """n*(d) = the ``quantile`` (median) of the weak-recovery times and the exponent fit with
    its bootstrap CI (``analysis.recovery_exponent``), per method label.

    Returns ``{"event": "recovery", "epsilon" (the overlap threshold), "quantile", "fits",
    "evaluated", "theory"}``; each fit has the keys of ``scaling_fits``' fits that apply
    (``n_star`` {d: n* or None}, ``slope``, ``intercept``, ``ci``, ``dropped_draws``,
    ``n_boot``, ``method``, ``slope_lower_bound``, ``searched``: the d with times, ``n_max``
    {d: budget}, ``theory_slope``) plus ``censored`` {d: share of censored times} and
    ``runs`` {d: number of times}. ``evaluated`` has a row per label and d (times, censored
    share, quartiles of the observed times).
    """
    searches = plan_searches(spec)
    methods = {s.label: s.method for s in searches}
    budgets = {(s.label, s.d): s.grid.values[-1] for s in searches}
    theory_slopes = _recovery_theory_slopes(spec, searches)
    fits, table = {}, []
    for label, times in recovery_times(spec, rows).items():
        fit = recovery_exponent(times, quantile=quantile, n_boot=n_boot)
        n_star = fit["n_star"]
        n_max = {d: budgets[(label, d)] for d in times}
        # median censored at d_f (not reached within n_max(d_f)) but reached at d_r < d_f:
        # under n* ∝ d^s, s > log(n_max(d_f)/n*(d_r)) / log(d_f/d_r)
        bounds = [
            math.log(n_max[d_f] / n_star[d_r]) / math.log(d_f / d_r)
            for d_f in times
            if n_star[d_f] is None
            for d_r in times
            if d_r < d_f and n_star[d_r] is not None
        ]
        fits[label] = dict(
            fit,
            method=methods[label],
            n_boot=n_boot,
            runs={d: len(t) for d, t in times.items()},
            searched=sorted(times),
            n_max=n_max,
            slope_lower_bound=max(bounds) if bounds else None,
            theory_slope=theory_slopes.get(label),
        )
        for d, values in sorted(times.items()):
            observed = sorted(v for v in values if math.isfinite(v))
            quartiles = [_order_statistic(observed, len(values), q) for q in (0.25, 0.5, 0.75)]
            table.append(
                {
                    "method": label,
                    "d": d,
                    "budget": n_max[d],
                    "times": len(values),
                    "censored": fit["censored"][d],
                    "q25": quartiles[0],
                    "median": quartiles[1],
                    "q75": quartiles[2],
                    "median/d": None if quartiles[1] is None else quartiles[1] / d,
                }
            )
    return {
        "event": "recovery",
        "epsilon": spec.scaling.threshold,
        "quantile": quantile,
        "fits": fits,
        "evaluated": table,
        "theory": theory_slopes,
    }


def _order_statistic(observed: Sequence[float], total: int, q: float) -> float | None:
    """The q-quantile (inverse empirical CDF) of ``total`` times of which ``observed`` (sorted)
    are finite and the rest censored later than all of them; None among the censored."""
    index = max(0, math.ceil(q * total) - 1)
    return observed[index] if index < len(observed) else None


def _sd(values: Sequence[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return 0.0 if values else None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _theory_slopes(spec: ExperimentSpec) -> dict[str, float]:
    """Predicted exponent per method (theory.predicted_exponents at the largest d)."""
    d = max(spec.d)
    seed = spec.target.seed if spec.target.seed != "run" else spec.seeds[0]
    target = build_target({**spec.target.model_dump(), "seed": seed}, d)
    predicted = theory.predicted_exponents(target, spec.scaling.threshold)
    out = {}
    for method in spec.methods:
        if method.name in ("one_step", "full_training"):
            out[method.name] = predicted["one_step"]
        elif method.name in KERNEL_METHODS:
            out[method.name] = predicted["kernel"]
    return out


def _recovery_theory_slopes(spec: ExperimentSpec, searches: Sequence[Search]) -> dict:
    """{label: the exponent of n* ∝ d^s that the theory predicts for weak recovery}, for
    single-index targets (other labels are left out); see :func:`_online_slope`."""
    d = max(spec.d)
    seed = spec.target.seed if spec.target.seed != "run" else spec.seeds[0]
    target = build_target({**spec.target.model_dump(), "seed": seed}, d)
    if target.r != 1:
        return {}
    out = {}
    for search in searches:
        if search.label not in out and search.method == "online_sgd":
            params = dict(search.params)
            try:
                out[search.label] = _online_slope(
                    target, params.get("smoothing", 0.0), params.get("repeats", 1), search.noise,
                    spec.noise_kind, params.get("lookahead_lr") is not None,
                )  # fmt: skip
            except ValueError:  # no exponent within the theory's range (a constant link)
                continue
    return out


def _online_slope(
    target, smoothing, repeats: int, noise: float, noise_kind: str, lookahead: bool = False
) -> float:
    """Weak recovery of spherical online SGD from a random start, n ≍ d^s up to logs, with k
    the information exponent and k* the generative exponent of the single-index target:

    - plain: s = max(1, k − 1) (Ben Arous, Gheissari & Jagannath 2021: d^{k−1} for k ≥ 3,
      d·log d for k = 2, d for k = 1);
    - smoothed (λ > 0): s = max(1, k/2) (Damian, Nichani, Ge & Lee 2023, λ = d^{1/4});
    - each sample used for ``repeats`` ≥ 2 steps: k replaced by k* (Arnaboldi et al. 2024,
      "Repetita iuvant": the second step acts as a label transform; ≈ d when k* ≤ 2), and
      so with their look-ahead step (``lookahead``: ``OnlineSGD(lookahead_lr=ρ)``).
    """
    k = information_exponent(target)
    if repeats >= 2 or lookahead:
        k = generative_exponent(target, noise, noise_kind)
    if smoothing not in (0, 0.0):
        return max(1.0, k / 2)
    return float(max(1, k - 1))
