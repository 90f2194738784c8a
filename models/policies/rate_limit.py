"""Rate limiting: token buckets, alone or one per key (user, device).

Why: the review (finding S1) limits users to 1000 requests/min at the gateway, but nothing
stops one buggy app from flooding a single device with commands. A token bucket per device
(10 commands/min) and per user (1000 requests/min) bounds each key's burst and sustained
rate; a rejected caller answers 429 (RFC 6585) with a ``Retry-After`` of
:func:`retry_after_seconds` of :meth:`TokenBucket.retry_after`.

The bucket refills continuously and lazily, as botocore's ``TokenBucket`` (capacity is
topped up by ``elapsed * rate`` when it is next used), so there is no background timer and
the cost is O(1) per call. It starts full, like Envoy's ``max_tokens``. See
``research/semantics.md`` section 3.

Edge cases:

* A request for more tokens than ``burst`` can never succeed: :meth:`TokenBucket.try_take`
  returns ``False``, :meth:`TokenBucket.retry_after` returns ``math.inf`` and
  :func:`retry_after_seconds` ``None`` (send no ``Retry-After``: retrying cannot help).
* **Waiting exactly ``retry_after`` is always admitted**, at any clock value. The wait is
  computed with the very expression the admission uses: the bucket's level at ``now + wait``
  (the float sum the caller will form) must reach the full ``n`` tokens, and the wait is
  raised by one float step at a time until it does. At ``now = 1e12`` one float step of the
  clock is 122 microseconds, so a wait computed as ``missing / rate`` alone can land a hair
  short. ``retry_after`` is 0 exactly when ``try_take`` at the same ``now`` would succeed.
* Floating-point refill can land a hair below a whole token (``49 * (1/49) < 1``); a shortfall
  below ``1e-9`` tokens is forgiven by the admission check (``retry_after`` does not rely on
  it, which leaves room for a bucket refilled in several steps). The balance is then clamped
  at zero.
* A ``Retry-After`` header carries whole seconds: :func:`retry_after_seconds` rounds the wait
  **up** and never answers 0 for a refusal, so a client that honours the header is admitted
  (unless somebody else took the tokens first).
* ``now`` is expected to be non-decreasing; an earlier ``now`` refills nothing.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable

from ._validation import is_finite, is_real

__all__ = ["KeyedRateLimiter", "TokenBucket", "retry_after_seconds"]

_EPSILON = 1e-9
"""Token shortfall that is forgiven, to absorb floating-point error in the refill."""


def _check_amount(name: str, value: float) -> None:
    if not (is_finite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0 (got {value!r})")


class TokenBucket:
    """A token bucket: bursts of up to ``burst`` tokens, ``rate_per_s`` tokens/s sustained.

    Args:
        rate_per_s: Refill rate, tokens per second (``1000 / 60`` for 1000/min).
        burst: Capacity; the bucket starts full.
    """

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate_per_s: float, burst: float) -> None:
        _check_amount("rate_per_s", rate_per_s)
        _check_amount("burst", burst)
        self._rate = float(rate_per_s)
        self._burst = float(burst)
        self._tokens = self._burst
        self._stamp: float | None = None

    @property
    def rate_per_s(self) -> float:
        """Refill rate in tokens per second."""
        return self._rate

    @property
    def burst(self) -> float:
        """Capacity in tokens."""
        return self._burst

    def tokens(self, now: float) -> float:
        """Tokens available at ``now``."""
        self._refill(now)
        return self._tokens

    def try_take(self, now: float, n: float = 1.0) -> bool:
        """Take ``n`` tokens at ``now`` if they are all available; otherwise take none."""
        if n != 1.0:  # one token is what nearly every call takes: no need to check it
            _check_amount("n", n)
        self._refill(now)
        if self._tokens + _EPSILON < n:
            return False
        self._tokens = max(0.0, self._tokens - n)
        return True

    def retry_after(self, now: float, n: float = 1.0) -> float:
        """Seconds from ``now`` until ``n`` tokens are available (0 if they are now).

        ``try_take(now + retry_after(now, n), n)`` succeeds if nobody else takes tokens in
        the meantime, whatever the magnitude of ``now``. Returns ``math.inf`` if ``n``
        exceeds the capacity.
        """
        _check_amount("n", n)
        if n > self._burst:
            return math.inf
        self._refill(now)
        tokens = self._tokens
        if tokens + _EPSILON >= n:
            return 0.0
        stamp = self._stamp
        start = now if stamp is None or now > stamp else stamp
        # The earliest instant whose level (the admission's own expression) reaches n ...
        at = start + (n - tokens) / self._rate
        while self._level(at) < n:
            at = math.nextafter(at, math.inf)
        # ... and a wait that the caller's float sum `now + wait` maps at or after it.
        wait = at - now
        while self._level(now + wait) < n:
            wait = math.nextafter(wait, math.inf)
        return wait

    def fresh(self) -> TokenBucket:
        """A new, full bucket with this one's rate and capacity (already validated, so not checked again)."""
        bucket = TokenBucket.__new__(TokenBucket)
        bucket._rate = self._rate
        bucket._burst = self._burst
        bucket._tokens = self._burst
        bucket._stamp = None
        return bucket

    def is_full(self, now: float) -> bool:
        """Whether the bucket has refilled to capacity, i.e. is as good as a new one."""
        self._refill(now)
        return self._tokens >= self._burst

    def _level(self, now: float) -> float:
        """The tokens :meth:`_refill` would find at ``now``, without changing the bucket."""
        stamp = self._stamp
        tokens = self._tokens
        if stamp is not None and now > stamp and tokens < self._burst:
            return min(self._burst, tokens + (now - stamp) * self._rate)
        return tokens

    def _refill(self, now: float) -> None:
        self._tokens = self._level(now)
        stamp = self._stamp
        if stamp is None or now > stamp:
            self._stamp = now


