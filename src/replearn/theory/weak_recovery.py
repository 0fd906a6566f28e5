r"""Weak recovery of a single-index direction from n = α·d samples: thresholds and spectral overlap.

y = g(z) + ε with z = u·x, x ~ N(0, I_d). Everything below is a function of the law of
(y, e(y)), e(y) = E[z² | y]:

- **The weak-recovery threshold** (Mondelli & Montanari 2018; the AMP/spectral threshold of
  Barbier et al. 2019 for links with E[z | y] = 0): α_c = 1/E_y[(E[z² | y] − 1)²]. Noiseless
  phase retrieval y = z² has E[z² | y] = y, so α_c = 1/E[(z² − 1)²] = 1/2.
- **Spectral estimators** (Lu & Li 2017): the top eigenvector ŵ of D = (1/n)Σ T(yᵢ)xᵢxᵢᵀ. With
  τ = sup T, and for λ > τ (E over y and z jointly),

      ψ_α(λ) = λ(1/α + E[T/(λ − T)]),    φ(λ) = λ·E[T·z²/(λ − T)],

  λ̄ the minimiser of ψ_α on [τ, ∞) and λ* the solution of ψ_α(max(λ, λ̄)) = φ(λ): if
  ψ′_α(λ*) > 0 the squared overlap (ŵ·u)² tends to ψ′_α(λ*)/(ψ′_α(λ*) − φ′(λ*)), else to 0.
  The threshold of T is where λ* = λ̄: 1/α = E[T²/(λ̄ − T)²] = E[T(e − 1)/(λ̄ − T)]. By
  Cauchy–Schwarz on v = T/(λ̄ − T), E[v²] = E[v(e − 1)] ≤ √E[v²]·√E[(e − 1)²], so every T
  needs α ≥ α_c, with equality for v = e − 1, i.e. **T*(y) = 1 − 1/E[z² | y]** (up to scale;
  the optimal transform of Luo, Alghamdi & Lu 2019, which reaches α_c — Mondelli & Montanari's
  optimal threshold).

The law of (y, e(y)) is computed by quadrature:

- **noiseless** y = g(z): E_y[F(y)] = E_z[F(g(z))] by a midpoint rule in z (step 1e-3), and
  e(y) = Σ_k z_k²φ(z_k)/|g′(z_k)| / Σ_k φ(z_k)/|g′(z_k)| over the preimages z_k of y (found on
  a fine grid, refined by the secant method); where g is flat (ReLU's y = 0), y has an atom
  and e(y) = E[z² | g(z) = y] over the flat set.
- **Rademacher noise** y = g(z) ± ς: the preimages of y − ς and y + ς together.
- **Gaussian noise** y = g(z) + ς·N(0, 1): e(y) = ∫z²φ(z)N(y; g(z), ς²)dz / ∫φ(z)N(y; g(z), ς²)dz on
  a fine grid (step ≤ ς/8), E_y by Gauss–Hermite in (z, ε).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import brentq

from replearn.theory.scalar_functions import gauss_hermite, link_function

__all__ = [
    "posterior_moments",
    "weak_recovery_threshold",
    "optimal_spectral_transform",
    "spectral_threshold",
    "spectral_overlap",
]

NOISE_KINDS = ("rademacher", "gaussian")
_GRID_HALF_WIDTH = 10.0  # the preimage grid covers [−10, 10]: P(|z| > 10) < 2e-23
_OUTER_STEP = 1e-3  # E_y over a deterministic channel: midpoint rule in z, step 1e-3


def _link_of(target_or_link):
    """g for a string or callable link, or for a single-index MultiIndexTarget (r = 1)."""
    if hasattr(target_or_link, "latent_function"):  # a target: its own g (polynomial or link)
        if getattr(target_or_link, "r", None) != 1:
            raise ValueError(
                f"target must be single-index (r = 1), got r = {getattr(target_or_link, 'r', '?')}"
            )
        target = target_or_link

        def g(z):
            z = np.array(z, dtype=np.float64)
            Z = torch.from_numpy(z.reshape(-1, 1))
            return target.latent_function(Z).numpy().reshape(z.shape)

        return g
    return link_function(target_or_link)


def _check_noise(noise, noise_kind) -> float:
    if noise_kind not in NOISE_KINDS:
        raise ValueError(f"noise_kind must be one of {NOISE_KINDS}, got {noise_kind!r}")
    if isinstance(noise, bool) or not isinstance(noise, int | float) or not noise >= 0:
        raise ValueError(f"noise must be a number >= 0 (a standard deviation), got {noise!r}")
    if not math.isfinite(noise):
        raise ValueError(f"noise must be finite, got {noise!r}")
    return float(noise)


class _Preimages:
    """Preimages of levels under g, from g's monotone pieces on a grid of [−L, L] (step h).

    Each strictly monotone piece of the grid is inverted by linear interpolation, then two
    Newton steps on g (g′ by central differences); a level meets a piece iff it lies in the
    piece's range. A flat run of g (two or more grid points at one value) is an atom of
    y: its probability and moments are exact Gaussian integrals over the run, whose ends are
    refined by bisection.
    """

    def __init__(self, g, half_width: float = _GRID_HALF_WIDTH, step: float = 5e-4):
        self.g = g
        count = int(math.ceil(half_width / step))
        t = step * np.arange(-count, count + 1)  # symmetric, 0 on the grid
        G = np.asarray(g(t), dtype=float) * np.ones_like(t)
        dG = np.diff(G)
        tol = 1e-12 * (1.0 + np.abs(G[:-1]))
        direction = np.where(np.abs(dG) <= tol, 0, np.sign(dG)).astype(int)
        self.pieces, self.atoms = [], []
        # runs of intervals k with one direction: grid points begin … stop
        changes = np.nonzero(np.diff(direction))[0] + 1
        for begin, stop in zip(np.r_[0, changes], np.r_[changes, direction.size], strict=True):
            if direction[begin] == 0:  # g = one value on t[begin] … t[stop]: an atom
                self.atoms.append((G[begin], *self._flat_moments(t, G, begin, stop)))
            elif direction[begin] > 0:
                self.pieces.append((G[begin : stop + 1], t[begin : stop + 1]))
            else:  # decreasing: reversed so that the levels increase (np.interp)
                self.pieces.append((G[begin : stop + 1][::-1], t[begin : stop + 1][::-1]))

    def _edge(self, inside: float, outside: float, level: float) -> float:
        """Where g stops being ``level`` between two grid points (bisection, 60 halvings)."""
        tol = 1e-12 * (1.0 + abs(level))
        for _ in range(60):
            middle = 0.5 * (inside + outside)
            if abs(float(self.g(np.array(middle))) - level) <= tol:
                inside = middle
            else:
                outside = middle
        return 0.5 * (inside + outside)

    def _flat_moments(self, t, G, i, j):
        """(P, E[z; ·], E[z²; ·]) over the flat run of grid points i … j, its ends refined."""
        a = -np.inf if i == 0 else self._edge(t[i], t[i - 1], G[i])
        b = np.inf if j == t.size - 1 else self._edge(t[j], t[j + 1], G[i])
        phi_a = 0.0 if np.isinf(a) else math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
        phi_b = 0.0 if np.isinf(b) else math.exp(-b * b / 2) / math.sqrt(2 * math.pi)
        probability = 0.5 * (math.erf(b / math.sqrt(2)) - math.erf(a / math.sqrt(2)))
        a_phi = 0.0 if np.isinf(a) else a * phi_a
        b_phi = 0.0 if np.isinf(b) else b * phi_b
        return probability, phi_a - phi_b, probability + a_phi - b_phi

    def _slope(self, z: np.ndarray) -> np.ndarray:
        """g′(z) by central differences (error ~1e-10 where g is smooth)."""
        h = 1e-5
        return (np.asarray(self.g(z + h), dtype=float) - np.asarray(self.g(z - h), dtype=float)) / (
            2 * h
        )

    def moments(self, levels) -> np.ndarray:
        """(mass, mass·E[z | ·], mass·E[z² | ·], atom), a (4, L) array over ``levels``: for
        isolated roots the mass is Σ φ(z_k)/|g′(z_k)| (a density, up to √(2π)); at an atom of
        y, the probability of the flat set."""
        levels = np.asarray(levels, dtype=float).ravel()
        out = np.zeros((4, levels.size))
        for piece_levels, roots in self.pieces:
            inside = (levels >= piece_levels[0]) & (levels <= piece_levels[-1])
            if not inside.any():
                continue
            at = levels[inside]
            root = np.interp(at, piece_levels, roots)
            lo, hi = roots.min(), roots.max()
            for _ in range(2):  # Newton on g itself: O(h²) → rounding
                slope_here = self._slope(root)
                step = (np.asarray(self.g(root), dtype=float) - at) / np.where(
                    slope_here != 0, slope_here, np.inf
                )
                root = np.clip(root - step, lo, hi)
            density = np.exp(-(root**2) / 2.0) / np.maximum(np.abs(self._slope(root)), 1e-300)
            out[0, inside] += density
            out[1, inside] += root * density
            out[2, inside] += root**2 * density
        for value, probability, first, second in self.atoms:
            hit = np.abs(levels - value) <= 1e-12 * (1.0 + abs(value))
            out[:, hit] = np.array([[probability], [first], [second], [1.0]])
        return out


def _conditional_moments(pre: _Preimages, y: np.ndarray, shifts) -> tuple[np.ndarray, np.ndarray]:
    """E[z | y], E[z² | y] for y = g(z) + s, s uniform on ``shifts``: the preimages of y − s
    for every s together; an atom of any shift outweighs every density. (E[z² | y] = 1, the
    prior's, where y has no preimage at all.)"""
    parts = np.stack([pre.moments(y - s) for s in shifts])  # (shift, 4, n)
    atom = parts[:, 3].max(axis=0) > 0
    use = np.where(atom[None, :], parts[:, 3] > 0, True)
    mass = (parts[:, 0] * use).sum(axis=0)
    first = (parts[:, 1] * use).sum(axis=0)
    second = (parts[:, 2] * use).sum(axis=0)
    positive = mass > 0
    safe = np.where(positive, mass, 1.0)
    return np.where(positive, first / safe, 0.0), np.where(positive, second / safe, 1.0)


def posterior_moments(target_or_link, noise: float = 0.0, noise_kind: str = "rademacher",
                      n_nodes: int = 100) -> dict[str, np.ndarray]:  # fmt: skip
    """The law of y as quadrature nodes, with E[z | y] and E[z² | y] at each node.

    Parameters
    ----------
    target_or_link : str, callable or MultiIndexTarget
        The link g: an expression in z1 (used as written), a vectorised callable, or a
        single-index (r = 1) MultiIndexTarget.
    noise : float
        Standard deviation ς of the label noise (replearn's ``noise``).
    noise_kind : {"rademacher", "gaussian"}
        ε = ±ς (replearn's default) or ε ~ N(0, ς²).
    n_nodes : int
        Gauss–Hermite nodes in z (and half as many in ε) for Gaussian noise. Deterministic
        channels (noiseless, Rademacher) use a midpoint rule in z of step 1e-3 on [−10, 10]
        instead: their E[z² | y] has kinks where the number of preimages changes (y = z² ± ς
        at z² = 2ς), which Gauss–Hermite resolves only to about 1 %; the midpoint rule has
        no node at z = 0, where a link may take a value of probability 0 (sign(0) = 0).

    Returns
    -------
    dict of ndarray
        ``weight`` (summing to 1), ``y``, ``mean`` (E[z | y]) and ``second`` (E[z² | y]).

    Examples
    --------
    Noiseless phase retrieval: E[z² | y] = y.

    >>> law = posterior_moments("z1**2")
    >>> bool(np.allclose(law["second"], law["y"], atol=1e-8))
    True
    """
    g = _link_of(target_or_link)
    noise = _check_noise(noise, noise_kind)
    if isinstance(n_nodes, bool) or not isinstance(n_nodes, int) or n_nodes < 2:
        raise ValueError(f"n_nodes must be an integer >= 2, got {n_nodes!r}")
    if noise > 0 and noise_kind == "gaussian":
        z, w = gauss_hermite(n_nodes)
        gz = np.asarray(g(z), dtype=float) * np.ones_like(z)
        eps, we = gauss_hermite(max(20, n_nodes // 2))
        y = (gz[:, None] + noise * eps[None, :]).ravel()
        weight = (w[:, None] * we[None, :]).ravel()
        step = min(2e-3, noise / 8.0)
        t = np.arange(-_GRID_HALF_WIDTH, _GRID_HALF_WIDTH + step / 2, step)
        log_phi, G = -(t**2) / 2.0, np.asarray(g(t), dtype=float)
        mean, second = np.empty(y.size), np.empty(y.size)
        rows = max(1, 2_000_000 // t.size)
        for start in range(0, y.size, rows):
            block = y[start : start + rows, None]
            log_like = log_phi[None, :] - (block - G[None, :]) ** 2 / (2.0 * noise**2)
            like = np.exp(log_like - log_like.max(axis=1, keepdims=True))
            mass = like.sum(axis=1)
            mean[start : start + rows] = like @ t / mass
            second[start : start + rows] = like @ (t * t) / mass
        return dict(weight=weight, y=y, mean=mean, second=second)
    # midpoint rule in z (no node at 0, where a link may take a value of probability 0)
    count = int(round(_GRID_HALF_WIDTH / _OUTER_STEP))
    z = _OUTER_STEP * (np.arange(-count, count) + 0.5)
    w = np.exp(-(z**2) / 2.0)
    w /= w.sum()
    gz = np.asarray(g(z), dtype=float) * np.ones_like(z)
    shifts = (0.0,) if noise == 0 else (-noise, noise)
    y = (gz[:, None] + np.array(shifts)[None, :]).ravel()
    weight = (w[:, None] * np.full(len(shifts), 1.0 / len(shifts))[None, :]).ravel()
    mean, second = _conditional_moments(_Preimages(g), y, shifts)
    return dict(weight=weight, y=y, mean=mean, second=second)


def weak_recovery_threshold(target_or_link, noise: float = 0.0, noise_kind: str = "rademacher",
                            n_nodes: int = 100) -> float:  # fmt: skip
    """α_c = 1/E_y[(E[z² | y] − 1)²]: below it no estimator (AMP, spectral) beats chance.

    The threshold for links with E[z | y] = 0 (information exponent ≥ 2: the direction is not
    visible linearly). A link with E[z | y] ≠ 0 is weakly recovered at any α > 0 by the linear
    estimator Σyᵢxᵢ; α_c is then the threshold of spectral methods only. inf when
    E[z² | y] = 1 for every y (the second moment carries no information either).

    Parameters
    ----------
    target_or_link : str, callable or MultiIndexTarget
        The link g (see :func:`posterior_moments`).
    noise : float
        Standard deviation ς of the label noise.
    noise_kind : {"rademacher", "gaussian"}
        Its law.
    n_nodes : int
        Gauss–Hermite nodes.

    Returns
    -------
    float

    Examples
    --------
    >>> round(weak_recovery_threshold("z1**2"), 10)           # phase retrieval: 1/2
    0.5
    >>> round(weak_recovery_threshold("relu(z1)"), 10)       # y = 0 (half the samples): no information
    1.0
    >>> weak_recovery_threshold("z1**2", noise=1.0, noise_kind="gaussian") > 0.5
    True
    """
    law = posterior_moments(target_or_link, noise, noise_kind, n_nodes)
    information = float(law["weight"] @ (law["second"] - 1.0) ** 2)
    return math.inf if information <= 1e-15 else 1.0 / information


def optimal_spectral_transform(target_or_link, noise: float = 0.0,
                               noise_kind: str = "rademacher"):  # fmt: skip
    """T*(y) = 1 − 1/E[z² | y] (Luo, Alghamdi & Lu 2019), as a vectorised function of y.

    Deterministic links (noiseless or Rademacher noise) evaluate E[z² | y] from the preimages
    of y; Gaussian noise from the posterior on a grid (see the module docstring).

    Parameters
    ----------
    target_or_link : str, callable or MultiIndexTarget
        The link g.
    noise : float
        Standard deviation ς of the label noise.
    noise_kind : {"rademacher", "gaussian"}
        Its law.

    Returns
    -------
    callable
        y (array) → T*(y) (array of the same shape).

    Examples
    --------
    >>> T = optimal_spectral_transform("z1**2")          # phase retrieval: 1 − 1/y
    >>> [round(float(v), 6) for v in T(np.array([0.5, 1.0, 4.0]))]
    [-1.0, 0.0, 0.75]
    """
    g = _link_of(target_or_link)
    noise = _check_noise(noise, noise_kind)

    if noise > 0 and noise_kind == "gaussian":
        step = min(2e-3, noise / 8.0)
        t = np.arange(-_GRID_HALF_WIDTH, _GRID_HALF_WIDTH + step / 2, step)
        log_phi, G = -(t**2) / 2.0, np.asarray(g(t), dtype=float)

        def second(y: np.ndarray) -> np.ndarray:
            out = np.empty(y.size)
            rows = max(1, 2_000_000 // t.size)
            for start in range(0, y.size, rows):
                block = y[start : start + rows, None]
                log_like = log_phi[None, :] - (block - G[None, :]) ** 2 / (2.0 * noise**2)
                like = np.exp(log_like - log_like.max(axis=1, keepdims=True))
                out[start : start + rows] = like @ (t * t) / like.sum(axis=1)
            return out

    else:
        pre = _Preimages(g)
        shifts = (0.0,) if noise == 0 else (-noise, noise)

        def second(y: np.ndarray) -> np.ndarray:
            return _conditional_moments(pre, y, shifts)[1]

    def transform(y):
        y = np.asarray(y, dtype=float)
        e = second(y.ravel())
        return (1.0 - 1.0 / np.maximum(e, 1e-300)).reshape(y.shape)

    return transform


def _transform_values(target_or_link, transform, noise, noise_kind, n_nodes):
    """(weight, T(y), E[z² | y]) on the quadrature nodes of the law of y."""
    law = posterior_moments(target_or_link, noise, noise_kind, n_nodes)
    e = law["second"]
    if transform == "optimal":
        values = 1.0 - 1.0 / np.maximum(e, 1e-300)
    elif callable(transform):
        values = np.asarray(transform(law["y"]), dtype=float) * np.ones_like(e)
    else:
        raise ValueError(f"transform must be 'optimal' or a callable T(y), got {transform!r}")
    return law["weight"], values, e


def spectral_threshold(target_or_link, transform="optimal", noise: float = 0.0,
                       noise_kind: str = "rademacher", n_nodes: int = 100) -> float:  # fmt: skip
    """The α above which the top eigenvector of (1/n)Σ T(yᵢ)xᵢxᵢᵀ correlates with u (Lu & Li).

    Solves E[T²/(λ − T)²] = E[T(e − 1)/(λ − T)] for λ > sup T, then α = 1/E[T²/(λ − T)²]
    (module docstring); for T = T* this is α_c. inf when no λ solves it (T carries no
    information on u).

    Parameters
    ----------
    target_or_link : str, callable or MultiIndexTarget
        The link g.
    transform : "optimal" or callable
        T*(y) = 1 − 1/E[z² | y], or a bounded-above vectorised T(y).
    noise : float
        Standard deviation ς of the label noise.
    noise_kind : {"rademacher", "gaussian"}
        Its law.
    n_nodes : int
        Gauss–Hermite nodes.

    Returns
    -------
    float

    Examples
    --------
    >>> round(spectral_threshold("z1**2"), 6)                       # T*: α_c = 1/2
    0.5
    >>> trimmed = lambda y: np.minimum(y, 3.0) - 1.0                 # a worse transform
    >>> round(spectral_threshold("z1**2", transform=trimmed), 3) > 0.5
    True
    """
    weight, T, e = _transform_values(target_or_link, transform, noise, noise_kind, n_nodes)
    tau = float(T.max())

    def gap(log_excess: float) -> float:
        lam = tau + math.exp(log_excess)
        return float(weight @ (T * (e - 1.0) / (lam - T)) - weight @ (T**2 / (lam - T) ** 2))

    grid = np.linspace(-30.0, 30.0, 241)
    values = np.array([gap(v) for v in grid])
    sign_change = np.nonzero((values[:-1] < 0) & (values[1:] >= 0))[0]
    if sign_change.size == 0:
        return math.inf
    k = sign_change[-1]
    log_excess = brentq(gap, grid[k], grid[k + 1], xtol=1e-13)
    lam = tau + math.exp(log_excess)
    return 1.0 / float(weight @ (T**2 / (lam - T) ** 2))


def spectral_overlap(target_or_link, alpha, transform="optimal", noise: float = 0.0,
                     noise_kind: str = "rademacher", n_nodes: int = 100) -> np.ndarray:  # fmt: skip
    """The overlap abs(ŵ·u) as d → ∞, n = α·d, of the top eigenvector ŵ of (1/n)Σ T(yᵢ)xᵢxᵢᵀ (Lu & Li).

    Parameters
    ----------
    target_or_link : str, callable or MultiIndexTarget
        The link g.
    alpha : float or sequence of float
        n/d, each > 0.
    transform : "optimal" or callable
        T*(y) = 1 − 1/E[z² | y], or a bounded-above vectorised T(y).
    noise : float
        Standard deviation ς of the label noise.
    noise_kind : {"rademacher", "gaussian"}
        Its law.
    n_nodes : int
        Gauss–Hermite nodes.

    Returns
    -------
    ndarray
        The overlap (a cosine in [0, 1]), one per α; 0 below the threshold.

    Examples
    --------
    >>> [round(float(v), 3) for v in spectral_overlap("z1**2", [0.4, 0.6, 2.0])]
    [0.0, 0.206, 0.799]
    """
    alphas = np.atleast_1d(np.asarray(alpha, dtype=float))
    if alphas.ndim != 1 or not np.all(np.isfinite(alphas) & (alphas > 0)):
        raise ValueError(f"alpha must be one or more finite numbers > 0, got {alpha!r}")
    weight, T, e = _transform_values(target_or_link, transform, noise, noise_kind, n_nodes)
    tau = float(T.max())
    out = np.zeros(alphas.size)
    for index, a in enumerate(alphas):

        def d_psi(lam, a=a):
            return 1.0 / a - float(weight @ (T**2 / (lam - T) ** 2))

        def psi(lam, a=a):
            return lam * (1.0 / a + float(weight @ (T / (lam - T))))

        def phi(lam):
            return lam * float(weight @ (T * e / (lam - T)))

        # λ̄: ψ′ increases from its value at τ⁺ to 1/α; its zero, or τ where ψ′(τ⁺) ≥ 0
        lo = tau + 1e-12 * max(1.0, abs(tau))
        if d_psi(lo) >= 0:
            lam_bar = lo
        else:
            hi = tau + 1.0
            while d_psi(hi) < 0:
                hi = tau + 2.0 * (hi - tau)
            lam_bar = brentq(d_psi, lo, hi, xtol=1e-14)
        # λ* > λ̄ with ψ(λ) = φ(λ) exists iff φ(λ̄) > ψ(λ̄) (φ − ψ decreases past λ̄)
        if phi(lam_bar) <= psi(lam_bar):
            continue
        hi = lam_bar + 1.0
        while phi(hi) > psi(hi):
            hi = lam_bar + 2.0 * (hi - lam_bar)
        lam_star = brentq(lambda lam: phi(lam) - psi(lam), lam_bar, hi, xtol=1e-14)
        dp = d_psi(lam_star)
        d_phi = -float(weight @ (T**2 * e / (lam_star - T) ** 2))
        out[index] = math.sqrt(max(0.0, dp / (dp - d_phi)))
    return out
