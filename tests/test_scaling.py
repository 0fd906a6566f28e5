"""The n*(d) search of ``kind: scaling`` specs through the real store, and its report section.

The ``synthetic`` method's risk is min(1, scale·d^exponent/n)·c_seed with c_seed ∈ [0.9, 1.1]
fixed by the seed's data: decreasing in n, so the smallest grid n with mean risk ≤ ε is
known exactly by brute force, and n* ∝ d^exponent up to the c_seed factors.
"""

import math
import statistics

import pytest

from replearn.cli import main
from replearn.experiments.analysis import find_threshold
from replearn.experiments.api import estimate_cells, run_experiment
from replearn.experiments.methods import METHODS
from replearn.experiments.report import scaling_experiment, scaling_section
from replearn.experiments.scaling import plan_searches, run_scaling, search_grid
from replearn.experiments.spec import SpecError, parse_spec
from replearn.experiments.store import Store

SPEC = """
name: synth-scaling
kind: scaling
target: {kind: paper}
methods:
  - {name: synthetic, exponent: EXPONENT}
d: [4, 8, 16]
seeds: 3
n_holdout: 0
n_test: 100
scaling: {threshold: 0.1, n_start: 1, n_stop: "d^4", log_step: 0.1}
"""


def spec(exponent="2.0", **replace):
    text = SPEC.replace("EXPONENT", exponent)
    for old, new in replace.items():
        text = text.replace(old, new)
    return parse_spec(text)


def brute_force_n_star(scaling_spec, search):
    """Smallest grid n with mean synthetic risk ≤ ε, checking every grid point.

    risk(n) = min(1, d^exponent/n)·c_seed, and c_seed is the risk at n = 1 (where the min is 1).
    """
    run = METHODS["synthetic"].run
    factors = [run(search.config(scaling_spec, 1, seed))["risk"] for seed in scaling_spec.seeds]
    for n in search.grid.values:
        risk = min(1.0, search.d ** dict(search.params)["exponent"] / n)
        if risk * sum(factors) / len(factors) <= scaling_spec.scaling.threshold:
            return n
    return None


def test_search_recovers_the_exact_n_star_and_reuses_stored_runs(tmp_path):
    scaling_spec = spec()
    db = tmp_path / "s.sqlite"
    first = run_scaling(scaling_spec, db=db, quiet=True, n_boot=200)
    assert first.ok and first.executed == first.counts["total"] > 0
    fits = first.scaling["fits"]["synthetic"]
    for search in plan_searches(scaling_spec):
        # the grid n* is the brute-force one exactly (a fortiori within one grid step)
        assert fits["grid_n_star"][search.d] == brute_force_n_star(scaling_spec, search)
        # far fewer runs than the grid: bracket + bisect + one point above n*
        grid_runs = len(search.grid.values) * len(scaling_spec.seeds)
        with Store(db) as store:
            at_d = [r for r in store.runs("synth-scaling") if r["d"] == search.d]
        assert len(at_d) < grid_runs / 2
    # n* ∝ d² up to c_seed ∈ [0.9, 1.1]: slope within log(1.1/0.9)/log(16/4) ≈ 0.15 of 2
    assert fits["slope"] == pytest.approx(2.0, abs=0.15)
    low, high = fits["ci"]
    assert low <= fits["slope"] <= high
    # a second run finds every risk in the store: no new work, same answer
    again = run_scaling(scaling_spec, db=db, quiet=True, n_boot=200)
    assert again.executed == 0 and again.rounds == 0
    assert again.scaling["fits"]["synthetic"]["grid_n_star"] == fits["grid_n_star"]
    # a wider spec (one more d) reuses the finished searches and runs only the new d
    wider = spec(**{"d: [4, 8, 16]": "d: [4, 8, 16, 32]"})
    grown = run_scaling(wider, db=db, quiet=True, n_boot=200)
    with Store(db) as store:
        new_d = [r for r in store.runs("synth-scaling") if r["d"] == 32]
    assert grown.executed == len(new_d) > 0


