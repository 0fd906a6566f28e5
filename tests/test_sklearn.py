"""scikit-learn's own estimator checks over every learner, and the tools users reach for first:
clone, GridSearchCV, cross_val_score, Pipeline, pickling — on numpy data."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from replearn.learners.full_training import FullTraining
from replearn.learners.giant_step import GiantStepNetwork
from replearn.learners.kernel_ridge import KernelRidge
from replearn.learners.ntk import NTKRegression
from replearn.learners.one_step import OneStepNetwork
from replearn.learners.online_sgd import OnlineSGD
from replearn.learners.random_features import RandomFeatures

# small models so that the ~50 checks per learner stay fast; float64 so that predicting a
# subset or a permutation of the rows gives the same numbers to scikit-learn's rtol = 1e-7
LEARNERS = [
    OneStepNetwork(width=8, dtype="float64"),
    RandomFeatures(width=8, dtype="float64"),
    NTKRegression(width=4, dtype="float64"),
    KernelRidge(dtype="float64"),
    FullTraining(width=8, epochs=5, patience=None, dtype="float64"),
    # reuse: every step sees all rows (scikit-learn's checks fit on as little as one row)
    GiantStepNetwork(width=8, steps=2, step_size=[1.0, 1e-3], batch="reuse", dtype="float64"),
    # the field's models: odd width, a given (array) second layer, another σ and scale
    GiantStepNetwork(
        width=3,
        steps=2,
        step_size=0.5,
        weight_decay=0.0,
        batch="reuse",
        activation="tanh",
        output_scale="1/sqrt(m)",
        second_layer=np.array([1.0, -1.0, 0.5]),
        biases="none",
        dtype="float64",
    ),
    OneStepNetwork(
        width=5,
        activation="erf",
        output_scale="1/m",
        first_layer="unit_rows",
        second_layer="signs",
        biases="normal",
        weight_decay=0.0,
        eta1=1.0,
        dtype="float64",
    ),
    RandomFeatures(width=5, activation="tanh", second_layer="gaussian", dtype="float64"),
    # the ridge head (the trained network alone is no regressor of arbitrary y); a fixed λ > 0:
    # on inputs of mean 100 every ReLU feature can be dead, and the λ-path of a zero Gram
    # matrix is degenerate
    OnlineSGD(width=4, head="ridge", ridge_lambda=1e-3, dtype="float64"),
]


def expected_failures(estimator) -> dict[str, str]:
    """Checks that cannot pass for a reason of principle, per learner."""
    if isinstance(estimator, KernelRidge):
        return {
            "check_non_transformer_estimators_n_iter": (
                "max_iter bounds Falkon's conjugate gradient only; the exact solver (chosen "
                "for small n) iterates nothing, so n_iter_ exists only for solver='falkon'"
            )
        }
    return {}


@parametrize_with_checks(LEARNERS, expected_failed_checks=expected_failures)
def test_scikit_learn_checks(estimator, check):
    check(estimator)


# -- the scikit-learn tools on numpy data ---------------------------------------------------
def _linear_plus_relu(n: int, seed: int, d: int = 4):
    """y = 1 + x₁ + ReLU(x₂) + 0.1·noise: a mean, a linear part and a non-linear part."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = 1.0 + X[:, 0] + np.maximum(X[:, 1], 0.0) + 0.1 * rng.standard_normal(n)
    return X, y


FAST = {
    "one_step": OneStepNetwork(width=20, seed=0),
    "random_features": RandomFeatures(width=20, seed=0),
    "ntk": NTKRegression(width=4, seed=0),
    "kernel_ridge": KernelRidge(ridge_lambda=1e-3),
    "full_training": FullTraining(width=20, epochs=3, patience=None),
    "giant_step": GiantStepNetwork(width=20, steps=2, step_size=[1.0, 1e-3], seed=0),
}


@pytest.mark.parametrize("name", list(FAST))
def test_clone_gives_an_unfitted_copy_with_the_same_parameters(name):
    X, y = _linear_plus_relu(200, 0)
    model = FAST[name]
    fitted = clone(model).fit(X, y)
    copy = clone(fitted)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "n_samples_")
    with pytest.raises(NotFittedError):
        copy.predict(X)
    # same seed, same data → the same predictions (the clone is not a shallow alias)
    np.testing.assert_array_equal(copy.fit(X, y).predict(X), fitted.predict(X))


@pytest.mark.parametrize("name", list(FAST))
def test_pickle_round_trip_predicts_the_same(name):
    X, y = _linear_plus_relu(200, 1)
    model = clone(FAST[name]).fit(X, y)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))


