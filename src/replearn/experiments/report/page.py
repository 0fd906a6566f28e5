"""The report page: one self-contained HTML file (figures embedded as base64 PNG), styled like
the documentation site (pydata-sphinx-theme's fonts, colours and tables; the CSS is inline)."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path

from replearn.experiments.report.files import atomic_write_bytes
from replearn.experiments.report.tables import format_cell

__all__ = ["write_html", "PAGE_CSS"]

PAGE_CSS = """
:root { --primary: #459db9; --ink: #222832; --muted: #5c6370; --line: #d1d5da;
        --surface: #f6f8fa; --accent: #e8f3f7; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.55;
       font: 16px/1.55 -apple-system, BlinkMacSystemFont, "Segoe UI", "Helvetica Neue",
       Arial, sans-serif; }
header { background: var(--ink); color: #fff; padding: 0.9rem 2rem; }
header .brand { font-weight: 700; font-size: 1.15rem; letter-spacing: 0.02em; }
header .brand span { color: #8fd0e3; font-weight: 400; margin-left: 0.6rem; }
main { max-width: 1120px; margin: 0 auto; padding: 1.5rem 2rem 4rem; }
h1 { font-size: 1.9rem; margin: 0.5rem 0 0.8rem; }
h2 { font-size: 1.45rem; margin: 2.6rem 0 0.6rem; padding-bottom: 0.3rem;
     border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.6rem 0 0.4rem; color: var(--muted); }
a { color: #0a7d91; text-decoration: none; } a:hover { text-decoration: underline; }
code, pre { font-family: SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.88em; }
pre { background: var(--surface); border: 1px solid var(--line); border-radius: 4px;
      padding: 0.6rem 0.9rem; overflow-x: auto; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1.2rem;
        background: var(--surface); border-left: 4px solid var(--primary);
        padding: 0.8rem 1.1rem; border-radius: 0 4px 4px 0; font-size: 0.92rem; }
.meta dt { font-weight: 600; color: var(--muted); } .meta dd { margin: 0; }
.summary { color: var(--muted); }
figure { margin: 1.2rem 0 1.6rem; border: 1px solid var(--line); border-radius: 6px;
         padding: 0.8rem; background: #fff; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { margin-top: 0.7rem; padding: 0.7rem 0.9rem; background: var(--accent);
             border-radius: 4px; font-size: 0.95rem; }
figcaption b { display: block; margin-bottom: 0.2rem; }
.table-wrap { overflow-x: auto; margin: 0.6rem 0 1.2rem; }
table { border-collapse: collapse; font-size: 0.86rem; font-variant-numeric: tabular-nums; }
th { background: var(--surface); text-align: left; font-weight: 600; }
td, th { border-bottom: 1px solid var(--line); padding: 0.3rem 0.75rem; }
td.num { text-align: right; }
tbody tr:nth-child(even) { background: #fbfcfd; } tbody tr:hover { background: var(--accent); }
ul.files { columns: 3; font-size: 0.9rem; padding-left: 1.2rem; }
footer { color: var(--muted); font-size: 0.85rem; border-top: 1px solid var(--line);
         margin-top: 3rem; padding-top: 0.8rem; }
"""


def _table(rows: Sequence[Mapping]) -> str:
    keys = list(rows[0])
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in keys)
    body = []
    for row in rows:
        cells = []
        for k in keys:
            value = row[k]
            number = isinstance(value, int | float) and not isinstance(value, bool)
            css = " class='num'" if number else ""
            cells.append(f"<td{css}>{html.escape(format_cell(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<div class='table-wrap'><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _caption(text: str) -> str:
    lines = [html.escape(line) for line in text.splitlines() if line.strip()]
    return "<figcaption><b>What this shows</b>" + "<br>".join(lines) + "</figcaption>"


def write_html(
    sections: Sequence[Mapping],
    out_path: Path,
    title: str = "replearn report",
    meta: Mapping | None = None,
) -> Path:
    """One self-contained page.

    Each section has ``title``, ``text`` (a summary line), ``figures`` (PNG paths, embedded as
    base64), ``captions`` ({PNG file name: "what this shows" text}), ``tables`` (rows,
    rendered as HTML tables) and ``links`` (file names next to the page). ``meta`` gives the
    page's provenance: ``{"replearn", "date", "machine", "runs made with"}`` and
    ``commands`` (the commands that reproduce the page).

    Parameters
    ----------
    sections : sequence of mapping
    out_path : pathlib.Path
        Where the page is written (atomically).
    title : str
    meta : mapping, optional

    Returns
    -------
    pathlib.Path
        ``out_path``.
    """
    meta = dict(meta or {})
    commands = meta.pop("commands", [])
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{html.escape(title)}</title><style>{PAGE_CSS}</style></head><body>",
        "<header><div class='brand'>replearn<span>experiment report</span></div></header>",
        "<main>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if meta:
        items = "".join(
            f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>" for k, v in meta.items()
        )
        parts.append(f"<dl class='meta'>{items}</dl>")
    if commands:
        parts.append("<h3>Reproduce</h3><pre>" + html.escape("\n".join(commands)) + "</pre>")
    for section in sections:
        parts.append(f"<h2>{html.escape(section['title'])}</h2>")
        if section.get("text"):
            parts.append(f"<p class='summary'>{html.escape(section['text'])}</p>")
        captions = section.get("captions", {})
        for png in section.get("figures", []):
            data = base64.b64encode(Path(png).read_bytes()).decode()
            caption = captions.get(Path(png).name)
            parts.append(
                f"<figure><img alt='{html.escape(Path(png).stem)}' "
                f"src='data:image/png;base64,{data}'>"
                + (_caption(caption) if caption else "")
                + "</figure>"
            )
        for rows in section.get("tables", []):
            if rows:
                parts.append(_table(rows))
        links = list(dict.fromkeys(str(link) for link in section.get("links", [])))
        pngs = [Path(png).name for png in section.get("figures", [])]
        links = list(dict.fromkeys(pngs + links))
        if links:
            items = "".join(
                f"<li><a href='{html.escape(link)}'>{html.escape(link)}</a></li>" for link in links
            )
            parts.append(f"<h3>Files</h3><ul class='files'>{items}</ul>")
    parts.append(
        "<footer>Made by replearn"
        + (f" {html.escape(str(meta['replearn']))}" if "replearn" in meta else "")
        + ". Figures: mean ± sd over seeds; every number comes from the results database."
        "</footer></main></body></html>"
    )
    atomic_write_bytes(out_path, "\n".join(parts).encode())
    return out_path
