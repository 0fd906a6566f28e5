"""Tests for replearn._threads: the passive OpenMP wait policy, set before torch loads."""

from __future__ import annotations

import os
import subprocess
import sys

import torch  # noqa: F401 (imported, as in every test process of this suite)

from replearn._threads import POLICY_VARIABLE, passive_openmp_wait


def test_sets_passive_unless_a_policy_is_chosen():
    environ: dict[str, str] = {}
    passive_openmp_wait(environ)
    assert environ == {POLICY_VARIABLE: "PASSIVE"}
    chosen = {POLICY_VARIABLE: "ACTIVE"}
    passive_openmp_wait(chosen)
    assert chosen == {POLICY_VARIABLE: "ACTIVE"}  # the user's choice is kept


def test_says_whether_torch_has_read_the_policy_already():
    # torch is imported in this test process; a fresh interpreter has not imported it
    assert passive_openmp_wait({}) is False
    code = (
        "from replearn._threads import passive_openmp_wait as p; import os; "
        "print(p(), os.environ['OMP_WAIT_POLICY'])"
    )
    env = {k: v for k, v in os.environ.items() if k != POLICY_VARIABLE}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.stdout.split() == ["True", "PASSIVE"], result.stderr


def test_the_test_suite_runs_with_a_chosen_policy():
    # pyproject's `-p replearn._threads` sets it before any test module imports torch
    assert os.environ.get(POLICY_VARIABLE) in ("PASSIVE", "ACTIVE", "passive", "active")


def test_import_replearn_sets_the_passive_policy_unless_the_user_chose_one():
    """The CLI, the engine's workers and scripts all start with ``import replearn``."""
    import os
    import subprocess
    import sys

    code = "import os, replearn; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    plain = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    chosen = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
        capture_output=True,
        text=True,
    )
    assert plain.stdout.strip() == "PASSIVE", plain.stderr
    assert chosen.stdout.strip() == "ACTIVE", chosen.stderr
