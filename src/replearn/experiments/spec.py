"""Experiment specs: YAML in (``yaml.safe_load`` only: no tags, no code), validated objects out.

A spec names one experiment, a grid of runs::

    name: demo
    target: {kind: paper}                 # a registered kind (experiments.target_kinds):
                                          # paper | paper_transfer | random | expression,
                                          # or {link: "tanh(z1 + He3(z2))"}
    noise: 1.0                            # label-noise std (a list sweeps it)
    noise_kind: rademacher                # or gaussian
    methods:
      - {name: one_step, width: 100}      # any hyper-parameter may be a list: a sweep
      - {name: random_features, width: [100, 1000]}
    d: [10]
    n: ["d^1", "d^1.5", 1000, "1e4"]      # absolute, or powers of d (round(d^x))
    seeds: 3                              # a count (0, 1, 2) or a list
    n_holdout: 100000                     # λ is tuned on this many holdout samples
    n_test: 100000                        # excess risk on a separate test set

Optional blocks: ``published`` (the paper's numbers for the same grid, printed beside
replearn's by the report and never part of a run id: :mod:`replearn.experiments.published`),
``transfer`` (Fig. 2: refit the head on N samples of a new target with
the same principal subspace) and ``scaling`` (``kind: scaling``: for each method and d,
the smallest n with mean risk ≤ ``threshold``, by an adaptive search on a log grid over
[n_start, n_stop] — see ``replearn.experiments.scaling``)::

    kind: scaling
    scaling: {threshold: 0.2, n_start: "d^1", n_stop: "d^3", log_step: 0.25}

Every problem is one line naming the field path and what is allowed, e.g.
``methods[1].width: must be an even integer ≥ 2, got 101``; a spec with several problems
raises one :class:`SpecError` that lists them all, one per line (``SpecError.problems``).
Targets are built at load time, so an expression the whitelist parser rejects or r > d
fails here.

Bounded before it is done (:mod:`replearn.limits`): the YAML is read by
:func:`~replearn.experiments.yaml_strict.load_yaml` (size, depth, alias expansion,
duplicate keys refused); the seeds count, every d, width and n (``d^x`` via x·log d, never
by computing d^x) are checked against their limits, and the grid's size is computed as a
product of its sweep sizes before anything is expanded. Values quoted in errors are cut
to a short excerpt. Identifiers (names, kinds, keys) and expressions are ASCII: a
look-alike such as the full-width ``ｏne_step`` is refused, never half-read.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import stat
import types
import typing
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)
from pydantic.fields import FieldInfo

from replearn import limits
from replearn.experiments.analysis import log_d
from replearn.experiments.methods import METHODS, build_learner
from replearn.experiments.published import PublishedSpec, published_problems
from replearn.experiments.target_kinds import (
    TARGET_KINDS,
    build_target,
    build_transfer_target,
    implied_kind,
    registry_version,
)
from replearn.experiments.yaml_strict import YAMLSpecError, load_yaml
from replearn.limits import LimitError, excerpt
from replearn.validation import choice, integer_at_least, is_int, number

__all__ = [
    "SpecError",
    "ExperimentSpec",
    "MethodSpec",
    "load_spec",
    "parse_spec",
    "validate_spec",
    "validate_target",
    "format_validation_error",
    "validation_problems",
    "resolve_n",
]


class SpecError(ValueError):
    """A spec's problems, one line each: ``field.path: what is wrong, what is allowed``.

    ``problems`` lists the lines; ``str(error)`` is them joined by newlines (one line when
    there is one problem).
    """

    def __init__(self, *problems: str):
        self.problems = list(dict.fromkeys(problems))
        super().__init__("\n".join(self.problems))


# -- field checks -----------------------------------------------------------------------------
_POWER = re.compile(r"\s*d\s*\^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*\Z", re.ASCII)
_NUMBER = re.compile(r"\s*[0-9]+(?:\.[0-9]*)?(?:[eE]\+?[0-9]+)?\s*\Z", re.ASCII)
INT64_MAX = 2**63 - 1  # seeds, d and n are stored as SQLite 64-bit integers
N_ALLOWED = "a positive integer (1000, '1e4') or a power of d ('d^2.5')"


def _n_value(value: Any) -> int | str:
    """A sample size: positive int, or 'd^x' (x ≥ 0), normalised to int or 'd^x'.

    An absolute n is checked against the limit ``n`` here; ``d^x`` at each d by
    :func:`resolve_n`.
    """
    if isinstance(value, str) and len(value) <= 100:
        power = _POWER.match(value)
        if power:
            return f"d^{float(power.group(1)):g}"
        if _NUMBER.match(value):
            value = float(value)
    if isinstance(value, float) and math.isfinite(value) and value >= 1 and value.is_integer():
        value = int(value)
    if is_int(value) and value >= 1:
        limits.check("n", int(value), "sample size")
        return int(value)
    raise ValueError(f"must be {N_ALLOWED}, got {excerpt(value)}")


def resolve_n(value: int | str, d: int) -> int:
    """Absolute sample size of an n value at dimension d (``'d^x'`` → round(d**x)).

    ``d^x`` is checked against the limit ``n`` through log n = x·log d before d^x is
    computed, so ``d^400`` is one :class:`~replearn.limits.LimitError` line, not an
    OverflowError.
    """
    if not isinstance(value, str):
        return int(value)
    exponent = float(value[2:])
    log10_n = exponent * math.log10(d) if d > 1 else 0.0
    bound = limits.get("n")
    if bound is not None and log10_n > math.log10(bound) + 1e-9:
        limits.check("n", _power_of_ten(log10_n), f"n = {value} at d = {d}")
    try:
        n = max(1, round(d**exponent))
    except OverflowError:
        raise LimitError(
            f"n = {value} at d = {d}: about 10^{log10_n:.1f} does not fit a float"
        ) from None
    limits.check("n", n, f"n = {value} at d = {d}")
    return n


def _power_of_ten(log10_value: float) -> int:
    """An int ≈ 10^log10_value (7 significant digits) without float overflow."""
    whole = int(log10_value)
    return round(10 ** (log10_value - whole) * 1e6) * 10**whole // 10**6


def _as_list(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


def _non_empty_unique(values: list) -> list:
    """The values without repeats, first occurrence kept, in linear time (``dict.fromkeys``;
    equal values such as 1 and 1.0 count as one, as ``==`` says)."""
    if not values:
        raise ValueError("must not be empty")
    try:
        return list(dict.fromkeys(values))
    except TypeError:  # an unhashable value: validated values never are; be safe anyway
        seen: list = []
        for value in values:
            if value not in seen:
                seen.append(value)
        return seen


SEEDS_ALLOWED = "a count ≥ 1 or a list of integers in [0, 2^63)"


def _whole(value: Any) -> Any:
    """A float that is a whole number (``1e4`` in YAML) as an int, for integer fields."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _seeds(value: Any) -> list[int]:
    """A count k (seeds 0…k−1) or a list of seeds; at most the limit ``seeds`` of them,
    checked before the list is built."""
    value = _whole(value)
    if is_int(value):
        if value < 1:
            raise ValueError(f"must be {SEEDS_ALLOWED}, got {excerpt(value)}")
        limits.check("seeds", int(value), "the number of seeds")
        return list(range(value))
    if isinstance(value, list) and value:
        limits.check("seeds", len(value), "the number of seeds in the list")
        for seed in value:
            if not is_int(seed) or not 0 <= seed <= INT64_MAX:
                raise ValueError(f"must be {SEEDS_ALLOWED}, got {excerpt(seed)} in the list")
        return _non_empty_unique([int(seed) for seed in value])
    raise ValueError(f"must be {SEEDS_ALLOWED}, got {excerpt(value)}")


