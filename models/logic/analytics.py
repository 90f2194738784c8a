"""Dashboard analytics: an energy report read from a TimescaleDB replica (review C3).

As designed the engine queries a replica with no timeout and retries three times after
1 s, 2 s and 4 s -- so a stalled replica holds a worker thread for as long as it stalls.
Countermeasures: a query timeout, one circuit breaker per replica (an open breaker is
skipped without a call), rotation to the next replica on retry, and graceful degradation
when every attempt fails (the review's "serve from Redis even if PostgreSQL is down:
historical data unavailable but real-time works"): the device's real-time state, which
the ingest consumer keeps in Redis (``device:{id}``), served as a degraded answer with no
history.

Bounded staleness (``postgres.max_replica_lag``): a replica whose replay lag the engine's
last check found beyond the bound is not queried -- the report goes to the replicas
within it, or to the primary when none is (pgpool-II's ``delay_threshold`` routing), so a
dashboard is never shown data much older than the bound, at the price of the primary's
load while the replicas catch up.

Pure logic; the breakers are clock-injected state machines owned by the engine.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from models.names import REDIS
from models.ops import HttpResponse, RedisPipeline, Select
from models.policies import CircuitBreaker, RandomSource, RetryPolicy
from sim.ops import Logic, Now, OpError, Sleep

__all__ = ["AnalyticsSettings", "energy_report"]


@dataclass(frozen=True, slots=True)
class AnalyticsSettings:
    """What the analytics path needs from its configuration."""

    replicas: tuple[str, ...]
    retry: RetryPolicy
    query_timeout: float | None
    fallback_to_cache: bool
    cache_timeout: float | None = 1.0


def energy_report(
    settings: AnalyticsSettings,
    device_id: int,
    first_replica: int,
    breakers: Mapping[str, CircuitBreaker],
    rng: RandomSource | None = None,
    lagging: Collection[str] = (),
    primary: str | None = None,
) -> Logic[HttpResponse]:
    """Answer ``GET /api/v1/analytics/energy?device=...``.

    ``rng`` draws the retry policy's jitter, if it has any.  ``lagging``: replicas too far
    behind to query (bounded staleness); the rotation skips them, and when it would skip
    them all the report goes to ``primary`` (with no primary given, to the replicas regardless).
    """
    replicas: Sequence[str] = settings.replicas
    if lagging:
        fresh = tuple(replica for replica in replicas if replica not in lagging)
        replicas = fresh or ((primary,) if primary is not None else replicas)
    last_error = "no replica"
    started = yield Now()
    attempt = 0
    skipped = 0  # replicas skipped in a row because their breaker is open
    while True:
        attempt += 1
        replica = replicas[(first_replica + attempt - 1) % len(replicas)]
        breaker = breakers.get(replica)
        permit = None
        if breaker is not None:
            now = yield Now()
            permit = breaker.try_acquire(now)
            if permit is None:
                last_error = "circuit_open"
                skipped += 1
                limit = settings.retry.max_attempts
                if skipped >= len(replicas) or (limit is not None and attempt >= limit):
                    break  # every breaker is open, or the attempts are spent: nothing left to try
                continue  # fail fast: no call, no backoff, try the next replica
        skipped = 0
        try:
            summary = yield Select(replica, "energy_summary", {"device_id": device_id}, timeout=settings.query_timeout)
        except OpError as error:
            last_error = error.reason
            now = yield Now()
            if breaker is not None and permit is not None:
                breaker.record(permit, now, success=False)
            delay = settings.retry.next_delay(attempt, now=now, started_at=started, rng=rng)
            if delay is None:
                break
            yield Sleep(delay)
            continue
        if breaker is not None and permit is not None:
            now = yield Now()
            breaker.record(permit, now, success=True)
        return HttpResponse(200, {"device_id": device_id, **summary, "source": replica})
    if settings.fallback_to_cache:
        try:
            state = yield RedisPipeline(REDIS, [("GET", f"device:{device_id}", None)], timeout=settings.cache_timeout)
        except OpError as error:
            last_error = f"{last_error}; cache: {error.reason}"
        else:
            if state[0] is not None:
                body = {"device_id": device_id, "realtime": state[0], "energy_kwh": None}
                return HttpResponse(200, {**body, "source": "cache", "degraded": True})
            last_error = f"{last_error}; cache: no state for the device"
    return HttpResponse(503, {"error": last_error})
