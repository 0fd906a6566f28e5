"""Predictions of every learner on fixed seeds, and run ids of the shipped specs: the check
that a refactor changed no result.

    python scripts/fingerprint.py save before.pt      # on the old code
    python scripts/fingerprint.py compare before.pt   # on the new code: bit-identical or not

Every learner, in every mode a refactor could disturb, is fitted on torch tensors (so the
output kind does not depend on input-type handling) and on a stream; the predictions on a
fixed test set are stored as float64 tensors and compared with ``torch.equal``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

import replearn as rl


def _cases():
    target = rl.paper_target(d=8, seed=3)
    X, y = rl.sample(target, n=600, noise=1.0, seed=0)
    Xh, yh = rl.sample(target, n=300, noise=1.0, seed=1)
    stream = rl.DataStream(target, noise=1.0, seed=2)
    cases = {
        "one_step": lambda: rl.OneStepNetwork(width=20, seed=1).fit(X, y, Xh, yh),
        "one_step_gcv": lambda: rl.OneStepNetwork(width=20, seed=1).fit(X, y),
        "one_step_gd": lambda: rl.OneStepNetwork(width=20, head="gd", head_steps=50).fit(X, y),
        "one_step_resample": lambda: rl.OneStepNetwork(width=20, data="resample").fit(X, y),
        "one_step_normalize": lambda: rl.OneStepNetwork(width=20, eta1="normalize").fit(X, y),
        "one_step_nopre": lambda: rl.OneStepNetwork(width=20, preprocess=False).fit(X, y),
        "one_step_f64": lambda: rl.OneStepNetwork(width=20, dtype="float64").fit(X, y),
        "one_step_stream": lambda: rl.OneStepNetwork(width=20, chunk_size=100).fit_stream(
            stream, n=700, n_holdout=200
        ),
        "one_step_transfer": lambda: rl.OneStepNetwork(width=20).fit(X, y).transfer(Xh, yh),
        "random_features": lambda: rl.RandomFeatures(width=20, seed=1).fit(X, y, Xh, yh),
        "random_features_stream": lambda: rl.RandomFeatures(width=20).fit_stream(
            stream, n=700, n_holdout=200
        ),
        "ntk": lambda: rl.NTKRegression(width=10, seed=1).fit(X, y, Xh, yh),
        "ntk_normal_dual": lambda: rl.NTKRegression(width=10, bias="normal", form="dual").fit(X, y),
        "ntk_stream": lambda: rl.NTKRegression(width=10).fit_stream(stream, n=700, n_holdout=200),
        "kernel_ridge_ntk": lambda: rl.KernelRidge(kernel="ntk").fit(X, y, Xh, yh),
        "kernel_ridge_rf_gcv": lambda: rl.KernelRidge(kernel="rf", dtype="float64").fit(X, y),
        "kernel_ridge_fixed": lambda: rl.KernelRidge(ridge_lambda=1e-3).fit(X, y),
        "kernel_ridge_falkon": lambda: rl.KernelRidge(solver="falkon", n_centers=50).fit(
            X, y, Xh, yh
        ),
        "full_training_adam": lambda: rl.FullTraining(width=20, epochs=3, patience=None).fit(X, y),
        "full_training_sgd": lambda: rl.FullTraining(
            width=20, optimizer="sgd", epochs=3, momentum=0.9, weight_decay=1e-3, patience=2
        ).fit(X, y, Xh, yh),
        "full_training_mf": lambda: rl.FullTraining(
            width=20, parametrization="mean-field", epochs=2, patience=None
        ).fit(X, y),
    }
    Xtest, _ = rl.sample(target, n=400, noise=0.0, seed=9)
    return cases, Xtest


def _run_ids() -> dict:
    from replearn.experiments import load_spec

    try:
        from replearn.experiments.grid import expand_grid, run_id
    except ImportError:
        from replearn.experiments.runner import expand_grid, run_id
    try:  # configs that moved keep their old file name here, so old fingerprints compare
        from replearn.experiments.catalog import ALIASES
    except ImportError:
        ALIASES = {}
    old_names = {new: old for old, new in ALIASES.items()}
    root = Path(__file__).resolve().parents[1] / "configs"
    ids = {}
    for path in sorted(root.rglob("*.yaml")):
        spec = load_spec(path)
        if getattr(spec, "kind", "grid") != "grid":
            continue
        name = path.relative_to(root).with_suffix("").as_posix()
        key = f"{old_names.get(name, name)}.yaml"  # top-level files: their file name, as before
        ids[key] = [run_id(config) for config in expand_grid(spec)]
    return ids


def fingerprint() -> dict:
    torch.set_num_threads(1)
    cases, Xtest = _cases()
    out = {}
    for name, make in cases.items():
        out[name] = torch.as_tensor(make().predict(Xtest)).to(torch.float64)
    out["run_ids"] = _run_ids()
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("save", "compare"):
        print(__doc__.strip().splitlines()[3])
        return 2
    now = fingerprint()
    if argv[0] == "save":
        torch.save(now, argv[1])
        print(f"saved {len(now) - 1} prediction sets and run ids to {argv[1]}")
        return 0
    before = torch.load(argv[1])
    bad = [k for k in before if k != "run_ids" and not torch.equal(before[k], now[k])]
    for name in bad:
        print(f"DIFFERENT {name}: max |Δ| = {float((before[name] - now[name]).abs().max()):.3g}")
    # the specs that existed when the fingerprint was saved (new configs add new ids)
    same_ids = all(now["run_ids"].get(name) == ids for name, ids in before["run_ids"].items())
    print(
        f"{len(before) - 1 - len(bad)} of {len(before) - 1} prediction sets bit-identical; "
        f"run ids {'identical' if same_ids else 'DIFFERENT'} "
        f"({sum(len(v) for v in before['run_ids'].values())} ids)"
    )
    return 0 if not bad and same_ids else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