_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", re.ASCII)


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise ValueError(
            "must be ASCII letters, digits, '_', '.', '-' (at most 100, no spaces), "
            f"got {excerpt(value)}"
        )
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {excerpt(value)}")
    return value


def _dimension(value: Any) -> int:
    """An input dimension d: an integer ≥ 1, at most the limit ``d``."""
    d = integer_at_least(1)(_whole(value))
    limits.check("d", d, "input dimension")
    return d


def _device(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"cpu|cuda(:[0-9]+)?|mps", value, re.ASCII):
        raise ValueError(f"must be 'cpu', 'cuda', 'cuda:<index>' or 'mps', got {excerpt(value)}")
    return value


def _list_of(check) -> Any:
    return Annotated[
        list[Annotated[Any, AfterValidator(check)]],
        BeforeValidator(_as_list),
        AfterValidator(_non_empty_unique),
    ]


PositiveInt = Annotated[Any, AfterValidator(integer_at_least(1))]
NValue = Annotated[Any, AfterValidator(_n_value)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# -- targets: the fields of every registered kind (experiments.target_kinds) ---------------------
def _target_union(transfer: bool = False) -> Any:
    """The discriminated union of the registered kinds' spec blocks (or transfer blocks);
    a block without ``kind`` gets the kind its fields imply (``{link: …}``)."""
    models = [
        kind.transfer_model if transfer else kind.model
        for kind in TARGET_KINDS.values()
        if not transfer or kind.transfer_model is not None
    ]
    return Annotated[
        typing.Union[tuple(models)],  # noqa: UP007 (a union built from a tuple)
        Field(discriminator="kind"),
        BeforeValidator(implied_kind),
    ]


TargetSpec = _target_union()
TransferTargetSpec = _target_union(transfer=True)


class TransferSpec(_Strict):
    """Fig. 2: after pretraining on n samples, refit the head on N samples of a new target."""

    target: TransferTargetSpec
    N: _list_of(_n_value)
    noise: Annotated[Any, AfterValidator(lambda v: v if v is None else number(0.0)(v))] = None
    n_holdout: Annotated[
        Any, AfterValidator(lambda v: v if v is None else integer_at_least(0)(v))
    ] = None


def _d_by_method(value: Any) -> dict[str, list[int]] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"must be a mapping {{method name: [d, …]}}, got {value!r}")
    out = {}
    for name, ds in value.items():
        ds = _as_list(ds)
        if not ds or not all(is_int(d) and d >= 1 for d in ds):
            raise ValueError(f"{name}: must be a list of integers ≥ 1, got {value[name]!r}")
        out[name] = _non_empty_unique(ds)
    return out


