"""A whitelist parser for target expressions such as ``He2(z1)/2 + He4(z1)/(4*sqrt(3))``.

The text is parsed with Python's ``ast`` into a syntax tree and then *interpreted* node by
node; only these constructs are accepted, anything else is a one-line ``ValueError``:

- numbers (int or float), the names ``z1`` … ``zr`` (latent coordinates), ``pi``
- ``+ - * /`` and integer powers ``**`` (or ``^``), unary ``+``/``-``
- ``He<k>(poly)`` (probabilists' Hermite polynomial) and ``sqrt(number)``

Division and ``sqrt`` take constants only. Nothing is ever passed to ``eval``.
The result is a polynomial in the monomial basis: ``{exponents: coefficient}``.
"""

from __future__ import annotations

import ast
import math
import re

from replearn.hermite import hermite_to_monomial

MAX_EXPRESSION_LENGTH = 5_000
MAX_DEGREE = 30
MAX_TERMS = 20_000

Poly = dict[tuple[int, ...], float]

_VAR = re.compile(r"z([1-9][0-9]*)\Z")
_HERMITE = re.compile(r"He([0-9]+)\Z")


def _fail(expr: str, why: str) -> ValueError:
    return ValueError(f"bad target expression {expr!r}: {why}")


def latent_dimension(expr: str) -> int:
    """Largest i such that z_i appears in the expression (0 if none)."""
    return max((int(m) for m in re.findall(r"\bz([1-9][0-9]*)\b", expr)), default=0)


