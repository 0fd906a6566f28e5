"""The installed package is complete: a wheel built from this checkout, installed into a fresh
virtual environment, runs the shipped configs by name from a directory outside the checkout.

The new environment gets replearn from the wheel only (``pip install --no-deps --no-index``);
its dependencies (torch, numpy, …) come from the environment running the tests, through a
``.pth`` line naming that environment's site-packages — nothing is downloaded, so the test
runs offline and on CI (where ``make test`` made .venv). Lines of a ``.pth`` file only add
paths: the test environment's own (editable) replearn, installed by a ``.pth`` hook there,
is not seen, which the test checks.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(args, cwd, env, timeout=600):
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(bin folder of a fresh venv holding the wheel, a clean environment, a work folder)."""
    pytest.importorskip("setuptools")
    root = tmp_path_factory.mktemp("package")
    source = root / "source"  # a copy: building writes build/ and *.egg-info next to the code
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = root / "wheels"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "REPLEARN_"))}
    env["PIP_NO_INDEX"] = "1"
    _run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
          "-w", wheels, "-q"], source, env)  # fmt: skip
    (wheel,) = wheels.glob("replearn-*.whl")
    environment = root / "venv"
    venv.EnvBuilder(with_pip=True).create(environment)
    python = environment / "bin" / "python"
    target = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                       root, env).stdout.strip())  # fmt: skip
    (target / "test_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel], root, env)
    work = root / "elsewhere"
    work.mkdir()
    return environment / "bin", env, work, wheel


def test_wheel_ships_every_config(installed):
    _, _, _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        p.relative_to(REPO / "src").as_posix()
        for p in (REPO / "src/replearn/configs").rglob("*.yaml")
    }
    assert shipped and shipped <= names


def test_installed_replearn_is_the_wheel(installed):
    bin_dir, env, work, _ = installed
    where = _run([bin_dir / "python", "-c", "import replearn; print(replearn.__file__, replearn.__version__)"],
                 work, env).stdout  # fmt: skip
    path, version = where.split()
    assert Path(path).is_relative_to(bin_dir.parent), path  # not the checkout's src/
    from replearn import __version__

    assert version == __version__


def test_configs_and_demo_from_elsewhere(installed):
    bin_dir, env, work, _ = installed
    listing = _run([bin_dir / "replearn", "configs"], work, env).stdout
    for name in ("demo", "paper-fig1", "paper-fig2", "scaling"):
        assert name in listing
    _run([bin_dir / "replearn", "demo", "--quick", "--executor", "serial", "--quiet"], work, env)
    assert (work / "results" / "demo-report" / "index.html").is_file()
    # a reproduction of the paper at smoke-test size, by name
    _run([bin_dir / "replearn", "run", "paper-fig2", "--quick", "--executor", "serial",
          "--quiet", "--db", "paper.sqlite"], work, env)  # fmt: skip
    status = _run([bin_dir / "replearn", "status", "--db", "paper.sqlite"], work, env).stdout
    assert "paper-fig2-quick" in status
