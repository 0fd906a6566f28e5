"""The report's structure: every expected figure and table is there, the HTML page is
self-contained (figures embedded as PNG, links resolve), and the figures have the paper's
form (one panel per width, a line and a band per method, reference lines at 1 and at the
best degree-≤k risk, theory overlays, labelled axes).

The specs are the paper's Fig. 1 / Fig. 2 specs shrunk (d = 4, tiny n and widths) so that the
real learners run in seconds; the layout code does not depend on the sizes.
"""

from __future__ import annotations

import base64
import csv
import html.parser
import math
import statistics

import matplotlib
import pytest

matplotlib.use("Agg")

from matplotlib.collections import PolyCollection  # noqa: E402

from replearn.experiments.analysis import log_d  # noqa: E402
from replearn.experiments.api import run_experiment, write_report  # noqa: E402
from replearn.experiments.methods import build_target  # noqa: E402
from replearn.experiments.report import figure_risk_vs_n, figure_transfer, grid_experiment  # noqa: E402
from replearn.experiments.report.figures import LABELS, Y_CLIP  # noqa: E402
from replearn.experiments.spec import parse_spec  # noqa: E402
from replearn.experiments.store import Store  # noqa: E402

FIG1 = """
name: fig1
description: Fig. 1 shrunk
target: {kind: paper, seed: run}
noise: 1.0
noise_kind: rademacher
methods:
  - {name: one_step, width: [4, 8]}
  - {name: random_features, width: [4, 8]}
  - {name: ntk, width: [4, 8]}
d: [4]
n: ["d^1", "d^1.5", "d^2"]
seeds: 3
n_holdout: 200
n_test: 500
dtype: float64
"""

FIG2 = """
name: fig2
description: Fig. 2 shrunk
target: {kind: paper, seed: run}
noise: 1.0
noise_kind: rademacher
methods:
  - {name: one_step, width: [4, 8]}
d: [4]
n: ["d^1", "d^2"]
seeds: 2
n_holdout: 200
n_test: 500
dtype: float64
transfer:
  target: {kind: paper_transfer}
  N: ["d^1", "d^1.5"]
  noise: 1.0
  n_holdout: 200
"""

TABLE_FORMATS = ("csv", "md", "tex")


