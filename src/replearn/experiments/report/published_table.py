"""The report's "Published vs replearn" tables: a spec's ``published:`` numbers beside the
store's runs of the same grid points.

For each row of ``published.values`` (a grid point, the published mean ± sd over k_p seeds)
the done runs of the experiment that match its grid keys are grouped by their configuration
less the seed; each group gives replearn's mean m_r and sd s_r over its k_r seeds of the
block's ``metric``, converted to the paper's units by the block's ``scale`` (replearn's value
= scale × published value, so m_r/scale), and the difference in units of the combined
standard error

    z = (m_r/scale − m_p) / √(s_p²/k_p + (s_r/scale)²/k_r),

with k_p the row's (or the block's) ``seeds`` — 1 when the source does not say, so that s_p
counts whole — and a term left out when its sd is unknown (one seed, or no published sd).
A published row that no run matches is listed with empty replearn cells.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from replearn.experiments.analysis import aggregate
from replearn.experiments.published import row_point
from replearn.experiments.report.tables import markdown_table, write_tables

__all__ = ["published_rows", "published_section", "METRIC_KEYS"]

# the run rows' key of each metric a published block can name
METRIC_KEYS = {"excess_risk": "risk", "alignment": "alignment"}
_RUN_KEYS = ("d", "n", "N", "noise", "method")


def _matches(run: Mapping, point: Mapping) -> bool:
    for key, value in point.items():
        have = run.get(key if key in _RUN_KEYS else f"param_{key}")
        if key == "n" and isinstance(value, str):  # "d^x", as in the spec's n grid
            from replearn.experiments.spec import resolve_n

            value = resolve_n(value, run["d"])
        if have != value and not (_number(have) and _number(value) and float(have) == value):
            return False
    return True


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _point_text(point: Mapping) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items()) or "all runs"


def published_rows(published: Mapping, runs: Sequence[Mapping]) -> list[dict]:
    """One table row per published value and matching group of runs.

    Parameters
    ----------
    published : mapping
        A spec's ``published`` block (as stored: source, metric, scale, seeds, values, …).
    runs : sequence of mapping
        The experiment's done runs as flat rows (``frames.run_rows``).

    Returns
    -------
    list of dict
        ``grid point``, ``configuration`` (the matched runs' method and swept values),
        ``published`` (mean), ``published sd``, ``published seeds``, ``replearn`` (mean,
        in the paper's units), ``replearn sd``, ``seeds`` (k_r), ``difference`` and ``z``.

    Examples
    --------
    >>> block = {"metric": "excess_risk", "scale": 2.0, "seeds": 4,
    ...          "values": [{"n": 10, "mean": 0.5, "sd": 0.02}]}
    >>> runs = [{"d": 2, "n": 10, "method": "m", "seed": s, "risk": r}
    ...         for s, r in enumerate([0.98, 1.02, 1.00, 1.04])]
    >>> row = published_rows(block, runs)[0]
    >>> row["replearn"], row["seeds"], round(row["z"], 3)
    (0.505, 4, 0.42)
    """
    key = METRIC_KEYS[published.get("metric", "excess_risk")]
    scale = float(published.get("scale", 1.0))
    out = []
    for value in published.get("values", []):
        point = row_point(value)
        matched = [r for r in runs if _matches(r, point) and r.get(key) is not None]
        params = sorted({k for r in matched for k in r if k.startswith("param_")})
        by = ["method", *[k for k in _RUN_KEYS if k != "method"], *params]
        by = [k for k in by if len({repr(r.get(k)) for r in matched}) > 1 or k == "method"]
        groups = aggregate(matched, by=by, value=key) if matched else [None]
        k_p = int(value.get("seeds", published.get("seeds") or 1))
        for group in groups:
            row = {
                "grid point": _point_text(point),
                "configuration": ""
                if group is None
                else _point_text({k.removeprefix("param_"): group[k] for k in by}),
                "published": float(value["mean"]),
                "published sd": value.get("sd"),
                "published seeds": value.get("seeds", published.get("seeds")),
                "replearn": None,
                "replearn sd": None,
                "seeds": 0,
                "difference": None,
                "z": None,
            }
            if group is not None:
                mean, k_r = group["mean"] / scale, group["count"]
                sd = group["sd"] / scale if k_r > 1 and math.isfinite(group["sd"]) else None
                variance = (value["sd"] ** 2 / k_p if value.get("sd") is not None else 0.0) + (
                    sd**2 / k_r if sd is not None else 0.0
                )
                difference = mean - row["published"]
                row.update({"replearn": mean, "replearn sd": sd, "seeds": k_r,
                            "difference": difference})  # fmt: skip
                row["z"] = difference / math.sqrt(variance) if variance > 0 else None
            out.append(row)
    return out


def published_section(
    tables: Sequence[tuple[str, Mapping, list[dict]]], out_dir: Path
) -> tuple[dict, str]:
    """The page section "Published vs replearn" and its Markdown text, from (experiment name,
    published block, :func:`published_rows`) triples; writes ``{name}-published`` CSV,
    Markdown and LaTeX next to the page."""
    section = {"title": "Published vs replearn", "tables": [], "links": [], "figures": []}
    lines = ["Published vs replearn"]
    texts = []
    for name, block, rows in tables:
        units = (
            f"replearn's {block.get('metric', 'excess_risk')} / {block.get('scale', 1.0):g}"
            if float(block.get("scale", 1.0)) != 1.0
            else f"replearn's {block.get('metric', 'excess_risk')}"
        )
        text = f"{name}: published in {block.get('source')}; compared with {units}"
        if block.get("note"):
            text += f" ({block['note']})"
        texts.append(text + ".")
        lines += ["", texts[-1], "", markdown_table(_shown(rows)).rstrip()]
        section["tables"].append(_shown(rows))
        section["links"] += [
            p.name for p in write_tables(rows, out_dir, f"{name}-published").values()
        ]
    section["text"] = (
        " ".join(texts) + " z: the difference in units of the combined standard error "
        "√(sd_p²/k_p + sd_r²/k_r)."
    )
    return section, "\n".join(lines) + "\n"


def _shown(rows: Sequence[Mapping]) -> list[dict]:
    """Rows with None as empty cells (a group without runs, an unknown sd)."""
    return [{k: ("" if v is None else v) for k, v in row.items()} for row in rows]
