"""Experiment specs: safe YAML, one-line errors naming the field path, grid expansion."""

import json
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from replearn.experiments.grid import expand_grid, run_id
from replearn.experiments.methods import METHODS
from replearn.experiments.spec import (
    ExperimentSpec,
    SpecError,
    load_spec,
    parse_spec,
    resolve_n,
    validate_spec,
)

REPO = Path(__file__).resolve().parents[1]

BASE = """
name: t
target: {kind: paper}
methods:
  - {name: synthetic}
  - {name: one_step, width: 100}
d: [10]
n: [10, "d^2"]
seeds: 2
"""

# (case, how to break BASE, the expected one-line message); these are the classes the
# CLI tests also run end to end (exit code 2, nothing written)
MALFORMED = [
    ("unknown field", BASE + "sedes: 3\n", "sedes: unknown field; allowed: name, description"),
    ("wrong type", BASE.replace("seeds: 2", "seeds: two"), "seeds: must be a count ≥ 1"),
    (
        "odd width",
        BASE.replace("width: 100", "width: 101"),
        "methods[1].width: must be an even integer ≥ 2, got 101",
    ),
    (
        "r > d",
        BASE.replace("{kind: paper}", "{kind: random, r: 12, degree: 3}"),
        "target.r: must be ≤ every d, got r=12 > d=10",
    ),
    (
        "negative n",
        BASE.replace('[10, "d^2"]', "[10, -5]"),
        "n[1]: must be a positive integer (1000, '1e4') or a power of d ('d^2.5'), got -5",
    ),
    (
        "unknown method",
        BASE.replace("name: synthetic", "name: svm"),
        "methods[0].name: unknown method 'svm'; allowed: full_training, giant_step, kernel_ridge, ntk,",
    ),
    (
        "bad ntk bias",
        BASE.replace("name: one_step, width: 100", "name: ntk, bias: uniform"),
        "methods[1].bias: must be one of",
    ),
    (
        "kernel ridge has no width",
        BASE.replace("name: one_step, width: 100", "name: kernel_ridge, width: 100"),
        "methods[1].width: unknown hyper-parameter of kernel_ridge; allowed: kernel, ridge_lambda, solver",
    ),
    (
        "unsafe expression",
        BASE.replace(
            "{kind: paper}", """{kind: expression, expr: '__import__("os").system("true")'}"""
        ),
        "target.expr: bad target expression",
    ),
    (
        "python tag",
        BASE + "hook: !!python/object/apply:os.system ['true']\n",
        "YAML tag '!!python/object/apply:os.system' is not allowed",
    ),
]


@pytest.mark.parametrize("case, text, message", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_spec_is_one_line_naming_the_field(case, text, message):
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "change, message",
    [
        (("width: 100", "width: [100, 7]"), "methods[1].width[1]: must be an even integer ≥ 2"),
        (("width: 100", "widht: 100"), "methods[1].widht: unknown hyper-parameter of one_step"),
        (("width: 100", "eta1: fast"), "methods[1].eta1: must be a number > 0 or 'sqrt_d'"),
        (("{kind: paper}", "{kind: magic}"), "target.kind: must be one of 'paper'"),
        (("{kind: paper}", "{kind: random, r: 1}"), "target.degree: required field is missing"),
        (("{kind: paper}", "{kind: random, r: 1, degree: 3, x: 1}"), "target.x: unknown field"),
        (("{kind: paper}", "paper"), "target: must be a mapping, got 'paper'"),
        (("{kind: paper}", "{kind: expression, expr: 'He2(z11)'}"), "target.expr: must have r"),
        (("d: [10]", "d: [10, 0]"), "d[1]: must be an integer ≥ 1, got 0"),
        (("seeds: 2", "seeds: [0, -1]"), "seeds: must be a count ≥ 1 or a list"),
        (("name: t", "name: 'a b'"), "name: must be ASCII letters, digits"),
        (("name: t", "name: t\ndevice: tpu"), "device: must be 'cpu', 'cuda'"),
        (("name: t", "name: t\nkind: scaling"), "scaling: required for kind 'scaling'"),
    ],
)
def test_more_field_errors(change, message):
    with pytest.raises(SpecError, match=None) as info:
        parse_spec(BASE.replace(*change))
    assert message in str(info.value)


