"""Idempotency keys in the command API (review C2): the device manager's store, then the twin.

The command logic runs with ``run_direct`` against a dictionary database, as a team would
test the real service: replays, 422 on a key reused with another request, 409 while the
first request runs, the in-progress lease, releases on errors, and the unique constraint as
the durable second line when the store is lost.  Then whole runs: with keys, the app's
retries never apply a command twice -- also across a slow primary (retries overlapping the
first request) and a device-manager crash (the store lost).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from models.config import DeviceManagerConfig
from models.logic.clients import _retryable
from models.logic.commands import CommandSettings, request_fingerprint, submit_command
from models.ops import HttpResponse, Insert, Publish, RedisPipeline, Update
from models.policies import IdempotencyStore, KeyedRateLimiter, RetryPolicy
from models.twin import TWIN, World, build
from sim.cli import load
from sim.driver import run_direct
from sim.ops import Now, Operation, Unavailable
from sim.variants import variant_scenarios
from tests.conftest import scenario

KEYED = CommandSettings(
    outbox=False,
    idempotency_keys=True,
    db_timeout=None,
    mqtt_timeout=None,
    redis_timeout=None,
    relay_batch=10,
    relay_interval=1.0,
    relay_retry=RetryPolicy(max_attempts=3),
)
BODY = {"device_id": 4, "action": "toggle", "intent": "i-1"}
KEY = {"Idempotency-Key": "i-1"}
LEASE = 20.0


class FakeDatabase:
    """``device_commands`` with its unique ``idempotency_key``, and a broker; counts what it did."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self.by_key: dict[str, int] = {}
        self.published: list[dict[str, Any]] = []
        self.inserts = 0
        self.down = False

    def __call__(self, op: Operation) -> Any:
        if isinstance(op, Insert):
            if self.down:
                raise Unavailable("refused", "primary down")
            self.inserts += 1
            key = op.row["idempotency_key"]
            if op.conflict_key and key in self.by_key:
                row = self.rows[self.by_key[key]]
                return {"id": row["id"], "created": False, "status": row["status"]}
            new_id = len(self.rows) + 1
            self.rows[new_id] = dict(op.row, id=new_id)
            if key:
                self.by_key[key] = new_id
            return {"id": new_id, "created": True, "status": op.row["status"]}
        if isinstance(op, Update):
            self.rows[op.row_id].update(op.changes)
            return 1
        if isinstance(op, Publish):
            self.published.append(op.payload)
            return {"puback": True}
        if isinstance(op, RedisPipeline):
            return [1 for _ in op.commands]
        raise AssertionError(f"unexpected {op}")


def store() -> IdempotencyStore:
    return IdempotencyStore(ttl_s=86_400.0, in_progress_ttl_s=LEASE)


def submit(
    db: FakeDatabase,
    keys: IdempotencyStore | None,
    *,
    at: float = 0.0,
    user: str = "u1",
    body: dict[str, Any] = BODY,
    headers: dict[str, str] = KEY,
    limiter: KeyedRateLimiter | None = None,
) -> HttpResponse:
    response, _ = run_direct(submit_command(KEYED, user, body, headers, limiter, keys), db, start=at)
    return response


class Paused:
    """A request stopped at its first remote operation, as a hung or crashed worker leaves it."""

    def __init__(self, db: FakeDatabase, keys: IdempotencyStore, at: float, *, until: type[Operation]) -> None:
        self.logic = submit_command(KEYED, "u1", BODY, KEY, None, keys)
        self.db = db
        op = next(self.logic)
        while not isinstance(op, until):
            op = self.logic.send(at if isinstance(op, Now) else db(op))
        self.waiting = op

    def resume(self, at: float) -> HttpResponse:
        """Answer the operation it waits on and run it to the end at ``at``."""
        value = self.db(self.waiting)
        try:
            while True:
                op = self.logic.send(value)
                value = at if isinstance(op, Now) else self.db(op)
        except StopIteration as stop:
            response: HttpResponse = stop.value
            return response


# -- the command API with the store ------------------------------------------------------


def test_same_key_same_request_replays_the_first_response_marked_as_a_replay() -> None:
    db, keys = FakeDatabase(), store()
    first = submit(db, keys, at=0.0)
    again = submit(db, keys, at=12.0)
    assert first.status == 202 and "replayed" not in first.body and not first.headers
    assert again.status == 202
    assert again.body == {**first.body, "replayed": True}
    assert again.headers["Idempotent-Replayed"] == "true"
    assert db.inserts == 1 and len(db.published) == 1  # answered from the store: the device gets one command


