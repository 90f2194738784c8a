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
and what ``step`` reads of an event: ``callbacks``, ``_ok``, ``_value``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from heapq import heappush
from typing import Any, Generic, TypeVar

import simpy
from simpy.events import NORMAL

__all__ = ["DueQueue", "call_at_delay"]

T = TypeVar("T")


def _fire(timer: _Timer) -> None:
    timer.fn(*timer.args)


class _Timer:
    """What ``Environment.step`` needs of a succeeded event, and the call to make."""

    __slots__ = ("args", "callbacks", "fn")
    _ok = True
    _value = None

    def __init__(self, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.callbacks: list[Callable[[_Timer], None]] | None = [_fire]
        self.fn = fn
        self.args = args


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
            call_at_delay(self._env, due - self._env.now, self._fire)

    def _fire(self) -> None:
        items, now = self._items, self._env.now
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