class ScalingSpec(_Strict):
    """Sample-complexity search: n*(d) = smallest n with mean risk ≤ threshold.

    ``log_step`` is the grid resolution in log_d(n) units (a factor d^log_step);
    ``d_by_method`` ({method name: [d, …]}, each a subset of ``d``) restricts a method to
    some of the dimensions (e.g. kernels, whose cost grows as d^p, to the small ones).
    """

    threshold: Annotated[Any, AfterValidator(number(0.0, True))]
    n_start: NValue = "d^1"
    n_stop: NValue = "d^4"
    log_step: Annotated[Any, AfterValidator(number(0.0, True))] = 0.25
    d_by_method: Annotated[Any, AfterValidator(_d_by_method)] = None


class MethodSpec(BaseModel):
    """``name`` of a registered method plus its hyper-parameters (scalars or lists to sweep)."""

    model_config = ConfigDict(extra="allow", strict=True)

    name: Annotated[Any, AfterValidator(_text)]

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def sweep(self) -> dict[str, list]:
        """{hyper-parameter: values}, in the order the method declares them."""
        given = self.params
        fields = METHODS[self.name].params.model_fields
        return {key: _as_list(given[key]) for key in fields if key in given}


class ExperimentSpec(_Strict):
    """One experiment: a grid of runs (or a scaling search) over methods × d × n × seeds.

    Built by :func:`load_spec` / :func:`parse_spec` from the YAML fields of the same names.

    Parameters
    ----------
    name : str
        The experiment's name in the store and the report.
    description : str
        One line for the report.
    kind : {"grid", "scaling"}
        Every cell of the grid, or the adaptive n*(d) search of ``scaling``.
    target : mapping
        ``{kind: <a registered target kind>, …}`` (``experiments.target_kinds``: paper,
        paper_transfer, random, expression, link; ``{link: "…"}`` implies ``kind: link``).
    noise : float or list of float
        Label-noise standard deviations (a list sweeps them).
    noise_kind : {"rademacher", "gaussian"}
    methods : list of mapping
        ``{name: <registered method>, <hyper-parameter>: value or list, …}``.
    d : list of int
        Input dimensions.
    n : list of int or str
        Sample sizes: absolute, or powers of d (``"d^2"``, round(d^x)); not with ``scaling``.
    seeds : int or list of int
        A count (0 … k − 1) or the seeds themselves.
    n_holdout, n_test : int
        Holdout samples for λ and test samples for the excess risk.
    dtype : {"float32", "float64"}
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:k"``.
    metrics : list of {"excess_risk", "alignment"}
    transfer : mapping, optional
        Fig. 2: ``{target: …, N: [...], noise, n_holdout}``, the head refitted on N samples.
    scaling : mapping, optional
        ``{threshold, n_start, n_stop, log_step, d_by_method}`` for ``kind: scaling``.
    published : mapping, optional
        The paper's numbers for the same grid (``experiments.published``: ``source``,
        ``metric``, ``scale``, ``values``, ``per_step``): printed beside replearn's by the
        report; never part of a run's config or run id.
    """

    name: Annotated[Any, AfterValidator(_name)]
    description: Annotated[Any, AfterValidator(_text)] = ""
    kind: Annotated[Any, AfterValidator(choice("grid", "scaling"))] = "grid"
    target: TargetSpec
    noise: _list_of(number(0.0)) = [1.0]
    noise_kind: Annotated[Any, AfterValidator(choice("rademacher", "gaussian"))] = "rademacher"
    methods: list[MethodSpec]
    d: _list_of(_dimension)
    n: _list_of(_n_value) | None = None
    seeds: Annotated[Any, AfterValidator(_seeds)] = Field(default=1, validate_default=True)
    n_holdout: Annotated[Any, BeforeValidator(_whole), AfterValidator(integer_at_least(0))] = (
        100_000
    )
    n_test: Annotated[Any, BeforeValidator(_whole), AfterValidator(integer_at_least(2))] = 100_000
    dtype: Annotated[Any, AfterValidator(choice("float32", "float64"))] = "float32"
    device: Annotated[Any, AfterValidator(_device)] = "cpu"
    metrics: _list_of(choice("excess_risk", "alignment")) = ["excess_risk", "alignment"]
    transfer: TransferSpec | None = None
    scaling: ScalingSpec | None = None
    published: PublishedSpec | None = None

    def n_values(self, d: int) -> list[int]:
        """The distinct absolute sample sizes at dimension d, in spec order."""
        if self.n is not None:
            raw = self.n
        else:
            assert self.scaling is not None
            start = _exponent(self.scaling.n_start, d)
            stop = _exponent(self.scaling.n_stop, d)
            steps = int(math.floor((stop - start) / self.scaling.log_step + 1e-9))
            raw = [f"d^{start + k * self.scaling.log_step:g}" for k in range(steps + 1)]
        return _non_empty_unique([resolve_n(v, d) for v in raw])

    def transfer_n_values(self, d: int) -> list[int]:
        assert self.transfer is not None
        return _non_empty_unique([resolve_n(v, d) for v in self.transfer.N])

    def to_json(self) -> str:
        """Canonical JSON of the validated spec (stored with the experiment; ``published``
        only when given, so a spec without it stores the JSON it stored before the block
        existed)."""
        data = self.model_dump(mode="json")
        if data.get("published") is None:
            data.pop("published", None)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _exponent(value: int | str, d: int) -> float:
    """x with n ≈ d^x for an n value ('d^x' gives x; at d = 1 an absolute n counts as x = 0)."""
    if isinstance(value, str):
        return float(value[2:])
    return log_d(value, d) if d > 1 else 0.0


