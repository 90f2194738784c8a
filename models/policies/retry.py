"""Retries: when to try again (backoff, jitter, deadline, Retry-After), and how many retries a client may afford.

Why both halves: a retry schedule alone turns a brief outage into a load multiplier. The
review's analytics engine retries database queries 3 times (1 s, 2 s, 4 s); when the database
is slow, every query becomes four, and the extra load keeps it slow (a metastable failure).
Jitter spreads retries out so that clients do not retry in lockstep, and a retry *limiter*
caps retries at a fraction of real traffic, so retries cannot multiply load when everything
fails.

* :class:`RetryPolicy` decides whether a failed attempt is retried and after how long: an
  explicit schedule, or capped exponential backoff with the jitter variants of the AWS
  Architecture Blog article "Exponential Backoff And Jitter" (``research/semantics.md``
  section 2.1); a maximum number of attempts; a deadline measured from the first attempt; and
  a server's ``Retry-After`` (section 3.4). Which outcomes are retryable is the caller's call.
* Three retry limiters behind one small interface, :class:`RetryLimiter`:

  - :class:`RetryBudget`: Finagle's / Linkerd's retry budget (section 2.4).
  - :class:`AwsRetryQuota`: the AWS SDKs' standard-mode retry quota (section 2.2).
  - :class:`GrpcRetryThrottle`: gRPC retry throttling, gRFC A6 (section 2.3).

* :class:`RetryCall` runs the decision loop of one call: it counts attempts, remembers when
  the first one started and the previous delay, and calls the limiter in the right order.

Everything is pure: time is the caller's ``now`` (seconds, any origin; section 10: unlike
tenacity, which reads ``time.monotonic`` itself, nothing here reads a clock), and randomness
comes from the caller's :class:`numpy.random.Generator` or :class:`random.Random` (anything
with ``uniform(low, high)``). Nothing is thread-safe: a real service shares a limiter
between threads behind a lock, as botocore does.

A caller's loop, without :class:`RetryCall`::

    started = now()
    limiter.on_request(started)
    attempt, previous = 1, None
    while True:
        outcome = call()
        if outcome.ok:
            limiter.on_success(now(), last_retry=kind_of_last_retry)   # None if never retried
            return outcome
        if outcome.retryable:
            limiter.on_failure(now(), outcome.kind)
        delay = policy.next_delay(attempt, now=now(), started_at=started, retryable=outcome.retryable,
                                  retry_after_s=outcome.retry_after, previous_delay_s=previous, rng=rng)
        if delay is None or not limiter.try_retry(now(), outcome.kind):
            return outcome
        sleep(delay)
        attempt, previous = attempt + 1, delay
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal, Protocol, get_args

from ._validation import is_count, is_finite, is_real
from .circuit_breaker import _RollingCounts

__all__ = [
    "AwsRetryQuota",
    "GrpcRetryThrottle",
    "Jitter",
    "RandomSource",
    "RetryAfterOverCap",
    "RetryBudget",
    "RetryCall",
    "RetryKind",
    "RetryLimiter",
    "RetryPolicy",
    "RetryStop",
]

Jitter = Literal["none", "full", "equal", "decorrelated"]
"""How a backoff delay is randomised (Brooker, "Exponential Backoff And Jitter", 2015).

With ``c(n) = min(cap_s, base_s * multiplier**(n-1))`` the ceiling of retry ``n`` (``n = 1``
for the first retry, so the exponent is 0 there, as in gRPC A6 and the AWS SDKs):

* ``"none"``: ``c(n)``.
* ``"full"``: ``uniform(0, c(n))``. Least total work in the AWS article.
* ``"equal"``: ``c(n)/2 + uniform(0, c(n)/2)``. Never shorter than half the ceiling.
* ``"decorrelated"``: ``min(cap_s, uniform(base_s, 3 * previous))``, with ``previous`` the
  delay waited before the previous retry (``base_s`` before the first). Ignores ``multiplier``
  and the retry number.

Brooker's simulator counts its ``attempt`` from 1 at the first retry and uses ``2**attempt``,
so its first ceiling is ``2 * base``; with ``multiplier=2`` that is this policy with
``base_s = 2 * base`` for ``"none"``, ``"full"`` and ``"equal"``. ``"decorrelated"`` is his
formula unchanged.
"""

RetryKind = Literal["transient", "timeout", "throttle"]
"""What kind of failure a retry answers; it sets the price of the retry in :class:`AwsRetryQuota`.

