"""Scalar functions the proportional-regime theory integrates: students σ, σ′ and links g.

Shared by ``one_step_asymptotics`` and ``weak_recovery``; everything is numpy, vectorised.

- :func:`gauss_hermite` — nodes and weights of E over z ~ N(0, 1) (probabilists' rule).
- :func:`student_functions` — (σ, σ′) for a student: any activation of
  :mod:`replearn.activations` (a name, an ``Activation``, a (σ, σ′) pair of torch functions)
  or a vectorised numpy callable σ (σ′ then by central differences).
- :func:`link_function` — g for a single-index link: a string in z1 parsed by the same
  whitelist parser as the targets (:func:`replearn.expression.parse_expression`: He_k,
  polynomials, tanh, sin, cos, sign, abs, relu, erf, exp), or a callable.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch

from replearn.activations import Activation, activation_names, resolve_activation
from replearn.expression import LinkNode, parse_expression
from replearn.links import evaluate_link

__all__ = ["gauss_hermite", "student_functions", "link_function", "STUDENT_NAMES"]

ScalarFunction = Callable[[np.ndarray], np.ndarray]


@functools.lru_cache(maxsize=32)
def gauss_hermite(n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """(z_k, w_k) with Σ_k w_k f(z_k) ≈ E[f(z)], z ~ N(0, 1); exact for polynomials of
    degree ≤ 2·n_nodes − 1 (numpy's ``hermegauss``, weights divided by √(2π))."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_nodes)
    nodes.setflags(write=False)
    weights = weights / math.sqrt(2.0 * math.pi)
    weights.setflags(write=False)
    return nodes, weights


STUDENT_NAMES = tuple(activation_names())
"""The named students (those of :mod:`replearn.activations`; ``"hermite:k"`` for any k)."""


def _numpy(function: Callable[[torch.Tensor], torch.Tensor]) -> ScalarFunction:
    """A torch elementwise function as a numpy one (float64)."""

    def apply(x):
        x = np.array(x, dtype=np.float64)  # a writable copy, any shape (0-d included)
        return function(torch.from_numpy(x)).numpy()

    return apply


def _finite_difference(function: ScalarFunction, step: float = 1e-5) -> ScalarFunction:
    """σ′ of a callable σ by central differences (error O(step²) where σ is smooth)."""

    def derivative(x):
        return (function(x + step) - function(x - step)) / (2.0 * step)

    return derivative


def student_functions(student) -> tuple[ScalarFunction, ScalarFunction]:
    """(σ, σ′) for a student of :mod:`replearn.activations` (a name, an ``Activation`` or a
    (σ, σ′) pair of torch functions) or a vectorised numpy callable σ (σ′ then by central
    differences).

    Examples
    --------
    >>> sigma, dsigma = student_functions("tanh")
    >>> float(sigma(np.array(0.0))), float(dsigma(np.array(0.0)))
    (0.0, 1.0)
    """
    if callable(student) and not isinstance(student, Activation):
        return student, _finite_difference(student)
    try:
        activation = resolve_activation(student)
    except ValueError as err:
        raise ValueError(f"student {err}; or a numpy callable σ") from None
    return _numpy(activation.function), _numpy(activation.derivative)


def link_function(link) -> ScalarFunction:
    """g: R → R for a single-index link given as a string in z1 (the targets' whitelist
    parser) or a vectorised callable.

    Examples
    --------
    >>> g = link_function("tanh(z1) + He2(z1)/2")
    >>> float(g(np.array(0.0)))
    -0.5
    """
    if callable(link):
        return link
    if not isinstance(link, str):
        raise ValueError(f"teacher must be a link expression in z1 or a callable, got {link!r}")
    try:
        parsed = parse_expression(link, 1)
    except ValueError as err:
        raise ValueError(f"teacher link {link!r}: {err}") from None
    if isinstance(parsed, LinkNode):

        def g(z):
            z = np.array(z, dtype=np.float64)
            Z = torch.from_numpy(z.reshape(-1, 1))
            return evaluate_link(parsed, Z).numpy().reshape(z.shape)

        return g
    terms = {exponents[0]: float(c) for exponents, c in parsed.items()}  # monomials of z1

    def polynomial(z):
        z = np.asarray(z, dtype=np.float64)
        return sum((c * z**k for k, c in terms.items()), np.zeros_like(z))

    return polynomial