def test_keys_are_scoped_by_user() -> None:
    db, keys = FakeDatabase(), store()
    mine = submit(db, keys, user="u1")
    theirs = submit(db, keys, user="u2")
    assert theirs.body["command_id"] != mine.body["command_id"]
    assert "replayed" not in theirs.body and len(db.published) == 2


def test_same_key_with_another_request_is_refused_with_422() -> None:
    db, keys = FakeDatabase(), store()
    submit(db, keys)
    for changed in ({"action": "on"}, {"device_id": 5}):
        answer = submit(db, keys, at=3.0, body={**BODY, **changed})
        assert answer.status == 422
    assert db.inserts == 1 and len(db.published) == 1
    assert request_fingerprint("u1", BODY) == request_fingerprint("u1", {**BODY, "intent": "other"})
    assert request_fingerprint("u1", BODY) != request_fingerprint("u2", BODY)


def test_a_concurrent_request_with_the_key_gets_409_while_the_first_is_in_progress() -> None:
    db, keys = FakeDatabase(), store()
    during: list[HttpResponse] = []

    def slow_broker(op: Operation) -> Any:
        if isinstance(op, Publish) and not during:
            during.append(submit(db, keys, at=0.0))  # the app's retry arrives while we publish
            during.append(submit(db, keys, at=0.0, body={**BODY, "action": "off"}))
        return db(op)

    first, _ = run_direct(submit_command(KEYED, "u1", BODY, KEY, None, keys), slow_broker)
    assert [r.status for r in during] == [409, 422]  # a different request is told to fix it, not to wait
    assert first.status == 202 and db.inserts == 1 and len(db.published) == 1
    assert submit(db, keys, at=1.0).body == {**first.body, "replayed": True}  # once done: a replay


def test_409_is_what_the_app_retries() -> None:
    assert _retryable(409) and not _retryable(422)


def test_the_lease_runs_out_so_a_hung_worker_does_not_block_its_key() -> None:
    db, keys = FakeDatabase(), store()
    hung = Paused(db, keys, 0.0, until=Insert)  # reserved the key, its INSERT never answered
    assert submit(db, keys, at=LEASE - 0.5).status == 409
    retry = submit(db, keys, at=LEASE)  # the lease is over: the retry runs as a new request
    assert retry.status == 202 and "replayed" not in retry.body and len(db.published) == 1
    late = hung.resume(at=LEASE + 5.0)  # the hung worker finishes: the unique constraint catches it
    assert late.body == {"command_id": retry.body["command_id"], "status": "sent", "replayed": True}
    assert len(db.published) == 1
    # it no longer owned the key, so what it completed did not replace the retry's response
    assert submit(db, keys, at=LEASE + 6.0).body == {**retry.body, "replayed": True}


def test_after_the_lease_a_row_already_written_is_replayed_by_the_unique_constraint() -> None:
    db, keys = FakeDatabase(), store()
    Paused(db, keys, 0.0, until=Publish)  # inserted its row, then hung on the publish (or crashed)
    retry = submit(db, keys, at=LEASE + 1.0)
    assert retry.status == 202 and retry.body == {"command_id": 1, "status": "pending", "replayed": True}
    assert db.published == [] and db.inserts == 2  # executed once: the store did not know, the database did
    assert submit(db, keys, at=LEASE + 2.0).body == retry.body  # and the store remembers it now


def test_an_error_releases_the_key_so_the_client_may_retry_at_once() -> None:
    db, keys = FakeDatabase(), store()
    db.down = True
    failed = submit(db, keys, at=0.0)
    assert failed.status == 503
    assert len(keys) == 0  # released, not stored: the error is not replayed
    db.down = False
    retry = submit(db, keys, at=0.1)
    assert retry.status == 202 and "replayed" not in retry.body and len(db.published) == 1


def test_a_429_releases_the_key_and_a_replay_costs_no_device_token() -> None:
    db, keys = FakeDatabase(), store()
    limiter = KeyedRateLimiter(1 / 60, 1)  # one command per device per minute
    assert submit(db, keys, headers={"Idempotency-Key": "other"}, limiter=limiter).status == 202
    refused = submit(db, keys, at=1.0, limiter=limiter)
    assert refused.status == 429 and "Retry-After" in refused.headers
    accepted = submit(db, keys, at=61.0, limiter=limiter)  # the same key, once the limit allows
    assert accepted.status == 202 and "replayed" not in accepted.body
    assert submit(db, keys, at=62.0, limiter=limiter).status == 202  # a replay sends nothing: no token needed


