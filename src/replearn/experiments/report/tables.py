"""The report's tables: aggregated rows (mean ± sd over seeds) as CSV, Markdown and LaTeX."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from replearn.experiments.analysis import aggregate
from replearn.experiments.report.files import atomic_write_bytes

__all__ = ["table_rows", "write_tables", "markdown_table", "latex_table", "format_cell"]


def table_rows(records: Sequence[Mapping], by: Sequence[str]) -> list[dict]:
    """Aggregated rows (mean ± sd of risk over seeds) for the tables."""
    return aggregate(records, by=list(by))


def write_tables(rows: Sequence[Mapping], out_dir: Path, stem: str) -> dict[str, Path]:
    """CSV, Markdown and LaTeX versions of the same aggregated rows."""
    if not rows:
        return {}
    keys = list(rows[0])
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    paths = {
        "csv": out_dir / f"{stem}.csv",
        "md": out_dir / f"{stem}.md",
        "tex": out_dir / f"{stem}.tex",
    }
    atomic_write_bytes(paths["csv"], buffer.getvalue().encode())
    atomic_write_bytes(paths["md"], markdown_table(rows).encode())
    atomic_write_bytes(paths["tex"], latex_table(rows).encode())
    return paths


def format_cell(value) -> str:
    """A table cell: floats to 4 significant digits, anything else as ``str``."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown_table(rows: Sequence[Mapping]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(format_cell(row[k]) for k in keys) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def latex_table(rows: Sequence[Mapping]) -> str:
    keys = list(rows[0])
    escape = lambda s: str(s).replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")
    lines = [
        r"\begin{tabular}{" + "l" * len(keys) + "}",
        r"\hline",
        " & ".join(map(escape, keys)) + r" \\",
        r"\hline",
    ]
    lines += [" & ".join(escape(format_cell(row[k])) for k in keys) + r" \\" for row in rows]
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
