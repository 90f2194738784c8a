"""The smart-home backend's failure modes, one FMEA row each: what the review found, measured.

Each :class:`~sim.report.profile.FailureMode` names the scenario that measures it, its
as-designed and countermeasure variants (exactly as the scenario file spells them) and the
paths in a variant's result body (docs/results.md) that give the harm, the share of the
population touched and the time the design first noticed.  :mod:`sim.report.fmea` scores
them by its documented rule and renders ``reports/failure-modes.md``; nothing here is a
score, only where to read the numbers that make one.

The runbook skeletons (finding M4) name the signals and checks the twin shows would have
found each failure, and the mitigations its countermeasure variants measured.
"""

from __future__ import annotations

from sim.report.profile import FailureMode, Runbook, Signal

__all__ = ["FAILURE_MODES"]

_SUCCESS = Signal("command success rate", ("flows", "commands", "success_rate"), worse="lower")
_SHALLOW_AT = "the only probe as designed, the device manager's shallow /health (health.faults[].detection.shallow)"


_REPLICA_WINDOW_ERRORS = Signal(
    "dashboard refreshes failed during the slow replica (fault 0's window)",
    ("timeseries", "dashboard.errors"),
    window_series=("dashboard.errors", "dashboard.requests"),
    window_fault=0,
)


def _shallow(fault: int) -> Signal:
    """When the as-designed shallow probe turned unhealthy on fault ``fault`` (null: it never did)."""
    return Signal("shallow /health turned unhealthy", ("health", "faults", fault, "detection", "shallow", "at"), "s")


