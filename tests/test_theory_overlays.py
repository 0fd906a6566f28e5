"""Theory lines in the report's figures: each line read back from the matplotlib artists equals
the theory function evaluated at the same points, and runs outside a theory's assumptions get
no line (and a reason for the caption)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import replearn as rl  # noqa: E402
from replearn.experiments.methods import overlap_trace, run_online_sgd  # noqa: E402
from replearn.experiments.report.figures import (  # noqa: E402
    figure_alignment_vs_n,
    figure_overlap_trajectory,
    figure_risk_vs_n,
    plt,
    risk_overlays,
    trajectory_overlays,
    trajectory_records,
)
from replearn.theory.one_step_asymptotics import one_step_asymptotics  # noqa: E402
from replearn.theory.online_ode import online_overlap_ode  # noqa: E402
from replearn.theory.weak_recovery import weak_recovery_threshold  # noqa: E402

D = 16
CUI = {  # Cui et al.'s model as a one_step run with fresh head samples (data: resample)
    "param_width": 16, "param_data": "resample", "param_activation": "tanh",
    "param_output_scale": "1/sqrt(m)", "param_second_layer": "constant",
    "param_first_layer": "unit_rows", "param_biases": "none", "param_weight_decay": 0.0,
    "param_preprocess": False, "param_eta1": 8.0, "param_ridge_lambda": 0.002,
}  # fmt: skip
NS = (16, 32, 64)


def _records(params: dict, method: str = "one_step", noise: float = 0.0) -> list[dict]:
    return [
        dict(params, method=method, d=D, n=n, seed=seed, risk=0.3 / (1 + n / D), noise=noise)
        for n in NS
        for seed in (0, 1)
    ]


def _theory_lines(fig) -> dict[str, tuple[list, list]]:
    return {
        line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
        for ax in fig.axes
        for line in ax.get_lines()
        if line.get_gid() == "theory"
    }


@pytest.fixture(scope="module")
def tanh_target():
    return rl.MultiIndexTarget.from_expression("tanh(z1)", d=D, seed=0, normalize=False)


def _cui_test_error(n: int, d, noise: float = 0.0) -> float:
    """The theory at one n of a data: resample run, translated here independently of the report:
    step on ⌊n/2⌋ samples, head on the rest, η̃ = 2η₁/p, λ = λ'·n_head/2, ψ = p/d."""
    n_step, n_head = n // 2, n - n // 2
    return float(
        one_step_asymptotics(
            student="tanh", teacher="tanh(z1)", alpha0=n_step / D, eta=2 * 8.0 / 16,
            ridge_lambda=0.002 * n_head / 2, alpha=[n_head / D], width_ratio=16 / D,
            noise=noise, d=d, seed=0,
        ).test_error[0]
    )  # fmt: skip


@pytest.mark.parametrize("noise", [0.5])  # the noise reaches the theory (one case: ~10 s)
def test_risk_figure_draws_the_one_step_asymptotics_of_a_cui_run(tanh_target, noise):
    fig = figure_risk_vs_n(_records(CUI, noise=noise), tanh_target, panel_key=None)
    lines = _theory_lines(fig)
    plt.close(fig)
    infinite = next(v for k, v in lines.items() if "one-step theory, d → ∞" in k)
    finite = next(v for k, v in lines.items() if f"one-step theory, d = {D}" in k)
    xs, ys = finite
    assert xs == pytest.approx([math.log(n) / math.log(D) for n in NS], rel=1e-12)
    assert ys == pytest.approx([_cui_test_error(n, D, noise) for n in NS], rel=1e-9)
    xs, ys = infinite
    ns = [D**x for x in xs]
    assert set(NS) <= {round(n) for n in ns}  # the runs' own n are on the d → ∞ curve
    assert ys == pytest.approx([_cui_test_error(round(n), None, noise) for n in ns], rel=1e-9)
    # the paper's lines are drawn as before: zero predictor at E f*² (the plotted risk is
    # E[(f − f*)²], and tanh(z1) as written has E f*² ≈ 0.394, not 1)
    zero = lines["zero predictor"][1]
    assert zero == pytest.approx([tanh_target.norm2()] * 2, rel=1e-12)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"param_data": "same"}, "fresh samples"),
        ({"param_activation": "relu"}, "not centred"),
        ({"param_output_scale": 1.0}, "output_scale"),
        ({"param_biases": "paper"}, "biases"),
        ({"param_ridge_lambda": "auto"}, "fixed λ"),
        ({"param_weight_decay": "paper"}, "weight_decay"),
    ],
)
def test_a_run_outside_the_one_step_theory_gets_no_line_and_a_reason(tanh_target, change, reason):
    records = _records({**CUI, **change})
    overlays = risk_overlays(records, tanh_target, None)
    fig = figure_risk_vs_n(records, tanh_target, panel_key=None, overlays=overlays)
    assert not [k for k in _theory_lines(fig) if "one-step theory" in k]
    plt.close(fig)
    (overlay,) = overlays.values()
    assert overlay.lines == [] and reason in overlay.notes[0]


