"""Circuit breaker: stop calling a failing dependency, then probe it before trusting it again.

Why a breaker at all: in the design review (finding C3) a slow replica exhausts the analytics
engine's workers and the whole dashboard goes down. A breaker turns "wait 10 s and fail" into
"fail now" while the dependency is known to be bad, which frees the workers and sheds load
from the dependency so that it can recover.

The semantics follow ``sony/gobreaker`` (the library the review names for the Go services)
with the trip rules the review asks for: open on the 5th consecutive failure (pybreaker's
``>=``, not gobreaker's ``> 5``) **or** when at least half of the calls in the last 10 s failed
(resilience4j's time-based window with a minimum number of calls); half-open after 30 s; close
after 3 successes. See ``research/semantics.md`` section 1.

The breaker is a pure state machine: it never reads a clock, never sleeps and never starts a
timer. Every method takes the simulated time ``now`` in seconds.

Edge cases, decided once here:

* **Lazy OPEN -> HALF_OPEN.** There is no timer. The breaker half-opens when it is asked (by
  :meth:`CircuitBreaker.state`, :meth:`~CircuitBreaker.try_acquire` or
  :meth:`~CircuitBreaker.record`) at ``now >= opened_at + open_for_s``. The boundary is
  inclusive (pybreaker, Polly), unlike gobreaker's strict ``Before``. The transition is
  reported with the nominal time ``opened_at + open_for_s``, not the time of the query, so
  that the state as a function of time does not depend on when somebody happened to look.
* **Generations.** Every state change starts a new generation and clears all counts. A
  :class:`Permit` remembers its generation; a result recorded with a permit from an older
  generation is silently ignored (gobreaker). So a slow call that started before the breaker
  opened cannot close or re-open it later, and a late probe from a previous half-open period
  cannot count towards the current one.
* **Only failures trip.** The trip rules are evaluated when a failure is recorded in CLOSED
  (gobreaker's ``ReadyToTrip``). A success never opens the breaker, even if the window's
  failure rate is still at the threshold after it.
* **Consecutive failures** are counted across the whole CLOSED period, not within the
  window: five failures an hour apart with no success in between still trip.
* **Rate window.** Outcomes are counted when they are *recorded* (at ``now``), in one-second
  buckets (``floor(now)``); the window is the current second plus the previous
  ``ceil(window_s) - 1`` whole seconds, so an outcome counts for between ``ceil(window_s) - 1``
  and ``ceil(window_s)`` seconds. This is resilience4j's TIME_BASED window and keeps memory at
  ``ceil(window_s)`` buckets whatever the traffic.
* **Half-open gate.** At most ``half_open_max_calls`` probes are admitted in total per
  half-open period (gobreaker's ``Requests >= MaxRequests``), whether or not they have
  finished. Excess calls are rejected and do not touch the counts. Any probe failure re-opens
  the breaker (a new open period starts at that ``now``); ``half_open_successes`` successes
  close it.
* **Abandoned permits.** A permit that is never recorded still holds its half-open slot. If
  all probe slots are taken by calls that never report back, the breaker stays half-open and
  rejects everything (gobreaker and resilience4j behave the same way). Callers must record
  every permit exactly once; a timed-out call is a failure. Recording a permit twice counts
  it twice: the breaker does not keep a set of outstanding permits, because that would grow
  with abandoned calls.
* **Time going backwards.** ``now`` is expected to be non-decreasing. An earlier ``now`` is
  tolerated: it never undoes a transition, and it is folded into the newest window bucket.
* **Listener.** ``on_transition(at, old, new)`` is called synchronously after the breaker's
  state has been updated, so a listener may query the breaker. An exception raised by the
  listener propagates to the caller; the breaker is already consistent at that point.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ._validation import is_count, is_finite, is_real

__all__ = ["BreakerSettings", "BreakerState", "CircuitBreaker", "Permit"]


class BreakerState(enum.Enum):
    """The three states of a circuit breaker."""

    CLOSED = "closed"
    """Calls flow; outcomes are counted against the trip rules."""
    OPEN = "open"
    """Calls are rejected without reaching the dependency until the open period ends."""
    HALF_OPEN = "half_open"
    """A few probe calls are let through to decide whether to close or re-open."""


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """Thresholds of a :class:`CircuitBreaker`; the defaults are the review's (finding C3).

    Attributes:
        consecutive_failures: Trip on this many consecutive failures (``>=``, so the default
            trips on the 5th).
        failure_rate: Trip when ``failures / calls >= failure_rate`` in the rolling window,
            provided the window holds at least ``min_calls`` calls. In ``(0, 1]``.
        window_s: Length of the rolling window for the rate rule, in seconds, rounded up to
            whole one-second buckets.
        min_calls: The rate rule is ignored while the window holds fewer calls than this, so
            that one failure out of one call does not count as a 100% failure rate.
        open_for_s: How long the breaker stays open before it admits probes.
        half_open_max_calls: Probes admitted in total per half-open period.
        half_open_successes: Successes in half-open that close the breaker. Must not exceed
            ``half_open_max_calls``, or the breaker could never close.
    """

    consecutive_failures: int = 5
    failure_rate: float = 0.5
    window_s: float = 10.0
    min_calls: int = 10
    open_for_s: float = 30.0
    half_open_max_calls: int = 3
    half_open_successes: int = 3

    def __post_init__(self) -> None:
        counts = ("consecutive_failures", "min_calls", "half_open_max_calls", "half_open_successes")
        for name in counts:
            value = getattr(self, name)
            if not is_count(value) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1 (got {value!r})")
        for name in ("window_s", "open_for_s"):
            value = getattr(self, name)
            if not (is_finite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0 (got {value!r})")
        if not (is_real(self.failure_rate) and 0 < self.failure_rate <= 1):
            raise ValueError(f"failure_rate must be in (0, 1] (got {self.failure_rate!r})")
        if self.half_open_successes > self.half_open_max_calls:
            raise ValueError(
                f"half_open_successes ({self.half_open_successes}) must be <= "
                f"half_open_max_calls ({self.half_open_max_calls}): half-open admits at most "
                "half_open_max_calls probes, so the breaker could never close"
            )


@dataclass(frozen=True, slots=True)
class Permit:
    """Admission to make one call, returned by :meth:`CircuitBreaker.try_acquire`.

    Attributes:
        generation: The breaker generation the call was admitted in. Its outcome only counts
            if the breaker is still in that generation when the outcome is recorded.
    """

    generation: int


class _RollingCounts:
    """Two integer totals over a rolling window of one-second buckets.

    Why buckets: keeping one entry per event would make memory grow with traffic. One bucket
    per second bounds memory by the window length, at the price of a window edge quantised to
    one second (resilience4j's TIME_BASED window, gobreaker's ``BucketPeriod``). Also used by
    :class:`models.policies.retry.RetryBudget`.
    """

    __slots__ = ("_buckets", "_first", "_second", "_span")

    def __init__(self, window_s: float) -> None:
        self._span = max(1, math.ceil(window_s))
        self._buckets: deque[list[int]] = deque()
        self._first = 0
        self._second = 0

    def add(self, now: float, first: int, second: int) -> None:
        """Add to both totals at time ``now``."""
        self._expire(now)
        second_index = math.floor(now)
        if self._buckets and self._buckets[-1][0] >= second_index:
            # Same second, or a `now` earlier than the newest bucket: fold it into the newest.
            bucket = self._buckets[-1]
        else:
            bucket = [second_index, 0, 0]
            self._buckets.append(bucket)
        bucket[1] += first
        bucket[2] += second
        self._first += first
        self._second += second

    def totals(self, now: float) -> tuple[int, int]:
        """Both totals over the window that ends at ``now``."""
        self._expire(now)
        return self._first, self._second

    def clear(self) -> None:
        """Forget everything."""
        self._buckets.clear()
        self._first = 0
        self._second = 0

    def _expire(self, now: float) -> None:
        oldest_kept = math.floor(now) - self._span + 1
        buckets = self._buckets
        while buckets and buckets[0][0] < oldest_kept:
            _, first, second = buckets.popleft()
            self._first -= first
            self._second -= second


class CircuitBreaker:
    """A gobreaker-style circuit breaker driven by simulated time.

    Use it in two steps around each call::

        permit = breaker.try_acquire(now)
        if permit is None:
            ...  # fail fast: the dependency is not called
        else:
            ok = call_dependency()
            breaker.record(permit, later, success=ok)

    Args:
        settings: Trip and recovery thresholds.
        on_transition: Called as ``on_transition(at, old_state, new_state)`` on every state
            change, for metrics and logs.
    """

    __slots__ = (
        "_consecutive_failures",
        "_generation",
        "_half_open_admitted",
        "_half_open_successes",
        "_on_transition",
        "_opened_at",
        "_rejected",
        "_settings",
        "_state",
        "_transitions",
        "_window",
    )

    def __init__(
        self,
        settings: BreakerSettings = BreakerSettings(),
        on_transition: Callable[[float, BreakerState, BreakerState], None] | None = None,
    ) -> None:
        self._settings = settings
        self._on_transition = on_transition
        self._state = BreakerState.CLOSED
        self._generation = 0
        self._opened_at = -math.inf
        self._window = _RollingCounts(settings.window_s)
        self._consecutive_failures = 0
        self._half_open_admitted = 0
        self._half_open_successes = 0
        self._rejected = 0
        self._transitions = 0

    @property
    def settings(self) -> BreakerSettings:
        """The thresholds this breaker was built with."""
        return self._settings

    @property
    def rejected(self) -> int:
        """Calls refused by :meth:`try_acquire` (open, or half-open with no probe slot left)."""
        return self._rejected

    @property
    def transitions(self) -> int:
        """State changes so far."""
        return self._transitions

    def state(self, now: float) -> BreakerState:
        """The state at ``now``, performing the lazy OPEN -> HALF_OPEN change if it is due."""
        self._advance(now)
        return self._state

    def try_acquire(self, now: float) -> Permit | None:
        """Ask to make one call at ``now``.

        Returns:
            A :class:`Permit` to pass to :meth:`record` with the call's outcome, or ``None``
            if the call must not be made (it is counted in :attr:`rejected`).
        """
        self._advance(now)
        state = self._state
        if state is BreakerState.OPEN:
            self._rejected += 1
            return None
        if state is BreakerState.HALF_OPEN:
            if self._half_open_admitted >= self._settings.half_open_max_calls:
                self._rejected += 1
                return None
            self._half_open_admitted += 1
        return Permit(self._generation)

    def record(self, permit: Permit, now: float, success: bool) -> None:
        """Report the outcome of an admitted call that finished at ``now``.

        Outcomes from an older generation than the current one are ignored.
        """
        self._advance(now)
        if permit.generation != self._generation:
            return
        settings = self._settings
        if self._state is BreakerState.HALF_OPEN:
            if not success:
                self._move(BreakerState.OPEN, now)
                return
            self._half_open_successes += 1
            if self._half_open_successes >= settings.half_open_successes:
                self._move(BreakerState.CLOSED, now)
            return
        # CLOSED: a permit of the current generation is never issued while OPEN.
        if success:
            self._consecutive_failures = 0
            self._window.add(now, 1, 0)
            return
        self._consecutive_failures += 1
        self._window.add(now, 1, 1)
        if self._consecutive_failures >= settings.consecutive_failures:
            self._move(BreakerState.OPEN, now)
            return
        calls, failures = self._window.totals(now)
        if calls >= settings.min_calls and failures / calls >= settings.failure_rate:
            self._move(BreakerState.OPEN, now)

    def _advance(self, now: float) -> None:
        if self._state is BreakerState.OPEN:
            due = self._opened_at + self._settings.open_for_s
            if now >= due:
                self._move(BreakerState.HALF_OPEN, due)

    def _move(self, new: BreakerState, at: float) -> None:
        old = self._state
        self._state = new
        self._generation += 1
        self._transitions += 1
        self._window.clear()
        self._consecutive_failures = 0
        self._half_open_admitted = 0
        self._half_open_successes = 0
        if new is BreakerState.OPEN:
            self._opened_at = at
        if self._on_transition is not None:
            self._on_transition(at, old, new)
