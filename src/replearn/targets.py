"""Multi-index polynomial targets f*(x) = g(Ux), everything exact.

g is stored in the tensor Hermite basis of the latent coordinates z = Ux ∈ R^r:

    g(z) = Σ_α c_α · Π_i He_{α_i}(z_i),     α ∈ N^r.

With x ~ N(0, I_d) and U with orthonormal rows, z ~ N(0, I_r), and the products
He_α are orthogonal with E[He_α²] = α! = Π_i α_i!. Hence, exactly:

    mean      = c_0
    E[f*²]    = Σ_α c_α² · α!
    energy_k  = Σ_{|α| = k} c_α² · α!           (degree-k Hermite energy)
    H = E[∇²f*] = Uᵀ A U,  A_ii = 2·c_{2e_i},  A_ij = c_{e_i + e_j}  (Stein's lemma)
    κ = ‖H†‖·√r                                 (∞ when rank H < r)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import numpy as np
import torch

from replearn import limits
from replearn.expression import latent_dimension, monomial_bound, parse_polynomial
from replearn.hermite import he_all, monomial_to_hermite
from replearn.limits import excerpt

__all__ = ["MultiIndexTarget", "paper_target", "paper_transfer_target", "haar_orthonormal_rows"]

Terms = dict[tuple[int, ...], float]
ORTHONORMAL_TOLERANCE = 1e-8


def haar_orthonormal_rows(r: int, d: int, seed: int) -> torch.Tensor:
    """U ∈ R^{r×d} with orthonormal rows, Haar-distributed, a pure function of (r, d, seed).

    Parameters
    ----------
    r : int
        Number of rows (latent directions), 1 ≤ r ≤ d.
    d : int
        Input dimension.
    seed : int
        Seeds the Gaussian d×r matrix whose QR factor (signs fixed by diag R > 0) is Uᵀ.

    Returns
    -------
    torch.Tensor
        (r, d), float64, U Uᵀ = I.

    Examples
    --------
    >>> U = haar_orthonormal_rows(2, 5, seed=0)
    >>> U.shape, U.dtype
    (torch.Size([2, 5]), torch.float64)
    >>> bool(torch.allclose(U @ U.T, torch.eye(2, dtype=torch.float64)))
    True
    """
    # the Gaussian matrix, Q and QR's workspace: three d × r float64 matrices
    limits.check_memory(3 * 8 * d * r, f"U ({r}×{d} float64) and its QR factorisation")
    generator = torch.Generator().manual_seed(int(seed))
    gaussian = torch.randn(d, r, generator=generator, dtype=torch.float64)
    q, upper = torch.linalg.qr(gaussian)
    q = q * torch.sign(torch.diagonal(upper)).where(torch.diagonal(upper) != 0, 1.0)
    return q.T.contiguous()


def _check_dims(d: int, r: int) -> None:
    for name, value in (("d", d), ("r", r)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if r < 1:
        raise ValueError(f"r must be >= 1, got {r}")
    if r > d:
        raise ValueError(f"r must be <= d, got r={r} > d={d}")


def _multi_indices(r: int, k: int) -> list[tuple[int, ...]]:
    """All α ∈ N^r with |α| = k, in lexicographic order (C(k + r − 1, r − 1) of them)."""
    if r == 1:
        return [(k,)]
    return [(a, *rest) for a in range(k + 1) for rest in _multi_indices(r - 1, k - a)]


def _multi_factorial(alpha: tuple[int, ...]) -> int:
    return math.prod(math.factorial(a) for a in alpha)


def monomials_to_hermite(
    polynomial: Mapping[tuple[int, ...], float], r: int, max_terms: int | None = None
) -> Terms:
    """Σ_a c_a z^a (monomials) → Σ_α c_α He_α(z) (tensor Hermite basis), one coordinate at a time.

    z_i^a = Σ_k w_{a,k} He_k(z_i) (k ≤ a, k ≡ a mod 2) is substituted for coordinate i in
    every term, then for the next coordinate: each stage holds multi-indices of degree ≤ the
    polynomial's degree D in the v variables used, so at most C(v + D, v) terms. Before each
    stage its size is bounded by min(Σ_terms (a_i//2 + 1), C(v + D, v)) and checked against
    the limit ``expression_terms`` (``max_terms`` raises it for this call).
    """
    bound_limit = limits.resolve("expression_terms", max_terms)
    terms: Terms = dict(polynomial)
    degree = max((sum(a) for a in terms), default=0)
    used = sorted({i for a in terms for i, e in enumerate(a) if e})
    ceiling = monomial_bound(len(used), degree)
    table: dict[int, list[tuple[int, float]]] = {}
    for i in used:
        if all(a[i] < 2 for a in terms):
            continue  # z^0 = He_0 and z^1 = He_1: nothing to substitute
        stage_bound = min(sum(a[i] // 2 + 1 for a in terms), ceiling)
        if stage_bound > bound_limit:
            raise limits.LimitError(
                f"the Hermite expansion has at most {stage_bound:,} terms, more than the limit "
                f"expression_terms = {bound_limit:,}; "
                + limits.LIMITS["expression_terms"].how_to_raise()
            )
        out: Terms = {}
        for alpha, coefficient in terms.items():
            a = alpha[i]
            if a < 2:
                out[alpha] = out.get(alpha, 0.0) + coefficient
                continue
            if a not in table:
                hermite = monomial_to_hermite([0] * a + [1])
                table[a] = [(k, float(w)) for k, w in enumerate(hermite) if w != 0]
            for k, weight in table[a]:
                beta = alpha[:i] + (k,) + alpha[i + 1 :]
                out[beta] = out.get(beta, 0.0) + coefficient * weight
        terms = out
    return terms


class MultiIndexTarget:
    """f*(x) = Σ_α c_α Π_i He_{α_i}((Ux)_i), with U (r×d) orthonormal rows.

    Every population quantity is exact (computed from the coefficients, never sampled):
    E[f*²] = Σ_α c_α²·α!, H = E[∇²f*] = Uᵀ A U, κ = ‖H†‖·√r, the energy per degree.

    Parameters
    ----------
    U : array_like, shape (r, d)
        Orthonormal rows (U Uᵀ = I to 1e-8): the principal subspace S* = rowspan U.
    terms : mapping of tuple of int to float
        Multi-index α (length r, entries ≥ 0) → coefficient c_α; zeros are dropped.
    name : str, optional
        A label for reports.

    Attributes
    ----------
    U : torch.Tensor
        (r, d), float64, on the CPU.
    terms : dict
        α → c_α, sorted by degree then α.
    d, r, degree : int
        Input dimension, number of latent directions, degree p of g.

    Examples
    --------
    >>> import torch
    >>> U = torch.eye(2, 4, dtype=torch.float64)          # S* = span(e_1, e_2)
    >>> target = MultiIndexTarget(U, {(1, 1): 1.0})        # f*(x) = x_1·x_2
    >>> target.d, target.r, target.degree, target.norm2()
    (4, 2, 2, 1.0)
    >>> target(torch.tensor([[2.0, 3.0, 0.0, 1.0]]))
    tensor([6.])
    """

    def __init__(self, U, terms: Mapping[tuple[int, ...], float], name: str | None = None):
        U = torch.as_tensor(U, dtype=torch.float64).detach().cpu()
        if U.ndim != 2:
            raise ValueError(f"U must be a 2-D (r, d) array, got shape {tuple(U.shape)}")
        r, d = U.shape
        _check_dims(d, r)
        if not torch.isfinite(U).all():
            raise ValueError("U must be finite")
        gram_error = (U @ U.T - torch.eye(r, dtype=torch.float64)).abs().max().item()
        if gram_error > ORTHONORMAL_TOLERANCE:
            raise ValueError(
                f"U must have orthonormal rows (U Uᵀ = I): max |U Uᵀ − I| = {gram_error:.2e}"
            )
        clean: Terms = {}
        for alpha, coefficient in terms.items():
            alpha = tuple(int(a) for a in alpha)
            if len(alpha) != r or any(a < 0 for a in alpha):
                raise ValueError(f"multi-index {alpha} must have {r} entries, each >= 0")
            coefficient = float(coefficient)
            if not math.isfinite(coefficient):
                raise ValueError(f"coefficient of {alpha} is not finite: {coefficient}")
            if coefficient != 0.0:
                clean[alpha] = clean.get(alpha, 0.0) + coefficient
        self.U = U
        self.terms: Terms = dict(sorted(clean.items(), key=lambda kv: (sum(kv[0]), kv[0])))
        self.name = name or "multi-index target"

    # -- shape ----------------------------------------------------------------------------
    @property
    def d(self) -> int:
        return self.U.shape[1]

    @property
    def r(self) -> int:
        return self.U.shape[0]

    @property
    def degree(self) -> int:
        return max((sum(alpha) for alpha in self.terms), default=0)

    # -- exact moments --------------------------------------------------------------------
    def mean(self) -> float:
        """E[f*(x)] = c_0."""
        return self.terms.get((0,) * self.r, 0.0)

    def norm2(self) -> float:
        """E[f*(x)²] = Σ_α c_α²·α!."""
        return sum(c * c * _multi_factorial(a) for a, c in self.terms.items())

    def degree_energy(self, normalized: bool = True) -> dict[int, float]:
        """The Hermite energy of f* per degree: k ↦ Σ c_α²·α! over the α of total degree k.

        Parameters
        ----------
        normalized : bool
            Divide by E[f*²], so that the values sum to 1.

        Returns
        -------
        dict of int to float
            Only the degrees present in f*, ascending.

        Examples
        --------
        >>> target = paper_target(d=10)          # He2/2 + He4/(4√3): half the energy each
        >>> {k: round(v, 6) for k, v in target.degree_energy().items()}
        {2: 0.5, 4: 0.5}
        """
        energy: dict[int, float] = {}
        for alpha, c in self.terms.items():
            k = sum(alpha)
            energy[k] = energy.get(k, 0.0) + c * c * _multi_factorial(alpha)
        total = self.norm2() if normalized else 1.0
        if total == 0.0:
            return {}
        return {k: v / total for k, v in sorted(energy.items())}

    def energy_above(self, k: int, normalized: bool = False) -> float:
        """Σ of the degree energies above k: the risk of the best degree-≤k predictor.

        Parameters
        ----------
        k : int
            The highest degree kept.
        normalized : bool
            As a share of E[f*²].

        Examples
        --------
        >>> round(paper_target(d=10).energy_above(2), 6)   # what a kernel below d⁴ keeps missing
        0.5
        """
        return sum(v for j, v in self.degree_energy(normalized=normalized).items() if j > k)

    def latent_hessian(self) -> torch.Tensor:
        """A = E[∇²g(z)] (r×r): A_ii = 2·c_{2e_i}, A_ij = c_{e_i+e_j}."""
        A = torch.zeros(self.r, self.r, dtype=torch.float64)
        for i, j in itertools.product(range(self.r), repeat=2):
            alpha = [0] * self.r
            alpha[i] += 1
            alpha[j] += 1
            A[i, j] = _multi_factorial(tuple(alpha)) * self.terms.get(tuple(alpha), 0.0)
        return A

    def hessian(self) -> torch.Tensor:
        """H = E[∇²f*(x)] = Uᵀ A U (d×d, float64), exact (Stein's lemma on the coefficients).

        Examples
        --------
        >>> target = paper_target(d=10)     # A = 2·c_(2) = 1, so H = u uᵀ
        >>> H = target.hessian()
        >>> H.shape, round(float(torch.linalg.matrix_rank(H)), 0)
        (torch.Size([10, 10]), 1.0)
        >>> bool(torch.allclose(H, target.U.T @ target.U))
        True
        """
        return self.U.T @ self.latent_hessian() @ self.U

    @property
    def kappa(self) -> float:
        """κ = ‖H†‖₂·√r (∞ when H has rank < r).

        Examples
        --------
        >>> paper_target(d=10).kappa
        1.0
        >>> MultiIndexTarget.from_expression("He3(z1)", d=10).kappa   # degenerate H = 0
        inf
        """
        eigenvalues = torch.linalg.eigvalsh(self.latent_hessian()).abs()
        scale = max(eigenvalues.max().item(), 1e-300)
        if eigenvalues.min().item() <= 1e-12 * scale or eigenvalues.max().item() == 0.0:
            return math.inf
        return math.sqrt(self.r) / eigenvalues.min().item()

    def hessian_rank(self, tol: float = 1e-10) -> int:
        eigenvalues = torch.linalg.eigvalsh(self.latent_hessian()).abs()
        if eigenvalues.max().item() == 0.0:
            return 0
        return int((eigenvalues > tol * eigenvalues.max()).sum().item())

    # -- derived targets --------------------------------------------------------------------
    def project(self, k: int) -> MultiIndexTarget:
        """The degree-≤k part: Σ c_α He_α over the α of total degree ≤ k (best L2 approximation).

        Examples
        --------
        >>> paper_target(d=10).project(2).terms
        {(2,): 0.5}
        """
        kept = {a: c for a, c in self.terms.items() if sum(a) <= k}
        return MultiIndexTarget(self.U, kept, name=f"{self.name} (degree ≤ {k})")

    def normalized(self) -> MultiIndexTarget:
        """Constant removed and scaled so that E[f*²] = 1."""
        centred = {a: c for a, c in self.terms.items() if sum(a) > 0}
        largest = max((abs(c) for c in centred.values()), default=0.0)
        if largest == 0.0:
            raise ValueError("target is constant: cannot normalise to E[f*²] = 1")
        # in units of the largest coefficient, so that E[f*²] cannot overflow (e.g. 1e200·z1)
        norm2 = sum((c / largest) ** 2 * _multi_factorial(a) for a, c in centred.items())
        scale = 1.0 / (largest * math.sqrt(norm2))
        return MultiIndexTarget(self.U, {a: c * scale for a, c in centred.items()}, self.name)

    # -- evaluation -----------------------------------------------------------------------
    def latent(self, X: torch.Tensor) -> torch.Tensor:
        """z = X Uᵀ, shape (n, r)."""
        return X @ self.U.to(device=X.device, dtype=X.dtype).T

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        """f*(X) for X of shape (n, d); computed in X's dtype and device."""
        if X.ndim != 2 or X.shape[1] != self.d:
            raise ValueError(f"X must have shape (n, {self.d}), got {tuple(X.shape)}")
        z = self.latent(X)
        table = he_all(self.degree, z)  # (n, r, degree+1)
        out = torch.zeros(X.shape[0], dtype=X.dtype, device=X.device)
        for alpha, c in self.terms.items():
            term = torch.full_like(out, c)
            for i, a in enumerate(alpha):
                if a:
                    term = term * table[:, i, a]
            out = out + term
        return out

    def describe(self) -> str:
        energy = ", ".join(f"{k}: {v:.4g}" for k, v in self.degree_energy().items())
        return (
            f"{self.name}: d={self.d}, r={self.r}, degree={self.degree}, "
            f"E[f*]={self.mean():.4g}, E[f*²]={self.norm2():.4g}, kappa={self.kappa:.4g}, "
            f"rank(H)={self.hessian_rank()}, degree energy {{{energy}}}"
        )

    def __repr__(self) -> str:
        return f"MultiIndexTarget(d={self.d}, r={self.r}, degree={self.degree}, name={self.name!r})"

    # -- constructors ---------------------------------------------------------------------
    @classmethod
    def from_expression(
        cls,
        expr: str,
        d: int,
        seed: int = 0,
        normalize: bool = True,
        r: int | None = None,
        U=None,
        max_terms: int | None = None,
        max_degree: int | None = None,
    ) -> MultiIndexTarget:
        """Parse g from text in z1…zr (whitelist parser); U Haar-random from seed unless given.

        The work is bounded before it is done (see :mod:`replearn.expression` and
        docs/limits.md); ``max_terms`` and ``max_degree`` raise those limits for this call,
        and d is checked against the limit ``d`` before U (r × d) is drawn.

        Parameters
        ----------
        expr : str
            A polynomial in z1…zr: numbers, ``+ - * / **``, ``sqrt``, ``He<k>(·)``.
        d : int
            Input dimension.
        seed : int
            Seeds the Haar-random U (ignored when ``U`` is given).
        normalize : bool
            Remove the constant and scale so that E[f*²] = 1.
        r : int, optional
            Latent dimension; default: the largest zi the expression uses (1 if none).
        U : array_like, shape (r, d), optional
            The principal subspace, instead of a random one.
        max_terms, max_degree : int, optional
            Raise the limits ``expression_terms`` and ``expression_degree`` for this call.

        Returns
        -------
        MultiIndexTarget

        Examples
        --------
        >>> target = MultiIndexTarget.from_expression("z1*z2 + z3**2", d=20, seed=0)
        >>> target.r, target.degree, round(target.norm2(), 12)
        (3, 2, 1.0)
        >>> MultiIndexTarget.from_expression("z1*z2", d=5).terms   # already E[f*²] = 1
        {(1, 1): 1.0}
        """
        used = latent_dimension(expr) if isinstance(expr, str) else 0
        if U is not None:
            r = torch.as_tensor(U).shape[0]
        r = r if r is not None else max(used, 1)
        if not isinstance(r, bool) and isinstance(r, int | np.integer):
            limits.check("latent_dimension", int(r), f"target {excerpt(expr)}: latent dimension r")
        _check_dims(d, r)
        limits.check("d", int(d), "input dimension d")
        if used > r:
            raise ValueError(f"expression uses z{used} but r={r}")
        polynomial = parse_polynomial(expr, r, max_terms=max_terms, max_degree=max_degree)
        terms = monomials_to_hermite(polynomial, r, max_terms=max_terms)
        # drop round-off residues; keep non-finite values so that the constructor rejects them
        terms = {a: c for a, c in terms.items() if not math.isfinite(c) or abs(c) > 1e-15}
        if U is None:
            U = haar_orthonormal_rows(r, d, seed)
        elif torch.as_tensor(U).shape[-1] != d:
            raise ValueError(
                f"U must have d={d} columns, got shape {tuple(torch.as_tensor(U).shape)}"
            )
        target = cls(U, terms, name=expr.strip())
        return target.normalized() if normalize else target

    @classmethod
    def random(
        cls,
        d: int,
        r: int,
        degree: int,
        seed: int = 0,
        kappa: float | None = None,
        hessian_energy: float = 0.5,
    ) -> MultiIndexTarget:
        """A random degree-p target with E[f*²] = 1, zero mean and linear part, rank-r H.

        The degree-2 part is Σ_i λ_i He_2(z_i)/2, so A = diag(λ) in the latent basis and
        H = Uᵀ diag(λ) U has rank r. Its energy Σ λ_i²/2 is ``hessian_energy`` (the rest is
        spread evenly over degrees 3…p with random Gaussian coefficients). With ``kappa``
        the magnitudes of the λ_i are geometric between √r/κ and the largest value the
        energy allows, so ‖H†‖√r = κ exactly; κ must be ≥ r/√(2·hessian_energy), the
        equal-eigenvalue case (used when kappa is None). For r = 1, κ fixes λ = 1/κ and the
        energy is 1/(2κ²).

        Parameters
        ----------
        d : int
            Input dimension.
        r : int
            Number of latent directions, 1 ≤ r ≤ d.
        degree : int
            p ≥ 2.
        seed : int
            Seeds U and the coefficients.
        kappa : float, optional
            The condition number κ = ‖H†‖·√r to build in.
        hessian_energy : float
            Share of E[f*²] in degree 2, in (0, 1] (1 when degree = 2).

        Returns
        -------
        MultiIndexTarget

        Examples
        --------
        >>> target = MultiIndexTarget.random(d=20, r=3, degree=4, seed=0)
        >>> target.hessian_rank(), target.kappa
        (3, 3.0)
        >>> {k: round(v, 6) for k, v in target.degree_energy().items()}
        {2: 0.5, 3: 0.25, 4: 0.25}
        >>> round(MultiIndexTarget.random(d=20, r=3, degree=4, seed=0, kappa=6.0).kappa, 9)
        6.0
        """
        _check_dims(d, r)
        limits.check("latent_dimension", int(r), "random target: latent dimension r")
        limits.check("d", int(d), "input dimension d")
        if isinstance(degree, bool) or not isinstance(degree, int | np.integer) or degree < 0:
            raise ValueError(f"degree must be an integer >= 0, got {degree!r}")
        if degree < 2:
            raise ValueError(f"degree must be >= 2 for a rank-r Hessian, got {degree}")
        if not 0.0 < hessian_energy <= 1.0:
            raise ValueError(f"hessian_energy must be in (0, 1], got {hessian_energy}")
        if degree == 2:
            hessian_energy = 1.0
        generator = np.random.default_rng([int(seed), 0x5EED])
        eigenvalues = cls._hessian_eigenvalues(r, kappa, hessian_energy)
        if r == 1 and kappa is not None:
            hessian_energy = eigenvalues[0] ** 2 / 2
            if hessian_energy > 1.0:
                raise ValueError(f"kappa must be >= 1/sqrt(2) for r = 1, got {kappa}")
            if degree == 2 and abs(hessian_energy - 1.0) > 1e-12:
                raise ValueError("degree 2 with r = 1 has kappa = 1/sqrt(2) exactly")
        signs = generator.choice([-1.0, 1.0], size=r)
        terms: Terms = {}
        for i in range(r):
            alpha = [0] * r
            alpha[i] = 2
            terms[tuple(alpha)] = signs[i] * eigenvalues[i] / 2
        limits.check("expression_degree", int(degree), "random target: degree p")
        higher = list(range(3, degree + 1))
        n_terms = sum(math.comb(k + r - 1, r - 1) for k in higher)  # multi-indices |α| = k
        limits.check("expression_terms", n_terms, f"random target (r={r}, degree={degree}): terms")
        for k in higher:
            indices = _multi_indices(r, k)
            coefficients = generator.standard_normal(len(indices))
            energy = sum(c * c * _multi_factorial(a) for a, c in zip(indices, coefficients))
            scale = math.sqrt((1.0 - hessian_energy) / len(higher) / energy)
            for a, c in zip(indices, coefficients):
                terms[a] = c * scale
        U = haar_orthonormal_rows(r, d, seed)
        name = f"random(r={r}, degree={degree}, seed={seed}" + (
            f", kappa={kappa})" if kappa is not None else ")"
        )
        return cls(U, terms, name=name)

    @staticmethod
    def _hessian_eigenvalues(r: int, kappa: float | None, energy: float) -> np.ndarray:
        if kappa is None:
            return np.full(r, math.sqrt(2 * energy / r))
        if not math.isfinite(kappa) or kappa <= 0:
            raise ValueError(f"kappa must be a positive finite number, got {kappa}")
        smallest = math.sqrt(r) / kappa
        if r == 1:
            return np.array([smallest])
        lowest_kappa = r / math.sqrt(2 * energy)
        if kappa < lowest_kappa * (1 - 1e-12):
            raise ValueError(
                f"kappa must be >= r/sqrt(2*hessian_energy) = {lowest_kappa:.4g} "
                f"for r={r}, hessian_energy={energy}, got {kappa}"
            )
        # geometric λ_i = smallest·ρ^{i/(r−1)}; bisect ρ ≥ 1 so that Σλ_i²/2 = energy
        steps = np.arange(r) / (r - 1)

        def excess(rho: float) -> float:
            return float(np.sum((smallest * rho**steps) ** 2) / 2 - energy)

        low, high = 1.0, 2.0
        while excess(high) < 0:
            high *= 2
        for _ in range(200):
            mid = (low + high) / 2
            low, high = (mid, high) if excess(mid) < 0 else (low, mid)
        return smallest * ((low + high) / 2) ** steps


def paper_target(d: int, seed: int = 0) -> MultiIndexTarget:
    """The target of the paper's first figure, f*(x) = He₂(u·x)/2 + He₄(u·x)/(4√3) with u a random unit vector.

    E[f*²] = 1/4·2! + 1/48·4! = 1, half of it in degree 2; H = u uᵀ, so κ = 1.

    Parameters
    ----------
    d : int
        Input dimension.
    seed : int
        Seeds the direction u (Haar-random on the sphere).

    Returns
    -------
    MultiIndexTarget
        r = 1, degree 4.

    Examples
    --------
    >>> target = paper_target(d=10, seed=0)
    >>> target
    MultiIndexTarget(d=10, r=1, degree=4, name='paper: He2/2 + He4/(4√3)')
    >>> round(target.norm2(), 12), target.kappa
    (1.0, 1.0)
    """
    target = MultiIndexTarget.from_expression(
        "He2(z1)/2 + He4(z1)/(4*sqrt(3))", d=d, seed=seed, normalize=False
    )
    target.name = "paper: He2/2 + He4/(4√3)"
    return target


def paper_transfer_target(d: int, seed: int = 0, u=None) -> MultiIndexTarget:
    """The transfer target of the paper's second figure, He₃(u·x)/√6 with u the direction of paper_target(d, seed).

    Parameters
    ----------
    d : int
        Input dimension.
    seed : int
        The seed of the ``paper_target`` whose direction is reused.
    u : array_like, shape (d,) or (1, d), optional
        Another unit direction.

    Returns
    -------
    MultiIndexTarget
        r = 1, degree 3, E[f*²] = 1; its Hessian is 0 (one step alone cannot find u).

    Examples
    --------
    >>> transfer = paper_transfer_target(d=10, seed=0)
    >>> bool(torch.equal(transfer.U, paper_target(d=10, seed=0).U))   # same direction u
    True
    >>> round(transfer.norm2(), 12), transfer.hessian_rank()
    (1.0, 0)
    """
    if u is None:
        u = paper_target(d, seed).U
    u = torch.as_tensor(u, dtype=torch.float64).reshape(1, -1)
    target = MultiIndexTarget.from_expression("He3(z1)/sqrt(6)", d=d, U=u, normalize=False)
    target.name = "paper transfer: He3/√6"
    return target
