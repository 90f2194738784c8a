"""Tests of models.policies.retry against the reference formulas (research/semantics.md 2.1-2.5).

Each mode is checked against its formula with a twin generator (same seed, same draws), then
hypothesis checks the properties that must hold for any input: bounds for any attempt number
(huge included), determinism, the deadline, Retry-After, and the limiters' token arithmetic.
"""

from __future__ import annotations

import inspect
import math
import random
import time
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from models.policies import (
    AwsRetryQuota,
    GrpcRetryThrottle,
    RetryBudget,
    RetryCall,
    RetryKind,
    RetryLimiter,
    RetryPolicy,
)

SEEDS = st.integers(0, 2**32 - 1)
JITTERS = st.sampled_from(["none", "full", "equal", "decorrelated"])
HUGE = st.sampled_from([10**6, 10**9, 10**18, 10**100, 10**400])
ATTEMPTS = st.integers(1, 2_000) | st.integers(1, 10**30) | HUGE


def ceiling(base: float, multiplier: float, cap: float, n: int) -> float:
    """Reference ``min(cap, base * multiplier**(n-1))``, computed in log space (not like the code)."""
    if multiplier == 1.0 or n == 1:
        return min(cap, base)
    if n - 1 > 10**300:
        return cap
    log_value = math.log(base) + (n - 1) * math.log(multiplier)
    return cap if log_value >= math.log(cap) else min(cap, math.exp(log_value))


# --------------------------------------------------------------------------------------------
# The schedule, mode by mode, against the formulas


def test_as_designed_schedule_through_next_delay() -> None:
    policy = RetryPolicy.fixed(1.0, 2.0, 4.0)
    assert [policy.next_delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, None]
    assert policy.stop_reason(4) == "attempts"
    assert policy.stop_reason(3) is None