def test_a_crash_loses_the_store_and_the_unique_constraint_still_answers() -> None:
    db = FakeDatabase()
    first = submit(db, store(), at=0.0)
    after_crash = submit(db, store(), at=30.0)  # the device manager restarted with an empty store
    assert after_crash.status == 202
    assert after_crash.body == {"command_id": first.body["command_id"], "status": "sent", "replayed": True}
    assert len(db.published) == 1


def test_without_the_switch_the_header_is_ignored() -> None:
    db, keys = FakeDatabase(), store()
    for _ in range(2):
        run_direct(submit_command(replace(KEYED, idempotency_keys=False), "u1", BODY, KEY, None, keys), db)
    assert len(db.published) == 2 and len(keys) == 0  # as designed: a retry is a new command


def test_the_default_lease_outlasts_a_request_with_the_reviews_timeouts() -> None:
    config = DeviceManagerConfig()
    worst = 5.0 + 5.0 + 5.0 + 1.0  # INSERT, publish, UPDATE, Redis (the review's C3 timeouts)
    assert worst < config.idempotency_in_progress_ttl <= worst + 5.0
    assert config.idempotency_ttl == 86_400.0


# -- whole runs ----------------------------------------------------------------------------

SLOW_AND_CRASH = """\
name: c2-slow-primary-crash
duration: 15m
seed: 7
fleet: {meters: 20, controllables: 200}
workload: {mobile_users: 1200, dashboard_users: 0, quiet_before_end: 3m}
faults:
  - {kind: message_loss, target: mobile, at: 1m, for: 9m, probability: 0.2}
  - {kind: latency, target: db-primary, at: 2m, for: 3m, add: 15s}
  - {kind: crash, target: device-manager, at: 3m, restart_after: 5s}
variants:
  as-designed: {}
  keys:
    device_manager: {idempotency_keys: true}
    workload: {send_idempotency_keys: true}
"""


def _run_recording(world: World) -> dict[str, list[int]]:
    """Run ``world`` to its end; the command ids each intent was applied under, in order."""
    applied: dict[str, list[int]] = defaultdict(list)
    deliver = world.broker.deliver_to_device
    assert deliver is not None
    devices = world.devices

    def recording(message: dict[str, Any]) -> None:
        before = len(devices.applied.get(message["intent"], ()))
        deliver(message)
        if len(devices.applied.get(message["intent"], ())) > before:
            applied[message["intent"]].append(message["command_id"])

    world.broker.deliver_to_device = recording
    world.kernel.run(world.scenario.duration)
    return applied


def _commands_per_intent(world: World) -> dict[str, int]:
    rows: dict[str, int] = defaultdict(int)
    for row in world.database.commands.values():
        rows[row["intent"]] += 1
    return rows


@pytest.fixture(scope="module")
def slow_and_crash(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path: Path = tmp_path_factory.mktemp("c2") / "c2-slow-primary-crash.yaml"
    path.write_text(SLOW_AND_CRASH, encoding="utf-8")
    return variant_scenarios(load(TWIN, path))


def test_with_keys_the_apps_retries_never_apply_a_command_twice(slow_and_crash: dict[str, Any]) -> None:
    # Retries overlap the first request (the primary answers 15 s late, the app gives up
    # after 10 s), leases run out, and the device manager crashes mid-way, losing its store.
    without = build(slow_and_crash["as-designed"], 7)
    applied = _run_recording(without)
    assert sum(len(set(ids)) > 1 for ids in applied.values()) > 0  # what the keys are for

    world = build(slow_and_crash["keys"], 7)
    applied = _run_recording(world)
    assert applied, "no command was applied at all"
    assert all(len(set(ids)) == 1 for ids in applied.values())  # one command per intent reached a device
    assert max(_commands_per_intent(world).values()) == 1  # and one row per intent: never executed again
    answers = world.device_manager.idempotency_answers
    assert answers["in_progress_409"] > 0 and answers["replayed"] > 0  # both paths really ran
    assert answers["mismatch_422"] == 0  # the app never reuses a key for another request
    assert world.device_manager.crashes == 1


def test_c2_keys_alone_stop_the_apps_retries_but_not_the_brokers_resends() -> None:
    variants = variant_scenarios(scenario("c2-idempotency"))
    world = build(variants["keys-only"], 7)
    applied = _run_recording(world)
    assert all(len(set(ids)) == 1 for ids in applied.values())  # no second command from a retry
    resent = sum(len(ids) > len(set(ids)) for ids in applied.values())
    assert resent > 0  # a QoS 1 resend after a lost PUBACK: the same command id, applied again
    assert world.device_manager.idempotency_answers["replayed"] > 0
