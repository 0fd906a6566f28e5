"""Mean (over seeds) risk and alignment of a beyond-* experiment, per method, d and n.

    python scripts/beyond_table.py results/beyond.sqlite beyond-one-step [--compact]

--compact: one row per method and d, one column per n: "risk / alignment" (means over seeds).

Rows come from the store (``store.flat_rows``) and are aggregated with the engine's
``analysis.aggregate``, so they are the report's numbers.
"""

from __future__ import annotations

import sys

from replearn.experiments.analysis import aggregate, log_d
from replearn.experiments.store import Store, flat_rows


def label(row: dict) -> str:
    if row["method"] == "one_step":
        return f"one_step[{row.get('param_label_transform') or 'plain'}]"
    if row["method"] == "giant_step":
        return f"giant_step[T={row['param_steps']},{row['param_batch']}]"
    return row["method"]


def main(db: str, experiment: str, compact: bool = False) -> None:
    with Store(db) as store:
        rows = flat_rows(store.runs(experiment, status="done"))
    for row in rows:
        row["label"] = label(row)
    risk = aggregate(rows, by=["label", "d", "n"], value="risk")
    alignment = {
        (a["label"], a["d"], a["n"]): a
        for a in aggregate(rows, by=["label", "d", "n"], value="alignment")
    }
    if compact:
        ns = sorted({(round(log_d(r["n"], r["d"]), 2)) for r in risk})
        print("| method | d | " + " | ".join(f"n = d^{x:g}" for x in ns) + " |")
        print("|---|---|" + "---|" * len(ns))
        for name in sorted({r["label"] for r in risk}):
            for d in sorted({r["d"] for r in risk}):
                cells = {
                    round(log_d(r["n"], d), 2): r
                    for r in risk
                    if r["label"] == name and r["d"] == d
                }
                text = [
                    f"{cells[x]['mean']:.2f} / {alignment[(name, d, cells[x]['n'])]['mean']:.2f}"
                    if x in cells
                    else ""
                    for x in ns
                ]
                print(f"| {name} | {d} | " + " | ".join(text) + " |")
        return
    print("| method | d | log_d n | n/d² | risk (mean ± sd) | alignment (mean) | seeds |")
    print("|---|---|---|---|---|---|---|")
    for r in risk:
        a = alignment[(r["label"], r["d"], r["n"])]
        print(
            f"| {r['label']} | {r['d']} | {log_d(r['n'], r['d']):.2f} | {r['n'] / r['d'] ** 2:.3g} "
            f"| {r['mean']:.3f} ± {r['sd']:.3f} | {a['mean']:.3f} | {r['count']} |"
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], compact="--compact" in sys.argv[3:])
