"""models.recovery.commits: what was committed per table, aggregate on long horizons and
record by record where the detailed twin runs; the ground truth of every RPO."""

from __future__ import annotations

import pytest

from models.recovery.commits import CommitLog
from models.recovery.config import DurabilityConfig, Flow

BYTES = {"readings": 100.0, "device_commands": 500.0, "users": 1000.0}


def hand_built() -> CommitLog:
    """readings: 10 rows/s in aggregate until 1000 s, then recorded batches; commands: 0.5/s
    in aggregate all along; users: recorded (a hypothetical twin that writes them)."""
    flows = {
        "readings": Flow(rows_per_s=10.0, level="records"),
        "device_commands": Flow(rows_per_s=0.5),
    }
    log = CommitLog(flows, BYTES, detail_from=1000.0)
    for t, rows in ((1000.5, 40), (1001.0, 60), (1030.0, 25), (1059.9, 5)):
        log.record("readings", t, rows, rows * 100.0)
    log.record("anomalies", 1002.0, 0, 300.0)  # a table the flows do not name: WAL only
    return log


def test_rows_between_adds_the_aggregate_history_and_the_records():
    log = hand_built()
    assert log.rows_between("readings", 0.0, 1000.0) == 10_000  # 1000 s at 10 rows/s
    assert log.rows_between("readings", 900.0, 1001.0) == 1000 + 100  # 100 s aggregate + two batches
    assert log.rows_between("readings", 1001.0, 1060.0) == 30  # (a, b]: the batch at 1001 is not in
    assert log.rows_between("device_commands", 0.0, 1060.0) == 530  # aggregate all along
    assert log.rows_between("readings", 50.0, 50.0) == 0


def test_rpo_rows_from_a_hand_built_history():
    log = hand_built()
    # recovered to 1001 s, disaster at 1060 s: the batches at 1030 and 1059.9 are lost,
    # and 59 s of commands at 0.5/s
    assert log.rows_lost(1001.0, 1060.0) == {"readings": 30, "device_commands": 29}
    # nothing recoverable: everything since time 0
    assert log.rows_lost(None, 1060.0) == {"readings": 10_130, "device_commands": 530}


def test_wal_follows_the_rows():
    log = hand_built()
    assert log.aggregate_wal_rate(10.0) == pytest.approx(10 * 100 + 0.5 * 500)
    assert log.aggregate_wal_rate(2000.0) == pytest.approx(0.5 * 500)  # readings are recorded there
    recorded = (40 + 60 + 25 + 5) * 100.0 + 300.0
    assert log.wal_bytes_between(0.0, 1060.0) == pytest.approx(1000 * 1250 + 60 * 250 + recorded)
    assert log.data_bytes_between(0.0, 1060.0) == pytest.approx(10_130 * 100 + 530 * 500)


def test_levels_say_how_each_flow_is_known():
    log = hand_built()
    assert log.levels() == {"readings": "records", "device_commands": "aggregate"}
    assert log.level("readings", 999.0) == "aggregate" and log.level("readings", 1000.0) == "records"


def test_records_must_come_in_time_order_and_every_table_needs_its_wal_size():
    log = hand_built()
    with pytest.raises(ValueError, match="time order"):
        log.record("readings", 1.0, 1, 1.0)
    with pytest.raises(ValueError, match="users"):
        CommitLog({"users": Flow()}, {"readings": 1.0})


def test_the_users_table_cannot_be_recorded():
    with pytest.raises(ValueError, match="users"):
        DurabilityConfig.model_validate({"flows": {"users": {"level": "records"}}})


def test_the_cost_estimate_counts_the_detail_window_and_the_wal_segments():
    """Six months with a durability section cost the detailed hours plus the backup plane's
    segments, not six months of the detailed twin (which would be refused as too long)."""
    from models.config import Scenario
    from models.cost import estimate

    base = {
        "name": "six-months",
        "duration": "180d 1h",
        "fleet": {"meters": 100, "controllables": 100},
        "workload": {"mobile_users": 100, "dashboard_users": 10},
    }
    detailed_twin = estimate(Scenario.model_validate(base))
    durable = {**base, "durability": {"detail_from": "180d", "wal": {"archive_timeout": "60s"}}}
    long_horizon = estimate(Scenario.model_validate(durable))
    assert detailed_twin.wall_s > 1800 and long_horizon.wall_s < 60
    assert long_horizon.driver == "durability.wal.archive_timeout"  # 259,200 segments, each a few microseconds
    every_second = {**durable, "durability": {"detail_from": "180d", "wal": {"archive_timeout": "1s"}}}
    assert estimate(Scenario.model_validate(every_second)).wall_s > 60 * long_horizon.wall_s / 2
