"""Several giant steps (Dandi, Krzakala, Loureiro, Pesce & Stephan 2023): T full-batch gradient
steps on the first layer with the second layer fixed, then Algorithm 1's new biases and head.

Later steps (t ≥ 2). Two rules (``later_steps``):

- ``"residual"`` (the default): step t is Algorithm 1's step on what the model after step
  t − 1 has not fitted. The predictor ŷ_{t−1}(x) = α + β·x + c·âᵀσ(W^{t−1}x + b) — the head â
  refitted on step t − 1's batch, with Algorithm 1's N(0, 1) biases b — leaves on step t's
  batch the residual r = y − ŷ_{t−1}(x); its mean and linear part on that batch are removed
  as Algorithm 1 removes α, β (``preprocess``), s = r − mean r − (mean r·x)·x, and

      w_j^t = w_j^{t−1} + 2η_t·c·a_j·(1/n)Σ_i s_i·σ′(w_j^{t−1}·x_i + b_j)·x_i

  (a the fixed second layer). This is the gradient at W^{t−1} of the re-centred network
  ŷ_{t−1}(x) + c·Σ_j a_j(σ(w_j·x + b_j) − σ(w_j^{t−1}·x + b_j)), whose output at W^{t−1} is
  the fitted predictor (as f⁰ ≡ 0 makes step 1 see s = y − α − β·x): the step sees only the
  unexplained part of y, and a step on a fitted target moves nothing. The mask uses the
  head's biases: for a neuron along u₁ the step's move along u₂ for a coupling g(z₁)·z₂ is
  ∝ E[g(z₁)·σ′(αz₁ + b)], which for ReLU and g = He_k is He_{k−1}(−b/α)·φ(b/α) — zero for every
  even k at b = 0 (docs/beyond.md, "Later giant steps"). The weight decay after step 1 is 0
  (W^{t−1} kept). With ``head="none"`` there is no head to refit and later steps follow
  "gradient"; a per-step label transform applies to step 1 only (later steps fit the
  residual of y).
- ``"gradient"``: the network's own gradient with its fixed second layer, below (the
  rule of Dandi et al.'s notebooks; with ``head="none"`` always).

With the symmetric initialisation θ⁰ = (W⁰, a, b = 0) (``network.symmetric_init``) and the
network f(x) = c·Σ_j a_j·ReLU(w_j·x) (c the ``output_scale``; the paper's c = 1), step t on
the batch B_t of n samples is

    L_t(W) = (1/n) Σ_{i∈B_t} (f(x_i) − s_i)²,      s the step labels of B_t
    ∇_{w_j} L_t = (2c/n)·a_j·Σ_i (f(x_i) − s_i)·1[w_j·x_i ≥ 0]·x_i
    W^t = W^{t−1} − η_t·(∇_W L_t(W^{t−1}) + λ_t·W^{t−1})

s = y − α_t − β_t·x with α_t, β_t the mean y and mean y·x of B_t (``preprocess``; else
s = y), or with a label transform T the unit-scale s = (T(y) − m_T − β_T·x)/σ_s
(``replearn.label_transforms``). The default λ₁ = 1/η₁ cancels W⁰, so step 1 is exactly
Algorithm 1's W¹ = −η₁∇L(θ⁰) (and ``steps=1`` is ``OneStepNetwork``, bit for bit); λ_t = 0
after. Then b ~ N(0, 1) (``normal_biases``, the seed offset of OneStepNetwork) and the head
a on ReLU(W^T x + b) with α, β of its data; predictor x ↦ α + β·x + aᵀReLU(W^T x + b).

Batches. ``batch="fresh"``: step t (t = 0…T−1) uses samples t·n … (t+1)·n − 1 of the stream
(``fit(X, y)``: the rows split into T consecutive parts of n = ⌊N/T⌋ rows, the last N − T·n
rows unused); ``batch="reuse"``: every step uses samples 0…n−1 (``fit``: all N rows). The
head (and its α, β) uses the last step's batch: for ``steps=1`` that is Algorithm 1's "one
data set" (``data="same"``), and no sample is drawn that no step used.

Cost: one streamed pass per step over its batch (plus the α/β pass, or the label-transform
passes, once per distinct batch), memory O(m·d + m²). Partner neurons j and j + m/2 have
a_{j+m/2} = −a_j. At init w_{j+m/2} = w_j (f ≡ 0, ∇_{j+m/2} = −∇_j: m/2 distinct rows). After
a step with η·λ = 1 (the default step 1), w_{j+m/2} = −w_j, so f(x) = c·Σ_{j<m/2} a_j·z_j = c·v·x
with z_j = w_j·x and v = Σ_{j<m/2} a_j·w_j (ReLU(z) − ReLU(−z) = z), and the two gradients need
one product with the m/2 rows: Σ r·1[−z_j > 0]·x = Σ r·x − Σ r·1[z_j ≥ 0]·x. After that step
the partners are unrelated (w_{j+m/2} + w_j = η·(2c/n)·a_j·(B_j − A_j) with A_j, B_j the sums
over 1[z_j ≥ 0] and 1[z_j < 0], ≠ 0 in general), so steps ≥ 3
run on all m rows: twice the flops of Algorithm 1's step pass.

Step sizes η_t: a number (every step) or a list (one per step); ``"harmonic"`` (the default):
η_t = √d/t, Algorithm 1's η₁ = √d and then a decreasing schedule: each later step is an
estimate from its own batch, and with Σ_t η_t = ∞, Σ_t η_t² < ∞ (Robbins–Monro) the
steps' sampling noise in W^T stays bounded (Σ_t η_t²·d/n) while their signal keeps adding
up; measured (docs/beyond.md) it keeps more of step 1's direction than η_t = √d and learns
more than η₂ = √d/4; ``"stable"``: η₁ = √d, then η_t = 1/(c²·Σ_j a_j²) for t ≥ 2, the step the
first layer's curvature allows for the ``"gradient"`` rule (below); ``"sqrt_d"``: η_t = √d at
every step (the paper's scale, which overshoots the "gradient" rule at t ≥ 2:
η·c²m = √d·m ≫ 1); ``"dandi"``: η_t = √(n/d)/c = d^{(ℓ−1)/2}/c with
ℓ = log_d n. Dandi et al. write f(x) = (1/√p)·Σ_j a_j σ(w_j·x), a_j = ±1/√p (so c = 1/p, p = m, in our notation),
the loss (1/2n)Σ(y − f)² and η = O(p·d^{(ℓ−1)/2}) for n = O(d^ℓ) (their notebooks use
η = 2p at n = d); their update is Δw_j = (η_D/p)·sign(a_j)·mean(r·σ'·x). Ours is
Δw_j = 2η·c·|a_j|·sign(a_j)·mean(r·σ'·x) with |a_j| = 1, so with c = 1/p the two agree when
η = η_D/2: ``"dandi"`` with ``output_scale="1/m"`` is η = m·d^{(ℓ−1)/2}, i.e.
η_D = 2p·d^{(ℓ−1)/2} (the notebooks' constant 2 at ℓ = 1). With c = 1 (the paper's network)
it gives the same first-step update Δw_j = 2·d^{(ℓ−1)/2}·a_j·mean(s·1·x), which equals
``"sqrt_d"`` at n = d². Their variant also keeps W⁰ (``weight_decay=0``; the default "paper"
drops it at step 1), does not preprocess the labels (``preprocess=False``) and starts from a
non-symmetric network (f⁰ = O(1/√p) instead of 0) — the remaining difference.

Later "gradient" steps and the curvature. Once f ≢ 0 the loss is curved in W: its Gauss–Newton part
is H[V, V] = (2/n)Σ_i (c·Σ_j a_j σ′(z_ij) v_j·x_i)². By Cauchy–Schwarz
λ_max(H) ≤ 2c²‖a‖²·sup|σ′|²·λ_max(XᵀX/n) ≈ 2c²‖a‖² (σ′ ≤ 1, n ≫ d); along the collective
direction v_j ∝ a_j·u (every neuron moved along one u, weighted by its a_j) ReLU with half
its neurons active gives H ≈ 2c²(Σ_j a_j²/2)²/‖a‖² = c²‖a‖²/2. Gradient descent decreases
the loss for η < 2/λ_max, so the edge lies between η = 1/(c²‖a‖²) and 4/(c²‖a‖²);
``"stable"`` takes η_t = 1/(c²‖a‖²) (= 1/(c²m) for the paper's ±1): at c = 1 it changes
nothing measurable, where η_t = √d undoes step 1 (docs/beyond.md, "Later giant steps"). A
stable step moves neuron j by η·2c|a_j|·‖mean(r·σ′·x)‖ ≈ 2|a_j|/(c‖a‖²): O(1/m) at the
paper's c = 1 (a lazy step: T = 2 keeps step 1's features), O(1) at c = 1/m (features move).

The field's models (``replearn.learners.first_layer``): any activation σ, output scale c
(1, "1/sqrt(m)", "1/m" or a number), first layer (Gaussian, unit rows, orthogonal to given
directions, or a given W⁰), second layer (the paper's pairs, ±1/√m signs, N(0, 1/m), constant
1/√m, or a given a) and biases ("paper": 0 during the steps, N(0, 1) for the head; "none": 0
everywhere; "normal": N(0, 1) throughout). Every step is then the true gradient

    ∇_{w_j} L_t = (2c/n)·a_j·Σ_i (f(x_i) − s_i)·σ′(w_j·x_i + b_j)·x_i,   f = c·aᵀσ(Wx + b)

on all m rows (``first_layer_gradient_sum``); the head is fitted on c·σ(W^T x + b). With
``weight_decay=0.0, preprocess=False``, a given W⁰ and a, the steps are plain full-batch
gradient descent on the first layer from that point (``batch="reuse"``: every row of
``fit``'s X in every step). The paper's model (ReLU with the paired init and b = 0 during the
steps, any c) keeps the exact passes below.

Ties w_j·x = 0 (probability 0 for continuous x; a row x = 0 adds nothing either way) count as
active in step 1 and for neuron j < m/2 in step 2 (Algorithm 1's 1[z ≥ 0]), as inactive for
its partner in step 2 and in later steps (autograd's ReLU'(0) = 0): the passes write the masks
into the pre-activations in place.
"""

