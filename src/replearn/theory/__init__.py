"""What the theory predicts for a target — thresholds and plateaus to overlay on measurements.

- Theorem 1 (Algorithm 1): n ≳ d²·κ²·r samples suffice (constants and logs dropped), with
  width m ≳ r^p; the sample-complexity exponent in d is 2.
- Kernels (random features, NTK; Ghorbani et al. 2019/2020): with d^k ≤ n < d^{k+1} samples a
  rotation-invariant kernel learns only the degree-≤k Hermite part of f*, so its excess risk
  is the energy of f* above degree k (the "staircase"); the exponent is the smallest k whose
  remaining energy is below the risk threshold (= p for a full-degree target).
- The population first step of neuron j is ≈ −2·a_j·H·w_j/√(2π): it lands in span(H) = S*.

The field's sharper predictions live in submodules, re-exported here:

- ``one_step_asymptotics`` (module ``replearn.theory.one_step_asymptotics``): the test error
  of a ridge head after one giant step in the proportional regime (Cui et al. 2024).
- ``weak_recovery_threshold``, ``spectral_threshold``, ``spectral_overlap``,
  ``optimal_spectral_transform`` (module ``replearn.theory.weak_recovery``): weak recovery
  of a single-index direction (Mondelli & Montanari 2018; Lu & Li 2017).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from replearn.quadrature import MAX_POINTS, QuadratureSizeError
from replearn.quadrature import normal_gauss_hermite as _normal_gauss_hermite
from replearn.quadrature import tensor_grid as _tensor_grid
from replearn.targets import MultiIndexTarget
from replearn.theory.one_step_asymptotics import OneStepAsymptotics, one_step_asymptotics
from replearn.theory.online_ode import OverlapCurve, link_coefficients, online_overlap_ode
from replearn.theory.weak_recovery import (
    optimal_spectral_transform,
    spectral_overlap,
    spectral_threshold,
    weak_recovery_threshold,
)

__all__ = [
    "QuadratureSizeError",
    "online_overlap_ode",
    "OverlapCurve",
    "link_coefficients",
    "one_step_threshold",
    "one_step_width",
    "kernel_learnable_degree",
    "kernel_plateau",
    "kernel_staircase",
    "kernel_threshold",
    "best_degree_risk",
    "predicted_exponents",
    "population_step_direction",
    "first_hermite_coefficients",
    "first_step_slope",
    "summary",
    "format_summary",
    "population_label_statistics",
    "transformed_latent_hessian",
    "transformed_hessian",
    "label_transform_report",
    "format_label_transform_report",
    "information_exponent",
    "generative_exponent",
    "leap_structure",
    "one_step_asymptotics",
    "OneStepAsymptotics",
    "weak_recovery_threshold",
    "spectral_threshold",
    "spectral_overlap",
    "optimal_spectral_transform",
]


def __getattr__(name: str):
    """information_exponent, generative_exponent, leap_structure: from theory/exponents.py."""
    if name in ("information_exponent", "generative_exponent", "leap_structure"):
        from replearn.theory import exponents

        return getattr(exponents, name)
    raise AttributeError(f"module 'replearn.theory' has no attribute {name!r}")


def one_step_threshold(target: MultiIndexTarget) -> float:
    """n ≈ d²·κ²·r (Theorem 1, constants dropped); ∞ for a degenerate Hessian.

    Parameters
    ----------
    target : MultiIndexTarget
        f*.

    Returns
    -------
    float

    Examples
    --------
    >>> import replearn as rl
    >>> one_step_threshold(rl.paper_target(d=10))      # κ = 1, r = 1: d²
    100.0
    >>> one_step_threshold(rl.MultiIndexTarget.from_expression("He3(z1)", d=10))
    inf
    """
    return float(target.d**2 * target.kappa**2 * target.r)


def one_step_width(target: MultiIndexTarget) -> float:
    """m ≈ r^p neurons (Theorem 1, constants dropped); p = the degree cutoff for a link.

    Examples
    --------
    >>> import replearn as rl
    >>> one_step_width(rl.MultiIndexTarget.random(d=20, r=3, degree=4, seed=0))   # 3⁴
    81.0
    """
    return float(target.r**target.degree_cutoff)


def kernel_learnable_degree(n: float, d: int) -> int:
    """k with d^k ≤ n < d^{k+1}: the highest Hermite degree a kernel learns from n samples.

    Parameters
    ----------
    n : float
        Number of samples, ≥ 1.
    d : int
        Input dimension, ≥ 2.

    Returns
    -------
    int

    Examples
    --------
    >>> kernel_learnable_degree(1000, 10), kernel_learnable_degree(999, 10)
    (3, 2)
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if d < 2:
        raise ValueError(f"d must be >= 2 for the kernel staircase, got {d}")
    k = int(math.floor(math.log(n) / math.log(d) + 1e-12))
    return max(k, 0)


def best_degree_risk(target: MultiIndexTarget, k: int) -> float:
    """E[(f* − P_{≤k} f*)²]: the risk of the best degree-≤k predictor (energy above k).

    Parameters
    ----------
    target : MultiIndexTarget
        f*.
    k : int
        The highest degree the predictor may use.

    Examples
    --------
    >>> import replearn as rl
    >>> round(best_degree_risk(rl.paper_target(d=10), 3), 6)   # He4/(4√3) is left
    0.5
    """
    return target.energy_above(k, normalized=False)


