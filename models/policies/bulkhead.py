"""Bulkhead: a cap on concurrent calls to one dependency, so it cannot take every worker.

Why: in the review's finding C3 a slow replica holds all of the analytics engine's workers and
unrelated requests starve. Giving each dependency its own bounded share (the review suggests,
e.g., at most 100 concurrent PostgreSQL queries) keeps a slow dependency's damage inside its
own compartment. Use one :class:`Bulkhead` per dependency.

By default a call over the limit is rejected at once and the caller fails fast or degrades
(serve from cache), which is what keeps latency bounded. Optionally callers may wait, within
bounds: resilience4j's ``SemaphoreBulkhead`` (``maxConcurrentCalls`` and ``maxWaitDuration``)
and Polly's bulkhead (``maxParallelization`` and ``maxQueuingActions``) combined:

* ``max_queue``: how many callers may wait at once (0, the default: nobody waits; ``None``:
  no limit on the number, only on the time).
* ``max_wait_s``: how long a caller may wait (``math.inf``, the default: until admitted;
  0: nobody waits).

The bulkhead is a pure, clock-injected state machine with no timers:

* :meth:`Bulkhead.enter` at ``now`` answers :class:`Admitted` (a permit is held),
  :class:`Queued` (with a ticket and the deadline by which it must be admitted) or
  :class:`Rejected`.
* :meth:`Bulkhead.leave` frees a permit and, if callers are waiting, hands it straight to the
  first one in arrival order (FIFO) and returns its :class:`Admitted`, so that the caller of
  ``leave`` can wake it. A permit is never free while somebody waits.
* A queued caller may be admitted while ``now < deadline`` (``deadline = queued_at +
  max_wait_s``); at the deadline its wait has run out and it is rejected ("timeout") by the
  next call that looks (every call first expires the callers whose deadline has come).
  :meth:`Bulkhead.expire` does only that and returns them, so that their owners can be told;
  a caller whose own timer fires calls :meth:`Bulkhead.cancel`.
* ``now`` is treated as a monotonic clock: an earlier ``now`` than one already seen counts as
  the latest one seen, so deadlines stay in arrival order and the queue stays FIFO.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from ._validation import is_count, is_real

__all__ = ["Admitted", "Bulkhead", "Queued", "RejectReason", "Rejected"]


@dataclass(frozen=True, slots=True)
class Admitted:
    """The caller holds a permit: make the call, then :meth:`Bulkhead.leave`.

    Attributes:
        ticket: The number :meth:`Bulkhead.enter` gave the caller.
        waited_s: How long it waited in the queue (0 if admitted at once).
    """

    ticket: int
    waited_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Queued:
    """The caller waits: it is admitted by a later :meth:`Bulkhead.leave`, or times out.

    Attributes:
        ticket: The number to look for in :meth:`Bulkhead.leave`'s answers, and to
            :meth:`Bulkhead.cancel` with.
        deadline: The caller must be admitted before this time (``math.inf``: no limit).
    """

    ticket: int
    deadline: float


RejectReason = Literal["full", "timeout"]
"""``"full"``: no permit and no room in the queue; ``"timeout"``: waited ``max_wait_s``."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """The caller is turned away: fail fast or degrade.

    Attributes:
        ticket: The number :meth:`Bulkhead.enter` gave the caller.
        reason: See :data:`RejectReason`.
    """

    ticket: int
    reason: RejectReason


class Bulkhead:
    """A semaphore for one dependency, with an optional bounded FIFO wait.

    Every admission (by :meth:`try_enter`, :meth:`enter` or a hand-over in :meth:`leave`) must
    be paired with exactly one :meth:`leave` when the call finishes, whatever its outcome.

    Args:
        max_concurrent: Calls allowed in at the same time.
        max_queue: Callers allowed to wait at the same time (``None``: any number).
        max_wait_s: How long a caller may wait (``math.inf``: as long as it takes).
    """

    __slots__ = (
        "_clock",
        "_in_use",
        "_max",
        "_max_queue",
        "_max_wait",
        "_queue",
        "_rejected",
        "_tickets",
        "_timed_out",
    )

    def __init__(self, max_concurrent: int, *, max_queue: int | None = 0, max_wait_s: float = math.inf) -> None:
        if not is_count(max_concurrent) or max_concurrent < 1:
            raise ValueError(f"max_concurrent must be an integer >= 1 (got {max_concurrent!r})")
        if max_queue is not None and (not is_count(max_queue) or max_queue < 0):
            raise ValueError(f"max_queue must be an integer >= 0 or None (got {max_queue!r})")
        if not (is_real(max_wait_s) and max_wait_s >= 0):  # NaN fails the comparison
            raise ValueError(f"max_wait_s must be a number >= 0 or math.inf (got {max_wait_s!r})")
        self._max = int(max_concurrent)
        self._max_queue = None if max_queue is None else int(max_queue)
        self._max_wait = float(max_wait_s)
        self._in_use = 0
        self._rejected = 0
        self._timed_out = 0
        self._tickets = 0
        self._clock = -math.inf
        self._queue: OrderedDict[int, tuple[float, float]] = OrderedDict()  # ticket -> (queued_at, deadline)

    @property
    def max_concurrent(self) -> int:
        """The concurrency limit."""
        return self._max

    @property
    def max_queue(self) -> int | None:
        """How many callers may wait at once (``None``: any number)."""
        return self._max_queue

    @property
    def max_wait_s(self) -> float:
        """How long a caller may wait."""
        return self._max_wait

    @property
    def in_use(self) -> int:
        """Calls currently inside."""
        return self._in_use

    @property
    def waiting(self) -> int:
        """Callers in the queue (including any whose deadline has come but that no call has
        expired yet)."""
        return len(self._queue)

    @property
    def rejected(self) -> int:
        """Callers turned away so far: at once (full) or after waiting (timeout)."""
        return self._rejected

    @property
    def timed_out(self) -> int:
        """Callers rejected because their wait ran out."""
        return self._timed_out

    def try_enter(self, now: float | None = None) -> bool:
        """Enter if a permit is free; otherwise count a rejection and return ``False``.

        Never queues. ``now`` (default: the latest time seen) is used to expire waiting
        callers first.
        """
        self.expire(self._clock if now is None else now)
        self._tickets += 1
        if self._in_use >= self._max:
            self._rejected += 1
            return False
        self._in_use += 1
        return True

    def enter(self, now: float) -> Admitted | Queued | Rejected:
        """Ask to make one call at ``now``: admitted, queued (FIFO) or rejected."""
        self.expire(now)
        ticket = self._tickets
        self._tickets += 1
        if self._in_use < self._max:  # then nobody is waiting
            self._in_use += 1
            return Admitted(ticket)
        room = self._max_queue is None or len(self._queue) < self._max_queue
        if not room or self._max_wait <= 0:
            self._rejected += 1
            return Rejected(ticket, "full")
        clock = self._clock
        deadline = clock + self._max_wait
        self._queue[ticket] = (clock, deadline)
        return Queued(ticket, deadline)

    def leave(self, now: float | None = None) -> Admitted | None:
        """Free the permit of a finished call at ``now`` (default: the latest time seen).

        Returns:
            The first waiting caller, now admitted with the freed permit, or ``None`` if
            nobody is waiting (the permit is free).

        Raises:
            RuntimeError: Nothing is inside (an unpaired ``leave``, a bug in the caller that
                would otherwise silently raise the limit).
        """
        if self._in_use == 0:
            raise RuntimeError("Bulkhead.leave() without a matching admission")
        self.expire(self._clock if now is None else now)
        if self._queue:
            ticket, (queued_at, _) = self._queue.popitem(last=False)
            return Admitted(ticket, self._clock - queued_at)
        self._in_use -= 1
        return None

    def cancel(self, ticket: int, now: float) -> bool:
        """A waiting caller gives up at ``now`` (e.g. its own timer fired).

        Returns:
            ``True`` if it was waiting and has left the queue (counted as a timeout if its
            deadline had come), ``False`` if it was not waiting: already admitted by
            :meth:`leave` (then it holds a permit and must :meth:`leave`), already rejected,
            or unknown.
        """
        expired = self.expire(now)
        if any(rejection.ticket == ticket for rejection in expired):
            return True
        return self._queue.pop(ticket, None) is not None

    def expire(self, now: float) -> tuple[Rejected, ...]:
        """Reject, at ``now``, the waiting callers whose deadline has come.

        Returns:
            Their rejections (reason ``"timeout"``), in arrival order.
        """
        clock = self._observe(now)
        queue = self._queue
        expired: list[Rejected] = []
        while queue:
            ticket, (_, deadline) = next(iter(queue.items()))
            if deadline > clock:
                break
            del queue[ticket]
            expired.append(Rejected(ticket, "timeout"))
        self._timed_out += len(expired)
        self._rejected += len(expired)
        return tuple(expired)

    def _observe(self, now: float) -> float:
        if math.isnan(now):
            raise ValueError("now must not be NaN")
        if now > self._clock:
            self._clock = now
        return self._clock
