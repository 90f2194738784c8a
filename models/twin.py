"""The composition root: builds the smart-home system from a scenario and runs it.

Placement (zones are what a partition fault can cut):

=================  ==================================================================
us-east-1a         api-gateway, device-manager, db-primary
us-east-1b         analytics-engine, ingest-consumer, db-replica-1, redis
us-east-1c         db-replica-2 (and further replicas), dlq
aws-managed        iot-core, kinesis (regional managed services, region us-east-1)
homes-net          meters, devices (region homes)
phones-net         mobile, dashboards (region phones)
monitoring-net     synthetic-monitor, with ``health.synthetic`` (region monitoring: outside AWS)
=================  ==================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.automation import ScheduledAutomation
from models.broker import Broker
from models.config import Scenario
from models.devices import ControllableDevices, MeterFleet
from models.faults import Flood, Poison
from models.ingest import IngestConsumer
from models.monitoring import HealthMonitor
from models.names import (
    ANALYTICS,
    API_GATEWAY,
    DASHBOARDS,
    DB_PRIMARY,
    DEVICE_MANAGER,
    DEVICES,
    DLQ,
    INGEST,
    IOT_CORE,
    KINESIS,
    METERS,
    METRICS,
    MOBILE,
    REDIS,
    db_replica,
    redis_master,
)
from models.postgres import Database, Postgres
from models.recovery.faults import (
    ARCHIVE,
    BACKUPS,
    DURABILITY_FAULTS,
    PLANNED_FAULTS,
    ArchiveFailure,
    BackupFailure,
    DiskLoss,
    RegionOutage,
    SegmentCorruption,
)
from models.redis import RedisCluster
from models.replication import WriteBurst
from models.services import AnalyticsEngine, ApiGateway, DeadLetterQueue, DeviceManager
from models.slo import SliRecorder, slo_problems
from models.stream import Stream
from models.workload import DashboardUsers, MobileUsers
from sim.expectations import numeric_paths
from sim.faults import ACTOR_FAULTS, NODE_FAULTS, Crash, FaultTimeline, draw_start_times, kind_of
from sim.kernel import Kernel, Progress
from sim.twin import Estimate

if TYPE_CHECKING:
    from models.recovery.wiring import Recovery
    from sim.report.profile import ReportProfile

__all__ = ["TWIN", "SmartHomeTwin", "World", "build"]

REGION = "us-east-1"
HOMES = ("homes-net", "homes")
PHONES = ("phones-net", "phones")
MONITORING = ("monitoring-net", "monitoring")
GROUPS = ("us-east-1a", "us-east-1b", "us-east-1c", "aws-managed", REGION, *HOMES, *PHONES)


def _replica_zone(index: int) -> str:
    return "us-east-1b" if index == 0 else "us-east-1c"


@dataclass
class World:
    """Everything one run is made of, for results and for tests that look inside."""

    scenario: Scenario
    kernel: Kernel
    stream: Stream
    broker: Broker
    database: Database
    primary: Postgres
    replicas: list[Postgres]
    redis: RedisCluster
    gateway: ApiGateway
    device_manager: DeviceManager
    analytics: AnalyticsEngine
    ingest: IngestConsumer
    dlq: DeadLetterQueue
    meters: MeterFleet
    devices: ControllableDevices
    mobile: MobileUsers
    dashboards: DashboardUsers
    faults: FaultTimeline
    automation: ScheduledAutomation | None = None
    monitor: HealthMonitor | None = None
    slo: SliRecorder | None = None
    recovery: Recovery | None = None


def build(scenario: Scenario, seed: int) -> World:
    """Assemble the system described by ``scenario`` on a fresh kernel."""
    net = scenario.network
    durability = scenario.durability
    start = durability.detail_from if durability is not None else 0.0
    kernel = Kernel(
        seed,
        links={"access": net.access, "zone": net.zone, "region": net.region},
        metrics_interval=scenario.metrics_interval,
        keep_spans=scenario.keep_spans,
        start=start,  # a long horizon's history before it is computed in aggregate (models.recovery)
    )
    if any(fault.within is not None for fault in scenario.faults):  # start times drawn for this seed, once
        drawn = draw_start_times(scenario.faults, kernel.streams.stream("faults/start-times"))
        scenario = scenario.model_copy(update={"faults": drawn})
    kernel.metrics.declare(*METRICS)
    stream = Stream(kernel, scenario.stream, zone="aws-managed", region=REGION)
    broker = Broker(kernel, scenario.broker, stream, zone="aws-managed", region=REGION)
    bill_until = max(0.0, scenario.duration - scenario.analytics.billing.late_data_grace)
    database = Database(scenario.postgres, scenario.fleet.report_every, scenario.fleet.meters, bill_until)
    primary = Postgres(
        kernel, DB_PRIMARY, scenario.postgres, database, role="primary", zone="us-east-1a", region=REGION
    )
    replicas = [
        Postgres(
            kernel,
            db_replica(i + 1),
            scenario.postgres,
            database,
            role="replica",
            zone=_replica_zone(i),
            region=REGION,
        )
        for i in range(scenario.postgres.replicas)
    ]
    redis = RedisCluster(
        kernel,
        scenario.redis,
        zone="us-east-1b",
        region=REGION,
        session_users=scenario.workload.mobile_users + scenario.workload.dashboard_users,
    )
    gateway = ApiGateway(kernel, scenario.gateway, zone="us-east-1a", region=REGION)
    device_manager = DeviceManager(kernel, scenario.device_manager, zone="us-east-1a", region=REGION)
    # With no read replica the analytics engine has only the primary to query.
    readable = tuple(r.name for r in replicas) or (primary.name,)
    analytics = AnalyticsEngine(kernel, scenario.analytics, readable, zone="us-east-1b", region=REGION)
    ingest = IngestConsumer(
        kernel,
        scenario.ingest,
        stream,
        unique_index=scenario.postgres.unique_readings_index,
        zone="us-east-1b",
        region=REGION,
    )
    dlq = DeadLetterQueue(kernel, zone="us-east-1c", region=REGION)
    meters = MeterFleet(kernel, scenario.fleet, broker, zone=HOMES[0], region=HOMES[1], bill_until=bill_until)
    devices = ControllableDevices(kernel, scenario.fleet, broker, zone=HOMES[0], region=HOMES[1])
    mobile = MobileUsers(
        kernel,
        scenario.workload,
        scenario.fleet.controllables,
        until=scenario.duration - scenario.workload.quiet_before_end,
        zone=PHONES[0],
        region=PHONES[1],
    )
    dashboards = DashboardUsers(kernel, scenario.workload, scenario.fleet.meters, zone=PHONES[0], region=PHONES[1])
    schedule = scenario.workload.automation
    automation = (
        ScheduledAutomation(kernel, schedule, scenario.fleet.controllables, zone="us-east-1b", region=REGION)
        if schedule is not None
        else None
    )
    # Faults from the clock's start on run on the timeline; archive and backup faults before it
    # (on a long horizon) are the backup plane's, computed in aggregate.
    timed = [fault for fault in scenario.faults if fault.at >= start]
    monitor = HealthMonitor(
        kernel,
        scenario.health,
        device_manager,
        broker,
        timed,
        canary_id=scenario.fleet.controllables,  # the first id after the fleet's devices
        zone=MONITORING[0],
        region=MONITORING[1],
    )
    slo = _slo_recorder(scenario, dashboards, ingest)
    components: dict[str, object] = {METERS: meters, MOBILE: mobile, **{m.name: m for m in redis.masters}}
    recovery = None
    if durability is not None:
        from models.recovery.wiring import build_recovery  # only scenarios with a durability section pay for it

        recovery = build_recovery(
            kernel, scenario, region=REGION, database=database, primary=primary, replicas=replicas,
            monitor=monitor, mobile=mobile, meters=meters,
        )  # fmt: skip
        components.update(recovery.components())
    faults = FaultTimeline(kernel, timed, components)
    return World(
        scenario, kernel, stream, broker, database, primary, replicas, redis, gateway, device_manager,
        analytics, ingest, dlq, meters, devices, mobile, dashboards, faults, automation=automation,
        monitor=monitor, slo=slo, recovery=recovery,
    )  # fmt: skip


def _slo_recorder(scenario: Scenario, dashboards: DashboardUsers, ingest: IngestConsumer) -> SliRecorder | None:
    """The counters of the scenario's SLOs, hooked where they count (none without SLOs: no cost)."""
    if not scenario.slos:
        return None
    recorder = SliRecorder(scenario.slos)
    if recorder.needs_dashboards:
        dashboards.slo_hook = recorder.dashboard_finished
    if recorder.needs_readings:
        ingest.slo_hook = recorder.readings_ingested
    return recorder


