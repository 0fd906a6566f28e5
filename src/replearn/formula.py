"""Arithmetic formulas of a run's sizes, e.g. ``5*sqrt(n*m)`` or ``0.02/n``.

A learner parameter that depends on the run's sample size n, input dimension d or width m
(Dandi et al. 2023's η = 10·√(n·p), a ridge λ written for an unnormalised sum) is written as
a formula and evaluated by the learner at fit. The text is parsed with Python's ``ast`` and
*interpreted*; only these constructs are accepted, anything else is a one-line ValueError:

- numbers, and the names the parameter allows (a subset of ``n``, ``d``, ``m``)
- ``+ - * /`` and powers ``**`` (or ``^``, computed in floats), unary ``+``/``-``, parentheses
- ``sqrt(x)``, ``log(x)`` (natural), ``exp(x)`` of any sub-formula

Integers stay Python integers until a division or a function makes them floats, so
``5*sqrt(n*m)`` is the same float as the Python expression ``5 * math.sqrt(n * m)``.
Nothing is passed to ``eval``; the text is ASCII and at most :data:`MAX_FORMULA_LENGTH`
characters (which bounds the nesting depth).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Collection, Mapping

from replearn.limits import excerpt

__all__ = [
    "MAX_FORMULA_LENGTH",
    "formula_names",
    "check_formula",
    "evaluate_formula",
    "formula_or",
]

MAX_FORMULA_LENGTH = 200
FUNCTIONS = {"sqrt": math.sqrt, "log": math.log, "exp": math.exp}
_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: float(a) ** b,  # in floats: 2**10**10 overflows, never hangs
}


def _parse(text) -> ast.Expression:
    if not isinstance(text, str):
        raise ValueError(f"must be a formula (a string), got {excerpt(text)}")
    if not text.isascii() or not text.strip():
        raise ValueError(f"must be a non-empty ASCII formula, got {excerpt(text)}")
    if len(text) > MAX_FORMULA_LENGTH:
        raise ValueError(f"formula longer than {MAX_FORMULA_LENGTH} characters: {excerpt(text)}")
    try:
        return ast.parse(text.replace("^", "**"), mode="eval")
    except SyntaxError:
        raise ValueError(f"cannot parse the formula {excerpt(text)}") from None


def formula_names(text: str) -> set[str]:
    """The variable names a formula uses (after checking that it parses and uses only the
    allowed constructs).

    Examples
    --------
    >>> sorted(formula_names("5*sqrt(n*m)"))
    ['m', 'n']
    """
    tree = _parse(text)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                raise ValueError(
                    f"formula {excerpt(text)}: only the functions {', '.join(FUNCTIONS)} are allowed"
                )
            if len(node.args) != 1 or node.keywords:
                raise ValueError(f"formula {excerpt(text)}: {node.func.id} takes one argument")
        elif isinstance(node, ast.Name):
            if node.id not in FUNCTIONS:
                names.add(node.id)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise ValueError(f"formula {excerpt(text)}: only numbers are allowed as constants")
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                raise ValueError(f"formula {excerpt(text)}: only + - * / ** are allowed")
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.UAdd | ast.USub):
                raise ValueError(f"formula {excerpt(text)}: only unary + and - are allowed")
        elif not isinstance(node, ast.Expression | ast.Load | ast.operator | ast.unaryop):
            raise ValueError(
                f"formula {excerpt(text)}: {type(node).__name__} is not allowed (numbers, "
                f"names, + - * / **, {', '.join(FUNCTIONS)})"
            )
    return names


def check_formula(text: str, allowed: Collection[str]) -> str:
    """``text`` if it is a formula in the ``allowed`` names only, else one ValueError line.

    Examples
    --------
    >>> check_formula("0.02/n", ("n", "d", "m"))
    '0.02/n'
    >>> check_formula("2/p", ("n", "d", "m"))
    Traceback (most recent call last):
    ...
    ValueError: formula '2/p': unknown name p; allowed: n, d, m
    """
    unknown = sorted(formula_names(text) - set(allowed))
    if unknown:
        raise ValueError(
            f"formula {excerpt(text)}: unknown name {', '.join(unknown)}; "
            f"allowed: {', '.join(allowed)}"
        )
    return text


def formula_or(value, check, allowed: str, names: Collection[str]):
    """``value`` checked by ``check``, or, when it is a string, as a formula in ``names``; one
    ValueError line naming what is ``allowed`` otherwise (a learner parameter that takes a
    number or a formula: ``GiantStepNetwork``'s step sizes, ``OnlineSGD``'s ``lr``).

    Parameters
    ----------
    value : object
        The parameter's value.
    check : callable
        The check of a non-string value (returns the value, raises ValueError).
    allowed : str
        What the parameter allows, in words, for the error.
    names : collection of str
        The names a formula may use.

    Returns
    -------
    object
        ``check(value)``, or the formula's text.

    Examples
    --------
    >>> formula_or("0.01/d", float, "a number or a formula in d", ("d",))
    '0.01/d'
    >>> formula_or("0.01/n", float, "a number or a formula in d", ("d",))
    Traceback (most recent call last):
    ...
    ValueError: must be a number or a formula in d, got '0.01/n' (formula '0.01/n': unknown name n; allowed: d)
    """
    if isinstance(value, str):
        try:
            return check_formula(value, names)
        except ValueError as err:
            raise ValueError(f"must be {allowed}, got {value!r} ({err})") from None
    return check(value)


def evaluate_formula(text: str, values: Mapping[str, int | float]) -> float:
    """The value of a formula with the names bound to ``values``: a finite float, else one
    ValueError line.

    Parameters
    ----------
    text : str
        The formula.
    values : mapping of str to number
        The names it may use and their values (``{"n": 4096, "d": 64, "m": 128}``).

    Returns
    -------
    float

    Examples
    --------
    >>> evaluate_formula("5*sqrt(n*m)", {"n": 4096, "d": 64, "m": 128}) == 5 * math.sqrt(4096 * 128)
    True
    >>> evaluate_formula("d^2/2", {"d": 10})
    50.0
    """
    check_formula(text, tuple(values))
    tree = _parse(text)

    def visit(node):
        if isinstance(node, ast.Expression):
            return visit(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return values[node.id]
        if isinstance(node, ast.UnaryOp):
            inner = visit(node.operand)
            return -inner if isinstance(node.op, ast.USub) else +inner
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](visit(node.left), visit(node.right))
        return FUNCTIONS[node.func.id](visit(node.args[0]))

    bound = ", ".join(f"{k}={v}" for k, v in values.items())
    try:
        value = float(visit(tree))
    except (ZeroDivisionError, OverflowError, ValueError, TypeError) as err:
        raise ValueError(f"formula {excerpt(text)} at {bound}: {err}") from None
    if not math.isfinite(value):
        raise ValueError(f"formula {excerpt(text)} at {bound}: not finite ({value})")
    return value
