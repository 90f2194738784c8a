"""Callbacks at a simulated time, at the cost of one heap entry.

Most of what the engine schedules is "call this function then": a message's arrival, the
end of a service time, a deadline, the end of a sleep.  A ``simpy.Timeout`` with a
callback does that, but builds a general event (value, state, bound checks) and a closure
each time, and a request-heavy run schedules millions of them.  :func:`call_at_delay`
pushes a small slotted object straight onto the environment's event queue, where
``Environment.step`` treats it as an event that has succeeded: it calls its callbacks and
moves on.  Ordering is simpy's own (time, priority, sequence id), so mixing these with
ordinary events changes nothing; only the object is lighter.

This is the one place that knows how simpy keeps its queue (``_queue``, ``_eid``, ``_now``
and what ``step`` reads of an event: ``callbacks``, ``_ok``, ``_value``).
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush
from typing import Any

import simpy
from simpy.events import NORMAL

__all__ = ["call_at_delay"]


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
