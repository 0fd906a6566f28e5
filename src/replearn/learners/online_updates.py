"""One step of online SGD for R independent replicas at once: the gradients and the updates.

The model of every replica is f(x) = c·Σ_j a_j·σ(w_j·x): W (R, m, d) is trained, the second
layer a (m,) and the output scale c are fixed (a single neuron: m = 1, a = 1, c = 1; a
committee: m = K). A step sees a minibatch X (R, B, d), y (R, B) — replica r its own samples
— and the loss is averaged over the batch (no ½, the project's convention):

    square        ℓ = (1/B)·Σ_b (f(x_b) − y_b)²
    correlation   ℓ = −(1/B)·Σ_b y_b·f(x_b)

so the row gradient is G_j = Σ_b ∂ℓ/∂f_b · c·a_j·σ′(w_j·x_b)·x_b. Updates:

    free          w_j ← w_j − η·G_j
    spherical     w_j ← (w_j − η·G_j^⊥)/‖w_j − η·G_j^⊥‖,   G_j^⊥ = G_j − (G_j·w_j)·w_j

(Ben Arous, Gheissari & Jagannath 2021: the Riemannian gradient, then back to the sphere.)

**Smoothing** (Damian, Nichani, Ge & Lee 2023, spherical only). The loss at w is replaced by
its average over w′ = (w + λz)/√(1 + λ²), z uniform on the unit sphere of w^⊥ (one z per
neuron, independent). Given x, z·x = s·t with s² = ‖x‖² − (w·x)² and t the first coordinate of
a uniform point of S^{d−2}, whose moments are E t^{2l} = Π_{i<l} (2i + 1)/(d − 1 + 2i). So for a
polynomial P the smoothed value is a polynomial in a = w·x and q = ‖x‖² − a²:

    S[P](a) = E_t P((a + λ·√q·t)/√(1 + λ²))
            = Σ_p P_p·(1 + λ²)^{−p/2}·Σ_l C(p, 2l)·a^{p−2l}·λ^{2l}·q^l·E t^{2l}

and, since S[P] depends on w only through a = w·x (the law of z turns with w), its Riemannian
gradient is S[P]′(a)·(x − a·w), with d/da acting on q = ‖x‖² − a² too. The smoothed losses
(given x the z_j are independent, so E[σ(w′_j·x)σ(w′_k·x)] = S[σ]_j·S[σ]_k for j ≠ k):

    correlation   ℓ_λ = −(1/B)·Σ_b y_b·c·Σ_j a_j·S[σ]_bj
    square        ℓ_λ = (1/B)·Σ_b [(c·Σ_j a_j S[σ]_bj − y_b)² + c²·Σ_j a_j²·(S[σ²]_bj − S[σ]_bj²)]

**closed form** for a polynomial σ ("linear", "quadratic", "hermite:k"); **Monte Carlo**
otherwise: the same Riemannian gradient with S[P]′(a) replaced by the unbiased average over
``samples`` draws of t of P′(u)·(1 − λ·t·a/√q)/√(1 + λ²), u = (a + λ√q·t)/√(1 + λ²) (the
derivative of the reparametrised u in a at fixed t), and for the square loss the residual
taken at the same draws (F′ = c·Σ_j a_j σ(u_j) over one joint draw of every neuron's t).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from replearn import hermite
from replearn.activations import Activation

__all__ = [
    "SmoothedPolynomial",
    "polynomial_of",
    "sphere_coordinate_moments",
    "online_weights",
    "online_gradient",
    "smoothed_weights",
    "smoothed_gradient",
    "monte_carlo_smoothed_weights",
    "monte_carlo_smoothed_gradient",
    "gradient_from_weights",
    "apply_step",
    "batch_gram",
    "factored_step",
    "overlaps",
]


def polynomial_of(activation: Activation) -> list[float] | None:
    """Monomial coefficients of σ when σ is a polynomial ("linear", "quadratic",
    "hermite:k"), else None (smoothing then goes by Monte Carlo).

    Examples
    --------
    >>> from replearn.activations import resolve_activation
    >>> polynomial_of(resolve_activation("hermite:3")), polynomial_of(resolve_activation("relu"))
    ([0.0, -3.0, 0.0, 1.0], None)
    """
    if activation.name == "linear":
        return [0.0, 1.0]
    if activation.name == "quadratic":
        return [0.0, 0.0, 1.0]
    if activation.name.startswith("hermite:"):
        k = int(activation.name.removeprefix("hermite:"))
        return [float(c) for c in hermite.hermite_to_monomial([0] * k + [1])]
    return None


def sphere_coordinate_moments(dimension: int, max_order: int) -> list[float]:
    """E t^{2l}, l = 0…L, for t the first coordinate of a uniform point of S^{D−1} ⊂ R^D:
    Π_{i<l} (2i + 1)/(D + 2i).

    Examples
    --------
    >>> sphere_coordinate_moments(3, 2)          # E t² = 1/3, E t⁴ = 3/15
    [1.0, 0.3333333333333333, 0.2]
    """
    moments = [1.0]
    for i in range(max_order):
        moments.append(moments[-1] * (2 * i + 1) / (dimension + 2 * i))
    return moments


@dataclass(frozen=True)
class SmoothedPolynomial:
    """S[P](a, q) = Σ_{e,l} K_{e,l}·a^e·q^l, the smoothed polynomial P at radius λ in R^d.

    Parameters
    ----------
    terms : tuple of (e, l, K)
        The non-zero coefficients.

    Examples
    --------
    >>> S = SmoothedPolynomial.build([0.0, 0.0, 1.0], smoothing=1.0, d=4)  # P(u) = u²
    >>> a, q = torch.tensor([0.5], dtype=torch.float64), torch.tensor([2.0], dtype=torch.float64)
    >>> round(float(S.value(a, q)), 12)   # (a² + λ²·q·E t²)/(1 + λ²) = (0.25 + 2/3)/2
    0.458333333333
    """

    terms: tuple[tuple[int, int, float], ...]

    @classmethod
    def build(cls, monomial: list[float], smoothing: float, d: int) -> SmoothedPolynomial:
        """The coefficients K_{e,l} for P = Σ_p P_p u^p, radius λ = ``smoothing``, dimension d."""
        degree = len(monomial) - 1
        moments = sphere_coordinate_moments(d - 1, degree // 2)
        rho = (1.0 + smoothing**2) ** -0.5
        table: dict[tuple[int, int], float] = {}
        for p, coefficient in enumerate(monomial):
            if coefficient == 0:
                continue
            for l in range(p // 2 + 1):  # noqa: E741 (the paper's index)
                value = coefficient * rho**p * math.comb(p, 2 * l) * smoothing ** (2 * l)
                table[(p - 2 * l, l)] = table.get((p - 2 * l, l), 0.0) + value * moments[l]
        return cls(tuple((e, l, k) for (e, l), k in sorted(table.items()) if k != 0.0))

    def value(self, a: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """S[P] at (a, q), elementwise."""
        out = torch.zeros_like(a)
        for e, l, k in self.terms:  # noqa: E741
            out = out + k * a**e * q**l
        return out

    def derivative(self, a: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """d/da S[P](a, ‖x‖² − a²) = Σ K_{e,l}·(e·a^{e−1}·q^l − 2l·a^{e+1}·q^{l−1})."""
        out = torch.zeros_like(a)
        for e, l, k in self.terms:  # noqa: E741
            if e:
                out = out + (k * e) * a ** (e - 1) * q**l
            if l:
                out = out - (2 * k * l) * a ** (e + 1) * q ** (l - 1)
        return out


def _loss_slope(f: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """∂ℓ/∂f_b for the batch mean: 2(f − y)/B (square) or −y/B (correlation); (R, B)."""
    batch = y.shape[-1]
    return (2.0 / batch) * (f - y) if loss == "square" else y * (-1.0 / batch)


def online_weights(
    W: torch.Tensor,
    a: torch.Tensor,
    c: float,
    activation: Activation,
    X: torch.Tensor,
    y: torch.Tensor,
    loss: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradient in factored form: (κ, A) with A_bj = w_j·x_b and κ_bj = ∂ℓ/∂f_b·c·a_j·σ′(A_bj),
    so that G_j = Σ_b κ_bj·x_b (``gradient_from_weights``); both (R, B, m).

    Parameters
    ----------
    W : tensor (R, m, d)
    a : tensor (m,)
    c : float
    activation : Activation
    X : tensor (R, B, d)
    y : tensor (R, B)
    loss : {"square", "correlation"}

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        κ and A, each (R, B, m).
    """
    pre = torch.bmm(X, W.transpose(1, 2))  # (R, B, m)
    if loss == "square":
        f = c * (activation(pre) @ a)
        slope = _loss_slope(f, y, loss)
    else:
        slope = _loss_slope(None, y, loss)
    return slope[:, :, None] * (c * a) * activation.derivative(pre), pre


