"""Resilience policies as pure state machines: no simulator, no I/O, no clock, no global RNG.

Why pure: the same objects decide in the simulator and could decide in a real service. Time
is always passed in as ``now`` (seconds), and randomness as a :class:`numpy.random.Generator`,
so a run is reproducible and a policy is unit-testable without a simulation.
Reference semantics: ``research/semantics.md`` sections 1, 2, 3 and 6.
"""

from __future__ import annotations

from .bulkhead import Bulkhead
from .circuit_breaker import BreakerSettings, BreakerState, CircuitBreaker, Permit
from .dead_letter import DeadLetterPolicy
from .idempotency import Fresh, IdempotencyStore, InProgress, Mismatch, Replay
from .rate_limit import KeyedRateLimiter, TokenBucket
from .retry import Jitter, RetryBudget, RetryPolicy

__all__ = [
    "BreakerSettings",
    "BreakerState",
    "Bulkhead",
    "CircuitBreaker",
    "DeadLetterPolicy",
    "Fresh",
    "IdempotencyStore",
    "InProgress",
    "Jitter",
    "KeyedRateLimiter",
    "Mismatch",
    "Permit",
    "Replay",
    "RetryBudget",
    "RetryPolicy",
    "TokenBucket",
]
