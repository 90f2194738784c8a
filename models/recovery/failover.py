"""Disasters and their recovery: a lost disk, a lost region, and the runbook that brings the
service back -- RPO and RTO measured per disaster (issue 10, finding C4).

:class:`Failover` is the model's :class:`~models.recovery.faults.DisasterTarget`: the fault
kinds ``disk_loss`` (targets ``db-primary``, ``db-replica-N``) and ``region_outage`` (target
``us-east-1``) call it. At the disaster every step of the recovery is drawn at once
(:mod:`models.recovery.runbook`), so the RTO is known then. **The RTO is the sum of the
runbook's steps as drawn, and the actors the disaster takes out are down exactly that long**:
they are crashed with ``restart_after`` equal to it, refuse every request until the service is
back, and lose their volatile state as a dead process does. The deep health check
(``health.deep``) passing again comes later by the probe's own detection of the return:
``rto_deep_s`` is the RTO plus that.

Recovery paths:

* **primary's disk lost**, ``on_primary_loss: promote-replica`` (and an in-region replica is
  up): the most advanced replica is promoted -- the one that has *received* the most WAL
  (ties: the one done replaying it first, then the first listed). A standby replays all the
  WAL it has received before it opens for writes, so only the WAL never shipped is lost (the
  replication is asynchronous): RPO = from the oldest commit that had not reached the replica
  at the disaster (:meth:`ReplayStream.unshipped_since
  <models.replication.ReplayStream.unshipped_since>`; zero when every commit had). Its replay
  backlog lengthens the RTO instead: the replica replays from the disaster on, so the data step
  waits for whatever of the backlog is left when the team gets there, then takes
  ``promote_time``. Replicas that keep no replay position (they share the primary's store) lose
  one draw of ``postgres.replication_lag`` and have no backlog. ``db-primary`` coming back
  stands for the promoted replica (the twin's replicas keep serving reads meanwhile and
  afterwards; the fleet is one replica short until it is rebuilt, which is not modelled).
* **primary's disk lost**, ``restore`` (or no replica up): a new server restored from the base
  backups and the WAL archive (the backup plane's :class:`RestoreResult`: RPO from its
  recovered-to time, the data steps are its copy, fetch and replay). With no usable backup
  the service does not come back in the run, and every committed row is lost.
* **a replica's disk lost**: the replica is rebuilt from a fresh base backup of the primary
  (database size over the backup throughput), then replays the WAL written meanwhile; nothing
  committed is lost.
* **region lost**: every actor in the region (the kernel's network placement, so the managed
  IoT Core and Kinesis too) is out. With ``cross_region_replica`` the DR region's replica is
  promoted (RPO = its lag at the disaster); otherwise the DR region is restored from the
  backups -- assuming the WAL archive and the base backups are replicated to the DR region
  (S3 cross-region replication; its own lag is not modelled). The actors coming back at the
  RTO stand for their DR-region counterparts. If the region returns before the team reaches
  the data step (the point of no return: promoting elsewhere forks the history), nobody fails
  over and nothing is restored (``restore`` null): the service is back when the region is,
  with nothing lost (an outage, not a destruction: the region's disks survive it). A restore
  that cannot work (no usable backup) also leaves the team waiting for the region.
* **a node already down**: a disaster striking a node that an earlier disaster took out and
  that is not back yet (or never will be: a primary lost for good), or a region outage while
  the primary is so out, draws no runbook of its own: it is recorded with the path
  ``already-down``, ``merged_into`` naming the earlier disaster, and no RPO or RTO of its own
  (the earlier disaster's figures stand). A region outage still takes the region's other
  actors out until the region returns. Simplification: the earlier recovery runs on as drawn.
  A node down for another reason (a process crash) is not merged: ``crash`` of an actor
  already down does nothing, so it comes back when its crash says.

At a primary's loss (its disk, or its region) the backup plane is told
(:meth:`RestoresFromBackups.primary_lost`): archiving stops then, and resumes from the
recovered point when the service is back.

Meters per disaster (:meth:`Failover.summary`): the path, RPO as a time span and as rows per
table (:meth:`CommitLog.rows_lost <models.recovery.commits.CommitLog.rows_lost>`, the ledger
of what was committed), RTO with the time of each step, when the service was back, and --
with a deep readiness probe (``health.deep``) -- when the deep health check passed again,
which is the RTO's end the issue names. Plus, where the model hands them over, the traffic
of the outage window: users' commands started meanwhile and what became of them, and
counters such as readings emitted and given up.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from models.logic.durability import RestoreResult
from models.recovery.commits import CommitLog
from models.recovery.config import DisasterKind, DurabilityConfig
from models.recovery.runbook import Runbook, Timeline
from sim.distributions import Distribution
from sim.errors import ModelDefinitionError
from sim.faults import Fault, Undo

if TYPE_CHECKING:
    from models.logic.health import ProbeResult
    from models.monitoring import Prober
    from sim.actor import Actor
    from sim.kernel import Kernel

__all__ = [
    "ALREADY_DOWN",
    "DISASTER_KINDS",
    "REPLAY_STEP",
    "CommandLog",
    "Failover",
    "ReplicaWal",
    "RestoresFromBackups",
]

DISASTER_KINDS = ("disk_loss", "region_outage")
"""The fault kinds that call a :class:`Failover`."""

OWNER = "recovery/failover"
"""Prefix of this module's random streams."""

