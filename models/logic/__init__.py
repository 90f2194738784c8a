"""The system's own logic, written once and run by any driver.

Plain generators that yield :mod:`models.ops` operations; nothing here imports simpy or
does I/O, so the same code runs inside the twin and in unit tests (and could run over
real clients).
"""

from models.logic.analytics import AnalyticsSettings, energy_report
from models.logic.clients import AppResult, AppSettings, dashboard_query, send_command
from models.logic.commands import CommandSettings, outbox_relay, relay_once, submit_command
from models.logic.gateway import GatewaySettings, route_request
from models.logic.health import (
    DeepCheckSettings,
    ProbeResult,
    ProbeTracker,
    SyntheticSettings,
    deep_check,
    liveness,
    synthetic_command,
)
from models.logic.ingest import BatchOutcome, IngestSettings, PoisonRecord, process_records

__all__ = [
    "AnalyticsSettings",
    "AppResult",
    "AppSettings",
    "BatchOutcome",
    "CommandSettings",
    "DeepCheckSettings",
    "GatewaySettings",
    "IngestSettings",
    "PoisonRecord",
    "ProbeResult",
    "ProbeTracker",
    "SyntheticSettings",
    "dashboard_query",
    "deep_check",
    "energy_report",
    "liveness",
    "outbox_relay",
    "process_records",
    "relay_once",
    "route_request",
    "send_command",
    "submit_command",
    "synthetic_command",
]
