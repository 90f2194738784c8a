"""Dashboard analytics: an energy report read from a TimescaleDB replica (review C3).

As designed the engine queries a replica with no timeout and retries three times after
1 s, 2 s and 4 s -- so a stalled replica holds a worker thread for as long as it stalls.
Countermeasures: a query timeout, one circuit breaker per replica (an open breaker is
skipped without a call), rotation to the next replica on retry, and a degraded answer
from the Redis cache when every attempt fails.

Pure logic; the breakers are clock-injected state machines owned by the engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from models.names import REDIS
from models.ops import HttpResponse, RedisPipeline, Select
from models.policies import CircuitBreaker
from sim.ops import Logic, Now, OpError, Sleep

__all__ = ["AnalyticsSettings", "energy_report"]


@dataclass(frozen=True, slots=True)
class AnalyticsSettings:
    """What the analytics path needs from its configuration."""

    replicas: tuple[str, ...]
    retry_delays: tuple[float, ...]
    query_timeout: float | None
    fallback_to_cache: bool


def energy_report(
    settings: AnalyticsSettings,
    device_id: int,
    first_replica: int,
    breakers: Mapping[str, CircuitBreaker],
) -> Logic[HttpResponse]:
    """Answer ``GET /api/v1/analytics/energy?device=...``."""
    replicas: Sequence[str] = settings.replicas
    attempts = 1 + len(settings.retry_delays)
    last_error = "no replica"
    for attempt in range(attempts):
        replica = replicas[(first_replica + attempt) % len(replicas)]
        breaker = breakers.get(replica)
        permit = None
        if breaker is not None:
            now = yield Now()
            permit = breaker.try_acquire(now)
            if permit is None:
                last_error = "circuit_open"
                continue  # fail fast: no call, no backoff, try the next replica
        try:
            summary = yield Select(replica, "energy_summary", {"device_id": device_id}, timeout=settings.query_timeout)
        except OpError as error:
            last_error = error.reason
            if breaker is not None and permit is not None:
                now = yield Now()
                breaker.record(permit, now, success=False)
            if attempt < len(settings.retry_delays):
                yield Sleep(settings.retry_delays[attempt])
            continue
        if breaker is not None and permit is not None:
            now = yield Now()
            breaker.record(permit, now, success=True)
        return HttpResponse(200, {"device_id": device_id, **summary, "source": replica})
    if settings.fallback_to_cache:
        try:
            cached = yield RedisPipeline(REDIS, [("GET", f"report:{device_id}", None)], timeout=1.0)
            return HttpResponse(200, {"device_id": device_id, "cached": cached[0], "source": "cache", "degraded": True})
        except OpError:
            pass
    return HttpResponse(503, {"error": last_error})
