"""replearn.limits: one place for every limit, raised deliberately, never silently."""

from __future__ import annotations

import threading

import pytest

from replearn import limits
from replearn.limits import LimitError


def test_every_limit_has_a_default_a_description_and_an_environment_variable():
    assert set(limits.LIMITS) >= {
        "expression_length",
        "expression_depth",
        "expression_degree",
        "expression_terms",
        "expression_work",
        "latent_dimension",
        "yaml_bytes",
        "yaml_depth",
        "yaml_alias_nodes",
        "grid_cells",
        "seeds",
        "d",
        "width",
        "n",
        "memory_bytes",
    }
    for name, limit in limits.LIMITS.items():
        assert limit.bounds and limit.env == f"REPLEARN_MAX_{name.upper()}"
        assert limit.default is None or limit.default >= 1
        assert limits.get(name) == limit.default


def test_precedence_parameter_then_context_then_environment_then_default(monkeypatch):
    assert limits.get("seeds") == 10_000
    monkeypatch.setenv("REPLEARN_MAX_SEEDS", "20_000")
    assert limits.get("seeds") == 20_000
    with limits.raised(seeds=30_000):
        assert limits.get("seeds") == 30_000
        with limits.raised(width=5):
            assert (limits.get("seeds"), limits.get("width")) == (30_000, 5)
        assert limits.get("width") == 1_000_000
        assert limits.resolve("seeds", 40_000) == 40_000
    assert limits.get("seeds") == 20_000


def test_raised_is_local_to_its_thread():
    seen = []
    with limits.raised(seeds=3):
        thread = threading.Thread(target=lambda: seen.append(limits.get("seeds")))
        thread.start()
        thread.join()
    assert seen == [10_000]


@pytest.mark.parametrize("text", ["lots", "0", "-5", "1.5"])
def test_a_bad_environment_value_is_an_error_not_ignored(monkeypatch, text):
    monkeypatch.setenv("REPLEARN_MAX_GRID_CELLS", text)
    with pytest.raises(ValueError, match=r"REPLEARN_MAX_GRID_CELLS.* must be an integer ≥ 1"):
        limits.get("grid_cells")


def test_unknown_or_bad_limits_are_refused():
    with pytest.raises(ValueError, match=r"unknown limit 'widht'; known: expression_length"):
        limits.get("widht")
    with pytest.raises(ValueError, match=r"unknown limit"):
        with limits.raised(widht=3):
            pass
    with pytest.raises(ValueError, match=r"must be an integer ≥ 1, got 0"):
        with limits.raised(width=0):
            pass
    with pytest.raises(ValueError, match=r"must be an integer ≥ 1, got True"):
        limits.resolve("width", True)


def test_check_gives_the_size_the_limit_and_how_to_raise_it():
    limits.check("seeds", 10_000, "seeds")  # at the limit: accepted
    with pytest.raises(LimitError) as info:
        limits.check("seeds", 1_000_000, "seeds: 1000000")
    message = str(info.value)
    assert message == (
        "seeds: 1000000: 1,000,000 exceeds the limit seeds = 10,000; raise it with "
        "limits.raised(seeds=…) or REPLEARN_MAX_SEEDS=…"
    )
    with pytest.raises(LimitError, match=r"about 10\^400.0 exceeds the limit n"):
        limits.check("n", 10**400, "n: d^400 at d = 10")
    limits.check("n", 10**12, "n", limit=10**12)  # a parameter raises it for one call


def test_grid_cells_is_a_product_without_expanding():
    sizes = {"methods": 3, "d": 4, "n": 10**6, "seeds": 10**6}
    assert limits.grid_cells(sizes) == 12 * 10**12
    with pytest.raises(LimitError, match=r"12,000,000,000,000 exceeds the limit grid_cells"):
        limits.check("grid_cells", limits.grid_cells(sizes), "the grid")
    with pytest.raises(ValueError, match=r"grid size of n must be an integer ≥ 0"):
        limits.grid_cells({"n": -1})


def test_excerpt_is_short_even_for_huge_values():
    assert limits.excerpt("x" * 10) == "'xxxxxxxxxx'"
    long = limits.excerpt("y" * 10_000)
    assert long == repr("y" * 80) + "…"
    # a list that repeats itself (what YAML aliases build) is never expanded in full
    nested: list = ["lol"] * 9
    for _ in range(8):
        nested = [nested] * 9
    shown = limits.excerpt(nested)
    assert len(shown) <= 81 and shown.endswith("…")


def test_check_memory_message_has_the_numbers():
    with limits.raised(memory_bytes=23_400_000_000):
        limits.check_memory(23_400_000_000, "exactly what there is")
        with pytest.raises(LimitError) as info:
            limits.check_memory(
                8 * 100_000**2,
                "width 100000 at d = 10: the 100000×100000 float64 Gram matrix",
            )
    assert str(info.value).startswith(
        "width 100000 at d = 10: the 100000×100000 float64 Gram matrix needs 80.0 GB, "
        "more than the 23.4 GB of the memory_bytes limit;"
    )
    assert "REPLEARN_MAX_MEMORY_BYTES" in str(info.value)
    with pytest.raises(ValueError, match=r"bytes_needed must be a finite number"):
        limits.check_memory(float("nan"), "x")


