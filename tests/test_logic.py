"""The system's own logic, driven directly with in-memory fakes (no simulation).

These are the tests a team would write for the real services: the same generators run
inside the twin.
"""

from __future__ import annotations

from typing import Any

import pytest

from models.logic.analytics import AnalyticsSettings, energy_report
from models.logic.clients import AppSettings, send_command
from models.logic.commands import CommandSettings, relay_once, submit_command
from models.logic.gateway import GatewaySettings, route_request
from models.logic.ingest import IngestSettings, PoisonRecord, process_records
from models.ops import (
    BulkInsert,
    HttpRequest,
    HttpResponse,
    Insert,
    Publish,
    RedisPipeline,
    Select,
    SendMessage,
    Update,
)
from models.policies import BreakerSettings, CircuitBreaker, DeadLetterPolicy, KeyedRateLimiter, RetryPolicy
from models.policies.dedup import DedupWindow
from models.readings import as_copy, reading
from sim.driver import run_direct
from sim.ops import Operation, OperationTimeout, Rejected, Unavailable


class FakeBackend:
    """Dictionary-backed stand-ins for PostgreSQL, Redis and the broker."""

    def __init__(self, *, broker_down: bool = False) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self.by_key: dict[str, int] = {}
        self.published: list[dict[str, Any]] = []
        self.broker_down = broker_down
        self.log: list[str] = []

    def __call__(self, op: Operation) -> Any:
        self.log.append(op.name)
        if isinstance(op, Insert):
            key = op.row.get("idempotency_key")
            if op.conflict_key and key in self.by_key:
                row = self.rows[self.by_key[key]]
                return {"id": row["id"], "created": False, "status": row["status"]}
            new_id = len(self.rows) + 1
            self.rows[new_id] = dict(op.row, id=new_id, created_at=0.0)
            if key:
                self.by_key[key] = new_id
            return {"id": new_id, "created": True, "status": op.row["status"]}
        if isinstance(op, Update):
            self.rows[op.row_id].update(op.changes)
            return 1
        if isinstance(op, Select) and op.query == "pending_commands":
            due = [r for r in self.rows.values() if r.get("next_attempt_at", 0.0) <= op.params["due_by"]]
            return [dict(r) for r in due if r["status"] == "pending"][: op.params["limit"]]
        if isinstance(op, Publish):
            if self.broker_down:
                raise Unavailable("refused", "broker down")
            self.published.append(op.payload)
            return {"puback": True}
        if isinstance(op, RedisPipeline):
            return [1 for _ in op.commands]
        raise AssertionError(f"unexpected {op}")


def settings(**changes: Any) -> CommandSettings:
    base = {
        "outbox": False, "idempotency_keys": False, "db_timeout": None, "mqtt_timeout": None, "redis_timeout": None,
        "relay_batch": 10, "relay_interval": 1.0, "relay_retry": RetryPolicy(max_attempts=3, base_s=1.0, cap_s=1.0),
    }  # fmt: skip
    return CommandSettings(**{**base, **changes})


BODY = {"device_id": 4, "action": "toggle", "intent": "i1"}


def test_as_designed_publish_failure_leaves_an_orphan_but_answers_accepted() -> None:
    backend = FakeBackend(broker_down=True)
    response, _ = run_direct(submit_command(settings(), "u1", BODY, {}, None), backend)
    assert response.status == 202 and response.body["status"] == "sent"  # what the user is told
    assert backend.rows[1]["status"] == "pending"  # what is true: C1's orphaned command
    assert backend.published == []


def test_happy_path_inserts_publishes_marks_sent_and_syncs_redis() -> None:
    backend = FakeBackend()
    response, _ = run_direct(submit_command(settings(), "u1", BODY, {}, None), backend)
    assert response.status == 202
    assert backend.log == ["Insert", "Publish", "Update", "RedisPipeline"]
    assert backend.rows[1]["status"] == "sent"


def test_outbox_defers_publishing_to_the_relay_which_retries() -> None:
    backend = FakeBackend(broker_down=True)
    response, _ = run_direct(submit_command(settings(outbox=True), "u1", BODY, {}, None), backend)
    assert response.status == 202 and backend.log == ["Insert"]
    assert run_direct(relay_once(settings(outbox=True)), backend)[0] == 0
    assert backend.rows[1]["attempts"] == 1 and backend.rows[1]["status"] == "pending"
    backend.broker_down = False
    assert run_direct(relay_once(settings(outbox=True)), backend, start=5.0)[0] == 1  # once its backoff is over
    assert backend.rows[1]["status"] == "sent" and len(backend.published) == 1


