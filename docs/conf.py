"""Sphinx configuration of the replearn docs site: `make docs` builds it into docs/_build/html.

The API reference is generated from the docstrings of the public names (``import replearn as
rl``: ``replearn.__all__``, and ``replearn.experiments``' public names) by autosummary; the
gallery (examples/plot_*.py) is executed by sphinx-gallery at every build; the CLI reference
is rendered from ``replearn.cli.build_parser`` by sphinx-argparse, so none of them can drift.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT / "src"))  # build against this checkout's source, installed or not
os.environ.setdefault("MPLBACKEND", "Agg")

import replearn  # noqa: E402

project = "replearn"
author = "the replearn authors"
copyright = "the replearn authors"
version = release = replearn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "sphinxarg.ext",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "figures/README*", "**/sg_execution_times.rst"]
templates_path = ["_templates"]
html_static_path = ["_static"]

# -- MyST: the results pages (results.md, performance.md, architecture.md) are included as
#    they are. Their links to files of the repository outside docs/ (configs/…, src/…,
#    benchmarks/…) are not documents of the site; MyST reports each as 'myst.xref_missing'.
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_ref_domains = ["std", "py"]  # sphinx-argparse's domain cannot resolve MyST links

# -- autodoc / autosummary / napoleon -------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
# set_fit_request / set_score_request: scikit-learn's metadata-routing setters, generated on
# every estimator whose fit takes more than (X, y); their docstrings cite scikit-learn's own
# glossary, which is not part of this site. They are scikit-learn's API, not replearn's.
autodoc_default_options = {
    "members": True,
    "member-order": "bysource",
    "show-inheritance": False,
    # fit, fit_stream, predict and score live once in BaseLearner: show them on every learner's
    # page, but not what scikit-learn's own bases add (get_params, set_params, …)
    "inherited-members": "BaseEstimator,RegressorMixin,_MetadataRequester,BaseModel,object",
    "exclude-members": "set_fit_request,set_score_request,set_predict_request,get_metadata_routing",
}
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
napoleon_preprocess_types = False

# -- sphinx-gallery: every examples/plot_*.py runs at build; a failing example fails the build
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": str(DOCS / "auto_examples"),
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "capture_repr": (),
    "write_computation_times": False,
}

# -- HTML ------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"replearn {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 7,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False
html_favicon = "_static/favicon.svg"  # else browsers ask for /favicon.ico and log a 404
# the theme's light/dark switch starts from this mode; left empty its script logs an error
html_context = {"default_mode": "auto"}

# pages without sub-pages have nothing to show in the left sidebar ("Section Navigation" over
# an empty column): give their width to the text
html_sidebars = {
    page: []
    for page in ("index", "results", "performance", "label_transforms", "beyond", "limits",
                 "architecture", "cli")
}  # fmt: skip
