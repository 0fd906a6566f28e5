"""The two-layer model of the learners that step or freeze the first layer (``OneStepNetwork``,
``GiantStepNetwork``, ``RandomFeatures``), and the first layer's true gradient.

The network is f(x) = c·Σ_j a_j·σ(w_j·x + b_j) (``replearn.network``). Each of these learners
takes the same six parameters, checked here once:

    activation    σ: "relu" (the paper's), any name of ``replearn.activations`` or (σ, σ′)
    output_scale  c: 1 (the paper's), "1/sqrt(m)", "1/m" or a number > 0
    first_layer   W⁰: "gaussian" (N(0, I_d/d), the paper's), "unit_rows", "orthogonal" or (m, d)
    second_layer  a: "paper" (±1 in symmetric pairs, f⁰ ≡ 0), "signs", "gaussian", "constant",
                  "hypercube" or (m,)
    directions    None, a MultiIndexTarget or an (r, d) array: the span that "orthogonal" rows
                  avoid (the experiment engine fills it from the run's target)
    biases        "paper": b = 0 during the step(s), then b ~ N(0, 1) for the head (the
                  paper's step 3); "none": b = 0 everywhere (Cui et al. 2024, Dandi et al.
                  2023/2024); "normal": b ~ N(0, 1) from the start, kept during the step(s)
                  and for the head. The N(0, 1) draw is ``network.normal_biases(m, seed)`` in
                  every case.

Width: an even integer ≥ 2 with ``second_layer="paper"`` (partners j, j + m/2), any integer
≥ 1 otherwise.

With the loss L = (1/n)Σ_i (f(x_i) − s_i)² (no ½) the first layer's gradient is

    ∇_{w_j} L = (2c/n)·a_j·Σ_i (f(x_i) − s_i)·σ′(w_j·x_i + b_j)·x_i
              = (2c/n)·a_j·G_j,        G_j = Σ_i r_i·σ′(z_ij)·x_i,  r = f(x) − s,

``first_layer_gradient_sum`` streams G chunk by chunk (float64 sums of per-chunk products in
the model's dtype). The paper's model (ReLU, symmetric pairs, b = 0 at the step) has its own
exact and cheaper passes in ``one_step``/``giant_step``; every other model goes through this one.
"""

from __future__ import annotations

import torch

from replearn.activations import Activation, activation_spec, resolve_activation
from replearn.network import (
    TwoLayerNetwork,
    directions_spec,
    first_layer_spec,
    initial_network,
    normal_biases,
    output_scale_spec,
    resolve_output_scale,
    second_layer_spec,
)
from replearn.targets import MultiIndexTarget
from replearn.validation import check_width, choice, network_width

__all__ = [
    "BIASES",
    "MODEL_PARAMETER_CHECKS",
    "NetworkModel",
    "biases_spec",
    "directions_spec",
    "first_layer_gradient_sum",
    "gradient_step",
    "model_width",
]

BIASES = ("paper", "none", "normal")
"""What the biases are: during the step(s) / for the head — paper: 0 / N(0, 1); none: 0 / 0;
normal: N(0, 1) / the same N(0, 1)."""

biases_spec = choice(*BIASES)


model_width = network_width
"""The check of ``width`` (``validation.network_width``): an integer ≥ 1, even ≥ 2 with
second_layer='paper' (checked with the second layer)."""


def direction_rows(value, d: int, name: str) -> torch.Tensor | None:
    """The (r, d) float64 CPU rows of a checked ``directions``-like value (None stays None)."""
    if value is None:
        return None
    U = value.U if isinstance(value, MultiIndexTarget) else torch.as_tensor(value)
    U = U.to(torch.float64).cpu()
    if U.shape[1] != d:
        what = "rows" if name == "directions" else "directions"
        raise ValueError(f"{name} has {what} of dimension {U.shape[1]}, the data d = {d}")
    return U


MODEL_PARAMETER_CHECKS = {
    "activation": activation_spec,
    "output_scale": output_scale_spec,
    "first_layer": first_layer_spec,
    "second_layer": second_layer_spec,
    "directions": directions_spec,
    "biases": biases_spec,
}
"""The checks of the model's parameters, shared by every learner that takes them."""


def _is(value, name: str) -> bool:
    return isinstance(value, str) and value == name


