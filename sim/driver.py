"""Drivers that run sans-IO system logic.

:class:`Driver` is the simulation driver.  For every :class:`~sim.ops.Operation` the logic
yields it either answers locally (:class:`~sim.ops.Sleep`, :class:`~sim.ops.Now`) or sends
the operation to the actor named by ``op.target`` across the simulated network, waits up
to ``op.timeout``, records a span, and resumes the logic with the reply -- or throws the
error into it.

Why callbacks: a request is logic that spends nearly all its life waiting, so running it
as a simpy process costs a process switch (and its events) at every step.  The driver
runs logic as a *flow* instead -- a plain object whose ``step`` advances the generator
until it waits, and whose continuation is the callback of the one event it waits for: the
reply's arrival, the deadline, or the end of a sleep.  An operation costs the events the
network and the target actor schedule, nothing more: deadlines wait in one
:class:`~sim.timers.DueQueue` per timeout length instead of ``get() | timeout()``, and
whichever of reply and deadline comes second finds the call settled and does nothing.
:meth:`Driver.spawn` starts a flow for a client, :meth:`Driver.start` one inside an actor's
worker; :meth:`Driver.drive` and :meth:`Driver.call` keep the process form for long-lived
loops that are simpy processes anyway (a stream consumer, a relay).

Trace context: every remote call is a span with a trace id, its own span id and its parent
span id (:mod:`sim.spans`), counters handed out as calls are made.  A flow started by
:meth:`Driver.spawn` (a client's request, with no incoming request) starts a new trace and
its calls are its roots; a flow started by :meth:`Driver.start` to handle a request
continues the caller's trace, its calls the children of the caller's span; each call a
long-lived loop makes through :meth:`Driver.call` is a trace of its own (a loop that runs
for the whole simulation is no one request).  ``spawn(..., item=(kind, key))`` names the
ledger item a flow carries, so that a trace capture can find the item's trace
(:attr:`Driver.on_item`); an ordinary run pays a counter per call.

:func:`run_direct` is the direct driver: it runs the same logic against a plain Python
handler with a fake clock, which is how unit tests exercise the real logic in a few lines.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import simpy

from sim.errors import ModelDefinitionError
from sim.ops import Logic, Now, Operation, OperationTimeout, OpError, Sleep
from sim.timers import DueQueue, call_at_delay

if TYPE_CHECKING:
    from sim.actor import Actor
    from sim.kernel import Kernel

__all__ = ["Abandoned", "Driver", "ItemHook", "Request", "interpret", "run_direct"]

T = TypeVar("T")

ItemHook = Callable[[str, Hashable, int], None]
"""Told ``(kind, key, trace)`` when a flow carrying ledger item ``key`` of ``kind`` starts trace ``trace``."""


@dataclass(slots=True)
class Request:
    """An operation in transit: who asked, and the callback that settles the caller's wait."""

    op: Operation
    origin: str
    reply: Callable[[Any], None]  # called, at the caller's node, with the result or an OpError
    sent_at: float
    trace: int = 0  # the trace the call belongs to (sim.spans)
    span: int = 0  # the call's own span id: the parent of the spans its handler's flow makes


class Abandoned(Exception):
    """The actor running this logic crashed; the logic was closed mid-way."""


