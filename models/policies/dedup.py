"""A deduplication window: remembers keys seen in the last ``window_s`` seconds.

The review's countermeasure for duplicate readings (C5) is a deduplication window in the
stream consumer: at-least-once delivery and MQTT QoS 1 resends both replay a
``(device_id, time)`` the system has already seen.  Memory is bounded by the arrival
rate times the window: expired keys are pruned in arrival order, amortised per call.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

__all__ = ["DedupWindow"]


class DedupWindow:
    """Keys seen within the last ``window_s`` seconds."""

    __slots__ = ("_expiry", "_order", "window_s")

    def __init__(self, window_s: float) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0 (got {window_s})")
        self.window_s = window_s
        self._expiry: dict[Hashable, float] = {}
        self._order: deque[tuple[float, Hashable]] = deque()

    def seen(self, key: Hashable, now: float) -> bool:
        """True if ``key`` was recorded within the window; otherwise record it and return False."""
        order = self._order
        expiry = self._expiry
        while order and order[0][0] <= now:
            t, old = order.popleft()
            if expiry.get(old) == t:
                del expiry[old]
        if key in expiry:
            return True
        until = now + self.window_s
        expiry[key] = until
        order.append((until, key))
        return False

    def clear(self) -> None:
        """Forget everything (volatile state lost in a crash)."""
        self._expiry.clear()
        self._order.clear()

    def __len__(self) -> int:
        return len(self._expiry)