def test_not_a_mapping_and_bad_yaml():
    with pytest.raises(SpecError, match="spec: must be a mapping"):
        parse_spec("- a\n- b\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        parse_spec("name: [unclosed\n")
    with pytest.raises(SpecError, match="no such file"):
        load_spec("/nonexistent/spec.yaml")


def test_transfer_needs_a_transfer_method_and_a_valid_target():
    text = BASE + "transfer: {target: {kind: paper_transfer}, N: [10, 'd^2']}\n"
    spec = parse_spec(text)
    assert spec.transfer_n_values(10) == [10, 100]
    with pytest.raises(SpecError, match=r"transfer.target.expr: expression uses z2 but r=1"):
        parse_spec(BASE + "transfer: {target: {kind: expression, expr: He3(z2)}, N: [10]}\n")
    no_transfer = BASE.replace("name: synthetic", "name: ntk")
    with pytest.raises(SpecError, match=r"methods\[0\].name: ntk cannot refit its head"):
        parse_spec(no_transfer + "transfer: {target: {kind: paper_transfer}, N: [10]}\n")


def test_values_are_normalised():
    spec = parse_spec(
        BASE.replace('[10, "d^2"]', '["d^2.5", "1e4", 1000.0, 100, "d^2"]').replace(
            "seeds: 2", "seeds: 3\nnoise: 1"
        )
    )
    assert spec.n_values(10) == [316, 10_000, 1000, 100]  # 'd^2' = 100 appears once
    assert spec.seeds == [0, 1, 2]
    assert spec.noise == [1.0] and isinstance(spec.noise[0], float)
    assert resolve_n("d^2.5", 10) == round(10**2.5)
    assert resolve_n("d^0", 7) == 1
    # a default is validated like a given value: no `seeds` means seed 0 (found by hypothesis:
    # the default used to stay the int 1, and expand_grid failed iterating over it)
    default = parse_spec(BASE.replace("seeds: 2\n", ""))
    assert default.seeds == [0] and {c["seed"] for c in expand_grid(default)} == {0}


def test_grid_expansion_sweeps_and_stable_ids():
    spec = parse_spec(BASE.replace("width: 100", "width: [100, 200], eta1: [1.0, sqrt_d]"))
    configs = expand_grid(spec)
    # n: 2 values × (synthetic 1 + one_step 2·2) × 2 seeds
    assert len(configs) == 2 * (1 + 4) * 2
    ids = [run_id(c) for c in configs]
    assert len(set(ids)) == len(ids)
    assert ids == [run_id(c) for c in expand_grid(parse_spec(spec_text_of(spec)))]
    first = configs[2]
    assert first["params"]["width"] == 100 and first["params"]["head"] == "ridge"
    assert first["n"] == 10 and first["d"] == 10 and first["noise"] == 1.0
    changed = {**first, "seed": 99}
    assert run_id(changed) != run_id(first)


def spec_text_of(spec) -> str:
    import yaml

    data = spec.model_dump()
    data["methods"] = [{"name": m.name, **m.params} for m in spec.methods]
    return yaml.safe_dump({k: v for k, v in data.items() if v is not None})


def test_target_seed_run_follows_the_seed():
    spec = parse_spec(BASE.replace("{kind: paper}", "{kind: paper, seed: run}"))
    assert {(c["seed"], c["target"]["seed"]) for c in expand_grid(spec)} == {(0, 0), (1, 1)}


def test_scaling_kind_expands_a_log_grid():
    spec = parse_spec(
        BASE.replace('n: [10, "d^2"]\n', "")
        + "kind: scaling\nscaling: {threshold: 0.1, n_start: 'd^1', n_stop: 'd^2', log_step: 0.5}\n"
    )
    assert spec.n_values(10) == [10, 32, 100]


@pytest.mark.parametrize("path", sorted((REPO / "configs").rglob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    spec = load_spec(path)
    assert expand_grid(spec)


def test_demo_is_a_reduced_figure_one():
    spec = load_spec(REPO / "configs" / "demo.yaml")
    assert [m.name for m in spec.methods] == ["one_step", "random_features", "ntk"]
    assert spec.d == [10] and spec.seeds == [0, 1, 2] and spec.noise == [1.0]
    assert spec.n_values(10) == [10, 32, 100, 316, 1000, 3162, 10_000]
    assert len(expand_grid(spec)) == 63


# -- properties (hypothesis): valid specs round-trip, invalid ones name their field -------------
def _n_values():
    return st.lists(
        st.one_of(
            st.integers(1, 10**6),
            st.sampled_from(["d^0", "d^0.5", "d^1", "d^1.5", "d^2", "d^2.25"]),
        ),
        min_size=1,
        max_size=3,
    )


def _methods():
    synthetic = st.fixed_dictionaries(
        {"name": st.just("synthetic")},
        optional={"exponent": st.lists(st.floats(0, 3), min_size=1, max_size=2, unique=True)},
    )
    one_step = st.fixed_dictionaries(
        {"name": st.just("one_step")},
        optional={
            "width": st.lists(st.integers(1, 100).map(lambda k: 2 * k), min_size=1, max_size=2),
            "head": st.sampled_from(["ridge", "gd"]),
        },
    )
    return st.lists(st.one_of(synthetic, one_step), min_size=1, max_size=2)


VALID_SPECS = st.fixed_dictionaries(
    {
        "name": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True),
        "target": st.one_of(
            st.fixed_dictionaries(
                {"kind": st.just("paper")},
                optional={"seed": st.one_of(st.integers(0, 9), st.just("run"))},
            ),
            st.just({"kind": "paper_transfer"}),
        ),  # fmt: skip
        "methods": _methods(),
        "d": st.lists(st.integers(2, 12), min_size=1, max_size=3),
        "n": _n_values(),
    },
    optional={
        "seeds": st.one_of(st.integers(1, 3), st.lists(st.integers(0, 20), min_size=1, max_size=3)),
        "noise": st.one_of(st.floats(0, 3), st.lists(st.floats(0, 3), min_size=1, max_size=2)),
        "noise_kind": st.sampled_from(["rademacher", "gaussian"]),
        "n_holdout": st.integers(0, 10**5),
        "n_test": st.integers(2, 10**5),
        "dtype": st.sampled_from(["float32", "float64"]),
        # NEL, LS and PS are line breaks to YAML: safe_dump(allow_unicode=True) writes them raw
        # and the loader folds them, so a text holding them is not YAML-round-trippable
        "description": st.text(
            alphabet=st.characters(blacklist_characters="\x85\u2028\u2029"), max_size=20
        ),
    },
)


@settings(max_examples=60, deadline=None)
@given(VALID_SPECS)
def test_valid_specs_round_trip(data):
    spec = validate_spec(data)
    # the stored JSON validates to the same spec, and YAML text parses to it too
    again = validate_spec(json.loads(spec.to_json()))
    assert again.to_json() == spec.to_json()
    assert parse_spec(yaml.safe_dump(data, allow_unicode=True)).to_json() == spec.to_json()
    # so the grid, and every run id, is the same
    assert [run_id(c) for c in expand_grid(again)] == [run_id(c) for c in expand_grid(spec)]
    # lists are de-duplicated in order; n values resolve to distinct positive integers
    assert spec.d == list(dict.fromkeys(data["d"]))
    for d in spec.d:
        ns = spec.n_values(d)
        assert len(set(ns)) == len(ns) and all(isinstance(n, int) and n >= 1 for n in ns)


def _not(allowed):
    return st.text(min_size=1, max_size=8).filter(lambda s: s not in allowed)


# (field, bad value, the path the one-line message must start with)
INVALID_FIELDS = st.one_of(
    st.tuples(st.just("d"), st.lists(st.integers(max_value=0), min_size=1, max_size=2), st.just("d[0]")),
    st.tuples(st.just("n"), st.lists(st.integers(max_value=0), min_size=1, max_size=2), st.just("n[0]")),
    st.tuples(st.just("n"), st.just(["d^-1"]), st.just("n[0]")),
    st.tuples(st.just("seeds"), st.integers(max_value=0), st.just("seeds")),
    st.tuples(st.just("n_holdout"), st.integers(max_value=-1), st.just("n_holdout")),
    st.tuples(st.just("n_test"), st.integers(max_value=1), st.just("n_test")),
    st.tuples(st.just("noise"), st.floats(max_value=-1e-9), st.just("noise[0]")),
    st.tuples(st.just("noise"), st.sampled_from([math.inf, math.nan]), st.just("noise[0]")),
    st.tuples(st.just("noise_kind"), _not({"rademacher", "gaussian"}), st.just("noise_kind")),
    st.tuples(st.just("dtype"), _not({"float32", "float64"}), st.just("dtype")),
    st.tuples(st.just("name"), st.from_regex(r"[a-z]+ [a-z]+", fullmatch=True), st.just("name")),
    st.tuples(st.just("kind"), _not({"grid", "scaling"}), st.just("kind")),
    st.tuples(
        st.just("methods"),
        st.integers(-50, 51).filter(lambda w: w < 2 or w % 2).map(lambda w: [{"name": "one_step", "width": w}]),
        st.just("methods[0].width"),
    ),
    st.tuples(
        st.just("target"),
        st.integers(max_value=-1).map(lambda s: {"kind": "paper", "seed": s}),
        st.just("target.seed"),
    ),
    st.tuples(
        st.from_regex(r"[a-z]{3,10}", fullmatch=True).filter(
            lambda k: k not in ExperimentSpec.model_fields
        ),
        st.integers(),
        st.none(),  # an unknown field: the message starts with its own name
    ),
)  # fmt: skip


@settings(max_examples=80, deadline=None)
@given(VALID_SPECS, INVALID_FIELDS)
def test_invalid_field_gives_one_line_naming_it(data, bad):
    field, value, path = bad
    with pytest.raises(SpecError) as info:
        validate_spec({**data, field: value})
    first, *others = info.value.problems  # one line per problem (a list: one per element)
    assert first.startswith(f"{path or field}: "), first
    assert all(line.startswith(field) for line in others), others


# -- bounded work: linear de-duplication, limits checked before expanding ------------------------
class _Counted:
    """A value that counts the comparisons made with it (equal when ``key`` is)."""

    comparisons = 0

    def __init__(self, key: int):
        self.key = key

    def __eq__(self, other) -> bool:
        _Counted.comparisons += 1
        return isinstance(other, _Counted) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)


def test_deduplication_is_linear_and_keeps_the_first_occurrence():
    from replearn.experiments.spec import _non_empty_unique

    values = [_Counted(i % 1500) for i in range(3000)]
    _Counted.comparisons = 0
    unique = _non_empty_unique(values)
    assert [v.key for v in unique] == list(range(1500))
    assert unique[0] is values[0]  # the first occurrence is kept
    # a hash table compares each value with the few in its bucket: ~1 per repeat; the
    # quadratic scan compares each with every value kept so far, ~1500²·1.5 ≈ 3.4e6
    assert _Counted.comparisons <= 2 * len(values)


def test_limits_are_checked_in_the_spec_and_raised_on_purpose():
    from replearn import limits

    base = "name: t\ntarget: {kind: paper}\nmethods: [{name: synthetic}]\nn_holdout: 0\n"
    huge_grid = base + "d: [4, 5]\nn: [10, 20, 30]\nseeds: 10000\n"
    with pytest.raises(
        SpecError,
        match=r"the grid \(2 d × 1 method configs × 1 noise × "
        r"10,000 seeds × 3 n\): 60,000 exceeds the limit grid_cells = 50,000",
    ):
        with limits.raised(grid_cells=50_000):
            parse_spec(huge_grid)
    assert len(expand_grid(parse_spec(huge_grid))) == 60_000  # within the default 100 000
    with pytest.raises(SpecError, match=r"^n: n = d\^11 at d = 10: 100,000,000,000 exceeds"):
        parse_spec(base + "d: [10]\nn: ['d^11']\n")
    with limits.raised(n=10**11):
        assert parse_spec(base + "d: [10]\nn: ['d^11']\n").n_values(10) == [10**11]
    with pytest.raises(SpecError, match=r"^scaling.n_stop: n = d\^40 at d = 4: about 10\^24.1"):
        parse_spec(base.replace("name: t", "name: t\nkind: scaling") + "d: [4]\n"
                   "scaling: {threshold: 0.1, n_stop: 'd^40'}\n")  # fmt: skip


# -- every problem at once (issue 24, item 4) ------------------------------------------------------
def test_every_problem_is_listed_one_per_line():
    text = (
        "name: x\ntarget: {kind: expression}\nnoise: -1\n"
        "methods: [{name: one_step, width: 101, eta: 2}, {name: magic}]\nd: [10]\nn: [100]\n"
    )
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    problems = info.value.problems
    assert problems == [
        "target.expr: required field is missing",
        "noise[0]: must be a number ≥ 0, got -1",
        f"methods[0].eta: unknown hyper-parameter of one_step; allowed: "
        f"{', '.join(METHODS['one_step'].params.model_fields)}",
        "methods[0].width: must be an even integer ≥ 2, got 101",  # a rule with second_layer
        f"methods[1].name: unknown method 'magic'; allowed: {', '.join(sorted(METHODS))}",
    ]
    assert str(info.value) == "\n".join(problems)


def test_checks_of_the_whole_spec_add_their_problems():
    text = "name: x\ntarget: {kind: paper}\nmethods: [{name: one_step, width: 3}]\nd: [10]\n"
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    assert info.value.problems == [
        "methods[0].width: must be an even integer ≥ 2, got 3",
        "n: required for kind 'grid'; give a list of a positive integer (1000, '1e4') or a "
        "power of d ('d^2.5')",
    ]


def test_one_problem_is_one_line():
    with pytest.raises(SpecError) as info:
        parse_spec("name: x\ntarget: {kind: paper}\nmethods: [{name: synthetic}]\nd: [10]\n")
    assert "\n" not in str(info.value) and len(info.value.problems) == 1
