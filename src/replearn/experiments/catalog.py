"""The experiment specs shipped with replearn: listed by name, found from anywhere.

The YAML files live in the package (``replearn/configs/``, package data; ``configs/`` at the
repository root links to it), so an installed replearn runs them from any directory::

    replearn configs                 # names and descriptions
    replearn configs paper-fig1      # the YAML itself (copy it to make your own)
    replearn run paper-fig1          # a name instead of a file

A config's name is its path under ``configs/`` without ``.yaml`` (``paper-fig1``,
``reproduce/dandi-2023`` for a file in a subfolder); the last part alone also works when no
other config shares it. A config that moved keeps its old name as an alias
(:data:`ALIASES`: ``paper-fig1`` is ``reproduce/damian2022-fig1``); the experiment ``name:``
inside is unchanged, so its runs keep their ids.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from replearn.experiments.yaml_strict import YAMLSpecError, load_yaml
from replearn.limits import excerpt

__all__ = [
    "CONFIG_DIR",
    "ALIASES",
    "shipped_configs",
    "find_config",
    "config_description",
    "resolve_spec",
    "quick_version",
]

CONFIG_DIR = Path(str(resources.files("replearn") / "configs"))

# old name → current name of the configs that moved (the Damian et al. 2022 figures went
# under reproduce/ beside the field's reproductions)
ALIASES = {
    "paper-fig1": "reproduce/damian2022-fig1",
    "paper-fig2": "reproduce/damian2022-fig2",
}


def shipped_configs() -> dict[str, Path]:
    """{name: path} of every YAML spec shipped with replearn, sorted by name.

    Returns
    -------
    dict of str to pathlib.Path
        The name is the file's path under ``replearn/configs/`` without ``.yaml``.

    Examples
    --------
    >>> configs = shipped_configs()
    >>> "demo" in configs and "reproduce/damian2022-fig1" in configs
    True
    >>> configs["demo"].name
    'demo.yaml'
    """
    if not CONFIG_DIR.is_dir():
        return {}
    found = {
        path.relative_to(CONFIG_DIR).with_suffix("").as_posix(): path
        for path in CONFIG_DIR.rglob("*.yaml")
        if path.is_file()
    }
    return dict(sorted(found.items()))


def find_config(name: str) -> Path | None:
    """The shipped spec called ``name`` (``demo``, ``demo.yaml``, ``configs/demo.yaml``, a
    subfolder's file by its last part when that is unique, or an old name of
    :data:`ALIASES`); None if there is none.

    Parameters
    ----------
    name : str
        A config name as :func:`shipped_configs` lists it, optionally with ``configs/`` in
        front and ``.yaml`` behind.

    Returns
    -------
    pathlib.Path or None

    Examples
    --------
    >>> find_config("configs/demo.yaml") == find_config("demo") == shipped_configs()["demo"]
    True
    >>> find_config("no-such-config") is None
    True
    """
    key = str(name).strip().replace("\\", "/")
    key = key.removeprefix("./").removeprefix("configs/")
    key = key.removesuffix(".yaml").removesuffix(".yml")
    key = ALIASES.get(key, key)
    configs = shipped_configs()
    if key in configs:
        return configs[key]
    by_last = [path for full, path in configs.items() if full.rsplit("/", 1)[-1] == key]
    return by_last[0] if len(by_last) == 1 else None


def config_description(path: Path) -> str:
    """The ``description:`` field of a spec file (its ``name:`` if it has none)."""
    try:
        data = load_yaml(Path(path).read_text(encoding="utf-8"), str(path))
    except (OSError, YAMLSpecError) as err:
        return f"(unreadable: {' '.join(str(err).split())})"
    if not isinstance(data, dict):
        return ""
    return str(data.get("description") or data.get("name") or "")


def resolve_spec(given: str | Path) -> tuple[Path, bool]:
    """The spec file meant by ``given``: the file itself when it exists, else the shipped
    config of that name; returns (path, shipped). Raises one ValueError line otherwise.

    Parameters
    ----------
    given : str or pathlib.Path
        A path to a YAML file, or a shipped config's name.

    Returns
    -------
    (pathlib.Path, bool)
        The file to load, and whether it is a shipped config found by name.

    Examples
    --------
    >>> path, shipped = resolve_spec("paper-fig1")   # an old name (ALIASES)
    >>> path.name, shipped
    ('damian2022-fig1.yaml', True)
    """
    path = Path(given)
    if path.is_file():
        return path, False
    shipped = find_config(str(given))
    if shipped is not None:
        return shipped, True
    if path.exists():  # a device, FIFO or folder: the spec loader says what is wrong with it
        return path, False
    names = ", ".join(shipped_configs()) or "none"
    raise ValueError(
        f"{excerpt(str(given))}: no such file and no shipped config of that name "
        f"(shipped: {names}; `replearn configs` lists them)"
    )


QUICK_SAMPLES = 2000  # holdout and test samples of a --quick run


def quick_version(data: dict) -> dict:
    """A smoke-test version of a grid spec (``replearn run/demo --quick``): the same methods
    and target with one seed, the first d, the first three n, the first two transfer N, and
    at most 2 000 holdout and test samples; named ``<name>-quick`` so that its runs never
    mix with the full experiment's. The input is not modified.

    Parameters
    ----------
    data : dict
        A parsed (not yet validated) spec.

    Returns
    -------
    dict
        The reduced spec, to validate as usual.

    Examples
    --------
    >>> quick = quick_version({"name": "x", "d": [10, 20], "n": ["d^1", "d^2", "d^3", "d^4"],
    ...                        "seeds": 10, "n_test": 100000})
    >>> quick["name"], quick["d"], quick["n"], quick["seeds"], quick["n_test"]
    ('x-quick', [10], ['d^1', 'd^2', 'd^3'], 1, 2000)
    """
    if not isinstance(data, dict):
        raise ValueError(f"--quick: a spec must be a mapping, got {type(data).__name__}")
    if data.get("kind", "grid") != "grid":
        raise ValueError(
            f"--quick: only for grid specs (this one is kind: {excerpt(data.get('kind'))}); "
            "run it in full or lower its scaling.n_stop"
        )
    out = dict(data, name=f"{data.get('name', 'spec')}-quick", seeds=1)
    description = str(data.get("description") or data.get("name") or "")
    out["description"] = f"{description} — quick: one seed, first d, first three n".lstrip(" —")
    first = lambda value, k: value[:k] if isinstance(value, list) else value
    out["d"] = first(data.get("d"), 1)
    if "n" in data:
        out["n"] = first(data["n"], 3)
    for key, default in (("n_holdout", 100_000), ("n_test", 100_000)):
        value = data.get(key, default)
        out[key] = min(value, QUICK_SAMPLES) if isinstance(value, int) and value > 0 else value
    if isinstance(data.get("transfer"), dict):
        transfer = dict(data["transfer"])
        transfer["N"] = first(transfer.get("N"), 2)
        if isinstance(transfer.get("n_holdout"), int) and transfer["n_holdout"] > 0:
            transfer["n_holdout"] = min(transfer["n_holdout"], QUICK_SAMPLES)
        out["transfer"] = transfer
    return out
