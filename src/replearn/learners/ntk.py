"""The linearised network (finite-width NTK): ridge regression on the tangent features of the
network f(x) = c·Σ_j a_j·σ(w_j·x + b_j) at its initialisation θ⁰,

    x ↦ α + β·x + f(x; θ⁰) + ⟨∇_θ f(x; θ⁰), θ − θ⁰⟩,
    ∂f/∂(a_j, w_j, b_j) = c·(σ(u_j), a_j·σ′(u_j)·x, a_j·σ′(u_j)),   u_j = w_j·x + b_j,

m(d + 2) features (m(d + 1) without biases), in the primal form (streamed p×p Gram) or the dual
form (n×n kernel from the finite-width formula, ``linalg.dense``). As m → ∞, K/m tends to
``kernels.ntk_kernel`` of the same σ (a_j² = 1).

Code paths. ReLU (σ(z) = σ′(z)·z, 0/1 gates) keeps the structured Gram and predictor of
``tangent_gram`` for many neurons: the paper's network through exactly the code of before
(bit-identical), other output scales and second layers through the same classes with their
feature scale. Every other σ forms the tangent features F explicitly, chunk by chunk, and
accumulates FᵀF: n·p² multiply-adds for p = h(d + 2). The gated moments generalise (weights σ′
in place of the gates), but σ(u) is no longer σ′(u)·u, so the σ–σ and σ–σ′ blocks need
another 1 + (d + 1) h-wide products per chunk besides the (d + 1)(d + 2)/2 of H: at d = 10 it
would save under 2× the flops, for a second implementation of every block; we keep one.
"""

from __future__ import annotations

import math

import torch

from replearn import limits
from replearn.activations import activation_spec, resolve_activation
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
from replearn.network import (
    TwoLayerNetwork,
    check_network_options,
    directions_spec,
    first_layer_spec,
    initial_network,
    normal_biases,
    output_scale_spec,
    resolve_directions,
    resolve_output_scale,
    second_layer_spec,
)
from replearn.validation import (
    boolean,
    check_ridge_lambda,
    choice,
    device_name,
    dtype_name,
    integer_at_least,
    network_width,
    ridge_lambda,
    seed,
)

__all__ = ["NTKRegression"]


class _Shifted:
    """A source whose labels are y − f⁰(x): the part of y the linearised displacement fits
    when the network at θ⁰ is not zero (an unpaired initialisation)."""

    def __init__(self, source, network: TwoLayerNetwork):
        self.source, self.network = source, network

    @property
    def d(self) -> int:
        return self.source.d

    def chunks(self, n: int, chunk_size: int, start: int = 0):
        W = self.network.W
        for X, y, *_ in self.source.chunks(n, chunk_size, start=start):
            f0 = self.network(X.to(device=W.device, dtype=W.dtype))
            y = y if y.is_floating_point() else y.to(torch.float64)  # integer labels
            yield X, y - f0.to(device=y.device, dtype=y.dtype)