def test_relay_gives_up_after_max_attempts() -> None:
    backend = FakeBackend(broker_down=True)
    run_direct(submit_command(settings(outbox=True), "u1", BODY, {}, None), backend)
    run_direct(relay_once(settings(outbox=True)), backend, start=0.0)
    assert backend.rows[1]["status"] == "pending" and backend.rows[1]["next_attempt_at"] == 1.0  # backing off
    run_direct(relay_once(settings(outbox=True)), backend, start=0.5)
    assert backend.rows[1]["attempts"] == 1  # not due yet: no publish attempt
    for clock in (1.0, 2.0):
        run_direct(relay_once(settings(outbox=True)), backend, start=clock)
    assert backend.rows[1]["status"] == "failed" and backend.rows[1]["attempts"] == 3


def test_idempotency_key_turns_a_retry_into_a_replay() -> None:
    backend = FakeBackend()
    headers = {"Idempotency-Key": "k-1"}
    first, _ = run_direct(submit_command(settings(idempotency_keys=True), "u1", BODY, headers, None), backend)
    again, _ = run_direct(submit_command(settings(idempotency_keys=True), "u1", BODY, headers, None), backend)
    assert again.body["command_id"] == first.body["command_id"] and again.body["replayed"]
    assert len(backend.published) == 1  # the device gets one command, not two (C2)
    other_user, _ = run_direct(submit_command(settings(idempotency_keys=True), "u2", BODY, headers, None), backend)
    assert other_user.body["command_id"] != first.body["command_id"]  # keys are per user


def test_device_rate_limit_answers_429_with_retry_after() -> None:
    limiter = KeyedRateLimiter(10 / 60, 10)
    backend = FakeBackend()
    statuses = [run_direct(submit_command(settings(), "u", BODY, {}, limiter), backend)[0].status for _ in range(11)]
    assert statuses[:10] == [202] * 10
    last = run_direct(submit_command(settings(), "u", BODY, {}, limiter), backend)[0]
    assert last.status == 429 and int(last.headers["Retry-After"]) >= 1


def test_app_retries_timeouts_and_without_keys_creates_new_commands() -> None:
    calls: list[HttpRequest] = []

    def flaky(op: Operation) -> Any:
        calls.append(op)
        if len(calls) < 3:
            raise OperationTimeout("timeout")
        return HttpResponse(202, {"command_id": 9})

    app = AppSettings(app_timeout=10.0, app_retry=RetryPolicy.fixed(2.0, 4.0), send_idempotency_keys=False)
    result, clock = run_direct(send_command(app, "u", 1, "on", "i-7"), flaky)
    assert result.accepted and result.attempts == 3
    assert clock == 2.0 + 4.0  # linear backoff between attempts
    assert all("Idempotency-Key" not in c.headers for c in calls)
    keyed = AppSettings(app_timeout=10.0, app_retry=RetryPolicy.fixed(), send_idempotency_keys=True)
    calls.clear()
    run_direct(send_command(keyed, "u", 1, "on", "i-8"), lambda op: calls.append(op) or HttpResponse(202))
    assert calls[0].headers["Idempotency-Key"] == "i-8"


def test_gateway_rate_limits_per_user_and_maps_upstream_errors() -> None:
    limiter = KeyedRateLimiter(1.0, 2)
    request = HttpRequest(
        "api-gateway", "GET /api/v1/analytics/energy", "u", {"device_id": 1}, {"Authorization": "Bearer t"}
    )
    answers = [
        run_direct(route_request(GatewaySettings(10.0), request, limiter), lambda op: HttpResponse(200))[0]
        for _ in range(3)
    ]
    assert [a.status for a in answers] == [200, 200, 429]

    def slow(op: Operation) -> Any:
        raise OperationTimeout("timeout")

    assert run_direct(route_request(GatewaySettings(10.0), request, KeyedRateLimiter(1, 5)), slow)[0].status == 504
    anonymous = HttpRequest("api-gateway", request.route, "u", {}, {})
    assert run_direct(route_request(GatewaySettings(None), anonymous, limiter), slow)[0].status == 401


def _ingest_settings(**changes: Any) -> IngestSettings:
    base = {
        "supported_schema_versions": frozenset({2}), "validate_readings": False,
        "on_conflict_do_nothing": False, "db_timeout": None, "redis_timeout": None,
        "power_range": (0.0, 10_000.0), "voltage_range": (100.0, 250.0), "current_range": (0.0, 100.0),
    }  # fmt: skip
    return IngestSettings(**{**base, **changes})


GOOD = reading(1, 10.0, 500.0, 230.0, 2.2, 2)
CORRUPT = reading(2, 10.0, -999_999.0, 230.0, 4347.8, 2)
POISON = reading(3, 10.0, 500.0, 230.0, 2.2, 99)


