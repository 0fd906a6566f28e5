"""The λ-path without an eigendecomposition (``linalg.krylov``, ``cholesky_coefficients``) and
the NTK's use of it."""

import math

import pytest
import torch

from replearn.data import DataStream
from replearn.learners.ntk import NTKRegression
from replearn.linalg.dense import cholesky_coefficients
from replearn.linalg.krylov import KrylovRidgePath, select_on_holdout
from replearn.linalg.ridge import RidgePath, argmin_criterion, default_lambda_grid
from replearn.targets import paper_target

F64 = torch.float64


def gaussian_ridge_problem(rows=300, columns=60, seed=0, rank=None, spread=0.0):
    """G = FᵀF/n, c = Fᵀy/n of Gaussian features (rank-deficient F if ``rank``; column scales
    from 1 down to 10^−spread, so that G's spectrum spans 10^(2·spread) and small λ converge
    late)."""
    g = torch.Generator().manual_seed(seed)
    F = torch.randn(rows, rank or columns, generator=g, dtype=F64)
    if rank:
        F = F @ torch.randn(rank, columns, generator=g, dtype=F64)
    F = F * torch.logspace(0, -spread, columns, dtype=F64)
    y = F @ torch.randn(columns, generator=g, dtype=F64) + torch.randn(rows, generator=g, dtype=F64)
    return F.T @ F / rows, F.T @ y / rows, float(y @ y) / rows


def test_cholesky_coefficients_match_the_eigen_path():
    """Both solve (G + λ/2 I)a = c backward-stably: they differ by ≲ cond·ε₆₄ relative.
    With G = FᵀF/n of 60 Gaussian columns on 300 rows, cond(G + λ/2) ≤ cond(G) ≈ 40, so
    1e-12 is generous; λ = 0 and a λ that makes G + λ/2 indefinite are reported unusable."""
    gram, cross, mean_y2 = gaussian_ridge_problem()
    lambdas = default_lambda_grid(gram)[::8]
    coefficients, ok = cholesky_coefficients(gram, cross, lambdas)
    assert ok.all()
    expected = RidgePath(gram, cross, mean_y2, 300).coefficients(lambdas)
    torch.testing.assert_close(coefficients, expected, rtol=1e-12, atol=1e-12)
    smallest = float(torch.linalg.eigvalsh(gram)[0])
    _, ok = cholesky_coefficients(gram, cross, torch.tensor([0.0, -4 * smallest], dtype=F64))
    assert not ok.any()


def test_krylov_solutions_flagged_converged_are_within_tolerance():
    """Every λ flagged converged is within ``tol`` (relative) of the eigen path's solution, up
    to the eigen path's own error ≈ cond(G + λ/2)·ε₆₄; the flags are monotone in λ here (large
    λ converge first) and all λ > 0 converge once the Krylov space is all of R^p."""
    gram, cross, mean_y2 = gaussian_ridge_problem(rows=400, columns=80, spread=3)
    lambdas = default_lambda_grid(gram)
    exact = RidgePath(gram, cross, mean_y2, 400).coefficients(lambdas)
    eigenvalues = torch.linalg.eigvalsh(gram)
    path = KrylovRidgePath(gram, cross, tol=1e-8)
    counts = []
    for steps in (5, 10, 20, 40, 80):
        path.extend(steps - path.steps)
        coefficients, converged = path.solutions(lambdas)
        counts.append(int(converged.sum()))
        cond = (eigenvalues[-1] + lambdas / 2) / (eigenvalues[0].clamp_min(0) + lambdas / 2)
        error = (coefficients - exact).norm(dim=1) / exact.norm(dim=1)
        assert bool((error[converged] <= 1e-8 + 100 * cond[converged] * 2.2e-16).all())
        if converged.any():  # converged λ form the top of the grid
            first = int(converged.nonzero().min())
            assert bool(converged[first:].all())
    assert counts == sorted(counts) and counts[0] < 49 and counts[-1] == 49
    assert path.done


