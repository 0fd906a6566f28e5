"""load_yaml: safe_load's data, plus bounded work, duplicate keys, YAML 1.2 floats, one line."""

from __future__ import annotations

import math
import tracemalloc
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from replearn import limits
from replearn.experiments.yaml_strict import YAMLSpecError, load_yaml

ROOT = Path(__file__).resolve().parents[1]

# a "billion laughs": 9 levels of 9 aliases each would expand to 9^9 ≈ 3.9·10^8 strings
BOMB = "a: &a [" + ",".join(['"lol"'] * 9) + "]\n"
for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
    BOMB += f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]\n"
BOMB += "seeds: [" + ",".join(["*i"] * 9) + "]\n"


def one_line_error(text: str, **kwargs) -> str:
    with pytest.raises(YAMLSpecError) as info:
        load_yaml(text, "spec.yaml", **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.startswith("spec.yaml: ")
    return message


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads_as_safe_load_reads_it(path):
    text = path.read_text(encoding="utf-8")
    assert load_yaml(text, str(path)) == yaml.safe_load(text)


def test_plain_data_equals_safe_load():
    text = (
        "name: demo\nd: [10, 20]\nn: ['d^1', 'd^1.5', 1000, '1e4', 1.5e+3]\nflag: yes\n"
        "none: ~\nnested: {a: [1, {b: 2}], c: 'x'}\nbase: &w [100, 1000]\nwidths: *w\n"
        "merged: {<<: {w: 1, v: 2}, w: 3}\nhex: 0x1F\nneg: -.inf\n"
    )
    assert load_yaml(text) == yaml.safe_load(text)


def test_exponent_numbers_are_floats_as_in_yaml_1_2():
    data = load_yaml("x: [1e-9, 1e10, 1e300, 1.0e10, .5e3, -2E-3, +3e2, 1_0e1, '1e4', 1e]")
    assert data["x"][:8] == [1e-9, 1e10, 1e300, 1e10, 500.0, -0.002, 300.0, 100.0]
    assert all(type(v) is float for v in data["x"][:8])
    assert data["x"][8:] == ["1e4", "1e"]  # quoted, or not a number: strings, as before
    assert yaml.safe_load("x: 1e-9")["x"] == "1e-9"  # what YAML 1.1 does (the reason for this)


def test_duplicate_keys_are_refused_with_both_lines():
    message = one_line_error("name: a\nd: [1]\nname: b\n")
    assert "line 3: duplicate key 'name' (first at line 1)" in message
    message = one_line_error("methods:\n  - {name: x, width: 1, width: 2}\n")
    assert "duplicate key 'width'" in message and "line 2" in message


def test_merged_keys_may_be_overridden():
    assert load_yaml("b: &b {w: 1, v: 2}\nm: {<<: *b, w: 3}\n")["m"] == {"w": 3, "v": 2}


def test_alias_bomb_fails_fast_in_little_memory():
    assert len(BOMB) < 700
    tracemalloc.start()
    message = one_line_error(BOMB)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "aliases expand to more than 10,000 nodes" in message
    # refused from the event stream: nothing near the 10^8 nodes of the expansion was built
    assert peak < 20e6
    assert len(message) < 400


def test_alias_limit_counts_the_size_of_what_is_repeated():
    # *a repeats a 4-node list (the list and its 3 items): 3 aliases add 12 nodes
    text = "a: &a [1, 2, 3]\nb: [*a, *a, *a]\n"
    assert load_yaml(text, max_alias_nodes=12)["b"] == [[1, 2, 3]] * 3
    assert "more than 11 nodes" in one_line_error(text, max_alias_nodes=11)
    with limits.raised(yaml_alias_nodes=11):
        one_line_error(text)


@pytest.mark.parametrize("depth", [65, 999, 10_000])
def test_deep_nesting_is_one_line(depth):
    message = one_line_error("[" * depth + "]" * depth)
    assert "nested more than 64 levels" in message or "nesting depth" in message


def test_depth_limit_is_exact_and_raisable():
    text = "a:\n" + "".join("  " * i + "  b:\n" for i in range(63))  # 64 nested mappings
    assert load_yaml(text) is not None
    deeper = text + "  " * 64 + "  c: 1\n"
    assert "nested more than 64 levels" in one_line_error(deeper)
    assert load_yaml(deeper, max_depth=65) is not None


def test_size_limit():
    text = "x: " + "1" * 2000
    assert "characters exceed the limit yaml_bytes = 1,000" in one_line_error(text, max_bytes=1000)


def test_python_tags_are_refused():
    message = one_line_error('x: !!python/object/apply:os.system ["true"]')
    assert "YAML tag '!!python/object/apply:os.system' is not allowed" in message
    message = one_line_error("x: !custom 1")
    assert "YAML tag '!custom' is not allowed" in message


def test_error_quotes_are_short():
    key = "k" * 5000  # longer than a simple key may be: written as an explicit key "? …"
    message = one_line_error(f"? {key}\n: 1\n? {key}\n: 2\n")
    assert "duplicate key" in message and len(message) < 250
    message = one_line_error("a: *" + "x" * 5000)
    assert len(message) < 250


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("x: [1, 2\n", "not valid YAML: .*line 2"),
        ("a: 1\n---\nb: 2\n", "expected a single document"),
        ("a: *nope", "undefined alias"),
        ("? [1, 2]\n: x\n", "unhashable"),
    ],
)
def test_syntax_errors_are_one_line(text, pattern):
    assert pytest.importorskip("re").search(pattern, one_line_error(text))


def test_not_a_string_is_a_type_error():
    with pytest.raises(TypeError, match="must be a str"):
        load_yaml(b"a: 1")  # type: ignore[arg-type]


def test_nan_and_inf_keep_their_yaml_meaning():
    data = load_yaml("a: .nan\nb: -.inf\n")
    assert math.isnan(data["a"]) and data["b"] == -math.inf


plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet="abcxyz_ -", max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(alphabet="abcdef_", min_size=1, max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=timedelta(seconds=5), derandomize=True)
@given(data=plain, flow=st.booleans())
def test_dumped_plain_data_loads_as_safe_load_reads_it(data, flow):
    text = yaml.safe_dump({"root": data}, default_flow_style=flow)
    assert load_yaml(text) == yaml.safe_load(text)
