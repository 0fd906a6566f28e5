"""A grid spec's runs: every (method sweep × d × n × noise × seed [× transfer N]) config.

Each config is plain JSON and a pure description of one run; its run id is the sha256 of
its canonical text and :data:`ALGORITHM_VERSION`, so the same cell in two experiments (or
in a grid and a scaling search) is one run in the store.
"""

from __future__ import annotations

import hashlib
import itertools

from replearn.experiments.methods import METHODS
from replearn.experiments.spec import ExperimentSpec, MethodSpec
from replearn.experiments.store import canonical_json

__all__ = ["ALGORITHM_VERSION", "run_id", "expand_grid", "cell_config", "method_params"]

# Bump when a method's numbers change for an unchanged config: every run id changes, so a
# re-run recomputes instead of trusting results of the old algorithm.
ALGORITHM_VERSION = "replearn-algorithms-3"


def run_id(config: dict) -> str:
    """Stable id of a run: sha256 of its canonical JSON config and ALGORITHM_VERSION.

    Examples
    --------
    >>> a = run_id({"method": "synthetic", "d": 4})
    >>> len(a), a == run_id({"d": 4, "method": "synthetic"}), a == run_id({"d": 5})
    (20, True, False)
    """
    text = canonical_json({"algorithm_version": ALGORITHM_VERSION, "config": config})
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def method_params(method: MethodSpec) -> list[dict]:
    """The validated hyper-parameters (``Params.model_dump()``) of every combination of the
    method's sweep, in the order of ``itertools.product`` over the declared parameters."""
    info = METHODS[method.name]
    sweep = method.sweep()
    return [
        info.params.model_validate(dict(zip(sweep, combo))).model_dump()
        for combo in itertools.product(*sweep.values())
    ]


def expand_grid(spec: ExperimentSpec) -> list[dict]:
    """Every run config of a grid spec, in grid order: d, n, method, sweep, noise, seed, N.

    Consecutive transfer cells differ only in N, so they share a cached pretraining.

    Examples
    --------
    >>> from replearn.experiments.spec import parse_spec
    >>> spec = parse_spec('''
    ... name: tiny
    ... target: {kind: paper}
    ... methods: [{name: synthetic, exponent: [1.0, 2.0]}]
    ... d: [4]
    ... n: [10, "d^2"]
    ... seeds: 2
    ... ''')
    >>> configs = expand_grid(spec)
    >>> len(configs)  # 2 n × 2 exponents × 2 seeds
    8
    >>> [(c["n"], c["params"]["exponent"], c["seed"]) for c in configs[:3]]
    [(10, 1.0, 0), (10, 1.0, 1), (10, 2.0, 0)]
    """
    configs, seen = [], set()
    for d in spec.d:
        for n in spec.n_values(d):
            for method in spec.methods:
                for params in method_params(method):
                    for noise in spec.noise:
                        for seed in spec.seeds:
                            config = cell_config(spec, method.name, params, d, n, noise, seed)
                            for cell in _transfer_cells(spec, config, d):
                                key = run_id(cell)
                                if key not in seen:
                                    seen.add(key)
                                    configs.append(cell)
    return configs


def cell_config(
    spec: ExperimentSpec, method: str, params: dict, d: int, n: int, noise: float, seed: int
) -> dict:
    """The config of one run (without transfer): what its run id hashes.

    ``params`` are the method's validated hyper-parameters (``Params.model_dump()``).
    """
    target = spec.target.model_dump()
    return {
        "method": method,
        "params": params,
        "target": {**target, "seed": seed if target["seed"] == "run" else target["seed"]},
        "d": d,
        "n": n,
        "seed": seed,
        "noise": float(noise),
        "noise_kind": spec.noise_kind,
        "n_holdout": spec.n_holdout,
        "n_test": spec.n_test,
        "dtype": spec.dtype,
        "device": spec.device,
        "metrics": list(spec.metrics),
    }


def _transfer_cells(spec: ExperimentSpec, config: dict, d: int) -> list[dict]:
    if spec.transfer is None:
        return [config]
    transfer = spec.transfer
    base = {
        "target": transfer.target.model_dump(),
        "noise": float(config["noise"] if transfer.noise is None else transfer.noise),
        "n_holdout": spec.n_holdout if transfer.n_holdout is None else transfer.n_holdout,
    }
    return [{**config, "transfer": {**base, "N": N}} for N in spec.transfer_n_values(d)]