LAG_WINDOW_S = 3600.0
"""A rebuilt replica's catch-up assumes the WAL rate of the hour before the disaster."""

ALREADY_DOWN = "already-down"
"""The path of a disaster on a node an earlier disaster has out: no runbook, no RPO or RTO of its own."""

REPLAY_STEP = "replay the WAL already received"
"""The data step's part in which a promoted standby finishes replaying its backlog."""


class RestoresFromBackups(Protocol):
    """The backup plane, as far as a recovery needs it."""

    def restore(self, disaster_s: float) -> RestoreResult:
        """Restore at ``disaster_s`` from the newest usable backup plus the archive."""
        ...

    def primary_lost(self, at: float, recovered_to: float | None, back_at: float | None) -> None:
        """The primary was lost at ``at`` (its disk or its region): its data is recovered to
        ``recovered_to`` (None: nothing) and the service is back at ``back_at`` (None: not in
        this run). Archiving stops at ``at`` and resumes from ``recovered_to`` at ``back_at``."""
        ...


class ReplicaWal(Protocol):
    """A streaming replica's WAL position, as a promotion needs it (the replica :class:`Postgres`)."""

    def unshipped_since(self, now: float) -> float | None:
        """The commit time of the oldest commit whose WAL has not reached the replica (None: all have)."""
        ...

    def replay_done_at(self, now: float) -> float:
        """When the WAL that has reached the replica by ``now`` is replayed."""
        ...


class CommandLog(Protocol):
    """Users' commands: when each intent started and how it ended (the mobile users)."""

    @property
    def started(self) -> Mapping[str, float]:
        """Intent -> start time, in time order."""
        ...

    @property
    def results(self) -> Mapping[str, tuple[Any, float]]:
        """Intent -> (the app's result, when it came)."""
        ...


@dataclass
class _Disaster:
    """One disaster's record: planned from the scenario (all None), filled as it happens."""

    kind: str
    target: str
    at: float
    scope: DisasterKind
    happened: bool = False
    path: str | None = None
    recovered: bool | None = None
    recovered_to: float | None = None
    rpo_s: float | None = None
    timeline: Timeline | None = None
    back_at: float | None = None
    deep_healthy_at: float | None = None
    region_back_at: float | None = None
    actors_down: tuple[str, ...] = ()
    restore: dict[str, Any] | None = None
    promoted: str | None = None
    merged_into: _Disaster | None = None
    traffic_at: dict[str, float] | None = None
    traffic_back: dict[str, float] | None = None


_COMMAND_COUNTS = ("started", "accepted", "failed", "unanswered")


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


