"""Ridge path and selection; metrics (excess risk, subspace alignment, principal angles)."""

import math

import pytest
import torch

import replearn as rl
from replearn.linalg.ridge import GramAccumulator, HoldoutErrors, RidgePath
from replearn.validation import check_ridge_lambda

F64 = torch.float64


def _problem(n=400, m=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    F = torch.randn(n, m, generator=g, dtype=F64)
    y = F @ torch.randn(m, generator=g, dtype=F64) + torch.randn(n, generator=g, dtype=F64)
    return F, y


def test_path_matches_direct_solves_for_every_lambda():
    F, y = _problem()
    acc = GramAccumulator(12)
    for i in range(0, 400, 64):  # chunked accumulation
        acc.add(F[i : i + 64], y[i : i + 64])
    path = RidgePath.from_accumulator(acc)
    lambdas = torch.tensor([1e-6, 1e-2, 1.0, 30.0], dtype=F64)
    for lam, a in zip(lambdas, path.coefficients(lambdas)):
        direct = torch.linalg.solve(
            F.T @ F / 400 + lam / 2 * torch.eye(12, dtype=F64), F.T @ y / 400
        )
        torch.testing.assert_close(a, direct, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(path.train_mse(a[None])[0], ((F @ a - y) ** 2).mean())


def test_holdout_selection_minimises_holdout_mse_and_gcv_is_finite():
    F, y = _problem(n=60, m=40)
    Fh, yh = _problem(n=300, m=40, seed=1)
    train, hold = GramAccumulator(40), GramAccumulator(40)
    train.add(F, y)
    hold.add(Fh, yh)
    path = RidgePath.from_accumulator(train)
    best, grid, criterion = path.select(holdout=hold)
    direct = torch.stack([((Fh @ a - yh) ** 2).mean() for a in path.coefficients(grid)])
    torch.testing.assert_close(criterion, direct, rtol=1e-8, atol=1e-10)
    assert best == float(grid[torch.argmin(direct)])
    # the same criterion from predictions of the whole path, fed in uneven chunks
    errors = HoldoutErrors(path.coefficients(grid))
    for rows in torch.arange(300).split(70):
        errors.add(Fh[rows], yh[rows])
    best_p, _, criterion_p = path.select(grid, errors)
    torch.testing.assert_close(criterion_p, direct, rtol=1e-12, atol=1e-14)
    assert best_p == best
    with pytest.raises(ValueError, match="holdout errors for 49 values of λ, grid has 3"):
        path.select(grid[:3], errors)
    _, _, gcv = path.select()
    assert torch.isfinite(gcv).all()


def test_gram_of_wide_features_from_its_upper_block_triangle(monkeypatch):
    monkeypatch.setattr(GramAccumulator, "block_columns", 7)  # 40 columns → 6 blocks
    F, y = _problem(n=90, m=40)
    acc = GramAccumulator(40)
    assert len(acc._blocks) == 6 and acc._blocks[0][0] == 0 and acc._blocks[-1][1] == 40
    for rows in torch.arange(90).split(25):
        acc.add(F[rows], y[rows])
    gram, cross, mean_y2 = acc.moments()
    torch.testing.assert_close(gram, F.T @ F / 90, rtol=1e-12, atol=1e-14)
    assert torch.equal(gram, gram.T)
    torch.testing.assert_close(cross, F.T @ y / 90, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("chunk_rows", [7, 25, 30, 31, 64])
def test_gram_buffer_sums_every_row_once(monkeypatch, chunk_rows):
    """Wide float32 features in short chunks go through the row buffer (capacity 30 rows):
    chunks that fill it exactly, overflow it, or exceed it (64 rows, multiplied directly) must
    each be counted once. Against the float64 product of the same float32 inputs, a float32
    sum of r ≤ 90 products errs by at most γ_r·Σ_i|F_ik F_il|/n ≤ r·ε₃₂·max_k G_kk
    ≈ 90·6e-8 = 5.4e-6 of max|G|, so 1e-5·max|G| holds; a lost or doubled 7-row chunk moves G
    by about 7/90 of it."""
    monkeypatch.setattr(GramAccumulator, "block_columns", 7)  # 40 columns → 6 blocks
    monkeypatch.setattr(GramAccumulator, "buffer_min_columns", 7)  # … and buffered
    monkeypatch.setattr(GramAccumulator, "buffer_rows", 30)
    F, y = _problem(n=90, m=40, seed=3)
    acc = GramAccumulator(40)
    assert acc._buffer_capacity == 30
    for rows in torch.arange(90).split(chunk_rows):
        acc.add(F[rows].float(), y[rows].float())
    gram, cross, mean_y2 = acc.moments()
    assert acc.n == 90
    reference = F.float().double()
    scale = float((reference.T @ reference / 90).abs().max())
    assert float((gram - reference.T @ reference / 90).abs().max()) <= 1e-5 * scale
    assert float((cross - reference.T @ y.float().double() / 90).abs().max()) <= 1e-5 * scale
    assert mean_y2 == pytest.approx(float((y.float().double() ** 2).mean()), rel=1e-12)


def test_block_triangle_is_the_full_product_bit_for_bit():
    """Algorithm 1's 1 024 features (4 blocks of 256): every entry of the upper block triangle
    is the same dot product over the chunk's rows as in the full F^T F (MKL sums each in an
    order fixed by the inner dimension), so the mirrored matrix equals the full product."""
    g = torch.Generator().manual_seed(5)
    F = torch.randn(5000, 1024, generator=g).relu_()
    acc = GramAccumulator(1024)
    assert len(acc._blocks) == 4 and acc._buffer_capacity == 1
    acc.add(F, torch.ones(5000))
    assert torch.equal(acc.moments()[0], (F.T @ F).double() / 5000)


def test_narrow_gram_is_not_buffered():
    """Narrow features (≤ buffer_min_columns) are multiplied chunk by chunk as before: bit for
    bit the sum of the chunks' own float32 products cast to float64."""
    F, y = _problem(n=90, m=12, seed=4)
    F, y = F.float(), y.float()
    acc = GramAccumulator(12)
    expected = torch.zeros(12, 12, dtype=F64)
    for rows in torch.arange(90).split(25):
        acc.add(F[rows], y[rows])
        expected += (F[rows].T @ F[rows]).double()
    assert torch.equal(acc.moments()[0], expected / 90)


def test_ridge_lambda_validation():
    assert check_ridge_lambda("auto") == "auto" and check_ridge_lambda(0) == 0.0
    for bad in (-1.0, math.inf, "best", True):
        with pytest.raises(ValueError, match="ridge_lambda must be"):
            check_ridge_lambda(bad)


class _Zero:
    def predict(self, X):
        return torch.zeros(X.shape[0], dtype=X.dtype)


def test_excess_risk_of_zero_predictor_is_norm2():
    """The zero predictor's risk is E[f*²] = 1; the estimate must be within 4 standard errors."""
    target = rl.paper_target(10)
    estimate = rl.excess_risk(_Zero(), target, n_test=200_000, seed=3)
    assert abs(estimate.risk - 1.0) < 4 * estimate.stderr
    assert 0 < estimate.stderr < 0.1 and float(estimate) == estimate.risk


def test_subspace_alignment_and_principal_angles():
    target = rl.MultiIndexTarget.random(d=10, r=2, degree=3, seed=0)
    U = target.U
    inside = torch.randn(7, 2, dtype=F64) @ U
    assert rl.subspace_alignment(inside, U) == pytest.approx(1.0)
    complement = torch.randn(7, 10, dtype=F64)
    complement -= complement @ U.T @ U
    assert rl.subspace_alignment(complement, U) == pytest.approx(0.0, abs=1e-12)
    mixed = torch.cat([inside, complement])
    expected = (inside**2).sum() / ((inside**2).sum() + (complement**2).sum())
    assert rl.subspace_alignment(mixed, U) == pytest.approx(float(expected))
    torch.testing.assert_close(
        rl.principal_angles(inside, U), torch.zeros(2, dtype=F64), atol=1e-6, rtol=0
    )
    angles = rl.principal_angles(complement, U)
    torch.testing.assert_close(angles, torch.full((2,), math.pi / 2, dtype=F64), atol=1e-6, rtol=0)


class _Shifted:
    """f = f* + c, predicting numpy (as a learner given numpy would): excess risk c² exactly."""

    def __init__(self, target, shift):
        self.target, self.shift = target, shift

    def predict(self, X):
        return (self.target(X) + self.shift).numpy()


def test_excess_risk_of_a_shifted_target_is_the_squared_shift():
    """(f − f*)² = c² on every sample: mean c² (float64 rounding only), standard error 0."""
    target = rl.paper_target(5, seed=1)
    estimate = rl.excess_risk(_Shifted(target, 0.3), target, n_test=1000, seed=2)
    assert estimate.risk == pytest.approx(0.09, rel=1e-12)
    assert estimate.stderr == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="n_test must be an integer ≥ 2"):
        rl.excess_risk(_Shifted(target, 0.3), target, n_test=1)
