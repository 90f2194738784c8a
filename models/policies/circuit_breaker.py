"""Circuit breaker: stop calling a failing dependency, then probe it before trusting it again.

Why a breaker at all: in the design review (finding C3) a slow replica exhausts the analytics
engine's workers and the whole dashboard goes down. A breaker turns "wait 10 s and fail" into
"fail now" while the dependency is known to be bad, which frees the workers and sheds load
from the dependency so that it can recover.

The semantics follow ``sony/gobreaker`` (the library the review names for the Go services)
with the trip rules the review asks for: open on the 5th consecutive failure (pybreaker's
``>=``, not gobreaker's ``> 5``) **or** when at least half of the calls in the last 10 s failed
(resilience4j's time-based window with a minimum number of calls); half-open after 30 s; close
after 3 successes. From resilience4j come the slow-call rule, ignored outcomes and the manual
states. See ``research/semantics.md`` section 1.

The breaker is a pure state machine: it never reads a clock, never sleeps and never starts a
timer. Every method takes the simulated time ``now`` in seconds.

Edge cases, decided once here:

* **Lazy OPEN -> HALF_OPEN.** There is no timer. The breaker half-opens when it is asked (by
  :meth:`CircuitBreaker.state`, :meth:`~CircuitBreaker.try_acquire`,
  :meth:`~CircuitBreaker.record`, ...) at ``now >= opened_at + open_for_s``. The boundary is
  inclusive (pybreaker, Polly), unlike gobreaker's strict ``Before``. The transition is
  reported with the nominal time ``opened_at + open_for_s``, not the time of the query, so
  that the state as a function of time does not depend on when somebody happened to look.
* **Generations.** Every state change starts a new generation and clears all counts. A
  :class:`Permit` remembers its generation; a result recorded with a permit from an older
  generation is silently ignored (gobreaker). So a slow call that started before the breaker
  opened cannot close or re-open it later, and a late probe from a previous half-open period
  cannot count towards the current one.
* **Only bad outcomes trip.** The failure-rate and consecutive-failure rules are evaluated
  when a failure is recorded in CLOSED (gobreaker's ``ReadyToTrip``), the slow-call rule when
  a slow call is recorded. A fast success never opens the breaker, even if a rate in the
  window is still at its threshold after it.
* **Consecutive failures** are counted across the whole CLOSED period, not within the
  window: five failures an hour apart with no success in between still trip. An ignored
  outcome (see below) neither counts nor resets the run.
* **Rate window.** Outcomes are counted when they are *recorded* (at ``now``), in one-second
  buckets (``floor(now)``); the window is the current second plus the previous
  ``ceil(window_s) - 1`` whole seconds, so an outcome counts for between ``ceil(window_s) - 1``
  and ``ceil(window_s)`` seconds. This is resilience4j's TIME_BASED window and keeps memory at
  ``ceil(window_s)`` buckets whatever the traffic. Both rates need at least ``min_calls``
  calls in the window (resilience4j's ``minimumNumberOfCalls``); both compare with ``>=``.
* **Slow calls** (resilience4j): a call whose duration is *strictly greater* than
  ``slow_call_duration_s`` is slow, whether it succeeded or failed; it counts in the
  slow-call rate and, if it failed, in the failure rate too. The duration is ``now`` minus
  the time the permit was acquired, unless the caller passes ``duration_s``.
* **Half-open gate.** At most ``half_open_max_calls`` probes are admitted in total per
  half-open period (gobreaker's ``Requests >= MaxRequests``), whether or not they have
  finished. Excess calls are rejected and do not touch the counts. Any probe failure re-opens
  the breaker (a new open period starts at that ``now``). When ``half_open_successes`` probes
  have succeeded the breaker decides: it re-opens if the slow-call rate among them is
  ``>= slow_call_rate`` (resilience4j), and closes otherwise.
* **Ignored outcomes** (resilience4j ``ignoreExceptions`` / ``releasePermission``, gobreaker
  v2 ``IsExcluded``): :meth:`CircuitBreaker.release` returns the permit without recording
  anything. In half-open the probe slot becomes free again.
* **Settling a permit twice.** A half-open probe is settled once: recording or releasing it
  again is ignored (the breaker tracks the at most ``half_open_max_calls`` outstanding
  probes). In CLOSED the breaker keeps no set of outstanding permits, because that would
  grow with abandoned calls: recording a permit twice counts it twice.
* **Abandoned permits.** A probe that is never recorded or released still holds its
  half-open slot. If all probe slots are taken by calls that never report back, the breaker
  stays half-open and rejects everything (gobreaker and resilience4j behave the same way).
  Callers must settle every permit; a timed-out call is a failure.
* **Manual states** (resilience4j): :meth:`CircuitBreaker.transition_to` moves to any state at
  once, for drills. FORCED_OPEN rejects every call and stays until told otherwise;
  FORCED_CLOSED admits every call and keeps counting (resilience4j's METRICS_ONLY, Hystrix's
  ``forceClosed``) but never trips; DISABLED admits every call and records nothing. A manual
  transition to the current state is a real transition (resilience4j's ``CLOSED_TO_CLOSED``):
  new generation, fresh counts, reported. As in resilience4j (which has no
  ``METRICS_ONLY_TO_OPEN`` or ``METRICS_ONLY_TO_HALF_OPEN``), FORCED_CLOSED cannot go straight
  to OPEN or HALF_OPEN: reset it to CLOSED first.
* **History.** Every transition is appended to :attr:`CircuitBreaker.history` as
  ``(time, new_state)``; the breaker starts CLOSED before the first entry. The history keeps
  the last ``history_limit`` transitions (:attr:`~CircuitBreaker.transitions` counts them
  all), so memory is bounded and the same calls give the same history.
* **Time going backwards.** ``now`` is expected to be non-decreasing. An earlier ``now`` is
  tolerated: it never undoes a transition, it is folded into the newest window bucket, and a
  transition is never reported earlier than the previous one (its time is clamped), so the
  history is always in time order.
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

__all__ = ["BreakerCounts", "BreakerSettings", "BreakerState", "CircuitBreaker", "Permit"]


class BreakerState(enum.Enum):
    """The states of a circuit breaker: three automatic ones and three manual ones."""

    CLOSED = "closed"
    """Calls flow; outcomes are counted against the trip rules."""
    OPEN = "open"
    """Calls are rejected without reaching the dependency until the open period ends."""
    HALF_OPEN = "half_open"
    """A few probe calls are let through to decide whether to close or re-open."""
    FORCED_OPEN = "forced_open"
    """Manual: every call is rejected until another manual transition (resilience4j)."""
    FORCED_CLOSED = "forced_closed"
    """Manual: every call is admitted and counted, but the breaker never trips."""
    DISABLED = "disabled"
    """Manual: every call is admitted and nothing is recorded (resilience4j)."""


_REJECTING = frozenset({BreakerState.OPEN, BreakerState.FORCED_OPEN})
_COUNTING = frozenset({BreakerState.CLOSED, BreakerState.FORCED_CLOSED})
_PROBING = frozenset({BreakerState.OPEN, BreakerState.HALF_OPEN})


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """Thresholds of a :class:`CircuitBreaker`; the defaults are the review's (finding C3).

    Attributes:
        consecutive_failures: Trip on this many consecutive failures (``>=``, so the default
            trips on the 5th).
        failure_rate: Trip when ``failures / calls >= failure_rate`` in the rolling window,
            provided the window holds at least ``min_calls`` calls. In ``(0, 1]``.
        window_s: Length of the rolling window for the rate rules, in seconds, rounded up to
            whole one-second buckets.
        min_calls: The rate rules are ignored while the window holds fewer calls than this, so
            that one failure out of one call does not count as a 100% failure rate.
        open_for_s: How long the breaker stays open before it admits probes.
        half_open_max_calls: Probes admitted in total per half-open period.
        half_open_successes: Successes in half-open that close the breaker. Must not exceed
            ``half_open_max_calls``, or the breaker could never close.
        slow_call_duration_s: A call that takes strictly longer than this is slow
            (resilience4j's ``slowCallDurationThreshold``). The default ``math.inf`` turns the
            slow-call rule off, as the review's breaker has none; resilience4j's default is
            60 s.
        slow_call_rate: Trip when ``slow calls / calls >= slow_call_rate`` in the rolling
            window, with the same ``min_calls`` rule (resilience4j's
            ``slowCallRateThreshold``, default 100%). In ``(0, 1]``.
    """

    consecutive_failures: int = 5
    failure_rate: float = 0.5
    window_s: float = 10.0
    min_calls: int = 10
    open_for_s: float = 30.0
    half_open_max_calls: int = 3
    half_open_successes: int = 3
    slow_call_duration_s: float = math.inf
    slow_call_rate: float = 1.0

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
        for name in ("failure_rate", "slow_call_rate"):
            value = getattr(self, name)
            if not (is_real(value) and 0 < value <= 1):
                raise ValueError(f"{name} must be in (0, 1] (got {value!r})")
        slow = self.slow_call_duration_s
        if not (is_real(slow) and slow >= 0):  # NaN fails the comparison
            raise ValueError(f"slow_call_duration_s must be a number >= 0 or math.inf (got {slow!r})")
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
        acquired_at: When the permit was issued; the call's duration is measured from here
            unless :meth:`CircuitBreaker.record` is given ``duration_s``. ``None`` for a
            permit built by hand: its call is then never slow unless a duration is given.
        serial: Number of the permit within its breaker, so that a probe is settled once.
    """

    generation: int
    acquired_at: float | None = None
    serial: int = -1


@dataclass(frozen=True, slots=True)
class BreakerCounts:
    """What a breaker has counted in its current state, as returned by :meth:`CircuitBreaker.counts`.

    In CLOSED and FORCED_CLOSED these are the rolling window's totals and the current run of
    consecutive failures; in HALF_OPEN, the probes recorded so far (all successes, since a
    failure re-opens); in the other states, zeros.

    Attributes:
        calls: Recorded outcomes (ignored ones excluded).
        failures: Failed calls among them.
        slow_calls: Slow calls among them, successful or not.
        consecutive_failures: Failures since the last success in this state.
    """

    calls: int = 0
    failures: int = 0
    slow_calls: int = 0
    consecutive_failures: int = 0

    @property
    def failure_rate(self) -> float:
        """``failures / calls``, or 0 without calls."""
        return self.failures / self.calls if self.calls else 0.0

    @property
    def slow_call_rate(self) -> float:
        """``slow_calls / calls``, or 0 without calls."""
        return self.slow_calls / self.calls if self.calls else 0.0


class _RollingCounts:
    """Two integer totals over a rolling window of one-second buckets.

    Why buckets: keeping one entry per event would make memory grow with traffic. One bucket
    per second bounds memory by the window length, at the price of a window edge quantised to
    one second (resilience4j's TIME_BASED window, gobreaker's ``BucketPeriod``). Used by
    :class:`models.policies.retry.RetryBudget`; the breaker uses :class:`_OutcomeWindow`,
    the same window with three totals.
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


class _OutcomeWindow:
    """Calls, failures and slow calls over a rolling window of one-second buckets.

    The same window as :class:`_RollingCounts` (bucket ``floor(now)``, ``ceil(window_s)``
    buckets, an earlier ``now`` folded into the newest bucket), with three totals.
    """

    __slots__ = ("_buckets", "_calls", "_failures", "_slow", "_span")

    def __init__(self, window_s: float) -> None:
        self._span = max(1, math.ceil(window_s))
        self._buckets: deque[list[int]] = deque()
        self._calls = 0
        self._failures = 0
        self._slow = 0

    def add(self, now: float, failed: bool, slow: bool) -> None:
        """Count one call that finished at ``now``."""
        self._expire(now)
        second_index = math.floor(now)
        buckets = self._buckets
        if buckets and buckets[-1][0] >= second_index:
            bucket = buckets[-1]
        else:
            bucket = [second_index, 0, 0, 0]
            buckets.append(bucket)
        bucket[1] += 1
        self._calls += 1
        if failed:
            bucket[2] += 1
            self._failures += 1
        if slow:
            bucket[3] += 1
            self._slow += 1

    def totals(self, now: float) -> tuple[int, int, int]:
        """``(calls, failures, slow calls)`` over the window that ends at ``now``."""
        self._expire(now)
        return self._calls, self._failures, self._slow

    def clear(self) -> None:
        """Forget everything."""
        self._buckets.clear()
        self._calls = self._failures = self._slow = 0

    def _expire(self, now: float) -> None:
        oldest_kept = math.floor(now) - self._span + 1
        buckets = self._buckets
        while buckets and buckets[0][0] < oldest_kept:
            _, calls, failures, slow = buckets.popleft()
            self._calls -= calls
            self._failures -= failures
            self._slow -= slow


class CircuitBreaker:
    """A gobreaker-style circuit breaker with resilience4j's extensions, driven by simulated time.

    Use it in two steps around each call::

        permit = breaker.try_acquire(now)
        if permit is None:
            ...  # fail fast: the dependency is not called
        else:
            ok = call_dependency()
            breaker.record(permit, later, success=ok)  # or breaker.release(permit, later)

    Args:
        settings: Trip and recovery thresholds.
        on_transition: Called as ``on_transition(at, old_state, new_state)`` on every state
            change, for metrics and logs.
        history_limit: How many of the latest transitions :attr:`history` keeps.
    """

    __slots__ = (
        "_consecutive_failures",
        "_generation",
        "_half_open_admitted",
        "_half_open_slow",
        "_half_open_successes",
        "_history",
        "_issued",
        "_last_transition_at",
        "_on_transition",
        "_opened_at",
        "_probes",
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
        *,
        history_limit: int = 1024,
    ) -> None:
        if not is_count(history_limit) or history_limit < 0:
            raise ValueError(f"history_limit must be an integer >= 0 (got {history_limit!r})")
        self._settings = settings
        self._on_transition = on_transition
        self._state = BreakerState.CLOSED
        self._generation = 0
        self._opened_at = -math.inf
        self._last_transition_at = -math.inf
        self._window = _OutcomeWindow(settings.window_s)
        self._consecutive_failures = 0
        self._half_open_admitted = 0
        self._half_open_successes = 0
        self._half_open_slow = 0
        self._probes: set[int] = set()
        self._issued = 0
        self._rejected = 0
        self._transitions = 0
        self._history: deque[tuple[float, BreakerState]] = deque(maxlen=int(history_limit))

    @property
    def settings(self) -> BreakerSettings:
        """The thresholds this breaker was built with."""
        return self._settings

    @property
    def rejected(self) -> int:
        """Calls refused by :meth:`try_acquire` (open, forced open, or no probe slot left)."""
        return self._rejected

    @property
    def transitions(self) -> int:
        """State changes so far (also the current generation)."""
        return self._transitions

    @property
    def history(self) -> tuple[tuple[float, BreakerState], ...]:
        """The latest transitions as ``(time, new_state)``, oldest first, in time order.

        The breaker was CLOSED before the first transition; if more than ``history_limit``
        transitions happened, only the latest are kept (``transitions - len(history)`` were
        dropped). Lazy OPEN -> HALF_OPEN changes appear once somebody has asked the breaker
        at or after their due time, with their nominal time.
        """
        return tuple(self._history)

    def state(self, now: float) -> BreakerState:
        """The state at ``now``, performing the lazy OPEN -> HALF_OPEN change if it is due."""
        self._advance(now)
        return self._state

    def counts(self, now: float) -> BreakerCounts:
        """What the current state has counted, at ``now``; see :class:`BreakerCounts`."""
        self._advance(now)
        state = self._state
        if state in _COUNTING:
            calls, failures, slow = self._window.totals(now)
            return BreakerCounts(calls, failures, slow, self._consecutive_failures)
        if state is BreakerState.HALF_OPEN:
            return BreakerCounts(self._half_open_successes, 0, self._half_open_slow, 0)
        return BreakerCounts()

    def try_acquire(self, now: float) -> Permit | None:
        """Ask to make one call at ``now``.

        Returns:
            A :class:`Permit` to settle with :meth:`record` (or :meth:`release`), or ``None``
            if the call must not be made (it is counted in :attr:`rejected`).
        """
        self._advance(now)
        state = self._state
        if state in _REJECTING:
            self._rejected += 1
            return None
        serial = self._issued
        if state is BreakerState.HALF_OPEN:
            if self._half_open_admitted >= self._settings.half_open_max_calls:
                self._rejected += 1
                return None
            self._half_open_admitted += 1
            self._probes.add(serial)
        self._issued = serial + 1
        return Permit(self._generation, now, serial)

    def record(self, permit: Permit, now: float, success: bool, *, duration_s: float | None = None) -> None:
        """Report the outcome of an admitted call that finished at ``now``.

        Args:
            permit: The permit the call was admitted with.
            now: When the call finished.
            success: Whether the call succeeded.
            duration_s: How long the call took, if not ``now - permit.acquired_at``.

        Outcomes from an older generation than the current one are ignored, and so is a
        second outcome for the same half-open probe.
        """
        self._advance(now)
        if permit.generation != self._generation:
            return
        state = self._state
        if state is BreakerState.DISABLED:
            return
        settings = self._settings
        if duration_s is None:
            duration_s = None if permit.acquired_at is None else now - permit.acquired_at
        slow = duration_s is not None and duration_s > settings.slow_call_duration_s
        if state is BreakerState.HALF_OPEN:
            if permit.serial not in self._probes:
                return
            self._probes.discard(permit.serial)
            if not success:
                self._move(BreakerState.OPEN, now)
                return
            self._half_open_successes += 1
            self._half_open_slow += int(slow)
            successes = self._half_open_successes
            if successes >= settings.half_open_successes:
                too_slow = self._half_open_slow / successes >= settings.slow_call_rate
                self._move(BreakerState.OPEN if too_slow else BreakerState.CLOSED, now)
            return
        # CLOSED or FORCED_CLOSED: a permit of the current generation is never issued while
        # OPEN or FORCED_OPEN.
        self._window.add(now, not success, slow)
        if success:
            self._consecutive_failures = 0
            if not slow:
                return
        else:
            self._consecutive_failures += 1
        if state is BreakerState.FORCED_CLOSED:
            return
        if not success and self._consecutive_failures >= settings.consecutive_failures:
            self._move(BreakerState.OPEN, now)
            return
        calls, failures, slow_calls = self._window.totals(now)
        if calls < settings.min_calls:
            return
        if (not success and failures / calls >= settings.failure_rate) or (
            slow and slow_calls / calls >= settings.slow_call_rate
        ):
            self._move(BreakerState.OPEN, now)

    def release(self, permit: Permit, now: float) -> None:
        """Give back a permit whose outcome counts as neither success nor failure.

        Nothing is recorded (resilience4j's ``releasePermission`` for an ignored exception);
        a half-open probe slot becomes free again. Stale or already settled permits are
        ignored.
        """
        self._advance(now)
        if permit.generation != self._generation:
            return
        if self._state is BreakerState.HALF_OPEN and permit.serial in self._probes:
            self._probes.discard(permit.serial)
            self._half_open_admitted -= 1

    def transition_to(self, state: BreakerState, now: float) -> None:
        """Move to ``state`` at ``now``, whatever the current state (resilience4j's manual
        transitions): fresh counts, a new generation, reported like any transition.

        ``OPEN`` starts an open period that half-opens after ``open_for_s``; ``HALF_OPEN``
        starts a probe period; ``CLOSED`` is resilience4j's ``reset()``. A lazy
        OPEN -> HALF_OPEN change that is due happens first.

        Raises:
            TypeError: ``state`` is not a :class:`BreakerState`.
            ValueError: FORCED_CLOSED to OPEN or HALF_OPEN, which resilience4j does not allow
                (from METRICS_ONLY); the breaker is unchanged.
        """
        if not isinstance(state, BreakerState):
            raise TypeError(f"state must be a BreakerState (got {state!r})")
        self._advance(now)
        if self._state is BreakerState.FORCED_CLOSED and state in _PROBING:
            raise ValueError(f"cannot go from forced_closed to {state.value}: reset() to closed first")
        self._move(state, now)

    def force_open(self, now: float) -> None:
        """Reject every call from ``now`` on, until another manual transition."""
        self.transition_to(BreakerState.FORCED_OPEN, now)

    def force_closed(self, now: float) -> None:
        """Admit every call from ``now`` on, counting outcomes but never tripping."""
        self.transition_to(BreakerState.FORCED_CLOSED, now)

    def disable(self, now: float) -> None:
        """Admit every call from ``now`` on and record nothing."""
        self.transition_to(BreakerState.DISABLED, now)

    def reset(self, now: float) -> None:
        """Return to a fresh CLOSED state at ``now``."""
        self.transition_to(BreakerState.CLOSED, now)

    def _advance(self, now: float) -> None:
        if self._state is BreakerState.OPEN:
            due = self._opened_at + self._settings.open_for_s
            if now >= due:
                self._move(BreakerState.HALF_OPEN, due)

    def _move(self, new: BreakerState, at: float) -> None:
        at = max(at, self._last_transition_at)
        old = self._state
        self._state = new
        self._generation += 1
        self._transitions += 1
        self._last_transition_at = at
        self._window.clear()
        self._consecutive_failures = 0
        self._half_open_admitted = 0
        self._half_open_successes = 0
        self._half_open_slow = 0
        self._probes.clear()
        if new is BreakerState.OPEN:
            self._opened_at = at
        self._history.append((at, new))
        if self._on_transition is not None:
            self._on_transition(at, old, new)
