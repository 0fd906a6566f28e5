"""The report's words: a "what this shows" paragraph per figure, and the page's provenance.

A paragraph says what the spec measured (its ``description``), what the theory expects for
its target (Theorem 1's d²κ²r threshold, the kernel staircase: kernels with d^k ≤ n < d^(k+1)
samples learn only the degree-≤k part of f*), and what was measured at the largest n — every
number computed here from the target and the runs, none written by hand.
"""

from __future__ import annotations

import datetime
import math
import os
import platform
from collections.abc import Mapping, Sequence

from replearn import theory
from replearn.experiments.analysis import aggregate, log_d
from replearn.experiments.catalog import find_config
from replearn.experiments.report.figures import method_label
from replearn.targets import MultiIndexTarget

__all__ = ["risk_caption", "transfer_caption", "provenance", "reproduce_commands"]


def _theory_sentence(target: MultiIndexTarget) -> str:
    norm2 = target.norm2()
    if not (math.isfinite(norm2) and norm2 > 0):  # e.g. z1 - z1 with normalize: false
        return "E f*² = 0 for this target, so no theory expectation is drawn."
    d = target.d
    parts = []
    threshold = theory.one_step_threshold(target)
    if math.isfinite(threshold):
        parts.append(
            f"Theorem 1 expects Algorithm 1 to learn f* from about d²κ²r = {threshold:,.0f} "
            f"samples (log_d n = {log_d(threshold, d):.2g}, the dotted vertical line)"
        )
    else:
        parts.append(
            "E[∇²f*] is degenerate for this target, so Theorem 1 gives Algorithm 1 no sample "
            "size: its single step sees only noise"
        )
    steps = [
        (start, risk / norm2)
        for start, _, risk in theory.kernel_staircase(target, max_log_d_n=target.degree_cutoff + 1)
    ]
    plateaus = []
    for start, risk in steps:
        if not plateaus or abs(plateaus[-1][1] - risk) > 1e-9:
            plateaus.append((start, risk))
    if len(plateaus) > 1:
        text = ", then ".join(f"{risk:.2g} from n = d^{start:g}" for start, risk in plateaus)
        parts.append(
            "kernels (random features, the NTK) learn only the components of f* of degree "
            f"≤ k once n ≥ d^k, so their risk follows the staircase {text} (the grey step line)"
        )
    return "; ".join(parts) + "."


def _measured_sentence(records: Sequence[Mapping], d: int) -> str:
    rows = aggregate(records, by=["method", "n"])
    if not rows:
        return ""
    largest = max(row["n"] for row in rows)
    at = sorted((row for row in rows if row["n"] == largest), key=lambda r: r["mean"])
    values = ", ".join(f"{method_label(row['method'])} {row['mean']:.3g}" for row in at)
    return f"Measured at the largest n = {largest:,} (log_d n = {log_d(largest, d):.2g}): {values}."


def risk_caption(
    spec: Mapping, target: MultiIndexTarget | None, records: Sequence[Mapping], d: int
) -> str:
    """What a risk-vs-n figure shows: the spec, the theory's expectation, the measurement.

    Parameters
    ----------
    spec : mapping
        The experiment's spec as stored (``description``, ``seeds``, ``n_test``, …).
    target : MultiIndexTarget or None
        f* at this d (None: no theory sentence).
    records : sequence of mapping
        The plotted runs (flat rows with ``method``, ``n``, ``risk``).
    d : int

    Returns
    -------
    str

    Examples
    --------
    >>> import replearn as rl
    >>> records = [{"method": "one_step", "n": 1000, "risk": 0.2},
    ...            {"method": "ntk", "n": 1000, "risk": 0.6}]
    >>> text = risk_caption({"description": "a test"}, rl.paper_target(d=10), records, 10)
    >>> text.splitlines()[0]
    'A test: the excess L2 risk E[(f − f*)²] of each method against log_d n at d = 10 (mean ± sd over seeds; 1 is the zero predictor).'
    >>> text.splitlines()[-1]
    'Measured at the largest n = 1,000 (log_d n = 3): Algorithm 1 (one step) 0.2, NTK (linearised network) 0.6.'
    """
    description = str(spec.get("description") or spec.get("name") or "This experiment")
    first = (
        f"{description[0].upper()}{description[1:]}: the excess L2 risk E[(f − f*)²] of each "
        f"method against log_d n at d = {d} (mean ± sd over seeds; 1 is the zero predictor)."
    )
    lines = [first]
    if target is not None:
        lines.append(_theory_sentence(target))
    measured = _measured_sentence(records, d)
    if measured:
        lines.append(measured)
    return "\n".join(lines)


def transfer_caption(spec: Mapping, records: Sequence[Mapping], d: int) -> str:
    """What a transfer figure shows (Fig. 2's two panels) and the best measured cell.

    Parameters
    ----------
    spec : mapping
    records : sequence of mapping
        Runs with ``n``, ``N`` and ``risk``.
    d : int

    Returns
    -------
    str
    """
    description = str(spec.get("description") or spec.get("name") or "Transfer")
    lines = [
        f"{description[0].upper()}{description[1:]}: the head is refitted on N samples of a new "
        "target after pretraining the first layer on n samples; left, risk against the "
        "pretraining n for each N; right, against N for each n.",
        "Theorem 3 expects no useful representation from n ≤ d and, once n ≳ d², a downstream "
        "risk that needs only N ≈ r^p samples, independent of d (a kernel needs N ≈ d^p).",
    ]
    rows = aggregate(records, by=["n", "N"])
    if rows:
        best = min(rows, key=lambda row: row["mean"])
        lines.append(
            f"Lowest mean risk measured: {best['mean']:.3g} at n = {best['n']:,} "
            f"(d^{log_d(best['n'], d):.2g}), N = {best['N']:,} (d^{log_d(best['N'], d):.2g})."
        )
    return "\n".join(lines)


def reproduce_commands(db: str, experiments: Sequence[str], out: str) -> list[str]:
    """The commands that make these results and this report again.

    Parameters
    ----------
    db : str
        The results database.
    experiments : sequence of str
        The experiments reported.
    out : str
        The report folder.

    Returns
    -------
    list of str
    """
    commands = []
    for name in experiments:
        base = name.removesuffix("-quick") if name.endswith("-quick") else name
        quick = " --quick" if base != name else ""
        spec = base if find_config(base) is not None else "<your spec>.yaml"
        commands.append(f"replearn run {spec}{quick} --db {db}")
    chosen = "".join(f" --experiment {name}" for name in experiments)
    commands.append(f"replearn report --db {db}{chosen} --out {out}")
    return commands


def provenance(run_versions: Sequence[Mapping | None]) -> dict[str, str]:
    """replearn's version, the date and the machine of this report; the versions the runs
    recorded.

    Parameters
    ----------
    run_versions : sequence of mapping or None
        Each run's ``versions`` (from the store).

    Returns
    -------
    dict of str to str
    """
    from replearn import __version__

    recorded = sorted({str(v.get("replearn")) for v in run_versions if v and v.get("replearn")})
    torch_versions = sorted({str(v.get("torch")) for v in run_versions if v and v.get("torch")})
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return {
        "replearn": __version__,
        "date": now,
        "machine": f"{platform.node()} — {platform.platform()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "runs made with": (
            f"replearn {', '.join(recorded)}"
            + (f"; torch {', '.join(torch_versions)}" if torch_versions else "")
            if recorded
            else "(no finished runs)"
        ),
    }
