"""
Label transforms: what the first step sees
==========================================

The first step moves every neuron along ``H·w`` with ``H = E[∇²f*]``
(:ref:`sphx_glr_auto_examples_plot_01_first_step.py`); when H is degenerate it sees nothing
(:ref:`sphx_glr_auto_examples_plot_05_degenerate_target.py`). A *label transform* T runs
the step on T(y) instead of y (the head still fits y). The step then follows::

    H_T = E_x[∇²_x E[T(y) | x]] = Uᵀ·A_T·U,    A_T = E_z[h(z)·(zzᵀ − I)],
    h(z) = E_ε[T(g(z) + ε)]                                  (Stein's lemma),

which :func:`replearn.theory.label_transform_report` computes by quadrature — exactly for a
polynomial T — before any data is drawn: the rank of H_T (how many of the r directions of S*
the step can see) and κ_step, the condition number that sets the sample size
n ≈ d²·κ_step²·r. See :doc:`/label_transforms` for the transforms and the measured accuracy.

Two targets with E[∇²f*] = 0: He₃(u·x)/√6 (r = 1) and z₁z₂z₃ (r = 3), label noise ±1.
"""

import math

import matplotlib.pyplot as plt
import torch

import replearn as rl
from replearn.label_transforms import resolve_label_transform
from replearn.theory import label_transform_report

d = 10
targets = {
    "He3(z1)/√6": rl.MultiIndexTarget.from_expression("He3(z1)/sqrt(6)", d=d, seed=0),
    "z1·z2·z3": rl.MultiIndexTarget.from_expression("z1*z2*z3", d=d, seed=0),
}
transforms = [None, "square", "abs", "sign", "hermite:2", "hermite:3"]

reports = {}
print(f"{'target':>11} {'T':>9} {'rank H_T':>8} {'kappa':>7} {'kappa_step':>10} {'eig(A_T)':>24}")
for name, target in targets.items():
    for transform in transforms:
        info = label_transform_report(target, transform, noise=1.0)
        reports[name, info["transform"]] = info
        # eigenvalues below the report's rank tolerance are quadrature round-off: print 0
        kept = [v if abs(v) > info["rank_tolerance"] else 0.0 for v in info["eigenvalues"]]
        eigenvalues = ", ".join(f"{v:.3g}" for v in kept)
        print(
            f"{name:>11} {info['transform']:>9} {info['rank']:>4} / {info['r']} "
            f"{info['kappa']:>7.3g} {info['kappa_step']:>10.3g} {eigenvalues:>24}"
        )

# %%
# The identity (the paper's step) sees nothing in either target. Both targets are odd in z
# and the noise is symmetric, so an odd T (``sign``, ``hermite:3``) keeps h odd, and an odd h
# has E[h·(zzᵀ − I)] = 0: those see nothing either. The even transforms ``square``, ``abs``
# and ``hermite:2`` make h even, and here H_T has full rank: the step sees all of S*.
# ``kappa_step`` counts the noise of T(y) too, so it is larger than ``kappa``.
#
# What the step sees from samples: the empirical A_T — the mean of the step labels
# s = T(y) − mean times (xxᵀ − I), projected on S* — next to its population value, for
# n = 20·d² samples (the Stein estimate of H_T, what the first step averages).

n = 20 * d**2
sampled = {}
for name, target in targets.items():
    X, y = rl.sample(target, n=n, noise=1.0, seed=0, dtype=torch.float64)
    for transform in ("identity", "square"):
        T = resolve_label_transform(transform)
        s = T(y)  # T with the sample's own label statistics
        s = s - s.mean()  # Stein: E[s·(xxᵀ − I)] = E[s·xxᵀ] once s has mean 0
        H = (X * s[:, None]).T @ X / n
        top = torch.linalg.eigh(H).eigenvectors[:, H.shape[0] - target.r :].T  # top-r by value
        sampled[name, transform] = rl.subspace_alignment(top, target.U)
        print(
            f"{name:>11} {transform:>9}: alignment of the top-{target.r} eigenvectors of the "
            f"sampled H_T with S* = {sampled[name, transform]:.3f} (random: r/d = {target.r / d:.2f})"
        )

# %%
# From n = 20·d² samples the sampled H_T of ``square`` already points into S* (its top
# eigenvectors' alignment is far above r/d), while the identity's is noise of size about
# √(d/n) around the zero matrix.
#
# The rank and κ_step of every (target, transform) pair: a bar per transform, none drawn where
# H_T has rank 0 (κ = ∞).

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
names = [resolve_label_transform(t).name for t in transforms]
for ax, (target_name, target) in zip(axes, targets.items()):
    kappas = [reports[target_name, t]["kappa_step"] for t in names]
    finite = [k if math.isfinite(k) else 0.0 for k in kappas]
    bars = ax.bar(names, finite, color=["C3" if k == 0 else "C0" for k in finite])
    for bar, kappa in zip(bars, kappas):
        label = f"{kappa:.2f}" if math.isfinite(kappa) else "rank 0"
        ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8)  # fmt: skip
    ax.set_title(f"{target_name} (r = {target.r}), noise ±1")
    ax.set_ylabel("κ_step of H_T")
    ax.set_ylim(0, 1.2 * max(finite))  # room for the labels above the bars
    ax.tick_params(axis="x", labelrotation=30)
fig.tight_layout()
plt.show()
