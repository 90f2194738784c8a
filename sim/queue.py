"""A FIFO mailbox that costs a simulation event only when its consumer is idle.

``simpy.Store`` costs two events per hop and pops from the front of a list (O(backlog)).
Here ``put`` appends to a deque and, if consumers are parked, wakes the oldest one with a
plain event; a busy consumer drains the deque without any event at all.

The mailbox also keeps the figures queueing theory talks about, at O(1) per change and
without allocating anything that grows: the arrival time of every queued item (so
:meth:`Mailbox.take` knows how long the item waited -- a duplicated delivery of the same
object is two items with two arrival times), and the area under the queue-length step
function, brought up to date at every ``put``, ``take``/``pop`` and ``clear``.
:meth:`Mailbox.area` extends that area to a given time without changing anything.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Generic, TypeVar

import simpy

__all__ = ["Mailbox"]

T = TypeVar("T")


class Mailbox(Generic[T]):
    """Deque plus waiting-consumer events; see the module docstring for why."""

    __slots__ = ("_area", "_arrivals", "_changed", "_env", "_items", "_waiters", "created", "queued")

    def __init__(self, env: simpy.Environment) -> None:
        self._env = env
        self._items: deque[T] = deque()
        #: the queued items, oldest first: read it (its truth is "anything queued?" without a
        #: method call, which a server asks twice per request); change it only through the methods
        self.queued = self._items
        self._arrivals: deque[float] = deque()  # when each queued item was put, same order
        self._waiters: deque[simpy.Event] = deque()
        #: simulated time the mailbox was made; :meth:`area` integrates from here
        self.created: float = env.now
        self._area = 0.0  # integral of len(self) from ``created`` to ``_changed``
        self._changed: float = env.now

    def put(self, item: T) -> None:
        """Enqueue ``item`` and wake one parked consumer, if any."""
        now = self._env._now
        items = self._items
        if items:
            self._area += len(items) * (now - self._changed)
        self._changed = now
        items.append(item)
        self._arrivals.append(now)
        if self._waiters:
            self._waiters.popleft().succeed()

    def wait(self) -> simpy.Event:
        """An event that fires when an item may be available; yield it when ``not self``."""
        event = self._env.event()
        self._waiters.append(event)
        return event

    def take(self) -> tuple[T, float]:
        """Remove the oldest item (caller checks emptiness first); return it and its wait in seconds."""
        now = self._env._now
        items = self._items
        self._area += len(items) * (now - self._changed)
        self._changed = now
        return items.popleft(), now - self._arrivals.popleft()

    def pop(self) -> T:
        """Remove and return the oldest item (caller checks emptiness first)."""
        return self.take()[0]

    def clear(self) -> list[T]:
        """Drop every queued item (a crash) and return what was lost."""
        now = self._env._now
        items = self._items
        self._area += len(items) * (now - self._changed)
        self._changed = now
        lost = list(items)
        items.clear()
        self._arrivals.clear()
        return lost

    def area(self, now: float) -> float:
        """Integral of the queue length (item-seconds) from :attr:`created` to ``now``.

        Pure: the running total is extended to ``now`` in a local computation, so reading
        it any number of times changes nothing.  ``now`` may not precede the last change.
        """
        if now < self._changed:
            raise ValueError(f"cannot integrate the queue to {now}: it last changed at {self._changed}")
        return self._area + len(self._items) * (now - self._changed)

    def abandon_waiters(self) -> None:
        """Forget the parked consumers (their owner died); they are never woken."""
        self._waiters.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)