from __future__ import annotations

import math

import torch

from replearn import limits
from replearn.formula import evaluate_formula, formula_or
from replearn.label_transforms import label_transform_spec, resolve_label_transform
from replearn.learners.base import BaseLearner
from replearn.learners.first_layer import (
    MODEL_PARAMETER_CHECKS,
    direction_rows,
    directions_spec,
    first_layer_gradient_sum,
    gradient_step,
    model_width,
)
from replearn.learners.one_step import (
    FrozenFirstLayerHead,
    first_layer_step_sum,
    step_label_function,
)
from replearn.metrics import direction_cosines, subspace_alignment
from replearn.network import TwoLayerNetwork
from replearn.validation import (
    boolean,
    choice,
    count_within,
    device_name,
    dtype_name,
    integer_at_least,
    is_number,
    number,
    ridge_lambda,
    seed,
)

__all__ = ["GiantStepNetwork"]


def _positive_numbers(value, minimum_strict: bool, words: tuple[str, ...]):
    bound = "> 0" if minimum_strict else "≥ 0"
    allowed = f"a number {bound}" + "".join(f", {w!r}" for w in words)
    allowed += f" or a non-empty list of numbers {bound} (one per step)"

    def ok(x) -> bool:
        return is_number(x) and (x > 0 if minimum_strict else x >= 0)

    if isinstance(value, str) and value in words:
        return value
    if ok(value):
        return float(value)
    if isinstance(value, list | tuple) and value and all(ok(x) for x in value):
        return [float(x) for x in value]
    raise ValueError(f"must be {allowed}, got {value!r}")


STEP_SIZE_WORDS = ("harmonic", "sqrt_d", "dandi", "stable")
FORMULA_NAMES = ("n", "d", "m")  # a formula's names: the batch size, input dimension, width


def _formula_or(value, check, allowed: str, names=FORMULA_NAMES):
    """``formula.formula_or`` with the names n, d, m by default."""
    return formula_or(value, check, allowed, names)


def step_size_spec(value):
    """η per step: a number > 0, 'harmonic', 'sqrt_d', 'dandi', 'stable', a formula in n, d, m (e.g.
    '5*sqrt(n*m)'), or a list (one per step) of numbers > 0 and formulas."""
    if isinstance(value, str) and value in STEP_SIZE_WORDS:
        return value
    allowed = (
        "a number > 0, 'harmonic', 'sqrt_d', 'dandi', 'stable', a formula in n, d, m such as "
        "'5*sqrt(n*m)', or a non-empty list of numbers > 0 and formulas (one per step)"
    )
    number_check = number(0.0, True)

    def entry(x):
        return _formula_or(x, number_check, allowed)

    if isinstance(value, list | tuple) and value:
        if all(is_number(x) for x in value):  # a list of numbers as before (floats)
            return _positive_numbers(value, True, STEP_SIZE_WORDS)
        return [entry(x) if isinstance(x, str) else float(entry(x)) for x in value]
    if isinstance(value, list | tuple):
        raise ValueError(f"must be {allowed}, got []")
    return _formula_or(value, lambda x: _positive_numbers(x, True, STEP_SIZE_WORDS), allowed)