class _Page(html.parser.HTMLParser):
    """Collects the page's images, links and headings."""

    def __init__(self):
        super().__init__()
        self.images, self.links, self.headings, self._in_h2 = [], [], [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        elif tag == "a":
            self.links.append(attrs["href"])
        elif tag == "h2":
            self._in_h2 = True

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.headings.append(data)


def _plotted(fig) -> list[dict]:
    """Per axis: its title, the data lines (label → (x, y)) and the bands' vertices, in
    plotting order (each line is drawn just before its band)."""
    axes = []
    for ax in fig.axes:
        lines = [line for line in ax.get_lines() if line.get_marker() == "o"]
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        axes.append(
            {
                "title": ax.get_title(),
                "lines": [
                    (line.get_label(), list(line.get_xdata()), list(line.get_ydata()))
                    for line in lines
                ],
                "bands": [
                    [v for path in band.get_paths() for v in path.vertices] for band in bands
                ],
            }
        )
    return axes


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Both experiments run into one store and reported; the figures' data captured as they
    are saved."""
    tmp = tmp_path_factory.mktemp("report")
    db, out = tmp / "results.sqlite", tmp / "report"
    for text in (FIG1, FIG2):
        summary = run_experiment(parse_spec(text), db=db, executor="serial", quiet=True)
        assert summary.ok
    plotted, save = {}, grid_experiment.save_figure

    def capture(fig, out_dir, stem):
        plotted[stem] = _plotted(fig)
        return save(fig, out_dir, stem)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(grid_experiment, "save_figure", capture)
        index = write_report(db, out)
    page = _Page()
    page.feed(index.read_text())
    return {"db": db, "out": out, "index": index, "page": page, "plotted": plotted}


@pytest.fixture(scope="module")
def report(built):
    return built["out"], built["index"], built["page"]


def _store_cells(db, experiment: str, key) -> dict[tuple, list[float]]:
    """{key(config): [risk of each done seed]}, straight from the store's rows."""
    cells: dict[tuple, list[float]] = {}
    with Store(db) as store:
        for row in store.runs(experiment, status="done"):
            cells.setdefault(key(row["config"]), []).append(row["metrics"]["risk"])
    return cells


def _mean_sd(risks: list[float]) -> tuple[float, float]:
    return statistics.fmean(risks), statistics.stdev(risks)


# the report's means add the same two floats in another order (numpy vs fmean): they agree
# to a few ulps, far inside 1e-12 relative; a wrong statistic (the median of Fig. 1's 3 seeds,
# sd with ddof 0: √(3/2) off, pooled widths, another n) is off by far more
REL = 1e-12


def _fig1_key(config):
    return (config["method"], config["params"]["width"], config["n"])


def _fig2_key(config):
    return (config["params"]["width"], config["n"], config["transfer"]["N"])


def test_risk_table_is_the_store_mean_and_sd_over_seeds(built):
    cells = _store_cells(built["db"], "fig1", _fig1_key)
    table = list(csv.DictReader((built["out"] / "fig1-risk.csv").open()))
    assert len(table) == len(cells) == 18
    markdown = (built["out"] / "fig1-risk.md").read_text().splitlines()[2:]
    for row, line in zip(table, markdown):
        risks = cells[(row["method"], int(row["width"]), int(row["n"]))]
        mean, sd = _mean_sd(risks)
        assert float(row["mean"]) == pytest.approx(mean, rel=REL)
        assert float(row["sd"]) == pytest.approx(sd, rel=REL)
        assert (float(row["min"]), float(row["max"])) == (min(risks), max(risks))
        assert int(row["count"]) == len(risks) == 3
        # the Markdown row shows the same numbers, 4 significant digits
        cells_md = [c.strip() for c in line.strip("|").split("|")]
        assert cells_md[:4] == [row["method"], row["width"], "4", row["n"]]
        assert cells_md[4:6] == [f"{float(row['mean']):.4g}", f"{float(row['sd']):.4g}"]


def test_risk_figure_plots_the_store_means_and_bands(built):
    cells = _store_cells(built["db"], "fig1", _fig1_key)
    method_of = {label: method for method, label in LABELS.items()}
    axes = built["plotted"]["fig1-risk"]
    assert [ax["title"] for ax in axes] == ["width = 4", "width = 8"]
    checked = 0
    for ax in axes:
        width = int(ax["title"].split("= ")[1])
        assert len(ax["lines"]) == len(ax["bands"]) == 3
        for (label, xs, ys), band in zip(ax["lines"], ax["bands"]):
            method = method_of[label]
            ns = [n for (m, w, n) in cells if m == method and w == width]
            assert xs == pytest.approx([log_d(n, 4) for n in sorted(ns)], rel=REL)
            for x, y, n in zip(xs, ys, sorted(ns)):
                mean, sd = _mean_sd(cells[(method, width, n)])
                assert y == pytest.approx(mean, rel=REL)
                at_x = [v[1] for v in band if abs(v[0] - x) < 1e-12 and math.isfinite(v[1])]
                if mean <= Y_CLIP:  # the band is left out above the clipped axis
                    assert min(at_x) == pytest.approx(mean - sd, rel=1e-9, abs=1e-12)
                    assert max(at_x) == pytest.approx(mean + sd, rel=1e-9)
                checked += 1
    assert checked == 18


@pytest.mark.parametrize("width", [4, 8])
def test_transfer_table_and_figure_are_the_store_numbers_of_one_width(built, width):
    cells = {k[1:]: v for k, v in _store_cells(built["db"], "fig2", _fig2_key).items()
             if k[0] == width}  # fmt: skip
    stem = f"fig2-transfer-one_step@w{width}"
    table = list(csv.DictReader((built["out"] / f"{stem}.csv").open()))
    assert len(table) == len(cells) == 4
    for row in table:
        mean, sd = _mean_sd(cells[(int(row["n"]), int(row["N"]))])
        assert float(row["mean"]) == pytest.approx(mean, rel=REL)
        assert float(row["sd"]) == pytest.approx(sd, rel=REL)
    left, right = built["plotted"][stem]
    for ax, x_key in ((left, "n"), (right, "N")):
        assert len(ax["lines"]) == 2
        for label, xs, ys in ax["lines"]:
            other = int(label.split("= ")[1].split(" ")[0])  # "N = 4 (d^1)" → 4
            points = sorted(
                (n if x_key == "n" else N, _mean_sd(risks)[0])
                for (n, N), risks in cells.items()
                if (N if x_key == "n" else n) == other
            )
            assert xs == pytest.approx([log_d(x, 4) for x, _ in points], rel=REL)
            assert ys == pytest.approx([mean for _, mean in points], rel=REL)


def test_every_expected_figure_and_table_is_written(report):
    out, index, page = report
    assert index == out / "index.html"
    # one transfer figure per width: Fig. 2 is about one network, widths are not mixed
    expected = {"fig1-risk", "fig2-transfer-one_step@w4", "fig2-transfer-one_step@w8"}
    for stem in expected:
        for fmt in ("png", "pdf", *TABLE_FORMATS):
            path = out / f"{stem}.{fmt}"
            assert path.is_file() and path.stat().st_size > 0, path
        assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
    assert page.headings == ["fig1: Fig. 1 shrunk", "fig2: Fig. 2 shrunk"]


def test_html_is_self_contained_and_its_links_resolve(report):
    out, _, page = report
    # Fig. 1's panels in one figure, its alignment vs n (a single-index target: the weak-recovery
    # threshold is drawn on it), one Fig. 2 per width
    assert len(page.images) == 4
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:4] == b"\x89PNG"
    assert page.links, "the page links its PDF and table files"
    for href in page.links:
        assert "://" not in href and not href.startswith("/")
        assert (out / href).is_file(), href
    linked = set(page.links)
    assert "fig1-alignment.pdf" in linked
    for stem in ("fig1-risk", "fig2-transfer-one_step@w4", "fig2-transfer-one_step@w8"):
        assert {f"{stem}.{fmt}" for fmt in ("pdf", *TABLE_FORMATS)} <= linked


