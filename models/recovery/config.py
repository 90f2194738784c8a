"""The ``durability:`` section of a scenario: backups, WAL archiving, restore, the checks that
may catch a broken archive, and how a disaster is recovered from.

Absent (the default), nothing of this runs and no other figure changes. Present, a run keeps
the record of what was committed (:mod:`models.recovery.commits`), archives WAL, takes base
backups on schedule and, at a disaster (a ``disk_loss`` of the primary or a ``region_outage``),
measures the RPO and the RTO the design really gives.

Defaults reproduce the review's design: daily base backups, WAL archiving with PostgreSQL's
defaults (``archive_timeout`` off), 30 days' retention, no verification, no restore tests, no
drills, a manual runbook, and a DR region restored from backups (active-passive, nothing
streaming across regions). Each countermeasure of finding C4 is a field, off as designed, whose
description gives the review's value.

Long horizons: C4 is a story of months, so the detailed twin (meters, users, services) need
not run through them. ``detail_from`` starts the detailed world late: before it every table is
written at its aggregate rate (``flows``); after it each flow runs at the level it names.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from sim.distributions import Distribution, constant, lognormal
from sim.durations import Duration, Offset
from sim.spec import Spec

__all__ = [
    "DATA_STEP",
    "BackupsConfig",
    "ChecksConfig",
    "DisasterKind",
    "DurabilityConfig",
    "FailoverConfig",
    "Flow",
    "RestoreConfig",
    "RunbookStepConfig",
    "Table",
    "WalConfig",
]

MIB = 1024 * 1024
MAX_BYTES = 1e18
MAX_ROWS_PER_S = 1e9


class _Config(Spec):
    model_config = ConfigDict(validate_default=True)


Table = Literal["readings", "device_commands", "users"]
"""The tables whose committed rows an RPO counts."""


def _review_flows() -> dict[Table, Flow]:
    return {
        "readings": Flow(level="records"),
        "device_commands": Flow(level="records"),
        "users": Flow(rows_per_s=0.01),
    }


class Flow(_Config):
    """One table's writes: an aggregate rate, and in the detail window the level of detail."""

    rows_per_s: float = Field(
        default=0.0, ge=0, le=MAX_ROWS_PER_S, description="rows committed per second when counted in aggregate"
    )
    level: Literal["aggregate", "records"] = Field(
        default="aggregate",
        description="in the detail window: 'records' counts the rows the detailed twin really commits, "
        "'aggregate' keeps the rate (before detail_from every flow is aggregate)",
    )


class WalConfig(_Config):
    """WAL segments and the archiver (PostgreSQL's ``archive_command``)."""

    segment_size: int = Field(default=16 * MIB, ge=MIB, le=1024 * MIB, description="wal_segment_size in bytes")
    archive_timeout: Offset = Field(
        default=0.0,
        description="force a segment switch this long after the last one if WAL was written; 0 = off "
        "(PostgreSQL's default, and the design's: it says nothing); otherwise at least 1s (PostgreSQL "
        "counts it in whole seconds)",
    )
    upload_time: Distribution = Field(
        default_factory=lambda: lognormal("1s", 0.5), description="one archive_command run (a 16 MiB PUT)"
    )
    retry_interval: Duration = Field(
        default=60.0, description="after a failed archive_command the archiver retries about a minute later"
    )

    @field_validator("archive_timeout")
    @classmethod
    def _whole_seconds(cls, value: float) -> float:
        if value != 0 and value < 1:
            raise ValueError(
                f"archive_timeout must be 0 (off) or at least 1s: PostgreSQL counts it in whole seconds, and a "
                f"sub-second timeout would cut a segment every {value:g} s (got {value:g} s)"
            )
        return value

    @field_validator("segment_size")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError(f"expected a power of two between 1 MiB and 1 GiB, as PostgreSQL requires (got {value})")
        return value


