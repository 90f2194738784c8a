"""Retries: when to try again (backoff and jitter), and how many retries a client may afford.

Why both halves: a retry schedule alone turns a brief outage into a load multiplier. The
review's analytics engine retries database queries 3 times (1 s, 2 s, 4 s); when the database
is slow, every query becomes four, and the extra load keeps it slow (a metastable failure).
Jitter spreads retries out so that clients do not retry in lockstep, and a retry *budget*
caps retries at a fraction of real traffic, so retries cannot multiply load when everything
fails.

* :class:`RetryPolicy` computes the delay before each retry: an explicit schedule, or capped
  exponential backoff with the jitter variants of the AWS Architecture Blog article
  "Exponential Backoff And Jitter" (``research/semantics.md`` section 2.1).
* :class:`RetryBudget` is Finagle's / Linkerd's retry budget (section 2.4): each original
  request deposits ``percent_can_retry`` of a retry, each retry withdraws one, and a reserve
  of ``min_retries_per_s * ttl_s`` retries lets low-traffic clients retry at all. Deposits and
  withdrawals expire after ``ttl_s``.

Both are pure: randomness comes from the caller's :class:`numpy.random.Generator` and time
from the caller's ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from ._validation import is_count, is_finite
from .circuit_breaker import _RollingCounts

__all__ = ["Jitter", "RetryBudget", "RetryPolicy"]

Jitter = Literal["none", "full", "equal", "decorrelated"]
"""How a backoff delay is randomised.

* ``"none"``: ``c(n) = min(cap, base * multiplier**(n-1))`` for retry ``n``.
* ``"full"``: ``uniform(0, c(n))``. Least total work in the AWS article.
* ``"equal"``: ``c(n)/2 + uniform(0, c(n)/2)``. Never shorter than half the backoff.
* ``"decorrelated"``: ``min(cap, uniform(base, 3 * previous))``, with ``previous`` the delay
  returned for the previous retry (``base`` before the first). Ignores ``multiplier``.
"""

_JITTERS: tuple[str, ...] = get_args(Jitter)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many attempts a call gets, and how long to wait before each retry.

    Attributes:
        max_attempts: Attempts including the first, as in tenacity's ``stop_after_attempt``,
            gRPC's ``maxAttempts`` and the AWS SDKs; so ``4`` allows 3 retries.
        delays_s: An explicit schedule: retry ``n`` waits ``delays_s[n-1]``, exactly. When
            non-empty it overrides ``base_s``, ``multiplier`` and ``cap_s``; it must then hold
            exactly ``max_attempts - 1`` delays, and ``jitter`` must be ``"none"`` (an explicit
            schedule is what the review describes as deployed; for a jittered version of the
            same schedule use ``base_s``/``multiplier`` with a jitter). See :meth:`fixed`.
        base_s: The first retry's backoff ceiling, in seconds.
        multiplier: Growth of the ceiling per retry (``>= 1``).
        cap_s: Upper bound of any computed delay (``>= base_s``); 20 s as in the AWS SDKs.
        jitter: See :data:`Jitter`.
    """

    max_attempts: int = 4
    delays_s: tuple[float, ...] = ()
    base_s: float = 1.0
    multiplier: float = 2.0
    cap_s: float = 20.0
    jitter: Jitter = "none"

    def __post_init__(self) -> None:
        if not is_count(self.max_attempts) or self.max_attempts < 1:
            raise ValueError(f"max_attempts must be an integer >= 1 (got {self.max_attempts!r})")
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
        if delays and len(delays) != self.max_attempts - 1:
            raise ValueError(
                f"delays_s holds {len(delays)} delays but max_attempts={self.max_attempts} "
                f"allows {self.max_attempts - 1} retries (max_attempts counts the first attempt); "
                "use RetryPolicy.fixed(*delays)"
            )
        if delays and self.jitter != "none":
            raise ValueError(f"delays_s is an exact schedule; jitter must be 'none' (got {self.jitter!r})")

    @classmethod
    def fixed(cls, *delays: float) -> RetryPolicy:
        """A policy that retries once per given delay, e.g. ``fixed(1.0, 2.0, 4.0)``.

        ``fixed()`` with no delay never retries.
        """
        return cls(max_attempts=len(delays) + 1, delays_s=delays)

    def delay(
        self,
        retry_number: int,
        rng: np.random.Generator,
        previous_s: float | None = None,
    ) -> float | None:
        """Seconds to wait before retry ``retry_number``, or ``None`` if it is not allowed.

        Args:
            retry_number: 1 for the first retry (the second attempt), 2 for the next, ...
            rng: Source of the jitter; not drawn from when the result is deterministic
                (explicit schedule, ``"none"``), so adding a policy without jitter does not
                shift anybody's random stream.
            previous_s: The delay returned for the previous retry; only ``"decorrelated"``
                uses it. ``None`` means ``base_s``, which is right for the first retry.

        Raises:
            ValueError: ``retry_number < 1``, or ``previous_s`` is negative or not finite.
        """
        if not is_count(retry_number) or retry_number < 1:
            raise ValueError(f"retry_number counts from 1 (got {retry_number!r})")
        if retry_number >= self.max_attempts:
            return None
        if self.delays_s:
            return self.delays_s[retry_number - 1]
        jitter = self.jitter
        if jitter == "decorrelated":
            previous = self.base_s if previous_s is None else previous_s
            if not is_finite(previous) or previous < 0:
                raise ValueError(f"previous_s must be a finite delay >= 0 (got {previous_s!r})")
            high = max(self.base_s, 3.0 * previous)
            return min(self.cap_s, float(rng.uniform(self.base_s, high)))
        ceiling = self._ceiling(retry_number)
        if jitter == "none":
            return ceiling
        if jitter == "full":
            return float(rng.uniform(0.0, ceiling))
        half = ceiling / 2.0
        return half + float(rng.uniform(0.0, half))

    def _ceiling(self, retry_number: int) -> float:
        try:
            raw = self.base_s * self.multiplier ** (retry_number - 1)
        except OverflowError:
            return self.cap_s
        return min(self.cap_s, raw)


_SCALE = 1000
"""Budget units per retry. Integer units keep the balance exact (Finagle's ScaleFactor)."""


class RetryBudget:
    """Finagle's retry budget: retries may add at most a fixed share of real traffic.

    Each original request calls :meth:`deposit`; each retry calls :meth:`try_withdraw` and is
    only made if that returns ``True``. The balance is::

        reserve + percent_can_retry * deposits - withdrawals

    over the last ``ttl_s`` seconds, where ``reserve = min_retries_per_s * ttl_s``. A
    withdrawal needs a balance of at least one retry. Because withdrawals also expire after
    ``ttl_s``, the reserve allows about ``min_retries_per_s`` retries per second on average
    (in bursts of up to ``reserve``), and deposits allow ``percent_can_retry`` retries per
    request on top.

    Deposits and withdrawals are kept in one-second buckets (memory ``ceil(ttl_s)`` buckets);
    an entry counts for between ``ceil(ttl_s) - 1`` and ``ceil(ttl_s)`` seconds. A deposit may
    expire before a retry it paid for, so the balance can be negative for a while, as in
    Finagle. Amounts are kept in integer thousandths of a retry, so ``percent_can_retry`` is
    effective to three decimals.

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
        # (deposits, withdrawals) per second.
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

    def _balance_units(self, now: float) -> int:
        deposits, withdrawals = self._window.totals(now)
        return self._reserve_units + deposits * self._deposit_units - withdrawals * _SCALE
