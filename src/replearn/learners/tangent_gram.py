"""FᵀF of a ReLU network's tangent features from their Khatri–Rao structure, without F.

For neuron j with x̃ = (x, 1), w̃_j = (w_j, b_j), gate g_j(x) = 1[w̃_j·x̃ ≥ 0] and a_j (±1 in
the paper; any real here), the NTK's tangent features ∂f/∂(a_j, w_j, b_j) (``learners.ntk``,
scaled by s = √2 for the paper's symmetric pairs, by the output scale c otherwise) are

    s·g_j·(w̃_j·x̃),   s·a_j·g_j·x̃          — the second is the d weight features and the bias,

(ReLU(z) = 1[z ≥ 0]·z: this structure is ReLU's; every other σ takes explicit features),
so every entry of FᵀF is a linear image of the (d + 1) × (d + 1) matrices

    H_jk = Σ_i g_ij·g_ik·x̃_i x̃_iᵀ :
    gated–gated  s²·a_j·a_k·H_jk,   ReLU–gated  s²·a_k·w̃_jᵀH_jk,   ReLU–ReLU  s²·w̃_jᵀH_jk w̃_k.

H is symmetric in (j, k) and in the pair of x̃-coordinates (α, β), so only the
E = (d + 1)(d + 2)/2 products q_e = x̃_α·x̃_β (α ≤ β) and the upper block triangle over j are
needed: one GEMM (g ⊙ q_e)ᵀ g per e and block row. With h = m/2 neurons that is
2·n·h²·E·(block triangle share) flops, against 2·n·p²·(block triangle share) for FᵀF itself
(p = h(d + 2)): at d = 10 (Fig. 1's NTK at width 1000) 66 against 144 products per pair of
neurons. Every GEMM is h-wide, so this pays off for many neurons (``worthwhile``); for a few
neurons in high dimension the plain FᵀF is the better-shaped product.

Predictions need no F either: for coefficients θ = (θ_ReLU, θ_W, θ_b),

    F(x)·θ = s·Σ_j g_j(x)·(x̃·v_j),   v_j = θ_ReLU,j·w̃_j + a_j·(θ_W,j, θ_b,j),

one (c, h)·(h, L(d + 1)) product for L coefficient vectors at once (``TangentPredictor``).
"""

from __future__ import annotations

import math

import torch

__all__ = ["TangentGram", "TangentPredictor"]


