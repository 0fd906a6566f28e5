"""Metrics: excess risk E[(f − f*)²] on a fresh streamed test set, subspace alignment and
principal angles between a learned first layer and the target's principal subspace."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from replearn import limits
from replearn.data import DataStream
from replearn.targets import MultiIndexTarget
from replearn.validation import check_count

__all__ = [
    "RiskEstimate",
    "excess_risk",
    "subspace_alignment",
    "direction_cosines",
    "principal_angles",
    "DegreeEnergy",
    "low_degree_energy",
    "captured_degree_components",
    "step_gradient_agreement",
]


class RiskEstimate(NamedTuple):
    """Monte-Carlo estimate of E[(f(x) − f*(x))²] with its standard error."""

    risk: float
    stderr: float
    n_test: int

    def __float__(self) -> float:
        return self.risk


def _check_model(model, name: str = "model") -> None:
    """One TypeError line unless ``model`` has a callable ``predict`` (a function, a class
    or a module is refused with what to pass instead)."""
    if callable(getattr(model, "predict", None)) and not isinstance(model, type):
        return
    if isinstance(model, type):
        got = f"the class {model.__name__} (not an instance; fit one first)"
    elif callable(model):
        got = f"the function {getattr(model, '__qualname__', type(model).__name__)}"
    else:
        got = f"an object of type {type(model).__name__}"
    raise TypeError(
        f"{name}: must be a fitted estimator with a predict(X) method, such as "
        f"rl.OneStepNetwork(width=100).fit(X, y); got {got}"
        + (
            "; to score a function f, pass an object whose predict(X) returns f(X)"
            if callable(model) and not isinstance(model, type)
            else ""
        )
    )


def excess_risk(
    model,
    target: MultiIndexTarget,
    n_test: int = 100_000,
    seed: int = 1,
    chunk_size: int = 32_768,
    device: str | torch.device | None = None,
) -> RiskEstimate:
    """E_x[(f(x) − f*(x))²] on n_test fresh samples of the 'test' split of ``seed``.

    Standard error = std of the squared errors / √n_test. Sums are kept in float64.

    Parameters
    ----------
    model : object with ``predict``
        Any fitted learner; ``predict(X)`` gets float64 tensors (n, d).
    target : MultiIndexTarget
        f*.
    n_test : int
        Test samples, ≥ 2, streamed in chunks of ``chunk_size``.
    seed : int
        Seed of the noiseless ``"test"`` split (never shared with training data).
    chunk_size : int
        Rows per prediction call.
    device : str or torch.device, optional
        Where the test samples are drawn to; default: the model's ``device`` (else CPU).

    Returns
    -------
    RiskEstimate
        (risk, stderr, n_test); ``float(estimate)`` is the risk.

    Examples
    --------
    >>> import replearn as rl
    >>> target = rl.paper_target(d=8, seed=0)
    >>> class Oracle:                       # predicts f* itself: risk 0
    ...     def predict(self, X):
    ...         return target(X)
    >>> rl.excess_risk(Oracle(), target, n_test=1000)
    RiskEstimate(risk=0.0, stderr=0.0, n_test=1000)
    >>> X, y = rl.sample(target, n=2000, noise=0.5, seed=0)
    >>> net = rl.OneStepNetwork(width=40, seed=0).fit(X, y)
    >>> estimate = rl.excess_risk(net, target, n_test=10_000, seed=1)
    >>> 0.0 < float(estimate) < 1.0, estimate.stderr < 0.1   # below the zero predictor's 1
    (True, True)
    """
    _check_model(model)
    n_test = check_count("n_test", n_test, minimum=2)
    limits.check("n", n_test, "n_test (test samples, streamed)")  # bounded time, not memory
    if device is None:
        device = getattr(model, "device", "cpu")  # a learner's own device parameter
    # read once: cache_bytes=0 keeps none of its blocks (the same numbers either way)
    stream = DataStream(target, noise=0.0, seed=seed, split="test", dtype=torch.float64,
                        device=device, cache_bytes=0)  # fmt: skip
    total = total_sq = 0.0
    for X, _, f_star in stream.chunks(n_test, chunk_size, clean=True):
        error2 = (torch.as_tensor(model.predict(X)).to(torch.float64) - f_star) ** 2
        total += float(error2.sum())
        total_sq += float((error2 * error2).sum())
    mean = total / n_test
    variance = max(total_sq / n_test - mean * mean, 0.0) * n_test / (n_test - 1)
    return RiskEstimate(mean, math.sqrt(variance / n_test), n_test)


def _orthonormal_rows(U: torch.Tensor) -> torch.Tensor:
    q, _ = torch.linalg.qr(U.T)
    return q.T


def subspace_alignment(W, U) -> float:
    """‖Π* Wᵀ‖²_F / ‖W‖²_F: the share of the first layer's energy inside span(U).

    Parameters
    ----------
    W : array_like, shape (m, d)
        A first layer, neurons as rows.
    U : array_like, shape (r, d)
        Rows spanning the subspace (orthonormalised here).

    Returns
    -------
    float
        In [0, 1]: 1 when every w_j lies in span(U), about r/d for random rows; 0 for W = 0.

    Examples
    --------
    >>> import torch
    >>> U = torch.eye(1, 4)                                   # span(e_1)
    >>> subspace_alignment(torch.tensor([[3.0, 0, 0, 0], [0, 4.0, 0, 0]]), U)  # 9/25
    0.36
    """
    W = torch.as_tensor(W).to(torch.float64).cpu()
    U = _orthonormal_rows(torch.as_tensor(U).to(torch.float64).cpu())
    total = float((W * W).sum())
    if total == 0.0:
        return 0.0
    return float(((W @ U.T) ** 2).sum()) / total


def direction_cosines(W, U) -> torch.Tensor:
    """cos(w_j, u_k) = w_j·u_k / (‖w_j‖·‖u_k‖): (m, r) float64 on the CPU.

    W is (m, d) (neurons as rows), U is (r, d) (one direction per row, e.g. a target's U; not
    orthonormalised, so column k is about u_k itself). A zero neuron has cosine 0.

    Parameters
    ----------
    W : tensor or array_like, shape (m, d)
        Neurons as rows (e.g. a fitted ``W_``).
    U : tensor or array_like, shape (r, d)
        Directions as rows (e.g. ``target.U``).

    Returns
    -------
    torch.Tensor
        (m, r) float64 cosines.

    Examples
    --------
    >>> import torch, replearn as rl
    >>> W = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    >>> rl.direction_cosines(W, torch.tensor([[1.0, 0.0]])).flatten().tolist()
    [1.0, 0.7071067811865475, 0.0]
    """
    W = torch.as_tensor(W).to(torch.float64).cpu()
    U = torch.as_tensor(U).to(torch.float64).cpu()
    if W.ndim != 2 or U.ndim != 2 or W.shape[1] != U.shape[1]:
        raise ValueError(
            f"W (m, d) and U (r, d) must share d, got shapes {tuple(W.shape)} and {tuple(U.shape)}"
        )
    U_norm = U.norm(dim=1)
    if not bool((U_norm > 0).all()):
        raise ValueError("U must have no zero rows (a direction needs a length)")
    W_norm = W.norm(dim=1)
    cosines = (W @ U.T) / U_norm[None, :]
    return torch.where(W_norm[:, None] > 0, cosines / W_norm.clamp_min(1e-300)[:, None], 0.0)


def principal_angles(W, U, rank: int | None = None) -> torch.Tensor:
    """Principal angles (radians, ascending) between span(U) and the top-r row space of W.

    The row space of W is summarised by its top ``rank`` (default r) right singular vectors;
    cos θ_i are the singular values of V_Wᵀ·U_orthᵀ.

    Parameters
    ----------
    W : array_like, shape (m, d)
        A first layer, neurons as rows.
    U : array_like, shape (r, d)
        Rows spanning the target subspace.
    rank : int, optional
        How many top right singular vectors of W stand for its row space (default r).

    Returns
    -------
    torch.Tensor
        float64, ascending angles θ_i in [0, π/2]; 0 means a shared direction.

    Examples
    --------
    >>> import math, torch
    >>> U = torch.eye(1, 3)                                       # span(e_1)
    >>> W = torch.tensor([[1.0, 1.0, 0.0], [2.0, 2.0, 0.0]])       # one direction, 45° off
    >>> round(float(principal_angles(W, U)[0]) / math.pi * 180, 6)
    45.0
    """
    W = torch.as_tensor(W).to(torch.float64).cpu()
    U = _orthonormal_rows(torch.as_tensor(U).to(torch.float64).cpu())
    rank = U.shape[0] if rank is None else rank
    _, _, Vh = torch.linalg.svd(W, full_matrices=False)
    cosines = torch.linalg.svdvals(Vh[:rank] @ U.T).clamp(-1.0, 1.0)
    return torch.sort(torch.arccos(cosines)).values


class DegreeEnergy(NamedTuple):
    """Hermite energy of a function h of x ~ N(0, I_d) by degree: 0, 1, 2 and ≥ 3 (the rest)."""

    degree0: float
    degree1: float
    degree2: float
    higher: float
    total: float


def low_degree_energy(
    fn, d: int, n: int = 200_000, seed: int = 2, chunk_size: int = 32_768, device="cpu"
) -> DegreeEnergy:
    """Energy of h by Hermite degree, in all d dimensions, by unbiased Monte Carlo.

    With orthonormal Hermite bases: degree 0: E[h]²; degree 1: ‖E[h·x]‖²;
    degree 2: ‖E[h·(xxᵀ − I)]‖²_F / 2; ≥ 3: E[h²] minus those. Each squared mean is
    estimated without bias as the inner product of the means over two independent halves.
    ``fn`` maps X (n, d) float64 → h(X) (n,).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 4:
        raise ValueError(f"n must be an integer >= 4, got {n!r}")
    from replearn.targets import MultiIndexTarget

    dummy = MultiIndexTarget(torch.eye(1, d, dtype=torch.float64), {(0,): 0.0})
    stream = DataStream(
        dummy, noise=0.0, seed=seed, split="diagnostics", dtype=torch.float64, device=device
    )
    half = n // 2
    sums = []
    total = 0.0
    for start in (0, half):
        s0 = torch.zeros((), dtype=torch.float64, device=device)
        s1 = torch.zeros(d, dtype=torch.float64, device=device)
        s2 = torch.zeros(d, d, dtype=torch.float64, device=device)
        for X, _ in stream.chunks(half, chunk_size, start=start):
            h = torch.as_tensor(fn(X)).to(torch.float64)
            s0 += h.sum()
            s1 += h @ X
            s2 += (X * h[:, None]).T @ X - h.sum() * torch.eye(
                d, dtype=torch.float64, device=device
            )
            total += float((h * h).sum())
        sums.append((s0 / half, s1 / half, s2 / half))
    (a0, a1, a2), (b0, b1, b2) = sums
    e0, e1, e2 = float(a0 * b0), float(a1 @ b1), float((a2 * b2).sum()) / 2
    total /= 2 * half
    return DegreeEnergy(e0, e1, e2, total - e0 - e1 - e2, total)


