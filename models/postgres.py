"""PostgreSQL + TimescaleDB: one primary, read replicas, shared durable storage.

The primary takes writes: the ``device_commands`` table (``pending`` / ``sent`` /
``failed``, with an optional unique ``idempotency_key``) and the ``readings`` hypertable.
Replicas answer reads only, as of the WAL they have replayed (:mod:`models.replication`):
a read on a lagging replica misses the rows committed since, and says how many and how
stale it is.  Connections are the actor's concurrency limit.

Every committed write (readings and anomalies batches, ``device_commands`` inserts and
updates, a :class:`~models.replication.WriteBurst`) is one commit of ``rows x
wal_bytes_per_row[table]`` bytes of WAL: the replicas replay it, and the
:attr:`Database.listeners` (archiving, the ledger of what was committed) hear
``(table, time, rows, wal_bytes)``.  With no replica and no listener a write pays nothing
for it.

Readings are millions, so the hypertable keeps aggregates -- row counts, per-device energy
totals -- plus a bounded window of recent ``(device_id, time)`` keys.  That window is the
unique index when countermeasure C5 creates one (``ON CONFLICT DO NOTHING``); without the
index it lets the twin count the duplicate rows the system silently stores.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from models.config import PostgresConfig
from models.names import (
    ANOMALIES_TABLE,
    COMMANDS_TABLE,
    READING_END_TO_END,
    READINGS_STORED,
    READINGS_TABLE,
    REPLICA_REPLAY_LAG,
)
from models.ops import BulkInsert, Insert, Select, Update
from models.readings import DEVICE_ID, POWER_WATTS, TIME, VOLTAGE
from models.replication import RecentRows, ReplayStream
from sim.actor import Actor
from sim.errors import ModelDefinitionError
from sim.faults import Undo
from sim.metrics import Histogram
from sim.ops import Operation, Rejected

if TYPE_CHECKING:
    from sim.kernel import Kernel

__all__ = ["CommitListener", "Database", "Postgres", "RecentKeys"]

CommitListener = Callable[[str, float, int, float], None]
"""Told of every committed write: ``(table, commit time, rows, WAL bytes)``."""


class RecentKeys:
    """The ``(device_id, time)`` keys inserted within the last ``window_s`` seconds.

    Answers, for a batch of keys inserted at one instant, which were seen already --
    exactly what a :class:`~models.policies.dedup.DedupWindow` answers checking them one by
    one (a repeat inside the batch counts as seen; a key seen is not recorded again) --
    with array operations and no Python object per key:

    * each device has a ring of ``slots`` (time, expiry) pairs, its keys in insertion
      order; a key is live while its expiry is later than now.  The slot a new key takes
      holds the device's oldest key; if that one is still live, every slot is, and all
      rings double first -- so no live key is ever overwritten;
    * a key newer than every key its device ever had cannot have been seen, which
      settles the usual batch (readings arriving in time order) without a look at the
      rings;
    * a device that appears more than once in a batch is handled in rounds (first
      appearances, then second ones, ...), which keeps the one-by-one order per device.

    Device ids index rows directly (the fleet numbers its meters 0, 1, ...; rows grow to
    the largest id seen).  Memory is about ``devices x slots x 16`` bytes; ``slots`` is at
    most twice the most keys one device had live at once, so it is bounded by the window,
    not by the run's length.
    """

    __slots__ = ("_newest", "_next", "_stamp", "_times", "_until", "window_s")

    def __init__(self, window_s: float, devices: int = 0, slots: int = 8) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0 (got {window_s})")
        self.window_s = window_s
        rows = max(1, devices)
        self._times = np.zeros((rows, slots))
        self._until = np.zeros((rows, slots))  # expiry; <= now means the slot is free
        self._next = np.zeros(rows, dtype=np.int64)  # keys ever recorded per device (ring position)
        self._newest = np.full(rows, -np.inf)  # latest time ever recorded per device
        self._stamp = np.zeros(rows, dtype=np.int64)  # scratch for spotting repeated devices

    @property
    def slots(self) -> int:
        """Ring size per device."""
        return self._times.shape[1]

    def seen_many(self, devices: np.ndarray, times: np.ndarray, now: float) -> np.ndarray | None:
        """Record the keys ``zip(devices, times)`` at ``now``; a mask of those seen already.

        Returns None when none was seen (the usual batch).
        """
        n = devices.size
        if not n:
            return None
        self._fit(int(devices.max()) + 1)
        positions = np.arange(n)
        stamp = self._stamp
        stamp[devices] = positions
        if (stamp[devices] == positions).all():  # every device once: one round
            return self._round(devices, times, now)
        seen = np.zeros(n, dtype=bool)
        order = np.argsort(devices, kind="stable")
        ordered = devices[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        rank = np.empty(n, dtype=np.int64)
        rank[order] = positions - np.repeat(starts, np.diff(np.r_[starts, n]))
        for r in range(int(rank.max()) + 1):
            index = np.flatnonzero(rank == r)
            found = self._round(devices[index], times[index], now)
            if found is not None:
                seen[index] = found
        return seen if seen.any() else None

    def _round(self, devices: np.ndarray, times: np.ndarray, now: float) -> np.ndarray | None:
        """:meth:`seen_many` for a batch in which each device appears once."""
        seen = None
        maybe = np.flatnonzero(times <= self._newest[devices])
        if maybe.size:
            rows = devices[maybe]
            hit = ((self._times[rows] == times[maybe, None]) & (self._until[rows] > now)).any(axis=1)
            if hit.any():
                seen = np.zeros(devices.size, dtype=bool)
                seen[maybe] = hit
                devices, times = devices[~seen], times[~seen]
        if devices.size:
            slots = self.slots
            slot = self._next[devices] % slots
            if (self._until[devices, slot] > now).any():
                self._grow()
                slot = self._next[devices] % self.slots
            self._times[devices, slot] = times
            self._until[devices, slot] = now + self.window_s
            self._next[devices] += 1
            self._newest[devices] = np.maximum(self._newest[devices], times)
        return seen

    def _grow(self) -> None:
        """Double every ring, keeping each device's keys oldest first."""
        rows, slots = self._times.shape
        order = (self._next[:, None] + np.arange(slots)) % slots  # oldest .. newest
        for name in ("_times", "_until"):
            grown = np.zeros((rows, 2 * slots))
            grown[:, :slots] = np.take_along_axis(getattr(self, name), order, axis=1)
            setattr(self, name, grown)
        self._next[:] = slots

    def _fit(self, devices: int) -> None:
        """Make room for device ids below ``devices``."""
        rows = self._times.shape[0]
        if devices <= rows:
            return
        extra = max(devices, 2 * rows) - rows
        self._times = np.vstack([self._times, np.zeros((extra, self.slots))])
        self._until = np.vstack([self._until, np.zeros((extra, self.slots))])
        self._next = np.r_[self._next, np.zeros(extra, dtype=np.int64)]
        self._newest = np.r_[self._newest, np.full(extra, -np.inf)]
        self._stamp = np.r_[self._stamp, np.zeros(extra, dtype=np.int64)]

    def live(self, now: float) -> int:
        """How many keys are inside the window at ``now``."""
        return int(np.count_nonzero(self._until > now))


