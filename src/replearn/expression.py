"""A whitelist parser for target expressions such as ``He2(z1)/2 + He4(z1)/(4*sqrt(3))``.

The text is parsed with Python's ``ast`` into a syntax tree and then *interpreted* node by
node; only these constructs are accepted, anything else is a one-line ``ValueError``:

- numbers (int or float), the names ``z1`` … ``zr`` (latent coordinates), ``pi``
- ``+ - * /`` and integer powers ``**`` (or ``^``), unary ``+``/``-``
- ``He<k>(poly)`` (probabilists' Hermite polynomial) and ``sqrt(number)``
- with :func:`parse_expression` only, the non-polynomial links ``tanh sin cos sign abs relu
  erf exp`` of any sub-expression, nested freely with the rest (``tanh(z1 + He3(z2))``)

Division and ``sqrt`` take constants only. Nothing is ever passed to ``eval``. Expressions
are ASCII only (a look-alike such as the full-width ``ｚ1`` is refused, never half-read).
The result is a polynomial in the monomial basis: ``{exponents: coefficient}``; an expression
with a link function is a :class:`LinkNode` tree whose polynomial sub-expressions are such
polynomials (parsed by the same code, with the same limits).

Links and E f*² < ∞. Every link expression is bounded by C·(1 + ‖z‖)^D·e^{c‖z‖}, so all its
Gaussian moments are finite: ``tanh sin cos sign erf`` are bounded, ``abs relu`` grow like
their argument, sums and products add growths, and ``exp`` takes only an argument that is
bounded above by a linear function of z — a bounded expression, one of linear growth, or a
degree-2 polynomial whose quadratic part is negative semi-definite (``exp(-z1^2/2)``).
``exp(z1^2)`` (E f*² = ∞) and ``exp(exp(z1))`` are refused. The polynomial growth degree D
is bounded by the limit ``expression_degree`` like a polynomial's degree.

Bounded work. Every size is checked against a limit of :mod:`replearn.limits` *before* the
work that would produce it: the text's length, its nesting depth, the latent dimension,
and for each product p·q (and each power, and He_k(p)) the degree deg p + deg q and the
number of terms of the result, bounded without multiplying by

    terms(p·q) ≤ min(terms(p)·terms(q), C(v + deg, v)),

v the number of variables p and q use (monomials of degree ≤ deg in v variables), and the
work terms(p)·terms(q). A power p^k is bounded by min(C(terms(p) + k − 1, k), C(v + k·deg p,
v)) before its first multiplication. Each limit is raised with a parameter of
:func:`parse_polynomial`, with ``replearn.limits.raised(…)`` or an environment variable.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping

import numpy as np

from replearn import limits
from replearn.hermite import hermite_to_monomial, monomial_to_hermite
from replearn.limits import LimitError, excerpt

MAX_EXPRESSION_LENGTH = limits.LIMITS["expression_length"].default
MAX_DEGREE = limits.LIMITS["expression_degree"].default
MAX_TERMS = limits.LIMITS["expression_terms"].default

Poly = dict[tuple[int, ...], float]

_VAR = re.compile(r"z([1-9][0-9]*)\Z")
_HERMITE = re.compile(r"He([0-9]+)\Z")
_VAR_IN_TEXT = re.compile(r"\bz([1-9][0-9]*)\b")
_MAX_INDEX_DIGITS = 9  # an index with more digits is refused before int() reads it
# the non-polynomial functions of parse_expression: bounded ones, and those that grow like
# their argument (abs, relu); exp is handled on its own (its argument must be bounded above)
BOUNDED_LINKS = ("tanh", "sin", "cos", "sign", "erf")
LINK_FUNCTIONS = (*BOUNDED_LINKS, "abs", "relu", "exp")
NON_SMOOTH_LINKS = ("sign", "abs", "relu")  # kinks or jumps where the argument is 0


def _fail(expr: str, why: str) -> ValueError:
    return ValueError(f"bad target expression {excerpt(expr)}: {why}")


def _limit_fail(expr: str, why: str) -> LimitError:
    return LimitError(f"bad target expression {excerpt(expr)}: {why}")


def check_ascii(expr: str) -> None:
    """Refuse any non-ASCII character (one line naming the first and its position)."""
    if expr.isascii():
        return
    position, char = next((i, c) for i, c in enumerate(expr) if not c.isascii())
    raise _fail(
        expr,
        f"non-ASCII character {char!r} (U+{ord(char):04X}) at position {position}: write "
        "expressions in ASCII (z1…zr, He<k>, sqrt, pi, digits, + - * / ** ^ and parentheses)",
    )


def latent_dimension(expr: str) -> int:
    """Largest i such that z_i appears in the expression (0 if none); ASCII text only."""
    check_ascii(expr)
    largest = 0
    for match in _VAR_IN_TEXT.finditer(expr):
        digits = match.group(1)
        if len(digits) > _MAX_INDEX_DIGITS:
            raise _limit_fail(expr, f"variable z{digits[:12]}… has an absurd index")
        largest = max(largest, int(digits))
    return largest


def monomial_bound(n_variables: int, degree: int) -> int:
    """C(v + deg, v): the number of monomials of degree ≤ deg in v variables."""
    return math.comb(n_variables + degree, n_variables)


def nesting_depth(tree: ast.AST) -> int:
    """Depth of the syntax tree, where a chain ``a + b − c + …`` (or ``a·b/c·…``) is one level.

    Computed with an explicit stack (no recursion), so any tree ``ast.parse`` returns is
    measured safely; the interpreter then recurses at most this deep.
    """
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, ast.expr):  # operators and load contexts: no level
                continue
            same_chain = (
                isinstance(node, ast.BinOp)
                and child is node.left
                and isinstance(child, ast.BinOp)
                and _chain_kind(child.op) == _chain_kind(node.op) is not None
            )
            stack.append((child, depth if same_chain else depth + 1))
    return deepest


def _chain_kind(op: ast.operator) -> str | None:
    if isinstance(op, ast.Add | ast.Sub):
        return "sum"
    if isinstance(op, ast.Mult | ast.Div):
        return "product"
    return None


def parse_polynomial(
    expr: str,
    r: int,
    *,
    max_length: int | None = None,
    max_depth: int | None = None,
    max_degree: int | None = None,
    max_terms: int | None = None,
    max_work: int | None = None,
    max_latent_dimension: int | None = None,
) -> Poly:
    """Parse ``expr`` into a polynomial in z1…zr (monomial basis).

    Each ``max_*`` parameter raises (or lowers) one limit for this call; None uses
    :func:`replearn.limits.get` (see docs/limits.md). A size over a limit is a
    :class:`replearn.limits.LimitError` (a ``ValueError``), raised before the work.
    A link function (``tanh`` …) is refused here: :func:`parse_expression` reads links.
    """
    tree, bounds = _prepare(
        expr, r, max_length, max_depth, max_degree, max_terms, max_work, max_latent_dimension
    )
    return _run(_Interpreter(expr, r, bounds), tree, expr)


def parse_expression(
    expr: str,
    r: int,
    *,
    max_length: int | None = None,
    max_depth: int | None = None,
    max_degree: int | None = None,
    max_terms: int | None = None,
    max_work: int | None = None,
    max_latent_dimension: int | None = None,
) -> Poly | LinkNode:
    """Parse ``expr``: a polynomial (as :func:`parse_polynomial`) or a link tree.

    An expression without a link function (``tanh sin cos sign abs relu erf exp``) goes
    through :func:`parse_polynomial`'s code unchanged and returns the same dict; with one,
    the result is a :class:`LinkNode` whose ``"poly"`` leaves are such dicts.

    Parameters
    ----------
    expr : str
        E.g. ``"tanh(z1 + He3(z2))"`` or ``"He2(z1)/2"``.
    r : int
        Latent dimension: the names z1…zr are allowed.
    max_length, max_depth, max_degree, max_terms, max_work, max_latent_dimension : int, optional
        Raise (or lower) one limit of :mod:`replearn.limits` for this call.

    Returns
    -------
    dict or LinkNode
        ``{exponents: coefficient}`` for a polynomial, else the link's tree.

    Examples
    --------
    >>> parse_expression("z1*z2 + 1", 2)
    {(0, 0): 1.0, (1, 1): 1.0}
    >>> node = parse_expression("tanh(2*z1)", 1)
    >>> node.op, node.children[0].op, node.children[0].value
    ('tanh', 'poly', {(1,): 2.0})
    >>> node.growth
    0
    """
    tree, bounds = _prepare(
        expr, r, max_length, max_depth, max_degree, max_terms, max_work, max_latent_dimension
    )
    uses_links = any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in LINK_FUNCTIONS
        for node in ast.walk(tree)
    )
    if not uses_links:
        return _run(_Interpreter(expr, r, bounds), tree, expr)
    interpreter = _LinkInterpreter(expr, r, bounds)
    try:
        result = interpreter.visit(tree.body)
    except RecursionError:  # not reached while max_depth is moderate; kept as a safety net
        raise _fail(expr, "nested too deeply") from None
    return interpreter.as_node(result)


def _prepare(expr, r, max_length, max_depth, max_degree, max_terms, max_work, max_r):
    """The checks every expression passes before it is interpreted: (syntax tree, bounds)."""
    if not isinstance(expr, str) or not expr.strip():
        raise ValueError("target expression must be a non-empty string")
    bounds = _Bounds(
        depth=limits.resolve("expression_depth", max_depth),
        degree=limits.resolve("expression_degree", max_degree),
        terms=limits.resolve("expression_terms", max_terms),
        work=limits.resolve("expression_work", max_work),
    )
    length_limit = limits.resolve("expression_length", max_length)
    if len(expr) > length_limit:
        raise _limit_fail(
            expr,
            f"{len(expr):,} characters exceed the limit expression_length = {length_limit:,}; "
            + limits.LIMITS["expression_length"].how_to_raise(),
        )
    check_ascii(expr)
    r_limit = limits.resolve("latent_dimension", max_r)
    used = latent_dimension(expr)
    for what, value in (("r", r), (f"z{used}", used)):
        if value > r_limit:
            raise _limit_fail(
                expr,
                f"latent dimension {what} = {value:,} exceeds the limit latent_dimension = "
                f"{r_limit}; " + limits.LIMITS["latent_dimension"].how_to_raise(),
            )
    try:
        # "^" means power: rewrite it so it gets the precedence of "**", not of Python's XOR
        tree = ast.parse(expr.strip().replace("^", "**"), mode="eval")
    except SyntaxError as err:
        raise _fail(expr, f"not a valid expression (SyntaxError: {excerpt(err.msg, 60)})") from None
    except (RecursionError, MemoryError, ValueError) as err:
        raise _fail(expr, f"not a valid expression ({type(err).__name__})") from None
    depth = nesting_depth(tree.body)
    if depth > bounds.depth:
        raise _limit_fail(
            expr,
            f"nested {depth} levels deep, more than the limit expression_depth = "
            f"{bounds.depth}; " + limits.LIMITS["expression_depth"].how_to_raise(),
        )
    return tree, bounds


def _run(interpreter: _Interpreter, tree: ast.Expression, expr: str) -> Poly:
    try:
        poly = interpreter.visit(tree.body)
    except RecursionError:  # not reached while max_depth is moderate; kept as a safety net
        raise _fail(expr, "nested too deeply") from None
    return {k: v for k, v in interpreter.to_dict(poly).items() if v != 0.0}


class _Bounds:
    def __init__(self, depth: int, degree: int, terms: int, work: int):
        self.depth, self.degree, self.terms, self.work = depth, degree, terms, work


class _Poly:
    """Σ values[j]·z^{e(keys[j])}, exponents packed in one integer per term.

    key = |e|·B^r + Σ_i e_i·B^i with B = max_degree + 1: every exponent and the total
    degree fit in a digit (degrees are checked before a product forms them), so the key
    of a product of two monomials is the sum of their keys and the degree is key // B^r.
    Keys are int64 while B^(r+1) fits, Python ints (object arrays) beyond.
    ``variables`` is a bit mask of the variables that may appear (a superset).
    """

    __slots__ = ("keys", "values", "variables")

    def __init__(self, keys: np.ndarray, values: np.ndarray, variables: int):
        self.keys, self.values, self.variables = keys, values, variables

    def __len__(self) -> int:
        return len(self.keys)


class _Interpreter:
    def __init__(self, expr: str, r: int, bounds: _Bounds):
        self.expr, self.r, self.bounds = expr, r, bounds
        self.base = bounds.degree + 1
        self.top = self.base**r  # the digit that holds the total degree
        self.key_dtype = np.int64 if self.base ** (r + 1) < 2**62 else object

    # -- limits, checked before the work ------------------------------------------------------
    def over(self, name: str, what: str, size: int, limit: int) -> LimitError:
        shown = f"{size:,}" if size < 10**15 else f"about 10^{math.log10(size):.0f}"
        return _limit_fail(
            self.expr,
            f"{what} {shown} exceeds the limit {name} = {limit:,}; "
            + limits.LIMITS[name].how_to_raise(),
        )

    def check_degree(self, degree: int) -> None:
        if degree > self.bounds.degree:
            raise self.over("expression_degree", "degree", degree, self.bounds.degree)

    def check_terms(self, bound: int, what: str) -> None:
        if bound > self.bounds.terms:
            raise _limit_fail(
                self.expr,
                f"{what} up to {bound:,} terms, more than the limit expression_terms = "
                f"{self.bounds.terms:,}; " + limits.LIMITS["expression_terms"].how_to_raise(),
            )

    # -- polynomial arithmetic -------------------------------------------------------------
    def make(self, keys, values, variables: int) -> _Poly:
        keys = np.asarray(keys, dtype=self.key_dtype)
        values = np.asarray(values, dtype=np.float64)
        return _Poly(keys, values, variables)

    def combine(self, keys: np.ndarray, values: np.ndarray, variables: int) -> _Poly:
        """Sum the coefficients of equal keys (in order of appearance), drop exact zeros."""
        unique, inverse = np.unique(keys, return_inverse=True)
        with np.errstate(over="ignore", invalid="ignore"):
            summed = np.bincount(inverse.ravel(), weights=values, minlength=len(unique))
        keep = summed != 0.0
        return _Poly(unique[keep], summed[keep], variables)

    def const(self, value: float) -> _Poly:
        if not math.isfinite(value):
            raise _fail(self.expr, f"non-finite number {value}")
        return self.make([0] if value != 0.0 else [], [value] if value != 0.0 else [], 0)

    def variable(self, i: int) -> _Poly:
        return self.make([self.top + self.base ** (i - 1)], [1.0], 1 << (i - 1))

    def scale(self, p: _Poly, factor: float) -> _Poly:
        with np.errstate(over="ignore", invalid="ignore"):
            return _Poly(p.keys, p.values * factor, p.variables)

    def add(self, p: _Poly, q: _Poly, sign: float = 1.0) -> _Poly:
        if len(p) + len(q) > 2 * self.bounds.terms:  # both ≤ terms: never reached
            self.check_terms(len(p) + len(q), "a sum has")
        with np.errstate(over="ignore", invalid="ignore"):
            values = np.concatenate([p.values, sign * q.values])
        out = self.combine(np.concatenate([p.keys, q.keys]), values, p.variables | q.variables)
        if len(out) > self.bounds.terms:
            self.check_terms(len(out), "a sum has")
        return out

    def mul(self, p: _Poly, q: _Poly) -> _Poly:
        degree = self.degree(p) + self.degree(q)
        self.check_degree(degree)
        n_variables = (p.variables | q.variables).bit_count()
        bound = min(len(p) * len(q), monomial_bound(n_variables, degree))
        self.check_terms(bound, f"a product of {len(p):,} and {len(q):,} terms has")
        if len(p) * len(q) > self.bounds.work:
            raise self.over(
                "expression_work",
                f"a product of {len(p):,} and {len(q):,} terms needs",
                len(p) * len(q),
                self.bounds.work,
            )
        keys = np.add.outer(p.keys, q.keys).ravel()
        with np.errstate(over="ignore", invalid="ignore"):
            values = np.multiply.outer(p.values, q.values).ravel()
        return self.combine(keys, values, p.variables | q.variables)

    def check_power(self, p: _Poly, exponent: int, what: str) -> None:
        """Bound p^exponent before computing it: degree, then terms."""
        degree = self.degree(p) * exponent
        self.check_degree(degree)
        by_terms = math.comb(max(len(p), 1) + exponent - 1, exponent)  # multisets of terms
        bound = min(by_terms, monomial_bound(p.variables.bit_count(), degree))
        self.check_terms(bound, what)

    def degree(self, p: _Poly) -> int:
        return int((p.keys // self.top).max()) if len(p) else 0

    def as_constant(self, p: _Poly, what: str) -> float:
        if np.any(p.keys != 0):
            raise _fail(self.expr, f"{what} must be a constant")
        return float(p.values.sum()) if len(p) else 0.0

    def to_dict(self, p: _Poly) -> Poly:
        """{(e_1, …, e_r): coefficient}, the public form."""
        out: Poly = {}
        for key, value in zip(p.keys.tolist(), p.values.tolist(), strict=True):
            exponents = []
            rest = int(key) % self.top
            for _ in range(self.r):
                rest, e = divmod(rest, self.base)
                exponents.append(e)
            out[tuple(exponents)] = value
        return out

    def power(self, p: _Poly, exponent: float) -> _Poly:
        if exponent != int(exponent) or exponent < 0:
            raise _fail(self.expr, f"powers must be integers >= 0, got {exponent}")
        if self.degree(p) == 0:
            if exponent > 1000:
                raise _fail(self.expr, f"power {exponent:g} too large for a constant (max 1000)")
            try:
                value = self.as_constant(p, "base") ** int(exponent)
            except OverflowError:
                raise _fail(self.expr, f"power {int(exponent)} overflows") from None
            return self.const(value)
        if self.degree(p) * exponent > self.bounds.degree:  # before int(): exponent may be 1e300
            shown = f"{self.degree(p)}·{exponent:g}"
            raise _limit_fail(
                self.expr,
                f"degree {shown} of a power exceeds the limit expression_degree = "
                f"{self.bounds.degree}; " + limits.LIMITS["expression_degree"].how_to_raise(),
            )
        exponent = int(exponent)
        self.check_power(p, exponent, f"a power ({len(p):,} terms)^{exponent} has")
        out = self.const(1.0)
        for _ in range(exponent):
            out = self.mul(out, p)
        return out

    def hermite(self, k: int, p: _Poly) -> _Poly:
        if k > self.bounds.degree or self.degree(p) * k > self.bounds.degree:
            self.check_degree(max(k, self.degree(p) * k))
        self.check_power(p, k, f"He{k} of {len(p):,} terms has")
        monomial = hermite_to_monomial([0] * k + [1])
        out = self.const(0.0)
        p_power = self.const(1.0)
        for n, c in enumerate(monomial):
            if n > 0:
                p_power = self.mul(p_power, p)
            if c != 0:
                out = self.add(out, self.scale(p_power, float(c)))
        return out

    def unknown_function(self, name: str) -> str:
        message = f"unknown function {excerpt(name, 40)} (allowed: He<k>, sqrt)"
        if name in LINK_FUNCTIONS:
            message += "; links need parse_expression"
        return message

    # -- AST walk -------------------------------------------------------------------------
    def visit(self, node: ast.AST) -> _Poly:
        poly = self._visit(node)
        if not np.isfinite(poly.values).all():
            raise _fail(self.expr, "a coefficient overflows to a non-finite value")
        return poly

    def _chain(self, node: ast.BinOp) -> _Poly:
        """a ∘ b ∘ c … of one kind (sum or product), folded left to right without recursion."""
        kind = _chain_kind(node.op)
        links = []
        while isinstance(node, ast.BinOp) and _chain_kind(node.op) == kind:
            links.append((node.op, node.right))
            node = node.left
        result = self.visit(node)
        for op, right in reversed(links):
            result = self._binary(op, result, self.visit(right))
        return result

    def _binary(self, op: ast.operator, left: _Poly, right: _Poly) -> _Poly:
        if isinstance(op, ast.Add):
            return self.add(left, right)
        if isinstance(op, ast.Sub):
            return self.add(left, right, sign=-1.0)
        if isinstance(op, ast.Mult):
            return self.mul(left, right)
        if isinstance(op, ast.Div):
            denominator = self.as_constant(right, "a divisor")
            if denominator == 0.0:
                raise _fail(self.expr, "division by zero")
            return self.scale(left, 1.0 / denominator)
        if isinstance(op, ast.Pow | ast.BitXor):
            return self.power(left, self.as_constant(right, "an exponent"))
        raise _fail(self.expr, f"operator {type(op).__name__} is not allowed")

    def _visit(self, node: ast.AST) -> _Poly:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise _fail(self.expr, f"unsupported literal {excerpt(node.value, 40)}")
            try:
                return self.const(float(node.value))
            except OverflowError:
                raise _fail(self.expr, "a number is too large for a float") from None
        if isinstance(node, ast.Name):
            if node.id == "pi":
                return self.const(math.pi)
            match = _VAR.match(node.id)
            if not match:
                raise _fail(
                    self.expr,
                    f"unknown name {excerpt(node.id, 40)} (allowed: z1…z{self.r}, pi)",
                )
            i = int(match.group(1))  # digits bounded by latent_dimension's check
            if i > self.r:
                raise _fail(self.expr, f"variable z{i} exceeds the latent dimension r={self.r}")
            return self.variable(i)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            p = self.visit(node.operand)
            return self.scale(p, -1.0) if isinstance(node.op, ast.USub) else p
        if isinstance(node, ast.BinOp):
            if _chain_kind(node.op) is not None:
                return self._chain(node)
            return self._binary(node.op, self.visit(node.left), self.visit(node.right))
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.keywords or len(node.args) != 1:
                raise _fail(self.expr, "only He<k>(…) and sqrt(…) with one argument are allowed")
            name = node.func.id
            if name != "sqrt" and not _HERMITE.match(name):
                raise _fail(self.expr, self.unknown_function(name))
            if name != "sqrt" and len(name) - 2 > _MAX_INDEX_DIGITS:
                raise _limit_fail(
                    self.expr,
                    f"Hermite degree {name[2:14]}… exceeds the limit expression_degree = "
                    f"{self.bounds.degree}; " + limits.LIMITS["expression_degree"].how_to_raise(),
                )
            argument = self.visit(node.args[0])
            if name == "sqrt":
                value = self.as_constant(argument, "the argument of sqrt")
                if value < 0:
                    raise _fail(self.expr, "sqrt of a negative number")
                return self.const(math.sqrt(value))
            return self.hermite(int(_HERMITE.match(name).group(1)), argument)
        raise _fail(self.expr, f"{type(node).__name__} is not allowed")


def monomials_to_hermite(
    polynomial: Mapping[tuple[int, ...], float], r: int, max_terms: int | None = None
) -> Poly:
    """Σ_a c_a z^a (monomials) → Σ_α c_α He_α(z) (tensor Hermite basis), one coordinate at a time.

    z_i^a = Σ_k w_{a,k} He_k(z_i) (k ≤ a, k ≡ a mod 2) is substituted for coordinate i in
    every term, then for the next coordinate: each stage holds multi-indices of degree ≤ the
    polynomial's degree D in the v variables used, so at most C(v + D, v) terms. Before each
    stage its size is bounded by min(Σ_terms (a_i//2 + 1), C(v + D, v)) and checked against
    the limit ``expression_terms`` (``max_terms`` raises it for this call).
    """
    bound_limit = limits.resolve("expression_terms", max_terms)
    terms: Poly = dict(polynomial)
    degree = max((sum(a) for a in terms), default=0)
    used = sorted({i for a in terms for i, e in enumerate(a) if e})
    ceiling = monomial_bound(len(used), degree)
    table: dict[int, list[tuple[int, float]]] = {}
    for i in used:
        if all(a[i] < 2 for a in terms):
            continue  # z^0 = He_0 and z^1 = He_1: nothing to substitute
        stage_bound = min(sum(a[i] // 2 + 1 for a in terms), ceiling)
        if stage_bound > bound_limit:
            raise limits.LimitError(
                f"the Hermite expansion has at most {stage_bound:,} terms, more than the limit "
                f"expression_terms = {bound_limit:,}; "
                + limits.LIMITS["expression_terms"].how_to_raise()
            )
        out: Poly = {}
        for alpha, coefficient in terms.items():
            a = alpha[i]
            if a < 2:
                out[alpha] = out.get(alpha, 0.0) + coefficient
                continue
            if a not in table:
                hermite = monomial_to_hermite([0] * a + [1])
                table[a] = [(k, float(w)) for k, w in enumerate(hermite) if w != 0]
            for k, weight in table[a]:
                beta = alpha[:i] + (k,) + alpha[i + 1 :]
                out[beta] = out.get(beta, 0.0) + coefficient * weight
        terms = out
    return terms


# -- non-polynomial links ---------------------------------------------------------------------
class LinkNode:
    """One node of a link expression tree (built by :func:`parse_expression`).

    ``op`` is ``"poly"`` (a polynomial leaf: ``value`` is its ``{exponents: coefficient}``
    dict in the monomial basis), ``"add"`` (children summed), ``"mul"`` (children
    multiplied), ``"scale"`` (``value`` · child), ``"pow"`` (child^``value``), ``"hermite"``
    (He_``value``(child)) or a link function of :data:`LINK_FUNCTIONS` (one child).

    ``growth`` is D and ``exponential`` says whether e^{c‖z‖} enters in the bound
    abs(node(z)) ≤ C·(1 + ‖z‖)^D·e^{c‖z‖} (see the module docstring): D = 0 without
    ``exponential`` means bounded.

    Examples
    --------
    >>> node = parse_expression("relu(z1)*sign(z2)", 2)
    >>> node.op, [child.op for child in node.children], node.growth
    ('mul', ['relu', 'sign'], 1)
    """

    __slots__ = ("op", "children", "value", "growth", "exponential", "cache")

    def __init__(self, op: str, children=(), value=None, growth: int = 0, exponential=False):
        self.op, self.children, self.value = op, tuple(children), value
        self.growth, self.exponential = int(growth), bool(exponential)
        self.cache = None  # what an evaluator derives once from value (Hermite terms of a leaf)

    def walk(self):
        """Every node of the tree, this one first (iteratively, no recursion)."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def __repr__(self) -> str:
        return f"LinkNode({self.op!r}, growth={self.growth}, exponential={self.exponential})"


_CONSTANT_LINKS = {
    "tanh": math.tanh,
    "sin": math.sin,
    "cos": math.cos,
    "sign": lambda v: float(np.sign(v)),
    "abs": abs,
    "relu": lambda v: max(v, 0.0),
    "erf": math.erf,
    "exp": math.exp,
}


class _LinkInterpreter(_Interpreter):
    """The polynomial interpreter, extended: an operand may be a :class:`LinkNode`.

    Two polynomial operands still combine exactly (with every limit of the parent); a link
    operand makes a tree node. The growth degree D of every node is checked against the
    limit ``expression_degree`` as a polynomial's degree is.
    """

    def as_node(self, value):
        """The public result: a ``Poly`` dict for a (constant-folded) polynomial, else the tree."""
        if isinstance(value, _Poly):
            return {k: v for k, v in self.to_dict(value).items() if v != 0.0}
        return value

    def leaf(self, p: _Poly) -> LinkNode:
        poly = {k: v for k, v in self.to_dict(p).items() if v != 0.0}
        return LinkNode("poly", (), poly, growth=self.degree(p))

    def node(self, value) -> LinkNode:
        return value if isinstance(value, LinkNode) else self.leaf(value)

    def unknown_function(self, name: str) -> str:
        return (
            f"unknown function {excerpt(name, 40)} (allowed: He<k>, sqrt, "
            + ", ".join(LINK_FUNCTIONS)
            + ")"
        )

    def check_growth(self, growth: int) -> None:
        if growth > self.bounds.degree:
            raise self.over("expression_degree", "growth degree", growth, self.bounds.degree)

    # -- overrides: a LinkNode operand ---------------------------------------------------------
    def visit(self, node: ast.AST):
        value = self._visit(node)
        if isinstance(value, _Poly) and not np.isfinite(value.values).all():
            raise _fail(self.expr, "a coefficient overflows to a non-finite value")
        return value

    def as_constant(self, p, what: str) -> float:
        if isinstance(p, LinkNode):
            raise _fail(self.expr, f"{what} must be a constant")
        return super().as_constant(p, what)

    def scale(self, p, factor: float):
        if isinstance(p, _Poly):
            return super().scale(p, factor)
        if not math.isfinite(factor):
            raise _fail(self.expr, "a coefficient overflows to a non-finite value")
        return LinkNode("scale", (p,), factor, p.growth, p.exponential)

    def hermite(self, k: int, p):
        if isinstance(p, _Poly):
            return super().hermite(k, p)
        self.check_degree(k)
        self.check_growth(p.growth * k)
        return LinkNode("hermite", (p,), k, p.growth * k, p.exponential and k > 0)

    def _binary(self, op: ast.operator, left, right):
        if isinstance(left, _Poly) and isinstance(right, _Poly):
            return super()._binary(op, left, right)
        if isinstance(op, ast.Add | ast.Sub):
            if isinstance(op, ast.Sub):
                right = self.scale(right, -1.0)
            a, b = self.node(left), self.node(right)
            return LinkNode(
                "add", (a, b), None, max(a.growth, b.growth), a.exponential or b.exponential
            )
        if isinstance(op, ast.Mult):
            for constant, other in ((left, right), (right, left)):
                if isinstance(constant, _Poly) and not np.any(constant.keys != 0):
                    return self.scale(other, self.as_constant(constant, "a factor"))
            a, b = self.node(left), self.node(right)
            self.check_growth(a.growth + b.growth)
            return LinkNode(
                "mul", (a, b), None, a.growth + b.growth, a.exponential or b.exponential
            )
        if isinstance(op, ast.Div):
            denominator = self.as_constant(right, "a divisor")
            if denominator == 0.0:
                raise _fail(self.expr, "division by zero")
            return self.scale(left, 1.0 / denominator)
        if isinstance(op, ast.Pow | ast.BitXor):
            exponent = self.as_constant(right, "an exponent")
            if exponent != int(exponent) or exponent < 0:
                raise _fail(self.expr, f"powers must be integers >= 0, got {exponent}")
            if exponent > self.bounds.degree:
                raise self.over("expression_degree", "power", int(exponent), self.bounds.degree)
            exponent = int(exponent)
            if exponent == 0:
                return self.const(1.0)
            self.check_growth(left.growth * exponent)
            return LinkNode("pow", (left,), exponent, left.growth * exponent, left.exponential)
        raise _fail(self.expr, f"operator {type(op).__name__} is not allowed")

    def _visit(self, node: ast.AST):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in LINK_FUNCTIONS
        ):
            if node.keywords or len(node.args) != 1:
                raise _fail(self.expr, f"{node.func.id}(…) takes exactly one argument")
            return self.link(node.func.id, self.visit(node.args[0]))
        return super()._visit(node)

    def link(self, name: str, argument):
        """name(argument): folded when the argument is a constant; exp's argument checked."""
        if isinstance(argument, _Poly) and not np.any(argument.keys != 0):
            value = self.as_constant(argument, "argument")
            try:
                return self.const(float(_CONSTANT_LINKS[name](value)))
            except OverflowError:
                raise _fail(self.expr, f"{name}({value:g}) overflows") from None
        child = self.node(argument)
        if name in BOUNDED_LINKS:
            return LinkNode(name, (child,), None, 0, False)
        if name != "exp":  # abs, relu: as large as the argument
            return LinkNode(name, (child,), None, child.growth, child.exponential)
        if child.growth == 0 and not child.exponential:  # exp of a bounded function
            return LinkNode("exp", (child,), None, 0, False)
        if (child.growth <= 1 and not child.exponential) or self.concave_quadratic(child):
            return LinkNode("exp", (child,), None, 0, True)
        raise _fail(
            self.expr,
            "exp needs an argument bounded above by a linear function of z (bounded, of "
            "degree <= 1, or a degree-2 polynomial with a negative semi-definite quadratic "
            "part) so that E[f*^2] is finite",
        )

    def concave_quadratic(self, node: LinkNode) -> bool:
        """Whether a polynomial leaf has degree 2 and a negative semi-definite quadratic part."""
        if node.op != "poly" or node.growth != 2:
            return False
        Q = np.zeros((self.r, self.r))
        for exponents, c in node.value.items():
            used = [i for i, e in enumerate(exponents) for _ in range(e)]
            if len(used) == 2:
                i, j = used
                Q[i, j] += c / (1 if i == j else 2)
                Q[j, i] += 0 if i == j else c / 2
        eigenvalues = np.linalg.eigvalsh(Q)
        return bool(eigenvalues.max() <= 1e-12 * np.abs(eigenvalues).max())