def kernel_plateau(target: MultiIndexTarget, n: float) -> float:
    """Predicted kernel risk at n samples: the energy of f* above degree ⌊log_d n⌋.

    Parameters
    ----------
    target : MultiIndexTarget
        f*.
    n : float
        Number of samples, ≥ 1.

    Examples
    --------
    >>> import replearn as rl
    >>> target = rl.paper_target(d=10)
    >>> round(kernel_plateau(target, 1e3), 6), kernel_plateau(target, 1e4)
    (0.5, 0)
    """
    return best_degree_risk(target, kernel_learnable_degree(n, target.d))


def kernel_staircase(
    target: MultiIndexTarget, max_log_d_n: float | None = None
) -> list[tuple[float, float, float]]:
    """[(log_d n from, log_d n to, predicted risk)] steps of the kernel staircase.

    Parameters
    ----------
    target : MultiIndexTarget
        f*.
    max_log_d_n : float, optional
        Where the last step ends (default: degree + 1).

    Returns
    -------
    list of tuple of float

    Examples
    --------
    >>> import replearn as rl
    >>> for start, stop, risk in kernel_staircase(rl.paper_target(d=10)):
    ...     print(f"d^{start:g} ≤ n < d^{stop:g}: {risk:.3f}")
    d^0 ≤ n < d^1: 1.000
    d^1 ≤ n < d^2: 1.000
    d^2 ≤ n < d^3: 0.500
    d^3 ≤ n < d^4: 0.500
    d^4 ≤ n < d^5: 0.000
    """
    top = target.degree_cutoff + 1 if max_log_d_n is None else max_log_d_n
    steps = []
    for k in range(0, int(math.ceil(top))):
        steps.append((float(k), float(min(k + 1, top)), best_degree_risk(target, k)))
    return steps


def kernel_threshold(target: MultiIndexTarget, epsilon: float) -> float:
    """Smallest n = d^k at which the staircase risk is ≤ ε (∞ if never).

    Parameters
    ----------
    target : MultiIndexTarget
        f*.
    epsilon : float
        The risk to reach.

    Examples
    --------
    >>> import replearn as rl
    >>> kernel_threshold(rl.paper_target(d=10), epsilon=0.1)   # d⁴: all of He4 is needed
    10000.0
    """
    for k in range(0, target.degree_cutoff + 1):  # a link: ∞ means not within the cutoff
        if best_degree_risk(target, k) <= epsilon:
            return float(target.d**k)
    return math.inf


def predicted_exponents(target: MultiIndexTarget, epsilon: float) -> dict[str, float]:
    """Exponent s in n*(d) ∝ d^s: 2 for Algorithm 1, the kernel's needed degree for kernels.

    Parameters
    ----------
    target : MultiIndexTarget
        f*.
    epsilon : float
        The risk threshold that defines n*(d).

    Returns
    -------
    dict
        ``{"one_step": s, "kernel": s}`` (∞ where the method never reaches ε).

    Examples
    --------
    >>> import replearn as rl
    >>> predicted_exponents(rl.paper_target(d=10), epsilon=0.1)
    {'one_step': 2.0, 'kernel': 4.0}
    """
    needed = next(
        (k for k in range(target.degree_cutoff + 1) if best_degree_risk(target, k) <= epsilon),
        math.inf,
    )
    one_step = 2.0 if math.isfinite(target.kappa) else math.inf
    return {"one_step": one_step, "kernel": float(needed)}


def population_step_direction(
    target: MultiIndexTarget, W: torch.Tensor, a: torch.Tensor
) -> torch.Tensor:
    """The leading term of the population first-step gradient, −2·a_j·H·w_j/√(2π), per row.

    Parameters
    ----------
    target : MultiIndexTarget
        f*, which gives H = E[∇²f*].
    W : torch.Tensor, shape (m, d)
        First-layer weights w_j at initialisation.
    a : torch.Tensor, shape (m,)
        Second-layer signs a_j.

    Returns
    -------
    torch.Tensor
        (m, d), in W's dtype: every row lies in span(H) = S*.

    Examples
    --------
    >>> import torch, replearn as rl
    >>> target = rl.paper_target(d=10)
    >>> W = torch.randn(4, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> step = population_step_direction(target, W, torch.tensor([1.0, -1, 1, -1]).double())
    >>> round(rl.subspace_alignment(step, target.U), 9)   # all of it along u
    1.0
    """
    H = target.hessian().to(W.dtype)
    return -2.0 * a[:, None] * (W @ H.T) / math.sqrt(2 * math.pi)


def first_hermite_coefficients(target: MultiIndexTarget) -> torch.Tensor:
    """μ₁ along each direction: μ₁(u_k) = E[f*(x)·(u_k·x)], the coefficient of He₁(z_k).

    For a separable target f*(x) = Σ_k c_k·σ_k*(u_k·x) it is c_k·μ₁(σ_k*), with
    μ₁(σ) = E[σ(z)·z] the first Hermite coefficient of the link σ (z ~ N(0, 1)).

    Parameters
    ----------
    target : MultiIndexTarget
        f*, with its exact Hermite coefficients (``terms``; by quadrature for a link).

    Returns
    -------
    torch.Tensor
        (r,) float64, entry k for u_k.

    Examples
    --------
    >>> import replearn as rl
    >>> t = rl.MultiIndexTarget.from_expression("(4*z1 + z1^2 + z2)/2", d=8, normalize=False)
    >>> first_hermite_coefficients(t).tolist()
    [2.0, 0.5]
    """
    out = torch.zeros(target.r, dtype=torch.float64)
    for alpha, c in target.terms.items():
        if sum(alpha) == 1:
            out[alpha.index(1)] += c
    return out


