"""``BaseLearner``: what every replearn learner shares, on scikit-learn's ``BaseEstimator``.

- **Parameters** are the ``__init__`` arguments (scikit-learn's ``get_params``/``set_params``,
  ``clone``, ``GridSearchCV``); ``__init__`` only stores them.
- **One validation path**: ``_parameter_checks`` maps every parameter to a check of
  ``replearn.validation``; ``fit`` runs them all first (one-line ``ValueError`` naming the
  parameter), then the class's cross-parameter rules (``_check_combination``). The experiment
  specs' pydantic models use the same mapping (``experiments.methods``).
- **Arrays in, the same kind out**: torch tensors are used as they are and ``predict`` returns
  a tensor on the input's device; anything else (numpy, pandas, lists) goes through
  scikit-learn's ``validate_data`` and ``predict`` returns numpy. ``n_features_in_`` is set by
  every fit; predicting with another number of columns is one ``ValueError``.
- **One holdout policy**: ``X_holdout`` and ``y_holdout`` both or neither.
- **One α/β step** (``_linear_part``): α = mean y, β = mean y·x, subtracted from the labels
  before anything else is fitted (``preprocess=True``, Algorithm 1's step 1) or α = β = 0.
- **One chunked predict**: ``predict`` = chunks of ``_predict_rows()`` rows through the
  class's ``_predict_chunk``, under ``torch.no_grad``.
- **One fitted check**: ``NotFittedError`` (a ``ValueError``) before the first fit.
- **Inputs checked in the model's dtype**: X and y must be finite *as the model computes*
  (x = 1e300 is a float64 but overflows float32), real (no complex, no strings), with
  n ≥ 1 rows and d ≥ 1 columns; every refusal is one line (``ValueError``/``TypeError``).
- **Memory checked before the work**: ``_fit_memory_bytes(n, d)`` (overridden where the
  default estimate does not fit the learner) is compared with the device's memory
  (``limits.check_memory``) before anything is allocated; a stream's n is bounded by the
  ``n`` limit.

Fitted state every learner sets: ``n_features_in_``, ``n_samples_``, ``alpha_``, ``beta_``
(and ``feature_names_in_`` for a DataFrame). Learned weights follow one scheme: ``W_``,
``b_``, ``a_`` are a two-layer network's first-layer weights, biases and second-layer
weights; ``coef_`` are primal coefficients on an explicit feature map (NTKRegression);
``dual_coef_`` weigh kernel evaluations k(·, ``X_fit_``) (KernelRidge); a λ chosen on a path
is ``ridge_lambda_`` with ``lambda_path_``, ``lambda_criterion_``, ``lambda_criterion_name_``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import validate_data

from replearn import limits, progress
from replearn.data import DataStream
from replearn.learners.sources import ArraySource, linear_moments
from replearn.validation import (
    check_arrays,
    check_count,
    check_device_available,
    check_finite_in,
    is_int,
    named,
    real_tensor,
)

__all__ = ["BaseLearner"]

_NUMPY_DTYPES = (np.float64, np.float32)
# |x| up to this is an ordinary input (x ~ N(0, I) has |x_i| < 10); overflow beyond it is the model's
MODERATE_INPUT = 1e6


def _tensor(array: np.ndarray) -> torch.Tensor:
    """A C-ordered copy as a tensor: the same rows as a tensor input gives the same numbers
    (a DataFrame's values are often column-major, which changes a GEMM's order of sums)."""
    return torch.tensor(np.ascontiguousarray(array))


def _refuse_none_or_complex(value, name: str) -> None:
    """None, or complex numbers, as one line (scikit-learn's messages span lines)."""
    if value is None:
        raise TypeError(f"{name} must be an array of numbers of shape (n, d), got None")
    kinds = [getattr(getattr(value, "dtype", None), "kind", "")]
    column_dtypes = getattr(value, "dtypes", None)  # a DataFrame's, one per column
    if column_dtypes is not None and not hasattr(column_dtypes, "kind"):
        kinds += [getattr(dtype, "kind", "") for dtype in column_dtypes]
    if "c" in kinds:  # (lists of complex numbers: scikit-learn's message, cut to one line)
        raise ValueError(f"Complex data not supported: {name} has complex entries")


def _one_line(function, *args, **kwargs):
    """``function(*args, **kwargs)`` with a ValueError/TypeError message cut to one line:
    scikit-learn quotes the array on lines of its own ("array=[…]"), which are dropped."""
    try:
        return function(*args, **kwargs)
    except (ValueError, TypeError) as error:
        lines = [line.strip() for line in str(error).splitlines()]
        kept = [line for line in lines if line and not line.startswith(("array=", "["))]
        if len(lines) <= 1:
            raise
        raise type(error)(" ".join(kept)) from None


class BaseLearner(RegressorMixin, BaseEstimator):
    """Base of replearn's regressors (RegressorMixin first: scikit-learn's required order).

    Subclasses set ``_parameter_checks`` (every ``__init__`` parameter → a check from
    ``replearn.validation``), implement ``_fit(source, n, holdout, n_holdout)`` — the
    algorithm on samples 0…n−1 of a validated source (arrays or a ``DataStream``) — and
    ``_predict_chunk(X)`` on a tensor chunk already in the model's dtype and device. ``fit``,
    ``fit_stream``, ``predict`` and ``score`` are written here once.

    Examples
    --------
    The best linear predictor x ↦ α + β·x (Algorithm 1's step 1) as a learner:

    >>> import replearn as rl
    >>> from replearn.validation import dtype_name, device_name, integer_at_least, boolean
    >>> class LinearPart(BaseLearner):
    ...     _parameter_checks = {"preprocess": boolean, "dtype": dtype_name,
    ...                          "device": device_name, "chunk_size": integer_at_least(1)}
    ...     def __init__(self, preprocess=True, dtype="float64", device="cpu", chunk_size=4096):
    ...         self.preprocess, self.dtype = preprocess, dtype
    ...         self.device, self.chunk_size = device, chunk_size
    ...     def _fit(self, source, n, holdout, n_holdout):
    ...         self.alpha_, self.beta_ = self._linear_part(source, n)
    ...         self.n_samples_ = n
    ...         return self
    ...     def _predict_chunk(self, X):
    ...         return self._linear(X)
    >>> target = rl.MultiIndexTarget.from_expression("z1 + He2(z1)/sqrt(2)", d=5, seed=0)
    >>> X, y = rl.sample(target, n=20_000, noise=0.5, seed=0)
    >>> round(float(rl.excess_risk(LinearPart().fit(X, y), target, n_test=20_000)), 1)
    0.5
    """

    _parameter_checks: ClassVar[dict[str, Callable[[Any], Any]]] = {}
    # parameters an experiment spec may not set: they take Python objects (a target, a
    # callable, an array) that YAML cannot express. Every other parameter except the run's
    # seed, dtype and device is a field of the learner's method (``experiments.methods``).
    _not_in_specs: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            params = set(cls._get_param_names())
            if params != set(cls._parameter_checks):
                raise TypeError(
                    f"{cls.__name__}._parameter_checks must cover exactly its parameters: "
                    f"{sorted(params ^ set(cls._parameter_checks))} differ"
                )
            if not set(cls._not_in_specs) <= params:
                raise TypeError(
                    f"{cls.__name__}._not_in_specs names no parameter: "
                    f"{sorted(set(cls._not_in_specs) - params)}"
                )

    # -- parameters ---------------------------------------------------------------------------
    @classmethod
    def parameter_check(cls, name: str) -> Callable[[Any], Any]:
        """The check of parameter ``name`` (a ``replearn.validation`` callable): what ``fit``
        runs, and what the experiment specs' pydantic models run."""
        if name not in cls._parameter_checks:
            raise ValueError(
                f"{cls.__name__} has no parameter {name!r}; it has {', '.join(cls._parameter_checks)}"
            )
        return cls._parameter_checks[name]

    def check_params(self) -> dict[str, Any]:
        """Every parameter through its check, then the cross-parameter rules — what ``fit``
        runs first; a one-line ``ValueError`` naming the parameter.

        Returns
        -------
        dict
            The checked values by name.

        Examples
        --------
        >>> import replearn as rl
        >>> rl.RandomFeatures(width=3).check_params()
        Traceback (most recent call last):
        ...
        ValueError: width must be an even integer ≥ 2, got 3
        """
        return self._check_params()

    def _check_params(self) -> dict[str, Any]:
        """Every parameter through its check (one-line ValueError); sets ``_dtype``, ``_device``."""
        values = {
            name: named(name, check, getattr(self, name))
            for name, check in self._parameter_checks.items()
        }
        self._dtype = values.get("dtype", torch.float32)
        self._device = values.get("device", torch.device("cpu"))
        check_device_available(self._device)
        self._check_combination(values)
        return values

    def _check_combination(self, values: dict[str, Any]) -> None:
        """Rules that involve several parameters (none by default)."""

    # -- data in ---------------------------------------------------------------------------
    def _training_data(self, X, y, reset: bool = True) -> ArraySource:
        """(X, y) as an ArraySource of tensors, checked in the model's dtype; ``reset`` sets
        ``n_features_in_`` and checks the fit's memory."""
        if isinstance(X, torch.Tensor) or isinstance(y, torch.Tensor):
            X, y = check_arrays(X, y, d=None if reset else self.n_features_in_, dtype=self._dtype)
            if reset:
                self._reset_features(X.shape[1])
        else:
            _refuse_none_or_complex(X, "X")
            if y is not None:
                _refuse_none_or_complex(y, "y")
            X, y = _one_line(
                validate_data, self, X, y, reset=reset, dtype=_NUMPY_DTYPES, y_numeric=True
            )
            if y.dtype.kind not in "fiub":
                raise ValueError(f"y must be numeric, got an array of dtype {y.dtype}")
            X, y = _tensor(X), _tensor(y)
            check_finite_in(self._dtype, "X", X)
            check_finite_in(self._dtype, "y", y)
        if reset:
            self._check_fit_memory(X.shape[0], X.shape[1])
        return ArraySource(X, y)

    def _holdout_data(self, X_holdout, y_holdout) -> tuple[ArraySource | None, int]:
        """The one holdout policy: both arrays or neither."""
        if (X_holdout is None) != (y_holdout is None):
            raise ValueError("give both X_holdout and y_holdout, or neither")
        if X_holdout is None:
            return None, 0
        holdout = self._training_data(X_holdout, y_holdout, reset=False)
        return holdout, len(holdout)

    def _stream_args(self, stream, n, n_holdout, cache_bytes=None) -> tuple[DataStream, int, int]:
        """(stream, n, n_holdout) of a stream fit: n bounded by the ``n`` limit, the memory
        checked, and the stream given the call's own sample budget if ``cache_bytes`` is set
        (a copy with its own kept blocks, freed with it; the caller's stream is unchanged)."""
        if not isinstance(stream, DataStream):
            raise ValueError(f"stream must be a DataStream, got {type(stream).__name__}")
        n, n_holdout = check_count("n", n), check_count("n_holdout", n_holdout, minimum=0)
        if cache_bytes is not None:
            cache_bytes = check_count("cache_bytes", cache_bytes, minimum=0)
        limits.check("n", n, "n (samples of the stream)")
        limits.check("n", n_holdout, "n_holdout (samples of the stream's holdout split)")
        self._check_fit_memory(n, stream.d, n_holdout)
        if cache_bytes is not None and cache_bytes != stream.cache_bytes:
            stream = stream.with_(cache_bytes=cache_bytes)
        return stream, n, n_holdout

    # -- memory ----------------------------------------------------------------------------
    def _fit_memory_bytes(self, n: int, d: int, n_holdout: int = 0) -> tuple[int, str] | None:
        """(bytes, what they hold) of the fit's dominant allocations, or None (no estimate).

        The only estimate of a learner's memory: ``fit``, ``fit_stream`` and the engine's
        pre-run check (:meth:`check_fit_memory`) all ask it. Default, for a ridge head on
        p frozen features (OneStepNetwork, RandomFeatures, GiantStepNetwork): p = ``width``;
        ``limits.ridge_head_bytes`` (five p × p float64 matrices and a chunk of features).
        Learners whose allocations differ override it (NTKRegression, KernelRidge,
        FullTraining); tests/test_memory_estimates.py compares every estimate with the
        measured peak.
        """
        width = getattr(self, "width", None)
        if not is_int(width):
            return None
        name = f"{type(self).__name__} with width {width} at d = {d}, n = {n:,}"
        rows = min(getattr(self, "chunk_size", n), max(n, n_holdout))
        return (
            limits.ridge_head_bytes(width, d, rows, self._dtype),
            f"{name} (the {width:,}×{width:,} float64 Gram matrix and chunks of "
            f"{rows:,}×{width:,} features)",
        )

    def _check_fit_memory(self, n: int, d: int, n_holdout: int = 0) -> tuple[int, str] | None:
        """Refuse, in one line with the number, a fit whose memory exceeds the device's."""
        estimate = self._fit_memory_bytes(n, d, n_holdout)
        if estimate is not None:
            limits.check_memory(estimate[0], estimate[1], str(self._device))
        return estimate

    def check_fit_memory(self, n: int, d: int, n_holdout: int = 0) -> tuple[int, str] | None:
        """Refuse a fit on n samples of dimension d before any work if its memory exceeds the
        device's: the parameters checked, then the learner's own estimate compared with the
        memory of its device (``limits.check_memory``; a one-line ``LimitError``).

        What ``fit`` and ``fit_stream`` check first; the experiment engine calls it before a
        run so that an impossible cell fails at once.

        Parameters
        ----------
        n : int
            Training samples.
        d : int
            Input dimension.
        n_holdout : int
            Holdout samples.

        Returns
        -------
        tuple of (int, str) or None
            The estimate (bytes, what they hold), or None where the learner has none.

        Examples
        --------
        >>> import replearn as rl
        >>> from replearn import limits
        >>> bytes_needed, what = rl.RandomFeatures(width=1000).check_fit_memory(10**6, 10)
        >>> bytes_needed > 5 * 1000**2 * 8
        True
        >>> with limits.raised(memory_bytes=10**6):
        ...     rl.RandomFeatures(width=1000).check_fit_memory(10**6, 10)
        Traceback (most recent call last):
        ...
        replearn.limits.LimitError: RandomFeatures with width 1000 at d = 10, n = 1,000,000 ...
        """
        estimate = self.fit_memory_bytes(n, d, n_holdout)
        if estimate is not None:
            limits.check_memory(estimate[0], estimate[1], str(self._device))
        return estimate

    def fit_memory_bytes(self, n: int, d: int, n_holdout: int = 0) -> tuple[int, str] | None:
        """The learner's own estimate of a fit's peak memory, not compared with anything:
        (bytes, what they hold), or None where the learner has none. The parameters are
        checked first (one-line ``ValueError``).

        Parameters
        ----------
        n, d, n_holdout : int
            Training samples, input dimension, holdout samples.

        Returns
        -------
        tuple of (int, str) or None

        Examples
        --------
        >>> import replearn as rl
        >>> rl.KernelRidge(solver="exact").fit_memory_bytes(1000, 10)[0]  # 4 n² + n·d floats
        32080000
        """
        self._check_params()
        n = check_count("n", n)
        d = check_count("d", d)
        n_holdout = check_count("n_holdout", n_holdout, minimum=0)
        return self._fit_memory_bytes(n, d, n_holdout)

    def _reset_features(self, d: int) -> None:
        """A fit on tensors or a stream: d columns, no feature names."""
        self.n_features_in_ = d
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    def _linear_part(self, source, n: int, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Algorithm 1's step 1 on samples start…start+n−1: (α, β) = (mean y, mean y·x),
        or (0, 0) when ``preprocess`` is False."""
        if not self.preprocess:
            zero = torch.zeros((), dtype=self._dtype, device=self._device)
            return zero, torch.zeros(source.d, dtype=self._dtype, device=self._device)
        return linear_moments(source, n, start, self.chunk_size, self._dtype, self._device)

    def _linear(self, X: torch.Tensor) -> torch.Tensor:
        """α + β·x for a chunk in the model's dtype."""
        return self.alpha_ + X @ self.beta_

    def _store_lambda(self, head) -> None:
        """``ridge_lambda_`` and, when λ was chosen on a path, the path and its criterion."""
        self.ridge_lambda_ = float(head.ridge_lambda)
        self.lambda_path_ = head.lambda_path
        self.lambda_criterion_ = head.lambda_criterion
        self.lambda_criterion_name_ = head.criterion_name

    # -- fitting -------------------------------------------------------------------------------
    def fit(self, X, y, X_holdout=None, y_holdout=None):
        """Fit on in-memory data; λ chosen on (X_holdout, y_holdout) when given, else by GCV.

        Parameters
        ----------
        X : tensor or array_like, shape (n, d)
            Inputs; a tensor is used as it is, anything else goes through scikit-learn's
            ``validate_data`` (then ``predict`` returns numpy).
        y : tensor or array_like, shape (n,)
            Labels.
        X_holdout, y_holdout : tensor or array_like, optional
            Both or neither: with ``ridge_lambda="auto"`` λ is chosen on them (else by GCV).

        Returns
        -------
        estimator
            self, fitted.
        """
        self._check_params()
        source = self._training_data(X, y)
        holdout, n_holdout = self._holdout_data(X_holdout, y_holdout)
        with progress.stage(type(self).__name__):  # names the progress bars of long passes
            return self._fit(
                source, self._samples_per_pass(len(source), source.d), holdout, n_holdout
            )

    def fit_stream(self, stream, n: int, n_holdout: int = 100_000, *, cache_bytes=None):
        """Fit on samples 0…n−1 of a stream; λ on n_holdout samples of its 'holdout' split.

        Parameters
        ----------
        stream : DataStream
            Samples 0…n−1 of it (kept within the stream's memory budget, else regenerated;
            never more than a chunk of them built at once).
        n : int
            Number of samples, ≥ 1.
        n_holdout : int
            Samples of ``stream.split("holdout")``, ≥ 0: with ``ridge_lambda="auto"`` λ is
            chosen on them (0: by GCV).
        cache_bytes : int, optional
            This fit's budget for drawn samples kept between passes (0: draw every pass
            again); None: the stream's own (``replearn.data.set_cache_bytes``). Results are
            the same whatever the budget.

        Returns
        -------
        estimator
            self, fitted.
        """
        self._check_params()
        stream, n, n_holdout = self._stream_args(stream, n, n_holdout, cache_bytes)
        self._reset_features(stream.d)
        with progress.stage(type(self).__name__):  # names the progress bars of long passes
            return self._fit(stream, n, stream.split("holdout"), n_holdout)

    def _samples_per_pass(self, n_rows: int, d: int) -> int:
        """How many of ``fit``'s n_rows rows (of d columns) one pass of ``_fit`` uses (all of
        them here)."""
        return n_rows

    def _fit(self, source, n: int, holdout, n_holdout: int):
        """The learner's algorithm on samples 0…n−1 of ``source`` (validated already)."""
        raise NotImplementedError

    # -- fitted ----------------------------------------------------------------------------------
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "n_samples_")

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet: call fit or fit_stream first"
            )

    # -- predictions -----------------------------------------------------------------------------
    def _predict_rows(self) -> int:
        return self.chunk_size

    def _predict_chunk(self, X: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def predict(self, X):
        """Predictions for the rows of X: a tensor (model's dtype, X's device) for a tensor X,
        else a numpy array (model's dtype).

        Parameters
        ----------
        X : tensor or array_like, shape (n, d)
            Rows to predict, with the d columns the model was fitted on.

        Returns
        -------
        torch.Tensor or numpy.ndarray
            Shape (n,).
        """
        self._check_fitted()
        if isinstance(X, torch.Tensor):
            X = real_tensor(X, "X")
            if X.ndim != 2 or X.shape[1] != self.n_features_in_:
                shape = tuple(X.shape)
                raise ValueError(
                    f"X has shape {shape}, but {type(self).__name__} is expecting "
                    f"{self.n_features_in_} features as input: shape (n, {self.n_features_in_})"
                )
            out_device = X.device
        else:
            _refuse_none_or_complex(X, "X")
            X = _tensor(_one_line(validate_data, self, X, reset=False, dtype=_NUMPY_DTYPES))
            out_device = None
        check_finite_in(self._dtype, "X", X)
        X = X.to(device=self._device, dtype=self._dtype)
        with torch.no_grad():
            pieces = [self._predict_chunk(chunk) for chunk in X.split(self._predict_rows())]
        out = torch.cat(pieces) if pieces else X.new_zeros(0)
        if not bool(torch.isfinite(out).all()):
            short = str(self._dtype).removeprefix("torch.")
            wider = "" if self._dtype == torch.float64 else " or use dtype='float64'"
            x_max = float(X.abs().amax()) if X.numel() else 0.0
            if x_max <= MODERATE_INPUT:  # not the inputs: the fitted model is too large
                raise ValueError(
                    f"the predictions overflow {short} although |X| ≤ {x_max:.3g}: the fitted "
                    "model is too large — its fit was ill-conditioned (a step size far above "
                    "its scale, labels far from unit scale, or a kernel/λ that is not "
                    f"positive definite); refit with saner settings{wider}"
                )
            raise ValueError(
                f"the predictions overflow {short} (|X| up to {x_max:.3g}): rescale X{wider}"
            )
        return out.to(out_device) if out_device is not None else out.cpu().numpy()

    def score(self, X, y, sample_weight=None) -> float:
        """R² = 1 − Σw(y − ŷ)²/Σw(y − ȳ)² (scikit-learn's, also for tensors on any device).

        Parameters
        ----------
        X : tensor or array_like, shape (n, d)
            Inputs.
        y : tensor or array_like, shape (n,)
            True labels.
        sample_weight : tensor or array_like, shape (n,), optional
            Weights w (default 1).

        Returns
        -------
        float
            R².
        """
        if not (isinstance(X, torch.Tensor) or isinstance(y, torch.Tensor)):
            return super().score(X, y, sample_weight=sample_weight)
        prediction = self.predict(torch.as_tensor(X)).to(torch.float64)
        y = torch.as_tensor(y).to(device=prediction.device, dtype=torch.float64).reshape(-1)
        weight = (
            torch.ones_like(y)
            if sample_weight is None
            else torch.as_tensor(sample_weight).to(device=y.device, dtype=torch.float64)
        )
        mean = (weight * y).sum() / weight.sum()
        residual = float((weight * (y - prediction) ** 2).sum())
        total = float((weight * (y - mean) ** 2).sum())
        if total == 0.0:  # scikit-learn's force_finite rule
            return 1.0 if residual == 0.0 else 0.0
        return 1.0 - residual / total


class TransferMixin:
    """``transfer``/``transfer_stream`` for learners with a frozen feature map and a refitted
    head (the paper's Theorem 3): the learner implements ``_transferred(source, n, holdout,
    n_holdout)``, which returns a new estimator."""

    def transfer(self, X, y, X_holdout=None, y_holdout=None):
        """A copy with W, b kept and α, β, a refitted on a new task (the paper's Theorem 3).

        Parameters
        ----------
        X : tensor or array_like, shape (n, d)
            Inputs; a tensor is used as it is, anything else goes through scikit-learn's
            ``validate_data`` (then ``predict`` returns numpy).
        y : tensor or array_like, shape (n,)
            Labels.
        X_holdout, y_holdout : tensor or array_like, optional
            Both or neither: λ of the new head is chosen on them.

        Returns
        -------
        estimator
            A new estimator of the same class; self is unchanged.
        """
        self._check_fitted()
        source = self._training_data(X, y, reset=False)
        holdout, n_holdout = self._holdout_data(X_holdout, y_holdout)
        return self._transferred(source, len(source), holdout, n_holdout)

    def transfer_stream(self, stream, n: int, n_holdout: int = 100_000, *, cache_bytes=None):
        """``transfer`` on samples 0…n−1 of a stream (holdout from its 'holdout' split).

        Parameters
        ----------
        stream : DataStream
            Samples 0…n−1 of it (kept within the memory budget, else regenerated).
        n : int
            Number of samples, ≥ 1.
        n_holdout : int
            Samples of ``stream.split("holdout")``, ≥ 0: λ of the new head is chosen on them.
        cache_bytes : int, optional
            As in ``fit_stream``.

        Returns
        -------
        estimator
            A new estimator of the same class; self is unchanged.
        """
        self._check_fitted()
        stream, n, n_holdout = self._stream_args(stream, n, n_holdout, cache_bytes)
        return self._transferred(stream, n, stream.split("holdout"), n_holdout)