def test_tables_have_one_row_per_cell(report):
    out, _, _ = report
    fig1 = list(csv.DictReader((out / "fig1-risk.csv").open()))
    # 3 methods × 2 widths × 3 values of n, each the mean of 3 seeds
    assert len(fig1) == 18
    assert {(r["method"], r["width"]) for r in fig1} == {
        (m, w) for m in ("one_step", "random_features", "ntk") for w in ("4", "8")
    }
    assert {"mean", "sd", "count"} <= set(fig1[0]) and {r["count"] for r in fig1} == {"3"}
    for width in (4, 8):
        fig2 = list(csv.DictReader((out / f"fig2-transfer-one_step@w{width}.csv").open()))
        assert len(fig2) == 4 and {(r["n"], r["N"]) for r in fig2} == {
            ("4", "4"), ("4", "8"), ("16", "4"), ("16", "8")
        }  # fmt: skip
        assert {r["count"] for r in fig2} == {"2"}  # 2 seeds each: the widths are not pooled
    markdown = (out / "fig1-risk.md").read_text().splitlines()
    assert len(markdown) == 2 + 18 and markdown[1].startswith("|---")
    latex = (out / "fig1-risk.tex").read_text()
    assert latex.startswith(r"\begin{tabular}") and latex.count(r" \\") == 1 + 18


