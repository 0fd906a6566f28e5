"""``replearn`` command line: run experiment specs, inspect and export results, reports.

    replearn run SPEC|NAME [--db DB] [--executor serial|process|ray] [--workers K] [--quick]
    replearn configs [NAME]
    replearn status [--db DB] [--experiment NAME]
    replearn results [--db DB] [--experiment NAME] --format csv|json|parquet [--out FILE]
    replearn report [--db DB] [--experiment NAME] [--out DIR]
    replearn demo [--quick]
    replearn theory --target paper --d 10

Every command takes ``--debug`` (show the traceback of an error) and ``--raise-limit
NAME=VALUE`` (repeatable; raise a limit of :mod:`replearn.limits` for this command, like
``REPLEARN_MAX_<NAME>=VALUE``; see docs/limits.md).

Exit codes: 0 success; 1 runs failed, or a report section could not be drawn (the page says
which; the other experiments are drawn), or an internal error (please report it); 2 a user
error or an environment fault — a bad spec or argument, a limit, a results database that
is missing, damaged or not writable, an output that cannot be written, a Ray cluster that
cannot be reached — always one line on stderr, a traceback only with ``--debug``;
130 interrupted (finished runs are kept, re-running resumes).

The status, results and report commands open the results database read-only: they work
on a store nobody may write to and leave nothing behind. No output option may name an
input (the store, its -wal/-shm, the spec), by any path: refused before any work.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import re
import signal
import sqlite3
import sys
import traceback
from pathlib import Path

__all__ = ["main", "build_parser"]

DEFAULT_DB = Path("results") / "replearn.sqlite"
DEMO_CONFIG = "demo"  # the shipped config `replearn demo` runs (replearn/configs/demo.yaml)
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class CommandError(Exception):
    """A one-line error for stderr; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.code = code


