"""Theory functions against hand-computed cases."""

import math

import pytest
import torch

import replearn as rl
from replearn import limits, theory


def test_paper_target_hand_computed():
    target = rl.paper_target(10, seed=4)
    u = target.U[0]
    torch.testing.assert_close(target.hessian(), torch.outer(u, u))
    assert target.kappa == pytest.approx(1.0)
    assert theory.one_step_threshold(target) == pytest.approx(100.0)  # d²κ²r = 100·1·1
    # kernel staircase: degree ≤ 1 below d² (risk 1), ≤ 2 or 3 on [d², d⁴) (risk 0.5), all at d⁴
    for n, risk in [(1, 1.0), (99, 1.0), (100, 0.5), (999, 0.5), (9_999, 0.5), (10_000, 0.0)]:
        assert theory.kernel_plateau(target, n) == pytest.approx(risk, abs=1e-12), n
    assert theory.kernel_threshold(target, 0.1) == 10_000
    assert theory.predicted_exponents(target, 0.1) == {"one_step": 2.0, "kernel": 4.0}
    steps = theory.kernel_staircase(target)
    assert [s[2] for s in steps] == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.0])


def test_learnable_degree_boundaries():
    assert theory.kernel_learnable_degree(1, 10) == 0
    assert theory.kernel_learnable_degree(1000, 10) == 3  # exact powers land on the step
    assert theory.kernel_learnable_degree(999.9, 10) == 2
    with pytest.raises(ValueError, match="n must be"):
        theory.kernel_learnable_degree(0.5, 10)


def test_degenerate_target_has_infinite_threshold():
    target = rl.MultiIndexTarget.from_expression("He3(z1)/sqrt(6)", d=8)
    assert target.hessian_rank() == 0 and math.isinf(target.kappa)
    assert math.isinf(theory.one_step_threshold(target))
    assert math.isinf(theory.predicted_exponents(target, 0.1)["one_step"])
    assert "degenerate" in theory.format_summary(theory.summary(target))


def test_multi_index_threshold_uses_kappa_and_r():
    target = rl.MultiIndexTarget.random(d=20, r=3, degree=4, seed=1, kappa=5.0)
    assert theory.one_step_threshold(target) == pytest.approx(20**2 * 25 * 3)
    assert theory.one_step_width(target) == 3**4


def test_population_step_direction_lies_in_principal_subspace():
    target = rl.MultiIndexTarget.random(d=12, r=2, degree=3, seed=0)
    W = torch.randn(6, 12, dtype=torch.float64)
    a = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0, 1.0], dtype=torch.float64)
    step = theory.population_step_direction(target, W, a)
    assert rl.subspace_alignment(step, target.U) == pytest.approx(1.0)


# -- label transforms: E[∇² E[T(y)|x]] by quadrature ------------------------------------------
STAIRCASE = "He2(z1) + He3(z1)*z2"
BUILT_IN_TRANSFORMS = [None, "square", "abs", "sign", "hermite:2", "hermite:3"]


def _monte_carlo_latent_hessian(target, transform, noise, noise_kind, n, seed):
    """Mean and standard error of the summands T(y_i)·(z_i z_iᵀ − I), y_i = g(z_i) + ε_i."""
    from replearn.label_transforms import resolve_label_transform

    generator = torch.Generator().manual_seed(seed)
    Z = torch.randn(n, target.r, generator=generator, dtype=torch.float64)
    if noise_kind == "rademacher":
        epsilon = noise * (2.0 * torch.randint(0, 2, (n,), generator=generator) - 1.0)
    else:
        epsilon = noise * torch.randn(n, generator=generator, dtype=torch.float64)
    y = target(Z @ target.U) + epsilon  # x = Zᵀ U puts z = Ux exactly
    t = resolve_label_transform(transform)(y, theory.population_label_statistics(target, noise))
    summands = t[:, None, None] * (Z[:, :, None] * Z[:, None, :] - torch.eye(target.r))
    return summands.mean(0), summands.std(0) / math.sqrt(n)


