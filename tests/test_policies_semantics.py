"""Semantics of the resilience policies against their references, rule by rule.

One unit test per rule, and property tests against small brute-force reference models for
the breaker's window arithmetic, the token bucket, the deduplication window and the bulkhead.
References: ``research/semantics.md`` sections 1 (breakers), 3 (rate limiting, 429 and
Retry-After), 6.2-6.3 and the Addendum (idempotency keys, in-progress records).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from models.policies.bulkhead import Admitted, Bulkhead, Queued, Rejected
from models.policies.circuit_breaker import (
    BreakerCounts,
    BreakerSettings,
    BreakerState,
    CircuitBreaker,
    Permit,
)
from models.policies.dead_letter import DeadLetter, DeadLetterPolicy
from models.policies.dedup import DedupWindow
from models.policies.idempotency import (
    Completed,
    Fresh,
    IdempotencyStore,
    InProgress,
    LeaseLost,
    Mismatch,
    Released,
    Replay,
    Reservation,
)
from models.policies.rate_limit import KeyedRateLimiter, TokenBucket, retry_after_seconds

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
FORCED_OPEN, FORCED_CLOSED, DISABLED = BreakerState.FORCED_OPEN, BreakerState.FORCED_CLOSED, BreakerState.DISABLED


# ============================================================================================
# Circuit breaker (semantics.md section 1)


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[float, BreakerState, BreakerState]] = []

    def __call__(self, at: float, old: BreakerState, new: BreakerState) -> None:
        self.seen.append((at, old, new))


def breaker(**overrides: Any) -> tuple[CircuitBreaker, Events]:
    events = Events()
    return CircuitBreaker(BreakerSettings(**overrides), on_transition=events), events


def timed_call(cb: CircuitBreaker, start: float, end: float, success: bool = True) -> bool:
    """Acquire at ``start``, record at ``end``; whether the call was admitted."""
    permit = cb.try_acquire(start)
    if permit is None:
        return False
    cb.record(permit, end, success)
    return True


SLOW = {"consecutive_failures": 100, "min_calls": 4, "slow_call_duration_s": 2.0, "slow_call_rate": 0.5}


def test_slow_rule_is_off_by_default_and_follows_resilience4j_when_on() -> None:
    assert BreakerSettings().slow_call_duration_s == math.inf
    assert BreakerSettings().slow_call_rate == 1.0  # resilience4j's slowCallRateThreshold default
    cb, _ = breaker(min_calls=1)
    for _ in range(20):
        assert timed_call(cb, 0.0, 3_600.0)  # an hour-long call is not slow when the rule is off
    assert cb.state(3_600.0) is CLOSED


def test_slow_call_rate_at_threshold_trips() -> None:
    cb, events = breaker(**SLOW)
    assert timed_call(cb, 0.0, 1.0)  # fast
    assert timed_call(cb, 0.0, 1.0)  # fast
    assert timed_call(cb, 0.0, 3.0)  # slow, 3 calls < min_calls
    assert cb.state(3.0) is CLOSED
    assert timed_call(cb, 1.0, 3.5)  # slow: 2 of 4 = 50% >= 50%
    assert cb.state(3.5) is OPEN
    assert events.seen == [(3.5, CLOSED, OPEN)]


def test_a_call_exactly_at_the_slow_threshold_is_not_slow() -> None:
    cb, _ = breaker(**SLOW)
    for _ in range(4):
        assert timed_call(cb, 10.0, 12.0)  # exactly 2.0 s: resilience4j's `>` is strict
    assert cb.counts(12.0).slow_calls == 0
    assert timed_call(cb, 10.0, math.nextafter(12.0, math.inf))
    assert cb.counts(12.0).slow_calls == 1


def test_slow_rule_needs_min_calls_and_a_fast_success_never_trips() -> None:
    cb, _ = breaker(**SLOW)
    for _ in range(3):
        assert timed_call(cb, 0.0, 5.0)  # 3 slow of 3: 100%, but below min_calls
    assert cb.state(5.0) is CLOSED
    assert timed_call(cb, 5.0, 5.0)  # a fast success: 3 of 4 slow, yet a fast call never trips
    assert cb.state(5.0) is CLOSED
    assert timed_call(cb, 0.0, 5.0)  # a slow one: 4 of 5
    assert cb.state(5.0) is OPEN


def test_explicit_duration_overrides_the_measured_one() -> None:
    cb, _ = breaker(**SLOW)
    permit = cb.try_acquire(0.0)
    assert permit is not None and permit.acquired_at == 0.0
    cb.record(permit, 100.0, True, duration_s=0.1)  # queued 99.9 s before the call started
    permit = cb.try_acquire(100.0)
    assert permit is not None
    cb.record(permit, 100.0, True, duration_s=2.5)
    assert cb.counts(100.0) == BreakerCounts(calls=2, failures=0, slow_calls=1, consecutive_failures=0)


def test_a_hand_made_permit_is_never_slow_without_a_duration() -> None:
    cb, _ = breaker(**SLOW)
    cb.record(Permit(0), 1_000.0, True)
    assert cb.counts(1_000.0).slow_calls == 0


def test_a_slow_failure_counts_in_both_rates() -> None:
    cb, _ = breaker(
        consecutive_failures=100, min_calls=2, failure_rate=1.0, slow_call_duration_s=1.0, slow_call_rate=1.0
    )
    assert timed_call(cb, 0.0, 5.0, success=False)
    assert cb.counts(5.0) == BreakerCounts(calls=1, failures=1, slow_calls=1, consecutive_failures=1)
    assert timed_call(cb, 0.0, 5.0, success=True)  # slow success: 2 of 2 slow
    assert cb.state(5.0) is OPEN


def test_half_open_with_slow_probes_reopens() -> None:
    cb, events = breaker(consecutive_failures=1, slow_call_duration_s=1.0, slow_call_rate=0.5)
    assert timed_call(cb, 0.0, 0.0, success=False)
    probes = [cb.try_acquire(30.0) for _ in range(3)]
    assert all(p is not None for p in probes)
    cb.record(probes[0], 32.0, True)  # type: ignore[arg-type]  # slow
    cb.record(probes[1], 30.5, True)  # type: ignore[arg-type]
    assert cb.state(32.0) is HALF_OPEN  # the decision waits for half_open_successes results
    cb.record(probes[2], 33.0, True)  # type: ignore[arg-type]  # slow: 2 of 3 >= 50%
    assert events.seen[-1] == (33.0, HALF_OPEN, OPEN)


def test_half_open_with_few_slow_probes_closes() -> None:
    cb, events = breaker(consecutive_failures=1, slow_call_duration_s=1.0, slow_call_rate=0.5)
    assert timed_call(cb, 0.0, 0.0, success=False)
    assert timed_call(cb, 30.0, 32.0)  # slow
    assert timed_call(cb, 32.0, 32.5)
    assert timed_call(cb, 32.5, 33.0)  # 1 of 3 slow < 50%
    assert events.seen[-1] == (33.0, HALF_OPEN, CLOSED)


def test_ignored_outcome_counts_as_neither_success_nor_failure() -> None:
    cb, _ = breaker(min_calls=100)
    for _ in range(4):
        assert timed_call(cb, 0.0, 0.0, success=False)
    permit = cb.try_acquire(0.0)
    assert permit is not None
    cb.release(permit, 0.0)  # a success would reset the run of failures; an ignored call does not
    assert cb.counts(0.0) == BreakerCounts(calls=4, failures=4, slow_calls=0, consecutive_failures=4)
    assert timed_call(cb, 0.0, 0.0, success=False)
    assert cb.state(0.0) is OPEN


def test_ignored_probe_frees_its_half_open_slot() -> None:
    cb, _ = breaker(consecutive_failures=1, half_open_max_calls=1, half_open_successes=1)
    assert timed_call(cb, 0.0, 0.0, success=False)
    probe = cb.try_acquire(30.0)
    assert probe is not None
    assert cb.try_acquire(30.0) is None
    cb.release(probe, 31.0)
    cb.release(probe, 31.0)  # a second release of the same probe is ignored
    second = cb.try_acquire(31.0)
    assert second is not None
    assert cb.try_acquire(31.0) is None  # still one slot only
    assert cb.state(31.0) is HALF_OPEN
    cb.record(second, 32.0, True)
    assert cb.state(32.0) is CLOSED


def test_a_half_open_probe_is_settled_once() -> None:
    cb, _ = breaker(consecutive_failures=1, half_open_max_calls=3, half_open_successes=2)
    assert timed_call(cb, 0.0, 0.0, success=False)
    probe = cb.try_acquire(30.0)
    assert probe is not None
    cb.record(probe, 30.0, True)
    cb.record(probe, 30.0, True)  # counted once: still half-open
    cb.record(probe, 30.0, False)  # and a late contradicting outcome is ignored too
    assert cb.state(30.0) is HALF_OPEN
    assert cb.counts(30.0) == BreakerCounts(calls=1)


def test_forced_open_rejects_everything_and_never_half_opens() -> None:
    cb, events = breaker()
    before = cb.try_acquire(0.0)
    assert before is not None
    cb.force_open(5.0)
    assert cb.state(5.0) is FORCED_OPEN
    assert cb.try_acquire(5.0) is None
    assert cb.try_acquire(10_000.0) is None  # no open_for_s timeout in a forced state
    assert cb.rejected == 2
    cb.record(before, 10_000.0, False)  # stale: changes nothing
    assert cb.state(10_000.0) is FORCED_OPEN
    cb.reset(10_001.0)
    assert cb.state(10_001.0) is CLOSED
    assert events.seen == [(5.0, CLOSED, FORCED_OPEN), (10_001.0, FORCED_OPEN, CLOSED)]


def test_forced_closed_admits_counts_and_never_trips() -> None:
    cb, _ = breaker(consecutive_failures=2, min_calls=2)
    cb.force_closed(0.0)
    for _ in range(50):
        assert timed_call(cb, 1.0, 1.0, success=False)
    assert cb.state(1.0) is FORCED_CLOSED
    assert cb.counts(1.0) == BreakerCounts(calls=50, failures=50, slow_calls=0, consecutive_failures=50)
    cb.reset(2.0)  # a fresh closed state: the forced period's counts are gone
    assert cb.counts(2.0) == BreakerCounts()
    assert timed_call(cb, 2.0, 2.0, success=False)
    assert timed_call(cb, 2.0, 2.0, success=False)
    assert cb.state(2.0) is OPEN


def test_forced_closed_cannot_go_straight_to_open_or_half_open() -> None:
    cb, events = breaker()
    cb.force_closed(0.0)
    for target in (OPEN, HALF_OPEN):
        with pytest.raises(ValueError, match="cannot go from forced_closed to"):
            cb.transition_to(target, 1.0)
    assert cb.state(1.0) is FORCED_CLOSED and len(events.seen) == 1
    cb.force_open(2.0)  # every other manual transition is allowed
    cb.transition_to(HALF_OPEN, 3.0)
    assert cb.history == ((0.0, FORCED_CLOSED), (2.0, FORCED_OPEN), (3.0, HALF_OPEN))


def test_disabled_admits_everything_and_records_nothing() -> None:
    cb, _ = breaker(consecutive_failures=1)
    cb.disable(0.0)
    for _ in range(10):
        assert timed_call(cb, 1.0, 1.0, success=False)
    assert cb.state(1.0) is DISABLED
    assert cb.counts(1.0) == BreakerCounts()
    assert cb.rejected == 0


def test_manual_open_half_opens_after_open_for_s() -> None:
    cb, events = breaker()
    cb.transition_to(OPEN, 10.0)
    assert cb.try_acquire(39.9) is None
    assert cb.state(40.0) is HALF_OPEN
    cb.transition_to(HALF_OPEN, 41.0)  # to the same state: a real transition with fresh counts
    assert events.seen == [(10.0, CLOSED, OPEN), (40.0, OPEN, HALF_OPEN), (41.0, HALF_OPEN, HALF_OPEN)]
    assert cb.transitions == 3
    with pytest.raises(TypeError, match="BreakerState"):
        cb.transition_to("open", 42.0)  # type: ignore[arg-type]


def test_a_due_lazy_half_open_is_reported_before_a_manual_transition() -> None:
    cb, _ = breaker(consecutive_failures=1)
    assert timed_call(cb, 0.0, 0.0, success=False)
    cb.force_open(100.0)
    assert cb.history == ((0.0, OPEN), (30.0, HALF_OPEN), (100.0, FORCED_OPEN))


def test_history_is_bounded_in_time_order_and_deterministic() -> None:
    def drive() -> CircuitBreaker:
        cb = CircuitBreaker(
            BreakerSettings(consecutive_failures=1, half_open_max_calls=1, half_open_successes=1), history_limit=5
        )
        now = 0.0
        for i in range(20):  # trip, half-open, close (or re-open), ...
            timed_call(cb, now, now, success=False)
            now += 30.0
            timed_call(cb, now, now, success=bool(i % 2))
        return cb

    first, second = drive(), drive()
    assert first.history == second.history
    assert len(first.history) == 5
    assert first.transitions > 5
    times = [at for at, _ in first.history]
    assert times == sorted(times)
    assert CircuitBreaker(history_limit=0).history == ()
    with pytest.raises(ValueError, match="history_limit must be an integer >= 0"):
        CircuitBreaker(history_limit=-1)


def test_history_stays_in_time_order_when_the_clock_goes_back() -> None:
    cb, events = breaker(consecutive_failures=1)
    assert timed_call(cb, 100.0, 100.0, success=False)
    cb.reset(90.0)  # an earlier clock: reported at the last transition's time
    assert cb.history == ((100.0, OPEN), (100.0, CLOSED))
    assert events.seen[-1] == (100.0, OPEN, CLOSED)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"slow_call_rate": 0.0}, "slow_call_rate must be in (0, 1] (got 0.0)"),
        ({"slow_call_rate": 1.01}, "slow_call_rate must be in (0, 1] (got 1.01)"),
        ({"slow_call_duration_s": -1.0}, "slow_call_duration_s must be a number >= 0"),
        ({"slow_call_duration_s": math.nan}, "slow_call_duration_s must be a number >= 0"),
    ],
)
def test_slow_settings_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        BreakerSettings(**overrides)  # type: ignore[arg-type]


def test_breaker_counts_rates() -> None:
    assert BreakerCounts().failure_rate == 0.0
    assert BreakerCounts(calls=4, failures=1, slow_calls=3).failure_rate == 0.25
    assert BreakerCounts(calls=4, failures=1, slow_calls=3).slow_call_rate == 0.75


# -- property: the window arithmetic against a brute-force list of outcomes ----------------------

RATES = [0.25, 0.3, 0.5, 0.7, 1.0]


def exceeds(part: int, whole: int, threshold: float) -> bool:
    """``part / whole >= threshold`` in exact arithmetic, reading the threshold as the decimal written."""
    return Fraction(part, whole) >= Fraction(str(threshold))


@settings(max_examples=300, deadline=None)
@given(
    cf=st.integers(1, 8),
    fr=st.sampled_from(RATES),
    sr=st.sampled_from(RATES),
    window=st.sampled_from([0.5, 1.0, 2.5, 10.0]),
    min_calls=st.integers(1, 8),
    slow_s=st.sampled_from([0.5, 2.0]),
    steps=st.lists(
        st.tuples(
            st.floats(0.0, 4.0) | st.sampled_from([0.0, 1.0]),
            st.booleans(),
            st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]) | st.floats(0.0, 4.0),
        ),
        max_size=60,
    ),
)
def test_window_arithmetic_matches_brute_force(
    cf: int,
    fr: float,
    sr: float,
    window: float,
    min_calls: int,
    slow_s: float,
    steps: list[tuple[float, bool, float]],
) -> None:
    s = BreakerSettings(
        consecutive_failures=cf,
        failure_rate=fr,
        window_s=window,
        min_calls=min_calls,
        slow_call_duration_s=slow_s,
        slow_call_rate=sr,
    )
    cb = CircuitBreaker(s)
    span = max(1, math.ceil(window))
    outcomes: list[tuple[float, bool, bool]] = []  # (time, failed, slow) since the last reset
    consecutive = 0
    now = 0.0
    for dt, success, duration in steps:
        now += dt
        permit = cb.try_acquire(now)
        assert permit is not None
        cb.record(permit, now, success, duration_s=duration)
        slow = duration > slow_s
        outcomes.append((now, not success, slow))
        consecutive = 0 if success else consecutive + 1
        recent = [o for o in outcomes if math.floor(o[0]) > math.floor(now) - span]
        calls, failures, slows = len(recent), sum(o[1] for o in recent), sum(o[2] for o in recent)
        trip = (not success and consecutive >= cf) or (
            calls >= min_calls
            and ((not success and exceeds(failures, calls, fr)) or (slow and exceeds(slows, calls, sr)))
        )
        if trip:
            assert cb.state(now) is OPEN
            cb.reset(now)
            outcomes, consecutive = [], 0
        else:
            assert cb.state(now) is CLOSED
            assert cb.counts(now) == BreakerCounts(calls, failures, slows, consecutive)


# -- property: every state, every outcome kind, against a model -----------------------------------

HISTORY_LIMIT = 6

full_settings = st.integers(1, 3).flatmap(
    lambda max_calls: st.builds(
        BreakerSettings,
        consecutive_failures=st.integers(1, 4),
        failure_rate=st.sampled_from(RATES),
        window_s=st.sampled_from([1.0, 2.5, 10.0]),
        min_calls=st.integers(1, 4),
        open_for_s=st.sampled_from([0.5, 5.0]),
        half_open_max_calls=st.just(max_calls),
        half_open_successes=st.integers(1, max_calls),
        slow_call_duration_s=st.sampled_from([0.5, 2.0, math.inf]),
        slow_call_rate=st.sampled_from(RATES),
    )
)


class FullBreakerMachine(RuleBasedStateMachine):
    """Random calls, slow and ignored outcomes, double settlements and manual transitions."""

    permits = Bundle("permits")

    @initialize(s=full_settings)
    def setup(self, s: BreakerSettings) -> None:
        self.s = s
        self.now = 0.0
        self.events = Events()
        self.cb = CircuitBreaker(s, on_transition=self.events, history_limit=HISTORY_LIMIT)
        self.state = CLOSED
        self.generation = 0
        self.opened_at = -math.inf
        self.last_at = -math.inf
        self.rejected = 0
        self.serial = 0
        self.history: list[tuple[float, BreakerState]] = []
        self.expected_events: list[tuple[float, BreakerState, BreakerState]] = []
        self._fresh()

    def _fresh(self) -> None:
        self.outcomes: list[tuple[float, bool, bool]] = []
        self.consecutive = 0
        self.admitted = 0
        self.outstanding: set[int] = set()
        self.successes = 0
        self.slow_successes = 0

    def _move(self, new: BreakerState, at: float) -> None:
        at = max(at, self.last_at)
        self.expected_events.append((at, self.state, new))
        self.history.append((at, new))
        self.state = new
        self.generation += 1
        self.last_at = at
        if new is OPEN:
            self.opened_at = at
        self._fresh()

    def _advance(self) -> None:
        due = self.opened_at + self.s.open_for_s
        if self.state is OPEN and self.now >= due:
            self._move(HALF_OPEN, due)

    def _check_events(self) -> None:
        assert self.events.seen == self.expected_events

    @rule(dt=st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.5]) | st.floats(0.0, 8.0))
    def advance(self, dt: float) -> None:
        self.now += dt

    @rule(target=permits)
    def acquire(self) -> Permit | None:
        self._advance()
        permit = self.cb.try_acquire(self.now)
        if self.state in (OPEN, FORCED_OPEN) or (
            self.state is HALF_OPEN and self.admitted >= self.s.half_open_max_calls
        ):
            assert permit is None
            self.rejected += 1
        else:
            assert permit == Permit(self.generation, self.now, self.serial)
            if self.state is HALF_OPEN:
                self.admitted += 1
                self.outstanding.add(self.serial)
            self.serial += 1
        self._check_events()
        return permit

    @rule(
        permit=permits,
        success=st.booleans(),
        duration=st.none() | st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]),
    )
    def record(self, permit: Permit | None, success: bool, duration: float | None) -> None:
        self._advance()
        if permit is not None:
            self.cb.record(permit, self.now, success, duration_s=duration)
        if permit is None or permit.generation != self.generation or self.state is DISABLED:
            self._check_events()
            return
        assert permit.acquired_at is not None
        slow = (self.now - permit.acquired_at if duration is None else duration) > self.s.slow_call_duration_s
        if self.state is HALF_OPEN:
            if permit.serial in self.outstanding:
                self.outstanding.discard(permit.serial)
                if not success:
                    self._move(OPEN, self.now)
                else:
                    self.successes += 1
                    self.slow_successes += int(slow)
                    if self.successes >= self.s.half_open_successes:
                        too_slow = exceeds(self.slow_successes, self.successes, self.s.slow_call_rate)
                        self._move(OPEN if too_slow else CLOSED, self.now)
        else:
            assert self.state in (CLOSED, FORCED_CLOSED)
            self.outcomes.append((self.now, not success, slow))
            self.consecutive = 0 if success else self.consecutive + 1
            span = max(1, math.ceil(self.s.window_s))
            recent = [o for o in self.outcomes if math.floor(o[0]) > math.floor(self.now) - span]
            calls, failures, slows = len(recent), sum(o[1] for o in recent), sum(o[2] for o in recent)
            if self.state is CLOSED and (
                (not success and self.consecutive >= self.s.consecutive_failures)
                or (
                    calls >= self.s.min_calls
                    and (
                        (not success and exceeds(failures, calls, self.s.failure_rate))
                        or (slow and exceeds(slows, calls, self.s.slow_call_rate))
                    )
                )
            ):
                self._move(OPEN, self.now)
        self._check_events()

    @rule(permit=permits)
    def release(self, permit: Permit | None) -> None:
        self._advance()
        if permit is None:
            return
        self.cb.release(permit, self.now)
        if permit.generation == self.generation and self.state is HALF_OPEN and permit.serial in self.outstanding:
            self.outstanding.discard(permit.serial)
            self.admitted -= 1
        self._check_events()

    @rule(state=st.sampled_from(list(BreakerState)))
    def manual(self, state: BreakerState) -> None:
        self._advance()
        if self.state is FORCED_CLOSED and state in (OPEN, HALF_OPEN):
            with pytest.raises(ValueError, match="reset"):
                self.cb.transition_to(state, self.now)
        else:
            self.cb.transition_to(state, self.now)
            self._move(state, self.now)
        self._check_events()

    @precondition(lambda self: self.state is OPEN)
    @rule()
    def jump_to_due(self) -> None:
        self.now = max(self.now, self.opened_at + self.s.open_for_s)

    @invariant()
    def agrees(self) -> None:
        if not hasattr(self, "cb"):
            return
        self._advance()
        assert self.cb.state(self.now) is self.state
        self._check_events()
        assert self.cb.rejected == self.rejected
        assert self.cb.transitions == self.generation
        assert self.cb.history == tuple(self.history[-HISTORY_LIMIT:])
        counts = self.cb.counts(self.now)
        if self.state in (CLOSED, FORCED_CLOSED):
            span = max(1, math.ceil(self.s.window_s))
            recent = [o for o in self.outcomes if math.floor(o[0]) > math.floor(self.now) - span]
            expected = BreakerCounts(
                len(recent), sum(o[1] for o in recent), sum(o[2] for o in recent), self.consecutive
            )
        elif self.state is HALF_OPEN:
            expected = BreakerCounts(self.successes, 0, self.slow_successes, 0)
        else:
            expected = BreakerCounts()
        assert counts == expected


TestFullBreakerMachine = FullBreakerMachine.TestCase
TestFullBreakerMachine.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)


# ============================================================================================
# Idempotency store (semantics.md 6.2, 6.3 and the Addendum)


def reserve(store: IdempotencyStore, key: str, fingerprint: str, now: float, **kw: float) -> Reservation:
    outcome = store.reserve(key, fingerprint, now, **kw)
    assert isinstance(outcome, Reservation), outcome
    return outcome


def test_first_request_reserves_and_a_concurrent_duplicate_conflicts() -> None:
    store = IdempotencyStore(in_progress_ttl_s=30.0)
    r = reserve(store, "u1:k", "fp", 0.0)
    assert (r.key, r.fingerprint, r.reserved_at, r.expires_at) == ("u1:k", "fp", 0.0, 30.0)
    assert store.reserve("u1:k", "fp", 1.0) == InProgress()
    assert InProgress.status == 409


def test_same_key_different_parameters_is_a_422_distinct_from_the_409() -> None:
    store = IdempotencyStore(in_progress_ttl_s=30.0)
    r = reserve(store, "k", "turn-off", 0.0)
    assert store.reserve("k", "turn-on", 1.0) == Mismatch()  # wins over InProgress
    assert (Mismatch.status, InProgress.status) == (422, 409)
    assert store.complete(r, "ok", 2.0) == Completed("k", r.token, 2.0 + 86_400.0)
    assert store.reserve("k", "turn-on", 3.0) == Mismatch()
    assert store.reserve("k", "turn-off", 3.0) == Replay("ok")


def test_completed_result_is_replayed_including_errors() -> None:
    store = IdempotencyStore()
    r = reserve(store, "k", "fp", 0.0)
    store.complete(r, (500, "boom"), 1.0)
    assert store.reserve("k", "fp", 2.0) == Replay((500, "boom"))  # Stripe v1 replays a 500


def test_in_progress_lease_is_shorter_than_the_record_ttl() -> None:
    store = IdempotencyStore(ttl_s=86_400.0, in_progress_ttl_s=30.0)
    crashed = reserve(store, "k", "fp", 0.0)
    assert store.reserve("k", "fp", 29.999) == InProgress()
    retry = reserve(store, "k", "fp", 30.0)  # the crashed worker blocks the key for 30 s, not 24 h
    assert retry.token != crashed.token
    assert store.complete(crashed, "late", 31.0) == LeaseLost("k", crashed.token, "superseded")
    assert store.complete(retry, "ok", 32.0) == Completed("k", retry.token, 86_432.0)
    assert store.reserve("k", "fp", 40.0) == Replay("ok")


def test_an_expired_lease_cannot_be_completed_even_if_nobody_took_the_key() -> None:
    store = IdempotencyStore(in_progress_ttl_s=30.0)
    r = reserve(store, "k", "fp", 0.0)
    assert store.complete(r, "late", 30.0) == LeaseLost("k", r.token, "expired")
    assert isinstance(store.reserve("k", "other-params", 30.0), Reservation)  # nothing was stored


def test_lease_per_reservation() -> None:
    store = IdempotencyStore(in_progress_ttl_s=30.0)
    r = reserve(store, "k", "fp", 0.0, lease_s=5.0)
    assert r.expires_at == 5.0
    assert store.reserve("k", "fp", 4.9) == InProgress()
    assert isinstance(store.reserve("k", "fp", 5.0), Reservation)


def test_only_the_owner_can_complete_or_release() -> None:
    store = IdempotencyStore(in_progress_ttl_s=30.0)
    r = reserve(store, "k", "fp", 0.0)
    forged = dataclasses.replace(r, token=r.token + 1000)
    assert store.complete(forged, "x", 1.0) == LeaseLost("k", forged.token, "superseded")
    assert store.release(forged, 1.0) == LeaseLost("k", forged.token, "superseded")
    assert store.reserve("k", "fp", 1.0) == InProgress()  # still held by the owner
    assert store.complete(r, "ok", 2.0) == Completed("k", r.token, 2.0 + 86_400.0)
    assert store.complete(r, "again", 3.0) == LeaseLost("k", r.token, "completed")
    assert store.release(r, 3.0) == LeaseLost("k", r.token, "completed")
    assert store.reserve("k", "fp", 4.0) == Replay("ok")


def test_release_lets_the_key_be_retried_and_stores_nothing() -> None:
    store = IdempotencyStore(in_progress_ttl_s=30.0)
    r = reserve(store, "k", "fp", 0.0)
    assert store.release(r, 1.0) == Released("k", r.token)
    assert store.release(r, 1.0) == LeaseLost("k", r.token, "not_held")
    again = reserve(store, "k", "different-params", 2.0)  # validation failed: nothing was saved
    assert store.release(r, 2.0) == LeaseLost("k", r.token, "superseded")
    assert store.complete(again, "ok", 3.0) == Completed("k", again.token, 86_403.0)
    with pytest.raises(TypeError, match="needs the time"):
        store.release(r)  # type: ignore[call-overload]


def test_completed_record_is_forgotten_ttl_after_completion() -> None:
    store = IdempotencyStore(ttl_s=100.0, in_progress_ttl_s=10.0)
    r = reserve(store, "k", "fp", 0.0)
    store.complete(r, "ok", 5.0)
    assert store.reserve("k", "fp", 104.999) == Replay("ok")
    fresh = store.reserve("k", "new-params", 105.0)  # a reused key after expiry is a new request
    assert isinstance(fresh, Reservation)


def test_key_based_calls_honour_the_lease() -> None:
    store = IdempotencyStore(ttl_s=1_000.0, in_progress_ttl_s=10.0)
    assert store.begin("k", "fp", 0.0) == Fresh()
    assert store.begin("k", "fp", 9.0) == InProgress()
    assert store.begin("k", "fp", 10.0) == Fresh()
    store.complete("k", "ok", 11.0)
    assert store.begin("k", "fp", 12.0) == Replay("ok")


def test_idempotency_validation() -> None:
    with pytest.raises(ValueError, match=r"in_progress_ttl_s must be a finite number > 0 \(got 0.0\)"):
        IdempotencyStore(in_progress_ttl_s=0.0)
    with pytest.raises(ValueError, match="lease_s must be a finite number > 0"):
        IdempotencyStore().reserve("k", "fp", 0.0, lease_s=math.inf)
    store = IdempotencyStore(ttl_s=50.0, in_progress_ttl_s=5.0)
    assert (store.ttl_s, store.in_progress_ttl_s) == (50.0, 5.0)
    assert IdempotencyStore(ttl_s=50.0).in_progress_ttl_s == 50.0


def test_crashed_reservations_do_not_pile_up_behind_long_lived_records() -> None:
    store = IdempotencyStore(ttl_s=86_400.0, in_progress_ttl_s=10.0)
    r = reserve(store, "done", "fp", 0.0)
    store.complete(r, "ok", 0.0)  # kept for a day
    for i in range(10_000):
        reserve(store, f"crashed-{i}", "fp", float(i))  # never completed
        assert len(store) <= 12
    assert store.reserve("done", "fp", 10_000.0) == Replay("ok")


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["reserve", "complete", "release"]),
            st.sampled_from("ab"),
            st.sampled_from(["x", "y"]),
            st.sampled_from([0.0, 0.5, 1.0, 3.0, 7.0]),
            st.integers(0, 5),
        ),
        max_size=50,
    )
)
def test_idempotency_matches_a_brute_force_model(ops: list[tuple[str, str, str, float, int]]) -> None:
    """Each key's state is derived from the history alone, with both expiries."""
    ttl, lease = 10.0, 3.0
    store = IdempotencyStore(ttl_s=ttl, in_progress_ttl_s=lease)
    model: dict[str, dict[str, Any]] = {}  # key -> {fp, token, expires, done, result}
    reservations: list[Reservation] = []
    now = 0.0
    for op, key, fp, dt, pick in ops:
        now += dt
        entry = model.get(key)
        if entry is not None and entry["expires"] <= now:
            entry = None
        if op == "reserve":
            got = store.reserve(key, fp, now)
            if entry is None:
                assert isinstance(got, Reservation) and got.expires_at == now + lease
                model[key] = {"fp": fp, "token": got.token, "expires": now + lease, "done": False}
                reservations.append(got)
            elif entry["fp"] != fp:
                assert got == Mismatch()
            elif not entry["done"]:
                assert got == InProgress()
            else:
                assert got == Replay(entry["result"])
            continue
        if not reservations:
            continue
        r = reservations[pick % len(reservations)]
        entry = model.get(r.key)
        owned = entry is not None and entry["expires"] > now and entry["token"] == r.token and not entry["done"]
        if op == "complete":
            done = store.complete(r, (r.token, now), now)
            if owned:
                assert done == Completed(r.key, r.token, now + ttl)
                model[r.key].update(done=True, result=(r.token, now), expires=now + ttl)
            else:
                assert isinstance(done, LeaseLost)
        else:
            released = store.release(r, now)
            if owned:
                assert released == Released(r.key, r.token)
                del model[r.key]
            else:
                assert isinstance(released, LeaseLost)


