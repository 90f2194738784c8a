"""Redis Cluster: hash slots over masters, each master backed by a replica, persisted to disk.

Keys map to masters by a stable hash (the cluster's 16,384 slots collapse to the masters
that own them).  When a master fails (fault target ``redis-master-N``) its slots are uncovered
until the replica is promoted: ``failover_time`` later by default (node timeout plus election,
about 17 s with Redis defaults), or, with ``failover: cluster``, after the cluster-spec
sequence (:func:`~models.logic.redis_persistence.cluster_failover_s`), which never promotes
without a majority of masters alive -- the node then serves again when it restarts, with what
its own persistence file held.  With ``cluster-require-full-coverage yes`` (the default) the
whole cluster answers ``CLUSTERDOWN`` meanwhile; without it, only the failed master's keys.
A pipeline touching a failed master fails as a whole, as a client pipeline does on the first error.

What crashes lose (review finding C4), decided by each key's last write time:

* a master crash: replication is asynchronous, so the promoted replica lacks the master's
  writes within its ``replica_lag`` (drawn at the crash) -- those keys are lost;
* a crash of ``redis`` itself (every node at once: masters and replicas share one zone here):
  on restart each node reloads its RDB snapshot (every ``rdb_every``, at a phase the run
  draws, counting once written) or its AOF (``appendfsync everysec``), and every key written
  after that persisted point is lost.

The twin keeps no history of values, so a lost key is *gone* until rewritten, even one a real
Redis would reload with an older value: a reader finds no state rather than a stale one.
Sessions are a key family the review puts here but the twin's gateway never writes (its JWT
check is stateless); they are worked out from a login-and-refresh schedule per user
(:class:`~models.logic.redis_persistence.SessionKeys`), so they cost nothing and move no figure.

Lost device state comes back with each device's next report (ingest's HSET) or, with
``rebuild_from_postgres``, from a warm-up job that rewrites the lost keys from PostgreSQL's
latest rows at ``rebuild_rate`` once Redis serves again (ingest stores rows before it writes
Redis, so PostgreSQL has every state Redis lost; the job's queries are not sent to the
primary actor, only its being up is required).  Each crash is recorded with its loss window,
writes and keys lost by family, and when every lost device-state key was fresh again.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from models.config import RedisConfig
from models.logic.durability import AofEverysec, RdbSnapshots
from models.logic.redis_persistence import (
    DEVICE_STATE,
    FAMILIES,
    SESSIONS,
    ClusterFailover,
    SessionKeys,
    cluster_failover_s,
    family_of,
    keys_written_after,
    persisted_point_s,
)
from models.names import DB_PRIMARY, REDIS, redis_master
from models.ops import RedisPipeline
from sim.actor import Actor
from sim.ops import Operation, Rejected

if TYPE_CHECKING:
    from sim.kernel import Kernel

__all__ = ["RECENT_WRITES_S", "Outage", "RedisCluster", "RedisMaster"]

RECENT_WRITES_S = 60.0
"""How far back the cluster keeps its pipelines, to count the writes a short loss window (a
replica's lag, an AOF second) lost exactly; an RDB window is counted from the write count at
each snapshot's start instead, so memory never grows with the run."""

MASTER_FAILOVER = "master_failover"
"""A master crashed and its replica was promoted: the replica's lag is lost."""
MASTER_RESTART = "master_restart"
"""A master crashed and no replica could be promoted: it reloads its own persistence."""
CLUSTER_RESTART = "cluster_restart"
"""Every node crashed: each reloads its persistence."""


@dataclass
class Outage:
    """One crash: what it lost, and how the lost device state came back."""

    at_s: float
    kind: str
    target: str
    source: str
    """Where the data served afterwards comes from: ``replica``, ``rdb`` or ``aof``."""
    persisted_at_s: float
    available_at_s: float
    writes_lost: int | None
    keys_lost: dict[str, int]
    pending: dict[str, Any]
    """Lost device-state keys not yet rewritten, with the value PostgreSQL still has."""
    sessions_rebuilt_at_s: float | None
    refused_base: int
    requests_refused: int = 0
    rewritten_by_reports: int = 0
    restored_from_postgres: int = 0
    rebuilt_at_s: float | None = None
    refused_settled: bool = False

    @property
    def loss_window_s(self) -> float:
        """Seconds of writes lost: from the persisted point to the crash."""
        return self.at_s - self.persisted_at_s

    def rebuilt_after_s(self, now: float) -> float | None:
        """From the crash until every lost device-state key was fresh again (or the cluster
        served again, when none was lost); None while that has not happened."""
        if self.rebuilt_at_s is None or self.rebuilt_at_s > now:
            return None
        return self.rebuilt_at_s - self.at_s

    def as_dict(self, now: float) -> dict[str, Any]:
        """Plain data for the result file."""
        sessions_after = self.sessions_rebuilt_at_s
        return {
            "at_s": self.at_s,
            "kind": self.kind,
            "target": self.target,
            "source": self.source,
            "persisted_at_s": self.persisted_at_s,
            "loss_window_s": self.loss_window_s,
            "writes_lost": self.writes_lost,
            "keys_lost": dict(self.keys_lost),
            "available_after_s": self.available_at_s - self.at_s,
            "requests_refused": self.requests_refused,
            "rebuilt_after_s": self.rebuilt_after_s(now),
            "rewritten_by_reports": self.rewritten_by_reports,
            "restored_from_postgres": self.restored_from_postgres,
            "still_lost": len(self.pending),
            "sessions_rebuilt_after_s": (
                sessions_after - self.at_s if sessions_after is not None and sessions_after <= now else None
            ),
        }


class RedisMaster:
    """One master's availability; a fault target for ``crash``."""

    def __init__(self, cluster: RedisCluster, index: int) -> None:
        self.cluster = cluster
        self.index = index
        self.name = redis_master(index + 1)
        self.available_from = 0.0
        self.failovers = 0

    def crash(self, restart_after: float) -> None:
        """The master dies; its replica is promoted after the failover time and serves its slots,
        without the writes it had not yet received.

        ``restart_after`` (when the dead node rejoins, as a replica) does not matter to clients,
        unless no replica can be promoted (``failover: cluster`` without a majority): then the
        node itself serves again at its restart, from its persistence file.
        """
        cluster = self.cluster
        now = cluster.kernel.now
        delay = cluster.failover_delay(self)
        promoted = delay is not None
        if delay is None:
            delay = restart_after
        else:
            self.failovers += 1
        self.available_from = now + delay
        cluster.master_crashed(self, promoted=promoted)


class RedisCluster(Actor):
    """See the module docstring."""

    def __init__(self, kernel: Kernel, config: RedisConfig, *, zone: str, region: str, session_users: int = 0) -> None:
        """``session_users``: how many users hold a session key (the app's and the dashboard's)."""
        super().__init__(
            kernel, REDIS, zone=zone, region=region, concurrency=config.concurrency, service_time=config.service_time
        )
        self.config = config
        self.masters = [RedisMaster(self, i) for i in range(config.masters)]
        self.data: dict[str, Any] = {}
        self.cluster_down = 0
        self.session_users = session_users
        self.writes = 0
        """Writes (HSET commands) acknowledged since the start."""
        self.outages: list[Outage] = []
        self._written: dict[str, float] = {}  # key -> time of its last write
        self._born = kernel.now
        self._data_since = self._born  # the oldest time the twin's data can be from
        persistence_rng = kernel.streams.stream(f"{REDIS}/persistence")
        phase, self.aof_phase = persistence_rng.uniform(0.0, 1.0, 2).tolist()
        self.rdb_phase = config.rdb_phase if config.rdb_phase is not None else phase * config.rdb_every
        # The server ran before the run: snapshots at rdb_phase + k * rdb_every for every k, so a
        # crash finds one completed whatever its time (two periods back covers a crash at start).
        self._rdb_first = self._born + self.rdb_phase - 2 * config.rdb_every
        self._next_fork = self._first_fork_after(self._born) if config.persistence == "rdb" else math.inf
        self._forks: deque[tuple[float, int]] = deque([(self._born, 0)], maxlen=4)  # (snapshot start, writes up to it)
        self._recent: deque[tuple[float, int, Sequence[tuple[str, str, Any]]]] = deque()
        self._recent_floor = -math.inf  # every pipeline after this time is in _recent
        self._pruned_writes = 0  # writes up to _recent_floor
        self._rebuilding: list[Outage] = []
        self._replica_lag = kernel.sampler(config.replica_lag, f"{REDIS}/replica-lag")
        self._fsync_stall = kernel.sampler(config.aof_fsync_stall, f"{REDIS}/aof-fsync")
        self._detection = kernel.sampler(config.failure_detection, f"{REDIS}/failure-detection")
        self._election = kernel.sampler(config.election_time, f"{REDIS}/election")
        self._failover_rng = kernel.streams.stream(f"{REDIS}/failover")
        self._sessions: SessionKeys | None = None
        self._session_masters: np.ndarray | None = None
        self._restart_after = 0.0

    # -- key placement ---------------------------------------------------------------------
    def master_index(self, key: str) -> int:
        """The index of the master owning ``key``'s slot."""
        return zlib.crc32(key.encode()) % len(self.masters)

    def master_of(self, key: str) -> RedisMaster:
        """The master owning ``key``'s slot."""
        return self.masters[self.master_index(key)]

    # -- serving ---------------------------------------------------------------------------
    def handle(self, op: Operation, origin: str) -> Any:
        if not isinstance(op, RedisPipeline):
            raise Rejected("unsupported", f"redis does not handle {op.name}")
        now = self.kernel.now
        if any(m.available_from > now for m in self.masters):  # only a failover makes slots matter
            if self.config.require_full_coverage:
                self._clusterdown(now)
                raise Rejected("CLUSTERDOWN", "a hash slot has no master (cluster-require-full-coverage yes)")
            for _, key, _ in op.commands:
                if self.master_of(key).available_from > now:
                    self._clusterdown(now)
                    raise Rejected("CLUSTERDOWN", f"slot of {key} has no master")
        data = self.data
        written = self._written
        writes = 0
        replies: list[Any] = []
        for command, key, value in op.commands:
            if command == "HSET":
                current = data.get(key)
                if isinstance(value, dict) and isinstance(current, dict):
                    current.update(value)
                else:
                    data[key] = dict(value) if isinstance(value, dict) else value
                written[key] = now
                writes += 1
                replies.append(1)
            elif command == "GET":
                replies.append(data.get(key))
            else:
                raise Rejected("unknown_command", command)
        if writes:
            self._wrote(op.commands, writes, now)
            if self._rebuilding:
                self._rewritten(op.commands, now)
        return replies

    def _clusterdown(self, now: float) -> None:
        self.cluster_down += 1
        for outage in self.outages:
            if outage.kind != CLUSTER_RESTART and outage.available_at_s > now:
                outage.requests_refused += 1

    # -- write bookkeeping -----------------------------------------------------------------
    def _first_fork_after(self, t: float) -> float:
        every = self.config.rdb_every
        return self._rdb_first + (math.floor((t - self._rdb_first) / every) + 1) * every

    def _wrote(self, commands: Sequence[tuple[str, str, Any]], writes: int, now: float) -> None:
        """Count ``writes`` at ``now``: a checkpoint at each snapshot start passed, and the
        pipeline kept for :data:`RECENT_WRITES_S`."""
        if now > self._next_fork:
            self._passed_forks(now)
        self.writes += writes
        recent = self._recent
        recent.append((now, self.writes, commands))
        horizon = now - RECENT_WRITES_S
        while recent[0][0] < horizon:
            self._recent_floor, self._pruned_writes, _ = recent.popleft()

    def _passed_forks(self, now: float) -> None:
        """Checkpoint the write count at each snapshot start before ``now`` (writes at a fork
        are in its snapshot); called before any later write is counted."""
        while self._next_fork < now:
            self._forks.append((self._next_fork, self.writes))
            self._next_fork += self.config.rdb_every

    def writes_after(self, point_s: float, master: int | None = None) -> int | None:
        """Writes acknowledged after ``point_s`` (to ``master``'s keys only, if given), or None
        when the cluster no longer knows (a point older than :data:`RECENT_WRITES_S` that is
        not a snapshot start, for one master)."""
        if master is None:
            if point_s < self._born:
                return self.writes
            self._passed_forks(self.kernel.now)  # forks since the last write
            for when, before in self._forks:
                if when == point_s:
                    return self.writes - before
        if point_s < self._recent_floor:
            return None
        if master is None:
            upto = self._pruned_writes
            for when, cumulative, _ in reversed(self._recent):
                if when <= point_s:
                    upto = cumulative
                    break
            return self.writes - upto
        index = self.master_index
        count = 0
        for when, _, commands in reversed(self._recent):
            if when <= point_s:
                break
            count += sum(1 for command, key, _ in commands if command == "HSET" and index(key) == master)
        return count

    def _rewritten(self, commands: Sequence[tuple[str, str, Any]], now: float) -> None:
        """Lost device-state keys a report (or a command) just wrote are fresh again."""
        for outage in list(self._rebuilding):
            pending = outage.pending
            for command, key, _ in commands:
                if command == "HSET" and key in pending:
                    del pending[key]
                    outage.rewritten_by_reports += 1
            if not pending:
                self._rebuilt(outage, now)

    def _rebuilt(self, outage: Outage, now: float) -> None:
        outage.rebuilt_at_s = max(now, outage.available_at_s)
        self._rebuilding.remove(outage)

    # -- crashes ---------------------------------------------------------------------------
    def failover_delay(self, master: RedisMaster) -> float | None:
        """Seconds until ``master``'s replica serves its slots, or None if none can be promoted."""
        config = self.config
        if config.failover == "constant":
            return config.failover_time
        now = self.kernel.now
        down = 1 + sum(1 for m in self.masters if m is not master and m.available_from > now)
        return cluster_failover_s(
            ClusterFailover(config.node_timeout),
            masters=len(self.masters),
            masters_down=down,
            detection_s=self._detection(),
            delay_u=float(self._failover_rng.uniform()),
            election_s=self._election(),
        )

    def persistence(self) -> RdbSnapshots | AofEverysec:
        """The persistence in force now (an AOF fsync stall is drawn for each crash)."""
        config = self.config
        if config.persistence == "rdb":
            return RdbSnapshots(config.rdb_every, self._rdb_first, config.rdb_duration)
        return AofEverysec(self.aof_phase, self._fsync_stall())

    def master_crashed(self, master: RedisMaster, *, promoted: bool) -> None:
        """Lose what ``master``'s crash loses: the replica's lag, or all since its persisted point."""
        now = self.kernel.now
        index = master.index
        if promoted:
            point, source = now - self._replica_lag(), "replica"
        else:
            point, source = persisted_point_s(now, self.persistence(), data_since_s=self._data_since), None
        keys = keys_written_after(self._written, point, lambda key: self.master_index(key) == index)
        sessions = self._session_keys()
        mask = None
        if sessions is not None:
            if self._session_masters is None:
                self._session_masters = np.fromiter(
                    (self.master_index(f"session:{user}") for user in range(self.session_users)),
                    dtype=np.int64,
                    count=self.session_users,
                )
            mask = self._session_masters == index
        self._record(
            MASTER_FAILOVER if promoted else MASTER_RESTART,
            master.name,
            source or self.config.persistence,
            point,
            master.available_from,
            self.writes_after(point, index),
            keys,
            sessions,
            mask,
        )

    def crash(self, restart_after: float) -> None:
        """Every node fails at once; see :meth:`on_crash`."""
        if self.up:
            self._restart_after = restart_after
        super().crash(restart_after)

    def on_crash(self) -> None:
        """Every node's memory is gone: on restart each reloads its persistence file, so the
        keys written after its persisted point are lost (the loss happens now, as the process
        dies; no one reads them before the restart)."""
        now = self.kernel.now
        point = persisted_point_s(now, self.persistence(), data_since_s=self._data_since)
        self._record(
            CLUSTER_RESTART,
            REDIS,
            self.config.persistence,
            point,
            now + self._restart_after,
            self.writes_after(point),
            keys_written_after(self._written, point),
            self._session_keys(),
            None,
        )

    def on_restart(self) -> None:
        """The data is as loaded: the next crash before a new snapshot loses what is written
        from now on, and ``save`` counts its period from the load."""
        now = self.kernel.now
        self._data_since = now
        if self.config.persistence == "rdb":
            self._rdb_first = now
            self._next_fork = now + self.config.rdb_every
            self._forks.append((now, self.writes))
        for outage in self.outages:
            if outage.kind == CLUSTER_RESTART and not outage.refused_settled:
                outage.requests_refused = self.refused - outage.refused_base
                outage.refused_settled = True
                if self.config.rebuild_from_postgres:
                    self._warm_up(outage)

    def _session_keys(self) -> SessionKeys | None:
        if self.session_users <= 0:
            return None
        if self._sessions is None:
            refresh = self.config.session_refresh
            rng = self.kernel.streams.stream(f"{REDIS}/sessions")
            self._sessions = SessionKeys(rng.uniform(0.0, refresh, self.session_users), refresh)
        return self._sessions

    def _record(
        self,
        kind: str,
        target: str,
        source: str,
        point: float,
        available_at: float,
        writes_lost: int | None,
        keys: list[str],
        sessions: SessionKeys | None,
        session_mask: np.ndarray | None,
    ) -> None:
        """Drop the lost keys and keep the crash's record (and start the rebuild)."""
        now = self.kernel.now
        data, written = self.data, self._written
        counts = dict.fromkeys(FAMILIES, 0)
        pending: dict[str, Any] = {}
        for key in keys:
            family = family_of(key)
            counts[family] += 1
            value = data.pop(key, None)
            del written[key]
            if family == DEVICE_STATE:
                pending[key] = value
        sessions_rebuilt_at = None
        if sessions is not None:
            lost = sessions.lost(now, point, session_mask)
            counts[SESSIONS] += int(np.count_nonzero(lost))
            sessions_rebuilt_at = sessions.rebuilt_at(lost, available_at)
        outage = Outage(
            at_s=now,
            kind=kind,
            target=target,
            source=source,
            persisted_at_s=point,
            available_at_s=available_at,
            writes_lost=writes_lost,
            keys_lost=counts,
            pending=pending,
            sessions_rebuilt_at_s=sessions_rebuilt_at,
            refused_base=self.refused,
        )
        self.outages.append(outage)
        if not pending:
            outage.rebuilt_at_s = available_at
            return
        self._rebuilding.append(outage)
        if self.config.rebuild_from_postgres and kind != CLUSTER_RESTART:  # that one starts in on_restart
            self.kernel.call_later(available_at - now, self._warm_up, outage)

    # -- rebuild from PostgreSQL ------------------------------------------------------------
    def _warm_up(self, outage: Outage) -> None:
        """One second of the warm-up job: rewrite up to ``rebuild_rate`` lost device-state keys
        from PostgreSQL (skipping those a report has already rewritten), then come back."""
        if not outage.pending:
            return
        rate = self.config.rebuild_rate
        step = 1.0 if rate >= 1.0 else 1.0 / rate
        primary = self.kernel.actors.get(DB_PRIMARY)
        now = self.kernel.now
        if self.up and (primary is None or primary.up) and now >= outage.available_at_s:
            batch = max(1, math.floor(rate * step))
            keys = list(itertools.islice(outage.pending, batch))
            commands = [("HSET", key, outage.pending.pop(key)) for key in keys]
            for _, key, value in commands:
                self.data[key] = value
                self._written[key] = now
            outage.restored_from_postgres += len(commands)
            self._wrote(commands, len(commands), now)
            if not outage.pending:
                self._rebuilt(outage, now)
                return
        self.kernel.call_later(step, self._warm_up, outage)

    # -- figures ---------------------------------------------------------------------------
    def persistence_stats(self) -> dict[str, Any]:
        """The persistence settings and every crash's losses: the same keys before a crash
        (figures None, counts 0) as after, so a result's shape never depends on the run."""
        config, now, outages = self.config, self.kernel.now, self.outages
        keys_lost = dict.fromkeys(FAMILIES, 0)
        for outage in outages:
            for family, count in outage.keys_lost.items():
                keys_lost[family] += count
        writes = [o.writes_lost for o in outages]
        rebuilt = [o.rebuilt_after_s(now) for o in outages]
        rdb = config.persistence == "rdb"
        return {
            "mode": config.persistence,
            "rdb_every_s": config.rdb_every if rdb else None,
            "rdb_phase_s": self.rdb_phase if rdb else None,
            "crashes": len(outages),
            "loss_window_s": max((o.loss_window_s for o in outages), default=None),
            "writes_lost": sum(_known(writes)) if outages and None not in writes else None,
            "keys_lost": keys_lost,
            "rebuilt_after_s": max(_known(rebuilt)) if outages and None not in rebuilt else None,
            "still_lost": sum(len(o.pending) for o in outages),
            "history": [o.as_dict(now) for o in outages],
        }

    def stats(self) -> dict[str, Any]:
        figures: dict[str, Any] = dict(super().stats())
        figures.update(
            {
                "keys": len(self.data),
                "failovers": sum(m.failovers for m in self.masters),
                "clusterdown_errors": self.cluster_down,
                "persistence": self.persistence_stats(),
            }
        )
        return figures


def _known(values: Sequence[Any]) -> list[Any]:
    return [v for v in values if v is not None]
