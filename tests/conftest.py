"""Shared fixtures: a target with a mean and a linear part, and small data sets drawn from it."""

import pytest
import torch

import replearn as rl

F64 = torch.float64

# f*(x) = 2 + 1.5·z + He₂(z), z = u·x: a mean, a linear part and a quadratic one, so a learner
# that skipped the α/β step (Algorithm 1's preprocessing) has to spend its features on them
AFFINE_EXPRESSION = "2 + 1.5*z1 + He2(z1)"


@pytest.fixture(scope="session")
def affine_target():
    """Mean 2, linear part 1.5·u·x, He₂(u·x); d = 8 (not normalised: Var f* = 2.25 + 2)."""
    return rl.MultiIndexTarget.from_expression(AFFINE_EXPRESSION, 8, seed=0, normalize=False)


@pytest.fixture(scope="session")
def affine_data(affine_target):
    """(X, y): n = 2000, label noise ±0.25 (Rademacher), float64; (X_h, y_h): 600 holdout samples."""
    X, y = rl.sample(affine_target, n=2000, noise=0.25, seed=0, dtype=F64)
    X_holdout, y_holdout = rl.sample(affine_target, n=600, noise=0.25, seed=2, dtype=F64)
    return X, y, X_holdout, y_holdout