# ============================================================================================
# Rate limiting (semantics.md section 3)


def test_waiting_exactly_retry_after_is_admitted_at_1e7() -> None:
    bucket = TokenBucket(rate_per_s=49.0, burst=1.0)
    now = 1e7
    assert bucket.try_take(now)
    wait = bucket.retry_after(now)
    # missing / rate alone (0.02040816326530612) lands a hair short of a token at this clock.
    assert wait > 1 / 49
    assert not bucket.try_take(now)
    assert bucket.try_take(now + wait)


@settings(max_examples=500, deadline=None)
@given(
    now=st.floats(0.0, 1e12) | st.sampled_from([1e7, 1e9, 1e12, 123_456_789.123]),
    rate=st.floats(1e-3, 1e4) | st.sampled_from([10 / 60, 1000 / 60, 49.0, 1 / 3]),
    burst=st.floats(1.0, 1e3) | st.sampled_from([1.0, 10.0]),
    fraction=st.floats(0.01, 1.0),
    drained=st.floats(0.0, 1.0),
    peeks=st.lists(st.floats(0.0, 1.0), max_size=3),
)
def test_waiting_retry_after_is_always_admitted_at_any_clock(
    now: float, rate: float, burst: float, fraction: float, drained: float, peeks: list[float]
) -> None:
    bucket = TokenBucket(rate, burst)
    n = fraction * burst
    bucket.try_take(now, max(drained * burst, 1e-6))
    wait = bucket.retry_after(now, n)
    assert wait >= 0.0
    assert (wait == 0.0) == copy.copy(bucket).try_take(now, n)
    if wait == 0.0:
        return
    tokens = bucket.tokens(now)
    # Tight: at most a few float steps of the clock beyond the exact wait.
    assert wait <= (n - tokens) / rate * (1 + 1e-12) + 4 * math.ulp(now + wait) + 1e-300
    exact = copy.copy(bucket)
    assert exact.try_take(now + wait, n)
    # Peeking in between (a refill in several steps) does not change the answer.
    peeked = copy.copy(bucket)
    for p in sorted(peeks):
        peeked.tokens(now + p * wait)
    assert peeked.try_take(now + wait, n)
    # Nor does honouring the 429's Retry-After in whole seconds.
    header = retry_after_seconds(wait)
    assert header is not None and header >= 1 and header >= wait
    assert copy.copy(bucket).try_take(now + header, n)