class NetworkModel:
    """The model parameters' meaning, for a learner that has ``width``, ``seed``, ``dtype``,
    ``device`` and the six parameters of ``MODEL_PARAMETER_CHECKS``."""

    def _check_width_rule(self, values) -> None:
        """Width even with the paper's paired second layer (today's words), else ≥ 1."""
        if _is(values["second_layer"], "paper"):
            check_width(values["width"])

    def _activation(self) -> Activation:
        return resolve_activation(self.activation)

    def _scale(self) -> float:
        """c resolved at this width."""
        return resolve_output_scale(self.output_scale, self.width)

    def _paired(self) -> bool:
        """Symmetric ± pairs at init (second_layer='paper'): f⁰ ≡ 0."""
        return _is(self.second_layer, "paper")

    def _paper_step(self) -> bool:
        """The step's model is the paper's: ReLU, symmetric pairs and b = 0 during the step
        (c may differ: it only scales the step), so the exact m/2-row passes apply."""
        return self._activation().is_relu and self._paired() and not _is(self.biases, "normal")

    def _normal_biases(self) -> torch.Tensor:
        return normal_biases(self.width, self.seed, self._dtype, self._device)

    def _zero_biases(self) -> torch.Tensor:
        return torch.zeros(self.width, dtype=self._dtype, device=self._device)

    def _step_biases(self) -> torch.Tensor:
        """b during the step(s): 0, or N(0, 1) for "normal" — shared by partners j, j + m/2
        with the paper's paired second layer (b_{j+m/2} = b_j, so f⁰ ≡ 0 still holds)."""
        if not _is(self.biases, "normal"):
            return self._zero_biases()
        b = self._normal_biases()
        if self._paired():
            half = self.width // 2
            b = torch.cat([b[:half], b[:half]])
        return b

    def _head_biases(self) -> torch.Tensor:
        """b of the head: N(0, 1) (``normal_biases``, "paper"), 0 ("none"), or the steps'
        own ("normal")."""
        if _is(self.biases, "none"):
            return self._zero_biases()
        return self._step_biases() if _is(self.biases, "normal") else self._normal_biases()

    def _initial_network(self, d: int) -> TwoLayerNetwork:
        """θ⁰ = (W⁰, b, a, σ, c), b the biases of the step(s) (N(0, 1) for "normal", else 0)."""
        net = initial_network(
            self.width, d, self.seed, self.first_layer, self.second_layer,
            self._activation(), self._scale(), direction_rows(self.directions, d, "directions"),
            self._dtype, self._device,
        )  # fmt: skip
        net.b = self._step_biases()
        return net


def first_layer_gradient_sum(
    source, n: int, start: int, network: TwoLayerNetwork, labels, chunk_size: int, dtype, device,
    on_chunk=None,
) -> torch.Tensor:  # fmt: skip
    """G_j = Σ_i (f(x_i) − s_i)·σ′(w_j·x_i + b_j)·x_i over samples start…start+n−1, so that
    ∇_{w_j} L = (2c/n)·a_j·G_j.

    Parameters
    ----------
    source : DataStream or ArraySource
        The samples (chunks of (X, y)).
    n, start : int
        Samples start…start+n−1.
    network : TwoLayerNetwork
        θ = (W, b, a, σ, c) at which the gradient is taken (used in ``dtype`` on ``device``).
    labels : callable
        (X, y) ↦ s, the step's labels of a chunk.
    chunk_size : int
        Samples per chunk.
    dtype, device
        Of the per-chunk products (the sums are float64).
    on_chunk : callable, optional
        Called with (X, r) for each chunk, r = f(x) − s (diagnostics).

    Returns
    -------
    torch.Tensor
        G, float64 (m, d).
    """
    W, b, a = (t.to(device=device, dtype=dtype) for t in (network.W, network.b, network.a))
    activation, scale = network.activation, network.output_scale
    total = torch.zeros(W.shape, dtype=torch.float64, device=device)
    for X, y, *_ in source.chunks(n, chunk_size, start=start):
        X = X.to(device=device, dtype=dtype)
        s = labels(X, y.to(device=device, dtype=dtype))
        Z = torch.addmm(b, X, W.T)  # pre-activations (c, m)
        r = scale * (activation(Z) @ a) - s
        total += ((activation.derivative(Z) * r[:, None]).T @ X).to(torch.float64)
        if on_chunk is not None:
            on_chunk(X, r)
    return total


def gradient_step(
    W: torch.Tensor, gradient: torch.Tensor, eta: float, decay: float, cancels: bool
) -> torch.Tensor:
    """W − η(∇L + λW); exactly −η∇L when η·λ = 1 (the paper's weight decay cancels W).

    Parameters
    ----------
    W, gradient : torch.Tensor
        W and ∇_W L, same shape.
    eta, decay : float
        η and λ.
    cancels : bool
        Whether η·λ = 1 (then W is dropped rather than subtracted from itself).

    Returns
    -------
    torch.Tensor
    """
    if cancels:
        return -eta * gradient
    return W - eta * (gradient + decay * W)
