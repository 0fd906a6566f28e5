"""Where a learner's samples come from, and the α/β moments it takes of them.

A *source* is anything with ``d`` and ``chunks(n, chunk_size, start=0)`` yielding (X, y): a
``DataStream`` (regenerated on every pass, O(chunk) memory) or an ``ArraySource`` wrapping
tensors already in memory. Both give the same numbers for the same samples, so ``fit(X, y)``
and ``fit_stream(stream, n)`` agree.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from replearn import progress
from replearn.data import DataStream
from replearn.validation import check_arrays

__all__ = [
    "ArraySource",
    "Rechunked",
    "Source",
    "materialise",
    "linear_moments",
    "preprocessed_chunks",
]


class ArraySource:
    """In-memory (X, y) with the same ``chunks`` interface as a DataStream."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor):
        self.X, self.y = check_arrays(X, y)

    @property
    def d(self) -> int:
        return self.X.shape[1]

    def __len__(self) -> int:
        return self.X.shape[0]

    def chunks(self, n: int, chunk_size: int, start: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
        if start + n > len(self):
            raise ValueError(f"asked for samples {start}…{start + n - 1} of only {len(self)}")
        return progress.track_rows(self._slices(n, chunk_size, start), n)  # a bar on long passes

    def _slices(self, n: int, chunk_size: int, start: int) -> Iterator[tuple[torch.Tensor, ...]]:
        for begin in range(start, start + n, chunk_size):
            stop = min(begin + chunk_size, start + n)
            yield self.X[begin:stop], self.y[begin:stop]


Source = DataStream | ArraySource


class Rechunked:
    """A source whose chunks are split into pieces of at most ``rows`` rows.

    Wide feature maps (the NTK has m(d + 2) features) need short chunks, but a DataStream
    regenerates whole 4096-sample blocks per request; this keeps its requests long.
    """

    def __init__(self, source, rows: int, outer_chunk: int):
        self.source, self.rows, self.outer_chunk = source, rows, outer_chunk

    @property
    def d(self) -> int:
        return self.source.d

    def chunks(self, n: int, chunk_size: int, start: int = 0):
        for X, y, *_ in self.source.chunks(n, max(self.outer_chunk, chunk_size), start=start):
            for i in range(0, X.shape[0], self.rows):
                yield X[i : i + self.rows], y[i : i + self.rows]


def materialise(source, n: int, chunk_size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(X, y) of samples 0…n−1 of a source, in float64 on device (kernel methods need X)."""
    pieces = [
        (X.to(device=device, dtype=torch.float64), y.to(device=device, dtype=torch.float64))
        for X, y, *_ in source.chunks(n, chunk_size)
    ]
    return torch.cat([p[0] for p in pieces]), torch.cat([p[1] for p in pieces])


def _to(X: torch.Tensor, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return X.to(device=device, dtype=dtype, non_blocking=True)


def linear_moments(
    source: Source, n: int, start: int, chunk_size: int, dtype, device
) -> tuple[torch.Tensor, torch.Tensor]:
    """α = (1/n)Σ y_i and β = (1/n)Σ y_i·x_i over samples start…start+n−1 (float64 sums)."""
    alpha_sum = torch.zeros((), dtype=torch.float64, device=device)
    beta_sum = None
    for X, y, *_ in progress.labelled("α, β pass", source.chunks(n, chunk_size, start=start)):
        X, y = _to(X, dtype, device), _to(y, dtype, device)
        alpha_sum += y.sum(dtype=torch.float64)
        contribution = (y @ X).to(torch.float64)
        beta_sum = contribution if beta_sum is None else beta_sum + contribution
    return (alpha_sum / n).to(dtype), (beta_sum / n).to(dtype)


def preprocessed_chunks(source, n, start, alpha, beta, chunk_size, dtype, device):
    """(X, r) chunks of samples start…start+n−1 on ``device``, r = y − α − β·x (y if α is None)."""
    for X, y, *_ in source.chunks(n, chunk_size, start=start):
        X, y = _to(X, dtype, device), _to(y, dtype, device)
        yield X, (y if alpha is None else y - alpha - X @ beta)