def test_giant_step_heads_on_its_own_samples_so_no_one_step_line(tanh_target):
    records = _records({"param_width": 16, "param_steps": 1}, method="giant_step")
    (overlay,) = risk_overlays(records, tanh_target, None).values()
    assert overlay.lines == [] and "own samples" in overlay.notes[0]


def test_a_multi_index_target_gets_no_one_step_line():
    target = rl.MultiIndexTarget.from_expression("tanh(z1 + z2)", d=D, seed=0, normalize=False)
    (overlay,) = risk_overlays(_records(CUI), target, None).values()
    assert overlay.lines == [] and "single-index" in overlay.notes[0]


def test_alignment_figure_draws_the_weak_recovery_threshold():
    target = rl.MultiIndexTarget.from_expression("He2(z1)/sqrt(2)", d=D, seed=0)
    records = [dict(r, alignment=0.1 * r["n"] / D) for r in _records({"param_width": 8})]
    fig = figure_alignment_vs_n(records, target, D)
    lines = _theory_lines(fig)
    plt.close(fig)
    (label,) = [k for k in lines if "α_c" in k]
    alpha_c = weak_recovery_threshold(target, noise=0.0)
    assert alpha_c == pytest.approx(0.5, rel=1e-9)  # y = He2(z): E[z²|y] = 1 + √2·y, α_c = 1/2
    assert lines[label][0] == pytest.approx([math.log(alpha_c * D) / math.log(D)] * 2, rel=1e-12)


def test_alignment_figure_of_a_multi_index_target_has_no_threshold():
    target = rl.MultiIndexTarget.from_expression("z1*z2", d=D, seed=0)
    records = [dict(r, alignment=0.5) for r in _records({"param_width": 8})]
    fig = figure_alignment_vs_n(records, target, D)
    assert not [k for k in _theory_lines(fig) if "α_c" in k]
    plt.close(fig)


def _online_records(params: dict) -> list[dict]:
    samples = [0, 1, 10, 100, 1000, 4000]
    return [
        dict(params, method="online_sgd", d=D, n=4000, seed=seed, noise=0.0, lr=0.01,
             risk=0.5, overlap_trace={"samples": samples,
                                      "overlap": [[m0, m0, 0.2, 0.4, 0.8, 0.9] for m0 in starts]})
        for seed, starts in ((0, (0.1, -0.2)), (1, (0.25, 0.3)))
    ]  # fmt: skip


def test_trajectory_figure_draws_the_online_ode_over_the_mean_overlap():
    target = rl.MultiIndexTarget.from_expression("He2(z1)/sqrt(2)", d=D, seed=0)
    records = _online_records({})
    fig = figure_overlap_trajectory(records, target, D)
    ax = fig.axes[0]
    data = [line for line in ax.get_lines() if line.get_marker() == "o"][0]
    lines = _theory_lines(fig)
    plt.close(fig)
    # the simulated line: mean over the 4 replicas of |m(t)| (t = 0 drawn at ½ on the log axis)
    assert list(data.get_ydata()) == pytest.approx([0.2125, 0.2125, 0.2, 0.4, 0.8, 0.9])
    (label,) = [k for k in lines if "ODE" in k]
    samples = [0, 1, 10, 100, 1000, 4000]
    expected = np.mean(
        [
            np.abs(online_overlap_ode(target, lr=0.01, n=4000, m0=m0, samples=samples).overlap)
            for m0 in (0.1, -0.2, 0.25, 0.3)
        ],
        axis=0,
    )
    assert lines[label][1] == pytest.approx(list(expected), rel=1e-12)
    assert lines[label][0] == pytest.approx([0.5, 1, 10, 100, 1000, 4000])
    (threshold,) = [k for k in lines if "α_c" in k]
    assert lines[threshold][0] == pytest.approx([0.5 * D] * 2, rel=1e-9)


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"param_width": 2}, "one neuron"), ({"param_repeats": 2}, "repeats"),
     ({"param_spherical": False}, "spherical"), ({"param_smoothing": 1.0}, "smoothed")],
)  # fmt: skip
def test_online_runs_outside_the_ode_get_no_ode_line(change, reason):
    target = rl.MultiIndexTarget.from_expression("He2(z1)/sqrt(2)", d=D, seed=0)
    groups = trajectory_records(_online_records(change))
    overlay = trajectory_overlays(groups, target, D)["online_sgd"]
    assert not [line for line in overlay.lines if "ODE" in line.label]
    assert any(reason in note for note in overlay.notes)