class Database:
    """The durable contents shared by the primary and its replicas."""

    def __init__(self, config: PostgresConfig, report_every: float, devices: int, bill_until: float = math.inf) -> None:
        """``bill_until``: rows of readings taken before it are the billing period's (C5)."""
        self.commands: dict[int, dict[str, Any]] = {}
        self.by_key: dict[str, int] = {}
        self.pending: dict[int, None] = {}
        self.next_id = 1
        self.rows = 0
        self.duplicate_rows = 0
        self.conflicts = 0
        self.corrupted_rows = 0
        self.anomalies = 0
        self.energy_wh = np.zeros(devices)  # per-device totals, added in row order
        self.reading_count = np.zeros(devices, dtype=np.int64)
        self.bill_until = bill_until
        self.late_energy_wh = np.zeros(devices)  # the part of energy_wh from rows after bill_until
        self.late_readings = np.zeros(devices, dtype=np.int64)
        self.anomalous_intervals: set[tuple[int, float]] = set()  # (device_id, time) flagged in the period
        self.hours_per_reading = report_every / 3600.0
        self.recent = RecentKeys(config.duplicate_window, devices)
        self.wal_bytes_per_row: dict[str, float] = dict(config.wal_bytes_per_row)
        self.listeners: list[CommitListener] = []
        self.replicas: list[Postgres] = []  # the replicas replaying this database's WAL
        self.commits = 0  # commits numbered so far (only while a replica or a listener follows)
        self.recent_rows: RecentRows | None = None  # readings rows some replica has not replayed
        self.burst_rows: dict[str, int] = {}  # rows written by write bursts, by table

    def follow(self, replica: Postgres) -> None:
        """``replica`` replays every commit from now on."""
        self.replicas.append(replica)
        if self.recent_rows is None:
            self.recent_rows = RecentRows()

    def commit(self, table: str, time: float, rows: int) -> int:
        """A write of ``rows`` rows of ``table`` committed at ``time``: its number (0 when
        nobody follows the WAL: then nothing is computed at all)."""
        if not (self.replicas or self.listeners):
            return 0
        return self.commit_wal(table, time, rows, rows * self.wal_bytes_per_row[table])

    def commit_wal(self, table: str, time: float, rows: int, wal_bytes: float) -> int:
        """A commit whose WAL size is given: replicas replay it, listeners hear of it; its number."""
        if not (self.replicas or self.listeners):
            return 0
        self.commits += 1
        number = self.commits
        for replica in self.replicas:
            replica.replicate(number, time, wal_bytes)
        for listener in self.listeners:
            listener(table, time, rows, wal_bytes)
        return number

    def keep_unreplayed(self, number: int, time: float, devices: np.ndarray, energy: np.ndarray) -> None:
        """Remember commit ``number``'s readings rows until every replica has replayed them."""
        recent = self.recent_rows
        if recent is None or not number:
            return
        recent.append(number, devices, energy)
        oldest = self.commits + 1
        for replica in self.replicas:
            pending = replica.oldest_pending(time)
            if pending is not None and pending < oldest:
                oldest = pending
        recent.trim(oldest)


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
        self._e2e = kernel.metrics.histogram(READING_END_TO_END)
        self._stored_series = kernel.metrics.timeseries(READINGS_STORED)
        self.reads = 0  # energy_summary queries answered
        self.reads_missing_rows = 0  # ... that lacked rows the primary had committed
        self.rows_missed = 0  # ... the rows they lacked, all together
        self._read_staleness = Histogram()
        self.replay: ReplayStream | None = None
        if role != "primary":
            self.replay = ReplayStream(config.replay_rate, self._lag)
            self._replay_lags = Histogram()  # per commit: from commit to replayed here
            self._replay_lag_series = kernel.metrics.timeseries(REPLICA_REPLAY_LAG)
            database.follow(self)

    def service_time(self, op: Operation) -> float:
        match op:
            case BulkInsert():
                return self._write() + self.config.row_time * len(op.rows)
            case Select():
                return self._analytics() if op.query == "energy_summary" else self._read()
            case _:
                return self._write()

    def handle(self, op: Operation, origin: str) -> Any:
        if isinstance(op, Select):
            return self._select(op)
        if self.role != "primary":
            raise Rejected("read_only", f"{self.name} is a read replica")
        match op:
            case BulkInsert():
                return self._bulk_insert(op)
            case Insert():
                return self._insert(op)
            case Update():
                return self._update(op)
            case _:
                raise Rejected("unsupported", f"{self.name} does not handle {op.name}")

    # -- replication -------------------------------------------------------------------------
    def replicate(self, number: int, time: float, wal_bytes: float) -> None:
        """The primary committed commit ``number``: ship and replay it (a replica)."""
        replay = self.replay
        if replay is None:
            raise ModelDefinitionError(f"{self.name} is the primary: it replicates from no one")
        replayed = replay.commit(number, time, wal_bytes)
        lag = replayed - time
        self._replay_lags.add(lag)
        self._replay_lag_series.add(replayed, lag)

    def oldest_pending(self, now: float) -> int | None:
        """The oldest commit this replica has not replayed at ``now`` (None: none, or the primary)."""
        return None if self.replay is None else self.replay.oldest_pending(now)

    def unshipped_since(self, now: float) -> float | None:
        """The commit time of the oldest commit whose WAL has not reached this replica by ``now``
        (None: all arrived, or it keeps no replay position): what promoting it would lose."""
        return None if self.replay is None else self.replay.unshipped_since(now)

    def replay_done_at(self, now: float) -> float:
        """When the WAL this replica has received by ``now`` is replayed (``now`` without a replay position)."""
        return now if self.replay is None else self.replay.replay_done_at(now)

    def staleness(self, now: float) -> float:
        """How old this server's data is at ``now`` (0 for the primary and a caught-up replica)."""
        return 0.0 if self.replay is None else self.replay.staleness(now)

    def write_burst(self, table: str, rows_per_s: float | None, bytes_per_s: float | None, every: float) -> Undo:
        """Commit a chunk of ``table`` rows every ``every`` seconds, from now until undone
        (:class:`~models.replication.WriteBurst`); each chunk is committed when it starts, and
        not at all while this server is down."""
        if self.role != "primary":
            raise ModelDefinitionError(f"a write burst targets {self.name}, a read replica")
        per_row = self.db.wal_bytes_per_row.get(table)
        if per_row is None:
            known = ", ".join(sorted(self.db.wal_bytes_per_row))
            raise ModelDefinitionError(f"a write burst writes {table!r}, which has no WAL figure (known: {known})")
        rows_per_chunk = (rows_per_s if rows_per_s is not None else (bytes_per_s or 0.0) / per_row) * every
        wal_per_chunk = (bytes_per_s if bytes_per_s is not None else (rows_per_s or 0.0) * per_row) * every
        kernel, db = self.kernel, self.db
        db.burst_rows.setdefault(table, 0)
        state = {"on": 1.0, "carry": 0.0}  # whole rows per chunk; the fraction carried to the next

        def chunk() -> None:
            if not state["on"]:
                return
            if self.up:
                carry = state["carry"] + rows_per_chunk
                rows = int(carry)
                state["carry"] = carry - rows
                db.burst_rows[table] += rows
                db.commit_wal(table, kernel.now, rows, wal_per_chunk)
            kernel.call_later(every, chunk)

        chunk()

        def stop() -> None:
            state["on"] = 0.0

        return stop

    # -- device_commands -------------------------------------------------------------------
    def _insert(self, op: Insert) -> dict[str, Any]:
        db = self.db
        if op.table != COMMANDS_TABLE:
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
        db.commit(COMMANDS_TABLE, self.kernel.now, 1)
        return {"id": row["id"], "created": True, "status": row["status"]}

    def _update(self, op: Update) -> int:
        row = self.db.commands.get(op.row_id)
        if row is None:
            return 0
        row.update(op.changes)
        if row["status"] != "pending":
            self.db.pending.pop(op.row_id, None)
        self.db.commit(COMMANDS_TABLE, self.kernel.now, 1)
        return 1

    def _select(self, op: Select) -> Any:
        db = self.db
        if op.query == "pending_commands":  # ... WHERE next_attempt_at <= :due_by ORDER BY id LIMIT :limit
            due_by = op.params.get("due_by", math.inf)
            ids = []
            for command_id in db.pending:
                if db.commands[command_id].get("next_attempt_at", 0.0) > due_by:
                    continue
                ids.append(command_id)
                if len(ids) >= op.params.get("limit", 100):
                    break
            return [dict(db.commands[i]) for i in ids]
        if op.query == "energy_summary":
            return self._energy_summary(op.params["device_id"])
        raise Rejected("undefined_query", op.query)

    def _energy_summary(self, device: int) -> dict[str, Any]:
        """A device's energy total and reading count as of this server's replay position."""
        db = self.db
        now = self.kernel.now
        known = device < db.energy_wh.size
        energy = float(db.energy_wh[device]) if known else 0.0
        count = int(db.reading_count[device]) if known else 0
        missed, as_of = 0, now
        if self.replay is not None:
            replayed, as_of = self.replay.position(now)
            if db.recent_rows is not None and known:
                missed, missed_energy = db.recent_rows.missed(device, replayed)
                if missed:
                    energy -= missed_energy
                    count -= missed
        staleness = now - as_of
        self.reads += 1
        self._read_staleness.add(staleness)
        if missed:
            self.reads_missing_rows += 1
            self.rows_missed += missed
        return {
            "energy_kwh": energy / 1000.0,
            "readings": count,
            "staleness_s": staleness,
            "as_of_s": as_of,
            "rows_missed": missed,
        }

    # -- readings --------------------------------------------------------------------------
    def _bulk_insert(self, op: BulkInsert) -> dict[str, Any]:
        db = self.db
        if op.table == ANOMALIES_TABLE:
            db.anomalies += len(op.rows)
            db.anomalous_intervals.update((r[DEVICE_ID], r[TIME]) for r in op.rows if r[TIME] < db.bill_until)
            if op.rows:
                db.commit(ANOMALIES_TABLE, self.kernel.now, len(op.rows))
            return {"inserted": len(op.rows), "conflicts": []}
        if op.table != READINGS_TABLE:
            raise Rejected("undefined_table", op.table)
        rows = op.rows
        now = self.kernel.now
        n = len(rows)
        devices = np.fromiter(map(_device, rows), dtype=np.int64, count=n)
        times = np.fromiter(map(_time, rows), dtype=float, count=n)
        powers = np.fromiter(map(_power, rows), dtype=float, count=n)
        voltages = np.fromiter(map(_voltage, rows), dtype=float, count=n)
        seen = db.recent.seen_many(devices, times, now)
        conflicts: list[int] = []
        if seen is None:  # every (device_id, time) is new: the usual batch
            self._e2e.add_many(now - times)
        else:
            fresh = ~seen
            self._e2e.add_many(now - times[fresh])
            if op.on_conflict_do_nothing:
                conflicts = np.flatnonzero(seen).tolist()
                devices, times, powers, voltages = devices[fresh], times[fresh], powers[fresh], voltages[fresh]
                db.conflicts += len(conflicts)
            else:
                db.duplicate_rows += int(np.count_nonzero(seen))
        inserted = int(devices.size)
        db.rows += inserted
        db.corrupted_rows += int(np.count_nonzero((powers < 0) | (voltages <= 0)))
        known = devices < db.energy_wh.size
        if not known.all():
            devices, times, powers = devices[known], times[known], powers[known]
        energy = powers * db.hours_per_reading
        np.add.at(db.energy_wh, devices, energy)  # in row order, as one by one
        np.add.at(db.reading_count, devices, 1)
        late = times >= db.bill_until
        if late.any():  # only near the end of the run
            np.add.at(db.late_energy_wh, devices[late], energy[late])
            np.add.at(db.late_readings, devices[late], 1)
        if inserted:
            db.keep_unreplayed(db.commit(READINGS_TABLE, now, inserted), now, devices, energy)
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
                    "burst_rows": dict(sorted(db.burst_rows.items())),
                }
            )
        figures.update(
            {
                "reads_served": self.reads,
                "reads_missing_rows": self.reads_missing_rows,
                "rows_missed": self.rows_missed,
                "read_staleness_s": self._read_staleness.summary(),
            }
        )
        if self.replay is not None:
            figures["replay_lag_s"] = self._replay_lags.summary()
            figures["max_replay_lag_s"] = self.replay.max_lag
        return figures


_device = itemgetter(DEVICE_ID)
_time = itemgetter(TIME)
_power = itemgetter(POWER_WATTS)
_voltage = itemgetter(VOLTAGE)