@pytest.mark.parametrize("noise_kind", ["rademacher", "gaussian"])
@pytest.mark.parametrize("transform", BUILT_IN_TRANSFORMS)
def test_quadrature_hessian_matches_monte_carlo(transform, noise_kind):
    """Each entry of A_T = E[T(y)(zzᵀ − I)] from quadrature lies within 4 standard errors of
    a 300 000-sample Monte Carlo mean (SE from the summands' sample variance; fixed seed), plus
    the quadrature's own error estimate where it is not exact. For a correct A_T each
    entry's deviation is ≈ N(0, SE²): P(|Z| > 4) = 6e-5 per entry, 4 entries × 12 cases.
    r = 2 staircase target (abs, sign use the split-line rule in r = 2), noise 1."""
    target = rl.MultiIndexTarget.from_expression(STAIRCASE, d=5, seed=3)
    report = theory.label_transform_report(target, transform, 1.0, noise_kind)
    A = torch.tensor(report["latent_hessian"], dtype=torch.float64)
    mean, se = _monte_carlo_latent_hessian(target, transform, 1.0, noise_kind, 300_000, seed=11)
    tolerance = 4 * se + report["quadrature"]["error"]
    assert ((A - mean).abs() <= tolerance).all(), (A, mean, se)
    # power: the noiseless Hessian differs from the noisy one by more than the tolerance for
    # the non-polynomial transforms, so a quadrature that forgot the noise would fail here
    if transform in ("abs", "sign"):
        noiseless = theory.transformed_latent_hessian(target, transform, 0.0)
        assert ((noiseless - mean).abs() > tolerance).any()


def test_identity_reproduces_the_target_hessian():
    for target in [
        rl.paper_target(9, seed=2),
        rl.MultiIndexTarget.random(d=7, r=3, degree=4, seed=1),
        rl.MultiIndexTarget.from_expression(STAIRCASE, d=6),
    ]:
        for noise_kind in ("rademacher", "gaussian"):
            H = theory.transformed_hessian(target, None, 1.0, noise_kind)
            torch.testing.assert_close(H, target.hessian(), rtol=0, atol=1e-12)
    paper = rl.paper_target(9)
    report = theory.label_transform_report(paper, None, 1.0)
    assert report["kappa"] == pytest.approx(paper.kappa, rel=1e-12)  # Var f* = 1
    # the step's labels y − α − β·x have variance E f*² + ς² = 2: κ_step = √2·κ
    assert report["kappa_step"] == pytest.approx(math.sqrt(2) * paper.kappa, rel=1e-12)


def test_square_of_he3_has_a_hessian_along_u():
    """y = He₃(z)/√6 + ε: E[∇²f*] = 0, but y² = He₃²/6 + 2ε·He₃/√6 + ε² and
    He₃² = He₆ + 9He₄ + 18He₂ + 6 (product formula Σ_k C(3,k)²k! He_{6−2k}), so by
    E[∇² He_k] = δ_{k2}·2 the square's Hessian is 18·2/6 = 6 along uuᵀ whatever the noise.
    He₂((y − μ)/σ) = (y² − 2μy + μ²)/σ² − 1 has 6/σ², σ² = 1 + ς²."""
    target = rl.paper_transfer_target(12, seed=5)
    u = target.U[0]
    for noise, noise_kind in [(0.0, "rademacher"), (1.0, "rademacher"), (0.5, "gaussian")]:
        assert target.hessian().abs().max() == 0.0
        H = theory.transformed_hessian(target, "square", noise, noise_kind)
        torch.testing.assert_close(H, 6.0 * torch.outer(u, u), rtol=0, atol=1e-12)
        H2 = theory.transformed_hessian(target, "hermite:2", noise, noise_kind)
        torch.testing.assert_close(H2, 6.0 / (1 + noise**2) * torch.outer(u, u), rtol=0, atol=1e-12)
    report = theory.label_transform_report(target, "square", 1.0)
    assert report["rank"] == 1 and report["direction_coverage"] == pytest.approx([1.0])
    assert report["range_alignment"] == pytest.approx(1.0, abs=1e-12)
    # degree-2 energy of h = E[y²|x] is A²/2 = 18 (the step sees 18·2/6 ... as He₂ coefficient)
    assert report["degree_energy"]["2"] == pytest.approx(18.0, rel=1e-12)


