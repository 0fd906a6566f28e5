"""Tests for DataStream's kept blocks, background drawing and opt-in samplers.

The cache and the background thread must change no number: every comparison of a cached or
prefetched stream with a stream that draws every pass again (cache_bytes=0) is exact
(torch.equal), because both compute the same float operations on the same block.
"""

from __future__ import annotations

import math

import pytest
import torch

import replearn.data as data
from replearn.data import (
    BLOCK_SIZE,
    CACHE_CAP_BYTES,
    DataStream,
    default_cache_bytes,
    get_cache_bytes,
    set_cache_bytes,
)
from replearn.learners.one_step import OneStepNetwork
from replearn.targets import MultiIndexTarget, paper_target

# statistical checks: a Monte-Carlo mean of n i.i.d. terms is within Z standard errors of its
# expectation except with probability ≈ 6.3e-5 for Z = 4; the seeds are fixed.
Z = 4.0


@pytest.fixture(scope="module")
def target() -> MultiIndexTarget:
    return MultiIndexTarget.random(d=12, r=3, degree=4, seed=1, kappa=5.0)


@pytest.fixture
def global_budget():
    """Restore the global budget after a test that changes it."""
    yield
    set_cache_bytes(None)


def block_bytes(d: int, dtype: torch.dtype) -> int:
    """One kept block: X (BLOCK_SIZE × d), f*(X) and y (BLOCK_SIZE each) in dtype."""
    return BLOCK_SIZE * (d + 2) * torch.empty((), dtype=dtype).element_size()


def concatenate(pieces) -> tuple[torch.Tensor, ...]:
    return tuple(torch.cat(parts) for parts in zip(*pieces))


def count_draws(monkeypatch) -> list[int]:
    """Record every block the numpy/torch sampler draws (in any thread)."""
    drawn: list[int] = []
    original = DataStream._block

    def recording(self, block):
        drawn.append(block)
        return original(self, block)

    monkeypatch.setattr(DataStream, "_block", recording)
    return drawn


# -- the cache changes no number ----------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("noise_kind", ["rademacher", "gaussian"])
def test_cached_passes_equal_drawn_passes(target, dtype, noise_kind):
    options = dict(noise=0.7, seed=5, noise_kind=noise_kind, dtype=dtype)
    fresh = DataStream(target, cache_bytes=0, **options)
    cached = DataStream(target, cache_bytes=10**9, **options)
    n, start = 70_000, 1234  # 17.4 blocks: chunks straddle block boundaries
    expected = fresh.get(start, start + n, clean=True)
    for chunk_size in (65_536, 10_000, 4096, 5000):  # the first pass fills, the others read
        got = concatenate(cached.chunks(n, chunk_size, start=start, clean=True))
        assert all(torch.equal(a, b) for a, b in zip(got, expected)), chunk_size
    assert cached.cache_nbytes == math.ceil((start + n) / BLOCK_SIZE) * block_bytes(12, dtype)
    assert fresh.cache_nbytes == 0


def test_a_second_pass_draws_nothing_and_a_tiny_budget_draws_the_rest(target, monkeypatch):
    drawn = count_draws(monkeypatch)
    n_blocks, kept = 12, 3
    n = n_blocks * BLOCK_SIZE
    stream = DataStream(
        target, noise=1.0, seed=2, cache_bytes=kept * block_bytes(12, torch.float32)
    )
    first = concatenate(stream.chunks(n, 10_000))
    assert sorted(drawn) == list(range(n_blocks))  # 10 000 is no multiple: no block twice
    drawn.clear()
    second = concatenate(stream.chunks(n, 10_000))
    # the first `kept` blocks are kept (never evicted); only the others are drawn again —
    # an oldest-first eviction would draw all 12 on every pass
    assert sorted(drawn) == list(range(kept, n_blocks))
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    drawn.clear()
    concatenate(DataStream(target, noise=1.0, seed=2, cache_bytes=0).chunks(n, 10_000))
    concatenate(DataStream(target, noise=1.0, seed=2, cache_bytes=0).chunks(n, 10_000))
    assert len(drawn) == 2 * n_blocks


def test_memory_is_flat_in_n_at_a_tiny_budget(target):
    budget = 5 * block_bytes(12, torch.float64) + 17  # room for 5 blocks, not 6
    reference = DataStream(target, noise=0.5, seed=3, dtype=torch.float64, cache_bytes=0)
    for n in (20 * BLOCK_SIZE, 80 * BLOCK_SIZE):
        stream = DataStream(target, noise=0.5, seed=3, dtype=torch.float64, cache_bytes=budget)

        def chunk_sums(source, n=n):
            return torch.stack(
                [
                    torch.stack([X.sum(), y.sum(), f.sum()])
                    for X, y, f in source.chunks(n, 32_768, clean=True)
                ]
            )

        expected = chunk_sums(reference)
        for _ in range(2):  # the first pass fills the 5 blocks, the second reads them
            assert torch.equal(chunk_sums(stream), expected)
        assert stream.cache_nbytes == 5 * block_bytes(12, torch.float64) <= budget