def test_krylov_stops_on_an_invariant_subspace():
    """G of rank 5: K_k(G, c) is invariant after at most 6 steps, and every solution is exact."""
    gram, cross, mean_y2 = gaussian_ridge_problem(rows=300, columns=40, rank=5)
    path = KrylovRidgePath(gram, cross)
    path.extend(40)
    assert path.exhausted and path.steps <= 6
    lambdas = default_lambda_grid(gram)
    coefficients, converged = path.solutions(lambdas)
    assert converged.all()
    exact = RidgePath(gram, cross, mean_y2, 300).coefficients(lambdas[30:])
    torch.testing.assert_close(coefficients[30:], exact, rtol=1e-9, atol=1e-12)


class GridScore:
    """score(coefficients) for ``select_on_holdout`` that looks the rows' λ up in a curve: the
    rows are the newly converged λ, which the test recovers by re-solving."""

    def __init__(self, path, lambdas, curve):
        self.path, self.lambdas, self.curve = path, lambdas, curve
        self.scored: list[int] = []
        self.batches = 0

    def __call__(self, coefficients):
        _, converged = self.path.solutions(self.lambdas)
        new = [i for i in converged.nonzero().flatten().tolist() if i not in self.scored]
        assert len(new) == coefficients.shape[0]
        self.scored += new
        self.batches += 1
        return self.curve[new]


@pytest.mark.parametrize("minimum", [0, 3, 20, 30, 47, 48])
def test_select_finds_the_minimum_of_a_unimodal_curve(minimum):
    """A convex criterion with its minimum anywhere: the same index as scoring the whole grid,
    each λ scored once, NaN where never scored, and the 6 λ below the best (or all) scored."""
    gram, cross, _ = gaussian_ridge_problem(rows=400, columns=80, spread=3)
    lambdas = default_lambda_grid(gram)
    curve = (torch.arange(49, dtype=F64) - minimum) ** 2
    path = KrylovRidgePath(gram, cross)
    score = GridScore(path, lambdas, curve)
    best, criterion = select_on_holdout(path, lambdas, score, first_steps=2)
    assert best == argmin_criterion(curve) == minimum
    assert len(score.scored) == len(set(score.scored))
    scored = torch.isfinite(criterion)
    assert sorted(score.scored) == scored.nonzero().flatten().tolist()
    assert torch.equal(criterion[scored], curve[scored])
    assert bool(scored[max(0, best - 6) : best + 2].all())
    if minimum >= 30:  # the convergence front never had to reach the bottom of the grid
        assert not bool(scored.all())


def test_select_gives_up_when_the_best_lambdas_neighbour_never_converges():
    """Decreasing criterion (the smallest λ best) but only 3 Lanczos steps allowed: the λ
    below the best scored one never converges, so the caller must take the eigen path."""
    gram, cross, _ = gaussian_ridge_problem(rows=400, columns=80)
    lambdas = default_lambda_grid(gram)
    path = KrylovRidgePath(gram, cross, max_steps=3)
    score = GridScore(path, lambdas, torch.linspace(2.0, 1.0, 49, dtype=F64))
    assert select_on_holdout(path, lambdas, score, first_steps=1) is None


@pytest.fixture(scope="module")
def ntk_fits():
    """The same NTK fits (p = (m/2)(d + 2) = 10·12 = 120 features, holdout 3000) with the
    eigen path and with Lanczos (threshold lowered below p and n): primal at n = 2000, dual
    at n = 110 < p."""
    target = paper_target(d=10, seed=1)
    fits = {}
    for form, n in (("primal", 2000), ("dual", 110)):
        for name, threshold in (("eigh", 10**9), ("krylov", 100)):
            NTKRegression.lambda_search_min_features = threshold
            try:
                stream = DataStream(target, noise=1.0, seed=3, dtype=F64)
                model = NTKRegression(width=20, dtype="float64", seed=2, form=form)
                fits[form, name] = model.fit_stream(stream, n, n_holdout=3000)
            finally:
                NTKRegression.lambda_search_min_features = 2048
    return fits