def test_risk_figure_has_the_papers_form():
    target = build_target({"kind": "paper", "seed": 0}, 10)
    records = [
        {"method": method, "width": width, "d": 10, "n": n, "seed": seed, "risk": risk}
        for method, risk in (("one_step", 0.2), ("random_features", 0.6), ("ntk", 0.7))
        for width in (100, 1000)
        for n in (10, 100, 1000)
        for seed, risk in ((0, risk * 0.9), (1, risk * 1.1))
    ]
    fig = figure_risk_vs_n(records, target, title="t", panel_key="width")
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["width = 100", "width = 1000"]
    for ax in axes:
        assert ax.get_xlabel() == "log_d(n)"
        curves = [line for line in ax.get_lines() if line.get_marker() == "o"]
        assert len(curves) == 3  # one line per method, at x = log_10 n = 1, 2, 3
        for line in curves:
            assert list(line.get_xdata()) == pytest.approx([1.0, 2.0, 3.0])
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == 3  # mean ± sd over seeds, one per method
        horizontal = {
            round(float(line.get_ydata()[0]), 6)
            for line in ax.get_lines()
            if line.get_linestyle() == "--"
        }
        # the zero predictor and the best quadratic (degree-≤2, and ≤3: He4 is all that is left)
        assert horizontal == {1.0, 0.5}
        labels = [line.get_label() for line in ax.get_lines()]
        assert any(label.startswith("Theorem 1: n = d²κ²r") for label in labels)
        assert "kernel staircase (theory)" in labels
    assert axes[0].get_ylabel().startswith("excess L2 risk")
    legend_labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"Algorithm 1 (one step)", "random features", "NTK (linearised network)",
            "zero predictor"} <= set(legend_labels)  # fmt: skip
    # the legend sits below the panels, not on them
    fig.canvas.draw()
    legend_box = fig.legends[0].get_window_extent()
    for ax in axes:
        assert legend_box.y1 <= ax.get_window_extent().y0 + 1


def test_transfer_figure_has_both_views_and_legends_off_the_curves():
    records = [
        {"method": "one_step", "d": 10, "n": n, "N": N, "seed": seed, "risk": 1.0 / (1 + n * N / 1e4) + 0.01 * seed}
        for n in (10, 100, 1000)
        for N in (3, 10, 100)
        for seed in (0, 1)
    ]  # fmt: skip
    fig = figure_transfer(records, d=10, title="t")
    left, right = fig.axes
    assert left.get_xlabel().startswith("log_d(n)") and right.get_xlabel().startswith("log_d(N)")
    # one line per value of the other count, labelled with the count and its half-grid power
    assert [t.get_text() for t in left.get_legend().get_texts()] == [
        "N = 3 (d^0.5)", "N = 10 (d^1)", "N = 100 (d^2)", "zero predictor"
    ]  # fmt: skip
    assert [t.get_text() for t in right.get_legend().get_texts()][:3] == [
        "n = 10 (d^1)", "n = 100 (d^2)", "n = 1000 (d^3)"
    ]  # fmt: skip
    fig.canvas.draw()
    for ax in (left, right):
        assert ax.get_legend().get_window_extent().y1 <= ax.get_window_extent().y0 + 1
    box_left, box_right = (ax.get_legend().get_window_extent() for ax in (left, right))
    assert box_left.x1 <= box_right.x0  # the two legends do not overlap


def test_scaling_figure_says_where_the_threshold_was_not_reached():
    from replearn.experiments.report import figure_scaling

    fits = {
        "one_step": {"n_star": {8: 200.0, 16: 800.0}, "slope": 2.0, "intercept": math.log(200 / 64),
                     "ci": (1.9, 2.1)},
        "random_features": {"n_star": {8: 3000.0, 16: None}, "slope": None},
        "ntk": {"n_star": {8: None, 16: None}, "slope": None},
    }  # fmt: skip
    labels = [t.get_text() for t in figure_scaling(fits).axes[0].get_legend().get_texts()]
    assert "Algorithm 1 (one step): slope 2.00 [1.90, 2.10]" in labels
    assert "random features: threshold reached only at d = 8" in labels
    assert "NTK (linearised network): threshold reached at no d" in labels