def _db(op: Operation) -> Any:
    if isinstance(op, BulkInsert):
        return {"inserted": len(op.rows), "conflicts": []}
    if isinstance(op, RedisPipeline):
        raise Rejected("CLUSTERDOWN")
    if isinstance(op, SendMessage):
        return {"message_id": 1}
    raise AssertionError(op)


def test_as_designed_ingest_stores_corrupt_values_and_crashes_on_poison() -> None:
    outcome, _ = run_direct(process_records(_ingest_settings(), [GOOD, CORRUPT], None), _db)
    assert outcome.fates == [("stored", ""), ("stored", "")]  # C5: -999999 W goes straight in
    assert outcome.redis_failures == 1  # stored in the database, stale in Redis (C1)
    with pytest.raises(PoisonRecord):
        run_direct(process_records(_ingest_settings(), [GOOD, POISON], None), _db)


def test_countermeasures_validate_dedupe_and_dead_letter() -> None:
    spec = _ingest_settings(validate_readings=True)
    records = [GOOD, CORRUPT, POISON, as_copy(GOOD)]
    letters = DeadLetterPolicy(3, not_retryable=(PoisonRecord,))
    sent: list[dict[str, Any]] = []

    def db(op: Operation) -> Any:
        if isinstance(op, SendMessage):
            sent.append(op.body)
        return _db(op)

    outcome, _ = run_direct(process_records(spec, records, DedupWindow(600), letters), db)
    assert outcome.fates == [
        ("stored", ""),
        ("stored", "anomalies_table"),
        ("dead_lettered", "unsupported_schema"),
        ("dropped", "deduplicated"),
    ]
    # An undecodable record is not retryable: one attempt, its error and the record itself go to the DLQ,
    # and the policy's staging queue is handed over (nothing is kept twice).
    assert sent == [{"record": POISON, "error": "unsupported schema_version 99", "attempts": 1}]
    assert letters.dead_lettered == 1 and letters.depth == 0 and len(letters) == 0


def test_analytics_degrades_to_the_realtime_state_in_redis_and_fails_without_one() -> None:
    spec = AnalyticsSettings(replicas=("r1",), retry=RetryPolicy.fixed(), query_timeout=10.0, fallback_to_cache=True)

    def answer(state: Any) -> Any:
        def handler(op: Operation) -> Any:
            if isinstance(op, RedisPipeline):
                assert op.commands == [("GET", "device:5", None)] and op.timeout == 1.0
                return [state]
            raise OperationTimeout("timeout")

        return handler

    degraded, _ = run_direct(energy_report(spec, 5, 0, {}), answer((120.0, 850.0)))
    assert degraded.status == 200 and degraded.body["degraded"] and degraded.body["realtime"] == (120.0, 850.0)
    assert degraded.body["energy_kwh"] is None  # history is what the database was for
    unknown, _ = run_direct(energy_report(spec, 5, 0, {}), answer(None))
    assert unknown.status == 503 and "no state" in unknown.body["error"]


def test_analytics_retries_at_1_2_4_seconds_then_fails() -> None:
    spec = AnalyticsSettings(
        replicas=("r1",), retry=RetryPolicy.fixed(1.0, 2.0, 4.0), query_timeout=None, fallback_to_cache=False
    )
    attempts: list[str] = []

    def down(op: Operation) -> Any:
        attempts.append(op.target)
        raise OperationTimeout("timeout")

    response, clock = run_direct(energy_report(spec, 5, 0, {}), down)
    assert response.status == 503 and len(attempts) == 4 and clock == 7.0


def test_breaker_skips_a_failing_replica_and_cache_serves_when_all_fail() -> None:
    spec = AnalyticsSettings(
        replicas=("r1", "r2"), retry=RetryPolicy.fixed(1.0), query_timeout=10.0, fallback_to_cache=True
    )
    breakers = {r: CircuitBreaker(BreakerSettings(consecutive_failures=1, min_calls=1)) for r in spec.replicas}
    calls: list[str] = []

    def only_r2(op: Operation) -> Any:
        calls.append(op.target)
        if op.target == "r1":
            raise OperationTimeout("timeout")
        if isinstance(op, RedisPipeline):
            return ["cached"]
        return {"energy_kwh": 1.0}

    first, _ = run_direct(energy_report(spec, 5, 0, breakers), only_r2)
    assert first.status == 200 and calls == ["r1", "r2"]
    calls.clear()
    second, _ = run_direct(energy_report(spec, 5, 0, breakers), only_r2)
    assert second.body["source"] == "r2" and calls == ["r2"]  # r1's breaker is open: no call at all
