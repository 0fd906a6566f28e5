"""Property-based fuzzing of the dimensions issue 25 found unbounded or unsafe (hypothesis).

- chunk sizes and counts of a stream: the chunks are the samples of ``get`` whatever the
  chunk size, the first chunk of any (n, chunk_size) comes at once, or a LimitError line;
- counts of learners (steps, head_steps, n_steps, epochs, max_iter, Hermite degree): a fit
  or one line, never a long run (the ``steps`` limit is lowered so a valid count is cheap);
- label transforms, in place or not, graph-carrying or ill-typed: the caller's labels never
  change, an in-place transform fits what its out-of-place twin fits, or one line;
- output paths that name an input (direct, symlink, relative, hard link, -wal): every
  command that writes refuses in one line and the store stays bit-identical;
- reports on store shapes the engine produces (zero-energy targets, failed and pending runs,
  several d, transfer, scaling searches that never reach their threshold, colliding names):
  the report is written, every experiment has a section, no two experiments share a file.

Examples are derandomised (CI sees the same cases every run).
"""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import replearn as rl
from replearn import limits
from replearn.cli import main
from replearn.experiments import run_experiment
from replearn.experiments.api import write_report
from replearn.experiments.grid import expand_grid, run_id
from replearn.experiments.spec import parse_spec
from replearn.experiments.store import Store
from replearn.label_transforms import resolve_label_transform
from test_store_faults import fingerprint, listing

