"""Issue 11 in the engine: label transforms and giant steps as registry methods, the theory
command's label-transform report, and the per-step report figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from replearn.cli import main
from replearn.experiments.grid import expand_grid, run_id
from replearn.experiments.methods import (
    METHODS,
    SCATTER_NEURONS,
    OneStepParams,
    step_history,
)
from replearn.experiments.report.beyond import (
    figure_alignment_vs_step,
    figure_step_scatter,
    history_figures,
)
from replearn.experiments.spec import SpecError, parse_spec

BASE = """
name: beyond-test
target: {kind: expression, expr: "He2(z1) + He3(z1)*z2", seed: 0}
d: [6]
n: [300, 600]
seeds: 2
n_holdout: 200
n_test: 500
"""


def spec_with(methods: str):
    return parse_spec(BASE + "methods:\n" + methods)


# -- the registry --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "method, message",
    [
        ("{name: giant_step, batch: sometimes}", "methods[0].batch"),
        ("{name: giant_step, steps: 0}", "methods[0].steps"),
        ("{name: giant_step, step_size: [[1.0, -2.0]]}", "methods[0].step_size[0]"),
        ("{name: giant_step, output_scale: 1/d}", "methods[0].output_scale"),
        ("{name: one_step, label_transform: cube}", "methods[0].label_transform"),
        ("{name: one_step, label_transform: 'hermite:0'}", "methods[0].label_transform"),
        ("{name: giant_step, label_transform: [square, cube]}", "methods[0].label_transform[1]"),
    ],
)
def test_bad_hyper_parameters_are_one_line_spec_errors(method, message):
    with pytest.raises(SpecError) as info:
        spec_with(f"  - {method}\n")
    text = str(info.value)
    assert text.startswith(message) and "\n" not in text


def test_the_default_label_transform_does_not_enter_the_config():
    """Existing one_step specs keep their run ids: no ``label_transform`` key at None."""
    assert "label_transform" not in OneStepParams().model_dump()
    assert OneStepParams(label_transform="square").model_dump()["label_transform"] == "square"
    plain = expand_grid(spec_with("  - {name: one_step, width: 8}\n"))
    explicit_none = expand_grid(
        spec_with("  - {name: one_step, width: 8, label_transform: null}\n")
    )
    assert [run_id(c) for c in plain] == [run_id(c) for c in explicit_none]
    assert all("label_transform" not in c["params"] for c in plain)


def test_label_transform_and_batch_are_swept():
    configs = expand_grid(
        spec_with(
            "  - {name: one_step, width: 8, label_transform: [null, square, abs]}\n"
            "  - {name: giant_step, width: 8, steps: 2, batch: [fresh, reuse]}\n"
        )
    )
    one = [c["params"].get("label_transform") for c in configs if c["method"] == "one_step"]
    giant = [c["params"]["batch"] for c in configs if c["method"] == "giant_step"]
    # 2 n × 2 seeds per value
    assert sorted(map(str, set(one))) == ["None", "abs", "square"] and len(one) == 12
    assert sorted(set(giant)) == ["fresh", "reuse"] and len(giant) == 8
    assert len({run_id(c) for c in configs}) == len(configs)


def _config(method: str, **params):
    spec = spec_with(f"  - {{name: {method}}}\n")
    config = dict(expand_grid(spec)[0])
    config["params"] = METHODS[method].params.model_validate(params).model_dump()
    return config


def test_one_step_run_applies_the_label_transform():
    """The run is OneStepNetwork(label_transform=…) on the cell's stream: its alignment is
    the learner's own, and the square transform changes the first layer."""
    import replearn as rl
    from replearn.experiments.methods import _stream, build_target
    from replearn.metrics import subspace_alignment

    config = _config("one_step", width=16, label_transform="square")
    metrics = METHODS["one_step"].run(config)
    target = build_target(config["target"], config["d"])
    stream = _stream(target, config, config["seed"], config["noise"])
    model = rl.OneStepNetwork(width=16, label_transform="square", seed=config["seed"])
    model.fit_stream(stream, n=config["n"], n_holdout=config["n_holdout"])
    assert metrics["alignment"] == subspace_alignment(model.W_, target.U)
    plain = METHODS["one_step"].run(_config("one_step", width=16))
    assert plain["alignment"] != metrics["alignment"]


