"""Operations the smart-home services yield, mirroring the clients they would really use.

Each operation names the actor that owns the resource (``target``) and how long the
caller waits (``timeout``; ``None`` waits forever -- the review's services have no
timeouts until countermeasure C3).  A driver over real clients would map them one to one:
SQL through psycopg, commands through redis-py, MQTT publish through an MQTT client,
GetRecords/checkpoints through boto3/KCL, HTTP through an HTTP client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field
from typing import Any

from models.readings import Reading
from sim.ops import Operation, message

__all__ = [
    "BulkInsert",
    "Checkpoint",
    "GetRecords",
    "HttpRequest",
    "HttpResponse",
    "Insert",
    "Publish",
    "RedisPipeline",
    "Select",
    "SendMessage",
    "Update",
]


# -- HTTP (mobile app -> API gateway -> services) -----------------------------------------
@message
class HttpRequest(Operation):
    """An HTTP request; ``route`` like ``POST /api/v1/devices/{id}/commands``."""

    target: str
    route: str
    user: str
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None


# -- PostgreSQL ------------------------------------------------------------------------------
@message
class Insert(Operation):
    """``INSERT INTO table ... [ON CONFLICT (conflict_key) DO NOTHING] RETURNING *``."""

    target: str
    table: str
    row: dict[str, Any]
    conflict_key: str | None = None
    timeout: float | None = None


@message
class Update(Operation):
    """``UPDATE table SET changes WHERE id = row_id``."""

    target: str
    table: str
    row_id: int
    changes: dict[str, Any]
    timeout: float | None = None


@message
class Select(Operation):
    """A read: ``query`` names a prepared statement, ``params`` its arguments."""

    target: str
    query: str
    params: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None


@message
class BulkInsert(Operation):
    """A multi-row ``INSERT`` (``COPY``) of readings into the hypertable.

    ``on_conflict_do_nothing`` models the unique index on ``(device_id, time)`` with
    ``ON CONFLICT DO NOTHING`` (countermeasure C5); without it duplicates become rows.
    """

    target: str
    table: str
    rows: Sequence[Reading]
    on_conflict_do_nothing: bool = False
    timeout: float | None = None


# -- Redis -----------------------------------------------------------------------------------
@message
class RedisPipeline(Operation):
    """A pipeline of ``(command, key, value)`` triples sent in one round trip."""

    target: str
    commands: list[tuple[str, str, Any]]
    timeout: float | None = None


# -- MQTT ------------------------------------------------------------------------------------
@message
class Publish(Operation):
    """MQTT PUBLISH; with ``qos=1`` the broker acknowledges once it owns the message."""

    target: str
    topic: str
    payload: dict[str, Any]
    qos: int = 1
    timeout: float | None = None


# -- Kinesis ---------------------------------------------------------------------------------
@message
class GetRecords(Operation):
    """Read up to ``limit`` records of ``shard`` after sequence number ``after``."""

    target: str
    shard: int
    after: int
    limit: int = 10_000
    timeout: float | None = None


@message
class Checkpoint(Operation):
    """Record that every record of ``shard`` up to ``sequence`` is processed (KCL lease table)."""

    target: str
    shard: int
    sequence: int
    timeout: float | None = None


@message
class HttpResponse:
    """What an HTTP handler answers (a result, not an operation)."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """2xx."""
        return 200 <= self.status < 300


@message
class SendMessage(Operation):
    """SQS-like ``SendMessage`` (the dead letter queue)."""

    target: str
    body: dict[str, Any]
    timeout: float | None = None