def head_ridge_lambda_spec(value):
    """λ of the head: 'auto', a number ≥ 0, or a formula in n, d, m (n: the head's samples),
    e.g. '0.02/n' for an unnormalised ridge Σ(y − aᵀφ)² + 0.01‖a‖²."""
    if value == "auto":
        return value
    return _formula_or(
        value, ridge_lambda, "'auto', a number ≥ 0 or a formula in n, d, m such as '2/n'"
    )


def step_samples_spec(value):
    """None, or n₀ ≥ 1 samples per step: an integer or a formula in d, m (e.g. '0.5*d')."""
    if value is None:
        return None
    allowed = "None, an integer ≥ 1 or a formula in d, m such as '0.5*d'"
    return _formula_or(value, integer_at_least(1), allowed, names=("d", "m"))


def weight_decay_spec(value):
    """λ per step: 'paper' (λ₁ = 1/η₁, then 0), a number ≥ 0, or a list of numbers ≥ 0."""
    return _positive_numbers(value, False, ("paper",))


def label_transforms_spec(value):
    """One label transform for every step, or a non-empty list with one per step."""
    if isinstance(value, list | tuple):
        if not value:
            raise ValueError("must be a transform or a non-empty list of them, got []")
        for item in value:
            label_transform_spec(item)
        return list(value)
    return label_transform_spec(value)


diagnostics_target_spec = directions_spec
"""None, a MultiIndexTarget, or directions U: a 2-D (r, d) array of row vectors."""


def diagnostics_data_spec(value):
    """None, or test data (X, y): a 2-D (n, d) array and a 1-D (n,) array of finite numbers."""
    if value is None:
        return None
    message = (
        "must be None or a pair (X, y) of a finite 2-D (n, d) array and a finite 1-D (n,) array"
    )
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"{message}, got {type(value).__name__}")
    try:
        X, y = (torch.as_tensor(v, dtype=torch.float64) for v in value)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{message}, got entries that are not numeric arrays") from None
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0] or X.shape[0] < 1:
        raise ValueError(f"{message}, got shapes {tuple(X.shape)} and {tuple(y.shape)}")
    if not (torch.isfinite(X).all() and torch.isfinite(y).all()):
        raise ValueError(f"{message}, got non-finite entries")
    return value