def first_step_slope(target: MultiIndexTarget) -> float:
    """μ₁(u₂)/μ₁(u₁): the slope of cos(G_i, u₂) against cos(G_i, u₁) that Dandi et al. 2023
    predict for the first fresh-batch gradient rows G_i of a network at a random start.

    Why: G_i ∝ a_i·E[(y − f⁰(x))·σ′(w_i·x)·x]; with w_i ~ N(0, I/d), w_i·x is almost
    independent of z = Ux (‖Uw_i‖ ~ 1/√d), so the projection on u_k is
    ≈ E[σ′]·E[y·z_k] = E[σ′]·μ₁(u_k) (f⁰'s part lies along W's rows, not along U), and the
    ratio of the two projections — the slope, the same for every neuron — is μ₁(u₂)/μ₁(u₁).
    Corrections are O(1/√d). For (σ₁*(z₁) + σ₂*(z₂))/2 it is μ₁(σ₂*)/μ₁(σ₁*).

    Parameters
    ----------
    target : MultiIndexTarget
        f*, with r ≥ 2 directions and μ₁(u₁) ≠ 0.

    Returns
    -------
    float

    Examples
    --------
    >>> import replearn as rl
    >>> spike = rl.MultiIndexTarget.from_expression("(4*z1 + z1^2 + z2)/2", d=8, normalize=False)
    >>> escape = rl.MultiIndexTarget.from_expression("(z1 + z1^2 + z2 - z2^2)/2", d=8, normalize=False)
    >>> first_step_slope(spike), first_step_slope(escape)
    (0.25, 1.0)
    """
    if target.r < 2:
        raise ValueError(f"target must have r ≥ 2 directions for a slope, got r = {target.r}")
    mu = first_hermite_coefficients(target)
    if float(mu[0]) == 0.0:
        raise ValueError("target has μ₁(u₁) = 0: the first step has no linear part along u₁")
    return float(mu[1] / mu[0])


def summary(target: MultiIndexTarget, epsilon: float = 0.1) -> dict:
    """Everything the theory says about a target, as plain numbers (for reports and the CLI).

    Parameters
    ----------
    target : MultiIndexTarget
        f*.
    epsilon : float
        The risk threshold of ``kernel_threshold_n`` and ``predicted_exponents``.

    Returns
    -------
    dict
        target, d, r, degree, norm2, degree_energy, hessian_eigenvalues, hessian_rank, kappa,
        one_step_threshold_n, one_step_width_m, kernel_staircase, epsilon,
        kernel_threshold_n, predicted_exponents, information_exponent,
        generative_exponent (r = 1, noiseless; None otherwise), leap_structure (ℓ = 2 and
        ℓ = 1), and for a link degree_cutoff, energy_above_cutoff and quadrature;
        ``format_summary`` prints it.

    Examples
    --------
    >>> import replearn as rl
    >>> info = summary(rl.paper_target(d=10))
    >>> info["kappa"], info["one_step_threshold_n"], info["kernel_threshold_n"]
    (1.0, 100.0, 10000.0)
    >>> print(format_summary(info).splitlines()[5])
    rank(H), kappa    1, 1
    """
    from replearn.theory.exponents import (
        generative_exponent,
        information_exponent,
        leap_structure,
    )

    eigenvalues = torch.linalg.eigvalsh(target.latent_hessian()).tolist()
    try:
        information = information_exponent(target)
    except ValueError:  # constant, or nothing up to a link's cutoff
        information = None
    generative = None
    if target.r == 1:
        try:
            generative = generative_exponent(target)
        except ValueError:
            generative = None
    extra = {}
    if target.degree is None:
        extra = {
            "degree_cutoff": target.degree_cutoff,
            "energy_above_cutoff": target.energy_above_cutoff(normalized=True),
            "quadrature": target.quadrature,
        }
    return {
        **extra,
        "target": target.name,
        "d": target.d,
        "r": target.r,
        "degree": target.degree,
        "norm2": target.norm2(),
        "degree_energy": target.degree_energy(),
        "hessian_eigenvalues": eigenvalues,
        "hessian_rank": target.hessian_rank(),
        "kappa": target.kappa,
        "one_step_threshold_n": one_step_threshold(target),
        "one_step_width_m": one_step_width(target),
        "kernel_staircase": kernel_staircase(target),
        "epsilon": epsilon,
        "kernel_threshold_n": kernel_threshold(target, epsilon),
        "predicted_exponents": predicted_exponents(target, epsilon),
        "information_exponent": information,
        "generative_exponent": generative,
        "leap_structure": {ell: leap_structure(target, ell) for ell in (2, 1)},
    }


def _directions(indices) -> str:
    return "{" + ", ".join(f"z{i + 1}" for i in indices) + "}"


