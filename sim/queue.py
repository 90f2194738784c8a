"""A FIFO mailbox that costs a simulation event only when its consumer is idle.

``simpy.Store`` costs two events per hop and pops from the front of a list (O(backlog)).
Here ``put`` appends to a deque and, if consumers are parked, wakes the oldest one with a
plain event; a busy consumer drains the deque without any event at all.
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

    __slots__ = ("_env", "_items", "_waiters")

    def __init__(self, env: simpy.Environment) -> None:
        self._env = env
        self._items: deque[T] = deque()
        self._waiters: deque[simpy.Event] = deque()

    def put(self, item: T) -> None:
        """Enqueue ``item`` and wake one parked consumer, if any."""
        self._items.append(item)
        if self._waiters:
            self._waiters.popleft().succeed()

    def wait(self) -> simpy.Event:
        """An event that fires when an item may be available; yield it when ``not self``."""
        event = self._env.event()
        self._waiters.append(event)
        return event

    def pop(self) -> T:
        """Remove and return the oldest item (caller checks emptiness first)."""
        return self._items.popleft()

    def clear(self) -> list[T]:
        """Drop every queued item (a crash) and return what was lost."""
        lost = list(self._items)
        self._items.clear()
        return lost

    def abandon_waiters(self) -> None:
        """Forget the parked consumers (their owner died); they are never woken."""
        self._waiters.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)