def test_giant_step_run_stores_the_learners_history():
    """The stored per-step summaries are the fitted model's ``history_``: alignment, mean
    cos² per direction and the first neurons' cosines (4 digits: |error| ≤ 5e-5)."""
    import replearn as rl
    from replearn.experiments.methods import _stream, build_target

    config = _config("giant_step", width=16, steps=2, batch="reuse", output_scale="1/m",
                     step_size=[30.0, 20.0])  # fmt: skip
    metrics = METHODS["giant_step"].run(config)
    target = build_target(config["target"], config["d"])
    # a spec's later_steps default is pinned to the stored behaviour, the network's gradient
    assert "later_steps" not in config["params"]
    model = rl.GiantStepNetwork(width=16, steps=2, batch="reuse", output_scale="1/m",
                                step_size=[30.0, 20.0], later_steps="gradient",
                                diagnostics_target=target, seed=config["seed"])  # fmt: skip
    stream = _stream(target, config, config["seed"], config["noise"])
    model.fit_stream(stream, n=config["n"], n_holdout=config["n_holdout"])
    history = metrics["history"]
    assert [h["step"] for h in history] == [1, 2]
    assert metrics["alignment"] == history[-1]["alignment"]
    for stored, entry in zip(history, model.history_, strict=True):
        assert stored["alignment"] == entry["alignment"]
        assert stored["step_norm"] == entry["step_norm"]
        cos2 = entry["direction_cosines"].pow(2).mean(dim=0)
        assert stored["direction_cos2"] == pytest.approx(cos2.tolist(), abs=1e-15)
        block = np.asarray(stored["cosines"])
        assert block.shape == (16, 2)
        assert np.abs(block - entry["direction_cosines"][:, :2].numpy()).max() <= 5e-5
    # later_steps="residual" in a spec enters the run config and reaches the learner
    residual = _config("giant_step", width=16, steps=2, batch="reuse", output_scale="1/m",
                       step_size=[30.0, 20.0], later_steps="residual")  # fmt: skip
    assert residual["params"]["later_steps"] == "residual"
    assert METHODS["giant_step"].run(residual)["alignment"] != metrics["alignment"]


def test_giant_step_with_one_step_is_algorithm_1_in_the_engine():
    """steps = 1 with the defaults is OneStepNetwork bit for bit, so the runs agree exactly."""
    one = METHODS["one_step"].run(_config("one_step", width=16))
    giant = METHODS["giant_step"].run(_config("giant_step", width=16))
    for key in ("risk", "alignment", "ridge_lambda"):
        assert giant[key] == one[key]


def test_the_history_kept_per_run_is_bounded():
    m, r, steps = 2 * SCATTER_NEURONS + 10, 3, 4
    history = [
        {"step": t + 1, "eta": 1.0, "step_norm": 1.0, "weight_norm": 1.0, "alignment": 0.5,
         "direction_cosines": torch.rand(m, r, dtype=torch.float64),
         "residual_degree_shares": {0: 0.1, 1: 0.2, 2: 0.3, "higher": 0.4}}
        for t in range(steps)
    ]  # fmt: skip
    summary = step_history(history)
    assert all(np.asarray(h["cosines"]).shape == (SCATTER_NEURONS, 2) for h in summary)
    assert all(len(h["direction_cos2"]) == r for h in summary)