def test_missed_threshold_gives_a_slope_lower_bound(tmp_path):
    # exponent 3, scale 0.1, ε = 0.1: n* ≈ d³·c_seed = 64, 512, 4096 at d = 4, 8, 16; with
    # n ≤ 2000 the search misses at d = 16, so s > log(n_max/n*(4))/log(16/4) ≈ 2.45
    text = SPEC.replace("EXPONENT", "3.0, scale: 0.1").replace('n_stop: "d^4"', "n_stop: 2000")
    summary = run_scaling(parse_spec(text), db=tmp_path / "m.sqlite", quiet=True, n_boot=200)
    fit = summary.scaling["fits"]["synthetic"]
    assert fit["searched"] == [4, 8, 16]
    assert fit["n_star"][16] is None and fit["grid_n_star"][16] is None
    assert fit["n_star"][4] is not None and fit["n_star"][8] is not None
    expected = math.log(fit["n_max"][16] / fit["n_star"][4]) / math.log(4)
    assert fit["slope_lower_bound"] == pytest.approx(expected)
    assert 2.0 < fit["slope_lower_bound"] < 3.0  # a true lower bound of the exponent 3


def test_search_grid_follows_log_step_in_log_d_units():
    scaling_spec = spec()
    # log_step 0.1 at d = 4 is 0.2 octaves: 5 points per octave; at d = 16 0.4: 3
    assert search_grid(scaling_spec, 4).steps_per_octave == 5
    assert search_grid(scaling_spec, 16).steps_per_octave == 3
    grid = search_grid(scaling_spec, 16)
    assert grid.values[0] == 1 and grid.values[-1] <= 16**4
    # dry-run bound: every grid point × seeds
    assert estimate_cells(scaling_spec) == {
        "synthetic": sum(len(s.grid.values) * 3 for s in plan_searches(scaling_spec))
    }


def test_replay_equals_the_straight_search():
    # _replay stops where a risk is missing; fed the answers one by one it must ask for the
    # same sequence of n as find_threshold calling the risk function directly
    from replearn.experiments.scaling import _replay

    scaling_spec = spec()
    search = plan_searches(scaling_spec)[1]
    risk = lambda n: min(1.0, 64 / n)  # noqa: E731
    asked = []
    straight = find_threshold(lambda n: asked.append(n) or risk(n), 0.1, search.grid)
    known, replayed = {}, []
    while isinstance(outcome := _replay(search, 0.1, known), int):
        replayed.append(outcome)
        known[outcome] = risk(outcome)
    assert replayed[: len(asked)] == asked and outcome.n_star == straight.n_star
    # plus, at most, the grid point above n* (often the bracket measured it already)
    assert len(replayed) - len(asked) in (0, 1)
    values = search.grid.values
    assert values[values.index(outcome.n_star) + 1] in known


def test_d_by_method_and_spec_errors():
    restricted = spec(
        **{
            "seeds: 3": "seeds: 3\n",
            "log_step: 0.1}": "log_step: 0.1, d_by_method: {synthetic: [16, 4]}}",
        }
    )
    assert [s.d for s in plan_searches(restricted)] == [4, 16]
    for old, new, message in [
        ("log_step: 0.1}", "log_step: 0.1, d_by_method: {ntk: [4]}}", "not a method of this spec"),
        ("log_step: 0.1}", "log_step: 0.1, d_by_method: {synthetic: [5]}}", "subset of d"),
        ("seeds: 3", "seeds: 3\nn: [10]", "n: not used by kind 'scaling'"),
    ]:
        with pytest.raises(SpecError, match=message):
            spec(**{old: new})


