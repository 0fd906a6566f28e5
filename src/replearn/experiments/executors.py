"""Executors: run an experiment's registered, unfinished runs — serially, in a local process
pool, or as Ray tasks — with the same numbers on each.

A run is a pure function of its config (data, init and test set all derive from its
seed), so the executor only decides *where* it runs:

- ``serial``: in this process, one after another;
- ``process``: a ``ProcessPoolExecutor`` with the spawn start method (``replearn run``'s
  default); on Linux its workers die with the driver, so a killed driver leaves no orphans;
- ``ray``: Ray tasks (``ray.init(address=…)`` for a cluster, local Ray otherwise), one
  CPU each, plus one GPU for runs whose device is CUDA. A cluster with token
  authentication (Ray's default for ``ray start --head`` once a token exists) is joined
  with the token Ray documents: ``RAY_AUTH_TOKEN``, else the file ``RAY_AUTH_TOKEN_PATH``,
  else ``~/.ray/auth_token`` (see :func:`ray_auth_token_source`).

Every executor runs each run with the same number of torch intra-op threads
(``threads``, default 1): reductions split over threads add in a different order, so
the thread count — not the executor — is what could change the last bits of a result.
With it fixed, serial, process and Ray give bit-identical numbers. It is recorded with
each run (``versions.torch_threads``) but is not part of the run id.

The driver claims runs from the store one at a time just before it starts them, writes
each result in one transaction as soon as it arrives, and renews its claims' leases from
a heartbeat thread. Finished runs are skipped (resume); failures are recorded with their
traceback and the grid goes on; ``retry_failed`` puts failed runs back in the queue.
"""

from __future__ import annotations

import functools
import os
import platform
import resource
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from replearn import limits, progress
from replearn.experiments.grid import ALGORITHM_VERSION
from replearn.experiments.methods import METHODS, build_learner
from replearn.experiments.store import DEFAULT_DB, DEFAULT_LEASE_SECONDS, Store

__all__ = [
    "EXECUTORS",
    "RunOptions",
    "RunSummary",
    "check_executor",
    "execute_run",
    "ray_auth_token_source",
    "run_pending",
]

# Every executor, one entry each: name → run(claims, record, options), which executes the
# claimed (run id, config) pairs and hands each result to record(run id, result). A new
# executor is one entry here (the CLI's --executor choices list the names).
EXECUTORS: dict[str, Callable] = {
    "serial": lambda claims, record, o: _run_serial(claims, record, o.threads or 1),
    "process": lambda claims, record, o: _run_process_pool(
        claims, record, o.workers, o.threads or 1
    ),
    "ray": lambda claims, record, o: _run_ray(
        claims, record, o.workers, o.address, o.threads or 1, o.quiet
    ),
}


