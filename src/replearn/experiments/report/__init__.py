"""Reports of a results store: figures (PNG + PDF), tables (CSV, Markdown, LaTeX) and one
self-contained HTML page.

- :mod:`~replearn.experiments.report.figures`: the Fig. 1 / Fig. 2 forms, n*(d) and the
  scaling search's risk curves;
- :mod:`~replearn.experiments.report.tables`: aggregated rows as CSV, Markdown and LaTeX;
- :mod:`~replearn.experiments.report.page`: the HTML page;
- :mod:`~replearn.experiments.report.grid_experiment`: a grid experiment's section;
- :mod:`~replearn.experiments.report.scaling_experiment`: a scaling experiment's section;
- :mod:`~replearn.experiments.report.files`: atomic file writes.

Which section an experiment gets (grid or scaling) is decided in
:func:`replearn.experiments.api.write_report`, the entry point.
"""

from __future__ import annotations

from replearn.experiments.report.figures import (
    figure_risk_vs_n,
    figure_scaling,
    figure_scaling_curves,
    figure_transfer,
    save_figure,
)
from replearn.experiments.report.grid_experiment import grid_section
from replearn.experiments.report.page import write_html
from replearn.experiments.report.scaling_experiment import scaling_section
from replearn.experiments.report.tables import latex_table, markdown_table, table_rows, write_tables

__all__ = [
    "figure_risk_vs_n",
    "figure_transfer",
    "figure_scaling",
    "figure_scaling_curves",
    "save_figure",
    "table_rows",
    "write_tables",
    "markdown_table",
    "latex_table",
    "write_html",
    "grid_section",
    "scaling_section",
]
