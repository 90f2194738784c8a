"""Tests of models.recovery.failover: disasters recovered as timed runbooks, with RPO measured
on a hand-built commit history and RTO step by step (issue 10)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest

from models.logic.durability import RestoreResult
from models.logic.health import ProbeResult
from models.recovery.commits import CommitLog
from models.recovery.config import DurabilityConfig, Flow, Table
from models.recovery.failover import Failover
from models.recovery.faults import DisasterTarget, DiskLoss, RegionOutage
from models.recovery.runbook import DATA_STEP
from sim.actor import Actor
from sim.distributions import constant
from sim.errors import ModelDefinitionError
from sim.faults import Fault, FaultTimeline
from sim.kernel import Kernel

# detect 60 s, decide 120 s, [data], dns 30 s, warm caches 300 s (region only): hand-workable
RUNBOOK = [
    {"name": "detect", "time": "60s"},
    {"name": "decide", "time": "120s", "applies_to": ["primary_loss", "region_outage"]},
    {"name": "recover", "recovers_data": True},
    {"name": "dns", "time": "30s", "applies_to": ["primary_loss", "region_outage"]},
    {"name": "warm caches", "time": "300s", "applies_to": ["region_outage"]},
]
WAL_PER_ROW = {"readings": 100.0, "device_commands": 200.0, "users": 1000.0}


class Plane:
    """A backup plane that restores to a fixed point (or to nothing)."""

    def __init__(self, recovered_before: float | None) -> None:
        self.recovered_before = recovered_before
        self.calls: list[float] = []
        self.lost: list[tuple[float, float | None, float | None]] = []

    def primary_lost(self, at: float, recovered_to: float | None, back_at: float | None) -> None:
        self.lost.append((at, recovered_to, back_at))

    def restore(self, disaster_s: float) -> RestoreResult:
        self.calls.append(disaster_s)
        if self.recovered_before is None:
            return RestoreResult(
                disaster_s, None, None, math.inf, math.inf, (), 0, None, "no usable base backup", (("b1", "bad"),)
            )
        steps = (("copy base backup", 250.0), ("fetch WAL", 10.0), ("replay WAL", 1000.0))
        return RestoreResult(
            disaster_s,
            None,
            disaster_s - self.recovered_before,
            self.recovered_before,
            1260.0,
            steps,
            42,
            43,
            "segment 43 missing in the archive",
            (),
        )


class Wal:
    """A replica's WAL position: the oldest commit not arrived, and when what arrived is replayed."""

    def __init__(self, unshipped_since: float | None, replay_done_at: float) -> None:
        self.since = unshipped_since
        self.done = replay_done_at
        self.asked: list[float] = []

    def unshipped_since(self, now: float) -> float | None:
        self.asked.append(now)
        return self.since

    def replay_done_at(self, now: float) -> float:
        return self.done


class Probe:
    """Stands for the deep readiness prober: a verdict and the hook told of its changes."""

    def __init__(self) -> None:
        self.healthy = True
        self.on_change: Callable[[Any, ProbeResult], None] | None = None
        self.seen: list[bool] = []
        self.on_change = lambda _p, result: self.seen.append(result.healthy)

    def turn(self, healthy: bool) -> None:
        self.healthy = healthy
        assert self.on_change is not None
        self.on_change(self, ProbeResult(healthy))


class Intent:
    def __init__(self, accepted: bool) -> None:
        self.accepted = accepted


class Commands:
    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.results: dict[str, tuple[Any, float]] = {}


def _commits() -> CommitLog:
    """readings and commands row by row, users at 0.01 rows/s (one every 100 s)."""
    flows: dict[Table, Flow] = {
        "readings": Flow(level="records"),
        "device_commands": Flow(level="records"),
        "users": Flow(rows_per_s=0.01),
    }
    log = CommitLog(flows, WAL_PER_ROW)
    for t, rows in ((100.0, 50), (997.0, 10), (999.0, 7), (1000.0, 3)):
        log.record("readings", t, rows, rows * 100.0)
    for t in (500.0, 998.5, 999.5):
        log.record("device_commands", t, 1, 200.0)
    return log