def test_exponential_without_jitter_is_capped_grpc_example() -> None:
    # gRFC A6's example policy: initialBackoff 0.1 s, multiplier 2, maxBackoff 1 s.
    policy = RetryPolicy(max_attempts=None, base_s=0.1, multiplier=2.0, cap_s=1.0)
    assert [policy.delay(n) for n in range(1, 8)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    odd = RetryPolicy(max_attempts=None, base_s=0.5, multiplier=1.5, cap_s=30.0)
    assert [odd.delay(n) for n in range(1, 5)] == [0.5, 0.75, 1.125, 1.6875]


@pytest.mark.parametrize("source", ["numpy", "random"])
def test_full_jitter_is_uniform_zero_to_ceiling(source: str) -> None:
    make = (lambda: np.random.default_rng(11)) if source == "numpy" else (lambda: random.Random(11))
    rng, twin = make(), make()
    policy = RetryPolicy(max_attempts=None, base_s=0.1, multiplier=2.0, cap_s=1.0, jitter="full")
    for n in range(1, 12):
        assert policy.delay(n, rng) == float(twin.uniform(0.0, min(1.0, 0.1 * 2.0 ** (n - 1))))


def test_equal_jitter_is_half_plus_uniform_half() -> None:
    rng, twin = np.random.default_rng(5), np.random.default_rng(5)
    policy = RetryPolicy(max_attempts=None, base_s=0.2, multiplier=3.0, cap_s=10.0, jitter="equal")
    for n in range(1, 10):
        half = min(10.0, 0.2 * 3.0 ** (n - 1)) / 2
        assert policy.delay(n, rng) == half + float(twin.uniform(0.0, half))


def test_decorrelated_jitter_is_brookers_chain() -> None:
    # sleep = min(cap, uniform(base, sleep * 3)), sleep starting at base (Brooker's ExpoBackoffDecorr).
    base, cap = 0.005, 2.0
    rng, twin = random.Random(3), random.Random(3)
    policy = RetryPolicy(max_attempts=None, base_s=base, cap_s=cap, jitter="decorrelated")
    previous: float | None = None
    sleep = base
    for n in range(1, 30):
        previous = policy.delay(n, rng, previous)
        sleep = min(cap, twin.uniform(base, sleep * 3))
        assert previous == sleep


def test_aws_standard_is_rand_times_min_two_to_the_i_minus_1_and_20() -> None:
    # botocore 2.0: t_i = rand(0, 1) * min(2**(attempt-1), 20) for retry i, 3 attempts.
    rng, twin = random.Random(9), random.Random(9)
    policy = RetryPolicy(max_attempts=None, base_s=1.0, multiplier=2.0, cap_s=20.0, jitter="full")
    for i in range(1, 10):
        assert policy.delay(i, rng) == min(2 ** (i - 1), 20) * twin.random()
    standard = RetryPolicy.aws_standard()
    assert (standard.max_attempts, standard.jitter) == (3, "full")
    assert standard.next_delay(3, rng=rng) is None


def test_jitter_needs_a_source_and_no_jitter_draws_nothing() -> None:
    with pytest.raises(ValueError, match="pass rng"):
        RetryPolicy(jitter="full").next_delay(1)
    rng = np.random.default_rng(1)
    before = rng.bit_generator.state
    assert RetryPolicy(max_attempts=None).next_delay(10**9, rng=rng) == 20.0
    assert RetryPolicy(jitter="full").next_delay(1, rng=rng, retryable=False) is None
    assert RetryPolicy(jitter="full").next_delay(4, rng=rng) is None  # past max_attempts
    assert rng.bit_generator.state == before


def test_unlimited_attempts() -> None:
    policy = RetryPolicy(max_attempts=None)
    assert policy.next_delay(10**9) == 20.0
    with pytest.raises(ValueError, match="needs max_attempts"):
        RetryPolicy(max_attempts=None, delays_s=(1.0,))


def test_not_retryable_is_the_callers_classification() -> None:
    policy = RetryPolicy()
    assert policy.next_delay(1, retryable=False) is None
    assert policy.stop_reason(1, retryable=False) == "not_retryable"


# --------------------------------------------------------------------------------------------
# Retry-After


def test_retry_after_is_a_floor_over_the_backoff() -> None:
    policy = RetryPolicy(max_attempts=None)  # 1, 2, 4, ... 20
    assert policy.next_delay(3, retry_after_s=1.0) == 4.0
    assert policy.next_delay(3, retry_after_s=7.0) == 7.0
    assert policy.next_delay(3, retry_after_s=120.0) == 120.0  # cap_s bounds the backoff only
    assert policy.next_delay(3, retry_after_s=0.0) == 4.0


def test_retry_after_cap_gives_up_or_clamps() -> None:
    give_up = RetryPolicy(max_attempts=None, retry_after_cap_s=30.0)
    assert give_up.next_delay(1, retry_after_s=30.0) == 30.0
    assert give_up.next_delay(1, retry_after_s=31.0) is None
    assert give_up.stop_reason(1, retry_after_s=31.0) == "retry_after_cap"
    clamp = RetryPolicy(max_attempts=None, retry_after_cap_s=30.0, retry_after_over_cap="clamp")
    assert clamp.next_delay(1, retry_after_s=31.0) == 30.0
    assert clamp.next_delay(10, retry_after_s=10.0) == 20.0  # the backoff is still a floor
    assert (
        RetryPolicy(max_attempts=None, cap_s=40.0, retry_after_cap_s=5.0, retry_after_over_cap="clamp").next_delay(
            6, retry_after_s=100.0
        )
        == 32.0
    )


def test_server_saying_do_not_retry() -> None:
    policy = RetryPolicy()
    for value in (-1.0, -0.001, math.inf, -math.inf):
        assert policy.next_delay(1, retry_after_s=value) is None
        assert policy.stop_reason(1, retry_after_s=value) == "server"
    with pytest.raises(ValueError, match="retry_after_s"):
        policy.next_delay(1, retry_after_s=math.nan)


# --------------------------------------------------------------------------------------------
# Deadline


def test_deadline_is_measured_from_the_first_attempt_and_inclusive() -> None:
    policy = RetryPolicy(max_attempts=None, max_elapsed_s=10.0)  # backoff 1, 2, 4, 8, ...
    assert policy.next_delay(3, now=106.0, started_at=100.0) == 4.0  # ends exactly at 110
    assert policy.next_delay(3, now=106.5, started_at=100.0) is None
    assert policy.stop_reason(3, now=106.5, started_at=100.0) == "deadline"
    assert policy.next_delay(2, now=8.0) == 2.0  # an elapsed time given as `now`
    zero = RetryPolicy(max_attempts=None, base_s=1e-9, cap_s=1e-9, max_elapsed_s=10.0)
    assert zero.next_delay(1, now=109.5, started_at=100.5, retry_after_s=1.0) == 1.0
    assert zero.next_delay(1, now=110.5, started_at=100.0, retry_after_s=0.0) is None
    with pytest.raises(ValueError, match="before started_at"):
        policy.next_delay(1, now=99.0, started_at=100.0)


def test_retry_after_past_the_deadline_is_not_waited_for() -> None:
    policy = RetryPolicy(max_attempts=None, max_elapsed_s=60.0)
    assert policy.next_delay(1, now=30.0, retry_after_s=30.0) == 30.0
    assert policy.stop_reason(1, now=30.0, retry_after_s=31.0) == "deadline"


@pytest.mark.parametrize("clock", [1e7, 1e7 + 0.1, 1.7e9 + 0.3, 1e12 + 0.7])
def test_waiting_exactly_retry_after_to_the_deadline_is_admitted_at_large_clocks(clock: float) -> None:
    policy = RetryPolicy(max_attempts=None, base_s=1e-3, cap_s=0.05, max_elapsed_s=30.0, jitter="full")
    rng = np.random.default_rng(0)
    for elapsed in (0.1, 12.3, 17.7, 29.9):
        now = clock + elapsed
        for retry_after in (30.0 - elapsed, (clock + 30.0) - now):
            assert policy.next_delay(2, now=now, started_at=clock, retry_after_s=retry_after, rng=rng) == retry_after


# --------------------------------------------------------------------------------------------
# Properties of the schedule


@given(
    seed=SEEDS,
    n=ATTEMPTS,
    base=st.floats(1e-3, 10.0),
    ratio=st.floats(1.0, 1e4),
    multiplier=st.floats(1.0, 10.0),
    jitter=JITTERS,
    previous=st.none() | st.floats(0.0, 1e6),
)
def test_delays_within_the_modes_bounds_for_any_attempt(
    seed: int, n: int, base: float, ratio: float, multiplier: float, jitter: Any, previous: float | None
) -> None:
    cap = base * ratio
    policy = RetryPolicy(max_attempts=None, base_s=base, multiplier=multiplier, cap_s=cap, jitter=jitter)
    delay = policy.delay(n, np.random.default_rng(seed), previous)
    assert delay is not None and math.isfinite(delay) and 0.0 <= delay <= cap
    c = ceiling(base, multiplier, cap, n)
    tol = 1e-9 * c
    if jitter == "none":
        assert delay == pytest.approx(c, rel=1e-9)
    elif jitter == "full":
        assert delay <= c + tol
    elif jitter == "equal":
        assert c / 2 - tol <= delay <= c + tol
    else:
        prev = base if previous is None else previous
        assert base <= delay <= min(cap, max(base, 3 * prev))


def test_backoff_is_constant_time_in_the_attempt_number() -> None:
    policy = RetryPolicy(max_attempts=None, base_s=1e-3, multiplier=1.000001, cap_s=1e6, jitter="equal")
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for n in (10**9, 10**18, 10**100, 10**1000) * 500:
        policy.delay(n, rng)
    assert time.perf_counter() - start < 1.0  # 2,000 calls; a loop over attempts would take ages
    assert RetryPolicy(max_attempts=None, base_s=1e-300, cap_s=1e300, multiplier=1.5).delay(10**9) == 1e300


@given(seed=SEEDS, jitter=JITTERS, retry_afters=st.lists(st.none() | st.floats(0.0, 50.0), min_size=1, max_size=8))
def test_deterministic_for_a_seeded_generator(seed: int, jitter: Any, retry_afters: list[float | None]) -> None:
    policy = RetryPolicy(max_attempts=None, base_s=0.1, cap_s=30.0, jitter=jitter, max_elapsed_s=100.0)

    def run() -> list[float | None]:
        rng, out, previous, now = np.random.default_rng(seed), [], None, 5.0
        for n, retry_after in enumerate(retry_afters, start=1):
            delay = policy.next_delay(
                n, now=now, started_at=5.0, retry_after_s=retry_after, previous_delay_s=previous, rng=rng
            )
            out.append(delay)
            if delay is not None:
                previous, now = delay, now + delay
        return out

    assert run() == run()


@settings(max_examples=300)
@given(
    seed=SEEDS,
    jitter=JITTERS,
    n=st.integers(1, 50) | HUGE,
    started_at=st.sampled_from([0.0, 1e7, 1.7e9]) | st.floats(0.0, 1e10),
    elapsed=st.floats(0.0, 200.0),
    limit=st.floats(0.0, 100.0),
    retry_after=st.none() | st.floats(0.0, 150.0),
)
def test_never_past_the_deadline(
    seed: int, jitter: Any, n: int, started_at: float, elapsed: float, limit: float, retry_after: float | None
) -> None:
    policy = RetryPolicy(max_attempts=None, base_s=0.5, cap_s=40.0, jitter=jitter, max_elapsed_s=limit)
    now = started_at + elapsed
    rng = np.random.default_rng(seed)
    delay = policy.next_delay(n, now=now, started_at=started_at, retry_after_s=retry_after, rng=rng)
    if delay is not None:
        # Past by at most the clock's rounding: 4 ulps of the largest clock value.
        slack = 4 * math.ulp(max(now, started_at, limit))
        assert (now - started_at) + delay <= limit + slack
        assert now + delay <= started_at + limit + 2 * slack
    else:
        twin = np.random.default_rng(seed)
        assert policy.stop_reason(n, now=now, started_at=started_at, retry_after_s=retry_after, rng=twin) == "deadline"


@given(
    seed=SEEDS,
    jitter=JITTERS,
    n=st.integers(1, 50) | HUGE,
    retry_after=st.floats(0.0, 1e6),
    cap=st.none() | st.floats(0.0, 1e6),
    limit=st.none() | st.floats(0.0, 1e6),
    now=st.floats(0.0, 1e6),
)
def test_retry_after_always_respected(
    seed: int, jitter: Any, n: int, retry_after: float, cap: float | None, limit: float | None, now: float
) -> None:
    policy = RetryPolicy(
        max_attempts=None, base_s=0.5, cap_s=40.0, jitter=jitter, max_elapsed_s=limit, retry_after_cap_s=cap
    )
    delay = policy.next_delay(n, now=now, retry_after_s=retry_after, rng=np.random.default_rng(seed))
    assert delay is None or delay >= retry_after
    if limit is None and (cap is None or retry_after <= cap):
        assert delay is not None


@settings(max_examples=300)
@given(
    clock=st.floats(1e7, 1e13) | st.sampled_from([1e7, 2.0**24, 1.7e9, 1e12]),
    limit=st.floats(1e-3, 3600.0),
    fraction=st.floats(0.0, 1.0),
    absolute=st.booleans(),
)
def test_exactly_retry_after_is_admitted_at_large_clock_values(
    clock: float, limit: float, fraction: float, absolute: bool
) -> None:
    """The caller's deadline arithmetic rounds at these magnitudes; landing on it must still retry."""
    policy = RetryPolicy(max_attempts=None, base_s=1e-12, cap_s=1e-12, max_elapsed_s=limit)
    elapsed = limit * fraction
    now = clock + elapsed
    retry_after = (clock + limit) - now if absolute else limit - elapsed
    assume(retry_after >= 1e-12)
    assert policy.next_delay(1, now=now, started_at=clock, retry_after_s=retry_after) == retry_after


# --------------------------------------------------------------------------------------------
# AWS standard-mode retry quota


def test_aws_quota_classic_costs() -> None:
    quota = AwsRetryQuota()
    assert (quota.capacity, quota.available) == (500, 500)
    assert (quota.cost("transient"), quota.cost("throttle"), quota.cost("timeout")) == (5, 5, 10)
    assert sum(quota.try_retry(0.0) for _ in range(101)) == 100  # 500 / 5
    assert quota.available == 0
    assert not quota.can_retry(0.0)
    with pytest.raises(RuntimeError, match="retry quota reached"):
        quota.on_retry(0.0)


def test_aws_quota_insufficient_tokens_and_exact_fit() -> None:
    quota = AwsRetryQuota()
    for _ in range(49):
        assert quota.try_retry(0.0, "timeout")
    assert quota.available == 10
    assert quota.try_retry(0.0, "timeout")  # a cost equal to what is left is affordable
    assert quota.available == 0
    quota.on_success(0.0)  # first-try success: +1
    assert quota.available == 1
    assert not quota.try_retry(0.0)  # 1 < 5: refused, nothing taken
    assert quota.available == 1


def test_aws_quota_refunds() -> None:
    quota = AwsRetryQuota()
    quota.on_success(0.0)
    assert quota.available == 500  # never above capacity
    quota.on_retry(0.0, "timeout")
    quota.on_retry(0.0, "transient")
    assert quota.available == 485
    quota.on_success(0.0, last_retry="transient")  # the last acquisition, not the sum
    assert quota.available == 490
    quota.on_failure(0.0, "timeout")  # a failed response refunds nothing and costs nothing
    assert quota.available == 490
    quota.on_success(0.0, last_retry="timeout")
    assert quota.available == 500
    quota.on_success(0.0, last_retry="timeout")
    assert quota.available == 500


def test_aws_quota_2_1_costs() -> None:
    quota = AwsRetryQuota.standard_2_1()
    assert (quota.cost("transient"), quota.cost("timeout"), quota.cost("throttle")) == (14, 14, 5)
    assert sum(quota.try_retry(0.0) for _ in range(40)) == 35  # 500 // 14


OPS = st.lists(
    st.tuples(
        st.sampled_from(["retry", "success", "failure"]), st.sampled_from([None, "transient", "timeout", "throttle"])
    ),
    max_size=300,
)


@given(ops=OPS, capacity=st.integers(0, 600))
def test_aws_quota_token_arithmetic(ops: list[tuple[str, Any]], capacity: int) -> None:
    quota = AwsRetryQuota(capacity=capacity)
    costs = {"transient": 5, "throttle": 5, "timeout": 10}
    for op, last in ops:
        before = quota.available
        kind: RetryKind = last or "transient"
        if op == "retry":
            allowed = quota.try_retry(0.0, kind)
            assert allowed == (costs[kind] <= before)
            assert quota.available == (before - costs[kind] if allowed else before)
        elif op == "success":
            quota.on_success(0.0, last)
            assert quota.available == min(capacity, before + (1 if last is None else costs[last]))
        else:
            quota.on_failure(0.0, kind)
            assert quota.available == before
        assert 0 <= quota.available <= capacity


# --------------------------------------------------------------------------------------------
# gRPC retry throttling


def test_grpc_throttle_grfc_example() -> None:
    throttle = GrpcRetryThrottle(max_tokens=10, token_ratio=0.1)
    assert (throttle.tokens, throttle.threshold) == (10.0, 5.0)
    for expected in (9.0, 8.0, 7.0, 6.0):
        throttle.on_failure(0.0)
        assert throttle.tokens == expected
        assert throttle.can_retry(0.0)
    throttle.on_failure(0.0)
    assert throttle.tokens == 5.0
    assert not throttle.can_retry(0.0)  # 5 is not above 10 / 2
    assert not throttle.try_retry(0.0)
    with pytest.raises(RuntimeError, match="throttled"):
        throttle.on_retry(0.0)
    throttle.on_success(0.0)
    assert throttle.tokens == 5.1
    assert throttle.can_retry(0.0)


def test_grpc_throttle_token_precision_is_three_decimals() -> None:
    throttle = GrpcRetryThrottle(max_tokens=10, token_ratio=0.1)
    for _ in range(5):
        throttle.on_failure(0.0)
    for _ in range(10):
        throttle.on_success(0.0)
    assert throttle.tokens == 6.0  # floats would give 5.999999999999999
    tiny = GrpcRetryThrottle(max_tokens=1000, token_ratio=0.001)
    for _ in range(1000):
        tiny.on_failure(0.0)
    for _ in range(1000):
        tiny.on_success(0.0)
    assert tiny.tokens == 1.0


def test_grpc_throttle_clamps_to_zero_and_max() -> None:
    throttle = GrpcRetryThrottle(max_tokens=3, token_ratio=0.5)
    for _ in range(10):
        throttle.on_failure(0.0)
    assert throttle.tokens == 0.0
    for _ in range(100):
        throttle.on_success(0.0)
    assert throttle.tokens == 3.0


def test_grpc_throttle_follows_the_failure_ratio() -> None:
    """About 10% failures per success is the break-even for token_ratio 0.1."""
    below, above = GrpcRetryThrottle(10, 0.1), GrpcRetryThrottle(10, 0.1)
    for _ in range(200):
        below.on_failure(0.0)
        for _ in range(11):
            below.on_success(0.0)
        above.on_failure(0.0)
        for _ in range(5):
            above.on_success(0.0)
    assert below.tokens == 10.0 and below.can_retry(0.0)
    assert above.tokens == 0.5 and not above.can_retry(0.0)


@given(
    max_milli=st.integers(1, 2_000_000),
    ratio_milli=st.integers(1, 5_000),
    ops=st.lists(st.booleans(), max_size=400),
)
def test_grpc_throttle_token_arithmetic(max_milli: int, ratio_milli: int, ops: list[bool]) -> None:
    """Against exact rational arithmetic: tokens in [0, max], retries iff tokens > max / 2."""
    max_tokens, ratio = Fraction(max_milli, 1000), Fraction(ratio_milli, 1000)
    throttle = GrpcRetryThrottle(float(max_tokens), float(ratio))
    model = max_tokens
    for success in ops:
        if success:
            throttle.on_success(0.0)
            model = min(max_tokens, model + ratio)
        else:
            throttle.on_failure(0.0)
            model = max(Fraction(0), model - 1)
        assert throttle.tokens == float(model)
        assert 0 <= throttle.tokens <= throttle.max_tokens
        assert throttle.can_retry(0.0) == (model > max_tokens / 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_tokens": 0, "token_ratio": 0.1}, "max_tokens must be a finite number >= 0.001"),
        ({"max_tokens": 10, "token_ratio": 0.0004}, "token_ratio must be a finite number >= 0.001"),
        ({"max_tokens": math.inf, "token_ratio": 0.1}, "max_tokens"),
    ],
)
def test_grpc_throttle_validation(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GrpcRetryThrottle(**kwargs)


# --------------------------------------------------------------------------------------------
# Finagle budget through the interface


def test_finagle_budget_through_the_limiter_interface() -> None:
    budget = RetryBudget(percent_can_retry=0.5, min_retries_per_s=0.0)
    assert not budget.can_retry(0.0)
    with pytest.raises(RuntimeError, match="budget exhausted"):
        budget.on_retry(0.0)
    budget.on_request(0.0)
    budget.on_request(0.0)
    budget.on_failure(0.0, "timeout")
    assert budget.can_retry(0.0) and budget.balance(0.0) == 1.0
    budget.on_retry(0.0)
    assert budget.balance(0.0) == 0.0
    budget.on_success(0.0, "transient")
    assert not budget.try_retry(0.0)


@given(ops=st.lists(st.tuples(st.sampled_from(["request", "retry"]), st.floats(0.0, 0.99)), max_size=300))
def test_finagle_budget_never_negative_within_one_ttl(ops: list[tuple[str, float]]) -> None:
    """Within one ttl nothing expires, so only allowed withdrawals are made and the balance stays >= 0.
    (Across ttl boundaries a deposit can expire before the retry it paid for: negative, as in Finagle.)"""
    budget = RetryBudget(percent_can_retry=0.2, min_retries_per_s=0.1, ttl_s=10.0)
    for op, now in sorted(ops, key=lambda op: op[1]):
        if op == "request":
            budget.on_request(now)
        else:
            budget.try_retry(now)
        assert budget.balance(now) >= 0


def test_limiters_share_one_interface() -> None:
    names = [name for name in dir(RetryLimiter) if not name.startswith("_")]
    assert sorted(names) == ["can_retry", "on_failure", "on_request", "on_retry", "on_success", "try_retry"]
    for cls in (RetryBudget, AwsRetryQuota, GrpcRetryThrottle):
        for name in names:
            assert inspect.signature(getattr(cls, name)) == inspect.signature(getattr(RetryLimiter, name)), (cls, name)


# --------------------------------------------------------------------------------------------
# One call's loop


def test_retry_call_as_designed_schedule() -> None:
    call = RetryCall(RetryPolicy.fixed(1.0, 2.0, 4.0), 0.0)
    assert [call.on_failure(t) for t in (0.0, 1.0, 3.0)] == [1.0, 2.0, 4.0]
    assert call.attempts == 4
    assert call.on_failure(7.0) is None
    assert (call.stop, call.done) == ("attempts", True)
    with pytest.raises(RuntimeError, match="already ended"):
        call.on_failure(8.0)


def test_retry_call_charges_and_refunds_the_aws_quota() -> None:
    quota = AwsRetryQuota()
    call = RetryCall(RetryPolicy.aws_standard(), 0.0, rng=random.Random(1), limiter=quota)
    assert call.on_failure(1.0, kind="timeout") is not None
    assert call.on_failure(2.0, kind="transient") is not None
    assert quota.available == 485
    call.on_success(3.0)
    assert quota.available == 490  # the last retry's cost
    first_try = RetryCall(RetryPolicy.aws_standard(), 4.0, rng=random.Random(1), limiter=quota)
    first_try.on_success(4.5)
    assert quota.available == 491


def test_retry_call_does_not_pay_for_a_retry_the_policy_refused() -> None:
    quota = AwsRetryQuota()
    call = RetryCall(RetryPolicy(max_elapsed_s=5.0), 100.0, limiter=quota)
    assert call.on_failure(101.0) == 1.0
    assert call.on_failure(102.0) == 2.0
    assert call.on_failure(103.0) is None  # 4 s more would end at 107 > 105
    assert (call.stop, quota.available) == ("deadline", 490)


def test_retry_call_budget_refusal() -> None:
    quota = AwsRetryQuota(capacity=7)
    call = RetryCall(RetryPolicy(), 0.0, limiter=quota)
    assert call.on_failure(0.0) == 1.0
    assert call.on_failure(1.0) is None
    assert (call.stop, call.attempts, quota.available) == ("budget", 2, 2)


def test_retry_call_counts_grpc_failures_as_the_grfc_says() -> None:
    throttle = GrpcRetryThrottle(10, 0.1)
    policy = RetryPolicy(max_attempts=5, base_s=0.1, cap_s=1.0, jitter="full")
    rng = np.random.default_rng(0)
    call = RetryCall(policy, 0.0, rng=rng, limiter=throttle)
    for _ in range(4):
        assert call.on_failure(0.0) is not None  # 9, 8, 7, 6 tokens
    assert call.on_failure(0.0) is None  # the last failure counts too: 5
    assert (call.stop, throttle.tokens) == ("attempts", 5.0)
    refused = RetryCall(policy, 1.0, rng=rng, limiter=throttle)
    assert refused.on_failure(1.0) is None  # 4 tokens, not above 5
    assert (refused.stop, throttle.tokens) == ("budget", 4.0)
    fatal = RetryCall(policy, 2.0, rng=rng, limiter=throttle)
    assert fatal.on_failure(2.0, retryable=False) is None  # INVALID_ARGUMENT does not count
    assert (fatal.stop, throttle.tokens) == ("not_retryable", 4.0)
    pushback = RetryCall(policy, 3.0, rng=rng, limiter=throttle)
    assert pushback.on_failure(3.0, retryable=False, retry_after_s=-1.0) is None  # "don't retry" counts
    assert throttle.tokens == 3.0
    ok = RetryCall(policy, 4.0, rng=rng, limiter=throttle)
    ok.on_success(4.0)
    assert throttle.tokens == 3.1


def test_retry_call_decorrelated_chain_and_retry_after() -> None:
    policy = RetryPolicy(max_attempts=None, base_s=1.0, cap_s=100.0, jitter="decorrelated")
    rng, twin = np.random.default_rng(2), np.random.default_rng(2)
    call = RetryCall(policy, 0.0, rng=rng, limiter=RetryBudget())
    first = call.on_failure(0.0, retry_after_s=30.0)
    assert first == max(float(twin.uniform(1.0, 3.0)), 30.0) == 30.0
    second = call.on_failure(30.0)  # decorrelated from what was waited: uniform(1, 90)
    assert second == min(100.0, float(twin.uniform(1.0, 90.0)))


# --------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_elapsed_s": -1.0}, "max_elapsed_s must be None or a finite number >= 0"),
        ({"max_elapsed_s": math.inf}, "max_elapsed_s must be None or a finite number >= 0"),
        ({"retry_after_cap_s": math.nan}, "retry_after_cap_s must be None or a finite number >= 0"),
        ({"retry_after_over_cap": "ignore"}, "retry_after_over_cap must be one of"),
        ({"max_attempts": True}, "max_attempts must be an integer >= 1"),
    ],
)
def test_policy_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: p.next_delay(0), "attempt counts from 1"),
        (lambda p: p.next_delay(1, now=math.nan), "now must be a finite time"),
        (lambda p: p.next_delay(1, now=math.inf), "now must be a finite time"),
        (lambda p: p.next_delay(1, started_at=-math.inf), "started_at must be a finite time"),
        (lambda p: p.next_delay(1, retry_after_s="5"), "retry_after_s must be a number"),
        (lambda p: p.delay(1, None, -1.0), "previous_s must be a finite delay"),
    ],
)
def test_next_delay_rejects_bad_arguments(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(RetryPolicy(jitter="decorrelated"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"capacity": -1}, "capacity must be an integer >= 0"),
        ({"retry_cost": 2.5}, "retry_cost must be an integer >= 0"),
    ],
)
def test_aws_quota_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AwsRetryQuota(**kwargs)


def test_unknown_kind_is_rejected() -> None:
    for limiter in (RetryBudget(), AwsRetryQuota(), GrpcRetryThrottle(10, 0.1)):
        with pytest.raises(ValueError, match="kind must be one of"):
            limiter.try_retry(0.0, "slow")  # type: ignore[arg-type]
