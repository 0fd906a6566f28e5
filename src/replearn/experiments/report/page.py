"""The report page: one self-contained HTML file (figures embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path

from replearn.experiments.report.files import atomic_write_bytes
from replearn.experiments.report.tables import format_cell

__all__ = ["write_html"]


def write_html(sections: Sequence[Mapping], out_path: Path, title: str = "replearn report") -> Path:
    """One self-contained page: each section has ``title``, ``text``, ``figures`` (PNG paths,
    embedded as base64) and ``tables`` (Markdown-able rows, rendered as HTML tables) and
    ``links`` (relative paths of the CSV/PDF files next to it)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "img{max-width:100%}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section['title'])}</h2>")
        if section.get("text"):
            parts.append(f"<p>{html.escape(section['text'])}</p>")
        for png in section.get("figures", []):
            data = base64.b64encode(Path(png).read_bytes()).decode()
            parts.append(
                f"<img alt='{html.escape(Path(png).stem)}' src='data:image/png;base64,{data}'>"
            )
        for rows in section.get("tables", []):
            if not rows:
                continue
            keys = list(rows[0])
            parts.append(
                "<table><tr>" + "".join(f"<th>{html.escape(k)}</th>" for k in keys) + "</tr>"
            )
            for row in rows:
                parts.append(
                    "<tr>"
                    + "".join(f"<td>{html.escape(format_cell(row[k]))}</td>" for k in keys)
                    + "</tr>"
                )
            parts.append("</table>")
        links = section.get("links", [])
        if links:
            parts.append("<p>Files: " + ", ".join(
                f"<a href='{html.escape(str(link))}'>{html.escape(str(link))}</a>" for link in links) + "</p>")  # fmt: skip
    parts.append("</body></html>")
    atomic_write_bytes(out_path, "\n".join(parts).encode())
    return out_path
