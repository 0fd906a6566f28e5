"""The metrics' model argument: a function, a class or a number is one TypeError line."""

import pytest

import replearn as rl
from replearn.metrics import captured_degree_components


@pytest.mark.parametrize(
    "model, says",
    [
        (lambda X: X[:, 0], "got the function <lambda>; to score a function f"),
        (rl.RandomFeatures, "got the class RandomFeatures (not an instance; fit one first)"),
        (3, "got an object of type int"),
    ],
)
def test_not_an_estimator_is_one_line(model, says):
    target = rl.paper_target(d=4)
    for metric in (rl.excess_risk, captured_degree_components):
        with pytest.raises(TypeError) as info:
            metric(model, target, n_test=10)
        message = str(info.value)
        assert "\n" not in message and message.startswith("model: must be a fitted estimator")
        assert says in message