# -- parser ---------------------------------------------------------------------------------
class _OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr (exit 2), not usage + error."""

    def error(self, message: str):
        message = " ".join(message.split())
        if len(message) > 300:
            message = message[:300] + "…"
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _limit_setting(text: str) -> tuple[str, int]:
    """``NAME=VALUE`` of ``--raise-limit``: a known limit and an integer ≥ 1 (1e6, 10_000 ok)."""
    from replearn import limits

    name, sep, value = text.partition("=")
    name = name.strip().lower()
    if not sep or name not in limits.LIMITS:
        raise argparse.ArgumentTypeError(
            f"must be NAME=VALUE with NAME a limit of docs/limits.md (seeds, d, width, n, "
            f"grid_cells, …), got {limits.excerpt(text, 40)}"
        )
    number = _integer(value.strip())
    if number is None or number < 1:
        raise argparse.ArgumentTypeError(
            f"{name}: must be an integer ≥ 1, got {limits.excerpt(value.strip(), 40)}"
        )
    return name, number


def _integer(text: str) -> int | None:
    """'100000', '100_000' or '1e5' as an int; None if it is not a whole number."""
    try:
        return int(text.replace("_", ""))
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if math.isfinite(value) and value.is_integer() else None


def _common_options(parser: argparse.ArgumentParser, top: bool) -> None:
    """--debug and --raise-limit, accepted before or after the command name."""
    default = None if top else argparse.SUPPRESS  # a subcommand's default must not hide the top's
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="on an error, show the traceback as well as the one-line message",
    )
    parser.add_argument(
        "--raise-limit",
        type=_limit_setting,
        action="append",
        default=default,
        metavar="NAME=VALUE",
        help="raise a limit (see docs/limits.md) for this command, e.g. seeds=100000; "
        "repeatable; the environment variable REPLEARN_MAX_<NAME> does the same",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="replearn",
        description="Neural networks can learn representations with gradient descent "
        "(Damian, Lee & Soltanolkotabi, COLT 2022): experiments, results and theory.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def db_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--db", type=Path, default=DEFAULT_DB, help=f"results database (default {DEFAULT_DB})"
        )

    def quick_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--quick",
            action="store_true",
            help="a smoke test of the spec: one seed, the first d, the first three n, at most "
            "2000 holdout and test samples; stored as experiment NAME-quick",
        )

    def executor_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--executor",
            choices=("serial", "process", "ray"),
            default=None,
            help="where runs execute: process (a local process pool, one worker per CPU: the "
            "default), serial (this process; for debugging), ray (Ray tasks). All give identical "
            "numbers",
        )
        sub.add_argument(
            "--workers",
            type=_positive_int,
            default=None,
            help="parallel runs for process/ray (default: the CPUs available)",
        )
        sub.add_argument(
            "--address", default=None, help="Ray cluster address (default: start local Ray)"
        )
        sub.add_argument(
            "--threads",
            type=_positive_int,
            default=None,
            help="torch threads per run, on every executor (default 1; results are "
            "bit-identical across executors for the same value)",
        )
        sub.add_argument("--quiet", action="store_true", help="no progress bar or summary")

    run = commands.add_parser(
        "run",
        help="run (or resume) an experiment spec",
        description="Run every unfinished run of a YAML spec; finished runs are skipped, so "
        "re-running resumes. Failed runs are recorded and the grid goes on.",
    )
    run.add_argument(
        "spec",
        help="experiment spec: a YAML file, or the name of a shipped config such as "
        "paper-fig1 (`replearn configs` lists them)",
    )
    db_option(run)
    executor_options(run)
    quick_option(run)
    run.add_argument("--retry-failed", action="store_true", help="run the spec's failed runs again")
    run.add_argument(
        "--dry-run", action="store_true", help="validate the spec and count its runs; run nothing"
    )
    run.set_defaults(handler=cmd_run)

    configs = commands.add_parser(
        "configs",
        help="list the experiment specs shipped with replearn, or print one",
        description="Without NAME: every shipped spec's name and description (run one with "
        "`replearn run NAME`). With NAME: its YAML, to copy and edit "
        "(`replearn configs paper-fig1 > my.yaml`).",
    )
    configs.add_argument("name", nargs="?", default=None, help="print this config's YAML")
    configs.add_argument(
        "--path", action="store_true", help="print the file's path instead of its YAML"
    )
    configs.set_defaults(handler=cmd_configs)

    status = commands.add_parser(
        "status",
        help="done / failed / running / pending runs per experiment",
        description="Count each experiment's runs by status ('stale': claimed by a process "
        "that is gone; the next run takes them again).",
    )
    db_option(status)
    status.add_argument("--experiment", default=None, help="only this experiment")
    status.set_defaults(handler=cmd_status)

    results = commands.add_parser(
        "results",
        help="export runs as CSV, JSON or Parquet",
        description="One row per run: config columns, param_* hyper-parameters, metrics "
        "(risk, stderr, alignment, chosen λ, …), wall time and memory.",
    )
    db_option(results)
    results.add_argument("--experiment", default=None, help="only this experiment")
    results.add_argument(
        "--format",
        choices=("csv", "json", "parquet"),
        default="csv",
        help="output format (json: strict JSON, NaN and ±inf written as null)",
    )
    results.add_argument(
        "--status",
        choices=("pending", "running", "done", "failed"),
        default=None,
        help="only runs with this status",
    )
    results.add_argument(
        "--out", type=Path, default=None, help="output file (default stdout; parquet needs it)"
    )
    results.set_defaults(handler=cmd_results)

    report = commands.add_parser(
        "report",
        help="write figures and tables for experiments",
        description="Aggregate runs (mean ± std over seeds) into tables and figures under "
        "--out, and print the path of the report.",
    )
    db_option(report)
    report.add_argument(
        "--experiment", action="append", default=None, help="only this experiment (repeatable)"
    )
    report.add_argument("--out", type=Path, default=Path("report"), help="output directory")
    report.set_defaults(handler=cmd_report)

    demo = commands.add_parser(
        "demo",
        help="the headline experiment, small: run the shipped config demo and write its report",
        description="A reduced Fig. 1 (d = 10, width 100, 3 seeds, n = d^1 … d^4): Algorithm 1 "
        "against random features and the NTK. Works from any directory; resumes if "
        "interrupted.",
    )
    demo.add_argument(
        "--spec",
        default=None,
        help="spec to run instead: a YAML file or a shipped config's name (default demo)",
    )
    quick_option(demo)
    db_option(demo)
    demo.add_argument(
        "--out", type=Path, default=Path("results") / "demo-report", help="report directory"
    )
    executor_options(demo)
    demo.set_defaults(handler=cmd_demo)

    theory = commands.add_parser(
        "theory",
        help="a target's Hessian, κ, degree energy and predicted thresholds",
        description="Describe a target exactly: H = E[∇²f*], κ = ‖H†‖√r, Hermite energy per "
        "degree, kernel plateaus and the n ≈ d²κ²r threshold of Theorem 1.",
    )
    theory.add_argument(
        "--target",
        default="paper",
        help="paper | paper_transfer | random | an expression in z1…zr such as "
        "'He3(z1)/sqrt(6)' | a YAML mapping such as '{kind: random, r: 2, degree: 4}'",
    )
    theory.add_argument("--d", type=_positive_int, default=10, help="input dimension (default 10)")
    theory.add_argument("--r", type=_positive_int, default=None, help="latent dimension")
    theory.add_argument("--degree", type=_positive_int, default=None, help="random: degree p")
    theory.add_argument("--kappa", type=float, default=None, help="random: condition number κ")
    theory.add_argument("--seed", type=int, default=0, help="seed of U (default 0)")
    theory.add_argument(
        "--epsilon", type=float, default=0.1, help="risk threshold for n*(d) (default 0.1)"
    )
    theory.add_argument(
        "--label-transform",
        default=None,
        help="also report the first step on T(y): identity | square | abs | sign | hermite:k — "
        "the exact E[∇² E[T(y)|x]], its rank and κ (Gauss–Hermite quadrature)",
    )
    theory.add_argument(
        "--noise", type=float, default=1.0, help="label noise std ς for --label-transform (1)"
    )
    theory.add_argument(
        "--noise-kind",
        choices=("rademacher", "gaussian"),
        default="rademacher",
        help="label noise distribution for --label-transform (default rademacher)",
    )
    theory.set_defaults(handler=cmd_theory)
    _common_options(parser, top=True)
    for sub in commands.choices.values():
        _common_options(sub, top=False)
    return parser


def _positive_int(text: str) -> int:
    from replearn.limits import excerpt

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a positive integer, got {excerpt(text, 40)}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {excerpt(text, 40)}")
    return value


def _version() -> str:
    from replearn import __version__

    return __version__


# -- commands -----------------------------------------------------------------------------------
def _load(given: str | Path, quick: bool = False):
    """The spec of a file or a shipped config's name (``paper-fig1``); with ``quick`` its
    smoke-test version (:func:`~replearn.experiments.catalog.quick_version`)."""
    from replearn.experiments.catalog import quick_version, resolve_spec
    from replearn.experiments.spec import SpecError, load_spec, validate_spec
    from replearn.experiments.yaml_strict import YAMLSpecError, load_yaml

    try:
        path, _ = resolve_spec(given)
    except ValueError as err:
        raise CommandError(str(err), EXIT_USAGE) from None
    try:
        if not quick:
            return load_spec(path)
        data = load_yaml(path.read_text(encoding="utf-8"), str(path))
        return validate_spec(quick_version(data))
    except SpecError as err:
        if len(err.problems) > 1:  # every problem, one line each, under a heading line
            lines = "\n".join(f"  {problem}" for problem in err.problems)
            raise CommandError(
                f"invalid spec, {len(err.problems)} problems:\n{lines}", EXIT_USAGE
            ) from None
        raise CommandError(f"invalid spec: {err}", EXIT_USAGE) from None
    except YAMLSpecError as err:
        raise CommandError(f"invalid spec: {err}", EXIT_USAGE) from None
    except ValueError as err:  # --quick on a scaling spec
        raise CommandError(str(err), EXIT_USAGE) from None


def _run_spec(spec, args, default_executor: str = "process"):
    try:
        summary = _execute(spec, args, default_executor)
    except RuntimeError as err:  # e.g. Ray not installed or its cluster not reachable
        raise CommandError(_one_line(err), EXIT_USAGE) from None
    if not args.quiet:
        print(summary)
    return summary


def _run_options(args, default_executor: str):
    """The flags of ``run``/``demo`` as one ``RunOptions`` (what travels to the executors)."""
    from replearn.experiments.api import RunOptions

    return RunOptions(
        db=args.db,
        executor=args.executor or default_executor,
        workers=args.workers,
        threads=args.threads,
        address=args.address,
        retry_failed=getattr(args, "retry_failed", True),
        quiet=args.quiet,
    )


def _execute(spec, args, default_executor: str):
    from replearn.experiments.api import run_experiment

    return run_experiment(spec, _run_options(args, default_executor))


def _spec_path(given: str | Path) -> Path:
    """The spec file of a path or a shipped config's name; one line (exit 2) if neither."""
    from replearn.experiments.catalog import resolve_spec

    try:
        return resolve_spec(given)[0]
    except ValueError as err:
        raise CommandError(str(err), EXIT_USAGE) from None