``"timeout"``: the attempt timed out (botocore's ``ConnectTimeoutError``/``ReadTimeoutError``).
``"throttle"``: the server throttled it (429, ``ThrottlingException``, ``SlowDown``, ...).
``"transient"``: any other retryable failure (5xx, connection reset, ...).
"""

RetryAfterOverCap = Literal["give_up", "clamp"]
"""What :class:`RetryPolicy` does with a ``Retry-After`` above ``retry_after_cap_s``.

``"give_up"``: do not retry (retrying earlier would ignore the server; waiting longer is more
than the caller accepts). ``"clamp"``: wait ``max(backoff, retry_after_cap_s)``, i.e. retry
*before* the server asked, as AWS SDK standard mode 2.1 does with ``x-amz-retry-after``
(clamped to ``[t_i, t_i + 5 s]``).
"""

RetryStop = Literal["not_retryable", "attempts", "server", "retry_after_cap", "deadline", "budget"]
"""Why a call is not retried.

``"not_retryable"``: the caller classified the outcome as not retryable. ``"attempts"``:
``max_attempts`` reached. ``"server"``: the server asked not to retry (a negative or infinite
``retry_after_s``, gRPC's "don't retry" pushback). ``"retry_after_cap"``: ``Retry-After``
above ``retry_after_cap_s`` with ``"give_up"``. ``"deadline"``: the retry would start after
the deadline. ``"budget"``: the :class:`RetryLimiter` refused.
"""

_JITTERS: tuple[str, ...] = get_args(Jitter)
_OVER_CAP: tuple[str, ...] = get_args(RetryAfterOverCap)
_KINDS: tuple[str, ...] = get_args(RetryKind)

_DEADLINE_ULPS: Final = 4.0
"""Rounding forgiven at the deadline, in units in the last place of the largest clock value.

A caller derives ``now``, the deadline and ``Retry-After`` with its own float arithmetic; at
clock values of 1e7 s one ulp is 1.9e-9 s (at Unix-epoch seconds, 2.4e-7 s), so a retry that
ends exactly on the deadline by the caller's arithmetic can compute as ending a few ulps
past it. Four ulps of the clock are below its resolution and absorb that."""


class RandomSource(Protocol):
    """Where jitter comes from: :class:`numpy.random.Generator` and :class:`random.Random` both fit.

    ``uniform(low, high)`` returns a float in ``[low, high]`` (either end may be excluded).
    """

    def uniform(self, low: float, high: float, /) -> float:
        """A uniformly distributed float between ``low`` and ``high``."""
        ...


def _draw(rng: RandomSource | None, low: float, high: float) -> float:
    """``uniform(low, high)`` from ``rng``, clamped into ``[low, high]`` against a sloppy source."""
    if rng is None:
        raise ValueError("this policy's jitter draws random numbers: pass rng (a numpy Generator or random.Random)")
    value = float(rng.uniform(low, high))
    return min(high, max(low, value))


def _check_now(name: str, value: float) -> None:
    if not is_finite(value):
        raise ValueError(f"{name} must be a finite time in seconds (got {value!r})")


def _check_kind(kind: str) -> None:
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS} (got {kind!r})")


# --------------------------------------------------------------------------------------------
# The schedule


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Whether a failed attempt is retried, and how long to wait first.

    Attributes:
        max_attempts: Attempts including the first, as in tenacity's ``stop_after_attempt``,
            gRPC's ``maxAttempts`` and the AWS SDKs; so ``4`` allows 3 retries. ``None``: no
            limit (stop on the deadline, the server or the limiter only).
        delays_s: An explicit schedule: retry ``n`` waits ``delays_s[n-1]``, exactly. When
            non-empty it overrides ``base_s``, ``multiplier`` and ``cap_s``; it must then hold
            exactly ``max_attempts - 1`` delays, and ``jitter`` must be ``"none"``. See
            :meth:`fixed`.
        base_s: The first retry's backoff ceiling (gRPC's ``initialBackoff``), in seconds;
            the lower bound of ``"decorrelated"`` jitter.
        multiplier: Growth of the ceiling per retry (``>= 1``; gRPC's ``backoffMultiplier``).
        cap_s: Upper bound of any backoff (``>= base_s``; gRPC's ``maxBackoff``); 20 s as in
            the AWS SDKs. It does not bound a server's ``Retry-After``: see below.
        jitter: See :data:`Jitter`.
        max_elapsed_s: A deadline ``started_at + max_elapsed_s`` over all attempts, measured
            from the start of the first (as gRPC's call deadline). A retry whose delay would
            end after it is not made; one that ends exactly on it is (unlike tenacity's
            ``stop_before_delay``, which stops at equality). ``None``: no deadline.
        retry_after_cap_s: The longest ``Retry-After`` honoured; ``None``: any.
        retry_after_over_cap: What to do with a longer one; see :data:`RetryAfterOverCap`.

    The delay before a retry is ``max(backoff, retry_after)``: the server's ``Retry-After``
    (RFC 9110 section 10.2.3, or gRPC's ``grpc-retry-pushback-ms`` converted to seconds) is a
    floor, never shortened by ``cap_s`` or the jitter (only by ``retry_after_cap_s`` under
    ``"clamp"``), and the backoff still applies when it is longer. This differs from gRPC A6,
    which waits the pushback exactly and resets the backoff. A negative ``Retry-After`` means
    "do not retry" (A6's negative pushback), as does an infinite one.

    The backoff of retry ``n`` costs O(1) whatever ``n`` (10**9, 10**100): the exponent is
    compared with ``log(cap_s/base_s) / log(multiplier)`` before anything is raised to it.
    """

    max_attempts: int | None = 4
    delays_s: tuple[float, ...] = ()
    base_s: float = 1.0
    multiplier: float = 2.0
    cap_s: float = 20.0
    jitter: Jitter = "none"
    max_elapsed_s: float | None = None
    retry_after_cap_s: float | None = None
    retry_after_over_cap: RetryAfterOverCap = "give_up"

    def __post_init__(self) -> None:
        max_attempts = self.max_attempts
        if max_attempts is not None and (not is_count(max_attempts) or max_attempts < 1):
            raise ValueError(f"max_attempts must be an integer >= 1 (got {max_attempts!r}); None means no limit")
        if max_attempts is not None:
            object.__setattr__(self, "max_attempts", int(max_attempts))
        delays = tuple(self.delays_s)
        for delay in delays:
            if not is_finite(delay) or delay < 0:
                raise ValueError(f"delays_s must hold finite delays >= 0 (got {delay!r})")
        object.__setattr__(self, "delays_s", tuple(float(delay) for delay in delays))
        if not is_finite(self.base_s) or self.base_s <= 0:
            raise ValueError(f"base_s must be a finite number > 0 (got {self.base_s!r})")
        if not is_finite(self.multiplier) or self.multiplier < 1:
            raise ValueError(f"multiplier must be a finite number >= 1 (got {self.multiplier!r})")
        if not is_finite(self.cap_s) or self.cap_s < self.base_s:
            raise ValueError(f"cap_s must be a finite number >= base_s (got {self.cap_s!r})")
        if self.jitter not in _JITTERS:
            raise ValueError(f"jitter must be one of {_JITTERS} (got {self.jitter!r})")
        if delays and max_attempts is None:
            raise ValueError("delays_s is an exact schedule and needs max_attempts = len(delays_s) + 1 (got None)")
        if delays and max_attempts is not None and len(delays) != max_attempts - 1:
            raise ValueError(
                f"delays_s holds {len(delays)} delays but max_attempts={max_attempts} "
                f"allows {max_attempts - 1} retries (max_attempts counts the first attempt); "
                "use RetryPolicy.fixed(*delays)"
            )
        if delays and self.jitter != "none":
            raise ValueError(f"delays_s is an exact schedule; jitter must be 'none' (got {self.jitter!r})")
        for name in ("max_elapsed_s", "retry_after_cap_s"):
            value = getattr(self, name)
            if value is not None and (not is_finite(value) or value < 0):
                raise ValueError(f"{name} must be None or a finite number >= 0 (got {value!r})")
        if self.retry_after_over_cap not in _OVER_CAP:
            raise ValueError(f"retry_after_over_cap must be one of {_OVER_CAP} (got {self.retry_after_over_cap!r})")

    @classmethod
    def fixed(cls, *delays: float) -> RetryPolicy:
        """A policy that retries once per given delay, e.g. ``fixed(1.0, 2.0, 4.0)``.

        ``fixed()`` with no delay never retries. A linear backoff ``k * step`` for ``r``
        retries is ``fixed(*(k * step for k in range(1, r + 1)))``.
        """
        return cls(max_attempts=len(delays) + 1, delays_s=delays)

    @classmethod
    def aws_standard(cls, max_attempts: int = 3) -> RetryPolicy:
        """The AWS SDKs' standard retry mode, classic ("2.0") behaviour (semantics.md 2.2).

        ``t_i = rand(0, 1) * min(2**(i-1), 20)`` seconds for retry ``i``: full jitter, base 1 s,
        cap 20 s, 3 attempts. Pair it with :class:`AwsRetryQuota`.
        """
        return cls(max_attempts=max_attempts, base_s=1.0, multiplier=2.0, cap_s=20.0, jitter="full")

    def delay(
        self,
        retry_number: int,
        rng: RandomSource | None = None,
        previous_s: float | None = None,
    ) -> float | None:
        """The backoff before retry ``retry_number``, or ``None`` past ``max_attempts``.

        Only the schedule: no deadline, no ``Retry-After`` (see :meth:`next_delay`).

        Args:
            retry_number: 1 for the first retry (the second attempt), 2 for the next, ...
                Any size: the cost does not grow with it.
            rng: Source of the jitter; not drawn from when the result is deterministic
                (explicit schedule, ``"none"``), so adding a policy without jitter does not
                shift anybody's random stream. Required otherwise.
            previous_s: The delay waited before the previous retry; only ``"decorrelated"``
                uses it. ``None`` means ``base_s``, which is right for the first retry.

        Raises:
            ValueError: ``retry_number < 1``, ``previous_s`` negative or not finite, or a
                jittered policy without ``rng``.
        """
        if not is_count(retry_number) or retry_number < 1:
            raise ValueError(f"retry_number counts from 1 (got {retry_number!r})")
        retry_number = int(retry_number)
        if self.max_attempts is not None and retry_number >= self.max_attempts:
            return None
        return self._backoff(retry_number, rng, previous_s)

    def next_delay(
        self,
        attempt: int,
        *,
        now: float = 0.0,
        started_at: float = 0.0,
        retry_after_s: float | None = None,
        previous_delay_s: float | None = None,
        rng: RandomSource | None = None,
        retryable: bool = True,
    ) -> float | None:
        """How long to wait before retrying attempt ``attempt``, which just failed; ``None``: give up.

        ``None`` when the outcome is not ``retryable``, ``attempt >= max_attempts``, the server
        said not to retry, its ``Retry-After`` is over ``retry_after_cap_s`` (``"give_up"``), or
        the retry would start after ``started_at + max_elapsed_s``. Otherwise
        ``max(backoff, retry_after_s)``. :meth:`stop_reason` says which.

        Args:
            attempt: The attempt that just failed: 1 for the first. The retry would be
                attempt ``attempt + 1``, i.e. retry number ``attempt`` of :meth:`delay`.
            now: The clock when it failed. ``started_at``: when the first attempt started.
                Both are only used for ``max_elapsed_s``; pass the clock's own readings (to
                pass an elapsed time instead, give it as ``now`` and leave ``started_at`` 0).
                The comparison forgives the clock's rounding (:data:`_DEADLINE_ULPS`), so a
                retry that ends exactly on the deadline is made at 1e7 s or 1.7e9 s too.
            retry_after_s: The server's ``Retry-After`` in seconds, if it sent one.
            previous_delay_s: The delay waited before the previous retry (what this method
                returned then); for ``"decorrelated"`` jitter.
            rng: Source of the jitter, as for :meth:`delay`.
            retryable: The caller's classification of the outcome.

        Raises:
            ValueError: a bad argument (``attempt < 1``, ``now`` before ``started_at``, a
                ``NaN`` ``retry_after_s``, ...), or a jittered policy without ``rng``.
        """
        decision = self._decide(attempt, now, started_at, retry_after_s, previous_delay_s, rng, retryable)
        return decision if isinstance(decision, float) else None

    def stop_reason(
        self,
        attempt: int,
        *,
        now: float = 0.0,
        started_at: float = 0.0,
        retry_after_s: float | None = None,
        previous_delay_s: float | None = None,
        rng: RandomSource | None = None,
        retryable: bool = True,
    ) -> RetryStop | None:
        """Why :meth:`next_delay` would give up with these arguments, or ``None`` if it would retry.

        It draws from ``rng`` exactly as :meth:`next_delay` would.
        """
        decision = self._decide(attempt, now, started_at, retry_after_s, previous_delay_s, rng, retryable)
        return None if isinstance(decision, float) else decision

    def _decide(
        self,
        attempt: int,
        now: float,
        started_at: float,
        retry_after_s: float | None,
        previous_delay_s: float | None,
        rng: RandomSource | None,
        retryable: bool,
    ) -> float | RetryStop:
        if not is_count(attempt) or attempt < 1:
            raise ValueError(f"attempt counts from 1 (got {attempt!r})")
        attempt = int(attempt)
        _check_now("now", now)
        _check_now("started_at", started_at)
        if now < started_at:
            raise ValueError(f"now ({now!r}) is before started_at ({started_at!r})")
        if retry_after_s is not None and (not is_real(retry_after_s) or math.isnan(retry_after_s)):
            raise ValueError(f"retry_after_s must be a number of seconds or None (got {retry_after_s!r})")
        if not retryable:
            return "not_retryable"
        if self.max_attempts is not None and attempt >= self.max_attempts:
            return "attempts"
        floor = 0.0
        if retry_after_s is not None:
            if retry_after_s < 0 or math.isinf(retry_after_s):
                return "server"
            floor = float(retry_after_s)
            cap = self.retry_after_cap_s
            if cap is not None and floor > cap:
                if self.retry_after_over_cap == "give_up":
                    return "retry_after_cap"
                floor = cap
        delay = max(self._backoff(attempt, rng, previous_delay_s), floor)
        limit = self.max_elapsed_s
        if limit is not None:
            slack = _DEADLINE_ULPS * math.ulp(max(abs(float(now)), abs(float(started_at)), limit))
            if (now - started_at) + delay > limit + slack:
                return "deadline"
        return delay

    def _backoff(self, retry_number: int, rng: RandomSource | None, previous_s: float | None) -> float:
        if self.delays_s:
            return self.delays_s[retry_number - 1]
        jitter = self.jitter
        if jitter == "decorrelated":
            previous = self.base_s if previous_s is None else previous_s
            if not is_finite(previous) or previous < 0:
                raise ValueError(f"previous_s must be a finite delay >= 0 (got {previous_s!r})")
            high = 3.0 * float(previous)
            if math.isinf(high):
                high = math.nextafter(math.inf, 0.0)
            return min(self.cap_s, _draw(rng, self.base_s, max(self.base_s, high)))
        ceiling = self._ceiling(retry_number)
        if jitter == "none":
            return ceiling
        if jitter == "full":
            return _draw(rng, 0.0, ceiling)
        half = ceiling / 2.0
        return half + _draw(rng, 0.0, half)

    def _ceiling(self, retry_number: int) -> float:
        """``min(cap_s, base_s * multiplier**(retry_number-1))`` in O(1), without overflow."""
        exponent = retry_number - 1
        if exponent == 0 or self.multiplier == 1.0:
            return min(self.cap_s, self.base_s)
        # The exponent from which the ceiling is cap_s. Python compares an int of any size
        # with a float exactly, so a huge exponent is never converted to a float.
        saturation = (math.log(self.cap_s) - math.log(self.base_s)) / math.log(self.multiplier)
        if exponent >= saturation:
            return self.cap_s
        try:
            raw = self.base_s * self.multiplier**exponent
        except OverflowError:  # multiplier**exponent alone overflows when base_s is tiny
            raw = math.exp(math.log(self.base_s) + exponent * math.log(self.multiplier))
        return min(self.cap_s, raw)


# --------------------------------------------------------------------------------------------
# Limiters


class RetryLimiter(Protocol):
    """How many retries a client may afford, whatever the model. Calls, in order, per call:

    * :meth:`on_request` once, when the call's first attempt starts;
    * :meth:`on_failure` after each failed attempt whose failure is retryable (or a server's
      "do not retry"); not after failures that retrying cannot fix (a 400);
    * :meth:`try_retry` (or :meth:`can_retry` then :meth:`on_retry`) before each retry; the
      retry is made only if it says ``True``;
    * :meth:`on_success` when an attempt succeeds, with the kind of the call's last retry.

    ``now`` is the caller's clock; limiters without a time window ignore it.
    """

    def on_request(self, now: float) -> None:
        """A call's first attempt starts."""
        ...

    def on_failure(self, now: float, kind: RetryKind = "transient") -> None:
        """An attempt failed with a retryable failure (whether or not it will be retried)."""
        ...

    def can_retry(self, now: float, kind: RetryKind = "transient") -> bool:
        """Whether a retry for a ``kind`` failure is affordable now; changes nothing."""
        ...

    def on_retry(self, now: float, kind: RetryKind = "transient") -> None:
        """Pay for a retry that :meth:`can_retry` allowed. Raises ``RuntimeError`` if unaffordable."""
        ...

    def try_retry(self, now: float, kind: RetryKind = "transient") -> bool:
        """:meth:`can_retry`, and :meth:`on_retry` if it allowed the retry."""
        ...

    def on_success(self, now: float, last_retry: RetryKind | None = None) -> None:
        """An attempt succeeded; ``last_retry`` is the kind of the call's last retry, ``None`` if none."""
        ...


_SCALE = 1000
"""Budget units per retry. Integer units keep the balance exact (Finagle's ScaleFactor)."""


class RetryBudget:
    """Finagle's retry budget: retries may add at most a fixed share of real traffic.

    Follows ``twitter/finagle`` ``RetryBudget.scala`` / ``TokenBucket.newLeakyBucket``
    (semantics.md 2.4; Linkerd's ``retryBudget`` and tower's ``Budget`` are the same model).
    Each original request deposits (:meth:`deposit`, :meth:`on_request`); each retry withdraws
    (:meth:`try_withdraw`, :meth:`try_retry`). The balance is::

        reserve + percent_can_retry * deposits - withdrawals

    over the last ``ttl_s`` seconds, where ``reserve = min_retries_per_s * ttl_s``. A
    withdrawal needs a balance of at least one retry. Because withdrawals also expire after
    ``ttl_s``, the reserve allows about ``min_retries_per_s`` retries per second on average
    (in bursts of up to ``reserve``), and deposits allow ``percent_can_retry`` retries per
    request on top. Failures, successes and the kind of a retry do not matter.

    Deposits and withdrawals are kept in one-second buckets (memory ``ceil(ttl_s)`` buckets);
    an entry counts for between ``ceil(ttl_s) - 1`` and ``ceil(ttl_s)`` seconds. A deposit may
    expire before a retry it paid for, so the balance can be negative for a while, as in
    Finagle (its leaky bucket's ``count`` can be). Amounts are kept in integer thousandths of
    a retry, so ``percent_can_retry`` is effective to three decimals.

    Args:
        percent_can_retry: Retries earned per original request (0.2 = 20% extra load).
        min_retries_per_s: Reserve rate, so that a client with little traffic can still retry.
        ttl_s: How long deposits and withdrawals count.
    """

    __slots__ = ("_deposit_units", "_reserve_units", "_window")

    def __init__(
        self,
        percent_can_retry: float = 0.2,
        min_retries_per_s: float = 10.0,
        ttl_s: float = 10.0,
    ) -> None:
        for name, value in (
            ("percent_can_retry", percent_can_retry),
            ("min_retries_per_s", min_retries_per_s),
        ):
            if not is_finite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0 (got {value!r})")
        if not is_finite(ttl_s) or ttl_s <= 0:
            raise ValueError(f"ttl_s must be a finite number > 0 (got {ttl_s!r})")
        self._deposit_units = round(percent_can_retry * _SCALE)
        self._reserve_units = round(min_retries_per_s * ttl_s * _SCALE)
        self._window = _RollingCounts(ttl_s)

    def deposit(self, now: float) -> None:
        """Record one original request (not a retry) at ``now``."""
        self._window.add(now, 1, 0)

    def try_withdraw(self, now: float) -> bool:
        """Ask to make one retry at ``now``; ``True`` means it is allowed and has been paid for."""
        if self._balance_units(now) < _SCALE:
            return False
        self._window.add(now, 0, 1)
        return True

    def balance(self, now: float) -> float:
        """Retries currently affordable (fractional; negative while in debt)."""
        return self._balance_units(now) / _SCALE

    # The RetryLimiter interface.

    def on_request(self, now: float) -> None:
        """:meth:`deposit`."""
        self.deposit(now)

    def on_failure(self, now: float, kind: RetryKind = "transient") -> None:
        """Nothing: a Finagle budget counts requests and retries, not failures."""
        _check_kind(kind)

    def can_retry(self, now: float, kind: RetryKind = "transient") -> bool:
        """Whether the balance holds at least one retry."""
        _check_kind(kind)
        return self._balance_units(now) >= _SCALE

    def on_retry(self, now: float, kind: RetryKind = "transient") -> None:
        """Withdraw one retry; ``RuntimeError`` if the balance does not hold one."""
        if not self.try_retry(now, kind):
            raise RuntimeError("retry budget exhausted: ask can_retry first, or use try_retry")

    def try_retry(self, now: float, kind: RetryKind = "transient") -> bool:
        """:meth:`try_withdraw`."""
        _check_kind(kind)
        return self.try_withdraw(now)

    def on_success(self, now: float, last_retry: RetryKind | None = None) -> None:
        """Nothing: the request's deposit was made by :meth:`on_request`."""
        if last_retry is not None:
            _check_kind(last_retry)

    def _balance_units(self, now: float) -> int:
        deposits, withdrawals = self._window.totals(now)
        return self._reserve_units + deposits * self._deposit_units - withdrawals * _SCALE


class AwsRetryQuota:
    """The AWS SDKs' standard-mode retry quota: a token bucket refilled by successes, not by time.

    Follows botocore's ``RetryQuota`` and ``RetryQuotaChecker`` in the classic standard mode,
    ``STANDARD_RETRY_MODE_VERSION == "2.0"`` (what current SDKs ship by default; constants as in
    aws-sdk-js-v3 ``INITIAL_RETRY_TOKENS=500, RETRY_COST=5, TIMEOUT_RETRY_COST=10,
    NO_RETRY_INCREMENT=1``; semantics.md 2.2):

    * the quota starts full, at ``capacity`` (500) tokens, per client;
    * a retry costs ``retry_cost`` (5), ``timeout_retry_cost`` (10) if the failure was a
      timeout, ``throttle_retry_cost`` (5 in 2.0: a throttle is not a timeout);
    * a retry whose cost exceeds the tokens left is not made (``RetryQuotaReached``); a cost
      equal to what is left is affordable and leaves 0;
    * a success refunds ``no_retry_increment`` (1) if the request was never retried, else the
      cost of its *last* retry (not the sum of its retries); a failed response refunds
      nothing; the quota never exceeds ``capacity``.

    :meth:`standard_2_1` gives the opt-in 2026 costs instead (transient and timeout 14,
    throttle 5; ``AWS_NEW_RETRIES_2026=true``). Tokens are integers; they never go below 0.
    """

    __slots__ = ("_available", "_capacity", "_costs", "_no_retry_increment")

    def __init__(
        self,
        capacity: int = 500,
        retry_cost: int = 5,
        timeout_retry_cost: int = 10,
        throttle_retry_cost: int = 5,
        no_retry_increment: int = 1,
    ) -> None:
        for name, value in (
            ("capacity", capacity),
            ("retry_cost", retry_cost),
            ("timeout_retry_cost", timeout_retry_cost),
            ("throttle_retry_cost", throttle_retry_cost),
            ("no_retry_increment", no_retry_increment),
        ):
            if not is_count(value) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0 (got {value!r})")
        self._capacity = int(capacity)
        self._available = self._capacity
        self._costs: dict[str, int] = {
            "transient": int(retry_cost),
            "timeout": int(timeout_retry_cost),
            "throttle": int(throttle_retry_cost),
        }
        self._no_retry_increment = int(no_retry_increment)

    @classmethod
    def standard_2_1(cls, capacity: int = 500) -> AwsRetryQuota:
        """Standard mode "2.1" (the 2026 retry changes): retries cost 14, throttling retries 5."""
        return cls(capacity=capacity, retry_cost=14, timeout_retry_cost=14, throttle_retry_cost=5)

    @property
    def capacity(self) -> int:
        """The most tokens the quota holds (and starts with)."""
        return self._capacity

    @property
    def available(self) -> int:
        """Tokens left."""
        return self._available

    def cost(self, kind: RetryKind = "transient") -> int:
        """What a retry for a ``kind`` failure costs."""
        _check_kind(kind)
        return self._costs[kind]

    def on_request(self, now: float) -> None:
        """Nothing: the quota is not charged for first attempts."""

    def on_failure(self, now: float, kind: RetryKind = "transient") -> None:
        """Nothing: a failure costs only if it is retried, and refunds nothing."""
        _check_kind(kind)

    def can_retry(self, now: float, kind: RetryKind = "transient") -> bool:
        """Whether the tokens left cover the retry's cost."""
        return self.cost(kind) <= self._available

    def on_retry(self, now: float, kind: RetryKind = "transient") -> None:
        """Take the retry's cost; ``RuntimeError`` if it is not covered."""
        if not self.try_retry(now, kind):
            raise RuntimeError("retry quota reached: ask can_retry first, or use try_retry")

    def try_retry(self, now: float, kind: RetryKind = "transient") -> bool:
        """Take the retry's cost if it is covered (botocore's ``acquire``)."""
        cost = self.cost(kind)
        if cost > self._available:
            return False
        self._available -= cost
        return True

    def on_success(self, now: float, last_retry: RetryKind | None = None) -> None:
        """Refund ``no_retry_increment``, or the cost of the request's last retry, up to ``capacity``."""
        refund = self._no_retry_increment if last_retry is None else self.cost(last_retry)
        self._available = min(self._capacity, self._available + refund)


_MILLI = 1000
"""gRPC throttling tokens are kept in integer thousandths (grpc-java's THREE_DECIMAL_PLACES_SCALE_UP)."""


class GrpcRetryThrottle:
    """gRPC retry throttling (gRFC A6 ``retryThrottling``), one per server name.

    Follows ``grpc/proposal`` ``A6-client-retries.md`` (semantics.md 2.3) and grpc-java's
    ``RetriableStream.Throttle`` for the arithmetic:

    * ``tokens`` starts at ``max_tokens`` and stays within ``[0, max_tokens]``;
    * every failed attempt that counts (:meth:`on_failure`: a retryable status, or a pushback
      saying not to retry) subtracts 1; every successful attempt adds ``token_ratio``;
    * a retry is allowed only while ``tokens > max_tokens / 2``, checked *after* the failure
      that prompts it has been subtracted. Nothing blocks: a refused retry returns the failure.
      A retry costs nothing of its own (:meth:`on_retry` is a no-op); it costs 1 if it fails.

    With the gRFC's example ``max_tokens=10, token_ratio=0.1``, four consecutive failures leave
    6 tokens and the fourth is retried; the fifth leaves 5, which is not above 5, so it is not;
    one success then makes 5.1 and retries resume. Retries are throttled once failures exceed
    about ``token_ratio`` (10%) of successes.

    Precision: the gRFC allows up to three decimal places in ``token_ratio``. Tokens are kept as
    integer thousandths, as grpc-java does, so a thousand successes at 0.001 add exactly 1 and
    :attr:`tokens` is exact to three decimals (``max_tokens`` and ``token_ratio`` are rounded to
    the nearest thousandth; grpc-go keeps float64 and would drift). The gRFC sets no upper bound
    on ``max_tokens`` (grpc-go rejects more than 1000); none is enforced here.
    """

    __slots__ = ("_max", "_ratio", "_tokens")

    def __init__(self, max_tokens: float, token_ratio: float) -> None:
        for name, value in (("max_tokens", max_tokens), ("token_ratio", token_ratio)):
            if not is_finite(value) or round(value * _MILLI) <= 0:
                raise ValueError(f"{name} must be a finite number >= 0.001 (got {value!r})")
        self._max = round(max_tokens * _MILLI)
        self._ratio = round(token_ratio * _MILLI)
        self._tokens = self._max

    @property
    def max_tokens(self) -> float:
        """The most tokens (rounded to thousandths)."""
        return self._max / _MILLI

    @property
    def token_ratio(self) -> float:
        """Tokens added per success (rounded to thousandths)."""
        return self._ratio / _MILLI

    @property
    def threshold(self) -> float:
        """``max_tokens / 2``: retries need strictly more tokens than this."""
        return self._max / (2 * _MILLI)

    @property
    def tokens(self) -> float:
        """The current token count, exact to three decimals."""
        return self._tokens / _MILLI

    def on_request(self, now: float) -> None:
        """Nothing: only outcomes move the tokens."""

    def on_failure(self, now: float, kind: RetryKind = "transient") -> None:
        """Subtract 1 token, not below 0."""
        _check_kind(kind)
        self._tokens = max(0, self._tokens - _MILLI)

    def can_retry(self, now: float, kind: RetryKind = "transient") -> bool:
        """``tokens > max_tokens / 2``."""
        _check_kind(kind)
        return 2 * self._tokens > self._max

    def on_retry(self, now: float, kind: RetryKind = "transient") -> None:
        """Nothing to pay; ``RuntimeError`` if retries are throttled."""
        if not self.can_retry(now, kind):
            raise RuntimeError("retries are throttled: ask can_retry first, or use try_retry")

    def try_retry(self, now: float, kind: RetryKind = "transient") -> bool:
        """:meth:`can_retry` (a retry takes no token)."""
        return self.can_retry(now, kind)

    def on_success(self, now: float, last_retry: RetryKind | None = None) -> None:
        """Add ``token_ratio``, up to ``max_tokens``."""
        if last_retry is not None:
            _check_kind(last_retry)
        self._tokens = min(self._max, self._tokens + self._ratio)


# --------------------------------------------------------------------------------------------
# One call's loop


class RetryCall:
    """The retry loop of one call, as a state machine: the caller makes the attempts and sleeps.

    Create it when the first attempt starts; after each attempt call :meth:`on_success` or
    :meth:`on_failure`. :meth:`on_failure` returns the delay before the next attempt, or
    ``None`` to give up (:attr:`stop` then says why). It calls the limiter as
    :class:`RetryLimiter` prescribes, and pays for a retry only once the policy has allowed
    it, so a retry refused by the deadline costs no budget::

        retry = RetryCall(policy, now, rng=rng, limiter=quota)
        while True:
            try:
                result = attempt()
            except Transient as error:
                delay = retry.on_failure(clock(), kind="timeout" if error.timed_out else "transient",
                                         retry_after_s=error.retry_after)
                if delay is None:
                    raise
                sleep(delay)
            else:
                retry.on_success(clock())
                return result

    Args:
        policy: The schedule, attempt limit and deadline.
        now: When the first attempt starts (the deadline is measured from here).
        rng: Source of the policy's jitter.
        limiter: A :class:`RetryLimiter` shared by the client's calls, or ``None``.
    """

    __slots__ = ("_attempts", "_done", "_last_kind", "_limiter", "_policy", "_previous", "_rng", "_started_at", "_stop")

    def __init__(
        self,
        policy: RetryPolicy,
        now: float,
        *,
        rng: RandomSource | None = None,
        limiter: RetryLimiter | None = None,
    ) -> None:
        _check_now("now", now)
        self._policy = policy
        self._started_at = float(now)
        self._rng = rng
        self._limiter = limiter
        self._attempts = 1
        self._previous: float | None = None
        self._last_kind: RetryKind | None = None
        self._stop: RetryStop | None = None
        self._done = False
        if limiter is not None:
            limiter.on_request(now)

    @property
    def attempts(self) -> int:
        """Attempts started so far, the first included."""
        return self._attempts

    @property
    def started_at(self) -> float:
        """When the first attempt started."""
        return self._started_at

    @property
    def stop(self) -> RetryStop | None:
        """Why the call was given up, once :meth:`on_failure` has returned ``None``."""
        return self._stop

    @property
    def done(self) -> bool:
        """Whether the call has ended (success, or given up)."""
        return self._done

    def on_failure(
        self,
        now: float,
        *,
        retryable: bool = True,
        kind: RetryKind = "transient",
        retry_after_s: float | None = None,
    ) -> float | None:
        """The current attempt failed: seconds to wait before the next one, or ``None`` to give up.

        Args:
            now: When it failed.
            retryable: The caller's classification; a non-retryable failure is not reported
                to the limiter (gRPC counts only retryable failures), except a server's "do
                not retry" (negative ``retry_after_s``), which gRPC counts.
            kind: The kind of failure, for the limiter's price.
            retry_after_s: The server's ``Retry-After`` or pushback, in seconds.
        """
        self._check_open()
        _check_kind(kind)
        # The policy first (it validates the arguments), then the limiter: the failure is
        # counted before the limiter is asked for the retry, as gRPC A6 requires.
        decision = self._policy._decide(
            self._attempts, now, self._started_at, retry_after_s, self._previous, self._rng, retryable
        )
        limiter = self._limiter
        server_said_no = retry_after_s is not None and retry_after_s < 0
        if limiter is not None and (retryable or server_said_no):
            limiter.on_failure(now, kind)
        if not isinstance(decision, float):
            self._give_up(decision)
            return None
        if limiter is not None and not limiter.try_retry(now, kind):
            self._give_up("budget")
            return None
        self._attempts += 1
        self._previous = decision
        self._last_kind = kind
        return decision

    def on_success(self, now: float) -> None:
        """The current attempt succeeded; the call is over."""
        self._check_open()
        self._done = True
        if self._limiter is not None:
            self._limiter.on_success(now, self._last_kind)

    def _give_up(self, reason: RetryStop) -> None:
        self._done = True
        self._stop = reason

    def _check_open(self) -> None:
        if self._done:
            raise RuntimeError("this call has already ended; start a new RetryCall")