def test_a_changed_chunk_does_not_change_the_kept_block(target):
    stream = DataStream(target, noise=1.0, seed=4, cache_bytes=10**8)
    X, y = stream.get(0, BLOCK_SIZE)  # exactly one kept block
    X_copy, y_copy = X.clone(), y.clone()
    X.zero_()
    y.fill_(7.0)
    X2, y2 = stream.get(0, BLOCK_SIZE)
    assert torch.equal(X2, X_copy) and torch.equal(y2, y_copy)


def test_copies_share_the_store_without_mixing_blocks(target):
    stream = DataStream(target, noise=0.5, seed=6, cache_bytes=10**8)
    stream.get(0, 3 * BLOCK_SIZE)
    holdout, louder = stream.split("holdout"), stream.with_(noise=1.0)
    as64 = stream.with_(dtype=torch.float64)
    assert holdout._store is stream._store and louder._store is stream._store
    for copy in (holdout, louder, as64):
        fresh = copy.with_(cache_bytes=0)
        assert fresh._store is not stream._store
        got, expected = copy.get(0, 3 * BLOCK_SIZE), fresh.get(0, 3 * BLOCK_SIZE)
        assert all(torch.equal(a, b) for a, b in zip(got, expected)), repr(copy)
    assert stream.cache_nbytes == 3 * (2 * block_bytes(12, torch.float32)) + 3 * block_bytes(
        12, torch.float32
    ) + 3 * block_bytes(12, torch.float64)  # train, holdout, noise 1.0 (f32) and float64
    stream.clear_cache()
    assert holdout.cache_nbytes == 0
    other_target = stream.with_(target=paper_target(12, seed=0))
    assert other_target._store is not stream._store


def test_an_abandoned_pass_does_not_hang(target):
    stream = DataStream(target, noise=1.0, seed=1, cache_bytes=0)
    pieces = stream.chunks(10 * BLOCK_SIZE, BLOCK_SIZE)
    X, y = next(pieces)  # the next block is being drawn in the background now
    pieces.close()
    assert torch.equal(X, stream.get(0, BLOCK_SIZE)[0])


def test_fit_stream_is_identical_with_and_without_the_cache():
    t = paper_target(8, seed=3)
    X_test = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    predictions = []
    for cache_bytes in (0, 10**9):
        stream = DataStream(t, noise=1.0, seed=2, cache_bytes=cache_bytes)
        net = OneStepNetwork(width=40, seed=1, chunk_size=5000).fit_stream(stream, 30_000, 9000)
        predictions.append(net.predict(X_test))
    assert torch.equal(predictions[0], predictions[1])
    assert stream.cache_nbytes > 0


def test_fit_stream_takes_its_own_budget(monkeypatch):
    """``fit_stream(..., cache_bytes=)``: the call's budget, the caller's stream untouched."""
    t = paper_target(8, seed=3)
    X_test = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    stream = DataStream(t, noise=1.0, seed=2, cache_bytes=10**9)
    drawn = count_draws(monkeypatch)
    n, n_holdout = 6 * BLOCK_SIZE, 2 * BLOCK_SIZE
    fresh = OneStepNetwork(width=40, seed=1).fit_stream(stream, n, n_holdout, cache_bytes=0)
    # cache_bytes=0: the training blocks drawn on each of the three passes (α/β, step, head)
    assert len(drawn) == 3 * 6 + 2 and stream.cache_nbytes == 0
    drawn.clear()
    kept = OneStepNetwork(width=40, seed=1).fit_stream(stream, n, n_holdout)
    assert len(drawn) == 6 + 2 and stream.cache_nbytes > 0  # drawn once, kept in the stream
    assert torch.equal(fresh.predict(X_test), kept.predict(X_test))
    with pytest.raises(ValueError, match="cache_bytes must be an integer ≥ 0, got -1"):
        OneStepNetwork(width=40).fit_stream(stream, n, cache_bytes=-1)


# -- the budget ---------------------------------------------------------------------------------


def test_the_global_budget(target, global_budget):
    assert 0 < default_cache_bytes() <= CACHE_CAP_BYTES
    assert get_cache_bytes() == default_cache_bytes()
    set_cache_bytes(2 * block_bytes(12, torch.float32))
    stream = DataStream(target, seed=1)  # follows the global setting, also when it changes later
    stream.get(0, 4 * BLOCK_SIZE)
    assert stream.cache_nbytes == 2 * block_bytes(12, torch.float32)
    set_cache_bytes(0)
    stream.with_(noise=1.0).get(0, BLOCK_SIZE)
    assert stream.cache_nbytes == 2 * block_bytes(12, torch.float32)
    own = DataStream(target, seed=1, cache_bytes=10**8)  # its own budget wins
    own.get(0, BLOCK_SIZE)
    assert own.cache_nbytes == block_bytes(12, torch.float32)
    set_cache_bytes(None)
    assert get_cache_bytes() == default_cache_bytes()


