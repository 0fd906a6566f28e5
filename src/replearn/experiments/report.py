"""Figures (PNG + PDF), tables (CSV, Markdown, LaTeX) and a self-contained HTML page.

Input is a list of run records — flat dicts with at least ``method`` (a label), ``d``, ``n``,
``seed`` and ``risk``; optional ``width``, ``N`` (transfer samples), ``alignment``. The
figures follow the paper: excess L2 risk against log_d(n), mean ± sd band over seeds,
dashed reference lines at 1 (zero predictor) and at the best degree-≤k predictor's risk
(from the target's exact degree energy), with theory overlays from ``replearn.theory``:
the d²κ²r threshold (Theorem 1) and the kernel staircase.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from replearn import theory  # noqa: E402
from replearn.experiments.analysis import aggregate  # noqa: E402
from replearn.targets import MultiIndexTarget  # noqa: E402

__all__ = [
    "figure_risk_vs_n",
    "figure_transfer",
    "figure_scaling",
    "table_rows",
    "write_tables",
    "write_html",
    "save_figure",
]

COLORS = {"one_step": "#1f77b4", "random_features": "#d62728", "ntk": "#2ca02c",
          "kernel_ridge": "#9467bd", "full_training": "#ff7f0e"}  # fmt: skip
LABELS = {"one_step": "Algorithm 1 (one step)", "random_features": "random features",
          "ntk": "NTK (linearised network)", "kernel_ridge": "kernel ridge (infinite width)",
          "full_training": "full training (GD on both layers)"}  # fmt: skip


def _method_order(method: str) -> tuple[int, str]:
    """Algorithm 1 first, then the baselines in a fixed order, then anything else by name."""
    base = method.split("[")[0]
    order = list(LABELS)
    return (order.index(base) if base in order else len(order), method)


def _label(method: str) -> str:
    base = method.split("[")[0]
    return LABELS.get(base, base) + (method[len(base) :] if "[" in method else "")


def _color(method: str, index: int) -> str:
    return COLORS.get(method.split("[")[0], f"C{index % 10}")


def _reference_lines(ax, target: MultiIndexTarget | None) -> None:
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="zero predictor")
    if target is None:
        return
    norm2 = target.norm2()
    degrees = sorted(target.degree_energy())
    shown = set()
    for k in range(0, target.degree):
        risk = theory.best_degree_risk(target, k) / norm2
        if 0 < risk < 1 and round(risk, 6) not in shown and k >= min(degrees):
            shown.add(round(risk, 6))
            ax.axhline(risk, color="gray", linestyle="--", linewidth=1,
                       label=f"best degree-≤{k} predictor ({risk:.2g})")  # fmt: skip


def _theory_overlays(ax, target: MultiIndexTarget | None, x_max: float) -> None:
    if target is None:
        return
    threshold = theory.one_step_threshold(target)
    if math.isfinite(threshold):
        x = math.log(threshold) / math.log(target.d)
        ax.axvline(x, color="#1f77b4", linestyle=":", linewidth=1.2,
                   label=f"Theorem 1: n = d²κ²r (log_d n = {x:.2g})")  # fmt: skip
    xs, ys = [], []
    for start, stop, risk in theory.kernel_staircase(target, max_log_d_n=max(x_max, 1.0)):
        xs += [start, stop]
        ys += [risk / target.norm2()] * 2
    ax.plot(xs, ys, color="#d62728", alpha=0.35, linewidth=3, label="kernel staircase (theory)")


Y_CLIP = 1.6


def _band(means: Sequence[float], sds: Sequence[float]) -> tuple[list[float], list[float]]:
    """mean ± sd, left out (NaN) where the mean is above the clipped axis."""
    low = [m - s if m <= Y_CLIP else math.nan for m, s in zip(means, sds)]
    high = [m + s if m <= Y_CLIP else math.nan for m, s in zip(means, sds)]
    return low, high


def _clip(ax, means: Sequence[float]) -> None:
    """y from 0 to at most Y_CLIP (the zero predictor is at 1); says so when points are cut."""
    top = max(means, default=1.0)
    if top > Y_CLIP:
        ax.set_ylim(0, Y_CLIP)
        ax.text(0.98, 0.98, f"y clipped at {Y_CLIP}\n(max mean {top:.3g}; see table)", transform=ax.transAxes,
                fontsize=7, va="top", ha="right", color="dimgray",
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.5})  # fmt: skip
    else:
        ax.set_ylim(0, max(1.1, top * 1.05))


def figure_risk_vs_n(
    records: Sequence[Mapping],
    target: MultiIndexTarget | None = None,
    title: str = "",
    panel_key: str | None = "width",
):
    """Fig. 1 form: one panel per ``panel_key`` value (e.g. width), risk vs log_d(n)."""
    panels = (
        sorted({r.get(panel_key) for r in records}, key=lambda v: (v is None, v))
        if panel_key
        else [None]
    )
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False, sharey=True
    )
    for ax, panel in zip(axes[0], panels):
        subset = [r for r in records if panel_key is None or r.get(panel_key) == panel]
        rows = aggregate(subset, by=["method", "d", "n"])
        methods = sorted({row["method"] for row in rows}, key=_method_order)
        x_max = 0.0
        for i, method in enumerate(methods):
            line = [row for row in rows if row["method"] == method]
            d = line[0]["d"]
            xs = [math.log(row["n"]) / math.log(d) for row in line]
            x_max = max(x_max, *xs)
            means = [row["mean"] for row in line]
            sds = [row["sd"] for row in line]
            color = _color(method, i)
            ax.plot(xs, means, marker="o", markersize=3.5, color=color, label=_label(method))
            low, high = _band(means, sds)
            ax.fill_between(xs, low, high,
                            color=color, alpha=0.2, linewidth=0)  # fmt: skip
        _reference_lines(ax, target)
        _theory_overlays(ax, target, x_max)
        ax.set_xlabel("log_d(n)")
        _clip(ax, [row["mean"] for row in rows])
        if panel_key and panel is not None:
            ax.set_title(f"{panel_key} = {panel}")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("excess L2 risk E[(f − f*)²]")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.01))  # fmt: skip
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06 + 0.035 * math.ceil(len(labels) / 3), 1, 1))
    return fig


def _half_grid(value: float, d: int) -> float:
    """log_d(value) to the nearest 0.5 (the grids are d^k for half-integer k, rounded to integers)."""
    return round(2 * math.log(value) / math.log(d)) / 2


def figure_transfer(records: Sequence[Mapping], d: int, title: str = ""):
    """Fig. 2 form: risk vs log_d(n) (pretraining) for each N, and risk vs log_d(N) for each n."""
    rows = aggregate(records, by=["n", "N"])
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.6), sharey=True)
    for ax, (x_key, line_key) in zip(axes, [("n", "N"), ("N", "n")]):
        values = sorted({row[line_key] for row in rows})
        cmap = plt.get_cmap("viridis")
        for i, value in enumerate(values):
            line = sorted(
                (row for row in rows if row[line_key] == value), key=lambda row: row[x_key]
            )
            xs = [math.log(row[x_key]) / math.log(d) for row in line]
            means = [row["mean"] for row in line]
            sds = [row["sd"] for row in line]
            color = cmap(i / max(len(values) - 1, 1))
            ax.plot(xs, means, marker="o", markersize=3.5, color=color,
                    label=f"{line_key} = {value} (d^{_half_grid(value, d):g})")  # fmt: skip
            low, high = _band(means, sds)
            ax.fill_between(xs, low, high,
                            color=color, alpha=0.15, linewidth=0)  # fmt: skip
        ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="zero predictor")
        ax.set_xlabel(
            "log_d(n)  (pretraining samples)" if x_key == "n" else "log_d(N)  (downstream samples)"
        )
        _clip(ax, [row["mean"] for row in rows])
        ax.grid(alpha=0.3)
        # below the panel: inside, it would sit on the curves that fall through the middle
        ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    axes[0].set_ylabel("downstream excess L2 risk")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def figure_scaling(
    fits: Mapping[str, Mapping], title: str = "", guides: Mapping[str, float] | None = None
):
    """log n*(d) vs log d per method with the fitted line and theory slopes as guides.

    ``fits[method]`` has ``n_star`` {d: n* or None}, ``slope``, ``intercept``, ``ci``.
    """
    fig, ax = plt.subplots(figsize=(6, 4.5))
    all_d = sorted({d for fit in fits.values() for d in fit["n_star"]})
    for i, (method, fit) in enumerate(sorted(fits.items())):
        color = _color(method, i)
        points = [(d, n) for d, n in sorted(fit["n_star"].items()) if n is not None]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], "o", color=color)
        if fit.get("slope") is not None:
            low, high = fit["ci"]
            ds = [min(all_d), max(all_d)]
            ax.plot(ds, [math.exp(fit["intercept"]) * d ** fit["slope"] for d in ds], color=color,
                    label=f"{_label(method)}: slope {fit['slope']:.2f} [{low:.2f}, {high:.2f}]")  # fmt: skip
        elif points or fit["n_star"]:
            reached = ", ".join(str(p[0]) for p in points)
            note = (
                f"threshold reached only at d = {reached}"
                if points
                else "threshold reached at no d"
            )
            ax.plot([], [], "o", color=color, label=f"{_label(method)}: {note}")
    if guides and all_d:
        anchor_d = min(all_d)
        anchor_n = min(
            (n for fit in fits.values() for n in fit["n_star"].values() if n), default=anchor_d**2
        )
        for name, slope in guides.items():
            ds = [min(all_d), max(all_d)]
            ax.plot(ds, [anchor_n * (d / anchor_d) ** slope for d in ds], color="gray", linestyle=":",
                    label=f"theory guide: {name} (slope {slope:g})")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("d")
    ax.set_ylabel("n*(d): samples to reach the risk threshold")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_figure(fig, out_dir: Path, stem: str) -> dict[str, Path]:
    """Write ``stem.png`` (150 dpi) and ``stem.pdf``; return their paths."""
    paths = {}
    for fmt, kwargs in (("png", {"dpi": 150}), ("pdf", {})):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, bbox_inches="tight", **kwargs)
        paths[fmt] = out_dir / f"{stem}.{fmt}"
        _atomic_write_bytes(paths[fmt], buffer.getvalue())
    plt.close(fig)
    return paths


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
    _atomic_write_bytes(paths["csv"], buffer.getvalue().encode())
    _atomic_write_bytes(paths["md"], markdown_table(rows).encode())
    _atomic_write_bytes(paths["tex"], latex_table(rows).encode())
    return paths


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown_table(rows: Sequence[Mapping]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_fmt(row[k]) for k in keys) + " |" for row in rows]
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
    lines += [" & ".join(escape(_fmt(row[k])) for k in keys) + r" \\" for row in rows]
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


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
                    + "".join(f"<td>{html.escape(_fmt(row[k]))}</td>" for k in keys)
                    + "</tr>"
                )
            parts.append("</table>")
        links = section.get("links", [])
        if links:
            parts.append("<p>Files: " + ", ".join(
                f"<a href='{html.escape(str(link))}'>{html.escape(str(link))}</a>" for link in links) + "</p>")  # fmt: skip
    parts.append("</body></html>")
    _atomic_write_bytes(out_path, "\n".join(parts).encode())
    return out_path


# -- the report of a results store ----------------------------------------------------------
def _varying_params(rows: Sequence[Mapping], method: str, skip: Sequence[str]) -> list[str]:
    keys = {k for r in rows if r["method"] == method for k in r if k.startswith("param_")}
    return sorted(
        k
        for k in keys
        if k not in skip and len({repr(r.get(k)) for r in rows if r["method"] == method}) > 1
    )


def _labelled(rows: Sequence[Mapping], panel_key: str | None) -> list[dict]:
    """Rows with ``method`` extended by the hyper-parameters that vary within a method."""
    out = []
    for method in sorted({r["method"] for r in rows}):
        varying = _varying_params(rows, method, skip=[f"param_{panel_key}"] if panel_key else [])
        for r in rows:
            if r["method"] != method:
                continue
            label = method
            if varying:
                label += "[" + ", ".join(f"{k[6:]}={r.get(k)}" for k in varying) + "]"
            row = dict(r, method=label)
            if panel_key:
                row[panel_key] = r.get(f"param_{panel_key}")
            out.append(row)
    return out


def _experiment_section(store, name: str, out_dir: Path) -> dict:
    from replearn.experiments.methods import build_target
    from replearn.experiments.store import flat_rows

    raw = store.runs(name)
    done_raw = [r for r in raw if r["status"] == "done"]
    rows = [r for r in flat_rows(done_raw) if r.get("risk") is not None]
    failed = sum(r["status"] == "failed" for r in raw)
    pending = len(raw) - len(done_raw) - failed
    spec = store.experiment_spec(name) or {}
    section = {
        "title": f"{name}: {spec.get('description', '')}".rstrip(": "),
        "figures": [],
        "tables": [],
        "links": [],
    }
    section["text"] = (
        f"{len(done_raw)} runs done, {failed} failed, {pending} pending. "
        f"Target: {rows[0]['target'] if rows else '?'}; noise {spec.get('noise')}; "
        f"λ tuned on {spec.get('n_holdout')} holdout samples; risk on {spec.get('n_test')} test samples."
    )
    if not rows:
        return section
    first_config = {r["run_id"]: r["config"] for r in done_raw}
    for d in sorted({r["d"] for r in rows}):
        at_d = [r for r in rows if r["d"] == d]
        target = build_target(first_config[at_d[0]["run_id"]]["target"], d)
        suffix = f"-d{d}" if len({r["d"] for r in rows}) > 1 else ""
        if any(r.get("N") is not None for r in at_d):
            transfer_rows = [r for r in at_d if r.get("N") is not None]
            for method in sorted({r["method"] for r in transfer_rows}):
                of_method = [r for r in transfer_rows if r["method"] == method]
                widths = sorted({r.get("param_width") for r in of_method}, key=str)
                for width in widths:  # one figure per width: Fig. 2 is one network
                    subset = [r for r in of_method if r.get("param_width") == width]
                    stem = f"{name}-transfer-{method}" + (f"-w{width}" if len(widths) > 1 else "")
                    stem += suffix
                    fig = figure_transfer(
                        subset, d, title=f"{name}: transfer, {method}, width {width}, d = {d}"
                    )
                    paths = save_figure(fig, out_dir, stem)
                    section["figures"].append(paths["png"])
                    section["links"].append(paths["pdf"].name)
                    table = table_rows(subset, by=["n", "N"])
                    section["tables"].append(table)
                    section["links"] += [
                        p.name for p in write_tables(table, out_dir, stem).values()
                    ]
            continue
        widths = {r.get("param_width") for r in at_d}
        panel_key = "width" if len(widths) > 1 else None
        labelled = _labelled(at_d, panel_key)
        title = f"{name}: d = {d}" + (
            f", width {widths.pop()}" if panel_key is None and widths != {None} else ""
        )
        fig = figure_risk_vs_n(labelled, target, title=title, panel_key=panel_key)
        paths = save_figure(fig, out_dir, f"{name}-risk{suffix}")
        section["figures"].append(paths["png"])
        section["links"].append(paths["pdf"].name)
        by = ["method"] + ([panel_key] if panel_key else []) + ["d", "n"]
        table = table_rows(labelled, by=by)
        section["tables"].append(table)
        section["links"] += [
            p.name for p in write_tables(table, out_dir, f"{name}-risk{suffix}").values()
        ]
    return section


def write_report(db: Path, out: Path, experiments: Sequence[str] | None = None) -> Path:
    """Figures (PNG, PDF), tables (CSV, Markdown, LaTeX) and ``index.html`` for the experiments
    in the store (all by default); returns the path of ``index.html``."""
    from replearn.experiments.store import Store

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not Path(db).exists():
        raise ValueError(
            f"no results database at {db}: run an experiment first (replearn run SPEC)"
        )
    sections = []
    with Store(db) as store:
        names = list(experiments) if experiments else store.experiments()
        unknown = [n for n in names if n not in store.experiments()]
        if unknown:
            raise ValueError(
                f"unknown experiment(s) {', '.join(unknown)}; in {db}: {', '.join(store.experiments())}"
            )
        for name in names:
            spec = store.experiment_spec(name) or {}
            if spec.get("kind") == "scaling":
                from replearn.experiments.scaling import scaling_section

                sections.append(scaling_section(db, name, out))
            else:
                sections.append(_experiment_section(store, name, out))
    return write_html(sections, out / "index.html", title="replearn report")
