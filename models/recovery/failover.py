"""Disasters and their recovery: a lost disk, a lost region, and the runbook that brings the
service back -- RPO and RTO measured per disaster (issue 10, finding C4).

:class:`Failover` is the model's :class:`~models.recovery.faults.DisasterTarget`: the fault
kinds ``disk_loss`` (targets ``db-primary``, ``db-replica-N``) and ``region_outage`` (target
``us-east-1``) call it. At the disaster every step of the recovery is drawn at once
(:mod:`models.recovery.runbook`), so the RTO is known then, and the actors that are out are
crashed with ``restart_after`` equal to it: they refuse every request until the service is
back, and their volatile state is gone as a dead process's is.

Recovery paths:

* **primary's disk lost**, ``on_primary_loss: promote-replica`` (and a replica exists): an
  in-region streaming replica is promoted. RPO = that replica's replay lag at the disaster
  (asynchronous replication: what it had not replayed is gone); the data step takes
  ``promote_time``. ``db-primary`` coming back stands for the promoted replica (the twin's
  replicas keep serving reads meanwhile and afterwards; the fleet is one replica short until
  it is rebuilt, which is not modelled).
* **primary's disk lost**, ``restore`` (or no replica): a new server restored from the base
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
  over: the service is back when the region is, with nothing lost (an outage, not a
  destruction: the region's disks survive it). A restore that cannot work (no usable backup)
  also leaves the team waiting for the region.

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

__all__ = ["DISASTER_KINDS", "CommandLog", "Failover", "RestoresFromBackups"]

DISASTER_KINDS = ("disk_loss", "region_outage")
"""The fault kinds that call a :class:`Failover`."""

OWNER = "recovery/failover"
"""Prefix of this module's random streams."""

LAG_WINDOW_S = 3600.0
"""A rebuilt replica's catch-up assumes the WAL rate of the hour before the disaster."""


class RestoresFromBackups(Protocol):
    """The backup plane, as far as a recovery needs it."""

    def restore(self, disaster_s: float) -> RestoreResult:
        """Restore at ``disaster_s`` from the newest usable backup plus the archive."""
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
    traffic_at: dict[str, float] | None = None
    traffic_back: dict[str, float] | None = None


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
        replica_lag: The replicas' lag distribution (``postgres.replication_lag``): the lag of
            the promoted replica when ``replica_lag_now`` cannot tell it.
        replica_lag_now: The promoted replica's replay lag now, in seconds, when the replicas
            keep a replay position.
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
        replica_lag_now: Callable[[], float] | None = None,
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
        self.replica_lag_now = replica_lag_now
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
        record = self._record("disk_loss", node)
        if node == self.primary.name:
            self._lose_primary(record)
        elif node in self.replicas:
            self._lose_replica(record, self.replicas[node])
        else:
            known = ", ".join([self.primary.name, *self.replicas])
            raise ModelDefinitionError(f"a 'disk_loss' targets {node!r}, which is no database node (known: {known})")

    def lose_region(self, region: str, until: float) -> Undo:
        """Every actor of ``region`` is out until ``until``; fail over or wait, as the runbook goes."""
        actors = [actor for actor in self.kernel.actors.values() if actor.region == region]
        if not actors:
            raise ModelDefinitionError(f"a 'region_outage' targets {region!r}, where no actor runs")
        record = self._record("region_outage", region)
        now = record.at
        record.region_back_at = until
        recovered_to: float | None
        if self.config.failover.cross_region_replica:
            lag = self._cross_region_lag()
            data: list[tuple[str, float]] = [("promote the cross-region replica", self._promote())]
            path, recovered_to, restore = "promote-cross-region-replica", now - lag, None
        else:
            result = self._plane("a region outage without a cross-region replica").restore(now)
            data, recovered_to, restore = self._restore_steps(result)
            path = "restore-in-dr-region"
        timeline = self._steps.draw("region_outage", data)
        committed = now + timeline.commit_s
        if until <= committed or recovered_to is None or not math.isfinite(timeline.rto_s):
            # The region is back before anyone started the failover, or the failover cannot
            # bring the data back: the team waits for the region, whose disks survived.
            path = "region-returned" if until <= committed else f"{path}-failed-waited-for-region"
            timeline = timeline.until(until - now)
            recovered_to, back = now, until
        else:
            back = now + timeline.rto_s
        self._begin(record, path, timeline, recovered_to, back, restore, actors)
        return lambda: None  # everything was scheduled at the outage; the region's return changes nothing more

    # -- paths -------------------------------------------------------------------------------
    def _lose_primary(self, record: _Disaster) -> None:
        now = record.at
        restore: dict[str, Any] | None = None
        recovered_to: float | None
        if self.config.failover.on_primary_loss == "promote-replica" and self.replicas:
            lag = self.replica_lag_now() if self.replica_lag_now is not None else self._replica_lag()
            data: list[tuple[str, float]] = [("promote a replica", self._promote())]
            path, recovered_to = "promote-replica", now - max(0.0, lag)
        else:
            result = self._plane("restoring the primary").restore(now)
            data, recovered_to, restore = self._restore_steps(result)
            path = (
                "restore"
                if self.replicas or self.config.failover.on_primary_loss == "restore"
                else "restore-no-replica"
            )
        timeline = self._steps.draw("primary_loss", data)
        back = now + timeline.rto_s if recovered_to is not None else None
        self._begin(record, path, timeline, recovered_to, back, restore, [self.primary])

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
        down_for = math.inf if back is None else back - now
        for actor in actors:
            actor.crash(down_for)
        if back is not None:
            # scheduled after the restarts (same time, later event): the actors are up when it runs
            self.kernel.call_later(down_for, self._back, record)

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
        names = ("started", "accepted", "failed", "unanswered")
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

    def _summary(self, record: _Disaster) -> dict[str, Any]:
        names = self.runbook.step_names(record.scope)
        timeline = record.timeline
        seconds = timeline.step_seconds() if timeline is not None else {}
        rows: Mapping[str, int | None]
        if record.happened:
            rows = self.commits.rows_lost(record.recovered_to, record.at)
        else:
            rows = dict.fromkeys(self.commits.tables)
        rto = _finite(timeline.rto_s) if timeline is not None and record.recovered else None
        deep = record.deep_healthy_at
        return {
            "kind": record.kind,
            "target": record.target,
            "at": record.at,
            "happened": record.happened,
            "runbook": self.runbook.name,
            "path": record.path,
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
            "commands": self._commands(record),
            "traffic": self._traffic(record),
        }

    def summary(self) -> list[dict[str, Any]]:
        """Every disaster, planned or happened, in time order, as plain JSON-able data."""
        return [self._summary(record) for record in self.records]

    def summary_by_name(self) -> dict[str, dict[str, Any]]:
        """The same, keyed ``kind@target`` (``#2``, ``#3`` ... for repeats): dotted paths for expectations."""
        keyed: dict[str, dict[str, Any]] = {}
        for entry in self.summary():
            base = f"{entry['kind']}@{entry['target']}"
            key, n = base, 1
            while key in keyed:
                n += 1
                key = f"{base}#{n}"
            keyed[key] = entry
        return keyed