class World:
    """A kernel with the region's actors (three in us-east-1, one elsewhere) and a failover."""

    def __init__(
        self,
        failover: dict[str, Any] | None = None,
        *,
        plane: Plane | None = None,
        seed: int = 1,
        wal: dict[str, Wal] | None = None,
        replicas: int = 1,
        faults: list[Fault] | None = None,
        probe: Probe | None = None,
        commands: Commands | None = None,
        traffic: Callable[[], dict[str, float]] | None = None,
        start: float = 0.0,
    ) -> None:
        self.kernel = Kernel(seed, start=start)
        self.primary = Actor(self.kernel, "db-primary", zone="us-east-1a", region="us-east-1")
        self.replica = Actor(self.kernel, "db-replica-1", zone="us-east-1b", region="us-east-1")
        self.replicas = [self.replica] + [
            Actor(self.kernel, f"db-replica-{n}", zone="us-east-1c", region="us-east-1") for n in range(2, replicas + 1)
        ]
        self.iot = Actor(self.kernel, "iot-core", zone="aws-managed", region="us-east-1")
        self.elsewhere = Actor(self.kernel, "monitor", zone="monitoring-net", region="monitoring")
        self.commits = _commits()
        self.plane = plane
        config = DurabilityConfig.model_validate({"failover": {"runbook": RUNBOOK, **(failover or {})}})
        self.failover = Failover(
            self.kernel,
            config,
            self.commits,
            plane,
            primary=self.primary,
            replicas=self.replicas,
            replica_lag=constant("50ms"),
            replica_wal=wal,
            disasters=faults or [],
            deep_probe=probe,  # type: ignore[arg-type]  # a stand-in for the Prober
            commands=commands,
            traffic=traffic,
        )
        components: dict[str, object] = {"db-primary": self.failover, "us-east-1": self.failover}
        components.update(dict.fromkeys((r.name for r in self.replicas), self.failover))
        self.timeline = FaultTimeline(self.kernel, faults or [], components)

    def up(self) -> dict[str, bool]:
        return {name: actor.up for name, actor in self.kernel.actors.items()}

    def run_to(self, t: float) -> None:
        self.kernel.run(until=t)


def disk_loss(target: str, at: float) -> DiskLoss:
    return DiskLoss.model_validate({"kind": "disk_loss", "target": target, "at": at})


def outage(at: float, lasting: float) -> RegionOutage:
    return RegionOutage.model_validate({"kind": "region_outage", "target": "us-east-1", "at": at, "for": lasting})


def test_failover_is_a_disaster_target() -> None:
    assert isinstance(World().failover, DisasterTarget)


def test_primary_loss_promotes_a_replica_rpo_is_the_wal_never_shipped() -> None:
    plane = Plane(None)
    world = World(
        {"promote_time": "30s"},
        plane=plane,
        wal={"db-replica-1": Wal(998.5, 1100.0)},
        faults=[disk_loss("db-primary", 1000.0)],
    )
    world.run_to(1000.0 + 239.0)
    # RTO = detect 60 + decide 120 + promote 30 + dns 30 = 240 s; only the primary is down
    assert world.up() == {"db-primary": False, "db-replica-1": True, "iot-core": True, "monitor": True}
    world.run_to(1000.0 + 241.0)
    assert world.primary.up
    (entry,) = world.failover.summary()
    assert entry["path"] == "promote-replica"
    assert entry["promoted"] == "db-replica-1"
    assert entry["rto_s"] == 240.0
    assert entry["service_back_at"] == 1240.0
    # its backlog is replayed by 1100, before the team reaches the data step at 1180: no wait
    assert entry["step_s"] == {"detect": 60.0, "decide": 120.0, DATA_STEP: 30.0, "dns": 30.0}
    names = [s["name"] for s in entry["steps"]]
    assert names == ["detect", "decide", "replay the WAL already received", "promote a replica", "dns"]
    # RPO: the commits from 998.5 on never reached the replica -- commands at 998.5 and 999.5,
    # readings at 999 (7) and 1000 (3); users 0.01/s x 1.5 s = 0.015 rows -> none whole
    assert entry["rpo_s"] == pytest.approx(1.5)
    assert entry["recovered_to"] < 998.5
    assert entry["rows_lost"] == {"readings": 10, "device_commands": 2, "users": 0}
    assert entry["actors_down"] == ["db-primary"]
    assert entry["restore"] is None
    assert plane.calls == []  # promoted: nothing restored
    assert plane.lost == [(1000.0, entry["recovered_to"], 1240.0)]


