"""The exponents of a link and the leap structure of a multi-index target.

**Information exponent** (Ben Arous, Gheissari & Jagannath 2021): the lowest degree k ≥ 1
with a non-zero Hermite coefficient of f* (the mean removed). For a polynomial the
coefficients are exact (round-off residues ≤ 1e-15 of the largest are dropped when it is
built); for a link each stored coefficient is at least ``ZERO_FACTOR`` (10) times its
estimated quadrature error (smaller ones are stored as 0, :mod:`replearn.links`), so a
stored coefficient is non-zero, and the exponent is the lowest degree that has one.

**Generative exponent** (Damian, Pillaud-Vivien, Lee & Bruna 2024), single-index y = g(z) + ε:

    k* = min{k ≥ 1 : E_y[ζ_k(y)²] > 0},   ζ_k(y) = E[He_k(z) ∣ y],

the lowest degree that some label transform T(y) correlates with (E[T(y)He_k(z)] =
E[T(y)ζ_k(y)]). How it is computed, exactly up to rounding:

- Bins. For levels t_1 < … < t_K (quantiles of y), with F_k(t) = E[He_k(z)·P(y ≤ t ∣ z)]
  and P(t) = P(y ≤ t),

      E_y[ζ_k²] ≥ Σ_b (ΔF_k(b))² / ΔP(b),

  the energy of E[He_k ∣ the bin of y] — the conditional expectation on a coarser
  σ-algebra, hence a lower bound, with equality as the bins refine. If ζ_k ≡ 0 every
  ΔF_k(b) is 0; if ζ_k ≠ 0 on a set of positive probability, fine quantile bins see it.
  So "> 0" is decided on the binned sum: a positive value is a proof (lower bound).
- Noiseless, y = g(z): P(y ≤ t ∣ z) = 1{g(z) ≤ t}. The set {g ≤ t} is a union of intervals
  whose ends (the preimages of t, found by a grid of ``GRID`` points on [−10, 10] and
  bisection) give F_k in closed form, since (He_{k−1}φ)' = −He_k φ:

      ∫_a^b He_k(z) φ(z) dz = He_{k−1}(a)φ(a) − He_{k−1}(b)φ(b),    P = Φ(b) − Φ(a),

  — no quadrature: atoms (sign, relu's 0) and preimages of any multiplicity are exact.
- Rademacher noise ±ς: P(y ≤ t ∣ z) = ½·1{g ≤ t − ς} + ½·1{g ≤ t + ς}: the same formula.
- Gaussian noise ς: P(y ≤ t ∣ z) = Φ((t − g(z))/ς), integrated over z by a composite
  Gauss–Legendre rule (``PIECES`` pieces of [−10, 10], also cut at the link's breakpoints,
  ``PIECE_NODES`` nodes each); its error is estimated with half the nodes per piece.

Tolerance for "zero". Let δ bound the error of each computed F_k(t). A true zero then
shows as abs(ΔF_k(b)) ≤ 2δ, so Σ_b ΔF_k²/ΔP ≤ 4δ²·Σ_b 1/ΔP. We call ζ_k zero when

    Σ_b ΔF_k(b)²/ΔP(b) ≤ ZERO_SAFETY · 4δ²·Σ_b 1/ΔP(b)

(ZERO_SAFETY = 100). Noiseless or Rademacher: each preimage a is found to within a few ulps
of a ∈ [−10, 10], so its term He_{k−1}(a)φ(a) is off by ≤ 20ε·abs(He_k(a)φ(a)) + ε·abs(He_{k−1}(a)φ(a));
with abs(He_j(z))·φ(z) ≤ √(j!) (Cramér's bound: abs(He_j(z))·e^{−z²/4} ≤ 1.09·√(j!)) this is
≤ 21·ε·√(k!) per preimage, so δ = 32·ε·√(k!)·(number of preimages of t + 1). Gaussian
noise: δ = the larger of that and the rule's estimated error. The values reported are
ρ_k = E_y[ζ_k²]/k! ∈ [0, 1] (the share of He_k's variance that y can explain).

**Leap structure** (Abbe, Boix-Adserà & Misiakiewicz 2023, for Gaussian inputs): with S the
Hermite support of f* in the latent basis (α with c_α ≠ 0, deg α = Σ_i α_i ≥ 1) and L the set of
directions learned so far, a term α is *visible* with leap ℓ when its degree in the
unlearned coordinates, Σ_{i ∉ L} α_i, is between 1 and ℓ. Each step learns every direction
of every visible term. ℓ = 2 is the one step of Damian et al. with n ≈ d² (it sees degree-2
terms: H = E[∇²f*]); ℓ = 1 a giant step with n ≈ d (Dandi et al. 2023: degree-1 couplings,
the staircase). The leap complexity Leap(S) is the smallest ℓ with which the steps reach
every direction f* uses (He₃(z1): 3; He₂(z1) + He₃(z1)·z2: 2). This reads the support only:
a cancellation among coefficients (a degree-2 part whose matrix is singular) is not seen
— ``target.hessian_rank()`` reports that.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from replearn.targets import MultiIndexTarget

__all__ = [
    "information_exponent",
    "generative_exponent",
    "conditional_hermite_energy",
    "leap_structure",
    "leap_complexity",
]

HALF_WIDTH = 10.0  # P(|z| > 10) = 1.5e-23
GRID = 4001  # grid points on [−10, 10] where preimages are bracketed (spacing 0.005)
BISECTIONS = 60
N_BINS = 128  # quantile bins of y
PIECES = 400  # composite Gauss–Legendre over [−10, 10] (Gaussian noise)
PIECE_NODES = 16
ZERO_SAFETY = 100.0
MAX_EXPONENT = 12  # generative exponents are sought up to this degree by default
EPS = float(np.finfo(np.float64).eps)


def information_exponent(target: MultiIndexTarget) -> int:
    """The lowest degree k ≥ 1 with a non-zero Hermite coefficient of f* (module doc).

    Parameters
    ----------
    target : MultiIndexTarget
        Any target (polynomial or link, any r).

    Returns
    -------
    int

    Examples
    --------
    >>> import replearn as rl
    >>> information_exponent(rl.MultiIndexTarget.from_expression("He3(z1)", d=5))
    3
    >>> information_exponent(rl.paper_target(d=10))
    2
    """
    _check_target(target)
    degrees = [sum(alpha) for alpha, c in target.terms.items() if c != 0.0 and sum(alpha) > 0]
    if degrees:
        return min(degrees)
    if target.degree is None:
        raise ValueError(
            f"target {target.name!r} has no non-zero Hermite coefficient up to its "
            f"degree_cutoff = {target.degree_cutoff}: raise degree_cutoff"
        )
    raise ValueError(f"target {target.name!r} is constant: it has no information exponent")


def _check_target(target) -> None:
    if not isinstance(target, MultiIndexTarget):
        raise ValueError(f"target must be a MultiIndexTarget, got {type(target).__name__}")


def _check_noise(noise, noise_kind) -> float:
    from replearn.data import NOISE_KINDS

    noise = float(noise)
    if not math.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite standard deviation >= 0, got {noise}")
    if noise_kind not in NOISE_KINDS:
        raise ValueError(f"noise_kind must be one of {NOISE_KINDS}, got {noise_kind!r}")
    return noise


def _link(target: MultiIndexTarget):
    """z ↦ g(z) on a 1-D float64 tensor (r = 1 only)."""
    if target.r != 1:
        raise ValueError(
            f"the generative exponent is computed for single-index targets (r = 1), got "
            f"r={target.r}; for multi-index targets see leap_structure"
        )
    return lambda z: target.latent_function(z.reshape(-1, 1).to(torch.float64)).reshape(-1)


def _normal_pdf(z: torch.Tensor) -> torch.Tensor:
    return torch.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def _normal_cdf(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.special.erfc(-z / math.sqrt(2))


def _hermite_table(k_max: int, z: torch.Tensor) -> torch.Tensor:
    """He_0…He_kmax at z (…, k_max + 1); ±inf rows give 0 after multiplying by φ."""
    from replearn.hermite import he_all

    finite = torch.where(torch.isfinite(z), z, torch.zeros_like(z))
    return he_all(k_max, finite.reshape(-1, 1))[:, 0, :].reshape(*z.shape, k_max + 1)


def _sublevel_sets(g, levels: torch.Tensor):
    """For each level t: the cut points of {z: g(z) ≤ t} and the membership of the pieces.

    Returns (cuts (T, C) padded with +inf, inside (T, C + 1) bool: piece j is (cut_{j−1},
    cut_j] with cut_{−1} = −inf, counts (T,) cut points per level).
    """
    grid = torch.linspace(-HALF_WIDTH, HALF_WIDTH, GRID, dtype=torch.float64)
    values = g(grid)
    member = values[None, :] <= levels[:, None]  # (T, G)
    change = member[:, 1:] != member[:, :-1]
    level_index, cell = torch.nonzero(change, as_tuple=True)
    left, right = grid[cell].clone(), grid[cell + 1].clone()
    left_member = member[level_index, cell]
    t = levels[level_index]
    for _ in range(BISECTIONS):
        middle = (left + right) / 2
        same = (g(middle) <= t) == left_member
        left = torch.where(same, middle, left)
        right = torch.where(same, right, middle)
    points = (left + right) / 2
    counts = torch.bincount(level_index, minlength=len(levels))
    width = int(counts.max()) if len(counts) else 0
    cuts = torch.full((len(levels), width), math.inf, dtype=torch.float64)
    order = torch.argsort(level_index * 1e3 + points / (4 * HALF_WIDTH), stable=True)
    position = torch.arange(len(points)) - torch.repeat_interleave(
        torch.cumsum(counts, 0) - counts, counts
    )
    cuts[level_index[order], position] = points[order]
    # membership of each piece: that of the grid point at its left end (piece 0: grid[0])
    inside = torch.zeros(len(levels), width + 1, dtype=torch.bool)
    inside[:, 0] = member[:, 0]
    for j in range(width):  # after cut j the membership flips (cuts are single crossings)
        inside[:, j + 1] = torch.where(j < counts, ~inside[:, j], inside[:, j])
    return cuts, inside, counts


def _closed_form_cdf(g, levels: torch.Tensor, k_max: int):
    """F_k(t) = E[He_k(z) 1{g(z) ≤ t}] (k = 0…k_max, F_0 = P) in closed form, and δ."""
    cuts, inside, counts = _sublevel_sets(g, levels)
    T, C = cuts.shape
    lows = torch.cat([torch.full((T, 1), -math.inf, dtype=torch.float64), cuts], dim=1)
    highs = torch.cat([cuts, torch.full((T, 1), math.inf, dtype=torch.float64)], dim=1)
    F = torch.zeros(T, k_max + 1, dtype=torch.float64)
    # ∫_a^b He_k φ = He_{k−1}(a)φ(a) − He_{k−1}(b)φ(b); k = 0: Φ(b) − Φ(a)
    for end, sign in ((lows, 1.0), (highs, -1.0)):
        finite = torch.isfinite(end)
        density = torch.where(finite, _normal_pdf(torch.where(finite, end, 0.0)), 0.0)
        table = _hermite_table(k_max, end)  # (T, C + 1, k_max + 1)
        weight = inside.to(torch.float64) * sign
        F[:, 1:] += torch.einsum("tc,tck->tk", weight * density, table[..., :-1])
        F[:, 0] -= torch.einsum("tc,tc->t", weight, _normal_cdf(end))
    factorial_root = torch.tensor(
        [math.sqrt(math.factorial(k)) for k in range(k_max + 1)], dtype=torch.float64
    )
    delta = 32 * EPS * factorial_root[None, :] * (counts[:, None] + 1).to(torch.float64)
    return F, delta


def _composite_rule(target, nodes_per_piece: int):
    """Gauss–Legendre on PIECES pieces of [−10, 10], also cut at the link's breakpoints."""
    cuts = np.linspace(-HALF_WIDTH, HALF_WIDTH, PIECES + 1)
    if hasattr(target, "link"):
        from replearn.links import breakpoint_functions
        from replearn.quadrature import line_zeros

        breakpoints = breakpoint_functions(target.link)
        if breakpoints:
            extra = line_zeros(breakpoints, torch.zeros(1, 0, dtype=torch.float64), 0)[0]
            cuts = np.unique(np.concatenate([cuts, extra]))
    x, w = np.polynomial.legendre.leggauss(nodes_per_piece)
    half, middle = np.diff(cuts) / 2, (cuts[1:] + cuts[:-1]) / 2
    z = torch.from_numpy((middle[:, None] + half[:, None] * x).reshape(-1))
    weights = torch.from_numpy((half[:, None] * w).reshape(-1)) * _normal_pdf(z)
    return z, weights


