"""
Transfer to a new task
======================

The paper's Theorem 3: the first layer learned on one task is a representation for every
other task that depends on the same direction u. ``net.transfer_stream(new_stream, N)``
keeps W¹ and the biases and refits only the head (α, β and a) on N samples of the new task.

Pre-train on the paper's target with ``n = d³`` samples; the new task is
``He3(u·x)/√6`` (``rl.paper_transfer_target``), a degree-3 function of the same u that has
no degree-2 part at all. Against it: random features, whose features never saw any task, fit
on the same N.
"""

import matplotlib.pyplot as plt

import replearn as rl

d, width = 12, 200
pretrain_target = rl.paper_target(d=d)
new_target = rl.paper_transfer_target(d=d)
pretrained = rl.OneStepNetwork(width=width, seed=0).fit_stream(
    rl.DataStream(pretrain_target, noise=1.0, seed=0), n=d**3, n_holdout=2_000
)
new_stream = rl.DataStream(new_target, noise=1.0, seed=7)

sizes = [2 * d, 4 * d, 8 * d, 16 * d, 32 * d, 64 * d]
transferred, fresh = [], []
for N in sizes:
    head_only = pretrained.transfer_stream(new_stream, n=N, n_holdout=2_000)
    random_features = rl.RandomFeatures(width=width, seed=0).fit_stream(
        new_stream, n=N, n_holdout=2_000
    )
    transferred.append(rl.excess_risk(head_only, new_target, n_test=20_000, seed=1).risk)
    fresh.append(rl.excess_risk(random_features, new_target, n_test=20_000, seed=1).risk)

print(f"E[f*²] of the new task: {new_target.norm2():.3f} (the risk of predicting 0)")
print(f"{'N':>5} {'transferred one step':>21} {'random features':>16}")
for N, a, b in zip(sizes, transferred, fresh):
    print(f"{N:>5} {a:>21.3f} {b:>16.3f}")

# %%
# Read the table (this run): at the smallest N both heads over-fit (risk above E[f*²]);
# as N grows the transferred head falls well below E[f*²] while random features on the
# same N stay near it. The head is a
# ridge regression on m features, so what transfers is exactly the direction u in W¹.

fig, ax = plt.subplots(figsize=(5.5, 3.5))
ax.semilogx(sizes, transferred, "o-", label="one step, head refitted (transfer)")
ax.semilogx(sizes, fresh, "s-", label="random features on the new task")
ax.axhline(new_target.norm2(), color="k", ls="--", lw=1, label="predict 0")
ax.set_xlabel("N (samples of the new task)")
ax.set_ylabel("excess risk on He3(u·x)/√6")
ax.set_ylim(bottom=0)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
