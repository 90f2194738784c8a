"""The record of what was committed, per table: the ground truth every RPO is measured against.

A disaster's RPO is not the restore's opinion of itself but the committed data it fails to
bring back: the rows committed after the recovered-to time and up to the disaster, by table.
This log holds those commits two ways, as the scenario chooses per flow:

* **aggregate**: a table written at a constant rate (``durability.flows.<table>.rows_per_s``).
  Months of history cost nothing to keep; before ``detail_from`` every flow is aggregate.
* **records**: in the detail window, every commit the detailed twin really makes (a readings
  batch, a command row), with its time, from the database's commit hook.

WAL follows the rows: each row costs its table's ``wal_bytes_per_row`` (``postgres``
section), and a record-level commit brings its own byte count (updates write WAL too).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping

from models.recovery.config import Flow, Table

__all__ = ["CommitLog"]


class _Records:
    """Commits of one table, in time order, with running totals (exact and O(log n) to query)."""

    __slots__ = ("bytes", "rows", "times")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.rows: list[int] = [0]  # rows[i]: committed rows up to and including commit i-1
        self.bytes: list[float] = [0.0]

    def add(self, t: float, rows: int, wal_bytes: float) -> None:
        if self.times and t < self.times[-1]:
            raise ValueError(f"commits must come in time order ({t} after {self.times[-1]})")
        self.times.append(t)
        self.rows.append(self.rows[-1] + rows)
        self.bytes.append(self.bytes[-1] + wal_bytes)

    def _upto(self, t: float) -> int:
        """How many commits happened at or before ``t``."""
        return bisect.bisect_right(self.times, t)

    def rows_between(self, a: float, b: float) -> int:
        return self.rows[self._upto(b)] - self.rows[self._upto(a)] if b > a else 0

    def bytes_between(self, a: float, b: float) -> float:
        return self.bytes[self._upto(b)] - self.bytes[self._upto(a)] if b > a else 0.0


class CommitLog:
    """See the module docstring. Times are simulated seconds; windows are ``(a, b]``."""

    def __init__(
        self, flows: Mapping[Table, Flow], wal_bytes_per_row: Mapping[str, float], *, detail_from: float = 0.0
    ) -> None:
        missing = sorted(t for t in flows if t not in wal_bytes_per_row)
        if missing:
            raise ValueError(f"no WAL bytes per row for table(s) {', '.join(missing)}")
        self.flows: dict[str, Flow] = {str(table): flow for table, flow in flows.items()}
        self.wal_bytes_per_row = dict(wal_bytes_per_row)
        self.detail_from = detail_from
        self._records: dict[str, _Records] = {
            table: _Records() for table, flow in self.flows.items() if flow.level == "records"
        }
        self._other = _Records()  # commits to tables the flows do not name (WAL only)

    @property
    def tables(self) -> tuple[str, ...]:
        """The tables whose rows are accounted for, in the scenario's order."""
        return tuple(self.flows)

    def level(self, table: str, t: float) -> str:
        """How ``table``'s commits at time ``t`` are known: ``aggregate`` or ``records``."""
        return "records" if table in self._records and t >= self.detail_from else "aggregate"

    def levels(self) -> dict[str, str]:
        """The level each flow uses in the detail window (what a result states)."""
        return {table: flow.level for table, flow in self.flows.items()}

    # -- recording -------------------------------------------------------------------------
    def record(self, table: str, t: float, rows: int, wal_bytes: float) -> None:
        """A commit the detailed twin made (the database's commit hook)."""
        records = self._records.get(table)
        if records is not None:
            records.add(t, rows, wal_bytes)
        elif table not in self.flows:
            self._other.add(t, 0, wal_bytes)
        # an aggregate flow's commits are already counted by its rate

    # -- reading ---------------------------------------------------------------------------
    def _aggregate_span(self, table: str, a: float, b: float) -> float:
        """Seconds of ``(a, b]`` in which ``table`` is counted at its aggregate rate."""
        end = min(b, self.detail_from) if table in self._records else b
        return max(0.0, end - a)

    def rows_between(self, table: str, a: float, b: float) -> int:
        """Rows of ``table`` committed in ``(a, b]`` (aggregate parts rounded down to whole rows)."""
        if b <= a:
            return 0
        start = max(a, 0.0)
        aggregate = self.flows[table].rows_per_s * self._aggregate_span(table, start, b)
        records = self._records.get(table)
        recorded = records.rows_between(max(start, self.detail_from), b) if records is not None else 0
        return math.floor(aggregate + 1e-9) + recorded

    def rows_lost(self, recovered_to: float | None, disaster: float) -> dict[str, int]:
        """Committed rows per table a recovery to ``recovered_to`` loses (``None``: all of them)."""
        floor = 0.0 if recovered_to is None else recovered_to
        return {table: self.rows_between(table, floor, disaster) for table in self.flows}

    def aggregate_wal_rate(self, t: float) -> float:
        """WAL bytes per second the aggregate flows write at time ``t``."""
        return math.fsum(
            flow.rows_per_s * self.wal_bytes_per_row[table]
            for table, flow in self.flows.items()
            if self.level(table, t) == "aggregate"
        )

    def wal_bytes_between(self, a: float, b: float) -> float:
        """WAL bytes written in ``(a, b]``: aggregate rates plus recorded commits."""
        if b <= a:
            return 0.0
        start = max(a, 0.0)
        total = math.fsum(
            flow.rows_per_s * self.wal_bytes_per_row[table] * self._aggregate_span(table, start, b)
            for table, flow in self.flows.items()
        )
        lo = max(start, self.detail_from)
        total += math.fsum(r.bytes_between(lo, b) for r in self._records.values())
        return total + self._other.bytes_between(lo, b)

    def data_bytes_between(self, a: float, b: float) -> float:
        """Bytes the database grew by in ``(a, b]`` (rows times their size; updates add none)."""
        return math.fsum(self.rows_between(table, a, b) * self.wal_bytes_per_row[table] for table in self.flows)