def captured_degree_components(
    model, target: MultiIndexTarget, n_test: int = 100_000, seed: int = 3, chunk_size: int = 32_768
) -> dict[int, float]:
    """{k: E[f·f*_k] / E[f*_k²]} for each degree k of f*: the share of f*'s degree-k part learned.

    f*_k is the exact degree-k Hermite component of f*; 1 means learned, 0 means missed.
    This is what shows a kernel below d^k samples learning degrees < k only.
    """
    components = {
        k: MultiIndexTarget(target.U, {a: c for a, c in target.terms.items() if sum(a) == k})
        for k in target.degree_energy(normalized=False)
    }
    _check_model(model)
    n_test = check_count("n_test", n_test, minimum=1)
    limits.check("n", n_test, "n_test (test samples, streamed)")
    device = getattr(model, "device", "cpu")
    stream = DataStream(
        target, noise=0.0, seed=seed, split="test", dtype=torch.float64, device=device
    )
    inner = dict.fromkeys(components, 0.0)
    for X, _ in stream.chunks(n_test, chunk_size):
        prediction = torch.as_tensor(model.predict(X)).to(torch.float64)
        for k, component in components.items():
            inner[k] += float(prediction @ component(X))
    return {k: inner[k] / n_test / components[k].norm2() for k in components}


