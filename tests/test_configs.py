"""The shipped configs: listed, printed and run by name from any directory; --quick."""

from __future__ import annotations

from pathlib import Path

import pytest

from replearn.cli import main
from replearn.experiments.catalog import (
    CONFIG_DIR,
    find_config,
    quick_version,
    resolve_spec,
    shipped_configs,
)
from replearn.experiments.spec import load_spec
from replearn.experiments.yaml_strict import load_yaml

REPO = Path(__file__).resolve().parents[1]


def test_every_shipped_config_is_listed_and_valid():
    configs = shipped_configs()
    on_disk = sorted(CONFIG_DIR.rglob("*.yaml"))
    assert len(configs) == len(on_disk) >= 8
    for path in configs.values():
        assert path.is_file() and load_spec(path).name  # valid
    # the repository's configs/ is the same folder (a link), so documented paths still work
    assert (REPO / "configs").resolve() == CONFIG_DIR.resolve()


def test_configs_command_lists_names_and_descriptions(capsys):
    assert main(["configs"]) == 0
    out = capsys.readouterr().out
    for name, path in shipped_configs().items():
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        description = load_yaml(path.read_text(), str(path)).get("description", "")
        assert description in line


def test_configs_name_prints_the_yaml(capsys):
    assert main(["configs", "paper-fig1"]) == 0  # an old name (catalog.ALIASES)
    assert capsys.readouterr().out == shipped_configs()["reproduce/damian2022-fig1"].read_text()
    assert main(["configs", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no shipped config" in err


@pytest.mark.parametrize(
    "given",
    ["paper-fig1", "paper-fig1.yaml", "configs/paper-fig1.yaml", "reproduce/damian2022-fig1",
     "damian2022-fig1"],
)  # fmt: skip
def test_run_by_name_from_another_directory(given, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert find_config(given) == shipped_configs()["reproduce/damian2022-fig1"]
    assert main(["run", given, "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("paper-fig1: valid spec, 660 runs")


def test_a_file_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").write_text("not a spec")
    assert resolve_spec("demo") == (Path("demo"), False)


def test_missing_spec_is_an_environment_fault_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "no-such.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file and no shipped config" in err
    assert main(["demo", "--spec", "no-such.yaml"]) == 2
    assert not (tmp_path / "results").exists()


def test_quick_version_reduces_a_grid_and_refuses_a_search(capsys):
    data = load_yaml(shipped_configs()["reproduce/damian2022-fig2"].read_text())
    quick = quick_version(data)
    assert quick["name"] == "paper-fig2-quick" and quick["seeds"] == 1
    assert quick["n"] == data["n"][:3] and quick["transfer"]["N"] == data["transfer"]["N"][:2]
    assert quick["n_test"] == quick["n_holdout"] == quick["transfer"]["n_holdout"] == 2000
    assert data["seeds"] == 10  # the input is not modified
    assert main(["run", "paper-fig2", "--quick", "--dry-run"]) == 0
    assert "paper-fig2-quick: valid spec, 6 runs" in capsys.readouterr().out
    assert main(["run", "scaling", "--quick"]) == 2
    assert "--quick: only for grid specs" in capsys.readouterr().err


def test_configs_has_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["configs", "--help"])
    assert exit_info.value.code == 0 and "usage: replearn configs" in capsys.readouterr().out
