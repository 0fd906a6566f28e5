"""OpenMP threads that sleep instead of spinning, so processes sharing cores do not stall.

torch's OpenMP runtime (libgomp in the CPU wheels) lets an idle worker thread spin on a core for
a while before it sleeps (OMP_WAIT_POLICY=ACTIVE-like default). Two processes that each run one
thread per core then take each other's cores in spin loops: a 400×400 ``eigh`` took 5 s instead of
14 ms next to another torch process (docs/performance.md). ``OMP_WAIT_POLICY=PASSIVE`` makes
idle threads sleep at once. The runtime reads it once, when it is loaded — at ``import torch`` —
so it must be in the environment before torch is first imported; child processes inherit it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

__all__ = ["passive_openmp_wait", "POLICY_VARIABLE"]

POLICY_VARIABLE = "OMP_WAIT_POLICY"


def passive_openmp_wait(environ: MutableMapping[str, str] | None = None) -> bool:
    """Set OMP_WAIT_POLICY=PASSIVE unless the user chose a policy; True if it can still act.

    A policy already in the environment (e.g. ``OMP_WAIT_POLICY=ACTIVE`` for a dedicated
    machine) is kept. Returns False when torch is already imported in this process: its
    runtime has read the old value then (children started later still get the new one).
    """
    environ = os.environ if environ is None else environ
    environ.setdefault(POLICY_VARIABLE, "PASSIVE")
    return "torch" not in sys.modules


def pytest_load_initial_conftests(early_config, parser, args) -> None:
    """pytest hook (``-p replearn._threads``): the policy is set before any test imports torch."""
    passive_openmp_wait()
