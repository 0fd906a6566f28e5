"""Every module of src/replearn imports on its own, and imports flow one way.

The layers, top to bottom (docs/architecture.md, "Layout")::

    cli → experiments.api → experiments.report → experiments.scaling → experiments.executors
        → experiments.grid → experiments.store → experiments.spec → experiments.analysis
        → experiments.methods → experiments.target_kinds → learners (+ metrics, theory)
        → linear algebra (+ network) → data → targets (links, quadrature, expression, hermite)
        → validation

A module may import any module of a *lower* layer, never one of a higher layer, and the
modules of one layer must not import each other in a circle. The check parses every
module's source (AST), so imports inside functions count too: a function-local import
cannot hide a back-edge. No module imports another module's private (``_name``) names.
"""

from __future__ import annotations

import ast
import fnmatch
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import replearn
import replearn.experiments

SRC = Path(__file__).resolve().parents[1] / "src"

# top to bottom; a name matches a layer when it equals a pattern or fits a 'package.*' one
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("cli", ("replearn.cli",)),
    ("api", ("replearn.experiments", "replearn.experiments.api")),
    ("report", ("replearn.experiments.report", "replearn.experiments.report.*")),
    ("frames", ("replearn.experiments.frames",)),
    ("scaling", ("replearn.experiments.scaling",)),
    ("executors", ("replearn.experiments.executors",)),
    ("grid", ("replearn.experiments.grid",)),
    ("store", ("replearn.experiments.store", "replearn.experiments.paths")),
    (
        "spec",
        (
            "replearn.experiments.spec",
            "replearn.experiments.yaml_strict",
            "replearn.experiments.catalog",
            "replearn.experiments.published",
        ),
    ),
    ("analysis", ("replearn.experiments.analysis",)),
    ("methods", ("replearn.experiments.methods",)),
    ("target_kinds", ("replearn.experiments.target_kinds",)),
    (
        "learners",
        (
            "replearn",
            "replearn.learners",
            "replearn.learners.*",
            "replearn.metrics",
            "replearn.theory",
            "replearn.theory.*",
        ),
    ),  # fmt: skip
    (
        "linalg",
        (
            "replearn.linalg",
            "replearn.linalg.*",
            "replearn.network",
            "replearn.kernels",
        ),
    ),  # fmt: skip
    ("data", ("replearn.data", "replearn.label_transforms")),
    (
        "targets",
        (
            "replearn.targets",
            "replearn.links",
            "replearn.quadrature",
            "replearn.expression",
            "replearn.formula",
            "replearn.activations",
            "replearn.hermite",
        ),
    ),  # fmt: skip
    (
        "validation",
        (
            "replearn.validation",
            "replearn.limits",
            "replearn._threads",
            "replearn._version",
            "replearn.progress",
        ),
    ),
]