class TangentGram:
    """Running FᵀF, Fᵀr, rᵀr and n of the tangent features s·[g⊙(X̃W̃ᵀ), a·g⊗x, a·g] (float64).

    Parameters
    ----------
    W, b, a : torch.Tensor
        The h distinct neurons: first-layer rows (h, d), biases (h,), second layer (h,).
    block_columns : int
        Neuron blocks of about this many columns; only their upper block triangle is formed.
    scale : float or None
        s; None is √2 (the paper's pairs), with the exact factors 2 and √2 of before.

    Examples
    --------
    >>> import torch
    >>> from replearn.learners.tangent_gram import TangentGram
    >>> g = torch.Generator().manual_seed(0)
    >>> W, X = torch.randn(3, 2, generator=g), torch.randn(50, 2, generator=g)
    >>> b, a = torch.zeros(3), torch.tensor([1.0, -1.0, 1.0])
    >>> acc = TangentGram(W, b, a)
    >>> acc.add(X, torch.randn(50, generator=g))
    >>> gram, cross, mean_r2 = acc.moments()
    >>> gram.shape, cross.shape            # p = h·(d + 2) = 12
    (torch.Size([12, 12]), torch.Size([12]))
    """

    block_columns = 256
    min_neurons = 256  # ``worthwhile``: below this, FᵀF of the materialised features

    def __init__(
        self,
        W: torch.Tensor,
        b: torch.Tensor,
        a: torch.Tensor,
        block_columns: int | None = None,
        scale: float | None = None,
    ):
        h, d = W.shape
        self.scale = scale
        self.h, self.d = h, d
        self.W, self.b = W, b
        self.w_tilde = torch.cat([W, b[:, None]], dim=1).to(torch.float64)  # (h, d + 1)
        self.a = a.to(torch.float64)
        self.alpha_index, self.beta_index = torch.triu_indices(d + 1, d + 1, device=W.device)
        n_pairs = self.alpha_index.shape[0]
        device = W.device
        self.H = torch.zeros(n_pairs, h, h, dtype=torch.float64, device=device)
        self.V = torch.zeros(h, d + 1, dtype=torch.float64, device=device)  # Σ g_ij r_i x̃_i
        self.rr = 0.0
        self.n = 0
        width = block_columns or self.block_columns
        n_blocks = max(1, math.ceil(h / width))
        edges = [round(i * h / n_blocks) for i in range(n_blocks + 1)]
        self._blocks = list(zip(edges[:-1], edges[1:]))

    @classmethod
    def worthwhile(cls, h: int, d: int) -> bool:
        """Whether the structured product beats FᵀF: h-wide GEMMs, and fewer flops (d ≥ 1)."""
        return h >= cls.min_neurons

    def chunk_rows(self, max_entries: int = 2**24) -> int:
        """Rows per chunk: the gates and one weighted copy, (c, h) each, within max_entries."""
        return max(1, max_entries // self.h)

    @property
    def n_features(self) -> int:
        return self.h * (self.d + 2)

    def add(self, X: torch.Tensor, r: torch.Tensor) -> None:
        """Add the chunk's rows: X (c, d) and preprocessed labels r (c,), in the model's dtype."""
        W, b = self.W.to(X.dtype), self.b.to(X.dtype)
        gate = torch.addmm(b, X, W.T).ge_(0).to(X.dtype)  # g, (c, h)
        X_tilde = torch.cat([X, X.new_ones(X.shape[0], 1)], dim=1)  # (c, d + 1)
        products = X_tilde[:, self.alpha_index] * X_tilde[:, self.beta_index]  # q, (c, E)
        weighted = torch.empty_like(gate)
        for e in range(products.shape[1]):
            torch.mul(gate, products[:, e : e + 1], out=weighted)  # g ⊙ q_e
            for lo, hi in self._blocks:
                self.H[e, lo:hi, lo:] += (weighted[:, lo:hi].T @ gate[:, lo:]).to(torch.float64)
        self.V += (gate.T @ (X_tilde * r[:, None])).to(torch.float64)
        self.rr += float((r.to(torch.float64) ** 2).sum())
        self.n += X.shape[0]

    def moments(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        """(G, c, rᵀr/n) = (FᵀF/n, Fᵀr/n, mean r²) in the feature order of ``NTKRegression``:
        [ReLU (h), weights (h·d, neuron-major), biases (h)]."""
        if self.n == 0:
            raise ValueError("no samples were accumulated")
        h, d, d1 = self.h, self.d, self.d + 1
        device = self.H.device
        # H[α, β] = (H_jk[α, β])_jk for every (α, β): the upper (j, k) triangle mirrored
        H = torch.empty(d1, d1, h, h, dtype=torch.float64, device=device)
        for e, (alpha, beta) in enumerate(zip(self.alpha_index.tolist(), self.beta_index.tolist())):
            upper = self.H[e]
            H[alpha, beta] = torch.triu(upper) + torch.triu(upper, 1).T
            if alpha != beta:
                H[beta, alpha] = H[alpha, beta]
        signs, w = self.a, self.w_tilde
        relu_gated = torch.zeros(d1, h, h, dtype=torch.float64, device=device)  # [β, j, k]
        for alpha in range(d1):  # w̃_jᵀH_jk: Σ_α w̃_jα H_jk[α, β]
            relu_gated.add_(H[alpha] * w[:, alpha][None, :, None])
        relu_relu = (relu_gated * w.T[:, None, :]).sum(0)  # w̃_jᵀH_jk w̃_k
        relu_relu = torch.triu(relu_relu) + torch.triu(relu_relu, 1).T  # exactly symmetric
        sign_pairs = signs[:, None] * signs[None, :]  # a_j a_k
        H.mul_(sign_pairs)
        relu_gated.mul_(signs[None, None, :])  # a_k w̃_jᵀH_jk
        p, hd = self.n_features, h * d
        gram = torch.empty(p, p, dtype=torch.float64, device=device)
        weights, biases = slice(h, h + hd), slice(h + hd, p)  # rows h + j·d + α, h + h·d + j
        gram[:h, :h] = relu_relu
        gram[:h, weights].unflatten(1, (h, d)).copy_(relu_gated[:d].permute(1, 2, 0))
        gram[:h, biases] = relu_gated[d]
        gram[h:, :h] = gram[:h, h:].T
        block = gram[weights, weights].unflatten(0, (h, d)).unflatten(2, (h, d))
        block.copy_(H[:d, :d].permute(2, 0, 3, 1))  # (j, α, k, β)
        gram[weights, biases].unflatten(0, (h, d)).copy_(H[:d, d].permute(1, 0, 2))
        gram[biases, weights] = gram[weights, biases].T
        gram[biases, biases] = H[d, d]
        gram.mul_((2.0 if self.scale is None else self.scale**2) / self.n)
        neuron = torch.arange(h, device=device)
        order = torch.empty(h, d1, dtype=torch.long, device=device)
        order[:, :d] = h + neuron[:, None] * d + torch.arange(d, device=device)
        order[:, d] = h + hd + neuron
        order = order.reshape(-1)
        cross = torch.empty(p, dtype=torch.float64, device=device)
        cross[:h] = (w * self.V).sum(1)
        cross[order] = (signs[:, None] * self.V).reshape(-1)
        cross.mul_((math.sqrt(2.0) if self.scale is None else self.scale) / self.n)
        return gram, cross, self.rr / self.n


class TangentPredictor:
    """F(X)·θ_l for each row θ_l of ``coefficients`` (L, p), in float64, without forming F.

    Parameters
    ----------
    W, b, a : torch.Tensor
        The h distinct neurons, as for ``TangentGram``.
    coefficients : torch.Tensor
        (L, p) or (p,), p = h(d + 2), in the feature order of ``NTKRegression``.
    scale : float or None
        s of the features; None is √2 (the paper's pairs).

    Examples
    --------
    >>> import torch
    >>> from replearn.learners.tangent_gram import TangentPredictor
    >>> W, b, a = torch.eye(2), torch.zeros(2), torch.tensor([1.0, -1.0])
    >>> theta = torch.zeros(8, dtype=torch.float64)
    >>> theta[0] = 1.0                       # the ReLU feature of neuron 0: √2·ReLU(x₁)
    >>> TangentPredictor(W, b, a, theta)(torch.tensor([[2.0, 5.0], [-1.0, 5.0]]))[:, 0]
    tensor([2.8284, 0.0000], dtype=torch.float64)
    """

    def __init__(self, W, b, a, coefficients: torch.Tensor, scale: float | None = None):
        h, d = W.shape
        theta = coefficients.to(torch.float64)
        theta = theta[None, :] if theta.dim() == 1 else theta
        self.W, self.b, self.h, self.d = W, b, h, d
        relu, weights = theta[:, :h], theta[:, h : h * (d + 1)].reshape(-1, h, d)
        gated = torch.cat([weights, theta[:, h * (d + 1) :, None]], dim=2)  # (L, h, d + 1)
        w_tilde = torch.cat([W, b[:, None]], dim=1).to(torch.float64)
        v = relu[:, :, None] * w_tilde[None] + a.to(torch.float64)[None, :, None] * gated
        self.n_outputs = v.shape[0]
        factor = math.sqrt(2.0) if scale is None else scale
        self.v = v.permute(1, 0, 2).reshape(h, -1).mul_(factor)  # (h, L(d + 1))

    def chunk_rows(self, max_entries: int = 2**22) -> int:
        """Rows per chunk: the float64 gates and products within max_entries each."""
        return max(1, max_entries // max(self.h, self.v.shape[1]))

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        """(c, L) float64 for X (c, d) in the model's dtype (the gates are computed in it)."""
        gate = torch.addmm(self.b.to(X.dtype), X, self.W.to(X.dtype).T).ge_(0)
        weighted = gate.to(torch.float64) @ self.v  # Σ_j g_j v_j, (c, L(d + 1))
        X_tilde = torch.cat(
            [X.to(torch.float64), X.new_ones(X.shape[0], 1, dtype=torch.float64)], 1
        )
        return (weighted.view(X.shape[0], self.n_outputs, self.d + 1) * X_tilde[:, None, :]).sum(2)
