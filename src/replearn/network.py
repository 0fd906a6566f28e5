"""The two-layer ReLU network f(x) = Σ_j a_j·ReLU(w_j·x + b_j), width m, no 1/m scaling.

Symmetric initialisation (so that f ≡ 0 at init): neuron j and its partner j + m/2 have
a_{j+m/2} = −a_j, w_{j+m/2} = w_j, b_{j+m/2} = b_j, with a_j uniform on {−1, +1},
w_j ~ N(0, I_d/d), b_j = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from replearn.validation import check_width

__all__ = [
    "TwoLayerReLU",
    "symmetric_init",
    "relu_features",
    "ReluFeatureMap",
    "scratch",
    "normal_biases",
    "BIAS_SEED_OFFSET",
]

BIAS_SEED_OFFSET = 1_000_003
"""Algorithm 1's new biases (and random features' biases) come from seed + this offset."""


@dataclass
class TwoLayerReLU:
    """Parameters of f(x) = Σ_j a_j·ReLU(w_j·x + b_j): W (m, d), b (m,), a (m,).

    Parameters
    ----------
    W : torch.Tensor, shape (m, d)
        First layer, neurons as rows.
    b : torch.Tensor, shape (m,)
        Biases.
    a : torch.Tensor, shape (m,)
        Second layer.

    Examples
    --------
    >>> import torch
    >>> net = symmetric_init(width=4, d=3, seed=0)     # partners j, j + 2 cancel: f ≡ 0
    >>> net.width, round(net(torch.randn(5, 3)).abs().max().item(), 6)
    (4, 0.0)
    >>> net = TwoLayerReLU(W=torch.eye(2), b=torch.zeros(2), a=torch.tensor([1.0, -1.0]))
    >>> net(torch.tensor([[3.0, 1.0], [-1.0, 2.0]]))   # ReLU(x_1) − ReLU(x_2)
    tensor([ 2., -2.])
    """

    W: torch.Tensor
    b: torch.Tensor
    a: torch.Tensor

    @property
    def width(self) -> int:
        return self.W.shape[0]

    def features(self, X: torch.Tensor) -> torch.Tensor:
        """ReLU(X Wᵀ + b), shape (n, m)."""
        return relu_features(X, self.W, self.b)

    def __call__(self, X: torch.Tensor, chunk_size: int = 32_768) -> torch.Tensor:
        """f(X) = ReLU(X Wᵀ + b)·a, computed chunk by chunk; shape (n,).

        Chunks of at most ``PREDICT_ROWS`` rows (``chunk_size`` if smaller): each chunk's
        features stay in cache until multiplied by a (a 32 768 × 1 000 chunk written out and
        read back costs 7× the time of 32 slices of 1 024 rows, same numbers row by row)."""
        rows = min(chunk_size, PREDICT_ROWS)
        features = ReluFeatureMap(self.W, self.b)
        pieces = [features(X[i : i + rows]) @ self.a for i in range(0, len(X), rows)]
        return torch.cat(pieces) if pieces else X.new_zeros(0)


PREDICT_ROWS = 1024  # rows of features formed at once by TwoLayerReLU.__call__


def relu_features(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """ReLU(X Wᵀ + b) for X (n, d), W (m, d), b (m,): shape (n, m) (one fused pass, in place)."""
    return torch.addmm(b, X, W.T).relu_()


def scratch(
    buffer: torch.Tensor | None, rows: int, columns: int, like: torch.Tensor
) -> torch.Tensor:
    """A (rows, columns) tensor like ``like`` (dtype, device): the first rows of ``buffer`` when
    it is big enough and of that kind, else a new one. Passes over chunks reuse one buffer: a
    fresh (c, m) tensor per chunk is a page-faulted allocation every time (glibc maps blocks
    above 32 MB anew: 70 ms for a 32 768 × 1 000 float32 chunk, as long as its product)."""
    if (
        buffer is None
        or buffer.shape[0] < rows
        or buffer.shape[1] != columns
        or buffer.dtype != like.dtype
        or buffer.device != like.device
    ):
        return torch.empty(rows, columns, dtype=like.dtype, device=like.device)
    return buffer[:rows]


class ReluFeatureMap:
    """X ↦ ReLU(X Wᵀ + b) for a pass over chunks, written into one reused buffer.

    Each result is valid until the next call (the pass consumes it first); the numbers are
    those of ``relu_features``, bit for bit.

    Examples
    --------
    >>> import torch
    >>> features = ReluFeatureMap(torch.eye(2), torch.zeros(2))
    >>> features(torch.tensor([[1.0, -2.0]]))
    tensor([[1., 0.]])
    """

    def __init__(self, W: torch.Tensor, b: torch.Tensor):
        self.W, self.b = W, b
        self._buffer: torch.Tensor | None = None

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        out = scratch(self._buffer, X.shape[0], self.W.shape[0], X)
        if self._buffer is None or out.data_ptr() != self._buffer.data_ptr():
            self._buffer = out
        return torch.addmm(self.b, X, self.W.T, out=out).relu_()


def symmetric_init(
    width: int,
    d: int,
    seed: int,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> TwoLayerReLU:
    """The paper's symmetric initialisation; a pure function of (width, d, seed).

    Drawn on the CPU in float64 from ``torch.Generator().manual_seed(seed)``, then cast and
    moved, so the same seed gives the same network on every device.

    Parameters
    ----------
    width : int
        m, even: neuron j and j + m/2 are partners (a opposite, w and b equal).
    d : int
        Input dimension; w_j ~ N(0, I_d/d).
    seed : int
        Seeds W and a.
    dtype : torch.dtype
        Of the returned tensors.
    device : str or torch.device
        Where they live.

    Returns
    -------
    TwoLayerReLU
        With b = 0 and a_j uniform on {−1, +1}.

    Examples
    --------
    >>> net = symmetric_init(width=6, d=4, seed=0)
    >>> bool(torch.equal(net.W[:3], net.W[3:])), bool(torch.equal(net.a[:3], -net.a[3:]))
    (True, True)
    >>> sorted(set(net.a.tolist())), float(net.b.abs().sum())
    ([-1.0, 1.0], 0.0)
    """
    width = check_width(width)
    half = width // 2
    generator = torch.Generator().manual_seed(int(seed))
    W_half = torch.randn(half, d, generator=generator, dtype=torch.float64) / d**0.5
    a_half = 2.0 * torch.randint(0, 2, (half,), generator=generator).to(torch.float64) - 1.0
    W = torch.cat([W_half, W_half])
    a = torch.cat([a_half, -a_half])
    b = torch.zeros(width, dtype=torch.float64)
    return TwoLayerReLU(
        W=W.to(device=device, dtype=dtype),
        b=b.to(device=device, dtype=dtype),
        a=a.to(device=device, dtype=dtype),
    )


def normal_biases(
    count: int, seed: int, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """b ~ N(0, 1)^count: Algorithm 1's step-3 biases, a pure function of (count, seed).

    Drawn on the CPU in float64 from ``torch.Generator().manual_seed(seed + BIAS_SEED_OFFSET)``
    (independent of the initialisation's generator), then cast and moved.
    """
    generator = torch.Generator().manual_seed(int(seed) + BIAS_SEED_OFFSET)
    b = torch.randn(count, generator=generator, dtype=torch.float64)
    return b.to(device=device, dtype=dtype)
