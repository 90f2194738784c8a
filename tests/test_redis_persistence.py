"""Redis persistence and crashes (review C4): what a crash loses, key by key, and how it comes back.

Hand-worked cases first (the pure rules of :mod:`models.logic.redis_persistence`), then a
cluster driven by hand on a bare kernel (writes at chosen times, a crash, the rebuild), then
the twin: determinism, a run without crashes unchanged by the persistence settings, and the
C4 scenario's story.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from models.config import RedisConfig, Scenario
from models.logic.durability import AofEverysec, RdbSnapshots
from models.logic.redis_persistence import (
    FAMILIES,
    ClusterFailover,
    SessionKeys,
    by_family,
    cluster_failover_s,
    family_of,
    keys_written_after,
    persisted_point_s,
)
from models.names import REDIS
from models.ops import RedisPipeline
from models.redis import RECENT_WRITES_S, RedisCluster
from models.results import summarise
from models.twin import TWIN, build
from sim.cli import run_scenario
from sim.kernel import Kernel
from sim.ops import Rejected
from sim.variants import variant_scenarios
from tests.conftest import scenario

# --------------------------------------------------------------------------------------------
# The pure rules, by hand


def test_rdb_loses_everything_since_the_last_completed_snapshot_began() -> None:
    # Snapshots fork at 1 h, 7 h, 13 h ... and take 30 s to write.
    rdb = RdbSnapshots(every_s=6 * 3600, first_s=3600, duration_s=30)
    assert persisted_point_s(10 * 3600, rdb) == 7 * 3600  # 3 h lost
    # 10 s into the 7 h snapshot's write: it does not count yet, the 1 h one does.
    assert persisted_point_s(7 * 3600 + 10, rdb) == 3600
    # Before any snapshot completed: everything since the data was loaded.
    assert persisted_point_s(3600 + 10, rdb, data_since_s=0.0) == 0.0


def test_aof_everysec_loses_the_time_since_the_last_fsync_at_most_two_seconds() -> None:
    assert persisted_point_s(100.9, AofEverysec(phase_s=0.25)) == pytest.approx(100.25)
    # A stalled fsync: Redis writes anyway after 2 s, so no more than 2 s are lost.
    assert persisted_point_s(100.9, AofEverysec(phase_s=0.25, fsync_stall_s=0.5)) == pytest.approx(99.75)
    assert persisted_point_s(100.9, AofEverysec(phase_s=0.25, fsync_stall_s=5.0)) == pytest.approx(98.9)


def test_keys_written_after_the_point_are_lost_a_write_at_the_point_is_kept() -> None:
    last_write = {"device:1": 10.0, "device:2": 20.0, "session:7": 25.0, "device:3": 30.0}
    assert keys_written_after(last_write, 20.0) == ["session:7", "device:3"]
    assert keys_written_after(last_write, 5.0, keep=lambda key: key.startswith("device:")) == [
        "device:1",
        "device:2",
        "device:3",
    ]
    assert keys_written_after(last_write, 30.0) == []


def test_families_by_prefix_every_family_always_listed() -> None:
    assert family_of("device:17") == "device_state"
    assert family_of("session:3") == "sessions"
    assert family_of("idem:abc") == "idempotency"
    assert family_of("ratelimit:user:9") == "rate_limit"
    assert family_of("devices") == "other"
    assert by_family(["device:1", "device:2", "session:1"]) == {
        "device_state": 2,
        "sessions": 1,
        "idempotency": 0,
        "rate_limit": 0,
        "other": 0,
    }
    assert tuple(by_family([])) == FAMILIES


def test_cluster_failover_timing_and_the_majority_rule() -> None:
    settings = ClusterFailover(node_timeout_s=15.0)
    # 15 s timeout + 1 s to FAIL + (0.5 + 0.5 x 0.5) s replica delay + 10 ms election
    assert cluster_failover_s(
        settings, masters=3, masters_down=1, detection_s=1.0, delay_u=0.5, election_s=0.01
    ) == pytest.approx(16.76)
    # rank 1 waits a second more
    assert cluster_failover_s(
        ClusterFailover(15.0, rank=1), masters=3, masters_down=1, detection_s=0.0, delay_u=0.0, election_s=0.0
    ) == pytest.approx(16.5)
    # no majority of masters alive: no FAIL, no election, no failover
    for masters, down in ((3, 2), (2, 1), (1, 1), (4, 2)):
        assert (
            cluster_failover_s(settings, masters=masters, masters_down=down, detection_s=0, delay_u=0, election_s=0)
            is None
        )
    assert cluster_failover_s(settings, masters=5, masters_down=2, detection_s=0, delay_u=0, election_s=0) == 15.5


def test_sessions_lost_and_when_their_users_are_back() -> None:
    # Three users, logged in at 0, 300 and 600 s, refreshing every 900 s.
    sessions = SessionKeys(np.array([0.0, 300.0, 600.0]), 900.0)
    assert sessions.last_write(1000.0).tolist() == [900.0, 300.0, 600.0]
    lost = sessions.lost(1000.0, 500.0)
    assert lost.tolist() == [True, False, True]
    # Redis serves again at 1100: user 0 refreshes at 1800, user 2 at 1500.
    assert sessions.rebuilt_at(lost, 1100.0) == 1800.0
    assert sessions.lost(1000.0, 500.0, np.array([False, True, True])).tolist() == [False, False, True]
    assert sessions.rebuilt_at(sessions.lost(1000.0, 950.0), 1100.0) is None


# --------------------------------------------------------------------------------------------
# A cluster driven by hand


def _cluster(session_users: int = 0, **settings: Any) -> tuple[Kernel, RedisCluster]:
    kernel = Kernel(11)
    config = RedisConfig(**{"rdb_every": "1h", "rdb_phase": "10m", "rdb_duration": "30s", **settings})
    return kernel, RedisCluster(kernel, config, zone="z", region="r", session_users=session_users)


def _write(kernel: Kernel, cluster: RedisCluster, t: float, *keys: str) -> None:
    kernel.env.run(until=t)
    cluster.handle(RedisPipeline(REDIS, [("HSET", key, (t, 100.0)) for key in keys]), "test")


def _keys_on(cluster: RedisCluster, master: int, n: int) -> list[str]:
    return [key for key in (f"device:{i}" for i in range(100)) if cluster.master_index(key) == master][:n]


def test_cluster_crash_with_rdb_loses_the_keys_written_after_the_snapshot() -> None:
    # Snapshots fork at 600 s, 4200 s, ... (every hour, phase 10 min) and take 30 s.
    kernel, cluster = _cluster()
    _write(kernel, cluster, 100, "device:1")
    _write(kernel, cluster, 700, "device:2")
    _write(kernel, cluster, 800, "idem:x")
    _write(kernel, cluster, 4100, "device:1")
    _write(kernel, cluster, 4210, "device:2")
    _write(kernel, cluster, 4250, "device:3")
    kernel.env.run(until=4300)
    cluster.crash(30.0)
    figures = cluster.stats()["persistence"]
    (crash,) = figures["history"]
    assert crash["kind"] == "cluster_restart" and crash["source"] == "rdb"
    assert crash["persisted_at_s"] == 4200 and crash["loss_window_s"] == 100
    assert crash["writes_lost"] == 2  # device:2 at 4210, device:3 at 4250
    assert crash["keys_lost"]["device_state"] == 2 and crash["keys_lost"]["idempotency"] == 0
    assert sorted(cluster.data) == ["device:1", "idem:x"]
    assert crash["rebuilt_after_s"] is None and figures["still_lost"] == 2


def test_writes_lost_counted_from_a_snapshot_no_write_came_after() -> None:
    # No write since the 4200 s fork and the last one more than a minute before it: the write
    # count at the fork is the count at the crash, not something the recent window must know.
    kernel, cluster = _cluster()
    _write(kernel, cluster, 700, "device:1")
    _write(kernel, cluster, 4000, "device:2")
    kernel.env.run(until=4400)
    cluster.crash(30.0)
    (crash,) = cluster.stats()["persistence"]["history"]
    assert crash["persisted_at_s"] == 4200 and crash["writes_lost"] == 0
    assert crash["keys_lost"]["device_state"] == 0 and len(cluster.data) == 2


def test_a_crash_while_the_snapshot_is_written_falls_back_to_the_one_before() -> None:
    kernel, cluster = _cluster()
    _write(kernel, cluster, 100, "device:1")
    _write(kernel, cluster, 700, "device:2")
    _write(kernel, cluster, 800, "idem:x")
    _write(kernel, cluster, 4100, "device:1")
    _write(kernel, cluster, 4210, "device:2")
    kernel.env.run(until=4220)  # the 4200 s snapshot completes at 4230
    cluster.crash(30.0)
    (crash,) = cluster.stats()["persistence"]["history"]
    assert crash["persisted_at_s"] == 600 and crash["loss_window_s"] == 3620
    assert crash["writes_lost"] == 4  # 700, 800, 4100, 4210
    assert crash["keys_lost"]["device_state"] == 2 and crash["keys_lost"]["idempotency"] == 1
    assert cluster.data == {}


def test_rebuild_time_is_when_the_last_lost_device_reports_again() -> None:
    kernel, cluster = _cluster()
    _write(kernel, cluster, 4250, "device:2", "device:3")
    kernel.env.run(until=4300)
    cluster.crash(30.0)  # back at 4330
    kernel.env.run(until=4320)
    assert not cluster.up  # refusing every request until the restart
    _write(kernel, cluster, 4340, "device:2", "device:9")
    assert cluster.stats()["persistence"]["rebuilt_after_s"] is None  # device:3 still lost
    _write(kernel, cluster, 4400, "device:3")
    figures = cluster.stats()["persistence"]
    assert figures["rebuilt_after_s"] == 100
    assert figures["history"][0]["rewritten_by_reports"] == 2
    assert figures["still_lost"] == 0


def test_warm_up_from_postgres_restores_the_lost_values_at_its_rate() -> None:
    kernel, cluster = _cluster(rebuild_from_postgres=True, rebuild_rate=1.0)
    _write(kernel, cluster, 4250, "device:2")
    _write(kernel, cluster, 4260, "device:3")
    kernel.env.run(until=4300)
    cluster.crash(30.0)
    kernel.env.run(until=4329.5)
    assert "device:2" not in cluster.data
    kernel.env.run(until=4340)
    # one key at the restart (4330), the next a second later
    assert cluster.data == {"device:2": (4250, 100.0), "device:3": (4260, 100.0)}
    crash = cluster.stats()["persistence"]["history"][0]
    assert crash["restored_from_postgres"] == 2 and crash["rebuilt_after_s"] == 31


def test_nothing_lost_rebuilt_when_the_cluster_serves_again() -> None:
    kernel, cluster = _cluster(persistence="aof")
    _write(kernel, cluster, 100, "device:1")
    kernel.env.run(until=200)
    cluster.crash(45.0)
    kernel.env.run(until=300)
    figures = cluster.stats()["persistence"]
    assert figures["keys_lost"]["device_state"] == 0 and figures["rebuilt_after_s"] == 45
    assert figures["rdb_every_s"] is None


def test_cluster_crash_with_aof_loses_under_a_second() -> None:
    kernel, cluster = _cluster(persistence="aof")
    crash_at = 1000.0
    _write(kernel, cluster, crash_at - 3, "device:1")
    _write(kernel, cluster, crash_at, "device:2")
    cluster.crash(30.0)
    (crash,) = cluster.stats()["persistence"]["history"]
    assert crash["source"] == "aof"
    assert crash["loss_window_s"] == pytest.approx((crash_at - cluster.aof_phase) % 1.0)
    assert crash["loss_window_s"] < 1.0
    assert crash["writes_lost"] == 1 and list(cluster.data) == ["device:1"]


def test_master_crash_loses_its_writes_within_the_replica_lag() -> None:
    kernel, cluster = _cluster(replica_lag="500ms")
    mine, other = _keys_on(cluster, 1, 2), _keys_on(cluster, 0, 1)
    _write(kernel, cluster, 100, mine[0])
    _write(kernel, cluster, 109.8, mine[1])
    _write(kernel, cluster, 109.9, *other)
    kernel.env.run(until=110)
    cluster.masters[1].crash(30.0)
    (crash,) = cluster.stats()["persistence"]["history"]
    assert crash["kind"] == "master_failover" and crash["source"] == "replica"
    assert crash["loss_window_s"] == pytest.approx(0.5)
    assert crash["writes_lost"] == 1  # mine[1]: the other master's write at 109.9 is safe
    assert crash["keys_lost"]["device_state"] == 1
    assert mine[1] not in cluster.data and mine[0] in cluster.data and other[0] in cluster.data
    assert crash["available_after_s"] == 17.0  # failover_time, as before
    kernel.env.run(until=120)
    with pytest.raises(Rejected):
        cluster.handle(RedisPipeline(REDIS, [("GET", mine[0], None)]), "test")
    _write(kernel, cluster, 130, mine[1])
    figures = cluster.stats()
    assert figures["failovers"] == 1
    assert figures["persistence"]["history"][0]["requests_refused"] == 1
    assert figures["persistence"]["rebuilt_after_s"] == 20


def test_warm_up_after_a_master_failover_starts_when_the_replica_serves() -> None:
    kernel, cluster = _cluster(replica_lag="500ms", rebuild_from_postgres=True)
    key = _keys_on(cluster, 2, 1)[0]
    _write(kernel, cluster, 109.9, key)
    kernel.env.run(until=110)
    cluster.masters[2].crash(30.0)
    kernel.env.run(until=126.9)
    assert key not in cluster.data
    kernel.env.run(until=128)
    assert cluster.data[key] == (109.9, 100.0)
    assert cluster.stats()["persistence"]["rebuilt_after_s"] == pytest.approx(17.0)


def test_master_crash_lag_beyond_the_kept_window_is_not_counted() -> None:
    kernel, cluster = _cluster(replica_lag=RECENT_WRITES_S * 3)
    key = _keys_on(cluster, 0, 1)[0]
    for t in range(10, 400, 10):
        _write(kernel, cluster, t, key)
    cluster.masters[0].crash(30.0)
    crash = cluster.stats()["persistence"]["history"][0]
    assert crash["writes_lost"] is None and crash["keys_lost"]["device_state"] == 1


def test_cluster_failover_mode_without_majority_reloads_the_master_from_disk() -> None:
    kernel, cluster = _cluster(masters=2, failover="cluster")
    key = _keys_on(cluster, 1, 1)[0]
    _write(kernel, cluster, 700, key)  # after the 600 s snapshot
    kernel.env.run(until=1000)
    cluster.masters[1].crash(60.0)
    figures = cluster.stats()
    (crash,) = figures["persistence"]["history"]
    assert figures["failovers"] == 0
    assert crash["kind"] == "master_restart" and crash["source"] == "rdb"
    assert crash["persisted_at_s"] == 600 and crash["available_after_s"] == 60
    assert crash["keys_lost"]["device_state"] == 1


def test_cluster_failover_mode_promotes_within_the_cluster_spec_bounds() -> None:
    kernel, cluster = _cluster(failover="cluster")
    times = []
    for index in range(3):
        kernel.env.run(until=100.0 * (index + 1))
        cluster.masters[index].crash(30.0)
        times.append(cluster.masters[index].available_from - kernel.now)
    # node timeout 15 s + detection [0, 2) s + delay [0.5, 1) s + 10 ms election
    assert all(15.51 <= t < 18.01 for t in times) and len(set(times)) == 3
    assert cluster.stats()["failovers"] == 3


def test_sessions_lost_at_a_cluster_crash_follow_the_loss_window() -> None:
    kernel, rdb = _cluster(session_users=1000)
    kernel.env.run(until=4300)  # the 4200 s snapshot: 100 s lost out of a 900 s refresh period
    rdb.crash(30.0)
    lost = rdb.stats()["persistence"]["keys_lost"]["sessions"]
    assert 60 < lost < 170  # binomial(1000, 1/9): 111 +- 10
    kernel.env.run(until=5000)
    assert rdb.stats()["persistence"]["history"][0]["sessions_rebuilt_after_s"] is None  # not yet
    kernel.env.run(until=5300)
    # the lost sessions were refreshed in (4200, 4300]: their users are back 900 s later, in (5100, 5200]
    after = rdb.stats()["persistence"]["history"][0]["sessions_rebuilt_after_s"]
    assert 800 < after <= 900


# --------------------------------------------------------------------------------------------
# The twin


def _redis(result: dict[str, Any]) -> dict[str, Any]:
    return dict(result["components"]["redis"])


def test_no_crash_no_change_whatever_the_persistence() -> None:
    base = scenario("baseline").model_copy(update={"duration": 300.0})
    figures = []
    for redis in ({}, {"persistence": "aof", "rebuild_from_postgres": True}, {"failover": "cluster"}):
        spec = base.model_copy(update={"redis": base.redis.model_copy(update=redis)})
        figures.append(_redis(run_scenario(TWIN, spec, 5)))
    for one in figures:
        persistence = one.pop("persistence")
        assert persistence["crashes"] == 0 and persistence["history"] == []
        assert persistence["loss_window_s"] is None and persistence["rebuilt_after_s"] is None
        assert set(persistence["keys_lost"].values()) == {0}
    assert figures[0] == figures[1] == figures[2]
    assert figures[0]["keys"] > 0


def test_the_result_has_its_persistence_figures_before_the_run() -> None:
    paths = TWIN.result_paths(scenario("c4-redis-crash"))
    for name in ("loss_window_s", "writes_lost", "rebuilt_after_s", "keys_lost.device_state", "keys_lost.sessions"):
        assert f"components.redis.persistence.{name}" in paths


def _c4(seed: int, only: str | None = None) -> dict[str, dict[str, Any]]:
    """Each variant's (or ``only`` one's) Redis persistence figures, with a session per app and
    dashboard user."""
    results = {}
    for name, spec in variant_scenarios(scenario("c4-redis-crash")).items():
        if only is not None and name != only:
            continue
        assert isinstance(spec, Scenario)
        world = build(spec, seed)
        world.redis.session_users = spec.workload.mobile_users + spec.workload.dashboard_users
        world.kernel.run(until=spec.duration)
        results[name] = summarise(world)["components"]["redis"]["persistence"]
    return results


@pytest.fixture(scope="module")
def c4() -> dict[str, dict[str, Any]]:
    return _c4(7)


def test_c4_rdb_loses_hours_aof_a_second(c4: dict[str, dict[str, Any]]) -> None:
    rdb, aof = c4["as-designed"], c4["aof"]
    master, cluster = rdb["history"]
    assert master["kind"] == "master_failover" and master["loss_window_s"] == pytest.approx(0.001)
    assert cluster["kind"] == "cluster_restart"
    # the loss window is from the phase the run drew: the last snapshot fork before 7 h
    assert cluster["loss_window_s"] == pytest.approx(
        7 * 3600 - (rdb["rdb_phase_s"] + math.floor((7 * 3600 - 30 - rdb["rdb_phase_s"]) / 21600) * 21600)
    )
    assert rdb["keys_lost"]["device_state"] == 50  # every meter reported within the window
    assert rdb["keys_lost"]["sessions"] > 100
    assert aof["loss_window_s"] < 1.0 and aof["keys_lost"]["sessions"] < rdb["keys_lost"]["sessions"]
    assert aof["writes_lost"] < rdb["writes_lost"]


def test_c4_rebuild_from_reports_and_from_postgres(c4: dict[str, dict[str, Any]]) -> None:
    reports = c4["as-designed"]["history"][1]
    warm = c4["rebuild-from-postgres"]["history"][1]
    # restart at 2 min, then each meter's next report (every 60 s) through broker, stream and ingest
    assert 120 < reports["rebuilt_after_s"] < 240 and reports["rewritten_by_reports"] == 50
    assert warm["rebuilt_after_s"] == 120 and warm["restored_from_postgres"] == 50
    assert reports["requests_refused"] > 0  # ingest's state updates while every node was down


def test_c4_is_deterministic(c4: dict[str, dict[str, Any]]) -> None:
    assert _c4(7, "aof")["aof"] == c4["aof"]
    again, other = _c4(7, "as-designed")["as-designed"], _c4(8, "as-designed")["as-designed"]
    assert again == c4["as-designed"]
    assert other["rdb_phase_s"] != again["rdb_phase_s"] and other["loss_window_s"] != again["loss_window_s"]