def test_abs_of_he3_noiseless_closed_form():
    """E[|He₃(z)|/√6·(z² − 1)]: (z³ − 3z)(z² − 1) = z⁵ − 4z³ + 3z has the antiderivative
    −(z⁴ + 3)φ(z) against φ, the roots of He₃ are 0, ±√3, so by symmetry the value is
    2[−∫₀^√3 + ∫_√3^∞] = 48φ(√3) − 6φ(0), over √6. The split-line rule integrates each piece
    between roots with Gauss–Legendre: exact to rounding for r = 1."""
    target = rl.paper_transfer_target(8)
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    expected = (48 * phi(math.sqrt(3)) - 6 * phi(0.0)) / math.sqrt(6)
    A = theory.transformed_latent_hessian(target, "abs", 0.0)
    assert A.item() == pytest.approx(expected, rel=1e-12)
    # sign(He₃) and He₃ are odd: no Hessian at all
    assert abs(theory.transformed_latent_hessian(target, "sign", 0.0).item()) < 1e-14


def test_which_transforms_give_full_rank_for_z1z2z3():
    """z₁z₂z₃: every transform odd in y (identity, sign, He₃) keeps h odd in z ⇒ A_T = 0;
    even ones see all three directions: y² has ∂²_{11} = 2z₂²z₃² ⇒ A = 2·I (off-diagonal
    4z₁z₂z₃² averages to 0)."""
    target = rl.MultiIndexTarget.from_expression("z1*z2*z3", d=6)
    ranks = {
        str(t): theory.label_transform_report(target, t, 1.0, "gaussian")["rank"]
        for t in [None, "square", "abs", "sign", "hermite:2", "hermite:3"]
    }
    assert ranks == {"None": 0, "square": 3, "abs": 3, "sign": 0, "hermite:2": 3, "hermite:3": 0}
    A = theory.transformed_latent_hessian(target, "square", 1.0)
    torch.testing.assert_close(A, 2.0 * torch.eye(3, dtype=torch.float64), rtol=0, atol=1e-12)
    # κ = √r·sd(h)/2 with Var h = Var(z₁²z₂²z₃²) = 3³ − 1 = 26
    report = theory.label_transform_report(target, "square", 1.0)
    assert report["kappa"] == pytest.approx(math.sqrt(3) * math.sqrt(26) / 2, rel=1e-12)


def test_staircase_identity_sees_one_direction_square_both():
    target = rl.MultiIndexTarget.from_expression(STAIRCASE, d=6)
    plain = theory.label_transform_report(target, None, 1.0)
    assert plain["rank"] == 1 and math.isinf(plain["kappa"])
    assert plain["direction_coverage"] == pytest.approx([1.0, 0.0], abs=1e-12)
    square = theory.label_transform_report(target, "square", 1.0)
    assert square["rank"] == 2 and math.isfinite(square["kappa"])
    text = theory.format_label_transform_report(plain)
    assert "sees 1 of 2 directions" in text
    assert "n ~ d^2 kappa_step^2 r" in theory.format_label_transform_report(square)


