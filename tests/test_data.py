"""Tests for replearn.data: shapes, label noise, chunk invariance, seeds, splits, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

from replearn.data import BLOCK_SIZE, DataStream, sample
from replearn.targets import MultiIndexTarget, paper_target

# statistical checks: a Monte-Carlo mean of n i.i.d. terms is within Z standard errors
# (SE = std/√n) of its expectation except with probability ≈ 6.3e-5 for Z = 4; seeds are
# fixed, so the tests are deterministic.
Z = 4.0


@pytest.fixture(scope="module")
def target() -> MultiIndexTarget:
    return paper_target(10, seed=0)


@pytest.fixture(scope="module")
def target_r3() -> MultiIndexTarget:
    return MultiIndexTarget.random(d=12, r=3, degree=4, seed=1, kappa=5.0)


def concatenate(pieces) -> tuple[torch.Tensor, ...]:
    return tuple(torch.cat(parts) for parts in zip(*pieces))


# -- sample -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sample_shapes_and_dtypes(target, dtype):
    X, y = sample(target, n=1000, noise=1.0, seed=0, dtype=dtype)
    assert X.shape == (1000, 10) and y.shape == (1000,)
    assert X.dtype == y.dtype == dtype
    assert X.device.type == y.device.type == "cpu"

    X2, y2, clean = sample(target, n=1000, noise=1.0, seed=0, dtype=dtype, return_clean=True)
    assert torch.equal(X2, X) and torch.equal(y2, y)
    assert clean.shape == (1000,) and clean.dtype == dtype
    torch.testing.assert_close(clean, target(X))  # dtype-aware default tolerances


def test_sample_is_the_start_of_the_stream(target):
    X, y = sample(target, n=5000, noise=0.5, seed=3, noise_kind="gaussian", split="holdout")
    stream = DataStream(target, noise=0.5, seed=3, noise_kind="gaussian", split="holdout")
    X2, y2 = stream.get(0, 5000)
    assert torch.equal(X, X2) and torch.equal(y, y2)


def test_noiseless_labels_are_clean(target):
    X, y, clean = sample(target, n=3000, noise=0.0, seed=1, return_clean=True)
    assert torch.equal(y, clean)


def test_float32_is_float64_rounded(target_r3):
    X64, y64 = sample(target_r3, n=6000, noise=1.0, seed=2, dtype=torch.float64)
    X32, y32 = sample(target_r3, n=6000, noise=1.0, seed=2, dtype=torch.float32)
    assert torch.equal(X32, X64.float())  # drawn in float64, then cast
    torch.testing.assert_close(y32, y64.float(), rtol=1e-5, atol=1e-5)


def test_inputs_are_standard_gaussian():
    # mean 0 and covariance I within 4 SE per entry: SE(mean_j) = 1/√n,
    # SE(cov_jk) = 1/√n for j ≠ k (Var(x_j x_k) = 1) and √2/√n for j = k (Var(x_j²) = 2)
    d, n = 5, 200_000
    t = MultiIndexTarget.random(d=d, r=1, degree=2, seed=0)
    X, _ = sample(t, n=n, seed=4, dtype=torch.float64)
    assert (X.mean(0).abs() <= Z / math.sqrt(n)).all()
    covariance = X.T @ X / n
    standard_error = torch.full((d, d), 1 / math.sqrt(n), dtype=torch.float64)
    standard_error.fill_diagonal_(math.sqrt(2 / n))
    assert ((covariance - torch.eye(d, dtype=torch.float64)).abs() <= Z * standard_error).all()


# -- label noise --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rademacher_noise_is_plus_minus_noise(target, dtype):
    noise, n = 0.75, 20_000
    X, y, clean = sample(target, n=n, noise=noise, seed=5, dtype=dtype, return_clean=True)
    epsilon = (y - clean).double()
    # y = f* + ε is rounded once in dtype: the error is at most one ulp of |f*| + noise
    tolerance = 4 * torch.finfo(dtype).eps * (clean.double().abs() + noise)
    assert ((epsilon.abs() - noise).abs() <= tolerance).all()
    # symmetric: the share of + signs is ½ within 4 SE, SE = ½/√n
    share = (epsilon > 0).double().mean().item()
    assert abs(share - 0.5) <= Z * 0.5 / math.sqrt(n)


def test_gaussian_noise_is_normal(target):
    noise, n = 0.7, 200_000
    _, y, clean = sample(
        target, n=n, noise=noise, seed=6, noise_kind="gaussian", dtype=torch.float64,
        return_clean=True,
    )  # fmt: skip
    epsilon = (y - clean).numpy()
    # mean: SE = σ/√n; variance: SE of the sample variance of a normal = σ²·√(2/n)
    assert abs(epsilon.mean()) <= Z * noise / math.sqrt(n)
    assert abs(epsilon.var() - noise**2) <= Z * noise**2 * math.sqrt(2 / n)
    # shape: Kolmogorov–Smirnov against N(0, σ²) (a continuous law: not ±σ)
    assert scipy.stats.kstest(epsilon / noise, "norm").pvalue > 1e-4
    assert np.unique(np.abs(epsilon)).size > n // 2


# -- chunk invariance -----------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["paper", "r3"])
def test_chunks_are_chunk_size_invariant(which, target, target_r3):
    t = target if which == "paper" else target_r3
    stream = DataStream(t, noise=1.0, seed=7, dtype=torch.float64)
    n = 150_000  # 36.6 blocks: chunks straddle block boundaries
    X, y, clean = stream.get(0, n, clean=True)
    for chunk_size in (1000, 4096, 65_536):
        pieces = list(stream.chunks(n, chunk_size=chunk_size, clean=True))
        assert len(pieces) == math.ceil(n / chunk_size)
        assert all(len(p[0]) == chunk_size for p in pieces[:-1])
        X_c, y_c, clean_c = concatenate(pieces)
        assert torch.equal(X_c, X), chunk_size  # exact, float64
        assert torch.equal(y_c, y), chunk_size
        assert torch.equal(clean_c, clean), chunk_size
    # chunk_size 1, on a small n: at the start, and across a block boundary
    for start in (0, BLOCK_SIZE - 20):
        X_1, y_1 = concatenate(stream.chunks(40, chunk_size=1, start=start))
        assert torch.equal(X_1, X[start : start + 40])
        assert torch.equal(y_1, y[start : start + 40])


def test_chunk_invariance_in_float32(target_r3):
    stream = DataStream(target_r3, noise=1.0, seed=8, dtype=torch.float32)
    X, y = stream.get(0, 20_000)
    for chunk_size in (1, 999, 4096):
        n = 50 if chunk_size == 1 else 20_000
        X_c, y_c = concatenate(stream.chunks(n, chunk_size=chunk_size))
        assert torch.equal(X_c, X[:n]) and torch.equal(y_c, y[:n])


@pytest.mark.parametrize(
    ("start", "stop"),
    [(0, 1), (17, 18), (BLOCK_SIZE - 1, BLOCK_SIZE + 1), (5000, 13_000), (8192, 12_288)],
)
def test_get_equals_the_slice(target_r3, start, stop):
    stream = DataStream(target_r3, noise=0.3, seed=9, noise_kind="gaussian", dtype=torch.float64)
    X, y, clean = stream.get(0, 16_000, clean=True)
    X_s, y_s, clean_s = stream.get(start, stop, clean=True)
    assert X_s.shape == (stop - start, 12)
    assert torch.equal(X_s, X[start:stop])
    assert torch.equal(y_s, y[start:stop])
    assert torch.equal(clean_s, clean[start:stop])


def test_chunks_with_start(target):
    stream = DataStream(target, noise=1.0, seed=0, dtype=torch.float64)
    X, y = concatenate(stream.chunks(10_000, chunk_size=3000, start=2500))
    X_ref, y_ref = stream.get(2500, 12_500)
    assert torch.equal(X, X_ref) and torch.equal(y, y_ref)
    sizes = [len(p[0]) for p in stream.chunks(10_000, chunk_size=4096)]
    assert sizes == [4096, 4096, 1808]


# -- seeds, splits, noise independence --------------------------------------------------------


def shared_rows(A: torch.Tensor, B: torch.Tensor) -> int:
    return int((torch.cdist(A, B) == 0).sum())


def test_seed_reproducibility(target):
    a = sample(target, n=5000, noise=1.0, seed=11, dtype=torch.float64)
    b = sample(target, n=5000, noise=1.0, seed=11, dtype=torch.float64)
    c = sample(target, n=5000, noise=1.0, seed=12, dtype=torch.float64)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0]) and not torch.equal(a[1], c[1])
    assert shared_rows(a[0], c[0]) == 0
    # a fresh stream object gives the same numbers too
    s1 = DataStream(target, noise=1.0, seed=11, dtype=torch.float64)
    assert torch.equal(next(s1.chunks(5000))[0], a[0])


def test_splits_are_different(target):
    stream = DataStream(target, noise=1.0, seed=0, dtype=torch.float64)
    data = {name: stream.split(name).get(0, 5000)[0] for name in ("train", "holdout", "test")}
    assert stream.split_name == "train"
    for a, b in [("train", "holdout"), ("train", "test"), ("holdout", "test")]:
        assert shared_rows(data[a], data[b]) == 0, (a, b)
    # split() is the same as constructing with split=…, and as sample(split=…)
    direct = DataStream(target, noise=1.0, seed=0, split="test", dtype=torch.float64)
    assert torch.equal(direct.get(0, 5000)[0], data["test"])
    assert torch.equal(
        sample(target, 5000, 1.0, 0, split="test", dtype=torch.float64)[0], data["test"]
    )
    assert torch.equal(data["train"], sample(target, 5000, noise=1.0, dtype=torch.float64)[0])


def test_inputs_do_not_depend_on_noise(target):
    variants = [
        dict(noise=0.0, noise_kind="rademacher"),
        dict(noise=1.0, noise_kind="rademacher"),
        dict(noise=0.5, noise_kind="gaussian"),
        dict(noise=2.0, noise_kind="gaussian"),
    ]
    results = [sample(target, n=9000, seed=3, dtype=torch.float64, **v) for v in variants]
    for X, _ in results[1:]:
        assert torch.equal(X, results[0][0])
    labels = [y for _, y in results]
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            assert not torch.equal(labels[i], labels[j])


def test_with_changes_one_argument(target, target_r3):
    stream = DataStream(target, noise=1.0, seed=2, dtype=torch.float64)
    as32 = stream.with_(dtype=torch.float32)
    assert as32.dtype == torch.float32 and as32.seed == 2 and as32.noise == 1.0
    assert torch.equal(as32.get(0, 100)[0], stream.get(0, 100)[0].float())
    other = stream.with_(target=target_r3)
    assert other.d == 12
    assert "seed=2" in repr(stream) and "split='train'" in repr(stream)


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (dict(n=0), r"n must be an integer >= 1, got 0"),
        (dict(n=-5), r"n must be an integer >= 1, got -5"),
        (dict(n=2.5), r"n must be an integer >= 1, got 2.5"),
        (dict(n=10, noise_kind="laplace"), r"noise_kind must be one of \('rademacher', 'gaussian'\), got 'laplace'"),
        (dict(n=10, noise=-1.0), r"noise must be a finite standard deviation >= 0, got -1.0"),
        (dict(n=10, noise=math.nan), r"noise must be a finite standard deviation >= 0, got nan"),
        (dict(n=10, dtype=torch.float16), r"dtype must be torch.float32 or torch.float64"),
        (dict(n=10, split=""), r"split must be a non-empty string"),
        (dict(n=10, seed=-1), r"seed must be an integer >= 0, got -1"),
        (dict(n=10, seed=1.5), r"seed must be an integer >= 0, got 1.5"),
    ],
)  # fmt: skip
def test_sample_bad_input(target, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        sample(target, **kwargs)


def test_stream_bad_input(target):
    with pytest.raises(ValueError, match=r"target must be a MultiIndexTarget, got str"):
        DataStream("He2(z1)")
    stream = DataStream(target)
    with pytest.raises(ValueError, match=r"stop must be an integer >= 6, got 5"):
        stream.get(5, 5)
    with pytest.raises(ValueError, match=r"start must be an integer >= 0, got -1"):
        stream.get(-1, 3)
    with pytest.raises(ValueError, match=r"n must be an integer >= 1, got 0"):
        next(stream.chunks(0))
    with pytest.raises(ValueError, match=r"chunk_size must be an integer >= 1, got 0"):
        next(stream.chunks(10, chunk_size=0))
    with pytest.raises(ValueError, match=r"noise_kind must be one of"):
        stream.with_(noise_kind="uniform")


@pytest.mark.parametrize("sampler", ["numpy", "torch"])
@pytest.mark.parametrize("start, stop", [(0, 100), (4000, 8300), (4096, 8192)])
def test_get_into_out_gives_the_same_numbers(target, sampler, start, stop):
    """get(out=...) writes exactly what get returns (across block boundaries too)."""
    stream = DataStream(target, noise=0.5, seed=3, sampler=sampler, dtype=torch.float32)
    X_expected, y_expected = stream.get(start, stop)
    X = torch.full((stop - start, stream.d), float("nan"))
    y = torch.full((stop - start,), float("nan"))
    X_out, y_out = stream.get(start, stop, out=(X, y))
    assert X_out is X and y_out is y
    assert torch.equal(X, X_expected) and torch.equal(y, y_expected)


def test_get_out_is_checked(target):
    stream = DataStream(target, seed=0)
    good = (torch.empty(10, stream.d, dtype=stream.dtype), torch.empty(10, dtype=stream.dtype))
    stream.get(0, 10, out=good)
    other = torch.float64 if stream.dtype == torch.float32 else torch.float32
    with pytest.raises(ValueError, match="out's X must be a contiguous"):
        stream.get(0, 10, out=(torch.empty(10, stream.d, dtype=other), good[1]))
    with pytest.raises(ValueError, match="out's y must be a contiguous"):
        stream.get(0, 10, out=(good[0], torch.empty(11, dtype=stream.dtype)))
    with pytest.raises(ValueError, match="out's X must be a contiguous"):
        stream.get(0, 10, out=(torch.empty(stream.d, 10, dtype=stream.dtype).T, good[1]))
    with pytest.raises(ValueError, match="cannot be combined with clean"):
        stream.get(0, 10, clean=True, out=good)
    with pytest.raises(ValueError, match="tuple"):
        stream.get(0, 10, out=good[0])


@pytest.mark.parametrize("d", [3, 10, 33])
@pytest.mark.parametrize("aligned", [True, False])
def test_blocks_drawn_in_place_equal_the_stream(d, aligned, monkeypatch):
    """torch's sampler without a cache draws whole blocks straight into get's out when their
    rows start at an aligned address (the in-place path), else copies: X and f*(X) + ε are
    bit for bit what get returns either way (BLAS rounds f* differently at other alignments:
    at d = 10 and 33 the in-place path at an offset address would fail this)."""
    target = MultiIndexTarget.from_expression("He2(z1) + z1*z2", d=d, seed=0)
    stream = DataStream(target, noise=0.3, seed=5, sampler="torch", cache_bytes=0)
    start, stop = BLOCK_SIZE, 3 * BLOCK_SIZE + 17
    if aligned:
        buffer_X, buffer_y = torch.empty(stop - start, d), torch.empty(stop - start)
    else:  # contiguous views starting one row (d floats) into a new tensor
        buffer_X = torch.empty(stop - start + 1, d)[1:]
        buffer_y = torch.empty(stop - start + 1)[1:]
    in_place = []
    draw = stream._block
    monkeypatch.setattr(
        stream, "_block", lambda b, out=None: in_place.append(out is not None) or draw(b, out)
    )
    stream.get(start, stop, out=(buffer_X, buffer_y))
    assert in_place == ([True, True, False] if aligned or d % 16 == 0 else [False] * 3)
    X, y = stream.get(start, stop)
    assert torch.equal(buffer_X, X) and torch.equal(buffer_y, y)
