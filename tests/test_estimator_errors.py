"""Hostile and careless input to every learner (issue 15): one line of ValueError/TypeError
for every bad argument, inputs checked in the dtype the model computes in, the memory of a fit
checked before the work, and no λ chosen without a holdout that makes float32 predictions
meaningless. Each case names what the code before this change did instead."""

import math

import numpy as np
import pytest
import torch
from sklearn.base import clone

import replearn as rl
from replearn import limits
from replearn.kernels import ntk_kernel
from replearn.learners.full_training import FullTraining
from replearn.learners.kernel_ridge import KernelRidge
from replearn.learners.ntk import NTKRegression
from replearn.learners.one_step import OneStepNetwork
from replearn.learners.online_sgd import OnlineSGD
from replearn.learners.random_features import RandomFeatures

LEARNERS = {
    "one_step": OneStepNetwork(width=8),
    "random_features": RandomFeatures(width=8),
    "ntk": NTKRegression(width=4),
    "kernel_ridge": KernelRidge(),
    "full_training": FullTraining(width=8, epochs=2, patience=None),
    "online_sgd": OnlineSGD(width=4, head="ridge"),
}
TRANSFER = ["one_step", "random_features", "online_sgd"]


def _data(n: int = 60, d: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, X[:, 0] + 0.1 * rng.standard_normal(n)


def _model(name, **params):
    return clone(LEARNERS[name]).set_params(**params)


def _one_line(error) -> str:
    message = str(error.value)
    assert "\n" not in message and 0 < len(message) <= 400, message
    return message


# -- finiteness in the model's dtype -----------------------------------------------------------
# Before: X·1e300 (finite in float64, ∞ in float32) gave torch's LinAlgError from eigh (ridge
# heads) or NaN predictions (kernel ridge, full training); predict/score gave NaN.
@pytest.mark.parametrize("name", list(LEARNERS))
@pytest.mark.parametrize("kind", ["numpy", "tensor"])
@pytest.mark.parametrize("where", ["X", "y"])
def test_fit_refuses_values_that_overflow_float32(name, kind, where):
    X, y = _data()
    X, y = (X * 1e300, y) if where == "X" else (X, y * 1e300)
    if kind == "tensor":
        X, y = torch.as_tensor(X), torch.as_tensor(y)
    with pytest.raises(
        ValueError, match=rf"^{where} has values up to .* beyond the largest float32"
    ) as error:
        _model(name).fit(X, y)
    assert "dtype='float64'" in _one_line(error)


@pytest.mark.parametrize("name", list(LEARNERS))
@pytest.mark.parametrize("kind", ["numpy", "tensor"])
def test_predict_and_score_refuse_values_that_overflow_float32(name, kind):
    X, y = _data()
    model = _model(name).fit(X, y)
    big = X * 1e300 if kind == "numpy" else torch.as_tensor(X) * 1e300
    target = y if kind == "numpy" else torch.as_tensor(y)
    for call in (lambda: model.predict(big), lambda: model.score(big, target)):
        with pytest.raises(ValueError, match="beyond the largest float32") as error:
            call()
        _one_line(error)


@pytest.mark.parametrize("name", TRANSFER)
def test_transfer_refuses_values_that_overflow_float32(name):
    X, y = _data()
    model = _model(name).fit(X, y)
    with pytest.raises(ValueError, match="beyond the largest float32"):
        model.transfer(X * 1e300, y)


def test_float64_models_accept_what_float32_refuses():
    # 1e100 is a float64 (and its squares, 1e200, too) but beyond float32's 3.4e38: the check
    # follows the model's dtype, not a fixed float32 bound
    X, y = _data()
    fitted = RandomFeatures(width=8, dtype="float64").fit(X * 1e100, y)
    assert np.isfinite(fitted.predict(X * 1e100)).all()
    with pytest.raises(ValueError, match="beyond the largest float32"):
        RandomFeatures(width=8, dtype="float32").fit(X * 1e100, y)


@pytest.mark.parametrize("name", ["one_step", "random_features", "ntk"])
def test_overflow_inside_the_gram_matrix_names_the_cause(name):
    # |x| = 1e30 is a float32, but ReLU features ≈ 1e30 have squares 1e60 > 3.4e38: the
    # Gram matrix overflows. Before: LinAlgError from eigh (and for the NTK, at times,
    # "ridge_lambda = 0 with a singular Gram matrix" although λ was 'auto').
    X, y = _data()
    with pytest.raises(ValueError, match="FᵀF overflowed float32") as error:
        _model(name).fit(torch.as_tensor(X) * 1e30, torch.as_tensor(y))
    assert "ridge_lambda = 0" not in _one_line(error)
    if name != "ntk":  # the ridge head probes its first samples: X is the cause
        assert "the cause is the inputs: |X| up to" in _one_line(error)


def test_predictions_that_overflow_are_an_error_not_nan():
    # KernelRidge fits in float64 (finite), but the float32 kernel blocks of predict overflow
    # (x·x' ≈ 1e60); before: NaN/inf predictions returned silently
    X, y = _data()
    model = KernelRidge(ridge_lambda=1e-2).fit(X, y)
    with pytest.raises(ValueError, match="predictions overflow float32"):
        model.predict(torch.as_tensor(X) * 1e30)


# -- one line for every bad argument -------------------------------------------------------------
def _bad_fits():
    X, y = _data()
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    return {  # case: (call on a fresh model, exception type, message pattern)  — before:
        "complex X tensor": (  # accepted, imaginary part silently dropped
            lambda m: m.fit(Xt.to(torch.complex128), yt),
            ValueError,
            "Complex data not supported",
        ),
        "complex y tensor": (  # accepted
            lambda m: m.fit(Xt, yt.to(torch.complex128)),
            ValueError,
            "Complex data not supported",
        ),
        "complex X numpy": (  # scikit-learn's message, with the whole array on more lines
            lambda m: m.fit(X.astype(complex), y),
            ValueError,
            "Complex data not supported",
        ),
        "X None": (  # "Expected 2D array, got scalar array instead:\narray=nan.\n…"
            lambda m: m.fit(None, y),
            TypeError,
            "X must be an array of numbers",
        ),
        "0 columns tensor": (  # accepted (KernelRidge: ZeroDivisionError)
            lambda m: m.fit(torch.zeros(60, 0), yt),
            ValueError,
            "at least one column",
        ),
        "y strings": (  # TypeError from torch: "can't convert np.ndarray of type numpy.str_"
            lambda m: m.fit(X, np.array(["a"] * 60)),
            ValueError,
            "y must be numeric",
        ),
        "device gpu": (  # "must be a torch device such as 'cpu' or 'cuda'": no list of names
            lambda m: m.set_params(device="gpu").fit(X, y),
            ValueError,
            r"'cuda:<index>' or 'mps'",
        ),
        "device meta": (  # RuntimeError: Tensor.item() cannot be called on meta tensors
            lambda m: m.set_params(device="meta").fit(X, y),
            ValueError,
            "device must be 'cpu'",
        ),
        "seed 2^64": (  # ValueError "Overflow when unpacking long long" (KernelRidge: accepted)
            lambda m: m.set_params(seed=2**64).fit(X, y),
            ValueError,
            r"seed must be an integer in \[0, 2\^63",
        ),
    }


@pytest.mark.parametrize("name", list(LEARNERS))
@pytest.mark.parametrize("case", list(_bad_fits()))
def test_bad_fit_arguments_are_one_line(name, case):
    call, kind, pattern = _bad_fits()[case]
    with pytest.raises(kind, match=pattern) as error:
        call(_model(name))
    assert type(error.value) in (ValueError, TypeError)  # not a subclass from deep inside
    _one_line(error)


@pytest.mark.parametrize("name", list(LEARNERS))
def test_predict_none_and_complex_are_one_line(name):
    X, y = _data()
    model = _model(name).fit(X, y)
    # before: a three-line ValueError for None, and complex tensors predicted silently
    with pytest.raises(TypeError, match="X must be an array of numbers") as error:
        model.predict(None)
    _one_line(error)
    with pytest.raises(ValueError, match="Complex data not supported"):
        model.predict(torch.as_tensor(X).to(torch.complex128))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("name", list(LEARNERS))
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_cuda_is_one_line(name, device):
    X, y = _data()
    # before: AssertionError "Torch not compiled with CUDA enabled"
    with pytest.raises(ValueError, match="CUDA is not available on this machine") as error:
        _model(name, device=device).fit(X, y)
    _one_line(error)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_index_beyond_the_devices_is_one_line():
    X, y = _data()
    index = torch.cuda.device_count()
    with pytest.raises(ValueError, match=f"cuda:{index}' does not exist"):
        RandomFeatures(width=8, device=f"cuda:{index}").fit(X, y)


@pytest.mark.parametrize("name", list(LEARNERS))
def test_arguments_refused_before_stay_refused_in_one_line(name):
    """Regression guard (these were already one-line ValueErrors before this change)."""
    X, y = _data()
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    cases = [
        (lambda m: m.fit(X, y, X, None), "give both X_holdout and y_holdout"),
        (lambda m: m.fit(Xt, yt, Xt, None), "give both X_holdout and y_holdout"),
        (lambda m: m.fit(np.zeros((0, 3)), np.zeros(0)), "0 sample"),
        (lambda m: m.fit(torch.zeros(0, 3), torch.zeros(0)), "at least one row"),
        (lambda m: m.fit(np.zeros((60, 0)), y), "0 feature"),
        (lambda m: m.fit([["a", "b", "c"]] * 60, y), "could not convert string to float"),
        (lambda m: m.fit(X, np.stack([y, y], 1)), "y should be a 1d array"),
        (lambda m: m.fit(Xt, torch.stack([yt, yt], 1)), "y must be 1-D with 60 entries"),
        (lambda m: m.fit(np.array([[1.0, "a", None]] * 60, dtype=object), y), "could not convert"),
    ]
    for call, pattern in cases:
        with pytest.raises(ValueError, match=pattern) as error:
            call(_model(name))
        _one_line(error)


@pytest.mark.parametrize("name", list(LEARNERS))
def test_integer_inputs_give_the_same_model_as_floats(name):
    """Integers are numbers: int arrays and tensors are fitted as their float64 values."""
    X, y = _data()
    Xi = np.round(X * 10).astype(np.int64)
    reference = _model(name).fit(Xi.astype(np.float64), y).predict(Xi.astype(np.float64))
    np.testing.assert_array_equal(_model(name).fit(Xi, y).predict(Xi), reference)
    from_tensor = _model(name).fit(torch.as_tensor(Xi), torch.as_tensor(y))
    np.testing.assert_array_equal(from_tensor.predict(torch.as_tensor(Xi)).numpy(), reference)


# -- memory and sizes checked before the work -------------------------------------------------
# Sizes that fit this machine easily, refused under a 1 MB memory limit: the check runs before
# any allocation and names the bytes (before: no check, the fit simply ran — and at width 10⁵
# or 10⁹ allocated 80 GB or more).
MEMORY_CASES = {
    "one_step": (OneStepNetwork(width=400), "400×400 float64 Gram matrix", 60),
    "random_features": (RandomFeatures(width=400), "400×400 float64 Gram matrix", 60),
    "ntk": (NTKRegression(width=100, form="primal"), "250×250 float64 Gram matrix", 60),
    "kernel_ridge": (KernelRidge(), "300×300 kernel matrix", 300),
    "full_training": (FullTraining(width=4000, epochs=1, patience=None), "Adam moments", 64),
}


@pytest.mark.parametrize("name", list(MEMORY_CASES))
def test_fit_memory_is_checked_before_the_work(name):
    model, what, n = MEMORY_CASES[name]
    X, y = _data(n)
    with limits.raised(memory_bytes=10**6):
        with pytest.raises(
            limits.LimitError, match=r"needs \d+\.\d [kMGT]?B, more than the 1\.0 MB"
        ) as error:
            clone(model).fit(X, y)
    message = _one_line(error)
    assert what in message and "memory_bytes" in message


def test_the_memory_estimate_is_the_number_in_the_message():
    # width 10⁵ at d = 3: five 10⁵×10⁵ float64 matrices (G, the holdout moments, eigh's
    # eigenvectors and 2p² workspace: 4.0e11 B) + a chunk of features (60×10⁵ float32) + its
    # input (60×3 float64) = 400.0 GB
    X, y = _data()
    expected = limits.ridge_head_bytes(10**5, 3, 60, "float32")
    assert limits.format_bytes(expected) == "400.0 GB"
    with limits.raised(memory_bytes=10**9):
        with pytest.raises(limits.LimitError, match="needs 400.0 GB"):
            OneStepNetwork(width=10**5).fit(X, y)


@pytest.mark.parametrize("name", list(LEARNERS))
def test_stream_sizes_are_bounded_by_the_n_limit(name):
    stream = rl.DataStream(rl.paper_target(d=4, seed=0), noise=0.1, seed=0)
    with limits.raised(n=1000):
        with pytest.raises(
            limits.LimitError, match="n .*: 5,000 exceeds the limit n = 1,000"
        ) as error:
            _model(name).fit_stream(stream, n=5000, n_holdout=100)
    _one_line(error)


# -- λ chosen without a holdout ---------------------------------------------------------------
def test_gcv_in_float32_picks_a_lambda_whose_predictions_mean_something():
    """KernelRidge(kernel='ntk') in float32 at d = 1 without a holdout.

    Before: GCV (computed in float64, where it is right) chose λ = 1.52e-10, μ = nλ/2 ≈ 7.6e-8,
    while the float32 kernel blocks of predict carry rounding ‖δK‖ ≈ ε₃₂·s_max ≈ 1.2e-7·700:
    the predictions reached 6.3e4 and the training MSE 1.4e8 (float64: 0.76). The λ-path is
    now restricted to μ ≥ ε·s_max/10⁻², where ‖δf‖ ≤ ‖δK‖·‖c‖ ≤ ε·s_max·‖r‖/μ ≤ 10⁻²·‖r‖, so
    the float32 predictions are within 1 % of ‖r‖ of the same coefficients' float64 ones.
    """
    target = rl.paper_target(d=1, seed=0)
    X, y = rl.sample(target, n=1000, noise=0.1, seed=0)
    X, y = X.double(), y.double()
    model = KernelRidge(kernel="ntk", dtype="float32").fit(X, y)
    predictions = model.predict(X).double()
    exact = (
        model.alpha_.double()
        + X @ model.beta_.double()
        + ntk_kernel(X, model.X_fit_.double()) @ model.dual_coef_
    )
    residual = y - model.alpha_.double() - X @ model.beta_.double()
    # float32 α, β and the final cast add ε₃₂·|f| ≈ 1e-7 each: far below the 1 % bound
    assert float((predictions - exact).norm()) <= 1e-2 * float(residual.norm())
    assert float(((predictions - y) ** 2).mean()) < float(y.var())  # before: 1.4e8
    # float64 is unchanged: its bound ε₆₄·s_max·100 lies below the path's bottom
    float64 = KernelRidge(kernel="ntk", dtype="float64").fit(X, y)
    assert float64.lambda_path_.shape[0] == 49
    assert math.isclose(float64.ridge_lambda_, float(float64.lambda_path_[0]), rel_tol=1e-12)


def test_falkon_memory_counts_the_centres():
    # n = 400: M = min(n, 16·⌈√n⌉) = 320 centres; four 320×320 float64 matrices alone are
    # 3.3 MB, over a 1 MB limit (before: no check, the fit ran)
    X, y = _data(400)
    expected = limits.falkon_bytes(400, 320, 3)
    assert expected >= 4 * 320**2 * 8
    with limits.raised(memory_bytes=10**6):
        with pytest.raises(limits.LimitError, match="320×320 matrices of the centres") as error:
            KernelRidge(solver="falkon", ridge_lambda=1e-3).fit(X, y)
    assert f"needs {limits.format_bytes(expected)}" in _one_line(error)


def test_a_kernel_that_overflows_float64_names_the_cause():
    # 1e200 is a float64, but x·x' ≈ 1e400 is not: before, eigh of an inf matrix gave NaN
    # predictions (or LinAlgError) without a word
    X, y = _data()
    for ridge_lambda in ("auto", 1e-3):
        model = KernelRidge(dtype="float64", ridge_lambda=ridge_lambda)
        with pytest.raises(ValueError, match="kernel matrix has non-finite entries") as error:
            model.fit(X * 1e200, y)
        _one_line(error)
