"""Countermeasure switches reach the policies the services own."""

from __future__ import annotations

import math

from models.twin import build
from tests.conftest import scenario


def small(**sections: dict[str, object]):  # type: ignore[no-untyped-def]
    spec = scenario("baseline")
    data = spec.model_dump(by_alias=True, exclude_unset=True)
    data.update({"duration": 60.0, "fleet": {"meters": 10, "controllables": 5}, **sections})
    return type(spec).model_validate(data)


def test_breaker_slow_call_settings_reach_every_replicas_breaker() -> None:
    world = build(small(analytics={"breaker": {"slow_call_duration": 2.0, "slow_call_rate": 0.5}}), seed=1)
    settings = [b.settings for b in world.analytics.breakers.values()]
    assert len(settings) == 2
    assert all(s.slow_call_duration_s == 2.0 and s.slow_call_rate == 0.5 for s in settings)


def test_without_a_slow_call_threshold_no_call_is_slow() -> None:
    world = build(small(analytics={"breaker": {}}), seed=1)
    assert all(math.isinf(b.settings.slow_call_duration_s) for b in world.analytics.breakers.values())


def test_idempotency_answers_are_reported_per_device_manager() -> None:
    world = build(small(device_manager={"idempotency_keys": True}), seed=1)
    world.kernel.run(60.0)
    stats = world.device_manager.stats()
    assert {"idempotency_replayed", "idempotency_in_progress_409", "idempotency_mismatch_422"} <= set(stats)