def _smoothed_cdf(target, g, levels: torch.Tensor, k_max: int, noise: float):
    """F_k(t) = E[He_k(z) Φ((t − g(z))/ς)] by the composite rule, and δ (its error)."""
    results = []
    for nodes in (PIECE_NODES, PIECE_NODES // 2):
        z, w = _composite_rule(target, nodes)
        table = _hermite_table(k_max, z)  # (N, k_max + 1)
        probability = _normal_cdf((levels[:, None] - g(z)[None, :]) / noise)  # (T, N)
        results.append((probability * w) @ table)
    F, coarse = results
    factorial_root = torch.tensor(
        [math.sqrt(math.factorial(k)) for k in range(k_max + 1)], dtype=torch.float64
    )
    delta = torch.maximum((F - coarse).abs(), 32 * EPS * factorial_root[None, :])
    return F, delta


def _quantile_levels(values: torch.Tensor, weights: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Bin edges between distinct values near the weighted quantiles j/n_bins of y."""
    order = torch.argsort(values)
    sorted_values, cumulative = values[order], torch.cumsum(weights[order], 0)
    cumulative = cumulative / cumulative[-1]
    distinct, first = torch.unique_consecutive(sorted_values, return_counts=True)
    ends = torch.cumsum(first, 0) - 1  # last index of each distinct value
    cumulative_at = cumulative[ends]
    if len(distinct) < 2:
        return torch.zeros(0, dtype=torch.float64)
    midpoints = (distinct[1:] + distinct[:-1]) / 2  # between distinct value i and i + 1
    targets = torch.arange(1, n_bins, dtype=torch.float64) / n_bins
    index = torch.searchsorted(cumulative_at[:-1].contiguous(), targets).clamp(
        max=len(midpoints) - 1
    )
    return torch.unique(midpoints[index])


def conditional_hermite_energy(
    target: MultiIndexTarget,
    max_degree: int = MAX_EXPONENT,
    noise: float = 0.0,
    noise_kind: str = "gaussian",
    n_bins: int = N_BINS,
) -> dict:
    """ρ_k = E_y[(E[He_k(z) ∣ y])²]/k! for k = 1…max_degree, with the tolerance for "zero".

    Single-index targets (r = 1); the method and the tolerance are in the module docstring.

    Parameters
    ----------
    target : MultiIndexTarget
        f*(x) = g(u·x); labels y = f*(x) + ε.
    max_degree : int
        The highest k.
    noise : float
        Standard deviation ς of ε (0: noiseless).
    noise_kind : {"gaussian", "rademacher"}
    n_bins : int
        Quantile bins of y.

    Returns
    -------
    dict
        ``energy`` {k: ρ_k (a lower bound, exact as the bins refine)}, ``tolerance`` {k: the
        threshold below which ρ_k counts as 0}, ``nonzero`` {k: bool}, ``method``, ``bins``.

    Examples
    --------
    >>> import replearn as rl
    >>> info = conditional_hermite_energy(rl.MultiIndexTarget.from_expression("z1^2", d=4), 3)
    >>> info["nonzero"]                        # E[z|z²] = 0, E[He_2|z²] = z² − 1
    {1: False, 2: True, 3: False}
    """
    _check_target(target)
    g = _link(target)
    noise = _check_noise(noise, noise_kind)
    for name, value, low in (("max_degree", max_degree, 1), ("n_bins", n_bins, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 10**4:
            raise ValueError(f"{name} must be an integer in [{low}, 10000], got {value!r}")
    # y's law on a fine grid: the bin edges (quantiles) need no more than that
    z, w = _composite_rule(target, 8)
    gz = g(z)
    if noise > 0 and noise_kind == "rademacher":
        y, wy = torch.cat([gz - noise, gz + noise]), torch.cat([w, w]) / 2
    elif noise > 0:
        from replearn.quadrature import normal_gauss_hermite

        e, we = normal_gauss_hermite(20)
        y, wy = (gz[:, None] + noise * e).reshape(-1), (w[:, None] * we).reshape(-1)
    else:
        y, wy = gz, w
    levels = _quantile_levels(y, wy, n_bins)
    if noise == 0.0:
        F, delta = _closed_form_cdf(g, levels, max_degree)
        method = "closed form at the preimages of each bin edge"
    elif noise_kind == "rademacher":
        lower, d_lower = _closed_form_cdf(g, levels - noise, max_degree)
        upper, d_upper = _closed_form_cdf(g, levels + noise, max_degree)
        F, delta = (lower + upper) / 2, (d_lower + d_upper) / 2
        method = "closed form at the preimages of each bin edge ± noise"
    else:
        F, delta = _smoothed_cdf(target, g, levels, max_degree, noise)
        method = f"composite Gauss-Legendre ({PIECES} pieces) of E[He_k(z) Phi((t - g(z))/noise)]"
    # add the ends: F(−∞) = 0, F(+∞) = (P = 1, E He_k = 0)
    top = torch.zeros(1, max_degree + 1, dtype=torch.float64)
    top[0, 0] = 1.0
    F = torch.cat([torch.zeros(1, max_degree + 1, dtype=torch.float64), F, top])
    delta = torch.cat([torch.zeros(1, max_degree + 1, dtype=torch.float64), delta, delta[:1] * 0])
    mass = F[1:, 0] - F[:-1, 0]  # ΔP per bin
    keep = mass > 0
    differences = (F[1:, 1:] - F[:-1, 1:])[keep]
    mass = mass[keep]
    bin_delta = torch.maximum(delta[1:, 1:], delta[:-1, 1:])[keep]
    energy = (differences**2 / mass[:, None]).sum(0)
    tolerance = ZERO_SAFETY * 4 * (bin_delta**2 / mass[:, None]).sum(0)
    factorials = torch.tensor(
        [float(math.factorial(k)) for k in range(1, max_degree + 1)], dtype=torch.float64
    )
    rho, threshold = (energy / factorials).tolist(), (tolerance / factorials).tolist()
    degrees = range(1, max_degree + 1)
    return {
        "target": target.name,
        "noise": noise,
        "noise_kind": noise_kind,
        "energy": dict(zip(degrees, rho, strict=True)),
        "tolerance": dict(zip(degrees, threshold, strict=True)),
        "nonzero": {k: rho[k - 1] > threshold[k - 1] for k in degrees},
        "method": method,
        "bins": int(keep.sum()),
    }


def generative_exponent(
    target: MultiIndexTarget,
    noise: float = 0.0,
    noise_kind: str = "gaussian",
    max_degree: int = MAX_EXPONENT,
) -> int:
    """k* = min{k ≥ 1 : E_y[(E[He_k(z) ∣ y])²] > 0} of a single-index target (module doc).

    Parameters
    ----------
    target : MultiIndexTarget
        f*(x) = g(u·x), r = 1.
    noise : float
        Standard deviation of the label noise (0: noiseless).
    noise_kind : {"gaussian", "rademacher"}
    max_degree : int
        Search up to this k; beyond it a ValueError says so.

    Returns
    -------
    int

    Examples
    --------
    >>> import replearn as rl
    >>> def exponent(expr):
    ...     return generative_exponent(rl.MultiIndexTarget.from_expression(expr, d=4))
    >>> exponent("z1^2"), exponent("sign(z1)"), exponent("He4(z1)")
    (2, 1, 2)
    """
    info = conditional_hermite_energy(target, max_degree, noise, noise_kind)
    for k, nonzero in info["nonzero"].items():
        if nonzero:
            return k
    raise ValueError(
        f"target {target.name!r}: E[He_k(z)|y] = 0 for every k <= {max_degree} (a constant "
        "target, or a generative exponent above max_degree)"
    )


def _support(target: MultiIndexTarget) -> list[tuple[int, ...]]:
    return [alpha for alpha, c in target.terms.items() if c != 0.0 and sum(alpha) > 0]


def leap_structure(target: MultiIndexTarget, leap: int = 2) -> dict:
    """Which latent directions a learner that leaps ``leap`` degrees per step finds, step by step.

    Parameters
    ----------
    target : MultiIndexTarget
        f*; its Hermite support in the latent basis (module docstring).
    leap : int
        ℓ: 2 for Damian et al.'s one step (n ≈ d²), 1 for a giant step with n ≈ d.

    Returns
    -------
    dict
        ``steps``: a list of lists of direction indices (0-based: z1 is 0) learned at step
        1, 2, …; ``unreached``: directions f* uses that no step reaches; ``leap``;
        ``leap_complexity``: Leap(S).

    Examples
    --------
    >>> import replearn as rl
    >>> staircase = rl.MultiIndexTarget.from_expression("He2(z1) + He3(z1)*z2", d=6)
    >>> info = leap_structure(staircase)
    >>> info["steps"], info["unreached"], info["leap_complexity"]
    ([[0], [1]], [], 2)
    >>> leap_structure(rl.MultiIndexTarget.from_expression("He3(z1)", d=6))["unreached"]
    [0]
    """
    _check_target(target)
    if isinstance(leap, bool) or not isinstance(leap, int) or leap < 1:
        raise ValueError(f"leap must be an integer >= 1, got {leap!r}")
    support = _support(target)
    used = sorted({i for alpha in support for i, a in enumerate(alpha) if a})
    learned: set[int] = set()
    steps = []
    while True:
        new = set()
        for alpha in support:
            fresh = sum(a for i, a in enumerate(alpha) if i not in learned)
            if 1 <= fresh <= leap:
                new |= {i for i, a in enumerate(alpha) if a and i not in learned}
        if not new:
            break
        steps.append(sorted(new))
        learned |= new
    return {
        "leap": leap,
        "steps": steps,
        "unreached": [i for i in used if i not in learned],
        "leap_complexity": leap_complexity(target),
    }


def leap_complexity(target: MultiIndexTarget) -> int:
    """Leap(S): the smallest ℓ with which the steps reach every direction f* uses (0 if none).

    Parameters
    ----------
    target : MultiIndexTarget

    Returns
    -------
    int

    Examples
    --------
    >>> import replearn as rl
    >>> leap_complexity(rl.MultiIndexTarget.from_expression("z1 + z1*z2 + z1*z2*z3", d=6))
    1
    >>> leap_complexity(rl.MultiIndexTarget.from_expression("He3(z1)", d=6))
    3
    """
    support = _support(target)
    used = {i for alpha in support for i, a in enumerate(alpha) if a}
    if not used:
        return 0
    for ell in range(1, max(sum(alpha) for alpha in support) + 1):
        learned: set[int] = set()
        while True:
            new = {
                i
                for alpha in support
                if 1 <= sum(a for j, a in enumerate(alpha) if j not in learned) <= ell
                for i, a in enumerate(alpha)
                if a and i not in learned
            }
            if not new:
                break
            learned |= new
        if learned >= used:
            return ell
    raise AssertionError("unreachable: ℓ = the largest degree reaches every direction")
