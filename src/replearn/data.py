"""Seeded Gaussian data: x ~ N(0, I_d), y = f*(x) + ε, chunk-invariant streams.

Sample i of a stream lives in block i // BLOCK_SIZE; every block is drawn from its own
numpy PCG64 generator seeded by SeedSequence(seed, split, block), on the CPU in float64, then cast to the
requested dtype and moved to the requested device. So the data of sample i is the same
whatever the chunk size, the executor, the dtype's precision allowing, and the device.

Label noise ε is symmetric with standard deviation ``noise``: Rademacher (±noise, the
paper's choice) or Gaussian N(0, noise²).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import numpy as np
import torch

from replearn.targets import MultiIndexTarget

__all__ = ["DataStream", "sample", "BLOCK_SIZE", "NOISE_KINDS"]

BLOCK_SIZE = 4096
NOISE_KINDS = ("rademacher", "gaussian")
SPLITS_NOTE = "any name; 'train', 'holdout', 'test' and 'head' are used by replearn"


def _check_count(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _block_generator(seed: int, split: str, block: int) -> np.random.Generator:
    state = np.random.SeedSequence([int(seed), zlib.crc32(split.encode()), int(block)])
    return np.random.Generator(np.random.PCG64(state))


class DataStream:
    """An endless, seeded stream of (x_i, y_i) for one target; a pure function of its arguments.

    Parameters
    ----------
    target : MultiIndexTarget
        f*; labels are y_i = f*(x_i) + ε_i with x_i ~ N(0, I_d).
    noise : float
        Standard deviation ς ≥ 0 of the label noise ε.
    seed : int
        ≥ 0; with ``split`` it fixes every sample.
    noise_kind : {"rademacher", "gaussian"}
        ε = ±ς with equal probability (the paper's) or ε ~ N(0, ς²).
    split : str
        Any name; ``"train"``, ``"holdout"``, ``"test"`` and ``"head"`` are used by replearn.
    dtype : torch.float32 or torch.float64
        Of the returned tensors (samples are drawn in float64, then cast).
    device : str or torch.device
        Where the returned tensors live.

    Examples
    --------
    >>> import torch, replearn as rl
    >>> stream = rl.DataStream(rl.paper_target(d=10), noise=1.0, seed=0)
    >>> [X.shape[0] for X, y in stream.chunks(n=10, chunk_size=4)]
    [4, 4, 2]
    >>> by_3000 = torch.cat([y for _, y in stream.chunks(10_000, chunk_size=3000)])
    >>> by_4096 = torch.cat([y for _, y in stream.chunks(10_000, chunk_size=4096)])
    >>> bool(torch.equal(by_3000, by_4096))                  # chunk-invariant
    True
    >>> bool(torch.equal(stream.get(0, 5)[0], stream.split("test").get(0, 5)[0]))
    False

    Notes
    -----
    ``stream.chunks(n, chunk_size)`` yields (X, y) pieces of samples 0…n−1 (or
    ``(X, y, f*(X))`` with ``clean=True``); ``stream.split("holdout")`` is an independent
    stream from the same seed (train / holdout / test never share a sample).
    """

    def __init__(
        self,
        target: MultiIndexTarget,
        noise: float = 0.0,
        seed: int = 0,
        noise_kind: str = "rademacher",
        split: str = "train",
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ):
        if not isinstance(target, MultiIndexTarget):
            raise ValueError(f"target must be a MultiIndexTarget, got {type(target).__name__}")
        noise = float(noise)
        if not np.isfinite(noise) or noise < 0:
            raise ValueError(f"noise must be a finite standard deviation >= 0, got {noise}")
        if noise_kind not in NOISE_KINDS:
            raise ValueError(f"noise_kind must be one of {NOISE_KINDS}, got {noise_kind!r}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        if not isinstance(split, str) or not split:
            raise ValueError(f"split must be a non-empty string ({SPLITS_NOTE}), got {split!r}")
        self.target = target
        self.noise = noise
        self.seed = _check_count("seed", seed, minimum=0)
        self.noise_kind = noise_kind
        self.split_name = split
        self.dtype = dtype
        self.device = torch.device(device)

    @property
    def d(self) -> int:
        return self.target.d

    def split(self, name: str) -> DataStream:
        """An independent stream with the same target, noise and seed, for another split."""
        return self.with_(split=name)

    def with_(self, **changes) -> DataStream:
        """A copy with some constructor arguments changed (e.g. target=…, dtype=…)."""
        args = dict(
            target=self.target,
            noise=self.noise,
            seed=self.seed,
            noise_kind=self.noise_kind,
            split=self.split_name,
            dtype=self.dtype,
            device=self.device,
        )
        args.update(changes)
        return DataStream(**args)

    def _block(self, block: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(X, ε) of one block, CPU float64; the X of a block never depends on the noise."""
        generator = _block_generator(self.seed, self.split_name, block)
        X = torch.from_numpy(generator.standard_normal((BLOCK_SIZE, self.d)))
        if self.noise_kind == "rademacher":
            signs = generator.integers(0, 2, size=BLOCK_SIZE).astype(np.float64) * 2.0 - 1.0
            epsilon = torch.from_numpy(signs * self.noise)
        else:
            epsilon = torch.from_numpy(generator.standard_normal(BLOCK_SIZE) * self.noise)
        return X, epsilon

    def get(self, start: int, stop: int, clean: bool = False):
        """Samples start…stop−1 as (X, y) or (X, y, f*(X)), in self.dtype on self.device.

        Parameters
        ----------
        start, stop : int
            0 ≤ start < stop: the half-open range of sample indices.
        clean : bool
            Also return f*(X), the labels without noise.

        Returns
        -------
        tuple of torch.Tensor
            X (stop − start, d), y (stop − start,) and, with ``clean``, f*(X).

        Examples
        --------
        >>> import replearn as rl
        >>> stream = rl.DataStream(rl.paper_target(d=10), noise=1.0, seed=0)
        >>> X, y, f_star = stream.get(3, 5, clean=True)
        >>> X.shape, y - f_star                     # Rademacher noise: ±1
        (torch.Size([2, 10]), tensor([ 1., -1.]))
        """
        start = _check_count("start", start, minimum=0)
        stop = _check_count("stop", stop, minimum=start + 1)
        first, last = start // BLOCK_SIZE, (stop - 1) // BLOCK_SIZE
        blocks = [self._block(b) for b in range(first, last + 1)]
        offset = start - first * BLOCK_SIZE
        rows = slice(offset, offset + stop - start)
        X_blocks = [x.to(device=self.device, dtype=self.dtype) for x, _ in blocks]
        # f* is evaluated on whole blocks (always BLOCK_SIZE rows): BLAS kernels sum in a
        # shape-dependent order, so evaluating the slice would make f*(x_i) depend on chunking
        f_star = torch.cat([self.target(x) for x in X_blocks])[rows]
        X = torch.cat(X_blocks)[rows]
        epsilon = torch.cat([e for _, e in blocks])[rows]
        y = f_star + epsilon.to(device=self.device, dtype=self.dtype)
        return (X, y, f_star) if clean else (X, y)

    def chunks(
        self, n: int, chunk_size: int = 65_536, start: int = 0, clean: bool = False
    ) -> Iterator[tuple[torch.Tensor, ...]]:
        """Yield samples start…start+n−1 in pieces of at most chunk_size rows (validated now).

        Parameters
        ----------
        n : int
            Number of samples, ≥ 1.
        chunk_size : int
            Most rows per piece; sample i is the same whatever it is.
        start : int
            Index of the first sample.
        clean : bool
            Yield (X, y, f*(X)) instead of (X, y).

        Returns
        -------
        iterator of tuple of torch.Tensor
            Arguments are checked when ``chunks`` is called, not when iteration starts.

        Examples
        --------
        >>> import replearn as rl
        >>> stream = rl.DataStream(rl.paper_target(d=10), noise=1.0, seed=0)
        >>> [tuple(X.shape) for X, y in stream.chunks(n=10, chunk_size=4, start=100)]
        [(4, 10), (4, 10), (2, 10)]
        """
        n = _check_count("n", n)
        chunk_size = _check_count("chunk_size", chunk_size)
        start = _check_count("start", start, minimum=0)
        return (
            self.get(begin, min(begin + chunk_size, start + n), clean=clean)
            for begin in range(start, start + n, chunk_size)
        )

    def __repr__(self) -> str:
        return (
            f"DataStream(d={self.d}, noise={self.noise}, seed={self.seed}, "
            f"noise_kind={self.noise_kind!r}, split={self.split_name!r}, dtype={self.dtype})"
        )


def sample(
    target: MultiIndexTarget,
    n: int,
    noise: float = 0.0,
    seed: int = 0,
    noise_kind: str = "rademacher",
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    split: str = "train",
    return_clean: bool = False,
):
    """n samples (X, y) — or (X, y, f*(X)) — the first n of DataStream(target, …, seed).

    Parameters
    ----------
    target : MultiIndexTarget
        f*.
    n : int
        Number of samples, ≥ 1.
    noise, seed, noise_kind, dtype, device, split
        As :class:`DataStream`.
    return_clean : bool
        Also return f*(X).

    Returns
    -------
    tuple of torch.Tensor
        X (n, d) and y (n,), plus f*(X) (n,) with ``return_clean``.

    Examples
    --------
    >>> import replearn as rl
    >>> X, y = rl.sample(rl.paper_target(d=10), n=1000, noise=1.0, seed=0)
    >>> X.shape, y.shape, X.dtype
    (torch.Size([1000, 10]), torch.Size([1000]), torch.float32)
    >>> X5, y5 = rl.sample(rl.paper_target(d=10), n=5, noise=1.0, seed=0)
    >>> bool(torch.equal(y5, y[:5]))            # the first n of the same stream
    True
    """
    stream = DataStream(target, noise, seed, noise_kind, split, dtype, device)
    return stream.get(0, _check_count("n", n), clean=return_clean)