def format_summary(info: dict) -> str:
    """Human-readable lines of ``summary``."""
    energy = ", ".join(f"{k}: {v:.4g}" for k, v in info["degree_energy"].items())
    degree = info["degree"]
    if degree is None:
        degree = f"none (link; Hermite expansion to degree {info['degree_cutoff']})"
    lines = [
        f"target            {info['target']}",
        f"d, r, degree      {info['d']}, {info['r']}, {degree}",
        f"E[f*^2]           {info['norm2']:.6g}",
        f"degree energy     {{{energy}}}",
        "eig(U H U^T)      " + ", ".join(f"{v:.4g}" for v in info["hessian_eigenvalues"]),
        f"rank(H), kappa    {info['hessian_rank']}, {info['kappa']:.4g}",
        f"Algorithm 1       n ~ d^2 kappa^2 r = {info['one_step_threshold_n']:.4g}, m ~ r^p = {info['one_step_width_m']:.4g}",
        "kernel staircase  "
        + "; ".join(
            f"log_d n in [{a:g}, {b:g}): risk {r:.4g}" for a, b, r in info["kernel_staircase"]
        ),
        f"kernel n for risk <= {info['epsilon']:g}: {info['kernel_threshold_n']:.4g} "
        f"(exponents: Algorithm 1 {info['predicted_exponents']['one_step']:g}, "
        f"kernel {info['predicted_exponents']['kernel']:g})",
    ]
    if "quadrature" in info:
        error = info["quadrature"]["error"]
        lines.append(
            f"moments           {info['quadrature']['method']}; error of E[f*^2] ~ "
            f"{error['norm2']:.2g}, of a coefficient ~ {error['coefficients']:.2g}; energy above "
            f"degree {info['degree_cutoff']}: {info['energy_above_cutoff']:.3g}"
        )
    exponents = f"information {info['information_exponent']}"
    if info["generative_exponent"] is not None:
        exponents += f", generative {info['generative_exponent']} (noiseless)"
    lines.append(f"exponents         {exponents}")
    for ell, leaps in info["leap_structure"].items():
        steps = ", ".join(
            f"step {t + 1}: {_directions(found)}" for t, found in enumerate(leaps["steps"])
        )
        unreached = f"; unreached {_directions(leaps['unreached'])}" if leaps["unreached"] else ""
        lines.append(f"leaps of <= {ell}      {steps or 'nothing'}{unreached}")
    if info["leap_structure"][2]["leap_complexity"]:
        lines.append(f"leap complexity   {info['leap_structure'][2]['leap_complexity']}")
    if not np.isfinite(info["kappa"]):
        lines.append("note              H is degenerate: one step cannot find S* from ~d^2 samples")
    return "\n".join(lines)


# -- label transforms: the population Hessian of E[T(y)|x] -------------------------------------
#
# With y = g(z) + ε, z = Ux ~ N(0, I_r), the step on labels T(y) follows
#
#     H_T = E_x[∇²_x E[T(y)|x]] = Uᵀ·A_T·U,   A_T = E_z[∇²h(z)] = E_z[h(z)·(zzᵀ − I)]  (Stein),
#     h(z) = E_ε[T(g(z) + ε)],
#
# computed by quadrature, never by sampling (docs/label_transforms.md has the measured accuracy):
#   - over ε: ±ς (2 points, exact) for Rademacher noise; for Gaussian noise the closed form
#     of E_ε T(g + ε) when T has one (abs, sign), else Gauss–Hermite with q + 1 nodes for a
#     degree-q polynomial T (exact, also for E_ε T²) or NOISE_NODES nodes (a callable);
#   - over z, polynomial T (identity, square, hermite:k): a tensor Gauss–Hermite grid with
#     p·q + 2 nodes per coordinate for a degree-p target — exact (h² has degree 2pq, times
#     the degree-2 Stein factor); a callable: the same grid with DEFAULT_NODES;
#   - over z, T with breakpoints b (abs, sign): h jumps or kinks on g(z) = b − ε (or turns
#     sharply there, smoothed by Gaussian noise). The coordinate of lowest positive degree in
#     g is integrated along lines, split at the real roots of g = b − ε, Gauss–Legendre on
#     each piece of [−LINE_HALF_WIDTH, LINE_HALF_WIDTH]; the other coordinates by
#     ``_outer_grid``. The report estimates the error by halving every node count.
#
# Population label statistics (for square, hermite:k): μ = E[f*], σ² = Var f* + ς².

LINE_HALF_WIDTH = 10.0  # P(|z| > 10) = 1.5e-23
LINE_NODES = 48  # Gauss–Legendre nodes per piece of a line
NOISE_NODES = 40  # Gauss–Hermite nodes over Gaussian noise for a callable T
# Gauss–Hermite nodes per coordinate for a smooth non-polynomial h (callables), by r
DEFAULT_NODES = {1: 200, 2: 256, 3: 64}
SPLIT_NODES = {2: 128, 3: 32}  # Gauss–Legendre nodes per piece of each outer axis (split lines)

MAX_NODES = 256  # numpy's Gauss–Hermite weights underflow to NaN beyond ~300 nodes
RANK_TOLERANCE = 1e-6  # |eigenvalue| > RANK_TOLERANCE·√E[h²] (and > 10× quadrature error)


def _latent_g(target: MultiIndexTarget, Z: torch.Tensor) -> torch.Tensor:
    """g(z) on latent points Z (N, r): the target's own ``latent_function``."""
    return target.latent_function(Z)


def _is_link(target: MultiIndexTarget) -> bool:
    """A non-polynomial link (degree None): moments by its own quadrature rule."""
    return target.degree is None


def _line_polynomials(target: MultiIndexTarget, axis: int, outer: torch.Tensor) -> np.ndarray:
    """Monomial coefficients (low → high) of z_axis ↦ g(z) at each outer point: (N, p+1)."""
    from replearn.hermite import he_all, hermite_to_monomial

    p = target.degree
    others = [i for i in range(target.r) if i != axis]
    table = he_all(max(p, 1), outer) if others else None
    hermite = torch.zeros(outer.shape[0], p + 1, dtype=torch.float64)
    for alpha, c in target.terms.items():
        factor = torch.full((outer.shape[0],), c, dtype=torch.float64)
        for column, i in enumerate(others):
            if alpha[i]:
                factor = factor * table[:, column, alpha[i]]
        hermite[:, alpha[axis]] += factor
    to_monomial = np.array(
        [
            [float(v) for v in hermite_to_monomial([0] * k + [1] + [0] * (p - k))]
            for k in range(p + 1)
        ]
    )  # row k: He_k in monomials
    return hermite.numpy() @ to_monomial


