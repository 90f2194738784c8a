"""Running many independent runs at once: the one place hems-twin fans work out.

Replications (:mod:`sim.replications`) and sweeps hand :func:`execute` a list of
:class:`RunTask` -- a complete scenario as plain data and a seed -- and get back each run's
result body, in task order.  Three ways to run them, all giving the same bodies:

* ``workers=1``: one after another in this process (no pool: easiest to debug, and what
  a patched twin in a test sees).
* ``executor="local"`` (the default): a pool of local processes
  (``concurrent.futures.ProcessPoolExecutor``), one per CPU unless told otherwise.  Workers
  are forked from this process where that is safe (Linux, a single thread): they start in
  milliseconds with the twin already imported, where a fresh interpreter takes most of a
  second.  A process with threads (a notebook kernel, a Dask client) cannot be forked
  safely -- a lock held by another thread stays held forever in the child -- so there the
  workers come from a ``forkserver`` (or ``spawn`` where there is none).
* ``executor="dask"``: the tasks go to an existing Dask distributed scheduler
  (``scheduler="tcp://host:8786"``); hems-twin must be installed on its workers.

Why the bodies cannot depend on the executor or the number of workers: a run is a function
of its scenario and seed alone, each worker loads the twin by name and validates the
scenario itself, and results are put back in task order whatever order they finish in.
``on_result(index, body)`` is called in the calling process as each run finishes, so a
caller can record results as they come without waiting for the slowest.

A task that raises becomes a :class:`TaskError` naming the task (its index, scenario name and
seed) with the worker's traceback as its cause; the remaining tasks are abandoned, not
waited for.  A progress bar (tqdm, on stderr) counts finished runs when stderr is a
terminal (after a couple of seconds, so short batches print nothing) or when
``progress=True``; it never touches a result.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import multiprocessing
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from sim.errors import SimError
from sim.progress import SHOW_AFTER_S
from sim.twin import load_twin

if TYPE_CHECKING:
    from sim.twin import Twin

__all__ = ["EXECUTORS", "RunTask", "TaskError", "default_workers", "execute", "run_task"]

EXECUTORS = ("local", "dask")
"""The executors :func:`execute` knows."""

_DASK_CONNECT_TIMEOUT = "10s"
_TWINS: dict[str | None, Twin] = {}
"""Twins loaded in a worker process, by name: loaded once per worker, not once per task."""

# What a worker sends back: (True, result body) or (False, (exception type, message, traceback)).
_Outcome = tuple[bool, Any]


@dataclass(frozen=True)
class RunTask:
    """One run: a complete scenario as plain, JSON-ready data, and the seed to run it on.

    The scenario is data, not a model object, so that it travels to any worker (another
    process, another machine) as it is and is validated there by the twin's own type.  It is
    a whole scenario: a variant's overlay already applied, no ``variants`` or ``expect``.
    """

    scenario: Mapping[str, Any]
    seed: int

    @property
    def label(self) -> str:
        """How errors name the task: its scenario name and seed."""
        return f"scenario {self.scenario.get('name', '?')}, seed {self.seed}"


class TaskError(Exception):
    """A run raised: which one, and what it raised (the worker's traceback is the cause)."""

    def __init__(self, index: int, task: RunTask, kind: str, message: str) -> None:
        self.index = index
        self.task = task
        self.kind = kind
        self.detail = message
        text = f"{kind}: {message}" if message else kind
        super().__init__(f"run {index} ({task.label}) failed: {text}")

    @property
    def seed(self) -> int:
        """The failed run's seed."""
        return self.task.seed

    @property
    def scenario_name(self) -> str:
        """The failed run's scenario name."""
        return str(self.task.scenario.get("name", "?"))


class _RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker, shown as a :class:`TaskError`'s cause."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def default_workers() -> int:
    """The CPUs this process may run on (``os.cpu_count()`` where that cannot be told)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on this platform
        return max(1, os.cpu_count() or 1)


def _twin(name: str | None) -> Twin:
    if name not in _TWINS:
        _TWINS[name] = load_twin(name)
    return _TWINS[name]


def run_task(twin_name: str | None, scenario: Mapping[str, Any], seed: int) -> _Outcome:
    """Run one task in a worker: load the twin, validate the scenario, run it.

    Never raises (but for interrupts): a failure comes back as data, so that an exception
    that cannot be pickled, or that Dask would retry, still reaches the caller as it was.
    """
    try:
        twin = _twin(twin_name)
        spec = twin.scenario_type.model_validate(scenario)
        body = twin.run(spec, seed)
    except Exception as error:
        return False, (type(error).__qualname__, str(error), traceback.format_exc())
    # A run's world is a web of reference cycles (actors and kernel point at each other), which
    # only the cyclic collector frees; a long-lived worker would pile up run after run of them
    # (hundreds of MiB each on a long horizon) until a full collection happened to come.
    gc.collect()
    return True, body


def _worker_start(twin_name: str | None) -> None:
    """Pool worker start-up: leave Ctrl-C to the parent, and load the twin while the pool fills."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the pool; no traceback per worker
    with contextlib.suppress(Exception):  # a twin that fails to load is reported by the first task, named
        _twin(twin_name)


def _failed(index: int, task: RunTask, payload: Any) -> TaskError:
    kind, message, remote = payload
    error = TaskError(index, task, str(kind), str(message))
    error.__cause__ = _RemoteTraceback(f'\n"""\n{remote}"""')
    return error


class _Bar(tqdm):  # type: ignore[type-arg]  # a bar over nothing iterated
    monitor_interval = 0  # no monitor thread: updated only when a run finishes


def _bar(total: int, progress: bool | None) -> _Bar | None:
    stream = sys.stderr
    if progress is None:
        try:
            show = stream.isatty()
        except (AttributeError, ValueError):
            show = False
    else:
        show = progress
    if not show:
        return None
    delay = SHOW_AFTER_S if progress is None else 0.0
    return _Bar(total=total, desc="hems-twin runs", unit="run", file=stream, delay=delay, leave=False)


def execute(
    twin_name: str | None,
    tasks: Sequence[RunTask],
    *,
    workers: int | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    progress: bool | None = None,
    on_result: Callable[[int, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ``tasks``; each one's result body (``Twin.run``'s dict), in task order.

    ``twin_name`` names the installed twin (None: the only one).  ``workers`` is the number
    of local processes (default: one per CPU; 1 runs them here, one after another);
    ``executor`` is ``"local"`` or ``"dask"`` (then ``scheduler`` is the scheduler's address
    and ``workers`` is not used).  ``on_result(index, body)`` is called here as each run
    finishes; ``progress`` forces the bar on or off (default: on when stderr is a terminal).
    Raises :class:`TaskError` if a run raises, SimError for bad arguments or an unreachable
    scheduler.
    """
    if executor not in EXECUTORS:
        raise SimError(f"unknown executor {executor!r} (known: {', '.join(EXECUTORS)})")
    if executor == "dask" and not scheduler:
        raise SimError("the dask executor needs the scheduler's address (e.g. tcp://127.0.0.1:8786)")
    if executor == "local" and scheduler is not None:
        raise SimError("a scheduler address is only used by the dask executor")
    if workers is not None and workers < 1:
        raise SimError(f"workers must be at least 1 (got {workers})")
    results: list[dict[str, Any] | None] = [None] * len(tasks)

    def done(index: int, outcome: _Outcome) -> None:
        ok, payload = outcome
        if not ok:
            raise _failed(index, tasks[index], payload)
        results[index] = payload
        if on_result is not None:
            on_result(index, payload)

    if tasks:
        bar = _bar(len(tasks), progress)
        try:
            if executor == "dask":
                assert scheduler is not None
                _dask(twin_name, tasks, scheduler, done, bar)
            elif min(workers or default_workers(), len(tasks)) == 1:
                _serial(twin_name, tasks, done, bar)
            else:
                _pool(twin_name, tasks, min(workers or default_workers(), len(tasks)), done, bar)
        finally:
            if bar is not None:
                bar.close()
    return [result for result in results if result is not None]


def _serial(
    twin_name: str | None, tasks: Sequence[RunTask], done: Callable[[int, _Outcome], None], bar: _Bar | None
) -> None:
    """Every task here, in order: the exception itself (not its text) is the TaskError's cause."""
    twin = load_twin(twin_name)
    for index, task in enumerate(tasks):
        try:
            spec = twin.scenario_type.model_validate(task.scenario)
            body = twin.run(spec, task.seed)
        except Exception as error:
            raise TaskError(index, task, type(error).__qualname__, str(error)) from error
        done(index, (True, body))
        if bar is not None:
            bar.update(1)


def _context(twin_module: str) -> multiprocessing.context.BaseContext:
    """How pool workers start; see the module docstring.

    ``fork`` when it is safe -- Linux, and this process runs a single thread, so no lock can
    be held by a thread the child will not have -- because the child starts at once with
    the twin already imported.  Otherwise ``forkserver`` (imports the twin once, in the
    server, then forks clean workers from it), else ``spawn``.
    """
    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__, twin_module])  # only used when the server starts
        return context
    return multiprocessing.get_context("spawn")


def _pool(
    twin_name: str | None,
    tasks: Sequence[RunTask],
    workers: int,
    done: Callable[[int, _Outcome], None],
    bar: _Bar | None,
) -> None:
    context = _context(type(load_twin(twin_name)).__module__)
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_worker_start, initargs=(twin_name,)
    )
    finished = False
    try:
        pending: dict[Future[_Outcome], int] = {
            pool.submit(run_task, twin_name, dict(task.scenario), task.seed): index for index, task in enumerate(tasks)
        }
        while pending:
            ready, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(ready, key=pending.__getitem__):
                index = pending.pop(future)
                try:
                    outcome = future.result()
                except BrokenProcessPool as error:
                    raise TaskError(index, tasks[index], "BrokenProcessPool", "a worker process died") from error
                done(index, outcome)
                if bar is not None:
                    bar.update(1)
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:
            _abandon(pool)


