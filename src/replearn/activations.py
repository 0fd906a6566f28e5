"""The student's activation σ: the function, its derivative σ′ and its Hermite coefficients.

A two-layer network f(x) = c·Σ_j a_j·σ(w_j·x + b_j) (``replearn.network``) takes any of

    relu       σ(z) = max(z, 0)            σ′(z) = 1[z > 0]       (the paper's; default)
    tanh       σ(z) = tanh z               σ′(z) = 1 − tanh² z    (Cui et al. 2024)
    erf        σ(z) = erf(z)               σ′(z) = 2/√π·exp(−z²)
    sigmoid    σ(z) = 1/(1 + e^{−z})       σ′(z) = σ(z)(1 − σ(z))
    abs        σ(z) = |z|                  σ′(z) = sign z
    quadratic  σ(z) = z²                   σ′(z) = 2z
    linear     σ(z) = z                    σ′(z) = 1
    hermite:k  σ(z) = He_k(z)              σ′(z) = k·He_{k−1}(z)   (probabilists' Hermite)

or a user's pair ``(σ, σ′)`` of elementwise torch functions (``Activation.custom``).

Hermite coefficients c_k = E[σ(z)·He_k(z)]/k! (z ~ N(0, 1), so σ = Σ_k c_k He_k) are exact
for relu, abs, linear, quadratic and hermite:k (``hermite_coefficients``: Gaussian integration
by parts at the kink, or the polynomial itself) and by Gauss–Hermite quadrature otherwise
(σ smooth: the error falls faster than any power of the number of nodes; the quadrature is
checked against twice the nodes). They give the infinite-width kernels of smooth σ through
the Mehler expansion E[σ(u)σ(v)] = Σ_k k!·c_k²·ρ^k for unit-variance u, v of correlation ρ.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from replearn import hermite

__all__ = [
    "Activation",
    "ACTIVATIONS",
    "activation_names",
    "resolve_activation",
    "activation_spec",
]

TensorFn = Callable[[torch.Tensor], torch.Tensor]

_SQRT_PI = math.sqrt(math.pi)
QUADRATURE_NODES = 200
"""Gauss–Hermite nodes for the Hermite coefficients of a smooth σ (checked against 400)."""
QUADRATURE_TOLERANCE = 1e-9
"""Largest change of a coefficient between 200 and 400 nodes accepted as converged."""


@dataclass(frozen=True)
class Activation:
    """An elementwise activation σ with its derivative σ′.

    Parameters
    ----------
    name : str
        The name specs and reports use (``"relu"``, ``"tanh"``, …, ``"hermite:3"``,
        ``"custom"``).
    function : callable
        σ, elementwise on a tensor (dtype and device kept).
    derivative : callable
        σ′, elementwise on a tensor.
    exact_coefficients : callable or None
        K ↦ the exact c_0 … c_K (numpy float64), when known in closed form.
    positively_homogeneous : bool
        σ(t·z) = t·σ(z) for t > 0 (relu, abs, linear): then σ(z) = σ′(z)·z, which the
        NTK's Gram pass uses.
    in_place : callable or None
        σ applied in place to a tensor it may overwrite (``torch.Tensor.tanh_``, …), which a
        feature pass uses on its reused buffer; None: σ(z) is computed into a new tensor.

    Examples
    --------
    >>> import torch
    >>> tanh = resolve_activation("tanh")
    >>> z = torch.tensor([0.0, 1.0])
    >>> tanh(z), tanh.derivative(z)
    (tensor([0.0000, 0.7616]), tensor([1.0000, 0.4200]))
    >>> [round(float(c), 6) for c in resolve_activation("relu").hermite_coefficients(2)]
    [0.398942, 0.5, 0.199471]
    """

    name: str
    function: TensorFn = field(repr=False)
    derivative: TensorFn = field(repr=False)
    exact_coefficients: Callable[[int], np.ndarray] | None = field(default=None, repr=False)
    positively_homogeneous: bool = False
    in_place: TensorFn | None = field(default=None, repr=False)

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return self.function(z)

    def __reduce_ex__(self, protocol):
        """A named activation pickles as its name (its σ, σ′ are lambdas and closures), a
        user's as its fields (its functions must be picklable)."""
        named = ACTIVATIONS.get(self.name) is self or (
            self.name.startswith("hermite:")
            and getattr(self.function, "__qualname__", "").startswith("_hermite_k.")
        )
        if named:
            return (resolve_activation, (self.name,))
        return super().__reduce_ex__(protocol)

    def apply_(self, z: torch.Tensor) -> torch.Tensor:
        """σ(z) written into z (which the caller gives up), returned: the in-place variant when
        there is one, else σ(z) computed and copied back."""
        if self.in_place is not None:
            return self.in_place(z)
        return z.copy_(self.function(z))

    @property
    def is_relu(self) -> bool:
        """Whether σ is the paper's ReLU (the learners keep its exact, fused code paths)."""
        return self.name == "relu"

    def hermite_coefficients(self, max_degree: int) -> np.ndarray:
        """c_0 … c_K with σ = Σ_k c_k He_k: exact where known, else Gauss–Hermite quadrature.

        Parameters
        ----------
        max_degree : int
            K ≥ 0.

        Returns
        -------
        numpy.ndarray
            (K + 1,) float64.
        """
        if self.exact_coefficients is not None:
            return self.exact_coefficients(max_degree)

        def values(z: np.ndarray) -> np.ndarray:
            out = self.function(torch.from_numpy(z).to(torch.float64))
            return out.to(torch.float64).numpy()

        coarse = hermite.hermite_coefficients(values, max_degree, QUADRATURE_NODES)
        fine = hermite.hermite_coefficients(values, max_degree, 2 * QUADRATURE_NODES)
        change = float(np.max(np.abs(fine - coarse)))
        if not change <= QUADRATURE_TOLERANCE * max(1.0, float(np.max(np.abs(fine)))):
            raise ValueError(
                f"the Hermite coefficients of activation {self.name!r} do not converge by "
                f"Gauss–Hermite quadrature (change {change:.2g} from {QUADRATURE_NODES} to "
                f"{2 * QUADRATURE_NODES} nodes): is it smooth and of at most polynomial growth?"
            )
        return fine

    @classmethod
    def custom(cls, function: TensorFn, derivative: TensorFn, name: str = "custom") -> Activation:
        """A user's σ with its derivative σ′ (both elementwise torch functions).

        Parameters
        ----------
        function, derivative : callable
            σ and σ′.
        name : str
            Shown in reports.

        Returns
        -------
        Activation

        Examples
        --------
        >>> import torch
        >>> softplus = Activation.custom(torch.nn.functional.softplus, torch.sigmoid, "softplus")
        >>> round(float(softplus(torch.tensor(0.0))), 4)
        0.6931
        """
        if not (callable(function) and callable(derivative)):
            raise ValueError("a custom activation needs two callables: σ and its derivative σ′")
        return cls(name, function, derivative)