def test_promotion_without_a_replay_position_draws_the_replication_lag() -> None:
    world = World(faults=[disk_loss("db-primary", 1000.0)])
    world.run_to(1001.0)
    (entry,) = world.failover.summary()
    assert entry["rpo_s"] == pytest.approx(0.05)  # postgres.replication_lag, a constant 50 ms here
    assert entry["rows_lost"]["readings"] == 3  # only the commit at the disaster's instant
    assert [s["name"] for s in entry["steps"]] == ["detect", "decide", "promote a replica", "dns"]  # no backlog


def test_a_promoted_replica_loses_a_few_ms_and_its_replay_backlog_lengthens_the_rto() -> None:
    """A standby 240 s behind in replay but with every commit but the last 5 ms received."""
    world = World(
        {"promote_time": "30s"}, wal={"db-replica-1": Wal(999.995, 1240.0)}, faults=[disk_loss("db-primary", 1000.0)]
    )
    world.run_to(1001.0)
    (entry,) = world.failover.summary()
    assert entry["rpo_s"] == pytest.approx(0.005)
    assert entry["rows_lost"] == {"readings": 3, "device_commands": 0, "users": 0}  # the commit at 1000 only
    # the standby replays from the disaster on; the team reaches the data step at 180 s, and
    # waits for the 60 s left of the backlog, then promotes (30 s), then DNS (30 s)
    replay = next(s for s in entry["steps"] if s["name"] == "replay the WAL already received")
    assert (replay["start_s"], replay["seconds"]) == (180.0, 60.0)
    assert entry["step_s"][DATA_STEP] == 90.0
    assert entry["rto_s"] == 300.0
    world.run_to(1299.0)
    assert not world.primary.up
    world.run_to(1301.0)
    assert world.primary.up


def test_a_backlog_longer_than_the_runbook_before_the_data_step_sets_the_rto() -> None:
    world = World(
        {"promote_time": "30s"}, wal={"db-replica-1": Wal(None, 1600.0)}, faults=[disk_loss("db-primary", 1000.0)]
    )
    world.run_to(1001.0)
    (entry,) = world.failover.summary()
    assert entry["rpo_s"] == 0.0  # everything had arrived
    assert entry["rows_lost"] == {"readings": 0, "device_commands": 0, "users": 0}
    # backlog done at 600 s, then promote 30 and DNS 30
    assert entry["rto_s"] == 660.0


def test_the_most_advanced_replica_is_promoted() -> None:
    # replica 1 is caught up in replay but lacks the last 1.5 s; replica 2 has a replay backlog
    # but lacks only the last 0.1 s: replica 2 loses less
    wal = {"db-replica-1": Wal(998.5, 1000.0), "db-replica-2": Wal(999.9, 1300.0)}
    world = World({"promote_time": "30s"}, wal=wal, replicas=2, faults=[disk_loss("db-primary", 1000.0)])
    world.run_to(1001.0)
    (entry,) = world.failover.summary()
    assert entry["promoted"] == "db-replica-2"
    assert entry["rpo_s"] == pytest.approx(0.1)
    assert entry["rto_s"] == 60.0 + 120.0 + 120.0 + 30.0 + 30.0  # 120 s of backlog left at 180 s
    assert wal["db-replica-1"].asked == wal["db-replica-2"].asked == [1000.0]


def test_with_equal_wal_received_the_replica_done_replaying_first_is_promoted() -> None:
    wal = {"db-replica-1": Wal(None, 1500.0), "db-replica-2": Wal(None, 1100.0)}
    world = World(wal=wal, replicas=2, faults=[disk_loss("db-primary", 1000.0)])
    world.run_to(1001.0)
    assert world.failover.summary()[0]["promoted"] == "db-replica-2"


def test_a_replica_that_is_down_is_not_promoted_and_without_one_the_primary_is_restored() -> None:
    plane = Plane(recovered_before=600.0)
    wal = {"db-replica-1": Wal(None, 1000.0), "db-replica-2": Wal(999.0, 1000.0)}
    world = World(
        plane=plane,
        wal=wal,
        replicas=2,
        faults=[disk_loss("db-replica-1", 900.0), disk_loss("db-primary", 1000.0), disk_loss("db-primary", 90_000.0)],
    )
    world.run_to(1001.0)
    entry = world.failover.summary()[1]
    assert entry["promoted"] == "db-replica-2"  # replica 1 is being rebuilt
    for replica in world.replicas:  # both out later on (replica 1 is rebuilt by then)
        world.kernel.call_later(88_000.0, replica.crash, 10_000.0)
    world.run_to(90_001.0)
    last = world.failover.summary()[2]
    assert last["path"] == "restore-no-replica"
    assert last["promoted"] is None
    assert plane.calls == [90_000.0]


