"""Theory functions against hand-computed cases."""

import math

import pytest
import torch

import replearn as rl
from replearn import theory


def test_paper_target_hand_computed():
    target = rl.paper_target(10, seed=4)
    u = target.U[0]
    torch.testing.assert_close(target.hessian(), torch.outer(u, u))
    assert target.kappa == pytest.approx(1.0)
    assert theory.one_step_threshold(target) == pytest.approx(100.0)  # d²κ²r = 100·1·1
    # kernel staircase: degree ≤ 1 below d² (risk 1), ≤ 2 or 3 on [d², d⁴) (risk 0.5), all at d⁴
    for n, risk in [(1, 1.0), (99, 1.0), (100, 0.5), (999, 0.5), (9_999, 0.5), (10_000, 0.0)]:
        assert theory.kernel_plateau(target, n) == pytest.approx(risk, abs=1e-12), n
    assert theory.kernel_threshold(target, 0.1) == 10_000
    assert theory.predicted_exponents(target, 0.1) == {"one_step": 2.0, "kernel": 4.0}
    steps = theory.kernel_staircase(target)
    assert [s[2] for s in steps] == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.0])


def test_learnable_degree_boundaries():
    assert theory.kernel_learnable_degree(1, 10) == 0
    assert theory.kernel_learnable_degree(1000, 10) == 3  # exact powers land on the step
    assert theory.kernel_learnable_degree(999.9, 10) == 2
    with pytest.raises(ValueError, match="n must be"):
        theory.kernel_learnable_degree(0.5, 10)


def test_degenerate_target_has_infinite_threshold():
    target = rl.MultiIndexTarget.from_expression("He3(z1)/sqrt(6)", d=8)
    assert target.hessian_rank() == 0 and math.isinf(target.kappa)
    assert math.isinf(theory.one_step_threshold(target))
    assert math.isinf(theory.predicted_exponents(target, 0.1)["one_step"])
    assert "degenerate" in theory.format_summary(theory.summary(target))


def test_multi_index_threshold_uses_kappa_and_r():
    target = rl.MultiIndexTarget.random(d=20, r=3, degree=4, seed=1, kappa=5.0)
    assert theory.one_step_threshold(target) == pytest.approx(20**2 * 25 * 3)
    assert theory.one_step_width(target) == 3**4


def test_population_step_direction_lies_in_principal_subspace():
    target = rl.MultiIndexTarget.random(d=12, r=2, degree=3, seed=0)
    W = torch.randn(6, 12, dtype=torch.float64)
    a = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0, 1.0], dtype=torch.float64)
    step = theory.population_step_direction(target, W, a)
    assert rl.subspace_alignment(step, target.U) == pytest.approx(1.0)
