"""Progress bars on long work (tqdm), with a rate and an ETA — one setting for all of them.

Shown for the engine's runs, for every streamed pass over the data (the α/β pass, the first
step, Gram and holdout passes, the risk's test pass: each is a pass over ``chunks``) and for
the kernel solves (kernel matrix blocks, Falkon's conjugate gradients, Lanczos steps).

One setting decides (the first that applies wins):

1. :func:`set_progress` — ``True`` (always), ``False`` (never) or ``"auto"``;
2. the environment variable ``REPLEARN_PROGRESS`` — ``1``/``on``, ``0``/``off`` or ``auto``;
3. the default, ``"auto"``: bars only on an interactive terminal (standard error is a TTY),
   never under pytest or CI (``CI`` set), and only for work that is still running after
   :data:`AUTO_DELAY` seconds — short fits print nothing.

Bars do not nest: while one is shown, inner passes update nothing (the outer bar, e.g. the
engine's runs or a fit's first pass, says where the work is). A stage label set by
:func:`stage` names what a pass belongs to (``"OneStepNetwork › Gram pass"``).

This module imports nothing of replearn, so every layer (linear algebra included) may use it.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator

__all__ = [
    "set_progress",
    "progress_setting",
    "enabled",
    "stage",
    "labelled",
    "bar",
    "track_rows",
    "steps",
    "working",
]

AUTO_DELAY = 3.0  # seconds: "auto" shows a bar only for work still running after this long
ENV = "REPLEARN_PROGRESS"
_CHOICES = {"1": True, "true": True, "on": True, "yes": True,
            "0": False, "false": False, "off": False, "no": False, "auto": "auto"}  # fmt: skip

_setting: contextvars.ContextVar[bool | str | None] = contextvars.ContextVar(
    "replearn_progress", default=None
)
_stages: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "replearn_progress_stages", default=()
)
_shown = threading.local()  # .bar: the bar this thread shows now (bars do not nest)
_global: list = [None]  # set_progress's value (None: not set), seen by every thread


def _parse(value, where: str) -> bool | str:
    if isinstance(value, bool):
        return value
    key = str(value).strip().lower()
    if key not in _CHOICES:
        raise ValueError(
            f"{where}: must be True, False or 'auto' (environment: 1, 0 or auto), got {value!r}"
        )
    return _CHOICES[key]


def set_progress(show: bool | str = "auto") -> None:
    """Show progress bars on long work: ``True`` always, ``False`` never, ``"auto"`` (the
    default) only on an interactive terminal and for work that lasts more than a few seconds.

    Overrides the environment variable ``REPLEARN_PROGRESS`` for this process.

    Parameters
    ----------
    show : bool or {"auto"}
        The setting.

    Returns
    -------
    None

    Examples
    --------
    >>> import replearn as rl
    >>> rl.set_progress(False)      # quiet, e.g. in a batch job
    >>> from replearn import progress
    >>> progress.enabled()
    False
    >>> rl.set_progress("auto")
    """
    _global[0] = _parse(show, "set_progress")


@contextlib.contextmanager
def progress_setting(show: bool | str) -> Iterator[None]:
    """The setting ``show`` inside a ``with`` block of this thread (or task) only.

    Parameters
    ----------
    show : bool or {"auto"}

    Returns
    -------
    context manager

    Examples
    --------
    >>> with progress_setting(False):
    ...     enabled()
    False
    """
    token = _setting.set(_parse(show, "progress_setting"))
    try:
        yield
    finally:
        _setting.reset(token)


def _resolved() -> bool | str:
    local = _setting.get()
    if local is not None:
        return local
    if _global[0] is not None:
        return _global[0]
    value = os.environ.get(ENV)
    return _parse(value, ENV) if value not in (None, "") else "auto"


def _interactive() -> bool:
    if os.environ.get("CI") or os.environ.get("PYTEST_CURRENT_TEST"):
        return False
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def enabled() -> bool:
    """Whether bars are shown now (the setting resolved; ``"auto"`` asks the terminal).

    Returns
    -------
    bool
    """
    value = _resolved()
    return _interactive() if value == "auto" else bool(value)


@contextlib.contextmanager
def stage(label: str) -> Iterator[None]:
    """Name the passes inside the block (``"Gram pass"``); nested labels are joined by ›.

    Parameters
    ----------
    label : str

    Returns
    -------
    context manager
    """
    token = _stages.set((*_stages.get(), label))
    try:
        yield
    finally:
        _stages.reset(token)


def _description(what: str | None) -> str:
    parts = list(_stages.get()) + ([what] if what else [])
    return " › ".join(parts) or "working"


@contextlib.contextmanager
def bar(total: float | None, what: str | None = None, unit: str = "it", delay: float | None = None):
    """A tqdm bar (or a silent stand-in with the same ``update``/``set_postfix``) for a loop.

    Parameters
    ----------
    total : number, optional
        Units of work.
    what : str, optional
        Appended to the stage label (:func:`stage`).
    unit : str
        tqdm's unit (``"sample"``, ``"block"``, ``"step"``).
    delay : float, optional
        Seconds before the bar appears (default :data:`AUTO_DELAY` under ``"auto"``, 0 when
        bars are switched on explicitly).

    Returns
    -------
    context manager yielding an object with ``update(k)``
    """
    if getattr(_shown, "bar", None) is not None or not enabled():
        yield _Silent()
        return
    from tqdm.auto import tqdm

    if delay is None:
        delay = AUTO_DELAY if _resolved() == "auto" else 0.0
    progress = tqdm(
        total=total,
        desc=_description(what),
        unit=unit,
        unit_scale=unit == "sample",
        delay=delay,
        leave=False,
        dynamic_ncols=True,
        file=sys.stderr,
    )
    _shown.bar = progress
    try:
        yield progress
    finally:  # also when a pass is abandoned half-way (its generator closed)
        progress.close()
        if getattr(_shown, "bar", None) is progress:
            _shown.bar = None


class _Silent:
    """What :func:`bar` yields when no bar is shown: every call does nothing."""

    def update(self, n: float = 1) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def set_postfix_str(self, *args, **kwargs) -> None:
        pass


def track_rows(chunks: Iterable[tuple], n: int, what: str | None = None) -> Iterator[tuple]:
    """Yield the (X, …) chunks of a pass over n samples, advancing a bar by each X's rows.

    Parameters
    ----------
    chunks : iterable of tuple
        Chunks whose first element has the rows (``X.shape[0]``).
    n : int
        Samples in the pass (the bar's total).
    what : str, optional
        Label after the stage's (default: none).

    Returns
    -------
    iterator of tuple
        The chunks, unchanged.
    """
    if getattr(_shown, "bar", None) is not None or not enabled():  # common: no bar, no cost
        yield from chunks
        return
    with bar(n, what, unit="sample") as progress:
        for chunk in chunks:
            progress.update(chunk[0].shape[0])
            yield chunk


def steps(iterable: Iterable, what: str, unit: str = "it", total: int | None = None) -> Iterator:
    """Yield the items of ``iterable`` (a loop of a solver: blocks, iterations), one bar step
    each.

    Parameters
    ----------
    iterable : iterable
    what : str
        Label after the stage's (``"kernel matrix"``).
    unit : str
    total : int, optional
        Default ``len(iterable)`` when it has one.

    Returns
    -------
    iterator
        The items, unchanged.
    """
    if getattr(_shown, "bar", None) is not None or not enabled():
        yield from iterable
        return
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    with bar(total, what, unit=unit) as progress:
        for item in iterable:
            yield item
            progress.update(1)


def labelled(label: str, iterable: Iterable) -> Iterator:
    """Yield the items of ``iterable`` with :func:`stage` ``label`` active while each is made,
    so the bar of a pass started inside it carries the label (``"Gram pass"``). The label is
    never active while the caller's loop body runs.

    Parameters
    ----------
    label : str
    iterable : iterable

    Returns
    -------
    iterator
        The items, unchanged.
    """
    iterator = iter(iterable)
    while True:
        with stage(label):
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item


@contextlib.contextmanager
def working(what: str) -> Iterator[None]:
    """An elapsed-time line for one long call that cannot report its own progress (a
    Cholesky factorisation, an eigendecomposition): ``KernelRidge › eigendecomposition: 12 s``.

    Shown, like every bar, only when bars are on, no other bar is shown, and (under ``"auto"``)
    after :data:`AUTO_DELAY` seconds; a background thread refreshes it twice a second.

    Parameters
    ----------
    what : str
        Label after the stage's.

    Returns
    -------
    context manager
    """
    if getattr(_shown, "bar", None) is not None or not enabled():
        yield
        return
    with bar(None, what, unit="s") as line:
        line.bar_format = "{desc}: {elapsed} (one call, no progress to report)"
        done = threading.Event()

        def refresh() -> None:  # tqdm's own delay covers update(), not refresh(): ours
            while not done.wait(0.5):
                if time.time() - line.start_t >= line.delay:
                    line.refresh()

        ticker = threading.Thread(target=refresh, name="replearn-progress", daemon=True)
        ticker.start()
        try:
            yield
        finally:
            done.set()
            ticker.join()
