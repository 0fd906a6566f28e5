"""Runner: resume, failures, retry, executors that agree bit for bit, the real methods."""

import importlib.util
import math
import time

import pytest
import torch

from replearn.experiments import executors
from replearn.experiments.api import run_experiment
from replearn.experiments.executors import execute_run
from replearn.experiments.grid import expand_grid, run_id
from replearn.experiments.methods import build_target
from replearn.experiments.spec import parse_spec
from replearn.experiments.store import Store

SYNTHETIC = """
name: synth
target: {kind: paper}
methods:
  - {name: synthetic, exponent: [1.5, 2.0]}
d: [4, 6]
n: ["d^1", "d^2", 100]
seeds: 2
n_holdout: 0
n_test: 100
"""

# a real method at toy size, so that executor agreement is checked on real numerics
ONE_STEP = """
  - {name: one_step, width: 20}
"""


def spec_with(extra_methods: str = "", **replace) -> str:
    text = SYNTHETIC.replace("methods:\n", "methods:" + extra_methods + "\n", 1)
    for old, new in replace.items():
        text = text.replace(old, new)
    return text


def has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def metrics_by_id(db) -> dict:
    with Store(db) as store:
        return {row["run_id"]: (row["status"], row["metrics"]) for row in store.runs()}


def test_serial_run_then_rerun_resumes(tmp_path):
    spec = parse_spec(SYNTHETIC)
    db = tmp_path / "r.sqlite"
    first = run_experiment(spec, db=db, quiet=True)
    assert first.ok and first.executed == 2 * 2 * 3 * 2 == first.counts["total"]
    again = run_experiment(spec, db=db, quiet=True)
    assert again.ok and again.executed == 0
    # every run is a pure function of its config
    for config in expand_grid(spec)[:3]:
        stored = metrics_by_id(db)[run_id(config)][1]
        assert execute_run(config)["metrics"] == stored
    # the synthetic risk is min(1, d^exponent / n)·(1 + 0.1·tanh(·)): within 10 %
    config = expand_grid(spec)[-1]
    expected = min(1.0, config["d"] ** config["params"]["exponent"] / config["n"])
    assert metrics_by_id(db)[run_id(config)][1]["risk"] == pytest.approx(expected, rel=0.1)


def test_failures_are_recorded_and_the_grid_goes_on(tmp_path):
    spec = parse_spec(SYNTHETIC.replace("exponent: [1.5, 2.0]", "fail: [false, true]"))
    summary = run_experiment(spec, db=tmp_path / "f.sqlite", quiet=True)
    assert summary.counts["done"] == summary.counts["failed"] == 12 and not summary.ok
    with Store(tmp_path / "f.sqlite") as store:
        failed = store.runs("synth", status="failed")
    assert all("RuntimeError: synthetic method asked to fail" in r["error"] for r in failed)
    assert all(r["metrics"] is None and r["wall_time"] is not None for r in failed)


def test_retry_failed_runs_them_again(tmp_path, monkeypatch):
    spec = parse_spec(SYNTHETIC.replace("exponent: [1.5, 2.0]", "fail_if_env: RL_TEST_FAIL"))
    db = tmp_path / "retry.sqlite"
    monkeypatch.setenv("RL_TEST_FAIL", "1")
    assert run_experiment(spec, db=db, quiet=True).counts["failed"] == 12
    monkeypatch.delenv("RL_TEST_FAIL")
    resumed = run_experiment(spec, db=db, quiet=True)
    assert resumed.executed == 0 and resumed.counts["failed"] == 12  # failed runs are kept
    retried = run_experiment(spec, db=db, quiet=True, retry_failed=True)
    assert retried.executed == 12 and retried.ok


def test_execute_run_never_raises():
    config = expand_grid(parse_spec(SYNTHETIC))[0]
    result = execute_run({**config, "method": "no_such_method"})
    assert result["status"] == "failed" and "unknown method" in result["error"]
    result = execute_run(config)
    assert result["status"] == "done" and result["peak_rss_mb"] > 0
    assert result["versions"]["torch_threads"] == 1 and result["host"]


def test_interrupt_puts_claimed_runs_back(tmp_path, monkeypatch):
    calls = []

    def flaky(config, threads=1):
        calls.append(config)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return execute_run(config, threads)

    monkeypatch.setattr(executors, "execute_run", flaky)
    db = tmp_path / "i.sqlite"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(parse_spec(SYNTHETIC), db=db, quiet=True)
    with Store(db) as store:
        counts = store.counts("synth")["synth"]
    assert counts["done"] == 2 and counts["running"] == 0 and counts["pending"] == 22