def test_primary_loss_restored_from_backups() -> None:
    plane = Plane(recovered_before=3600.0)
    world = World({"on_primary_loss": "restore"}, plane=plane, faults=[disk_loss("db-primary", 4000.0)])
    world.run_to(4001.0)
    assert plane.calls == [4000.0]
    (entry,) = world.failover.summary()
    assert entry["path"] == "restore"
    # RTO = 60 + 120 + (250 + 10 + 1000) + 30
    assert entry["rto_s"] == 1470.0
    assert entry["step_s"][DATA_STEP] == 1260.0
    assert [s["name"] for s in entry["steps"]][2:5] == [
        "restore: copy base backup",
        "restore: fetch WAL",
        "restore: replay WAL",
    ]
    assert entry["rpo_s"] == 3600.0
    # lost: commits in (400, 4000]: readings 10+7+3, commands 3, users 0.01 x 3600 = 36
    assert entry["rows_lost"] == {"readings": 20, "device_commands": 3, "users": 36}
    assert entry["restore"]["stop_reason"] == "segment 43 missing in the archive"
    assert entry["restore"]["replayed_segments"] == 42
    world.run_to(4000.0 + 1469.0)
    assert not world.primary.up
    world.run_to(4000.0 + 1471.0)
    assert world.primary.up


def test_primary_loss_with_no_usable_backup_never_recovers() -> None:
    world = World({"on_primary_loss": "restore"}, plane=Plane(None), faults=[disk_loss("db-primary", 1000.0)])
    world.run_to(50_000.0)
    assert not world.primary.up
    (entry,) = world.failover.summary()
    assert entry["recovered"] is False
    assert entry["rto_s"] is None
    assert entry["service_back_at"] is None
    assert entry["step_s"][DATA_STEP] is None  # infinite: no number
    assert entry["rpo_s"] == 1000.0  # the whole history
    assert entry["rows_lost"] == {"readings": 70, "device_commands": 3, "users": 10}
    json.dumps(world.failover.summary(), allow_nan=False)


def test_replica_loss_rebuilds_it_and_loses_nothing() -> None:
    world = World(
        {"promote_time": "30s"},
        faults=[disk_loss("db-replica-1", 1000.0)],
    )
    config = world.failover.config
    world.run_to(1001.0)
    (entry,) = world.failover.summary()
    assert entry["path"] == "rebuild-replica"
    assert entry["rpo_s"] == 0.0
    assert entry["rows_lost"] == {"readings": 0, "device_commands": 0, "users": 0}
    # size at 1000 s: initial 50 GB + rows x bytes (readings 70 x 100, commands 3 x 200, users 10 x 1000)
    size = config.backups.initial_size + 7000 + 600 + 10_000
    copy = size / config.backups.throughput
    # WAL of the last hour (here the whole 1000 s): 7000 + 600 + users 0.01 x 1000 x 1000
    wal_rate = (7000.0 + 600.0 + 10_000.0) / 1000.0
    catch_up = wal_rate * copy / config.restore.replay_rate
    assert entry["step_s"] == {"detect": 60.0, DATA_STEP: pytest.approx(copy + catch_up)}
    assert entry["rto_s"] == pytest.approx(60.0 + copy + catch_up)
    assert world.up() == {"db-primary": True, "db-replica-1": False, "iot-core": True, "monitor": True}
    world.run_to(1000.0 + entry["rto_s"] + 1.0)
    assert world.replica.up


def test_unknown_disk_is_a_model_error() -> None:
    world = World()
    with pytest.raises(ModelDefinitionError, match="no database node"):
        world.failover.lose_disk("redis")


