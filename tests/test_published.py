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