# -- loading ------------------------------------------------------------------------------------
def load_spec(path: str | Path) -> ExperimentSpec:
    """Read, parse and validate a YAML spec file; raises :class:`SpecError`.

    Parameters
    ----------
    path : str or pathlib.Path
        A YAML file (see the module docstring for its fields).

    Returns
    -------
    ExperimentSpec
        Validated; its targets are already built.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "spec.yaml"
    ...     _ = path.write_text("name: mini\\ntarget: {kind: paper}\\n"
    ...                         "methods: [{name: one_step, width: 100}]\\nd: [10]\\nn: [d^2]\\n")
    ...     spec = load_spec(path)
    >>> spec.name, spec.kind, [m.name for m in spec.methods], spec.n, spec.seeds
    ('mini', 'grid', ['one_step'], ['d^2'], [0])
    >>> load_spec("no/such/spec.yaml")
    Traceback (most recent call last):
    ...
    replearn.experiments.spec.SpecError: no/such/spec.yaml: no such file
    """
    path = Path(path)
    return parse_spec(read_spec_text(path), source=str(path))


def read_spec_text(path: Path) -> str:
    """The text of a spec file, its size checked before it is read (limit ``yaml_bytes``).

    Only a regular file is read (a device such as /dev/zero or a FIFO is refused before it
    is opened: it has no size to check and may never end), and never more than the limit
    plus one byte, so a file that grows meanwhile is still refused without reading it all.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except OSError as err:
        raise SpecError(f"{path}: cannot read ({type(err).__name__}: {err})") from None
    if stat.S_ISDIR(mode):
        raise SpecError(f"{path}: is a directory, not a spec file")
    if not stat.S_ISREG(mode):
        raise SpecError(
            f"{path}: not a regular file (a device, a FIFO or a socket); give a YAML spec file"
        )
    limit = limits.get("yaml_bytes")
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                raise SpecError(
                    f"{path}: {size:,} bytes exceed the limit yaml_bytes = {limit:,}; "
                    + limits.LIMITS["yaml_bytes"].how_to_raise()
                )
            data = handle.read(limit + 1)
    except OSError as err:
        raise SpecError(f"{path}: cannot read ({type(err).__name__}: {err})") from None
    if len(data) > limit:
        raise SpecError(
            f"{path}: more than {limit:,} bytes (it grew while read), over the limit "
            f"yaml_bytes; " + limits.LIMITS["yaml_bytes"].how_to_raise()
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(
            f"{path}: cannot read (not UTF-8 text: {err.reason} at byte {err.start})"
        ) from None


def parse_spec(text: str, source: str = "<spec>") -> ExperimentSpec:
    """Parse YAML text with :func:`~replearn.experiments.yaml_strict.load_yaml` (plain data
    only, bounded, duplicate keys refused, ``1e-9`` a number) and validate it.

    Parameters
    ----------
    text : str
        The YAML of a spec.
    source : str
        Names the text in error messages (``load_spec`` passes the file's path).

    Returns
    -------
    ExperimentSpec

    Examples
    --------
    >>> spec = parse_spec("name: x\\ntarget: {kind: paper}\\n"
    ...                   "methods: [{name: one_step, width: 100}]\\nd: [10]\\nn: [d^1, d^2]\\n")
    >>> spec.n, spec.seeds, spec.n_holdout
    (['d^1', 'd^2'], [0], 100000)

    Every problem is one line naming the field:

    >>> parse_spec("name: x\\ntarget: {kind: paper}\\n"
    ...            "methods: [{name: one_step, width: 101}]\\nd: [10]\\nn: [100]\\n")
    Traceback (most recent call last):
    ...
    replearn.experiments.spec.SpecError: methods[0].width: must be an even integer ≥ 2, got 101
    """
    try:
        data = load_yaml(text, source)
    except YAMLSpecError as err:
        raise SpecError(str(err)) from None
    return validate_spec(data)


_TARGETS_BUILT_AT = [registry_version()]


def _refresh_target_fields() -> None:
    """Rebuild the target fields of the spec models when a target kind was registered since
    they were built (``target_kinds.register_target_kind``): a spec then accepts it."""
    version = registry_version()
    if version == _TARGETS_BUILT_AT[0]:
        return
    for model, transfer in ((TransferSpec, True), (_TargetOnly, False), (ExperimentSpec, False)):
        model.model_fields["target"] = FieldInfo.from_annotation(_target_union(transfer))
        model.model_rebuild(force=True)
    _TARGETS_BUILT_AT[0] = version


def validate_spec(data: Any) -> ExperimentSpec:
    """Validate a parsed spec (a dict): a :class:`SpecError` lists every problem, one line
    each with its field path.

    Parameters
    ----------
    data : dict
        The spec as parsed YAML.

    Returns
    -------
    ExperimentSpec

    Examples
    --------
    >>> validate_spec({"name": "x", "target": {"kind": "expression"}, "d": [10],
    ...                "methods": [{"name": "one_step", "width": 101}], "n": [100]})
    Traceback (most recent call last):
    ...
    replearn.experiments.spec.SpecError: target.expr: required field is missing
    methods[0].width: must be an even integer ≥ 2, got 101
    """
    _refresh_target_fields()
    if not isinstance(data, dict):
        fields = ", ".join(ExperimentSpec.model_fields)
        raise SpecError(
            f"spec: must be a mapping with the fields {fields}; got {type(data).__name__}"
        )
    problems: list[str] = []
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as err:
        problems += validation_problems(err, ExperimentSpec)
        spec = None
    method_problems = _method_problems(data.get("methods"), data.get("transfer") is not None)
    problems += method_problems
    if spec is not None:  # checks of the validated whole
        try:
            _check_kind(spec)
            if not method_problems:  # the sizes need the kind's fields and the methods' sweeps
                _check_sizes(spec)
        except SpecError as err:
            problems += err.problems
        try:
            _check_targets(spec)
        except SpecError as err:
            problems += err.problems
        if spec.published is not None:
            problems += published_problems(spec.published, data["methods"])
    if problems:
        raise SpecError(*problems)
    return spec


class _TargetOnly(_Strict):
    target: TargetSpec


def validate_target(target: Any, d: int | None = None):
    """A ``target`` block (e.g. ``{"kind": "random", "r": 2, "degree": 4}``) validated;
    with ``d``, also built at that dimension and returned as a MultiIndexTarget.

    Problems are one :class:`SpecError` line naming the field (``target.r: …``).

    Examples
    --------
    >>> validate_target({"kind": "paper", "seed": 3}).seed
    3
    >>> validate_target({"kind": "paper", "sede": 3})
    Traceback (most recent call last):
    ...
    replearn.experiments.spec.SpecError: target.sede: unknown field; allowed: kind, seed
    """
    _refresh_target_fields()
    try:
        validated = _TargetOnly.model_validate({"target": target}).target
    except ValidationError as err:
        raise SpecError(format_validation_error(err, _TargetOnly)) from None
    if d is None:
        return validated
    try:
        return build_target(validated.model_dump(), d)
    except ValueError as err:
        raise SpecError(_target_message(validated.kind, err, d)) from None


def _method_problems(methods: Any, transfer: bool) -> list[str]:
    """Every problem of the ``methods`` list (raw spec data), one line each: unknown names,
    unknown hyper-parameters, and each value its learner's check refuses. Entries that are
    not mappings with a string name are the model validation's to report."""
    if not isinstance(methods, list):
        return []
    if not methods:
        return ["methods: must list at least one method"]
    problems = []
    allowed = ", ".join(sorted(METHODS))
    for i, method in enumerate(methods):
        path = f"methods[{i}]"
        if not isinstance(method, dict) or not isinstance(method.get("name"), str):
            continue
        name = method["name"]
        if name not in METHODS:
            problems.append(f"{path}.name: unknown method {name!r}; allowed: {allowed}")
            continue
        info = METHODS[name]
        fields = info.params.model_fields
        valid = {}  # the keys whose every value passed its check
        for key, raw in method.items():
            if key == "name":
                continue
            if key not in fields:
                problems.append(
                    f"{path}.{key}: unknown hyper-parameter of {name}; "
                    f"allowed: {', '.join(fields) or 'none'}"
                )
                continue
            values = _as_list(raw)
            if not values:
                problems.append(f"{path}.{key}: empty list; give a value or a list to sweep")
            before = len(problems)
            for j, value in enumerate(values):
                where = f"{path}.{key}" + (f"[{j}]" if isinstance(raw, list) else "")
                try:
                    info.params.model_validate({key: value})
                except ValidationError as err:
                    problems.append(f"{where}: {_message(err.errors()[0])}")
                    continue
                if key == "width" and is_int(value):
                    try:
                        limits.check("width", int(value), "network width")
                    except LimitError as err:
                        problems.append(f"{where}: {err}")
            if values and len(problems) == before:
                valid[key] = (values, isinstance(raw, list))
        if info.learner is not None:
            problem = _combination_problem(path, name, valid)
            if problem is not None:
                problems.append(problem)
        if transfer and not info.supports_transfer:
            names = ", ".join(sorted(k for k, v in METHODS.items() if v.supports_transfer))
            problems.append(
                f"{path}.name: {name} cannot refit its head on a new task (transfer); "
                f"methods with transfer: {names}"
            )
    return problems


# the most combinations of one method's sweep whose cross-parameter rules are checked
COMBINATIONS_CHECKED = 1000


def _combination_problem(path: str, name: str, sweep: dict[str, tuple[list, bool]]) -> str | None:
    """The first combination of a learner method's (valid) sweep that its learner's
    cross-parameter rules refuse (``check_params``: e.g. an odd width with the paper's paired
    second layer), as one line under the parameter (and list index) it names; None if all
    pass. ``sweep``: key → (values, whether the spec gave a list)."""
    info = METHODS[name]
    keys = [key for key in info.params.model_fields if key in sweep]
    combos = itertools.product(*(range(len(sweep[key][0])) for key in keys))
    for indices in itertools.islice(combos, COMBINATIONS_CHECKED):
        combo = dict(zip(keys, (sweep[k][0][i] for k, i in zip(keys, indices))))
        params = info.params.model_validate(combo).model_dump()
        config = {"method": name, "params": params, "seed": 0, "dtype": "float32",
                  "device": "cpu"}  # fmt: skip
        try:
            build_learner(config).check_params()
        except (ValueError, TypeError) as err:
            word, _, rest = _one_line(err).partition(" ")
            if word not in combo:
                return f"{path}: {_one_line(err)}"
            at = dict(zip(keys, indices))
            where = f"{path}.{word}" + (f"[{at[word]}]" if sweep[word][1] else "")
            others = [f"{k}={combo[k]!r}" for k in keys if k != word and len(sweep[k][0]) > 1]
            return f"{where}: {rest}" + (f" (with {', '.join(others)})" if others else "")
    return None


def _check_kind(spec: ExperimentSpec) -> None:
    if spec.kind == "grid":
        if spec.n is None:
            raise SpecError(f"n: required for kind 'grid'; give a list of {N_ALLOWED}")
        if spec.scaling is not None:
            raise SpecError("scaling: only allowed with kind 'scaling'")
    else:
        if spec.scaling is None:
            raise SpecError("scaling: required for kind 'scaling' (threshold, n_start, n_stop)")
        if spec.n is not None:
            raise SpecError("n: not used by kind 'scaling' (the search picks n); remove it")
        if spec.transfer is not None:
            raise SpecError("transfer: not supported with kind 'scaling'; use kind 'grid'")
        names = [m.name for m in spec.methods]
        for name, ds in (spec.scaling.d_by_method or {}).items():
            if name not in names:
                raise SpecError(
                    f"scaling.d_by_method.{name}: not a method of this spec; "
                    f"methods: {', '.join(dict.fromkeys(names))}"
                )
            extra = [d for d in ds if d not in spec.d]
            if extra:
                raise SpecError(
                    f"scaling.d_by_method.{name}: must be a subset of d {spec.d}, got {extra}"
                )
        for d in spec.d:
            if _exponent(spec.scaling.n_stop, d) < _exponent(spec.scaling.n_start, d):
                raise SpecError(
                    f"scaling.n_stop: must be ≥ n_start at every d, got "
                    f"{spec.scaling.n_stop!r} < {spec.scaling.n_start!r} at d={d}"
                )


def _check_sizes(spec: ExperimentSpec) -> None:
    """Every n within the limit ``n`` at every d, and the grid's size within ``grid_cells``,
    computed as a product of the sweep sizes before anything is expanded.

    The count is an upper bound: n values that coincide at some d (``d^2`` and 100 at
    d = 10) are counted before they are merged.
    """
    configs = sum(math.prod(len(v) for v in m.sweep().values()) for m in spec.methods)
    sizes = {"d": len(spec.d), "method configs": configs, "noise": len(spec.noise),
             "seeds": len(spec.seeds)}  # fmt: skip
    if spec.kind == "grid":
        sizes["n"] = len(spec.n)
        if spec.transfer is not None:
            sizes["N"] = len(spec.transfer.N)
    else:
        sizes["n (search grid)"] = max(_scaling_points(spec, d) for d in spec.d)
    cells = limits.grid_cells(sizes)
    shown = " × ".join(f"{size:,} {name}" for name, size in sizes.items())
    try:
        limits.check("grid_cells", cells, f"the grid ({shown})")
        for field in ("n_holdout", "n_test"):
            limits.check("n", getattr(spec, field), f"{field} = {getattr(spec, field):,}")
        if spec.transfer is not None and spec.transfer.n_holdout is not None:
            holdout = spec.transfer.n_holdout
            limits.check("n", holdout, f"transfer.n_holdout = {holdout:,}")
    except LimitError as err:
        raise SpecError(str(err)) from None
    if spec.kind == "grid":
        fields = [("n", spec.n)]
        if spec.transfer is not None:
            fields.append(("transfer.N", spec.transfer.N))
    else:
        fields = [("scaling.n_stop", [spec.scaling.n_stop])]
    for path, values in fields:
        for d in spec.d:
            for value in values:
                try:
                    resolve_n(value, d)
                except LimitError as err:
                    raise SpecError(f"{path}: {err}") from None


def _scaling_points(spec: ExperimentSpec, d: int) -> int:
    """Points of the scaling search's log grid at d: ⌊(x_stop − x_start)/log_step⌋ + 1."""
    span = _exponent(spec.scaling.n_stop, d) - _exponent(spec.scaling.n_start, d)
    steps = span / spec.scaling.log_step + 1e-9
    if not math.isfinite(steps) or steps > 1e18:
        return 10**18  # log_step so small that the count is absurd: far beyond any limit
    return int(math.floor(steps)) + 1


def _check_targets(spec: ExperimentSpec) -> None:
    """Build the targets (and transfer targets) the grid needs: bad ones fail here.

    Only d enters a target through its U (d × r): r ≤ d fails first at the smallest d, the
    memory of U at the largest, and the expression does not depend on d. So the target is
    built at those two, not at each of possibly thousands of d values.
    """
    target = spec.target
    explicit_r = getattr(target, "r", None)
    for d in sorted({min(spec.d), max(spec.d)}):
        if explicit_r is not None and explicit_r > d:
            raise SpecError(f"target.r: must be ≤ every d, got r={explicit_r} > d={d}")
        seed = 0 if target.seed == "run" else target.seed
        try:
            built = build_target({**target.model_dump(), "seed": seed}, d)
        except ValueError as err:
            raise SpecError(_target_message(target.kind, err, d)) from None
        if spec.transfer is not None:
            try:
                build_transfer_target(spec.transfer.target.model_dump(), built)
            except ValueError as err:
                field = TARGET_KINDS[spec.transfer.target.kind].error_field
                path = "transfer.target" + (f".{field}" if field else "")
                raise SpecError(f"{path}: {_one_line(err)}") from None


def _target_message(kind: str, err: ValueError, d: int) -> str:
    """A build error of a target kind as one line under the field the kind names."""
    text = _one_line(err)
    field = TARGET_KINDS[kind].error_field if kind in TARGET_KINDS else ""
    too_big = re.search(r"r=(\d+) > d=(\d+)", text)
    if too_big:
        path = "target.r" if kind == "random" else f"target.{field or 'r'}"
        return f"{path}: must have r ≤ every d, got r={too_big.group(1)} > d={d}"
    return f"target{'.' + field if field else ''}: {text}"


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())


