"""PostgreSQL + TimescaleDB: one primary, read replicas, shared durable storage.

The primary takes writes: the ``device_commands`` table (``pending`` / ``sent`` /
``failed``, with an optional unique ``idempotency_key``) and the ``readings`` hypertable.
Replicas answer reads only, ``replication_lag`` behind the primary.  Connections are the
actor's concurrency limit.

Readings are millions, so the hypertable keeps aggregates -- row counts, per-device energy
totals -- plus a bounded window of recent ``(device_id, time)`` keys.  That window is the
unique index when countermeasure C5 creates one (``ON CONFLICT DO NOTHING``); without the
index it lets the twin count the duplicate rows the system silently stores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sim.actor import Actor
from sim.ops import Operation, Rejected

from models.config import PostgresConfig
from models.ops import BulkInsert, Insert, Select, Update
from models.policies.dedup import DedupWindow

if TYPE_CHECKING:
    from sim.kernel import Kernel

__all__ = ["Database", "Postgres"]


class Database:
    """The durable contents shared by the primary and its replicas."""

    def __init__(self, config: PostgresConfig, report_every: float, devices: int) -> None:
        self.commands: dict[int, dict[str, Any]] = {}
        self.by_key: dict[str, int] = {}
        self.pending: dict[int, None] = {}
        self.next_id = 1
        self.rows = 0
        self.duplicate_rows = 0
        self.conflicts = 0
        self.corrupted_rows = 0
        self.anomalies = 0
        self.energy_wh = [0.0] * devices
        self.reading_count = [0] * devices
        self.hours_per_reading = report_every / 3600.0
        self.recent = DedupWindow(config.duplicate_window)


class Postgres(Actor):
    """A primary (``role="primary"``) or a read replica of one :class:`Database`."""

    def __init__(
        self,
        kernel: Kernel,
        name: str,
        config: PostgresConfig,
        database: Database,
        *,
        role: str,
        zone: str,
        region: str,
    ) -> None:
        super().__init__(kernel, name, zone=zone, region=region, concurrency=config.max_connections)
        self.config = config
        self.db = database
        self.role = role
        self._write = kernel.sampler(config.write_time, f"{name}/write")
        self._read = kernel.sampler(config.read_time, f"{name}/read")
        self._analytics = kernel.sampler(config.analytics_query_time, f"{name}/analytics")
        self._lag = kernel.sampler(config.replication_lag, f"{name}/lag")
        self._e2e = kernel.metrics.histogram("readings.end_to_end_s")
        self._stored_series = kernel.metrics.timeseries("readings.stored")

    def service_time(self, op: Operation) -> float:
        kind = type(op)
        if kind is BulkInsert:
            return self._write() + self.config.row_time * len(op.rows)
        if kind is Select:
            return self._analytics() if op.query == "energy_summary" else self._read()
        return self._write()

    def handle(self, op: Operation, origin: str) -> Any:
        kind = type(op)
        if kind is Select:
            return self._select(op)
        if self.role != "primary":
            raise Rejected("read_only", f"{self.name} is a read replica")
        if kind is BulkInsert:
            return self._bulk_insert(op)
        if kind is Insert:
            return self._insert(op)
        if kind is Update:
            return self._update(op)
        raise Rejected("unsupported", f"{self.name} does not handle {op.name}")

    # -- device_commands -------------------------------------------------------------------
    def _insert(self, op: Insert) -> dict[str, Any]:
        db = self.db
        if op.table != "device_commands":
            raise Rejected("undefined_table", op.table)
        key = op.row.get("idempotency_key")
        if op.conflict_key == "idempotency_key" and key is not None and key in db.by_key:
            existing = db.commands[db.by_key[key]]
            return {"id": existing["id"], "created": False, "status": existing["status"]}
        row = dict(op.row, id=db.next_id, created_at=self.kernel.now)
        db.next_id += 1
        db.commands[row["id"]] = row
        if key is not None:
            db.by_key[key] = row["id"]
        if row["status"] == "pending":
            db.pending[row["id"]] = None
        return {"id": row["id"], "created": True, "status": row["status"]}

    def _update(self, op: Update) -> int:
        row = self.db.commands.get(op.row_id)
        if row is None:
            return 0
        row.update(op.changes)
        if row["status"] != "pending":
            self.db.pending.pop(op.row_id, None)
        return 1

    def _select(self, op: Select) -> Any:
        db = self.db
        if op.query == "pending_commands":
            ids = []
            for command_id in db.pending:
                ids.append(command_id)
                if len(ids) >= op.params.get("limit", 100):
                    break
            return [dict(db.commands[i]) for i in ids]
        if op.query == "energy_summary":
            device = op.params["device_id"]
            lag = self._lag() if self.role != "primary" else 0.0
            return {
                "energy_kwh": db.energy_wh[device] / 1000.0 if device < len(db.energy_wh) else 0.0,
                "readings": db.reading_count[device] if device < len(db.reading_count) else 0,
                "staleness_s": lag,
            }
        raise Rejected("undefined_query", op.query)

    # -- readings --------------------------------------------------------------------------
    def _bulk_insert(self, op: BulkInsert) -> dict[str, Any]:
        db = self.db
        if op.table == "anomalies":
            db.anomalies += len(op.rows)
            return {"inserted": len(op.rows), "conflicts": []}
        if op.table != "readings":
            raise Rejected("undefined_table", op.table)
        now = self.kernel.now
        conflicts: list[int] = []
        seen = db.recent.seen
        e2e = self._e2e.add
        energy = db.energy_wh
        count = db.reading_count
        hours = db.hours_per_reading
        inserted = 0
        for position, row in enumerate(op.rows):
            device = row[0]
            if seen((device, row[1]), now):
                if op.on_conflict_do_nothing:
                    conflicts.append(position)
                    continue
                db.duplicate_rows += 1
            else:
                e2e(now - row[1])
            inserted += 1
            power = row[2]
            if power < 0 or row[3] <= 0:
                db.corrupted_rows += 1
            if device < len(energy):
                energy[device] += power * hours
                count[device] += 1
        db.rows += inserted
        db.conflicts += len(conflicts)
        self._stored_series.add(now, inserted)
        return {"inserted": inserted, "conflicts": conflicts}

    def stats(self) -> dict[str, Any]:
        figures: dict[str, Any] = dict(super().stats())
        if self.role == "primary":
            db = self.db
            statuses: dict[str, int] = {}
            for row in db.commands.values():
                statuses[row["status"]] = statuses.get(row["status"], 0) + 1
            figures.update(
                {
                    "reading_rows": db.rows,
                    "duplicate_reading_rows": db.duplicate_rows,
                    "unique_conflicts_skipped": db.conflicts,
                    "corrupted_reading_rows": db.corrupted_rows,
                    "anomaly_rows": db.anomalies,
                    "device_commands": dict(sorted(statuses.items())),
                }
            )
        return figures