def test_region_outage_takes_exactly_the_regions_actors_out_until_the_rto() -> None:
    world = World(
        {"cross_region_replica": True, "cross_region_lag": "2s", "promote_time": "30s"},
        faults=[outage(1000.0, 8 * 3600.0)],
    )
    world.run_to(1000.5)
    assert world.up() == {"db-primary": False, "db-replica-1": False, "iot-core": False, "monitor": True}
    # RTO = 60 + 120 + promote 30 + 30 + warm 300 = 540 s
    world.run_to(1000.0 + 539.0)
    assert not any(world.up()[name] for name in ("db-primary", "db-replica-1", "iot-core"))
    world.run_to(1000.0 + 541.0)
    assert all(world.up().values())
    (entry,) = world.failover.summary()
    assert entry["path"] == "promote-cross-region-replica"
    assert entry["rto_s"] == 540.0
    assert entry["service_back_at"] == 1540.0
    assert entry["rpo_s"] == 2.0
    assert entry["rows_lost"] == {"readings": 10, "device_commands": 2, "users": 0}
    assert entry["region_back_at"] == 1000.0 + 8 * 3600.0
    assert entry["actors_down"] == ["db-primary", "db-replica-1", "iot-core"]
    world.run_to(1000.0 + 8 * 3600.0 + 1.0)
    assert all(world.up().values())  # the region's return changes nothing: the DR region serves


def test_region_outage_restored_in_the_dr_region() -> None:
    plane = Plane(recovered_before=600.0)
    world = World(plane=plane, faults=[outage(1000.0, 8 * 3600.0)])
    world.run_to(1001.0)
    (entry,) = world.failover.summary()
    assert entry["path"] == "restore-in-dr-region"
    assert entry["rto_s"] == 60.0 + 120.0 + 1260.0 + 30.0 + 300.0
    assert entry["rpo_s"] == 600.0
    assert entry["rows_lost"] == {"readings": 20, "device_commands": 3, "users": 6}  # commits in (400, 1000]


def test_region_back_before_the_decision_means_no_failover() -> None:
    plane = Plane(recovered_before=600.0)
    world = World(plane=plane, faults=[outage(1000.0, 100.0)])  # decision due at 180 s
    world.run_to(1099.0)
    assert not world.primary.up
    world.run_to(1101.0)
    assert all(world.up().values())
    (entry,) = world.failover.summary()
    assert entry["path"] == "region-returned"
    assert entry["rto_s"] == 100.0
    assert entry["service_back_at"] == 1100.0
    assert entry["rpo_s"] == 0.0
    assert entry["rows_lost"] == {"readings": 0, "device_commands": 0, "users": 0}
    assert entry["step_s"] == {"detect": 60.0, "decide": 40.0, DATA_STEP: 0.0, "dns": 0.0, "warm caches": 0.0}
    # nobody restored anything; the backup plane hears the primary back at the region's return
    assert entry["restore"] is None
    assert plane.calls == []
    assert plane.lost == [(1000.0, 1000.0, 1100.0)]


def test_region_back_after_the_decision_the_failover_goes_on() -> None:
    world = World(plane=Plane(recovered_before=600.0), faults=[outage(1000.0, 181.0)])
    world.run_to(1000.0 + 1769.0)
    assert not world.primary.up  # committed at 180 s: the restore runs to its end
    world.run_to(1000.0 + 1771.0)
    (entry,) = world.failover.summary()
    assert entry["path"] == "restore-in-dr-region"
    assert entry["service_back_at"] == 2770.0
    assert entry["rpo_s"] == 600.0
    assert entry["restore"]["stop_reason"] == "segment 43 missing in the archive"


def test_a_region_outage_tells_the_backup_plane_the_primary_is_lost() -> None:
    plane = Plane(recovered_before=600.0)
    world = World(plane=plane, faults=[outage(1000.0, 8 * 3600.0)])
    world.run_to(1001.0)
    assert plane.lost == [(1000.0, 400.0, 1000.0 + 60.0 + 120.0 + 1260.0 + 30.0 + 300.0)]


def test_a_restore_that_cannot_work_leaves_the_team_waiting_for_the_region() -> None:
    world = World(plane=Plane(None), faults=[outage(1000.0, 3 * 3600.0)])
    world.run_to(1000.0 + 3 * 3600.0 + 1.0)
    (entry,) = world.failover.summary()
    assert entry["path"] == "restore-in-dr-region-failed-waited-for-region"
    assert entry["service_back_at"] == 1000.0 + 3 * 3600.0
    assert entry["rto_s"] == 3 * 3600.0
    assert entry["rpo_s"] == 0.0
    assert entry["restore"]["stop_reason"] == "no usable base backup"  # tried, and said why it failed
    assert all(world.up().values())


