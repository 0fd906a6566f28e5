"""
Running an experiment spec from Python, and its results as a DataFrame
======================================================================

The engine runs a grid (methods × d × n × seeds) described by a spec — the same YAML that
``replearn run`` takes — and stores one row per run in SQLite, keyed by a run id that is a
hash of the run's full config. Rerunning a spec does only what is missing (resume), and
``rl.results`` reads the store back as a pandas DataFrame.

Everything here goes to a temporary directory.
"""

import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

import replearn as rl
from replearn.experiments import parse_spec, run_experiment

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

# %%
# ``rl.results`` reads the store as a pandas DataFrame: one row per run, every
# hyper-parameter a column (``param_width``), the metrics beside them (``risk``,
# ``alignment``, the chosen λ, the wall time).

runs = rl.results(db, experiment="gallery-demo")
print(f"{len(runs)} runs stored; columns: {', '.join(runs.columns[:10])}, …")
print(runs[["method", "param_width", "n", "seed", "risk", "wall_time"]].head(4).to_string())

# %%
# Averaging the seeds of each cell (method, n) is one ``groupby``:

cells = runs.groupby(["method", "n"]).risk.agg(["mean", "std", "count"]).reset_index()
print(cells.to_string(float_format="{:.3f}".format))

# %%
# The same rows are what ``replearn results --format csv|json|parquet`` exports and what
# ``replearn report --db …`` aggregates into its tables and figures.

fig, ax = plt.subplots(figsize=(5.5, 3.5))
for method, mine in cells.groupby("method"):
    ax.errorbar(mine["n"], mine["mean"], yerr=mine["std"], marker="o", capsize=3, label=method)
ax.set_xscale("log")
ax.set_xlabel("n")
ax.set_ylabel("excess risk (mean ± sd over seeds)")
ax.set_title("gallery-demo, read back with rl.results")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
shutil.rmtree(workdir)  # the temporary store
