"""Rate limiting: token buckets, alone or one per key (user, device).

Why: the review (finding S1) limits users to 1000 requests/min at the gateway, but nothing
stops one buggy app from flooding a single device with commands. A token bucket per device
(10 commands/min) and per user (1000 requests/min) bounds each key's burst and sustained
rate; a rejected caller answers 429 with ``Retry-After`` from :meth:`TokenBucket.retry_after`.

The bucket refills continuously and lazily, as botocore's ``TokenBucket`` (capacity is
topped up by ``elapsed * rate`` when it is next used), so there is no background timer and
the cost is O(1) per call. It starts full, like Envoy's ``max_tokens``. See
``research/semantics.md`` section 3.

Edge cases:

* A request for more tokens than ``burst`` can never succeed: :meth:`TokenBucket.try_take`
  returns ``False`` and :meth:`TokenBucket.retry_after` returns ``math.inf``.
* Floating-point refill can land a hair below a whole token (``49 * (1/49) < 1``); a shortfall
  below ``1e-9`` tokens is forgiven, so that waiting exactly ``retry_after`` seconds always
  succeeds. The balance is then clamped at zero.
* ``now`` is expected to be non-decreasing; an earlier ``now`` refills nothing.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable

from ._validation import is_finite

__all__ = ["KeyedRateLimiter", "TokenBucket"]

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
        _check_amount("n", n)
        self._refill(now)
        if self._tokens + _EPSILON < n:
            return False
        self._tokens = max(0.0, self._tokens - n)
        return True

    def retry_after(self, now: float, n: float = 1.0) -> float:
        """Seconds from ``now`` until ``n`` tokens are available (0 if they are now).

        Returns ``math.inf`` if ``n`` exceeds the capacity. Assumes nobody else takes
        tokens in the meantime.
        """
        _check_amount("n", n)
        if n > self._burst:
            return math.inf
        self._refill(now)
        missing = n - self._tokens
        if missing <= _EPSILON:
            return 0.0
        return missing / self._rate

    def is_full(self, now: float) -> bool:
        """Whether the bucket has refilled to capacity, i.e. is as good as a new one."""
        self._refill(now)
        return self._tokens >= self._burst

    def _refill(self, now: float) -> None:
        stamp = self._stamp
        if stamp is not None and now > stamp and self._tokens < self._burst:
            self._tokens = min(self._burst, self._tokens + (now - stamp) * self._rate)
        if stamp is None or now > stamp:
            self._stamp = now


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
            bucket = buckets[key] = TokenBucket(self._full.rate_per_s, self._full.burst)
        else:
            buckets.move_to_end(key)
        allowed = bucket.try_take(now, n)
        while buckets:
            oldest_key = next(iter(buckets))
            if not buckets[oldest_key].is_full(now):
                break
            del buckets[oldest_key]
        return allowed

    def retry_after(self, key: Hashable, now: float, n: float = 1.0) -> float:
        """Seconds until ``key`` can take ``n`` tokens; see :meth:`TokenBucket.retry_after`."""
        return self._buckets.get(key, self._full).retry_after(now, n)