@pytest.mark.parametrize("transform", ["abs", "sign"])
def test_non_smooth_quadrature_converges(transform):
    """n vs 2n Gauss–Legendre nodes per outer piece (split-line rule, r = 2 staircase).
    Measured max-entry differences (A_T entries are O(0.1)): Rademacher noise, where h jumps
    or kinks on g = ±1, 64→128: 7.5e-7 (abs), 7.6e-6 (sign); 128→256: 2.8e-9, 6.1e-8.
    Gaussian noise (closed-form smoothed h): below 1e-13 from 64 nodes on. The bounds
    (1e-6 and 1e-11) leave a margin of 16× and 100×; a rule that misses a piece between two
    roots, or splits at the wrong level, stalls at the size of the missed piece (≥ 1e-3)."""
    target = rl.MultiIndexTarget.from_expression(STAIRCASE, d=4)
    for noise_kind, bound in (("rademacher", 1e-6), ("gaussian", 1e-11)):
        values = [
            theory.transformed_latent_hessian(target, transform, 1.0, noise_kind, n_nodes=n)
            for n in (64, 128, 256)
        ]
        coarse = (values[1] - values[0]).abs().max().item()
        fine = (values[2] - values[1]).abs().max().item()
        assert fine < bound, (noise_kind, coarse, fine)
        if noise_kind == "rademacher":
            assert fine < coarse / 4, (coarse, fine)  # still converging, not stalled


def test_transform_report_errors():
    target = rl.paper_target(5)
    with pytest.raises(ValueError, match="noise_kind must be one of"):
        theory.label_transform_report(target, "square", 1.0, "laplace")
    with pytest.raises(ValueError, match="noise must be"):
        theory.label_transform_report(target, "square", -1.0)
    with pytest.raises(ValueError, match="label_transform must be None"):
        theory.label_transform_report(target, "cube", 1.0)
    with pytest.raises(ValueError, match="n_nodes must be an integer in"):
        theory.transformed_hessian(target, "abs", 1.0, n_nodes=1000)


@pytest.mark.parametrize("transform", ["square", "abs", "sign", "hermite:2", "hermite:3"])
def test_quadrature_matches_monte_carlo_off_centre(transform):
    """A target with a mean, a linear part and no symmetry (E y = 0.5, so hermite:k's
    standardisation by the population μ, σ matters) under Rademacher noise 0.5: quadrature
    within 4 Monte Carlo standard errors (as above; 300 000 samples, fixed seed)."""
    target = rl.MultiIndexTarget.from_expression(
        "0.5 + 0.3*z1 + He2(z1)*z2/2 + 0.4*z2^3", d=5, seed=1, normalize=False
    )
    statistics = theory.population_label_statistics(target, 0.5)
    assert statistics.mean == pytest.approx(0.5)
    report = theory.label_transform_report(target, transform, 0.5, "rademacher")
    A = torch.tensor(report["latent_hessian"], dtype=torch.float64)
    mean, se = _monte_carlo_latent_hessian(target, transform, 0.5, "rademacher", 300_000, seed=5)
    assert ((A - mean).abs() <= 4 * se + report["quadrature"]["error"]).all(), (A, mean, se)


def test_callable_transform_uses_the_generic_rule():
    """A callable y ↦ y² has no declared degree: Gauss–Hermite over z (256 nodes, r = 2) and
    40 nodes over Gaussian noise — exact for this polynomial, so it equals "square" (whose
    centring constant does not change a Hessian) to rounding."""
    target = rl.MultiIndexTarget.from_expression(STAIRCASE, d=4)
    for noise_kind in ("rademacher", "gaussian"):
        generic = theory.transformed_latent_hessian(target, lambda y: y * y, 0.7, noise_kind)
        exact = theory.transformed_latent_hessian(target, "square", 0.7, noise_kind)
        torch.testing.assert_close(generic, exact, rtol=0, atol=1e-10)


def test_too_large_grids_fail_with_one_line():
    target = rl.MultiIndexTarget.random(d=8, r=5, degree=3, seed=0)
    with pytest.raises(theory.QuadratureSizeError, match="1,073,741,824 points, more than the"):
        theory.transformed_latent_hessian(target, torch.tanh, 1.0, n_nodes=64)
    with pytest.raises(ValueError, match="transform_degree = 30"):
        theory.transformed_latent_hessian(target, "hermite:90", 1.0)
    with limits.raised(transform_degree=90):
        with pytest.raises(ValueError, match="'hermite:90' of a degree-3 target needs 272"):
            theory.transformed_latent_hessian(target, "hermite:90", 1.0)