class Driver:
    """Runs logic inside the simulation; see the module docstring."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        # one queue per timeout length: calls with the same timeout fall due in the order they were made
        self._deadlines: dict[float, DueQueue[_Call]] = {}
        self._traces = 0  # the last trace id handed out
        self._spans = 0  # the last span id handed out
        self.on_item: ItemHook | None = None  # a trace capture's hook (sim.tracing); None in an ordinary run

    def spawn(
        self,
        logic: Logic[T],
        origin: str,
        on_done: Callable[[T | BaseException], None] | None = None,
        item: tuple[str, Hashable] | None = None,
    ) -> None:
        """Run ``logic`` on behalf of network node ``origin``, from now on: during a run its
        first step runs at once (the time is now either way), before a run it waits for the
        run to start.  The flow starts a new trace.

        ``on_done`` gets the logic's result, or the :class:`~sim.ops.OpError` it raised.
        ``item``: the ledger item ``(kind, key)`` the flow carries, if any, so that a trace
        capture can link the item to this trace.
        """
        trace = self._traces = self._traces + 1
        if item is not None and self.on_item is not None:
            self.on_item(item[0], item[1], trace)
        flow = _Flow(self, logic, origin, None, 0, on_done, trace, 0)
        if self.kernel.running:
            flow.step()  # inside the run, now is now: no event needed to start
        else:
            call_at_delay(self.kernel.env, 0.0, flow.wake)

    def start(
        self,
        logic: Logic[T],
        actor: Actor,
        epoch: int,
        on_done: Callable[[T | BaseException], None],
        request: Request | None = None,
    ) -> None:
        """Run ``logic`` inside one of ``actor``'s workers of incarnation ``epoch``, starting now.

        ``request``: the request the logic handles; the flow continues its trace, as the
        child of its span (without one, or one that carries no trace, it starts a new trace).
        A crash of the actor (its epoch moves on) closes the logic when its next wait ends,
        and ``on_done`` is never called: the worker and its reply died with the process.
        """
        if request is not None and request.trace:
            trace, parent = request.trace, request.span
        else:
            trace, parent = self._traces + 1, 0
            self._traces = trace
        _Flow(self, logic, actor.name, actor, epoch, on_done, trace, parent).step()

    def _dispatch(self, flow: _Flow, op: Operation) -> None:
        """Send ``op`` for ``flow``: the reply or the deadline, whichever comes first, resumes it."""
        kernel = self.kernel
        target = kernel.actors.get(op.target)
        if target is None:
            raise self._unknown(flow.origin, op)
        span = self._spans = self._spans + 1
        call = _Call(flow, op, kernel.env._now, span)
        timeout = op.timeout
        if timeout is not None:
            deadlines = self._deadlines.get(timeout)
            if deadlines is None:
                deadlines = self._deadlines[timeout] = DueQueue(kernel.env, _Call.expire, _Call.is_settled)
            deadlines.add(call.sent_at + timeout, call)
        kernel.network.send(flow.origin, op.target, target.deliver, call)

    def _unknown(self, origin: str, op: Operation) -> ModelDefinitionError:
        known = ", ".join(sorted(self.kernel.actors))
        return ModelDefinitionError(
            f"{origin} sent {op.name} to {op.target!r}, which is no actor of this twin (actors: {known})"
        )

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
        kernel = self.kernel
        env = kernel.env
        target = kernel.actors.get(op.target)
        if target is None:
            raise self._unknown(origin, op)
        reply = env.event()
        start = env.now
        trace = self._traces = self._traces + 1  # a loop's call is a trace of its own (module docstring)
        span = self._spans = self._spans + 1
        request = Request(op, origin, functools.partial(_resolve, reply), start, trace, span)
        if op.timeout is not None:
            deadline = env.timeout(op.timeout)
            deadline.callbacks.append(lambda _e: self._expire(reply, op))
        kernel.network.send(origin, target.name, target.deliver, request)
        try:
            result = yield reply
        except OpError as failure:
            kernel.spans.record(origin, op.target, op.name, start, env.now, failure.reason, trace, span)
            raise
        kernel.spans.record(origin, op.target, op.name, start, env.now, "ok", trace, span)
        return result

    @staticmethod
    def _expire(reply: simpy.Event, op: Operation) -> None:
        if not reply.triggered:
            reply.defused = True
            reply.fail(OperationTimeout("timeout", f"{op.name} to {op.target} after {op.timeout}s"))

    def reply(self, server: str, request: Request, outcome: Any) -> None:
        """Send ``outcome`` (a result or an :class:`OpError`) back to the caller."""
        self.kernel.network.send(server, request.origin, request.reply, outcome)


class _Flow:
    """Logic run by callbacks rather than by a simpy process; see the module docstring."""

    __slots__ = ("_actor", "_driver", "_epoch", "_logic", "_on_done", "env", "origin", "parent", "trace")

    def __init__(
        self,
        driver: Driver,
        logic: Logic[Any],
        origin: str,
        actor: Actor | None,
        epoch: int,
        on_done: Callable[[Any], None] | None,
        trace: int,
        parent: int,
    ) -> None:
        self._driver = driver
        self.env = driver.kernel.env
        self._logic = logic
        self.origin = origin
        self._actor = actor
        self._epoch = epoch
        self._on_done = on_done
        self.trace = trace  # the trace this flow's calls belong to
        self.parent = parent  # the span they are children of (0: they are roots)

    def step(self, value: Any = None, error: BaseException | None = None) -> None:
        """Advance the logic until it waits (a sleep, a remote call) or ends."""
        logic = self._logic
        while True:
            try:
                op = logic.throw(error) if error is not None else logic.send(value)
            except StopIteration as stop:
                if self._on_done is not None:
                    self._on_done(stop.value)
                return
            except OpError as failure:
                if self._on_done is not None:
                    self._on_done(failure.with_traceback(None))  # the answer is data, not frames
                return
            value, error = None, None
            if not op.local:
                self._driver._dispatch(self, op)
                return
            if isinstance(op, Now):
                value = self.env._now
            elif isinstance(op, Sleep):
                call_at_delay(self.env, op.seconds, self.wake)
                return
            else:
                error = TypeError(f"no driver answers the local operation {op.name}")

    def wake(self) -> None:
        """A sleep ended (or the flow starts)."""
        if self.alive():
            self.step()

    def resume(self, value: Any, error: BaseException | None) -> None:
        """A remote call settled: go on with its reply or its error."""
        if self.alive():
            self.step(value, error)

    def alive(self) -> bool:
        """Whether the worker running this logic still lives; if not, the logic is closed."""
        actor = self._actor
        if actor is None or actor.epoch == self._epoch:
            return True
        self._logic.close()
        return False


class _Call(Request):
    """One remote operation of a flow, in transit and then settled by its reply or its
    deadline, whichever is first.  It is the flow's :class:`Request` as well, so a call
    costs one object: the actor answers through :meth:`reply`."""

    __slots__ = ("_flow", "parent", "settled")

    def __init__(self, flow: _Flow, op: Operation, start: float, span: int) -> None:
        self.op = op
        self.origin = flow.origin
        self.sent_at = start
        self.trace = flow.trace
        self.span = span
        self.parent = flow.parent
        self._flow = flow
        self.settled = False

    def is_settled(self) -> bool:
        """Whether the reply or the deadline has settled the call."""
        return self.settled

    def reply(self, outcome: Any) -> None:
        """The reply arrived (a duplicated or late one finds the call settled)."""
        if self.settled:
            return
        self.settled = True
        op, flow = self.op, self._flow
        spans = flow._driver.kernel.spans
        failed = isinstance(outcome, OpError)
        name = type(op).__name__  # Operation.name, without the property call
        spans.record(
            self.origin,
            op.target,
            name,
            self.sent_at,
            flow.env._now,
            outcome.reason if failed else "ok",
            self.trace,
            self.span,
            self.parent,
        )
        actor = flow._actor
        if actor is not None and actor.epoch != flow._epoch:
            flow._logic.close()  # the worker that made the call died meanwhile (what alive() does)
        elif failed:
            flow.step(None, outcome)
        else:
            flow.step(outcome)

    def expire(self) -> None:
        """The deadline passed (it changes nothing once the reply came)."""
        if self.settled:
            return
        self.settled = True
        op, flow = self.op, self._flow
        flow._driver.kernel.spans.record(
            self.origin, op.target, op.name, self.sent_at, flow.env._now, "timeout", self.trace, self.span, self.parent
        )
        flow.resume(None, OperationTimeout("timeout", f"{op.name} to {op.target} after {op.timeout}s"))


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