class ExactBucket:
    """The token bucket in exact rational arithmetic: the reference."""

    def __init__(self, rate: Fraction, burst: Fraction) -> None:
        self.rate, self.burst, self.tokens = rate, burst, burst
        self.stamp: Fraction | None = None

    def refill(self, now: Fraction) -> None:
        if self.stamp is not None and now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        if self.stamp is None or now > self.stamp:
            self.stamp = now

    def try_take(self, now: Fraction, n: Fraction) -> bool:
        self.refill(now)
        if self.tokens < n:
            return False
        self.tokens -= n
        return True

    def retry_after(self, now: Fraction, n: Fraction) -> float:
        if n > self.burst:
            return math.inf
        self.refill(now)
        assert self.stamp is not None
        missing = n - self.tokens
        return 0.0 if missing <= 0 else float(max(now, self.stamp) - now + missing / self.rate)


@settings(max_examples=300, deadline=None)
@given(
    rate=st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0]),
    burst=st.sampled_from([1.0, 2.0, 3.0, 5.0]),
    start=st.sampled_from([0.0, 1e6, 2.0**40]),
    ops=st.lists(st.tuples(st.integers(-2, 32), st.sampled_from([0.5, 1.0, 2.0, 6.0]), st.booleans()), max_size=60),
)
def test_token_bucket_matches_exact_arithmetic(
    rate: float, burst: float, start: float, ops: list[tuple[int, float, bool]]
) -> None:
    """Dyadic rates, sizes and times are exact in binary floating point: decisions and waits must be exact."""
    bucket = TokenBucket(rate, burst)
    model = ExactBucket(Fraction(rate), Fraction(burst))
    now = start
    for eighths, n, ask_wait in ops:
        now += eighths / 8  # a negative step is a clock going backwards
        if ask_wait:
            assert bucket.retry_after(now, n) == model.retry_after(Fraction(now), Fraction(n))
        assert bucket.try_take(now, n) == model.try_take(Fraction(now), Fraction(n))
        assert bucket.tokens(now) == model.tokens


