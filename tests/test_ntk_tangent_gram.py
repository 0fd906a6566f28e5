"""TangentGram: the NTK's FᵀF from gated second moments equals FᵀF of the features.

In float64 both sides are sums of the same products in another order, so they agree to
≈ (number of summed terms)·ε relative to max |G|; 1e-12 leaves a margin of 10³ over the
≈ 1e-15 measured. The learner-level tests force each path on one small model and require the
same λ grid point and predictions equal to the same rounding.
"""

from __future__ import annotations

import math

import pytest
import torch

from replearn.data import DataStream
from replearn.learners.ntk import NTKRegression
from replearn.learners.tangent_gram import TangentGram
from replearn.linalg.ridge import GramAccumulator
from replearn.targets import paper_target


def tangent_features(X, W, b, a):
    """√2·[ReLU(u), a·1[u ≥ 0]⊗x, a·1[u ≥ 0]], written out independently of the learner."""
    pre = X @ W.T + b
    gate = (pre >= 0).to(X.dtype)
    columns = [pre.clamp_min(0)]
    columns.append((a * gate)[:, :, None].mul(X[:, None, :]).reshape(X.shape[0], -1))
    columns.append(a * gate)
    return math.sqrt(2.0) * torch.cat(columns, dim=1)


@pytest.mark.parametrize("bias", ["zero", "normal"])
@pytest.mark.parametrize("h, d, block_columns", [(5, 3, 2), (7, 4, 256), (12, 1, 5)])
def test_moments_equal_the_features_gram(bias, h, d, block_columns):
    g = torch.Generator().manual_seed(h * 10 + d)
    W = torch.randn(h, d, generator=g, dtype=torch.float64)
    b = torch.zeros(h, dtype=torch.float64)
    if bias == "normal":
        b = torch.randn(h, generator=g, dtype=torch.float64)
    a = torch.where(torch.rand(h, generator=g) < 0.5, -1.0, 1.0).double()
    structured = TangentGram(W, b, a, block_columns=block_columns)
    reference = GramAccumulator(h * (d + 2))
    for rows in (40, 1, 17):
        X = torch.randn(rows, d, generator=g, dtype=torch.float64)
        r = torch.randn(rows, generator=g, dtype=torch.float64)
        structured.add(X, r)
        reference.add(tangent_features(X, W, b, a), r)
    gram, cross, mean_r2 = structured.moments()
    gram_ref, cross_ref, mean_r2_ref = reference.moments()
    assert torch.equal(gram, gram.T)
    assert float((gram - gram_ref).abs().max()) <= 1e-12 * float(gram_ref.abs().max())
    assert float((cross - cross_ref).abs().max()) <= 1e-12 * float(cross_ref.abs().max())
    assert mean_r2 == pytest.approx(mean_r2_ref, rel=1e-14)


def test_moments_need_samples():
    acc = TangentGram(torch.randn(3, 2), torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match="no samples"):
        acc.moments()


def best_index(model) -> int:
    return int(torch.argmin(torch.nan_to_num(model.lambda_criterion_, nan=math.inf)))


@pytest.fixture
def wide_paths(monkeypatch):
    """Make a small NTK take the wide primal path (λ search), with or without TangentGram."""
    monkeypatch.setattr(NTKRegression, "lambda_search_min_features", 1)

    def use(structured: bool) -> None:
        monkeypatch.setattr(TangentGram, "min_neurons", 1 if structured else 10**9)

    return use


@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-9), ("float32", 2e-3)])
@pytest.mark.parametrize("bias", ["zero", "normal"])
def test_ntk_fit_is_the_same_with_either_gram(wide_paths, dtype, tolerance, bias):
    # float32: G's entries carry relative rounding ≈ 1e-7·√rows per product; the head
    # amplifies it by at most cond(G + λ/2·I) at the chosen λ (≈ 10² here), so predictions
    # agree to ≈ 1e-4 relative; 2e-3 is a 20× margin. float64: the same with ε = 1e-16.
    target = paper_target(d=4, seed=1)
    stream = DataStream(target, noise=2.0, seed=0)
    X_test = stream.split("test").get(0, 2000)[0].to(getattr(torch, dtype))
    fits = []
    for structured in (False, True):
        wide_paths(structured)
        model = NTKRegression(width=40, bias=bias, dtype=dtype, form="primal", seed=2)
        fits.append(model.fit_stream(stream, 1500, 3000))
    materialised, structured = fits
    # the same grid point (the grid is scaled by tr(G), so λ itself agrees to rounding)
    assert best_index(structured) == best_index(materialised)
    assert structured.ridge_lambda_ == pytest.approx(materialised.ridge_lambda_, rel=tolerance)
    reference = materialised.predict(X_test)
    difference = (structured.predict(X_test) - reference).abs().max()
    assert float(difference) <= tolerance * float(reference.abs().max())
