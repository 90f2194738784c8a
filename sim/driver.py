"""Drivers that run sans-IO system logic.

:class:`Driver` is the simulation driver.  For every :class:`~sim.ops.Operation` the logic
yields it either answers locally (:class:`~sim.ops.Sleep`, :class:`~sim.ops.Now`) or sends
the operation to the actor named by ``op.target`` across the simulated network, waits up
to ``op.timeout``, records a span, and resumes the logic with the reply -- or throws the
error into it.  One callback per deadline replaces ``get() | timeout()`` (cheaper, and the
losing branch does not linger).

:func:`run_direct` is the direct driver: it runs the same logic against a plain Python
handler with a fake clock, which is how unit tests exercise the real logic in a few lines.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, TypeVar

import simpy

from sim.errors import ModelDefinitionError
from sim.ops import Logic, Now, Operation, OperationTimeout, OpError, Sleep

if TYPE_CHECKING:
    from sim.actor import Actor, Request
    from sim.kernel import Kernel

__all__ = ["Abandoned", "Driver", "interpret", "run_direct"]

T = TypeVar("T")


class Abandoned(Exception):
    """The actor running this logic crashed; the logic was closed mid-way."""


class Driver:
    """Runs logic inside the simulation; see the module docstring."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    def spawn(
        self,
        logic: Logic[T],
        origin: str,
        on_done: Callable[[T | BaseException], None] | None = None,
    ) -> simpy.Process:
        """Run ``logic`` as its own process on behalf of node ``origin``."""
        return self.kernel.env.process(self._spawned(logic, origin, on_done))

    def _spawned(
        self, logic: Logic[T], origin: str, on_done: Callable[[T | BaseException], None] | None
    ) -> Generator[simpy.Event, Any, None]:
        try:
            result: Any = yield from self.drive(logic, origin)
        except OpError as error:
            result = error
        if on_done is not None:
            on_done(result)

    def drive(self, logic: Logic[T], origin: Actor | str, epoch: int | None = None) -> Generator[simpy.Event, Any, T]:
        """Run ``logic`` to completion inside the calling process (use with ``yield from``).

        When ``origin`` is an actor and ``epoch`` is given, a crash of that actor closes
        the logic at its next step and raises :class:`Abandoned`.
        """
        env = self.kernel.env
        name = origin if isinstance(origin, str) else origin.name
        alive = None
        if epoch is not None and not isinstance(origin, str):
            actor = origin

            def alive() -> bool:
                return actor.epoch == epoch

        def sleep(seconds: float) -> Generator[simpy.Event, Any, None]:
            yield env.timeout(seconds)

        def call(op: Operation) -> Generator[simpy.Event, Any, Any]:
            return self.call(name, op)

        return (yield from interpret(logic, sleep=sleep, now=lambda: env.now, call=call, alive=alive, who=name))

    def call(self, origin: str, op: Operation) -> Generator[simpy.Event, Any, Any]:
        """Send ``op`` to its target and wait for the reply or the deadline."""
        from sim.actor import Request

        kernel = self.kernel
        env = kernel.env
        target = kernel.actors.get(op.target)
        if target is None:
            known = ", ".join(sorted(kernel.actors))
            raise ModelDefinitionError(
                f"{origin} sent {op.name} to {op.target!r}, which is no actor of this twin (actors: {known})"
            )
        reply = env.event()
        start = env.now
        request = Request(op, origin, reply, start)
        if op.timeout is not None:
            deadline = env.timeout(op.timeout)
            deadline.callbacks.append(lambda _e: self._expire(reply, op))
        kernel.network.send(origin, target.name, target.deliver, request)
        try:
            result = yield reply
        except OpError as failure:
            kernel.spans.record(origin, op.target, op.name, start, env.now, failure.reason)
            raise
        kernel.spans.record(origin, op.target, op.name, start, env.now, "ok")
        return result

    @staticmethod
    def _expire(reply: simpy.Event, op: Operation) -> None:
        if not reply.triggered:
            reply.defused = True
            reply.fail(OperationTimeout("timeout", f"{op.name} to {op.target} after {op.timeout}s"))

    def reply(self, server: str, request: Request, outcome: Any) -> None:
        """Send ``outcome`` (a result or an :class:`OpError`) back to the caller."""
        self.kernel.network.send(server, request.origin, _resolve, request.reply, outcome)


def _resolve(reply: simpy.Event, outcome: Any) -> None:
    if reply.triggered:
        return  # the caller already timed out, or this is a duplicated reply
    if isinstance(outcome, OpError):
        reply.defused = True
        reply.fail(outcome)
    else:
        reply.succeed(outcome)


def interpret(
    logic: Logic[T],
    *,
    sleep: Callable[[float], Generator[Any, Any, None]],
    now: Callable[[], float],
    call: Callable[[Operation], Generator[Any, Any, Any]],
    alive: Callable[[], bool] | None = None,
    who: str = "logic",
) -> Generator[Any, Any, T]:
    """The one loop both drivers share: step ``logic``, answer each operation it yields.

    Local operations are answered here (:class:`~sim.ops.Sleep` through ``sleep``,
    :class:`~sim.ops.Now` through ``now``); a local operation this loop does not know is
    thrown back into the logic as a :class:`TypeError`.  Remote operations go to ``call``,
    whose :class:`~sim.ops.OpError` is thrown into the logic.  ``alive`` is asked after
    every step; once it says no (the actor running the logic crashed), the logic is closed
    and :class:`Abandoned` raised.  The loop yields only what ``sleep`` and ``call`` yield,
    so with callables that never yield it runs synchronously.
    """
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            op = logic.throw(error) if error is not None else logic.send(value)
        except StopIteration as stop:
            result: T = stop.value
            return result
        value, error = None, None
        if op.local:
            if isinstance(op, Sleep):
                yield from sleep(op.seconds)
            elif isinstance(op, Now):
                value = now()
            else:
                error = TypeError(f"no driver answers the local operation {op.name}")
        else:
            try:
                value = yield from call(op)
            except OpError as failure:
                error = failure
        if alive is not None and not alive():
            logic.close()
            raise Abandoned(who)


def run_direct(
    logic: Logic[T],
    handle: Callable[[Operation], Any],
    *,
    start: float = 0.0,
) -> tuple[T, float]:
    """Run ``logic`` synchronously against ``handle``; returns (result, final clock).

    ``handle(op)`` returns the operation's result or raises an :class:`OpError`.  Sleeps
    advance a fake clock, which :class:`~sim.ops.Now` reads.  The loop is the simulation
    driver's own (:func:`interpret`), so both answer every operation the same way.
    """
    clock = start

    def sleep(seconds: float) -> Generator[Any, Any, None]:
        nonlocal clock
        clock += seconds
        return
        yield  # a generator that never yields: the fake clock needs no event

    def call(op: Operation) -> Generator[Any, Any, Any]:
        return handle(op)
        yield

    steps = interpret(logic, sleep=sleep, now=lambda: clock, call=call)
    try:
        next(steps)
    except StopIteration as stop:
        result: T = stop.value
        return result, clock
    raise RuntimeError("run_direct: the logic waited on something other than its handler")  # unreachable
