"""Experiment specs: safe YAML, one-line errors naming the field path, grid expansion."""

from pathlib import Path

import pytest

from replearn.experiments.grid import expand_grid, run_id
from replearn.experiments.spec import SpecError, load_spec, parse_spec, resolve_n

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
        "methods[0].name: unknown method 'svm'; allowed: full_training, kernel_ridge, ntk,",
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
        (("name: t", "name: 'a b'"), "name: must be letters, digits"),
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


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    spec = load_spec(path)
    assert expand_grid(spec)


def test_demo_is_a_reduced_figure_one():
    spec = load_spec(REPO / "configs" / "demo.yaml")
    assert [m.name for m in spec.methods] == ["one_step", "random_features", "ntk"]
    assert spec.d == [10] and spec.seeds == [0, 1, 2] and spec.noise == [1.0]
    assert spec.n_values(10) == [10, 32, 100, 316, 1000, 3162, 10_000]
    assert len(expand_grid(spec)) == 63