# -- pydantic errors → one line ------------------------------------------------------------------
def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The BaseModel classes an annotation can hold (through Annotated, unions, lists)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, tuple):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def _walk(root: type[BaseModel], loc: tuple) -> tuple[str, list[type[BaseModel]]]:
    """(field path like 'methods[1].width', models at that point) from a pydantic loc."""
    path, models = "", [root]
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        field = next((m.model_fields[part] for m in models if part in m.model_fields), None)
        if field is None:  # a union member's tag, e.g. 'random' in ('target', 'random', 'r')
            tagged = [m for m in models if _kind_of(m) == part]
            models = tagged or models
            continue
        path += ("." if path else "") + part
        models = _models_in(field.annotation)
    return path, models


def _kind_of(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("kind")
    if field is None:
        return None
    args = typing.get_args(field.annotation)
    return args[0] if args else None


def _message(error: dict) -> str:
    kind, message = error["type"], error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    elif message.startswith("Input should be "):
        message = "must be " + message[len("Input should be ") :]
    if kind == "missing":
        return "required field is missing"
    if "got" not in message and "exceeds the limit" not in message:
        message += f", got {_short(error.get('input'))}"
    elif len(message) > 300 and ", got " in message:  # a long value quoted whole: cut it
        message = message[: message.rindex(", got ")] + f", got {_short(error.get('input'))}"
    return message


def _short(value: Any) -> str:
    return excerpt(value, 60)


def format_validation_error(err: ValidationError, root: type[BaseModel]) -> str:
    """A pydantic ValidationError of model ``root`` as lines ``field.path: problem``, one
    per problem (:func:`validation_problems` joined by newlines)."""
    return "\n".join(validation_problems(err, root))


def validation_problems(err: ValidationError, root: type[BaseModel]) -> list[str]:
    """Every problem of a pydantic ValidationError of model ``root``, one line each."""
    return list(dict.fromkeys(_problem(error, root) for error in err.errors()))


def _problem(error: dict, root: type[BaseModel]) -> str:
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        path, models = _walk(root, loc[:-1])
        allowed = ", ".join(dict.fromkeys(f for m in models for f in m.model_fields))
        field = (path + "." if path else "") + str(loc[-1])
        return f"{field}: unknown field; allowed: {allowed}"
    path, models = _walk(root, loc)
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        context = error.get("ctx", {})
        tags = context.get("expected_tags") or ", ".join(
            repr(k) for m in models if (k := _kind_of(m))
        )
        got = f", got {context['tag']!r}" if "tag" in context else ", but it is missing"
        return f"{path}.kind: must be one of {tags}{got}"
    if error["type"] in ("model_type", "model_attributes_type", "dict_type"):
        return f"{path or 'spec'}: must be a mapping, got {_short(error.get('input'))}"
    return f"{path or 'spec'}: {_message(error)}"
