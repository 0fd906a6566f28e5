r"""The ladder of sample complexities n ≍ d^e (up to logs) that the theory predicts for each
learner on a single-index target, from its information exponent k and generative exponent k*.

=========================== ========================= ==============================================
learner                      exponent e                 source
=========================== ========================= ==============================================
kernel (RF, NTK)             p (the degree needed)      Ghorbani et al. 2019/2020 (``predicted_exponents``)
one step (Algorithm 1)       2 if E[∇²f*] ≠ 0, else —   Damian, Lee & Soltanolkotabi 2022
one step + transform T(y)    2 if k* ≤ 2                Damian, Pillaud-Vivien, Lee & Bruna 2024
online SGD                   1 (k = 1), 1 + log (k = 2), Ben Arous, Gheissari & Jagannath 2021
                             k − 1 (k ≥ 3)
smoothed online SGD          k/2 (k ≥ 3), else online   Damian, Nichani, Ge & Lee 2023
reusing samples / batches    1 (k* ≤ 2), else k* − 1    Arnaboldi et al. 2024; Lee, Oko, Suzuki & Wu 2024
SQ lower bound               max(1, k*/2)               Damian et al. 2024 (and n ≥ d)
=========================== ========================= ==============================================

("1 + log": d·log d.) None where the theory predicts no polynomial rate for the learner (one
step on a degenerate Hessian; an exponent that is not defined for the target).
"""

from __future__ import annotations

from replearn.targets import MultiIndexTarget

__all__ = ["ladder_exponents"]


def _online(k: int | None) -> tuple[float | None, str]:
    if k is None:
        return None, ""
    if k == 1:
        return 1.0, "d"
    if k == 2:
        return 1.0, "d·log d"
    return float(k - 1), f"d^{k - 1}"


def ladder_exponents(
    target: MultiIndexTarget, epsilon: float = 0.1, exponents: tuple | None = None
) -> dict[str, dict]:
    """{learner: {"exponent": e or None, "rate": text, "source": text}} for a target.

    Parameters
    ----------
    target : MultiIndexTarget
        Single-index for the online rows (k and k* are defined for r = 1); the kernel and
        one-step rows for any target.
    epsilon : float
        The kernel's risk threshold (``predicted_exponents``).
    exponents : tuple, optional
        (k, k*) if already computed (None where undefined).

    Returns
    -------
    dict

    Examples
    --------
    >>> import replearn as rl
    >>> t = rl.MultiIndexTarget.from_expression("He3(z1)/sqrt(6)", d=64, seed=0)  # k = 3, k* = 1
    >>> {k: v["exponent"] for k, v in ladder_exponents(t).items()}  # doctest: +NORMALIZE_WHITESPACE
    {'kernel': 3.0, 'one_step': None, 'one_step_transform': 2.0, 'online_sgd': 2.0,
     'smoothed_online_sgd': 1.5, 'reuse': 1.0, 'sq_lower_bound': 1.0}
    """
    from replearn.theory import predicted_exponents
    from replearn.theory.exponents import generative_exponent, information_exponent

    predicted = predicted_exponents(target, epsilon)
    if exponents is not None:
        k, k_star = exponents
    else:
        k = k_star = None
        try:
            k = information_exponent(target)
        except ValueError:
            pass
        if target.r == 1:
            try:
                k_star = generative_exponent(target)
            except ValueError:
                pass
    non_degenerate = target.hessian_rank() == target.r
    online, online_rate = _online(k)
    smoothed, smoothed_rate = (k / 2, f"d^{k / 2:g}") if k and k >= 3 else (online, online_rate)
    reuse, reuse_rate = _online(k_star)
    return {
        "kernel": dict(exponent=float(predicted["kernel"]), rate=f"d^{predicted['kernel']:g}",
                       source="Ghorbani et al. 2019/2020"),
        "one_step": dict(exponent=2.0 if non_degenerate else None,
                         rate="d²" if non_degenerate else "— (E[∇²f*] is degenerate)",
                         source="Damian, Lee & Soltanolkotabi 2022"),
        "one_step_transform": dict(
            exponent=2.0 if k_star is not None and k_star <= 2 else None,
            rate="d² (a transform T(y) exposes degree k* ≤ 2)" if k_star is not None and k_star <= 2
            else "—", source="Damian, Pillaud-Vivien, Lee & Bruna 2024"),
        "online_sgd": dict(exponent=online, rate=online_rate or "—",
                           source="Ben Arous, Gheissari & Jagannath 2021"),
        "smoothed_online_sgd": dict(exponent=smoothed, rate=smoothed_rate or "—",
                                    source="Damian, Nichani, Ge & Lee 2023"),
        "reuse": dict(exponent=reuse, rate=reuse_rate or "—",
                      source="Arnaboldi et al. 2024; Lee, Oko, Suzuki & Wu 2024"),
        "sq_lower_bound": dict(exponent=None if k_star is None else max(1.0, k_star / 2),
                               rate="—" if k_star is None else f"d^{max(1.0, k_star / 2):g}",
                               source="Damian, Pillaud-Vivien, Lee & Bruna 2024"),
    }  # fmt: skip
