"""
The d² law: fixed n/d²
======================

Theorem 1: one step learns the paper's target from ``n ≈ d²·κ²·r`` samples. If n grows
like d², the one-step network's risk should stay roughly constant as d grows; a kernel,
which needs ``n ≈ d⁴`` for the degree-4 part, stays at the best degree-2 risk (0.5).

We hold ``n = 20·d²`` and grow d from 8 to 20 (one seed each: this is a picture, not a
fit; ``configs/scaling.yaml`` fits the exponents with many seeds).
"""

import matplotlib.pyplot as plt

import replearn as rl

ratio, width = 20, 200
dims = [8, 12, 16, 20]
one_step, random_features = [], []
for d in dims:
    target = rl.paper_target(d=d)
    stream = rl.DataStream(target, noise=1.0, seed=0)
    n = ratio * d * d
    for learner, out in (
        (rl.OneStepNetwork(width=width, seed=0), one_step),
        (rl.RandomFeatures(width=width, seed=0), random_features),
    ):
        learner.fit_stream(stream, n=n, n_holdout=2_000)
        out.append(rl.excess_risk(learner, target, n_test=20_000, seed=1).risk)

print(f"{'d':>3} {'n':>6} {'one step':>9} {'random features':>16}")
for d, a, b in zip(dims, one_step, random_features):
    print(f"{d:>3} {ratio * d * d:>6} {a:>9.3f} {b:>16.3f}")

# %%
# Along n = 20·d² the one-step risk does not grow with d, while random features stay at
# or above the degree-2 plateau: the table above is this run.

fig, ax = plt.subplots(figsize=(5.5, 3.5))
ax.plot(dims, one_step, "o-", label="one step")
ax.plot(dims, random_features, "s-", label="random features")
ax.axhline(0.5, color="k", ls="--", lw=1, label="best degree-2 predictor")
ax.set_xlabel("d")
ax.set_ylabel("excess risk")
ax.set_title(f"n = {ratio}·d², width {width}")
ax.set_ylim(bottom=0)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