def online_gradient(
    W: torch.Tensor,
    a: torch.Tensor,
    c: float,
    activation: Activation,
    X: torch.Tensor,
    y: torch.Tensor,
    loss: str,
) -> torch.Tensor:
    """G = ∇_W ℓ on the batch: G_j = Σ_b ∂ℓ/∂f_b·c·a_j·σ′(w_j·x_b)·x_b; shape (R, m, d).

    Parameters
    ----------
    W : tensor (R, m, d)
    a : tensor (m,)
    c : float
    activation : Activation
    X : tensor (R, B, d)
    y : tensor (R, B)
    loss : {"square", "correlation"}

    Returns
    -------
    torch.Tensor
        (R, m, d).
    """
    weights, _ = online_weights(W, a, c, activation, X, y, loss)
    return gradient_from_weights(weights, X)


def gradient_from_weights(
    weights: torch.Tensor, X: torch.Tensor, pre: torch.Tensor | None = None, W=None
) -> torch.Tensor:
    """Σ_b κ_bj·x_b, or with ``pre`` and ``W`` its Riemannian form Σ_b κ_bj·(x_b − A_bj·w_j);
    (R, m, d).

    Parameters
    ----------
    weights : tensor (R, B, m)
        κ.
    X : tensor (R, B, d)
    pre : tensor (R, B, m), optional
        A = X·Wᵀ.
    W : tensor (R, m, d), optional

    Returns
    -------
    torch.Tensor
    """
    euclidean = torch.bmm(weights.transpose(1, 2), X)
    if pre is None:
        return euclidean
    return euclidean - (weights * pre).sum(1)[:, :, None] * W


