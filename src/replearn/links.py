"""Non-polynomial links g(z): evaluation, quadrature rules and exact Gaussian moments.

g is a :class:`replearn.expression.LinkNode` tree (``tanh(z1 + He3(z2))``, ``sign(z1)``,
``relu(z1)*z2``, …). Its Gaussian moments are integrals over z ~ N(0, I_r), computed once
when a :class:`replearn.targets.LinkTarget` is built and stated with their method and
accuracy (``target.quadrature``):

- r ≤ 4, g without sign/abs/relu/tanh/erf (sin, cos, exp, polynomials): tensor
  Gauss–Hermite with n nodes per coordinate (:func:`replearn.quadrature.tensor_grid`).
- r ≤ 4, g with kinks or jumps (sign, abs, relu of a sub-expression) or steep turns (tanh,
  erf of an argument that may grow fast, e.g. tanh(z1 + He3(z2))): the split-line rule
  (:func:`replearn.quadrature.split_line_grid`): the coordinate of highest degree in those
  arguments is integrated piece by piece between their zeros (Gauss–Legendre, nodes
  clustered at the cuts), the others by Gauss–Hermite — or by Gauss–Legendre pieces between
  fixed kinks when a split argument is a polynomial of that coordinate alone (sign(z2)).
- The error is estimated by the same rule with 3/4 of the nodes (every count): the
  difference is reported as ``quadrature["error"]`` — for a rule whose error falls with n it
  bounds the error of the coarser rule, so it overstates that of the rule used. The rule is
  ``converged`` when the estimate of E f*² is ≤ ``CONVERGENCE_TOLERANCE``·E f*²; otherwise
  a ``RuntimeWarning`` says so (pass ``n_nodes``).
- r > 4: Monte Carlo over ``MC_SAMPLES`` seeded draws, with the standard error of every
  moment reported.

From the rule: E f* = a·E g + b, E f*² (directly, not from the truncated expansion), and
the Hermite coefficients up to the degree cutoff K,

    c_α = E[f*(z)·He_α(z)] / α!,   deg α = Σ_i α_i ≤ K,

held in ``terms`` as for a polynomial target — so ``latent_hessian`` (A_ij = E[∂_ij g] =
E[g·(z_i z_j − δ_ij)], Stein), ``hessian``, ``kappa``, ``degree_energy`` and ``project``
work unchanged. A coefficient whose magnitude is within ``ZERO_FACTOR`` × its error (the
quadrature's estimate, or ``MC_ZERO_SE`` standard errors) or within the rounding error of
its sum (``ROUNDING`` × the sum of the terms' magnitudes) is set to 0: sin(z) has no even
coefficients, not 10⁻¹⁷ ones. The energy above the cutoff, E f*² − Σ_{k ≤ K} energy_k,
is exact up to the same errors (``energy_above_cutoff``).

``degree`` is None (a non-polynomial link has no degree); ``degree_cutoff`` is K, the degree
to which the expansion is resolved, and what the kernel staircase of :mod:`replearn.theory`
runs to.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from replearn.expression import NON_SMOOTH_LINKS, LinkNode, monomials_to_hermite
from replearn.hermite import he, he_all
from replearn.quadrature import split_line_grid, tensor_grid

__all__ = [
    "evaluate_link",
    "breakpoint_functions",
    "link_rule",
    "link_moments",
    "DEFAULT_CUTOFF",
    "QUADRATURE_NODES",
]

# degree cutoff K of the Hermite expansion, by r (the number of α with |α| ≤ K is C(K + r, r))
DEFAULT_CUTOFF = {1: 12, 2: 10, 3: 8, 4: 6}
MC_CUTOFF = 4  # r > 4
# Gauss–Hermite nodes per coordinate of the smooth rule, by r (the check uses half of them)
QUADRATURE_NODES = {1: 240, 2: 120, 3: 48, 4: 24}
# split-line rule: (Gauss–Hermite nodes per outer coordinate, Gauss–Legendre nodes per piece)
SPLIT_NODES = {1: (1, 96), 2: (96, 96), 3: (40, 48), 4: (16, 24)}
MC_SAMPLES = 2**18
MC_SEED = 0x11A7
ZERO_FACTOR = 10.0  # |c_α| ≤ 10 × its estimated quadrature error → c_α = 0
# … or ≤ ROUNDING × Σ_n |w_n g(z_n) He_α(z_n)|/α!: a float64 sum of N terms is off by at most
# ~log2(N)·ε·Σ|terms| (pairwise summation, N ≤ 2·10⁷: ≤ 25ε), ROUNDING = 1e-13 ≈ 450ε is safe
ROUNDING = 1e-13
MC_ZERO_SE = 4.0  # |c_α| ≤ 4 standard errors (Monte Carlo) → c_α = 0
# the rule is "converged" when its estimated error of E f*² is at most this share of E f*²
CONVERGENCE_TOLERANCE = 1e-6
CHUNK = 2**16  # points per batch when the moments are summed


def evaluate_link(node: LinkNode, Z: torch.Tensor) -> torch.Tensor:
    """g(z) for latent points Z (N, r), in Z's dtype and device.

    Parameters
    ----------
    node : LinkNode
        The link's tree (:func:`replearn.expression.parse_expression`).
    Z : torch.Tensor, shape (N, r)

    Returns
    -------
    torch.Tensor, shape (N,)

    Examples
    --------
    >>> import torch
    >>> from replearn.expression import parse_expression
    >>> g = parse_expression("relu(z1) + He2(z2)", 2)
    >>> evaluate_link(g, torch.tensor([[-1.0, 2.0], [3.0, 0.0]], dtype=torch.float64))
    tensor([3., 2.], dtype=torch.float64)
    """
    op, children = node.op, node.children
    if op == "poly":
        if node.cache is None:  # the leaf in the Hermite basis, converted once
            node.cache = monomials_to_hermite(node.value, Z.shape[1])
        return _evaluate_polynomial(node.cache, Z)
    values = [evaluate_link(child, Z) for child in children]
    if op == "add":
        return values[0] + values[1]
    if op == "mul":
        return values[0] * values[1]
    if op == "scale":
        return node.value * values[0]
    if op == "pow":
        return values[0] ** node.value
    if op == "hermite":
        return he(node.value, values[0])
    if op == "relu":
        return torch.clamp(values[0], min=0.0)
    if op == "erf":
        return torch.special.erf(values[0])
    return getattr(torch, op)(values[0])  # tanh, sin, cos, sign, abs, exp


def _evaluate_polynomial(terms: dict, Z: torch.Tensor) -> torch.Tensor:
    """Σ c_α He_α(z) (the leaf rewritten in the Hermite basis: better conditioned)."""
    degree = max((sum(alpha) for alpha in terms), default=0)
    table = he_all(max(degree, 1), Z)
    out = torch.zeros(Z.shape[0], dtype=Z.dtype, device=Z.device)
    for alpha, c in terms.items():
        term = torch.full_like(out, c)
        for i, a in enumerate(alpha):
            if a:
                term = term * table[:, i, a]
        out = out + term
    return out


# where g is not smooth (sign, abs, relu) or turns steeply (tanh, erf of a fast-growing
# argument): the split rule cuts its line at the zeros of these functions' arguments
SPLIT_AT = (*NON_SMOOTH_LINKS, "tanh", "erf")


def breakpoint_functions(node: LinkNode, skip_axes=()) -> list:
    """The arguments of sign/abs/relu (kinks, jumps) and of tanh/erf (steep turns).

    Parameters
    ----------
    node : LinkNode
        The link.
    skip_axes : collection of int
        Leave out the arguments that are polynomials of one of these coordinates alone
        (the outer rule cuts them).

    Returns
    -------
    list of callables
        Each maps points Z (N, r) to the argument's values (N,).

    Examples
    --------
    >>> from replearn.expression import parse_expression
    >>> len(breakpoint_functions(parse_expression("relu(z1)*sign(z2) + sin(z1)", 2)))
    2
    """
    return [
        (lambda Z, child=n.children[0]: evaluate_link(child, Z))
        for n in node.walk()
        if n.op in SPLIT_AT and _single_coordinate(n.children[0]) not in skip_axes
    ]


def _single_coordinate(node: LinkNode) -> int | None:
    """i when node is a polynomial of z_i alone, else None."""
    if node.op != "poly":
        return None
    used = {i for exponents in node.value for i, e in enumerate(exponents) if e}
    return used.pop() if len(used) == 1 else None


def _is_smooth(node: LinkNode) -> bool:
    return not any(n.op in NON_SMOOTH_LINKS for n in node.walk())


def _fixed_cuts(node: LinkNode, r: int, axis: int) -> dict[int, list[float]]:
    """Zeros of split arguments that are polynomials of one coordinate i ≠ axis (sign(z2)):
    fixed cut points of that coordinate for the outer rule."""
    cuts: dict[int, list[float]] = {}
    for n in node.walk():
        child = n.children[0] if n.op in SPLIT_AT else None
        if child is None or child.op != "poly":
            continue
        used = {i for exponents in child.value for i, e in enumerate(exponents) if e}
        if len(used) != 1 or axis in used:
            continue
        (i,) = used
        degree = max(exponents[i] for exponents in child.value)
        coefficients = np.zeros(degree + 1)
        for exponents, c in child.value.items():
            coefficients[exponents[i]] += c
        roots = np.polynomial.polynomial.polyroots(coefficients)
        real = roots[np.abs(roots.imag) <= 1e-12 * (1 + np.abs(roots.real))].real
        cuts.setdefault(i, []).extend(sorted(set(real.tolist())))
    return cuts


def _line_axis(node: LinkNode, r: int) -> int:
    """The line of the split rule: the coordinate of highest degree inside a split argument.

    Along it the argument changes fastest; cutting there leaves the other coordinates a
    smoother line integral (tanh(z1 + He3(z2)): the line is z2).
    """
    degree = [0] * r
    for n in node.walk():
        if n.op in SPLIT_AT:
            for leaf in n.children[0].walk():
                if leaf.op == "poly":
                    for exponents in leaf.value:
                        degree = [max(a, b) for a, b in zip(degree, exponents, strict=True)]
    return max(range(r), key=lambda i: (degree[i], -i))


def _indices(r: int, cutoff: int) -> list[tuple[int, ...]]:
    """All α ∈ N^r with Σ_i α_i ≤ K, by degree then lexicographically."""
    out = []
    for k in range(cutoff + 1):
        out.extend(alpha for alpha in itertools.product(range(k + 1), repeat=r) if sum(alpha) == k)
    return out


def _moments(node: LinkNode, Z: torch.Tensor, W: torch.Tensor, indices) -> dict:
    """Σ_n w_n·(g, g², g·He_α/α!) over a rule (or, with W = 1/N, sample means and squares)."""
    cutoff = max(sum(alpha) for alpha in indices)
    factorials = torch.tensor(
        [math.prod(math.factorial(a) for a in alpha) for alpha in indices], dtype=torch.float64
    )
    mean = square = 0.0
    coefficients = torch.zeros(len(indices), dtype=torch.float64)
    magnitudes = torch.zeros(len(indices), dtype=torch.float64)  # Σ_n |w_n g He_α|/α!
    coefficient_squares = torch.zeros(len(indices), dtype=torch.float64)
    square_square = 0.0
    for start in range(0, Z.shape[0], CHUNK):
        z, w = Z[start : start + CHUNK], W[start : start + CHUNK]
        g = evaluate_link(node, z)
        if not torch.isfinite(g).all():
            raise ValueError("the link is not finite at a quadrature point (overflow)")
        table = he_all(max(cutoff, 1), z)  # (N, r, K + 1)
        basis = torch.ones(z.shape[0], len(indices), dtype=torch.float64)
        for column, alpha in enumerate(indices):
            for i, a in enumerate(alpha):
                if a:
                    basis[:, column] *= table[:, i, a]
        products = g[:, None] * basis / factorials
        mean += float(w @ g)
        square += float(w @ (g * g))
        square_square += float(w @ (g * g) ** 2)
        coefficients += w @ products
        magnitudes += w.abs() @ products.abs()
        coefficient_squares += w @ products**2
    return {
        "mean": mean,
        "norm2": square,
        "coefficients": coefficients,
        "magnitudes": magnitudes,
        "second": (square_square, coefficient_squares),
    }


def link_rule(
    link: LinkNode,
    r: int,
    n_nodes: int | None = None,
    coarse: bool = False,
    extra_breakpoints=(),
):
    """(method, details, (points (N, r), weights (N,))) of the rule for E over z ~ N(0, I_r).

    Parameters
    ----------
    link : LinkNode
        g.
    r : int
        Latent dimension, ≤ 4.
    n_nodes : int, optional
        Nodes per coordinate (smooth rule) or per outer coordinate (split lines).
    coarse : bool
        The same rule with 3/4 of the nodes (the error estimate).
    extra_breakpoints : sequence of callables
        More functions of Z whose zeros are kinks of the integrand (force split lines).

    Returns
    -------
    (str, dict, (torch.Tensor, torch.Tensor))

    Examples
    --------
    >>> from replearn.expression import parse_expression
    >>> method, details, (Z, W) = link_rule(parse_expression("sign(z1)", 1), 1)
    >>> method.split(" (")[0], round(float(W @ torch.sign(Z[:, 0]) ** 2), 12)
    ('split lines', 1.0)
    """
    breakpoints = breakpoint_functions(link) + list(extra_breakpoints)
    if not breakpoints:
        n = n_nodes or QUADRATURE_NODES[r]
        n = max(3 * n // 4, 2) if coarse else n
        return "tensor Gauss-Hermite", {"nodes_per_coordinate": n}, tensor_grid(r, n)
    outer, line = SPLIT_NODES[r]
    outer = n_nodes or outer
    if coarse:
        outer, line = max(3 * outer // 4, 1), max(3 * line // 4, 2)
    axis = _line_axis(link, r)
    cuts = _fixed_cuts(link, r, axis)
    on_line = breakpoint_functions(link, skip_axes=set(cuts)) + list(extra_breakpoints)
    rule = split_line_grid(r, axis, on_line, outer, line, outer_cuts=cuts)
    details = {
        "line_axis": axis,
        "outer_nodes_per_coordinate": outer if r > 1 else 0,
        "line_nodes_per_piece": line,
    }
    return "split lines (Gauss-Legendre between kinks, Gauss-Hermite outside)", details, rule


def link_moments(
    link: LinkNode, r: int, degree_cutoff: int, n_nodes: int | None = None, seed: int = 0
) -> dict:
    """E g, E g², c_α = E[g He_α]/α! (Σ_i α_i ≤ K) and their errors (module docstring).

    Parameters
    ----------
    link : LinkNode
        g.
    r : int
        Latent dimension.
    degree_cutoff : int
        K.
    n_nodes : int, optional
        See :func:`link_rule` (r ≤ 4).
    seed : int
        Seeds the Monte Carlo draws (r > 4).

    Returns
    -------
    dict
        ``mean``, ``norm2``, ``terms`` {α: c_α} (those within their error of 0 left out),
        ``coefficient_errors`` {α: error}, ``quadrature`` (method, nodes, ``error`` of mean,
        norm2 and the largest of a coefficient, ``converged``).

    Examples
    --------
    >>> from replearn.expression import parse_expression
    >>> moments = link_moments(parse_expression("relu(z1)", 1), 1, degree_cutoff=2)
    >>> round(moments["norm2"], 12), round(moments["terms"][(1,)], 12)
    (0.5, 0.5)
    """
    indices = _indices(r, degree_cutoff)
    if r <= 4:
        method, about, (Z, W) = link_rule(link, r, n_nodes)
        fine = _moments(link, Z, W, indices)
        _, about_coarse, (Z, W) = link_rule(link, r, n_nodes, coarse=True)
        coarse = _moments(link, Z, W, indices)
        errors = {
            "mean": abs(fine["mean"] - coarse["mean"]),
            "norm2": abs(fine["norm2"] - coarse["norm2"]),
        }
        coefficient_errors = (fine["coefficients"] - coarse["coefficients"]).abs()
        zero_below = torch.maximum(ZERO_FACTOR * coefficient_errors, ROUNDING * fine["magnitudes"])
        about = {**about, "check": about_coarse, "error_estimate": "fine - coarse rule"}
    else:
        method = "Monte Carlo"
        generator = np.random.default_rng([int(seed), MC_SEED])
        Z = torch.from_numpy(generator.standard_normal((MC_SAMPLES, r)))
        W = torch.full((MC_SAMPLES,), 1.0 / MC_SAMPLES, dtype=torch.float64)
        fine = _moments(link, Z, W, indices)
        square_square, coefficient_squares = fine["second"]
        n = MC_SAMPLES

        def standard_error(mean_of_square, mean):
            return math.sqrt(max(mean_of_square - mean * mean, 0.0) / (n - 1))

        errors = {
            "mean": standard_error(fine["norm2"], fine["mean"]),
            "norm2": standard_error(square_square, fine["norm2"]),
        }
        coefficient_errors = (
            (coefficient_squares - fine["coefficients"] ** 2).clamp(min=0) / (n - 1)
        ).sqrt()
        zero_below = torch.maximum(MC_ZERO_SE * coefficient_errors, ROUNDING * fine["magnitudes"])
        about = {"samples": MC_SAMPLES, "seed": int(seed), "error_estimate": "standard error"}
    coefficients = torch.where(fine["coefficients"].abs() <= zero_below, 0.0, fine["coefficients"])
    terms = {alpha: float(c) for alpha, c in zip(indices, coefficients.tolist(), strict=True) if c}
    errors["coefficients"] = float(coefficient_errors.max())
    scale = max(fine["norm2"], 1e-300)
    # Monte Carlo has no convergence to check: its standard errors are the statement
    converged = r > 4 or (
        errors["norm2"] <= CONVERGENCE_TOLERANCE * scale
        and errors["coefficients"] <= CONVERGENCE_TOLERANCE * math.sqrt(scale)
    )
    return {
        "mean": fine["mean"],
        "norm2": fine["norm2"],
        "terms": terms,
        "coefficient_errors": dict(zip(indices, coefficient_errors.tolist(), strict=True)),
        "quadrature": {"method": method, **about, "error": errors, "converged": converged},
    }