class BackupsConfig(_Config):
    """Scheduled base backups (``pg_basebackup`` or a backup tool), kept for ``retention``."""

    every: Duration = Field(default=86400.0, description="one base backup a day (the design)")
    first_at: Offset = Field(default=3 * 3600.0, description="the first backup starts then (an off-peak hour)")
    throughput: float = Field(default=100e6, gt=0, le=MAX_BYTES, description="bytes per second a base backup copies")
    retention: Duration = Field(
        default=30 * 86400.0,
        description="the window the backups cover: after each job that reports success, backups that ended "
        "more than this long before are deleted, except the newest of them (it is what restores to the "
        "window's start, as pgBackRest's time-based retention keeps it); failed jobs delete nothing, so a "
        "run of failures never expires the last good backups (Barman's minimum_redundancy)",
    )
    initial_size: float = Field(
        default=50e9, ge=0, le=MAX_BYTES, description="database size in bytes at time 0; it grows with every row"
    )
    wal: Literal["archive", "stream"] = Field(
        default="archive",
        description="where a backup gets the WAL it needs to be consistent (from its start to its end). "
        "'archive' (the default): from the WAL archive, as the backups of pgBackRest or WAL-G do, the tools "
        "behind the review's 'daily backups + WAL archiving' to S3 -- a broken archive makes every backup "
        "taken meanwhile unrestorable, and pg_verifybackup checks that WAL in the archive. 'stream': "
        "pg_basebackup's default -X stream, each backup carries its own WAL: pg_verifybackup checks the "
        "backup's own pg_wal (it never sees the archive), and a restore needs the archive only to replay "
        "past the backup's end",
    )


class RestoreConfig(_Config):
    """How fast a restore runs: copy the base backup, then fetch and replay WAL."""

    copy_rate: float = Field(default=200e6, gt=0, le=MAX_BYTES, description="bytes per second copying the backup")
    replay_rate: float = Field(default=50e6, gt=0, le=MAX_BYTES, description="bytes per second of WAL replay")
    fetch_time: Offset = Field(default=0.2, description="restore_command time per WAL segment (one GET)")


class ChecksConfig(_Config):
    """Finding C4's countermeasures: each off (None) as designed; the descriptions give the review's values."""

    verify_backups: bool = Field(
        default=False, description="run pg_verifybackup on every completed backup (review: yes)"
    )
    wal_checksums: Duration | None = Field(
        default=None,
        description="how often the archived WAL is listed and every object's checksum verified: catches missing "
        "and corrupt segments (review: checksum verification of archived WAL; e.g. 1h)",
    )
    archive_lag_alert: Duration | None = Field(
        default=None,
        description="alert when a segment has waited longer than this to be archived (review: < 1 min); "
        "catches failing uploads, not uploads that silently report success",
    )
    backup_size_alert: float | None = Field(
        default=None,
        gt=0,
        le=10,
        description="alert when a backup's size deviates from the 7-day average by more than this fraction "
        "(review: 0.2)",
    )
    restore_test_every: Duration | None = Field(
        default=None,
        description="restore the newest backup in an isolated environment and replay the archive, then check "
        "schema and row counts (review: weekly, 7d)",
    )
    full_restore_every: Duration | None = Field(
        default=None,
        description="a full restore (review: monthly, 30d): like a restore test, and timed -- its duration_s is "
        "copying the backup plus fetching and replaying the WAL, not the runbook's other steps (detect, "
        "decide, repoint) nor application integration",
    )
    dr_drill_every: Duration | None = Field(
        default=None,
        description="a DR drill (review: quarterly, 90d): a timed restore into the DR region, checked and timed "
        "like a full restore; it does not change the runbook a disaster draws (choose failover.runbook: "
        "rehearsed for a drilled, partly automated runbook)",
    )
    restore_test_alert: Duration | None = Field(
        default=None, description="alert when the last successful restore test is older than this (review: 7d)"
    )
    respond: Distribution = Field(
        default_factory=lambda: lognormal("4h", 0.5),
        description="from an alert to its cause fixed and a fresh base backup started",
    )
    verify_after: Offset = Field(
        default=600.0,
        description="pg_verifybackup runs this long after a backup ends, once the WAL it needs should be archived",
    )
    restore_test_max_rpo: Duration = Field(
        default=3600.0,
        description="a restore test fails when the restored data is older than this (its row-count check; "
        "the review's RPO claim)",
    )


DisasterKind = Literal["primary_loss", "replica_loss", "region_outage"]
"""What a runbook step can be part of: the primary's disk lost, a replica's disk lost, a region out."""
_EVERY_DISASTER: tuple[DisasterKind, ...] = ("primary_loss", "replica_loss", "region_outage")

DATA_STEP = "recover data"
"""The name results report the data's recovery under (all its parts together): reserved, so no
timed step of a runbook may take it (its seconds would be summed with the data's)."""


