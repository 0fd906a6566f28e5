"""Property-based fuzzing of YAML specs and ``replearn`` argument lists (hypothesis).

Three generators:

- spec mappings whose every field is drawn from valid and hostile values (huge and negative
  sizes, ``d^x`` overflowing, a million seeds, Unicode look-alikes, wrong types): ``replearn
  run --dry-run`` either counts exactly the runs an independent count of the grid gives, or
  exits 2 with one line and writes nothing;
- YAML token soup (brackets, anchors, aliases, tags, duplicate keys, deep nesting):
  ``parse_spec`` returns a spec or raises one short :class:`SpecError` line, nothing else;
- argument lists for every command over existing, missing, damaged, misplaced and special
  paths and absurd numbers: exit 0, or exit 2 with one line on stderr and nothing written.

Work is bounded by the limits (lowered here so that a refused case is cheap and an accepted
one small) and by hypothesis' per-example deadline — not by timing assertions. Examples are
derandomised so CI sees the same cases every run (~1 min in all).
"""

from __future__ import annotations

import math
import os
import re
import stat
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from replearn import limits
from replearn.cli import main
from replearn.experiments.spec import SpecError, parse_spec
from test_store_faults import fill

FUZZ = settings(
    max_examples=150,
    deadline=timedelta(seconds=10),
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# Small limits: a refused spec is refused early, an accepted one expands to few runs.
SMALL = dict(grid_cells=500, seeds=50, d=10_000, width=4_096, n=10**7)


def snapshot(root: Path) -> dict:
    return {
        str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_info:
        code = exit_info.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, err: str) -> None:
    """One line, or for a spec with several problems a heading line and one line each."""
    assert code == 2, (code, err)
    assert err.endswith("\n") and "Traceback" not in err, err[:500]
    lines = err.splitlines()
    if len(lines) > 1:
        heading = re.search(r"invalid spec, (\d+) problems:$", lines[0])
        assert heading and int(heading.group(1)) == len(lines) - 1, err[:500]
    assert all(0 < len(line) < 2_000 for line in lines), err[:500]


# -- spec mappings: an exact count or one line ----------------------------------------------------
LOOKALIKES = ["ｏne_step", "ｐaper", "ｚ1", "z1²", "ｓeeds", "d^２", "١٠"]
hostile = st.one_of(
    st.integers(-3, 0),
    st.sampled_from([2**63, 10**12, 10**400, 1e-9, 1e4, 1e5, float("inf"), float("nan"), True,
                     None, [], {}, "1e3", "d^1.5", "d^400", "d^-1", "x", "1e400", "9" * 40]),
    st.sampled_from(LOOKALIKES),
    st.lists(st.integers(-2, 2**64), min_size=1, max_size=3),
)  # fmt: skip
n_values = st.one_of(st.integers(1, 300), st.sampled_from(["d^1", "d^1.5", "d^2", "1e2", 100]))
VALID = {
    "name": st.sampled_from(["fuzz", "a.b-c_1"]),
    "target": st.one_of(
        st.just({"kind": "paper"}),
        st.builds(lambda s: {"kind": "paper", "seed": s}, st.integers(0, 2**63 - 1)),
        st.just({"kind": "random", "r": 1, "degree": 3}),
        st.sampled_from([{"kind": "expression", "expr": e} for e in
                         ("He2(z1)", "z1**2 - 1", "He3(z1)/sqrt(6)", "z1^2+1e-9")]),
    ),
    "methods": st.lists(
        st.one_of(
            st.builds(lambda e: {"name": "synthetic", "exponent": e},
                      st.one_of(st.floats(0, 3), st.lists(st.floats(0, 3), min_size=1, max_size=3))),
            st.builds(lambda w: {"name": "random_features", "width": w},
                      st.lists(st.integers(1, 64).map(lambda v: 2 * v), min_size=1, max_size=3)),
        ),
        min_size=1, max_size=2, unique_by=lambda method: method["name"],  # no shared runs
    ),
    "d": st.one_of(st.integers(1, 12), st.lists(st.integers(1, 12), min_size=1, max_size=3)),
    "n": st.one_of(n_values, st.lists(n_values, min_size=1, max_size=4)),
    "seeds": st.one_of(st.integers(1, 5), st.lists(st.integers(0, 9), min_size=1, max_size=6)),
    "n_test": st.sampled_from([10, 1e2]),
    "noise": st.one_of(st.floats(0, 2), st.lists(st.floats(0, 2), min_size=1, max_size=3)),
}  # fmt: skip
HOSTILE = {
    "name": st.sampled_from(["ｆuzz", "a b", "", "x" * 200, 7]),
    "target": st.one_of(
        st.builds(lambda r, p: {"kind": "random", "r": r, "degree": p}, hostile, hostile),
        st.sampled_from([{"kind": "expression", "expr": e} for e in
                         ("ｚ1", "z1²", "z1**400", "(1+z1+z2)**40", "z" * 6000, "z101")]),
        st.sampled_from([{"kind": "ｐaper"}, {"kind": "paper", "seed": -1}, "paper"]),
    ),
    "methods": st.one_of(
        st.builds(lambda w: [{"name": "one_step", "width": w}], hostile),
        st.sampled_from([[{"name": "ｏne_step"}], [{"name": "nope"}], [{"name": "synthetic",
                         "bad": 1}], [{"name": "one_step", "width": 10**7}], []]),
    ),
}  # fmt: skip


@st.composite
def specs(draw) -> dict:
    """A valid spec with none, one or two fields replaced by hostile values."""
    spec = {field: draw(strategy) for field, strategy in VALID.items()}
    spec["n_holdout"] = 0
    for field in draw(st.lists(st.sampled_from(sorted(VALID)), max_size=2, unique=True)):
        spec[field] = draw(HOSTILE.get(field, hostile))
    return spec


def expected_runs(spec: dict) -> int:
    """The number of runs, counted independently of replearn's grid expansion."""

    def distinct(values):
        out = []
        for value in values:
            if value not in out:
                out.append(value)
        return out

    def absolute(n, d):
        if isinstance(n, str) and n.startswith("d^"):
            return max(1, round(d ** float(n[2:])))
        return int(float(n))

    def as_list(value):  # a single value is a list of one
        return value if isinstance(value, list) else [value]

    seeds = spec["seeds"]
    n_seeds = int(seeds) if not isinstance(seeds, list) else len(distinct(seeds))
    n_noise = len(distinct(as_list(spec.get("noise", 1.0))))
    configs = 0
    for method in spec["methods"]:
        product = 1
        for key, value in method.items():
            if key != "name":
                product *= len(distinct(as_list(value)))
        configs += product
    return sum(
        len(distinct([absolute(n, d) for n in as_list(spec["n"])])) * configs * n_noise * n_seeds
        for d in distinct([int(d) for d in as_list(spec["d"])])
    )


@FUZZ
@given(spec=specs())
def test_fuzzed_specs_count_exactly_or_fail_in_one_line(spec, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "spec.yaml"
        path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
        before = snapshot(root)
        with limits.raised(**SMALL):
            code, out, err = run_cli(
                capsys, ["run", str(path), "--dry-run", "--db", str(root / "db.sqlite")]
            )
        assert snapshot(root) == before  # --dry-run writes nothing, an error neither
    event(f"exit {code}")
    if code == 0:
        assert err == ""
        assert f"{expected_runs(spec)} runs" in out, (out, spec)
    else:
        assert_one_line_error(code, err)


# -- YAML token soup -------------------------------------------------------------------------------
TOKENS = [
    "name: fuzz\n", "target: {kind: paper}\n", "methods: [{name: synthetic}]\n", "d: [4]\n",
    "n: [10]\n", "seeds: 2\n", "name: again\n", "&a ", "*a", "*b", "&b [*a, *a, *a, *a]",
    "[", "]", "{", "}", ", ", ": ", "- ", "\n", "  ", "!!python/object:os.system ", "!x ",
    "'", '"', "1e-9", "1e400", "-.inf", ".nan", "0x10", "0o7", "~", "? ", "|\n  ", "ｚ1",
    "<<: ", "%YAML 1.2\n", "---\n", "...\n", "\t", "\x00", "\ufeff", "d^400", "9" * 30,
]  # fmt: skip


@FUZZ
@given(parts=st.lists(st.sampled_from(TOKENS), max_size=40), nesting=st.integers(0, 3000))
def test_yaml_soup_gives_a_spec_or_one_short_line(parts, nesting):
    text = "".join(parts)
    if nesting > 2000:  # deep nesting anywhere in the document
        text = "d: " + "[" * nesting + "]" * nesting + "\n" + text
    with limits.raised(**SMALL):
        try:
            spec = parse_spec(text, "soup.yaml")
        except SpecError as err:
            event("refused")
            lines = str(err).splitlines()  # one line per problem
            assert lines == err.problems and all(0 < len(x) < 1_000 for x in lines), lines[:3]
        else:
            event("a valid spec")
            assert spec.name and spec.d and spec.seeds


# -- argument lists for every command ---------------------------------------------------------------
@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, str]:
    """Paths the argument lists use: a store, damaged and special files, a spec."""
    root = tmp_path_factory.mktemp("fuzz-cli")
    store = root / "store" / "results.sqlite"
    fill(store)
    garbage = root / "garbage.sqlite"
    garbage.write_bytes(b"\x01garbage" * 512)
    empty = root / "empty.sqlite"
    empty.write_bytes(b"")
    truncated = root / "truncated.sqlite"
    truncated.write_bytes(store.read_bytes()[:3000])
    spec = root / "spec.yaml"
    spec.write_text("name: fz\ntarget: {kind: paper}\nmethods: [{name: synthetic}]\n"
                    "d: [4]\nn: [8]\nseeds: 1\nn_holdout: 0\nn_test: 10\n")  # fmt: skip
    return {
        "STORE": str(store), "GARBAGE": str(garbage), "EMPTY": str(empty),
        "TRUNCATED": str(truncated), "DIR": str(root / "store"), "MISSING": str(root / "no.db"),
        "UNDERFILE": str(spec / "x.sqlite"), "DEVNULL": "/dev/null", "SPEC": str(spec),
        "OUT": str(root / "out" / "o"), "ROOT": str(root),
    }  # fmt: skip


PATHS = ["STORE", "GARBAGE", "EMPTY", "TRUNCATED", "DIR", "MISSING", "UNDERFILE", "DEVNULL",
         "SPEC", "OUT"]  # fmt: skip
NUMBERS = ["0", "-1", "1", "4", "1e23", "1" + "0" * 30, "nan", "inf", "-inf", "0.5", "1e-300",
           "２", "", "x", "9223372036854775808", "30", "1000"]  # fmt: skip
TEXTS = ["paper", "random", "e", "f", "nope", "ｅ", "{kind: random, r: 2, degree: 4}",
         "{kind: paper, kind: random}", "He2(z1)", "ｚ1", "(1+z1+z2+z3)**40", "z1**31",
         "{a: " + "[" * 200 + "]" * 200 + "}", "seeds=5", "d=0", "n=1e400", "x=1"]  # fmt: skip
OPTIONS = {
    "--db": st.sampled_from(PATHS), "--out": st.sampled_from(PATHS),
    "--experiment": st.sampled_from(TEXTS), "--format": st.sampled_from(["csv", "json", "xml"]),
    "--status": st.sampled_from(["done", "failed", "bogus"]), "--target": st.sampled_from(TEXTS),
    "--d": st.sampled_from(NUMBERS), "--r": st.sampled_from(NUMBERS),
    "--degree": st.sampled_from(NUMBERS), "--kappa": st.sampled_from(NUMBERS),
    "--seed": st.sampled_from(NUMBERS), "--epsilon": st.sampled_from(NUMBERS),
    "--raise-limit": st.sampled_from(TEXTS),
}  # fmt: skip


@st.composite
def argument_lists(draw) -> list[str]:
    command = draw(st.sampled_from(["status", "results", "report", "theory", "run"]))
    argv = [command]
    if command == "run":
        argv += [draw(st.sampled_from(PATHS)), "--dry-run"]
    for option in draw(st.lists(st.sampled_from(sorted(OPTIONS)), max_size=4)):
        argv += [option, draw(OPTIONS[option])]
    return argv


@FUZZ
@given(argv=argument_lists())
def test_fuzzed_arguments_succeed_or_fail_in_one_line(argv, places, capsys):
    argv = [places.get(a, a) for a in argv]
    root = Path(places["ROOT"])
    protected = {k: v for k, v in snapshot(root).items() if not k.startswith("out")}
    if "--out" not in argv and argv[0] in ("report", "results"):
        argv += ["--out", places["OUT"]]  # never the working directory
    with limits.raised(**SMALL):
        code, out, err = run_cli(capsys, argv)
    after = {k: v for k, v in snapshot(root).items() if not k.startswith("out")}
    assert after == protected, argv  # only --out may be written, and only on success
    event(f"{argv[0]}: exit {code}")
    if code != 0:
        assert_one_line_error(code, err)
    for created in (Path(places["OUT"]).parent).rglob("*") if code == 0 else ():
        if created.is_file():  # reports and exports get the user's normal mode
            assert stat.S_IMODE(created.stat().st_mode) == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_expected_runs_oracle_is_not_the_implementation():
    """The oracle counts a simple grid by hand (2 d × 2 n × 3 seeds × (1 + 2) configs)."""
    spec = {"d": [4, 9], "n": [16, "d^1"], "seeds": 3, "noise": [1.0, 1.0],
            "methods": [{"name": "synthetic"}, {"name": "synthetic", "exponent": [1.0, 2.0]}]}  # fmt: skip
    assert expected_runs(spec) == 2 * 2 * 3 * 3
    assert math.isclose(expected_runs({**spec, "n": ["d^1", 4]}), (1 + 2) * 3 * 3)