# -- the theory command --------------------------------------------------------------------------
def test_theory_label_transform_names_rank_and_kappa(capsys):
    from replearn import theory
    from replearn.targets import MultiIndexTarget

    assert main(["theory", "--target", "He3(z1)/sqrt(6)", "--d", "16",
                 "--label-transform", "square"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    target = MultiIndexTarget.from_expression("He3(z1)/sqrt(6)", 16, seed=0)
    info = theory.label_transform_report(target, "square")
    # T = y² − E y² for y = He3(z)/√6 + ε: E[T|z] = He3(z)²/6 + const, and by Stein
    # E[∂²_z g] = E[g·He2(z)], so A_T = E[He3·He3·He2]/6 = (3!·3!·2!/(1!·1!·2!))/6 = 36/6 = 6
    # (the polynomial rule is exact: relative 1e-12 is rounding); κ is printed as computed
    assert info["rank"] == 1 and info["eigenvalues"] == pytest.approx([6.0], rel=1e-12)
    assert "rank(H_T), r      1, 1" in text
    assert f"kappa, kappa_step {info['kappa']:.4g}, {info['kappa_step']:.4g}" in text
    assert "rank(H), kappa    0, inf" in text  # the raw labels' Hessian is 0
    assert "sees all of S*" in text
    assert main(["theory", "--target", "He3(z1)/sqrt(6)", "--d", "16",
                 "--label-transform", "sign"]) == 0  # fmt: skip
    assert "rank(H_T), r      0, 1" in capsys.readouterr().out  # E[sign(y)|x] is odd in z


def test_theory_label_transform_errors_are_one_line_and_print_nothing(capsys):
    assert main(["theory", "--target", "z1*z2*z3", "--label-transform", "cube"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "--label-transform" in captured.err and "hermite:k" in captured.err
    assert main(["theory", "--target", "z1*z2*z3", "--label-transform", "abs",
                 "--noise", "-1"]) == 2  # fmt: skip
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1


# -- the figures ---------------------------------------------------------------------------------
def _records():
    rng = np.random.default_rng(0)

    def history(shift):
        return [
            {"step": t, "alignment": float(rng.uniform()), "direction_cos2": [0.1 * t + shift, 0.05],
             "cosines": rng.uniform(-1, 1, size=(5, 2)).round(4).tolist()}
            for t in (1, 2, 3)
        ]  # fmt: skip

    return [
        {"method": label, "n": n, "seed": seed, "d": 8, "history": history(0.01 * seed)}
        for label in ("giant_step[batch=fresh]", "giant_step[batch=reuse]")
        for n in (64, 512)
        for seed in (0, 1)
    ] + [{"method": "one_step", "n": 64, "seed": 0, "d": 8, "risk": 0.5}]


def test_alignment_figure_plots_the_stored_means_over_seeds():
    records = _records()
    fig = figure_alignment_vs_step(records, d=8)
    top = fig.axes[0]  # first label, one line per n
    assert top.get_title() == "giant_step[batch=fresh]"
    for line, n in zip(top.get_lines(), (64, 512), strict=False):
        runs = [r for r in records if r["method"] == "giant_step[batch=fresh]" and r["n"] == n]
        expected = [np.mean([r["history"][t]["alignment"] for r in runs]) for t in range(3)]
        assert list(line.get_xdata()) == [1, 2, 3]
        assert list(line.get_ydata()) == pytest.approx(expected, abs=1e-15)
    bottom = fig.axes[2]  # row 2, first label: per-direction cos² at n = 512
    u1 = bottom.get_lines()[0]
    runs = [r for r in records if r["method"] == "giant_step[batch=fresh]" and r["n"] == 512]
    expected = [np.mean([r["history"][t]["direction_cos2"][0] for r in runs]) for t in range(3)]
    assert list(u1.get_ydata()) == pytest.approx(expected, abs=1e-15)


def test_scatter_plots_the_stored_cosines_one_colour_per_step():
    history = _records()[0]["history"]
    fig = figure_step_scatter(history)
    collections = fig.axes[0].collections
    assert len(collections) == 3
    colours = {tuple(c.get_facecolor()[0]) for c in collections}
    assert len(colours) == 3
    for collection, entry in zip(collections, history, strict=True):
        assert np.array_equal(collection.get_offsets(), np.asarray(entry["cosines"]))


def test_history_figures_are_written_only_for_runs_with_history(tmp_path):
    written = history_figures(_records(), 8, tmp_path, "x")
    assert [p["png"].name for p in written] == ["x-steps.png", "x-scatter-0.png", "x-scatter-1.png"]
    assert all(p["png"].exists() and p["pdf"].exists() for p in written)
    assert history_figures([{"method": "one_step", "n": 1, "seed": 0}], 8, tmp_path, "y") == []


def test_report_draws_the_step_figures(tmp_path):
    """``replearn report`` on a store with a giant_step experiment: the per-step figures."""
    from replearn.experiments.api import run_experiment, write_report

    spec = spec_with(
        "  - {name: giant_step, width: 8, steps: 2, batch: reuse, output_scale: 1/m,"
        " step_size: [[20.0, 10.0]]}\n"
    )
    db = tmp_path / "r.sqlite"
    assert run_experiment(spec, db=db, executor="serial", quiet=True).ok
    index = write_report(db, tmp_path / "report")
    names = {p.name for p in (tmp_path / "report").iterdir()}
    assert {"beyond-test-steps.png", "beyond-test-scatter-0.png"} <= names
    assert "beyond-test-steps.png" in index.read_text() or "data:image/png" in index.read_text()
    assert math.isfinite(1.0)


def test_a_scaling_spec_sweeps_the_label_transform():
    """Params dicts may lack an option left out at None: the search labels still say which."""
    from replearn.experiments.scaling import plan_searches

    spec = parse_spec(
        BASE.replace("n: [300, 600]\n", "kind: scaling\n")
        + "methods:\n  - {name: one_step, width: 8, label_transform: [square, null]}\n"
        + "scaling: {threshold: 0.2, n_start: 'd^1', n_stop: 'd^2'}\n"
    )
    labels = sorted({search.label for search in plan_searches(spec)})
    assert labels == ["one_step[label_transform=None]", "one_step[label_transform=square]"]
