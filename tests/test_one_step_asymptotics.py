"""rl.theory.one_step_asymptotics against its own limits and against simulations of one step.

The simulations (tests/one_step_simulation.py) materialise the steps of Cui et al.'s notebook
in numpy, independently of the theory code. The d = 1000 check of the issue (3 seeds, within
5 %) is scripts/one_step_asymptotics_check.py, recorded in docs/theory.md; the tests run the
same comparison at d = 500.
"""

from __future__ import annotations

import numpy as np
import pytest

from one_step_simulation import fixed_point, simulate_one_step, step_bulk
from replearn.theory import one_step_asymptotics
from replearn.theory.one_step_asymptotics import _Conditional, bulk_spectrum, spike_constants
from replearn.theory.scalar_functions import link_function, student_functions

ALPHAS = [0.5, 1.5, 3.0]


@pytest.mark.parametrize("ratio", [0.5, 1.0, 2.0])
def test_marchenko_pastur_quadrature_has_the_law_s_moments(ratio):
    # W⁰W⁰ᵀ/… of ratio ψ: E[x] = 1, E[x²] = 1 + ψ, E[x³] = 1 + 3ψ + ψ² (Marchenko–Pastur)
    x, w = bulk_spectrum(ratio)
    assert w.sum() == pytest.approx(1.0, abs=1e-9)
    assert w @ x == pytest.approx(1.0, abs=1e-9)
    assert w @ x**2 == pytest.approx(1.0 + ratio, abs=1e-9)
    assert w @ x**3 == pytest.approx(1.0 + 3 * ratio + ratio**2, abs=1e-9)


def test_finite_d_spectrum_is_that_of_unit_rows():
    x, w = bulk_spectrum(2.0, d=50, seed=3)
    assert x.size == 100 and np.count_nonzero(x < 1e-9) == 50  # p − d zero eigenvalues
    assert w @ x == pytest.approx(1.0, abs=1e-12)  # trace = p: unit rows


def test_step_spike_matches_a_simulated_step():
    """γ (the spike's overlap with the teacher) and r (its strength) against one step at
    d = 2000, n₀ = 1000. The spike is the rows' common part, mean_j Δw_j ≈ η̃μ₁v with
    v = mean (y − c₀)x; v's coordinate along θ fluctuates by √(E[y²z²]/n₀) ≈ 0.02 and its
    norm by less, so γ is checked to 0.06 and r to 5 % (3 standard deviations)."""
    d, p, alpha0, eta = 2000, 500, 0.5, 1.0
    rng = np.random.default_rng(0)
    W0 = rng.standard_normal((p, d))
    W0 /= np.linalg.norm(W0, axis=1, keepdims=True)
    n0 = int(alpha0 * d)
    X = rng.standard_normal((n0, d))
    y = np.tanh(X[:, 0])
    pre = X @ W0.T
    f0 = np.tanh(pre).sum(axis=1) / p
    step = eta * ((y - f0)[:, None] * (1 - np.tanh(pre) ** 2)).T @ X / n0  # η̃·p·G, (p, d)
    common = step.mean(axis=0)
    constants = spike_constants("tanh", "tanh(z1)", alpha0, eta)
    assert abs(common[0]) / np.linalg.norm(common) == pytest.approx(constants["gamma"], abs=0.06)
    assert np.linalg.norm(common) == pytest.approx(constants["spike"], rel=0.05)
    bulk = np.linalg.norm(W0 + step - common, axis=1)  # c_W: the rows without the spike
    assert np.mean(bulk) == pytest.approx(constants["bulk_scale"], rel=0.02)


