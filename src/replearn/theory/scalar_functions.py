"""Scalar functions the proportional-regime theory integrates: students σ, σ′ and links g.

Shared by ``one_step_asymptotics`` and ``weak_recovery``; everything is numpy, vectorised.

- :func:`gauss_hermite` — nodes and weights of E over z ~ N(0, 1) (probabilists' rule).
- :func:`student_functions` — (σ, σ′) for a student name or a callable.
- :func:`link_function` — g for a single-index link: a string in z1 or a callable.

TEMPORARY (two switches, one place each):

- ``_STUDENTS`` is a private copy of the activations that ``replearn.activations`` (σ, σ′,
  Hermite coefficients; being written by another helper) will own. When that module is on
  main, :func:`student_functions` should look the name up there and this table goes.
- ``_LinkEvaluator`` is a small whitelist evaluator for the non-polynomial links (tanh, sin,
  …) that ``replearn.expression`` / ``MultiIndexTarget.from_expression`` will accept (the
  ``targets`` helper's work). When that lands, :func:`link_function` should build the link
  from it and this class goes.
"""

from __future__ import annotations

import ast
import functools
import math
import re
from collections.abc import Callable

import numpy as np
from scipy.special import erf as _erf

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


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1/(1 + e^{−x}), without overflow


# TEMPORARY: replearn.activations will own these (σ, σ′).
_STUDENTS: dict[str, tuple[ScalarFunction, ScalarFunction]] = {
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "relu": (lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float)),
    "erf": (_erf, lambda x: 2.0 / math.sqrt(math.pi) * np.exp(-(x**2))),
    "sigmoid": (_sigmoid, lambda x: _sigmoid(x) * (1.0 - _sigmoid(x))),
    "abs": (np.abs, np.sign),
    "quadratic": (lambda x: x**2, lambda x: 2.0 * x),
    "linear": (lambda x: np.asarray(x, dtype=float), np.ones_like),
}
STUDENT_NAMES = tuple(_STUDENTS)


def _finite_difference(function: ScalarFunction, step: float = 1e-5) -> ScalarFunction:
    """σ′ of a callable σ by central differences (error O(step²) where σ is smooth)."""

    def derivative(x):
        return (function(x + step) - function(x - step)) / (2.0 * step)

    return derivative


def student_functions(student) -> tuple[ScalarFunction, ScalarFunction]:
    """(σ, σ′) for a student name in ``STUDENT_NAMES`` or a vectorised callable σ (σ′ then by
    central differences).

    Examples
    --------
    >>> sigma, dsigma = student_functions("tanh")
    >>> float(sigma(np.array(0.0))), float(dsigma(np.array(0.0)))
    (0.0, 1.0)
    """
    if callable(student):
        return student, _finite_difference(student)
    if isinstance(student, str) and student in _STUDENTS:
        return _STUDENTS[student]
    raise ValueError(
        f"student must be one of {', '.join(STUDENT_NAMES)} or a callable, got {student!r}"
    )


# TEMPORARY: replearn.expression will parse these links (the targets helper's work).
_LINK_FUNCTIONS: dict[str, ScalarFunction] = {
    "tanh": np.tanh,
    "sin": np.sin,
    "cos": np.cos,
    "exp": np.exp,
    "abs": np.abs,
    "sign": np.sign,
    "erf": _erf,
    "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": _sigmoid,
    "sqrt": np.sqrt,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
_HERMITE = re.compile(r"He(\d{1,2})$")


class _LinkEvaluator:
    """TEMPORARY whitelist evaluator of a link expression in z1 (numbers, z1, pi, e, + − * / **,
    the functions of ``_LINK_FUNCTIONS`` and He<k>); nothing reaches ``eval``."""

    def __init__(self, text: str):
        self.text = text
        try:
            self.tree = ast.parse(text.replace("^", "**"), mode="eval").body
        except SyntaxError:
            raise self.error("is not a valid expression") from None
        self._check(self.tree)

    def error(self, why: str) -> ValueError:
        return ValueError(f"teacher link {self.text!r} {why}")

    def _check(self, node) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return
        if isinstance(node, ast.Name) and (node.id == "z1" or node.id in _CONSTANTS):
            return
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
            return self._check(node.operand)
        if isinstance(node, ast.BinOp) and isinstance(
            node.op, ast.Add | ast.Sub | ast.Mult | ast.Div | ast.Pow
        ):
            self._check(node.left)
            return self._check(node.right)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and (node.func.id in _LINK_FUNCTIONS or _HERMITE.match(node.func.id))
            and len(node.args) == 1
            and not node.keywords
        ):
            return self._check(node.args[0])
        allowed = ", ".join(sorted(_LINK_FUNCTIONS)) + ", He<k>"
        raise self.error(
            f"uses {ast.unparse(node)!r}: a single-index link may use numbers, z1, pi, "
            f"+ - * / ** and {allowed}"
        )

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._eval(self.tree, np.asarray(z, dtype=float)), np.shape(z))

    def _eval(self, node, z):
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return z if node.id == "z1" else _CONSTANTS[node.id]
        if isinstance(node, ast.UnaryOp):
            value = self._eval(node.operand, z)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            left, right = self._eval(node.left, z), self._eval(node.right, z)
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Sub):
                return left - right
            if isinstance(node.op, ast.Mult):
                return left * right
            if isinstance(node.op, ast.Div):
                return left / right
            return left**right
        argument = self._eval(node.args[0], z)
        hermite = _HERMITE.match(node.func.id)
        if hermite:
            coefficients = np.zeros(int(hermite.group(1)) + 1)
            coefficients[-1] = 1.0
            return np.polynomial.hermite_e.hermeval(argument, coefficients)
        return _LINK_FUNCTIONS[node.func.id](argument)


def link_function(link) -> ScalarFunction:
    """g: R → R for a single-index link given as a string in z1 or a vectorised callable.

    Examples
    --------
    >>> g = link_function("tanh(z1) + He2(z1)/2")
    >>> float(g(np.array(0.0)))
    -0.5
    """
    if callable(link):
        return link
    if isinstance(link, str):
        return _LinkEvaluator(link)
    raise ValueError(f"teacher must be a link expression in z1 or a callable, got {link!r}")