def _outer_grid(target: MultiIndexTarget, axis: int, n_nodes: int):
    """The rule over the coordinates other than ``axis``.

    Where the leading coefficient of g in z_axis vanishes, a root of g(z) = level runs off to
    infinity and the line integral, though continuous, changes shape abruptly (e^{−c/x²}
    layers) — Gauss–Hermite resolves that slowly. When that coefficient is one Hermite
    product Π_i He_{α_i}(z_i) (e.g. He₃(z₁) for He₂(z₁) + He₃(z₁)z₂, z₂z₃ for z₁z₂z₃) its
    zero set is the union of the roots of each He_{α_i} on each axis, so each axis is split
    there and every piece gets n_nodes Gauss–Legendre nodes (clustered at the piece ends,
    where the layers are). Otherwise: a tensor Gauss–Hermite rule with n_nodes per axis.
    """
    others = [i for i in range(target.r) if i != axis]
    top = max(alpha[axis] for alpha in target.terms)
    leading = [alpha for alpha in target.terms if alpha[axis] == top]
    if len(leading) != 1:
        return _tensor_grid(len(others), n_nodes)
    L = LINE_HALF_WIDTH
    gl_nodes, gl_weights = np.polynomial.legendre.leggauss(n_nodes)
    axis_nodes, axis_weights = [], []
    for i in others:
        degree = leading[0][i]
        roots = np.polynomial.hermite_e.hermeroots([0] * degree + [1]) if degree else []
        cuts = np.concatenate([[-L], np.sort(np.asarray(roots, dtype=np.float64)), [L]])
        half, middle = np.diff(cuts) / 2, (cuts[1:] + cuts[:-1]) / 2
        nodes = (middle[:, None] + half[:, None] * gl_nodes).reshape(-1)
        weights = (half[:, None] * gl_weights).reshape(-1) * np.exp(-nodes * nodes / 2)
        axis_nodes.append(torch.from_numpy(nodes))
        axis_weights.append(torch.from_numpy(weights / math.sqrt(2 * math.pi)))
    n_outer = math.prod(len(nodes) for nodes in axis_nodes)
    if n_outer * LINE_NODES * 4 > MAX_POINTS:  # ~4 pieces per line
        raise QuadratureSizeError(
            n_outer * LINE_NODES * 4,
            f"split lines: {n_outer:,} outer points × about 4·{LINE_NODES} per line",
            target.r,
        )
    outer = torch.cartesian_prod(*axis_nodes).reshape(-1, len(others))
    weights = torch.cartesian_prod(*axis_weights).reshape(-1, len(others)).prod(dim=1)
    return outer, weights


def _split_grid(
    target: MultiIndexTarget, levels: list[float], n_nodes: int, line_nodes: int = LINE_NODES
) -> tuple[torch.Tensor, torch.Tensor]:
    """Points and weights that integrate h along the line of one coordinate split at every
    real root of g(z) = level (levels = b − ε), line_nodes Gauss–Legendre nodes per piece;
    the other coordinates by ``_outer_grid`` with n_nodes."""
    r = target.r
    # the line: a coordinate of lowest positive degree in g (degree 1 → one root per level,
    # moving smoothly with the other coordinates, so the outer integrand has no tangencies)
    degree_of = [max((alpha[i] for alpha in target.terms), default=0) for i in range(r)]
    axis = min(range(r), key=lambda i: (degree_of[i] == 0, degree_of[i]))
    if r > 1:
        outer, outer_weights = _outer_grid(target, axis, n_nodes)
    else:
        outer, outer_weights = (
            torch.zeros(1, 0, dtype=torch.float64),
            torch.ones(1, dtype=torch.float64),
        )
    coefficients = _line_polynomials(target, axis, outer)
    L = LINE_HALF_WIDTH
    cuts = []
    for row in coefficients:
        found = [-L, L]
        for level in levels:
            shifted = row.copy()
            shifted[0] -= level
            trimmed = np.trim_zeros(shifted, "b")
            if len(trimmed) > 1:
                roots = np.roots(trimmed[::-1])
                real = roots[np.abs(roots.imag) <= 1e-7 * (1 + np.abs(roots.real))].real
                found.extend(real[np.abs(real) < L].tolist())
        cuts.append(sorted(found))
    width = max(len(c) for c in cuts)
    cuts = torch.tensor([c + [L] * (width - len(c)) for c in cuts], dtype=torch.float64)
    left, right = cuts[:, :-1], cuts[:, 1:]  # (N_outer, K) pieces
    gl_nodes, gl_weights = np.polynomial.legendre.leggauss(line_nodes)
    gl_nodes, gl_weights = torch.from_numpy(gl_nodes), torch.from_numpy(gl_weights)
    half, middle = (right - left) / 2, (right + left) / 2
    line = middle[..., None] + half[..., None] * gl_nodes  # (N_outer, K, Q)
    density = torch.exp(-line * line / 2) / math.sqrt(2 * math.pi)
    weights = outer_weights[:, None, None] * half[..., None] * gl_weights * density
    points = torch.empty(*line.shape, r, dtype=torch.float64)
    points[..., axis] = line
    others = [i for i in range(r) if i != axis]
    for column, i in enumerate(others):
        points[..., i] = outer[:, column][:, None, None]
    return points.reshape(-1, r), weights.reshape(-1)