class GiantStepNetwork(FrozenFirstLayerHead, BaseLearner):
    """T giant full-batch steps on the first layer (second layer fixed), then the ridge head.

    Parameters
    ----------
    width : int
        m: even with ``second_layer="paper"`` (neurons in ± pairs), else any m ≥ 1.
    steps : int
        T ≥ 1 gradient steps on W.
    step_size : "harmonic", float, str, list, "stable", "sqrt_d" or "dandi"
        η_t: "harmonic" is η_t = √d/t (η₁ = √d, Algorithm 1's); "stable" is η₁ = √d then
        η_t = 1/(c²·Σ_j a_j²), the curvature's stable step for the "gradient" rule;
        "sqrt_d" is √d at every step (see the module docstring for each, and for "dandi"
        and its map to Dandi et al.). Any other string is a formula in n (the step's batch
        size), d and m (the width), evaluated at fit (``replearn.formula``): Dandi et al.
        2023's η = 10·√(n·p) for the ½-loss is ``"5*sqrt(n*m)"`` here. A list gives one
        number or formula per step.
    weight_decay : "paper", float or list of float
        λ_t: "paper" is λ₁ = 1/η₁ (W⁰ cancels: Algorithm 1's step) and λ_t = 0 for t ≥ 2.
    batch : {"fresh", "reuse"}
        Step t on samples t·n…(t+1)·n−1 ("fresh") or every step on 0…n−1 ("reuse").
    later_steps : {"residual", "gradient"}
        Steps t ≥ 2: "residual" is Algorithm 1's step on the residual y − ŷ_{t−1}(x) of the
        predictor refitted after step t − 1 (its mean and linear part removed), through the
        head's features: w_j ← w_j + 2η_t·c·a_j·mean(s·σ′(w_j·x + b_j)·x) with b the head's
        biases; "gradient" is the network's own gradient with its fixed second layer (Dandi
        et al.'s; always so with ``head="none"``). See the module docstring.
    step_samples : None, int or str
        None (default): each step uses n samples and the head the last step's batch. Else
        n₀, the samples of each step (an integer, or a formula in d and m such as
        ``"0.5*d"``: Cui et al.'s n₀ = α₀·d), and the head is fitted on n FRESH samples
        after those of the steps (Cui et al. 2024's protocol): with ``fit_stream(stream,
        n)`` step t uses samples t·n₀…(t+1)·n₀ − 1 ("fresh"; "reuse": 0…n₀ − 1 every step)
        and the head samples T·n₀…T·n₀ + n − 1 ("reuse": n₀…n₀ + n − 1), so a spec's n is
        the head's α·d; with ``fit(X, y)`` the steps take the first T·n₀ rows ("reuse": n₀)
        and the head the rest. ``n_samples_`` counts both.
    output_scale : float, "1/sqrt(m)" or "1/m"
        c in f(x) = c·Σ_j a_j σ(w_j·x + b_j) (1: the paper's network; "1/m": Dandi et al.'s
        mean-field scaling; "1/sqrt(m)": Dandi et al. 2023's and Cui et al. 2024's f =
        aᵀσ(Wx)/√p). The head's features are c·σ(W^T x + b) (``a_`` is refitted).
    label_transform : None, a transform, or a list with one per step
        T of ``OneStepNetwork``, applied to the raw labels of each step's batch.
    preprocess : bool
        Subtract α_t + β_t·x (of each step's batch) from the labels, and α + β·x before the head.
    diagnostics_target : None, MultiIndexTarget or (r, d) directions
        When given, ``history_`` also holds the alignment with span(U), the m × r cosines
        and overlaps between neurons and the directions, and the cosines of each step's
        rows (O(m·d·r) per step).
    diagnostics_data : None or (X_test, y_test)
        When given, ``history_`` also holds ``network_risk``: the test MSE of the network
        itself after each step, mean (α_t + β_t·x + c·aᵀσ(W^t x + b) − y)² with its fixed
        second layer (no head; α_t, β_t of the step's batch, 0 without ``preprocess``). No
        ½: Dandi et al. 2024's test error Σ½(y − f)²/N is half of it.
    degree_shares : bool
        Also record each step's ``residual_degree_shares`` (below): O(d²) work per sample
        in each step's pass, most of the time at large d, so off by default.
    activation : str, Activation or (σ, σ′)
        σ, as in ``OneStepNetwork`` (default "relu").
    first_layer : {"gaussian", "unit_rows", "orthogonal"} or array (m, d)
        W⁰, as in ``OneStepNetwork``.
    second_layer : {"paper", "signs", "gaussian", "constant"} or array (m,)
        a, fixed during the steps, as in ``OneStepNetwork``.
    directions : None, MultiIndexTarget or array (r, d)
        The span that ``first_layer="orthogonal"`` avoids.
    biases : {"paper", "none", "normal"}
        b during the steps / for the head: 0 / N(0, 1) ("paper"), 0 / 0 ("none"),
        N(0, 1) / the same N(0, 1) ("normal"; shared by partners of the paper's pairs, so
        f⁰ ≡ 0 still).
    head : {"ridge", "gd", "none"}
        As in ``OneStepNetwork``; "none": no head, the predictor is the trained network
        itself, α + β·x + c·aᵀσ(W^T x + b) with the steps' a and b (Dandi et al.'s measure
        after T steps; ``ridge_lambda`` unused, ``transfer`` not available).
    ridge_lambda : "auto", float or str
        As in ``OneStepNetwork`` (λ: (1/n)‖Φa − r‖² + (λ/2)‖a‖², Φ = c·σ(W^T X + b)); a
        string other than "auto" is a formula in n (the head's samples), d and m, evaluated
        at fit and at ``transfer``: an unnormalised ridge Σ(y − aᵀφ)² + λ_C‖a‖² is
        ``"2*λ_C/n"`` (Dandi et al. 2023's λ_C = 1: ``"2/n"``).
    head_steps, head_lr, dtype, device, chunk_size, seed
        As in ``OneStepNetwork``.

    Attributes
    ----------
    W_, b_, a_, alpha_, beta_, network_, initial_network_, ridge_lambda_ …
        As in ``OneStepNetwork`` (``W_`` is W^T).
    step_sizes_, weight_decays_ : list of float
        η_t and λ_t used.
    history_ : list of dict (plain floats, lists and CPU tensors; picklable), one per step:
        ``step`` (1…T), ``batch_start``, ``n_samples``, ``eta``, ``weight_decay``,
        ``step_norm`` ‖W^t − W^{t−1}‖_F, ``weight_norm`` ‖W^t‖_F, ``paired_pass`` (whether the
        m/2-row pass was exact for this step) and, with ``diagnostics_target``:
        ``alignment`` (``metrics.subspace_alignment`` of W^t), ``direction_cosines`` (m, r)
        (``metrics.direction_cosines``), ``direction_overlaps`` (m, r) = W^t·Uᵀ (Dandi et
        al. 2024's m(t) with unit rows u_k), ``step_cosines`` (m, r): the cosines of the
        step's rows W^t − W^{t−1} (−η_t∇L_t with λ_t = 0: Dandi et al. 2023's cos(G_i, θ_k)),
        with ``diagnostics_data`` ``network_risk`` (above), and with ``degree_shares``
        ``residual_degree_shares`` {0, 1, 2, "higher"}: the batch's empirical Hermite
        energy of the residual r = f(x) − s (−s for a residual step) at degrees 0, 1, 2 and
        the rest, as shares of mean r² — the gradient's leading term sees degree 2 only
        (−2c·a_j·E[r·1[w·x ≥ 0]·x] = −c·a_j(E[r·x] + 2·E[r(xxᵀ − I)]ŵ/√(2π) + degree ≥ 4
        terms); the higher even degrees enter through contractions with ŵ^{⊗(k−1)}, whose
        exact shares would need the O(d^k) degree-k coefficients, so they are not split).
        Plug-in estimates: the degree-2 share is biased up by about d²/(2n) (the sampling
        noise of its d² entries, each of variance ≈ E r²/n).
        Cost of the degree shares: O(d²) more work per sample in each pass and one extra
        pass at step 1 (whose pass is Algorithm 1's shared one).
    initial_diagnostics_ : dict or None
        The same measurements of W⁰ (no ``step_cosines``, ``residual_degree_shares``) when a
        diagnostics target or data is given, else None.

    Examples
    --------
    Two giant steps on a staircase target, with the per-step diagnostics:

    >>> import replearn as rl
    >>> target = rl.MultiIndexTarget.from_expression("He2(z1) + He3(z1)*z2", d=16, seed=0)
    >>> stream = rl.DataStream(target, noise=0.1, seed=0)
    >>> net = rl.GiantStepNetwork(width=64, steps=2, diagnostics_target=target, seed=0)
    >>> net = net.fit_stream(stream, n=4096, n_holdout=1024)
    >>> [h["step"] for h in net.history_], tuple(net.history_[1]["direction_cosines"].shape)
    ([1, 2], (64, 2))
    >>> float(rl.excess_risk(net, target, n_test=2000, seed=1)) < 1.0
    True

    Cui et al. 2024 (one step, then ridge on fresh samples): tanh student, y = tanh(x₁),
    f = aᵀσ(Wx)/√p with a_j = 1/√p, unit rows, no biases; their step W¹ = W⁰ + η̃·p·G (G minus
    the gradient of the ½-mean loss) is ours, W¹ = W⁰ − η∇L = W⁰ + 2ηG, with η = η̃·p/2; their
    ridge Σ_i (y_i − aᵀφ_i)² + λ_C‖a‖² on φ = σ(W¹x)/√p is ours with λ = 2λ_C/n. The step on
    n₀ = d/2 samples, the head refitted on n = 2d fresh ones (``transfer``):

    >>> import torch
    >>> d = p = 64
    >>> def teacher(n, seed):
    ...     X = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    ...     return X, torch.tanh(X[:, 0])
    >>> (X0, y0), (X, y), (X_test, y_test) = teacher(d // 2, 0), teacher(2 * d, 1), teacher(4096, 2)
    >>> cui = rl.GiantStepNetwork(
    ...     width=p, steps=1, step_size=1.0 * p / 2, weight_decay=0.0, preprocess=False,
    ...     activation="tanh", output_scale="1/sqrt(m)", first_layer="unit_rows",
    ...     second_layer="constant", biases="none", ridge_lambda=2 * 0.01 / len(X),
    ...     dtype="float64").fit(X0, y0)
    >>> before, after = cui.initial_network_.W[:, 0].abs().mean(), cui.W_[:, 0].abs().mean()
    >>> bool(after > 3 * before)             # the step moved every neuron towards e₁
    True
    >>> model = cui.transfer(X, y)           # ridge on fresh samples, W¹ and b = 0 kept
    >>> bool(((model.predict(X_test) - y_test) ** 2).mean() < 0.6 * y_test.var())
    True

    Dandi et al. 2024 (batch reuse): two ReLU neurons, a = (1, −1)/√2 fixed, rows orthogonal
    to the teacher tanh(h₁ + He₃(h₂)) at start, full-batch GD on the same N = 3D samples
    (``batch="reuse"``, ``weight_decay=0.0``, ``preprocess=False``, no biases):

    >>> import math
    >>> D = 32
    >>> X = torch.randn(3 * D, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> y = torch.tanh(X[:, 0] + rl.hermite.he(3, X[:, 1]))
    >>> U = torch.eye(D, dtype=torch.float64)[:2]              # the teacher's directions
    >>> a = torch.tensor([1.0, -1.0], dtype=torch.float64) / math.sqrt(2)
    >>> net = rl.GiantStepNetwork(
    ...     width=2, steps=7, step_size=0.5, weight_decay=0.0, batch="reuse", preprocess=False,
    ...     first_layer="orthogonal", second_layer=a, directions=U, biases="none",
    ...     diagnostics_target=U, ridge_lambda=1e-3, dtype="float64").fit(X, y)
    >>> float((net.initial_network_.W @ U.T).abs().max()) < 1e-12   # W⁰ ⟂ span U
    True
    >>> overlaps = [h["direction_cosines"].abs().max(0).values for h in net.history_]
    >>> bool((overlaps[-1] > overlaps[0]).all())   # both overlaps grow over the 7 steps
    True
    """

    _parameter_checks = {
        "width": model_width,
        "steps": count_within("steps", 1),
        "step_size": step_size_spec,
        "weight_decay": weight_decay_spec,
        "batch": choice("fresh", "reuse"),
        "later_steps": choice("residual", "gradient"),
        "step_samples": step_samples_spec,
        **MODEL_PARAMETER_CHECKS,
        "label_transform": label_transforms_spec,
        "preprocess": boolean,
        "diagnostics_target": diagnostics_target_spec,
        "diagnostics_data": diagnostics_data_spec,
        "degree_shares": boolean,
        "head": choice("ridge", "gd", "none"),
        "ridge_lambda": head_ridge_lambda_spec,
        "head_steps": count_within("steps", 0),
        "head_lr": number(0.0, True, ("auto",)),
        "dtype": dtype_name,
        "device": device_name,
        "chunk_size": integer_at_least(1),
        "seed": seed,
    }
    _not_in_specs = frozenset({"diagnostics_target", "directions"})  # the engine passes them

    def __init__(
        self,
        width: int = 100,
        steps: int = 1,
        step_size="harmonic",
        weight_decay="paper",
        batch: str = "fresh",
        later_steps: str = "residual",
        output_scale: float | str = 1.0,
        label_transform=None,
        preprocess: bool = True,
        diagnostics_target=None,
        diagnostics_data=None,
        degree_shares: bool = False,
        activation="relu",
        first_layer="gaussian",
        second_layer="paper",
        directions=None,
        biases: str = "paper",
        head: str = "ridge",
        ridge_lambda: float | str = "auto",
        head_steps: int = 1000,
        head_lr: float | str = "auto",
        dtype: torch.dtype | str = "float32",
        device: str | torch.device = "cpu",
        chunk_size: int = 32_768,
        seed: int = 0,
        step_samples=None,
    ):
        self.width = width
        self.steps = steps
        self.step_size = step_size
        self.weight_decay = weight_decay
        self.batch = batch
        self.later_steps = later_steps
        self.output_scale = output_scale
        self.label_transform = label_transform
        self.preprocess = preprocess
        self.diagnostics_target = diagnostics_target
        self.diagnostics_data = diagnostics_data
        self.degree_shares = degree_shares
        self.activation = activation
        self.first_layer = first_layer
        self.second_layer = second_layer
        self.directions = directions
        self.biases = biases
        self.head = head
        self.ridge_lambda = ridge_lambda
        self.head_steps = head_steps
        self.head_lr = head_lr
        self.dtype = dtype
        self.device = device
        self.chunk_size = chunk_size
        self.seed = seed
        self.step_samples = step_samples

    def _check_combination(self, values) -> None:
        self._check_width_rule(values)
        steps = values["steps"]
        for name in ("step_size", "weight_decay", "label_transform"):
            value = values[name]
            if isinstance(value, list) and len(value) != steps:
                raise ValueError(
                    f"{name} has {len(value)} entries but steps = {steps}: give one per step "
                    "or a single value"
                )
        transforms = values["label_transform"]
        if (
            isinstance(transforms, list)
            and values["later_steps"] == "residual"
            and values["head"] != "none"
            and any(t is not None for t in transforms[1:])
        ):
            raise ValueError(
                "label_transform: with later_steps='residual' the steps t ≥ 2 fit the residual "
                "of y (give None for them, or later_steps='gradient')"
            )

    def _residual_steps(self) -> bool:
        """Whether steps t ≥ 2 are residual steps (``later_steps="residual"`` with a head)."""
        return self.later_steps == "residual" and self.head != "none"

    def _fit_memory_bytes(self, n: int, d: int, n_holdout: int = 0) -> tuple[int, str] | None:
        """The ridge head's estimate (``BaseLearner._fit_memory_bytes``), plus, when steps
        t ≥ 2 are residual steps, one more chunk of features: the refitted predictor's ŷ is
        formed chunk by chunk beside the step's own features (measured peaks in
        tests/test_memory_estimates.py)."""
        estimate = super()._fit_memory_bytes(n, d, n_holdout)
        if estimate is None or self.steps < 2 or not self._residual_steps():
            return estimate
        rows = min(self.chunk_size, max(n, n_holdout))
        extra = rows * self.width * torch.empty((), dtype=self._dtype).element_size()
        return estimate[0] + extra, estimate[1] + " and the residual steps' predictor chunk"

    # -- public API -------------------------------------------------------------------------
    def _samples_per_pass(self, n_rows: int, d: int) -> int:
        """``fit`` on arrays: fresh batches split the rows into T parts of ⌊N/T⌋ rows (the last
        N − T·⌊N/T⌋ unused), reused batches take all N rows for every step. With
        ``step_samples`` n₀: the head's n = N − T·n₀ (fresh) or N − n₀ (reuse), the rows after
        the steps'."""
        if self.step_samples is not None:
            used = self._steps_samples(d) * (self.steps if self.batch == "fresh" else 1)
            if n_rows <= used:
                raise ValueError(
                    f"step_samples = {self.step_samples!r} uses {used} rows for the steps; the "
                    f"head needs more rows after them, got {n_rows} rows in all"
                )
            return n_rows - used
        if self.batch != "fresh":
            return n_rows
        if n_rows < self.steps:
            raise ValueError(
                f"batch='fresh' with steps = {self.steps} needs at least {self.steps} rows "
                f"(one per step), got {n_rows}"
            )
        return n_rows // self.steps

    # -- the steps --------------------------------------------------------------------------
    def _per_step(self, value, t: int):
        return value[t] if isinstance(value, list) else value

    def _steps_samples(self, d: int) -> int:
        """n₀ of ``step_samples`` at dimension d (a formula rounded to the nearest integer)."""
        value = self.step_samples
        if isinstance(value, str):
            n0 = evaluate_formula(value, {"d": d, "m": self.width})
            if not n0 >= 0.5:
                raise ValueError(
                    f"step_samples = {value!r} gives {n0:g} samples at d = {d}; must be ≥ 1"
                )
            return int(round(n0))
        return int(value)

    def _eta(self, t: int, d: int, n: int, a_energy: float) -> float:
        """η_t; ``a_energy`` = Σ_j a_j² (the curvature scale of "stable"); a formula is
        evaluated at the step's batch size n, d and the width m."""
        eta = self._per_step(self.step_size, t)
        if eta == "sqrt_d" or (eta in ("stable", "harmonic") and t == 0):
            return math.sqrt(d)
        if eta == "harmonic":
            return math.sqrt(d) / (t + 1)
        if eta == "stable":
            return 1.0 / (self._scale() ** 2 * a_energy)
        if eta == "dandi":
            return math.sqrt(n / d) / self._scale()
        if isinstance(eta, str):
            value = evaluate_formula(eta, {"n": n, "d": d, "m": self.width})
            if not value > 0:
                raise ValueError(
                    f"step_size = {eta!r} gives η = {value:g} at n = {n}, d = {d}, "
                    f"m = {self.width}; must be > 0"
                )
            return value
        return float(eta)

    def _decay(self, t: int, eta: float) -> tuple[float, bool]:
        """(λ_t, whether η_t·λ_t = 1 exactly — W^{t−1} cancels)."""
        decay = self._per_step(self.weight_decay, t)
        if decay == "paper":
            return (1.0 / eta, True) if t == 0 else (0.0, False)
        return float(decay), eta * float(decay) == 1.0

    def _directions(self, d: int) -> torch.Tensor | None:
        return direction_rows(self.diagnostics_target, d, "diagnostics_target")

    def _fit(self, source, n: int, holdout, n_holdout: int) -> GiantStepNetwork:
        d = source.d
        n_head = n  # the head's samples: the last step's batch, or n fresh ones after the steps
        if self.step_samples is not None:
            n = self._steps_samples(d)
        limits.check("n", n * self.steps, f"n·steps = {n:,}·{self.steps} (samples the steps use)")
        half = self.width // 2
        scale = self._scale()
        directions = self._directions(d)
        init = self._initial_network(d)
        self.initial_network_ = init
        a = init.a.to(torch.float64)
        a_energy = float(a.pow(2).sum())  # Σ_j a_j²
        linear_parts: dict[int, tuple] = {}  # batch start → (α, β): one pass per batch
        labels_cache: dict[tuple, object] = {}
        W = init.W.to(torch.float64)  # W^t in float64; each pass uses it in the model's dtype
        # the paper's step model: partners "equal" (init), "opposite" (w_{j+m/2} = −w_j) or
        # "free"; any other model: "general" (the true gradient on all m rows, every step)
        state = "equal" if self._paper_step() else "general"
        history, etas, decays = [], [], []
        head_biases = self._head_biases() if self.head != "none" else None
        test = self._diagnostics_data(d)
        self.initial_diagnostics_ = None
        if directions is not None or test is not None:
            first = None
            if test is not None:  # the predictor before any step: α₀ + β₀·x + f⁰
                linear_parts[0] = first = self._linear_part(source, n, start=0)
            self.initial_diagnostics_ = self._diagnostics(W, None, init, directions, test, first)
        for t in range(self.steps):
            start = t * n if self.batch == "fresh" else 0
            if start not in linear_parts:
                linear_parts[start] = self._linear_part(source, n, start=start)
            alpha, beta = linear_parts[start]
            eta = self._eta(t, d, n, a_energy)
            decay, cancels = self._decay(t, eta)
            W_dtype = W.to(self._dtype)
            record = self.degree_shares
            residual = t > 0 and self._residual_steps()
            if residual:  # the predictor after step t − 1, refitted on its batch
                previous = (t - 1) * n if self.batch == "fresh" else 0
                self.W_, self.b_ = W_dtype, head_biases
                self._fit_head(source, n, previous, *linear_parts[previous], holdout, n_holdout)
                labels = None
            else:
                spec = self._per_step(self.label_transform, t)
                key = (start, id(spec) if callable(spec) else spec)
                if key not in labels_cache:
                    transform = resolve_label_transform(spec)
                    labels_cache[key] = step_label_function(
                        self, source, n, start, transform, alpha, beta
                    )
                labels = labels_cache[key]
            if residual:
                W_new, shares = self._residual_step(
                    source, n, start, init, W, head_biases, eta, decay, record
                )
                paired = False
            elif state == "general":
                W_new, shares = self._general_step(
                    source, n, start, init, W, labels, eta, decay, cancels, record
                )
                paired = False
            elif state == "equal":
                # f ≡ 0: ∇_j = −(2c/n)·a_j·Σ s·1[w_j·x ≥ 0]·x, ∇_{j+m/2} = −∇_j
                step_sum = first_layer_step_sum(
                    source, n, start, W_dtype[:half], labels, self.chunk_size,
                    self._dtype, self._device,
                )  # fmt: skip
                shares = self._label_shares(source, n, start, labels) if record else None
                if cancels:  # W⁰ cancels: Algorithm 1's expression, bit for bit
                    W_half = 2.0 * eta * scale * init.a[:half, None] * (step_sum / n)
                    W_half = W_half.to(torch.float64)
                    W_new = torch.cat([W_half, -W_half])
                    state = "opposite"
                else:
                    move = 2.0 * eta * scale * a[:half, None] * (step_sum / n)
                    shrink = 1.0 - eta * decay
                    W_new = torch.cat([shrink * W[:half] + move, shrink * W[:half] - move])
                    state = "free"
                paired = True
            else:
                gradient_sum, shares = self._gradient_sum(
                    source, n, start, W_dtype, a, scale, labels, state, record
                )
                gradient = (2.0 * scale / n) * a[:, None] * gradient_sum
                W_new = W - eta * (gradient + decay * W)
                paired = state == "opposite"
                state = "free"
            if not bool(torch.isfinite(W_new).all()):
                raise ValueError(
                    f"the first layer diverged at step {t + 1} (non-finite weights with "
                    f"η = {eta:g}): use a smaller step_size or output_scale='1/m'"
                )
            entry = {
                "step": t + 1,
                "batch_start": start,
                "n_samples": n,
                "eta": eta,
                "weight_decay": decay,
                "step_norm": float(torch.linalg.norm(W_new - W)),
                "weight_norm": float(torch.linalg.norm(W_new)),
                "paired_pass": paired,
            }
            entry.update(self._diagnostics(W_new, W, init, directions, test, (alpha, beta)))
            if record:
                entry["residual_degree_shares"] = shares
            W = W_new
            history.append(entry)
            etas.append(eta)
            decays.append(decay)
        self.step_sizes_, self.weight_decays_, self.history_ = etas, decays, history
        self.W_ = W.to(self._dtype)
        last_start = (self.steps - 1) * n if self.batch == "fresh" else 0
        steps_used = n * self.steps if self.batch == "fresh" else n
        if self.head == "none":
            self._keep_second_layer(init, *linear_parts[last_start])
        elif self.step_samples is None:  # the head on the last step's batch
            self.b_ = head_biases
            alpha, beta = linear_parts[last_start]
            self._fit_head(source, n, last_start, alpha, beta, holdout, n_holdout)
        else:  # the head on n_head fresh samples after those of the steps (Cui et al.)
            self.b_ = head_biases
            alpha, beta = self._linear_part(source, n_head, start=steps_used)
            self._fit_head(source, n_head, steps_used, alpha, beta, holdout, n_holdout)
        fresh_head = self.step_samples is not None and self.head != "none"
        self.n_samples_ = steps_used + (n_head if fresh_head else 0)
        return self

    def _keep_second_layer(self, init, alpha, beta) -> None:
        """``head="none"``: the predictor is the trained network itself, α + β·x + c·aᵀσ(W^T x +
        b) with a and b those of the steps (no refit; α, β of the last step's batch, or 0)."""
        self.b_, self.a_ = init.b, init.a
        self.alpha_, self.beta_ = alpha, beta
        self.ridge_lambda_ = None
        self.lambda_path_ = self.lambda_criterion_ = self.lambda_criterion_name_ = None
        self.network_ = TwoLayerNetwork(self.W_, self.b_, self.a_, init.activation, self._scale())

    def _transferred(self, source, n, holdout, n_holdout):
        if self.head == "none":
            raise ValueError(
                "head='none' has no head to refit: transfer needs head='ridge' or 'gd'"
            )
        return super()._transferred(source, n, holdout, n_holdout)

    def _diagnostics_data(self, d: int):
        """``diagnostics_data`` as (X, y) in the model's dtype and device, or None."""
        if self.diagnostics_data is None:
            return None
        X, y = (
            torch.as_tensor(v).to(device=self._device, dtype=self._dtype)
            for v in self.diagnostics_data
        )
        if X.shape[1] != d:
            raise ValueError(f"diagnostics_data has X with {X.shape[1]} columns, the data d = {d}")
        return X, y

    def _diagnostics(self, W, W_before, init, directions, test, linear) -> dict:
        """The per-step measurements of W (float64 master) after a step from ``W_before``
        (None: the initial W⁰): with directions U, ``alignment``, ``direction_cosines``,
        ``direction_overlaps`` W·Uᵀ and ``step_cosines`` (cosines of the step's rows
        W − W_before); with test data, ``network_risk``."""
        out = {}
        if directions is not None:
            W_cpu = W.to(self._dtype).to(torch.float64).cpu()
            out["alignment"] = subspace_alignment(W_cpu, directions)
            out["direction_cosines"] = direction_cosines(W_cpu, directions)
            out["direction_overlaps"] = W_cpu @ directions.T
            if W_before is not None:
                out["step_cosines"] = direction_cosines((W - W_before).cpu(), directions)
        if test is not None:
            X, y = test
            alpha, beta = linear
            network = TwoLayerNetwork(
                W.to(self._dtype), init.b, init.a, init.activation, init.output_scale
            )
            f = alpha + X @ beta + network(X, self.chunk_size)
            out["network_risk"] = float((f.to(torch.float64) - y.to(torch.float64)).pow(2).mean())
        return out

    def _general_step(self, source, n, start, init, W, labels, eta, decay, cancels, record):
        """W − η(∇L + λW) for any model: ∇_{w_j}L = (2c/n)·a_j·Σ_i r_i·σ′(w_j·x_i + b_j)·x_i,
        r = f(x) − s (``first_layer_gradient_sum``); and the residual's degree shares."""
        scale = init.output_scale
        network = TwoLayerNetwork(W.to(self._dtype), init.b, init.a, init.activation, scale)
        moments = _ResidualMoments(W.shape[1], self._device) if record else None
        gradient_sum = first_layer_gradient_sum(
            source, n, start, network, labels, self.chunk_size, self._dtype, self._device,
            on_chunk=moments.add if moments is not None else None,
        )  # fmt: skip
        gradient = (2.0 * scale / n) * init.a.to(torch.float64)[:, None] * gradient_sum
        W_new = gradient_step(W, gradient, eta, decay, cancels)
        return W_new, (moments.shares() if moments is not None else None)

    def _residual_step(self, source, n, start, init, W, biases, eta, decay, record):
        """Step t ≥ 2 on the residual of the fitted predictor ŷ (``later_steps="residual"``):

            s = r − mean r − (mean r·x)·x,   r = y − ŷ(x)   (the linear part only if ``preprocess``)
            W^t = W^{t−1} − η_t(∇_W L_t + λ_t W^{t−1}),   ∇_{w_j} L_t = −(2c/n)·a_j·Σ_i s_i·σ′(w_j·x_i + b_j)·x_i

        over the step's batch: the gradient at W^{t−1} of the re-centred network
        ŷ(x) + c·Σ_j a_j(σ(w_j·x + b_j) − σ(w_j^{t−1}·x + b_j)), whose output at W^{t−1} is ŷ,
        with b the head's biases (``first_layer_gradient_sum`` with a = 0: f ≡ 0, so its
        residual is −s). Returns (W^t, the degree shares of −s when ``record``)."""
        residuals = _ResidualSource(source, self._predict_chunk, self._dtype, self._device)
        alpha, beta = self._linear_part(residuals, n, start=start)
        zero = torch.zeros_like(init.a)
        network = TwoLayerNetwork(
            W.to(self._dtype), biases, zero, init.activation, init.output_scale
        )
        moments = _ResidualMoments(W.shape[1], self._device) if record else None
        gradient_sum = first_layer_gradient_sum(
            residuals, n, start, network, lambda X, r: r - alpha - X @ beta, self.chunk_size,
            self._dtype, self._device, on_chunk=moments.add if moments is not None else None,
        )  # fmt: skip
        gradient = (2.0 * init.output_scale / n) * init.a.to(torch.float64)[:, None] * gradient_sum
        W_new = gradient_step(W, gradient, eta, decay, False)
        return W_new, (moments.shares() if moments is not None else None)

    def _label_shares(self, source, n, start, labels):
        """Degree shares of the step-1 residual r = −s (f ≡ 0): one extra pass (diagnostics)."""
        moments = _ResidualMoments(source.d, self._device)
        for X, y, *_ in source.chunks(n, self.chunk_size, start=start):
            X = X.to(device=self._device, dtype=self._dtype)
            moments.add(X, -labels(X, y.to(device=self._device, dtype=self._dtype)))
        return moments.shares()

    def _gradient_sum(self, source, n, start, W, a, scale, labels, state, record):
        """G with G_j = Σ_i r_i·1[w_j·x_i ≥ 0]·x_i, r = f(x) − s: float64 (m, d); and the
        residual's degree shares when ``record``.

        ``state == "opposite"`` (w_{j+m/2} = −w_j, z_j = w_j·x): one product with the m/2
        rows, G_j = Σ r·1[z_j ≥ 0]·x and G_{j+m/2} = Σ r·1[−z_j > 0]·x = Σ r·x − G_j.
        Else one product with all m rows and 1[z > 0] (autograd's ReLU'(0) = 0). Ties
        z = 0 with x ≠ 0 have probability 0 for continuous x (a row x = 0 adds nothing
        either way); step 1 keeps Algorithm 1's 1[z ≥ 0].
        """
        half = self.width // 2
        opposite = state == "opposite"
        rows = W[:half] if opposite else W
        a_rows = (a[:half] if opposite else a).to(self._dtype)
        total = torch.zeros(rows.shape, dtype=torch.float64, device=self._device)
        linear = torch.zeros(rows.shape[1], dtype=torch.float64, device=self._device)
        moments = _ResidualMoments(rows.shape[1], self._device) if record else None
        v = rows.T @ a_rows if opposite else None  # f(x) = c·v·x while partners are opposite
        for X, y, *_ in source.chunks(n, self.chunk_size, start=start):
            X = X.to(device=self._device, dtype=self._dtype)
            s = labels(X, y.to(device=self._device, dtype=self._dtype))
            Z = X @ rows.T  # (c, m/2) or (c, m); the masks below are written into Z in place
            if opposite:
                r = scale * (X @ v) - s  # Σ_j a_j (ReLU(z_j) − ReLU(−z_j)) = Σ_j a_j z_j = v·x
                total += (Z.ge_(0).mul_(r[:, None]).T @ X).to(torch.float64)  # 1[z ≥ 0]
                linear += (r @ X).to(torch.float64)
            else:
                r = scale * (Z.clamp_min_(0) @ a_rows) - s  # Z now holds ReLU(z)
                total += (Z.gt_(0).mul_(r[:, None]).T @ X).to(torch.float64)  # 1[z > 0]
            if moments is not None:
                moments.add(X, r)
        if opposite:
            total = torch.cat([total, linear[None, :] - total])
        return total, (moments.shares() if moments is not None else None)


