"""The λ-path without an eigendecomposition (``linalg.lambda_search``) and the NTK's use of it."""

import math

import pytest
import torch

from replearn.data import DataStream
from replearn.learners.ntk import NTKRegression
from replearn.linalg.lambda_search import cholesky_coefficients, search_grid
from replearn.linalg.ridge import RidgePath, argmin_criterion, default_lambda_grid
from replearn.targets import paper_target

F64 = torch.float64


def _recording(curve):
    calls = []

    def score(indices):
        calls.append(list(indices))
        return curve[indices]

    return score, calls


@pytest.mark.parametrize("minimum", [0, 1, 5, 13, 23, 30, 47, 48])
def test_search_finds_the_minimum_of_a_unimodal_curve(minimum):
    """A convex curve over 49 points with its minimum anywhere (grid ends, coarse points,
    odd points between them): the search returns the same index as scoring the whole grid,
    scores each point at most once, and leaves the unscored ones NaN."""
    curve = (torch.arange(49, dtype=F64) - minimum) ** 2 + 0.5 * torch.arange(49, dtype=F64) / 49
    score, calls = _recording(curve)
    best, criterion = search_grid(score, 49)
    assert best == argmin_criterion(curve) == minimum
    scored = [i for call in calls for i in call]
    assert len(scored) == len(set(scored)) <= 20
    assert torch.equal(criterion[scored], curve[scored])
    assert torch.isnan(criterion).sum() == 49 - len(scored)
    # it ends on a local minimum whose both neighbours were scored
    for neighbour in (best - 1, best + 1):
        if 0 <= neighbour < 49:
            assert not math.isnan(float(criterion[neighbour]))


def test_search_treats_unusable_points_as_infinite():
    curve = torch.linspace(2.0, 1.0, 49, dtype=F64)
    curve[40:] = math.inf  # e.g. failed factorisations
    best, _ = search_grid(_recording(curve)[0], 49)
    assert best == 39


def test_cholesky_coefficients_match_the_eigen_path():
    """Both solve (G + λ/2 I)a = c backward-stably: they differ by ≲ cond·ε₆₄ relative.
    With G = FᵀF/n of 60 Gaussian columns on 300 rows, cond(G + λ/2) ≤ cond(G) ≈ 40, so
    1e-12 is generous; λ = 0 and a λ that makes G + λ/2 indefinite are reported unusable."""
    g = torch.Generator().manual_seed(0)
    F = torch.randn(300, 60, generator=g, dtype=F64)
    y = F @ torch.randn(60, generator=g, dtype=F64) + torch.randn(300, generator=g, dtype=F64)
    gram, cross = F.T @ F / 300, F.T @ y / 300
    lambdas = default_lambda_grid(gram)[::8]
    coefficients, ok = cholesky_coefficients(gram, cross, lambdas)
    assert ok.all()
    expected = RidgePath(gram, cross, float(y @ y) / 300, 300).coefficients(lambdas)
    torch.testing.assert_close(coefficients, expected, rtol=1e-12, atol=1e-12)
    smallest = float(torch.linalg.eigvalsh(gram)[0])
    _, ok = cholesky_coefficients(gram, cross, torch.tensor([0.0, -4 * smallest], dtype=F64))
    assert not ok.any()


@pytest.fixture(scope="module")
def ntk_fits():
    """The same NTK fit (p = (m/2)(d + 2) = 10·12 = 120 features, n = 2000, holdout 3000)
    with the eigen path and with the search (threshold lowered below p)."""
    target = paper_target(d=10, seed=1)
    fits = {}
    for name, threshold in (("eigh", 10**9), ("search", 100)):
        NTKRegression.lambda_search_min_features = threshold
        try:
            stream = DataStream(target, noise=1.0, seed=3, dtype=F64)
            fits[name] = NTKRegression(width=20, dtype="float64", seed=2).fit_stream(
                stream, 2000, n_holdout=3000
            )
        finally:
            NTKRegression.lambda_search_min_features = 2048
    return fits


def test_ntk_search_chooses_the_eigen_paths_lambda(ntk_fits):
    """Same grid point, and the criterion of every point the search scored equals the eigen
    path's: both are the holdout MSE of the same a(λ), solved two backward-stable ways with
    cond(G + λ/2) ≲ 1e9 at the smallest λ (zero-bias tangent features are linearly dependent:
    ReLU(u) = Σ_k w_k·1[u ≥ 0]x_k) — 1e-6 relative covers it; unscored points are NaN."""
    eigh, search = ntk_fits["eigh"], ntk_fits["search"]
    assert search.ridge_lambda_ == eigh.ridge_lambda_
    assert eigh.lambda_criterion_name_ == search.lambda_criterion_name_ == "holdout_mse"
    scored = torch.isfinite(search.lambda_criterion_)
    assert 5 <= int(scored.sum()) < 49
    torch.testing.assert_close(
        search.lambda_criterion_[scored], eigh.lambda_criterion_[scored], rtol=1e-6, atol=0
    )
    # predictions at the chosen λ: the same ridge solution (relative 1e-8: cond ≲ 1e6 there)
    X = torch.randn(500, 10, generator=torch.Generator().manual_seed(9), dtype=F64)
    p_eigh, p_search = eigh.predict(X), search.predict(X)
    assert float((p_eigh - p_search).norm() / p_eigh.norm()) <= 1e-8


def test_ntk_search_at_a_fixed_lambda_is_the_ridge_solution():
    """Fixed λ through the Cholesky branch: the normal equations (G + λ/2)θ = c hold for
    the fitted coefficients to ≈ cond·ε₆₄ (cond ≲ 1e3 at λ = 0.1): 1e-9 relative."""
    target = paper_target(d=10, seed=1)
    stream = DataStream(target, noise=1.0, seed=3, dtype=F64)
    NTKRegression.lambda_search_min_features = 100
    try:
        search = NTKRegression(width=20, dtype="float64", ridge_lambda=0.1, seed=2)
        search.fit_stream(stream, 1500, n_holdout=0)
    finally:
        NTKRegression.lambda_search_min_features = 2048
    eigh = NTKRegression(width=20, dtype="float64", ridge_lambda=0.1, seed=2)
    eigh.fit_stream(stream, 1500, n_holdout=0)
    assert float((search.coef_ - eigh.coef_).norm() / eigh.coef_.norm()) <= 1e-9
