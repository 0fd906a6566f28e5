"""
Running an experiment spec from Python, and reading the store
=============================================================

The engine runs a grid (methods × d × n × seeds) described by a spec — the same YAML that
``replearn run`` takes — and stores one row per run in SQLite, keyed by a run id that is a
hash of the run's full config. Rerunning a spec does only what is missing (resume).

Everything here goes to a temporary directory.
"""

import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from replearn.experiments import Store, aggregate, flat_rows, parse_spec, run_experiment

spec = parse_spec(
    """
name: gallery-demo
target: {kind: paper}
noise: 1.0
methods:
  - {name: one_step, width: 100}
  - {name: random_features, width: 100}
d: [10]
n: ["d^1.5", "d^2", "d^2.5", "d^3"]
seeds: 2
n_holdout: 2000
n_test: 10000
"""
)
workdir = Path(tempfile.mkdtemp(prefix="replearn-gallery-"))
db = workdir / "runs.sqlite"

first = run_experiment(spec, db=db, executor="serial", quiet=True)
again = run_experiment(spec, db=db, executor="serial", quiet=True)
print(f"first call executed {first.executed} runs; the second executed {again.executed}")

store = Store(db)
rows = flat_rows(store.runs(experiment="gallery-demo"))
store.close()
print(f"{len(rows)} runs stored; one of them: run_id={rows[0]['run_id'][:12]}…")
cells = aggregate(rows, by=["method", "d", "n"], value="risk")

# %%
# ``aggregate`` averages the seeds of each cell (method, d, n). A table of the means:

print(f"{'method':>16} {'n':>5} {'risk (mean)':>11} {'seeds':>5}")
for cell in sorted(cells, key=lambda c: (c["method"], c["n"])):
    print(f"{cell['method']:>16} {cell['n']:>5} {cell['mean']:>11.3f} {cell['count']:>5}")

# %%
# The same store is what ``replearn report --db …`` turns into figures and tables, and what
# ``replearn results --format csv`` exports.

fig, ax = plt.subplots(figsize=(5.5, 3.5))
for method in sorted({c["method"] for c in cells}):
    mine = sorted((c for c in cells if c["method"] == method), key=lambda c: c["n"])
    ax.loglog([c["n"] for c in mine], [c["mean"] for c in mine], "o-", label=method)
ax.set_xlabel("n")
ax.set_ylabel("excess risk (mean over seeds)")
ax.set_title("gallery-demo, read back from the store")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
shutil.rmtree(workdir)  # the temporary store
