"""Callbacks at a simulated time, at the cost of one heap entry.

Most of what the engine schedules is "call this function then": a message's arrival, the
end of a service time, a deadline, the end of a sleep.  A ``simpy.Timeout`` with a
callback does that, but builds a general event (value, state, bound checks) and a closure
each time, and a request-heavy run schedules millions of them.  :func:`call_at_delay`
pushes a small slotted object straight onto the environment's event queue, where
``Environment.step`` treats it as an event that has succeeded: it calls its callbacks and
moves on.  Ordering is simpy's own (time, priority, sequence id), so mixing these with
ordinary events changes nothing; only the object is lighter.

:class:`DueQueue` serves things that fall due in the order they were added and nearly
always stop mattering first (a call's deadline, a QoS 1 resend check): one timer, armed
for the oldest item that still matters, instead of an event per item.

This is the one place that knows how simpy keeps its queue (``_queue``, ``_eid``, ``_now``
and what ``step`` reads of an event: ``callbacks``, ``_ok``, ``_value``).  The engine's
per-operation code (driver, actors, mailboxes) also reads the clock as ``env._now``: the
``now`` property is a function call, and an operation reads the clock about seven times.  So it also holds
:func:`run_until`, the kernel's event loop: simpy's ``run(until)`` and ``step`` with the
same order and the same failure semantics, but with a timer called directly instead of
through a method call and a callback list per event.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any, Generic, TypeVar

import simpy
from simpy.events import NORMAL, URGENT

__all__ = ["DueQueue", "call_at_delay", "run_until"]

T = TypeVar("T")


def _fire(timer: _Timer) -> None:
    timer.fn(*timer.args)


_FIRE = (_fire,)  # simpy's step only iterates an event's callbacks, so one shared tuple serves all timers


class _Timer:
    """What ``Environment.step`` needs of a succeeded event, and the call to make."""

    __slots__ = ("args", "callbacks", "fn")
    _ok = True
    _value = None

    def __init__(self, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.callbacks: tuple[Callable[[_Timer], None], ...] | None = _FIRE
        self.fn = fn
        self.args = args


class _Stop:
    """The end of a :func:`run_until`: scheduled like simpy's own stop event (urgent, at ``until``)."""

    __slots__ = ()


def run_until(env: simpy.Environment, until: float) -> None:
    """Process every event due before ``until`` (``until > env.now``), then set the clock to ``until``.

    The order is simpy's ``run(until)``: the stop is scheduled at ``until`` with urgent
    priority, so an ordinary event due exactly at ``until`` waits for the next run.  Each
    popped event has its callbacks called and, when it failed and nobody defused it,
    re-raises its error as ``Environment.step`` does; a timer is called directly.  Unlike
    simpy's loop, the stop leaves nothing behind in the queue, and it takes one event id.
    """
    if not until > env._now:
        raise ValueError(f"until ({until}) must be greater than the current simulation time")
    queue: list[Any] = env._queue
    stop = _Stop()
    heappush(queue, (until, URGENT, next(env._eid), stop))
    timer, pop = _Timer, heappop
    while True:
        env._now, _, _, event = pop(queue)
        if type(event) is timer:
            event.fn(*event.args)
            continue
        if type(event) is _Stop:
            if event is stop:
                return
            continue  # the stop of a run that an error ended
        callbacks, event.callbacks = event.callbacks, None
        for callback in callbacks:
            callback(event)
        if not event._ok and not hasattr(event, "_defused"):
            failure = event._value
            copy = type(failure)(*failure.args)
            copy.__cause__ = failure
            raise copy


def call_at_delay(env: simpy.Environment, delay: float, fn: Callable[..., None], *args: Any) -> None:
    """Call ``fn(*args)`` ``delay`` seconds from now (``delay >= 0``), as one scheduled event."""
    if delay < 0:
        raise ValueError(f"negative delay {delay}")
    queue: list[Any] = env._queue
    heappush(queue, (env._now + delay, NORMAL, next(env._eid), _Timer(fn, args)))


class DueQueue(Generic[T]):
    """Items that fall due in the order they are added, with one timer between them.

    ``add(due, item)`` with ``due`` never before the last item's (a fixed delay after now
    keeps that order).  When the oldest item that still matters falls due, ``expire(item)``
    is called; items that ``settled(item)`` says no longer matter are dropped on the way
    without costing an event.  The timer stays armed while an expiry runs, so an item added
    from inside ``expire`` is taken in by the same pass rather than starting a second timer.
    """

    __slots__ = ("_armed", "_env", "_expire", "_items", "_settled")

    def __init__(self, env: simpy.Environment, expire: Callable[[T], None], settled: Callable[[T], bool]) -> None:
        self._env = env
        self._expire = expire
        self._settled = settled
        self._items: deque[tuple[float, T]] = deque()
        self._armed = False

    def __len__(self) -> int:
        """Items held (some may have settled already)."""
        return len(self._items)

    def add(self, due: float, item: T) -> None:
        """Expire ``item`` at ``due`` unless it has settled by then."""
        self._items.append((due, item))
        if not self._armed:
            self._armed = True
            call_at_delay(self._env, due - self._env._now, self._fire)

    def _fire(self) -> None:
        items, now = self._items, self._env._now
        while items:
            due, item = items[0]
            if self._settled(item):
                items.popleft()
            elif due <= now:
                items.popleft()
                self._expire(item)
            else:
                call_at_delay(self._env, due - now, self._fire)  # still armed
                return
        self._armed = False
