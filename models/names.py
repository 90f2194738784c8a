"""Every name the smart-home twin uses in more than one place: actors, network nodes,
ledger kinds and metrics.

A name lives here once; modules import the constant, so a misspelling is an import-time
``NameError`` rather than a message to nobody, an empty ledger row or a histogram no one
fills.  Metrics are also declared to the engine (:data:`METRICS`), which refuses any name
not declared when a component asks for it, that is when the twin is built.

Plain strings only: the sans-IO logic imports this module too.
"""

from __future__ import annotations

__all__ = [
    "ANALYTICS",
    "ANALYTICS_STALENESS",
    "ANOMALIES_TABLE",
    "API_GATEWAY",
    "APP_RESPONSE",
    "COMMANDS",
    "COMMANDS_TABLE",
    "COMMAND_FAILED",
    "COMMAND_INTENTS",
    "COMMAND_LATENCY",
    "COMMAND_LATENCY_P95",
    "COMMAND_REQUESTS",
    "COMMAND_SUCCEEDED",
    "DASHBOARDS",
    "DASHBOARD_ERRORS",
    "DASHBOARD_LATENCY",
    "DASHBOARD_LATENCY_P95",
    "DASHBOARD_REQUESTS",
    "DB_PRIMARY",
    "DEVICES",
    "DEVICE_MANAGER",
    "DLQ",
    "INGEST",
    "IOT_CORE",
    "KINESIS",
    "METERS",
    "METRICS",
    "MOBILE",
    "POISON_INJECTED",
    "READINGS",
    "READINGS_STORED",
    "READINGS_TABLE",
    "READING_COPIES",
    "READING_END_TO_END",
    "REDIS",
    "REPLICA_REPLAY_LAG",
    "STREAM_ITERATOR_AGE",
    "STREAM_MAX_ITERATOR_AGE",
    "SYNTHETIC_MONITOR",
    "db_replica",
    "redis_master",
]

# -- actors (servers with a mailbox and workers) ---------------------------------------------
IOT_CORE = "iot-core"
KINESIS = "kinesis"
DB_PRIMARY = "db-primary"
REDIS = "redis"
API_GATEWAY = "api-gateway"
DEVICE_MANAGER = "device-manager"
ANALYTICS = "analytics-engine"
INGEST = "ingest-consumer"
DLQ = "dlq"


def db_replica(index: int) -> str:
    """The name of read replica ``index`` (counted from 1)."""
    return f"db-replica-{index}"


def redis_master(index: int) -> str:
    """The name of Redis master ``index`` (counted from 1), a fault target though not an actor."""
    return f"redis-master-{index}"


# -- database tables (SQL names, not ledger kinds) ----------------------------------------------
READINGS_TABLE = "readings"
ANOMALIES_TABLE = "anomalies"
COMMANDS_TABLE = "device_commands"


# -- network nodes that are populations, not actors ------------------------------------------
METERS = "meters"
DEVICES = "devices"
MOBILE = "mobile"
DASHBOARDS = "dashboards"
AUTOMATION = "automation"
"""The backend's scheduler of automation commands (a node: it only sends)."""
SYNTHETIC_MONITOR = "synthetic-monitor"
"""The external synthetic monitor and its canary device (health.synthetic, finding S3)."""

# -- ledger kinds ------------------------------------------------------------------------------
COMMANDS = "commands"
"""User intents, tracked one by one from the tap to their final state."""
READINGS = "readings"
"""Meter readings, counted per final state."""
READING_COPIES = "reading_copies"
"""Extra copies of readings made by MQTT resends and duplicating networks, counted apart."""

# -- metrics -----------------------------------------------------------------------------------
READING_END_TO_END = "readings.end_to_end_s"
READINGS_STORED = "readings.stored"
POISON_INJECTED = "readings.poison_injected"
STREAM_ITERATOR_AGE = "stream.iterator_age_s"
STREAM_MAX_ITERATOR_AGE = "stream.max_iterator_age_s"
APP_RESPONSE = "commands.app_response_s"
COMMAND_LATENCY = "commands.latency_s"
"""From a tap to the device applying it: a sketch the results make (``flows.commands.latency_s``,
and a CDF in ``distributions``), not a metric the run records."""
COMMAND_LATENCY_P95 = "commands.latency_p95_s"
DASHBOARD_LATENCY = "dashboard.latency_s"
DASHBOARD_LATENCY_P95 = "dashboard.latency_p95_s"
DASHBOARD_REQUESTS = "dashboard.requests"
DASHBOARD_ERRORS = "dashboard.errors"
COMMAND_INTENTS = "commands.intents"
COMMAND_REQUESTS = "commands.requests"
COMMAND_SUCCEEDED = "commands.succeeded"
COMMAND_FAILED = "commands.failed"
DLQ_MESSAGES = "dlq.messages"
REPLICA_REPLAY_LAG = "postgres.replica_replay_lag_s"
ANALYTICS_STALENESS = "analytics.staleness_s"

METRICS: tuple[tuple[str, str, str, str], ...] = (
    # (name, kind, unit, meaning); kinds: counter, histogram, and per interval: sum, max, p95
    # (None where the interval saw no value), peak (of a level; each actor declares its queue.<name>)
    (READING_END_TO_END, "histogram", "s", "from a meter's reading to its row in TimescaleDB"),
    (READINGS_STORED, "sum", "rows", "readings rows stored per interval"),
    (POISON_INJECTED, "counter", "records", "poison records the poison fault emitted"),
    (STREAM_ITERATOR_AGE, "histogram", "s", "age of the newest record a GetRecords returned (ingestion lag)"),
    (STREAM_MAX_ITERATOR_AGE, "max", "s", "largest iterator age per interval"),
    (APP_RESPONSE, "histogram", "s", "from a tap to the app's final answer, retries included"),
    (COMMAND_LATENCY_P95, "p95", "s", "p95 of the app's final answers heard per interval (as app_response_s)"),
    (DASHBOARD_LATENCY, "histogram", "s", "latency of successful dashboard refreshes"),
    (DASHBOARD_LATENCY_P95, "p95", "s", "p95 latency of the successful dashboard refreshes finished per interval"),
    (DASHBOARD_REQUESTS, "sum", "requests", "dashboard refreshes finished per interval"),
    (DASHBOARD_ERRORS, "sum", "requests", "dashboard refreshes that failed per interval"),
    (COMMAND_INTENTS, "sum", "intents", "command intents users started per interval"),
    (COMMAND_REQUESTS, "sum", "requests", "command requests the app sent per interval, retries included"),
    (COMMAND_SUCCEEDED, "sum", "intents", "command intents the app heard accepted per interval (goodput)"),
    (COMMAND_FAILED, "sum", "intents", "command intents whose final answer, heard per interval, was not accepted"),
    (
        DLQ_MESSAGES,
        "sum",
        "messages",
        "messages put in the dead letter queue per interval (the running total is its depth)",
    ),
    (
        REPLICA_REPLAY_LAG,
        "max",
        "s",
        "largest replay lag per interval, any replica: from a commit on the primary to its replay (at the replay)",
    ),
    (
        ANALYTICS_STALENESS,
        "max",
        "s",
        "staleness of the data in the oldest energy report the analytics engine answered per interval",
    ),
)
"""Every metric the twin records, declared to the engine when the twin is built."""
