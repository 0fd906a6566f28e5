"""The two-layer network f(x) = c·Σ_j a_j·σ(w_j·x + b_j), width m, and its initialisations.

The paper's network is σ = ReLU, c = 1 (no 1/m scaling), with the symmetric initialisation
(so that f ≡ 0 at init): neuron j and its partner j + m/2 have a_{j+m/2} = −a_j,
w_{j+m/2} = w_j, b_{j+m/2} = b_j, with a_j uniform on {−1, +1}, w_j ~ N(0, I_d/d), b_j = 0
(``symmetric_init``). The field's other models (``initial_network``) change

- the output scale c ∈ {1 (the paper), 1/√m, 1/m} or a number (``resolve_output_scale``),
- the second layer: ``"paper"`` (±1 in symmetric pairs), ``"signs"`` (±1/√m, independent),
  ``"gaussian"`` (N(0, 1/m)), ``"constant"`` (1/√m for every neuron), ``"hypercube"``
  (+1/√m for the first 20 neurons, −1/√m for the next 20, independent ±1/√m after: the
  multiple_steps notebook of Dandi et al. 2023, which plots those 40) or a given (m,) vector,
- the first layer: ``"gaussian"`` (N(0, I_d/d), the paper), ``"unit_rows"`` (Gaussian rows
  scaled to norm 1), ``"orthogonal"`` (unit rows orthogonal to a given subspace span U, and
  to each other when m ≤ d − r: Gram–Schmidt of Gaussian rows projected off span U, as Dandi
  et al. 2024 start their student) or a given (m, d) matrix,
- the activation σ (``replearn.activations``).

Dandi et al. 2023 (f = aᵀσ(Wx)/√p, a ~ N(0, 1/p) or ±1/√p, W ~ N(0, I/d)): c = 1/√m,
second layer "gaussian" or "signs", first layer "gaussian". Cui et al. 2024: σ = tanh, c = 1/√m, "constant" (a_j = 1/√m),
"unit_rows", no biases. Dandi et al. 2024 (batch reuse): σ = ReLU, width 2, a given
a = (1, −1)/√2, rows orthogonal to the teacher.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from replearn.activations import ACTIVATIONS, Activation
from replearn.validation import check_width, is_number

__all__ = [
    "TwoLayerNetwork",
    "TwoLayerReLU",
    "initial_network",
    "resolve_output_scale",
    "output_scale_spec",
    "first_layer_spec",
    "second_layer_spec",
    "directions_spec",
    "resolve_directions",
    "check_network_options",
    "FIRST_LAYERS",
    "SECOND_LAYERS",
    "symmetric_init",
    "relu_features",
    "ReluFeatureMap",
    "ActivationFeatureMap",
    "feature_map",
    "scratch",
    "normal_biases",
    "BIAS_SEED_OFFSET",
]

BIAS_SEED_OFFSET = 1_000_003
"""Algorithm 1's new biases (and random features' biases) come from seed + this offset."""


@dataclass
class TwoLayerNetwork:
    """Parameters of f(x) = c·Σ_j a_j·σ(w_j·x + b_j): W (m, d), b (m,), a (m,), σ, c.

    Parameters
    ----------
    W : torch.Tensor, shape (m, d)
        First layer, neurons as rows.
    b : torch.Tensor, shape (m,)
        Biases.
    a : torch.Tensor, shape (m,)
        Second layer.
    activation : Activation
        σ (default ReLU, the paper's).
    output_scale : float
        c (default 1, the paper's).

    Examples
    --------
    >>> import torch
    >>> net = symmetric_init(width=4, d=3, seed=0)     # partners j, j + 2 cancel: f ≡ 0
    >>> net.width, round(net(torch.randn(5, 3)).abs().max().item(), 6)
    (4, 0.0)
    >>> net = TwoLayerNetwork(W=torch.eye(2), b=torch.zeros(2), a=torch.tensor([1.0, -1.0]))
    >>> net(torch.tensor([[3.0, 1.0], [-1.0, 2.0]]))   # ReLU(x_1) − ReLU(x_2)
    tensor([ 2., -2.])
    """

    W: torch.Tensor
    b: torch.Tensor
    a: torch.Tensor
    activation: Activation = field(default_factory=lambda: ACTIVATIONS["relu"])
    output_scale: float = 1.0

    @property
    def width(self) -> int:
        return self.W.shape[0]

    @property
    def is_paper_relu(self) -> bool:
        """σ = ReLU and c = 1: the paper's network (its fused code paths apply)."""
        return self.activation.is_relu and self.output_scale == 1.0

    def preactivations(self, X: torch.Tensor) -> torch.Tensor:
        """X Wᵀ + b, shape (n, m)."""
        return torch.addmm(self.b, X, self.W.T)

    def features(self, X: torch.Tensor) -> torch.Tensor:
        """σ(X Wᵀ + b), shape (n, m) (without the output scale c)."""
        if self.activation.is_relu:
            return relu_features(X, self.W, self.b)
        return self.activation(self.preactivations(X))

    def __call__(self, X: torch.Tensor, chunk_size: int = 32_768) -> torch.Tensor:
        """f(X) = c·σ(X Wᵀ + b)·a, computed chunk by chunk; shape (n,).

        Chunks of at most ``PREDICT_ROWS`` rows (``chunk_size`` if smaller): each chunk's
        features stay in cache until multiplied by a (a 32 768 × 1 000 chunk written out and
        read back costs 7× the time of 32 slices of 1 024 rows, same numbers row by row)."""
        rows = min(chunk_size, PREDICT_ROWS)
        if self.is_paper_relu:
            features = ReluFeatureMap(self.W, self.b)
            pieces = [features(X[i : i + rows]) @ self.a for i in range(0, len(X), rows)]
        else:
            c = self.output_scale
            pieces = [c * (self.features(X[i : i + rows]) @ self.a) for i in range(0, len(X), rows)]
        return torch.cat(pieces) if pieces else X.new_zeros(0)


TwoLayerReLU = TwoLayerNetwork
"""The paper's name for the network (σ = ReLU and c = 1 are ``TwoLayerNetwork``'s defaults)."""


PREDICT_ROWS = 1024  # rows of features formed at once by TwoLayerReLU.__call__


def relu_features(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """ReLU(X Wᵀ + b) for X (n, d), W (m, d), b (m,): shape (n, m) (one fused pass, in place)."""
    return torch.addmm(b, X, W.T).relu_()


def scratch(
    buffer: torch.Tensor | None, rows: int, columns: int, like: torch.Tensor
) -> torch.Tensor:
    """A (rows, columns) tensor like ``like`` (dtype, device): the first rows of ``buffer`` when
    it is big enough and of that kind, else a new one. Passes over chunks reuse one buffer: a
    fresh (c, m) tensor per chunk is a page-faulted allocation every time (glibc maps blocks
    above 32 MB anew: 70 ms for a 32 768 × 1 000 float32 chunk, as long as its product)."""
    if (
        buffer is None
        or buffer.shape[0] < rows
        or buffer.shape[1] != columns
        or buffer.dtype != like.dtype
        or buffer.device != like.device
    ):
        return torch.empty(rows, columns, dtype=like.dtype, device=like.device)
    return buffer[:rows]


class ReluFeatureMap:
    """X ↦ ReLU(X Wᵀ + b) for a pass over chunks, written into one reused buffer.

    Each result is valid until the next call (the pass consumes it first); the numbers are
    those of ``relu_features``, bit for bit.

    Examples
    --------
    >>> import torch
    >>> features = ReluFeatureMap(torch.eye(2), torch.zeros(2))
    >>> features(torch.tensor([[1.0, -2.0]]))
    tensor([[1., 0.]])
    """

    def __init__(self, W: torch.Tensor, b: torch.Tensor):
        self.W, self.b = W, b
        self._buffer: torch.Tensor | None = None

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        out = scratch(self._buffer, X.shape[0], self.W.shape[0], X)
        if self._buffer is None or out.data_ptr() != self._buffer.data_ptr():
            self._buffer = out
        return torch.addmm(self.b, X, self.W.T, out=out).relu_()


class ActivationFeatureMap:
    """X ↦ c·σ(X Wᵀ + b) for a pass over chunks, written into one reused buffer.

    ``ReluFeatureMap``'s shape for any σ (``Activation.apply_`` in place on the buffer) and an
    output scale c (1: no multiplication). Each result is valid until the next call.

    Parameters
    ----------
    W : torch.Tensor, shape (m, d)
    b : torch.Tensor, shape (m,)
    activation : Activation
        σ.
    scale : float
        c, multiplied into the features (the head's features are those of f = c·aᵀσ(Wx + b)).

    Examples
    --------
    >>> import torch
    >>> from replearn.activations import resolve_activation
    >>> features = ActivationFeatureMap(torch.eye(2), torch.zeros(2), resolve_activation("abs"), 0.5)
    >>> features(torch.tensor([[1.0, -2.0]]))
    tensor([[0.5000, 1.0000]])
    """

    def __init__(
        self, W: torch.Tensor, b: torch.Tensor, activation: Activation, scale: float = 1.0
    ):
        self.W, self.b, self.activation, self.scale = W, b, activation, float(scale)
        self._buffer: torch.Tensor | None = None

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        out = scratch(self._buffer, X.shape[0], self.W.shape[0], X)
        if self._buffer is None or out.data_ptr() != self._buffer.data_ptr():
            self._buffer = out
        out = self.activation.apply_(torch.addmm(self.b, X, self.W.T, out=out))
        return out if self.scale == 1.0 else out.mul_(self.scale)


def feature_map(
    W: torch.Tensor, b: torch.Tensor, activation: Activation | None = None, scale: float = 1.0
):
    """The feature pass X ↦ c·σ(X Wᵀ + b) of a frozen first layer: ``ReluFeatureMap`` (the
    paper's fused pass, unchanged) for σ = ReLU and c = 1, else ``ActivationFeatureMap``.

    Parameters
    ----------
    W : torch.Tensor, shape (m, d)
    b : torch.Tensor, shape (m,)
    activation : Activation, optional
        σ (default ReLU).
    scale : float
        c.

    Returns
    -------
    ReluFeatureMap or ActivationFeatureMap

    Examples
    --------
    >>> import torch
    >>> type(feature_map(torch.eye(2), torch.zeros(2))).__name__
    'ReluFeatureMap'
    """
    activation = activation if activation is not None else ACTIVATIONS["relu"]
    if activation.is_relu and float(scale) == 1.0:
        return ReluFeatureMap(W, b)
    return ActivationFeatureMap(W, b, activation, scale)


def symmetric_init(
    width: int,
    d: int,
    seed: int,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> TwoLayerReLU:
    """The paper's symmetric initialisation; a pure function of (width, d, seed).

    Drawn on the CPU in float64 from ``torch.Generator().manual_seed(seed)``, then cast and
    moved, so the same seed gives the same network on every device.

    Parameters
    ----------
    width : int
        m, even: neuron j and j + m/2 are partners (a opposite, w and b equal).
    d : int
        Input dimension; w_j ~ N(0, I_d/d).
    seed : int
        Seeds W and a.
    dtype : torch.dtype
        Of the returned tensors.
    device : str or torch.device
        Where they live.

    Returns
    -------
    TwoLayerReLU
        With b = 0 and a_j uniform on {−1, +1}.

    Examples
    --------
    >>> net = symmetric_init(width=6, d=4, seed=0)
    >>> bool(torch.equal(net.W[:3], net.W[3:])), bool(torch.equal(net.a[:3], -net.a[3:]))
    (True, True)
    >>> sorted(set(net.a.tolist())), float(net.b.abs().sum())
    ([-1.0, 1.0], 0.0)
    """
    width = check_width(width)
    half = width // 2
    generator = torch.Generator().manual_seed(int(seed))
    W_half = torch.randn(half, d, generator=generator, dtype=torch.float64) / d**0.5
    a_half = 2.0 * torch.randint(0, 2, (half,), generator=generator).to(torch.float64) - 1.0
    W = torch.cat([W_half, W_half])
    a = torch.cat([a_half, -a_half])
    b = torch.zeros(width, dtype=torch.float64)
    return TwoLayerReLU(
        W=W.to(device=device, dtype=dtype),
        b=b.to(device=device, dtype=dtype),
        a=a.to(device=device, dtype=dtype),
    )


def normal_biases(
    count: int, seed: int, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """b ~ N(0, 1)^count: Algorithm 1's step-3 biases, a pure function of (count, seed).

    Drawn on the CPU in float64 from ``torch.Generator().manual_seed(seed + BIAS_SEED_OFFSET)``
    (independent of the initialisation's generator), then cast and moved.
    """
    generator = torch.Generator().manual_seed(int(seed) + BIAS_SEED_OFFSET)
    b = torch.randn(count, generator=generator, dtype=torch.float64)
    return b.to(device=device, dtype=dtype)


# -- the field's parametrisations and initialisations ------------------------------------------
FIRST_LAYERS = ("gaussian", "unit_rows", "orthogonal")
"""Named first-layer initialisations (or an (m, d) array: W⁰ as given)."""
SECOND_LAYERS = ("paper", "signs", "gaussian", "constant", "hypercube")
"""Named second-layer initialisations (or an (m,) array: a as given)."""
HYPERCUBE_FIXED = 20
"""``second_layer="hypercube"``: neurons 0…19 have a = +1/√m, 20…39 a = −1/√m (Dandi et al.
2023's ``num_neur_plus``); when m < 40, k = ⌈m/2⌉ neurons +, then the rest −."""
OUTPUT_SCALES = ("1/sqrt(m)", "1/m")
"""Named output scales c (or a number > 0; 1 is the paper's)."""


def resolve_output_scale(value, width: int) -> float:
    """c for ``output_scale=`` value at width m: a number > 0, ``"1/sqrt(m)"`` or ``"1/m"``.

    Examples
    --------
    >>> resolve_output_scale("1/sqrt(m)", 4), resolve_output_scale("1/m", 4), resolve_output_scale(1, 4)
    (0.5, 0.25, 1.0)
    """
    output_scale_spec(value)
    if value == "1/sqrt(m)":
        return 1.0 / math.sqrt(width)
    if value == "1/m":
        return 1.0 / width
    return float(value)


def output_scale_spec(value):
    """The check of ``output_scale``: a number > 0, '1/sqrt(m)' or '1/m'."""
    if isinstance(value, str) and value in OUTPUT_SCALES:
        return value
    if not is_number(value) or value <= 0:
        raise ValueError(f"must be a number > 0, '1/sqrt(m)' or '1/m', got {value!r}")
    return float(value)


def _array_or_name(value, names: tuple[str, ...], ndim: int, what: str):
    if isinstance(value, str):
        if value in names:
            return value
    else:
        try:
            array = torch.as_tensor(value, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            array = None
        if array is not None and array.ndim == ndim and array.numel() > 0:
            if not bool(torch.isfinite(array).all()):
                raise ValueError(f"must be finite: the given {what} has non-finite entries")
            return value
    allowed = ", ".join(repr(n) for n in names)
    shown = repr(value) if isinstance(value, str) else type(value).__name__
    raise ValueError(f"must be one of {allowed} or a finite {what}, got {shown}")


def first_layer_spec(value):
    """The check of ``first_layer``: 'gaussian', 'unit_rows', 'orthogonal' or an (m, d) array."""
    return _array_or_name(value, FIRST_LAYERS, 2, "(m, d) array W⁰")


def second_layer_spec(value):
    """The check of ``second_layer``: 'paper', 'signs', 'gaussian', 'constant', 'hypercube' or
    an (m,) array."""
    return _array_or_name(value, SECOND_LAYERS, 1, "(m,) array a")


def initial_network(
    width: int,
    d: int,
    seed: int,
    first_layer="gaussian",
    second_layer="paper",
    activation: Activation | None = None,
    output_scale: float = 1.0,
    directions: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> TwoLayerNetwork:
    """θ⁰ of f(x) = c·Σ_j a_j·σ(w_j·x) for the named (or given) first and second layers.

    A pure function of its arguments: drawn on the CPU in float64 from
    ``torch.Generator().manual_seed(seed)`` — first the first layer, then the second — then
    cast and moved. ``first_layer="gaussian", second_layer="paper"`` is ``symmetric_init``,
    bit for bit. Biases are 0.

    Parameters
    ----------
    width : int
        m ≥ 1; even for ``second_layer="paper"`` (neurons j and j + m/2 are partners: equal
        rows, opposite a, so f ≡ 0 at init).
    d : int
        Input dimension.
    seed : int
        Seeds W⁰ and a.
    first_layer : {"gaussian", "unit_rows", "orthogonal"} or array (m, d)
        "gaussian": w_j ~ N(0, I_d/d); "unit_rows": the same scaled to ‖w_j‖ = 1;
        "orthogonal": Gaussian rows with their projection on span(``directions``) removed,
        then orthonormalised (Gram–Schmidt in row order) when m ≤ d − r, else scaled to unit
        norm; an array: W⁰ as given (copied).
    second_layer : {"paper", "signs", "gaussian", "constant", "hypercube"} or array (m,)
        "paper": ±1 in symmetric pairs; "signs": independent ±1/√m; "gaussian": N(0, 1/m);
        "constant": 1/√m for every neuron; "hypercube": "signs" with a_j = +1/√m for
        j < 20 and −1/√m for 20 ≤ j < 40 (``HYPERCUBE_FIXED``); an array: a as given (copied).
    activation : Activation, optional
        σ (default ReLU).
    output_scale : float
        c, already resolved (``resolve_output_scale``).
    directions : tensor (r, d), optional
        The target's directions U, for ``first_layer="orthogonal"``.
    dtype, device
        Of the returned tensors.

    Returns
    -------
    TwoLayerNetwork

    Examples
    --------
    >>> net = initial_network(3, 4, seed=0, first_layer="unit_rows", second_layer="constant")
    >>> [round(float(x), 6) for x in net.W.norm(dim=1)], [round(float(x), 6) for x in net.a]
    ([1.0, 1.0, 1.0], [0.57735, 0.57735, 0.57735])
    >>> U = torch.eye(4)[:1]
    >>> net = initial_network(2, 4, seed=0, first_layer="orthogonal", second_layer="signs",
    ...                       directions=U)
    >>> float(net.W[:, 0].abs().max())
    0.0
    """
    activation = activation if activation is not None else ACTIVATIONS["relu"]
    first_layer, second_layer = first_layer_spec(first_layer), second_layer_spec(second_layer)
    if (
        isinstance(first_layer, str)
        and first_layer == "gaussian"
        and isinstance(second_layer, str)
        and second_layer == "paper"
    ):
        net = symmetric_init(width, d, seed, dtype, device)
        return TwoLayerNetwork(net.W, net.b, net.a, activation, float(output_scale))
    if isinstance(second_layer, str) and second_layer == "paper":
        width = check_width(width)
        if not isinstance(first_layer, str):
            raise ValueError(
                "second_layer='paper' pairs neurons j and j + m/2 with equal rows; with a given "
                "first_layer use second_layer='signs', 'gaussian', 'constant' or an array"
            )
    elif not (isinstance(width, int) and not isinstance(width, bool) and width >= 1):
        raise ValueError(f"width must be an integer ≥ 1, got {width!r}")
    generator = torch.Generator().manual_seed(int(seed))
    paired = isinstance(second_layer, str) and second_layer == "paper"
    rows = width // 2 if paired else width
    W = _first_layer(first_layer, rows, d, generator, directions)
    if paired:
        a_half = 2.0 * torch.randint(0, 2, (rows,), generator=generator).to(torch.float64) - 1.0
        W, a = torch.cat([W, W]), torch.cat([a_half, -a_half])
    else:
        a = _second_layer(second_layer, width, generator)
    if W.shape != (width, d):
        raise ValueError(
            f"first_layer must have shape ({width}, {d}) (width, d), got {tuple(W.shape)}"
        )
    if a.shape != (width,):
        raise ValueError(f"second_layer must have shape ({width},) (width,), got {tuple(a.shape)}")
    b = torch.zeros(width, dtype=torch.float64)
    return TwoLayerNetwork(
        W=W.to(device=device, dtype=dtype),
        b=b.to(device=device, dtype=dtype),
        a=a.to(device=device, dtype=dtype),
        activation=activation,
        output_scale=float(output_scale),
    )


def _first_layer(value, rows: int, d: int, generator, directions) -> torch.Tensor:
    if not isinstance(value, str):
        return torch.as_tensor(value, dtype=torch.float64).clone()
    W = torch.randn(rows, d, generator=generator, dtype=torch.float64) / d**0.5
    if value == "unit_rows":
        return W / W.norm(dim=1, keepdim=True)
    if value == "orthogonal":
        if directions is None:
            raise ValueError(
                "first_layer='orthogonal' needs the target's directions (rows orthogonal to "
                "span U): give the learner the target or its (r, d) directions"
            )
        U = torch.as_tensor(directions, dtype=torch.float64)
        if U.ndim != 2 or U.shape[1] != d:
            raise ValueError(f"directions must be an (r, {d}) array, got shape {tuple(U.shape)}")
        Q, _ = torch.linalg.qr(U.T)  # orthonormal basis of span U, (d, r)
        W = W - (W @ Q) @ Q.T
        if rows <= d - Q.shape[1]:  # orthonormal rows, as Dandi et al. 2024's ``set_weight``
            basis, R = torch.linalg.qr(W.T)  # (d, rows); signs fixed so W⁰ is a function of W
            return (basis * torch.sign(torch.diagonal(R)).where(torch.diagonal(R) != 0, 1.0)).T
        return W / W.norm(dim=1, keepdim=True)
    return W


def _second_layer(value, width: int, generator) -> torch.Tensor:
    if not isinstance(value, str):
        return torch.as_tensor(value, dtype=torch.float64).clone().reshape(-1)
    scale = 1.0 / math.sqrt(width)
    if value == "signs":
        return scale * (
            2.0 * torch.randint(0, 2, (width,), generator=generator).to(torch.float64) - 1.0
        )
    if value == "gaussian":
        return scale * torch.randn(width, generator=generator, dtype=torch.float64)
    if value == "hypercube":  # the signs of the first 2k neurons are fixed: k +, then k −
        a = _second_layer("signs", width, generator)
        k = min(HYPERCUBE_FIXED, (width + 1) // 2)
        a[:k], a[k : 2 * k] = scale, -scale
        return a
    return torch.full((width,), scale, dtype=torch.float64)  # "constant"


def directions_spec(value):
    """The check of a learner's ``directions``: None, a target with ``U`` (a
    ``MultiIndexTarget``) or a finite (r, d) array of directions."""
    if value is None:
        return None
    U = getattr(value, "U", value)
    try:
        array = torch.as_tensor(U, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        array = None
    if array is None or array.ndim != 2 or array.numel() == 0:
        raise ValueError(
            f"must be None, a target with directions U or an (r, d) array, got {type(value).__name__}"
        )
    if not bool(torch.isfinite(array).all()):
        raise ValueError("must be finite: the given directions have non-finite entries")
    return value


def resolve_directions(value) -> torch.Tensor | None:
    """The (r, d) float64 directions of ``directions=``: a target's U, an array, or None.

    Examples
    --------
    >>> resolve_directions([[1.0, 0.0]])
    tensor([[1., 0.]], dtype=torch.float64)
    >>> resolve_directions(None) is None
    True
    """
    directions_spec(value)
    if value is None:
        return None
    return torch.as_tensor(getattr(value, "U", value), dtype=torch.float64)


def check_network_options(width, first_layer, second_layer, directions=None) -> None:
    """The rules between a learner's ``width``, ``first_layer``, ``second_layer`` and
    ``directions`` that need no data: one-line ``ValueError`` before any work.

    - ``second_layer="paper"`` (symmetric pairs): an even width, and a named first layer;
    - a given W⁰ has ``width`` rows, a given a has ``width`` entries;
    - ``first_layer="orthogonal"`` needs ``directions``.

    Parameters
    ----------
    width : int
        m (already checked to be an integer ≥ 1).
    first_layer, second_layer, directions
        As ``initial_network`` (already checked one by one).

    Examples
    --------
    >>> check_network_options(4, "gaussian", "paper")
    >>> check_network_options(3, "gaussian", "paper")
    Traceback (most recent call last):
    ...
    ValueError: width must be an even integer ≥ 2, got 3
    """
    paired = isinstance(second_layer, str) and second_layer == "paper"
    if paired:
        check_width(width)
        if not isinstance(first_layer, str):
            raise ValueError(
                "second_layer='paper' pairs neurons j and j + m/2 with equal rows; with a given "
                "first_layer use second_layer='signs', 'gaussian', 'constant' or an array"
            )
    if not isinstance(first_layer, str):
        rows = torch.as_tensor(first_layer).shape[0]
        if rows != width:
            raise ValueError(f"first_layer must have {width} rows (width), got {rows}")
    if not isinstance(second_layer, str):
        size = torch.as_tensor(second_layer).shape[0]
        if size != width:
            raise ValueError(f"second_layer must have {width} entries (width), got {size}")
    if isinstance(first_layer, str) and first_layer == "orthogonal" and directions is None:
        raise ValueError(
            "first_layer='orthogonal' needs directions: the target (or its (r, d) directions U) "
            "whose span the rows of W⁰ avoid"
        )
