"""Every ``replearn`` command on hostile or careless input: exit 2, exactly one line on stderr,
nothing written — or the right result.

Cases from issue 15: damaged, empty and misplaced databases; read-only stores (which must
read exactly as writable ones); overflowing sizes; YAML nested 10 000 deep, duplicate keys,
``1e-9``; unusable ``report --out``; unknown experiments; absurd ``theory`` arguments;
non-ASCII look-alikes in identifiers and expressions.

Tests run as root, for whom chmod does not stop a write; read-only cases use ``chattr +i``
(``immutable`` of test_store_faults), which stops even root, and check that nothing changed.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from replearn.cli import main
from test_store_faults import fill, fingerprint, immutable, listing

GOOD = """
name: tiny
target: {kind: paper}
methods: [{name: synthetic}]
d: [4]
n: [16, 64]
seeds: 2
n_holdout: 0
n_test: 10
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def tree(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` with its kind, size, mtime and mode: 'nothing written'."""
    out = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        out[str(path.relative_to(root))] = (stat.S_IFMT(info.st_mode), info.st_size,
                                             info.st_mtime_ns, stat.S_IMODE(info.st_mode))  # fmt: skip
    return out


def fails_in_one_line(capsys, argv: list[str], *fragments: str) -> str:
    """``main(argv)`` exits 2 with exactly one line on stderr holding every fragment."""
    try:
        code = main(argv)
    except SystemExit as exit_info:  # argparse usage errors
        code = exit_info.code
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, (code, err)
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err and "Traceback" not in captured.out
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


@pytest.fixture
def store(tmp_path) -> Path:
    """A results database with two experiments (done, failed, running, pending runs)."""
    path = tmp_path / "store" / "results.sqlite"
    fill(path)
    return path


# -- damaged, empty and misplaced databases -----------------------------------------------------
def _truncated(path: Path) -> None:
    fill(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(8192))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _another_sqlite(path: Path) -> None:
    import sqlite3

    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE t (x)")
    connection.commit()
    connection.close()


DAMAGED = [
    ("truncated", _truncated, "truncated"),
    ("garbage", _garbage, "not an SQLite database"),
    ("empty", _empty, "is an empty file, not a results database"),
    ("another sqlite file", _another_sqlite, "not a replearn results database"),
]
READERS = [
    ["status"],
    ["results", "--format", "json"],
    ["report", "--out", "REPORT"],
]


@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
@pytest.mark.parametrize("case, make, message", DAMAGED, ids=[c[0] for c in DAMAGED])
def test_damaged_or_empty_database(case, make, message, command, tmp_path, capsys):
    db = tmp_path / "db" / "results.sqlite"
    db.parent.mkdir()
    make(db)
    before = tree(tmp_path)
    argv = [a.replace("REPORT", str(tmp_path / "report")) for a in command]
    fails_in_one_line(capsys, [*argv, "--db", str(db)], str(db), message)
    assert tree(tmp_path) == before  # an empty --db did not become a new database


@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
def test_db_is_a_directory_under_a_file_or_missing(command, tmp_path, capsys):
    argv = [a.replace("REPORT", str(tmp_path / "report")) for a in command]
    a_file = write(tmp_path / "plain.txt", "x")
    before = tree(tmp_path)
    fails_in_one_line(capsys, [*argv, "--db", str(tmp_path)], "is a directory")
    fails_in_one_line(capsys, [*argv, "--db", str(a_file / "r.sqlite")], "is a file, not a dir")
    fails_in_one_line(capsys, [*argv, "--db", str(tmp_path / "no.sqlite")], "no such results")
    assert tree(tmp_path) == before


def test_run_with_db_a_directory_or_under_a_file(tmp_path, capsys):
    spec = write(tmp_path / "good.yaml", GOOD)
    a_file = write(tmp_path / "plain.txt", "x")
    before = tree(tmp_path)
    fails_in_one_line(capsys, ["run", str(spec), "--db", str(tmp_path)], "is a directory")
    fails_in_one_line(
        capsys, ["run", str(spec), "--db", str(a_file / "r.sqlite")], "is a file, not a dir"
    )
    assert tree(tmp_path) == before


# -- read-only stores: same output as a writable copy, nothing left behind ----------------------
def _outputs(capsys, db: Path, report: Path) -> tuple:
    outputs = []
    for argv in (["status"], ["status", "--experiment", "e"], ["results", "--format", "csv"],
                 ["results", "--format", "json", "--status", "done"]):  # fmt: skip
        assert main([*argv, "--db", str(db)]) == 0
        captured = capsys.readouterr()
        outputs.append(captured.out)
        assert captured.err == ""
    assert main(["report", "--db", str(db), "--out", str(report)]) == 0
    capsys.readouterr()
    files = {p.name: p.read_bytes() for p in report.iterdir() if p.suffix != ".pdf"}
    # the page names its own folder (the command that remakes it) and the minute it was made
    page = files["index.html"].replace(str(report).encode(), b"OUT")
    files["index.html"] = re.sub(rb"<dt>date</dt><dd>[^<]*</dd>", b"", page)
    outputs.append(files)
    return tuple(outputs)


def test_readonly_store_reads_like_the_writable_copy(store, tmp_path, capsys):
    expected = _outputs(capsys, store, tmp_path / "report-writable")
    unchanged = fingerprint(store)
    with immutable(store, store.parent):
        with pytest.raises(OSError):  # the directory really is unwritable, even for root
            (store.parent / "probe").touch()
        got = _outputs(capsys, store, tmp_path / "report-readonly")
    assert got == expected
    assert listing(store.parent) == ["results.sqlite"]  # no -wal, -shm or journal left
    assert fingerprint(store) == unchanged


def test_run_on_a_readonly_store_says_it_needs_write_access(store, tmp_path, capsys):
    spec = write(tmp_path / "good.yaml", GOOD)
    unchanged = fingerprint(store)
    with immutable(store, store.parent):
        fails_in_one_line(
            capsys, ["run", str(spec), "--db", str(store), "--executor", "serial"],
            "`replearn run` needs write access",
        )  # fmt: skip
    assert listing(store.parent) == ["results.sqlite"] and fingerprint(store) == unchanged


def test_report_files_have_the_users_normal_mode(store, tmp_path, capsys):
    previous = os.umask(0o027)
    try:
        assert main(["report", "--db", str(store), "--out", str(tmp_path / "r")]) == 0
        assert main(["results", "--db", str(store), "--out", str(tmp_path / "r.csv")]) == 0
    finally:
        os.umask(previous)
    capsys.readouterr()
    files = [p for p in (tmp_path / "r").iterdir()] + [tmp_path / "r.csv"]
    assert files and {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o640}


# -- report --out and --experiment ---------------------------------------------------------------
def test_report_out_that_cannot_be_a_directory(store, tmp_path, capsys):
    existing = write(tmp_path / "existing.html", "keep me")
    readonly_parent = tmp_path / "locked"
    readonly_parent.mkdir()
    before = tree(tmp_path)
    base = ["report", "--db", str(store), "--out"]
    fails_in_one_line(capsys, [*base, str(existing)], "exists and is not a directory")
    fails_in_one_line(capsys, [*base, "/dev/null"], "/dev/null", "not a directory")
    fails_in_one_line(capsys, [*base, str(existing / "sub")], "is a file, not a directory")
    with immutable(readonly_parent):
        fails_in_one_line(capsys, [*base, str(readonly_parent / "report")], "not writable")
        fails_in_one_line(capsys, [*base, str(readonly_parent)], "cannot write into")
    assert tree(tmp_path) == before and existing.read_text() == "keep me"


def test_report_and_status_with_an_unknown_experiment(store, tmp_path, capsys):
    before = tree(tmp_path)
    out = tmp_path / "report"
    fails_in_one_line(
        capsys, ["report", "--db", str(store), "--out", str(out), "--experiment", "nope"],
        "no experiment 'nope'", "known: e, f",
    )  # fmt: skip
    fails_in_one_line(capsys, ["status", "--db", str(store), "--experiment", "nope"], "'nope'")
    fails_in_one_line(capsys, ["results", "--db", str(store), "--experiment", "nope"], "'nope'")
    assert tree(tmp_path) == before  # not even an empty report directory


def test_results_out_unusable(store, tmp_path, capsys):
    before = tree(tmp_path)
    base = ["results", "--db", str(store), "--out"]
    fails_in_one_line(capsys, [*base, str(tmp_path)], "is a directory")
    fails_in_one_line(capsys, [*base, "/dev/null"], "not a regular file")
    fails_in_one_line(capsys, [*base, str(store / "x.csv")], "is a file, not a directory")
    assert tree(tmp_path) == before


# -- specs: sizes, YAML, identifiers --------------------------------------------------------------
SPECS = [
    ("n = d^400", GOOD.replace("n: [16, 64]", "n: ['d^400']"), "about 10^240.8 exceeds the limit n"),
    ("seed 2^63", GOOD.replace("seeds: 2", "seeds: [9223372036854775808]"), "integers in [0, 2^63)"),
    ("a million seeds", GOOD.replace("seeds: 2", "seeds: 1000000"), "1,000,000 exceeds the limit seeds"),
    ("d 10^9", GOOD.replace("d: [4]", "d: [1000000000]"), "exceeds the limit d = 1,000,000"),
    ("width 10^9", GOOD.replace("{name: synthetic}", "{name: one_step, width: 1000000000}"),
     "exceeds the limit width"),
    ("n 10^12", GOOD.replace("n: [16, 64]", "n: [1e12]"), "exceeds the limit n"),
    ("grid", GOOD.replace("seeds: 2", "seeds: 10000").replace("n: [16, 64]", "n: [16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768]"),
     "110,000 exceeds the limit grid_cells"),
    ("nested 10 000 deep", "name: " + "[" * 10_000 + "]" * 10_000, "spec.yaml"),
    ("nested blocks", "name:\n" + "".join(" " * i + "- \n" for i in range(1, 400)), "nested more than 64"),
    ("alias bomb", 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
        f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi")), "aliases expand to more than"),
    ("duplicate key", GOOD.replace("name: tiny", "name: tiny\nname: other"), "duplicate key 'name'"),
    ("python tag", GOOD.replace("seeds: 2", "seeds: !!python/object/apply:os.getpid []"), "not allowed"),
    ("full-width name", GOOD.replace("name: tiny", "name: ｔiny"), "must be ASCII letters"),
    ("full-width method", GOOD.replace("{name: synthetic}", "{name: ｓynthetic}"), "unknown method"),
    ("full-width hyper-parameter", GOOD.replace("{name: synthetic}", "{name: synthetic, ｅxponent: 2}"),
     "unknown hyper-parameter"),
    ("full-width field", GOOD.replace("seeds: 2", "ｓeeds: 2"), "unknown field"),
    ("full-width kind", GOOD.replace("{kind: paper}", "{kind: ｐaper}"), "target.kind"),
    ("full-width n", GOOD.replace("n: [16, 64]", "n: ['d^２']"), "n[0]: must be"),
    ("full-width expression", GOOD.replace("{kind: paper}", "{kind: expression, expr: 'ｚ2*z1'}"),
     "non-ASCII character 'ｚ' (U+FF5A) at position 0"),
    ("superscript expression", GOOD.replace("{kind: paper}", "{kind: expression, expr: 'z1²'}"),
     "non-ASCII character '²'"),
    ("not a file", None, "no such file"),
]  # fmt: skip


@pytest.mark.parametrize("case, text, message", SPECS, ids=[c[0] for c in SPECS])
@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_bad_spec(case, text, message, dry_run, tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    if text is not None:
        write(spec, text)
    db = tmp_path / "out" / "results.sqlite"
    before = tree(tmp_path)
    argv = ["run", str(spec), "--db", str(db), "--executor", "serial"]
    fails_in_one_line(capsys, [*argv, "--dry-run"] if dry_run else argv, message)
    assert tree(tmp_path) == before


def test_a_limit_is_raised_on_purpose_by_flag_or_environment(tmp_path, capsys, monkeypatch):
    spec = write(tmp_path / "spec.yaml", GOOD.replace("seeds: 2", "seeds: 20000"))
    fails_in_one_line(
        capsys,
        ["run", str(spec), "--dry-run"],
        "REPLEARN_MAX_SEEDS",
        "(here: --raise-limit seeds=…)",
    )
    assert main(["run", str(spec), "--dry-run", "--raise-limit", "seeds=1e5"]) == 0
    assert "40000 runs" in capsys.readouterr().out
    assert main(["--raise-limit", "seeds=20_000", "run", str(spec), "--dry-run"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("REPLEARN_MAX_SEEDS", "20000")
    assert main(["run", str(spec), "--dry-run"]) == 0
    capsys.readouterr()
    fails_in_one_line(capsys, ["run", str(spec), "--raise-limit", "seeds=0"], "integer ≥ 1")
    fails_in_one_line(capsys, ["run", str(spec), "--raise-limit", "nope=3"], "NAME=VALUE")
    monkeypatch.setenv("REPLEARN_MAX_SEEDS", "many")
    fails_in_one_line(capsys, ["run", str(spec), "--dry-run"], "REPLEARN_MAX_SEEDS must be")


def test_exponent_numbers_are_numbers(tmp_path, capsys):
    """YAML 1.1 reads 1e-9 as a string; specs read it as the number it is."""
    spec = write(tmp_path / "spec.yaml", GOOD.replace("n_test: 10", "n_test: 1e1\nnoise: 1e-9"))
    db = tmp_path / "r.sqlite"
    assert main(["run", str(spec), "--db", str(db), "--executor", "serial", "--quiet"]) == 0
    assert main(["results", "--db", str(db), "--format", "json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)
    assert {r["noise"] for r in rows} == {1e-9} and {r["n_test"] for r in rows} == {10}


def test_a_million_seeds_is_refused_before_the_list_is_built(tmp_path, capsys):
    """Bounded work: the count is checked, not range(10**12) materialised (a wrong
    implementation that builds the list first would exhaust memory, not give one line)."""
    spec = write(tmp_path / "spec.yaml", GOOD.replace("seeds: 2", "seeds: 1000000000000"))
    fails_in_one_line(capsys, ["run", str(spec), "--dry-run"], "exceeds the limit seeds")


# -- theory ---------------------------------------------------------------------------------------
THEORY = [
    (["--d", "1e23"], "must be a positive integer, got '1e23'"),
    (["--d", "1" + "0" * 23], "exceeds the limit d = 1,000,000"),
    (["--target", "random", "--r", "2", "--degree", "1000"], "exceeds the limit expression_degree"),
    (["--epsilon", "nan"], "--epsilon: must be a risk threshold in (0, 1), got nan"),
    (["--epsilon", "inf"], "--epsilon"),
    (["--epsilon", "1"], "--epsilon"),
    (["--kappa", "nan", "--target", "random", "--r", "2", "--degree", "4"], "--kappa"),
    (["--seed", "-1"], "--seed"),
    (["--seed", str(2**64)], "--seed"),
    (["--target", "{kind: random, kind: paper}"], "duplicate key 'kind'"),
    (["--target", "{kind: paper, seed: " + "[" * 5000 + "]" * 5000 + "}"], "--target"),
    (["--target", "ｚ1"], "non-ASCII character"),
    (["--target", "(1+z1+z2+z3+z4+z5)**15*(1+z1+z2+z3+z4+z5)**15"], "expression_terms"),
    (["--bogus"], "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize("argv, message", THEORY, ids=[" ".join(a)[:40] for a, _ in THEORY])
def test_theory_refuses_absurd_arguments(argv, message, capsys):
    fails_in_one_line(capsys, ["theory", *argv], message)


def test_theory_epsilon_in_range_still_works(capsys):
    assert main(["theory", "--epsilon", "0.25"]) == 0
    assert "risk <= 0.25" in capsys.readouterr().out


# -- --debug shows the traceback, the real process prints one line -------------------------------
def test_debug_shows_the_traceback(tmp_path, capsys):
    assert main(["status", "--db", str(tmp_path), "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("replearn status: ")


def test_the_real_command_prints_one_line(tmp_path):
    """A fresh interpreter (no pytest capture): a spec nested 10 000 deep and a garbage db."""
    spec = write(tmp_path / "deep.yaml", "name: " + "[" * 10_000 + "]" * 10_000)
    garbage = tmp_path / "g.sqlite"
    garbage.write_bytes(b"\x00garbage" * 1000)
    for argv in (["run", str(spec), "--dry-run"], ["status", "--db", str(garbage)]):
        process = subprocess.run(
            [sys.executable, "-m", "replearn.cli", *argv], capture_output=True, text=True,
            cwd=tmp_path, timeout=120,
        )  # fmt: skip
        assert process.returncode == 2, process.stderr
        assert process.stderr.count("\n") == 1 and process.stdout == ""
