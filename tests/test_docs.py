"""The docs site: API reference coverage, the CLI page, the guide's and docstrings' examples,
the `-W` build, and the built pages in a real browser.

The build and the browser test are slow (the build executes the gallery). The browser test
drives Debian's Chromium (``/usr/bin/chromium``, installed by ``.ci/run``) with Playwright's
Python API; it skips with its reason where either is missing.
"""

from __future__ import annotations

import doctest
import functools
import http.server
import importlib
import inspect
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest

import replearn
import replearn.experiments
import replearn.learners

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
API_SOURCES = sorted((DOCS / "api").glob("*.rst"))
CHROMIUM = Path("/usr/bin/chromium")


def _api_text() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in API_SOURCES)


def _documented_names(text: str) -> set[str]:
    """Names listed as autosummary entries, automodule targets or page titles."""
    names = set(re.findall(r"^ {3}([A-Za-z_][\w.]*)\s*$", text, re.M))  # autosummary items
    names |= set(re.findall(r"^\.\. automodule:: replearn\.(\w+)", text, re.M))
    return names


def _learner_classes() -> list[type]:
    """Every public class of the replearn.learners package that has fit and predict."""
    found = {}
    for info in pkgutil.walk_packages(replearn.learners.__path__, "replearn.learners."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and not name.startswith("_")
                and obj.__module__ == module.__name__
                and callable(getattr(obj, "fit", None))
                and callable(getattr(obj, "predict", None))
            ):
                found[name] = obj
    return [found[name] for name in sorted(found)]


def test_api_reference_lists_every_public_name_and_learner():
    documented = _documented_names(_api_text())
    public = [name for name in replearn.__all__ if name != "__version__"]
    learners = [cls.__name__ for cls in _learner_classes()]
    assert {"OneStepNetwork", "RandomFeatures", "FullTraining"} <= set(learners)
    missing = sorted((set(public) | set(learners)) - documented)
    assert not missing, f"missing from docs/api/*.rst: {missing}"


def test_api_reference_names_every_experiments_name():
    text = _api_text()
    missing = [n for n in replearn.experiments.__all__ if not re.search(rf"\b{n}\b", text)]
    assert not missing, f"replearn.experiments names missing from docs/api/index.rst: {missing}"


def test_api_reference_check_catches_a_missing_name():
    # the check above must fail when a name is dropped from the sources
    text = _api_text().replace("   OneStepNetwork\n", "")
    assert "OneStepNetwork" not in _documented_names(text)


def test_cli_page_is_rendered_from_the_parser():
    text = (DOCS / "cli.rst").read_text(encoding="utf-8")
    module = re.search(r":module: ([\w.]+)", text).group(1)
    func = re.search(r":func: (\w+)", text).group(1)
    parser = getattr(importlib.import_module(module), func)()
    assert parser.prog == re.search(r":prog: (\S+)", text).group(1)
    commands = parser._subparsers._group_actions[0].choices
    assert {"run", "report", "demo", "theory"} <= set(commands)


def _markdown_doctests(path: Path) -> doctest.DocTest:
    # a closing ``` fence would be read as expected output: blank the fence lines
    text = re.sub(r"^```.*$", "", path.read_text(encoding="utf-8"), flags=re.M)
    return doctest.DocTestParser().get_doctest(text, {}, path.name, str(path), 0)


@pytest.mark.parametrize("page", sorted((DOCS / "guide").glob("*.md")), ids=lambda p: p.name)
def test_guide_examples_run(page):
    test = _markdown_doctests(page)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0, f"{page.name}: {runner.failures} example(s) failed (see above)"


def test_markdown_doctest_parser_catches_a_wrong_output(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```python\n>>> 1 + 1\n3\n```\n", encoding="utf-8")
    runner = doctest.DocTestRunner()
    runner.run(_markdown_doctests(page), out=lambda _: None)
    assert (runner.tries, runner.failures) == (1, 1)


def _replearn_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(replearn.__path__, "replearn."):
        names.append(info.name)
    return sorted(names)


def _docstring_tests(module) -> dict[str, doctest.DocTest]:
    """The doctests the finder collects from a module, by qualified name (empty ones too)."""
    finder = doctest.DocTestFinder(exclude_empty=False)
    return {test.name: test for test in finder.find(module, module.__name__)}


def _run_docstring_examples(module, out=None) -> doctest.TestResults:
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in _docstring_tests(module).values():
        if test.examples:
            runner.run(test, out=out)
    return runner.summarize(verbose=False)


@pytest.mark.parametrize("module_name", _replearn_modules())
def test_docstring_examples(module_name):
    """Every ``>>>`` example in replearn's docstrings runs and prints what it says."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:  # an optional dependency (ray) that is not installed
        pytest.skip(f"{module_name} needs {err.name}")
    failed, _ = _run_docstring_examples(module)
    assert failed == 0, f"{module_name}: {failed} docstring example(s) failed (see above)"


WRONG_OUTPUTS = '''
def f():
    """
    >>> 1 + 1
    3
    """

class C:
    @property
    def p(self):
        """
        >>> 2 * 2
        4
        >>> "right"
        'wrong'
        """
'''


def test_docstring_runner_catches_a_wrong_output():
    # the runner above counts a wrong expected output, in a function and in a property
    module = types.ModuleType("fake_module")
    exec(WRONG_OUTPUTS, module.__dict__)
    failed, attempted = _run_docstring_examples(module, out=lambda _: None)
    assert (failed, attempted) == (2, 3)


# Names whose docstrings must carry a doctested Examples section, beyond every class and
# function of replearn.__all__ and every learner (issue 14): the calls users make first.
EXAMPLES_REQUIRED = {
    "replearn.targets": ["MultiIndexTarget.random", "MultiIndexTarget.from_expression",
                         "MultiIndexTarget.hessian", "MultiIndexTarget.kappa",
                         "MultiIndexTarget.degree_energy", "haar_orthonormal_rows"],
    "replearn.data": ["DataStream.chunks", "DataStream.get"],
    "replearn.hermite": ["he"],
    "replearn.network": ["symmetric_init"],
    "replearn.theory": ["one_step_threshold", "one_step_width", "kernel_learnable_degree",
                        "best_degree_risk", "kernel_plateau", "kernel_staircase",
                        "kernel_threshold", "predicted_exponents", "population_step_direction",
                        "summary", "population_label_statistics", "transformed_latent_hessian",
                        "transformed_hessian", "label_transform_report"],
    "replearn.label_transforms": ["resolve_label_transform", "LabelTransform"],
    "replearn.experiments.spec": ["load_spec", "parse_spec"],
    "replearn.experiments.store": ["Store"],
    "replearn.experiments.api": ["run_experiment"],
}  # fmt: skip


def _required_examples() -> list[tuple[str, str]]:
    """(module, qualified name in it) of every object that must have a doctested example."""
    names = [(module, name) for module, names in EXAMPLES_REQUIRED.items() for name in names]
    for public in replearn.__all__:
        value = getattr(replearn, public)
        if inspect.isclass(value) or inspect.isfunction(value):
            names.append((value.__module__, value.__qualname__))
    names += [(cls.__module__, cls.__qualname__) for cls in _learner_classes()]
    return sorted(set(names))


def _lookup(module_name: str, qualname: str):
    value = importlib.import_module(module_name)
    for part in qualname.split("."):
        value = inspect.getattr_static(value, part)
    return value.__func__ if isinstance(value, classmethod | staticmethod) else value


@pytest.mark.parametrize("module_name, qualname", _required_examples(), ids=lambda v: v)
def test_public_name_has_a_doctested_example(module_name, qualname):
    """The doctest finder that test_docstring_examples runs collects examples from it."""
    tests = _docstring_tests(importlib.import_module(module_name))
    test = tests.get(f"{module_name}.{qualname}")
    assert test is not None and test.examples, f"{qualname}: no >>> example the finder collects"


_PARAMETERS = re.compile(r"^Parameters\n-{10}$", re.M)
# the modules whose public names the API reference renders (docs/api/*.rst)
API_MODULES = ("replearn.experiments", "replearn.hermite", "replearn.theory",
               "replearn.label_transforms", "replearn.theory.exponents", "replearn.links",
               "replearn.quadrature")  # fmt: skip
NOT_NUMPYDOC = {"StepLabelMoments"}  # running sums of the streamed step, fields in comments


def _api_callables() -> list[tuple[str, str]]:
    """(module, qualname) of every function and class the API reference renders, and the
    public methods of the learners and of DataStream and MultiIndexTarget."""
    names = set(_required_examples())
    for module_name in API_MODULES:
        module = importlib.import_module(module_name)
        for public in module.__all__:
            value = getattr(module, public)
            if (inspect.isclass(value) or inspect.isfunction(value)) and public not in NOT_NUMPYDOC:
                names.add((value.__module__, value.__qualname__))
    classes = [
        *_learner_classes(), replearn.DataStream, replearn.MultiIndexTarget, replearn.LinkTarget,
    ]  # fmt: skip
    for cls in classes:
        for name, value in vars(cls).items():
            if not name.startswith("_") and inspect.isfunction(value):
                names.add((cls.__module__, f"{cls.__qualname__}.{name}"))
    return sorted(names)


@pytest.mark.parametrize("module_name, qualname", _api_callables(), ids=lambda v: v)
def test_public_name_documents_its_parameters(module_name, qualname):
    """numpydoc: a public callable of two or more arguments has a Parameters section."""
    value = _lookup(module_name, qualname)
    if isinstance(value, property) or (inspect.isclass(value) and issubclass(value, Exception)):
        return  # a property takes no arguments, an exception its one-line message
    arguments = [p for p in inspect.signature(value).parameters if p not in ("self", "cls")]
    if len(arguments) >= 2:
        assert _PARAMETERS.search(inspect.getdoc(value) or ""), f"{qualname}: no Parameters"


def test_parameters_check_catches_a_missing_section():
    def documented(width, seed):
        """One line.

        Parameters
        ----------
        width : int
            m, even.
        seed : int
        """

    assert _PARAMETERS.search(inspect.getdoc(documented))
    assert not _PARAMETERS.search("One line.\n\nwidth : m, even\nseed : int")


# -- the build and the browser -----------------------------------------------------------------
@functools.cache
def _sphinx_missing() -> str | None:
    for name in ("sphinx", "pydata_sphinx_theme", "sphinx_gallery", "myst_parser", "sphinxarg"):
        try:
            importlib.import_module(name)
        except ImportError:
            return f"the docs extras are not installed ({name}): pip install -e '.[docs]'"
    return None


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    """Build the site as `make docs` does (-W: any warning fails), into a temporary folder.

    sphinx-gallery keeps its executed examples in docs/auto_examples and reruns only changed
    ones, so after `make docs` this is quick.
    """
    reason = _sphinx_missing()
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("docs")
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    command += ["-d", str(out / "doctrees"), str(DOCS), str(out / "html")]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"sphinx -W failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return out / "html"


@pytest.mark.slow
def test_docs_build_without_warnings(built_site):
    assert (built_site / "index.html").is_file()
    for page in ("api/generated/replearn.OneStepNetwork.html", "cli.html", "results.html"):
        assert (built_site / page).is_file(), page
    gallery = built_site / "auto_examples"
    examples = sorted(p.stem for p in (ROOT / "examples").glob("plot_*.py"))
    assert examples and all((gallery / f"{name}.html").is_file() for name in examples)
    # an executed example embeds the figure it made
    assert (
        "sphx_glr_plot_01_first_step_001.png" in (gallery / "plot_01_first_step.html").read_text()
    )
    assert "--executor" in (built_site / "cli.html").read_text()  # rendered from the parser


def _serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _small_report(tmp_path: Path) -> Path:
    """A `replearn report` of a small grid of the engine's deterministic `synthetic` method."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: browser\ntarget: {kind: paper}\nmethods: [{name: synthetic}]\n"
        "d: [10]\nn: ['d^1', 'd^2', 'd^3']\nseeds: 2\nn_holdout: 10\nn_test: 10\n",
        encoding="utf-8",
    )
    db, out = tmp_path / "runs.sqlite", tmp_path / "report"
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT / "src")}
    cli = [sys.executable, "-c", "import sys; from replearn.cli import main; sys.exit(main())"]
    for args in (["run", str(spec), "--db", str(db), "--executor", "serial", "--quiet"],
                 ["report", "--db", str(db), "--out", str(out)]):  # fmt: skip
        done = subprocess.run(cli + args, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "index.html").is_file()
    return out


