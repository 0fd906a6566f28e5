"""Experiment engine: validated YAML specs, a SQLite results store, executors, reports.

    from replearn.experiments import load_spec, run_experiment
    spec = load_spec("configs/demo.yaml")
    summary = run_experiment(spec, db="results/replearn.sqlite", executor="process")

Submodules are imported on first use, so ``import replearn.experiments`` stays cheap.
Imports flow one way (docs/architecture.md, tests/test_imports.py): api → report →
scaling → executors → grid → store → spec → analysis → methods → learners.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "SpecError": "replearn.experiments.spec",
    "ExperimentSpec": "replearn.experiments.spec",
    "load_spec": "replearn.experiments.spec",
    "parse_spec": "replearn.experiments.spec",
    "validate_spec": "replearn.experiments.spec",
    "Store": "replearn.experiments.store",
    "DEFAULT_DB": "replearn.experiments.store",
    "flat_rows": "replearn.experiments.store",
    "results": "replearn.experiments.frames",
    "run_rows": "replearn.experiments.frames",
    "step_table": "replearn.experiments.frames",
    "shipped_configs": "replearn.experiments.catalog",
    "find_config": "replearn.experiments.catalog",
    "aggregate": "replearn.experiments.analysis",
    "log_d": "replearn.experiments.analysis",
    "ALGORITHM_VERSION": "replearn.experiments.grid",
    "expand_grid": "replearn.experiments.grid",
    "run_id": "replearn.experiments.grid",
    "RunOptions": "replearn.experiments.executors",
    "RunSummary": "replearn.experiments.executors",
    "execute_run": "replearn.experiments.executors",
    "run_pending": "replearn.experiments.executors",
    "run_experiment": "replearn.experiments.api",
    "estimate_cells": "replearn.experiments.api",
    "write_report": "replearn.experiments.api",
    "METHODS": "replearn.experiments.methods",
    "register_method": "replearn.experiments.methods",
    "register_learner": "replearn.experiments.methods",
    "register_target_kind": "replearn.experiments.target_kinds",
    "TargetKind": "replearn.experiments.target_kinds",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'replearn.experiments' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