def _noise_rule(noise: float, noise_kind: str, transform) -> tuple[torch.Tensor, torch.Tensor]:
    """ε nodes and weights: ±ς (Rademacher), Gauss–Hermite (Gaussian), 0 (noiseless)."""
    if noise == 0.0:
        return torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    if noise_kind == "rademacher":
        return torch.tensor([noise, -noise], dtype=torch.float64), torch.full(
            (2,), 0.5, dtype=torch.float64
        )
    degree = transform.polynomial_degree
    # degree q + 1 nodes: exact for E_ε T² (degree 2q in ε)
    nodes, weights = _normal_gauss_hermite(degree + 1 if degree is not None else NOISE_NODES)
    return nodes * noise, weights


def population_label_statistics(target: MultiIndexTarget, noise: float):
    """μ = E[y] = E[f*], σ² = Var y = E[f*²] − μ² + ς² (exact).

    Parameters
    ----------
    target : MultiIndexTarget
        f*.
    noise : float
        Standard deviation ς of the label noise.

    Returns
    -------
    replearn.label_transforms.LabelStatistics

    Examples
    --------
    >>> import replearn as rl
    >>> population_label_statistics(rl.paper_target(d=10), noise=1.0)   # σ² = 1 + 1
    LabelStatistics(mean=0.0, std=1.4142135623730951)
    """
    from replearn.label_transforms import LabelStatistics

    mean = target.mean()
    return LabelStatistics(mean, math.sqrt(max(target.norm2() - mean * mean, 0.0) + noise * noise))


def _check_noise(noise: float, noise_kind: str) -> float:
    from replearn.data import NOISE_KINDS

    noise = float(noise)
    if not math.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite standard deviation >= 0, got {noise}")
    if noise_kind not in NOISE_KINDS:
        raise ValueError(f"noise_kind must be one of {NOISE_KINDS}, got {noise_kind!r}")
    return noise


def _quadrature_plan(target, transform, noise, noise_kind, n_nodes):
    """(method, nodes per coordinate) for h = E_ε T(g + ε)."""
    if n_nodes is not None and (
        isinstance(n_nodes, bool) or not isinstance(n_nodes, int) or not 2 <= n_nodes <= MAX_NODES
    ):
        raise ValueError(f"n_nodes must be an integer in [2, {MAX_NODES}] or None, got {n_nodes!r}")
    if _is_link(target):  # the link's own rule, also cut where T(g + ε) kinks
        if n_nodes is not None and target.r > 1 and n_nodes ** (target.r - 1) > 10**6:
            raise ValueError(f"n_nodes = {n_nodes} is too many for r = {target.r}")
        return "link quadrature (split at the kinks of g and of T)", n_nodes
    if transform.polynomial_degree is not None:
        exact = max(target.degree, 1) * transform.polynomial_degree + 2
        if exact > MAX_NODES:
            raise ValueError(
                f"label_transform {transform.name!r} of a degree-{target.degree} target needs "
                f"{exact} Gauss-Hermite nodes per coordinate, more than {MAX_NODES}"
            )
        return "tensor Gauss-Hermite (exact)", exact
    if not transform.breakpoints:
        return "tensor Gauss-Hermite", n_nodes or DEFAULT_NODES.get(target.r, 24)
    if target.r == 1:  # no outer coordinates: n_nodes is the line's nodes per piece
        return "split lines", n_nodes or 2 * LINE_NODES
    # a smoothed h (Gaussian noise) still turns sharply where g = b far out in z: split there too
    return "split lines", n_nodes or SPLIT_NODES.get(target.r, 16)


def _transformed_moments(
    target, transform, noise, noise_kind, statistics, method, n_nodes, coarse=False
):
    """E h, E[h z], A = E[h (zzᵀ − I)], E h², E T(y)² by the chosen quadrature."""
    noise_nodes, noise_weights = _noise_rule(noise, noise_kind, transform)
    smoothed = None
    smoothed_noise = noise > 0 and noise_kind == "gaussian" and transform.polynomial_degree is None
    if method.startswith("link quadrature"):
        levels = [b - float(e) for b in transform.breakpoints for e in noise_nodes]
        if smoothed_noise:
            levels = list(transform.breakpoints)
        extra = [lambda Z, level=level: target.latent_function(Z) - level for level in levels]
        Z, weights = target.quadrature_rule(extra, n_nodes, coarse=coarse)
    elif method.startswith("split lines"):
        probe = torch.zeros(1, dtype=torch.float64)
        if smoothed_noise and transform.gaussian_smoothed(probe, noise) is not None:
            levels = list(transform.breakpoints)  # h is smooth: split where it turns
        else:
            levels = [b - float(e) for b in transform.breakpoints for e in noise_nodes]
        line_nodes = n_nodes if target.r == 1 else LINE_NODES // (2 if coarse else 1)
        Z, weights = _split_grid(target, levels, n_nodes, line_nodes)
    else:
        Z, weights = _tensor_grid(target.r, n_nodes)
    g = _latent_g(target, Z)
    if smoothed_noise:
        smoothed = transform.gaussian_smoothed(g, noise)
    if smoothed is not None:
        h, t_square = smoothed
    else:
        h = torch.zeros_like(g)
        t_square = torch.zeros_like(g)
        for epsilon, nu in zip(noise_nodes.tolist(), noise_weights.tolist()):
            t = transform(g + epsilon, statistics).to(torch.float64)
            h += nu * t
            t_square += nu * t * t
    weighted = weights * h
    return {
        "mean": float(weighted.sum()),
        "linear": weighted @ Z,  # E[h z] (r,)
        # E[h (zzᵀ − I)] = Σ_n w_n h_n z_n z_nᵀ − (Σ_n w_n h_n)·I, without an (N, r, r) array
        "latent_hessian": (Z * weighted[:, None]).T @ Z
        - weighted.sum() * torch.eye(target.r, dtype=torch.float64),
        "h_square": float((weights * h * h).sum()),
        "t_square": float((weights * t_square).sum()),
    }


