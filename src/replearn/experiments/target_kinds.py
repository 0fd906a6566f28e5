"""Target kinds: the one registry of what a spec's ``target:`` block may be.

Each kind is one :class:`TargetKind` entry that says everything the engine needs of it:

- ``model`` — the pydantic fields of its spec block (``kind: Literal[name]`` and ``seed``
  among them; unknown fields are errors), read by ``spec.py``;
- ``build(block, d)`` — the :class:`~replearn.targets.MultiIndexTarget` of a run's resolved
  ``config["target"]`` block at dimension d (the runners, the report's theory lines);
- ``transfer_model`` and ``transfer(block, pretrain_target)`` — its form as a transfer task
  (``transfer: {target: …}``: the same principal subspace U as the pretraining target), or
  None when the kind cannot be one;
- ``label(block)`` — how results tables and reports name it (``store.flat_rows``'s
  ``target`` column);
- ``error_field`` — the field a build error is reported under (``target.expr: …``);
- ``implied_by`` — a field that alone names the kind (``target: {link: "tanh(z1)"}`` needs
  no ``kind: link``).

A new target kind is one :func:`register_target_kind` call; spec, store, report and CLI read
the registry. The built-in kinds: ``paper``, ``paper_transfer``, ``random``, ``expression``
and ``link``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict

from replearn.limits import excerpt
from replearn.validation import boolean, integer_at_least, is_int, number

__all__ = [
    "TARGET_KINDS",
    "TargetKind",
    "TargetBlock",
    "register_target_kind",
    "unregister_target_kind",
    "build_target",
    "build_transfer_target",
    "target_label",
    "implied_kind",
    "TargetSeed",
]

INT64_MAX = 2**63 - 1


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {excerpt(value)}")
    return value


def _target_seed(value: Any) -> int | str:
    if value == "run" or (is_int(value) and 0 <= value <= INT64_MAX):
        return value
    raise ValueError(
        f"must be an integer in [0, 2^63) or 'run' (the run's seed), got {excerpt(value)}"
    )


TargetSeed = Annotated[Any, AfterValidator(_target_seed)]
Text = Annotated[Any, AfterValidator(_text)]
Normalize = Annotated[Any, AfterValidator(boolean)]
OptionalR = Annotated[Any, AfterValidator(lambda v: v if v is None else integer_at_least(1)(v))]


class TargetBlock(BaseModel):
    """Base of the spec blocks of target kinds: strict, unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", strict=True)


@dataclass(frozen=True)
class TargetKind:
    """One target kind: its spec fields, how to build it, its transfer form and its label.

    Parameters
    ----------
    name : str
        The ``kind:`` of a spec's target block.
    model : type
        A :class:`TargetBlock` with ``kind: Literal[name]`` and ``seed`` fields.
    build : callable
        ``build(block, d) -> MultiIndexTarget`` from a run's ``config["target"]`` (a dict,
        ``seed`` resolved to an integer).
    label : callable
        ``label(block) -> str``: the target's name in results and reports.
    transfer_model : type, optional
        The block's fields as a transfer task (without ``seed``), or None.
    transfer : callable, optional
        ``transfer(block, pretrain_target) -> MultiIndexTarget`` with the pretraining
        target's U.
    error_field : str
        The field a build error is reported under ("" for the block itself).
    implied_by : str, optional
        A field whose presence alone names this kind (``kind:`` may then be left out).
    """

    name: str
    model: type[TargetBlock]
    build: Callable[[dict, int], Any]
    label: Callable[[dict], str]
    transfer_model: type[TargetBlock] | None = None
    transfer: Callable[[dict, Any], Any] | None = None
    error_field: str = ""
    implied_by: str | None = None


TARGET_KINDS: dict[str, TargetKind] = {}
_VERSION = [0]  # bumped by every registration: spec.py rebuilds its target fields


def registry_version() -> int:
    """A number that changes whenever a kind is registered (spec models are rebuilt)."""
    return _VERSION[0]


