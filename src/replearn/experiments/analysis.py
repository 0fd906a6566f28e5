"""log_d, aggregation over seeds, the sample-complexity finder n*(d), and the scaling-exponent fit.

n*(d) is the smallest n at which the mean excess risk over seeds falls below ε. It is found
by an adaptive search on a log grid n_k = n_min·ρ^k (ρ = 2^{1/steps_per_octave}): bracket
by doubling the index step from a starting index, then bisect between the last grid point
above ε and the first below — O(log K) evaluations instead of K. The risk is assumed to
decrease with n (where it does not, the search still returns a grid point whose risk is ≤ ε
and whose left neighbour evaluated is > ε).

The exponent s in n* ∝ d^s is the least-squares slope of log n* on log d; its confidence
interval comes from a bootstrap over seeds (resample seeds, recompute each d's crossing
from the evaluated points, refit).

For an event measured directly — weak recovery of online SGD, the first sample count at which
the overlap |w·u| reaches a threshold, censored (∞) when it did not happen within the run's
budget — no search is needed: one run per seed gives every time, n*(d) is their median (a
quantile), and the same fit and bootstrap apply (``recovery_exponent``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "log_d",
    "aggregate",
    "LogGrid",
    "ThresholdSearch",
    "find_threshold",
    "crossing",
    "fit_exponent",
    "bootstrap_exponent",
    "recovery_quantile",
    "recovery_exponent",
]


def log_d(n: float, d: int) -> float:
    """The exponent x with n = d^x, i.e. log n / log d; NaN at d = 1 (every power of 1 is 1).

    The one helper for "n as a power of d" (spec grids, results columns, figures' x axes).

    Parameters
    ----------
    n : float
        A sample size.
    d : int
        The dimension.

    Returns
    -------
    float

    Examples
    --------
    >>> log_d(100, 10), log_d(8, 4)
    (2.0, 1.5)
    >>> log_d(5, 1)
    nan
    """
    return math.log(n) / math.log(d) if d > 1 else math.nan


def aggregate(records: Iterable[Mapping], by: Sequence[str], value: str = "risk") -> list[dict]:
    """Group records by the keys ``by``: mean, sd (ddof 1), min, max and count of ``value``.

    Records whose ``value`` is None (failed runs) are left out; rows are sorted by ``by``.
    This is the one aggregation over seeds: report tables and figures both use it.

    Parameters
    ----------
    records : iterable of mapping
        Rows, e.g. :func:`flat_rows` of a store's runs.
    by : sequence of str
        The keys that define a group.
    value : str
        The key averaged.

    Returns
    -------
    list of dict
        One per group: the ``by`` keys, mean, sd, min, max, count.

    Examples
    --------
    >>> aggregate([{"n": 10, "risk": 1.0}, {"n": 10, "risk": 3.0}, {"n": 20, "risk": None}],
    ...           by=["n"])
    [{'n': 10, 'mean': 2.0, 'sd': 1.4142135623730951, 'min': 1.0, 'max': 3.0, 'count': 2}]
    """
    groups: dict[tuple, list[float]] = defaultdict(list)
    for record in records:
        if record.get(value) is None:
            continue
        groups[tuple(record.get(key) for key in by)].append(float(record[value]))
    out = []
    for key, values in groups.items():
        array = np.asarray(values)
        row = dict(zip(by, key))
        row.update(
            mean=float(array.mean()),
            sd=float(array.std(ddof=1)) if len(array) > 1 else 0.0,
            min=float(array.min()),
            max=float(array.max()),
            count=len(array),
        )
        out.append(row)
    return sorted(out, key=lambda row: tuple(_sortable(row[k]) for k in by))


def _sortable(value):
    return (0, value) if isinstance(value, int | float) else (1, str(value))


@dataclass(frozen=True)
class LogGrid:
    """n_k = round(n_min·2^{k/steps_per_octave}) for k = 0…K with n_K ≤ n_max (distinct values)."""

    n_min: int
    n_max: int
    steps_per_octave: int = 4

    def __post_init__(self):
        if self.n_min < 1 or self.n_max < self.n_min:
            raise ValueError(
                f"need 1 <= n_min <= n_max, got n_min={self.n_min}, n_max={self.n_max}"
            )
        if self.steps_per_octave < 1:
            raise ValueError(f"steps_per_octave must be >= 1, got {self.steps_per_octave}")

    @property
    def values(self) -> list[int]:
        out: list[int] = []
        k = 0
        while True:
            n = int(round(self.n_min * 2 ** (k / self.steps_per_octave)))
            if n > self.n_max:
                return out
            if not out or n > out[-1]:
                out.append(n)
            k += 1

    def index_near(self, n: float) -> int:
        values = np.asarray(self.values, dtype=float)
        return int(np.argmin(np.abs(np.log(values) - math.log(max(n, 1)))))


@dataclass
class ThresholdSearch:
    """Result of ``find_threshold``: n* (None if ε was not reached by n_max) and what was evaluated."""

    n_star: int | None
    epsilon: float
    evaluated: dict[int, float] = field(default_factory=dict)

    @property
    def reached(self) -> bool:
        return self.n_star is not None


def find_threshold(
    mean_risk: Callable[[int], float],
    epsilon: float,
    grid: LogGrid,
    start: int | None = None,
    known: Mapping[int, float] | None = None,
) -> ThresholdSearch:
    """Smallest grid n with mean_risk(n) ≤ ε, by bracketing then bisection in log n.

    ``mean_risk(n)`` runs (or looks up) the seeds at n and returns their mean risk;
    ``known`` holds risks already measured (e.g. from the results store) and is reused.
    ``start`` is a guess for n* (e.g. the theory's); the search starts at its grid index.
    """
    values = grid.values
    evaluated: dict[int, float] = dict(known or {})

    def risk_at(index: int) -> float:
        n = values[index]
        if n not in evaluated:
            evaluated[n] = float(mean_risk(n))
        return evaluated[n]

    last = len(values) - 1
    index = grid.index_near(start) if start is not None else 0
    below = None  # an index with risk ≤ ε
    above = None  # an index with risk > ε
    if risk_at(index) <= epsilon:
        below = index
        step = 1
        while below > 0:  # bracket downwards
            candidate = max(below - step, 0)
            if risk_at(candidate) <= epsilon:
                below = candidate
                step *= 2
            else:
                above = candidate
                break
        if above is None:
            return ThresholdSearch(values[below], epsilon, evaluated)
    else:
        above = index
        step = 1
        while above < last:  # bracket upwards
            candidate = min(above + step, last)
            if risk_at(candidate) <= epsilon:
                below = candidate
                break
            above = candidate
            step *= 2
        if below is None:
            return ThresholdSearch(None, epsilon, evaluated)
    while below - above > 1:  # bisect: risk(above) > ε ≥ risk(below)
        middle = (above + below) // 2
        if risk_at(middle) <= epsilon:
            below = middle
        else:
            above = middle
    return ThresholdSearch(values[below], epsilon, evaluated)


def crossing(points: Mapping[int, float], epsilon: float) -> float | None:
    """n where the mean risk first crosses ε, interpolating log-linearly between the last
    evaluated n above ε and the first below; None when no point is ≤ ε."""
    ordered = sorted(points.items())
    for i, (n, risk) in enumerate(ordered):
        if risk <= epsilon:
            if i == 0:
                return float(n)
            n_prev, risk_prev = ordered[i - 1]
            if risk_prev <= risk:
                return float(n)
            t = (risk_prev - epsilon) / (risk_prev - risk)
            return float(math.exp(math.log(n_prev) + t * (math.log(n) - math.log(n_prev))))
    return None


def fit_exponent(ds: Sequence[float], n_stars: Sequence[float]) -> tuple[float, float]:
    """Least-squares (slope s, intercept c) of log n* = s·log d + c."""
    x, y = np.log(np.asarray(ds, dtype=float)), np.log(np.asarray(n_stars, dtype=float))
    if len(x) < 2 or np.ptp(x) == 0:
        raise ValueError("need n* at two or more distinct d to fit an exponent")
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def bootstrap_exponent(
    risks: Mapping[int, Mapping[int, Sequence[float]]],
    epsilon: float,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """Slope of log n* vs log d with a percentile bootstrap CI over seeds.

    ``risks[d][n]`` lists the per-seed risks at the evaluated n (same number of seeds at
    every (d, n)). Each bootstrap draw resamples seed indices per d, recomputes the mean
    curve, its ε-crossing, and the fit; draws where some d never reaches ε are dropped and
    counted.
    """
    ds = sorted(risks)
    point = {d: crossing({n: float(np.mean(v)) for n, v in risks[d].items()}, epsilon) for d in ds}
    # n* = 0 (the median replica started above the threshold: small d) has no logarithm;
    # such a d is reported in n_star but left out of the fit
    reached = [d for d in ds if point[d] is not None and point[d] > 0]
    result = {"n_star": point, "slope": None, "intercept": None, "ci": None, "dropped_draws": 0}
    if len(reached) < 2:
        return result
    slope, intercept = fit_exponent(reached, [point[d] for d in reached])
    rng = np.random.default_rng(seed)
    slopes, dropped = [], 0
    for _ in range(n_boot):
        stars = []
        for d in reached:
            n_seeds = len(next(iter(risks[d].values())))
            pick = rng.integers(0, n_seeds, n_seeds)
            curve = {n: float(np.mean(np.asarray(v)[pick])) for n, v in risks[d].items()}
            stars.append(crossing(curve, epsilon))
        if any(s is None for s in stars):
            dropped += 1
            continue
        slopes.append(fit_exponent(reached, stars)[0])
    low, high = (
        np.quantile(slopes, [(1 - level) / 2, (1 + level) / 2]) if slopes else (math.nan, math.nan)
    )
    result.update(
        slope=slope, intercept=intercept, ci=(float(low), float(high)), dropped_draws=dropped
    )
    return result


def recovery_quantile(times: Sequence[float], quantile: float = 0.5) -> float | None:
    """The empirical ``quantile`` of recovery times with censored runs (∞) counted as later
    than every observed one; None when it falls among the censored runs.

    The inverse of the empirical CDF (no interpolation), so a censored run can never be
    averaged with an observed one.

    Parameters
    ----------
    times : sequence of float
        Samples to recovery per run (math.inf: censored at the budget).
    quantile : float
        In (0, 1); 0.5 is the median.

    Returns
    -------
    float or None

    Examples
    --------
    >>> recovery_quantile([300.0, 100.0, math.inf]), recovery_quantile([100.0, math.inf, math.inf])
    (300.0, None)
    """
    ordered = np.sort(np.asarray(times, dtype=float))
    if not 0.0 < quantile < 1.0 or len(ordered) == 0:
        raise ValueError(
            f"need 0 < quantile < 1 and at least one time, got {quantile}, {len(ordered)}"
        )
    value = float(ordered[max(0, math.ceil(quantile * len(ordered)) - 1)])
    return value if math.isfinite(value) else None


def recovery_exponent(
    times: Mapping[int, Sequence[float]],
    quantile: float = 0.5,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """Slope of log n*(d) vs log d for n*(d) = the ``quantile`` of the recovery times at d,
    with a percentile bootstrap CI (runs resampled per d; draws where some d's quantile is
    censored are dropped and counted).

    Parameters
    ----------
    times : mapping d → sequence of float
        Per run (seed or replica), samples to recovery; math.inf where censored.
    quantile : float
        Which quantile defines n*(d) (0.5: the median recovery time).
    n_boot, level, seed
        Bootstrap draws, CI level, and the bootstrap's seed.

    Returns
    -------
    dict
        ``n_star`` {d: n* or None}, ``censored`` {d: share of censored runs}, ``slope``,
        ``intercept``, ``ci``, ``dropped_draws`` — the keys of ``bootstrap_exponent``. A d
        whose n* is 0 (recovered at the start) is in ``n_star`` but not in the fit.

    Examples
    --------
    >>> times = {d: [d**2 * f for f in (0.8, 1.0, 1.25)] for d in (16, 32, 64)}
    >>> fit = recovery_exponent(times, n_boot=200)
    >>> round(fit["slope"], 6), fit["n_star"][32]
    (2.0, 1024.0)
    """
    ds = sorted(times)
    arrays = {d: np.asarray(times[d], dtype=float) for d in ds}
    point = {d: recovery_quantile(arrays[d], quantile) for d in ds}
    censored = {d: float(np.mean(~np.isfinite(arrays[d]))) for d in ds}
    # n* = 0 (the median replica started above the threshold: small d) has no logarithm;
    # such a d is reported in n_star but left out of the fit
    reached = [d for d in ds if point[d] is not None and point[d] > 0]
    result = {
        "n_star": point,
        "censored": censored,
        "slope": None,
        "intercept": None,
        "ci": None,
        "dropped_draws": 0,
    }
    if len(reached) < 2:
        return result
    slope, intercept = fit_exponent(reached, [point[d] for d in reached])
    rng = np.random.default_rng(seed)
    slopes, dropped = [], 0
    for _ in range(n_boot):
        stars = []
        for d in reached:
            runs = arrays[d]
            stars.append(recovery_quantile(runs[rng.integers(0, len(runs), len(runs))], quantile))
        if any(s is None or s <= 0 for s in stars):
            dropped += 1
            continue
        slopes.append(fit_exponent(reached, stars)[0])
    low, high = (
        np.quantile(slopes, [(1 - level) / 2, (1 + level) / 2]) if slopes else (math.nan, math.nan)
    )
    result.update(
        slope=slope, intercept=intercept, ci=(float(low), float(high)), dropped_draws=dropped
    )
    return result
