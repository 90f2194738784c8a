"""Resilience policies as pure state machines: no simulator, no I/O, no clock, no global RNG.

Why pure: the same objects decide in the simulator and could decide in a real service. Time
is always passed in as ``now`` (seconds), and randomness as a :class:`numpy.random.Generator`,
so a run is reproducible and a policy is unit-testable without a simulation.
Reference semantics: ``research/semantics.md`` sections 1, 2, 3, 6 and 10.
"""

from __future__ import annotations

from .bulkhead import Bulkhead
from .circuit_breaker import BreakerSettings, BreakerState, CircuitBreaker, Permit
from .dead_letter import DeadLetterPolicy
from .idempotency import Fresh, IdempotencyStore, InProgress, Mismatch, Replay
from .rate_limit import KeyedRateLimiter, TokenBucket
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
    "AwsRetryQuota",
    "BreakerSettings",
    "BreakerState",
    "Bulkhead",
    "CircuitBreaker",
    "DeadLetterPolicy",
    "Fresh",
    "GrpcRetryThrottle",
    "IdempotencyStore",
    "InProgress",
    "Jitter",
    "KeyedRateLimiter",
    "Mismatch",
    "Permit",
    "RandomSource",
    "Replay",
    "RetryAfterOverCap",
    "RetryBudget",
    "RetryCall",
    "RetryKind",
    "RetryLimiter",
    "RetryPolicy",
    "RetryStop",
    "TokenBucket",
]
