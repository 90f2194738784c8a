"""Streaming replicas serve data as of their replay position (issue 10, "Replica lag").

Hand-worked replay positions, reads that miss exactly the rows committed after the
replica's position, the commit hook, the write burst, bounded staleness, determinism.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from models.config import PostgresConfig, Scenario
from models.logic.analytics import AnalyticsSettings, energy_report
from models.names import ANOMALIES_TABLE, COMMANDS_TABLE, DB_PRIMARY, METRICS, READINGS_TABLE, db_replica
from models.ops import BulkInsert, Insert, Select, Update
from models.policies import RetryPolicy
from models.postgres import Database, Postgres
from models.readings import Reading, reading
from models.replication import LagRouter, RecentRows, ReplayStream, WriteBurst
from models.results import summarise
from models.twin import build
from sim.distributions import constant
from sim.driver import run_direct
from sim.errors import ModelDefinitionError
from sim.faults import FaultContext, FaultTimeline
from sim.kernel import Kernel
from sim.ops import Operation


def fixed(*values: float) -> Callable[[], float]:
    """A ship-delay source that returns ``values`` in turn, then the last one for ever."""
    source: Iterator[float] = itertools.chain(values, itertools.repeat(values[-1]))
    return lambda: next(source)


def burst(target: str = DB_PRIMARY, at: float = 0.0, lasting: float = 1.0, **fields: Any) -> WriteBurst:
    """A write burst fault as a scenario file would give it."""
    return WriteBurst.model_validate({"kind": "write_burst", "target": target, "at": at, "for": lasting, **fields})


# -- the replay model, by hand -------------------------------------------------------------------


def test_a_commit_is_replayed_after_its_ship_delay_and_its_bytes_at_the_replay_rate() -> None:
    stream = ReplayStream(1000.0, fixed(0.1))
    assert stream.commit(1, 0.0, 500.0) == pytest.approx(0.6)  # arrives 0.1, 500 B at 1000 B/s
    assert stream.commit(2, 0.2, 100.0) == pytest.approx(0.7)  # arrived 0.3, waits for commit 1
    assert stream.position(0.05) == (0, 0.0)  # as of the instant before commit 1
    assert stream.staleness(0.5) == pytest.approx(0.5)
    assert stream.position(0.65) == (1, 0.2)  # commit 1 replayed, commit 2 (at 0.2) not yet
    assert stream.position(0.7) == (2, 0.7)  # everything replayed: as of now
    assert stream.staleness(5.0) == 0.0  # an idle primary makes no lag
    assert stream.max_lag == pytest.approx(0.6)


def test_a_promotion_loses_only_the_wal_not_arrived_and_waits_for_the_replay_of_what_did() -> None:
    """A 240 s replay backlog, a 5 ms shipping delay: a promotion loses 5 ms, not 240 s."""
    stream = ReplayStream(1e6, fixed(0.005))
    assert stream.commit(1, 0.0, 240e6) == pytest.approx(240.005)  # arrives 0.005, 240 s to replay
    assert stream.commit(2, 10.0, 1000.0) == pytest.approx(240.006)  # arrives 10.005
    # at 10.002 commit 2 is on the wire: a promotion loses it, and waits for commit 1's replay
    assert stream.unshipped_since(10.002) == 10.0
    assert stream.replay_done_at(10.002) == pytest.approx(240.005)
    assert stream.staleness(10.002) == pytest.approx(10.002)  # what a read sees is another matter
    # at 10.005 both have arrived: nothing lost, the whole backlog to replay
    assert stream.unshipped_since(10.005) is None
    assert stream.replay_done_at(10.005) == pytest.approx(240.006)
    # nothing pending: nothing lost, nothing to wait for
    assert stream.unshipped_since(300.0) is None
    assert stream.replay_done_at(300.0) == 300.0
    # the oldest of several commits not arrived
    stream.commit(3, 400.0, 10.0)
    stream.commit(4, 400.001, 10.0)
    assert stream.unshipped_since(400.004) == 400.0
    assert stream.replay_done_at(400.004) == 400.004  # nothing arrived is left to replay


def test_the_replica_server_answers_a_promotion_s_questions() -> None:
    h = Harness()  # ship delay 1 s
    h.at(10.0).insert_readings((0, 9.0))
    replica, primary = h.replicas[0], h.primary
    assert replica.unshipped_since(10.5) == 10.0
    assert replica.replay_done_at(10.5) == 10.5  # nothing arrived yet
    assert replica.unshipped_since(11.5) is None
    assert primary.unshipped_since(11.5) is None and primary.replay_done_at(11.5) == 11.5


def test_wal_arrives_in_order_whatever_each_commit_s_delay() -> None:
    stream = ReplayStream(1e9, fixed(0.5, 0.1))
    stream.commit(1, 0.0, 0.0)  # arrives at 0.5
    assert stream.commit(2, 0.1, 0.0) == pytest.approx(0.5)  # its own delay says 0.2; the stream says 0.5


def test_a_burst_of_b_bytes_at_rate_r_drains_in_b_over_r_and_the_lag_grows_meanwhile() -> None:
    r = 100.0  # replay: 100 B/s; the burst writes 300 B/s for 10 s, one commit a second, no ship delay
    stream = ReplayStream(r, fixed(0.0))
    finishes = [stream.commit(k + 1, float(k), 300.0) for k in range(10)]
    assert finishes == pytest.approx([3.0 * (k + 1) for k in range(10)])  # commit k replayed at 3(k + 1)
    assert finishes[-1] == pytest.approx(3000.0 / r)  # B / r: the backlog drains at 30 s
    # At 10.5 s commits at 0, 1, 2 are replayed (at 3, 6, 9): the replica is as of 3 s, 7.5 s stale
    assert stream.position(10.5) == (3, 3.0)
    assert stream.staleness(10.5) == pytest.approx(7.5)
    assert stream.staleness(29.9) == pytest.approx(29.9 - 9.0)  # the last commit (at 9 s) still replaying
    assert stream.staleness(30.0) == 0.0
    assert stream.max_lag == pytest.approx(30.0 - 9.0)  # 10 s x (300/100 - 1) + one commit's replay


def test_replay_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="replay_rate"):
        ReplayStream(0.0, fixed(0.0))


# -- rows a replica has not replayed -------------------------------------------------------------


def test_recent_rows_answer_what_a_brute_force_scan_answers_across_growth_and_trims() -> None:
    rng = np.random.default_rng(3)
    recent = RecentRows(capacity=4)
    kept: list[tuple[int, int, float]] = []
    for commit in range(1, 400):
        n = int(rng.integers(0, 9))
        devices = rng.integers(0, 5, n)
        energy = rng.random(n)
        recent.append(commit, devices, energy)
        kept += [(commit, int(d), float(e)) for d, e in zip(devices, energy, strict=True)]
        if commit % 7 == 0:
            below = commit - int(rng.integers(0, 30))
            recent.trim(below)
            kept = [row for row in kept if row[0] >= below]
        assert len(recent) == len(kept)
        replayed = commit - int(rng.integers(0, 20))
        for device in range(5):
            rows = [e for c, d, e in kept if c > replayed and d == device]
            missed, energy_missed = recent.missed(device, replayed)
            assert missed == len(rows)
            assert energy_missed == pytest.approx(sum(rows))
        assert recent.rows_after(replayed) == sum(1 for c, _, _ in kept if c > replayed)


# -- the database: commit hook, reads as of the replay position -------------------------------------


class Harness:
    """A kernel with a primary and one replica on a shared database, driven by hand."""

    def __init__(self, config: PostgresConfig | None = None, *, replicas: int = 1, devices: int = 4) -> None:
        self.config = config or PostgresConfig(replication_lag=constant("1s"), replay_rate=1e9)
        self.kernel = Kernel(seed=1)
        self.kernel.metrics.declare(*METRICS)
        self.db = Database(self.config, report_every=3600.0, devices=devices)  # 1 W for 1 h = 1 Wh a row
        self.calls: list[tuple[str, float, int, float]] = []
        self.db.listeners.append(lambda *call: self.calls.append(call))
        self.primary = Postgres(self.kernel, DB_PRIMARY, self.config, self.db, role="primary", zone="a", region="r")
        self.replicas = [
            Postgres(self.kernel, db_replica(i + 1), self.config, self.db, role="replica", zone="b", region="r")
            for i in range(replicas)
        ]

    def at(self, t: float) -> Harness:
        if t > self.kernel.now:
            self.kernel.run(until=t)
        return self

    def write(self, op: Operation) -> Any:
        return self.primary.handle(op, "test")

    def insert_readings(self, *rows: tuple[int, float]) -> Any:
        readings: list[Reading] = [reading(device, t, 1.0, 230.0, 0.1, 2) for device, t in rows]
        return self.write(BulkInsert(DB_PRIMARY, READINGS_TABLE, readings))

    def summary(self, server: Postgres, device: int) -> dict[str, Any]:
        answer: dict[str, Any] = server.handle(Select(server.name, "energy_summary", {"device_id": device}), "test")
        return answer


def test_a_replica_read_misses_exactly_the_rows_committed_after_its_position() -> None:
    h = Harness()  # ship delay 1 s, replay all but instant
    h.at(10.0).insert_readings((0, 9.0), (1, 9.0))  # commit 1: replayed at 11.0
    h.at(10.5).insert_readings((0, 10.0), (0, 10.2), (2, 10.0))  # commit 2: replayed at 11.5
    h.at(11.2)
    replica = h.replicas[0]
    device0 = h.summary(replica, 0)
    assert device0["readings"] == 1 and device0["rows_missed"] == 2  # commit 2's two rows of device 0
    assert device0["energy_kwh"] == pytest.approx(0.001)  # 1 Wh of the 3 the primary holds
    assert device0["as_of_s"] == 10.5 and device0["staleness_s"] == pytest.approx(0.7)
    device1 = h.summary(replica, 1)
    assert device1["readings"] == 1 and device1["rows_missed"] == 0  # nothing of device 1 after its position
    primary = h.summary(h.primary, 0)
    assert primary["readings"] == 3 and primary["rows_missed"] == 0 and primary["staleness_s"] == 0.0
    h.at(11.6)  # commit 2 arrived at 11.5 and took 900 B / 1 GB/s more
    caught_up = h.summary(replica, 0)
    assert caught_up["readings"] == 3 and caught_up["rows_missed"] == 0 and caught_up["staleness_s"] == 0.0
    figures = replica.stats()
    assert (figures["reads_served"], figures["reads_missing_rows"], figures["rows_missed"]) == (3, 1, 2)
    assert figures["max_replay_lag_s"] == pytest.approx(1.0)
    assert figures["read_staleness_s"]["max"] == pytest.approx(0.7)
    assert len(h.db.recent_rows or ()) == 5  # at the last write the replica had replayed neither commit


def test_the_commit_hook_hears_every_committed_write_with_its_wal_bytes() -> None:
    h = Harness()
    wal = h.config.wal_bytes_per_row
    h.at(1.0).insert_readings((0, 0.5), (1, 0.5), (2, 0.5))
    h.write(BulkInsert(DB_PRIMARY, ANOMALIES_TABLE, [reading(3, 0.5, -1.0, 0.0, 0.0, 2)]))
    h.at(2.0)
    created = h.write(
        Insert(DB_PRIMARY, COMMANDS_TABLE, {"status": "pending", "idempotency_key": "k"}, "idempotency_key")
    )
    h.write(Insert(DB_PRIMARY, COMMANDS_TABLE, {"status": "pending", "idempotency_key": "k"}, "idempotency_key"))
    h.write(Update(DB_PRIMARY, COMMANDS_TABLE, created["id"], {"status": "sent"}))
    h.write(Update(DB_PRIMARY, COMMANDS_TABLE, 999, {"status": "sent"}))  # no such row: nothing written
    assert h.calls == [
        (READINGS_TABLE, 1.0, 3, 3 * wal[READINGS_TABLE]),
        (ANOMALIES_TABLE, 1.0, 1, wal[ANOMALIES_TABLE]),
        (COMMANDS_TABLE, 2.0, 1, wal[COMMANDS_TABLE]),  # the replayed idempotent insert writes nothing
        (COMMANDS_TABLE, 2.0, 1, wal[COMMANDS_TABLE]),
    ]
    assert h.db.commits == 4


def test_wal_figures_cover_the_twin_s_tables_and_users_and_keep_defaults_for_tables_left_out() -> None:
    defaults = PostgresConfig().wal_bytes_per_row
    assert {READINGS_TABLE, ANOMALIES_TABLE, COMMANDS_TABLE, "users"} <= set(defaults)
    assert PostgresConfig(wal_bytes_per_row={"readings": 500}).wal_bytes_per_row == {**defaults, "readings": 500.0}


def test_without_replicas_or_listeners_a_write_computes_nothing_for_replication() -> None:
    config = PostgresConfig()
    kernel = Kernel(seed=1)
    kernel.metrics.declare(*METRICS)
    db = Database(config, report_every=10.0, devices=2)
    primary = Postgres(kernel, DB_PRIMARY, config, db, role="primary", zone="a", region="r")
    primary.handle(BulkInsert(DB_PRIMARY, READINGS_TABLE, [reading(0, 0.0, 5.0, 230.0, 0.1, 2)]), "test")
    assert db.commits == 0 and db.recent_rows is None and db.rows == 1


# -- the write burst ---------------------------------------------------------------------------------


def test_a_write_burst_commits_a_chunk_per_interval_carrying_fractional_rows() -> None:
    h = Harness(PostgresConfig(replication_lag=constant("0s"), replay_rate=1000.0))
    FaultTimeline(h.kernel, [burst(DB_PRIMARY, 0.0, 4.0, rows_per_s=2.5)])
    h.at(10.0)
    per_row = h.config.wal_bytes_per_row[READINGS_TABLE]
    assert h.calls == [(READINGS_TABLE, float(t), rows, 2.5 * per_row) for t, rows in enumerate((2, 3, 2, 3))]
    assert h.db.burst_rows == {READINGS_TABLE: 10}
    assert h.db.rows == 0  # a backfill: no home's readings change


def test_a_write_burst_in_bytes_makes_a_replica_fall_behind_by_hand_worked_amounts() -> None:
    # 3000 B/s for 10 s against 1000 B/s of replay, no ship delay: the last chunk (at 9 s) is
    # replayed when all 30,000 B are, at 30 s; at 10.5 s commits at 0..2 s are replayed.
    h = Harness(PostgresConfig(replication_lag=constant("0s"), replay_rate=1000.0))
    FaultTimeline(h.kernel, [burst(DB_PRIMARY, 0.0, 10.0, bytes_per_s=3000.0)])
    replica = h.replicas[0]
    h.at(10.5)
    assert replica.staleness(10.5) == pytest.approx(7.5)
    h.at(29.0)
    assert replica.staleness(29.0) == pytest.approx(20.0)
    h.at(30.0)
    assert replica.staleness(30.0) == 0.0
    assert replica.stats()["max_replay_lag_s"] == pytest.approx(21.0)
    assert sum(wal for *_, wal in h.calls) == pytest.approx(30_000.0)


def test_write_burst_needs_one_rate_a_primary_and_a_known_table() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        burst(DB_PRIMARY, 0.0, 1.0)
    with pytest.raises(ValidationError, match="exactly one"):
        burst(DB_PRIMARY, 0.0, 1.0, rows_per_s=1.0, bytes_per_s=1.0)
    h = Harness()
    replica_burst = burst(db_replica(1), 0.0, 1.0, rows_per_s=1.0)
    with pytest.raises(ModelDefinitionError, match="read replica"):
        replica_burst.start(FaultContext(h.kernel))
    odd_table = burst(DB_PRIMARY, 0.0, 1.0, table="orders", rows_per_s=1.0)
    with pytest.raises(ModelDefinitionError, match="no WAL figure"):
        odd_table.start(FaultContext(h.kernel))


# -- bounded staleness ------------------------------------------------------------------------------


def test_the_lag_router_checks_every_period_and_keeps_its_verdict_between_checks() -> None:
    kernel = Kernel(seed=1)
    lags = {"r1": 0.0, "r2": 0.0}

    def lag_of(name: str) -> Callable[[float], float]:
        return lambda now: lags[name]

    router = LagRouter(kernel, {name: lag_of(name) for name in lags}, max_lag=30.0, every=10.0)
    assert router.lagging == frozenset()
    lags["r1"] = 31.0
    kernel.run(until=5.0)
    assert router.lagging == frozenset()  # not checked since
    kernel.run(until=10.5)  # the check at 10 s
    assert router.lagging == {"r1"}
    lags["r2"] = 45.0
    kernel.run(until=20.5)
    assert router.lagging == {"r1", "r2"}
    assert router.stats() == {"checks": 3, "replica_excluded": {"r1": 2, "r2": 1}}


def _routed(lagging: frozenset[str], primary: str | None = DB_PRIMARY) -> list[str]:
    settings = AnalyticsSettings(("r1", "r2"), RetryPolicy.fixed(), None, False)
    asked: list[str] = []

    def handle(op: Operation) -> Any:
        assert isinstance(op, Select)
        asked.append(op.target)
        return {"energy_kwh": 0.0, "staleness_s": 0.0}

    for first in range(2):
        response, _ = run_direct(energy_report(settings, 0, first, {}, lagging=lagging, primary=primary), handle)
        assert response.status == 200 and response.body["source"] == asked[-1]
    return asked


def test_reports_skip_lagging_replicas_and_go_to_the_primary_when_all_lag() -> None:
    assert _routed(frozenset()) == ["r1", "r2"]
    assert _routed(frozenset({"r1"})) == ["r2", "r2"]
    assert _routed(frozenset({"r1", "r2"})) == [DB_PRIMARY, DB_PRIMARY]
    assert _routed(frozenset({"r1", "r2"}), primary=None) == ["r1", "r2"]  # nowhere else to go


# -- the whole twin ------------------------------------------------------------------------------------


def _run(bounded: bool, seed: int = 5) -> dict[str, Any]:
    postgres: dict[str, Any] = {"replay_rate": 1e6}
    if bounded:
        postgres["max_replica_lag"] = 10.0
    scenario = Scenario.model_validate(
        {
            "name": "replica-lag-test",
            "duration": 600.0,
            "fleet": {"meters": 50, "controllables": 10},
            "workload": {"mobile_users": 10, "dashboard_users": 200, "queries_per_user_per_hour": 36},
            "postgres": postgres,
        }
    )
    world = build(scenario, seed)
    FaultTimeline(world.kernel, [burst(DB_PRIMARY, 60.0, 120.0, bytes_per_s=2e6)])
    world.kernel.run(until=scenario.duration)
    return summarise(world)


def test_dashboards_on_lagging_replicas_see_old_data_and_bounded_staleness_sends_them_to_the_primary() -> None:
    designed, bounded = _run(bounded=False), _run(bounded=True)
    engine, guarded = designed["components"]["analytics-engine"], bounded["components"]["analytics-engine"]
    # 2 MB/s against 1 MB/s of replay for 120 s: the replicas fall up to 120 s behind.
    assert designed["components"]["db-replica-1"]["max_replay_lag_s"] == pytest.approx(120.0, abs=2.0)
    assert engine["staleness_s"]["max"] > 100 and engine["answers_missing_rows"] > 50
    assert engine["answers_from_primary"] == 0 and "lag_router" not in engine
    # bounded: at most the bound plus what the lag grows between checks (0.5 s/s x 10 s)
    assert guarded["staleness_s"]["max"] < 10.0 + 5.0 + 1.0
    assert guarded["answers_from_primary"] > 50
    assert guarded["rows_missed"] < engine["rows_missed"] / 10
    series = designed["timeseries"]["postgres.replica_replay_lag_s"]
    assert max(series) == pytest.approx(designed["components"]["db-replica-1"]["max_replay_lag_s"], rel=0.05)


def test_same_seed_same_replication_figures() -> None:
    first, again = _run(bounded=True, seed=9), _run(bounded=True, seed=9)
    for name in ("db-replica-1", "db-replica-2", "analytics-engine", "db-primary"):
        assert first["components"][name] == again["components"][name]
    assert first["timeseries"] == again["timeseries"]
