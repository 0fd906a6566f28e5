"""The per-step reproductions from specs (issue 21): Dandi et al. 2023's several giant steps
(configs/reproduce/dandi2023-steps-*.yaml) and Dandi et al. 2024's batch reuse against fresh
batches (configs/reproduce/dandi2024-reuse.yaml).

- the theory's slope μ₁(u₂)/μ₁(u₁) and the "hypercube" second layer;
- what a giant-step run stores per step (step cosines, overlaps, the network's risk, step 0);
- the figures draw the stored numbers (read back from the matplotlib artists);
- each shipped spec, reduced (smaller d, the same ratios, a few seeds), run by the engine and
  compared with the peer procedure of ``tests/peers.py`` on independent seeds.

Tolerance of the engine-vs-peer checks (as tests/test_reproductions.py): for a quantity with
per-seed sds s_r (replearn, k_r seeds) and s_p (peer, k_p seeds) the difference of the two
means has sd √(s_r²/k_r + s_p²/k_p) when both estimate the same expectation; Z = 4 of it is
allowed (two-sided normal tail 6·10⁻⁵ per quantity; the ≈ 80 quantities below give a false
failure with probability < 6·10⁻³, and the seeds are fixed, so the outcome is deterministic).
Power: the step sizes ‖ΔW‖/‖W‖ and the overlaps move by far more than that bound when η is
off by 2 (the ½ of the loss forgotten), see tests/test_reproductions.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from peers import dandi2023_steps, dandi2024_committee
from replearn.experiments.catalog import shipped_configs
from replearn.experiments.grid import expand_grid
from replearn.experiments.methods import METHODS, build_target
from replearn.experiments.report.beyond import (
    PLOTTED_NEURONS,
    figure_step_cosines,
    figure_step_trajectories,
    history_figures,
    slope_through_zero,
    step_table,
    step_values,
)
from replearn.experiments.spec import validate_spec
from replearn.experiments.yaml_strict import load_yaml
from replearn.network import HYPERCUBE_FIXED, initial_network
from replearn.targets import MultiIndexTarget
from replearn.theory import first_hermite_coefficients, first_step_slope

Z = 4.0


def _agree(ours, theirs, what):
    """Means over seeds (axis 0) agree within Z combined standard errors, entry by entry."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    gap = np.abs(ours.mean(0) - theirs.mean(0))
    bound = Z * np.sqrt(ours.var(0, ddof=1) / len(ours) + theirs.var(0, ddof=1) / len(theirs))
    assert (gap <= bound).all(), f"{what}: gap {gap} > bound {bound}"


# -- theory: the first step's slope ---------------------------------------------------------------
def test_first_hermite_coefficients_are_the_degree_one_terms():
    """μ₁(u_k) = E[f*·z_k]: 4·½ and ½ for (4z₁ + z₁² + z₂)/2; products z₁z₂ add nothing;
    for a link, E[tanh(z)·z] = E[1 − tanh²(z)] (Stein), by a 200-point Gauss–Hermite rule."""
    spike = MultiIndexTarget.from_expression("(4*z1 + z1^2 + z2)/2", d=8, normalize=False)
    assert first_hermite_coefficients(spike).tolist() == [2.0, 0.5]
    mixed = MultiIndexTarget.from_expression("z1*z2 + 3*z2 + He3(z1)", d=8, normalize=False)
    assert first_hermite_coefficients(mixed).tolist() == [0.0, 3.0]
    nodes, weights = np.polynomial.hermite_e.hermegauss(200)
    stein = float((weights * (1 - np.tanh(nodes) ** 2)).sum() / weights.sum())
    link = build_target({"kind": "link", "link": "tanh(z1)", "normalize": False, "seed": 0}, 8)
    assert float(first_hermite_coefficients(link)[0]) == pytest.approx(stein, abs=1e-8)