def retry_after_seconds(wait_s: float) -> int | None:
    """The ``Retry-After`` delay-seconds (RFC 9110 section 10.2.3) for a refusal that must wait ``wait_s``.

    Whole seconds rounded **up**, so that a client that waits that long is admitted, and at
    least 1, since a refused request is never admitted after 0 seconds. ``None`` when
    ``wait_s`` is infinite (the request can never succeed: send no ``Retry-After``).

    Raises:
        ValueError: ``wait_s`` is negative or NaN.
    """
    if not (is_real(wait_s) and wait_s >= 0):
        raise ValueError(f"wait_s must be a number >= 0 (got {wait_s!r})")
    if math.isinf(wait_s):
        return None
    return max(1, math.ceil(wait_s))


class KeyedRateLimiter:
    """One :class:`TokenBucket` per key, with memory bounded by the recently active keys.

    Why the pruning is safe: a bucket that has refilled to capacity is indistinguishable from
    the new, full bucket a key gets on first use, so dropping it changes no decision.

    How it stays cheap and deterministic: buckets are kept in least-recently-used order (a
    key moves to the end whenever it takes). After each :meth:`try_take`, buckets are dropped
    from the front while the front one is full. Every bucket that is not full was used within
    the last ``burst / rate_per_s`` seconds, and so are all buckets behind it, so after the
    sweep the limiter holds at most the keys used in that interval. Each bucket is dropped at
    most once per creation, so the sweep is amortised O(1) per call.

    Args:
        rate_per_s: Refill rate of each key's bucket (``10 / 60`` for 10/min per device).
        burst: Capacity of each key's bucket.
    """

    __slots__ = ("_buckets", "_full")

    def __init__(self, rate_per_s: float, burst: float) -> None:
        # Never taken from: validates the arguments, and stands for any key without a bucket.
        self._full = TokenBucket(rate_per_s, burst)
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()

    @classmethod
    def per_period(cls, limit: float, period_s: float) -> KeyedRateLimiter:
        """A limiter of ``limit`` requests per ``period_s`` for each key.

        Buckets refill at ``limit / period_s`` tokens per second and hold ``limit`` tokens,
        but never less than one: a bucket that cannot hold a whole token would refuse every
        request forever (a limit of 0.5 per minute means one request every two minutes).
        """
        return cls(limit / period_s, max(1.0, limit))

    def __len__(self) -> int:
        """Buckets currently held (keys whose bucket is not known to be full)."""
        return len(self._buckets)

    def try_take(self, key: Hashable, now: float, n: float = 1.0) -> bool:
        """Take ``n`` tokens from ``key``'s bucket at ``now``; see :meth:`TokenBucket.try_take`."""
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = self._full.fresh()
        else:
            buckets.move_to_end(key)
        allowed = bucket.try_take(now, n)
        burst = bucket._burst
        while buckets:
            oldest_key = next(iter(buckets))
            # is_full(now), read without refilling: a bucket that stays is refilled when next used
            if buckets[oldest_key]._level(now) < burst:
                break
            del buckets[oldest_key]
        return allowed

    def retry_after(self, key: Hashable, now: float, n: float = 1.0) -> float:
        """Seconds until ``key`` can take ``n`` tokens; see :meth:`TokenBucket.retry_after`."""
        return self._buckets.get(key, self._full).retry_after(now, n)