@pytest.mark.parametrize(
    ("wait", "header"),
    [(0.0, 1), (0.001, 1), (1.0, 1), (1.000001, 2), (5.999, 6), (6.0, 6), (6.2, 7), (math.inf, None)],
)
def test_retry_after_header_rounds_up_and_is_never_zero(wait: float, header: int | None) -> None:
    assert retry_after_seconds(wait) == header


@pytest.mark.parametrize("wait", [-1.0, math.nan])
def test_retry_after_header_rejects_nonsense(wait: float) -> None:
    with pytest.raises(ValueError, match="wait_s must be a number >= 0"):
        retry_after_seconds(wait)


def test_a_429_retry_after_is_honourable_for_the_devices_limit() -> None:
    limiter = KeyedRateLimiter.per_period(10, 60.0)  # 10 commands per minute per device
    now = 3e9
    assert sum(limiter.try_take("dev", now) for _ in range(11)) == 10
    wait = limiter.retry_after("dev", now)
    header = retry_after_seconds(wait)
    assert header == math.ceil(wait) and 6 <= header <= 7  # one token per 6 s, rounded up
    assert not limiter.try_take("dev", now + header - 1)
    assert limiter.try_take("dev", now + header)


def test_keyed_limiter_retry_after_is_admitted_at_huge_clocks_with_other_keys_in_between() -> None:
    limiter = KeyedRateLimiter(rate_per_s=49.0, burst=1.0)
    now = 1e12
    assert limiter.try_take("a", now)
    wait = limiter.retry_after("a", now)
    for i in range(5):
        limiter.try_take(f"other-{i}", now + wait * i / 5)  # sweeps peek at "a"'s bucket
    assert limiter.try_take("a", now + wait)


# ============================================================================================
# Deduplication window


def test_dedup_key_is_a_duplicate_until_exactly_its_expiry() -> None:
    window = DedupWindow(10.0)
    assert not window.seen("k", 0.0)
    assert window.seen("k", 0.0)  # the same key again at the same instant
    assert window.seen("k", 9.999)
    assert not window.seen("k", 10.0)  # expired: recorded again
    assert window.seen("k", 19.0)


def test_dedup_window_runs_from_the_first_sighting() -> None:
    window = DedupWindow(10.0)
    assert not window.seen("k", 0.0)
    assert window.seen("k", 5.0)  # not recorded again
    assert not window.seen("k", 10.0)


def test_dedup_never_reports_an_expired_key_when_the_clock_goes_back() -> None:
    window = DedupWindow(10.0)
    assert not window.seen("late", 100.0)  # expires at 110
    assert not window.seen("early", 50.0)  # the clock went back: expires at 60
    # "early" expired at 60 although "late", recorded before it, has not.
    assert not window.seen("early", 70.0)
    assert window.seen("late", 70.0)  # recorded "later" than now: still recent
    assert not window.seen("other", 110.0)  # "late" is seen to expire, and forgotten
    assert not window.seen("late", 105.0)  # forgotten stays forgotten: recorded again
    assert window.seen("late", 105.0)


def test_dedup_at_huge_clock_values() -> None:
    window = DedupWindow(10.0)
    now = 1e15  # float step 0.125 s
    assert not window.seen("k", now)
    assert window.seen("k", now + 9.875)
    assert not window.seen("k", now + 10.0)
    tiny = DedupWindow(1e-5)
    big = 1e12  # float step 1.2e-4 s: a window of 1e-5 s cannot be represented
    assert not tiny.seen("k", big)
    assert not tiny.seen("k", big)  # expired as soon as recorded, never a duplicate
    assert not window.seen("x", math.inf)
    assert not window.seen("x", math.inf)


def test_dedup_validation_and_clear() -> None:
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="window_s must be a finite number > 0"):
            DedupWindow(bad)
    window = DedupWindow(1.0)
    with pytest.raises(ValueError, match="NaN"):
        window.seen("k", math.nan)
    window.seen("k", 0.0)
    assert len(window) == 1
    window.clear()
    assert len(window) == 0 and not window.seen("k", 0.0)


def test_dedup_memory_is_bounded_by_the_window_even_after_a_backwards_step() -> None:
    window = DedupWindow(10.0)
    window.seen("future", 1_000.0)  # this one blocks a FIFO sweep until the clock passes 1010
    for i in range(2_000):
        window.seen(i, float(i) / 10)
        assert len(window) <= 102
    assert len(window) <= 102


dedup_clock = st.one_of(
    st.tuples(st.just("same"), st.just(0.0)),  # another key (or the same) at the same instant
    st.tuples(st.just("step"), st.floats(-5.0, 10.0)),  # forwards or backwards
    st.tuples(
        st.just("at"),
        st.sampled_from([0.0, 10.0, 1e15, 1e15 + 0.125, 1e15 + 10.0, 2.0**53, 2.0**53 + 2.0, 1e300, math.inf]),
    ),
)


@settings(max_examples=500, deadline=None)
@given(
    window_s=st.sampled_from([0.5, 1.0, 2.5, 10.0, 1e-9]),
    ops=st.lists(st.tuples(st.sampled_from("abc"), dedup_clock), max_size=60),
)
def test_dedup_matches_brute_force_and_never_reports_an_expired_key(
    window_s: float, ops: list[tuple[str, tuple[str, float]]]
) -> None:
    """Any clock: forwards, backwards, repeated instants, huge values."""
    window = DedupWindow(window_s)
    records: list[tuple[str, float, float]] = []  # (key, recorded at, expiry)
    now = 0.0
    for key, (how, value) in ops:
        if how == "step":
            now = now + value if math.isfinite(now) else value
        elif how == "at":
            now = value
        got = window.seen(key, now)
        # Brute force: forget all expired records, then look.
        records = [r for r in records if r[2] > now]
        live = [r for r in records if r[0] == key]
        assert got == bool(live)
        if got:
            # Never an expired key, in exact arithmetic too: a record younger than the window.
            assert any(not math.isfinite(at) or Fraction(now) < Fraction(at) + Fraction(window_s) for _, at, _ in live)
        else:
            records.append((key, now, now + window_s))
        assert len(window) == len(records)


# ============================================================================================
# Bulkhead


def test_bulkhead_without_a_queue_rejects_at_once() -> None:
    bulkhead = Bulkhead(1)
    assert bulkhead.enter(0.0) == Admitted(0)
    assert bulkhead.enter(0.0) == Rejected(1, "full")
    assert bulkhead.leave(1.0) is None
    assert bulkhead.enter(1.0) == Admitted(2)
    assert (bulkhead.rejected, bulkhead.timed_out, bulkhead.in_use) == (1, 0, 1)


def test_bulkhead_queue_is_fifo_and_bounded() -> None:
    bulkhead = Bulkhead(1, max_queue=2)
    assert bulkhead.enter(0.0) == Admitted(0)
    assert bulkhead.enter(1.0) == Queued(1, math.inf)
    assert bulkhead.enter(2.0) == Queued(2, math.inf)
    assert bulkhead.enter(3.0) == Rejected(3, "full")  # the queue is full
    assert bulkhead.waiting == 2
    assert bulkhead.leave(5.0) == Admitted(1, waited_s=4.0)  # the permit is handed over
    assert bulkhead.in_use == 1
    assert bulkhead.try_enter(5.0) is False  # nobody jumps the queue
    assert bulkhead.leave(6.0) == Admitted(2, waited_s=4.0)
    assert bulkhead.leave(7.0) is None
    assert bulkhead.in_use == 0


def test_bulkhead_queued_caller_times_out_at_its_deadline() -> None:
    bulkhead = Bulkhead(1, max_queue=None, max_wait_s=2.0)
    assert bulkhead.enter(0.0) == Admitted(0)
    assert bulkhead.enter(1.0) == Queued(1, 3.0)
    assert bulkhead.enter(2.0) == Queued(2, 4.0)
    assert bulkhead.expire(2.999) == ()
    assert bulkhead.expire(3.0) == (Rejected(1, "timeout"),)  # max wait passed
    assert bulkhead.leave(3.5) == Admitted(2, waited_s=1.5)
    assert (bulkhead.rejected, bulkhead.timed_out) == (1, 1)


def test_bulkhead_release_skips_timed_out_callers() -> None:
    bulkhead = Bulkhead(1, max_queue=5, max_wait_s=1.0)
    bulkhead.enter(0.0)
    bulkhead.enter(0.0)  # deadline 1.0
    bulkhead.enter(0.5)  # deadline 1.5
    assert bulkhead.leave(1.2) == Admitted(2, waited_s=0.7)
    assert bulkhead.timed_out == 1


def test_bulkhead_zero_wait_means_no_queue() -> None:
    bulkhead = Bulkhead(1, max_queue=None, max_wait_s=0.0)
    bulkhead.enter(0.0)
    assert bulkhead.enter(0.0) == Rejected(1, "full")


def test_bulkhead_cancel() -> None:
    bulkhead = Bulkhead(1, max_queue=None, max_wait_s=5.0)
    bulkhead.enter(0.0)
    q = bulkhead.enter(0.0)
    assert isinstance(q, Queued)
    assert bulkhead.cancel(q.ticket, 1.0)  # gave up before the deadline: not a rejection
    assert not bulkhead.cancel(q.ticket, 1.0)
    assert bulkhead.rejected == 0
    q2 = bulkhead.enter(2.0)
    assert isinstance(q2, Queued)
    assert bulkhead.cancel(q2.ticket, 7.0)  # its timer fired at the deadline: a timeout
    assert (bulkhead.rejected, bulkhead.timed_out) == (1, 1)
    q3 = bulkhead.enter(8.0)
    assert isinstance(q3, Queued)
    assert bulkhead.leave(9.0) == Admitted(q3.ticket, waited_s=1.0)
    assert not bulkhead.cancel(q3.ticket, 9.0)  # already admitted: it holds a permit


def test_bulkhead_clock_going_back_counts_as_the_latest_time() -> None:
    bulkhead = Bulkhead(1, max_queue=None, max_wait_s=2.0)
    bulkhead.enter(10.0)
    assert bulkhead.enter(5.0) == Queued(1, 12.0)
    assert bulkhead.leave(4.0) == Admitted(1, waited_s=0.0)


def test_bulkhead_validation() -> None:
    with pytest.raises(ValueError, match=r"max_queue must be an integer >= 0 or None \(got -1\)"):
        Bulkhead(1, max_queue=-1)
    with pytest.raises(ValueError, match="max_wait_s must be a number >= 0"):
        Bulkhead(1, max_wait_s=math.nan)
    with pytest.raises(RuntimeError, match="without a matching"):
        Bulkhead(1).leave(0.0)
    with pytest.raises(ValueError, match="NaN"):
        Bulkhead(1).enter(math.nan)
    bulkhead = Bulkhead(3, max_queue=4, max_wait_s=1.5)
    assert (bulkhead.max_concurrent, bulkhead.max_queue, bulkhead.max_wait_s) == (3, 4, 1.5)


class BulkheadModel:
    """The bulkhead as lists, scanned in full on every call: the reference."""

    def __init__(self, limit: int, max_queue: int | None, max_wait: float) -> None:
        self.limit, self.max_queue, self.max_wait = limit, max_queue, max_wait
        self.inside = 0
        self.queue: list[tuple[int, float, float]] = []  # (ticket, queued_at, deadline)
        self.clock = -math.inf
        self.tickets = 0
        self.rejected = self.timed_out = 0

    def expire(self, now: float) -> list[Rejected]:
        self.clock = max(self.clock, now)
        gone = [Rejected(t, "timeout") for t, _, d in self.queue if d <= self.clock]
        self.queue = [q for q in self.queue if q[2] > self.clock]
        self.rejected += len(gone)
        self.timed_out += len(gone)
        return gone

    def enter(self, now: float) -> Admitted | Queued | Rejected:
        self.expire(now)
        ticket = self.tickets
        self.tickets += 1
        if self.inside < self.limit and not self.queue:
            self.inside += 1
            return Admitted(ticket)
        if self.max_wait > 0 and (self.max_queue is None or len(self.queue) < self.max_queue):
            self.queue.append((ticket, self.clock, self.clock + self.max_wait))
            return Queued(ticket, self.clock + self.max_wait)
        self.rejected += 1
        return Rejected(ticket, "full")

    def leave(self, now: float) -> Admitted | None:
        self.expire(now)
        if self.queue:
            ticket, at, _ = self.queue.pop(0)
            return Admitted(ticket, self.clock - at)
        self.inside -= 1
        return None

    def cancel(self, ticket: int, now: float) -> bool:
        if any(r.ticket == ticket for r in self.expire(now)):
            return True
        before = len(self.queue)
        self.queue = [q for q in self.queue if q[0] != ticket]
        return len(self.queue) < before


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(1, 3),
    max_queue=st.none() | st.integers(0, 3),
    max_wait=st.sampled_from([0.0, 0.5, 1.0, 2.5, math.inf]),
    ops=st.lists(
        st.tuples(
            st.sampled_from(["enter", "enter", "leave", "cancel", "expire"]),
            st.sampled_from([0.0, 0.25, 0.5, 1.0]) | st.floats(-1.0, 3.0),
            st.integers(0, 30),
        ),
        max_size=80,
    ),
)
def test_bulkhead_matches_brute_force(
    limit: int, max_queue: int | None, max_wait: float, ops: list[tuple[str, float, int]]
) -> None:
    bulkhead = Bulkhead(limit, max_queue=max_queue, max_wait_s=max_wait)
    model = BulkheadModel(limit, max_queue, max_wait)
    now = 0.0
    for op, dt, ticket in ops:
        now += dt  # steps may be negative: a clock that goes back
        if op == "enter":
            assert bulkhead.enter(now) == model.enter(now)
        elif op == "leave":
            if model.inside == 0:
                with pytest.raises(RuntimeError):
                    bulkhead.leave(now)
                continue
            assert bulkhead.leave(now) == model.leave(now)
        elif op == "cancel":
            assert bulkhead.cancel(ticket, now) == model.cancel(ticket, now)
        else:
            assert list(bulkhead.expire(now)) == model.expire(now)
        assert (bulkhead.in_use, bulkhead.waiting) == (model.inside, len(model.queue))
        assert (bulkhead.rejected, bulkhead.timed_out) == (model.rejected, model.timed_out)
        assert bulkhead.in_use <= limit
        assert not model.queue or bulkhead.in_use == limit  # nobody waits while a permit is free


# ============================================================================================
# Dead-letter policy


class UnknownSchema(Exception):
    """Stands for the ingest consumer's PoisonRecord."""


def test_dead_letter_after_max_attempts_keeps_the_error() -> None:
    dlq = DeadLetterPolicy(max_attempts=3)
    assert dlq.record_failure("m", TimeoutError("db"), now=1.0) == "retry"
    assert dlq.record_failure("m", TimeoutError("db"), now=2.0) == "retry"
    assert dlq.depth == 0
    last = TimeoutError("db again")
    assert dlq.record_failure("m", last, now=3.0, message={"id": "m"}) == "dead_letter"
    assert dlq.depth == 1 and dlq.dead_lettered == 1 and len(dlq) == 0
    assert dlq.letters == (DeadLetter("m", last, 3, True, 3.0, {"id": "m"}),)


def test_undecodable_record_is_dead_lettered_at_once() -> None:
    dlq = DeadLetterPolicy(max_attempts=3, not_retryable=(UnknownSchema,))
    assert dlq.record_failure("poison", UnknownSchema("schema_version 99")) == "dead_letter"
    letter = dlq.letters[0]
    assert (letter.attempts, letter.retryable) == (1, False)
    assert DeadLetterPolicy().record_failure("p", "bad bytes", retryable=False) == "dead_letter"
    # An explicit flag wins over the classification.
    assert dlq.record_failure("q", UnknownSchema("x"), retryable=True) == "retry"


def test_a_poison_record_never_crash_loops_the_consumer() -> None:
    records = [{"id": i, "schema_version": 99 if i == 3 else 1} for i in range(8)]
    flaky = {5: 2}  # record 5 fails twice, then succeeds

    def process(record: dict[str, int]) -> None:
        if record["schema_version"] != 1:
            raise UnknownSchema(f"schema_version {record['schema_version']}")
        if flaky.get(record["id"], 0) > 0:
            flaky[record["id"]] -= 1
            raise TimeoutError("db")

    dlq = DeadLetterPolicy(max_attempts=3, not_retryable=(UnknownSchema,))
    stored: list[int] = []
    position = attempts = 0
    while position < len(records):
        attempts += 1
        assert attempts < 50, "the consumer is stuck"
        record = records[position]
        try:
            process(record)
        except Exception as error:  # the consumer classifies every failure
            if dlq.record_failure(record["id"], error, now=float(attempts), message=record) == "retry":
                continue  # redelivered: the same position again
            position += 1  # dead-lettered: commit past it and move on
            continue
        dlq.record_success(record["id"])
        stored.append(record["id"])
        position += 1
    assert stored == [0, 1, 2, 4, 5, 6, 7]
    assert attempts == 8 + 2  # one try for the poison record, three for the flaky one
    assert dlq.depth == 1
    assert dlq.letters[0].message == records[3]


def test_dlq_drain() -> None:
    dlq = DeadLetterPolicy(max_attempts=1)
    for key in "abc":
        dlq.record_failure(key, "e")
    assert [letter.key for letter in dlq.drain(2)] == ["a", "b"]
    assert dlq.depth == 1 and dlq.dead_lettered == 3
    assert [letter.key for letter in dlq.drain()] == ["c"]
    assert dlq.drain() == [] and dlq.depth == 0
    with pytest.raises(ValueError, match="limit must be an integer >= 0"):
        dlq.drain(-1)
    with pytest.raises(ValueError, match="not_retryable must hold exception types"):
        DeadLetterPolicy(not_retryable=("UnknownSchema",))  # type: ignore[arg-type]
