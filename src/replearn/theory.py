"""What the theory predicts for a target — thresholds and plateaus to overlay on measurements.

- Theorem 1 (Algorithm 1): n ≳ d²·κ²·r samples suffice (constants and logs dropped), with
  width m ≳ r^p; the sample-complexity exponent in d is 2.
- Kernels (random features, NTK; Ghorbani et al. 2019/2020): with d^k ≤ n < d^{k+1} samples a
  rotation-invariant kernel learns only the degree-≤k Hermite part of f*, so its excess risk
  is the energy of f* above degree k (the "staircase"); the exponent is the smallest k whose
  remaining energy is below the risk threshold (= p for a full-degree target).
- The population first step of neuron j is ≈ −2·a_j·H·w_j/√(2π): it lands in span(H) = S*.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from replearn.targets import MultiIndexTarget

__all__ = [
    "one_step_threshold",
    "one_step_width",
    "kernel_learnable_degree",
    "kernel_plateau",
    "kernel_staircase",
    "kernel_threshold",
    "best_degree_risk",
    "predicted_exponents",
    "population_step_direction",
    "summary",
]


def one_step_threshold(target: MultiIndexTarget) -> float:
    """n ≈ d²·κ²·r (Theorem 1, constants dropped); ∞ for a degenerate Hessian."""
    return float(target.d**2 * target.kappa**2 * target.r)


def one_step_width(target: MultiIndexTarget) -> float:
    """m ≈ r^p neurons (Theorem 1, constants dropped)."""
    return float(target.r**target.degree)


def kernel_learnable_degree(n: float, d: int) -> int:
    """k with d^k ≤ n < d^{k+1}: the highest Hermite degree a kernel learns from n samples."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if d < 2:
        raise ValueError(f"d must be >= 2 for the kernel staircase, got {d}")
    k = int(math.floor(math.log(n) / math.log(d) + 1e-12))
    return max(k, 0)


def best_degree_risk(target: MultiIndexTarget, k: int) -> float:
    """E[(f* − P_{≤k} f*)²]: the risk of the best degree-≤k predictor (energy above k)."""
    return target.energy_above(k, normalized=False)


def kernel_plateau(target: MultiIndexTarget, n: float) -> float:
    """Predicted kernel risk at n samples: the energy of f* above degree ⌊log_d n⌋."""
    return best_degree_risk(target, kernel_learnable_degree(n, target.d))


def kernel_staircase(
    target: MultiIndexTarget, max_log_d_n: float | None = None
) -> list[tuple[float, float, float]]:
    """[(log_d n from, log_d n to, predicted risk)] steps of the kernel staircase."""
    top = target.degree + 1 if max_log_d_n is None else max_log_d_n
    steps = []
    for k in range(0, int(math.ceil(top))):
        steps.append((float(k), float(min(k + 1, top)), best_degree_risk(target, k)))
    return steps


def kernel_threshold(target: MultiIndexTarget, epsilon: float) -> float:
    """Smallest n = d^k at which the staircase risk is ≤ ε (∞ if never)."""
    for k in range(0, target.degree + 1):
        if best_degree_risk(target, k) <= epsilon:
            return float(target.d**k)
    return math.inf


def predicted_exponents(target: MultiIndexTarget, epsilon: float) -> dict[str, float]:
    """Exponent s in n*(d) ∝ d^s: 2 for Algorithm 1, the kernel's needed degree for kernels."""
    needed = next(
        (k for k in range(target.degree + 1) if best_degree_risk(target, k) <= epsilon),
        math.inf,
    )
    one_step = 2.0 if math.isfinite(target.kappa) else math.inf
    return {"one_step": one_step, "kernel": float(needed)}


def population_step_direction(
    target: MultiIndexTarget, W: torch.Tensor, a: torch.Tensor
) -> torch.Tensor:
    """The leading term of the population first-step gradient, −2·a_j·H·w_j/√(2π), per row."""
    H = target.hessian().to(W.dtype)
    return -2.0 * a[:, None] * (W @ H.T) / math.sqrt(2 * math.pi)


def summary(target: MultiIndexTarget, epsilon: float = 0.1) -> dict:
    """Everything the theory says about a target, as plain numbers (for reports and the CLI)."""
    eigenvalues = torch.linalg.eigvalsh(target.latent_hessian()).tolist()
    return {
        "target": target.name,
        "d": target.d,
        "r": target.r,
        "degree": target.degree,
        "norm2": target.norm2(),
        "degree_energy": target.degree_energy(),
        "hessian_eigenvalues": eigenvalues,
        "hessian_rank": target.hessian_rank(),
        "kappa": target.kappa,
        "one_step_threshold_n": one_step_threshold(target),
        "one_step_width_m": one_step_width(target),
        "kernel_staircase": kernel_staircase(target),
        "epsilon": epsilon,
        "kernel_threshold_n": kernel_threshold(target, epsilon),
        "predicted_exponents": predicted_exponents(target, epsilon),
    }


def format_summary(info: dict) -> str:
    """Human-readable lines of ``summary``."""
    energy = ", ".join(f"{k}: {v:.4g}" for k, v in info["degree_energy"].items())
    lines = [
        f"target            {info['target']}",
        f"d, r, degree      {info['d']}, {info['r']}, {info['degree']}",
        f"E[f*^2]           {info['norm2']:.6g}",
        f"degree energy     {{{energy}}}",
        "eig(U H U^T)      " + ", ".join(f"{v:.4g}" for v in info["hessian_eigenvalues"]),
        f"rank(H), kappa    {info['hessian_rank']}, {info['kappa']:.4g}",
        f"Algorithm 1       n ~ d^2 kappa^2 r = {info['one_step_threshold_n']:.4g}, m ~ r^p = {info['one_step_width_m']:.4g}",
        "kernel staircase  "
        + "; ".join(
            f"log_d n in [{a:g}, {b:g}): risk {r:.4g}" for a, b, r in info["kernel_staircase"]
        ),
        f"kernel n for risk <= {info['epsilon']:g}: {info['kernel_threshold_n']:.4g} "
        f"(exponents: Algorithm 1 {info['predicted_exponents']['one_step']:g}, "
        f"kernel {info['predicted_exponents']['kernel']:g})",
    ]
    if not np.isfinite(info["kappa"]):
        lines.append("note              H is degenerate: one step cannot find S* from ~d^2 samples")
    return "\n".join(lines)