def test_an_online_run_stores_its_overlap_trace_as_the_learner_recorded_it():
    """The engine's record of an online_sgd run carries the learner's log-spaced trace; the
    trace is the largest-|·| overlap, so for one neuron it is ``overlap_path_`` where both
    recorded the same step."""
    target = {"kind": "expression", "expr": "He2(z1)/sqrt(2)", "seed": 0, "normalize": True}
    config = dict(method="online_sgd", target=target, d=D, n=600, seed=0, noise=0.0,
                  noise_kind="rademacher", dtype="float32", device="cpu", n_holdout=0,
                  n_test=100, metrics=["excess_risk"], params={"replicas": 2})  # fmt: skip
    metrics = run_online_sgd(config)
    trace = metrics["overlap_trace"]
    model = rl.OnlineSGD(replicas=2, seed=0).fit_stream(
        rl.DataStream(rl.MultiIndexTarget.from_expression("He2(z1)/sqrt(2)", d=D, seed=0), seed=0),
        n=600,
    )
    assert trace == overlap_trace(model)
    assert trace["samples"][0] == 0 and trace["samples"][-1] == 600
    ratios = np.diff(np.log(trace["samples"][1:]))
    assert np.all(ratios > 0)  # increasing, log-spaced (duplicates dropped)
    common, i, j = np.intersect1d(model.trace_samples_, model.path_samples_, return_indices=True)
    assert common.size >= 2
    np.testing.assert_array_equal(model.overlap_trace_[:, i], model.overlap_path_.numpy()[:, j, 0])