def test_a_region_without_actors_is_a_model_error() -> None:
    with pytest.raises(ModelDefinitionError, match="no actor"):
        World().failover.lose_region("eu-west-1", 100.0)


def test_results_are_there_before_any_disaster_and_json_able() -> None:
    world = World(plane=Plane(600.0), faults=[outage(1000.0, 3600.0), disk_loss("db-replica-1", 500.0)])
    before = world.failover.summary()
    assert [(e["kind"], e["happened"]) for e in before] == [("disk_loss", False), ("region_outage", False)]
    assert before[1]["rto_s"] is None
    assert before[1]["rows_lost"] == {"readings": None, "device_commands": None, "users": None}
    assert before[1]["step_s"] == dict.fromkeys(["detect", "decide", DATA_STEP, "dns", "warm caches"])
    assert before[0]["step_s"] == dict.fromkeys(["detect", DATA_STEP])
    json.dumps(before, allow_nan=False)
    keys = list(world.failover.summary_by_name())
    assert keys == ["disk_loss@db-replica-1", "region_outage@us-east-1"]
    world.run_to(3000.0)
    after = world.failover.summary()
    assert [e["happened"] for e in after] == [True, True]
    json.dumps(after, allow_nan=False)


def test_repeated_disasters_are_keyed_apart() -> None:
    world = World(faults=[disk_loss("db-primary", 100.0), disk_loss("db-primary", 5000.0)])
    assert list(world.failover.summary_by_name()) == ["disk_loss@db-primary", "disk_loss@db-primary#2"]


def test_same_seed_same_recovery_with_the_presets() -> None:
    def run(seed: int) -> list[dict[str, Any]]:
        world = World({"runbook": "manual"}, plane=Plane(600.0), seed=seed, faults=[outage(1000.0, 86400.0)])
        world.run_to(90_000.0)
        return world.failover.summary()

    assert run(5) == run(5)
    assert run(5)[0]["rto_s"] != run(6)[0]["rto_s"]
    entry = run(5)[0]
    assert list(entry["step_s"]) == [
        "detect",
        "respond and escalate",
        "decide to fail over",
        "find out how to recover",
        DATA_STEP,
        "repoint clients and DNS",
        "DNS caches expire",
        "warm caches",
        "verify and reopen",
    ]
    assert entry["rto_s"] == pytest.approx(sum(entry["step_s"].values()))


def test_deep_health_passing_again_ends_the_rto() -> None:
    probe = Probe()
    world = World(
        {"cross_region_replica": True, "cross_region_lag": "2s", "promote_time": "30s"},
        faults=[outage(1000.0, 8 * 3600.0)],
        probe=probe,
    )
    world.kernel.call_later(1010.0, probe.turn, False)  # the probe notices the outage
    world.kernel.call_later(1300.0, probe.turn, True)  # a spurious pass before the service is back: ignored
    world.kernel.call_later(1310.0, probe.turn, False)
    world.kernel.call_later(1555.0, probe.turn, True)  # passes 15 s after the service is back at 1540
    world.run_to(2000.0)
    (entry,) = world.failover.summary()
    assert probe.seen == [False, True, False, True]  # the monitor's own hook still runs
    assert entry["deep_healthy_at"] == 1555.0
    assert entry["rto_deep_s"] == 555.0
    assert entry["rto_s"] == 540.0


def test_deep_health_already_passing_at_the_return() -> None:
    probe = Probe()
    world = World(faults=[disk_loss("db-primary", 1000.0)], probe=probe)
    world.run_to(2000.0)
    (entry,) = world.failover.summary()
    assert entry["deep_healthy_at"] == entry["service_back_at"] == 1000.0 + entry["rto_s"]


def test_commands_and_traffic_of_the_outage_window() -> None:
    commands = Commands()
    for i, t in enumerate((900.0, 1000.0, 1200.0, 1400.0, 1600.0)):
        commands.started[f"i{i}"] = t
    commands.results = {"i0": (Intent(True), 901.0), "i1": (Intent(False), 1003.0), "i2": (Intent(False), 1210.0)}
    counter = {"readings_emitted": 0.0}

    def tick() -> None:
        counter["readings_emitted"] += 1

    world = World(
        {"cross_region_replica": True, "promote_time": "30s"},
        faults=[outage(1000.0, 8 * 3600.0)],
        commands=commands,
        traffic=lambda: dict(counter),
    )
    for t in range(500, 2000, 100):
        world.kernel.call_later(float(t) + 0.5, tick)
    world.run_to(2000.0)
    (entry,) = world.failover.summary()
    # window [1000, 1540): i1, i2, i3 started in it; i3 has no answer yet
    assert entry["commands"] == {"started": 3, "accepted": 0, "failed": 2, "unanswered": 1}
    # ticks at 500.5 ... 900.5 before (5); 1000.5 ... 1500.5 during (6)
    assert entry["traffic"]["at_disaster"] == {"readings_emitted": 5.0}
    assert entry["traffic"]["during"] == {"readings_emitted": 6.0}


