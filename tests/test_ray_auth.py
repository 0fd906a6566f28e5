"""``replearn run --executor ray --address HOST:PORT`` on a cluster with token authentication.

Ray turns token authentication on for ``ray start --head`` when a token exists (``ray
get-auth-token --generate`` writes ``~/.ray/auth_token``), but a driver given an explicit
address does not turn it on by itself and is refused ("InvalidAuthToken"). The slow test
starts such a head node — and a second node joining it with ``RAY_AUTH_MODE=token``, as
Ray documents for every node — on 127.0.0.1 with a private HOME holding the token, runs a small spec through the real command with no RAY_AUTH_* variable
set, and checks the results equal the process executor's. The cluster's processes are
killed by id (every process of the session the head node started) in a ``finally``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from replearn.experiments.executors import _ray_auth_mode_for, ray_auth_token_source
from replearn.experiments.store import Store

SPEC = """
name: ray-auth
target: {kind: paper}
methods:
  - {name: one_step, width: 20}
  - {name: synthetic, exponent: [1.0, 2.0]}
d: [4]
n: [32, 64]
seeds: 2
n_holdout: 0
n_test: 200
"""


# -- where the token comes from (no cluster) ------------------------------------------------------
def test_token_source_follows_rays_documented_order(tmp_path):
    home = tmp_path / "home"
    assert ray_auth_token_source({"HOME": str(home)}) is None
    default = home / ".ray" / "auth_token"
    default.parent.mkdir(parents=True)
    default.write_text("")  # an empty file is no token
    assert ray_auth_token_source({"HOME": str(home)}) is None
    default.write_text("a" * 64)
    assert ray_auth_token_source({"HOME": str(home)}) == str(default)
    other = tmp_path / "token"
    other.write_text("b" * 64)
    env = {"HOME": str(home), "RAY_AUTH_TOKEN_PATH": str(other)}
    assert ray_auth_token_source(env) == str(other)
    assert ray_auth_token_source({**env, "RAY_AUTH_TOKEN": "c" * 64}) == "RAY_AUTH_TOKEN"
    assert ray_auth_token_source({**env, "RAY_AUTH_TOKEN": "  "}) == str(other)


def test_auth_mode_only_for_an_explicit_address_and_never_over_the_users(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN", "d" * 64)
    assert _ray_auth_mode_for("10.0.0.1:6379") == "token"
    assert _ray_auth_mode_for(None) is None  # a local cluster: Ray decides
    assert _ray_auth_mode_for("auto") is None  # Ray turns it on by itself for "auto"
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert _ray_auth_mode_for("10.0.0.1:6379") is None
    monkeypatch.delenv("RAY_AUTH_MODE")
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert _ray_auth_mode_for("10.0.0.1:6379") is None  # no token anywhere


# -- a real authenticated cluster ------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _session_pids(session: int) -> list[int]:
    """Processes whose session id is ``session`` (the head node's, started with setsid)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == session:
            pids.append(int(entry.name))
    return pids


def _kill_session(session: int) -> None:
    for pid in _session_pids(session):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _wait_started(process: subprocess.Popen, log: Path, timeout: float) -> str | None:
    """None once ``ray start`` says the node runs; else why it did not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if "Ray runtime started" in text:
            return None
        if process.poll() is not None:
            last = [line for line in text.splitlines() if line.strip()][-1:] or ["no output"]
            return f"ray start exited {process.returncode}: {last[0][:200]}"
        time.sleep(0.5)
    return f"ray start did not report a running node within {timeout:.0f} s"


@pytest.fixture
def authenticated_cluster():
    """(address, env) of a head node plus one worker node with token authentication on."""
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if ray_cli is None:
        pytest.skip("the ray command is not installed")
    root = Path(tempfile.mkdtemp(prefix="rl-ray-", dir="/tmp"))  # short: Ray's socket paths
    home = root / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text(os.urandom(32).hex())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "PYTHONPATH"))}
    env.update(HOME=str(home), PYTHONPATH=os.pathsep.join(sys.path))
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--block", "--num-cpus", "1", "--disable-usage-stats"]
    nodes = []
    try:
        head_log = root / "head.log"
        head = subprocess.Popen(
            [ray_cli, "start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1",
             "--include-dashboard", "false", "--temp-dir", str(root / "ray"), *common],
            stdout=head_log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
        nodes.append(head)
        problem = _wait_started(head, head_log, timeout=120)
        if problem is not None:
            pytest.skip(f"cannot start a Ray head node here: {problem}")
        assert "token" in head_log.read_text().lower()  # authentication is on
        worker_log = root / "worker.log"
        worker = subprocess.Popen(  # Ray's docs: RAY_AUTH_MODE=token on every joining node
            [ray_cli, "start", "--address", address, "--node-ip-address", "127.0.0.1", *common],
            stdout=worker_log.open("w"), stderr=subprocess.STDOUT,
            env={**env, "RAY_AUTH_MODE": "token"}, start_new_session=True,
        )  # fmt: skip
        nodes.append(worker)
        problem = _wait_started(worker, worker_log, timeout=120)
        assert problem is None, problem  # the head runs, so a node joining it must too
        yield address, env
    finally:
        for node in nodes:
            _kill_session(node.pid)
            node.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_run_on_an_authenticated_cluster_equals_the_process_executor(
    authenticated_cluster, tmp_path
):
    address, env = authenticated_cluster
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)

    def run(db: Path, *executor: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "replearn.cli", "run", str(spec), "--db", str(db), "--quiet",
             *executor],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    # without the token (a HOME without ~/.ray/auth_token): refused, in one line
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    refused = subprocess.run(
        [sys.executable, "-m", "replearn.cli", "run", str(spec), "--db",
         str(tmp_path / "refused.sqlite"), "--quiet", "--executor", "ray", "--address", address],
        env={**env, "HOME": str(stranger)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr[-3000:]
    assert "cannot start the Ray cluster" in refused.stderr and "RAY_AUTH_TOKEN" in refused.stderr
    assert "refused this machine's token (InvalidAuthToken)" in refused.stderr  # the real cause

    on_ray = run(tmp_path / "ray.sqlite", "--executor", "ray", "--address", address)
    assert on_ray.returncode == 0, on_ray.stderr[-2000:]
    local = run(tmp_path / "process.sqlite", "--executor", "process", "--workers", "2")
    assert local.returncode == 0, local.stderr[-2000:]

    def metrics(db: Path) -> dict:
        with Store(db, readonly=True) as store:
            return {r["run_id"]: (r["status"], r["metrics"]) for r in store.runs()}

    ray_results, process_results = (
        metrics(tmp_path / "ray.sqlite"),
        metrics(tmp_path / "process.sqlite"),
    )
    assert len(ray_results) == 2 * 2 * 3  # n × seeds × (one_step + 2 synthetic)
    assert all(status == "done" for status, _ in ray_results.values())
    assert ray_results == process_results  # bit-identical: same threads, same seeds
    with Store(tmp_path / "ray.sqlite", readonly=True) as store:
        threads = {r["versions"]["torch_threads"] for r in store.runs()}
    assert threads == {1}
