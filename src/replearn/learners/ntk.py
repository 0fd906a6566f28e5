"""The linearised network (finite-width NTK): ridge regression on the tangent features of the
network at its symmetric initialisation,

    x ↦ α + β·x + ⟨∇_θ f(x; θ⁰), θ − θ⁰⟩,   features ∂f/∂(a, W, b): m(d + 2) of them,

in the primal form (streamed p×p Gram) or the dual form (n×n kernel from the finite-width
formula, ``linalg.dense``). As m → ∞, K/m tends to ``kernels.ntk_kernel``.
"""

from __future__ import annotations

import math

import torch

from replearn import limits
from replearn.learners.base import BaseLearner
from replearn.learners.ridge_head import (
    RidgeHead,
    accumulate_gram,
    check_finite_moments,
    check_interpolation,
    fit_ridge_head,
)
from replearn.learners.sources import Rechunked, materialise, preprocessed_chunks
from replearn.learners.tangent_gram import TangentGram, TangentPredictor
from replearn.linalg.dense import (
    EigenPath,
    block_rows,
    cholesky_coefficients,
    exact_solve,
    kernel_matrix,
)
from replearn.linalg.krylov import KrylovRidgePath, select_on_holdout
from replearn.linalg.ridge import (
    HoldoutErrors,
    RidgePath,
    argmin_criterion,
    default_lambda_grid,
    lambda_grid_from_trace,
)
from replearn.network import TwoLayerReLU, normal_biases, symmetric_init
from replearn.validation import (
    boolean,
    check_ridge_lambda,
    choice,
    device_name,
    dtype_name,
    even_width,
    integer_at_least,
    ridge_lambda,
    seed,
)

__all__ = ["NTKRegression"]


