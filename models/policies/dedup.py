"""A deduplication window: remembers keys seen in the last ``window_s`` seconds.

The review's countermeasure for duplicate readings (C5) is a deduplication window in the
stream consumer: at-least-once delivery and MQTT QoS 1 resends both replay a
``(device_id, time)`` the system has already seen.

Semantics, for any sequence of calls and any clock (the property tests check them against a
brute-force list of records):

* A key that is not a duplicate is *recorded* at ``now`` with the expiry ``now + window_s``
  (the float sum). A duplicate is not recorded again: the window runs from the first sighting,
  so a key that keeps coming back is let through once per window.
* Every call first forgets every record whose expiry is ``<= now``. A key is a duplicate
  exactly when it has a record that is not forgotten, i.e. one that expires after ``now``.
* So an expired key is **never** reported as a duplicate, whatever the clock does: its record
  was forgotten on the way in. Since a float sum never rounds past a representable ``now``,
  ``now + window_s > now`` implies the exact sum is too, at any magnitude of the clock.
* A clock that goes backwards keeps the records that have not yet been seen to expire (a key
  recorded "later" is still recent), and a record, once forgotten, stays forgotten when the
  clock goes back. A key seen twice at the same instant is a duplicate the second time.
* At clock values so large that ``now + window_s`` rounds to ``now`` (``window_s`` below half
  a float step of ``now``, e.g. 0.06 ms at 1e12 s) a record expires as soon as it is made and
  nothing is deduplicated: the window cannot be represented at that clock.

This is also what :class:`models.postgres.RecentKeys` answers, vectorised, for non-decreasing
clocks. Memory is bounded by the keys recorded within one window: expired records are
dropped on every call, from a FIFO while the clock is monotonic (amortised O(1)) and from a
heap once it has gone back (amortised O(log n)).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Hashable

from ._validation import is_finite

__all__ = ["DedupWindow"]


class DedupWindow:
    """Keys seen within the last ``window_s`` seconds.

    Args:
        window_s: How long a key is remembered after it was recorded.
    """

    __slots__ = ("_expiry", "_fifo", "_heap", "_serial", "window_s")

    def __init__(self, window_s: float) -> None:
        if not (is_finite(window_s) and window_s > 0):
            raise ValueError(f"window_s must be a finite number > 0 (got {window_s!r})")
        self.window_s = window_s
        self._expiry: dict[Hashable, int] = {}  # key -> serial of its unexpired record
        # Records as (expiry, serial, key), soonest expiry first. While the clock never goes
        # back they arrive in expiry order and a FIFO is enough; the first record that would
        # break the order turns the FIFO into a heap (a sorted list already is one).
        self._fifo: deque[tuple[float, int, Hashable]] | None = deque()
        self._heap: list[tuple[float, int, Hashable]] = []
        self._serial = 0

    def seen(self, key: Hashable, now: float) -> bool:
        """True if ``key`` has a record that expires after ``now``; otherwise record it and return False.

        Raises:
            ValueError: ``now`` is NaN.
        """
        if now != now:
            raise ValueError("now must not be NaN")
        expiry = self._expiry
        fifo = self._fifo
        if fifo is not None:
            while fifo and fifo[0][0] <= now:
                _, serial, old = fifo.popleft()
                if expiry.get(old) == serial:
                    del expiry[old]
        else:
            heap = self._heap
            while heap and heap[0][0] <= now:
                _, serial, old = heapq.heappop(heap)
                if expiry.get(old) == serial:
                    del expiry[old]
        if key in expiry:
            return True
        until = now + self.window_s
        serial = self._serial
        self._serial = serial + 1
        expiry[key] = serial
        record = (until, serial, key)
        if fifo is None:
            heapq.heappush(self._heap, record)
        elif not fifo or fifo[-1][0] <= until:
            fifo.append(record)
        else:  # the clock went back
            self._heap = list(fifo)
            self._fifo = None
            heapq.heappush(self._heap, record)
        return False

    def clear(self) -> None:
        """Forget everything (volatile state lost in a crash)."""
        self._expiry.clear()
        self._fifo = deque()
        self._heap = []

    def __len__(self) -> int:
        """Keys remembered (those that have not been seen to expire)."""
        return len(self._expiry)