def test_first_step_slope_is_the_notebooks_line():
    """1/4 for example 1 (μ₁(4z + z²) = 4, μ₁(z) = 1) and 1 for example 2 (the notebook's
    printed slopes); one line errors for r = 1 and for μ₁(u₁) = 0."""
    for name, slope in (("spike", 0.25), ("escape", 1.0)):
        spec = load_yaml(shipped_configs()[f"reproduce/dandi2023-steps-{name}"].read_text())
        target = build_target({**spec["target"], "seed": 0}, 16)
        assert first_step_slope(target) == slope
    single = MultiIndexTarget.from_expression("z1 + z1^2", d=4, normalize=False)
    with pytest.raises(ValueError, match="r ≥ 2"):
        first_step_slope(single)
    with pytest.raises(ValueError, match="μ₁"):
        first_step_slope(MultiIndexTarget.from_expression("z1^2 + z2", d=4, normalize=False))


# -- the network: the notebook's second layer ------------------------------------------------------
@pytest.mark.parametrize("width", [64, 41, 7])
def test_hypercube_second_layer_fixes_the_first_signs(width):
    net = initial_network(width, 5, seed=3, first_layer="gaussian", second_layer="hypercube",
                          dtype=torch.float64)  # fmt: skip
    a = net.a * math.sqrt(width)
    k = min(HYPERCUBE_FIXED, (width + 1) // 2)
    assert (a[:k] == 1).all() and (a[k : 2 * k] == -1).all()
    assert set(a.abs().tolist()) == {1.0}
    again = initial_network(width, 5, seed=3, first_layer="gaussian", second_layer="hypercube",
                            dtype=torch.float64)  # fmt: skip
    assert torch.equal(again.a, net.a) and torch.equal(again.W, net.W)


# -- reduced specs through the engine ---------------------------------------------------------------
def _reduced(name: str, **changes) -> list[dict]:
    """The run configs of the shipped spec ``name`` with ``changes`` (smaller sizes)."""
    data = load_yaml(shipped_configs()[name].read_text())
    method = dict(data["methods"][0], **changes.pop("method", {}))
    spec = validate_spec({**data, **changes, "methods": [method]})
    return expand_grid(spec)


def _run(config: dict) -> dict:
    return METHODS[config["method"]].run(config)


def test_run_stores_step_cosines_overlaps_and_the_networks_risk():
    """A run's stored blocks are the learner's own (4 digits), its step 0 is W⁰'s, and with
    head none the network's risk after the last step is the run's risk; without residual
    shares the weights are the same bit for bit."""
    import replearn as rl
    from replearn.experiments.methods import _stream

    config = _reduced("reproduce/dandi2024-reuse", d=[40], n=[120], n_test=200, seeds=1)[0]
    metrics = _run(config)
    target = build_target(config["target"], config["d"])
    params = {k: v for k, v in config["params"].items() if k != "degree_shares"}
    models = {}
    for shares in (True, False):
        model = rl.GiantStepNetwork(**params, degree_shares=shares, diagnostics_target=target,
                                    directions=target.U, seed=config["seed"], dtype="float64")  # fmt: skip
        models[shares] = model.fit_stream(_stream(target, config, config["seed"], 0.0), n=120)
    assert torch.equal(models[True].W_, models[False].W_)
    assert "residual_degree_shares" in models[True].history_[0]
    assert "residual_degree_shares" not in models[False].history_[0]
    model = models[False]
    for stored, entry in zip(metrics["history"], model.history_, strict=True):
        for key, block in (("step_cosines", "step_cosines"), ("overlaps", "direction_overlaps")):
            assert np.abs(np.asarray(stored[key]) - entry[block][:, :2].numpy()).max() <= 5e-5
    assert metrics["initial"]["step"] == 0 and "step_cosines" not in metrics["initial"]
    assert np.abs(np.asarray(metrics["initial"]["overlaps"])).max() <= 5e-5  # W⁰ ⟂ span U
    assert metrics["history"][-1]["network_risk"] == pytest.approx(metrics["risk"], rel=1e-9)


def _steps_peer(example, d, p, T, seed):
    """The notebook's procedure (peers.dandi2023_steps) on numpy draws: per step the mean
    |cos(G_i, θ₁)|, |cos(G_i, θ₂)| of the 40 plotted neurons, ‖ΔW‖/‖W^t‖, step 1's slope."""
    rng = np.random.default_rng(1000 + seed)
    theta = np.linalg.qr(rng.standard_normal((d, 2)))[0].T
    W0 = rng.standard_normal((p, d)) / math.sqrt(d)
    signs = np.sign(rng.standard_normal(p))
    signs[:20], signs[20:40] = 1.0, -1.0
    a0 = signs / math.sqrt(p)
    links = {"spike": (lambda z: 4 * z + z**2, lambda z: z),
             "escape": (lambda z: z + z**2, lambda z: z - z**2)}[example]  # fmt: skip
    batches = []
    for _ in range(T):
        Zb = rng.standard_normal((d, d))
        batches.append((Zb, (links[0](Zb @ theta[0]) + links[1](Zb @ theta[1])) / 2))
    steps = dandi2023_steps(batches, W0, a0, 2.0 * p)
    cos = np.stack([s["gradient"] @ theta.T / np.linalg.norm(s["gradient"], axis=1)[:, None]
                    for s in steps])[:, :PLOTTED_NEURONS]  # fmt: skip
    Ws = [W0] + [s["W"] for s in steps]
    sizes = [np.linalg.norm(Ws[t + 1] - Ws[t]) / np.linalg.norm(Ws[t + 1]) for t in range(T)]
    return np.concatenate(
        [np.abs(cos).mean(axis=1).reshape(-1), sizes, [slope_through_zero(cos[0])]]
    )


@pytest.mark.parametrize("example", ["spike", "escape"])
def test_dandi2023_steps_spec_reduced_matches_the_notebook(example):
    """The shipped spec at d = n = 160, p = d/4 = 40, η = 2p (step_size p), 6 fresh-batch
    steps, 6 seeds, against the notebook's procedure: per step the mean |cosines| of the
    plotted neurons' step rows with θ₁ and θ₂ and the step's relative size, and step 1's
    slope through 0."""
    d, p, T, k = 160, 40, 6, 6
    configs = _reduced(f"reproduce/dandi2023-steps-{example}", d=[d], n=[d], n_test=500,
                       seeds=k, dtype="float64", method={"width": p, "step_size": float(p)})  # fmt: skip
    ours = []
    for config in configs:
        history = _run(config)["history"]
        cos = np.array([h["step_cosines"] for h in history])[:, :PLOTTED_NEURONS]
        sizes = [h["step_norm"] / h["weight_norm"] for h in history]
        ours.append(np.concatenate([np.abs(cos).mean(axis=1).reshape(-1), sizes,
                                    [slope_through_zero(cos[0])]]))  # fmt: skip
    theirs = [_steps_peer(example, d, p, T, s) for s in range(k)]
    _agree(ours, theirs, f"{example}: mean |cos θ₁|, |cos θ₂|, ‖ΔW‖/‖W‖, step-1 slope")


def _committee_peer(D, seed, steps, fresh):
    """simulation.py's ``committee`` (online = fresh) on numpy draws: m(t) of neuron 1 with
    both teacher directions and the test error Σ½(y − f)²/N, t = 0…steps."""
    N, rng = 3 * D, np.random.default_rng(2000 + seed)
    frame = np.linalg.qr(rng.standard_normal((D, 4)))[0].T * math.sqrt(D)
    theta, W0 = frame[:2], frame[2:]

    def draw(n):
        X = rng.standard_normal((n, D))
        h1, h2 = X @ theta[0] / math.sqrt(D), X @ theta[1] / math.sqrt(D)
        return X, np.tanh(h1 + h2**3 - 3 * h2)

    X_test, y_test = draw(N)
    batches = [draw(N) for _ in range(steps + 1)] if fresh else [draw(N)] * (steps + 1)
    a = np.array([1.0, -1.0]) / math.sqrt(2)
    out = dandi2024_committee(batches, X_test, y_test, W0, a, theta, 0.2)
    return np.column_stack([out["overlaps"][:, 0], out["test_errors"]])


def test_dandi2024_spec_reduced_matches_the_simulation_with_reuse_and_fresh_batches():
    """The shipped spec at D = 100, N = 3D (its ratio), 10 seeds, both methods (batch reuse
    and a fresh batch per step), against simulation.py's committee with online = False and
    True: m₁₁, m₁₂ and the test error Σ½(y − f)²/N (replearn's network_risk/2) at t = 1…6."""
    D, k = 100, 10
    configs = _reduced("reproduce/dandi2024-reuse", d=[D], n=[3 * D], n_test=3 * D, seeds=k)
    for batch in ("reuse", "fresh"):
        ours = []
        for config in (c for c in configs if c["params"]["batch"] == batch):
            metrics = _run(config)
            entries = [metrics["initial"]] + metrics["history"]
            ours.append([[*e["overlaps"][0], e["network_risk"] / 2] for e in entries])
        theirs = [_committee_peer(D, s, 6, batch == "fresh") for s in range(k)]
        assert len(ours) == k
        _agree(np.array(ours)[:, 1:], np.array(theirs)[:, 1:], f"{batch}: m₁₁, m₁₂, error")


# -- the figures draw the stored numbers -----------------------------------------------------------
def _history(rng, steps=3, width=50, initial=True):
    entries = [{"step": t, "overlaps": rng.normal(size=(2, 2)).round(4).tolist(),
                "network_risk": float(rng.uniform(0.5, 1.0)), "alignment": 0.5,
                "cosines": rng.uniform(-1, 1, size=(width, 2)).round(4).tolist(),
                "direction_cos2": [0.1, 0.2],
                "step_cosines": rng.uniform(-1, 1, size=(width, 2)).round(4).tolist()}
               for t in range(steps + 1)]  # fmt: skip
    del entries[0]["step_cosines"]
    return (entries[0] if initial else None), entries[1:]


def _records(seed=0):
    rng = np.random.default_rng(seed)
    records = []
    for label, batch in (
        ("giant_step[batch=fresh]", "fresh"),
        ("giant_step[batch=reuse]", "reuse"),
    ):
        for s in range(3):
            initial, history = _history(rng)
            records.append({"method": label, "param_batch": batch, "n": 64, "d": 8, "seed": s,
                            "initial": initial, "history": history})  # fmt: skip
    return records


def test_step_cosine_figure_draws_the_stored_points_and_the_slope_line():
    _, history = _history(np.random.default_rng(1))
    fig = figure_step_cosines(history, slope=0.25, d=64)
    assert len(fig.axes) == len(history)
    for ax, entry in zip(fig.axes, history, strict=True):
        (points,) = ax.collections
        expected = np.asarray(entry["step_cosines"])[:PLOTTED_NEURONS]
        assert np.array_equal(points.get_offsets(), expected)
        x, y = ax.lines[0].get_data()
        assert np.allclose(y, 0.25 * x) and (x.min(), x.max()) == (-1.0, 1.0)
        radii = sorted(patch.get_radius() for patch in ax.patches)
        assert radii == [2 / 8, 1.0]


PUBLISHED = {
    "source": "test",
    "metric": "excess_risk",
    "scale": 2.0,  # a published ½-MSE: replearn's risks are twice the published numbers
    "per_step": [
        {"step": 1, "quantity": "overlap[0,1]", "mean": -0.3, "sd": 0.01},
        {"step": 2, "quantity": "overlap[0,1] (DMFT)", "mean": -0.4},
        {"step": 1, "quantity": "network_risk", "mean": 0.3, "sd": 0.02, "batch": "reuse"},
        {"step": 1, "quantity": "network_risk (DMFT)", "mean": 0.31},
    ],
}


def test_trajectory_figure_draws_the_means_over_seeds_and_the_published_points():
    records = _records()
    fig = figure_step_trajectories(records, PUBLISHED)
    assert len(fig.axes) == 3  # u₁, u₂, risk
    panels = (("overlap[0,0]", 0), ("overlap[0,1]", 0), ("network_risk", None))
    for ax, (quantity, neuron) in zip(fig.axes, panels, strict=True):
        line = ax.get_lines()[0]  # first label (fresh), first neuron
        runs = [r for r in records if r["method"] == "giant_step[batch=fresh]"]
        expected = []
        for t in range(4):
            entries = [([r["initial"]] + r["history"])[t] for r in runs]
            if quantity == "network_risk":
                values = [e["network_risk"] for e in entries]
            else:
                values = [e["overlaps"][neuron][int(quantity[-2])] for e in entries]
            expected.append(abs(np.mean(values)))
        assert list(line.get_xdata()) == [0, 1, 2, 3]
        assert list(line.get_ydata()) == pytest.approx(expected, abs=1e-12)
    points = {
        (tuple(c.lines[0].get_xydata()[0].round(12)), c.get_label())
        for ax in fig.axes
        for c in ax.containers
    }
    assert points == {  # |mean|; the risks times the block's scale, the overlaps not
        ((1.0, 0.3), "published"),
        ((2.0, 0.4), "published DMFT"),
        ((1.0, 0.6), "published"),
        ((1.0, 0.62), "published DMFT"),
    }


def test_step_table_puts_the_published_numbers_beside_replearns():
    records = _records()
    table = step_table(records, PUBLISHED)
    values = step_values(records)
    by = ("method", "quantity", "step")
    for row in table:
        same = [v["value"] for v in values if all(v[k] == row[k] for k in by)]
        assert row["mean"] == pytest.approx(np.mean(same)) and row["seeds"] == len(same) == 3
    risk = {r["method"]: r for r in table if r["quantity"] == "network_risk" and r["step"] == 1}
    assert risk["giant_step[batch=reuse]"]["published"] == "0.6000 ± 0.0400"
    assert risk["giant_step[batch=fresh]"]["published"] == ""  # the row names batch: reuse
    assert risk["giant_step[batch=fresh]"]["published DMFT"] == "0.6200"
    overlap = [r for r in table if r["quantity"] == "overlap[0,1]" and r["step"] == 1]
    assert {r["published"] for r in overlap} == {"-0.3000 ± 0.0100"}


def test_history_figures_add_the_step_figures_when_the_runs_stored_them(tmp_path):
    target = MultiIndexTarget.from_expression("(4*z1 + z1^2 + z2)/2", d=8, normalize=False)
    records = [r for r in _records() if r["param_batch"] == "reuse"]
    written = history_figures(records, 8, tmp_path, "x", target=target)
    names = [p["png"].name for p in written]
    assert names == ["x-steps.png", "x-scatter-0.png", "x-step-cosines-0.png", "x-trajectories.png"]
    for record in records:  # two neurons: their steps are the trajectories, not the scatter
        for entry in record["history"]:
            entry["step_cosines"] = entry["step_cosines"][:2]
    written = history_figures(records, 8, tmp_path, "y", target=target)
    assert "y-step-cosines-0.png" not in [p["png"].name for p in written]


def test_report_with_a_per_step_only_published_block(tmp_path):
    """A published block with per_step rows and no values (Dandi et al. 2023's several steps
    publish a figure, no final number) draws the report without a Published vs replearn
    table."""
    from replearn.experiments.api import run_experiment, write_report
    from replearn.experiments.spec import parse_spec

    spec = parse_spec(
        "name: per-step-only\ntarget: {kind: paper, seed: 0}\nd: [4]\nn: [8]\nseeds: 1\n"
        "n_holdout: 0\nn_test: 2\nmethods: [{name: synthetic}]\n"
        "published: {source: a figure, per_step: [{step: 1, quantity: slope, mean: 0.25}]}\n"
    )
    db = tmp_path / "r.sqlite"
    assert run_experiment(spec, db=db, executor="serial", quiet=True).ok
    write_report(db, tmp_path / "report")
    assert not list((tmp_path / "report").glob("*-published.md"))