def register_target_kind(kind: TargetKind) -> TargetKind:
    """Add (or replace) a target kind; specs accept it from then on.

    Parameters
    ----------
    kind : TargetKind
        Its model must have a ``kind`` field ``Literal[kind.name]`` and a ``seed`` field;
        its transfer model (if any) a ``kind`` field too.

    Returns
    -------
    TargetKind
        ``kind``, registered.

    Examples
    --------
    >>> from typing import Literal
    >>> class Ridge(TargetBlock):
    ...     kind: Literal["first_coordinate"]
    ...     seed: TargetSeed = 0
    >>> def first_coordinate(block, d):
    ...     import replearn as rl
    ...     return rl.MultiIndexTarget.from_expression("z1", d, seed=int(block["seed"]))
    >>> _ = register_target_kind(TargetKind("first_coordinate", Ridge, first_coordinate,
    ...                                     label=lambda block: "x·u"))
    >>> build_target({"kind": "first_coordinate", "seed": 0}, 4).r
    1
    >>> target_label({"kind": "first_coordinate", "seed": 0})
    'x·u'
    >>> unregister_target_kind("first_coordinate")
    """
    for model in (kind.model, kind.transfer_model):
        if model is None:
            continue
        field = model.model_fields.get("kind")
        if field is None or getattr(field.annotation, "__args__", None) != (kind.name,):
            raise TypeError(
                f"target kind {kind.name!r}: its model needs kind: Literal[{kind.name!r}]"
            )
    if "seed" not in kind.model.model_fields:
        raise TypeError(f"target kind {kind.name!r}: its model needs a seed field")
    if (kind.transfer_model is None) != (kind.transfer is None):
        raise TypeError(f"target kind {kind.name!r}: give transfer_model and transfer together")
    TARGET_KINDS[kind.name] = kind
    _VERSION[0] += 1
    return kind


def unregister_target_kind(name: str) -> None:
    """Remove a registered kind (specs stop accepting it).

    Examples
    --------
    >>> unregister_target_kind("no_such_kind")
    Traceback (most recent call last):
    ...
    ValueError: no target kind 'no_such_kind'; known: paper, paper_transfer, random, expression, link
    """
    if name not in TARGET_KINDS:
        raise ValueError(f"no target kind {name!r}; known: {', '.join(TARGET_KINDS)}")
    del TARGET_KINDS[name]
    _VERSION[0] += 1


def _kind(block: dict, transfer: bool = False) -> TargetKind:
    name = block.get("kind")
    kind = TARGET_KINDS.get(name)
    if kind is None or (transfer and kind.transfer is None):
        known = [k for k, v in TARGET_KINDS.items() if not transfer or v.transfer is not None]
        what = "transfer target kind" if transfer else "target kind"
        raise ValueError(f"unknown {what} {name!r}; known: {', '.join(known)}")
    return kind


def build_target(target: dict, d: int):
    """MultiIndexTarget from a resolved ``config["target"]`` block and d.

    Parameters
    ----------
    target : dict
        ``{"kind": …, "seed": int, …}`` (a run config's target).
    d : int
        Input dimension.

    Returns
    -------
    MultiIndexTarget

    Examples
    --------
    >>> build_target({"kind": "expression", "expr": "He2(z1)", "seed": 0}, 5).d
    5
    """
    return _kind(target).build(target, d)


def build_transfer_target(transfer_target: dict, pretrain_target):
    """The transfer task's target: same principal subspace U as the pretraining target.

    Parameters
    ----------
    transfer_target : dict
        A run config's ``transfer.target`` block.
    pretrain_target : MultiIndexTarget
        The pretraining target (its U is kept).

    Returns
    -------
    MultiIndexTarget

    Examples
    --------
    >>> pre = build_target({"kind": "paper", "seed": 0}, 6)
    >>> new = build_transfer_target({"kind": "paper_transfer"}, pre)
    >>> bool((new.U == pre.U[:1]).all())
    True
    """
    return _kind(transfer_target, transfer=True).transfer(transfer_target, pretrain_target)


def target_label(target: dict) -> str:
    """The target's name in results tables and reports (a run config's target block).

    Examples
    --------
    >>> target_label({"kind": "random", "r": 2, "degree": 4, "kappa": None, "seed": 0})
    'random(r=2,degree=4)'
    """
    kind = TARGET_KINDS.get(target.get("kind"))
    return kind.label(target) if kind is not None else str(target.get("kind"))


def implied_kind(block: Any) -> Any:
    """A target block without ``kind`` gets the kind its fields imply (``{link: …}`` →
    ``kind: link``); anything else is returned unchanged."""
    if isinstance(block, dict) and "kind" not in block:
        implied = [k.name for k in TARGET_KINDS.values() if k.implied_by and k.implied_by in block]
        if len(implied) == 1:
            return {"kind": implied[0], **block}
    return block


# -- the built-in kinds --------------------------------------------------------------------------
class PaperTarget(TargetBlock):
    """He₂(u·x)/2 + He₄(u·x)/(4√3), u a random unit vector (Fig. 1)."""

    kind: Literal["paper"]
    seed: TargetSeed = 0


class PaperTransferTarget(TargetBlock):
    """He₃(u·x)/√6 with the u of the paper target of the same seed (Fig. 2's new task)."""

    kind: Literal["paper_transfer"]
    seed: TargetSeed = 0