def smoothed_weights(
    W: torch.Tensor,
    a: torch.Tensor,
    c: float,
    sigma: SmoothedPolynomial,
    sigma_squared: SmoothedPolynomial | None,
    X: torch.Tensor,
    y: torch.Tensor,
    loss: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(κ, A) of the smoothed loss ℓ_λ, closed form (polynomial σ): its Riemannian gradient is
    Σ_b κ_bj·(x_b − A_bj·w_j); each (R, B, m).

    ``sigma`` = S[σ], ``sigma_squared`` = S[σ²] (square loss only), built for the same λ, d.
    Rows of W must have norm 1.

    Parameters
    ----------
    W : tensor (R, m, d)
    a : tensor (m,)
    c : float
    sigma, sigma_squared : SmoothedPolynomial
    X : tensor (R, B, d)
    y : tensor (R, B)
    loss : {"square", "correlation"}

    Returns
    -------
    (torch.Tensor, torch.Tensor)
    """
    pre = torch.bmm(X, W.transpose(1, 2))  # a_bj = w_j·x_b, (R, B, m)
    q = (X * X).sum(-1, keepdim=True) - pre * pre  # ‖x_b‖² − a_bj²
    smooth, slope_in_a = sigma.value(pre, q), sigma.derivative(pre, q)
    batch = y.shape[-1]
    if loss == "correlation":
        return (y * (-1.0 / batch))[:, :, None] * (c * a) * slope_in_a, pre
    residual = c * (smooth @ a) - y  # (R, B)
    squared_slope = sigma_squared.derivative(pre, q)
    weights = (2.0 / batch) * residual[:, :, None] * (c * a) * slope_in_a + (1.0 / batch) * (
        c * c * a * a
    ) * (squared_slope - 2.0 * smooth * slope_in_a)
    return weights, pre


def smoothed_gradient(
    W: torch.Tensor,
    a: torch.Tensor,
    c: float,
    sigma: SmoothedPolynomial,
    sigma_squared: SmoothedPolynomial | None,
    X: torch.Tensor,
    y: torch.Tensor,
    loss: str,
) -> torch.Tensor:
    """The Riemannian gradient of the smoothed loss ℓ_λ, closed form (polynomial σ); (R, m, d).

    ``sigma`` = S[σ], ``sigma_squared`` = S[σ²] (square loss only), built for the same λ, d.
    Rows of W must have norm 1 (``smoothed_weights``).
    """
    weights, pre = smoothed_weights(W, a, c, sigma, sigma_squared, X, y, loss)
    return gradient_from_weights(weights, X, pre, W)


def monte_carlo_smoothed_weights(
    W: torch.Tensor,
    a: torch.Tensor,
    c: float,
    activation: Activation,
    smoothing: float,
    t: torch.Tensor,
    X: torch.Tensor,
    y: torch.Tensor,
    loss: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(κ, A) of an unbiased Monte Carlo estimate of the smoothed gradient, for any σ.

    ``t`` (S, R, B, m): S independent draws of the sphere coordinate of every (replica, sample,
    neuron). Rows of W must have norm 1.

    Parameters
    ----------
    W : tensor (R, m, d)
    a : tensor (m,)
    c : float
    activation : Activation
    smoothing : float
        λ.
    t : tensor (S, R, B, m)
    X : tensor (R, B, d)
    y : tensor (R, B)
    loss : {"square", "correlation"}

    Returns
    -------
    (torch.Tensor, torch.Tensor)
    """
    pre = torch.bmm(X, W.transpose(1, 2))  # (R, B, m)
    root_q = ((X * X).sum(-1, keepdim=True) - pre * pre).clamp_min(0.0).sqrt()
    scale = (1.0 + smoothing**2) ** -0.5
    u = (pre + smoothing * root_q * t) * scale  # (S, R, B, m)
    # ∂u/∂a at fixed t: (1 + λ·t·∂√q/∂a)/√(1 + λ²), ∂√q/∂a = −a/√q
    du = (1.0 - smoothing * t * pre / root_q.clamp_min(torch.finfo(X.dtype).tiny)) * scale
    slope_in_a = activation.derivative(u) * du  # σ′(u)·∂u/∂a
    batch = y.shape[-1]
    if loss == "correlation":
        return (y * (-1.0 / batch))[:, :, None] * (c * a) * slope_in_a.mean(0), pre
    residual = c * (activation(u) @ a) - y  # (S, R, B), one joint draw per s
    return ((2.0 / batch) * residual[..., None] * (c * a) * slope_in_a).mean(0), pre


def monte_carlo_smoothed_gradient(
    W: torch.Tensor,
    a: torch.Tensor,
    c: float,
    activation: Activation,
    smoothing: float,
    t: torch.Tensor,
    X: torch.Tensor,
    y: torch.Tensor,
    loss: str,
) -> torch.Tensor:
    """An unbiased Monte Carlo estimate of ``smoothed_gradient`` for any σ; (R, m, d)
    (``monte_carlo_smoothed_weights``)."""
    weights, pre = monte_carlo_smoothed_weights(W, a, c, activation, smoothing, t, X, y, loss)
    return gradient_from_weights(weights, X, pre, W)


def apply_step(W: torch.Tensor, G: torch.Tensor, lr: float, spherical: bool) -> torch.Tensor:
    """w ← w − η·G (free), or w ← (w − η·G^⊥)/‖·‖ with G^⊥ = G − (G·w)·w (spherical).

    A Riemannian G (the smoothed gradients) is already orthogonal to w: the projection
    leaves it unchanged up to rounding. (The pass uses ``factored_step``: the same update
    from (κ, A) without forming G.)
    """
    if not spherical:
        return W - lr * G
    tangent = G - (G * W).sum(-1, keepdim=True) * W
    moved = W - lr * tangent
    return moved / torch.linalg.vector_norm(moved, dim=-1, keepdim=True)


def batch_gram(X: torch.Tensor) -> torch.Tensor:
    """K = X·Xᵀ of every batch: (…, B, d) ↦ (…, B, B) (B = 1: the squared norms ‖x‖²; one
    batched product, no temporary the size of X).

    Parameters
    ----------
    X : tensor (..., B, d)

    Returns
    -------
    torch.Tensor (..., B, B)
    """
    return torch.matmul(X, X.transpose(-1, -2))


def factored_step(
    W: torch.Tensor,
    X: torch.Tensor,
    weights: torch.Tensor,
    pre: torch.Tensor,
    lr: float,
    spherical: bool,
    gram: torch.Tensor | None = None,
) -> torch.Tensor:
    """One update from the factored gradient G_j = Σ_b κ_bj·x_b (``weights`` κ, ``pre`` A = X·Wᵀ),
    without forming G (three passes over W instead of nine):

        free        w_j ← w_j − η·Σ_b κ_bj x_b
        spherical   w_j ← [(1 + η·g_j)·w_j − η·Σ_b κ_bj x_b] / √(1 + η²·(κ_jᵀ K κ_j − g_j²))

    with g_j = Σ_b κ_bj A_bj = G_j·w_j and K = X·Xᵀ (``gram``, from ``batch_gram``). The
    spherical line is ``apply_step``'s (w − η·G^⊥)/‖w − η·G^⊥‖ for a unit w: G^⊥ = G − g·w, and
    ‖w − η·G^⊥‖² = 1 + η²·‖G^⊥‖² with ‖G^⊥‖² = ‖G‖² − g² = κᵀKκ − g². It is the same update
    for the Riemannian (smoothed) gradients Σ_b κ_bj (x_b − A_bj w_j), whose G^⊥ is the same.
    Rows of W must have norm 1 when ``spherical`` (the pass renormalises them exactly after
    every chunk, so rounding does not accumulate).

    Parameters
    ----------
    W : tensor (R, m, d)
    X : tensor (R, B, d)
    weights, pre : tensor (R, B, m)
    lr : float
    spherical : bool
    gram : tensor (R, B, B), optional
        K; computed when not given (spherical only).

    Returns
    -------
    torch.Tensor (R, m, d)
    """
    single = weights.shape[1] == 1  # B = 1, the common case: elementwise ops beat bmm's
    if not spherical:
        if single:
            return torch.addcmul(W, weights.transpose(1, 2), X, value=-lr)
        return torch.baddbmm(W, weights.transpose(1, 2), X, alpha=-lr)
    if gram is None:
        gram = batch_gram(X)
    if single:  # ‖G^⊥‖² = κ²·(‖x‖² − A²)
        kappa, A = weights[:, 0], pre[:, 0]  # (R, m)
        along = kappa * A
        tangent_squared = torch.addcmul(gram[:, 0], A, A, value=-1.0).mul_(kappa).mul_(kappa)
    else:
        along = (weights * pre).sum(1)  # g (R, m)
        norm_squared = (weights * torch.bmm(gram, weights)).sum(1)  # κᵀKκ
        tangent_squared = (norm_squared - along * along).clamp_min_(0.0)
    inverse_norm = tangent_squared.mul_(lr * lr).add_(1.0).rsqrt_()  # (R, m)
    keep = along.mul(lr).add_(1.0).mul_(inverse_norm)[:, :, None]
    moved = (weights * (inverse_norm * -lr)[:, None, :]).transpose(1, 2)  # (R, m, B)
    if single:
        return torch.mul(W, keep).addcmul_(moved, X)
    return torch.baddbmm(W * keep, moved, X)


def overlaps(W: torch.Tensor, U: torch.Tensor, unit_rows: bool = False) -> torch.Tensor:
    """Per neuron, the share of w_j in span U: ‖U·w_j‖/‖w_j‖ (r > 1), or the signed cosine
    u·w_j/‖w_j‖ (r = 1); shape (R, m). ``unit_rows``: ‖w_j‖ = 1 already (spherical SGD)."""
    projection = W @ U.T  # (R, m, r)
    if not unit_rows:
        projection = projection / torch.linalg.vector_norm(W, dim=-1, keepdim=True)
    return projection[..., 0] if U.shape[0] == 1 else projection.norm(dim=-1)


def sphere_coordinates(
    generator: np.random.Generator, shape: tuple[int, ...], d: int
) -> np.ndarray:
    """Draws of t, the first coordinate of a uniform point of S^{d−2} (the unit sphere of w^⊥):
    t = ±√β with β ~ Beta(1/2, (d − 2)/2) and a fair sign."""
    beta = generator.beta(0.5, (d - 2) / 2.0, size=shape)
    signs = generator.integers(0, 2, size=shape) * 2.0 - 1.0
    return signs * np.sqrt(beta)
