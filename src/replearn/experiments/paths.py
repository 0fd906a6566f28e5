"""Outputs never overwrite inputs: file identity through symlinks, hard links and relative paths.

Two paths name the same file when they resolve to the same absolute path
(``Path.resolve``: symlinks and ``..`` followed) or, when both exist, when they have the same
device and inode (``os.path.samefile``: hard links too). A results database comes with the
files SQLite keeps next to it (``-wal``, ``-shm``, ``-journal``); writing over any of them
loses results, so they count as the database.

Every command that writes a file checks its outputs against its inputs with
:func:`check_output_not_input` *before* any work, and refuses in one line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = [
    "OutputOverwritesInput",
    "check_output_not_input",
    "check_report_dir",
    "same_file",
    "store_files",
    "REPORT_SUFFIXES",
]

# Suffixes of every file a report writes (figures, tables, the page, the scaling JSON).
REPORT_SUFFIXES = (".png", ".pdf", ".csv", ".md", ".tex", ".json", ".html")
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


class OutputOverwritesInput(ValueError):
    """An output path that names an input file (one line naming both)."""


def _resolved(path: Path) -> Path:
    try:
        return Path(os.path.abspath(path)).resolve(strict=False)
    except (OSError, RuntimeError):  # a symlink loop: compare what we can
        return Path(os.path.abspath(path))


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when ``a`` and ``b`` name one file: same resolved path, or same (device, inode).

    Parameters
    ----------
    a, b : str or pathlib.Path
        Paths, absolute or relative, through symlinks or not; they need not exist.

    Returns
    -------
    bool

    Examples
    --------
    >>> import tempfile, os
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     store = Path(tmp) / "runs.sqlite"
    ...     _ = store.write_bytes(b"x")
    ...     os.symlink(store, Path(tmp) / "link")
    ...     same_file(Path(tmp) / "link", Path(tmp) / "sub" / ".." / "runs.sqlite")
    True
    """
    a, b = Path(a), Path(b)
    if _resolved(a) == _resolved(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (or cannot be stat'ed): not the same file
        return False


def store_files(db: str | Path) -> list[Path]:
    """The results database and the files SQLite keeps beside it (``-wal``, ``-shm``,
    ``-journal``), under the name given and under its resolved name."""
    db = Path(db)
    names = [db, _resolved(db)]
    files: list[Path] = []
    for base in names:
        files.append(base)
        files += [base.with_name(base.name + suffix) for suffix in SQLITE_SIDECARS]
    return files


def check_output_not_input(output: str | Path, inputs: Mapping[str, Iterable[Path]], option: str):
    """Raise :class:`OutputOverwritesInput` when ``output`` is one of the ``inputs`` files.

    Parameters
    ----------
    output : str or pathlib.Path
        The file a command is about to write.
    inputs : mapping
        ``{what: paths}``, e.g. ``{"the results database --db runs.sqlite": store_files(db)}``.
    option : str
        The option that gave ``output`` (``"--out"``), for the message.

    Examples
    --------
    >>> check_output_not_input("a.csv", {"--db b.sqlite": store_files("b.sqlite")}, "--out")
    >>> check_output_not_input("b.sqlite", {"--db b.sqlite": store_files("b.sqlite")}, "--out")
    Traceback (most recent call last):
    ...
    replearn.experiments.paths.OutputOverwritesInput: --out b.sqlite: is --db b.sqlite; writing it would destroy it — give another path
    """
    for what, paths in inputs.items():
        if any(same_file(output, path) for path in paths):
            raise OutputOverwritesInput(
                f"{option} {output}: is {what}; writing it would destroy it — give another path"
            )


def check_report_dir(out: str | Path, db: str | Path, option: str = "--out") -> None:
    """Refuse a report folder that holds the results database under a name a report writes.

    A report writes ``<name>.png/.pdf/.csv/.md/.tex/.json`` and ``index.html`` into ``out``;
    a database (or its -wal/-shm) in that folder with one of those suffixes could be
    replaced. ``out`` itself being the database is refused too.

    Examples
    --------
    >>> check_report_dir("report", "results/runs.sqlite")
    """
    check_output_not_input(out, {f"the results database {db}": store_files(db)}, option)
    folder = _resolved(Path(out))
    for path in store_files(db):
        if not path.name.endswith(REPORT_SUFFIXES):
            continue
        if _resolved(path).parent == folder or same_file(path.parent, out):
            raise OutputOverwritesInput(
                f"{option} {out}: holds the results database {db}, whose name a report file "
                f"could take ({path.name}); write the report to another folder"
            )
