"""Gaussian quadrature rules: E over z ~ N(0, I_r) as a weighted sum Σ_n w_n F(z_n).

- :func:`normal_gauss_hermite`: n nodes on the line, exact for polynomials of degree < 2n.
- :func:`tensor_grid`: the product of r such rules (n^r points), exact for products of
  polynomials of degree < 2n in each coordinate; for a smooth non-polynomial F its error
  falls geometrically in n (estimated by comparing two node counts).
- :func:`split_line_grid`: for F with kinks or jumps (sign, abs, relu of a sub-expression):
  one coordinate (the *line*) is integrated over [−L, L] split at every zero of the given
  breakpoint functions, Gauss–Legendre on each piece times the normal density; the other
  coordinates by a tensor Gauss–Hermite rule. On each piece F is smooth, so the line rule
  converges geometrically; the rule over the other coordinates converges geometrically when
  the line integral is smooth in them (e.g. sign(z1 + He3(z2))), slowly where it is not
  (sign(z1·z2) jumps at z2 = 0) — the caller's convergence check reports it.
  Zeros are found on a grid of :data:`ROOT_GRID` points of [−L, L], then refined by
  bisection to machine precision; two zeros closer than the grid spacing (a tangency) are
  missed and only cost accuracy, which the convergence check reports.

P(z outside [−L, L]) = 1.5·10⁻²³ for L = 10, so the line's cut at ±L is far below float64 rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

__all__ = [
    "normal_gauss_hermite",
    "tensor_grid",
    "split_line_grid",
    "line_zeros",
    "LINE_HALF_WIDTH",
    "MAX_POINTS",
    "QuadratureSizeError",
]

LINE_HALF_WIDTH = 10.0  # P(|z| > 10) = 1.5e-23
MAX_POINTS = 2 * 10**7  # largest rule (memory ~ 20 × 8 bytes per point in its users)
ROOT_GRID = 801  # grid points on [−L, L] where sign changes of a breakpoint function are sought
BISECTIONS = 60  # halvings of a bracket of width 2L/800: below 1e-16 of L


class QuadratureSizeError(ValueError):
    """A quadrature rule with more points than ``MAX_POINTS``. ``str(err)`` ends with the
    Python advice (``n_nodes=…``); ``err.cause`` is the same line without it, for callers
    that have no such option (the ``replearn theory`` command)."""

    def __init__(self, points: int, rule: str, r: int):
        self.points, self.rule, self.r = points, rule, r
        self.cause = (
            f"the quadrature ({rule}) needs {points:,} points, more than the {MAX_POINTS:,} "
            f"it may use (memory ~ 160 bytes a point): the target's {r} latent directions are "
            "too many for this rule"
        )
        super().__init__(f"{self.cause}; pass a smaller n_nodes (nodes per coordinate)")


def normal_gauss_hermite(n_nodes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and weights of E over N(0, 1): Σ_k w_k f(z_k) = E f(z), exact for deg f < 2n.

    Parameters
    ----------
    n_nodes : int
        Number of nodes n ≥ 1 (numpy's weights underflow beyond about 300).

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        Nodes and weights, float64, shape (n,); the weights sum to 1.

    Examples
    --------
    >>> nodes, weights = normal_gauss_hermite(3)
    >>> round(float(weights @ nodes**2), 12), round(float(weights @ nodes**4), 12)   # 1, 3
    (1.0, 3.0)
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_nodes)
    return torch.from_numpy(nodes), torch.from_numpy(weights / math.sqrt(2 * math.pi))


def tensor_grid(r: int, n_nodes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All n^r points of the product Gauss–Hermite rule: Z (n^r, r), weights (n^r,).

    Parameters
    ----------
    r : int
        Number of coordinates.
    n_nodes : int
        Nodes per coordinate; n^r must not exceed :data:`MAX_POINTS`.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        Points (n^r, r) and weights (n^r,), float64.

    Examples
    --------
    >>> Z, W = tensor_grid(2, 3)
    >>> Z.shape, round(float(W @ (Z[:, 0] * Z[:, 1]) ** 2), 12)   # E[z1² z2²] = 1
    (torch.Size([9, 2]), 1.0)
    """
    if n_nodes**r > MAX_POINTS:
        raise QuadratureSizeError(n_nodes**r, f"{n_nodes} nodes per coordinate, {n_nodes}^{r}", r)
    nodes, weights = normal_gauss_hermite(n_nodes)
    Z = torch.cartesian_prod(*([nodes] * r)).reshape(-1, r)
    W = torch.cartesian_prod(*([weights] * r)).reshape(-1, r).prod(dim=1)
    return Z, W


