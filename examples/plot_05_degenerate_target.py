"""
A degenerate target: why one step fails
=======================================

The first step moves neuron j along ``a_j·H·w⁰_j`` with ``H = E[∇²f*]`` (see
:ref:`sphx_glr_auto_examples_plot_01_first_step.py`). If the target has **no degree-2 part**,
H = 0: the population step is zero, what remains of the empirical step is noise of size
about ``√(d/n)``, and the first layer learns no direction. ``He3(u·x)/√6`` is such a
target; the paper's target (H ∝ u uᵀ) is not.

``target.describe()`` shows H's rank and κ exactly, before any run.
"""

import matplotlib.pyplot as plt

import replearn as rl

d, width, n = 12, 200, 12**3
targets = {
    "paper: He2/2 + He4/(4√3)": rl.paper_target(d=d),
    "degenerate: He3/√6": rl.MultiIndexTarget.from_expression("He3(z1)/sqrt(6)", d=d, seed=0),
}
rows = []
for name, target in targets.items():
    print(f"--- {name}\n{target.describe()}\n")
    net = rl.OneStepNetwork(width=width, seed=0).fit_stream(
        rl.DataStream(target, noise=1.0, seed=0), n=n, n_holdout=2_000
    )
    rows.append(
        (
            name,
            target.hessian_rank(),
            rl.subspace_alignment(net.W_, target.U),
            rl.excess_risk(net, target, n_test=20_000, seed=1).risk,
            target.norm2(),
        )
    )

print(f"{'target':>26} {'rank H':>6} {'alignment':>9} {'risk':>6} {'E[f*²]':>7}")
for name, rank, alignment, risk, norm2 in rows:
    print(f"{name:>26} {rank:>6} {alignment:>9.3f} {risk:>6.3f} {norm2:>7.3f}")
print(f"random directions: alignment r/d = {1 / d:.3f}")

# %%
# With H = 0 the alignment stays far below the paper target's, in the range of random
# directions (r/d), and the risk near E[f*²]: one step has nothing to follow. The cure is a second step or a label transform
# (the "beyond one step" learners); ``rl.theory`` predicts the failure from H alone.

fig, ax = plt.subplots(figsize=(5.5, 3))
ax.bar([r[0] for r in rows], [r[2] for r in rows], color=["C0", "C3"])
ax.axhline(1 / d, color="grey", ls=":", label="random directions (r/d)")
ax.set_ylabel("subspace alignment of W¹")
ax.set_title(f"d = {d}, n = d³, width {width}")
ax.set_ylim(0, 1)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
