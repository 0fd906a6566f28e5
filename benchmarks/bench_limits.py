"""How fast hostile inputs are refused: the limits decide before the work is done.

.venv/bin/python benchmarks/bench_limits.py

Each line: the input, the outcome (ok or the error class) and the wall time; the last line
is the peak resident memory of the process (most of it is importing torch).
"""

from __future__ import annotations

import resource
import time

from replearn.experiments.yaml_strict import YAMLSpecError, load_yaml
from replearn.expression import parse_polynomial
from replearn.limits import LimitError
from replearn.targets import MultiIndexTarget

HEADLINE = "(1+z1+z2+z3+z4+z5)**15*(1+z1+z2+z3+z4+z5)**15"


def alias_bomb() -> str:
    """9 levels of 9 aliases: a full expansion would hold 9⁹ ≈ 3.9·10⁸ strings."""
    text = "a: &a [" + ",".join(['"lol"'] * 9) + "]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]\n"
    return text + "seeds: [" + ",".join(["*i"] * 9) + "]\n"


def timed(label: str, work) -> None:
    start = time.perf_counter()
    try:
        work()
        outcome = "ok"
    except (LimitError, YAMLSpecError) as err:
        outcome = type(err).__name__
    print(f"{label}: {outcome} in {time.perf_counter() - start:.3f} s")


def main() -> None:
    bomb = alias_bomb()
    timed(f"parse_polynomial({HEADLINE!r}, 5)", lambda: parse_polynomial(HEADLINE, 5))
    timed("parse_polynomial('(1+z1+…+z5)**15', 5)", lambda: parse_polynomial(HEADLINE[:22], 5))
    timed(
        "MultiIndexTarget.from_expression('(1+z1+…+z5)**15', d=10)",
        lambda: MultiIndexTarget.from_expression(HEADLINE[:22], d=10),
    )
    timed(f"load_yaml(alias bomb, {len(bomb)} characters)", lambda: load_yaml(bomb, "bomb"))
    timed("load_yaml(list nested 10 000 deep)", lambda: load_yaml("[" * 10**4 + "]" * 10**4))
    timed(
        "MultiIndexTarget.random(d=40, r=30, degree=4)",
        lambda: MultiIndexTarget.random(d=40, r=30, degree=4),
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