def _console_error(errors: list[str], message) -> None:
    """Collect console errors, with the URL a failed load was for.

    The one error not collected: a 404 for /favicon.ico on a page that names no icon — the
    browser's own request, not one the page made (the docs name their icon; the report does
    not yet).
    """
    if message.type != "error":
        return
    url = (message.location or {}).get("url", "")
    if url.endswith("/favicon.ico") and "404" in message.text:
        return
    errors.append(f"{message.text} ({url})" if url else message.text)


@pytest.mark.slow
def test_pages_load_in_chromium_without_errors(built_site, tmp_path):
    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright's Python API is not installed (pip install playwright)")
    report = _small_report(tmp_path)
    docs_server, docs_url = _serve(built_site)
    report_server, report_url = _serve(report)
    pages = {
        "index": (f"{docs_url}/index.html", 0),
        "gallery": (f"{docs_url}/auto_examples/plot_01_first_step.html", 1),
        "report": (f"{report_url}/index.html", 1),
    }
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=flags)
            try:
                for name, (url, min_images) in pages.items():
                    page = browser.new_page()
                    errors = []
                    page.on("console", functools.partial(_console_error, errors))
                    page.on("pageerror", lambda exc, e=errors: e.append(str(exc)))
                    response = page.goto(url, wait_until="load")
                    assert response is not None and response.ok, f"{name}: {url} did not load"
                    page.wait_for_load_state("networkidle")
                    widths = page.eval_on_selector_all(
                        "img", "imgs => imgs.map(i => [i.currentSrc || i.src, i.naturalWidth])"
                    )
                    assert not errors, f"{name}: console errors {errors}"
                    assert len(widths) >= min_images, f"{name}: {len(widths)} images"
                    broken = [src for src, width in widths if not width]
                    assert not broken, f"{name}: images that did not render: {broken}"
                    page.close()
            finally:
                browser.close()
    finally:
        docs_server.shutdown()
        report_server.shutdown()