def test_grid_search_chooses_among_widths_and_refits():
    X, y = _linear_plus_relu(300, 2)
    search = GridSearchCV(
        RandomFeatures(seed=0), {"width": [2, 40], "ridge_lambda": [1e-3]}, cv=3
    ).fit(X, y)
    # 40 random ReLU features fit ReLU(x₂) far better than 2 do (the linear part is exact
    # for both): the search must pick 40 and refit the best model on all the data
    assert search.best_params_["width"] == 40
    assert search.best_estimator_.n_samples_ == 300 and search.best_estimator_.width == 40


def test_cross_val_score_is_the_mean_of_per_fold_refits():
    X, y = _linear_plus_relu(240, 3)
    folds = KFold(3, shuffle=True, random_state=0)
    model = OneStepNetwork(width=20, seed=0, dtype="float64")
    scores = cross_val_score(model, X, y, cv=folds)
    by_hand = [
        clone(model).fit(X[train], y[train]).score(X[test], y[test])
        for train, test in folds.split(X)
    ]
    np.testing.assert_allclose(scores, by_hand, rtol=0, atol=0)
    assert scores.min() > 0.9  # a linear part plus ReLU(x₂): the model explains most of it


def test_pipeline_with_a_scaler_equals_fitting_on_scaled_data():
    X, y = _linear_plus_relu(200, 4)
    X = X * np.array([1.0, 10.0, 0.1, 3.0]) + 5.0
    pipe = make_pipeline(StandardScaler(), RandomFeatures(width=20, dtype="float64")).fit(X, y)
    scaled = StandardScaler().fit(X).transform(X)
    direct = RandomFeatures(width=20, dtype="float64").fit(scaled, y)
    np.testing.assert_array_equal(pipe.predict(X), direct.predict(scaled))
    assert pipe.score(X, y) == pytest.approx(direct.score(scaled, y), abs=1e-15)


# -- arrays in, the same kind out -----------------------------------------------------------
@pytest.mark.parametrize("name", list(FAST))
def test_numpy_in_numpy_out_torch_in_torch_out_same_numbers(name):
    X, y = _linear_plus_relu(150, 5)
    from_numpy = clone(FAST[name]).fit(X, y)
    from_torch = clone(FAST[name]).fit(torch.as_tensor(X), torch.as_tensor(y))
    out_numpy = from_numpy.predict(X)
    out_torch = from_torch.predict(torch.as_tensor(X))
    assert isinstance(out_numpy, np.ndarray) and isinstance(out_torch, torch.Tensor)
    np.testing.assert_array_equal(out_numpy, out_torch.numpy())
    assert from_numpy.n_features_in_ == from_torch.n_features_in_ == 4


def test_dataframes_and_lists_are_accepted_and_feature_names_checked():
    pandas = pytest.importorskip("pandas")
    X, y = _linear_plus_relu(120, 6)
    frame = pandas.DataFrame(X, columns=["a", "b", "c", "d"])
    model = RandomFeatures(width=10, dtype="float64").fit(frame, pandas.Series(y))
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b", "c", "d"])
    from_lists = RandomFeatures(width=10, dtype="float64").fit(X.tolist(), y.tolist())
    np.testing.assert_array_equal(model.predict(frame), from_lists.predict(X.tolist()))
    with pytest.raises(ValueError, match="feature names"):
        model.predict(frame[["b", "a", "c", "d"]])


def test_predicting_with_the_wrong_number_of_columns_is_one_clear_error():
    X, y = _linear_plus_relu(100, 7)
    model = OneStepNetwork(width=6).fit(X, y)
    for bad in (X[:, :3], torch.as_tensor(X[:, :3])):
        with pytest.raises(ValueError, match="expecting 4 features") as error:
            model.predict(bad)
        assert "\n" not in str(error.value)


def test_score_on_tensors_is_scikit_learns_r2():
    X, y = _linear_plus_relu(200, 8)
    model = RandomFeatures(width=10, dtype="float64").fit(X, y)
    weights = np.linspace(0.5, 2.0, 200)
    expected = model.score(X, y, sample_weight=weights)  # RegressorMixin.score → r2_score
    got = model.score(torch.as_tensor(X), torch.as_tensor(y), sample_weight=weights)
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_score_and_predict_on_cuda_tensors():
    X, y = _linear_plus_relu(200, 9)
    model = RandomFeatures(width=10, dtype="float64", device="cuda").fit(X, y)
    Xc, yc = torch.as_tensor(X, device="cuda"), torch.as_tensor(y, device="cuda")
    assert model.predict(Xc).device.type == "cuda"
    assert model.score(Xc, yc) == pytest.approx(model.score(X, y), rel=1e-12)


@pytest.mark.parametrize("name", list(FAST))
def test_one_holdout_policy_both_or_neither(name):
    X, y = _linear_plus_relu(100, 10)
    for kwargs in ({"X_holdout": X}, {"y_holdout": y}):
        with pytest.raises(ValueError, match="give both X_holdout and y_holdout, or neither"):
            clone(FAST[name]).fit(X, y, **kwargs)