def test_cli_run_and_report_of_a_scaling_spec(tmp_path, capsys, monkeypatch):
    path = tmp_path / "scaling.yaml"
    path.write_text(SPEC.replace("EXPONENT", "[2.0, 3.0]").replace("d: [4, 8, 16]", "d: [4, 8]"))
    db, out = tmp_path / "c.sqlite", tmp_path / "report"
    assert main(["run", str(path), "--db", str(db), "--executor", "serial"]) == 0
    printed = capsys.readouterr().out
    assert "synthetic[exponent=2.0]: n* d=4:" in printed and "slope" in printed
    assert main(["run", str(path), "--db", str(db), "--quiet"]) == 0  # resumes: nothing new
    plotted, save = {}, scaling_experiment.save_figure

    def capture(fig, out_dir, stem):
        plotted[stem] = [
            {
                line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
                for line in ax.get_lines()
                if line.get_marker() == "o"
            }
            for ax in fig.axes
        ]
        return save(fig, out_dir, stem)

    monkeypatch.setattr(scaling_experiment, "save_figure", capture)
    section = scaling_section(db, "synth-scaling", out)
    assert {"title", "text", "figures", "tables", "links"} <= set(section)
    # the evaluated-n table and the risk curves are the store's numbers: mean and sd over
    # the 3 seeds of each (exponent, d, n), recomputed from the rows (same floats, another
    # order of summation: 1e-12 relative)
    cells: dict[tuple, list[float]] = {}
    with Store(db) as store:
        for row in store.runs("synth-scaling", status="done"):
            config = row["config"]
            label = f"synthetic[exponent={config['params']['exponent']}]"
            cells.setdefault((label, config["d"], config["n"]), []).append(row["metrics"]["risk"])
    evaluated = section["tables"][2]
    assert sorted((r["method"], r["d"], r["n"]) for r in evaluated) == sorted(cells)
    for row in evaluated:
        risks = cells[(row["method"], row["d"], row["n"])]
        assert len(risks) == 3 and row["failed"] == 0
        assert row["risk_mean"] == pytest.approx(statistics.fmean(risks), rel=1e-12)
        assert row["risk_sd"] == pytest.approx(statistics.stdev(risks), rel=1e-12)
    curves = plotted["synth-scaling-scaling-curves"]
    assert len(curves) == 2  # one panel per exponent
    for panel, label in zip(curves, ["synthetic[exponent=2.0]", "synthetic[exponent=3.0]"]):
        for d in (4, 8):
            xs, ys = panel[f"d = {d}"]
            ns = sorted(n for (m, d_, n) in cells if m == label and d_ == d)
            assert xs == pytest.approx([n / d**2 for n in ns], rel=1e-12)
            means = [statistics.fmean(cells[(label, d, n)]) for n in ns]
            assert ys == pytest.approx(means, rel=1e-12)
    assert all(p.is_file() and p.suffix == ".png" for p in section["figures"])
    fits, stars = section["tables"][0], section["tables"][1]
    assert [row["method"] for row in fits] == ["synthetic[exponent=2.0]", "synthetic[exponent=3.0]"]
    assert math.isclose(fits[0]["slope"], 2.0, abs_tol=0.2)
    assert {row["d"] for row in stars} == {4, 8}
    assert all((out / link).is_file() for link in section["links"])


def test_run_experiment_dispatches_scaling_specs(tmp_path):
    summary = run_experiment(
        spec(**{"d: [4, 8, 16]": "d: [4, 8]"}), db=tmp_path / "r.sqlite", quiet=True
    )
    assert summary.ok and "synthetic" in summary.scaling["fits"]


def test_recovery_fits_take_the_median_time_with_censoring():
    """Recovery times d²·f_seed (f = 0.8, 1, 1.25 per seed's replica): the median is d², the
    exponent 2 exactly; a shorter run of the same seed is ignored, a censored replica (None)
    counts as later than every observed time."""
    from replearn.experiments.scaling import _cells, recovery_fits

    scaling_spec = spec()
    cells = _cells(scaling_spec, plan_searches(scaling_spec))
    rows = []
    for run_id, (search, n, seed) in cells.items():
        if n == search.grid.values[-1]:
            factor = (0.8, 1.0, 1.25)[scaling_spec.seeds.index(seed)]
            times = [search.d**2 * factor, None]  # replica 2 censored
        elif n == search.grid.values[0]:
            times = [None, None]  # a short run of the same seed: not the one used
        else:
            continue
        rows.append({"run_id": run_id, "status": "done", "metrics": {"recovery_samples": times}})
    fit = recovery_fits(scaling_spec, rows, n_boot=200)["fits"]["synthetic"]
    # 6 times per d, 3 censored: the median (3rd of 6) is the largest observed, 1.25·d²
    assert fit["n_star"] == {d: 1.25 * d**2 for d in (4, 8, 16)}
    assert fit["censored"] == {4: 0.5, 8: 0.5, 16: 0.5} and fit["runs"] == {4: 6, 8: 6, 16: 6}
    assert fit["slope"] == pytest.approx(2.0)
    # the 0.25-quantile of 6 times is the 2nd smallest, d²
    quarter = recovery_fits(scaling_spec, rows, quantile=0.25, n_boot=200)["fits"]["synthetic"]
    assert quarter["n_star"] == {d: 1.0 * d**2 for d in (4, 8, 16)}
    assert quarter["slope"] == pytest.approx(2.0) and quarter["dropped_draws"] < 200