def _monomial_coefficients(monomial: tuple[float, ...], max_degree: int) -> np.ndarray:
    """Exact c_0…c_K of the polynomial σ with these monomial coefficients."""
    in_hermite = [float(c) for c in hermite.monomial_to_hermite(list(monomial))]
    out = np.zeros(max_degree + 1, dtype=np.float64)
    for k, c in enumerate(in_hermite[: max_degree + 1]):
        out[k] = c
    return out


def _polynomial_coefficients(monomial: list[float]) -> Callable[[int], np.ndarray]:
    """Exact c_k of a polynomial σ given by its monomial coefficients (module-level pieces,
    so that an Activation — and a fitted learner holding one — pickles)."""
    return functools.partial(_monomial_coefficients, tuple(monomial))


def _abs_coefficients(max_degree: int) -> np.ndarray:
    """|z| = ReLU(z) + ReLU(−z): c_k(|z|) = (1 + (−1)^k)·c_k(ReLU)."""
    relu = hermite.relu_hermite_coefficients(max_degree)
    return np.array([(1 + (-1) ** k) * c for k, c in enumerate(relu)], dtype=np.float64)


def _hermite_function(k: int, z: torch.Tensor) -> torch.Tensor:
    return hermite.he(k, z)


def _hermite_derivative(k: int, z: torch.Tensor) -> torch.Tensor:
    return k * hermite.he(k - 1, z) if k >= 1 else torch.zeros_like(z)


def _hermite_coefficients(k: int, max_degree: int) -> np.ndarray:
    out = np.zeros(max_degree + 1, dtype=np.float64)
    if k <= max_degree:
        out[k] = 1.0
    return out


