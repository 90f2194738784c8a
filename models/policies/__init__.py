"""Resilience policies as pure state machines: no simulator, no I/O, no clock, no global RNG.

Why pure: the same objects decide in the simulator and could decide in a real service. Time
is always passed in as ``now`` (seconds), and randomness as a :class:`numpy.random.Generator`,
so a run is reproducible and a policy is unit-testable without a simulation.
Reference semantics: ``research/semantics.md`` sections 1, 2, 3, 6 and 10.
"""

from __future__ import annotations

from .bulkhead import Admitted, Bulkhead, Queued, Rejected, RejectReason
from .circuit_breaker import BreakerCounts, BreakerSettings, BreakerState, CircuitBreaker, Permit
from .dead_letter import DeadLetter, DeadLetterPolicy
from .idempotency import (
    Completed,
    Fresh,
    IdempotencyStore,
    InProgress,
    LeaseLost,
    LeaseLostReason,
    Mismatch,
    Released,
    Replay,
    Reservation,
)
from .rate_limit import KeyedRateLimiter, TokenBucket, retry_after_seconds
from .retry import (
    AwsRetryQuota,
    GrpcRetryThrottle,
    Jitter,
    RandomSource,
    RetryAfterOverCap,
    RetryBudget,
    RetryCall,
    RetryKind,
    RetryLimiter,
    RetryPolicy,
    RetryStop,
)

__all__ = [
    "Admitted",
    "AwsRetryQuota",
    "BreakerCounts",
    "BreakerSettings",
    "BreakerState",
    "Bulkhead",
    "CircuitBreaker",
    "Completed",
    "DeadLetter",
    "DeadLetterPolicy",
    "Fresh",
    "GrpcRetryThrottle",
    "IdempotencyStore",
    "InProgress",
    "Jitter",
    "KeyedRateLimiter",
    "LeaseLost",
    "LeaseLostReason",
    "Mismatch",
    "Permit",
    "Queued",
    "RandomSource",
    "RejectReason",
    "Rejected",
    "Released",
    "Replay",
    "Reservation",
    "RetryAfterOverCap",
    "RetryBudget",
    "RetryCall",
    "RetryKind",
    "RetryLimiter",
    "RetryPolicy",
    "RetryStop",
    "TokenBucket",
    "retry_after_seconds",
]