def step_gradient_agreement(model, target: MultiIndexTarget) -> dict[str, float]:
    """Empirical first step vs its population prediction, for a fitted OneStepNetwork.

    The step is w_j¹ = 2η₁a_j·ĝ_j with ĝ_j = mean_i(y_i x_i 1[w_j⁰·x_i ≥ 0]); its population
    leading term is g_j = H·ŵ_j/√(2π) (ŵ_j = w_j⁰/‖w_j⁰‖) — so ∇_{w_j}L ≈ −2a_j·H·w_j/√(2π).
    Returns the mean cosine between ĝ_j and g_j, and ‖ĝ − g‖_F/‖g‖_F.
    """
    init = model.initial_network_
    half = init.W.shape[0] // 2
    W0 = init.W[:half].to(torch.float64).cpu()
    a = init.a[:half].to(torch.float64).cpu()
    empirical = model.W_[:half].to(torch.float64).cpu() / (2.0 * model.eta1_ * a[:, None])
    unit = W0 / W0.norm(dim=1, keepdim=True)
    predicted = unit @ target.hessian().T / math.sqrt(2 * math.pi)
    cosines = torch.nn.functional.cosine_similarity(empirical, predicted, dim=1)
    relative = float(torch.linalg.norm(empirical - predicted) / torch.linalg.norm(predicted))
    return {"mean_cosine": float(cosines.mean()), "relative_error": relative}
