"""replearn — one-step feature learning in two-layer ReLU networks (Damian, Lee & Soltanolkotabi).

COLT 2022. Quick start:

import replearn as rl
t = rl.paper_target(d=10)
X, y = rl.sample(t, n=10_000, noise=1.0, seed=0)
net = rl.OneStepNetwork(width=100, seed=0).fit(X, y)
rl.excess_risk(net, t, n_test=100_000, seed=1)
"""

from __future__ import annotations

import importlib

from replearn._threads import passive_openmp_wait as _passive_openmp_wait

# OpenMP threads sleep instead of spinning while they wait (set before torch loads; a policy
# the user chose is kept): several processes sharing the cores then do not slow each other
# down by orders of magnitude (docs/performance.md, "Shared cores").
_passive_openmp_wait()


# public name → module that defines it (imported on first use, so `import replearn` is cheap)
_EXPORTS = {
    "hermite": "replearn.hermite",
    "MultiIndexTarget": "replearn.targets",
    "LinkTarget": "replearn.targets",
    "paper_target": "replearn.targets",
    "paper_transfer_target": "replearn.targets",
    "DataStream": "replearn.data",
    "sample": "replearn.data",
    "TwoLayerReLU": "replearn.network",
    "OneStepNetwork": "replearn.learners.one_step",
    "GiantStepNetwork": "replearn.learners.giant_step",
    "RandomFeatures": "replearn.learners.random_features",
    "NTKRegression": "replearn.learners.ntk",
    "KernelRidge": "replearn.learners.kernel_ridge",
    "FullTraining": "replearn.learners.full_training",
    "OnlineSGD": "replearn.learners.online_sgd",
    "SpectralEstimator": "replearn.learners.spectral",
    "excess_risk": "replearn.metrics",
    "subspace_alignment": "replearn.metrics",
    "principal_angles": "replearn.metrics",
    "direction_cosines": "replearn.metrics",
    "label_transforms": "replearn.label_transforms",
    "resolve_label_transform": "replearn.label_transforms",
    "theory": "replearn.theory",
    "information_exponent": "replearn.theory.exponents",
    "generative_exponent": "replearn.theory.exponents",
    "results": "replearn.experiments.frames",
    "set_progress": "replearn.progress",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name == "__version__":  # written in replearn/_version.py only (pyproject reads it there)
        from replearn._version import __version__

        return __version__
    if name not in _EXPORTS:
        raise AttributeError(f"module 'replearn' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    value = module if module.__name__.endswith("." + name) else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