def test_available_memory_is_measured_on_this_machine():
    available, source = limits.available_memory_bytes("cpu")
    psutil = pytest.importorskip("psutil")
    assert 0 < available <= psutil.virtual_memory().total
    assert source == "the memory available on this machine"
    with pytest.raises(LimitError, match=r"needs .* more than the .* available on this machine"):
        limits.check_memory(psutil.virtual_memory().total * 2, "twice the RAM")


def test_available_memory_on_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    available, source = limits.available_memory_bytes("cuda:0")
    assert available == torch.cuda.get_device_properties(0).total_memory
    assert source == "the memory of cuda:0"


def test_memory_helpers():
    # streamed ridge head: chunk (chunk × p, model dtype) + input chunk (float64) + 5 p×p float64
    m, d, chunk = 100_000, 10, 32_768
    expected = chunk * m * 4 + chunk * d * 8 + 5 * m * m * 8
    assert limits.ridge_head_bytes(m, d, chunk, "float32") == expected
    assert limits.ridge_head_bytes(m, d, chunk, "torch.float32") == expected
    n = 10**5
    assert limits.dense_kernel_bytes(n, d) == 4 * 8 * n * n + 8 * n * d
    assert limits.item_bytes("float64") == 8
    with pytest.raises(ValueError, match=r"dtype must be one of"):
        limits.ridge_head_bytes(10, 5, 100, "int8")


def test_learners_own_their_estimates():
    import replearn as rl

    m, d = 1000, 10
    # the ridge-head learners: p = m features, chunks never larger than the data
    for cls in (rl.OneStepNetwork, rl.RandomFeatures, rl.GiantStepNetwork):
        needed, what = cls(width=m, dtype="float64").check_fit_memory(100, d)
        assert needed == limits.ridge_head_bytes(m, d, 100, "float64")
        assert what.startswith(f"{cls.__name__} with width {m} at d = {d}, n = 100")
    # NTK: primal on p = (m/2)(d + 2) features when p ≤ n, else the dual form, whose cost
    # grows with the width too (issue 25, finding 3): at m = 10⁷, n = 50 it is gigabytes
    p = m // 2 * (d + 2)
    primal, what = rl.NTKRegression(width=m).check_fit_memory(10 * p, d)
    assert "primal form" in what and primal >= limits.ridge_head_bytes(p, d, 1, "float32")
    dual, what = rl.NTKRegression(width=10**7).check_fit_memory(50, 8)
    assert "dual form" in what and dual > 5 * 10**9
    # kernel ridge: the n × n kernel (exact)
    assert rl.KernelRidge(solver="exact").check_fit_memory(1000, d)[0] == (
        limits.dense_kernel_bytes(1000, d)
    )


def test_wide_ntk_is_refused_before_any_work():
    import replearn as rl

    target = rl.paper_target(d=8)
    X, y = rl.sample(target, n=50, seed=0)
    with pytest.raises(LimitError, match=r"^NTKRegression with width 1000000000 at d = 8"):
        rl.NTKRegression(width=10**9).fit(X, y)
    with limits.raised(memory_bytes=4 * 10**9):
        with pytest.raises(LimitError) as info:
            rl.NTKRegression(width=10**7).fit(X, y)
    assert "dual form" in str(info.value) and "\n" not in str(info.value)


def test_pre_run_check_asks_the_learner():
    from replearn.experiments.executors import check_run_memory
    from replearn.experiments.methods import METHODS

    params = METHODS["ntk"].params(width=10**6).model_dump()
    config = {"method": "ntk", "params": params, "seed": 0, "dtype": "float32",
              "device": "cpu", "d": 8, "n": 100, "n_holdout": 1000}  # fmt: skip
    with limits.raised(memory_bytes=2 * 10**9):
        with pytest.raises(LimitError, match=r"NTKRegression with width 1000000 at d = 8"):
            check_run_memory(config)
    # kernel ridge is checked too (its solver resolved as the learner does)
    config = dict(config, method="kernel_ridge", params={}, n=10**6)
    with limits.raised(memory_bytes=10**9):
        with pytest.raises(LimitError, match=r"KernelRidge \(solver"):
            check_run_memory(config)
    # a method without a learner is not checked
    check_run_memory(dict(config, method="synthetic", params={}))


def test_format_bytes():
    assert limits.format_bytes(8e10) == "80.0 GB"
    assert limits.format_bytes(2.34e10) == "23.4 GB"
    assert limits.format_bytes(1_500) == "1.5 kB"
    assert limits.format_bytes(12) == "12 B"
    assert limits.format_bytes(3e12) == "3.0 TB"
