"""Representation diagnostics: degree energies, captured components, first-step agreement."""

import pytest
import torch

import replearn as rl
from replearn.metrics import captured_degree_components, low_degree_energy, step_gradient_agreement


class _Exact:
    """A 'model' that predicts a fixed function (used to check the diagnostics)."""

    def __init__(self, fn):
        self.fn = fn

    def predict(self, X):
        return self.fn(X)


def test_low_degree_energy_of_known_polynomial():
    """h = 0.3 + x·v + He2(u·x)/√2·c: energies (0.09, ‖v‖², c², 0) exactly.

    Estimates are unbiased; with n = 4·10⁵ the standard error of each is below ≈ 0.01
    (products of two half-sample means, each with variance E[h²]/n ≈ 1.5/2·10⁵, times
    the d or d² terms summed), so a 0.03 absolute tolerance is > 3 standard errors.
    """
    d = 6
    v = torch.tensor([0.5, 0.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    target = rl.MultiIndexTarget.from_expression(
        "He2(z1)/sqrt(2)*0.8", d=d, seed=1, normalize=False
    )
    energy = low_degree_energy(lambda X: 0.3 + X @ v + target(X), d, n=400_000, seed=5)
    assert energy.degree0 == pytest.approx(0.09, abs=0.03)
    assert energy.degree1 == pytest.approx(0.25, abs=0.03)
    assert energy.degree2 == pytest.approx(0.64, abs=0.03)
    assert energy.higher == pytest.approx(0.0, abs=0.03)
    assert energy.total == pytest.approx(0.98, abs=0.03)


def test_captured_components_of_exact_and_projected_models():
    """Per-sample standard deviations of f·f*_k / E[f*_k²] on this target, measured once on
    10⁶ samples: 10.6 (k = 2, f = f*), 32.2 (k = 4, f = f*), 7.4 (k = 4, f = f*_2) — He₄'s
    heavy tails. With n_test = 10⁶ the standard errors are 0.011, 0.032, 0.0074; the
    tolerances below are 4 of them."""
    target = rl.paper_target(8)
    full = captured_degree_components(_Exact(target), target, n_test=1_000_000)
    assert full[2] == pytest.approx(1.0, abs=0.045)
    assert full[4] == pytest.approx(1.0, abs=0.13)
    quadratic = target.project(2)
    part = captured_degree_components(_Exact(quadratic), target, n_test=1_000_000)
    assert part[2] == pytest.approx(1.0, abs=0.045)  # f*_2² has lighter tails than f*·f*_2
    assert part[4] == pytest.approx(0.0, abs=0.03)


def test_first_step_matches_population_direction_at_large_n():
    target = rl.paper_target(10)
    stream = rl.DataStream(target, noise=1.0, seed=0)
    small = rl.OneStepNetwork(width=100).fit_stream(stream, 1_000, n_holdout=1000)
    large = rl.OneStepNetwork(width=100).fit_stream(stream, 100_000, n_holdout=1000)
    agree_small = step_gradient_agreement(small, target)
    agree_large = step_gradient_agreement(large, target)
    assert agree_large["mean_cosine"] > 0.9 > agree_small["mean_cosine"]