def _hermite_k(k: int) -> Activation:
    return Activation(
        f"hermite:{k}",
        functools.partial(_hermite_function, k),
        functools.partial(_hermite_derivative, k),
        functools.partial(_hermite_coefficients, k),
    )


def _tanh_derivative(z: torch.Tensor) -> torch.Tensor:
    return 1 - torch.tanh(z) ** 2


def _erf_derivative(z: torch.Tensor) -> torch.Tensor:
    return (2 / _SQRT_PI) * torch.exp(-z * z)


def _square(z: torch.Tensor) -> torch.Tensor:
    return z * z


def _twice(z: torch.Tensor) -> torch.Tensor:
    return 2 * z


def _identity(z: torch.Tensor) -> torch.Tensor:
    return z


def _relu_derivative(z: torch.Tensor) -> torch.Tensor:
    return (z > 0).to(z.dtype)


def _sigmoid_derivative(z: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(z)
    return s * (1 - s)


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(
        "relu",
        torch.relu,
        _relu_derivative,
        hermite.relu_hermite_coefficients,
        positively_homogeneous=True,
        in_place=torch.Tensor.relu_,
    ),
    "tanh": Activation("tanh", torch.tanh, _tanh_derivative, in_place=torch.Tensor.tanh_),
    "erf": Activation("erf", torch.erf, _erf_derivative, in_place=torch.Tensor.erf_),
    "sigmoid": Activation(
        "sigmoid", torch.sigmoid, _sigmoid_derivative, in_place=torch.Tensor.sigmoid_
    ),
    "abs": Activation(
        "abs",
        torch.abs,
        torch.sign,
        _abs_coefficients,
        positively_homogeneous=True,
        in_place=torch.Tensor.abs_,
    ),
    "quadratic": Activation(
        "quadratic",
        _square,
        _twice,
        _polynomial_coefficients([0, 0, 1]),
        in_place=torch.Tensor.square_,
    ),
    "linear": Activation(
        "linear",
        _identity,
        torch.ones_like,
        _polynomial_coefficients([0, 1]),
        positively_homogeneous=True,
        in_place=_identity,
    ),
}
"""The named activations; ``"hermite:k"`` (k = 0 … ``HERMITE_MAX``) is built on request."""

HERMITE_MAX = 32
"""Largest k of ``"hermite:k"``."""


def activation_names() -> list[str]:
    """The names a spec may give (``"hermite:k"`` stands for k = 0 … HERMITE_MAX)."""
    return [*ACTIVATIONS, "hermite:k"]


def _allowed() -> str:
    return ", ".join(repr(n) for n in activation_names()) + " or an Activation / (σ, σ′) pair"


def resolve_activation(value) -> Activation:
    """The ``Activation`` a learner's ``activation=`` parameter names.

    Parameters
    ----------
    value : str, Activation or (callable, callable)
        A name of ``activation_names()``, an ``Activation``, or a pair (σ, σ′).

    Returns
    -------
    Activation

    Examples
    --------
    >>> resolve_activation("hermite:2").name
    'hermite:2'
    >>> resolve_activation("softmax")
    Traceback (most recent call last):
    ...
    ValueError: must be one of 'relu', 'tanh', 'erf', 'sigmoid', 'abs', 'quadratic', 'linear', 'hermite:k' or an Activation / (σ, σ′) pair, got 'softmax'
    """
    if isinstance(value, Activation):
        return value
    if isinstance(value, str):
        if value in ACTIVATIONS:
            return ACTIVATIONS[value]
        if value.startswith("hermite:"):
            degree = value.removeprefix("hermite:")
            if degree.isdigit() and int(degree) <= HERMITE_MAX:
                return _hermite_k(int(degree))
            raise ValueError(
                f"must be 'hermite:k' with an integer k in [0, {HERMITE_MAX}], got {value!r}"
            )
    if isinstance(value, tuple | list) and len(value) == 2 and all(map(callable, value)):
        return Activation.custom(value[0], value[1])
    shown = repr(value) if isinstance(value, str) else type(value).__name__
    raise ValueError(f"must be one of {_allowed()}, got {shown}")


def activation_spec(value):
    """The check of a learner's ``activation`` parameter: the value itself if it resolves."""
    resolve_activation(value)
    return value