@pytest.mark.slow
def test_spike_projection_matches_explicit_eigenvectors():
    """The spike's column w = Wv against Ω = WΠWᵀ by Sherman–Morrison equals the theory
    notebook's explicit projections on the eigenvectors of WΠWᵀ (W = c_W·W⁰ of the same seed,
    v and ζ ⊥ v random). A sigmoid student (α₀ = 1, η̃ = 4), where the spike matters: treating
    Wv as a generic direction instead (F = (p/d)·D) gives 0.247 at α = 1.5 against 0.19 here.
    The explicit fixed point varies with the draw of (v, ζ) by sd ≈ 0.012 at d = 300; the
    tolerance is 3 standard errors of the mean of 4 draws plus 0.01 for the O(1/d) difference
    of the finite spectra (Π removes one eigenvalue)."""
    d, student, alpha0, eta = 300, "sigmoid", 1.0, 4.0
    library = one_step_asymptotics(student=student, alpha0=alpha0, eta=eta, alpha=ALPHAS,
                                   d=d, seed=0).test_error  # fmt: skip
    k = spike_constants(student, "tanh(z1)", alpha0, eta)
    cond = _Conditional(student_functions(student)[0], link_function("tanh(z1)"), k["spike"],
                        k["bulk_scale"], k["gamma"], 0.0, 121)  # fmt: skip
    W = np.random.default_rng(0).standard_normal((d, d))  # bulk_spectrum's W⁰ for seed 0
    W *= k["bulk_scale"] / np.linalg.norm(W, axis=1, keepdims=True)
    runs = []
    for draw in range(4):
        rng = np.random.default_rng(100 + draw)
        v = rng.standard_normal(d)
        v /= np.linalg.norm(v)
        zeta = rng.standard_normal(d)
        zeta -= (zeta @ v) * v
        zeta /= np.linalg.norm(zeta)
        projected = W - np.outer(W @ v, v)
        D, U = np.linalg.eigh(projected @ projected.T)
        F, H = U.T @ (W @ v), U.T @ (W @ zeta)
        runs.append([fixed_point(cond, np.clip(D, 0.0, None), d * F**2, d * H**2, d * F * H,
                                 a, 0.01) for a in ALPHAS])  # fmt: skip
    runs = np.array(runs)
    tolerance = 3 * runs.std(axis=0, ddof=1) / 2 + 0.01
    assert np.all(np.abs(runs.mean(axis=0) - library) <= tolerance), (library, runs.mean(axis=0))


def test_drawn_step_bulk_is_the_explicit_fixed_point_of_the_same_step():
    """bulk="step" draws the step of tests/one_step_simulation.py (same seed, same draws) and
    solves the fixed point on its measured projections: the same numbers as fixed_point on
    step_bulk, an independent implementation of both (iterations to 1e-9 and 1e-10)."""
    d, ratio, seed = 150, 2.0, 3
    library = one_step_asymptotics(alpha=ALPHAS, width_ratio=ratio, d=d, seed=seed,
                                   bulk="step").test_error  # fmt: skip
    k = spike_constants()
    cond = _Conditional(np.tanh, link_function("tanh(z1)"), k["spike"], k["bulk_scale"],
                        k["gamma"], 0.0, 121)  # fmt: skip
    D, F, H, X = step_bulk(d, int(ratio * d), 0.5, 1.0, seed)
    explicit = [fixed_point(cond, D, F, H, X, a / ratio, 0.01) for a in ALPHAS]
    np.testing.assert_allclose(library, explicit, rtol=1e-6)


def test_finite_d_prediction_approaches_the_limit():
    limit = one_step_asymptotics(d=None, alpha=ALPHAS).test_error
    for d, bound in [(100, 0.02), (400, 0.005)]:  # the spectrum's edge effects shrink like 1/d
        finite = one_step_asymptotics(d=d, seed=0, alpha=ALPHAS).test_error
        assert np.max(np.abs(finite / limit - 1)) < bound, d


def test_result_is_per_alpha_in_the_given_order_and_converged():
    ordered = one_step_asymptotics(d=None, alpha=[0.5, 3.0])
    shuffled = one_step_asymptotics(d=None, alpha=[3.0, 0.5])
    np.testing.assert_allclose(shuffled.test_error[::-1], ordered.test_error, rtol=1e-6)
    assert ordered.test_error[1] < ordered.test_error[0]  # more head samples, lower error
    assert np.all(ordered.iterations > 0)
    assert set(ordered.overlaps) == {"q1", "q2", "V1", "V2", "theta", "psi", "m"}


