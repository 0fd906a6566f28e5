"""Kernel ridge regression with the networks' infinite-width kernels, exact or at scale.

    x ↦ α + β·x + Σ_i c_i·k(x, x_i),   c = (K + μI)⁻¹r,  μ = n·λ/2,  r = y − α − β·x

k = the m → ∞ limit of the NTK or of random features (``replearn.kernels``) of the student's
activation σ (``activation=``, as the finite-width learners take it), or any callable.
Ridge convention (as everywhere in replearn, see ``linalg.ridge``): with features Φ the head
minimises J(θ) = (1/n)‖Φθ − y‖² + (λ/2)‖θ‖²; with K = ΦΦᵀ the same predictor is
f = Σ_i c_i·k(·, x_i), c as above, and for a kernel without finite features J is
(1/n)Σ(f(x_i) − y_i)² + (λ/2)‖f‖²_H. scikit-learn's KernelRidge minimises
‖y − Kc‖² + alpha·cᵀKc: the two agree for alpha = n·λ/2.

λ = "auto" chooses λ on a holdout over the path of ``linalg.ridge.default_lambda_grid`` (fed
tr(ΦᵀΦ/n) = tr(K)/n, so primal and dual forms share one path; GCV when no holdout is given).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch

from replearn import limits
from replearn.activations import activation_spec, resolve_activation
from replearn.kernels import KERNELS
from replearn.learners.base import BaseLearner
from replearn.learners.ridge_head import RidgeHead
from replearn.learners.sources import materialise
from replearn.linalg.dense import EigenPath, block_rows, exact_solve, kernel_matrix, memory_bytes
from replearn.linalg.falkon import falkon
from replearn.linalg.ridge import argmin_criterion, lambda_grid_from_trace
from replearn.validation import (
    boolean,
    check_ridge_lambda,
    choice,
    count_within,
    device_name,
    dtype_name,
    integer_at_least,
    interval,
    ridge_lambda,
    seed,
)

__all__ = ["KernelRidge", "checked_kernel", "kernel_choice", "integer_or_auto"]


def kernel_choice(value):
    """Check: one of the closed-form kernels' names, or a callable k(X1, X2)."""
    if callable(value) or (isinstance(value, str) and value in KERNELS):
        return value
    raise ValueError(f"must be one of {tuple(KERNELS)} or a callable k(X1, X2), got {value!r}")


def integer_or_auto(value):
    """Check: an integer ≥ 1 or 'auto'."""
    if value == "auto":
        return value
    try:
        return integer_at_least(1)(value)
    except ValueError:
        raise ValueError(f"must be an integer ≥ 1 or 'auto', got {value!r}") from None


def checked_kernel(kernel: Callable) -> Callable:
    """Wrap a user kernel: output converted to a tensor of X1's dtype/device, shape and
    finiteness checked on every block (one-line ValueError)."""

    def checked(X1: torch.Tensor, X2: torch.Tensor) -> torch.Tensor:
        out = kernel(X1, X2)
        try:
            out = torch.as_tensor(out).to(device=X1.device, dtype=X1.dtype)
        except (TypeError, ValueError, RuntimeError) as error:
            raise ValueError(f"kernel must return a tensor, got {type(out).__name__}") from error
        expected = (X1.shape[0], X2.shape[0])
        if tuple(out.shape) != expected:
            raise ValueError(
                f"kernel(X1, X2) must return shape (n1, n2) = {expected}, got {tuple(out.shape)}"
            )
        if not torch.isfinite(out).all():
            raise ValueError("kernel(X1, X2) returned non-finite values (NaN or inf)")
        return out

    return checked