@pytest.mark.parametrize("form", ["primal", "dual"])
def test_ntk_krylov_chooses_the_eigen_paths_lambda(ntk_fits, form):
    """Same grid point, and the criterion of every λ Lanczos scored equals the eigen path's:
    both are the holdout MSE of the same a(λ) (Lanczos to relative 1e-8, the eigen path to
    ≈ cond·ε₆₄ with cond ≲ 1e9 at the smallest λ: zero-bias tangent features are linearly
    dependent, ReLU(u) = Σ_k w_k·1[u ≥ 0]x_k) — 1e-6 relative covers both; unscored λ NaN."""
    eigh, krylov = ntk_fits[form, "eigh"], ntk_fits[form, "krylov"]
    assert krylov.ridge_lambda_ == eigh.ridge_lambda_
    assert eigh.lambda_criterion_name_ == krylov.lambda_criterion_name_ == "holdout_mse"
    scored = torch.isfinite(krylov.lambda_criterion_)
    assert 7 <= int(scored.sum()) <= 49
    torch.testing.assert_close(
        krylov.lambda_criterion_[scored], eigh.lambda_criterion_[scored], rtol=1e-6, atol=0
    )
    # predictions at the chosen λ: the same ridge solution (relative 1e-7: cond ≲ 1e6 there)
    X = torch.randn(500, 10, generator=torch.Generator().manual_seed(9), dtype=F64)
    p_eigh, p_krylov = eigh.predict(X), krylov.predict(X)
    assert float((p_eigh - p_krylov).norm() / p_eigh.norm()) <= 1e-7


def test_ntk_at_a_fixed_lambda_is_the_ridge_solution():
    """Fixed λ through the Cholesky branch: the normal equations (G + λ/2)θ = c hold for
    the fitted coefficients to ≈ cond·ε₆₄ (cond ≲ 1e3 at λ = 0.1): 1e-9 relative."""
    target = paper_target(d=10, seed=1)
    stream = DataStream(target, noise=1.0, seed=3, dtype=F64)
    NTKRegression.lambda_search_min_features = 100
    try:
        wide = NTKRegression(width=20, dtype="float64", ridge_lambda=0.1, seed=2)
        wide.fit_stream(stream, 1500, n_holdout=0)
    finally:
        NTKRegression.lambda_search_min_features = 2048
    eigh = NTKRegression(width=20, dtype="float64", ridge_lambda=0.1, seed=2)
    eigh.fit_stream(stream, 1500, n_holdout=0)
    assert float((wide.coef_ - eigh.coef_).norm() / eigh.coef_.norm()) <= 1e-9
    assert math.isfinite(float(wide.coef_.sum()))


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 1e-6)])
def test_ntk_dual_holdout_by_kernel_equals_the_features(dtype, rtol):
    """For very few samples the dual NTK scores λ with k(X_h, X)·c (float64) instead of
    Φ_h·Φᵀc (features in the model's dtype): in float64 two sums of the same products (1e-10
    relative); a float32 model's features carry relative rounding ε₃₂ ≈ 6e-8 per entry, which
    moves the MSE by ≲ 10·ε₃₂ relative: 1e-6. (A float32 and a float64 gate could disagree for
    u within 1e-7 of 0: none in these 2000 rows.)"""
    target = paper_target(d=10, seed=1)
    stream = DataStream(target, noise=1.0, seed=3)
    model = NTKRegression(width=20, seed=2, form="dual", dtype=dtype)
    model.fit_stream(stream, 30, n_holdout=10)
    X, _ = stream.get(0, 30)
    X = X.double()
    duals = torch.randn(30, 4, generator=torch.Generator().manual_seed(0), dtype=F64)
    holdout = stream.split("holdout")
    by_features = model._holdout_mse(holdout, 2000, model._primal_from_dual(X, duals))
    by_kernel = model._holdout_mse_by_kernel(holdout, 2000, X, duals)
    torch.testing.assert_close(by_kernel, by_features, rtol=rtol, atol=0)


def test_zero_trace_gram_gives_the_zero_head_not_an_overflow():
    # every feature dead (ReLU features all 0): G = 0 and c = 0, so a(λ) = 0 for every λ > 0;
    # the grid must stay finite instead of λ = 10⁻¹⁰·10⁻³⁰⁰ whose 1/(λ/2) overflows
    gram = torch.zeros(4, 4, dtype=torch.float64)
    path = RidgePath(gram, torch.zeros(4, dtype=torch.float64), 1.0, 10)
    lambdas = default_lambda_grid(gram)
    assert torch.isfinite(lambdas).all() and (lambdas > 0).all()
    coefficients = path.coefficients(lambdas)
    assert torch.equal(coefficients, torch.zeros_like(coefficients))