def test_default_budget_is_a_quarter_of_available_memory_capped(monkeypatch):
    monkeypatch.setattr(data, "_default_cache_bytes", None)
    monkeypatch.setattr(data, "_available_memory_bytes", lambda: 4 * 2**30)
    assert default_cache_bytes() == 2**30
    monkeypatch.setattr(data, "_default_cache_bytes", None)
    monkeypatch.setattr(data, "_available_memory_bytes", lambda: 64 * 2**30)
    assert default_cache_bytes() == CACHE_CAP_BYTES
    monkeypatch.setattr(data, "_default_cache_bytes", None)
    monkeypatch.setattr(data, "_available_memory_bytes", lambda: None)
    assert default_cache_bytes() == 512 * 2**20


def test_bad_budget_and_sampler_options(target, global_budget):
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match=r"cache_bytes must be an integer >= 0"):
            DataStream(target, cache_bytes=bad)
        with pytest.raises(ValueError, match=r"cache_bytes must be an integer >= 0"):
            set_cache_bytes(bad)
    with pytest.raises(ValueError, match=r"sampler must be one of \('numpy', 'torch'\)"):
        DataStream(target, sampler="jax")
    with pytest.raises(ValueError, match=r"sample_dtype must be one of \('float64', 'float32'\)"):
        DataStream(target, sample_dtype="float16")
    with pytest.raises(ValueError, match=r"sample_dtype applies to sampler='numpy' only"):
        DataStream(target, sampler="torch", sample_dtype="float32")


# -- opt-in samplers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        dict(sample_dtype="float32"),
        dict(sample_dtype="float32", noise_kind="gaussian"),
        dict(sampler="torch"),
        dict(sampler="torch", noise_kind="gaussian", dtype=torch.float64),
    ],
)
def test_opt_in_samplers_are_chunk_invariant(target, options):
    stream = DataStream(target, noise=0.8, seed=7, cache_bytes=0, **options)
    n = 30_000  # 7.3 blocks
    X, y, clean = stream.get(0, n, clean=True)
    for chunk_size in (999, 4096, 16_384):
        got = concatenate(stream.chunks(n, chunk_size, clean=True))
        assert all(torch.equal(a, b) for a, b in zip(got, (X, y, clean))), chunk_size
    cached = stream.with_(cache_bytes=10**9)
    for _ in range(2):
        got = concatenate(cached.chunks(n, 5000, clean=True))
        assert all(torch.equal(a, b) for a, b in zip(got, (X, y, clean)))
    # another sampler draws other numbers for the same (seed, split, block)
    default = DataStream(target, noise=0.8, seed=7, dtype=stream.dtype).get(0, n)[0]
    assert not torch.equal(X, default)
    # blocks, splits and seeds are independent streams (a generator seeded without the block
    # would repeat block 0 and still be chunk-invariant)
    assert not torch.equal(X[:BLOCK_SIZE], X[BLOCK_SIZE : 2 * BLOCK_SIZE])
    assert not torch.equal(stream.split("holdout").get(0, 100)[0], X[:100])
    assert not torch.equal(stream.with_(seed=8).get(0, 100)[0], X[:100])
    # labels: ε = y − f*(x) is ±noise (Rademacher) or continuous (Gaussian)
    epsilon = (y - clean).double()
    if stream.noise_kind == "rademacher":
        torch.testing.assert_close(epsilon.abs(), torch.full_like(epsilon, 0.8), rtol=1e-6, atol=0)


@pytest.mark.parametrize("options", [dict(sample_dtype="float32"), dict(sampler="torch")])
def test_opt_in_samplers_draw_standard_gaussians(options):
    # mean 0 and covariance I within Z SE per entry: SE(mean_j) = 1/√n, SE(cov_jk) = 1/√n for
    # j ≠ k (Var(x_j x_k) = 1) and √2/√n for j = k (Var(x_j²) = 2)
    d, n = 5, 200_000
    t = MultiIndexTarget.random(d=d, r=1, degree=2, seed=0)
    X = DataStream(t, seed=4, cache_bytes=0, **options).get(0, n)[0].double()
    assert (X.mean(0).abs() <= Z / math.sqrt(n)).all()
    covariance = X.T @ X / n
    standard_error = torch.full((d, d), 1 / math.sqrt(n), dtype=torch.float64)
    standard_error.fill_diagonal_(math.sqrt(2 / n))
    assert ((covariance - torch.eye(d, dtype=torch.float64)).abs() <= Z * standard_error).all()