def check_executor(executor: str) -> None:
    """Raise ValueError for an unknown executor name, RuntimeError for Ray not installed."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if executor == "ray":
        _require_ray()


@dataclass(frozen=True)
class RunOptions:
    """How runs execute: everything ``replearn run`` passes down to the executors, as one
    object (the CLI builds it from its flags; :func:`~replearn.experiments.run_experiment`,
    the scaling search and :func:`run_pending` take it). None of it enters a run id.

    Parameters
    ----------
    db : str or pathlib.Path
        The SQLite results store; finished runs in it are not run again (resume).
    executor : {"serial", "process", "ray"}
        Where the runs execute.
    workers : int, optional
        Runs side by side (process and Ray executors); default: one per core.
    threads : int, optional
        torch intra-op threads per run (default 1; recorded, not part of the run id).
    address : str, optional
        A Ray cluster's address (``executor="ray"``).
    retry_failed : bool
        Run failed runs again.
    quiet : bool
        No progress lines.
    lease_seconds : float
        How long a claim lives without a heartbeat.

    Examples
    --------
    >>> options = RunOptions(db="r.sqlite", executor="process", workers=2)
    >>> options.threads, options.with_(quiet=True).quiet
    (None, True)
    >>> RunOptions(workers=0)
    Traceback (most recent call last):
    ...
    ValueError: workers must be ≥ 1, got 0
    """

    db: str | Path = DEFAULT_DB
    executor: str = "serial"
    workers: int | None = None
    threads: int | None = None
    address: str | None = None
    retry_failed: bool = False
    quiet: bool = False
    lease_seconds: float = DEFAULT_LEASE_SECONDS

    def __post_init__(self):
        if self.executor not in EXECUTORS:
            raise ValueError(
                f"executor must be one of {', '.join(EXECUTORS)}, got {self.executor!r}"
            )
        for name in ("workers", "threads"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):  # fmt: skip
                raise ValueError(f"{name} must be ≥ 1, got {value!r}")
        if not (isinstance(self.lease_seconds, int | float) and self.lease_seconds > 0):
            raise ValueError(f"lease_seconds must be > 0, got {self.lease_seconds!r}")

    def with_(self, **changes) -> RunOptions:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    @classmethod
    def of(cls, options: RunOptions | None = None, **fields) -> RunOptions:
        """``options`` with ``fields`` changed, or ``RunOptions(**fields)`` when None."""
        return cls(**fields) if options is None else replace(options, **fields)


# -- one run --------------------------------------------------------------------------------
@functools.cache
def _versions() -> dict:
    import numpy
    import torch

    from replearn import __version__

    return {
        "replearn": __version__,
        "algorithm": ALGORITHM_VERSION,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
    }


def _peak_rss_mb() -> float:
    """The process's resident-memory high-water mark so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def execute_run(config: dict, threads: int | None = 1) -> dict:
    """Run one cell with ``threads`` torch threads (None: leave torch's setting); never raises.

    Returns status, metrics or error, wall time, memory, host and library versions.

    ``peak_rss_mb`` is the worker process's memory high-water mark at the end of the run
    (it includes earlier runs of the same process); ``peak_gpu_mb`` is this run's own peak
    CUDA allocation.

    Parameters
    ----------
    config : dict
        One run's config (:func:`expand_grid`); its ``method`` names a registered method.
    threads : int or None
        torch intra-op threads for the run.

    Returns
    -------
    dict
        status (``"done"`` or ``"failed"``), metrics, error, wall_time, peak_rss_mb,
        peak_gpu_mb, host, versions.

    Examples
    --------
    >>> from replearn.experiments import expand_grid, parse_spec
    >>> spec = parse_spec("name: doc\\ntarget: {kind: paper}\\nmethods: [{name: synthetic}]\\n"
    ...                   "d: [4]\\nn: [16]\\nn_holdout: 0\\nn_test: 10\\n")
    >>> result = execute_run(expand_grid(spec)[0])
    >>> result["status"], sorted(result["metrics"])
    ('done', ['risk', 'stderr'])
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    cuda = str(config.get("device", "cpu")).startswith("cuda") and torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    metrics, error = None, None
    try:
        method = METHODS.get(config["method"])
        if method is None:
            raise ValueError(f"unknown method {config['method']!r}")
        check_run_memory(config)
        with progress.progress_setting(False):  # the engine's bar counts runs; none inside
            metrics = method.run(config)
        status = "done"
    except Exception:
        error = traceback.format_exc(limit=20)
        status = "failed"
    versions = dict(_versions(), torch_threads=torch.get_num_threads())
    if cuda:
        versions["cuda_device"] = torch.cuda.get_device_name()
    return {
        "status": status,
        "metrics": metrics,
        "error": error,
        "wall_time": time.perf_counter() - start,
        "peak_rss_mb": _peak_rss_mb(),
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "host": socket.gethostname(),
        "versions": versions,
    }


def check_run_memory(config: dict) -> None:
    """Refuse a run whose fit would need more memory than this machine (or device) has,
    before it allocates: the run's learner, built from its params
    (:func:`~replearn.experiments.methods.build_learner`), is asked for its own estimate at
    the run's n, d and n_holdout — and at the transfer's N — (``check_fit_memory``; a
    one-line LimitError with the numbers). Methods without a learner are not checked.

    Checked where the run executes (a Ray worker has its own memory). Runs side by side on
    one machine share its memory: :func:`cap_workers` bounds how many run at once so that
    together they fit.
    """
    device = str(config.get("device", "cpu"))
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return  # the run itself says that CUDA is missing
    elif device != "cpu":
        return
    model = build_learner(config)
    if model is None:
        return
    d = int(config["d"])
    model.check_fit_memory(int(config["n"]), d, int(config.get("n_holdout", 0)))
    transfer = config.get("transfer")
    if transfer:
        model.check_fit_memory(int(transfer["N"]), d, int(transfer.get("n_holdout", 0)))


def run_memory_bytes(config: dict) -> int | None:
    """Bytes the run's fit needs by its learner's own estimate (the larger of the training
    fit and the transfer fit), or None: no learner, no estimate, or parameters its check
    refuses (the run itself then fails with the learner's message)."""
    model = build_learner(config)
    if model is None:
        return None
    d, sizes = int(config["d"]), [(int(config["n"]), int(config.get("n_holdout", 0)))]
    transfer = config.get("transfer")
    if transfer:
        sizes.append((int(transfer["N"]), int(transfer.get("n_holdout", 0))))
    try:
        estimates = [model.fit_memory_bytes(n, d, n_holdout) for n, n_holdout in sizes]
    except (ValueError, TypeError):
        return None
    known = [estimate[0] for estimate in estimates if estimate is not None]
    return max(known) if known else None


# A spawned worker with torch imported holds about this much before its run allocates.
WORKER_BASE_BYTES = 400 * 2**20


def cap_workers(requested: int | None, configs: list[dict]) -> tuple[int, str | None]:
    """How many local worker processes to start: (workers, why fewer than requested or None).

    At most the CPUs available to this process, the runs there are to do, and the number
    whose memory fits together: each worker needs ``WORKER_BASE_BYTES`` plus the largest
    fit estimate among the runs (each run's learner asked, :func:`run_memory_bytes`), compared with
    the memory available (or the ``memory_bytes`` limit). Never fewer than one: a single
    run that does not fit is refused by its own memory check.
    """
    cores = _default_workers()
    per_worker = WORKER_BASE_BYTES
    for config in configs:
        needed = run_memory_bytes(config) if str(config.get("device", "cpu")) == "cpu" else None
        if needed is not None:
            per_worker = max(per_worker, WORKER_BASE_BYTES + needed)
    available, source = limits.available_memory_bytes("cpu")
    by_memory = max(1, available // per_worker)
    wanted = requested or cores
    workers = max(1, min(wanted, cores, by_memory, max(len(configs), 1)))
    if requested is None or workers >= requested:
        return workers, None
    reasons = []
    if workers == cores:
        reasons.append(f"the {cores} CPUs available")
    if workers == by_memory:
        reasons.append(
            f"{limits.format_bytes(available)} of {source} at about "
            f"{limits.format_bytes(per_worker)} per worker"
        )
    if workers == len(configs):
        reasons.append(f"{len(configs)} runs to do")
    return workers, f"--workers {requested} capped at {workers} ({'; '.join(reasons)})"


def _crash_result(what: str) -> dict:
    return {
        "status": "failed",
        "metrics": None,
        "error": what,
        "wall_time": None,
        "peak_rss_mb": None,
        "peak_gpu_mb": None,
        "host": None,
        "versions": None,
    }


def _init_worker(threads: int | None, parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    if threads:
        import torch

        torch.set_num_threads(threads)


def _die_with_parent(parent_pid: int) -> None:
    """Linux: have the kernel SIGKILL this pool worker when the process that started it dies.

    Without it a worker whose parent was killed (SIGKILL, the OOM killer) waits forever on
    its task queue. The worker's unfinished claim expires like any other stale lease.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL))
    except (OSError, AttributeError):  # no prctl: best effort only
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _ray_execute(config: dict, threads: int) -> dict:
    return execute_run(config, threads)


# -- driving ----------------------------------------------------------------------------------
@dataclass
class RunSummary:
    """What one ``run`` call did; ``counts`` is the experiment's state at the end.

    Parameters
    ----------
    experiment : str
        Its name.
    db : str
        The store's path.
    counts : dict
        ``{total, done, failed, running, stale, pending}`` at the end.
    executed : int
        Runs this call finished.
    failed_now : int
        Of those, the ones that failed.
    wall_time : float
        Seconds.
    """

    experiment: str
    db: str
    counts: dict
    executed: int
    failed_now: int
    wall_time: float

    @property
    def ok(self) -> bool:
        return self.counts["failed"] == 0 and self.counts["done"] == self.counts["total"]

    def __str__(self) -> str:
        c = self.counts
        line = (
            f"{self.experiment}: {c['done']}/{c['total']} done, {c['failed']} failed"
            f" ({self.executed} run now in {_duration(self.wall_time)}; db {self.db})"
        )
        if c["running"] or c["stale"] or c["pending"]:
            line += f"; {c['running']} running elsewhere, {c['pending'] + c['stale']} left"
        return line


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


class _Heartbeat(threading.Thread):
    """Renews the leases of this driver's claims every lease/3 seconds."""

    def __init__(self, db: Path, token: str, lease_seconds: float):
        super().__init__(name="replearn-heartbeat", daemon=True)
        self.db, self.token, self.lease_seconds = db, token, lease_seconds
        self.stopped = threading.Event()

    def run(self) -> None:
        store = Store(self.db, self.lease_seconds)
        try:
            while not self.stopped.wait(self.lease_seconds / 3):
                try:
                    store.renew(self.token)
                except Exception:  # a busy database must not kill the heartbeat
                    pass
        finally:
            store.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


def run_pending(experiment: str, options: RunOptions | None = None, **fields: Any) -> RunSummary:
    """Run the experiment's unfinished runs (already registered in the store).

    Usable by searches that add cells as they go (``Store.register_experiment(…,
    replace=False)`` then ``run_pending``).

    Parameters
    ----------
    experiment : str
        Its name in the store.
    options : RunOptions, optional
        How the runs execute (default ``RunOptions()``).
    **fields
        Fields of :class:`RunOptions` to change (``db=…``, ``quiet=True``, …).

    Returns
    -------
    RunSummary
    """
    options = RunOptions.of(options, **fields)
    check_executor(options.executor)
    db, executor, quiet, lease_seconds = (
        Path(options.db),
        options.executor,
        options.quiet,
        options.lease_seconds,
    )
    retry_failed = options.retry_failed
    start = time.perf_counter()
    token = uuid.uuid4().hex
    store = Store(db, lease_seconds)
    heartbeat = _Heartbeat(db, token, lease_seconds)
    heartbeat.start()
    executed = failed_now = 0
    try:
        if retry_failed:
            store.reset_failed(experiment)
        counts = store.counts(experiment)[experiment]
        bar = _progress(experiment, counts, quiet)

        def record(rid: str, result: dict) -> None:
            nonlocal executed, failed_now
            if store.finish(rid, token, result):
                executed += 1
                failed_now += result["status"] == "failed"
                counts[result["status"]] += 1
                bar.update(1)
                bar.set_postfix(failed=counts["failed"], refresh=False)

        def claims():
            while (claim := store.claim_next(experiment, token)) is not None:
                yield claim

        try:
            if executor == "process":  # local workers: as many as fit together
                todo = [
                    row["config"]
                    for row in store.runs(experiment)
                    if row["status"] in ("pending", "running")
                ]
                workers, why = cap_workers(options.workers, todo)
                if why and not quiet:
                    print(f"replearn: {why}", file=sys.stderr)
                options = options.with_(workers=workers)
            EXECUTORS[executor](claims(), record, options)
        finally:
            bar.close()
    except BaseException:
        store.release(token)  # runs of ours still in flight go back to 'pending'
        raise
    finally:
        heartbeat.stop()
    counts = store.counts(experiment)[experiment]
    store.close()
    return RunSummary(
        experiment, str(db), counts, executed, failed_now, time.perf_counter() - start
    )


def _progress(experiment: str, counts: dict, quiet: bool):
    from tqdm import tqdm

    finished = counts["done"] + counts["failed"]
    # the one progress setting (replearn.progress): by default a bar on a terminal, none in a
    # log; the summary line at the end is printed either way
    bar = tqdm(
        total=counts["total"],
        initial=finished,
        desc=experiment,
        unit="run",
        disable=quiet or not progress.enabled(),
        file=sys.stderr,
        dynamic_ncols=True,
        smoothing=0.05,
        mininterval=0.2 if sys.stderr.isatty() else 30.0,  # REPLEARN_PROGRESS=1 into a log
    )
    bar.set_postfix(failed=counts["failed"], refresh=False)
    return bar


def _run_serial(claims, record, threads: int) -> None:
    import torch

    previous = torch.get_num_threads()
    try:
        for rid, config in claims:
            record(rid, execute_run(config, threads))
    finally:
        torch.set_num_threads(previous)


def _default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def _run_process_pool(claims, record, workers: int | None, threads: int | None) -> None:
    import multiprocessing

    workers = workers or _default_workers()
    context = multiprocessing.get_context("spawn")

    def new_pool(size: int = workers) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=size,
            mp_context=context,
            initializer=_init_worker,
            initargs=(threads, os.getpid()),
        )

    pool = new_pool()
    in_flight: dict = {}  # future → (run id, config)
    exhausted = False
    try:
        while True:
            while not exhausted and len(in_flight) < workers:
                claim = next(claims, None)
                if claim is None:
                    exhausted = True
                    break
                in_flight[pool.submit(execute_run, claim[1], threads)] = claim
            if not in_flight:
                break
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            suspects = []
            for future in finished:
                rid, config = in_flight.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    suspects.append((rid, config))
                    continue
                except Exception:
                    result = _crash_result(traceback.format_exc(limit=5))
                record(rid, result)
            if suspects:
                # One dead worker breaks the whole pool: every run in flight gets
                # BrokenProcessPool, and nothing says whose worker died. Run each of them
                # again alone; only a run whose own worker dies again is marked as died.
                suspects += list(in_flight.values())
                in_flight.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                for rid, config in suspects:
                    record(rid, _run_alone(new_pool, config, threads))
                pool = new_pool()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_alone(new_pool, config: dict, threads: int | None) -> dict:
    """One run in a pool of its own (after a pool broke): its result, or a crash result if
    its worker dies too."""
    pool = new_pool(1)
    try:
        return pool.submit(execute_run, config, threads).result()
    except BrokenProcessPool:
        return _crash_result("worker process died during the run (killed, or out of memory?)")
    except Exception:
        return _crash_result(traceback.format_exc(limit=5))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _require_ray():
    try:
        import ray
    except ImportError:
        raise RuntimeError(
            "the ray executor needs Ray: pip install 'replearn[ray]' (or ray>=2.9)"
        ) from None
    return ray


RAY_TOKEN_HELP = (
    "if the cluster uses token authentication, give this machine the head node's token: "
    "RAY_AUTH_TOKEN=…, RAY_AUTH_TOKEN_PATH=FILE or the file ~/.ray/auth_token (Ray's "
    "`ray get-auth-token` prints it on the head node)"
)


def ray_auth_token_source(environ: dict | None = None) -> str | None:
    """Where Ray would read an authentication token from, in Ray's documented order, or None.

    ``RAY_AUTH_TOKEN`` (the token itself), else ``RAY_AUTH_TOKEN_PATH`` (a file holding it),
    else ``~/.ray/auth_token`` — the file ``ray start --head`` / ``ray get-auth-token
    --generate`` writes. An empty variable or a missing or empty file does not count.
    """
    environ = os.environ if environ is None else environ
    if environ.get("RAY_AUTH_TOKEN", "").strip():
        return "RAY_AUTH_TOKEN"
    candidates = []
    if environ.get("RAY_AUTH_TOKEN_PATH", "").strip():
        candidates.append(Path(environ["RAY_AUTH_TOKEN_PATH"]).expanduser())
    home = environ.get("HOME") or os.path.expanduser("~")
    candidates.append(Path(home) / ".ray" / "auth_token")
    for candidate in candidates:
        try:
            if candidate.is_file() and candidate.stat().st_size > 0:
                return str(candidate)
        except OSError:
            continue
    return None


def _ray_auth_mode_for(address: str | None) -> str | None:
    """``RAY_AUTH_MODE`` to set before joining ``address``, or None to leave it alone.

    ``ray.init(address="auto")`` turns token authentication on by itself when a token is
    found; an explicit ``HOST:PORT`` does not (Ray 2.5x), so a plain ``ray start --head``
    cluster refuses the driver ("InvalidAuthToken"). Here a token found where Ray looks
    turns token mode on for an explicit address too; ``RAY_AUTH_MODE`` set by the user
    (``disabled`` or ``token``) always wins.
    """
    if not address or address == "auto" or os.environ.get("RAY_AUTH_MODE"):
        return None
    return "token" if ray_auth_token_source() is not None else None


def _run_ray(claims, record, workers, address, threads, quiet) -> None:
    import logging

    ray = _require_ray()
    started = False
    auth_mode = None
    if not ray.is_initialized():
        options = {"include_dashboard": False, "logging_level": logging.ERROR}
        auth_mode = _ray_auth_mode_for(address)
        if auth_mode is not None:
            os.environ["RAY_AUTH_MODE"] = auth_mode
            _refresh_ray_config()
        core_log = _CoreLog(enabled=bool(address))
        try:
            with core_log:  # Ray's C++ core logs every refused retry on fd 2
                if address:
                    ray.init(address=address, **options)
                else:
                    # "local": a new cluster, never one that happens to run on this machine
                    ray.init(address="local", num_cpus=workers or _default_workers(), **options)
        except Exception as err:
            if auth_mode is not None:
                os.environ.pop("RAY_AUTH_MODE", None)
                _refresh_ray_config()
            where = f"the Ray cluster at {address}" if address else "local Ray"
            text = " ".join(str(err).split())[:500]
            if "InvalidAuthToken" in core_log.text:
                text += "; the cluster refused this machine's token (InvalidAuthToken)"
            hint = f" ({RAY_TOKEN_HELP})" if address else ""
            raise RuntimeError(
                f"cannot start {where}: {type(err).__name__}: {text}{hint}"
            ) from None
        started = True
    try:
        resources = ray.cluster_resources()
        capacity = workers or max(1, int(resources.get("CPU", 1)))
        task = ray.remote(_ray_execute)
        in_flight: dict = {}
        exhausted = False
        while True:
            while not exhausted and len(in_flight) < capacity:
                claim = next(claims, None)
                if claim is None:
                    exhausted = True
                    break
                rid, config = claim
                gpus = 1 if str(config.get("device", "cpu")).startswith("cuda") else 0
                ref = task.options(num_cpus=1, num_gpus=gpus, max_retries=1).remote(config, threads)
                in_flight[ref] = rid
            if not in_flight:
                break
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                rid = in_flight.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as err:
                    text = " ".join(str(err).split())[:2000]
                    result = _crash_result(f"ray task failed: {type(err).__name__}: {text}")
                record(rid, result)
    finally:
        if started:
            ray.shutdown()
        if auth_mode is not None:
            os.environ.pop("RAY_AUTH_MODE", None)
            _refresh_ray_config()


class _CoreLog:
    """Capture file descriptor 2 for a block (``enabled``), keeping the text: Ray's C++ core
    writes there directly, one warning per refused connection attempt, which would bury the
    one line that says what went wrong."""

    def __init__(self, enabled: bool = True):
        self.enabled, self.text = enabled, ""

    def __enter__(self):
        if not self.enabled:
            return self
        import tempfile

        sys.stderr.flush()
        self._sink = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._sink.fileno(), 2)
        return self

    def __exit__(self, *exc) -> None:
        if not self.enabled:
            return
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._sink.seek(0)
        self.text = self._sink.read(1 << 20).decode("utf-8", "replace")
        self._sink.close()


def _refresh_ray_config() -> None:
    """Have Ray re-read RAY_AUTH_MODE (its config is cached per process), as Ray itself
    does when it turns token authentication on; harmless where the API is absent."""
    try:
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    except Exception:  # another Ray version: the environment variable alone must do
        pass