FAILURE_MODES: tuple[FailureMode, ...] = (
    FailureMode(
        finding="C1",
        title="Orphaned commands",
        component="device manager (device_commands row, MQTT publish)",
        trigger="IoT Core fails half the publishes for 2 min; the device manager crashes mid-request",
        scenario="c1-outbox",
        as_designed="as-designed",
        countermeasure="outbox",
        countermeasure_text="transactional outbox: the command row and its publish intent commit together, "
        "a relay publishes and retries until the broker accepts",
        effect=Signal("orphaned commands", ("flows", "commands", "orphaned"), "commands"),
        effect_of=("flows", "commands", "intents"),
        exposure=Signal("orphaned commands", ("flows", "commands", "orphaned"), "commands"),
        exposure_of=("flows", "commands", "intents"),
        harm="silent",
        detection_signal=f"none: the app is told 'accepted' and the row stays pending; {_SHALLOW_AT} stays green",
        detection=_shallow(0),
        residual_risk="the outbox delivers at least once: a relay retry after a lost acknowledgement "
        "sends the command again, so devices must deduplicate by command id (C2)",
        runbook=Runbook(
            detection="rows in device_commands still 'pending' well past the publish timeout; "
            "IoT Core publish error rate",
            first_checks=(
                "count pending device_commands older than a minute, by device",
                "IoT Core publish errors and throttles in the same window",
                "device manager restarts (a crash between the row and the publish orphans that command)",
            ),
            mitigation=(
                "republish the pending commands whose intent is still wanted, then mark them sent",
                "turn on the outbox relay (device_manager.outbox) so a failed publish is retried, not lost",
            ),
        ),
        trace_kind="commands",
        trace_state="failed",
        trace_reason="orphaned_pending",
    ),
    FailureMode(
        finding="C2",
        title="Commands applied twice",
        component="device manager, command API, devices",
        trigger="the network loses device acknowledgements and app responses; the app and the broker resend",
        scenario="c2-idempotency",
        as_designed="as-designed",
        countermeasure="idempotency-keys",
        countermeasure_text="idempotency keys from the app, kept by the device manager, plus devices dropping "
        "command ids they already applied",
        effect=Signal("commands applied more than once", ("flows", "commands", "applied_more_than_once"), "commands"),
        effect_of=("flows", "commands", "applied"),
        exposure=Signal("commands applied more than once", ("flows", "commands", "applied_more_than_once")),
        exposure_of=("flows", "commands", "intents"),
        harm="wrong",
        detection_signal="none: a duplicate looks like the user pressing twice; nothing compares intents "
        "with applications",
        detection=None,
        residual_risk="keys alone are not enough (keys-only still applies duplicates: the broker's QoS 1 "
        "resends reach the device); keys expire after their TTL, so a retry later than that runs again",
        runbook=Runbook(
            detection="devices reporting more state changes than commands users sent; toggles flapping",
            first_checks=(
                "device_commands rows per (user, device, minute): the same command more than once",
                "app retry and timeout rates; network loss towards the homes",
            ),
            mitigation=(
                "require idempotency keys on POST /commands and return the first command_id for a repeat",
                "make devices ignore a command id they already applied (fleet.dedupe_command_ids)",
            ),
        ),
        trace_kind="commands",
        trace_state="applied",
        trace_reason="duplicate",
    ),
    FailureMode(
        finding="C3",
        title="Slow replica takes the dashboards down",
        component="analytics engine, TimescaleDB read replica",
        trigger="one read replica answers 15 s late for 10 min (a runaway query)",
        scenario="c3-cascade",
        as_designed="as-designed",
        countermeasure="timeouts-breakers",
        countermeasure_text="the review's timeouts, a breaker per replica and the device's state from Redis "
        "when the replica fails",
        # Only fault 0's window: the scenario's hung broker (fault 1) takes the dashboards down too, through the
        # shared gateway, and the whole run's availability would mix the two modes.
        effect=_REPLICA_WINDOW_ERRORS,
        exposure=_REPLICA_WINDOW_ERRORS,
        harm="unavailable",
        detection_signal="none as designed (no timeouts, no breaker); with the countermeasure the replica's "
        "breaker opening (flows.analytics.breaker_transitions)",
        detection=None,
        detection_with=Signal("first breaker transition", ("flows", "analytics", "breaker_transitions", 0, "t"), "s"),
        residual_risk="the replica timeout (10 s) equals the dashboard's own, so refreshes that reach the "
        "stalled replica before its breaker opens still fail",
        runbook=Runbook(
            detection="analytics p95 latency and worker pool saturation; a breaker opening on one replica",
            first_checks=(
                "which replica is slow: per-replica query latency, pg_stat_activity for long queries",
                "analytics engine busy workers against its limit",
            ),
            mitigation=(
                "cancel the runaway query; take the replica out of the read pool",
                "set query timeouts and a breaker per replica, serve cached state meanwhile",
            ),
        ),
    ),
    FailureMode(
        finding="C3",
        title="Hung broker connection cascades to commands",
        component="API gateway, device manager, IoT Core",
        trigger="the device manager's connection to IoT Core hangs for 5 min (a partition, no timeout)",
        scenario="c3-cascade",
        as_designed="as-designed",
        countermeasure="timeouts-breakers",
        countermeasure_text="the review's timeouts (MQTT publish 5 s, gateway 10 s) and the outbox, so a hung "
        "publish frees its worker and is retried",
        effect=_SUCCESS,
        exposure=_SUCCESS,
        harm="unavailable",
        fault=1,
        detection_signal=f"{_SHALLOW_AT}: the device manager answers it while every publish hangs",
        detection=_shallow(1),
        residual_risk="commands still wait for the broker to return; bulkheads alone contain the hang to the "
        "device manager's compartment but do not cure it",
        runbook=Runbook(
            detection="command success rate and gateway queueing; busy workers in the device manager",
            first_checks=(
                "device manager: publishes outstanding and their age",
                "network path to IoT Core from the device manager's zone",
            ),
            mitigation=(
                "restart the device manager pods to drop the hung connections",
                "set publish and upstream timeouts; give each upstream its own gateway bulkhead",
            ),
        ),
        trace_kind="commands",
        trace_state="failed",
        trace_reason="app_timeout",
    ),
    FailureMode(
        finding="C4",
        title="Unverified backups restore nothing",
        component="PostgreSQL WAL archive and base backups",
        trigger="the WAL archive silently corrupts segments from day 0; the primary's disk is lost on day 180",
        scenario="c4-backups",
        as_designed="as-designed",
        countermeasure="countermeasures",
        countermeasure_text="pg_verifybackup, WAL checksums, archive lag and backup size alerts, weekly restore tests",
        effect=Signal("data lost (RPO)", ("durability", "rpo_s"), "s"),
        effect_of=("faults", 0, "start"),
        exposure=Signal("data lost (RPO)", ("durability", "rpo_s"), "s"),
        exposure_of=("faults", 0, "start"),
        harm="lost",
        detection_signal="none as designed: nothing checks the archive; with the countermeasure the first "
        "check that catches the broken archive",
        detection=None,
        detection_with=Signal("first backup alert", ("durability", "backups", "first_detection_delay_s"), "s"),
        detection_is_delay=True,
        window_s=15552000.0,  # day 0, when the archive breaks, to day 180, when the disk is lost
        residual_risk="the data since the last archived segment before the disk loss is still lost "
        "(RPO under the 1 h claim)",
        runbook=Runbook(
            detection="a backup check alert: verify_backup, wal_checksums, archive_lag, backup_size or a "
            "failed restore test",
            first_checks=(
                "pg_verifybackup on the newest base backup",
                "checksums of the archived WAL segments since that backup; the archiver's last success",
                "the age of the last successful restore test",
            ),
            mitigation=(
                "fix the archive's cause, then take a fresh base backup at once",
                "keep weekly restore tests and alert when the last one is older than a week",
            ),
        ),
    ),
    FailureMode(
        finding="C4",
        title="Manual failover stretches a region outage",
        component="disaster recovery (us-east-1 to us-west-2)",
        trigger="us-east-1 is out for 7 h; nobody has run the runbook",
        scenario="c4-region-outage",
        as_designed="as-designed",
        countermeasure="rehearsed",
        countermeasure_text="a rehearsed runbook promoting a cross-region replica",
        effect=Signal("time to recover (RTO)", ("durability", "rto_s"), "s"),
        effect_of=("durability", "claims", "rto_s"),
        exposure=_SUCCESS,
        harm="unavailable",
        window_s=25200.0,
        detection_signal="the on-call team noticing the outage (the runbook's 'detect' step)",
        detection=Signal("detect step of the runbook", ("durability", "disasters", 0, "step_s", "detect"), "s"),
        detection_is_delay=True,
        residual_risk="commands during the failover still fail, and the WAL not yet shipped to the "
        "cross-region replica is lost (seconds)",
        runbook=Runbook(
            detection="the deep readiness check fails on every dependency in the region; AWS Health events",
            first_checks=(
                "AWS Health for the region; whether the outage has an announced end",
                "replication lag of the cross-region replica at the moment of the outage",
            ),
            mitigation=(
                "promote the cross-region replica, repoint clients and DNS, warm caches",
                "rehearse the runbook quarterly so each step's time is known",
            ),
        ),
        trace_kind="commands",
        trace_state="failed",
        trace_reason="app_refused",
    ),
    FailureMode(
        finding="C4",
        title="Redis restart loses state since the last snapshot",
        component="Redis Cluster (RDB every 6 h)",
        trigger="every Redis node restarts at once (one zone) and reloads its last RDB snapshot",
        scenario="c4-redis-crash",
        as_designed="as-designed",
        countermeasure="aof",
        countermeasure_text="AOF with fsync every second, and the device state rewritten from PostgreSQL "
        "once Redis serves",
        effect=Signal("loss window", ("components", "redis", "persistence", "loss_window_s"), "s"),
        effect_scale=21600.0,
        exposure=Signal("device-state keys lost", ("components", "redis", "persistence", "keys_lost", "device_state")),
        exposure_of=("components", "redis", "keys"),
        harm="unavailable",
        fault=1,
        window_s=120.0,
        detection_signal="none: Redis comes back and serves the snapshot's state as current; users are "
        "logged out and dashboards show stale devices until the meters report again",
        detection=None,
        residual_risk="up to a second of writes; sessions still need their users to log in again "
        "where they were not rewritten",
        runbook=Runbook(
            detection="Redis cluster down (CLUSTERDOWN errors), then a burst of logins",
            first_checks=(
                "the persistence file each node reloaded and its age",
                "device-state keys against the device registry",
            ),
            mitigation=(
                "rewrite device state from PostgreSQL as soon as Redis serves",
                "switch to AOF everysec; spread masters over zones",
            ),
        ),
    ),
    FailureMode(
        finding="C4",
        title="Dashboards read lagging replicas",
        component="TimescaleDB read replicas, analytics engine",
        trigger="a backfill writes WAL faster than the replicas replay it for 10 min",
        scenario="c4-replica-lag",
        as_designed="as-designed",
        countermeasure="bounded-staleness",
        countermeasure_text="no reads from a replica more than 30 s behind (pgpool-II delay_threshold_by_time); "
        "the primary answers when both are",
        effect=Signal("worst staleness shown", ("flows", "analytics", "staleness_s", "max"), "s"),
        effect_scale=600.0,
        exposure=Signal("answers missing rows", ("flows", "analytics", "answers_missing_rows")),
        exposure_of=("flows", "analytics", "requests"),
        harm="degraded",
        detection_signal=f"none: replica lag is not monitored; {_SHALLOW_AT} does not look at the database",
        detection=_shallow(0),
        residual_risk="the replicas are exactly as far behind; the primary takes the reads meanwhile",
        runbook=Runbook(
            detection="replica replay lag (pg_stat_replication replay_lag) above 30 s",
            first_checks=(
                "WAL generation rate on the primary: a backfill or bulk write",
                "the analytics engine's answers with missing rows",
            ),
            mitigation=(
                "throttle the backfill",
                "bound staleness (postgres.max_replica_lag) so reports fall back to the primary",
            ),
        ),
    ),
    FailureMode(
        finding="C5",
        title="Corrupt readings reach the bills",
        component="ingest consumer, TimescaleDB, billing",
        trigger="a firmware bug sends power_watts = -999999; readings duplicated and reordered for 20 min",
        scenario="c5-validation",
        as_designed="as-designed",
        countermeasure="validated",
        countermeasure_text="range and schema validation, dedup, a unique (device_id, time) index and "
        "estimated intervals in bills",
        effect=Signal("homes billed negative", ("flows", "billing", "negative_bills"), "homes"),
        effect_of=("flows", "billing", "homes"),
        exposure=Signal("homes billed off by a cent or more", ("flows", "billing", "homes_off_by_a_cent_or_more")),
        exposure_of=("flows", "billing", "homes"),
        harm="wrong",
        detection_signal="none: the rows are stored as valid; a customer finds the bill",
        detection=None,
        residual_risk="values inside the plausible range but wrong still pass; estimated intervals are estimates",
        runbook=Runbook(
            detection="negative energy per device, or readings outside 0-10,000 W, 100-250 V, 0-100 A",
            first_checks=(
                "the firmware versions of the devices sending the values",
                "duplicate (device_id, time) rows in the readings table",
            ),
            mitigation=(
                "validate at ingest and move rejects to the anomalies table",
                "add the unique index and recompute the affected bills",
            ),
        ),
    ),
    FailureMode(
        finding="S1",
        title="One device's flood throttles everyone's commands",
        component="device manager, IoT Core per-connection limit",
        trigger="a buggy app release sends 120 commands per second to one device for 4 min",
        scenario="s1-flood",
        as_designed="as-designed",
        countermeasure="device-limit",
        countermeasure_text="at most 10 commands per device per minute in the device manager, 429 with "
        "Retry-After beyond it",
        effect=Signal("commands told accepted that failed", ("flows", "commands", "accepted_but_failed"), "commands"),
        effect_of=("flows", "commands", "intents"),
        exposure=_SUCCESS,
        harm="silent",
        detection_signal=f"IoT Core throttling is not alerted on; {_SHALLOW_AT} stays green",
        detection=_shallow(0),
        residual_risk="the flooding user's own commands are refused with 429 (by design)",
        runbook=Runbook(
            detection="IoT Core publishes throttled; commands per device per minute",
            first_checks=(
                "the top devices and users by command rate",
                "the app release the flood comes from",
            ),
            mitigation=(
                "limit commands per device (device_manager.device_limit_per_min: 10)",
                "roll back the app release",
            ),
        ),
        trace_kind="commands",
        trace_state="failed",
        trace_reason="orphaned_pending",
    ),
    FailureMode(
        finding="S1",
        title="Automation burst crowds out users",
        component="API gateway, device manager",
        trigger="a schedule fires for 12,000 homes at once",
        scenario="s1-priority",
        as_designed="as-designed",
        countermeasure="priority",
        countermeasure_text="automation marked low priority and shed first above 20 % gateway load",
        # p99, not max: one straggler's max swings from seed to seed; 10 s is the app's timeout.
        effect=Signal("user command latency, p99", ("flows", "commands", "latency_s", "p99"), "s"),
        effect_scale=10.0,
        # Users' commands queued past the app's 10 s timeout are sent again: retries per user command
        # (requests sent / intents - 1) is the share the burst delayed that far (an upper bound: an intent
        # can be retried more than once).
        exposure=Signal("user command requests sent (retries included)", ("flows", "commands", "requests_sent")),
        exposure_of=("flows", "commands", "intents"),
        exposure_offset=1.0,
        harm="degraded",
        detection_signal="none: no fault, no alert; users wait",
        detection=None,
        residual_risk="shed automation runs late and must be retried by the scheduler",
        runbook=Runbook(
            detection="gateway queue length and user command p99 latency at the schedule's minute",
            first_checks=("scheduled automations due in the same minute", "gateway queueing by priority"),
            mitigation=(
                "shed low-priority automation first (gateway.shed_low_priority_above)",
                "spread schedules over the minute",
            ),
        ),
        trace_none_reason="a delayed command ends applied like any other; no tracked final state marks it as "
        "slow (its duplicate application, when the app's retry lands too, is C2's mode)",
    ),
    FailureMode(
        finding="S2",
        title="Poison message stops ingestion",
        component="ingest consumer, Kinesis stream",
        trigger="one reading with schema_version 99 the consumer cannot decode",
        scenario="s2-poison-dlq",
        as_designed="as-designed",
        countermeasure="dead-letter",
        countermeasure_text="a dead letter queue after 3 failed attempts; unsupported schema versions set aside",
        effect=Signal("readings stored", ("flows", "sensor", "stored"), "readings", worse="lower"),
        effect_of=("flows", "sensor", "readings_emitted"),
        exposure=Signal("readings stored", ("flows", "sensor", "stored"), worse="lower"),
        exposure_of=("flows", "sensor", "readings_emitted"),
        harm="unavailable",
        window_s=1200.0,
        detection_signal=f"consumer restarts are not alerted on; {_SHALLOW_AT} watches another service",
        detection=_shallow(0),
        residual_risk="the dead-lettered record waits for a human; a poison rate above the DLQ's alert "
        "threshold still needs a schema fix",
        runbook=Runbook(
            detection="ingest consumer crash loop; stream iterator age growing",
            first_checks=(
                "the record at the consumer's checkpoint: its schema_version",
                "the firmware versions emitting it",
            ),
            mitigation=(
                "turn on the dead letter queue (ingest.dead_letter) and alert on its depth",
                "support or reject the schema version gracefully",
            ),
        ),
    ),
    FailureMode(
        finding="S3",
        title="Blind health check during a broker outage",
        component="device manager readiness probe, IoT Core",
        trigger="IoT Core's region is cut off for 5 min",
        scenario="s3-health-checks",
        as_designed="as-designed",
        countermeasure="deep-checks",
        countermeasure_text="a deep readiness check (PostgreSQL, Redis, the broker, Kinesis) that takes the "
        "device manager out of the Service",
        effect=Signal(
            "commands into the void in the outage", ("health", "faults", 0, "commands", "into_void"), "commands"
        ),
        effect_of=("health", "faults", 0, "commands", "started"),
        exposure=Signal("commands into the void", ("health", "faults", 0, "commands", "into_void")),
        exposure_of=("health", "faults", 0, "commands", "started"),
        harm="silent",
        detection_signal=f"{_SHALLOW_AT}: it only asks the HTTP endpoint",
        detection=_shallow(0),
        detection_with=Signal("deep readiness check failed", ("health", "faults", 0, "detection", "deep", "at"), "s"),
        residual_risk="commands accepted before the deep check turns (three failed probes, about 25 s) "
        "still go into the void; detection does not make them succeed",
        runbook=Runbook(
            detection="the deep readiness check (or a synthetic command to a canary device) failing on iot-core",
            first_checks=(
                "which dependency the deep check names",
                "AWS Health for IoT Core in the region",
            ),
            mitigation=(
                "let readiness take the device manager out so the gateway answers 503 and the app says so",
                "page on the synthetic probe's failure",
            ),
        ),
        trace_kind="commands",
        trace_state="failed",
        trace_reason="orphaned_pending",
    ),
    FailureMode(
        finding="M1",
        title="Slow error burn goes unnoticed",
        component="API gateway, monitoring",
        trigger="the gateway fails 0.4 % of requests for 4 h",
        scenario="m1-burn-rates",
        as_designed="slow-burn",
        countermeasure="slow-burn",
        countermeasure_text="SLOs with error budgets and multiwindow burn-rate alerts (ticket at 1x over 3 d and 6 h)",
        effect=Signal("error budget consumed", ("slos", "api-availability", "budget_consumed")),
        exposure=Signal("API availability", ("slos", "api-availability", "sli"), worse="lower"),
        harm="degraded",
        window_s=14400.0,
        detection_signal="none as designed: targets without SLOs or alerts",
        detection=None,
        detection_with=Signal(
            "ticket-3d alert", ("slos", "api-availability", "alerts", "ticket-3d", "detection_delay_s"), "s"
        ),
        detection_is_delay=True,
        residual_risk="a ticket, not a page: a slow burn is worked on in hours, by design",
        runbook=Runbook(
            detection="the ticket-3d burn-rate alert on api-availability",
            first_checks=("error ratio by route and status since the alert's long window", "recent deploys"),
            mitigation=("roll back the change that raised the error ratio", "freeze releases while the budget is low"),
        ),
    ),
    FailureMode(
        finding="M1",
        title="Hard outage without a page",
        component="API gateway, monitoring",
        trigger="the API gateway crashes for 10 min",
        scenario="m1-burn-rates",
        as_designed="fast-burn",
        countermeasure="fast-burn",
        countermeasure_text="SLOs with error budgets and multiwindow burn-rate alerts "
        "(page at 14.4x over 1 h and 5 min)",
        effect=Signal("error budget consumed", ("slos", "api-availability", "budget_consumed")),
        exposure=Signal("API availability", ("slos", "api-availability", "sli"), worse="lower"),
        harm="unavailable",
        window_s=600.0,
        detection_signal="none as designed: targets without SLOs or alerts",
        detection=None,
        detection_with=Signal(
            "page-1h alert", ("slos", "api-availability", "alerts", "page-1h", "detection_delay_s"), "s"
        ),
        detection_is_delay=True,
        residual_risk="the page fires after about a minute, with a few percent of the monthly budget gone",
        runbook=Runbook(
            detection="the page-1h burn-rate alert on api-availability",
            first_checks=("gateway pods: crash loops, restarts", "load balancer health"),
            mitigation=("restart or roll back the gateway", "add capacity in another zone"),
        ),
    ),
    FailureMode(
        finding="M3",
        title="Publish limit orphans commands past capacity",
        component="device manager, IoT Core per-connection publish limit",
        trigger="more app users than the device manager's broker connection can publish for (100 per second)",
        scenario="m3-capacity",
        as_designed="as-designed",
        countermeasure="as-designed",
        countermeasure_text="not measured as a variant: a capacity plan that keeps commands under the publish "
        "ceiling (more broker connections, or refusing with 429 above it)",
        effect=Signal(
            "commands refused by the publish limit, told accepted",
            ("flows", "commands", "publish_limit", "orphaned"),
            "commands",
        ),
        effect_of=("flows", "commands", "intents"),
        exposure=Signal("commands refused by the publish limit", ("flows", "commands", "publish_limit", "orphaned")),
        exposure_of=("flows", "commands", "intents"),
        harm="silent",
        detection_signal="none: the refusals only show as IoT Core throttling; the app was told 'accepted'",
        detection=None,
        residual_risk="the ceiling stays where it is until the capacity plan changes it",
        runbook=Runbook(
            detection="IoT Core publishes refused by the per-connection limit; pending device_commands growing",
            first_checks=(
                "command publish rate per broker connection against 100 per second",
                "the load test's knee: where p95 passes 200 ms and which component saturates first",
            ),
            mitigation=(
                "spread publishes over more broker connections",
                "refuse commands above the ceiling with 429 instead of accepting them",
            ),
        ),
        trace_kind="commands",
        trace_state="failed",
    ),
    FailureMode(
        finding="C3",
        title="Retry storm outlives its trigger",
        component="mobile app retries, API gateway, device manager",
        trigger="a one-minute database slowdown at 70 % load",
        scenario="retry-storm",
        as_designed="as-designed",
        countermeasure="shedding",
        countermeasure_text="a gateway bulkhead that answers the excess with 503 and Retry-After, with "
        "per-phone retry budgets and jitter",
        effect=Signal(
            "goodput in the last window vs before",
            ("flows", "commands", "windows", "last", "goodput_vs_before"),
            worse="lower",
        ),
        exposure=_SUCCESS,
        harm="unavailable",
        detection_signal=f"{_SHALLOW_AT}: the backend is up, only late",
        detection=_shallow(0),
        residual_risk="requests beyond the bulkhead get an immediate 503 during the burst",
        runbook=Runbook(
            detection="request amplification (requests per intent) rising towards 3 while goodput falls",
            first_checks=(
                "queue waits against the app's 10 s timeout",
                "retries per intent; whether the trigger (database latency) is already over",
            ),
            mitigation=(
                "shed at the gateway with 503 and Retry-After until queues drain",
                "retry budgets where one limiter sees the whole traffic; jitter",
            ),
        ),
        trace_kind="commands",
        trace_state="failed",
        trace_reason="app_timeout",
    ),
)
"""Every failure mode the smart-home twin measures, in the review's order."""
