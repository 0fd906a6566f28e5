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
import warnings
from collections.abc import Mapping

import numpy as np
import torch

from replearn import limits
from replearn.expression import (  # monomials_to_hermite: re-exported, it was defined here
    LinkNode,
    latent_dimension,
    monomials_to_hermite,
    parse_expression,
)
from replearn.hermite import he_all
from replearn.limits import excerpt
from replearn.links import DEFAULT_CUTOFF, MC_CUTOFF, evaluate_link, link_moments, link_rule
from replearn.validation import named
from replearn.validation import seed as seed_check

__all__ = [
    "MultiIndexTarget",
    "LinkTarget",
    "paper_target",
    "paper_transfer_target",
    "haar_orthonormal_rows",
]

Terms = dict[tuple[int, ...], float]
ORTHONORMAL_TOLERANCE = 1e-8
# a Hermite coefficient at most this share of the largest one is a round-off residue of the
# monomial → Hermite conversion (whose sums carry relative errors of a few ulps) and is dropped
ROUNDOFF_RELATIVE = 1e-15
# H's eigenvalues below this share of the largest count as 0 (hessian_rank's default tol)
HESSIAN_RANK_TOLERANCE = 1e-10


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
    generator = torch.Generator().manual_seed(named("seed", seed_check, seed))  # 1.5: refused
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

    @property
    def degree_cutoff(self) -> int:
        """The degree to which the Hermite expansion in ``terms`` is complete: p here.

        A non-polynomial link (:class:`replearn.links.LinkTarget`) has ``degree`` None and
        resolves its expansion to this cutoff; code that runs over degrees uses it.
        """
        return self.degree

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

    def hessian_rank(self, tol: float = HESSIAN_RANK_TOLERANCE) -> int:
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
    def latent_function(self, Z: torch.Tensor) -> torch.Tensor:
        """g(z) = Σ_α c_α Π_i He_{α_i}(z_i) on latent points Z (N, r), in Z's dtype.

        Parameters
        ----------
        Z : torch.Tensor, shape (N, r)

        Returns
        -------
        torch.Tensor, shape (N,)

        Examples
        --------
        >>> t = MultiIndexTarget.from_expression("z1*z2", d=3, normalize=False)
        >>> t.latent_function(torch.tensor([[2.0, 3.0]], dtype=torch.float64))
        tensor([6.], dtype=torch.float64)
        """
        table = he_all(max(self.degree, 1), Z)  # (N, r, p+1)
        out = torch.zeros(Z.shape[0], dtype=Z.dtype, device=Z.device)
        for alpha, c in self.terms.items():
            term = torch.full_like(out, c)
            for i, a in enumerate(alpha):
                if a:
                    term = term * table[:, i, a]
            out = out + term
        return out

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
        degree_cutoff: int | None = None,
        n_nodes: int | None = None,
    ) -> MultiIndexTarget:
        """Parse g from text in z1…zr (whitelist parser); U Haar-random from seed unless given.

        A polynomial gives a :class:`MultiIndexTarget` (exact coefficients); an expression
        with a link function (``tanh sin cos sign abs relu erf exp``) gives a
        :class:`replearn.links.LinkTarget`, a subclass whose moments come from quadrature
        (r ≤ 4) or Monte Carlo (r > 4), with the method and its accuracy stated.

        The work is bounded before it is done (see :mod:`replearn.expression` and
        docs/limits.md); ``max_terms`` and ``max_degree`` raise those limits for this call,
        and d is checked against the limit ``d`` before U (r × d) is drawn.

        Parameters
        ----------
        expr : str
            In z1…zr: numbers, ``+ - * / **``, ``sqrt``, ``He<k>(·)``, and the links
            ``tanh sin cos sign abs relu erf exp`` (exp of an argument bounded above by a
            linear function; see :mod:`replearn.expression`).
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
        degree_cutoff, n_nodes : int, optional
            Links only: the Hermite degree K to resolve and the quadrature nodes per
            coordinate (:class:`replearn.links.LinkTarget`); an error for a polynomial.

        Returns
        -------
        MultiIndexTarget
            A :class:`replearn.links.LinkTarget` for a non-polynomial link.

        Examples
        --------
        >>> target = MultiIndexTarget.from_expression("z1*z2 + z3**2", d=20, seed=0)
        >>> target.r, target.degree, round(target.norm2(), 12)
        (3, 2, 1.0)
        >>> MultiIndexTarget.from_expression("z1*z2", d=5).terms   # already E[f*²] = 1
        {(1, 1): 1.0}
        >>> link = MultiIndexTarget.from_expression("tanh(z1 + He3(z2))", d=20, seed=0)
        >>> type(link).__name__, link.r, round(link.norm2(), 12)
        ('LinkTarget', 2, 1.0)
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
        parsed = parse_expression(expr, r, max_terms=max_terms, max_degree=max_degree)
        is_link = isinstance(parsed, LinkNode)
        if not is_link and (degree_cutoff is not None or n_nodes is not None):
            raise ValueError(
                "degree_cutoff and n_nodes apply to non-polynomial links only: "
                f"{excerpt(expr)} is a polynomial (its expansion is exact)"
            )
        if not is_link:
            terms = monomials_to_hermite(parsed, r, max_terms=max_terms)
            # drop round-off residues, relative to the expression's scale (an absolute
            # threshold would drop every coefficient of (1e-8*z1)*(1e-8*z2)); keep non-finite
            # values so that the constructor rejects them
            largest = max((abs(c) for c in terms.values() if math.isfinite(c)), default=0.0)
            terms = {
                a: c
                for a, c in terms.items()
                if not math.isfinite(c) or abs(c) > ROUNDOFF_RELATIVE * largest
            }
        if U is None:
            U = haar_orthonormal_rows(r, d, seed)
        elif torch.as_tensor(U).shape[-1] != d:
            raise ValueError(
                f"U must have d={d} columns, got shape {tuple(torch.as_tensor(U).shape)}"
            )
        if is_link:
            target = LinkTarget(
                U, parsed, name=expr.strip(), degree_cutoff=degree_cutoff, n_nodes=n_nodes,
                seed=seed,
            )  # fmt: skip
        else:
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
        energy is 1/(2κ²). A κ whose smallest eigenvalue would fall below 10⁻⁹ of the
        largest (indistinguishable from 0 at ``hessian_rank``'s tolerance) is refused.

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
        generator = np.random.default_rng([named("seed", seed_check, seed), 0x5EED])
        eigenvalues = cls._hessian_eigenvalues(r, kappa, hessian_energy)
        # the smallest eigenvalue must stay distinguishable from 0 (hessian_rank's tolerance,
        # with a factor 10 for the rounding of H = Uᵀ A U): else κ would read as ∞
        if r > 1 and eigenvalues.min() <= 10 * HESSIAN_RANK_TOLERANCE * eigenvalues.max():
            raise ValueError(
                f"kappa = {kappa:g} cannot be represented for r={r}: H's smallest eigenvalue "
                f"would be {eigenvalues.min() / eigenvalues.max():.2g} of its largest, below "
                f"{10 * HESSIAN_RANK_TOLERANCE:g} (rank tolerance); use kappa <= about "
                f"{kappa * eigenvalues.min() / eigenvalues.max() / (10 * HESSIAN_RANK_TOLERANCE):.2g}"
            )
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


class LinkTarget(MultiIndexTarget):
    """f*(x) = scale·g(Ux) + offset for a non-polynomial link g; moments by quadrature.

    Everything a :class:`~replearn.MultiIndexTarget` offers, computed from the Hermite
    coefficients up to ``degree_cutoff`` and E f*² (:mod:`replearn.links` for the methods);
    ``quadrature`` states the method and its accuracy. Built by
    ``MultiIndexTarget.from_expression`` for an expression with a link function.

    Parameters
    ----------
    U : array_like, shape (r, d)
        Orthonormal rows.
    link : LinkNode
        g, from :func:`replearn.expression.parse_expression`.
    name : str, optional
        A label for reports.
    degree_cutoff : int, optional
        K (default ``replearn.links.DEFAULT_CUTOFF`` by r, ``MC_CUTOFF`` for r > 4).
    n_nodes : int, optional
        Gauss–Hermite nodes per coordinate of the smooth rule (default by r); for the split
        rule, nodes per outer coordinate.
    seed : int
        Seeds the Monte Carlo draws (r > 4 only).

    Attributes
    ----------
    terms : dict
        α → c_α for Σ_i α_i ≤ K (exact up to ``quadrature["error"]``).
    quadrature : dict
        ``method``, ``nodes``, ``error`` (estimated errors of ``mean``, ``norm2`` and the
        largest of any coefficient; standard errors for Monte Carlo), ``converged``.

    Examples
    --------
    >>> import replearn as rl
    >>> t = rl.MultiIndexTarget.from_expression("tanh(z1)", d=5, normalize=False)
    >>> type(t).__name__, t.degree, t.degree_cutoff, round(t.mean(), 12)
    ('LinkTarget', None, 12, 0.0)
    >>> round(t.norm2(), 8)                        # E tanh(z)²
    0.39429449
    >>> sorted(t.degree_energy(normalized=False))   # odd degrees only
    [1, 3, 5, 7, 9, 11]
    """

    def __init__(
        self,
        U,
        link: LinkNode,
        name: str | None = None,
        degree_cutoff: int | None = None,
        n_nodes: int | None = None,
        seed: int = 0,
    ):
        if not isinstance(link, LinkNode):
            raise ValueError(f"link must be a LinkNode, got {type(link).__name__}")
        super().__init__(U, {}, name=name or "link target")
        r = self.r
        if degree_cutoff is None:
            degree_cutoff = DEFAULT_CUTOFF.get(r, MC_CUTOFF)
        if isinstance(degree_cutoff, bool) or not isinstance(degree_cutoff, int | np.integer):
            raise ValueError(f"degree_cutoff must be an integer >= 2, got {degree_cutoff!r}")
        if not 2 <= degree_cutoff <= 30:
            raise ValueError(f"degree_cutoff must be in [2, 30], got {degree_cutoff}")
        if n_nodes is not None and (
            isinstance(n_nodes, bool) or not isinstance(n_nodes, int) or not 4 <= n_nodes <= 256
        ):
            raise ValueError(f"n_nodes must be an integer in [4, 256] or None, got {n_nodes!r}")
        self.link = link
        self.scale, self.offset = 1.0, 0.0
        self.degree_cutoff_ = int(degree_cutoff)
        self._compute(n_nodes, seed)

    def _compute(self, n_nodes: int | None, seed: int) -> None:
        moments = link_moments(self.link, self.r, self.degree_cutoff_, n_nodes, seed)
        self.terms = moments["terms"]
        self._coefficient_errors = moments["coefficient_errors"]
        self._norm2 = moments["norm2"]
        self.quadrature = moments["quadrature"]
        if not self.quadrature["converged"]:
            error = self.quadrature["error"]
            warnings.warn(
                f"target {self.name!r}: {self.quadrature['method']} not converged (estimated "
                f"error of E[f*^2] {error['norm2']:.2g} of {self._norm2:.4g}, of a coefficient "
                f"{error['coefficients']:.2g}); pass more n_nodes",
                RuntimeWarning,
                stacklevel=4,
            )

    def quadrature_rule(
        self, extra_breakpoints=(), n_nodes: int | None = None, coarse: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The rule (points (N, r), weights (N,)) this target's moments use (r ≤ 4).

        Parameters
        ----------
        extra_breakpoints : sequence of callables
            More functions of Z (N, r) whose zeros are kinks of the integrand (a label
            transform's, e.g. Z ↦ g(Z) − b); they force the split-line rule.
        n_nodes : int, optional
            Nodes per coordinate (the smooth rule) or per outer coordinate (split lines).
        coarse : bool
            The rule with 3/4 of the nodes, used to estimate the error.

        Returns
        -------
        (torch.Tensor, torch.Tensor)

        Examples
        --------
        >>> import replearn as rl
        >>> t = rl.MultiIndexTarget.from_expression("sign(z1)", d=3, normalize=False)
        >>> Z, W = t.quadrature_rule()
        >>> round(float(W @ t.latent_function(Z) ** 2), 12)
        1.0
        """
        if self.r > 4:
            raise ValueError(f"quadrature rules are built for r <= 4, got r={self.r}")
        return link_rule(self.link, self.r, n_nodes, coarse, tuple(extra_breakpoints))[2]

    # -- shape ----------------------------------------------------------------------------
    @property
    def degree(self) -> None:
        """None: a non-polynomial link has no degree (see ``degree_cutoff``)."""
        return None

    @property
    def degree_cutoff(self) -> int:
        """K: the Hermite expansion is resolved up to this degree."""
        return self.degree_cutoff_

    # -- moments --------------------------------------------------------------------------
    def norm2(self) -> float:
        """E[f*²] from the quadrature (all degrees, not only those ≤ K)."""
        return self._norm2

    def energy_above_cutoff(self, normalized: bool = False) -> float:
        """E f*² − Σ_{k ≤ K} energy_k: the energy the expansion to degree K leaves out.

        Parameters
        ----------
        normalized : bool
            As a share of E[f*²].

        Examples
        --------
        >>> import replearn as rl
        >>> t = rl.MultiIndexTarget.from_expression("sign(z1)", d=4)
        >>> 0.1 < t.energy_above_cutoff() < 0.2     # a jump: energy_k decays like k^{-3/2}
        True
        """
        kept = sum(MultiIndexTarget.degree_energy(self, normalized=False).values())
        rest = max(self.norm2() - kept, 0.0)
        return rest / self.norm2() if normalized and self.norm2() > 0 else rest

    def energy_above(self, k: int, normalized: bool = False) -> float:
        """Energy of f* above degree k (k ≤ K): E f*² − Σ_{j ≤ k} energy_j.

        Parameters
        ----------
        k : int
            The highest degree kept, at most ``degree_cutoff``.
        normalized : bool
            As a share of E[f*²].

        Examples
        --------
        >>> import replearn as rl
        >>> t = rl.MultiIndexTarget.from_expression("tanh(z1)", d=4)
        >>> 0.0 < t.energy_above(1) < 0.1     # most of tanh is linear
        True
        """
        if k > self.degree_cutoff:
            raise ValueError(
                f"k must be <= degree_cutoff = {self.degree_cutoff} for a link target "
                f"(the expansion is resolved to that degree), got {k}"
            )
        below = sum(
            v for j, v in MultiIndexTarget.degree_energy(self, normalized=False).items() if j <= k
        )
        rest = max(self.norm2() - below, 0.0)
        return rest / self.norm2() if normalized and self.norm2() > 0 else rest

    def coefficient_error(self, alpha: tuple[int, ...]) -> float:
        """The estimated error of c_α (quadrature difference, or Monte Carlo standard error)."""
        return self._coefficient_errors[tuple(alpha)] * abs(self.scale)

    # -- derived targets --------------------------------------------------------------------
    def project(self, k: int) -> MultiIndexTarget:
        """The degree-≤k part (k ≤ K), a polynomial :class:`MultiIndexTarget`.

        Examples
        --------
        >>> import replearn as rl
        >>> t = rl.MultiIndexTarget.from_expression("relu(z1)", d=4, normalize=False)
        >>> p = t.project(2)
        >>> type(p).__name__, p.degree, round(p.terms[(1,)], 12)   # relu = … + z/2 + …
        ('MultiIndexTarget', 2, 0.5)
        """
        if k > self.degree_cutoff:
            raise ValueError(f"k must be <= degree_cutoff = {self.degree_cutoff}, got {k}")
        kept = {a: c for a, c in self.terms.items() if sum(a) <= k}
        return MultiIndexTarget(self.U, kept, name=f"{self.name} (degree ≤ {k})")

    def normalized(self) -> LinkTarget:
        """(f* − E f*)/sd(f*): E[f*²] = 1, moments transformed exactly (no new quadrature)."""
        mean = self.mean()
        variance = self.norm2() - mean * mean
        if not variance > 1e-24 * max(self.norm2(), 1e-300):
            raise ValueError("target is constant: cannot normalise to E[f*²] = 1")
        factor = 1.0 / math.sqrt(variance)
        out = object.__new__(LinkTarget)
        out.__dict__.update(self.__dict__)
        out.scale, out.offset = self.scale * factor, (self.offset - mean) * factor
        out.terms = {a: c * factor for a, c in self.terms.items() if sum(a) > 0}
        out._norm2 = 1.0
        errors = dict(self.quadrature["error"])
        errors = {key: value * factor for key, value in errors.items()}
        errors["norm2"] = self.quadrature["error"]["norm2"] * factor**2
        out.quadrature = {**self.quadrature, "error": errors}
        return out

    # -- evaluation -----------------------------------------------------------------------
    def latent_function(self, Z: torch.Tensor) -> torch.Tensor:
        """f* as a function of the latent z: scale·g(z) + offset on points Z (N, r), float64."""
        g = evaluate_link(self.link, Z.to(torch.float64))
        return self.scale * g + self.offset if (self.scale, self.offset) != (1.0, 0.0) else g

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        """f*(X) for X of shape (n, d): computed in float64 on X's device, returned in X's dtype."""
        if X.ndim != 2 or X.shape[1] != self.d:
            raise ValueError(f"X must have shape (n, {self.d}), got {tuple(X.shape)}")
        z = X.to(torch.float64) @ self.U.to(X.device).T
        return self.latent_function(z).to(X.dtype)

    def describe(self) -> str:
        energy = ", ".join(f"{k}: {v:.4g}" for k, v in self.degree_energy().items())
        error = self.quadrature["error"]
        return (
            f"{self.name}: d={self.d}, r={self.r}, non-polynomial link (Hermite expansion to "
            f"degree {self.degree_cutoff}), E[f*]={self.mean():.4g}, E[f*²]={self.norm2():.4g}, "
            f"kappa={self.kappa:.4g}, rank(H)={self.hessian_rank()}, degree energy {{{energy}}}, "
            f"above {self.degree_cutoff}: {self.energy_above_cutoff(normalized=True):.3g}; "
            f"{self.quadrature['method']}, error of E[f*²] ~ {error['norm2']:.2g}"
        )

    def __repr__(self) -> str:
        return f"LinkTarget(d={self.d}, r={self.r}, name={self.name!r})"


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