class RunbookStepConfig(_Config):
    """One step of a recovery runbook, with how long it takes.

    Exactly one step of a runbook recovers the data (``recovers_data``): its time is not given
    here but by the recovery path (promoting a replica, or restoring from the backups), and its
    start is the point of no return: a team that has not reached it when the region comes back
    does not fail over (:mod:`models.recovery.failover`).
    """

    name: str = Field(min_length=1, max_length=80, description="what the step does")
    time: Distribution | None = Field(
        default=None, description="how long it takes; omitted on the step that recovers the data"
    )
    recovers_data: bool = Field(
        default=False,
        description="the place of the data's recovery (promotion or restore), timed by the recovery path",
    )
    applies_to: list[DisasterKind] = Field(
        default_factory=lambda: list(_EVERY_DISASTER),
        min_length=1,
        description="the disasters this step is part of (warming caches only follows a region's loss, "
        "a replica's rebuild needs no DNS change)",
    )

    @model_validator(mode="after")
    def _timed(self) -> RunbookStepConfig:
        if self.name == DATA_STEP and not self.recovers_data:
            raise ValueError(
                f"step name {DATA_STEP!r} is reserved: results report the data's recovery under it; "
                "give this step another name (or mark it recovers_data: true if it is the data step)"
            )
        if self.recovers_data and self.time is not None:
            raise ValueError("the step that recovers the data takes its time from the recovery path: omit 'time'")
        if not self.recovers_data and self.time is None:
            raise ValueError(f"step {self.name!r}: give its 'time' (only the data's recovery step has none)")
        if self.recovers_data and set(self.applies_to) != set(_EVERY_DISASTER):
            raise ValueError("the step that recovers the data is part of every disaster: omit 'applies_to'")
        return self


class FailoverConfig(_Config):
    """How a lost primary or a lost region is recovered from, as timed runbook steps."""

    on_primary_loss: Literal["promote-replica", "restore"] = Field(
        default="promote-replica",
        description="a primary's disk lost: promote an in-region streaming replica, or restore from backups "
        "into a new server (the review's C4 narrative)",
    )
    cross_region_replica: bool = Field(
        default=False,
        description="a streaming replica in the DR region; as designed the DR region is restored from backups",
    )
    cross_region_lag: Distribution = Field(
        default_factory=lambda: lognormal("1s", 0.7),
        description="replication lag of the cross-region replica at the disaster",
    )
    promote_time: Distribution = Field(
        default_factory=lambda: constant("30s"), description="pg_promote and the end of recovery on a replica"
    )
    runbook: Literal["manual", "rehearsed"] | list[RunbookStepConfig] = Field(
        default="manual",
        description="the steps around the data's recovery (detect, decide, repoint clients and DNS, warm "
        "caches): 'manual' as designed, 'rehearsed' partly automated and drilled, or a list of steps "
        "(one of them with recovers_data: true); the presets are in models.recovery.runbook",
    )

    @field_validator("runbook")
    @classmethod
    def _one_data_step(
        cls, value: Literal["manual", "rehearsed"] | list[RunbookStepConfig]
    ) -> Literal["manual", "rehearsed"] | list[RunbookStepConfig]:
        if isinstance(value, list):
            marked = sum(step.recovers_data for step in value)
            if marked != 1:
                raise ValueError(f"a runbook needs exactly one step with recovers_data: true (got {marked})")
            names = [step.name for step in value]
            if len(set(names)) != len(names):
                raise ValueError("runbook step names must be unique (results report each step by name)")
        return value


class DurabilityConfig(_Config):
    """See the module docstring."""

    detail_from: Offset = Field(
        default=0.0,
        description="the detailed twin starts here; before it every table is written at its aggregate rate "
        "(months of backups in seconds of wall time)",
    )
    flows: dict[Table, Flow] = Field(
        default_factory=_review_flows,
        description="per table: the aggregate write rate, and the level of detail in the detail window",
    )
    wal: WalConfig = Field(default_factory=WalConfig)
    backups: BackupsConfig = Field(default_factory=BackupsConfig)
    restore: RestoreConfig = Field(default_factory=RestoreConfig)
    checks: ChecksConfig = Field(default_factory=ChecksConfig)
    failover: FailoverConfig = Field(default_factory=FailoverConfig)

    @model_validator(mode="after")
    def _records_need_the_twin(self) -> DurabilityConfig:
        if "users" in self.flows and self.flows["users"].level == "records":
            raise ValueError("flows.users.level: the twin commits no user rows one by one; expected 'aggregate'")
        return self