def _abandon(pool: ProcessPoolExecutor) -> None:
    """Stop a pool whose remaining work is not wanted: queued tasks cancelled, workers ended.

    A plain shutdown would wait for the runs in progress, which may take minutes, after an
    error or a Ctrl-C has already decided the outcome.
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)


def _dask(
    twin_name: str | None,
    tasks: Sequence[RunTask],
    scheduler: str,
    done: Callable[[int, _Outcome], None],
    bar: _Bar | None,
) -> None:
    try:
        distributed: Any = importlib.import_module("distributed")  # optional: the 'dask' extra
    except ImportError:
        raise SimError("the dask executor needs the 'distributed' package (pip install 'hems-twin[dask]')") from None
    try:
        client = distributed.Client(scheduler, timeout=_DASK_CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        raise SimError(f"cannot reach the Dask scheduler at {scheduler} ({error})") from None
    futures = []
    try:
        futures = [client.submit(run_task, twin_name, dict(task.scenario), task.seed, pure=False) for task in tasks]
        index_of = {future.key: index for index, future in enumerate(futures)}
        for future in distributed.as_completed(futures, loop=client.loop):
            index = index_of[future.key]
            try:
                outcome: _Outcome = future.result()
            except Exception as error:  # the worker died (KilledWorker) or the task was lost
                raise TaskError(index, tasks[index], type(error).__qualname__, str(error)) from error
            done(index, outcome)
            if bar is not None:
                bar.update(1)
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        client.close()