def test_noise_raises_the_error_and_no_step_is_random_features():
    clean = one_step_asymptotics(d=None, alpha=[2.0]).test_error[0]
    noisy = one_step_asymptotics(d=None, alpha=[2.0], noise=0.5).test_error[0]
    assert noisy > clean
    no_step = one_step_asymptotics(d=None, alpha=[2.0], alpha0=0.0)
    assert no_step.spike == 0.0 and no_step.gamma == 0.0 and no_step.bulk_scale == 1.0
    # without the step a tanh network fits only the linear part of tanh: error ≥ E[tanh²] − μ₁*²
    mu1 = spike_constants()["mu1_star"]
    assert no_step.test_error[0] > 0.3943 - mu1**2 - 1e-3


def test_a_fixed_point_that_does_not_converge_is_one_line():
    with pytest.raises(ValueError, match=r"did not converge at alpha=0.5 in 3 iterations"):
        one_step_asymptotics(d=None, alpha=[0.5], max_iter=3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(alpha=[0.5, -1.0]), "alpha must be"),
        (dict(alpha=[]), "alpha must be"),
        (dict(d=1), "d must be an integer >= 2 or None"),
        (dict(ridge_lambda=0.0), "ridge_lambda must be a finite number > 0"),
        (dict(student="swish"), "student must be one of 'relu', 'tanh'"),
        (dict(teacher="__import__('os')"), "teacher link"),
        (dict(teacher=3), "teacher must be a link expression"),
        (dict(damping=1.0), "damping must be in"),
        (dict(bulk="drawn"), "bulk must be 'rescaled' or 'step'"),
        (dict(bulk="step"), 'bulk="step" needs a finite d'),
    ],
)
def test_bad_arguments_are_one_line_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        one_step_asymptotics(**{"d": None, **kwargs})


def _compare(settings, d, seeds):
    """(theory at d → ∞, mean and standard deviation of the simulated test error over seeds)."""
    sims = np.array([
        simulate_one_step(d, int(settings["width_ratio"] * d), settings["alpha0"], settings["eta"],
                          settings["ridge_lambda"], ALPHAS, seed, student=settings["student"],
                          link=settings["link"], noise=settings["noise"])
        for seed in seeds
    ])  # fmt: skip
    theory = one_step_asymptotics(
        student=settings["student"], teacher=settings["teacher"], alpha0=settings["alpha0"],
        eta=settings["eta"], ridge_lambda=settings["ridge_lambda"], alpha=ALPHAS,
        width_ratio=settings["width_ratio"], noise=settings["noise"], d=None,
    ).test_error  # fmt: skip
    return theory, sims.mean(axis=0), sims.std(axis=0, ddof=1)


BASE = dict(student="tanh", teacher="tanh(z1)", link=np.tanh, alpha0=0.5, eta=1.0,
            ridge_lambda=0.01, width_ratio=1.0, noise=0.0)  # fmt: skip
SETTINGS = {
    "cui_notebook": BASE,
    "label_noise": {**BASE, "noise": 0.5},
    "large_step": {**BASE, "alpha0": 1.0, "eta": 2.0, "ridge_lambda": 0.1},
    "relu_student": {**BASE, "student": "relu", "alpha0": 2.0},
    "sigmoid_student": {**BASE, "student": "sigmoid", "alpha0": 1.0, "eta": 4.0},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SETTINGS))
def test_theory_matches_simulation_at_d_500(name):
    """Tolerance: 3 standard errors of the 4-seed mean (the seeds' own spread: one step's
    spike and bulk differ from draw to draw) plus the finite-size bias, O(1/√d): 3 % at
    d = 2000 in Cui et al.'s notebook (its simulation sits 2–4 % above the theory), so
    3 %·√(2000/500) = 6 % here. scripts/one_step_asymptotics_check.py runs d = 1000 (5 %).
    p = 2d is not among these settings: there the simulation is 6–8 % above the theory,
    because the step's bulk is correlated with the spike and teacher directions, which the
    equivalent model leaves out (scripts/one_step_bulk_diagnostic.py, docs/theory.md)."""
    theory, mean, sd = _compare(SETTINGS[name], d=500, seeds=range(4))
    tolerance = 3 * sd / np.sqrt(4) + 0.06 * theory
    assert np.all(np.abs(mean - theory) <= tolerance), (theory, mean, sd)
