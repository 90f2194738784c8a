"""Fault kinds of durability and disaster recovery, registered by the model beside its others.

Two families:

* **Planned** faults act on the archive and the backups (``archive_failure``,
  ``segment_corruption``, ``backup_failure``). The backup plane reads them from the scenario
  when it is built, because on a long horizon they may start before the detailed twin does
  (``durability.detail_from``): their effect is computed in aggregate, and their ``start`` only
  checks that the plane exists. Such a fault lasts ``for`` a while, or (no ``for``) until a
  check catches it and someone fixes its cause: a silently broken ``archive_command`` stays
  broken until somebody looks.
* **Disasters** act on the detailed twin when they happen (``disk_loss`` of a database node,
  ``region_outage``): the recovery they set off is timed step by step.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from pydantic import Field

from sim.durations import Duration
from sim.errors import ModelDefinitionError
from sim.faults import Fault, FaultContext, LastingFault, Undo

__all__ = [
    "ARCHIVE",
    "BACKUPS",
    "DURABILITY_FAULTS",
    "PLANNED_FAULTS",
    "ArchiveFailure",
    "BackupFailure",
    "DisasterTarget",
    "DiskLoss",
    "PlannedFault",
    "RegionOutage",
    "SegmentCorruption",
]

ARCHIVE = "wal-archive"
"""The fault target standing for the WAL archive (an S3 bucket and the archive_command)."""
BACKUPS = "backups"
"""The fault target standing for the base-backup job."""


class PlannedFault(Fault):
    """A fault the backup plane computes in advance (see the module docstring)."""

    for_: Duration | None = Field(
        default=None,
        alias="for",
        description="how long it lasts; none: until a check catches it and its cause is fixed",
    )

    @property
    def until(self) -> float | None:
        return None if self.for_ is None else self.at + self.for_

    def start(self, ctx: FaultContext) -> Undo | None:
        ctx.component(self.target, self.kind)  # the plane carries it out; here only a model check
        return None


class ArchiveFailure(PlannedFault):
    """Archive uploads fail (``archive_command`` exits non-zero): PostgreSQL retries them and
    keeps the segments in ``pg_wal`` meanwhile, so the archive falls behind, visibly."""

    kind: Literal["archive_failure"]


class SegmentCorruption(PlannedFault):
    """Archived segments are silently lost or corrupt, while the archiver reports success
    (C4: a misconfigured bucket policy whose permission errors are logged and ignored)."""

    kind: Literal["segment_corruption"]
    mode: Literal["missing", "corrupt"] = Field(
        default="missing", description="missing: the object never lands; corrupt: it lands damaged"
    )
    fraction: float = Field(default=1.0, gt=0, le=1, description="share of the segments archived meanwhile hit")


class BackupFailure(PlannedFault):
    """Base backup jobs fail: loudly (``failed``: no backup) or silently (``truncated``: the job
    reports success but files are missing, which only verification or a restore finds)."""

    kind: Literal["backup_failure"]
    mode: Literal["failed", "truncated"] = Field(default="failed", description="how the jobs fail")


@runtime_checkable
class DisasterTarget(Protocol):
    """The part of the model that recovers from disasters (the failover driver)."""

    def lose_disk(self, node: str) -> None:
        """``node``'s storage is gone, now: recover as the scenario's runbook says."""

    def lose_region(self, region: str, until: float) -> Undo:
        """The whole region is out until ``until`` (or until undone)."""


class DiskLoss(Fault):
    """A database node loses its disk, and every byte on it (the primary's, in C4)."""

    kind: Literal["disk_loss"]

    def start(self, ctx: FaultContext) -> None:
        target = ctx.component(self.target, self.kind)
        if not isinstance(target, DisasterTarget):
            raise ModelDefinitionError(f"a 'disk_loss' fault targets {self.target!r}, which has no disk to lose")
        target.lose_disk(self.target)


class RegionOutage(LastingFault):
    """A whole region is out (every zone and the managed services in it) for ``for``."""

    kind: Literal["region_outage"]

    def start(self, ctx: FaultContext) -> Undo:
        target = ctx.component(self.target, self.kind)
        if not isinstance(target, DisasterTarget):
            raise ModelDefinitionError(f"a 'region_outage' fault targets {self.target!r}, which is no region")
        return target.lose_region(self.target, self.at + self.for_)


PLANNED_FAULTS: tuple[type[PlannedFault], ...] = (ArchiveFailure, SegmentCorruption, BackupFailure)
DURABILITY_FAULTS: tuple[type[Fault], ...] = (*PLANNED_FAULTS, DiskLoss, RegionOutage)
