"""``scaling.event: recovery``: the engine's n*(d) from weak-recovery times of OnlineSGD.

The target He₂(u·x)/√2 has information exponent 2: spherical online SGD (σ = He₂/√2, η =
1/(d·log d)) recovers u within O(d·log d) samples, so at d = 16, 32, 64 a budget of d²
samples censors few replicas and the median times give a finite, positive slope.
"""

import math

import pytest

from replearn.experiments.api import estimate_cells
from replearn.experiments.report import scaling_section
from replearn.experiments.scaling import plan_searches, recovery_cells, run_scaling
from replearn.experiments.spec import SpecError, parse_spec
from replearn.experiments.store import Store

SPEC = """
name: recovery-event
kind: scaling
target: {kind: expression, expr: "He2(z1)/sqrt(2)", seed: 0}
noise: 0.0
methods:
  - {name: online_sgd, activation: "hermite:2", replicas: 16, stop_at_recovery: true}
d: [16, 32, 64]
seeds: 1
n_holdout: 0
n_test: 100
scaling: {threshold: 0.5, n_start: 1, n_stop: BUDGET, event: recovery}
"""


def spec(budget='"d^2"', **replace):
    text = SPEC.replace("BUDGET", budget)
    for old, new in replace.items():
        text = text.replace(old, new)
    return parse_spec(text)


def test_default_event_is_risk_and_stays_out_of_run_configs():
    risk = spec(**{"event: recovery": "event: risk"})
    plain = spec(**{", event: recovery": ""})
    assert plain.scaling.event == "risk"
    configs = [s.config(plain, 100, 0) for s in plan_searches(plain)]
    assert configs == [s.config(risk, 100, 0) for s in plan_searches(risk)]
    assert all("threshold" not in c["params"] and "event" not in c for c in configs)


def test_recovery_runs_one_budget_per_seed_with_the_spec_threshold():
    at_default = spec()
    cells = recovery_cells(at_default)
    assert sorted(n for _, n, _ in cells.values()) == [16**2, 32**2, 64**2]
    assert estimate_cells(at_default) == {"online_sgd": 3}
    # the learner's threshold is the spec's: left out of the config at its default 0.5 ...
    assert all("threshold" not in search.config(at_default, 1, 0)["params"]
               for search, _, _ in cells.values())  # fmt: skip
    raised = spec(**{"threshold: 0.5": "threshold: 0.75"})
    assert {dict(s.params)["threshold"] for s in plan_searches(raised)} == {0.75}


ONLINE = 'name: online_sgd, activation: "hermite:2", replicas: 16, stop_at_recovery: true'


@pytest.mark.parametrize(
    "replace, message",
    [
        ({ONLINE: "name: one_step, width: 8"}, "methods\\[0\\].name: 'one_step' reports no"),
        ({"threshold: 0.5": "threshold: 2.0"}, "scaling.threshold: .* must be in \\(0, 1\\]"),
        ({"replicas: 16": "replicas: 16, threshold: 0.3"}, "methods\\[0\\].threshold: set by"),
        ({"event: recovery": "event: overlap"}, "scaling.event"),
    ],
)
def test_spec_errors(replace, message):
    with pytest.raises(SpecError, match=message):
        spec(**replace)


@pytest.mark.slow
def test_recovery_event_gives_a_finite_exponent_and_a_report(tmp_path):
    scaling_spec = spec()
    db = tmp_path / "r.sqlite"
    summary = run_scaling(scaling_spec, db=db, quiet=True, n_boot=200)
    fit = summary.scaling["fits"]["online_sgd"]
    assert summary.scaling["event"] == "recovery" and summary.executed == 3
    assert all(fit["n_star"][d] is not None for d in (16, 32, 64))
    # theory for k = 2: d·log d, a slope of 1 + 1/log d ≈ 1.3 here; the replicas' spread at
    # 16 times per d is wide, so only finiteness, a positive slope and the CI's order
    assert 0.3 < fit["slope"] < 3.0 and fit["ci"][0] <= fit["slope"] <= fit["ci"][1]
    assert fit["theory_slope"] == 1.0 and fit["runs"] == {16: 16, 32: 16, 64: 16}
    again = run_scaling(scaling_spec, db=db, quiet=True, n_boot=200)
    assert again.executed == 0 and again.scaling["fits"]["online_sgd"]["n_star"] == fit["n_star"]
    section = scaling_section(db, "recovery-event", tmp_path / "report")
    assert section["tables"][0][0]["method"] == "online_sgd"
    assert all(p.is_file() for p in section["figures"])


def test_censoring_a_short_budget(tmp_path):
    """A budget of 4 samples: (almost) every replica is censored, so the medians are not
    reached, no slope is fitted, and the censored shares say why."""
    summary = run_scaling(spec(budget="4"), db=tmp_path / "c.sqlite", quiet=True, n_boot=50)
    fit = summary.scaling["fits"]["online_sgd"]
    assert fit["slope"] is None and all(n is None for n in fit["n_star"].values())
    assert all(share > 0.5 for share in fit["censored"].values())
    with Store(tmp_path / "c.sqlite") as store:
        rows = store.runs("recovery-event")
    assert all(len(r["metrics"]["recovery_samples"]) == 16 for r in rows)
    assert not math.isnan(sum(fit["censored"].values()))


def test_theory_slope_with_each_sample_used_twice_is_the_generative_exponents():
    """He₃ (k = 3, k* = 1): plain online SGD d^{k−1} = d², the look-ahead step (``lookahead_lr``)
    and repeats = 2 d^{max(1, k*−1)} = d (Arnaboldi et al. 2024)."""
    from replearn.experiments.scaling import scaling_fits

    he3 = {"He2(z1)/sqrt(2)": "He3(z1)"}
    assert scaling_fits(spec(**he3), [])["theory"] == {"online_sgd": 2.0}
    for twice in (', lookahead_lr: "0.05/d"', ", repeats: 2"):
        assert scaling_fits(spec(**he3, **{ONLINE: ONLINE + twice}), [])["theory"] == {
            "online_sgd": 1.0
        }