def transformed_latent_hessian(
    target: MultiIndexTarget,
    transform=None,
    noise: float = 1.0,
    noise_kind: str = "rademacher",
    n_nodes: int | None = None,
) -> torch.Tensor:
    """A_T = E_z[∇²_z E_ε T(g(z) + ε)] (r×r, float64), by quadrature (see the module source).

    Parameters
    ----------
    target : MultiIndexTarget
        f*(x) = g(Ux); labels y = g(z) + ε.
    transform : str, callable or None
        T, anything :func:`replearn.label_transforms.resolve_label_transform` accepts;
        None is the identity.
    noise : float
        Standard deviation ς of ε.
    noise_kind : {"rademacher", "gaussian"}
    n_nodes : int, optional
        Quadrature nodes per coordinate (ignored by the exact rule of a polynomial T).

    Returns
    -------
    torch.Tensor
        (r, r), float64.

    Examples
    --------
    >>> import replearn as rl
    >>> he3 = rl.MultiIndexTarget.from_expression("He3(z1)", d=10)
    >>> A = transformed_latent_hessian(he3, "square", noise=1.0)  # E[∇²f*] = 0; not for y²
    >>> A.shape, round(float(A[0, 0]), 9)
    (torch.Size([1, 1]), 6.0)
    """
    from replearn.label_transforms import resolve_label_transform

    transform = resolve_label_transform(transform)
    noise = _check_noise(noise, noise_kind)
    statistics = population_label_statistics(target, noise)
    method, n = _quadrature_plan(target, transform, noise, noise_kind, n_nodes)
    moments = _transformed_moments(target, transform, noise, noise_kind, statistics, method, n)
    return moments["latent_hessian"]


def transformed_hessian(
    target: MultiIndexTarget,
    transform=None,
    noise: float = 1.0,
    noise_kind: str = "rademacher",
    n_nodes: int | None = None,
) -> torch.Tensor:
    """H_T = E_x[∇²_x E[T(y)|x]] = Uᵀ A_T U (d×d, float64); T = None gives target.hessian().

    Parameters
    ----------
    target, transform, noise, noise_kind, n_nodes
        As :func:`transformed_latent_hessian`.

    Returns
    -------
    torch.Tensor
        (d, d), float64.

    Examples
    --------
    >>> import torch, replearn as rl
    >>> he3 = rl.MultiIndexTarget.from_expression("He3(z1)", d=10)
    >>> H = transformed_hessian(he3, "square", noise=1.0)
    >>> H.shape, bool(torch.allclose(H, 6 * he3.U.T @ he3.U))   # 6·u uᵀ
    (torch.Size([10, 10]), True)
    """
    A = transformed_latent_hessian(target, transform, noise, noise_kind, n_nodes)
    return target.U.T @ A @ target.U