def test_a_late_start_matches_the_planned_disaster() -> None:
    """The detailed world may start late (durability.detail_from): the disaster is still the planned one."""
    at = 2 * 86400.0 + 0.1
    world = World({"promote_time": "30s"}, faults=[disk_loss("db-primary", at)], start=2 * 86400.0 - 3600.3)
    world.run_to(at + 1.0)
    (entry,) = world.failover.summary()
    assert entry["happened"] is True
    assert entry["rto_s"] == 240.0


def test_a_second_disk_loss_of_a_primary_being_recovered_is_already_down() -> None:
    plane = Plane(None)
    world = World(
        {"promote_time": "30s"},
        plane=plane,
        faults=[disk_loss("db-primary", 1000.0), disk_loss("db-primary", 1100.0), disk_loss("db-primary", 2000.0)],
    )
    world.run_to(1239.0)
    assert not world.primary.up
    world.run_to(1241.0)
    assert world.primary.up  # back with the first recovery, as its record says
    world.run_to(2001.0)
    first, second, third = world.failover.summary()
    assert (first["path"], first["service_back_at"], first["rto_s"]) == ("promote-replica", 1240.0, 240.0)
    assert second["happened"] is True
    assert second["path"] == "already-down"
    assert second["merged_into"] == "disk_loss@db-primary"
    assert second["key"] == "disk_loss@db-primary#2"
    for field in ("rpo_s", "rto_s", "recovered", "recovered_to", "service_back_at", "restore"):
        assert second[field] is None, field
    assert second["rows_lost"] == {"readings": None, "device_commands": None, "users": None}
    assert second["commands"] == dict.fromkeys(["started", "accepted", "failed", "unanswered"])
    assert second["steps"] == []
    # after the first recovery a disk loss is a new disaster with its own runbook
    assert (third["path"], third["rto_s"], third["merged_into"]) == ("promote-replica", 240.0, None)
    assert [at for at, _, _ in plane.lost] == [1000.0, 2000.0]
    json.dumps(world.failover.summary(), allow_nan=False)


def test_a_region_outage_after_the_primary_is_lost_for_good_is_already_down() -> None:
    plane = Plane(None)
    world = World(
        {"on_primary_loss": "restore"},
        plane=plane,
        faults=[disk_loss("db-primary", 1000.0), outage(2000.0, 100.0)],
    )
    world.run_to(2050.0)
    assert world.up() == {"db-primary": False, "db-replica-1": False, "iot-core": False, "monitor": True}
    world.run_to(2101.0)
    # the region is back; the primary, lost for good, is not
    assert world.up() == {"db-primary": False, "db-replica-1": True, "iot-core": True, "monitor": True}
    lost, region = world.failover.summary()
    assert lost["recovered"] is False
    assert region["path"] == "already-down"  # not "region-returned" with RPO 0
    assert region["merged_into"] == "disk_loss@db-primary"
    assert region["rpo_s"] is None and region["rto_s"] is None and region["service_back_at"] is None
    assert region["actors_down"] == ["db-replica-1", "iot-core"]
    assert region["region_back_at"] == 2100.0
    assert plane.calls == [1000.0]  # no restore for the outage
    assert plane.lost == [(1000.0, None, None)]  # told once, at the disk loss


def test_a_replica_disk_loss_during_a_region_outage_is_already_down() -> None:
    world = World(
        {"cross_region_replica": True, "cross_region_lag": "2s"},
        faults=[outage(1000.0, 8 * 3600.0), disk_loss("db-replica-1", 1100.0)],
    )
    world.run_to(1101.0)
    _, replica = world.failover.summary()
    assert replica["path"] == "already-down"
    assert replica["merged_into"] == "region_outage@us-east-1"