FUZZ = settings(
    max_examples=60,
    deadline=timedelta(seconds=20),
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
TARGET = rl.paper_target(d=3)


def run_cli(capsys, argv) -> tuple[int, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_info:
        code = exit_info.code
    return code, capsys.readouterr().err


def one_line(err: BaseException) -> None:
    text = str(err)
    assert "\n" not in text and 0 < len(text) < 1000, text


# -- chunk sizes and counts ------------------------------------------------------------------------
@FUZZ
@given(
    n=st.integers(1, 9000),
    chunk_size=st.integers(1, 9000),
    start=st.integers(0, 10_000),
)
def test_chunks_are_the_samples_of_get_for_any_chunk_size(n, chunk_size, start):
    stream = rl.DataStream(TARGET, noise=1.0, seed=0, cache_bytes=0)
    ys = [y for _, y in stream.chunks(n, chunk_size, start=start)]
    assert all(len(y) <= chunk_size for y in ys)
    assert torch.equal(torch.cat(ys), stream.get(start, start + n)[1])


sizes = st.one_of(
    st.integers(1, 10),
    st.sampled_from([4096, 10**6, 10**9, 10**10, 10**10 + 1, 10**12, 2**63]),
)


@FUZZ
@given(n=sizes, chunk_size=sizes, start=st.sampled_from([0, 1, 10**9]))
def test_any_chunking_starts_at_once_or_is_one_limit_line(n, chunk_size, start):
    stream = rl.DataStream(TARGET, noise=1.0, seed=0, cache_bytes=0)
    with limits.raised(memory_bytes=200 * 2**20):  # a chunk needing more is refused
        try:
            chunks = stream.chunks(n, chunk_size, start=start)
        except limits.LimitError as err:
            one_line(err)
            assert n > limits.get("n") or min(n, chunk_size) > 10**5
            return
        X, _ = next(chunks)
    assert X.shape == (min(n, chunk_size), 3)


counts = st.one_of(
    st.integers(0, 60),
    st.sampled_from([10**7, 10**9, 10**12, 2**63, -1, 1.5, True, "10", None]),
)
LEARNERS = {
    "giant_steps": lambda c: rl.GiantStepNetwork(width=4, steps=c),
    "giant_head_steps": lambda c: rl.GiantStepNetwork(width=4, head="gd", head_steps=c),
    "one_step_head_steps": lambda c: rl.OneStepNetwork(width=4, head="gd", head_steps=c),
    "full_n_steps": lambda c: rl.FullTraining(width=4, n_steps=c, patience=None),
    "full_epochs": lambda c: rl.FullTraining(width=4, epochs=c, batch_size=16, patience=None),
    "kernel_max_iter": lambda c: rl.KernelRidge(solver="falkon", max_iter=c, ridge_lambda=0.1),
    "hermite": lambda c: rl.OneStepNetwork(width=4, label_transform=f"hermite:{c}"),
}
X_SMALL, Y_SMALL = rl.sample(TARGET, n=64, noise=1.0, seed=0)


@FUZZ
@given(learner=st.sampled_from(sorted(LEARNERS)), count=counts)
def test_every_count_fits_small_or_is_one_line(learner, count):
    with limits.raised(steps=50, transform_degree=8):  # a valid count is a cheap fit
        try:
            LEARNERS[learner](count).fit(X_SMALL, Y_SMALL)
        except (ValueError, TypeError) as err:
            one_line(err)
            return
    assert isinstance(count, int) and not isinstance(count, bool) and count <= 60


# -- label transforms --------------------------------------------------------------------------------
IN_PLACE = {
    "abs_": (lambda t: t.abs_(), lambda t: t.abs()),
    "add_": (lambda t: t.add_(3.0), lambda t: t + 3.0),
    "mul_": (lambda t: t.mul_(-2.0), lambda t: t * -2.0),
    "pow_": (lambda t: t.pow_(2), lambda t: t**2),
    "clamp_": (lambda t: t.clamp_(-0.5, 0.5), lambda t: t.clamp(-0.5, 0.5)),
    "sort_": (lambda t: t.copy_(t.flip(0)).flip(0), lambda t: t.clone()),
}
_WEIGHT = torch.ones(1, requires_grad=True)
BROKEN = {
    "graph": lambda t: t * _WEIGHT,
    "integers": lambda t: t.long(),
    "shape": lambda t: t[:-1],
    "infinite": lambda t: t / 0.0,
    "not a tensor": lambda t: t.tolist(),
}


@FUZZ
@given(name=st.sampled_from(sorted(IN_PLACE)), seed=st.integers(0, 3), torch_input=st.booleans())
def test_in_place_transforms_fit_what_their_twin_fits_and_leave_y_alone(name, seed, torch_input):
    in_place, twin = IN_PLACE[name]
    X, y = rl.sample(TARGET, n=256, noise=1.0, seed=seed)
    X, y = (X, y) if torch_input else (X.numpy(), y.numpy())
    kept = torch.as_tensor(y).clone()
    try:
        first = rl.OneStepNetwork(width=6, seed=seed, label_transform=in_place).fit(X, y)
    except ValueError as err:  # e.g. a transform constant on these labels
        one_line(err)
        assert torch.equal(torch.as_tensor(y), kept)
        return
    assert torch.equal(torch.as_tensor(y), kept)
    second = rl.OneStepNetwork(width=6, seed=seed, label_transform=twin).fit(X, y)
    assert torch.equal(torch.as_tensor(first.predict(X)), torch.as_tensor(second.predict(X)))


@FUZZ
@given(name=st.sampled_from(sorted(BROKEN)))
def test_ill_behaved_transforms_are_one_line(name):
    with pytest.raises((ValueError, TypeError)) as error:
        resolve_label_transform(BROKEN[name])
    one_line(error.value)


# -- output paths equal to inputs ----------------------------------------------------------------
GRID = """
name: @NAME@
target: @TARGET@
methods: @METHODS@
d: @D@
n: [16, 64]
seeds: 2
n_holdout: 0
n_test: 10
"""


def grid_spec(name="g", target="{kind: paper}", d="[4]", methods="[{name: synthetic}]") -> str:
    text = GRID.replace("@NAME@", name).replace("@TARGET@", target).replace("@D@", d)
    return text.replace("@METHODS@", methods)


@pytest.fixture(scope="module")
def shared_store():
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        db = root / "data" / "v.sqlite"
        run_experiment(parse_spec(grid_spec()), db=db, quiet=True)
        (root / "s.yaml").write_text(grid_spec(), encoding="utf-8")
        (root / "links").mkdir()
        (root / "links" / "sym").symlink_to(db)
        (root / "links" / "sym2").symlink_to(root / "links" / "sym")
        os.link(db, root / "links" / "hard")
        yield root, db


FORMS = ["direct", "symlink", "symlink to symlink", "relative", "dotted", "hardlink", "wal"]


def alias(root: Path, db: Path, form: str) -> Path:
    return {
        "direct": db,
        "symlink": root / "links" / "sym",
        "symlink to symlink": root / "links" / "sym2",
        "relative": Path(os.path.relpath(db)),
        "dotted": root / "links" / ".." / "data" / "." / db.name,
        "hardlink": root / "links" / "hard",
        "wal": db.with_name(db.name + "-wal"),
    }[form]


COMMANDS = {
    "results csv": lambda db, out, spec: ["results", "--db", db, "--out", out],
    "results json": lambda db, out, spec: ["results", "--db", db, "--format", "json", "--out", out],
    "report": lambda db, out, spec: ["report", "--db", db, "--out", out],
    "demo": lambda db, out, spec: ["demo", "--spec", spec, "--db", db, "--out", out, "--quiet"],
    "run spec=store": lambda db, out, spec: ["run", out, "--db", db],
}


@FUZZ
@given(command=st.sampled_from(sorted(COMMANDS)), form=st.sampled_from(FORMS))
def test_no_output_option_writes_over_the_store(shared_store, capsys, command, form):
    root, db = shared_store
    before = fingerprint(db)
    out = alias(root, db, form)
    if form == "wal" and command in ("report", "demo"):
        out = root / "data"  # the folder holds the store: only a report-named store is refused
    code, err = run_cli(capsys, COMMANDS[command](db, out, root / "s.yaml"))
    if form == "wal" and command in ("report", "demo"):
        assert code == 0, err  # v.sqlite is no report file name: allowed (demo runs into it)
        with Store(db, readonly=True) as store:
            assert store.counts()["g"]["done"] == 4
    else:
        assert code == 2 and err.count("\n") == 1, (command, form, err)
        assert fingerprint(db) == before


# -- reports on every store shape ------------------------------------------------------------
NAMES = st.sampled_from(["g", "g-d4", "g-risk", "g-steps", "g-transfer-synthetic", "x.y", "a_b"])
TARGETS = st.sampled_from(
    [
        "{kind: paper}",
        '{kind: expression, expr: "z1 - z1 + 0*z2", normalize: false}',
        '{kind: expression, expr: "He3(z1)/sqrt(6)"}',
        "{kind: random, r: 2, degree: 2}",
    ]
)
METHODS = st.sampled_from(
    [
        "[{name: synthetic}]",
        "[{name: synthetic, fail: true}]",
        "[{name: synthetic}, {name: synthetic, scale: 4.0}]",
    ]
)
SHAPES = st.sampled_from(["run", "registered only", "transfer", "scaling reached", "scaling never"])
SCALING = """
name: NAME
kind: scaling
target: {kind: paper}
methods:
  - {name: synthetic, exponent: 2.0, scale: SCALE}
d: [4, 8]
seeds: 2
n_holdout: 0
n_test: 20
scaling: {threshold: 0.2, n_start: 1, n_stop: "d^3", log_step: 0.5}
"""
TRANSFER = """
transfer:
  target: {kind: paper_transfer}
  N: ["d^1"]
  noise: 1.0
  n_holdout: 0
"""


def build(db: Path, name: str, target: str, d: str, methods: str, shape: str) -> None:
    if shape.startswith("scaling"):
        scale = "1.0" if shape == "scaling reached" else "1000.0"
        text = SCALING.replace("NAME", name).replace("SCALE", scale)
    else:
        text = grid_spec(name, target, d, methods) + (TRANSFER if shape == "transfer" else "")
    spec = parse_spec(text)
    if shape == "registered only":
        with Store(db) as store:
            configs = expand_grid(spec)
            store.register_experiment(spec.name, spec.to_json(), [(run_id(c), c) for c in configs])
        return
    run_experiment(spec, db=db, quiet=True)


@pytest.mark.slow  # ~1 s a figure: about 30 s on a quiet machine
@settings(FUZZ, max_examples=8, deadline=timedelta(seconds=60))
@given(
    experiments=st.lists(
        st.tuples(NAMES, TARGETS, st.sampled_from(["[4]", "[4, 6]"]), METHODS, SHAPES),
        min_size=1,
        max_size=3,
        unique_by=lambda e: e[0],
    )
)
def test_report_draws_every_store_shape_with_unique_files(experiments):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        db = root / "r.sqlite"
        for experiment in experiments:
            build(db, *experiment)
        names = [e[0] for e in experiments]
        failures: list[str] = []
        page = write_report(db, root / "all", names, failures)
        assert failures == [], failures
        text = page.read_text()
        assert all(name in text for name in names)
        together = set(listing(root / "all")) - {"index.html"}
        alone = []
        for name in names:
            write_report(db, root / f"only-{name}", [name])
            alone.append(set(listing(root / f"only-{name}")) - {"index.html"})
        assert sum(map(len, alone)) == len(together)  # no experiment overwrote another's file
