"""The ingest record processor: stream records -> TimescaleDB rows + Redis device state.

A record is a reading (:mod:`models.readings`).  Its ``is_copy`` bit (an extra copy made
by an MQTT resend or a duplicating network) is the twin's bookkeeping: the processor only
carries it into the fates it reports, so the twin's ledger can count duplicate rows; no
decision of the system depends on it.

As designed (findings C5, S2) the processor decodes and stores every record: no schema or
range validation, no deduplication, and a record it cannot decode raises
:class:`PoisonRecord` out of the processor -- the consumer crashes, restarts from its last
checkpoint, and meets the same record again.  Switches add the review's countermeasures:
validation with an anomalies table, a deduplication window, and a dead letter queue after
``max_attempts``.

Pure logic: it yields :mod:`models.ops` operations and returns a :class:`BatchOutcome`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter

from models.names import ANOMALIES_TABLE, DB_PRIMARY, DLQ, READINGS_TABLE, REDIS
from models.ops import BulkInsert, RedisPipeline, SendMessage
from models.policies.dead_letter import DeadLetterPolicy
from models.policies.dedup import DedupWindow
from models.readings import (
    CURRENT,
    DEVICE_ID,
    IS_COPY,
    POWER_WATTS,
    SCHEMA_VERSION,
    TIME,
    VOLTAGE,
    Reading,
)
from sim.ops import Logic, Now, OpError

__all__ = ["BatchOutcome", "IngestSettings", "PoisonRecord", "process_records"]


Record = Reading


class PoisonRecord(Exception):
    """A record the processor cannot deserialise (unsupported schema_version)."""


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """What the processor needs from the ingest configuration."""

    supported_schema_versions: frozenset[int]
    validate_readings: bool
    on_conflict_do_nothing: bool
    db_timeout: float | None
    redis_timeout: float | None
    power_range: tuple[float, float]
    voltage_range: tuple[float, float]
    current_range: tuple[float, float]


STORED = ("stored", "")
DUPLICATE_ROW = ("stored", "duplicate_row")
ANOMALY = ("stored", "anomalies_table")
DEDUPLICATED = ("dropped", "deduplicated")
CONFLICT = ("dropped", "unique_conflict")
DEAD_LETTERED = ("dead_lettered", "unsupported_schema")


@dataclass(slots=True)
class BatchOutcome:
    """The fate of each record of a batch, in order: ``(state, reason)`` pairs."""

    fates: list[tuple[str, str]] = field(default_factory=list)
    redis_failures: int = 0


def decode(record: Record, supported: frozenset[int]) -> Record:
    """Deserialise a record; raises :class:`PoisonRecord` for an unsupported schema."""
    if record[SCHEMA_VERSION] not in supported:
        raise PoisonRecord(f"unsupported schema_version {record[SCHEMA_VERSION]}")
    return record


def in_range(record: Record, settings: IngestSettings) -> bool:
    """The review's range checks: power 0-10 kW, voltage 100-250 V, current 0-100 A."""
    low, high = settings.power_range
    if not low <= record[POWER_WATTS] <= high:
        return False
    low, high = settings.voltage_range
    if not low <= record[VOLTAGE] <= high:
        return False
    low, high = settings.current_range
    return bool(low <= record[CURRENT] <= high)


def process_records(
    settings: IngestSettings,
    records: Sequence[Record],
    dedup: DedupWindow | None,
    dead_letters: DeadLetterPolicy | None = None,
) -> Logic[BatchOutcome]:
    """Process one batch of stream records; see the module docstring.

    A batch that needs no per-record decision -- every schema supported, no validation,
    no deduplication window -- is stored whole; otherwise each record is decided in turn.

    ``dead_letters``, the consumer's policy when it has a dead letter queue (S2), decides
    what a record that fails becomes: a record that cannot be decoded fails the same way on every attempt, so the
    policy dead-letters it at once (non-retryable, as Spring Kafka treats deserialisation
    errors) and the letter, with its error and attempts, goes to the DLQ.  Without the
    switch the failure propagates and the consumer crash-loops (S2).
    """
    now = yield Now()
    fates: list[tuple[str, str]]
    rows: list[Record]
    positions: list[int] | None  # row index -> record index; None when they coincide
    anomalies: list[Record] = []
    supported = settings.supported_schema_versions
    if dedup is None and not settings.validate_readings and supported.issuperset(map(_schema, records)):
        rows = list(records)
        positions = None
        fates = (
            [DUPLICATE_ROW if r[IS_COPY] else STORED for r in rows] if any(map(_copy, rows)) else [STORED] * len(rows)
        )
        latest = {r[DEVICE_ID]: r for r in rows}
    else:
        fates, rows, positions, latest = [], [], [], {}
        for record in records:
            try:
                decode(record, supported)
            except PoisonRecord as error:
                if dead_letters is None:
                    raise
                key = (record[DEVICE_ID], record[TIME], record[SCHEMA_VERSION])
                if dead_letters.record_failure(key, error, now=now, message=record) == "retry":
                    raise  # a retryable failure: the batch is read again (not reached for a decode error)
                for letter in dead_letters.drain():
                    body = {"record": letter.message, "error": str(letter.error), "attempts": letter.attempts}
                    yield SendMessage(DLQ, body)
                fates.append(DEAD_LETTERED)
                continue
            if settings.validate_readings and not in_range(record, settings):
                anomalies.append(record)
                fates.append(ANOMALY)
                continue
            if dedup is not None and dedup.seen((record[DEVICE_ID], record[TIME]), now):
                fates.append(DEDUPLICATED)
                continue
            positions.append(len(fates))
            fates.append(DUPLICATE_ROW if record[IS_COPY] else STORED)
            rows.append(record)
            latest[record[DEVICE_ID]] = record
    outcome = BatchOutcome(fates)
    if anomalies:
        yield BulkInsert(DB_PRIMARY, ANOMALIES_TABLE, anomalies, timeout=settings.db_timeout)
    if rows:
        result = yield BulkInsert(
            DB_PRIMARY,
            READINGS_TABLE,
            rows,
            on_conflict_do_nothing=settings.on_conflict_do_nothing,
            timeout=settings.db_timeout,
        )
        for position in result["conflicts"]:  # rows skipped by ON CONFLICT DO NOTHING (RETURNING tells)
            fates[position if positions is None else positions[position]] = CONFLICT
        keys = _DEVICE_KEYS
        commands = [("HSET", keys[device], (r[TIME], r[POWER_WATTS])) for device, r in latest.items()]
        try:
            yield RedisPipeline(REDIS, commands, timeout=settings.redis_timeout)
        except OpError:
            outcome.redis_failures += 1  # C1: TimescaleDB has it, the real-time view goes stale
    return outcome


class _DeviceKeys(dict[int, str]):
    """Redis key per device id, ``device:{id}``, formatted once per device."""

    def __missing__(self, device: int) -> str:
        key = self[device] = f"device:{device}"
        return key


_DEVICE_KEYS = _DeviceKeys()
_schema = itemgetter(SCHEMA_VERSION)
_copy = itemgetter(IS_COPY)