class _ResidualSource:
    """A source whose labels are the residuals y − ŷ(x) of a fitted predictor ŷ (chunks of
    the wrapped source, X and the residual in the model's dtype and device)."""

    def __init__(self, source, predict, dtype, device):
        self.source, self.predict, self.dtype, self.device = source, predict, dtype, device
        self.d = source.d

    def chunks(self, n: int, chunk_size: int, start: int = 0):
        for X, y, *rest in self.source.chunks(n, chunk_size, start=start):
            X = X.to(device=self.device, dtype=self.dtype)
            y = y.to(device=self.device, dtype=self.dtype)
            with torch.no_grad():
                yield X, y - self.predict(X), *rest


class _ResidualMoments:
    """Float64 sums for the Hermite energy of a residual r(x) by degree (x ~ N(0, I_d)):
    degree 0: (mean r)², 1: ‖mean r·x‖², 2: ‖mean r·(xxᵀ − I)‖²_F / 2, over mean r²."""

    def __init__(self, d: int, device):
        self.count = 0
        self.total = 0.0
        self.square = 0.0
        self.first = torch.zeros(d, dtype=torch.float64, device=device)
        self.second = torch.zeros(d, d, dtype=torch.float64, device=device)

    def add(self, X: torch.Tensor, r: torch.Tensor) -> None:
        X, r = X.to(torch.float64), r.to(torch.float64)
        self.count += r.shape[0]
        self.total += float(r.sum())
        self.square += float((r * r).sum())
        self.first += r @ X
        self.second += (X * r[:, None]).T @ X
        self.second.diagonal().sub_(float(r.sum()))

    def shares(self) -> dict:
        n = self.count
        energy = self.square / n
        if energy == 0.0:
            return {0: 0.0, 1: 0.0, 2: 0.0, "higher": 0.0}
        e0 = (self.total / n) ** 2
        e1 = float((self.first / n).pow(2).sum())
        e2 = float((self.second / n).pow(2).sum()) / 2
        shares = {0: e0 / energy, 1: e1 / energy, 2: e2 / energy}
        shares["higher"] = 1.0 - shares[0] - shares[1] - shares[2]
        return shares