def _check_spec_not_store(spec_path: Path, db: Path) -> None:
    """``--db`` naming the spec file itself: refused before the spec is read or run."""
    from replearn.experiments.paths import check_output_not_input

    check_output_not_input(db, {f"the spec {spec_path}": [spec_path]}, "--db")


def cmd_run(args) -> int:
    spec_path = _spec_path(args.spec)
    if not args.dry_run:
        _check_spec_not_store(spec_path, args.db)
    spec = _load(spec_path, args.quick)
    if args.dry_run:
        from replearn.experiments.api import estimate_cells

        cells = estimate_cells(spec)
        detail = ", ".join(f"{k}: {v}" for k, v in cells.items())
        bound = "at most " if spec.kind == "scaling" else ""  # the search takes only some
        print(f"{spec.name}: valid spec, {bound}{sum(cells.values())} runs ({detail}); nothing run")
        return 0
    summary = _run_spec(spec, args)
    if summary.counts["failed"]:
        print(
            f"{summary.counts['failed']} runs failed: see `replearn results --status failed "
            f"--db {args.db}`; rerun with --retry-failed",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return 0


def _open_store(db: Path):
    """The results database, read-only: a missing, empty, damaged or unreadable file (or a
    directory) is one StoreError line; nothing is created or written."""
    from replearn.experiments.store import Store, StoreError

    try:
        return Store(db, readonly=True)
    except StoreError as err:
        raise CommandError(_one_line(err), EXIT_USAGE) from None


def _experiments(store, names: list[str] | None) -> list[str]:
    from replearn.limits import excerpt

    known = store.experiments()
    for name in names or []:
        if name not in known:
            raise CommandError(
                f"no experiment {excerpt(name)} in {store.path}; known: "
                f"{', '.join(known) or 'none'}",
                EXIT_USAGE,
            )
    return names or known


def cmd_status(args) -> int:
    with _open_store(args.db) as store:
        names = _experiments(store, [args.experiment] if args.experiment else None)
        counts = store.counts()
    header = ("experiment", "total", "done", "failed", "running", "stale", "pending")
    table = [header] + [(name, *(str(counts[name][k]) for k in header[1:])) for name in names]
    width = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        cells = [row[0].ljust(width[0])] + [c.rjust(w) for c, w in zip(row[1:], width[1:])]
        print("  ".join(cells))
    if not names:
        print(f"(no experiments in {args.db})")
    return 0


def _flat_results(db: Path, experiment: str | None, status: str | None = None) -> list[dict]:
    from replearn.experiments.frames import run_rows

    with _open_store(db) as store:
        if experiment:
            _experiments(store, [experiment])
        return run_rows(store, experiment, status)


def _csv_text(rows: list[dict]) -> str:
    from replearn.experiments.store import columns_of

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns_of(rows), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def cmd_results(args) -> int:
    if args.format == "parquet":
        try:
            import pyarrow
            import pyarrow.parquet as parquet
        except ImportError:
            raise CommandError(
                "--format parquet needs pyarrow: pip install 'replearn[parquet]' "
                "(or use csv or json)",
                EXIT_USAGE,
            ) from None
        if args.out is None:
            raise CommandError("--format parquet needs --out FILE", EXIT_USAGE)
    if args.out is not None:
        _check_not_store(args.out, args.db)
        _check_output_file(args.out)
    rows = _flat_results(args.db, args.experiment, args.status)
    if args.format == "csv":
        text = _csv_text(rows)
    elif args.format == "json":
        text = json.dumps(_json_safe(rows), indent=1, default=str, allow_nan=False) + "\n"
    else:  # the DataFrame of rl.results; nested values (a giant step's history) as JSON
        from replearn.experiments.frames import results

        frame = results(args.db, args.experiment, args.status)
        for column in frame.columns:
            if frame[column].dtype.kind == "O":
                frame[column] = frame[column].map(_parquet_value)
        table = pyarrow.Table.from_pandas(frame, preserve_index=False)
        sink = pyarrow.BufferOutputStream()
        parquet.write_table(table, sink)
        _write_output(args.out, sink.getvalue().to_pybytes())
        print(f"{len(rows)} runs → {args.out}", file=sys.stderr)
        return 0
    if args.out is None:
        sys.stdout.write(text)
    else:
        _write_output(args.out, text.encode("utf-8"))
        print(f"{len(rows)} runs → {args.out}", file=sys.stderr)
    return 0


def _json_safe(value):
    """Rows as strict JSON: a non-finite float (NaN, ±inf: a diverged run's risk) becomes
    null — bare NaN/Infinity are not JSON (RFC 8259) and most readers refuse them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def _check_not_store(out: Path, db: Path, option: str = "--out") -> None:
    """Refuse an output that is the results database (or its -wal/-shm), through symlinks,
    hard links and relative paths, before any work (see replearn.experiments.paths)."""
    from replearn.experiments.paths import check_output_not_input, store_files

    check_output_not_input(out, {f"the results database --db {db}": store_files(db)}, option)


def _check_output_file(out: Path) -> None:
    """``results --out``: a regular file (replaced) or a new file in a writable directory;
    anything else is one line before any work is done."""
    if out.is_dir():
        raise CommandError(f"--out {out}: is a directory; give a file name", EXIT_USAGE)
    if out.exists() and not out.is_file():
        raise CommandError(
            f"--out {out}: not a regular file (a device or a pipe); give a file name", EXIT_USAGE
        )
    for parent in out.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise CommandError(f"--out {out}: {parent} is a file, not a directory", EXIT_USAGE)
            if not os.access(parent, os.W_OK | os.X_OK):
                raise CommandError(f"--out {out}: {parent} is not writable", EXIT_USAGE)
            return


def _write_output(out: Path, data: bytes) -> None:
    """Atomic write (temporary file, then rename) with the user's normal file mode."""
    from replearn.experiments.report.files import atomic_write_bytes

    atomic_write_bytes(out, data)


def _parquet_value(value):
    if value is None or isinstance(value, int | float | str | bool):
        return value
    return json.dumps(value, default=str)


def _write_report(db: Path, out: Path, experiments: list[str] | None) -> tuple[Path, list[str]]:
    """(index.html, one line per experiment that could not be drawn); prints the
    "Published vs replearn" tables (Markdown) of the specs that have a published block."""
    from replearn.experiments.api import write_report

    failures: list[str] = []
    published: list[str] = []
    try:
        path = write_report(db, out, experiments, failures, published)
        for text in published:
            print(text)
        return path, failures
    except ValueError as err:  # no database, an unknown experiment, an unusable --out
        raise CommandError(_one_line(err), EXIT_USAGE) from None


def _report_failures(failures: list[str]) -> None:
    for line in failures:
        print(f"could not draw {line} (the page says so; please report it)", file=sys.stderr)


def cmd_report(args) -> int:
    path, failures = _write_report(args.db, args.out, args.experiment)
    print(f"report: {path}")
    _report_failures(failures)
    return EXIT_FAILED if failures else 0


def cmd_configs(args) -> int:
    from replearn.experiments.catalog import (
        ALIASES,
        config_description,
        resolve_spec,
        shipped_configs,
    )

    if args.name is None:
        configs = shipped_configs()
        if not configs:  # an installation without its package data
            raise CommandError(
                "no shipped configs found (is replearn installed whole?)", EXIT_USAGE
            )
        width = max(map(len, configs))
        for name, path in configs.items():
            print(f"{name.ljust(width)}  {config_description(path)}")
        for old, new in ALIASES.items():
            print(f"{old.ljust(width)}  (old name of {new})")
        print("\nrun one with: replearn run NAME [--quick]; print its YAML: replearn configs NAME")
        return 0
    try:
        path, shipped = resolve_spec(args.name)
    except ValueError as err:
        raise CommandError(str(err), EXIT_USAGE) from None
    if not shipped:
        raise CommandError(
            f"{args.name}: not a shipped config (`replearn configs` lists them)", EXIT_USAGE
        )
    if args.path:
        print(path)
    else:
        sys.stdout.write(path.read_text(encoding="utf-8"))
    return 0


def cmd_demo(args) -> int:
    from replearn.experiments.api import check_output_dir
    from replearn.experiments.paths import check_report_dir

    spec_path = _spec_path(args.spec or DEMO_CONFIG)
    _check_spec_not_store(spec_path, args.db)
    check_report_dir(args.out, args.db)  # both before any run: a bad --out costs nothing
    check_output_dir(args.out)
    spec = _load(spec_path, args.quick)
    if not args.quiet:
        print(
            f"replearn demo: {spec.description or spec.name}\n"
            f"results go to {args.db}; interrupting is safe (re-running resumes)"
        )
    summary = _run_spec(spec, args)
    path, failures = _write_report(args.db, args.out, [spec.name])
    print(f"report: {path}")
    _report_failures(failures)
    if failures:
        return EXIT_FAILED
    if summary.counts["failed"]:
        print(f"{summary.counts['failed']} runs failed (see the report)", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _theory_target(args):
    from replearn.experiments.spec import SpecError, validate_target
    from replearn.experiments.target_kinds import TARGET_KINDS
    from replearn.experiments.yaml_strict import YAMLSpecError, load_yaml

    _check_theory_numbers(args)
    text = args.target.strip()
    if text.startswith("{"):
        try:
            target = load_yaml(text, "--target")
        except YAMLSpecError as err:
            raise CommandError(_one_line(err), EXIT_USAGE) from None
    elif text in TARGET_KINDS:  # a kind's name: its defaults (options below fill the rest)
        target = {"kind": text}
    else:
        target = {"kind": "expression", "expr": text}
    if not isinstance(target, dict):
        raise CommandError(f"--target: must be a mapping, got {_excerpt(text)}", EXIT_USAGE)
    for option in ("r", "degree", "kappa"):
        value = getattr(args, option)
        if value is not None:
            target[option] = value
    target.setdefault("seed", args.seed)
    try:
        return validate_target(target, args.d)
    except SpecError as err:
        raise CommandError(f"--{err}", EXIT_USAGE) from None


def _check_theory_numbers(args) -> None:
    """Numbers of ``theory`` checked before any work: d within the limit d, ε in (0, 1),
    κ finite and ≥ 1, seed in [0, 2^63)."""
    from replearn import limits

    try:
        limits.check("d", args.d, "--d")
    except limits.LimitError as err:
        raise CommandError(str(err), EXIT_USAGE) from None
    epsilon = getattr(args, "epsilon", 0.1)
    if not (math.isfinite(epsilon) and 0 < epsilon < 1):
        raise CommandError(
            f"--epsilon: must be a risk threshold in (0, 1), got {epsilon!r}", EXIT_USAGE
        )
    kappa = getattr(args, "kappa", None)
    if kappa is not None and not (math.isfinite(kappa) and kappa >= 1):
        raise CommandError(f"--kappa: must be a finite number ≥ 1, got {kappa!r}", EXIT_USAGE)
    seed = getattr(args, "seed", 0)
    if not 0 <= seed < 2**63:
        raise CommandError(f"--seed: must be an integer in [0, 2^63), got {seed}", EXIT_USAGE)


def _excerpt(value) -> str:
    from replearn.limits import excerpt

    return excerpt(value)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def cmd_theory(args) -> int:
    from replearn import theory

    target = _theory_target(args)
    transformed = None
    if args.label_transform is not None:  # computed first: a bad option prints nothing else
        try:
            transformed = theory.label_transform_report(
                target, args.label_transform, noise=args.noise, noise_kind=args.noise_kind
            )
        except theory.QuadratureSizeError as err:  # no n_nodes option here: the cause only
            raise CommandError(f"--label-transform: {err.cause}", EXIT_USAGE) from None
        except (TypeError, ValueError) as err:
            raise CommandError(f"--label-transform: {err}", EXIT_USAGE) from None
    print(theory.format_summary(theory.summary(target, epsilon=args.epsilon)))
    if transformed is not None:
        print()
        print(theory.format_label_transform_report(transformed))
    return 0


# -- entry point --------------------------------------------------------------------------------
def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


# Errors that are the user's input or the environment, not a bug of replearn: one line, exit 2.
# ValueError covers SpecError, StoreError, LimitError and YAMLSpecError.
_USER_ERRORS = (ValueError, TypeError, OSError, sqlite3.Error, RecursionError, OverflowError,
                MemoryError)  # fmt: skip


def _message(err: BaseException, limit: int = 600) -> str:
    text = _one_line(err) or type(err).__name__
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        text = f"{err.filename}: {err.strerror}"
    elif isinstance(err, RecursionError | MemoryError | OverflowError | sqlite3.Error):
        text = f"{type(err).__name__}: {text}"
    return text if len(text) <= limit else text[:limit] + "…"


def _cli_hint(text: str) -> str:
    """A limit's message says how to raise it in Python and the environment; add the flag."""
    import replearn.limits as limits

    for name in re.findall(r"\blimit ([a-z_]+)\b", text):
        if name in limits.LIMITS:
            return f"{text} (here: --raise-limit {name}=…)"
    return text


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``replearn`` command; returns the exit status."""
    from replearn import limits

    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    raise_limits = dict(getattr(args, "raise_limit", None) or [])
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _raise_interrupt)  # SIGTERM: release claims, exit
    except ValueError:  # not the main thread
        previous = None
    try:
        with limits.raised(**raise_limits):
            return int(args.handler(args) or 0)
    except CommandError as err:
        if debug:
            traceback.print_exc()
        print(f"replearn {args.command}: {_cli_hint(str(err))}", file=sys.stderr)
        return err.code
    except _USER_ERRORS as err:
        if debug:
            traceback.print_exc()
        print(f"replearn {args.command}: {_cli_hint(_message(err))}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as err:  # a bug: still one line, the traceback with --debug
        if debug:
            traceback.print_exc()
        print(
            f"replearn {args.command}: internal error {type(err).__name__}: {_message(err, 300)}"
            " (please report it; --debug shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(
            f"replearn {args.command}: interrupted; finished runs are saved, re-run to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