def label_transform_report(
    target: MultiIndexTarget,
    transform=None,
    noise: float = 1.0,
    noise_kind: str = "rademacher",
    n_nodes: int | None = None,
) -> dict:
    """Whether, and with which κ, a first step on T(y) can find S* = span(U).

    h(z) = E_ε T(g(z) + ε) is the function the step on T(y) sees; its Hessian in x is
    H_T = Uᵀ A_T U with A_T = E[∇²h] (Stein: E[h·(zzᵀ − I)]), computed by quadrature.

    Parameters
    ----------
    target : MultiIndexTarget
        f*(x) = g(Ux).
    transform : str, callable or None
        T: None or ``"identity"``, ``"square"``, ``"abs"``, ``"sign"``, ``"hermite:k"``, or
        a torch function of a 1-D label tensor
        (:func:`replearn.label_transforms.resolve_label_transform`).
    noise : float
        Standard deviation ς of the label noise.
    noise_kind : {"rademacher", "gaussian"}
    n_nodes : int, optional
        Quadrature nodes per coordinate (ignored by the exact rule of a polynomial T).

    Returns
    -------
    dict
        Plain numbers and lists, among them:

        - ``latent_hessian``: A_T (r×r); H_T = Uᵀ A_T U.
        - ``eigenvalues``: of A_T, ascending. ``rank`` counts those whose magnitude exceeds
          ``rank_tolerance`` = max(RANK_TOLERANCE·√E[h²], 10·quadrature error, 1e-14).
        - ``kappa``: √r·sd(h) / (smallest eigenvalue magnitude): the paper's κ = ‖H†‖√r for
          E[T(y)|x] scaled to unit variance (= target.kappa for T = None and Var f* = 1);
          ∞ when rank < r.
        - ``kappa_step``: the same for the step's labels s (the noise of T(y) included):
          √r·σ_s / (smallest eigenvalue magnitude), σ_s² = Var T(y) − ‖E[T(y)x]‖², the
          variance the step rescales away.
        - ``direction_coverage``: ‖P u_i‖² per latent direction, P the projector on range(H_T).
        - ``range_alignment``: ‖P_U P‖²_F / ‖P‖²_F (1 up to rounding: H_T lives in span U).
        - ``degree_energy``: of h in the Hermite basis: "0": (E h)², "1": ‖E[h z]‖²,
          "2": ‖A_T‖²_F/2, "above 2": the rest of E h², "noise": E T(y)² − E h².
        - ``quadrature``: method, nodes per coordinate and the estimated error of A_T (the
          largest entry difference against half the nodes, a conservative bound; 0 for the
          exact polynomial rule).

    Examples
    --------
    He₃(u·x) has E[∇²f*] = 0: a step on y sees nothing, a step on y² sees u.

    >>> import replearn as rl
    >>> he3 = rl.MultiIndexTarget.from_expression("He3(z1)", d=10)
    >>> for transform in (None, "square", "abs", "sign"):
    ...     info = label_transform_report(he3, transform, noise=1.0)
    ...     print(f"{info['transform']:8} rank {info['rank']}  kappa {info['kappa']:.3f}")
    identity rank 0  kappa inf
    square   rank 1  kappa 1.599
    abs      rank 1  kappa 1.096
    sign     rank 0  kappa inf
    """
    from replearn.label_transforms import resolve_label_transform

    transform = resolve_label_transform(transform)
    noise = _check_noise(noise, noise_kind)
    statistics = population_label_statistics(target, noise)
    method, n = _quadrature_plan(target, transform, noise, noise_kind, n_nodes)
    moments = _transformed_moments(target, transform, noise, noise_kind, statistics, method, n)
    if method.endswith("(exact)"):
        error = 0.0
    else:
        coarse_n = n if _is_link(target) else max(n // 2, 2)  # a link's rule coarsens itself
        coarse = _transformed_moments(
            target, transform, noise, noise_kind, statistics, method, coarse_n, coarse=True
        )
        error = float((coarse["latent_hessian"] - moments["latent_hessian"]).abs().max())
    A = moments["latent_hessian"]
    A = (A + A.T) / 2
    eigenvalues, vectors = torch.linalg.eigh(A)
    h_variance = max(moments["h_square"] - moments["mean"] ** 2, 0.0)
    t_variance = max(moments["t_square"] - moments["mean"] ** 2, 0.0)
    linear_energy = float(moments["linear"] @ moments["linear"])
    step_std = math.sqrt(max(t_variance - linear_energy, 0.0))
    tolerance = max(RANK_TOLERANCE * math.sqrt(moments["h_square"]), 10 * error, 1e-14)
    kept = eigenvalues.abs() > tolerance
    rank = int(kept.sum())
    smallest = float(eigenvalues.abs().min()) if target.r else 0.0
    full = rank == target.r
    kappa = math.sqrt(target.r) * math.sqrt(h_variance) / smallest if full else math.inf
    kappa_step = math.sqrt(target.r) * step_std / smallest if full else math.inf
    latent_range = vectors[:, kept]  # (r, rank) orthonormal
    coverage = (latent_range**2).sum(dim=1).tolist()
    if rank:
        range_d = target.U.T @ latent_range  # (d, rank), orthonormal columns
        alignment = float((target.U @ range_d).pow(2).sum() / range_d.pow(2).sum())
    else:
        alignment = math.nan
    hessian_energy = float(A.pow(2).sum()) / 2
    return {
        "target": target.name,
        "transform": transform.name,
        "noise": noise,
        "noise_kind": noise_kind,
        "d": target.d,
        "r": target.r,
        "label_mean": statistics.mean,
        "label_std": statistics.std,
        "latent_hessian": A.tolist(),
        "eigenvalues": eigenvalues.tolist(),
        "rank": rank,
        "rank_tolerance": tolerance,
        "kappa": kappa,
        "kappa_step": kappa_step,
        "step_label_std": step_std,
        "signal_share": h_variance / t_variance if t_variance > 0 else math.nan,
        "direction_coverage": coverage,
        "range_alignment": alignment,
        "degree_energy": {
            "0": moments["mean"] ** 2,
            "1": linear_energy,
            "2": hessian_energy,
            "above 2": max(
                moments["h_square"] - moments["mean"] ** 2 - linear_energy - hessian_energy, 0.0
            ),
            "noise": max(moments["t_square"] - moments["h_square"], 0.0),
        },
        "quadrature": {
            "method": method,
            "nodes_per_coordinate": n if n is not None else "the link's default",
            "error": error,
        },
    }


def format_label_transform_report(info: dict) -> str:
    """Human-readable lines of ``label_transform_report`` (for ``replearn theory``)."""
    energy = ", ".join(f"{k}: {v:.4g}" for k, v in info["degree_energy"].items())
    quadrature = info["quadrature"]
    lines = [
        f"label transform   {info['transform']} on {info['target']} "
        f"(noise {info['noise']:g} {info['noise_kind']}; population mean {info['label_mean']:.4g}, "
        f"std {info['label_std']:.4g})",
        "eig(A_T)          " + ", ".join(f"{v:.4g}" for v in info["eigenvalues"]),
        f"rank(H_T), r      {info['rank']}, {info['r']} (|eig| > {info['rank_tolerance']:.2g})",
        f"kappa, kappa_step {info['kappa']:.4g}, {info['kappa_step']:.4g}",
        "coverage of u_i   " + ", ".join(f"{v:.3g}" for v in info["direction_coverage"]),
        f"E[T(y)|x] energy  {{{energy}}} (signal share of Var T(y): {info['signal_share']:.3g})",
        f"quadrature        {quadrature['method']}, {quadrature['nodes_per_coordinate']} nodes per "
        f"coordinate, error of A_T ~ {quadrature['error']:.2g}",
    ]
    if info["rank"] == info["r"]:
        lines.append(
            f"verdict           the step on T(y) sees all of S*: n ~ d^2 kappa_step^2 r = "
            f"{info['d'] ** 2 * info['kappa_step'] ** 2 * info['r']:.4g}"
        )
    elif info["rank"] > 0:
        lines.append(
            f"verdict           the step on T(y) sees {info['rank']} of {info['r']} directions "
            "(coverage above); the rest needs later steps or another T"
        )
    else:
        lines.append(
            "verdict           E[∇² E[T(y)|x]] = 0: a step on T(y) sees no direction of S*"
        )
    return "\n".join(lines)