class KernelRidge(BaseLearner):
    """Kernel ridge regression with the networks' infinite-width kernels, exact or at scale.

    Parameters
    ----------
    kernel : {"ntk", "rf"} or callable
        "ntk" (``ntk_kernel``, b = 0: the limit of ``NTKRegression``), "rf"
        (``rf_kernel``, b ~ N(0, 1): the limit of ``RandomFeatures``), or a callable
        k(X1, X2) → (n1, n2) tensor (checked: shape and finiteness, before the solve).
    activation : str, Activation or (σ, σ′)
        σ of the network whose limit "ntk"/"rf" is (``replearn.activations``; "relu", the
        paper's, by default): K_rf = E[σ(u)σ(v)], K_ntk = K_rf + E[σ′(u)σ′(v)]·(x·x' + 1),
        closed forms for relu, erf, abs and the polynomials, a Mehler series otherwise
        (``replearn.kernels``). Only with a named kernel.
    solver : {"auto", "exact", "falkon"}
        "exact" — the n×n kernel matrix in row blocks on ``device``, Cholesky of
        K + (nλ/2)I (``dtype=float64``: in float64; ``float32``: factored in float32 and
        refined to the float64 solution, falling back to float64 — see ``_exact_solve``);
        with ``ridge_lambda="auto"`` one float64 eigendecomposition gives every λ (O(n³):
        about 30 Cholesky factorisations' time on a CPU, and four n×n float64 matrices).
        "falkon" — Nyström centres (``n_centers``, drawn uniformly) and preconditioned
        conjugate gradient, all λ of the path solved together; memory O(rows·M + M²).
        "auto" — exact when its matrices take at most half the device's memory, else falkon.
    n_centers : int or "auto"
        M for falkon; "auto" = min(n, 16·⌈√n⌉) (Falkon's theory asks for
        M ≈ √n·log n; 16√n came within 1 % of the exact risk at n = 4000 and 20 000 on the
        paper's target, 8√n within 3–6 %).
    dtype : {"float32", "float64"} or torch dtype
        Precision of the kernel blocks streamed for predictions, the holdout and Falkon,
        and of the exact solver's factorisation (the solution is float64 either way).
    tol, max_iter : float, int
        Falkon's conjugate gradient: relative residual to reach, and the most iterations.
    ridge_lambda, preprocess, device, chunk_size, seed
        As ``RandomFeatures`` (seed draws Falkon's centres).

    Attributes
    ----------
    X_fit_ : tensor (N, d)
        The points the dual coefficients attach to: the training set (exact) or the centres.
    dual_coef_ : tensor (N,)
        c, float64: f(x) = α + β·x + Σ_i c_i·k(x, X_fit_i).
    alpha_, beta_ : tensor (), tensor (d,)
    solver_ : str
        "exact" or "falkon" ("auto" resolved).
    factorization_, refinement_steps_
        Exact solver: how K + μI was factored.
    n_iter_, converged_, cg_residuals_
        Falkon: CG iterations, and per λ whether it converged and its final relative residual.
    ridge_lambda_, lambda_path_, lambda_criterion_, lambda_criterion_name_
    n_features_in_, n_samples_ : int

    Examples
    --------
    >>> import torch
    >>> X = torch.randn(200, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> y = 1.0 + X[:, 0] + X[:, 1] ** 2
    >>> model = KernelRidge(kernel="ntk", ridge_lambda=1e-3, dtype="float64").fit(X, y)
    >>> model.solver_, model.dual_coef_.shape
    ('exact', torch.Size([200]))
    >>> model.score(X, y) > 0.9
    True
    """

    _parameter_checks = {
        "kernel": kernel_choice,
        "activation": activation_spec,
        "ridge_lambda": ridge_lambda,
        "solver": choice("auto", "exact", "falkon"),
        "n_centers": integer_or_auto,
        "tol": interval(0.0, 1.0, closed_low=False),
        "max_iter": count_within("steps", 1),
        "preprocess": boolean,
        "dtype": dtype_name,
        "device": device_name,
        "chunk_size": integer_at_least(1),
        "seed": seed,
    }

    def __init__(
        self,
        kernel: str | Callable = "ntk",
        activation="relu",
        ridge_lambda: float | str = "auto",
        solver: str = "auto",
        n_centers: int | str = "auto",
        tol: float = 1e-6,
        max_iter: int = 100,
        preprocess: bool = True,
        dtype: torch.dtype | str = "float32",
        device: str | torch.device = "cpu",
        chunk_size: int = 32_768,
        seed: int = 0,
    ):
        self.kernel = kernel
        self.activation = activation
        self.ridge_lambda = ridge_lambda
        self.solver = solver
        self.n_centers = n_centers
        self.tol = tol
        self.max_iter = max_iter
        self.preprocess = preprocess
        self.dtype = dtype
        self.device = device
        self.chunk_size = chunk_size
        self.seed = seed

    # -- validation -------------------------------------------------------------------------
    def _check_combination(self, values) -> None:
        sigma = resolve_activation(values["activation"])
        if callable(self.kernel):
            if not sigma.is_relu:
                raise ValueError(
                    "activation applies to kernel='ntk' or 'rf'; a callable kernel is used as given"
                )
            self._kernel_fn, self._diagonal_fn = checked_kernel(self.kernel), None
        elif sigma.is_relu:  # the paper's arc-cosine kernels, unchanged
            self._kernel_fn, self._diagonal_fn = KERNELS[self.kernel]
        else:
            kernel, diagonal = KERNELS[self.kernel]
            self._kernel_fn = functools.partial(kernel, activation=sigma)
            self._diagonal_fn = functools.partial(diagonal, activation=sigma)
        if values["ridge_lambda"] == 0.0:
            raise ValueError(
                "ridge_lambda = 0 needs n >= the number of features, and a kernel has "
                "infinitely many: use ridge_lambda > 0 or 'auto'"
            )

    # -- public API -------------------------------------------------------------------------
    def _predict_chunk(self, X: torch.Tensor) -> torch.Tensor:
        """α + β·x + k(x, X_fit)·c: kernel blocks in the model's dtype, sums in float64."""
        out = self.alpha_.double() + X.double() @ self.beta_.double()
        out += self._kernel_times(X, self.dual_coef_[:, None])[:, 0]
        return out.to(self._dtype)

    # -- fitting ----------------------------------------------------------------------------
    def _resolve_solver(self, n: int) -> str:
        """The solver "auto" picks for n samples: exact when it takes ≤ half the memory."""
        if self.solver != "auto":
            return self.solver
        itemsize = 8 if self.ridge_lambda == "auto" or self._dtype == torch.float64 else 4
        copies = 4 if self.ridge_lambda == "auto" else 1.5  # eigh: K, Q and 2n² workspace
        needed = copies * itemsize * n * n
        return "exact" if needed <= memory_bytes(torch.device(self.device)) / 2 else "falkon"

    def _fit_memory_bytes(self, n: int, d: int, n_holdout: int = 0) -> tuple[int, str]:
        """Exact: the n × n kernel matrix (``limits.dense_kernel_bytes``); Falkon: the data
        and the M × M matrices of the centres (``limits.falkon_bytes``)."""
        solver = self._resolve_solver(n)
        name = f"KernelRidge (solver {solver!r}) at d = {d}, n = {n:,}"
        if solver == "exact":
            return limits.dense_kernel_bytes(n, d), f"{name}: the {n:,}×{n:,} kernel matrix"
        centres = self._n_centers(n)
        return (
            limits.falkon_bytes(n, centres, d) + n_holdout * (d + 1) * 8,
            f"{name}: the data and the {centres:,}×{centres:,} matrices of the centres",
        )

    def _n_centers(self, n: int) -> int:
        """M: ``n_centers``, or min(n, 16·⌈√n⌉) for 'auto'."""
        if self.n_centers == "auto":
            return min(n, 16 * math.ceil(math.sqrt(n)))
        return self.n_centers

    def _fit(self, source, n: int, holdout, n_holdout: int) -> KernelRidge:
        ridge_lambda = check_ridge_lambda(self.ridge_lambda)
        d = source.d
        solver = self._resolve_solver(n)
        if solver == "falkon" and ridge_lambda == "auto" and (holdout is None or n_holdout == 0):
            raise ValueError(
                "solver='falkon' chooses λ on a holdout: pass X_holdout and y_holdout (or use "
                "fit_stream with n_holdout > 0), or give a fixed ridge_lambda"
            )
        if solver == "falkon" and self.n_centers != "auto" and self.n_centers > n:
            raise ValueError(f"n_centers must be <= n = {n}, got {self.n_centers}")
        if callable(self.kernel):  # probe the callable before any heavy work
            probe = torch.zeros(3, d, dtype=torch.float64, device=self._device)
            probe[1, 0], probe[2] = 1.0, 0.5
            self._kernel_fn(probe[:2], probe)
        alpha, beta = self._linear_part(source, n)
        self.alpha_, self.beta_ = alpha, beta
        X, y = materialise(source, n, self.chunk_size, self._device)
        r = y - alpha.double() - X @ beta.double()
        holdout_data = None
        if ridge_lambda == "auto" and holdout is not None and n_holdout > 0:
            Xh, yh = materialise(holdout, n_holdout, self.chunk_size, self._device)
            holdout_data = (Xh, yh - alpha.double() - Xh @ beta.double())
        if solver == "exact":
            self._fit_exact(X, r, ridge_lambda, holdout_data)
        else:
            self._fitfalkon(X, r, ridge_lambda, holdout_data)
        self.solver_ = solver
        self.n_samples_ = n
        return self

    def _fit_exact(self, X, r, ridge_lambda, holdout_data) -> None:
        n = X.shape[0]
        self.X_fit_ = X
        diagonal = self._diagonal_fn(X) if self._diagonal_fn is not None else None
        if ridge_lambda != "auto":
            dual, info = exact_solve(
                self._kernel_fn, X, r, n * ridge_lambda / 2, self._dtype, self._device, diagonal
            )
            self.dual_coef_ = dual
            self.factorization_ = info["factorization"]
            self.refinement_steps_ = info["refinement_steps"]
            self._store_lambda(RidgeHead(dual, ridge_lambda))
            return
        K = kernel_matrix(self._kernel_fn, X, torch.float64, self._device, diagonal)
        lambdas = lambda_grid_from_trace(float(K.diagonal().sum()) / n, n, self._device)
        path = EigenPath(K, r)
        del K
        # only λ whose predictions are meaningful in the model's dtype (EigenPath.stable)
        lambdas = lambdas[path.stable(n * lambdas / 2, self._dtype)]
        mus = n * lambdas / 2
        if holdout_data is not None:
            coefficients = path.coefficients(mus)  # (n, L)
            Xh, rh = holdout_data
            predictions = self._kernel_times(Xh.to(self._dtype), coefficients)
            criterion = ((predictions - rh[:, None]) ** 2).mean(0)
            best = argmin_criterion(criterion)
            self.dual_coef_ = coefficients[:, best].clone()
            name = "holdout_mse"
        else:
            criterion = path.gcv(mus)
            best = argmin_criterion(criterion)
            self.dual_coef_ = path.coefficients(mus[best : best + 1])[:, 0]
            name = "gcv"
        self.factorization_ = "eigh float64"
        self.refinement_steps_ = 0
        self._store_lambda(RidgeHead(self.dual_coef_, lambdas[best], lambdas, criterion, name))

    def _fitfalkon(self, X, r, ridge_lambda, holdout_data) -> None:
        n = X.shape[0]
        M = self._n_centers(n)
        generator = torch.Generator().manual_seed(int(self.seed))
        index = torch.randperm(n, generator=generator)[:M].sort().values.to(self._device)
        centres = X[index]
        diagonal = self._diagonal_fn(centres) if self._diagonal_fn is not None else None
        if ridge_lambda == "auto":
            if diagonal is None:
                diagonal = self._kernel_fn(centres, centres).diagonal()
            # tr(K)/n estimated by the centres' mean k(x, x) (uniform centres: unbiased)
            lambdas = lambda_grid_from_trace(float(diagonal.mean()), n, self._device)
        else:
            lambdas = torch.tensor([ridge_lambda], dtype=torch.float64, device=self._device)
        result = falkon(
            self._kernel_fn, X, r, centres, lambdas, self._dtype, self.tol, self.max_iter, diagonal
        )
        self.X_fit_ = centres
        self.n_iter_ = result.n_iter
        if ridge_lambda == "auto":
            Xh, rh = holdout_data
            predictions = self._kernel_times(Xh.to(self._dtype), result.coefficients)
            criterion = ((predictions - rh[:, None]) ** 2).mean(0)
            best = argmin_criterion(criterion)
            self._store_lambda(RidgeHead(None, lambdas[best], lambdas, criterion, "holdout_mse"))
        else:
            best = 0
            self._store_lambda(RidgeHead(None, ridge_lambda))
        self.dual_coef_ = result.coefficients[:, best].clone()
        self.converged_ = result.converged
        self.cg_residuals_ = result.residuals

    def _kernel_times(self, X: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
        """k(X, X_fit) @ coefficients (coefficients (N, L) float64), blocks in the model's
        dtype, products in float64: (n, L)."""
        points = self.X_fit_.to(self._dtype)
        rows = block_rows(points.shape[0], self._device)
        pieces = [
            self._kernel_fn(X[start : start + rows].to(self._dtype), points).double() @ coefficients
            for start in range(0, X.shape[0], rows)
        ]
        if not pieces:
            return coefficients.new_zeros(0, coefficients.shape[1])
        return torch.cat(pieces)