class Failover:
    """The model's disaster target; see the module docstring.

    Args:
        kernel: The simulation (its actors, their regions, its random streams).
        config: The scenario's ``durability`` section.
        commits: The record of what was committed (RPO in rows).
        plane: The backup plane (restores); None if no path can need it.
        primary: The primary database actor.
        replicas: The in-region replica actors, in order.
        replica_lag: The replicas' shipping delay (``postgres.replication_lag``): what a
            promotion loses when the replicas keep no replay position.
        replica_wal: The replicas that keep a replay position, by name: a promotion picks the
            most advanced and loses only the WAL never shipped to it.
        disasters: The scenario's faults; the disasters among them are reported before they
            happen (None everywhere), so a result has the same shape before and after a run.
        deep_probe: The deep readiness probe, if the scenario has one: when its verdict turns
            healthy after a recovery, the service passes its deep health checks again.
        commands: Users' commands, to count those the outage window hit.
        traffic: Counters read at each disaster and when its service is back (readings emitted,
            given up, ...); called once here too, to learn their names.
    """

    def __init__(
        self,
        kernel: Kernel,
        config: DurabilityConfig,
        commits: CommitLog,
        plane: RestoresFromBackups | None,
        *,
        primary: Actor,
        replicas: Sequence[Actor] = (),
        replica_lag: Distribution,
        replica_wal: Mapping[str, ReplicaWal] | None = None,
        disasters: Sequence[Fault] = (),
        deep_probe: Prober | None = None,
        commands: CommandLog | None = None,
        traffic: Callable[[], Mapping[str, float]] | None = None,
    ) -> None:
        self.kernel = kernel
        self.config = config
        self.commits = commits
        self.plane = plane
        self.primary = primary
        self.replicas = {replica.name: replica for replica in replicas}
        self.replica_wal: dict[str, ReplicaWal] = dict(replica_wal or {})
        self._out: dict[str, tuple[float, _Disaster]] = {}  # actor -> (back at, inf if never; the disaster)
        failover = config.failover
        self.runbook = Runbook.from_config(failover.runbook)
        self._steps = self.runbook.bind(kernel.sampler, f"{OWNER}/runbook")
        self._replica_lag = kernel.sampler(replica_lag, f"{OWNER}/replica-lag")
        self._cross_region_lag = kernel.sampler(failover.cross_region_lag, f"{OWNER}/cross-region-lag")
        self._promote = kernel.sampler(failover.promote_time, f"{OWNER}/promote")
        self.commands = commands
        self.traffic = traffic
        self._traffic_names = tuple(traffic()) if traffic is not None else ()
        self.deep_probe = deep_probe
        if deep_probe is not None:
            self._watch(deep_probe)
        self.records: list[_Disaster] = [
            _Disaster(fault.kind, fault.target, fault.at, self._scope(fault.kind, fault.target))
            for fault in sorted(disasters, key=lambda f: f.at)
            if fault.kind in DISASTER_KINDS
        ]

    # -- the DisasterTarget protocol ---------------------------------------------------------
    def lose_disk(self, node: str) -> None:
        """``node``'s disk is gone now: recover the primary or rebuild the replica."""
        if node == self.primary.name:
            actor = self.primary
        elif node in self.replicas:
            actor = self.replicas[node]
        else:
            known = ", ".join([self.primary.name, *self.replicas])
            raise ModelDefinitionError(f"a 'disk_loss' targets {node!r}, which is no database node (known: {known})")
        record = self._record("disk_loss", node)
        earlier = self._out_since(node, record.at)
        if earlier is not None:
            self._merge(record, earlier)
        elif actor is self.primary:
            self._lose_primary(record)
        else:
            self._lose_replica(record, actor)

    def lose_region(self, region: str, until: float) -> Undo:
        """Every actor of ``region`` is out until ``until``; fail over or wait, as the runbook goes."""
        actors = [actor for actor in self.kernel.actors.values() if actor.region == region]
        if not actors:
            raise ModelDefinitionError(f"a 'region_outage' targets {region!r}, where no actor runs")
        record = self._record("region_outage", region)
        now = record.at
        record.region_back_at = until
        earlier = self._out_since(self.primary.name, now)
        if earlier is not None:
            # The service is already out: no failover of its own; the rest of the region is out
            # until the region returns (an outage: their disks survive it).
            self._merge(record, earlier)
            rest = [a for a in actors if a.up and self._out_since(a.name, now) is None]
            record.actors_down = tuple(a.name for a in rest)
            for actor in rest:
                self._take_out(actor, until, record)
            return lambda: None
        failover = self.config.failover
        returned = False
        recovered_to: float | None = now
        restore: dict[str, Any] | None = None

        def data(start_s: float) -> list[tuple[str, float]]:
            nonlocal returned, recovered_to, restore
            if until <= now + start_s:
                returned = True  # the region is back before the point of no return
                return []
            if failover.cross_region_replica:
                recovered_to = now - self._cross_region_lag()
                return [("promote the cross-region replica", self._promote())]
            steps, recovered_to, restore = self._restore_steps(
                self._plane("a region outage without a cross-region replica").restore(now)
            )
            return steps

        timeline = self._steps.draw("region_outage", data)
        path = "promote-cross-region-replica" if failover.cross_region_replica else "restore-in-dr-region"
        if returned or recovered_to is None or not math.isfinite(timeline.rto_s):
            # The region is back before anyone started the failover, or the failover cannot
            # bring the data back: the team waits for the region, whose disks survived.
            path = "region-returned" if returned else f"{path}-failed-waited-for-region"
            timeline = timeline.until(until - now)
            recovered_to, back = now, until
        else:
            back = now + timeline.rto_s
        self._begin(record, path, timeline, recovered_to, back, restore, actors)
        self._primary_lost(now, recovered_to, back)
        return lambda: None  # everything was scheduled at the outage; the region's return changes nothing more

    # -- paths -------------------------------------------------------------------------------
    def _lose_primary(self, record: _Disaster) -> None:
        now = record.at
        restore: dict[str, Any] | None = None
        recovered_to: float | None
        failover = self.config.failover
        pick = self._promotion(now) if failover.on_primary_loss == "promote-replica" else None
        if pick is not None:
            record.promoted, recovered_to, replayed_at = pick
            positioned = record.promoted in self.replica_wal
            promote = self._promote()

            def data(start_s: float) -> list[tuple[str, float]]:
                # the standby replays from the disaster on: what is left when the team gets there
                left = max(0.0, replayed_at - (now + start_s))
                return (
                    [(REPLAY_STEP, left), ("promote a replica", promote)]
                    if positioned
                    else [("promote a replica", promote)]
                )

            timeline = self._steps.draw("primary_loss", data)
            path = "promote-replica"
        else:
            result = self._plane("restoring the primary").restore(now)
            steps, recovered_to, restore = self._restore_steps(result)
            timeline = self._steps.draw("primary_loss", steps)
            path = "restore" if failover.on_primary_loss == "restore" else "restore-no-replica"
        back = now + timeline.rto_s if recovered_to is not None else None
        self._begin(record, path, timeline, recovered_to, back, restore, [self.primary])
        self._primary_lost(now, recovered_to, back)

    def _promotion(self, now: float) -> tuple[str, float, float] | None:
        """The replica to promote at ``now``: (its name, the time its data will be as of, when it
        has replayed what it received); None when no replica is up."""
        up = [replica for replica in self.replicas.values() if replica.up]
        positioned = [
            (replica.name, self.replica_wal[replica.name]) for replica in up if replica.name in self.replica_wal
        ]
        if not positioned:
            if not up:
                return None
            lag = self._replica_lag()
            return up[0].name, now - max(0.0, lag), now
        best: tuple[tuple[float, float, int], str, float, float] | None = None
        for order, (name, wal) in enumerate(positioned):
            oldest = wal.unshipped_since(now)
            # the instant before the oldest commit that never arrived (the commit log counts (a, b])
            recovered_to = now if oldest is None else math.nextafter(oldest, -math.inf)
            replayed_at = max(now, wal.replay_done_at(now))
            key = (-recovered_to, replayed_at, order)
            if best is None or key < best[0]:
                best = (key, name, recovered_to, replayed_at)
        assert best is not None
        return best[1], best[2], best[3]

    def _lose_replica(self, record: _Disaster, replica: Actor) -> None:
        now = record.at
        backups, replay = self.config.backups, self.config.restore.replay_rate
        size = backups.initial_size + self.commits.data_bytes_between(0.0, now)
        copy_s = size / backups.throughput
        window = min(LAG_WINDOW_S, now)
        wal_rate = (
            self.commits.wal_bytes_between(now - window, now) / window
            if window > 0
            else self.commits.aggregate_wal_rate(now)
        )
        data = [
            ("copy a base backup from the primary", copy_s),
            ("replay the WAL written meanwhile", wal_rate * copy_s / replay),
        ]
        timeline = self._steps.draw("replica_loss", data)
        self._begin(record, "rebuild-replica", timeline, now, now + timeline.rto_s, None, [replica])

    def _primary_lost(self, at: float, recovered_to: float | None, back: float | None) -> None:
        if self.plane is not None:
            self.plane.primary_lost(at, recovered_to, back)

    def _plane(self, why: str) -> RestoresFromBackups:
        if self.plane is None:
            raise ModelDefinitionError(f"{why} needs the backup plane, and the model built none")
        return self.plane

    @staticmethod
    def _restore_steps(result: RestoreResult) -> tuple[list[tuple[str, float]], float | None, dict[str, Any]]:
        """The data steps, recovered-to time and report of a restore from the backups."""
        detail = {
            "backup": None if result.backup is None else result.backup.label,
            "replayed_segments": result.replayed_segments,
            "stopped_at_segment": result.stopped_at_segment,
            "stop_reason": result.stop_reason,
            "skipped_backups": len(result.skipped_backups),
        }
        steps = [(f"restore: {name}", seconds) for name, seconds in result.steps]
        if result.recovered_to_s is None:
            steps.append(("restore: no usable base backup", math.inf))
        return steps, result.recovered_to_s, detail

    # -- bookkeeping -------------------------------------------------------------------------
    def _scope(self, kind: str, target: str) -> DisasterKind:
        if kind == "region_outage":
            return "region_outage"
        return "primary_loss" if target == self.primary.name else "replica_loss"

    def _record(self, kind: str, target: str) -> _Disaster:
        """The planned record of this disaster, or a new one (a disaster the scenario did not list)."""
        now = self.kernel.now
        for record in self.records:
            # the fault timeline schedules at (at - start) from a late start: allow the float's rounding
            close = abs(record.at - now) <= 1e-9 * max(1.0, abs(now))
            if not record.happened and record.kind == kind and record.target == target and close:
                record.happened = True
                return record
        record = _Disaster(kind, target, now, self._scope(kind, target), happened=True)
        self.records.append(record)
        return record

    def _begin(
        self,
        record: _Disaster,
        path: str,
        timeline: Timeline,
        recovered_to: float | None,
        back: float | None,
        restore: dict[str, Any] | None,
        actors: Sequence[Actor],
    ) -> None:
        """Record the recovery and take ``actors`` out until ``back`` (None: not in this run)."""
        now = record.at
        record.path = path
        record.timeline = timeline
        record.recovered = recovered_to is not None
        record.recovered_to = recovered_to
        record.rpo_s = now - recovered_to if recovered_to is not None else now
        record.restore = restore
        record.actors_down = tuple(actor.name for actor in actors)
        record.traffic_at = self._read_traffic()
        for actor in actors:
            self._take_out(actor, back, record)
        if back is not None:
            # scheduled after the restarts (same time, later event): the actors are up when it runs
            self.kernel.call_later(back - now, self._back, record)

    def _take_out(self, actor: Actor, back: float | None, record: _Disaster) -> None:
        """Crash ``actor`` until ``back`` (None: for good), remembering which disaster has it out.
        An actor already down stays as it is (``crash`` does nothing then)."""
        if actor.up:
            self._out[actor.name] = (math.inf if back is None else back, record)
        actor.crash(math.inf if back is None else back - self.kernel.now)

    def _out_since(self, name: str, now: float) -> _Disaster | None:
        """The earlier disaster that has actor ``name`` out at ``now``, if one has."""
        entry = self._out.get(name)
        if entry is None or entry[0] < now or self.kernel.actors[name].up:
            return None
        return entry[1]

    @staticmethod
    def _merge(record: _Disaster, earlier: _Disaster) -> None:
        """``record`` struck what ``earlier`` has out already: no runbook, no figures of its own."""
        record.path = ALREADY_DOWN
        record.merged_into = earlier

    def _back(self, record: _Disaster) -> None:
        record.back_at = self.kernel.now
        record.traffic_back = self._read_traffic()
        probe = self.deep_probe
        if probe is not None and probe.healthy:
            record.deep_healthy_at = record.back_at

    def _watch(self, probe: Prober) -> None:
        """Chain onto the probe's verdict changes: a turn to healthy ends the recoveries waiting for it."""
        previous = probe.on_change

        def changed(prober: Prober, result: ProbeResult) -> None:
            if previous is not None:
                previous(prober, result)
            if result.healthy:
                now = self.kernel.now
                for record in self.records:
                    if record.back_at is not None and record.deep_healthy_at is None and record.back_at <= now:
                        record.deep_healthy_at = now

        probe.on_change = changed

    def _read_traffic(self) -> dict[str, float] | None:
        return None if self.traffic is None else {name: float(value) for name, value in self.traffic().items()}

    # -- results -----------------------------------------------------------------------------
    def _commands(self, record: _Disaster) -> dict[str, int | None]:
        names = _COMMAND_COUNTS
        log = self.commands
        if log is None or not record.happened:
            return dict.fromkeys(names)
        end = record.back_at if record.back_at is not None else self.kernel.now
        intents = list(log.started)
        starts = list(log.started.values())
        first, stop = bisect.bisect_left(starts, record.at), bisect.bisect_left(starts, end)
        counts: dict[str, int | None] = dict.fromkeys(names, 0)
        counts["started"] = stop - first
        for intent in intents[first:stop]:
            answer = log.results.get(intent)
            if answer is None:
                counts["unanswered"] = (counts["unanswered"] or 0) + 1
            elif getattr(answer[0], "accepted", False):
                counts["accepted"] = (counts["accepted"] or 0) + 1
            else:
                counts["failed"] = (counts["failed"] or 0) + 1
        return counts

    def _traffic(self, record: _Disaster) -> dict[str, dict[str, float | None]]:
        before, after = record.traffic_at, record.traffic_back
        during = {
            name: None if before is None or after is None else after[name] - before[name]
            for name in self._traffic_names
        }
        return {
            "at_disaster": {name: None if before is None else before[name] for name in self._traffic_names},
            "at_back": {name: None if after is None else after[name] for name in self._traffic_names},
            "during": during,
        }

    def _summary(self, record: _Disaster, key: str, keys: Mapping[int, str]) -> dict[str, Any]:
        names = self.runbook.step_names(record.scope)
        timeline = record.timeline
        seconds = timeline.step_seconds() if timeline is not None else {}
        own = record.happened and record.path != ALREADY_DOWN  # figures of its own
        rows: Mapping[str, int | None] = (
            self.commits.rows_lost(record.recovered_to, record.at) if own else dict.fromkeys(self.commits.tables)
        )
        rto = _finite(timeline.rto_s) if timeline is not None and record.recovered else None
        deep = record.deep_healthy_at
        merged = record.merged_into
        return {
            "key": key,
            "kind": record.kind,
            "target": record.target,
            "at": record.at,
            "happened": record.happened,
            "runbook": self.runbook.name,
            "path": record.path,
            "merged_into": None if merged is None else keys[id(merged)],
            "promoted": record.promoted,
            "recovered": record.recovered,
            "recovered_to": record.recovered_to,
            "rpo_s": record.rpo_s,
            "rows_lost": dict(rows),
            "rto_s": rto,
            "step_s": {name: (_finite(seconds.get(name, 0.0)) if timeline is not None else None) for name in names},
            "steps": [
                {
                    "name": s.name,
                    "start_s": _finite(s.start_s),
                    "seconds": _finite(s.seconds),
                    "recovers_data": s.recovers_data,
                }
                for s in (timeline.steps if timeline is not None else ())
            ],
            "service_back_at": record.back_at,
            "deep_healthy_at": deep,
            "rto_deep_s": None if deep is None else deep - record.at,
            "region_back_at": record.region_back_at,
            "actors_down": list(record.actors_down),
            "restore": record.restore,
            "commands": self._commands(record) if own else dict.fromkeys(_COMMAND_COUNTS),
            "traffic": self._traffic(record),
        }

    def _keys(self) -> list[str]:
        """Each record's name, ``kind@target`` (``#2``, ``#3`` ... for repeats), in record order."""
        keys: list[str] = []
        taken: set[str] = set()
        for record in self.records:
            base = f"{record.kind}@{record.target}"
            key, n = base, 1
            while key in taken:
                n += 1
                key = f"{base}#{n}"
            taken.add(key)
            keys.append(key)
        return keys

    def summary(self) -> list[dict[str, Any]]:
        """Every disaster, planned or happened, in time order, as plain JSON-able data.

        Per disaster, among others: ``path`` (how it was recovered; ``already-down`` when it
        struck what an earlier disaster, ``merged_into``, had out: then no RPO, RTO, rows or
        commands of its own); ``promoted`` (the replica a promotion picked); ``rpo_s`` (the
        span of committed data lost: ``at - recovered_to``); ``rto_s`` (the sum of the
        runbook's steps as drawn at the disaster -- the actors in ``actors_down`` are down
        exactly that long, until ``service_back_at``); ``rto_deep_s`` (``rto_s`` plus the time
        the deep probe takes to see the service back: ``deep_healthy_at - at``); ``restore``
        (what a restore from the backups used; null when none happened)."""
        keys = self._keys()
        by_record = {id(record): key for record, key in zip(self.records, keys, strict=True)}
        return [self._summary(record, key, by_record) for record, key in zip(self.records, keys, strict=True)]

    def summary_by_name(self) -> dict[str, dict[str, Any]]:
        """The same, keyed ``kind@target`` (``#2``, ``#3`` ... for repeats): dotted paths for expectations."""
        return {entry["key"]: entry for entry in self.summary()}
