"""Strict, bounded YAML for specs: plain data only, every problem one line.

``load_yaml(text, source)`` is ``yaml.safe_load`` (no tags, nothing constructed or
executed) with these differences, each checked before the work it bounds:

- size: the text is at most ``yaml_bytes`` characters;
- depth: mappings and lists nest at most ``yaml_depth`` levels (a 10 000-deep document is
  one line, not a ``RecursionError``);
- aliases: the nodes produced through aliases — each ``*name`` counts the size of the node
  it repeats, nested aliases included — are at most ``yaml_alias_nodes``; a 600-byte
  "billion laughs" is refused from the event stream, before any object is built;
- duplicate keys in a mapping are refused (YAML forbids them; PyYAML keeps the last one);
  keys merged in with ``<<`` may still be overridden, as YAML's merge specifies;
- numbers with an exponent are floats as in YAML 1.2 (``1e-9``, ``1e10``, ``1.0e300``;
  YAML 1.1 reads them as strings);
- YAML 1.1's base-60 numbers (``1:30`` = 90) are read as strings, as in YAML 1.2;
- values quoted in an error are cut to 80 characters.

The limits come from :mod:`replearn.limits` (raise them with the parameters, with
``limits.raised(…)`` or ``REPLEARN_MAX_YAML_*``). Every error is a :class:`YAMLSpecError`
(a ``ValueError``) whose message starts with ``source``.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from replearn import limits
from replearn.limits import excerpt

__all__ = ["YAMLSpecError", "load_yaml"]

_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YAMLSpecError(ValueError):
    """A YAML problem as one line: ``source: line N: what is wrong``."""


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, line: int, first_line: int):
        super().__init__(f"line {line}: duplicate key {excerpt(key)} (first at line {first_line})")


class _StrictLoader(_BASE_LOADER):
    """SafeLoader that refuses duplicate keys and reads YAML 1.2 exponent floats."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = key in first_line
                except TypeError:  # unhashable: the base class says so
                    continue
                line = key_node.start_mark.line + 1
                if seen:
                    raise _DuplicateKey(key, line, first_line[key])
                first_line[key] = line
        return super().construct_mapping(node, deep=deep)


# YAML 1.2 core schema floats that YAML 1.1 (PyYAML) reads as strings: an exponent without a
# dot (1e10, -2E-9) or an exponent without a sign after a dot (1.0e300, .5e3).
_FLOAT_12 = re.compile(
    r"^(?:[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
    r"|[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*[eE][0-9]+)$"
)
_StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


def _sexagesimal_as_text(base):
    """YAML 1.1 reads ``1:30`` as the base-60 number 90 (and ``1:30.5`` as 90.5); YAML 1.2
    has no such numbers. Read them as the text they are (a spec field that wants a number
    then says so), never as a number nobody meant."""

    def construct(loader, node):
        if isinstance(node.value, str) and ":" in node.value:
            return loader.construct_scalar(node)
        return base(loader, node)

    return construct


_StrictLoader.add_constructor(
    "tag:yaml.org,2002:int", _sexagesimal_as_text(_BASE_LOADER.construct_yaml_int)
)
_StrictLoader.add_constructor(
    "tag:yaml.org,2002:float", _sexagesimal_as_text(_BASE_LOADER.construct_yaml_float)
)


def load_yaml(
    text: str,
    source: str = "<yaml>",
    *,
    max_bytes: int | None = None,
    max_depth: int | None = None,
    max_alias_nodes: int | None = None,
) -> Any:
    """Parse one YAML document into plain data (dicts, lists, str, int, float, bool, None).

    Drop-in for ``yaml.safe_load(text)``; problems raise :class:`YAMLSpecError` (one line).
    """
    if not isinstance(text, str):
        raise TypeError(f"{source}: YAML text must be a str, got {type(text).__name__}")
    size_limit = limits.resolve("yaml_bytes", max_bytes)
    if len(text) > size_limit:
        raise YAMLSpecError(
            f"{source}: {len(text):,} characters exceed the limit yaml_bytes = {size_limit:,}; "
            + limits.LIMITS["yaml_bytes"].how_to_raise()
        )
    depth_limit = limits.resolve("yaml_depth", max_depth)
    alias_limit = limits.resolve("yaml_alias_nodes", max_alias_nodes)
    try:
        _check_events(text, source, depth_limit, alias_limit)
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except _DuplicateKey as err:
        raise YAMLSpecError(f"{source}: {err}") from None
    except yaml.constructor.ConstructorError as err:
        raise YAMLSpecError(f"{source}: {_constructor_message(err)}") from None
    except yaml.YAMLError as err:
        raise YAMLSpecError(f"{source}: not valid YAML: {_yaml_message(err)}") from None
    except RecursionError:  # not reached below a moderate depth limit; a safety net
        raise YAMLSpecError(f"{source}: nested too deeply") from None


def _check_events(text: str, source: str, depth_limit: int, alias_limit: int) -> None:
    """Walk the event stream (no objects built, no recursion): depth and alias expansion.

    Each node's size is 1 plus the sizes of its children, an alias counting the size of
    the node its anchor names; the total over aliases is the number of nodes a full
    expansion would add.
    """
    sizes: dict[str, int] = {}
    open_nodes: list[list] = []  # [size so far, anchor] of each open collection
    through_aliases = 0
    for event in yaml.parse(text, Loader=_BASE_LOADER):
        if isinstance(event, yaml.CollectionStartEvent):
            open_nodes.append([1, event.anchor])
            if len(open_nodes) > depth_limit:
                raise YAMLSpecError(
                    f"{source}: line {event.start_mark.line + 1}: nested more than "
                    f"{depth_limit} levels deep (limit yaml_depth); "
                    + limits.LIMITS["yaml_depth"].how_to_raise()
                )
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            size, anchor = open_nodes.pop()
        elif isinstance(event, yaml.ScalarEvent):
            size, anchor = 1, event.anchor
        elif isinstance(event, yaml.AliasEvent):
            size, anchor = sizes.get(event.anchor, 1), None
            through_aliases += size
            if through_aliases > alias_limit:
                raise YAMLSpecError(
                    f"{source}: line {event.start_mark.line + 1}: aliases expand to more "
                    f"than {alias_limit:,} nodes (limit yaml_alias_nodes; alias "
                    f"{excerpt(event.anchor, 40)} repeats {size:,}); "
                    + limits.LIMITS["yaml_alias_nodes"].how_to_raise()
                )
        else:
            continue
        if anchor is not None:
            sizes[anchor] = size
        if open_nodes:
            open_nodes[-1][0] += size


def _constructor_message(err: yaml.constructor.ConstructorError) -> str:
    problem = str(err.problem or err)
    line = f"line {err.problem_mark.line + 1}: " if err.problem_mark else ""
    tag = re.search(r"tag '([^']*)'", problem)
    if tag is None:
        problem = " ".join(problem.split())
        return f"{line}{problem[:160]}" + ("…" if len(problem) > 160 else "")
    shown = tag.group(1).replace("tag:yaml.org,2002:", "!!")
    return (
        f"{line}YAML tag {excerpt(shown)} is not allowed: specs are plain data "
        "(mappings, lists, strings, numbers, booleans), nothing is constructed or executed"
    )


def _yaml_message(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None) or (str(err).splitlines() or ["?"])[0]
    problem = " ".join(str(problem).split())
    context = getattr(err, "context", None)
    if context:
        problem = f"{' '.join(str(context).split())}, {problem}"
    if len(problem) > 160:
        problem = problem[:160] + "…"
    mark = getattr(err, "problem_mark", None)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem
