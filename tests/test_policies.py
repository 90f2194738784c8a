"""Tests of models.policies: exact state-machine behaviour, bounds, and memory limits."""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

import models.policies as policies
from models.policies import (
    BreakerSettings,
    BreakerState,
    Bulkhead,
    CircuitBreaker,
    DeadLetterPolicy,
    Fresh,
    IdempotencyStore,
    InProgress,
    KeyedRateLimiter,
    Mismatch,
    Permit,
    Replay,
    RetryBudget,
    RetryPolicy,
    TokenBucket,
)

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
POLICY_DIR = Path(policies.__file__).parent


# --------------------------------------------------------------------------------------------
# Package hygiene


def test_package_all_is_sorted_and_complete() -> None:
    assert policies.__all__ == sorted(policies.__all__)
    for name in policies.__all__:
        assert getattr(policies, name) is not None


@pytest.mark.parametrize("path", sorted(POLICY_DIR.glob("*.py")), ids=lambda p: p.name)
def test_modules_are_pure(path: Path) -> None:
    """No simulator, clock, I/O or global random state may creep into a policy."""
    tree = ast.parse(path.read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert imported.isdisjoint({"simpy", "time", "datetime", "random", "os", "io", "sim"})
    assert "__future__" in imported
    assert "np.random.default_rng" not in path.read_text()
    has_all = any(
        isinstance(node, ast.Assign) and any(getattr(target, "id", "") == "__all__" for target in node.targets)
        for node in tree.body
    )
    assert has_all


# --------------------------------------------------------------------------------------------
# Circuit breaker


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[float, BreakerState, BreakerState]] = []

    def __call__(self, at: float, old: BreakerState, new: BreakerState) -> None:
        self.events.append((at, old, new))


def make_breaker(**overrides: Any) -> tuple[CircuitBreaker, Recorder]:
    recorder = Recorder()
    breaker = CircuitBreaker(BreakerSettings(**overrides), on_transition=recorder)
    return breaker, recorder


def call(breaker: CircuitBreaker, now: float, success: bool) -> bool:
    """Acquire and immediately record; return whether the call was admitted."""
    permit = breaker.try_acquire(now)
    if permit is None:
        return False
    breaker.record(permit, now, success)
    return True


def run(breaker: CircuitBreaker, now: float, outcomes: str) -> BreakerState:
    """Make one admitted call per letter of ``outcomes`` (S = success, F = failure) at ``now``.

    Returns the state afterwards.
    """
    for letter in outcomes.replace(" ", ""):
        assert call(breaker, now, success=(letter == "S"))
    return breaker.state(now)


def trip(breaker: CircuitBreaker, now: float = 0.0) -> None:
    assert run(breaker, now, "F" * breaker.settings.consecutive_failures) is OPEN


def test_breaker_defaults_are_the_reviews() -> None:
    s = BreakerSettings()
    assert (s.consecutive_failures, s.failure_rate, s.window_s, s.min_calls) == (5, 0.5, 10.0, 10)
    assert (s.open_for_s, s.half_open_max_calls, s.half_open_successes) == (30.0, 3, 3)


def test_breaker_trips_on_fifth_consecutive_failure() -> None:
    breaker, recorder = make_breaker()
    for i in range(4):
        assert run(breaker, float(i), "F") is CLOSED
    assert run(breaker, 4.0, "F") is OPEN
    assert recorder.events == [(4.0, CLOSED, OPEN)]
    assert breaker.transitions == 1


def test_breaker_success_resets_consecutive_failures() -> None:
    breaker, _ = make_breaker(min_calls=100)
    assert run(breaker, 0.0, "FFFF S FFFF") is CLOSED
    assert run(breaker, 0.0, "F") is OPEN


def test_breaker_consecutive_failures_ignore_the_window() -> None:
    breaker, _ = make_breaker()
    for i in range(5):
        run(breaker, i * 3600.0, "F")
    assert breaker.state(4 * 3600.0) is OPEN


def test_breaker_rate_rule_needs_min_calls_and_trips_only_on_failure() -> None:
    breaker, _ = make_breaker()
    # 9 calls, 5 failures (56%) but below min_calls=10.
    assert run(breaker, 1.0, "FSFSFSFSF") is CLOSED
    # 10 calls, 5 failures = 50% >= 50%, but a success never trips.
    assert run(breaker, 1.0, "S") is CLOSED
    # 11 calls, 6 failures: trips.
    assert run(breaker, 1.0, "F") is OPEN


def test_breaker_rate_rule_trips_at_exactly_the_threshold() -> None:
    breaker, _ = make_breaker()
    assert run(breaker, 1.0, "SFSFSFSFS") is CLOSED
    assert run(breaker, 1.0, "F") is OPEN  # 5 failures of 10 calls: 50% >= 50%


def test_breaker_rate_below_threshold_stays_closed() -> None:
    breaker, _ = make_breaker()
    # 12 calls, 5 failures (41.7%), never 5 in a row.
    assert run(breaker, 2.0, "SSFSFSFSFSSF") is CLOSED


@pytest.mark.parametrize(("later", "expected"), [(9.99, OPEN), (10.0, CLOSED)])
def test_breaker_rate_window_is_ten_one_second_buckets(later: float, expected: BreakerState) -> None:
    breaker, _ = make_breaker()
    run(breaker, 0.5, "FSFSFSFS")  # bucket 0
    # At 9.99 bucket 0 is still in the window (seconds 0..9), at 10.0 it is not (1..10).
    assert run(breaker, later, "FSF") is expected


def test_breaker_open_rejects_and_half_opens_lazily_at_exactly_open_for_s() -> None:
    breaker, recorder = make_breaker()
    trip(breaker, now=100.0)
    assert breaker.try_acquire(129.999) is None
    assert breaker.rejected == 1
    assert breaker.state(129.999) is OPEN
    assert recorder.events == [(100.0, CLOSED, OPEN)]
    # Nobody asks until 175; the transition is reported at its nominal time.
    assert breaker.state(175.0) is HALF_OPEN
    assert recorder.events[-1] == (130.0, OPEN, HALF_OPEN)


def test_breaker_half_open_boundary_is_inclusive() -> None:
    breaker, _ = make_breaker()
    trip(breaker, now=100.0)
    assert breaker.try_acquire(130.0) is not None
    assert breaker.state(130.0) is HALF_OPEN


def test_breaker_half_open_admits_three_in_total_and_rejects_the_fourth() -> None:
    breaker, _ = make_breaker()
    trip(breaker)
    probes = [breaker.try_acquire(30.0) for _ in range(3)]
    assert all(isinstance(p, Permit) for p in probes)
    assert breaker.try_acquire(30.0) is None
    # Finished probes do not free slots: the limit is per half-open period, not concurrent.
    breaker.record(probes[0], 31.0, success=True)
    breaker.record(probes[1], 31.0, success=True)
    assert breaker.try_acquire(31.0) is None
    assert breaker.rejected == 2
    assert breaker.state(31.0) is HALF_OPEN


def test_breaker_three_half_open_successes_close() -> None:
    breaker, recorder = make_breaker()
    trip(breaker)
    probes = [breaker.try_acquire(30.0) for _ in range(3)]
    for i, probe in enumerate(probes):
        assert breaker.state(31.0) is HALF_OPEN
        breaker.record(probe, 31.0 + i, success=True)  # type: ignore[arg-type]
    assert breaker.state(33.0) is CLOSED
    assert recorder.events == [
        (0.0, CLOSED, OPEN),
        (30.0, OPEN, HALF_OPEN),
        (33.0, HALF_OPEN, CLOSED),
    ]
    # A fresh closed period: counts start from zero.
    assert run(breaker, 34.0, "FFFF") is CLOSED


def test_breaker_one_half_open_failure_reopens() -> None:
    breaker, recorder = make_breaker()
    trip(breaker)
    first, second = breaker.try_acquire(30.0), breaker.try_acquire(30.0)
    assert first is not None and second is not None
    breaker.record(first, 31.0, success=True)
    breaker.record(second, 32.0, success=False)
    assert breaker.state(32.0) is OPEN
    assert recorder.events[-1] == (32.0, HALF_OPEN, OPEN)
    assert breaker.try_acquire(61.9) is None
    assert breaker.state(62.0) is HALF_OPEN


def test_breaker_ignores_stale_permits() -> None:
    breaker, recorder = make_breaker()
    slow_call = breaker.try_acquire(0.0)  # admitted while closed, answers much later
    assert slow_call is not None
    trip(breaker)
    old_probe = breaker.try_acquire(30.0)
    assert old_probe is not None
    assert call(breaker, 30.0, success=False)  # re-opens: old_probe is now stale
    assert breaker.state(60.0) is HALF_OPEN
    # Late results from older generations change nothing, neither success nor failure.
    breaker.record(slow_call, 60.0, success=False)
    breaker.record(old_probe, 60.0, success=False)
    assert breaker.state(60.0) is HALF_OPEN
    assert run(breaker, 61.0, "SSS") is CLOSED
    breaker.record(old_probe, 62.0, success=False)
    assert breaker.state(62.0) is CLOSED
    assert [e[2] for e in recorder.events] == [OPEN, HALF_OPEN, OPEN, HALF_OPEN, CLOSED]


def test_breaker_every_transition_starts_a_fresh_window() -> None:
    breaker, _ = make_breaker(consecutive_failures=100, min_calls=4, open_for_s=1.0)
    assert run(breaker, 0.0, "FFFF") is OPEN  # 4 of 4 failed: the rate rule trips
    assert run(breaker, 1.0, "SSS") is CLOSED
    # Still inside the 10 s window, but the failures before the trip no longer count.
    assert run(breaker, 1.0, "FFF") is CLOSED
    assert run(breaker, 1.0, "F") is OPEN


def test_breaker_listener_sees_the_new_state() -> None:
    seen: list[BreakerState] = []
    breaker: CircuitBreaker

    def listener(at: float, old: BreakerState, new: BreakerState) -> None:
        seen.append(breaker.state(at))

    breaker = CircuitBreaker(BreakerSettings(consecutive_failures=1), on_transition=listener)
    call(breaker, 0.0, success=False)
    assert seen == [OPEN]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"window_s": -1}, "window_s must be a finite number > 0 (got -1)"),
        ({"open_for_s": math.inf}, "open_for_s must be a finite number > 0 (got inf)"),
        ({"consecutive_failures": 0}, "consecutive_failures must be an integer >= 1 (got 0)"),
        ({"min_calls": 2.5}, "min_calls must be an integer >= 1 (got 2.5)"),
        ({"half_open_max_calls": True}, "half_open_max_calls must be an integer >= 1 (got True)"),
        ({"failure_rate": 0.0}, "failure_rate must be in (0, 1] (got 0.0)"),
        ({"failure_rate": 1.5}, "failure_rate must be in (0, 1] (got 1.5)"),
        ({"half_open_successes": 4}, "half_open_successes (4) must be <= half_open_max_calls (3)"),
    ],
)
def test_breaker_settings_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        BreakerSettings(**overrides)  # type: ignore[arg-type]


small_settings = st.integers(1, 4).flatmap(
    lambda max_calls: st.builds(
        BreakerSettings,
        consecutive_failures=st.integers(1, 6),
        failure_rate=st.sampled_from([0.25, 0.5, 1.0]),
        window_s=st.sampled_from([0.5, 1.0, 2.5, 10.0]),
        min_calls=st.integers(1, 6),
        open_for_s=st.sampled_from([0.5, 5.0, 30.0]),
        half_open_max_calls=st.just(max_calls),
        half_open_successes=st.integers(1, max_calls),
    )
)


class BreakerMachine(RuleBasedStateMachine):
    """Drives a breaker with random calls, outcomes and clock jumps against a simple model."""

    permits = Bundle("permits")

    @initialize(s=small_settings)
    def setup(self, s: BreakerSettings) -> None:
        self.s = s
        self.now = 0.0
        self.recorder = Recorder()
        self.breaker = CircuitBreaker(s, on_transition=self.recorder)
        self.model_state = CLOSED
        self.opened_at = 0.0
        self.rejections = 0
        self.half_open_admitted = 0
        self.half_open_successes = 0
        self.consecutive = 0
        self.outcomes: list[tuple[float, bool]] = []  # (time, failed) in this closed period

    # -- helpers -------------------------------------------------------------------------
    def _sync(self, start: int) -> None:
        """Apply the transitions reported since index ``start`` to the model."""
        for _, old, new in self.recorder.events[start:]:
            assert old is self.model_state
            self.model_state = new
            self.half_open_admitted = 0
            self.half_open_successes = 0
            self.consecutive = 0
            self.outcomes = []

    def _lazy(self) -> None:
        """Check the OPEN -> HALF_OPEN change happens exactly when due, at its nominal time."""
        start = len(self.recorder.events)
        state = self.breaker.state(self.now)
        due = self.opened_at + self.s.open_for_s
        if self.model_state is OPEN and self.now >= due:
            assert self.recorder.events[start:] == [(due, OPEN, HALF_OPEN)]
        else:
            assert len(self.recorder.events) == start
        self._sync(start)
        assert state is self.model_state

    # -- rules ---------------------------------------------------------------------------
    @rule(dt=st.floats(0.0, 40.0) | st.sampled_from([0.0, 0.5, 1.0]))
    def advance(self, dt: float) -> None:
        self.now += dt

    @precondition(lambda self: self.model_state is OPEN)
    @rule(early=st.booleans())
    def jump_to_open_boundary(self, early: bool) -> None:
        due = self.opened_at + self.s.open_for_s
        self.now = max(self.now, math.nextafter(due, -math.inf) if early else due)

    @rule(target=permits)
    def acquire(self):  # type: ignore[no-untyped-def]
        self._lazy()
        permit = self.breaker.try_acquire(self.now)
        if self.model_state is CLOSED:
            assert permit is not None
        elif self.model_state is OPEN:
            assert self.now < self.opened_at + self.s.open_for_s
            assert permit is None
        else:
            assert (permit is None) == (self.half_open_admitted >= self.s.half_open_max_calls)
            if permit is not None:
                self.half_open_admitted += 1
            assert self.half_open_admitted <= self.s.half_open_max_calls
        if permit is None:
            self.rejections += 1
            return multiple()
        assert permit.generation == self.breaker.transitions
        return permit

    @rule(permit=consumes(permits), success=st.booleans())
    def record(self, permit: Permit, success: bool) -> None:
        self._lazy()
        start = len(self.recorder.events)
        stale = permit.generation != self.breaker.transitions
        expected: BreakerState | None = None
        if not stale and self.model_state is CLOSED:
            self.consecutive = 0 if success else self.consecutive + 1
            self.outcomes.append((self.now, not success))
            span = max(1, math.ceil(self.s.window_s))
            recent = [f for t, f in self.outcomes if math.floor(t) > math.floor(self.now) - span]
            rate_trip = len(recent) >= self.s.min_calls and sum(recent) / len(recent) >= self.s.failure_rate
            if not success and (self.consecutive >= self.s.consecutive_failures or rate_trip):
                expected = OPEN
        elif not stale and self.model_state is HALF_OPEN:
            if not success:
                expected = OPEN
            elif self.half_open_successes + 1 >= self.s.half_open_successes:
                expected = CLOSED
            self.half_open_successes += 1
        self.breaker.record(permit, self.now, success)
        events = self.recorder.events[start:]
        if expected is None:
            assert events == []
        else:
            assert events == [(self.now, self.model_state, expected)]
            if expected is OPEN:
                self.opened_at = self.now
        self._sync(start)

    # -- invariants ----------------------------------------------------------------------
    @invariant()
    def counters_match(self) -> None:
        if not hasattr(self, "breaker"):
            return
        assert self.breaker.rejected == self.rejections
        assert self.breaker.transitions == len(self.recorder.events)
        times = [at for at, _, _ in self.recorder.events]
        assert times == sorted(times)


TestBreakerMachine = BreakerMachine.TestCase
TestBreakerMachine.settings = settings(max_examples=100, stateful_step_count=50, deadline=None)


# --------------------------------------------------------------------------------------------
# Retry policy


RNG_SEEDS = st.integers(0, 2**32 - 1)


def test_retry_default_schedule_is_1_2_4_then_stop() -> None:
    rng = np.random.default_rng(0)
    policy = RetryPolicy()
    assert [policy.delay(n, rng) for n in range(1, 6)] == [1.0, 2.0, 4.0, None, None]


def test_retry_exponential_is_capped() -> None:
    rng = np.random.default_rng(0)
    policy = RetryPolicy(max_attempts=10)
    assert [policy.delay(n, rng) for n in range(1, 10)] == [1, 2, 4, 8, 16, 20, 20, 20, 20]
    assert policy.delay(10, rng) is None


def test_retry_huge_retry_number_does_not_overflow() -> None:
    policy = RetryPolicy(max_attempts=100_000, multiplier=3.0)
    assert policy.delay(50_000, np.random.default_rng(0)) == 20.0


def test_retry_fixed_schedule() -> None:
    rng = np.random.default_rng(0)
    policy = RetryPolicy.fixed(1.0, 2.0, 4.0)
    assert policy == RetryPolicy(max_attempts=4, delays_s=(1.0, 2.0, 4.0))
    assert [policy.delay(n, rng) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, None]
    odd = RetryPolicy.fixed(0.0, 7.5)
    assert [odd.delay(n, rng) for n in (1, 2, 3)] == [0.0, 7.5, None]
    assert RetryPolicy.fixed().delay(1, rng) is None


def test_retry_without_jitter_draws_nothing() -> None:
    rng = np.random.default_rng(7)
    before = rng.bit_generator.state
    RetryPolicy().delay(1, rng)
    RetryPolicy.fixed(1.0).delay(1, rng)
    assert rng.bit_generator.state == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 3, "delays_s": (1.0, 2.0, 4.0)}, "max_attempts counts the first attempt"),
        ({"delays_s": (1.0, 2.0, 4.0), "jitter": "full"}, "jitter must be 'none'"),
        ({"delays_s": (1.0, -2.0, 4.0)}, r"delays_s must hold finite delays >= 0 \(got -2.0\)"),
        ({"max_attempts": 0}, r"max_attempts must be an integer >= 1 \(got 0\)"),
        ({"base_s": 0.0}, r"base_s must be a finite number > 0 \(got 0.0\)"),
        ({"multiplier": 0.5}, r"multiplier must be a finite number >= 1 \(got 0.5\)"),
        ({"cap_s": 0.5}, r"cap_s must be a finite number >= base_s \(got 0.5\)"),
        ({"jitter": "random"}, "jitter must be one of"),
    ],
)
def test_retry_policy_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_retry_number_counts_from_one() -> None:
    with pytest.raises(ValueError, match="counts from 1"):
        RetryPolicy().delay(0, np.random.default_rng(0))


@given(seed=RNG_SEEDS, n=st.integers(1, 9), base=st.floats(0.01, 5.0), cap=st.floats(5.0, 60.0))
def test_full_and_equal_jitter_bounds(seed: int, n: int, base: float, cap: float) -> None:
    rng = np.random.default_rng(seed)
    ceiling = min(cap, base * 2.0 ** (n - 1))
    full = RetryPolicy(max_attempts=10, base_s=base, cap_s=cap, jitter="full").delay(n, rng)
    equal = RetryPolicy(max_attempts=10, base_s=base, cap_s=cap, jitter="equal").delay(n, rng)
    assert full is not None and 0.0 <= full <= ceiling
    assert equal is not None and ceiling / 2 <= equal <= ceiling


@given(seed=RNG_SEEDS, previous=st.none() | st.floats(0.0, 100.0), base=st.floats(0.01, 5.0))
def test_decorrelated_jitter_bounds(seed: int, previous: float | None, base: float) -> None:
    policy = RetryPolicy(max_attempts=5, base_s=base, cap_s=20.0, jitter="decorrelated")
    delay = policy.delay(2, np.random.default_rng(seed), previous_s=previous)
    prev = base if previous is None else previous
    assert delay is not None
    assert base <= delay <= min(20.0, max(base, 3 * prev))


def test_full_jitter_is_spread_over_the_whole_interval() -> None:
    rng = np.random.default_rng(1)
    policy = RetryPolicy(jitter="full")
    draws = np.array([policy.delay(3, rng) for _ in range(4000)])  # ceiling 4 s
    assert abs(draws.mean() - 2.0) < 0.1
    assert draws.min() < 0.1 and draws.max() > 3.9


def test_decorrelated_jitter_chain_is_reproducible() -> None:
    policy = RetryPolicy(max_attempts=6, base_s=0.5, jitter="decorrelated")

    def chain(seed: int) -> list[float]:
        rng, previous, out = np.random.default_rng(seed), None, []
        for n in range(1, 6):
            previous = policy.delay(n, rng, previous)
            out.append(previous)
        return out  # type: ignore[return-value]

    assert chain(3) == chain(3)
    assert chain(3) != chain(4)


# --------------------------------------------------------------------------------------------
# Retry budget


def test_budget_reserve_allows_min_retries_per_s_times_ttl() -> None:
    budget = RetryBudget()  # 20%, 10/s, 10 s: a reserve of 100 retries
    assert sum(budget.try_withdraw(0.0) for _ in range(101)) == 100
    assert not budget.try_withdraw(9.99)
    # The withdrawals of second 0 expire at t=10.
    assert budget.try_withdraw(10.0)


def test_budget_deposits_buy_a_fifth_of_a_retry() -> None:
    budget = RetryBudget(percent_can_retry=0.2, min_retries_per_s=0.0)
    assert not budget.try_withdraw(0.0)
    for _ in range(4):
        budget.deposit(0.0)
    assert not budget.try_withdraw(0.0)
    budget.deposit(0.0)
    assert budget.try_withdraw(0.0)
    assert not budget.try_withdraw(0.0)
    for _ in range(10):
        budget.deposit(0.0)
    assert sum(budget.try_withdraw(0.0) for _ in range(5)) == 2


def test_budget_deposits_expire_after_ttl() -> None:
    budget = RetryBudget(percent_can_retry=0.2, min_retries_per_s=0.0, ttl_s=10.0)
    for _ in range(10):
        budget.deposit(0.5)
    assert budget.balance(9.999) == pytest.approx(2.0)
    assert budget.balance(10.0) == 0.0


def test_budget_caps_retries_at_a_share_of_sustained_traffic() -> None:
    budget = RetryBudget()
    requests = retries = 0
    for tick in range(6000):  # 100 requests/s for 60 s, every one failing and wanting a retry
        now = tick * 0.01
        budget.deposit(now)
        requests += 1
        retries += budget.try_withdraw(now)
    # 20% of requests plus 10/s reserve (the first 10 s can also spend the initial reserve).
    assert retries <= 0.2 * requests + 10 * 70
    assert retries >= 0.2 * requests


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"percent_can_retry": -0.1}, "percent_can_retry must be a finite number >= 0"),
        ({"min_retries_per_s": math.nan}, "min_retries_per_s must be a finite number >= 0"),
        ({"ttl_s": 0.0}, "ttl_s must be a finite number > 0"),
    ],
)
def test_budget_validation(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryBudget(**kwargs)


# --------------------------------------------------------------------------------------------
# Token bucket and keyed limiter


def test_token_bucket_burst_then_sustained_rate() -> None:
    bucket = TokenBucket(rate_per_s=10 / 60, burst=10)  # 10 per minute per device
    assert sum(bucket.try_take(0.0) for _ in range(11)) == 10
    assert bucket.retry_after(0.0) == pytest.approx(6.0)
    assert not bucket.try_take(5.999)
    assert bucket.try_take(6.0)
    assert not bucket.try_take(6.0)
    # Greedy client polling every 0.5 s for a minute: 10 burst + 1 per 6 s.
    bucket = TokenBucket(rate_per_s=10 / 60, burst=10)
    taken = 0
    for tick in range(121):
        while bucket.try_take(tick * 0.5):
            taken += 1
    assert taken == 20


def test_token_bucket_never_exceeds_burst() -> None:
    bucket = TokenBucket(rate_per_s=5.0, burst=3.0)
    assert bucket.try_take(0.0, 3.0)
    assert bucket.tokens(1_000.0) == 3.0
    assert not bucket.try_take(1_000.0, 3.5)
    assert bucket.retry_after(1_000.0, 3.5) == math.inf
    assert bucket.retry_after(1_000.0, 3.0) == 0.0


def test_token_bucket_validation() -> None:
    with pytest.raises(ValueError, match=r"rate_per_s must be a finite number > 0 \(got 0\)"):
        TokenBucket(0, 1)
    with pytest.raises(ValueError, match="burst must be"):
        TokenBucket(1, -1)
    with pytest.raises(ValueError, match="n must be"):
        TokenBucket(1, 1).try_take(0.0, 0.0)


@settings(max_examples=150)
@given(
    rate=st.floats(0.01, 100.0),
    burst=st.floats(1.0, 50.0),
    steps=st.lists(st.tuples(st.floats(0.0, 5.0), st.floats(0.1, 1.0)), min_size=1, max_size=30),
)
def test_token_bucket_waiting_retry_after_always_succeeds(
    rate: float, burst: float, steps: list[tuple[float, float]]
) -> None:
    bucket = TokenBucket(rate, burst)
    now = 0.0
    for dt, fraction in steps:
        now += dt
        n = fraction * burst
        wait = bucket.retry_after(now, n)
        assert wait >= 0.0
        if wait == 0.0:
            assert bucket.try_take(now, n)
        else:
            assert not bucket.try_take(now, n)
            now += wait
            assert bucket.try_take(now, n)


def test_keyed_limiter_keys_are_independent() -> None:
    limiter = KeyedRateLimiter(rate_per_s=10 / 60, burst=10)
    assert sum(limiter.try_take("device-1", 0.0) for _ in range(12)) == 10
    assert limiter.try_take("device-2", 0.0)
    assert limiter.retry_after("device-1", 0.0) == pytest.approx(6.0)
    assert limiter.retry_after("device-3", 0.0) == 0.0
    assert len(limiter) == 2


def test_keyed_limiter_memory_is_bounded_by_recent_keys() -> None:
    limiter = KeyedRateLimiter(rate_per_s=1.0, burst=2.0)  # one token refills in 1 s
    peak = 0
    hot_taken = 0
    for i in range(20_000):  # a new key every 10 ms: about 100 keys active per second
        now = i * 0.01
        assert limiter.try_take(f"user-{i}", now)
        hot_taken += limiter.try_take("hot", now)  # never idle long enough to refill
        peak = max(peak, len(limiter))
    assert peak <= 103
    assert hot_taken == pytest.approx(2 + 200, abs=1)
    limiter.try_take("late", 20_000 * 0.01 + 5.0)
    assert len(limiter) == 1


@settings(max_examples=100)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from("abcd"), st.floats(0.0, 3.0), st.sampled_from([0.5, 1.0, 2.0])),
        max_size=60,
    )
)
def test_keyed_limiter_pruning_changes_no_decision(ops: list[tuple[str, float, float]]) -> None:
    limiter = KeyedRateLimiter(rate_per_s=0.7, burst=2.0)
    reference: dict[str, TokenBucket] = {}
    now = 0.0
    for key, dt, n in ops:
        now += dt
        expected = reference.setdefault(key, TokenBucket(0.7, 2.0)).try_take(now, n)
        assert limiter.try_take(key, now, n) == expected
        # Equal up to rounding: the sweep may refill a bucket in more steps than the reference.
        expected_wait = reference[key].retry_after(now, n)
        assert limiter.retry_after(key, now, n) == pytest.approx(expected_wait, abs=1e-9)


