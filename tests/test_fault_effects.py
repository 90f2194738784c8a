"""Each base fault visibly changes the outcome it should.

Every scenario file is run twice with the same seed -- as written, and with its faults
removed -- so the comparison is paired (common random numbers) and the difference is
the fault's doing.
"""

from __future__ import annotations

import pytest

from tests.conftest import run

FAULT_SCENARIOS = [
    "latency-slow-replica",
    "error-rate-primary",
    "crash-ingest-consumer",
    "crash-iot-core",
    "partition-device-manager",
    "message-loss-devices",
    "duplication-meters",
    "poison-message",
]


@pytest.mark.parametrize("name", FAULT_SCENARIOS)
def test_invariants_hold_under_faults(name: str) -> None:
    result = run(name)
    broken = [inv for inv in result["invariants"] if not inv["held"]]
    assert broken == []
    assert result["faults"], "the fault timeline recorded nothing"


def test_slow_replica_makes_dashboards_fail() -> None:
    faulty = run("latency-slow-replica")["flows"]["analytics"]
    clean = run("latency-slow-replica", without_faults=True)["flows"]["analytics"]
    assert clean["availability"] == 1.0
    assert faulty["availability"] < 0.95
    # With no query timeout, requests routed to the slow replica outlive the dashboard's own timeout.
    assert faulty["statuses"].get("599", 0) > 0
    assert "599" not in clean["statuses"]


def test_error_rate_on_primary_fails_writes_and_forces_retries() -> None:
    faulty = run("error-rate-primary")
    clean = run("error-rate-primary", without_faults=True)
    assert clean["components"]["ingest-consumer"]["failed_batches"] == 0
    assert faulty["components"]["ingest-consumer"]["failed_batches"] > 0
    commands = faulty["flows"]["commands"]
    assert commands["requests_sent"] > commands["intents"]  # the app retried 503s
    assert clean["flows"]["commands"]["requests_sent"] == clean["flows"]["commands"]["intents"]


def test_consumer_crash_delays_readings_and_replays_them_as_duplicates() -> None:
    faulty = run("crash-ingest-consumer")
    clean = run("crash-ingest-consumer", without_faults=True)
    assert faulty["components"]["ingest-consumer"]["crashes"] == 2
    # At-least-once: what was stored since the last checkpoint is read and stored again.
    assert faulty["components"]["ingest-consumer"]["records_redelivered"] > 0
    assert faulty["flows"]["sensor"]["duplicate_rows"] > 0
    assert clean["flows"]["sensor"]["duplicate_rows"] == 0
    late = faulty["flows"]["sensor"]["end_to_end_latency_s"]["max"]
    assert late > 20.0  # readings waited out the 30 s restart
    assert clean["flows"]["sensor"]["end_to_end_latency_s"]["max"] < 10.0  # one 5 s poll plus transit


def test_broker_crash_orphans_commands() -> None:
    faulty = run("crash-iot-core")["flows"]["commands"]
    clean = run("crash-iot-core", without_faults=True)["flows"]["commands"]
    assert clean["orphaned"] == 0
    assert faulty["orphaned"] > 0
    assert faulty["app_told_accepted"] > faulty["applied"]  # users were told "accepted"


def test_partition_without_timeouts_cascades() -> None:
    faulty = run("partition-device-manager")["flows"]
    clean = run("partition-device-manager", without_faults=True)["flows"]
    assert clean["commands"]["success_rate"] == 1.0
    assert faulty["commands"]["success_rate"] < 0.8
    assert faulty["analytics"]["availability"] < clean["analytics"]["availability"]


def test_message_loss_duplicates_applications_and_rows() -> None:
    faulty = run("message-loss-devices")
    clean = run("message-loss-devices", without_faults=True)
    assert clean["flows"]["commands"]["applied_more_than_once"] == 0
    assert faulty["flows"]["commands"]["applied_more_than_once"] > 0
    assert faulty["flows"]["sensor"]["duplicate_rows"] > 0
    assert faulty["components"]["network"]["messages_dropped"] > 0


def test_duplication_stores_duplicate_rows() -> None:
    faulty = run("duplication-meters")["flows"]["sensor"]
    clean = run("duplication-meters", without_faults=True)["flows"]["sensor"]
    assert clean["duplicate_rows"] == 0
    assert faulty["duplicate_rows"] > 1000


def test_poison_message_crash_loops_and_stops_ingestion() -> None:
    faulty = run("poison-message")
    clean = run("poison-message", without_faults=True)
    consumer = faulty["components"]["ingest-consumer"]
    assert consumer["poison_crashes"] > 10  # crash loop: every restart meets the same record
    assert faulty["flows"]["sensor"]["stored"] < 0.5 * clean["flows"]["sensor"]["stored"]
    assert faulty["flows"]["sensor"]["stream_backlog_at_end"] > 50_000


def _quick(faults: list[dict], **changes: object) -> dict:
    """A 4-minute, 200-meter variant of the baseline with the given faults (paired by seed)."""
    from models.twin import TWIN
    from sim.cli import run_scenario
    from tests.conftest import scenario

    base = scenario("baseline").model_dump(by_alias=True)
    base.update({"duration": 240.0, "fleet": {**base["fleet"], "meters": 200}, "faults": faults, **changes})
    return run_scenario(TWIN, TWIN.scenario_type.model_validate(base), 7)


def test_stream_outage_drops_readings_at_the_iot_rule() -> None:
    result = _quick([{"kind": "crash", "target": "kinesis", "at": 60, "restart_after": 30}])
    dropped = result["ledger"]["readings"]["states"]["dropped"]["by_reason"]
    assert dropped["stream_unavailable"] > 0
    assert result["components"]["iot-core"]["rule_put_failures"] == sum(dropped.values())
    assert result["invariants_held"]


def test_slow_broker_delays_readings() -> None:
    slow = _quick([{"kind": "latency", "target": "iot-core", "at": 60, "for": 60, "add": 5}])
    clean = _quick([])
    assert slow["flows"]["sensor"]["end_to_end_latency_s"]["max"] > 5.0
    assert clean["flows"]["sensor"]["end_to_end_latency_s"]["max"] < 2.0


def test_redis_master_failover_blocks_the_whole_cluster_by_default() -> None:
    result = _quick([{"kind": "crash", "target": "redis-master-2", "at": 60}])
    assert result["components"]["redis"]["clusterdown_errors"] > 0
    assert result["components"]["ingest-consumer"]["redis_sync_failures"] > 0  # C1: stale real-time view
    assert _quick([])["components"]["redis"]["clusterdown_errors"] == 0
