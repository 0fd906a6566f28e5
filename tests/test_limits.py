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


def test_fit_memory_estimates():
    # streamed ridge head: chunk (32768 × m, float32) + input chunk (float64) + 3 m×m float64
    m, d, chunk = 100_000, 10, 32_768
    expected = chunk * m * 4 + chunk * d * 8 + 3 * m * m * 8
    assert limits.fit_memory_bytes("one_step", m, d, 10**6, "float32", chunk) == expected
    assert limits.fit_memory_bytes("random_features", m, d, 10**6, "torch.float32") == expected
    # the Gram matrix alone is 8·m² = 80 GB: the estimate is at least that
    assert expected >= 8 * m * m
    # NTK primal: p = m(d + 1) features; dual and exact kernel ridge: 3 n×n float64
    assert limits.fit_memory_bytes("ntk", 10, 9, 100, chunk_size=100) == limits.ridge_head_bytes(
        100, 9, 100, "float32"
    )
    n = 10**5
    assert limits.fit_memory_bytes("kernel_ridge", None, d, n) == 3 * 8 * n * n + 8 * n * d
    assert limits.fit_memory_bytes("ntk", 10, d, n, form="dual") == 3 * 8 * n * n + 8 * n * d
    # a chunk is never larger than the data
    small = limits.fit_memory_bytes("one_step", 10, 5, 100, "float64", chunk_size=10**6)
    assert small == 100 * 10 * 8 + 100 * 5 * 8 + 3 * 10 * 10 * 8
    full = limits.fit_memory_bytes("full_training", 100, 10, 1000, "float32", 256)
    assert full == 4 * 100 * 12 * 4 + 2 * 256 * 100 * 4 + 256 * 10 * 4
    with pytest.raises(ValueError, match=r"method must be one of"):
        limits.fit_memory_bytes("magic", 1, 1, 1)
    with pytest.raises(ValueError, match=r"dtype must be one of"):
        limits.fit_memory_bytes("one_step", 10, 5, 100, "int8")


def test_format_bytes():
    assert limits.format_bytes(8e10) == "80.0 GB"
    assert limits.format_bytes(2.34e10) == "23.4 GB"
    assert limits.format_bytes(1_500) == "1.5 kB"
    assert limits.format_bytes(12) == "12 B"
    assert limits.format_bytes(3e12) == "3.0 TB"


def test_check_fit_memory_names_the_fit():
    with limits.raised(memory_bytes=10**9):
        assert limits.check_fit_memory("one_step", 100, 10, 1000, "float64", 256) == (
            256 * 100 * 8 + 256 * 10 * 8 + 3 * 100 * 100 * 8
        )
        with pytest.raises(LimitError) as info:
            limits.check_fit_memory("kernel_ridge", None, 10, 10**6, "torch.float64")
    assert str(info.value).startswith(
        "kernel_ridge at d = 10, n = 1,000,000 (float64) needs 24.0 TB, "
        "more than the 1.0 GB of the memory_bytes limit"
    )