# --------------------------------------------------------------------------------------------
# Idempotency store


def test_idempotency_fresh_in_progress_replay() -> None:
    store = IdempotencyStore()
    assert store.begin("k", "fp", 0.0) == Fresh()
    assert store.begin("k", "fp", 1.0) == InProgress()
    store.complete("k", {"command_id": 42}, 2.0)
    assert store.begin("k", "fp", 3.0) == Replay({"command_id": 42})
    assert len(store) == 1


def test_idempotency_replays_errors_too() -> None:
    store = IdempotencyStore()
    store.begin("k", "fp", 0.0)
    store.complete("k", ("error", 500), 1.0)
    assert store.begin("k", "fp", 2.0) == Replay(("error", 500))


def test_idempotency_mismatch_wins_over_in_progress_and_replay() -> None:
    store = IdempotencyStore()
    store.begin("k", "turn-off", 0.0)
    assert store.begin("k", "turn-on", 0.5) == Mismatch()
    store.complete("k", "ok", 1.0)
    assert store.begin("k", "turn-on", 2.0) == Mismatch()
    assert store.begin("k", "turn-off", 2.0) == Replay("ok")


def test_idempotency_expiry_is_measured_from_completion() -> None:
    store = IdempotencyStore(ttl_s=1_000.0)
    store.begin("k", "fp", 0.0)
    store.complete("k", "ok", 100.0)
    assert store.begin("k", "fp", 1_099.9) == Replay("ok")
    assert store.begin("k", "other", 1_100.0) == Fresh()


def test_idempotency_abandoned_reservation_expires_from_reservation() -> None:
    store = IdempotencyStore(ttl_s=1_000.0)
    store.begin("k", "fp", 0.0)
    assert store.begin("k", "fp", 999.0) == InProgress()
    assert store.begin("k", "fp", 1_000.0) == Fresh()