def test_heartbeat_renews_leases(tmp_path):
    db = tmp_path / "h.sqlite"
    with Store(db, lease_seconds=0.3) as store:
        store.register_experiment(
            "e", "{}", [(run_id(c), c) for c in expand_grid(parse_spec(SYNTHETIC))]
        )
        store.claim_next("e", "tok")
        heartbeat = executors._Heartbeat(db, "tok", 0.3)
        heartbeat.start()
        time.sleep(0.6)
        heartbeat.stop()
        (lease,) = store._conn.execute(
            "SELECT lease_expires FROM runs WHERE claim_token = 'tok'"
        ).fetchone()
    assert lease > time.time() - 0.25  # renewed within the last lease/3 + scheduling slack


def test_transfer_cells(tmp_path):
    text = SYNTHETIC + "transfer: {target: {kind: paper_transfer}, N: [10, 1000]}\n"
    spec = parse_spec(text)
    configs = expand_grid(spec)
    assert len(configs) == 2 * 2 * 3 * 2 * 2
    assert [c["transfer"]["N"] for c in configs[:2]] == [10, 1000]  # N is the innermost axis
    assert configs[0]["transfer"]["noise"] == 1.0
    summary = run_experiment(spec, db=tmp_path / "t.sqlite", quiet=True)
    assert summary.ok


def test_process_executor_matches_serial(tmp_path):
    extra = ONE_STEP if has("replearn.learners.one_step") else ""
    spec = parse_spec(spec_with(extra, **{"d: [4, 6]": "d: [4]", "seeds: 2": "seeds: 1"}))
    serial = run_experiment(spec, db=tmp_path / "s.sqlite", quiet=True)
    pooled = run_experiment(
        spec, db=tmp_path / "p.sqlite", executor="process", workers=2, quiet=True
    )
    assert serial.ok and pooled.ok
    assert metrics_by_id(tmp_path / "s.sqlite") == metrics_by_id(tmp_path / "p.sqlite")


@pytest.mark.slow
def test_serial_process_and_ray_give_identical_results(tmp_path):
    pytest.importorskip("ray")
    extra = ONE_STEP if has("replearn.learners.one_step") else ""
    spec = parse_spec(spec_with(extra, **{"seeds: 2": "seeds: 1"}))
    results = {}
    for executor in ("serial", "process", "ray"):
        db = tmp_path / f"{executor}.sqlite"
        summary = run_experiment(spec, db=db, executor=executor, workers=2, quiet=True)
        assert summary.ok, executor
        results[executor] = metrics_by_id(db)
    assert results["serial"] == results["process"] == results["ray"]
    assert len(results["serial"]) == summary.counts["total"]


def test_a_fit_too_big_for_the_memory_fails_before_it_allocates():
    """width m = 1000 at d = 4: the ridge head holds five m × m float64 matrices, 40 MB,
    plus a chunk; with memory_bytes = 10 MB the run must fail at once, naming the learner
    and the sizes (without the check it would simply run and be 'done')."""
    from replearn import limits

    text = SYNTHETIC.replace("{name: synthetic, exponent: [1.5, 2.0]}", "{name: NAME, width: 1000}")
    learners = {
        "one_step": "OneStepNetwork",
        "random_features": "RandomFeatures",
        "ntk": "NTKRegression",
    }  # fmt: skip  (full training: O(m·d) only)
    for method in learners:
        if not has(f"replearn.learners.{method}"):
            continue
        entry = method + (", form: primal" if method == "ntk" else "")  # auto: dual at n = 4
        config = expand_grid(parse_spec(text.replace("NAME", entry)))[0]
        with limits.raised(memory_bytes=10_000_000):
            result = execute_run(config)
        assert result["status"] == "failed", method
        last = result["error"].strip().splitlines()[-1]
        assert last.startswith(f"replearn.limits.LimitError: {learners[method]} with width"), last
        assert "more than the 10.0 MB of the memory_bytes limit" in last
    one_step = expand_grid(parse_spec(text.replace("NAME", "one_step")))[0]
    with limits.raised(memory_bytes=10**12):  # the estimate is all that changed
        executors.check_run_memory(one_step)


REAL_METHODS = [
    ("one_step", "replearn.learners.one_step", "{name: one_step, width: 20}"),
    ("random_features", "replearn.learners.random_features", "{name: random_features, width: 20}"),
    ("ntk", "replearn.learners.ntk", "{name: ntk, width: 20}"),
    (
        "ntk_normal_bias",
        "replearn.learners.ntk",
        "{name: ntk, width: 20, bias: normal, form: dual}",
    ),
    ("kernel_ridge", "replearn.learners.kernel_ridge", "{name: kernel_ridge, kernel: ntk}"),
    ("full_training", "replearn.learners.full_training", "{name: full_training, width: 20}"),
]


