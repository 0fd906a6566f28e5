"""The report page explains itself: provenance, the commands, a paragraph per figure, and
theory lines that cannot be mistaken for a method's band."""

from __future__ import annotations

import re

import replearn
from replearn.experiments.api import run_experiment, write_report
from replearn.experiments.report.figures import COLORS, THEORY_COLOR, _colors
from replearn.experiments.spec import parse_spec

SPEC = """
name: page
description: a small check of the page
target: {kind: paper}
methods:
  - {name: synthetic}
d: [10]
n: [10, 100, 1000]
seeds: 2
n_holdout: 0
n_test: 10
"""


def test_page_has_provenance_commands_and_captions(tmp_path):
    db = tmp_path / "r.sqlite"
    run_experiment(parse_spec(SPEC), db=db, quiet=True)
    page = write_report(db, tmp_path / "report").read_text()
    assert f"<dt>replearn</dt><dd>{replearn.__version__}</dd>" in page
    assert re.search(r"<dt>date</dt><dd>\d{4}-\d\d-\d\d \d\d:\d\d UTC</dd>", page)
    assert "<dt>machine</dt>" in page and "runs made with</dt><dd>replearn " in page
    assert f"replearn run &lt;your spec&gt;.yaml --db {db}" in page  # not a shipped config
    assert f"replearn report --db {db} --experiment page --out {tmp_path / 'report'}" in page
    caption = re.search(r"<figcaption><b>What this shows</b>(.*?)</figcaption>", page).group(1)
    assert caption.startswith("A small check of the page: the excess L2 risk")
    assert "Theorem 1 expects Algorithm 1 to learn f* from about d²κ²r = 100 samples" in caption
    assert "Measured at the largest n = 1,000" in caption
    for name in ("page-risk.png", "page-risk.pdf", "page-risk.csv", "page-risk.tex"):
        assert f"<a href='{name}'>" in page and (tmp_path / "report" / name).is_file()


def test_theory_lines_and_method_variants_have_their_own_colours():
    assert THEORY_COLOR not in COLORS.values()
    methods = ["one_step[label_transform=None]", "one_step[label_transform=square]",
               "random_features", "ntk"]  # fmt: skip
    colors = _colors(methods)
    assert len(set(colors.values())) == len(methods) and THEORY_COLOR not in colors.values()
    assert colors["random_features"] == COLORS["random_features"]