def line_zeros(
    functions: Sequence[Callable[[torch.Tensor], torch.Tensor]],
    outer: torch.Tensor,
    axis: int,
    half_width: float = LINE_HALF_WIDTH,
) -> list[list[float]]:
    """Zeros in (−L, L) of each function along the line z_axis = t, per outer point.

    A zero is a sign change (or an exact 0) between neighbours of a grid of
    :data:`ROOT_GRID` points, refined by bisection; a function that is 0 on a stretch of
    the line has the ends of that stretch returned (none if it is 0 on the whole line).

    Parameters
    ----------
    functions : sequence of callables
        Each maps points Z (N, r) to values (N,).
    outer : torch.Tensor, shape (M, r − 1)
        The other coordinates, in order, of each line.
    axis : int
        The coordinate that varies along the line.
    half_width : float
        L.

    Returns
    -------
    list of list of float
        Sorted zeros of all the functions, for each of the M lines.

    Examples
    --------
    >>> zeros = line_zeros([lambda Z: Z[:, 0] ** 2 - 2], torch.zeros(1, 0), axis=0)
    >>> [round(z, 12) for z in zeros[0]]
    [-1.414213562373, 1.414213562373]
    """
    M, r = outer.shape[0], outer.shape[1] + 1
    grid = torch.linspace(-half_width, half_width, ROOT_GRID, dtype=torch.float64)
    found: list[set[float]] = [set() for _ in range(M)]
    chunk = max(1, 2**21 // ROOT_GRID)  # lines per batch: ~2M points
    for start in range(0, M, chunk):
        rows = outer[start : start + chunk]
        m = rows.shape[0]
        for function in functions:
            values = function(_line_points(rows, axis, grid.expand(m, -1), r)).reshape(m, -1)
            sign = torch.sign(values)
            change = (sign[:, :-1] * sign[:, 1:] < 0) | ((sign[:, :-1] != 0) & (sign[:, 1:] == 0))
            line, cell = torch.nonzero(change, as_tuple=True)
            if len(line):
                left, right = grid[cell].clone(), grid[cell + 1].clone()
                left_sign = sign[line, cell]
                for _ in range(BISECTIONS):
                    middle = (left + right) / 2
                    point = _line_points(rows[line], axis, middle[:, None], r)
                    value = torch.sign(function(point).reshape(-1))
                    move_left = value == left_sign
                    left = torch.where(move_left, middle, left)
                    right = torch.where(move_left, right, middle)
                for i, t in zip((line + start).tolist(), ((left + right) / 2).tolist()):
                    found[i].add(t)
            # the far end of a stretch of exact zeros (its near end is a bracket above); a
            # function that is 0 along the whole line has no breakpoint on it
            leaving = (sign[:, :-1] == 0) & (sign[:, 1:] != 0)
            for i, j in torch.nonzero(leaving).tolist():
                found[start + i].add(float(grid[j]))
    return [sorted(z for z in zeros if -half_width < z < half_width) for zeros in found]


def _line_points(outer: torch.Tensor, axis: int, t: torch.Tensor, r: int) -> torch.Tensor:
    """Points (m·q, r): z_axis = t[i, j], the other coordinates outer[i]."""
    m, q = t.shape
    points = torch.empty(m, q, r, dtype=torch.float64)
    points[..., axis] = t
    others = [i for i in range(r) if i != axis]
    for column, i in enumerate(others):
        points[..., i] = outer[:, column][:, None]
    return points.reshape(-1, r)


def _outer_rule(r, axis, n_nodes, cuts, half_width):
    """Product rule over the coordinates other than ``axis``: Gauss–Hermite, or Gauss–Legendre
    pieces between the given cuts of a coordinate."""
    hermite_nodes, hermite_weights = normal_gauss_hermite(n_nodes)
    gl_nodes, gl_weights = np.polynomial.legendre.leggauss(n_nodes)
    axis_nodes, axis_weights = [], []
    for i in range(r):
        if i == axis:
            continue
        inside = sorted(c for c in cuts.get(i, ()) if -half_width < c < half_width)
        if not inside:
            axis_nodes.append(hermite_nodes)
            axis_weights.append(hermite_weights)
            continue
        ends = np.array([-half_width, *inside, half_width])
        half, middle = np.diff(ends) / 2, (ends[1:] + ends[:-1]) / 2
        nodes = (middle[:, None] + half[:, None] * gl_nodes).reshape(-1)
        weights = (half[:, None] * gl_weights).reshape(-1) * np.exp(-nodes * nodes / 2)
        axis_nodes.append(torch.from_numpy(nodes))
        axis_weights.append(torch.from_numpy(weights / math.sqrt(2 * math.pi)))
    size = math.prod(len(nodes) for nodes in axis_nodes)
    if size > MAX_POINTS:
        raise ValueError(f"outer rule of {size:.3g} points exceeds {MAX_POINTS:.0e}: fewer nodes")
    outer = torch.cartesian_prod(*axis_nodes).reshape(-1, r - 1)
    weights = torch.cartesian_prod(*axis_weights).reshape(-1, r - 1).prod(dim=1)
    return outer, weights


def split_line_grid(
    r: int,
    axis: int,
    breakpoints: Sequence[Callable[[torch.Tensor], torch.Tensor]],
    outer_nodes: int,
    line_nodes: int,
    half_width: float = LINE_HALF_WIDTH,
    outer_cuts: dict[int, Sequence[float]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A rule for E F(z), F smooth except where a breakpoint function is 0 (see module doc).

    An outer coordinate i with ``outer_cuts[i]`` (fixed kinks in z_i, e.g. of sign(z_i)) is
    integrated piece by piece between them with ``outer_nodes`` Gauss–Legendre nodes per
    piece instead of Gauss–Hermite.

    Parameters
    ----------
    r : int
        Number of coordinates.
    axis : int
        The line's coordinate.
    breakpoints : sequence of callables
        Functions of Z (N, r) whose zeros are F's kinks or jumps.
    outer_nodes : int
        Gauss–Hermite nodes per other coordinate.
    line_nodes : int
        Gauss–Legendre nodes per piece of the line.
    half_width : float
        The line is [−L, L].
    outer_cuts : dict of int to sequence of float, optional
        Fixed cut points of outer coordinates.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        Points (N, r) and weights (N,), float64; the weights sum to P(z_axis ∈ [−L, L]).

    Examples
    --------
    >>> Z, W = split_line_grid(1, 0, [lambda Z: Z[:, 0]], outer_nodes=1, line_nodes=40)
    >>> abs(float(W @ (torch.sign(Z[:, 0]) * Z[:, 0])) - math.sqrt(2 / math.pi)) < 1e-14  # E|z|
    True
    """
    if r > 1:
        outer, outer_weights = _outer_rule(r, axis, outer_nodes, outer_cuts or {}, half_width)
    else:
        outer = torch.zeros(1, 0, dtype=torch.float64)
        outer_weights = torch.ones(1, dtype=torch.float64)
    zeros = line_zeros(breakpoints, outer, axis, half_width) if breakpoints else [[]] * len(outer)
    L = half_width
    width = max(len(z) for z in zeros) + 2
    if outer.shape[0] * (width - 1) * line_nodes > MAX_POINTS:
        raise ValueError(
            f"split-line rule with {outer.shape[0]} lines of up to {width - 1} pieces exceeds "
            f"{MAX_POINTS:.0e} points: pass fewer nodes"
        )
    cuts = torch.tensor(
        [[-L, *z] + [L] * (width - 1 - len(z)) for z in zeros], dtype=torch.float64
    )  # padded with L: empty pieces of weight 0
    left, right = cuts[:, :-1], cuts[:, 1:]
    gl_nodes, gl_weights = np.polynomial.legendre.leggauss(line_nodes)
    gl_nodes, gl_weights = torch.from_numpy(gl_nodes), torch.from_numpy(gl_weights)
    half, middle = (right - left) / 2, (right + left) / 2
    line = middle[..., None] + half[..., None] * gl_nodes  # (M, K, Q)
    density = torch.exp(-line * line / 2) / math.sqrt(2 * math.pi)
    weights = outer_weights[:, None, None] * half[..., None] * gl_weights * density
    M, K, Q = line.shape
    points = _line_points(outer, axis, line.reshape(M, K * Q), r)
    weights = weights.reshape(-1)
    keep = weights != 0
    return points[keep], weights[keep]
