"""
One step against kernels at one n
=================================

The paper's separation: on ``f*(x) = He2(u·x)/2 + He4(u·x)/(4√3)`` half of the target's
energy is in degree 4. A kernel method (random features, the NTK, and their infinite-width
limits ``rl.KernelRidge(kernel="rf" | "ntk")``) needs about ``n ≈ d⁴`` samples to learn a degree-4 component, so
with ``n ≪ d⁴`` it is stuck at the risk of the best degree-2 predictor, ``0.5`` (exact:
``target.energy_above(2)``). One gradient step finds u from about d² samples, after which
the degree-4 part is a one-dimensional problem.

Here d = 10, width 100, n = 4 000 (= d^3.6), label noise of variance 1.
"""

import matplotlib.pyplot as plt

import replearn as rl

d, width, n = 10, 100, 4_000
target = rl.paper_target(d=d)
stream = rl.DataStream(target, noise=1.0, seed=0)
plateau = target.energy_above(2)

learners = {
    "one step (Algorithm 1)": rl.OneStepNetwork(width=width, seed=0),
    "random features": rl.RandomFeatures(width=width, seed=0),
    "NTK regression": rl.NTKRegression(width=width, seed=0),
}
risks = {}
for name, learner in learners.items():
    learner.fit_stream(stream, n=n, n_holdout=2_000)
    risks[name] = rl.excess_risk(learner, target, n_test=50_000, seed=1)

print(f"best degree-2 predictor's risk (exact): {plateau:.3f}")
for name, estimate in risks.items():
    print(f"{name:>26}: excess risk {estimate.risk:.3f} ± {estimate.stderr:.3f}")

# %%
# The one-step network's risk falls well below the 0.5 line; the kernels sit near or above
# it — the numbers above are this run's. docs/results.md shows the full curves in n.
# ``rl.KernelRidge(kernel="ntk")`` (the infinite-width NTK) can be added to ``learners``;
# it is left out here only because its exact solve and its predictions on the test set take
# longer than this page's budget.

fig, ax = plt.subplots(figsize=(6, 3.2))
names = list(risks)
ax.barh(names, [risks[k].risk for k in names], xerr=[2 * risks[k].stderr for k in names])
ax.axvline(plateau, color="k", ls="--", label="best degree-2 predictor")
ax.set_xlabel("excess risk E[(f − f*)²]")
ax.set_title(f"paper target, d = {d}, n = {n}")
ax.invert_yaxis()
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
