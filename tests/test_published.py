"""The ``published:`` block of a spec: validation (one line per problem, under its path), and
that it never enters a run config or run id."""

import pytest

from replearn.experiments.grid import expand_grid, run_id
from replearn.experiments.spec import SpecError, parse_spec

BASE = """\
name: x
target: {kind: paper}
methods: [{name: synthetic, exponent: [1.0, 2.0]}]
d: [10]
n: [100, 1000]
seeds: 2
"""


def test_published_block_is_read_and_kept_out_of_run_ids():
    plain = parse_spec(BASE)
    spec = parse_spec(
        BASE + "published:\n  source: 'repo, notebook, cell 9'\n  scale: 2\n  seeds: 10\n"
        "  values:\n    - {n: 100, exponent: 1.0, mean: 0.3, sd: 0.01}\n"
        "  per_step:\n    - {step: 1, quantity: 'overlap[0,0]', mean: 0.07, sd: 0.002}\n"
    )
    assert spec.published.scale == 2.0 and spec.published.metric == "excess_risk"
    assert spec.published.values == [{"n": 100, "exponent": 1.0, "mean": 0.3, "sd": 0.01}]
    assert spec.published.per_step[0]["quantity"] == "overlap[0,0]"
    ids = [run_id(c) for c in expand_grid(spec)]
    assert ids == [run_id(c) for c in expand_grid(plain)]
    assert all("published" not in c for c in expand_grid(spec))
    assert "published" in spec.to_json() and "published" not in plain.to_json()


@pytest.mark.parametrize(
    "block, line",
    [
        ("{values: []}", "published.source: required field is missing"),
        ("{source: s, metric: risk}", "published.metric: must be one of excess_risk, alignment"),
        ("{source: s, scale: 0}", "published.scale: must be a finite number > 0, got 0"),
        ("{source: s, seeds: 0}", "published.seeds: must be an integer ≥ 1, got 0"),
        ("{source: s, values: 3}", "published.values: must be a list of mappings"),
        ("{source: s, values: [3]}", "published.values[0]: must be a mapping"),
        ("{source: s, values: [{n: 100}]}", "published.values[0].mean: required field is missing"),
        ("{source: s, values: [{mean: .nan}]}", "published.values[0].mean: must be a finite"),
        ("{source: s, values: [{mean: 1, sd: -1}]}", "published.values[0].sd: must be a finite number ≥ 0, got -1"),
        ("{source: s, values: [{mean: 1, seeds: 1.5}]}", "published.values[0].seeds: must be an integer ≥ 1"),
        ("{source: s, values: [{mean: 1, alpha: 2}]}", "published.values[0].alpha: not a grid key of this spec; allowed: d, n, N, noise, method, exponent"),
        ("{source: s, values: [{mean: 1, method: rf}]}", "published.values[0].method: not a method of this spec; methods: synthetic"),
        ("{source: s, per_step: [{mean: 1, quantity: q}]}", "published.per_step[0].step: required field is missing"),
        ("{source: s, per_step: [{mean: 1, step: -1, quantity: q}]}", "published.per_step[0].step: must be an integer ≥ 0"),
        ("{source: s, values: [{mean: 1, step: 1}]}", "published.values[0].step: per-step rows go under published.per_step"),
        ("{source: s, colour: red}", "published.colour: unknown field; allowed: source, metric"),
    ],
)  # fmt: skip
def test_published_problems_are_one_line_each(block, line):
    with pytest.raises(SpecError) as info:
        parse_spec(BASE + f"published: {block}\n")
    assert any(problem.startswith(line) for problem in info.value.problems), info.value.problems
    assert all("\n" not in problem for problem in info.value.problems)


def test_report_table_holds_the_store_numbers(tmp_path, capsys):
    """The "Published vs replearn" rows are the store's runs: mean and sd over seeds of the
    stored risk divided by scale, the published numbers as given, z as its formula."""
    import math
    import statistics

    from replearn.experiments import run_experiment
    from replearn.experiments.api import write_report
    from replearn.experiments.frames import run_rows

    spec = parse_spec(
        BASE.replace("seeds: 2", "seeds: 3") + "n_holdout: 0\nn_test: 10\n"
        "published:\n  source: 'paper, table 1'\n  scale: 2\n  seeds: 5\n  values:\n"
        "    - {n: 100, exponent: 1.0, mean: 0.05, sd: 0.01}\n"
        "    - {n: 'd^3', exponent: 2.0, mean: 0.04}\n"
        "    - {n: 1000, mean: 0.01, seeds: 2, sd: 0.002}\n"
        "    - {n: 7, mean: 0.5}\n"
    )
    db = tmp_path / "r.sqlite"
    run_experiment(spec, db=db, quiet=True)
    markdown: list[str] = []
    page = write_report(db, tmp_path / "report", published=markdown)
    runs = run_rows(db, "x", "done")

    def stored(n, exponent):
        return [r["risk"] / 2 for r in runs if r["n"] == n and r["param_exponent"] == exponent]

    text = page.read_text()
    assert "Published vs replearn" in text and "paper, table 1" in text
    assert "Published vs replearn" in markdown[0]
    table = (tmp_path / "report" / "x-published.csv").read_text().splitlines()
    assert table[0].startswith("grid point,configuration,published,published sd,published seeds")
    from replearn.experiments.report.published_table import published_rows

    rows = published_rows(spec.published.model_dump(), runs)
    assert [r["grid point"] for r in rows] == [
        "n=100, exponent=1.0", "n=d^3, exponent=2.0", "n=1000", "n=1000", "n=7"
    ]  # fmt: skip
    first = stored(100, 1.0)
    assert rows[0]["replearn"] == statistics.fmean(first) and rows[0]["seeds"] == 3
    assert math.isclose(rows[0]["replearn sd"], statistics.stdev(first), rel_tol=1e-12)
    combined = math.sqrt(0.01**2 / 5 + statistics.stdev(first) ** 2 / 3)
    assert math.isclose(rows[0]["z"], (statistics.fmean(first) - 0.05) / combined, rel_tol=1e-12)
    assert rows[1]["replearn"] == statistics.fmean(stored(1000, 2.0))  # d^3 at d = 10
    # n = 1000 without a method key: one row per configuration (exponent 1 and 2)
    assert {r["configuration"] for r in rows[2:4]} == {
        "method=synthetic, exponent=1.0",
        "method=synthetic, exponent=2.0",
    }
    assert rows[2]["published seeds"] == 2
    assert rows[4]["seeds"] == 0 and rows[4]["replearn"] is None  # no run at n = 7
    # `replearn report` prints the same table as Markdown
    from replearn.cli import main

    assert main(["report", "--db", str(db), "--out", str(tmp_path / "again")]) == 0
    printed = capsys.readouterr().out
    assert "Published vs replearn" in printed and "| grid point | configuration |" in printed
    assert f"{rows[0]['replearn']:.4g}" in printed