class NTKRegression(BaseLearner):
    """Ridge regression on the tangent features of the network at its symmetric initialisation.

    f_lin(x; θ) = f(x; θ⁰) + ∇_θ f(x; θ⁰)·(θ − θ⁰), and f(·; θ⁰) ≡ 0. For neuron j with
    u_j = w_j·x + b_j the features ∂f/∂(a_j, w_j, b_j) are

        ReLU(u_j),   a_j·1[u_j ≥ 0]·x,   a_j·1[u_j ≥ 0]           — m(d + 2) in all,

    so K(x, x') = Σ_j [ReLU(u_j)ReLU(u'_j) + 1[u_j ≥ 0]1[u'_j ≥ 0]·(x·x' + 1)] (a_j² = 1).

    Biases: ``bias="zero"`` (default) is the paper's initialisation b = 0, which makes this the
    linearisation of Algorithm 1's network at θ⁰; ``bias="normal"`` draws b ~ N(0, 1) for each
    pair (the first m/2 of RandomFeatures' biases, shared by partners so f(·; θ⁰) ≡ 0 still).

    Partners j, j + m/2 share (w_j, b_j) and have a_{j+m/2} = −a_j, so their feature blocks are
    equal up to sign and ΦΦᵀ = 2·Φ_½Φ_½ᵀ over the m/2 distinct neurons. We fit on √2·Φ_½,
    p = (m/2)(d + 2) features: the same kernel, hence the same predictions for every λ, at half
    the cost, and the minimum-norm displacement of all m(d + 2) parameters is recovered
    exactly (``delta_a_``, ``delta_W_``, ``delta_b_``).

    ``form``: "primal" streams the p×p Gram (memory O(p²), any n); "dual" solves with the n×n
    kernel, built blockwise from the finite-width formula above without ever forming Φ for all
    n; "auto" takes primal when p ≤ n. Both give the same predictions. As m → ∞, K/m tends to
    ``kernels.ntk_kernel``.

    Parameters
    ----------
    width : int
        m, even.
    bias : {"zero", "normal"}
        b⁰ = 0 (the paper's init) or b⁰ ~ N(0, 1) shared by partners.
    form : {"auto", "primal", "dual"}
    ridge_lambda : float or "auto"
    preprocess : bool
        Subtract α + β·x from the labels first (as Algorithm 1).
    dtype, device, chunk_size, seed
        As ``OneStepNetwork``.

    Attributes
    ----------
    coef_ : tensor (p,)
        θ on the fitted features √2·Φ_½, p = (m/2)(d + 2).
    delta_W_, delta_b_, delta_a_ : tensors (m, d), (m,), (m,)
        θ − θ⁰ of all m(d + 2) parameters (minimum norm).
    network0_ : TwoLayerReLU
        θ⁰, the point of linearisation.
    alpha_, beta_ : tensor (), tensor (d,)
    form_ : str
        The form used ("auto" resolved).
    ridge_lambda_, lambda_path_, lambda_criterion_, lambda_criterion_name_
    n_features_in_, n_samples_ : int

    Examples
    --------
    >>> import torch
    >>> X = torch.randn(300, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> y = 1.0 + X[:, 0] + X[:, 1] ** 2
    >>> model = NTKRegression(width=10, dtype="float64").fit(X, y)
    >>> model.form_, model.coef_.shape   # p = (10/2)·(3 + 2) = 25 ≤ n: primal
    ('primal', torch.Size([25]))
    >>> model.score(X, y) > 0.8
    True
    """

    _parameter_checks = {
        "width": even_width,
        "bias": choice("zero", "normal"),
        "form": choice("auto", "primal", "dual"),
        "ridge_lambda": ridge_lambda,
        "preprocess": boolean,
        "dtype": dtype_name,
        "device": device_name,
        "chunk_size": integer_at_least(1),
        "seed": seed,
    }

    def __init__(
        self,
        width: int = 100,
        bias: str = "zero",
        form: str = "auto",
        ridge_lambda: float | str = "auto",
        preprocess: bool = True,
        dtype: torch.dtype | str = "float32",
        device: str | torch.device = "cpu",
        chunk_size: int = 32_768,
        seed: int = 0,
    ):
        self.width = width
        self.bias = bias
        self.form = form
        self.ridge_lambda = ridge_lambda
        self.preprocess = preprocess
        self.dtype = dtype
        self.device = device
        self.chunk_size = chunk_size
        self.seed = seed

    def initial_network(self, d: int) -> TwoLayerReLU:
        """θ⁰ = (W⁰, b⁰, a) for input dimension d: the point of linearisation."""
        self._check_params()
        init = symmetric_init(self.width, d, self.seed, self._dtype, self._device)
        if self.bias == "normal":
            half = normal_biases(self.width // 2, self.seed, self._dtype, self._device)
            init.b = torch.cat([half, half])
        return init

    def n_features(self, d: int) -> int:
        """p = (m/2)(d + 2): the tangent features actually fitted (see the class docstring)."""
        return self.width // 2 * (d + 2)

    def _fit_memory_bytes(self, n: int, d: int, n_holdout: int = 0) -> tuple[int, str]:
        """(bytes, what) of the fit's dominant allocations, in the form the fit will take.

        Both forms: θ⁰ (m(d + 2) numbers drawn in float64, then cast) and row chunks of the
        p = (m/2)(d + 2) tangent features (model dtype and a float64 copy). Primal: the ridge
        head on p features (``limits.ridge_head_bytes``). Dual: the n × n kernel and its
        eigendecomposition (``limits.dense_kernel_bytes``), then the larger of two phases
        that do not overlap — building K, whose blocks k(X[rows], X) hold the
        pre-activations and gates of their rows and of all n rows for the m/2 distinct
        neurons (float64 both, with their bool masks and conversions: about 20 bytes a
        number, as measured), and θ = Φᵀc (p float64 numbers per λ: the 49 of the path when
        λ is chosen on a holdout) with the scoring of the holdout against every θ (a chunk of
        features, or kernel blocks k(X_h[rows], X) as above). The dual form's cost grows
        with the width through both phases: at m = 10⁷ and n = 50 it is about 11 GB
        although the kernel is 50 × 50.
        """
        p, half = self.n_features(d), self.width // 2
        item = limits.item_bytes(self._dtype)
        form = self.form if self.form != "auto" else ("primal" if p <= n else "dual")
        network = self.width * (d + 2) * (8 + item)
        rows = self._rows(p)
        name = f"NTKRegression with width {self.width} at d = {d}, n = {n:,} ({form} form"
        if form == "primal":
            rows = min(rows, max(n, n_holdout))
            needed = limits.ridge_head_bytes(p, d, rows, self._dtype) + network
            return needed, f"{name}: the {p:,}×{p:,} float64 Gram matrix of the tangent features)"
        n_lambdas = 49 if self.ridge_lambda == "auto" and n_holdout > 0 else 1
        block = min(n, block_rows(n, self._device))
        building_k = (block + n) * half * 20
        scoring = rows * p * (item + 8)  # a chunk of features (θ = Φᵀc, holdout predictions)
        if n_lambdas > 1:  # or holdout rows scored through k(X_h, X), with every θ kept
            holdout_rows = min(self._rows(max(n, self.width)), n_holdout)
            scoring = max(scoring, (holdout_rows + n) * half * 20)
        thetas = p * n_lambdas * 8 + scoring
        needed = limits.dense_kernel_bytes(n, d) + max(building_k, thetas) + network
        return needed, (
            f"{name}: the {n:,}×{n:,} kernel, its blocks over the {half:,} distinct neurons "
            f"and θ = Φᵀc on {p:,} tangent features)"
        )

    # -- features and kernel of the m/2 distinct neurons --------------------------------
    def _half(self):
        half = self.width // 2
        net = self.network0_
        return net.W[:half], net.b[:half], net.a[:half]

    def _features(self, X: torch.Tensor) -> torch.Tensor:
        """√2·[ReLU(u), a·1[u ≥ 0]⊗x, a·1[u ≥ 0]] for the m/2 distinct neurons: (n, p)."""
        W, b, a = self._half()
        pre = torch.addmm(b, X, W.T)  # u, (n, m/2)
        gate = (pre >= 0).to(X.dtype) * a  # a_j·1[u_j ≥ 0]
        weight_part = (gate[:, :, None] * X[:, None, :]).reshape(X.shape[0], -1)
        return torch.cat([pre.relu_(), weight_part, gate], dim=1).mul_(math.sqrt(2.0))

    def _kernel(self, X1: torch.Tensor, X2: torch.Tensor) -> torch.Tensor:
        """K = 2·Σ_{j<m/2}[ReLU(u_j)ReLU(u'_j) + 1[u_j ≥ 0]1[u'_j ≥ 0](x·x' + 1)]: (n1, n2)."""
        W, b, _ = self._half()
        W, b = W.to(X1.dtype), b.to(X1.dtype)
        pre1, pre2 = torch.addmm(b, X1, W.T), torch.addmm(b, X2, W.T)
        gates = ((pre1 >= 0).to(X1.dtype)) @ ((pre2 >= 0).to(X1.dtype)).T
        K = pre1.relu_() @ pre2.relu_().T
        return K.addcmul_(
            gates, torch.addmm(torch.ones((), dtype=X1.dtype, device=X1.device), X1, X2.T)
        ).mul_(2.0)

    # -- fitting ---------------------------------------------------------------------------
    def _fit(self, source, n: int, holdout, n_holdout: int) -> NTKRegression:
        ridge_lambda = check_ridge_lambda(self.ridge_lambda)
        d = source.d
        p = self.n_features(d)
        check_interpolation(ridge_lambda, n, p, "tangent features (m/2)(d+2)")
        form = self.form if self.form != "auto" else ("primal" if p <= n else "dual")
        if form == "dual" and ridge_lambda == 0.0 and n > p:
            raise ValueError(
                f"ridge_lambda = 0 with form='dual' needs n <= {p} features (the n×n kernel "
                f"has rank <= {p}); use form='primal', or ridge_lambda > 0 or 'auto'"
            )
        self.network0_ = self.initial_network(d)
        alpha, beta = self._linear_part(source, n)
        self.alpha_, self.beta_ = alpha, beta
        if form == "primal":
            self._fit_primal(source, n, holdout, n_holdout, ridge_lambda, p)
        else:
            self._fit_dual(source, n, holdout, n_holdout, ridge_lambda, p)
        self.form_ = form
        self._store_displacement(d)
        self.n_samples_ = n
        return self

    def _rows(self, p: int) -> int:
        return block_rows(p, self._device, cap=self.chunk_size) * 8

    # p (primal) or n (dual) from which the holdout λ-path comes from Lanczos
    # (``linalg.krylov``) instead of one float64 eigh: below it the eigh costs little
    lambda_search_min_features = 2048

    def _fit_primal(self, source, n, holdout, n_holdout, ridge_lambda, p) -> None:
        rows = self._rows(p)
        train = Rechunked(source, rows, self.chunk_size)
        hold = Rechunked(holdout, rows, self.chunk_size) if holdout is not None else None
        if p < self.lambda_search_min_features:
            head, _ = fit_ridge_head(
                self._features, p, train, n, 0, self.alpha_, self.beta_, ridge_lambda, rows,
                self._dtype, self._device, hold, n_holdout,
            )  # fmt: skip
        else:
            head = self._fit_primal_by_search(train, n, hold, n_holdout, ridge_lambda, p, rows)
        self.coef_ = head.coefficients.to(self._dtype)
        self._store_lambda(head)

    def _fit_primal_by_search(self, train, n, hold, n_holdout, ridge_lambda, p, rows) -> RidgeHead:
        """The ridge head of the wide primal form without an eigendecomposition.

        Fixed λ: one Cholesky solve. λ = 'auto' with a holdout: Lanczos on G from c gives
        a(λ) for the whole 49-point λ-path from one Krylov space (``linalg.krylov``); the λ
        converged so far are scored in one holdout pass per round of steps, until the best
        has its upper neighbour and the 6 λ below it scored (criterion NaN where never
        scored). Falls back to the eigh path (``RidgePath``) when a λ next to the best never
        converges (G nearly singular at tiny λ), and for GCV (which needs G's spectrum).
        """
        gram, cross, mean_y2 = self._tangent_moments(train, n, rows)
        if ridge_lambda != "auto":
            lambdas = torch.tensor([float(ridge_lambda)], dtype=torch.float64)
            coefficients, ok = cholesky_coefficients(gram, cross, lambdas)
            if bool(ok[0]):
                return RidgeHead(coefficients[0], float(ridge_lambda))
            return RidgeHead(RidgePath(gram, cross, mean_y2, n).solve(ridge_lambda), ridge_lambda)
        lambdas = default_lambda_grid(gram)
        if hold is None or n_holdout <= 0:
            path = RidgePath(gram, cross, mean_y2, n)
            best, grid, criterion = path.select(lambdas)
            return RidgeHead(path.solve(best), best, grid, criterion, "gcv")

        def holdout_mse(coefficients: torch.Tensor) -> torch.Tensor:
            mse = self._holdout_errors(hold, n_holdout, coefficients, rows)
            return mse.masked_fill(~torch.isfinite(mse), math.inf)

        krylov = KrylovRidgePath(gram, cross)
        selected = select_on_holdout(krylov, lambdas, holdout_mse)
        if selected is not None:
            best, criterion = selected
            coefficients, _ = krylov.solutions(lambdas[best : best + 1])
            solution = coefficients[0]
        else:  # a λ next to the best never converged: every λ from one eigendecomposition
            path = RidgePath(gram, cross, mean_y2, n)
            criterion = self._holdout_errors(hold, n_holdout, path.coefficients(lambdas), rows)
            best = argmin_criterion(criterion)
            solution = path.solve(float(lambdas[best]))
        return RidgeHead(
            solution, float(lambdas[best]), lambdas, criterion.to(lambdas.device), "holdout_mse"
        )

    def _tangent_moments(
        self, train, n: int, rows: int
    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """(G, c, mean r²) of the tangent features over the training samples.

        Many neurons: ``TangentGram`` forms G from the (d + 1)² gated second moments of x̃,
        never materialising F (fewer flops, h-wide GEMMs); otherwise FᵀF of F in ``rows``-row
        chunks. The two agree to rounding (tests/test_ntk_tangent_gram.py).
        """
        W, b, a = self._half()
        if not TangentGram.worthwhile(*W.shape):
            acc = accumulate_gram(
                self._features, W.shape[0] * (W.shape[1] + 2), train, n, 0, self.alpha_,
                self.beta_, rows, self._dtype, self._device,
            )  # fmt: skip
            check_finite_moments(acc.gram, acc.cross, self._dtype)
            return acc.moments()
        acc = TangentGram(W, b, a)
        chunk_rows = acc.chunk_rows()
        source = Rechunked(train.source, chunk_rows, self.chunk_size)
        for X, r in preprocessed_chunks(
            source, n, 0, self.alpha_, self.beta_, chunk_rows, self._dtype, self._device
        ):
            acc.add(X, r)
        gram, cross, mean_r2 = acc.moments()
        check_finite_moments(gram, cross, self._dtype)
        return gram, cross, mean_r2

    def _tangent_predictor(self, coefficients: torch.Tensor) -> TangentPredictor | None:
        """F·θ without F for many neurons (``TangentPredictor``), else None (form F)."""
        W, b, a = self._half()
        return TangentPredictor(W, b, a, coefficients) if TangentGram.worthwhile(*W.shape) else None

    def _holdout_errors(self, hold, n_holdout, coefficients, rows) -> torch.Tensor:
        """Holdout MSE of each row of ``coefficients`` (L, p): one pass, all rows at once."""
        errors = HoldoutErrors(coefficients)
        predictor = self._tangent_predictor(coefficients)
        rows = rows if predictor is None else predictor.chunk_rows()
        for X, r in preprocessed_chunks(
            hold, n_holdout, 0, self.alpha_, self.beta_, rows, self._dtype, self._device
        ):
            if predictor is None:
                errors.add(self._features(X), r)
            else:
                errors.add_predictions(predictor(X), r)
        return errors.mse()

    def _fit_dual(self, source, n, holdout, n_holdout, ridge_lambda, p) -> None:
        X, y = materialise(source, n, self.chunk_size, self._device)  # n < p: small
        r = y - self.alpha_.double() - X @ self.beta_.double()
        kernel = self._kernel  # evaluated in float64 (X is float64)
        if ridge_lambda != "auto":
            mu = n * ridge_lambda / 2
            dual, _ = exact_solve(kernel, X, r, mu, torch.float64, self._device)
            self.coef_ = self._primal_from_dual(X, dual[:, None])[:, 0].to(self._dtype)
            self._store_lambda(RidgeHead(self.coef_, ridge_lambda))
            return
        K = kernel_matrix(kernel, X, torch.float64, self._device)
        lambdas = lambda_grid_from_trace(float(K.diagonal().sum()) / n, p, self._device)
        if n >= self.lambda_search_min_features and holdout is not None and n_holdout > 0:
            if self._fit_dual_by_krylov(K, X, r, lambdas, holdout, n_holdout):
                return
        path = EigenPath(K, r)
        del K
        mus = n * lambdas / 2
        if holdout is not None and n_holdout > 0:
            duals = path.coefficients(mus)  # (n, L)
            thetas = self._primal_from_dual(X, duals)  # (p, L)
            if n * (self.width + X.shape[1] + 1) < p * len(lambdas):  # k(X_h, X)·c: fewer flops
                criterion = self._holdout_mse_by_kernel(holdout, n_holdout, X, duals)
            else:
                criterion = self._holdout_mse(holdout, n_holdout, thetas)
            name = "holdout_mse"
        else:
            thetas, criterion, name = None, path.gcv(mus), "gcv"
        best = argmin_criterion(criterion)
        if thetas is None:
            thetas = self._primal_from_dual(X, path.coefficients(mus[best : best + 1]))
            best_theta = thetas[:, 0]
        else:
            best_theta = thetas[:, best]
        self.coef_ = best_theta.to(self._dtype)
        self._store_lambda(RidgeHead(self.coef_, lambdas[best], lambdas, criterion, name))

    def _fit_dual_by_krylov(self, K, X, r, lambdas, holdout, n_holdout) -> bool:
        """λ = 'auto' on a holdout for n ≥ ``lambda_search_min_features`` samples: Lanczos on
        K/n from r/n ((K/n + λ/2·I)c = r/n is (K + nλ/2·I)c = r), λ scored in rounds of steps
        as in the primal form, instead of an n×n eigendecomposition. False (nothing set) when
        a λ next to the best never converges: the caller takes the eigen path."""
        n = K.shape[0]
        lower = torch.tril(K)
        krylov = KrylovRidgePath((lower + torch.tril(K, -1).T) / n, r / n)

        def holdout_mse(dual: torch.Tensor) -> torch.Tensor:
            mse = self._holdout_mse(holdout, n_holdout, self._primal_from_dual(X, dual.T))
            return mse.masked_fill(~torch.isfinite(mse), math.inf)

        selected = select_on_holdout(krylov, lambdas, holdout_mse)
        if selected is None:
            return False
        best, criterion = selected
        dual, _ = krylov.solutions(lambdas[best : best + 1])
        self.coef_ = self._primal_from_dual(X, dual.T)[:, 0].to(self._dtype)
        self._store_lambda(
            RidgeHead(self.coef_, float(lambdas[best]), lambdas, criterion, "holdout_mse")
        )
        return True

    def _primal_from_dual(self, X: torch.Tensor, dual: torch.Tensor) -> torch.Tensor:
        """θ = Φᵀc for each column of c (n, L), streamed over rows: (p, L) in float64."""
        rows = self._rows(self.n_features(X.shape[1]))
        theta = None
        for start in range(0, X.shape[0], rows):
            F = self._features(X[start : start + rows].to(self._dtype)).double()
            part = F.T @ dual[start : start + rows]
            theta = part if theta is None else theta + part
        return theta

    def _holdout_mse(self, holdout, n_holdout: int, thetas: torch.Tensor) -> torch.Tensor:
        """mean over the holdout of (Φθ_l − r)² for each column θ_l: (L,)."""
        predictor = self._tangent_predictor(thetas.T)
        rows = self._rows(thetas.shape[0]) if predictor is None else predictor.chunk_rows()
        total = torch.zeros(thetas.shape[1], dtype=torch.float64, device=self._device)
        for X, y in Rechunked(holdout, rows, self.chunk_size).chunks(n_holdout, self.chunk_size):
            X = X.to(device=self._device, dtype=self._dtype)
            y = y.to(device=self._device, dtype=torch.float64)
            r = y - self.alpha_.double() - X.double() @ self.beta_.double()
            predictions = self._features(X).double() @ thetas if predictor is None else predictor(X)
            total += ((predictions - r[:, None]) ** 2).sum(0)
        return total / n_holdout

    def _holdout_mse_by_kernel(self, holdout, n_holdout: int, X, duals) -> torch.Tensor:
        """``_holdout_mse`` for very few training samples: Φ_h θ_l = k(X_h, X)·c_l, the
        finite-width kernel between holdout and training rows (float64), 2·n_h·n·(m + d)
        flops against 2·n_h·p·L for the tangent features."""
        rows = self._rows(max(X.shape[0], self.width))
        total = torch.zeros(duals.shape[1], dtype=torch.float64, device=self._device)
        for Xh, y in Rechunked(holdout, rows, self.chunk_size).chunks(n_holdout, self.chunk_size):
            Xh = Xh.to(device=self._device, dtype=self._dtype).double()
            y = y.to(device=self._device, dtype=torch.float64)
            r = y - self.alpha_.double() - Xh @ self.beta_.double()
            total += ((self._kernel(Xh, X) @ duals - r[:, None]) ** 2).sum(0)
        return total / n_holdout

    def _store_displacement(self, d: int) -> None:
        """θ − θ⁰ of all m(d + 2) parameters: partners split √2·θ_½ evenly (minimum norm)."""
        half = self.width // 2
        coef = self.coef_ / math.sqrt(2.0)
        da, dW, db = (
            coef[:half],
            coef[half : half * (d + 1)].reshape(half, d),
            coef[half * (d + 1) :],
        )
        self.delta_a_ = torch.cat([da, da])
        self.delta_W_ = torch.cat([dW, -dW])
        self.delta_b_ = torch.cat([db, -db])

    def _predict_rows(self) -> int:
        predictor = self._tangent_predictor(self.coef_)
        return self._rows(self.coef_.shape[0]) if predictor is None else predictor.chunk_rows()

    def _predict_chunk(self, X: torch.Tensor) -> torch.Tensor:
        """α + β·x + ⟨∇_θ f(x; θ⁰), θ − θ⁰⟩."""
        predictor = self._tangent_predictor(self.coef_)
        if predictor is None:
            return self._linear(X) + self._features(X) @ self.coef_
        return self._linear(X) + predictor(X)[:, 0].to(X.dtype)
