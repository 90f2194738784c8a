"""What the smart-home twin tells the report generator: its panels, bands, latencies and headline figures.

The engine's report code knows result formats; this module says which of the smart-home
backend's series are throughput, errors, latency, queues and lags, where the analytics
engine's breakers log their changes, which latency distributions a CDF is drawn for, and which
figures a design review looks at first.  Series the twin did not record in a run (a version
without queue series, a scenario without dashboards) are simply left out of the figures.

The failure-mode catalogue (:data:`models.failure_modes.FAILURE_MODES`) lives apart: it is
the FMEA's content, not the report's layout.
"""

from __future__ import annotations

from sim.report.profile import Band, Distribution, Line, Panel, ReportProfile, Signal

from . import names
from .failure_modes import FAILURE_MODES
from .results import BREAKER_TRANSITIONS_LISTED

__all__ = ["BREAKERS", "DISTRIBUTIONS", "FINDINGS", "HEADLINE", "PANELS", "REPORT_PROFILE"]


QUEUE_SERIES = "queue.*"
"""every actor's queue depth series (``timeseries.queue.<actor>``), one line each"""

PANELS: tuple[Panel, ...] = (
    Panel(
        "Throughput",
        "per second",
        (
            Line("command requests sent", names.COMMAND_REQUESTS, per_second=True),
            Line("commands answered OK", names.COMMAND_SUCCEEDED, per_second=True),
            Line("dashboard refreshes", names.DASHBOARD_REQUESTS, per_second=True),
        ),
    ),
    Panel("Ingestion", "readings per second", (Line("readings stored", names.READINGS_STORED, per_second=True),)),
    Panel(
        "Errors",
        "%; orphaned commands are never told, so not counted",
        (
            Line("dashboard refreshes failed", names.DASHBOARD_ERRORS, per=names.DASHBOARD_REQUESTS, scale=100.0),
            Line(
                "commands told failed",
                names.COMMAND_FAILED,
                per=(names.COMMAND_FAILED, names.COMMAND_SUCCEEDED),
                scale=100.0,
            ),
        ),
    ),
    Panel(
        "p95 latency",
        "s",
        (
            Line("command, tap to answer", names.COMMAND_LATENCY_P95),
            Line("dashboard refresh", names.DASHBOARD_LATENCY_P95),
        ),
        log=True,
    ),
    Panel("Queue depth", "requests waiting", (Line("{}", QUEUE_SERIES),)),
    Panel("Stream iterator age", "s", (Line("oldest unread, at last read", names.STREAM_MAX_ITERATOR_AGE),)),
    Panel("Replica lag", "s", (Line("worst replica's replay lag", names.REPLICA_REPLAY_LAG),)),
    Panel("Dead letter queue", "messages", (Line("depth", names.DLQ_MESSAGES, cumulative=True),)),
)
"""The timeline's panels, top to bottom."""

BREAKERS = Band(
    "Analytics engine's replica breakers",
    ("flows", "analytics", "breaker_transitions"),
    group_key="replica",
    colours=(("closed", "#8fd694"), ("half_open", "#f6c453"), ("open", "#e4572e")),
    listed_at_most=BREAKER_TRANSITIONS_LISTED,
)

DISTRIBUTIONS: tuple[Distribution, ...] = (
    Distribution("Command: tap to the app's final answer", ("distributions", names.APP_RESPONSE)),
    Distribution("Command: tap to the device applying it", ("distributions", names.COMMAND_LATENCY)),
    Distribution("Dashboard refresh (answered)", ("distributions", names.DASHBOARD_LATENCY)),
    Distribution("Reading: meter to stored row", ("distributions", names.READING_END_TO_END)),
)
"""Latency distributions drawn as CDFs, one line per variant, from the result's ``distributions``."""

HEADLINE: tuple[Signal, ...] = (
    Signal("command success rate", ("flows", "commands", "success_rate"), "share", worse="lower"),
    Signal("orphaned commands", ("flows", "commands", "orphaned"), "commands"),
    Signal("told accepted, never applied", ("flows", "commands", "accepted_but_failed"), "commands"),
    Signal("commands applied twice or more", ("flows", "commands", "applied_more_than_once"), "commands"),
    Signal(
        "goodput at the end vs before the fault",
        ("flows", "commands", "windows", "last", "goodput_vs_before"),
        "ratio",
        worse="lower",
    ),
    Signal("command p95, tap to the app's answer", ("flows", "commands", "app_response_s", "p95"), "s"),
    Signal("command p95, tap to applied (applied commands only)", ("flows", "commands", "latency_s", "p95"), "s"),
    Signal("dashboard availability", ("flows", "analytics", "availability"), "share", worse="lower"),
    Signal("dashboard latency p95", ("flows", "analytics", "latency_s", "p95"), "s"),
    Signal("readings dropped", ("flows", "sensor", "dropped"), "readings"),
    Signal("readings dead-lettered", ("flows", "sensor", "dead_lettered"), "readings"),
    Signal("duplicate reading rows", ("flows", "sensor", "duplicate_rows"), "rows"),
    Signal("SLO budget consumed", ("slos", "api-availability", "budget_consumed"), "share"),
    Signal("data lost in a disaster (RPO)", ("durability", "rpo_s"), "s"),
    Signal("time to recover (RTO)", ("durability", "rto_s"), "s"),
)
"""The figures a reader looks at first, in this order; one a body does not have is left out."""

FINDINGS: tuple[tuple[str, str], ...] = (
    ("C1", "No transaction across the command row, the MQTT publish and Redis: accepted commands orphaned"),
    ("C2", "No idempotency keys: a retry or a resend is executed again"),
    ("C3", "No timeouts, circuit breakers or bulkheads: one slow dependency cascades to the user"),
    ("C4", "Backups and restores never verified: the claimed RPO and RTO may not hold"),
    ("C5", "Sensor data not validated or deduplicated: corrupt values and duplicates reach bills"),
    ("S1", "Rate limiting only at the gateway: nothing per device, query pool or stream write"),
    ("S2", "No dead letter queue: one undecodable message stops ingestion for everyone"),
    ("S3", "Readiness probes check only the HTTP endpoint: a cut-off service looks healthy"),
    ("S4", "Canary releases without automatic rollback on error rate or latency"),
    ("S5", "Migration compatibility is a convention, not enforced"),
    ("M1", "Targets but no SLOs, error budgets or burn-rate alerts"),
    ("M2", "Correlation IDs but no distributed tracing"),
    ("M3", "No capacity planning or load tests; the autoscaling threshold unchecked"),
    ("M4", "No runbooks, on-call rotation or postmortem process"),
    ("M5", "Autoscaling without an upper bound or cost controls"),
)
"""Every finding of the design review (docs/system.md), with a one-line title."""

REPORT_PROFILE = ReportProfile(
    panels=PANELS,
    bands=(BREAKERS,),
    distributions=DISTRIBUTIONS,
    headline=HEADLINE,
    failure_modes=FAILURE_MODES,
    findings=FINDINGS,
    served_by_catalogue=(
        (
            "M2",
            "every failure mode carries the trace of one affected request, span by span (hems-twin export "
            "writes the same as Chrome trace events or OTLP JSON)",
        ),
        (
            "M4",
            "every failure mode carries a runbook skeleton: its detection signal, first checks and mitigation, "
            "with the detection time and effects measured in the twin",
        ),
    ),
)
"""The smart-home twin's report profile (``models.twin.TWIN.report_profile``)."""