def module_sources() -> dict[str, str]:
    """{dotted module name: source} for every .py file under src/replearn."""
    out = {}
    for path in sorted((SRC / "replearn").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path.read_text(encoding="utf-8")
    return out


MODULES = module_sources()


def layer_of(module: str) -> int | None:
    for index, (_, patterns) in enumerate(LAYERS):
        if any(module == p or fnmatch.fnmatchcase(module, p) for p in patterns):
            return index
    return None


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(sources: dict[str, str]) -> list[tuple[str, str, int, list[str]]]:
    """(importer, imported replearn module, line, names) for every import, at any depth."""
    edges = []
    for module, source in sources.items():
        is_package = f"{module}.__init__" not in sources and any(
            other.startswith(module + ".") for other in sources
        )
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "replearn":
                        edges.append((module, alias.name, node.lineno, []))
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(module, is_package, node)
                if target.split(".")[0] != "replearn":
                    continue
                for alias in node.names:
                    # `from replearn import theory`: the edge goes to the submodule
                    sub = f"{target}.{alias.name}"
                    if sub in sources:
                        edges.append((module, sub, node.lineno, []))
                    else:
                        edges.append((module, target, node.lineno, [alias.name]))
    return edges


def layer_violations(sources: dict[str, str]) -> list[str]:
    problems = [f"{m}: in no layer of tests/test_imports.py LAYERS" for m in sources
                if layer_of(m) is None]  # fmt: skip
    for importer, imported, line, _ in imports(sources):
        if imported == importer or layer_of(importer) is None or layer_of(imported) is None:
            continue
        if layer_of(imported) < layer_of(importer):
            problems.append(
                f"{importer} (layer {LAYERS[layer_of(importer)][0]}) imports {imported} "
                f"(layer {LAYERS[layer_of(imported)][0]}, above it) at line {line}"
            )
    return problems


def cycles(sources: dict[str, str]) -> list[list[str]]:
    graph: dict[str, set[str]] = {m: set() for m in sources}
    for importer, imported, _, _ in imports(sources):
        if imported in graph and imported != importer:
            graph[importer].add(imported)
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def private_imports(sources: dict[str, str]) -> list[str]:
    """``from other import _name`` and ``other_module._name`` across modules."""
    problems = []
    for importer, imported, line, names in imports(sources):
        for name in names:
            if name.startswith("_") and not name.startswith("__") and imported != importer:
                problems.append(f"{importer} imports {imported}.{name} at line {line}")
    for module, source in sources.items():
        tree = ast.parse(source)
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("replearn"):
                        aliases[alias.asname or alias.name.split(".")[0]] = alias.name
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("replearn"):
                for alias in node.names:
                    if f"{node.module}.{alias.name}" in sources:
                        aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                problems.append(f"{module} uses {aliases[node.value.id]}.{node.attr}")
    return problems


# -- the tests ---------------------------------------------------------------------------------
def test_imports_follow_the_layers():
    assert layer_violations(MODULES) == []


def test_no_import_cycles():
    assert cycles(MODULES) == []


def test_no_private_name_is_imported_across_modules():
    assert private_imports(MODULES) == []


def test_the_checks_catch_a_back_edge_a_cycle_and_a_private_import():
    """The checkers above, on sources with the faults they look for (they must not be blind)."""
    bad = dict(MODULES)
    # a back-edge hidden in a function: grid → api
    bad["replearn.experiments.grid"] += textwrap.dedent("""
        def sneaky():
            from replearn.experiments.api import run_experiment
            return run_experiment
    """)
    (problem,) = layer_violations(bad)
    assert "replearn.experiments.grid (layer grid) imports replearn.experiments.api" in problem
    # a cycle inside one layer, by relative imports
    bad = dict(MODULES)
    bad["replearn.experiments.report.files"] += "\nfrom . import figures\n"
    assert any("replearn.experiments.report.files" in c for c in cycles(bad))
    # a private name from another module, imported and used through the module
    bad = dict(MODULES)
    bad["replearn.cli"] += "\nfrom replearn.experiments.spec import _exponent\n"
    bad["replearn.cli"] += "\nimport replearn.experiments.store as store\nstore._target_label\n"
    assert len(private_imports(bad)) == 2
    # a new module must be placed in a layer
    bad = {**MODULES, "replearn.newcomer": ""}
    assert layer_violations(bad) == [
        "replearn.newcomer: in no layer of tests/test_imports.py LAYERS"
    ]


FRESH_IMPORTS = """
import os, sys, traceback
# third-party libraries first (they are not under test, and torch takes seconds to import);
# then each replearn module in its own forked child, with no other replearn module loaded
import numpy, torch, yaml, pydantic, matplotlib
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            __import__(name)
        except BaseException:
            sys.stderr.write(f"{name}: " + traceback.format_exc().strip().splitlines()[-1] + "\\n")
            sys.stderr.flush()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status:
        print(name)
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_every_module_imports_in_a_fresh_interpreter():
    process = subprocess.run(
        [sys.executable, "-c", FRESH_IMPORTS, *MODULES],
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "PYTHONPATH": str(SRC)},
    )
    assert process.returncode == 0, process.stderr
    assert process.stdout == "", process.stderr  # the modules that failed, one per line


def test_public_names_resolve():
    for package in (replearn, replearn.experiments):
        for name in package.__all__:
            assert getattr(package, name) is not None, f"{package.__name__}.{name}"