# -- replearn theory: the same numbers as the library ------------------------------------------
def test_theory_command_prints_the_libraries_numbers(capsys):
    import re

    from replearn.cli import main
    from replearn.theory.online_ode import online_overlap_ode as ode

    argv = ["theory", "--target", "{kind: link, link: 'tanh(z1)', normalize: false}",
            "--d", "40", "--alpha", "0.5,2", "--alpha0", "1.0", "--eta", "0.5",
            "--ridge-lambda", "0.1", "--width-ratio", "0.5", "--noise", "0.3",
            "--lr", "0.01", "--m0", "0.2", "--samples", "2000"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    numbers = {}
    for line in out.splitlines():
        for key in ("d = 40", "d -> inf"):
            if line.strip().startswith(key):
                numbers[key] = [float(v) for v in line.strip()[len(key) :].split()]
    target = rl.MultiIndexTarget.from_expression("tanh(z1)", d=40, seed=0, normalize=False)
    settings = dict(student="tanh", teacher="tanh(z1)", alpha0=1.0, eta=0.5, ridge_lambda=0.1,
                    alpha=[0.5, 2.0], width_ratio=0.5, noise=0.3, seed=0)  # fmt: skip
    for key, d in (("d = 40", 40), ("d -> inf", None)):
        expected = one_step_asymptotics(d=d, **settings).test_error
        assert numbers[key] == pytest.approx(list(expected), rel=5e-4)  # printed to 4 digits
    alpha_c = weak_recovery_threshold(target, noise=0.3)
    assert f"alpha_c = {alpha_c:.4g}" in out
    ode_line = next(line for line in out.splitlines() if line.startswith("online ODE"))
    printed = {int(t): float(m) for t, m in re.findall(r"m\((\d+)\) = ([0-9.]+)", ode_line)}
    times = sorted(printed)
    curve = ode(target, lr=0.01, n=2000, m0=0.2, activation="relu", noise=0.3, samples=times)
    assert [printed[t] for t in times] == pytest.approx(list(curve.overlap), abs=5e-4)
    assert times[0] == 0 and times[-1] == 2000


def test_theory_command_refuses_a_bad_alpha_list(capsys):
    from replearn.cli import main

    with pytest.raises(SystemExit) as exit_info:  # argparse's usage error
        main(["theory", "--target", "He2(z1)", "--alpha", "0.5,-1"])
    assert exit_info.value.code == 2
    assert "--alpha: must be finite numbers > 0" in capsys.readouterr().err


def test_a_fixed_point_that_does_not_converge_leaves_the_line_out_with_its_reason(
    tanh_target, monkeypatch
):
    import importlib

    # the module (replearn.theory re-exports a function of the same name)
    asymptotics = importlib.import_module("replearn.theory.one_step_asymptotics")

    def refuse(**kwargs):
        raise ValueError("one_step_asymptotics: the fixed point did not converge at alpha=1")

    monkeypatch.setattr(asymptotics, "one_step_asymptotics", refuse)
    overlays = risk_overlays(_records(CUI), tanh_target, None)
    fig = figure_risk_vs_n(_records(CUI), tanh_target, panel_key=None, overlays=overlays)
    assert not [k for k in _theory_lines(fig) if "one-step theory" in k]
    plt.close(fig)
    (overlay,) = overlays.values()
    assert len(overlay.notes) == 2 and all("did not converge" in note for note in overlay.notes)


def test_eta1_sqrt_d_is_the_step_sqrt_d():
    from replearn.experiments.report.theory_lines import full_params, one_step_settings

    target = rl.MultiIndexTarget.from_expression("tanh(z1)", d=D, seed=0, normalize=False)
    settings = one_step_settings(
        "one_step", full_params("one_step", {**CUI, "param_eta1": "sqrt_d"}), target, D
    )
    assert settings["eta"] == pytest.approx(2 * math.sqrt(D) / 16)


def test_transfer_figure_draws_cui_et_al_when_the_head_is_refitted_on_the_same_target(
    tanh_target,
):
    """A one_step run (any ``data``) whose transfer target is the pretraining target: the
    head is refitted on N fresh samples, Cui et al.'s experiment with α₀ = n/d, α = N/d."""
    from replearn.experiments.report.figures import figure_transfer
    from replearn.experiments.report.theory_lines import transfer_overlay

    params = {k[6:]: v for k, v in CUI.items()} | {"data": "same"}
    config = {"method": "one_step", "params": params, "noise": 0.0, "transfer": {"noise": 0.0}}
    cells = [(n, N) for n in (16, 32) for N in (8, 24)]
    records = [dict(n=n, N=N, seed=0, risk=0.2) for n, N in cells]
    lines, notes = transfer_overlay(config, records, tanh_target, tanh_target)
    assert notes == []
    fig = figure_transfer(records, D, theory=lines)
    drawn = [
        (ax_index, line.get_label().lstrip("_"), list(line.get_xdata()), list(line.get_ydata()))
        for ax_index, ax in enumerate(fig.axes)
        for line in ax.get_lines()
        if line.get_gid() == "theory"
    ]
    plt.close(fig)
    assert len(drawn) == 2 * 2 * 2  # two panels × two lines × (d → ∞, d = 16)

    def expected(n: int, N: int, d) -> float:
        return float(one_step_asymptotics(
            student="tanh", teacher="tanh(z1)", alpha0=n / D, eta=2 * 8.0 / 16,
            ridge_lambda=0.002 * N / 2, alpha=[N / D], width_ratio=1.0, d=d, seed=0,
        ).test_error[0])  # fmt: skip

    matched = []
    for ax_index, label, xs, ys in drawn:
        d = None if "d → ∞" in label else D
        on_x = [round(D**x) for x in xs]  # n (left panel) or N (right panel) of each point
        others = (8, 24) if ax_index == 0 else (16, 32)  # the line's N (left) or n (right)
        fits = [
            other
            for other in others
            if all(
                y == pytest.approx(expected(*((v, other) if ax_index == 0 else (other, v)), d),
                                   rel=1e-12)
                for v, y in zip(on_x, ys)
            )
        ]  # fmt: skip
        assert len(fits) == 1 and sorted(on_x) == on_x
        matched.append((ax_index, fits[0], d))
    assert sorted(matched, key=str) == sorted(
        {(a, o, d) for a in (0, 1) for o in ((8, 24) if a == 0 else (16, 32)) for d in (None, D)},
        key=str,
    )  # every data line has its two theory lines, each drawn once


def test_transfer_to_another_target_gets_no_line(tanh_target):
    from replearn.experiments.report.theory_lines import transfer_overlay

    other = rl.MultiIndexTarget.from_expression("tanh(2*z1)", d=D, normalize=False, U=tanh_target.U)
    params = {k[6:]: v for k, v in CUI.items()}
    config = {"method": "one_step", "params": params, "noise": 0.0, "transfer": {"noise": 0.0}}
    lines, notes = transfer_overlay(config, [dict(n=16, N=16)], tanh_target, other)
    assert lines == {} and "not the pretraining target" in notes[0]


@pytest.mark.parametrize(
    ("option", "value"),
    [("--noise", "-1"), ("--ridge-lambda", "0"), ("--width-ratio", "-2"), ("--m0", "1.5"),
     ("--lr", "0"), ("--student", "swish"), ("--online-activation", "swish")],
)  # fmt: skip
def test_theory_command_refuses_bad_settings_in_one_line(option, value, capsys):
    from replearn.cli import main

    assert main(["theory", "--target", "He2(z1)", option, value]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert option in captured.err