class TransferPaperTarget(TargetBlock):
    """Fig. 2's new task as a transfer target: He₃(u·x)/√6 with the pretraining target's u."""

    kind: Literal["paper_transfer"]


class RandomTarget(TargetBlock):
    """MultiIndexTarget.random: degree-p, rank-r Hessian, E[f*²] = 1, optional κ."""

    kind: Literal["random"]
    r: Annotated[Any, AfterValidator(integer_at_least(1))]
    degree: Annotated[Any, AfterValidator(integer_at_least(2))]
    kappa: Annotated[Any, AfterValidator(lambda v: v if v is None else number(0.0, True)(v))] = None
    hessian_energy: Annotated[
        Any, AfterValidator(lambda v: v if v is None else number(0.0, True)(v))
    ] = None
    seed: TargetSeed = 0


class ExpressionTarget(TargetBlock):
    """g written in z1…zr (e.g. ``He2(z1)/2 + He4(z1)/(4*sqrt(3))``), U Haar-random."""

    kind: Literal["expression"]
    expr: Text
    r: OptionalR = None
    normalize: Normalize = True
    seed: TargetSeed = 0


class TransferExpressionTarget(TargetBlock):
    """The new task g(Ux) in z1…zr, with the pretraining target's U."""

    kind: Literal["expression"]
    expr: Text
    normalize: Normalize = True


class LinkTarget(TargetBlock):
    """A link g(z1, …, zr) of the latent z = Ux (``tanh(z1 + He3(z2))``), U Haar-random:
    ``target: {link: "…"}`` (``kind: link`` implied)."""

    kind: Literal["link"]
    link: Text
    r: OptionalR = None
    normalize: Normalize = True
    seed: TargetSeed = 0


class TransferLinkTarget(TargetBlock):
    """The new task g(Ux) as a link, with the pretraining target's U."""

    kind: Literal["link"]
    link: Text
    normalize: Normalize = True


def _paper(block: dict, d: int):
    from replearn.targets import paper_target

    return paper_target(d, int(block.get("seed", 0)))


def _paper_transfer(block: dict, d: int):
    from replearn.targets import paper_transfer_target

    return paper_transfer_target(d, int(block.get("seed", 0)))


def _paper_transfer_of(block: dict, pretrain_target):
    from replearn.targets import paper_transfer_target

    return paper_transfer_target(pretrain_target.d, u=pretrain_target.U[:1])


def _random(block: dict, d: int):
    from replearn.targets import MultiIndexTarget

    extra = {}
    if block.get("hessian_energy") is not None:
        extra["hessian_energy"] = block["hessian_energy"]
    return MultiIndexTarget.random(
        d, block["r"], block["degree"], int(block.get("seed", 0)), kappa=block.get("kappa"), **extra
    )


def _from_expression(field: str) -> Callable[[dict, int], Any]:
    def build(block: dict, d: int):
        from replearn.targets import MultiIndexTarget

        return MultiIndexTarget.from_expression(
            block[field],
            d,
            seed=int(block.get("seed", 0)),
            normalize=block.get("normalize", True),
            r=block.get("r"),
        )

    return build


def _transfer_from_expression(field: str) -> Callable[[dict, Any], Any]:
    def transfer(block: dict, pretrain_target):
        from replearn.targets import MultiIndexTarget

        return MultiIndexTarget.from_expression(
            block[field],
            pretrain_target.d,
            normalize=block.get("normalize", True),
            U=pretrain_target.U,
        )

    return transfer


def _random_label(block: dict) -> str:
    extra = f",kappa={block['kappa']}" if block.get("kappa") is not None else ""
    return f"random(r={block['r']},degree={block['degree']}{extra})"


register_target_kind(TargetKind("paper", PaperTarget, _paper, label=lambda b: "paper"))
register_target_kind(
    TargetKind(
        "paper_transfer",
        PaperTransferTarget,
        _paper_transfer,
        label=lambda b: "paper_transfer",
        transfer_model=TransferPaperTarget,
        transfer=_paper_transfer_of,
    )
)
register_target_kind(TargetKind("random", RandomTarget, _random, label=_random_label))
register_target_kind(
    TargetKind(
        "expression",
        ExpressionTarget,
        _from_expression("expr"),
        label=lambda b: f"expression:{b['expr']}",
        transfer_model=TransferExpressionTarget,
        transfer=_transfer_from_expression("expr"),
        error_field="expr",
    )
)
register_target_kind(
    TargetKind(
        "link",
        LinkTarget,
        _from_expression("link"),
        label=lambda b: f"link:{b['link']}",
        transfer_model=TransferLinkTarget,
        transfer=_transfer_from_expression("link"),
        error_field="link",
        implied_by="link",
    )
)
