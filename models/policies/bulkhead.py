"""Bulkhead: a cap on concurrent calls to one dependency, so it cannot take every worker.

Why: in the review's finding C3 a slow replica holds all of the analytics engine's workers and
unrelated requests starve. Giving each dependency its own bounded share (the review suggests,
e.g., at most 100 concurrent PostgreSQL queries) keeps a slow dependency's damage inside its
own compartment. This bulkhead does not queue: a call over the limit is rejected at once and
the caller fails fast or degrades (serve from cache), which is what keeps latency bounded.
"""

from __future__ import annotations

from ._validation import is_count

__all__ = ["Bulkhead"]


class Bulkhead:
    """A non-blocking semaphore that counts its rejections.

    Every successful :meth:`try_enter` must be paired with exactly one :meth:`leave` when the
    call finishes, whatever its outcome.

    Args:
        max_concurrent: Calls allowed in at the same time.
    """

    __slots__ = ("_in_use", "_max", "_rejected")

    def __init__(self, max_concurrent: int) -> None:
        if not is_count(max_concurrent) or max_concurrent < 1:
            raise ValueError(f"max_concurrent must be an integer >= 1 (got {max_concurrent!r})")
        self._max = int(max_concurrent)
        self._in_use = 0
        self._rejected = 0

    @property
    def max_concurrent(self) -> int:
        """The concurrency limit."""
        return self._max

    @property
    def in_use(self) -> int:
        """Calls currently inside."""
        return self._in_use

    @property
    def rejected(self) -> int:
        """Calls turned away by :meth:`try_enter` so far."""
        return self._rejected

    def try_enter(self) -> bool:
        """Enter if a slot is free; otherwise count a rejection and return ``False``."""
        if self._in_use >= self._max:
            self._rejected += 1
            return False
        self._in_use += 1
        return True

    def leave(self) -> None:
        """Free the slot taken by a successful :meth:`try_enter`.

        Raises:
            RuntimeError: Nothing is inside (an unpaired ``leave``, a bug in the caller that
                would otherwise silently raise the limit).
        """
        if self._in_use == 0:
            raise RuntimeError("Bulkhead.leave() without a matching successful try_enter()")
        self._in_use -= 1