@pytest.mark.parametrize("name, module, entry", REAL_METHODS, ids=[m[0] for m in REAL_METHODS])
def test_real_method_runs_a_cell(name, module, entry):
    if not has(module):
        pytest.skip(f"{module} is not there yet")
    text = f"""
name: real
target: {{kind: random, r: 2, degree: 3}}
methods: [{entry}]
d: [6]
n: [300]
seeds: [3]
n_holdout: 300
n_test: 2000
dtype: float64
"""
    (config,) = expand_grid(parse_spec(text))
    result = execute_run(config)
    assert result["status"] == "done", result["error"]
    metrics = result["metrics"]
    assert math.isfinite(metrics["risk"]) and metrics["risk"] >= 0 and metrics["stderr"] >= 0
    if "alignment" in metrics:
        assert 0.0 <= metrics["alignment"] <= 1.0 + 1e-9
    assert execute_run(config)["metrics"] == metrics  # a pure function of the config


def test_one_step_transfer_refits_the_head():
    if not has("replearn.learners.one_step"):
        pytest.skip("replearn.learners.one_step is not there yet")
    text = """
name: transfer
target: {kind: paper}
methods: [{name: one_step, width: 20}]
d: [5]
n: [2000]
seeds: 1
n_holdout: 500
n_test: 2000
transfer: {target: {kind: paper_transfer}, N: [50, 500]}
"""
    small, large = [execute_run(c) for c in expand_grid(parse_spec(text))]
    assert small["status"] == large["status"] == "done", small["error"] or large["error"]
    assert small["metrics"]["pretrain_risk"] == large["metrics"]["pretrain_risk"]
    assert {"risk", "stderr", "pretrain_risk", "alignment"} <= set(small["metrics"])


UNSEEN = """
name: unseen
target: {kind: paper}
methods: [ENTRY]
d: [5]
n: [200]
seeds: [4]
n_holdout: 100
n_test: 300
dtype: float64
"""


@pytest.mark.parametrize(
    "entry, learner",
    [("{name: one_step, width: 20}", "OneStepNetwork"),
     ("{name: random_features, width: 20}", "RandomFeatures")],
    ids=["one_step", "random_features"],
)  # fmt: skip
def test_engine_risk_is_measured_on_samples_the_model_never_saw(entry, learner, monkeypatch):
    """Through execute_run (the engine path): every row drawn while the model is fitted is
    recorded, and so is every row the fitted model predicts on afterwards (the risk). The
    two sets must be disjoint, come from different (seed, split) streams, number n_test,
    and the reported risk must be mean (f(x) − f*(x))² over exactly those rows — noise-free
    f*, not the noisy labels. A run that measured its risk on its training (or holdout)
    samples, or on noisy labels, fails here."""
    import replearn as rl
    from replearn.data import DataStream

    cls = getattr(rl, learner)
    phase = {"fitting": False}
    drawn = {"fit": [], "after": []}
    predicted = []
    # every row a stream hands out (get, or chunks: kept or drawn) is assembled here
    assemble, fit_stream, predict = DataStream._assemble, cls.fit_stream, cls.predict

    def recording_assemble(self, start, stop, clean, drawn_blocks):
        out = assemble(self, start, stop, clean, drawn_blocks)
        where = "fit" if phase["fitting"] else "after"
        drawn[where].append(((self.seed, self.split_name), out[0].double().clone()))
        return out

    def recording_fit_stream(self, *args, **kwargs):
        phase["fitting"] = True
        try:
            return fit_stream(self, *args, **kwargs)
        finally:
            phase["fitting"] = False

    def recording_predict(self, X, *args, **kwargs):
        out = predict(self, X, *args, **kwargs)
        if not phase["fitting"]:
            predicted.append((torch.as_tensor(X).double().clone(), torch.as_tensor(out).double()))
        return out

    monkeypatch.setattr(DataStream, "_assemble", recording_assemble)
    monkeypatch.setattr(cls, "fit_stream", recording_fit_stream)
    monkeypatch.setattr(cls, "predict", recording_predict)
    (config,) = expand_grid(parse_spec(UNSEEN.replace("ENTRY", entry)))
    result = execute_run(config)
    assert result["status"] == "done", result["error"]

    fit_rows = torch.cat([X for _, X in drawn["fit"]])
    test_X = torch.cat([X for X, _ in predicted])
    assert len(fit_rows) >= config["n"] and len(test_X) == config["n_test"]
    # no test row is a training or holdout row (Gaussian rows coincide only if reused)
    assert not (torch.cdist(test_X, fit_rows) < 1e-12).any()
    fit_streams = {key for key, _ in drawn["fit"]}
    test_streams = {key for key, X in drawn["after"] if (torch.cdist(X, test_X) < 1e-12).any()}
    assert test_streams and not test_streams & fit_streams
    # the reported risk is the noise-free squared error on exactly these rows; it is an
    # average of the same float64 numbers, so only the order of summation differs (1e-12)
    target = build_target(config["target"], config["d"])
    errors = torch.cat([(f - target(X)) ** 2 for X, f in predicted])
    assert result["metrics"]["risk"] == pytest.approx(float(errors.mean()), rel=1e-12)
