"""The target-kind registry: one entry per kind, read by spec, runners, store, report, CLI."""

from __future__ import annotations

from typing import Literal

import pytest
import torch

import replearn as rl
from replearn.experiments.grid import expand_grid
from replearn.experiments.spec import SpecError, parse_spec, validate_target
from replearn.experiments.store import flat_rows
from replearn.experiments.target_kinds import (
    TARGET_KINDS,
    TargetBlock,
    TargetKind,
    TargetSeed,
    build_target,
    build_transfer_target,
    register_target_kind,
    target_label,
    unregister_target_kind,
)


def spec_text(target: str, transfer: str = "") -> str:
    return (
        f"name: t\ntarget: {target}\nmethods: [{{name: synthetic}}]\nd: [6]\nn: [10]\n"
        f"n_holdout: 0\nn_test: 10\n{transfer}"
    )


def test_builtin_kinds_build_what_their_constructors_build():
    assert set(TARGET_KINDS) >= {"paper", "paper_transfer", "random", "expression", "link"}
    paper = build_target({"kind": "paper", "seed": 3}, 8)
    assert torch.equal(paper.U, rl.paper_target(8, 3).U)
    random = build_target({"kind": "random", "r": 2, "degree": 3, "seed": 1}, 8)
    assert torch.equal(random.U, rl.MultiIndexTarget.random(8, 2, 3, 1).U)
    expr = build_target({"kind": "expression", "expr": "He2(z1) + z1*z2", "seed": 2}, 8)
    link = build_target({"kind": "link", "link": "He2(z1) + z1*z2", "seed": 2}, 8)
    direct = rl.MultiIndexTarget.from_expression("He2(z1) + z1*z2", 8, seed=2)
    assert torch.equal(expr.U, direct.U) and torch.equal(link.U, direct.U)
    assert torch.allclose(link.hessian(), direct.hessian())


def test_labels():
    assert target_label({"kind": "paper", "seed": 0}) == "paper"
    assert target_label({"kind": "expression", "expr": "He3(z1)"}) == "expression:He3(z1)"
    assert target_label({"kind": "link", "link": "He3(z1)"}) == "link:He3(z1)"
    assert target_label({"kind": "random", "r": 2, "degree": 4, "kappa": 3.0}) == (
        "random(r=2,degree=4,kappa=3.0)"
    )


def test_link_block_needs_no_kind_and_runs_from_a_spec():
    spec = parse_spec(spec_text('{link: "He2(z1) + z1*z2", seed: run}'))
    assert spec.target.kind == "link" and spec.target.link == "He2(z1) + z1*z2"
    config = expand_grid(spec)[0]
    assert config["target"] == {
        "kind": "link", "link": "He2(z1) + z1*z2", "r": None, "normalize": True, "seed": 0
    }  # fmt: skip
    assert build_target(config["target"], 6).r == 2
    row = {"experiment": "t", "run_id": "x", "status": "done", "config": config, "metrics": {}}
    assert flat_rows([row])[0]["target"] == "link:He2(z1) + z1*z2"


def test_link_errors_name_the_field():
    with pytest.raises(SpecError, match=r"^target.link: "):
        parse_spec(spec_text('{link: "z1 +"}'))
    with pytest.raises(SpecError, match=r"^target.link: must be a string"):
        parse_spec(spec_text("{link: 3}"))
    with pytest.raises(SpecError, match=r"target.link: must have r ≤ every d, got r=7 > d=6"):
        parse_spec(spec_text('{link: "z7"}'))


def test_transfer_targets_of_each_kind():
    pre = build_target({"kind": "link", "link": "He2(z1) + z1*z2", "seed": 0}, 6)
    new = build_transfer_target({"kind": "link", "link": "He3(z2)"}, pre)
    assert torch.equal(new.U, pre.U)
    with pytest.raises(ValueError, match="unknown transfer target kind 'random'"):
        build_transfer_target({"kind": "random"}, pre)
    spec = parse_spec(
        spec_text("{kind: paper}", 'transfer: {target: {link: "He3(z1)"}, N: [10]}\n')
    )
    assert spec.transfer.target.kind == "link"


def test_unknown_kind_lists_the_registered_ones():
    with pytest.raises(SpecError, match=r"target.kind: must be one of .*'link'.*got 'magic'"):
        parse_spec(spec_text("{kind: magic}"))


class ShellBlock(TargetBlock):
    """z1² + … + z_r² − r, normalised: a radial target of r directions."""

    kind: Literal["shell"]
    r: int = 2
    seed: TargetSeed = 0


def _shell(block: dict, d: int) -> rl.MultiIndexTarget:
    terms = " + ".join(f"He2(z{i})" for i in range(1, block["r"] + 1))
    return rl.MultiIndexTarget.from_expression(terms, d, seed=int(block["seed"]))


def test_a_new_kind_is_one_entry():
    kind = TargetKind("shell", ShellBlock, _shell, label=lambda b: f"shell(r={b['r']})")
    register_target_kind(kind)
    try:
        spec = parse_spec(spec_text("{kind: shell, r: 3}"))
        config = expand_grid(spec)[0]
        assert build_target(config["target"], 6).r == 3
        assert target_label(config["target"]) == "shell(r=3)"
        assert validate_target({"kind": "shell", "r": 2}, d=4).r == 2
        with pytest.raises(
            SpecError, match=r"^target.radius: unknown field; allowed: kind, r, seed"
        ):
            parse_spec(spec_text("{kind: shell, radius: 3}"))
    finally:
        unregister_target_kind("shell")
    with pytest.raises(SpecError, match=r"target.kind: must be one of"):
        parse_spec(spec_text("{kind: shell}"))


def test_a_kind_must_declare_its_fields():
    class NoSeed(TargetBlock):
        kind: Literal["x"]

    with pytest.raises(TypeError, match="needs a seed field"):
        register_target_kind(TargetKind("x", NoSeed, _shell, label=str))
    with pytest.raises(TypeError, match=r"needs kind: Literal\['y'\]"):
        register_target_kind(TargetKind("y", ShellBlock, _shell, label=str))
