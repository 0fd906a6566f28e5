"""Every gallery example (examples/plot_*.py) runs on its own and ends in a figure.

Each runs in a fresh interpreter, as a reader would run it (``python examples/plot_….py``),
with the Agg backend; ``plt.show()`` then leaves the figures open, so the wrapper can check
that the script made one and printed its numbers. The six that take more than about ten
seconds on two cores are marked slow (``make test-fast`` skips them; ``make test`` runs all).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))
SLOW = {"plot_02_separation", "plot_03_d2_law", "plot_04_transfer", "plot_05_degenerate_target",
        "plot_08_full_training", "plot_10_label_transforms"}  # fmt: skip

RUN_AND_COUNT_FIGURES = """
import runpy, sys
import matplotlib.pyplot as plt
runpy.run_path(sys.argv[1], run_name="__main__")
print(f"FIGURES={len(plt.get_fignums())}")
"""


def test_gallery_has_examples_and_a_readme():
    assert len(EXAMPLES) >= 9
    assert (ROOT / "examples" / "README.rst").is_file()  # sphinx-gallery's index page
    assert SLOW <= {path.stem for path in EXAMPLES}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_has_a_titled_docstring(path):
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert docstring, f"{path.name}: sphinx-gallery needs a docstring with a title"
    title, underline = docstring.splitlines()[:2]
    assert title.strip() and set(underline.strip()) == {"="}, f"{path.name}: no RST title"


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=pytest.mark.slow) if p.stem in SLOW else p for p in EXAMPLES],
    ids=lambda p: p.stem,
)
def test_example_runs_and_makes_a_figure(path, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_COUNT_FIGURES, str(path)],
        cwd=tmp_path,  # an example must not depend on the working directory
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{path.name} failed:\n{done.stderr[-3000:]}"
    lines = done.stdout.strip().splitlines()
    assert lines[-1].startswith("FIGURES=") and int(lines[-1][8:]) >= 1, f"{path.name}: no figure"
    assert len(lines) >= 2, f"{path.name}: printed no numbers"
