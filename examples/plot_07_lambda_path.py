"""
The λ-path and the holdout choice
=================================

The heads of ``OneStepNetwork``, ``RandomFeatures``, ``NTKRegression`` and ``KernelRidge``
are ridge regressions. The convention (as in the paper) is

    min_a  (1/n)·Σ_i (a·φ(x_i) − r_i)²  +  (λ/2)·‖a‖²,

with r = y − α − β·x the preprocessed labels. With ``ridge_lambda="auto"`` (the default)
the learner solves for a whole path of λ at once (one eigendecomposition of the Gram matrix)
and keeps the λ with the smallest mean squared error on a holdout (``n_holdout`` samples of
the stream's independent 'holdout' split), or the smallest GCV score without a holdout. The
path and the criterion are kept: ``lambda_path_``, ``lambda_criterion_`` and
``lambda_criterion_name_``; the chosen λ is ``ridge_lambda_``.
"""

import matplotlib.pyplot as plt

import replearn as rl

d, width, n = 10, 100, 2_000
target = rl.paper_target(d=d)
stream = rl.DataStream(target, noise=1.0, seed=0)
with_holdout = rl.OneStepNetwork(width=width, seed=0).fit_stream(stream, n=n, n_holdout=5_000)
without = rl.OneStepNetwork(width=width, seed=0).fit_stream(stream, n=n, n_holdout=0)

for label, net in (("holdout", with_holdout), ("no holdout", without)):
    risk = rl.excess_risk(net, target, n_test=20_000, seed=1)
    print(
        f"{label:>10}: criterion {net.lambda_criterion_name_!r}, path of "
        f"{len(net.lambda_path_)} λ in [{float(net.lambda_path_.min()):.2e}, "
        f"{float(net.lambda_path_.max()):.2e}], chosen λ = {net.ridge_lambda_:.2e}, "
        f"excess risk {risk.risk:.3f}"
    )

# %%
# The criterion along the path: too small a λ over-fits the n samples, too large a λ shrinks
# the head towards 0. The dot is the λ each criterion chose.

fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
for ax, (label, net) in zip(axes, (("holdout", with_holdout), ("no holdout", without))):
    path = net.lambda_path_.double().cpu()
    criterion = net.lambda_criterion_.double().cpu()
    ax.loglog(path, criterion, "-")
    best = int(criterion.argmin())
    ax.loglog([path[best]], [criterion[best]], "o", color="C3")
    ax.set_xlabel("λ")
    ax.set_ylabel(net.lambda_criterion_name_)
    ax.set_title(label)
fig.suptitle(f"OneStepNetwork, d = {d}, n = {n}, width {width}")
fig.tight_layout()
plt.show()
