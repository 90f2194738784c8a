"""Wires durability into the twin: the commit log on the database's commit hook, the backup
plane, and the failover driver standing behind the disaster fault targets.

Kept apart from :mod:`models.twin` so that a scenario without a ``durability:`` section never
imports any of it, and so that the twin's composition root stays one screen long.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from models.names import DB_PRIMARY
from models.recovery.backups import BackupPlane
from models.recovery.commits import CommitLog
from models.recovery.failover import Failover
from models.recovery.faults import ARCHIVE, BACKUPS

if TYPE_CHECKING:
    from models.config import Scenario
    from models.devices import MeterFleet
    from models.monitoring import HealthMonitor
    from models.postgres import Database, Postgres
    from models.workload import MobileUsers
    from sim.kernel import Kernel

__all__ = ["Recovery", "build_recovery"]


@dataclass
class Recovery:
    """The durability parts of one run."""

    commits: CommitLog
    plane: BackupPlane
    failover: Failover
    region: str

    def components(self) -> dict[str, object]:
        """The fault targets these parts stand behind, by name."""
        targets: dict[str, object] = {ARCHIVE: self.plane, BACKUPS: self.plane, DB_PRIMARY: self.failover}
        targets.update(dict.fromkeys(self.failover.replicas, self.failover))
        targets[self.region] = self.failover
        return targets


def build_recovery(
    kernel: Kernel,
    scenario: Scenario,
    *,
    region: str,
    database: Database,
    primary: Postgres,
    replicas: Sequence[Postgres],
    monitor: HealthMonitor,
    mobile: MobileUsers,
    meters: MeterFleet,
) -> Recovery:
    """Build the durability parts of ``scenario`` (which must have a ``durability:`` section)."""
    config = scenario.durability
    if config is None:
        raise ValueError("build_recovery needs a scenario with a durability section")
    commits = CommitLog(config.flows, scenario.postgres.wal_bytes_per_row, detail_from=config.detail_from)
    database.listeners.append(commits.record)
    plane = BackupPlane(kernel, config, commits, scenario.faults, horizon=scenario.duration)

    def traffic() -> Mapping[str, float]:
        return {
            "readings_emitted": meters.emitted,
            "readings_given_up": meters.given_up,
            "readings_waiting_to_resend": len(meters.retries),
        }

    failover = Failover(
        kernel,
        config,
        commits,
        plane,
        primary=primary,
        replicas=list(replicas),
        replica_lag=scenario.postgres.replication_lag,
        replica_wal={replica.name: replica for replica in replicas if replica.replay is not None},
        disasters=scenario.faults,
        deep_probe=monitor.probers.get("deep"),
        commands=mobile,
        traffic=traffic,
    )
    return Recovery(commits, plane, failover, region)