def test_idempotency_release_lets_the_key_be_retried() -> None:
    store = IdempotencyStore()
    store.begin("k", "fp", 0.0)
    store.release("k")
    assert len(store) == 0
    store.release("k")  # releasing twice is harmless
    assert store.begin("k", "fp", 1.0) == Fresh()


def test_idempotency_misuse_is_reported() -> None:
    store = IdempotencyStore(ttl_s=10.0)
    with pytest.raises(KeyError, match="not reserved"):
        store.complete("never", "ok", 0.0)
    store.begin("k", "fp", 0.0)
    store.complete("k", "ok", 1.0)
    with pytest.raises(ValueError, match="already completed"):
        store.complete("k", "again", 2.0)
    with pytest.raises(ValueError, match="cannot be released"):
        store.release("k")
    store.begin("slow", "fp", 0.0)
    with pytest.raises(KeyError, match="not reserved"):
        store.complete("slow", "ok", 10.0)  # the reservation expired at 10.0
    with pytest.raises(ValueError, match="ttl_s must be"):
        IdempotencyStore(ttl_s=0.0)


def test_idempotency_memory_is_bounded_by_ttl() -> None:
    store = IdempotencyStore(ttl_s=100.0)
    peak = 0
    for i in range(10_000):
        now = float(i)
        assert store.begin(f"key-{i}", "fp", now) == Fresh()
        if i % 2:
            store.complete(f"key-{i}", i, now + 0.5)
        peak = max(peak, len(store))
    assert peak <= 101


def test_idempotency_completion_moves_the_expiry_back() -> None:
    store = IdempotencyStore(ttl_s=100.0)
    store.begin("slow", "fp", 0.0)
    for i in range(1, 150):
        store.begin(f"key-{i}", "fp", float(i))  # reservations that are never completed
        if i == 50:
            store.complete("slow", "ok", 50.0)  # now expires at 150
    # Live: key-50 .. key-149 (reserved after 49) and "slow"; the rest has been dropped.
    assert len(store) == 101
    assert store.begin("slow", "fp", 149.0) == Replay("ok")
    assert store.begin("key-49", "fp", 149.0) == Fresh()


# --------------------------------------------------------------------------------------------
# Bulkhead and dead-letter policy


def test_bulkhead_limits_concurrency_and_counts_rejections() -> None:
    bulkhead = Bulkhead(2)
    assert bulkhead.try_enter() and bulkhead.try_enter()
    assert not bulkhead.try_enter()
    assert (bulkhead.in_use, bulkhead.rejected) == (2, 1)
    bulkhead.leave()
    assert bulkhead.try_enter()
    assert bulkhead.in_use == 2
    bulkhead.leave()
    bulkhead.leave()
    with pytest.raises(RuntimeError, match="without a matching"):
        bulkhead.leave()
    with pytest.raises(ValueError, match=r"max_concurrent must be an integer >= 1 \(got 0\)"):
        Bulkhead(0)


def test_dead_letter_on_third_failure() -> None:
    dlq = DeadLetterPolicy()
    assert dlq.record_failure("event-1") == "retry"
    assert dlq.record_failure("event-1") == "retry"
    assert dlq.attempts("event-1") == 2
    assert dlq.record_failure("event-1") == "dead_letter"
    assert dlq.attempts("event-1") == 0
    assert len(dlq) == 0


def test_dead_letter_success_forgets_failures() -> None:
    dlq = DeadLetterPolicy(max_attempts=3)
    dlq.record_failure("a")
    dlq.record_failure("a")
    dlq.record_failure("b")
    dlq.record_success("a")
    assert (dlq.attempts("a"), dlq.attempts("b"), len(dlq)) == (0, 1, 1)
    assert dlq.record_failure("a") == "retry"
    assert DeadLetterPolicy(max_attempts=1).record_failure("x") == "dead_letter"
    with pytest.raises(ValueError, match="max_attempts must be"):
        DeadLetterPolicy(max_attempts=0)


def test_a_limit_below_one_per_period_still_admits_one_request_per_refill() -> None:
    """A bucket that could not hold one whole token would refuse forever (found by generated scenarios)."""
    limiter = KeyedRateLimiter.per_period(0.5, 60.0)  # one request every two minutes
    assert limiter.try_take("device-1", 0.0)
    assert not limiter.try_take("device-1", 60.0)
    assert limiter.retry_after("device-1", 60.0) == pytest.approx(60.0)
    assert limiter.try_take("device-1", 120.0)