class NTKRegression(BaseLearner):
    """Ridge regression on the tangent features of the network at its initialisation.

    f_lin(x; θ) = f(x; θ⁰) + ∇_θ f(x; θ⁰)·(θ − θ⁰), and f(·; θ⁰) ≡ 0. For neuron j with
    u_j = w_j·x + b_j the features ∂f/∂(a_j, w_j, b_j) are

        ReLU(u_j),   a_j·1[u_j ≥ 0]·x,   a_j·1[u_j ≥ 0]           — m(d + 2) in all,

    so K(x, x') = Σ_j [ReLU(u_j)ReLU(u'_j) + 1[u_j ≥ 0]1[u'_j ≥ 0]·(x·x' + 1)] (a_j² = 1).

    Biases: ``bias="zero"`` (default) is the paper's initialisation b = 0, which makes this the
    linearisation of Algorithm 1's network at θ⁰; ``bias="normal"`` draws b ~ N(0, 1) for each
    pair (the first m/2 of RandomFeatures' biases, shared by partners so f(·; θ⁰) ≡ 0 still);
    ``bias="none"``: no biases, and no bias features (p = (m/2)(d + 1)).

    Other networks (``activation``, ``output_scale`` c, ``first_layer``, ``second_layer``):
    the features are c·(σ(u_j), a_j·σ′(u_j)·x, a_j·σ′(u_j)), the kernel
    c²·Σ_j [σ(u_j)σ(u'_j) + a_j²·σ′(u_j)σ′(u'_j)·(x·x' + 1)]. Without the symmetric pairs
    (``second_layer`` other than "paper") every neuron is its own unit (p = m(d + 2), no √2)
    and f(·; θ⁰) ≠ 0: the model is α + β·x + f(x; θ⁰) + F(x)·(θ − θ⁰), fitted to y − f(x; θ⁰)
    (α and β too).

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
        m ≥ 1; even for ``second_layer="paper"``.
    activation : str, Activation or (σ, σ′)
        σ of the network (``replearn.activations``; "relu" by default).
    output_scale : float or {"1/sqrt(m)", "1/m"}
        c (1: the paper's).
    first_layer : {"gaussian", "unit_rows", "orthogonal"} or array (m, d)
        W⁰ (``network.initial_network``); "orthogonal" needs ``directions``.
    second_layer : {"paper", "signs", "gaussian", "constant"} or array (m,)
        a (fixed at θ⁰; its displacement is fitted).
    directions : MultiIndexTarget, array (r, d) or None
        The target's directions, for ``first_layer="orthogonal"``.
    bias : {"zero", "normal", "none"}
        b⁰ = 0 (the paper's init), b⁰ ~ N(0, 1) (shared by partners), or no biases.
    form : {"auto", "primal", "dual"}
    ridge_lambda : float or "auto"
    preprocess : bool
        Subtract α + β·x from the labels first (as Algorithm 1).
    dtype, device, chunk_size, seed
        As ``OneStepNetwork``.

    Attributes
    ----------
    coef_ : tensor (p,)
        θ on the fitted features: √2·Φ_½, p = (m/2)(d + 2), for the symmetric pairs; Φ,
        p = m(d + 2), otherwise (d + 1 per neuron without biases).
    delta_W_, delta_b_, delta_a_ : tensors (m, d), (m,), (m,)
        θ − θ⁰ of all m(d + 2) parameters (minimum norm).
    network0_ : TwoLayerNetwork
        θ⁰, the point of linearisation (with σ and c).
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
        "width": network_width,
        "activation": activation_spec,
        "output_scale": output_scale_spec,
        "first_layer": first_layer_spec,
        "second_layer": second_layer_spec,
        "directions": directions_spec,
        "bias": choice("zero", "normal", "none"),
        "form": choice("auto", "primal", "dual"),
        "ridge_lambda": ridge_lambda,
        "preprocess": boolean,
        "dtype": dtype_name,
        "device": device_name,
        "chunk_size": integer_at_least(1),
        "seed": seed,
    }
    # a target or an array: YAML cannot give it (the engine may pass the target's U)
    _not_in_specs = frozenset({"directions"})

    def __init__(
        self,
        width: int = 100,
        activation="relu",
        output_scale: float | str = 1.0,
        first_layer="gaussian",
        second_layer="paper",
        directions=None,
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
        self.activation = activation
        self.output_scale = output_scale
        self.first_layer = first_layer
        self.second_layer = second_layer
        self.directions = directions
        self.bias = bias
        self.form = form
        self.ridge_lambda = ridge_lambda
        self.preprocess = preprocess
        self.dtype = dtype
        self.device = device
        self.chunk_size = chunk_size
        self.seed = seed

    def _check_combination(self, values) -> None:
        check_network_options(values["width"], self.first_layer, self.second_layer, self.directions)

    def _is_paired(self) -> bool:
        """The symmetric ±1 pairs: partners j, j + m/2 share (w_j, b_j), f(·; θ⁰) ≡ 0."""
        return isinstance(self.second_layer, str) and self.second_layer == "paper"

    def initial_network(self, d: int) -> TwoLayerNetwork:
        """θ⁰ = (W⁰, b⁰, a) for input dimension d: the point of linearisation."""
        self._check_params()
        activation = resolve_activation(self.activation)
        c = resolve_output_scale(self.output_scale, self.width)
        init = initial_network(
            self.width, d, self.seed, self.first_layer, self.second_layer, activation, c,
            resolve_directions(self.directions), self._dtype, self._device,
        )  # fmt: skip
        if self.bias == "normal":
            if self._is_paired():
                half = normal_biases(self.width // 2, self.seed, self._dtype, self._device)
                init.b = torch.cat([half, half])
            else:
                init.b = normal_biases(self.width, self.seed, self._dtype, self._device)
        return init

    def n_features(self, d: int) -> int:
        """p = h·(d + 2) tangent features actually fitted (h·(d + 1) without biases), h = m/2
        distinct neurons for the symmetric pairs, else m (see the class docstring)."""
        units = self.width // 2 if self._is_paired() else self.width
        return units * (d + (1 if self.bias == "none" else 2))

    def _fit_memory_bytes(self, n: int, d: int, n_holdout: int = 0) -> tuple[int, str]:
        """(bytes, what) of the fit's dominant allocations, in the form the fit will take.

        Both forms: θ⁰ (m(d + 2) numbers drawn in float64, then cast) and row chunks of the
        p = h(d + 2) tangent features (model dtype and a float64 copy). Primal: the ridge
        head on p features (``limits.ridge_head_bytes``). Dual: the n × n kernel and its
        eigendecomposition (``limits.dense_kernel_bytes``), then the larger of two phases
        that do not overlap — building K, whose blocks k(X[rows], X) hold the
        pre-activations and gates of their rows and of all n rows for the h distinct
        neurons (m/2 for the symmetric pairs, else m) (float64 both, with their bool masks and conversions: about 20 bytes a
        number, as measured), and θ = Φᵀc (p float64 numbers per λ: the 49 of the path when
        λ is chosen on a holdout) with the scoring of the holdout against every θ (a chunk of
        features, or kernel blocks k(X_h[rows], X) as above). The dual form's cost grows
        with the width through both phases: at m = 10⁷ and n = 50 it is about 11 GB
        although the kernel is 50 × 50.
        """
        p = self.n_features(d)
        half = self.width // 2 if self._is_paired() else self.width  # distinct neurons
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

    # -- features and kernel of the distinct neurons (m/2 partners, or all m) -----------
    def _units(self):
        """(W, b, a) of the h distinct neurons."""
        net = self.network0_
        if not self._is_paired():
            return net.W, net.b, net.a
        half = self.width // 2
        return net.W[:half], net.b[:half], net.a[:half]

    def _is_paper_relu(self) -> bool:
        """The paper's network (ReLU, c = 1, pairs, biases): its code paths of before."""
        return self.network0_.is_paper_relu and self._is_paired() and self.bias != "none"

    def _feature_scale(self) -> float:
        """s·c: each fitted feature is c·∂/∂θ_j times √2 for the pairs (ΦΦᵀ = 2Φ_½Φ_½ᵀ)."""
        c = self.network0_.output_scale
        return math.sqrt(2.0) * c if self._is_paired() else c

    def _structured(self) -> bool:
        """Whether ``TangentGram``/``TangentPredictor`` apply: ReLU with bias features, many
        neurons."""
        W, _, _ = self._units()
        relu = self.network0_.activation.is_relu and self.bias != "none"
        return relu and TangentGram.worthwhile(*W.shape)

    def _structured_scale(self) -> float | None:
        """The feature scale for ``TangentGram`` (None: the paper's √2, exactly as before)."""
        return None if self._is_paper_relu() else self._feature_scale()

    def _features(self, X: torch.Tensor) -> torch.Tensor:
        """s·c·[σ(u), a·σ′(u)⊗x, a·σ′(u)] for the distinct neurons: (n, p) (paper: √2·[ReLU(u),
        a·1[u ≥ 0]⊗x, a·1[u ≥ 0]])."""
        if not self._is_paper_relu():
            return self._general_features(X)
        W, b, a = self._units()
        pre = torch.addmm(b, X, W.T)  # u, (n, m/2)
        gate = (pre >= 0).to(X.dtype) * a  # a_j·1[u_j ≥ 0]
        weight_part = (gate[:, :, None] * X[:, None, :]).reshape(X.shape[0], -1)
        return torch.cat([pre.relu_(), weight_part, gate], dim=1).mul_(math.sqrt(2.0))

    def _general_features(self, X: torch.Tensor) -> torch.Tensor:
        W, b, a = self._units()
        sigma = self.network0_.activation
        pre = torch.addmm(b, X, W.T)  # u, (n, h)
        slope = sigma.derivative(pre) * a  # a_j·σ′(u_j)
        weight_part = (slope[:, :, None] * X[:, None, :]).reshape(X.shape[0], -1)
        parts = [sigma(pre), weight_part] + ([] if self.bias == "none" else [slope])
        return torch.cat(parts, dim=1).mul_(self._feature_scale())

    def _kernel(self, X1: torch.Tensor, X2: torch.Tensor) -> torch.Tensor:
        """K = 2·Σ_{j<m/2}[ReLU(u_j)ReLU(u'_j) + 1[u_j ≥ 0]1[u'_j ≥ 0](x·x' + 1)] for the paper's
        network; (s·c)²·Σ_j [σ(u_j)σ(u'_j) + a_j²σ′(u_j)σ′(u'_j)(x·x' + 1)] in general (no + 1
        without biases): (n1, n2)."""
        if not self._is_paper_relu():
            return self._general_kernel(X1, X2)
        W, b, _ = self._units()
        W, b = W.to(X1.dtype), b.to(X1.dtype)
        pre1, pre2 = torch.addmm(b, X1, W.T), torch.addmm(b, X2, W.T)
        gates = ((pre1 >= 0).to(X1.dtype)) @ ((pre2 >= 0).to(X1.dtype)).T
        K = pre1.relu_() @ pre2.relu_().T
        return K.addcmul_(
            gates, torch.addmm(torch.ones((), dtype=X1.dtype, device=X1.device), X1, X2.T)
        ).mul_(2.0)

    def _general_kernel(self, X1: torch.Tensor, X2: torch.Tensor) -> torch.Tensor:
        W, b, a = (t.to(X1.dtype) for t in self._units())
        sigma = self.network0_.activation
        pre1, pre2 = torch.addmm(b, X1, W.T), torch.addmm(b, X2, W.T)
        slopes = (sigma.derivative(pre1) * a**2) @ sigma.derivative(pre2).T
        inner = X1 @ X2.T
        if self.bias != "none":
            inner += 1.0
        K = sigma(pre1) @ sigma(pre2).T
        return K.addcmul_(slopes, inner).mul_(self._feature_scale() ** 2)

    # -- fitting ---------------------------------------------------------------------------
    def _fit(self, source, n: int, holdout, n_holdout: int) -> NTKRegression:
        ridge_lambda = check_ridge_lambda(self.ridge_lambda)
        d = source.d
        p = self.n_features(d)
        what = "tangent features (m/2)(d+2)" if self._is_paired() else "tangent features m(d+2)"
        what = what.replace("+2", "+1") if self.bias == "none" else what
        check_interpolation(ridge_lambda, n, p, what)
        form = self.form if self.form != "auto" else ("primal" if p <= n else "dual")
        if form == "dual" and ridge_lambda == 0.0 and n > p:
            raise ValueError(
                f"ridge_lambda = 0 with form='dual' needs n <= {p} features (the n×n kernel "
                f"has rank <= {p}); use form='primal', or ridge_lambda > 0 or 'auto'"
            )
        self.network0_ = self.initial_network(d)
        if not self._is_paired():  # f(·; θ⁰) ≠ 0: fit the displacement to y − f⁰
            source = _Shifted(source, self.network0_)
            holdout = _Shifted(holdout, self.network0_) if holdout is not None else None
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
        W, b, a = self._units()
        if not self._structured():
            acc = accumulate_gram(
                self._features, self.n_features(W.shape[1]), train, n, 0, self.alpha_,
                self.beta_, rows, self._dtype, self._device,
            )  # fmt: skip
            check_finite_moments(acc.gram, acc.cross, self._dtype)
            return acc.moments()
        scale = self._structured_scale()
        acc = TangentGram(W, b, a) if scale is None else TangentGram(W, b, a, scale=scale)
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
        """F·θ without F for many ReLU neurons (``TangentPredictor``), else None (form F)."""
        if not self._structured():
            return None
        W, b, a = self._units()
        scale = self._structured_scale()
        if scale is None:
            return TangentPredictor(W, b, a, coefficients)
        return TangentPredictor(W, b, a, coefficients, scale=scale)

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
        """θ − θ⁰ of all m(d + 2) parameters: partners split √2·θ_½ evenly (minimum norm);
        without pairs θ itself (the features are c·∂f/∂θ over c)."""
        if not self._is_paired():
            m, coef = self.width, self.coef_
            self.delta_a_ = coef[:m]
            self.delta_W_ = coef[m : m * (d + 1)].reshape(m, d)
            self.delta_b_ = coef[m * (d + 1) :] if self.bias != "none" else coef.new_zeros(m)
            return
        half = self.width // 2
        coef = self.coef_ / math.sqrt(2.0)
        da, dW, db = (
            coef[:half],
            coef[half : half * (d + 1)].reshape(half, d),
            coef[half * (d + 1) :],
        )
        if self.bias == "none":
            db = coef.new_zeros(half)
        self.delta_a_ = torch.cat([da, da])
        self.delta_W_ = torch.cat([dW, -dW])
        self.delta_b_ = torch.cat([db, -db])

    def _predict_rows(self) -> int:
        predictor = self._tangent_predictor(self.coef_)
        return self._rows(self.coef_.shape[0]) if predictor is None else predictor.chunk_rows()

    def _predict_chunk(self, X: torch.Tensor) -> torch.Tensor:
        """α + β·x + f(x; θ⁰) + ⟨∇_θ f(x; θ⁰), θ − θ⁰⟩ (f(·; θ⁰) ≡ 0 for the pairs)."""
        predictor = self._tangent_predictor(self.coef_)
        if predictor is None:
            out = self._linear(X) + self._features(X) @ self.coef_
        else:
            out = self._linear(X) + predictor(X)[:, 0].to(X.dtype)
        return out if self._is_paired() else out + self.network0_(X)