class SmartHomeTwin:
    """The smart-home energy management backend of the design review."""

    name = "smart-home"
    scenario_type = Scenario

    @property
    def report_profile(self) -> ReportProfile:
        """What the report generator draws and catalogues for this system (imported on first
        use: running a scenario never loads matplotlib's side of the twin)."""
        from models.report_profile import REPORT_PROFILE

        return REPORT_PROFILE

    @property
    def scenarios_dir(self) -> Path | None:
        """The scenarios shipped with the twin: inside the package when installed from a
        wheel, the repository's ``scenarios/`` in a development checkout."""
        package = Path(__file__).resolve().parent
        for candidate in (package / "scenarios", package.parent / "scenarios"):
            if candidate.is_dir():
                return candidate
        return None

    def fault_targets(self, scenario: Scenario) -> dict[str, frozenset[str]]:
        """Every fault target the scenario's system has, with the fault kinds it accepts."""
        actors = [IOT_CORE, KINESIS, DB_PRIMARY, REDIS, API_GATEWAY, DEVICE_MANAGER, ANALYTICS, INGEST, DLQ]
        actors += [db_replica(i + 1) for i in range(scenario.postgres.replicas)]
        targets: dict[str, frozenset[str]] = dict.fromkeys(actors, ACTOR_FAULTS)
        for node in (METERS, DEVICES, MOBILE, DASHBOARDS):
            targets[node] = NODE_FAULTS
        targets[METERS] = NODE_FAULTS | {kind_of(Poison)}
        targets[MOBILE] = NODE_FAULTS | {kind_of(Flood)}
        targets[DB_PRIMARY] = targets[DB_PRIMARY] | {kind_of(WriteBurst)}
        for i in range(scenario.redis.masters):
            targets[redis_master(i + 1)] = frozenset({kind_of(Crash)})
        for group in GROUPS:
            targets[group] = frozenset({"partition"})
        if scenario.durability is not None:
            targets[ARCHIVE] = frozenset({kind_of(ArchiveFailure), kind_of(SegmentCorruption)})
            targets[BACKUPS] = frozenset({kind_of(BackupFailure)})
            for database in (DB_PRIMARY, *(db_replica(i + 1) for i in range(scenario.postgres.replicas))):
                targets[database] = targets[database] | {kind_of(DiskLoss)}
            targets[REGION] = targets[REGION] | {kind_of(RegionOutage)}
        return targets

    def check(self, scenario: Scenario) -> list[tuple[tuple[str | int, ...], str]]:
        """Unknown fault targets and kinds a target cannot take."""
        targets = self.fault_targets(scenario)
        known = ", ".join(sorted(targets))
        problems: list[tuple[tuple[str | int, ...], str]] = []
        durability = scenario.durability
        start = durability.detail_from if durability is not None else 0.0
        if durability is not None and start >= scenario.duration:
            problems.append(
                (
                    ("durability", "detail_from"),
                    f"the detailed twin would start at {start:g}s, at or after the run ends ({scenario.duration:g}s)",
                )
            )
        for index, fault in enumerate(scenario.faults):
            accepted = targets.get(fault.target)
            if durability is None and isinstance(fault, DURABILITY_FAULTS):
                problems.append(
                    (("faults", index, "kind"), f"a {fault.kind!r} fault needs a durability: section to act on")
                )
                continue
            if fault.at < start and not isinstance(fault, PLANNED_FAULTS):
                problems.append(
                    (
                        ("faults", index, "at"),
                        f"starts at {fault.at:g}s, before durability.detail_from ({start:g}s) when the detailed "
                        "twin starts; only archive and backup faults may start earlier",
                    )
                )
            if accepted is None:
                problems.append((("faults", index, "target"), f"unknown target {fault.target!r} (known: {known})"))
            elif fault.kind not in accepted:
                problems.append(
                    (
                        ("faults", index, "kind"),
                        f"fault kind {fault.kind!r} cannot target {fault.target!r} "
                        f"(it accepts: {', '.join(sorted(accepted))})",
                    )
                )
            for position, other in enumerate(getattr(fault, "other", None) or []):
                if other not in targets or "partition" not in targets[other]:
                    problems.append((("faults", index, "other", position), f"unknown partition group {other!r}"))
                elif other == fault.target:
                    problems.append(
                        (("faults", index, "other", position), f"{other!r} is the target itself: nothing to cut")
                    )
            if isinstance(fault, Flood) and fault.device >= scenario.fleet.controllables:
                problems.append(
                    (
                        ("faults", index, "device"),
                        f"no device {fault.device} (fleet.controllables is {scenario.fleet.controllables})",
                    )
                )
            if isinstance(fault, WriteBurst) and fault.table not in scenario.postgres.wal_bytes_per_row:
                problems.append(
                    (
                        ("faults", index, "table"),
                        f"no WAL figure for table {fault.table!r} (postgres.wal_bytes_per_row has: "
                        f"{', '.join(sorted(scenario.postgres.wal_bytes_per_row))})",
                    )
                )
            if isinstance(fault, Poison):
                if scenario.fleet.meters == 0:
                    problems.append((("faults", index, "target"), "poison needs meters to send it (fleet.meters is 0)"))
                if fault.schema_version in scenario.ingest.supported_schema_versions:
                    problems.append(
                        (
                            ("faults", index, "schema_version"),
                            f"schema_version {fault.schema_version} is one the consumer supports, so it is no poison "
                            f"(supported: {scenario.ingest.supported_schema_versions})",
                        )
                    )
            if fault.latest_start >= scenario.duration:
                where, latest = (
                    ("at", f"at {fault.at}s")
                    if fault.within is None
                    else ("within", f"as late as {fault.latest_start}s")
                )
                problems.append(
                    (("faults", index, where), f"starts {latest}, after the run ends ({scenario.duration}s)")
                )
        workload = scenario.workload
        if workload.mobile_users and workload.commands_per_user_per_hour and not scenario.fleet.controllables:
            problems.append(
                (
                    ("workload", "mobile_users"),
                    "mobile users need devices to command: set fleet.controllables > 0 or mobile_users: 0",
                )
            )
        if workload.dashboard_users and workload.queries_per_user_per_hour and not scenario.fleet.meters:
            problems.append(
                (
                    ("workload", "dashboard_users"),
                    "dashboards report on meters: set fleet.meters > 0 or dashboard_users: 0",
                )
            )
        problems += slo_problems(scenario)
        return problems

    def result_paths(self, scenario: Scenario) -> set[str]:
        """The numbers a run of ``scenario`` reports: read from the result of the world as
        built, before it runs (its shape does not depend on how long it runs: an SLO's
        figures and each of its alerts are there, None until measured, so expectations
        such as ``slos.api-availability.alerts.page-1h.fired_at_s`` are checked too)."""
        from models.results import summarise

        return numeric_paths(summarise(build(scenario, seed=0)))

    def estimate(self, scenario: Scenario) -> Estimate:
        """What running ``scenario`` would cost (events, memory, wall time) and what drives it."""
        from models.cost import estimate

        return estimate(scenario)

    def run(self, scenario: Scenario, seed: int, progress: Progress | None = None) -> dict[str, Any]:
        """Simulate ``scenario`` and return the result body."""
        world = build(scenario, seed)
        world.kernel.run(until=scenario.duration, progress=progress)
        from models.results import summarise

        return summarise(world)


TWIN = SmartHomeTwin()