def parse_polynomial(expr: str, r: int) -> Poly:
    """Parse ``expr`` into a polynomial in z1…zr (monomial basis)."""
    if not isinstance(expr, str) or not expr.strip():
        raise ValueError("target expression must be a non-empty string")
    if len(expr) > MAX_EXPRESSION_LENGTH:
        raise _fail(expr[:40] + "…", f"longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        # "^" means power: rewrite it so it gets the precedence of "**", not of Python's XOR
        tree = ast.parse(expr.strip().replace("^", "**"), mode="eval")
    except (SyntaxError, RecursionError, MemoryError) as err:
        raise _fail(expr, f"not a valid expression ({type(err).__name__})") from None
    try:
        poly = _Interpreter(expr, r).visit(tree.body)
    except RecursionError:
        raise _fail(expr, "nested too deeply") from None
    return {k: v for k, v in poly.items() if v != 0.0}


class _Interpreter:
    def __init__(self, expr: str, r: int):
        self.expr, self.r = expr, r

    # -- polynomial arithmetic -------------------------------------------------------------
    def const(self, value: float) -> Poly:
        if not math.isfinite(value):
            raise _fail(self.expr, f"non-finite number {value}")
        return {(0,) * self.r: float(value)}

    def add(self, p: Poly, q: Poly, sign: float = 1.0) -> Poly:
        out = dict(p)
        for k, v in q.items():
            out[k] = out.get(k, 0.0) + sign * v
        return out

    def mul(self, p: Poly, q: Poly) -> Poly:
        if self.degree(p) + self.degree(q) > MAX_DEGREE:
            raise _fail(self.expr, f"degree exceeds the maximum {MAX_DEGREE}")
        out: Poly = {}
        for kp, vp in p.items():
            for kq, vq in q.items():
                k = tuple(a + b for a, b in zip(kp, kq, strict=True))
                out[k] = out.get(k, 0.0) + vp * vq
        if len(out) > MAX_TERMS:
            raise _fail(self.expr, f"more than {MAX_TERMS} terms")
        return out

    @staticmethod
    def degree(p: Poly) -> int:
        return max((sum(k) for k, v in p.items() if v != 0.0), default=0)

    def as_constant(self, p: Poly, what: str) -> float:
        if any(sum(k) > 0 and v != 0.0 for k, v in p.items()):
            raise _fail(self.expr, f"{what} must be a constant")
        return p.get((0,) * self.r, 0.0)

    def power(self, p: Poly, exponent: float) -> Poly:
        if exponent != int(exponent) or exponent < 0:
            raise _fail(self.expr, f"powers must be integers >= 0, got {exponent}")
        exponent = int(exponent)
        if self.degree(p) == 0:
            if exponent > 1000:
                raise _fail(self.expr, f"power {exponent} too large")
            try:
                value = self.as_constant(p, "base") ** exponent
            except OverflowError:
                raise _fail(self.expr, f"power {exponent} overflows") from None
            return self.const(value)
        if self.degree(p) * exponent > MAX_DEGREE:
            raise _fail(self.expr, f"degree exceeds the maximum {MAX_DEGREE}")
        out = self.const(1.0)
        for _ in range(exponent):
            out = self.mul(out, p)
        return out

    def hermite(self, k: int, p: Poly) -> Poly:
        if k > MAX_DEGREE or self.degree(p) * k > MAX_DEGREE:
            raise _fail(self.expr, f"degree exceeds the maximum {MAX_DEGREE}")
        monomial = hermite_to_monomial([0] * k + [1])
        out = self.const(0.0)
        p_power = self.const(1.0)
        for n, c in enumerate(monomial):
            if n > 0:
                p_power = self.mul(p_power, p)
            if c != 0:
                out = self.add(out, {kk: float(c) * v for kk, v in p_power.items()})
        return out

    # -- AST walk -------------------------------------------------------------------------
    def visit(self, node: ast.AST) -> Poly:
        poly = self._visit(node)
        if not all(math.isfinite(v) for v in poly.values()):
            raise _fail(self.expr, "a coefficient overflows to a non-finite value")
        return poly

    def _visit(self, node: ast.AST) -> Poly:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise _fail(self.expr, f"unsupported literal {node.value!r}")
            return self.const(float(node.value))
        if isinstance(node, ast.Name):
            if node.id == "pi":
                return self.const(math.pi)
            match = _VAR.match(node.id)
            if not match:
                raise _fail(self.expr, f"unknown name {node.id!r} (allowed: z1…z{self.r}, pi)")
            i = int(match.group(1))
            if i > self.r:
                raise _fail(self.expr, f"variable z{i} exceeds the latent dimension r={self.r}")
            exps = [0] * self.r
            exps[i - 1] = 1
            return {tuple(exps): 1.0}
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            p = self.visit(node.operand)
            return {k: -v for k, v in p.items()} if isinstance(node.op, ast.USub) else p
        if isinstance(node, ast.BinOp):
            left, right = self.visit(node.left), self.visit(node.right)
            if isinstance(node.op, ast.Add):
                return self.add(left, right)
            if isinstance(node.op, ast.Sub):
                return self.add(left, right, sign=-1.0)
            if isinstance(node.op, ast.Mult):
                return self.mul(left, right)
            if isinstance(node.op, ast.Div):
                denominator = self.as_constant(right, "a divisor")
                if denominator == 0.0:
                    raise _fail(self.expr, "division by zero")
                return {k: v / denominator for k, v in left.items()}
            if isinstance(node.op, ast.Pow | ast.BitXor):
                return self.power(left, self.as_constant(right, "an exponent"))
            raise _fail(self.expr, f"operator {type(node.op).__name__} is not allowed")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.keywords or len(node.args) != 1:
                raise _fail(self.expr, "only He<k>(…) and sqrt(…) with one argument are allowed")
            name = node.func.id
            if name != "sqrt" and not _HERMITE.match(name):
                raise _fail(self.expr, f"unknown function {name!r} (allowed: He<k>, sqrt)")
            argument = self.visit(node.args[0])
            if name == "sqrt":
                value = self.as_constant(argument, "the argument of sqrt")
                if value < 0:
                    raise _fail(self.expr, "sqrt of a negative number")
                return self.const(math.sqrt(value))
            return self.hermite(int(_HERMITE.match(name).group(1)), argument)
        raise _fail(self.expr, f"{type(node).__name__} is not allowed")
